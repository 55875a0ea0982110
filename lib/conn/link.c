/* lib/conn/link.c — the connection's options for its transport stack
 * (public API in epode/transport.h): an application's own pipe, a proxy,
 * and what the stack established. The stack itself is lib/transport's
 * (stack.c); conn.c builds it from these options when a link comes up. */
#include "conn_int.h"
#include "transport/websocket.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

int epode_conn_set_transport(epode_conn_t *c, const epode_transport_ops_t *ops, void *user)
{
    if (!c)
        return EPODE_EINVAL;
    if (c->state != C_IDLE)
        return EPODE_ESTATE;
    if (!ops) {
        memset(&c->app_ops, 0, sizeof c->app_ops);
        c->app_user = NULL;
        return 0;
    }
    size_t size = ops->size < sizeof c->app_ops ? ops->size : sizeof c->app_ops;
    if (size < offsetof(epode_transport_ops_t, write) + sizeof ops->write || !ops->read ||
        !ops->write || ops->framing != EPODE_FRAMING_STREAM)
        return EPODE_EINVAL;
    memset(&c->app_ops, 0, sizeof c->app_ops);
    memcpy(&c->app_ops, ops, size); /* later members than the caller knows stay NULL */
    c->app_ops.size = sizeof c->app_ops;
    c->app_user = user;
    return 0;
}

void epode_conn_transport_ready(epode_conn_t *c)
{
    epode__conn_poke(c);
}

int epode_conn_transport_facts(const epode_conn_t *c, epode_transport_facts_t *f)
{
    if (!c || !f || f->size < offsetof(epode_transport_facts_t, framing) + sizeof f->framing)
        return EPODE_EINVAL;
    if (!c->tr)
        return EPODE_ESTATE;
    epode_transport_facts_t all = {.size = sizeof all, .tls_verified = c->tls_verified};
    epode__stack_facts(c->tr, &all);
    size_t size = f->size < sizeof all ? f->size : sizeof all;
    all.size = f->size;
    memcpy(f, &all, size);
    return 0;
}

int epode_conn_set_proxy(epode_conn_t *c, const char *url)
{
    if (!c)
        return EPODE_EINVAL;
    if (c->state != C_IDLE)
        return EPODE_ESTATE;
    epode__proxy *p = NULL;
    if (url && *url) {
        char why[200] = "";
        int rc = epode__proxy_parse(c->ctx->mem, url, &p, why, sizeof why);
        if (rc < 0) {
            /* never the URL itself: it may hold a password */
            epode__ctx_log(c->ctx, EPODE_LOG_ERROR, "conn", "proxy refused: %s",
                           why[0] ? why : epode_strerror(rc));
            return rc;
        }
    }
    epode__proxy_free(c->ctx->mem, c->proxy);
    c->proxy = p;
    return 0;
}

/* ---- WebSocket (RFC 7395) ------------------------------------------------------- */

int epode_conn_set_websocket(epode_conn_t *c, const char *url)
{
    if (!c)
        return EPODE_EINVAL;
    if (c->state != C_IDLE)
        return EPODE_ESTATE;
#ifndef EPODE_HAVE_WSLAY
    (void)url;
    epode__ctx_log(c->ctx, EPODE_LOG_ERROR, "conn",
                   "WebSocket refused: this build of epode has no WebSocket support (wslay)");
    return EPODE_ENOTSUP;
#else
    epode__ws_url *u = NULL;
    if (!url) {
        epode__ctx_log(c->ctx, EPODE_LOG_ERROR, "conn",
                       "WebSocket refused: discovery (XEP-0156) is not supported yet; give "
                       "the URL");
        return EPODE_ENOTSUP;
    }
    if (*url) {
        char why[200] = "";
        int rc = epode__ws_url_parse(c->ctx->mem, url, &u, why, sizeof why);
        if (rc < 0) {
            epode__ctx_log(c->ctx, EPODE_LOG_ERROR, "conn", "WebSocket refused: %s",
                           why[0] ? why : epode_strerror(rc));
            return rc;
        }
    }
    epode__ws_url_free(c->ctx->mem, c->ws_url);
    c->ws_url = u;
    return 0;
#endif
}

void epode__conn_ws_free(epode_conn_t *c)
{
#ifdef EPODE_HAVE_WSLAY
    epode__ws_url_free(c->ctx->mem, c->ws_url);
#endif
    c->ws_url = NULL;
}

int epode__conn_ws_options(const epode_conn_t *c, epode__ws_options *o)
{
    if (!c->ws_url)
        return 0;
    memset(o, 0, sizeof *o);
    o->host = c->ws_url->hostport;
    o->path = c->ws_url->path;
    /* A message the parser would skip (over the stanza limit, up to its
     * skip bound) must reach it, as over TCP: a remote sender must not
     * end our session with one big stanza. Past that bound: 1009. */
    size_t lim = c->limits[EPODE_LIMIT_STANZA_BYTES] ? c->limits[EPODE_LIMIT_STANZA_BYTES]
                                                     : c->ctx->limits[EPODE_LIMIT_STANZA_BYTES];
    size_t twice = lim > SIZE_MAX / 2 ? SIZE_MAX : 2 * lim;
    o->max_message = twice > (4u << 20) ? twice : (4u << 20);
    return 1;
}
