/* lib/im/bookmarks.c — PEP native bookmarks (XEP-0402) on the pubsub
 * helper: the fetch on every READY, add (publish with the XEP's
 * publish-options) and remove (retract with notify), notifications from
 * our own account, a local sorted list, and autojoin through a MUC helper.
 *
 * The list is a sorted array of bookmarks keyed by the normalized room
 * JID; each keeps a copy of its `<conference/>` so `<extensions/>`
 * survive a change. An event is emitted only when the list really
 * changes (our own publish is confirmed by the answer and again by the
 * notification: the second one changes nothing). Freed before its
 * connection, the helper lets go of it on EPODE_CONN_FREED. */
#include <epode.h>

#include <stdlib.h>
#include <string.h>

#include "im_alloc.h"

struct epode_bookmark {
    char *room, *name, *nick, *password;
    int autojoin;
    epode_stanza_t *conference; /* our copy, for its extensions */
};

typedef struct bm_op {
    struct bm_op *next;
    epode_bookmarks_t *b;
    unsigned id;
    int fetch, remove, retried;
    epode_bookmark_t *bm; /* add: what was published (ours until applied) */
    char *room;           /* remove */
    epode_bookmarks_result_cb cb;
    void *user;
} bm_op;

struct epode_bookmarks {
    epode_pubsub_t *ps;
    epode_conn_t *conn;
    const epode_mem_t *mem;
    unsigned ev_id, conn_ev_id;
    int notify;
    epode_bookmarks_event_cb cb;
    void *user;
    epode_bookmark_t **list; /* sorted by room */
    size_t n, cap;
    int received;
    epode_muc_t *muc;
    char *default_nick;
    bm_op *ops;
    int freeing; /* in epode_bookmarks_free(): nothing new starts */
};

const char *epode_bookmark_room(const epode_bookmark_t *bm)
{
    return bm ? bm->room : NULL;
}

const char *epode_bookmark_name(const epode_bookmark_t *bm)
{
    return bm ? bm->name : NULL;
}

const char *epode_bookmark_nick(const epode_bookmark_t *bm)
{
    return bm ? bm->nick : NULL;
}

const char *epode_bookmark_password(const epode_bookmark_t *bm)
{
    return bm ? bm->password : NULL;
}

int epode_bookmark_autojoin(const epode_bookmark_t *bm)
{
    return bm ? bm->autojoin : 0;
}

const char *epode_bookmarks_event_name(epode_bookmarks_event_t event)
{
    static const char *const names[] = {"loaded", "added", "updated", "removed", "fetch_failed"};
    return (int)event >= EPODE_BOOKMARKS_LOADED && (int)event <= EPODE_BOOKMARKS_FETCH_FAILED
               ? names[event - EPODE_BOOKMARKS_LOADED]
               : NULL;
}

/* ---- bookmarks ------------------------------------------------------------------- */

static void bm_free(const epode_mem_t *mem, epode_bookmark_t *bm)
{
    if (!bm)
        return;
    im_free(mem, bm->room);
    im_free(mem, bm->name);
    im_free(mem, bm->nick);
    im_free(mem, bm->password);
    epode_stanza_unref(bm->conference);
    im_free(mem, bm);
}

/* The normalized bare JID of `room` (caller frees), or NULL with *rc. */
static char *norm_room(const epode_mem_t *mem, const char *room, int *rc)
{
    epode_jid_t *j;
    *rc = room ? epode_jid_new(mem, room, &j) : EPODE_EINVAL;
    if (*rc < 0) {
        if (*rc != EPODE_ENOMEM && *rc != EPODE_EINVAL)
            *rc = EPODE_EJID;
        return NULL;
    }
    char *s = NULL;
    if (!epode_jid_is_bare(j) || !epode_jid_local(j))
        *rc = EPODE_EJID;
    else if (!(s = im_strdup(mem, epode_jid_bare(j))))
        *rc = EPODE_ENOMEM;
    epode_jid_free(j);
    return s;
}

static int dup_opt(const epode_mem_t *mem, char **slot, const char *s)
{
    *slot = NULL;
    return s && !(*slot = im_strdup(mem, s)) ? EPODE_ENOMEM : 0;
}

/* A bookmark from an item (id + `<conference/>`); NULL with *rc: EPODE_EPROTOCOL
 * for an item that is not a bookmark, EPODE_ENOMEM. */
static epode_bookmark_t *bm_from_item(const epode_mem_t *mem, const char *id,
                                      const epode_stanza_t *conf, int *rc)
{
    if (!conf || strcmp(epode_stanza_get_name(conf), "conference") != 0 ||
        !epode_stanza_get_ns(conf) || strcmp(epode_stanza_get_ns(conf), EPODE_NS_BOOKMARKS) != 0) {
        *rc = EPODE_EPROTOCOL;
        return NULL;
    }
    epode_bookmark_t *bm = im_zalloc(mem, sizeof *bm);
    if (!bm) {
        *rc = EPODE_ENOMEM;
        return NULL;
    }
    if (!(bm->room = norm_room(mem, id, rc))) {
        if (*rc != EPODE_ENOMEM)
            *rc = EPODE_EPROTOCOL;
        bm_free(mem, bm);
        return NULL;
    }
    const char *aj = epode_stanza_get_attr(conf, "autojoin");
    bm->autojoin = aj && (strcmp(aj, "true") == 0 || strcmp(aj, "1") == 0);
    *rc = dup_opt(mem, &bm->name, epode_stanza_get_attr(conf, "name"));
    if (*rc == 0)
        *rc = dup_opt(mem, &bm->nick, epode_stanza_child_text(conf, "nick", EPODE_NS_BOOKMARKS));
    if (*rc == 0)
        *rc = dup_opt(mem, &bm->password,
                      epode_stanza_child_text(conf, "password", EPODE_NS_BOOKMARKS));
    if (*rc == 0)
        *rc = epode_stanza_copy(conf, &bm->conference);
    if (*rc < 0) {
        bm_free(mem, bm);
        return NULL;
    }
    return bm;
}

static int str_eq(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

static int bm_same(const epode_bookmark_t *a, const epode_bookmark_t *b)
{
    return a->autojoin == b->autojoin && str_eq(a->name, b->name) && str_eq(a->nick, b->nick) &&
           str_eq(a->password, b->password);
}

static size_t find_pos(const epode_bookmarks_t *b, const char *room, int *found)
{
    size_t lo = 0, hi = b->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(b->list[mid]->room, room);
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

static void emit(epode_bookmarks_t *b, epode_bookmarks_event_t ev, const epode_bookmark_t *bm)
{
    if (b->cb)
        b->cb(b, ev, bm, b->user);
}

static void autojoin(epode_bookmarks_t *b, const epode_bookmark_t *bm)
{
    if (!b->muc || !bm->autojoin || !b->conn || epode_muc_find(b->muc, bm->room))
        return;
    const char *nick = bm->nick ? bm->nick : b->default_nick;
    char local[1024];
    if (!nick) {
        const char *me = epode_conn_bound_jid(b->conn);
        size_t n = me ? strcspn(me, "@/") : 0;
        if (!me || !me[n] || me[n] != '@' || n >= sizeof local)
            return;
        memcpy(local, me, n);
        local[n] = '\0';
        nick = local;
    }
    epode_muc_join(b->muc, bm->room, nick, bm->password, -1, -1, NULL); /* failing: not joined */
}

/* Puts `bm` in the list (taking it), replacing one of the same room;
 * emits ADDED or UPDATED when something changed. EPODE_ELIMIT/ENOMEM
 * leave the list as it was and `bm` freed. */
static int put(epode_bookmarks_t *b, epode_bookmark_t *bm)
{
    int found;
    size_t pos = find_pos(b, bm->room, &found);
    if (found) {
        epode_bookmark_t *old = b->list[pos];
        int same = bm_same(old, bm);
        b->list[pos] = bm;
        bm_free(b->mem, old);
        if (!same) {
            emit(b, EPODE_BOOKMARKS_UPDATED, bm);
            autojoin(b, bm);
        }
        return 0;
    }
    if (b->n == EPODE_BOOKMARKS_MAX) {
        bm_free(b->mem, bm);
        return EPODE_ELIMIT;
    }
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 8;
        epode_bookmark_t **l = im_realloc(b->mem, b->list, cap * sizeof *l);
        if (!l) {
            bm_free(b->mem, bm);
            return EPODE_ENOMEM;
        }
        b->list = l;
        b->cap = cap;
    }
    memmove(b->list + pos + 1, b->list + pos, (b->n - pos) * sizeof *b->list);
    b->list[pos] = bm;
    b->n++;
    emit(b, EPODE_BOOKMARKS_ADDED, bm);
    autojoin(b, bm);
    return 0;
}

static void drop(epode_bookmarks_t *b, const char *room)
{
    int found;
    size_t pos = find_pos(b, room, &found);
    if (!found)
        return;
    epode_bookmark_t *bm = b->list[pos];
    memmove(b->list + pos, b->list + pos + 1, (b->n - pos - 1) * sizeof *b->list);
    b->n--;
    emit(b, EPODE_BOOKMARKS_REMOVED, bm);
    bm_free(b->mem, bm);
}

static int cmp_bm(const void *x, const void *y)
{
    return strcmp((*(epode_bookmark_t *const *)x)->room, (*(epode_bookmark_t *const *)y)->room);
}

/* A fetched list replaces ours whole: LOADED, then autojoin. */
static int load(epode_bookmarks_t *b, const epode_pubsub_reply_t *r)
{
    size_t n = epode_pubsub_reply_item_count(r), k = 0;
    epode_bookmark_t **l = n ? im_zalloc(b->mem, n * sizeof *l) : NULL;
    if (n && !l)
        return EPODE_ENOMEM;
    for (size_t i = 0; i < n && k < EPODE_BOOKMARKS_MAX; i++) {
        const epode_pubsub_item_t *it = epode_pubsub_reply_item_at(r, i);
        int rc;
        epode_bookmark_t *bm = bm_from_item(b->mem, epode_pubsub_item_id(it),
                                            epode_pubsub_item_payload(it), &rc);
        if (!bm && rc == EPODE_ENOMEM) {
            for (size_t j = 0; j < k; j++)
                bm_free(b->mem, l[j]);
            im_free(b->mem, l);
            return rc;
        }
        if (bm)
            l[k++] = bm;
    }
    if (k > 1)
        qsort(l, k, sizeof *l, cmp_bm);
    size_t w = 0; /* a room twice: the later one stays */
    for (size_t i = 0; i < k; i++) {
        if (w > 0 && strcmp(l[w - 1]->room, l[i]->room) == 0) {
            bm_free(b->mem, l[w - 1]);
            l[w - 1] = l[i];
        } else {
            l[w++] = l[i];
        }
    }
    for (size_t i = 0; i < b->n; i++)
        bm_free(b->mem, b->list[i]);
    im_free(b->mem, b->list);
    b->list = l;
    b->n = w;
    b->cap = n;
    b->received = 1;
    emit(b, EPODE_BOOKMARKS_LOADED, NULL);
    for (size_t i = 0; i < b->n && b->conn; i++)
        autojoin(b, b->list[i]);
    return 0;
}

/* ---- notifications ------------------------------------------------------------------ */

static void on_event(epode_pubsub_t *ps, epode_pubsub_event_type_t type, const char *from,
                     const char *node, const epode_pubsub_item_t *item, epode_stanza_t *msg,
                     void *user)
{
    (void)node, (void)msg;
    epode_bookmarks_t *b = user;
    if (!epode_pubsub_from_own_account(ps, from))
        return; /* only our own account may change our bookmarks */
    int rc;
    if (type == EPODE_PUBSUB_PUBLISHED) {
        epode_bookmark_t *bm = bm_from_item(b->mem, epode_pubsub_item_id(item),
                                            epode_pubsub_item_payload(item), &rc);
        if (bm)
            put(b, bm);
    } else if (type == EPODE_PUBSUB_RETRACTED) {
        char *room = norm_room(b->mem, epode_pubsub_item_id(item), &rc);
        if (room)
            drop(b, room);
        im_free(b->mem, room);
    } else { /* purged or deleted: nothing left */
        while (b->n)
            drop(b, b->list[b->n - 1]->room);
    }
}

/* ---- requests ------------------------------------------------------------------------ */

static void unlink_op(epode_bookmarks_t *b, bm_op *op)
{
    for (bm_op **p = &b->ops; *p; p = &(*p)->next)
        if (*p == op) {
            *p = op->next;
            return;
        }
}

static void op_free(epode_bookmarks_t *b, bm_op *op)
{
    bm_free(b->mem, op->bm);
    im_free(b->mem, op->room);
    im_free(b->mem, op);
}

static int xep0402_options(const epode_mem_t *mem, int minimal, epode_form_t **out);
static void on_reply(epode_pubsub_t *ps, const epode_pubsub_reply_t *r, void *user);
static void op_link(epode_bookmarks_t *b, bm_op *op);

/* An answer that refuses the publish-options themselves (an unknown
 * field or value), not the publish: worth asking again with fewer. */
static int refused_options(const epode_pubsub_reply_t *r)
{
    epode_stanza_cond_t c = epode_pubsub_reply_cond(r);
    return epode_pubsub_reply_pubsub_error(r) == EPODE_PUBSUB_ERR_INVALID_OPTIONS ||
           c == EPODE_COND_RESOURCE_CONSTRAINT || c == EPODE_COND_NOT_ACCEPTABLE ||
           c == EPODE_COND_BAD_REQUEST;
}

static int publish_again(epode_bookmarks_t *b, bm_op *op)
{
    epode_form_t *opts = NULL;
    int rc = xep0402_options(b->mem, 1, &opts);
    op->retried = 1;
    if (rc == 0)
        rc = epode_pubsub_publish(b->ps, NULL, EPODE_NS_BOOKMARKS, op->bm->room,
                                  op->bm->conference, opts, on_reply, op, &op->id);
    epode_form_free(opts);
    if (rc == 0)
        op_link(b, op);
    return rc;
}

/* After a publish that needed fewer options: the rest of what XEP-0402
 * asks for as node configuration (ejabberd takes it there), so
 * retractions are notified and older bookmarks are not pushed out. An
 * answer changes nothing here: the server may refuse some of it. */
static void configure_node(epode_bookmarks_t *b)
{
    epode_form_t *f = NULL;
    int rc = epode_form_new(b->mem, EPODE_FORM_SUBMIT, &f);
    if (rc == 0)
        rc = epode_form_set_value(f, "pubsub#notify_retract", "true");
    if (rc == 0)
        rc = epode_form_set_value(f, "pubsub#max_items", "max");
    if (rc == 0)
        rc = epode_form_set_value(f, "pubsub#send_last_published_item", "never");
    if (rc == 0)
        epode_pubsub_configure(b->ps, NULL, EPODE_NS_BOOKMARKS, f, NULL, NULL, NULL);
    epode_form_free(f);
}

static void on_reply(epode_pubsub_t *ps, const epode_pubsub_reply_t *r, void *user)
{
    (void)ps;
    bm_op *op = user;
    epode_bookmarks_t *b = op->b;
    unlink_op(b, op);
    int status = epode_pubsub_reply_status(r);
    epode_stanza_cond_t cond = epode_pubsub_reply_cond(r);
    if (!op->fetch && !op->remove && !op->retried && status == 0 && refused_options(r) &&
        publish_again(b, op) == 0)
        return; /* asked again with fewer options */
    if (epode_pubsub_reply_ok(r) && op->retried)
        configure_node(b); /* before the callback: the server sees it first */
    if (epode_pubsub_reply_ok(r)) {
        if (op->fetch) {
            status = load(b, r);
        } else if (op->remove) {
            drop(b, op->room);
        } else {
            epode_bookmark_t *bm = op->bm;
            op->bm = NULL;
            status = put(b, bm);
        }
    } else if (op->fetch && status == 0 && cond == EPODE_COND_ITEM_NOT_FOUND) {
        /* no node yet: no bookmarks */
        epode_pubsub_reply_t *none = NULL;
        status = load(b, none);
        cond = EPODE_COND_NONE;
    } else if (op->fetch && !op->cb && status != EPODE_ECANCELED) {
        emit(b, EPODE_BOOKMARKS_FETCH_FAILED, NULL);
    }
    if (op->cb)
        op->cb(b, status, cond, epode_pubsub_reply_pubsub_error(r), op->user);
    op_free(b, op);
}

static bm_op *op_new(epode_bookmarks_t *b, epode_bookmarks_result_cb cb, void *user)
{
    bm_op *op = im_zalloc(b->mem, sizeof *op);
    if (op) {
        op->b = b;
        op->cb = cb;
        op->user = user;
    }
    return op;
}

static void op_link(epode_bookmarks_t *b, bm_op *op)
{
    op->next = b->ops;
    b->ops = op;
}

int epode_bookmarks_fetch(epode_bookmarks_t *b, epode_bookmarks_result_cb cb, void *user)
{
    if (!b)
        return EPODE_EINVAL;
    if (b->freeing)
        return EPODE_ESTATE;
    bm_op *op = op_new(b, cb, user);
    if (!op)
        return EPODE_ENOMEM;
    op->fetch = 1;
    int rc = epode_pubsub_fetch(b->ps, NULL, EPODE_NS_BOOKMARKS, NULL, 0, on_reply, op, &op->id);
    if (rc < 0) {
        op_free(b, op);
        return rc;
    }
    op_link(b, op);
    return 0;
}

/* Writes bm's <conference/> (with the extensions of `old`, if any). */
static int build_conference(const epode_mem_t *mem, const epode_bookmark_t *bm,
                            const epode_bookmark_t *old, epode_stanza_t **out)
{
    epode_stanza_t *c, *el;
    int rc = epode_stanza_new(mem, "conference", EPODE_NS_BOOKMARKS, &c);
    if (rc < 0)
        return rc;
    if (bm->name)
        rc = epode_stanza_set_attr(c, "name", bm->name);
    if (rc == 0)
        rc = epode_stanza_set_attr(c, "autojoin", bm->autojoin ? "true" : "false");
    if (rc == 0 && bm->nick && (rc = epode_stanza_add_child_new(c, "nick", EPODE_NS_BOOKMARKS, &el)) == 0)
        rc = epode_stanza_set_text(el, bm->nick);
    if (rc == 0 && bm->password &&
        (rc = epode_stanza_add_child_new(c, "password", EPODE_NS_BOOKMARKS, &el)) == 0)
        rc = epode_stanza_set_text(el, bm->password);
    epode_stanza_t *ext = old && old->conference
                              ? epode_stanza_find_child(old->conference, "extensions", EPODE_NS_BOOKMARKS)
                              : NULL;
    if (rc == 0 && ext)
        rc = epode_stanza_add_child(c, ext, NULL);
    if (rc < 0) {
        epode_stanza_unref(c);
        return rc;
    }
    *out = c;
    return 0;
}

/* XEP-0402's publish-options; `minimal`: only the two every server knows
 * (ejabberd 23.01 refuses max_items and send_last_published_item there). */
static int xep0402_options(const epode_mem_t *mem, int minimal, epode_form_t **out)
{
    epode_form_t *f = NULL;
    int rc = epode_pubsub_options_new(mem, &f);
    if (rc == 0)
        rc = epode_form_set_value(f, "pubsub#persist_items", "true");
    if (rc == 0 && !minimal)
        rc = epode_form_set_value(f, "pubsub#max_items", "max");
    if (rc == 0 && !minimal)
        rc = epode_form_set_value(f, "pubsub#send_last_published_item", "never");
    if (rc == 0)
        rc = epode_form_set_value(f, "pubsub#access_model", "whitelist");
    if (rc < 0) {
        epode_form_free(f);
        return rc;
    }
    *out = f;
    return 0;
}

int epode_bookmarks_add(epode_bookmarks_t *b, const char *room, const char *name, int autojoin,
                        const char *nick, const char *password, epode_bookmarks_result_cb cb,
                        void *user)
{
    if (!b || !room)
        return EPODE_EINVAL;
    if (b->freeing || !b->conn || !epode_conn_is_ready(b->conn))
        return EPODE_ESTATE;
    int rc;
    epode_bookmark_t *bm = im_zalloc(b->mem, sizeof *bm);
    if (!bm)
        return EPODE_ENOMEM;
    bm->autojoin = !!autojoin;
    if (!(bm->room = norm_room(b->mem, room, &rc))) {
        bm_free(b->mem, bm);
        return rc;
    }
    if ((rc = dup_opt(b->mem, &bm->name, name)) == 0 && (rc = dup_opt(b->mem, &bm->nick, nick)) == 0)
        rc = dup_opt(b->mem, &bm->password, password);
    const epode_bookmark_t *old = rc == 0 ? epode_bookmarks_find(b, bm->room) : NULL;
    epode_form_t *opts = NULL;
    if (rc == 0)
        rc = build_conference(b->mem, bm, old, &bm->conference);
    if (rc == 0)
        rc = xep0402_options(b->mem, 0, &opts);
    bm_op *op = rc == 0 ? op_new(b, cb, user) : NULL;
    if (rc == 0 && !op)
        rc = EPODE_ENOMEM;
    if (rc == 0) {
        op->bm = bm;
        rc = epode_pubsub_publish(b->ps, NULL, EPODE_NS_BOOKMARKS, bm->room, bm->conference,
                                  opts, on_reply, op, &op->id);
    }
    epode_form_free(opts);
    if (rc < 0) {
        if (op)
            op_free(b, op); /* frees bm too */
        else
            bm_free(b->mem, bm);
        return rc;
    }
    op_link(b, op);
    return 0;
}

int epode_bookmarks_remove(epode_bookmarks_t *b, const char *room, epode_bookmarks_result_cb cb,
                           void *user)
{
    if (!b || !room)
        return EPODE_EINVAL;
    if (b->freeing || !b->conn || !epode_conn_is_ready(b->conn))
        return EPODE_ESTATE;
    int rc;
    char *norm = norm_room(b->mem, room, &rc);
    if (!norm)
        return rc;
    bm_op *op = op_new(b, cb, user);
    if (!op) {
        im_free(b->mem, norm);
        return EPODE_ENOMEM;
    }
    op->remove = 1;
    op->room = norm;
    rc = epode_pubsub_retract(b->ps, NULL, EPODE_NS_BOOKMARKS, norm, 1, on_reply, op, &op->id);
    if (rc < 0) {
        op_free(b, op);
        return rc;
    }
    op_link(b, op);
    return 0;
}

/* ---- the helper ----------------------------------------------------------------------- */

static void on_conn_event(epode_conn_t *conn, epode_conn_event_t ev, void *user)
{
    (void)conn;
    epode_bookmarks_t *b = user;
    if (ev == EPODE_CONN_FREED) {
        b->conn = NULL;
        b->conn_ev_id = 0;
        b->received = 0;
    } else if (ev == EPODE_CONN_DISCONNECTED) {
        b->received = 0;
    } else if (ev == EPODE_CONN_READY || (ev == EPODE_CONN_RESUMED && !b->received)) {
        epode_bookmarks_fetch(b, NULL, NULL); /* failing: the list stays as it was */
    }
}

int epode_bookmarks_new(epode_pubsub_t *ps, epode_bookmarks_event_cb cb, void *user,
                        epode_bookmarks_t **out)
{
    if (!ps || !out)
        return EPODE_EINVAL;
    epode_conn_t *conn = epode_pubsub_conn(ps);
    if (!conn)
        return EPODE_ESTATE;
    const epode_mem_t *mem = im_mem(conn);
    epode_bookmarks_t *b = im_zalloc(mem, sizeof *b);
    if (!b)
        return EPODE_ENOMEM;
    b->ps = ps;
    b->conn = conn;
    b->mem = mem;
    b->cb = cb;
    b->user = user;
    int rc = epode_pubsub_add_event_cb(ps, EPODE_NS_BOOKMARKS, on_event, b, &b->ev_id);
    if (rc == 0)
        rc = epode_conn_add_event_cb(conn, on_conn_event, b, &b->conn_ev_id);
    if (rc == 0) {
        rc = epode_pubsub_add_notify(ps, EPODE_NS_BOOKMARKS);
        b->notify = rc == 0;
        if (rc == EPODE_ESTATE)
            rc = 0; /* no disco helper: notifications only if asked otherwise */
    }
    if (rc == 0 && epode_conn_is_ready(conn))
        rc = epode_bookmarks_fetch(b, NULL, NULL);
    if (rc < 0) {
        epode_bookmarks_free(b);
        return rc;
    }
    *out = b;
    return 0;
}

void epode_bookmarks_free(epode_bookmarks_t *b)
{
    if (!b || b->freeing)
        return;
    b->freeing = 1; /* a canceled callback that tries again is refused */
    if (b->ev_id)
        epode_pubsub_remove_event_cb(b->ps, b->ev_id);
    if (b->notify)
        epode_pubsub_remove_notify(b->ps, EPODE_NS_BOOKMARKS);
    if (b->conn && b->conn_ev_id)
        epode_conn_remove(b->conn, b->conn_ev_id);
    while (b->ops) {
        bm_op *op = b->ops;
        b->ops = op->next;
        epode_pubsub_cancel(b->ps, op->id);
        if (op->cb)
            op->cb(b, EPODE_ECANCELED, EPODE_COND_NONE, EPODE_PUBSUB_ERR_NONE, op->user);
        op_free(b, op);
    }
    for (size_t i = 0; i < b->n; i++)
        bm_free(b->mem, b->list[i]);
    im_free(b->mem, b->list);
    im_free(b->mem, b->default_nick);
    im_free(b->mem, b);
}

int epode_bookmarks_set_autojoin(epode_bookmarks_t *b, epode_muc_t *muc, const char *default_nick)
{
    if (!b)
        return EPODE_EINVAL;
    char *nick = NULL;
    if (default_nick && !(nick = im_strdup(b->mem, default_nick)))
        return EPODE_ENOMEM;
    im_free(b->mem, b->default_nick);
    b->default_nick = nick;
    b->muc = muc;
    if (muc && b->received)
        for (size_t i = 0; i < b->n; i++)
            autojoin(b, b->list[i]);
    return 0;
}

size_t epode_bookmarks_count(const epode_bookmarks_t *b)
{
    return b ? b->n : 0;
}

const epode_bookmark_t *epode_bookmarks_at(const epode_bookmarks_t *b, size_t i)
{
    return b && i < b->n ? b->list[i] : NULL;
}

const epode_bookmark_t *epode_bookmarks_find(const epode_bookmarks_t *b, const char *room)
{
    if (!b || !room || !b->n)
        return NULL;
    int rc, found = 0;
    char *norm = norm_room(b->mem, room, &rc);
    size_t pos = norm ? find_pos(b, norm, &found) : 0;
    im_free(b->mem, norm);
    return found ? b->list[pos] : NULL;
}

int epode_bookmarks_received(const epode_bookmarks_t *b)
{
    return b ? b->received : 0;
}
