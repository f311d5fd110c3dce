/* adm_log: the core's log lines (fs_log) on stderr, warnings and worse by default,
 * everything with -v. */
#ifndef ADM_LOG_H
#define ADM_LOG_H

#include "fs_log.h"

/* Install the stderr sink; verbose shows debug lines too. */
void adm_log_init(int verbose);

#endif
