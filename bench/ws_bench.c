/* bench/ws_bench.c — what the WebSocket layer (RFC 7395) costs beside a
 * plain stream, in process: the same chat messages through the stream
 * engine, once as a byte stream over a memory transport (what TCP
 * carries) and once as WebSocket text frames through the WebSocket
 * transport over the same memory transport (what ws:// carries: wslay's
 * framing, masking and reassembly, one element per message). No sockets
 * and no server: the numbers are the client's work alone. Each
 * direction and framing runs ROUNDS times alternating; the best round
 * counts. Prints one line per figure:
 *
 *   RESULT recv stream|websocket N stanzas/s
 *   RESULT send stream|websocket N stanzas/s
 *
 *   ws_bench [MESSAGES [ROUNDS]]     default 200000 and 3 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>

#include <epode.h>

#include "stream/engine.h"
#include "transport/websocket.h"
#include "util/base64.h"
#include "util/buf.h"

#define NSF "urn:ietf:params:xml:ns:xmpp-framing"
#define MSG "<message xmlns='jabber:client' from='romeo@montague.example/orchard' " \
            "to='juliet@capulet.example/balcony' type='chat' id='m%08ld'><body>Wherefore art " \
            "thou, Romeo? Deny thy father and refuse thy name.</body></message>"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long stanzas;
static void ev(void *u, int e) { (void)u, (void)e; }
static void stz(void *u, epode_stanza_t *s) { (void)u, (void)s; stanzas++; }
static void end_cb(void *u, int err, int reason, const char *c, const char *t)
{
    (void)u, (void)err, (void)reason, (void)c, (void)t;
}

/* An engine logged in (PLAIN over "TLS", bound), framed or not. */
static epode__engine *ready_engine(int framed)
{
    epode__engine_config cfg = {.domain = "capulet.example", .localpart = "juliet",
                                .password = "pw", .resource = "balcony",
                                .tls_mode = EPODE_TLS_DIRECT, .mechanisms = "PLAIN",
                                .framed = framed};
    epode__engine_cbs cbs = {ev, stz, end_cb, NULL, NULL, NULL};
    epode__engine *e;
    if (epode__engine_new(NULL, &cfg, &cbs, NULL, &e) < 0)
        return NULL;
    epode__tls_facts tls = {.version = 13, .key_bits = 256};
    epode__engine_start(e, &tls);
    const char *hdr = framed ? "<open xmlns='" NSF "' from='capulet.example' id='s' version='1.0'/>"
                             : "<stream:stream xmlns='jabber:client' xmlns:stream='http://"
                               "etherx.jabber.org/streams' from='capulet.example' id='s' "
                               "version='1.0'>";
    const char *fdecl = framed ? " xmlns:stream='http://etherx.jabber.org/streams'" : "";
    char buf[1024];
    const char *steps[6];
    char f1[512], f2[512];
    snprintf(f1, sizeof f1,
             "<stream:features%s><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>"
             "<mechanism>PLAIN</mechanism></mechanisms></stream:features>", fdecl);
    snprintf(f2, sizeof f2,
             "<stream:features%s><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>"
             "</stream:features>", fdecl);
    steps[0] = hdr, steps[1] = f1, steps[2] = "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>";
    steps[3] = hdr, steps[4] = f2;
    steps[5] = "<iq type='result' id='bind_1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
               "<jid>juliet@capulet.example/balcony</jid></bind></iq>";
    for (int i = 0; i < 6; i++) {
        snprintf(buf, sizeof buf, "%s", steps[i]);
        epode__engine_recv(e, buf, strlen(buf));
    }
    size_t n;
    epode__engine_output(e, &n);
    epode__engine_consume(e, n);
    if (!epode__engine_is_ready(e)) {
        fprintf(stderr, "ws_bench: the scripted login did not reach READY\n");
        exit(1);
    }
    return e;
}

/* A WebSocket client over one end of a memory pair, its handshake done
 * against a scripted answer from the other end (*peer). */
static epode__transport *ws_open(epode__transport **peer)
{
    epode__transport *a, *t;
    if (epode__memory_pair(NULL, &a, peer) < 0)
        exit(1);
    epode__ws_options o = {.host = "capulet.example", .path = "/ws", .max_message = 1 << 20};
    if (epode__ws_new(NULL, a, &o, &t) < 0)
        exit(1);
    t->ops->handshake(t);
    char req[2048];
    long n = epode__transport_read(*peer, req, sizeof req - 1);
    req[n > 0 ? n : 0] = '\0';
    const char *k = strstr(req, "Sec-WebSocket-Key: ");
    char joined[60], acc[29], ans[256];
    unsigned char dig[20];
    memcpy(joined, k + 19, 24);
    memcpy(joined + 24, "258EAFA5-E914-47DA-95CA-C5AB0DC85B11", 36);
    gnutls_hash_fast(GNUTLS_DIG_SHA1, joined, 60, dig);
    epode__base64_encode(acc, dig, 20);
    acc[28] = '\0';
    int len = snprintf(ans, sizeof ans,
                       "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: "
                       "Upgrade\r\nSec-WebSocket-Accept: %s\r\nSec-WebSocket-Protocol: xmpp\r\n\r\n",
                       acc);
    epode__transport_write(*peer, ans, (size_t)len);
    if (t->ops->handshake(t) != 0)
        exit(1);
    return t;
}

/* The server's bytes for n messages: a stream, or one text frame each. */
static void server_bytes(epode__buf *b, long n, int framed)
{
    char m[512];
    for (long i = 0; i < n; i++) {
        int len = snprintf(m, sizeof m, MSG, i);
        if (framed) {
            unsigned char h[4] = {0x81, 126, (unsigned char)(len >> 8), (unsigned char)len};
            if (len < 126)
                epode__buf_append(b, (unsigned char[]){0x81, (unsigned char)len}, 2);
            else
                epode__buf_append(b, h, 4);
        }
        epode__buf_append(b, m, (size_t)len);
    }
}

static double run_recv(long n, int framed, const epode__buf *bytes)
{
    epode__engine *e = ready_engine(framed);
    epode__transport *peer, *t;
    if (framed) {
        t = ws_open(&peer);
    } else if (epode__memory_pair(NULL, &t, &peer) < 0) {
        exit(1);
    }
    stanzas = 0;
    char buf[16384];
    double t0 = now();
    size_t off = 0;
    while (stanzas < n) {
        /* the "socket" gets 64 KB at a time, as a read would */
        if (off < bytes->len && epode__transport_pending(t) < 65536) {
            size_t k = bytes->len - off < 65536 ? bytes->len - off : 65536;
            epode__transport_write(peer, bytes->data + off, k);
            off += k;
        }
        long got;
        while ((got = epode__transport_read(t, buf, sizeof buf)) > 0)
            epode__engine_recv(e, buf, (size_t)got);
        if (got != EPODE_EAGAIN || epode__engine_has_ended(e)) {
            fprintf(stderr, "ws_bench: recv ended early (%ld)\n", got);
            exit(1);
        }
    }
    double dt = now() - t0;
    epode__engine_free(e);
    epode__transport_free(t);
    epode__transport_free(peer);
    return (double)n / dt;
}

static double run_send(long n, int framed)
{
    epode__engine *e = ready_engine(framed);
    epode__transport *peer, *t;
    if (framed) {
        t = ws_open(&peer);
    } else if (epode__memory_pair(NULL, &t, &peer) < 0) {
        exit(1);
    }
    char sink[65536];
    double t0 = now();
    for (long i = 0; i < n; i++) {
        epode_stanza_t *m;
        char id[24];
        snprintf(id, sizeof id, "m%08ld", i);
        epode_stanza_new_message(NULL, "chat", "romeo@montague.example/orchard",
                                 "Wherefore art thou, Romeo? Deny thy father and refuse thy name.",
                                 &m);
        epode_stanza_set_id(m, id);
        epode__engine_send(e, m);
        epode_stanza_unref(m);
        if (i % 100 == 99 || i == n - 1) { /* written once per loop turn */
            size_t len;
            const char *o = epode__engine_output(e, &len);
            while (len > 0) {
                long w = epode__transport_write(t, o, len);
                if (w <= 0)
                    exit(1);
                epode__engine_consume(e, (size_t)w);
                o = epode__engine_output(e, &len);
            }
            while (epode__transport_read(peer, sink, sizeof sink) > 0) {
            }
        }
    }
    double dt = now() - t0;
    epode__engine_free(e);
    epode__transport_free(t);
    epode__transport_free(peer);
    return (double)n / dt;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 200000;
    int rounds = argc > 2 ? atoi(argv[2]) : 3;
    if (n <= 0 || rounds <= 0 || epode_global_init() < 0)
        return 64;
    epode__buf sb, fb;
    epode__buf_init(&sb, NULL);
    epode__buf_init(&fb, NULL);
    server_bytes(&sb, n, 0);
    server_bytes(&fb, n, 1);
    double best[4] = {0};
    for (int r = 0; r < rounds; r++) {
        double v[4] = {run_recv(n, 0, &sb), run_recv(n, 1, &fb), run_send(n, 0),
                       run_send(n, 1)};
        for (int i = 0; i < 4; i++)
            if (v[i] > best[i])
                best[i] = v[i];
    }
    printf("RESULT recv stream %.0f stanzas/s\n", best[0]);
    printf("RESULT recv websocket %.0f stanzas/s (%.2fx the stream)\n", best[1], best[1] / best[0]);
    printf("RESULT send stream %.0f stanzas/s\n", best[2]);
    printf("RESULT send websocket %.0f stanzas/s (%.2fx the stream)\n", best[3], best[3] / best[2]);
    epode__buf_free(&sb);
    epode__buf_free(&fb);
    return 0;
}
