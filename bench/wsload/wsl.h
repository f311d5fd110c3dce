/* wsload: a websocket load generator for fhirsub-notifier benchmarks (bench/).
 *
 * One thread, one epoll loop, plain or TLS sockets (OpenSSL), minimal RFC 6455 client
 * framing. It connects N websocket clients, binds each with a token (`bind-with-token`),
 * waits for their handshakes, then sends FHIR writes over keep-alive HTTP/1.1 connections
 * at an offered rate and counts, per client, the event notifications that arrive,
 * timestamped with CLOCK_MONOTONIC in the same process as the HTTP responses. */
#ifndef WSL_H
#define WSL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <apr_pools.h>
#include <apr_hash.h>
#include <openssl/ssl.h>

/* ---- time ---- */
/* Monotonic nanoseconds. */
int64_t wsl_now(void);
#define WSL_MS(ns) ((double)(ns) / 1e6)

/* ---- a growable byte buffer ---- */
typedef struct {
    char *data;
    size_t len, cap;
} wsl_buf_t;

int wsl_buf_append(wsl_buf_t *b, const void *p, size_t n);
void wsl_buf_consume(wsl_buf_t *b, size_t n);
void wsl_buf_free(wsl_buf_t *b);

/* ---- a socket, plain or TLS ---- */
typedef struct {
    int fd;
    SSL *ssl;            /* NULL: plain */
    int connected;       /* TCP connect finished */
    int tls_done;        /* TLS handshake finished (or plain) */
    int want_write;      /* the last operation needs EPOLLOUT */
    uint32_t events;     /* epoll interest registered now */
} wsl_sock_t;

#define WSL_AGAIN (-2)
/* Starts a non-blocking connect to host:port; registers the socket with epoll (data.ptr = owner). */
int wsl_sock_open(wsl_sock_t *s, int epfd, const char *host, int port, SSL_CTX *tls, void *owner);
/* Drives connect and TLS handshake: 1 ready, WSL_AGAIN not yet, -1 failed. */
int wsl_sock_progress(wsl_sock_t *s);
/* > 0 bytes, 0 end of stream, WSL_AGAIN, -1 error */
ssize_t wsl_sock_read(wsl_sock_t *s, void *buf, size_t n);
ssize_t wsl_sock_write(wsl_sock_t *s, const void *buf, size_t n);
/* Sets the epoll interest: EPOLLIN plus EPOLLOUT when out_pending or a write is wanted. */
void wsl_sock_interest(wsl_sock_t *s, int epfd, void *owner, int out_pending);
void wsl_sock_close(wsl_sock_t *s, int epfd);

/* ---- samples and percentiles ---- */
typedef struct {
    double *v;
    size_t n, cap;
} wsl_samples_t;

int wsl_samples_add(wsl_samples_t *s, double value);
/* Sorts once; p in [0,1]; nearest rank. NAN when empty. */
double wsl_samples_pct(wsl_samples_t *s, double p);
double wsl_samples_max(wsl_samples_t *s);

/* ---- the run ---- */
typedef struct wsl_run_t wsl_run_t;

/* A FHIR write and what became of it. */
typedef struct {
    int64_t sent, answered;     /* ns; 0 = not yet */
    int status;
    char id[72];                /* resource id from Location */
} wsl_write_t;

/* A resource id seen in a response or a notification (for correlation). */
typedef struct {
    long write;                 /* index into run->writes, -1 = response not read yet */
    int64_t *early;             /* arrival times of notifications that came first */
    size_t nearly, capearly;
} wsl_ref_t;

/* ---- websocket clients (wsl_ws.c) ---- */
typedef enum { WS_CONNECTING, WS_UPGRADING, WS_BINDING, WS_BOUND, WS_CLOSED } wsl_ws_state_t;

typedef struct wsl_client_t {
    wsl_run_t *run;
    int index;
    wsl_ws_state_t state;
    wsl_sock_t sock;
    wsl_buf_t out;               /* bytes not yet written */
    wsl_buf_t head;              /* the HTTP upgrade answer being read */
    /* frame parser */
    unsigned char hdr[14];
    size_t hdr_len, hdr_need;
    uint64_t left;               /* payload bytes still to read in the current frame */
    int opcode, fin, msg_opcode;
    unsigned char mask[4];
    wsl_buf_t msg;               /* the message (text) being reassembled */
    wsl_buf_t ctrl;              /* a control frame's payload */
    /* what it received */
    long handshakes, events, heartbeats, others;
    long long last_number;       /* highest event number seen */
    long disorder;               /* event numbers not above the previous one */
    int close_code;
    int64_t bound_at;
} wsl_client_t;

int wsl_client_start(wsl_client_t *c);
/* An epoll event for the client. */
void wsl_client_io(wsl_client_t *c, uint32_t events);

/* ---- HTTP writers (wsl_http.c) ---- */
typedef struct wsl_http_t {
    wsl_run_t *run;
    wsl_sock_t sock;
    int busy;                    /* a request is out */
    long write;                  /* its index */
    wsl_buf_t out, in;
    long served;
} wsl_http_t;

int wsl_http_start(wsl_http_t *h);
void wsl_http_io(wsl_http_t *h, uint32_t events);
/* Sends write number w on an idle connection: 0, or -1. */
int wsl_http_send(wsl_http_t *h, long w);

/* ---- run-wide state (wsload.c) ---- */
struct wsl_run_t {
    apr_pool_t *pool;
    int epfd;
    SSL_CTX *tls;
    /* websocket side */
    const char *ws_host, *ws_path;
    int ws_port;
    char **tokens;
    int ntokens;
    int no_bind;                 /* stay unbound after the upgrade (a baseline) */
    wsl_client_t *clients;
    int nclients, started, bound, closed, connecting;
    long expect;                 /* event notifications each client waits for */
    int complete;                /* bound clients that have them all */
    int lost;                    /* bound clients that closed since */
    /* HTTP side */
    const char *http_host, *http_path, *auth, *body, *id_marker;
    int http_port;
    wsl_http_t *https;
    int nhttp;
    wsl_write_t *writes;
    long nwrites, next_write, answered, failed_writes;
    /* correlation: resource id -> wsl_ref_t */
    apr_hash_t *refs;
    wsl_samples_t added;         /* notification arrival - HTTP response arrival (ms) */
    wsl_samples_t http_ms;       /* HTTP write time (ms) */
    long warmup;                 /* first writes left out of the samples */
    long uncorrelated;           /* notifications naming no known write */
    int64_t first_arrival, last_arrival;
    long events_total;
    int verbose;
};

/* Called by clients and writers. */
void wsl_run_client_bound(wsl_run_t *run, wsl_client_t *c);
void wsl_run_client_closed(wsl_run_t *run, wsl_client_t *c);
void wsl_run_event(wsl_run_t *run, wsl_client_t *c, const char *msg, size_t len, int64_t at);
void wsl_run_answered(wsl_run_t *run, wsl_http_t *h, long w);
void wsl_run_writer_failed(wsl_run_t *run, wsl_http_t *h, const char *why);

void wsl_log(wsl_run_t *run, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
