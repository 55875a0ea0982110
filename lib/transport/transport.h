/* lib/transport/transport.h — byte transports: a small vtable that stacks
 * (tcp → tls), in the spirit of curl's connection filters. A transport is
 * a non-blocking byte pipe: it never blocks, never knows stanzas, and says
 * which fd events it needs next. Implementations: tcp (a connected socket),
 * tls (gnutls over any lower transport; STARTTLS pushes it onto a live
 * tcp), memory (an in-process pair, no fd). */
#ifndef EPODE__TRANSPORT_H
#define EPODE__TRANSPORT_H

#include <stddef.h>
#include <stdint.h>

#include "epode/common.h"
#include "loop/loop.h" /* EPODE__READ, EPODE__WRITE */

typedef struct epode__transport epode__transport;

typedef struct epode__transport_ops {
    const char *name;
    /* > 0: bytes read; 0: orderly end of stream; EPODE_EAGAIN: nothing
     * now; other negative: EPODE_ENET / EPODE_ETLS (words in t->error).
     * len must be > 0 (EPODE_EINVAL otherwise: 0 would read as EOF). */
    long (*read)(epode__transport *t, void *buf, size_t len);
    /* > 0: bytes taken (maybe fewer than len; taken bytes are the
     * transport's: never offer them again); EPODE_EAGAIN; error.
     * len 0 flushes what the transport still holds (TLS records the
     * socket did not take): 0 when nothing is left, else EPODE_EAGAIN.
     * read() and tls_handshake() flush too. */
    long (*write)(epode__transport *t, const void *buf, size_t len);
    /* EPODE__READ|EPODE__WRITE the transport needs on its fd to make
     * progress right now (TLS may need WRITE to read, and vice versa).
     * READ is always in it while the stream is open; WRITE only when
     * something is blocked on writing: the owner adds WRITE itself while
     * it has bytes to write. */
    unsigned (*wants)(epode__transport *t);
    /* The fd to watch, or -1 (memory). */
    int (*fd)(epode__transport *t);
    /* Bytes that can be read now without waiting on the fd (decrypted
     * TLS records, memory queues): the loop must come back at once. */
    size_t (*pending)(epode__transport *t);
    /* Starts/continues a graceful close of the sending side (TLS
     * close_notify, then TCP FIN); reading stays possible.
     * 0: done; EPODE_EAGAIN: call again when wants() is ready. */
    int (*shutdown)(epode__transport *t);
    /* Frees this transport and every one below it; closes fds. */
    void (*free)(epode__transport *t);
    /* Optional: drives this layer's opening (a proxy's negotiation, the
     * TLS handshake) after the layers below it are open. 0: open (also
     * when NULL); EPODE_EAGAIN: call again when wants() is ready; an
     * error (words in t->error). Sticky once failed. */
    int (*handshake)(epode__transport *t);
} epode__transport_ops;

struct epode__transport {
    const epode__transport_ops *ops;
    const epode_mem_t *mem;
    char *error; /* last error, in words (for the application's event), or NULL */
    /* The transport this one is layered on (owned by it), or NULL at the
     * bottom of a stack: lets the stack find a layer (TLS for its facts). */
    epode__transport *lower;
};

/* The longest error text kept (bytes, with the NUL). */
#define EPODE__TRANSPORT_ERROR_MAX 160
/* Sets t's error text, printf-style (cut to the maximum); kept on the
 * heap until replaced or cleared. Out of memory, t has no text. */
void epode__transport_set_error(epode__transport *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Gives `to` the error text of `from` (the layer below). */
void epode__transport_copy_error(epode__transport *to, const epode__transport *from);
/* Frees t's error text: every transport's free calls it. */
void epode__transport_clear_error(epode__transport *t);
/* t's error text, "" when it has none. */
static inline const char *epode__transport_error(const epode__transport *t)
{
    return t && t->error ? t->error : "";
}

/* Convenience wrappers (NULL-safe where it matters). */
static inline long epode__transport_read(epode__transport *t, void *b, size_t n) { return t->ops->read(t, b, n); }
static inline long epode__transport_write(epode__transport *t, const void *b, size_t n) { return t->ops->write(t, b, n); }
static inline unsigned epode__transport_wants(epode__transport *t) { return t->ops->wants(t); }
static inline int epode__transport_fd(epode__transport *t) { return t->ops->fd(t); }
static inline size_t epode__transport_pending(epode__transport *t) { return t->ops->pending ? t->ops->pending(t) : 0; }
static inline int epode__transport_shutdown(epode__transport *t) { return t->ops->shutdown(t); }
static inline void epode__transport_free(epode__transport *t) { if (t) t->ops->free(t); }

/* ---- tcp ------------------------------------------------------------------ */
/* Wraps a connected socket: takes ownership of fd on success (on failure
 * the caller still owns it); makes it non-blocking; sets TCP_NODELAY
 * (ignored where the socket has no such option, e.g. AF_UNIX); writes
 * with MSG_NOSIGNAL, so a closed peer is EPODE_ENET, never SIGPIPE.
 * EPODE_EINVAL if fd is not a socket, EPODE_ENOMEM. */
int epode__tcp_new(const epode_mem_t *mem, int fd, epode__transport **out);
/* 1 if t is a tcp transport connected to a loopback address (127/8,
 * ::1, ::ffff:127/104): where a component may speak in clear. */
int epode__tcp_peer_is_loopback(epode__transport *t);

/* ---- memory --------------------------------------------------------------- */
/* Two connected ends: bytes written to one are read from the other.
 * Freeing or shutting down one end makes the other read 0 (EOF) once it
 * has read what was queued; writing to a freed end is EPODE_ENET. Each
 * end is freed on its own (in any order); fd() is -1, pending() is the
 * bytes queued for reading. Queues grow without bound by default. */
int epode__memory_pair(const epode_mem_t *mem, epode__transport **a, epode__transport **b);
/* Bounds the queue from `t` to its peer: writes take at most what fits
 * and return EPODE_EAGAIN when it is full (wants() then has WRITE).
 * 0: unbounded. Lets tests exercise short writes. */
void epode__memory_set_limit(epode__transport *t, size_t bytes);

/* ---- tls ------------------------------------------------------------------ */
/* Shared per context: trust store (system or a CA file) and, optionally, a
 * client certificate for SASL EXTERNAL, and the parsed priority strings.
 * Measured (gnutls 3.7.9, Debian's store): 3.7 MiB with the system store,
 * 41 KB with one CA file — never one per connection. A client session
 * costs ~11 KB after the handshake (~19 KB if each parsed its own
 * priorities, hence sharing them here). */
typedef struct epode__tls_creds epode__tls_creds;
/* ca_file NULL: the system trust store. cert/key NULL: no client cert
 * (both or neither: EPODE_EINVAL). Errors: EPODE_ETLS (a file could not
 * be loaded), EPODE_ENOMEM. The creds must outlive every session made
 * with them. */
int epode__tls_creds_new(const epode_mem_t *mem, const char *ca_file, const char *cert_file,
                         const char *key_file, epode__tls_creds **out);
/* The same, with the reason for a failure in `why` (e.g. "/etc/x.pem:
 * Error while reading file."), for the application's error event. */
int epode__tls_creds_new_why(const epode_mem_t *mem, const char *ca_file, const char *cert_file,
                             const char *key_file, char *why, size_t why_len,
                             epode__tls_creds **out);
void epode__tls_creds_free(epode__tls_creds *c);
/* Reads and parses the files as epode__tls_creds_new() does (the system
 * store is never loaded; NULL files are skipped), keeping nothing: for
 * the connection's setters, so a missing or unparsable file is refused
 * where it is named. Errors: EPODE_ETLS (`why` names the file and what
 * gnutls said), EPODE_EINVAL (only one of cert/key), EPODE_ENOMEM. */
int epode__tls_check_files(const char *ca_file, const char *cert_file, const char *key_file,
                           char *why, size_t why_len);

typedef struct epode__tls_options {
    const char *server_name;  /* SNI and the name checked: the XMPP domain
                               * (copied; no SNI for an IP literal) */
    int alpn_xmpp_client;     /* offer ALPN "xmpp-client" (direct TLS) */
    int max_version;          /* 0: library default; 12: TLS 1.2; 13: TLS 1.3;
                               * anything else: EPODE_EINVAL */
    int min_version;          /* 0: the default, 12 (TLS 1.2); 10, 11 loosen
                               * it to TLS 1.0, 1.1; 13: TLS 1.3 only;
                               * anything else or above max: EPODE_EINVAL.
                               * Key exchange is forward secret whatever
                               * the version (no RSA key transport). */
} epode__tls_options;

/* Layers TLS over `lower` (takes ownership of it on success; on failure
 * the caller keeps it). creds are borrowed. opts may be NULL. The
 * handshake runs inside read/write/handshake calls. A read may return 0
 * without the peer's close_notify (servers often just close after
 * </stream:stream>; XMPP's own framing shows truncation); t->error then
 * says so. Errors of the lower transport come back as its own code
 * (EPODE_ENET) with its words. */
int epode__tls_new(const epode_mem_t *mem, epode__tls_creds *creds, epode__transport *lower,
                   const epode__tls_options *opts, epode__transport **out);
/* Drives the handshake: 0 when complete (and our last flight handed to
 * the lower transport), EPODE_EAGAIN, EPODE_ETLS (words in tls->error,
 * e.g. "the peer does not speak TLS (it sent "<?xml versio...")"), the
 * lower's EPODE_ENET, EPODE_ENOMEM; EPODE_EINVAL if not a TLS transport.
 * Errors are sticky: every later call returns the same. */
int epode__tls_handshake(epode__transport *tls);

/* After the handshake: verification of the peer's certificate against
 * the trust store and the XMPP domain (RFC 6125: DNS-ID, CN fallback,
 * and the XmppAddr SAN). domain NULL: opts->server_name. 0 if trusted;
 * EPODE_ECERT with reasons in `why`, joined by "; " (e.g. "signed by an
 * unknown authority", "issued for another name", "expired", "not yet
 * valid", "revoked"); EPODE_ESTATE before the handshake; EPODE_EINVAL
 * if tls is not a TLS transport. The handshake never checks the
 * certificate itself, so the application can decide about a failure. */
int epode__tls_verify(epode__transport *tls, const char *domain, char *why, size_t why_len);

/* Channel-binding data (RFC 5929 tls-unique, RFC 9266 tls-exporter).
 * buf has room for *len bytes; sets *len to the data's length (12 for
 * tls-unique with TLS 1.2, 32 for tls-exporter). EPODE_ERANGE (with *len
 * set to the length needed) if it does not fit: binding data is never
 * truncated. EPODE_ENOTFOUND when the type is not available on this
 * session (tls-unique on TLS 1.3; tls-exporter on TLS 1.2 without
 * extended master secret); EPODE_ESTATE before the handshake. */
enum { EPODE__CB_TLS_UNIQUE = 1, EPODE__CB_TLS_EXPORTER = 2 };
int epode__tls_channel_binding(epode__transport *tls, int type, unsigned char *buf, size_t *len);
/* The server's certificate (DER) for the application's certificate
 * callback: borrowed, valid while the transport lives. 0, or
 * EPODE_ENOTFOUND (no handshake yet, no certificate; *der NULL, *len 0). */
int epode__tls_peer_cert(epode__transport *tls, const unsigned char **der, size_t *len);
/* The negotiated version: 10, 11, 12 or 13 for TLS 1.0 to 1.3 (0 before
 * the handshake). */
int epode__tls_version(epode__transport *tls);
/* Key size in bits of the negotiated cipher (for SASL's external SSF);
 * 0 before the handshake. */
unsigned epode__tls_key_bits(epode__transport *tls);

/* The gnutls session of a TLS transport (for verify.c and tests), or
 * NULL if tls is not one. Borrowed. */
struct gnutls_session_int;
struct gnutls_session_int *epode__tls_session(epode__transport *tls);
/* The server name given in the options, or NULL. Borrowed. */
const char *epode__tls_server_name(epode__transport *tls);

/* ---- proxies (proxy.c) ----------------------------------------------------- */
enum { EPODE__PROXY_SOCKS5 = 1, EPODE__PROXY_HTTP = 2 };
/* A parsed proxy URL (epode_conn_set_proxy). */
typedef struct epode__proxy {
    int kind;          /* EPODE__PROXY_* */
    char *host;        /* without brackets for an IPv6 literal */
    unsigned port;
    char *user, *pass; /* decoded; both NULL without credentials */
} epode__proxy;
/* Parses url. EPODE_EINVAL with the reason in `why`, EPODE_ENOMEM. */
int epode__proxy_parse(const epode_mem_t *mem, const char *url, epode__proxy **out, char *why,
                       size_t why_len);
void epode__proxy_free(const epode_mem_t *mem, epode__proxy *p);
/* Layers a proxy's negotiation over `lower` (a connected link to the
 * proxy; owned on success): its handshake asks the proxy for host:port
 * (SOCKS5: by name, ATYP 3, unless host is an IP literal; HTTP:
 * CONNECT host:port). Errors of the handshake: EPODE_EAUTH (the proxy
 * refused our credentials, or wants some we do not have), EPODE_ENET
 * (anything else: a refusal, a reply code, a broken reply), words in
 * t->error. p and host are copied. */
int epode__proxy_new(const epode_mem_t *mem, const epode__proxy *p, const char *host,
                     unsigned port, epode__transport *lower, epode__transport **out);
/* 1 if t is a proxy layer. */
int epode__proxy_is(const epode__transport *t);
/* The bound on an HTTP proxy's reply (status line and headers). */
#define EPODE__PROXY_HTTP_MAX 8192

/* ---- an application's pipe (stack.c) ----------------------------------- */
struct epode_transport_ops;
/* Wraps the application's ops (copied: a full-size table) and user;
 * calls ops->open(user, host, port) first. On an open failure t is not
 * made and the code is returned (words in `why`). */
int epode__app_new(const epode_mem_t *mem, const struct epode_transport_ops *ops, void *user,
                   const char *host, unsigned port, char *why, size_t why_len,
                   epode__transport **out);

/* ---- the stack (stack.c) --------------------------------------------------- */
/* What the layers above the bottom link are made of, from a connection's
 * options: [proxy] → [tls]. The bottom is TCP (to the server, or to the
 * proxy) or an application's pipe. */
typedef struct epode__stack_config {
    const epode__proxy *proxy; /* NULL: none */
    const char *host;          /* the XMPP server, as the proxy is asked for it */
    unsigned port;
    epode__tls_creds *creds;   /* non-NULL: TLS from the first byte */
    epode__tls_options tls;
    /* non-NULL: WebSocket (RFC 7395) on top, over tcp or tls
     * (lib/transport/websocket.h; needs EPODE_HAVE_WSLAY, else EPODE_ENOTSUP) */
    const struct epode__ws_options *ws;
} epode__stack_config;
/* Builds the stack over `bottom` (owned on success: freed with *top;
 * on failure the caller keeps it). Errors: EPODE_ENOMEM, EPODE_EINVAL. */
int epode__stack_new(const epode_mem_t *mem, const epode__stack_config *cfg,
                     epode__transport *bottom, epode__transport **top);
/* Drives the opening of every layer, bottom first: 0 when all are open,
 * EPODE_EAGAIN, or a layer's error with words in `why` (a TLS failure
 * starts with "TLS handshake failed"). */
int epode__stack_open(epode__transport *top, char *why, size_t why_len);
/* STARTTLS: pushes TLS onto the stack's top (*top replaced on success). */
int epode__stack_starttls(const epode_mem_t *mem, epode__tls_creds *creds,
                          const epode__tls_options *opts, epode__transport **top);
/* The TLS layer of the stack, or NULL (no TLS). */
epode__transport *epode__stack_tls(epode__transport *top);
/* The stack's facts (epode_transport_facts_t; verified is left as is:
 * the stack does not know what the connection accepted). */
struct epode_transport_facts;
void epode__stack_facts(epode__transport *top, struct epode_transport_facts *f);
/* "host", "host:port", "[v6]" or "[v6]:port": 0 or -1 (also when the
 * host does not fit in host_len). *port is 0 when none is given. */
int epode__parse_hostport(const char *s, size_t len, char *host, size_t host_len,
                          unsigned *port);

/* What WebSocket and BOSH URLs have in common ("wss://h[:p]/path",
 * "https://h[:p]/path"): the scheme (`secure` or `plain`, case aside),
 * no user information, no fragment, no spaces, controls or raw
 * non-ASCII, a valid host[:port]. `what` ("WebSocket", "BOSH") names the
 * URL in `why`. On 0: *secure, host (without brackets), *port (0: none
 * given), the authority `url + *auth_off` of *auth_len bytes (the Host
 * header) and the rest from `url + *rest_off` (path and query, maybe
 * empty). EPODE_EINVAL (why says which rule) otherwise. */
typedef struct epode__url_parts {
    int secure;
    char host[256];
    unsigned port;
    size_t auth_off, auth_len, rest_off;
} epode__url_parts;
int epode__url_split(const char *url, const char *secure, const char *plain, const char *what,
                     epode__url_parts *out, char *why, size_t why_len);

#endif
