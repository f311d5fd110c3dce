/* HTTP/1.1 keep-alive writers of wsload: one FHIR write (POST of a fixed body) at a time
 * per connection; the answer's status and the resource id of its Location header. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>

#include "wsl.h"

int wsl_http_start(wsl_http_t *h)
{
    wsl_run_t *run = h->run;
    h->busy = 0;
    h->in.len = h->out.len = 0;
    return wsl_sock_open(&h->sock, run->epfd, run->http_host, run->http_port, NULL, h);
}

int wsl_http_send(wsl_http_t *h, long w)
{
    wsl_run_t *run = h->run;
    char head[1024];
    size_t blen = strlen(run->body);
    int n = snprintf(head, sizeof(head),
                     "POST %s HTTP/1.1\r\nHost: %s:%d\r\n%s%s%s"
                     "Content-Type: application/fhir+json\r\nAccept: application/fhir+json\r\n"
                     "Content-Length: %zu\r\n\r\n",
                     run->http_path, run->http_host, run->http_port,
                     run->auth ? "Authorization: Basic " : "", run->auth ? run->auth : "",
                     run->auth ? "\r\n" : "", blen);
    if (n < 0 || (size_t)n >= sizeof(head)) return -1;
    if (wsl_buf_append(&h->out, head, (size_t)n) || wsl_buf_append(&h->out, run->body, blen)) return -1;
    h->busy = 1;
    h->write = w;
    run->writes[w].sent = wsl_now();
    if (h->sock.connected) wsl_http_io(h, EPOLLOUT);
    else wsl_sock_interest(&h->sock, run->epfd, h, 1);
    return 0;
}

/* A header's value (case-insensitive name) in [head, end), copied to out; 0 when found. */
static int header(const char *head, const char *end, const char *name, char *out, size_t cap)
{
    size_t nlen = strlen(name);
    const char *p = head;
    while (p < end && (p = memmem(p, (size_t)(end - p), "\r\n", 2))) {
        const char *line = p + 2, *eol;
        p = line;
        if ((size_t)(end - line) <= nlen || strncasecmp(line, name, nlen) || line[nlen] != ':') continue;
        line += nlen + 1;
        while (*line == ' ') ++line;
        if (!(eol = memmem(line, (size_t)(end - line), "\r\n", 2))) eol = end;
        if ((size_t)(eol - line) >= cap) return -1;
        memcpy(out, line, (size_t)(eol - line));
        out[eol - line] = '\0';
        return 0;
    }
    return -1;
}

/* Length of a complete chunked body at p (n bytes available), or -1 if incomplete. */
static long chunked_length(const char *p, size_t n)
{
    size_t pos = 0;
    for (;;) {
        const char *eol = memmem(p + pos, n - pos, "\r\n", 2);
        unsigned long size;
        if (!eol) return -1;
        size = strtoul(p + pos, NULL, 16);
        pos = (size_t)(eol - p) + 2;
        if (!size) return pos + 2 <= n ? (long)(pos + 2) : -1;
        pos += size + 2;
        if (pos > n) return -1;
    }
}

/* The resource id in a Location: .../Type/<id>[/_history/<v>]. */
static void location_id(const char *loc, char *id, size_t cap)
{
    const char *hist = strstr(loc, "/_history/");
    const char *end = hist ? hist : loc + strlen(loc);
    const char *start = end;
    while (start > loc && start[-1] != '/') --start;
    if ((size_t)(end - start) >= cap) end = start + cap - 1;
    memcpy(id, start, (size_t)(end - start));
    id[end - start] = '\0';
}

/* A complete answer in h->in? 1 = handled, 0 = not yet, -1 = malformed. */
static int on_answer(wsl_http_t *h)
{
    wsl_run_t *run = h->run;
    char *end = memmem(h->in.data, h->in.len, "\r\n\r\n", 4);
    char value[512];
    size_t head_len, total;
    int close_after = 0;
    wsl_write_t *w;

    if (!end) return 0;
    head_len = (size_t)(end + 4 - h->in.data);
    if (!header(h->in.data, end + 2, "Content-Length", value, sizeof(value))) {
        total = head_len + (size_t)strtoul(value, NULL, 10);
        if (h->in.len < total) return 0;
    }
    else if (!header(h->in.data, end + 2, "Transfer-Encoding", value, sizeof(value))) {
        long body = chunked_length(end + 4, h->in.len - head_len);
        if (body < 0) return 0;
        total = head_len + (size_t)body;
    }
    else {
        return -1;
    }
    w = &run->writes[h->write];
    w->answered = wsl_now();
    w->status = h->in.len > 12 ? atoi(h->in.data + 9) : 0;
    if (!header(h->in.data, end + 2, "Location", value, sizeof(value))) {
        location_id(value, w->id, sizeof(w->id));
    }
    if (!header(h->in.data, end + 2, "Connection", value, sizeof(value)) && !strcasecmp(value, "close")) {
        close_after = 1;
    }
    wsl_buf_consume(&h->in, total);
    h->busy = 0;
    ++h->served;
    if (close_after) {
        wsl_sock_close(&h->sock, run->epfd);
        if (wsl_http_start(h)) wsl_run_writer_failed(run, h, "cannot reconnect");
    }
    wsl_run_answered(run, h, h->write);
    return 1;
}

static int read_answers(wsl_http_t *h)
{
    char buf[65536];
    for (;;) {
        ssize_t n = wsl_sock_read(&h->sock, buf, sizeof(buf));
        int rc;
        if (n == WSL_AGAIN) return 0;
        if (n == 0 && !h->busy) {
            /* the server ended an idle keep-alive connection */
            wsl_sock_close(&h->sock, h->run->epfd);
            return wsl_http_start(h);
        }
        if (n <= 0) return -1;
        if (wsl_buf_append(&h->in, buf, (size_t)n)) return -1;
        if (h->busy && (rc = on_answer(h)) < 0) return -1;
        if (h->sock.fd < 0 || (size_t)n < sizeof(buf)) return 0;
    }
}

void wsl_http_io(wsl_http_t *h, uint32_t events)
{
    wsl_run_t *run = h->run;
    int rc;

    if (h->sock.fd < 0) return;
    if (!h->sock.connected) {
        if ((rc = wsl_sock_progress(&h->sock)) == -1) {
            wsl_run_writer_failed(run, h, "connect failed");
            return;
        }
        if (rc == WSL_AGAIN) return;
    }
    while (h->out.len) {
        ssize_t n = wsl_sock_write(&h->sock, h->out.data, h->out.len);
        if (n == WSL_AGAIN) break;
        if (n <= 0) {
            wsl_run_writer_failed(run, h, "write failed");
            return;
        }
        wsl_buf_consume(&h->out, (size_t)n);
    }
    if ((events & (EPOLLIN | EPOLLHUP | EPOLLERR)) && read_answers(h)) {
        wsl_run_writer_failed(run, h, "connection lost");
        return;
    }
    wsl_sock_interest(&h->sock, run->epfd, h, h->out.len > 0);
}
