/* fs_sub: the Subscription as the product understands it, parsed from and rendered
 * to the FHIR shapes (R4 Subscriptions Backport IG, classic R4 criteria, R5). */
#ifndef FS_SUB_H
#define FS_SUB_H

#include <apr_pools.h>
#include <apr_tables.h>
#include <apr_time.h>
#include <json-c/json.h>

#include "fs_fhir.h"

struct fs_topics_t;

/* Which FHIR shape a subscription was created in; it decides the notification shape. */
typedef enum {
    FS_SHAPE_BACKPORT = 1,  /* R4 backport profile: criteria = topic canonical */
    FS_SHAPE_CLASSIC = 2,   /* R4 classic: criteria = Type?search (Medplum's clients) */
    FS_SHAPE_R5 = 3,        /* R5 Subscription with topic + filterBy */
} fs_sub_shape_t;

typedef struct fs_sub_t {
    const char *id;              /* FHIR id, also the primary key */
    const char *owner;           /* the user Apache authenticated when it was created */
    const char *status;          /* requested | active | error | off */
    const char *channel_type;    /* always "websocket" today */
    fs_sub_shape_t shape;        /* FHIR shape it was created in */
    const char *topic;           /* topic canonical; NULL for classic criteria */
    const char *criteria;        /* classic: "Type?query"; otherwise the topic url */
    const char *filters_json;    /* normalised filters, JSON array text ("[]" when none) */
    const char *content;         /* empty | id-only | full-resource */
    const char *content_type;    /* MIME type of notifications */
    apr_int64_t heartbeat_period;/* seconds, 0 = no heartbeats */
    apr_int64_t timeout;         /* seconds, 0 = unset (not applied to websockets) */
    apr_int64_t max_count;       /* events per notification, 0 = unset */
    apr_time_t end;              /* when it turns off, 0 = never */
    const char *base_url;        /* absolute FHIR base it lives under, for references */
    apr_int64_t events_since_start; /* highest event number assigned */
    apr_time_t last_delivery;    /* last successful delivery, 0 = never */
    const char *error;           /* last delivery error text, "" when none */
    apr_int64_t version_id;      /* meta.versionId, 1 on create */
    apr_time_t created;          /* creation time */
    apr_time_t updated;          /* meta.lastUpdated */
    const char *resource_json;   /* the resource as clients read it */
} fs_sub_t;

/* What a location allows and knows, the input of validation. */
typedef struct fs_sub_policy_t {
    fs_fhir_version_t version;        /* which shapes to accept */
    const struct fs_topics_t *topics; /* loaded topics (may be NULL: none) */
    unsigned allowed_content;         /* bit set of FS_CONTENT_* */
    apr_int64_t max_heartbeat;        /* largest heartbeat period accepted, seconds */
    apr_int64_t min_heartbeat;        /* smallest heartbeat period accepted, seconds */
} fs_sub_policy_t;

#define FS_CONTENT_EMPTY   0x1
#define FS_CONTENT_ID_ONLY 0x2
#define FS_CONTENT_FULL    0x4
#define FS_CONTENT_ALL     0x7

/* Bit for a content code, 0 when unknown. */
unsigned fs_sub_content_bit(const char *code);

/* A validation result: the HTTP status (400 or 422) and the OperationOutcome code. */
typedef struct fs_sub_problem_t {
    int http_status;
    const char *code;
    const char *text;
} fs_sub_problem_t;

/* Validate a Subscription body and fill *psub (id, owner, base_url, times and
 * counters are the caller's; resource_json is the body to store). A websocket
 * subscription becomes "active" at once, as the websocket flow shows; a client may
 * ask for "off". APR_EINVAL with *prob filled when the server cannot honour it. */
apr_status_t fs_sub_parse(fs_sub_t **psub, fs_sub_problem_t *prob, apr_pool_t *p,
                          json_object *body, const fs_sub_policy_t *policy,
                          apr_time_t now);

/* The resource as clients read it at `now`: the stored JSON with id, status,
 * meta.versionId and meta.lastUpdated taken from sub. */
apr_status_t fs_sub_to_json(json_object **pj, apr_pool_t *p, const fs_sub_t *sub,
                            apr_time_t now);

/* Status as clients should see it at `now` (an ended subscription reads "off"). */
const char *fs_sub_effective_status(const fs_sub_t *sub, apr_time_t now);

#endif
