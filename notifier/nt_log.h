/* nt_log: the notifier's log sink. Core (FS0nnnn) and notifier (FS2nnnn) lines go
 * to stderr as "<UTC instant> [level] FSnnnnn: text", one line each, so systemd's
 * journal (or a test harness) keeps them; libwebsockets' own warnings and errors
 * are bridged in as "FS20008: lws: text". Safe to call from any thread. */
#ifndef NT_LOG_H
#define NT_LOG_H

#include "fs_log.h"

/* Install the sink for the core's fs_log and for libwebsockets at this level. */
void nt_log_init(fs_log_level_t level);

/* Parse "error", "warn", "notice", "info", "debug"; APR_EINVAL otherwise. */
apr_status_t nt_log_level_parse(fs_log_level_t *plevel, const char *name);

#define NT_LOG_MARK FS_LOG_MARK
#define nt_log(level, ...) fs_log_perror(FS_LOG_MARK, (level), APR_SUCCESS, NULL, __VA_ARGS__)

#endif
