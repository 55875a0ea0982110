/* lib/im/disco.c — service discovery (XEP-0030, XEP-0128): the registry
 * of what we answer per node, the responder, and the client that parses
 * others' answers into plain structures. Built on the public API only
 * (DESIGN.md, principle 5): it must never include a lib/ header. Peers'
 * answers are untrusted: invalid entries are skipped, nothing is assumed
 * present. Freed before its connection, it lets go of it on
 * EPODE_CONN_FREED: the registry still works (the caps helper reads it),
 * nothing touches the connection again. */
#include <epode.h>

#include <stdlib.h>
#include <string.h>

#include "im_alloc.h"

/* ---- small helpers ------------------------------------------------------ */

static char *dup_or_null(const epode_mem_t *mem, const char *s, int *err)
{
    if (!s)
        return NULL;
    char *d = im_strdup(mem, s);
    if (!d)
        *err = 1;
    return d;
}

static int str_eq(const char *a, const char *b)
{
    if (!a || !b)
        return a == b;
    return strcmp(a, b) == 0;
}

/* Grows *arr (of `size`-byte elements) to hold one more. */
static int grow(const epode_mem_t *mem, void **arr, size_t *cap, size_t n, size_t size)
{
    if (n < *cap)
        return 0;
    size_t nc = *cap ? *cap * 2 : 4;
    void *p = im_realloc(mem, *arr, nc * size);
    if (!p)
        return EPODE_ENOMEM;
    *arr = p;
    *cap = nc;
    return 0;
}

/* ---- parsing others' answers -------------------------------------------- */

struct info_priv {
    epode_disco_info_t pub;
    const epode_mem_t *mem; /* what the arrays below came from */
    epode_stanza_t *ref;
    epode_disco_identity_t *ids;
    const char **features;
    epode_disco_form_t *forms;
    epode_disco_field_t *fields;
    const char **values;
};

static const epode_stanza_t *find_query(const epode_stanza_t *el, const char *ns)
{
    const char *elns = epode_stanza_get_ns(el);
    if (strcmp(epode_stanza_get_name(el), "query") == 0 && elns && strcmp(elns, ns) == 0)
        return el;
    return epode_stanza_find_child(el, "query", ns);
}

static void info_arrays_free(struct info_priv *p)
{
    const epode_mem_t *mem = p->mem;
    im_free(mem, p->ids), im_free(mem, p->features), im_free(mem, p->forms);
    im_free(mem, p->fields), im_free(mem, p->values);
    im_free(mem, p);
}

/* Parses with `mem` for the result's own arrays (the strings stay in the
 * stanza's tree, which the result keeps a reference to). */
static int info_parse(const epode_mem_t *mem, const epode_stanza_t *el, epode_disco_info_t **out)
{
    if (!el || !out)
        return EPODE_EINVAL;
    const epode_stanza_t *q = find_query(el, EPODE_NS_DISCO_INFO);
    if (!q)
        return EPODE_ENOTFOUND;
    size_t nid = 0, nfeat = 0, nform = 0, nfield = 0, nval = 0;
    for (epode_stanza_t *c = epode_stanza_first_child(q); c; c = epode_stanza_next(c)) {
        const char *name = epode_stanza_get_name(c), *ns = epode_stanza_get_ns(c);
        if (str_eq(ns, EPODE_NS_DISCO_INFO) && strcmp(name, "identity") == 0)
            nid++;
        else if (str_eq(ns, EPODE_NS_DISCO_INFO) && strcmp(name, "feature") == 0)
            nfeat++;
        else if (str_eq(ns, EPODE_NS_DATA) && strcmp(name, "x") == 0) {
            nform++;
            for (epode_stanza_t *f = epode_stanza_find_child(c, "field", EPODE_NS_DATA); f;
                 f = epode_stanza_find_next(f, "field", EPODE_NS_DATA)) {
                nfield++;
                for (epode_stanza_t *v = epode_stanza_find_child(f, "value", EPODE_NS_DATA); v;
                     v = epode_stanza_find_next(v, "value", EPODE_NS_DATA))
                    nval++;
            }
        }
    }
    struct info_priv *p = im_zalloc(mem, sizeof *p);
    if (!p)
        return EPODE_ENOMEM;
    p->mem = mem;
    p->ids = im_zalloc(mem, (nid + 1) * sizeof *p->ids);
    p->features = im_zalloc(mem, (nfeat + 1) * sizeof *p->features);
    p->forms = im_zalloc(mem, (nform + 1) * sizeof *p->forms);
    p->fields = im_zalloc(mem, (nfield + 1) * sizeof *p->fields);
    p->values = im_zalloc(mem, (nval + 1) * sizeof *p->values);
    if (!p->ids || !p->features || !p->forms || !p->fields || !p->values) {
        info_arrays_free(p);
        return EPODE_ENOMEM;
    }
    size_t ni = 0, nf = 0, nx = 0, nfl = 0, nv = 0;
    for (epode_stanza_t *c = epode_stanza_first_child(q); c; c = epode_stanza_next(c)) {
        const char *name = epode_stanza_get_name(c), *ns = epode_stanza_get_ns(c);
        if (str_eq(ns, EPODE_NS_DISCO_INFO) && strcmp(name, "identity") == 0) {
            const char *cat = epode_stanza_get_attr(c, "category");
            const char *type = epode_stanza_get_attr(c, "type");
            if (!cat || !*cat || !type || !*type)
                continue; /* XEP-0030 requires both */
            p->ids[ni++] = (epode_disco_identity_t){cat, type, epode_stanza_get_attr(c, "name"),
                                                    epode_stanza_get_attr(c, "xml:lang")};
        } else if (str_eq(ns, EPODE_NS_DISCO_INFO) && strcmp(name, "feature") == 0) {
            const char *var = epode_stanza_get_attr(c, "var");
            if (var && *var)
                p->features[nf++] = var;
        } else if (str_eq(ns, EPODE_NS_DATA) && strcmp(name, "x") == 0) {
            epode_disco_form_t *form = &p->forms[nx++];
            form->type = epode_stanza_get_attr(c, "type");
            form->fields = &p->fields[nfl];
            for (epode_stanza_t *f = epode_stanza_find_child(c, "field", EPODE_NS_DATA); f;
                 f = epode_stanza_find_next(f, "field", EPODE_NS_DATA)) {
                epode_disco_field_t *fld = &p->fields[nfl++];
                fld->var = epode_stanza_get_attr(f, "var");
                fld->type = epode_stanza_get_attr(f, "type");
                fld->values = &p->values[nv];
                for (epode_stanza_t *v = epode_stanza_find_child(f, "value", EPODE_NS_DATA); v;
                     v = epode_stanza_find_next(v, "value", EPODE_NS_DATA)) {
                    const char *t = epode_stanza_get_text(v);
                    if (!t)
                        goto nomem;
                    p->values[nv++] = t;
                    fld->nvalues++;
                }
                form->nfields++;
                if (!form->form_type && str_eq(fld->var, "FORM_TYPE") && fld->nvalues > 0)
                    form->form_type = fld->values[0];
            }
        }
    }
    p->pub.node = epode_stanza_get_attr(q, "node");
    p->pub.identities = p->ids;
    p->pub.nidentities = ni;
    p->pub.features = p->features;
    p->pub.nfeatures = nf;
    p->pub.forms = p->forms;
    p->pub.nforms = nx;
    p->pub.query = q;
    p->ref = epode_stanza_ref((epode_stanza_t *)q);
    *out = &p->pub;
    return 0;
nomem:
    info_arrays_free(p);
    return EPODE_ENOMEM;
}

/* No connection here and no public way to learn a stanza's allocator:
 * the result's arrays come from the C library. */
int epode_disco_info_parse(const epode_stanza_t *el, epode_disco_info_t **out)
{
    return info_parse(NULL, el, out);
}

void epode_disco_info_free(epode_disco_info_t *info)
{
    if (!info)
        return;
    struct info_priv *p = (struct info_priv *)info;
    epode_stanza_unref(p->ref);
    info_arrays_free(p);
}

int epode_disco_info_has_feature(const epode_disco_info_t *info, const char *feature)
{
    if (!info || !feature)
        return 0;
    for (size_t i = 0; i < info->nfeatures; i++)
        if (strcmp(info->features[i], feature) == 0)
            return 1;
    return 0;
}

struct items_priv {
    epode_disco_items_t pub;
    const epode_mem_t *mem;
    epode_stanza_t *ref;
    epode_disco_item_t *items;
};

static int items_parse(const epode_mem_t *mem, const epode_stanza_t *el,
                       epode_disco_items_t **out)
{
    if (!el || !out)
        return EPODE_EINVAL;
    const epode_stanza_t *q = find_query(el, EPODE_NS_DISCO_ITEMS);
    if (!q)
        return EPODE_ENOTFOUND;
    size_t n = 0;
    for (epode_stanza_t *c = epode_stanza_find_child(q, "item", EPODE_NS_DISCO_ITEMS); c;
         c = epode_stanza_find_next(c, "item", EPODE_NS_DISCO_ITEMS))
        n++;
    struct items_priv *p = im_zalloc(mem, sizeof *p);
    if (!p || !(p->items = im_zalloc(mem, (n + 1) * sizeof *p->items))) {
        im_free(mem, p);
        return EPODE_ENOMEM;
    }
    p->mem = mem;
    size_t k = 0;
    for (epode_stanza_t *c = epode_stanza_find_child(q, "item", EPODE_NS_DISCO_ITEMS); c;
         c = epode_stanza_find_next(c, "item", EPODE_NS_DISCO_ITEMS)) {
        const char *jid = epode_stanza_get_attr(c, "jid");
        if (!jid || epode_jid_validate(jid) != 0)
            continue;
        p->items[k++] = (epode_disco_item_t){jid, epode_stanza_get_attr(c, "node"),
                                             epode_stanza_get_attr(c, "name")};
    }
    p->pub.node = epode_stanza_get_attr(q, "node");
    p->pub.items = p->items;
    p->pub.nitems = k;
    p->pub.query = q;
    p->ref = epode_stanza_ref((epode_stanza_t *)q);
    *out = &p->pub;
    return 0;
}

/* As for epode_disco_info_parse(): the C library's allocator. */
int epode_disco_items_parse(const epode_stanza_t *el, epode_disco_items_t **out)
{
    return items_parse(NULL, el, out);
}

void epode_disco_items_free(epode_disco_items_t *items)
{
    if (!items)
        return;
    struct items_priv *p = (struct items_priv *)items;
    epode_stanza_unref(p->ref);
    im_free(p->mem, p->items);
    im_free(p->mem, p);
}

/* ---- the registry -------------------------------------------------------- */

typedef struct ident { char *category, *type, *name, *lang; } ident;
typedef struct item { char *jid, *node, *name; } item;

typedef struct node {
    char *name; /* NULL: ourselves */
    ident *ids;
    size_t nids, capids;
    char **features;
    size_t nfeatures, capfeatures;
    epode_stanza_t **forms; /* our own copies, each the only child of a holder root */
    size_t nforms, capforms;
    item *items;
    size_t nitems, capitems;
} node;

typedef struct alias { char *alias, *target; } alias;
typedef struct listener { unsigned id; epode_disco_changed_cb cb; void *user; } listener;

typedef struct pending {
    epode_disco_t *disco;
    int items; /* 0: info, 1: items */
    epode_disco_info_cb info_cb;
    epode_disco_items_cb items_cb;
    void *user;
    char *jid, *node;
    unsigned id; /* the IQ wait's id */
    struct pending *next;
} pending;

struct epode_disco {
    epode_conn_t *conn;
    const epode_mem_t *mem; /* the context's allocator, for all we own */
    unsigned h_info, h_items, h_ev;
    node **nodes;
    size_t nnodes, capnodes;
    alias *aliases;
    size_t naliases, capaliases;
    listener *listeners;
    size_t nlisteners, caplisteners;
    unsigned next_listener;
    pending *pending;
};

static void ident_clear(const epode_mem_t *mem, ident *id)
{
    im_free(mem, id->category), im_free(mem, id->type), im_free(mem, id->name);
    im_free(mem, id->lang);
}

static void item_clear(const epode_mem_t *mem, item *it)
{
    im_free(mem, it->jid), im_free(mem, it->node), im_free(mem, it->name);
}

static void node_free(const epode_mem_t *mem, node *n)
{
    if (!n)
        return;
    for (size_t i = 0; i < n->nids; i++)
        ident_clear(mem, &n->ids[i]);
    for (size_t i = 0; i < n->nfeatures; i++)
        im_free(mem, n->features[i]);
    for (size_t i = 0; i < n->nforms; i++)
        epode_stanza_unref(n->forms[i]);
    for (size_t i = 0; i < n->nitems; i++)
        item_clear(mem, &n->items[i]);
    im_free(mem, n->ids), im_free(mem, n->features), im_free(mem, n->forms);
    im_free(mem, n->items), im_free(mem, n->name);
    im_free(mem, n);
}

static node *node_find(const epode_disco_t *d, const char *name)
{
    for (size_t i = 0; i < d->nnodes; i++)
        if (str_eq(d->nodes[i]->name, name))
            return d->nodes[i];
    return NULL;
}

static int node_get(epode_disco_t *d, const char *name, node **out)
{
    node *n = node_find(d, name);
    if (n) {
        *out = n;
        return 0;
    }
    if (grow(d->mem, (void **)&d->nodes, &d->capnodes, d->nnodes, sizeof *d->nodes) < 0)
        return EPODE_ENOMEM;
    int err = 0;
    if (!(n = im_zalloc(d->mem, sizeof *n)))
        return EPODE_ENOMEM;
    n->name = dup_or_null(d->mem, name, &err);
    if (err) {
        im_free(d->mem, n);
        return EPODE_ENOMEM;
    }
    d->nodes[d->nnodes++] = n;
    *out = n;
    return 0;
}

/* A node that holds nothing any more stops existing (the root never does). */
static void node_gc(epode_disco_t *d, node *n)
{
    if (!n->name || n->nids || n->nfeatures || n->nforms || n->nitems)
        return;
    for (size_t i = 0; i < d->nnodes; i++)
        if (d->nodes[i] == n) {
            d->nodes[i] = d->nodes[--d->nnodes];
            break;
        }
    node_free(d->mem, n);
}

static void changed(epode_disco_t *d, const char *node_name)
{
    /* a listener may remove itself: walk a snapshot of the count */
    for (size_t i = 0; i < d->nlisteners; i++) {
        listener l = d->listeners[i];
        l.cb(d, node_name, l.user);
    }
}

int epode_disco_add_identity(epode_disco_t *d, const char *node_name, const char *category,
                             const char *type, const char *name, const char *lang)
{
    if (!d || !category || !*category || !type || !*type)
        return EPODE_EINVAL;
    node *n;
    int rc = node_get(d, node_name, &n);
    if (rc < 0)
        return rc;
    int err = 0;
    for (size_t i = 0; i < n->nids; i++) {
        ident *id = &n->ids[i];
        if (str_eq(id->category, category) && str_eq(id->type, type) && str_eq(id->lang, lang)) {
            char *nn = dup_or_null(d->mem, name, &err);
            if (err)
                return EPODE_ENOMEM;
            im_free(d->mem, id->name);
            id->name = nn;
            changed(d, node_name);
            return 0;
        }
    }
    if (grow(d->mem, (void **)&n->ids, &n->capids, n->nids, sizeof *n->ids) < 0) {
        node_gc(d, n);
        return EPODE_ENOMEM;
    }
    ident id = {dup_or_null(d->mem, category, &err), dup_or_null(d->mem, type, &err), dup_or_null(d->mem, name, &err),
                dup_or_null(d->mem, lang, &err)};
    if (err) {
        ident_clear(d->mem, &id);
        node_gc(d, n);
        return EPODE_ENOMEM;
    }
    n->ids[n->nids++] = id;
    changed(d, node_name);
    return 0;
}

int epode_disco_remove_identity(epode_disco_t *d, const char *node_name, const char *category,
                                const char *type, const char *lang)
{
    if (!d || !category || !type)
        return EPODE_EINVAL;
    node *n = node_find(d, node_name);
    for (size_t i = 0; n && i < n->nids; i++) {
        ident *id = &n->ids[i];
        if (str_eq(id->category, category) && str_eq(id->type, type) && str_eq(id->lang, lang)) {
            ident_clear(d->mem, id);
            memmove(id, id + 1, (n->nids - i - 1) * sizeof *id);
            n->nids--;
            node_gc(d, n);
            changed(d, node_name);
            return 0;
        }
    }
    return EPODE_ENOTFOUND;
}

int epode_disco_add_feature(epode_disco_t *d, const char *node_name, const char *var)
{
    if (!d || !var || !*var)
        return EPODE_EINVAL;
    node *n;
    int rc = node_get(d, node_name, &n);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < n->nfeatures; i++)
        if (strcmp(n->features[i], var) == 0)
            return 0;
    char *v = im_strdup(d->mem, var);
    if (!v || grow(d->mem, (void **)&n->features, &n->capfeatures, n->nfeatures,
                   sizeof(char *)) < 0) {
        im_free(d->mem, v);
        node_gc(d, n);
        return EPODE_ENOMEM;
    }
    n->features[n->nfeatures++] = v;
    changed(d, node_name);
    return 0;
}

int epode_disco_remove_feature(epode_disco_t *d, const char *node_name, const char *var)
{
    if (!d || !var)
        return EPODE_EINVAL;
    node *n = node_find(d, node_name);
    for (size_t i = 0; n && i < n->nfeatures; i++)
        if (strcmp(n->features[i], var) == 0) {
            im_free(d->mem, n->features[i]);
            memmove(&n->features[i], &n->features[i + 1], (n->nfeatures - i - 1) * sizeof(char *));
            n->nfeatures--;
            node_gc(d, n);
            changed(d, node_name);
            return 0;
        }
    return EPODE_ENOTFOUND;
}

/* The FORM_TYPE of a form we hold or are given, if it is a hidden field. */
static const char *form_type_of(const epode_stanza_t *x)
{
    for (epode_stanza_t *f = epode_stanza_find_child(x, "field", EPODE_NS_DATA); f;
         f = epode_stanza_find_next(f, "field", EPODE_NS_DATA))
        if (str_eq(epode_stanza_get_attr(f, "var"), "FORM_TYPE")) {
            if (!str_eq(epode_stanza_get_attr(f, "type"), "hidden"))
                return NULL;
            return epode_stanza_child_text(f, "value", EPODE_NS_DATA);
        }
    return NULL;
}

/* The form a holder root (see epode_disco_add_form()) keeps. */
static const epode_stanza_t *held_form(const epode_stanza_t *holder)
{
    return epode_stanza_first_child(holder);
}

int epode_disco_add_form(epode_disco_t *d, const char *node_name, const epode_stanza_t *form)
{
    if (!d || !form || strcmp(epode_stanza_get_name(form), "x") != 0 ||
        !str_eq(epode_stanza_get_ns(form), EPODE_NS_DATA))
        return EPODE_EINVAL;
    const char *ft = form_type_of(form);
    if (!ft || !*ft)
        return EPODE_EINVAL;
    /* our copy lives in a tree made with our allocator (epode_stanza_copy
     * would keep the caller's): a holder root with the form as its child */
    epode_stanza_t *copy;
    int rc = epode_stanza_new(d->mem, "forms", NULL, &copy);
    if (rc < 0)
        return rc;
    if ((rc = epode_stanza_add_child(copy, form, NULL)) < 0) {
        epode_stanza_unref(copy);
        return rc;
    }
    node *n;
    if ((rc = node_get(d, node_name, &n)) < 0) {
        epode_stanza_unref(copy);
        return rc;
    }
    for (size_t i = 0; i < n->nforms; i++)
        if (str_eq(form_type_of(held_form(n->forms[i])), ft)) {
            epode_stanza_unref(n->forms[i]);
            n->forms[i] = copy;
            changed(d, node_name);
            return 0;
        }
    if (grow(d->mem, (void **)&n->forms, &n->capforms, n->nforms, sizeof *n->forms) < 0) {
        epode_stanza_unref(copy);
        node_gc(d, n);
        return EPODE_ENOMEM;
    }
    n->forms[n->nforms++] = copy;
    changed(d, node_name);
    return 0;
}

int epode_disco_remove_form(epode_disco_t *d, const char *node_name, const char *form_type)
{
    if (!d || !form_type)
        return EPODE_EINVAL;
    node *n = node_find(d, node_name);
    for (size_t i = 0; n && i < n->nforms; i++)
        if (str_eq(form_type_of(held_form(n->forms[i])), form_type)) {
            epode_stanza_unref(n->forms[i]);
            memmove(&n->forms[i], &n->forms[i + 1], (n->nforms - i - 1) * sizeof *n->forms);
            n->nforms--;
            node_gc(d, n);
            changed(d, node_name);
            return 0;
        }
    return EPODE_ENOTFOUND;
}

int epode_disco_add_item(epode_disco_t *d, const char *node_name, const char *jid,
                         const char *item_node, const char *name)
{
    if (!d || !jid)
        return EPODE_EINVAL;
    if (epode_jid_validate(jid) != 0)
        return EPODE_EJID;
    node *n;
    int rc = node_get(d, node_name, &n);
    if (rc < 0)
        return rc;
    int err = 0;
    for (size_t i = 0; i < n->nitems; i++)
        if (str_eq(n->items[i].jid, jid) && str_eq(n->items[i].node, item_node)) {
            char *nn = dup_or_null(d->mem, name, &err);
            if (err)
                return EPODE_ENOMEM;
            im_free(d->mem, n->items[i].name);
            n->items[i].name = nn;
            changed(d, node_name);
            return 0;
        }
    if (grow(d->mem, (void **)&n->items, &n->capitems, n->nitems, sizeof *n->items) < 0) {
        node_gc(d, n);
        return EPODE_ENOMEM;
    }
    item it = {dup_or_null(d->mem, jid, &err), dup_or_null(d->mem, item_node, &err), dup_or_null(d->mem, name, &err)};
    if (err) {
        item_clear(d->mem, &it);
        node_gc(d, n);
        return EPODE_ENOMEM;
    }
    n->items[n->nitems++] = it;
    changed(d, node_name);
    return 0;
}

int epode_disco_remove_item(epode_disco_t *d, const char *node_name, const char *jid,
                            const char *item_node)
{
    if (!d || !jid)
        return EPODE_EINVAL;
    node *n = node_find(d, node_name);
    for (size_t i = 0; n && i < n->nitems; i++)
        if (str_eq(n->items[i].jid, jid) && str_eq(n->items[i].node, item_node)) {
            item_clear(d->mem, &n->items[i]);
            memmove(&n->items[i], &n->items[i + 1], (n->nitems - i - 1) * sizeof *n->items);
            n->nitems--;
            node_gc(d, n);
            changed(d, node_name);
            return 0;
        }
    return EPODE_ENOTFOUND;
}

int epode_disco_set_alias(epode_disco_t *d, const char *a, const char *target)
{
    if (!d || !a)
        return EPODE_EINVAL;
    int err = 0;
    char *t = dup_or_null(d->mem, target, &err);
    if (err)
        return EPODE_ENOMEM;
    for (size_t i = 0; i < d->naliases; i++)
        if (strcmp(d->aliases[i].alias, a) == 0) {
            im_free(d->mem, d->aliases[i].target);
            d->aliases[i].target = t;
            return 0;
        }
    char *an = im_strdup(d->mem, a);
    if (!an || grow(d->mem, (void **)&d->aliases, &d->capaliases, d->naliases, sizeof *d->aliases) < 0) {
        im_free(d->mem, an), im_free(d->mem, t);
        return EPODE_ENOMEM;
    }
    d->aliases[d->naliases++] = (alias){an, t};
    return 0;
}

int epode_disco_remove_alias(epode_disco_t *d, const char *a)
{
    if (!d || !a)
        return EPODE_EINVAL;
    for (size_t i = 0; i < d->naliases; i++)
        if (strcmp(d->aliases[i].alias, a) == 0) {
            im_free(d->mem, d->aliases[i].alias), im_free(d->mem, d->aliases[i].target);
            d->aliases[i] = d->aliases[--d->naliases];
            return 0;
        }
    return EPODE_ENOTFOUND;
}

/* The node a request for `name` is answered from (aliases followed once). */
static node *resolve(const epode_disco_t *d, const char *name)
{
    if (name)
        for (size_t i = 0; i < d->naliases; i++)
            if (strcmp(d->aliases[i].alias, name) == 0)
                return node_find(d, d->aliases[i].target);
    return node_find(d, name);
}

static int build_query(const node *n, const char *ns, const char *node_attr, int items,
                       epode_stanza_t *query)
{
    int rc = 0;
    (void)ns;
    if (node_attr && (rc = epode_stanza_set_attr(query, "node", node_attr)) < 0)
        return rc;
    if (items) {
        for (size_t i = 0; i < n->nitems && rc == 0; i++) {
            epode_stanza_t *c;
            if ((rc = epode_stanza_add_child_new(query, "item", NULL, &c)) < 0)
                break;
            rc = epode_stanza_set_attr(c, "jid", n->items[i].jid);
            if (rc == 0 && n->items[i].node)
                rc = epode_stanza_set_attr(c, "node", n->items[i].node);
            if (rc == 0 && n->items[i].name)
                rc = epode_stanza_set_attr(c, "name", n->items[i].name);
        }
        return rc;
    }
    for (size_t i = 0; i < n->nids && rc == 0; i++) {
        epode_stanza_t *c;
        if ((rc = epode_stanza_add_child_new(query, "identity", NULL, &c)) < 0)
            break;
        rc = epode_stanza_set_attr(c, "category", n->ids[i].category);
        if (rc == 0)
            rc = epode_stanza_set_attr(c, "type", n->ids[i].type);
        if (rc == 0 && n->ids[i].name)
            rc = epode_stanza_set_attr(c, "name", n->ids[i].name);
        if (rc == 0 && n->ids[i].lang)
            rc = epode_stanza_set_attr(c, "xml:lang", n->ids[i].lang);
    }
    for (size_t i = 0; i < n->nfeatures && rc == 0; i++) {
        epode_stanza_t *c;
        if ((rc = epode_stanza_add_child_new(query, "feature", NULL, &c)) == 0)
            rc = epode_stanza_set_attr(c, "var", n->features[i]);
    }
    for (size_t i = 0; i < n->nforms && rc == 0; i++)
        rc = epode_stanza_add_child(query, held_form(n->forms[i]), NULL);
    return rc;
}

int epode_disco_build_info(epode_disco_t *d, const char *node_name, epode_stanza_t **out)
{
    if (!d || !out)
        return EPODE_EINVAL;
    node *n = resolve(d, node_name);
    if (!n)
        return EPODE_ENOTFOUND;
    epode_stanza_t *q;
    int rc = epode_stanza_new(d->mem, "query", EPODE_NS_DISCO_INFO, &q);
    if (rc < 0)
        return rc;
    if ((rc = build_query(n, EPODE_NS_DISCO_INFO, node_name, 0, q)) < 0) {
        epode_stanza_unref(q);
        return rc;
    }
    *out = q;
    return 0;
}

/* ---- the responder --------------------------------------------------------- */

static int answer(epode_conn_t *conn, epode_stanza_t *iq, void *user, int items)
{
    epode_disco_t *d = user;
    const char *ns = items ? EPODE_NS_DISCO_ITEMS : EPODE_NS_DISCO_INFO;
    epode_stanza_t *q = epode_stanza_find_child(iq, "query", ns);
    if (!q)
        return EPODE_PASS;
    const char *node_name = epode_stanza_get_attr(q, "node");
    node *n = resolve(d, node_name);
    epode_stanza_t *reply = NULL;
    int rc;
    if (!n) {
        rc = epode_stanza_error_reply(iq, EPODE_COND_ITEM_NOT_FOUND, EPODE_ERRTYPE_DEFAULT,
                                      NULL, 0, &reply);
    } else {
        epode_stanza_t *rq;
        rc = epode_stanza_reply(iq, &reply);
        if (rc == 0)
            rc = epode_stanza_add_child_new(reply, "query", ns, &rq);
        if (rc == 0)
            rc = build_query(n, ns, node_name, items, rq);
    }
    if (rc < 0) {
        epode_stanza_unref(reply);
        reply = NULL;
        if (epode_stanza_error_reply(iq, EPODE_COND_INTERNAL_SERVER_ERROR, EPODE_ERRTYPE_DEFAULT,
                                     NULL, 0, &reply) < 0)
            return EPODE_HANDLED;
    }
    epode_conn_send(conn, reply);
    epode_stanza_unref(reply);
    return EPODE_HANDLED;
}

static int on_info_get(epode_conn_t *conn, epode_stanza_t *iq, void *user)
{
    epode_disco_t *d = user;
    return d->conn ? answer(conn, iq, user, 0) : EPODE_PASS;
}

static int on_items_get(epode_conn_t *conn, epode_stanza_t *iq, void *user)
{
    epode_disco_t *d = user;
    return d->conn ? answer(conn, iq, user, 1) : EPODE_PASS;
}

/* ---- the helper's life ------------------------------------------------------ */

/* The connection is being freed: our handler ids die with it. Pending
 * queries stay listed (their ids are what epode_disco_cancel() takes)
 * but their callbacks are never called. */
static void on_conn_event(epode_conn_t *conn, epode_conn_event_t ev, void *user)
{
    (void)conn;
    epode_disco_t *d = user;
    if (ev != EPODE_CONN_FREED)
        return;
    d->conn = NULL;
    d->h_info = d->h_items = d->h_ev = 0;
}

int epode_disco_new(epode_conn_t *conn, epode_disco_t **out)
{
    if (!conn || !out)
        return EPODE_EINVAL;
    const epode_mem_t *mem = im_mem(conn);
    epode_disco_t *d = im_zalloc(mem, sizeof *d);
    if (!d)
        return EPODE_ENOMEM;
    d->conn = conn;
    d->mem = mem;
    int rc = epode_disco_add_identity(d, NULL, "client", "bot", NULL, NULL);
    if (rc == 0)
        rc = epode_disco_add_feature(d, NULL, EPODE_NS_DISCO_INFO);
    if (rc == 0)
        rc = epode_disco_add_feature(d, NULL, EPODE_NS_DISCO_ITEMS);
    if (rc == 0)
        rc = epode_conn_add_handler(conn, "iq", EPODE_NS_DISCO_INFO, "get", on_info_get, d,
                               &d->h_info);
    if (rc == 0)
        rc = epode_conn_add_handler(conn, "iq", EPODE_NS_DISCO_ITEMS, "get", on_items_get, d,
                               &d->h_items);
    if (rc == 0)
        rc = epode_conn_add_event_cb(conn, on_conn_event, d, &d->h_ev);
    if (rc < 0) {
        epode_disco_free(d);
        return rc;
    }
    *out = d;
    return 0;
}

static void pending_free(const epode_mem_t *mem, pending *p)
{
    im_free(mem, p->jid), im_free(mem, p->node);
    im_free(mem, p);
}

void epode_disco_free(epode_disco_t *d)
{
    if (!d)
        return;
    if (d->conn && d->h_info)
        epode_conn_remove(d->conn, d->h_info);
    if (d->conn && d->h_items)
        epode_conn_remove(d->conn, d->h_items);
    if (d->conn && d->h_ev)
        epode_conn_remove(d->conn, d->h_ev);
    while (d->pending) {
        pending *p = d->pending;
        d->pending = p->next;
        if (d->conn)
            epode_conn_remove(d->conn, p->id);
        pending_free(d->mem, p);
    }
    const epode_mem_t *mem = d->mem;
    for (size_t i = 0; i < d->nnodes; i++)
        node_free(mem, d->nodes[i]);
    for (size_t i = 0; i < d->naliases; i++)
        im_free(mem, d->aliases[i].alias), im_free(mem, d->aliases[i].target);
    im_free(mem, d->nodes), im_free(mem, d->aliases), im_free(mem, d->listeners);
    im_free(mem, d);
}

epode_conn_t *epode_disco_conn(const epode_disco_t *d)
{
    return d ? d->conn : NULL;
}

int epode_disco_add_changed_cb(epode_disco_t *d, epode_disco_changed_cb cb, void *user,
                               unsigned *id)
{
    if (!d || !cb)
        return EPODE_EINVAL;
    if (grow(d->mem, (void **)&d->listeners, &d->caplisteners, d->nlisteners, sizeof *d->listeners) < 0)
        return EPODE_ENOMEM;
    listener l = {++d->next_listener, cb, user};
    d->listeners[d->nlisteners++] = l;
    if (id)
        *id = l.id;
    return 0;
}

int epode_disco_remove_changed_cb(epode_disco_t *d, unsigned id)
{
    if (!d)
        return EPODE_EINVAL;
    for (size_t i = 0; i < d->nlisteners; i++)
        if (d->listeners[i].id == id) {
            memmove(&d->listeners[i], &d->listeners[i + 1],
                    (d->nlisteners - i - 1) * sizeof *d->listeners);
            d->nlisteners--;
            return 0;
        }
    return EPODE_ENOTFOUND;
}

/* ---- the client ----------------------------------------------------------- */

static void unlink_pending(epode_disco_t *d, pending *p)
{
    for (pending **pp = &d->pending; *pp; pp = &(*pp)->next)
        if (*pp == p) {
            *pp = p->next;
            return;
        }
}

static void on_answer(epode_conn_t *conn, epode_stanza_t *result, int status, void *user)
{
    (void)conn;
    pending *p = user;
    epode_disco_t *d = p->disco;
    const epode_mem_t *mem = d->mem; /* the callback may free d */
    unlink_pending(d, p);
    if (!d->conn) { /* the connection is being freed: forgotten, untold */
        pending_free(mem, p);
        return;
    }
    epode_stanza_cond_t cond = EPODE_COND_NONE;
    epode_disco_info_t *info = NULL;
    epode_disco_items_t *items = NULL;
    if (status == 0) {
        const char *type = epode_stanza_get_type(result);
        if (str_eq(type, "error")) {
            status = EPODE_EPROTOCOL;
            if (epode_stanza_get_error(result, &cond, NULL, NULL) < 0)
                cond = EPODE_COND_UNDEFINED_CONDITION;
        } else {
            int rc = p->items ? items_parse(mem, result, &items) : info_parse(mem, result, &info);
            if (rc < 0)
                status = rc == EPODE_ENOMEM ? rc : EPODE_EPROTOCOL;
        }
    }
    if (p->items)
        p->items_cb(d, p->jid, p->node, items, status, cond, p->user);
    else
        p->info_cb(d, p->jid, p->node, info, status, cond, p->user);
    epode_disco_info_free(info);
    epode_disco_items_free(items);
    pending_free(mem, p);
}

static int ask(epode_disco_t *d, const char *jid, const char *node_name, unsigned timeout_ms,
               epode_disco_info_cb info_cb, epode_disco_items_cb items_cb, void *user,
               unsigned *id)
{
    int items = items_cb != NULL;
    if (!d || (!info_cb && !items_cb))
        return EPODE_EINVAL;
    if (jid && epode_jid_validate(jid) != 0)
        return EPODE_EJID;
    if (!d->conn || !epode_conn_is_ready(d->conn))
        return EPODE_ESTATE;
    pending *p = im_zalloc(d->mem, sizeof *p);
    int err = 0;
    if (!p)
        return EPODE_ENOMEM;
    p->disco = d;
    p->items = items;
    p->info_cb = info_cb;
    p->items_cb = items_cb;
    p->user = user;
    p->jid = dup_or_null(d->mem, jid, &err);
    p->node = dup_or_null(d->mem, node_name, &err);
    epode_stanza_t *iq = NULL, *q;
    int rc = err ? EPODE_ENOMEM : epode_stanza_new_iq(d->mem, "get", NULL, &iq);
    if (rc == 0 && jid)
        rc = epode_stanza_set_to(iq, jid);
    if (rc == 0)
        rc = epode_stanza_add_child_new(iq, "query",
                                        items ? EPODE_NS_DISCO_ITEMS : EPODE_NS_DISCO_INFO, &q);
    if (rc == 0 && node_name)
        rc = epode_stanza_set_attr(q, "node", node_name);
    if (rc == 0)
        rc = epode_conn_send_iq(d->conn, iq, timeout_ms, on_answer, p, &p->id);
    epode_stanza_unref(iq);
    if (rc < 0) {
        pending_free(d->mem, p);
        return rc;
    }
    p->next = d->pending;
    d->pending = p;
    if (id)
        *id = p->id;
    return 0;
}

int epode_disco_get_info(epode_disco_t *d, const char *jid, const char *node_name,
                         unsigned timeout_ms, epode_disco_info_cb cb, void *user, unsigned *id)
{
    return ask(d, jid, node_name, timeout_ms, cb, NULL, user, id);
}

int epode_disco_get_items(epode_disco_t *d, const char *jid, const char *node_name,
                          unsigned timeout_ms, epode_disco_items_cb cb, void *user, unsigned *id)
{
    return ask(d, jid, node_name, timeout_ms, NULL, cb, user, id);
}

int epode_disco_cancel(epode_disco_t *d, unsigned id)
{
    if (!d)
        return EPODE_EINVAL;
    for (pending *p = d->pending; p; p = p->next)
        if (p->id == id) {
            unlink_pending(d, p);
            if (d->conn)
                epode_conn_remove(d->conn, p->id);
            pending_free(d->mem, p);
            return 0;
        }
    return EPODE_ENOTFOUND;
}
