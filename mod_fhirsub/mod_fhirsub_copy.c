#include <string.h>

#include "mod_fhirsub_copy.h"

fhirsub_copy *fhirsub_copy_make(apr_pool_t *p, apr_size_t max)
{
    fhirsub_copy *b = apr_pcalloc(p, sizeof(*b));
    b->max = max;
    return b;
}

static void copy_append(fhirsub_copy *b, apr_pool_t *p, const char *data, apr_size_t len)
{
    if (b->overflow || len == 0) return;
    if (b->len + len > b->max) {
        b->overflow = 1;   /* too large: the caller falls back (id-only, no prior) */
        return;
    }
    if (b->len + len > b->cap) {
        apr_size_t cap = b->cap ? b->cap : 4096;
        char *bigger;
        while (cap < b->len + len) cap *= 2;
        bigger = apr_palloc(p, cap);
        if (b->len) memcpy(bigger, b->data, b->len);
        b->data = bigger;
        b->cap = cap;
    }
    memcpy(b->data + b->len, data, len);
    b->len += len;
}

void fhirsub_copy_brigade(fhirsub_copy *b, apr_pool_t *p, apr_bucket_brigade *bb)
{
    apr_bucket *e;
    for (e = APR_BRIGADE_FIRST(bb); e != APR_BRIGADE_SENTINEL(bb) && !b->overflow;
         e = APR_BUCKET_NEXT(e)) {
        const char *data;
        apr_size_t len;
        if (APR_BUCKET_IS_METADATA(e)) continue;
        if (APR_SUCCESS != apr_bucket_read(e, &data, &len, APR_BLOCK_READ)) {
            b->overflow = 1;
            return;
        }
        copy_append(b, p, data, len);
    }
}
