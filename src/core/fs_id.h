/* fs_id: random identifiers for resources (UUID v4) and grants (UUID v7, time-ordered). */
#ifndef FS_ID_H
#define FS_ID_H

#include <apr_pools.h>
#include <apr_time.h>

/* Length of an id produced by fs_id_new, without the terminating NUL. */
#define FS_ID_LEN 36

/* A fresh random 128-bit id, formatted as a lowercase UUID version 4
 * ("xxxxxxxx-xxxx-4xxx-[89ab]xxx-xxxxxxxxxxxx"), allocated from p. The bytes come
 * from apr_generate_random_bytes (the system CSPRNG), so ids are unguessable
 * and may serve as bearer references (grant ids). Fails only when the random
 * source does. */
apr_status_t fs_id_new(const char **pid, apr_pool_t *p);

/* fs_id_new's text for 16 bytes the caller drew from apr_generate_random_bytes (many at
 * once, for ids made in bulk), in out[FS_ID_LEN + 1]; sets their version and variant
 * bits. */
void fs_id_format_v4(char *out, unsigned char *random16);

/* A fresh id that sorts by creation time: a UUID version 7 (RFC 9562), the Unix time
 * of `now` in milliseconds in its first 48 bits, then 74 bits from the system CSPRNG,
 * so it stays unguessable. Ids made one after another land next to each other in a
 * B-tree index (the grants of one moment share its last page instead of each
 * dirtying a random one). Fails only when the random source does. */
apr_status_t fs_id_new_ordered(const char **pid, apr_pool_t *p, apr_time_t now);

#endif
