/* lib/http/hostmeta.h — XEP-0156 discovery: a domain's WebSocket and BOSH
 * URLs from its host-meta documents (see hostmeta.c). Internal: lib/conn
 * uses it for epode_conn_set_websocket(conn, NULL) and
 * epode_conn_set_bosh(conn, NULL).
 *
 * Security (XEP-0156 §6, RFC 6415): the documents are fetched over HTTPS
 * only, with the certificate checked against the domain (or a redirect
 * target's host); redirects are followed only to https://. Only wss://
 * WebSocket URLs and https:// BOSH URLs are ever handed out: ws:// and
 * http:// links are ignored, as are malformed ones. The discovered URL's
 * host may differ from the XMPP domain: the XMPP connection must still
 * verify the certificate against the XMPP domain, as it would without
 * discovery. */
#ifndef EPODE__HOSTMETA_H
#define EPODE__HOSTMETA_H

#include <stddef.h>

#include "epode/common.h"
#include "http/dns.h"
#include "http/http.h"

/* The longest URL kept (a longer one is "malformed" and ignored). */
#define EPODE__HOSTMETA_URL_MAX 2048
/* The largest document read; bigger ones are refused (EPODE_ELIMIT). */
#define EPODE__HOSTMETA_DOC_MAX (64u * 1024u)

#define EPODE__HOSTMETA_REL_WEBSOCKET "urn:xmpp:alt-connections:websocket"
#define EPODE__HOSTMETA_REL_BOSH "urn:xmpp:alt-connections:xbosh"

/* What a document offers: the first acceptable URL of each kind, in
 * document order ("" when none). */
typedef struct epode__hostmeta_links {
    char websocket[EPODE__HOSTMETA_URL_MAX]; /* wss:// only */
    char bosh[EPODE__HOSTMETA_URL_MAX];      /* https:// only */
    /* links with one of our two rels that were not taken: an insecure
     * scheme (ws://, http://) or a malformed URL */
    unsigned ignored;
    /* words on the first ignored link, or on why the document was
     * refused ("" when neither); for logs */
    char note[256];
} epode__hostmeta_links;

/* The parsers: pure, no I/O, no allocation of their own beyond
 * libxml2's (XRD). doc need not be NUL-terminated. Return 0 (the
 * document was read: `out` says what it offers, maybe nothing),
 * EPODE_EPROTOCOL (not an XRD / JRD document: malformed, invalid UTF-8,
 * a DTD or entity, the wrong root), EPODE_ELIMIT (longer than
 * EPODE__HOSTMETA_DOC_MAX or nested deeper than 32), EPODE_EINVAL
 * (doc NULL with len > 0, or out NULL), EPODE_ENOMEM. On failure `out`
 * holds no URL and out->note says why. */
int epode__hostmeta_parse_xrd(const char *doc, size_t len, epode__hostmeta_links *out);
int epode__hostmeta_parse_json(const char *doc, size_t len, epode__hostmeta_links *out);

/* 1 if url is one we would hand out for rel (a websocket rel wants
 * wss://HOST[:PORT][/path], a bosh rel https://...), else 0. */
int epode__hostmeta_url_ok(const char *url, int websocket);

typedef struct epode__hostmeta_req epode__hostmeta_req;

/* The outcome, once. status 0: at least one of websocket_url / bosh_url
 * is non-NULL (the other may be NULL). Else both are NULL and status is
 * EPODE_ENOTFOUND (both documents were read but offer no usable link),
 * EPODE_EHTTP (an HTTP error status), EPODE_ECERT, EPODE_ETLS,
 * EPODE_ENET, EPODE_EDNS, EPODE_ETIMEDOUT, EPODE_EPROTOCOL (a refused
 * redirect, a malformed document), EPODE_ELIMIT (a document over 64 KiB),
 * EPODE_ENOMEM — the first document's error, unless the second one says
 * more (anything but a 404 beats a 404; ECERT beats everything).
 * `text` is never NULL: on success what was used ("from
 * https://example.com/.well-known/host-meta"), on failure words naming
 * each URL tried and what happened to it. Everything is borrowed for
 * the duration of the call. */
typedef void (*epode__hostmeta_cb)(void *user, int status, const char *websocket_url,
                                   const char *bosh_url, const char *text);

/* Log lines (ignored links, redirects, fallbacks). level: EPODE_LOG_*. */
typedef void (*epode__hostmeta_log_cb)(void *user, int level, const char *text);

typedef struct epode__hostmeta_opts {
    const epode_mem_t *mem; /* NULL: libc; must outlive the request */
    unsigned port;          /* 0: 443 (others for tests; conn passes 0) */
    const char *ca_file;    /* trust only this PEM file (NULL: the system store) */
    unsigned timeout_ms;    /* each HTTP request (0: 10 s) */
    unsigned max_redirects; /* followed per document, https:// only (0: 3) */
    epode__hostmeta_log_cb log; /* may be NULL; gets `user` */
    /* Through this proxy, as the XMPP connection goes (curl's proxy URL,
     * see epode__http_opts; NULL: direct), with these credentials (NULL:
     * none). Copied. A proxy that resolves names itself (socks5h://,
     * socks4a://, http(s)://) gets the names: no DNS query of ours
     * leaves this host (what Tor users need), and dns may be NULL. */
    const char *proxy, *proxy_user, *proxy_pass;
} epode__hostmeta_opts;

/* Looks up domain's host-meta: resolves domain with dns, GETs
 * https://DOMAIN[:port]/.well-known/host-meta (XRD) and, if that failed
 * or offered no usable link, https://DOMAIN[:port]/.well-known/host-meta.json
 * (JRD). Redirects are followed by this module (so that their hosts are
 * resolved with c-ares too), to https:// only. cb runs once, from the
 * loop, never inside this call, unless the request is canceled. *out
 * (may be NULL) names the request for cancel until cb runs. http and dns
 * must outlive the request (free them after cancel, or from cb or
 * later). A domain that does not resolve ends the lookup at once
 * (EPODE_EDNS: both documents live there). domain may be
 * internationalized (UTF-8): its IDNA A-label is used. Errors:
 * EPODE_EINVAL (no http/domain/cb, no dns without a name-resolving
 * proxy, an empty proxy, a domain that is not a host name or IP
 * literal, or has no A-label), EPODE_ENOMEM, or what
 * epode__http_dns_lookup (epode__http_start, through a proxy that
 * resolves) returns; on error cb is never called. */
int epode__hostmeta_lookup(epode__http *http, epode__http_dns *dns, const char *domain,
                           const epode__hostmeta_opts *opts, epode__hostmeta_cb cb, void *user,
                           epode__hostmeta_req **out);
/* Its callback will not run; everything it holds is freed. Safe from
 * inside the lookup's log callback and from any other loop callback.
 * NULL: no-op. */
void epode__hostmeta_cancel(epode__hostmeta_req *r);

#endif
