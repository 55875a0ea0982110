/* lib/stanza/jid.c — JIDs (RFC 7622): splitting a string into parts,
 * checking each part against the rules stated in epode/jid.h, and keeping
 * the normalized result in one allocation. Data only: never does I/O,
 * never aborts on bad input, never allocates while validating or
 * comparing strings. */
#if !defined(_GNU_SOURCE) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L /* inet_pton */
#endif

#include "epode/jid.h"

#include <arpa/inet.h>
#include <stdint.h>
#include <string.h>

#include "util/alloc.h"
#include "util/utf8.h"

/* RFC 7622 §3.1: each part is 1..1023 octets. */
#define JID_PART_MAX 1023
/* RFC 1034 label limit, applied to the UTF-8 bytes of a label. */
#define JID_LABEL_MAX 63

/* One block per JID: this header, then the strings it points into.
 * `bare` is "local@domain" (or "domain"); `domain` points inside it.
 * `full` is bare plus "/resource" when there is a resource, else it is
 * `bare` itself; `resource` points inside it. */
struct epode_jid {
    const epode_mem_t *mem;
    const char *local;    /* own NUL-terminated copy, or NULL */
    const char *domain;
    const char *resource; /* inside full, or NULL */
    const char *bare;
    const char *full;
    char data[];
};

/* A JID's parts as spans of text that has already been checked; the
 * normalized form differs from these bytes only by ASCII case in local
 * and domain (the domain's trailing dot is already outside its span). */
struct jid_span {
    const char *local;    /* NULL when absent */
    size_t local_len;
    const char *domain;
    size_t domain_len;
    const char *resource; /* NULL when absent */
    size_t resource_len;
};

static char ascii_lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

static int is_control(uint32_t cp)
{
    return cp < 0x20 || (cp >= 0x7F && cp <= 0x9F);
}

/* The Unicode space separators (Zs) and the line and paragraph
 * separators, which RFC 7622 keeps out of localparts and domainparts. */
static int is_space(uint32_t cp)
{
    return cp == 0x20 || cp == 0xA0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) ||
           cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

static int local_char_ok(uint32_t cp)
{
    switch (cp) {
    case '"': case '&': case '\'': case '/': case ':': case '<': case '>': case '@':
        return 0;
    default:
        return !is_control(cp) && !is_space(cp);
    }
}

static int resource_char_ok(uint32_t cp)
{
    return !is_control(cp);
}

static int domain_char_ok(uint32_t cp)
{
    if (cp < 0x80)
        return (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') ||
               (cp >= '0' && cp <= '9') || cp == '-';
    return !is_control(cp) && !is_space(cp);
}

/* The same three rules for ASCII, as bits of one table (the send path
 * validates every outgoing `to`, nearly always ASCII: a byte costs one
 * load instead of a UTF-8 decode and an indirect call). */
enum { OK_LOCAL = 1, OK_DOMAIN = 2, OK_RESOURCE = 4 };
/* ascii_ok[c] has OK_LOCAL if local_char_ok(c), OK_DOMAIN if
 * domain_char_ok(c), OK_RESOURCE if resource_char_ok(c)
 * (jid_every_ascii_byte_in_every_part in test_jid holds it to the rules);
 * 0 for every byte >= 0x80, which only the full UTF-8 check may judge. */
static const unsigned char ascii_ok[256] = { /* 0 from 0x80 on */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x00 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x10 */
    4, 5, 4, 5, 5, 5, 4, 4, 5, 5, 5, 5, 5, 7, 5, 4, /* 0x20 */
    7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 4, 5, 4, 5, 4, 5, /* 0x30 */
    4, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, /* 0x40 */
    7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 5, 5, 5, 5, 5, /* 0x50 */
    5, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, /* 0x60 */
    7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 5, 5, 5, 5, 0, /* 0x70 */
};

/* 1 if s[0..len) is 1..1023 bytes of valid UTF-8 whose every code point
 * passes `ok` (whose ASCII answers are the `bit` of ascii_ok). */
static int part_ok(const char *s, size_t len, int (*ok)(uint32_t), unsigned bit)
{
    if (len == 0 || len > JID_PART_MAX)
        return 0;
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < len && u[i] < 0x80 && (ascii_ok[u[i]] & bit))
        i++;
    while (i < len) {
        if (u[i] < 0x80) {
            if (!(ascii_ok[u[i]] & bit))
                return 0;
            i++;
            continue;
        }
        uint32_t cp;
        size_t n = epode__utf8_decode(u + i, len - i, &cp);
        if (n == 0 || !ok(cp))
            return 0;
        i += n;
    }
    return 1;
}

/* "[IPv6]": RFC 7622 §3.2 takes the IP-literal of RFC 3986; only IPv6
 * addresses are written in brackets (IPvFuture is not accepted). */
static int ip_literal_ok(const char *s, size_t len)
{
    /* Longest textual IPv6 address is 45 characters; allow some slack
     * for leading zeros inet_pton would refuse anyway. */
    char buf[64];
    if (len < 3 || s[len - 1] != ']' || len - 2 >= sizeof buf)
        return 0;
    memcpy(buf, s + 1, len - 2);
    buf[len - 2] = '\0';
    unsigned char addr[16];
    return inet_pton(AF_INET6, buf, addr) == 1;
}

/* Checks a domainpart; on success stores its length without the one
 * trailing dot RFC 7622 §3.2 strips. */
static int domain_ok(const char *s, size_t len, size_t *out_len)
{
    if (len > 0 && s[len - 1] == '.')
        len--;
    if (len == 0 || len > JID_PART_MAX)
        return 0;
    if (s[0] == '[') {
        if (!ip_literal_ok(s, len))
            return 0;
        *out_len = len;
        return 1;
    }
    /* One pass for the usual all-ASCII name; anything else label by
     * label below. */
    size_t i = 0, label = 0;
    for (; i < len; i++) {
        unsigned char b = (unsigned char)s[i];
        if (b == '.') {
            if (label == 0)
                return 0;
            label = 0;
        } else if (b < 0x80 && (ascii_ok[b] & OK_DOMAIN) && label < JID_LABEL_MAX) {
            label++;
        } else {
            break;
        }
    }
    if (i == len) {
        if (label == 0)
            return 0;
        *out_len = len;
        return 1;
    }
    size_t start = 0;
    while (start <= len) {
        const char *dot = memchr(s + start, '.', len - start);
        size_t end = dot ? (size_t)(dot - s) : len;
        if (end - start > JID_LABEL_MAX || !part_ok(s + start, end - start, domain_char_ok, OK_DOMAIN))
            return 0;
        start = end + 1;
    }
    *out_len = len;
    return 1;
}

/* Validates parts given separately (local, resource may be NULL). */
static int span_from_parts(const char *local, const char *domain, const char *resource,
                           struct jid_span *sp)
{
    sp->local = local;
    sp->local_len = local ? strlen(local) : 0;
    sp->resource = resource;
    sp->resource_len = resource ? strlen(resource) : 0;
    sp->domain = domain;
    if (local && !part_ok(local, sp->local_len, local_char_ok, OK_LOCAL))
        return EPODE_EJID;
    if (!domain_ok(domain, strlen(domain), &sp->domain_len))
        return EPODE_EJID;
    if (resource && !part_ok(resource, sp->resource_len, resource_char_ok, OK_RESOURCE))
        return EPODE_EJID;
    return 0;
}

/* RFC 7622 §3.1: the resource is everything after the first '/'; the
 * localpart is what precedes the first '@' before that. */
static int span_from_text(const char *text, struct jid_span *sp)
{
    const char *slash = strchr(text, '/');
    size_t head_len = slash ? (size_t)(slash - text) : strlen(text);
    const char *at = memchr(text, '@', head_len);

    sp->local = at ? text : NULL;
    sp->local_len = at ? (size_t)(at - text) : 0;
    sp->domain = at ? at + 1 : text;
    sp->resource = slash ? slash + 1 : NULL;
    sp->resource_len = slash ? strlen(slash + 1) : 0;

    if (sp->local && !part_ok(sp->local, sp->local_len, local_char_ok, OK_LOCAL))
        return EPODE_EJID;
    if (!domain_ok(sp->domain, head_len - (size_t)(sp->domain - text), &sp->domain_len))
        return EPODE_EJID;
    if (sp->resource && !part_ok(sp->resource, sp->resource_len, resource_char_ok, OK_RESOURCE))
        return EPODE_EJID;
    return 0;
}

static char *put_lower(char *dst, const char *src, size_t len)
{
    for (size_t i = 0; i < len; i++)
        dst[i] = ascii_lower(src[i]);
    return dst + len;
}

/* Lays a checked span out, normalized, in one block. */
static int jid_build(const epode_mem_t *mem, const struct jid_span *sp, epode_jid_t **out)
{
    size_t bare_len = (sp->local ? sp->local_len + 1 : 0) + sp->domain_len;
    size_t size = sizeof(struct epode_jid) + bare_len + 1;
    if (sp->local)
        size += sp->local_len + 1;
    if (sp->resource)
        size += bare_len + 1 + sp->resource_len + 1;

    epode_jid_t *jid = epode__alloc(mem, size);
    if (!jid)
        return EPODE_ENOMEM;
    jid->mem = mem;

    char *p = jid->data;
    jid->local = NULL;
    if (sp->local) {
        jid->local = p;
        p = put_lower(p, sp->local, sp->local_len);
        *p++ = '\0';
    }

    char *bare = p;
    if (sp->local) {
        p = put_lower(p, sp->local, sp->local_len);
        *p++ = '@';
    }
    jid->domain = p;
    p = put_lower(p, sp->domain, sp->domain_len);
    *p++ = '\0';
    jid->bare = bare;

    jid->full = bare;
    jid->resource = NULL;
    if (sp->resource) {
        char *full = p;
        memcpy(p, bare, bare_len);
        p += bare_len;
        *p++ = '/';
        jid->resource = p;
        memcpy(p, sp->resource, sp->resource_len);
        p += sp->resource_len;
        *p = '\0';
        jid->full = full;
    }
    *out = jid;
    return 0;
}

int epode_jid_new(const epode_mem_t *mem, const char *text, epode_jid_t **out)
{
    if (!text || !out)
        return EPODE_EINVAL;
    struct jid_span sp;
    int rc = span_from_text(text, &sp);
    if (rc)
        return rc;
    return jid_build(mem, &sp, out);
}

int epode_jid_new_from_parts(const epode_mem_t *mem, const char *local, const char *domain,
                             const char *resource, epode_jid_t **out)
{
    if (!domain || !out)
        return EPODE_EINVAL;
    struct jid_span sp;
    int rc = span_from_parts(local, domain, resource, &sp);
    if (rc)
        return rc;
    return jid_build(mem, &sp, out);
}

void epode_jid_free(epode_jid_t *jid)
{
    if (jid)
        epode__dealloc(jid->mem, jid);
}

int epode_jid_copy(const epode_jid_t *jid, epode_jid_t **out)
{
    if (!jid || !out)
        return EPODE_EINVAL;
    /* Already normalized, so building again reproduces it. */
    struct jid_span sp = {
        .local = jid->local,
        .local_len = jid->local ? strlen(jid->local) : 0,
        .domain = jid->domain,
        .domain_len = strlen(jid->domain),
        .resource = jid->resource,
        .resource_len = jid->resource ? strlen(jid->resource) : 0,
    };
    return jid_build(jid->mem, &sp, out);
}

/* The common case in one pass (epode_conn_send() validates every `to`):
 * a pure-ASCII "[local@]domain[/resource]" whose domain is plain labels.
 * 1 if certainly valid; 0 if the full check must decide — anything
 * unusual (non-ASCII, an IP literal, a trailing dot) and every invalid
 * JID — so it can only ever agree with span_from_text(). */
static int ascii_jid_ok(const char *text)
{
    const unsigned char *u = (const unsigned char *)text;
    size_t i = 0, start = 0, label;
    /* ascii_ok[] is 0 for NUL and for every byte >= 0x80, so each loop
     * stops at the end, at a separator, or at anything unusual */
    while (ascii_ok[u[i]] & OK_LOCAL)
        i++;
    if (u[i] == '@') {
        if (i == 0 || i > JID_PART_MAX)
            return 0;
        start = ++i;
    } else if (u[i] == '/' || u[i] == 0) {
        i = 0; /* no localpart: the head is the domain */
    } else {
        return 0;
    }
    for (;;) {
        label = i;
        while (ascii_ok[u[i]] & OK_DOMAIN)
            i++;
        if (i == label || i - label > JID_LABEL_MAX)
            return 0;
        if (u[i] != '.')
            break;
        i++;
    }
    if (i - start > JID_PART_MAX)
        return 0;
    if (u[i] == '/') {
        start = ++i;
        while (ascii_ok[u[i]] & OK_RESOURCE)
            i++;
        if (i == start || i - start > JID_PART_MAX)
            return 0;
    }
    return u[i] == 0;
}

int epode_jid_validate(const char *text)
{
    if (!text)
        return EPODE_EINVAL;
    if (ascii_jid_ok(text))
        return 0;
    struct jid_span sp;
    return span_from_text(text, &sp);
}

const char *epode_jid_local(const epode_jid_t *jid)
{
    return jid ? jid->local : NULL;
}

const char *epode_jid_domain(const epode_jid_t *jid)
{
    return jid ? jid->domain : NULL;
}

const char *epode_jid_resource(const epode_jid_t *jid)
{
    return jid ? jid->resource : NULL;
}

const char *epode_jid_bare(const epode_jid_t *jid)
{
    return jid ? jid->bare : NULL;
}

const char *epode_jid_full(const epode_jid_t *jid)
{
    return jid ? jid->full : NULL;
}

int epode_jid_is_bare(const epode_jid_t *jid)
{
    return jid && !jid->resource;
}

int epode_jid_equal(const epode_jid_t *a, const epode_jid_t *b)
{
    /* The full string determines the parts, so comparing it compares
     * all three. */
    return a && b && strcmp(a->full, b->full) == 0;
}

int epode_jid_bare_equal(const epode_jid_t *a, const epode_jid_t *b)
{
    return a && b && strcmp(a->bare, b->bare) == 0;
}

int epode_jid_compare(const epode_jid_t *a, const epode_jid_t *b)
{
    if (!a || !b)
        return (a != NULL) - (b != NULL);
    int c = strcmp(a->full, b->full);
    return (c > 0) - (c < 0);
}

/* Both absent, or both present and equal after ASCII case folding
 * (fold == 1) or byte for byte (fold == 0). */
static int span_part_equal(const char *a, size_t alen, const char *b, size_t blen, int fold)
{
    if (!a || !b)
        return !a && !b;
    if (alen != blen)
        return 0;
    if (!fold)
        return memcmp(a, b, alen) == 0;
    for (size_t i = 0; i < alen; i++)
        if (ascii_lower(a[i]) != ascii_lower(b[i]))
            return 0;
    return 1;
}

int epode_jid_str_equal(const char *a, const char *b, int bare_only)
{
    struct jid_span sa, sb;
    if (!a || !b || span_from_text(a, &sa) != 0 || span_from_text(b, &sb) != 0)
        return 0;
    return span_part_equal(sa.local, sa.local_len, sb.local, sb.local_len, 1) &&
           span_part_equal(sa.domain, sa.domain_len, sb.domain, sb.domain_len, 1) &&
           (bare_only ||
            span_part_equal(sa.resource, sa.resource_len, sb.resource, sb.resource_len, 0));
}
