#include <stdio.h>
#include <string.h>
#include <apr_strings.h>

#include "adm.h"
#include "adm_log.h"

static fs_log_level_t max_level = FS_LOG_WARNING;

static int level_cb(void *baton, fs_log_level_t level)
{
    (void)baton;
    return level <= max_level;
}

static void print_cb(const char *file, int line, fs_log_level_t level, apr_status_t rv,
                     void *baton, apr_pool_t *p, const char *fmt, va_list ap)
{
    char buf[4096], err[160];
    apr_size_t n;
    (void)baton; (void)p;

    apr_vsnprintf(buf, sizeof(buf), fmt, ap);
    if (rv != APR_SUCCESS) {
        n = strlen(buf);
        apr_snprintf(buf + n, sizeof(buf) - n, " (%d: %s)", rv,
                     apr_strerror(rv, err, sizeof(err)));
    }
    /* the source position helps only someone reading the code: with -v */
    if (max_level >= FS_LOG_DEBUG) {
        fprintf(stderr, ADM_NAME ": [%s] %s (%s:%d)\n", fs_log_level_name(level), buf,
                file, line);
    }
    else {
        fprintf(stderr, ADM_NAME ": [%s] %s\n", fs_log_level_name(level), buf);
    }
}

void adm_log_init(int verbose)
{
    max_level = verbose ? FS_LOG_DEBUG : FS_LOG_WARNING;
    fs_log_set(level_cb, print_cb, NULL);
}
