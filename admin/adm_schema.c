/* Commands of the schema: migrate, version. */
#include <stdio.h>

#include "fs_store.h"
#include "adm.h"
#include "adm_db.h"
#include "adm_out.h"

static apr_status_t run_migrate(adm_ctx_t *ctx)
{
    const char *err = NULL;
    json_object *j;
    int before, after;

    before = adm_db_version(ctx);
    if (APR_SUCCESS != fs_store_migrate(&ctx->store, ctx->p, &err)) {
        return adm_fail(APR_EGENERAL, "cannot create or upgrade the schema: %s",
                        err ? err : "see the lines above");
    }
    after = adm_db_version(ctx);
    if (ctx->json) {
        j = adm_json_root(ctx->p);
        json_object_object_add(j, "schema_version", json_object_new_int(after));
        json_object_object_add(j, "previous_version", json_object_new_int(before));
        json_object_object_add(j, "changed", json_object_new_boolean(before != after));
        adm_json_print(j);
    }
    else if (before == after) {
        printf("schema version %d: already current\n", after);
    }
    else {
        printf("schema version %d (was %d)\n", after, before);
    }
    return APR_SUCCESS;
}

static const char *version_state(int version)
{
    if (version == 0) return "none: create it with `" ADM_NAME " migrate`";
    if (version < FS_SCHEMA_VERSION) return "older: upgrade it with `" ADM_NAME " migrate`";
    if (version > FS_SCHEMA_VERSION) return "newer than this " ADM_NAME ": upgrade it";
    return "current";
}

static apr_status_t run_version(adm_ctx_t *ctx)
{
    int version = adm_db_version(ctx);
    json_object *j;

    if (ctx->json) {
        j = adm_json_root(ctx->p);
        json_object_object_add(j, "schema_version", json_object_new_int(version));
        json_object_object_add(j, "supported_version",
                               json_object_new_int(FS_SCHEMA_VERSION));
        json_object_object_add(j, "current",
                               json_object_new_boolean(version == FS_SCHEMA_VERSION));
        adm_json_print(j);
    }
    else {
        printf("schema version %d (%s)\n", version, version_state(version));
    }
    return APR_SUCCESS;
}

const adm_cmd_t adm_cmd_migrate = {
    "migrate", ADM_NEEDS_DB_CREATE, adm_no_options, 0, 0, run_migrate,
    "migrate",
    "    Create the schema, or upgrade it to this version's; print the version.\n"
    "    Safe while httpd runs (each step is one transaction), but processes of an\n"
    "    older release stop recording once the schema passes theirs (version 3 moved\n"
    "    the counters): upgrade the module, the notifier and this tool together. A\n"
    "    SQLite file is created when missing; its directory must exist.",
};

const adm_cmd_t adm_cmd_version = {
    "version", ADM_NEEDS_DB, adm_no_options, 0, 0, run_version,
    "version",
    "    Print the database's schema version (0 = none yet) and whether this\n"
    "    " ADM_NAME " supports it.",
};
