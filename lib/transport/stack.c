/* lib/transport/stack.c — the transport stack: built from a connection's
 * options by one function, driven through its top only.
 *
 * A stack is a chain of epode__transport layers, each owning the one
 * below (t->lower):
 *
 *     bottom:  tcp (to the server or to a proxy) | app (the application's pipe)
 *     then:    proxy (socks5 or http-connect; only over tcp to the proxy)
 *     then:    tls (direct TLS at once; STARTTLS pushes it later)
 *     later:   websocket (message-framed, over tcp or tls), or bosh
 *
 * The connection (lib/conn) only ever sees the top: it reads and writes
 * bytes, asks wants()/fd()/pending(), drives the opening with
 * epode__stack_open() and asks for the facts (TLS version, channel
 * binding) with epode__stack_facts(). It knows no layer by name except
 * through the stack's functions.
 *
 * Adding a layer (say websocket.c):
 *   1. implement epode__transport_ops; set base.lower to the layer below
 *      and free it in your free(); read/write/wants/fd/pending/shutdown
 *      go to it (fd() and pending() usually just ask the lower);
 *   2. put the layer's own opening (an HTTP upgrade, a proxy's greeting)
 *      in ops->handshake: 0 when open, EPODE_EAGAIN, or an error with
 *      words set by epode__transport_set_error(); epode__stack_open()
 *      calls it once everything below is open, bottom first;
 *   3. add its option to epode__stack_config and one step in
 *      epode__stack_new() (above tls for websocket, above the proxy and
 *      below tls for a proxy kind);
 *   4. a message-framed layer says so to the stack's facts (framing),
 *      which the engine reads to write <open/> instead of <stream:stream>.
 * TLS stays findable wherever it sits: epode__stack_tls() walks down. */
#include "transport/transport.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "epode/transport.h"
#include "util/alloc.h"
#ifdef EPODE_HAVE_WSLAY
#include "transport/websocket.h"
#endif
#ifdef EPODE_HAVE_CURL
#include "transport/bosh.h"
#endif

/* ---- building and opening --------------------------------------------------- */

int epode__stack_new(const epode_mem_t *mem, const epode__stack_config *cfg,
                     epode__transport *bottom, epode__transport **top)
{
    if (!cfg || !bottom || !top)
        return EPODE_EINVAL;
    epode__transport *t = bottom, *up;
    int rc;
    if (cfg->proxy) {
        if ((rc = epode__proxy_new(mem, cfg->proxy, cfg->host, cfg->port, t, &up)) < 0)
            return rc;
        t = up;
    }
    if (cfg->creds) {
        if ((rc = epode__tls_new(mem, cfg->creds, t, &cfg->tls, &up)) < 0) {
            if (t != bottom) { /* give the caller back its bottom alone */
                t->lower = NULL;
                epode__transport_free(t);
            }
            return rc;
        }
        t = up;
    }
    if (cfg->ws) {
#ifdef EPODE_HAVE_WSLAY
        rc = epode__ws_new(mem, t, cfg->ws, &up);
#else
        rc = EPODE_ENOTSUP;
#endif
        if (rc < 0) {
            if (t != bottom) { /* the layers made here go; the caller keeps its bottom */
                epode__transport *l = t;
                while (l->lower != bottom)
                    l = l->lower;
                l->lower = NULL;
                epode__transport_free(t);
            }
            return rc;
        }
        t = up;
    }
    *top = t;
    return 0;
}

/* Opens `t` after everything below it. */
static int open_layer(epode__transport *t)
{
    if (t->lower) {
        int rc = open_layer(t->lower);
        if (rc < 0) {
            if (rc != EPODE_EAGAIN)
                epode__transport_copy_error(t, t->lower);
            return rc;
        }
    }
    return t->ops->handshake ? t->ops->handshake(t) : 0;
}

int epode__stack_open(epode__transport *top, char *why, size_t why_len)
{
    int rc = open_layer(top);
    if (rc >= 0 || rc == EPODE_EAGAIN)
        return rc;
    const char *w = epode__transport_error(top)[0] ? epode__transport_error(top)
                                                    : epode_strerror(rc);
    /* A TLS failure says so first, whatever gnutls' words. */
    int tls_words = rc == EPODE_ETLS && strncmp(w, "TLS handshake failed", 20) != 0;
    snprintf(why, why_len, "%s%s", tls_words ? "TLS handshake failed: " : "", w);
    return rc;
}

int epode__stack_starttls(const epode_mem_t *mem, epode__tls_creds *creds,
                          const epode__tls_options *opts, epode__transport **top)
{
    epode__transport *t;
    int rc = epode__tls_new(mem, creds, *top, opts, &t);
    if (rc == 0)
        *top = t;
    return rc;
}

/* ---- facts ---------------------------------------------------------------- */

epode__transport *epode__stack_tls(epode__transport *top)
{
    for (epode__transport *t = top; t; t = t->lower)
        if (epode__tls_session(t))
            return t;
    return NULL;
}

void epode__stack_facts(epode__transport *top, epode_transport_facts_t *f)
{
    int verified = f->tls_verified;
    size_t size = f->size;
    memset(f, 0, sizeof *f);
    f->size = size;
    f->tls_verified = verified;
    f->framing = EPODE_FRAMING_STREAM;
    for (epode__transport *t = top; t; t = t->lower) {
        if (epode__proxy_is(t))
            f->proxied = 1;
#ifdef EPODE_HAVE_WSLAY
        if (epode__ws_is(t))
            f->framing = EPODE_FRAMING_MESSAGE;
#endif
#ifdef EPODE_HAVE_CURL
        if (epode__bosh_is(t)) {
            /* BOSH: curl's TLS, one or more connections; its version only
             * (no key size or binding data: the requests may use several
             * TLS sessions, so nothing binds to one) */
            f->framing = EPODE_FRAMING_MESSAGE;
            f->tls_version = epode__bosh_tls_version(t);
            if (!f->tls_version)
                f->tls_verified = 0;
            return;
        }
#endif
    }
    epode__transport *tls = epode__stack_tls(top);
    if (!tls || epode__tls_version(tls) == 0) {
        f->tls_verified = 0;
        return;
    }
    f->tls_version = epode__tls_version(tls);
    f->tls_key_bits = epode__tls_key_bits(tls);
    f->tls_unique_len = sizeof f->tls_unique;
    if (epode__tls_channel_binding(tls, EPODE__CB_TLS_UNIQUE, f->tls_unique, &f->tls_unique_len) < 0)
        f->tls_unique_len = 0;
    f->tls_exporter_len = sizeof f->tls_exporter;
    if (epode__tls_channel_binding(tls, EPODE__CB_TLS_EXPORTER, f->tls_exporter,
                                   &f->tls_exporter_len) < 0)
        f->tls_exporter_len = 0;
}

const char *epode_transport_framing_name(epode_transport_framing_t framing)
{
    switch (framing) {
    case EPODE_FRAMING_STREAM: return "stream";
    case EPODE_FRAMING_MESSAGE: return "message";
    }
    return NULL;
}

/* ---- host:port ---------------------------------------------------------------- */

int epode__parse_hostport(const char *s, size_t len, char *host, size_t host_len, unsigned *port)
{
    const char *end = s + len, *colon = NULL, *h = s, *he;
    *port = 0;
    if (len > 0 && *s == '[') {
        const char *rb = memchr(s, ']', len);
        if (!rb || rb == s + 1)
            return -1;
        h = s + 1;
        he = rb;
        if (rb + 1 < end) {
            if (rb[1] != ':')
                return -1;
            colon = rb + 1;
        }
    } else {
        for (const char *p = s; p < end; p++)
            if (*p == ':') {
                if (colon)
                    return -1; /* a bare IPv6 address needs brackets */
                colon = p;
            }
        he = colon ? colon : end;
    }
    size_t n = (size_t)(he - h);
    if (n == 0 || n >= host_len)
        return -1;
    memcpy(host, h, n);
    host[n] = '\0';
    if (colon) {
        unsigned long p = 0;
        const char *d = colon + 1;
        if (d == end || end - d > 5)
            return -1;
        for (; d < end; d++) {
            if (*d < '0' || *d > '9')
                return -1;
            p = p * 10 + (unsigned long)(*d - '0');
        }
        if (p == 0 || p > 65535)
            return -1;
        *port = (unsigned)p;
    }
    return 0;
}

int epode__url_split(const char *url, const char *secure, const char *plain, const char *what,
                     epode__url_parts *out, char *why, size_t why_len)
{
    size_t sl = strlen(secure), pl = strlen(plain);
    const char *p;
    if (strncasecmp(url, secure, sl) == 0) {
        out->secure = 1;
        p = url + sl;
    } else if (strncasecmp(url, plain, pl) == 0) {
        out->secure = 0;
        p = url + pl;
    } else {
        snprintf(why, why_len, "a %s URL starts with %s or %s", what, secure, plain);
        return EPODE_EINVAL;
    }
    size_t alen = strcspn(p, "/?#");
    if (memchr(p, '@', alen)) {
        snprintf(why, why_len, "a %s URL carries no user or password", what);
        return EPODE_EINVAL;
    }
    if (strchr(p, '#')) {
        snprintf(why, why_len, "a %s URL has no fragment (#)", what);
        return EPODE_EINVAL;
    }
    for (const char *q = url; *q; q++)
        if ((unsigned char)*q <= 0x20 || (unsigned char)*q >= 0x7f) {
            snprintf(why, why_len, "a %s URL has no spaces, controls or raw non-ASCII", what);
            return EPODE_EINVAL;
        }
    if (alen == 0 || epode__parse_hostport(p, alen, out->host, sizeof out->host, &out->port) < 0 ||
        !out->host[0]) {
        snprintf(why, why_len, "the %s URL's host or port is not valid", what);
        return EPODE_EINVAL;
    }
    out->auth_off = (size_t)(p - url);
    out->auth_len = alen;
    out->rest_off = out->auth_off + alen;
    return 0;
}

/* ---- the application's pipe ---------------------------------------------------- */

typedef struct app {
    epode__transport base;
    epode_transport_ops_t ops;
    void *user;
    int write_blocked;
} app;

static long app_read(epode__transport *t, void *buf, size_t len)
{
    app *a = (app *)t;
    if (len == 0)
        return EPODE_EINVAL;
    long n = a->ops.read(a->user, buf, len);
    if (n > 0 && (size_t)n > len) {
        /* it wrote past our buffer, or lies: either way nothing it says
         * can be trusted (the bytes were never looked at) */
        epode__transport_set_error(t, "the application's transport \"%s\" read %ld bytes into "
                                      "a buffer of %zu", a->ops.name ? a->ops.name : "?", n, len);
        return EPODE_EINVAL;
    }
    if (n < 0 && n != EPODE_EAGAIN)
        epode__transport_set_error(t, "the application's transport \"%s\" failed to read: %s",
                                   a->ops.name ? a->ops.name : "?", epode_strerror((int)n));
    return n;
}

static long app_write(epode__transport *t, const void *buf, size_t len)
{
    app *a = (app *)t;
    if (len == 0)
        return 0;
    long n = a->ops.write(a->user, buf, len);
    a->write_blocked = n == EPODE_EAGAIN;
    if (n < 0 && n != EPODE_EAGAIN)
        epode__transport_set_error(t, "the application's transport \"%s\" failed to write: %s",
                                   a->ops.name ? a->ops.name : "?", epode_strerror((int)n));
    return n;
}

static unsigned app_wants(epode__transport *t)
{
    app *a = (app *)t;
    if (a->ops.wants)
        return a->ops.wants(a->user) & (EPODE__READ | EPODE__WRITE);
    return EPODE__READ | (a->write_blocked ? EPODE__WRITE : 0u);
}

static int app_fd(epode__transport *t)
{
    app *a = (app *)t;
    return a->ops.fd ? a->ops.fd(a->user) : -1;
}

static size_t app_pending(epode__transport *t)
{
    app *a = (app *)t;
    return a->ops.pending ? a->ops.pending(a->user) : 0;
}

static int app_shutdown(epode__transport *t)
{
    app *a = (app *)t;
    return a->ops.shutdown ? a->ops.shutdown(a->user) : 0;
}

static void app_free(epode__transport *t)
{
    app *a = (app *)t;
    if (a->ops.close)
        a->ops.close(a->user);
    epode__transport_clear_error(t);
    epode__dealloc(t->mem, a);
}

static const epode__transport_ops app_ops = {
    .name = "app",
    .read = app_read,
    .write = app_write,
    .wants = app_wants,
    .fd = app_fd,
    .pending = app_pending,
    .shutdown = app_shutdown,
    .free = app_free,
};

int epode__app_new(const epode_mem_t *mem, const epode_transport_ops_t *ops, void *user,
                   const char *host, unsigned port, char *why, size_t why_len,
                   epode__transport **out)
{
    app *a = epode__zalloc(mem, sizeof *a);
    if (!a)
        return EPODE_ENOMEM;
    a->base.ops = &app_ops;
    a->base.mem = mem;
    a->ops = *ops;
    a->user = user;
    if (ops->open) {
        int rc = ops->open(user, host, port);
        if (rc < 0) {
            snprintf(why, why_len, "the application's transport \"%s\" could not open: %s",
                     ops->name ? ops->name : "?", epode_strerror(rc));
            epode__dealloc(mem, a);
            return rc;
        }
    }
    *out = &a->base;
    return 0;
}
