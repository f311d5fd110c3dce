#include <string.h>
#include <apr_strings.h>
#include <apr_lib.h>

#include "fs_json.h"
#include "fs_time.h"
#include "fs_filter.h"
#include "fs_topic.h"
#include "fs_sub.h"

/* A parse in progress: what has been read so far and where problems go. */
typedef struct parse_ctx_t {
    apr_pool_t *p;
    const fs_sub_policy_t *policy;
    fs_sub_problem_t *prob;
    fs_sub_t *sub;
    json_object *body;
    const fs_topic_t *topic;
    apr_array_header_t *filters;   /* fs_filter_t* */
    const char *content;           /* requested payload content, NULL = default */
} parse_ctx_t;

static apr_status_t fail(parse_ctx_t *ctx, int http_status, const char *code,
                         const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ctx->prob->http_status = http_status;
    ctx->prob->code = code;
    ctx->prob->text = apr_pvsprintf(ctx->p, fmt, ap);
    va_end(ap);
    return APR_EINVAL;
}

unsigned fs_sub_content_bit(const char *code)
{
    if (!code) return 0;
    if (!strcmp(code, "empty")) return FS_CONTENT_EMPTY;
    if (!strcmp(code, "id-only")) return FS_CONTENT_ID_ONLY;
    if (!strcmp(code, "full-resource")) return FS_CONTENT_FULL;
    return 0;
}

/* ---- generic element readers ------------------------------------------- */

/* The value[x] of the first extension with url in obj.extension, or NULL. */
static json_object *ext_value(json_object *obj, const char *url, const char *vkey)
{
    json_object *exts = fs_json_get_typed(obj, "extension", json_type_array);
    size_t i;
    for (i = 0; exts && i < json_object_array_length(exts); ++i) {
        json_object *e = json_object_array_get_idx(exts, i), *v;
        const char *u = fs_json_get_str(e, "url");
        if (u && !strcmp(u, url) && json_object_object_get_ex(e, vkey, &v)) return v;
    }
    return NULL;
}

static apr_status_t read_count(parse_ctx_t *ctx, json_object *v, const char *what,
                               apr_int64_t min, apr_int64_t max, apr_int64_t *pval)
{
    apr_int64_t n;
    if (!v) return APR_SUCCESS;
    if (!json_object_is_type(v, json_type_int)) {
        return fail(ctx, 400, "invalid", "%s must be an integer", what);
    }
    n = json_object_get_int64(v);
    if (n < min || n > max) {
        return fail(ctx, 422, "business-rule", "%s must be between %" APR_INT64_T_FMT
                    " and %" APR_INT64_T_FMT " (got %" APR_INT64_T_FMT ")",
                    what, min, max, n);
    }
    *pval = n;
    return APR_SUCCESS;
}

static int mime_is_json(const char *mime)
{
    apr_size_t n = strcspn(mime, "; ");
    return (n == strlen("application/fhir+json") && !strncmp(mime, "application/fhir+json", n))
        || (n == strlen("application/json") && !strncmp(mime, "application/json", n));
}

static apr_status_t read_content_type(parse_ctx_t *ctx, json_object *v, const char *what)
{
    const char *mime;
    if (!v) {
        ctx->sub->content_type = "application/fhir+json";
        return APR_SUCCESS;
    }
    if (!json_object_is_type(v, json_type_string)) {
        return fail(ctx, 400, "invalid", "%s must be a string", what);
    }
    mime = json_object_get_string(v);
    if (!mime_is_json(mime)) {
        return fail(ctx, 422, "not-supported", "%s '%s' is not supported: notifications "
                    "are sent as application/fhir+json", what, mime);
    }
    ctx->sub->content_type = apr_pstrdup(ctx->p, mime);
    return APR_SUCCESS;
}

static apr_status_t read_status(parse_ctx_t *ctx)
{
    json_object *v;
    const char *status;

    if (!json_object_object_get_ex(ctx->body, "status", &v)) {
        ctx->sub->status = "active";
        return APR_SUCCESS;
    }
    if (!json_object_is_type(v, json_type_string)) {
        return fail(ctx, 400, "invalid", "Subscription.status must be a string");
    }
    status = json_object_get_string(v);
    if (!fs_fhir_status_code_valid(ctx->policy->version, status)) {
        return fail(ctx, 400, "code-invalid", "Subscription.status '%s' is not a valid "
                    "subscription status code", status);
    }
    if (!strcmp(status, "requested") || !strcmp(status, "active")) {
        /* No handshake is needed at creation for websockets: active right away. */
        ctx->sub->status = "active";
    }
    else if (!strcmp(status, "off")) {
        ctx->sub->status = "off";
    }
    else {
        return fail(ctx, 422, "business-rule", "Subscription.status '%s' is set by the "
                    "server, a client may ask for 'requested', 'active' or 'off'", status);
    }
    return APR_SUCCESS;
}

static apr_status_t read_end(parse_ctx_t *ctx, apr_time_t now)
{
    json_object *v;
    if (!json_object_object_get_ex(ctx->body, "end", &v)) return APR_SUCCESS;
    if (!json_object_is_type(v, json_type_string)
        || APR_SUCCESS != fs_time_parse(&ctx->sub->end, json_object_get_string(v))) {
        return fail(ctx, 400, "invalid", "Subscription.end must be a FHIR instant");
    }
    if (ctx->sub->end <= now) {
        return fail(ctx, 422, "business-rule", "Subscription.end '%s' is in the past",
                    json_object_get_string(v));
    }
    return APR_SUCCESS;
}

static apr_status_t check_channel_code(parse_ctx_t *ctx, const char *code)
{
    static const char *const known[] = { "rest-hook", "email", "sms", "message", NULL };
    const char *const *k;
    if (!strcmp(code, "websocket")) return APR_SUCCESS;
    for (k = known; *k; ++k) {
        if (!strcmp(code, *k)) {
            return fail(ctx, 422, "not-supported", "channel type '%s' is not supported "
                        "by this server; only 'websocket' is", code);
        }
    }
    return fail(ctx, 400, "code-invalid", "unknown channel type '%s'", code);
}

/* ---- topics, filters and content --------------------------------------- */

static apr_status_t resolve_topic(parse_ctx_t *ctx, const char *url)
{
    ctx->topic = ctx->policy->topics ? fs_topics_get(ctx->policy->topics, url) : NULL;
    if (!ctx->topic) {
        return fail(ctx, 422, "not-found", "unknown SubscriptionTopic '%s': this server "
                    "supports the topics listed in its CapabilityStatement", url);
    }
    ctx->sub->topic = ctx->topic->url;
    ctx->sub->criteria = ctx->topic->url;
    return APR_SUCCESS;
}

static apr_status_t add_topic_filter(parse_ctx_t *ctx, fs_filter_t *f)
{
    const char *err = NULL;
    if (APR_SUCCESS != fs_filter_check_topic(f, ctx->topic, ctx->p, &err)) {
        return fail(ctx, 422, "not-supported", "%s", err);
    }
    APR_ARRAY_PUSH(ctx->filters, fs_filter_t *) = f;
    return APR_SUCCESS;
}

static apr_status_t add_query_filters(parse_ctx_t *ctx, const char *criteria,
                                      const char *default_type)
{
    apr_array_header_t *parsed = apr_array_make(ctx->p, 2, sizeof(fs_filter_t *));
    const char *err = NULL;
    apr_status_t rv;
    int i;

    if (APR_SUCCESS != fs_filter_parse_query(parsed, ctx->p, criteria, default_type, &err)) {
        return fail(ctx, 422, "not-supported", "filter '%s': %s", criteria, err);
    }
    for (i = 0; i < parsed->nelts; ++i) {
        fs_filter_t *f = APR_ARRAY_IDX(parsed, i, fs_filter_t *);
        if (APR_SUCCESS != (rv = add_topic_filter(ctx, f))) return rv;
    }
    return APR_SUCCESS;
}

static apr_status_t finish_content(parse_ctx_t *ctx, const char *dflt)
{
    const char *content = ctx->content ? ctx->content : dflt;
    unsigned bit = fs_sub_content_bit(content);
    if (!bit) {
        return fail(ctx, 400, "code-invalid", "payload content '%s' is not one of empty, "
                    "id-only, full-resource", content);
    }
    if (!(ctx->policy->allowed_content & bit)) {
        return fail(ctx, 422, "forbidden", "payload content '%s' is not allowed at this "
                    "endpoint", content);
    }
    ctx->sub->content = content;
    return APR_SUCCESS;
}

/* Classic R4 subscriptions carry no content code: full-resource when the location
 * allows it (what Medplum's clients expect), else the richest level it allows. */
static const char *classic_default_content(const fs_sub_policy_t *policy)
{
    if (policy->allowed_content & FS_CONTENT_FULL) return "full-resource";
    if (policy->allowed_content & FS_CONTENT_ID_ONLY) return "id-only";
    return "empty";
}

/* ---- R4 (backport profile and classic criteria) ------------------------- */

static int looks_like_url(const char *s)
{
    return !strncmp(s, "http://", 7) || !strncmp(s, "https://", 8) || !strncmp(s, "urn:", 4);
}

static int looks_like_search(const char *s)
{
    const char *q = s;
    if (!apr_isupper(*q)) return 0;
    while (apr_isalpha(*q)) ++q;
    return *q == '\0' || *q == '?';
}

static apr_status_t read_r4_filters(parse_ctx_t *ctx)
{
    json_object *meta = fs_json_get_typed(ctx->body, "_criteria", json_type_object);
    json_object *exts = fs_json_get_typed(meta, "extension", json_type_array);
    apr_status_t rv;
    size_t i;

    for (i = 0; exts && i < json_object_array_length(exts); ++i) {
        json_object *e = json_object_array_get_idx(exts, i), *v;
        const char *url = fs_json_get_str(e, "url");
        if (!url || strcmp(url, FS_URL_EXT_FILTER_CRITERIA)) continue;
        if (!json_object_object_get_ex(e, "valueString", &v)
            || !json_object_is_type(v, json_type_string)) {
            return fail(ctx, 400, "invalid", "backport-filter-criteria needs a valueString");
        }
        rv = add_query_filters(ctx, json_object_get_string(v),
                               fs_topic_default_type(ctx->topic));
        if (rv != APR_SUCCESS) return rv;
    }
    return APR_SUCCESS;
}

static apr_status_t read_r4_criteria(parse_ctx_t *ctx)
{
    const char *criteria = fs_json_get_str(ctx->body, "criteria");
    apr_status_t rv;

    if (!criteria || !*criteria) {
        return fail(ctx, 400, "required", "Subscription.criteria is required: a "
                    "SubscriptionTopic canonical (backport) or a search such as "
                    "Observation?code=1234-5");
    }
    if (looks_like_url(criteria)) {
        ctx->sub->shape = FS_SHAPE_BACKPORT;
        if (APR_SUCCESS != (rv = resolve_topic(ctx, criteria))) return rv;
        return read_r4_filters(ctx);
    }
    if (looks_like_search(criteria)) {
        apr_array_header_t *parsed = apr_array_make(ctx->p, 2, sizeof(fs_filter_t *));
        const char *type = NULL, *err = NULL;
        ctx->sub->shape = FS_SHAPE_CLASSIC;
        ctx->sub->criteria = criteria;
        if (APR_SUCCESS != fs_filter_parse_criteria(&type, parsed, ctx->p, criteria, &err)) {
            return fail(ctx, 422, "not-supported", "criteria '%s': %s", criteria, err);
        }
        apr_array_cat(ctx->filters, parsed);
        return APR_SUCCESS;
    }
    return fail(ctx, 400, "invalid", "Subscription.criteria '%s' is neither a "
                "SubscriptionTopic canonical URL nor a search of the form Type?param=value",
                criteria);
}

static apr_status_t read_r4_channel(parse_ctx_t *ctx)
{
    json_object *ch = fs_json_get_typed(ctx->body, "channel", json_type_object);
    json_object *payload_meta, *v;
    const char *type;
    apr_status_t rv;

    if (!ch) return fail(ctx, 400, "required", "Subscription.channel is required");
    if (ext_value(ch, FS_URL_EXT_CHANNEL_TYPE, "valueCoding")) {
        return fail(ctx, 422, "not-supported", "custom channel types "
                    "(backport-channel-type) are not supported; only 'websocket' is");
    }
    if (!(type = fs_json_get_str(ch, "type"))) {
        return fail(ctx, 400, "required", "Subscription.channel.type is required");
    }
    if (APR_SUCCESS != (rv = check_channel_code(ctx, type))) return rv;
    ctx->sub->channel_type = "websocket";
    if (!json_object_object_get_ex(ch, "payload", &v)) v = NULL;
    if (APR_SUCCESS != (rv = read_content_type(ctx, v, "Subscription.channel.payload"))) {
        return rv;
    }
    payload_meta = fs_json_get_typed(ch, "_payload", json_type_object);
    if ((v = ext_value(payload_meta, FS_URL_EXT_PAYLOAD_CONTENT, "valueCode"))) {
        if (!json_object_is_type(v, json_type_string)) {
            return fail(ctx, 400, "invalid", "backport-payload-content needs a valueCode");
        }
        ctx->content = json_object_get_string(v);
    }
    if (APR_SUCCESS != (rv = read_count(ctx, ext_value(ch, FS_URL_EXT_HEARTBEAT_PERIOD,
        "valueUnsignedInt"), "backport-heartbeat-period", ctx->policy->min_heartbeat,
        ctx->policy->max_heartbeat, &ctx->sub->heartbeat_period))) return rv;
    if (APR_SUCCESS != (rv = read_count(ctx, ext_value(ch, FS_URL_EXT_TIMEOUT,
        "valueUnsignedInt"), "backport-timeout", 0, 86400, &ctx->sub->timeout))) return rv;
    return read_count(ctx, ext_value(ch, FS_URL_EXT_MAX_COUNT, "valuePositiveInt"),
                      "backport-max-count", 1, 1000, &ctx->sub->max_count);
}

static apr_status_t parse_r4(parse_ctx_t *ctx)
{
    apr_status_t rv;
    if (json_object_object_get_ex(ctx->body, "topic", NULL)
        || json_object_object_get_ex(ctx->body, "channelType", NULL)) {
        return fail(ctx, 400, "structure", "this is an R4 endpoint: R5 Subscription "
                    "elements (topic, channelType) are not valid here");
    }
    if (APR_SUCCESS != (rv = read_r4_channel(ctx))) return rv;
    if (APR_SUCCESS != (rv = read_r4_criteria(ctx))) return rv;
    return finish_content(ctx, ctx->sub->shape == FS_SHAPE_CLASSIC
                          ? classic_default_content(ctx->policy) : "id-only");
}

/* ---- R5 ----------------------------------------------------------------- */

static apr_status_t read_r5_channel(parse_ctx_t *ctx)
{
    json_object *ct = fs_json_get_typed(ctx->body, "channelType", json_type_object);
    const char *system, *code;
    json_object *v;
    apr_status_t rv;

    if (!ct || !(code = fs_json_get_str(ct, "code"))) {
        return fail(ctx, 400, "required", "Subscription.channelType.code is required");
    }
    system = fs_json_get_str(ct, "system");
    if (system && strcmp(system, FS_URL_CS_CHANNEL_TYPE)) {
        return fail(ctx, 422, "not-supported", "channel type system '%s' is not supported; "
                    "use %s", system, FS_URL_CS_CHANNEL_TYPE);
    }
    if (APR_SUCCESS != (rv = check_channel_code(ctx, code))) return rv;
    ctx->sub->channel_type = "websocket";
    if (!json_object_object_get_ex(ctx->body, "contentType", &v)) v = NULL;
    if (APR_SUCCESS != (rv = read_content_type(ctx, v, "Subscription.contentType"))) {
        return rv;
    }
    if (json_object_object_get_ex(ctx->body, "content", &v)) {
        if (!json_object_is_type(v, json_type_string)) {
            return fail(ctx, 400, "invalid", "Subscription.content must be a code");
        }
        ctx->content = json_object_get_string(v);
    }
    if (!json_object_object_get_ex(ctx->body, "heartbeatPeriod", &v)) v = NULL;
    if (APR_SUCCESS != (rv = read_count(ctx, v, "Subscription.heartbeatPeriod",
        ctx->policy->min_heartbeat, ctx->policy->max_heartbeat,
        &ctx->sub->heartbeat_period))) return rv;
    if (!json_object_object_get_ex(ctx->body, "timeout", &v)) v = NULL;
    if (APR_SUCCESS != (rv = read_count(ctx, v, "Subscription.timeout", 0, 86400,
                                        &ctx->sub->timeout))) return rv;
    if (!json_object_object_get_ex(ctx->body, "maxCount", &v)) v = NULL;
    return read_count(ctx, v, "Subscription.maxCount", 1, 1000, &ctx->sub->max_count);
}

static apr_status_t read_r5_filters(parse_ctx_t *ctx)
{
    json_object *list, *v;
    const char *err = NULL;
    apr_status_t rv;
    size_t i;

    if (!json_object_object_get_ex(ctx->body, "filterBy", &v)) return APR_SUCCESS;
    if (!(list = fs_json_get_typed(ctx->body, "filterBy", json_type_array))) {
        return fail(ctx, 400, "invalid", "Subscription.filterBy must be an array");
    }
    for (i = 0; i < json_object_array_length(list); ++i) {
        fs_filter_t *f = NULL;
        if (APR_SUCCESS != fs_filter_from_r5(&f, ctx->p, json_object_array_get_idx(list, i),
                                             fs_topic_default_type(ctx->topic), &err)) {
            return fail(ctx, 422, "not-supported", "Subscription.filterBy[%d]: %s",
                        (int)i, err);
        }
        if (APR_SUCCESS != (rv = add_topic_filter(ctx, f))) return rv;
    }
    return APR_SUCCESS;
}

static apr_status_t parse_r5(parse_ctx_t *ctx)
{
    const char *topic = fs_json_get_str(ctx->body, "topic");
    apr_status_t rv;

    if (json_object_object_get_ex(ctx->body, "criteria", NULL)
        || json_object_object_get_ex(ctx->body, "channel", NULL)) {
        return fail(ctx, 400, "structure", "this is an R5 endpoint: R4 Subscription "
                    "elements (criteria, channel) are not valid here");
    }
    if (!topic || !*topic) {
        return fail(ctx, 400, "required", "Subscription.topic is required");
    }
    ctx->sub->shape = FS_SHAPE_R5;
    if (APR_SUCCESS != (rv = resolve_topic(ctx, topic))) return rv;
    if (APR_SUCCESS != (rv = read_r5_channel(ctx))) return rv;
    if (APR_SUCCESS != (rv = read_r5_filters(ctx))) return rv;
    return finish_content(ctx, "id-only");
}

/* ---- entry points ------------------------------------------------------- */

apr_status_t fs_sub_parse(fs_sub_t **psub, fs_sub_problem_t *prob, apr_pool_t *p,
                          json_object *body, const fs_sub_policy_t *policy,
                          apr_time_t now)
{
    parse_ctx_t ctx;
    const char *rtype = fs_json_get_str(body, "resourceType"), *nul_at;
    apr_status_t rv;

    memset(&ctx, 0, sizeof(ctx));
    ctx.p = p;
    ctx.policy = policy;
    ctx.prob = prob;
    ctx.body = body;
    ctx.sub = apr_pcalloc(p, sizeof(fs_sub_t));
    ctx.filters = apr_array_make(p, 2, sizeof(fs_filter_t *));
    *psub = NULL;

    if (!json_object_is_type(body, json_type_object)) {
        return fail(&ctx, 400, "structure", "the body must be a JSON object");
    }
    if ((nul_at = fs_json_find_nul(p, body))) {
        return fail(&ctx, 400, "structure", "%s: strings must not contain NUL characters",
                    nul_at);
    }
    if (!rtype || strcmp(rtype, "Subscription")) {
        return fail(&ctx, 400, "invalid", "resourceType must be 'Subscription' (got '%s')",
                    rtype ? rtype : "(none)");
    }
    if (APR_SUCCESS != (rv = read_status(&ctx))) return rv;
    if (APR_SUCCESS != (rv = read_end(&ctx, now))) return rv;
    rv = (policy->version == FS_FHIR_R5) ? parse_r5(&ctx) : parse_r4(&ctx);
    if (rv != APR_SUCCESS) return rv;
    ctx.sub->filters_json = fs_filters_to_json(p, ctx.filters);
    ctx.sub->error = "";
    json_object_object_del(body, "meta");
    ctx.sub->resource_json = fs_json_str(p, body);
    *psub = ctx.sub;
    return APR_SUCCESS;
}

const char *fs_sub_effective_status(const fs_sub_t *sub, apr_time_t now)
{
    if (sub->end && sub->end <= now) return "off";
    return sub->status;
}

apr_status_t fs_sub_to_json(json_object **pj, apr_pool_t *p, const fs_sub_t *sub,
                            apr_time_t now)
{
    json_object *j, *meta;
    const char *err;
    apr_status_t rv;

    rv = fs_json_parse(&j, p, sub->resource_json, strlen(sub->resource_json), &err);
    if (rv != APR_SUCCESS) return rv;
    fs_json_add_str(j, "id", sub->id);
    fs_json_add_str(j, "status", fs_sub_effective_status(sub, now));
    meta = json_object_new_object();
    fs_json_add_str(meta, "versionId", apr_psprintf(p, "%" APR_INT64_T_FMT,
                                                    sub->version_id));
    fs_json_add_str(meta, "lastUpdated", fs_time_instant(p, sub->updated));
    if (sub->shape == FS_SHAPE_BACKPORT) {
        json_object *profiles = json_object_new_array();
        json_object_array_add(profiles, json_object_new_string(FS_URL_BACKPORT_SUBSCRIPTION));
        json_object_object_add(meta, "profile", profiles);
    }
    json_object_object_add(j, "meta", meta);
    *pj = j;
    return APR_SUCCESS;
}
