/* mod_fhirsub_errors: error answers Apache produces itself under a FHIR base (401
 * from auth modules, 413, 414, 502 from mod_proxy, ...) become OperationOutcomes
 * instead of HTML pages. */
#ifndef MOD_FHIRSUB_ERRORS_H
#define MOD_FHIRSUB_ERRORS_H

void fhirsub_errors_register_hooks(void);

#endif
