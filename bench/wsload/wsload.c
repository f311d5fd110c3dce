/* wsload: command line, phases (connect and bind, idle, writes and delivery) and the
 * JSON report. See wsl.h and bench/README.md. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <apr_base64.h>
#include <apr_tables.h>
#include <apr_general.h>
#include <apr_strings.h>

#include "wsl.h"

#define NS_PER_S 1000000000LL

typedef struct {
    const char *ws, *http, *tokens_file, *auth_user;
    int clients, connect_window, nhttp, tls, rss_pid;
    long writes, warmup, expect;
    double rate, timeout, drain, settle;
} wsl_opts_t;

void wsl_log(wsl_run_t *run, const char *fmt, ...)
{
    va_list ap;
    (void)run;
    va_start(ap, fmt);
    fputs("wsload: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* ---- correlation of notifications with writes ---------------------------------------- */

static wsl_ref_t *ref_for(wsl_run_t *run, const char *id, size_t len)
{
    wsl_ref_t *r = apr_hash_get(run->refs, id, (apr_ssize_t)len);
    if (!r) {
        r = apr_pcalloc(run->pool, sizeof(*r));
        r->write = -1;
        apr_hash_set(run->refs, apr_pstrmemdup(run->pool, id, len), (apr_ssize_t)len, r);
    }
    return r;
}

static void sample_added(wsl_run_t *run, long w, int64_t at)
{
    if (w < run->warmup) return;
    wsl_samples_add(&run->added, WSL_MS(at - run->writes[w].answered));
}

/* The id after the marker (e.g. "Patient/") in a notification; its length or 0. */
static size_t focus_id(const char *marker, const char *msg, size_t len, const char **id)
{
    const char *p = memmem(msg, len, marker, strlen(marker)), *e;
    if (!p) return 0;
    *id = e = p + strlen(marker);
    while (e < msg + len && (*e == '-' || *e == '.' || (*e >= '0' && *e <= '9') ||
                             (*e >= 'a' && *e <= 'z') || (*e >= 'A' && *e <= 'Z'))) ++e;
    return (size_t)(e - *id);
}

void wsl_run_event(wsl_run_t *run, wsl_client_t *c, const char *msg, size_t len, int64_t at)
{
    const char *id;
    size_t n = focus_id(run->id_marker, msg, len, &id);
    wsl_ref_t *r;

    ++run->events_total;
    if (c->events == run->expect) ++run->complete;
    if (!run->first_arrival) run->first_arrival = at;
    run->last_arrival = at;
    if (!n) {
        ++run->uncorrelated;
        return;
    }
    r = ref_for(run, id, n);
    if (r->write >= 0) {
        sample_added(run, r->write, at);
        return;
    }
    /* came before we read the HTTP answer: kept until it is read */
    if (r->nearly == r->capearly) {
        size_t cap = r->capearly ? r->capearly * 2 : 4;
        int64_t *e = realloc(r->early, cap * sizeof(*e));
        if (!e) return;
        r->early = e;
        r->capearly = cap;
    }
    r->early[r->nearly++] = at;
}

void wsl_run_answered(wsl_run_t *run, wsl_http_t *h, long w)
{
    wsl_write_t *wr = &run->writes[w];
    size_t i;

    ++run->answered;
    if (wr->status < 200 || wr->status > 299) {
        ++run->failed_writes;
        if (run->failed_writes <= 5) wsl_log(run, "write %ld answered %d", w, wr->status);
    }
    if (w >= run->warmup) wsl_samples_add(&run->http_ms, WSL_MS(wr->answered - wr->sent));
    if (wr->id[0]) {
        wsl_ref_t *r = ref_for(run, wr->id, strlen(wr->id));
        r->write = w;
        for (i = 0; i < r->nearly; ++i) sample_added(run, w, r->early[i]);
        free(r->early);
        r->early = NULL;
        r->nearly = r->capearly = 0;
    }
    (void)h;
}

void wsl_run_writer_failed(wsl_run_t *run, wsl_http_t *h, const char *why)
{
    wsl_log(run, "HTTP writer: %s", why);
    if (h->busy) {
        ++run->failed_writes;
        ++run->answered;
        h->busy = 0;
    }
    wsl_sock_close(&h->sock, run->epfd);
    if (wsl_http_start(h)) {
        wsl_log(run, "HTTP writer: cannot reconnect");
    }
}

void wsl_run_client_bound(wsl_run_t *run, wsl_client_t *c)
{
    ++run->bound;
    --run->connecting;
    (void)c;
}

void wsl_run_client_closed(wsl_run_t *run, wsl_client_t *c)
{
    ++run->closed;
    if (c->bound_at == 0) --run->connecting;
    else ++run->lost;
}

/* ---- the loop --------------------------------------------------------------------- */

static int is_client(wsl_run_t *run, void *p)
{
    return run->nclients && (char *)p >= (char *)run->clients &&
           (char *)p < (char *)(run->clients + run->nclients);
}

/* One epoll round of at most timeout_ms. */
static void poll_once(wsl_run_t *run, int timeout_ms)
{
    struct epoll_event evs[512];
    int i, n = epoll_wait(run->epfd, evs, 512, timeout_ms);
    for (i = 0; i < n; ++i) {
        if (is_client(run, evs[i].data.ptr)) wsl_client_io(evs[i].data.ptr, evs[i].events);
        else wsl_http_io(evs[i].data.ptr, evs[i].events);
    }
}

static int ms_until(int64_t when)
{
    int64_t d = when - wsl_now();
    if (d <= 0) return 0;
    return (int)((d + 999999) / 1000000);
}

/* Connects and binds every client, at most window handshakes at once. */
static void connect_all(wsl_run_t *run, int window, int64_t deadline)
{
    while (run->bound + run->closed < run->nclients && wsl_now() < deadline) {
        while (run->started < run->nclients && run->connecting < window) {
            wsl_client_t *c = &run->clients[run->started++];
            ++run->connecting;
            if (wsl_client_start(c)) {
                wsl_log(run, "client %d: cannot connect", c->index);
                --run->connecting;
                ++run->closed;
            }
        }
        poll_once(run, 50);
    }
}

static void idle(wsl_run_t *run, int64_t until)
{
    while (wsl_now() < until) poll_once(run, ms_until(until));
}

static wsl_http_t *idle_writer(wsl_run_t *run)
{
    int i;
    for (i = 0; i < run->nhttp; ++i) {
        if (!run->https[i].busy && run->https[i].sock.fd >= 0) return &run->https[i];
    }
    return NULL;
}

/* Every bound client has its events (or is gone): counted as they arrive, since a
 * scan of 10,000 clients per loop turn would take CPU from the notifier. */
static int delivered_all(const wsl_run_t *run)
{
    return run->complete + run->lost >= run->bound;
}

/* Sends the writes at the offered rate (0 = as fast as the writers go) and waits for
 * the notifications; returns when every bound client has expect events, or drain
 * seconds after the last answer, or at the deadline. */
static void write_and_deliver(wsl_run_t *run, double rate, double drain, int64_t deadline)
{
    int64_t t0 = wsl_now(), last_answer = 0;
    while (wsl_now() < deadline) {
        int64_t now = wsl_now(), due = 0;
        int wait = 50;
        while (run->next_write < run->nwrites) {
            wsl_http_t *h;
            due = rate > 0 ? t0 + (int64_t)((double)run->next_write * NS_PER_S / rate) : now;
            if (due > now || !(h = idle_writer(run))) break;
            if (wsl_http_send(h, run->next_write)) {
                wsl_log(run, "cannot send write %ld", run->next_write);
                return;
            }
            ++run->next_write;
        }
        if (run->answered == run->nwrites) {
            if (!last_answer) last_answer = wsl_now();
            if (delivered_all(run)) return;
            if (wsl_now() - last_answer > (int64_t)(drain * NS_PER_S)) return;
        }
        if (run->next_write < run->nwrites && rate > 0 && due > now) wait = ms_until(due);
        poll_once(run, wait);
    }
}

/* ---- measurements of the notifier process ------------------------------------------- */

static long proc_rss_kb(int pid)
{
    char path[64], line[256];
    long kb = -1;
    FILE *f;
    snprintf(path, sizeof(path), "/proc/%d/status", pid);
    if (!(f = fopen(path, "r"))) return -1;
    while (fgets(line, sizeof(line), f)) {
        if (!strncmp(line, "VmRSS:", 6)) kb = strtol(line + 6, NULL, 10);
    }
    fclose(f);
    return kb;
}

/* utime + stime in seconds. */
static double proc_cpu_s(int pid)
{
    char path[64], buf[2048], *p;
    unsigned long ut = 0, st = 0;
    FILE *f;
    size_t n;
    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    if (!(f = fopen(path, "r"))) return NAN;
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    if (!(p = strrchr(buf, ')'))) return NAN;
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2) {
        return NAN;
    }
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static double self_cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

/* ---- set-up ----------------------------------------------------------------------- */

static int split_hostport(apr_pool_t *p, const char *s, const char **host, int *port)
{
    const char *colon = strrchr(s, ':');
    if (!colon) return -1;
    *host = apr_pstrmemdup(p, s, (size_t)(colon - s));
    *port = atoi(colon + 1);
    return *port > 0 ? 0 : -1;
}

static int read_tokens(wsl_run_t *run, const char *file)
{
    FILE *f = fopen(file, "r");
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    apr_array_header_t *list = apr_array_make(run->pool, 16, sizeof(char *));

    if (!f) return -1;
    while ((n = getline(&line, &cap, f)) > 0) {
        while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = '\0';
        if (n) APR_ARRAY_PUSH(list, char *) = apr_pstrdup(run->pool, line);
    }
    free(line);
    fclose(f);
    run->tokens = (char **)list->elts;
    run->ntokens = list->nelts;
    return run->ntokens ? 0 : -1;
}

static const char *basic_auth(apr_pool_t *p, const char *userpass)
{
    char *out = apr_palloc(p, (apr_size_t)apr_base64_encode_len((int)strlen(userpass)));
    apr_base64_encode(out, userpass, (int)strlen(userpass));
    return out;
}

static void usage(void)
{
    fputs("usage: wsload [--ws HOST:PORT [--path P] [--tls] --tokens FILE --clients N]\n"
          "              [--http HOST:PORT --http-path P [--auth USER:PW] [--body JSON]\n"
          "               --writes K [--rate R] [--writers M] [--warmup W] [--expect E]]\n"
          "              [--rss-pid PID] [--marker Patient/] [--connect-window C]\n"
          "              [--settle S] [--drain S] [--timeout S] [--no-bind] [--verbose]\n"
          "Connects N websocket clients (client i binds with token i mod #tokens), then sends\n"
          "K POSTs at R per second (0: as fast as M writers go) and counts each client's\n"
          "event notifications (--no-bind: clients stay unbound after the upgrade). Prints\n"
          "one JSON object.\n", stderr);
}

static int parse_opts(int argc, char **argv, wsl_opts_t *o, wsl_run_t *run)
{
    static const struct option longopts[] = {
        { "ws", 1, NULL, 'w' }, { "path", 1, NULL, 'P' }, { "tls", 0, NULL, 'T' },
        { "tokens", 1, NULL, 't' }, { "clients", 1, NULL, 'n' }, { "http", 1, NULL, 'h' },
        { "http-path", 1, NULL, 'p' }, { "auth", 1, NULL, 'a' }, { "body", 1, NULL, 'b' },
        { "writes", 1, NULL, 'k' }, { "rate", 1, NULL, 'r' }, { "writers", 1, NULL, 'm' },
        { "warmup", 1, NULL, 'W' }, { "expect", 1, NULL, 'e' }, { "rss-pid", 1, NULL, 'R' },
        { "marker", 1, NULL, 'M' }, { "connect-window", 1, NULL, 'c' },
        { "settle", 1, NULL, 's' }, { "drain", 1, NULL, 'd' }, { "timeout", 1, NULL, 'x' },
        { "no-bind", 0, NULL, 'B' }, { "verbose", 0, NULL, 'v' }, { NULL, 0, NULL, 0 }
    };
    int ch;
    while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (ch) {
        case 'w': o->ws = optarg; break;
        case 'P': run->ws_path = optarg; break;
        case 'T': o->tls = 1; break;
        case 't': o->tokens_file = optarg; break;
        case 'n': o->clients = atoi(optarg); break;
        case 'h': o->http = optarg; break;
        case 'p': run->http_path = optarg; break;
        case 'a': o->auth_user = optarg; break;
        case 'b': run->body = optarg; break;
        case 'k': o->writes = atol(optarg); break;
        case 'r': o->rate = atof(optarg); break;
        case 'm': o->nhttp = atoi(optarg); break;
        case 'W': o->warmup = atol(optarg); break;
        case 'e': o->expect = atol(optarg); break;
        case 'R': o->rss_pid = atoi(optarg); break;
        case 'M': run->id_marker = optarg; break;
        case 'c': o->connect_window = atoi(optarg); break;
        case 's': o->settle = atof(optarg); break;
        case 'd': o->drain = atof(optarg); break;
        case 'x': o->timeout = atof(optarg); break;
        case 'B': run->no_bind = 1; break;
        case 'v': run->verbose = 1; break;
        default: return -1;
        }
    }
    if (o->clients < 0 || o->clients > 1000000 || o->writes < 0 || o->writes > 100000000 ||
        o->nhttp < 1 || o->nhttp > 1024 || o->connect_window < 1) return -1;
    if (o->clients == 0 && o->writes == 0) return -1;     /* nothing to do: the usage */
    if (o->clients > 0 && (!o->ws || (!o->tokens_file && !run->no_bind))) return -1;
    if (o->writes > 0 && !o->http) return -1;
    if (o->ws && split_hostport(run->pool, o->ws, &run->ws_host, &run->ws_port)) return -1;
    if (o->http && split_hostport(run->pool, o->http, &run->http_host, &run->http_port)) return -1;
    return optind == argc ? 0 : -1;
}

static int setup(wsl_run_t *run, const wsl_opts_t *o)
{
    int i;
    if ((run->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0) return -1;
    if (o->tls) {
        if (!(run->tls = SSL_CTX_new(TLS_client_method()))) return -1;
        SSL_CTX_set_verify(run->tls, SSL_VERIFY_NONE, NULL);
        SSL_CTX_set_mode(run->tls, SSL_MODE_RELEASE_BUFFERS);
    }
    if (o->clients > 0 && !run->no_bind && read_tokens(run, o->tokens_file)) {
        wsl_log(run, "no tokens in %s", o->tokens_file);
        return -1;
    }
    run->nclients = o->clients;
    run->clients = calloc((size_t)o->clients + 1, sizeof(wsl_client_t));
    for (i = 0; i < o->clients; ++i) {
        run->clients[i].run = run;
        run->clients[i].index = i;
        run->clients[i].sock.fd = -1;
    }
    run->nwrites = o->writes;
    run->expect = o->expect ? o->expect : o->writes;
    run->warmup = o->warmup;
    run->writes = calloc((size_t)o->writes + 1, sizeof(wsl_write_t));
    run->refs = apr_hash_make(run->pool);
    if (o->auth_user) run->auth = basic_auth(run->pool, o->auth_user);
    run->nhttp = o->writes > 0 ? o->nhttp : 0;
    run->https = calloc((size_t)run->nhttp + 1, sizeof(wsl_http_t));
    for (i = 0; i < run->nhttp; ++i) {
        run->https[i].run = run;
        if (wsl_http_start(&run->https[i])) return -1;
    }
    return run->clients && run->writes && run->https ? 0 : -1;
}

/* ---- the report ------------------------------------------------------------------- */

static void print_dist(const char *name, wsl_samples_t *s)
{
    printf("  \"%s\": {\"n\": %zu, \"p50\": %.3f, \"p99\": %.3f, \"max\": %.3f},\n", name, s->n,
           s->n ? wsl_samples_pct(s, 0.5) : 0, s->n ? wsl_samples_pct(s, 0.99) : 0,
           s->n ? wsl_samples_max(s) : 0);
}

static void report(wsl_run_t *run, const wsl_opts_t *o, const long rss[3], double bind_s,
                   double cpu, double self_cpu, int64_t t_first_write, int64_t t_writes_done)
{
    long min = -1, max = 0, disorder = 0, complete = 0, heartbeats = 0, others = 0;
    int i;
    double span = run->last_arrival && t_first_write ? WSL_MS(run->last_arrival - t_first_write) / 1e3 : 0;
    double spread = run->last_arrival ? WSL_MS(run->last_arrival - run->first_arrival) / 1e3 : 0;
    double wspan = t_writes_done > t_first_write ? WSL_MS(t_writes_done - t_first_write) / 1e3 : 0;
    long expect = o->expect ? o->expect : o->writes;

    for (i = 0; i < run->nclients; ++i) {
        const wsl_client_t *c = &run->clients[i];
        if (c->bound_at == 0) continue;
        if (min < 0 || c->events < min) min = c->events;
        if (c->events > max) max = c->events;
        if (c->events >= expect) ++complete;
        disorder += c->disorder;
        heartbeats += c->heartbeats;
        others += c->others;
    }
    printf("{\n  \"clients\": %d, \"bound\": %d, \"closed\": %d, \"bind_s\": %.3f, \"tls\": %s,\n",
           run->nclients, run->bound, run->closed, bind_s, o->tls ? "true" : "false");
    printf("  \"rss_kb\": {\"before\": %ld, \"bound\": %ld, \"end\": %ld},\n", rss[0], rss[1], rss[2]);
    printf("  \"rss_per_conn_bytes\": %.0f,\n",
           run->bound && rss[0] > 0 ? (double)(rss[1] - rss[0]) * 1024.0 / run->bound : 0.0);
    printf("  \"writes\": %ld, \"rate_offered\": %.1f, \"rate_achieved\": %.1f, \"write_failures\": %ld,\n",
           run->nwrites, o->rate, wspan > 0 ? (double)(run->next_write - 1) / wspan : 0.0,
           run->failed_writes);
    print_dist("http_ms", &run->http_ms);
    print_dist("added_ms", &run->added);
    printf("  \"uncorrelated\": %ld,\n", run->uncorrelated);
    printf("  \"expect_per_client\": %ld, \"events_total\": %ld, \"clients_complete\": %ld,"
           " \"per_client_min\": %ld, \"per_client_max\": %ld, \"disorder\": %ld,"
           " \"heartbeats\": %ld, \"other_messages\": %ld,\n",
           expect, run->events_total, complete, min < 0 ? 0 : min, max, disorder, heartbeats, others);
    printf("  \"span_s\": %.3f, \"spread_s\": %.3f, \"rate_per_s\": %.0f, \"rate_spread_per_s\": %.0f,\n",
           span, spread, span > 0 ? (double)run->events_total / span : 0.0,
           spread > 0 ? (double)run->events_total / spread : 0.0);
    printf("  \"notifier_cpu_s\": ");
    if (isfinite(cpu)) printf("%.3f", cpu);
    else fputs("null", stdout);
    printf(", \"wsload_cpu_s\": %.3f\n}\n", self_cpu);
}

int main(int argc, char **argv)
{
    wsl_opts_t o = { .connect_window = 256, .nhttp = 4, .timeout = 300, .drain = 10, .settle = 1 };
    wsl_run_t run;
    apr_pool_t *pool;
    int64_t start, deadline, t_bound, t_first = 0, t_done = 0;
    long rss[3] = { -1, -1, -1 };
    double cpu0 = NAN, cpu1 = NAN, self0;

    memset(&run, 0, sizeof(run));
    signal(SIGPIPE, SIG_IGN);
    srandom((unsigned)getpid());
    if (apr_initialize() != APR_SUCCESS || apr_pool_create(&pool, NULL) != APR_SUCCESS) return 2;
    run.pool = pool;
    run.ws_path = "/ws/subscriptions-r4";
    run.http_path = "/fhir/R4/Patient";
    run.body = "{\"resourceType\":\"Patient\",\"active\":true}";
    run.id_marker = "Patient/";
    if (parse_opts(argc, argv, &o, &run)) {
        usage();
        return 2;
    }
    if (setup(&run, &o)) {
        wsl_log(&run, "set-up failed: %s", strerror(errno));
        return 1;
    }
    start = wsl_now();
    deadline = start + (int64_t)(o.timeout * NS_PER_S);
    if (o.rss_pid) rss[0] = proc_rss_kb(o.rss_pid);
    connect_all(&run, o.connect_window, deadline);
    t_bound = wsl_now();
    if (run.bound < run.nclients) {
        wsl_log(&run, "only %d of %d clients bound", run.bound, run.nclients);
    }
    else if (run.nclients) {
        wsl_log(&run, "%d clients bound in %.3f s", run.bound, WSL_MS(t_bound - start) / 1e3);
    }
    idle(&run, wsl_now() + (int64_t)(o.settle * NS_PER_S));
    if (o.rss_pid) {
        rss[1] = proc_rss_kb(o.rss_pid);
        cpu0 = proc_cpu_s(o.rss_pid);
    }
    self0 = self_cpu_s();
    if (run.nwrites) {
        t_first = wsl_now();
        write_and_deliver(&run, o.rate, o.drain, deadline);
        t_done = wsl_now();
        if (run.answered) {
            int64_t last = 0;
            long i;
            for (i = 0; i < run.nwrites; ++i) {
                if (run.writes[i].sent && (!t_first || run.writes[i].sent < t_first)) t_first = run.writes[i].sent;
                if (run.writes[i].sent > last) last = run.writes[i].sent;
            }
            t_done = last;
        }
    }
    if (o.rss_pid) {
        rss[2] = proc_rss_kb(o.rss_pid);
        cpu1 = proc_cpu_s(o.rss_pid);
    }
    report(&run, &o, rss, WSL_MS(t_bound - start) / 1e3, cpu1 - cpu0, self_cpu_s() - self0, t_first,
           t_done);
    return run.bound == run.nclients && run.failed_writes == 0 ? 0 : 1;
}
