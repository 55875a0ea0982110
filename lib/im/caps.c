/* lib/im/caps.c — entity capabilities (XEP-0115): the verification string
 * (§5.1), <c/> on our available presence through an outgoing filter, and
 * the cache of others' capabilities, filled only with answers whose hash
 * we recomputed ourselves (§5.4). Built on the public API only (DESIGN.md,
 * principle 5) plus gnutls' hash function; never includes a lib/ header.
 *
 * What must stay true:
 * - A peer's answer is untrusted until its hash matches: a mismatch is
 *   neither cached nor attributed to anyone.
 * - An answer is served for another JID's ver (cached, persisted) only if
 *   the string it hashes has no other reading: no '<' in any item, no '/'
 *   in an identity's category, type or lang, and section boundaries that
 *   cannot move (see caps_hash()). A matching answer that fails only the
 *   boundary test belongs to the JID that sent it, and to no one else.
 * - What is kept is rebuilt from what the hash covers, nothing else of the
 *   peer's XML, so an entry cannot carry unhashed content to other JIDs.
 * - Everything a stranger can make us keep is bounded: JIDs tracked,
 *   queries in flight, cached entries and the bytes entries hold; reaching
 *   a bound is reported through the limit callback.
 * - Freed before its connection, the helper lets go of it on
 *   EPODE_CONN_FREED and never touches it again; it still needs its disco
 *   helper, which the application frees after it. */
#include <epode.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "im_alloc.h"

#define CACHE_MAX 4096       /* shared entries kept; beyond, entries are per JID */
#define PEERS_MAX 4096       /* default: JIDs whose capabilities are tracked */
#define QUERIES_MAX 16       /* default: disco#info requests in flight */
#define BYTES_MAX (8u << 20) /* default: about what all entries may hold */
#define INPUT_MAX 32768      /* the longest verification string input we keep */
#define PEER_BUCKETS 256

/* ---- the verification string -------------------------------------------- */

typedef struct sbuf { const epode_mem_t *mem; char *p; size_t len, cap; int oom; } sbuf;

static void sb_add(sbuf *b, const char *s)
{
    size_t n = strlen(s);
    if (b->oom)
        return;
    if (b->len + n + 2 > b->cap) {
        size_t nc = b->cap ? b->cap : 256;
        while (nc < b->len + n + 2)
            nc *= 2;
        char *np = im_realloc(b->mem, b->p, nc);
        if (!np) {
            b->oom = 1;
            return;
        }
        b->p = np;
        b->cap = nc;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_item(sbuf *b, const char *s)
{
    sb_add(b, s);
    sb_add(b, "<");
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int cmp_field(const void *a, const void *b)
{
    const epode_disco_field_t *x = *(const epode_disco_field_t *const *)a;
    const epode_disco_field_t *y = *(const epode_disco_field_t *const *)b;
    return strcmp(x->var, y->var);
}

typedef struct vform { const char *form_type; const epode_disco_form_t *form; } vform;

static int cmp_vform(const void *a, const void *b)
{
    return strcmp(((const vform *)a)->form_type, ((const vform *)b)->form_type);
}

static int algo_of(const char *name, gnutls_digest_algorithm_t *out)
{
    static const struct { const char *name; gnutls_digest_algorithm_t d; } algos[] = {
        {"sha-1", GNUTLS_DIG_SHA1},     {"sha-224", GNUTLS_DIG_SHA224},
        {"sha-256", GNUTLS_DIG_SHA256}, {"sha-384", GNUTLS_DIG_SHA384},
        {"sha-512", GNUTLS_DIG_SHA512},
    };
    for (size_t i = 0; name && i < sizeof algos / sizeof algos[0]; i++)
        if (strcmp(algos[i].name, name) == 0) {
            *out = algos[i].d;
            return 0;
        }
    return EPODE_EINVAL;
}

/* RFC 4648 §4 base64, padded, no line breaks. */
static int base64(const unsigned char *in, size_t n, char *out, size_t size)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    if (((n + 2) / 3) * 4 + 1 > size)
        return EPODE_ERANGE;
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)in[i] << 16;
        if (i + 1 < n)
            v |= (unsigned)in[i + 1] << 8;
        if (i + 2 < n)
            v |= in[i + 2];
        out[o++] = tab[(v >> 18) & 63];
        out[o++] = tab[(v >> 12) & 63];
        out[o++] = i + 1 < n ? tab[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? tab[v & 63] : '=';
    }
    out[o] = '\0';
    return 0;
}

/* The FORM_TYPE of a form XEP-0115 takes into account: NULL if the form
 * is to be ignored; *bad set if the form makes the answer ill-formed. */
static const char *hashed_form_type(const epode_disco_form_t *f, int *bad)
{
    const epode_disco_field_t *ft = NULL;
    for (size_t i = 0; i < f->nfields; i++)
        if (f->fields[i].var && strcmp(f->fields[i].var, "FORM_TYPE") == 0) {
            if (ft) {
                *bad = 1; /* two FORM_TYPE fields: ambiguous */
                return NULL;
            }
            ft = &f->fields[i];
        }
    if (!ft || !ft->type || strcmp(ft->type, "hidden") != 0 || ft->nvalues == 0)
        return NULL;
    for (size_t i = 1; i < ft->nvalues; i++)
        if (strcmp(ft->values[i], ft->values[0]) != 0) {
            *bad = 1;
            return NULL;
        }
    return ft->values[0];
}

/* "x/y/z..." with x and y not empty: it reads as an identity
 * (category/type/lang/name), so as a feature it could be one moved. */
static int identity_shaped(const char *s)
{
    const char *a = strchr(s, '/');
    if (!a || a == s)
        return 0;
    const char *b = strchr(a + 1, '/');
    return b && b != a + 1 && strchr(b + 1, '/') != NULL;
}

/* What caps_hash() learns besides the hash. */
typedef struct hashed {
    size_t len;    /* bytes of the string S */
    size_t items;  /* identities, features, forms' fields and values */
    int shareable; /* no other disco#info reads as the same S */
} hashed;

/* The hash, with `mem` for the scratch memory; `h` (may be NULL) gets
 * what else was learnt.
 *
 * Why S can be read another way, and what we refuse (issue 12): S is the
 * items of every section joined by '<'. An item containing '<' splits
 * into several, and a '/' in a category, type or lang moves the
 * identity's fields: both let a different answer give the same S, so
 * they make the answer ill-formed. Even without them, the boundaries
 * between sections can move: the last identities can become the first
 * features and identity-shaped first features can become identities, and
 * a tail of the (sorted) features can become a form whose FORM_TYPE and
 * fields are those features, which makes honest JIDs with that ver appear
 * to lack them (no '<' needed). So an answer is
 * only shareable if no feature is identity-shaped and, when it has forms,
 * the first FORM_TYPE does not sort after the last feature (then the
 * feature list could not go on into the forms, and every shareable answer
 * with this S has the same identities and features). The forms' insides
 * stay as ambiguous as XEP-0115 makes them (docs/security.md). */
static int caps_hash(const epode_mem_t *mem, const epode_disco_info_t *info, const char *algo,
                     char *out, size_t size, hashed *h)
{
    gnutls_digest_algorithm_t dig;
    if (!info || !out || algo_of(algo, &dig) < 0)
        return EPODE_EINVAL;
    int rc = 0, bad = 0, ambiguous = 0;
    size_t items = info->nidentities + info->nfeatures;
    sbuf s = {mem, NULL, 0, 0, 0};
    char **ids = im_zalloc(mem, (info->nidentities + 1) * sizeof *ids);
    const char **feats = im_zalloc(mem, (info->nfeatures + 1) * sizeof *feats);
    vform *forms = im_zalloc(mem, (info->nforms + 1) * sizeof *forms);
    const epode_disco_field_t **fields = NULL;
    const char **vals = NULL;
    size_t nforms = 0;
    if (!ids || !feats || !forms) {
        rc = EPODE_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < info->nidentities; i++) {
        const epode_disco_identity_t *id = &info->identities[i];
        if (!id->category || !*id->category || !id->type || !*id->type ||
            strpbrk(id->category, "/<") || strpbrk(id->type, "/<") ||
            (id->lang && strpbrk(id->lang, "/<")) || (id->name && strchr(id->name, '<'))) {
            bad = 1; /* its fields could be read another way */
            ids[i] = NULL;
            continue;
        }
        sbuf one = {mem, NULL, 0, 0, 0};
        sb_add(&one, id->category), sb_add(&one, "/"), sb_add(&one, id->type), sb_add(&one, "/");
        sb_add(&one, id->lang ? id->lang : ""), sb_add(&one, "/");
        sb_add(&one, id->name ? id->name : "");
        if (one.oom) {
            im_free(mem, one.p);
            rc = EPODE_ENOMEM;
            goto out;
        }
        ids[i] = one.p;
    }
    if (bad) {
        rc = EPODE_EPROTOCOL;
        goto out;
    }
    qsort(ids, info->nidentities, sizeof *ids, cmp_str);
    for (size_t i = 0; i < info->nidentities; i++) {
        if (i > 0 && strcmp(ids[i], ids[i - 1]) == 0)
            bad = 1;
        sb_item(&s, ids[i]);
    }
    for (size_t i = 0; i < info->nfeatures; i++)
        if (!info->features[i]) {
            rc = EPODE_EINVAL;
            goto out;
        }
    memcpy(feats, info->features, info->nfeatures * sizeof *feats);
    qsort(feats, info->nfeatures, sizeof *feats, cmp_str);
    for (size_t i = 0; i < info->nfeatures; i++) {
        if ((i > 0 && strcmp(feats[i], feats[i - 1]) == 0) || strchr(feats[i], '<'))
            bad = 1;
        if (identity_shaped(feats[i]))
            ambiguous = 1;
        sb_item(&s, feats[i]);
    }
    for (size_t i = 0; i < info->nforms; i++) {
        const char *ft = hashed_form_type(&info->forms[i], &bad);
        if (ft)
            forms[nforms++] = (vform){ft, &info->forms[i]};
    }
    qsort(forms, nforms, sizeof *forms, cmp_vform);
    if (nforms > 0 && (info->nfeatures == 0 ||
                       strcmp(forms[0].form_type, feats[info->nfeatures - 1]) > 0))
        ambiguous = 1; /* the features could go on into the forms */
    for (size_t i = 0; i < nforms && !bad; i++) {
        const epode_disco_form_t *f = forms[i].form;
        if (i > 0 && strcmp(forms[i].form_type, forms[i - 1].form_type) == 0) {
            bad = 1;
            break;
        }
        if (strchr(forms[i].form_type, '<'))
            bad = 1;
        sb_item(&s, forms[i].form_type);
        im_free(mem, (void *)fields);
        if (!(fields = im_zalloc(mem, (f->nfields + 1) * sizeof *fields))) {
            rc = EPODE_ENOMEM;
            goto out;
        }
        size_t nf = 0;
        for (size_t k = 0; k < f->nfields; k++)
            if (f->fields[k].var && strcmp(f->fields[k].var, "FORM_TYPE") != 0)
                fields[nf++] = &f->fields[k];
        qsort(fields, nf, sizeof *fields, cmp_field);
        for (size_t k = 0; k < nf; k++) {
            if (strchr(fields[k]->var, '<'))
                bad = 1;
            items += 1 + fields[k]->nvalues;
            sb_item(&s, fields[k]->var);
            im_free(mem, (void *)vals);
            if (!(vals = im_zalloc(mem, (fields[k]->nvalues + 1) * sizeof *vals))) {
                rc = EPODE_ENOMEM;
                goto out;
            }
            memcpy(vals, fields[k]->values, fields[k]->nvalues * sizeof *vals);
            qsort(vals, fields[k]->nvalues, sizeof *vals, cmp_str);
            for (size_t v = 0; v < fields[k]->nvalues; v++) {
                if (!vals[v] || strchr(vals[v], '<')) {
                    bad = 1;
                    break;
                }
                sb_item(&s, vals[v]);
            }
        }
    }
    if (bad) {
        rc = EPODE_EPROTOCOL;
        goto out;
    }
    if (s.oom) {
        rc = EPODE_ENOMEM;
        goto out;
    }
    unsigned char digest[64];
    if (gnutls_hash_fast(dig, s.p ? s.p : "", s.len, digest) < 0) {
        rc = EPODE_EINVAL;
        goto out;
    }
    rc = base64(digest, gnutls_hash_get_len(dig), out, size);
    if (rc == 0 && h)
        *h = (hashed){s.len, items, !ambiguous};
out:
    for (size_t i = 0; ids && i < info->nidentities; i++)
        im_free(mem, ids[i]);
    im_free(mem, ids), im_free(mem, (void *)feats), im_free(mem, forms);
    im_free(mem, (void *)fields), im_free(mem, (void *)vals), im_free(mem, s.p);
    return rc;
}

/* No connection here: scratch memory from the C library. */
int epode_caps_hash(const epode_disco_info_t *info, const char *algo, char *out, size_t size)
{
    return caps_hash(NULL, info, algo, out, size, NULL);
}

/* ---- the helper ---------------------------------------------------------- */

/* A disco#info for one hash/ver whose hash we checked, rebuilt from what
 * the hash covers (canonical()). Shared by every JID announcing hash/ver
 * (and then cached) if its S has no other reading; otherwise it belongs
 * to the one JID that sent it. */
typedef struct entry {
    int refs;
    int cached;  /* on the caps->cache list (one of the refs) */
    int own;     /* ours: never evicted */
    size_t cost; /* counted in caps->bytes while it lives */
    char *hash, *ver;
    epode_disco_info_t *info;
    struct entry *next;
} entry;

/* PENDING: waiting for an answer for its hash/ver (a query is out for
 * that ver, or it waits for a free query slot); KNOWN: p->e holds what
 * we know; FAILED: nothing is known and nothing will be asked until it
 * announces something else. */
enum { PEER_PENDING, PEER_KNOWN, PEER_FAILED };

/* What a full JID advertised last, and what we know of it. */
typedef struct peer {
    char *jid, *hash, *ver, *node;
    int state;
    entry *e;                 /* when KNOWN */
    struct peer *prev, *next; /* every peer, oldest first */
    struct peer *hnext;       /* the same bucket */
} peer;

/* A disco#info request in flight for one hash/ver (one at a time). */
typedef struct query {
    struct epode_caps *caps;
    char *hash, *ver, *asked;
    unsigned id;
    struct query *next;
} query;

struct epode_caps {
    epode_disco_t *disco;
    epode_conn_t *conn;
    const epode_mem_t *mem; /* the context's allocator, for all we own */
    int stale; /* a recompute failed (no memory): ver may lag the registry */
    char *node;
    char ver[EPODE_CAPS_VER_MAX];
    char *alias;
    unsigned h_out, h_pres, h_ev, h_changed;
    epode_stanza_t *last; /* our last broadcast available presence */
    entry *cache;
    size_t ncache;
    size_t bytes;                  /* the cost of every live entry */
    peer *peers, *peers_tail;
    peer *bucket[PEER_BUCKETS];
    size_t npeers;
    query *queries;
    size_t nqueries;
    size_t max_peers, max_queries, max_bytes;
    epode_caps_cb cb;
    void *cb_user;
    epode_caps_limit_cb limit_cb;
    void *limit_user;
    epode_caps_load_cb load;
    epode_caps_store_cb store;
    void *store_user;
};

static int str_eq(const char *a, const char *b)
{
    if (!a || !b)
        return a == b;
    return strcmp(a, b) == 0;
}

static void report_limit(epode_caps_t *c, epode_caps_limit_t limit, const char *jid)
{
    if (c->limit_cb)
        c->limit_cb(c, limit, jid, c->limit_user);
}

static void entry_unref(epode_caps_t *c, entry *e)
{
    if (e && --e->refs == 0) {
        c->bytes -= e->cost;
        im_free(c->mem, e->hash), im_free(c->mem, e->ver);
        epode_disco_info_free(e->info);
        im_free(c->mem, e);
    }
}

static entry *cache_find(const epode_caps_t *c, const char *hash, const char *ver)
{
    for (entry *e = c->cache; e; e = e->next)
        if (strcmp(e->hash, hash) == 0 && strcmp(e->ver, ver) == 0)
            return e;
    return NULL;
}

/* About the bytes an entry holds: its text, a tree node and an array
 * slot per item, the entry and its tree's root. */
static size_t entry_cost(const hashed *h)
{
    return 512 + h->len + 64 * h->items;
}

/* Drops cached entries no JID uses (newest first: a flood of new vers
 * pushes out its own entries before older ones) until `count` more
 * entries and `cost` more bytes fit. 1 if they do. */
static int make_room(epode_caps_t *c, size_t count, size_t cost)
{
    for (entry **ep = &c->cache; *ep;) {
        if (c->ncache + count <= CACHE_MAX && c->bytes + cost <= c->max_bytes)
            break;
        entry *e = *ep;
        if (e->refs > 1 || e->own) {
            ep = &e->next;
            continue;
        }
        *ep = e->next;
        c->ncache--;
        entry_unref(c, e);
    }
    return c->bytes + cost <= c->max_bytes;
}

/* A new entry (no reference yet) that takes ownership of `info` (freed
 * on failure). Bytes beyond the budget: NULL and *limited set, unless
 * `own`, which is always kept. */
static entry *entry_new(epode_caps_t *c, const char *hash, const char *ver,
                        epode_disco_info_t *info, size_t cost, int own, int *limited)
{
    entry *e = NULL;
    if (!own && !make_room(c, 0, cost)) {
        *limited = 1;
        goto failed;
    }
    e = im_zalloc(c->mem, sizeof *e);
    if (!e || !(e->hash = im_strdup(c->mem, hash)) || !(e->ver = im_strdup(c->mem, ver)))
        goto failed;
    e->info = info;
    e->cost = cost;
    e->own = own;
    c->bytes += cost;
    return e;
failed:
    if (e)
        im_free(c->mem, e->hash);
    im_free(c->mem, e);
    epode_disco_info_free(info);
    return NULL;
}

/* Puts a shared entry on the cache list if there is room for one more
 * (after dropping unused ones); otherwise it stays with the JIDs that
 * get it. */
static void cache_insert(epode_caps_t *c, entry *e)
{
    if (c->ncache >= CACHE_MAX && !make_room(c, 1, 0))
        return;
    if (c->ncache >= CACHE_MAX)
        return;
    e->cached = 1;
    e->refs++;
    e->next = c->cache;
    c->cache = e;
    c->ncache++;
}

static void notify(epode_caps_t *c, peer *p)
{
    if (c->cb)
        c->cb(c, p->jid, p->state == PEER_KNOWN ? p->e->info : NULL, c->cb_user);
}

static void peer_attach(epode_caps_t *c, peer *p, entry *e)
{
    if (p->e != e) {
        entry_unref(c, p->e);
        e->refs++;
        p->e = e;
    }
    p->state = PEER_KNOWN;
    notify(c, p);
}

/* Buckets by the local part (ASCII case folded) and the resource, the
 * parts epode_jid_str_equal() compares that a flood varies. */
static size_t peer_bucket(const char *jid)
{
    const char *slash = strchr(jid, '/');
    const char *at = memchr(jid, '@', slash ? (size_t)(slash - jid) : strlen(jid));
    uint32_t h = 2166136261u;
    for (const char *s = jid; at && s < at; s++) {
        unsigned char ch = (unsigned char)*s;
        h = (h ^ (ch >= 'A' && ch <= 'Z' ? ch + 32 : ch)) * 16777619u;
    }
    for (const char *s = slash; s && *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h % PEER_BUCKETS;
}

static peer *peer_find(const epode_caps_t *c, const char *jid)
{
    for (peer *p = c->bucket[peer_bucket(jid)]; p; p = p->hnext)
        if (epode_jid_str_equal(p->jid, jid, 0))
            return p;
    return NULL;
}

/* A new peer for `jid`, last in the list; NULL without memory. */
static peer *peer_new(epode_caps_t *c, const char *jid)
{
    peer *p = im_zalloc(c->mem, sizeof *p);
    if (!p || !(p->jid = im_strdup(c->mem, jid))) {
        im_free(c->mem, p);
        return NULL;
    }
    p->state = PEER_FAILED;
    p->prev = c->peers_tail;
    if (c->peers_tail)
        c->peers_tail->next = p;
    else
        c->peers = p;
    c->peers_tail = p;
    size_t b = peer_bucket(jid);
    p->hnext = c->bucket[b];
    c->bucket[b] = p;
    c->npeers++;
    return p;
}

static void peer_unlink(epode_caps_t *c, peer *p)
{
    for (peer **pp = &c->bucket[peer_bucket(p->jid)]; *pp; pp = &(*pp)->hnext)
        if (*pp == p) {
            *pp = p->hnext;
            break;
        }
    if (p->prev)
        p->prev->next = p->next;
    else
        c->peers = p->next;
    if (p->next)
        p->next->prev = p->prev;
    else
        c->peers_tail = p->prev;
    c->npeers--;
}

/* Forgets a peer (the application is told if it was known). */
static void peer_drop(epode_caps_t *c, peer *p)
{
    peer_unlink(c, p);
    if (p->state == PEER_KNOWN) {
        p->state = PEER_FAILED;
        notify(c, p);
    }
    entry_unref(c, p->e);
    im_free(c->mem, p->jid), im_free(c->mem, p->hash), im_free(c->mem, p->ver);
    im_free(c->mem, p->node);
    im_free(c->mem, p);
}

static void query_free(const epode_mem_t *mem, query *q)
{
    im_free(mem, q->hash), im_free(mem, q->ver), im_free(mem, q->asked);
    im_free(mem, q);
}

static void query_unlink(epode_caps_t *c, query *q)
{
    for (query **qq = &c->queries; *qq; qq = &(*qq)->next)
        if (*qq == q) {
            *qq = q->next;
            c->nqueries--;
            return;
        }
}

static int query_out(const epode_caps_t *c, const char *hash, const char *ver)
{
    for (query *q = c->queries; q; q = q->next)
        if (strcmp(q->hash, hash) == 0 && strcmp(q->ver, ver) == 0)
            return 1;
    return 0;
}

static int recompute(epode_caps_t *c);

/* Adds to `parent` an element `name` with attributes (NULL-terminated
 * name/value pairs; a NULL value leaves that one out). */
static epode_stanza_t *add_el(epode_stanza_t *parent, const char *name, const char *ns, int *rc,
                              ...)
{
    epode_stanza_t *el = NULL;
    if (*rc < 0 || (*rc = epode_stanza_add_child_new(parent, name, ns, &el)) < 0)
        return NULL;
    va_list ap;
    va_start(ap, rc);
    const char *a;
    while ((a = va_arg(ap, const char *))) {
        const char *v = va_arg(ap, const char *);
        if (v && *rc == 0)
            *rc = epode_stanza_set_attr(el, a, v);
    }
    va_end(ap);
    return *rc < 0 ? NULL : el;
}

/* What we keep of a checked answer: a <query/> rebuilt from exactly what
 * the verification string covers (identities, features, forms with a
 * hidden FORM_TYPE, their fields' vars and values). Whatever else the
 * peer put in its answer (forms XEP-0115 ignores, field types, labels,
 * other elements) is not in the hash, so it must not be kept. */
static int canonical(epode_caps_t *c, const epode_disco_info_t *info, epode_disco_info_t **out)
{
    epode_stanza_t *q;
    int rc = epode_stanza_new(c->mem, "query", EPODE_NS_DISCO_INFO, &q);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < info->nidentities && rc == 0; i++) {
        const epode_disco_identity_t *id = &info->identities[i];
        add_el(q, "identity", EPODE_NS_DISCO_INFO, &rc, "category", id->category, "type",
               id->type, "xml:lang", id->lang, "name", id->name, (const char *)NULL);
    }
    for (size_t i = 0; i < info->nfeatures && rc == 0; i++)
        add_el(q, "feature", EPODE_NS_DISCO_INFO, &rc, "var", info->features[i],
               (const char *)NULL);
    for (size_t i = 0; i < info->nforms && rc == 0; i++) {
        const epode_disco_form_t *f = &info->forms[i];
        int bad = 0;
        const char *ft = hashed_form_type(f, &bad);
        if (!ft)
            continue;
        epode_stanza_t *x = add_el(q, "x", EPODE_NS_DATA, &rc, "type", "result",
                                   (const char *)NULL);
        epode_stanza_t *fe = add_el(x, "field", EPODE_NS_DATA, &rc, "var", "FORM_TYPE", "type",
                                    "hidden", (const char *)NULL);
        epode_stanza_t *v = add_el(fe, "value", EPODE_NS_DATA, &rc, (const char *)NULL);
        if (rc == 0)
            rc = epode_stanza_set_text(v, ft);
        for (size_t k = 0; k < f->nfields && rc == 0; k++) {
            const epode_disco_field_t *fd = &f->fields[k];
            if (!fd->var || strcmp(fd->var, "FORM_TYPE") == 0)
                continue;
            fe = add_el(x, "field", EPODE_NS_DATA, &rc, "var", fd->var, (const char *)NULL);
            for (size_t n = 0; n < fd->nvalues && rc == 0; n++)
                if ((v = add_el(fe, "value", EPODE_NS_DATA, &rc, (const char *)NULL)))
                    rc = epode_stanza_set_text(v, fd->values[n]);
        }
    }
    if (rc == 0)
        rc = epode_disco_info_parse(q, out);
    epode_stanza_unref(q);
    return rc;
}

/* Takes an answer for hash/ver (ownership of `info`, freed in any case).
 * The hash must match. If the answer is shareable it is cached, handed
 * to the store hook when `persist`, and attributed to every JID waiting
 * for that ver; if not, it is attributed to `owner` only (NULL: refused).
 * `jid` names who sent it, for the limit callback. 0, or an error. */
static int take_answer(epode_caps_t *c, const char *hash, const char *ver,
                       epode_disco_info_t *info, peer *owner, const char *jid, int persist)
{
    char got[EPODE_CAPS_VER_MAX];
    hashed h;
    int rc = caps_hash(c->mem, info, hash, got, sizeof got, &h);
    if (rc == 0 && (strcmp(got, ver) != 0 || h.len > INPUT_MAX || (!h.shareable && !owner)))
        rc = EPODE_EPROTOCOL;
    epode_disco_info_t *clean = NULL;
    if (rc == 0)
        rc = canonical(c, info, &clean);
    epode_disco_info_free(info);
    if (rc < 0)
        return rc == EPODE_ENOMEM ? rc : EPODE_EPROTOCOL;
    int limited = 0;
    entry *e = entry_new(c, hash, ver, clean, entry_cost(&h), 0, &limited);
    if (!e) {
        if (limited)
            report_limit(c, EPODE_CAPS_LIMIT_MEMORY, jid);
        return limited ? EPODE_ELIMIT : EPODE_ENOMEM;
    }
    e->refs++; /* held across the callbacks below */
    if (!h.shareable) {
        peer_attach(c, owner, e);
    } else {
        if (persist && c->store) {
            char *xml;
            if (epode_stanza_to_text(e->info->query, 0, &xml, NULL) == 0) {
                c->store(c->store_user, hash, ver, xml);
                epode_free(xml);
            }
        }
        cache_insert(c, e);
        for (peer *p = c->peers; p; p = p->next)
            if (p->state == PEER_PENDING && str_eq(p->hash, hash) && str_eq(p->ver, ver))
                peer_attach(c, p, e);
    }
    entry_unref(c, e);
    return 0;
}

static void pump(epode_caps_t *c);

static void on_query_answer(epode_disco_t *disco, const char *jid, const char *node,
                            const epode_disco_info_t *info, int status,
                            epode_stanza_cond_t cond, void *user)
{
    (void)disco, (void)jid, (void)node, (void)cond;
    query *q = user;
    epode_caps_t *c = q->caps;
    query_unlink(c, q);
    peer *asked = peer_find(c, q->asked);
    if (asked && !(asked->state == PEER_PENDING && str_eq(asked->hash, q->hash) &&
                   str_eq(asked->ver, q->ver)))
        asked = NULL; /* gone, or it announces something else now */
    epode_disco_info_t *mine = NULL;
    int rc = status;
    if (rc == 0 && (rc = epode_disco_info_parse(info->query, &mine)) == 0)
        rc = take_answer(c, q->hash, q->ver, mine, asked, q->asked, 1);
    /* Not taken: the JID that answered keeps nothing; anyone else
     * announcing the same ver is asked in turn (§5.4), by pump(). */
    if (rc < 0 && asked && asked->state == PEER_PENDING)
        asked->state = PEER_FAILED;
    query_free(c->mem, q);
    pump(c);
}

static int start_query(epode_caps_t *c, peer *p)
{
    query *q = im_zalloc(c->mem, sizeof *q);
    if (!q || !(q->hash = im_strdup(c->mem, p->hash)) || !(q->ver = im_strdup(c->mem, p->ver)) ||
        !(q->asked = im_strdup(c->mem, p->jid))) {
        if (q)
            query_free(c->mem, q);
        return EPODE_ENOMEM;
    }
    q->caps = c;
    size_t n = strlen(p->node) + strlen(p->ver) + 2;
    char *nodever = im_alloc(c->mem, n);
    if (!nodever) {
        query_free(c->mem, q);
        return EPODE_ENOMEM;
    }
    snprintf(nodever, n, "%s#%s", p->node, p->ver);
    int rc = epode_disco_get_info(c->disco, p->jid, nodever, 0, on_query_answer, q, &q->id);
    im_free(c->mem, nodever);
    if (rc < 0) {
        query_free(c->mem, q);
        return rc;
    }
    q->next = c->queries;
    c->queries = q;
    c->nqueries++;
    return 0;
}

/* Asks for the oldest waiting vers while there are free query slots. */
static void pump(epode_caps_t *c)
{
    for (peer *p = c->peers; p && c->nqueries < c->max_queries; p = p->next)
        if (p->state == PEER_PENDING && !query_out(c, p->hash, p->ver) &&
            start_query(c, p) < 0)
            p->state = PEER_FAILED;
}

static int set_str(const epode_mem_t *mem, char **dst, const char *src)
{
    char *d = im_strdup(mem, src);
    if (!d)
        return EPODE_ENOMEM;
    im_free(mem, *dst);
    *dst = d;
    return 0;
}

/* The persistence hook's entry for hash/ver, checked like an answer: 1 if
 * it was taken (the JIDs waiting for it know it now). */
static int try_load(epode_caps_t *c, const char *jid, const char *hash, const char *ver)
{
    const char *xml = c->load(c->store_user, hash, ver);
    epode_stanza_t *q;
    epode_disco_info_t *info;
    if (!xml || epode_stanza_from_text(c->mem, xml, (size_t)-1, &q, NULL) != 0)
        return 0;
    int rc = epode_disco_info_parse(q, &info);
    epode_stanza_unref(q);
    return rc == 0 && take_answer(c, hash, ver, info, NULL, jid, 0) == 0;
}

static void on_advertised(epode_caps_t *c, const char *jid, const char *hash, const char *node,
                          const char *ver)
{
    peer *p = peer_find(c, jid);
    if (p && str_eq(p->hash, hash) && str_eq(p->ver, ver))
        return; /* nothing new (known, in flight, or already refused) */
    if (!p) {
        if (c->npeers >= c->max_peers) {
            report_limit(c, EPODE_CAPS_LIMIT_PEERS, jid);
            return;
        }
        if (!(p = peer_new(c, jid)))
            return;
    }
    int was_known = p->state == PEER_KNOWN;
    entry_unref(c, p->e);
    p->e = NULL;
    p->state = PEER_FAILED;
    if (set_str(c->mem, &p->hash, hash) < 0 || set_str(c->mem, &p->ver, ver) < 0 ||
        set_str(c->mem, &p->node, node) < 0) {
        if (was_known)
            notify(c, p);
        peer_drop(c, p);
        return;
    }
    gnutls_digest_algorithm_t dig;
    if (algo_of(hash, &dig) < 0) {
        /* a hash we cannot check: nothing is trusted */
        if (was_known)
            notify(c, p);
        return;
    }
    p->state = PEER_PENDING;
    entry *e = cache_find(c, hash, ver);
    if (e) {
        peer_attach(c, p, e);
        return;
    }
    if (was_known)
        notify(c, p); /* what we knew is stale */
    if (c->load && try_load(c, jid, hash, ver))
        return;
    if (query_out(c, hash, ver))
        return; /* one request per ver: this JID waits for it */
    if (c->nqueries >= c->max_queries) {
        report_limit(c, EPODE_CAPS_LIMIT_QUERIES, jid); /* asked when a slot frees */
        return;
    }
    if (start_query(c, p) < 0)
        p->state = PEER_FAILED;
}

static int on_presence(epode_conn_t *conn, epode_stanza_t *st, void *user)
{
    (void)conn;
    epode_caps_t *c = user;
    if (!c->conn)
        return EPODE_PASS;
    const char *from = epode_stanza_get_from(st), *type = epode_stanza_get_type(st);
    if (!from || epode_jid_validate(from) != 0)
        return EPODE_PASS;
    peer *p = peer_find(c, from);
    if (type && strcmp(type, "unavailable") == 0) {
        if (p)
            peer_drop(c, p);
        return EPODE_PASS;
    }
    if (type)
        return EPODE_PASS; /* subscriptions, probes, errors */
    epode_stanza_t *cel = epode_stanza_find_child(st, "c", EPODE_NS_CAPS);
    const char *hash = cel ? epode_stanza_get_attr(cel, "hash") : NULL;
    const char *node = cel ? epode_stanza_get_attr(cel, "node") : NULL;
    const char *ver = cel ? epode_stanza_get_attr(cel, "ver") : NULL;
    if (!hash || !node || !ver || !*ver || !*node) {
        if (p)
            peer_drop(c, p); /* no caps, or legacy caps we do not trust */
        return EPODE_PASS;
    }
    on_advertised(c, from, hash, node, ver);
    return EPODE_PASS;
}

/* The outgoing filter: <c/> on available presence; remembers the last
 * broadcast one so it can be sent again when our features change. */
static int on_outgoing_presence(epode_conn_t *conn, epode_stanza_t *st, void *user)
{
    (void)conn;
    epode_caps_t *c = user;
    const char *type = epode_stanza_get_type(st);
    int broadcast = epode_stanza_get_to(st) == NULL;
    if (type && strcmp(type, "unavailable") == 0) {
        if (broadcast) {
            epode_stanza_unref(c->last);
            c->last = NULL;
        }
        return 0;
    }
    if (type && strcmp(type, "available") != 0)
        return 0;
    if (c->stale)
        recompute(c); /* a change we could not follow earlier */
    epode_stanza_t *old;
    while ((old = epode_stanza_find_child(st, "c", EPODE_NS_CAPS)))
        epode_stanza_remove(old);
    if (c->ver[0]) {
        epode_stanza_t *cel;
        if (epode_stanza_add_child_new(st, "c", EPODE_NS_CAPS, &cel) == 0 &&
            (epode_stanza_set_attr(cel, "hash", "sha-1") < 0 ||
             epode_stanza_set_attr(cel, "node", c->node) < 0 ||
             epode_stanza_set_attr(cel, "ver", c->ver) < 0))
            epode_stanza_remove(cel); /* no memory: no <c/> rather than half of one */
    }
    if (broadcast) {
        epode_stanza_t *copy;
        if (epode_stanza_copy(st, &copy) == 0) {
            epode_stanza_unref(c->last);
            c->last = copy;
        }
    }
    return 0;
}

/* Recomputes our ver from what the disco helper answers: 1 if it changed,
 * 0 if not, EPODE_ENOMEM if it could not be worked out. Then nothing
 * changed (ver, alias) and c->stale asks for another try. */
static int recompute(epode_caps_t *c)
{
    epode_stanza_t *q;
    epode_disco_info_t *info;
    char ver[EPODE_CAPS_VER_MAX];
    int rc = epode_disco_build_info(c->disco, NULL, &q);
    if (rc == 0) {
        rc = epode_disco_info_parse(q, &info);
        epode_stanza_unref(q);
    }
    if (rc < 0)
        goto failed;
    hashed h;
    if ((rc = caps_hash(c->mem, info, "sha-1", ver, sizeof ver, &h)) < 0) {
        epode_disco_info_free(info);
        if (rc == EPODE_ENOMEM)
            goto failed;
        ver[0] = '\0';
    } else if (!cache_find(c, "sha-1", ver)) {
        /* ourselves: no need to ask, and true whatever else S could read as */
        int limited = 0;
        entry *e = entry_new(c, "sha-1", ver, info, entry_cost(&h), 1, &limited);
        if (!e) {
            rc = EPODE_ENOMEM;
            goto failed;
        }
        e->refs++;
        cache_insert(c, e);
        entry_unref(c, e);
    } else {
        epode_disco_info_free(info);
    }
    c->stale = 0;
    if (strcmp(ver, c->ver) == 0)
        return 0;
    /* the new node#ver alias first: if it cannot be made, the old ver stays */
    char *alias = NULL;
    if (ver[0]) {
        size_t n = strlen(c->node) + strlen(ver) + 2;
        if (!(alias = im_alloc(c->mem, n))) {
            rc = EPODE_ENOMEM;
            goto failed;
        }
        snprintf(alias, n, "%s#%s", c->node, ver);
        if ((rc = epode_disco_set_alias(c->disco, alias, NULL)) < 0) {
            im_free(c->mem, alias);
            goto failed;
        }
    }
    if (c->alias) {
        epode_disco_remove_alias(c->disco, c->alias);
        im_free(c->mem, c->alias);
    }
    entry *was = c->ver[0] ? cache_find(c, "sha-1", c->ver) : NULL;
    if (was)
        was->own = 0; /* an old ver of ours: may make room like any other */
    c->alias = alias;
    memcpy(c->ver, ver, sizeof ver);
    return 1;
failed:
    if (rc != EPODE_ENOMEM)
        return 0; /* as before: nothing to answer from, nothing changes */
    c->stale = 1;
    return rc;
}

static void on_disco_changed(epode_disco_t *disco, const char *node, void *user)
{
    (void)disco;
    epode_caps_t *c = user;
    if (node || recompute(c) <= 0)
        return;
    if (c->last && c->conn && epode_conn_is_ready(c->conn)) {
        epode_stanza_t *p = epode_stanza_ref(c->last); /* the filter replaces c->last */
        epode_conn_send(c->conn, p);
        epode_stanza_unref(p);
    }
}

static void forget_session(epode_caps_t *c)
{
    while (c->queries) {
        query *q = c->queries;
        c->queries = q->next;
        epode_disco_cancel(c->disco, q->id);
        query_free(c->mem, q);
    }
    c->nqueries = 0;
    while (c->peers)
        peer_drop(c, c->peers);
    epode_stanza_unref(c->last);
    c->last = NULL;
}

static void on_conn_event(epode_conn_t *conn, epode_conn_event_t ev, void *user)
{
    (void)conn;
    epode_caps_t *c = user;
    if (ev == EPODE_CONN_DISCONNECTED) {
        forget_session(c);
    } else if (ev == EPODE_CONN_FREED) {
        /* Our handler ids die with the connection. The disco helper
         * heard FREED first (it was made first): canceling our queries
         * there only forgets them. Nobody is told: the application is
         * freeing things. */
        c->conn = NULL;
        c->h_out = c->h_pres = c->h_ev = 0;
        epode_caps_cb cb = c->cb;
        c->cb = NULL;
        forget_session(c);
        c->cb = cb;
    }
}

int epode_caps_new(epode_disco_t *disco, const char *node, epode_caps_t **out)
{
    if (!disco || !node || !*node || !out)
        return EPODE_EINVAL;
    epode_conn_t *conn = epode_disco_conn(disco);
    if (!conn)
        return EPODE_ESTATE; /* the connection was freed */
    const epode_mem_t *mem = im_mem(conn);
    epode_caps_t *c = im_zalloc(mem, sizeof *c);
    if (!c)
        return EPODE_ENOMEM;
    c->disco = disco;
    c->conn = conn;
    c->mem = mem;
    c->max_peers = PEERS_MAX;
    c->max_queries = QUERIES_MAX;
    c->max_bytes = BYTES_MAX;
    int rc = (c->node = im_strdup(mem, node)) ? 0 : EPODE_ENOMEM;
    if (rc == 0)
        rc = epode_disco_add_feature(disco, NULL, EPODE_NS_CAPS);
    if (rc == 0)
        rc = epode_disco_add_changed_cb(disco, on_disco_changed, c, &c->h_changed);
    if (rc == 0)
        rc = epode_conn_add_filter(c->conn, "presence", NULL, NULL, on_outgoing_presence, c,
                                        &c->h_out);
    if (rc == 0)
        rc = epode_conn_add_handler(c->conn, "presence", NULL, NULL, on_presence, c, &c->h_pres);
    if (rc == 0)
        rc = epode_conn_add_event_cb(c->conn, on_conn_event, c, &c->h_ev);
    if (rc == 0 && (rc = recompute(c)) > 0)
        rc = 0;
    if (rc < 0) {
        epode_caps_free(c);
        return rc;
    }
    *out = c;
    return 0;
}

void epode_caps_free(epode_caps_t *c)
{
    if (!c)
        return;
    c->cb = NULL; /* freeing tells no one */
    if (c->h_changed)
        epode_disco_remove_changed_cb(c->disco, c->h_changed);
    if (c->conn && c->h_out)
        epode_conn_remove(c->conn, c->h_out);
    if (c->conn && c->h_pres)
        epode_conn_remove(c->conn, c->h_pres);
    if (c->conn && c->h_ev)
        epode_conn_remove(c->conn, c->h_ev);
    forget_session(c);
    if (c->alias)
        epode_disco_remove_alias(c->disco, c->alias);
    epode_disco_remove_feature(c->disco, NULL, EPODE_NS_CAPS);
    while (c->cache) {
        entry *e = c->cache;
        c->cache = e->next;
        entry_unref(c, e);
    }
    const epode_mem_t *mem = c->mem;
    im_free(mem, c->alias), im_free(mem, c->node);
    im_free(mem, c);
}

const char *epode_caps_get_ver(const epode_caps_t *c)
{
    return c && c->ver[0] ? c->ver : NULL;
}

const epode_disco_info_t *epode_caps_get_info(const epode_caps_t *c, const char *jid)
{
    if (!c || !jid)
        return NULL;
    peer *p = peer_find(c, jid);
    return p && p->state == PEER_KNOWN ? p->e->info : NULL;
}

int epode_caps_supports(const epode_caps_t *c, const char *jid, const char *feature)
{
    if (!c || !jid || !feature)
        return EPODE_EINVAL;
    const epode_disco_info_t *info = epode_caps_get_info(c, jid);
    if (!info)
        return EPODE_ENOTFOUND;
    return epode_disco_info_has_feature(info, feature);
}

int epode_caps_set_cb(epode_caps_t *c, epode_caps_cb cb, void *user)
{
    if (!c)
        return EPODE_EINVAL;
    c->cb = cb;
    c->cb_user = user;
    return 0;
}

int epode_caps_set_store(epode_caps_t *c, epode_caps_load_cb load, epode_caps_store_cb store,
                         void *user)
{
    if (!c)
        return EPODE_EINVAL;
    c->load = load;
    c->store = store;
    c->store_user = user;
    return 0;
}

size_t epode_caps_cache_count(const epode_caps_t *c)
{
    return c ? c->ncache : 0;
}

int epode_caps_set_limits(epode_caps_t *c, size_t max_peers, size_t max_queries,
                          size_t max_bytes)
{
    if (!c)
        return EPODE_EINVAL;
    if (max_peers)
        c->max_peers = max_peers;
    if (max_queries)
        c->max_queries = max_queries;
    if (max_bytes)
        c->max_bytes = max_bytes;
    return 0;
}

int epode_caps_set_limit_cb(epode_caps_t *c, epode_caps_limit_cb cb, void *user)
{
    if (!c)
        return EPODE_EINVAL;
    c->limit_cb = cb;
    c->limit_user = user;
    return 0;
}
