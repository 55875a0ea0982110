/* lib/im/roster.c — the roster helper (RFC 6121 §2): fetch on READY with
 * roster versioning, pushes from our own account applied and answered,
 * add/remove requests, change events and the application's cache hooks.
 *
 * Built on epode's public API only (DESIGN.md principle 5): no lib/
 * header may be included here. It never keeps a stanza: everything it
 * needs is copied out of the tree during the callback that lent it.
 * Everything it allocates, the stanzas it sends included, comes from the
 * context's allocator. Freed before its connection, the helper lets go of
 * it on EPODE_CONN_FREED and never touches it again (its items stay). */
#include <epode.h>

#include <string.h>

#include "im_alloc.h"

struct epode_roster_item {
    char *jid; /* normalized */
    char *name;
    epode_roster_sub_t sub;
    int ask;
    size_t ngroups;
    char **groups;
};

/* An add/remove request waiting for its answer. */
typedef struct roster_op {
    struct roster_op *next;
    epode_roster_t *roster;
    unsigned id;
    epode_roster_result_cb cb;
    void *user;
} roster_op;

struct epode_roster {
    epode_conn_t *conn;
    const epode_mem_t *mem; /* the context's allocator */
    unsigned push_id, listener_id, timer_id, fetch_id;
    int fetching;   /* a fetch IQ is out */
    int received;   /* a fetch completed on this connection */
    int loaded;     /* the cache's load hook has run */
    char *ver;      /* NULL: none known */
    epode_roster_item_t **items; /* sorted by jid */
    size_t count, cap;
    epode_roster_event_cb cb;
    void *cb_user;
    epode_roster_cache_t cache;
    roster_op *ops;
};

/* ---- items ----------------------------------------------------------- */

static void item_free(const epode_mem_t *mem, epode_roster_item_t *it)
{
    if (!it)
        return;
    for (size_t i = 0; i < it->ngroups; i++)
        im_free(mem, it->groups[i]);
    im_free(mem, it->groups);
    im_free(mem, it->name);
    im_free(mem, it->jid);
    im_free(mem, it);
}

/* The normalized form of a JID (caller frees with `mem`), or an error. */
static int normalize_jid(const epode_mem_t *mem, const char *text, char **out)
{
    epode_jid_t *j;
    int rc = epode_jid_new(mem, text, &j);
    if (rc < 0)
        return rc;
    *out = im_strdup(mem, epode_jid_full(j));
    epode_jid_free(j);
    return *out ? 0 : EPODE_ENOMEM;
}

static int item_has_group(const epode_roster_item_t *it, const char *g)
{
    for (size_t i = 0; i < it->ngroups; i++)
        if (strcmp(it->groups[i], g) == 0)
            return 1;
    return 0;
}

/* Inserts a group unless already there, keeping groups in byte order:
 * they are a set, and servers return them in no particular order. */
static int item_add_group(const epode_mem_t *mem, epode_roster_item_t *it, const char *g)
{
    if (item_has_group(it, g))
        return 0;
    char **ng = im_realloc(mem, it->groups, (it->ngroups + 1) * sizeof *ng);
    if (!ng)
        return EPODE_ENOMEM;
    it->groups = ng;
    char *copy = im_strdup(mem, g);
    if (!copy)
        return EPODE_ENOMEM;
    size_t at = it->ngroups;
    while (at > 0 && strcmp(ng[at - 1], copy) > 0) {
        ng[at] = ng[at - 1];
        at--;
    }
    ng[at] = copy;
    it->ngroups++;
    return 0;
}

static int item_make(const epode_mem_t *mem, const char *jid, const char *name,
                     epode_roster_sub_t sub, int ask, epode_roster_item_t **out)
{
    epode_roster_item_t *it = im_zalloc(mem, sizeof *it);
    if (!it)
        return EPODE_ENOMEM;
    int rc = normalize_jid(mem, jid, &it->jid);
    if (rc < 0) {
        im_free(mem, it);
        return rc;
    }
    if (name && !(it->name = im_strdup(mem, name))) {
        item_free(mem, it);
        return EPODE_ENOMEM;
    }
    it->sub = sub;
    it->ask = ask ? 1 : 0;
    *out = it;
    return 0;
}

static epode_roster_sub_t sub_from_name(const char *s)
{
    if (!s)
        return EPODE_ROSTER_SUB_NONE;
    if (!strcmp(s, "to"))
        return EPODE_ROSTER_SUB_TO;
    if (!strcmp(s, "from"))
        return EPODE_ROSTER_SUB_FROM;
    if (!strcmp(s, "both"))
        return EPODE_ROSTER_SUB_BOTH;
    if (!strcmp(s, "remove"))
        return EPODE_ROSTER_SUB_REMOVE;
    return EPODE_ROSTER_SUB_NONE; /* "none" or anything unknown */
}

/* Copies an <item/> out of a stanza. EPODE_EJID or EPODE_EINVAL for an
 * item without a valid JID. */
static int item_from_el(const epode_mem_t *mem, const epode_stanza_t *el,
                        epode_roster_item_t **out)
{
    const char *jid = epode_stanza_get_attr(el, "jid");
    if (!jid)
        return EPODE_EINVAL;
    const char *ask = epode_stanza_get_attr(el, "ask");
    epode_roster_item_t *it;
    int rc = item_make(mem, jid, epode_stanza_get_attr(el, "name"),
                       sub_from_name(epode_stanza_get_attr(el, "subscription")),
                       ask && !strcmp(ask, "subscribe"), &it);
    if (rc < 0)
        return rc;
    for (epode_stanza_t *g = epode_stanza_find_child(el, "group", EPODE_NS_ROSTER); g;
         g = epode_stanza_find_next(g, "group", EPODE_NS_ROSTER)) {
        const char *t = epode_stanza_get_text(g);
        if (!t) {
            item_free(mem, it);
            return EPODE_ENOMEM;
        }
        if (!*t)
            continue; /* an empty group name means nothing (RFC 6121 §2.1.2.5) */
        if ((rc = item_add_group(mem, it, t)) < 0) {
            item_free(mem, it);
            return rc;
        }
    }
    *out = it;
    return 0;
}

static int str_eq(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

/* Same content (groups compared as sets). */
static int item_same(const epode_roster_item_t *a, const epode_roster_item_t *b)
{
    if (a->sub != b->sub || a->ask != b->ask || !str_eq(a->name, b->name) ||
        a->ngroups != b->ngroups)
        return 0;
    for (size_t i = 0; i < a->ngroups; i++)
        if (!item_has_group(b, a->groups[i]))
            return 0;
    return 1;
}

/* ---- the sorted item array -------------------------------------------- */

/* Index of `jid` (normalized) or where it would go; *found says which. */
static size_t find_pos(epode_roster_item_t *const *items, size_t count, const char *jid,
                       int *found)
{
    size_t lo = 0, hi = count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(items[mid]->jid, jid);
        if (c == 0) {
            *found = 1;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = 0;
    return lo;
}

/* Makes room for one more item. */
static int array_reserve(const epode_mem_t *mem, epode_roster_item_t ***items, size_t count,
                         size_t *cap)
{
    if (count < *cap)
        return 0;
    size_t ncap = *cap ? *cap * 2 : 16;
    epode_roster_item_t **n = im_realloc(mem, *items, ncap * sizeof *n);
    if (!n)
        return EPODE_ENOMEM;
    *items = n;
    *cap = ncap;
    return 0;
}

/* Puts `it` into the array, taking it; an item with the same JID is
 * handed back in *old (or freed when old is NULL). On error nothing
 * changed and `it` is still the caller's. */
static int array_put(const epode_mem_t *mem, epode_roster_item_t ***items, size_t *count,
                     size_t *cap, epode_roster_item_t *it, epode_roster_item_t **old)
{
    int found;
    size_t pos = find_pos(*items, *count, it->jid, &found);
    if (old)
        *old = NULL;
    if (found) {
        if (old)
            *old = (*items)[pos];
        else
            item_free(mem, (*items)[pos]);
        (*items)[pos] = it;
        return 0;
    }
    int rc = array_reserve(mem, items, *count, cap);
    if (rc < 0)
        return rc;
    memmove(*items + pos + 1, *items + pos, (*count - pos) * sizeof **items);
    (*items)[pos] = it;
    (*count)++;
    return 0;
}

static void clear_items(epode_roster_t *r)
{
    for (size_t i = 0; i < r->count; i++)
        item_free(r->mem, r->items[i]);
    im_free(r->mem, r->items);
    r->items = NULL;
    r->count = r->cap = 0;
}

static int set_ver(epode_roster_t *r, const char *ver)
{
    char *v = NULL;
    if (ver && !(v = im_strdup(r->mem, ver)))
        return EPODE_ENOMEM;
    im_free(r->mem, r->ver);
    r->ver = v;
    return 0;
}

static void emit(epode_roster_t *r, epode_roster_event_t ev, const epode_roster_item_t *it)
{
    if (r->cb)
        r->cb(r, ev, it, r->cb_user);
}

static void store(epode_roster_t *r, int full, const epode_roster_item_t *const *items,
                  size_t count)
{
    if (r->cache.store)
        r->cache.store(r, r->ver, full, items, count, r->cache.user);
}

/* ---- fetch -------------------------------------------------------------- */

/* Replaces the roster with the items of a full result (NULL: none), then
 * tells the application what differs from what it held. EPODE_ENOMEM (and
 * nothing changed) when the new roster cannot be held whole. */
static int replace_all(epode_roster_t *r, const epode_stanza_t *query)
{
    epode_roster_item_t **items = NULL;
    size_t count = 0, cap = 0;
    epode_stanza_t *first = query ? epode_stanza_find_child(query, "item", EPODE_NS_ROSTER) : NULL;
    for (epode_stanza_t *el = first; el;
         el = epode_stanza_find_next(el, "item", EPODE_NS_ROSTER)) {
        epode_roster_item_t *it;
        int rc = item_from_el(r->mem, el, &it);
        if (rc == EPODE_ENOMEM)
            goto nomem;
        if (rc < 0)
            continue; /* an item we cannot read is left out, not fatal */
        if (it->sub == EPODE_ROSTER_SUB_REMOVE) {
            item_free(r->mem, it);
        } else if (array_put(r->mem, &items, &count, &cap, it, NULL) < 0) {
            item_free(r->mem, it);
            goto nomem;
        }
    }
    if (set_ver(r, query ? epode_stanza_get_attr(query, "ver") : NULL) < 0) {
        /* without memory for the version, forget it: the next fetch is full */
        im_free(r->mem, r->ver);
        r->ver = NULL;
    }
    epode_roster_item_t **old = r->items;
    size_t old_count = r->count;
    r->items = items;
    r->count = count;
    r->cap = cap;
    r->received = 1;

    /* Both arrays are sorted: one merge walk finds every difference. The
     * application may look at the new roster from its callbacks. */
    size_t i = 0, j = 0;
    while (i < old_count || j < count) {
        int c = i == old_count ? 1 : j == count ? -1 : strcmp(old[i]->jid, items[j]->jid);
        if (c < 0) {
            old[i]->sub = EPODE_ROSTER_SUB_REMOVE;
            emit(r, EPODE_ROSTER_REMOVED, old[i]);
            i++;
        } else if (c > 0) {
            emit(r, EPODE_ROSTER_ADDED, items[j]);
            j++;
        } else {
            if (!item_same(old[i], items[j]))
                emit(r, EPODE_ROSTER_UPDATED, items[j]);
            i++;
            j++;
        }
    }
    for (i = 0; i < old_count; i++)
        item_free(r->mem, old[i]);
    im_free(r->mem, old);
    store(r, 1, (const epode_roster_item_t *const *)r->items, r->count);
    emit(r, EPODE_ROSTER_RECEIVED, NULL);
    return 0;
nomem:
    for (size_t k = 0; k < count; k++)
        item_free(r->mem, items[k]);
    im_free(r->mem, items);
    return EPODE_ENOMEM;
}

static void on_fetch(epode_conn_t *conn, epode_stanza_t *res, int status, void *user)
{
    (void)conn;
    epode_roster_t *r = user;
    int sent_ver = r->fetching == 2;
    r->fetching = 0;
    r->fetch_id = 0;
    if (!r->conn)
        return; /* the connection is being freed */
    const char *type = res ? epode_stanza_get_type(res) : NULL;
    if (status < 0 || !type || strcmp(type, "result") != 0) {
        emit(r, EPODE_ROSTER_FETCH_FAILED, NULL);
        return;
    }
    epode_stanza_t *query = epode_stanza_find_child(res, "query", EPODE_NS_ROSTER);
    if (!query && sent_ver) {
        /* unchanged since our version; changes, if any, follow as pushes */
        r->received = 1;
        emit(r, EPODE_ROSTER_RECEIVED, NULL);
        return;
    }
    /* A result without a query when we sent no version cannot mean
     * "unchanged": it is an empty roster (replace_all takes NULL). Out of
     * memory, the roster and its version stay as they were and the fetch
     * failed: the application may fetch again. */
    if (replace_all(r, query) < 0)
        emit(r, EPODE_ROSTER_FETCH_FAILED, NULL);
}

static int start_fetch(epode_roster_t *r)
{
    if (!r->conn)
        return EPODE_ESTATE;
    if (r->fetching)
        return 0;
    if (!epode_conn_is_ready(r->conn))
        return EPODE_ESTATE;
    if (!r->loaded) {
        r->loaded = 1;
        if (r->cache.load && r->cache.load(r, r->cache.user) < 0) {
            clear_items(r);
            im_free(r->mem, r->ver);
            r->ver = NULL;
        }
    }
    /* With nothing cached, ask for a version anyway when the server
     * advertises versioning (RFC 6121 §2.6): ejabberd only starts
     * versioning for a client that sent ver="". */
    const char *ver = r->ver;
    const epode_stanza_t *features = epode_conn_stream_features(r->conn);
    if (!ver && features && epode_stanza_find_child(features, "ver", "urn:xmpp:features:rosterver"))
        ver = "";
    epode_stanza_t *iq, *q;
    int rc = epode_stanza_new_iq(r->mem, "get", NULL, &iq);
    if (rc < 0)
        return rc;
    if ((rc = epode_stanza_add_child_new(iq, "query", EPODE_NS_ROSTER, &q)) < 0 ||
        (ver && (rc = epode_stanza_set_attr(q, "ver", ver)) < 0) ||
        (rc = epode_conn_send_iq(r->conn, iq, 0, on_fetch, r, &r->fetch_id)) < 0) {
        epode_stanza_unref(iq);
        return rc;
    }
    epode_stanza_unref(iq);
    r->fetching = r->ver ? 2 : 1;
    return 0;
}

int epode_roster_fetch(epode_roster_t *r)
{
    if (!r)
        return EPODE_EINVAL;
    return start_fetch(r);
}

static void on_conn_event(epode_conn_t *conn, epode_conn_event_t ev, void *user)
{
    (void)conn;
    epode_roster_t *r = user;
    if (ev == EPODE_CONN_FREED) {
        /* Our ids die with the connection. Pending add/remove requests
         * stay listed: epode_roster_free() tells them EPODE_ECANCELED. */
        r->conn = NULL;
        r->push_id = r->listener_id = r->timer_id = r->fetch_id = 0;
        r->fetching = r->received = 0;
        for (roster_op *op = r->ops; op; op = op->next)
            op->id = 0;
    } else if (ev == EPODE_CONN_READY) {
        r->received = 0;
        if (start_fetch(r) < 0)
            emit(r, EPODE_ROSTER_FETCH_FAILED, NULL);
    } else if (ev == EPODE_CONN_DISCONNECTED) {
        r->received = 0;
    }
}

static int on_timer(epode_conn_t *conn, void *user)
{
    (void)conn;
    epode_roster_t *r = user;
    r->timer_id = 0;
    if (!r->conn)
        return 0; /* the connection is being freed */
    if (!r->received && !r->fetching && epode_conn_is_ready(r->conn) && start_fetch(r) < 0)
        emit(r, EPODE_ROSTER_FETCH_FAILED, NULL);
    return 0;
}

/* ---- pushes ------------------------------------------------------------- */

static void answer_error(epode_conn_t *conn, const epode_stanza_t *st, const char *why)
{
    epode_stanza_t *err;
    if (epode_stanza_error_reply(st, EPODE_COND_BAD_REQUEST, EPODE_ERRTYPE_DEFAULT, why, 0,
                                 &err) == 0) {
        epode_conn_send(conn, err);
        epode_stanza_unref(err);
    }
}

/* 1 if a push's sender is our own account: no 'from', or our bare JID
 * exactly (a full JID, even ours, is not the account). */
static int from_own_account(epode_conn_t *conn, const char *from)
{
    if (!from)
        return 1;
    const char *bound = epode_conn_bound_jid(conn);
    if (!bound)
        return 0;
    const epode_mem_t *mem = im_mem(conn);
    epode_jid_t *b, *f;
    if (epode_jid_new(mem, bound, &b) < 0)
        return 0;
    int ok = 0;
    if (epode_jid_new(mem, from, &f) == 0) {
        ok = epode_jid_is_bare(f) && epode_jid_str_equal(epode_jid_bare(b), from, 0);
        epode_jid_free(f);
    }
    epode_jid_free(b);
    return ok;
}

static int on_push(epode_conn_t *conn, epode_stanza_t *st, void *user)
{
    epode_roster_t *r = user;
    if (!r->conn || !from_own_account(conn, epode_stanza_get_from(st)))
        return EPODE_PASS; /* RFC 6121 §2.1.6: not a push; not ours to answer */
    epode_stanza_t *query = epode_stanza_first_child(st);
    if (!query || strcmp(epode_stanza_get_name(query), "query") != 0) {
        answer_error(conn, st, "not a roster query");
        return EPODE_HANDLED;
    }
    epode_stanza_t *el = epode_stanza_find_child(query, "item", EPODE_NS_ROSTER);
    if (!el || epode_stanza_find_next(el, "item", EPODE_NS_ROSTER)) {
        answer_error(conn, st, "a roster push carries exactly one item");
        return EPODE_HANDLED;
    }
    /* Out of memory anywhere before the push is answered, it is left
     * unanswered and unapplied, the version unchanged: the server may time
     * out, we lose nothing. Once answered, applying it cannot fail. */
    epode_roster_item_t *it;
    int rc = item_from_el(r->mem, el, &it);
    if (rc == EPODE_ENOMEM)
        return EPODE_HANDLED;
    if (rc < 0) {
        answer_error(conn, st, "the item has no valid JID");
        return EPODE_HANDLED;
    }
    int found;
    size_t pos = find_pos(r->items, r->count, it->jid, &found);
    const char *ver = epode_stanza_get_attr(query, "ver");
    char *nver = NULL;
    epode_stanza_t *ok = NULL;
    if ((ver && !(nver = im_strdup(r->mem, ver))) ||
        (it->sub != EPODE_ROSTER_SUB_REMOVE && !found &&
         array_reserve(r->mem, &r->items, r->count, &r->cap) < 0) ||
        epode_stanza_reply(st, &ok) < 0 || epode_conn_send(conn, ok) == EPODE_ENOMEM) {
        epode_stanza_unref(ok);
        im_free(r->mem, nver);
        item_free(r->mem, it);
        return EPODE_HANDLED;
    }
    epode_stanza_unref(ok);
    if (ver) {
        im_free(r->mem, r->ver);
        r->ver = nver;
    }

    if (it->sub == EPODE_ROSTER_SUB_REMOVE) {
        epode_roster_item_t *gone = NULL;
        if (found) {
            gone = r->items[pos];
            memmove(r->items + pos, r->items + pos + 1, (r->count - pos - 1) * sizeof *r->items);
            r->count--;
            gone->sub = EPODE_ROSTER_SUB_REMOVE;
            emit(r, EPODE_ROSTER_REMOVED, gone);
        }
        const epode_roster_item_t *changed = gone ? gone : it;
        store(r, 0, &changed, 1);
        item_free(r->mem, gone);
        item_free(r->mem, it);
        return EPODE_HANDLED;
    }
    epode_roster_item_t *old = NULL;
    if (array_put(r->mem, &r->items, &r->count, &r->cap, it, &old) < 0) {
        item_free(r->mem, it); /* cannot happen: the room was reserved */
        return EPODE_HANDLED;
    }
    if (!old)
        emit(r, EPODE_ROSTER_ADDED, it);
    else if (!item_same(old, it))
        emit(r, EPODE_ROSTER_UPDATED, it);
    item_free(r->mem, old);
    const epode_roster_item_t *changed = it;
    store(r, 0, &changed, 1);
    return EPODE_HANDLED;
}

/* ---- add / remove ------------------------------------------------------- */

static void unlink_op(epode_roster_t *r, roster_op *op)
{
    for (roster_op **p = &r->ops; *p; p = &(*p)->next)
        if (*p == op) {
            *p = op->next;
            return;
        }
}

static void on_op_answer(epode_conn_t *conn, epode_stanza_t *res, int status, void *user)
{
    (void)conn;
    roster_op *op = user;
    epode_roster_t *r = op->roster;
    if (!r->conn)
        return; /* the connection is being freed: epode_roster_free() tells it */
    unlink_op(r, op);
    epode_stanza_cond_t cond = EPODE_COND_NONE;
    const char *text = NULL;
    if (status == 0) {
        const char *type = epode_stanza_get_type(res);
        if (!type || strcmp(type, "result") != 0) {
            if (epode_stanza_get_error(res, &cond, NULL, &text) < 0 || cond == EPODE_COND_NONE)
                cond = EPODE_COND_UNDEFINED_CONDITION;
        }
    }
    if (op->cb)
        op->cb(r, status, cond, text, op->user);
    im_free(r->mem, op);
}

static int send_item(epode_roster_t *r, const char *jid, const char *name, int remove,
                     const char *const *groups, size_t ngroups, epode_roster_result_cb cb,
                     void *user)
{
    if (!r || !jid || (ngroups && !groups))
        return EPODE_EINVAL;
    for (size_t i = 0; i < ngroups; i++)
        if (!groups[i] || !*groups[i])
            return EPODE_EINVAL;
    int rc = epode_jid_validate(jid);
    if (rc < 0)
        return rc;
    if (!r->conn || !epode_conn_is_ready(r->conn))
        return EPODE_ESTATE;
    roster_op *op = im_zalloc(r->mem, sizeof *op);
    if (!op)
        return EPODE_ENOMEM;
    op->roster = r;
    op->cb = cb;
    op->user = user;
    epode_stanza_t *iq, *q, *item;
    if ((rc = epode_stanza_new_iq(r->mem, "set", NULL, &iq)) < 0) {
        im_free(r->mem, op);
        return rc;
    }
    if ((rc = epode_stanza_add_child_new(iq, "query", EPODE_NS_ROSTER, &q)) < 0 ||
        (rc = epode_stanza_add_child_new(q, "item", NULL, &item)) < 0 ||
        (rc = epode_stanza_set_attr(item, "jid", jid)) < 0 ||
        (remove && (rc = epode_stanza_set_attr(item, "subscription", "remove")) < 0) ||
        (name && (rc = epode_stanza_set_attr(item, "name", name)) < 0))
        goto fail;
    for (size_t i = 0; i < ngroups; i++) {
        int dup = 0;
        for (size_t k = 0; k < i; k++)
            dup |= strcmp(groups[k], groups[i]) == 0;
        epode_stanza_t *g;
        if (!dup && ((rc = epode_stanza_add_child_new(item, "group", NULL, &g)) < 0 ||
                     (rc = epode_stanza_set_text(g, groups[i])) < 0))
            goto fail;
    }
    if ((rc = epode_conn_send_iq(r->conn, iq, 0, on_op_answer, op, &op->id)) < 0)
        goto fail;
    epode_stanza_unref(iq);
    op->next = r->ops;
    r->ops = op;
    return 0;
fail:
    epode_stanza_unref(iq);
    im_free(r->mem, op);
    return rc;
}

int epode_roster_add(epode_roster_t *r, const char *jid, const char *name,
                     const char *const *groups, size_t ngroups, epode_roster_result_cb cb,
                     void *user)
{
    return send_item(r, jid, name, 0, groups, ngroups, cb, user);
}

int epode_roster_remove(epode_roster_t *r, const char *jid, epode_roster_result_cb cb,
                        void *user)
{
    return send_item(r, jid, NULL, 1, NULL, 0, cb, user);
}

/* ---- life cycle ---------------------------------------------------------- */

int epode_roster_new(epode_conn_t *conn, epode_roster_t **out)
{
    if (!conn || !out)
        return EPODE_EINVAL;
    const epode_mem_t *mem = im_mem(conn);
    epode_roster_t *r = im_zalloc(mem, sizeof *r);
    if (!r)
        return EPODE_ENOMEM;
    r->conn = conn;
    r->mem = mem;
    int rc = epode_conn_add_handler(conn, "iq", EPODE_NS_ROSTER, "set", on_push, r, &r->push_id);
    if (rc == 0)
        rc = epode_conn_add_event_cb(conn, on_conn_event, r, &r->listener_id);
    /* Already READY: fetch on the next loop turn, so the application can
     * set its callbacks and cache first. */
    if (rc == 0 && epode_conn_is_ready(conn))
        rc = epode_conn_add_timer(conn, 1, on_timer, r, &r->timer_id);
    if (rc < 0) {
        if (r->push_id)
            epode_conn_remove(conn, r->push_id);
        if (r->listener_id)
            epode_conn_remove(conn, r->listener_id);
        im_free(mem, r);
        return rc;
    }
    *out = r;
    return 0;
}

void epode_roster_free(epode_roster_t *r)
{
    if (!r)
        return;
    if (r->conn) {
        epode_conn_remove(r->conn, r->push_id);
        epode_conn_remove(r->conn, r->listener_id);
        if (r->timer_id)
            epode_conn_remove(r->conn, r->timer_id);
        if (r->fetch_id)
            epode_conn_remove(r->conn, r->fetch_id);
    }
    while (r->ops) {
        roster_op *op = r->ops;
        r->ops = op->next;
        if (r->conn && op->id)
            epode_conn_remove(r->conn, op->id);
        if (op->cb)
            op->cb(r, EPODE_ECANCELED, EPODE_COND_NONE, NULL, op->user);
        im_free(r->mem, op);
    }
    clear_items(r);
    im_free(r->mem, r->ver);
    im_free(r->mem, r);
}

int epode_roster_set_event_cb(epode_roster_t *r, epode_roster_event_cb cb, void *user)
{
    if (!r)
        return EPODE_EINVAL;
    r->cb = cb;
    r->cb_user = user;
    return 0;
}

int epode_roster_set_cache(epode_roster_t *r, const epode_roster_cache_t *cache)
{
    if (!r)
        return EPODE_EINVAL;
    if (cache)
        r->cache = *cache;
    else
        memset(&r->cache, 0, sizeof r->cache);
    return 0;
}

int epode_roster_load_item(epode_roster_t *r, const char *jid, const char *name,
                           epode_roster_sub_t sub, int ask, const char *const *groups,
                           size_t ngroups)
{
    if (!r || !jid || (ngroups && !groups) || sub < EPODE_ROSTER_SUB_NONE ||
        sub >= EPODE_ROSTER_SUB_REMOVE)
        return EPODE_EINVAL;
    for (size_t i = 0; i < ngroups; i++)
        if (!groups[i] || !*groups[i])
            return EPODE_EINVAL;
    epode_roster_item_t *it;
    int rc = item_make(r->mem, jid, name, sub, ask, &it);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < ngroups; i++)
        if ((rc = item_add_group(r->mem, it, groups[i])) < 0) {
            item_free(r->mem, it);
            return rc;
        }
    if ((rc = array_put(r->mem, &r->items, &r->count, &r->cap, it, NULL)) < 0)
        item_free(r->mem, it);
    return rc;
}

int epode_roster_load_ver(epode_roster_t *r, const char *ver)
{
    if (!r)
        return EPODE_EINVAL;
    return set_ver(r, ver);
}

int epode_roster_is_received(const epode_roster_t *r)
{
    return r ? r->received : 0;
}

const char *epode_roster_ver(const epode_roster_t *r)
{
    return r ? r->ver : NULL;
}

size_t epode_roster_count(const epode_roster_t *r)
{
    return r ? r->count : 0;
}

const epode_roster_item_t *epode_roster_item_at(const epode_roster_t *r, size_t i)
{
    return r && i < r->count ? r->items[i] : NULL;
}

const epode_roster_item_t *epode_roster_find(const epode_roster_t *r, const char *jid)
{
    if (!r || !jid)
        return NULL;
    char *norm;
    if (normalize_jid(r->mem, jid, &norm) < 0)
        return NULL;
    int found;
    size_t pos = find_pos(r->items, r->count, norm, &found);
    im_free(r->mem, norm);
    return found ? r->items[pos] : NULL;
}

const char *epode_roster_item_jid(const epode_roster_item_t *it)
{
    return it ? it->jid : NULL;
}

const char *epode_roster_item_name(const epode_roster_item_t *it)
{
    return it ? it->name : NULL;
}

epode_roster_sub_t epode_roster_item_subscription(const epode_roster_item_t *it)
{
    return it ? it->sub : EPODE_ROSTER_SUB_NONE;
}

int epode_roster_item_ask(const epode_roster_item_t *it)
{
    return it ? it->ask : 0;
}

size_t epode_roster_item_group_count(const epode_roster_item_t *it)
{
    return it ? it->ngroups : 0;
}

const char *epode_roster_item_group(const epode_roster_item_t *it, size_t i)
{
    return it && i < it->ngroups ? it->groups[i] : NULL;
}

const char *epode_roster_sub_name(epode_roster_sub_t sub)
{
    switch (sub) {
    case EPODE_ROSTER_SUB_NONE: return "none";
    case EPODE_ROSTER_SUB_TO: return "to";
    case EPODE_ROSTER_SUB_FROM: return "from";
    case EPODE_ROSTER_SUB_BOTH: return "both";
    case EPODE_ROSTER_SUB_REMOVE: return "remove";
    }
    return NULL;
}
