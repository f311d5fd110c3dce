/* fs_log: logging through callbacks, so the core never sees httpd or libwebsockets.
 * The module installs an ap_log_error sink, the notifier and the CLI a stderr sink.
 * Every message starts with a unique number "FSnnnnn: " so operators can grep it. */
#ifndef FS_LOG_H
#define FS_LOG_H

#include <stdarg.h>
#include <apr_pools.h>

typedef enum {
    FS_LOG_ERR = 3,
    FS_LOG_WARNING = 4,
    FS_LOG_NOTICE = 5,
    FS_LOG_INFO = 6,
    FS_LOG_DEBUG = 7,
} fs_log_level_t;

#define FS_LOG_MARK __FILE__, __LINE__

typedef int fs_log_level_cb(void *baton, fs_log_level_t level);
typedef void fs_log_print_cb(const char *file, int line, fs_log_level_t level,
                             apr_status_t rv, void *baton, apr_pool_t *p,
                             const char *fmt, va_list ap);

/* Install the sink (NULL callbacks restore the default: warnings and worse to stderr). */
void fs_log_set(fs_log_level_cb *level_cb, fs_log_print_cb *print_cb, void *baton);

int fs_log_is_level(fs_log_level_t level);

void fs_log_perror(const char *file, int line, fs_log_level_t level, apr_status_t rv,
                   apr_pool_t *p, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

const char *fs_log_level_name(fs_log_level_t level);

#endif
