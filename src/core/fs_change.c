#include <string.h>
#include <apr_strings.h>

#include "fs_fhir.h"
#include "fs_id.h"
#include "fs_json.h"
#include "fs_change.h"

/* One write, from a plain request or a Bundle entry, before it becomes a change. */
typedef struct write_t {
    const char *method;       /* upper case */
    const char *url;          /* relative request url, may carry a query */
    const char *status;       /* "201", "200 OK" ... */
    const char *location;     /* where the server says the resource is, or NULL */
    const char *etag;         /* W/"vid" or NULL */
    json_object *answered;    /* resource the server answered with, or NULL */
    json_object *sent;        /* resource the client sent, or NULL */
} write_t;

/* What fs_change_derive works with. */
typedef struct derive_t {
    apr_pool_t *p;
    const fs_capture_t *cap;
    apr_hash_t *versions;         /* fs_prior_versions of cap->priors */
    apr_time_t now;
    apr_array_header_t *out;      /* fs_change_t* */
    apr_status_t rv;              /* APR_INCOMPLETE once a change is known to be missing */
} derive_t;

/* "Type/id[/_history/vid]" in a path or URL, after any base: the last such run. */
static void parse_ref(apr_pool_t *p, const char *url, const char **ptype, const char **pid,
                      const char **pvid)
{
    char *copy = apr_pstrdup(p, url ? url : ""), *q, *parts[64], *state = NULL, *tok;
    int n = 0, i;

    *ptype = *pid = *pvid = NULL;
    if ((q = strchr(copy, '?'))) *q = '\0';
    for (tok = apr_strtok(copy, "/", &state); tok && n < 64;
         tok = apr_strtok(NULL, "/", &state)) {
        parts[n++] = tok;
    }
    for (i = n - 1; i >= 0; --i) {
        if (!fs_fhir_type_name(parts[i], strlen(parts[i]))) continue;
        *ptype = parts[i];
        if (i + 1 < n && strcmp(parts[i + 1], "_history")) *pid = parts[i + 1];
        if (i + 3 < n && !strcmp(parts[i + 2], "_history")) *pvid = parts[i + 3];
        return;
    }
}

/* The type a write addresses: the first segment of its URL ("Encounter?x=1" too). */
static const char *url_type(apr_pool_t *p, const char *url)
{
    apr_size_t n = strcspn(url, "/?");
    return fs_fhir_type_name(url, n) ? apr_pstrmemdup(p, url, n) : NULL;
}

static const char *etag_version(apr_pool_t *p, const char *etag)
{
    const char *s = etag, *e;
    if (!s) return NULL;
    if (!strncmp(s, "W/", 2)) s += 2;
    if (*s == '"') ++s;
    e = s + strcspn(s, "\"");
    return e > s ? apr_pstrmemdup(p, s, (apr_size_t)(e - s)) : NULL;
}

static json_object *resource_of_type(json_object *j, const char *type)
{
    const char *rt = fs_json_get_str(j, "resourceType");
    return (rt && type && !strcmp(rt, type)) ? j : NULL;
}

static const char *interaction_of(const write_t *w)
{
    if (!strcmp(w->method, "DELETE")) return "delete";
    if (!strcmp(w->method, "POST")) return "create";
    /* PUT may create (201); PATCH always updates. */
    return (!strcmp(w->method, "PUT") && !strncmp(w->status, "201", 3)) ? "create" : "update";
}

/* Only interactions that write a resource: POST Type[?cond], PUT|PATCH|DELETE
 * Type/id or Type?cond. Operations ($x), _search and _history are not writes. */
static int is_write(const write_t *w)
{
    apr_size_t path_len = strcspn(w->url, "?"), type_len = strcspn(w->url, "/?");
    int conditional = w->url[path_len] == '?';
    const char *id = w->url + type_len + 1;

    if (!fs_fhir_type_name(w->url, type_len)) return 0;
    /* A POST answered 200 created nothing (If-None-Exist found the resource). */
    if (!strcmp(w->method, "POST")) return type_len == path_len && !strncmp(w->status, "201", 3);
    if (strcmp(w->method, "PUT") && strcmp(w->method, "PATCH") && strcmp(w->method, "DELETE")) {
        return 0;
    }
    if (type_len == path_len) return conditional;
    return w->url[type_len] == '/' && *id != '$' && *id != '_'
           && !memchr(id, '/', path_len - type_len - 1);
}

static fs_change_t *change_from(apr_pool_t *p, const write_t *w, apr_time_t now)
{
    const char *type = url_type(p, w->url), *ltype, *lid, *lvid, *utype, *uid, *uvid;
    json_object *res;
    fs_change_t *c;

    if (!type || !is_write(w)) return NULL;
    parse_ref(p, w->location, &ltype, &lid, &lvid);
    parse_ref(p, w->url, &utype, &uid, &uvid);
    c = apr_pcalloc(p, sizeof(*c));
    c->interaction = interaction_of(w);
    res = resource_of_type(w->answered, type);
    if (!res && strcmp(c->interaction, "delete")) res = resource_of_type(w->sent, type);
    if (!strcmp(c->interaction, "delete")) res = NULL;
    c->resource_type = type;
    c->resource_id = res && fs_json_get_str(res, "id") ? fs_json_get_str(res, "id")
                     : (lid ? lid : uid);
    /* time-ordered: the change rows and their index entries of one moment share pages */
    if (!c->resource_id || APR_SUCCESS != fs_id_new_ordered(&c->id, p, now)) return NULL;
    c->version_id = lvid ? lvid : etag_version(p, w->etag);
    if (res) {
        json_object *meta = fs_json_get_typed(res, "meta", json_type_object);
        const char *vid = fs_json_get_str(meta, "versionId");
        if (vid) c->version_id = vid;
        /* The answer may lack the id a client-sent body lacked too: fill it in. */
        if (!fs_json_get_str(res, "id")) fs_json_add_str(res, "id", c->resource_id);
    }
    if (!c->version_id) c->version_id = "";
    c->created = now;
    c->request_method = w->method;
    c->request_url = !strcmp(c->interaction, "create") && !strcmp(w->method, "POST")
                     ? type : apr_pstrcat(p, type, "/", c->resource_id, NULL);
    c->response_status = w->status;
    c->resource = res;
    c->body = res ? fs_json_str(p, res) : "";
    return c;
}

/* A delete of Type/id already derived from this request: a Bundle may delete the same
 * resource twice (the same conditional DELETE in two entries, or by search and by id),
 * and the second changes nothing, so it makes no second event. */
static int already_deleted(const derive_t *d, const char *type, const char *id)
{
    int i;
    for (i = 0; i < d->out->nelts; ++i) {
        const fs_change_t *c = APR_ARRAY_IDX(d->out, i, const fs_change_t *);
        if (!strcmp(c->interaction, "delete") && !strcmp(c->resource_type, type)
            && !strcmp(c->resource_id, id)) {
            return 1;
        }
    }
    return 0;
}

/* DELETE Type?search: one delete per resource the search before it found (it names no
 * id itself), each with that resource as its previous version; never twice. */
static void add_conditional_deletes(derive_t *d, const write_t *w)
{
    apr_size_t n = strcspn(w->url, "?");
    const char *type = apr_pstrmemdup(d->p, w->url, n);
    const fs_prior_t *pr = fs_prior_of_cond(d->cap->priors, type, w->url + n + 1);
    int i;

    if (!pr || !pr->complete) d->rv = APR_INCOMPLETE;
    for (i = 0; pr && i < pr->found->nelts; ++i) {
        json_object *res = APR_ARRAY_IDX(pr->found, i, json_object *);
        const char *id = fs_json_get_str(res, "id");
        write_t one = *w;
        fs_change_t *c;
        if (!id || already_deleted(d, type, id)) continue;
        one.url = apr_pstrcat(d->p, type, "/", id, NULL);
        if ((c = change_from(d->p, &one, d->now))) {
            c->previous = res;
            APR_ARRAY_PUSH(d->out, fs_change_t *) = c;
        }
    }
}

static void add_write(derive_t *d, const write_t *w)
{
    apr_size_t type_len = strcspn(w->url, "/?");
    fs_change_t *c;

    if (!strcmp(w->method, "DELETE") && w->url[type_len] == '?' && is_write(w)) {
        add_conditional_deletes(d, w);
        return;
    }
    if (!(c = change_from(d->p, w, d->now))) return;
    if (!strcmp(c->interaction, "delete")
        && already_deleted(d, c->resource_type, c->resource_id)) {
        return;   /* deleting it again changed nothing */
    }
    if (strcmp(c->interaction, "create")) {
        c->previous = fs_prior_version(d->versions, c->resource_type, c->resource_id);
    }
    APR_ARRAY_PUSH(d->out, fs_change_t *) = c;
}

static json_object *parse_body(apr_pool_t *p, const char *text, apr_size_t len, int complete)
{
    json_object *j = NULL;
    const char *err;
    if (!text || !len || !complete) return NULL;
    if (APR_SUCCESS != fs_json_parse(&j, p, text, len, &err)) return NULL;
    return json_object_is_type(j, json_type_object) ? j : NULL;
}

/* ---- transaction and batch Bundles -------------------------------------- */

static json_object *entry_member(json_object *entries, size_t i, const char *key)
{
    json_object *e = entries ? json_object_array_get_idx(entries, i) : NULL;
    return fs_json_get_typed(e, key, json_type_object);
}

static void bundle_changes(derive_t *d, json_object *req, json_object *resp)
{
    json_object *reqs = fs_json_get_typed(req, "entry", json_type_array);
    json_object *resps = fs_json_get_typed(resp, "entry", json_type_array);
    size_t i, n = reqs ? json_object_array_length(reqs) : 0;

    /* Responses come in request order, one per entry (FHIR Bundle rules). */
    if (!resps || json_object_array_length(resps) != n) return;
    for (i = 0; i < n; ++i) {
        json_object *rq = entry_member(reqs, i, "request");
        json_object *rs = entry_member(resps, i, "response");
        write_t w;
        memset(&w, 0, sizeof(w));
        w.method = fs_json_get_str(rq, "method");
        w.url = fs_json_get_str(rq, "url");
        w.status = fs_json_get_str(rs, "status");
        if (!w.method || !w.url || !w.status || w.status[0] != '2') continue;
        if (strcmp(w.method, "POST") && strcmp(w.method, "PUT") && strcmp(w.method, "PATCH")
            && strcmp(w.method, "DELETE")) continue;
        w.location = fs_json_get_str(rs, "location");
        w.etag = fs_json_get_str(rs, "etag");
        w.answered = entry_member(resps, i, "resource");
        w.sent = entry_member(reqs, i, "resource");
        add_write(d, &w);
    }
}

static int is_bundle_of(json_object *j, const char *t1, const char *t2)
{
    const char *type = fs_json_get_str(j, "type");
    return resource_of_type(j, "Bundle") && type && (!strcmp(type, t1) || !strcmp(type, t2));
}

apr_status_t fs_change_derive(apr_array_header_t **pchanges, apr_pool_t *p,
                              const fs_capture_t *cap, apr_time_t now)
{
    json_object *req, *resp;
    write_t w;
    derive_t d;

    *pchanges = apr_array_make(p, 1, sizeof(fs_change_t *));
    if (cap->status < 200 || cap->status > 299) return APR_SUCCESS;
    memset(&d, 0, sizeof(d));
    d.p = p;
    d.cap = cap;
    d.versions = fs_prior_versions(p, cap->priors);
    d.now = now;
    d.out = *pchanges;
    d.rv = APR_SUCCESS;
    req = parse_body(p, cap->req_body, cap->req_len, cap->req_complete);
    resp = parse_body(p, cap->resp_body, cap->resp_len, cap->resp_complete);
    if (!*cap->path) {
        if (!strcmp(cap->method, "POST") && is_bundle_of(req, "transaction", "batch")
            && is_bundle_of(resp, "transaction-response", "batch-response")) {
            bundle_changes(&d, req, resp);
        }
        return d.rv;
    }
    memset(&w, 0, sizeof(w));
    w.method = cap->method;
    w.url = cap->path;
    w.status = apr_psprintf(p, "%d", cap->status);
    w.location = cap->location;
    w.etag = cap->etag;
    w.answered = resp;
    w.sent = strcmp(cap->method, "PATCH") ? req : NULL;  /* a patch is no resource */
    add_write(&d, &w);
    return d.rv;
}
