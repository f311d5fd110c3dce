/* fs_match: the matching engine. Decides whether a FHIR write (create, update, delete of
 * one resource) satisfies parsed filters (fs_filter.h), triggers a SubscriptionTopic
 * (fs_topic.h) and, in the end, concerns a subscription (fs_sub.h).
 *
 * Everything here reads json-c objects and parsed structures only: no allocation from
 * pools, no I/O, no global state, so it is safe to call from any thread. The semantics
 * (token, reference, string, date and uri comparison, modifiers, date prefixes and
 * precision, topic queryCriteria, unknown versions) are documented for users in
 * docs/SEARCH-PARAMETERS.md, section "How filters are matched". */
#ifndef FS_MATCH_H
#define FS_MATCH_H

#include <apr_pools.h>
#include <apr_tables.h>
#include <json-c/json.h>

#include "fs_filter.h"
#include "fs_topic.h"
#include "fs_sub.h"

/* The interaction of a change; the same bits as resourceTrigger.supportedInteraction. */
typedef enum {
    FS_INTERACTION_CREATE = FS_TOPIC_CREATE,
    FS_INTERACTION_UPDATE = FS_TOPIC_UPDATE,
    FS_INTERACTION_DELETE = FS_TOPIC_DELETE
} fs_interaction_t;

/* One successful write as the module saw it. */
typedef struct fs_match_change_t {
    const char *resource_type;    /* "Encounter", from the request URL or the body */
    const char *id;               /* logical id, or NULL; lets `_id` filters be tested when
                                   * the body of a version is unknown (a delete) */
    fs_interaction_t interaction;
    json_object *current;         /* the resource after the write; NULL for a delete, or
                                   * when the backend returned no body */
    json_object *previous;        /* the version before the write: for an update the prior
                                   * version, for a delete the deleted resource; NULL for a
                                   * create, or when unknown (not fetched) */
} fs_match_change_t;

/* Does the resource (a JSON object) satisfy the filter? The filter's resource type must
 * be the resource's "resourceType", else no match. A value found at any element path of
 * the parameter and equal to any of the filter's values (ORed) makes a match; an absent
 * element makes no match, except for `:missing=true` and `:not` (which matches when no
 * element value matches any value, so also when the element is absent). */
int fs_match_filter(const fs_filter_t *f, json_object *resource);

/* All filters (fs_filter_t*) ANDed; NULL or empty matches everything (a JSON object). */
int fs_match_filters(const apr_array_header_t *filters, json_object *resource);

/* ---- keys: what a filter needs to find in a resource (fs_subkey.h indexes them) ----
 * A token alternative matches only an element whose code (code, Coding.code,
 * Identifier.value, "true"/"false") equals its code; a reference alternative only a
 * reference whose id equals its id. Those values are the keys: a filter with keys can
 * only match a resource that holds one of them at the parameter's paths. */
typedef void (*fs_match_key_fn)(void *baton, const char *resource_type, const char *param,
                                const char *value, apr_size_t len);

/* Calls fn with the key of every alternative of f (the filter's resource type, its
 * parameter, the value). Returns 0, without calling fn, when some alternative has no
 * key: a modifier (a reference's target type aside), a token "system|" (any code), an
 * escaped code, a reference the matcher cannot read. */
int fs_match_filter_keys(const fs_filter_t *f, fs_match_key_fn fn, void *baton);

/* Calls fn for every key the resource holds: the codes and reference ids at the paths of
 * every token and reference parameter of its resourceType (a value may come twice). */
void fs_match_resource_keys(json_object *resource, fs_match_key_fn fn, void *baton);

/* Does the change trigger the topic? True when one resourceTrigger is for the change's
 * resource type, lists its interaction, and passes its queryCriteria:
 *   - previous test: create -> resultForCreate; update, delete -> `previous` filters on
 *     change->previous, failing when that is NULL (unknown previous: the test fails);
 *   - current test: delete -> resultForDelete; create, update -> `current` filters on
 *     change->current, failing when that is NULL;
 *   - resultForCreate / resultForDelete absent: the test passes;
 *   - a test whose criteria are absent is not part of the decision; with both present,
 *     requireBoth true needs both tests to pass, false either one;
 *   - a trigger without queryCriteria matches on resource type and interaction alone. */
int fs_match_topic(const fs_topic_t *topic, const fs_match_change_t *change);

/* Whether deciding fs_match_topic for this resource type and interaction would read the
 * previous version: a trigger for the type that supports the interaction (update or
 * delete) has `previous` criteria. The module then fetches the prior version before it
 * forwards the write. Always 0 for a create. */
int fs_topic_needs_previous(const fs_topic_t *topic, const char *resource_type,
                            fs_interaction_t interaction);

/* The filters of a subscription, for fs_match_subscription: sub->filters_json read back
 * with fs_filters_from_json (for a classic subscription without stored filters, the
 * query of sub->criteria). Parse once and keep the array with the subscription. */
apr_status_t fs_match_sub_filters(apr_array_header_t **pfilters, apr_pool_t *p,
                                  const fs_sub_t *sub, const char **perr);

/* The full decision for one subscription (its status is the caller's business).
 *   - classic: the resource type of sub->criteria must be the change's;
 *   - backport / R5: `topic` must be the one sub->topic names (same url; NULL or another
 *     topic -> no match) and be triggered (fs_match_topic);
 * then the subscription's filters (from fs_match_sub_filters; NULL = none) must all
 * match the focus: change->current, or change->previous for a delete. A filter for
 * another resource type than the change's makes no match. When the focus is unknown
 * (NULL), only `_id` filters can be decided (against change->id); any other filter
 * makes no match. */
int fs_match_subscription(const fs_sub_t *sub, const fs_topic_t *topic,
                          const apr_array_header_t *sub_filters,
                          const fs_match_change_t *change);

/* Whether fs_match_subscription for a change of this type and interaction would read
 * change->previous: an update or delete the topic needs it for (fs_topic_needs_previous),
 * or a delete of a type the subscription concerns when it has filters other than `_id`. */
int fs_match_needs_previous(const fs_sub_t *sub, const fs_topic_t *topic,
                            const apr_array_header_t *sub_filters, const char *resource_type,
                            fs_interaction_t interaction);

#endif
