/* lib/im/caps.c — entity capabilities (XEP-0115): the verification string
 * (§5.1), <c/> on our available presence through an outgoing filter, and
 * the cache of others' capabilities, filled only with answers whose hash
 * we recomputed ourselves (§5.4). Built on the public API only (DESIGN.md,
 * principle 5) plus gnutls' hash function; never includes a lib/ header.
 * A peer's answer is untrusted until its hash matches: a mismatch is
 * neither cached nor attributed to anyone. */
#include <epode.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "im_alloc.h"

#define CACHE_MAX 4096 /* verified entries kept; beyond, entries are per JID */

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

/* The hash, with `mem` for the scratch memory. */
static int caps_hash(const epode_mem_t *mem, const epode_disco_info_t *info, const char *algo,
                     char *out, size_t size)
{
    gnutls_digest_algorithm_t dig;
    if (!info || !out || algo_of(algo, &dig) < 0)
        return EPODE_EINVAL;
    int rc = 0, bad = 0;
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
    qsort(ids, info->nidentities, sizeof *ids, cmp_str);
    for (size_t i = 0; i < info->nidentities; i++) {
        if (i > 0 && strcmp(ids[i], ids[i - 1]) == 0)
            bad = 1;
        sb_item(&s, ids[i]);
    }
    memcpy(feats, info->features, info->nfeatures * sizeof *feats);
    qsort(feats, info->nfeatures, sizeof *feats, cmp_str);
    for (size_t i = 0; i < info->nfeatures; i++) {
        if (i > 0 && strcmp(feats[i], feats[i - 1]) == 0)
            bad = 1;
        sb_item(&s, feats[i]);
    }
    for (size_t i = 0; i < info->nforms; i++) {
        const char *ft = hashed_form_type(&info->forms[i], &bad);
        if (ft)
            forms[nforms++] = (vform){ft, &info->forms[i]};
    }
    qsort(forms, nforms, sizeof *forms, cmp_vform);
    for (size_t i = 0; i < nforms && !bad; i++) {
        const epode_disco_form_t *f = forms[i].form;
        if (i > 0 && strcmp(forms[i].form_type, forms[i - 1].form_type) == 0) {
            bad = 1;
            break;
        }
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
            sb_item(&s, fields[k]->var);
            im_free(mem, (void *)vals);
            if (!(vals = im_zalloc(mem, (fields[k]->nvalues + 1) * sizeof *vals))) {
                rc = EPODE_ENOMEM;
                goto out;
            }
            memcpy(vals, fields[k]->values, fields[k]->nvalues * sizeof *vals);
            qsort(vals, fields[k]->nvalues, sizeof *vals, cmp_str);
            for (size_t v = 0; v < fields[k]->nvalues; v++)
                sb_item(&s, vals[v]);
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
    return caps_hash(NULL, info, algo, out, size);
}

/* ---- the helper ---------------------------------------------------------- */

/* A verified disco#info for one hash/ver, shared by the JIDs that use it. */
typedef struct entry {
    int refs;
    int cached; /* on the caps->cache list */
    char *hash, *ver;
    epode_disco_info_t *info;
    struct entry *next;
} entry;

enum { PEER_PENDING, PEER_KNOWN, PEER_FAILED };

/* What a full JID advertised last, and what we know of it. */
typedef struct peer {
    char *jid, *hash, *ver, *node;
    int state;
    entry *e; /* when KNOWN */
    struct peer *next;
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
    peer *peers;
    query *queries;
    epode_caps_cb cb;
    void *cb_user;
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

static void entry_unref(const epode_mem_t *mem, entry *e)
{
    if (e && --e->refs == 0) {
        im_free(mem, e->hash), im_free(mem, e->ver);
        epode_disco_info_free(e->info);
        im_free(mem, e);
    }
}

static entry *cache_find(const epode_caps_t *c, const char *hash, const char *ver)
{
    for (entry *e = c->cache; e; e = e->next)
        if (strcmp(e->hash, hash) == 0 && strcmp(e->ver, ver) == 0)
            return e;
    return NULL;
}

/* Takes ownership of `info` (freed on failure). The entry returned is
 * borrowed (the cache holds it) unless the cache is full, in which case
 * its only reference is the caller's to hand to a peer: refs is 0. */
static entry *cache_add(epode_caps_t *c, const char *hash, const char *ver,
                        epode_disco_info_t *info)
{
    entry *e = im_zalloc(c->mem, sizeof *e);
    if (!e || !(e->hash = im_strdup(c->mem, hash)) || !(e->ver = im_strdup(c->mem, ver))) {
        if (e)
            im_free(c->mem, e->hash);
        im_free(c->mem, e);
        epode_disco_info_free(info);
        return NULL;
    }
    e->info = info;
    if (c->ncache < CACHE_MAX) {
        e->cached = 1;
        e->refs = 1;
        e->next = c->cache;
        c->cache = e;
        c->ncache++;
    }
    return e;
}

static void notify(epode_caps_t *c, peer *p)
{
    if (c->cb)
        c->cb(c, p->jid, p->state == PEER_KNOWN ? p->e->info : NULL, c->cb_user);
}

static void peer_attach(epode_caps_t *c, peer *p, entry *e)
{
    if (p->e != e) {
        entry_unref(c->mem, p->e);
        e->refs++;
        p->e = e;
    }
    p->state = PEER_KNOWN;
    notify(c, p);
}

static peer *peer_find(const epode_caps_t *c, const char *jid)
{
    for (peer *p = c->peers; p; p = p->next)
        if (epode_jid_str_equal(p->jid, jid, 0))
            return p;
    return NULL;
}

static void peer_free(const epode_mem_t *mem, peer *p)
{
    entry_unref(mem, p->e);
    im_free(mem, p->jid), im_free(mem, p->hash), im_free(mem, p->ver), im_free(mem, p->node);
    im_free(mem, p);
}

static void peer_drop(epode_caps_t *c, const char *jid)
{
    for (peer **pp = &c->peers; *pp; pp = &(*pp)->next) {
        peer *p = *pp;
        if (!epode_jid_str_equal(p->jid, jid, 0))
            continue;
        *pp = p->next;
        int was_known = p->state == PEER_KNOWN;
        p->state = PEER_FAILED;
        if (was_known)
            notify(c, p);
        peer_free(c->mem, p);
        return;
    }
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
            return;
        }
}

static int start_query(epode_caps_t *c, peer *p);
static int recompute(epode_caps_t *c);

/* Verifies `info` against hash/ver; on success caches it and attributes
 * it to every JID waiting for that ver. Takes ownership of `info`. */
static int accept_info(epode_caps_t *c, const char *hash, const char *ver,
                       epode_disco_info_t *info, int store)
{
    char got[EPODE_CAPS_VER_MAX];
    int rc = caps_hash(c->mem, info, hash, got, sizeof got);
    if (rc < 0 || strcmp(got, ver) != 0) {
        epode_disco_info_free(info);
        return rc == EPODE_ENOMEM ? rc : EPODE_EPROTOCOL;
    }
    if (store && c->store) {
        char *xml;
        if (epode_stanza_to_text(info->query, 0, &xml, NULL) == 0) {
            c->store(c->store_user, hash, ver, xml);
            epode_free(xml);
        }
    }
    entry *e = cache_add(c, hash, ver, info);
    if (!e)
        return EPODE_ENOMEM;
    e->refs++; /* held across the callbacks below */
    for (peer *p = c->peers; p; p = p->next)
        if (p->state == PEER_PENDING && str_eq(p->hash, hash) && str_eq(p->ver, ver))
            peer_attach(c, p, e);
    entry_unref(c->mem, e);
    return 0;
}

static void on_query_answer(epode_disco_t *disco, const char *jid, const char *node,
                            const epode_disco_info_t *info, int status,
                            epode_stanza_cond_t cond, void *user)
{
    (void)disco, (void)node, (void)cond;
    query *q = user;
    epode_caps_t *c = q->caps;
    query_unlink(c, q);
    int ok = 0;
    epode_disco_info_t *mine = NULL;
    if (status == 0 && epode_disco_info_parse(info->query, &mine) == 0)
        ok = accept_info(c, q->hash, q->ver, mine, 1) == 0;
    if (!ok) {
        /* not trusted: the JID that answered keeps nothing; anyone else
         * advertising the same ver is asked in turn (§5.4) */
        peer *asked = peer_find(c, jid ? jid : q->asked);
        if (asked && asked->state == PEER_PENDING && str_eq(asked->hash, q->hash) &&
            str_eq(asked->ver, q->ver))
            asked->state = PEER_FAILED;
        for (peer *p = c->peers; p; p = p->next)
            if (p->state == PEER_PENDING && str_eq(p->hash, q->hash) && str_eq(p->ver, q->ver)) {
                if (start_query(c, p) < 0)
                    p->state = PEER_FAILED;
                break;
            }
    }
    query_free(c->mem, q);
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
    return 0;
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

static void on_advertised(epode_caps_t *c, const char *jid, const char *hash, const char *node,
                          const char *ver)
{
    peer *p = peer_find(c, jid);
    if (p && str_eq(p->hash, hash) && str_eq(p->ver, ver))
        return; /* nothing new (known, in flight, or already refused) */
    if (!p) {
        if (!(p = im_zalloc(c->mem, sizeof *p)) || !(p->jid = im_strdup(c->mem, jid))) {
            im_free(c->mem, p);
            return;
        }
        p->next = c->peers;
        c->peers = p;
    }
    int was_known = p->state == PEER_KNOWN;
    entry_unref(c->mem, p->e);
    p->e = NULL;
    p->state = PEER_FAILED;
    if (set_str(c->mem, &p->hash, hash) < 0 || set_str(c->mem, &p->ver, ver) < 0 ||
        set_str(c->mem, &p->node, node) < 0) {
        peer_drop(c, jid);
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
    if (c->load) {
        const char *xml = c->load(c->store_user, hash, ver);
        epode_stanza_t *q;
        epode_disco_info_t *info;
        if (xml && epode_stanza_from_text(c->mem, xml, (size_t)-1, &q, NULL) == 0) {
            int rc = epode_disco_info_parse(q, &info);
            epode_stanza_unref(q);
            if (rc == 0 && accept_info(c, hash, ver, info, 0) == 0)
                return;
        }
    }
    for (query *q = c->queries; q; q = q->next)
        if (strcmp(q->hash, hash) == 0 && strcmp(q->ver, ver) == 0)
            return; /* one request per ver: this JID waits for it */
    if (start_query(c, p) < 0)
        p->state = PEER_FAILED;
}

static int on_presence(epode_conn_t *conn, epode_stanza_t *st, void *user)
{
    (void)conn;
    epode_caps_t *c = user;
    const char *from = epode_stanza_get_from(st), *type = epode_stanza_get_type(st);
    if (!from || epode_jid_validate(from) != 0)
        return EPODE_PASS;
    if (type && strcmp(type, "unavailable") == 0) {
        peer_drop(c, from);
        return EPODE_PASS;
    }
    if (type)
        return EPODE_PASS; /* subscriptions, probes, errors */
    epode_stanza_t *cel = epode_stanza_find_child(st, "c", EPODE_NS_CAPS);
    const char *hash = cel ? epode_stanza_get_attr(cel, "hash") : NULL;
    const char *node = cel ? epode_stanza_get_attr(cel, "node") : NULL;
    const char *ver = cel ? epode_stanza_get_attr(cel, "ver") : NULL;
    if (!hash || !node || !ver || !*ver || !*node) {
        peer_drop(c, from); /* no caps, or legacy caps we do not trust */
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
    if ((rc = caps_hash(c->mem, info, "sha-1", ver, sizeof ver)) < 0) {
        epode_disco_info_free(info);
        if (rc == EPODE_ENOMEM)
            goto failed;
        ver[0] = '\0';
    } else if (!cache_find(c, "sha-1", ver)) {
        entry *e = cache_add(c, "sha-1", ver, info); /* ourselves: no need to ask */
        if (!e) {
            rc = EPODE_ENOMEM;
            goto failed;
        }
        if (!e->cached) {
            e->refs++;
            entry_unref(c->mem, e);
        }
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
    if (c->last && epode_conn_is_ready(c->conn)) {
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
    while (c->peers) {
        char *jid = im_strdup(c->mem, c->peers->jid);
        if (!jid) { /* drop it silently rather than loop */
            peer *p = c->peers;
            c->peers = p->next;
            peer_free(c->mem, p);
            continue;
        }
        peer_drop(c, jid);
        im_free(c->mem, jid);
    }
    epode_stanza_unref(c->last);
    c->last = NULL;
}

static void on_conn_event(epode_conn_t *conn, epode_conn_event_t ev, void *user)
{
    (void)conn;
    if (ev == EPODE_CONN_DISCONNECTED)
        forget_session(user);
}

int epode_caps_new(epode_disco_t *disco, const char *node, epode_caps_t **out)
{
    if (!disco || !node || !*node || !out)
        return EPODE_EINVAL;
    epode_conn_t *conn = epode_disco_conn(disco);
    const epode_mem_t *mem = im_mem(conn);
    epode_caps_t *c = im_zalloc(mem, sizeof *c);
    if (!c)
        return EPODE_ENOMEM;
    c->disco = disco;
    c->conn = conn;
    c->mem = mem;
    int rc = (c->node = im_strdup(mem, node)) ? 0 : EPODE_ENOMEM;
    if (rc == 0)
        rc = epode_disco_add_feature(disco, NULL, EPODE_NS_CAPS);
    if (rc == 0)
        rc = epode_disco_add_changed_cb(disco, on_disco_changed, c, &c->h_changed);
    if (rc == 0)
        rc = epode_handler_add_outgoing(c->conn, "presence", NULL, NULL, on_outgoing_presence, c,
                                        &c->h_out);
    if (rc == 0)
        rc = epode_handler_add(c->conn, "presence", NULL, NULL, on_presence, c, &c->h_pres);
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
    if (c->h_out)
        epode_handler_remove(c->conn, c->h_out);
    if (c->h_pres)
        epode_handler_remove(c->conn, c->h_pres);
    if (c->h_ev)
        epode_handler_remove(c->conn, c->h_ev);
    forget_session(c);
    if (c->alias)
        epode_disco_remove_alias(c->disco, c->alias);
    epode_disco_remove_feature(c->disco, NULL, EPODE_NS_CAPS);
    while (c->cache) {
        entry *e = c->cache;
        c->cache = e->next;
        entry_unref(c->mem, e);
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
