/* mod_fhirsub: FHIR Subscriptions over websockets for a FHIR server behind Apache.
 * This file holds only the module declaration and the hook registration; see
 * docs/INTERNALS.md for the map of the rest. */
#include <apr_strings.h>
#include <httpd.h>
#include <http_config.h>
#include <http_core.h>
#include <http_log.h>
#include <http_protocol.h>
#include <http_request.h>

#include "fs_log.h"
#include "mod_fhirsub_capture.h"
#include "mod_fhirsub_config.h"
#include "mod_fhirsub_errors.h"
#include "mod_fhirsub_http.h"
#include "mod_fhirsub_metadata.h"
#include "mod_fhirsub_ops.h"
#include "mod_fhirsub_route.h"
#include "mod_fhirsub_store.h"
#include "mod_fhirsub_subscription.h"
#include "mod_fhirsub_topics.h"

static void register_hooks(apr_pool_t *p);

AP_DECLARE_MODULE(fhirsub) = {
    STANDARD20_MODULE_STUFF,
    fhirsub_create_dir_conf,
    fhirsub_merge_dir_conf,
    fhirsub_create_srv_conf,
    NULL,
    fhirsub_cmds,
    register_hooks,
#if defined(AP_MODULE_FLAG_ALWAYS_MERGE)
    AP_MODULE_FLAG_ALWAYS_MERGE
#endif
};

/* ---- core logging into the error log ------------------------------------- */

static int log_is_level(void *baton, fs_log_level_t level)
{
    server_rec *s = baton;
    return APLOG_IS_LEVEL(s, (int)level);
}

static void log_print(const char *file, int line, fs_log_level_t level, apr_status_t rv,
                      void *baton, apr_pool_t *p, const char *fmt, va_list ap)
{
    char buf[4096];
    (void)p;
    apr_vsnprintf(buf, sizeof(buf), fmt, ap);
    ap_log_error(file, line, APLOG_MODULE_INDEX, (int)level, rv, (server_rec *)baton,
                 "%s", buf);
}

/* ---- hooks --------------------------------------------------------------- */

/* Runs for `apachectl -t` too, so configuration mistakes show before a restart. */
static int check_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp,
                        server_rec *s)
{
    (void)pconf; (void)plog; (void)ptemp;
    return APR_SUCCESS == fhirsub_conf_check(s) ? OK : HTTP_INTERNAL_SERVER_ERROR;
}

static int post_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp,
                       server_rec *s)
{
    server_rec *vs;
    (void)pconf; (void)plog; (void)ptemp;
    fs_log_set(log_is_level, log_print, s);
    for (vs = s; vs; vs = vs->next) {
        fhirsub_srv_conf *sc = ap_get_module_config(vs->module_config, &fhirsub_module);
        if (sc && sc->locations->nelts) fhirsub_store_enable();
    }
    return OK;
}

static void child_init(apr_pool_t *pchild, server_rec *s)
{
    fhirsub_store_child_init(pchild, s);
    fhirsub_capture_child_init(pchild, s);
}

static int dispatch(fhirsub_req *q)
{
    switch (q->endpoint) {
    case FHIRSUB_EP_METADATA: return fhirsub_metadata_handle(q);
    case FHIRSUB_EP_OPDEF: return fhirsub_opdef_handle(q);
    case FHIRSUB_EP_TOPICS: return fhirsub_topics_search(q, 0);
    case FHIRSUB_EP_TOPIC: return fhirsub_topics_read(q, 0);
    case FHIRSUB_EP_TOPICS_BASIC: return fhirsub_topics_search(q, 1);
    case FHIRSUB_EP_TOPIC_BASIC: return fhirsub_topics_read(q, 1);
    case FHIRSUB_EP_TYPE: return fhirsub_sub_type(q);
    case FHIRSUB_EP_INSTANCE: return fhirsub_sub_instance(q);
    case FHIRSUB_EP_VREAD: return fhirsub_sub_vread(q);
    case FHIRSUB_EP_TYPE_OP:
    case FHIRSUB_EP_INSTANCE_OP: return fhirsub_ops_handle(q);
    default:
        return fhirsub_send_error(q->r, HTTP_NOT_FOUND, "not-found",
                                  "no such Subscription endpoint: %s", q->r->uri);
    }
}

/* Runs before mod_proxy's handler: the Subscription endpoints are ours, everything
 * else under the base goes on to the FHIR server. */
static int handler(request_rec *r)
{
    fhirsub_dir_conf *c = ap_get_module_config(r->per_dir_config, &fhirsub_module);
    fhirsub_req q;

    if (!c || c->enabled != 1 || !r->uri) return DECLINED;
    memset(&q, 0, sizeof(q));
    q.endpoint = fhirsub_route(r, c, &q.id, &q.op, &q.vid);
    if (q.endpoint == FHIRSUB_EP_NONE) {
        /* The FHIR server's: watch writes on their way there and back. */
        return fhirsub_capture_start(r, c, fhirsub_route_rel(r, c));
    }
    q.r = r;
    q.conf = c;
    q.version = fhirsub_conf_version(c);
    q.base_url = fhirsub_base_url(r, c);
    q.now = apr_time_now();
    if (q.endpoint != FHIRSUB_EP_METADATA && fhirsub_reject_format(r)) return OK;
    return dispatch(&q);
}

static void register_hooks(apr_pool_t *p)
{
    static const char *const after_dbd[] = { "mod_dbd.c", NULL };
    /* mod_proxy's handler is APR_HOOK_FIRST too: ours must run before it. */
    static const char *const before_proxy[] = { "mod_proxy.c", NULL };
    (void)p;
    ap_hook_check_config(check_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_post_config(post_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_child_init(child_init, NULL, after_dbd, APR_HOOK_MIDDLE);
    ap_hook_handler(handler, NULL, before_proxy, APR_HOOK_FIRST);
    fhirsub_store_register_hooks();
    fhirsub_metadata_register_hooks();
    fhirsub_errors_register_hooks();
    fhirsub_capture_register_hooks();
}
