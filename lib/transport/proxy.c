/* lib/transport/proxy.c — proxies as a layer below TLS: SOCKS5 (RFC 1928,
 * user/password of RFC 1929, the XMPP host passed by name so the proxy
 * resolves it) and HTTP CONNECT (RFC 9110 §9.3.6, Basic proxy
 * authentication). The layer's handshake speaks to the proxy over the
 * link to it (tcp); once the proxy says the tunnel is up, it passes bytes
 * through untouched. Bytes the proxy's reply was followed by (the server
 * talking first) are kept and read first: the handshake never reads past
 * its reply's end into a buffer that is then dropped.
 *
 * Bounds: a SOCKS5 reply is at most 4 + 1 + 255 + 2 bytes; an HTTP reply's
 * status line and headers at most EPODE__PROXY_HTTP_MAX bytes (more is an
 * error, never a larger buffer). */
#include "transport/transport.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <strings.h>
#include <string.h>

#include "util/alloc.h"
#include "util/base64.h"

/* ---- URLs ------------------------------------------------------------------- */

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Percent-decodes [s, s+len) into a new string; NULL on a bad escape
 * (*bad set), a decoded NUL (*bad), or out of memory. */
static char *decode(const epode_mem_t *mem, const char *s, size_t len, int *bad)
{
    char *d = epode__alloc(mem, len + 1);
    size_t n = 0;
    if (!d)
        return NULL;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '%') {
            int hi = i + 2 < len ? hexval(s[i + 1]) : -1;
            int lo = i + 2 < len ? hexval(s[i + 2]) : -1;
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
                epode__dealloc(mem, d);
                *bad = 1;
                return NULL;
            }
            d[n++] = (char)(hi * 16 + lo);
            i += 2;
        } else {
            d[n++] = s[i];
        }
    }
    d[n] = '\0';
    return d;
}

void epode__proxy_free(const epode_mem_t *mem, epode__proxy *p)
{
    if (!p)
        return;
    epode__dealloc(mem, p->host);
    if (p->pass)
        memset(p->pass, 0, strlen(p->pass));
    epode__dealloc(mem, p->user);
    epode__dealloc(mem, p->pass);
    epode__dealloc(mem, p);
}

int epode__proxy_parse(const epode_mem_t *mem, const char *url, epode__proxy **out, char *why,
                       size_t why_len)
{
    static const struct {
        const char *scheme;
        int kind;
        unsigned port;
    } schemes[] = {{"socks5://", EPODE__PROXY_SOCKS5, 1080},
                   {"socks5h://", EPODE__PROXY_SOCKS5, 1080},
                   {"http://", EPODE__PROXY_HTTP, 8080}};
    *out = NULL;
    if (!url)
        return EPODE_EINVAL;
    const char *rest = NULL;
    int kind = 0;
    unsigned port = 0;
    for (size_t i = 0; i < sizeof schemes / sizeof *schemes; i++) {
        size_t n = strlen(schemes[i].scheme);
        if (strncasecmp(url, schemes[i].scheme, n) == 0) {
            rest = url + n;
            kind = schemes[i].kind;
            port = schemes[i].port;
        }
    }
    if (!rest) {
        snprintf(why, why_len, "not a proxy URL (socks5://host:port or http://host:port)");
        return EPODE_EINVAL;
    }
    size_t len = strlen(rest);
    if (len > 0 && rest[len - 1] == '/')
        len--; /* "http://proxy:3128/" */
    if (memchr(rest, '/', len) || memchr(rest, '?', len) || memchr(rest, '#', len)) {
        snprintf(why, why_len, "a proxy URL has no path, query or fragment");
        return EPODE_EINVAL;
    }
    const char *at = NULL;
    for (const char *p = rest; p < rest + len; p++)
        if (*p == '@')
            at = p;
    epode__proxy *px = epode__zalloc(mem, sizeof *px);
    if (!px)
        return EPODE_ENOMEM;
    px->kind = kind;
    int bad = 0;
    if (at) {
        const char *colon = memchr(rest, ':', (size_t)(at - rest));
        const char *ue = colon ? colon : at;
        if (ue == rest) {
            snprintf(why, why_len, "the proxy URL has an empty user name");
            epode__proxy_free(mem, px);
            return EPODE_EINVAL;
        }
        px->user = decode(mem, rest, (size_t)(ue - rest), &bad);
        if (px->user)
            px->pass = colon ? decode(mem, colon + 1, (size_t)(at - colon - 1), &bad)
                             : epode__strdup(mem, "");
        if (!px->user || !px->pass) {
            epode__proxy_free(mem, px);
            if (!bad)
                return EPODE_ENOMEM;
            snprintf(why, why_len, "the proxy URL's user or password has a bad %%-escape");
            return EPODE_EINVAL;
        }
        if (strlen(px->user) > 255 || strlen(px->pass) > 255) {
            snprintf(why, why_len, "the proxy's user name and password are limited to 255 bytes");
            epode__proxy_free(mem, px);
            return EPODE_EINVAL;
        }
        len -= (size_t)(at + 1 - rest);
        rest = at + 1;
    }
    char host[256];
    unsigned p = 0;
    if (epode__parse_hostport(rest, len, host, sizeof host, &p) < 0) {
        snprintf(why, why_len, "the proxy URL needs host or host:port (port 1-65535), not "
                 "\"%.*s\"", (int)(len > 100 ? 100 : len), rest);
        epode__proxy_free(mem, px);
        return EPODE_EINVAL;
    }
    px->port = p ? p : port;
    if (!(px->host = epode__strdup(mem, host))) {
        epode__proxy_free(mem, px);
        return EPODE_ENOMEM;
    }
    *out = px;
    return 0;
}

/* ---- the layer ------------------------------------------------------------------ */

enum step {
    S_GREET,    /* SOCKS5: method chosen? */
    S_AUTH,     /* SOCKS5: user/password accepted? */
    S_CONNECT,  /* SOCKS5: the CONNECT reply; HTTP: the status and headers */
    S_OPEN,     /* tunnel up: bytes pass through */
    S_FAILED
};

typedef struct proxy {
    epode__transport base;
    int kind;
    enum step step;
    int fatal;
    char *user, *pass, *host; /* what to send; wiped once sent */
    unsigned port;
    char where[300]; /* "SOCKS5 proxy 127.0.0.1:1080" for the words */
    /* Bytes to send to the proxy (a request), and its reply so far. */
    /* CONNECT host:port twice, Proxy-Authorization with 255 + 255 bytes
     * of credentials in base64 (684): what set_proxy accepts must fit */
    unsigned char out[1536];
    size_t out_len, out_off;
    unsigned char *in; /* EPODE__PROXY_HTTP_MAX bytes while opening, then freed */
    size_t in_len;
    size_t extra_off;  /* after the reply: in[extra_off, in_len) is the server's */
} proxy;

static const epode__transport_ops proxy_ops;

int epode__proxy_is(const epode__transport *t)
{
    return t && t->ops == &proxy_ops;
}

static int failed(proxy *x, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int failed(proxy *x, int code, const char *fmt, ...)
{
    char tmp[EPODE__TRANSPORT_ERROR_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    epode__transport_set_error(&x->base, "%s: %s", x->where, tmp);
    x->step = S_FAILED;
    x->fatal = code;
    return code;
}

/* Sends what is queued: 0 when all is out, EPODE_EAGAIN, or an error. */
static int send_out(proxy *x)
{
    while (x->out_off < x->out_len) {
        long n = epode__transport_write(x->base.lower, x->out + x->out_off,
                                        x->out_len - x->out_off);
        if (n == EPODE_EAGAIN)
            return n;
        if (n < 0) {
            epode__transport_copy_error(&x->base, x->base.lower);
            x->step = S_FAILED;
            return x->fatal = (int)n;
        }
        x->out_off += (size_t)n;
    }
    return 0;
}

static void queue(proxy *x, const void *data, size_t len)
{
    /* callers stay within out[] (at most 3 + 2 + 255 * 2 bytes) */
    memcpy(x->out + x->out_len, data, len);
    x->out_len += len;
}

/* Reads until in[] holds `want` bytes (never more than asked for, so the
 * server's bytes after a SOCKS5 reply stay below). 0 when it does. */
static int fill(proxy *x, size_t want)
{
    while (x->in_len < want) {
        long n = epode__transport_read(x->base.lower, x->in + x->in_len, want - x->in_len);
        if (n == EPODE_EAGAIN)
            return n;
        if (n == 0)
            return failed(x, EPODE_ENET, "closed the connection during its handshake");
        if (n < 0) {
            epode__transport_copy_error(&x->base, x->base.lower);
            x->step = S_FAILED;
            return x->fatal = (int)n;
        }
        x->in_len += (size_t)n;
    }
    return 0;
}

static void socks_request(proxy *x)
{
    unsigned char addr[16];
    x->out_len = x->out_off = 0;
    queue(x, "\x05\x01\x00", 3);
    if (inet_pton(AF_INET, x->host, addr) == 1) {
        queue(x, "\x01", 1);
        queue(x, addr, 4);
    } else if (inet_pton(AF_INET6, x->host, addr) == 1) {
        queue(x, "\x04", 1);
        queue(x, addr, 16);
    } else {
        unsigned char n = (unsigned char)strlen(x->host); /* <= 255: checked in new */
        queue(x, "\x03", 1);
        queue(x, &n, 1);
        queue(x, x->host, n);
    }
    unsigned char pb[2] = {(unsigned char)(x->port >> 8), (unsigned char)x->port};
    queue(x, pb, 2);
    x->in_len = 0;
    x->step = S_CONNECT;
}

static const char *socks_reply_text(unsigned rep)
{
    static const char *const texts[] = {
        "succeeded", "general SOCKS server failure", "connection not allowed by ruleset",
        "network unreachable", "host unreachable", "connection refused by the destination",
        "TTL expired", "command not supported", "address type not supported"};
    return rep < sizeof texts / sizeof *texts ? texts[rep] : "unknown reply code";
}

static int socks_step(proxy *x)
{
    int rc;
    for (;;) {
        if ((rc = send_out(x)) < 0)
            return rc;
        switch (x->step) {
        case S_GREET:
            if ((rc = fill(x, 2)) < 0)
                return rc;
            if (x->in[0] != 5)
                return failed(x, EPODE_ENET, "not a SOCKS5 proxy (its reply starts with 0x%02x)",
                              x->in[0]);
            if (x->in[1] == 0xff)
                return failed(x, EPODE_EAUTH, "%s",
                              x->user ? "accepts none of our authentication methods "
                                        "(no authentication, user/password)"
                                      : "requires authentication (give user:password@ in the "
                                        "proxy URL)");
            if (x->in[1] == 2 && x->user) {
                size_t ul = strlen(x->user), pl = strlen(x->pass);
                unsigned char b;
                x->out_len = x->out_off = 0;
                queue(x, "\x01", 1);
                b = (unsigned char)ul;
                queue(x, &b, 1);
                queue(x, x->user, ul);
                b = (unsigned char)pl;
                queue(x, &b, 1);
                queue(x, x->pass, pl);
                x->in_len = 0;
                x->step = S_AUTH;
                continue;
            }
            if (x->in[1] != 0)
                return failed(x, EPODE_ENET, "chose an authentication method we did not offer (%u)",
                              x->in[1]);
            socks_request(x);
            continue;
        case S_AUTH:
            memset(x->out, 0, x->out_len); /* the password is out: wipe our copy */
            if ((rc = fill(x, 2)) < 0)
                return rc;
            if (x->in[0] != 1)
                return failed(x, EPODE_ENET,
                              "broke the user/password protocol (version byte 0x%02x)", x->in[0]);
            if (x->in[1] != 0)
                return failed(x, EPODE_EAUTH, "refused our user name and password");
            socks_request(x);
            continue;
        case S_CONNECT: {
            if ((rc = fill(x, 5)) < 0)
                return rc;
            if (x->in[0] != 5)
                return failed(x, EPODE_ENET, "not a SOCKS5 reply (version byte 0x%02x)", x->in[0]);
            if (x->in[1] != 0)
                return failed(x, EPODE_ENET, "could not connect to %s:%u: %s (reply %u)", x->host,
                              x->port, socks_reply_text(x->in[1]), x->in[1]);
            size_t need;
            switch (x->in[3]) {
            case 1: need = 4 + 4 + 2; break;
            case 4: need = 4 + 16 + 2; break;
            case 3: need = 4 + 1 + (size_t)x->in[4] + 2; break;
            default:
                return failed(x, EPODE_ENET, "sent a reply with an unknown address type (%u)",
                              x->in[3]);
            }
            if ((rc = fill(x, need)) < 0)
                return rc;
            x->extra_off = x->in_len; /* nothing read past the reply */
            x->step = S_OPEN;
            return 0;
        }
        case S_OPEN:
            return 0;
        case S_FAILED:
            return x->fatal;
        }
    }
}

/* HTTP: reads what is there (the reply's end is found afterwards; bytes
 * past it are the server's and stay in in[] for read()). */
static int http_step(proxy *x)
{
    int rc;
    if (x->step == S_OPEN)
        return 0;
    if (x->step == S_FAILED)
        return x->fatal;
    if ((rc = send_out(x)) < 0)
        return rc;
    for (;;) {
        unsigned char *end = NULL;
        for (size_t i = 3; i < x->in_len; i++)
            if (memcmp(x->in + i - 3, "\r\n\r\n", 4) == 0) {
                end = x->in + i + 1;
                break;
            }
        if (end) {
            x->extra_off = (size_t)(end - x->in);
            break;
        }
        if (x->in_len == EPODE__PROXY_HTTP_MAX)
            return failed(x, EPODE_ENET, "its reply's headers exceed %d bytes",
                          EPODE__PROXY_HTTP_MAX);
        long n = epode__transport_read(x->base.lower, x->in + x->in_len,
                                       EPODE__PROXY_HTTP_MAX - x->in_len);
        if (n == EPODE_EAGAIN)
            return (int)n;
        if (n == 0)
            return failed(x, EPODE_ENET, "closed the connection before answering CONNECT");
        if (n < 0) {
            epode__transport_copy_error(&x->base, x->base.lower);
            x->step = S_FAILED;
            return x->fatal = (int)n;
        }
        x->in_len += (size_t)n;
    }
    /* "HTTP/1.1 200 Connection established" */
    const char *s = (const char *)x->in;
    unsigned status = 0;
    if (x->in_len < 13 || strncmp(s, "HTTP/1.", 7) != 0 || (s[7] != '0' && s[7] != '1') ||
        s[8] != ' ' || s[9] < '1' || s[9] > '5' || s[10] < '0' || s[10] > '9' || s[11] < '0' ||
        s[11] > '9' || (s[12] != ' ' && s[12] != '\r')) {
        char start[13]; /* what it sent, printable only, never past what came */
        size_t k = 0;
        for (; k < 12 && k < x->in_len; k++)
            start[k] = s[k] >= ' ' && s[k] < 127 ? s[k] : '?';
        start[k] = '\0';
        return failed(x, EPODE_ENET, "not an HTTP proxy (its reply starts \"%s\")", start);
    }
    status = (unsigned)(s[9] - '0') * 100 + (unsigned)(s[10] - '0') * 10 + (unsigned)(s[11] - '0');
    char reason[80];
    size_t r = 0;
    for (const char *p = s + 12; *p != '\r' && r + 1 < sizeof reason; p++)
        reason[r++] = *p >= ' ' && *p < 127 ? *p : '?';
    reason[r] = '\0';
    if (status == 407)
        return failed(x, EPODE_EAUTH, "%s (%u%s)",
                      x->user ? "refused our user name and password"
                              : "requires authentication (give user:password@ in the proxy URL)",
                      status, reason);
    if (status < 200 || status > 299)
        return failed(x, EPODE_ENET, "refused to connect to %s:%u (%u%s)", x->host, x->port,
                      status, reason);
    x->step = S_OPEN;
    return 0;
}

static int proxy_handshake(epode__transport *t)
{
    proxy *x = (proxy *)t;
    if (x->step == S_OPEN)
        return 0;
    int rc = x->kind == EPODE__PROXY_SOCKS5 ? socks_step(x) : http_step(x);
    if (rc == 0 && x->extra_off == x->in_len) {
        epode__dealloc(t->mem, x->in); /* nothing of the server's in it */
        x->in = NULL;
        x->in_len = x->extra_off = 0;
    }
    return rc;
}

static long proxy_read(epode__transport *t, void *buf, size_t len)
{
    proxy *x = (proxy *)t;
    if (len == 0)
        return EPODE_EINVAL;
    if (x->step != S_OPEN) {
        int rc = proxy_handshake(t);
        if (rc < 0)
            return rc;
    }
    if (x->in) {
        size_t n = x->in_len - x->extra_off;
        if (n > len)
            n = len;
        memcpy(buf, x->in + x->extra_off, n);
        x->extra_off += n;
        if (x->extra_off == x->in_len) {
            epode__dealloc(t->mem, x->in);
            x->in = NULL;
        }
        return (long)n;
    }
    long n = epode__transport_read(t->lower, buf, len);
    if (n < 0 && n != EPODE_EAGAIN)
        epode__transport_copy_error(t, t->lower);
    return n;
}

static long proxy_write(epode__transport *t, const void *buf, size_t len)
{
    proxy *x = (proxy *)t;
    if (x->step != S_OPEN) {
        int rc = proxy_handshake(t);
        if (rc < 0)
            return rc;
    }
    long n = epode__transport_write(t->lower, buf, len);
    if (n < 0 && n != EPODE_EAGAIN)
        epode__transport_copy_error(t, t->lower);
    return n;
}

static unsigned proxy_wants(epode__transport *t)
{
    proxy *x = (proxy *)t;
    unsigned w = epode__transport_wants(t->lower);
    if (x->step != S_OPEN && x->out_off < x->out_len)
        w |= EPODE__WRITE;
    return w | EPODE__READ;
}

static int proxy_fd(epode__transport *t)
{
    return epode__transport_fd(t->lower);
}

static size_t proxy_pending(epode__transport *t)
{
    proxy *x = (proxy *)t;
    return (x->step == S_OPEN && x->in ? x->in_len - x->extra_off : 0) +
           epode__transport_pending(t->lower);
}

static int proxy_shutdown(epode__transport *t)
{
    return epode__transport_shutdown(t->lower);
}

static void proxy_free(epode__transport *t)
{
    proxy *x = (proxy *)t;
    epode__transport_free(t->lower);
    memset(x->out, 0, sizeof x->out);
    if (x->pass)
        memset(x->pass, 0, strlen(x->pass));
    epode__dealloc(t->mem, x->user);
    epode__dealloc(t->mem, x->pass);
    epode__dealloc(t->mem, x->host);
    epode__dealloc(t->mem, x->in);
    epode__transport_clear_error(t);
    epode__dealloc(t->mem, x);
}

static const epode__transport_ops proxy_ops = {
    .name = "proxy",
    .read = proxy_read,
    .write = proxy_write,
    .wants = proxy_wants,
    .fd = proxy_fd,
    .pending = proxy_pending,
    .shutdown = proxy_shutdown,
    .free = proxy_free,
    .handshake = proxy_handshake,
};

/* The HTTP request: CONNECT, Host, and Basic credentials if any. */
static int http_request(proxy *x)
{
    int v6 = strchr(x->host, ':') != NULL;
    char hostport[300];
    snprintf(hostport, sizeof hostport, "%s%s%s:%u", v6 ? "[" : "", x->host, v6 ? "]" : "",
             x->port);
    int n = snprintf((char *)x->out, sizeof x->out,
                     "CONNECT %s HTTP/1.1\r\nHost: %s\r\n", hostport, hostport);
    if (x->user) {
        /* "user:pass" (at most 511 bytes) in base64: at most 684 */
        char cred[512], b64[700];
        int cl = snprintf(cred, sizeof cred, "%s:%s", x->user, x->pass);
        epode__base64_encode(b64, cred, (size_t)cl);
        b64[epode__base64_encoded_len((size_t)cl)] = '\0';
        memset(cred, 0, sizeof cred);
        size_t need = (size_t)n + strlen(b64) + 32 + 4;
        if (need > sizeof x->out) {
            memset(b64, 0, sizeof b64);
            return EPODE_EINVAL;
        }
        n += snprintf((char *)x->out + n, sizeof x->out - (size_t)n,
                      "Proxy-Authorization: Basic %s\r\n", b64);
        memset(b64, 0, sizeof b64);
    }
    n += snprintf((char *)x->out + n, sizeof x->out - (size_t)n, "\r\n");
    x->out_len = (size_t)n;
    return 0;
}

int epode__proxy_new(const epode_mem_t *mem, const epode__proxy *p, const char *host,
                     unsigned port, epode__transport *lower, epode__transport **out)
{
    if (!p || !host || !lower || !out || strlen(host) > 255 || port == 0 || port > 65535)
        return EPODE_EINVAL;
    proxy *x = epode__zalloc(mem, sizeof *x);
    if (!x)
        return EPODE_ENOMEM;
    x->base.ops = &proxy_ops;
    x->base.mem = mem;
    x->kind = p->kind;
    x->port = port;
    x->host = epode__strdup(mem, host);
    x->in = epode__alloc(mem, EPODE__PROXY_HTTP_MAX);
    if (p->user) {
        x->user = epode__strdup(mem, p->user);
        x->pass = epode__strdup(mem, p->pass ? p->pass : "");
    }
    if (!x->host || !x->in || (p->user && (!x->user || !x->pass))) {
        proxy_free(&x->base); /* no lower yet: nothing else freed */
        return EPODE_ENOMEM;
    }
    int v6 = strchr(p->host, ':') != NULL;
    snprintf(x->where, sizeof x->where, "%s proxy %s%s%s:%u",
             p->kind == EPODE__PROXY_SOCKS5 ? "SOCKS5" : "HTTP", v6 ? "[" : "", p->host,
             v6 ? "]" : "", p->port);
    if (p->kind == EPODE__PROXY_SOCKS5) {
        /* greeting: no authentication, and user/password if we have some */
        if (x->user)
            queue(x, "\x05\x02\x00\x02", 4);
        else
            queue(x, "\x05\x01\x00", 3);
        x->step = S_GREET;
    } else {
        if (http_request(x) < 0) {
            proxy_free(&x->base);
            return EPODE_EINVAL;
        }
        x->step = S_CONNECT;
    }
    x->base.lower = lower;
    *out = &x->base;
    return 0;
}
