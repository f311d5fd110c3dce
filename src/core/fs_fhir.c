#include <string.h>

#include "fs_fhir.h"

const char *fs_fhir_version_str(fs_fhir_version_t v)
{
    switch (v) {
    case FS_FHIR_R4: return FS_FHIR_VERSION_R4;
    case FS_FHIR_R5: return FS_FHIR_VERSION_R5;
    }
    return NULL;
}

int fs_fhir_id_valid(const char *s)
{
    size_t n;
    if (!s) return 0;
    for (n = 0; s[n]; ++n) {
        /* apr_isalnum would follow the locale: spell out ASCII */
        char c = s[n];
        int ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
                 || (c >= '0' && c <= '9') || c == '-' || c == '.';
        if (!ok || n >= FS_FHIR_ID_MAX) return 0;
    }
    return n > 0;
}

int fs_fhir_type_name(const char *s, size_t n)
{
    size_t i;
    if (n == 0 || s[0] < 'A' || s[0] > 'Z') return 0;
    for (i = 1; i < n; ++i) {
        if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z'))) return 0;
    }
    return 1;
}

int fs_fhir_status_code_valid(fs_fhir_version_t v, const char *code)
{
    static const char *const codes[] = {
        "requested", "active", "error", "off", NULL
    };
    int i;
    if (!code) return 0;
    for (i = 0; codes[i]; ++i) {
        if (!strcmp(code, codes[i])) return 1;
    }
    /* entered-in-error was added to the value set in R5 */
    return v == FS_FHIR_R5 && !strcmp(code, "entered-in-error");
}
