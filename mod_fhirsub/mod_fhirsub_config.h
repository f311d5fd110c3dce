/* mod_fhirsub_config: the directives, per <Location> with proper merging.
 * Unset values are FHIRSUB_UNSET (-1) or NULL; defaults apply when read. */
#ifndef MOD_FHIRSUB_CONFIG_H
#define MOD_FHIRSUB_CONFIG_H

#include <httpd.h>
#include <http_config.h>

#include "fs_fhir.h"
#include "fs_token.h"
#include "fs_topic.h"

#define FHIRSUB_UNSET (-1)

/* Every log line of the module starts with a unique number, "FS1nnnn: " (the core
 * uses FS0nnnn), so operators can grep for one situation. */
#define FHIRSUB_LOGNO(n) "FS" #n ": "

#define FHIRSUB_DEFAULT_TOKEN_LIFETIME 3600   /* seconds, as Medplum */
#define FHIRSUB_DEFAULT_MAX_BODY (1024 * 1024)/* bytes of a request body we read */
#define FHIRSUB_DEFAULT_HEARTBEAT_MIN 1       /* seconds */
#define FHIRSUB_DEFAULT_HEARTBEAT_MAX 3600    /* seconds */
#define FHIRSUB_DEFAULT_ANON_USER "anonymous"
#define FHIRSUB_DEFAULT_CAPTURE_MAX (4 * 1024 * 1024) /* bytes of a captured body */

typedef struct fhirsub_dir_conf {
    int enabled;                  /* FhirSub On|Off */
    const char *base_path;        /* the <Location> path the FHIR base is at */
    int version;                  /* FhirSubFhirVersion R4|R5 (fs_fhir_version_t) */
    const char *ws_url;           /* FhirSubWebSocketURL: handed out with tokens */
    const char *server_base;      /* FhirSubServerBase: absolute base for references */
    const char *key_file;         /* FhirSubTokenKey: file the key was read from */
    fs_token_key_t *key;          /* FhirSubTokenKey: the signing key, alg included */
    apr_interval_time_t token_lifetime; /* FhirSubTokenLifetime */
    int anonymous;                /* FhirSubAnonymous On|Off: serve without r->user */
    const char *anonymous_user;   /* principal used for anonymous requests */
    int allowed_content;          /* FhirSubPayloadContent: bit set of FS_CONTENT_* */
    fs_topics_t *topics;          /* FhirSubTopic: loaded SubscriptionTopics */
    apr_off_t max_body;           /* FhirSubMaxBodySize: bytes */
    apr_int64_t heartbeat_min;    /* FhirSubHeartbeatRange: smallest period */
    apr_int64_t heartbeat_max;    /* FhirSubHeartbeatRange: largest period */
    apr_off_t capture_max;        /* FhirSubCaptureMaxBody: bytes copied per body */
    apr_sockaddr_t *wake_addr;    /* FhirSubNotifierWakeup: UDP address, NULL = none */
} fhirsub_dir_conf;

typedef struct fhirsub_srv_conf {
    apr_array_header_t *locations;/* fhirsub_dir_conf* with FhirSub On, checked at start */
} fhirsub_srv_conf;

extern const command_rec fhirsub_cmds[];

void *fhirsub_create_dir_conf(apr_pool_t *p, char *dir);
void *fhirsub_merge_dir_conf(apr_pool_t *p, void *basev, void *addv);
void *fhirsub_create_srv_conf(apr_pool_t *p, server_rec *s);

/* Effective values, defaults applied. */
fs_fhir_version_t fhirsub_conf_version(const fhirsub_dir_conf *c);
apr_interval_time_t fhirsub_conf_token_lifetime(const fhirsub_dir_conf *c);
unsigned fhirsub_conf_allowed_content(const fhirsub_dir_conf *c);
apr_off_t fhirsub_conf_max_body(const fhirsub_dir_conf *c);
const char *fhirsub_conf_anon_user(const fhirsub_dir_conf *c);
apr_size_t fhirsub_conf_capture_max(const fhirsub_dir_conf *c);

/* Post-config check of every location that enabled the service. */
apr_status_t fhirsub_conf_check(server_rec *s);

#endif
