/* fhirsub-notifier: the websocket half of mod_fhirsub. main() only reads the
 * configuration, builds the pieces and runs the libwebsockets service loop; the
 * threading is described in docs/NOTIFIER.md:
 *   - the lws service thread (this one): sockets, timers, every per-connection and
 *     per-subscription structure (nt_ws, nt_conn, nt_watch, nt_session);
 *   - the database worker (nt_db): SQL, token checks, Bundle building, wake-ups. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <apr_general.h>
#include <apr_getopt.h>
#include <apr_strings.h>

#include "fs_notify.h"
#include "nt_config.h"
#include "nt_db.h"
#include "nt_log.h"
#include "nt_session.h"
#include "nt_ws.h"

#ifndef FHIRSUB_VERSION
#define FHIRSUB_VERSION "unknown"
#endif

/* How long connections get to take their 1001 close at shutdown. */
#define NT_SHUTDOWN_GRACE apr_time_from_sec(3)

static volatile sig_atomic_t stop_requested;
static nt_server_t *running;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
    if (running && running->ctx) lws_cancel_service(running->ctx);
}

static const apr_getopt_option_t options[] = {
    { "config", 'c', 1, "configuration file" },
    { "option", 'o', 1, "set a configuration key" },
    { "test", 't', 0, "check the configuration and exit" },
    { "version", 'V', 0, "print the version and exit" },
    { "help", 'h', 0, "this help" },
    { NULL, 0, 0, NULL }
};

static void usage(FILE *out)
{
    fprintf(out,
            "usage: fhirsub-notifier [-c FILE] [-o Key=Value]... [-t] [-V] [-h]\n"
            "The websocket half of mod_fhirsub: serves FhirSubWebSocketURL, binds clients with\n"
            "the binding tokens httpd hands out and delivers their notifications.\n\n"
            "  -c, --config FILE       configuration file (default " NT_DEFAULT_CONFIG_FILE
            "\n                          when it exists)\n"
            "  -o, --option Key=Value  set a configuration key (after the file); repeatable\n"
            "  -t, --test              check the configuration and exit\n"
            "  -V, --version           print the version and exit\n"
            "  -h, --help              this help\n\n"
            "Plain HTTP GET /healthz and /metrics (Prometheus) where MetricsListen says.\n"
            "Runs in the foreground and logs to stderr. SIGTERM or SIGINT: every client gets a\n"
            "1001 close, then exit 0. Exit 1: cannot listen or start; 2: configuration error.\n"
            "Keys and defaults: man fhirsub-notifier, the shipped fhirsub-notifier.conf.\n");
}

/* Read the file and the overrides; 0 on success, else the exit status. */
static int configure(nt_config_t *conf, apr_pool_t *p, int argc, const char *const *argv,
                     int *ptest)
{
    apr_array_header_t *overrides = apr_array_make(p, 4, sizeof(const char *));
    const char *file = NULL, *arg, *err = NULL;
    apr_getopt_t *opt;
    apr_status_t rv;
    int ch, i;

    nt_config_defaults(conf);
    apr_getopt_init(&opt, p, argc, argv);
    while (APR_SUCCESS == (rv = apr_getopt_long(opt, options, &ch, &arg))) {
        switch (ch) {
        case 'c': file = arg; break;
        case 'o': APR_ARRAY_PUSH(overrides, const char *) = arg; break;
        case 't': *ptest = 1; break;
        case 'V': printf("fhirsub-notifier %s\n", FHIRSUB_VERSION); return -1;
        case 'h': usage(stdout); return -1;
        default: break;
        }
    }
    if (rv != APR_EOF || opt->ind < argc) {
        usage(stderr);
        return 2;
    }
    if (!file && 0 == access(NT_DEFAULT_CONFIG_FILE, R_OK)) file = NT_DEFAULT_CONFIG_FILE;
    if (file && APR_SUCCESS != nt_config_load(conf, p, file, &err)) goto fail;
    for (i = 0; i < overrides->nelts; ++i) {
        const char *kv = APR_ARRAY_IDX(overrides, i, const char *);
        const char *eq = strchr(kv, '=');
        if (!eq) {
            err = apr_psprintf(p, "-o %s: expected Key=Value", kv);
            goto fail;
        }
        if (APR_SUCCESS != nt_config_set(conf, p, apr_pstrmemdup(p, kv, (apr_size_t)(eq - kv)),
                                         eq + 1, &err)) {
            err = apr_psprintf(p, "-o %s", err);
            goto fail;
        }
    }
    if (APR_SUCCESS != nt_config_finish(conf, p, &err)) goto fail;
    return 0;
fail:
    fprintf(stderr, "fhirsub-notifier: FS20001: configuration error: %s\n", err);
    return 2;
}

/* Release what connections left behind (a watch whose scan result was dropped). */
static void free_watches(nt_server_t *srv)
{
    apr_hash_index_t *hi;
    for (hi = apr_hash_first(NULL, srv->watches); hi; hi = apr_hash_first(NULL, srv->watches)) {
        nt_watch_t *w = apr_hash_this_val(hi);
        while (w->bindings) nt_binding_remove(w->bindings);
        w->inflight = 0;
        w->nbindings = 0;
        nt_watch_release(srv, w);
    }
}

static int serve(nt_server_t *srv)
{
    apr_time_t deadline = 0;

    while (1) {
        if (lws_service(srv->ctx, 0) < 0) {
            nt_log(FS_LOG_ERR, "FS20004: the service loop failed; stopping");
            return 1;
        }
        if (stop_requested && !srv->shutting_down) {
            nt_log(FS_LOG_NOTICE, "FS20005: stopping: closing %d connection(s)", srv->nconns);
            nt_session_shutdown(srv);
            deadline = apr_time_now() + NT_SHUTDOWN_GRACE;
        }
        if (srv->shutting_down && (srv->nconns == 0 || apr_time_now() > deadline)) return 0;
    }
}

int main(int argc, const char *const *argv)
{
    nt_config_t conf;
    nt_server_t srv;
    apr_pool_t *pool = NULL;
    const char *err = NULL;
    struct sigaction sa;
    int test_only = 0, status;

    apr_app_initialize(&argc, &argv, NULL);
    atexit(apr_terminate);
    apr_pool_create(&pool, NULL);
    nt_log_init(FS_LOG_NOTICE);
    if ((status = configure(&conf, pool, argc, argv, &test_only))) {
        apr_pool_destroy(pool);
        return status < 0 ? 0 : status;
    }
    nt_log_init(conf.log_level);
    if (test_only) {
        printf("fhirsub-notifier: configuration OK%s%s\n", conf.file ? " in " : "",
               conf.file ? conf.file : "");
        apr_pool_destroy(pool);
        return 0;
    }

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);

    nt_session_init(&srv, pool, &conf);
    if (APR_SUCCESS != nt_ws_create(&srv, &err)) {
        nt_log(FS_LOG_ERR, "FS20002: %s", err);
        apr_pool_destroy(pool);
        return 1;
    }
    running = &srv;
    if (APR_SUCCESS != nt_db_start(&srv.db, pool, &conf, nt_ws_wake, &srv, &err)) {
        nt_log(FS_LOG_ERR, "FS20003: %s", err);
        running = NULL;
        nt_ws_destroy(&srv);
        apr_pool_destroy(pool);
        return 1;
    }
    nt_session_start(&srv);
    nt_log(FS_LOG_NOTICE, "FS20006: fhirsub-notifier %s listening on %s://%s:%d%s "
           "(database %s, wake-ups: %s%s%s)", FHIRSUB_VERSION, conf.tls_cert ? "wss" : "ws",
           conf.listen_host, conf.listen_port, conf.path, conf.db_driver,
           !strcmp(conf.db_driver, "pgsql") ? "LISTEN " FS_NOTIFY_CHANNEL ", " : "",
           conf.wake_host ? apr_psprintf(pool, "udp %s:%d, ", conf.wake_host, conf.wake_port)
                          : "", apr_psprintf(pool, "polling every %.2g s",
                                             (double)conf.poll_interval / APR_USEC_PER_SEC));

    status = serve(&srv);

    nt_session_stop(&srv);
    nt_db_stop(srv.db);
    srv.db = NULL;
    running = NULL;
    nt_ws_destroy(&srv);
    free_watches(&srv);
    nt_log(FS_LOG_NOTICE, "FS20007: stopped");
    apr_pool_destroy(pool);
    return status;
}
