/* mod_fhirsub_metadata: the CapabilityStatement (our own, or the backend's augmented
 * on its way back) and the OperationDefinitions of our operations. */
#ifndef MOD_FHIRSUB_METADATA_H
#define MOD_FHIRSUB_METADATA_H

#include "mod_fhirsub_route.h"

#define FHIRSUB_METADATA_FILTER "FHIRSUB_METADATA"

/* [base]/metadata: serve our own statement when no other handler will answer, else
 * add the augmenting output filter and decline. */
int fhirsub_metadata_handle(fhirsub_req *q);

/* [base]/OperationDefinition/<id> for our operations. */
int fhirsub_opdef_handle(fhirsub_req *q);

void fhirsub_metadata_register_hooks(void);

#endif
