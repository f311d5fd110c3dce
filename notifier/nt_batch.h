/* nt_batch: how pending events are grouped into event-notification Bundles (pure;
 * unit-tested in tests/unit/test_bind.c).
 *
 * A subscription's max_count (backport-max-count / R5 maxCount; 0 = unset = 1)
 * bounds the events of one Bundle. Only events already pending are grouped: nothing
 * waits to fill a Bundle. A Bundle is built once and shared by every binding of the
 * subscription, and a binding can only take a Bundle whose events are all above its
 * cursor, so a Bundle never spans a binding's cursor (a "cut"): it ends at the last
 * event numbered at or below a cut when the next one is above it. */
#ifndef NT_BATCH_H
#define NT_BATCH_H

#include <apr.h>

/* How many of numbers[0..n) (ascending event numbers) go into the first Bundle, given
 * max_count and the cursors cuts[0..ncuts): between 1 and max(max_count, 1) when n > 0. */
int nt_batch_len(const apr_int64_t *numbers, int n, apr_int64_t max_count,
                 const apr_int64_t *cuts, int ncuts);

#endif
