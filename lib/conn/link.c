/* lib/conn/link.c — how a connection's link comes up: the targets (SRV
 * records, a named server, a WebSocket URL, a proxy or the application's
 * own pipe), the connect, the transport stack built from the options and
 * opened (lib/transport/stack.c), the certificate checked and the stream
 * started over it; and the public options for the stack (epode/transport.h).
 * conn.c enters each step through its guard and runs the stream. */
#include "conn_int.h"
#include "transport/websocket.h"
#ifdef EPODE_HAVE_CURL
#include "transport/bosh.h"
#endif

#include <arpa/inet.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "util/alloc.h"

int epode_conn_set_transport(epode_conn_t *c, const epode_transport_ops_t *ops, void *user)
{
    if (!c)
        return EPODE_EINVAL;
    if (c->state != C_IDLE)
        return EPODE_ESTATE;
    if (!ops) {
        epode__dealloc(c->ctx->mem, c->app);
        c->app = NULL;
        return 0;
    }
    size_t size = ops->size < sizeof c->app->ops ? ops->size : sizeof c->app->ops;
    if (size < offsetof(epode_transport_ops_t, write) + sizeof ops->write || !ops->read ||
        !ops->write || ops->framing != EPODE_FRAMING_STREAM)
        return EPODE_EINVAL;
    if (!c->app && !(c->app = epode__zalloc(c->ctx->mem, sizeof *c->app)))
        return EPODE_ENOMEM;
    memset(&c->app->ops, 0, sizeof c->app->ops);
    memcpy(&c->app->ops, ops, size); /* later members than the caller knows stay NULL */
    c->app->ops.size = sizeof c->app->ops;
    c->app->user = user;
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
    if (c->bosh_url && c->proxy)
        all.proxied = 1; /* BOSH's requests go through it (curl's own, no layer of ours) */
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
    if (!url) { /* XEP-0156: the domain's host-meta says, at connect */
#ifdef EPODE_HAVE_CURL
        int rc = epode__discover_want(c, 0);
        if (rc < 0)
            return rc;
        epode__conn_ws_free(c); /* one of TCP, WebSocket and BOSH; the wish stays */
        return 0;
#else
        epode__ctx_log(c->ctx, EPODE_LOG_ERROR, "conn",
                       "WebSocket discovery refused: this build of epode has no HTTP support "
                       "(libcurl); give the URL");
        return EPODE_ENOTSUP;
#endif
    }
#ifdef EPODE_HAVE_CURL
    epode__discover_free(c);
#endif
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
    if (u) { /* one of TCP, WebSocket and BOSH */
#ifdef EPODE_HAVE_CURL
        epode__bosh_url_free(c->ctx->mem, c->bosh_url);
#endif
        c->bosh_url = NULL;
    }
    return 0;
#endif
}

void epode__conn_ws_free(epode_conn_t *c)
{
    /* (the URLs only: a wish for discovery is epode__discover_free's) */
#ifdef EPODE_HAVE_WSLAY
    epode__ws_url_free(c->ctx->mem, c->ws_url);
#endif
    c->ws_url = NULL;
#ifdef EPODE_HAVE_CURL
    epode__bosh_url_free(c->ctx->mem, c->bosh_url);
#endif
    c->bosh_url = NULL;
}

/* The larger of 4 MiB and twice the stanza limit: what a WebSocket
 * message or a BOSH answer may be, so that a stanza the parser would
 * skip (over the limit, up to its skip bound) reaches it, as over TCP. */
static size_t message_bound(const epode_conn_t *c)
{
    size_t lim = c->limits[EPODE_LIMIT_STANZA_BYTES] ? c->limits[EPODE_LIMIT_STANZA_BYTES]
                                                     : c->ctx->limits[EPODE_LIMIT_STANZA_BYTES];
    size_t twice = lim > SIZE_MAX / 2 ? SIZE_MAX : 2 * lim;
    return twice > (4u << 20) ? twice : (4u << 20);
}

/* ---- BOSH (XEP-0124, XEP-0206) --------------------------------------------------- */

int epode_conn_set_bosh(epode_conn_t *c, const char *url)
{
    if (!c)
        return EPODE_EINVAL;
    if (c->state != C_IDLE)
        return EPODE_ESTATE;
#ifndef EPODE_HAVE_CURL
    (void)url;
    epode__ctx_log(c->ctx, EPODE_LOG_ERROR, "conn",
                   "BOSH refused: this build of epode has no HTTP support (libcurl)");
    return EPODE_ENOTSUP;
#else
    epode__bosh_url *u = NULL;
    if (!url) { /* XEP-0156: the domain's host-meta says, at connect */
        int rc = epode__discover_want(c, 1);
        if (rc < 0)
            return rc;
        epode__conn_ws_free(c); /* one of TCP, WebSocket and BOSH; the wish stays */
        return 0;
    }
    epode__discover_free(c);
    if (*url) {
        char why[200] = "";
        int rc = epode__bosh_url_parse(c->ctx->mem, url, &u, why, sizeof why);
        if (rc < 0) {
            epode__ctx_log(c->ctx, EPODE_LOG_ERROR, "conn", "BOSH refused: %s",
                           why[0] ? why : epode_strerror(rc));
            return rc;
        }
    }
    epode__bosh_url_free(c->ctx->mem, c->bosh_url);
    c->bosh_url = u;
    if (u) { /* one of TCP, WebSocket and BOSH */
#ifdef EPODE_HAVE_WSLAY
        epode__ws_url_free(c->ctx->mem, c->ws_url);
#endif
        c->ws_url = NULL;
    }
    return 0;
#endif
}

#ifdef EPODE_HAVE_CURL
int epode__conn_curl_proxy(const epode_conn_t *c, char *buf, size_t len)
{
    buf[0] = '\0';
    if (!c->proxy)
        return 0;
    /* socks5h: the proxy resolves the name (as over TCP: no DNS of ours) */
    int v6 = strchr(c->proxy->host, ':') != NULL;
    snprintf(buf, len, "%s://%s%s%s:%u", c->proxy->kind == EPODE__PROXY_SOCKS5 ? "socks5h" : "http",
             v6 ? "[" : "", c->proxy->host, v6 ? "]" : "", c->proxy->port);
    return 1;
}

/* A loopback host, by its literal (127/8, ::1) or the name localhost. */
/* A loopback host by its literal (127/8, ::1) or the name localhost; a
 * name that merely starts with "127." is a name (DNS says where). */
static int host_is_loopback(const char *h)
{
    struct in_addr a4;
    if (inet_pton(AF_INET, h, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    return strcmp(h, "::1") == 0 || strcasecmp(h, "localhost") == 0;
}

static void bosh_ready(void *user)
{
    epode__conn_poke(user);
}

static void bosh_log(void *user, int out, const char *line)
{
    epode_conn_t *c = user;
    epode__ctx_log(c->ctx, EPODE_LOG_XML, out ? "xml-out" : "xml-in", "%s", line);
}

/* The link is the BOSH layer itself (no socket of ours: curl's travel
 * the loop through lib/http); its handshake makes the session. */
static void bosh_start(epode_conn_t *c)
{
    const epode__bosh_url *u = c->bosh_url;
    /* through a proxy, where http:// goes cannot be seen: as ws:// */
    if (!u->secure && c->tls_mode == EPODE_TLS_REQUIRED &&
        (c->proxy || !host_is_loopback(u->host))) {
        epode__conn_fail(c, EPODE_ENOTLS, EPODE_REASON_TLS,
             "http:// (BOSH in clear) is allowed to a loopback address only, and not through "
             "a proxy (use https://, or loosen TLS with epode_conn_set_tls)");
        return;
    }
    epode__ctx_log(c->ctx, EPODE_LOG_INFO, "net", "BOSH to %s:%u%s%s", u->host, u->port,
                   c->proxy ? " through the proxy at " : "", c->proxy ? c->proxy->host : "");
    char proxy[600] = "";
    epode__conn_curl_proxy(c, proxy, sizeof proxy);
    epode__bosh_curl_options co = {
        .loop = c->ctx->loop,
        .url = u,
        .verify_name = strcasecmp(u->host, c->domain) != 0 ? c->domain : NULL,
        .insecure = !c->verify,
        .tls_min = c->tls_min,
        .tls_max = c->tls_max,
        .ca_file = c->ca_file,
        .dns_servers = c->ctx->dns_servers,
        .proxy = c->proxy ? proxy : NULL,
        .proxy_user = c->proxy ? c->proxy->user : NULL,
        .proxy_pass = c->proxy ? c->proxy->pass : NULL,
        .proxy_host = c->proxy ? c->proxy->host : NULL,
        .proxy_port = c->proxy ? c->proxy->port : 0,
        .max_body = message_bound(c),
    };
    epode__bosh_options bo = {.domain = c->domain,
                              .max_body = co.max_body,
                              .ready = bosh_ready,
                              .ready_user = c};
    if (c->ctx->log && c->ctx->log_level >= EPODE_LOG_XML)
        bo.log = bosh_log;
    int rc = epode__bosh_http_override
                 ? epode__bosh_http_override(epode__bosh_http_override_user, u, &bo.http)
                 : epode__bosh_curl_new(c->ctx->mem, &co, &bo.http);
    epode__transport *t = NULL;
    if (rc == 0 && (rc = epode__bosh_new(c->ctx->mem, &bo, &t)) < 0)
        bo.http.free(bo.http.user);
    if (rc < 0) {
        epode__conn_fail(c, rc, EPODE_REASON_NETWORK, "could not start BOSH");
        return;
    }
    c->tr = t;
    c->fd = -1; /* nothing to watch: the layer's ready callback pokes */
    c->state = C_OPEN;
    epode__conn_pump(c);
}
#endif

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
    o->max_message = message_bound(c);
    return 1;
}

/* ---- the transport stack (lib/transport/stack.c builds and opens it) ----------------- */

static void tls_options(const epode_conn_t *c, epode__tls_options *o)
{
    memset(o, 0, sizeof *o);
    o->server_name = c->domain;
    o->alpn_xmpp_client = c->direct_tls && !c->component; /* XEP-0368 is for clients */
    o->max_version = c->tls_max;
    o->min_version = c->tls_min; /* 0 until set: TLS 1.2 */
    if (c->ws_url) { /* wss: HTTPS to the URL's host (SNI), no XMPP ALPN */
        o->server_name = c->ws_url->host;
        o->alpn_xmpp_client = 0;
    }
}

/* `why` receives the reason credentials could not be loaded (a file
 * changed or went away since it was set), naming the file. */
static int get_creds(epode_conn_t *c, char *why, size_t why_len)
{
    return c->creds ? 0
                    : epode__ctx_creds_get(c->ctx, c->ca_file, c->cert_file, c->key_file, why,
                                           why_len, &c->creds);
}

/* The stack is open (a proxy's tunnel up, TLS's handshake done): with
 * TLS, check the certificate; then run (or restart) the stream. */
void epode__link_open(epode_conn_t *c)
{
    char why[200];
    epode__transport *tls = epode__stack_tls(c->tr);
#ifdef EPODE_HAVE_CURL
    if (c->bosh_url && c->bosh_url->secure) {
        /* https: curl verified the URL's host and the XMPP domain (or
         * verification is off), else the handshake failed with ECERT */
        c->tls_verified = c->verify;
        int v = epode__bosh_tls_version(c->tr);
        epode__tls_facts f = {.version = v, .verified = c->tls_verified};
        epode__conn_note(c, &c->security, NOTE_SECURITY, "TLS 1.%d (BOSH)", v - 10);
        c->state = C_STREAM;
        epode__conn_emit(c, EPODE_CONN_TLS_UP);
        if (c->state != C_STREAM)
            return; /* closed from the callback */
        int rc = epode__conn_start_engine(c, &f);
        if (rc < 0)
            epode__conn_fail(c, rc, EPODE_REASON_NETWORK, "could not start the stream");
        return;
    }
#endif
    if (!tls) {
        int rc = epode__conn_start_engine(c, NULL);
        if (rc < 0)
            epode__conn_fail(c, rc, EPODE_REASON_NETWORK, "could not start the stream");
        return;
    }
    /* wss: the certificate must hold for the URL's host and for the
     * XMPP domain (RFC 7395 §5, XEP-0156 §3) */
    c->tls_verified = epode__tls_verify(tls, c->ws_url ? c->ws_url->host : c->domain, why,
                                        sizeof why) == 0;
    if (c->tls_verified && c->ws_url && strcasecmp(c->ws_url->host, c->domain) != 0)
        c->tls_verified = epode__tls_verify(tls, c->domain, why, sizeof why) == 0;
    if (c->verify && !c->tls_verified) {
        int accept = 0;
        if (c->cert_cb) {
            const unsigned char *der = NULL;
            size_t der_len = 0;
            epode__tls_peer_cert(tls, &der, &der_len);
            accept = c->cert_cb(c, why, der, der_len, c->cert_user) == 1;
            if (c->state != C_OPEN || c->tr == NULL)
                return; /* closed (or freed, reconnected) from the callback */
        }
        if (!accept) {
            char msg[300];
            snprintf(msg, sizeof msg, "certificate refused: %s", why);
            epode__conn_fail(c, EPODE_ECERT, EPODE_REASON_TLS, msg);
            return;
        }
        epode__ctx_log(c->ctx, EPODE_LOG_WARN, "tls", "certificate accepted by the application: %s", why);
    }
    epode_transport_facts_t tf = {.size = sizeof tf};
    epode__stack_facts(c->tr, &tf);
    epode__tls_facts f = {.version = tf.tls_version, .key_bits = tf.tls_key_bits,
                          .tls_unique_len = tf.tls_unique_len,
                          .tls_exporter_len = tf.tls_exporter_len,
                          .verified = c->tls_verified};
    memcpy(f.tls_unique, tf.tls_unique, sizeof f.tls_unique);
    memcpy(f.tls_exporter, tf.tls_exporter, sizeof f.tls_exporter);
    epode__conn_note(c, &c->security, NOTE_SECURITY, "TLS 1.%d%s", f.version - 10,
                     c->ws_url       ? " (WebSocket)"
                     : c->direct_tls ? " (direct)"
                                     : " (STARTTLS)");
    c->state = C_STREAM;
    epode__conn_emit(c, EPODE_CONN_TLS_UP);
    if (c->state != C_STREAM)
        return; /* closed from the callback */
    int rc = c->engine ? epode__engine_tls_ready(c->engine, &f) : epode__conn_start_engine(c, &f);
    if (rc < 0)
        epode__conn_fail(c, rc, EPODE_REASON_NETWORK, "could not continue the stream after TLS");
}

/* STARTTLS: TLS onto the stack's top. */
int epode__link_starttls(epode_conn_t *c, char *why, size_t why_len)
{
    epode__tls_options o;
    int rc = get_creds(c, why, why_len);
    tls_options(c, &o);
    if (rc < 0 || (rc = epode__stack_starttls(c->ctx->mem, c->creds->creds, &o, &c->tr)) < 0)
        return rc;
    c->state = C_OPEN;
    return 0;
}

static void link_up(epode_conn_t *c, epode__transport *bottom, int loopback);

/* ---- connecting ----------------------------------------------------------------------- */

void epode__link_connected(epode_conn_t *c, int status, int fd, const char *why)
{
    c->query = NULL;
    if (status < 0) {
        c->connect_failures = status == EPODE_EDNS && c->connect_failures != 2 ? 1 : 2;
        /* through a proxy the address tried was the proxy's: say so (it
         * read as if the XMPP server were down) */
        epode__conn_note(c, &c->last_connect_error, NOTE_CONNECT_ERROR, "%s%s%s",
             c->proxy && !c->app ? (c->proxy->kind == EPODE__PROXY_SOCKS5 ? "the SOCKS5 proxy: "
                                                                        : "the HTTP proxy: ")
                                 : "",
             why ? why : epode_strerror(status), "");
        epode__ctx_log(c->ctx, EPODE_LOG_INFO, "net", "connect failed: %s",
                       c->last_connect_error ? c->last_connect_error : "?");
        epode__link_next_target(c);
        return;
    }
    epode__transport *tcp;
    int rc = epode__tcp_new(c->ctx->mem, fd, &tcp);
    if (rc < 0) {
        close(fd); /* still ours when the transport could not take it */
        epode__conn_fail(c, rc, EPODE_REASON_NETWORK, "out of memory");
        return;
    }
    link_up(c, tcp, !c->proxy && epode__tcp_peer_is_loopback(tcp));
}

/* The bottom of the link is there (a connected socket, or the
 * application's pipe): build the stack from the options and open it. A
 * component stream in clear goes to this machine only (`loopback`),
 * unless the application loosened TLS itself (DESIGN: secure by
 * default); through a proxy that cannot be told. */
static void link_up(epode_conn_t *c, epode__transport *bottom, int loopback)
{
    c->tr = bottom;
    int fd = epode__transport_fd(bottom), rc;
    if (c->ws_url && !c->ws_url->secure && c->tls_mode == EPODE_TLS_REQUIRED && !loopback) {
        epode__conn_fail(c, EPODE_ENOTLS, EPODE_REASON_TLS,
             "ws:// (WebSocket in clear) is allowed to a loopback address only, and not through "
             "a proxy (use wss://, or loosen TLS with epode_conn_set_tls)");
        return;
    }
    if (c->component && !c->direct_tls && c->tls_mode == EPODE_TLS_REQUIRED && !loopback) {
        epode__conn_fail(c, EPODE_ENOTLS, EPODE_REASON_TLS,
             "a component stream in clear is allowed to a loopback address only, and not "
             "through a proxy (use direct "
             "TLS, or loosen TLS with epode_conn_set_tls)");
        return;
    }
    if (fd >= 0) {
        c->fd = fd;
        if ((rc = epode__io_start(c->ctx->loop, &c->io, fd, EPODE__READ, epode__conn_on_io, c)) < 0) {
            c->fd = -1;
            epode__conn_fail(c, rc, EPODE_REASON_NETWORK, "could not watch the socket");
            return;
        }
    }
    const epode__target *t = &c->targets[c->next_target - 1];
    epode__stack_config cfg = {.host = t->host, .port = t->port};
    cfg.proxy = c->app ? NULL : c->proxy;
    epode__ws_options wso;
    if (epode__conn_ws_options(c, &wso))
        cfg.ws = &wso;
    char why[300] = "", msg[340];
    rc = c->direct_tls ? get_creds(c, why, sizeof why) : 0;
    if (rc == 0 && c->direct_tls) {
        cfg.creds = c->creds->creds;
        tls_options(c, &cfg.tls);
    }
    if (rc < 0 || (rc = epode__stack_new(c->ctx->mem, &cfg, c->tr, &c->tr)) < 0) {
        snprintf(msg, sizeof msg, "could not start %s%s%s", c->direct_tls ? "TLS" : "the link",
                 why[0] ? ": " : "", why);
        epode__conn_fail(c, rc, c->direct_tls ? EPODE_REASON_TLS : EPODE_REASON_NETWORK, msg);
        return;
    }
    c->state = C_OPEN;
    epode__conn_pump(c);
}

void epode__link_next_target(epode_conn_t *c)
{
    while (c->next_target < c->ntargets) {
        epode__target *t = &c->targets[c->next_target++];
        /* (a WebSocket URL says itself whether it is TLS) */
        if (!c->ws_url && c->tls_mode == EPODE_TLS_DIRECT && !t->direct_tls)
            continue;
        if (!c->ws_url && t->direct_tls &&
            (c->tls_mode == EPODE_TLS_DISABLED || c->tls_mode == EPODE_TLS_OPTIONAL))
            continue;
        c->direct_tls = t->direct_tls;
        c->state = C_CONNECTING;
        epode__ctx_log(c->ctx, EPODE_LOG_INFO, "net", "connecting to %s:%u%s%s%s", t->host,
                       t->port, t->direct_tls ? " (direct TLS)" : "",
                       c->app ? " over the application's transport"
                       : c->proxy      ? " through the proxy at "
                                       : "",
                       !c->app && c->proxy ? c->proxy->host : "");
        int rc;
        if (c->app) {
            char why[300];
            epode__transport *app;
            rc = epode__app_new(c->ctx->mem, &c->app->ops, c->app->user, t->host, t->port, why,
                                sizeof why, &app);
            if (rc == 0) {
                link_up(c, app, 1); /* the application answers for its pipe */
                return;
            }
            c->connect_failures = 2;
            epode__conn_note(c, &c->last_connect_error, NOTE_CONNECT_ERROR, "%s", why);
            continue;
        }
        /* Through a proxy: to the proxy, which is asked for t (no DNS here) */
        rc = epode__net_connect(epode__ctx_net(c->ctx), c->proxy ? c->proxy->host : t->host,
                                c->proxy ? c->proxy->port : t->port, c->connect_ms, epode__conn_on_connected,
                                c, &c->query);
        if (rc == 0)
            return;
        c->connect_failures = 2;
        epode__conn_note(c, &c->last_connect_error, NOTE_CONNECT_ERROR, "%s", epode_strerror(rc));
    }
    /* Only names that did not resolve: a DNS failure (the text says
     * which name and what the resolver answered), not a network one. */
    int dns = c->connect_failures == 1 && c->last_connect_error;
    char msg[NOTE_CONNECT_ERROR + 48];
    snprintf(msg, sizeof msg, "%s: %s", dns ? "could not find the server" : "could not connect",
             c->last_connect_error ? c->last_connect_error : "no usable server address");
    epode__conn_record(c, dns ? EPODE_EDNS : EPODE_ENET, EPODE_REASON_NETWORK, msg);
    epode__conn_teardown(c);
}

void epode__link_targets(epode_conn_t *c, int status, const epode__target *t, size_t n)
{
    c->query = NULL;
    if (status < 0 || n == 0) {
        char msg[300];
        snprintf(msg, sizeof msg, "no XMPP service found for %s: %s", c->domain,
                 epode_strerror(status < 0 ? status : EPODE_EDNS));
        epode__conn_record(c, EPODE_EDNS, EPODE_REASON_NETWORK, msg);
        epode__conn_teardown(c);
        return;
    }
    c->targets = epode__alloc(c->ctx->mem, n * sizeof *t);
    if (!c->targets) {
        epode__conn_fail(c, EPODE_ENOMEM, EPODE_REASON_NETWORK, "out of memory");
        return;
    }
    memcpy(c->targets, t, n * sizeof *t);
    c->ntargets = n;
    c->next_target = 0;
    c->connect_failures = 0;
    epode__link_next_target(c);
}

/* First turn after epode_conn_connect(): the CONNECTING event and the
 * lookup start here, so nothing runs inside connect() itself. */
void epode__link_start(epode_conn_t *c)
{
    epode__conn_emit(c, EPODE_CONN_CONNECTING);
    if (c->state != C_RESOLVING)
        return; /* closed from the event */
    epode__timer_start(&c->login_timer, c->login_ms, epode__conn_on_login_timeout, c);
#ifdef EPODE_HAVE_CURL
    int rc = epode__discover_start(c); /* XEP-0156, when the URL is to be found */
    if (rc < 0) {
        epode__conn_record(c, rc, EPODE_REASON_NETWORK, "could not start the XEP-0156 lookup");
        epode__conn_teardown(c);
    }
    if (rc != 0)
        return; /* a lookup runs: epode__link_start_found follows */
#endif
    epode__link_start_found(c);
}

void epode__link_start_found(epode_conn_t *c)
{
#ifdef EPODE_HAVE_CURL
    if (c->bosh_url) { /* the URL names the endpoint: no SRV lookup */
        bosh_start(c);
        return;
    }
#endif
    /* A named server, a proxy or the application's pipe: no SRV lookup
     * (through a proxy none may leak: the proxy is asked for the name) */
    if (c->host || c->proxy || c->app || c->ws_url) {
        c->targets = epode__alloc(c->ctx->mem, sizeof *c->targets);
        if (!c->targets) {
            epode__conn_fail(c, EPODE_ENOMEM, EPODE_REASON_NETWORK, "out of memory");
            return;
        }
        snprintf(c->targets[0].host, sizeof c->targets[0].host, "%s",
                 c->ws_url ? c->ws_url->host : c->host ? c->host : c->domain);
        int direct = c->ws_url ? c->ws_url->secure : c->tls_mode == EPODE_TLS_DIRECT;
        c->targets[0].port = (uint16_t)(c->ws_url      ? c->ws_url->port
                                        : c->port      ? c->port
                                        : c->component ? 5347 /* Prosody's default */
                                        : direct       ? 5223
                                                       : 5222);
        c->targets[0].direct_tls = direct;
        c->ntargets = 1;
        c->next_target = 0;
        c->connect_failures = 0;
        epode__link_next_target(c);
        return;
    }
    epode__net *net = epode__ctx_net(c->ctx);
    int rc = net ? epode__net_resolve_xmpp(net, c->domain, epode__conn_on_targets, c, &c->query) : EPODE_EDNS;
    if (rc < 0) {
        epode__conn_record(c, rc, EPODE_REASON_NETWORK, "could not start the DNS lookup");
        epode__conn_teardown(c);
    }
}
