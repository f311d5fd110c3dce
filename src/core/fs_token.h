/* fs_token: the websocket binding token, minted by mod_fhirsub for
 * $get-ws-binding-token and verified by fhirsub-notifier on "bind-with-token".
 *
 * The token is a compact JWS (JWT) signed with one configured algorithm and key:
 *   header  {"alg": <configured alg>, "typ": "JWT"}
 *   claims  {"iss": "mod_fhirsub", "aud": "fhirsub-ws", "sub": <user>,
 *            "jti": <grant id>, "iat": <seconds>, "exp": <seconds>,
 *            "subscriptions": ["<Subscription id>", ...]}
 * The token only proves what was granted when it was minted; whether the grant
 * row named by jti still stands (revoked? subscriptions still active and owned
 * by sub?) is for the caller to check in the database.
 *
 * libjwt 1.10 is hidden behind this API: it validates no claims, follows the
 * alg the token itself names, and accepts "alg: none" with an empty key. So the
 * verification here pins the algorithm to the key before libjwt sees the token,
 * checks every claim itself, and keys are checked when they are loaded. */
#ifndef FS_TOKEN_H
#define FS_TOKEN_H

#include <apr_pools.h>
#include <apr_tables.h>
#include <apr_time.h>

#define FS_TOKEN_ISSUER   "mod_fhirsub"
#define FS_TOKEN_AUDIENCE "fhirsub-ws"
/* Longer tokens are refused unread (a token with a few dozen ids is ~2 KiB). */
#define FS_TOKEN_MAX_LEN  8192

/* The JWS algorithms a key may be configured for. There is no "none". */
typedef enum {
    FS_TOKEN_HS256, FS_TOKEN_HS384, FS_TOKEN_HS512,
    FS_TOKEN_RS256, FS_TOKEN_RS384, FS_TOKEN_RS512,
    FS_TOKEN_ES256, FS_TOKEN_ES384, FS_TOKEN_ES512
} fs_token_alg_t;

/* Parse a JWS algorithm name, case-sensitive as in RFC 7518 ("HS256", ...).
 * "none" and anything unknown give APR_EINVAL. */
apr_status_t fs_token_alg_parse(fs_token_alg_t *palg, const char *name);

/* The RFC 7518 name of alg ("HS256", ...); "unknown" for values out of range. */
const char *fs_token_alg_name(fs_token_alg_t alg);

/* What a key is loaded for. HS* secrets serve either purpose, but the use is
 * still fixed at load, so a key can never be used for the other purpose. */
typedef enum {
    FS_TOKEN_KEY_SIGN,    /* mod_fhirsub: mint tokens */
    FS_TOKEN_KEY_VERIFY   /* fhirsub-notifier: verify tokens */
} fs_token_key_use_t;

/* Opaque: algorithm, use and key bytes, allocated from the pool it was loaded in. */
typedef struct fs_token_key_t fs_token_key_t;

/* Load a key for alg and use from a file (at most 64 KiB).
 * HS*: the secret is the file's bytes, trailing CR, LF, space and tab removed.
 *   It must hold at least 32 (HS256), 48 (HS384) or 64 (HS512) bytes and must
 *   not be a PEM file (a PEM key used as HMAC secret is the key-confusion setup).
 * RS* / ES*: a PEM file; ES needs the alg's curve (ES256 P-256, ES384 P-384,
 *   ES512 P-521), RS an RSA key.
 *   SIGN: an unencrypted private key ("PRIVATE KEY", "RSA PRIVATE KEY" or
 *     "EC PRIVATE KEY"); a trial signature proves libjwt can use it. Encrypted
 *     keys are refused: nothing can prompt for a passphrase.
 *   VERIFY: a public key ("PUBLIC KEY" or "RSA PUBLIC KEY"). libjwt 1.10 cannot
 *     verify with a private key, so one is refused with the openssl command
 *     that extracts the public key.
 * On failure returns APR_EINVAL (or the file error) and a sentence naming the
 * path and the problem in *perr, allocated from p. */
apr_status_t fs_token_key_load(fs_token_key_t **pkey, apr_pool_t *p,
                               fs_token_alg_t alg, fs_token_key_use_t use,
                               const char *path, const char **perr);

/* As fs_token_key_load, for key bytes already in memory (copied into p). */
apr_status_t fs_token_key_from_bytes(fs_token_key_t **pkey, apr_pool_t *p,
                                     fs_token_alg_t alg, fs_token_key_use_t use,
                                     const unsigned char *bytes, apr_size_t len,
                                     const char **perr);

/* The algorithm a key was loaded for. */
fs_token_alg_t fs_token_key_alg(const fs_token_key_t *key);

/* What a token grants. Times are whole seconds on the wire: minting drops the
 * sub-second part, verification returns multiples of APR_USEC_PER_SEC. */
typedef struct {
    const char *jti;            /* grant id: names the grant row in the database */
    const char *user;           /* "sub": the principal Apache authenticated */
    apr_array_header_t *subscription_ids; /* const char*: the Subscription ids covered */
    apr_time_t issued;          /* iat */
    apr_time_t expires;         /* exp */
} fs_token_claims_t;

/* Sign claims with a SIGN key: the header and claims shown at the top. jti and
 * user must be non-empty, subscription_ids a non-empty list of non-empty ids and
 * expires later than issued (in whole seconds), else APR_EINVAL. The token
 * is allocated from p. */
apr_status_t fs_token_mint(const char **ptoken, apr_pool_t *p,
                           const fs_token_key_t *key, const fs_token_claims_t *claims);

/* Why a token was refused. */
typedef enum {
    FS_TOKEN_OK = 0,
    FS_TOKEN_MALFORMED,       /* not a compact JWS: size, shape, base64url, JSON */
    FS_TOKEN_BAD_ALG,         /* header alg absent, "none" or not the key's alg */
    FS_TOKEN_BAD_SIGNATURE,   /* signature does not verify with the key */
    FS_TOKEN_EXPIRED,         /* now >= exp */
    FS_TOKEN_NOT_YET_VALID,   /* now < nbf */
    FS_TOKEN_BAD_CLAIMS       /* iss, aud, sub, jti, iat, exp or subscriptions wrong */
} fs_token_error_t;

/* A short stable code for e, fit for a websocket close reason and for logs:
 * "ok", "malformed-token", "unexpected-algorithm", "invalid-signature",
 * "expired-token", "token-not-yet-valid", "invalid-claims". */
const char *fs_token_error_reason(fs_token_error_t e);

/* Verify token with a VERIFY key at time now, in this order:
 *  1. at most FS_TOKEN_MAX_LEN bytes, exactly three dot-separated base64url
 *     parts (no padding), header and payload decoding to JSON objects;
 *  2. the header's "alg" equals the key's alg (so absent, "none" and the
 *     RS->HS key-confusion forgery are refused before libjwt runs), no "crit";
 *  3. jwt_decode with the key, then jwt_get_alg must still be the key's alg;
 *  4. claims, read with json-c from the signed payload since libjwt's getters
 *     hide types: iss and aud (a string, not an array) equal the constants
 *     above, sub and jti non-empty strings, iat and exp integers in
 *     [0, max apr_time_t seconds], "subscriptions" a non-empty array of
 *     non-empty strings, nbf (optional) an integer;
 *  5. times, with no leeway: valid while now < exp and, when nbf is present,
 *     from nbf on (nbf <= now). Tokens live minutes and are minted by hosts
 *     sharing the notifier's database; keep their clocks in sync (NTP).
 * On success *pclaims is allocated from p and *perr is FS_TOKEN_OK. A refused
 * token gives APR_EINVAL with the reason in *perr; APR_ENOMEM when memory ran
 * out. Scratch memory goes to a subpool, so p may be long-lived. */
apr_status_t fs_token_verify(fs_token_claims_t **pclaims, fs_token_error_t *perr,
                             apr_pool_t *p, const fs_token_key_t *key,
                             const char *token, apr_time_t now);

#endif
