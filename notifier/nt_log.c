#include <stdio.h>
#include <string.h>
#include <pthread.h>
#include <apr_strings.h>
#include <apr_time.h>
#include <libwebsockets.h>

#include "nt_log.h"

static fs_log_level_t max_level = FS_LOG_NOTICE;
static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;

static int level_cb(void *baton, fs_log_level_t level)
{
    (void)baton;
    return level <= max_level;
}

static void emit(fs_log_level_t level, const char *text)
{
    char stamp[APR_RFC822_DATE_LEN + 8];
    apr_time_exp_t t;
    apr_time_t now = apr_time_now();

    apr_time_exp_gmt(&t, now);
    apr_snprintf(stamp, sizeof(stamp), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
                 t.tm_year + 1900, t.tm_mon + 1, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec,
                 t.tm_usec / 1000);
    /* one write per line: lines of the two threads never interleave */
    pthread_mutex_lock(&out_lock);
    fprintf(stderr, "%s [%s] %s\n", stamp, fs_log_level_name(level), text);
    fflush(stderr);
    pthread_mutex_unlock(&out_lock);
}

static void print_cb(const char *file, int line, fs_log_level_t level, apr_status_t rv,
                     void *baton, apr_pool_t *p, const char *fmt, va_list ap)
{
    char buf[4096], err[160];
    apr_size_t n;
    (void)file; (void)line; (void)baton; (void)p;

    apr_vsnprintf(buf, sizeof(buf), fmt, ap);
    if (rv != APR_SUCCESS) {
        n = strlen(buf);
        apr_snprintf(buf + n, sizeof(buf) - n, " (%d: %s)", rv,
                     apr_strerror(rv, err, sizeof(err)));
    }
    emit(level, buf);
}

static void lws_emit(int lws_level, const char *line)
{
    char buf[1024];
    apr_size_t n;
    fs_log_level_t level = (lws_level & LLL_ERR) ? FS_LOG_ERR
                         : (lws_level & LLL_WARN) ? FS_LOG_WARNING
                         : (lws_level & LLL_NOTICE) ? FS_LOG_INFO : FS_LOG_DEBUG;
    if (!level_cb(NULL, level)) return;
    /* libwebsockets' own lines share one number: grep FS20008 for all of them */
    apr_snprintf(buf, sizeof(buf), "FS20008: lws: %s", line);
    n = strlen(buf);
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r')) buf[--n] = '\0';
    emit(level, buf);
}

void nt_log_init(fs_log_level_t level)
{
    int lws_levels = LLL_ERR | LLL_WARN;

    max_level = level;
    fs_log_set(level_cb, print_cb, NULL);
    if (level >= FS_LOG_DEBUG) lws_levels |= LLL_NOTICE;
    lws_set_log_level(lws_levels, lws_emit);
}

apr_status_t nt_log_level_parse(fs_log_level_t *plevel, const char *name)
{
    static const struct { const char *name; fs_log_level_t level; } names[] = {
        { "error", FS_LOG_ERR }, { "warn", FS_LOG_WARNING }, { "notice", FS_LOG_NOTICE },
        { "info", FS_LOG_INFO }, { "debug", FS_LOG_DEBUG },
    };
    apr_size_t i;
    for (i = 0; name && i < sizeof(names) / sizeof(names[0]); ++i) {
        if (!strcmp(name, names[i].name)) {
            *plevel = names[i].level;
            return APR_SUCCESS;
        }
    }
    return APR_EINVAL;
}
