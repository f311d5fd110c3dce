/* fs_notify: the notification Bundles fhirsub-notifier sends over a websocket
 * (handshake, heartbeat, event-notification), in the shape the subscription was
 * created in:
 *
 *  FS_SHAPE_BACKPORT  R4 Subscriptions Backport IG: a `history` Bundle whose first
 *                     entry is the backport status `Parameters`
 *                     (backport-subscription-status-r4) with request
 *                     GET <base>/Subscription/<id>/$status and response 200.
 *  FS_SHAPE_R5        R5: a `subscription-notification` Bundle whose first entry is
 *                     a SubscriptionStatus resource.
 *  FS_SHAPE_CLASSIC   R4 classic criteria, as Medplum's client (@medplum/core
 *                     SubscriptionManager) reads them: a `history` Bundle whose
 *                     first entry is an R5-style SubscriptionStatus resource with
 *                     subscription.reference relative ("Subscription/<id>": the
 *                     client takes the id from reference.split('/')[1]) and
 *                     focus references relative ("Encounter/123"); the changed
 *                     resource is entry[1].
 *
 * One status per Bundle, real counters: a handshake or heartbeat reports the
 * subscription's events-since-start; an event-notification reports the highest
 * event number it carries (R5: "the highest number in a notification equals
 * eventsSinceSubscriptionStart"). Every entry carries request/response (bdl-3/4)
 * except in the R5 Bundle's status entry. */
#ifndef FS_NOTIFY_H
#define FS_NOTIFY_H

#include <apr_pools.h>
#include <apr_time.h>
#include <json-c/json.h>

#include "fs_status.h"
#include "fs_sub.h"

/* The wake-up contract between whoever records events (httpd's capture) and
 * fhirsub-notifier, both optional speed-ups over the notifier's polling:
 *  - PostgreSQL: SELECT pg_notify('fhirsub_event', <payload>) in (or right after)
 *    the transaction that inserted the events; NOTIFY is delivered at commit.
 *  - SQLite (one machine): a UDP datagram with the payload to the notifier's
 *    WakeListen address (default none), sent after the commit.
 * The payload names the subscriptions that got events, separated by spaces or
 * commas; an empty payload (or one too long, > 7900 bytes) means "any". */
#define FS_NOTIFY_CHANNEL "fhirsub_event"
#define FS_NOTIFY_PAYLOAD_MAX 7900

/* One event: a row of fhirsub_event joined with its fhirsub_change. */
typedef struct fs_notify_event_t {
    apr_int64_t number;          /* the subscription's event number (1, 2, ...) */
    apr_time_t timestamp;        /* when the event was recorded */
    const char *resource_type;   /* the focus: resource type ... */
    const char *resource_id;     /* ... and id */
    const char *version_id;      /* focus version, "" when unknown */
    const char *interaction;     /* create | update | delete */
    const char *request_method;  /* of the captured write; "" = from interaction */
    const char *request_url;     /* relative URL of the write; "" = from interaction */
    const char *response_status; /* "201", "200 OK"...; "" = from interaction */
    const char *body;            /* the resource as written, JSON text; "" = none */
} fs_notify_event_t;

/* A notification Bundle of `type` (FS_NOTIFY_HANDSHAKE, FS_NOTIFY_HEARTBEAT or
 * FS_NOTIFY_EVENT) for sub in its shape, with nevents events (only for
 * event-notification), owned by p. Events follow sub->content: `empty` carries
 * no focus and no entries, `id-only` focus and entries without resource,
 * `full-resource` also the resource (when the event has a body that parses as a
 * JSON object and is not a delete). */
json_object *fs_notify_bundle(apr_pool_t *p, const fs_sub_t *sub, const char *type,
                              const fs_notify_event_t *events, int nevents,
                              apr_time_t now);

/* Shorthands for fs_notify_bundle. */
json_object *fs_notify_handshake(apr_pool_t *p, const fs_sub_t *sub, apr_time_t now);
json_object *fs_notify_heartbeat(apr_pool_t *p, const fs_sub_t *sub, apr_time_t now);
json_object *fs_notify_event(apr_pool_t *p, const fs_sub_t *sub,
                             const fs_notify_event_t *events, int nevents, apr_time_t now);

/* The reference a notification of sub's shape uses for the subscription
 * (absolute "<base>/Subscription/<id>", relative for FS_SHAPE_CLASSIC). */
const char *fs_notify_sub_reference(apr_pool_t *p, const fs_sub_t *sub);

#endif
