/* lib/http/http.h — an HTTP client on epode's loop: libcurl's
 * multi-socket API (CURLMOPT_SOCKETFUNCTION / TIMERFUNCTION) driven by
 * the loop's io watches and one timer, no threads (DESIGN.md: HTTP for
 * file upload, BOSH, host-meta). Internal: not public API.
 *
 * Invariants. curl's sockets and its deadline travel the same path as
 * every other fd of the loop, so an application that runs its own loop
 * (epode_ctx_set_external_loop) sees them through its watch and timer
 * callbacks. curl is only ever called from the loop's callbacks or from
 * the functions here, never from inside one of curl's own callbacks
 * (curl refuses recursion): a request canceled from a curl callback is
 * marked and reaped from a 0 ms timer. A request's done callback runs
 * exactly once, from the loop, unless the request was canceled (then
 * never). Certificate verification is on (peer and name) unless a
 * request says `insecure`; the trusted CAs change with ca_file. Plain http:// is refused unless the
 * request says allow_http; redirects are never followed to anything but
 * https://. Response headers and body are bounded.
 *
 * Name resolution: curl's own is a resolver thread in Debian's build,
 * and removing a request while it resolves waits for getaddrinfo
 * (DEPENDENCIES.md). So callers look names up first with lib/http/dns.h
 * (c-ares on the loop) and pass the addresses as a `resolve` entry; IP
 * literals need none. (Handing curl a socket connected by lib/net does
 * not work with curl 7.88: it connects such a socket again and fails —
 * the CURL_SOCKOPT_ALREADY_CONNECTED regression, curl issue 10626, fixed
 * in 8.0.) */
#ifndef EPODE__HTTP_H
#define EPODE__HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "epode/common.h"
#include "loop/loop.h"

typedef struct epode__http epode__http;
typedef struct epode__http_req epode__http_req;

/* The final response (after redirects). Everything is borrowed for the
 * duration of the done callback. `headers` is the raw header block of
 * the last response ("Name: value\r\n" lines, status line first),
 * `body` the body; both NUL-terminated. status is 0 when no response
 * came. */
typedef struct epode__http_resp {
    long status;
    const char *headers;
    size_t headers_len;
    const char *body;
    size_t body_len;
    uint64_t body_sent; /* request body bytes that went out */
    int tls_version;    /* 12 or 13: the TLS of an https:// exchange; 0: none */
} epode__http_resp;

/* err: 0 (a response came: look at resp->status, which may be 4xx/5xx),
 * or EPODE_ETIMEDOUT, EPODE_ECERT (verification failed), EPODE_ETLS,
 * EPODE_EDNS, EPODE_ENET (connect/send/receive failed), EPODE_EEOF (the
 * server closed before the response was complete), EPODE_ELIMIT (the
 * response was larger than allowed), EPODE_EPROTOCOL (bad HTTP, a
 * refused redirect, http:// without allow_http), EPODE_ECANCELED (the
 * progress or read callback asked to stop), EPODE_ENOMEM. `text`
 * (never NULL) is curl's explanation, for logs. */
typedef void (*epode__http_done_cb)(void *user, int err, const epode__http_resp *resp,
                                    const char *text);
/* Bytes sent and received so far and the totals when known (0: unknown).
 * Runs inside curl: return non-zero to abort (err EPODE_ECANCELED).
 * Must not start, cancel or free requests (mark and act later). */
typedef int (*epode__http_progress_cb)(void *user, uint64_t up_now, uint64_t up_total,
                                       uint64_t down_now, uint64_t down_total);
/* Fills buf with up to len bytes of the body: returns the count (0: the
 * end), or -1 to abort (err EPODE_ECANCELED). Runs inside curl. */
typedef long (*epode__http_read_cb)(void *user, char *buf, size_t len);

typedef struct epode__http_opts {
    const char *method; /* "GET" (default), "PUT", "POST", "HEAD", others as given */
    const char *url;
    /* "Name: value" lines; a CR or LF anywhere makes start() fail with
     * EPODE_EINVAL (header injection). Copied. */
    const char *const *headers;
    size_t nheaders;
    /* The body: from memory (copied at start), or from read() with
     * body_size bytes (read_user is passed to it). Neither: no body. */
    const void *body;
    size_t body_len;
    epode__http_read_cb read;
    void *read_user;
    uint64_t body_size;
    size_t max_body;    /* response body bound (0: 1 MiB) */
    size_t max_headers; /* response header bound (0: 16 KiB) */
    unsigned timeout_ms; /* whole request (0: none) */
    unsigned connect_timeout_ms; /* 0: 30 s */
    unsigned stall_ms;   /* no byte moved for this long: EPODE_ETIMEDOUT (0: 60 s) */
    /* slower than this many bytes a second (both ways together) for
     * stall_ms: EPODE_ETIMEDOUT too (0: 1, i.e. only a full stall) */
    unsigned min_speed;
    unsigned max_redirects; /* 0: none followed (a 3xx is the response) */
    int allow_http;      /* accept an http:// URL (loopback tests); never for redirects */
    const char *ca_file; /* trust only this PEM file (NULL: the system store) */
    /* https: the server's certificate must also hold for this name (e.g.
     * the XMPP domain behind a BOSH URL, XEP-0206), checked when the
     * first response header arrives; otherwise the request ends with
     * EPODE_ECERT. Copied. NULL: only the URL's host is checked. */
    const char *also_verify_name;
    /* No certificate check at all (the application turned verification
     * off, knowingly). */
    int insecure;
    /* https: the TLS versions allowed, 10..13 (TLS 1.0..1.3); 0: min 12
     * (TLS 1.2), max whatever curl and gnutls offer. */
    int tls_min, tls_max;
    /* curl's proxy URL ("socks5h://user:pass@host:port" — the proxy
     * resolves the name —, "http://host:port"), or NULL: none (never
     * the environment's). Copied. */
    const char *proxy;
    const char *proxy_user, *proxy_pass; /* its credentials, or NULL (copied by curl) */
    /* "host:port:address" entries (curl's CURLOPT_RESOLVE): names the
     * application resolved already, or test names. Copied. */
    const char *const *resolve;
    size_t nresolve;
    epode__http_progress_cb progress;
    epode__http_done_cb done; /* required */
    void *user;
} epode__http_opts;

/* Makes a client on loop l (memory from mem, which must outlive it).
 * Initializes libcurl once per process. EPODE_ENOMEM, EPODE_ENET (curl
 * could not be set up), EPODE_EINVAL. */
int epode__http_new(const epode_mem_t *mem, epode__loop *l, epode__http **out);
/* Cancels every request (no done callbacks), stops every watch and the
 * timer, frees the client. NULL: no-op. From inside one of the
 * client's done callbacks the freeing waits until that callback returns
 * (nothing more is called). Must happen before the loop is freed. */
void epode__http_free(epode__http *h);
/* Starts a request; its done callback will run from the loop later,
 * never inside this call. *out (may be NULL) identifies it for cancel
 * until done runs. EPODE_EINVAL (no URL/done, CR/LF in a header,
 * body and read both given), EPODE_EPROTOCOL (not https://, or http://
 * without allow_http), EPODE_ENOMEM, EPODE_ENET (curl refused). On
 * error nothing is called. */
int epode__http_start(epode__http *h, const epode__http_opts *o, epode__http_req **out);
/* Cancels a request that has not completed: its done callback will not
 * run. Safe from any callback of the client's. */
void epode__http_cancel(epode__http_req *r);
/* Requests in flight (for tests). */
size_t epode__http_active(const epode__http *h);

#endif
