/* Unit tests: fs_notify, the notification Bundles in the three shapes -- R4 backport
 * (history + backport status Parameters), R5 (subscription-notification +
 * SubscriptionStatus) and classic R4 criteria as Medplum's client reads them
 * (history + SubscriptionStatus with relative references), with one event and with
 * several (a subscription's max_count) at each content level. */
#include <string.h>
#include <apr_strings.h>

#include "fs_check.h"
#include "../../src/core/fs_json.h"
#include "../../src/core/fs_notify.h"
#include "../../src/core/fs_time.h"

#define BASE "https://fhir.example.org/fhir/R4"
#define TOPIC "http://hl7.org/fhir/uv/subscriptions-backport/SubscriptionTopic/r4-encounter-complete"

static apr_time_t now;

static void set_now(void)
{
    ck_assert_int_eq(fs_time_parse(&now, "2026-06-01T11:44:13Z"), APR_SUCCESS);
}

static TCase *notify_tcase(const char *name)
{
    TCase *tc = fs_check_tcase(name);
    tcase_add_checked_fixture(tc, set_now, NULL);
    return tc;
}

static fs_sub_t *make_sub(fs_sub_shape_t shape, const char *content)
{
    fs_sub_t *s = apr_pcalloc(pool, sizeof(*s));
    s->id = "sub-ws-1";
    s->owner = "alice";
    s->status = "active";
    s->channel_type = "websocket";
    s->shape = shape;
    s->topic = shape == FS_SHAPE_CLASSIC ? NULL : TOPIC;
    s->criteria = shape == FS_SHAPE_CLASSIC ? "Encounter?status=finished" : TOPIC;
    s->filters_json = "[]";
    s->content = content;
    s->content_type = "application/fhir+json";
    s->heartbeat_period = 60;
    s->base_url = BASE;
    s->events_since_start = 7;
    s->error = "";
    s->version_id = 1;
    return s;
}

static fs_notify_event_t make_event(apr_int64_t number, const char *interaction,
                                    const char *body)
{
    fs_notify_event_t ev;
    memset(&ev, 0, sizeof(ev));
    ev.number = number;
    fs_time_parse(&ev.timestamp, "2026-06-01T11:40:00Z");
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

/* ---- JSON navigation ------------------------------------------------------------ */

static json_object *get(json_object *o, const char *key)
{
    json_object *v = NULL;
    ck_assert_msg(json_object_object_get_ex(o, key, &v), "no '%s' in %s", key,
                  json_object_to_json_string(o));
    return v;
}

static int has(json_object *o, const char *key)
{
    return json_object_object_get_ex(o, key, NULL);
}

static const char *str(json_object *o, const char *key)
{
    json_object *v = get(o, key);
    ck_assert_msg(json_object_is_type(v, json_type_string), "'%s' is not a string", key);
    return json_object_get_string(v);
}

static json_object *entry(json_object *bundle, int i)
{
    json_object *entries = get(bundle, "entry");
    ck_assert_int_gt((int)json_object_array_length(entries), i);
    return json_object_array_get_idx(entries, (size_t)i);
}

static int nentries(json_object *bundle)
{
    return (int)json_object_array_length(get(bundle, "entry"));
}

/* The Parameters parameter named name (the first one). */
static json_object *param(json_object *params, const char *name)
{
    json_object *list = get(params, "parameter");
    size_t i;
    for (i = 0; i < json_object_array_length(list); ++i) {
        json_object *p = json_object_array_get_idx(list, i);
        if (!strcmp(str(p, "name"), name)) return p;
    }
    ck_abort_msg("no parameter %s in %s", name, json_object_to_json_string(params));
    return NULL;
}

static int nparams(json_object *params, const char *name)
{
    json_object *list = get(params, "parameter");
    size_t i;
    int n = 0;
    for (i = 0; i < json_object_array_length(list); ++i) {
        n += !strcmp(str(json_object_array_get_idx(list, i), "name"), name);
    }
    return n;
}

static json_object *part(json_object *p, const char *name)
{
    json_object *list = get(p, "part");
    size_t i;
    for (i = 0; i < json_object_array_length(list); ++i) {
        json_object *q = json_object_array_get_idx(list, i);
        if (!strcmp(str(q, "name"), name)) return q;
    }
    return NULL;
}

/* ---- R4 backport ------------------------------------------------------------------- */

START_TEST(backport_handshake)
{
    json_object *b = fs_notify_handshake(pool, make_sub(FS_SHAPE_BACKPORT, "id-only"), now);
    json_object *e0 = entry(b, 0), *res = get(e0, "resource");

    ck_assert_str_eq(str(b, "resourceType"), "Bundle");
    ck_assert_str_eq(str(b, "type"), "history");
    ck_assert_str_eq(str(b, "timestamp"), "2026-06-01T11:44:13.000Z");
    ck_assert_int_eq(nentries(b), 1);
    ck_assert(!strncmp(str(e0, "fullUrl"), "urn:uuid:", 9));
    ck_assert_str_eq(str(res, "resourceType"), "Parameters");
    ck_assert_str_eq(json_object_get_string(json_object_array_get_idx(
                         get(get(res, "meta"), "profile"), 0)), FS_URL_BACKPORT_STATUS_R4);
    ck_assert_str_eq(str(get(param(res, "subscription"), "valueReference"), "reference"),
                     BASE "/Subscription/sub-ws-1");
    ck_assert_str_eq(str(param(res, "topic"), "valueCanonical"), TOPIC);
    ck_assert_str_eq(str(param(res, "status"), "valueCode"), "active");
    ck_assert_str_eq(str(param(res, "type"), "valueCode"), "handshake");
    ck_assert_str_eq(str(param(res, "events-since-subscription-start"), "valueString"), "7");
    ck_assert_int_eq(nparams(res, "notification-event"), 0);
    /* bdl-3/4: request and response on the status entry */
    ck_assert_str_eq(str(get(e0, "request"), "method"), "GET");
    ck_assert_str_eq(str(get(e0, "request"), "url"), BASE "/Subscription/sub-ws-1/$status");
    ck_assert_str_eq(str(get(e0, "response"), "status"), "200");
}
END_TEST

START_TEST(backport_heartbeat)
{
    json_object *b = fs_notify_heartbeat(pool, make_sub(FS_SHAPE_BACKPORT, "id-only"), now);
    json_object *res = get(entry(b, 0), "resource");
    ck_assert_str_eq(str(param(res, "type"), "valueCode"), "heartbeat");
    /* no counter increment for heartbeats */
    ck_assert_str_eq(str(param(res, "events-since-subscription-start"), "valueString"), "7");
    ck_assert_int_eq(nentries(b), 1);
}
END_TEST

START_TEST(backport_event_id_only)
{
    fs_notify_event_t ev = make_event(8, "update", "{\"resourceType\":\"Encounter\"}");
    json_object *b = fs_notify_event(pool, make_sub(FS_SHAPE_BACKPORT, "id-only"), &ev, 1,
                                     now);
    json_object *res = get(entry(b, 0), "resource"), *ne, *e1;

    ck_assert_str_eq(str(param(res, "type"), "valueCode"), "event-notification");
    ck_assert_str_eq(str(param(res, "events-since-subscription-start"), "valueString"), "8");
    ne = param(res, "notification-event");
    ck_assert_str_eq(str(part(ne, "event-number"), "valueString"), "8");
    ck_assert_str_eq(str(part(ne, "timestamp"), "valueInstant"), "2026-06-01T11:40:00.000Z");
    ck_assert_str_eq(str(get(part(ne, "focus"), "valueReference"), "reference"),
                     BASE "/Encounter/86009987");
    ck_assert_int_eq(nentries(b), 2);
    e1 = entry(b, 1);
    ck_assert_str_eq(str(e1, "fullUrl"), BASE "/Encounter/86009987");
    ck_assert(!has(e1, "resource"));   /* id-only */
    ck_assert_str_eq(str(get(e1, "request"), "method"), "PUT");
    ck_assert_str_eq(str(get(e1, "request"), "url"), "Encounter/86009987");
    ck_assert_str_eq(str(get(e1, "response"), "status"), "200");
}
END_TEST

START_TEST(backport_event_full_resource)
{
    fs_notify_event_t ev = make_event(8, "create",
                                      "{\"resourceType\":\"Encounter\",\"id\":\"86009987\","
                                      "\"status\":\"finished\"}");
    json_object *b, *e1;

    ev.request_method = "POST";
    ev.request_url = "Encounter";
    ev.response_status = "201 Created";
    b = fs_notify_event(pool, make_sub(FS_SHAPE_BACKPORT, "full-resource"), &ev, 1, now);
    e1 = entry(b, 1);
    ck_assert_str_eq(str(get(e1, "resource"), "status"), "finished");
    ck_assert_str_eq(str(get(e1, "request"), "method"), "POST");
    ck_assert_str_eq(str(get(e1, "request"), "url"), "Encounter");
    ck_assert_str_eq(str(get(e1, "response"), "status"), "201 Created");
}
END_TEST

START_TEST(backport_event_empty)
{
    fs_notify_event_t ev = make_event(9, "update", "{\"resourceType\":\"Encounter\"}");
    json_object *b = fs_notify_event(pool, make_sub(FS_SHAPE_BACKPORT, "empty"), &ev, 1, now);
    json_object *ne = param(get(entry(b, 0), "resource"), "notification-event");
    /* empty: no focus, no entries beyond the status */
    ck_assert_ptr_nonnull(part(ne, "event-number"));
    ck_assert_ptr_null(part(ne, "focus"));
    ck_assert_int_eq(nentries(b), 1);
}
END_TEST

START_TEST(event_delete_and_bad_body)
{
    fs_notify_event_t evs[2];
    json_object *b, *e1, *e2;

    evs[0] = make_event(10, "delete", "");
    evs[1] = make_event(11, "update", "not json");
    b = fs_notify_event(pool, make_sub(FS_SHAPE_BACKPORT, "full-resource"), evs, 2, now);
    /* several events: the highest number is the count */
    ck_assert_str_eq(str(param(get(entry(b, 0), "resource"), "events-since-subscription-start"),
                         "valueString"), "11");
    ck_assert_int_eq(nparams(get(entry(b, 0), "resource"), "notification-event"), 2);
    ck_assert_int_eq(nentries(b), 3);
    e1 = entry(b, 1);
    ck_assert(!has(e1, "resource"));
    ck_assert_str_eq(str(get(e1, "request"), "method"), "DELETE");
    ck_assert_str_eq(str(get(e1, "request"), "url"), "Encounter/86009987");
    /* an unreadable stored body degrades to id-only rather than failing */
    e2 = entry(b, 2);
    ck_assert(!has(e2, "resource"));
    ck_assert_str_eq(str(get(e2, "request"), "method"), "PUT");
}
END_TEST

/* ---- R5 --------------------------------------------------------------------------- */

START_TEST(r5_handshake_and_event)
{
    fs_sub_t *sub = make_sub(FS_SHAPE_R5, "full-resource");
    fs_notify_event_t ev = make_event(2, "update", "{\"resourceType\":\"Encounter\",\"id\":"
                                      "\"86009987\"}");
    json_object *b = fs_notify_handshake(pool, sub, now), *st, *ne, *e0;

    ck_assert_str_eq(str(b, "type"), "subscription-notification");
    e0 = entry(b, 0);
    ck_assert(!has(e0, "request"));
    st = get(e0, "resource");
    ck_assert_str_eq(str(st, "resourceType"), "SubscriptionStatus");
    ck_assert_str_eq(str(st, "type"), "handshake");
    ck_assert_str_eq(str(st, "status"), "active");
    ck_assert_str_eq(str(st, "eventsSinceSubscriptionStart"), "7");
    ck_assert_str_eq(str(get(st, "subscription"), "reference"), BASE "/Subscription/sub-ws-1");
    ck_assert_str_eq(str(st, "topic"), TOPIC);
    ck_assert(!has(st, "notificationEvent"));
    ck_assert(!has(b, "total"));

    b = fs_notify_event(pool, sub, &ev, 1, now);
    st = get(entry(b, 0), "resource");
    ck_assert_str_eq(str(st, "type"), "event-notification");
    ck_assert_str_eq(str(st, "eventsSinceSubscriptionStart"), "2");
    ne = json_object_array_get_idx(get(st, "notificationEvent"), 0);
    ck_assert_str_eq(str(ne, "eventNumber"), "2");
    ck_assert_str_eq(str(get(ne, "focus"), "reference"), BASE "/Encounter/86009987");
    ck_assert_str_eq(str(get(entry(b, 1), "resource"), "id"), "86009987");
    ck_assert_str_eq(str(get(entry(b, 1), "request"), "method"), "PUT");
}
END_TEST

/* ---- classic (Medplum's client) ------------------------------------------------------ */

START_TEST(classic_shape)
{
    fs_sub_t *sub = make_sub(FS_SHAPE_CLASSIC, "full-resource");
    fs_notify_event_t ev = make_event(1, "create", "{\"resourceType\":\"Encounter\",\"id\":"
                                      "\"86009987\"}");
    json_object *b = fs_notify_handshake(pool, sub, now), *st, *ne;
    const char *ref;

    ck_assert_str_eq(fs_notify_sub_reference(pool, sub), "Subscription/sub-ws-1");
    ck_assert_str_eq(str(b, "type"), "history");
    st = get(entry(b, 0), "resource");
    /* Medplum: entry[0].resource.type, and reference.split('/')[1] is the id */
    ck_assert_str_eq(str(st, "resourceType"), "SubscriptionStatus");
    ck_assert_str_eq(str(st, "type"), "handshake");
    ref = str(get(st, "subscription"), "reference");
    ck_assert_str_eq(ref, "Subscription/sub-ws-1");
    ck_assert(!has(st, "topic"));
    ck_assert_str_eq(str(get(entry(b, 0), "request"), "url"), "Subscription/sub-ws-1/$status");

    b = fs_notify_event(pool, sub, &ev, 1, now);
    st = get(entry(b, 0), "resource");
    ck_assert_str_eq(str(st, "type"), "event-notification");
    ck_assert_str_eq(str(st, "eventsSinceSubscriptionStart"), "1");
    ne = json_object_array_get_idx(get(st, "notificationEvent"), 0);
    ck_assert_str_eq(str(get(ne, "focus"), "reference"), "Encounter/86009987");
    /* the changed resource is entry[1].resource */
    ck_assert_str_eq(str(get(entry(b, 1), "resource"), "resourceType"), "Encounter");
    ck_assert_str_eq(str(entry(b, 1), "fullUrl"), BASE "/Encounter/86009987");
    ck_assert_str_eq(str(get(entry(b, 1), "request"), "method"), "POST");
    ck_assert_str_eq(str(get(entry(b, 1), "response"), "status"), "201");
}
END_TEST

START_TEST(status_follows_subscription)
{
    fs_sub_t *sub = make_sub(FS_SHAPE_R5, "id-only");
    json_object *st;

    sub->status = "error";
    sub->error = "client too slow";
    st = get(entry(fs_notify_heartbeat(pool, sub, now), 0), "resource");
    ck_assert_str_eq(str(st, "status"), "error");
    ck_assert_ptr_nonnull(get(st, "error"));
    /* an ended subscription reads off */
    sub = make_sub(FS_SHAPE_BACKPORT, "id-only");
    sub->end = now - apr_time_from_sec(1);
    st = get(entry(fs_notify_heartbeat(pool, sub, now), 0), "resource");
    ck_assert_str_eq(str(param(st, "status"), "valueCode"), "off");
}
END_TEST

START_TEST(serialised_without_slash_escapes)
{
    const char *text = fs_json_str(pool, fs_notify_handshake(pool, make_sub(FS_SHAPE_BACKPORT,
                                                                             "id-only"), now));
    ck_assert_ptr_null(strstr(text, "\\/"));
    ck_assert_ptr_nonnull(strstr(text, "\"https://fhir.example.org/fhir/R4/Subscription/"
                                       "sub-ws-1/$status\""));
}
END_TEST


/* ---- several events per Bundle (max_count) ----------------------------------------- */

/* n events numbered first.. on Encounter/enc-<number>, each with its own body. */
static fs_notify_event_t *make_events(int n, apr_int64_t first)
{
    fs_notify_event_t *evs = apr_pcalloc(pool, sizeof(*evs) * (apr_size_t)n);
    int i;
    for (i = 0; i < n; ++i) {
        const char *id = apr_psprintf(pool, "enc-%d", (int)(first + i));
        evs[i] = make_event(first + i, "update",
                            apr_psprintf(pool, "{\"resourceType\":\"Encounter\",\"id\":\"%s\"}",
                                         id));
        evs[i].resource_id = id;
    }
    return evs;
}

static const char *enc_url(int number)
{
    return apr_psprintf(pool, BASE "/Encounter/enc-%d", number);
}

START_TEST(backport_several_events)
{
    static const char *const contents[] = { "empty", "id-only", "full-resource" };
    fs_notify_event_t *evs = make_events(3, 4);
    int c, i;

    for (c = 0; c < 3; ++c) {
        json_object *b = fs_notify_event(pool, make_sub(FS_SHAPE_BACKPORT, contents[c]),
                                         evs, 3, now);
        json_object *res = get(entry(b, 0), "resource"), *list = get(res, "parameter");
        int k = 0;
        /* the highest number it carries, not the subscription's counter (7) */
        ck_assert_str_eq(str(param(res, "events-since-subscription-start"), "valueString"),
                         "6");
        ck_assert_int_eq(nparams(res, "notification-event"), 3);
        for (i = 0; i < (int)json_object_array_length(list); ++i) {
            json_object *ne = json_object_array_get_idx(list, (size_t)i), *focus;
            if (strcmp(str(ne, "name"), "notification-event")) continue;
            /* in order, one per event; focus only above `empty` */
            ck_assert_str_eq(str(part(ne, "event-number"), "valueString"),
                             apr_psprintf(pool, "%d", 4 + k));
            focus = part(ne, "focus");
            if (c == 0) ck_assert_ptr_null(focus);
            else ck_assert_str_eq(str(get(focus, "valueReference"), "reference"),
                                  enc_url(4 + k));
            ++k;
        }
        /* one focus entry per event per content level, in the same order */
        ck_assert_int_eq(nentries(b), c == 0 ? 1 : 4);
        for (i = 1; i < nentries(b); ++i) {
            json_object *e = entry(b, i);
            ck_assert_str_eq(str(e, "fullUrl"), enc_url(3 + i));
            ck_assert_int_eq(has(e, "resource"), c == 2);
            if (c == 2) {
                ck_assert_str_eq(str(get(e, "resource"), "id"),
                                 apr_psprintf(pool, "enc-%d", 3 + i));
            }
            ck_assert_str_eq(str(get(e, "request"), "method"), "PUT");
        }
    }
}
END_TEST

START_TEST(r5_several_events)
{
    fs_notify_event_t *evs = make_events(2, 11);
    json_object *b = fs_notify_event(pool, make_sub(FS_SHAPE_R5, "full-resource"), evs, 2,
                                     now);
    json_object *st = get(entry(b, 0), "resource"), *list = get(st, "notificationEvent");

    ck_assert_str_eq(str(b, "type"), "subscription-notification");
    ck_assert_str_eq(str(st, "eventsSinceSubscriptionStart"), "12");
    ck_assert_int_eq((int)json_object_array_length(list), 2);
    ck_assert_str_eq(str(json_object_array_get_idx(list, 0), "eventNumber"), "11");
    ck_assert_str_eq(str(json_object_array_get_idx(list, 1), "eventNumber"), "12");
    ck_assert_str_eq(str(get(json_object_array_get_idx(list, 1), "focus"), "reference"),
                     enc_url(12));
    ck_assert_int_eq(nentries(b), 3);
    ck_assert_str_eq(str(get(entry(b, 1), "resource"), "id"), "enc-11");
    ck_assert_str_eq(str(get(entry(b, 2), "resource"), "id"), "enc-12");
    /* empty: the events without focus, no focus entries */
    b = fs_notify_event(pool, make_sub(FS_SHAPE_R5, "empty"), evs, 2, now);
    st = get(entry(b, 0), "resource");
    ck_assert_int_eq((int)json_object_array_length(get(st, "notificationEvent")), 2);
    ck_assert(!has(json_object_array_get_idx(get(st, "notificationEvent"), 0), "focus"));
    ck_assert_int_eq(nentries(b), 1);
}
END_TEST

START_TEST(classic_several_events)
{
    fs_notify_event_t *evs = make_events(3, 1);
    json_object *b = fs_notify_event(pool, make_sub(FS_SHAPE_CLASSIC, "id-only"), evs, 3,
                                     now);
    json_object *st = get(entry(b, 0), "resource"), *list = get(st, "notificationEvent");
    int i;

    ck_assert_str_eq(str(b, "type"), "history");
    ck_assert_str_eq(str(st, "eventsSinceSubscriptionStart"), "3");
    ck_assert_int_eq((int)json_object_array_length(list), 3);
    for (i = 0; i < 3; ++i) {
        json_object *ne = json_object_array_get_idx(list, (size_t)i);
        ck_assert_str_eq(str(ne, "eventNumber"), apr_psprintf(pool, "%d", i + 1));
        /* relative, as Medplum reads them */
        ck_assert_str_eq(str(get(ne, "focus"), "reference"),
                         apr_psprintf(pool, "Encounter/enc-%d", i + 1));
        ck_assert_str_eq(str(entry(b, i + 1), "fullUrl"), enc_url(i + 1));
        ck_assert(!has(entry(b, i + 1), "resource"));
        ck_assert_str_eq(str(get(entry(b, i + 1), "request"), "method"), "PUT");
    }
    ck_assert_int_eq(nentries(b), 4);
}
END_TEST

static Suite *notify_suite(void)
{
    Suite *s = suite_create("notify");
    TCase *tc = notify_tcase("backport");

    tcase_add_test(tc, backport_handshake);
    tcase_add_test(tc, backport_heartbeat);
    tcase_add_test(tc, backport_event_id_only);
    tcase_add_test(tc, backport_event_full_resource);
    tcase_add_test(tc, backport_event_empty);
    tcase_add_test(tc, event_delete_and_bad_body);
    suite_add_tcase(s, tc);

    tc = notify_tcase("r5 and classic");
    tcase_add_test(tc, r5_handshake_and_event);
    tcase_add_test(tc, classic_shape);
    tcase_add_test(tc, status_follows_subscription);
    tcase_add_test(tc, serialised_without_slash_escapes);
    suite_add_tcase(s, tc);

    tc = notify_tcase("several events per Bundle");
    tcase_add_test(tc, backport_several_events);
    tcase_add_test(tc, r5_several_events);
    tcase_add_test(tc, classic_several_events);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return fs_check_main(notify_suite());
}
