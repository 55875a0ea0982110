/* lib/net/srv.c — where to connect for an XMPP domain: the two SRV
 * lookups (_xmpps-client for direct TLS, XEP-0368; _xmpp-client, RFC 6120
 * §3.2) asked at once, merged, ordered by priority and RFC 2782 weighted
 * random choice, with the "." and no-records rules. Only ordering and
 * bookkeeping here: the channel and delivery belong to resolve.c. */
#define EPODE__NET_PRIVATE
#include "net.h"

#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <netinet/in.h>
#include <string.h>
#include <strings.h>

#include "util/alloc.h"
#include "util/rand.h"

#define XMPP_CLIENT_PORT 5222
#define MAX_RECORDS 64 /* per lookup; more is an attack, not a deployment */

static const char *const service[2] = {"_xmpps-client._tcp.", "_xmpp-client._tcp."};

void epode__srv_release(epode__query *q)
{
    const epode_mem_t *mem = epode__net_mem(q->net);
    for (int i = 0; i < 2; i++) {
        epode__dealloc(mem, q->srv[i].recs);
        q->srv[i].recs = NULL;
        q->srv[i].n = 0;
    }
    epode__dealloc(mem, q->targets);
    q->targets = NULL;
    q->ntargets = 0;
}

void epode__srv_deliver(epode__query *q)
{
    if (q->status == 0)
        q->targets_cb(q->user, 0, q->targets, q->ntargets);
    else
        q->targets_cb(q->user, q->status, NULL, 0);
}

/* Uniform in [0, bound]; 0 if the kernel's random source fails (the order
 * then degrades to "first listed", which is still a valid order). */
static uint32_t random_upto(uint32_t bound)
{
    if (bound == 0)
        return 0;
    uint64_t range = (uint64_t)bound + 1;
    uint64_t limit = UINT64_MAX - UINT64_MAX % range; /* no modulo bias */
    for (;;) {
        uint64_t r;
        if (epode__random(&r, sizeof r) < 0)
            return 0;
        if (r < limit)
            return (uint32_t)(r % range);
    }
}

static void swap_rec(epode__srv_rec *a, epode__srv_rec *b)
{
    epode__srv_rec t = *a;
    *a = *b;
    *b = t;
}

/* Moves r[from] to r[to] (to <= from), shifting the others up by one:
 * keeps the listed order of what is not chosen. */
static void move_rec(epode__srv_rec *r, size_t from, size_t to)
{
    for (size_t k = from; k > to; k--)
        swap_rec(&r[k], &r[k - 1]);
}

/* Insertion sort, stable: the lists are short. */
static void sort_by_priority(epode__srv_rec *r, size_t n)
{
    for (size_t i = 1; i < n; i++)
        for (size_t k = i; k > 0 && r[k - 1].priority > r[k].priority; k--)
            swap_rec(&r[k], &r[k - 1]);
}

/* RFC 2782 within one priority: zero weights go first in the running
 * list (so they keep a small chance), a random number in [0, sum] picks the
 * first record whose running sum reaches it, repeat with what is left.
 * XEP-0368: at equal priority and weight, direct TLS first — when the pick
 * is a STARTTLS record and a direct-TLS one of the same weight is still
 * waiting (on the same host if there is one), that one goes instead; the
 * chance of each weight is unchanged. */
static void order_one_priority(epode__srv_rec *r, size_t n)
{
    /* Zero weights first, then direct TLS before STARTTLS (stable). */
    for (size_t i = 1; i < n; i++)
        for (size_t k = i; k > 0; k--) {
            int ka = r[k - 1].weight != 0, kb = r[k].weight != 0;
            if (ka > kb || (ka == kb && r[k - 1].weight == r[k].weight &&
                            !r[k - 1].direct_tls && r[k].direct_tls))
                swap_rec(&r[k], &r[k - 1]);
            else
                break;
        }

    for (size_t start = 0; start + 1 < n; start++) {
        uint32_t sum = 0;
        for (size_t k = start; k < n; k++)
            sum += r[k].weight;
        uint32_t pick = random_upto(sum);
        size_t chosen = start;
        uint32_t running = 0;
        for (size_t k = start; k < n; k++) {
            running += r[k].weight;
            if (running >= pick) {
                chosen = k;
                break;
            }
        }
        if (!r[chosen].direct_tls) {
            size_t better = n;
            for (size_t k = start; k < n; k++) {
                if (!r[k].direct_tls || r[k].weight != r[chosen].weight)
                    continue;
                if (better == n)
                    better = k;
                if (strcasecmp(r[k].host, r[chosen].host) == 0) {
                    better = k;
                    break;
                }
            }
            if (better != n)
                chosen = better;
        }
        move_rec(r, chosen, start);
    }
}

void epode__srv_order(epode__srv_rec *r, size_t n)
{
    sort_by_priority(r, n);
    size_t i = 0;
    while (i < n) {
        size_t j = i + 1;
        while (j < n && r[j].priority == r[i].priority)
            j++;
        order_one_priority(r + i, j - i);
        i = j;
    }
}

static int is_root(const char *host)
{
    return host[0] == '\0' || (host[0] == '.' && host[1] == '\0');
}

/* What one lookup said, for the rules in finish(). */
enum answer_kind { A_RECORDS, A_DOT, A_NONE, A_TIMEOUT, A_NOMEM };

static enum answer_kind classify(const epode__srv_answer *a, size_t *usable)
{
    *usable = 0;
    switch (a->status) {
    case ARES_SUCCESS:
        break;
    case ARES_ETIMEOUT:
        return A_TIMEOUT;
    case ARES_ENOMEM:
        return A_NOMEM;
    default:
        /* NXDOMAIN, no data, a server failure or refusal, a bad answer:
         * RFC 6120 §3.2.1 falls back to the domain itself. */
        return A_NONE;
    }
    for (size_t k = 0; k < a->n; k++)
        if (!is_root(a->recs[k].host))
            (*usable)++;
    if (*usable)
        return A_RECORDS;
    if (a->n == 1)
        return A_DOT; /* RFC 2782: a lone "." is "decidedly not available" */
    return A_NONE;
}

static int set_single_target(epode__query *q, const char *host)
{
    q->targets = epode__zalloc(epode__net_mem(q->net), sizeof *q->targets);
    if (!q->targets)
        return EPODE_ENOMEM;
    strcpy(q->targets[0].host, host); /* both at most 255 bytes */
    q->targets[0].port = XMPP_CLIENT_PORT;
    q->targets[0].direct_tls = 0;
    q->ntargets = 1;
    return 0;
}

/* Both answers are in: decide, build the list, queue for delivery. */
static void finish(epode__query *q)
{
    const epode_mem_t *mem = epode__net_mem(q->net);
    size_t usable[2];
    enum answer_kind k[2] = {classify(&q->srv[0], &usable[0]), classify(&q->srv[1], &usable[1])};
    size_t total = usable[0] + usable[1];

    if (k[0] == A_NOMEM || k[1] == A_NOMEM) {
        q->status = EPODE_ENOMEM; /* never a silently shortened list */
    } else if (total > 0) {
        epode__srv_rec *all = epode__alloc(mem, total * sizeof *all);
        q->targets = epode__zalloc(mem, total * sizeof *q->targets);
        if (!all || !q->targets) {
            epode__dealloc(mem, all);
            epode__dealloc(mem, q->targets);
            q->targets = NULL;
            q->status = EPODE_ENOMEM;
        } else {
            size_t m = 0;
            for (int i = 0; i < 2; i++)
                for (size_t r = 0; r < q->srv[i].n; r++)
                    if (!is_root(q->srv[i].recs[r].host))
                        all[m++] = q->srv[i].recs[r];
            epode__srv_order(all, total);
            for (size_t r = 0; r < total; r++) {
                memcpy(q->targets[r].host, all[r].host, sizeof all[r].host);
                q->targets[r].port = all[r].port;
                q->targets[r].direct_tls = all[r].direct_tls;
            }
            q->ntargets = total;
            q->status = 0;
            epode__dealloc(mem, all);
        }
    } else if (k[0] == A_TIMEOUT || k[1] == A_TIMEOUT) {
        q->status = EPODE_ETIMEDOUT;
    } else if (k[1] == A_DOT) {
        /* _xmpp-client said "not here": RFC 6120 forbids the fallback. A
         * "." on _xmpps-client alone only says "no direct TLS". */
        q->status = EPODE_EDNS;
    } else {
        q->status = set_single_target(q, q->domain);
    }

    for (int i = 0; i < 2; i++) {
        epode__dealloc(mem, q->srv[i].recs);
        q->srv[i].recs = NULL;
        q->srv[i].n = 0;
    }
    q->state = EPODE__Q_DONE;
    epode__net_queue(q);
}

/* Copies what c-ares parsed into our own records (our allocator, our
 * lifetime). Returns an ARES_ status for classify(). */
static int keep_records(epode__srv_answer *a, int direct_tls, const unsigned char *abuf, int alen)
{
    struct ares_srv_reply *reply = NULL;
    int rc = ares_parse_srv_reply(abuf, alen, &reply);
    if (rc != ARES_SUCCESS)
        return rc;
    size_t n = 0;
    for (struct ares_srv_reply *r = reply; r && n < MAX_RECORDS; r = r->next)
        if (r->host && strlen(r->host) < sizeof a->recs[0].host)
            n++;
    if (n == 0) {
        ares_free_data(reply);
        return ARES_ENODATA;
    }
    a->recs = epode__zalloc(epode__net_mem(a->q->net), n * sizeof *a->recs);
    if (!a->recs) {
        ares_free_data(reply);
        return ARES_ENOMEM;
    }
    size_t m = 0;
    for (struct ares_srv_reply *r = reply; r && m < n; r = r->next) {
        if (!r->host || strlen(r->host) >= sizeof a->recs[0].host)
            continue;
        epode__srv_rec *out = &a->recs[m++];
        out->priority = r->priority;
        out->weight = r->weight;
        out->port = r->port;
        out->direct_tls = direct_tls;
        strcpy(out->host, r->host);
    }
    a->n = m;
    ares_free_data(reply);
    return ARES_SUCCESS;
}

static void srv_answered(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
    (void)timeouts;
    epode__srv_answer *a = arg;
    epode__query *q = a->q;
    if (!epode__net_ares_end(q, status))
        return; /* canceled, or the net is going: q may be gone */
    int direct_tls = a == &q->srv[0];
    if (status == ARES_SUCCESS)
        status = keep_records(a, direct_tls, abuf, alen);
    a->status = status;
    a->done = 1;
    if (q->srv[0].done && q->srv[1].done)
        finish(q);
}

static int is_ip_literal(const char *s)
{
    unsigned char buf[sizeof(struct in6_addr)];
    return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

/* RFC 6761: "localhost" is the loopback and never asked of DNS (c-ares
 * 1.18 gives it from /etc/hosts, or itself, when connecting). */
static int is_localhost(const char *s)
{
    return strcasecmp(s, "localhost") == 0;
}

int epode__net_resolve_xmpp(epode__net *n, const char *domain, epode__targets_cb cb, void *user,
                            epode__query **out)
{
    if (!n || !domain || !cb)
        return EPODE_EINVAL;
    int rc = epode__net_usable(n);
    if (rc < 0)
        return rc;
    size_t len = strlen(domain);
    if (len > 0 && domain[len - 1] == '.')
        len--; /* "example.com." is example.com */
    if (len == 0 || len > 253)
        return EPODE_EINVAL;

    epode__query *q = epode__net_query_new(n, EPODE__Q_SRV);
    if (!q)
        return EPODE_ENOMEM;
    q->targets_cb = cb;
    q->user = user;
    memcpy(q->domain, domain, len);
    q->domain[len] = '\0';

    if (is_ip_literal(q->domain) || is_localhost(q->domain)) {
        /* No SRV for an address, and RFC 6761 keeps localhost off DNS. */
        rc = set_single_target(q, q->domain);
        if (rc < 0) {
            epode__net_query_discard(q);
            return rc;
        }
        q->status = 0;
        q->state = EPODE__Q_DONE;
        epode__net_queue(q);
    } else {
        ares_channel ch = epode__net_channel(n);
        char name[sizeof "_xmpps-client._tcp." + 256];
        for (int i = 0; i < 2; i++) {
            strcpy(name, service[i]);
            strcat(name, q->domain);
            epode__net_ares_begin(q);
            /* ares_query, not ares_search: no resolv.conf search domains. */
            ares_query(ch, name, C_IN, T_SRV, srv_answered, &q->srv[i]);
        }
    }
    if (out)
        *out = q;
    epode__net_update_timer(n, 0);
    return 0;
}
