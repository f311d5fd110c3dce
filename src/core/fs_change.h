/* fs_change: what a successful FHIR write changed, worked out from what passed
 * through Apache: method and path, the response's status and headers, and the
 * (possibly truncated) request and response bodies, and the versions read before it
 * (fs_prior). Handles create, update, patch, delete, conditional writes and each entry
 * of transaction and batch Bundles; prefers the resource the server answered with,
 * falls back to the one the client sent (Prefer: return=minimal), and to id-only when
 * neither is available. */
#ifndef FS_CHANGE_H
#define FS_CHANGE_H

#include <apr_pools.h>
#include <apr_tables.h>

#include "fs_event.h"
#include "fs_prior.h"

typedef struct fs_capture_t {
    const char *method;        /* POST | PUT | PATCH | DELETE */
    const char *path;          /* below the FHIR base: "Encounter", "Encounter/1", "" */
    int status;                /* HTTP status of the answer */
    const char *location;      /* Location header, NULL when absent */
    const char *etag;          /* ETag header, NULL when absent */
    const char *req_body;      /* request body as captured (NULL = none) */
    apr_size_t req_len;        /* its length */
    int req_complete;          /* 0 when longer than the capture bound */
    const char *resp_body;     /* response body as captured (NULL = none) */
    apr_size_t resp_len;       /* its length */
    int resp_complete;         /* 0 when longer than the bound, or encoded */
    const apr_array_header_t *priors;  /* fs_prior_t* read before the write and answered
                                        * (fs_prior_plan), or NULL */
} fs_capture_t;

/* The changes (fs_change_t*) a successful write made, with fresh ids and `now` as
 * their time; none for failed writes and for requests that change nothing. Each update
 * or delete carries the version before when cap->priors has it. A conditional delete
 * (DELETE Type?search, also as a Bundle entry) makes one delete per resource its prior
 * search found. APR_INCOMPLETE (with every change that is known) when a successful
 * conditional delete's search was not answered completely: what else it deleted is
 * unknown. */
apr_status_t fs_change_derive(apr_array_header_t **pchanges, apr_pool_t *p,
                              const fs_capture_t *cap, apr_time_t now);

#endif
