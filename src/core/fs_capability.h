/* fs_capability: what the module adds to a FHIR server's CapabilityStatement
 * (the websocket endpoint, the Subscription resource it serves, its operations
 * and, in R4, the Backport IG conformance and supported topics). */
#ifndef FS_CAPABILITY_H
#define FS_CAPABILITY_H

#include <apr_pools.h>
#include <apr_tables.h>
#include <json-c/json.h>

#include "fs_fhir.h"

typedef struct {
    fs_fhir_version_t version;        /* shapes and canonicals to publish */
    const char *websocket_url;        /* ws(s):// endpoint; NULL = not advertised */
    const char *base_url;             /* FHIR base, implementation.url of fs_cap_own */
    apr_array_header_t *topic_urls;   /* const char*: supported topic canonicals, may be NULL */
    const char *software_version;     /* software.version of fs_cap_own, may be NULL */
} fs_cap_info_t;

/* Add our capabilities to a backend's CapabilityStatement in place, keeping
 * everything else: in the rest entry with mode "server" (created if missing) the
 * capabilitystatement-websocket extension, a Subscription resource entry
 * (interactions, search parameters, operations; in R4 the backport profile and
 * one topic-canonical extension per topic), in R5 a SubscriptionTopic entry when
 * there are topics, and in R4 the backport server canonical in instantiates.
 * Entries we own are replaced, never duplicated, so calling it twice is harmless.
 * APR_EINVAL with the reason in *perr when cs is not a CapabilityStatement or
 * one of the elements we touch has the wrong JSON type. */
apr_status_t fs_cap_augment(json_object *cs, apr_pool_t *p, const fs_cap_info_t *info,
                            const char **perr);

/* A minimal CapabilityStatement of our own (for a location without a backend
 * one), already augmented. *pcs is owned by p. */
apr_status_t fs_cap_own(json_object **pcs, apr_pool_t *p, const fs_cap_info_t *info);

#endif
