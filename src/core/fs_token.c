#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <apr_base64.h>
#include <apr_file_info.h>
#include <apr_file_io.h>
#include <apr_lib.h>
#include <apr_strings.h>
#include <jwt.h>

#include "fs_json.h"
#include "fs_token.h"

/* Key files are small; refuse to slurp a wrongly configured large file. */
#define KEY_FILE_MAX (64 * 1024)

struct fs_token_key_t {
    fs_token_alg_t alg;
    fs_token_key_use_t use;
    const unsigned char *bytes;   /* NUL-terminated copy (PEM scanning needs it) */
    apr_size_t len;               /* without the NUL */
};

/**************************************************************************************************/
/* algorithms */

typedef enum { FAMILY_HMAC, FAMILY_RSA, FAMILY_EC, FAMILY_UNKNOWN } key_family_t;

/* DER encodings (tag, length, value) of the object identifiers naming key types
 * and curves; SubjectPublicKeyInfo, PKCS#8 and SEC1 keys carry them. */
static const unsigned char OID_RSA[] = { 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d,
                                         0x01, 0x01, 0x01 };
static const unsigned char OID_EC[] = { 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01 };
static const unsigned char OID_P256[] = { 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03,
                                          0x01, 0x07 };
static const unsigned char OID_P384[] = { 0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22 };
static const unsigned char OID_P521[] = { 0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x23 };

typedef struct {
    const char *name;
    jwt_alg_t jwt_alg;
    key_family_t family;
    apr_size_t min_secret;        /* HS: as many bytes as the hash (RFC 7518, 3.2) */
    const unsigned char *curve;   /* ES: OID of the curve the alg prescribes */
    apr_size_t curve_len;
    const char *curve_name;
} alg_info_t;

#define CURVE(oid, name) oid, sizeof(oid), name

static const alg_info_t ALGS[] = {
    [FS_TOKEN_HS256] = { "HS256", JWT_ALG_HS256, FAMILY_HMAC, 32, NULL, 0, NULL },
    [FS_TOKEN_HS384] = { "HS384", JWT_ALG_HS384, FAMILY_HMAC, 48, NULL, 0, NULL },
    [FS_TOKEN_HS512] = { "HS512", JWT_ALG_HS512, FAMILY_HMAC, 64, NULL, 0, NULL },
    [FS_TOKEN_RS256] = { "RS256", JWT_ALG_RS256, FAMILY_RSA, 0, NULL, 0, NULL },
    [FS_TOKEN_RS384] = { "RS384", JWT_ALG_RS384, FAMILY_RSA, 0, NULL, 0, NULL },
    [FS_TOKEN_RS512] = { "RS512", JWT_ALG_RS512, FAMILY_RSA, 0, NULL, 0, NULL },
    [FS_TOKEN_ES256] = { "ES256", JWT_ALG_ES256, FAMILY_EC, 0, CURVE(OID_P256, "P-256") },
    [FS_TOKEN_ES384] = { "ES384", JWT_ALG_ES384, FAMILY_EC, 0, CURVE(OID_P384, "P-384") },
    [FS_TOKEN_ES512] = { "ES512", JWT_ALG_ES512, FAMILY_EC, 0, CURVE(OID_P521, "P-521") },
};

#define ALGS_COUNT (sizeof(ALGS) / sizeof(ALGS[0]))

static const alg_info_t *alg_info(fs_token_alg_t alg)
{
    return ((unsigned)alg < ALGS_COUNT) ? &ALGS[alg] : NULL;
}

apr_status_t fs_token_alg_parse(fs_token_alg_t *palg, const char *name)
{
    apr_size_t i;
    for (i = 0; name && i < ALGS_COUNT; ++i) {
        if (!strcmp(name, ALGS[i].name)) {
            *palg = (fs_token_alg_t)i;
            return APR_SUCCESS;
        }
    }
    return APR_EINVAL;
}

const char *fs_token_alg_name(fs_token_alg_t alg)
{
    const alg_info_t *ai = alg_info(alg);
    return ai ? ai->name : "unknown";
}

/* libjwt reports errno values. */
static apr_status_t jwt_rv(int err)
{
    if (!err) return APR_SUCCESS;
    return (err == ENOMEM) ? APR_ENOMEM : APR_EINVAL;
}

/**************************************************************************************************/
/* keys: HMAC secrets */

static apr_size_t trim_trailing_space(const unsigned char *bytes, apr_size_t len)
{
    while (len > 0 && bytes[len - 1] && strchr(" \t\r\n", bytes[len - 1])) --len;
    return len;
}

static apr_status_t check_secret(const alg_info_t *ai, const fs_token_key_t *key,
                                 const char *source, apr_pool_t *p, const char **perr)
{
    if (key->len < ai->min_secret) {
        *perr = apr_psprintf(p, "%s holds %" APR_SIZE_T_FMT " bytes; %s needs at least %"
                             APR_SIZE_T_FMT " random bytes", source, key->len, ai->name,
                             ai->min_secret);
        return APR_EINVAL;
    }
    /* An HMAC keyed with a PEM file is how RS/HS key confusion is set up. */
    if (strstr((const char *)key->bytes, "-----BEGIN ")) {
        *perr = apr_psprintf(p, "%s holds a PEM key; %s needs a secret of random bytes",
                             source, ai->name);
        return APR_EINVAL;
    }
    return APR_SUCCESS;
}

/**************************************************************************************************/
/* keys: PEM */

typedef struct {
    const char *label;            /* e.g. "PUBLIC KEY", "EC PRIVATE KEY" */
    int encrypted;                /* PKCS#8 encrypted or legacy Proc-Type header */
    const unsigned char *der;
    apr_size_t der_len;
} pem_key_t;

static int label_is(const pem_key_t *pk, const char *label)
{
    return !strcmp(pk->label, label);
}

static int has_suffix(const char *s, const char *suffix)
{
    apr_size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcmp(s + n - m, suffix);
}

static apr_status_t pem_body_decode(pem_key_t *pk, apr_pool_t *p,
                                    const char *body, const char *end)
{
    char *b64 = apr_palloc(p, (apr_size_t)(end - body) + 1), *d = b64;
    unsigned char *der;

    for (; body < end; ++body) {
        if (strchr(" \t\r\n", *body)) continue;
        if (!apr_isalnum(*body) && !strchr("+/=", *body)) return APR_EINVAL;
        *d++ = *body;
    }
    *d = '\0';
    der = apr_palloc(p, (apr_size_t)apr_base64_decode_len(b64));
    pk->der_len = (apr_size_t)apr_base64_decode_binary(der, b64);
    pk->der = der;
    return pk->der_len ? APR_SUCCESS : APR_EINVAL;
}

/* The first PEM block whose label ends in "KEY": OpenSSL skips others such as
 * the "EC PARAMETERS" block `openssl ecparam -genkey` writes first. */
static apr_status_t pem_find_key(pem_key_t *pk, apr_pool_t *p, const char *pem)
{
    const char *s = pem, *label, *label_end, *body, *end;

    while ((s = strstr(s, "-----BEGIN "))) {
        label = s + strlen("-----BEGIN ");
        if (!(label_end = strstr(label, "-----"))) break;
        s = label_end + 5;
        pk->label = apr_pstrmemdup(p, label, (apr_size_t)(label_end - label));
        if (!has_suffix(pk->label, "KEY")) continue;

        body = s;
        if (!(end = strstr(body, "-----END "))) break;
        /* PKCS#8 says so in the label, legacy PEM in a "Proc-Type: 4,ENCRYPTED" line */
        pk->encrypted = label_is(pk, "ENCRYPTED PRIVATE KEY")
            || strstr(apr_pstrmemdup(p, body, (apr_size_t)(end - body)), "Proc-Type:");
        return pk->encrypted ? APR_SUCCESS : pem_body_decode(pk, p, body, end);
    }
    return APR_ENOENT;
}

static int der_has(const pem_key_t *pk, const unsigned char *oid, apr_size_t oid_len)
{
    apr_size_t i;
    for (i = 0; i + oid_len <= pk->der_len; ++i) {
        if (!memcmp(pk->der + i, oid, oid_len)) return 1;
    }
    return 0;
}

static key_family_t pem_family(const pem_key_t *pk)
{
    if (label_is(pk, "RSA PRIVATE KEY") || label_is(pk, "RSA PUBLIC KEY")) return FAMILY_RSA;
    if (label_is(pk, "EC PRIVATE KEY")) return FAMILY_EC;
    if (der_has(pk, OID_RSA, sizeof(OID_RSA))) return FAMILY_RSA;
    if (der_has(pk, OID_EC, sizeof(OID_EC))) return FAMILY_EC;
    return FAMILY_UNKNOWN;
}

static apr_status_t check_pem_label(const pem_key_t *pk, const alg_info_t *ai,
                                    fs_token_key_use_t use, const char *source,
                                    const char *path, apr_pool_t *p, const char **perr)
{
    int is_private = label_is(pk, "PRIVATE KEY") || label_is(pk, "RSA PRIVATE KEY")
                     || label_is(pk, "EC PRIVATE KEY");
    int is_public = label_is(pk, "PUBLIC KEY") || label_is(pk, "RSA PUBLIC KEY");

    if (pk->encrypted) {
        *perr = apr_psprintf(p, "%s holds an encrypted private key; nothing can prompt for "
                             "its passphrase: store it unencrypted, readable only by the "
                             "server", source);
    }
    else if (!is_private && !is_public) {
        *perr = apr_psprintf(p, "%s holds a \"%s\" PEM block, which libjwt cannot use; "
                             "%s needs a \"%s\" one", source, pk->label, ai->name,
                             (use == FS_TOKEN_KEY_SIGN) ? "PRIVATE KEY" : "PUBLIC KEY");
    }
    else if (use == FS_TOKEN_KEY_SIGN && !is_private) {
        *perr = apr_psprintf(p, "%s holds a public key; signing %s tokens needs the "
                             "private key", source, ai->name);
    }
    else if (use == FS_TOKEN_KEY_VERIFY && is_private) {
        /* libjwt 1.10.2 fails every verification with a private key PEM (tested) */
        *perr = apr_psprintf(p, "%s holds a private key; libjwt verifies %s only with the "
                             "public key: extract it with 'openssl pkey -pubout -in %s'",
                             source, ai->name, path ? path : "<private key file>");
    }
    else {
        return APR_SUCCESS;
    }
    return APR_EINVAL;
}

static apr_status_t check_pem_family(const pem_key_t *pk, const alg_info_t *ai,
                                     const char *source, apr_pool_t *p, const char **perr)
{
    key_family_t family = pem_family(pk);

    if (family == FAMILY_UNKNOWN) {
        *perr = apr_psprintf(p, "%s holds neither an RSA nor an EC key; %s needs %s key",
                             source, ai->name, (ai->family == FAMILY_RSA) ? "an RSA" : "an EC");
    }
    else if (family != ai->family) {
        *perr = apr_psprintf(p, "%s holds an %s key; %s needs %s key", source,
                             (family == FAMILY_RSA) ? "RSA" : "EC", ai->name,
                             (ai->family == FAMILY_RSA) ? "an RSA" : "an EC");
    }
    else if (family == FAMILY_EC && !der_has(pk, ai->curve, ai->curve_len)) {
        /* libjwt would sign ES384 with a P-256 key without complaint */
        *perr = apr_psprintf(p, "%s holds an EC key on another curve; %s needs a %s key",
                             source, ai->name, ai->curve_name);
    }
    else {
        return APR_SUCCESS;
    }
    return APR_EINVAL;
}

static apr_status_t check_pem(const alg_info_t *ai, const fs_token_key_t *key,
                              const char *source, const char *path, apr_pool_t *p,
                              const char **perr)
{
    pem_key_t pk;
    apr_status_t rv;

    memset(&pk, 0, sizeof(pk));
    if (APR_SUCCESS != (rv = pem_find_key(&pk, p, (const char *)key->bytes))) {
        *perr = apr_psprintf(p, "%s holds no PEM key (-----BEGIN ... KEY-----) that %s "
                             "could use", source, ai->name);
        rv = APR_EINVAL;
        goto leave;
    }
    if (APR_SUCCESS != (rv = check_pem_label(&pk, ai, key->use, source, path, p, perr))) goto leave;
    if (APR_SUCCESS != (rv = check_pem_family(&pk, ai, source, p, perr))) goto leave;
leave:
    return rv;
}

/**************************************************************************************************/
/* keys: loading */

/* Sign a token once, so that an unusable signing key fails at configuration time
 * rather than on the first $get-ws-binding-token. */
static apr_status_t check_can_sign(const fs_token_key_t *key, const char *source,
                                   apr_pool_t *p, const char **perr)
{
    jwt_t *j = NULL;
    char *token = NULL;
    apr_status_t rv;

    if (APR_SUCCESS != (rv = jwt_rv(jwt_new(&j)))) goto leave;
    if (APR_SUCCESS != (rv = jwt_rv(jwt_set_alg(j, ALGS[key->alg].jwt_alg, key->bytes,
                                                 (int)key->len)))) goto leave;
    if (APR_SUCCESS != (rv = jwt_rv(jwt_add_grant(j, "iss", FS_TOKEN_ISSUER)))) goto leave;
    if (!(token = jwt_encode_str(j))) rv = (errno == ENOMEM) ? APR_ENOMEM : APR_EINVAL;
leave:
    if (rv != APR_SUCCESS) {
        *perr = apr_psprintf(p, "%s: libjwt cannot sign %s tokens with it (damaged key?)",
                             source, ALGS[key->alg].name);
    }
    free(token);
    if (j) jwt_free(j);
    return rv;
}

static apr_status_t key_make(fs_token_key_t **pkey, apr_pool_t *p, fs_token_alg_t alg,
                             fs_token_key_use_t use, const unsigned char *bytes,
                             apr_size_t len, const char *path, const char **perr)
{
    const alg_info_t *ai = alg_info(alg);
    const char *source = path ? apr_psprintf(p, "key file %s", path) : "the key";
    fs_token_key_t *key;
    unsigned char *copy;
    apr_status_t rv;

    *pkey = NULL;
    *perr = NULL;
    if (!ai || (use != FS_TOKEN_KEY_SIGN && use != FS_TOKEN_KEY_VERIFY) || (!bytes && len)) {
        *perr = "invalid key algorithm or use";
        rv = APR_EINVAL;
        goto leave;
    }
    key = apr_pcalloc(p, sizeof(*key));
    key->alg = alg;
    key->use = use;
    key->len = (ai->family == FAMILY_HMAC) ? trim_trailing_space(bytes, len) : len;
    copy = apr_palloc(p, key->len + 1);
    if (key->len) memcpy(copy, bytes, key->len);
    copy[key->len] = '\0';
    key->bytes = copy;

    if (ai->family == FAMILY_HMAC) rv = check_secret(ai, key, source, p, perr);
    else rv = check_pem(ai, key, source, path, p, perr);
    if (APR_SUCCESS != rv) goto leave;
    if (use == FS_TOKEN_KEY_SIGN
        && APR_SUCCESS != (rv = check_can_sign(key, source, p, perr))) goto leave;
    *pkey = key;
leave:
    return rv;
}

apr_status_t fs_token_key_from_bytes(fs_token_key_t **pkey, apr_pool_t *p,
                                     fs_token_alg_t alg, fs_token_key_use_t use,
                                     const unsigned char *bytes, apr_size_t len,
                                     const char **perr)
{
    return key_make(pkey, p, alg, use, bytes, len, NULL, perr);
}

static apr_status_t read_key_file(unsigned char **pbytes, apr_size_t *plen, apr_pool_t *p,
                                  const char *path, const char **perr)
{
    apr_file_t *f = NULL;
    apr_finfo_t finfo;
    char ebuf[256];
    apr_status_t rv;

    *pbytes = NULL;
    *plen = 0;
    *perr = NULL;
    if (APR_SUCCESS != (rv = apr_file_open(&f, path, APR_FOPEN_READ | APR_FOPEN_BINARY,
                                           APR_FPROT_OS_DEFAULT, p))) goto leave;
    if (APR_SUCCESS != (rv = apr_file_info_get(&finfo, APR_FINFO_SIZE | APR_FINFO_TYPE, f)))
        goto leave;
    if (finfo.filetype != APR_REG || finfo.size > KEY_FILE_MAX) {
        *perr = apr_psprintf(p, "cannot use key file %s: %s", path,
                             (finfo.filetype != APR_REG) ? "not a regular file"
                             : "larger than 64 KiB");
        rv = APR_EINVAL;
        goto leave;
    }
    *pbytes = apr_palloc(p, (apr_size_t)finfo.size + 1);
    if (finfo.size > 0 && APR_SUCCESS != (rv = apr_file_read_full(
            f, *pbytes, (apr_size_t)finfo.size, plen))) goto leave;
leave:
    if (rv != APR_SUCCESS && !*perr) {
        *perr = apr_psprintf(p, "cannot read key file %s: %s", path,
                             apr_strerror(rv, ebuf, sizeof(ebuf)));
    }
    if (f) apr_file_close(f);
    return rv;
}

apr_status_t fs_token_key_load(fs_token_key_t **pkey, apr_pool_t *p,
                               fs_token_alg_t alg, fs_token_key_use_t use,
                               const char *path, const char **perr)
{
    unsigned char *bytes;
    apr_size_t len;
    apr_status_t rv;

    *pkey = NULL;
    *perr = NULL;
    if (APR_SUCCESS != (rv = read_key_file(&bytes, &len, p, path, perr))) goto leave;
    rv = key_make(pkey, p, alg, use, bytes, len, path, perr);
    memset(bytes, 0, len);  /* key_make kept its own copy */
leave:
    return rv;
}

fs_token_alg_t fs_token_key_alg(const fs_token_key_t *key)
{
    return key->alg;
}

/**************************************************************************************************/
/* minting */

static int claims_mintable(const fs_token_claims_t *c)
{
    int i;

    if (!c || !c->jti || !*c->jti || !c->user || !*c->user) return 0;
    if (!c->subscription_ids || c->subscription_ids->nelts < 1
        || c->subscription_ids->elt_size != sizeof(const char *)) return 0;
    if (c->issued < 0 || apr_time_sec(c->expires) <= apr_time_sec(c->issued)) return 0;
    for (i = 0; i < c->subscription_ids->nelts; ++i) {
        const char *id = APR_ARRAY_IDX(c->subscription_ids, i, const char *);
        if (!id || !*id) return 0;
    }
    return 1;
}

/* {"subscriptions": [...]}, the form jwt_add_grants_json takes. */
static apr_status_t subscriptions_json(const char **pjson, apr_pool_t *p,
                                       const apr_array_header_t *ids)
{
    json_object *obj = fs_json_pool_own(p, json_object_new_object());
    json_object *arr = json_object_new_array();
    int i;

    *pjson = NULL;
    if (!obj || !arr) {
        json_object_put(arr);
        return APR_ENOMEM;
    }
    json_object_object_add(obj, "subscriptions", arr);
    for (i = 0; i < ids->nelts; ++i) {
        json_object_array_add(arr, json_object_new_string(APR_ARRAY_IDX(ids, i, const char *)));
    }
    *pjson = fs_json_str(p, obj);
    return APR_SUCCESS;
}

static apr_status_t add_claims(jwt_t *j, apr_pool_t *p, const fs_token_claims_t *c)
{
    const char *subs;
    apr_status_t rv;

    if (APR_SUCCESS != (rv = jwt_rv(jwt_add_grant(j, "iss", FS_TOKEN_ISSUER)))) goto leave;
    if (APR_SUCCESS != (rv = jwt_rv(jwt_add_grant(j, "aud", FS_TOKEN_AUDIENCE)))) goto leave;
    if (APR_SUCCESS != (rv = jwt_rv(jwt_add_grant(j, "sub", c->user)))) goto leave;
    if (APR_SUCCESS != (rv = jwt_rv(jwt_add_grant(j, "jti", c->jti)))) goto leave;
    if (APR_SUCCESS != (rv = jwt_rv(jwt_add_grant_int(j, "iat", (long)apr_time_sec(c->issued)))))
        goto leave;
    if (APR_SUCCESS != (rv = jwt_rv(jwt_add_grant_int(j, "exp", (long)apr_time_sec(c->expires)))))
        goto leave;
    if (APR_SUCCESS != (rv = subscriptions_json(&subs, p, c->subscription_ids))) goto leave;
    rv = jwt_rv(jwt_add_grants_json(j, subs));
leave:
    return rv;
}

apr_status_t fs_token_mint(const char **ptoken, apr_pool_t *p,
                           const fs_token_key_t *key, const fs_token_claims_t *claims)
{
    jwt_t *j = NULL;
    char *token = NULL;
    apr_status_t rv;

    *ptoken = NULL;
    if (!key || key->use != FS_TOKEN_KEY_SIGN || !claims_mintable(claims)) {
        rv = APR_EINVAL;
        goto leave;
    }
    if (APR_SUCCESS != (rv = jwt_rv(jwt_new(&j)))) goto leave;
    /* libjwt writes the header {"alg": ..., "typ": "JWT"} itself */
    if (APR_SUCCESS != (rv = jwt_rv(jwt_set_alg(j, ALGS[key->alg].jwt_alg, key->bytes,
                                                 (int)key->len)))) goto leave;
    if (APR_SUCCESS != (rv = add_claims(j, p, claims))) goto leave;
    if (!(token = jwt_encode_str(j))) {
        rv = (errno == ENOMEM) ? APR_ENOMEM : APR_EINVAL;
        goto leave;
    }
    *ptoken = apr_pstrdup(p, token);
leave:
    free(token);
    if (j) jwt_free(j);
    return rv;
}

/**************************************************************************************************/
/* verification */

const char *fs_token_error_reason(fs_token_error_t e)
{
    switch (e) {
    case FS_TOKEN_OK:            return "ok";
    case FS_TOKEN_MALFORMED:     return "malformed-token";
    case FS_TOKEN_BAD_ALG:       return "unexpected-algorithm";
    case FS_TOKEN_BAD_SIGNATURE: return "invalid-signature";
    case FS_TOKEN_EXPIRED:       return "expired-token";
    case FS_TOKEN_NOT_YET_VALID: return "token-not-yet-valid";
    case FS_TOKEN_BAD_CLAIMS:    return "invalid-claims";
    }
    return "invalid-token";
}

typedef struct {
    const char *part[3];          /* header, payload, signature (not NUL-terminated) */
    apr_size_t len[3];
} token_parts_t;

static int is_b64url(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
           || c == '-' || c == '_';
}

/* Exactly three dot-separated parts of base64url characters (no padding), header
 * and payload non-empty. */
static apr_status_t token_split(token_parts_t *tp, const char *token)
{
    apr_size_t len, i;
    int dots = 0;

    if (!token) return APR_EINVAL;
    len = strnlen(token, FS_TOKEN_MAX_LEN + 1);
    if (len > FS_TOKEN_MAX_LEN) return APR_EINVAL;
    tp->part[0] = token;
    for (i = 0; i < len; ++i) {
        if (token[i] == '.') {
            if (++dots > 2) return APR_EINVAL;
            tp->len[dots - 1] = (apr_size_t)(token + i - tp->part[dots - 1]);
            tp->part[dots] = token + i + 1;
        }
        else if (!is_b64url(token[i])) {
            return APR_EINVAL;
        }
    }
    if (dots != 2) return APR_EINVAL;
    tp->len[2] = (apr_size_t)(token + len - tp->part[2]);
    return (tp->len[0] && tp->len[1]) ? APR_SUCCESS : APR_EINVAL;
}

/* s holds base64url characters only (token_split checked). */
static apr_status_t b64url_decode(const char **pout, apr_size_t *plen, apr_pool_t *p,
                                  const char *s, apr_size_t len)
{
    apr_size_t i, padded = (len + 3) / 4 * 4;
    char *b64;
    char *out;

    if (len % 4 == 1) return APR_EINVAL;  /* no whole byte in the last group */
    b64 = apr_palloc(p, padded + 1);
    for (i = 0; i < len; ++i) {
        b64[i] = (s[i] == '-') ? '+' : (s[i] == '_') ? '/' : s[i];
    }
    for (; i < padded; ++i) b64[i] = '=';
    b64[padded] = '\0';
    out = apr_palloc(p, (apr_size_t)apr_base64_decode_len(b64) + 1);
    *plen = (apr_size_t)apr_base64_decode(out, b64);
    out[*plen] = '\0';
    *pout = out;
    return APR_SUCCESS;
}

static apr_status_t part_json(json_object **pj, apr_pool_t *p, const char *part,
                              apr_size_t len)
{
    const char *text, *err = NULL;
    apr_size_t text_len;
    apr_status_t rv;

    if (APR_SUCCESS != (rv = b64url_decode(&text, &text_len, p, part, len))) goto leave;
    if (APR_SUCCESS != (rv = fs_json_parse(pj, p, text, text_len, &err))) goto leave;
    if (!json_object_is_type(*pj, json_type_object)) rv = APR_EINVAL;
leave:
    return rv;
}

static apr_status_t check_header(fs_token_error_t *perr, json_object *header,
                                 const fs_token_key_t *key)
{
    const char *want = ALGS[key->alg].name;
    json_object *alg = fs_json_get_typed(header, "alg", json_type_string);

    /* we mint no JWS extensions, so none can be critical (RFC 7515, 4.1.11) */
    if (json_object_object_get_ex(header, "crit", NULL)) {
        *perr = FS_TOKEN_MALFORMED;
        return APR_EINVAL;
    }
    /* Compared, never parsed: "none", absent or another alg cannot match. This
     * runs before libjwt, which would verify with whatever alg the token names. */
    if (!alg || (apr_size_t)json_object_get_string_len(alg) != strlen(want)
        || strcmp(json_object_get_string(alg), want)) {
        *perr = FS_TOKEN_BAD_ALG;
        return APR_EINVAL;
    }
    return APR_SUCCESS;
}

static apr_status_t check_signature(fs_token_error_t *perr, const fs_token_key_t *key,
                                    const char *token)
{
    jwt_t *j = NULL;
    apr_status_t rv;

    if (APR_SUCCESS != (rv = jwt_rv(jwt_decode(&j, token, key->bytes, (int)key->len)))) {
        *perr = FS_TOKEN_BAD_SIGNATURE;
        goto leave;
    }
    /* libjwt chose the algorithm from the token; make sure it chose ours */
    if (jwt_get_alg(j) != ALGS[key->alg].jwt_alg) {
        *perr = FS_TOKEN_BAD_ALG;
        rv = APR_EINVAL;
    }
leave:
    if (j) jwt_free(j);
    return rv;
}

/* An integer claim in seconds as apr_time_t: absent, not an integer (json-c,
 * unlike jwt_get_grant_int, tells "12", 1.5 and 12 apart), negative or beyond
 * apr_time_t give APR_EINVAL. */
static apr_status_t get_seconds(apr_time_t *pt, json_object *payload, const char *name)
{
    apr_int64_t v;

    if (APR_SUCCESS != fs_json_get_int64(payload, name, &v)
        || v < 0 || v > APR_INT64_MAX / APR_USEC_PER_SEC) return APR_EINVAL;
    *pt = apr_time_from_sec(v);
    return APR_SUCCESS;
}

static apr_status_t get_nonempty_str(const char **ps, apr_pool_t *p, json_object *payload,
                                     const char *name)
{
    const char *s = fs_json_get_str(payload, name);

    if (!s || !*s) return APR_EINVAL;
    *ps = apr_pstrdup(p, s);
    return APR_SUCCESS;
}

static apr_status_t get_subscriptions(apr_array_header_t **pids, apr_pool_t *p,
                                      json_object *payload)
{
    json_object *arr = fs_json_get_typed(payload, "subscriptions", json_type_array);
    apr_size_t i, n = arr ? json_object_array_length(arr) : 0;
    apr_array_header_t *ids;

    if (n == 0) return APR_EINVAL;
    ids = apr_array_make(p, (int)n, sizeof(const char *));
    for (i = 0; i < n; ++i) {
        json_object *id = json_object_array_get_idx(arr, i);
        if (!json_object_is_type(id, json_type_string) || !json_object_get_string_len(id)) {
            return APR_EINVAL;
        }
        APR_ARRAY_PUSH(ids, const char *) = apr_pstrdup(p, json_object_get_string(id));
    }
    *pids = ids;
    return APR_SUCCESS;
}

static int str_claim_is(json_object *payload, const char *name, const char *value)
{
    const char *s = fs_json_get_str(payload, name);
    return s && !strcmp(s, value);
}

static apr_status_t read_claims(fs_token_claims_t **pclaims, apr_pool_t *p,
                                json_object *payload)
{
    fs_token_claims_t *c = apr_pcalloc(p, sizeof(*c));
    apr_status_t rv = APR_EINVAL;

    if (!str_claim_is(payload, "iss", FS_TOKEN_ISSUER)) goto leave;
    if (!str_claim_is(payload, "aud", FS_TOKEN_AUDIENCE)) goto leave;
    if (APR_SUCCESS != (rv = get_nonempty_str(&c->user, p, payload, "sub"))) goto leave;
    if (APR_SUCCESS != (rv = get_nonempty_str(&c->jti, p, payload, "jti"))) goto leave;
    if (APR_SUCCESS != (rv = get_seconds(&c->issued, payload, "iat"))) goto leave;
    if (APR_SUCCESS != (rv = get_seconds(&c->expires, payload, "exp"))) goto leave;
    if (APR_SUCCESS != (rv = get_subscriptions(&c->subscription_ids, p, payload))) goto leave;
    *pclaims = c;
leave:
    return rv;
}

static apr_status_t check_times(fs_token_error_t *perr, json_object *payload,
                                const fs_token_claims_t *c, apr_time_t now)
{
    int has_nbf = json_object_object_get_ex(payload, "nbf", NULL);
    apr_time_t nbf = 0;

    if (has_nbf && APR_SUCCESS != get_seconds(&nbf, payload, "nbf")) {
        *perr = FS_TOKEN_BAD_CLAIMS;
    }
    else if (now >= c->expires) {
        *perr = FS_TOKEN_EXPIRED;
    }
    else if (has_nbf && now < nbf) {
        *perr = FS_TOKEN_NOT_YET_VALID;
    }
    else {
        return APR_SUCCESS;
    }
    return APR_EINVAL;
}

apr_status_t fs_token_verify(fs_token_claims_t **pclaims, fs_token_error_t *perr,
                             apr_pool_t *p, const fs_token_key_t *key,
                             const char *token, apr_time_t now)
{
    apr_pool_t *ptemp = NULL;
    token_parts_t tp;
    json_object *header, *payload;
    fs_token_claims_t *claims = NULL;
    apr_status_t rv;

    *pclaims = NULL;
    *perr = FS_TOKEN_BAD_SIGNATURE;
    if (!key || key->use != FS_TOKEN_KEY_VERIFY) {
        rv = APR_EINVAL;
        goto leave;
    }
    if (APR_SUCCESS != (rv = apr_pool_create(&ptemp, p))) goto leave;

    *perr = FS_TOKEN_MALFORMED;
    if (APR_SUCCESS != (rv = token_split(&tp, token))) goto leave;
    if (APR_SUCCESS != (rv = part_json(&header, ptemp, tp.part[0], tp.len[0]))) goto leave;
    if (APR_SUCCESS != (rv = part_json(&payload, ptemp, tp.part[1], tp.len[1]))) goto leave;
    if (APR_SUCCESS != (rv = check_header(perr, header, key))) goto leave;
    if (APR_SUCCESS != (rv = check_signature(perr, key, token))) goto leave;

    *perr = FS_TOKEN_BAD_CLAIMS;
    if (APR_SUCCESS != (rv = read_claims(&claims, p, payload))) goto leave;
    if (APR_SUCCESS != (rv = check_times(perr, payload, claims, now))) goto leave;
    *perr = FS_TOKEN_OK;
    *pclaims = claims;
leave:
    if (ptemp) apr_pool_destroy(ptemp);
    return rv;
}
