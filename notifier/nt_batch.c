#include "nt_batch.h"

/* Whether a cursor lies in [lo, hi): a binding there had lo but not hi. */
static int spans_cut(apr_int64_t lo, apr_int64_t hi, const apr_int64_t *cuts, int ncuts)
{
    int i;
    for (i = 0; i < ncuts; ++i) {
        if (lo <= cuts[i] && cuts[i] < hi) return 1;
    }
    return 0;
}

int nt_batch_len(const apr_int64_t *numbers, int n, apr_int64_t max_count,
                 const apr_int64_t *cuts, int ncuts)
{
    apr_int64_t max = max_count > 1 ? max_count : 1;
    int len = 0;

    while (len < n) {
        ++len;
        if (len >= max || len == n) break;
        if (spans_cut(numbers[len - 1], numbers[len], cuts, ncuts)) break;
    }
    return len;
}
