/* lib/transport/tcp.c — the bottom of a transport stack: a connected,
 * non-blocking socket. Translates errno into EPODE_E… codes with words in
 * t->error; never blocks and never raises SIGPIPE. */
#include "transport/transport.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util/alloc.h"

typedef struct tcp {
    epode__transport base;
    int fd;
    int write_blocked; /* the last write met a full socket buffer */
} tcp;

/* strerror_r has two incompatible signatures; this works with both. */
static const char *errno_text(int err, char *tmp, size_t len)
{
#if defined(__GLIBC__) && defined(_GNU_SOURCE)
    return strerror_r(err, tmp, len);
#else
    if (strerror_r(err, tmp, len) != 0)
        snprintf(tmp, len, "error %d", err);
    return tmp;
#endif
}

static int net_error(epode__transport *t, const char *what, int err)
{
    char tmp[128];
    epode__transport_set_error(t, "%s: %s", what, errno_text(err, tmp, sizeof tmp));
    return EPODE_ENET;
}

static long tcp_read(epode__transport *t, void *buf, size_t len)
{
    tcp *c = (tcp *)t;
    if (len == 0)
        return EPODE_EINVAL;
    if (len > LONG_MAX)
        len = LONG_MAX;
    for (;;) {
        ssize_t n = recv(c->fd, buf, len, 0);
        if (n >= 0)
            return (long)n;
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return EPODE_EAGAIN;
        return net_error(t, "receive failed", errno);
    }
}

static long tcp_write(epode__transport *t, const void *buf, size_t len)
{
    tcp *c = (tcp *)t;
    if (len == 0)
        return 0;
    if (len > LONG_MAX)
        len = LONG_MAX;
    for (;;) {
        ssize_t n = send(c->fd, buf, len, MSG_NOSIGNAL);
        if (n >= 0) {
            c->write_blocked = 0;
            return (long)n;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            c->write_blocked = 1;
            return EPODE_EAGAIN;
        }
        return net_error(t, "send failed", errno);
    }
}

static unsigned tcp_wants(epode__transport *t)
{
    return EPODE__READ | (((tcp *)t)->write_blocked ? EPODE__WRITE : 0u);
}

static int tcp_fd(epode__transport *t)
{
    return ((tcp *)t)->fd;
}

static size_t tcp_pending(epode__transport *t)
{
    (void)t;
    return 0;
}

static int tcp_shutdown(epode__transport *t)
{
    tcp *c = (tcp *)t;
    /* The peer may be gone already: nothing left to say then. */
    if (shutdown(c->fd, SHUT_WR) < 0 && errno != ENOTCONN)
        return net_error(t, "shutdown failed", errno);
    return 0;
}

static void tcp_free(epode__transport *t)
{
    tcp *c = (tcp *)t;
    close(c->fd);
    epode__transport_clear_error(t);
    epode__dealloc(t->mem, c);
}

static const epode__transport_ops tcp_ops;

int epode__tcp_peer_is_loopback(epode__transport *t)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (!t || t->ops != &tcp_ops || getpeername(((tcp *)t)->fd, (struct sockaddr *)&ss, &len) < 0)
        return 0;
    if (ss.ss_family == AF_INET)
        return (ntohl(((struct sockaddr_in *)&ss)->sin_addr.s_addr) >> 24) == 127;
    if (ss.ss_family == AF_INET6) {
        const struct in6_addr *a = &((struct sockaddr_in6 *)&ss)->sin6_addr;
        if (IN6_IS_ADDR_LOOPBACK(a))
            return 1;
        return IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127;
    }
    return 0;
}

static const epode__transport_ops tcp_ops = {
    .name = "tcp",
    .read = tcp_read,
    .write = tcp_write,
    .wants = tcp_wants,
    .fd = tcp_fd,
    .pending = tcp_pending,
    .shutdown = tcp_shutdown,
    .free = tcp_free,
};

int epode__tcp_new(const epode_mem_t *mem, int fd, epode__transport **out)
{
    if (fd < 0 || !out)
        return EPODE_EINVAL;
    int type;
    socklen_t tlen = sizeof type;
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tlen) < 0 || type != SOCK_STREAM)
        return EPODE_EINVAL;
    tcp *c = epode__zalloc(mem, sizeof *c);
    if (!c)
        return EPODE_ENOMEM;
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0 || (!(flags & O_NONBLOCK) && fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)) {
        epode__dealloc(mem, c);
        return EPODE_EINVAL;
    }
    /* Stanzas are small and latency matters more than packet count.
     * Unix sockets have no such option: their error is expected. */
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);

    c->base.ops = &tcp_ops;
    c->base.mem = mem;
    c->fd = fd;
    *out = &c->base;
    return 0;
}
