/* lib/xml/parser.c — the incremental XMPP stream parser over libxml2's
 * SAX2 push parser. Builds one tree per depth-1 element, enforces RFC 6120
 * §11 restricted XML and the size limits, and maps every failure to a
 * stream error condition. It must never let libxml2 fetch, expand or
 * declare anything, and never keep a pointer into libxml2's dictionary
 * (freed with the context, and grown by every new name a peer sends).
 *
 * Limits are local, not stream errors: a depth-1 element that breaks one
 * is skipped — its tree freed, nothing of it kept but a small summary —
 * while libxml2 goes on checking it, and reported when it ends. What stays
 * a stream error is what libxml2 itself would need unbounded memory to
 * skip: one huge start tag (it holds a tag whole until its '>'), huge or
 * endlessly deep skipped elements (a stack entry per open element), and
 * endless distinct names (its dictionary). Every such bound is checked
 * where bytes go in, never by buffering them ourselves. */
#include "epode/parser.h"

#include <stdint.h>
#include <string.h>
#include <stdio.h>

#include <libxml/parser.h>
#include <libxml/parserInternals.h>
#include <libxml/dict.h>
#include <libxml/xmlerror.h>

#include "parser_int.h"
#include "serialize.h"
#include "stanza/stanza_int.h"
#include "util/alloc.h"
#include "util/buf.h"
#include "util/utf8.h"

#define PIECE 65536         /* bytes handed to libxml2 at once */

/* Defaults (parser.h says why): 256 KiB as a sender wrote it, plus 64 KiB
 * for what the server adds on the way (delay, stanza-id, addresses,
 * carbons and MAM wrappers, namespace declarations written out again). */
#define DEFAULT_BYTES (262144 + 65536)
#define DEFAULT_DEPTH 256
#define DEFAULT_ATTRS 256

/* Stream-level bounds on skipping, each the larger of a floor and a
 * multiple of the local limit. The floors are above what a server relays
 * from a sender it limits to 256 KiB (512 KiB between servers): Prosody
 * writes ' and " as &apos; and &quot; even in text, so 256 KiB can arrive
 * as 1.5 MB; nesting needs 7 bytes a level ("<a></a>"), so 512 KiB holds
 * 75000 levels. */
#define HOLD_FLOOR (2u << 20)       /* bytes libxml2 may hold unparsed */
#define SKIP_BYTES_FLOOR (4u << 20) /* bytes of one skipped element */
#define SKIP_DEPTH_FLOOR 131072     /* nesting of one skipped element */

/* libxml2's dictionary. Its "usage" is the bytes of its string pools
 * (xmlDictGetUsage), which grow fourfold each (2.9.14: 1000, 4000, ...,
 * 256000, 1024000 bytes); xmlDictSize counts entries. Between stanzas a
 * fresh context replaces one past either threshold. Inside one element
 * libxml2 refuses a new pool once the pools pass DICT_MAX_FLOOR (or twice
 * the byte limit): a stanza starts with at most 85000 bytes of pools, so
 * over 1.2 MB is left for its names; a 1 MiB name is refused outright. */
#define DICT_REBUILD_ENTRIES 20000
#define DICT_REBUILD_BYTES (256u << 10)
#define DICT_MAX_FLOOR (1u << 20)
#define DICT_MAX_ENTRIES 131072

/* A skipped element larger than this leaves libxml2's buffers and stacks
 * grown: a fresh context gives that memory back. */
#define SKIP_REBUILD_BYTES 65536

/* The longest JID (RFC 7622: three parts of up to 1023 bytes, and the
 * '@' and '/'): longer attribute values are left out of a summary. */
#define SUMMARY_VALUE_MAX 3071

#define NAME_BITS 7
#define NAME_SLOTS (1u << NAME_BITS)

/* The first arena block of a stanza's tree is sized after the stanza
 * before it (one allocation for a run of similar stanzas), up to this. */
#define TREE_HINT_MAX 8192

enum { STOP_NONE = 0, STOP_RESET, STOP_REBUILD };

struct epode_parser {
    const epode_mem_t *mem;
    xmlParserCtxtPtr ctxt;
    epode_parser_cb cb;
    void *user;
    size_t lim_bytes, lim_depth, lim_attrs, lim_text;
    int fragment;      /* from_text: the depth-0 element is the stanza */
    int depth;         /* elements open, the stream element included */
    epode_stanza_t *root, *cur;
    size_t text_total; /* character data in the current stanza */
    unsigned long long fed;      /* bytes given to this libxml2 context */
    unsigned long long piece_at; /* position of the current piece */
    unsigned long long boundary; /* where the next depth-1 element begins */
    unsigned long long stop_at;  /* position of a requested stop */
    epode_stream_cond_t cond;
    char errtext[160];
    int stream_open;
    int stopping;
    int in_cb;
    int replaying;     /* feeding a saved header to a fresh context */
    int partial;       /* non-blank bytes past the boundary: cut input */
    int skip;          /* the limit the depth-1 element being skipped broke */
    int skipped;       /* the limit reported by the SKIPPED being delivered */
    epode_stanza_t *summary; /* what SKIPPED will report */
    unsigned rebuilds; /* contexts replaced mid-stream (for tests) */
    size_t tree_hint;  /* first block for the next stanza's tree */
    epode_stanza_t *spare; /* a delivered stanza's emptied tree, reused
                              within one feed (never kept between feeds) */
    epode__buf header; /* the stream's start tag, for a rebuilt context */
    /* libxml2 hands names as dictionary pointers, stable while the
     * context lives: remember which map to epode's static strings. */
    struct name_slot { const xmlChar *key; const char *interned; } *names; /* NAME_SLOTS */
};

/* ---- errors ----------------------------------------------------------- */

static void fail(epode_parser_t *p, epode_stream_cond_t cond, const char *text)
{
    if (p->cond != EPODE_STREAM_NONE)
        return;
    p->cond = cond;
    snprintf(p->errtext, sizeof p->errtext, "%s", text);
    if (p->ctxt)
        xmlStopParser(p->ctxt);
}

static size_t dict_max(const epode_parser_t *p);

/* Whether libxml2's dictionary has reached the bound set on it. */
static int dict_full(const epode_parser_t *p)
{
    return p->ctxt && p->ctxt->dict && xmlDictGetUsage(p->ctxt->dict) > dict_max(p);
}

static void on_serror(void *user, xmlErrorPtr err)
{
    epode_parser_t *p = user;
    if (!err || err->level == XML_ERR_WARNING || err->code == XML_ERR_USER_STOP)
        return;
    epode_stream_cond_t cond = EPODE_STREAM_NOT_WELL_FORMED;
    if (err->code == XML_ERR_UNDECLARED_ENTITY || err->code == XML_WAR_UNDECLARED_ENTITY ||
        err->code == XML_ERR_ENTITY_PE_INTERNAL)
        cond = EPODE_STREAM_RESTRICTED_XML;
    if (dict_full(p)) {
        /* libxml2 reports a refused dictionary entry as whatever it was
         * parsing (often a missing name), sometimes as out of memory */
        fail(p, EPODE_STREAM_POLICY_VIOLATION, "too many distinct names in one element");
        return;
    }
    if (err->code == XML_ERR_NO_MEMORY) {
        fail(p, EPODE_STREAM_RESOURCE_CONSTRAINT, "out of memory");
        return;
    }
    char msg[sizeof p->errtext];
    snprintf(msg, sizeof msg, "%s", err->message ? err->message : "malformed XML");
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
        msg[--n] = '\0';
    fail(p, cond, msg);
}

/* Everything RFC 6120 §11 forbids lands here. */
static void restricted(void *user, const char *what)
{
    fail(user, EPODE_STREAM_RESTRICTED_XML, what);
}

static void on_internal_subset(void *u, const xmlChar *n, const xmlChar *e, const xmlChar *s)
{
    (void)n, (void)e, (void)s;
    restricted(u, "document type declarations are not allowed");
}

static void on_entity_decl(void *u, const xmlChar *n, int t, const xmlChar *pub,
                           const xmlChar *sys, xmlChar *content)
{
    (void)n, (void)t, (void)pub, (void)sys, (void)content;
    restricted(u, "entity declarations are not allowed");
}

static void on_comment(void *u, const xmlChar *v)
{
    (void)v;
    restricted(u, "comments are not allowed");
}

static void on_pi(void *u, const xmlChar *target, const xmlChar *data)
{
    (void)target, (void)data;
    restricted(u, "processing instructions are not allowed");
}

static void on_reference(void *u, const xmlChar *name)
{
    (void)name;
    restricted(u, "entity references are not allowed");
}

static xmlEntityPtr on_get_entity(void *u, const xmlChar *name)
{
    xmlEntityPtr e = xmlGetPredefinedEntity(name);
    if (!e)
        restricted(u, "entity references are not allowed");
    return e;
}

static void on_notation_decl(void *u, const xmlChar *n, const xmlChar *p, const xmlChar *s)
{
    (void)n, (void)p, (void)s;
    restricted(u, "notation declarations are not allowed");
}

static void on_attribute_decl(void *u, const xmlChar *e, const xmlChar *n, int t, int d,
                              const xmlChar *dv, xmlEnumerationPtr tree)
{
    (void)e, (void)n, (void)t, (void)d, (void)dv;
    xmlFreeEnumeration(tree); /* the callback owns it */
    restricted(u, "attribute declarations are not allowed");
}

static void on_element_decl(void *u, const xmlChar *n, int t, xmlElementContentPtr c)
{
    (void)n, (void)t, (void)c;
    restricted(u, "element declarations are not allowed");
}

static void on_unparsed_entity(void *u, const xmlChar *n, const xmlChar *p, const xmlChar *s,
                               const xmlChar *nn)
{
    (void)n, (void)p, (void)s, (void)nn;
    restricted(u, "entity declarations are not allowed");
}

/* ---- positions ---------------------------------------------------------- */

/* Bytes of this context's input consumed so far: xmlByteConsumed()'s
 * own arithmetic when no decoder sits in between (always, for UTF-8),
 * without a call per element. */
static unsigned long long position(epode_parser_t *p)
{
    xmlParserInputPtr in = p->ctxt->input;
    if (in && in->base && (!in->buf || !in->buf->encoder))
        return (unsigned long long)in->consumed + (unsigned long long)(in->cur - in->base);
    long c = xmlByteConsumed(p->ctxt);
    return c < 0 ? p->fed : (unsigned long long)c;
}

/* ---- bounds on skipping ----------------------------------------------- */

static size_t at_least(size_t v, size_t floor)
{
    return v > floor ? v : floor;
}

static size_t twice(size_t v)
{
    return v > SIZE_MAX / 2 ? SIZE_MAX : 2 * v;
}

static size_t hold_max(const epode_parser_t *p)
{
    return at_least(p->lim_bytes, HOLD_FLOOR);
}

static size_t skip_bytes_max(const epode_parser_t *p)
{
    return at_least(twice(p->lim_bytes), SKIP_BYTES_FLOOR);
}

static size_t skip_depth_max(const epode_parser_t *p)
{
    return at_least(p->lim_depth, SKIP_DEPTH_FLOOR);
}

static size_t dict_max(const epode_parser_t *p)
{
    return at_least(twice(p->lim_bytes), DICT_MAX_FLOOR);
}

/* ---- tree building ------------------------------------------------------ */

static int stanza_depth(const epode_parser_t *p)
{
    return p->fragment ? p->depth : p->depth - 1;
}

/* libxml2 hands attribute values with '&' re-escaped as "&#38;" (it does
 * so when entities are not substituted); undo exactly that. */
static const char *attr_value(epode__tree *t, const xmlChar *v, const xmlChar *end)
{
    size_t len = (size_t)(end - v);
    const char *s = (const char *)v;
    if (!memchr(s, '&', len))
        return epode__arena_strndup(t, s, len);
    char *out = epode__arena_alloc(t, len + 1);
    if (!out)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        out[o++] = s[i];
        if (s[i] == '&' && len - i >= 5 && memcmp(s + i, "&#38;", 5) == 0)
            i += 4;
    }
    out[o] = '\0';
    return out;
}

/* The static string a name from libxml2's dictionary maps to, or NULL:
 * remembered per dictionary pointer (stable while the context lives, and
 * p->names lives exactly as long), in sets of two slots. The dictionary
 * packs its strings byte by byte ("to", "id" and "xml" can share 8
 * bytes), so every bit of the pointer goes into the hash. */
static const char *known_miss(struct name_slot *set, const xmlChar *s, size_t *len)
{
    *len = strlen((const char *)s);
    set[1] = set[0];
    set[0].key = s;
    set[0].interned = epode__intern((const char *)s, *len);
    return set[0].interned;
}

static inline __attribute__((always_inline)) const char *known(epode_parser_t *p,
                                                               const xmlChar *s, size_t *len)
{
    uint64_t h = (uint64_t)(uintptr_t)s * 0x9E3779B97F4A7C15u;
    struct name_slot *set = &p->names[(h >> (64 - NAME_BITS)) & ~(uint64_t)1];
    if (set[0].key == s)
        return set[0].interned;
    if (set[1].key == s)
        return set[1].interned;
    return known_miss(set, s, len);
}

/* A name from libxml2's dictionary, as a static string when XMPP uses it
 * all the time, else copied into the tree. */
static inline __attribute__((always_inline)) const char *name_str(epode_parser_t *p,
                                                                  epode__tree *t,
                                                                  const xmlChar *s)
{
    if (!s)
        return NULL;
    size_t len = (size_t)-1;
    const char *k = known(p, s, &len);
    if (k)
        return k;
    if (len == (size_t)-1)
        len = strlen((const char *)s);
    return epode__arena_strndup(t, (const char *)s, len);
}

/* Namespace names come with '&' re-escaped like attribute values (no
 * interned string holds a '&'). */
static const char *uri_copy(epode__tree *t, const xmlChar *s)
{
    size_t len = strlen((const char *)s);
    if (memchr(s, '&', len))
        return attr_value(t, s, s + len);
    return epode__arena_strndup(t, (const char *)s, len);
}

static const char *uri_str(epode_parser_t *p, epode__tree *t, const xmlChar *s)
{
    if (!s)
        return NULL;
    size_t len;
    const char *k = known(p, s, &len);
    return k ? k : uri_copy(t, s);
}

static int add_attrs(epode_parser_t *p, epode_stanza_t *el, int n, const xmlChar **attrs)
{
    if (n == 0)
        return 0;
    epode__tree *t = el->tree;
    if (epode__attrs_reserve(el, (uint32_t)n) < 0)
        return -1;
    /* All values in one piece of the arena. */
    size_t total = 0;
    for (int i = 0; i < n; i++)
        total += (size_t)(attrs[5 * i + 4] - attrs[5 * i + 3]) + 1;
    char *out = epode__arena_alloc(t, total);
    if (!out)
        return -1;
    xmlParserInputPtr in = p->ctxt->input;
    uintptr_t in_from = in && in->base ? (uintptr_t)in->base : 0;
    uintptr_t in_to = in && in->base ? (uintptr_t)in->end : 0;
    for (int i = 0; i < n; i++) {
        const xmlChar **a = attrs + 5 * i;
        size_t len = (size_t)(a[4] - a[3]);
        const char *v = (const char *)a[3];
        char *value = out;
        memcpy(out, v, len);
        out += len;
        /* A value libxml2 hands straight out of its input buffer had no
         * reference in it (its fast path stops at the first '&'): only
         * one it built elsewhere can hold a re-escaped '&'. */
        uintptr_t at_v = (uintptr_t)v;
        if ((at_v < in_from || at_v >= in_to) && memchr(v, '&', len)) {
            /* libxml2 hands '&' re-escaped as "&#38;": undo exactly that */
            out = value;
            for (size_t k = 0; k < len; k++) {
                *out++ = v[k];
                if (v[k] == '&' && len - k >= 5 && memcmp(v + k, "&#38;", 5) == 0)
                    k += 4;
            }
        }
        *out++ = '\0';
        epode__attr at = {name_str(p, t, a[0]), NULL, NULL, value};
        if (!at.name)
            return -1;
        if (a[2] && (!(at.ns = uri_str(p, t, a[2])) || !(at.prefix = name_str(p, t, a[1]))))
            return -1;
        el->attrs[el->nattrs++] = at;
    }
    return 0;
}

/* Writes a value the way libxml2 hands it over ('&' as "&#38;", every
 * other character decoded) escaped for an attribute, exactly once. */
static void put_attr_value(epode__buf *b, const char *v, size_t len)
{
    size_t from = 0;
    for (size_t i = 0; i + 5 <= len; i++)
        if (v[i] == '&' && memcmp(v + i, "&#38;", 5) == 0) {
            epode__escape_attr(b, v + from, i - from);
            epode__buf_append(b, "&amp;", 5);
            i += 4;
            from = i + 1;
        }
    epode__escape_attr(b, v + from, len - from);
}

/* Remembers the stream header as a start tag, to replay it into a fresh
 * libxml2 context when the dictionary must be dropped. */
static void save_header(epode_parser_t *p, const xmlChar *localname, const xmlChar *prefix,
                        int nb_ns, const xmlChar **ns, int nb_attrs, const xmlChar **attrs)
{
    epode__buf *b = &p->header;
    b->len = 0;
    epode__buf_putc(b, '<');
    if (prefix) {
        epode__buf_puts(b, (const char *)prefix);
        epode__buf_putc(b, ':');
    }
    epode__buf_puts(b, (const char *)localname);
    for (int i = 0; i < nb_ns; i++) {
        epode__buf_puts(b, ns[2 * i] ? " xmlns:" : " xmlns");
        if (ns[2 * i])
            epode__buf_puts(b, (const char *)ns[2 * i]);
        epode__buf_append(b, "=\"", 2);
        const char *u = ns[2 * i + 1] ? (const char *)ns[2 * i + 1] : "";
        put_attr_value(b, u, strlen(u));
        epode__buf_putc(b, '"');
    }
    for (int i = 0; i < nb_attrs; i++) {
        const xmlChar **a = attrs + 5 * i;
        epode__buf_putc(b, ' ');
        if (a[1]) {
            epode__buf_puts(b, (const char *)a[1]);
            epode__buf_putc(b, ':');
        }
        epode__buf_puts(b, (const char *)a[0]);
        epode__buf_append(b, "=\"", 2);
        put_attr_value(b, (const char *)a[3], (size_t)(a[4] - a[3]));
        epode__buf_putc(b, '"');
    }
    epode__buf_putc(b, '>');
}

static void deliver(epode_parser_t *p, epode_parser_event_t ev, epode_stanza_t *el)
{
    p->in_cb = 1;
    p->cb(p->user, ev, el);
    p->in_cb = 0;
}

/* ---- skipping ---------------------------------------------------------- */

static const char *const summary_names[] = {"from", "to", "id", "type"};

static const char *summary_name(const char *name)
{
    for (size_t i = 0; i < sizeof summary_names / sizeof summary_names[0]; i++)
        if (strcmp(name, summary_names[i]) == 0)
            return summary_names[i];
    return NULL;
}

/* The top element of a depth-1 element as libxml2 reports its start tag
 * (a new tree, or NULL when out of memory). */
static epode_stanza_t *top_new(epode_parser_t *p, size_t hint, const xmlChar *localname,
                               const xmlChar *prefix, const xmlChar *uri)
{
    epode_stanza_t *el = p->spare;
    p->spare = NULL;
    if (el && el->tree->size < hint) {
        epode_stanza_unref(el); /* too small: the new one becomes the spare */
        el = NULL;
    }
    if (!el && !(el = epode__tree_new_root(p->mem, hint)))
        return NULL;
    epode__tree *t = el->tree;
    if (!(el->name = name_str(p, t, localname)) || (uri && !(el->ns = uri_str(p, t, uri))) ||
        (prefix && !(el->prefix = name_str(p, t, prefix)))) {
        epode_stanza_unref(el);
        return NULL;
    }
    return el;
}

/* A summary from the skipped element's start tag, as libxml2 hands it. */
static epode_stanza_t *summary_from_tag(epode_parser_t *p, const xmlChar *localname,
                                        const xmlChar *prefix, const xmlChar *uri, int nb_attrs,
                                        const xmlChar **attrs)
{
    epode_stanza_t *s = top_new(p, 0, localname, prefix, uri);
    if (!s || epode__attrs_reserve(s, 4) < 0)
        goto fail;
    for (int i = 0; i < nb_attrs && s->nattrs < 4; i++) {
        const xmlChar **a = attrs + 5 * i;
        const char *name = a[2] ? NULL : summary_name((const char *)a[0]);
        if (!name || a[4] - a[3] > SUMMARY_VALUE_MAX)
            continue;
        epode__attr at = {name, NULL, NULL, attr_value(s->tree, a[3], a[4])};
        if (!at.value)
            goto fail;
        s->attrs[s->nattrs++] = at;
    }
    return s;
fail:
    epode_stanza_unref(s);
    return NULL;
}

/* A summary of a depth-1 element built so far. */
static epode_stanza_t *summary_from_tree(const epode_parser_t *p, const epode_stanza_t *root)
{
    epode_stanza_t *s = epode__tree_new(p->mem, 0, root->name, strlen(root->name), root->ns,
                                        root->prefix);
    if (!s || epode__attrs_reserve(s, 4) < 0)
        goto fail;
    for (uint32_t i = 0; i < root->nattrs && s->nattrs < 4; i++) {
        const epode__attr *a = &root->attrs[i];
        const char *name = a->ns ? NULL : summary_name(a->name);
        size_t len = name ? strlen(a->value) : 0;
        if (!name || len > SUMMARY_VALUE_MAX)
            continue;
        epode__attr at = {name, NULL, NULL, epode__arena_strndup(s->tree, a->value, len)};
        if (!at.value)
            goto fail;
        s->attrs[s->nattrs++] = at;
    }
    return s;
fail:
    epode_stanza_unref(s);
    return NULL;
}

static const char *limit_text(int limit)
{
    switch (limit) {
    case EPODE_LIMIT_DEPTH: return "elements nested too deeply";
    case EPODE_LIMIT_ATTRS: return "too many attributes on an element";
    case EPODE_LIMIT_TEXT_BYTES: return "too much text in a stanza";
    default: return "stanza too large";
    }
}

/* The depth-1 element being read broke `limit`: from here on only its
 * depth is followed. `summary` is what SKIPPED will report (taken over);
 * NULL makes it from the tree built so far, which is freed. A fragment
 * (epode_stanza_from_text) has no stream to stay in: it fails. */
static void start_skip(epode_parser_t *p, int limit, epode_stanza_t *summary)
{
    if (p->fragment) {
        epode_stanza_unref(summary);
        fail(p, EPODE_STREAM_POLICY_VIOLATION, limit_text(limit));
        return;
    }
    if (!summary && p->root)
        summary = summary_from_tree(p, p->root);
    epode_stanza_unref(p->root);
    p->root = p->cur = NULL;
    p->text_total = 0;
    if (!summary) {
        fail(p, EPODE_STREAM_RESOURCE_CONSTRAINT, "out of memory");
        return;
    }
    p->summary = summary;
    p->skip = limit;
}

/* ---- events ------------------------------------------------------------ */

/* After a depth-1 element ended at pos: honour a stop the callback asked
 * for, or replace the context if it has grown. */
static void element_done(epode_parser_t *p, unsigned long long pos, int grown)
{
    if (p->stopping) {
        p->stop_at = pos;
        return;
    }
    if (p->fragment || !p->ctxt->dict)
        return;
    if (grown || xmlDictSize(p->ctxt->dict) > DICT_REBUILD_ENTRIES ||
        xmlDictGetUsage(p->ctxt->dict) > DICT_REBUILD_BYTES) {
        p->stopping = STOP_REBUILD;
        p->stop_at = pos;
        xmlStopParser(p->ctxt);
    }
}

/* The skipped depth-1 element ended (well-formed) at pos. */
static void finish_skip(epode_parser_t *p, unsigned long long pos)
{
    int grown = pos - p->boundary > SKIP_REBUILD_BYTES;
    epode_stanza_t *s = p->summary;
    p->summary = NULL;
    p->skipped = p->skip;
    p->skip = 0;
    p->boundary = pos;
    deliver(p, EPODE_PARSER_SKIPPED, s);
    p->skipped = 0;
    epode_stanza_unref(s);
    element_done(p, pos, grown);
}

static void on_start(void *user, const xmlChar *localname, const xmlChar *prefix,
                     const xmlChar *uri, int nb_ns, const xmlChar **ns, int nb_attrs,
                     int nb_defaulted, const xmlChar **attrs)
{
    (void)nb_defaulted;
    epode_parser_t *p = user;
    if (p->cond || p->stopping)
        return;
    if (prefix && !uri) {
        fail(p, EPODE_STREAM_NOT_WELL_FORMED, "element prefix is not bound");
        return;
    }

    if (p->depth == 0 && !p->fragment) {
        /* The stream header: its limits are the stream's (checked when
         * it arrived, not when it is replayed under limits set since). */
        if ((size_t)nb_attrs > p->lim_attrs && !p->replaying) {
            fail(p, EPODE_STREAM_POLICY_VIOLATION, "too many attributes on the stream header");
            return;
        }
        if (strcmp((const char *)localname, "stream") != 0 || !uri ||
            strcmp((const char *)uri, EPODE_NS_STREAMS) != 0) {
            fail(p, EPODE_STREAM_INVALID_NAMESPACE, "the root element is not a stream");
            return;
        }
        save_header(p, localname, prefix, nb_ns, ns, nb_attrs, attrs);
        epode_stanza_t *hdr = epode__tree_new(p->mem, 0, (const char *)localname,
                                              strlen((const char *)localname),
                                              (const char *)uri, (const char *)prefix);
        if (p->header.failed || !hdr || add_attrs(p, hdr, nb_attrs, attrs) < 0) {
            epode_stanza_unref(hdr);
            fail(p, EPODE_STREAM_RESOURCE_CONSTRAINT, "out of memory");
            return;
        }
        p->depth = 1;
        p->stream_open = 1;
        p->boundary = position(p) + 1; /* the '>' is not consumed yet */
        if (p->boundary - 1 > p->lim_bytes && !p->replaying) {
            epode_stanza_unref(hdr);
            fail(p, EPODE_STREAM_POLICY_VIOLATION, "stream header too large");
            return;
        }
        if (!p->replaying) {
            deliver(p, EPODE_PARSER_STREAM_OPEN, hdr);
            if (p->stopping)
                p->stop_at = p->boundary;
        }
        epode_stanza_unref(hdr);
        return;
    }

    int sd = stanza_depth(p);
    if (p->ctxt->dict && xmlDictSize(p->ctxt->dict) > DICT_MAX_ENTRIES) {
        fail(p, EPODE_STREAM_POLICY_VIOLATION, "too many distinct names in one element");
        return;
    }
    if (p->skip) {
        if ((size_t)sd + 1 > skip_depth_max(p)) {
            fail(p, EPODE_STREAM_POLICY_VIOLATION, "elements nested too deeply to skip");
            return;
        }
        p->depth++;
        return;
    }
    int limit = 0;
    if ((size_t)nb_attrs > p->lim_attrs)
        limit = EPODE_LIMIT_ATTRS;
    else if ((size_t)sd + 1 > p->lim_depth)
        limit = EPODE_LIMIT_DEPTH;
    else if (position(p) + 1 - p->boundary > p->lim_bytes) /* up to the '>' */
        limit = EPODE_LIMIT_STANZA_BYTES;
    if (limit) {
        epode_stanza_t *s = NULL;
        if (sd == 0 && !p->fragment &&
            !(s = summary_from_tag(p, localname, prefix, uri, nb_attrs, attrs))) {
            fail(p, EPODE_STREAM_RESOURCE_CONSTRAINT, "out of memory");
            return;
        }
        start_skip(p, limit, s);
        p->depth++;
        return;
    }

    epode_stanza_t *el;
    if (sd == 0) {
        el = top_new(p, p->tree_hint, localname, prefix, uri);
        if (!el) {
            fail(p, EPODE_STREAM_RESOURCE_CONSTRAINT, "out of memory");
            return;
        }
        p->root = el;
        p->text_total = 0;
    } else {
        epode__tree *t = p->cur->tree;
        const char *name = name_str(p, t, localname);
        /* Children usually share their parent's namespace and prefix. */
        const char *nsv = NULL;
        size_t len;
        if (uri && !(nsv = known(p, uri, &len)))
            nsv = p->cur->ns && strcmp(p->cur->ns, (const char *)uri) == 0 ? p->cur->ns
                                                                            : uri_copy(t, uri);
        const char *pv = prefix ? name_str(p, t, prefix) : NULL;
        el = name && (!uri || nsv) && (!prefix || pv) ? epode__elem_append(p->cur, name, nsv, pv)
                                                      : NULL;
        if (!el) {
            fail(p, EPODE_STREAM_RESOURCE_CONSTRAINT, "out of memory");
            return;
        }
    }
    if (add_attrs(p, el, nb_attrs, attrs) < 0) {
        fail(p, EPODE_STREAM_RESOURCE_CONSTRAINT, "out of memory");
        return;
    }
    p->cur = el;
    p->depth++;
}

static void on_end(void *user, const xmlChar *localname, const xmlChar *prefix, const xmlChar *uri)
{
    (void)localname, (void)prefix, (void)uri;
    epode_parser_t *p = user;
    if (p->cond || p->stopping)
        return;
    int sd = stanza_depth(p);
    if (sd <= 0) {
        /* </stream:stream> */
        p->depth = 0;
        p->stream_open = 0;
        p->boundary = position(p);
        deliver(p, EPODE_PARSER_STREAM_CLOSE, NULL);
        if (p->stopping)
            p->stop_at = position(p);
        return;
    }
    if (p->skip) {
        p->depth--;
        if (sd == 1)
            finish_skip(p, position(p));
        return;
    }
    p->depth--;
    if (sd > 1) {
        p->cur = p->cur->parent;
        return;
    }
    /* A complete depth-1 element. */
    epode_stanza_t *st = p->root;
    unsigned long long pos = position(p);
    if (pos - p->boundary > p->lim_bytes) {
        start_skip(p, EPODE_LIMIT_STANZA_BYTES, NULL);
        if (p->skip)
            finish_skip(p, pos);
        return;
    }
    p->root = p->cur = NULL;
    p->boundary = pos;
    size_t used = epode__tree_used(st);
    p->tree_hint = used > TREE_HINT_MAX ? TREE_HINT_MAX : (used + 63) & ~(size_t)63;
    deliver(p, EPODE_PARSER_STANZA, st);
    if (!p->spare)
        p->spare = epode__tree_reuse(st);
    else
        epode_stanza_unref(st);
    element_done(p, pos, 0);
}

static void on_characters(void *user, const xmlChar *ch, int len)
{
    epode_parser_t *p = user;
    if (p->cond || p->stopping)
        return;
    if (stanza_depth(p) <= 0) {
        /* Between stanzas only whitespace (keepalives) may appear. */
        for (int i = 0; i < len; i++)
            if (ch[i] != ' ' && ch[i] != '\t' && ch[i] != '\n' && ch[i] != '\r') {
                fail(p, EPODE_STREAM_BAD_FORMAT, "text outside any stanza");
                return;
            }
        return;
    }
    if (p->skip)
        return;
    p->text_total += (size_t)len;
    if (p->text_total > p->lim_text) {
        start_skip(p, EPODE_LIMIT_TEXT_BYTES, NULL);
        return;
    }
    if (len > 0 && epode__text_append_run(p->cur, (const char *)ch, (size_t)len) < 0)
        fail(p, EPODE_STREAM_RESOURCE_CONSTRAINT, "out of memory"); /* never lose text */
}

/* libxml2 checks the encoding of ordinary character data but not of CDATA
 * sections (2.9.14 passes overlong and truncated sequences through), so
 * CDATA is checked here before it becomes text. */
static void on_cdata(void *user, const xmlChar *ch, int len)
{
    epode_parser_t *p = user;
    if (!epode__xml_text_ok((const char *)ch, (size_t)len)) {
        fail(p, EPODE_STREAM_NOT_WELL_FORMED, "invalid UTF-8 or character in CDATA");
        return;
    }
    on_characters(user, ch, len);
}

/* ---- contexts ----------------------------------------------------------- */

static xmlSAXHandler sax_handler(void)
{
    xmlSAXHandler s;
    memset(&s, 0, sizeof s);
    s.initialized = XML_SAX2_MAGIC;
    s.startElementNs = on_start;
    s.endElementNs = on_end;
    s.characters = on_characters;
    s.cdataBlock = on_cdata;
    s.ignorableWhitespace = on_characters;
    s.serror = on_serror;
    s.internalSubset = on_internal_subset;
    s.externalSubset = on_internal_subset;
    s.entityDecl = on_entity_decl;
    s.unparsedEntityDecl = on_unparsed_entity;
    s.notationDecl = on_notation_decl;
    s.attributeDecl = on_attribute_decl;
    s.elementDecl = on_element_decl;
    s.comment = on_comment;
    s.processingInstruction = on_pi;
    s.reference = on_reference;
    s.getEntity = on_get_entity;
    s.getParameterEntity = on_get_entity;
    return s;
}

static void context_free(epode_parser_t *p)
{
    if (p->ctxt)
        xmlFreeParserCtxt(p->ctxt);
    p->ctxt = NULL;
    epode__dealloc(p->mem, p->names);
    p->names = NULL;
}

static int context_new(epode_parser_t *p)
{
    xmlSAXHandler s = sax_handler();
    struct name_slot *names = epode__zalloc(p->mem, NAME_SLOTS * sizeof *names);
    if (!names)
        return EPODE_ENOMEM;
    xmlParserCtxtPtr c = xmlCreatePushParserCtxt(&s, p, NULL, 0, NULL);
    if (!c) {
        epode__dealloc(p->mem, names);
        return EPODE_ENOMEM;
    }
    xmlCtxtUseOptions(c, XML_PARSE_NONET | XML_PARSE_IGNORE_ENC | XML_PARSE_NOWARNING);
    /* No line numbers to keep: we never report them. */
    c->linenumbers = 0;
    /* (replaces libxml2's own 10 MB, reached only after a 16 MB pool) */
    if (c->dict)
        xmlDictSetLimit(c->dict, dict_max(p));
    context_free(p);
    p->ctxt = c;
    p->names = names;
    p->fed = p->boundary = p->piece_at = 0;
    return 0;
}

static void clear_state(epode_parser_t *p)
{
    epode_stanza_unref(p->root);
    p->root = p->cur = NULL;
    epode_stanza_unref(p->summary);
    p->summary = NULL;
    p->skip = p->skipped = 0;
    p->depth = 0;
    p->text_total = 0;
    p->stream_open = 0;
    p->partial = 0;
    p->stopping = STOP_NONE;
    p->cond = EPODE_STREAM_NONE;
    p->errtext[0] = '\0';
}

int epode__parser_new(const epode_mem_t *mem, epode_parser_cb cb, void *user, int fragment,
                      epode_parser_t **out)
{
    if (!cb || !out)
        return EPODE_EINVAL;
    epode_parser_t *p = epode__zalloc(mem, sizeof *p);
    if (!p)
        return EPODE_ENOMEM;
    p->mem = mem;
    p->cb = cb;
    p->user = user;
    p->fragment = fragment;
    p->lim_bytes = DEFAULT_BYTES;
    p->lim_depth = DEFAULT_DEPTH;
    p->lim_attrs = DEFAULT_ATTRS;
    p->lim_text = DEFAULT_BYTES;
    epode__buf_init(&p->header, mem);
    if (context_new(p) < 0) {
        epode__dealloc(mem, p);
        return EPODE_ENOMEM;
    }
    *out = p;
    return 0;
}

int epode_parser_new(const epode_mem_t *mem, epode_parser_cb cb, void *user,
                     epode_parser_t **out)
{
    return epode__parser_new(mem, cb, user, 0, out);
}

void epode_parser_free(epode_parser_t *p)
{
    if (!p)
        return;
    epode_stanza_unref(p->root);
    epode_stanza_unref(p->summary);
    epode_stanza_unref(p->spare);
    context_free(p);
    epode__buf_free(&p->header);
    epode__dealloc(p->mem, p);
}

int epode_parser_set_limit(epode_parser_t *p, epode_parser_limit_t limit, size_t value)
{
    if (!p || value == 0)
        return EPODE_EINVAL;
    switch (limit) {
    case EPODE_LIMIT_STANZA_BYTES:
        p->lim_bytes = value;
        if (p->ctxt && p->ctxt->dict)
            xmlDictSetLimit(p->ctxt->dict, dict_max(p));
        return 0;
    case EPODE_LIMIT_DEPTH: p->lim_depth = value; return 0;
    case EPODE_LIMIT_ATTRS: p->lim_attrs = value; return 0;
    case EPODE_LIMIT_TEXT_BYTES: p->lim_text = value; return 0;
    }
    return EPODE_EINVAL;
}

static int error_code(const epode_parser_t *p)
{
    return p->cond == EPODE_STREAM_POLICY_VIOLATION ? EPODE_ELIMIT : EPODE_EXML;
}

/* A fresh libxml2 context in the middle of a stream: replay the header
 * (without reporting it again) so namespaces stay bound. */
static int rebuild(epode_parser_t *p)
{
    epode__buf hdr = p->header;
    int rc = context_new(p);
    if (rc < 0)
        return rc;
    p->rebuilds++;
    p->stopping = STOP_NONE;
    p->partial = 0; /* at a boundary: whatever follows is fed again */
    p->depth = 0;
    p->replaying = 1;
    p->fed = hdr.len;
    xmlParseChunk(p->ctxt, hdr.data, (int)hdr.len, 0);
    p->replaying = 0;
    return p->cond ? error_code(p) : 0;
}

static int do_reset(epode_parser_t *p)
{
    int rc = context_new(p);
    clear_state(p);
    p->header.len = 0;
    p->header.failed = 0;
    return rc;
}

/* Whether the input so far ends inside an element: needed to tell a
 * stream cut mid-stanza from one that merely stopped between stanzas. */
static void note_partial(epode_parser_t *p, const char *piece, size_t n)
{
    if (p->depth > (p->fragment ? 0 : 1) || p->root) {
        p->partial = 1;
        return;
    }
    if (p->boundary < p->piece_at) {
        if (p->partial)
            return;
    } else {
        p->partial = 0;
    }
    unsigned long long from = p->boundary > p->piece_at ? p->boundary : p->piece_at;
    for (size_t i = (size_t)(from - p->piece_at); i < n; i++)
        if (piece[i] != ' ' && piece[i] != '\t' && piece[i] != '\n' && piece[i] != '\r') {
            p->partial = 1;
            return;
        }
}

/* The byte limits, counted where bytes go in: libxml2 reports nothing
 * of a start tag until its '>' arrives, and holds it whole until then. */
static int check_bytes(epode_parser_t *p)
{
    if (p->fragment || p->depth == 0) {
        /* a fragment's only element, or the stream header */
        if (p->fed - p->boundary > p->lim_bytes) {
            fail(p, EPODE_STREAM_POLICY_VIOLATION,
                 p->fragment ? "stanza too large" : "stream header too large");
            return -1;
        }
        return 0;
    }
    unsigned long long pos = position(p);
    if (p->depth == 1 && !p->root && !p->skip && pos > p->boundary)
        p->boundary = pos; /* between stanzas only whitespace is consumed */
    if (p->skip) {
        if (p->fed - p->boundary > skip_bytes_max(p)) {
            fail(p, EPODE_STREAM_POLICY_VIOLATION, "stanza too large to skip");
            return -1;
        }
    } else if (p->root && p->fed - p->boundary > p->lim_bytes) {
        start_skip(p, EPODE_LIMIT_STANZA_BYTES, NULL);
        if (p->cond)
            return -1;
    }
    /* A start tag not yet parsed (whether or not it begins a stanza). */
    if (p->fed - pos > hold_max(p)) {
        fail(p, EPODE_STREAM_POLICY_VIOLATION, "start tag too large to skip");
        return -1;
    }
    return 0;
}

static void drop_spare(epode_parser_t *p)
{
    epode_stanza_unref(p->spare);
    p->spare = NULL;
}

static long feed(epode_parser_t *p, const char *data, size_t len);

long epode_parser_feed(epode_parser_t *p, const char *data, size_t len)
{
    if (!p || (!data && len))
        return EPODE_EINVAL;
    if (p->in_cb)
        return EPODE_ESTATE;
    long rc = feed(p, data, len);
    drop_spare(p);
    return rc;
}

static long feed(epode_parser_t *p, const char *data, size_t len)
{
    if (p->cond)
        return error_code(p);
    if (!p->ctxt && len > 0) {
        /* compacted while idle: a fresh context, the header replayed */
        int r = rebuild(p);
        if (r < 0)
            return r;
    }
    size_t off = 0;
    while (off < len) {
        size_t piece = len - off < PIECE ? len - off : PIECE;
        p->piece_at = p->fed;
        p->fed += piece;
        int rc = xmlParseChunk(p->ctxt, data + off, (int)piece, 0);
        off += piece;
        if (p->cond)
            return error_code(p);
        if (p->stopping) {
            /* The bytes after the stop point: some of this piece plus
             * everything not yet handed over. */
            unsigned long long left = p->fed - p->stop_at;
            if (left > piece)
                left = piece;
            size_t rest = (size_t)left + (len - off);
            if (p->stopping == STOP_REBUILD) {
                int r = rebuild(p);
                if (r < 0)
                    return r;
                off = len - rest;
                continue;
            }
            int r = do_reset(p);
            return r < 0 ? r : (long)rest;
        }
        if (rc != 0) {
            fail(p, EPODE_STREAM_NOT_WELL_FORMED, "malformed XML");
            return error_code(p);
        }
        note_partial(p, data + off - piece, piece);
        if (check_bytes(p) < 0)
            return error_code(p);
    }
    return 0;
}

int epode_parser_finish(epode_parser_t *p)
{
    if (!p)
        return EPODE_EINVAL;
    if (p->in_cb)
        return EPODE_ESTATE;
    if (p->cond)
        return error_code(p);
    if (!p->fragment) {
        if (p->partial) {
            fail(p, EPODE_STREAM_NOT_WELL_FORMED, "input ended inside an element");
            return error_code(p);
        }
        return 0;
    }
    int rc = xmlParseChunk(p->ctxt, NULL, 0, 1);
    drop_spare(p);
    if (p->cond)
        return error_code(p);
    if (rc != 0) {
        fail(p, EPODE_STREAM_NOT_WELL_FORMED, "malformed XML");
        return error_code(p);
    }
    return 0;
}

int epode_parser_reset(epode_parser_t *p)
{
    if (!p)
        return EPODE_EINVAL;
    if (p->in_cb) {
        p->stopping = STOP_RESET;
        xmlStopParser(p->ctxt);
        return 0;
    }
    return do_reset(p);
}

int epode__parser_compact(epode_parser_t *p)
{
    /* Only between stanzas of an open stream, with nothing half-read:
     * then nothing but the saved header is needed to start again. */
    if (!p->ctxt || p->in_cb || p->fragment || p->cond || p->stopping || !p->stream_open ||
        p->depth != 1 || p->root || p->skip || p->partial || p->header.len == 0)
        return EPODE_ESTATE;
    context_free(p);
    return 0;
}

epode_stream_cond_t epode_parser_condition(const epode_parser_t *p)
{
    return p ? p->cond : EPODE_STREAM_NONE;
}

const char *epode_parser_error_text(const epode_parser_t *p)
{
    return p ? p->errtext : "";
}

int epode_parser_stream_is_open(const epode_parser_t *p)
{
    return p ? p->stream_open : 0;
}

epode_parser_limit_t epode_parser_skipped_limit(const epode_parser_t *p)
{
    return p ? (epode_parser_limit_t)p->skipped : (epode_parser_limit_t)0;
}

unsigned epode__parser_rebuilds(const epode_parser_t *p)
{
    return p->rebuilds;
}

size_t epode__parser_dict_bytes(const epode_parser_t *p)
{
    return p->ctxt && p->ctxt->dict ? xmlDictGetUsage(p->ctxt->dict) : 0;
}
