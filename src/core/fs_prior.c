#include <string.h>
#include <apr_strings.h>

#include "fs_fhir.h"
#include "fs_json.h"
#include "fs_match.h"
#include "fs_prior.h"

/* The ids of one type that Bundle entries need, read together. */
typedef struct id_group_t {
    const char *type;
    apr_array_header_t *ids;      /* const char* */
} id_group_t;

typedef struct plan_t {
    apr_pool_t *p;
    const fs_topics_t *topics;
    apr_array_header_t *priors;   /* fs_prior_t*, the result */
    apr_array_header_t *groups;   /* id_group_t*, Bundles only (NULL: one write) */
    apr_hash_t *seen;             /* "Type/id", "Type?cond" already planned */
} plan_t;

static int updates_need_previous(const fs_topics_t *topics, const char *type)
{
    int i, n = topics ? fs_topics_count(topics) : 0;
    for (i = 0; i < n; ++i) {
        if (fs_topic_needs_previous(fs_topics_at(topics, i), type, FS_INTERACTION_UPDATE)) {
            return 1;
        }
    }
    return 0;
}

/* Deletes always (their filters are tested on the deleted resource); updates when a
 * topic tests the version before. */
static int wants_prior(const plan_t *pl, const char *method, const char *type)
{
    if (!strcmp(method, "DELETE")) return 1;
    if (strcmp(method, "PUT") && strcmp(method, "PATCH")) return 0;
    return updates_need_previous(pl->topics, type);
}

static fs_prior_t *add_prior(plan_t *pl, const char *type)
{
    fs_prior_t *pr = apr_pcalloc(pl->p, sizeof(*pr));
    pr->type = type;
    pr->found = apr_array_make(pl->p, 1, sizeof(json_object *));
    APR_ARRAY_PUSH(pl->priors, fs_prior_t *) = pr;
    return pr;
}

/* Percent-encode what may not stand in a URI query (RFC 3986), keeping existing escapes:
 * clients write Bundle entry URLs as "Patient?identifier=http://x|1". */
static const char *query_encoded(apr_pool_t *p, const char *q)
{
    static const char keep[] = "-._~!$&'()*+,;=:@/?%";
    static const char hex[] = "0123456789ABCDEF";
    char *out = apr_palloc(p, 3 * strlen(q) + 1), *o = out;
    for (; *q; ++q) {
        unsigned char c = (unsigned char)*q;
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
            || strchr(keep, c)) {
            *o++ = (char)c;
        } else {
            *o++ = '%';
            *o++ = hex[c >> 4];
            *o++ = hex[c & 15];
        }
    }
    *o = '\0';
    return out;
}

static int has_count_param(const char *q)
{
    const char *s = q;
    while ((s = strstr(s, "_count="))) {
        if (s == q || s[-1] == '&') return 1;
        ++s;
    }
    return 0;
}

static void plan_conditional(plan_t *pl, const char *type, const char *cond)
{
    fs_prior_t *pr;
    const char *key = apr_pstrcat(pl->p, type, "?", cond, NULL);

    if (apr_hash_get(pl->seen, key, APR_HASH_KEY_STRING)) return;
    apr_hash_set(pl->seen, key, APR_HASH_KEY_STRING, key);
    pr = add_prior(pl, type);
    pr->cond = cond;
    pr->query = query_encoded(pl->p, cond);
    if (!has_count_param(cond)) {
        pr->query = apr_psprintf(pl->p, "%s&_count=%d", pr->query, FS_PRIOR_SEARCH_COUNT);
    }
}

static void plan_instance(plan_t *pl, const char *type, const char *id)
{
    const char *key = apr_pstrcat(pl->p, type, "/", id, NULL);
    id_group_t *g = NULL;
    int i;

    if (apr_hash_get(pl->seen, key, APR_HASH_KEY_STRING)) return;
    apr_hash_set(pl->seen, key, APR_HASH_KEY_STRING, key);
    if (!pl->groups) {
        add_prior(pl, type)->id = id;
        return;
    }
    for (i = 0; i < pl->groups->nelts && !g; ++i) {
        id_group_t *each = APR_ARRAY_IDX(pl->groups, i, id_group_t *);
        if (!strcmp(each->type, type)) g = each;
    }
    if (!g) {
        g = apr_pcalloc(pl->p, sizeof(*g));
        g->type = type;
        g->ids = apr_array_make(pl->p, 4, sizeof(const char *));
        APR_ARRAY_PUSH(pl->groups, id_group_t *) = g;
    }
    APR_ARRAY_PUSH(g->ids, const char *) = id;
}

/* One write: "Type/id[?params]" or "Type?search" relative to the base; other URLs need
 * nothing. */
static void plan_write(plan_t *pl, const char *method, const char *url)
{
    apr_size_t n = strcspn(url, "/?");
    const char *type, *id;

    if (!fs_fhir_type_name(url, n)) return;
    type = apr_pstrmemdup(pl->p, url, n);
    if (!wants_prior(pl, method, type)) return;
    if (url[n] == '?') {
        if (url[n + 1]) plan_conditional(pl, type, url + n + 1);
        return;
    }
    if (url[n] != '/') return;
    id = apr_pstrmemdup(pl->p, url + n + 1, strcspn(url + n + 1, "?"));
    /* a valid id has no '/', '$' or '_history': plain instance URLs only */
    if (fs_fhir_id_valid(id)) plan_instance(pl, type, id);
}

/* A group's ids: a few read one by one, more FS_PRIOR_IDS_PER_SEARCH per `_id` search. */
static void plan_group(plan_t *pl, const id_group_t *g)
{
    int i, j;
    if (g->ids->nelts <= FS_PRIOR_READS_PER_TYPE) {
        for (i = 0; i < g->ids->nelts; ++i) {
            add_prior(pl, g->type)->id = APR_ARRAY_IDX(g->ids, i, const char *);
        }
        return;
    }
    for (i = 0; i < g->ids->nelts; i += FS_PRIOR_IDS_PER_SEARCH) {
        int end = i + FS_PRIOR_IDS_PER_SEARCH < g->ids->nelts ? i + FS_PRIOR_IDS_PER_SEARCH
                                                                : g->ids->nelts;
        const char *ids = APR_ARRAY_IDX(g->ids, i, const char *);
        for (j = i + 1; j < end; ++j) {
            ids = apr_pstrcat(pl->p, ids, ",", APR_ARRAY_IDX(g->ids, j, const char *), NULL);
        }
        add_prior(pl, g->type)->query = apr_psprintf(pl->p, "_id=%s&_count=%d", ids, end - i);
    }
}

static void plan_bundle(plan_t *pl, json_object *bundle)
{
    const char *rt = fs_json_get_str(bundle, "resourceType"), *bt = fs_json_get_str(bundle, "type");
    json_object *entries = fs_json_get_typed(bundle, "entry", json_type_array);
    size_t i, n = entries ? json_object_array_length(entries) : 0;
    int g;

    if (!rt || strcmp(rt, "Bundle") || !bt || (strcmp(bt, "transaction") && strcmp(bt, "batch"))) {
        return;
    }
    pl->groups = apr_array_make(pl->p, 2, sizeof(id_group_t *));
    for (i = 0; i < n; ++i) {
        json_object *rq = fs_json_get_typed(json_object_array_get_idx(entries, i), "request",
                                            json_type_object);
        const char *method = fs_json_get_str(rq, "method"), *url = fs_json_get_str(rq, "url");
        if (method && url) plan_write(pl, method, url);
    }
    for (g = 0; g < pl->groups->nelts; ++g) {
        plan_group(pl, APR_ARRAY_IDX(pl->groups, g, id_group_t *));
    }
}

apr_status_t fs_prior_plan(apr_array_header_t **ppriors, apr_pool_t *p, const char *method,
                           const char *path, json_object *bundle, const fs_topics_t *topics)
{
    plan_t pl;

    memset(&pl, 0, sizeof(pl));
    pl.p = p;
    pl.topics = topics;
    pl.priors = apr_array_make(p, 1, sizeof(fs_prior_t *));
    pl.seen = apr_hash_make(p);
    if (*path) plan_write(&pl, method, path);
    else if (!strcmp(method, "POST") && bundle) plan_bundle(&pl, bundle);
    *ppriors = pl.priors;
    return APR_SUCCESS;
}

/* ---- answers ---------------------------------------------------------------- */

static int is_resource_of(json_object *j, const char *type)
{
    const char *rt = fs_json_get_str(j, "resourceType");
    return rt && !strcmp(rt, type) && fs_json_get_str(j, "id");
}

/* A searchset's matches (not _include'd resources nor outcomes); complete without `next`. */
static void answer_search(fs_prior_t *pr, json_object *bundle)
{
    json_object *entries = fs_json_get_typed(bundle, "entry", json_type_array);
    json_object *links = fs_json_get_typed(bundle, "link", json_type_array);
    size_t i, n = entries ? json_object_array_length(entries) : 0;
    const char *rt = fs_json_get_str(bundle, "resourceType");

    if (!rt || strcmp(rt, "Bundle")) return;
    for (i = 0; i < n; ++i) {
        json_object *e = json_object_array_get_idx(entries, i);
        json_object *res = fs_json_get_typed(e, "resource", json_type_object);
        const char *mode = fs_json_get_str(fs_json_get_typed(e, "search", json_type_object),
                                           "mode");
        if ((!mode || !strcmp(mode, "match")) && is_resource_of(res, pr->type)) {
            APR_ARRAY_PUSH(pr->found, json_object *) = res;
        }
    }
    for (i = 0; links && i < json_object_array_length(links); ++i) {
        const char *rel = fs_json_get_str(json_object_array_get_idx(links, i), "relation");
        if (rel && !strcmp(rel, "next")) return;   /* more than one page: not all known */
    }
    pr->complete = 1;
}

void fs_prior_answer(fs_prior_t *prior, apr_pool_t *p, int status, const char *body,
                     apr_size_t len, int complete)
{
    json_object *j = NULL;
    const char *err;

    prior->complete = 0;
    if (!prior->found) prior->found = apr_array_make(p, 1, sizeof(json_object *));
    if (prior->id && (status == 404 || status == 410)) {
        prior->complete = 1;   /* it did not exist */
        return;
    }
    if (status != 200 || !complete || !body || !len
        || APR_SUCCESS != fs_json_parse(&j, p, body, len, &err) || !j) {
        return;
    }
    if (!prior->id) {
        answer_search(prior, j);
    } else if (is_resource_of(j, prior->type) && !strcmp(fs_json_get_str(j, "id"), prior->id)) {
        APR_ARRAY_PUSH(prior->found, json_object *) = j;
        prior->complete = 1;
    }
}

/* ---- lookups ---------------------------------------------------------------- */

apr_hash_t *fs_prior_versions(apr_pool_t *p, const apr_array_header_t *priors)
{
    apr_hash_t *versions = apr_hash_make(p);
    int i, j;
    for (i = 0; priors && i < priors->nelts; ++i) {
        const fs_prior_t *pr = APR_ARRAY_IDX(priors, i, const fs_prior_t *);
        for (j = 0; pr->found && j < pr->found->nelts; ++j) {
            json_object *res = APR_ARRAY_IDX(pr->found, j, json_object *);
            const char *key = apr_pstrcat(p, pr->type, "/", fs_json_get_str(res, "id"), NULL);
            apr_hash_set(versions, key, APR_HASH_KEY_STRING, res);
        }
    }
    return versions;
}

json_object *fs_prior_version(apr_hash_t *versions, const char *type, const char *id)
{
    char key[256];
    if (!versions || !type || !id || strlen(type) + strlen(id) + 2 > sizeof(key)) return NULL;
    apr_snprintf(key, sizeof(key), "%s/%s", type, id);
    return apr_hash_get(versions, key, APR_HASH_KEY_STRING);
}

const fs_prior_t *fs_prior_of_cond(const apr_array_header_t *priors, const char *type,
                                   const char *cond)
{
    int i;
    for (i = 0; priors && i < priors->nelts; ++i) {
        const fs_prior_t *pr = APR_ARRAY_IDX(priors, i, const fs_prior_t *);
        if (pr->cond && !strcmp(pr->type, type) && !strcmp(pr->cond, cond)) return pr;
    }
    return NULL;
}
