/* mod_fhirsub_ops: the Subscription operations $get-ws-binding-token, $status and
 * $events, at type and instance level. */
#ifndef MOD_FHIRSUB_OPS_H
#define MOD_FHIRSUB_OPS_H

#include "mod_fhirsub_route.h"

/* Dispatch q->op at type level (q->id NULL) or instance level. */
int fhirsub_ops_handle(fhirsub_req *q);

#endif
