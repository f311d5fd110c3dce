/* mod_fhirsub_topics: the loaded SubscriptionTopics, served read-only at
 * [base]/SubscriptionTopic so clients can discover what they may subscribe to. */
#ifndef MOD_FHIRSUB_TOPICS_H
#define MOD_FHIRSUB_TOPICS_H

#include "mod_fhirsub_route.h"

int fhirsub_topics_search(fhirsub_req *q);   /* GET [base]/SubscriptionTopic */
int fhirsub_topics_read(fhirsub_req *q);     /* GET [base]/SubscriptionTopic/id */

#endif
