/* fs_id: random identifiers for grants and resources. */
#ifndef FS_ID_H
#define FS_ID_H

#include <apr_pools.h>

/* Length of an id produced by fs_id_new, without the terminating NUL. */
#define FS_ID_LEN 36

/* A fresh random 128-bit id, formatted as a lowercase UUID version 4
 * ("xxxxxxxx-xxxx-4xxx-[89ab]xxx-xxxxxxxxxxxx"), allocated from p. The bytes come
 * from apr_generate_random_bytes (the system CSPRNG), so ids are unguessable
 * and may serve as bearer references (grant ids). Fails only when the random
 * source does. */
apr_status_t fs_id_new(const char **pid, apr_pool_t *p);

#endif
