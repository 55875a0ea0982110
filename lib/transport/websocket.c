/* lib/transport/websocket.c — RFC 7395 XMPP over WebSocket (RFC 6455) as a
 * transport layered on a byte transport (tcp for ws://, tls for wss://).
 *
 * Opening (ops->handshake): an HTTP/1.1 Upgrade request with a random
 * Sec-WebSocket-Key and `Sec-WebSocket-Protocol: xmpp`; the 101 answer is
 * checked strictly (Upgrade, Connection, the exact Accept, the xmpp
 * subprotocol echoed, no extension) within a bounded header size. Bytes
 * after the answer's headers are already frames and are kept.
 *
 * Framing is wslay's (sans-I/O: its callbacks read and write the lower
 * transport and say "would block"); client frames are masked with
 * gnutls' random bytes. Only text messages carry XMPP: a binary one ends
 * the link (close 1003); a message over the bound (the connection's
 * stanza limit) ends it with 1009; wslay answers pings and refuses masked
 * or malformed frames from the server (1002) and bad UTF-8 (1007).
 *
 * Upward this layer is still a byte pipe, with one rule of its own (the
 * "framing hook" DESIGN allows): what the stream engine writes in
 * message-framed mode is a sequence of complete top-level elements, and
 * write() cuts it into one text message per element by following tag
 * depth (the engine's serializer escapes '<' in text and attribute
 * values, and writes no comments, CDATA or PIs). Whitespace between
 * elements (the connection's keepalive) becomes a WebSocket ping, since
 * RFC 7395 forbids whitespace keepalives. read() hands up the received
 * messages' payloads, each one complete element, in order.
 *
 * It never blocks, never knows stanzas beyond tag depth, and never frees
 * what is below it except in free(). */
#include "transport/websocket.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <wslay/wslay.h>

#include "transport/cut.h"
#include "util/alloc.h"
#include "util/base64.h"
#include "util/buf.h"

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
/* Received payloads held for the layer above before we stop reading more
 * frames (beyond one message: a message is never cut). */
#define IN_HIGH 65536
/* Framed bytes waiting for the lower transport before write() says
 * EPODE_EAGAIN. */
#define WIRE_HIGH (256 * 1024)
/* Control frames (pongs) wslay may hold for the server before we close
 * with 1008: a server that floods pings without reading. */
#define CONTROL_HIGH (256 * 1024)
/* Default bound on one received message when the owner gives none. */
#define DEFAULT_MAX_MESSAGE (1024 * 1024)

enum ws_state { WS_SEND_REQUEST = 0, WS_READ_RESPONSE, WS_OPEN, WS_FAILED };

typedef struct ws {
    epode__transport base; /* base.lower: tcp or tls, owned */
    enum ws_state state;
    int fail_code;         /* sticky error once failed */
    wslay_event_context_ptr wctx;
    size_t max_message;
    char key[25];          /* base64 of 16 random bytes, NUL-terminated */
    epode__buf hs;         /* the request while it is written, then the answer read */
    size_t hs_sent;
    epode__buf raw;        /* lower bytes read past the answer's headers: frames */
    epode__buf in;         /* received message payloads for read() */
    epode__cut cut;        /* upper bytes into one message per element (cut.h) */
    epode__buf wire;       /* framed bytes for the lower transport */
    int blocked;           /* the lower said EPODE_EAGAIN while wslay read */
    int lower_eof;
    long lower_err;        /* the lower's read error, or 0 */
    int throttled;         /* stopped reading frames with `in` full */
    uint16_t close_code;   /* the server's close code (0: no close yet) */
    int close_seen;
    int close_queued;      /* ours (shutdown) */
    int local_error;       /* we closed for a protocol error: code in local_code */
    uint16_t local_code;
    unsigned char masks[256]; /* random masking keys, 4 bytes each, used once */
    size_t mask_pos;          /* next unused byte of masks (sizeof masks: refill) */
} ws;

static const epode__transport_ops ws_ops;

/* ---- helpers ------------------------------------------------------------------ */

static int fail(ws *w, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int fail(ws *w, int code, const char *fmt, ...)
{
    if (w->state != WS_FAILED) {
        char text[EPODE__TRANSPORT_ERROR_MAX];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(text, sizeof text, fmt, ap);
        va_end(ap);
        epode__transport_set_error(&w->base, "%s", text);
        w->state = WS_FAILED;
        w->fail_code = code;
    }
    return w->fail_code;
}

static const char *close_text(uint16_t code)
{
    switch (code) {
    case 1000: return "normal closure";
    case 1001: return "going away";
    case 1002: return "protocol error";
    case 1003: return "unsupported data";
    case 1005: return "no status code";
    case 1006: return "abnormal closure";
    case 1007: return "invalid payload data";
    case 1008: return "policy violation";
    case 1009: return "message too big";
    case 1010: return "mandatory extension";
    case 1011: return "internal server error";
    case 1012: return "service restart";
    case 1013: return "try again later";
    case 1014: return "bad gateway";
    }
    return "unknown code";
}

/* Writes `wire` to the lower transport: 0 when empty, EPODE_EAGAIN, or
 * the lower's error (copied into ours). */
static int flush_wire(ws *w)
{
    while (w->wire.len > 0) {
        long n = epode__transport_write(w->base.lower, w->wire.data, w->wire.len);
        if (n == EPODE_EAGAIN)
            return EPODE_EAGAIN;
        if (n < 0) {
            epode__transport_copy_error(&w->base, w->base.lower);
            return (int)n;
        }
        epode__buf_consume(&w->wire, (size_t)n);
    }
    long n = epode__transport_write(w->base.lower, NULL, 0); /* what the lower holds (TLS) */
    if (n < 0 && n != EPODE_EAGAIN)
        epode__transport_copy_error(&w->base, w->base.lower);
    return (int)n;
}

/* Lets wslay write its queue into `wire`, then `wire` out. */
static int send_queued(ws *w)
{
    if (w->wctx && wslay_event_want_write(w->wctx)) {
        if (wslay_event_send(w->wctx) < 0)
            return fail(w, EPODE_ENOMEM, "WebSocket: out of memory while framing");
        if (w->wire.failed)
            return fail(w, EPODE_ENOMEM, "WebSocket: out of memory while framing");
    }
    int rc = flush_wire(w);
    return rc == EPODE_EAGAIN ? 0 : rc;
}

/* ---- wslay callbacks ------------------------------------------------------------ */

static ssize_t on_recv(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags,
                       void *user)
{
    (void)flags;
    ws *w = user;
    if (w->raw.len > 0) {
        size_t n = w->raw.len < len ? w->raw.len : len;
        memcpy(buf, w->raw.data, n);
        epode__buf_consume(&w->raw, n);
        return (ssize_t)n;
    }
    if (w->in.len >= IN_HIGH) {
        /* enough for the layer above: the rest waits below */
        w->throttled = 1;
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    long n = epode__transport_read(w->base.lower, buf, len);
    if (n > 0)
        return n;
    if (n == EPODE_EAGAIN) {
        w->blocked = 1;
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    if (n == 0) {
        w->lower_eof = 1;
    } else {
        w->lower_err = n;
        epode__transport_copy_error(&w->base, w->base.lower);
    }
    wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE); /* sticky: set on every -1 */
    return -1;
}

static ssize_t on_send(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags,
                       void *user)
{
    (void)flags;
    ws *w = user;
    if (w->wire.len >= WIRE_HIGH) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    epode__buf_append(&w->wire, data, len);
    if (w->wire.failed) {
        wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
        return -1;
    }
    epode__buf_mark_secret(&w->wire); /* see ws_write */
    return (ssize_t)len;
}

static int on_genmask(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, void *user)
{
    (void)user;
    if (gnutls_rnd(GNUTLS_RND_NONCE, buf, len) < 0) {
        wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
        return -1;
    }
    return 0;
}

/* Our own close for something the server did wrong. */
static void close_for(ws *w, uint16_t code, const char *why)
{
    if (w->local_error)
        return;
    w->local_error = 1;
    w->local_code = code;
    epode__transport_set_error(&w->base, "WebSocket: %s (closing with %u, %s)", why,
                               (unsigned)code, close_text(code));
    wslay_event_shutdown_read(w->wctx);
    wslay_event_queue_close(w->wctx, code, NULL, 0);
}

static void on_msg(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *arg,
                   void *user)
{
    (void)ctx;
    ws *w = user;
    switch (arg->opcode) {
    case WSLAY_TEXT_FRAME:
        if (w->local_error)
            return;
        epode__buf_append(&w->in, arg->msg, arg->msg_length);
        if (w->in.failed)
            close_for(w, 1011, "out of memory for a received message");
        return;
    case WSLAY_BINARY_FRAME:
        close_for(w, 1003, "the server sent a binary message (XMPP uses text messages only)");
        return;
    case WSLAY_CONNECTION_CLOSE: {
        w->close_seen = 1;
        w->close_code = arg->status_code ? arg->status_code : 1005;
        const char *reason = arg->msg_length > 2 ? (const char *)arg->msg + 2 : "";
        int rlen = arg->msg_length > 2 ? (int)(arg->msg_length - 2) : 0;
        char text[EPODE__TRANSPORT_ERROR_MAX];
        snprintf(text, sizeof text, "the WebSocket server closed the connection: %u (%s)%s%.*s",
                 (unsigned)w->close_code, close_text(w->close_code), rlen ? ": " : "", rlen,
                 reason);
        if (!w->local_error)
            epode__transport_set_error(&w->base, "%s", text);
        return;
    }
    default: /* ping (answered by wslay), pong */
        return;
    }
}

/* ---- the opening handshake ----------------------------------------------------- */

static int build_request(ws *w, const epode__ws_options *o)
{
    unsigned char nonce[16];
    if (gnutls_rnd(GNUTLS_RND_NONCE, nonce, sizeof nonce) < 0)
        return EPODE_ERANDOM;
    epode__base64_encode(w->key, nonce, sizeof nonce);
    w->key[24] = '\0';
    epode__buf *b = &w->hs;
    epode__buf_puts(b, "GET ");
    epode__buf_puts(b, o->path && *o->path ? o->path : "/");
    epode__buf_puts(b, " HTTP/1.1\r\nHost: ");
    epode__buf_puts(b, o->host);
    epode__buf_puts(b, "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ");
    epode__buf_puts(b, w->key);
    epode__buf_puts(b, "\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: xmpp\r\n");
    if (o->origin) {
        epode__buf_puts(b, "Origin: ");
        epode__buf_puts(b, o->origin);
        epode__buf_puts(b, "\r\n");
    }
    epode__buf_puts(b, "\r\n");
    return b->failed ? EPODE_ENOMEM : 0;
}

/* Accept value for our key: base64(SHA-1(key + GUID)). out: 29 bytes. */
static int expected_accept(const char *key, char out[29])
{
    char joined[24 + sizeof WS_GUID];
    unsigned char digest[20];
    memcpy(joined, key, 24);
    memcpy(joined + 24, WS_GUID, sizeof WS_GUID - 1);
    if (gnutls_hash_fast(GNUTLS_DIG_SHA1, joined, 24 + sizeof WS_GUID - 1, digest) < 0)
        return -1;
    epode__base64_encode(out, digest, sizeof digest);
    out[28] = '\0';
    return 0;
}

static int ieq(const char *a, size_t alen, const char *b)
{
    return alen == strlen(b) && strncasecmp(a, b, alen) == 0;
}

/* 1 if the comma-separated token list [v, v+len) has `token` (any case). */
static int has_token(const char *v, size_t len, const char *token)
{
    const char *end = v + len;
    while (v < end) {
        while (v < end && (*v == ' ' || *v == '\t' || *v == ','))
            v++;
        const char *s = v;
        while (v < end && *v != ',')
            v++;
        const char *e = v;
        while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        if (ieq(s, (size_t)(e - s), token))
            return 1;
    }
    return 0;
}

/* Checks the server's answer in hs[0, head) (head: up to and with the
 * blank line). 0 or a failure (words set). */
static int check_response(ws *w, size_t head)
{
    const char *p = w->hs.data, *end = p + head;
    const char *eol = memmem(p, head, "\r\n", 2);
    char line[120];
    size_t ll = (size_t)(eol - p) < sizeof line - 1 ? (size_t)(eol - p) : sizeof line - 1;
    memcpy(line, p, ll);
    line[ll] = '\0';
    for (size_t i = 0; i < ll; i++)
        if ((unsigned char)line[i] < 0x20 || (unsigned char)line[i] > 0x7e)
            line[i] = '?';
    if (strncmp(p, "HTTP/1.1 ", 9) != 0 || eol - p < 12)
        return fail(w, EPODE_ENET, "the WebSocket server answered with no HTTP/1.1 status: \"%s\"",
                    line);
    if (strncmp(p + 9, "101", 3) != 0 || (eol - p > 12 && p[12] != ' '))
        return fail(w, EPODE_ENET, "the server refused the WebSocket upgrade: \"%s\"", line);
    char accept[29];
    if (expected_accept(w->key, accept) < 0)
        return fail(w, EPODE_ENOMEM, "WebSocket: SHA-1 failed");
    int upgrade = 0, connection = 0, accepted = 0, protocol = 0;
    for (p = eol + 2; p < end;) {
        eol = memmem(p, (size_t)(end - p), "\r\n", 2);
        if (!eol || eol == p)
            break; /* the blank line */
        if (*p == ' ' || *p == '\t')
            return fail(w, EPODE_ENET, "the WebSocket server folded a header line");
        const char *colon = memchr(p, ':', (size_t)(eol - p));
        if (!colon || colon == p)
            return fail(w, EPODE_ENET, "the WebSocket server sent a malformed header line");
        for (const char *q = p; q < colon; q++)
            if (*q == ' ' || *q == '\t' || (unsigned char)*q < 0x21)
                return fail(w, EPODE_ENET, "the WebSocket server sent a malformed header name");
        size_t nlen = (size_t)(colon - p);
        const char *v = colon + 1, *ve = eol;
        while (v < ve && (*v == ' ' || *v == '\t'))
            v++;
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
            ve--;
        size_t vlen = (size_t)(ve - v);
        if (ieq(p, nlen, "Upgrade")) {
            if (!ieq(v, vlen, "websocket"))
                return fail(w, EPODE_ENET, "the WebSocket server upgraded to something else");
            upgrade = 1;
        } else if (ieq(p, nlen, "Connection")) {
            connection |= has_token(v, vlen, "upgrade");
        } else if (ieq(p, nlen, "Sec-WebSocket-Accept")) {
            if (accepted || vlen != 28 || memcmp(v, accept, 28) != 0)
                return fail(w, EPODE_ENET,
                            "the WebSocket server's Sec-WebSocket-Accept does not match our key");
            accepted = 1;
        } else if (ieq(p, nlen, "Sec-WebSocket-Protocol")) {
            if (protocol || !(vlen == 4 && memcmp(v, "xmpp", 4) == 0))
                return fail(w, EPODE_ENET,
                            "the WebSocket server chose a subprotocol other than xmpp");
            protocol = 1;
        } else if (ieq(p, nlen, "Sec-WebSocket-Extensions")) {
            return fail(w, EPODE_ENET,
                        "the WebSocket server chose an extension we did not offer");
        }
        p = eol + 2;
    }
    if (!upgrade || !connection)
        return fail(w, EPODE_ENET,
                    "the WebSocket server's 101 lacks \"Upgrade: websocket\" or \"Connection: "
                    "Upgrade\"");
    if (!accepted)
        return fail(w, EPODE_ENET, "the WebSocket server sent no Sec-WebSocket-Accept");
    if (!protocol)
        return fail(w, EPODE_ENET,
                    "the WebSocket server does not speak the xmpp subprotocol (no "
                    "Sec-WebSocket-Protocol: xmpp in its answer)");
    return 0;
}

static int start_framing(ws *w)
{
    struct wslay_event_callbacks cbs = {
        .recv_callback = on_recv,
        .send_callback = on_send,
        .genmask_callback = on_genmask,
        .on_msg_recv_callback = on_msg,
    };
    if (wslay_event_context_client_init(&w->wctx, &cbs, w) != 0)
        return fail(w, EPODE_ENOMEM, "WebSocket: out of memory");
    /* The default bound is 2^31-1, and wslay allocates what a frame
     * header declares: always bound it. It covers reassembled fragments. */
    wslay_event_config_set_max_recv_msg_length(w->wctx, w->max_message);
    return 0;
}

static int ws_handshake(epode__transport *t)
{
    ws *w = (ws *)t;
    if (w->state == WS_FAILED)
        return w->fail_code;
    if (w->state == WS_OPEN)
        return 0;
    if (w->state == WS_SEND_REQUEST) {
        while (w->hs_sent < w->hs.len) {
            long n = epode__transport_write(t->lower, w->hs.data + w->hs_sent,
                                            w->hs.len - w->hs_sent);
            if (n == EPODE_EAGAIN)
                return EPODE_EAGAIN;
            if (n < 0) {
                epode__transport_copy_error(t, t->lower);
                w->state = WS_FAILED;
                return w->fail_code = (int)n;
            }
            w->hs_sent += (size_t)n;
        }
        long n = epode__transport_write(t->lower, NULL, 0);
        if (n < 0 && n != EPODE_EAGAIN) {
            epode__transport_copy_error(t, t->lower);
            w->state = WS_FAILED;
            return w->fail_code = (int)n;
        }
        w->hs.len = 0;
        w->state = WS_READ_RESPONSE;
    }
    /* WS_READ_RESPONSE: byte by byte would be slow; read what comes and
     * keep what follows the headers as frames. */
    for (;;) {
        size_t room = EPODE__WS_HEADER_MAX - w->hs.len;
        const char *blank = w->hs.len >= 4 ? memmem(w->hs.data, w->hs.len, "\r\n\r\n", 4) : NULL;
        if (blank) {
            size_t head = (size_t)(blank - w->hs.data) + 4;
            int rc = check_response(w, head);
            if (rc < 0)
                return rc;
            epode__buf_append(&w->raw, w->hs.data + head, w->hs.len - head);
            epode__buf_free(&w->hs);
            if (w->raw.failed)
                return fail(w, EPODE_ENOMEM, "WebSocket: out of memory");
            if ((rc = start_framing(w)) < 0)
                return rc;
            w->state = WS_OPEN;
            return 0;
        }
        if (room == 0)
            return fail(w, EPODE_ENET,
                        "the WebSocket server's answer has more than " EPODE__WS_HEADER_MAX_TEXT
                        " bytes of headers");
        if (epode__buf_reserve(&w->hs, room) < 0)
            return fail(w, EPODE_ENOMEM, "WebSocket: out of memory");
        long n = epode__transport_read(t->lower, w->hs.data + w->hs.len, room);
        if (n == EPODE_EAGAIN)
            return EPODE_EAGAIN;
        if (n == 0)
            return fail(w, EPODE_ENET,
                        "the server closed the connection during the WebSocket handshake");
        if (n < 0) {
            epode__transport_copy_error(t, t->lower);
            w->state = WS_FAILED;
            return w->fail_code = (int)n;
        }
        w->hs.len += (size_t)n;
    }
}

/* ---- reading -------------------------------------------------------------------- */

/* What read() says once no payload is left and frames have stopped. */
static long end_of_reading(ws *w)
{
    if (w->local_error)
        return EPODE_EPROTOCOL;
    if (w->close_seen) {
        /* A normal close is an end of stream (the engine tells whether
         * the XMPP stream was closed first); any other code an error. */
        if (w->close_code == 1000 || w->close_code == 1005)
            return 0;
        return EPODE_ENET;
    }
    if (w->lower_err)
        return w->lower_err;
    if (w->lower_eof) {
        epode__transport_set_error(&w->base,
                                   "the connection ended without a WebSocket close frame");
        return 0;
    }
    /* wslay found a protocol error itself: it queued its close (1002,
     * 1007 or 1009) and stopped reading. */
    uint16_t code = wslay_event_get_status_code_sent(w->wctx);
    if (code == WSLAY_CODE_ABNORMAL_CLOSURE || code == WSLAY_CODE_NO_STATUS_RCVD)
        code = 1002;
    w->local_error = 1;
    w->local_code = code;
    if (code == 1009)
        epode__transport_set_error(&w->base,
                                   "WebSocket: the server sent a message over the %zu-byte limit "
                                   "(closing with 1009, message too big)",
                                   w->max_message);
    else if (code == 1007)
        epode__transport_set_error(&w->base, "WebSocket: the server sent a text message that "
                                             "is not UTF-8 (closing with 1007)");
    else
        epode__transport_set_error(&w->base,
                                   "WebSocket: the server broke the framing protocol (a masked, "
                                   "reserved or malformed frame; closing with %u, %s)",
                                   (unsigned)code, close_text(code));
    return EPODE_EPROTOCOL;
}

static long ws_read(epode__transport *t, void *buf, size_t len)
{
    ws *w = (ws *)t;
    if (len == 0)
        return EPODE_EINVAL;
    if (w->state != WS_OPEN) {
        int rc = ws_handshake(t);
        if (rc < 0)
            return rc;
    }
    for (int round = 0;; round++) {
        if (w->in.len > 0) {
            size_t n = w->in.len < len ? w->in.len : len;
            memcpy(buf, w->in.data, n);
            epode__buf_consume(&w->in, n);
            return (long)n;
        }
        if (!wslay_event_get_read_enabled(w->wctx) || w->lower_eof || w->lower_err) {
            send_queued(w); /* the answer to a close, or our close: best effort */
            return end_of_reading(w);
        }
        if (round > 0) {
            int rc = send_queued(w); /* pongs */
            if (rc < 0)
                return rc;
            if (w->blocked || w->throttled || round > 64)
                return EPODE_EAGAIN;
        }
        w->blocked = 0;
        w->throttled = 0;
        int r = wslay_event_recv(w->wctx);
        if (r < 0 && !w->lower_eof && !w->lower_err) {
            if (r == WSLAY_ERR_NOMEM)
                return fail(w, EPODE_ENOMEM, "WebSocket: out of memory while reading");
            /* a frame wslay refused (a control frame over 125 bytes, ...) */
            close_for(w, 1002, "the server broke the framing protocol (a malformed frame)");
            send_queued(w);
            return fail(w, EPODE_EPROTOCOL, "%s", epode__transport_error(&w->base));
        }
        /* wslay queues a pong for every ping: a server that pings faster
         * than it reads would grow that queue without end */
        if (wslay_event_get_queued_msg_length(w->wctx) > CONTROL_HIGH) {
            close_for(w, 1008, "the server sends pings faster than it reads the answers");
            send_queued(w);
            return fail(w, EPODE_EPROTOCOL, "%s", epode__transport_error(&w->base));
        }
    }
}

/* ---- writing: one message per element --------------------------------------------- */

/* Our text frames are framed here, straight into `wire`, while wslay has
 * nothing queued (its pongs, pings and close go through its own queue; a
 * frame of ours waits behind them there, so the order on the wire is the
 * order they were made): one copy and the mask pass, no allocation per
 * message. RFC 6455 §5.3: a fresh random key per frame (from a pool
 * filled by gnutls_rnd). */
static int write_text_frame(ws *w, const char *payload, size_t len)
{
    unsigned char h[14];
    size_t hl = 0;
    h[hl++] = 0x81; /* FIN, text */
    if (len < 126) {
        h[hl++] = (unsigned char)(0x80 | len);
    } else if (len < 65536) {
        h[hl++] = 0x80 | 126;
        h[hl++] = (unsigned char)(len >> 8);
        h[hl++] = (unsigned char)len;
    } else {
        h[hl++] = 0x80 | 127;
        for (int i = 7; i >= 0; i--)
            h[hl++] = (unsigned char)((uint64_t)len >> (8 * i));
    }
    if (w->mask_pos + 4 > sizeof w->masks) {
        if (gnutls_rnd(GNUTLS_RND_NONCE, w->masks, sizeof w->masks) < 0)
            return fail(w, EPODE_ERANDOM, "WebSocket: no random bytes for a mask");
        w->mask_pos = 0;
    }
    const unsigned char *mask = w->masks + w->mask_pos;
    w->mask_pos += 4;
    if (epode__buf_reserve(&w->wire, hl + 4 + len) < 0) {
        w->wire.failed = 0;
        return fail(w, EPODE_ENOMEM, "WebSocket: out of memory while framing");
    }
    unsigned char *d = (unsigned char *)w->wire.data + w->wire.len;
    memcpy(d, h, hl);
    memcpy(d + hl, mask, 4);
    d += hl + 4;
    const unsigned char *s = (const unsigned char *)payload;
    for (size_t i = 0; i < len; i++)
        d[i] = s[i] ^ mask[i & 3];
    w->wire.len += hl + 4 + len;
    epode__buf_mark_secret(&w->wire); /* see ws_write */
    return 0;
}

/* Sends d[start, end) as one text message. */
static int queue_text(ws *w, const char *d, size_t start, size_t end)
{
    if (!wslay_event_want_write(w->wctx) && !w->close_queued &&
        wslay_event_get_write_enabled(w->wctx))
        return write_text_frame(w, d + start, end - start);
    struct wslay_event_msg m = {WSLAY_TEXT_FRAME, (const uint8_t *)d + start, end - start};
    int rc = wslay_event_queue_msg(w->wctx, &m);
    if (rc == WSLAY_ERR_NO_MORE_MSG)
        return fail(w, EPODE_ENET, "WebSocket: the connection is closing");
    if (rc != 0)
        return fail(w, EPODE_ENOMEM, "WebSocket: out of memory while framing");
    return 0;
}

/* The cutter's callbacks: an element is one text message; whitespace
 * between elements one ping (RFC 7395 forbids whitespace keepalives). */
static int on_element(void *user, const char *d, size_t start, size_t end)
{
    return queue_text(user, d, start, end);
}

static int on_space(void *user)
{
    ws *w = user;
    if (w->close_queued)
        return 0;
    struct wslay_event_msg m = {WSLAY_PING, (const uint8_t *)"", 0};
    if (wslay_event_queue_msg(w->wctx, &m) != 0)
        return fail(w, EPODE_ENOMEM, "WebSocket: out of memory while framing");
    return 0;
}

static long ws_write(epode__transport *t, const void *buf, size_t len)
{
    ws *w = (ws *)t;
    if (w->state != WS_OPEN) {
        int rc = ws_handshake(t);
        if (rc < 0)
            return rc;
    }
    if (w->local_error)
        return EPODE_EPROTOCOL;
    if (len == 0) {
        int rc = send_queued(w);
        if (rc < 0)
            return rc;
        return w->wire.len || wslay_event_want_write(w->wctx) ? EPODE_EAGAIN : 0;
    }
    if (w->wire.len >= WIRE_HIGH) {
        int rc = send_queued(w);
        if (rc < 0)
            return rc;
        if (w->wire.len >= WIRE_HIGH)
            return EPODE_EAGAIN;
    }
    /* Complete elements are framed from the caller's bytes; only an
     * element cut short waits in the cutter for the rest. What is written
     * may be a credential (the engine's SASL or FAST response; the frame's
     * mask hides nothing): the cutter's buffer and `wire` are always
     * secret buffers, wiped where they grow away from or consume
     * (util/buf.h). */
    int lost;
    int rc = epode__cut_write(&w->cut, buf, len, &lost);
    if (rc == EPODE_ENOMEM && lost) /* what was framed is sent; the rest is lost: say so */
        return fail(w, EPODE_ENOMEM, "WebSocket: out of memory while framing");
    if (rc < 0)
        return rc;
    rc = send_queued(w);
    return rc < 0 ? rc : (long)len;
}

/* ---- the rest of the vtable -------------------------------------------------------------- */

static unsigned ws_wants(epode__transport *t)
{
    ws *w = (ws *)t;
    unsigned want = epode__transport_wants(t->lower) | EPODE__READ;
    if (w->state == WS_SEND_REQUEST || w->wire.len > 0 ||
        (w->wctx && wslay_event_want_write(w->wctx)))
        want |= EPODE__WRITE;
    return want;
}

static int ws_fd(epode__transport *t) { return epode__transport_fd(t->lower); }

static size_t ws_pending(epode__transport *t)
{
    ws *w = (ws *)t;
    return w->in.len + w->raw.len + (w->throttled ? 1 : 0) + epode__transport_pending(t->lower);
}

static int ws_shutdown(epode__transport *t)
{
    ws *w = (ws *)t;
    if (w->state != WS_OPEN)
        return epode__transport_shutdown(t->lower);
    if (!w->close_queued) {
        /* wslay's close jumps its queue and then drops what is left: what
         * the engine wrote last (<close/>) goes out first. */
        int rc = send_queued(w);
        if (rc < 0)
            return rc;
        if (wslay_event_want_write(w->wctx) && wslay_event_get_write_enabled(w->wctx))
            return EPODE_EAGAIN;
        w->close_queued = 1;
        if (!wslay_event_get_close_sent(w->wctx))
            wslay_event_queue_close(w->wctx, 1000, NULL, 0);
    }
    int rc = send_queued(w);
    if (rc < 0)
        return rc;
    if (w->wire.len > 0)
        return EPODE_EAGAIN;
    return epode__transport_shutdown(t->lower);
}

static void ws_free(epode__transport *t)
{
    ws *w = (ws *)t;
    if (w->wctx)
        wslay_event_context_free(w->wctx);
    epode__buf_free(&w->hs);
    epode__buf_free(&w->raw);
    epode__buf_free(&w->in);
    epode__cut_free(&w->cut);
    epode__buf_free(&w->wire);
    epode__transport_free(t->lower);
    epode__transport_clear_error(t);
    epode__dealloc(t->mem, w);
}

static const epode__transport_ops ws_ops = {
    .name = "websocket",
    .read = ws_read,
    .write = ws_write,
    .wants = ws_wants,
    .fd = ws_fd,
    .pending = ws_pending,
    .shutdown = ws_shutdown,
    .free = ws_free,
    .handshake = ws_handshake,
};

/* ---- public (internal) ------------------------------------------------------------ */

int epode__ws_new(const epode_mem_t *mem, epode__transport *lower, const epode__ws_options *o,
                  epode__transport **out)
{
    if (!lower || !o || !o->host || !out)
        return EPODE_EINVAL;
    ws *w = epode__zalloc(mem, sizeof *w);
    if (!w)
        return EPODE_ENOMEM;
    w->base.ops = &ws_ops;
    w->base.mem = mem;
    w->max_message = o->max_message ? o->max_message : DEFAULT_MAX_MESSAGE;
    w->mask_pos = sizeof w->masks; /* filled at the first frame */
    epode__buf_init(&w->hs, mem);
    epode__buf_init(&w->raw, mem);
    epode__buf_init(&w->in, mem);
    epode__cut_init(&w->cut, mem, on_element, on_space, w);
    epode__buf_init(&w->wire, mem);
    int rc = build_request(w, o);
    if (rc < 0) {
        ws_free(&w->base); /* lower not yet ours: base.lower is NULL */
        return rc;
    }
    w->base.lower = lower;
    *out = &w->base;
    return 0;
}

int epode__ws_is(const epode__transport *t) { return t && t->ops == &ws_ops; }

uint16_t epode__ws_close_code(const epode__transport *t)
{
    for (; t; t = t->lower)
        if (t->ops == &ws_ops) {
            const ws *w = (const ws *)t;
            return w->local_error ? w->local_code : w->close_code;
        }
    return 0;
}

/* ---- URLs ----------------------------------------------------------------------- */

int epode__ws_url_parse(const epode_mem_t *mem, const char *url, epode__ws_url **out, char *why,
                        size_t why_len)
{
    if (!url || !out)
        return EPODE_EINVAL;
    epode__url_parts parts;
    int rc = epode__url_split(url, "wss://", "ws://", "WebSocket", &parts, why, why_len);
    if (rc < 0)
        return rc;
    const char *auth = url + parts.auth_off, *rest = url + parts.rest_off;
    size_t alen = parts.auth_len, plen = strlen(rest);
    size_t hl = strlen(parts.host) + 1, hpl = alen + 1;
    size_t pl = (plen && *rest == '/' ? plen : plen + 1) + 1;
    epode__ws_url *u = epode__zalloc(mem, sizeof *u + hl + hpl + pl);
    if (!u)
        return EPODE_ENOMEM;
    char *s = (char *)(u + 1);
    u->secure = parts.secure;
    u->port = parts.port ? parts.port : parts.secure ? 443 : 80;
    u->host = s;
    memcpy(s, parts.host, hl);
    s += hl;
    u->hostport = s;
    memcpy(s, auth, alen);
    s[alen] = '\0';
    s += hpl;
    u->path = s;
    if (plen && *rest == '/') {
        memcpy(s, rest, plen + 1);
    } else { /* "ws://h" or "ws://h?q": the path is "/" */
        s[0] = '/';
        memcpy(s + 1, rest, plen + 1);
    }
    *out = u;
    return 0;
}

void epode__ws_url_free(const epode_mem_t *mem, epode__ws_url *u)
{
    epode__dealloc(mem, u);
}
