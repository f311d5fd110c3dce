/* fs_oo: FHIR OperationOutcome documents, the one shape every error takes. */
#ifndef FS_OO_H
#define FS_OO_H

#include <apr_pools.h>
#include <json-c/json.h>

/* An OperationOutcome with one issue (severity "error"), owned by p.
 * code is an IssueType code (invalid, not-found, forbidden, security, ...). */
json_object *fs_oo_make(apr_pool_t *p, const char *code, const char *diagnostics);

/* The IssueType code that fits an HTTP error status. */
const char *fs_oo_code_for_status(int http_status);

#endif
