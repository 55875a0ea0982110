/* lib/net/connect.c — reaching host:port: A and AAAA through c-ares'
 * getaddrinfo (no sorting of its own: IPv6 and IPv4 interleaved, IPv6
 * first, each family in DNS order), then one non-blocking connect at a
 * time, each with its deadline, until one succeeds. Every socket is
 * watched for WRITE, announced with watch(fd, 0) before it is closed or
 * handed over, and never blocks. The channel and delivery belong to
 * resolve.c. */
#define EPODE__NET_PRIVATE
#include "net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util/alloc.h"

#define MAX_ADDRS_PER_FAMILY 16

/* ---- words for `why` ----------------------------------------------------- */

static void format_addr(const epode__net_addr *a, char *buf, size_t len)
{
    char ip[INET6_ADDRSTRLEN];
    if (a->ss.ss_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&a->ss;
        if (!inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof ip))
            strcpy(ip, "?");
        snprintf(buf, len, "[%s]:%u", ip, (unsigned)ntohs(s6->sin6_port));
    } else {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)&a->ss;
        if (!inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof ip))
            strcpy(ip, "?");
        snprintf(buf, len, "%s:%u", ip, (unsigned)ntohs(s4->sin_port));
    }
}

/* Appends "ADDR: what" to q->why ("; " between attempts); truncates
 * quietly when the buffer is full. */
static void note_attempt(epode__query *q, const epode__net_addr *a, const char *what)
{
    char addr[INET6_ADDRSTRLEN + 16];
    format_addr(a, addr, sizeof addr);
    size_t used = strlen(q->why);
    if (used >= sizeof q->why - 1)
        return;
    snprintf(q->why + used, sizeof q->why - used, "%s%s: %s", used ? "; " : "", addr, what);
}

static void note_errno(epode__query *q, const epode__net_addr *a, int err)
{
    char buf[128];
    /* GNU strerror_r (we build with _GNU_SOURCE): may return a static string. */
    const char *s = strerror_r(err, buf, sizeof buf);
    note_attempt(q, a, s);
}

/* ---- results ------------------------------------------------------------- */

static void done(epode__query *q, int status)
{
    q->status = status;
    q->state = EPODE__Q_DONE;
    epode__net_queue(q);
}

/* Every address tried and none reached. */
static void exhausted(epode__query *q)
{
    if (q->attempts > 0 && q->timeouts == q->attempts)
        done(q, EPODE_ETIMEDOUT);
    else
        done(q, EPODE_ENET);
}

void epode__connect_deliver(epode__query *q)
{
    int fd = q->result_fd;
    q->result_fd = -1;
    if (q->status == EPODE_ECANCELED)
        snprintf(q->why, sizeof q->why, "canceled");
    else if (!q->why[0])
        snprintf(q->why, sizeof q->why, "%s", epode_strerror(q->status));
    q->connect_cb(q->user, q->status, q->status == 0 ? fd : -1, q->why);
}

static void close_attempt(epode__query *q)
{
    if (q->fd >= 0) {
        epode__net_watch(q->net, q->fd, 0);
        close(q->fd);
        q->fd = -1;
    }
    q->deadline = 0;
}

void epode__connect_release(epode__query *q)
{
    close_attempt(q);
    if (q->result_fd >= 0) { /* connected but never handed over: unwatched */
        close(q->result_fd);
        q->result_fd = -1;
    }
    epode__dealloc(epode__net_mem(q->net), q->addrs);
    q->addrs = NULL;
    q->naddrs = q->next_addr = 0;
}

/* ---- attempts ------------------------------------------------------------ */

/* Starts attempts from q->next_addr until one is under way (CONNECTING)
 * or none is left (DONE). A connect that fails at once moves on at once. */
static void next_attempt(epode__query *q)
{
    while (q->next_addr < q->naddrs) {
        const epode__net_addr *a = &q->addrs[q->next_addr++];
        q->attempts++;
        int fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
        if (fd < 0) {
            note_errno(q, a, errno); /* EAFNOSUPPORT without IPv6, EMFILE… */
            continue;
        }
        int rc = connect(fd, (const struct sockaddr *)&a->ss, a->len);
        if (rc == 0 || errno == EINPROGRESS || errno == EINTR) {
            /* 0 happens on some stacks for loopback: the fd is writable at
             * once and the SO_ERROR check below confirms it, so there is
             * one path. EINTR: the connect goes on in the background. */
            q->fd = fd;
            q->state = EPODE__Q_CONNECTING;
            q->deadline = q->timeout_ms ? epode__net_now_ms() + q->timeout_ms : 0;
            epode__net_watch(q->net, fd, EPODE__NET_WRITE);
            return;
        }
        note_errno(q, a, errno);
        close(fd); /* never announced, so nothing to withdraw */
    }
    exhausted(q);
}

void epode__connect_advance(epode__query *q)
{
    if (q->state == EPODE__Q_RESOLVED)
        next_attempt(q);
}

void epode__connect_ready(epode__query *q, unsigned revents)
{
    (void)revents; /* whatever woke us, SO_ERROR tells */
    const epode__net_addr *a = &q->addrs[q->next_addr - 1];
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(q->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        err = errno;
    if (err == 0) {
        struct sockaddr_storage peer;
        socklen_t plen = sizeof peer;
        if (getpeername(q->fd, (struct sockaddr *)&peer, &plen) < 0) {
            if (errno == ENOTCONN)
                return; /* not done yet: a stale or spurious wake-up */
            err = errno;
        }
    }
    if (err == 0) {
        char addr[INET6_ADDRSTRLEN + 16];
        format_addr(a, addr, sizeof addr);
        snprintf(q->why, sizeof q->why, "connected to %s", addr);
        epode__net_watch(q->net, q->fd, 0);
        q->result_fd = q->fd;
        q->fd = -1;
        q->deadline = 0;
        done(q, 0);
        return;
    }
    note_errno(q, a, err);
    close_attempt(q);
    next_attempt(q);
}

void epode__connect_check_deadline(epode__query *q, uint64_t now)
{
    if (q->kind != EPODE__Q_CONNECT || q->state != EPODE__Q_CONNECTING || !q->deadline ||
        now < q->deadline)
        return;
    note_attempt(q, &q->addrs[q->next_addr - 1], "timed out");
    q->timeouts++;
    close_attempt(q);
    next_attempt(q);
}

/* ---- addresses ----------------------------------------------------------- */

static int same_addr(const epode__net_addr *a, const struct sockaddr *sa, socklen_t len)
{
    return a->len == len && memcmp(&a->ss, sa, len) == 0;
}

/* Takes the addresses out of c-ares' list: IPv6 first, then alternating
 * (RFC 8305 §4), duplicates dropped, at most MAX_ADDRS_PER_FAMILY each.
 * Returns an ARES_ status. */
static int keep_addresses(epode__query *q, const struct ares_addrinfo *ai)
{
    const struct ares_addrinfo_node *v6[MAX_ADDRS_PER_FAMILY], *v4[MAX_ADDRS_PER_FAMILY];
    size_t n6 = 0, n4 = 0;
    for (const struct ares_addrinfo_node *node = ai ? ai->nodes : NULL; node;
         node = node->ai_next) {
        if (node->ai_family == AF_INET6 && n6 < MAX_ADDRS_PER_FAMILY &&
            node->ai_addrlen == sizeof(struct sockaddr_in6))
            v6[n6++] = node;
        else if (node->ai_family == AF_INET && n4 < MAX_ADDRS_PER_FAMILY &&
                 node->ai_addrlen == sizeof(struct sockaddr_in))
            v4[n4++] = node;
    }
    if (n6 + n4 == 0)
        return ARES_ENODATA;
    q->addrs = epode__zalloc(epode__net_mem(q->net), (n6 + n4) * sizeof *q->addrs);
    if (!q->addrs)
        return ARES_ENOMEM;
    size_t m = 0;
    for (size_t i = 0; i < n6 || i < n4; i++) {
        const struct ares_addrinfo_node *pair[2] = {i < n6 ? v6[i] : NULL, i < n4 ? v4[i] : NULL};
        for (int k = 0; k < 2; k++) {
            const struct ares_addrinfo_node *node = pair[k];
            if (!node)
                continue;
            /* Our port, whatever c-ares put there. */
            struct sockaddr_storage ss;
            memset(&ss, 0, sizeof ss);
            memcpy(&ss, node->ai_addr, node->ai_addrlen);
            if (node->ai_family == AF_INET6)
                ((struct sockaddr_in6 *)&ss)->sin6_port = htons(q->port);
            else
                ((struct sockaddr_in *)&ss)->sin_port = htons(q->port);
            int dup = 0;
            for (size_t j = 0; j < m && !dup; j++)
                dup = same_addr(&q->addrs[j], (struct sockaddr *)&ss, node->ai_addrlen);
            if (dup)
                continue;
            q->addrs[m].len = node->ai_addrlen;
            q->addrs[m].ss = ss;
            m++;
        }
    }
    q->naddrs = m;
    q->next_addr = 0;
    return ARES_SUCCESS;
}

static void addresses_answered(void *arg, int status, int timeouts, struct ares_addrinfo *ai)
{
    (void)timeouts;
    epode__query *q = arg;
    if (!epode__net_ares_end(q, status)) {
        ares_freeaddrinfo(ai);
        return; /* canceled, or the net is going: q may be gone */
    }
    if (status == ARES_SUCCESS)
        status = keep_addresses(q, ai);
    ares_freeaddrinfo(ai);
    if (status != ARES_SUCCESS) {
        snprintf(q->why, sizeof q->why, "resolving %s: %.120s", q->host,
                 status == ARES_ENODATA ? "no address" : ares_strerror(status));
        done(q, epode__net_err(status));
        return;
    }
    /* Connecting starts in process, not here: this may be running inside
     * epode__net_connect itself, or inside ares_destroy. */
    q->state = EPODE__Q_RESOLVED;
    epode__net_queue(q);
}

/* An IP literal becomes its address here: c-ares 1.18.1's getaddrinfo
 * sends "127.0.0.1" to DNS when asked for AF_UNSPEC (its IPv4 check is
 * overwritten by the IPv6 one), which would stall on a silent server. */
static int literal_address(epode__query *q)
{
    struct sockaddr_in6 s6;
    struct sockaddr_in s4;
    memset(&s6, 0, sizeof s6);
    memset(&s4, 0, sizeof s4);
    epode__net_addr a;
    memset(&a, 0, sizeof a);
    if (inet_pton(AF_INET, q->host, &s4.sin_addr) == 1) {
        s4.sin_family = AF_INET;
        s4.sin_port = htons(q->port);
        a.len = sizeof s4;
        memcpy(&a.ss, &s4, sizeof s4);
    } else if (inet_pton(AF_INET6, q->host, &s6.sin6_addr) == 1) {
        s6.sin6_family = AF_INET6;
        s6.sin6_port = htons(q->port);
        a.len = sizeof s6;
        memcpy(&a.ss, &s6, sizeof s6);
    } else {
        return 0;
    }
    q->addrs = epode__alloc(epode__net_mem(q->net), sizeof *q->addrs);
    if (!q->addrs)
        return EPODE_ENOMEM;
    q->addrs[0] = a;
    q->naddrs = 1;
    q->next_addr = 0;
    return 1;
}

int epode__net_connect(epode__net *n, const char *host, uint16_t port, unsigned timeout_ms,
                       epode__connect_cb cb, void *user, epode__query **out)
{
    if (!n || !host || !cb || port == 0)
        return EPODE_EINVAL;
    int rc = epode__net_usable(n);
    if (rc < 0)
        return rc;
    size_t len = strlen(host);
    if (len >= 2 && host[0] == '[' && host[len - 1] == ']') { /* "[::1]" */
        host++;
        len -= 2;
    }
    if (len == 0 || len > 255)
        return EPODE_EINVAL;

    epode__query *q = epode__net_query_new(n, EPODE__Q_CONNECT);
    if (!q)
        return EPODE_ENOMEM;
    q->connect_cb = cb;
    q->user = user;
    memcpy(q->host, host, len);
    q->host[len] = '\0';
    q->port = port;
    q->timeout_ms = timeout_ms;

    rc = literal_address(q);
    if (rc < 0) {
        epode__net_query_discard(q);
        return rc;
    }
    if (rc == 1) {
        q->state = EPODE__Q_RESOLVED; /* attempts start in process */
        epode__net_queue(q);
        if (out)
            *out = q;
        epode__net_update_timer(n, 0);
        return 0;
    }

    struct ares_addrinfo_hints hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_protocol = IPPROTO_TCP;
    /* Our order, not RFC 6724's: 1.18 sorts by probing each address with a
     * connected UDP socket, and would reorder addresses of one family. */
    hints.ai_flags = ARES_AI_NOSORT;
    ares_channel ch = epode__net_channel(n);
    epode__net_ares_begin(q);
    ares_getaddrinfo(ch, q->host, NULL, &hints, addresses_answered, q);

    if (out)
        *out = q;
    epode__net_update_timer(n, 0);
    return 0;
}
