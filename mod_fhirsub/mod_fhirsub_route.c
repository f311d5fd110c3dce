#include <string.h>
#include <apr_strings.h>
#include <httpd.h>
#include <http_protocol.h>

#include "fs_opdef.h"
#include "mod_fhirsub_http.h"
#include "mod_fhirsub_store.h"
#include "mod_fhirsub_route.h"
#include "mod_fhirsub_topics.h"

const char *fhirsub_path_below(const char *path, const char *base)
{
    apr_size_t n = strlen(base);

    while (n > 0 && base[n - 1] == '/') --n;
    if (strncmp(path, base, n)) return NULL;
    path += n;
    if (*path && *path != '/' && *path != '?') return NULL;
    while (*path == '/') ++path;
    return path;
}

const char *fhirsub_route_rel(request_rec *r, const fhirsub_dir_conf *c)
{
    const char *rel = fhirsub_path_below(r->uri, c->base_path);
    return rel ? rel : "";
}

static int is_our_opdef(const fhirsub_dir_conf *c, const char *id)
{
    const char *const *ids = fs_opdef_ids(fhirsub_conf_version(c));
    for (; *ids; ++ids) {
        if (!strcmp(*ids, id)) return 1;
    }
    return 0;
}

/* R4 topics are Basic resources: answer for them, leave every other Basic to the
 * FHIR server. */
static fhirsub_endpoint_t route_basic(request_rec *r, const fhirsub_dir_conf *c,
                                     char **parts, int n, const char **pid)
{
    if (n == 1) {
        return (r->args && ap_strstr_c(r->args, "SubscriptionTopic")
                && ap_strstr_c(r->args, "code=")) ? FHIRSUB_EP_TOPICS_BASIC : FHIRSUB_EP_NONE;
    }
    if (!fhirsub_topics_has_id(r->pool, c, parts[1])) return FHIRSUB_EP_NONE;
    *pid = parts[1];
    return FHIRSUB_EP_TOPIC_BASIC;
}

static fhirsub_endpoint_t route_instance(char **parts, int n, const char **pid,
                                         const char **pop, const char **pvid)
{
    *pid = parts[1];
    if (n == 2) return FHIRSUB_EP_INSTANCE;
    if (n == 3 && parts[2][0] == '$' && parts[2][1]) {
        *pop = parts[2] + 1;
        return FHIRSUB_EP_INSTANCE_OP;
    }
    if (n == 4 && !strcmp(parts[2], "_history")) {
        *pvid = parts[3];
        return FHIRSUB_EP_VREAD;
    }
    return FHIRSUB_EP_BAD;
}

fhirsub_endpoint_t fhirsub_route(request_rec *r, const fhirsub_dir_conf *c,
                                 const char **pid, const char **pop, const char **pvid)
{
    const char *rel = fhirsub_path_below(r->uri, c->base_path);
    char *parts[5], *state = NULL, *copy, *tok;
    int n = 0;

    *pid = *pop = *pvid = NULL;
    if (!rel) return FHIRSUB_EP_NONE;
    copy = apr_pstrdup(r->pool, rel);
    for (tok = apr_strtok(copy, "/", &state); tok; tok = apr_strtok(NULL, "/", &state)) {
        if (n == 5) return parts[0] && !strcmp(parts[0], "Subscription")
                           ? FHIRSUB_EP_BAD : FHIRSUB_EP_NONE;
        parts[n++] = tok;
    }
    if (n == 1 && !strcmp(parts[0], "metadata")) return FHIRSUB_EP_METADATA;
    if (n == 2 && !strcmp(parts[0], "OperationDefinition") && is_our_opdef(c, parts[1])) {
        *pid = parts[1];
        return FHIRSUB_EP_OPDEF;
    }
    if (n == 0) return FHIRSUB_EP_NONE;
    if (c->topics && n <= 2 && !strcmp(parts[0], "SubscriptionTopic")) {
        *pid = n == 2 ? parts[1] : NULL;
        return n == 2 ? FHIRSUB_EP_TOPIC : FHIRSUB_EP_TOPICS;
    }
    if (c->topics && n <= 2 && !strcmp(parts[0], "Basic")
        && fhirsub_conf_version(c) == FS_FHIR_R4) {
        return route_basic(r, c, parts, n, pid);
    }
    if (strcmp(parts[0], "Subscription")) return FHIRSUB_EP_NONE;
    if (n == 1) return FHIRSUB_EP_TYPE;
    if (n == 2 && parts[1][0] == '$' && parts[1][1]) {
        *pop = parts[1] + 1;
        return FHIRSUB_EP_TYPE_OP;
    }
    if (n == 2 && !strcmp(parts[1], "_search")) return FHIRSUB_EP_TYPE;
    return route_instance(parts, n, pid, pop, pvid);
}

fs_store_t *fhirsub_req_store(fhirsub_req *q, int *pdone)
{
    fs_store_t *store = fhirsub_store_acquire(q->r);
    if (!store) {
        apr_table_setn(q->r->err_headers_out, "Retry-After", "5");
        *pdone = fhirsub_send_error(q->r, HTTP_SERVICE_UNAVAILABLE, "transient",
                                    "the subscription database is unavailable; retry later");
    }
    return store;
}

const char *fhirsub_req_user(fhirsub_req *q, int *pdone)
{
    if (!q->user) q->user = fhirsub_principal(q->r, q->conf, pdone);
    return q->user;
}
