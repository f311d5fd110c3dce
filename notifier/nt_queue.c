#include <stdlib.h>
#include <string.h>

#include "nt_queue.h"

#define NT_QUEUE_INITIAL 8

void nt_queue_init(nt_queue_t *q, size_t max_items, size_t max_bytes)
{
    memset(q, 0, sizeof(*q));
    q->max_items = max_items ? max_items : 1;
    q->max_bytes = max_bytes;
}

static int grow(nt_queue_t *q)
{
    size_t cap = q->cap ? q->cap * 2 : NT_QUEUE_INITIAL, i;
    nt_msg_t **items;

    if (cap > q->max_items) cap = q->max_items;
    if (!(items = malloc(cap * sizeof(*items)))) return -1;
    for (i = 0; i < q->count; ++i) items[i] = q->items[(q->head + i) % q->cap];
    free(q->items);
    q->items = items;
    q->cap = cap;
    q->head = 0;
    return 0;
}

int nt_queue_push(nt_queue_t *q, nt_msg_t *m)
{
    if (q->count >= q->max_items) return -1;
    if (q->count > 0 && q->bytes + m->len > q->max_bytes) return -1;
    if (q->count == q->cap && grow(q)) return -1;
    q->items[(q->head + q->count) % q->cap] = nt_msg_ref(m);
    ++q->count;
    q->bytes += m->len;
    return 0;
}

nt_msg_t *nt_queue_peek(const nt_queue_t *q)
{
    return q->count ? q->items[q->head] : NULL;
}

void nt_queue_pop(nt_queue_t *q)
{
    nt_msg_t *m;
    if (!q->count) return;
    m = q->items[q->head];
    q->head = (q->head + 1) % q->cap;
    --q->count;
    q->bytes -= m->len;
    nt_msg_unref(m);
}

void nt_queue_clear(nt_queue_t *q)
{
    while (q->count) nt_queue_pop(q);
    free(q->items);
    q->items = NULL;
    q->cap = 0;
    q->head = 0;
}

int nt_queue_high(const nt_queue_t *q)
{
    return q->count * 2 > q->max_items || q->bytes * 2 > q->max_bytes;
}

int nt_queue_low(const nt_queue_t *q)
{
    return q->count * 4 <= q->max_items && q->bytes * 4 <= q->max_bytes;
}
