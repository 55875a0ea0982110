/* bench/fake_server.c — a small, fast, fake XMPP server for the
 * connection benchmarks (bench/conn_bench.c, bench/strophe_bench.c).
 *
 * Loopback only (127.0.0.1), epoll, one process; STARTTLS (gnutls) on
 * request. It is not an XML parser: it finds tags with memchr() and looks
 * at their first bytes, which is all a benchmark needs from it:
 *
 *   stream header        -> our header + features (SASL ANONYMOUS only);
 *                           with --tls, first <starttls><required/> only,
 *                           and SASL after the TLS handshake;
 *                           after <success/>, header + features (bind)
 *   <starttls/>          -> <proceed/>, then a non-blocking TLS handshake
 *                           (many at once in the same loop)
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
 *                     [--tls] [--ca-out FILE] [--cert CERT --key KEY]
 *                     [--no-tickets] [--chain] [--rsa] [--tls-priority STRING]
 *
 * --tls: STARTTLS, required. Without --cert/--key the server makes a
 * throw-away CA (ECDSA P-256) at start-up and a certificate it signs for
 * montague.example (DNS SAN), so clients verify as they would in
 * production; --ca-out writes that CA (PEM) for them (--ca-out implies
 * --tls). Priorities: gnutls' NORMAL (TLS 1.3 first, 1.2 allowed) or
 * --tls-priority. TLS 1.3 session tickets are sent, as Prosody and
 * ejabberd (OpenSSL) do, unless --no-tickets. --chain puts an
 * intermediate CA between the two (the server sends both certificates,
 * as Let's Encrypt deployments do); --rsa makes RSA-2048 keys instead
 * (larger certificates: what a client keeps of the server's chain).
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
#include <time.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#define DOMAIN "montague.example"
#define BOUND_JID "romeo@montague.example/orchard"

#define HEADER "<?xml version='1.0'?><stream:stream xmlns='jabber:client' " \
               "xmlns:stream='http://etherx.jabber.org/streams' from='" DOMAIN "' " \
               "id='fake-%lx' version='1.0' xml:lang='en'>"
#define FEATURES_SASL "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>" \
                      "<mechanism>ANONYMOUS</mechanism></mechanisms></stream:features>"
#define FEATURES_BIND "<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>" \
                      "</stream:features>"
#define FEATURES_TLS "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'>" \
                     "<required/></starttls></stream:features>"
#define PROCEED "<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"
#define SUCCESS "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>"

enum state { S_STREAM1, S_STARTTLS, S_AUTH, S_STREAM2, S_BIND, S_READY, S_CLOSING };
/* TLS on one connection: none yet, <proceed/> queued (the handshake
 * starts once it is written), handshaking, up. */
enum tls_state { T_NONE, T_PROCEED, T_HANDSHAKE, T_UP };

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
    enum tls_state tls;
    gnutls_session_t s;
} conn;

static int ep;
static char *stream;      /* the pre-serialized messages */
static size_t stream_len; /* n * msg_len */
static size_t msg_len;
static long stream_msgs;
static volatile sig_atomic_t quit;
static unsigned long serial;

/* TLS (--tls): shared by every session. */
static int use_tls;
static gnutls_certificate_credentials_t x509;
static gnutls_priority_t prio;
static gnutls_datum_t ticket_key;
static int tickets = 1;

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
    if (c->s) {
        if (c->tls == T_UP)
            gnutls_bye(c->s, GNUTLS_SHUT_WR); /* non-blocking: best effort */
        gnutls_deinit(c->s);
    }
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

/* send() or, once TLS is up, gnutls_record_send(): -1 with errno EAGAIN
 * when the socket is full. After GNUTLS_E_AGAIN gnutls keeps the record
 * it made and the next call (with the same start; our segments only
 * grow at their end) sends it and reports that record's length. */
static ssize_t send_bytes(conn *c, const char *p, size_t n)
{
    if (c->tls != T_UP)
        return send(c->fd, p, n, MSG_NOSIGNAL);
    if (n > 16384)
        n = 16384;
    ssize_t r = gnutls_record_send(c->s, p, n);
    if (r >= 0)
        return r;
    errno = r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED ? EAGAIN : EIO;
    return -1;
}

static ssize_t recv_bytes(conn *c, char *p, size_t n)
{
    if (c->tls != T_UP)
        return recv(c->fd, p, n, 0);
    ssize_t r = gnutls_record_recv(c->s, p, n);
    if (r >= 0)
        return r;
    if (r == GNUTLS_E_PREMATURE_TERMINATION)
        return 0; /* a close without close_notify: the stream's framing shows it */
    if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED || !gnutls_error_is_fatal((int)r)) {
        errno = EAGAIN;
        return -1;
    }
    errno = EIO;
    return -1;
}

/* Drives a handshake; returns -1 if the connection was freed. */
static int handshake(conn *c)
{
    for (;;) {
        int r = gnutls_handshake(c->s);
        if (r == GNUTLS_E_SUCCESS) {
            c->tls = T_UP;
            c->st = S_STREAM1; /* the client starts the stream again */
            want_out(c, 0);
            return 0;
        }
        if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED) {
            want_out(c, gnutls_record_get_direction(c->s));
            return 0;
        }
        if (gnutls_error_is_fatal(r)) {
            fprintf(stderr, "fake_server: TLS handshake: %s\n", gnutls_strerror(r));
            free_conn(c);
            return -1;
        }
    }
}

/* <proceed/> is out: TLS starts on this socket. */
static int tls_start(conn *c)
{
    c->in_len = 0; /* nothing the client sent in the clear is kept */
    if (gnutls_init(&c->s, GNUTLS_SERVER | GNUTLS_NONBLOCK) < 0 ||
        gnutls_priority_set(c->s, prio) < 0 ||
        gnutls_credentials_set(c->s, GNUTLS_CRD_CERTIFICATE, x509) < 0 ||
        (tickets && gnutls_session_ticket_enable_server(c->s, &ticket_key) < 0)) {
        fprintf(stderr, "fake_server: could not start a TLS session\n");
        free_conn(c);
        return -1;
    }
    gnutls_transport_set_int(c->s, c->fd);
    c->tls = T_HANDSHAKE;
    return handshake(c);
}

/* Writes what it can; returns -1 if the connection was freed. */
static int flush(conn *c)
{
    if (c->tls == T_HANDSHAKE)
        return 0;
    while (c->head) {
        seg *s = c->head;
        ssize_t w;
        if (s->own) {
            w = send_bytes(c, s->own + s->off, s->len - s->off);
        } else {
            size_t n = stream_len - s->bulk_pos;
            if (n > s->bulk_left)
                n = (size_t)s->bulk_left;
            if (n > (4u << 20))
                n = 4u << 20;
            w = send_bytes(c, stream + s->bulk_pos, n);
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
    if (c->tls == T_PROCEED)
        return tls_start(c);
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
        if (c->st == S_STREAM1 && use_tls && c->tls != T_UP) {
            putf(c, HEADER FEATURES_TLS, ++serial);
            c->st = S_STARTTLS;
        } else if (c->st == S_STREAM1) {
            putf(c, HEADER FEATURES_SASL, ++serial);
            c->st = S_AUTH;
        } else if (c->st == S_STREAM2) {
            putf(c, HEADER FEATURES_BIND, ++serial);
            c->st = S_BIND;
        }
        return;
    }
    if (c->st == S_STARTTLS && starts(p + 1, e, "starttls")) {
        put(c, PROCEED, strlen(PROCEED));
        c->tls = T_PROCEED;
        c->st = S_STREAM1;
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
        ssize_t r = recv_bytes(c, c->in + c->in_len, c->in_cap - c->in_len);
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
            if (c->tls == T_PROCEED) {
                q = end; /* cleartext after <starttls/> is dropped */
                break;
            }
        }
        size_t keep = (size_t)(end - q);
        if (keep)
            memmove(c->in, q, keep);
        c->in_len = keep;
        if (c->tls == T_PROCEED)
            break;
        /* drained: level-triggered epoll calls again if not (gnutls
         * reads one record at a time and we offer room for a whole one:
         * it never holds decrypted bytes the fd would not announce) */
        if (c->tls != T_UP && r < 65536)
            break;
    }
    /* an idle connection keeps no input buffer */
    if (c->in_len == 0 && c->in_cap > 0 && c->st != S_READY) {
        free(c->in);
        c->in = NULL;
        c->in_cap = 0;
    }
    return flush(c);
}

/* ---- TLS set-up ---------------------------------------------------------- */

static void tls_check(int r, const char *what)
{
    if (r < 0) {
        fprintf(stderr, "fake_server: %s: %s\n", what, gnutls_strerror(r));
        exit(1);
    }
}

/* A certificate for `key`: the root CA (self-signed) when issuer is NULL,
 * an intermediate CA when `intermediate`, else one for montague.example;
 * signed by issuer/issuer_key (which also gives the issuer's name). */
static gnutls_x509_crt_t make_cert(gnutls_x509_privkey_t key, gnutls_x509_crt_t issuer,
                                   gnutls_x509_privkey_t issuer_key, unsigned serial_no,
                                   int intermediate)
{
    gnutls_x509_crt_t crt;
    unsigned char id[64];
    size_t id_len = sizeof id;
    unsigned char sn = (unsigned char)serial_no;
    time_t t = time(NULL);
    tls_check(gnutls_x509_crt_init(&crt), "crt_init");
    tls_check(gnutls_x509_crt_set_version(crt, 3), "crt_set_version");
    tls_check(gnutls_x509_crt_set_serial(crt, &sn, 1), "crt_set_serial");
    tls_check(gnutls_x509_crt_set_activation_time(crt, t - 3600), "activation");
    tls_check(gnutls_x509_crt_set_expiration_time(crt, t + 30 * 86400), "expiration");
    tls_check(gnutls_x509_crt_set_key(crt, key), "crt_set_key");
    tls_check(gnutls_x509_crt_get_key_id(crt, GNUTLS_KEYID_USE_SHA1, id, &id_len), "key id");
    tls_check(gnutls_x509_crt_set_subject_key_id(crt, id, id_len), "subject key id");
    if (!issuer || intermediate) {
        const char *cn = issuer ? "epode bench throw-away intermediate"
                                : "epode bench throw-away CA";
        tls_check(gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, cn,
                                                (unsigned)strlen(cn)), "CA name");
        tls_check(gnutls_x509_crt_set_basic_constraints(crt, 1, issuer ? 0 : -1),
                  "CA constraints");
        tls_check(gnutls_x509_crt_set_key_usage(crt, GNUTLS_KEY_KEY_CERT_SIGN |
                                                     GNUTLS_KEY_CRL_SIGN), "CA usage");
        if (issuer) {
            id_len = sizeof id;
            tls_check(gnutls_x509_crt_get_subject_key_id(issuer, id, &id_len, NULL),
                      "issuer key id");
            tls_check(gnutls_x509_crt_set_authority_key_id(crt, id, id_len), "authority key id");
        }
        tls_check(gnutls_x509_crt_sign2(crt, issuer ? issuer : crt, issuer ? issuer_key : key,
                                        GNUTLS_DIG_SHA256, 0), "CA signature");
        return crt;
    }
    tls_check(gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, DOMAIN,
                                            sizeof DOMAIN - 1), "server name");
    tls_check(gnutls_x509_crt_set_subject_alt_name(crt, GNUTLS_SAN_DNSNAME, DOMAIN,
                                                   sizeof DOMAIN - 1, GNUTLS_FSAN_SET), "SAN");
    tls_check(gnutls_x509_crt_set_basic_constraints(crt, 0, -1), "constraints");
    tls_check(gnutls_x509_crt_set_key_usage(crt, GNUTLS_KEY_DIGITAL_SIGNATURE), "usage");
    tls_check(gnutls_x509_crt_set_key_purpose_oid(crt, GNUTLS_KP_TLS_WWW_SERVER, 0), "purpose");
    id_len = sizeof id;
    tls_check(gnutls_x509_crt_get_subject_key_id(issuer, id, &id_len, NULL), "issuer key id");
    tls_check(gnutls_x509_crt_set_authority_key_id(crt, id, id_len), "authority key id");
    tls_check(gnutls_x509_crt_sign2(crt, issuer, issuer_key, GNUTLS_DIG_SHA256, 0), "signature");
    return crt;
}

static gnutls_x509_privkey_t make_key(int rsa)
{
    gnutls_x509_privkey_t key;
    tls_check(gnutls_x509_privkey_init(&key), "privkey_init");
    if (rsa)
        tls_check(gnutls_x509_privkey_generate(key, GNUTLS_PK_RSA, 2048, 0), "RSA key");
    else
        tls_check(gnutls_x509_privkey_generate(key, GNUTLS_PK_ECDSA,
                                               GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1),
                                               0), "ECDSA key");
    return key;
}

/* chain: the server sends its certificate and an intermediate CA's (as
 * most deployments do: Let's Encrypt's leaf + R3/E1); rsa: RSA-2048
 * keys (larger certificates) instead of ECDSA P-256. */
static void tls_setup(const char *ca_out, const char *cert_file, const char *key_file,
                      const char *priority, int chain, int rsa)
{
    tls_check(gnutls_global_init(), "global_init");
    tls_check(gnutls_certificate_allocate_credentials(&x509), "credentials");
    if (cert_file) {
        tls_check(gnutls_certificate_set_x509_key_file(x509, cert_file, key_file,
                                                       GNUTLS_X509_FMT_PEM), cert_file);
    } else {
        gnutls_x509_privkey_t ca_key = make_key(rsa), key = make_key(rsa);
        gnutls_x509_privkey_t mid_key = chain ? make_key(rsa) : NULL;
        gnutls_x509_crt_t ca = make_cert(ca_key, NULL, NULL, 1, 0);
        gnutls_x509_crt_t mid = chain ? make_cert(mid_key, ca, ca_key, 2, 1) : NULL;
        gnutls_x509_crt_t crt = chain ? make_cert(key, mid, mid_key, 3, 0)
                                      : make_cert(key, ca, ca_key, 2, 0);
        gnutls_x509_crt_t sent[2] = {crt, mid};
        tls_check(gnutls_certificate_set_x509_key(x509, sent, chain ? 2 : 1, key),
                  "set_x509_key");
        if (ca_out) {
            gnutls_datum_t pem;
            tls_check(gnutls_x509_crt_export2(ca, GNUTLS_X509_FMT_PEM, &pem), "CA export");
            char tmp[4096];
            snprintf(tmp, sizeof tmp, "%s.tmp", ca_out);
            FILE *f = fopen(tmp, "w");
            if (!f || fwrite(pem.data, 1, pem.size, f) != pem.size || fclose(f) != 0 ||
                rename(tmp, ca_out) < 0) {
                perror("fake_server: CA file");
                exit(1);
            }
            gnutls_free(pem.data);
        }
        gnutls_x509_crt_deinit(crt);
        if (mid)
            gnutls_x509_crt_deinit(mid);
        gnutls_x509_crt_deinit(ca);
        gnutls_x509_privkey_deinit(key);
        if (mid_key)
            gnutls_x509_privkey_deinit(mid_key);
        gnutls_x509_privkey_deinit(ca_key);
    }
    const char *err = NULL;
    int r = gnutls_priority_init(&prio, priority ? priority : "NORMAL", &err);
    if (r < 0) {
        fprintf(stderr, "fake_server: priority string at \"%s\": %s\n", err ? err : "?",
                gnutls_strerror(r));
        exit(1);
    }
    tls_check(gnutls_session_ticket_key_generate(&ticket_key), "ticket key");
}

int main(int argc, char **argv)
{
    unsigned port = 0;
    const char *port_file = NULL;
    long n = 200000;
    const char *ca_out = NULL, *cert_file = NULL, *key_file = NULL, *priority = NULL;
    int chain = 0, rsa = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--port") && i + 1 < argc)
            port = (unsigned)atoi(argv[++i]);
        else if (!strcmp(argv[i], "--port-file") && i + 1 < argc)
            port_file = argv[++i];
        else if (!strcmp(argv[i], "--messages") && i + 1 < argc)
            n = atol(argv[++i]);
        else if (!strcmp(argv[i], "--tls"))
            use_tls = 1;
        else if (!strcmp(argv[i], "--ca-out") && i + 1 < argc)
            ca_out = argv[++i], use_tls = 1;
        else if (!strcmp(argv[i], "--cert") && i + 1 < argc)
            cert_file = argv[++i], use_tls = 1;
        else if (!strcmp(argv[i], "--key") && i + 1 < argc)
            key_file = argv[++i], use_tls = 1;
        else if (!strcmp(argv[i], "--no-tickets"))
            tickets = 0;
        else if (!strcmp(argv[i], "--chain"))
            chain = 1;
        else if (!strcmp(argv[i], "--rsa"))
            rsa = 1;
        else if (!strcmp(argv[i], "--tls-priority") && i + 1 < argc)
            priority = argv[++i];
        else {
            fprintf(stderr,
                    "usage: %s [--port P] [--port-file FILE] [--messages N]\n"
                    "          [--tls] [--ca-out FILE] [--cert CERT --key KEY] [--no-tickets]\n"
                    "          [--chain] [--rsa] [--tls-priority STRING]\n",
                    argv[0]);
            return 64;
        }
    }
    if (!cert_file != !key_file || (ca_out && cert_file)) {
        fprintf(stderr, "fake_server: --cert and --key go together, and not with --ca-out\n");
        return 64;
    }
    if (use_tls)
        tls_setup(ca_out, cert_file, key_file, priority, chain, rsa);
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
            if (c->tls == T_HANDSHAKE) {
                if (handshake(c) < 0 || c->tls != T_UP)
                    continue;
                on_readable(c); /* the client may have sent its header already */
                continue;
            }
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
