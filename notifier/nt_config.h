/* nt_config: fhirsub-notifier's configuration: defaults, the config file
 * ("Key value" lines, '#' comments, keys case-insensitive), command-line overrides
 * and the checks made before anything starts. docs/NOTIFIER.md lists every key. */
#ifndef NT_CONFIG_H
#define NT_CONFIG_H

#include <apr_pools.h>
#include <apr_time.h>

#include "fs_log.h"
#include "fs_token.h"

/* The build sets it to $(sysconfdir)/fhirsub/fhirsub-notifier.conf. */
#ifndef NT_DEFAULT_CONFIG_FILE
#define NT_DEFAULT_CONFIG_FILE "/etc/fhirsub/fhirsub-notifier.conf"
#endif

/* Where GET /healthz and /metrics are answered (MetricsListen). */
typedef enum {
    NT_METRICS_WEBSOCKET,              /* on the websocket listener (default) */
    NT_METRICS_OFF,                    /* nowhere ("none") */
    NT_METRICS_OWN                     /* on a listener of their own, plain HTTP */
} nt_metrics_where_t;

typedef struct nt_config_t {
    const char *file;                  /* the config file read, NULL = none */
    const char *listen_host;           /* Listen: interface address (127.0.0.1) */
    int listen_port;                   /* Listen: TCP port (8091) */
    const char *path;                  /* WebSocketPath: URL path served (/ws/subscriptions-r4) */
    const char *tls_cert;              /* TLSCertificate: PEM file, NULL = plain ws */
    const char *tls_key;               /* TLSKey: PEM private key of TLSCertificate */
    const char *db_driver;             /* DBDriver: sqlite3 | pgsql (required) */
    const char *db_params;             /* DBParams: as httpd's mod_dbd (required) */
    const char *token_alg_name;        /* TokenKey: algorithm (required) ... */
    const char *token_key_file;        /* ... and verification key file */
    const fs_token_key_t *key;         /* the loaded key (nt_config_finish) */
    const char *wake_host;             /* WakeListen: UDP address for wake-ups, NULL = none */
    int wake_port;                     /* WakeListen: UDP port */
    apr_interval_time_t poll_interval; /* PollInterval: fallback scan period (2 s; pgsql 30 s) */
    apr_interval_time_t revalidate_interval; /* RevalidateInterval: re-check bindings (30 s) */
    apr_interval_time_t bind_timeout;  /* BindTimeout: close connections without binding (60 s) */
    apr_interval_time_t expire_unbound;/* ExpireUnbound: delete unbound subscriptions (1 day), 0 = never */
    int expire_unbound_shape;          /* ExpireUnboundShapes: FS_SHAPE_CLASSIC (classic) or 0 (all) */
    apr_interval_time_t ping_interval; /* PingInterval: RFC 6455 ping after idle (30 s) */
    apr_interval_time_t ping_timeout;  /* PingTimeout: hang up without pong (15 s) */
    int max_connections;               /* MaxConnections (1024) */
    int max_bindings;                  /* MaxBindingsPerConnection (256) */
    int max_message_size;              /* MaxMessageSize: largest inbound message (16384 bytes) */
    int send_queue_messages;           /* SendQueueMessages: per connection (256) */
    apr_interval_time_t slow_client_timeout; /* SlowClientTimeout: full queue -> cut off (30 s) */
    apr_size_t send_queue_bytes;       /* SendQueueBytes: per connection (8 MiB) */
    int event_batch;                   /* EventBatch: events read per subscription and scan (100) */
    apr_interval_time_t event_retention; /* EventRetention: events older may go (7 days), 0 = keep */
    int event_retention_count;         /* EventRetentionCount: newest N kept per subscription, 0 = all */
    apr_interval_time_t prune_interval;/* PruneInterval: between pruning passes (300 s) */
    apr_interval_time_t prune_bound_grace; /* PruneBoundGrace: bound elsewhere this recently (3600 s) */
    int allow_url_token;               /* AllowTokenInURL: accept ?token= (On) */
    nt_metrics_where_t metrics;        /* MetricsListen: where /healthz and /metrics are */
    const char *metrics_host;          /* MetricsListen host:port (NT_METRICS_OWN) */
    int metrics_port;
    fs_log_level_t log_level;          /* LogLevel (notice) */
} nt_config_t;

/* Whether events are pruned at all (EventRetention or EventRetentionCount set). */
static inline int nt_config_prunes(const nt_config_t *c)
{
    return c->event_retention > 0 || c->event_retention_count > 0;
}

/* Every field at its default (driver-dependent ones are settled by finish). */
void nt_config_defaults(nt_config_t *c);

/* Read a config file. On error APR_EINVAL (or the file error) with "file:line: why"
 * in *perr. */
apr_status_t nt_config_load(nt_config_t *c, apr_pool_t *p, const char *file,
                            const char **perr);

/* Set one key (as in the file); used for -o Key=Value overrides too. */
apr_status_t nt_config_set(nt_config_t *c, apr_pool_t *p, const char *key,
                           const char *value, const char **perr);

/* Check the whole configuration and load the token key. */
apr_status_t nt_config_finish(nt_config_t *c, apr_pool_t *p, const char **perr);

#endif
