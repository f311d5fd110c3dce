#include <stdlib.h>
#include <string.h>
#include <apr_file_io.h>
#include <apr_lib.h>
#include <apr_strings.h>

#include "fs_sub.h"
#include "nt_log.h"
#include "nt_config.h"

#define UNSET_INTERVAL ((apr_interval_time_t)-1)

void nt_config_defaults(nt_config_t *c)
{
    memset(c, 0, sizeof(*c));
    c->listen_host = "127.0.0.1";
    c->listen_port = 8091;
    c->path = "/ws/subscriptions-r4";
    c->poll_interval = UNSET_INTERVAL;
    c->revalidate_interval = apr_time_from_sec(30);
    c->bind_timeout = apr_time_from_sec(60);
    c->expire_unbound = apr_time_from_sec(86400);
    c->expire_unbound_shape = FS_SHAPE_CLASSIC;
    c->ping_interval = apr_time_from_sec(30);
    c->ping_timeout = apr_time_from_sec(15);
    c->max_connections = 1024;
    c->max_bindings = 256;
    c->max_message_size = 16384;
    c->send_queue_messages = 256;
    c->send_queue_bytes = 8 * 1024 * 1024;
    c->slow_client_timeout = apr_time_from_sec(30);
    c->event_batch = 100;
    c->event_retention = apr_time_from_sec(7 * 86400);
    c->prune_interval = apr_time_from_sec(300);
    c->prune_bound_grace = apr_time_from_sec(3600);
    c->allow_url_token = 1;
    c->log_level = FS_LOG_NOTICE;
}

/* ---- value parsers ---------------------------------------------------------- */

static apr_status_t parse_int(const char *v, long min, long max, long *pval)
{
    char *end = NULL;
    long n;
    if (!v || !*v) return APR_EINVAL;
    n = strtol(v, &end, 10);
    if (*end || n < min || n > max) return APR_EINVAL;
    *pval = n;
    return APR_SUCCESS;
}

/* Seconds, with an optional fraction ("0.5") for tests that need short periods. */
static apr_status_t parse_seconds(const char *v, double min, double max,
                                  apr_interval_time_t *pval)
{
    char *end = NULL;
    double d;
    if (!v || !*v) return APR_EINVAL;
    d = strtod(v, &end);
    if (*end || d < min || d > max) return APR_EINVAL;
    *pval = (apr_interval_time_t)(d * APR_USEC_PER_SEC);
    return APR_SUCCESS;
}

static apr_status_t parse_onoff(const char *v, int *pval)
{
    if (!strcasecmp(v, "on")) *pval = 1;
    else if (!strcasecmp(v, "off")) *pval = 0;
    else return APR_EINVAL;
    return APR_SUCCESS;
}

/* "host:port", "[v6]:port" or "port". */
static apr_status_t parse_hostport(apr_pool_t *p, const char *v, const char **phost,
                                   int *pport)
{
    const char *colon;
    long port;

    if (*v == '[') {
        const char *close = strchr(v, ']');
        if (!close || close[1] != ':') return APR_EINVAL;
        *phost = apr_pstrmemdup(p, v + 1, (apr_size_t)(close - v - 1));
        colon = close + 1;
    }
    else if ((colon = strrchr(v, ':'))) {
        *phost = apr_pstrmemdup(p, v, (apr_size_t)(colon - v));
    }
    else {
        colon = v - 1;
    }
    if (APR_SUCCESS != parse_int(colon + 1, 1, 65535, &port)) return APR_EINVAL;
    *pport = (int)port;
    return APR_SUCCESS;
}

/* ---- keys ------------------------------------------------------------------- */

apr_status_t nt_config_set(nt_config_t *c, apr_pool_t *p, const char *key,
                           const char *value, const char **perr)
{
    long n;
    apr_status_t rv = APR_SUCCESS;
    const char *want = NULL;

    *perr = NULL;
    value = value ? value : "";
    if (!strcasecmp(key, "Listen")) {
        if (parse_hostport(p, value, &c->listen_host, &c->listen_port)) {
            want = "host:port or port";
        }
    }
    else if (!strcasecmp(key, "WebSocketPath")) {
        if (*value != '/' || strchr(value, '?') || strchr(value, ' ')) want = "a URL path";
        else c->path = apr_pstrdup(p, value);
    }
    else if (!strcasecmp(key, "TLSCertificate")) c->tls_cert = apr_pstrdup(p, value);
    else if (!strcasecmp(key, "TLSKey")) c->tls_key = apr_pstrdup(p, value);
    else if (!strcasecmp(key, "DBDriver")) {
        if (strcmp(value, "sqlite3") && strcmp(value, "pgsql")) want = "sqlite3 or pgsql";
        else c->db_driver = apr_pstrdup(p, value);
    }
    else if (!strcasecmp(key, "DBParams")) c->db_params = apr_pstrdup(p, value);
    else if (!strcasecmp(key, "TokenKey")) {
        const char *sp = value;
        while (*sp && !apr_isspace(*sp)) ++sp;
        c->token_alg_name = apr_pstrmemdup(p, value, (apr_size_t)(sp - value));
        while (apr_isspace(*sp)) ++sp;
        c->token_key_file = apr_pstrdup(p, sp);
        if (!*c->token_alg_name || !*c->token_key_file) want = "an algorithm and a key file";
    }
    else if (!strcasecmp(key, "WakeListen")) {
        if (!strcasecmp(value, "none")) c->wake_host = NULL;
        else if (parse_hostport(p, value, &c->wake_host, &c->wake_port)) {
            want = "host:port, port or none";
        }
        else if (!c->wake_host) c->wake_host = "127.0.0.1";
    }
    else if (!strcasecmp(key, "MetricsListen")) {
        c->metrics_host = NULL;
        if (!strcasecmp(value, "none")) c->metrics = NT_METRICS_OFF;
        else if (!strcasecmp(value, "websocket")) c->metrics = NT_METRICS_WEBSOCKET;
        else if (parse_hostport(p, value, &c->metrics_host, &c->metrics_port)) {
            want = "host:port, port, websocket or none";
        }
        else {
            c->metrics = NT_METRICS_OWN;
            /* a bare port stays on loopback: the numbers are for the operator */
            if (!c->metrics_host) c->metrics_host = "127.0.0.1";
        }
    }
    else if (!strcasecmp(key, "PollInterval")) {
        if (parse_seconds(value, 0.05, 3600, &c->poll_interval)) want = "seconds (0.05-3600)";
    }
    else if (!strcasecmp(key, "RevalidateInterval")) {
        if (parse_seconds(value, 0.05, 3600, &c->revalidate_interval)) {
            want = "seconds (0.05-3600)";
        }
    }
    else if (!strcasecmp(key, "BindTimeout")) {
        if (parse_seconds(value, 0.05, 86400, &c->bind_timeout)) want = "seconds (0.05-86400)";
    }
    else if (!strcasecmp(key, "ExpireUnbound")) {
        if (parse_seconds(value, 0, 365 * 86400.0, &c->expire_unbound)) {
            want = "seconds (0 = never)";
        }
    }
    else if (!strcasecmp(key, "ExpireUnboundShapes")) {
        if (!strcasecmp(value, "classic")) c->expire_unbound_shape = FS_SHAPE_CLASSIC;
        else if (!strcasecmp(value, "all")) c->expire_unbound_shape = 0;
        else want = "classic or all";
    }
    else if (!strcasecmp(key, "PingInterval")) {
        if (parse_seconds(value, 1, 3600, &c->ping_interval)) want = "whole seconds (1-3600)";
    }
    else if (!strcasecmp(key, "PingTimeout")) {
        if (parse_seconds(value, 1, 3600, &c->ping_timeout)) want = "whole seconds (1-3600)";
    }
    else if (!strcasecmp(key, "MaxConnections")) {
        if (parse_int(value, 1, 1000000, &n)) want = "1-1000000";
        else c->max_connections = (int)n;
    }
    else if (!strcasecmp(key, "MaxBindingsPerConnection")) {
        if (parse_int(value, 1, 100000, &n)) want = "1-100000";
        else c->max_bindings = (int)n;
    }
    else if (!strcasecmp(key, "MaxMessageSize")) {
        /* a bind frame carries a token of at most FS_TOKEN_MAX_LEN bytes */
        if (parse_int(value, 1024, 1024 * 1024, &n)) want = "bytes (1024-1048576)";
        else c->max_message_size = (int)n;
    }
    else if (!strcasecmp(key, "SendQueueMessages")) {
        if (parse_int(value, 4, 1000000, &n)) want = "4-1000000";
        else c->send_queue_messages = (int)n;
    }
    else if (!strcasecmp(key, "SlowClientTimeout")) {
        if (parse_seconds(value, 0.1, 3600, &c->slow_client_timeout)) {
            want = "seconds (0.1-3600)";
        }
    }
    else if (!strcasecmp(key, "SendQueueBytes")) {
        if (parse_int(value, 65536, 1024L * 1024 * 1024, &n)) want = "bytes (65536-1 GiB)";
        else c->send_queue_bytes = (apr_size_t)n;
    }
    else if (!strcasecmp(key, "EventBatch")) {
        if (parse_int(value, 1, 10000, &n)) want = "1-10000";
        else c->event_batch = (int)n;
    }
    else if (!strcasecmp(key, "EventRetention")) {
        if (parse_seconds(value, 0, 3650 * 86400.0, &c->event_retention)) {
            want = "seconds (0 = keep forever)";
        }
    }
    else if (!strcasecmp(key, "EventRetentionCount")) {
        if (parse_int(value, 0, 1000000000, &n)) want = "0-1000000000 (0 = no count limit)";
        else c->event_retention_count = (int)n;
    }
    else if (!strcasecmp(key, "PruneInterval")) {
        if (parse_seconds(value, 0.05, 86400, &c->prune_interval)) want = "seconds (0.05-86400)";
    }
    else if (!strcasecmp(key, "PruneBoundGrace")) {
        if (parse_seconds(value, 0, 30 * 86400.0, &c->prune_bound_grace)) {
            want = "seconds (0-2592000)";
        }
    }
    else if (!strcasecmp(key, "AllowTokenInURL")) {
        if (parse_onoff(value, &c->allow_url_token)) want = "On or Off";
    }
    else if (!strcasecmp(key, "LogLevel")) {
        if (nt_log_level_parse(&c->log_level, value)) want = "error, warn, notice, info or debug";
    }
    else {
        *perr = apr_psprintf(p, "unknown key %s", key);
        return APR_EINVAL;
    }
    if (want) {
        *perr = apr_psprintf(p, "%s '%s': expected %s", key, value, want);
        rv = APR_EINVAL;
    }
    return rv;
}

apr_status_t nt_config_load(nt_config_t *c, apr_pool_t *p, const char *file,
                            const char **perr)
{
    apr_file_t *f = NULL;
    apr_status_t rv;
    char line[4096], ebuf[160];
    int lineno = 0;

    *perr = NULL;
    if (APR_SUCCESS != (rv = apr_file_open(&f, file, APR_FOPEN_READ, APR_FPROT_OS_DEFAULT, p))) {
        *perr = apr_psprintf(p, "cannot read %s: %s", file, apr_strerror(rv, ebuf, sizeof(ebuf)));
        return rv;
    }
    c->file = apr_pstrdup(p, file);
    while (APR_SUCCESS == apr_file_gets(line, sizeof(line), f)) {
        char *s = line, *key, *end;
        ++lineno;
        while (apr_isspace(*s)) ++s;
        end = s + strlen(s);
        while (end > s && apr_isspace(end[-1])) *--end = '\0';
        if (!*s || *s == '#') continue;
        key = s;
        while (*s && !apr_isspace(*s)) ++s;
        if (*s) *s++ = '\0';
        while (apr_isspace(*s)) ++s;
        /* optional double quotes around the whole value */
        if (*s == '"' && end > s + 1 && end[-1] == '"') {
            end[-1] = '\0';
            ++s;
        }
        if (APR_SUCCESS != (rv = nt_config_set(c, p, key, s, perr))) {
            *perr = apr_psprintf(p, "%s:%d: %s", file, lineno, *perr);
            break;
        }
    }
    apr_file_close(f);
    return rv;
}

apr_status_t nt_config_finish(nt_config_t *c, apr_pool_t *p, const char **perr)
{
    fs_token_alg_t alg;
    fs_token_key_t *key = NULL;
    apr_status_t rv;

    *perr = NULL;
    if (!c->db_driver || !c->db_params) {
        *perr = "DBDriver and DBParams are required (the database mod_fhirsub uses)";
        return APR_EINVAL;
    }
    if (!c->token_alg_name || !c->token_key_file) {
        *perr = "TokenKey <alg> <file> is required (the verification key of the tokens "
                "FhirSubTokenKey signs)";
        return APR_EINVAL;
    }
    if (APR_SUCCESS != fs_token_alg_parse(&alg, c->token_alg_name)) {
        *perr = apr_psprintf(p, "TokenKey: unknown algorithm '%s' (HS256, HS384, HS512, "
                             "RS256, RS384, RS512, ES256, ES384, ES512)", c->token_alg_name);
        return APR_EINVAL;
    }
    if (APR_SUCCESS != (rv = fs_token_key_load(&key, p, alg, FS_TOKEN_KEY_VERIFY,
                                               c->token_key_file, perr))) {
        *perr = apr_psprintf(p, "TokenKey: %s", *perr);
        return rv;
    }
    c->key = key;
    if (c->metrics == NT_METRICS_OWN && c->metrics_port == c->listen_port) {
        *perr = "MetricsListen needs another port than Listen (or say websocket to share it)";
        return APR_EINVAL;
    }
    if (!c->tls_cert != !c->tls_key) {
        *perr = "TLSCertificate and TLSKey go together";
        return APR_EINVAL;
    }
    if (c->poll_interval == UNSET_INTERVAL) {
        /* pgsql wakes us with LISTEN/NOTIFY; SQLite has only the wake-up datagram */
        c->poll_interval = apr_time_from_sec(strcmp(c->db_driver, "pgsql") ? 2 : 30);
    }
    if (c->ping_timeout < apr_time_from_sec(1)) c->ping_timeout = apr_time_from_sec(1);
    if (c->expire_unbound && c->expire_unbound < 3 * c->revalidate_interval) {
        /* bound subscriptions prove it every RevalidateInterval */
        *perr = apr_psprintf(p, "ExpireUnbound must be 0 or at least 3 x RevalidateInterval "
                             "(%.1f s)", 3.0 * (double)c->revalidate_interval / APR_USEC_PER_SEC);
        return APR_EINVAL;
    }
    return APR_SUCCESS;
}
