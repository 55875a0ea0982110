/* lib/conn/ctx.c — the context: global set-up, logging, the loop and its
 * public API, the resolver's sockets on that loop, and the shared TLS
 * credentials. */
#include "conn_int.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <ares.h>
#include <gnutls/gnutls.h>
#include <libxml/parser.h>

#include "auth/sasl.h"
#include "util/alloc.h"

/* ---- global ----------------------------------------------------------------- */

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static int global_rc;

static void global_init_once(void)
{
    xmlInitParser();
    if (gnutls_global_init() < 0) {
        global_rc = EPODE_ETLS;
        return;
    }
    if (ares_library_init(ARES_LIB_INIT_ALL) != ARES_SUCCESS) {
        global_rc = EPODE_EDNS;
        return;
    }
    if (epode__sasl_global_init() < 0) {
        global_rc = EPODE_EAUTH;
        return;
    }
}

int epode_global_init(void)
{
    pthread_once(&global_once, global_init_once);
    return global_rc;
}

/* ---- logging ------------------------------------------------------------------ */

void epode__ctx_log(epode_ctx_t *ctx, epode_log_level_t level, const char *area,
                    const char *fmt, ...)
{
    if (!ctx->log || level > ctx->log_level)
        return;
    char raw[1024], msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(raw, sizeof raw, fmt, ap);
    va_end(ap);
    epode__one_line(msg, sizeof msg, raw);
    ctx->log(ctx->log_user, level, area, msg);
}

void epode__one_line(char *out, size_t size, const char *in)
{
    /* A line says what it says: a server's words (a close reason, a
     * terminate condition, a stream error's text, a message body in the
     * XML log) must not start a line of their own that reads like ours.
     * CR and LF become \r and \n, other control characters '?'. */
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)in; *p && o + 1 < size; p++) {
        if (*p == '\n' || *p == '\r') {
            if (o + 2 >= size)
                break;
            out[o++] = '\\';
            out[o++] = *p == '\n' ? 'n' : 'r';
        } else {
            out[o++] = (*p < 0x20 && *p != '\t') || *p == 0x7f ? '?' : (char)*p;
        }
    }
    out[o] = '\0';
}

void epode_ctx_set_log(epode_ctx_t *ctx, epode_log_level_t max_level, epode_log_cb cb, void *user)
{
    if (!ctx)
        return;
    ctx->log = cb;
    ctx->log_level = max_level;
    ctx->log_user = user;
}

/* ---- life cycle ------------------------------------------------------------------ */

int epode_ctx_new(const epode_mem_t *mem, epode_ctx_t **out)
{
    if (!out)
        return EPODE_EINVAL;
    int rc = epode_global_init();
    if (rc < 0)
        return rc;
    epode_ctx_t *ctx = epode__zalloc(mem, sizeof *ctx);
    if (!ctx)
        return EPODE_ENOMEM;
    ctx->mem = mem;
    if ((rc = epode__loop_new(mem, &ctx->loop)) < 0 ||
        (rc = epode__timer_init(ctx->loop, &ctx->net_timer)) < 0) {
        epode__loop_free(ctx->loop);
        epode__dealloc(mem, ctx);
        return rc;
    }
    *out = ctx;
    return 0;
}

int epode_ctx_free(epode_ctx_t *ctx)
{
    if (!ctx)
        return 0;
    if (ctx->conns)
        return EPODE_ESTATE;
    const epode_mem_t *mem = ctx->mem;
    epode__net_free(ctx->net); /* stops its watches through the callbacks */
    epode__timer_deinit(&ctx->net_timer);
    while (ctx->net_watches) {
        net_watch *w = ctx->net_watches;
        ctx->net_watches = w->next;
        epode__io_stop(&w->io);
        epode__dealloc(mem, w);
    }
    while (ctx->creds) {
        creds_entry *c = ctx->creds;
        ctx->creds = c->next;
        epode__tls_creds_free(c->creds);
        epode__dealloc(mem, c->ca_file);
        epode__dealloc(mem, c->cert_file);
        epode__dealloc(mem, c->key_file);
        epode__dealloc(mem, c);
    }
    epode__loop_free(ctx->loop);
    epode__dealloc(mem, ctx->dns_servers);
    epode__dealloc(mem, ctx);
    return 0;
}

const epode_mem_t *epode_ctx_mem(const epode_ctx_t *ctx)
{
    return ctx ? ctx->mem : NULL;
}

int epode_ctx_set_limit(epode_ctx_t *ctx, epode_parser_limit_t limit, size_t value)
{
    if (!ctx || (int)limit < 1 || (int)limit >= EPODE__NLIMITS)
        return EPODE_EINVAL;
    ctx->limits[limit] = value;
    return 0;
}

int epode_ctx_set_dns_servers(epode_ctx_t *ctx, const char *servers)
{
    if (!ctx || !servers || !*servers)
        return EPODE_EINVAL;
    if (ctx->net)
        return EPODE_ESTATE; /* the resolver exists: lookups may be in flight */
    char *s = epode__strdup(ctx->mem, servers);
    if (!s)
        return EPODE_ENOMEM;
    epode__dealloc(ctx->mem, ctx->dns_servers);
    ctx->dns_servers = s;
    return 0;
}

/* ---- the resolver's sockets on our loop ------------------------------------------ */

static void on_net_io(void *user, unsigned revents)
{
    net_watch *w = user;
    epode__net_process(w->ctx->net, w->fd, revents);
}

static void net_watch_cb(void *user, int fd, unsigned events)
{
    epode_ctx_t *ctx = user;
    net_watch **pp = &ctx->net_watches, *w;
    while ((w = *pp) && w->fd != fd)
        pp = &w->next;
    if (events == 0) {
        if (w) {
            epode__io_stop(&w->io);
            *pp = w->next;
            epode__dealloc(ctx->mem, w);
        }
        return;
    }
    if (w) {
        epode__io_set(&w->io, events);
        return;
    }
    w = epode__zalloc(ctx->mem, sizeof *w);
    if (!w)
        return; /* c-ares times the query out */
    w->ctx = ctx;
    w->fd = fd;
    if (epode__io_start(ctx->loop, &w->io, fd, events, on_net_io, w) < 0) {
        epode__dealloc(ctx->mem, w);
        return;
    }
    w->next = ctx->net_watches;
    ctx->net_watches = w;
}

static void on_net_timer(void *user)
{
    epode_ctx_t *ctx = user;
    if (ctx->net)
        epode__net_process(ctx->net, -1, 0);
}

static void net_timer_cb(void *user, long ms)
{
    epode_ctx_t *ctx = user;
    if (ms < 0)
        epode__timer_stop(&ctx->net_timer);
    else
        epode__timer_start(&ctx->net_timer, (uint64_t)ms, on_net_timer, ctx);
}

epode__net *epode__ctx_net(epode_ctx_t *ctx)
{
    if (!ctx->net) {
        epode__net_io io = {net_watch_cb, net_timer_cb, ctx};
        if (epode__net_new(ctx->mem, &io, ctx->dns_servers, &ctx->net) < 0)
            ctx->net = NULL;
    }
    return ctx->net;
}

/* ---- shared TLS credentials ------------------------------------------------------- */

static int opt_eq(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

int epode__ctx_creds_get(epode_ctx_t *ctx, const char *ca, const char *cert, const char *key,
                         char *why, size_t why_len, creds_entry **out)
{
    for (creds_entry *c = ctx->creds; c; c = c->next)
        if (opt_eq(c->ca_file, ca) && opt_eq(c->cert_file, cert) && opt_eq(c->key_file, key)) {
            c->refs++;
            *out = c;
            return 0;
        }
    creds_entry *c = epode__zalloc(ctx->mem, sizeof *c);
    if (!c)
        return EPODE_ENOMEM;
    if ((ca && !(c->ca_file = epode__strdup(ctx->mem, ca))) ||
        (cert && !(c->cert_file = epode__strdup(ctx->mem, cert))) ||
        (key && !(c->key_file = epode__strdup(ctx->mem, key)))) {
        epode__dealloc(ctx->mem, c->ca_file);
        epode__dealloc(ctx->mem, c->cert_file);
        epode__dealloc(ctx->mem, c);
        return EPODE_ENOMEM;
    }
    int rc = epode__tls_creds_new_why(ctx->mem, ca, cert, key, why, why_len, &c->creds);
    if (rc < 0) {
        epode__dealloc(ctx->mem, c->ca_file);
        epode__dealloc(ctx->mem, c->cert_file);
        epode__dealloc(ctx->mem, c->key_file);
        epode__dealloc(ctx->mem, c);
        return rc;
    }
    c->refs = 1;
    c->next = ctx->creds;
    ctx->creds = c;
    *out = c;
    return 0;
}

void epode__ctx_creds_put(epode_ctx_t *ctx, creds_entry *e)
{
    /* Kept until the context goes: reconnects reuse them. */
    (void)ctx;
    if (e && e->refs)
        e->refs--;
}

/* ---- loop API ----------------------------------------------------------------------- */

int epode_ctx_run(epode_ctx_t *ctx)
{
    return ctx ? epode__loop_run(ctx->loop) : EPODE_EINVAL;
}

int epode_ctx_run_once(epode_ctx_t *ctx, int timeout_ms)
{
    return ctx ? epode__loop_run_once(ctx->loop, timeout_ms) : EPODE_EINVAL;
}

void epode_ctx_stop(epode_ctx_t *ctx)
{
    if (ctx)
        epode__loop_stop(ctx->loop);
}

int epode_ctx_wakeup(epode_ctx_t *ctx)
{
    return ctx ? epode__loop_wakeup(ctx->loop) : EPODE_EINVAL;
}

int epode_ctx_set_external_loop(epode_ctx_t *ctx, epode_watch_cb watch, epode_timer_cb timer,
                                void *user)
{
    if (!ctx || !watch || !timer)
        return EPODE_EINVAL;
    return epode__loop_set_external(ctx->loop, watch, timer, user);
}

int epode_ctx_assign(epode_ctx_t *ctx, int fd, void *fd_user)
{
    return ctx ? epode__loop_assign(ctx->loop, fd, fd_user) : EPODE_EINVAL;
}

int epode_ctx_process(epode_ctx_t *ctx, int fd, unsigned events)
{
    return ctx ? epode__loop_process(ctx->loop, fd, events) : EPODE_EINVAL;
}

int epode_ctx_fd(const epode_ctx_t *ctx)
{
    return ctx ? epode__loop_backend_fd(ctx->loop) : -1;
}

long epode_ctx_timeout(const epode_ctx_t *ctx)
{
    return ctx ? epode__loop_next_timeout(ctx->loop) : -1;
}
