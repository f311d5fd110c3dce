/* mod_fhirsub_copy: bounded copies of the bodies that pass through the capture's filters,
 * taken without consuming, holding back or changing a bucket. */
#ifndef MOD_FHIRSUB_COPY_H
#define MOD_FHIRSUB_COPY_H

#include <apr_buckets.h>
#include <apr_pools.h>

typedef struct fhirsub_copy {
    char *data;            /* what was copied, NULL while nothing was */
    apr_size_t len, cap;   /* bytes copied, bytes allocated */
    apr_size_t max;        /* the bound */
    int overflow;          /* outgrew the bound (or could not be read): incomplete */
} fhirsub_copy;

/* An empty copy bounded by max bytes, from p. */
fhirsub_copy *fhirsub_copy_make(apr_pool_t *p, apr_size_t max);

/* Append the data buckets of bb. */
void fhirsub_copy_brigade(fhirsub_copy *b, apr_pool_t *p, apr_bucket_brigade *bb);

#endif
