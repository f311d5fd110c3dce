/* nt_timer: the notifier's per-connection and per-binding timers (bind timeout, slow
 * client, close grace, heartbeats, token expiry) in one binary min-heap, driven by a
 * single lws_sul (nt_conn.c).
 *
 * Why not one lws_sul each: lws 4.1 keeps its timers in one list sorted by due time and
 * inserts by walking it from the head. Every new timer of the same duration is due
 * last, so each insert walked every timer: binding 10,000 clients spent half the
 * notifier's CPU in lws_dll2_add_sorted, and every heartbeat re-arm walked them again.
 * Here scheduling, re-scheduling and cancelling cost O(log n).
 *
 * Pure data structure (no lws): the caller keeps the time base (monotonic µs) and
 * runs what nt_timers_take_due hands out. Not thread-safe (service thread only). */
#ifndef NT_TIMER_H
#define NT_TIMER_H

#include <apr_errno.h>

typedef struct nt_timer_t nt_timer_t;
typedef void nt_timer_fn(nt_timer_t *t);

/* Embedded in its owner (found back with lws_container_of / offsetof); zeroed =
 * not scheduled. */
struct nt_timer_t {
    apr_int64_t due;                   /* when it fires, in the caller's time base */
    nt_timer_fn *fn;                   /* what runs then */
    int slot;                          /* heap index + 1; 0 = not scheduled */
};

typedef struct {
    nt_timer_t **heap;                 /* heap[0] is due first */
    int n, cap;
} nt_timers_t;

/* Schedule t (again, if it was) to run fn at due. APR_ENOMEM when the heap cannot
 * grow (t then stays unscheduled). */
apr_status_t nt_timer_schedule(nt_timers_t *ts, nt_timer_t *t, nt_timer_fn *fn,
                               apr_int64_t due);

/* Unschedule t; nothing when it is not scheduled. */
void nt_timer_cancel(nt_timers_t *ts, nt_timer_t *t);

int nt_timer_scheduled(const nt_timer_t *t);

/* The first timer due at or before now, taken off the heap; NULL when none is. The
 * caller runs t->fn(t), which may schedule or cancel any timer, t included. */
nt_timer_t *nt_timers_take_due(nt_timers_t *ts, apr_int64_t now);

/* When the next timer is due: 0 when none is scheduled. */
apr_int64_t nt_timers_next_due(const nt_timers_t *ts);

/* Release the heap (the timers themselves belong to their owners). */
void nt_timers_free(nt_timers_t *ts);

#endif
