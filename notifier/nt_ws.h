/* nt_ws: the libwebsockets side: the context and vhost (address, TLS, RFC 6455
 * ping/pong keepalive through retry_and_idle_policy, header and fd limits), and
 * the protocol callback that routes lws events to nt_conn / nt_session.
 *
 * One protocol, listed first so that clients sending no subprotocol (most FHIR
 * clients, Medplum's) get it. Upgrades are accepted on WebSocketPath only and
 * while fewer than MaxConnections are open. Plain HTTP GET /healthz and /metrics
 * (nt_metrics) are answered where MetricsListen says: on this listener (default), on
 * a vhost of their own, or nowhere; anything else gets 404. */
#ifndef NT_WS_H
#define NT_WS_H

#include <apr_errno.h>

#include "nt_session.h"

/* The name of the websocket subprotocol (clients need not ask for it). */
#define NT_WS_PROTOCOL "fhir-subscriptions"

/* Create srv->ctx listening as configured. */
apr_status_t nt_ws_create(nt_server_t *srv, const char **perr);

/* Destroy the context (closing what is still open). */
void nt_ws_destroy(nt_server_t *srv);

/* Wake the service loop from another thread (or a signal handler). */
void nt_ws_wake(void *srv);

#endif
