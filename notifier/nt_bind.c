#include <string.h>
#include <apr_lib.h>
#include <apr_strings.h>

#include "fs_json.h"
#include "nt_bind.h"

#define BIND_TEXT "bind-with-token"
#define UNBIND_TEXT "unbind-from-token"

const char *nt_frame_type_name(nt_frame_type_t t)
{
    switch (t) {
    case NT_FRAME_BIND: return BIND_TEXT;
    case NT_FRAME_UNBIND: return UNBIND_TEXT;
    case NT_FRAME_PING: return "ping";
    case NT_FRAME_UNKNOWN: return "unknown";
    default: return "malformed";
    }
}

static void set(nt_frame_t *f, nt_frame_type_t type, const char *token, const char *error)
{
    f->type = type;
    f->token = token;
    f->error = error;
}

static int has_space(const char *s, apr_size_t len)
{
    apr_size_t i;
    for (i = 0; i < len; ++i) {
        if (apr_isspace(s[i]) || !s[i]) return 1;
    }
    return 0;
}

/* prefix (case-insensitive) followed by the end, ':' or whitespace */
static int starts_with_word(const char *s, apr_size_t len, const char *word)
{
    apr_size_t n = strlen(word);
    if (len < n || strncasecmp(s, word, n)) return 0;
    return len == n || s[n] == ':' || apr_isspace(s[n]);
}

static void parse_text(nt_frame_t *f, apr_pool_t *p, const char *s, apr_size_t len)
{
    nt_frame_type_t type;
    const char *word, *tok;
    apr_size_t n;

    if (starts_with_word(s, len, BIND_TEXT)) {
        type = NT_FRAME_BIND;
        word = BIND_TEXT;
    }
    else if (starts_with_word(s, len, UNBIND_TEXT)) {
        type = NT_FRAME_UNBIND;
        word = UNBIND_TEXT;
    }
    else {
        set(f, NT_FRAME_UNKNOWN, NULL, "unsupported message: expected 'bind-with-token "
            "<token>'");
        return;
    }
    n = strlen(word);
    tok = s + n;
    len -= n;
    if (len && *tok == ':') {
        ++tok;
        --len;
    }
    while (len && apr_isspace(*tok)) {
        ++tok;
        --len;
    }
    if (!len) {
        set(f, NT_FRAME_MALFORMED, NULL, apr_psprintf(p, "%s without a token", word));
    }
    else if (has_space(tok, len)) {
        set(f, NT_FRAME_MALFORMED, NULL, apr_psprintf(p, "%s: the token must be one word",
                                                      word));
    }
    else {
        set(f, type, apr_pstrmemdup(p, tok, len), NULL);
    }
}

static void parse_json(nt_frame_t *f, apr_pool_t *p, const char *s, apr_size_t len)
{
    json_object *j = NULL, *payload;
    const char *err = NULL, *type, *token;

    f->json = 1;
    if (APR_SUCCESS != fs_json_parse(&j, p, s, len, &err)) {
        set(f, NT_FRAME_MALFORMED, NULL, apr_psprintf(p, "invalid JSON message: %s",
                                                      err ? err : "parse error"));
        return;
    }
    if (!json_object_is_type(j, json_type_object) || !(type = fs_json_get_str(j, "type"))) {
        set(f, NT_FRAME_UNKNOWN, NULL, "JSON message without a string \"type\"");
        return;
    }
    if (!strcmp(type, "ping")) {
        set(f, NT_FRAME_PING, NULL, NULL);
        return;
    }
    if (strcmp(type, BIND_TEXT) && strcmp(type, UNBIND_TEXT)) {
        set(f, NT_FRAME_UNKNOWN, NULL, apr_psprintf(p, "unsupported message type \"%.64s\"",
                                                    type));
        return;
    }
    payload = fs_json_get_typed(j, "payload", json_type_object);
    token = payload ? fs_json_get_str(payload, "token") : NULL;
    if (!token || !*token) {
        set(f, NT_FRAME_MALFORMED, NULL, apr_psprintf(p, "%s without payload.token", type));
    }
    else if (has_space(token, strlen(token))) {
        set(f, NT_FRAME_MALFORMED, NULL, apr_psprintf(p, "%s: the token must be one word",
                                                      type));
    }
    else {
        set(f, strcmp(type, BIND_TEXT) ? NT_FRAME_UNBIND : NT_FRAME_BIND,
            apr_pstrdup(p, token), NULL);
    }
}

void nt_frame_parse(nt_frame_t *f, apr_pool_t *p, const char *data, apr_size_t len)
{
    memset(f, 0, sizeof(*f));
    while (len && apr_isspace(*data)) {
        ++data;
        --len;
    }
    while (len && apr_isspace(data[len - 1])) --len;
    if (!len) {
        set(f, NT_FRAME_UNKNOWN, NULL, "empty message");
    }
    else if (*data == '{') {
        parse_json(f, p, data, len);
    }
    else if (memchr(data, '\0', len)) {
        set(f, NT_FRAME_MALFORMED, NULL, "NUL byte in a text message");
    }
    else {
        parse_text(f, p, data, len);
    }
}
