/* fs_notify_text: the notification Bundles of fs_notify written straight as JSON text,
 * byte for byte what fs_json_str(fs_notify_bundle(...)) gives except for the status
 * entry's fresh urn:uuid (tests/unit/test_notify_text.c compares the two for every
 * shape, content level and type), without a json-c tree per Bundle.
 *
 * Why: the notifier's scan of 10,000 subscriptions matched by one write built and
 * serialised 10,000 json-c trees that differ only in a few values (subscription
 * reference, status, counters, event numbers). A writer writes those values into
 * the text directly and keeps, per change (type/id/version and the captured request,
 * response and body), the JSON of its focus entry after the fullUrl: the resource is
 * parsed and serialised once per writer (one scan job), not once per subscription. */
#ifndef FS_NOTIFY_TEXT_H
#define FS_NOTIFY_TEXT_H

#include <apr_pools.h>
#include <apr_time.h>

#include "fs_notify.h"

typedef struct fs_notify_writer_t fs_notify_writer_t;

/* A writer whose buffer and cache of changes live in p (e.g. one scan job). One thread
 * at a time. */
fs_notify_writer_t *fs_notify_writer_make(apr_pool_t *p);

/* The text of the Bundle fs_notify_bundle(p, sub, type, events, nevents, now) makes,
 * in *ptext (NUL-terminated, the writer's: valid until its next call); returns the
 * length. */
apr_size_t fs_notify_text(fs_notify_writer_t *w, const fs_sub_t *sub, const char *type,
                          const fs_notify_event_t *events, int nevents, apr_time_t now,
                          const char **ptext);

/* s as the characters of a JSON string, escaped exactly as json-c escapes them with
 * JSON_C_TO_STRING_NOSLASHESCAPE (fs_json_str): '"', '\\', \b \f \n \r \t and \u00XX
 * for other control characters; in p. */
const char *fs_notify_json_escape(apr_pool_t *p, const char *s);

#endif
