/* fs_time: FHIR instant/dateTime text <-> apr_time_t, and the epoch milliseconds
 * the database stores. */
#ifndef FS_TIME_H
#define FS_TIME_H

#include <apr_pools.h>
#include <apr_time.h>

/* "2026-06-01T11:30:05.123Z" (UTC, millisecond precision). */
const char *fs_time_instant(apr_pool_t *p, apr_time_t t);

/* Parse a FHIR instant or dateTime with time and zone (YYYY-MM-DDThh:mm:ss[.fff](Z|+hh:mm)),
 * or a date-only value (taken as 00:00:00Z). APR_EINVAL when malformed. */
apr_status_t fs_time_parse(apr_time_t *pt, const char *text);

/* Milliseconds since the epoch, as stored in the database. */
apr_int64_t fs_time_to_ms(apr_time_t t);
apr_time_t fs_time_from_ms(apr_int64_t ms);

#endif
