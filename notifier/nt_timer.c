#include <stdlib.h>

#include "nt_timer.h"

#define NT_TIMERS_FIRST_CAP 64

static void place(nt_timers_t *ts, int i, nt_timer_t *t)
{
    ts->heap[i] = t;
    t->slot = i + 1;
}

/* Move the timer at i towards the root while it is due before its parent. */
static void sift_up(nt_timers_t *ts, int i)
{
    nt_timer_t *t = ts->heap[i];
    while (i > 0) {
        int parent = (i - 1) / 2;
        if (ts->heap[parent]->due <= t->due) break;
        place(ts, i, ts->heap[parent]);
        i = parent;
    }
    place(ts, i, t);
}

/* Move the timer at i towards the leaves while a child is due before it. */
static void sift_down(nt_timers_t *ts, int i)
{
    nt_timer_t *t = ts->heap[i];
    for (;;) {
        int child = 2 * i + 1;
        if (child >= ts->n) break;
        if (child + 1 < ts->n && ts->heap[child + 1]->due < ts->heap[child]->due) ++child;
        if (t->due <= ts->heap[child]->due) break;
        place(ts, i, ts->heap[child]);
        i = child;
    }
    place(ts, i, t);
}

static apr_status_t grow(nt_timers_t *ts)
{
    int cap = ts->cap ? ts->cap * 2 : NT_TIMERS_FIRST_CAP;
    nt_timer_t **heap = realloc(ts->heap, sizeof(*heap) * (size_t)cap);
    if (!heap) return APR_ENOMEM;
    ts->heap = heap;
    ts->cap = cap;
    return APR_SUCCESS;
}

/* Take the timer at heap index i out, keeping the heap in order. */
static void remove_at(nt_timers_t *ts, int i)
{
    nt_timer_t *last = ts->heap[--ts->n];

    ts->heap[i]->slot = 0;
    if (i == ts->n) return;
    place(ts, i, last);
    if (i > 0 && ts->heap[(i - 1) / 2]->due > last->due) sift_up(ts, i);
    else sift_down(ts, i);
}

apr_status_t nt_timer_schedule(nt_timers_t *ts, nt_timer_t *t, nt_timer_fn *fn,
                               apr_int64_t due)
{
    nt_timer_cancel(ts, t);
    if (ts->n == ts->cap && APR_SUCCESS != grow(ts)) return APR_ENOMEM;
    t->due = due > 0 ? due : 1;   /* 0 means "none" to nt_timers_next_due */
    t->fn = fn;
    place(ts, ts->n++, t);
    sift_up(ts, ts->n - 1);
    return APR_SUCCESS;
}

void nt_timer_cancel(nt_timers_t *ts, nt_timer_t *t)
{
    if (t->slot > 0 && t->slot <= ts->n && ts->heap[t->slot - 1] == t) {
        remove_at(ts, t->slot - 1);
    }
    t->slot = 0;
}

int nt_timer_scheduled(const nt_timer_t *t)
{
    return t->slot > 0;
}

nt_timer_t *nt_timers_take_due(nt_timers_t *ts, apr_int64_t now)
{
    nt_timer_t *t;
    if (ts->n == 0 || ts->heap[0]->due > now) return NULL;
    t = ts->heap[0];
    remove_at(ts, 0);
    return t;
}

apr_int64_t nt_timers_next_due(const nt_timers_t *ts)
{
    return ts->n ? ts->heap[0]->due : 0;
}

void nt_timers_free(nt_timers_t *ts)
{
    int i;
    for (i = 0; i < ts->n; ++i) ts->heap[i]->slot = 0;
    free(ts->heap);
    ts->heap = NULL;
    ts->n = ts->cap = 0;
}
