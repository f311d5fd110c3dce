#include <string.h>
#include <apr_strings.h>

#include "fs_fhir.h"
#include "fs_time.h"
#include "nt_log.h"
#include "nt_prune.h"

/* Rows one statement reads or deletes: keeps every write transaction short, so httpd's
 * recorders never wait long for SQLite's write lock. */
#define NT_PRUNE_BATCH 500
/* Subscriptions read per page. */
#define NT_PRUNE_PAGE 200

typedef struct nt_floor_t {
    apr_int64_t floor;               /* the lowest handshake N noted */
    apr_uint64_t seq;                /* the latest result that carried one */
} nt_floor_t;

struct nt_prune_t {
    apr_pool_t *pool;                /* the pass: held, page pool */
    const nt_config_t *conf;
    nt_floors_t *floors;             /* binds answered meanwhile (the worker's) */
    apr_hash_t *held;                /* sub id -> apr_int64_t* lowest cursor here */
    apr_time_t now;                  /* the limits are computed once per pass */
    int changes_phase;               /* events done; orphaned change rows now */
    apr_pool_t *page_pool;
    apr_array_header_t *page;        /* fs_prune_sub_t; NULL = read the next page */
    int index;                       /* next subscription of page */
    char last_id[FS_FHIR_ID_MAX + 1];/* page cursor */
    fs_prune_mark_t mark;            /* change walk cursor */
    apr_int64_t events, changes;     /* deleted so far */
};

/* ---- binds the service thread may not have applied yet ------------------------------ */

void nt_floors_note(nt_floors_t *f, apr_pool_t *parent, const nt_job_t *bind,
                    apr_uint64_t seq)
{
    int i;

    if (!f->pool && APR_SUCCESS != apr_pool_create(&f->pool, parent)) return;
    if (!f->map) f->map = apr_hash_make(f->pool);
    for (i = 0; bind->subs && i < bind->subs->nelts; ++i) {
        const nt_sub_state_t *st = &APR_ARRAY_IDX(bind->subs, i, nt_sub_state_t);
        nt_floor_t *fl = apr_hash_get(f->map, st->sub_id, APR_HASH_KEY_STRING);
        if (!fl) {
            fl = apr_palloc(f->pool, sizeof(*fl));
            fl->floor = st->sub->events_since_start;
            apr_hash_set(f->map, apr_pstrdup(f->pool, st->sub_id), APR_HASH_KEY_STRING, fl);
        }
        if (st->sub->events_since_start < fl->floor) fl->floor = st->sub->events_since_start;
        fl->seq = seq;
    }
}

void nt_floors_forget(nt_floors_t *f, apr_pool_t *parent, apr_uint64_t seen_seq)
{
    nt_floors_t kept = { NULL, NULL };
    apr_hash_index_t *hi;

    if (!f->map) return;
    /* a fresh pool for what stays: the noted binds do not pile up */
    for (hi = apr_hash_first(NULL, f->map); hi; hi = apr_hash_next(hi)) {
        const nt_floor_t *fl = apr_hash_this_val(hi);
        nt_floor_t *copy;
        if (fl->seq <= seen_seq) continue;
        if (!kept.pool && APR_SUCCESS != apr_pool_create(&kept.pool, parent)) return;
        if (!kept.map) kept.map = apr_hash_make(kept.pool);
        copy = apr_pmemdup(kept.pool, fl, sizeof(*fl));
        apr_hash_set(kept.map, apr_pstrdup(kept.pool, apr_hash_this_key(hi)),
                     APR_HASH_KEY_STRING, copy);
    }
    apr_pool_destroy(f->pool);
    *f = kept;
}

/* ---- the rule ------------------------------------------------------------------------ */

int nt_prune_rule(fs_prune_rule_t *rule, const nt_config_t *conf, const fs_prune_sub_t *sub,
                  int held, apr_int64_t floor, apr_time_t now)
{
    int bound_elsewhere = !held && sub->last_bound > 0
                          && sub->last_bound >= now - conf->prune_bound_grace;

    rule->max_number = held ? floor : APR_INT64_MAX;
    rule->older_ms = conf->event_retention > 0
                     ? fs_time_to_ms(now - conf->event_retention) : 0;
    rule->upto_number = conf->event_retention_count > 0
                        ? sub->events_since_start - conf->event_retention_count : 0;
    if (rule->upto_number < 0) rule->upto_number = 0;
    /* a client there may not have had them: what came after the last delivery stays */
    rule->keep_after_ms = bound_elsewhere ? fs_time_to_ms(sub->last_delivery) : APR_INT64_MAX;
    return rule->max_number > 0 && (rule->older_ms > 0 || rule->upto_number > 0);
}

/* ---- a pass -------------------------------------------------------------------------- */

nt_prune_t *nt_prune_start(apr_pool_t *parent, const nt_config_t *conf, const nt_job_t *job,
                           nt_floors_t *floors)
{
    apr_pool_t *p = NULL;
    nt_prune_t *pr;
    int i;

    if (APR_SUCCESS != apr_pool_create(&p, parent)) return NULL;
    pr = apr_pcalloc(p, sizeof(*pr));
    pr->pool = p;
    pr->conf = conf;
    pr->floors = floors;
    pr->now = apr_time_now();
    pr->held = apr_hash_make(p);
    pr->mark.created_ms = -1;
    for (i = 0; job->items && i < job->items->nelts; ++i) {
        const nt_scan_item_t *it = &APR_ARRAY_IDX(job->items, i, nt_scan_item_t);
        apr_int64_t *floor = apr_pmemdup(p, &it->after, sizeof(it->after));
        apr_hash_set(pr->held, apr_pstrdup(p, it->sub_id), APR_HASH_KEY_STRING, floor);
    }
    apr_pool_create(&pr->page_pool, p);
    return pr;
}

/* Whether sub_id is bound here, and the lowest cursor of its bindings. */
static int held_here(const nt_prune_t *pr, const char *sub_id, apr_int64_t *pfloor)
{
    const apr_int64_t *listed = apr_hash_get(pr->held, sub_id, APR_HASH_KEY_STRING);
    const nt_floor_t *noted = pr->floors->map
                              ? apr_hash_get(pr->floors->map, sub_id, APR_HASH_KEY_STRING)
                              : NULL;
    if (!listed && !noted) return 0;
    *pfloor = listed ? *listed : noted->floor;
    if (noted && noted->floor < *pfloor) *pfloor = noted->floor;
    return 1;
}

/* The next page of subscriptions; none left: on to the change rows. */
static int next_page(nt_prune_t *pr, fs_store_t *store)
{
    int last = pr->page && pr->page->nelts < NT_PRUNE_PAGE;

    apr_pool_clear(pr->page_pool);   /* the page lives there */
    pr->page = NULL;
    if (last) {
        pr->changes_phase = 1;
        return 1;
    }
    if (APR_SUCCESS != fs_store_prune_subs(store, pr->page_pool, pr->last_id, NT_PRUNE_PAGE,
                                           &pr->page)) {
        return -1;
    }
    pr->index = 0;
    if (pr->page->nelts == 0) {
        pr->changes_phase = 1;
        return 1;
    }
    apr_cpystrn(pr->last_id, APR_ARRAY_IDX(pr->page, pr->page->nelts - 1, fs_prune_sub_t).id,
                sizeof(pr->last_id));
    return 1;
}

/* One batch of one subscription's events (subscriptions with nothing to lose are passed
 * over without a statement). */
static int events_step(nt_prune_t *pr, fs_store_t *store)
{
    apr_pool_t *p = NULL;
    int n = 0, rc;

    while (pr->page && pr->index < pr->page->nelts) {
        const fs_prune_sub_t *sub = &APR_ARRAY_IDX(pr->page, pr->index, fs_prune_sub_t);
        apr_int64_t floor = 0;
        fs_prune_rule_t rule;
        int held = held_here(pr, sub->id, &floor);

        if (!nt_prune_rule(&rule, pr->conf, sub, held, floor, pr->now)) {
            ++pr->index;
            continue;
        }
        apr_pool_create(&p, pr->pool);
        rc = fs_store_events_prune(store, p, sub->id, &rule, NT_PRUNE_BATCH, &n) ? -1 : 1;
        apr_pool_destroy(p);
        pr->events += n;
        if (n < NT_PRUNE_BATCH) ++pr->index;   /* else more of it next step */
        return rc;
    }
    return next_page(pr, store);
}

static int changes_step(nt_prune_t *pr, fs_store_t *store)
{
    apr_pool_t *p = NULL;
    int n = 0;
    apr_status_t rv;

    apr_pool_create(&p, pr->pool);
    rv = fs_store_changes_prune(store, p, &pr->mark, NT_PRUNE_BATCH, &n);
    apr_pool_destroy(p);
    if (rv != APR_SUCCESS) return -1;
    pr->changes += n;
    return pr->mark.done ? 0 : 1;
}

int nt_prune_step(nt_prune_t *pr, fs_store_t *store)
{
    return pr->changes_phase ? changes_step(pr, store) : events_step(pr, store);
}

void nt_prune_end(nt_prune_t *pr, int complete)
{
    if (!pr) return;
    if (complete > 0) {
        nt_log(pr->events || pr->changes ? FS_LOG_INFO : FS_LOG_DEBUG,
               "FS20109: retention pass done: %" APR_INT64_T_FMT " event(s) and %"
               APR_INT64_T_FMT " change row(s) deleted", pr->events, pr->changes);
    }
    else if (complete == 0) {
        nt_log(FS_LOG_NOTICE, "FS20110: retention pass interrupted after %" APR_INT64_T_FMT
               " event(s) and %" APR_INT64_T_FMT " change row(s); the next PruneInterval "
               "starts again", pr->events, pr->changes);
    }
    apr_pool_destroy(pr->pool);
}
