/* fs_searchparam: the search parameters mod_fhirsub can match, as a static table.
 *
 * Every filter (backport-filter-criteria, R5 filterBy, classic R4 criteria) and every
 * topic queryCriteria is resolved against this table when it is parsed, so a request
 * the matcher cannot evaluate is refused up front instead of silently never matching.
 * Each entry carries what the matcher needs: the parameter type and the element
 * paths (with their FHIR data type) to read from the resource JSON. */
#ifndef FS_SEARCHPARAM_H
#define FS_SEARCHPARAM_H

#include <apr_pools.h>

/* Search parameter types (FHIR R4 SearchParamType) we support. */
typedef enum {
    FS_SP_TOKEN,
    FS_SP_REFERENCE,
    FS_SP_STRING,
    FS_SP_DATE,
    FS_SP_URI
} fs_sp_type_t;

/* FHIR data type of an element a parameter reads; tells the matcher how to compare. */
typedef enum {
    FS_SP_EL_CODE,              /* primitive code, id or string compared as a token */
    FS_SP_EL_BOOLEAN,           /* boolean, token value "true" / "false" */
    FS_SP_EL_CODING,            /* Coding {system, code} */
    FS_SP_EL_CODEABLE_CONCEPT,  /* CodeableConcept {coding[], text} */
    FS_SP_EL_IDENTIFIER,        /* Identifier {system, value} */
    FS_SP_EL_REFERENCE,         /* Reference {reference, identifier} */
    FS_SP_EL_STRING,            /* primitive string */
    FS_SP_EL_HUMAN_NAME,        /* HumanName: family, given[], prefix[], suffix[], text */
    FS_SP_EL_DATE,              /* date, dateTime or instant */
    FS_SP_EL_PERIOD,            /* Period {start, end} */
    FS_SP_EL_URI                /* uri, url or canonical */
} fs_sp_elem_t;

#define FS_SP_MAX_PATHS 4

/* One element a parameter reads. The path is dot separated from the resource root
 * ("participant.actor"); any step may be an array, whose items are all visited. */
typedef struct fs_sp_path_t {
    const char *path;
    fs_sp_elem_t elem;
} fs_sp_path_t;

typedef struct fs_sp_t {
    const char *resource_type;  /* "Resource" for _id, _lastUpdated, _profile (every type) */
    const char *name;           /* search parameter code as used in queries */
    fs_sp_type_t type;
    fs_sp_path_t paths[FS_SP_MAX_PATHS]; /* alternatives, ORed; unused slots {NULL} */
    const char *target;         /* reference only: the one type matched ("Patient"), or NULL */
} fs_sp_t;

#define FS_SP_ANY_TYPE "Resource"

/* The parameter `name` for `resource_type` (type-specific entries first, then the
 * common ones), or NULL when the type is not known or has no such parameter. */
const fs_sp_t *fs_sp_find(const char *resource_type, const char *name);

/* Non-zero when `type` has the shape of a FHIR resource type name ([A-Z][A-Za-z]+). */
int fs_sp_type_name_ok(const char *type);

/* Non-zero when `type` is a well-formed resource type name that has entries in the table. */
int fs_sp_resource_known(const char *type);

/* "Encounter" for "Encounter" and for "http://hl7.org/fhir/StructureDefinition/Encounter"
 * (the form topics and R5 filterBy may use); other strings are returned unchanged. */
const char *fs_sp_type_from_canonical(const char *s);

/* The whole table, for documentation and tests. */
const fs_sp_t *fs_sp_table(apr_size_t *pcount);

/* "code, subject, ..., _id, _lastUpdated, _profile": parameters of a type, for messages. */
const char *fs_sp_names(apr_pool_t *p, const char *resource_type);

/* "AllergyIntolerance, Appointment, ...": the resource types with entries. */
const char *fs_sp_resource_types(apr_pool_t *p);

/* "token", "reference", ... */
const char *fs_sp_type_str(fs_sp_type_t type);

/* "CodeableConcept", "Reference", ... */
const char *fs_sp_elem_str(fs_sp_elem_t elem);

/* NULL-terminated modifiers supported for a parameter type. Reference parameters
 * also take a resource type name as modifier (subject:Patient=123). */
const char *const *fs_sp_modifiers(fs_sp_type_t type);

/* NULL-terminated prefixes supported on date parameters: eq ne gt lt ge le sa eb ap. */
const char *const *fs_sp_comparators(void);

/* Non-zero when `modifier` (without ':') is supported on this parameter. */
int fs_sp_modifier_ok(const fs_sp_t *sp, const char *modifier);

/* Non-zero when `comparator` is a supported prefix and the parameter takes prefixes. */
int fs_sp_comparator_ok(const fs_sp_t *sp, const char *comparator);

/* Modifiers supported by this parameter, "':not', ':missing'" style, for messages. */
const char *fs_sp_modifiers_str(apr_pool_t *p, const fs_sp_t *sp);

#endif
