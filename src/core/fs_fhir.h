/* fs_fhir: the FHIR versions the module speaks, the canonical URLs and codes the
 * whole project shares, and validators for small FHIR primitive values. */
#ifndef FS_FHIR_H
#define FS_FHIR_H

#include <stddef.h>

/* One per FHIR base location: R4 = 4.0.1 with the Subscriptions R5 Backport IG,
 * R5 = 5.0.0. The numeric values are stable (they may be stored or configured). */
typedef enum {
    FS_FHIR_R4 = 4,
    FS_FHIR_R5 = 5
} fs_fhir_version_t;

#define FS_FHIR_VERSION_R4 "4.0.1"
#define FS_FHIR_VERSION_R5 "5.0.0"

/* MIME types */
#define FS_MIME_FHIR_JSON "application/fhir+json"
#define FS_MIME_JSON "application/json"
#define FS_MIME_FORM "application/x-www-form-urlencoded"

/* Subscriptions R5 Backport IG (R4) */
#define FS_URL_BACKPORT_BASE "http://hl7.org/fhir/uv/subscriptions-backport/"
#define FS_URL_BACKPORT_SD FS_URL_BACKPORT_BASE "StructureDefinition/"
#define FS_URL_BACKPORT_OPDEF FS_URL_BACKPORT_BASE "OperationDefinition/"
#define FS_URL_BACKPORT_SUBSCRIPTION FS_URL_BACKPORT_SD "backport-subscription"
#define FS_URL_BACKPORT_STATUS_R4 FS_URL_BACKPORT_SD "backport-subscription-status-r4"
#define FS_URL_EXT_FILTER_CRITERIA FS_URL_BACKPORT_SD "backport-filter-criteria"
#define FS_URL_EXT_PAYLOAD_CONTENT FS_URL_BACKPORT_SD "backport-payload-content"
#define FS_URL_EXT_HEARTBEAT_PERIOD FS_URL_BACKPORT_SD "backport-heartbeat-period"
#define FS_URL_EXT_TIMEOUT FS_URL_BACKPORT_SD "backport-timeout"
#define FS_URL_EXT_MAX_COUNT FS_URL_BACKPORT_SD "backport-max-count"
#define FS_URL_EXT_CHANNEL_TYPE FS_URL_BACKPORT_SD "backport-channel-type"
/* On CapabilityStatement.rest.resource (Subscription): one per supported topic. */
#define FS_URL_EXT_CS_TOPIC_CANONICAL \
    FS_URL_BACKPORT_SD "capabilitystatement-subscriptiontopic-canonical"
/* What an R4 backport server's CapabilityStatement.instantiates. */
#define FS_URL_BACKPORT_SERVER_CS \
    FS_URL_BACKPORT_BASE "CapabilityStatement/backport-subscription-server-r4"

/* FHIR core */
#define FS_URL_FHIR_SD "http://hl7.org/fhir/StructureDefinition/"
#define FS_URL_FHIR_OPDEF "http://hl7.org/fhir/OperationDefinition/"
#define FS_URL_FHIR_SEARCHPARAM "http://hl7.org/fhir/SearchParameter/"
/* valueUri on CapabilityStatement.rest: where the websocket endpoint is. */
#define FS_URL_EXT_CS_WEBSOCKET FS_URL_FHIR_SD "capabilitystatement-websocket"
#define FS_URL_CS_CHANNEL_TYPE "http://terminology.hl7.org/CodeSystem/subscription-channel-type"
#define FS_URL_CS_NOTIFICATION_TYPE "http://hl7.org/fhir/subscription-notification-type"
#define FS_URL_VS_SUBSCRIPTION_STATUS "http://hl7.org/fhir/ValueSet/subscription-status"

/* Longest FHIR id. */
#define FS_FHIR_ID_MAX 64

/* "4.0.1" or "5.0.0"; NULL for an unknown version. */
const char *fs_fhir_version_str(fs_fhir_version_t v);

/* True for a FHIR id: [A-Za-z0-9\-\.]{1,64}. Safe to put in URLs and logs. */
int fs_fhir_id_valid(const char *s);

/* True when the n bytes at s are a resource type name: an ASCII upper-case letter, then
 * letters ("Encounter"). How a type is told from other path segments in a URL. */
int fs_fhir_type_name(const char *s, size_t n);

/* True for a Subscription.status code of that version: requested, active, error,
 * off; R5 adds entered-in-error. */
int fs_fhir_status_code_valid(fs_fhir_version_t v, const char *code);

#endif
