#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <apr_dbd.h>
#include <apr_strings.h>
#include <sqlite3.h>

#include "fs_admin.h"
#include "fs_log.h"
#include "adm.h"
#include "adm_db.h"
#include "adm_owner.h"

/* Wait this long for httpd's writers instead of failing at once, as they wait for us. */
#define ADM_SQLITE_BUSY_MS 5000

#define ADM_HINT_MIGRATE "create it with `" ADM_NAME " migrate` (or start httpd with " \
    "mod_fhirsub once)"

static int is_sqlite(const adm_ctx_t *ctx)
{
    return !strcmp(ctx->driver, "sqlite3");
}

static apr_status_t check_selection(const adm_ctx_t *ctx)
{
    if (!ctx->driver || !*ctx->driver || !ctx->params || !*ctx->params) {
        return adm_usage("no database given: use --driver sqlite3|pgsql and --params "
                         "\"...\" (as DBDriver and DBDParams in httpd's configuration), "
                         "or set FHIRSUB_DB_DRIVER and FHIRSUB_DB_PARAMS");
    }
    if (strcmp(ctx->driver, "sqlite3") && strcmp(ctx->driver, "pgsql")) {
        return adm_fail(APR_EGENERAL, "unsupported database driver \"%s\": mod_fhirsub "
                        "stores its data in sqlite3 or pgsql; use the DBDriver of "
                        "httpd's configuration", ctx->driver);
    }
    return APR_SUCCESS;
}

static apr_status_t sqlite_dir_check(const adm_ctx_t *ctx)
{
    const char *dir = adm_path_dir(ctx->p, ctx->params);
    struct stat st;

    if (0 == stat(dir, &st) && S_ISDIR(st.st_mode)) return APR_SUCCESS;
    return adm_fail(APR_ENOENT, "cannot create the SQLite database %s: the directory %s "
                    "does not exist; create it, writable by httpd's User (e.g. www-data)",
                    ctx->params, dir);
}

static apr_status_t sqlite_file_check(const adm_ctx_t *ctx, int create)
{
    struct stat st;

    if (0 == stat(ctx->params, &st)) return APR_SUCCESS;
    if (errno == ENOENT && create) return sqlite_dir_check(ctx);
    if (errno == ENOENT) {
        return adm_fail(APR_ENOENT, "the SQLite database %s does not exist: check --params "
                        "(DBDParams in httpd's configuration), or " ADM_HINT_MIGRATE,
                        ctx->params);
    }
    return adm_fail(APR_FROM_OS_ERROR(errno), "cannot use the SQLite database %s: %s; "
                    "check the permissions of the file and its directory",
                    ctx->params, strerror(errno));
}

/* SQLite as root: become the file's owner before SQLite creates -wal/-shm files. */
static apr_status_t sqlite_prepare_file(adm_ctx_t *ctx, int create)
{
    const char *who = NULL;
    apr_status_t rv;

    if (APR_SUCCESS != (rv = sqlite_file_check(ctx, create))) return rv;
    rv = adm_owner_assume(ctx->p, ctx->params, create, &who);
    if (rv != APR_SUCCESS) {
        char buf[160];
        return adm_fail(rv, "cannot switch to the owner of %s (or of its directory): %s; "
                        "run " ADM_NAME " as that user (e.g. runuser -u www-data --)",
                        ctx->params, apr_strerror(rv, buf, sizeof(buf)));
    }
    if (who) {
        fs_log_perror(FS_LOG_MARK, FS_LOG_DEBUG, APR_SUCCESS, ctx->p,
                      "FS30001: running as %s, the owner of %s", who, ctx->params);
    }
    return APR_SUCCESS;
}

static apr_status_t load_driver(adm_ctx_t *ctx)
{
    apr_status_t rv;
    char buf[160];

    if (APR_SUCCESS != (rv = apr_dbd_init(ctx->p))) {
        return adm_fail(rv, "cannot initialise apr_dbd");
    }
    rv = apr_dbd_get_driver(ctx->p, ctx->driver, &ctx->store.driver);
    if (rv == APR_EDSOOPEN) {
        return adm_fail(rv, "the apr_dbd %s driver is not installed: install the package "
                        "libaprutil1-dbd-%s", ctx->driver, ctx->driver);
    }
    if (rv != APR_SUCCESS) {
        return adm_fail(rv, "cannot load the apr_dbd %s driver: %s; reinstall "
                        "libaprutil1-dbd-%s", ctx->driver,
                        apr_strerror(rv, buf, sizeof(buf)), ctx->driver);
    }
    return APR_SUCCESS;
}

static apr_status_t close_db(void *baton)
{
    fs_store_t *store = baton;
    if (store->handle) apr_dbd_close(store->driver, store->handle);
    store->handle = NULL;
    return APR_SUCCESS;
}

/* libpq's messages span lines ("...refused\n\tIs the server running..."): one line. */
static const char *one_line(apr_pool_t *p, const char *text)
{
    char *s = apr_pstrdup(p, text ? text : "unknown error"), *out = s;
    const char *in;
    int blank = 0;

    for (in = s; *in; ++in) {
        int ws = (*in == '\n' || *in == '\r' || *in == '\t' || *in == ' ');
        if (ws && (blank || out == s)) continue;
        *out++ = ws ? ' ' : *in;
        blank = ws;
    }
    if (out > s && out[-1] == ' ') --out;
    *out = '\0';
    return s;
}

/* pgsql params may carry a password: name the database only for SQLite. */
static apr_status_t connect_failed(const adm_ctx_t *ctx, const char *err)
{
    if (is_sqlite(ctx)) {
        return adm_fail(APR_EGENERAL, "cannot open the SQLite database %s: %s; check "
                        "--params and that this user may write the file and its "
                        "directory", ctx->params, one_line(ctx->p, err));
    }
    return adm_fail(APR_EGENERAL, "cannot connect to PostgreSQL: %s; check --params (a "
                    "libpq conninfo such as \"host=127.0.0.1 dbname=fhirsub "
                    "user=fhirsub\", as DBDParams in httpd's configuration) and that the "
                    "server accepts connections", one_line(ctx->p, err));
}

static void tune_sqlite(adm_ctx_t *ctx)
{
    sqlite3 *native = apr_dbd_native_handle(ctx->store.driver, ctx->store.handle);
    char *err = NULL;

    if (!native) return;
    sqlite3_busy_timeout(native, ADM_SQLITE_BUSY_MS);
    /* what the module sets too; a read-only user cannot, and need not */
    if (SQLITE_OK != sqlite3_exec(native, "PRAGMA journal_mode=WAL", NULL, NULL, &err)) {
        fs_log_perror(FS_LOG_MARK, FS_LOG_DEBUG, APR_SUCCESS, ctx->p,
                      "FS30002: journal mode not switched to WAL: %s", err ? err : "?");
        sqlite3_free(err);
    }
}

static apr_status_t connect_db(adm_ctx_t *ctx)
{
    const char *err = NULL;
    apr_dbd_t *handle = NULL;

    if (apr_dbd_open_ex(ctx->store.driver, ctx->p, ctx->params, &handle, &err) || !handle) {
        return connect_failed(ctx, err);
    }
    ctx->store.handle = handle;
    apr_pool_cleanup_register(ctx->p, &ctx->store, close_db, apr_pool_cleanup_null);
    if (is_sqlite(ctx)) tune_sqlite(ctx);
    return APR_SUCCESS;
}

apr_status_t adm_db_failed(apr_status_t rv, const char *what)
{
    return adm_fail(rv, "cannot %s: the database refused (see the line above); check "
                    "that it is reachable and its schema current (`" ADM_NAME " version`)",
                    what);
}

int adm_db_version(adm_ctx_t *ctx)
{
    int version = 0;
    /* fails when the schema table does not exist: no schema yet */
    if (APR_SUCCESS != fs_store_schema_version(&ctx->store, ctx->p, &version)) return 0;
    return version;
}

static apr_status_t check_schema(adm_ctx_t *ctx)
{
    int version = adm_db_version(ctx);

    if (version == 0) {
        return adm_fail(APR_EGENERAL, "the database has no mod_fhirsub schema yet: "
                        ADM_HINT_MIGRATE);
    }
    if (version > FS_SCHEMA_VERSION) {
        return adm_fail(APR_EGENERAL, "the database has schema version %d, newer than "
                        "this " ADM_NAME "'s %d: use the " ADM_NAME " of the mod_fhirsub "
                        "release that upgraded it", version, FS_SCHEMA_VERSION);
    }
    if (version < FS_SCHEMA_VERSION) {
        return adm_fail(APR_EGENERAL, "the database has schema version %d, older than "
                        "%d: upgrade it with `" ADM_NAME " migrate`", version,
                        FS_SCHEMA_VERSION);
    }
    return APR_SUCCESS;
}

static apr_status_t prepare(adm_ctx_t *ctx)
{
    const char *err = NULL;

    if (APR_SUCCESS != fs_store_prepare_all(&ctx->store, ctx->p, &err)
        || APR_SUCCESS != fs_admin_prepare(&ctx->store, ctx->p, &err)) {
        return adm_fail(APR_EGENERAL, "the database does not fit this " ADM_NAME " (%s): "
                        "run `" ADM_NAME " migrate`, or use the " ADM_NAME " of the "
                        "installed mod_fhirsub", err ? err : "?");
    }
    return APR_SUCCESS;
}

apr_status_t adm_db_open(adm_ctx_t *ctx, adm_needs_t needs)
{
    apr_status_t rv;

    if (APR_SUCCESS != (rv = check_selection(ctx))) goto leave;
    if (is_sqlite(ctx)) {
        rv = sqlite_prepare_file(ctx, needs == ADM_NEEDS_DB_CREATE);
        if (rv != APR_SUCCESS) goto leave;
    }
    if (APR_SUCCESS != (rv = load_driver(ctx))) goto leave;
    if (APR_SUCCESS != (rv = connect_db(ctx))) goto leave;
    if (needs == ADM_NEEDS_SCHEMA) {
        if (APR_SUCCESS != (rv = check_schema(ctx))) goto leave;
        rv = prepare(ctx);
    }
leave:
    return rv;
}
