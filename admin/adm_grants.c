/* Commands of binding-token grants: grants, revoke, revoke-user, prune-grants.
 * A token is valid only while its grant row is live, so revoking the grant cuts
 * off the token at once (the notifier re-checks bound grants periodically). */
#include <stdio.h>
#include <string.h>
#include <apr_strings.h>

#include "fs_admin.h"
#include "fs_store.h"
#include "adm.h"
#include "adm_db.h"
#include "adm_out.h"

/* Grants expired longer ago than this are pruned: a day leaves recent ones to look at. */
#define ADM_GRANT_PRUNE_AGE apr_time_from_sec(86400)

static const char *ids_text(apr_pool_t *p, const apr_array_header_t *ids)
{
    return ids->nelts ? apr_array_pstrcat(p, ids, ',') : "-";
}

static json_object *ids_json(const apr_array_header_t *ids)
{
    json_object *a = json_object_new_array();
    int i;
    for (i = 0; i < ids->nelts; ++i) {
        const char *id = APR_ARRAY_IDX(ids, i, const char *);
        json_object_array_add(a, json_object_new_string(id));
    }
    return a;
}

static json_object *grant_json(adm_ctx_t *ctx, const fs_grant_t *g)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "id", json_object_new_string(g->id));
    json_object_object_add(o, "owner", json_object_new_string(g->owner));
    json_object_object_add(o, "issued", adm_time_json(ctx->p, g->issued));
    json_object_object_add(o, "expires", adm_time_json(ctx->p, g->expires));
    json_object_object_add(o, "revoked", adm_time_json(ctx->p, g->revoked));
    json_object_object_add(o, "live", json_object_new_boolean(!g->revoked
                                                              && g->expires > ctx->now));
    json_object_object_add(o, "subscriptions", ids_json(g->sub_ids));
    return o;
}

static void grant_row(adm_ctx_t *ctx, adm_table_t *t, const fs_grant_t *g)
{
    const char *cols[] = {
        g->id, g->owner, adm_time_text(ctx->p, g->issued),
        adm_time_text(ctx->p, g->expires), adm_time_text(ctx->p, g->revoked),
        ids_text(ctx->p, g->sub_ids)
    };
    adm_table_add(t, cols);
}

static const char *const grant_headers[] = {
    "ID", "OWNER", "ISSUED", "EXPIRES", "REVOKED", "SUBSCRIPTIONS"
};

static apr_status_t run_grants(adm_ctx_t *ctx)
{
    const char *user = apr_table_get(ctx->opts, "user");
    int all = apr_table_get(ctx->opts, "all") != NULL;
    adm_table_t *t = adm_table_make(ctx->p, 6, grant_headers);
    json_object *root = adm_json_root(ctx->p), *list = json_object_new_array();
    apr_array_header_t *grants;
    apr_status_t rv;
    int i;

    json_object_object_add(root, "grants", list);
    rv = fs_admin_grant_list(&ctx->store, ctx->p, user, all, ctx->now, &grants);
    if (rv != APR_SUCCESS) return adm_db_failed(rv, "list the grants");
    for (i = 0; i < grants->nelts; ++i) {
        const fs_grant_t *g = APR_ARRAY_IDX(grants, i, const fs_grant_t *);
        if (ctx->json) json_object_array_add(list, grant_json(ctx, g));
        else grant_row(ctx, t, g);
    }
    if (ctx->json) adm_json_print(root);
    else adm_table_print(t, all ? "no grants" : "no live grants");
    return APR_SUCCESS;
}

static void print_revoked(adm_ctx_t *ctx, const char *key, const char *value, int count,
                          const char *text)
{
    json_object *j;
    if (!ctx->json) {
        printf("%s\n", text);
        return;
    }
    j = adm_json_root(ctx->p);
    json_object_object_add(j, key, json_object_new_string(value));
    json_object_object_add(j, "revoked", json_object_new_int(count));
    adm_json_print(j);
}

static apr_status_t run_revoke(adm_ctx_t *ctx)
{
    const char *id = adm_arg(ctx, 0);
    fs_grant_t *g = NULL;
    apr_status_t rv;
    int count = 0;

    rv = fs_store_grant_get(&ctx->store, ctx->p, id, &g);
    if (rv == APR_NOTFOUND) {
        return adm_fail(rv, "no grant %s: see the ids with `" ADM_NAME " grants --all`",
                        id);
    }
    if (rv == APR_SUCCESS) {
        rv = fs_store_grant_revoke(&ctx->store, ctx->p, id, ctx->now, &count);
    }
    if (rv != APR_SUCCESS) {
        return adm_db_failed(rv, apr_pstrcat(ctx->p, "revoke grant ", id, NULL));
    }
    print_revoked(ctx, "grant", id, count, count
                  ? apr_psprintf(ctx->p, "revoked grant %s of %s", id, g->owner)
                  : apr_psprintf(ctx->p, "grant %s was already revoked at %s", id,
                                 adm_time_text(ctx->p, g->revoked)));
    return APR_SUCCESS;
}

static apr_status_t run_revoke_user(adm_ctx_t *ctx)
{
    const char *user = adm_arg(ctx, 0);
    apr_status_t rv;
    int count = 0;

    rv = fs_admin_grant_revoke_live(&ctx->store, ctx->p, user, ctx->now, &count);
    if (rv != APR_SUCCESS) {
        return adm_db_failed(rv, apr_pstrcat(ctx->p, "revoke the grants of ", user, NULL));
    }
    print_revoked(ctx, "user", user, count,
                  apr_psprintf(ctx->p, "revoked %d live grant%s of %s", count,
                               count == 1 ? "" : "s", user));
    return APR_SUCCESS;
}

static apr_status_t run_prune_grants(adm_ctx_t *ctx)
{
    apr_time_t before = ctx->now - ADM_GRANT_PRUNE_AGE;
    json_object *j;
    apr_status_t rv;
    int count = 0;

    rv = fs_store_grant_prune(&ctx->store, ctx->p, before, &count);
    if (rv != APR_SUCCESS) return adm_db_failed(rv, "prune the grants");
    if (ctx->json) {
        j = adm_json_root(ctx->p);
        json_object_object_add(j, "grants_deleted", json_object_new_int(count));
        json_object_object_add(j, "expired_before", adm_time_json(ctx->p, before));
        adm_json_print(j);
    }
    else {
        printf("deleted %d grant%s expired before %s\n", count, count == 1 ? "" : "s",
               adm_time_text(ctx->p, before));
    }
    return APR_SUCCESS;
}

static const apr_getopt_option_t grant_options[] = {
    { "user", 'u', 1, "USER: only the grants issued to USER" },
    { "all", 'a', 0, "also revoked and expired grants" },
    { NULL, 0, 0, NULL }
};

const adm_cmd_t adm_cmd_grants = {
    "grants", ADM_NEEDS_SCHEMA, grant_options, 0, 0, run_grants,
    "grants [--user USER] [--all]",
    "    List binding-token grants (one per $get-ws-binding-token answer; the id is\n"
    "    the token's jti), oldest first: id, owner, issued, expires, revoked, the\n"
    "    subscriptions it covers. Live ones only unless --all.",
};

const adm_cmd_t adm_cmd_revoke = {
    "revoke", ADM_NEEDS_SCHEMA, adm_no_options, 1, 1, run_revoke,
    "revoke GRANT_ID",
    "    Revoke one grant: its token no longer binds, and the notifier closes its\n"
    "    websockets at the next re-check. Revoking a revoked grant changes nothing.",
};

const adm_cmd_t adm_cmd_revoke_user = {
    "revoke-user", ADM_NEEDS_SCHEMA, adm_no_options, 1, 1, run_revoke_user,
    "revoke-user USER",
    "    Revoke every live grant of USER; print how many.",
};

const adm_cmd_t adm_cmd_prune_grants = {
    "prune-grants", ADM_NEEDS_SCHEMA, adm_no_options, 0, 0, run_prune_grants,
    "prune-grants",
    "    Delete the grants that expired more than a day ago (with their links).",
};
