#include <stdlib.h>
#include <string.h>

#include "nt_msg.h"

/* A message with `extra` more bytes after the payload's NUL. */
static nt_msg_t *msg_alloc(const char *text, size_t len, size_t extra)
{
    nt_msg_t *m = malloc(sizeof(*m) + LWS_PRE + len + 1 + extra);
    if (!m) return NULL;
    m->refs = 1;
    m->len = len;
    m->kind = NT_MSG_OTHER;
    m->sub_id = NULL;
    m->sub_id_copy = NULL;
    m->event_number = 0;
    m->nevents = 0;
    m->recorded = 0;
    memcpy(m->buf + LWS_PRE, text, len);
    m->buf[LWS_PRE + len] = '\0';
    return m;
}

nt_msg_t *nt_msg_new(const char *text, size_t len)
{
    return msg_alloc(text, len, 0);
}

nt_msg_t *nt_msg_new_event(const char *text, size_t len, const char *sub_id)
{
    size_t id_size = strlen(sub_id) + 1;
    nt_msg_t *m = msg_alloc(text, len, id_size);
    char *id;

    if (!m) return NULL;
    id = (char *)m->buf + LWS_PRE + len + 1;
    memcpy(id, sub_id, id_size);
    m->sub_id = id;
    m->kind = NT_MSG_EVENT;
    m->nevents = 1;
    return m;
}

void nt_msg_set_event(nt_msg_t *m, const char *sub_id, apr_int64_t number)
{
    free(m->sub_id_copy);
    m->sub_id = m->sub_id_copy = sub_id ? strdup(sub_id) : NULL;
    m->event_number = number;
    m->kind = NT_MSG_EVENT;
    if (m->nevents < 1) m->nevents = 1;
}

nt_msg_t *nt_msg_ref(nt_msg_t *m)
{
    ++m->refs;
    return m;
}

void nt_msg_unref(nt_msg_t *m)
{
    if (m && --m->refs == 0) {
        free(m->sub_id_copy);
        free(m);
    }
}
