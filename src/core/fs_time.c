#include <stdio.h>
#include <string.h>
#include <apr_strings.h>
#include <apr_lib.h>

#include "fs_time.h"

const char *fs_time_instant(apr_pool_t *p, apr_time_t t)
{
    apr_time_exp_t tm;
    apr_time_exp_gmt(&tm, t);
    return apr_psprintf(p, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
                        tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                        tm.tm_hour, tm.tm_min, tm.tm_sec, tm.tm_usec / 1000);
}

static int read_digits(const char **ps, int n, int *pval)
{
    int v = 0, i;
    for (i = 0; i < n; ++i) {
        if (!apr_isdigit((*ps)[i])) return 0;
        v = v * 10 + ((*ps)[i] - '0');
    }
    *ps += n;
    *pval = v;
    return 1;
}

static int expect(const char **ps, char c)
{
    if (**ps != c) return 0;
    ++*ps;
    return 1;
}

static apr_status_t parse_zone(const char *s, int *poffset_sec)
{
    int hh, mm, sign;
    if (!strcmp(s, "Z")) { *poffset_sec = 0; return APR_SUCCESS; }
    if (*s != '+' && *s != '-') return APR_EINVAL;
    sign = (*s == '-') ? -1 : 1;
    ++s;
    if (!read_digits(&s, 2, &hh) || !expect(&s, ':') || !read_digits(&s, 2, &mm) || *s
        || hh > 14 || mm > 59) {
        return APR_EINVAL;
    }
    *poffset_sec = sign * (hh * 3600 + mm * 60);
    return APR_SUCCESS;
}

static int days_in_month(int year, int mon)
{
    static const int days[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    int leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    return (mon == 2 && leap) ? 29 : days[mon - 1];
}

apr_status_t fs_time_parse(apr_time_t *pt, const char *text)
{
    apr_time_exp_t tm;
    const char *s = text;
    int year, mon, day, hh = 0, mi = 0, ss = 0, usec = 0, offset = 0;

    if (!s || !read_digits(&s, 4, &year) || !expect(&s, '-') || !read_digits(&s, 2, &mon)
        || !expect(&s, '-') || !read_digits(&s, 2, &day)) {
        return APR_EINVAL;
    }
    if (*s) {
        if (!expect(&s, 'T') || !read_digits(&s, 2, &hh) || !expect(&s, ':')
            || !read_digits(&s, 2, &mi) || !expect(&s, ':') || !read_digits(&s, 2, &ss)) {
            return APR_EINVAL;
        }
        if (*s == '.') {
            int scale = 100000;
            ++s;
            if (!apr_isdigit(*s)) return APR_EINVAL;
            for (; apr_isdigit(*s); ++s) {
                usec += (*s - '0') * scale;
                scale /= 10;
            }
        }
        if (APR_SUCCESS != parse_zone(s, &offset)) return APR_EINVAL;
    }
    if (mon < 1 || mon > 12 || day < 1 || day > 31 || hh > 23 || mi > 59 || ss > 60) {
        return APR_EINVAL;
    }
    memset(&tm, 0, sizeof(tm));
    tm.tm_year = year - 1900;
    tm.tm_mon = mon - 1;
    tm.tm_mday = day;
    tm.tm_hour = hh;
    tm.tm_min = mi;
    tm.tm_sec = ss;
    tm.tm_usec = usec;
    if (day > days_in_month(year, mon)) return APR_EINVAL;
    /* Fields as UTC (tm_gmtoff 0, whatever this APR does with it), then the zone. */
    tm.tm_gmtoff = 0;
    if (apr_time_exp_gmt_get(pt, &tm) != APR_SUCCESS) return APR_EINVAL;
    *pt -= apr_time_from_sec(offset);
    return APR_SUCCESS;
}

apr_int64_t fs_time_to_ms(apr_time_t t)
{
    return (apr_int64_t)(t / 1000);
}

apr_time_t fs_time_from_ms(apr_int64_t ms)
{
    return (apr_time_t)ms * 1000;
}
