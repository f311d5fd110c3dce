#include <apr_general.h>

#include "fs_id.h"

static void hex_bytes(char *out, const unsigned char *bytes, apr_size_t n)
{
    static const char hex[] = "0123456789abcdef";
    apr_size_t i;
    for (i = 0; i < n; ++i) {
        *out++ = hex[bytes[i] >> 4];
        *out++ = hex[bytes[i] & 0x0f];
    }
}

/* The 16 bytes as a lowercase 8-4-4-4-12 UUID in out[FS_ID_LEN + 1], with the version
 * nibble and variant set. */
static void uuid_write(char *out, unsigned char *b, int version)
{
    /* the dashes of the 8-4-4-4-12 layout, as byte offsets into the 16 bytes */
    static const apr_size_t groups[] = { 0, 4, 6, 8, 10, 16 };
    char *s = out;
    apr_size_t i;

    b[6] = (unsigned char)((b[6] & 0x0f) | (version << 4));
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);  /* RFC 4122 variant */
    for (i = 0; i + 1 < sizeof(groups) / sizeof(groups[0]); ++i) {
        if (i > 0) *s++ = '-';
        hex_bytes(s, b + groups[i], groups[i + 1] - groups[i]);
        s += 2 * (groups[i + 1] - groups[i]);
    }
    *s = '\0';
}

static const char *uuid_format(apr_pool_t *p, unsigned char *b, int version)
{
    char *id = apr_palloc(p, FS_ID_LEN + 1);
    uuid_write(id, b, version);
    return id;
}

void fs_id_format_v4(char *out, unsigned char *random16)
{
    uuid_write(out, random16, 4);
}

apr_status_t fs_id_new(const char **pid, apr_pool_t *p)
{
    unsigned char b[16];
    apr_status_t rv;

    *pid = NULL;
    if (APR_SUCCESS != (rv = apr_generate_random_bytes(b, sizeof(b)))) return rv;
    *pid = uuid_format(p, b, 4);
    return APR_SUCCESS;
}

apr_status_t fs_id_new_ordered(const char **pid, apr_pool_t *p, apr_time_t now)
{
    apr_uint64_t ms = (apr_uint64_t)(now / 1000);
    unsigned char b[16];
    apr_status_t rv;
    int i;

    *pid = NULL;
    if (APR_SUCCESS != (rv = apr_generate_random_bytes(b + 6, sizeof(b) - 6))) return rv;
    for (i = 5; i >= 0; --i, ms >>= 8) b[i] = (unsigned char)(ms & 0xff);
    *pid = uuid_format(p, b, 7);
    return APR_SUCCESS;
}
