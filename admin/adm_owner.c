#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <apr_strings.h>

#include "adm.h"
#include "adm_owner.h"

const char *adm_path_dir(apr_pool_t *p, const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash) return ".";
    if (slash == path) return "/";
    return apr_pstrndup(p, path, (apr_size_t)(slash - path));
}

/* The file's owner, or its directory's when it is to be created. */
static apr_status_t owner_of(apr_pool_t *p, const char *path, int create, struct stat *st)
{
    const char *dir;

    if (0 == stat(path, st)) return APR_SUCCESS;
    if (errno != ENOENT || !create) return APR_FROM_OS_ERROR(errno);
    dir = adm_path_dir(p, path);
    if (0 == stat(dir, st)) return APR_SUCCESS;
    return APR_FROM_OS_ERROR(errno);
}

/* Groups first: after setuid there is no permission left to change them. */
static apr_status_t become(uid_t uid, gid_t gid, const char **pname)
{
    struct passwd *pw = getpwuid(uid);
    int rc;

    if (pw) {
        gid = pw->pw_gid;
        rc = initgroups(pw->pw_name, gid);
    }
    else {
        rc = setgroups(1, &gid);
    }
    if (rc != 0 || setgid(gid) != 0 || setuid(uid) != 0) return APR_FROM_OS_ERROR(errno);
    *pname = pw ? pw->pw_name : NULL;
    return APR_SUCCESS;
}

apr_status_t adm_owner_assume(apr_pool_t *p, const char *path, int create,
                              const char **pwho)
{
    struct stat st;
    const char *name = NULL;
    apr_status_t rv;

    *pwho = NULL;
    if (geteuid() != 0) return APR_SUCCESS;
    if (APR_SUCCESS != (rv = owner_of(p, path, create, &st))) return rv;
    if (st.st_uid == 0) return APR_SUCCESS;
    if (APR_SUCCESS != (rv = become(st.st_uid, st.st_gid, &name))) return rv;
    *pwho = name ? name : apr_psprintf(p, "uid %ld", (long)st.st_uid);
    return APR_SUCCESS;
}
