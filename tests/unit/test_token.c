/* Unit tests of the binding token (fs_token) and of random ids (fs_id).
 *
 * Test keys are embedded below (throwaway keys made with openssl for these tests
 * only), so the tests need no openssl binary; files are written to a mkdtemp
 * directory where a test needs a path. Times are fixed, never the wall clock,
 * except where the test is about apr_time_now(). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include <apr_base64.h>
#include <apr_file_io.h>
#include <apr_general.h>
#include <apr_hash.h>
#include <apr_strings.h>
#include <check.h>
#include <jwt.h>

#include "fs_check.h"
#include "../../src/core/fs_id.h"
#include "../../src/core/fs_json.h"
#include "../../src/core/fs_token.h"

/* throwaway test keys */
static const char RSA_A_PRIV[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC0Wh2+saZQhI03\n"
    "/PwiCYosvRR0ZZkIGsCmqD26GfVQ7+7GKU+jXphAnAVFxIsNT3GOWKp0pUe9EwVh\n"
    "ktSLdnGjc1y7jFg0OESpXTTrJEfeZrNiyrdRP5p5eDxoaUTVa/N0+k7sxqD0hncw\n"
    "2GGosYxnz3KWQ/xEftbBRxv7VWlOueQZ4JWmblJVskUT89oS6xzh8NhvfC8kLMSn\n"
    "lMsCMDg8vcUsYMmFwYCxcWb3PBZ9owzR1SDpU2os6NLkkEAjGiD5/YFN7ehhiq+I\n"
    "ZiVzlxUHzKte7dy81rJc2yC/WvOpwpI0WJbhrNyH6eWDIxwGGXrcA7ttYdM3fAAp\n"
    "jVhVoPNtAgMBAAECggEAGLvzMF/0yz4ij/cmLRTZ2mDkGUKFxlLE8RZJwOgmeL8v\n"
    "JAYuYd1rTBEZuAPIfj7S+A648d5pBElDh6o3dBj+ZMhBg4cv4ZmF8SRTSZxkLuAu\n"
    "4fGjSoVKjjYrMradNhfj/7sEb/ydvmtilVRXsGcJNoOA15LjWhF7Km6yK7n/A0jI\n"
    "MShThtDI6S+NFQKcseDLmhomWtCLSljZm2sBcgVyQx8SFUFlqMzYJQquNrkuGx+1\n"
    "EfO4FeDOoNUBXmylpZI+NtZ1ivOgxr1bTfs3rLwnQQ39ZyoHv9Dhm4SxUSAlS4lE\n"
    "oRPCFWGRp/j/RBhT0XukxpRD4tbKQtXoCROlXFDpkQKBgQDj/EoLlrwpLfxtut+2\n"
    "Si7ELji2TvlLFRIGZW7DiHrC+PtBHvEYEVWJ3sqzQF/hrvXTFe5huJz+pBmWkdp4\n"
    "nCCyjBvw+lv/VXKW71YNkXY/QxPs7sN35VTE1Gn7kAklQnNjiLTjIkne9k9U3Kz6\n"
    "IlBfwJiePQFF3IfIEkxrCx54RwKBgQDKg20p0K8XqvG0ILEzQ7zCkvi36sSRfdcR\n"
    "/TQhw5EbPnspWuxc+GUZ+TFgKfJI9teaEjzR1EpJTw6+5xpgleb7GgJ6hpO9r8AV\n"
    "imh0n5klJJ1x2DMVYVgwZfg9+D/22476bILqD0LjxtjoANG7/C6Niwo0HUZRJ3P3\n"
    "aGFw/q6EqwKBgQDhIgjIquBCVfv5K9mwvE60QeSU+yWoZDU5hb68bjC0CoSqyPBR\n"
    "0QREMnK+UiqcxVZRTU3qyBCYUNpH2t3/zkVnq34IGGLyoKGYtN2oZmV7kTTC+wCh\n"
    "jCCKgivqVFEDrzwdJSljRj/mYhry9TwHgg0WkSzkzd9M6rpW8uLtrbw4DwKBgGbF\n"
    "ueGNqT3+n7kFGkhk6OdpxNU5TFZ1oW7cq9cys3I7DC/Zl7g6yrwarYca4n1K3/Gt\n"
    "rbXi4WxAtcAF8mnvyQ/HjFh38YRDK90Cp63/zK1/3nMHAC2qgCHXrdptILD7jZzi\n"
    "8rEr24tSv4NF3ypieZGVbTEzZhsLRZvaGhFI/nIPAoGATrm0yab3wQsvoDk7eqBo\n"
    "xkpDXI39+kLtZgEK2tLEULzAq1y62PvCrpD4vMFDIRVszmZPyiJfk9f+PMU/UCi3\n"
    "wTutIQyzFNU3t2gdN68JFQKaf1DRJBuZpO064T2XpFOrfcHABNPZGPUkpTcIwLuL\n"
    "9y4BtKLeJ3zz8VZP0Bl9JQI=\n"
    "-----END PRIVATE KEY-----\n";

static const char RSA_A_PUB[] =
    "-----BEGIN PUBLIC KEY-----\n"
    "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAtFodvrGmUISNN/z8IgmK\n"
    "LL0UdGWZCBrApqg9uhn1UO/uxilPo16YQJwFRcSLDU9xjliqdKVHvRMFYZLUi3Zx\n"
    "o3Ncu4xYNDhEqV006yRH3mazYsq3UT+aeXg8aGlE1WvzdPpO7Mag9IZ3MNhhqLGM\n"
    "Z89ylkP8RH7WwUcb+1VpTrnkGeCVpm5SVbJFE/PaEusc4fDYb3wvJCzEp5TLAjA4\n"
    "PL3FLGDJhcGAsXFm9zwWfaMM0dUg6VNqLOjS5JBAIxog+f2BTe3oYYqviGYlc5cV\n"
    "B8yrXu3cvNayXNsgv1rzqcKSNFiW4azch+nlgyMcBhl63AO7bWHTN3wAKY1YVaDz\n"
    "bQIDAQAB\n"
    "-----END PUBLIC KEY-----\n";

static const char RSA_B_PUB[] =
    "-----BEGIN PUBLIC KEY-----\n"
    "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA1KOSz6hwI2x6cyjBiU8o\n"
    "A5UzOV2DRQPWpyxuK96hfENRYAP0xyPC+i74x9PXrZ02F2XJNcb4oonBkTQMtHfa\n"
    "KcALMIPjHR0pj2U3/SzKgnFIrTCQAGIOAGsiuE7eGOc8ImEZPf9CnuKCqY2fz56m\n"
    "48TIvd/UVlYKtttd5Tc2xq0Rg022zb0tyt8GnYHUEtq2DUGzzS6RI5Gp7+ahv78E\n"
    "k1uaqLppn8K9mh1Q2V8WP9f2CXPIidZfbxH5RifeliJxnCn8rrg8bTfbTthZW5xt\n"
    "vnItKSk6gWXJKYFgSeZaLTyT92iSzfbyXqBakKq9lU0Col9SiYy2H3dccBJu2A4r\n"
    "tQIDAQAB\n"
    "-----END PUBLIC KEY-----\n";

static const char EC256_PRIV[] =
    "-----BEGIN EC PARAMETERS-----\n"
    "BggqhkjOPQMBBw==\n"
    "-----END EC PARAMETERS-----\n"
    "-----BEGIN EC PRIVATE KEY-----\n"
    "MHcCAQEEIITni83oU6DyC2mi6y+RbMJoAf1VSctnhZLwynkIFsBFoAoGCCqGSM49\n"
    "AwEHoUQDQgAEYiytOCyDuVtocB8A9h4nIUK+hzgTfaNbpp19wyHexfbnFYKWfTrG\n"
    "XXoFxG8QZkzs8eWnbZbUzvgsmSlQDlqQOw==\n"
    "-----END EC PRIVATE KEY-----\n";

static const char EC256_PUB[] =
    "-----BEGIN PUBLIC KEY-----\n"
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEYiytOCyDuVtocB8A9h4nIUK+hzgT\n"
    "faNbpp19wyHexfbnFYKWfTrGXXoFxG8QZkzs8eWnbZbUzvgsmSlQDlqQOw==\n"
    "-----END PUBLIC KEY-----\n";

static const char EC256_OTHER_PUB[] =
    "-----BEGIN PUBLIC KEY-----\n"
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEOdR5j/K4ED5SZn2NhQGQVgUQNIP0\n"
    "JIP3wZZ04vQZOUOdUPtuxYdEai/r6yE8r96HKBfFHi8CZCfPz4AVaia/bA==\n"
    "-----END PUBLIC KEY-----\n";

static const char EC384_PRIV[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIG2AgEAMBAGByqGSM49AgEGBSuBBAAiBIGeMIGbAgEBBDDcjwCstZSxet1F2jcl\n"
    "ijeLOcrU6SGLz0o5jEbkQnrdzmgvfur2gYejK8vjodKPpT6hZANiAARgPUMJY/Hb\n"
    "MPr9q5G3HpycP++vaGFzF42ArHxO0msSlCbpJ0ZxRvw72hpbK2PveULM3L7Mp/PV\n"
    "dgbmQa+snq3RTmUsYw+g7JP6Zl4wdtjhUDPtzcp7XiBcpCfRyn/tjZg=\n"
    "-----END PRIVATE KEY-----\n";

static const char EC384_PUB[] =
    "-----BEGIN PUBLIC KEY-----\n"
    "MHYwEAYHKoZIzj0CAQYFK4EEACIDYgAEYD1DCWPx2zD6/auRtx6cnD/vr2hhcxeN\n"
    "gKx8TtJrEpQm6SdGcUb8O9oaWytj73lCzNy+zKfz1XYG5kGvrJ6t0U5lLGMPoOyT\n"
    "+mZeMHbY4VAz7c3Ke14gXKQn0cp/7Y2Y\n"
    "-----END PUBLIC KEY-----\n";

static const char EC256_ENCRYPTED[] =
    "-----BEGIN ENCRYPTED PRIVATE KEY-----\n"
    "MIHsMFcGCSqGSIb3DQEFDTBKMCkGCSqGSIb3DQEFDDAcBAgaXBXmfC4IIQICCAAw\n"
    "DAYIKoZIhvcNAgkFADAdBglghkgBZQMEAQIEELGN/8knBviTX4j0s9jLoO0EgZDz\n"
    "+WB6Wqf9TTp5Y/QC9WzAPwIUtEsp17I5VLtEePYP75pw8ugptUVJmEZMKjsoaXsI\n"
    "hAxSsnR1GLr6SbUDkRTjOaEZqSg6y4Ty3wWUekUxEKi4DyBGubQbMYeiHuJ4qulm\n"
    "QLJ8r9xOXulJXwq66AURpsm5b37W344whCCvHQCGv3ZxMIe/YEZlrlsnT4oIEUg=\n"
    "-----END ENCRYPTED PRIVATE KEY-----\n";

static const char EC256_ENCRYPTED_LEGACY[] =
    "-----BEGIN EC PRIVATE KEY-----\n"
    "Proc-Type: 4,ENCRYPTED\n"
    "DEK-Info: AES-128-CBC,556772C2CBE61397DF6F53A5AA8906A3\n"
    "\n"
    "Pn37d3B4JfKd+wDGZr5ZYIu56+BhxQMP7G2CSoA/5rMGukR22MEesiFVuZBj73nU\n"
    "Yj+7X8Sp6L22RCRmQ3CoO4m6CnZ3/P1FfriCvWMDZHDVPfTOEk2xwUWGiaY4Z3rs\n"
    "MhQbcJGrpUASvDs4FeMXNbuMqYVqWijqEpsMfoZ2TOA=\n"
    "-----END EC PRIVATE KEY-----\n";

static const char ED25519_PRIV[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MC4CAQAwBQYDK2VwBCIEIK9tif2NzjuXzogtJnU4JKyidr9IBQK3lGOqFg6OuwHc\n"
    "-----END PRIVATE KEY-----\n";

/**************************************************************************************************/
/* fixture and helpers */

#define T_ISSUED  apr_time_from_sec(1700000000)
#define T_NOW     apr_time_from_sec(1700000100)
#define T_EXPIRES apr_time_from_sec(1700000300)

/* exactly 32, 48 and 64 bytes: the HS256, HS384 and HS512 minimums */
#define SECRET32 "k7Qe2Vd9LmX4pR8sT1wY6zB3nC5fH0jA"
#define SECRET48 SECRET32 "Gu2Ki9Ol4Mp7Nq1R"
#define SECRET64 SECRET48 "Ss3Tt6Uv8Wx0Yz5A"

static fs_token_key_t *key_of(fs_token_alg_t alg, fs_token_key_use_t use, const char *bytes)
{
    fs_token_key_t *key = NULL;
    const char *err = NULL;
    apr_status_t rv = fs_token_key_from_bytes(&key, pool, alg, use, (const unsigned char *)bytes,
                                              strlen(bytes), &err);
    ck_assert_msg(rv == APR_SUCCESS && key, "%s key refused: %s", fs_token_alg_name(alg),
                  err ? err : "(no reason)");
    return key;
}

static fs_token_key_t *hs256_sign(void)
{
    return key_of(FS_TOKEN_HS256, FS_TOKEN_KEY_SIGN, SECRET32);
}

static fs_token_key_t *hs256_verify(void)
{
    return key_of(FS_TOKEN_HS256, FS_TOKEN_KEY_VERIFY, SECRET32);
}

static fs_token_claims_t *claims_with(int nids)
{
    fs_token_claims_t *c = apr_pcalloc(pool, sizeof(*c));
    int i;

    c->jti = "0b7e6f1c-2a44-4c1e-9f0d-5d2a7c3b8e11";
    c->user = "alice@example.org";
    c->subscription_ids = apr_array_make(pool, nids, sizeof(const char *));
    for (i = 0; i < nids; ++i) {
        APR_ARRAY_PUSH(c->subscription_ids, const char *) = apr_psprintf(pool, "sub-%d", i);
    }
    c->issued = T_ISSUED;
    c->expires = T_EXPIRES;
    return c;
}

static const char *mint(const fs_token_key_t *key, const fs_token_claims_t *c)
{
    const char *token = NULL;
    ck_assert_int_eq(fs_token_mint(&token, pool, key, c), APR_SUCCESS);
    ck_assert_ptr_nonnull(token);
    return token;
}

#define VERIFIED(key, token, now) verified(key, token, now, __LINE__)
static fs_token_claims_t *verified(const fs_token_key_t *key, const char *token, apr_time_t now,
                                   int line)
{
    fs_token_claims_t *c = NULL;
    fs_token_error_t e = FS_TOKEN_MALFORMED;
    apr_status_t rv = fs_token_verify(&c, &e, pool, key, token, now);

    ck_assert_msg(rv == APR_SUCCESS && e == FS_TOKEN_OK && c,
                  "line %d: token refused (rv %d): %s", line, rv, fs_token_error_reason(e));
    return c;
}

#define REFUSED(key, token, now, want) refused(key, token, now, want, __LINE__)
static void refused(const fs_token_key_t *key, const char *token, apr_time_t now,
                    fs_token_error_t want, int line)
{
    fs_token_claims_t *c = (fs_token_claims_t *)&c;  /* must be reset to NULL */
    fs_token_error_t e = FS_TOKEN_OK;
    apr_status_t rv = fs_token_verify(&c, &e, pool, key, token, now);

    ck_assert_msg(rv == APR_EINVAL, "line %d: expected APR_EINVAL, got %d", line, rv);
    ck_assert_msg(e == want, "line %d: expected %s, got %s", line, fs_token_error_reason(want),
                  fs_token_error_reason(e));
    ck_assert_msg(c == NULL, "line %d: claims returned for a refused token", line);
}

#define KEY_REFUSED(alg, use, bytes, len, part) key_refused(alg, use, bytes, len, part, __LINE__)
static void key_refused(fs_token_alg_t alg, fs_token_key_use_t use, const char *bytes,
                        apr_size_t len, const char *part, int line)
{
    fs_token_key_t *key = (fs_token_key_t *)&key;
    const char *err = NULL;
    apr_status_t rv = fs_token_key_from_bytes(&key, pool, alg, use, (const unsigned char *)bytes,
                                              len, &err);

    ck_assert_msg(rv == APR_EINVAL, "line %d: %s key accepted (rv %d)", line,
                  fs_token_alg_name(alg), rv);
    ck_assert_msg(key == NULL, "line %d: key returned although refused", line);
    ck_assert_msg(err && strstr(err, part), "line %d: reason \"%s\" lacks \"%s\"", line,
                  err ? err : "(null)", part);
}

static const char *b64url(const char *data, apr_size_t len)
{
    char *out = apr_palloc(pool, (apr_size_t)apr_base64_encode_len((int)len)), *s;

    apr_base64_encode(out, data, (int)len);
    for (s = out; *s; ++s) {
        if (*s == '+') *s = '-';
        else if (*s == '/') *s = '_';
        else if (*s == '=') *s = '\0';
    }
    return out;
}

static const char *b64url_str(const char *s)
{
    return b64url(s, strlen(s));
}

static char *b64url_decode(const char *s, apr_size_t len)
{
    char *b64 = apr_pcalloc(pool, len + 4), *out;
    apr_size_t i;

    for (i = 0; i < len; ++i) b64[i] = (s[i] == '-') ? '+' : (s[i] == '_') ? '/' : s[i];
    while (i % 4) b64[i++] = '=';
    out = apr_palloc(pool, (apr_size_t)apr_base64_decode_len(b64) + 1);
    out[apr_base64_decode(out, b64)] = '\0';
    return out;
}

/* Part i (0 header, 1 payload, 2 signature) of a token, decoded for 0 and 1. */
static const char *token_part(const char *token, int i, int decode)
{
    const char *start = token, *end;
    while (i-- > 0) start = strchr(start, '.') + 1;
    end = strchr(start, '.');
    if (!end) end = start + strlen(start);
    return decode ? b64url_decode(start, (apr_size_t)(end - start))
                  : apr_pstrmemdup(pool, start, (apr_size_t)(end - start));
}

/* Sign with libjwt directly, so tests can produce tokens fs_token_mint never would. */
static const char *sign_json(jwt_alg_t alg, const char *key, apr_size_t key_len,
                             const char *claims_json, const char *header_json)
{
    jwt_t *j = NULL;
    char *s;
    const char *token;

    ck_assert_int_eq(jwt_new(&j), 0);
    ck_assert_int_eq(jwt_set_alg(j, alg, (const unsigned char *)key, (int)key_len), 0);
    ck_assert_int_eq(jwt_add_grants_json(j, claims_json), 0);
    if (header_json) ck_assert_int_eq(jwt_add_headers_json(j, header_json), 0);
    s = jwt_encode_str(j);
    ck_assert_ptr_nonnull(s);
    token = apr_pstrdup(pool, s);
    free(s);
    jwt_free(j);
    return token;
}

/* The claims fs_token_mint writes, as an object tests can break. */
static json_object *good_claims(void)
{
    json_object *c = fs_json_pool_own(pool, json_object_new_object());
    json_object *subs = json_object_new_array();

    fs_json_add_str(c, "iss", FS_TOKEN_ISSUER);
    fs_json_add_str(c, "aud", FS_TOKEN_AUDIENCE);
    fs_json_add_str(c, "sub", "alice");
    fs_json_add_str(c, "jti", "grant-1");
    json_object_object_add(c, "iat", json_object_new_int64(apr_time_sec(T_ISSUED)));
    json_object_object_add(c, "exp", json_object_new_int64(apr_time_sec(T_EXPIRES)));
    json_object_array_add(subs, json_object_new_string("sub-a"));
    json_object_array_add(subs, json_object_new_string("sub-b"));
    json_object_object_add(c, "subscriptions", subs);
    return c;
}

/* Replace (raw JSON text) or, with raw NULL, remove a member. */
static void set_raw(json_object *obj, const char *name, const char *raw)
{
    json_object *v = NULL;
    const char *err = NULL;

    if (!raw) {
        json_object_object_del(obj, name);
        return;
    }
    /* wrapped: fs_json_parse (json-c) cannot end a document on a bare number */
    raw = apr_psprintf(pool, "[%s]", raw);
    ck_assert_int_eq(fs_json_parse(&v, pool, raw, strlen(raw), &err), APR_SUCCESS);
    json_object_object_add(obj, name, json_object_get(json_object_array_get_idx(v, 0)));
}

static const char *sign_hs256(json_object *claims)
{
    return sign_json(JWT_ALG_HS256, SECRET32, strlen(SECRET32), fs_json_str(pool, claims), NULL);
}

/* A token with a hand-written header and the given signature part. */
static const char *forge(const char *header_json, json_object *claims, const char *sig)
{
    return apr_pstrcat(pool, b64url_str(header_json), ".",
                       b64url_str(fs_json_str(pool, claims)), ".", sig, NULL);
}

static const char *make_temp_dir(void)
{
    char *dir = apr_pstrdup(pool, "/tmp/fs_token_test.XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    return dir;
}

static const char *write_file(const char *dir, const char *name, const char *data,
                              apr_size_t len)
{
    const char *path = apr_pstrcat(pool, dir, "/", name, NULL);
    FILE *f = fopen(path, "wb");

    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(data, 1, len, f), len);
    ck_assert_int_eq(fclose(f), 0);
    return path;
}

static void remove_dir(const char *dir, const char *const *names)
{
    for (; *names; ++names) {
        const char *path = apr_pstrcat(pool, dir, "/", *names, NULL);
        chmod(path, 0600);
        unlink(path);
    }
    ck_assert_int_eq(rmdir(dir), 0);
}

/**************************************************************************************************/
/* algorithms and reasons */

START_TEST(test_alg_names)
{
    static const char *const names[] = { "HS256", "HS384", "HS512", "RS256", "RS384", "RS512",
                                         "ES256", "ES384", "ES512" };
    static const char *const bad[] = { "none", "None", "NONE", "hs256", "HS256 ", "HS", "",
                                       "PS256", "EdDSA" };
    fs_token_alg_t alg;
    size_t i;

    for (i = 0; i < sizeof(names) / sizeof(names[0]); ++i) {
        alg = (fs_token_alg_t)99;
        ck_assert_int_eq(fs_token_alg_parse(&alg, names[i]), APR_SUCCESS);
        ck_assert_int_eq(alg, (int)i);
        ck_assert_str_eq(fs_token_alg_name(alg), names[i]);
    }
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); ++i) {
        ck_assert_msg(fs_token_alg_parse(&alg, bad[i]) == APR_EINVAL, "\"%s\" accepted", bad[i]);
    }
    ck_assert_int_eq(fs_token_alg_parse(&alg, NULL), APR_EINVAL);
    ck_assert_str_eq(fs_token_alg_name((fs_token_alg_t)42), "unknown");
}
END_TEST

START_TEST(test_error_reasons)
{
    ck_assert_str_eq(fs_token_error_reason(FS_TOKEN_OK), "ok");
    ck_assert_str_eq(fs_token_error_reason(FS_TOKEN_MALFORMED), "malformed-token");
    ck_assert_str_eq(fs_token_error_reason(FS_TOKEN_BAD_ALG), "unexpected-algorithm");
    ck_assert_str_eq(fs_token_error_reason(FS_TOKEN_BAD_SIGNATURE), "invalid-signature");
    ck_assert_str_eq(fs_token_error_reason(FS_TOKEN_EXPIRED), "expired-token");
    ck_assert_str_eq(fs_token_error_reason(FS_TOKEN_NOT_YET_VALID), "token-not-yet-valid");
    ck_assert_str_eq(fs_token_error_reason(FS_TOKEN_BAD_CLAIMS), "invalid-claims");
    ck_assert_str_eq(fs_token_error_reason((fs_token_error_t)77), "invalid-token");
}
END_TEST

/**************************************************************************************************/
/* round trips */

static const struct {
    fs_token_alg_t alg;
    const char *sign_key;
    const char *verify_key;
} ROUNDTRIPS[] = {
    { FS_TOKEN_HS256, SECRET32, SECRET32 },
    { FS_TOKEN_HS384, SECRET48, SECRET48 },
    { FS_TOKEN_HS512, SECRET64, SECRET64 },
    { FS_TOKEN_RS256, RSA_A_PRIV, RSA_A_PUB },
    { FS_TOKEN_RS384, RSA_A_PRIV, RSA_A_PUB },
    { FS_TOKEN_RS512, RSA_A_PRIV, RSA_A_PUB },
    { FS_TOKEN_ES256, EC256_PRIV, EC256_PUB },
    { FS_TOKEN_ES384, EC384_PRIV, EC384_PUB },
};

START_TEST(test_roundtrip)
{
    fs_token_alg_t alg = ROUNDTRIPS[_i].alg;
    fs_token_key_t *sk = key_of(alg, FS_TOKEN_KEY_SIGN, ROUNDTRIPS[_i].sign_key);
    fs_token_key_t *vk = key_of(alg, FS_TOKEN_KEY_VERIFY, ROUNDTRIPS[_i].verify_key);
    fs_token_claims_t *in = claims_with(3), *out;
    const char *token;
    int i;

    in->issued += 123456;   /* sub-second parts are dropped on the wire */
    token = mint(sk, in);
    out = VERIFIED(vk, token, T_NOW);

    ck_assert_int_eq(fs_token_key_alg(vk), alg);
    ck_assert_str_eq(out->jti, in->jti);
    ck_assert_str_eq(out->user, in->user);
    ck_assert_int_eq(out->issued, T_ISSUED);
    ck_assert_int_eq(out->expires, T_EXPIRES);
    ck_assert_int_eq(out->subscription_ids->nelts, 3);
    for (i = 0; i < 3; ++i) {
        ck_assert_str_eq(APR_ARRAY_IDX(out->subscription_ids, i, const char *),
                         APR_ARRAY_IDX(in->subscription_ids, i, const char *));
    }
    /* the wire format is the contract between mod_fhirsub and the notifier */
    ck_assert_str_eq(token_part(token, 0, 1),
                     apr_psprintf(pool, "{\"alg\":\"%s\",\"typ\":\"JWT\"}",
                                  fs_token_alg_name(alg)));
    ck_assert_ptr_nonnull(strstr(token_part(token, 1, 1), "\"iss\":\"mod_fhirsub\""));
    ck_assert_ptr_nonnull(strstr(token_part(token, 1, 1), "\"aud\":\"fhirsub-ws\""));
    ck_assert_ptr_nonnull(strstr(token_part(token, 1, 1), "\"iat\":1700000000"));
    ck_assert_ptr_nonnull(strstr(token_part(token, 1, 1), "\"exp\":1700000300"));
    ck_assert_ptr_nonnull(strstr(token_part(token, 1, 1),
                                 "\"subscriptions\":[\"sub-0\",\"sub-1\",\"sub-2\"]"));
}
END_TEST

START_TEST(test_roundtrip_json_escapes)
{
    fs_token_claims_t *in = claims_with(0), *out;

    in->user = "CN=\"Bob\" \\ O=Ex/ample, \xc3\xa9t\xc3\xa9";
    APR_ARRAY_PUSH(in->subscription_ids, const char *) = "a/b";
    APR_ARRAY_PUSH(in->subscription_ids, const char *) = "\"quoted\"";
    out = VERIFIED(hs256_verify(), mint(hs256_sign(), in), T_NOW);
    ck_assert_str_eq(out->user, in->user);
    ck_assert_int_eq(out->subscription_ids->nelts, 2);
    ck_assert_str_eq(APR_ARRAY_IDX(out->subscription_ids, 0, const char *), "a/b");
    ck_assert_str_eq(APR_ARRAY_IDX(out->subscription_ids, 1, const char *), "\"quoted\"");
}
END_TEST

START_TEST(test_mint_refuses_bad_claims)
{
    fs_token_key_t *key = hs256_sign();
    fs_token_claims_t *c;
    const char *token = "unchanged";

    ck_assert_int_eq(fs_token_mint(&token, pool, key, NULL), APR_EINVAL);
    ck_assert_ptr_null(token);
    c = claims_with(1); c->jti = "";
    ck_assert_int_eq(fs_token_mint(&token, pool, key, c), APR_EINVAL);
    c = claims_with(1); c->user = NULL;
    ck_assert_int_eq(fs_token_mint(&token, pool, key, c), APR_EINVAL);
    c = claims_with(0);
    ck_assert_int_eq(fs_token_mint(&token, pool, key, c), APR_EINVAL);
    c = claims_with(2); APR_ARRAY_IDX(c->subscription_ids, 1, const char *) = "";
    ck_assert_int_eq(fs_token_mint(&token, pool, key, c), APR_EINVAL);
    c = claims_with(1); c->expires = c->issued + apr_time_from_msec(500);
    ck_assert_int_eq(fs_token_mint(&token, pool, key, c), APR_EINVAL);
    ck_assert_ptr_null(token);
    c = claims_with(1);
    ck_assert_int_eq(fs_token_mint(&token, pool, key, c), APR_SUCCESS);
}
END_TEST

START_TEST(test_key_use_enforced)
{
    fs_token_claims_t *c = NULL;
    fs_token_error_t e;
    const char *token = NULL;

    ck_assert_int_eq(fs_token_mint(&token, pool, hs256_verify(), claims_with(1)), APR_EINVAL);
    token = mint(hs256_sign(), claims_with(1));
    ck_assert_int_eq(fs_token_verify(&c, &e, pool, hs256_sign(), token, T_NOW), APR_EINVAL);
    ck_assert_ptr_null(c);
    VERIFIED(hs256_verify(), token, T_NOW);
}
END_TEST

/**************************************************************************************************/
/* time */

START_TEST(test_expiry)
{
    fs_token_key_t *vk = hs256_verify();
    const char *token = mint(hs256_sign(), claims_with(1));

    VERIFIED(vk, token, T_ISSUED);
    VERIFIED(vk, token, T_EXPIRES - 1);                  /* last microsecond */
    REFUSED(vk, token, T_EXPIRES, FS_TOKEN_EXPIRED);     /* exp itself is too late */
    REFUSED(vk, token, T_EXPIRES + apr_time_from_sec(1), FS_TOKEN_EXPIRED);
    REFUSED(vk, token, T_EXPIRES + apr_time_from_sec(86400), FS_TOKEN_EXPIRED);
}
END_TEST

START_TEST(test_expired_against_clock)
{
    fs_token_claims_t *c = claims_with(2);
    apr_time_t now = apr_time_now();

    c->issued = now - apr_time_from_sec(300);
    c->expires = now - apr_time_from_sec(1);
    REFUSED(hs256_verify(), mint(hs256_sign(), c), apr_time_now(), FS_TOKEN_EXPIRED);
    c->expires = now + apr_time_from_sec(60);
    VERIFIED(hs256_verify(), mint(hs256_sign(), c), apr_time_now());
}
END_TEST

START_TEST(test_not_before)
{
    fs_token_key_t *vk = hs256_verify();
    json_object *c = good_claims();
    const char *token;

    json_object_object_add(c, "nbf", json_object_new_int64(apr_time_sec(T_NOW) + 60));
    token = sign_hs256(c);
    REFUSED(vk, token, T_NOW, FS_TOKEN_NOT_YET_VALID);
    REFUSED(vk, token, T_NOW + apr_time_from_sec(60) - 1, FS_TOKEN_NOT_YET_VALID);
    VERIFIED(vk, token, T_NOW + apr_time_from_sec(60));

    json_object_object_add(c, "nbf", json_object_new_int64(apr_time_sec(T_NOW)));
    VERIFIED(vk, sign_hs256(c), T_NOW);
}
END_TEST

/**************************************************************************************************/
/* tampering and forgery */

static const char *tamper_payload(const char *token, const char *from, const char *to)
{
    char *payload = (char *)token_part(token, 1, 1), *at = strstr(payload, from);

    ck_assert_ptr_nonnull(at);
    ck_assert_uint_eq(strlen(from), strlen(to));
    memcpy(at, to, strlen(to));
    return apr_pstrcat(pool, token_part(token, 0, 0), ".", b64url_str(payload), ".",
                       token_part(token, 2, 0), NULL);
}

START_TEST(test_tampered_payload)
{
    fs_token_key_t *vk[2] = { hs256_verify(),
                              key_of(FS_TOKEN_RS256, FS_TOKEN_KEY_VERIFY, RSA_A_PUB) };
    const char *token[2] = {
        mint(hs256_sign(), claims_with(2)),
        mint(key_of(FS_TOKEN_RS256, FS_TOKEN_KEY_SIGN, RSA_A_PRIV), claims_with(2)) };
    int i;

    for (i = 0; i < 2; ++i) {
        VERIFIED(vk[i], token[i], T_NOW);
        REFUSED(vk[i], tamper_payload(token[i], "alice@", "alicf@"), T_NOW,
                FS_TOKEN_BAD_SIGNATURE);
        REFUSED(vk[i], tamper_payload(token[i], "sub-1", "sub-9"), T_NOW, FS_TOKEN_BAD_SIGNATURE);
        REFUSED(vk[i], tamper_payload(token[i], "1700000300", "1900000300"), T_NOW,
                FS_TOKEN_BAD_SIGNATURE);
    }
}
END_TEST

START_TEST(test_tampered_signature)
{
    fs_token_key_t *vk = hs256_verify();
    const char *token = mint(hs256_sign(), claims_with(1));
    const char *other = mint(key_of(FS_TOKEN_HS256, FS_TOKEN_KEY_SIGN, SECRET48), claims_with(1));
    const char *head = apr_pstrcat(pool, token_part(token, 0, 0), ".", token_part(token, 1, 0),
                                   NULL);
    char *sig = apr_pstrdup(pool, token_part(token, 2, 0));

    sig[0] = (sig[0] == 'A') ? 'B' : 'A';   /* first character: all six bits count */
    REFUSED(vk, apr_pstrcat(pool, head, ".", sig, NULL), T_NOW, FS_TOKEN_BAD_SIGNATURE);
    REFUSED(vk, apr_pstrcat(pool, head, ".", NULL), T_NOW, FS_TOKEN_BAD_SIGNATURE);
    REFUSED(vk, apr_pstrcat(pool, head, ".", token_part(other, 2, 0), NULL), T_NOW,
            FS_TOKEN_BAD_SIGNATURE);
    sig[0] = token_part(token, 2, 0)[0];
    sig[strlen(sig) - 2] = '\0';
    REFUSED(vk, apr_pstrcat(pool, head, ".", sig, NULL), T_NOW, FS_TOKEN_BAD_SIGNATURE);
}
END_TEST

START_TEST(test_alg_none_refused)
{
    json_object *c = good_claims();
    const char *none = forge("{\"alg\":\"none\",\"typ\":\"JWT\"}", c, "");
    jwt_t *j = NULL;

    /* the attack is real: libjwt 1.10 on its own accepts it without a key */
    ck_assert_int_eq(jwt_decode(&j, none, NULL, 0), 0);
    jwt_free(j);

    REFUSED(hs256_verify(), none, T_NOW, FS_TOKEN_BAD_ALG);
    REFUSED(key_of(FS_TOKEN_RS256, FS_TOKEN_KEY_VERIFY, RSA_A_PUB), none, T_NOW, FS_TOKEN_BAD_ALG);
    REFUSED(hs256_verify(), forge("{\"alg\":\"none\"}", c, token_part(sign_hs256(c), 2, 0)),
            T_NOW, FS_TOKEN_BAD_ALG);
    REFUSED(hs256_verify(), forge("{\"alg\":\"None\"}", c, ""), T_NOW, FS_TOKEN_BAD_ALG);
    REFUSED(hs256_verify(), forge("{\"typ\":\"JWT\"}", c, ""), T_NOW, FS_TOKEN_BAD_ALG);
    REFUSED(hs256_verify(), forge("{\"alg\":null}", c, ""), T_NOW, FS_TOKEN_BAD_ALG);
    REFUSED(hs256_verify(), forge("{\"alg\":[\"HS256\"]}", c, "x"), T_NOW, FS_TOKEN_BAD_ALG);
    REFUSED(hs256_verify(), forge("{\"alg\":\"hs256\"}", c, "x"), T_NOW, FS_TOKEN_BAD_ALG);
    REFUSED(hs256_verify(), forge("{\"alg\":\"HS256\\u0000\"}", c, "x"), T_NOW, FS_TOKEN_BAD_ALG);
}
END_TEST

START_TEST(test_other_hs_alg_refused)
{
    const char *token = mint(hs256_sign(), claims_with(1));
    fs_token_key_t *hs512 = key_of(FS_TOKEN_HS512, FS_TOKEN_KEY_VERIFY, SECRET64);

    VERIFIED(hs256_verify(), token, T_NOW);
    REFUSED(hs512, token, T_NOW, FS_TOKEN_BAD_ALG);
    /* nor is any other HMAC strength swapped in */
    REFUSED(key_of(FS_TOKEN_HS384, FS_TOKEN_KEY_VERIFY, SECRET48),
            mint(key_of(FS_TOKEN_HS512, FS_TOKEN_KEY_SIGN, SECRET64), claims_with(1)), T_NOW,
            FS_TOKEN_BAD_ALG);
}
END_TEST

START_TEST(test_key_confusion_refused)
{
    fs_token_key_t *rs = key_of(FS_TOKEN_RS256, FS_TOKEN_KEY_VERIFY, RSA_A_PUB);
    json_object *c = good_claims();
    /* the public key is public: the attacker uses its PEM text as HMAC secret */
    const char *forged = sign_json(JWT_ALG_HS256, RSA_A_PUB, strlen(RSA_A_PUB),
                                   fs_json_str(pool, c), NULL);
    jwt_t *j = NULL;

    ck_assert_str_eq(token_part(forged, 0, 1), "{\"alg\":\"HS256\",\"typ\":\"JWT\"}");
    /* libjwt alone follows the token's alg and accepts the forgery */
    ck_assert_int_eq(jwt_decode(&j, forged, (const unsigned char *)RSA_A_PUB,
                                (int)strlen(RSA_A_PUB)), 0);
    jwt_free(j);

    REFUSED(rs, forged, T_NOW, FS_TOKEN_BAD_ALG);
    /* a header still claiming RS256 over the HMAC gets as far as the signature */
    REFUSED(rs, forge("{\"alg\":\"RS256\",\"typ\":\"JWT\"}", c, token_part(forged, 2, 0)), T_NOW,
            FS_TOKEN_BAD_SIGNATURE);
}
END_TEST

START_TEST(test_wrong_key)
{
    fs_token_claims_t *c = claims_with(1);

    REFUSED(key_of(FS_TOKEN_HS256, FS_TOKEN_KEY_VERIFY, "another secret of 32 bytes or more"),
            mint(hs256_sign(), c), T_NOW, FS_TOKEN_BAD_SIGNATURE);
    REFUSED(key_of(FS_TOKEN_RS256, FS_TOKEN_KEY_VERIFY, RSA_B_PUB),
            mint(key_of(FS_TOKEN_RS256, FS_TOKEN_KEY_SIGN, RSA_A_PRIV), c), T_NOW,
            FS_TOKEN_BAD_SIGNATURE);
    REFUSED(key_of(FS_TOKEN_ES256, FS_TOKEN_KEY_VERIFY, EC256_OTHER_PUB),
            mint(key_of(FS_TOKEN_ES256, FS_TOKEN_KEY_SIGN, EC256_PRIV), c), T_NOW,
            FS_TOKEN_BAD_SIGNATURE);
}
END_TEST

START_TEST(test_crit_header_refused)
{
    json_object *c = good_claims();
    const char *token = sign_json(JWT_ALG_HS256, SECRET32, strlen(SECRET32), fs_json_str(pool, c),
                                  "{\"crit\":[\"exp\"]}");
    REFUSED(hs256_verify(), token, T_NOW, FS_TOKEN_MALFORMED);
}
END_TEST

/**************************************************************************************************/
/* claims */

static const struct {
    const char *member;
    const char *raw;              /* NULL: remove the member */
} BAD_CLAIMS[] = {
    { "iss", NULL }, { "iss", "\"someone-else\"" }, { "iss", "[\"mod_fhirsub\"]" },
    { "aud", NULL }, { "aud", "\"fhirsub-ws2\"" }, { "aud", "[\"fhirsub-ws\"]" },
    { "sub", NULL }, { "sub", "\"\"" }, { "sub", "42" },
    { "jti", NULL }, { "jti", "\"\"" }, { "jti", "null" }, { "jti", "{}" },
    { "iat", NULL }, { "iat", "\"1700000000\"" }, { "iat", "1700000000.5" },
    { "exp", NULL }, { "exp", "\"1700000300\"" }, { "exp", "1700000300.0" },
    { "exp", "1.7000003e9" }, { "exp", "true" }, { "exp", "-1" },
    { "exp", "9223372036854775807" },
    { "subscriptions", NULL }, { "subscriptions", "\"sub-a\"" },
    { "subscriptions", "{\"0\":\"sub-a\"}" }, { "subscriptions", "[]" },
    { "subscriptions", "[\"sub-a\",1]" }, { "subscriptions", "[\"sub-a\",\"\"]" },
    { "subscriptions", "[[\"sub-a\"]]" }, { "subscriptions", "[null]" },
    { "nbf", "\"1700000000\"" }, { "nbf", "1700000000.5" },
};

START_TEST(test_bad_claims)
{
    fs_token_key_t *vk = hs256_verify();
    json_object *c = good_claims();
    fs_token_claims_t *out = VERIFIED(vk, sign_hs256(c), T_NOW);   /* the control */

    ck_assert_int_eq(out->subscription_ids->nelts, 2);
    set_raw(c, BAD_CLAIMS[_i].member, BAD_CLAIMS[_i].raw);
    REFUSED(vk, sign_hs256(c), T_NOW, FS_TOKEN_BAD_CLAIMS);
}
END_TEST

/**************************************************************************************************/
/* malformed tokens */

START_TEST(test_garbage_refused)
{
    fs_token_key_t *vk = hs256_verify();
    const char *good = mint(hs256_sign(), claims_with(1));
    const char *h = token_part(good, 0, 0), *pl = token_part(good, 1, 0);
    const char *sig = token_part(good, 2, 0);
    char *big = apr_palloc(pool, 9 * 1024 + 1);
    const char *const garbage[] = {
        "", ".", "..", "...", "a.b", "a.b.c.d", "a.b.c", "eyJ9..", "..sig",
        apr_pstrcat(pool, h, ".", pl, NULL),
        apr_pstrcat(pool, h, ".", pl, ".", sig, ".", NULL),
        apr_pstrcat(pool, h, ".", pl, ".", sig, ".", sig, NULL),
        apr_pstrcat(pool, h, "=.", pl, ".", sig, NULL),
        apr_pstrcat(pool, h, ".", pl, "=.", sig, NULL),
        apr_pstrcat(pool, h, ".", pl, ".", sig, "=", NULL),
        apr_pstrcat(pool, " ", good, NULL),
        apr_pstrcat(pool, good, "\n", NULL),
        apr_pstrcat(pool, "!", h, ".", pl, ".", sig, NULL),
        apr_pstrcat(pool, h, ".", pl, "+/", ".", sig, NULL),
        apr_pstrcat(pool, h, "a.", pl, ".", sig, NULL),       /* 4n+1 characters */
        apr_pstrcat(pool, b64url_str("not json"), ".", pl, ".", sig, NULL),
        apr_pstrcat(pool, b64url_str("[\"HS256\"]"), ".", pl, ".", sig, NULL),
        apr_pstrcat(pool, b64url_str("{\"alg\":\"HS256\",}"), ".", pl, ".", sig, NULL),
        apr_pstrcat(pool, b64url_str("{\"alg\":\"HS256\"} x"), ".", pl, ".", sig, NULL),
        apr_pstrcat(pool, b64url_str("{'alg':'HS256'}"), ".", pl, ".", sig, NULL),
        apr_pstrcat(pool, h, ".", b64url_str("[]"), ".", sig, NULL),
        apr_pstrcat(pool, h, ".", b64url_str("\"claims\""), ".", sig, NULL),
        apr_pstrcat(pool, h, ".", b64url_str("{\"exp\":1,}"), ".", sig, NULL),
        big,
    };
    size_t i;

    memset(big, 'a', 9 * 1024);
    big[9 * 1024] = '\0';
    VERIFIED(vk, good, T_NOW);
    for (i = 0; i < sizeof(garbage) / sizeof(garbage[0]); ++i) {
        fs_token_claims_t *c = NULL;
        fs_token_error_t e = FS_TOKEN_OK;
        ck_assert_msg(fs_token_verify(&c, &e, pool, vk, garbage[i], T_NOW) == APR_EINVAL
                      && e == FS_TOKEN_MALFORMED && !c,
                      "garbage #%zu \"%.60s\" gave %s", i, garbage[i], fs_token_error_reason(e));
    }
    REFUSED(vk, NULL, T_NOW, FS_TOKEN_MALFORMED);
}
END_TEST

START_TEST(test_length_cap)
{
    fs_token_key_t *sk = hs256_sign(), *vk = hs256_verify();
    const char *token = NULL, *last_fit = NULL;
    fs_token_claims_t *c = claims_with(1);

    /* grow a genuine token until it crosses the cap */
    while (!token || strlen(token) <= FS_TOKEN_MAX_LEN) {
        last_fit = token;
        APR_ARRAY_PUSH(c->subscription_ids, const char *) =
            apr_psprintf(pool, "sub-%d", c->subscription_ids->nelts);
        token = mint(sk, c);
    }
    ck_assert_ptr_nonnull(last_fit);
    ck_assert_uint_gt(strlen(last_fit), FS_TOKEN_MAX_LEN - 32);
    VERIFIED(vk, last_fit, T_NOW);
    REFUSED(vk, token, T_NOW, FS_TOKEN_MALFORMED);
}
END_TEST

/**************************************************************************************************/
/* keys */

START_TEST(test_hmac_key_length)
{
    static const struct { fs_token_alg_t alg; const char *secret; } hs[] = {
        { FS_TOKEN_HS256, SECRET32 }, { FS_TOKEN_HS384, SECRET48 }, { FS_TOKEN_HS512, SECRET64 } };
    size_t i, n;

    for (i = 0; i < 3; ++i) {
        n = strlen(hs[i].secret);
        key_of(hs[i].alg, FS_TOKEN_KEY_VERIFY, hs[i].secret);
        KEY_REFUSED(hs[i].alg, FS_TOKEN_KEY_VERIFY, hs[i].secret, n - 1,
                    apr_psprintf(pool, "holds %" APR_SIZE_T_FMT " bytes; %s needs at least %"
                                 APR_SIZE_T_FMT " random bytes",
                                 n - 1, fs_token_alg_name(hs[i].alg), n));
        KEY_REFUSED(hs[i].alg, FS_TOKEN_KEY_SIGN, hs[i].secret, n - 1, "random bytes");
    }
    KEY_REFUSED(FS_TOKEN_HS512, FS_TOKEN_KEY_SIGN, SECRET48, 48, "HS512 needs at least 64");
    KEY_REFUSED(FS_TOKEN_HS256, FS_TOKEN_KEY_VERIFY, "", 0, "holds 0 bytes");
    KEY_REFUSED(FS_TOKEN_HS256, FS_TOKEN_KEY_VERIFY, NULL, 0, "holds 0 bytes");
    /* trailing whitespace does not count */
    KEY_REFUSED(FS_TOKEN_HS256, FS_TOKEN_KEY_VERIFY, SECRET32 "\r\n \t", 31, "holds 31 bytes");
    KEY_REFUSED(FS_TOKEN_HS256, FS_TOKEN_KEY_VERIFY, "0123456789012345678901234567890\r\n \t",
                35, "holds 31 bytes");
}
END_TEST

START_TEST(test_hmac_key_trailing_newline)
{
    /* the stripped key signs exactly like the bare secret */
    fs_token_key_t *sk = key_of(FS_TOKEN_HS256, FS_TOKEN_KEY_SIGN, SECRET32 "\r\n");

    VERIFIED(hs256_verify(), mint(sk, claims_with(1)), T_NOW);
    VERIFIED(key_of(FS_TOKEN_HS256, FS_TOKEN_KEY_VERIFY, SECRET32 "\n\n"),
             mint(hs256_sign(), claims_with(1)), T_NOW);
}
END_TEST

START_TEST(test_hmac_key_not_pem)
{
    KEY_REFUSED(FS_TOKEN_HS256, FS_TOKEN_KEY_VERIFY, RSA_A_PUB, strlen(RSA_A_PUB), "PEM");
    KEY_REFUSED(FS_TOKEN_HS512, FS_TOKEN_KEY_SIGN, RSA_A_PRIV, strlen(RSA_A_PRIV), "PEM");
}
END_TEST

static const struct {
    fs_token_alg_t alg;
    fs_token_key_use_t use;
    const char *pem;
    const char *error;            /* NULL: accepted, else part of the reason */
} PEM_KEYS[] = {
    { FS_TOKEN_RS256, FS_TOKEN_KEY_SIGN,   RSA_A_PRIV, NULL },
    { FS_TOKEN_RS512, FS_TOKEN_KEY_VERIFY, RSA_A_PUB, NULL },
    { FS_TOKEN_ES256, FS_TOKEN_KEY_SIGN,   EC256_PRIV, NULL },   /* after "EC PARAMETERS" */
    { FS_TOKEN_ES256, FS_TOKEN_KEY_VERIFY, EC256_PUB, NULL },
    { FS_TOKEN_ES384, FS_TOKEN_KEY_SIGN,   EC384_PRIV, NULL },   /* PKCS#8 */
    { FS_TOKEN_RS256, FS_TOKEN_KEY_VERIFY, RSA_A_PRIV, "openssl pkey -pubout" },
    { FS_TOKEN_ES256, FS_TOKEN_KEY_VERIFY, EC256_PRIV, "holds a private key" },
    { FS_TOKEN_RS256, FS_TOKEN_KEY_SIGN,   RSA_A_PUB, "holds a public key" },
    { FS_TOKEN_ES256, FS_TOKEN_KEY_SIGN,   EC384_PRIV, "ES256 needs a P-256 key" },
    { FS_TOKEN_ES256, FS_TOKEN_KEY_VERIFY, EC384_PUB, "ES256 needs a P-256 key" },
    { FS_TOKEN_ES384, FS_TOKEN_KEY_VERIFY, EC256_PUB, "ES384 needs a P-384 key" },
    { FS_TOKEN_ES512, FS_TOKEN_KEY_SIGN,   EC256_PRIV, "ES512 needs a P-521 key" },
    { FS_TOKEN_RS256, FS_TOKEN_KEY_VERIFY, EC256_PUB, "holds an EC key; RS256 needs an RSA key" },
    { FS_TOKEN_RS256, FS_TOKEN_KEY_SIGN,   EC256_PRIV, "RS256 needs an RSA key" },
    { FS_TOKEN_ES256, FS_TOKEN_KEY_VERIFY, RSA_A_PUB, "holds an RSA key; ES256 needs an EC key" },
    { FS_TOKEN_ES256, FS_TOKEN_KEY_SIGN,   EC256_ENCRYPTED, "encrypted" },
    { FS_TOKEN_ES256, FS_TOKEN_KEY_SIGN,   EC256_ENCRYPTED_LEGACY, "encrypted" },
    { FS_TOKEN_ES256, FS_TOKEN_KEY_SIGN,   ED25519_PRIV, "neither an RSA nor an EC key" },
    { FS_TOKEN_RS256, FS_TOKEN_KEY_VERIFY, "just some text, no key at all", "no PEM key" },
    { FS_TOKEN_RS256, FS_TOKEN_KEY_SIGN,   "-----BEGIN DSA PRIVATE KEY-----\nMIIB\n"
                                           "-----END DSA PRIVATE KEY-----\n",
                                           "\"DSA PRIVATE KEY\" PEM block" },
    { FS_TOKEN_RS256, FS_TOKEN_KEY_VERIFY, "-----BEGIN CERTIFICATE-----\nMIIB\n"
                                           "-----END CERTIFICATE-----\n", "no PEM key" },
    { FS_TOKEN_RS256, FS_TOKEN_KEY_VERIFY, "-----BEGIN PUBLIC KEY-----\nMI*B\n"
                                           "-----END PUBLIC KEY-----\n", "no PEM key" },
};

START_TEST(test_pem_keys)
{
    const char *pem = PEM_KEYS[_i].pem;

    if (PEM_KEYS[_i].error) {
        KEY_REFUSED(PEM_KEYS[_i].alg, PEM_KEYS[_i].use, pem, strlen(pem), PEM_KEYS[_i].error);
    }
    else {
        key_of(PEM_KEYS[_i].alg, PEM_KEYS[_i].use, pem);
    }
}
END_TEST

START_TEST(test_pem_damaged_refused)
{
    /* the label and the key type survive, the key material does not */
    char *pem = apr_pstrdup(pool, RSA_A_PRIV);
    char *cut = strstr(pem, "\n") + 1 + 64 * 8;

    strcpy(cut, "\n-----END PRIVATE KEY-----\n");
    KEY_REFUSED(FS_TOKEN_RS256, FS_TOKEN_KEY_SIGN, pem, strlen(pem), "cannot sign RS256");
}
END_TEST

START_TEST(test_key_files)
{
    static const char *const names[] = { "hs.key", "rs.pem", "rs.pub", "locked.key", "big.key",
                                         NULL };
    const char *dir = make_temp_dir(), *err = NULL, *path;
    fs_token_key_t *sk = NULL, *vk = NULL;
    char *big;
    apr_status_t rv;

    path = write_file(dir, "hs.key", SECRET32 "\n", strlen(SECRET32) + 1);
    ck_assert_int_eq(fs_token_key_load(&sk, pool, FS_TOKEN_HS256, FS_TOKEN_KEY_SIGN, path, &err),
                     APR_SUCCESS);
    VERIFIED(hs256_verify(), mint(sk, claims_with(1)), T_NOW);

    write_file(dir, "rs.pem", RSA_A_PRIV, strlen(RSA_A_PRIV));
    path = write_file(dir, "rs.pub", RSA_A_PUB, strlen(RSA_A_PUB));
    ck_assert_int_eq(fs_token_key_load(&vk, pool, FS_TOKEN_RS256, FS_TOKEN_KEY_VERIFY, path, &err),
                     APR_SUCCESS);
    path = apr_pstrcat(pool, dir, "/rs.pem", NULL);
    ck_assert_int_eq(fs_token_key_load(&sk, pool, FS_TOKEN_RS256, FS_TOKEN_KEY_SIGN, path, &err),
                     APR_SUCCESS);
    VERIFIED(vk, mint(sk, claims_with(2)), T_NOW);

    /* the reason names the file and the problem */
    rv = fs_token_key_load(&vk, pool, FS_TOKEN_RS256, FS_TOKEN_KEY_VERIFY, path, &err);
    ck_assert_int_eq(rv, APR_EINVAL);
    ck_assert_ptr_null(vk);
    ck_assert_ptr_nonnull(strstr(err, apr_psprintf(pool, "key file %s holds a private key", path)));

    path = apr_pstrcat(pool, dir, "/missing.key", NULL);
    rv = fs_token_key_load(&sk, pool, FS_TOKEN_HS256, FS_TOKEN_KEY_SIGN, path, &err);
    ck_assert(APR_STATUS_IS_ENOENT(rv));
    ck_assert_ptr_null(sk);
    ck_assert_str_eq(err, apr_psprintf(pool, "cannot read key file %s: No such file or directory",
                                       path));

    rv = fs_token_key_load(&sk, pool, FS_TOKEN_HS256, FS_TOKEN_KEY_SIGN, dir, &err);
    ck_assert_int_ne(rv, APR_SUCCESS);
    ck_assert_str_eq(err, apr_psprintf(pool, "cannot use key file %s: not a regular file", dir));

    big = apr_palloc(pool, 65 * 1024);
    memset(big, 'x', 65 * 1024);
    path = write_file(dir, "big.key", big, 65 * 1024);
    rv = fs_token_key_load(&sk, pool, FS_TOKEN_HS256, FS_TOKEN_KEY_SIGN, path, &err);
    ck_assert_int_eq(rv, APR_EINVAL);
    ck_assert_ptr_nonnull(strstr(err, "larger than 64 KiB"));

    if (geteuid() != 0) {   /* root reads mode 000 files anyway */
        path = write_file(dir, "locked.key", SECRET32, strlen(SECRET32));
        ck_assert_int_eq(chmod(path, 0), 0);
        rv = fs_token_key_load(&sk, pool, FS_TOKEN_HS256, FS_TOKEN_KEY_SIGN, path, &err);
        ck_assert(APR_STATUS_IS_EACCES(rv));
        ck_assert_str_eq(err, apr_psprintf(pool, "cannot read key file %s: Permission denied",
                                           path));
    }
    remove_dir(dir, names);
}
END_TEST

/**************************************************************************************************/
/* ids */

/* id is a lowercase 8-4-4-4-12 UUID of that version, RFC 4122 variant, not in seen. */
static void check_uuid(apr_hash_t *seen, const char *id, char version)
{
    int k;

    ck_assert_uint_eq(strlen(id), FS_ID_LEN);
    for (k = 0; k < FS_ID_LEN; ++k) {
        if (k == 8 || k == 13 || k == 18 || k == 23) {
            ck_assert_msg(id[k] == '-', "%s: no dash at %d", id, k);
        }
        else {
            ck_assert_msg(strchr("0123456789abcdef", id[k]) && id[k],
                          "%s: not lowercase hex at %d", id, k);
        }
    }
    ck_assert_msg(id[14] == version, "%s: version nibble is not %c", id, version);
    ck_assert_msg(strchr("89ab", id[19]), "%s: variant is not RFC 4122", id);
    ck_assert_msg(!apr_hash_get(seen, id, APR_HASH_KEY_STRING), "%s: repeated", id);
    apr_hash_set(seen, id, APR_HASH_KEY_STRING, id);
}

START_TEST(test_new_id)
{
    apr_hash_t *seen = apr_hash_make(pool);
    const char *id;
    int i;

    for (i = 0; i < 1000; ++i) {
        ck_assert_int_eq(fs_id_new(&id, pool), APR_SUCCESS);
        check_uuid(seen, id, '4');
    }
    ck_assert_uint_eq(apr_hash_count(seen), 1000);
}
END_TEST

/* Version 7: the millisecond time first (so later ids sort after earlier ones), then
 * random bits (so ids of the same millisecond still differ). */
START_TEST(test_new_ordered_id)
{
    /* 2026-11-23T16:00:00.123Z and 1 ms, 1 s, 1 day later */
    const apr_time_t t0 = APR_INT64_C(1795449600123000);
    const apr_time_t later[] = { t0 + 1000, t0 + APR_USEC_PER_SEC, t0 + APR_INT64_C(86400000000) };
    apr_hash_t *seen = apr_hash_make(pool);
    const char *id, *prev;
    char ms_hex[16];
    int i;

    /* 1795449600123 ms = 0x01a20922b87b: the first 48 bits, dashed after 8 hex digits */
    apr_snprintf(ms_hex, sizeof(ms_hex), "%08" APR_UINT64_T_HEX_FMT "-%04" APR_UINT64_T_HEX_FMT,
                 (apr_uint64_t)(t0 / 1000) >> 16, (apr_uint64_t)(t0 / 1000) & 0xffff);
    ck_assert_str_eq(ms_hex, "01a20922-b87b");
    for (i = 0; i < 1000; ++i) {
        ck_assert_int_eq(fs_id_new_ordered(&id, pool, t0 + 999), APR_SUCCESS);
        check_uuid(seen, id, '7');
        ck_assert_msg(!strncmp(id, ms_hex, 13), "%s: does not start with the time %s", id, ms_hex);
    }
    prev = id;
    for (i = 0; i < (int)(sizeof(later) / sizeof(later[0])); ++i) {
        ck_assert_int_eq(fs_id_new_ordered(&id, pool, later[i]), APR_SUCCESS);
        check_uuid(seen, id, '7');
        ck_assert_msg(strcmp(prev, id) < 0, "%s made later sorts before %s", id, prev);
        prev = id;
    }
}
END_TEST

/**************************************************************************************************/

#define COUNT(a) ((int)(sizeof(a) / sizeof((a)[0])))

static Suite *token_suite(void)
{
    Suite *s = suite_create("fs_token");
    TCase *tc = tcase_create("token");

    tcase_add_checked_fixture(tc, pool_setup, pool_teardown);
    tcase_add_test(tc, test_alg_names);
    tcase_add_test(tc, test_error_reasons);
    tcase_add_loop_test(tc, test_roundtrip, 0, COUNT(ROUNDTRIPS));
    tcase_add_test(tc, test_roundtrip_json_escapes);
    tcase_add_test(tc, test_mint_refuses_bad_claims);
    tcase_add_test(tc, test_key_use_enforced);
    tcase_add_test(tc, test_expiry);
    tcase_add_test(tc, test_expired_against_clock);
    tcase_add_test(tc, test_not_before);
    tcase_add_test(tc, test_tampered_payload);
    tcase_add_test(tc, test_tampered_signature);
    tcase_add_test(tc, test_alg_none_refused);
    tcase_add_test(tc, test_other_hs_alg_refused);
    tcase_add_test(tc, test_key_confusion_refused);
    tcase_add_test(tc, test_wrong_key);
    tcase_add_test(tc, test_crit_header_refused);
    tcase_add_loop_test(tc, test_bad_claims, 0, COUNT(BAD_CLAIMS));
    tcase_add_test(tc, test_garbage_refused);
    tcase_add_test(tc, test_length_cap);
    tcase_add_test(tc, test_hmac_key_length);
    tcase_add_test(tc, test_hmac_key_trailing_newline);
    tcase_add_test(tc, test_hmac_key_not_pem);
    tcase_add_loop_test(tc, test_pem_keys, 0, COUNT(PEM_KEYS));
    tcase_add_test(tc, test_pem_damaged_refused);
    tcase_add_test(tc, test_key_files);
    tcase_add_test(tc, test_new_id);
    tcase_add_test(tc, test_new_ordered_id);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return fs_check_main(token_suite());
}
