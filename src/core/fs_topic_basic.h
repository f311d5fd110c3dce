/* fs_topic_basic: a SubscriptionTopic (R5/R4B JSON) as the R4 `Basic` resource the
 * Subscriptions Backport IG uses for topics at FHIR R4 servers: code
 * http://hl7.org/fhir/fhir-types#SubscriptionTopic and one cross-version extension
 * (http://hl7.org/fhir/5.0/StructureDefinition/extension-SubscriptionTopic.<element>)
 * per element, backbone elements as nested extensions with relative urls. It is the
 * inverse of what fs_topic reads from a Basic topic. */
#ifndef FS_TOPIC_BASIC_H
#define FS_TOPIC_BASIC_H

#include <apr_pools.h>
#include <json-c/json.h>

/* The Basic form of topic (a SubscriptionTopic object), owned by p. Elements this
 * file does not know the FHIR type of are left out. */
json_object *fs_topic_to_basic(apr_pool_t *p, json_object *topic);

#endif
