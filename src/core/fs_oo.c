#include "fs_json.h"
#include "fs_oo.h"

json_object *fs_oo_make(apr_pool_t *p, const char *code, const char *diagnostics)
{
    json_object *oo = json_object_new_object();
    json_object *issues = json_object_new_array();
    json_object *issue = json_object_new_object();
    json_object *details = json_object_new_object();

    fs_json_add_str(oo, "resourceType", "OperationOutcome");
    fs_json_add_str(issue, "severity", "error");
    fs_json_add_str(issue, "code", code);
    /* Medplum's clients read details.text; others read diagnostics: give both. */
    fs_json_add_str(details, "text", diagnostics);
    json_object_object_add(issue, "details", details);
    fs_json_add_str(issue, "diagnostics", diagnostics);
    json_object_array_add(issues, issue);
    json_object_object_add(oo, "issue", issues);
    return fs_json_pool_own(p, oo);
}

const char *fs_oo_code_for_status(int http_status)
{
    switch (http_status) {
    case 401: return "login";
    case 403: return "forbidden";
    case 404: case 410: return "not-found";
    case 405: case 501: return "not-supported";
    case 409: case 412: return "conflict";
    case 413: case 414: return "too-costly";
    case 429: return "throttled";
    case 503: case 504: return "transient";
    default: return http_status >= 500 ? "exception" : "invalid";
    }
}
