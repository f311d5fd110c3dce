/* adm: what the files of fhirsub-admin share: the run context, the command table
 * entry, exit codes and the error helpers. One file per concern: adm_main (argument
 * parsing, dispatch), adm_log (stderr sink), adm_db (connection, schema check),
 * adm_owner (running as the SQLite file's owner), adm_out (tables and JSON), and one
 * file per command group (adm_schema, adm_subs, adm_grants, adm_events). */
#ifndef ADM_H
#define ADM_H

#include <apr_pools.h>
#include <apr_tables.h>
#include <apr_getopt.h>
#include <apr_time.h>

#include "fs_store.h"

#define ADM_NAME "fhirsub-admin"

/* Process exit codes. */
#define ADM_EXIT_OK 0
#define ADM_EXIT_ERROR 1   /* runtime: database unavailable, query failed, not found */
#define ADM_EXIT_USAGE 2   /* the command line is wrong */

/* Status of a usage error (exit 2); any other failure exits 1. */
#define ADM_EUSAGE (APR_OS_START_USERERR + 1)

typedef struct adm_ctx_t {
    apr_pool_t *p;             /* lives until exit */
    const char *driver;        /* "sqlite3" | "pgsql": --driver or FHIRSUB_DB_DRIVER */
    const char *params;        /* apr_dbd params: --params or FHIRSUB_DB_PARAMS */
    int json;                  /* --json: one JSON document on stdout */
    int verbose;               /* -v: debug log lines on stderr */
    apr_table_t *opts;         /* command options: long name -> value ("1" for flags) */
    apr_array_header_t *args;  /* const char*: positional arguments after the command */
    fs_store_t store;          /* the connection once adm_db_open succeeded */
    apr_time_t now;            /* one "now" for the whole run */
} adm_ctx_t;

typedef apr_status_t adm_run_fn(adm_ctx_t *ctx);

/* What a command needs before it runs. */
typedef enum {
    ADM_NEEDS_NOTHING = 0,
    ADM_NEEDS_DB,          /* an existing database, any schema state */
    ADM_NEEDS_DB_CREATE,   /* a database that may be created (SQLite file) */
    ADM_NEEDS_SCHEMA,      /* the current schema, statements prepared */
} adm_needs_t;

typedef struct adm_cmd_t {
    const char *name;
    adm_needs_t needs;
    const apr_getopt_option_t *opts;  /* its own options, {NULL,0,0,NULL} terminated */
    int min_args, max_args;           /* positional arguments accepted */
    adm_run_fn *run;
    const char *synopsis;             /* "revoke GRANT_ID" */
    const char *help;                 /* what it does, several lines */
} adm_cmd_t;

/* Print "fhirsub-admin: <message>" on stderr and return rv. */
apr_status_t adm_fail(apr_status_t rv, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Print a usage problem with a pointer to --help; returns ADM_EUSAGE. */
apr_status_t adm_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Parse a whole decimal number in [min, max]; ADM_EUSAGE naming opt otherwise. */
apr_status_t adm_parse_i64(const char *opt, const char *text, apr_int64_t min,
                           apr_int64_t max, apr_int64_t *pval);

/* Positional argument i, or NULL. */
const char *adm_arg(const adm_ctx_t *ctx, int i);

/* The commands, by group (adm_schema.c, adm_subs.c, adm_grants.c, adm_events.c). */
extern const adm_cmd_t adm_cmd_migrate, adm_cmd_version;
extern const adm_cmd_t adm_cmd_subscriptions;
extern const adm_cmd_t adm_cmd_grants, adm_cmd_revoke, adm_cmd_revoke_user,
    adm_cmd_prune_grants;
extern const adm_cmd_t adm_cmd_backlog, adm_cmd_prune;

/* The empty option table of commands without options. */
extern const apr_getopt_option_t adm_no_options[];

#endif
