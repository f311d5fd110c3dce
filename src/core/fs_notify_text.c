#include <string.h>
#include <apr_general.h>
#include <apr_hash.h>
#include <apr_strings.h>

#include "fs_fhir.h"
#include "fs_id.h"
#include "fs_json.h"
#include "fs_status.h"
#include "fs_time.h"
#include "fs_notify_int.h"
#include "fs_notify_text.h"

/* Longest "type\0id\0version" a change is cached under; longer ones are written
 * each time (no real id is that long: FHIR ids have at most 64 characters). */
#define KEY_MAX 400
/* Formatted instants kept (event timestamps: one per write, a few per scan). */
#define INSTANTS 16
/* Random bytes drawn at once for the status entries' urn:uuid: one getrandom() per 256
 * Bundles instead of one each. */
#define UUID_BYTES (16 * 256)

/* A growing text buffer in a pool. */
typedef struct text_t {
    apr_pool_t *pool;
    char *buf;
    apr_size_t len, cap;
} text_t;

/* One change's focus entry after its fullUrl: `,"resource":{...}` (when shown),
 * `,"request":{...},"response":{...}}`. */
typedef struct change_text_t {
    struct change_text_t *next;        /* another change under the same key */
    fs_notify_event_t ev;              /* its fields ("" for NULL); number/time unused */
    const char *tail[2];               /* [with the resource]: NULL until needed */
    apr_size_t tail_len[2];
} change_text_t;

typedef struct instant_t {
    apr_time_t at;
    char text[32];                     /* "" = empty slot */
} instant_t;

struct fs_notify_writer_t {
    apr_pool_t *pool;                  /* the cache and the buffer */
    apr_pool_t *scratch;               /* one Bundle's temporaries */
    apr_hash_t *changes;               /* "type\0id\0version" -> change_text_t* */
    text_t out;
    instant_t instants[INSTANTS];
    unsigned char random[UUID_BYTES];
    apr_size_t random_used;            /* UUID_BYTES = none left */
};

/* ---- text ----------------------------------------------------------------------- */

static void text_init(text_t *t, apr_pool_t *p, apr_size_t cap)
{
    t->pool = p;
    t->cap = cap;
    t->len = 0;
    t->buf = apr_palloc(p, cap);
    t->buf[0] = '\0';
}

static void put(text_t *t, const char *s, apr_size_t n)
{
    if (t->len + n + 1 > t->cap) {
        apr_size_t cap = t->cap * 2;
        char *bigger;
        while (cap < t->len + n + 1) cap *= 2;
        bigger = apr_palloc(t->pool, cap);
        memcpy(bigger, t->buf, t->len);
        t->buf = bigger;
        t->cap = cap;
    }
    memcpy(t->buf + t->len, s, n);
    t->len += n;
    t->buf[t->len] = '\0';
}

/* JSON text as it is (our own literals). */
static void raw(text_t *t, const char *s)
{
    put(t, s, strlen(s));
}

/* The characters of a JSON string (NULL as ""), escaped as json-c does. */
static void esc(text_t *t, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *c = (const unsigned char *)(s ? s : ""), *run = c;
    char u[7] = "\\u00";

    for (; *c; ++c) {
        if (*c >= 0x20 && *c != '"' && *c != '\\') continue;
        put(t, (const char *)run, (apr_size_t)(c - run));
        run = c + 1;
        switch (*c) {
        case '"': raw(t, "\\\""); break;
        case '\\': raw(t, "\\\\"); break;
        case '\b': raw(t, "\\b"); break;
        case '\f': raw(t, "\\f"); break;
        case '\n': raw(t, "\\n"); break;
        case '\r': raw(t, "\\r"); break;
        case '\t': raw(t, "\\t"); break;
        default:
            u[4] = hex[*c >> 4];
            u[5] = hex[*c & 0x0f];
            put(t, u, 6);
        }
    }
    put(t, (const char *)run, (apr_size_t)(c - run));
}

static void str(text_t *t, const char *s)
{
    raw(t, "\"");
    esc(t, s);
    raw(t, "\"");
}

/* before, value as a JSON string, after. */
static void wrap(text_t *t, const char *before, const char *value, const char *after)
{
    raw(t, before);
    str(t, value);
    raw(t, after);
}

/* An integer64 as FHIR JSON has it: a string. */
static void i64_str(text_t *t, apr_int64_t v)
{
    char b[32];
    put(t, b, (apr_size_t)apr_snprintf(b, sizeof(b), "\"%" APR_INT64_T_FMT "\"", v));
}

const char *fs_notify_json_escape(apr_pool_t *p, const char *s)
{
    text_t t;
    text_init(&t, p, strlen(s ? s : "") + 16);
    esc(&t, s);
    return t.buf;
}

/* ---- cached parts --------------------------------------------------------------- */

static const char *instant(fs_notify_writer_t *w, apr_time_t at)
{
    instant_t *slot = &w->instants[(apr_uint64_t)(at / 1000) % INSTANTS];
    if (!slot->text[0] || slot->at != at) {
        slot->at = at;
        apr_cpystrn(slot->text, fs_time_instant(w->scratch, at), sizeof(slot->text));
    }
    return slot->text;
}

static const char *or_empty(const char *s)
{
    return s ? s : "";
}

static int same_change(const fs_notify_event_t *a, const fs_notify_event_t *b)
{
    return !strcmp(a->interaction, or_empty(b->interaction))
           && !strcmp(a->request_method, or_empty(b->request_method))
           && !strcmp(a->request_url, or_empty(b->request_url))
           && !strcmp(a->response_status, or_empty(b->response_status))
           && !strcmp(a->body, or_empty(b->body));
}

static change_text_t *change_new(apr_pool_t *p, const fs_notify_event_t *ev)
{
    change_text_t *c = apr_pcalloc(p, sizeof(*c));
    c->ev.resource_type = apr_pstrdup(p, or_empty(ev->resource_type));
    c->ev.resource_id = apr_pstrdup(p, or_empty(ev->resource_id));
    c->ev.version_id = apr_pstrdup(p, or_empty(ev->version_id));
    c->ev.interaction = apr_pstrdup(p, or_empty(ev->interaction));
    c->ev.request_method = apr_pstrdup(p, or_empty(ev->request_method));
    c->ev.request_url = apr_pstrdup(p, or_empty(ev->request_url));
    c->ev.response_status = apr_pstrdup(p, or_empty(ev->response_status));
    c->ev.body = apr_pstrdup(p, or_empty(ev->body));
    c->ev.number = ev->number;   /* for FS00301, which names the first event */
    return c;
}

/* The change of ev in the cache, added when new; NULL when its key is too long. */
static change_text_t *change_of(fs_notify_writer_t *w, const fs_notify_event_t *ev)
{
    const char *parts[3] = { or_empty(ev->resource_type), or_empty(ev->resource_id),
                             or_empty(ev->version_id) };
    char key[KEY_MAX];
    apr_size_t klen = 0, n;
    change_text_t *head, *c;
    int i;

    for (i = 0; i < 3; ++i) {
        n = strlen(parts[i]) + 1;
        if (klen + n > sizeof(key)) return NULL;
        memcpy(key + klen, parts[i], n);
        klen += n;
    }
    head = apr_hash_get(w->changes, key, (apr_ssize_t)klen);
    for (c = head; c; c = c->next) {
        if (same_change(&c->ev, ev)) return c;
    }
    c = change_new(w->pool, ev);
    c->next = head;
    apr_hash_set(w->changes, apr_pmemdup(w->pool, key, klen), (apr_ssize_t)klen, c);
    return c;
}

/* The focus entry after its fullUrl, with the resource when `resource` and it has one. */
static void write_tail(text_t *t, apr_pool_t *p, const fs_notify_event_t *ev, int resource)
{
    const char *method, *url, *status;
    json_object *res;

    if (resource && (res = fs_notify_event_resource(p, ev))) {
        raw(t, ",\"resource\":");
        raw(t, fs_json_str(p, res));
        json_object_put(res);
    }
    fs_notify_derive_request(p, ev, &method, &url, &status);
    wrap(t, ",\"request\":{\"method\":", method, ",\"url\":");
    wrap(t, "", url, "},\"response\":{\"status\":");
    wrap(t, "", status, "}}");
}

static void put_tail(fs_notify_writer_t *w, const fs_notify_event_t *ev, int resource)
{
    change_text_t *c = change_of(w, ev);
    text_t tail;

    if (!c) {
        write_tail(&w->out, w->scratch, ev, resource);
        return;
    }
    if (!c->tail[resource]) {
        text_init(&tail, w->pool, strlen(c->ev.body) + 256);
        write_tail(&tail, w->pool, &c->ev, resource);
        c->tail[resource] = tail.buf;
        c->tail_len[resource] = tail.len;
    }
    put(&w->out, c->tail[resource], c->tail_len[resource]);
}

/* ---- the Bundle ----------------------------------------------------------------- */

/* "Encounter/123", under the base except in the classic shape (as fs_notify). */
static void focus_reference(text_t *t, const fs_sub_t *sub, const fs_notify_event_t *ev)
{
    if (sub->shape != FS_SHAPE_CLASSIC) {
        esc(t, sub->base_url);
        raw(t, "/");
    }
    esc(t, ev->resource_type);
    raw(t, "/");
    esc(t, ev->resource_id);
}

static void sub_reference(text_t *t, const fs_sub_t *sub)
{
    if (sub->shape != FS_SHAPE_CLASSIC) esc(t, sub->base_url);
    raw(t, sub->shape != FS_SHAPE_CLASSIC ? "/Subscription/" : "Subscription/");
    esc(t, sub->id);
}

static void r4_event(fs_notify_writer_t *w, const fs_sub_t *sub, const fs_notify_event_t *ev)
{
    text_t *t = &w->out;
    raw(t, ",{\"name\":\"notification-event\",\"part\":[{\"name\":\"event-number\","
           "\"valueString\":");
    i64_str(t, ev->number);
    wrap(t, "},{\"name\":\"timestamp\",\"valueInstant\":", instant(w, ev->timestamp), "}");
    if (fs_notify_with_focus(sub)) {
        raw(t, ",{\"name\":\"focus\",\"valueReference\":{\"reference\":\"");
        focus_reference(t, sub, ev);
        raw(t, "\"}}");
    }
    raw(t, "]}");
}

/* The backport status Parameters (fs_status make_r4 and its notification events). */
static void r4_status(fs_notify_writer_t *w, const fs_sub_t *sub, const char *type,
                      const fs_notify_event_t *events, int nevents, apr_time_t now)
{
    text_t *t = &w->out;
    int i;

    /* the profile: a constant with nothing to escape */
    raw(t, "{\"resourceType\":\"Parameters\",\"meta\":{\"profile\":[\""
           FS_URL_BACKPORT_STATUS_R4 "\"]},\"parameter\":[{\"name\":\"subscription\","
           "\"valueReference\":{\"reference\":\"");
    sub_reference(t, sub);
    raw(t, "\"}}");
    if (sub->topic) wrap(t, ",{\"name\":\"topic\",\"valueCanonical\":", sub->topic, "}");
    wrap(t, ",{\"name\":\"status\",\"valueCode\":", fs_sub_effective_status(sub, now), "}");
    wrap(t, ",{\"name\":\"type\",\"valueCode\":", type,
         "},{\"name\":\"events-since-subscription-start\",\"valueString\":");
    i64_str(t, fs_notify_events_since(sub, type, events, nevents));
    raw(t, "}");
    if (sub->error && *sub->error) {
        wrap(t, ",{\"name\":\"error\",\"valueCodeableConcept\":{\"text\":", sub->error, "}}");
    }
    for (i = 0; i < nevents; ++i) r4_event(w, sub, &events[i]);
    raw(t, "]}");
}

/* The SubscriptionStatus of R5 and of the classic shape (fs_status make_r5). */
static void r5_status(fs_notify_writer_t *w, const fs_sub_t *sub, const char *type,
                      const fs_notify_event_t *events, int nevents, apr_time_t now)
{
    text_t *t = &w->out;
    int i;

    wrap(t, "{\"resourceType\":\"SubscriptionStatus\",\"status\":",
         fs_sub_effective_status(sub, now), "");
    wrap(t, ",\"type\":", type, ",\"eventsSinceSubscriptionStart\":");
    i64_str(t, fs_notify_events_since(sub, type, events, nevents));
    raw(t, ",\"subscription\":{\"reference\":\"");
    sub_reference(t, sub);
    raw(t, "\"}");
    if (sub->topic) wrap(t, ",\"topic\":", sub->topic, "");
    if (sub->error && *sub->error) wrap(t, ",\"error\":[{\"text\":", sub->error, "}]");
    for (i = 0; i < nevents; ++i) {
        raw(t, i ? ",{\"eventNumber\":" : ",\"notificationEvent\":[{\"eventNumber\":");
        i64_str(t, events[i].number);
        wrap(t, ",\"timestamp\":", instant(w, events[i].timestamp), "");
        if (fs_notify_with_focus(sub)) {
            raw(t, ",\"focus\":{\"reference\":\"");
            focus_reference(t, sub, &events[i]);
            raw(t, "\"}");
        }
        raw(t, "}");
    }
    raw(t, nevents > 0 ? "]}" : "}");
}

/* A fresh urn:uuid, as fs_status_urn_uuid makes them. */
static void put_urn_uuid(fs_notify_writer_t *w)
{
    char id[FS_ID_LEN + 1];

    if (w->random_used == UUID_BYTES) {
        if (APR_SUCCESS != apr_generate_random_bytes(w->random, sizeof(w->random))) {
            raw(&w->out, fs_status_urn_uuid(w->scratch));   /* its fallback */
            return;
        }
        w->random_used = 0;
    }
    fs_id_format_v4(id, w->random + w->random_used);
    w->random_used += 16;
    raw(&w->out, "urn:uuid:");
    raw(&w->out, id);
}

static void status_entry(fs_notify_writer_t *w, const fs_sub_t *sub, const char *type,
                         const fs_notify_event_t *events, int nevents, apr_time_t now)
{
    text_t *t = &w->out;

    raw(t, "{\"fullUrl\":\"");
    put_urn_uuid(w);
    raw(t, "\",\"resource\":");
    if (sub->shape == FS_SHAPE_BACKPORT) r4_status(w, sub, type, events, nevents, now);
    else r5_status(w, sub, type, events, nevents, now);
    if (sub->shape != FS_SHAPE_R5) {
        raw(t, ",\"request\":{\"method\":\"GET\",\"url\":\"");
        sub_reference(t, sub);
        raw(t, "/$status\"},\"response\":{\"status\":\"200\"}");
    }
    raw(t, "}");
}

static void focus_entry(fs_notify_writer_t *w, const fs_sub_t *sub,
                        const fs_notify_event_t *ev)
{
    text_t *t = &w->out;

    raw(t, ",{\"fullUrl\":\"");
    esc(t, sub->base_url);
    raw(t, "/");
    esc(t, ev->resource_type);
    raw(t, "/");
    esc(t, ev->resource_id);
    raw(t, "\"");
    put_tail(w, ev, fs_notify_with_resource(sub));
}

fs_notify_writer_t *fs_notify_writer_make(apr_pool_t *p)
{
    fs_notify_writer_t *w = apr_pcalloc(p, sizeof(*w));
    w->pool = p;
    apr_pool_create(&w->scratch, p);
    w->changes = apr_hash_make(p);
    text_init(&w->out, p, 4096);
    w->random_used = UUID_BYTES;
    return w;
}

apr_size_t fs_notify_text(fs_notify_writer_t *w, const fs_sub_t *sub, const char *type,
                          const fs_notify_event_t *events, int nevents, apr_time_t now,
                          const char **ptext)
{
    text_t *t = &w->out;
    int i;

    apr_pool_clear(w->scratch);
    t->len = 0;
    raw(t, "{\"resourceType\":\"Bundle\",\"type\":");
    raw(t, sub->shape == FS_SHAPE_R5 ? "\"subscription-notification\"" : "\"history\"");
    wrap(t, ",\"timestamp\":", instant(w, now), ",\"entry\":[");
    status_entry(w, sub, type, events, nevents, now);
    for (i = 0; i < nevents && fs_notify_with_focus(sub); ++i) {
        focus_entry(w, sub, &events[i]);
    }
    raw(t, "]}");
    *ptext = t->buf;
    return t->len;
}
