/* fs_filter: subscription filters, parsed and validated against the search parameter
 * table (fs_searchparam.h).
 *
 * Sources: R4 backport-filter-criteria strings ("Encounter?patient=Patient/123",
 * "patient=Patient/123", "Encounter.patient=Patient/123"), classic R4 Subscription.criteria
 * ("Observation?code=http://loinc.org|1234-5"), R5 Subscription.filterBy entries, topic
 * queryCriteria, and our own stored JSON. All of them end up as fs_filter_t, ANDed when
 * there are several. The problem texts in *perr are meant for OperationOutcome
 * diagnostics. */
#ifndef FS_FILTER_H
#define FS_FILTER_H

#include <apr_pools.h>
#include <apr_tables.h>
#include <json-c/json.h>

#include "fs_searchparam.h"

typedef struct fs_topic_t fs_topic_t;

typedef struct fs_filter_t {
    const char *resource_type;  /* "Encounter" */
    const char *param;          /* "patient" */
    const char *modifier;       /* NULL, "not", "missing", "exact", "contains", "above",
                                 * "below" or a resource type ("subject:Patient") */
    const char *comparator;     /* date parameters: "eq" (default), "ne", "gt", "lt", "ge",
                                 * "le", "sa", "eb", "ap"; NULL for other types and :missing */
    const char *value;          /* the value in FHIR search syntax without the comparator
                                 * prefix: alternatives joined by ',', literal commas as "\,"
                                 * (what R5 filterBy.value holds) */
    apr_array_header_t *values; /* const char*, >= 1, ORed: the alternatives with "\," resolved;
                                 * other escapes ("\|", "\$", "\\") are kept for the matcher */
    const fs_sp_t *sp;          /* the table entry the matcher evaluates */
} fs_filter_t;

/* Build one filter from its parts (value in FHIR search syntax, not URL-encoded; for date
 * parameters without an explicit comparator, per-value prefixes such as "ge2024" are read).
 * Validates resource type, parameter, modifier, comparator and values. */
apr_status_t fs_filter_make(fs_filter_t **pf, apr_pool_t *p, const char *resource_type,
                            const char *param, const char *modifier,
                            const char *comparator, const char *value, const char **perr);

/* Parse a filter query into fs_filter_t* pushed onto `out` (ANDed). Accepts
 * "Type?a=1&b=2", "a=1&b=2" (type = default_type), "Type.a=1&Type.b=2" and mixtures;
 * names and values are URL percent-decoded ('+' is kept as is: unencoded timezone
 * offsets are common). default_type may be NULL; then every parameter needs a type. */
apr_status_t fs_filter_parse_query(apr_array_header_t *out, apr_pool_t *p,
                                   const char *criteria, const char *default_type,
                                   const char **perr);

/* Classic R4 Subscription.criteria: "Type" or "Type?query". The type is required and
 * returned in *ptype; filters (possibly none) are pushed onto `out`. */
apr_status_t fs_filter_parse_criteria(const char **ptype, apr_array_header_t *out,
                                      apr_pool_t *p, const char *criteria,
                                      const char **perr);

/* One R5 Subscription.filterBy element {resourceType, filterParameter, comparator,
 * modifier, value}. resourceType may be a type or its StructureDefinition URL; when
 * absent default_type is used. */
apr_status_t fs_filter_from_r5(fs_filter_t **pf, apr_pool_t *p, json_object *filterBy,
                               const char *default_type, const char **perr);

/* A subscription to `topic` may use `f` only when the topic's canFilterBy declares the
 * parameter for that resource type, and lists the modifier / comparator used when it
 * restricts them. A topic without canFilterBy accepts no filter at all. Problem texts
 * are allocated from p. */
apr_status_t fs_filter_check_topic(const fs_filter_t *f, const fs_topic_t *topic,
                                   apr_pool_t *p, const char **perr);

/* fs_filter_check_topic on every fs_filter_t* of the array. */
apr_status_t fs_filters_check_topic(const apr_array_header_t *filters,
                                    const fs_topic_t *topic, apr_pool_t *p,
                                    const char **perr);

/* "Encounter?patient:Patient=123", the canonical backport-filter-criteria form;
 * values are percent-encoded where needed so that fs_filter_parse_query reads them back. */
const char *fs_filter_to_criteria(apr_pool_t *p, const fs_filter_t *f);

/* Storage form: a JSON array of R5 filterBy objects; "[]" for none or NULL. */
const char *fs_filters_to_json(apr_pool_t *p, const apr_array_header_t *filters);

/* Read the storage form back, re-validating against the current table. */
apr_status_t fs_filters_from_json(apr_array_header_t *out, apr_pool_t *p, const char *json,
                                  const char **perr);

#endif
