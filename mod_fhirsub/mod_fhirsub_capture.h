/* mod_fhirsub_capture: FHIR writes that pass through the base to the FHIR server
 * become events. The request and response bodies are copied (up to a bound) on their
 * way through, without changing them; the body of a transaction/batch Bundle is read
 * ahead before it is forwarded, so the versions its entries change can be read first
 * (mod_fhirsub_prior). Once the response has gone to the client and it says success,
 * the changes are matched against the live subscriptions they may concern and recorded
 * with their event numbers. */
#ifndef MOD_FHIRSUB_CAPTURE_H
#define MOD_FHIRSUB_CAPTURE_H

#include "mod_fhirsub_route.h"

/* Watch this request if it is a write not served by the module (rel: the path below
 * the base). Called from the handler, which returns what this returns: DECLINED (the
 * FHIR server's handler goes on), or the error status when reading a Bundle's body
 * ahead failed. */
int fhirsub_capture_start(request_rec *r, const fhirsub_dir_conf *c, const char *rel);

/* Most distinct subscription filters a process keeps parsed (fs_filter_cache.h; about
 * half a kilobyte each, so at most some 25 MB per httpd child). */
#define FHIRSUB_FILTER_CACHE_MAX 50000

/* Most recordings of events one transaction takes (fs_group.h). */
#define FHIRSUB_EVENT_BATCH_MAX 64

/* Per-process state of the capture: the filter cache and the events' group commit. */
void fhirsub_capture_child_init(apr_pool_t *pchild, server_rec *s);

void fhirsub_capture_register_hooks(void);

#endif
