/* lib/net/resolve.c — the c-ares channel on the owner's event loop: its
 * sockets reach the owner through the socket-state callback, its deadline
 * through ares_timeout() re-read after every c-ares call, and both come
 * back through epode__net_process(). Also owns the lifetime of queries and
 * their deferred delivery: answers c-ares gives synchronously are queued,
 * announced with timer(0) and delivered from process, never from inside
 * the call that asked. Never blocks, never uses ares_getsock or select. */
#define EPODE__NET_PRIVATE
#include "net.h"

#include <errno.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util/alloc.h"

/* Consecutive DNS timeouts / unreachable servers before the channel is
 * made again (c-ares 1.18 reads resolv.conf only when a channel is made). */
#define REINIT_AFTER_FAILURES 3

struct epode__net {
    const epode_mem_t *mem;
    epode__net_io io;
    ares_channel ch;
    char *dns_servers; /* copy, or NULL */
    unsigned dns_timeout_ms, dns_tries;
    unsigned generation;
    unsigned failures;         /* consecutive, see REINIT_AFTER_FAILURES */
    unsigned ares_outstanding; /* c-ares callbacks still to come */
    epode__query *queries;     /* every query not yet freed */
    epode__query *ready_head, *ready_tail;
    int freeing;
    int timer_known;  /* reported_due is what the owner was last told */
    int64_t reported_due; /* absolute ms, -1: none */
};

uint64_t epode__net_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

const epode_mem_t *epode__net_mem(const epode__net *n)
{
    return n->mem;
}

int epode__net_usable(const epode__net *n)
{
    return n->freeing ? EPODE_ESTATE : 0;
}

unsigned epode__net_channel_generation(const epode__net *n)
{
    return n ? n->generation : 0;
}

int epode__net_err(int ares_status)
{
    switch (ares_status) {
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

void epode__net_watch(epode__net *n, int fd, unsigned events)
{
    n->io.watch(n->io.user, fd, events);
}

/* c-ares' socket-state callback: the push half of the loop contract. It
 * says (0, 0) before closing a socket, including inside ares_destroy. */
static void sock_state(void *data, ares_socket_t s, int readable, int writable)
{
    epode__net *n = data;
    unsigned ev = (readable ? EPODE__NET_READ : 0u) | (writable ? EPODE__NET_WRITE : 0u);
    epode__net_watch(n, (int)s, ev);
}

static int channel_make(epode__net *n, ares_channel *out)
{
    struct ares_options o;
    memset(&o, 0, sizeof o);
    int mask = ARES_OPT_SOCK_STATE_CB;
    o.sock_state_cb = sock_state;
    o.sock_state_cb_data = n;
    if (n->dns_timeout_ms) {
        o.timeout = (int)n->dns_timeout_ms; /* ms with ARES_OPT_TIMEOUTMS */
        mask |= ARES_OPT_TIMEOUTMS;
    }
    if (n->dns_tries) {
        o.tries = (int)n->dns_tries;
        mask |= ARES_OPT_TRIES;
    }
    ares_channel ch;
    int rc = ares_init_options(&ch, &o, mask);
    if (rc != ARES_SUCCESS)
        return rc == ARES_ENOMEM ? EPODE_ENOMEM : EPODE_EDNS;
    if (n->dns_servers) {
        rc = ares_set_servers_ports_csv(ch, n->dns_servers);
        if (rc != ARES_SUCCESS) {
            ares_destroy(ch);
            return rc == ARES_ENOMEM ? EPODE_ENOMEM : EPODE_EINVAL;
        }
    }
    *out = ch;
    return 0;
}

int epode__net_new2(const epode_mem_t *mem, const epode__net_io *io,
                    const epode__net_options *opts, epode__net **out)
{
    if (!io || !io->watch || !io->timer || !out)
        return EPODE_EINVAL;
    const char *servers = opts ? opts->dns_servers : NULL;
    if (servers && !*servers)
        return EPODE_EINVAL; /* c-ares 1.18 ignores "" instead of failing */
    if (opts && (opts->dns_timeout_ms > 600000u || opts->dns_tries > 100u))
        return EPODE_EINVAL;

    epode__net *n = epode__zalloc(mem, sizeof *n);
    if (!n)
        return EPODE_ENOMEM;
    n->mem = mem;
    n->io = *io;
    n->reported_due = -1;
    n->timer_known = 1; /* the owner starts with no deadline */
    if (opts) {
        n->dns_timeout_ms = opts->dns_timeout_ms;
        n->dns_tries = opts->dns_tries;
    }
    if (servers) {
        n->dns_servers = epode__strdup(mem, servers);
        if (!n->dns_servers) {
            epode__dealloc(mem, n);
            return EPODE_ENOMEM;
        }
    }
    int rc = channel_make(n, &n->ch);
    if (rc < 0) {
        epode__dealloc(mem, n->dns_servers);
        epode__dealloc(mem, n);
        return rc;
    }
    n->generation = 1;
    *out = n;
    return 0;
}

int epode__net_new(const epode_mem_t *mem, const epode__net_io *io, const char *dns_servers,
                   epode__net **out)
{
    epode__net_options o = {.dns_servers = dns_servers};
    return epode__net_new2(mem, io, &o, out);
}

ares_channel epode__net_channel(epode__net *n)
{
    /* Remaking is only safe with nothing pending: ares_destroy would end
     * pending lookups with ARES_EDESTRUCTION. */
    if (n->failures >= REINIT_AFTER_FAILURES && n->ares_outstanding == 0) {
        ares_channel fresh;
        if (channel_make(n, &fresh) == 0) {
            ares_destroy(n->ch); /* idle: only closes sockets, watch(fd, 0) first */
            n->ch = fresh;
            n->generation++;
            n->failures = 0;
        }
    }
    return n->ch;
}

void epode__net_ares_begin(epode__query *q)
{
    q->ares_pending++;
    q->net->ares_outstanding++;
}

static void query_maybe_free(epode__query *q);

int epode__net_ares_end(epode__query *q, int ares_status)
{
    epode__net *n = q->net;
    q->ares_pending--;
    n->ares_outstanding--;
    switch (ares_status) {
    case ARES_ETIMEOUT:
    case ARES_ECONNREFUSED:
        n->failures++;
        break;
    case ARES_EDESTRUCTION:
    case ARES_ECANCELLED:
    case ARES_ENOMEM:
        break;
    default: /* the servers answered */
        n->failures = 0;
        break;
    }
    if (q->state == EPODE__Q_FINISHED || n->freeing) {
        query_maybe_free(q);
        return 0;
    }
    return 1;
}

epode__query *epode__net_query_new(epode__net *n, enum epode__query_kind kind)
{
    epode__query *q = epode__zalloc(n->mem, sizeof *q);
    if (!q)
        return NULL;
    q->net = n;
    q->kind = kind;
    q->state = EPODE__Q_LOOKUP;
    q->fd = -1;
    q->result_fd = -1;
    q->srv[0].q = q;
    q->srv[1].q = q;
    q->next = n->queries;
    if (n->queries)
        n->queries->prev = q;
    n->queries = q;
    return q;
}

static void query_release(epode__query *q)
{
    if (q->kind == EPODE__Q_SRV)
        epode__srv_release(q);
    else
        epode__connect_release(q);
}

static void query_unlink_free(epode__query *q)
{
    epode__net *n = q->net;
    query_release(q);
    if (q->prev)
        q->prev->next = q->next;
    else
        n->queries = q->next;
    if (q->next)
        q->next->prev = q->prev;
    epode__dealloc(n->mem, q);
}

/* A query goes when nobody can reach it any more: no callback left to
 * deliver, none running, not on the ready queue, no c-ares answer to come.
 * While the net is being freed, epode__net_free frees them all itself. */
static void query_maybe_free(epode__query *q)
{
    if (q->state != EPODE__Q_FINISHED || q->delivering || q->queued || q->ares_pending > 0 ||
        q->net->freeing)
        return;
    query_unlink_free(q);
}

void epode__net_query_discard(epode__query *q)
{
    q->state = EPODE__Q_FINISHED;
    query_maybe_free(q);
}

void epode__net_queue(epode__query *q)
{
    epode__net *n = q->net;
    if (q->queued)
        return;
    q->queued = 1;
    q->ready_next = NULL;
    if (n->ready_tail)
        n->ready_tail->ready_next = q;
    else
        n->ready_head = q;
    n->ready_tail = q;
}

static void deliver(epode__query *q)
{
    q->state = EPODE__Q_FINISHED; /* cancel from inside the callback: no-op */
    q->delivering = 1;
    if (q->kind == EPODE__Q_SRV)
        epode__srv_deliver(q);
    else
        epode__connect_deliver(q);
    q->delivering = 0;
    query_maybe_free(q);
}

void epode__query_cancel(epode__query *q)
{
    if (!q || q->state == EPODE__Q_FINISHED)
        return;
    epode__net *n = q->net;
    q->state = EPODE__Q_FINISHED;
    query_release(q); /* closes sockets, watch(fd, 0) first */
    /* A lookup c-ares still runs cannot be canceled alone in 1.18
     * (ares_cancel ends every query): its answer is dropped on arrival. */
    query_maybe_free(q);
    if (!n->freeing)
        epode__net_update_timer(n, 0);
}

void epode__net_update_timer(epode__net *n, int force)
{
    if (n->freeing)
        return;
    uint64_t now = epode__net_now_ms();
    int64_t due = -1;
    if (n->ready_head) {
        due = (int64_t)now;
    } else {
        struct timeval tv;
        struct timeval *t = ares_timeout(n->ch, NULL, &tv);
        if (t) {
            /* 1.18 truncates to whole ms: a deadline reported as 0 may
             * still be in the future, and process would find nothing to
             * do. Round it up so the owner does not spin. */
            int64_t ms = (int64_t)t->tv_sec * 1000 + t->tv_usec / 1000;
            if (ms < 1)
                ms = 1;
            due = (int64_t)now + ms;
        }
        for (epode__query *q = n->queries; q; q = q->next) {
            if (q->state == EPODE__Q_CONNECTING && q->deadline) {
                int64_t d = (int64_t)q->deadline;
                if (due < 0 || d < due)
                    due = d;
            }
        }
    }
    if (!force && n->timer_known && due == n->reported_due)
        return;
    n->timer_known = 1;
    n->reported_due = due;
    long ms = -1;
    if (due >= 0)
        ms = due <= (int64_t)now ? 0 : (long)(due - (int64_t)now);
    n->io.timer(n->io.user, ms);
}

/* Delivers what was ready when it started; what gets queued meanwhile
 * (a callback that starts a numeric-host connect, say) waits for the next
 * turn, announced with timer(0), so a callback that keeps starting
 * queries cannot hold the loop. */
static void drain_ready(epode__net *n)
{
    epode__query *list = n->ready_head;
    n->ready_head = n->ready_tail = NULL;
    while (list) {
        epode__query *q = list;
        list = q->ready_next;
        q->ready_next = NULL;
        q->queued = 0;
        if (q->state == EPODE__Q_RESOLVED)
            epode__connect_advance(q); /* may end DONE */
        if (q->state == EPODE__Q_DONE)
            deliver(q);
        else
            query_maybe_free(q); /* canceled while queued */
    }
}

void epode__net_process(epode__net *n, int fd, unsigned revents)
{
    if (!n || n->freeing)
        return;
    if (fd >= 0) {
        epode__query *owner = NULL;
        for (epode__query *q = n->queries; q; q = q->next) {
            if (q->state == EPODE__Q_CONNECTING && q->fd == fd) {
                owner = q;
                break;
            }
        }
        if (owner) {
            epode__connect_ready(owner, revents);
        } else {
            /* Not ours: c-ares' (an fd c-ares no longer has is ignored). */
            ares_socket_t r = (revents & EPODE__NET_READ) ? fd : ARES_SOCKET_BAD;
            ares_socket_t w = (revents & EPODE__NET_WRITE) ? fd : ARES_SOCKET_BAD;
            ares_process_fd(n->ch, r, w);
        }
    } else {
        ares_process_fd(n->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD); /* timeouts */
    }

    uint64_t now = epode__net_now_ms();
    for (epode__query *q = n->queries; q; q = q->next)
        epode__connect_check_deadline(q, now); /* may queue q; frees nothing */

    drain_ready(n);
    epode__net_update_timer(n, 1);
}

void epode__net_free(epode__net *n)
{
    if (!n)
        return;
    n->freeing = 1; /* from here on nothing is freed behind our back */
    for (epode__query *q = n->queries; q; q = q->next) {
        if (q->state == EPODE__Q_FINISHED)
            continue;
        query_release(q);
        q->status = EPODE_ECANCELED;
        deliver(q); /* may cancel others: they only change state */
    }
    /* Pending lookups end with ARES_EDESTRUCTION; each socket is said
     * (0, 0) before it is closed. */
    ares_destroy(n->ch);
    n->ch = NULL;
    while (n->queries)
        query_unlink_free(n->queries);
    if (!n->timer_known || n->reported_due >= 0)
        n->io.timer(n->io.user, -1);
    epode__dealloc(n->mem, n->dns_servers);
    epode__dealloc(n->mem, n);
}
