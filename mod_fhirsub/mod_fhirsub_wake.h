/* mod_fhirsub_wake: tell fhirsub-notifier that events were recorded, so it reads
 * them at once instead of at its next poll. PostgreSQL needs nothing here (NOTIFY
 * is sent in the recording transaction); with SQLite a UDP datagram naming the
 * subscriptions goes to FhirSubNotifierWakeup. Best effort: a lost datagram only
 * delays delivery until the notifier's poll. */
#ifndef MOD_FHIRSUB_WAKE_H
#define MOD_FHIRSUB_WAKE_H

#include <httpd.h>
#include <apr_tables.h>

#include "mod_fhirsub_config.h"

void fhirsub_wake_notifier(request_rec *r, const fhirsub_dir_conf *c,
                           const apr_array_header_t *sub_ids);

#endif
