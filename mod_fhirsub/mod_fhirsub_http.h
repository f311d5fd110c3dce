/* mod_fhirsub_http: the HTTP side of every endpoint: reading a bounded JSON body,
 * answering with FHIR JSON, and answering every error with an OperationOutcome. */
#ifndef MOD_FHIRSUB_HTTP_H
#define MOD_FHIRSUB_HTTP_H

#include <httpd.h>
#include <json-c/json.h>

#include "fs_params.h"
#include "mod_fhirsub_config.h"

/* Send json with status (200, 201, ...) as application/fhir+json; returns OK. */
int fhirsub_send_json(request_rec *r, int status, json_object *j);

/* Send an OperationOutcome with one error issue; returns OK (the status is in r). */
int fhirsub_send_error(request_rec *r, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Read the request body (at most the configured size) and parse it strictly.
 * On failure the error answer has been sent and *pdone is the handler's result. */
apr_status_t fhirsub_read_json(request_rec *r, const fhirsub_dir_conf *c, json_object **pj,
                               int *pdone);

/* Check _format / Accept: only JSON is served. Sends 406 and returns non-zero when the
 * client wants something else. */
int fhirsub_reject_format(request_rec *r);

/* Operation input from the query string, plus a Parameters body for POST.
 * On failure the error answer has been sent and *pdone is the handler's result. */
apr_status_t fhirsub_read_params(request_rec *r, const fhirsub_dir_conf *c,
                                 fs_params_t **pp, int *pdone);

/* The authenticated principal, or the anonymous user when allowed; NULL (401 sent)
 * otherwise. */
const char *fhirsub_principal(request_rec *r, const fhirsub_dir_conf *c, int *pdone);

/* The absolute FHIR base URL of this location (FhirSubServerBase or from r). */
const char *fhirsub_base_url(request_rec *r, const fhirsub_dir_conf *c);

#endif
