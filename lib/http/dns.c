/* lib/http/dns.c — address lookups for HTTP requests through c-ares on
 * epode's loop, so that curl never starts its resolver thread (whose
 * removal blocks until getaddrinfo returns): the caller hands curl the
 * addresses as a CURLOPT_RESOLVE entry. c-ares' sockets and deadline
 * ride the loop like curl's (sock_state callback → one epode__io each,
 * ares_timeout → one timer).
 *
 * Invariants: a lookup's callback runs at most once, from the loop
 * (answers c-ares gives synchronously — /etc/hosts, numeric names — are
 * delivered from a 0 ms timer), never after cancel or free. */
#include "http/dns.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include <ares.h>

#include "util/alloc.h"

typedef struct dns_sock {
    struct dns_sock *next;
    epode__http_dns *d;
    int fd;
    epode__io io;
} dns_sock;

struct epode__http_lookup {
    struct epode__http_lookup *next;
    epode__http_dns *d;
    epode__http_dns_cb cb;
    void *user;
    int answered, canceled;
    int status;
    char addrs[256]; /* "a,b,c" */
};

struct epode__http_dns {
    const epode_mem_t *mem;
    epode__loop *loop;
    ares_channel ch;
    dns_sock *socks;
    epode__http_lookup *lookups;
    epode__timer timer;   /* c-ares' next deadline */
    epode__timer deliver; /* answers to hand over */
    int freeing;
    unsigned depth;   /* inside a lookup's callback */
    int free_pending; /* freed from one: done when it returns */
};

static void real_free(epode__http_dns *d);

static void lookup_unlink(epode__http_lookup *l)
{
    for (epode__http_lookup **p = &l->d->lookups; *p; p = &(*p)->next)
        if (*p == l) {
            *p = l->next;
            return;
        }
}

static void on_deliver(void *user)
{
    epode__http_dns *d = user;
    for (;;) {
        epode__http_lookup *l = d->lookups;
        while (l && !(l->answered && !l->canceled))
            l = l->next;
        if (!l)
            return;
        lookup_unlink(l);
        d->depth++;
        l->cb(l->user, l->status, l->status == 0 ? l->addrs : NULL);
        d->depth--;
        epode__dealloc(d->mem, l);
        if (d->free_pending) {
            real_free(d);
            return;
        }
    }
}

static int map_status(int s)
{
    switch (s) {
    case ARES_SUCCESS:
        return 0;
    case ARES_ENOMEM:
        return EPODE_ENOMEM;
    case ARES_ETIMEOUT:
        return EPODE_ETIMEDOUT;
    case ARES_ECANCELLED:
    case ARES_EDESTRUCTION:
        return EPODE_ECANCELED;
    default:
        return EPODE_EDNS;
    }
}

static void answered(void *arg, int status, int timeouts, struct ares_addrinfo *res)
{
    (void)timeouts;
    epode__http_lookup *l = arg;
    epode__http_dns *d = l->d;
    if (l->canceled) {
        /* cancel() left it to c-ares to let go of it */
        lookup_unlink(l);
        epode__dealloc(d->mem, l);
        ares_freeaddrinfo(res);
        return;
    }
    l->answered = 1;
    l->status = map_status(status);
    size_t used = 0;
    for (struct ares_addrinfo_node *n = res ? res->nodes : NULL; n && l->status == 0;
         n = n->ai_next) {
        char ip[INET6_ADDRSTRLEN];
        const void *a = n->ai_family == AF_INET6
                            ? (const void *)&((struct sockaddr_in6 *)n->ai_addr)->sin6_addr
                            : (const void *)&((struct sockaddr_in *)n->ai_addr)->sin_addr;
        if ((n->ai_family != AF_INET && n->ai_family != AF_INET6) ||
            !inet_ntop(n->ai_family, a, ip, sizeof ip))
            continue;
        /* curl wants IPv6 addresses bracketed in a resolve entry */
        int w = snprintf(l->addrs + used, sizeof l->addrs - used,
                         n->ai_family == AF_INET6 ? "%s[%s]" : "%s%s", used ? "," : "", ip);
        if (w < 0 || (size_t)w >= sizeof l->addrs - used) {
            l->addrs[used] = '\0';
            break;
        }
        used += (size_t)w;
    }
    if (l->status == 0 && used == 0)
        l->status = EPODE_EDNS;
    ares_freeaddrinfo(res);
    if (!d->freeing)
        epode__timer_start(&d->deliver, 0, on_deliver, d);
}

static void on_timer(void *user);

static void update_timer(epode__http_dns *d)
{
    struct timeval tv, *t = ares_timeout(d->ch, NULL, &tv);
    if (!t) {
        epode__timer_stop(&d->timer);
        return;
    }
    uint64_t ms = (uint64_t)t->tv_sec * 1000u + (uint64_t)(t->tv_usec + 999) / 1000u;
    epode__timer_start(&d->timer, ms, on_timer, d);
}

static void on_timer(void *user)
{
    epode__http_dns *d = user;
    ares_process_fd(d->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    update_timer(d);
}

static void on_io(void *user, unsigned revents)
{
    dns_sock *s = user; /* may be freed inside ares_process_fd: copy first */
    epode__http_dns *d = s->d;
    int fd = s->fd;
    ares_process_fd(d->ch, (revents & EPODE__READ) ? fd : ARES_SOCKET_BAD,
                    (revents & EPODE__WRITE) ? fd : ARES_SOCKET_BAD);
    update_timer(d);
}

/* c-ares says which sockets to watch; (0, 0) comes before it closes one. */
static void sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
    epode__http_dns *d = data;
    dns_sock *s = d->socks;
    while (s && s->fd != (int)fd)
        s = s->next;
    unsigned ev = (readable ? EPODE__READ : 0u) | (writable ? EPODE__WRITE : 0u);
    if (!ev) {
        if (!s)
            return;
        epode__io_stop(&s->io);
        for (dns_sock **p = &d->socks; *p; p = &(*p)->next)
            if (*p == s) {
                *p = s->next;
                break;
            }
        epode__dealloc(d->mem, s);
        return;
    }
    if (s) {
        epode__io_set(&s->io, ev);
        return;
    }
    s = epode__zalloc(d->mem, sizeof *s);
    if (!s)
        return; /* the lookup then times out */
    s->d = d;
    s->fd = (int)fd;
    if (epode__io_start(d->loop, &s->io, (int)fd, ev, on_io, s) < 0) {
        epode__dealloc(d->mem, s);
        return;
    }
    s->next = d->socks;
    d->socks = s;
}

int epode__http_dns_new(const epode_mem_t *mem, epode__loop *l, const char *servers,
                        epode__http_dns **out)
{
    if (!l || !out || (servers && !*servers))
        return EPODE_EINVAL;
    epode__http_dns *d = epode__zalloc(mem, sizeof *d);
    if (!d)
        return EPODE_ENOMEM;
    d->mem = mem;
    d->loop = l;
    int rc = epode__timer_init(l, &d->timer);
    if (rc == 0 && (rc = epode__timer_init(l, &d->deliver)) < 0)
        epode__timer_deinit(&d->timer);
    if (rc < 0) {
        epode__dealloc(mem, d);
        return rc;
    }
    struct ares_options o;
    memset(&o, 0, sizeof o);
    o.sock_state_cb = sock_state;
    o.sock_state_cb_data = d;
    int ar = ares_init_options(&d->ch, &o, ARES_OPT_SOCK_STATE_CB);
    if (ar == ARES_SUCCESS && servers && (ar = ares_set_servers_ports_csv(d->ch, servers)) != ARES_SUCCESS)
        ares_destroy(d->ch);
    if (ar != ARES_SUCCESS) {
        epode__timer_deinit(&d->timer);
        epode__timer_deinit(&d->deliver);
        epode__dealloc(mem, d);
        return ar == ARES_ENOMEM ? EPODE_ENOMEM : EPODE_EDNS;
    }
    *out = d;
    return 0;
}

void epode__http_dns_free(epode__http_dns *d)
{
    if (!d || d->free_pending)
        return;
    if (d->depth) {
        for (epode__http_lookup *l = d->lookups; l; l = l->next)
            l->canceled = 1;
        d->free_pending = 1;
        return;
    }
    real_free(d);
}

static void real_free(epode__http_dns *d)
{
    d->freeing = 1;
    for (epode__http_lookup *l = d->lookups; l; l = l->next)
        l->canceled = 1;
    ares_destroy(d->ch); /* EDESTRUCTION to the pending ones, sockets said closed */
    while (d->lookups) {
        epode__http_lookup *l = d->lookups;
        d->lookups = l->next;
        epode__dealloc(d->mem, l);
    }
    while (d->socks) {
        dns_sock *s = d->socks;
        d->socks = s->next;
        epode__io_stop(&s->io);
        epode__dealloc(d->mem, s);
    }
    epode__timer_deinit(&d->timer);
    epode__timer_deinit(&d->deliver);
    epode__dealloc(d->mem, d);
}

int epode__http_dns_lookup(epode__http_dns *d, const char *host, epode__http_dns_cb cb,
                           void *user, epode__http_lookup **out)
{
    if (!d || !host || !*host || !cb || d->freeing)
        return EPODE_EINVAL;
    epode__http_lookup *l = epode__zalloc(d->mem, sizeof *l);
    if (!l)
        return EPODE_ENOMEM;
    l->d = d;
    l->cb = cb;
    l->user = user;
    l->next = d->lookups;
    d->lookups = l;
    struct ares_addrinfo_hints hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_protocol = IPPROTO_TCP;
    hints.ai_flags = ARES_AI_NOSORT;
    ares_getaddrinfo(d->ch, host, NULL, &hints, answered, l); /* may answer at once */
    update_timer(d);
    if (out)
        *out = l;
    return 0;
}

void epode__http_dns_cancel(epode__http_lookup *l)
{
    if (!l || l->canceled)
        return;
    if (l->answered) {
        lookup_unlink(l);
        epode__dealloc(l->d->mem, l);
        return;
    }
    l->canceled = 1; /* freed when c-ares answers (or with the resolver) */
}
