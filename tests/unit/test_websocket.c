/* tests/unit/test_websocket.c — the WebSocket transport (RFC 6455/7395)
 * against a scripted WebSocket server on a memory pair: the exact upgrade
 * request, a strict check of the 101 answer (a wrong accept key, no xmpp
 * subprotocol, a refusal, oversized or folded headers, an extension),
 * one masked text frame per element written, whitespace as a ping, and
 * a hostile server's frames — fragmented (reassembled), oversized
 * (1009), binary (1003), masked (1002), bad UTF-8 (1007), close codes
 * and a link that just ends — each a clear error, nothing leaked. */
#include "test.h"

#include <malloc.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>

#include "transport/websocket.h"
#include "util/base64.h"

TEST_MAIN

static long live;
/* set: each block given back is searched for it first (freed_hits) */
static const char *needle;
static int freed_hits;

static void scan_block(void *p)
{
    if (needle && p && memmem(p, malloc_usable_size(p), needle, strlen(needle)))
        freed_hits++;
}

static void *t_malloc(size_t size, void *user)
{
    (void)user;
    void *p = malloc(size);
    if (p)
        live++;
    return p;
}

static void *t_realloc(void *ptr, size_t size, void *user)
{
    (void)user;
    if (needle && ptr) {
        /* moved by hand, so that the block left behind is searched */
        size_t old = malloc_usable_size(ptr);
        void *q = malloc(size);
        if (!q)
            return NULL;
        memcpy(q, ptr, old < size ? old : size);
        scan_block(ptr);
        free(ptr);
        return q;
    }
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
    scan_block(ptr);
    free(ptr);
}

static const epode_mem_t mem = {t_malloc, t_realloc, t_free, NULL};

/* ---- the scripted server ------------------------------------------------------------ */

typedef struct server {
    epode__transport *peer;
    unsigned char in[1 << 18]; /* what the client sent, not yet parsed */
    size_t in_len;
    char key[64];
} server;

static void pull(server *s)
{
    for (;;) {
        long n = epode__transport_read(s->peer, s->in + s->in_len, sizeof s->in - s->in_len);
        if (n <= 0)
            return;
        s->in_len += (size_t)n;
    }
}

static void say(server *s, const void *data, size_t len)
{
    epode__transport_write(s->peer, data, len);
}

static void says(server *s, const char *text) { say(s, text, strlen(text)); }

static void accept_for(const char *key, char out[29])
{
    char joined[128];
    unsigned char digest[20];
    snprintf(joined, sizeof joined, "%s258EAFA5-E914-47DA-95CA-C5AB0DC85B11", key);
    gnutls_hash_fast(GNUTLS_DIG_SHA1, joined, strlen(joined), digest);
    epode__base64_encode(out, digest, sizeof digest);
    out[28] = '\0';
}

/* Takes the client's request out of s->in; copies its key. Returns the
 * request text (static) or NULL when incomplete. */
static const char *take_request(server *s)
{
    static char req[4096];
    pull(s);
    unsigned char *end = memmem(s->in, s->in_len, "\r\n\r\n", 4);
    if (!end)
        return NULL;
    size_t n = (size_t)(end - s->in) + 4;
    memcpy(req, s->in, n);
    req[n] = '\0';
    memmove(s->in, s->in + n, s->in_len - n);
    s->in_len -= n;
    const char *k = strstr(req, "Sec-WebSocket-Key: ");
    if (k) {
        k += 19;
        size_t kl = strcspn(k, "\r");
        memcpy(s->key, k, kl < sizeof s->key - 1 ? kl : sizeof s->key - 1);
        s->key[kl < sizeof s->key - 1 ? kl : sizeof s->key - 1] = '\0';
    }
    return req;
}

/* A good 101 answer for the key seen, followed by `extra` bytes. */
static void answer(server *s, const char *headers_extra, const void *extra, size_t extra_len)
{
    char acc[29], buf[1024];
    accept_for(s->key, acc);
    int n = snprintf(buf, sizeof buf,
                     "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n"
                     "Sec-WebSocket-Protocol: xmpp\r\n%s\r\n",
                     acc, headers_extra ? headers_extra : "");
    say(s, buf, (size_t)n);
    if (extra_len)
        say(s, extra, extra_len);
}

/* A server frame (unmasked unless mask). Returns its length in out. */
static size_t frame(unsigned char *out, int fin, int opcode, const void *payload, size_t len,
                    int mask)
{
    size_t h = 0;
    out[h++] = (unsigned char)((fin ? 0x80 : 0) | opcode);
    unsigned char m = mask ? 0x80 : 0;
    if (len < 126) {
        out[h++] = (unsigned char)(m | len);
    } else if (len < 65536) {
        out[h++] = m | 126;
        out[h++] = (unsigned char)(len >> 8);
        out[h++] = (unsigned char)len;
    } else {
        out[h++] = m | 127;
        for (int i = 7; i >= 0; i--)
            out[h++] = (unsigned char)((unsigned long long)len >> (8 * i));
    }
    unsigned char key[4] = {1, 2, 3, 4};
    if (mask) {
        memcpy(out + h, key, 4);
        h += 4;
    }
    for (size_t i = 0; i < len; i++)
        out[h + i] = ((const unsigned char *)payload)[i] ^ (mask ? key[i % 4] : 0);
    return h + len;
}

static void send_frame(server *s, int fin, int opcode, const void *payload, size_t len, int mask)
{
    static unsigned char buf[300000];
    say(s, buf, frame(buf, fin, opcode, payload, len, mask));
}

static void send_text(server *s, const char *text)
{
    send_frame(s, 1, 1, text, strlen(text), 0);
}

/* Parses one client frame from s->in: opcode, payload (unmasked, NUL
 * added). 1 if one was there; *masked says whether it was masked. */
static int client_frame(server *s, int *opcode, char *payload, size_t *len, int *masked)
{
    pull(s);
    if (s->in_len < 2)
        return 0;
    size_t h = 2, n = s->in[1] & 0x7f;
    if (n == 126) {
        n = ((size_t)s->in[2] << 8) | s->in[3];
        h = 4;
    } else if (n == 127) {
        if (s->in_len < 10)
            return 0;
        n = 0;
        for (int i = 2; i < 10; i++)
            n = (n << 8) | s->in[i];
        h = 10;
    }
    *masked = (s->in[1] & 0x80) != 0;
    unsigned char key[4] = {0};
    if (*masked) {
        memcpy(key, s->in + h, 4);
        h += 4;
    }
    if (s->in_len < h + n)
        return 0;
    *opcode = s->in[0] & 0x0f;
    for (size_t i = 0; i < n; i++)
        payload[i] = (char)(s->in[h + i] ^ key[i % 4]);
    payload[n] = '\0';
    *len = n;
    memmove(s->in, s->in + h + n, s->in_len - h - n);
    s->in_len -= h + n;
    return 1;
}

/* The client over one end of a memory pair, opened against a good
 * answer (plus `extra` bytes after the headers). */
static epode__transport *open_ws(server *s, size_t max_message, const void *extra,
                                 size_t extra_len)
{
    epode__transport *a, *t;
    memset(s, 0, sizeof *s);
    if (epode__memory_pair(&mem, &a, &s->peer) < 0)
        return NULL;
    epode__ws_options o = {.host = "example.test:5280", .path = "/xmpp-websocket",
                           .max_message = max_message};
    if (epode__ws_new(&mem, a, &o, &t) < 0)
        return NULL;
    if (t->ops->handshake(t) != EPODE_EAGAIN || !take_request(s))
        return NULL;
    answer(s, NULL, extra, extra_len);
    if (t->ops->handshake(t) != 0)
        return NULL;
    return t;
}

static void done(epode__transport *t, server *s)
{
    epode__transport_free(t);
    epode__transport_free(s->peer);
}

/* Reads what the client hands up, until it says something else than a
 * count (returned in *end). */
static size_t read_all(epode__transport *t, char *buf, size_t cap, long *end)
{
    size_t got = 0;
    for (;;) {
        long n = epode__transport_read(t, buf + got, cap - got - 1);
        if (n <= 0) {
            *end = n;
            break;
        }
        got += (size_t)n;
    }
    buf[got] = '\0';
    return got;
}

/* ---- the opening handshake ------------------------------------------------------------ */

TEST(ws_request_is_an_rfc6455_upgrade_for_xmpp)
{
    server s;
    epode__transport *a, *t;
    memset(&s, 0, sizeof s);
    CHECK(epode__memory_pair(&mem, &a, &s.peer) == 0);
    epode__ws_options o = {.host = "example.test:5280", .path = "/ws?x=1",
                           .origin = "https://example.test"};
    CHECK(epode__ws_new(&mem, a, &o, &t) == 0);
    CHECK(epode__ws_is(t));
    CHECK_INT(t->ops->handshake(t), EPODE_EAGAIN);
    const char *req = take_request(&s);
    CHECK(req);
    CHECK(strncmp(req, "GET /ws?x=1 HTTP/1.1\r\nHost: example.test:5280\r\n", 47) == 0);
    CHECK(strstr(req, "\r\nUpgrade: websocket\r\n"));
    CHECK(strstr(req, "\r\nConnection: Upgrade\r\n"));
    CHECK(strstr(req, "\r\nSec-WebSocket-Version: 13\r\n"));
    CHECK(strstr(req, "\r\nSec-WebSocket-Protocol: xmpp\r\n"));
    CHECK(strstr(req, "\r\nOrigin: https://example.test\r\n"));
    CHECK_INT(strlen(s.key), 24); /* 16 random bytes in base64 */
    unsigned char raw[18];
    size_t rl;
    CHECK(epode__base64_decode(s.key, 24, raw, &rl) == 0 && rl == 16);
    /* The server's <open/> may come with the answer itself. */
    unsigned char f[256];
    const char *open = "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' from='example.test' "
                       "id='s1' version='1.0'/>";
    size_t fl = frame(f, 1, 1, open, strlen(open), 0);
    answer(&s, NULL, f, fl);
    CHECK_INT(t->ops->handshake(t), 0);
    char buf[512];
    long end;
    read_all(t, buf, sizeof buf, &end);
    CHECK_STR(buf, open);
    CHECK_INT(end, EPODE_EAGAIN);
    done(t, &s);
    CHECK_INT(live, 0);
}

TEST(ws_two_requests_use_different_keys)
{
    server s1, s2;
    epode__transport *a, *b, *t1, *t2;
    memset(&s1, 0, sizeof s1);
    memset(&s2, 0, sizeof s2);
    CHECK(epode__memory_pair(&mem, &a, &s1.peer) == 0);
    CHECK(epode__memory_pair(&mem, &b, &s2.peer) == 0);
    epode__ws_options o = {.host = "h"};
    CHECK(epode__ws_new(&mem, a, &o, &t1) == 0);
    CHECK(epode__ws_new(&mem, b, &o, &t2) == 0);
    t1->ops->handshake(t1);
    t2->ops->handshake(t2);
    const char *r1 = take_request(&s1);
    CHECK(r1 && strncmp(r1, "GET / HTTP/1.1\r\n", 16) == 0);
    CHECK(take_request(&s2));
    CHECK(strcmp(s1.key, s2.key) != 0);
    done(t1, &s1);
    done(t2, &s2);
    CHECK_INT(live, 0);
}

/* Runs the handshake against `response` and expects EPODE_ENET with
 * `words` in the error text. */
static int refused(const char *response, const char *words)
{
    server s;
    epode__transport *a, *t;
    memset(&s, 0, sizeof s);
    if (epode__memory_pair(&mem, &a, &s.peer) < 0)
        return 0;
    epode__ws_options o = {.host = "h"};
    if (epode__ws_new(&mem, a, &o, &t) < 0)
        return 0;
    t->ops->handshake(t);
    if (!take_request(&s))
        return 0;
    char acc[29], buf[10000];
    accept_for(s.key, acc);
    snprintf(buf, sizeof buf, response, acc);
    says(&s, buf);
    int rc = t->ops->handshake(t);
    int again = t->ops->handshake(t); /* sticky */
    int ok = rc == EPODE_ENET && again == rc && strstr(epode__transport_error(t), words);
    if (!ok)
        printf("# rc %d, again %d, error \"%s\"\n", rc, again, epode__transport_error(t));
    /* nothing is handed up */
    char b[16];
    ok = ok && epode__transport_read(t, b, sizeof b) == EPODE_ENET;
    done(t, &s);
    return ok && live == 0;
}

#define GOOD_HEAD "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"

TEST(ws_refuses_a_wrong_accept_key)
{
    CHECK(refused(GOOD_HEAD "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
                            "Sec-WebSocket-Protocol: xmpp\r\n\r\n%.0s",
                  "Sec-WebSocket-Accept does not match"));
    /* the right one twice is not right either */
    CHECK(refused(GOOD_HEAD "Sec-WebSocket-Accept: %1$s\r\nSec-WebSocket-Accept: %1$s\r\n"
                            "Sec-WebSocket-Protocol: xmpp\r\n\r\n",
                  "Sec-WebSocket-Accept"));
    CHECK(refused(GOOD_HEAD "Sec-WebSocket-Protocol: xmpp\r\n\r\n%.0s",
                  "no Sec-WebSocket-Accept"));
}

TEST(ws_refuses_a_server_without_the_xmpp_subprotocol)
{
    CHECK(refused(GOOD_HEAD "Sec-WebSocket-Accept: %s\r\n\r\n", "xmpp subprotocol"));
    CHECK(refused(GOOD_HEAD "Sec-WebSocket-Accept: %s\r\nSec-WebSocket-Protocol: chat\r\n\r\n",
                  "other than xmpp"));
    CHECK(refused(GOOD_HEAD "Sec-WebSocket-Accept: %s\r\nSec-WebSocket-Protocol: XMPP\r\n\r\n",
                  "other than xmpp"));
}

TEST(ws_refuses_anything_but_101)
{
    CHECK(refused("HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\n\r\nno%.0s",
                  "refused the WebSocket upgrade: \"HTTP/1.1 404 Not Found\""));
    CHECK(refused("HTTP/1.1 200 OK\r\n\r\n%.0s", "refused the WebSocket upgrade"));
    CHECK(refused("HTTP/1.0 101 Switching\r\n\r\n%.0s", "no HTTP/1.1 status"));
    CHECK(refused("<?xml version='1.0'?><stream:stream>\r\n\r\n%.0s", "no HTTP/1.1 status"));
}

TEST(ws_refuses_bad_headers)
{
    CHECK(refused("HTTP/1.1 101 x\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n"
                  "Sec-WebSocket-Accept: %s\r\nSec-WebSocket-Protocol: xmpp\r\n\r\n",
                  "upgraded to something else"));
    CHECK(refused("HTTP/1.1 101 x\r\nUpgrade: websocket\r\nConnection: keep-alive\r\n"
                  "Sec-WebSocket-Accept: %s\r\nSec-WebSocket-Protocol: xmpp\r\n\r\n",
                  "Connection: Upgrade"));
    CHECK(refused(GOOD_HEAD "Sec-WebSocket-Accept: %s\r\nSec-WebSocket-Protocol: xmpp\r\n"
                            "Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n",
                  "extension we did not offer"));
    CHECK(refused(GOOD_HEAD "Sec-WebSocket-Accept: %s\r\nSec-WebSocket-Protocol: xmpp\r\n"
                            "X-Thing: a\r\n b\r\n\r\n",
                  "folded a header line"));
    CHECK(refused(GOOD_HEAD "Sec-WebSocket-Accept: %s\r\nno colon here\r\n\r\n",
                  "malformed header line"));
}

TEST(ws_accepts_header_case_and_token_lists)
{
    server s;
    epode__transport *a, *t;
    memset(&s, 0, sizeof s);
    CHECK(epode__memory_pair(&mem, &a, &s.peer) == 0);
    epode__ws_options o = {.host = "h"};
    CHECK(epode__ws_new(&mem, a, &o, &t) == 0);
    t->ops->handshake(t);
    CHECK(take_request(&s));
    char acc[29], buf[512];
    accept_for(s.key, acc);
    snprintf(buf, sizeof buf,
             "HTTP/1.1 101 Switching Protocols\r\nupgrade:WebSocket\r\n"
             "CONNECTION: keep-alive, upgrade\r\nsec-websocket-accept:   %s  \r\n"
             "Sec-Websocket-Protocol: xmpp\r\nServer: test\r\n\r\n",
             acc);
    /* cut anywhere: the answer arrives in two pieces */
    say(&s, buf, 40);
    CHECK_INT(t->ops->handshake(t), EPODE_EAGAIN);
    says(&s, buf + 40);
    CHECK_INT(t->ops->handshake(t), 0);
    done(t, &s);
    CHECK_INT(live, 0);
}

TEST(ws_bounds_the_answers_headers)
{
    server s;
    epode__transport *a, *t;
    memset(&s, 0, sizeof s);
    CHECK(epode__memory_pair(&mem, &a, &s.peer) == 0);
    epode__ws_options o = {.host = "h"};
    CHECK(epode__ws_new(&mem, a, &o, &t) == 0);
    t->ops->handshake(t);
    CHECK(take_request(&s));
    says(&s, "HTTP/1.1 101 Switching Protocols\r\n");
    static char big[20000];
    for (size_t i = 0; i + 2 < sizeof big; i += 40)
        memcpy(big + i, "X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n", 40);
    say(&s, big, sizeof big - 2);
    CHECK_INT(t->ops->handshake(t), EPODE_ENET);
    CHECK(strstr(epode__transport_error(t), "more than 8192 bytes of headers"));
    done(t, &s);
    CHECK_INT(live, 0);
}

TEST(ws_server_closing_during_the_handshake_is_an_error)
{
    server s;
    epode__transport *a, *t;
    memset(&s, 0, sizeof s);
    CHECK(epode__memory_pair(&mem, &a, &s.peer) == 0);
    epode__ws_options o = {.host = "h"};
    CHECK(epode__ws_new(&mem, a, &o, &t) == 0);
    t->ops->handshake(t);
    CHECK(take_request(&s));
    says(&s, "HTTP/1.1 101 Switch");
    epode__transport_free(s.peer);
    CHECK_INT(t->ops->handshake(t), EPODE_ENET);
    CHECK(strstr(epode__transport_error(t), "closed the connection during the WebSocket handshake"));
    epode__transport_free(t);
    CHECK_INT(live, 0);
}

/* ---- frames out ---------------------------------------------------------------------- */

TEST(ws_sends_one_masked_text_frame_per_element)
{
    server s;
    epode__transport *t = open_ws(&s, 0, NULL, 0);
    CHECK(t);
    /* The engine's output arrives cut anywhere, even inside a tag or a
     * quoted '>' in an attribute value. */
    const char *out = "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='example.test' "
                      "version='1.0'/><message xmlns='jabber:client' to='a@b' id='x>y'><body>"
                      "1 &lt; 2</body><c/></message><r xmlns=\"urn:xmpp:sm:3\"/>";
    size_t len = strlen(out);
    for (size_t i = 0; i < len; i += 7) {
        size_t n = len - i < 7 ? len - i : 7;
        CHECK_INT(epode__transport_write(t, out + i, n), (long)n);
    }
    CHECK_INT(epode__transport_write(t, NULL, 0), 0);
    int op, masked;
    char p[1024];
    size_t pl;
    CHECK(client_frame(&s, &op, p, &pl, &masked));
    CHECK(masked);
    CHECK_INT(op, 1);
    CHECK_STR(p, "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='example.test' "
                 "version='1.0'/>");
    CHECK(client_frame(&s, &op, p, &pl, &masked));
    CHECK(masked && op == 1);
    CHECK_STR(p, "<message xmlns='jabber:client' to='a@b' id='x>y'><body>1 &lt; 2</body><c/>"
                 "</message>");
    CHECK(client_frame(&s, &op, p, &pl, &masked));
    CHECK_STR(p, "<r xmlns=\"urn:xmpp:sm:3\"/>");
    CHECK(!client_frame(&s, &op, p, &pl, &masked));
    /* a partial element is held until it is complete */
    CHECK_INT(epode__transport_write(t, "<a><b/>", 7), 7);
    CHECK(!client_frame(&s, &op, p, &pl, &masked));
    CHECK_INT(epode__transport_write(t, "</a>", 4), 4);
    CHECK(client_frame(&s, &op, p, &pl, &masked));
    CHECK_STR(p, "<a><b/></a>");
    done(t, &s);
    CHECK_INT(live, 0);
}

/* Issue-16 review: a SASL (or FAST) response cut between two writes
 * waits in the transport's own buffer; no block it leaves behind (grown
 * away from, consumed, freed) may still hold it. */
TEST(ws_credential_cut_between_writes_leaves_no_copy)
{
    server s;
    epode__transport *t = open_ws(&s, 0, NULL, 0);
    CHECK(t);
    needle = "AGp1bGlldAByMG1lbyE="; /* base64 of \0juliet\0r0meo! */
    freed_hits = 0;
    const char *a = "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>AGp1bGlldABy";
    const char *b = "MG1lbyE=</auth><x>";
    CHECK_INT(epode__transport_write(t, a, strlen(a)), (long)strlen(a));
    CHECK_INT(epode__transport_write(t, b, strlen(b)), (long)strlen(b));
    int op, masked;
    static char p[1 << 15];
    size_t pl;
    CHECK(client_frame(&s, &op, p, &pl, &masked));
    CHECK(strstr(p, needle));
    /* the element after it grows the buffer it waited in */
    static char big[20000];
    memset(big, 'y', sizeof big);
    CHECK_INT(epode__transport_write(t, big, sizeof big), (long)sizeof big);
    CHECK_INT(epode__transport_write(t, "</x>", 4), 4);
    CHECK(client_frame(&s, &op, p, &pl, &masked));
    CHECK_INT((int)pl, 20000 + 7);
    done(t, &s);
    CHECK_INT(freed_hits, 0);
    needle = NULL;
    CHECK_INT(live, 0);
}

TEST(ws_whitespace_keepalive_becomes_a_ping)
{
    server s;
    epode__transport *t = open_ws(&s, 0, NULL, 0);
    CHECK(t);
    CHECK_INT(epode__transport_write(t, " ", 1), 1);
    int op, masked;
    char p[256];
    size_t pl;
    CHECK(client_frame(&s, &op, p, &pl, &masked));
    CHECK_INT(op, 9);
    CHECK(masked);
    CHECK(!client_frame(&s, &op, p, &pl, &masked));
    /* whitespace before an element: the element, in its own frame */
    CHECK_INT(epode__transport_write(t, "\n<x/>", 5), 5);
    CHECK(client_frame(&s, &op, p, &pl, &masked));
    CHECK_INT(op, 9);
    CHECK(client_frame(&s, &op, p, &pl, &masked));
    CHECK_INT(op, 1);
    CHECK_STR(p, "<x/>");
    done(t, &s);
    CHECK_INT(live, 0);
}

TEST(ws_large_element_goes_out_whole)
{
    server s;
    epode__transport *t = open_ws(&s, 0, NULL, 0);
    CHECK(t);
    static char big[40000];
    memcpy(big, "<message><body>", 15);
    memset(big + 15, 'a', sizeof big - 15 - 18);
    memcpy(big + sizeof big - 18, "</body></message>", 18);
    size_t len = strlen(big);
    CHECK_INT(epode__transport_write(t, big, len), (long)len);
    int op, masked;
    static char p[65536];
    size_t pl;
    CHECK(client_frame(&s, &op, p, &pl, &masked));
    CHECK_INT(pl, len);
    CHECK(memcmp(p, big, len) == 0);
    done(t, &s);
    CHECK_INT(live, 0);
}

TEST(ws_element_over_64k_gets_a_64_bit_length_and_fresh_masks)
{
    static server s;
    epode__transport *t = open_ws(&s, 0, NULL, 0);
    CHECK(t);
    static char big[100000];
    memcpy(big, "<message><body>", 15);
    memset(big + 15, 'z', sizeof big - 15 - 18);
    memcpy(big + sizeof big - 18, "</body></message>", 18);
    size_t len = strlen(big);
    CHECK_INT(epode__transport_write(t, "<a/><b/>", 8), 8);
    CHECK_INT(epode__transport_write(t, big, len), (long)len);
    /* the two small frames carry different masking keys */
    CHECK(s.in_len == 0);
    pull(&s);
    CHECK(s.in_len > 2 * 10);
    CHECK(s.in[1] == (0x80 | 4) && s.in[10 + 1] == (0x80 | 4));
    CHECK(memcmp(s.in + 2, s.in + 10 + 2, 4) != 0);
    int op, masked;
    static char p[120000];
    size_t pl;
    CHECK(client_frame(&s, &op, p, &pl, &masked));
    CHECK_STR(p, "<a/>");
    CHECK(client_frame(&s, &op, p, &pl, &masked));
    CHECK_STR(p, "<b/>");
    CHECK(client_frame(&s, &op, p, &pl, &masked));
    CHECK(masked && op == 1);
    CHECK_INT(pl, len);
    CHECK(memcmp(p, big, len) == 0);
    done(t, &s);
    CHECK_INT(live, 0);
}

/* ---- frames in ------------------------------------------------------------------------ */

TEST(ws_reassembles_fragmented_messages)
{
    server s;
    epode__transport *t = open_ws(&s, 0, NULL, 0);
    CHECK(t);
    send_frame(&s, 0, 1, "<message><bo", 12, 0);
    char buf[256];
    long end;
    CHECK_INT(read_all(t, buf, sizeof buf, &end), 0); /* nothing until the last fragment */
    CHECK_INT(end, EPODE_EAGAIN);
    /* a ping between fragments is answered and does not cut the message */
    send_frame(&s, 1, 9, "hi", 2, 0);
    send_frame(&s, 0, 0, "dy>x</bo", 8, 0);
    send_frame(&s, 1, 0, "dy></message>", 13, 0);
    read_all(t, buf, sizeof buf, &end);
    CHECK_STR(buf, "<message><body>x</body></message>");
    int op, masked;
    char p[256];
    size_t pl;
    CHECK(client_frame(&s, &op, p, &pl, &masked));
    CHECK_INT(op, 10); /* pong, with the ping's payload */
    CHECK_STR(p, "hi");
    done(t, &s);
    CHECK_INT(live, 0);
}

TEST(ws_frame_header_split_across_reads)
{
    server s;
    epode__transport *t = open_ws(&s, 0, NULL, 0);
    CHECK(t);
    unsigned char f[512];
    static char text[300];
    memset(text, 'x', sizeof text - 1);
    size_t fl = frame(f, 1, 1, text, strlen(text), 0); /* a 16-bit length */
    char buf[512];
    long end;
    for (size_t i = 0; i < fl; i++) {
        say(&s, f + i, 1);
        if (i + 1 < fl) {
            CHECK_INT(epode__transport_read(t, buf, sizeof buf), EPODE_EAGAIN);
        }
    }
    read_all(t, buf, sizeof buf, &end);
    CHECK_STR(buf, text);
    done(t, &s);
    CHECK_INT(live, 0);
}

/* Feeds the client one hostile frame; expects EPODE_EPROTOCOL, `words`
 * in the error and a close frame with `code` sent back. */
static int hostile(size_t max, int fin, int opcode, const void *payload, size_t len, int mask,
                   unsigned code, const char *words)
{
    server s;
    epode__transport *t = open_ws(&s, max, NULL, 0);
    if (!t)
        return 0;
    send_frame(&s, fin, opcode, payload, len, mask);
    char buf[256];
    long end;
    read_all(t, buf, sizeof buf, &end);
    int ok = end == EPODE_EPROTOCOL && strstr(epode__transport_error(t), words) &&
             epode__ws_close_code(t) == code;
    if (!ok)
        printf("# end %ld, code %u, error \"%s\"\n", end, epode__ws_close_code(t),
               epode__transport_error(t));
    int op = 0, masked;
    char p[256];
    size_t pl = 0;
    ok = ok && client_frame(&s, &op, p, &pl, &masked) && op == 8 && pl >= 2 &&
         (unsigned)(((unsigned char)p[0] << 8) | (unsigned char)p[1]) == code;
    if (!ok)
        printf("# client frame op %d len %zu\n", op, pl);
    /* sticky */
    ok = ok && epode__transport_read(t, buf, sizeof buf) == EPODE_EPROTOCOL;
    done(t, &s);
    return ok && live == 0;
}

TEST(ws_binary_message_closes_with_1003)
{
    CHECK(hostile(0, 1, 2, "<message/>", 10, 0, 1003, "binary message"));
}

TEST(ws_oversized_message_closes_with_1009)
{
    static char big[3000];
    memset(big, 'a', sizeof big);
    CHECK(hostile(1000, 1, 1, big, sizeof big, 0, 1009, "over the 1000-byte limit"));
}

TEST(ws_oversized_fragmented_message_closes_with_1009)
{
    server s;
    epode__transport *t = open_ws(&s, 1000, NULL, 0);
    CHECK(t);
    static char part[600];
    memset(part, 'a', sizeof part);
    send_frame(&s, 0, 1, part, sizeof part, 0);
    send_frame(&s, 1, 0, part, sizeof part, 0);
    char buf[256];
    long end;
    CHECK_INT(read_all(t, buf, sizeof buf, &end), 0);
    CHECK_INT(end, EPODE_EPROTOCOL);
    CHECK_INT(epode__ws_close_code(t), 1009);
    done(t, &s);
    CHECK_INT(live, 0);
}

TEST(ws_masked_frame_from_the_server_closes_with_1002)
{
    CHECK(hostile(0, 1, 1, "<message/>", 10, 1, 1002, "framing protocol"));
}

TEST(ws_reserved_opcode_closes_with_1002)
{
    CHECK(hostile(0, 1, 3, "x", 1, 0, 1002, "framing protocol"));
}

TEST(ws_oversized_ping_closes_with_1002)
{
    /* control frames carry at most 125 bytes (RFC 6455 §5.5): wslay
     * refuses a longer ping, and that is the server's fault, not "out of
     * memory" as it was reported */
    static char ping[200];
    memset(ping, 'p', sizeof ping);
    server s;
    epode__transport *t = open_ws(&s, 0, NULL, 0);
    CHECK(t != NULL);
    send_frame(&s, 1, 9, ping, sizeof ping, 0);
    char buf[256];
    long end;
    read_all(t, buf, sizeof buf, &end);
    printf("# end %ld: %s\n", end, epode__transport_error(t));
    CHECK_INT(end, EPODE_EPROTOCOL);
    CHECK(strstr(epode__transport_error(t), "framing protocol") != NULL);
    CHECK_INT(epode__ws_close_code(t), 1002);
    int op = 0, masked;
    char p[256];
    size_t pl = 0;
    CHECK(client_frame(&s, &op, p, &pl, &masked)); /* a close went out (wslay's own) */
    CHECK_INT(op, 8);
    CHECK_INT(epode__transport_read(t, buf, sizeof buf), EPODE_EPROTOCOL); /* sticky */
    done(t, &s);
    CHECK_INT(live, 0);
}

TEST(ws_ping_flood_without_reading_closes_with_1008)
{
    /* a server that pings and never reads: the pongs wslay queues for it
     * are bounded (they grew to 355 MB of RSS for 200 MB of pings) */
    server s;
    epode__transport *t = open_ws(&s, 0, NULL, 0);
    CHECK(t != NULL);
    epode__memory_set_limit(t->lower, 64 * 1024); /* the server reads nothing past this */
    static char payload[125];
    memset(payload, 'x', sizeof payload);
    char buf[256];
    long end = EPODE_EAGAIN;
    for (int i = 0; i < 20000 && end == EPODE_EAGAIN; i++) {
        send_frame(&s, 1, 9, payload, sizeof payload, 0);
        read_all(t, buf, sizeof buf, &end);
    }
    printf("# end %ld: %s\n", end, epode__transport_error(t));
    CHECK_INT(end, EPODE_EPROTOCOL);
    CHECK(strstr(epode__transport_error(t), "pings faster than it reads") != NULL);
    CHECK_INT(epode__ws_close_code(t), 1008);
    done(t, &s);
    CHECK_INT(live, 0);
}

TEST(ws_invalid_utf8_closes_with_1007)
{
    CHECK(hostile(0, 1, 1, "<a>\xff\xfe</a>", 9, 0, 1007, "not UTF-8"));
}

TEST(ws_close_codes_reach_the_error_text)
{
    server s;
    epode__transport *t = open_ws(&s, 0, NULL, 0);
    CHECK(t);
    send_text(&s, "<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>");
    unsigned char payload[] = {0x03, 0xe9, 'b', 'y', 'e'}; /* 1001 */
    send_frame(&s, 1, 8, payload, sizeof payload, 0);
    char buf[256];
    long end;
    read_all(t, buf, sizeof buf, &end);
    /* what came before the close is handed up first */
    CHECK_STR(buf, "<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>");
    CHECK_INT(end, EPODE_ENET);
    CHECK(strstr(epode__transport_error(t), "closed the connection: 1001 (going away): bye"));
    CHECK_INT(epode__ws_close_code(t), 1001);
    /* the close is answered */
    int op, masked;
    char p[256];
    size_t pl;
    CHECK(client_frame(&s, &op, p, &pl, &masked));
    CHECK_INT(op, 8);
    done(t, &s);
    CHECK_INT(live, 0);
}

TEST(ws_normal_close_is_an_end_of_stream)
{
    server s;
    epode__transport *t = open_ws(&s, 0, NULL, 0);
    CHECK(t);
    unsigned char payload[] = {0x03, 0xe8}; /* 1000 */
    send_frame(&s, 1, 8, payload, sizeof payload, 0);
    char buf[64];
    CHECK_INT(epode__transport_read(t, buf, sizeof buf), 0);
    CHECK_INT(epode__ws_close_code(t), 1000);
    done(t, &s);
    /* no code at all: an end of stream too */
    t = open_ws(&s, 0, NULL, 0);
    CHECK(t);
    send_frame(&s, 1, 8, "", 0, 0);
    CHECK_INT(epode__transport_read(t, buf, sizeof buf), 0);
    done(t, &s);
    CHECK_INT(live, 0);
}

TEST(ws_link_ending_without_a_close_frame)
{
    server s;
    epode__transport *t = open_ws(&s, 0, NULL, 0);
    CHECK(t);
    send_text(&s, "<message/>");
    say(&s, "\x81\x05<a", 4); /* a frame cut short */
    epode__transport_free(s.peer);
    char buf[64];
    long end;
    read_all(t, buf, sizeof buf, &end);
    CHECK_STR(buf, "<message/>");
    CHECK_INT(end, 0);
    CHECK(strstr(epode__transport_error(t), "without a WebSocket close"));
    epode__transport_free(t);
    CHECK_INT(live, 0);
}

TEST(ws_shutdown_sends_what_is_queued_then_a_close)
{
    server s;
    epode__transport *t = open_ws(&s, 0, NULL, 0);
    CHECK(t);
    const char *cl = "<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>";
    CHECK_INT(epode__transport_write(t, cl, strlen(cl)), (long)strlen(cl));
    CHECK_INT(epode__transport_shutdown(t), 0);
    int op, masked;
    char p[256];
    size_t pl;
    CHECK(client_frame(&s, &op, p, &pl, &masked));
    CHECK_INT(op, 1);
    CHECK_STR(p, cl);
    CHECK(client_frame(&s, &op, p, &pl, &masked));
    CHECK_INT(op, 8);
    CHECK_INT(pl, 2);
    CHECK_INT(((unsigned char)p[0] << 8) | (unsigned char)p[1], 1000);
    /* the server's own close is then the end */
    unsigned char payload[] = {0x03, 0xe8};
    send_frame(&s, 1, 8, payload, sizeof payload, 0);
    char buf[64];
    CHECK_INT(epode__transport_read(t, buf, sizeof buf), 0);
    done(t, &s);
    CHECK_INT(live, 0);
}

TEST(ws_many_messages_are_handed_up_in_bounded_pieces)
{
    server s;
    epode__transport *t = open_ws(&s, 0, NULL, 0);
    CHECK(t);
    char msg[64];
    for (int i = 0; i < 5000; i++) {
        snprintf(msg, sizeof msg, "<message id='%04d'/>", i);
        send_text(&s, msg);
    }
    /* the layer stops reading frames while it holds enough for the
     * reader, and says it has more (pending) */
    size_t total = 0;
    char buf[4096];
    for (int rounds = 0; rounds < 100000; rounds++) {
        long n = epode__transport_read(t, buf, sizeof buf);
        if (n == EPODE_EAGAIN) {
            if (epode__transport_pending(t) == 0)
                break;
            continue;
        }
        CHECK(n > 0);
        total += (size_t)n;
    }
    CHECK_INT(total, 5000 * strlen("<message id='0000'/>"));
    done(t, &s);
    CHECK_INT(live, 0);
}

/* ---- URLs --------------------------------------------------------------------------- */

TEST(ws_url_parsing)
{
    epode__ws_url *u;
    char why[200];
    CHECK(epode__ws_url_parse(&mem, "wss://example.test/xmpp-websocket", &u, why, sizeof why) == 0);
    CHECK(u->secure);
    CHECK_STR(u->host, "example.test");
    CHECK_INT(u->port, 443);
    CHECK_STR(u->hostport, "example.test");
    CHECK_STR(u->path, "/xmpp-websocket");
    epode__ws_url_free(&mem, u);
    CHECK(epode__ws_url_parse(&mem, "WS://[::1]:5280", &u, why, sizeof why) == 0);
    CHECK(!u->secure);
    CHECK_STR(u->host, "::1");
    CHECK_INT(u->port, 5280);
    CHECK_STR(u->hostport, "[::1]:5280");
    CHECK_STR(u->path, "/");
    epode__ws_url_free(&mem, u);
    CHECK(epode__ws_url_parse(&mem, "ws://h?a=b", &u, why, sizeof why) == 0);
    CHECK_STR(u->path, "/?a=b");
    CHECK_INT(u->port, 80);
    epode__ws_url_free(&mem, u);
    const char *bad[] = {"http://h/", "wss://", "wss:///x", "wss://u:p@h/", "wss://h:0/",
                         "wss://h:99999/", "wss://h/a b", "wss://h/#frag", "wss://::1/",
                         "wss://h/\x7f", "ws:/h"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        why[0] = '\0';
        int rc = epode__ws_url_parse(&mem, bad[i], &u, why, sizeof why);
        if (rc != EPODE_EINVAL || !why[0])
            printf("# %s: %d\n", bad[i], rc);
        CHECK_INT(rc, EPODE_EINVAL);
        CHECK(why[0]);
    }
    CHECK_INT(live, 0);
}

/* ---- the connection's option, and a connection over an application's pipe ---------- */

#include <epode.h>

TEST(conn_websocket_option_checks_its_url)
{
    epode_ctx_t *ctx;
    epode_conn_t *c;
    CHECK(epode_global_init() == 0);
    CHECK(epode_ctx_new(NULL, &ctx) == 0);
    CHECK(epode_conn_new(ctx, &c) == 0);
    CHECK_INT(epode_conn_set_websocket(NULL, "wss://h/"), EPODE_EINVAL);
    CHECK_INT(epode_conn_set_websocket(c, "https://h/"), EPODE_EINVAL);
    CHECK_INT(epode_conn_set_websocket(c, "wss://u@h/"), EPODE_EINVAL);
    int d = epode_conn_set_websocket(c, NULL); /* XEP-0156 discovery (test_conn's) */
    CHECK(d == 0 || d == EPODE_ENOTSUP);       /* (ENOTSUP: a build without libcurl) */
    CHECK_INT(epode_conn_set_websocket(c, "wss://example.test/xmpp-websocket"), 0);
    CHECK_INT(epode_conn_set_websocket(c, "ws://127.0.0.1:5280/ws"), 0); /* replaces */
    CHECK_INT(epode_conn_set_websocket(c, ""), 0);                      /* back to TCP */
    /* a component has no WebSocket binding */
    CHECK(epode_conn_set_component(c, "comp.example.test", "secret") == 0);
    CHECK(epode_conn_set_server(c, "127.0.0.1", 5347) == 0);
    CHECK_INT(epode_conn_set_websocket(c, "ws://127.0.0.1/"), 0);
    CHECK_INT(epode_conn_connect(c), EPODE_EINVAL);
    epode_conn_free(c);
    epode_ctx_free(ctx);
}

/* The application's pipe: one end of a memory pair. */
typedef struct pipe_end {
    epode__transport *t;
} pipe_end;

static long p_read(void *u, void *buf, size_t len)
{
    return epode__transport_read(((pipe_end *)u)->t, buf, len);
}

static long p_write(void *u, const void *buf, size_t len)
{
    return epode__transport_write(((pipe_end *)u)->t, buf, len);
}

static size_t p_pending(void *u) { return epode__transport_pending(((pipe_end *)u)->t); }

static void dbg_log(void *u, epode_log_level_t l, const char *area, const char *msg)
{
    (void)u, (void)l;
    printf("# [%s] %s\n", area, msg);
}

typedef struct watch {
    int disconnected;
} watch;

static void on_event(epode_conn_t *c, epode_conn_event_t ev, void *u)
{
    (void)c;
    watch *w = u;
    if (ev == EPODE_CONN_DISCONNECTED)
        w->disconnected++;
}

/* Runs the loop until `cond` or 2 s. */
#define SPIN(ctx, conn, cond)                                                                  \
    for (int spin_ = 0; spin_ < 400 && !(cond); spin_++) {                                     \
        epode_conn_transport_ready(conn);                                                      \
        epode_ctx_run_once(ctx, 5);                                                            \
    }

TEST(conn_over_websocket_frames_the_stream_and_reports_a_close)
{
    epode_ctx_t *ctx;
    epode_conn_t *c;
    server s;
    pipe_end pe;
    watch w = {0};
    memset(&s, 0, sizeof s);
    CHECK(epode_global_init() == 0);
    CHECK(epode_ctx_new(NULL, &ctx) == 0);
    if (getenv("WS_LOG"))
        epode_ctx_set_log(ctx, EPODE_LOG_XML, dbg_log, NULL);
    CHECK(epode_conn_new(ctx, &c) == 0);
    CHECK(epode__memory_pair(NULL, &pe.t, &s.peer) == 0);
    epode_transport_ops_t ops = {.size = sizeof ops, .name = "test-pipe", .read = p_read,
                                 .write = p_write, .pending = p_pending};
    CHECK(epode_conn_set_transport(c, &ops, &pe) == 0);
    CHECK(epode_conn_set_jid(c, "alice@example.test/ws") == 0);
    CHECK(epode_conn_set_password(c, "secret") == 0);
    CHECK(epode_conn_set_websocket(c, "ws://ws.example.test:5280/xmpp-websocket") == 0);
    CHECK(epode_conn_add_event_cb(c, on_event, &w, NULL) == 0);
    CHECK(epode_conn_connect(c) == 0);
    const char *req = NULL;
    SPIN(ctx, c, (req = take_request(&s)) != NULL);
    CHECK(req);
    CHECK(strncmp(req, "GET /xmpp-websocket HTTP/1.1\r\nHost: ws.example.test:5280\r\n", 58) == 0);
    answer(&s, NULL, NULL, 0);
    int op = 0, masked = 0;
    char p[2048];
    size_t pl = 0;
    int got = 0;
    SPIN(ctx, c, (got = client_frame(&s, &op, p, &pl, &masked)) != 0);
    CHECK(got && masked && op == 1);
    /* the XMPP domain is the JID's, not the URL's host */
    CHECK_STR(p, "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='example.test' "
                 "version='1.0' xml:lang='en'/>");
    send_text(&s, "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' from='example.test' id='x' "
                  "version='1.0'/>");
    send_text(&s, "<stream:features xmlns:stream='http://etherx.jabber.org/streams'><mechanisms "
                  "xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism>"
                  "<mechanism>SCRAM-SHA-1</mechanism></mechanisms></stream:features>");
    got = 0;
    SPIN(ctx, c, (got = client_frame(&s, &op, p, &pl, &masked)) != 0);
    CHECK(got);
    /* in clear (ws://): SCRAM, never PLAIN */
    CHECK(strstr(p, "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-1'>"));
    /* the server goes away with a WebSocket close */
    unsigned char payload[] = {0x03, 0xf3, 'r', 'e', 's', 't', 'a', 'r', 't'}; /* 1011 */
    send_frame(&s, 1, 8, payload, sizeof payload, 0);
    SPIN(ctx, c, w.disconnected);
    CHECK_INT(w.disconnected, 1);
    CHECK_INT(epode_conn_reason(c), EPODE_REASON_NETWORK);
    CHECK(strstr(epode_conn_error_text(c), "1011 (internal server error): restart"));
    epode_conn_free(c);
    epode_ctx_free(ctx);
    epode__transport_free(pe.t); /* the application's: epode never frees it */
    epode__transport_free(s.peer);
}

TEST(conn_over_websocket_binary_frame_is_a_protocol_error)
{
    epode_ctx_t *ctx;
    epode_conn_t *c;
    server s;
    pipe_end pe;
    watch w = {0};
    memset(&s, 0, sizeof s);
    CHECK(epode_global_init() == 0);
    CHECK(epode_ctx_new(NULL, &ctx) == 0);
    CHECK(epode_conn_new(ctx, &c) == 0);
    CHECK(epode__memory_pair(NULL, &pe.t, &s.peer) == 0);
    epode_transport_ops_t ops = {.size = sizeof ops, .name = "test-pipe", .read = p_read,
                                 .write = p_write, .pending = p_pending};
    CHECK(epode_conn_set_transport(c, &ops, &pe) == 0);
    CHECK(epode_conn_set_jid(c, "alice@example.test/ws") == 0);
    CHECK(epode_conn_set_password(c, "secret") == 0);
    CHECK(epode_conn_set_websocket(c, "ws://127.0.0.1/ws") == 0);
    CHECK(epode_conn_add_event_cb(c, on_event, &w, NULL) == 0);
    CHECK(epode_conn_connect(c) == 0);
    const char *req = NULL;
    SPIN(ctx, c, (req = take_request(&s)) != NULL);
    CHECK(req);
    answer(&s, NULL, NULL, 0);
    send_frame(&s, 1, 2, "<open/>", 7, 0); /* binary: not XMPP's */
    SPIN(ctx, c, w.disconnected);
    CHECK_INT(w.disconnected, 1);
    CHECK_INT(epode_conn_reason(c), EPODE_REASON_PROTOCOL);
    CHECK_INT(epode_conn_error(c), EPODE_EPROTOCOL);
    CHECK(strstr(epode_conn_error_text(c), "binary message"));
    /* and the server was told why: close 1003 */
    int op = 0, masked = 0, got = 0;
    char p[256];
    size_t pl = 0;
    while (client_frame(&s, &op, p, &pl, &masked) && !(got = op == 8)) {
    }
    CHECK(got);
    CHECK_INT(((unsigned char)p[0] << 8) | (unsigned char)p[1], 1003);
    epode_conn_free(c);
    epode_ctx_free(ctx);
    epode__transport_free(pe.t);
    epode__transport_free(s.peer);
}
