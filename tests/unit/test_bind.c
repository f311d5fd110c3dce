/* Unit tests: the notifier's pure pieces -- the client frame parser (nt_bind: the
 * Backport IG text form, its "bind-with-token:" variant, Medplum's JSON frames),
 * the grouping of pending events into Bundles (nt_batch), the bounded send queue
 * (nt_queue, nt_msg) and the retention rule (nt_prune_rule). */
#include <string.h>
#include <apr_strings.h>

#include "fs_check.h"
#include "fs_time.h"
#include "nt_batch.h"
#include "nt_bind.h"
#include "nt_msg.h"
#include "nt_prune.h"
#include "nt_queue.h"
#include "nt_timer.h"

static nt_frame_t parse(const char *text)
{
    nt_frame_t f;
    nt_frame_parse(&f, pool, text, strlen(text));
    return f;
}

static void expect(const char *text, nt_frame_type_t type, int json, const char *token)
{
    nt_frame_t f = parse(text);
    ck_assert_msg(f.type == type, "'%s': %s, expected %s (%s)", text,
                  nt_frame_type_name(f.type), nt_frame_type_name(type),
                  f.error ? f.error : "-");
    ck_assert_msg(f.json == json, "'%s': json %d", text, f.json);
    if (token) {
        ck_assert_ptr_nonnull(f.token);
        ck_assert_str_eq(f.token, token);
    }
    else {
        ck_assert_ptr_null(f.token);
    }
    if (type == NT_FRAME_UNKNOWN || type == NT_FRAME_MALFORMED) {
        ck_assert_msg(f.error && *f.error, "'%s': an error sentence", text);
    }
}

/* ---- text dialect ------------------------------------------------------------------- */

START_TEST(text_bind)
{
    expect("bind-with-token abc.def.ghi", NT_FRAME_BIND, 0, "abc.def.ghi");
    /* the IG diagram's colon variant, with and without a space */
    expect("bind-with-token: abc.def.ghi", NT_FRAME_BIND, 0, "abc.def.ghi");
    expect("bind-with-token:abc.def.ghi", NT_FRAME_BIND, 0, "abc.def.ghi");
    /* surrounding whitespace, tabs, a trailing newline, another case */
    expect("  bind-with-token \t abc.def.ghi \r\n", NT_FRAME_BIND, 0, "abc.def.ghi");
    expect("Bind-With-Token abc", NT_FRAME_BIND, 0, "abc");
    expect("unbind-from-token abc.def", NT_FRAME_UNBIND, 0, "abc.def");
}
END_TEST

START_TEST(text_malformed)
{
    expect("bind-with-token", NT_FRAME_MALFORMED, 0, NULL);
    expect("bind-with-token   ", NT_FRAME_MALFORMED, 0, NULL);
    expect("bind-with-token:", NT_FRAME_MALFORMED, 0, NULL);
    expect("bind-with-token a b", NT_FRAME_MALFORMED, 0, NULL);
    expect("unbind-from-token", NT_FRAME_MALFORMED, 0, NULL);
}
END_TEST

START_TEST(text_unknown)
{
    expect("", NT_FRAME_UNKNOWN, 0, NULL);
    expect("   ", NT_FRAME_UNKNOWN, 0, NULL);
    expect("hello", NT_FRAME_UNKNOWN, 0, NULL);
    expect("ping", NT_FRAME_UNKNOWN, 0, NULL);
    /* the legacy R4 protocol is not served */
    expect("bind 123", NT_FRAME_UNKNOWN, 0, NULL);
    /* a longer word is not the keyword */
    expect("bind-with-tokens abc", NT_FRAME_UNKNOWN, 0, NULL);
    expect("bind-with-tokenabc", NT_FRAME_UNKNOWN, 0, NULL);
}
END_TEST

START_TEST(text_nul)
{
    nt_frame_t f;
    nt_frame_parse(&f, pool, "bind-with-token a\0b", 19);
    ck_assert_int_eq(f.type, NT_FRAME_MALFORMED);
    /* the length is what counts, not a NUL terminator */
    nt_frame_parse(&f, pool, "bind-with-token abcdef", 18);
    ck_assert_int_eq(f.type, NT_FRAME_BIND);
    ck_assert_str_eq(f.token, "ab");
}
END_TEST

/* ---- JSON dialect ------------------------------------------------------------------- */

START_TEST(json_frames)
{
    expect("{\"type\":\"bind-with-token\",\"payload\":{\"token\":\"t.u.v\"}}",
           NT_FRAME_BIND, 1, "t.u.v");
    expect(" { \"payload\" : { \"token\" : \"t.u.v\" } , \"type\" : \"bind-with-token\" } ",
           NT_FRAME_BIND, 1, "t.u.v");
    expect("{\"type\":\"unbind-from-token\",\"payload\":{\"token\":\"t.u.v\"}}",
           NT_FRAME_UNBIND, 1, "t.u.v");
    expect("{\"type\":\"ping\"}", NT_FRAME_PING, 1, NULL);
    /* extra members are fine */
    expect("{\"type\":\"ping\",\"id\":7}", NT_FRAME_PING, 1, NULL);
}
END_TEST

START_TEST(json_bad)
{
    expect("{\"type\":\"bind-with-token\"}", NT_FRAME_MALFORMED, 1, NULL);
    expect("{\"type\":\"bind-with-token\",\"payload\":{}}", NT_FRAME_MALFORMED, 1, NULL);
    expect("{\"type\":\"bind-with-token\",\"payload\":{\"token\":\"\"}}", NT_FRAME_MALFORMED,
           1, NULL);
    expect("{\"type\":\"bind-with-token\",\"payload\":{\"token\":7}}", NT_FRAME_MALFORMED, 1,
           NULL);
    expect("{\"type\":\"bind-with-token\",\"payload\":\"t.u.v\"}", NT_FRAME_MALFORMED, 1, NULL);
    expect("{\"type\":\"bind-with-token\",\"payload\":{\"token\":\"a b\"}}", NT_FRAME_MALFORMED,
           1, NULL);
    /* broken JSON: strict parsing, trailing data refused */
    expect("{\"type\":\"ping\"", NT_FRAME_MALFORMED, 1, NULL);
    expect("{\"type\":\"ping\",}", NT_FRAME_MALFORMED, 1, NULL);
    expect("{\"type\":\"ping\"} x", NT_FRAME_MALFORMED, 1, NULL);
    expect("{'type':'ping'}", NT_FRAME_MALFORMED, 1, NULL);
    /* well-formed, but nothing we serve */
    expect("{}", NT_FRAME_UNKNOWN, 1, NULL);
    expect("{\"type\":7}", NT_FRAME_UNKNOWN, 1, NULL);
    expect("{\"type\":\"subscribe\"}", NT_FRAME_UNKNOWN, 1, NULL);
}
END_TEST

START_TEST(type_names)
{
    ck_assert_str_eq(nt_frame_type_name(NT_FRAME_BIND), "bind-with-token");
    ck_assert_str_eq(nt_frame_type_name(NT_FRAME_UNBIND), "unbind-from-token");
    ck_assert_str_eq(nt_frame_type_name(NT_FRAME_PING), "ping");
}
END_TEST

/* ---- the send queue ---------------------------------------------------------------- */

static nt_msg_t *msg(const char *text)
{
    nt_msg_t *m = nt_msg_new(text, strlen(text));
    ck_assert_ptr_nonnull(m);
    return m;
}

START_TEST(msg_payload)
{
    nt_msg_t *m = msg("hello");
    ck_assert_uint_eq(m->len, 5);
    ck_assert_str_eq((const char *)nt_msg_payload(m), "hello");
    ck_assert_ptr_eq(nt_msg_payload(m), m->buf + LWS_PRE);
    ck_assert_ptr_null(m->sub_id);
    nt_msg_set_event(m, "sub-1", 42);
    ck_assert_str_eq(m->sub_id, "sub-1");
    ck_assert_int_eq(m->event_number, 42);
    ck_assert_ptr_eq(nt_msg_ref(m), m);
    ck_assert_uint_eq(m->refs, 2);
    nt_msg_unref(m);
    nt_msg_unref(m);
}
END_TEST

/* An event message built in one piece: payload, then its subscription id. */
START_TEST(msg_event_in_one_piece)
{
    nt_msg_t *m = nt_msg_new_event("{\"resourceType\":\"Bundle\"}", 26, "fanout-17");
    ck_assert_ptr_nonnull(m);
    ck_assert_uint_eq(m->len, 26);
    ck_assert_str_eq((const char *)nt_msg_payload(m), "{\"resourceType\":\"Bundle\"}");
    ck_assert_str_eq(m->sub_id, "fanout-17");
    ck_assert_ptr_eq(m->sub_id, (const char *)nt_msg_payload(m) + 27);
    ck_assert_int_eq(m->kind, NT_MSG_EVENT);
    ck_assert_int_eq(m->nevents, 1);
    ck_assert_uint_eq(m->refs, 1);
    nt_msg_set_event(m, "other", 3);   /* a copy of its own from then on */
    ck_assert_str_eq(m->sub_id, "other");
    ck_assert_int_eq(m->event_number, 3);
    nt_msg_unref(m);
}
END_TEST

START_TEST(queue_fifo)
{
    nt_queue_t q;
    char text[16];
    int i;

    nt_queue_init(&q, 100, 1 << 20);
    ck_assert_ptr_null(nt_queue_peek(&q));
    /* past the initial ring size, wrapping around while popping */
    for (i = 0; i < 50; ++i) {
        nt_msg_t *m;
        apr_snprintf(text, sizeof(text), "m%d", i);
        m = msg(text);
        ck_assert_int_eq(nt_queue_push(&q, m), 0);
        nt_msg_unref(m);
        if (i % 3 == 2) nt_queue_pop(&q);
    }
    for (i = 16; i < 50; ++i) {
        apr_snprintf(text, sizeof(text), "m%d", i);
        ck_assert_ptr_nonnull(nt_queue_peek(&q));
        ck_assert_str_eq((const char *)nt_msg_payload(nt_queue_peek(&q)), text);
        nt_queue_pop(&q);
    }
    ck_assert_ptr_null(nt_queue_peek(&q));
    ck_assert_uint_eq(q.count, 0);
    ck_assert_uint_eq(q.bytes, 0);
    nt_queue_clear(&q);
}
END_TEST

START_TEST(queue_bounds)
{
    nt_queue_t q;
    nt_msg_t *small = msg("0123456789"), *big;
    char *huge = malloc(5000);
    int i;

    /* at most 4 messages */
    nt_queue_init(&q, 4, 1 << 20);
    for (i = 0; i < 4; ++i) ck_assert_int_eq(nt_queue_push(&q, small), 0);
    ck_assert_int_eq(nt_queue_push(&q, small), -1);
    ck_assert_uint_eq(small->refs, 5);
    nt_queue_clear(&q);
    ck_assert_uint_eq(small->refs, 1);

    /* at most 25 bytes, but one big message alone is accepted */
    memset(huge, 'x', 5000);
    big = nt_msg_new(huge, 5000);
    nt_queue_init(&q, 100, 25);
    ck_assert_int_eq(nt_queue_push(&q, small), 0);
    ck_assert_int_eq(nt_queue_push(&q, small), 0);
    ck_assert_int_eq(nt_queue_push(&q, small), -1);
    ck_assert_int_eq(nt_queue_push(&q, big), -1);
    nt_queue_pop(&q);
    nt_queue_pop(&q);
    ck_assert_int_eq(nt_queue_push(&q, big), 0);
    ck_assert_int_eq(nt_queue_push(&q, small), -1);
    nt_queue_clear(&q);
    nt_msg_unref(big);
    nt_msg_unref(small);
    free(huge);
}
END_TEST

START_TEST(queue_watermarks)
{
    nt_queue_t q;
    nt_msg_t *m = msg("x");
    int i;

    nt_queue_init(&q, 8, 1 << 20);
    ck_assert(nt_queue_low(&q));
    ck_assert(!nt_queue_high(&q));
    for (i = 0; i < 5; ++i) nt_queue_push(&q, m);
    ck_assert(nt_queue_high(&q));
    ck_assert(!nt_queue_low(&q));
    for (i = 0; i < 3; ++i) nt_queue_pop(&q);
    ck_assert(!nt_queue_high(&q));
    ck_assert(nt_queue_low(&q));
    nt_queue_clear(&q);
    nt_msg_unref(m);
}
END_TEST


/* ---- Bundles of pending events (max_count) ------------------------------------------- */

/* The lengths nt_batch_len cuts numbers[0..n) into, as "3,2". */
static const char *batches(const apr_int64_t *numbers, int n, apr_int64_t max_count,
                           const apr_int64_t *cuts, int ncuts)
{
    const char *out = "";
    int i = 0, len;
    while (i < n) {
        len = nt_batch_len(numbers + i, n - i, max_count, cuts, ncuts);
        ck_assert_int_ge(len, 1);
        out = apr_psprintf(pool, "%s%s%d", out, *out ? "," : "", len);
        i += len;
    }
    return out;
}

START_TEST(batch_max_count)
{
    static const apr_int64_t five[] = { 1, 2, 3, 4, 5 };
    /* unset (0) and 1: one event per Bundle, as before max_count */
    ck_assert_str_eq(batches(five, 5, 0, NULL, 0), "1,1,1,1,1");
    ck_assert_str_eq(batches(five, 5, 1, NULL, 0), "1,1,1,1,1");
    /* only what is pending: the last Bundle is not held back to fill up */
    ck_assert_str_eq(batches(five, 5, 3, NULL, 0), "3,2");
    ck_assert_str_eq(batches(five, 5, 5, NULL, 0), "5");
    ck_assert_str_eq(batches(five, 5, 1000, NULL, 0), "5");
    ck_assert_int_eq(nt_batch_len(five, 0, 3, NULL, 0), 0);
}
END_TEST

START_TEST(batch_cursor_cuts)
{
    static const apr_int64_t five[] = { 1, 2, 3, 4, 5 };
    static const apr_int64_t gappy[] = { 3, 6, 7, 9 };
    apr_int64_t cuts[] = { 0, 2 };
    /* bindings at 0 and 2: no Bundle holds both 2 and 3 */
    ck_assert_str_eq(batches(five, 5, 3, cuts, 2), "2,3");
    ck_assert_str_eq(batches(five, 5, 10, cuts, 2), "2,3");
    cuts[1] = 4;
    ck_assert_str_eq(batches(five, 5, 3, cuts, 2), "3,1,1");
    /* a cursor between two numbers of a gap (events pruned elsewhere) cuts too */
    cuts[1] = 5;
    ck_assert_str_eq(batches(gappy, 4, 10, cuts, 2), "1,3");
    /* a cursor at the last number cuts nothing */
    cuts[1] = 9;
    ck_assert_str_eq(batches(gappy, 4, 10, cuts, 2), "4");
}
END_TEST

/* ---- the retention rule -------------------------------------------------------------- */

static nt_config_t retention_conf(double seconds, int count)
{
    nt_config_t c;
    memset(&c, 0, sizeof(c));
    c.prune_bound_grace = apr_time_from_sec(3600);   /* the default */
    c.event_retention = (apr_interval_time_t)(seconds * APR_USEC_PER_SEC);
    c.event_retention_count = count;
    return c;
}

static fs_prune_sub_t prune_sub(apr_int64_t events, apr_time_t bound, apr_time_t delivered)
{
    fs_prune_sub_t s = { "sub-1", events, bound, delivered };
    return s;
}

START_TEST(prune_rule_limits)
{
    apr_time_t now = apr_time_from_sec(1800000000);
    nt_config_t c = retention_conf(604800, 0);
    fs_prune_sub_t s = prune_sub(50, 0, 0);
    fs_prune_rule_t r;

    ck_assert(nt_prune_rule(&r, &c, &s, 0, 0, now));
    ck_assert(r.older_ms == fs_time_to_ms(now - apr_time_from_sec(604800)));
    ck_assert(r.upto_number == 0);
    ck_assert(r.max_number == APR_INT64_MAX && r.keep_after_ms == APR_INT64_MAX);
    /* the newest 20 stay whatever their age */
    c = retention_conf(0, 20);
    ck_assert(nt_prune_rule(&r, &c, &s, 0, 0, now));
    ck_assert(r.older_ms == 0 && r.upto_number == 30);
    /* fewer events than the count: nothing to do */
    s.events_since_start = 12;
    ck_assert(!nt_prune_rule(&r, &c, &s, 0, 0, now));
    /* neither limit: nothing ever goes */
    c = retention_conf(0, 0);
    ck_assert(!nt_prune_rule(&r, &c, &s, 0, 0, now));
}
END_TEST

START_TEST(prune_rule_protection)
{
    apr_time_t now = apr_time_from_sec(1800000000), minute = apr_time_from_sec(60);
    nt_config_t c = retention_conf(60, 0);
    fs_prune_sub_t s = prune_sub(50, now - 10 * minute, now - 30 * minute);
    fs_prune_rule_t r;

    /* bound here: nothing above the lowest cursor, whatever last_delivery says */
    ck_assert(nt_prune_rule(&r, &c, &s, 1, 40, now));
    ck_assert(r.max_number == 40 && r.keep_after_ms == APR_INT64_MAX);
    ck_assert(!nt_prune_rule(&r, &c, &s, 1, 0, now));   /* handshake at 0: all stay */
    /* bound elsewhere within PruneBoundGrace: what came after the last delivery stays */
    ck_assert(nt_prune_rule(&r, &c, &s, 0, 0, now));
    ck_assert(r.max_number == APR_INT64_MAX);
    ck_assert(r.keep_after_ms == fs_time_to_ms(now - 30 * minute));
    /* bound longer ago than the grace, or never: no such protection */
    s.last_bound = now - 61 * minute;
    ck_assert(nt_prune_rule(&r, &c, &s, 0, 0, now));
    ck_assert(r.keep_after_ms == APR_INT64_MAX);
    s.last_bound = 0;
    ck_assert(nt_prune_rule(&r, &c, &s, 0, 0, now));
    ck_assert(r.keep_after_ms == APR_INT64_MAX);
}
END_TEST

static nt_job_t *bind_job(const char *sub_id, apr_int64_t n)
{
    nt_job_t *job = apr_pcalloc(pool, sizeof(*job));
    nt_sub_state_t *st;
    job->kind = NT_JOB_BIND;
    job->subs = apr_array_make(pool, 1, sizeof(nt_sub_state_t));
    st = apr_array_push(job->subs);
    memset(st, 0, sizeof(*st));
    st->sub_id = sub_id;
    st->sub = apr_pcalloc(pool, sizeof(fs_sub_t));
    st->sub->events_since_start = n;
    return job;
}

START_TEST(prune_floors)
{
    nt_floors_t f = { NULL, NULL };
    /* binds the service thread has not applied keep their cursors protected */
    nt_floors_note(&f, pool, bind_job("a", 7), 3);
    nt_floors_note(&f, pool, bind_job("a", 5), 4);
    nt_floors_note(&f, pool, bind_job("b", 9), 6);
    ck_assert_int_eq((int)apr_hash_count(f.map), 2);
    /* results up to 4 applied: "a" is in the service thread's listing now */
    nt_floors_forget(&f, pool, 4);
    ck_assert_ptr_null(apr_hash_get(f.map, "a", APR_HASH_KEY_STRING));
    ck_assert_ptr_nonnull(apr_hash_get(f.map, "b", APR_HASH_KEY_STRING));
    nt_floors_forget(&f, pool, 6);
    ck_assert_ptr_null(f.map);
}
END_TEST


/* ---- timers ------------------------------------------------------------------ */

#define NTIMERS 2000

static int fired;

static void count_fire(nt_timer_t *t)
{
    (void)t;
    ++fired;
}

/* Every parent due no later than its children, and every timer knows its slot. */
static void check_heap(const nt_timers_t *ts)
{
    int i, bad = -1;
    /* one assertion per call: Check reports every assertion to its parent process */
    for (i = 0; i < ts->n && bad < 0; ++i) {
        if (ts->heap[i]->slot != i + 1
            || (i > 0 && ts->heap[(i - 1) / 2]->due > ts->heap[i]->due)) bad = i;
    }
    ck_assert_msg(bad < 0, "heap out of order at %d of %d", bad, ts->n);
}

/* Take every timer due by now, checking they come in due order; how many. */
static int drain(nt_timers_t *ts, apr_int64_t now)
{
    apr_int64_t last = 0;
    nt_timer_t *t;
    int n = 0;
    while ((t = nt_timers_take_due(ts, now))) {
        ck_assert(t->due >= last);
        ck_assert(t->due <= now);
        ck_assert(!nt_timer_scheduled(t));
        last = t->due;
        t->fn(t);
        ++n;
        check_heap(ts);
    }
    return n;
}

START_TEST(timer_order)
{
    static nt_timer_t t[NTIMERS];
    nt_timers_t ts = { NULL, 0, 0 };
    int i;

    memset(t, 0, sizeof(t));
    fired = 0;
    srand(7);
    for (i = 0; i < NTIMERS; ++i) {
        ck_assert_int_eq(nt_timer_schedule(&ts, &t[i], count_fire, 1 + rand() % 100000),
                         APR_SUCCESS);
    }
    check_heap(&ts);
    ck_assert_int_eq(ts.n, NTIMERS);
    ck_assert_ptr_null(nt_timers_take_due(&ts, 0));
    ck_assert_int_eq(drain(&ts, 50000) + drain(&ts, 100000), NTIMERS);
    ck_assert_int_eq(fired, NTIMERS);
    ck_assert_int_eq(nt_timers_next_due(&ts), 0);
    nt_timers_free(&ts);
}
END_TEST

/* Cancels and re-schedules anywhere in the heap keep it in order; only what is still
 * scheduled fires, at its last due time. */
START_TEST(timer_cancel_reschedule)
{
    static nt_timer_t t[NTIMERS];
    nt_timers_t ts = { NULL, 0, 0 };
    int i, live = 0;

    memset(t, 0, sizeof(t));
    fired = 0;
    srand(11);
    for (i = 0; i < NTIMERS; ++i) nt_timer_schedule(&ts, &t[i], count_fire, 1000 + i);
    for (i = 0; i < NTIMERS; ++i) {
        if (i % 3 == 0) nt_timer_cancel(&ts, &t[i]);
        else if (i % 3 == 1) nt_timer_schedule(&ts, &t[i], count_fire, 1 + rand() % 5000);
        check_heap(&ts);
    }
    nt_timer_cancel(&ts, &t[0]);   /* twice: nothing */
    for (i = 0; i < NTIMERS; ++i) {
        ck_assert_int_eq(nt_timer_scheduled(&t[i]), i % 3 != 0);
        live += i % 3 != 0;
    }
    ck_assert_int_eq(ts.n, live);
    ck_assert_int_eq(drain(&ts, 1 << 30), live);
    ck_assert_int_eq(fired, live);
    nt_timers_free(&ts);
}
END_TEST

/* A callback may schedule again the timer it runs for (heartbeats do). */
static nt_timers_t *requeue_set;
static int requeues;

static void requeue(nt_timer_t *t)
{
    if (++requeues < 3) nt_timer_schedule(requeue_set, t, requeue, t->due + 10);
}

START_TEST(timer_requeue_in_callback)
{
    nt_timers_t ts = { NULL, 0, 0 };
    nt_timer_t a, b;

    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    requeue_set = &ts;
    requeues = 0;
    nt_timer_schedule(&ts, &a, requeue, 5);
    nt_timer_schedule(&ts, &b, count_fire, 100);
    ck_assert_int_eq(nt_timers_next_due(&ts), 5);
    fired = 0;
    ck_assert_int_eq(drain(&ts, 30), 3);   /* a at 5, 15, 25 */
    ck_assert_int_eq(requeues, 3);
    ck_assert(!nt_timer_scheduled(&a));
    ck_assert_int_eq(nt_timers_next_due(&ts), 100);
    nt_timers_free(&ts);
    ck_assert(!nt_timer_scheduled(&b));
}
END_TEST

static Suite *bind_suite(void)
{
    Suite *s = suite_create("bind");
    TCase *tc = fs_check_tcase("frames");

    tcase_add_test(tc, text_bind);
    tcase_add_test(tc, text_malformed);
    tcase_add_test(tc, text_unknown);
    tcase_add_test(tc, text_nul);
    tcase_add_test(tc, json_frames);
    tcase_add_test(tc, json_bad);
    tcase_add_test(tc, type_names);
    suite_add_tcase(s, tc);

    tc = fs_check_tcase("send queue");
    tcase_add_test(tc, msg_payload);
    tcase_add_test(tc, msg_event_in_one_piece);
    tcase_add_test(tc, queue_fifo);
    tcase_add_test(tc, queue_bounds);
    tcase_add_test(tc, queue_watermarks);
    suite_add_tcase(s, tc);

    tc = fs_check_tcase("bundles and retention");
    tcase_add_test(tc, batch_max_count);
    tcase_add_test(tc, batch_cursor_cuts);
    tcase_add_test(tc, prune_rule_limits);
    tcase_add_test(tc, prune_rule_protection);
    tcase_add_test(tc, prune_floors);
    suite_add_tcase(s, tc);

    tc = fs_check_tcase("timers");
    tcase_add_test(tc, timer_order);
    tcase_add_test(tc, timer_cancel_reschedule);
    tcase_add_test(tc, timer_requeue_in_callback);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return fs_check_main(bind_suite());
}
