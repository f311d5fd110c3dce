/* Command: subscriptions (every user's, or one user's). */
#include <stdio.h>
#include <string.h>
#include <apr_strings.h>

#include "fs_admin.h"
#include "fs_sub.h"
#include "adm.h"
#include "adm_db.h"
#include "adm_out.h"

static const char *const statuses[] = { "requested", "active", "error", "off", NULL };

static apr_status_t check_status(const char *status)
{
    int i;
    if (!status) return APR_SUCCESS;
    for (i = 0; statuses[i]; ++i) {
        if (!strcmp(status, statuses[i])) return APR_SUCCESS;
    }
    return adm_usage("--status wants requested, active, error or off, not \"%s\"", status);
}

/* The topic canonical, or the classic criteria. */
static const char *what(const fs_sub_t *s)
{
    return s->topic && *s->topic ? s->topic : s->criteria;
}

static json_object *sub_json(adm_ctx_t *ctx, const fs_sub_t *s, const char *status)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "id", json_object_new_string(s->id));
    json_object_object_add(o, "owner", json_object_new_string(s->owner));
    json_object_object_add(o, "status", json_object_new_string(status));
    json_object_object_add(o, "shape", json_object_new_string(adm_shape_name(s->shape)));
    json_object_object_add(o, "channel_type", json_object_new_string(s->channel_type));
    json_object_object_add(o, "topic", s->topic && *s->topic
                           ? json_object_new_string(s->topic) : NULL);
    json_object_object_add(o, "criteria", json_object_new_string(s->criteria));
    json_object_object_add(o, "events_since_start",
                           json_object_new_int64(s->events_since_start));
    json_object_object_add(o, "last_delivery", adm_time_json(ctx->p, s->last_delivery));
    json_object_object_add(o, "created", adm_time_json(ctx->p, s->created));
    json_object_object_add(o, "end", adm_time_json(ctx->p, s->end));
    json_object_object_add(o, "error", json_object_new_string(s->error ? s->error : ""));
    return o;
}

static void sub_row(adm_ctx_t *ctx, adm_table_t *t, const fs_sub_t *s, const char *status)
{
    const char *cols[] = {
        s->id, s->owner, status, adm_shape_name(s->shape), what(s),
        apr_psprintf(ctx->p, "%" APR_INT64_T_FMT, s->events_since_start),
        adm_time_text(ctx->p, s->last_delivery), adm_time_text(ctx->p, s->created)
    };
    adm_table_add(t, cols);
}

static const char *const headers[] = {
    "ID", "OWNER", "STATUS", "SHAPE", "TOPIC/CRITERIA", "EVENTS", "LAST DELIVERY", "CREATED"
};

static apr_status_t run_subscriptions(adm_ctx_t *ctx)
{
    const char *user = apr_table_get(ctx->opts, "user");
    const char *want = apr_table_get(ctx->opts, "status");
    adm_table_t *t = adm_table_make(ctx->p, 8, headers);
    json_object *list = json_object_new_array(), *root;
    apr_array_header_t *subs;
    apr_status_t rv;
    int i;

    root = adm_json_root(ctx->p);
    json_object_object_add(root, "subscriptions", list);
    if (APR_SUCCESS != (rv = check_status(want))) return rv;
    if (APR_SUCCESS != (rv = fs_admin_sub_list(&ctx->store, ctx->p, user, &subs))) {
        return adm_db_failed(rv, "list the subscriptions");
    }
    for (i = 0; i < subs->nelts; ++i) {
        const fs_sub_t *s = APR_ARRAY_IDX(subs, i, const fs_sub_t *);
        /* as clients read it: an ended subscription is off */
        const char *status = fs_sub_effective_status(s, ctx->now);
        if (want && strcmp(want, status)) continue;
        if (ctx->json) json_object_array_add(list, sub_json(ctx, s, status));
        else sub_row(ctx, t, s, status);
    }
    if (ctx->json) adm_json_print(root);
    else adm_table_print(t, "no subscriptions");
    return APR_SUCCESS;
}

static const apr_getopt_option_t options[] = {
    { "user", 'u', 1, "USER: only the subscriptions USER created (their owner)" },
    { "status", 's', 1, "STATUS: only those with this status: requested, active,\n"
      "                             error or off" },
    { NULL, 0, 0, NULL }
};

const adm_cmd_t adm_cmd_subscriptions = {
    "subscriptions", ADM_NEEDS_SCHEMA, options, 0, 0, run_subscriptions,
    "subscriptions [--user USER] [--status STATUS]",
    "    List subscriptions, oldest first: id, owner, status (an ended one is off),\n"
    "    shape (backport, classic, r5), topic or criteria, events numbered so far,\n"
    "    last delivery to a websocket, creation time.",
};
