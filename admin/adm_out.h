/* adm_out: the two output forms: aligned text tables for people, one JSON document
 * for scripts (--json). Everything goes to stdout; errors never do. */
#ifndef ADM_OUT_H
#define ADM_OUT_H

#include <apr_pools.h>
#include <apr_time.h>
#include <json-c/json.h>

typedef struct adm_table_t adm_table_t;

/* A table of ncols columns with these headers (copied by reference). */
adm_table_t *adm_table_make(apr_pool_t *p, int ncols, const char *const *headers);

/* Append a row of ncols strings (NULL prints as "-"). */
void adm_table_add(adm_table_t *t, const char *const *cols);

/* Print headers and rows aligned, or `empty` alone when there are no rows. */
void adm_table_print(const adm_table_t *t, const char *empty);

/* A time as a FHIR instant, or "-" for 0 (never). */
const char *adm_time_text(apr_pool_t *p, apr_time_t t);

/* A time as a JSON instant string, or JSON null for 0. */
json_object *adm_time_json(apr_pool_t *p, apr_time_t t);

/* A new JSON object owned by pool p (released with it). */
json_object *adm_json_root(apr_pool_t *p);

/* Print a JSON document, indented, on stdout. */
void adm_json_print(json_object *j);

/* The name of a subscription shape: backport, classic, r5. */
const char *adm_shape_name(int shape);

#endif
