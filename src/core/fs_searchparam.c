/* The supported search parameters. Names, types and element paths follow the FHIR R4
 * search parameter definitions; where R5 renamed an element, the R5 path is listed as
 * an extra alternative. Keep docs/SEARCH-PARAMETERS.md in sync (a unit test checks). */
#include <string.h>
#include <apr_strings.h>

#include "fs_searchparam.h"

#define EL(p, e) { .path = (p), .elem = FS_SP_EL_##e }
#define SP(rt, n, t, tgt, ...) \
    { .resource_type = (rt), .name = (n), .type = FS_SP_##t, .target = (tgt), \
      .paths = { __VA_ARGS__ } }

/* Grouped by resource type; the common parameters come first. */
static const fs_sp_t SP_TABLE[] = {
    SP(FS_SP_ANY_TYPE, "_id", TOKEN, NULL, EL("id", CODE)),
    SP(FS_SP_ANY_TYPE, "_lastUpdated", DATE, NULL, EL("meta.lastUpdated", DATE)),
    SP(FS_SP_ANY_TYPE, "_profile", URI, NULL, EL("meta.profile", URI)),

    SP("AllergyIntolerance", "asserter", REFERENCE, NULL, EL("asserter", REFERENCE)),
    SP("AllergyIntolerance", "category", TOKEN, NULL, EL("category", CODE)),
    SP("AllergyIntolerance", "clinical-status", TOKEN, NULL, EL("clinicalStatus", CODEABLE_CONCEPT)),
    SP("AllergyIntolerance", "code", TOKEN, NULL,
       EL("code", CODEABLE_CONCEPT), EL("reaction.substance", CODEABLE_CONCEPT)),
    SP("AllergyIntolerance", "criticality", TOKEN, NULL, EL("criticality", CODE)),
    SP("AllergyIntolerance", "date", DATE, NULL, EL("recordedDate", DATE)),
    SP("AllergyIntolerance", "identifier", TOKEN, NULL, EL("identifier", IDENTIFIER)),
    SP("AllergyIntolerance", "onset", DATE, NULL, EL("reaction.onset", DATE)),
    SP("AllergyIntolerance", "patient", REFERENCE, "Patient", EL("patient", REFERENCE)),
    SP("AllergyIntolerance", "recorder", REFERENCE, NULL, EL("recorder", REFERENCE)),
    SP("AllergyIntolerance", "type", TOKEN, NULL, EL("type", CODE)),
    SP("AllergyIntolerance", "verification-status", TOKEN, NULL,
       EL("verificationStatus", CODEABLE_CONCEPT)),

    SP("Appointment", "actor", REFERENCE, NULL, EL("participant.actor", REFERENCE)),
    SP("Appointment", "appointment-type", TOKEN, NULL, EL("appointmentType", CODEABLE_CONCEPT)),
    SP("Appointment", "based-on", REFERENCE, NULL, EL("basedOn", REFERENCE)),
    SP("Appointment", "date", DATE, NULL, EL("start", DATE)),
    SP("Appointment", "identifier", TOKEN, NULL, EL("identifier", IDENTIFIER)),
    SP("Appointment", "location", REFERENCE, "Location", EL("participant.actor", REFERENCE)),
    SP("Appointment", "part-status", TOKEN, NULL, EL("participant.status", CODE)),
    SP("Appointment", "patient", REFERENCE, "Patient", EL("participant.actor", REFERENCE)),
    SP("Appointment", "practitioner", REFERENCE, "Practitioner",
       EL("participant.actor", REFERENCE)),
    SP("Appointment", "reason-code", TOKEN, NULL, EL("reasonCode", CODEABLE_CONCEPT)),
    SP("Appointment", "service-type", TOKEN, NULL, EL("serviceType", CODEABLE_CONCEPT)),
    SP("Appointment", "slot", REFERENCE, NULL, EL("slot", REFERENCE)),
    SP("Appointment", "specialty", TOKEN, NULL, EL("specialty", CODEABLE_CONCEPT)),
    SP("Appointment", "status", TOKEN, NULL, EL("status", CODE)),

    SP("Communication", "based-on", REFERENCE, NULL, EL("basedOn", REFERENCE)),
    SP("Communication", "category", TOKEN, NULL, EL("category", CODEABLE_CONCEPT)),
    SP("Communication", "encounter", REFERENCE, NULL, EL("encounter", REFERENCE)),
    SP("Communication", "identifier", TOKEN, NULL, EL("identifier", IDENTIFIER)),
    SP("Communication", "medium", TOKEN, NULL, EL("medium", CODEABLE_CONCEPT)),
    SP("Communication", "part-of", REFERENCE, NULL, EL("partOf", REFERENCE)),
    SP("Communication", "patient", REFERENCE, "Patient", EL("subject", REFERENCE)),
    SP("Communication", "received", DATE, NULL, EL("received", DATE)),
    SP("Communication", "recipient", REFERENCE, NULL, EL("recipient", REFERENCE)),
    SP("Communication", "sender", REFERENCE, NULL, EL("sender", REFERENCE)),
    SP("Communication", "sent", DATE, NULL, EL("sent", DATE)),
    SP("Communication", "status", TOKEN, NULL, EL("status", CODE)),
    SP("Communication", "subject", REFERENCE, NULL, EL("subject", REFERENCE)),

    SP("Condition", "abatement-date", DATE, NULL,
       EL("abatementDateTime", DATE), EL("abatementPeriod", PERIOD)),
    SP("Condition", "asserter", REFERENCE, NULL, EL("asserter", REFERENCE)),
    SP("Condition", "category", TOKEN, NULL, EL("category", CODEABLE_CONCEPT)),
    SP("Condition", "clinical-status", TOKEN, NULL, EL("clinicalStatus", CODEABLE_CONCEPT)),
    SP("Condition", "code", TOKEN, NULL, EL("code", CODEABLE_CONCEPT)),
    SP("Condition", "encounter", REFERENCE, NULL, EL("encounter", REFERENCE)),
    SP("Condition", "identifier", TOKEN, NULL, EL("identifier", IDENTIFIER)),
    SP("Condition", "onset-date", DATE, NULL,
       EL("onsetDateTime", DATE), EL("onsetPeriod", PERIOD)),
    SP("Condition", "patient", REFERENCE, "Patient", EL("subject", REFERENCE)),
    SP("Condition", "recorded-date", DATE, NULL, EL("recordedDate", DATE)),
    SP("Condition", "severity", TOKEN, NULL, EL("severity", CODEABLE_CONCEPT)),
    SP("Condition", "subject", REFERENCE, NULL, EL("subject", REFERENCE)),
    SP("Condition", "verification-status", TOKEN, NULL,
       EL("verificationStatus", CODEABLE_CONCEPT)),

    SP("DiagnosticReport", "based-on", REFERENCE, NULL, EL("basedOn", REFERENCE)),
    SP("DiagnosticReport", "category", TOKEN, NULL, EL("category", CODEABLE_CONCEPT)),
    SP("DiagnosticReport", "code", TOKEN, NULL, EL("code", CODEABLE_CONCEPT)),
    SP("DiagnosticReport", "conclusion", TOKEN, NULL, EL("conclusionCode", CODEABLE_CONCEPT)),
    SP("DiagnosticReport", "date", DATE, NULL,
       EL("effectiveDateTime", DATE), EL("effectivePeriod", PERIOD)),
    SP("DiagnosticReport", "encounter", REFERENCE, NULL, EL("encounter", REFERENCE)),
    SP("DiagnosticReport", "identifier", TOKEN, NULL, EL("identifier", IDENTIFIER)),
    SP("DiagnosticReport", "issued", DATE, NULL, EL("issued", DATE)),
    SP("DiagnosticReport", "patient", REFERENCE, "Patient", EL("subject", REFERENCE)),
    SP("DiagnosticReport", "performer", REFERENCE, NULL, EL("performer", REFERENCE)),
    SP("DiagnosticReport", "result", REFERENCE, NULL, EL("result", REFERENCE)),
    SP("DiagnosticReport", "results-interpreter", REFERENCE, NULL,
       EL("resultsInterpreter", REFERENCE)),
    SP("DiagnosticReport", "specimen", REFERENCE, NULL, EL("specimen", REFERENCE)),
    SP("DiagnosticReport", "status", TOKEN, NULL, EL("status", CODE)),
    SP("DiagnosticReport", "subject", REFERENCE, NULL, EL("subject", REFERENCE)),

    SP("DocumentReference", "authenticator", REFERENCE, NULL, EL("authenticator", REFERENCE)),
    SP("DocumentReference", "author", REFERENCE, NULL, EL("author", REFERENCE)),
    SP("DocumentReference", "category", TOKEN, NULL, EL("category", CODEABLE_CONCEPT)),
    SP("DocumentReference", "contenttype", TOKEN, NULL,
       EL("content.attachment.contentType", CODE)),
    SP("DocumentReference", "custodian", REFERENCE, NULL, EL("custodian", REFERENCE)),
    SP("DocumentReference", "date", DATE, NULL, EL("date", DATE)),
    SP("DocumentReference", "encounter", REFERENCE, NULL, EL("context.encounter", REFERENCE)),
    SP("DocumentReference", "event", TOKEN, NULL, EL("context.event", CODEABLE_CONCEPT)),
    SP("DocumentReference", "facility", TOKEN, NULL,
       EL("context.facilityType", CODEABLE_CONCEPT)),
    SP("DocumentReference", "format", TOKEN, NULL, EL("content.format", CODING)),
    SP("DocumentReference", "identifier", TOKEN, NULL,
       EL("masterIdentifier", IDENTIFIER), EL("identifier", IDENTIFIER)),
    SP("DocumentReference", "patient", REFERENCE, "Patient", EL("subject", REFERENCE)),
    SP("DocumentReference", "period", DATE, NULL, EL("context.period", PERIOD)),
    SP("DocumentReference", "related", REFERENCE, NULL, EL("context.related", REFERENCE)),
    SP("DocumentReference", "relatesto", REFERENCE, NULL, EL("relatesTo.target", REFERENCE)),
    SP("DocumentReference", "setting", TOKEN, NULL,
       EL("context.practiceSetting", CODEABLE_CONCEPT)),
    SP("DocumentReference", "status", TOKEN, NULL, EL("status", CODE)),
    SP("DocumentReference", "subject", REFERENCE, NULL, EL("subject", REFERENCE)),
    SP("DocumentReference", "type", TOKEN, NULL, EL("type", CODEABLE_CONCEPT)),

    SP("Encounter", "account", REFERENCE, NULL, EL("account", REFERENCE)),
    SP("Encounter", "based-on", REFERENCE, NULL, EL("basedOn", REFERENCE)),
    /* R4 Coding; R5 made it CodeableConcept[]: the matcher should accept both shapes */
    SP("Encounter", "class", TOKEN, NULL, EL("class", CODING)),
    SP("Encounter", "date", DATE, NULL, EL("period", PERIOD), EL("actualPeriod", PERIOD)),
    SP("Encounter", "diagnosis", REFERENCE, NULL, EL("diagnosis.condition", REFERENCE)),
    SP("Encounter", "episode-of-care", REFERENCE, NULL, EL("episodeOfCare", REFERENCE)),
    SP("Encounter", "identifier", TOKEN, NULL, EL("identifier", IDENTIFIER)),
    SP("Encounter", "location", REFERENCE, NULL, EL("location.location", REFERENCE)),
    SP("Encounter", "part-of", REFERENCE, NULL, EL("partOf", REFERENCE)),
    SP("Encounter", "participant", REFERENCE, NULL,
       EL("participant.individual", REFERENCE), EL("participant.actor", REFERENCE)),
    SP("Encounter", "participant-type", TOKEN, NULL, EL("participant.type", CODEABLE_CONCEPT)),
    SP("Encounter", "patient", REFERENCE, "Patient", EL("subject", REFERENCE)),
    SP("Encounter", "practitioner", REFERENCE, "Practitioner",
       EL("participant.individual", REFERENCE), EL("participant.actor", REFERENCE)),
    SP("Encounter", "reason-code", TOKEN, NULL, EL("reasonCode", CODEABLE_CONCEPT)),
    SP("Encounter", "reason-reference", REFERENCE, NULL, EL("reasonReference", REFERENCE)),
    SP("Encounter", "service-provider", REFERENCE, NULL, EL("serviceProvider", REFERENCE)),
    SP("Encounter", "status", TOKEN, NULL, EL("status", CODE)),
    SP("Encounter", "subject", REFERENCE, NULL, EL("subject", REFERENCE)),
    SP("Encounter", "type", TOKEN, NULL, EL("type", CODEABLE_CONCEPT)),

    SP("Immunization", "date", DATE, NULL, EL("occurrenceDateTime", DATE)),
    SP("Immunization", "identifier", TOKEN, NULL, EL("identifier", IDENTIFIER)),
    SP("Immunization", "location", REFERENCE, NULL, EL("location", REFERENCE)),
    SP("Immunization", "lot-number", STRING, NULL, EL("lotNumber", STRING)),
    SP("Immunization", "manufacturer", REFERENCE, NULL, EL("manufacturer", REFERENCE)),
    SP("Immunization", "patient", REFERENCE, "Patient", EL("patient", REFERENCE)),
    SP("Immunization", "performer", REFERENCE, NULL, EL("performer.actor", REFERENCE)),
    SP("Immunization", "reaction", REFERENCE, NULL, EL("reaction.detail", REFERENCE)),
    SP("Immunization", "reaction-date", DATE, NULL, EL("reaction.date", DATE)),
    SP("Immunization", "reason-code", TOKEN, NULL, EL("reasonCode", CODEABLE_CONCEPT)),
    SP("Immunization", "status", TOKEN, NULL, EL("status", CODE)),
    SP("Immunization", "status-reason", TOKEN, NULL, EL("statusReason", CODEABLE_CONCEPT)),
    SP("Immunization", "target-disease", TOKEN, NULL,
       EL("protocolApplied.targetDisease", CODEABLE_CONCEPT)),
    SP("Immunization", "vaccine-code", TOKEN, NULL, EL("vaccineCode", CODEABLE_CONCEPT)),

    SP("MedicationRequest", "authoredon", DATE, NULL, EL("authoredOn", DATE)),
    SP("MedicationRequest", "category", TOKEN, NULL, EL("category", CODEABLE_CONCEPT)),
    SP("MedicationRequest", "code", TOKEN, NULL,
       EL("medicationCodeableConcept", CODEABLE_CONCEPT)),
    SP("MedicationRequest", "encounter", REFERENCE, NULL, EL("encounter", REFERENCE)),
    SP("MedicationRequest", "identifier", TOKEN, NULL, EL("identifier", IDENTIFIER)),
    SP("MedicationRequest", "intended-dispenser", REFERENCE, NULL,
       EL("dispenseRequest.performer", REFERENCE)),
    SP("MedicationRequest", "intent", TOKEN, NULL, EL("intent", CODE)),
    SP("MedicationRequest", "medication", REFERENCE, NULL,
       EL("medicationReference", REFERENCE)),
    SP("MedicationRequest", "patient", REFERENCE, "Patient", EL("subject", REFERENCE)),
    SP("MedicationRequest", "priority", TOKEN, NULL, EL("priority", CODE)),
    SP("MedicationRequest", "requester", REFERENCE, NULL, EL("requester", REFERENCE)),
    SP("MedicationRequest", "status", TOKEN, NULL, EL("status", CODE)),
    SP("MedicationRequest", "subject", REFERENCE, NULL, EL("subject", REFERENCE)),

    SP("Observation", "based-on", REFERENCE, NULL, EL("basedOn", REFERENCE)),
    SP("Observation", "category", TOKEN, NULL, EL("category", CODEABLE_CONCEPT)),
    SP("Observation", "code", TOKEN, NULL, EL("code", CODEABLE_CONCEPT)),
    SP("Observation", "combo-code", TOKEN, NULL,
       EL("code", CODEABLE_CONCEPT), EL("component.code", CODEABLE_CONCEPT)),
    SP("Observation", "component-code", TOKEN, NULL, EL("component.code", CODEABLE_CONCEPT)),
    SP("Observation", "data-absent-reason", TOKEN, NULL,
       EL("dataAbsentReason", CODEABLE_CONCEPT)),
    SP("Observation", "date", DATE, NULL, EL("effectiveDateTime", DATE),
       EL("effectivePeriod", PERIOD), EL("effectiveInstant", DATE)),
    SP("Observation", "derived-from", REFERENCE, NULL, EL("derivedFrom", REFERENCE)),
    SP("Observation", "device", REFERENCE, NULL, EL("device", REFERENCE)),
    SP("Observation", "encounter", REFERENCE, NULL, EL("encounter", REFERENCE)),
    SP("Observation", "focus", REFERENCE, NULL, EL("focus", REFERENCE)),
    SP("Observation", "has-member", REFERENCE, NULL, EL("hasMember", REFERENCE)),
    SP("Observation", "identifier", TOKEN, NULL, EL("identifier", IDENTIFIER)),
    SP("Observation", "method", TOKEN, NULL, EL("method", CODEABLE_CONCEPT)),
    SP("Observation", "part-of", REFERENCE, NULL, EL("partOf", REFERENCE)),
    SP("Observation", "patient", REFERENCE, "Patient", EL("subject", REFERENCE)),
    SP("Observation", "performer", REFERENCE, NULL, EL("performer", REFERENCE)),
    SP("Observation", "specimen", REFERENCE, NULL, EL("specimen", REFERENCE)),
    SP("Observation", "status", TOKEN, NULL, EL("status", CODE)),
    SP("Observation", "subject", REFERENCE, NULL, EL("subject", REFERENCE)),
    SP("Observation", "value-concept", TOKEN, NULL,
       EL("valueCodeableConcept", CODEABLE_CONCEPT)),
    SP("Observation", "value-date", DATE, NULL,
       EL("valueDateTime", DATE), EL("valuePeriod", PERIOD)),
    SP("Observation", "value-string", STRING, NULL, EL("valueString", STRING)),

    SP("Patient", "active", TOKEN, NULL, EL("active", BOOLEAN)),
    SP("Patient", "address-city", STRING, NULL, EL("address.city", STRING)),
    SP("Patient", "address-country", STRING, NULL, EL("address.country", STRING)),
    SP("Patient", "address-postalcode", STRING, NULL, EL("address.postalCode", STRING)),
    SP("Patient", "address-state", STRING, NULL, EL("address.state", STRING)),
    SP("Patient", "birthdate", DATE, NULL, EL("birthDate", DATE)),
    SP("Patient", "death-date", DATE, NULL, EL("deceasedDateTime", DATE)),
    SP("Patient", "family", STRING, NULL, EL("name.family", STRING)),
    SP("Patient", "gender", TOKEN, NULL, EL("gender", CODE)),
    SP("Patient", "general-practitioner", REFERENCE, NULL,
       EL("generalPractitioner", REFERENCE)),
    SP("Patient", "given", STRING, NULL, EL("name.given", STRING)),
    SP("Patient", "identifier", TOKEN, NULL, EL("identifier", IDENTIFIER)),
    SP("Patient", "language", TOKEN, NULL, EL("communication.language", CODEABLE_CONCEPT)),
    SP("Patient", "link", REFERENCE, NULL, EL("link.other", REFERENCE)),
    SP("Patient", "name", STRING, NULL, EL("name", HUMAN_NAME)),
    SP("Patient", "organization", REFERENCE, NULL, EL("managingOrganization", REFERENCE)),

    SP("Procedure", "based-on", REFERENCE, NULL, EL("basedOn", REFERENCE)),
    SP("Procedure", "category", TOKEN, NULL, EL("category", CODEABLE_CONCEPT)),
    SP("Procedure", "code", TOKEN, NULL, EL("code", CODEABLE_CONCEPT)),
    SP("Procedure", "date", DATE, NULL,
       EL("performedDateTime", DATE), EL("performedPeriod", PERIOD)),
    SP("Procedure", "encounter", REFERENCE, NULL, EL("encounter", REFERENCE)),
    SP("Procedure", "identifier", TOKEN, NULL, EL("identifier", IDENTIFIER)),
    SP("Procedure", "location", REFERENCE, NULL, EL("location", REFERENCE)),
    SP("Procedure", "part-of", REFERENCE, NULL, EL("partOf", REFERENCE)),
    SP("Procedure", "patient", REFERENCE, "Patient", EL("subject", REFERENCE)),
    SP("Procedure", "performer", REFERENCE, NULL, EL("performer.actor", REFERENCE)),
    SP("Procedure", "reason-code", TOKEN, NULL, EL("reasonCode", CODEABLE_CONCEPT)),
    SP("Procedure", "reason-reference", REFERENCE, NULL, EL("reasonReference", REFERENCE)),
    SP("Procedure", "status", TOKEN, NULL, EL("status", CODE)),
    SP("Procedure", "subject", REFERENCE, NULL, EL("subject", REFERENCE)),

    SP("ServiceRequest", "authored", DATE, NULL, EL("authoredOn", DATE)),
    SP("ServiceRequest", "based-on", REFERENCE, NULL, EL("basedOn", REFERENCE)),
    SP("ServiceRequest", "body-site", TOKEN, NULL, EL("bodySite", CODEABLE_CONCEPT)),
    SP("ServiceRequest", "category", TOKEN, NULL, EL("category", CODEABLE_CONCEPT)),
    SP("ServiceRequest", "code", TOKEN, NULL, EL("code", CODEABLE_CONCEPT)),
    SP("ServiceRequest", "encounter", REFERENCE, NULL, EL("encounter", REFERENCE)),
    SP("ServiceRequest", "identifier", TOKEN, NULL, EL("identifier", IDENTIFIER)),
    SP("ServiceRequest", "intent", TOKEN, NULL, EL("intent", CODE)),
    SP("ServiceRequest", "occurrence", DATE, NULL,
       EL("occurrenceDateTime", DATE), EL("occurrencePeriod", PERIOD)),
    SP("ServiceRequest", "patient", REFERENCE, "Patient", EL("subject", REFERENCE)),
    SP("ServiceRequest", "performer", REFERENCE, NULL, EL("performer", REFERENCE)),
    SP("ServiceRequest", "performer-type", TOKEN, NULL, EL("performerType", CODEABLE_CONCEPT)),
    SP("ServiceRequest", "priority", TOKEN, NULL, EL("priority", CODE)),
    SP("ServiceRequest", "replaces", REFERENCE, NULL, EL("replaces", REFERENCE)),
    SP("ServiceRequest", "requester", REFERENCE, NULL, EL("requester", REFERENCE)),
    SP("ServiceRequest", "requisition", TOKEN, NULL, EL("requisition", IDENTIFIER)),
    SP("ServiceRequest", "specimen", REFERENCE, NULL, EL("specimen", REFERENCE)),
    SP("ServiceRequest", "status", TOKEN, NULL, EL("status", CODE)),
    SP("ServiceRequest", "subject", REFERENCE, NULL, EL("subject", REFERENCE)),

    SP("Task", "authored-on", DATE, NULL, EL("authoredOn", DATE)),
    SP("Task", "based-on", REFERENCE, NULL, EL("basedOn", REFERENCE)),
    SP("Task", "business-status", TOKEN, NULL, EL("businessStatus", CODEABLE_CONCEPT)),
    SP("Task", "code", TOKEN, NULL, EL("code", CODEABLE_CONCEPT)),
    SP("Task", "encounter", REFERENCE, NULL, EL("encounter", REFERENCE)),
    SP("Task", "focus", REFERENCE, NULL, EL("focus", REFERENCE)),
    SP("Task", "group-identifier", TOKEN, NULL, EL("groupIdentifier", IDENTIFIER)),
    SP("Task", "identifier", TOKEN, NULL, EL("identifier", IDENTIFIER)),
    SP("Task", "intent", TOKEN, NULL, EL("intent", CODE)),
    SP("Task", "modified", DATE, NULL, EL("lastModified", DATE)),
    SP("Task", "owner", REFERENCE, NULL, EL("owner", REFERENCE)),
    SP("Task", "part-of", REFERENCE, NULL, EL("partOf", REFERENCE)),
    SP("Task", "patient", REFERENCE, "Patient", EL("for", REFERENCE)),
    SP("Task", "performer", TOKEN, NULL, EL("performerType", CODEABLE_CONCEPT)),
    SP("Task", "period", DATE, NULL, EL("executionPeriod", PERIOD)),
    SP("Task", "priority", TOKEN, NULL, EL("priority", CODE)),
    SP("Task", "requester", REFERENCE, NULL, EL("requester", REFERENCE)),
    SP("Task", "status", TOKEN, NULL, EL("status", CODE)),
    SP("Task", "subject", REFERENCE, NULL, EL("for", REFERENCE)),
};

#define SP_COUNT (sizeof(SP_TABLE) / sizeof(SP_TABLE[0]))

static const char *const MODS_TOKEN[] = { "not", "missing", NULL };
static const char *const MODS_REFERENCE[] = { "missing", NULL };
static const char *const MODS_STRING[] = { "exact", "contains", "missing", NULL };
static const char *const MODS_DATE[] = { "missing", NULL };
static const char *const MODS_URI[] = { "below", "above", "missing", NULL };
static const char *const COMPARATORS[] = {
    "eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap", NULL
};

#define SD_PREFIX "http://hl7.org/fhir/StructureDefinition/"

const fs_sp_t *fs_sp_table(apr_size_t *pcount)
{
    *pcount = SP_COUNT;
    return SP_TABLE;
}

int fs_sp_type_name_ok(const char *type)
{
    const char *s;
    if (!type || type[0] < 'A' || type[0] > 'Z' || !type[1]) return 0;
    for (s = type + 1; *s; ++s) {
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z'))) return 0;
    }
    return 1;
}

int fs_sp_resource_known(const char *type)
{
    apr_size_t i;
    if (!fs_sp_type_name_ok(type) || !strcmp(type, FS_SP_ANY_TYPE)) return 0;
    for (i = 0; i < SP_COUNT; ++i) {
        if (!strcmp(SP_TABLE[i].resource_type, type)) return 1;
    }
    return 0;
}

const char *fs_sp_type_from_canonical(const char *s)
{
    if (s && !strncmp(s, SD_PREFIX, sizeof(SD_PREFIX) - 1)) {
        return s + sizeof(SD_PREFIX) - 1;
    }
    return s;
}

static const fs_sp_t *find_in(const char *resource_type, const char *name)
{
    apr_size_t i;
    for (i = 0; i < SP_COUNT; ++i) {
        if (!strcmp(SP_TABLE[i].resource_type, resource_type)
            && !strcmp(SP_TABLE[i].name, name)) {
            return &SP_TABLE[i];
        }
    }
    return NULL;
}

const fs_sp_t *fs_sp_find(const char *resource_type, const char *name)
{
    const fs_sp_t *sp;
    if (!name || !fs_sp_resource_known(resource_type)) return NULL;
    sp = find_in(resource_type, name);
    return sp ? sp : find_in(FS_SP_ANY_TYPE, name);
}

const char *fs_sp_names(apr_pool_t *p, const char *resource_type)
{
    const char *s = NULL;
    apr_size_t i;
    int pass;
    /* type-specific first, common last: the order a reader expects in a message */
    for (pass = 0; pass < 2; ++pass) {
        const char *want = pass ? FS_SP_ANY_TYPE : resource_type;
        for (i = 0; i < SP_COUNT; ++i) {
            if (strcmp(SP_TABLE[i].resource_type, want)) continue;
            s = s ? apr_pstrcat(p, s, ", ", SP_TABLE[i].name, NULL) : SP_TABLE[i].name;
        }
    }
    return s ? s : "";
}

const char *fs_sp_resource_types(apr_pool_t *p)
{
    const char *s = NULL, *last = FS_SP_ANY_TYPE;
    apr_size_t i;
    for (i = 0; i < SP_COUNT; ++i) {
        if (!strcmp(SP_TABLE[i].resource_type, last)) continue;
        last = SP_TABLE[i].resource_type;
        s = s ? apr_pstrcat(p, s, ", ", last, NULL) : last;
    }
    return s ? s : "";
}

const char *fs_sp_type_str(fs_sp_type_t type)
{
    switch (type) {
    case FS_SP_TOKEN: return "token";
    case FS_SP_REFERENCE: return "reference";
    case FS_SP_STRING: return "string";
    case FS_SP_DATE: return "date";
    case FS_SP_URI: return "uri";
    }
    return "unknown";
}

const char *fs_sp_elem_str(fs_sp_elem_t elem)
{
    switch (elem) {
    case FS_SP_EL_CODE: return "code";
    case FS_SP_EL_BOOLEAN: return "boolean";
    case FS_SP_EL_CODING: return "Coding";
    case FS_SP_EL_CODEABLE_CONCEPT: return "CodeableConcept";
    case FS_SP_EL_IDENTIFIER: return "Identifier";
    case FS_SP_EL_REFERENCE: return "Reference";
    case FS_SP_EL_STRING: return "string";
    case FS_SP_EL_HUMAN_NAME: return "HumanName";
    case FS_SP_EL_DATE: return "dateTime";
    case FS_SP_EL_PERIOD: return "Period";
    case FS_SP_EL_URI: return "uri";
    }
    return "unknown";
}

const char *const *fs_sp_modifiers(fs_sp_type_t type)
{
    switch (type) {
    case FS_SP_TOKEN: return MODS_TOKEN;
    case FS_SP_REFERENCE: return MODS_REFERENCE;
    case FS_SP_STRING: return MODS_STRING;
    case FS_SP_DATE: return MODS_DATE;
    case FS_SP_URI: return MODS_URI;
    }
    return MODS_DATE;
}

const char *const *fs_sp_comparators(void)
{
    return COMPARATORS;
}

static int in_list(const char *const *list, const char *s)
{
    for (; *list; ++list) {
        if (!strcmp(*list, s)) return 1;
    }
    return 0;
}

int fs_sp_modifier_ok(const fs_sp_t *sp, const char *modifier)
{
    if (!sp || !modifier) return 0;
    if (in_list(fs_sp_modifiers(sp->type), modifier)) return 1;
    /* subject:Patient=123 narrows the target type; pointless against a fixed target */
    return sp->type == FS_SP_REFERENCE && fs_sp_type_name_ok(modifier)
           && (!sp->target || !strcmp(sp->target, modifier));
}

int fs_sp_comparator_ok(const fs_sp_t *sp, const char *comparator)
{
    return sp && comparator && sp->type == FS_SP_DATE && in_list(COMPARATORS, comparator);
}

const char *fs_sp_modifiers_str(apr_pool_t *p, const fs_sp_t *sp)
{
    const char *const *m = fs_sp_modifiers(sp->type);
    const char *s = NULL;
    for (; *m; ++m) {
        s = s ? apr_pstrcat(p, s, ", :", *m, NULL) : apr_pstrcat(p, ":", *m, NULL);
    }
    if (sp->type == FS_SP_REFERENCE) {
        s = apr_pstrcat(p, s, ", :", sp->target ? sp->target : "[ResourceType]", NULL);
    }
    return s;
}
