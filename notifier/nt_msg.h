/* nt_msg: one outbound websocket text message, reference counted so that one event
 * notification is built once and queued to every connection bound to its
 * subscription. The buffer keeps LWS_PRE bytes of headroom for lws_write. Only the
 * service thread touches a message once it is queued. */
#ifndef NT_MSG_H
#define NT_MSG_H

#include <stddef.h>
#include <apr.h>
#include <apr_time.h>
#include <libwebsockets.h>

/* What a message is, for the metrics of what was sent (nt_metrics). */
typedef enum {
    NT_MSG_OTHER,             /* pongs, OperationOutcomes */
    NT_MSG_HANDSHAKE,
    NT_MSG_HEARTBEAT,
    NT_MSG_EVENT              /* an event-notification Bundle */
} nt_msg_kind_t;

typedef struct nt_msg_t {
    unsigned refs;            /* queues (and builders) holding it */
    size_t len;               /* payload bytes */
    nt_msg_kind_t kind;
    const char *sub_id;       /* event notifications: the subscription (for delivery
                                 accounting), else NULL */
    char *sub_id_copy;        /* sub_id when nt_msg_set_event copied it (else it lies
                                 in buf, after the payload) */
    apr_int64_t event_number; /* event notifications: the number, else 0 */
    int nevents;              /* event notifications: events carried (1 by default) */
    apr_time_t recorded;      /* event notifications: when the oldest was recorded, 0 =
                                 unknown */
    unsigned char buf[];      /* LWS_PRE headroom, payload, NUL (then sub_id, NUL) */
} nt_msg_t;

/* A message of kind NT_MSG_OTHER holding a copy of text[0..len), one reference; NULL
 * when out of memory. */
nt_msg_t *nt_msg_new(const char *text, size_t len);

/* An event notification of sub_id holding a copy of text[0..len), one reference, in
 * one allocation (sub_id included); event_number, nevents and recorded are the
 * caller's to set. NULL when out of memory. */
nt_msg_t *nt_msg_new_event(const char *text, size_t len, const char *sub_id);

/* Mark m as the event notification `number` of subscription sub_id (kind NT_MSG_EVENT). */
void nt_msg_set_event(nt_msg_t *m, const char *sub_id, apr_int64_t number);

nt_msg_t *nt_msg_ref(nt_msg_t *m);
void nt_msg_unref(nt_msg_t *m);

static inline unsigned char *nt_msg_payload(nt_msg_t *m)
{
    return m->buf + LWS_PRE;
}

#endif
