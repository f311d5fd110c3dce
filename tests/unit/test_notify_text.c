/* Unit tests: fs_notify_text, the notification Bundles written as text, against the
 * json-c built Bundle (fs_json_str(fs_notify_bundle(...))) byte for byte, the status
 * entry's random urn:uuid aside, for every shape (R4 backport, R5, classic), content
 * level (empty, id-only, full-resource), notification type, with one and several
 * events, and with values that need escaping; one writer is reused across
 * subscriptions and changes, as in a notifier scan job, so its cache is exercised. */
#include <string.h>
#include <apr_hash.h>
#include <apr_strings.h>

#include "fs_check.h"
#include "../../src/core/fs_json.h"
#include "../../src/core/fs_notify.h"
#include "../../src/core/fs_notify_text.h"
#include "../../src/core/fs_time.h"

#define BASE "https://fhir.example.org/fhir/R4"
#define TOPIC "http://hl7.org/fhir/uv/subscriptions-backport/SubscriptionTopic/r4-encounter-complete"
#define UUID_PREFIX "\"fullUrl\":\"urn:uuid:"
#define UUID_LEN 36

static const fs_sub_shape_t shapes[] = { FS_SHAPE_BACKPORT, FS_SHAPE_R5, FS_SHAPE_CLASSIC };
static const char *const contents[] = { "empty", "id-only", "full-resource" };
static const char *const types[] = { FS_NOTIFY_HANDSHAKE, FS_NOTIFY_HEARTBEAT, FS_NOTIFY_EVENT,
                                     FS_NOTIFY_QUERY_EVENT };

static apr_time_t now;

static void set_now(void)
{
    ck_assert_int_eq(fs_time_parse(&now, "2026-06-01T11:44:13.250Z"), APR_SUCCESS);
}

static fs_sub_t *make_sub(fs_sub_shape_t shape, const char *content)
{
    fs_sub_t *s = apr_pcalloc(pool, sizeof(*s));
    s->id = "sub-ws-1";
    s->status = "active";
    s->shape = shape;
    s->topic = shape == FS_SHAPE_CLASSIC ? NULL : TOPIC;
    s->content = content;
    s->base_url = BASE;
    s->events_since_start = 7;
    s->error = "";
    return s;
}

static fs_notify_event_t make_event(apr_int64_t number, const char *interaction,
                                    const char *body)
{
    fs_notify_event_t ev;
    memset(&ev, 0, sizeof(ev));
    ev.number = number;
    ck_assert_int_eq(fs_time_parse(&ev.timestamp, "2026-06-01T11:40:00.125Z"), APR_SUCCESS);
    ev.timestamp += apr_time_from_msec(number);   /* each event its own instant */
    ev.resource_type = "Encounter";
    ev.resource_id = "86009987";
    ev.version_id = "2";
    ev.interaction = interaction;
    ev.request_method = "";
    ev.request_url = "";
    ev.response_status = "";
    ev.body = body;
    return ev;
}

/* The status entry's urn:uuid (the first fullUrl) replaced by a fixed one, after
 * checking it is a lowercase UUID v4. */
static char *without_uuid(const char *text)
{
    char *copy = apr_pstrdup(pool, text), *at = strstr(copy, UUID_PREFIX);
    int i;

    ck_assert_msg(at != NULL, "no urn:uuid fullUrl in %s", text);
    at += strlen(UUID_PREFIX);
    ck_assert_uint_ge(strlen(at), UUID_LEN + 1);
    for (i = 0; i < UUID_LEN; ++i) {
        if (i == 8 || i == 13 || i == 18 || i == 23) ck_assert_int_eq(at[i], '-');
        else ck_assert_msg(strchr("0123456789abcdef", at[i]) != NULL, "not a uuid: %.36s", at);
        at[i] = 'x';
    }
    ck_assert_int_eq(at[UUID_LEN], '"');
    ck_assert_int_eq(text[at - copy + 14], '4');                    /* version 4 */
    ck_assert_ptr_nonnull(strchr("89ab", text[at - copy + 19]));     /* RFC 4122 variant */
    return copy;
}

/* The writer's text equals the json-c Bundle's serialisation (uuid aside). */
static void check_same(fs_notify_writer_t *w, const fs_sub_t *sub, const char *type,
                       const fs_notify_event_t *events, int nevents)
{
    const char *text = NULL, *expected;
    apr_size_t len = fs_notify_text(w, sub, type, events, nevents, now, &text);

    expected = fs_json_str(pool, fs_notify_bundle(pool, sub, type, events, nevents, now));
    ck_assert_uint_eq(len, strlen(text));
    ck_assert_str_eq(without_uuid(text), without_uuid(expected));
}

/* Every shape, content level and type, with 0, 1 and 3 events. */
static void check_all(fs_notify_writer_t *w, fs_sub_t *(*make)(fs_sub_shape_t, const char *),
                      const fs_notify_event_t *events, int nevents)
{
    const int counts[] = { 0, 1, nevents };
    size_t s, c, t, n;

    for (s = 0; s < sizeof(shapes) / sizeof(shapes[0]); ++s) {
        for (c = 0; c < sizeof(contents) / sizeof(contents[0]); ++c) {
            const fs_sub_t *sub = make(shapes[s], contents[c]);
            for (t = 0; t < sizeof(types) / sizeof(types[0]); ++t) {
                for (n = 0; n < sizeof(counts) / sizeof(counts[0]); ++n) {
                    check_same(w, sub, types[t], events, counts[n]);
                }
            }
        }
    }
}

static const char *patient_body(void)
{
    return "{\"resourceType\":\"Encounter\",\"id\":\"86009987\",\"status\":\"finished\","
           "\"meta\":{\"versionId\":\"2\"},\"length\":{\"value\":1.50,\"unit\":\"h\"},"
           "\"priority\":{\"text\":\"caf\\u00e9 \\/ \\\"quoted\\\" \\n tab\\t\"},"
           "\"period\":{\"start\":\"2026-06-01T11:00:00Z\"},\"n\":[1e3,-0,true,null]}";
}

START_TEST(every_shape_content_and_type)
{
    fs_notify_writer_t *w = fs_notify_writer_make(pool);
    fs_notify_event_t events[3];

    events[0] = make_event(8, "create", patient_body());
    events[1] = make_event(9, "update", patient_body());
    events[2] = make_event(10, "delete", patient_body());
    check_all(w, make_sub, events, 3);
}
END_TEST

/* Captured request/response values, other resources, odd bodies. */
START_TEST(request_fields_and_bodies)
{
    fs_notify_writer_t *w = fs_notify_writer_make(pool);
    fs_notify_event_t events[4];

    events[0] = make_event(1, "update", "{\"resourceType\":\"Patient\",\"id\":\"p1\"}");
    events[0].resource_type = "Patient";
    events[0].resource_id = "p1";
    events[0].request_method = "PATCH";
    events[0].request_url = "Patient/p1?_format=json&x=\"a b\"";
    events[0].response_status = "200 OK";
    events[1] = make_event(2, "update", "[1,2,3]");          /* not an object: no resource */
    events[2] = make_event(3, "create", "{\"broken\":");      /* not JSON: no resource */
    events[3] = make_event(4, NULL, NULL);                    /* nothing known */
    events[3].request_method = NULL;
    check_all(w, make_sub, events, 4);
}
END_TEST

static fs_sub_t *odd_sub(fs_sub_shape_t shape, const char *content)
{
    fs_sub_t *s = make_sub(shape, content);
    s->id = "sub-\"quoted\"\\x";
    s->base_url = "https://fhir.example.org/a b/\x01\x1f/R4";
    s->topic = shape == FS_SHAPE_CLASSIC ? NULL : "http://example.org/topic?\"q\"\t\r\n\b\f/\x7f\xc3\xa9";
    s->error = "the client \"went\" away\n\\ twice";
    s->status = "error";
    s->events_since_start = APR_INT64_C(9007199254740993);
    return s;
}

/* Values needing escapes everywhere, an error, an ended subscription (status off). */
START_TEST(escaped_values_error_and_end)
{
    fs_notify_writer_t *w = fs_notify_writer_make(pool);
    fs_notify_event_t events[2];
    fs_sub_t *ended;

    events[0] = make_event(APR_INT64_C(9007199254740993), "create", patient_body());
    events[0].resource_type = "Enc\"ounter";
    events[0].resource_id = "id\\with\x02control";
    events[1] = make_event(-1, "update", "{\"resourceType\":\"Encounter\"}");
    check_all(w, odd_sub, events, 2);
    ended = make_sub(FS_SHAPE_R5, "id-only");
    ended->end = now - apr_time_from_sec(1);
    check_same(w, ended, FS_NOTIFY_EVENT, events, 1);
    ended->shape = FS_SHAPE_BACKPORT;
    check_same(w, ended, FS_NOTIFY_HEARTBEAT, NULL, 0);
}
END_TEST

/* One writer over many subscriptions and changes, as a scan job uses it: changes that
 * share type/id/version but differ in body or request stay apart; a body far larger
 * than the writer's first buffer. */
START_TEST(cache_across_subscriptions_and_changes)
{
    fs_notify_writer_t *w = fs_notify_writer_make(pool);
    fs_notify_event_t a = make_event(1, "update", "{\"resourceType\":\"Encounter\",\"v\":1}");
    fs_notify_event_t b = make_event(1, "update", "{\"resourceType\":\"Encounter\",\"v\":2}");
    fs_notify_event_t c = make_event(1, "update", "{\"resourceType\":\"Encounter\",\"v\":1}");
    char *big = apr_palloc(pool, 20000);
    fs_notify_event_t d;
    int i;

    c.request_method = "POST";
    memset(big, 'x', 20000);
    memcpy(big, "{\"text\":\"", 9);
    memcpy(big + 20000 - 3, "\"}", 3);
    d = make_event(2, "create", big);
    for (i = 0; i < 50; ++i) {
        fs_sub_t *sub = make_sub(shapes[i % 3], contents[(i / 3) % 3]);
        sub->id = apr_psprintf(pool, "fanout-%d", i);
        sub->events_since_start = i;
        check_same(w, sub, FS_NOTIFY_EVENT, i % 2 ? &a : &b, 1);
        check_same(w, sub, FS_NOTIFY_EVENT, &c, 1);
        check_same(w, sub, FS_NOTIFY_EVENT, &d, 1);
    }
}
END_TEST

/* Every Bundle gets its own urn:uuid, also past the writer's first batch of random
 * bytes (256 ids). */
START_TEST(fresh_uuid_per_bundle)
{
    fs_notify_writer_t *w = fs_notify_writer_make(pool);
    apr_hash_t *seen = apr_hash_make(pool);
    const fs_sub_t *sub = make_sub(FS_SHAPE_R5, "empty");
    int i;

    for (i = 0; i < 600; ++i) {
        const char *text = NULL, *id;
        fs_notify_text(w, sub, FS_NOTIFY_HEARTBEAT, NULL, 0, now, &text);
        without_uuid(text);   /* checks its form */
        id = apr_pstrndup(pool, strstr(text, UUID_PREFIX) + strlen(UUID_PREFIX), UUID_LEN);
        ck_assert_msg(!apr_hash_get(seen, id, APR_HASH_KEY_STRING), "uuid %s twice", id);
        apr_hash_set(seen, id, APR_HASH_KEY_STRING, id);
    }
}
END_TEST

/* The escaper against json-c for every byte value. */
START_TEST(escape_like_json_c)
{
    char s[4];
    int c;

    for (c = 1; c < 256; ++c) {
        json_object *j;
        const char *expected;
        s[0] = 'a';
        s[1] = (char)c;
        s[2] = 'z';
        s[3] = '\0';
        j = json_object_new_string(s);
        expected = fs_json_str(pool, j);
        json_object_put(j);
        /* json-c's text without its quotes */
        ck_assert_str_eq(apr_psprintf(pool, "\"%s\"", fs_notify_json_escape(pool, s)), expected);
    }
    ck_assert_str_eq(fs_notify_json_escape(pool, NULL), "");
}
END_TEST

static Suite *notify_text_suite(void)
{
    Suite *s = suite_create("notify_text");
    TCase *tc = fs_check_tcase("text against json-c");

    tcase_add_checked_fixture(tc, set_now, NULL);
    tcase_add_test(tc, every_shape_content_and_type);
    tcase_add_test(tc, request_fields_and_bodies);
    tcase_add_test(tc, escaped_values_error_and_end);
    tcase_add_test(tc, cache_across_subscriptions_and_changes);
    tcase_add_test(tc, fresh_uuid_per_bundle);
    tcase_add_test(tc, escape_like_json_c);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return fs_check_main(notify_text_suite());
}
