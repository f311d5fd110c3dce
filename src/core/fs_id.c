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

apr_status_t fs_id_new(const char **pid, apr_pool_t *p)
{
    /* the dashes of the 8-4-4-4-12 layout, as byte offsets into the 16 bytes */
    static const apr_size_t groups[] = { 0, 4, 6, 8, 10, 16 };
    unsigned char b[16];
    char *id, *s;
    apr_size_t i;
    apr_status_t rv;

    *pid = NULL;
    if (APR_SUCCESS != (rv = apr_generate_random_bytes(b, sizeof(b)))) goto leave;
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);  /* version 4: random */
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);  /* RFC 4122 variant */

    s = id = apr_palloc(p, FS_ID_LEN + 1);
    for (i = 0; i + 1 < sizeof(groups) / sizeof(groups[0]); ++i) {
        if (i > 0) *s++ = '-';
        hex_bytes(s, b + groups[i], groups[i + 1] - groups[i]);
        s += 2 * (groups[i + 1] - groups[i]);
    }
    *s = '\0';
    *pid = id;
leave:
    return rv;
}
