/* bench/fake_server.c — a small, fast, fake XMPP server for the
 * connection benchmarks (bench/conn_bench.c, bench/strophe_bench.c).
 *
 * Loopback only (127.0.0.1), no TLS, epoll, one process. It is not an XML
 * parser: it finds tags with memchr() and looks at their first bytes,
 * which is all a benchmark needs from it:
 *
 *   stream header        -> our header + features (SASL ANONYMOUS only);
 *                           after <success/>, header + features (bind)
 *   <auth .../>          -> <success/> (whatever the mechanism says)
 *   first <iq type=set>  -> bind result (romeo@montague.example/orchard)
 *   <iq id='bench-push-N'>  -> result, then N pre-serialized chat messages
 *                           (made once at start, written in large chunks);
 *                           resets this connection's counters
 *   <iq id='bench-reset…'>  -> resets the counters and the CPU baseline
 *   <iq id='bench-stats…'>  -> result carrying
 *                           <stats xmlns='urn:epode:bench' stanzas= bytes=
 *                           cpu_us=/> since the last reset or push
 *   any other iq get/set -> empty result (so a ping round-trips)
 *   </stream:stream>     -> </stream:stream>, then close
 *
 * Messages received after bind are counted (closing </message> tags, or
 * self-closed <message/>), with the bytes received.
 *
 *   bench/fake_server [--port P] [--port-file FILE] [--messages N]
 *
 * Prints "port P" on stdout once listening (and writes P to FILE).
 * Stops on SIGTERM/SIGINT.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <arpa/inet.h>
#include <unistd.h>

#define DOMAIN "montague.example"
#define BOUND_JID "romeo@montague.example/orchard"

#define HEADER "<?xml version='1.0'?><stream:stream xmlns='jabber:client' " \
               "xmlns:stream='http://etherx.jabber.org/streams' from='" DOMAIN "' " \
               "id='fake-%lx' version='1.0' xml:lang='en'>"
#define FEATURES_SASL "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>" \
                      "<mechanism>ANONYMOUS</mechanism></mechanisms></stream:features>"
#define FEATURES_BIND "<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>" \
                      "</stream:features>"
#define SUCCESS "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>"

enum state { S_STREAM1, S_AUTH, S_STREAM2, S_BIND, S_READY, S_CLOSING };

/* An output segment: either bytes of our own, or a run of the shared
 * pre-serialized message stream (repeated as often as asked). */
typedef struct seg {
    struct seg *next;
    char *own;            /* owned bytes, or NULL for a bulk run */
    size_t len, cap, off; /* own: length, capacity, written so far */
    uint64_t bulk_left;   /* bulk: bytes still to write */
    size_t bulk_pos;      /* bulk: position in the shared stream */
} seg;

typedef struct conn {
    int fd;
    enum state st;
    char *in;
    size_t in_len, in_cap;
    seg *head, *tail;
    int want_out;
    uint64_t rx_bytes, rx_stanzas;
    uint64_t cpu_base_us;
    int close_after_flush;
} conn;

static int ep;
static char *stream;      /* the pre-serialized messages */
static size_t stream_len; /* n * msg_len */
static size_t msg_len;
static long stream_msgs;
static volatile sig_atomic_t quit;
static unsigned long serial;

static void on_signal(int sig)
{
    (void)sig;
    quit = 1;
}

static uint64_t cpu_us(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (uint64_t)ru.ru_utime.tv_sec * 1000000u + (uint64_t)ru.ru_utime.tv_usec +
           (uint64_t)ru.ru_stime.tv_sec * 1000000u + (uint64_t)ru.ru_stime.tv_usec;
}

static void *xmalloc(size_t n)
{
    void *p = malloc(n);
    if (!p) {
        fprintf(stderr, "fake_server: out of memory\n");
        exit(1);
    }
    return p;
}

/* Realistic chat messages, the same shape as bench/parse.c's (entity,
 * non-ASCII text, chat state), every one the same length. */
static void make_stream(long n)
{
    char one[512];
    msg_len = (size_t)snprintf(one, sizeof one,
        "<message from='juliet@capulet.example/balcony' to='" BOUND_JID "' "
        "type='chat' id='msg-%08ld-5f2c9a1' xml:lang='en'><body>Wherefore art thou, Romeo? "
        "Deny thy father &amp; refuse thy name \xe2\x80\x94 caf\xc3\xa9 \xe2\x98\x95 "
        "\xc3\xa9t\xc3\xa9 no. %03ld of the night, my sweet Juliet</body>"
        "<active xmlns='http://jabber.org/protocol/chatstates'/></message>",
        0L, 0L);
    stream = xmalloc(msg_len * (size_t)n + 1);
    size_t off = 0;
    for (long i = 0; i < n; i++) {
        size_t w = (size_t)sprintf(stream + off,
            "<message from='juliet@capulet.example/balcony' to='" BOUND_JID "' "
            "type='chat' id='msg-%08ld-5f2c9a1' xml:lang='en'><body>Wherefore art thou, Romeo? "
            "Deny thy father &amp; refuse thy name \xe2\x80\x94 caf\xc3\xa9 \xe2\x98\x95 "
            "\xc3\xa9t\xc3\xa9 no. %03ld of the night, my sweet Juliet</body>"
            "<active xmlns='http://jabber.org/protocol/chatstates'/></message>",
            i % 100000000L, i % 1000);
        if (w != msg_len) {
            fprintf(stderr, "fake_server: message length varies\n");
            exit(1);
        }
        off += w;
    }
    stream_len = off;
    stream_msgs = n;
}

/* ---- output ------------------------------------------------------------ */

static void want_out(conn *c, int on)
{
    if (c->want_out == on)
        return;
    struct epoll_event ev = {.events = EPOLLIN | (on ? EPOLLOUT : 0), .data.ptr = c};
    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
    c->want_out = on;
}

static seg *new_seg(conn *c)
{
    seg *s = xmalloc(sizeof *s);
    memset(s, 0, sizeof *s);
    if (c->tail)
        c->tail->next = s;
    else
        c->head = s;
    c->tail = s;
    return s;
}

static void put(conn *c, const char *p, size_t n)
{
    seg *s = c->tail;
    if (!s || !s->own || s->cap - s->len < n) {
        s = new_seg(c);
        s->cap = n > 4096 ? n : 4096;
        s->own = xmalloc(s->cap);
    }
    memcpy(s->own + s->len, p, n);
    s->len += n;
}

static void putf(conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void putf(conn *c, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n > 0)
        put(c, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
}

static void put_bulk(conn *c, uint64_t messages)
{
    seg *s = new_seg(c);
    s->bulk_left = messages * msg_len;
    s->bulk_pos = 0;
}

static void free_conn(conn *c)
{
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    while (c->head) {
        seg *n = c->head->next;
        free(c->head->own);
        free(c->head);
        c->head = n;
    }
    free(c->in);
    free(c);
}

/* Writes what it can; returns -1 if the connection was freed. */
static int flush(conn *c)
{
    while (c->head) {
        seg *s = c->head;
        ssize_t w;
        if (s->own) {
            w = send(c->fd, s->own + s->off, s->len - s->off, MSG_NOSIGNAL);
        } else {
            size_t n = stream_len - s->bulk_pos;
            if (n > s->bulk_left)
                n = (size_t)s->bulk_left;
            if (n > (4u << 20))
                n = 4u << 20;
            w = send(c->fd, stream + s->bulk_pos, n, MSG_NOSIGNAL);
        }
        if (w < 0) {
            if (errno == EAGAIN || errno == EINTR) {
                want_out(c, 1);
                return 0;
            }
            free_conn(c);
            return -1;
        }
        int done;
        if (s->own) {
            s->off += (size_t)w;
            done = s->off == s->len;
        } else {
            s->bulk_left -= (uint64_t)w;
            s->bulk_pos += (size_t)w;
            if (s->bulk_pos == stream_len)
                s->bulk_pos = 0;
            done = s->bulk_left == 0;
        }
        if (!done)
            continue; /* partial: try again, EAGAIN will tell us to wait */
        c->head = s->next;
        if (!c->head)
            c->tail = NULL;
        free(s->own);
        free(s);
    }
    want_out(c, 0);
    if (c->close_after_flush) {
        free_conn(c);
        return -1;
    }
    return 0;
}

/* ---- input ------------------------------------------------------------- */

/* The value of attribute `name` in the tag [p, e): copied into out. */
static int attr(const char *p, const char *e, const char *name, char *out, size_t cap)
{
    size_t nl = strlen(name);
    for (const char *q = p + 1; q + nl + 2 < e; q++) {
        if ((q[-1] == ' ' || q[-1] == '\t' || q[-1] == '\n' || q[-1] == '\r') &&
            memcmp(q, name, nl) == 0 && q[nl] == '=' && (q[nl + 1] == '\'' || q[nl + 1] == '"')) {
            char quote = q[nl + 1];
            const char *v = q + nl + 2, *ve = memchr(v, quote, (size_t)(e - v));
            if (!ve)
                return -1;
            size_t n = (size_t)(ve - v);
            if (n >= cap)
                n = cap - 1;
            memcpy(out, v, n);
            out[n] = '\0';
            return 0;
        }
    }
    out[0] = '\0';
    return -1;
}

static int starts(const char *p, const char *e, const char *lit)
{
    size_t n = strlen(lit);
    return (size_t)(e - p) > n && memcmp(p, lit, n) == 0 &&
           (p[n] == ' ' || p[n] == '>' || p[n] == '/' || p[n] == '\t' || p[n] == '\n' ||
            p[n] == '\r');
}

static void reset_counters(conn *c)
{
    c->rx_bytes = c->rx_stanzas = 0;
    c->cpu_base_us = cpu_us();
}

static void on_iq(conn *c, const char *p, const char *e)
{
    char id[256], type[32];
    attr(p, e, "id", id, sizeof id);
    attr(p, e, "type", type, sizeof type);
    if (strcmp(type, "get") && strcmp(type, "set"))
        return; /* results and errors need no answer */
    if (c->st == S_BIND) {
        putf(c, "<iq type='result' id='%s'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
                "<jid>" BOUND_JID "</jid></bind></iq>", id);
        c->st = S_READY;
        reset_counters(c);
        return;
    }
    putf(c, "<iq type='result' id='%s' from='" DOMAIN "'", id);
    if (strncmp(id, "bench-stats", 11) == 0) {
        putf(c, "><stats xmlns='urn:epode:bench' stanzas='%llu' bytes='%llu' cpu_us='%llu'/></iq>",
             (unsigned long long)c->rx_stanzas, (unsigned long long)c->rx_bytes,
             (unsigned long long)(cpu_us() - c->cpu_base_us));
        return;
    }
    put(c, "/>", 2);
    if (strncmp(id, "bench-push-", 11) == 0) {
        long n = atol(id + 11);
        reset_counters(c);
        if (n > 0)
            put_bulk(c, (uint64_t)n);
    } else if (strncmp(id, "bench-reset", 11) == 0) {
        reset_counters(c);
    }
}

static void on_tag(conn *c, const char *p, const char *e)
{
    /* p points at '<', e one past '>' */
    if (c->st == S_READY) {
        /* the hot case: counting messages */
        if (p[1] == '/') {
            if (starts(p + 2, e, "message"))
                c->rx_stanzas++;
            else if (starts(p + 2, e, "stream:stream")) {
                put(c, "</stream:stream>", 16);
                c->st = S_CLOSING;
                c->close_after_flush = 1;
            }
            return;
        }
        if (starts(p + 1, e, "message")) {
            if (e[-2] == '/')
                c->rx_stanzas++;
            return;
        }
        if (starts(p + 1, e, "iq"))
            on_iq(c, p, e);
        return;
    }
    if (p[1] == '?')
        return;
    if (starts(p + 1, e, "stream:stream")) {
        if (c->st == S_STREAM1) {
            putf(c, HEADER FEATURES_SASL, ++serial);
            c->st = S_AUTH;
        } else if (c->st == S_STREAM2) {
            putf(c, HEADER FEATURES_BIND, ++serial);
            c->st = S_BIND;
        }
        return;
    }
    if (c->st == S_AUTH && starts(p + 1, e, "auth")) {
        put(c, SUCCESS, strlen(SUCCESS));
        c->st = S_STREAM2;
        return;
    }
    if (c->st == S_BIND && starts(p + 1, e, "iq")) {
        on_iq(c, p, e);
        return;
    }
    if (p[1] == '/' && starts(p + 2, e, "stream:stream")) {
        put(c, "</stream:stream>", 16);
        c->st = S_CLOSING;
        c->close_after_flush = 1;
    }
}

/* Returns -1 if the connection was freed. */
static int on_readable(conn *c)
{
    for (int rounds = 0; rounds < 16; rounds++) {
        if (c->in_cap - c->in_len < 65536) {
            size_t cap = c->in_cap ? c->in_cap * 2 : 4096;
            while (cap - c->in_len < 65536)
                cap *= 2;
            char *n = realloc(c->in, cap);
            if (!n) {
                free_conn(c);
                return -1;
            }
            c->in = n;
            c->in_cap = cap;
        }
        ssize_t r = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
        if (r == 0) {
            free_conn(c);
            return -1;
        }
        if (r < 0) {
            if (errno == EAGAIN || errno == EINTR)
                break;
            free_conn(c);
            return -1;
        }
        if (c->st == S_READY)
            c->rx_bytes += (uint64_t)r;
        c->in_len += (size_t)r;
        const char *b = c->in, *end = c->in + c->in_len, *q = b;
        for (;;) {
            const char *lt = memchr(q, '<', (size_t)(end - q));
            if (!lt) {
                q = end;
                break;
            }
            const char *gt = memchr(lt, '>', (size_t)(end - lt));
            if (!gt) {
                q = lt;
                break;
            }
            on_tag(c, lt, gt + 1);
            q = gt + 1;
        }
        size_t keep = (size_t)(end - q);
        if (keep)
            memmove(c->in, q, keep);
        c->in_len = keep;
        if (r < 65536)
            break; /* drained: level-triggered epoll calls again if not */
    }
    /* an idle connection keeps no input buffer */
    if (c->in_len == 0 && c->in_cap > 0 && c->st != S_READY) {
        free(c->in);
        c->in = NULL;
        c->in_cap = 0;
    }
    return flush(c);
}

int main(int argc, char **argv)
{
    unsigned port = 0;
    const char *port_file = NULL;
    long n = 200000;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--port") && i + 1 < argc)
            port = (unsigned)atoi(argv[++i]);
        else if (!strcmp(argv[i], "--port-file") && i + 1 < argc)
            port_file = argv[++i];
        else if (!strcmp(argv[i], "--messages") && i + 1 < argc)
            n = atol(argv[++i]);
        else {
            fprintf(stderr, "usage: %s [--port P] [--port-file FILE] [--messages N]\n", argv[0]);
            return 64;
        }
    }
    if (n <= 0)
        n = 1;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    make_stream(n);

    int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(ls, (struct sockaddr *)&a, sizeof a) < 0 || listen(ls, 65535) < 0) {
        perror("fake_server: bind/listen");
        return 1;
    }
    socklen_t al = sizeof a;
    getsockname(ls, (struct sockaddr *)&a, &al);
    port = ntohs(a.sin_port);
    if (port_file) {
        char tmp[4096];
        snprintf(tmp, sizeof tmp, "%s.tmp", port_file);
        FILE *f = fopen(tmp, "w");
        if (!f || fprintf(f, "%u\n", port) < 0 || fclose(f) != 0 || rename(tmp, port_file) < 0) {
            perror("fake_server: port file");
            return 1;
        }
    }
    printf("port %u\n", port);
    fflush(stdout);

    ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event lev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(ep, EPOLL_CTL_ADD, ls, &lev);
    struct epoll_event evs[256];
    while (!quit) {
        int k = epoll_wait(ep, evs, 256, 1000);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            perror("fake_server: epoll_wait");
            return 1;
        }
        for (int i = 0; i < k; i++) {
            if (!evs[i].data.ptr) {
                for (int j = 0; j < 256; j++) {
                    int fd = accept4(ls, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                    if (fd < 0)
                        break;
                    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    conn *c = xmalloc(sizeof *c);
                    memset(c, 0, sizeof *c);
                    c->fd = fd;
                    c->st = S_STREAM1;
                    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
                    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
                }
                continue;
            }
            conn *c = evs[i].data.ptr;
            if (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
                if (on_readable(c) < 0)
                    continue;
            } else if (evs[i].events & EPOLLOUT) {
                flush(c);
            }
        }
    }
    return 0;
}
