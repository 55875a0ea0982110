/* lib/xml/serialize.c — writes element trees as XML: escaping for text and
 * attribute values, and namespace declarations only where the element's
 * context does not already bind what it uses. Never allocates beyond the
 * output buffer; never fails halfway silently (buffer's failed flag). */
#include "serialize.h"

#include <string.h>

#include "stanza/stanza_int.h"

/* Namespace bindings in scope while writing, one link per element that
 * declared something (on the C stack). */
typedef struct scope {
    const struct scope *up;
    const char *prefix; /* NULL: the default namespace */
    const char *uri;
} scope;

static int str_eq(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

/* What `prefix` (NULL: default) is bound to in scope; NULL if unbound. */
static const char *lookup(const scope *s, const char *prefix)
{
    for (; s; s = s->up)
        if (str_eq(s->prefix, prefix))
            return s->uri;
    return NULL;
}

/* 0: copy as is; otherwise the byte needs a replacement. Text escapes
 * & < > and CR (a raw CR would be normalized away by the reader); LF
 * only in one-line mode. Attributes also escape " and tab/LF/CR, which
 * attribute-value normalization would turn into spaces. */
enum { ESC_TEXT = 1, ESC_LF = 2, ESC_ATTR = 4 };
static const unsigned char esc_class[256] = {
    ['&'] = ESC_TEXT | ESC_ATTR, ['<'] = ESC_TEXT | ESC_ATTR, ['>'] = ESC_TEXT | ESC_ATTR,
    ['\r'] = ESC_TEXT | ESC_ATTR, ['\n'] = ESC_LF | ESC_ATTR, ['"'] = ESC_ATTR,
    ['\t'] = ESC_ATTR,
};

static const char *replacement(unsigned char c)
{
    switch (c) {
    case '&': return "&amp;";
    case '<': return "&lt;";
    case '>': return "&gt;";
    case '"': return "&quot;";
    case '\r': return "&#13;";
    case '\n': return "&#10;";
    case '\t': return "&#9;";
    }
    return "";
}

static void escape(epode__buf *b, const char *s, size_t len, unsigned mask)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t run = 0;
    for (size_t i = 0; i < len; i++) {
        if (!(esc_class[p[i]] & mask))
            continue;
        epode__buf_append(b, s + run, i - run);
        epode__buf_puts(b, replacement(p[i]));
        run = i + 1;
    }
    epode__buf_append(b, s + run, len - run);
}

/* The same for a NUL-terminated s (s[len] == 0, as every string in a
 * tree is): strcspn finds the next special byte many bytes at a time. */
static void escape_z(epode__buf *b, const char *s, size_t len, const char *specials)
{
    size_t i = 0;
    while (i < len) {
        size_t run = strcspn(s + i, specials);
        if (run > len - i)
            run = len - i;
        epode__buf_append(b, s + i, run);
        i += run;
        if (i < len) {
            epode__buf_puts(b, replacement((unsigned char)s[i]));
            i++;
        }
    }
}

#define TEXT_SPECIALS "&<>\r"
#define TEXT_SPECIALS_ONE_LINE "&<>\r\n"
#define ATTR_SPECIALS "&<>\"\t\n\r"

void epode__escape_text(epode__buf *b, const char *s, size_t len, int one_line)
{
    escape(b, s, len, ESC_TEXT | (one_line ? ESC_LF : 0));
}

void epode__escape_attr(epode__buf *b, const char *s, size_t len)
{
    escape(b, s, len, ESC_ATTR);
}

static void put_qname(epode__buf *b, const char *prefix, const char *name)
{
    if (prefix) {
        epode__buf_puts(b, prefix);
        epode__buf_putc(b, ':');
    }
    epode__buf_puts(b, name);
}

static void put_decl(epode__buf *b, const char *prefix, const char *uri)
{
    epode__buf_puts(b, prefix ? " xmlns:" : " xmlns");
    if (prefix)
        epode__buf_puts(b, prefix);
    epode__buf_append(b, "=\"", 2);
    epode__escape_attr(b, uri ? uri : "", uri ? strlen(uri) : 0);
    epode__buf_putc(b, '"');
}

#define MAX_DECLS 8

/* Whether an attribute before the i-th one on el has the same prefix and
 * namespace, so the i-th one's declaration is already written. Needed
 * only once decls[] is full and stops recording what was declared. */
static int declared_earlier(const epode_stanza_t *el, uint32_t i)
{
    const epode__attr *a = &el->attrs[i];
    for (uint32_t j = 0; j < i; j++)
        if (el->attrs[j].ns && str_eq(el->attrs[j].prefix, a->prefix) &&
            str_eq(el->attrs[j].ns, a->ns))
            return 1;
    return 0;
}

static void write_element(epode__buf *b, const epode_stanza_t *el, const scope *up,
                          unsigned flags, int is_top)
{
    scope decls[MAX_DECLS];
    int nd = 0;
    const scope *sc = up;

    /* A prefix means nothing without a namespace to bind it to. */
    const char *prefix = el->ns ? el->prefix : NULL;
    epode__buf_putc(b, '<');
    put_qname(b, prefix, el->name);

    /* The element's own namespace. A NULL namespace inherits whatever is
     * in scope (a root built without one), unless the parent was in a
     * namespace: then it was written xmlns="" and must be again. */
    if (el->ns && !str_eq(lookup(sc, prefix), el->ns)) {
        put_decl(b, prefix, el->ns);
        decls[nd] = (scope){sc, prefix, el->ns};
        sc = &decls[nd++];
    } else if (!el->ns && !is_top && el->parent && el->parent->ns && lookup(sc, NULL)) {
        put_decl(b, NULL, NULL);
        decls[nd] = (scope){sc, NULL, NULL};
        sc = &decls[nd++];
    }
    /* Namespaced attributes need their prefix bound too ("xml" always is). */
    for (uint32_t i = 0; i < el->nattrs; i++) {
        const epode__attr *a = &el->attrs[i];
        if (!a->ns || !a->prefix || strcmp(a->prefix, "xml") == 0)
            continue;
        if (str_eq(lookup(sc, a->prefix), a->ns))
            continue;
        if (nd == MAX_DECLS && declared_earlier(el, i))
            continue;
        put_decl(b, a->prefix, a->ns);
        if (nd < MAX_DECLS) {
            decls[nd] = (scope){sc, a->prefix, a->ns};
            sc = &decls[nd++];
        }
    }
    for (uint32_t i = 0; i < el->nattrs; i++) {
        const epode__attr *a = &el->attrs[i];
        epode__buf_putc(b, ' ');
        put_qname(b, a->ns ? a->prefix : NULL, a->name);
        epode__buf_append(b, "=\"", 2);
        escape_z(b, a->value, strlen(a->value), ATTR_SPECIALS);
        epode__buf_putc(b, '"');
    }
    if (!el->first) {
        epode__buf_append(b, "/>", 2);
        return;
    }
    epode__buf_putc(b, '>');
    for (const epode_stanza_t *c = el->first; c; c = c->next) {
        if (c->kind == EPODE__TEXT)
            escape_z(b, c->text, c->len,
                     (flags & EPODE_TEXT_ONE_LINE) ? TEXT_SPECIALS_ONE_LINE : TEXT_SPECIALS);
        else
            write_element(b, c, sc, flags, 0);
    }
    epode__buf_append(b, "</", 2);
    put_qname(b, prefix, el->name);
    epode__buf_putc(b, '>');
}

void epode__serialize(epode__buf *b, const epode_stanza_t *el, unsigned flags)
{
    static const scope stream_default = {NULL, NULL, EPODE_NS_CLIENT};
    static const scope stream_prefix = {&stream_default, "stream", EPODE_NS_STREAMS};
    write_element(b, el, (flags & EPODE_TEXT_IN_STREAM) ? &stream_prefix : NULL, flags, 1);
}
