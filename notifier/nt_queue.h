/* nt_queue: a connection's bounded FIFO of outbound messages. It holds at most
 * max_items messages and max_bytes payload bytes (one message larger than
 * max_bytes is still accepted into an empty queue, so a big notification can go
 * out alone); a push beyond either bound fails and the caller cuts the slow client
 * off instead of letting memory grow. */
#ifndef NT_QUEUE_H
#define NT_QUEUE_H

#include <stddef.h>

#include "nt_msg.h"

typedef struct nt_queue_t {
    nt_msg_t **items;     /* ring of capacity cap */
    size_t cap;           /* grows by doubling up to max_items */
    size_t head;          /* index of the oldest message */
    size_t count;         /* messages queued */
    size_t bytes;         /* payload bytes queued */
    size_t max_items;
    size_t max_bytes;
} nt_queue_t;

void nt_queue_init(nt_queue_t *q, size_t max_items, size_t max_bytes);

/* Append m (taking a new reference): 0, or -1 when full (or out of memory). */
int nt_queue_push(nt_queue_t *q, nt_msg_t *m);

/* The oldest message (borrowed), NULL when empty. */
nt_msg_t *nt_queue_peek(const nt_queue_t *q);

/* Drop the oldest message. */
void nt_queue_pop(nt_queue_t *q);

/* Drop everything and release the ring. */
void nt_queue_clear(nt_queue_t *q);

/* True above half of either bound (stop reading the client), and below a quarter
 * (read again). */
int nt_queue_high(const nt_queue_t *q);
int nt_queue_low(const nt_queue_t *q);

#endif
