/* mod_fhirsub_topics: the loaded SubscriptionTopics, served read-only at
 * [base]/SubscriptionTopic so clients can discover what they may subscribe to. */
#ifndef MOD_FHIRSUB_TOPICS_H
#define MOD_FHIRSUB_TOPICS_H

#include "mod_fhirsub_route.h"

/* GET [base]/SubscriptionTopic, or (as_basic) the R4 Basic form at
 * [base]/Basic?code=SubscriptionTopic. */
int fhirsub_topics_search(fhirsub_req *q, int as_basic);
/* GET [base]/SubscriptionTopic/id, or [base]/Basic/id (as_basic). */
int fhirsub_topics_read(fhirsub_req *q, int as_basic);

/* Is id the id of a loaded topic? */
int fhirsub_topics_has_id(apr_pool_t *p, const fhirsub_dir_conf *c, const char *id);

#endif
