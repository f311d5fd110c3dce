#include <apr_thread_cond.h>
#include <apr_thread_mutex.h>

#include "fs_group.h"

/* A thread waiting for its item, on that thread's stack. */
typedef struct waiter {
    struct waiter *next;
    fs_group_fn *fn;
    const void *db;
    void *item;
    int done;
    apr_status_t rv;
} waiter;

struct fs_group_t {
    apr_thread_mutex_t *mutex;     /* guards everything below */
    apr_thread_cond_t *finished;   /* a batch was committed (or failed) */
    waiter *head, *tail;           /* queued, oldest first */
    int leading;                   /* a batch is being written */
    int max_batch;
};

apr_status_t fs_group_create(fs_group_t **pgroup, apr_pool_t *p, int max_batch)
{
    fs_group_t *g = apr_pcalloc(p, sizeof(*g));
    apr_status_t rv;

    *pgroup = NULL;
    g->max_batch = max_batch > 0 ? max_batch : 1;
    if (APR_SUCCESS != (rv = apr_thread_mutex_create(&g->mutex, APR_THREAD_MUTEX_DEFAULT, p))
        || APR_SUCCESS != (rv = apr_thread_cond_create(&g->finished, p))) {
        return rv;
    }
    *pgroup = g;
    return APR_SUCCESS;
}

static void enqueue(fs_group_t *g, waiter *w)
{
    w->next = NULL;
    if (g->tail) g->tail->next = w;
    else g->head = w;
    g->tail = w;
}

/* Take up to max_batch queued waiters like `like` (same fn, same database), oldest
 * first. */
static int take_batch(fs_group_t *g, const waiter *like, waiter **batch)
{
    waiter **link = &g->head, *w;
    int n = 0;

    g->tail = NULL;
    while ((w = *link)) {
        if (w->fn == like->fn && w->db == like->db && n < g->max_batch) {
            *link = w->next;
            batch[n++] = w;
            continue;
        }
        g->tail = w;
        link = &w->next;
    }
    return n;
}

/* Write the batch; each waiter's outcome: the commit's, or after a failure before the
 * commit of a batch of several APR_EAGAIN (each writes its own alone, on its own
 * connection: one bad item or the leader's lost connection costs no other item). */
static void write_batch(fs_store_t *store, apr_pool_t *p, waiter **batch, int n,
                        const waiter *leader)
{
    void **items = apr_palloc(p, sizeof(*items) * (apr_size_t)n);
    apr_status_t rv;
    int i;

    for (i = 0; i < n; ++i) items[i] = batch[i]->item;
    rv = leader->fn(store, p, items, n);
    for (i = 0; i < n; ++i) {
        int shared = rv == APR_SUCCESS || rv == APR_EINCOMPLETE || n == 1;
        batch[i]->rv = shared ? rv : APR_EAGAIN;
    }
}

apr_status_t fs_group_run(fs_group_t *g, fs_group_fn *fn, const void *db,
                          fs_store_t *store, apr_pool_t *p, void *item)
{
    waiter me, **batch;
    int i, n;

    if (!g) return fn(store, p, &item, 1);
    me.fn = fn;
    me.db = db;
    me.item = item;
    me.done = 0;
    me.rv = APR_SUCCESS;
    batch = apr_palloc(p, sizeof(*batch) * (apr_size_t)g->max_batch);
    apr_thread_mutex_lock(g->mutex);
    enqueue(g, &me);
    while (!me.done) {
        if (g->leading) {
            apr_thread_cond_wait(g->finished, g->mutex);
            continue;
        }
        g->leading = 1;
        n = take_batch(g, &me, batch);
        apr_thread_mutex_unlock(g->mutex);
        write_batch(store, p, batch, n, &me);
        apr_thread_mutex_lock(g->mutex);
        for (i = 0; i < n; ++i) batch[i]->done = 1;
        g->leading = 0;
        apr_thread_cond_broadcast(g->finished);
    }
    apr_thread_mutex_unlock(g->mutex);
    if (me.rv == APR_EAGAIN) return fn(store, p, &item, 1);
    return me.rv;
}
