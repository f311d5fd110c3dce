/* One websocket client of wsload: upgrade, bind, RFC 6455 frames (masked client frames,
 * reassembled text messages, ping answered with pong), what each message is. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include "wsl.h"

#define WS_TEXT 0x1
#define WS_CLOSE 0x8
#define WS_PING 0x9
#define WS_PONG 0xA

static void client_fail(wsl_client_t *c, const char *why)
{
    if (c->state == WS_CLOSED) return;
    if (c->run->verbose || c->state != WS_BOUND) {
        wsl_log(c->run, "client %d: %s (close code %d)", c->index, why, c->close_code);
    }
    wsl_sock_close(&c->sock, c->run->epfd);
    c->state = WS_CLOSED;
    wsl_buf_free(&c->out);
    wsl_buf_free(&c->head);
    wsl_buf_free(&c->msg);
    wsl_buf_free(&c->ctrl);
    wsl_run_client_closed(c->run, c);
}

/* A masked client frame into c->out. */
static int queue_frame(wsl_client_t *c, int opcode, const void *payload, size_t len)
{
    unsigned char hdr[14];
    size_t n = 0, i;
    uint32_t key = (uint32_t)random();
    unsigned char *mask = (unsigned char *)&key;
    size_t start;

    hdr[n++] = (unsigned char)(0x80 | opcode);
    if (len < 126) {
        hdr[n++] = (unsigned char)(0x80 | len);
    }
    else if (len < 65536) {
        hdr[n++] = 0x80 | 126;
        hdr[n++] = (unsigned char)(len >> 8);
        hdr[n++] = (unsigned char)len;
    }
    else {
        int k;
        hdr[n++] = 0x80 | 127;
        for (k = 7; k >= 0; --k) hdr[n++] = (unsigned char)((uint64_t)len >> (8 * k));
    }
    memcpy(hdr + n, mask, 4);
    n += 4;
    if (wsl_buf_append(&c->out, hdr, n)) return -1;
    start = c->out.len;
    if (wsl_buf_append(&c->out, payload, len)) return -1;
    for (i = 0; i < len; ++i) c->out.data[start + i] ^= mask[i % 4];
    return 0;
}

static int flush(wsl_client_t *c)
{
    while (c->out.len) {
        ssize_t n = wsl_sock_write(&c->sock, c->out.data, c->out.len);
        if (n == WSL_AGAIN) break;
        if (n <= 0) return -1;
        wsl_buf_consume(&c->out, (size_t)n);
    }
    wsl_sock_interest(&c->sock, c->run->epfd, c, c->out.len > 0);
    return 0;
}

int wsl_client_start(wsl_client_t *c)
{
    wsl_run_t *run = c->run;
    if (wsl_sock_open(&c->sock, run->epfd, run->ws_host, run->ws_port, run->tls, c)) {
        c->state = WS_CLOSED;
        return -1;
    }
    c->state = WS_CONNECTING;
    c->last_number = -1;
    return 0;
}

static int send_upgrade(wsl_client_t *c)
{
    char req[1024];
    int n = snprintf(req, sizeof(req),
                     "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     "Sec-WebSocket-Version: 13\r\n\r\n",
                     c->run->ws_path, c->run->ws_host, c->run->ws_port);
    if (n < 0 || (size_t)n >= sizeof(req)) return -1;
    c->state = WS_UPGRADING;
    return wsl_buf_append(&c->out, req, (size_t)n);
}

static int send_bind(wsl_client_t *c)
{
    const char *token = c->run->tokens[c->index % c->run->ntokens];
    size_t tlen = strlen(token);
    char *text = malloc(tlen + 17);
    int rv;
    if (!text) return -1;
    memcpy(text, "bind-with-token ", 16);
    memcpy(text + 16, token, tlen + 1);
    rv = queue_frame(c, WS_TEXT, text, tlen + 16);
    free(text);
    c->state = WS_BINDING;
    return rv;
}

/* The value after `"<key>","valueString":"` or `"<key>":"` as a number; -1 when absent. */
static long long number_after(const char *msg, size_t len, const char *key)
{
    const char *p = memmem(msg, len, key, strlen(key));
    if (!p) return -1;
    p += strlen(key);
    while (p < msg + len && (*p < '0' || *p > '9') && *p != '}') ++p;
    if (p >= msg + len || *p == '}') return -1;
    return strtoll(p, NULL, 10);
}

/* A complete text message: a notification Bundle of one of the three shapes. */
static void on_message(wsl_client_t *c, int64_t at)
{
    const char *m = c->msg.data;
    size_t len = c->msg.len;
    long long n;

    if (memmem(m, len, "\"event-notification\"", 20)) {
        n = number_after(m, len, "events-since-subscription-start\"");
        if (n < 0) n = number_after(m, len, "\"eventsSinceSubscriptionStart\"");
        if (n <= c->last_number) ++c->disorder;
        if (n > c->last_number) c->last_number = n;
        ++c->events;
        wsl_run_event(c->run, c, m, len, at);
    }
    else if (memmem(m, len, "\"handshake\"", 11)) {
        ++c->handshakes;
        if (c->state == WS_BINDING) {
            c->state = WS_BOUND;
            c->bound_at = at;
            wsl_run_client_bound(c->run, c);
        }
    }
    else if (memmem(m, len, "\"heartbeat\"", 11)) {
        ++c->heartbeats;
    }
    else {
        ++c->others;
        if (c->run->verbose) wsl_log(c->run, "client %d: unexpected message %.200s", c->index, m);
    }
}

static int on_control(wsl_client_t *c)
{
    if (c->opcode == WS_PING) return queue_frame(c, WS_PONG, c->ctrl.data, c->ctrl.len);
    if (c->opcode == WS_CLOSE) {
        const unsigned char *p = (const unsigned char *)c->ctrl.data;
        c->close_code = c->ctrl.len >= 2 ? (p[0] << 8 | p[1]) : 1005;
        return -1;
    }
    return 0;
}

/* The header of a frame is complete: its payload length and kind. */
static int frame_header(wsl_client_t *c)
{
    const unsigned char *h = c->hdr;
    size_t len7 = h[1] & 0x7f;
    c->fin = h[0] & 0x80;
    c->opcode = h[0] & 0x0f;
    if (h[1] & 0x80) return -1;                  /* servers do not mask */
    if (len7 == 126) c->left = (uint64_t)h[2] << 8 | h[3];
    else if (len7 == 127) {
        int k;
        c->left = 0;
        for (k = 0; k < 8; ++k) c->left = c->left << 8 | h[2 + k];
    }
    else c->left = len7;
    if (c->opcode >= 0x8) c->ctrl.len = 0;
    else if (c->opcode != 0) {
        c->msg_opcode = c->opcode;
        c->msg.len = 0;
    }
    return 0;
}

static int frame_end(wsl_client_t *c, int64_t at)
{
    c->hdr_len = 0;
    if (c->opcode >= 0x8) return on_control(c);
    if (c->fin && c->msg_opcode == WS_TEXT) {
        on_message(c, at);
        c->msg.len = 0;
    }
    return 0;
}

/* Frames in received bytes. */
static int parse(wsl_client_t *c, const unsigned char *p, size_t n, int64_t at)
{
    while (n) {
        if (c->hdr_len < 2 || c->hdr_len < c->hdr_need) {
            c->hdr[c->hdr_len++] = *p++;
            --n;
            if (c->hdr_len == 2) {
                size_t len7 = c->hdr[1] & 0x7f;
                c->hdr_need = 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0);
            }
            if (c->hdr_len >= 2 && c->hdr_len == c->hdr_need) {
                if (frame_header(c)) return -1;
                if (!c->left && frame_end(c, at)) return -1;
            }
            continue;
        }
        {
            size_t take = c->left < n ? (size_t)c->left : n;
            wsl_buf_t *dst = c->opcode >= 0x8 ? &c->ctrl : &c->msg;
            if (wsl_buf_append(dst, p, take)) return -1;
            p += take;
            n -= take;
            c->left -= take;
            if (!c->left && frame_end(c, at)) return -1;
        }
    }
    return 0;
}

/* The HTTP answer to the upgrade; what follows it is frames. */
static int on_upgrade_bytes(wsl_client_t *c, const char *p, size_t n, int64_t at)
{
    char *end;
    size_t used;
    if (wsl_buf_append(&c->head, p, n)) return -1;
    if (!(end = memmem(c->head.data, c->head.len, "\r\n\r\n", 4))) {
        return c->head.len > 8192 ? -1 : 0;
    }
    if (c->head.len < 12 || memcmp(c->head.data, "HTTP/1.1 101", 12)) {
        wsl_log(c->run, "client %d: upgrade refused: %.60s", c->index, c->head.data);
        return -1;
    }
    used = (size_t)(end + 4 - c->head.data);
    if (c->run->no_bind) {
        c->state = WS_BOUND;
        c->bound_at = at;
        wsl_run_client_bound(c->run, c);
    }
    else if (send_bind(c)) {
        return -1;
    }
    if (c->head.len > used && parse(c, (unsigned char *)c->head.data + used, c->head.len - used, at)) {
        return -1;
    }
    wsl_buf_free(&c->head);
    return 0;
}

static int read_all(wsl_client_t *c)
{
    static unsigned char buf[256 * 1024];
    for (;;) {
        ssize_t n = wsl_sock_read(&c->sock, buf, sizeof(buf));
        int64_t at;
        if (n == WSL_AGAIN) return 0;
        if (n <= 0) return -1;
        at = wsl_now();
        if (c->state == WS_UPGRADING) {
            if (on_upgrade_bytes(c, (char *)buf, (size_t)n, at)) return -1;
        }
        else if (parse(c, buf, (size_t)n, at)) {
            return -1;
        }
        if ((size_t)n < sizeof(buf) && !(c->sock.ssl && SSL_pending(c->sock.ssl))) return 0;
    }
}

void wsl_client_io(wsl_client_t *c, uint32_t events)
{
    int rc;
    if (c->state == WS_CLOSED) return;
    if (c->state == WS_CONNECTING) {
        if ((rc = wsl_sock_progress(&c->sock)) == -1) {
            client_fail(c, "connect failed");
            return;
        }
        if (rc == WSL_AGAIN) {
            wsl_sock_interest(&c->sock, c->run->epfd, c, 0);
            return;
        }
        if (send_upgrade(c)) {
            client_fail(c, "out of memory");
            return;
        }
    }
    if ((events & (EPOLLIN | EPOLLHUP | EPOLLERR)) && c->state != WS_CONNECTING && read_all(c)) {
        client_fail(c, "connection closed");
        return;
    }
    if (flush(c)) client_fail(c, "write failed");
}
