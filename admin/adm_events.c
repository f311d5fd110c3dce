/* Commands of the stored events: backlog, prune. Events are kept for $events and for
 * notifiers catching up; nothing else deletes them, so prune runs from cron. */
#include <stdio.h>
#include <string.h>
#include <apr_strings.h>

#include "fs_admin.h"
#include "fs_sub.h"
#include "adm.h"
#include "adm_db.h"
#include "adm_out.h"

/* A notifier refreshes last_bound_ms every RevalidateInterval (30 s by default): a
 * shorter window would take bound subscriptions for unbound ones. */
#define ADM_PRUNE_MIN_AGE 60
#define ADM_PRUNE_MAX_AGE (100LL * 365 * 86400)
#define ADM_PRUNE_MAX_KEEP 1000000000LL

static const char *effective_status(const fs_admin_backlog_t *b, apr_time_t now)
{
    fs_sub_t s;
    memset(&s, 0, sizeof(s));
    s.status = b->status;
    s.end = b->end;
    return fs_sub_effective_status(&s, now);
}

static const char *i64(apr_pool_t *p, apr_int64_t v)
{
    return apr_psprintf(p, "%" APR_INT64_T_FMT, v);
}

static json_object *backlog_json(adm_ctx_t *ctx, const fs_admin_backlog_t *b)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "id", json_object_new_string(b->id));
    json_object_object_add(o, "owner", json_object_new_string(b->owner));
    json_object_object_add(o, "status",
                           json_object_new_string(effective_status(b, ctx->now)));
    json_object_object_add(o, "events_since_start",
                           json_object_new_int64(b->events_since_start));
    json_object_object_add(o, "last_delivery", adm_time_json(ctx->p, b->last_delivery));
    json_object_object_add(o, "last_bound", adm_time_json(ctx->p, b->last_bound));
    json_object_object_add(o, "stored_events", json_object_new_int64(b->stored));
    json_object_object_add(o, "stored_after_last_delivery",
                           json_object_new_int64(b->undelivered));
    json_object_object_add(o, "oldest_event", adm_time_json(ctx->p, b->oldest));
    return o;
}

static void backlog_row(adm_ctx_t *ctx, adm_table_t *t, const fs_admin_backlog_t *b)
{
    const char *cols[] = {
        b->id, b->owner, effective_status(b, ctx->now), i64(ctx->p, b->events_since_start),
        adm_time_text(ctx->p, b->last_delivery), i64(ctx->p, b->stored),
        i64(ctx->p, b->undelivered), adm_time_text(ctx->p, b->oldest)
    };
    adm_table_add(t, cols);
}

static const char *const backlog_headers[] = {
    "ID", "OWNER", "STATUS", "EVENTS", "LAST DELIVERY", "STORED", "AFTER DELIVERY",
    "OLDEST STORED"
};

static apr_status_t run_backlog(adm_ctx_t *ctx)
{
    adm_table_t *t = adm_table_make(ctx->p, 8, backlog_headers);
    json_object *root = adm_json_root(ctx->p), *list = json_object_new_array();
    apr_array_header_t *rows;
    apr_status_t rv;
    int i;

    json_object_object_add(root, "subscriptions", list);
    if (APR_SUCCESS != (rv = fs_admin_backlog(&ctx->store, ctx->p, &rows))) {
        return adm_db_failed(rv, "read the backlog");
    }
    for (i = 0; i < rows->nelts; ++i) {
        const fs_admin_backlog_t *b = APR_ARRAY_IDX(rows, i, const fs_admin_backlog_t *);
        if (ctx->json) json_object_array_add(list, backlog_json(ctx, b));
        else backlog_row(ctx, t, b);
    }
    if (ctx->json) adm_json_print(root);
    else adm_table_print(t, "no subscriptions");
    return APR_SUCCESS;
}

static apr_status_t prune_args(adm_ctx_t *ctx, apr_int64_t *pseconds, apr_int64_t *pkeep)
{
    const char *age = apr_table_get(ctx->opts, "older-than");
    const char *keep = apr_table_get(ctx->opts, "keep");
    apr_status_t rv;

    *pkeep = 0;
    if (!age) return adm_usage("prune needs --older-than SECONDS (e.g. 604800 for a week)");
    rv = adm_parse_i64("--older-than", age, ADM_PRUNE_MIN_AGE, ADM_PRUNE_MAX_AGE, pseconds);
    if (rv == APR_SUCCESS && keep) {
        rv = adm_parse_i64("--keep", keep, 0, ADM_PRUNE_MAX_KEEP, pkeep);
    }
    return rv;
}

static void print_prune(adm_ctx_t *ctx, const fs_admin_prune_t *r, apr_time_t before,
                        apr_int64_t keep)
{
    apr_int64_t kept = r->events_old > r->events_deleted
                     ? r->events_old - r->events_deleted : 0;
    json_object *j;

    if (!ctx->json) {
        printf("deleted %" APR_INT64_T_FMT " events created before %s (kept %"
               APR_INT64_T_FMT " of them: newest %" APR_INT64_T_FMT " per subscription, "
               "or not yet delivered while bound)\n"
               "deleted %" APR_INT64_T_FMT " changes no event referenced any more\n",
               r->events_deleted, adm_time_text(ctx->p, before), kept, keep,
               r->changes_deleted);
        return;
    }
    j = adm_json_root(ctx->p);
    json_object_object_add(j, "created_before", adm_time_json(ctx->p, before));
    json_object_object_add(j, "keep", json_object_new_int64(keep));
    json_object_object_add(j, "events_deleted", json_object_new_int64(r->events_deleted));
    json_object_object_add(j, "events_kept", json_object_new_int64(kept));
    json_object_object_add(j, "changes_deleted", json_object_new_int64(r->changes_deleted));
    adm_json_print(j);
}

static apr_status_t run_prune(adm_ctx_t *ctx)
{
    apr_int64_t seconds = 0, keep = 0;
    fs_admin_prune_t result;
    apr_time_t before;
    apr_status_t rv;

    if (APR_SUCCESS != (rv = prune_args(ctx, &seconds, &keep))) return rv;
    before = ctx->now - apr_time_from_sec(seconds);
    rv = fs_admin_prune_events(&ctx->store, ctx->p, before, keep, &result);
    if (rv != APR_SUCCESS) {
        return adm_db_failed(rv, "prune the events (nothing was deleted)");
    }
    print_prune(ctx, &result, before, keep);
    return APR_SUCCESS;
}

/* Long options only: their values are above any character. */
#define OPT_OLDER_THAN 256
#define OPT_KEEP 257

static const apr_getopt_option_t prune_options[] = {
    { "older-than", OPT_OLDER_THAN, 1, "SECONDS: delete events created longer ago\n"
      "                             (required, at least 60)" },
    { "keep", OPT_KEEP, 1, "N: keep the newest N events of each subscription\n"
      "                             (default 0)" },
    { NULL, 0, 0, NULL }
};

const adm_cmd_t adm_cmd_backlog = {
    "backlog", ADM_NEEDS_SCHEMA, adm_no_options, 0, 0, run_backlog,
    "backlog",
    "    Per subscription: events numbered so far, last delivery, events stored,\n"
    "    how many of them were created after the last delivery, the oldest one's time.",
};

const adm_cmd_t adm_cmd_prune = {
    "prune", ADM_NEEDS_SCHEMA, prune_options, 0, 0, run_prune,
    "prune --older-than SECONDS [--keep N]",
    "    Delete the events created more than SECONDS ago, except the newest N (by\n"
    "    event number) of each subscription and, of a subscription bound to a\n"
    "    websocket within the last SECONDS, those created after its last delivery\n"
    "    (a notifier may not have sent them yet). Then delete the captured changes\n"
    "    no event refers to any more. One transaction; prints the counts. Give\n"
    "    SECONDS well above the notifier's RevalidateInterval (30 s by default).",
};
