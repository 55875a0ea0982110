/* lib/transport/websocket.h — RFC 7395 XMPP over WebSocket as a transport
 * layer over tcp (ws://) or tls (wss://), and the parsing of ws/wss URLs.
 * Built only with wslay (meson feature `websocket`): EPODE_HAVE_WSLAY. */
#ifndef EPODE__WEBSOCKET_H
#define EPODE__WEBSOCKET_H

#include <stdint.h>

#include "transport/transport.h"

/* The bound on the server's 101 answer (status line and headers). */
#define EPODE__WS_HEADER_MAX 8192
#define EPODE__WS_HEADER_MAX_TEXT "8192"

typedef struct epode__ws_options {
    const char *host;   /* the Host header: "host" or "host:port" (copied into the request) */
    const char *path;   /* the request target, e.g. "/xmpp-websocket"; NULL: "/" */
    const char *origin; /* an Origin header, or NULL for none */
    size_t max_message; /* bound on one received message, reassembled (0: 1 MiB) */
} epode__ws_options;

/* Layers WebSocket over `lower` (owned on success; on failure the caller
 * keeps it). Its handshake (ops->handshake, driven by epode__stack_open)
 * sends the upgrade and checks the answer; failures are EPODE_ENET with
 * words ("the server refused the WebSocket upgrade: "HTTP/1.1 404 Not
 * Found"", "... does not speak the xmpp subprotocol ..."). Then:
 * - write() takes the engine's message-framed output and sends one text
 *   message per top-level element; whitespace between elements is sent
 *   as a ping (keepalive);
 * - read() gives the received text messages' payloads, one after the
 *   other; 0 after the server's close with 1000 (or no code) or at the
 *   link's end; EPODE_ENET after a close with another code (words say
 *   which, and the server's reason); EPODE_EPROTOCOL after we closed for
 *   the server's fault: a binary message (1003), one over max_message
 *   (1009), bad UTF-8 (1007), a masked or malformed frame (1002);
 * - shutdown() sends what is queued, then a close 1000, then shuts the
 *   lower down.
 * Errors of creation: EPODE_EINVAL, EPODE_ENOMEM, EPODE_ERANDOM. */
int epode__ws_new(const epode_mem_t *mem, epode__transport *lower, const epode__ws_options *o,
                  epode__transport **out);
/* 1 if t is a WebSocket layer. */
int epode__ws_is(const epode__transport *t);
/* The close code of the first WebSocket layer in t's stack: the server's
 * (1000..), ours after a protocol error, 0 when none was exchanged. */
uint16_t epode__ws_close_code(const epode__transport *t);

/* A parsed ws:// or wss:// URL (epode_conn_set_websocket): one
 * allocation; strings point inside it. */
typedef struct epode__ws_url {
    int secure;      /* wss */
    char *host;      /* without brackets for an IPv6 literal */
    unsigned port;   /* 80/443 when the URL names none */
    char *hostport;  /* the Host header's value: as in the URL */
    char *path;      /* "/" at least, with the query if any */
} epode__ws_url;
/* Parses url. EPODE_EINVAL with the reason in `why`, EPODE_ENOMEM. */
int epode__ws_url_parse(const epode_mem_t *mem, const char *url, epode__ws_url **out, char *why,
                        size_t why_len);
void epode__ws_url_free(const epode_mem_t *mem, epode__ws_url *u);

#endif
