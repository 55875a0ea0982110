/* lib/http/hostmeta.c — XEP-0156: a domain's WebSocket and BOSH URLs from
 * https://DOMAIN/.well-known/host-meta (XRD, read with libxml2 under the
 * same refusals as the stream parser: no DTD, no entities, no network)
 * and .../host-meta.json (JRD, read by the small strict JSON reader
 * below), fetched with lib/http on the loop after c-ares resolved the
 * host (lib/http/dns.h).
 *
 * Invariants. Only wss:// and https:// URLs ever leave this file; the
 * documents come over verified HTTPS only, and redirects are followed
 * here (not by curl, whose resolver is a thread) and only to https://.
 * The parsers read bounded input (64 KiB, nesting 32) into fixed
 * buffers and never trust a length they did not count. A lookup's
 * callback runs once, from a loop callback (never inside lookup()), and
 * never after cancel; a request is freed only when no call of ours is
 * running on it (depth), so cancel from the log callback is safe. */
#include "http/hostmeta.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <gnutls/gnutls.h>
#include <libxml/parser.h>
#include <libxml/parserInternals.h>

#include "epode/ctx.h"
#include "util/alloc.h"
#include "util/utf8.h"

#define MAX_DEPTH 32
#define DEFAULT_TIMEOUT_MS 10000u
#define DEFAULT_REDIRECTS 3u

/* ---- URLs ---------------------------------------------------------------------- */

static void links_clear(epode__hostmeta_links *out)
{
    out->websocket[0] = out->bosh[0] = out->note[0] = '\0';
    out->ignored = 0;
}

static void note(epode__hostmeta_links *out, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void note(epode__hostmeta_links *out, const char *fmt, ...)
{
    if (out->note[0])
        return; /* the first reason is the one worth reading */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out->note, sizeof out->note, fmt, ap);
    va_end(ap);
    epode__utf8_trim(out->note);
}

static int is_ldh(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '.';
}

/* Splits the authority of an http(s)/ws(s) URL (after "scheme://") into
 * host (brackets dropped) and port (def when absent). 0, or -1 for one
 * we refuse: empty, userinfo, a bad port, characters a host cannot have. */
static int split_authority(const char *a, size_t alen, char *host, size_t hsize, unsigned *port,
                           unsigned def)
{
    const char *h = a, *colon = NULL;
    size_t hlen;
    if (alen == 0 || memchr(a, '@', alen))
        return -1;
    if (a[0] == '[') {
        const char *close = memchr(a, ']', alen);
        if (!close)
            return -1;
        h = a + 1;
        hlen = (size_t)(close - h);
        for (size_t i = 0; i < hlen; i++)
            if (!strchr("0123456789abcdefABCDEF:.", h[i]))
                return -1;
        if (close + 1 < a + alen) {
            if (close[1] != ':')
                return -1;
            colon = close + 1;
        }
    } else {
        colon = memchr(a, ':', alen);
        hlen = colon ? (size_t)(colon - a) : alen;
        for (size_t i = 0; i < hlen; i++)
            if (!is_ldh((unsigned char)h[i]))
                return -1;
    }
    if (hlen == 0 || hlen >= hsize)
        return -1;
    *port = def;
    if (colon) {
        size_t plen = (size_t)(a + alen - colon - 1);
        unsigned long p = 0;
        if (plen == 0 || plen > 5)
            return -1;
        for (size_t i = 0; i < plen; i++) {
            if (colon[1 + i] < '0' || colon[1 + i] > '9')
                return -1;
            p = p * 10 + (unsigned long)(colon[1 + i] - '0');
        }
        if (p == 0 || p > 65535)
            return -1;
        *port = (unsigned)p;
    }
    if (host) {
        memcpy(host, h, hlen);
        host[hlen] = '\0';
    }
    return 0;
}

int epode__hostmeta_url_ok(const char *url, int websocket)
{
    const char *scheme = websocket ? "wss://" : "https://";
    size_t slen = strlen(scheme);
    if (!url || strncasecmp(url, scheme, slen) != 0)
        return 0;
    size_t len = strlen(url);
    if (len >= EPODE__HOSTMETA_URL_MAX)
        return 0;
    /* printable ASCII without what RFC 3986 never allows unescaped;
     * no fragment (RFC 6455 forbids one in a WebSocket URI) */
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)url[i];
        if (c <= 0x20 || c >= 0x7f || strchr("\"<>\\^`{|}#", c))
            return 0;
    }
    const char *a = url + slen;
    size_t alen = strcspn(a, "/?");
    unsigned port;
    return split_authority(a, alen, NULL, 256, &port, 443) == 0;
}

/* A link of one of our rels: taken if it is the first acceptable one. */
static void offer(epode__hostmeta_links *out, int websocket, const char *href, size_t href_len)
{
    char *slot = websocket ? out->websocket : out->bosh;
    const char *kind = websocket ? "WebSocket" : "BOSH";
    int ok = href && strlen(href) == href_len && epode__hostmeta_url_ok(href, websocket);
    if (ok) {
        if (!slot[0])
            memcpy(slot, href, href_len + 1);
        return;
    }
    out->ignored++;
    /* the URL goes into log text only if it is printable ASCII (a peer's
     * bytes must not forge log lines) */
    int printable = href && strlen(href) == href_len;
    for (size_t i = 0; printable && i < href_len; i++)
        printable = (unsigned char)href[i] >= 0x20 && (unsigned char)href[i] < 0x7f;
    const char *shown = printable ? href : "(with control or non-ASCII characters)";
    if (!href)
        note(out, "a %s link without an href was ignored", kind);
    else if (websocket ? strncasecmp(href, "ws://", 5) == 0 : strncasecmp(href, "http://", 7) == 0)
        note(out, "the %s link %.120s was ignored: not %s", kind, shown,
             websocket ? "wss://" : "https://");
    else
        note(out, "the %s link %.120s was ignored: not a usable %s URL", kind, shown,
             websocket ? "wss://" : "https://");
}

static int rel_kind(const char *rel, size_t len)
{
    if (len == sizeof EPODE__HOSTMETA_REL_WEBSOCKET - 1 &&
        memcmp(rel, EPODE__HOSTMETA_REL_WEBSOCKET, len) == 0)
        return 1;
    if (len == sizeof EPODE__HOSTMETA_REL_BOSH - 1 && memcmp(rel, EPODE__HOSTMETA_REL_BOSH, len) == 0)
        return 2;
    return 0;
}

/* ---- XRD (libxml2) -------------------------------------------------------------- */

#define XRD_NS "http://docs.oasis-open.org/ns/xri/xrd-1.0"

typedef struct xrd {
    xmlParserCtxtPtr ctxt;
    epode__hostmeta_links *out;
    int depth;
    int err; /* 0 or the EPODE_E* that ended it */
    char why[160];
} xrd;

static void xrd_fail(xrd *x, int err, const char *why)
{
    if (x->err)
        return;
    x->err = err;
    snprintf(x->why, sizeof x->why, "%s", why);
    if (x->ctxt)
        xmlStopParser(x->ctxt);
}

static void xrd_start(void *user, const xmlChar *local, const xmlChar *prefix, const xmlChar *uri,
                      int nns, const xmlChar **ns, int nattrs, int ndefaulted,
                      const xmlChar **attrs)
{
    (void)prefix, (void)nns, (void)ns, (void)ndefaulted;
    xrd *x = user;
    if (x->err)
        return;
    if (++x->depth > MAX_DEPTH) {
        xrd_fail(x, EPODE_ELIMIT, "nested too deep");
        return;
    }
    int ours = uri && strcmp((const char *)uri, XRD_NS) == 0;
    if (x->depth == 1) {
        if (!ours || strcmp((const char *)local, "XRD") != 0)
            xrd_fail(x, EPODE_EPROTOCOL, "the root is not an XRD element");
        return;
    }
    if (x->depth != 2 || !ours || strcmp((const char *)local, "Link") != 0)
        return;
    const char *rel = NULL, *href = NULL;
    size_t rel_len = 0, href_len = 0;
    for (int i = 0; i < nattrs; i++) {
        const xmlChar **a = attrs + 5 * i; /* local, prefix, URI, value, end */
        if (a[2])
            continue; /* namespaced: not XRD's */
        size_t vlen = (size_t)(a[4] - a[3]);
        if (strcmp((const char *)a[0], "rel") == 0) {
            rel = (const char *)a[3];
            rel_len = vlen;
        } else if (strcmp((const char *)a[0], "href") == 0) {
            href = (const char *)a[3];
            href_len = vlen;
        }
    }
    int kind = rel ? rel_kind(rel, rel_len) : 0;
    if (!kind)
        return;
    /* the value is not NUL-terminated where libxml2 points into its input */
    char buf[EPODE__HOSTMETA_URL_MAX];
    if (href && href_len < sizeof buf) {
        /* libxml2 hands '&' over re-escaped as "&#38;" (every other
         * reference decoded): undo exactly that */
        size_t n = 0;
        for (size_t i = 0; i < href_len; i++) {
            buf[n++] = href[i];
            if (href[i] == '&' && href_len - i >= 5 && memcmp(href + i, "&#38;", 5) == 0)
                i += 4;
        }
        buf[n] = '\0';
        offer(x->out, kind == 1, buf, n);
    } else if (href) {
        x->out->ignored++;
        note(x->out, "a %s link with a URL over %u bytes was ignored",
             kind == 1 ? "WebSocket" : "BOSH", EPODE__HOSTMETA_URL_MAX - 1);
    } else {
        offer(x->out, kind == 1, NULL, 0);
    }
}

static void xrd_end(void *user, const xmlChar *local, const xmlChar *prefix, const xmlChar *uri)
{
    (void)local, (void)prefix, (void)uri;
    xrd *x = user;
    x->depth--;
}

static void xrd_serror(void *user, xmlErrorPtr e)
{
    xrd *x = user;
    if (!e || e->level == XML_ERR_WARNING || e->code == XML_ERR_USER_STOP)
        return;
    char msg[160];
    snprintf(msg, sizeof msg, "malformed XML: %s", e->message ? e->message : "?");
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
        msg[--n] = '\0';
    xrd_fail(x, e->code == XML_ERR_NO_MEMORY ? EPODE_ENOMEM : EPODE_EPROTOCOL, msg);
}

static void xrd_dtd(void *u, const xmlChar *n, const xmlChar *e, const xmlChar *s)
{
    (void)n, (void)e, (void)s;
    xrd_fail(u, EPODE_EPROTOCOL, "a document type declaration is not allowed");
}

static void xrd_entity_decl(void *u, const xmlChar *n, int t, const xmlChar *pub,
                            const xmlChar *sys, xmlChar *content)
{
    (void)n, (void)t, (void)pub, (void)sys, (void)content;
    xrd_fail(u, EPODE_EPROTOCOL, "an entity declaration is not allowed");
}

static void xrd_unparsed(void *u, const xmlChar *n, const xmlChar *pub, const xmlChar *sys,
                         const xmlChar *notation)
{
    (void)n, (void)pub, (void)sys, (void)notation;
    xrd_fail(u, EPODE_EPROTOCOL, "an entity declaration is not allowed");
}

static xmlEntityPtr xrd_get_entity(void *u, const xmlChar *name)
{
    xmlEntityPtr e = xmlGetPredefinedEntity(name);
    if (!e)
        xrd_fail(u, EPODE_EPROTOCOL, "an entity reference is not allowed");
    return e;
}

int epode__hostmeta_parse_xrd(const char *doc, size_t len, epode__hostmeta_links *out)
{
    if (!out || (!doc && len))
        return EPODE_EINVAL;
    links_clear(out);
    if (len > EPODE__HOSTMETA_DOC_MAX) {
        note(out, "the document is over %u bytes", EPODE__HOSTMETA_DOC_MAX);
        return EPODE_ELIMIT;
    }
    xrd x = {.out = out};
    xmlSAXHandler s;
    memset(&s, 0, sizeof s);
    s.initialized = XML_SAX2_MAGIC;
    s.startElementNs = xrd_start;
    s.endElementNs = xrd_end;
    s.serror = xrd_serror;
    s.internalSubset = xrd_dtd;
    s.externalSubset = xrd_dtd;
    s.entityDecl = xrd_entity_decl;
    s.unparsedEntityDecl = xrd_unparsed;
    s.getEntity = xrd_get_entity;
    s.getParameterEntity = xrd_get_entity;
    /* comments, processing instructions and text are not ours to judge:
     * a hand-written host-meta may carry them */
    x.ctxt = xmlCreatePushParserCtxt(&s, &x, NULL, 0, NULL);
    if (!x.ctxt) {
        note(out, "out of memory");
        return EPODE_ENOMEM;
    }
    xmlCtxtUseOptions(x.ctxt, XML_PARSE_NONET | XML_PARSE_IGNORE_ENC | XML_PARSE_NOWARNING);
    int rc = xmlParseChunk(x.ctxt, doc ? doc : "", (int)len, 1);
    if (!x.err && (rc != 0 || !x.ctxt->wellFormed))
        xrd_fail(&x, EPODE_EPROTOCOL, "malformed XML");
    xmlFreeParserCtxt(x.ctxt);
    if (x.err) {
        out->websocket[0] = out->bosh[0] = '\0';
        out->ignored = 0;
        out->note[0] = '\0';
        note(out, "%s", x.why);
        return x.err;
    }
    return 0;
}

/* ---- JRD (a strict JSON reader) -------------------------------------------------- */

typedef struct json {
    const unsigned char *start, *p, *end;
    epode__hostmeta_links *out;
    int err;
    char why[160];
} json;

static int jerr(json *j, int err, const char *why)
{
    if (!j->err) {
        j->err = err;
        snprintf(j->why, sizeof j->why, "malformed JSON: %s at byte %zu", why,
                 (size_t)(j->p - j->start));
    }
    return -1;
}

static void jws(json *j)
{
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
        j->p++;
}

static int hex4(const unsigned char *p, uint32_t *v)
{
    *v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned c = p[i], d;
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if (c >= 'a' && c <= 'f')
            d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            d = c - 'A' + 10;
        else
            return -1;
        *v = *v << 4 | d;
    }
    return 0;
}

/* Appends code point cp to buf (cap bytes, NUL kept room for) as UTF-8;
 * past cap only *len grows (the caller sees the overflow). */
static void put_cp(char *buf, size_t cap, size_t *len, uint32_t cp)
{
    unsigned char u[4];
    size_t n;
    if (cp < 0x80) {
        u[0] = (unsigned char)cp;
        n = 1;
    } else if (cp < 0x800) {
        u[0] = (unsigned char)(0xc0 | cp >> 6);
        u[1] = (unsigned char)(0x80 | (cp & 0x3f));
        n = 2;
    } else if (cp < 0x10000) {
        u[0] = (unsigned char)(0xe0 | cp >> 12);
        u[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
        u[2] = (unsigned char)(0x80 | (cp & 0x3f));
        n = 3;
    } else {
        u[0] = (unsigned char)(0xf0 | cp >> 18);
        u[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3f));
        u[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3f));
        u[3] = (unsigned char)(0x80 | (cp & 0x3f));
        n = 4;
    }
    if (buf && *len + n < cap)
        memcpy(buf + *len, u, n);
    *len += n;
    if (buf && *len < cap)
        buf[*len] = '\0';
}

/* A string at j->p ('"'), decoded into buf (may be NULL: checked and
 * skipped). *len is its decoded length, which may exceed cap - 1: then
 * buf holds only a prefix. */
static int jstring(json *j, char *buf, size_t cap, size_t *len)
{
    *len = 0;
    if (buf && cap)
        buf[0] = '\0';
    if (j->p >= j->end || *j->p != '"')
        return jerr(j, EPODE_EPROTOCOL, "a string was expected");
    j->p++;
    for (;;) {
        if (j->p >= j->end)
            return jerr(j, EPODE_EPROTOCOL, "an unterminated string");
        unsigned c = *j->p;
        if (c == '"') {
            j->p++;
            return 0;
        }
        if (c < 0x20)
            return jerr(j, EPODE_EPROTOCOL, "a control character in a string");
        if (c >= 0x80) {
            uint32_t cp;
            size_t n = epode__utf8_decode(j->p, (size_t)(j->end - j->p), &cp);
            if (!n)
                return jerr(j, EPODE_EPROTOCOL, "invalid UTF-8");
            put_cp(buf, cap, len, cp);
            j->p += n;
            continue;
        }
        if (c != '\\') {
            put_cp(buf, cap, len, c);
            j->p++;
            continue;
        }
        if (j->end - j->p < 2)
            return jerr(j, EPODE_EPROTOCOL, "an unterminated string");
        unsigned e = j->p[1];
        j->p += 2;
        uint32_t cp;
        switch (e) {
        case '"': cp = '"'; break;
        case '\\': cp = '\\'; break;
        case '/': cp = '/'; break;
        case 'b': cp = '\b'; break;
        case 'f': cp = '\f'; break;
        case 'n': cp = '\n'; break;
        case 'r': cp = '\r'; break;
        case 't': cp = '\t'; break;
        case 'u':
            if (j->end - j->p < 4 || hex4(j->p, &cp) < 0)
                return jerr(j, EPODE_EPROTOCOL, "a bad \\u escape");
            j->p += 4;
            if (cp >= 0xdc00 && cp <= 0xdfff)
                return jerr(j, EPODE_EPROTOCOL, "a lone low surrogate");
            if (cp >= 0xd800 && cp <= 0xdbff) {
                uint32_t lo;
                if (j->end - j->p < 6 || j->p[0] != '\\' || j->p[1] != 'u' ||
                    hex4(j->p + 2, &lo) < 0 || lo < 0xdc00 || lo > 0xdfff)
                    return jerr(j, EPODE_EPROTOCOL, "a lone high surrogate");
                j->p += 6;
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            }
            break;
        default:
            j->p -= 2;
            return jerr(j, EPODE_EPROTOCOL, "a bad escape");
        }
        put_cp(buf, cap, len, cp);
    }
}

static int jdigits(json *j)
{
    const unsigned char *s = j->p;
    while (j->p < j->end && *j->p >= '0' && *j->p <= '9')
        j->p++;
    return j->p > s ? 0 : -1;
}

static int jnumber(json *j)
{
    if (j->p < j->end && *j->p == '-')
        j->p++;
    if (j->p < j->end && *j->p == '0')
        j->p++;
    else if (j->p >= j->end || *j->p < '1' || *j->p > '9' || jdigits(j) < 0)
        return jerr(j, EPODE_EPROTOCOL, "a bad value");
    if (j->p < j->end && *j->p == '.') {
        j->p++;
        if (jdigits(j) < 0)
            return jerr(j, EPODE_EPROTOCOL, "a bad number");
    }
    if (j->p < j->end && (*j->p == 'e' || *j->p == 'E')) {
        j->p++;
        if (j->p < j->end && (*j->p == '+' || *j->p == '-'))
            j->p++;
        if (jdigits(j) < 0)
            return jerr(j, EPODE_EPROTOCOL, "a bad number");
    }
    return 0;
}

static int jliteral(json *j, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(j->end - j->p) < n || memcmp(j->p, word, n) != 0)
        return jerr(j, EPODE_EPROTOCOL, "a bad value");
    j->p += n;
    return 0;
}

static int jvalue(json *j, int depth);

/* Walks an object's members: for each, key() is told the decoded key
 * (a prefix of at most 31 bytes, and its full length) and reads the
 * value itself. */
typedef int (*member_fn)(json *j, const char *key, size_t klen, int depth, void *arg);

static int jobject(json *j, int depth, member_fn member, void *arg)
{
    if (depth > MAX_DEPTH)
        return jerr(j, EPODE_ELIMIT, "nested too deep");
    j->p++; /* '{' */
    jws(j);
    if (j->p < j->end && *j->p == '}') {
        j->p++;
        return 0;
    }
    for (;;) {
        char key[32];
        size_t klen;
        jws(j);
        if (jstring(j, key, sizeof key, &klen) < 0)
            return -1;
        jws(j);
        if (j->p >= j->end || *j->p != ':')
            return jerr(j, EPODE_EPROTOCOL, "':' was expected");
        j->p++;
        jws(j);
        if ((member ? member(j, key, klen, depth, arg) : jvalue(j, depth)) < 0)
            return -1;
        jws(j);
        if (j->p < j->end && *j->p == ',') {
            j->p++;
            continue;
        }
        if (j->p < j->end && *j->p == '}') {
            j->p++;
            return 0;
        }
        return jerr(j, EPODE_EPROTOCOL, "',' or '}' was expected");
    }
}

typedef int (*element_fn)(json *j, int depth, void *arg);

static int jarray(json *j, int depth, element_fn element, void *arg)
{
    if (depth > MAX_DEPTH)
        return jerr(j, EPODE_ELIMIT, "nested too deep");
    j->p++; /* '[' */
    jws(j);
    if (j->p < j->end && *j->p == ']') {
        j->p++;
        return 0;
    }
    for (;;) {
        jws(j);
        if ((element ? element(j, depth, arg) : jvalue(j, depth)) < 0)
            return -1;
        jws(j);
        if (j->p < j->end && *j->p == ',') {
            j->p++;
            continue;
        }
        if (j->p < j->end && *j->p == ']') {
            j->p++;
            return 0;
        }
        return jerr(j, EPODE_EPROTOCOL, "',' or ']' was expected");
    }
}

/* Any value, checked and skipped; `depth` is that of its container. */
static int jvalue(json *j, int depth)
{
    if (j->p >= j->end)
        return jerr(j, EPODE_EPROTOCOL, "a value was expected");
    size_t len;
    switch (*j->p) {
    case '{':
        return jobject(j, depth + 1, NULL, NULL);
    case '[':
        return jarray(j, depth + 1, NULL, NULL);
    case '"':
        return jstring(j, NULL, 0, &len);
    case 't':
        return jliteral(j, "true");
    case 'f':
        return jliteral(j, "false");
    case 'n':
        return jliteral(j, "null");
    default:
        return jnumber(j);
    }
}

typedef struct jlink {
    char rel[48];
    size_t rel_len;
    char href[EPODE__HOSTMETA_URL_MAX];
    size_t href_len;
    int has_rel, has_href, dup;
} jlink;

static int link_member(json *j, const char *key, size_t klen, int depth, void *arg)
{
    jlink *l = arg;
    int is_rel = klen == 3 && memcmp(key, "rel", 3) == 0;
    int is_href = klen == 4 && memcmp(key, "href", 4) == 0;
    if ((is_rel || is_href) && j->p < j->end && *j->p == '"') {
        int *has = is_rel ? &l->has_rel : &l->has_href;
        if (*has)
            l->dup = 1; /* ambiguous: which one did the author mean? */
        *has = 1;
        return is_rel ? jstring(j, l->rel, sizeof l->rel, &l->rel_len)
                      : jstring(j, l->href, sizeof l->href, &l->href_len);
    }
    return jvalue(j, depth);
}

static int link_element(json *j, int depth, void *arg)
{
    (void)arg;
    if (j->p >= j->end || *j->p != '{')
        return jvalue(j, depth); /* not a link object: not ours */
    jlink link, *l = &link;
    memset(l, 0, sizeof *l);
    int rc = jobject(j, depth + 1, link_member, l);
    int kind = rc == 0 && l->has_rel && l->rel_len < sizeof l->rel ? rel_kind(l->rel, l->rel_len) : 0;
    if (kind && l->dup) {
        j->out->ignored++;
        note(j->out, "a %s link with two rel or href members was ignored",
             kind == 1 ? "WebSocket" : "BOSH");
    } else if (kind && l->has_href && l->href_len >= sizeof l->href) {
        j->out->ignored++;
        note(j->out, "a %s link with a URL over %u bytes was ignored",
             kind == 1 ? "WebSocket" : "BOSH", EPODE__HOSTMETA_URL_MAX - 1);
    } else if (kind) {
        offer(j->out, kind == 1, l->has_href ? l->href : NULL, l->href_len);
    }
    return rc;
}

static int top_member(json *j, const char *key, size_t klen, int depth, void *arg)
{
    int *seen_links = arg;
    if (klen == 5 && memcmp(key, "links", 5) == 0) {
        if (j->p >= j->end || *j->p != '[')
            return jerr(j, EPODE_EPROTOCOL, "\"links\" is not an array");
        *seen_links = 1;
        return jarray(j, depth + 1, link_element, NULL);
    }
    return jvalue(j, depth);
}

int epode__hostmeta_parse_json(const char *doc, size_t len, epode__hostmeta_links *out)
{
    if (!out || (!doc && len))
        return EPODE_EINVAL;
    links_clear(out);
    if (len > EPODE__HOSTMETA_DOC_MAX) {
        note(out, "the document is over %u bytes", EPODE__HOSTMETA_DOC_MAX);
        return EPODE_ELIMIT;
    }
    if (!doc)
        doc = "";
    json j = {.start = (const unsigned char *)doc, .p = (const unsigned char *)doc,
              .end = (const unsigned char *)doc + len, .out = out};
    if (len >= 3 && memcmp(doc, "\xef\xbb\xbf", 3) == 0)
        j.p += 3; /* RFC 8259 §8.1: a BOM may be ignored */
    int seen_links = 0;
    jws(&j);
    if (j.p >= j.end || *j.p != '{')
        jerr(&j, EPODE_EPROTOCOL, "the document is not a JSON object");
    else if (jobject(&j, 1, top_member, &seen_links) == 0) {
        jws(&j);
        if (j.p != j.end)
            jerr(&j, EPODE_EPROTOCOL, "bytes after the object");
    }
    if (j.err) {
        out->websocket[0] = out->bosh[0] = '\0';
        out->ignored = 0;
        out->note[0] = '\0';
        note(out, "%s", j.why);
        return j.err;
    }
    if (!seen_links)
        note(out, "the document has no \"links\"");
    return 0;
}

/* ---- the lookup ------------------------------------------------------------------ */

enum { DOC_XRD, DOC_JSON };
static const char *const doc_path[2] = {"/.well-known/host-meta", "/.well-known/host-meta.json"};
static const char *const doc_accept[2] = {"Accept: application/xrd+xml",
                                          "Accept: application/jrd+json, application/json"};

struct epode__hostmeta_req {
    const epode_mem_t *mem;
    epode__http *http;
    epode__http_dns *dns;
    epode__hostmeta_cb cb;
    epode__hostmeta_log_cb log;
    void *user;
    char *ca_file;
    char *proxy, *proxy_user, *proxy_pass;
    int remote_names; /* the proxy resolves names: no DNS query of ours */
    unsigned timeout_ms, max_redirects;
    char domain[256];
    unsigned port;
    int doc;            /* DOC_XRD, then DOC_JSON */
    unsigned redirects; /* followed for this document */
    char url[EPODE__HOSTMETA_URL_MAX]; /* being fetched */
    char host[256];                    /* its host, without brackets */
    unsigned host_port;
    char rhost[256]; /* the host whose addresses raddrs holds */
    char raddrs[256];
    epode__http_req *hreq;
    epode__http_lookup *lookup;
    int status[2];   /* each document's outcome */
    long http_status[2];
    char why[2][420];
    unsigned depth;  /* calls of ours running on it */
    int canceled, finished;
    epode__hostmeta_links links;
};

static void req_free(epode__hostmeta_req *r)
{
    if (r->hreq)
        epode__http_cancel(r->hreq);
    if (r->lookup)
        epode__http_dns_cancel(r->lookup);
    epode__dealloc(r->mem, r->ca_file);
    epode__dealloc(r->mem, r->proxy);
    epode__dealloc(r->mem, r->proxy_user);
    if (r->proxy_pass)
        explicit_bzero(r->proxy_pass, strlen(r->proxy_pass));
    epode__dealloc(r->mem, r->proxy_pass);
    epode__dealloc(r->mem, r);
}

static void enter(epode__hostmeta_req *r)
{
    r->depth++;
}

static void leave(epode__hostmeta_req *r)
{
    if (--r->depth == 0 && (r->canceled || r->finished))
        req_free(r);
}

static void hm_log(epode__hostmeta_req *r, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void hm_log(epode__hostmeta_req *r, int level, const char *fmt, ...)
{
    if (!r->log || r->canceled)
        return;
    char text[640];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    epode__utf8_trim(text);
    enter(r);
    r->log(r->user, level, text);
    r->depth--; /* the caller's own enter() keeps it alive */
}

/* The outcome, once; the request is freed when the running call leaves. */
static void finish(epode__hostmeta_req *r, int status, const char *ws, const char *bosh,
                   const char *text)
{
    if (r->finished || r->canceled)
        return;
    r->finished = 1;
    if (r->hreq)
        epode__http_cancel(r->hreq);
    r->hreq = NULL;
    if (r->lookup)
        epode__http_dns_cancel(r->lookup);
    r->lookup = NULL;
    r->cb(r->user, status, ws, bosh, text);
}

static int is_weak(const epode__hostmeta_req *r, int doc)
{
    return r->status[doc] == EPODE_EHTTP && r->http_status[doc] == 404;
}

static void fetch(epode__hostmeta_req *r);

/* 1 if a proxy URL (curl's form) names a proxy that resolves host names
 * itself: socks5h://, socks4a://, an HTTP(S) proxy (CONNECT host:port),
 * or no scheme (curl takes http://). socks5:// and socks4:// want an
 * address from us. */
static int proxy_resolves(const char *proxy)
{
    static const char *const local[] = {"socks5://", "socks4://"};
    for (size_t i = 0; i < sizeof local / sizeof *local; i++)
        if (strncasecmp(proxy, local[i], strlen(local[i])) == 0)
            return 0;
    return 1;
}

static void set_doc_url(epode__hostmeta_req *r)
{
    const char *bl = strchr(r->domain, ':') ? "[" : "", *br = *bl ? "]" : "";
    if (r->port == 443)
        snprintf(r->url, sizeof r->url, "https://%s%s%s%s", bl, r->domain, br, doc_path[r->doc]);
    else
        snprintf(r->url, sizeof r->url, "https://%s%s%s:%u%s", bl, r->domain, br, r->port,
                 doc_path[r->doc]);
}

/* The current document failed (status, in words): on to the next, or
 * the end. */
static void doc_failed(epode__hostmeta_req *r, int status, long http_status, const char *words)
{
    r->status[r->doc] = status;
    r->http_status[r->doc] = http_status;
    snprintf(r->why[r->doc], sizeof r->why[r->doc], "%.200s: %.200s", r->url, words);
    epode__utf8_trim(r->why[r->doc]);
    if (r->doc == DOC_XRD) {
        hm_log(r, EPODE_LOG_INFO, "host-meta: %s; trying host-meta.json", r->why[DOC_XRD]);
        if (r->canceled)
            return;
        r->doc = DOC_JSON;
        r->redirects = 0;
        set_doc_url(r);
        fetch(r);
        return;
    }
    int st = r->status[DOC_XRD];
    if (r->status[DOC_JSON] == EPODE_ECERT || (is_weak(r, DOC_XRD) && !is_weak(r, DOC_JSON)))
        st = r->status[DOC_JSON];
    char text[900];
    snprintf(text, sizeof text, "no usable host-meta: %s; %s", r->why[DOC_XRD], r->why[DOC_JSON]);
    epode__utf8_trim(text);
    finish(r, st, NULL, NULL, text);
}

/* A Location header's value in the raw header block (NUL-terminated),
 * trimmed, into buf; 0, or -1 if none or too long. */
static int location(const char *headers, char *buf, size_t size)
{
    for (const char *line = headers; line && *line;) {
        const char *eol = strchr(line, '\n');
        size_t n = eol ? (size_t)(eol - line) : strlen(line);
        if (n > 9 && strncasecmp(line, "location:", 9) == 0) {
            const char *v = line + 9, *e = line + n;
            while (v < e && (*v == ' ' || *v == '\t'))
                v++;
            while (e > v && (e[-1] == '\r' || e[-1] == ' ' || e[-1] == '\t'))
                e--;
            if (v == e || (size_t)(e - v) >= size)
                return -1;
            memcpy(buf, v, (size_t)(e - v));
            buf[e - v] = '\0';
            return 0;
        }
        line = eol ? eol + 1 : NULL;
    }
    return -1;
}

static void redirect(epode__hostmeta_req *r, const epode__http_resp *resp)
{
    char to[EPODE__HOSTMETA_URL_MAX], words[400];
    if (++r->redirects > r->max_redirects) {
        snprintf(words, sizeof words, "more than %u redirects", r->max_redirects);
        doc_failed(r, EPODE_EPROTOCOL, resp->status, words);
        return;
    }
    if (location(resp->headers, to, sizeof to) < 0) {
        snprintf(words, sizeof words, "HTTP status %ld without a usable Location", resp->status);
        doc_failed(r, EPODE_EPROTOCOL, resp->status, words);
        return;
    }
    for (const char *c = to; *c; c++)
        if ((unsigned char)*c <= 0x20 || (unsigned char)*c >= 0x7f) {
            doc_failed(r, EPODE_EPROTOCOL, resp->status, "a redirect to a malformed URL refused");
            return;
        }
    char next[EPODE__HOSTMETA_URL_MAX];
    if (strncasecmp(to, "https://", 8) == 0) {
        snprintf(next, sizeof next, "%s", to);
    } else if (to[0] == '/' && to[1] != '/') {
        /* an absolute path on the same origin */
        size_t alen = 8 + strcspn(r->url + 8, "/?#");
        if (alen + strlen(to) >= sizeof next) {
            doc_failed(r, EPODE_EPROTOCOL, resp->status, "a redirect to a URL too long");
            return;
        }
        memcpy(next, r->url, alen);
        snprintf(next + alen, sizeof next - alen, "%s", to);
    } else {
        snprintf(words, sizeof words, "a redirect to %.200s refused: only https:// is followed", to);
        doc_failed(r, EPODE_EPROTOCOL, resp->status, words);
        return;
    }
    char host[256];
    unsigned port;
    const char *a = next + 8;
    if (split_authority(a, strcspn(a, "/?#"), host, sizeof host, &port, 443) < 0) {
        snprintf(words, sizeof words, "a redirect to %.200s refused: no usable host", to);
        doc_failed(r, EPODE_EPROTOCOL, resp->status, words);
        return;
    }
    hm_log(r, EPODE_LOG_DEBUG, "host-meta: %s redirects to %s", r->url, next);
    if (r->canceled)
        return;
    memcpy(r->url, next, strlen(next) + 1);
    fetch(r);
}

static void on_done(void *user, int err, const epode__http_resp *resp, const char *text)
{
    epode__hostmeta_req *r = user;
    r->hreq = NULL;
    enter(r);
    char words[400];
    long st = resp ? resp->status : 0;
    if (err == 0 && (st == 301 || st == 302 || st == 303 || st == 307 || st == 308)) {
        redirect(r, resp);
    } else if (err == EPODE_ELIMIT) {
        snprintf(words, sizeof words, "the answer is larger than %u bytes", EPODE__HOSTMETA_DOC_MAX);
        doc_failed(r, err, st, words);
    } else if (err < 0) {
        snprintf(words, sizeof words, "%s (%s)", epode_strerror(err), text ? text : "");
        doc_failed(r, err, st, words);
    } else if (st != 200) {
        snprintf(words, sizeof words, "HTTP status %ld", st);
        doc_failed(r, EPODE_EHTTP, st, words);
    } else {
        epode__hostmeta_links *l = &r->links;
        int rc = r->doc == DOC_XRD ? epode__hostmeta_parse_xrd(resp->body, resp->body_len, l)
                                   : epode__hostmeta_parse_json(resp->body, resp->body_len, l);
        if (rc == 0 && l->ignored)
            hm_log(r, EPODE_LOG_WARN, "host-meta: %s: %s", r->url, l->note);
        if (r->canceled) {
            /* (canceled from the log callback) */
        } else if (rc < 0) {
            doc_failed(r, rc, st, l->note);
        } else if (l->websocket[0] || l->bosh[0]) {
            snprintf(words, sizeof words, "from %.300s", r->url);
            finish(r, 0, l->websocket[0] ? l->websocket : NULL, l->bosh[0] ? l->bosh : NULL,
                   words);
        } else {
            doc_failed(r, EPODE_ENOTFOUND, st,
                       l->note[0] ? l->note : "no WebSocket (wss://) or BOSH (https://) link");
        }
    }
    leave(r);
}

static int is_literal(const char *host)
{
    unsigned char bin[16];
    return inet_pton(AF_INET, host, bin) == 1 || inet_pton(AF_INET6, host, bin) == 1;
}

/* Starts the GET of r->url: 0, or what epode__http_start said. */
static int get_start(epode__hostmeta_req *r)
{
    char entry[600];
    const char *resolve[1];
    size_t nresolve = 0;
    if (!r->remote_names && !is_literal(r->host)) {
        snprintf(entry, sizeof entry, "%s:%u:%s", r->host, r->host_port, r->raddrs);
        resolve[nresolve++] = entry;
    }
    const char *accept = doc_accept[r->doc];
    epode__http_opts o = {
        .url = r->url,
        .headers = &accept,
        .nheaders = 1,
        .max_body = EPODE__HOSTMETA_DOC_MAX,
        .timeout_ms = r->timeout_ms,
        .connect_timeout_ms = r->timeout_ms,
        .max_redirects = 0, /* ours to follow: see redirect() */
        .ca_file = r->ca_file,
        .proxy = r->proxy,
        .proxy_user = r->proxy_user,
        .proxy_pass = r->proxy_pass,
        .resolve = resolve,
        .nresolve = nresolve,
        .done = on_done,
        .user = r,
    };
    int rc = epode__http_start(r->http, &o, &r->hreq);
    if (rc < 0)
        r->hreq = NULL;
    return rc;
}

static void get(epode__hostmeta_req *r)
{
    int rc = get_start(r);
    if (rc < 0) {
        char words[200];
        snprintf(words, sizeof words, "the request could not start: %s", epode_strerror(rc));
        doc_failed(r, rc, 0, words);
    }
}

static void on_resolved(void *user, int status, const char *addrs)
{
    epode__hostmeta_req *r = user;
    r->lookup = NULL;
    enter(r);
    if (status < 0) {
        char words[400];
        snprintf(words, sizeof words, "could not resolve %s: %s", r->host, epode_strerror(status));
        if (strcasecmp(r->host, r->domain) == 0) {
            /* the other document lives on the same unknown host */
            char text[600];
            snprintf(text, sizeof text, "no usable host-meta: %s", words);
            finish(r, status, NULL, NULL, text);
        } else {
            doc_failed(r, status, 0, words);
        }
    } else {
        snprintf(r->rhost, sizeof r->rhost, "%s", r->host);
        snprintf(r->raddrs, sizeof r->raddrs, "%s", addrs);
        get(r);
    }
    leave(r);
}

/* Fetches r->url: its host's addresses first, unless known. */
static void fetch(epode__hostmeta_req *r)
{
    const char *a = r->url + 8; /* after "https://" (checked by the caller) */
    if (split_authority(a, strcspn(a, "/?#"), r->host, sizeof r->host, &r->host_port, 443) < 0) {
        doc_failed(r, EPODE_EPROTOCOL, 0, "no usable host in the URL");
        return;
    }
    if (r->remote_names || is_literal(r->host) || strcasecmp(r->host, r->rhost) == 0) {
        get(r);
        return;
    }
    int rc = epode__http_dns_lookup(r->dns, r->host, on_resolved, r, &r->lookup);
    if (rc < 0) {
        r->lookup = NULL;
        char words[400];
        snprintf(words, sizeof words, "could not start resolving %s: %s", r->host,
                 epode_strerror(rc));
        doc_failed(r, rc, 0, words);
    }
}

int epode__hostmeta_lookup(epode__http *http, epode__http_dns *dns, const char *domain,
                           const epode__hostmeta_opts *opts, epode__hostmeta_cb cb, void *user,
                           epode__hostmeta_req **out)
{
    static const epode__hostmeta_opts none;
    if (!opts)
        opts = &none;
    int remote_names = opts->proxy && proxy_resolves(opts->proxy);
    if (!http || (!dns && !remote_names) || !domain || !cb || opts->port > 65535 ||
        (opts->proxy && !*opts->proxy))
        return EPODE_EINVAL;
    /* a host name (or an IP literal, IPv6 in brackets), nothing else; an
     * internationalized one (a JID's domainpart may be) as its A-label */
    size_t dlen = strlen(domain);
    gnutls_datum_t mapped = {NULL, 0};
    for (size_t i = 0; i < dlen; i++)
        if ((unsigned char)domain[i] >= 0x80) {
            if (dlen > 1024 || !epode__xml_text_ok(domain, dlen) ||
                gnutls_idna_map(domain, (unsigned)dlen, &mapped, 0) < 0)
                return EPODE_EINVAL;
            domain = (const char *)mapped.data;
            dlen = mapped.size;
            break;
        }
    char host[256];
    unsigned port;
    int bad = dlen == 0 || dlen > 253 || split_authority(domain, dlen, host, sizeof host, &port, 0) < 0 ||
              port != 0;
    gnutls_free(mapped.data);
    if (bad)
        return EPODE_EINVAL;
    epode__hostmeta_req *r = epode__zalloc(opts->mem, sizeof *r);
    if (!r)
        return EPODE_ENOMEM;
    r->mem = opts->mem;
    if ((opts->ca_file && !(r->ca_file = epode__strdup(r->mem, opts->ca_file))) ||
        (opts->proxy && !(r->proxy = epode__strdup(r->mem, opts->proxy))) ||
        (opts->proxy_user && !(r->proxy_user = epode__strdup(r->mem, opts->proxy_user))) ||
        (opts->proxy_pass && !(r->proxy_pass = epode__strdup(r->mem, opts->proxy_pass)))) {
        req_free(r);
        return EPODE_ENOMEM;
    }
    r->remote_names = remote_names;
    r->http = http;
    r->dns = dns;
    r->cb = cb;
    r->log = opts->log;
    r->user = user;
    r->timeout_ms = opts->timeout_ms ? opts->timeout_ms : DEFAULT_TIMEOUT_MS;
    r->max_redirects = opts->max_redirects ? opts->max_redirects : DEFAULT_REDIRECTS;
    snprintf(r->domain, sizeof r->domain, "%s", host);
    r->port = opts->port ? opts->port : 443;
    r->doc = DOC_XRD;
    set_doc_url(r);
    /* Through the resolver even for a literal (its answer comes from the
     * loop, so nothing can call back inside this call), or straight to
     * a proxy that resolves names (HTTP's done callback never runs
     * inside start either). */
    const char *a = r->url + 8;
    int rc = EPODE_EINVAL;
    if (split_authority(a, strcspn(a, "/?#"), r->host, sizeof r->host, &r->host_port, 443) == 0)
        rc = r->remote_names ? get_start(r)
                             : epode__http_dns_lookup(r->dns, r->host, on_resolved, r, &r->lookup);
    if (rc < 0) {
        req_free(r);
        return rc;
    }
    if (out)
        *out = r;
    return 0;
}

void epode__hostmeta_cancel(epode__hostmeta_req *r)
{
    if (!r || r->canceled || r->finished)
        return;
    r->canceled = 1;
    if (r->hreq)
        epode__http_cancel(r->hreq);
    r->hreq = NULL;
    if (r->lookup)
        epode__http_dns_cancel(r->lookup);
    r->lookup = NULL;
    if (r->depth == 0)
        req_free(r);
}
