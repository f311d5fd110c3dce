#include <apr_strings.h>
#include <apr_optional.h>
#include <httpd.h>
#include <http_config.h>
#include <http_log.h>
#include <apr_dbd.h>
#include <mod_dbd.h>

#include "fs_sub.h"
#include "mod_fhirsub_config.h"

extern module AP_MODULE_DECLARE_DATA fhirsub_module;

APLOG_USE_MODULE(fhirsub);

void *fhirsub_create_dir_conf(apr_pool_t *p, char *dir)
{
    fhirsub_dir_conf *c = apr_pcalloc(p, sizeof(*c));
    c->enabled = FHIRSUB_UNSET;
    c->base_path = dir;
    c->version = FHIRSUB_UNSET;
    c->token_lifetime = FHIRSUB_UNSET;
    c->anonymous = FHIRSUB_UNSET;
    c->allowed_content = FHIRSUB_UNSET;
    c->max_body = FHIRSUB_UNSET;
    c->heartbeat_min = FHIRSUB_UNSET;
    c->heartbeat_max = FHIRSUB_UNSET;
    c->capture_max = FHIRSUB_UNSET;
    return c;
}

#define MERGE_VAL(f) c->f = (add->f == FHIRSUB_UNSET) ? base->f : add->f
#define MERGE_PTR(f) c->f = add->f ? add->f : base->f

void *fhirsub_merge_dir_conf(apr_pool_t *p, void *basev, void *addv)
{
    fhirsub_dir_conf *base = basev, *add = addv;
    fhirsub_dir_conf *c = apr_pcalloc(p, sizeof(*c));

    MERGE_VAL(enabled);
    /* The base is where the service was switched on, not a deeper location. */
    c->base_path = (add->enabled == FHIRSUB_UNSET && base->base_path) ? base->base_path
                                                                      : add->base_path;
    MERGE_VAL(version);
    MERGE_PTR(ws_url);
    MERGE_PTR(server_base);
    MERGE_PTR(key_file);
    MERGE_PTR(key);
    MERGE_VAL(token_lifetime);
    MERGE_VAL(anonymous);
    MERGE_PTR(anonymous_user);
    MERGE_VAL(allowed_content);
    MERGE_PTR(topics);
    MERGE_VAL(max_body);
    MERGE_VAL(heartbeat_min);
    MERGE_VAL(heartbeat_max);
    MERGE_VAL(capture_max);
    MERGE_PTR(wake_addr);
    return c;
}

void *fhirsub_create_srv_conf(apr_pool_t *p, server_rec *s)
{
    fhirsub_srv_conf *sc = apr_pcalloc(p, sizeof(*sc));
    (void)s;
    sc->locations = apr_array_make(p, 2, sizeof(fhirsub_dir_conf *));
    return sc;
}

fs_fhir_version_t fhirsub_conf_version(const fhirsub_dir_conf *c)
{
    return c->version == FHIRSUB_UNSET ? FS_FHIR_R4 : (fs_fhir_version_t)c->version;
}

apr_interval_time_t fhirsub_conf_token_lifetime(const fhirsub_dir_conf *c)
{
    return c->token_lifetime == FHIRSUB_UNSET
        ? apr_time_from_sec(FHIRSUB_DEFAULT_TOKEN_LIFETIME) : c->token_lifetime;
}

unsigned fhirsub_conf_allowed_content(const fhirsub_dir_conf *c)
{
    return c->allowed_content == FHIRSUB_UNSET ? FS_CONTENT_ALL
                                               : (unsigned)c->allowed_content;
}

apr_off_t fhirsub_conf_max_body(const fhirsub_dir_conf *c)
{
    return c->max_body == FHIRSUB_UNSET ? FHIRSUB_DEFAULT_MAX_BODY : c->max_body;
}

const char *fhirsub_conf_anon_user(const fhirsub_dir_conf *c)
{
    return c->anonymous_user ? c->anonymous_user : FHIRSUB_DEFAULT_ANON_USER;
}

apr_size_t fhirsub_conf_capture_max(const fhirsub_dir_conf *c)
{
    return (apr_size_t)(c->capture_max == FHIRSUB_UNSET ? FHIRSUB_DEFAULT_CAPTURE_MAX
                                                        : c->capture_max);
}

/* ---- directive handlers ------------------------------------------------- */

static apr_status_t parse_seconds(const char *arg, apr_int64_t min, apr_int64_t max,
                                  apr_int64_t *pval)
{
    char *end;
    apr_int64_t v = apr_strtoi64(arg, &end, 10);
    if (!*arg || *end || v < min || v > max) return APR_EINVAL;
    *pval = v;
    return APR_SUCCESS;
}

/* mod_dbd must be loaded before FhirSub On: its functions are what we store with. */
static const char *require_dbd(void)
{
    if (!APR_RETRIEVE_OPTIONAL_FN(ap_dbd_acquire)) {
        return "FhirSub On needs mod_dbd: load it with 'LoadModule dbd_module ...' "
               "before this line and configure DBDriver/DBDParams";
    }
    return NULL;
}

static const char *set_enabled(cmd_parms *cmd, void *dc, int flag)
{
    fhirsub_dir_conf *c = dc;
    fhirsub_srv_conf *sc = ap_get_module_config(cmd->server->module_config, &fhirsub_module);
    const char *err;

    c->enabled = flag;
    if (!flag) return NULL;
    if (!cmd->path) return "FhirSub On belongs inside the <Location> of a FHIR base";
    if ((err = require_dbd())) return err;
    APR_ARRAY_PUSH(sc->locations, fhirsub_dir_conf *) = c;
    return NULL;
}

static const char *set_version(cmd_parms *cmd, void *dc, const char *arg)
{
    fhirsub_dir_conf *c = dc;
    (void)cmd;
    if (!strcasecmp(arg, "R4")) c->version = FS_FHIR_R4;
    else if (!strcasecmp(arg, "R5")) c->version = FS_FHIR_R5;
    else return "FhirSubFhirVersion takes R4 (backport, the default) or R5";
    return NULL;
}

static const char *set_ws_url(cmd_parms *cmd, void *dc, const char *arg)
{
    fhirsub_dir_conf *c = dc;
    (void)cmd;
    if (strncmp(arg, "ws://", 5) && strncmp(arg, "wss://", 6)) {
        return apr_psprintf(cmd->pool, "FhirSubWebSocketURL '%s' must start with ws:// "
                            "or wss://", arg);
    }
    c->ws_url = arg;
    return NULL;
}

static const char *set_server_base(cmd_parms *cmd, void *dc, const char *arg)
{
    fhirsub_dir_conf *c = dc;
    if (strncmp(arg, "http://", 7) && strncmp(arg, "https://", 8)) {
        return apr_psprintf(cmd->pool, "FhirSubServerBase '%s' must be an absolute "
                            "http(s) URL", arg);
    }
    c->server_base = apr_pstrdup(cmd->pool, arg);
    /* References are built as base + "/Subscription/id". */
    while (*c->server_base && c->server_base[strlen(c->server_base) - 1] == '/') {
        ((char *)c->server_base)[strlen(c->server_base) - 1] = '\0';
    }
    return NULL;
}

static const char *set_token_key(cmd_parms *cmd, void *dc, const char *alg_name,
                                 const char *file)
{
    fhirsub_dir_conf *c = dc;
    fs_token_alg_t alg;
    const char *path, *err = NULL;

    if (APR_SUCCESS != fs_token_alg_parse(&alg, alg_name)) {
        return apr_psprintf(cmd->pool, "FhirSubTokenKey: algorithm '%s' is not supported "
                            "(HS256, HS384, HS512, RS256, RS384, RS512, ES256, ES384, "
                            "ES512)", alg_name);
    }
    path = ap_server_root_relative(cmd->pool, file);
    if (!path) return apr_psprintf(cmd->pool, "FhirSubTokenKey: invalid path '%s'", file);
    if (APR_SUCCESS != fs_token_key_load(&c->key, cmd->pool, alg, FS_TOKEN_KEY_SIGN,
                                         path, &err)) {
        return apr_psprintf(cmd->pool, "FhirSubTokenKey: %s", err);
    }
    c->key_file = path;
    return NULL;
}

static const char *set_token_lifetime(cmd_parms *cmd, void *dc, const char *arg)
{
    fhirsub_dir_conf *c = dc;
    apr_int64_t v;
    (void)cmd;
    if (APR_SUCCESS != parse_seconds(arg, 1, 7 * 86400, &v)) {
        return "FhirSubTokenLifetime takes seconds between 1 and 604800";
    }
    c->token_lifetime = apr_time_from_sec(v);
    return NULL;
}

static const char *set_anonymous(cmd_parms *cmd, void *dc, const char *flag,
                                 const char *user)
{
    fhirsub_dir_conf *c = dc;
    (void)cmd;
    if (!strcasecmp(flag, "On")) c->anonymous = 1;
    else if (!strcasecmp(flag, "Off")) c->anonymous = 0;
    else return "FhirSubAnonymous takes On or Off, and optionally the user name to use";
    if (user) c->anonymous_user = user;
    return NULL;
}

static const char *set_payload_content(cmd_parms *cmd, void *dc, const char *arg)
{
    fhirsub_dir_conf *c = dc;
    unsigned bit = fs_sub_content_bit(arg);
    if (!bit) {
        return apr_psprintf(cmd->pool, "FhirSubPayloadContent: '%s' is not one of empty, "
                            "id-only, full-resource", arg);
    }
    c->allowed_content = (c->allowed_content == FHIRSUB_UNSET ? 0 : c->allowed_content)
                         | (int)bit;
    return NULL;
}

static const char *set_topic(cmd_parms *cmd, void *dc, const char *arg)
{
    fhirsub_dir_conf *c = dc;
    const char *path = ap_server_root_relative(cmd->pool, arg), *err = NULL;
    apr_finfo_t fi;
    apr_status_t rv;

    if (!path) return apr_psprintf(cmd->pool, "FhirSubTopic: invalid path '%s'", arg);
    if (!c->topics && APR_SUCCESS != fs_topics_create(&c->topics, cmd->pool)) {
        return "FhirSubTopic: out of memory";
    }
    if (APR_SUCCESS != apr_stat(&fi, path, APR_FINFO_TYPE, cmd->temp_pool)) {
        return apr_psprintf(cmd->pool, "FhirSubTopic: cannot read '%s'", path);
    }
    rv = (fi.filetype == APR_DIR) ? fs_topics_load_dir(c->topics, path, &err)
                                  : fs_topics_load_file(c->topics, path, &err);
    if (rv != APR_SUCCESS) return apr_psprintf(cmd->pool, "FhirSubTopic: %s", err);
    return NULL;
}

static const char *set_max_body(cmd_parms *cmd, void *dc, const char *arg)
{
    fhirsub_dir_conf *c = dc;
    apr_int64_t v;
    (void)cmd;
    if (APR_SUCCESS != parse_seconds(arg, 1024, 64 * 1024 * 1024, &v)) {
        return "FhirSubMaxBodySize takes bytes between 1024 and 67108864";
    }
    c->max_body = (apr_off_t)v;
    return NULL;
}

static const char *set_heartbeat_range(cmd_parms *cmd, void *dc, const char *min,
                                       const char *max)
{
    fhirsub_dir_conf *c = dc;
    (void)cmd;
    if (APR_SUCCESS != parse_seconds(min, 1, 86400, &c->heartbeat_min)
        || APR_SUCCESS != parse_seconds(max, 1, 86400, &c->heartbeat_max)
        || c->heartbeat_min > c->heartbeat_max) {
        return "FhirSubHeartbeatRange takes two periods in seconds, min <= max, "
               "each between 1 and 86400";
    }
    return NULL;
}

static const char *set_capture_max(cmd_parms *cmd, void *dc, const char *arg)
{
    fhirsub_dir_conf *c = dc;
    apr_int64_t v;
    (void)cmd;
    if (APR_SUCCESS != parse_seconds(arg, 0, 256 * 1024 * 1024, &v)) {
        return "FhirSubCaptureMaxBody takes bytes between 0 and 268435456";
    }
    c->capture_max = (apr_off_t)v;
    return NULL;
}

static const char *set_wakeup(cmd_parms *cmd, void *dc, const char *arg)
{
    fhirsub_dir_conf *c = dc;
    char *host = NULL, *scope = NULL;
    apr_port_t port = 0;

    if (APR_SUCCESS != apr_parse_addr_port(&host, &scope, &port, arg, cmd->pool)
        || !host || !port
        || APR_SUCCESS != apr_sockaddr_info_get(&c->wake_addr, host, APR_UNSPEC, port, 0,
                                                cmd->pool)) {
        return apr_psprintf(cmd->pool, "FhirSubNotifierWakeup '%s': give host:port of the "
                            "notifier's wake-up listener", arg);
    }
    return NULL;
}

const command_rec fhirsub_cmds[] = {
    AP_INIT_FLAG("FhirSub", set_enabled, NULL, ACCESS_CONF,
                 "serve FHIR Subscriptions under this location (the FHIR base)"),
    AP_INIT_TAKE1("FhirSubFhirVersion", set_version, NULL, ACCESS_CONF,
                  "R4 (Subscriptions Backport IG, default) or R5"),
    AP_INIT_TAKE1("FhirSubWebSocketURL", set_ws_url, NULL, ACCESS_CONF,
                  "the ws:// or wss:// URL of fhirsub-notifier handed to clients"),
    AP_INIT_TAKE1("FhirSubServerBase", set_server_base, NULL, ACCESS_CONF,
                  "absolute URL of this FHIR base for references (default: from request)"),
    AP_INIT_TAKE2("FhirSubTokenKey", set_token_key, NULL, ACCESS_CONF,
                  "binding token algorithm (HS256...) and key file"),
    AP_INIT_TAKE1("FhirSubTokenLifetime", set_token_lifetime, NULL, ACCESS_CONF,
                  "binding token lifetime in seconds (default 3600)"),
    AP_INIT_TAKE12("FhirSubAnonymous", set_anonymous, NULL, ACCESS_CONF,
                   "On to serve requests without an authenticated user [user name]"),
    AP_INIT_ITERATE("FhirSubPayloadContent", set_payload_content, NULL, ACCESS_CONF,
                    "payload content levels allowed: empty id-only full-resource"),
    AP_INIT_ITERATE("FhirSubTopic", set_topic, NULL, ACCESS_CONF,
                    "SubscriptionTopic JSON file or directory of *.json files"),
    AP_INIT_TAKE1("FhirSubMaxBodySize", set_max_body, NULL, ACCESS_CONF,
                  "largest request body read, in bytes (default 1048576)"),
    AP_INIT_TAKE2("FhirSubHeartbeatRange", set_heartbeat_range, NULL, ACCESS_CONF,
                  "smallest and largest heartbeat period accepted, seconds"),
    AP_INIT_TAKE1("FhirSubCaptureMaxBody", set_capture_max, NULL, ACCESS_CONF,
                  "bytes of a write's body copied for events, and of a transaction or "
                  "batch Bundle read before it is forwarded (default 4194304); larger "
                  "writes give id-only events, larger Bundles none"),
    AP_INIT_TAKE1("FhirSubNotifierWakeup", set_wakeup, NULL, ACCESS_CONF,
                  "host:port where fhirsub-notifier listens for UDP wake-ups (SQLite)"),
    { NULL }
};

/* ---- startup check ------------------------------------------------------ */

static const char *check_location(const fhirsub_dir_conf *c)
{
    if (c->ws_url && !c->key) {
        return "FhirSubWebSocketURL is set but FhirSubTokenKey is not: binding tokens "
               "could not be signed";
    }
    return NULL;
}

apr_status_t fhirsub_conf_check(server_rec *s)
{
    for (; s; s = s->next) {
        fhirsub_srv_conf *sc = ap_get_module_config(s->module_config, &fhirsub_module);
        int i;
        for (i = 0; sc && i < sc->locations->nelts; ++i) {
            const fhirsub_dir_conf *c = APR_ARRAY_IDX(sc->locations, i, fhirsub_dir_conf *);
            const char *err = check_location(c);
            if (!c->ws_url) {
                ap_log_error(APLOG_MARK, APLOG_NOTICE, 0, s, FHIRSUB_LOGNO(10602)
                             "mod_fhirsub: <Location %s>: no FhirSubWebSocketURL, websocket "
                             "subscriptions are not enabled there", c->base_path);
            }
            if (err) {
                ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, FHIRSUB_LOGNO(10601)
                             "mod_fhirsub: <Location %s>: %s (put the FhirSub* directives "
                             "in the same <Location> as 'FhirSub On')", c->base_path, err);
                return APR_EGENERAL;
            }
        }
    }
    return APR_SUCCESS;
}
