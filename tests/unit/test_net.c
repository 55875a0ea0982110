/* tests/unit/test_net.c — name resolution and connecting (lib/net), driven
 * the way an owner drives it: a small poll() loop implements
 * epode__net_io, and a tiny DNS responder of the test's own (UDP on
 * 127.0.0.1, a random port, answers from a per-test table, or silence)
 * stands in for the DNS. Nothing leaves loopback; the system resolver is
 * never asked (every net gets dns_servers "127.0.0.1:PORT"). */
#include "test.h"

#include <arpa/inet.h>
#include <ares.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "net/net.h"

/* ---- little helpers ---------------------------------------------------------- */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

static int fd_is_open(int fd)
{
    return fcntl(fd, F_GETFD) != -1 || errno != EBADF;
}

/* A counting allocator: every test checks that net gives back all it took. */
static long g_live, g_allocs, g_fail_at = -1;
static long g_fx_fail_at = -1; /* what fx_start arms g_fail_at with */

static void *c_malloc(size_t size, void *user)
{
    (void)user;
    if (g_fail_at >= 0 && g_allocs++ == g_fail_at)
        return NULL;
    void *p = malloc(size);
    if (p)
        g_live++;
    return p;
}
static void *c_realloc(void *ptr, size_t size, void *user)
{
    (void)user;
    if (!ptr)
        return c_malloc(size, user);
    return realloc(ptr, size);
}
static void c_free(void *ptr, void *user)
{
    (void)user;
    if (ptr)
        g_live--;
    free(ptr);
}
static const epode_mem_t counting_mem = {c_malloc, c_realloc, c_free, NULL};

/* Set while a test is inside a call that starts a query: a result callback
 * that sees it set ran inside the starting call. */
static int g_in_start;

/* ---- the DNS responder ------------------------------------------------------- */

enum { T_A_ = 1, T_AAAA_ = 28, T_SRV_ = 33 };

typedef struct rr {
    const char *name;
    uint16_t type;
    uint16_t prio, weight, port; /* SRV */
    const char *data;            /* A/AAAA: the address; SRV: the target ("." for none) */
} rr;

typedef struct dns {
    int fd;
    uint16_t port;
    const rr *table;
    size_t n;
    int silent;
    int queries;
    char seen[16][260]; /* names asked, in order (first 16) */
    uint16_t seen_type[16];
} dns;

static int dns_start(dns *d, const rr *table, size_t n)
{
    memset(d, 0, sizeof *d);
    d->table = table;
    d->n = n;
    d->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (d->fd < 0)
        return -1;
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof sa;
    if (bind(d->fd, (struct sockaddr *)&sa, sizeof sa) < 0 ||
        getsockname(d->fd, (struct sockaddr *)&sa, &len) < 0) {
        close(d->fd);
        return -1;
    }
    d->port = ntohs(sa.sin_port);
    return 0;
}

static size_t put16(unsigned char *p, uint16_t v)
{
    p[0] = (unsigned char)(v >> 8);
    p[1] = (unsigned char)v;
    return 2;
}

/* Encodes a dotted name as labels; "." or "" is the root. */
static size_t put_name(unsigned char *p, const char *name)
{
    size_t o = 0;
    while (*name && strcmp(name, ".") != 0) {
        const char *dot = strchr(name, '.');
        size_t l = dot ? (size_t)(dot - name) : strlen(name);
        p[o++] = (unsigned char)l;
        memcpy(p + o, name, l);
        o += l;
        name += l;
        if (*name == '.')
            name++;
    }
    p[o++] = 0;
    return o;
}

static void dns_answer(dns *d, const unsigned char *q, size_t qlen, const struct sockaddr_in *from)
{
    if (qlen < 12 || q[4] != 0 || q[5] != 1)
        return;
    char name[260];
    size_t nl = 0, o = 12;
    while (o < qlen && q[o]) {
        size_t l = q[o++];
        if (o + l > qlen || nl + l + 1 >= sizeof name)
            return;
        if (nl)
            name[nl++] = '.';
        memcpy(name + nl, q + o, l);
        nl += l;
        o += l;
    }
    name[nl] = '\0';
    if (o + 5 > qlen)
        return;
    size_t qend = o + 5;
    uint16_t qtype = (uint16_t)(q[o + 1] << 8 | q[o + 2]);
    if (d->queries < 16) {
        strcpy(d->seen[d->queries], name);
        d->seen_type[d->queries] = qtype;
    }
    d->queries++;
    if (d->silent)
        return;

    unsigned char r[1500];
    memcpy(r, q, qend);
    int exists = 0;
    unsigned ancount = 0;
    size_t w = qend;
    for (size_t i = 0; i < d->n; i++) {
        const rr *e = &d->table[i];
        if (strcasecmp(e->name, name) != 0)
            continue;
        exists = 1;
        if (e->type != qtype)
            continue;
        w += put16(r + w, 0xC00C); /* the question's name */
        w += put16(r + w, e->type);
        w += put16(r + w, 1);
        w += put16(r + w, 0);
        w += put16(r + w, 60);
        size_t rdlen_at = w;
        w += 2;
        if (e->type == T_A_) {
            inet_pton(AF_INET, e->data, r + w);
            w += 4;
        } else if (e->type == T_AAAA_) {
            inet_pton(AF_INET6, e->data, r + w);
            w += 16;
        } else {
            w += put16(r + w, e->prio);
            w += put16(r + w, e->weight);
            w += put16(r + w, e->port);
            w += put_name(r + w, e->data);
        }
        put16(r + rdlen_at, (uint16_t)(w - rdlen_at - 2));
        ancount++;
    }
    r[2] = (unsigned char)(0x84 | (q[2] & 0x01)); /* QR, AA, RD as asked */
    r[3] = (unsigned char)(0x80 | (exists ? 0 : 3)); /* RA; NXDOMAIN if unknown */
    put16(r + 6, (uint16_t)ancount);
    put16(r + 8, 0);
    put16(r + 10, 0);
    sendto(d->fd, r, w, 0, (const struct sockaddr *)from, sizeof *from);
}

/* Answers every query waiting on the socket. */
static void dns_serve(dns *d)
{
    for (;;) {
        unsigned char buf[1500];
        struct sockaddr_in from;
        socklen_t fl = sizeof from;
        ssize_t n = recvfrom(d->fd, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl);
        if (n < 0)
            return;
        dns_answer(d, buf, (size_t)n, &from);
    }
}

/* ---- the owner's loop (implements epode__net_io) ------------------------------ */

typedef struct tloop {
    struct {
        int fd;
        unsigned ev;
    } w[64];
    int nw;
    int64_t due; /* absolute ms, -1: none */
    long last_timer;
    int timer_calls;
    int unwatch_unknown; /* watch(fd, 0) for an fd never watched */
    int ever[64];        /* fds ever watched with interest */
    unsigned ever_ev[64];
    int never;
    epode__net *net;
    dns *dns;
} tloop;

static void t_watch(void *user, int fd, unsigned ev)
{
    tloop *l = user;
    int i = 0;
    while (i < l->nw && l->w[i].fd != fd)
        i++;
    if (ev == 0) {
        if (i == l->nw) {
            l->unwatch_unknown++;
            return;
        }
        l->w[i] = l->w[--l->nw];
        return;
    }
    if (i == l->nw && l->nw < 64)
        l->nw++;
    l->w[i].fd = fd;
    l->w[i].ev = ev;
    if (l->never < 64) {
        l->ever[l->never] = fd;
        l->ever_ev[l->never++] = ev;
    }
}

static void t_timer(void *user, long ms)
{
    tloop *l = user;
    l->timer_calls++;
    l->last_timer = ms;
    l->due = ms < 0 ? -1 : now_ms() + ms;
}

static int is_watched(const tloop *l, int fd)
{
    for (int i = 0; i < l->nw; i++)
        if (l->w[i].fd == fd)
            return 1;
    return 0;
}

static void loop_turn(tloop *l, int max_wait)
{
    struct pollfd p[66];
    int np = 0;
    for (int i = 0; i < l->nw; i++) {
        p[np].fd = l->w[i].fd;
        p[np].events = (short)(((l->w[i].ev & EPODE__NET_READ) ? POLLIN : 0) |
                               ((l->w[i].ev & EPODE__NET_WRITE) ? POLLOUT : 0));
        p[np++].revents = 0;
    }
    int dns_at = -1;
    if (l->dns && l->dns->fd >= 0) {
        dns_at = np;
        p[np].fd = l->dns->fd;
        p[np].events = POLLIN;
        p[np++].revents = 0;
    }
    int wait = max_wait;
    if (l->due >= 0) {
        int64_t left = l->due - now_ms();
        if (left < 0)
            left = 0;
        if (left < wait)
            wait = (int)left;
    }
    if (poll(p, (nfds_t)np, wait) < 0)
        return;
    if (dns_at >= 0 && (p[dns_at].revents & POLLIN))
        dns_serve(l->dns);
    for (int i = 0; i < np; i++) {
        if (i == dns_at || !p[i].revents || !is_watched(l, p[i].fd))
            continue;
        unsigned ev = 0;
        if (p[i].revents & POLLIN)
            ev |= EPODE__NET_READ;
        if (p[i].revents & POLLOUT)
            ev |= EPODE__NET_WRITE;
        if (p[i].revents & (POLLERR | POLLHUP | POLLNVAL))
            ev |= EPODE__NET_READ | EPODE__NET_WRITE;
        epode__net_process(l->net, p[i].fd, ev);
    }
    if (l->due >= 0 && now_ms() >= l->due) {
        l->due = -1;
        epode__net_process(l->net, -1, 0);
    }
}

static int run_until(tloop *l, const int *flag, int max_ms)
{
    int64_t end = now_ms() + max_ms;
    while (!*flag) {
        int64_t left = end - now_ms();
        if (left <= 0)
            break;
        loop_turn(l, left > 50 ? 50 : (int)left);
    }
    return *flag;
}

static void run_for(tloop *l, int ms)
{
    int never = 0;
    run_until(l, &never, ms);
}

/* ---- fixture ----------------------------------------------------------------- */

typedef struct fixture {
    tloop l;
    dns d;
    int fds_before;
} fixture;

/* A net on counting_mem pointed at a fresh responder serving `table`. */
static int fx_start(fixture *f, const rr *table, size_t n, unsigned dns_timeout_ms, unsigned tries)
{
    memset(f, 0, sizeof *f);
    f->fds_before = count_fds();
    f->l.due = -1;
    f->l.last_timer = -2;
    g_live = 0;
    g_allocs = 0;
    g_fail_at = g_fx_fail_at;
    if (dns_start(&f->d, table, n) < 0)
        return -1;
    f->l.dns = &f->d;
    char servers[64];
    snprintf(servers, sizeof servers, "127.0.0.1:%u", (unsigned)f->d.port);
    epode__net_io io = {t_watch, t_timer, &f->l};
    epode__net_options o = {.dns_servers = servers,
                            .dns_timeout_ms = dns_timeout_ms ? dns_timeout_ms : 2000,
                            .dns_tries = tries ? tries : 2};
    return epode__net_new2(&counting_mem, &io, &o, &f->l.net);
}

/* Frees the net, closes the responder; 0 if nothing was left behind. */
static int fx_stop(fixture *f)
{
    epode__net_free(f->l.net);
    f->l.net = NULL;
    if (f->d.fd >= 0)
        close(f->d.fd);
    f->d.fd = -1;
    if (g_live != 0) {
        printf("# %ld blocks not freed\n", g_live);
        return -1;
    }
    if (f->l.nw != 0) {
        printf("# %d fds still watched\n", f->l.nw);
        return -1;
    }
    if (f->l.unwatch_unknown) {
        printf("# watch(fd, 0) for an fd never watched\n");
        return -1;
    }
    int after = count_fds();
    if (after != f->fds_before) {
        printf("# fds: %d before, %d after\n", f->fds_before, after);
        return -1;
    }
    return 0;
}

/* ---- results ---------------------------------------------------------------- */

typedef struct tres {
    int called, status, inside;
    size_t n;
    epode__target t[16];
} tres;

static void on_targets(void *user, int status, const epode__target *t, size_t n)
{
    tres *r = user;
    r->called++;
    r->inside |= g_in_start;
    r->status = status;
    r->n = n;
    for (size_t i = 0; i < n && i < 16; i++)
        r->t[i] = t[i];
}

typedef struct cres {
    int called, status, fd, inside;
    char why[600];
} cres;

static void on_connect(void *user, int status, int fd, const char *why)
{
    cres *r = user;
    r->called++;
    r->inside |= g_in_start;
    r->status = status;
    r->fd = fd;
    snprintf(r->why, sizeof r->why, "%s", why ? why : "(null)");
}

static int resolve(fixture *f, const char *domain, tres *r, epode__query **q)
{
    memset(r, 0, sizeof *r);
    g_in_start = 1;
    int rc = epode__net_resolve_xmpp(f->l.net, domain, on_targets, r, q);
    g_in_start = 0;
    return rc;
}

static int connect_to(fixture *f, const char *host, uint16_t port, unsigned timeout_ms, cres *r,
                      epode__query **q)
{
    memset(r, 0, sizeof *r);
    r->fd = -2;
    g_in_start = 1;
    int rc = epode__net_connect(f->l.net, host, port, timeout_ms, on_connect, r, q);
    g_in_start = 0;
    return rc;
}

/* ---- sockets to connect to ------------------------------------------------------ */

/* A listening TCP socket on ip:port (port 0: any); returns fd, sets *port. */
static int listen_on(const char *ip, uint16_t *port, int backlog)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    socklen_t len;
    int fam;
    if (strchr(ip, ':')) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
        fam = s6->sin6_family = AF_INET6;
        inet_pton(AF_INET6, ip, &s6->sin6_addr);
        s6->sin6_port = htons(*port);
        len = sizeof *s6;
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
        fam = s4->sin_family = AF_INET;
        inet_pton(AF_INET, ip, &s4->sin_addr);
        s4->sin_port = htons(*port);
        len = sizeof *s4;
    }
    int fd = socket(fam, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (fam == AF_INET6) {
        int one = 1;
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    }
    if (bind(fd, (struct sockaddr *)&ss, len) < 0 || listen(fd, backlog) < 0 ||
        getsockname(fd, (struct sockaddr *)&ss, &len) < 0) {
        close(fd);
        return -1;
    }
    *port = ntohs(fam == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                  : ((struct sockaddr_in *)&ss)->sin_port);
    return fd;
}

/* A port on 127.0.0.1 nothing listens on. */
static uint16_t closed_port(void)
{
    uint16_t port = 0;
    int fd = listen_on("127.0.0.1", &port, 1);
    if (fd < 0)
        return 0;
    close(fd);
    return port;
}

/* An address that swallows SYNs: a listener with backlog 0 whose one
 * accept-queue slot is taken by a filler connection and never accepted;
 * further SYNs are dropped, so a connect there never completes. */
typedef struct blackhole {
    int lfd, filler;
    uint16_t port;
} blackhole;

static int blackhole_open(blackhole *b, const char *ip, uint16_t port)
{
    b->port = port;
    b->lfd = listen_on(ip, &b->port, 0);
    if (b->lfd < 0)
        return -1;
    b->filler = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons(b->port)};
    inet_pton(AF_INET, ip, &sa.sin_addr);
    if (b->filler < 0 || connect(b->filler, (struct sockaddr *)&sa, sizeof sa) < 0) {
        close(b->lfd);
        if (b->filler >= 0)
            close(b->filler);
        return -1;
    }
    return 0;
}

static void blackhole_close(blackhole *b)
{
    close(b->filler);
    close(b->lfd);
}

/* ================================================================================
 * SRV
 * ============================================================================== */

TEST(srv_orders_by_priority)
{
    static const rr table[] = {
        {"_xmpp-client._tcp.prio.test", T_SRV_, 20, 0, 5224, "c.prio.test"},
        {"_xmpp-client._tcp.prio.test", T_SRV_, 10, 0, 5222, "a.prio.test"},
        {"_xmpp-client._tcp.prio.test", T_SRV_, 30, 0, 5225, "d.prio.test"},
        {"_xmpp-client._tcp.prio.test", T_SRV_, 15, 0, 5223, "b.prio.test"},
    };
    fixture f;
    CHECK_INT(fx_start(&f, table, 4, 0, 0), 0);
    tres r;
    CHECK_INT(resolve(&f, "prio.test", &r, NULL), 0);
    CHECK(run_until(&f.l, &r.called, 3000));
    CHECK_INT(r.status, 0);
    CHECK_INT(r.n, 4);
    CHECK_STR(r.t[0].host, "a.prio.test");
    CHECK_INT(r.t[0].port, 5222);
    CHECK_STR(r.t[1].host, "b.prio.test");
    CHECK_STR(r.t[2].host, "c.prio.test");
    CHECK_STR(r.t[3].host, "d.prio.test");
    CHECK_INT(r.t[3].port, 5225);
    for (int i = 0; i < 4; i++)
        CHECK_INT(r.t[i].direct_tls, 0);
    CHECK_INT(r.called, 1);
    CHECK_INT(r.inside, 0);
    CHECK_INT(fx_stop(&f), 0);
}

TEST(srv_weights_are_weighted_random)
{
    static const rr table[] = {
        {"_xmpp-client._tcp.w.test", T_SRV_, 10, 20, 5222, "light.w.test"},
        {"_xmpp-client._tcp.w.test", T_SRV_, 20, 50, 5222, "later.w.test"},
        {"_xmpp-client._tcp.w.test", T_SRV_, 10, 0, 5222, "zero.w.test"},
        {"_xmpp-client._tcp.w.test", T_SRV_, 10, 80, 5222, "heavy.w.test"},
    };
    fixture f;
    CHECK_INT(fx_start(&f, table, 4, 0, 0), 0);
    int heavy_first = 0, light_first = 0, zero_not_last = 0;
    const int runs = 300;
    for (int run = 0; run < runs; run++) {
        tres r;
        CHECK_INT(resolve(&f, "w.test", &r, NULL), 0);
        CHECK(run_until(&f.l, &r.called, 3000));
        CHECK_INT(r.status, 0);
        CHECK_INT(r.n, 4);
        CHECK_STR(r.t[3].host, "later.w.test"); /* priority before weight */
        int seen_zero = 0, seen_heavy = 0, seen_light = 0;
        for (int i = 0; i < 3; i++) {
            seen_zero += strcmp(r.t[i].host, "zero.w.test") == 0;
            seen_heavy += strcmp(r.t[i].host, "heavy.w.test") == 0;
            seen_light += strcmp(r.t[i].host, "light.w.test") == 0;
        }
        CHECK(seen_zero == 1 && seen_heavy == 1 && seen_light == 1);
        heavy_first += strcmp(r.t[0].host, "heavy.w.test") == 0;
        light_first += strcmp(r.t[0].host, "light.w.test") == 0;
        zero_not_last += strcmp(r.t[2].host, "zero.w.test") != 0;
    }
    printf("# first: heavy %d, light %d of %d; zero-weight not last %d\n", heavy_first,
           light_first, runs, zero_not_last);
    /* Expected about 80 % / 20 %; zero weight ahead of another ~5 %. */
    CHECK(heavy_first > 2 * light_first);
    CHECK(light_first > runs / 20);
    CHECK(zero_not_last > 0);
    CHECK_INT(fx_stop(&f), 0);
}

TEST(srv_merges_xmpps_and_xmpp_queried_together)
{
    static const rr table[] = {
        {"_xmpps-client._tcp.merge.test", T_SRV_, 10, 0, 5223, "tls.merge.test"},
        {"_xmpps-client._tcp.merge.test", T_SRV_, 20, 0, 5223, "tls2.merge.test"},
        {"_xmpp-client._tcp.merge.test", T_SRV_, 10, 0, 5222, "plain.merge.test"},
        {"_xmpp-client._tcp.merge.test", T_SRV_, 5, 0, 5222, "first.merge.test"},
    };
    fixture f;
    CHECK_INT(fx_start(&f, table, 4, 0, 0), 0);
    tres r;
    CHECK_INT(resolve(&f, "merge.test", &r, NULL), 0);
    /* Both questions are on the wire before any answer is read. */
    dns_serve(&f.d);
    CHECK_INT(f.d.queries, 2);
    CHECK_STR(f.d.seen[0], "_xmpps-client._tcp.merge.test");
    CHECK_STR(f.d.seen[1], "_xmpp-client._tcp.merge.test");
    CHECK_INT(f.d.seen_type[0], T_SRV_);
    CHECK(run_until(&f.l, &r.called, 3000));
    CHECK_INT(r.status, 0);
    CHECK_INT(r.n, 4);
    CHECK_STR(r.t[0].host, "first.merge.test");
    CHECK_INT(r.t[0].direct_tls, 0);
    CHECK_STR(r.t[1].host, "tls.merge.test"); /* equal priority and weight: TLS first */
    CHECK_INT(r.t[1].direct_tls, 1);
    CHECK_INT(r.t[1].port, 5223);
    CHECK_STR(r.t[2].host, "plain.merge.test");
    CHECK_INT(r.t[2].direct_tls, 0);
    CHECK_STR(r.t[3].host, "tls2.merge.test");
    CHECK_INT(r.t[3].direct_tls, 1);
    CHECK_INT(fx_stop(&f), 0);
}

TEST(srv_direct_tls_first_at_equal_nonzero_weight)
{
    static const rr table[] = {
        {"_xmpp-client._tcp.eq.test", T_SRV_, 10, 50, 5222, "x.eq.test"},
        {"_xmpps-client._tcp.eq.test", T_SRV_, 10, 50, 5223, "x.eq.test"},
    };
    fixture f;
    CHECK_INT(fx_start(&f, table, 2, 0, 0), 0);
    for (int run = 0; run < 20; run++) {
        tres r;
        CHECK_INT(resolve(&f, "eq.test", &r, NULL), 0);
        CHECK(run_until(&f.l, &r.called, 3000));
        CHECK_INT(r.n, 2);
        CHECK_INT(r.t[0].direct_tls, 1);
        CHECK_INT(r.t[0].port, 5223);
        CHECK_INT(r.t[1].direct_tls, 0);
    }
    CHECK_INT(fx_stop(&f), 0);
}

TEST(srv_dot_means_service_not_offered)
{
    static const rr table[] = {
        /* _xmpp-client ".": no service, and no fallback */
        {"_xmpp-client._tcp.dot.test", T_SRV_, 0, 0, 0, "."},
        /* both "." */
        {"_xmpp-client._tcp.dots.test", T_SRV_, 0, 0, 0, "."},
        {"_xmpps-client._tcp.dots.test", T_SRV_, 0, 0, 0, "."},
        /* only _xmpps-client ".": just no direct TLS; fall back */
        {"_xmpps-client._tcp.nodirect.test", T_SRV_, 0, 0, 0, "."},
        /* "." next to real records is ignored */
        {"_xmpps-client._tcp.mixed.test", T_SRV_, 0, 0, 0, "."},
        {"_xmpp-client._tcp.mixed.test", T_SRV_, 5, 0, 5269, "real.mixed.test"},
    };
    fixture f;
    CHECK_INT(fx_start(&f, table, 6, 0, 0), 0);
    tres r;
    CHECK_INT(resolve(&f, "dot.test", &r, NULL), 0);
    CHECK(run_until(&f.l, &r.called, 3000));
    CHECK_INT(r.status, EPODE_EDNS);
    CHECK_INT(r.n, 0);

    CHECK_INT(resolve(&f, "dots.test", &r, NULL), 0);
    CHECK(run_until(&f.l, &r.called, 3000));
    CHECK_INT(r.status, EPODE_EDNS);

    CHECK_INT(resolve(&f, "nodirect.test", &r, NULL), 0);
    CHECK(run_until(&f.l, &r.called, 3000));
    CHECK_INT(r.status, 0);
    CHECK_INT(r.n, 1);
    CHECK_STR(r.t[0].host, "nodirect.test");
    CHECK_INT(r.t[0].port, 5222);
    CHECK_INT(r.t[0].direct_tls, 0);

    CHECK_INT(resolve(&f, "mixed.test", &r, NULL), 0);
    CHECK(run_until(&f.l, &r.called, 3000));
    CHECK_INT(r.status, 0);
    CHECK_INT(r.n, 1);
    CHECK_STR(r.t[0].host, "real.mixed.test");
    CHECK_INT(r.t[0].port, 5269);
    CHECK_INT(fx_stop(&f), 0);
}

TEST(srv_no_records_falls_back_to_domain_5222)
{
    static const rr table[] = {
        /* the name exists (so NOERROR, no SRV data) */
        {"_xmpp-client._tcp.nodata.test", T_A_, 0, 0, 0, "127.0.0.1"},
    };
    fixture f;
    CHECK_INT(fx_start(&f, table, 1, 0, 0), 0);
    tres r;
    CHECK_INT(resolve(&f, "none.test", &r, NULL), 0); /* NXDOMAIN twice */
    CHECK(run_until(&f.l, &r.called, 3000));
    CHECK_INT(r.status, 0);
    CHECK_INT(r.n, 1);
    CHECK_STR(r.t[0].host, "none.test");
    CHECK_INT(r.t[0].port, 5222);
    CHECK_INT(r.t[0].direct_tls, 0);
    CHECK_INT(f.d.queries, 2);

    CHECK_INT(resolve(&f, "nodata.test.", &r, NULL), 0); /* trailing dot too */
    CHECK(run_until(&f.l, &r.called, 3000));
    CHECK_INT(r.status, 0);
    CHECK_INT(r.n, 1);
    CHECK_STR(r.t[0].host, "nodata.test");
    CHECK_INT(r.t[0].port, 5222);
    CHECK_INT(fx_stop(&f), 0);
}

TEST(srv_ip_literal_and_localhost_skip_dns)
{
    fixture f;
    CHECK_INT(fx_start(&f, NULL, 0, 0, 0), 0);
    const char *names[] = {"127.0.0.1", "::1", "localhost", "LOCALHOST"};
    for (int i = 0; i < 4; i++) {
        tres r;
        CHECK_INT(resolve(&f, names[i], &r, NULL), 0);
        CHECK_INT(r.called, 0);
        CHECK(run_until(&f.l, &r.called, 1000));
        CHECK_INT(r.status, 0);
        CHECK_INT(r.n, 1);
        CHECK_STR(r.t[0].host, names[i]);
        CHECK_INT(r.t[0].port, 5222);
        CHECK_INT(r.inside, 0);
    }
    CHECK_INT(f.d.queries, 0);
    CHECK_INT(fx_stop(&f), 0);
}

TEST(srv_silent_dns_times_out)
{
    fixture f;
    CHECK_INT(fx_start(&f, NULL, 0, 100, 2), 0);
    f.d.silent = 1;
    tres r;
    int64_t t0 = now_ms();
    CHECK_INT(resolve(&f, "silent.test", &r, NULL), 0);
    CHECK(run_until(&f.l, &r.called, 5000));
    int64_t took = now_ms() - t0;
    printf("# timed out after %lld ms, %d queries\n", (long long)took, f.d.queries);
    CHECK_INT(r.status, EPODE_ETIMEDOUT);
    CHECK_INT(r.n, 0);
    CHECK(took >= 250);  /* 100 ms, then 200 ms for the second try */
    CHECK(took < 2000);
    CHECK_INT(f.d.queries, 4); /* two names, two tries each */
    CHECK_INT(f.l.last_timer, -1); /* nothing left to wait for */
    CHECK_INT(fx_stop(&f), 0);
}

TEST(dns_channel_is_remade_after_repeated_timeouts)
{
    static const rr table[] = {
        {"back.test", T_A_, 0, 0, 0, "127.0.0.1"},
    };
    fixture f;
    CHECK_INT(fx_start(&f, table, 1, 50, 1), 0);
    CHECK_INT(epode__net_channel_generation(f.l.net), 1);
    f.d.silent = 1;
    for (int i = 0; i < 2; i++) { /* two lookups, two timeouts each */
        tres r;
        CHECK_INT(resolve(&f, "silent.test", &r, NULL), 0);
        CHECK(run_until(&f.l, &r.called, 3000));
        CHECK_INT(r.status, EPODE_ETIMEDOUT);
    }
    CHECK_INT(epode__net_channel_generation(f.l.net), 1); /* remade on next use */
    f.d.silent = 0;
    uint16_t port = 0;
    int lfd = listen_on("127.0.0.1", &port, 4);
    CHECK(lfd >= 0);
    cres c;
    CHECK_INT(connect_to(&f, "back.test", port, 2000, &c, NULL), 0);
    CHECK_INT(epode__net_channel_generation(f.l.net), 2);
    CHECK(run_until(&f.l, &c.called, 3000));
    CHECK_INT(c.status, 0);
    close(c.fd);
    close(lfd);
    CHECK_INT(fx_stop(&f), 0);
}

/* ================================================================================
 * connecting
 * ============================================================================== */

TEST(connect_to_loopback_listener)
{
    fixture f;
    CHECK_INT(fx_start(&f, NULL, 0, 0, 0), 0);
    uint16_t port = 0;
    int lfd = listen_on("127.0.0.1", &port, 4);
    CHECK(lfd >= 0);
    cres r;
    CHECK_INT(connect_to(&f, "127.0.0.1", port, 2000, &r, NULL), 0);
    CHECK_INT(r.called, 0);
    CHECK(run_until(&f.l, &r.called, 3000));
    CHECK_INT(r.status, 0);
    CHECK(r.fd >= 0);
    CHECK_INT(r.inside, 0);
    CHECK(!is_watched(&f.l, r.fd)); /* "stop watching" said before handing over */
    char want[64];
    snprintf(want, sizeof want, "connected to 127.0.0.1:%u", (unsigned)port);
    CHECK_STR(r.why, want);
    CHECK(fcntl(r.fd, F_GETFL) & O_NONBLOCK);
    CHECK(fcntl(r.fd, F_GETFD) & FD_CLOEXEC);
    int a = accept(lfd, NULL, NULL);
    CHECK(a >= 0);
    CHECK_INT(write(r.fd, "hi", 2), 2);
    char buf[4];
    CHECK_INT(read(a, buf, sizeof buf), 2);
    close(a);
    close(r.fd);
    close(lfd);
    CHECK_INT(f.d.queries, 0); /* numeric: no DNS */
    CHECK_INT(fx_stop(&f), 0);
}

TEST(connect_to_ipv6_literal)
{
    fixture f;
    CHECK_INT(fx_start(&f, NULL, 0, 0, 0), 0);
    uint16_t port = 0;
    int lfd = listen_on("::1", &port, 4);
    if (lfd < 0) {
        printf("# no IPv6 loopback here: skipped\n");
        CHECK_INT(fx_stop(&f), 0);
        return;
    }
    cres r;
    CHECK_INT(connect_to(&f, "[::1]", port, 2000, &r, NULL), 0);
    CHECK(run_until(&f.l, &r.called, 3000));
    CHECK_INT(r.status, 0);
    char want[64];
    snprintf(want, sizeof want, "connected to [::1]:%u", (unsigned)port);
    CHECK_STR(r.why, want);
    close(r.fd);
    close(lfd);
    CHECK_INT(fx_stop(&f), 0);
}

TEST(connect_to_localhost)
{
    fixture f;
    CHECK_INT(fx_start(&f, NULL, 0, 0, 0), 0);
    uint16_t port = 0;
    int lfd = listen_on("127.0.0.1", &port, 4);
    CHECK(lfd >= 0);
    cres r;
    CHECK_INT(connect_to(&f, "localhost", port, 2000, &r, NULL), 0);
    CHECK_INT(r.called, 0);
    CHECK(run_until(&f.l, &r.called, 3000));
    CHECK_INT(r.status, 0); /* via ::1 first if /etc/hosts lists it: refused, then 127.0.0.1 */
    CHECK(r.fd >= 0);
    CHECK_INT(r.inside, 0);
    close(r.fd);
    close(lfd);
    CHECK_INT(f.d.queries, 0); /* /etc/hosts or RFC 6761, never DNS */
    CHECK_INT(fx_stop(&f), 0);
}

TEST(connect_to_closed_port_is_refused)
{
    fixture f;
    CHECK_INT(fx_start(&f, NULL, 0, 0, 0), 0);
    uint16_t port = closed_port();
    CHECK(port != 0);
    cres r;
    CHECK_INT(connect_to(&f, "127.0.0.1", port, 2000, &r, NULL), 0);
    CHECK(run_until(&f.l, &r.called, 3000));
    CHECK_INT(r.status, EPODE_ENET);
    CHECK_INT(r.fd, -1);
    printf("# why: %s\n", r.why);
    CHECK(strstr(r.why, "refused") != NULL);
    CHECK(strstr(r.why, "127.0.0.1:") != NULL);
    CHECK_INT(fx_stop(&f), 0);
}

TEST(connect_second_address_after_first_refuses)
{
    fixture f;
    uint16_t port = 0;
    int lfd = listen_on("127.0.0.1", &port, 4); /* 127.0.0.2:port refuses */
    CHECK(lfd >= 0);
    static const rr table[] = {
        {"two.test", T_A_, 0, 0, 0, "127.0.0.2"},
        {"two.test", T_A_, 0, 0, 0, "127.0.0.1"},
    };
    CHECK_INT(fx_start(&f, table, 2, 0, 0), 0);
    f.fds_before--; /* lfd was opened before the count */
    cres r;
    CHECK_INT(connect_to(&f, "two.test", port, 2000, &r, NULL), 0);
    CHECK(run_until(&f.l, &r.called, 3000));
    CHECK_INT(r.status, 0);
    char want[64];
    snprintf(want, sizeof want, "connected to 127.0.0.1:%u", (unsigned)port);
    CHECK_STR(r.why, want);
    CHECK(f.d.queries >= 2); /* A and AAAA */
    close(r.fd);
    close(lfd);
    CHECK_INT(fx_stop(&f), 0);
}

TEST(connect_tries_ipv6_first_then_interleaves)
{
    static const rr table[] = {
        {"mix.test", T_A_, 0, 0, 0, "127.0.0.2"},
        {"mix.test", T_A_, 0, 0, 0, "127.0.0.3"},
        {"mix.test", T_AAAA_, 0, 0, 0, "::1"},
        {"mix.test", T_AAAA_, 0, 0, 0, "::ffff:127.0.0.4"},
    };
    fixture f;
    CHECK_INT(fx_start(&f, table, 4, 0, 0), 0);
    uint16_t port = closed_port();
    CHECK(port != 0);
    cres r;
    CHECK_INT(connect_to(&f, "mix.test", port, 2000, &r, NULL), 0);
    CHECK(run_until(&f.l, &r.called, 3000));
    CHECK_INT(r.status, EPODE_ENET);
    printf("# why: %s\n", r.why);
    char a[4][64];
    snprintf(a[0], 64, "[::1]:%u: ", (unsigned)port);
    snprintf(a[1], 64, "127.0.0.2:%u: ", (unsigned)port);
    snprintf(a[2], 64, "[::ffff:127.0.0.4]:%u: ", (unsigned)port);
    snprintf(a[3], 64, "127.0.0.3:%u: ", (unsigned)port);
    const char *prev = r.why;
    for (int i = 0; i < 4; i++) {
        const char *at = strstr(r.why, a[i]);
        CHECK(at != NULL);
        CHECK(at >= prev);
        prev = at;
    }
    CHECK_INT(fx_stop(&f), 0);
}

TEST(connect_unknown_host_is_dns_error)
{
    fixture f;
    CHECK_INT(fx_start(&f, NULL, 0, 0, 0), 0);
    cres r;
    CHECK_INT(connect_to(&f, "missing.test", 5222, 2000, &r, NULL), 0);
    CHECK(run_until(&f.l, &r.called, 3000));
    CHECK_INT(r.status, EPODE_EDNS);
    CHECK_INT(r.fd, -1);
    printf("# why: %s\n", r.why);
    CHECK(strstr(r.why, "missing.test") != NULL);
    CHECK_INT(fx_stop(&f), 0);
}

TEST(connect_silent_dns_times_out)
{
    fixture f;
    CHECK_INT(fx_start(&f, NULL, 0, 100, 1), 0);
    f.d.silent = 1;
    cres r;
    CHECK_INT(connect_to(&f, "slow.test", 5222, 2000, &r, NULL), 0);
    CHECK(run_until(&f.l, &r.called, 3000));
    CHECK_INT(r.status, EPODE_ETIMEDOUT);
    printf("# why: %s\n", r.why);
    CHECK(strstr(r.why, "slow.test") != NULL);
    CHECK_INT(fx_stop(&f), 0);
}

TEST(connect_attempt_timeout_moves_to_next_address)
{
    blackhole b;
    CHECK_INT(blackhole_open(&b, "127.0.0.2", 0), 0);
    uint16_t port = b.port;
    int lfd = listen_on("127.0.0.1", &port, 4);
    CHECK(lfd >= 0);
    static const rr table[] = {
        {"slowfirst.test", T_A_, 0, 0, 0, "127.0.0.2"},
        {"slowfirst.test", T_A_, 0, 0, 0, "127.0.0.1"},
    };
    fixture f;
    CHECK_INT(fx_start(&f, table, 2, 0, 0), 0);
    f.fds_before -= 3;
    cres r;
    int64_t t0 = now_ms();
    CHECK_INT(connect_to(&f, "slowfirst.test", port, 200, &r, NULL), 0);
    CHECK(run_until(&f.l, &r.called, 3000));
    int64_t took = now_ms() - t0;
    CHECK_INT(r.status, 0);
    char want[64];
    snprintf(want, sizeof want, "connected to 127.0.0.1:%u", (unsigned)port);
    CHECK_STR(r.why, want);
    CHECK(took >= 190);
    CHECK(took < 2000);
    close(r.fd);
    close(lfd);
    blackhole_close(&b);
    CHECK_INT(fx_stop(&f), 0);
}

TEST(connect_every_attempt_timing_out_is_timedout)
{
    blackhole b;
    CHECK_INT(blackhole_open(&b, "127.0.0.1", 0), 0);
    fixture f;
    CHECK_INT(fx_start(&f, NULL, 0, 0, 0), 0);
    f.fds_before -= 2;
    cres r;
    int64_t t0 = now_ms();
    CHECK_INT(connect_to(&f, "127.0.0.1", b.port, 150, &r, NULL), 0);
    CHECK(run_until(&f.l, &r.called, 3000));
    int64_t took = now_ms() - t0;
    CHECK_INT(r.status, EPODE_ETIMEDOUT);
    CHECK_INT(r.fd, -1);
    printf("# why: %s (after %lld ms)\n", r.why, (long long)took);
    CHECK(strstr(r.why, "timed out") != NULL);
    CHECK(took >= 140);
    CHECK_INT(f.l.nw, 0);
    blackhole_close(&b);
    CHECK_INT(fx_stop(&f), 0);
}

/* ================================================================================
 * canceling, deferral, the loop contract
 * ============================================================================== */

TEST(cancel_before_connecting)
{
    fixture f;
    CHECK_INT(fx_start(&f, NULL, 0, 0, 0), 0);
    uint16_t port = 0;
    int lfd = listen_on("127.0.0.1", &port, 4);
    CHECK(lfd >= 0);
    cres r;
    epode__query *q = NULL;
    CHECK_INT(connect_to(&f, "127.0.0.1", port, 2000, &r, &q), 0);
    CHECK(q != NULL);
    epode__query_cancel(q);
    run_for(&f.l, 100);
    CHECK_INT(r.called, 0);
    CHECK_INT(f.l.nw, 0);
    CHECK_INT(f.l.last_timer, -1);
    /* Only the net itself and its copy of dns_servers are still held. */
    CHECK_INT(g_live, 2);
    close(lfd);
    CHECK_INT(fx_stop(&f), 0);
}

TEST(cancel_while_connecting_closes_the_socket)
{
    blackhole b;
    CHECK_INT(blackhole_open(&b, "127.0.0.1", 0), 0);
    fixture f;
    CHECK_INT(fx_start(&f, NULL, 0, 0, 0), 0);
    f.fds_before -= 2;
    cres r;
    epode__query *q = NULL;
    CHECK_INT(connect_to(&f, "127.0.0.1", b.port, 0, &r, &q), 0);
    for (int i = 0; i < 20 && f.l.nw == 0; i++)
        loop_turn(&f.l, 10);
    CHECK_INT(f.l.nw, 1);
    CHECK_INT(f.l.w[0].ev, EPODE__NET_WRITE);
    int fd = f.l.w[0].fd;
    CHECK(fd_is_open(fd));
    epode__query_cancel(q);
    CHECK_INT(f.l.nw, 0);   /* watch(fd, 0) said */
    CHECK(!fd_is_open(fd)); /* and closed */
    run_for(&f.l, 100);
    CHECK_INT(r.called, 0);
    CHECK_INT(g_live, 2);
    blackhole_close(&b);
    CHECK_INT(fx_stop(&f), 0);
}

TEST(cancel_while_resolving)
{
    fixture f;
    CHECK_INT(fx_start(&f, NULL, 0, 100, 1), 0);
    f.d.silent = 1;
    cres r;
    tres t;
    epode__query *q1 = NULL, *q2 = NULL;
    CHECK_INT(connect_to(&f, "slow.test", 5222, 2000, &r, &q1), 0);
    CHECK_INT(resolve(&f, "slow.test", &t, &q2), 0);
    run_for(&f.l, 20);
    CHECK(f.d.queries >= 4); /* A, AAAA, two SRV */
    epode__query_cancel(q1);
    epode__query_cancel(q2);
    epode__query_cancel(NULL);
    /* c-ares 1.18 cannot drop one lookup: its answer (here: its timeout)
     * still comes, is dropped, and only then is the query freed. */
    int64_t end = now_ms() + 2000;
    while (f.l.due >= 0 && now_ms() < end)
        loop_turn(&f.l, 50);
    CHECK_INT(f.l.last_timer, -1);
    CHECK_INT(r.called, 0);
    CHECK_INT(t.called, 0);
    CHECK_INT(g_live, 2);
    CHECK_INT(f.l.nw, 0); /* c-ares closed its idle socket */
    CHECK_INT(fx_stop(&f), 0);
}

static epode__query *g_victim;
static int g_started_inside;
static cres g_later;
static fixture *g_fx;

static void cancel_other_cb(void *user, int status, int fd, const char *why)
{
    on_connect(user, status, fd, why);
    epode__query_cancel(g_victim);
    /* Starting a query from a callback: delivered on a later turn. */
    g_in_start = 1;
    int rc = epode__net_connect(g_fx->l.net, "127.0.0.1", 9, 100, on_connect, &g_later, NULL);
    g_in_start = 0;
    g_started_inside = rc == 0 && g_later.called == 0;
    if (fd >= 0)
        close(fd);
}

TEST(callbacks_may_cancel_and_start_queries)
{
    blackhole b;
    CHECK_INT(blackhole_open(&b, "127.0.0.2", 0), 0);
    fixture f;
    CHECK_INT(fx_start(&f, NULL, 0, 0, 0), 0);
    f.fds_before -= 2;
    g_fx = &f;
    memset(&g_later, 0, sizeof g_later);
    g_started_inside = 0;
    uint16_t port = 0;
    int lfd = listen_on("127.0.0.1", &port, 4);
    CHECK(lfd >= 0);
    cres first, victim;
    memset(&first, 0, sizeof first);
    memset(&victim, 0, sizeof victim);
    CHECK_INT(epode__net_connect(f.l.net, "127.0.0.1", port, 2000, cancel_other_cb, &first, NULL),
              0);
    CHECK_INT(epode__net_connect(f.l.net, "127.0.0.2", b.port, 0, on_connect, &victim, &g_victim),
              0);
    CHECK(run_until(&f.l, &first.called, 3000));
    CHECK(g_started_inside);
    CHECK(run_until(&f.l, &g_later.called, 3000));
    CHECK_INT(g_later.inside, 0);
    CHECK(g_later.status == EPODE_ENET || g_later.status == EPODE_ETIMEDOUT);
    run_for(&f.l, 50);
    CHECK_INT(victim.called, 0);
    CHECK_INT(f.l.nw, 0); /* the victim's socket went with it */
    close(lfd);
    blackhole_close(&b);
    CHECK_INT(fx_stop(&f), 0);
}

TEST(callbacks_never_run_inside_the_starting_call)
{
    fixture f;
    CHECK_INT(fx_start(&f, NULL, 0, 0, 0), 0);
    uint16_t port = 0;
    int lfd = listen_on("127.0.0.1", &port, 4);
    CHECK(lfd >= 0);
    /* Each of these is answered by c-ares inside the call that asks. */
    const char *hosts[] = {"127.0.0.1", "localhost", "::1", "hidden.onion"};
    for (int i = 0; i < 4; i++) {
        cres r;
        f.l.last_timer = -2;
        CHECK_INT(connect_to(&f, hosts[i], port, 1000, &r, NULL), 0);
        CHECK_INT(r.called, 0);
        CHECK_INT(f.l.last_timer, 0); /* "call process now" */
        CHECK(run_until(&f.l, &r.called, 3000));
        CHECK_INT(r.called, 1);
        CHECK_INT(r.inside, 0);
        if (r.fd >= 0)
            close(r.fd);
        if (i == 3)
            CHECK_INT(r.status, EPODE_EDNS);
    }
    tres t;
    f.l.last_timer = -2;
    CHECK_INT(resolve(&f, "127.0.0.1", &t, NULL), 0);
    CHECK_INT(t.called, 0);
    CHECK_INT(f.l.last_timer, 0);
    CHECK(run_until(&f.l, &t.called, 3000));
    CHECK_INT(t.inside, 0);
    /* The DNS ones are async anyway; still never inside. */
    CHECK_INT(resolve(&f, "async.test", &t, NULL), 0);
    CHECK_INT(t.called, 0);
    CHECK(run_until(&f.l, &t.called, 3000));
    CHECK_INT(t.inside, 0);
    close(lfd);
    CHECK_INT(fx_stop(&f), 0);
}

TEST(cares_sockets_are_reported_through_watch)
{
    fixture f;
    CHECK_INT(fx_start(&f, NULL, 0, 0, 0), 0);
    tres r;
    CHECK_INT(resolve(&f, "watched.test", &r, NULL), 0);
    CHECK(f.l.nw >= 1);
    int fd = f.l.w[0].fd;
    CHECK(f.l.w[0].ev & EPODE__NET_READ);
    int type = 0;
    socklen_t tl = sizeof type;
    CHECK_INT(getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl), 0);
    CHECK_INT(type, SOCK_DGRAM);
    struct sockaddr_in peer;
    socklen_t pl = sizeof peer;
    CHECK_INT(getpeername(fd, (struct sockaddr *)&peer, &pl), 0);
    CHECK_INT(ntohs(peer.sin_port), f.d.port);
    CHECK(f.l.last_timer > 0); /* c-ares' deadline, reported */
    CHECK(f.l.last_timer <= 2000);
    CHECK(run_until(&f.l, &r.called, 3000));
    CHECK_INT(r.status, 0);
    /* c-ares closes idle sockets: said before closing. */
    CHECK(!is_watched(&f.l, fd));
    CHECK_INT(f.l.nw, 0);
    CHECK_INT(f.l.last_timer, -1);
    CHECK_INT(fx_stop(&f), 0);
}

static int g_cancel_calls;
static void count_cancel(void *user, int status, int fd, const char *why)
{
    on_connect(user, status, fd, why);
    g_cancel_calls++;
}
static void count_cancel_t(void *user, int status, const epode__target *t, size_t n)
{
    on_targets(user, status, t, n);
    g_cancel_calls++;
}

TEST(free_cancels_what_is_pending)
{
    blackhole b;
    CHECK_INT(blackhole_open(&b, "127.0.0.1", 0), 0);
    fixture f;
    CHECK_INT(fx_start(&f, NULL, 0, 0, 0), 0);
    f.fds_before -= 2;
    f.d.silent = 1;
    g_cancel_calls = 0;
    cres c1, c2;
    tres t;
    memset(&c1, 0, sizeof c1);
    memset(&c2, 0, sizeof c2);
    memset(&t, 0, sizeof t);
    CHECK_INT(epode__net_connect(f.l.net, "127.0.0.1", b.port, 0, count_cancel, &c1, NULL), 0);
    CHECK_INT(epode__net_connect(f.l.net, "slow.test", 5222, 0, count_cancel, &c2, NULL), 0);
    CHECK_INT(epode__net_resolve_xmpp(f.l.net, "slow.test", count_cancel_t, &t, NULL), 0);
    for (int i = 0; i < 20 && f.l.nw < 2; i++)
        loop_turn(&f.l, 10);
    CHECK_INT(f.l.nw, 2); /* the connect attempt and c-ares' socket */
    epode__net_free(f.l.net);
    f.l.net = NULL;
    CHECK_INT(g_cancel_calls, 3);
    CHECK_INT(c1.status, EPODE_ECANCELED);
    CHECK_INT(c1.fd, -1);
    CHECK_STR(c1.why, "canceled");
    CHECK_INT(c2.status, EPODE_ECANCELED);
    CHECK_INT(t.status, EPODE_ECANCELED);
    CHECK_INT(f.l.nw, 0);
    CHECK_INT(f.l.last_timer, -1);
    blackhole_close(&b);
    CHECK_INT(fx_stop(&f), 0);
}

TEST(bad_arguments_are_refused_without_callback)
{
    fixture f;
    CHECK_INT(fx_start(&f, NULL, 0, 0, 0), 0);
    cres r;
    tres t;
    char longname[300];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    CHECK_INT(connect_to(&f, "", 5222, 0, &r, NULL), EPODE_EINVAL);
    CHECK_INT(connect_to(&f, "[]", 5222, 0, &r, NULL), EPODE_EINVAL);
    CHECK_INT(connect_to(&f, "host.test", 0, 0, &r, NULL), EPODE_EINVAL);
    CHECK_INT(connect_to(&f, longname, 5222, 0, &r, NULL), EPODE_EINVAL);
    CHECK_INT(epode__net_connect(f.l.net, NULL, 5222, 0, on_connect, &r, NULL), EPODE_EINVAL);
    CHECK_INT(epode__net_connect(f.l.net, "h.test", 5222, 0, NULL, &r, NULL), EPODE_EINVAL);
    CHECK_INT(resolve(&f, "", &t, NULL), EPODE_EINVAL);
    CHECK_INT(resolve(&f, ".", &t, NULL), EPODE_EINVAL);
    CHECK_INT(resolve(&f, longname, &t, NULL), EPODE_EINVAL);
    CHECK_INT(epode__net_resolve_xmpp(NULL, "x.test", on_targets, &t, NULL), EPODE_EINVAL);
    run_for(&f.l, 30);
    CHECK_INT(r.called, 0);
    CHECK_INT(t.called, 0);
    CHECK_INT(g_live, 2);

    tloop l;
    memset(&l, 0, sizeof l);
    epode__net_io io = {t_watch, t_timer, &l};
    epode__net *n = NULL;
    CHECK_INT(epode__net_new(&counting_mem, &io, "", &n), EPODE_EINVAL);
    CHECK_INT(epode__net_new(&counting_mem, &io, "not an address", &n), EPODE_EINVAL);
    epode__net_io half = {t_watch, NULL, &l};
    CHECK_INT(epode__net_new(&counting_mem, &half, "127.0.0.1:53", &n), EPODE_EINVAL);
    CHECK(n == NULL);
    epode__net_free(NULL);
    epode__net_process(NULL, -1, 0);
    CHECK_INT(fx_stop(&f), 0);
}

/* Fails each allocation of net in turn (c-ares' own allocations are
 * process-wide and not covered): every run ends cleanly, with the right
 * result or EPODE_ENOMEM, and gives every block back. */
TEST(allocation_failures_are_clean)
{
    static const rr table[] = {
        {"_xmpp-client._tcp.oom.test", T_SRV_, 10, 5, 5222, "a.oom.test"},
        {"_xmpps-client._tcp.oom.test", T_SRV_, 10, 5, 5223, "b.oom.test"},
        {"host.oom.test", T_A_, 0, 0, 0, "127.0.0.1"},
    };
    uint16_t port = 0;
    int lfd = listen_on("127.0.0.1", &port, 64);
    CHECK(lfd >= 0);
    CHECK(fcntl(lfd, F_SETFL, O_NONBLOCK) == 0);
    int clean_run = 0;
    for (long fail_at = 0; fail_at < 200 && !clean_run; fail_at++) {
        fixture f;
        g_fx_fail_at = fail_at;
        int rc = fx_start(&f, table, 3, 0, 0);
        g_fx_fail_at = -1;
        if (rc == 0) {
            tres t;
            cres c1, c2;
            memset(&t, 0, sizeof t);
            memset(&c1, 0, sizeof c1);
            memset(&c2, 0, sizeof c2);
            int r1 = resolve(&f, "oom.test", &t, NULL);
            int r2 = connect_to(&f, "127.0.0.1", port, 1000, &c1, NULL);
            int r3 = connect_to(&f, "host.oom.test", port, 1000, &c2, NULL);
            CHECK(r1 == 0 || r1 == EPODE_ENOMEM);
            CHECK(r2 == 0 || r2 == EPODE_ENOMEM);
            CHECK(r3 == 0 || r3 == EPODE_ENOMEM);
            if (r1 == 0)
                CHECK(run_until(&f.l, &t.called, 3000));
            if (r2 == 0)
                CHECK(run_until(&f.l, &c1.called, 3000));
            if (r3 == 0)
                CHECK(run_until(&f.l, &c2.called, 3000));
            CHECK(t.status == 0 || t.status == EPODE_ENOMEM);
            CHECK(c1.status == 0 || c1.status == EPODE_ENOMEM);
            CHECK(c2.status == 0 || c2.status == EPODE_ENOMEM);
            if (r1 == 0 && t.status == 0)
                CHECK_INT(t.n, 2);
            if (c1.called && c1.fd >= 0)
                close(c1.fd);
            if (c2.called && c2.fd >= 0)
                close(c2.fd);
            clean_run = g_allocs <= fail_at; /* nothing was failed this time */
        } else {
            CHECK_INT(rc, EPODE_ENOMEM);
        }
        g_fail_at = -1;
        /* Accept what reached the listener so the fd count holds. */
        for (;;) {
            int a = accept4(lfd, NULL, NULL, SOCK_NONBLOCK);
            if (a < 0)
                break;
            close(a);
        }
        CHECK_INT(fx_stop(&f), 0);
    }
    CHECK(clean_run);
    printf("# a clean run after failing each of the first %ld allocations in turn\n",
           g_allocs);
    close(lfd);
}

TEST_MAIN
