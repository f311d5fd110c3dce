/* Sockets (plain or TLS), buffers, clock and percentiles for wsload. */
#include <errno.h>
#include <stdio.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <openssl/err.h>

#include "wsl.h"

int64_t wsl_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- buffers ---------------------------------------------------------------------- */

int wsl_buf_append(wsl_buf_t *b, const void *p, size_t n)
{
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        char *d;
        while (cap < b->len + n) cap *= 2;
        if (!(d = realloc(b->data, cap))) return -1;
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

void wsl_buf_consume(wsl_buf_t *b, size_t n)
{
    if (n >= b->len) {
        b->len = 0;
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
}

void wsl_buf_free(wsl_buf_t *b)
{
    free(b->data);
    memset(b, 0, sizeof(*b));
}

/* ---- sockets ---------------------------------------------------------------------- */

int wsl_sock_open(wsl_sock_t *s, int epfd, const char *host, int port, SSL_CTX *tls, void *owner)
{
    struct sockaddr_in sa;
    struct epoll_event ev;
    int one = 1;

    memset(s, 0, sizeof(*s));
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) return -1;
    if ((s->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0) return -1;
    setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(s->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 && errno != EINPROGRESS) goto fail;
    if (tls) {
        if (!(s->ssl = SSL_new(tls)) || !SSL_set_fd(s->ssl, s->fd)) goto fail;
        SSL_set_connect_state(s->ssl);
    }
    s->events = EPOLLIN | EPOLLOUT;
    ev.events = s->events;
    ev.data.ptr = owner;
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, s->fd, &ev) < 0) goto fail;
    return 0;
fail:
    if (s->ssl) SSL_free(s->ssl);
    s->ssl = NULL;
    close(s->fd);
    s->fd = -1;
    return -1;
}

/* What an OpenSSL result means for us. */
static int tls_result(wsl_sock_t *s, int rc)
{
    int err = SSL_get_error(s->ssl, rc);
    switch (err) {
    case SSL_ERROR_WANT_READ:
        s->want_write = 0;
        return WSL_AGAIN;
    case SSL_ERROR_WANT_WRITE:
        s->want_write = 1;
        return WSL_AGAIN;
    case SSL_ERROR_ZERO_RETURN:
        return 0;
    default:
        ERR_clear_error();
        return -1;
    }
}

int wsl_sock_progress(wsl_sock_t *s)
{
    if (!s->connected) {
        int err = 0;
        socklen_t len = sizeof(err);
        if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err) return -1;
        s->connected = 1;
    }
    if (!s->tls_done) {
        int rc;
        if (!s->ssl) {
            s->tls_done = 1;
            return 1;
        }
        if ((rc = SSL_do_handshake(s->ssl)) != 1) return tls_result(s, rc) == WSL_AGAIN ? WSL_AGAIN : -1;
        s->tls_done = 1;
        s->want_write = 0;
    }
    return 1;
}

ssize_t wsl_sock_read(wsl_sock_t *s, void *buf, size_t n)
{
    ssize_t r;
    if (s->ssl) {
        int rc = SSL_read(s->ssl, buf, (int)n);
        return rc > 0 ? rc : tls_result(s, rc);
    }
    r = read(s->fd, buf, n);
    if (r < 0) return (errno == EAGAIN || errno == EINTR) ? WSL_AGAIN : -1;
    return r;
}

ssize_t wsl_sock_write(wsl_sock_t *s, const void *buf, size_t n)
{
    ssize_t r;
    if (s->ssl) {
        int rc = SSL_write(s->ssl, buf, (int)n);
        if (rc > 0) s->want_write = 0;
        return rc > 0 ? rc : tls_result(s, rc);
    }
    r = send(s->fd, buf, n, MSG_NOSIGNAL);
    if (r < 0) return (errno == EAGAIN || errno == EINTR) ? WSL_AGAIN : -1;
    return r;
}

void wsl_sock_interest(wsl_sock_t *s, int epfd, void *owner, int out_pending)
{
    struct epoll_event ev;
    uint32_t want = EPOLLIN;

    if (s->fd < 0) return;
    if (!s->connected || out_pending || s->want_write) want |= EPOLLOUT;
    if (want == s->events) return;
    ev.events = want;
    ev.data.ptr = owner;
    if (epoll_ctl(epfd, EPOLL_CTL_MOD, s->fd, &ev) == 0) s->events = want;
}

void wsl_sock_close(wsl_sock_t *s, int epfd)
{
    if (s->fd < 0) return;
    epoll_ctl(epfd, EPOLL_CTL_DEL, s->fd, NULL);
    if (s->ssl) SSL_free(s->ssl);
    s->ssl = NULL;
    close(s->fd);
    s->fd = -1;
}

/* ---- samples ---------------------------------------------------------------------- */

int wsl_samples_add(wsl_samples_t *s, double value)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 1024;
        double *v = realloc(s->v, cap * sizeof(*v));
        if (!v) return -1;
        s->v = v;
        s->cap = cap;
    }
    s->v[s->n++] = value;
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

double wsl_samples_pct(wsl_samples_t *s, double p)
{
    size_t rank;
    if (!s->n) return NAN;
    qsort(s->v, s->n, sizeof(*s->v), cmp_double);
    rank = (size_t)ceil(p * (double)s->n);
    return s->v[rank ? rank - 1 : 0];
}

double wsl_samples_max(wsl_samples_t *s)
{
    return wsl_samples_pct(s, 1.0);
}
