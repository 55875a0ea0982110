/* tests/unit/test_transport.c — the memory pair and the tcp transport:
 * bytes in order, would-block, end of stream, errors in words, and no
 * SIGPIPE when the peer is gone. (TLS is in test_tls.c.) */
#include "test.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include "transport/transport.h"

/* ---- an allocator that fails on request and counts what is live ------------ */

static long fail_at = -1, n_allocs, live;

static void *t_malloc(size_t size, void *user)
{
    (void)user;
    if (fail_at >= 0 && n_allocs++ == fail_at)
        return NULL;
    void *p = malloc(size);
    if (p)
        live++;
    return p;
}

static void *t_realloc(void *ptr, size_t size, void *user)
{
    (void)user;
    if (fail_at >= 0 && n_allocs++ == fail_at)
        return NULL;
    void *p = realloc(ptr, size);
    if (p && !ptr)
        live++;
    return p;
}

static void t_free(void *ptr, void *user)
{
    (void)user;
    if (ptr)
        live--;
    free(ptr);
}

static const epode_mem_t test_mem = {t_malloc, t_realloc, t_free, NULL};

static void fail_reset(long at)
{
    fail_at = at;
    n_allocs = 0;
}

/* ---- memory pair ---------------------------------------------------------- */

TEST(memory_pair_round_trip)
{
    epode__transport *a, *b;
    char buf[64];
    live = 0;
    CHECK_INT(epode__memory_pair(&test_mem, &a, &b), 0);
    CHECK_INT(epode__transport_fd(a), -1);
    CHECK_INT(epode__transport_write(a, "hello", 5), 5);
    CHECK_INT(epode__transport_pending(b), 5);
    CHECK_INT(epode__transport_pending(a), 0);
    CHECK_INT(epode__transport_read(b, buf, sizeof buf), 5);
    CHECK(memcmp(buf, "hello", 5) == 0);
    CHECK_INT(epode__transport_write(b, "world!", 6), 6);
    CHECK_INT(epode__transport_read(a, buf, 3), 3);
    CHECK(memcmp(buf, "wor", 3) == 0);
    CHECK_INT(epode__transport_read(a, buf, sizeof buf), 3);
    CHECK(memcmp(buf, "ld!", 3) == 0);
    CHECK(epode__transport_wants(a) & EPODE__READ);
    epode__transport_free(a);
    epode__transport_free(b);
    CHECK_INT(live, 0);
}

TEST(memory_read_when_empty_is_eagain)
{
    epode__transport *a, *b;
    char buf[8];
    CHECK_INT(epode__memory_pair(NULL, &a, &b), 0);
    CHECK_INT(epode__transport_read(a, buf, sizeof buf), EPODE_EAGAIN);
    CHECK_INT(epode__transport_read(b, buf, sizeof buf), EPODE_EAGAIN);
    CHECK_INT(epode__transport_read(b, buf, 0), EPODE_EINVAL);
    CHECK_INT(epode__transport_write(a, buf, 0), 0);
    epode__transport_free(b);
    epode__transport_free(a);
}

TEST(memory_eof_after_peer_free)
{
    epode__transport *a, *b;
    char buf[16];
    live = 0;
    CHECK_INT(epode__memory_pair(&test_mem, &a, &b), 0);
    CHECK_INT(epode__transport_write(a, "last words", 10), 10);
    CHECK_INT(epode__transport_write(b, "unread", 6), 6);
    epode__transport_free(a);
    /* What was sent before the close still arrives, then EOF. */
    CHECK_INT(epode__transport_read(b, buf, sizeof buf), 10);
    CHECK(memcmp(buf, "last words", 10) == 0);
    CHECK_INT(epode__transport_read(b, buf, sizeof buf), 0);
    CHECK_INT(epode__transport_read(b, buf, sizeof buf), 0);
    CHECK_INT(epode__transport_write(b, "x", 1), EPODE_ENET);
    CHECK(strstr(epode__transport_error(b), "closed") != NULL);
    epode__transport_free(b);
    CHECK_INT(live, 0);
}

TEST(memory_eof_after_peer_shutdown)
{
    epode__transport *a, *b;
    char buf[16];
    CHECK_INT(epode__memory_pair(NULL, &a, &b), 0);
    CHECK_INT(epode__transport_write(a, "bye", 3), 3);
    CHECK_INT(epode__transport_shutdown(a), 0);
    CHECK_INT(epode__transport_write(a, "more", 4), EPODE_ESTATE);
    CHECK_INT(epode__transport_read(b, buf, sizeof buf), 3);
    CHECK_INT(epode__transport_read(b, buf, sizeof buf), 0);
    /* Half-close: the other direction still works. */
    CHECK_INT(epode__transport_write(b, "ok", 2), 2);
    CHECK_INT(epode__transport_read(a, buf, sizeof buf), 2);
    epode__transport_free(b);
    epode__transport_free(a);
}

TEST(memory_limit_makes_short_writes)
{
    epode__transport *a, *b;
    char buf[32];
    CHECK_INT(epode__memory_pair(NULL, &a, &b), 0);
    epode__memory_set_limit(a, 10);
    CHECK_INT(epode__transport_write(a, "0123456789abcdef", 16), 10);
    CHECK_INT(epode__transport_write(a, "abcdef", 6), EPODE_EAGAIN);
    CHECK(epode__transport_wants(a) & EPODE__WRITE);
    CHECK_INT(epode__transport_read(b, buf, 4), 4);
    CHECK(!(epode__transport_wants(a) & EPODE__WRITE));
    CHECK_INT(epode__transport_write(a, "abcdef", 6), 4);
    CHECK_INT(epode__transport_read(b, buf, sizeof buf), 10);
    CHECK(memcmp(buf, "456789abcd", 10) == 0);
    /* The other direction is unbounded. */
    static char big[100000];
    CHECK_INT(epode__transport_write(b, big, sizeof big), (long)sizeof big);
    epode__transport_free(a);
    epode__transport_free(b);
}

static unsigned char pattern(size_t i)
{
    return (unsigned char)((i * 131u + (i >> 8) * 7u) & 0xff);
}

TEST(memory_large_transfer_in_small_pieces)
{
    enum { TOTAL = 1 << 20 };
    epode__transport *a, *b;
    live = 0;
    CHECK_INT(epode__memory_pair(&test_mem, &a, &b), 0);
    epode__memory_set_limit(a, 1000);
    size_t sent = 0, got = 0;
    unsigned char chunk[13];
    int stalls = 0;
    while (got < TOTAL) {
        /* Write in 7-byte pieces until the bounded queue is full... */
        while (sent < TOTAL) {
            unsigned char piece[7];
            size_t n = TOTAL - sent < 7 ? TOTAL - sent : 7;
            for (size_t i = 0; i < n; i++)
                piece[i] = pattern(sent + i);
            long w = epode__transport_write(a, piece, n);
            if (w == EPODE_EAGAIN) {
                stalls++;
                break;
            }
            CHECK(w > 0);
            sent += (size_t)w;
        }
        /* ...and read in 13-byte pieces, part of it. */
        for (int k = 0; k < 50; k++) {
            long r = epode__transport_read(b, chunk, sizeof chunk);
            if (r == EPODE_EAGAIN)
                break;
            CHECK(r > 0);
            for (long i = 0; i < r; i++)
                CHECK_INT(chunk[i], pattern(got + (size_t)i));
            got += (size_t)r;
        }
        CHECK_INT(epode__transport_pending(b), sent - got);
    }
    CHECK(stalls > 100);
    epode__transport_free(a);
    epode__transport_free(b);
    CHECK_INT(live, 0);
}

TEST(memory_pair_survives_failing_allocations)
{
    for (long at = 0;; at++) {
        epode__transport *a = NULL, *b = NULL;
        live = 0;
        fail_reset(at);
        int r = epode__memory_pair(&test_mem, &a, &b);
        if (r == EPODE_ENOMEM) {
            CHECK(a == NULL && b == NULL);
            CHECK_INT(live, 0);
            continue;
        }
        CHECK_INT(r, 0);
        long w = epode__transport_write(a, "data", 4);
        if (w == EPODE_ENOMEM) {
            CHECK(epode__transport_error(a)[0] != '\0');
            epode__transport_free(a);
            epode__transport_free(b);
            CHECK_INT(live, 0);
            continue;
        }
        CHECK_INT(w, 4);
        epode__transport_free(a);
        epode__transport_free(b);
        CHECK_INT(live, 0);
        break;
    }
    fail_reset(-1);
}

/* ---- tcp ------------------------------------------------------------------ */

static int wait_fd(int fd, short events)
{
    struct pollfd p = {.fd = fd, .events = events};
    return poll(&p, 1, 2000);
}

TEST(tcp_round_trip_over_socketpair)
{
    int sv[2];
    char buf[64];
    CHECK_INT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    epode__transport *t;
    live = 0;
    CHECK_INT(epode__tcp_new(&test_mem, sv[0], &t), 0);
    CHECK_INT(epode__transport_fd(t), sv[0]);
    CHECK(fcntl(sv[0], F_GETFL) & O_NONBLOCK); /* made non-blocking */
    CHECK_INT(epode__transport_read(t, buf, sizeof buf), EPODE_EAGAIN);
    CHECK_INT(epode__transport_write(t, "<stream>", 8), 8);
    CHECK_INT(read(sv[1], buf, sizeof buf), 8);
    CHECK(memcmp(buf, "<stream>", 8) == 0);
    CHECK_INT(write(sv[1], "reply", 5), 5);
    CHECK_INT(epode__transport_read(t, buf, sizeof buf), 5);
    CHECK(memcmp(buf, "reply", 5) == 0);
    CHECK_INT(epode__transport_wants(t), EPODE__READ);
    CHECK_INT(epode__transport_pending(t), 0);
    epode__transport_free(t);
    CHECK_INT(live, 0);
    /* Freeing closed the fd: the peer sees EOF. */
    CHECK_INT(read(sv[1], buf, sizeof buf), 0);
    close(sv[1]);
}

TEST(tcp_eof_when_peer_closes)
{
    int sv[2];
    char buf[16];
    CHECK_INT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    epode__transport *t;
    CHECK_INT(epode__tcp_new(NULL, sv[0], &t), 0);
    CHECK_INT(write(sv[1], "end", 3), 3);
    close(sv[1]);
    CHECK_INT(epode__transport_read(t, buf, sizeof buf), 3);
    CHECK_INT(epode__transport_read(t, buf, sizeof buf), 0);
    epode__transport_free(t);
}

TEST(tcp_write_to_closed_peer_is_enet_not_sigpipe)
{
    /* With the default SIGPIPE action a plain send() would kill us. */
    struct sigaction old, dfl = {.sa_handler = SIG_DFL};
    sigaction(SIGPIPE, &dfl, &old);
    int sv[2];
    CHECK_INT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    epode__transport *t;
    CHECK_INT(epode__tcp_new(NULL, sv[0], &t), 0);
    close(sv[1]);
    long r = epode__transport_write(t, "x", 1);
    CHECK_INT(r, EPODE_ENET);
    CHECK(strstr(epode__transport_error(t), "send failed: ") == t->error);
    CHECK(strlen(epode__transport_error(t)) > strlen("send failed: "));
    epode__transport_free(t);
    sigaction(SIGPIPE, &old, NULL);
}

TEST(tcp_full_socket_is_eagain_and_wants_write)
{
    int sv[2];
    CHECK_INT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    epode__transport *t;
    CHECK_INT(epode__tcp_new(NULL, sv[0], &t), 0);
    static char block[65536];
    size_t total = 0;
    long r;
    while ((r = epode__transport_write(t, block, sizeof block)) > 0)
        total += (size_t)r;
    CHECK_INT(r, EPODE_EAGAIN);
    CHECK(total > 0);
    CHECK(epode__transport_wants(t) & EPODE__WRITE);
    /* Drain everything; writing works again and WRITE is no longer needed. */
    static char sink[65536];
    size_t drained = 0;
    while (drained < total) {
        ssize_t n = read(sv[1], sink, sizeof sink);
        CHECK(n > 0);
        drained += (size_t)n;
    }
    CHECK_INT(epode__transport_write(t, "y", 1), 1);
    CHECK_INT(epode__transport_wants(t), EPODE__READ);
    epode__transport_free(t);
    close(sv[1]);
}

TEST(tcp_shutdown_sends_fin_and_keeps_reading)
{
    int sv[2];
    char buf[16];
    CHECK_INT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    epode__transport *t;
    CHECK_INT(epode__tcp_new(NULL, sv[0], &t), 0);
    CHECK_INT(epode__transport_write(t, "</stream>", 9), 9);
    CHECK_INT(epode__transport_shutdown(t), 0);
    CHECK_INT(read(sv[1], buf, sizeof buf), 9);
    CHECK_INT(read(sv[1], buf, sizeof buf), 0);
    CHECK_INT(write(sv[1], "late", 4), 4);
    CHECK_INT(epode__transport_read(t, buf, sizeof buf), 4);
    CHECK_INT(epode__transport_write(t, "x", 1), EPODE_ENET);
    epode__transport_free(t);
    close(sv[1]);
}

TEST(tcp_rejects_what_is_not_a_stream_socket)
{
    int p[2];
    epode__transport *t = NULL;
    CHECK_INT(pipe(p), 0);
    CHECK_INT(epode__tcp_new(NULL, p[0], &t), EPODE_EINVAL);
    CHECK(t == NULL);
    CHECK_INT(epode__tcp_new(NULL, -1, &t), EPODE_EINVAL);
    /* The caller still owns the fd. */
    CHECK(fcntl(p[0], F_GETFD) >= 0);
    close(p[0]);
    close(p[1]);
}

TEST(tcp_new_out_of_memory_leaves_fd_to_caller)
{
    int sv[2];
    CHECK_INT(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    epode__transport *t = NULL;
    live = 0;
    fail_reset(0);
    CHECK_INT(epode__tcp_new(&test_mem, sv[0], &t), EPODE_ENOMEM);
    fail_reset(-1);
    CHECK(t == NULL);
    CHECK_INT(live, 0);
    CHECK(fcntl(sv[0], F_GETFD) >= 0);
    close(sv[0]);
    close(sv[1]);
}

/* A connected loopback TCP pair: *client is non-blocking. */
static int loopback_pair(int *client, int *server)
{
    int l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof a) < 0 || listen(l, 1) < 0 ||
        getsockname(l, (struct sockaddr *)&a, &alen) < 0)
        return -1;
    int c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (c < 0)
        return -1;
    if (connect(c, (struct sockaddr *)&a, sizeof a) < 0 && errno != EINPROGRESS)
        return -1;
    int s = accept(l, NULL, NULL);
    close(l);
    if (s < 0 || wait_fd(c, POLLOUT) != 1)
        return -1;
    *client = c;
    *server = s;
    return 0;
}

TEST(tcp_over_loopback)
{
    int c, s;
    char buf[64];
    CHECK_INT(loopback_pair(&c, &s), 0);
    epode__transport *t;
    CHECK_INT(epode__tcp_new(NULL, c, &t), 0);
    int nodelay = 0;
    socklen_t len = sizeof nodelay;
    CHECK_INT(getsockopt(c, IPPROTO_TCP, TCP_NODELAY, &nodelay, &len), 0);
    CHECK(nodelay != 0);
    CHECK_INT(epode__transport_write(t, "ping", 4), 4);
    CHECK_INT(read(s, buf, sizeof buf), 4);
    CHECK_INT(write(s, "pong", 4), 4);
    CHECK_INT(wait_fd(c, POLLIN), 1);
    CHECK_INT(epode__transport_read(t, buf, sizeof buf), 4);
    CHECK(memcmp(buf, "pong", 4) == 0);

    /* The peer goes away: EOF, then writes fail with words, no signal. */
    close(s);
    CHECK_INT(wait_fd(c, POLLIN), 1);
    CHECK_INT(epode__transport_read(t, buf, sizeof buf), 0);
    long r = 0;
    for (int i = 0; i < 100 && r >= 0; i++) {
        r = epode__transport_write(t, "data", 4);
        if (r >= 0)
            usleep(1000); /* the RST comes back after the first write */
    }
    CHECK_INT(r, EPODE_ENET);
    CHECK(strstr(epode__transport_error(t), "send failed: ") != NULL);
    epode__transport_free(t);
}

TEST_MAIN
