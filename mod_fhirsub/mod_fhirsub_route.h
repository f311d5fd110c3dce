/* mod_fhirsub_route: which requests under a FHIR base the module answers, and the
 * per-request context every endpoint works with. */
#ifndef MOD_FHIRSUB_ROUTE_H
#define MOD_FHIRSUB_ROUTE_H

#include <httpd.h>

#include "fs_fhir.h"
#include "fs_store.h"
#include "mod_fhirsub_config.h"

typedef enum {
    FHIRSUB_EP_NONE = 0,        /* not ours: another handler (the FHIR server) serves it */
    FHIRSUB_EP_METADATA,        /* [base]/metadata */
    FHIRSUB_EP_OPDEF,           /* [base]/OperationDefinition/<one of ours> */
    FHIRSUB_EP_TYPE,            /* [base]/Subscription */
    FHIRSUB_EP_TYPE_OP,         /* [base]/Subscription/$op */
    FHIRSUB_EP_INSTANCE,        /* [base]/Subscription/id */
    FHIRSUB_EP_INSTANCE_OP,     /* [base]/Subscription/id/$op */
    FHIRSUB_EP_VREAD,           /* [base]/Subscription/id/_history/vid */
    FHIRSUB_EP_TOPICS,          /* [base]/SubscriptionTopic (when topics are loaded) */
    FHIRSUB_EP_TOPIC,           /* [base]/SubscriptionTopic/id */
    FHIRSUB_EP_TOPICS_BASIC,    /* R4: [base]/Basic?code=SubscriptionTopic */
    FHIRSUB_EP_TOPIC_BASIC,     /* R4: [base]/Basic/<id of a loaded topic> */
    FHIRSUB_EP_BAD,             /* under Subscription, but malformed */
} fhirsub_endpoint_t;

typedef struct fhirsub_req {
    request_rec *r;
    const fhirsub_dir_conf *conf;   /* merged configuration of the location */
    fs_fhir_version_t version;      /* FHIR version served here */
    fhirsub_endpoint_t endpoint;    /* what the path names */
    const char *id;                 /* Subscription or OperationDefinition id */
    const char *op;                 /* operation name without '$' */
    const char *vid;                /* version id of a vread */
    const char *base_url;           /* absolute FHIR base, for references */
    const char *user;               /* principal, once checked */
    apr_time_t now;                 /* one clock reading per request */
} fhirsub_req;

/* Classify r->uri relative to the location's base path. */
fhirsub_endpoint_t fhirsub_route(request_rec *r, const fhirsub_dir_conf *c,
                                 const char **pid, const char **pop, const char **pvid);

/* What follows base in path ("" for the base itself; a query may follow), or NULL
 * when path is not under base. Trailing slashes of base do not matter. */
const char *fhirsub_path_below(const char *path, const char *base);

/* r->uri below the location's base path ("" for the base itself). */
const char *fhirsub_route_rel(request_rec *r, const fhirsub_dir_conf *c);

/* The store for this request, or NULL after answering 503. */
fs_store_t *fhirsub_req_store(fhirsub_req *q, int *pdone);

/* The principal for this request, or NULL after answering 401. */
const char *fhirsub_req_user(fhirsub_req *q, int *pdone);

#endif
