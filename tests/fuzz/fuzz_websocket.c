/* tests/fuzz/fuzz_websocket.c — the WebSocket path fed arbitrary server
 * bytes: either as the answer to the upgrade (the 101 parser), or, after
 * a good answer, as frames whose payloads go on into the stream engine in
 * message-framed mode (RFC 7395), cut in arbitrary chunks. It must never
 * crash, leak, hand up more than a message's bound at once, or go on
 * reading after an error; the engine ends at most once. The first byte
 * picks the mode (bit 0) and the chunk size. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>

#include <epode.h>

#include "stream/engine.h"
#include "transport/websocket.h"
#include "util/base64.h"

static int ended;

static void ev(void *u, int e) { (void)u, (void)e; }
static void stz(void *u, epode_stanza_t *s) { (void)u, (void)s; }
static void end_cb(void *u, int err, int reason, const char *c, const char *t)
{
    (void)u, (void)err, (void)reason, (void)c, (void)t;
    ended++;
}

/* Reads the client's request from `peer` and answers a good 101. */
static int good_answer(epode__transport *peer)
{
    char req[4096];
    long n = epode__transport_read(peer, req, sizeof req - 1);
    if (n <= 0)
        return -1;
    req[n] = '\0';
    const char *k = strstr(req, "Sec-WebSocket-Key: ");
    if (!k)
        return -1;
    char joined[64 + 36], acc[29];
    unsigned char digest[20];
    memcpy(joined, k + 19, 24);
    memcpy(joined + 24, "258EAFA5-E914-47DA-95CA-C5AB0DC85B11", 36);
    gnutls_hash_fast(GNUTLS_DIG_SHA1, joined, 60, digest);
    epode__base64_encode(acc, digest, sizeof digest);
    acc[28] = '\0';
    char ans[256];
    int len = snprintf(ans, sizeof ans,
                       "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                       "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n"
                       "Sec-WebSocket-Protocol: xmpp\r\n\r\n",
                       acc);
    return epode__transport_write(peer, ans, (size_t)len) == len ? 0 : -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int init;
    if (!init) {
        epode_global_init();
        init = 1;
    }
    if (size < 1)
        return 0;
    int frames = data[0] & 1;
    size_t chunk = (size_t)(data[0] >> 1) * 7 + 1;
    data++, size--;
    ended = 0;
    epode__transport *a, *peer, *ws;
    if (epode__memory_pair(NULL, &a, &peer) < 0)
        return 0;
    epode__ws_options o = {.host = "example.com", .path = "/ws", .max_message = 4096};
    if (epode__ws_new(NULL, a, &o, &ws) < 0) {
        epode__transport_free(a);
        epode__transport_free(peer);
        return 0;
    }
    int rc = ws->ops->handshake(ws);
    if (rc != EPODE_EAGAIN)
        abort(); /* the request is written, the answer awaited */
    if (!frames) {
        /* arbitrary bytes as the answer to the upgrade */
        for (size_t off = 0; off < size && rc == EPODE_EAGAIN; off += chunk) {
            size_t n = size - off < chunk ? size - off : chunk;
            epode__transport_write(peer, data + off, n);
            rc = ws->ops->handshake(ws);
        }
        if (rc < 0 && rc != EPODE_EAGAIN && ws->ops->handshake(ws) != rc)
            abort(); /* failures are sticky */
        goto out;
    }
    if (good_answer(peer) < 0 || ws->ops->handshake(ws) != 0)
        abort();
    epode__engine_config cfg = {.domain = "example.com", .localpart = "u", .password = "p",
                                .tls_mode = EPODE_TLS_DIRECT, .framed = 1};
    epode__engine_cbs cbs = {ev, stz, end_cb, NULL, NULL, NULL};
    epode__engine *e;
    if (epode__engine_new(NULL, &cfg, &cbs, NULL, &e) != 0)
        goto out;
    epode__tls_facts tls = {.version = 13, .key_bits = 256};
    epode__engine_start(e, &tls);
    long last = 1;
    for (size_t off = 0; off < size && !epode__engine_has_ended(e); off += chunk) {
        size_t n = size - off < chunk ? size - off : chunk;
        epode__transport_write(peer, data + off, n);
        char buf[8192];
        for (;;) {
            long got = epode__transport_read(ws, buf, sizeof buf);
            if (got <= 0) {
                if (got != EPODE_EAGAIN && last <= 0 && last != EPODE_EAGAIN && got != last)
                    abort(); /* the end of reading does not change its mind */
                last = got;
                break;
            }
            last = got;
            if (epode__engine_recv(e, buf, (size_t)got) < 0 && !epode__engine_has_ended(e))
                abort();
            if (epode__engine_has_ended(e))
                break;
        }
        if (last <= 0 && last != EPODE_EAGAIN)
            break;
        /* our frames (pongs, <auth/>, closes) go to the peer; drop them */
        size_t out;
        const char *o2 = epode__engine_output(e, &out);
        if (out) {
            epode__transport_write(ws, o2, out);
            epode__engine_consume(e, out);
        }
        char sink[4096];
        while (epode__transport_read(peer, sink, sizeof sink) > 0) {
        }
    }
    if (ended > 1)
        abort();
    epode__engine_free(e);
out:
    epode__transport_free(ws);
    epode__transport_free(peer);
    return 0;
}
