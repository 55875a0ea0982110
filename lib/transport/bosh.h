/* lib/transport/bosh.h — XMPP over BOSH (XEP-0124 with XEP-0206) as the
 * bottom of a transport stack: no fd and no lower layer; its bytes travel
 * as HTTP POSTs made through a small request interface (curl on the
 * loop in production, a scripted fake in tests). Message-framed upward,
 * like WebSocket: the stream engine in framed mode writes <open/>,
 * complete elements and <close/>, and reads elements under its own
 * wrapper. Built only with libcurl (EPODE_HAVE_CURL). */
#ifndef EPODE__BOSH_H
#define EPODE__BOSH_H

#include <stddef.h>
#include <stdint.h>

#include "loop/loop.h"
#include "transport/transport.h"

/* ---- the HTTP requests the layer makes ------------------------------------- */

/* A request's end. err 0: an answer came (status, body[0, len), both
 * borrowed for the call; tls_version 12 or 13 over https, 0 over http);
 * else a failure of the HTTP exchange itself (EPODE_ENET, EPODE_EEOF,
 * EPODE_ETIMEDOUT: the layer resends; EPODE_ECERT, EPODE_ETLS,
 * EPODE_EDNS, EPODE_ELIMIT (over the body bound), EPODE_ENOMEM,
 * EPODE_EPROTOCOL: it fails),
 * with `text` saying what happened. */
typedef void (*epode__bosh_done_cb)(void *req, int err, long status, const char *body,
                                    size_t len, const char *text, int tls_version);

typedef struct epode__bosh_http {
    /* POSTs body[0, len) (copied); done(req, ...) runs exactly once,
     * later, from the loop (never inside start), unless canceled.
     * *handle names it for cancel until done runs. 0 or an error (then
     * done never runs). */
    int (*start)(void *user, const char *body, size_t len, unsigned timeout_ms,
                 epode__bosh_done_cb done, void *req, void **handle);
    void (*cancel)(void *user, void *handle);
    /* Frees `user` (every request canceled before). May be NULL. */
    void (*free)(void *user);
    void *user;
    /* Optional: calls fire(arg) once, from the loop, ms from now (a new
     * call replaces the one waiting; it never fires after free). NULL:
     * the layer does not pace its requests (see pump_requests). */
    void (*later)(void *user, unsigned ms, void (*fire)(void *arg), void *arg);
} epode__bosh_http;

typedef struct epode__bosh_options {
    const char *domain;  /* the XMPP domain: to='' (copied) */
    const char *lang;    /* xml:lang (copied); NULL: "en" */
    /* Bound on one response body; 0: 4 MiB. The owner passes the larger
     * of 4 MiB and twice the stanza limit, as over WebSocket. */
    size_t max_body;
    /* Something can be read, or written, again: called from the HTTP
     * completions (the loop), never from inside read/write/handshake. */
    void (*ready)(void *user);
    void *ready_user;
    /* Optional: one line per request made and answer taken, for the XML
     * log: the <body> start tag (rid, sid, type: never the stanzas it
     * carries, which may hold credentials) and the size. `out` 1 for a
     * request. Runs with ready_user. */
    void (*log)(void *user, int out, const char *line);
    epode__bosh_http http; /* owned on success (freed with the layer) */
} epode__bosh_options;

/* Makes the layer. Its handshake (ops->handshake) creates the BOSH
 * session: the creation request goes out at the first call, and 0 comes
 * once the server's answer was accepted (its attributes checked); then:
 * - write() takes the engine's framed output: each element is batched
 *   into the next request; the first <open/> is the session already
 *   made, a later one a restart (xmpp:restart), <close/> the terminate
 *   request; whitespace between elements (keepalives) is dropped;
 *   EPODE_EAGAIN when too much waits for a free request;
 * - read() hands up, in rid order, a framing <open/> (from= the server,
 *   id= the sid) for the creation and each restart answer, then every
 *   child of each answer's <body/> as a standalone element; 0 after the
 *   answer to our terminate or the server's terminate without condition
 *   (after a framing <close/>); EPODE_ENET after a terminate with a
 *   condition, an HTTP error status or a link that broke three times;
 *   EPODE_EPROTOCOL after an answer that is not a BOSH <body/>, breaks
 *   the session (another sid) or is over max_body; EPODE_ECERT or
 *   EPODE_ETLS when curl refused the server's TLS. Words in t->error.
 * Errors of creation: EPODE_EINVAL, EPODE_ENOMEM, EPODE_ERANDOM. On
 * failure the caller keeps o->http. */
int epode__bosh_new(const epode_mem_t *mem, const epode__bosh_options *o,
                    epode__transport **out);
/* 1 if t is a BOSH layer. */
int epode__bosh_is(const epode__transport *t);
/* The TLS version of the last answer (12, 13), 0 over http:// or before
 * one; and the session's sid (borrowed, NULL before the answer). */
int epode__bosh_tls_version(const epode__transport *t);
const char *epode__bosh_sid(const epode__transport *t);
/* The rid of the next new request (tests). */
uint64_t epode__bosh_next_rid(const epode__transport *t);

/* ---- URLs and the curl-backed requests --------------------------------------- */

/* A parsed http:// or https:// URL (epode_conn_set_bosh): one
 * allocation; strings point inside it. */
typedef struct epode__bosh_url {
    int secure;    /* https */
    char *host;    /* without brackets for an IPv6 literal */
    unsigned port; /* 80/443 when the URL names none */
    char *url;     /* the whole URL, as given */
} epode__bosh_url;
/* Parses url. EPODE_EINVAL with the reason in `why`, EPODE_ENOMEM. */
int epode__bosh_url_parse(const epode_mem_t *mem, const char *url, epode__bosh_url **out,
                          char *why, size_t why_len);
void epode__bosh_url_free(const epode_mem_t *mem, epode__bosh_url *u);

typedef struct epode__bosh_curl_options {
    epode__loop *loop;
    const epode__bosh_url *url;
    const char *verify_name; /* https: the XMPP domain, checked too (NULL: none) */
    int insecure;            /* https: no certificate check at all */
    int tls_min, tls_max;    /* https: 10..13, 0: defaults (see lib/http/http.h) */
    const char *ca_file;     /* NULL: the system store */
    const char *dns_servers; /* NULL: the system's */
    const char *proxy;       /* curl's proxy URL (socks5h://, http://), or NULL */
    const char *proxy_user, *proxy_pass; /* the proxy's credentials, or NULL */
    const char *proxy_host;  /* the proxy's host and port, resolved here */
    unsigned proxy_port;
    size_t max_body;
} epode__bosh_curl_options;
/* Requests through lib/http (libcurl on the loop), names looked up with
 * c-ares first (the URL's host, or the proxy's). Everything is copied. */
int epode__bosh_curl_new(const epode_mem_t *mem, const epode__bosh_curl_options *o,
                         epode__bosh_http *out);

/* Tests only: when set, a connection's BOSH link makes its requests
 * through what this fills in (0, or an error) instead of curl. */
extern int (*epode__bosh_http_override)(void *user, const epode__bosh_url *url,
                                        epode__bosh_http *out);
extern void *epode__bosh_http_override_user;

#endif
