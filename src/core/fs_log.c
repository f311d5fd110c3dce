#include <stdio.h>
#include <apr_strings.h>

#include "fs_log.h"

static int default_level(void *baton, fs_log_level_t level)
{
    (void)baton;
    return level <= FS_LOG_WARNING;
}

static void default_print(const char *file, int line, fs_log_level_t level,
                          apr_status_t rv, void *baton, apr_pool_t *p,
                          const char *fmt, va_list ap)
{
    char buf[8192], err[256];
    (void)baton; (void)p; (void)file; (void)line;
    apr_vsnprintf(buf, sizeof(buf), fmt, ap);
    if (rv != APR_SUCCESS) {
        fprintf(stderr, "[%s] %s (%d) %s\n", fs_log_level_name(level), buf, rv,
                apr_strerror(rv, err, sizeof(err)));
    }
    else {
        fprintf(stderr, "[%s] %s\n", fs_log_level_name(level), buf);
    }
}

static fs_log_level_cb *log_level = default_level;
static fs_log_print_cb *log_print = default_print;
static void *log_baton;

void fs_log_set(fs_log_level_cb *level_cb, fs_log_print_cb *print_cb, void *baton)
{
    log_level = level_cb ? level_cb : default_level;
    log_print = print_cb ? print_cb : default_print;
    log_baton = baton;
}

int fs_log_is_level(fs_log_level_t level)
{
    return log_level(log_baton, level);
}

void fs_log_perror(const char *file, int line, fs_log_level_t level, apr_status_t rv,
                   apr_pool_t *p, const char *fmt, ...)
{
    va_list ap;
    if (!log_level(log_baton, level)) return;
    va_start(ap, fmt);
    log_print(file, line, level, rv, log_baton, p, fmt, ap);
    va_end(ap);
}

const char *fs_log_level_name(fs_log_level_t level)
{
    switch (level) {
    case FS_LOG_ERR: return "error";
    case FS_LOG_WARNING: return "warn";
    case FS_LOG_NOTICE: return "notice";
    case FS_LOG_INFO: return "info";
    default: return "debug";
    }
}
