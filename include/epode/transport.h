/* epode/transport.h — the transport interface: how a connection moves its
 * bytes. Applications plug in their own byte pipe (a serial line, an SSH
 * channel, a test harness, a socketpair relayed elsewhere) and read what
 * the transport stack established (TLS version, channel binding). */
#ifndef EPODE_TRANSPORT_H
#define EPODE_TRANSPORT_H

#include <stddef.h>

#include "epode/common.h"
#include "epode/conn.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * @file
 * A connection's bytes go through a stack of transports: optionally a
 * proxy (SOCKS5, HTTP CONNECT) over TCP, then TLS (direct, or pushed by
 * STARTTLS), later WebSocket or BOSH. epode builds that stack from the
 * connection's options; the connection only ever talks to its top.
 *
 * An application can replace the bottom of the stack with its own byte
 * pipe (epode_conn_set_transport()). epode still runs TLS over it when
 * the TLS mode asks for it, so the pipe carries TLS records and the
 * security does not depend on the application's pipe: it only moves
 * bytes, never blocks, and says what it waits for.
 */

/** The pipe wants to read (an fd event, the same value as EPODE_EV_READ). */
#define EPODE_TRANSPORT_READ 1u
/** The pipe wants to write (the same value as EPODE_EV_WRITE). */
#define EPODE_TRANSPORT_WRITE 2u

/** How a transport frames the XML stream. */
typedef enum epode_transport_framing {
    /** A byte stream: `<stream:stream>` and stanzas, cut anywhere
     * (TCP, TLS, proxies, an application's pipe). */
    EPODE_FRAMING_STREAM = 0,
    /** One XML element per message (RFC 7395 WebSocket: `<open/>`,
     * `<close/>`, one stanza per frame). Not supported yet for an
     * application's transport: epode_conn_set_transport() refuses it. */
    EPODE_FRAMING_MESSAGE
} epode_transport_framing_t;
/** The name of a value of epode_transport_framing_t, e.g. "stream" for
 * EPODE_FRAMING_STREAM: a static lower-case string (never to be freed),
 * NULL for a value outside the enum. */
EPODE_API const char *epode_transport_framing_name(epode_transport_framing_t framing);

/**
 * An application's byte pipe, as a table of functions that all get the
 * `user` pointer given to epode_conn_set_transport().
 *
 * ABI: the table starts with its own size. Set `size` to
 * `sizeof(epode_transport_ops_t)`; epode copies the table when it is set,
 * and fields past the size an application was compiled with read as
 * NULL/0. New members are only ever added at the end, as optional ones,
 * so a program built against this header keeps working with later
 * libraries — a plain struct initializer stays readable (unlike one
 * setter per function) and needs no registration object.
 *
 * Return conventions are those of epode's own transports: a count of
 * bytes, EPODE_EAGAIN (nothing now: epode waits for wants()/fd() or for
 * epode_conn_transport_ready()), or another negative EPODE_E… code (the
 * link failed: the connection ends with EPODE_REASON_NETWORK and
 * reconnects if enabled).
 */
typedef struct epode_transport_ops {
    /** sizeof(epode_transport_ops_t) as the application was compiled. */
    size_t size;
    /** A short name for logs and error texts (e.g. "ssh-channel"). */
    const char *name;
    /** Must be EPODE_FRAMING_STREAM for now. */
    epode_transport_framing_t framing;
    /** Optional. Called at each connection attempt (the first and each
     * reconnection) before anything is read or written: `host` and
     * `port` are the XMPP server epode would have connected to (the
     * server set with epode_conn_set_server(), or the JID's domain and
     * 5222, 5223 with direct TLS); no DNS lookup is made. 0: the pipe is
     * usable (it may still be connecting: reads say EPODE_EAGAIN until
     * it is); negative: this attempt fails with EPODE_REASON_NETWORK. */
    int (*open)(void *user, const char *host, unsigned port);
    /** Reads up to len (> 0) bytes: the count, 0 at the end of the
     * stream, EPODE_EAGAIN, or a negative error. */
    long (*read)(void *user, void *buf, size_t len);
    /** Writes up to len bytes: how many were taken (they are the pipe's
     * now: never offered again; fewer than len is fine), EPODE_EAGAIN,
     * or a negative error. */
    long (*write)(void *user, const void *buf, size_t len);
    /** Optional: what the pipe waits for (EPODE_TRANSPORT_READ|WRITE).
     * NULL: READ, and WRITE after a write said EPODE_EAGAIN. */
    unsigned (*wants)(void *user);
    /** Optional: the fd epode's loop watches for wants(), or -1. NULL or
     * -1: no fd; the application calls epode_conn_transport_ready() when
     * the pipe has bytes or room. */
    int (*fd)(void *user);
    /** Optional: bytes readable now without waiting (buffered inside the
     * pipe): epode reads again at once while this is non-zero. */
    size_t (*pending)(void *user);
    /** Optional: ends the sending direction gracefully (after epode's
     * closing `</stream:stream>`); 0 or EPODE_EAGAIN (not waited for). */
    int (*shutdown)(void *user);
    /** Optional: the link is over (closed, failed, or before a
     * reconnection's open()): release what open() set up. `user` stays
     * the application's; epode never frees it. */
    void (*close)(void *user);
} epode_transport_ops_t;

/**
 * Runs the connection over the application's pipe instead of TCP: no DNS
 * lookup, no socket and no proxy of epode's; TLS (direct or STARTTLS,
 * as epode_conn_set_tls() says) runs over the pipe as over TCP, with the
 * same certificate checks against the XMPP domain. Stream management,
 * resumption and reconnection work as usual (open() is called again).
 *
 * `ops` is copied (see epode_transport_ops_t for the size rule); `user`
 * is borrowed and must outlive the connection or the next call of this
 * function. NULL ops goes back to epode's own TCP. Takes effect at the
 * next connect. WebSocket (epode_conn_set_websocket() with a URL) runs
 * over the pipe as over TCP (the pipe carries its HTTP upgrade and
 * frames); BOSH and XEP-0156 discovery would make connections and DNS
 * queries of their own around the pipe: epode_conn_connect() says
 * EPODE_EINVAL for them. A read() that says it read more than it was
 * asked for ends the link (EPODE_EINVAL in the error text's words).
 *
 * Errors: EPODE_EINVAL (no connection; size smaller than the members up
 * to `write`; no read or write; framing other than
 * EPODE_FRAMING_STREAM), EPODE_ESTATE (not idle).
 */
EPODE_API int epode_conn_set_transport(epode_conn_t *conn, const epode_transport_ops_t *ops,
                                       void *user);

/**
 * Tells epode that the application's pipe (one without an fd) may have
 * bytes to read or room to write: epode looks from its next loop turn,
 * never inside this call (so it is safe from any of the pipe's own
 * functions). Harmless when idle or with a pipe that has an fd.
 */
EPODE_API void epode_conn_transport_ready(epode_conn_t *conn);

/**
 * What the transport stack established for the current link, for the
 * layers above and for the application: TLS and channel binding
 * (RFC 5929 tls-unique, RFC 9266 tls-exporter; SASL's -PLUS mechanisms
 * use them). Set `size` to `sizeof(epode_transport_facts_t)` before the
 * call: members past it are not written (the same ABI rule as the ops).
 */
typedef struct epode_transport_facts {
    /** sizeof(epode_transport_facts_t) as the application was compiled. */
    size_t size;
    /** How the stream is framed on this link. */
    epode_transport_framing_t framing;
    /** 10..13 for TLS 1.0..1.3; 0 without TLS (or before its handshake). */
    int tls_version;
    /** Key size of the negotiated cipher in bits; 0 without TLS. */
    unsigned tls_key_bits;
    /** 1: the server's certificate verifies for the XMPP domain; 0: it
     * does not (accepted by the certificate callback or with
     * verification off), or no TLS. */
    int tls_verified;
    /** tls-unique data (TLS 1.2 only) and its length (0: none). */
    unsigned char tls_unique[64];
    /** Length of tls_unique (0: not available). */
    size_t tls_unique_len;
    /** tls-exporter data (TLS 1.3, or 1.2 with extended master secret). */
    unsigned char tls_exporter[64];
    /** Length of tls_exporter (0: not available). */
    size_t tls_exporter_len;
    /** 1: the link goes through a proxy (epode_conn_set_proxy()). */
    int proxied;
} epode_transport_facts_t;

/**
 * Fills `facts` for the connection's current link (once TLS_UP or READY
 * was told; all zero before TLS). EPODE_EINVAL (NULL, or `size` smaller
 * than up to `framing`), EPODE_ESTATE (no link).
 */
EPODE_API int epode_conn_transport_facts(const epode_conn_t *conn, epode_transport_facts_t *facts);

/**
 * Reaches the server through a proxy, for every connection kind (client,
 * component, registration). `url` is one of
 *
 * - `socks5://[user:password@]host[:port]` (RFC 1928, port 1080 by
 *   default; user/password authentication of RFC 1929 when given): the
 *   XMPP host is passed to the proxy by name (address type 3), so the
 *   proxy resolves it — what Tor needs;
 * - `http://[user:password@]host[:port]` (HTTP CONNECT, port 8080 by
 *   default; Basic proxy authentication when given).
 *
 * User and password may be percent-encoded (`%40` for `@`, `%3A` for
 * `:`). The proxy's own host name is looked up locally (give an address
 * to avoid that); the XMPP server's never is: with a proxy epode makes
 * no DNS query for the XMPP domain, not even SRV. It asks the proxy for
 * the server set with epode_conn_set_server(), or else the JID's domain,
 * on the port given there, or 5222 (5223 with EPODE_TLS_DIRECT, 5347 for
 * a component). TLS runs end to end over the proxy's tunnel: the proxy
 * sees only TLS records (its own link is cleartext: a proxy password
 * travels as the proxy protocol sends it).
 *
 * How a proxy's refusal ends the connection: the proxy refused our
 * credentials (SOCKS5 authentication failed or no acceptable method,
 * HTTP 407): EPODE_REASON_AUTH, EPODE_EAUTH, never retried; anything
 * else (unreachable proxy, SOCKS5 reply codes such as "host
 * unreachable", HTTP 403 or 502, a proxy that breaks its protocol):
 * EPODE_REASON_NETWORK, EPODE_ENET, retried when reconnection is on. The
 * error text names the proxy and what it said.
 *
 * A component stream in clear (allowed to a loopback address only, see
 * epode_conn_set_component()) is refused through a proxy under the
 * default TLS mode: where the proxy connects cannot be seen. Use direct
 * TLS, or loosen TLS explicitly.
 *
 * NULL or "" removes the proxy. The proxy is not used with an
 * application's transport (epode_conn_set_transport()). Errors:
 * EPODE_EINVAL for a URL that is not one of the above (unknown scheme,
 * no host, a bad port, a path, user or password longer than 255 bytes;
 * the log says why), EPODE_ESTATE (not idle), EPODE_ENOMEM.
 */
EPODE_API int epode_conn_set_proxy(epode_conn_t *conn, const char *url);

/**
 * Runs the connection over WebSocket (RFC 7395: XMPP over WebSocket)
 * instead of a TCP stream, for clients behind networks that only let
 * HTTP(S) through. `url` is
 *
 * - `wss://host[:port][/path]` — TLS from the first byte (port 443 by
 *   default), SNI the URL's host, no XMPP ALPN. The certificate must
 *   verify for the URL's host **and** for the XMPP domain (RFC 7395,
 *   XEP-0156); a failure goes to the certificate callback as over TCP.
 *   epode_conn_set_tls_max_version() and _min_version() apply.
 * - `ws://host[:port][/path]` — no TLS (port 80 by default): allowed to
 *   a loopback address only, unless TLS was loosened with
 *   epode_conn_set_tls() (EPODE_TLS_OPTIONAL or EPODE_TLS_DISABLED,
 *   named as insecure there); otherwise the attempt ends with
 *   EPODE_ENOTLS (EPODE_REASON_TLS). There is no STARTTLS over
 *   WebSocket, and epode never sends PLAIN in clear (SCRAM is used).
 *
 * No SRV lookup is made: the URL's host is resolved and dialled (through
 * the proxy when one is set, epode_conn_set_proxy()). The XMPP domain is
 * still the JID's. On the link, the stream is framed as RFC 7395 says:
 * `<open/>` and `<close/>` instead of the stream header and end, a new
 * `<open/>` at each restart, one element per WebSocket text message.
 * SASL (and SASL2), binding, stream management, resumption, handlers
 * and reconnection work as over TCP. The keepalive
 * (epode_conn_set_keepalive) sends WebSocket pings.
 *
 * Bounds and hostile servers: a received message up to the larger of
 * 4 MiB and twice the stanza limit (epode_conn_set_limit) reaches the
 * parser, which skips a stanza over the limit and goes on, as over TCP;
 * a larger one ends the link with close code 1009. A binary message
 * (1003), a masked or malformed frame (1002) or text that is not UTF-8
 * (1007) end it too: these end the connection with
 * EPODE_REASON_PROTOCOL and EPODE_EPROTOCOL. A server's close with a
 * code other than 1000 ends it with EPODE_REASON_NETWORK. Either is
 * reconnected when enabled; the error text names the close code (and
 * the server's reason). A server's `<close see-other-uri='…'/>` is not followed: the
 * text names the URL.
 *
 * NULL asks for XEP-0156 discovery: at the next connection attempt,
 * before anything else, epode fetches the JID's domain's host-meta over
 * HTTPS (`https://DOMAIN/.well-known/host-meta`, then `.json`; the
 * certificate checked for the domain, redirects followed to https://
 * only, through the proxy when one is set) and uses the first `wss://`
 * link of rel `urn:xmpp:alt-connections:websocket`; `ws://` links are
 * never used. The URL found is kept as if it had been set (later
 * attempts and reconnections use it; NULL again looks again), and the
 * rules above apply to it: its certificate must hold for the XMPP domain
 * too. A failed lookup ends the attempt with EPODE_REASON_NETWORK
 * (EPODE_REASON_TLS for a refused certificate) and the lookup's error
 * (EPODE_EDNS, EPODE_EHTTP, EPODE_ENOTFOUND: nothing usable published,
 * EPODE_ECERT, EPODE_ETIMEDOUT, ...), the text naming each document
 * tried; reconnection, when on, tries again. "" goes back to TCP (and
 * forgets a wish for discovery). Takes effect at the next connect; not
 * for components (epode_conn_connect() then says EPODE_EINVAL).
 *
 * Errors: EPODE_EINVAL (no connection; a URL that is not ws:// or
 * wss://, no host, a bad port, user information, a fragment, spaces or
 * raw non-ASCII; the log says why), EPODE_ESTATE (not idle),
 * EPODE_ENOMEM, EPODE_ENOTSUP (epode built without WebSocket support:
 * meson -Dwebsocket=disabled or no libwslay; NULL without libcurl).
 */
EPODE_API int epode_conn_set_websocket(epode_conn_t *conn, const char *url);

/**
 * Runs the connection over BOSH (XEP-0124, with XEP-0206's XMPP over
 * BOSH) instead of a TCP stream: for clients behind networks that pass
 * only HTTP requests through, or that cut long-lived connections. `url`
 * is the server's BOSH endpoint:
 *
 * - `https://host[:port][/path]` (port 443 by default): the certificate
 *   must verify for the URL's host **and** for the XMPP domain (XEP-0206,
 *   XEP-0156), as over WebSocket. The certificate callback is not asked
 *   here: an untrusted certificate ends the attempt (EPODE_REASON_TLS,
 *   EPODE_ECERT) unless verification was turned off.
 *   epode_conn_set_tls_max_version() and _min_version() apply.
 * - `http://host[:port][/path]` (port 80 by default): allowed to a
 *   loopback host only (127.0.0.0/8, ::1 or `localhost`), unless TLS was
 *   loosened with epode_conn_set_tls() (EPODE_TLS_OPTIONAL or
 *   EPODE_TLS_DISABLED); otherwise the attempt ends with EPODE_ENOTLS
 *   (EPODE_REASON_TLS) before any request. PLAIN is never sent in clear
 *   (SCRAM is used).
 *
 * The HTTP requests go through the context's loop (libcurl's
 * multi-socket API; no thread; the URL's host looked up with the
 * context's resolver), through the proxy when one is set
 * (epode_conn_set_proxy(): a SOCKS5 proxy is asked for the name). epode
 * keeps at most two requests in flight, and no more than the server
 * allows (`requests`; one more only to end the session); one is always
 * outstanding (an empty one is a poll) so the server can push; stanzas
 * written meanwhile go out together in the next request. The stream restarts with `xmpp:restart` after
 * authentication; a request whose HTTP exchange broke (not an HTTP
 * status) is sent again, up to three times, with the same `rid` and the
 * same content (the server answers a rid once), so a cut connection
 * loses and duplicates nothing; a third failure ends the link
 * (EPODE_REASON_NETWORK, reconnected when enabled: stream management then
 * resumes over a new BOSH session). SASL (and SASL2), binding, stream
 * management, resumption, handlers and reconnection work as over TCP;
 * channel binding (-PLUS) does not (the requests may use several TLS
 * connections), so SCRAM runs without it (GS2 flag `n`) even when the
 * server offers -PLUS. Whitespace keepalives are not sent (BOSH's polling
 * keeps the session alive). A server that asks for a polling session
 * (hold='0'), more than 64 requests, a longer `wait` than the 60 s asked
 * for, or gives no or a malformed `sid` is refused
 * (EPODE_REASON_PROTOCOL).
 *
 * How the server ends a session: `type='terminate'` with a condition
 * (XEP-0124 §17) ends the connection with EPODE_REASON_NETWORK (the
 * error text names the condition; `see-other-uri` names the URL, which is
 * not followed), HTTP 404 (unknown session) and other HTTP errors with
 * EPODE_REASON_NETWORK, a response that is not a BOSH `<body/>` (or
 * names another session) with EPODE_REASON_PROTOCOL and EPODE_EPROTOCOL;
 * each is reconnected when enabled. A response body larger than the
 * larger of 4 MiB and twice the stanza limit (epode_conn_set_limit())
 * ends the link the same way (EPODE_EPROTOCOL, the text names the limit);
 * a stanza over the stanza limit inside a smaller body is skipped as
 * over TCP.
 *
 * NULL asks for XEP-0156 discovery as epode_conn_set_websocket() does,
 * for the first `https://` link of rel `urn:xmpp:alt-connections:xbosh`
 * (`http://` links are never used). "" goes back to TCP. A
 * connection uses one of TCP, WebSocket and BOSH: setting a BOSH URL
 * removes a WebSocket one and vice versa. Takes effect at the next
 * connect; not for components (epode_conn_connect() then says
 * EPODE_EINVAL).
 *
 * Errors: EPODE_EINVAL (no connection; a URL that is not http:// or
 * https://, no host, a bad port, user information, a fragment, spaces or
 * raw non-ASCII; the log says why), EPODE_ESTATE (not idle),
 * EPODE_ENOMEM, EPODE_ENOTSUP (epode built without libcurl: meson
 * -Dcurl=disabled).
 */
EPODE_API int epode_conn_set_bosh(epode_conn_t *conn, const char *url);

#ifdef __cplusplus
}
#endif

#endif
