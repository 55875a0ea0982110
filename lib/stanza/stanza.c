/* lib/stanza/stanza.c — the element tree: arena, reference count, nodes,
 * attributes, text, children, copy and equality. Data only: this file
 * knows no bytes on a wire and no XML syntax beyond name validity. */
#include "stanza_int.h"

#include <string.h>
#include <stdalign.h>

#include "util/alloc.h"
#include "util/utf8.h"

/* ---- arena ---------------------------------------------------------- */

#define ALIGN_UP(n) (((n) + (alignof(max_align_t) - 1)) & ~(size_t)(alignof(max_align_t) - 1))
#define FIRST_BLOCK_MIN 512
#define BLOCK_MAX 65536

static size_t tree_hdr_size(void)
{
    return ALIGN_UP(sizeof(epode__tree));
}

static int arena_grow(epode__tree *t, size_t need)
{
    size_t size = t->next_block;
    size_t hdr = ALIGN_UP(sizeof(epode__block));
    if (size < need + hdr)
        size = need + hdr;
    epode__block *b = epode__alloc(t->mem, size);
    if (!b)
        return -1;
    b->next = t->blocks;
    t->blocks = b;
    t->cur = (char *)b + hdr;
    t->left = size - hdr;
    t->size += size - hdr;
    t->tail = NULL;
    if (t->next_block < BLOCK_MAX)
        t->next_block *= 2;
    return 0;
}

/* Nodes and arrays are aligned where they start (strings before them
 * are packed, and a block's storage starts aligned). */
void *epode__arena_alloc(epode__tree *t, size_t size)
{
    size = ALIGN_UP(size ? size : 1);
    size_t pad = (size_t)(-(uintptr_t)t->cur) & (alignof(max_align_t) - 1);
    if (size + pad > t->left) {
        if (arena_grow(t, size) < 0)
            return NULL;
        pad = 0;
    }
    void *p = t->cur + pad;
    t->cur += pad + size;
    t->left -= pad + size;
    t->tail = NULL;
    return p;
}

/* Strings need no alignment: pack them. t->tail marks where the latest
 * one ends, as long as nothing follows it. */
static char *arena_bytes(epode__tree *t, size_t size)
{
    if (size > t->left && arena_grow(t, size) < 0)
        return NULL;
    char *p = t->cur;
    t->cur += size;
    t->left -= size;
    t->tail = t->cur;
    return p;
}

const char *epode__arena_strndup(epode__tree *t, const char *s, size_t len)
{
    char *p = arena_bytes(t, len + 1);
    if (!p)
        return NULL;
    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

/* Names and namespaces that nearly every stanza carries. Mapping them to
 * static strings saves a copy each and lets comparisons hit on pointer
 * equality. Sorted by nothing: looked up by length first. */
static const char *const interned[] = {
    "message", "presence", "iq", "body", "subject", "thread", "error", "text",
    "show", "status", "priority", "query", "item", "x", "c", "id", "to", "from",
    "type", "lang", "xml", "stream", "features", "active", "composing", "paused",
    "inactive", "gone", "delay", "stamp", "ping", "bind", "jid", "resource",
    "origin-id", "stanza-id", "by", "request", "received", "r", "a", "h",
    "name", "node", "ver", "hash", "jabber:client", "jabber:iq:roster",
    EPODE_NS_STREAMS, EPODE_NS_STANZAS, EPODE_NS_STREAM_ERRORS, EPODE_NS_XML,
    "http://jabber.org/protocol/chatstates", "http://jabber.org/protocol/caps",
    "http://jabber.org/protocol/disco#info", "http://jabber.org/protocol/disco#items",
    "http://jabber.org/protocol/muc", "http://jabber.org/protocol/muc#user",
    "urn:xmpp:delay", "urn:xmpp:ping", "urn:xmpp:receipts", "urn:xmpp:sid:0",
    "urn:xmpp:sm:3", "urn:xmpp:carbons:2", "urn:xmpp:forward:0",
    "urn:ietf:params:xml:ns:xmpp-bind", "urn:ietf:params:xml:ns:xmpp-sasl",
    "urn:ietf:params:xml:ns:xmpp-tls", "urn:ietf:params:xml:ns:xmpp-session",
};

#define N_INTERNED (sizeof interned / sizeof interned[0])
#define INTERN_MAXLEN 40
/* interned[] indices grouped by length: by_len[first[n] .. first[n+1]) */
static unsigned char by_len[N_INTERNED];
static unsigned char first[INTERN_MAXLEN + 2];
static int intern_ready;

static void intern_init(void)
{
    size_t k = 0;
    for (size_t n = 0; n <= INTERN_MAXLEN; n++) {
        first[n] = (unsigned char)k;
        for (size_t i = 0; i < N_INTERNED; i++)
            if (strlen(interned[i]) == n)
                by_len[k++] = (unsigned char)i;
    }
    first[INTERN_MAXLEN + 1] = (unsigned char)k;
    /* Threads racing here compute identical tables; the release store
     * makes them visible before the flag. */
    __atomic_store_n(&intern_ready, 1, __ATOMIC_RELEASE);
}

const char *epode__intern(const char *s, size_t len)
{
    if (len > INTERN_MAXLEN || len == 0)
        return NULL;
    if (!__atomic_load_n(&intern_ready, __ATOMIC_ACQUIRE))
        intern_init();
    for (size_t k = first[len]; k < first[len + 1]; k++) {
        const char *c = interned[by_len[k]];
        if (c[0] == s[0] && memcmp(c, s, len) == 0)
            return c;
    }
    return NULL;
}

const char *epode__arena_str(epode__tree *t, const char *s, size_t len)
{
    const char *st = epode__intern(s, len);
    return st ? st : epode__arena_strndup(t, s, len);
}

static void tree_free(epode__tree *t)
{
    epode__block *b = t->blocks;
    const epode_mem_t *mem = t->mem;
    while (b) {
        epode__block *n = b->next;
        epode__dealloc(mem, b);
        b = n;
    }
    epode__dealloc(mem, t);
}

static epode_stanza_t *node_new(epode__tree *t, uint8_t kind)
{
    epode_stanza_t *n = epode__arena_alloc(t, sizeof *n);
    if (!n)
        return NULL;
    /* Field by field: a memset of the whole node compiles to "rep stos",
     * whose start-up cost made this the parser's hottest line. */
    n->tree = t;
    n->parent = n->next = n->prev = n->first = n->last = NULL;
    n->name = n->ns = n->prefix = NULL;
    n->attrs = NULL;
    n->text = NULL;
    n->len = 0;
    n->nattrs = n->attr_cap = 0;
    n->kind = kind;
    return n;
}

static const char *str_in_tree(epode__tree *t, const char *s)
{
    return s ? epode__arena_str(t, s, strlen(s)) : NULL;
}

epode_stanza_t *epode__tree_new_root(const epode_mem_t *mem, size_t hint)
{
    if (hint < FIRST_BLOCK_MIN)
        hint = FIRST_BLOCK_MIN;
    size_t hdr = tree_hdr_size();
    if (hint > SIZE_MAX - hdr)
        return NULL;
    epode__tree *t = epode__alloc(mem, hdr + hint);
    if (!t)
        return NULL;
    t->refs = 1;
    t->mem = mem;
    t->blocks = NULL;
    t->cur = (char *)t + hdr;
    t->left = hint;
    t->size = hint;
    t->tail = NULL;
    t->next_block = hint * 2 > 1024 ? hint * 2 : 1024;
    if (t->next_block > BLOCK_MAX)
        t->next_block = BLOCK_MAX;
    epode_stanza_t *root = node_new(t, EPODE__ELEMENT);
    if (!root)
        tree_free(t); /* (a first block always has room for one node) */
    return root;
}

epode_stanza_t *epode__tree_reuse(epode_stanza_t *root)
{
    epode__tree *t = root->tree;
    size_t hdr = tree_hdr_size();
    if (t->refs != 1 || t->blocks || (char *)root != (char *)t + hdr) {
        epode_stanza_unref(root);
        return NULL;
    }
    t->cur = (char *)t + hdr;
    t->left = t->size;
    t->tail = NULL;
    t->next_block = t->size * 2 > 1024 ? t->size * 2 : 1024;
    if (t->next_block > BLOCK_MAX)
        t->next_block = BLOCK_MAX;
    return node_new(t, EPODE__ELEMENT); /* (root's own place: cannot fail) */
}

size_t epode__tree_used(const epode_stanza_t *el)
{
    return el->tree->size - el->tree->left;
}

epode_stanza_t *epode__tree_new(const epode_mem_t *mem, size_t hint, const char *name,
                                size_t name_len, const char *ns, const char *prefix)
{
    epode_stanza_t *root = epode__tree_new_root(mem, hint);
    if (!root)
        return NULL;
    epode__tree *t = root->tree;
    if (!(root->name = epode__arena_str(t, name, name_len)))
        goto fail;
    if (ns && !(root->ns = str_in_tree(t, ns)))
        goto fail;
    if (prefix && !(root->prefix = str_in_tree(t, prefix)))
        goto fail;
    return root;
fail:
    tree_free(t);
    return NULL;
}

/* ---- life cycle ----------------------------------------------------- */

static int name_ok(const char *name)
{
    if (!name)
        return 0;
    size_t len = strlen(name);
    /* The interned names are all valid NCNames (namespace URIs among
     * them are not, but contain ':' and so never equal a name). */
    const char *st = epode__intern(name, len);
    if (st && !strchr(st, ':'))
        return 1;
    return epode__xml_ncname_ok(name, len);
}

#define NS_XMLNS "http://www.w3.org/2000/xmlns/"

/* A namespace name XML lets us write: valid text, and not one of the two
 * reserved ones (the XML namespace is only ever bound to "xml"). */
static int ns_ok(const char *ns)
{
    size_t len = strlen(ns);
    if (strcmp(ns, NS_XMLNS) == 0 || strcmp(ns, EPODE_NS_XML) == 0)
        return 0;
    return epode__intern(ns, len) || epode__xml_text_ok(ns, len);
}

static int str_eq(const char *a, const char *b);

/* 1 if `prefix` is already used on `el` (by the element itself or by an
 * attribute other than `skip`) for a namespace other than `ns`. */
static int prefix_clash(const epode_stanza_t *el, const char *prefix, const char *ns,
                        const epode__attr *skip)
{
    if (el->prefix && strcmp(el->prefix, prefix) == 0 && !str_eq(el->ns, ns))
        return 1;
    for (uint32_t i = 0; i < el->nattrs; i++) {
        const epode__attr *a = &el->attrs[i];
        if (a != skip && a->prefix && strcmp(a->prefix, prefix) == 0 && !str_eq(a->ns, ns))
            return 1;
    }
    return 0;
}

int epode_stanza_new(const epode_mem_t *mem, const char *name, const char *ns,
                     epode_stanza_t **out)
{
    if (!out || !name_ok(name))
        return EPODE_EINVAL;
    if (ns && !*ns)
        ns = NULL; /* "" is no namespace */
    if (ns && !ns_ok(ns))
        return EPODE_EINVAL;
    epode_stanza_t *el = epode__tree_new(mem, 0, name, strlen(name), ns, NULL);
    if (!el)
        return EPODE_ENOMEM;
    *out = el;
    return 0;
}

epode_stanza_t *epode_stanza_ref(epode_stanza_t *el)
{
    if (el)
        el->tree->refs++;
    return el;
}

void epode_stanza_unref(epode_stanza_t *el)
{
    if (!el)
        return;
    epode__tree *t = el->tree;
    if (--t->refs == 0)
        tree_free(t);
}

/* ---- names ---------------------------------------------------------- */

const char *epode_stanza_get_name(const epode_stanza_t *el) { return el ? el->name : NULL; }
const char *epode_stanza_get_ns(const epode_stanza_t *el) { return el ? el->ns : NULL; }
const char *epode_stanza_get_prefix(const epode_stanza_t *el) { return el ? el->prefix : NULL; }
epode_stanza_t *epode_stanza_get_parent(const epode_stanza_t *el) { return el ? el->parent : NULL; }

int epode_stanza_set_prefix(epode_stanza_t *el, const char *prefix)
{
    if (!el)
        return EPODE_EINVAL;
    if (!prefix) {
        el->prefix = NULL;
        return 0;
    }
    if (!name_ok(prefix) || strcmp(prefix, "xml") == 0 || strcmp(prefix, "xmlns") == 0)
        return EPODE_EINVAL;
    /* A prefix needs a namespace, and one prefix cannot name two
     * namespaces on the same element. */
    if (!el->ns || prefix_clash(el, prefix, el->ns, NULL))
        return EPODE_EINVAL;
    const char *p = str_in_tree(el->tree, prefix);
    if (!p)
        return EPODE_ENOMEM;
    el->prefix = p;
    return 0;
}

int epode_stanza_set_ns(epode_stanza_t *el, const char *ns)
{
    if (!el)
        return EPODE_EINVAL;
    if (ns && !*ns)
        ns = NULL; /* "" is no namespace */
    if (ns && (!ns_ok(ns) || (el->prefix && prefix_clash(el, el->prefix, ns, NULL))))
        return EPODE_EINVAL;
    const char *n = NULL;
    if (ns && !(n = str_in_tree(el->tree, ns)))
        return EPODE_ENOMEM;
    el->ns = n;
    if (!n)
        el->prefix = NULL;
    return 0;
}

/* ---- attributes ----------------------------------------------------- */

static int str_eq(const char *a, const char *b)
{
    if (a == b)
        return 1;
    if (!a || !b)
        return 0;
    return strcmp(a, b) == 0;
}

static epode__attr *attr_find(const epode_stanza_t *el, const char *name, const char *ns)
{
    for (uint32_t i = 0; i < el->nattrs; i++) {
        epode__attr *a = &el->attrs[i];
        if (str_eq(a->name, name) && str_eq(a->ns, ns))
            return a;
    }
    return NULL;
}

/* "xml:lang" → ("lang", XML namespace); plain names → (name, NULL). */
static int split_qname(const char *name, const char **local, const char **ns)
{
    if (strncmp(name, "xml:", 4) == 0) {
        *local = name + 4;
        *ns = EPODE_NS_XML;
        return 1;
    }
    *local = name;
    *ns = NULL;
    return 0;
}

const char *epode_stanza_get_attr(const epode_stanza_t *el, const char *name)
{
    if (!el || !name || el->kind != EPODE__ELEMENT)
        return NULL;
    const char *local, *ns;
    split_qname(name, &local, &ns);
    epode__attr *a = attr_find(el, local, ns);
    return a ? a->value : NULL;
}

const char *epode_stanza_get_attr_ns(const epode_stanza_t *el, const char *name, const char *ns)
{
    if (!el || !name || el->kind != EPODE__ELEMENT)
        return NULL;
    epode__attr *a = attr_find(el, name, ns);
    return a ? a->value : NULL;
}

int epode__attrs_reserve(epode_stanza_t *el, uint32_t n)
{
    if (el->attr_cap - el->nattrs >= n)
        return 0;
    uint32_t cap = el->nattrs + n;
    if (el->attrs && cap < el->attr_cap * 2)
        cap = el->attr_cap * 2;
    epode__attr *na = epode__arena_alloc(el->tree, (size_t)cap * sizeof *na);
    if (!na)
        return -1;
    if (el->nattrs)
        memcpy(na, el->attrs, el->nattrs * sizeof *na);
    el->attrs = na;
    el->attr_cap = cap;
    return 0;
}

static void attr_delete(epode_stanza_t *el, epode__attr *a)
{
    size_t i = (size_t)(a - el->attrs);
    memmove(a, a + 1, (el->nattrs - i - 1) * sizeof *a);
    el->nattrs--;
}

int epode_stanza_set_attr_ns(epode_stanza_t *el, const char *name, const char *ns,
                             const char *prefix, const char *value)
{
    if (!el || el->kind != EPODE__ELEMENT || !name_ok(name))
        return EPODE_EINVAL;
    if (ns && (!prefix || !name_ok(prefix) || strcmp(prefix, "xmlns") == 0))
        return EPODE_EINVAL;
    if (ns && (strcmp(prefix, "xml") == 0) != (strcmp(ns, EPODE_NS_XML) == 0))
        return EPODE_EINVAL; /* "xml" and the XML namespace go together only */
    if (ns && strcmp(ns, EPODE_NS_XML) != 0 && !ns_ok(ns))
        return EPODE_EINVAL;
    if (!ns && prefix)
        return EPODE_EINVAL;
    if (!ns && strcmp(name, "xmlns") == 0)
        return EPODE_EINVAL;
    epode__attr *a = attr_find(el, name, ns);
    if (value && ns && prefix_clash(el, prefix, ns, a))
        return EPODE_EINVAL; /* the prefix already names another namespace here */
    if (!value) {
        if (a)
            attr_delete(el, a);
        return 0;
    }
    size_t vlen = strlen(value);
    if (!epode__xml_text_ok(value, vlen) || (ns && !epode__xml_text_ok(ns, strlen(ns))))
        return EPODE_EINVAL;
    epode__tree *t = el->tree;
    const char *v = epode__arena_strndup(t, value, vlen);
    if (!v)
        return EPODE_ENOMEM;
    if (a) {
        a->value = v;
        return 0;
    }
    const char *n = epode__arena_str(t, name, strlen(name));
    const char *nsv = NULL, *pv = NULL;
    if (!n || (ns && !(nsv = str_in_tree(t, ns))) || (prefix && !(pv = str_in_tree(t, prefix))))
        return EPODE_ENOMEM;
    if (epode__attrs_reserve(el, 1) < 0)
        return EPODE_ENOMEM;
    el->attrs[el->nattrs++] = (epode__attr){n, nsv, pv, v};
    return 0;
}

int epode_stanza_set_attr(epode_stanza_t *el, const char *name, const char *value)
{
    if (!el || !name)
        return EPODE_EINVAL;
    const char *local, *ns;
    if (split_qname(name, &local, &ns))
        return epode_stanza_set_attr_ns(el, local, ns, "xml", value);
    return epode_stanza_set_attr_ns(el, local, NULL, NULL, value);
}

int epode_stanza_remove_attr(epode_stanza_t *el, const char *name)
{
    if (!el || !name || el->kind != EPODE__ELEMENT)
        return EPODE_EINVAL;
    const char *local, *ns;
    split_qname(name, &local, &ns);
    epode__attr *a = attr_find(el, local, ns);
    if (!a)
        return EPODE_ENOTFOUND;
    attr_delete(el, a);
    return 0;
}

size_t epode_stanza_attr_count(const epode_stanza_t *el)
{
    return el ? el->nattrs : 0;
}

int epode_stanza_attr_at(const epode_stanza_t *el, size_t i, const char **name,
                         const char **ns, const char **value)
{
    if (!el)
        return EPODE_EINVAL;
    if (i >= el->nattrs)
        return EPODE_ERANGE;
    const epode__attr *a = &el->attrs[i];
    if (name)
        *name = a->name;
    if (ns)
        *ns = a->ns;
    if (value)
        *value = a->value;
    return 0;
}

/* ---- text ----------------------------------------------------------- */

static void link_child(epode_stanza_t *parent, epode_stanza_t *child)
{
    child->parent = parent;
    child->prev = parent->last;
    child->next = NULL;
    if (parent->last)
        parent->last->next = child;
    else
        parent->first = child;
    parent->last = child;
}

int epode__text_append(epode_stanza_t *el, const char *text, size_t len)
{
    epode_stanza_t *n = node_new(el->tree, EPODE__TEXT);
    if (!n)
        return -1;
    if (!(n->text = epode__arena_strndup(el->tree, text, len)))
        return -1;
    n->len = len;
    link_child(el, n);
    el->text = NULL; /* joined-text cache is stale */
    return 0;
}

int epode__text_append_run_slow(epode_stanza_t *el, const char *text, size_t len)
{
    epode__tree *t = el->tree;
    epode_stanza_t *last = el->last;
    if (!last || !t->tail || last->kind != EPODE__TEXT || last->text + last->len + 1 != t->tail)
        return epode__text_append(el, text, len);
    /* The last text node's bytes end the arena (t->cur is just past its
     * NUL) but the block has no room for more: move them once, to room
     * for twice as much. */
    size_t old = last->len;
    if (len > (SIZE_MAX - 1) / 2 - old || arena_grow(t, 2 * (old + len) + 1) < 0)
        return -1;
    char *dst = t->cur;
    memcpy(dst, last->text, old);
    memcpy(dst + old, text, len);
    dst[old + len] = '\0';
    t->cur += old + len + 1;
    t->left -= old + len + 1;
    t->tail = t->cur;
    last->text = dst;
    last->len = old + len;
    el->text = NULL; /* joined-text cache is stale */
    return 0;
}

const char *epode_stanza_get_text(const epode_stanza_t *cel)
{
    if (!cel)
        return NULL;
    if (cel->kind == EPODE__TEXT)
        return cel->text;
    epode_stanza_t *el = (epode_stanza_t *)cel; /* the cache is not state */
    if (el->text)
        return el->text;
    size_t total = 0, pieces = 0;
    const epode_stanza_t *only = NULL;
    for (const epode_stanza_t *c = el->first; c; c = c->next)
        if (c->kind == EPODE__TEXT) {
            total += c->len;
            pieces++;
            only = c;
        }
    if (pieces == 0)
        return "";
    if (pieces == 1)
        return only->text;
    char *buf = arena_bytes(el->tree, total + 1);
    if (!buf)
        return NULL;
    size_t off = 0;
    for (const epode_stanza_t *c = el->first; c; c = c->next)
        if (c->kind == EPODE__TEXT) {
            memcpy(buf + off, c->text, c->len);
            off += c->len;
        }
    buf[off] = '\0';
    el->text = buf;
    return buf;
}

int epode_stanza_add_text(epode_stanza_t *el, const char *text, size_t len)
{
    if (!el || !text || el->kind != EPODE__ELEMENT)
        return EPODE_EINVAL;
    if (len == (size_t)-1)
        len = strlen(text);
    if (!epode__xml_text_ok(text, len))
        return EPODE_EINVAL;
    if (len == 0)
        return 0;
    return epode__text_append(el, text, len) < 0 ? EPODE_ENOMEM : 0;
}

int epode_stanza_set_text(epode_stanza_t *el, const char *text)
{
    if (!el || !text || el->kind != EPODE__ELEMENT)
        return EPODE_EINVAL;
    size_t len = strlen(text);
    if (!epode__xml_text_ok(text, len))
        return EPODE_EINVAL;
    /* Build the new text node before unlinking, so failure changes nothing. */
    epode_stanza_t *n = NULL;
    if (len) {
        n = node_new(el->tree, EPODE__TEXT);
        if (!n || !(n->text = epode__arena_strndup(el->tree, text, len)))
            return EPODE_ENOMEM;
        n->len = len;
    }
    /* Unlink each child the way epode_stanza_remove() does. */
    for (epode_stanza_t *c = el->first, *next; c; c = next) {
        next = c->next;
        c->parent = c->next = c->prev = NULL;
    }
    el->first = el->last = NULL;
    el->text = NULL;
    if (n)
        link_child(el, n);
    return 0;
}

/* ---- children ------------------------------------------------------- */

static epode_stanza_t *next_element(const epode_stanza_t *n)
{
    while (n && n->kind != EPODE__ELEMENT)
        n = n->next;
    return (epode_stanza_t *)n;
}

epode_stanza_t *epode_stanza_first_child(const epode_stanza_t *el)
{
    return el ? next_element(el->first) : NULL;
}

epode_stanza_t *epode_stanza_next(const epode_stanza_t *el)
{
    return el ? next_element(el->next) : NULL;
}

static int matches(const epode_stanza_t *c, const char *name, const char *ns)
{
    return c->kind == EPODE__ELEMENT && (!name || str_eq(c->name, name)) &&
           (!ns || str_eq(c->ns, ns));
}

epode_stanza_t *epode_stanza_find_child(const epode_stanza_t *el, const char *name,
                                        const char *ns)
{
    if (!el)
        return NULL;
    for (epode_stanza_t *c = el->first; c; c = c->next)
        if (matches(c, name, ns))
            return c;
    return NULL;
}

epode_stanza_t *epode_stanza_find_next(const epode_stanza_t *el, const char *name,
                                       const char *ns)
{
    if (!el)
        return NULL;
    for (epode_stanza_t *c = el->next; c; c = c->next)
        if (matches(c, name, ns))
            return c;
    return NULL;
}

const char *epode_stanza_child_text(const epode_stanza_t *el, const char *name, const char *ns)
{
    epode_stanza_t *c = epode_stanza_find_child(el, name, ns);
    return c ? epode_stanza_get_text(c) : NULL;
}

epode_stanza_t *epode__elem_append(epode_stanza_t *parent, const char *name, const char *ns,
                                   const char *prefix)
{
    epode_stanza_t *n = node_new(parent->tree, EPODE__ELEMENT);
    if (!n)
        return NULL;
    n->name = name;
    n->ns = ns;
    n->prefix = prefix;
    link_child(parent, n);
    return n;
}

int epode_stanza_add_child_new(epode_stanza_t *parent, const char *name, const char *ns,
                               epode_stanza_t **out)
{
    if (!parent || parent->kind != EPODE__ELEMENT || !name_ok(name))
        return EPODE_EINVAL;
    if (ns && !ns_ok(ns))
        return EPODE_EINVAL;
    epode__tree *t = parent->tree;
    const char *n = epode__arena_str(t, name, strlen(name));
    const char *nsv = ns ? str_in_tree(t, ns) : parent->ns;
    if (!n || (ns && !nsv))
        return EPODE_ENOMEM;
    /* A child in the parent's namespace is written the way the parent is. */
    const char *prefix = str_eq(nsv, parent->ns) ? parent->prefix : NULL;
    epode_stanza_t *c = epode__elem_append(parent, n, nsv, prefix);
    if (!c)
        return EPODE_ENOMEM;
    if (out)
        *out = c;
    return 0;
}

/* Copies src's subtree below dst (an element of another or the same
 * tree). Strings are re-homed: static ones are shared, the rest copied. */
static const char *rehome(epode__tree *t, const char *s)
{
    if (!s)
        return NULL;
    const char *st = epode__intern(s, strlen(s));
    return st ? st : epode__arena_strndup(t, s, strlen(s));
}

static int copy_attrs(epode_stanza_t *dst, const epode_stanza_t *src)
{
    if (src->nattrs == 0)
        return 0;
    if (epode__attrs_reserve(dst, src->nattrs) < 0)
        return -1;
    for (uint32_t i = 0; i < src->nattrs; i++) {
        const epode__attr *a = &src->attrs[i];
        epode__attr c = {rehome(dst->tree, a->name), rehome(dst->tree, a->ns),
                         rehome(dst->tree, a->prefix), rehome(dst->tree, a->value)};
        if (!c.name || !c.value || (a->ns && !c.ns) || (a->prefix && !c.prefix))
            return -1;
        dst->attrs[dst->nattrs++] = c;
    }
    return 0;
}

static int copy_children(epode_stanza_t *dst, const epode_stanza_t *src)
{
    for (const epode_stanza_t *c = src->first; c; c = c->next) {
        if (c->kind == EPODE__TEXT) {
            if (epode__text_append(dst, c->text, c->len) < 0)
                return -1;
            continue;
        }
        const char *n = rehome(dst->tree, c->name);
        const char *ns = rehome(dst->tree, c->ns);
        const char *p = rehome(dst->tree, c->prefix);
        if (!n || (c->ns && !ns) || (c->prefix && !p))
            return -1;
        epode_stanza_t *d = epode__elem_append(dst, n, ns, p);
        if (!d || copy_attrs(d, c) < 0 || copy_children(d, c) < 0)
            return -1;
    }
    return 0;
}

int epode_stanza_copy(const epode_stanza_t *el, epode_stanza_t **out)
{
    if (!el || !out || el->kind != EPODE__ELEMENT)
        return EPODE_EINVAL;
    epode_stanza_t *root = epode__tree_new(el->tree->mem, 0, el->name, strlen(el->name),
                                           el->ns, el->prefix);
    if (!root)
        return EPODE_ENOMEM;
    if (copy_attrs(root, el) < 0 || copy_children(root, el) < 0) {
        epode_stanza_unref(root);
        return EPODE_ENOMEM;
    }
    *out = root;
    return 0;
}

static int copy_into(const epode_stanza_t *el, size_t hint, epode_stanza_t **out)
{
    epode__tree *t = el->tree;
    size_t hdr = tree_hdr_size();
    epode__tree *n = epode__alloc(t->mem, hdr + hint);
    if (!n)
        return EPODE_ENOMEM;
    *n = (epode__tree){.refs = 1, .mem = t->mem, .cur = (char *)n + hdr, .left = hint,
                       .size = hint, .tail = NULL, .next_block = 1024};
    epode_stanza_t *root = node_new(n, EPODE__ELEMENT);
    if (!root) {
        tree_free(n);
        return EPODE_ENOMEM;
    }
    if (!(root->name = str_in_tree(n, el->name)) || (el->ns && !(root->ns = str_in_tree(n, el->ns))) ||
        (el->prefix && !(root->prefix = str_in_tree(n, el->prefix))) || copy_attrs(root, el) < 0 ||
        copy_children(root, el) < 0) {
        tree_free(n);
        return EPODE_ENOMEM;
    }
    *out = root;
    return 0;
}

int epode__stanza_copy_tight(const epode_stanza_t *el, epode_stanza_t **out)
{
    if (!el || !out || el->kind != EPODE__ELEMENT)
        return EPODE_EINVAL;
    /* Once into a first block as large as any tree's, to learn the size
     * (a copy that outgrew it: once more into one block as large as all
     * it took); then into exactly that (the same allocations in the same
     * order fit it to the byte). */
    epode_stanza_t *probe;
    int rc = copy_into(el, FIRST_BLOCK_MIN, &probe);
    if (rc < 0)
        return rc;
    if (probe->tree->blocks) {
        size_t all = probe->tree->size;
        epode_stanza_unref(probe);
        if ((rc = copy_into(el, all, &probe)) < 0)
            return rc;
        if (probe->tree->blocks) { /* cannot happen: it fitted in that much */
            *out = probe;
            return 0;
        }
    }
    size_t used = probe->tree->size - probe->tree->left;
    rc = copy_into(el, used, out);
    epode_stanza_unref(probe);
    return rc;
}

int epode_stanza_add_child(epode_stanza_t *parent, const epode_stanza_t *child,
                           epode_stanza_t **out)
{
    if (!parent || !child || parent->kind != EPODE__ELEMENT || child->kind != EPODE__ELEMENT)
        return EPODE_EINVAL;
    /* Copy into a scratch tree first when the source is our own tree, so
     * a copy of an ancestor never walks into itself; and so a failure
     * leaves the parent untouched in every case. */
    epode_stanza_t *tmp;
    int rc = epode_stanza_copy(child, &tmp);
    if (rc < 0)
        return rc;
    epode__tree *t = parent->tree;
    epode_stanza_t *last = parent->last;
    const char *n = rehome(t, tmp->name), *ns = rehome(t, tmp->ns), *p = rehome(t, tmp->prefix);
    epode_stanza_t *d = NULL;
    if (n && (!tmp->ns || ns) && (!tmp->prefix || p))
        d = epode__elem_append(parent, n, ns, p);
    if (!d || copy_attrs(d, tmp) < 0 || copy_children(d, tmp) < 0) {
        /* roll back the link; storage stays in the arena until the tree goes */
        if (d) {
            parent->last = last;
            if (last)
                last->next = NULL;
            else
                parent->first = NULL;
        }
        epode_stanza_unref(tmp);
        return EPODE_ENOMEM;
    }
    epode_stanza_unref(tmp);
    parent->text = NULL;
    if (out)
        *out = d;
    return 0;
}

int epode_stanza_remove(epode_stanza_t *child)
{
    if (!child || !child->parent)
        return EPODE_EINVAL;
    epode_stanza_t *p = child->parent;
    if (child->prev)
        child->prev->next = child->next;
    else
        p->first = child->next;
    if (child->next)
        child->next->prev = child->prev;
    else
        p->last = child->prev;
    child->parent = child->next = child->prev = NULL;
    p->text = NULL;
    return 0;
}

/* ---- equality ------------------------------------------------------- */

static int attrs_equal(const epode_stanza_t *a, const epode_stanza_t *b)
{
    if (a->nattrs != b->nattrs)
        return 0;
    for (uint32_t i = 0; i < a->nattrs; i++) {
        const epode__attr *x = &a->attrs[i];
        const epode__attr *y = attr_find(b, x->name, x->ns);
        if (!y || !str_eq(x->value, y->value))
            return 0;
    }
    return 1;
}

/* Compares runs of adjacent text nodes as one string, without joining. */
static const epode_stanza_t *text_run_cmp(const epode_stanza_t **pa, const epode_stanza_t **pb,
                                          int *equal)
{
    const epode_stanza_t *a = *pa, *b = *pb;
    size_t ai = 0, bi = 0;
    for (;;) {
        while (a && a->kind == EPODE__TEXT && ai == a->len) {
            a = a->next;
            ai = 0;
        }
        while (b && b->kind == EPODE__TEXT && bi == b->len) {
            b = b->next;
            bi = 0;
        }
        int aend = !a || a->kind != EPODE__TEXT;
        int bend = !b || b->kind != EPODE__TEXT;
        if (aend || bend) {
            *equal = aend && bend;
            break;
        }
        size_t n = a->len - ai < b->len - bi ? a->len - ai : b->len - bi;
        if (memcmp(a->text + ai, b->text + bi, n) != 0) {
            *equal = 0;
            break;
        }
        ai += n;
        bi += n;
    }
    *pa = a;
    *pb = b;
    return a;
}

int epode_stanza_equal(const epode_stanza_t *a, const epode_stanza_t *b)
{
    if (!a || !b)
        return a == b;
    if (a->kind != b->kind)
        return 0;
    if (!str_eq(a->name, b->name) || !str_eq(a->ns, b->ns) || !str_eq(a->prefix, b->prefix))
        return 0;
    if (!attrs_equal(a, b))
        return 0;
    const epode_stanza_t *x = a->first, *y = b->first;
    for (;;) {
        if ((x && x->kind == EPODE__TEXT) || (y && y->kind == EPODE__TEXT)) {
            int eq;
            text_run_cmp(&x, &y, &eq);
            if (!eq)
                return 0;
            continue;
        }
        if (!x || !y)
            return x == y;
        if (!epode_stanza_equal(x, y))
            return 0;
        x = x->next;
        y = y->next;
    }
}
