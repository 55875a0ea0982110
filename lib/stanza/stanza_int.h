/* lib/stanza/stanza_int.h — the element tree's layout, shared with the
 * parser and serializer in lib/xml (which build and walk trees without
 * the public API's checks on every call). Nothing above lib/xml uses it. */
#ifndef EPODE__STANZA_INT_H
#define EPODE__STANZA_INT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include "epode/stanza.h"

typedef struct epode__attr {
    const char *name;   /* local name */
    const char *ns;     /* namespace URI, NULL if none */
    const char *prefix; /* prefix written with ns ("xml" for xml:lang) */
    const char *value;
} epode__attr;

enum { EPODE__ELEMENT = 0, EPODE__TEXT = 1 };

/* A tree: reference count, allocator and the arena every node, attribute
 * array and string of the tree lives in. Freed as a whole. */
typedef struct epode__block {
    struct epode__block *next;
} epode__block;

typedef struct epode__tree {
    unsigned refs;
    const epode_mem_t *mem;
    epode__block *blocks; /* extra blocks beyond the first */
    char *cur;            /* bump pointer into the current block */
    size_t left;          /* bytes left after cur */
    size_t size;          /* bytes of storage in all blocks */
    char *tail;           /* == cur when the latest allocation was a string */
    size_t next_block;    /* size of the next block to get */
} epode__tree;

struct epode_stanza {
    epode__tree *tree;
    epode_stanza_t *parent, *next, *prev, *first, *last;
    const char *name, *ns, *prefix; /* elements */
    epode__attr *attrs;
    const char *text; /* text node: its bytes (NUL-terminated);
                         element: joined text cache, or NULL */
    size_t len;       /* text node: byte length */
    uint32_t nattrs, attr_cap;
    uint8_t kind;
};

/* A new tree whose first arena block has room for about `hint` bytes, with
 * one element named as given as its root (strings copied or interned).
 * NULL on allocation failure. */
epode_stanza_t *epode__tree_new(const epode_mem_t *mem, size_t hint, const char *name,
                                size_t name_len, const char *ns, const char *prefix);
/* A new tree as above whose root element has no name yet: the caller
 * sets name (and ns, prefix) to strings that are static or live in the
 * tree. NULL on allocation failure. */
epode_stanza_t *epode__tree_new_root(const epode_mem_t *mem, size_t hint);
/* Takes the caller's reference to a tree's root. When that was the only
 * one and the tree fits its first block, returns the tree emptied, with a
 * fresh unnamed root as from epode__tree_new_root (the parser reuses one
 * block for a run of stanzas); else releases it and returns NULL. */
epode_stanza_t *epode__tree_reuse(epode_stanza_t *root);
/* Bytes of the tree's arena in use (about what a first block would need
 * to hold the whole tree). */
size_t epode__tree_used(const epode_stanza_t *el);
void *epode__arena_alloc(epode__tree *t, size_t size);
/* A deep copy of el (its own tree) whose arena holds just the bytes it
 * needs, for trees kept for a session's life (the stream features): an
 * ordinary tree's first block is 512 bytes whatever it holds. Errors as
 * epode_stanza_copy(). */
int epode__stanza_copy_tight(const epode_stanza_t *el, epode_stanza_t **out);
/* A NUL-terminated copy of s[0..len) in the arena, or a static string for
 * names XMPP uses all the time. NULL on failure. */
const char *epode__arena_str(epode__tree *t, const char *s, size_t len);
/* Same, without the interning lookup (for values: ids, JIDs, text). */
const char *epode__arena_strndup(epode__tree *t, const char *s, size_t len);
/* A static string equal to s[0..len), or NULL. */
const char *epode__intern(const char *s, size_t len);

/* A new element appended to parent (namespace and prefix strings must
 * already live in the tree or be static). NULL on failure. */
epode_stanza_t *epode__elem_append(epode_stanza_t *parent, const char *name, const char *ns,
                                   const char *prefix);
/* Appends a text node with a copy of text[0..len) (no validation). */
int epode__text_append(epode_stanza_t *el, const char *text, size_t len);
/* Same, but joined to el's last child when that is a text node whose
 * bytes nothing was allocated after (text arriving in pieces: the
 * parser). Growth doubles, so n pieces cost O(total) copying. Inline: the
 * parser calls it for every piece of character data. */
int epode__text_append_run_slow(epode_stanza_t *el, const char *text, size_t len);
static inline int epode__text_append_run(epode_stanza_t *el, const char *text, size_t len)
{
    epode__tree *t = el->tree;
    epode_stanza_t *last = el->last;
    /* (t->tail == t->cur: the NUL of the last string is at t->cur - 1) */
    if (last && last->kind == EPODE__TEXT && t->tail && last->text + last->len + 1 == t->tail &&
        len <= t->left) {
        char *end = t->cur - 1;
        memcpy(end, text, len);
        end[len] = '\0';
        t->cur += len;
        t->left -= len;
        t->tail = t->cur;
        last->len += len;
        el->text = NULL; /* joined-text cache is stale */
        return 0;
    }
    return epode__text_append_run_slow(el, text, len);
}
/* Reserves exactly n attribute slots (parser: it knows the count). */
int epode__attrs_reserve(epode_stanza_t *el, uint32_t n);

#endif
