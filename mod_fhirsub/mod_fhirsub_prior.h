/* mod_fhirsub_prior: the versions before a write, read before the write is forwarded
 * (fs_prior decides which): GET subrequests through the same base, so through mod_proxy
 * and the same authentication. Their answers are swallowed and never reach the client. */
#ifndef MOD_FHIRSUB_PRIOR_H
#define MOD_FHIRSUB_PRIOR_H

#include <httpd.h>
#include <apr_tables.h>
#include <json-c/json.h>

#include "mod_fhirsub_config.h"

/* The answered reads (fs_prior_t*, maybe none) the write r needs: path is below the base
 * with its query, bundle the parsed body of a POST to the base (or NULL). */
apr_array_header_t *fhirsub_prior_read(request_rec *r, const fhirsub_dir_conf *c,
                                       const char *path, json_object *bundle);

void fhirsub_prior_register_hooks(void);

#endif
