/* adm_owner: running as the owner of the SQLite database. httpd's children (www-data)
 * write the file, and SQLite creates -wal/-shm files beside it owned by whoever opens
 * it: run as root, the tool would lock the children out of their own database. */
#ifndef ADM_OWNER_H
#define ADM_OWNER_H

#include <apr_pools.h>

/* As root, switch to the owner (user, groups) of path, or of its directory when path
 * does not exist and create is set; *pwho names the user switched to, NULL when
 * nothing changed. Not root, or the file is root's: nothing to do. */
apr_status_t adm_owner_assume(apr_pool_t *p, const char *path, int create,
                              const char **pwho);

/* The directory part of path ("." for a bare file name). */
const char *adm_path_dir(apr_pool_t *p, const char *path);

#endif
