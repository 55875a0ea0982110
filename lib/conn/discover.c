/* lib/conn/discover.c — XEP-0156 for a connection: epode_conn_set_websocket
 * (conn, NULL) and epode_conn_set_bosh(conn, NULL) ask for the domain's
 * host-meta (lib/http/hostmeta.c: HTTPS only, wss:// and https:// URLs
 * only) before the link is made. Built only with libcurl.
 *
 * The lookup runs at the first connection attempt that has no URL yet;
 * the URL found becomes the connection's own (as if the application had
 * set it), so reconnections reuse it without asking again, and asking
 * again is setting NULL again. A failed lookup ends the attempt like a
 * failed DNS lookup (EPODE_REASON_NETWORK, the words name each document
 * tried), and reconnection, when on, tries again. The HTTP client and
 * resolver live only while a lookup does. */
#include "conn_int.h"

#include <stdio.h>
#include <string.h>

#include "http/dns.h"
#include "http/hostmeta.h"
#include "util/alloc.h"
#include "transport/bosh.h"
#ifdef EPODE_HAVE_WSLAY
#include "transport/websocket.h"
#endif

struct conn_discovery {
    int bosh; /* the kind asked for: BOSH (1) or WebSocket (0) */
    epode__http *http;
    epode__http_dns *dns;
    epode__hostmeta_req *req;
};

int epode__discover_want(epode_conn_t *c, int bosh)
{
    if (!c->discovery) {
        c->discovery = epode__zalloc(c->ctx->mem, sizeof *c->discovery);
        if (!c->discovery)
            return EPODE_ENOMEM;
    }
    c->discovery->bosh = bosh;
    return 0;
}

/* Ends a running lookup and frees what it ran on; the wish stays. */
void epode__discover_cancel(epode_conn_t *c)
{
    struct conn_discovery *d = c->discovery;
    if (!d)
        return;
    epode__hostmeta_cancel(d->req);
    d->req = NULL;
    epode__http_dns_free(d->dns);
    d->dns = NULL;
    epode__http_free(d->http);
    d->http = NULL;
}

void epode__discover_free(epode_conn_t *c)
{
    if (!c->discovery)
        return;
    epode__discover_cancel(c);
    epode__dealloc(c->ctx->mem, c->discovery);
    c->discovery = NULL;
}

static void on_log(void *user, int level, const char *text)
{
    epode_conn_t *c = user;
    epode__ctx_log(c->ctx, level, "net", "%s", text);
}

int epode__discover_start(epode_conn_t *c)
{
    struct conn_discovery *d = c->discovery;
    if (!d || (d->bosh ? c->bosh_url != NULL : c->ws_url != NULL))
        return 0; /* nothing asked, or found at an earlier attempt */
    int rc = 0;
    if (!d->http)
        rc = epode__http_new(c->ctx->mem, c->ctx->loop, &d->http);
    char proxy[600] = "";
    int resolving_proxy = c->proxy && epode__conn_curl_proxy(c, proxy, sizeof proxy);
    if (rc == 0 && !d->dns && !resolving_proxy)
        rc = epode__http_dns_new(c->ctx->mem, c->ctx->loop, c->ctx->dns_servers, &d->dns);
    epode__hostmeta_opts o = {
        .mem = c->ctx->mem,
        .ca_file = c->ca_file,
        .log = on_log,
        .proxy = c->proxy ? proxy : NULL,
        .proxy_user = c->proxy ? c->proxy->user : NULL,
        .proxy_pass = c->proxy ? c->proxy->pass : NULL,
    };
    if (rc == 0)
        rc = epode__hostmeta_lookup(d->http, d->dns, c->domain, &o, epode__conn_on_discovered, c,
                                    &d->req);
    if (rc < 0) {
        epode__discover_cancel(c);
        return rc;
    }
    epode__ctx_log(c->ctx, EPODE_LOG_INFO, "net", "looking up %s's %s URL (XEP-0156 host-meta)",
                   c->domain, d->bosh ? "BOSH" : "WebSocket");
    return 1;
}

void epode__discover_done(epode_conn_t *c, int status, const char *ws, const char *bosh,
                          const char *text)
{
    struct conn_discovery *d = c->discovery;
    d->req = NULL;
    const char *url = d->bosh ? bosh : ws;
    char msg[600];
    if (status == 0 && !url) {
        status = EPODE_ENOTFOUND;
        snprintf(msg, sizeof msg, "%s offers no %s URL (%s)", c->domain,
                 d->bosh ? "BOSH (https://)" : "WebSocket (wss://)", text);
    } else if (status < 0) {
        snprintf(msg, sizeof msg, "no %s URL found for %s: %s", d->bosh ? "BOSH" : "WebSocket",
                 c->domain, text);
    }
    if (status == 0) {
        char why[200] = "";
        int rc;
        if (d->bosh) {
            rc = epode__bosh_url_parse(c->ctx->mem, url, &c->bosh_url, why, sizeof why);
        } else {
#ifdef EPODE_HAVE_WSLAY
            rc = epode__ws_url_parse(c->ctx->mem, url, &c->ws_url, why, sizeof why);
#else
            rc = EPODE_ENOTSUP;
            snprintf(why, sizeof why, "this build of epode has no WebSocket support");
#endif
        }
        if (rc < 0) {
            status = rc;
            snprintf(msg, sizeof msg, "the %s URL found for %s (%s) is refused: %s",
                     d->bosh ? "BOSH" : "WebSocket", c->domain, url, why[0] ? why : "?");
        } else {
            epode__ctx_log(c->ctx, EPODE_LOG_INFO, "net", "%s URL for %s: %s (%s)",
                           d->bosh ? "BOSH" : "WebSocket", c->domain, url, text);
        }
    }
    /* The client and resolver go from a later turn's point of view: the
     * lookup is over, and hostmeta allows freeing them from here. */
    epode__http_dns_free(d->dns);
    d->dns = NULL;
    epode__http_free(d->http);
    d->http = NULL;
    if (status < 0) {
        /* the lookup's own code (EDNS, EHTTP, ENOTFOUND, ECERT, ...): a
         * certificate refused on the way is a TLS matter, as over XMPP */
        int tls = status == EPODE_ECERT || status == EPODE_ETLS;
        epode__conn_record(c, status, tls ? EPODE_REASON_TLS : EPODE_REASON_NETWORK, msg);
        epode__conn_teardown(c);
        return;
    }
    epode__link_start_found(c);
}
