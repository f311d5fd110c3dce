#include <stdio.h>
#include <string.h>
#include <apr_strings.h>
#include <apr_tables.h>

#include "fs_json.h"
#include "fs_sub.h"
#include "fs_time.h"
#include "adm_out.h"

struct adm_table_t {
    apr_pool_t *p;
    int ncols;
    const char *const *headers;
    apr_array_header_t *rows;   /* const char** of ncols */
};

adm_table_t *adm_table_make(apr_pool_t *p, int ncols, const char *const *headers)
{
    adm_table_t *t = apr_pcalloc(p, sizeof(*t));
    t->p = p;
    t->ncols = ncols;
    t->headers = headers;
    t->rows = apr_array_make(p, 16, sizeof(const char **));
    return t;
}

void adm_table_add(adm_table_t *t, const char *const *cols)
{
    const char **row = apr_pcalloc(t->p, sizeof(const char *) * (apr_size_t)t->ncols);
    int i;
    for (i = 0; i < t->ncols; ++i) row[i] = cols[i] ? cols[i] : "-";
    APR_ARRAY_PUSH(t->rows, const char **) = row;
}

static void print_row(const adm_table_t *t, const char *const *cols, const int *width)
{
    int i;
    for (i = 0; i < t->ncols; ++i) {
        /* no padding after the last column: lines carry no trailing blanks */
        if (i + 1 < t->ncols) printf("%-*s  ", width[i], cols[i]);
        else printf("%s\n", cols[i]);
    }
}

void adm_table_print(const adm_table_t *t, const char *empty)
{
    int *width = apr_pcalloc(t->p, sizeof(int) * (apr_size_t)t->ncols);
    int i, r;

    if (t->rows->nelts == 0) {
        printf("%s\n", empty);
        return;
    }
    for (i = 0; i < t->ncols; ++i) width[i] = (int)strlen(t->headers[i]);
    for (r = 0; r < t->rows->nelts; ++r) {
        const char **row = APR_ARRAY_IDX(t->rows, r, const char **);
        for (i = 0; i < t->ncols; ++i) {
            int w = (int)strlen(row[i]);
            if (w > width[i]) width[i] = w;
        }
    }
    print_row(t, t->headers, width);
    for (r = 0; r < t->rows->nelts; ++r) {
        print_row(t, APR_ARRAY_IDX(t->rows, r, const char *const *), width);
    }
}

const char *adm_time_text(apr_pool_t *p, apr_time_t t)
{
    return t ? fs_time_instant(p, t) : "-";
}

json_object *adm_time_json(apr_pool_t *p, apr_time_t t)
{
    return t ? json_object_new_string(fs_time_instant(p, t)) : NULL;
}

json_object *adm_json_root(apr_pool_t *p)
{
    return fs_json_pool_own(p, json_object_new_object());
}

void adm_json_print(json_object *j)
{
    printf("%s\n", json_object_to_json_string_ext(j, JSON_C_TO_STRING_PRETTY
                                                  | JSON_C_TO_STRING_SPACED
                                                  | JSON_C_TO_STRING_NOSLASHESCAPE));
}

const char *adm_shape_name(int shape)
{
    switch (shape) {
    case FS_SHAPE_BACKPORT: return "backport";
    case FS_SHAPE_CLASSIC: return "classic";
    case FS_SHAPE_R5: return "r5";
    default: return "unknown";
    }
}
