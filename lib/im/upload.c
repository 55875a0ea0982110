/* lib/im/upload.c — HTTP File Upload (XEP-0363) and Out-of-Band URLs
 * (XEP-0066). The XMPP half (disco, slot request, OOB message) uses the
 * public API only; the PUT goes through lib/http (libcurl on the
 * connection's loop), reached through lib/http/glue.h for the loop and
 * the CA file — the one internal dependency, which is why this helper
 * needs a build with libcurl (EPODE_ENOTSUP otherwise).
 *
 * Invariants. Every upload ends with exactly one done callback: from an
 * IQ answer, an HTTP completion, cancel or free — never inside
 * epode_upload_start(). Only https:// URLs are used unless the
 * application allowed http://; only the slot headers XEP-0363 allows
 * reach the PUT, without line breaks. The helper may be freed from any
 * of its callbacks: entries count their depth and the memory goes when
 * the outermost returns. */
#include <epode.h>
#include <epode/upload.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <arpa/inet.h>

#include "im_alloc.h"

#ifdef EPODE_HAVE_CURL
#include "http/dns.h"
#include "http/glue.h"
#include "http/http.h"
#endif

#define NS_DISCO_INFO "http://jabber.org/protocol/disco#info"
#define NS_DISCO_ITEMS "http://jabber.org/protocol/disco#items"
#define MAX_CANDIDATES 32
#define MAX_HEADERS 8
#define MAX_URL 4096
#define MAX_RESOLVE 16

/* ---- slots ---------------------------------------------------------------------- */

typedef struct slot_impl {
    epode_upload_slot_t pub;
    const epode_mem_t *mem;
    epode_upload_header_t headers[MAX_HEADERS];
    char *strings[2 + 2 * MAX_HEADERS];
    size_t nstrings;
} slot_impl;

void epode_upload_slot_free(epode_upload_slot_t *slot)
{
    if (!slot)
        return;
    slot_impl *s = (slot_impl *)slot;
    for (size_t i = 0; i < s->nstrings; i++)
        im_free(s->mem, s->strings[i]);
    im_free(s->mem, s);
}

static char *keep(slot_impl *s, const char *text, size_t len)
{
    char *c = im_alloc(s->mem, len + 1);
    if (!c)
        return NULL;
    memcpy(c, text, len);
    c[len] = '\0';
    s->strings[s->nstrings++] = c;
    return c;
}

/* http:// or https://, a host, no spaces or control characters. */
static int url_ok(const char *u)
{
    if (!u)
        return 0;
    size_t n = strlen(u);
    if (n == 0 || n > MAX_URL)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)u[i];
        if (c <= 0x20 || c == 0x7f)
            return 0;
    }
    const char *rest = NULL;
    if (strncasecmp(u, "https://", 8) == 0)
        rest = u + 8;
    else if (strncasecmp(u, "http://", 7) == 0)
        rest = u + 7;
    return rest && *rest && *rest != '/';
}

static int allowed_header(const char *name)
{
    return strcasecmp(name, "Authorization") == 0 || strcasecmp(name, "Cookie") == 0 ||
           strcasecmp(name, "Expires") == 0;
}

int epode_upload_slot_parse(const epode_mem_t *mem, const epode_stanza_t *el,
                            epode_upload_slot_t **out)
{
    if (!el || !out)
        return EPODE_EINVAL;
    const epode_stanza_t *slot = el;
    const char *name = epode_stanza_get_name(el), *ns = epode_stanza_get_ns(el);
    if (!name || strcmp(name, "slot") != 0 || !ns || strcmp(ns, EPODE_NS_HTTP_UPLOAD) != 0)
        slot = epode_stanza_find_child(el, "slot", EPODE_NS_HTTP_UPLOAD);
    if (!slot)
        return EPODE_ENOTFOUND;
    epode_stanza_t *put = epode_stanza_find_child(slot, "put", EPODE_NS_HTTP_UPLOAD);
    epode_stanza_t *get = epode_stanza_find_child(slot, "get", EPODE_NS_HTTP_UPLOAD);
    const char *put_url = put ? epode_stanza_get_attr(put, "url") : NULL;
    const char *get_url = get ? epode_stanza_get_attr(get, "url") : NULL;
    if (!url_ok(put_url) || !url_ok(get_url))
        return EPODE_EPROTOCOL;
    slot_impl *s = im_zalloc(mem, sizeof *s);
    if (!s)
        return EPODE_ENOMEM;
    s->mem = mem;
    s->pub.headers = s->headers;
    if (!(s->pub.put_url = keep(s, put_url, strlen(put_url))) ||
        !(s->pub.get_url = keep(s, get_url, strlen(get_url))))
        goto nomem;
    for (epode_stanza_t *h = epode_stanza_find_child(put, "header", EPODE_NS_HTTP_UPLOAD); h;
         h = epode_stanza_find_next(h, "header", EPODE_NS_HTTP_UPLOAD)) {
        const char *hn = epode_stanza_get_attr(h, "name");
        if (!hn || !allowed_header(hn) || s->pub.nheaders == MAX_HEADERS)
            continue;
        const char *hv = epode_stanza_get_text(h);
        if (!hv)
            hv = "";
        /* XEP-0363 §5: strip newlines (header injection). */
        size_t len = strlen(hv);
        char *v = keep(s, hv, len);
        if (!v)
            goto nomem;
        size_t w = 0;
        for (size_t i = 0; i < len; i++)
            if (v[i] != '\r' && v[i] != '\n')
                v[w++] = v[i];
        v[w] = '\0';
        const char *n = keep(s, hn, strlen(hn));
        if (!n)
            goto nomem;
        s->headers[s->pub.nheaders].name = n;
        s->headers[s->pub.nheaders].value = v;
        s->pub.nheaders++;
    }
    *out = &s->pub;
    return 0;
nomem:
    epode_upload_slot_free(&s->pub);
    return EPODE_ENOMEM;
}

/* ---- Out-of-Band data ---------------------------------------------------------------- */

int epode_upload_send_url(epode_conn_t *conn, const char *to, const char *type, const char *url)
{
    if (!conn || !url || !*url)
        return EPODE_EINVAL;
    epode_stanza_t *m = NULL, *x = NULL, *u = NULL;
    int rc = epode_stanza_new_message(im_mem(conn), type ? type : "chat", to, url, &m);
    if (rc == 0)
        rc = epode_stanza_add_child_new(m, "x", EPODE_NS_OOB, &x);
    if (rc == 0)
        rc = epode_stanza_add_child_new(x, "url", EPODE_NS_OOB, &u);
    if (rc == 0)
        rc = epode_stanza_set_text(u, url);
    if (rc == 0)
        rc = epode_conn_send(conn, m);
    epode_stanza_unref(m);
    return rc;
}

const char *epode_oob_url(const epode_stanza_t *message)
{
    if (!message)
        return NULL;
    epode_stanza_t *x = epode_stanza_find_child(message, "x", EPODE_NS_OOB);
    return x ? epode_stanza_child_text(x, "url", EPODE_NS_OOB) : NULL;
}

/* ---- uploads ------------------------------------------------------------------------------ */

#ifndef EPODE_HAVE_CURL

int epode_upload_new(epode_conn_t *conn, epode_upload_t **out)
{
    return !conn || !out ? EPODE_EINVAL : EPODE_ENOTSUP;
}
void epode_upload_free(epode_upload_t *up)
{
    (void)up;
}
int epode_upload_set_service(epode_upload_t *up, const char *jid, unsigned long long max)
{
    (void)up, (void)jid, (void)max;
    return EPODE_ENOTSUP;
}
const char *epode_upload_service(const epode_upload_t *up)
{
    (void)up;
    return NULL;
}
unsigned long long epode_upload_max_file_size(const epode_upload_t *up)
{
    (void)up;
    return 0;
}
int epode_upload_set_allow_http(epode_upload_t *up, int allow)
{
    (void)up, (void)allow;
    return EPODE_ENOTSUP;
}
int epode_upload_add_resolve(epode_upload_t *up, const char *host, unsigned port,
                             const char *address)
{
    (void)up, (void)host, (void)port, (void)address;
    return EPODE_ENOTSUP;
}
int epode_upload_set_timeouts(epode_upload_t *up, unsigned slot_ms, unsigned stall_ms)
{
    (void)up, (void)slot_ms, (void)stall_ms;
    return EPODE_ENOTSUP;
}
int epode_upload_start(epode_upload_t *up, const epode_upload_file_t *file,
                       epode_upload_done_cb done, epode_upload_progress_cb progress, void *user,
                       unsigned *id)
{
    (void)up, (void)file, (void)done, (void)progress, (void)user, (void)id;
    return EPODE_ENOTSUP;
}
int epode_upload_cancel(epode_upload_t *up, unsigned id)
{
    (void)up, (void)id;
    return EPODE_ENOTSUP;
}

#else

enum req_state { R_SERVICE, R_SLOT, R_PUT };

typedef struct up_req {
    struct up_req *next;
    epode_upload_t *up;
    unsigned id;
    enum req_state state;
    char *filename, *content_type;
    char *data; /* copied bytes, or NULL with fd */
    size_t len;
    int fd;
    unsigned long long size, sent;
    int failing; /* marked by fail_waiting(): to be failed */
    unsigned iq_id;
    epode__http_req *http;
    epode__http_lookup *lookup; /* the PUT host's addresses, while asked */
    char host[256];
    unsigned port;
    epode_upload_slot_t *slot;
    epode_upload_done_cb done;
    epode_upload_progress_cb progress;
    void *user;
} up_req;

enum disco_state { D_NONE, D_RUNNING, D_DONE };

typedef struct candidate {
    struct epode_upload *up;
    char *jid;
    unsigned iq_id;
    int answered, has_feature;
    int err; /* no answer (its status), or EPODE_ENOMEM: it could not be read */
    unsigned long long max;
} candidate;

struct epode_upload {
    epode_conn_t *conn;
    const epode_mem_t *mem;
    unsigned ev_id;
    epode__http *http;
    epode__http_dns *dns;
    char *service;
    unsigned long long max_size;
    enum disco_state disco;
    unsigned items_iq;
    candidate cand[MAX_CANDIDATES];
    size_t ncand;
    int allow_http;
    char **resolve;
    size_t nresolve;
    unsigned slot_ms, stall_ms;
    unsigned next_id;
    up_req *reqs;
    unsigned depth;
    int free_pending;
};

static void destroy(epode_upload_t *up);

static void enter(epode_upload_t *up)
{
    up->depth++;
}

static void leave(epode_upload_t *up)
{
    if (--up->depth == 0 && up->free_pending)
        destroy(up);
}

static void req_unlink(up_req *r)
{
    for (up_req **p = &r->up->reqs; *p; p = &(*p)->next)
        if (*p == r) {
            *p = r->next;
            return;
        }
}

static void req_release(up_req *r)
{
    const epode_mem_t *mem = r->up->mem;
    if (r->iq_id && r->up->conn)
        epode_conn_remove(r->up->conn, r->iq_id);
    if (r->http)
        epode__http_cancel(r->http);
    if (r->lookup)
        epode__http_dns_cancel(r->lookup);
    if (r->fd >= 0)
        close(r->fd);
    epode_upload_slot_free(r->slot);
    im_free(mem, r->filename);
    im_free(mem, r->content_type);
    im_free(mem, r->data);
    im_free(mem, r);
}

/* Ends r: unlinks it, tells its owner, frees it. */
static void finish(up_req *r, const epode_upload_result_t *res)
{
    epode_upload_t *up = r->up;
    req_unlink(r);
    if (r->iq_id && up->conn)
        epode_conn_remove(up->conn, r->iq_id);
    r->iq_id = 0;
    if (r->http)
        epode__http_cancel(r->http);
    r->http = NULL;
    if (r->lookup)
        epode__http_dns_cancel(r->lookup);
    r->lookup = NULL;
    enter(up);
    r->done(up, r->id, res, r->user);
    req_release(r);
    leave(up);
}

static void fail(up_req *r, int err, const char *text)
{
    epode_upload_result_t res = {.err = err, .text = text};
    if (err == EPODE_ELIMIT)
        res.max_file_size = r->up->max_size;
    finish(r, &res);
}

/* Fails every request waiting for the service (discovery ended badly):
 * those waiting now only — one a done callback starts (a retry) waits
 * for a fresh discovery instead of getting this stale error at once. */
static void fail_waiting(epode_upload_t *up, int err, const char *text)
{
    up_req *r;
    for (r = up->reqs; r; r = r->next)
        r->failing = r->state == R_SERVICE;
    while (!up->free_pending) {
        for (r = up->reqs; r && !r->failing; r = r->next)
            ;
        if (!r)
            break;
        fail(r, err, text);
    }
}

/* ---- the PUT ------------------------------------------------------------------ */

static long read_file(void *user, char *buf, size_t len)
{
    up_req *r = user;
    for (;;) {
        ssize_t n = read(r->fd, buf, len);
        if (n >= 0)
            return (long)n;
        if (errno != EINTR)
            return -1;
    }
}

static int on_http_progress(void *user, uint64_t up_now, uint64_t up_total, uint64_t down_now,
                            uint64_t down_total)
{
    (void)down_now, (void)down_total, (void)up_total;
    up_req *r = user;
    if (r->progress && up_now != r->sent) {
        r->sent = up_now;
        epode_upload_t *up = r->up;
        enter(up);
        r->progress(up, r->id, up_now, r->size, r->user);
        leave(up);
    }
    return 0;
}

static void on_http_done(void *user, int err, const epode__http_resp *resp, const char *text)
{
    up_req *r = user;
    epode_upload_t *up = r->up;
    r->http = NULL; /* the HTTP layer forgets it after this call */
    enter(up);
    /* A response body over the bound (an error page, say) is not ours to
     * read: the status decides. */
    if (err == EPODE_ELIMIT && resp->status >= 300)
        err = 0;
    /* A success needs the whole file to have gone out: a 2xx answered
     * before (an overflowing one cut the PUT short) is not one. */
    int short_body = (err == 0 || err == EPODE_ELIMIT) && resp->status >= 200 &&
                     resp->status < 300 && resp->body_sent < r->size;
    if (err == EPODE_ELIMIT && resp->status >= 200 && !short_body)
        err = 0;
    epode_upload_result_t res = {.err = err, .text = text, .http_status = resp->status};
    char why[96];
    if (short_body) {
        res.err = EPODE_EPROTOCOL;
        snprintf(why, sizeof why, "HTTP status %ld before the whole file went out", resp->status);
        res.text = why;
    } else if (err == 0 && resp->status != 200 && resp->status != 201) {
        res.err = EPODE_EHTTP;
        if (resp->status == 413)
            res.err = EPODE_ELIMIT;
        snprintf(why, sizeof why, "the PUT got HTTP status %ld", resp->status);
        res.text = why;
    } else if (err == 0) {
        res.get_url = r->slot->get_url;
        res.text = NULL;
    }
    finish(r, &res);
    leave(up);
}

static int scheme_ok(const epode_upload_t *up, const char *url)
{
    return strncasecmp(url, "https://", 8) == 0 ||
           (up->allow_http && strncasecmp(url, "http://", 7) == 0);
}

/* The PUT, its host's addresses known (`entry`, a resolve entry, or
 * NULL: curl needs no resolver for it). */
static void put_now(up_req *r, const char *entry)
{
    epode_upload_t *up = r->up;
    int rc = 0;
    if (!up->http)
        rc = epode__http_new(up->mem, epode__http_glue_loop(up->conn), &up->http);
    if (rc < 0) {
        fail(r, rc, "could not set up HTTP");
        return;
    }
    const char *resolve[MAX_RESOLVE + 1];
    size_t nresolve = 0;
    for (size_t i = 0; i < up->nresolve && nresolve < MAX_RESOLVE; i++)
        resolve[nresolve++] = up->resolve[i];
    if (entry)
        resolve[nresolve++] = entry;
    /* "Name: value" lines: the slot's allowed headers, and the type. */
    char *lines[MAX_HEADERS + 1];
    size_t n = 0;
    rc = 0;
    for (size_t i = 0; i < r->slot->nheaders && rc == 0; i++) {
        const epode_upload_header_t *h = &r->slot->headers[i];
        size_t len = strlen(h->name) + strlen(h->value) + 3;
        if (!(lines[n] = im_alloc(up->mem, len)))
            rc = EPODE_ENOMEM;
        else
            snprintf(lines[n++], len, "%s: %s", h->name, h->value);
    }
    if (rc == 0) {
        size_t len = strlen(r->content_type) + 15;
        if (!(lines[n] = im_alloc(up->mem, len)))
            rc = EPODE_ENOMEM;
        else
            snprintf(lines[n++], len, "Content-Type: %s", r->content_type);
    }
    if (rc == 0) {
        epode__http_opts o = {
            .method = "PUT",
            .url = r->slot->put_url,
            .headers = (const char *const *)lines,
            .nheaders = n,
            .max_body = 64 * 1024,
            .stall_ms = up->stall_ms,
            .min_speed = EPODE_UPLOAD_MIN_SPEED,
            .allow_http = up->allow_http,
            .ca_file = epode__http_glue_ca_file(up->conn),
            .resolve = resolve,
            .nresolve = nresolve,
            .progress = on_http_progress,
            .done = on_http_done,
            .user = r,
        };
        if (r->fd >= 0) {
            o.read = read_file;
            o.read_user = r;
            o.body_size = r->size;
        } else {
            o.body = r->data;
            o.body_len = r->len;
        }
        rc = epode__http_start(up->http, &o, &r->http);
        if (rc == 0) {
            /* the memory body was copied by the HTTP layer */
            im_free(up->mem, r->data);
            r->data = NULL;
            r->state = R_PUT;
        }
    }
    for (size_t i = 0; i < n; i++)
        im_free(up->mem, lines[i]);
    if (rc < 0)
        fail(r, rc, "the PUT could not be started");
}

/* The host and port of an http(s) URL; *literal 1 for an IP address.
 * 0, or -1 for a URL we cannot take apart. */
static int url_host_port(const char *url, char *host, size_t size, unsigned *port, int *literal)
{
    int tls = strncasecmp(url, "https://", 8) == 0;
    const char *a = url + (tls ? 8 : 7);
    size_t alen = strcspn(a, "/?#");
    const char *at = memchr(a, '@', alen);
    while (at) { /* userinfo: the host follows the last '@' */
        alen -= (size_t)(at + 1 - a);
        a = at + 1;
        at = memchr(a, '@', alen);
    }
    const char *h = a, *colon;
    size_t hlen;
    *literal = 0;
    if (*a == '[') {
        const char *close = memchr(a, ']', alen);
        if (!close)
            return -1;
        h = a + 1;
        hlen = (size_t)(close - h);
        colon = close + 1 < a + alen && close[1] == ':' ? close + 1 : NULL;
        *literal = 1;
    } else {
        colon = memchr(a, ':', alen);
        hlen = colon ? (size_t)(colon - a) : alen;
    }
    if (hlen == 0 || hlen >= size)
        return -1;
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    *port = tls ? 443 : 80;
    if (colon) {
        char *end;
        unsigned long p = strtoul(colon + 1, &end, 10);
        if (end != a + alen || p == 0 || p > 65535)
            return -1;
        *port = (unsigned)p;
    }
    unsigned char bin[16];
    if (!*literal)
        *literal = inet_pton(AF_INET, host, bin) == 1;
    return 0;
}

static void on_resolved(void *user, int status, const char *addrs)
{
    up_req *r = user;
    epode_upload_t *up = r->up;
    r->lookup = NULL;
    enter(up);
    if (status < 0) {
        char why[320];
        snprintf(why, sizeof why, "could not resolve %s: %s", r->host, epode_strerror(status));
        fail(r, status, why);
    } else {
        size_t len = strlen(r->host) + strlen(addrs) + 10;
        char *entry = im_alloc(up->mem, len);
        if (!entry) {
            fail(r, EPODE_ENOMEM, "out of memory");
        } else {
            snprintf(entry, len, "%s:%u:%s", r->host, r->port, addrs);
            put_now(r, entry);
            im_free(up->mem, entry);
        }
    }
    leave(up);
}

static void start_put(up_req *r)
{
    epode_upload_t *up = r->up;
    if (!scheme_ok(up, r->slot->put_url) || !scheme_ok(up, r->slot->get_url)) {
        fail(r, EPODE_EPROTOCOL, "the slot's URLs are not https://");
        return;
    }
    int literal;
    if (url_host_port(r->slot->put_url, r->host, sizeof r->host, &r->port, &literal) < 0) {
        fail(r, EPODE_EPROTOCOL, "the slot's PUT URL has no usable host");
        return;
    }
    /* A name the application resolved already, or an address: no lookup. */
    char prefix[300];
    snprintf(prefix, sizeof prefix, "%s:%u:", r->host, r->port);
    for (size_t i = 0; i < up->nresolve && !literal; i++)
        if (strncasecmp(up->resolve[i], prefix, strlen(prefix)) == 0)
            literal = 1;
    if (literal) {
        put_now(r, NULL);
        return;
    }
    /* Else c-ares on the loop: curl's own resolver is a thread. */
    int rc = 0;
    if (!up->dns)
        rc = epode__http_dns_new(up->mem, epode__http_glue_loop(up->conn),
                                 epode__http_glue_dns_servers(up->conn), &up->dns);
    if (rc == 0)
        rc = epode__http_dns_lookup(up->dns, r->host, on_resolved, r, &r->lookup);
    if (rc < 0)
        fail(r, rc, "could not start resolving the PUT URL's host");
}

/* ---- the slot --------------------------------------------------------------------- */

static void on_slot(epode_conn_t *conn, epode_stanza_t *result, int status, void *user)
{
    (void)conn;
    up_req *r = user;
    epode_upload_t *up = r->up;
    r->iq_id = 0;
    enter(up);
    if (status < 0) {
        fail(r, status, "no answer to the slot request");
    } else if (strcmp(epode_stanza_get_attr(result, "type") ? epode_stanza_get_attr(result, "type") : "",
                      "error") == 0) {
        epode_stanza_cond_t cond = EPODE_COND_UNDEFINED_CONDITION;
        const char *text = NULL;
        epode_stanza_get_error(result, &cond, NULL, &text);
        epode_upload_result_t res = {.err = EPODE_EREFUSED,
                                     .condition = epode_stanza_cond_name(cond),
                                     .text = text};
        epode_stanza_t *e = epode_stanza_find_child(result, "error", NULL);
        epode_stanza_t *big = e ? epode_stanza_find_child(e, "file-too-large", EPODE_NS_HTTP_UPLOAD) : NULL;
        epode_stanza_t *retry = e ? epode_stanza_find_child(e, "retry", EPODE_NS_HTTP_UPLOAD) : NULL;
        if (big) {
            res.err = EPODE_ELIMIT;
            const char *max = epode_stanza_child_text(big, "max-file-size", EPODE_NS_HTTP_UPLOAD);
            char *end = NULL;
            if (max && *max >= '0' && *max <= '9') {
                unsigned long long v = strtoull(max, &end, 10);
                if (end && !*end)
                    res.max_file_size = v;
            }
        }
        if (retry)
            res.retry_stamp = epode_stanza_get_attr(retry, "stamp");
        if (!res.text)
            res.text = big ? "the file is too large for the service" : "the service refused the slot";
        finish(r, &res);
    } else {
        int rc = epode_upload_slot_parse(up->mem, result, &r->slot);
        if (rc < 0)
            fail(r, rc == EPODE_ENOMEM ? rc : EPODE_EPROTOCOL, "the service sent no usable slot");
        else
            start_put(r);
    }
    leave(up);
}

/* Sends r's slot request; 0 or an error (nothing called). */
static int send_slot(up_req *r)
{
    epode_upload_t *up = r->up;
    epode_stanza_t *iq = NULL, *q = NULL;
    char size[24];
    snprintf(size, sizeof size, "%llu", r->size);
    int rc = epode_stanza_new_iq(up->mem, "get", NULL, &iq);
    if (rc == 0)
        rc = epode_stanza_set_attr(iq, "to", up->service);
    if (rc == 0)
        rc = epode_stanza_add_child_new(iq, "request", EPODE_NS_HTTP_UPLOAD, &q);
    if (rc == 0)
        rc = epode_stanza_set_attr(q, "filename", r->filename);
    if (rc == 0)
        rc = epode_stanza_set_attr(q, "size", size);
    if (rc == 0)
        rc = epode_stanza_set_attr(q, "content-type", r->content_type);
    if (rc == 0)
        rc = epode_conn_send_iq(up->conn, iq, up->slot_ms, on_slot, r, &r->iq_id);
    epode_stanza_unref(iq);
    if (rc == 0)
        r->state = R_SLOT;
    return rc;
}

static void request_slot(up_req *r)
{
    if (r->up->max_size && r->size > r->up->max_size) {
        fail(r, EPODE_ELIMIT, "the file is larger than the service accepts");
        return;
    }
    int rc = send_slot(r);
    if (rc < 0)
        fail(r, rc, "the slot request could not be sent");
}

/* Moves every request waiting for the service on. */
static void service_known(epode_upload_t *up)
{
    up_req *r;
    while (!up->free_pending) {
        for (r = up->reqs; r && r->state != R_SERVICE; r = r->next)
            ;
        if (!r)
            break;
        request_slot(r);
    }
}

/* ---- discovery -------------------------------------------------------------------- */

static void cand_clear(epode_upload_t *up)
{
    for (size_t i = 0; i < up->ncand; i++) {
        if (up->cand[i].iq_id && up->conn)
            epode_conn_remove(up->conn, up->cand[i].iq_id);
        im_free(up->mem, up->cand[i].jid);
    }
    memset(up->cand, 0, sizeof up->cand);
    up->ncand = 0;
    if (up->items_iq && up->conn)
        epode_conn_remove(up->conn, up->items_iq);
    up->items_iq = 0;
}

static void disco_finished(epode_upload_t *up)
{
    for (size_t i = 0; i < up->ncand; i++)
        if (!up->cand[i].answered)
            return;
    /* the first in document order (our server itself first) */
    for (size_t i = 0; i < up->ncand; i++)
        if (up->cand[i].has_feature) {
            up->service = up->cand[i].jid;
            up->cand[i].jid = NULL;
            up->max_size = up->cand[i].max;
            break;
        }
    /* Not found only if every candidate answered and none has it. */
    int err = 0;
    for (size_t i = 0; i < up->ncand; i++)
        if (up->cand[i].err && (!err || up->cand[i].err == EPODE_ENOMEM))
            err = up->cand[i].err;
    cand_clear(up);
    if (!up->service) {
        up->disco = D_NONE; /* try again next time */
        if (err)
            fail_waiting(up, err, "service discovery went unanswered");
        else
            fail_waiting(up, EPODE_ENOTFOUND, "the server offers no upload service");
        return;
    }
    up->disco = D_DONE;
    service_known(up);
}

static unsigned long long form_max(const epode_disco_info_t *info)
{
    for (size_t f = 0; f < info->nforms; f++) {
        const epode_disco_form_t *form = &info->forms[f];
        if (!form->form_type || strcmp(form->form_type, EPODE_NS_HTTP_UPLOAD) != 0)
            continue;
        for (size_t i = 0; i < form->nfields; i++) {
            const epode_disco_field_t *fl = &form->fields[i];
            if (!fl->var || strcmp(fl->var, "max-file-size") != 0 || fl->nvalues < 1)
                continue;
            const char *v = fl->values[0];
            char *end = NULL;
            if (v && *v >= '0' && *v <= '9') {
                unsigned long long n = strtoull(v, &end, 10);
                if (end && !*end)
                    return n;
            }
        }
    }
    return 0;
}

static void on_info(epode_conn_t *conn, epode_stanza_t *result, int status, void *user)
{
    (void)conn;
    candidate *c = user;
    epode_upload_t *up = c->up;
    c->answered = 1;
    c->iq_id = 0;
    if (status < 0)
        c->err = status; /* no answer: timed out, canceled, out of memory */
    const char *type = result ? epode_stanza_get_attr(result, "type") : NULL;
    if (status == 0 && type && strcmp(type, "result") == 0) {
        epode_stanza_t *q = epode_stanza_find_child(result, "query", NS_DISCO_INFO);
        epode_disco_info_t *info = NULL;
        int prc = q ? epode_disco_info_parse(q, &info) : EPODE_ENOTFOUND;
        if (prc == 0) {
            if (epode_disco_info_has_feature(info, EPODE_NS_HTTP_UPLOAD)) {
                c->has_feature = 1;
                c->max = form_max(info);
            }
            epode_disco_info_free(info);
        } else if (prc == EPODE_ENOMEM) {
            c->err = prc;
        }
    }
    enter(up);
    disco_finished(up);
    leave(up);
}

static int ask_info(epode_upload_t *up, size_t i)
{
    epode_stanza_t *iq = NULL, *q = NULL;
    int rc = epode_stanza_new_iq(up->mem, "get", NULL, &iq);
    if (rc == 0)
        rc = epode_stanza_set_attr(iq, "to", up->cand[i].jid);
    if (rc == 0)
        rc = epode_stanza_add_child_new(iq, "query", NS_DISCO_INFO, &q);
    if (rc == 0)
        rc = epode_conn_send_iq(up->conn, iq, up->slot_ms, on_info, &up->cand[i],
                                &up->cand[i].iq_id);
    epode_stanza_unref(iq);
    return rc;
}

static int add_cand(epode_upload_t *up, const char *jid)
{
    for (size_t i = 0; i < up->ncand; i++)
        if (strcmp(up->cand[i].jid, jid) == 0)
            return 0;
    if (up->ncand == MAX_CANDIDATES)
        return 0;
    candidate *c = &up->cand[up->ncand];
    memset(c, 0, sizeof *c);
    c->up = up;
    if (!(c->jid = im_strdup(up->mem, jid)))
        return EPODE_ENOMEM;
    up->ncand++;
    return 0;
}

static void on_items(epode_conn_t *conn, epode_stanza_t *result, int status, void *user)
{
    (void)conn;
    epode_upload_t *up = user;
    up->items_iq = 0;
    enter(up);
    const char *type = result ? epode_stanza_get_attr(result, "type") : NULL;
    int rc = 0;
    if (status == 0 && type && strcmp(type, "result") == 0) {
        epode_stanza_t *q = epode_stanza_find_child(result, "query", NS_DISCO_ITEMS);
        epode_disco_items_t *items = NULL;
        int prc = q ? epode_disco_items_parse(q, &items) : EPODE_ENOTFOUND;
        if (prc == 0) {
            for (size_t i = 0; i < items->nitems && rc == 0; i++)
                if (!items->items[i].node)
                    rc = add_cand(up, items->items[i].jid);
            epode_disco_items_free(items);
        } else if (prc == EPODE_ENOMEM) {
            rc = prc;
        }
    }
    /* candidate 0 is our server itself, added before the items */
    for (size_t i = 0; i < up->ncand && rc == 0; i++)
        rc = ask_info(up, i);
    if (rc < 0) {
        cand_clear(up);
        up->disco = D_NONE;
        fail_waiting(up, rc, "service discovery failed");
    } else if (status < 0 && up->ncand == 0) {
        up->disco = D_NONE;
        fail_waiting(up, status, "no answer to service discovery");
    }
    leave(up);
}

/* Starts discovery: our server's items, then the info of it and each. */
static int discover(epode_upload_t *up)
{
    const char *bound = epode_conn_bound_jid(up->conn);
    if (!bound)
        return EPODE_ESTATE;
    epode_jid_t *j = NULL;
    int rc = epode_jid_new(up->mem, bound, &j);
    if (rc < 0)
        return rc;
    rc = add_cand(up, epode_jid_domain(j));
    epode_stanza_t *iq = NULL, *q = NULL;
    if (rc == 0)
        rc = epode_stanza_new_iq(up->mem, "get", NULL, &iq);
    if (rc == 0)
        rc = epode_stanza_set_attr(iq, "to", epode_jid_domain(j));
    if (rc == 0)
        rc = epode_stanza_add_child_new(iq, "query", NS_DISCO_ITEMS, &q);
    if (rc == 0)
        rc = epode_conn_send_iq(up->conn, iq, up->slot_ms, on_items, up, &up->items_iq);
    epode_stanza_unref(iq);
    epode_jid_free(j);
    if (rc < 0) {
        cand_clear(up);
        return rc;
    }
    up->disco = D_RUNNING;
    return 0;
}

/* ---- the helper ---------------------------------------------------------------------- */

static void cancel_all(epode_upload_t *up)
{
    while (up->reqs)
        fail(up->reqs, EPODE_ECANCELED, "canceled");
}

static void destroy(epode_upload_t *up)
{
    up->depth++; /* callbacks below may call free again: ignored */
    up->free_pending = 1; /* and may not start uploads (EPODE_ESTATE) */
    cancel_all(up);
    cand_clear(up);
    if (up->conn && up->ev_id)
        epode_conn_remove(up->conn, up->ev_id);
    epode__http_free(up->http);
    epode__http_dns_free(up->dns);
    for (size_t i = 0; i < up->nresolve; i++)
        im_free(up->mem, up->resolve[i]);
    im_free(up->mem, up->resolve);
    im_free(up->mem, up->service);
    im_free(up->mem, up);
}

static void on_conn_event(epode_conn_t *conn, epode_conn_event_t ev, void *user)
{
    (void)conn;
    epode_upload_t *up = user;
    if (ev != EPODE_CONN_FREED)
        return;
    enter(up);
    /* the IQ waits died with the connection; its loop may go next */
    for (up_req *r = up->reqs; r; r = r->next)
        r->iq_id = 0;
    for (size_t i = 0; i < up->ncand; i++)
        up->cand[i].iq_id = 0;
    up->items_iq = 0;
    up->ev_id = 0;
    cancel_all(up);
    cand_clear(up);
    up->conn = NULL;
    up->disco = D_NONE;
    epode__http_free(up->http);
    up->http = NULL;
    epode__http_dns_free(up->dns);
    up->dns = NULL;
    leave(up);
}

int epode_upload_new(epode_conn_t *conn, epode_upload_t **out)
{
    if (!conn || !out)
        return EPODE_EINVAL;
    const epode_mem_t *mem = im_mem(conn);
    epode_upload_t *up = im_zalloc(mem, sizeof *up);
    if (!up)
        return EPODE_ENOMEM;
    up->conn = conn;
    up->mem = mem;
    int rc = epode_conn_add_event_cb(conn, on_conn_event, up, &up->ev_id);
    if (rc < 0) {
        im_free(mem, up);
        return rc;
    }
    *out = up;
    return 0;
}

void epode_upload_free(epode_upload_t *up)
{
    if (!up || up->free_pending)
        return;
    if (up->depth) {
        up->free_pending = 1;
        cancel_all(up);
        return;
    }
    destroy(up);
}

int epode_upload_set_service(epode_upload_t *up, const char *jid, unsigned long long max)
{
    if (!up)
        return EPODE_EINVAL;
    char *copy = NULL;
    if (jid) {
        if (epode_jid_validate(jid) < 0)
            return EPODE_EJID;
        if (!(copy = im_strdup(up->mem, jid)))
            return EPODE_ENOMEM;
    }
    im_free(up->mem, up->service);
    up->service = copy;
    up->max_size = jid ? max : 0;
    if (up->disco == D_RUNNING)
        cand_clear(up);
    up->disco = jid ? D_DONE : D_NONE;
    if (jid) {
        enter(up);
        service_known(up);
        leave(up);
    }
    return 0;
}

const char *epode_upload_service(const epode_upload_t *up)
{
    return up ? up->service : NULL;
}

unsigned long long epode_upload_max_file_size(const epode_upload_t *up)
{
    return up ? up->max_size : 0;
}

int epode_upload_set_allow_http(epode_upload_t *up, int allow)
{
    if (!up)
        return EPODE_EINVAL;
    up->allow_http = !!allow;
    return 0;
}

int epode_upload_add_resolve(epode_upload_t *up, const char *host, unsigned port,
                             const char *address)
{
    if (!up || !host || !*host || !address || port == 0 || port > 65535)
        return EPODE_EINVAL;
    for (const char *p = host; *p; p++)
        if (*p == ':' || (unsigned char)*p <= 0x20 || *p == 0x7f)
            return EPODE_EINVAL;
    unsigned char bin[16];
    int v6 = inet_pton(AF_INET6, address, bin) == 1;
    if (!v6 && inet_pton(AF_INET, address, bin) != 1)
        return EPODE_EINVAL;
    size_t len = strlen(host) + strlen(address) + 16;
    char *entry = im_alloc(up->mem, len);
    if (!entry)
        return EPODE_ENOMEM;
    snprintf(entry, len, v6 ? "%s:%u:[%s]" : "%s:%u:%s", host, port, address);
    char **grown = im_realloc(up->mem, up->resolve, (up->nresolve + 1) * sizeof *grown);
    if (!grown) {
        im_free(up->mem, entry);
        return EPODE_ENOMEM;
    }
    up->resolve = grown;
    up->resolve[up->nresolve++] = entry;
    return 0;
}

int epode_upload_set_timeouts(epode_upload_t *up, unsigned slot_ms, unsigned stall_ms)
{
    if (!up)
        return EPODE_EINVAL;
    up->slot_ms = slot_ms;
    up->stall_ms = stall_ms;
    return 0;
}

/* A name or type we put in an attribute and an HTTP header: printable,
 * no line breaks. */
static int text_ok(const char *s)
{
    if (!s || !*s)
        return 0;
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return 0;
    return 1;
}

int epode_upload_start(epode_upload_t *up, const epode_upload_file_t *file,
                       epode_upload_done_cb done, epode_upload_progress_cb progress, void *user,
                       unsigned *id)
{
    if (!up || !file || !done || (!file->data && !file->path) || (file->data && file->path))
        return EPODE_EINVAL;
    if (up->free_pending || !up->conn || !epode_conn_is_ready(up->conn))
        return EPODE_ESTATE;
    const char *filename = file->filename;
    if (!filename && file->path) {
        const char *slash = strrchr(file->path, '/');
        filename = slash ? slash + 1 : file->path;
    }
    const char *type = file->content_type ? file->content_type : "application/octet-stream";
    if (!text_ok(filename) || !text_ok(type) || strchr(filename, '/'))
        return EPODE_EINVAL;
    up_req *r = im_zalloc(up->mem, sizeof *r);
    if (!r)
        return EPODE_ENOMEM;
    r->up = up;
    r->fd = -1;
    r->done = done;
    r->progress = progress;
    r->user = user;
    int rc = EPODE_ENOMEM;
    if (!(r->filename = im_strdup(up->mem, filename)) ||
        !(r->content_type = im_strdup(up->mem, type)))
        goto fail;
    if (file->path) {
        struct stat st;
        /* O_NONBLOCK: opening a FIFO must not wait for a writer (and
         * block the loop); it means nothing for a regular file */
        r->fd = open(file->path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
        if (r->fd < 0 || fstat(r->fd, &st) < 0) {
            rc = EPODE_ENET;
            goto fail;
        }
        if (!S_ISREG(st.st_mode)) {
            rc = EPODE_EINVAL; /* a directory, FIFO, device: no size to announce */
            goto fail;
        }
        r->size = (unsigned long long)st.st_size;
    } else {
        if (!(r->data = im_alloc(up->mem, file->len)))
            goto fail;
        memcpy(r->data, file->data, file->len);
        r->len = file->len;
        r->size = file->len;
    }
    if (up->max_size && r->size > up->max_size) {
        rc = EPODE_ELIMIT;
        goto fail;
    }
    if (up->disco == D_NONE && (rc = discover(up)) < 0)
        goto fail;
    if (up->disco == D_DONE && (rc = send_slot(r)) < 0)
        goto fail;
    r->id = ++up->next_id ? up->next_id : ++up->next_id;
    if (up->disco != D_DONE)
        r->state = R_SERVICE;
    r->next = up->reqs;
    up->reqs = r;
    if (id)
        *id = r->id;
    return 0;
fail:
    req_release(r);
    return rc;
}

int epode_upload_cancel(epode_upload_t *up, unsigned id)
{
    if (!up)
        return EPODE_EINVAL;
    for (up_req *r = up->reqs; r; r = r->next)
        if (r->id == id) {
            enter(up);
            fail(r, EPODE_ECANCELED, "canceled");
            leave(up);
            return 0;
        }
    return EPODE_ENOTFOUND;
}

#endif /* EPODE_HAVE_CURL */
