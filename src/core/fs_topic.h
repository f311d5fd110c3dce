/* fs_topic: SubscriptionTopic definitions, loaded from JSON files at startup.
 *
 * Accepted shapes: the R5 / R4B SubscriptionTopic resource and the R4 cross-version
 * Basic resource of the Backport IG (code http://hl7.org/fhir/fhir-types#SubscriptionTopic).
 * Everything the matching engine will evaluate is checked at load time: queryCriteria are
 * parsed with fs_filter, canFilterBy parameters must be in the search parameter table.
 * A topic that could only be evaluated through FHIRPath is refused. */
#ifndef FS_TOPIC_H
#define FS_TOPIC_H

#include <apr_pools.h>
#include <apr_tables.h>
#include <json-c/json.h>

#include "fs_filter.h"

/* resourceTrigger.supportedInteraction bits */
#define FS_TOPIC_CREATE 0x01
#define FS_TOPIC_UPDATE 0x02
#define FS_TOPIC_DELETE 0x04
#define FS_TOPIC_ALL    (FS_TOPIC_CREATE | FS_TOPIC_UPDATE | FS_TOPIC_DELETE)

/* queryCriteria.resultForCreate / resultForDelete: the outcome of the previous (create)
 * or current (delete) test when that version does not exist. */
typedef enum {
    FS_TOPIC_RESULT_UNSET = 0,  /* absent: the spec gives no default, the engine decides */
    FS_TOPIC_TEST_PASSES,
    FS_TOPIC_TEST_FAILS
} fs_topic_result_t;

typedef struct fs_topic_trigger_t {
    const char *resource_type;      /* "Encounter", also when written as a StructureDefinition URL */
    int interactions;               /* FS_TOPIC_* bits; FS_TOPIC_ALL when absent */
    const char *previous_text;      /* queryCriteria.previous as written, or NULL */
    apr_array_header_t *previous;   /* fs_filter_t*, ANDed, tested on the prior version; or NULL */
    const char *current_text;       /* queryCriteria.current as written, or NULL */
    apr_array_header_t *current;    /* fs_filter_t*, ANDed, tested on the new version; or NULL */
    fs_topic_result_t result_for_create;
    fs_topic_result_t result_for_delete;
    int require_both;               /* both tests must pass (else either one) */
    const char *fhirpath;           /* fhirPathCriteria, kept for display only, never evaluated */
} fs_topic_trigger_t;

typedef struct fs_topic_can_filter_t {
    const char *resource_type;      /* "Encounter" */
    const char *param;              /* "patient" */
    const fs_sp_t *sp;              /* its entry in the search parameter table */
    apr_array_header_t *comparators; /* const char*; empty = every comparator we support */
    apr_array_header_t *modifiers;  /* const char*; empty = every modifier we support. R4B
                                     * topics list comparators here too, and "=" for none */
} fs_topic_can_filter_t;

typedef struct fs_topic_shape_t {
    const char *resource_type;
    apr_array_header_t *include;     /* const char*, stored only */
    apr_array_header_t *rev_include; /* const char*, stored only */
} fs_topic_shape_t;

struct fs_topic_t {
    const char *url;                /* canonical URL, required, unique in a registry */
    const char *version;            /* or NULL */
    const char *title;              /* or NULL */
    const char *status;             /* draft | active | retired | unknown, or NULL */
    const char *source;             /* file it was loaded from, or NULL */
    int basic;                      /* loaded from an R4 Basic resource */
    apr_array_header_t *triggers;   /* fs_topic_trigger_t*, >= 1 */
    apr_array_header_t *can_filter_by; /* fs_topic_can_filter_t*, may be empty */
    apr_array_header_t *shapes;     /* fs_topic_shape_t*, may be empty */
    const char *json;               /* the resource as loaded, for serving it back */
};

/* Whether one of the topic's resourceTriggers is for this resource type. */
int fs_topic_triggers_on(const fs_topic_t *topic, const char *resource_type);

/* Build a topic from a parsed resource. `source` (a file name or NULL) prefixes the
 * problem texts, which also name the offending field ("resourceTrigger[0].queryCriteria.current"). */
apr_status_t fs_topic_from_json(fs_topic_t **ptopic, apr_pool_t *p, json_object *j,
                                const char *source, const char **perr);

/* Parse JSON text (strictly) and build the topic. */
apr_status_t fs_topic_parse(fs_topic_t **ptopic, apr_pool_t *p, const char *text,
                            apr_size_t len, const char *source, const char **perr);

/* Read and parse one file. */
apr_status_t fs_topic_load_file(fs_topic_t **ptopic, apr_pool_t *p, const char *path,
                                const char **perr);

/* The resource type shared by all triggers, or NULL when there are several: the type
 * a filter without one ("patient=Patient/1") applies to. */
const char *fs_topic_default_type(const fs_topic_t *topic);

/* The canFilterBy entry for this resource type and parameter, or NULL. */
const fs_topic_can_filter_t *fs_topic_can_filter(const fs_topic_t *topic,
                                                 const char *resource_type,
                                                 const char *param);

/* "patient, subject, status": the canFilterBy parameters for a type, for messages. */
const char *fs_topic_filter_names(apr_pool_t *p, const fs_topic_t *topic,
                                  const char *resource_type);

/* The registry of topics a server offers. */
typedef struct fs_topics_t fs_topics_t;

apr_status_t fs_topics_create(fs_topics_t **ptopics, apr_pool_t *p);

/* Add a topic that lives at least as long as the registry; APR_EEXIST on a duplicate url. */
apr_status_t fs_topics_add(fs_topics_t *topics, const fs_topic_t *topic, const char **perr);

/* Load one file into the registry's pool and add it. */
apr_status_t fs_topics_load_file(fs_topics_t *topics, const char *path, const char **perr);

/* Load every *.json file of a directory, in name order; stops at the first problem. */
apr_status_t fs_topics_load_dir(fs_topics_t *topics, const char *dir, const char **perr);

/* By canonical URL; "url|version" matches a topic with that version. NULL if unknown. */
const fs_topic_t *fs_topics_get(const fs_topics_t *topics, const char *url);

/* Iteration in the order topics were added. */
int fs_topics_count(const fs_topics_t *topics);
const fs_topic_t *fs_topics_at(const fs_topics_t *topics, int i);

#endif
