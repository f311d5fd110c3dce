#include <string.h>
#include <apr_network_io.h>
#include <apr_strings.h>
#include <httpd.h>
#include <http_log.h>

#include "fs_notify.h"
#include "mod_fhirsub_wake.h"

APLOG_USE_MODULE(fhirsub);

/* "id1 id2 ...", or "" (= any) when it would not fit a datagram of FS_NOTIFY_PAYLOAD_MAX. */
static const char *payload_of(apr_pool_t *p, const apr_array_header_t *ids)
{
    const char *payload = apr_array_pstrcat(p, ids, ' ');
    return strlen(payload) > FS_NOTIFY_PAYLOAD_MAX ? "" : payload;
}

void fhirsub_wake_notifier(request_rec *r, const fhirsub_dir_conf *c,
                           const apr_array_header_t *sub_ids)
{
    const char *payload;
    apr_socket_t *sock = NULL;
    apr_size_t len;
    apr_status_t rv;

    if (!c->wake_addr) return;
    payload = payload_of(r->pool, sub_ids);
    len = strlen(payload);
    rv = apr_socket_create(&sock, c->wake_addr->family, SOCK_DGRAM, APR_PROTO_UDP, r->pool);
    if (rv == APR_SUCCESS) {
        /* An empty datagram is legal and means "any subscription". */
        rv = apr_socket_sendto(sock, c->wake_addr, 0, payload, &len);
        apr_socket_close(sock);
    }
    if (rv != APR_SUCCESS) {
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, rv, r, FHIRSUB_LOGNO(10670)
                      "notifier wake-up not sent (it will find the events by polling)");
    }
}
