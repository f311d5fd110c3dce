/* adm_db: the database the tool works on: driver and params from the command line or
 * the environment, the connection (as the SQLite file's owner when run as root), and
 * the schema check before a command touches any table. */
#ifndef ADM_DB_H
#define ADM_DB_H

#include "adm.h"

/* Open ctx->store as the command needs (ADM_NEEDS_DB, _DB_CREATE or _SCHEMA: then
 * also check the schema version and prepare every statement). Errors are printed. */
apr_status_t adm_db_open(adm_ctx_t *ctx, adm_needs_t needs);

/* Report a failed store call (the core logged the driver's error above): returns rv. */
apr_status_t adm_db_failed(apr_status_t rv, const char *what);

/* The schema version in the database; 0 when it has none yet. */
int adm_db_version(adm_ctx_t *ctx);

#endif
