#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <apr_strings.h>

#include "fs_token.h"
#include "nt_log.h"
#include "nt_ws.h"

/* lws hands received data over in chunks of this size. */
#define NT_RX_BUFFER 4096
/* Larger messages leave in chunks of this size (lws buffers the rest). */
#define NT_TX_PACKET 65536
/* Descriptors beyond the connections: listener, database, wake-ups, logs. */
#define NT_FD_HEADROOM 256

/* One whole plain-text answer: headers and body in a single write (as
 * lws_return_http_status does), then the next request on the connection. */
static int http_text(struct lws *wsi, unsigned int status, const char *content_type,
                     const char *body)
{
    size_t len = strlen(body), cap = LWS_PRE + 512 + len;
    unsigned char *buf = malloc(cap), *start, *p, *end;
    int rv = -1;

    if (!buf) return -1;
    start = p = buf + LWS_PRE;
    end = buf + cap;
    if (lws_add_http_common_headers(wsi, status, content_type, (lws_filepos_t)len, &p, end)
        || lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CACHE_CONTROL,
                                        (const unsigned char *)"no-store", 8, &p, end)
        || lws_finalize_http_header(wsi, &p, end)) {
        goto leave;
    }
    memcpy(p, body, len);
    p += len;
    if (lws_write(wsi, start, (size_t)(p - start), LWS_WRITE_HTTP_HEADERS) != (int)(p - start)) {
        goto leave;
    }
    rv = lws_http_transaction_completed(wsi) ? -1 : 0;
leave:
    free(buf);
    return rv;
}

/* Plain HTTP: GET /healthz and /metrics where MetricsListen puts them (`serve`),
 * 404 for anything else. */
static int http_request(nt_server_t *srv, struct lws *wsi, const char *path, int serve)
{
    int get = lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) > 0;
    int health = serve && path && !strcmp(path, "/healthz");
    int metrics = serve && path && !strcmp(path, "/metrics");
    apr_pool_t *p = NULL;
    const char *text = NULL;
    unsigned int status;
    int rv;

    if (!health && !metrics) return http_text(wsi, 404, "text/plain", "not found\n");
    if (!get) return http_text(wsi, 405, "text/plain", "GET only\n");
    if (APR_SUCCESS != apr_pool_create(&p, srv->pool)) return -1;
    if (health) {
        status = nt_metrics_health(srv, p, &text);
        rv = http_text(wsi, status, "text/plain; charset=utf-8", text);
    }
    else {
        rv = http_text(wsi, 200, "text/plain; version=0.0.4; charset=utf-8",
                       nt_metrics_render(srv, p));
    }
    apr_pool_destroy(p);
    return rv;
}

/* Upgrade allowed? The path must be WebSocketPath; room for one more connection. */
static int filter(nt_server_t *srv, struct lws *wsi)
{
    char uri[512];
    int n = lws_hdr_copy(wsi, uri, sizeof(uri), WSI_TOKEN_GET_URI);

    if (srv->shutting_down) goto refuse;
    if (n <= 0 || strcmp(uri, srv->conf->path)) {
        nt_log(FS_LOG_INFO, "FS20401: websocket upgrade refused: path %s is not %s",
               n > 0 ? uri : "?", srv->conf->path);
        goto refuse;
    }
    if (srv->nconns >= srv->conf->max_connections) {
        nt_log(FS_LOG_WARNING, "FS20402: websocket upgrade refused: MaxConnections (%d) "
               "reached", srv->conf->max_connections);
        goto refuse;
    }
    return 0;
refuse:
    ++srv->metrics.upgrades_refused;
    return 1;
}

static void url_token(nt_conn_t *c, struct lws *wsi)
{
    char buf[FS_TOKEN_MAX_LEN + 16];
    const char *token;

    if (!c->srv->conf->allow_url_token) return;
    token = lws_get_urlarg_by_name(wsi, "token=", buf, (int)sizeof(buf));
    if (token && *token) nt_session_url_token(c, token);
}

static int callback_fhir(struct lws *wsi, enum lws_callback_reasons reason, void *user,
                         void *in, size_t len)
{
    nt_server_t *srv = lws_context_user(lws_get_context(wsi));
    nt_conn_t *c = user;

    switch (reason) {
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
        return filter(srv, wsi);
    case LWS_CALLBACK_ESTABLISHED:
        nt_conn_open(srv, c, wsi);
        url_token(c, wsi);
        return 0;
    case LWS_CALLBACK_RECEIVE:
        if (!c || !c->srv) return 0;
        return nt_conn_rx(c, in, len,
                          lws_is_final_fragment(wsi) && !lws_remaining_packet_payload(wsi),
                          lws_frame_is_binary(wsi));
    case LWS_CALLBACK_SERVER_WRITEABLE:
        if (!c || !c->srv) return 0;
        return nt_conn_writable(c);
    case LWS_CALLBACK_CLOSED:
        if (c) nt_conn_closed(c);
        return 0;
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
        if (srv) nt_session_results(srv);
        return 0;
    case LWS_CALLBACK_HTTP:
        return http_request(srv, wsi, in, srv->conf->metrics == NT_METRICS_WEBSOCKET);
    default:
        return lws_callback_http_dummy(wsi, reason, user, in, len);
    }
}

/* The MetricsListen vhost: plain HTTP only. */
static int callback_metrics(struct lws *wsi, enum lws_callback_reasons reason, void *user,
                            void *in, size_t len)
{
    nt_server_t *srv = lws_context_user(lws_get_context(wsi));

    if (reason == LWS_CALLBACK_HTTP) return http_request(srv, wsi, in, 1);
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}

static struct lws_protocols protocols[] = {
    { NT_WS_PROTOCOL, callback_fhir, sizeof(nt_conn_t), NT_RX_BUFFER, 0, NULL, NT_TX_PACKET },
    { NULL, NULL, 0, 0, 0, NULL, 0 }
};

static struct lws_protocols metrics_protocols[] = {
    { "http", callback_metrics, 0, 0, 0, NULL, 0 },
    { NULL, NULL, 0, 0, 0, NULL, 0 }
};

/* A second vhost on MetricsListen, plain HTTP. */
static apr_status_t create_metrics_vhost(nt_server_t *srv, const char **perr)
{
    const nt_config_t *conf = srv->conf;
    struct lws_context_creation_info info;

    memset(&info, 0, sizeof(info));
    info.port = conf->metrics_port;
    info.iface = conf->metrics_host;
    info.vhost_name = "fhirsub-metrics";
    info.protocols = metrics_protocols;
    if (!lws_create_vhost(srv->ctx, &info)) {
        *perr = apr_psprintf(srv->pool, "cannot listen on MetricsListen %s:%d (in use?)",
                             conf->metrics_host, conf->metrics_port);
        return APR_EGENERAL;
    }
    return APR_SUCCESS;
}

static lws_retry_bo_t retry;

/* lws sizes its descriptor table by the soft RLIMIT_NOFILE, and looks a socket up by
 * index there. Its fd_limit_per_thread option would make every lookup a linear scan
 * of the table instead (lws 4.1 "slow fds handling": a third of the CPU at 10,000
 * connections), so the table is sized by setting the soft limit itself: to what
 * MaxConnections needs, within the hard limit. */
static void size_fd_table(const nt_config_t *conf)
{
    struct rlimit rl;
    rlim_t want = (rlim_t)conf->max_connections + NT_FD_HEADROOM;

    if (getrlimit(RLIMIT_NOFILE, &rl)) return;
    if (rl.rlim_max != RLIM_INFINITY && want > rl.rlim_max) {
        nt_log(FS_LOG_WARNING, "FS20403: MaxConnections %d needs %lu file descriptors; the "
               "hard limit is %lu (raise LimitNOFILE / ulimit -Hn)", conf->max_connections,
               (unsigned long)want, (unsigned long)rl.rlim_max);
        want = rl.rlim_max;
    }
    rl.rlim_cur = want;
    if (setrlimit(RLIMIT_NOFILE, &rl)) {
        nt_log(FS_LOG_WARNING, "FS20404: cannot set the file descriptor limit to %lu",
               (unsigned long)want);
    }
}

apr_status_t nt_ws_create(nt_server_t *srv, const char **perr)
{
    const nt_config_t *conf = srv->conf;
    struct lws_context_creation_info info;
    long ping = (long)apr_time_sec(conf->ping_interval);
    long hangup = ping + (long)apr_time_sec(conf->ping_timeout);

    size_fd_table(conf);
    memset(&info, 0, sizeof(info));
    memset(&retry, 0, sizeof(retry));
    retry.secs_since_valid_ping = (uint16_t)(ping > 65535 ? 65535 : ping);
    retry.secs_since_valid_hangup = (uint16_t)(hangup > 65535 ? 65535 : hangup);
    info.port = conf->listen_port;
    info.iface = conf->listen_host;
    info.vhost_name = "fhirsub-notifier";
    info.protocols = protocols;
    info.user = srv;
    info.options = LWS_SERVER_OPTION_VALIDATE_UTF8;
    info.retry_and_idle_policy = &retry;
    /* the handshake may carry ?token= (up to FS_TOKEN_MAX_LEN) */
    info.max_http_header_data = (unsigned short)(FS_TOKEN_MAX_LEN + 4096);
    if (conf->tls_cert) {
        info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
        info.ssl_cert_filepath = conf->tls_cert;
        info.ssl_private_key_filepath = conf->tls_key;
    }
    if (!(srv->ctx = lws_create_context(&info))) {
        *perr = apr_psprintf(srv->pool, "cannot listen on %s:%d%s (in use? see the lws "
                             "lines above)", conf->listen_host, conf->listen_port,
                             conf->tls_cert ? " with TLS" : "");
        return APR_EGENERAL;
    }
    if (conf->metrics == NT_METRICS_OWN && APR_SUCCESS != create_metrics_vhost(srv, perr)) {
        nt_ws_destroy(srv);
        return APR_EGENERAL;
    }
    return APR_SUCCESS;
}

void nt_ws_destroy(nt_server_t *srv)
{
    if (srv->ctx) lws_context_destroy(srv->ctx);
    srv->ctx = NULL;
}

void nt_ws_wake(void *baton)
{
    nt_server_t *srv = baton;
    if (srv->ctx) lws_cancel_service(srv->ctx);
}
