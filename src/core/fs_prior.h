/* fs_prior: the versions before a write. Which reads the module makes before it forwards
 * a write, so that the write's changes can be matched with what they changed: the deleted
 * resource for a subscription's filters, the updated one for topics with `previous`
 * criteria, and the resources a conditional delete removes (its URL names none). Covers
 * plain writes and the entries of transaction and batch Bundles; the module does the
 * reads (GET through the same base) and hands the answers back here. */
#ifndef FS_PRIOR_H
#define FS_PRIOR_H

#include <apr_hash.h>
#include <apr_pools.h>
#include <apr_tables.h>
#include <json-c/json.h>

#include "fs_topic.h"

/* Ids of one type a Bundle's entries may need read one by one (what a plain write costs,
 * and what any server answers fastest); more are read by `_id` searches of at most
 * FS_PRIOR_IDS_PER_SEARCH ids each. */
#define FS_PRIOR_READS_PER_TYPE 10
#define FS_PRIOR_IDS_PER_SEARCH 50
/* Page size asked of a conditional write's search; a longer answer is incomplete. */
#define FS_PRIOR_SEARCH_COUNT 100

/* One read before the write. */
typedef struct fs_prior_t {
    const char *type;            /* resource type */
    const char *id;              /* read [base]/type/id; NULL for a search */
    const char *query;           /* search [base]/type?query (URI-encoded); NULL for a read */
    const char *cond;            /* a conditional write's search as written, else NULL */
    /* The answer (fs_prior_answer): */
    int complete;                /* answered, and `found` is everything there was */
    apr_array_header_t *found;   /* json_object* of `type`, as they were before the write */
} fs_prior_t;

/* The reads (fs_prior_t*, in order, none twice) a write needs, appended to a new array.
 * path is below the base with its query ("Encounter/1", "Patient?identifier=x|1", "");
 * bundle is the parsed body of a POST to the base (NULL when there is none: then a Bundle
 * needs no reads). For the write itself or each entry of a transaction/batch Bundle:
 *   - DELETE Type/id: read it (filters are tested on the deleted resource);
 *   - DELETE Type?search: search it (which resources the delete removes);
 *   - PUT/PATCH Type/id or Type?search: the same, only when a topic of `topics` has
 *     `previous` criteria for updates of Type;
 *   - creates and anything else: nothing.
 * In a Bundle, up to FS_PRIOR_READS_PER_TYPE ids of one type are read one by one, more by
 * `_id` searches. */
apr_status_t fs_prior_plan(apr_array_header_t **ppriors, apr_pool_t *p, const char *method,
                           const char *path, json_object *bundle, const fs_topics_t *topics);

/* Record the answer to prior's read: HTTP status and body (complete = 0 when it was cut
 * at the capture bound). A read answered 404/410 is complete with nothing found; a search
 * is complete when its searchset has no `next` page. Anything else leaves it incomplete. */
void fs_prior_answer(fs_prior_t *prior, apr_pool_t *p, int status, const char *body,
                     apr_size_t len, int complete);

/* Every version the answered priors found, by "Type/id" (json_object*). */
apr_hash_t *fs_prior_versions(apr_pool_t *p, const apr_array_header_t *priors);

/* The version of type/id before the write (from fs_prior_versions), or NULL. */
json_object *fs_prior_version(apr_hash_t *versions, const char *type, const char *id);

/* The prior of the conditional write "type?cond", or NULL when none was planned. */
const fs_prior_t *fs_prior_of_cond(const apr_array_header_t *priors, const char *type,
                                   const char *cond);

#endif
