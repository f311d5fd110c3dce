/* fs_match: evaluation of filters, topic triggers and subscriptions (see fs_match.h and
 * docs/SEARCH-PARAMETERS.md, "How filters are matched"). Allocation free: values are
 * compared in place, FHIR escapes ("\|", "\$", "\,", "\\") resolved while reading. */
#include <stdint.h>
#include <string.h>
#include <apr_time.h>

#include "fs_json.h"
#include "fs_match.h"

/* ---- text: spans and readers ------------------------------------------------------- */

typedef struct span_t {
    const char *s, *end;
} span_t;

/* Reads code points from UTF-8 text; with esc, "\x" (x one of | $ , \) reads as x. */
typedef struct rd_t {
    const unsigned char *s, *end;
    int esc;
} rd_t;

static rd_t rd_make(const char *s, const char *end, int esc)
{
    rd_t r;
    r.s = (const unsigned char *)s;
    r.end = (const unsigned char *)end;
    r.esc = esc;
    return r;
}

static rd_t rd_str(const char *s, int esc)
{
    return rd_make(s, s + strlen(s), esc);
}

static int is_escapable(unsigned char c)
{
    return c == '|' || c == '$' || c == ',' || c == '\\';
}

/* The next code point, -1 at the end. A malformed byte reads as itself. */
static long rd_raw(rd_t *r)
{
    unsigned char c;
    long cp;
    int n, i;

    if (r->s >= r->end) return -1;
    c = *r->s++;
    if (r->esc && c == '\\' && r->s < r->end && is_escapable(*r->s)) return *r->s++;
    if (c < 0xC0 || c > 0xF7) return c;
    n = c >= 0xF0 ? 3 : (c >= 0xE0 ? 2 : 1);
    cp = c & (0x3F >> n);
    for (i = 0; i < n; ++i) {
        if (r->s >= r->end || (*r->s & 0xC0) != 0x80) return c;
        cp = (cp << 6) | (*r->s++ & 0x3F);
    }
    return cp;
}

static long rd_peek(rd_t r)
{
    return rd_raw(&r);
}

static int rd_done(const rd_t *r)
{
    return r->s >= r->end;
}

/* Base letters of U+00C0..U+00FF and U+0100..U+017F; '.' = no base letter, only case. */
static const char LATIN1[] =
    "aaaaaa.ceeeeiiiidnooooo.ouuuuy..aaaaaa.ceeeeiiiidnooooo.ouuuuy.y";
static const char LATIN_A[] =
    "aaaaaaccccccccddddeeeeeeeeeegggggggghhhhiiiiiiiiii..jjkkklllllll"
    "lllnnnnnnnnnoooooo..rrrrrrssssssssttttttuuuuuuuuuuuuwwyyyzzzzzzs";

typedef char latin1_size_check[sizeof(LATIN1) == 0x40 + 1 ? 1 : -1];
typedef char latin_a_size_check[sizeof(LATIN_A) == 0x80 + 1 ? 1 : -1];

/* Lower case without accents, for the Latin letters of Latin-1 and Latin Extended-A. */
static long fold(long cp)
{
    char b;
    if (cp >= 'A' && cp <= 'Z') return cp + 32;
    if (cp >= 0xC0 && cp <= 0xFF) {
        b = LATIN1[cp - 0xC0];
        if (b != '.') return b;
        return (cp <= 0xDE && cp != 0xD7) ? cp + 32 : cp;
    }
    if (cp >= 0x100 && cp <= 0x17F) {
        b = LATIN_A[cp - 0x100];
        return b != '.' ? b : (cp | 1);
    }
    return cp;
}

/* The next folded code point; combining diacritical marks (decomposed accents) skipped. */
static long rd_fold(rd_t *r)
{
    long c;
    do {
        c = rd_raw(r);
    } while (c >= 0x300 && c <= 0x36F);
    return c < 0 ? c : fold(c);
}

/* Does text start with value, folded? */
static int fold_prefix(rd_t text, rd_t value)
{
    long vc;
    while ((vc = rd_fold(&value)) >= 0) {
        if (rd_fold(&text) != vc) return 0;
    }
    return 1;
}

static int fold_contains(rd_t text, rd_t value)
{
    do {
        if (fold_prefix(text, value)) return 1;
    } while (rd_raw(&text) >= 0);
    return 0;
}

static int raw_equal(rd_t a, rd_t b)
{
    long ca, cb;
    do {
        ca = rd_raw(&a);
        cb = rd_raw(&b);
        if (ca != cb) return 0;
    } while (ca >= 0);
    return 1;
}

/* Advance both readers past their common beginning. */
static void common_prefix(rd_t *a, rd_t *b)
{
    rd_t a2 = *a, b2 = *b;
    long ca, cb;
    for (;;) {
        ca = rd_raw(&a2);
        cb = rd_raw(&b2);
        if (ca < 0 || cb < 0 || ca != cb) return;
        *a = a2;
        *b = b2;
    }
}

static int span_empty(span_t sp)
{
    return sp.s == sp.end;
}

/* Escaped value part against plain text. */
static int span_eq_str(span_t v, const char *s)
{
    return raw_equal(rd_make(v.s, v.end, 1), rd_str(s, 0));
}

static int span_same(span_t a, span_t b)
{
    apr_size_t n = (apr_size_t)(a.end - a.s);
    return n == (apr_size_t)(b.end - b.s) && !memcmp(a.s, b.s, n);
}

static int span_is(span_t a, const char *s)
{
    apr_size_t n = strlen(s);
    return n == (apr_size_t)(a.end - a.s) && !memcmp(a.s, s, n);
}

/* ---- element paths ----------------------------------------------------------------- */

typedef struct mctx_t mctx_t;
typedef int (*leaf_fn)(const mctx_t *m, json_object *leaf, fs_sp_elem_t elem);

/* Visit the values at a dotted path; arrays at any step are walked item by item.
 * Returns 1 as soon as fn does. */
static int visit(json_object *node, const char *path, fs_sp_elem_t elem, leaf_fn fn,
                 const mctx_t *m)
{
    const char *dot;
    char key[64];
    apr_size_t n, i, len;
    json_object *child;

    if (!node) return 0;
    if (json_object_is_type(node, json_type_array)) {
        len = json_object_array_length(node);
        for (i = 0; i < len; ++i) {
            if (visit(json_object_array_get_idx(node, i), path, elem, fn, m)) return 1;
        }
        return 0;
    }
    if (!*path) return fn(m, node, elem);
    if (!json_object_is_type(node, json_type_object)) return 0;
    dot = strchr(path, '.');
    n = dot ? (apr_size_t)(dot - path) : strlen(path);
    if (n >= sizeof(key)) return 0;
    memcpy(key, path, n);
    key[n] = '\0';
    if (!json_object_object_get_ex(node, key, &child)) return 0;
    return visit(child, dot ? dot + 1 : "", elem, fn, m);
}

/* ---- per-value matching context ----------------------------------------------------- */

typedef struct tokval_t {
    int bar;            /* a '|' was given: the system is tested */
    span_t sys, code;   /* escaped; an empty code after '|' means any code */
} tokval_t;

typedef struct refval_t {
    span_t type, id;    /* type empty for a bare id */
} refval_t;

typedef struct range_t {
    apr_int64_t lo, hi; /* [lo, hi) in microseconds since the epoch, UTC */
} range_t;

struct mctx_t {
    const fs_filter_t *f;
    const char *value;      /* the alternative being tested */
    tokval_t tok;
    refval_t ref;
    const char *want_type;  /* reference: the type the modifier or the parameter demands */
    range_t range;
    fs_match_key_fn key_fn; /* keys: where they go (fs_match_resource_keys) */
    void *key_baton;
    const char *key_type;   /* keys: the resource's type */
};

static int any_path(json_object *res, const mctx_t *m, leaf_fn fn)
{
    const fs_sp_t *sp = m->f->sp;
    int i;
    for (i = 0; i < FS_SP_MAX_PATHS && sp->paths[i].path; ++i) {
        if (visit(res, sp->paths[i].path, sp->paths[i].elem, fn, m)) return 1;
    }
    return 0;
}

static int has_modifier(const fs_filter_t *f, const char *mod)
{
    return f->modifier && !strcmp(f->modifier, mod);
}

static const char *leaf_str(json_object *leaf)
{
    return json_object_is_type(leaf, json_type_string) ? json_object_get_string(leaf) : NULL;
}

/* ---- token ------------------------------------------------------------------------ */

/* "code", "system|code", "|code", "system|": split at the first unescaped '|'. */
static void tok_parse(tokval_t *t, const char *v)
{
    const char *s, *end = v + strlen(v);
    for (s = v; s < end; ++s) {
        if (*s == '\\' && s + 1 < end) ++s;
        else if (*s == '|') break;
    }
    t->bar = s < end;
    t->sys.s = v;
    t->sys.end = t->bar ? s : v;
    t->code.s = t->bar ? s + 1 : v;
    t->code.end = end;
}

static int tok_test(const tokval_t *t, const char *system, const char *code)
{
    if (t->bar) {
        if (span_empty(t->sys) ? system != NULL : (!system || !span_eq_str(t->sys, system))) {
            return 0;
        }
        if (span_empty(t->code)) return 1;
    }
    return code && span_eq_str(t->code, code);
}

static int tok_coding(const tokval_t *t, json_object *c)
{
    return tok_test(t, fs_json_get_str(c, "system"), fs_json_get_str(c, "code"));
}

/* A CodeableConcept matches through any coding; an object without coding[] is read as a
 * Coding (Encounter.class is a Coding in R4 and a CodeableConcept in R5). */
static int tok_concept(const tokval_t *t, json_object *cc)
{
    json_object *codings = fs_json_get_typed(cc, "coding", json_type_array);
    apr_size_t i, n;
    if (!codings) return tok_coding(t, cc);
    n = json_object_array_length(codings);
    for (i = 0; i < n; ++i) {
        if (tok_coding(t, json_object_array_get_idx(codings, i))) return 1;
    }
    return 0;
}

static int leaf_token(const mctx_t *m, json_object *leaf, fs_sp_elem_t elem)
{
    const int is_obj = json_object_is_type(leaf, json_type_object);
    switch (elem) {
    case FS_SP_EL_CODE:
        return tok_test(&m->tok, NULL, leaf_str(leaf));
    case FS_SP_EL_BOOLEAN:
        if (!json_object_is_type(leaf, json_type_boolean)) return 0;
        return tok_test(&m->tok, NULL, json_object_get_boolean(leaf) ? "true" : "false");
    case FS_SP_EL_CODING:
    case FS_SP_EL_CODEABLE_CONCEPT:
        return is_obj && tok_concept(&m->tok, leaf);
    case FS_SP_EL_IDENTIFIER:
        return is_obj && tok_test(&m->tok, fs_json_get_str(leaf, "system"),
                                  fs_json_get_str(leaf, "value"));
    default:
        return 0;
    }
}

/* ---- reference -------------------------------------------------------------------- */

static int type_name_ok(span_t t)
{
    const char *s;
    if (t.end - t.s < 2 || *t.s < 'A' || *t.s > 'Z') return 0;
    for (s = t.s + 1; s < t.end; ++s) {
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z'))) return 0;
    }
    return 1;
}

/* "Type/id", "http://base/Type/id", either with "/_history/n", or (allow_bare) "id". */
static int ref_parse(refval_t *r, const char *s, int allow_bare)
{
    const char *end = s + strlen(s), *h = strstr(s, "/_history/"), *slash, *t;

    if (h) end = h;
    if (s == end || *s == '#') return 0;
    for (slash = end; slash > s && slash[-1] != '/'; --slash);
    r->id.s = slash;
    r->id.end = end;
    if (slash == end) return 0;
    if (slash == s) {
        r->type.s = r->type.end = end;
        return allow_bare;
    }
    for (t = slash - 1; t > s && t[-1] != '/'; --t);
    r->type.s = t;
    r->type.end = slash - 1;
    return type_name_ok(r->type);
}

static int ref_prepare(mctx_t *m)
{
    const fs_filter_t *f = m->f;
    if (!ref_parse(&m->ref, m->value, 1)) return 0;
    m->want_type = f->sp->target;
    if (f->modifier && fs_sp_type_name_ok(f->modifier)) m->want_type = f->modifier;
    return 1;
}

static int leaf_reference(const mctx_t *m, json_object *leaf, fs_sp_elem_t elem)
{
    const char *ref = fs_json_get_str(leaf, "reference");
    refval_t e;
    if (elem != FS_SP_EL_REFERENCE || !ref || !ref_parse(&e, ref, 0)) return 0;
    if (!span_same(e.id, m->ref.id)) return 0;
    if (m->want_type && !span_is(e.type, m->want_type)) return 0;
    return span_empty(m->ref.type) || span_same(e.type, m->ref.type);
}

/* ---- string ----------------------------------------------------------------------- */

static int str_test(const mctx_t *m, const char *s)
{
    rd_t text, value;
    if (!s) return 0;
    text = rd_str(s, 0);
    value = rd_str(m->value, 1);
    if (has_modifier(m->f, "exact")) return raw_equal(text, value);
    if (has_modifier(m->f, "contains")) return fold_contains(text, value);
    return fold_prefix(text, value);
}

static int str_list_test(const mctx_t *m, json_object *obj, const char *key)
{
    json_object *v;
    apr_size_t i, n;
    if (!json_object_object_get_ex(obj, key, &v)) return 0;
    if (!json_object_is_type(v, json_type_array)) return str_test(m, leaf_str(v));
    n = json_object_array_length(v);
    for (i = 0; i < n; ++i) {
        if (str_test(m, leaf_str(json_object_array_get_idx(v, i)))) return 1;
    }
    return 0;
}

static int leaf_string(const mctx_t *m, json_object *leaf, fs_sp_elem_t elem)
{
    static const char *const NAME_PARTS[] = { "family", "given", "text", "prefix", "suffix",
                                              NULL };
    const char *const *k;
    if (elem != FS_SP_EL_HUMAN_NAME) return str_test(m, leaf_str(leaf));
    if (!json_object_is_type(leaf, json_type_object)) return 0;
    for (k = NAME_PARTS; *k; ++k) {
        if (str_list_test(m, leaf, *k)) return 1;
    }
    return 0;
}

/* ---- date ------------------------------------------------------------------------- */

#define US_MINUTE (60 * APR_USEC_PER_SEC)
#define US_DAY    (86400 * APR_USEC_PER_SEC)

static int num(const char **ps, int n, int *out)
{
    int i, v = 0;
    for (i = 0; i < n; ++i) {
        if ((*ps)[i] < '0' || (*ps)[i] > '9') return 0;
        v = v * 10 + ((*ps)[i] - '0');
    }
    *ps += n;
    *out = v;
    return 1;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm). */
static apr_int64_t days_from_civil(int y, int m, int d)
{
    int era, yoe, doy, doe;
    y -= m <= 2;
    era = (y >= 0 ? y : y - 399) / 400;
    yoe = y - era * 400;
    doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return (apr_int64_t)era * 146097 + doe - 719468;
}

static apr_int64_t day_us(int y, int m, int d)
{
    return days_from_civil(y, m, d) * US_DAY;
}

/* "Z", "+hh:mm", "-hh:mm" or nothing (taken as UTC) -> offset east of UTC. */
static int parse_tz(const char *s, apr_int64_t *poff)
{
    int h, mi, sign;
    *poff = 0;
    if (!*s || !strcmp(s, "Z")) return 1;
    if (*s != '+' && *s != '-') return 0;
    sign = *s++ == '-' ? -1 : 1;
    if (!num(&s, 2, &h) || *s++ != ':' || !num(&s, 2, &mi) || *s) return 0;
    *poff = sign * ((apr_int64_t)h * 60 + mi) * US_MINUTE;
    return 1;
}

/* ":ss[.fff...]" after hh:mm: adds to *pt, narrows *punit to the precision given. */
static const char *parse_seconds(const char *s, apr_int64_t *pt, apr_int64_t *punit)
{
    int sec, digits = 0;
    apr_int64_t frac = 0, unit = APR_USEC_PER_SEC;

    if (*s != ':') return s;
    ++s;
    if (!num(&s, 2, &sec) || sec > 60) return NULL;
    if (*s == '.') {
        if (*++s < '0' || *s > '9') return NULL;
        for (; *s >= '0' && *s <= '9'; ++s) {
            if (++digits > 6) continue;
            frac = frac * 10 + (*s - '0');
            unit /= 10;
        }
        frac *= unit;
    }
    *pt += sec * APR_USEC_PER_SEC + frac;
    *punit = unit;
    return s;
}

/* "Thh:mm[:ss[.f]][tz]" on the day starting at day0. */
static int parse_time(const char *s, apr_int64_t day0, range_t *r)
{
    int h, mi;
    apr_int64_t t, unit = US_MINUTE, off;
    if (*s++ != 'T' || !num(&s, 2, &h) || h > 23 || *s++ != ':' || !num(&s, 2, &mi)
        || mi > 59) {
        return 0;
    }
    t = day0 + ((apr_int64_t)h * 60 + mi) * US_MINUTE;
    if (!(s = parse_seconds(s, &t, &unit)) || !parse_tz(s, &off)) return 0;
    r->lo = t - off;
    r->hi = r->lo + unit;
    return 1;
}

/* A FHIR date, dateTime or instant as the range its precision covers:
 * "2026" the year, "2026-06" the month, "2026-06-01" the day (UTC), "...T10:00" the
 * minute, "...T10:00:05" the second, "...T10:00:05.1" the tenth of a second. */
static int parse_date(const char *s, range_t *r)
{
    int y, mo, d;
    if (!num(&s, 4, &y)) return 0;
    if (!*s) {
        r->lo = day_us(y, 1, 1);
        r->hi = day_us(y + 1, 1, 1);
        return 1;
    }
    if (*s++ != '-' || !num(&s, 2, &mo) || mo < 1 || mo > 12) return 0;
    if (!*s) {
        r->lo = day_us(y, mo, 1);
        r->hi = mo == 12 ? day_us(y + 1, 1, 1) : day_us(y, mo + 1, 1);
        return 1;
    }
    if (*s++ != '-' || !num(&s, 2, &d) || d < 1 || d > 31) return 0;
    if (!*s) {
        r->lo = day_us(y, mo, d);
        r->hi = r->lo + US_DAY;
        return 1;
    }
    return parse_time(s, day_us(y, mo, d), r);
}

/* A Period: a missing start reaches back, a missing end forward, without limit. */
static int parse_period(json_object *p, range_t *r)
{
    const char *start = fs_json_get_str(p, "start"), *end = fs_json_get_str(p, "end");
    range_t a, b;
    if (!start && !end) return 0;
    if ((start && !parse_date(start, &a)) || (end && !parse_date(end, &b))) return 0;
    r->lo = start ? a.lo : INT64_MIN;
    r->hi = end ? b.hi : INT64_MAX;
    return r->lo < r->hi;
}

static int overlaps(range_t a, range_t b)
{
    return a.lo < b.hi && a.hi > b.lo;
}

/* ap: the search range widened on both sides by 10% of its distance from now. */
static int approx(range_t v, range_t r)
{
    apr_int64_t now = apr_time_now();
    apr_int64_t margin = (now > v.lo ? now - v.lo : v.lo - now) / 10;
    v.lo -= margin;
    v.hi += margin;
    return overlaps(v, r);
}

/* v: the search value's range, r: the resource's. FHIR R4 search prefix semantics. */
static int date_test(const char *cmp, range_t v, range_t r)
{
    int eq = r.lo >= v.lo && r.hi <= v.hi;
    if (!cmp || !strcmp(cmp, "eq")) return eq;
    if (!strcmp(cmp, "ne")) return !eq;
    if (!strcmp(cmp, "gt")) return r.hi > v.hi;
    if (!strcmp(cmp, "lt")) return r.lo < v.lo;
    if (!strcmp(cmp, "ge")) return eq || r.hi > v.hi;
    if (!strcmp(cmp, "le")) return eq || r.lo < v.lo;
    if (!strcmp(cmp, "sa")) return r.lo >= v.hi;
    if (!strcmp(cmp, "eb")) return r.hi <= v.lo;
    if (!strcmp(cmp, "ap")) return approx(v, r);
    return 0;
}

static int leaf_date(const mctx_t *m, json_object *leaf, fs_sp_elem_t elem)
{
    range_t r;
    const char *s;
    if (elem == FS_SP_EL_PERIOD) {
        if (!json_object_is_type(leaf, json_type_object) || !parse_period(leaf, &r)) return 0;
    }
    else if (!(s = leaf_str(leaf)) || !parse_date(s, &r)) {
        return 0;
    }
    return date_test(m->f->comparator, m->range, r);
}

/* ---- uri -------------------------------------------------------------------------- */

static int uri_boundary(long c)
{
    return c < 0 || c == '/' || c == '|' || c == '#' || c == '?';
}

static int ends_with_slash(const char *s)
{
    apr_size_t n = strlen(s);
    return n && s[n - 1] == '/';
}

static int leaf_uri(const mctx_t *m, json_object *leaf, fs_sp_elem_t elem)
{
    const char *s = leaf_str(leaf);
    rd_t text, value;
    (void)elem;
    if (!s) return 0;
    text = rd_str(s, 0);
    value = rd_str(m->value, 1);
    common_prefix(&text, &value);
    if (has_modifier(m->f, "below")) {
        return rd_done(&value) && (ends_with_slash(m->value) || uri_boundary(rd_peek(text)));
    }
    if (has_modifier(m->f, "above")) {
        return rd_done(&text) && (ends_with_slash(s) || uri_boundary(rd_peek(value)));
    }
    /* exact; a canonical "url|version" also matches the bare url */
    return rd_done(&value) && (rd_done(&text) || rd_peek(text) == '|');
}

/* ---- filters ---------------------------------------------------------------------- */

static int leaf_present(const mctx_t *m, json_object *leaf, fs_sp_elem_t elem)
{
    (void)m;
    (void)elem;
    return leaf != NULL;
}

static int match_value(const fs_filter_t *f, json_object *res, const char *v)
{
    mctx_t m;
    leaf_fn fn = NULL;

    memset(&m, 0, sizeof(m));
    m.f = f;
    m.value = v;
    switch (f->sp->type) {
    case FS_SP_TOKEN:
        tok_parse(&m.tok, v);
        fn = leaf_token;
        break;
    case FS_SP_REFERENCE:
        if (!ref_prepare(&m)) return 0;
        fn = leaf_reference;
        break;
    case FS_SP_STRING:
        fn = leaf_string;
        break;
    case FS_SP_DATE:
        if (!parse_date(v, &m.range)) return 0;
        fn = leaf_date;
        break;
    case FS_SP_URI:
        fn = leaf_uri;
        break;
    }
    return fn && any_path(res, &m, fn);
}

static int match_missing(const fs_filter_t *f, json_object *res)
{
    mctx_t m;
    int present, i;

    memset(&m, 0, sizeof(m));
    m.f = f;
    present = any_path(res, &m, leaf_present);
    for (i = 0; i < f->values->nelts; ++i) {
        const char *v = APR_ARRAY_IDX(f->values, i, const char *);
        if (!strcmp(v, "true") ? !present : present) return 1;
    }
    return 0;
}

static int resource_is(json_object *res, const char *type)
{
    const char *rt = fs_json_get_str(res, "resourceType");
    return rt && type && !strcmp(rt, type);
}

int fs_match_filter(const fs_filter_t *f, json_object *resource)
{
    int i, any = 0;

    if (!f || !f->sp || !f->values || !resource
        || !json_object_is_type(resource, json_type_object)
        || !resource_is(resource, f->resource_type)) {
        return 0;
    }
    if (has_modifier(f, "missing")) return match_missing(f, resource);
    for (i = 0; i < f->values->nelts && !any; ++i) {
        any = match_value(f, resource, APR_ARRAY_IDX(f->values, i, const char *));
    }
    return has_modifier(f, "not") ? !any : any;
}

int fs_match_filters(const apr_array_header_t *filters, json_object *resource)
{
    int i;
    for (i = 0; filters && i < filters->nelts; ++i) {
        if (!fs_match_filter(APR_ARRAY_IDX(filters, i, const fs_filter_t *), resource)) return 0;
    }
    return 1;
}

/* ---- keys ------------------------------------------------------------------------- */

static void emit_key(const mctx_t *m, const char *v, apr_size_t len)
{
    if (v) m->key_fn(m->key_baton, m->key_type, m->f->sp->name, v, len);
}

static void emit_key_str(const mctx_t *m, const char *v)
{
    if (v) emit_key(m, v, strlen(v));
}

/* The codes tok_concept would test. */
static void concept_keys(const mctx_t *m, json_object *cc)
{
    json_object *codings = fs_json_get_typed(cc, "coding", json_type_array);
    apr_size_t i, n;
    if (!codings) {
        emit_key_str(m, fs_json_get_str(cc, "code"));
        return;
    }
    n = json_object_array_length(codings);
    for (i = 0; i < n; ++i) {
        emit_key_str(m, fs_json_get_str(json_object_array_get_idx(codings, i), "code"));
    }
}

/* What leaf_token and leaf_reference compare: never stops the visit. */
static int leaf_key(const mctx_t *m, json_object *leaf, fs_sp_elem_t elem)
{
    const char *ref;
    refval_t e;
    switch (elem) {
    case FS_SP_EL_CODE:
        emit_key_str(m, leaf_str(leaf));
        break;
    case FS_SP_EL_BOOLEAN:
        if (json_object_is_type(leaf, json_type_boolean)) {
            emit_key_str(m, json_object_get_boolean(leaf) ? "true" : "false");
        }
        break;
    case FS_SP_EL_CODING:
    case FS_SP_EL_CODEABLE_CONCEPT:
        if (json_object_is_type(leaf, json_type_object)) concept_keys(m, leaf);
        break;
    case FS_SP_EL_IDENTIFIER:
        if (json_object_is_type(leaf, json_type_object)) {
            emit_key_str(m, fs_json_get_str(leaf, "value"));
        }
        break;
    case FS_SP_EL_REFERENCE:
        ref = fs_json_get_str(leaf, "reference");
        if (ref && ref_parse(&e, ref, 0)) {
            emit_key(m, e.id.s, (apr_size_t)(e.id.end - e.id.s));
        }
        break;
    default:
        break;
    }
    return 0;
}

void fs_match_resource_keys(json_object *resource, fs_match_key_fn fn, void *baton)
{
    const char *type = fs_json_get_str(resource, "resourceType");
    const fs_sp_t *table;
    apr_size_t i, n;
    fs_filter_t f;
    mctx_t m;

    if (!type || !json_object_is_type(resource, json_type_object)) return;
    memset(&m, 0, sizeof(m));
    memset(&f, 0, sizeof(f));
    m.f = &f;
    m.key_fn = fn;
    m.key_baton = baton;
    m.key_type = type;
    table = fs_sp_table(&n);
    for (i = 0; i < n; ++i) {
        f.sp = &table[i];
        if ((f.sp->type == FS_SP_TOKEN || f.sp->type == FS_SP_REFERENCE)
            && (!strcmp(f.sp->resource_type, type)
                || !strcmp(f.sp->resource_type, FS_SP_ANY_TYPE))) {
            any_path(resource, &m, leaf_key);
        }
    }
}

/* The key of one alternative (a span of v or of the filter's parse), 0 when none. */
static int value_key(const fs_filter_t *f, const char *v, span_t *key)
{
    mctx_t m;
    memset(&m, 0, sizeof(m));
    m.f = f;
    m.value = v;
    if (f->sp->type == FS_SP_TOKEN) {
        tok_parse(&m.tok, v);
        *key = m.tok.code;
        return !span_empty(*key) && !memchr(key->s, '\\', (apr_size_t)(key->end - key->s));
    }
    if (!ref_prepare(&m)) return 0;
    *key = m.ref.id;
    return !span_empty(*key);
}

static int keyable(const fs_filter_t *f)
{
    if (!f || !f->sp || !f->values || f->values->nelts == 0) return 0;
    if (f->sp->type == FS_SP_TOKEN) return f->modifier == NULL;
    return f->sp->type == FS_SP_REFERENCE
           && (!f->modifier || fs_sp_type_name_ok(f->modifier));
}

int fs_match_filter_keys(const fs_filter_t *f, fs_match_key_fn fn, void *baton)
{
    span_t key;
    int i;

    if (!keyable(f)) return 0;
    for (i = 0; i < f->values->nelts; ++i) {
        if (!value_key(f, APR_ARRAY_IDX(f->values, i, const char *), &key)) return 0;
    }
    for (i = 0; i < f->values->nelts; ++i) {
        value_key(f, APR_ARRAY_IDX(f->values, i, const char *), &key);
        fn(baton, f->resource_type, f->sp->name, key.s, (apr_size_t)(key.end - key.s));
    }
    return 1;
}

/* ---- topics ----------------------------------------------------------------------- */

static int result_passes(fs_topic_result_t r)
{
    return r != FS_TOPIC_TEST_FAILS;
}

static int previous_test(const fs_topic_trigger_t *t, const fs_match_change_t *c)
{
    if (c->interaction == FS_INTERACTION_CREATE) return result_passes(t->result_for_create);
    return c->previous && fs_match_filters(t->previous, c->previous);
}

static int current_test(const fs_topic_trigger_t *t, const fs_match_change_t *c)
{
    if (c->interaction == FS_INTERACTION_DELETE) return result_passes(t->result_for_delete);
    return c->current && fs_match_filters(t->current, c->current);
}

static int trigger_applies(const fs_topic_trigger_t *t, const char *type,
                           fs_interaction_t interaction)
{
    return t->resource_type && type && !strcmp(t->resource_type, type)
           && (t->interactions & (int)interaction);
}

static int trigger_fires(const fs_topic_trigger_t *t, const fs_match_change_t *c)
{
    if (!trigger_applies(t, c->resource_type, c->interaction)) return 0;
    if (!t->previous && !t->current) return 1;
    if (!t->previous) return current_test(t, c);
    if (!t->current) return previous_test(t, c);
    if (t->require_both) return previous_test(t, c) && current_test(t, c);
    return previous_test(t, c) || current_test(t, c);
}

static const fs_topic_trigger_t *trigger_at(const fs_topic_t *topic, int i)
{
    return APR_ARRAY_IDX(topic->triggers, i, const fs_topic_trigger_t *);
}

int fs_match_topic(const fs_topic_t *topic, const fs_match_change_t *change)
{
    int i;
    if (!topic || !topic->triggers || !change) return 0;
    for (i = 0; i < topic->triggers->nelts; ++i) {
        if (trigger_fires(trigger_at(topic, i), change)) return 1;
    }
    return 0;
}

static int topic_has_trigger(const fs_topic_t *topic, const char *type,
                             fs_interaction_t interaction, int need_previous)
{
    int i;
    for (i = 0; topic && topic->triggers && i < topic->triggers->nelts; ++i) {
        const fs_topic_trigger_t *t = trigger_at(topic, i);
        if (trigger_applies(t, type, interaction) && (!need_previous || t->previous)) return 1;
    }
    return 0;
}

int fs_topic_needs_previous(const fs_topic_t *topic, const char *resource_type,
                            fs_interaction_t interaction)
{
    if (interaction != FS_INTERACTION_UPDATE && interaction != FS_INTERACTION_DELETE) return 0;
    return topic_has_trigger(topic, resource_type, interaction, 1);
}

/* ---- subscriptions ---------------------------------------------------------------- */

static int classic_type_is(const char *criteria, const char *type)
{
    apr_size_t n;
    if (!criteria || !type) return 0;
    n = strlen(type);
    return !strncmp(criteria, type, n) && (criteria[n] == '\0' || criteria[n] == '?');
}

/* Without the resource body only the id is known: `_id` filters are decided on it. */
static int match_unknown(const fs_filter_t *f, const fs_match_change_t *c)
{
    json_object *stub;
    int ok;
    if (strcmp(f->param, "_id") || !c->id) return 0;
    stub = json_object_new_object();
    json_object_object_add(stub, "resourceType", json_object_new_string(c->resource_type));
    json_object_object_add(stub, "id", json_object_new_string(c->id));
    ok = fs_match_filter(f, stub);
    json_object_put(stub);
    return ok;
}

static int focus_filters(const apr_array_header_t *filters, const fs_match_change_t *c)
{
    json_object *focus = c->interaction == FS_INTERACTION_DELETE ? c->previous : c->current;
    int i;
    for (i = 0; filters && i < filters->nelts; ++i) {
        const fs_filter_t *f = APR_ARRAY_IDX(filters, i, const fs_filter_t *);
        if (focus ? !fs_match_filter(f, focus) : !match_unknown(f, c)) return 0;
    }
    return 1;
}

int fs_match_subscription(const fs_sub_t *sub, const fs_topic_t *topic,
                          const apr_array_header_t *sub_filters,
                          const fs_match_change_t *change)
{
    if (!sub || !change || !change->resource_type) return 0;
    if (sub->shape == FS_SHAPE_CLASSIC) {
        if (!classic_type_is(sub->criteria, change->resource_type)) return 0;
    }
    else if (!topic || (sub->topic && strcmp(sub->topic, topic->url))
             || !fs_match_topic(topic, change)) {
        return 0;
    }
    return focus_filters(sub_filters, change);
}

apr_status_t fs_match_sub_filters(apr_array_header_t **pfilters, apr_pool_t *p,
                                  const fs_sub_t *sub, const char **perr)
{
    const char *type;
    *pfilters = apr_array_make(p, 2, sizeof(fs_filter_t *));
    if (sub->filters_json && *sub->filters_json) {
        return fs_filters_from_json(*pfilters, p, sub->filters_json, perr);
    }
    if (sub->shape == FS_SHAPE_CLASSIC && sub->criteria) {
        return fs_filter_parse_criteria(&type, *pfilters, p, sub->criteria, perr);
    }
    return APR_SUCCESS;
}

static int has_body_filter(const apr_array_header_t *filters, const char *type)
{
    int i;
    for (i = 0; filters && i < filters->nelts; ++i) {
        const fs_filter_t *f = APR_ARRAY_IDX(filters, i, const fs_filter_t *);
        if (!strcmp(f->resource_type, type) && strcmp(f->param, "_id")) return 1;
    }
    return 0;
}

int fs_match_needs_previous(const fs_sub_t *sub, const fs_topic_t *topic,
                            const apr_array_header_t *sub_filters, const char *resource_type,
                            fs_interaction_t interaction)
{
    if (!sub || !resource_type || interaction == FS_INTERACTION_CREATE) return 0;
    if (sub->shape == FS_SHAPE_CLASSIC) {
        if (!classic_type_is(sub->criteria, resource_type)) return 0;
    }
    else {
        if (fs_topic_needs_previous(topic, resource_type, interaction)) return 1;
        if (!topic_has_trigger(topic, resource_type, interaction, 0)) return 0;
    }
    return interaction == FS_INTERACTION_DELETE && has_body_filter(sub_filters, resource_type);
}
