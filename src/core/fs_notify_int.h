/* fs_notify_int.h: what fs_notify.c (the Bundles as json-c trees) shares with
 * fs_notify_text.c (the same Bundles written straight as text), so that both take the
 * same decisions. Not for other callers: use fs_notify.h. */
#ifndef FS_NOTIFY_INT_H
#define FS_NOTIFY_INT_H

#include "fs_notify.h"

/* Whether sub's content level carries focus references and entries (not `empty`)... */
int fs_notify_with_focus(const fs_sub_t *sub);

/* ... and the written resource in them (`full-resource`). */
int fs_notify_with_resource(const fs_sub_t *sub);

/* The events-since-start a Bundle of `type` reports: the highest number it carries
 * for an event-notification with events, else the subscription's counter. */
apr_int64_t fs_notify_events_since(const fs_sub_t *sub, const char *type,
                                   const fs_notify_event_t *events, int nevents);

/* The request method, url and response status of ev's focus entry: those captured,
 * else derived from its interaction. */
void fs_notify_derive_request(apr_pool_t *p, const fs_notify_event_t *ev,
                              const char **pmethod, const char **purl, const char **pstatus);

/* The written resource of ev (owned by p, one reference for the caller), or NULL when
 * there is none to show (no body, a delete, or a body that is not a JSON object:
 * logged as FS00301). */
json_object *fs_notify_event_resource(apr_pool_t *p, const fs_notify_event_t *ev);

#endif
