/* mod_fhirsub_subscription: the Subscription resource: create, read, vread, update,
 * delete and search, owned by the user who created it. */
#ifndef MOD_FHIRSUB_SUBSCRIPTION_H
#define MOD_FHIRSUB_SUBSCRIPTION_H

#include "mod_fhirsub_route.h"

int fhirsub_sub_type(fhirsub_req *q);      /* POST create, GET/POST _search */
int fhirsub_sub_instance(fhirsub_req *q);  /* GET read, PUT update, DELETE */
int fhirsub_sub_vread(fhirsub_req *q);     /* GET _history/vid */

/* Load a subscription the caller owns; answers 404 (also for other users' ids, which
 * must not be told apart from unknown ones) and returns NULL otherwise. */
fs_sub_t *fhirsub_sub_load_owned(fhirsub_req *q, fs_store_t *store, const char *id,
                                 int *pdone);

/* The same for a subscription already read (sub NULL: absent) with outcome rv: sub, or
 * NULL after answering 404 (absent or not the caller's) or 503 (rv an error). */
fs_sub_t *fhirsub_sub_owned(fhirsub_req *q, const char *id, fs_sub_t *sub, apr_status_t rv,
                            int *pdone);

/* Is sub there for this request: the caller's own, and of this FHIR base? */
int fhirsub_sub_visible(const fhirsub_req *q, const fs_sub_t *sub);

/* The policy a location applies to subscriptions. */
void fhirsub_sub_policy(const fhirsub_req *q, fs_sub_policy_t *policy);

#endif
