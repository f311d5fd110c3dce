/* nt_bind: what a client's text frame asks for. Two dialects are understood:
 *
 *  text (Subscriptions Backport IG):  "bind-with-token <token>", also the
 *      "bind-with-token: <token>" variant of the IG's diagram (prefix matched
 *      case-insensitively; an optional ':' and whitespace before the token), and
 *      symmetrically "unbind-from-token <token>".
 *  JSON (Medplum's client): {"type":"bind-with-token","payload":{"token":"..."}},
 *      {"type":"unbind-from-token","payload":{"token":"..."}}, {"type":"ping"}.
 *
 * Leading and trailing whitespace is ignored; a frame starting with '{' is JSON and
 * is parsed strictly. Pure: no libwebsockets, no database. */
#ifndef NT_BIND_H
#define NT_BIND_H

#include <apr_pools.h>

typedef enum {
    NT_FRAME_BIND,       /* bind-with-token: token set */
    NT_FRAME_UNBIND,     /* unbind-from-token: token set */
    NT_FRAME_PING,       /* JSON {"type":"ping"}: answer {"type":"pong"} */
    NT_FRAME_UNKNOWN,    /* well-formed, but nothing we serve (error says what) */
    NT_FRAME_MALFORMED   /* a bind/unbind without a usable token, or broken JSON */
} nt_frame_type_t;

typedef struct nt_frame_t {
    nt_frame_type_t type;
    int json;            /* the JSON dialect: answer errors with an OperationOutcome */
    const char *token;   /* BIND/UNBIND: the token (allocated from the pool) */
    const char *error;   /* UNKNOWN/MALFORMED: a sentence for the log or the client */
} nt_frame_t;

/* Classify data[0..len) (not NUL-terminated; UTF-8 text). */
void nt_frame_parse(nt_frame_t *f, apr_pool_t *p, const char *data, apr_size_t len);

/* "bind-with-token", "unbind-from-token", "ping", "unknown", "malformed". */
const char *nt_frame_type_name(nt_frame_type_t t);

#endif
