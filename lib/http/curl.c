/* lib/http/curl.c — HTTP requests through libcurl's multi-socket API on
 * epode's loop (see http.h for the invariants). curl tells us which
 * sockets to watch (socket callback → one epode__io each) and its next
 * deadline (timer callback → one epode__timer); the loop calls back with
 * readiness or the deadline, and we hand that to
 * curl_multi_socket_action(), then collect finished transfers. Done
 * callbacks run after curl has returned, so they may start or cancel
 * requests; curl's own callbacks (read, write, progress) only mark. */
#include "http/http.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <curl/curl.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "util/alloc.h"

#define DEFAULT_MAX_BODY (1024u * 1024u)
#define DEFAULT_MAX_HEADERS (16u * 1024u)
#define DEFAULT_CONNECT_MS 30000u
#define DEFAULT_STALL_MS 60000u

typedef struct http_sock {
    struct http_sock *next;
    epode__http *h;
    curl_socket_t fd;
    epode__io io;
} http_sock;

struct epode__http_req {
    struct epode__http_req *next;
    epode__http *h;
    CURL *easy;
    struct curl_slist *headers, *resolve;
    char *body; /* the copied memory body, or NULL */
    size_t body_len, body_off;
    epode__http_read_cb read;
    void *read_user;
    char *resp_headers, *resp_body;
    size_t resp_headers_len, resp_body_len, max_headers, max_body;
    int over_limit; /* a write or header callback refused: the bound */
    int canceled;   /* cancel() was called: no done callback */
    int aborted;    /* a read/progress callback of the application stopped it */
    char *also_verify_name; /* see http.h; NULL: none */
    int peer_checked;       /* the TLS facts were read (before the request went out) */
    int want_tls;           /* an https:// URL: no TLS facts is a refusal */
    int cert_refused;       /* ...and the certificate did not hold for the name */
    int tls_version;
    epode__http_progress_cb progress;
    epode__http_done_cb done;
    void *user;
    char errbuf[CURL_ERROR_SIZE];
};

struct epode__http {
    const epode_mem_t *mem;
    epode__loop *loop;
    CURLM *multi;
    http_sock *socks;
    epode__http_req *reqs;
    epode__timer timer;  /* curl's deadline */
    epode__timer reaper; /* removes requests canceled from inside curl */
    int in_curl;         /* inside a curl_multi_* call: curl callbacks may run */
    unsigned depth;      /* entry points running (loop callbacks) */
    int free_pending;
};

/* ---- process-wide set-up ----------------------------------------------------- */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static int curl_ok;

static void curl_init_once(void)
{
    /* Thread-safe and reference counted in Debian's 7.88 (CURL_VERSION_THREADSAFE);
     * never cleaned up: the host may use libcurl too. */
    curl_ok = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
}

/* ---- requests ---------------------------------------------------------------- */

static void req_free(epode__http_req *r)
{
    epode__http *h = r->h;
    if (r->easy)
        curl_easy_cleanup(r->easy);
    curl_slist_free_all(r->headers);
    curl_slist_free_all(r->resolve);
    if (r->body)
        explicit_bzero(r->body, r->body_len); /* a BOSH request may hold a SASL response */
    epode__dealloc(h->mem, r->body);
    epode__dealloc(h->mem, r->resp_headers);
    epode__dealloc(h->mem, r->resp_body);
    epode__dealloc(h->mem, r->also_verify_name);
    epode__dealloc(h->mem, r);
}

static void req_unlink(epode__http_req *r)
{
    for (epode__http_req **p = &r->h->reqs; *p; p = &(*p)->next)
        if (*p == r) {
            *p = r->next;
            return;
        }
}

/* Detaches r from curl and frees it. Never from inside a curl callback. */
static void req_remove(epode__http_req *r)
{
    epode__http *h = r->h;
    req_unlink(r);
    h->in_curl = 1;
    curl_multi_remove_handle(h->multi, r->easy);
    h->in_curl = 0;
    req_free(r);
}

static int append(const epode_mem_t *mem, char **buf, size_t *len, const char *data, size_t n)
{
    char *b = epode__realloc(mem, *buf, *len + n + 1);
    if (!b)
        return -1;
    memcpy(b + *len, data, n);
    *len += n;
    b[*len] = '\0';
    *buf = b;
    return 0;
}

static size_t on_write(char *data, size_t size, size_t n, void *user)
{
    epode__http_req *r = user;
    size_t len = size * n;
    if (r->canceled)
        return CURL_WRITEFUNC_ERROR;
    if (len > r->max_body - r->resp_body_len) {
        r->over_limit = 1;
        return CURL_WRITEFUNC_ERROR;
    }
    if (append(r->h->mem, &r->resp_body, &r->resp_body_len, data, len) < 0)
        return CURL_WRITEFUNC_ERROR; /* → CURLE_WRITE_ERROR, told as ENOMEM below */
    return len;
}

/* Once the connection (through a proxy's tunnel too) and its TLS are up,
 * before each request goes out on it (CURLOPT_PREREQFUNCTION): the
 * negotiated version, and the certificate checked for also_verify_name
 * (curl checked the URL's host). Through the gnutls session curl used
 * (Debian's curl is built with gnutls; another TLS backend gives no
 * facts, and a name to check then refuses rather than skip the check).
 * Not at the first response header: through an HTTP proxy that is the
 * proxy's "200 Connection established", before any TLS, and the request
 * (a SASL response, say) would have gone out unchecked. 0, or -1 to
 * refuse. */
static int check_peer(epode__http_req *r)
{
    r->peer_checked = 1;
    const struct curl_tlssessioninfo *ti = NULL;
    if (curl_easy_getinfo(r->easy, CURLINFO_TLS_SSL_PTR, &ti) != CURLE_OK || !ti ||
        ti->backend == CURLSSLBACKEND_NONE || !ti->internals) {
        if (!r->want_tls)
            return 0; /* http:// */
        r->cert_refused = r->also_verify_name != NULL;
        return r->cert_refused ? -1 : 0;
    }
    if (ti->backend != CURLSSLBACKEND_GNUTLS) {
        r->cert_refused = r->also_verify_name != NULL;
        return r->cert_refused ? -1 : 0;
    }
    gnutls_session_t s = ti->internals;
    gnutls_protocol_t v = gnutls_protocol_get_version(s);
    r->tls_version = v == GNUTLS_TLS1_3 ? 13 : v == GNUTLS_TLS1_2 ? 12 : v == GNUTLS_TLS1_1 ? 11
                   : v == GNUTLS_TLS1_0 ? 10 : 0;
    if (!r->also_verify_name)
        return 0;
    unsigned n = 0;
    const gnutls_datum_t *certs = gnutls_certificate_get_peers(s, &n);
    gnutls_x509_crt_t crt;
    int ok = 0;
    if (certs && n > 0 && gnutls_x509_crt_init(&crt) == 0) {
        if (gnutls_x509_crt_import(crt, &certs[0], GNUTLS_X509_FMT_DER) == 0)
            ok = gnutls_x509_crt_check_hostname(crt, r->also_verify_name) != 0;
        gnutls_x509_crt_deinit(crt);
    }
    r->cert_refused = !ok;
    return ok ? 0 : -1;
}

static int on_prereq(void *user, char *primary_ip, char *local_ip, int primary_port,
                     int local_port)
{
    (void)primary_ip, (void)local_ip, (void)primary_port, (void)local_port;
    epode__http_req *r = user;
    if (r->canceled)
        return CURL_PREREQFUNC_ABORT;
    return check_peer(r) < 0 ? CURL_PREREQFUNC_ABORT : CURL_PREREQFUNC_OK;
}

static size_t on_header(char *data, size_t size, size_t n, void *user)
{
    epode__http_req *r = user;
    size_t len = size * n;
    if (r->canceled)
        return 0;
    if (!r->peer_checked && check_peer(r) < 0)
        return 0; /* (prereq ran first: only if curl skipped it) */
    /* A new status line (after 100 Continue or a redirect): keep only the
     * last response's headers. */
    if (len >= 5 && memcmp(data, "HTTP/", 5) == 0)
        r->resp_headers_len = 0;
    if (len > r->max_headers - r->resp_headers_len) {
        r->over_limit = 1;
        return 0;
    }
    if (append(r->h->mem, &r->resp_headers, &r->resp_headers_len, data, len) < 0)
        return 0;
    return len;
}

static size_t on_read(char *buf, size_t size, size_t n, void *user)
{
    epode__http_req *r = user;
    size_t len = size * n;
    if (r->canceled)
        return CURL_READFUNC_ABORT;
    if (r->read) {
        long got = r->read(r->read_user, buf, len);
        if (got < 0 || (size_t)got > len) {
            r->aborted = 1;
            return CURL_READFUNC_ABORT;
        }
        return (size_t)got;
    }
    size_t left = r->body_len - r->body_off;
    if (len > left)
        len = left;
    memcpy(buf, r->body + r->body_off, len);
    r->body_off += len;
    return len;
}

/* curl rewinds the body to send it again: on a reused connection that
 * turned out dead (it retries once by itself), and for redirects. A
 * memory body can always go back; the application's read() cannot. */
static int on_seek(void *user, curl_off_t offset, int origin)
{
    epode__http_req *r = user;
    if (r->read || origin != SEEK_SET || offset < 0 || (uint64_t)offset > r->body_len)
        return CURL_SEEKFUNC_CANTSEEK;
    r->body_off = (size_t)offset;
    return CURL_SEEKFUNC_OK;
}

static int on_progress(void *user, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
    epode__http_req *r = user;
    if (r->canceled)
        return 1;
    if (r->progress && r->progress(r->user, (uint64_t)ulnow, (uint64_t)ultotal, (uint64_t)dlnow,
                                   (uint64_t)dltotal)) {
        r->aborted = 1;
        return 1;
    }
    return 0;
}

static int map_error(const epode__http_req *r, CURLcode c)
{
    if (r->over_limit)
        return EPODE_ELIMIT;
    if (r->cert_refused)
        return EPODE_ECERT;
    if (r->aborted)
        return EPODE_ECANCELED;
    switch (c) {
    case CURLE_OK:
        return 0;
    case CURLE_OPERATION_TIMEDOUT:
        return EPODE_ETIMEDOUT;
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_ISSUER_ERROR:
        return EPODE_ECERT;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_SHUTDOWN_FAILED:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_USE_SSL_FAILED:
        return EPODE_ETLS;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
        return EPODE_EDNS;
    case CURLE_COULDNT_CONNECT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_FAIL_REWIND: /* the connection broke, the body could not go again */
        return EPODE_ENET;
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
        return EPODE_EEOF;
    case CURLE_OUT_OF_MEMORY:
    case CURLE_WRITE_ERROR: /* our write callback's allocation failed */
        return EPODE_ENOMEM;
    case CURLE_ABORTED_BY_CALLBACK:
    case CURLE_READ_ERROR:
        return EPODE_ECANCELED;
    default:
        /* unsupported protocol (a redirect to http://), too many
         * redirects, malformed answers, … */
        return EPODE_EPROTOCOL;
    }
}

/* Collects finished transfers and tells their owners. Outside curl. */
static void drain(epode__http *h)
{
    CURLMsg *m;
    int left;
    while (!h->free_pending && (m = curl_multi_info_read(h->multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        epode__http_req *r = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&r);
        CURLcode c = m->data.result;
        if (!r)
            continue;
        req_unlink(r);
        h->in_curl = 1;
        curl_multi_remove_handle(h->multi, r->easy);
        h->in_curl = 0;
        if (!r->canceled) {
            epode__http_resp resp = {0};
            curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &resp.status);
            resp.headers = r->resp_headers ? r->resp_headers : "";
            resp.headers_len = r->resp_headers_len;
            resp.body = r->resp_body ? r->resp_body : "";
            resp.body_len = r->resp_body_len;
            resp.tls_version = r->tls_version;
            curl_off_t sent = 0;
            if (curl_easy_getinfo(r->easy, CURLINFO_SIZE_UPLOAD_T, &sent) == CURLE_OK && sent > 0)
                resp.body_sent = (uint64_t)sent;
            int err = map_error(r, c);
            const char *text = r->errbuf[0] ? r->errbuf : curl_easy_strerror(c);
            if (r->over_limit)
                text = "the response is larger than allowed";
            else if (r->cert_refused)
                text = "the server's certificate does not hold for the XMPP domain";
            else if (r->aborted)
                text = "stopped by the application";
            r->done(r->user, err, &resp, text);
        }
        req_free(r);
    }
    /* Requests canceled from inside curl's callbacks. */
    epode__http_req *r = h->reqs, *next;
    for (; r; r = next) {
        next = r->next;
        if (r->canceled)
            req_remove(r);
    }
}

static void real_free(epode__http *h)
{
    while (h->reqs)
        req_remove(h->reqs);
    /* Announce every fd removed before curl closes them in cleanup. */
    for (http_sock *s = h->socks; s; s = s->next)
        epode__io_stop(&s->io);
    h->in_curl = 1;
    curl_multi_cleanup(h->multi);
    h->in_curl = 0;
    while (h->socks) {
        http_sock *s = h->socks;
        h->socks = s->next;
        epode__io_stop(&s->io);
        epode__dealloc(h->mem, s);
    }
    epode__timer_deinit(&h->timer);
    epode__timer_deinit(&h->reaper);
    epode__dealloc(h->mem, h);
}

static void leave(epode__http *h)
{
    if (--h->depth == 0 && h->free_pending)
        real_free(h);
}

static void act(epode__http *h, curl_socket_t fd, int mask)
{
    int running;
    h->depth++;
    h->in_curl = 1;
    curl_multi_socket_action(h->multi, fd, mask, &running);
    h->in_curl = 0;
    drain(h);
    leave(h);
}

/* ---- curl's sockets and deadline on our loop ------------------------------------ */

static void on_io(void *user, unsigned revents)
{
    http_sock *s = user; /* may be freed inside act(): copy first */
    epode__http *h = s->h;
    int mask = ((revents & EPODE__READ) ? CURL_CSELECT_IN : 0) |
               ((revents & EPODE__WRITE) ? CURL_CSELECT_OUT : 0);
    act(h, s->fd, mask);
}

static void on_timer(void *user)
{
    act(user, CURL_SOCKET_TIMEOUT, 0);
}

static void on_reaper(void *user)
{
    epode__http *h = user;
    h->depth++;
    drain(h);
    leave(h);
}

static int sock_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    (void)easy;
    epode__http *h = userp;
    http_sock *s = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (!s)
            return 0;
        epode__io_stop(&s->io);
        for (http_sock **p = &h->socks; *p; p = &(*p)->next)
            if (*p == s) {
                *p = s->next;
                break;
            }
        curl_multi_assign(h->multi, fd, NULL);
        epode__dealloc(h->mem, s);
        return 0;
    }
    unsigned ev = ((what & CURL_POLL_IN) ? EPODE__READ : 0) |
                  ((what & CURL_POLL_OUT) ? EPODE__WRITE : 0);
    if (s)
        return epode__io_set(&s->io, ev) < 0 ? -1 : 0;
    s = epode__zalloc(h->mem, sizeof *s);
    if (!s)
        return -1;
    s->h = h;
    s->fd = fd;
    if (epode__io_start(h->loop, &s->io, fd, ev, on_io, s) < 0) {
        epode__dealloc(h->mem, s);
        return -1;
    }
    s->next = h->socks;
    h->socks = s;
    curl_multi_assign(h->multi, fd, s);
    return 0;
}

static int timer_cb(CURLM *multi, long ms, void *userp)
{
    (void)multi;
    epode__http *h = userp;
    if (ms < 0) {
        epode__timer_stop(&h->timer);
        return 0;
    }
    /* Never act from here (curl would refuse the recursion): our loop
     * runs the timer, 0 ms meaning "next turn". */
    return epode__timer_start(&h->timer, (uint64_t)ms, on_timer, h) < 0 ? -1 : 0;
}

/* ---- public (internal) API ------------------------------------------------------ */

int epode__http_new(const epode_mem_t *mem, epode__loop *l, epode__http **out)
{
    if (!l || !out)
        return EPODE_EINVAL;
    pthread_once(&curl_once, curl_init_once);
    if (!curl_ok)
        return EPODE_ENET;
    epode__http *h = epode__zalloc(mem, sizeof *h);
    if (!h)
        return EPODE_ENOMEM;
    h->mem = mem;
    h->loop = l;
    int rc;
    if ((rc = epode__timer_init(l, &h->timer)) < 0) {
        epode__dealloc(mem, h);
        return rc;
    }
    if ((rc = epode__timer_init(l, &h->reaper)) < 0) {
        epode__timer_deinit(&h->timer);
        epode__dealloc(mem, h);
        return rc;
    }
    h->multi = curl_multi_init();
    if (!h->multi) {
        epode__timer_deinit(&h->timer);
        epode__timer_deinit(&h->reaper);
        epode__dealloc(mem, h);
        return EPODE_ENOMEM;
    }
    curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
    curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
    curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
    *out = h;
    return 0;
}

void epode__http_free(epode__http *h)
{
    if (!h || h->free_pending)
        return;
    if (h->depth) {
        /* From a done callback: finish when it returns. */
        for (epode__http_req *r = h->reqs; r; r = r->next)
            r->canceled = 1;
        h->free_pending = 1;
        return;
    }
    real_free(h);
}

size_t epode__http_active(const epode__http *h)
{
    size_t n = 0;
    for (const epode__http_req *r = h ? h->reqs : NULL; r; r = r->next)
        n += !r->canceled;
    return n;
}

void epode__http_cancel(epode__http_req *r)
{
    if (!r || r->canceled)
        return;
    r->canceled = 1;
    epode__http *h = r->h;
    if (h->in_curl) {
        /* From a curl callback: curl refuses remove_handle here. */
        epode__timer_start(&h->reaper, 0, on_reaper, h);
        return;
    }
    req_remove(r);
}

static int has_crlf(const char *s)
{
    return strpbrk(s, "\r\n") != NULL;
}

#define SETOPT(opt, val)                                                       \
    do {                                                                       \
        if (curl_easy_setopt(r->easy, opt, val) != CURLE_OK) {                 \
            rc = EPODE_ENET;                                                   \
            goto fail;                                                         \
        }                                                                      \
    } while (0)

int epode__http_start(epode__http *h, const epode__http_opts *o, epode__http_req **out)
{
    if (!h || !o || !o->url || !o->done || (o->body && o->read) || h->free_pending)
        return EPODE_EINVAL;
    if (o->nheaders && !o->headers)
        return EPODE_EINVAL;
    if (o->nresolve && !o->resolve)
        return EPODE_EINVAL;
    for (size_t i = 0; i < o->nheaders; i++)
        if (!o->headers[i] || has_crlf(o->headers[i]))
            return EPODE_EINVAL;
    for (size_t i = 0; i < o->nresolve; i++)
        if (!o->resolve[i] || has_crlf(o->resolve[i]))
            return EPODE_EINVAL;
    if (has_crlf(o->url) || (o->method && has_crlf(o->method)) ||
        (o->proxy && has_crlf(o->proxy)))
        return EPODE_EINVAL;
    int https = strncasecmp(o->url, "https://", 8) == 0;
    int http = strncasecmp(o->url, "http://", 7) == 0;
    if (!https && !(http && o->allow_http))
        return EPODE_EPROTOCOL;

    int rc = EPODE_ENOMEM;
    epode__http_req *r = epode__zalloc(h->mem, sizeof *r);
    if (!r)
        return EPODE_ENOMEM;
    r->h = h;
    r->max_body = o->max_body ? o->max_body : DEFAULT_MAX_BODY;
    r->max_headers = o->max_headers ? o->max_headers : DEFAULT_MAX_HEADERS;
    r->read = o->read;
    r->read_user = o->read_user;
    r->progress = o->progress;
    r->done = o->done;
    r->user = o->user;
    r->want_tls = strncasecmp(o->url, "https://", 8) == 0;
    if (o->also_verify_name && !(r->also_verify_name = epode__strdup(h->mem, o->also_verify_name)))
        goto fail;
    if (o->body) {
        r->body = epode__alloc(h->mem, o->body_len ? o->body_len : 1);
        if (!r->body)
            goto fail;
        memcpy(r->body, o->body, o->body_len);
        r->body_len = o->body_len;
    }
    r->easy = curl_easy_init();
    if (!r->easy)
        goto fail;
    for (size_t i = 0; i < o->nheaders; i++) {
        struct curl_slist *l = curl_slist_append(r->headers, o->headers[i]);
        if (!l)
            goto fail;
        r->headers = l;
    }
    int has_body = o->body || o->read;
    if (has_body) {
        /* No 100-continue wait (curl would pause a second for it). */
        struct curl_slist *l = curl_slist_append(r->headers, "Expect:");
        if (!l)
            goto fail;
        r->headers = l;
    }
    for (size_t i = 0; i < o->nresolve; i++) {
        struct curl_slist *l = curl_slist_append(r->resolve, o->resolve[i]);
        if (!l)
            goto fail;
        r->resolve = l;
    }

    SETOPT(CURLOPT_URL, o->url);
    SETOPT(CURLOPT_PRIVATE, (void *)r);
    SETOPT(CURLOPT_NOSIGNAL, 1L);
    SETOPT(CURLOPT_ERRORBUFFER, r->errbuf);
    SETOPT(CURLOPT_PROTOCOLS_STR, https && !o->allow_http ? "https" : "http,https");
    SETOPT(CURLOPT_REDIR_PROTOCOLS_STR, "https");
    SETOPT(CURLOPT_FOLLOWLOCATION, o->max_redirects ? 1L : 0L);
    SETOPT(CURLOPT_MAXREDIRS, (long)o->max_redirects);
    /* no proxy from the environment, silently: only the one asked for */
    SETOPT(CURLOPT_PROXY, o->proxy ? o->proxy : "");
    if (o->proxy && o->proxy_user) {
        SETOPT(CURLOPT_PROXYUSERNAME, o->proxy_user);
        SETOPT(CURLOPT_PROXYPASSWORD, o->proxy_pass ? o->proxy_pass : "");
    }
    if (https) {
        static const long minv[] = {CURL_SSLVERSION_TLSv1_0, CURL_SSLVERSION_TLSv1_1,
                                    CURL_SSLVERSION_TLSv1_2, CURL_SSLVERSION_TLSv1_3};
        static const long maxv[] = {CURL_SSLVERSION_MAX_TLSv1_0, CURL_SSLVERSION_MAX_TLSv1_1,
                                    CURL_SSLVERSION_MAX_TLSv1_2, CURL_SSLVERSION_MAX_TLSv1_3};
        int lo = o->tls_min ? o->tls_min : 12, hi = o->tls_max;
        if (lo < 10 || lo > 13 || (hi && (hi < lo || hi > 13))) {
            rc = EPODE_EINVAL;
            goto fail;
        }
        SETOPT(CURLOPT_SSLVERSION, minv[lo - 10] | (hi ? maxv[hi - 10] : CURL_SSLVERSION_MAX_DEFAULT));
    }
    SETOPT(CURLOPT_SSL_VERIFYPEER, o->insecure ? 0L : 1L);
    SETOPT(CURLOPT_SSL_VERIFYHOST, o->insecure ? 0L : 2L);
    if (o->ca_file) {
        /* CAINFO and CAPATH add up: trust only the given file. */
        SETOPT(CURLOPT_CAINFO, o->ca_file);
        SETOPT(CURLOPT_CAPATH, (char *)NULL);
    }
    SETOPT(CURLOPT_TIMEOUT_MS, (long)o->timeout_ms);
    SETOPT(CURLOPT_CONNECTTIMEOUT_MS,
           (long)(o->connect_timeout_ms ? o->connect_timeout_ms : DEFAULT_CONNECT_MS));
    unsigned stall = o->stall_ms ? o->stall_ms : DEFAULT_STALL_MS;
    SETOPT(CURLOPT_LOW_SPEED_LIMIT, (long)(o->min_speed ? o->min_speed : 1));
    SETOPT(CURLOPT_LOW_SPEED_TIME, (long)((stall + 999) / 1000));
    SETOPT(CURLOPT_WRITEFUNCTION, on_write);
    SETOPT(CURLOPT_WRITEDATA, (void *)r);
    SETOPT(CURLOPT_HEADERFUNCTION, on_header);
    SETOPT(CURLOPT_HEADERDATA, (void *)r);
    SETOPT(CURLOPT_PREREQFUNCTION, on_prereq);
    SETOPT(CURLOPT_PREREQDATA, (void *)r);
    SETOPT(CURLOPT_NOPROGRESS, 0L);
    SETOPT(CURLOPT_XFERINFOFUNCTION, on_progress);
    SETOPT(CURLOPT_XFERINFODATA, (void *)r);
    if (r->headers)
        SETOPT(CURLOPT_HTTPHEADER, r->headers);
    if (r->resolve)
        SETOPT(CURLOPT_RESOLVE, r->resolve);

    const char *m = o->method ? o->method : "GET";
    uint64_t size = o->body ? o->body_len : o->body_size;
    if (has_body) {
        SETOPT(CURLOPT_READFUNCTION, on_read);
        SETOPT(CURLOPT_READDATA, (void *)r);
        SETOPT(CURLOPT_SEEKFUNCTION, on_seek);
        SETOPT(CURLOPT_SEEKDATA, (void *)r);
    }
    if (strcmp(m, "GET") == 0 && !has_body) {
        SETOPT(CURLOPT_HTTPGET, 1L);
    } else if (strcmp(m, "HEAD") == 0 && !has_body) {
        SETOPT(CURLOPT_NOBODY, 1L);
    } else if (strcmp(m, "PUT") == 0) {
        SETOPT(CURLOPT_UPLOAD, 1L);
        SETOPT(CURLOPT_INFILESIZE_LARGE, (curl_off_t)size);
    } else if (strcmp(m, "POST") == 0) {
        SETOPT(CURLOPT_POST, 1L);
        SETOPT(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)size);
    } else {
        if (has_body) {
            SETOPT(CURLOPT_UPLOAD, 1L);
            SETOPT(CURLOPT_INFILESIZE_LARGE, (curl_off_t)size);
        }
        SETOPT(CURLOPT_CUSTOMREQUEST, m);
    }

    h->in_curl = 1;
    CURLMcode mc = curl_multi_add_handle(h->multi, r->easy);
    h->in_curl = 0;
    if (mc != CURLM_OK) {
        rc = mc == CURLM_OUT_OF_MEMORY ? EPODE_ENOMEM : EPODE_ENET;
        goto fail;
    }
    r->next = h->reqs;
    h->reqs = r;
    if (out)
        *out = r;
    return 0;
fail:
    req_free(r);
    return rc;
}
