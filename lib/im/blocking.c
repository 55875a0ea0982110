/* lib/im/blocking.c — the Blocking Command (XEP-0191) on the public API:
 * the blocklist fetch on every READY, block/unblock requests, pushes from
 * our own account, and a local copy of the list.
 *
 * The list is a sorted array of normalized JIDs, bounded by `max`; a
 * change is applied whole or not at all (room is reserved before
 * anything moves), so an event always describes the list as it is.
 * Pushes from anyone but our own account never touch it. Freed before
 * its connection, the helper lets go of it on EPODE_CONN_FREED and never
 * touches it again (its list stays readable). */
#include <epode.h>

#include <stdlib.h>
#include <string.h>

#include "im_alloc.h"

typedef enum op_kind { OP_FETCH, OP_BLOCK, OP_UNBLOCK, OP_UNBLOCK_ALL } op_kind;

typedef struct blocking_op {
    struct blocking_op *next;
    epode_blocking_t *b;
    op_kind kind;
    unsigned id;
    char **jids; /* normalized, for block/unblock */
    size_t n;
    epode_blocking_result_cb cb;
    void *user;
} blocking_op;

struct epode_blocking {
    epode_conn_t *conn;
    const epode_mem_t *mem;
    unsigned push_id, ev_id;
    epode_blocking_event_cb cb;
    void *user;
    char **jids; /* sorted */
    size_t n, cap, max;
    int received;
    blocking_op *ops;
};

/* ---- the list ------------------------------------------------------------- */

/* The normalized form of `text` (caller frees), or NULL with *rc set. */
static char *normalize(const epode_mem_t *mem, const char *text, int *rc)
{
    epode_jid_t *j;
    *rc = text ? epode_jid_new(mem, text, &j) : EPODE_EJID;
    if (*rc < 0)
        return NULL;
    char *s = im_strdup(mem, epode_jid_full(j));
    epode_jid_free(j);
    if (!s)
        *rc = EPODE_ENOMEM;
    return s;
}

static size_t find_pos(const epode_blocking_t *b, const char *jid, int *found)
{
    size_t lo = 0, hi = b->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(b->jids[mid], jid);
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

static int reserve(epode_blocking_t *b, size_t want)
{
    if (want <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 16;
    while (cap < want)
        cap *= 2;
    char **j = im_realloc(b->mem, b->jids, cap * sizeof *j);
    if (!j)
        return EPODE_ENOMEM;
    b->jids = j;
    b->cap = cap;
    return 0;
}

static void emit(epode_blocking_t *b, epode_blocking_event_t ev, char *const *jids, size_t n)
{
    if (b->cb)
        b->cb(b, ev, (const char *const *)jids, n, b->user);
}

static void free_strings(const epode_mem_t *mem, char **s, size_t n)
{
    for (size_t i = 0; s && i < n; i++)
        im_free(mem, s[i]);
    im_free(mem, s);
}

static int cmp_jid(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Adds the JIDs in `add` that are not on the list; they are moved out of
 * `add` (set to NULL there), the others freed. Emits BLOCKED with them,
 * or LIMIT. 0, EPODE_ELIMIT or EPODE_ENOMEM (nothing changed then). Sort
 * and merge: n log n + N, whatever a push holds. */
static int apply_block(epode_blocking_t *b, char **add, size_t n)
{
    if (n > 1)
        qsort(add, n, sizeof *add, cmp_jid);
    size_t fresh = 0;
    for (size_t i = 0; i < n; i++) {
        int found;
        find_pos(b, add[i], &found);
        if (found || (fresh > 0 && strcmp(add[fresh - 1], add[i]) == 0)) {
            im_free(b->mem, add[i]);
            add[i] = NULL;
        } else {
            char *s = add[i];
            add[i] = NULL;
            add[fresh++] = s; /* compacted, still sorted */
        }
    }
    if (fresh == 0)
        return 0;
    if (b->n + fresh > b->max) {
        emit(b, EPODE_BLOCKING_LIMIT, NULL, 0);
        return EPODE_ELIMIT; /* `add` still holds them: the caller frees */
    }
    char **added = im_alloc(b->mem, fresh * sizeof *added);
    if (!added || reserve(b, b->n + fresh) < 0) {
        im_free(b->mem, added);
        return EPODE_ENOMEM;
    }
    memcpy(added, add, fresh * sizeof *added);
    /* merge from the end */
    size_t i = b->n, j = fresh, w = b->n + fresh;
    while (j > 0) {
        if (i > 0 && strcmp(b->jids[i - 1], add[j - 1]) > 0)
            b->jids[--w] = b->jids[--i];
        else
            b->jids[--w] = add[--j];
    }
    b->n += fresh;
    for (size_t k = 0; k < fresh; k++)
        add[k] = NULL; /* the list owns them now */
    emit(b, EPODE_BLOCKING_BLOCKED, added, fresh);
    im_free(b->mem, added);
    return 0;
}

/* Removes the JIDs in `rm` that are on the list; emits UNBLOCKED. One
 * pass over the list, whatever a push holds. */
static int apply_unblock(epode_blocking_t *b, char *const *rm, size_t n)
{
    if (b->n == 0)
        return 0;
    unsigned char *gone_mark = im_zalloc(b->mem, b->n);
    char **gone = im_alloc(b->mem, b->n * sizeof *gone);
    if (!gone_mark || !gone) {
        im_free(b->mem, gone_mark);
        im_free(b->mem, gone);
        return EPODE_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        int found;
        size_t pos = find_pos(b, rm[i], &found);
        if (found)
            gone_mark[pos] = 1;
    }
    size_t k = 0, w = 0;
    for (size_t i = 0; i < b->n; i++) {
        if (gone_mark[i])
            gone[k++] = b->jids[i];
        else
            b->jids[w++] = b->jids[i];
    }
    b->n = w;
    if (k)
        emit(b, EPODE_BLOCKING_UNBLOCKED, gone, k);
    free_strings(b->mem, gone, k);
    im_free(b->mem, gone_mark);
    return 0;
}

static void apply_unblock_all(epode_blocking_t *b)
{
    char **old = b->jids;
    size_t n = b->n;
    b->jids = NULL;
    b->n = b->cap = 0;
    if (n)
        emit(b, EPODE_BLOCKING_UNBLOCKED_ALL, old, n);
    free_strings(b->mem, old, n);
}

/* The items of a <block/>, <unblock/> or <blocklist/>: normalized, in
 * *out (caller frees). EPODE_EJID for an item without a valid JID,
 * EPODE_ELIMIT past `max` items, EPODE_ENOMEM. */
static int read_items(epode_blocking_t *b, const epode_stanza_t *el, char ***out, size_t *nout)
{
    size_t n = 0, cap = 0;
    char **v = NULL;
    int rc = 0;
    for (epode_stanza_t *it = epode_stanza_find_child(el, "item", EPODE_NS_BLOCKING); it;
         it = epode_stanza_find_next(it, "item", EPODE_NS_BLOCKING)) {
        if (n == b->max) {
            rc = EPODE_ELIMIT;
            break;
        }
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 8;
            char **nv = im_realloc(b->mem, v, nc * sizeof *nv);
            if (!nv) {
                rc = EPODE_ENOMEM;
                break;
            }
            v = nv;
            cap = nc;
        }
        if (!(v[n] = normalize(b->mem, epode_stanza_get_attr(it, "jid"), &rc)))
            break;
        n++;
    }
    if (rc < 0) {
        free_strings(b->mem, v, n);
        return rc;
    }
    *out = v;
    *nout = n;
    return 0;
}

/* ---- pushes ---------------------------------------------------------------- */

static void answer(epode_conn_t *conn, const epode_stanza_t *st, epode_stanza_cond_t cond,
                   const char *why)
{
    epode_stanza_t *r = NULL;
    int rc = cond == EPODE_COND_NONE
                 ? epode_stanza_reply(st, &r)
                 : epode_stanza_error_reply(st, cond, EPODE_ERRTYPE_DEFAULT, why, 0, &r);
    if (rc == 0)
        epode_conn_send(conn, r);
    epode_stanza_unref(r);
}

/* No 'from', or exactly our bare JID (a full JID, even ours, is not the
 * account). */
static int from_own_account(epode_conn_t *conn, const char *from)
{
    if (!from)
        return 1;
    const char *bound = epode_conn_bound_jid(conn);
    return bound && !strchr(from, '/') && epode_jid_str_equal(from, bound, 1);
}

static int on_push(epode_conn_t *conn, epode_stanza_t *st, void *user)
{
    epode_blocking_t *b = user;
    if (!b->conn || !from_own_account(conn, epode_stanza_get_from(st)))
        return EPODE_PASS; /* not ours to apply, nor to answer */
    epode_stanza_t *el = epode_stanza_first_child(st);
    const char *name = el ? epode_stanza_get_name(el) : "";
    int block = strcmp(name, "block") == 0;
    if (!block && strcmp(name, "unblock") != 0) {
        answer(conn, st, EPODE_COND_BAD_REQUEST, "not a blocklist push");
        return EPODE_HANDLED;
    }
    char **jids = NULL;
    size_t n = 0;
    int rc = read_items(b, el, &jids, &n);
    if (rc == EPODE_ENOMEM)
        return EPODE_HANDLED; /* unanswered, unapplied: the server may retry */
    if (rc == EPODE_ELIMIT) {
        emit(b, EPODE_BLOCKING_LIMIT, NULL, 0);
        answer(conn, st, EPODE_COND_RESOURCE_CONSTRAINT, "blocklist too long");
        return EPODE_HANDLED;
    }
    if (rc < 0 || (block && n == 0)) {
        answer(conn, st, EPODE_COND_BAD_REQUEST, "an item without a valid JID");
        return EPODE_HANDLED;
    }
    if (block)
        rc = apply_block(b, jids, n);
    else if (n == 0)
        apply_unblock_all(b);
    else
        rc = apply_unblock(b, jids, n);
    free_strings(b->mem, jids, n);
    if (rc == EPODE_ENOMEM)
        return EPODE_HANDLED;
    if (rc == EPODE_ELIMIT)
        answer(conn, st, EPODE_COND_RESOURCE_CONSTRAINT, "blocklist too long");
    else
        answer(conn, st, EPODE_COND_NONE, NULL);
    return EPODE_HANDLED;
}

/* ---- requests --------------------------------------------------------------- */

static void unlink_op(epode_blocking_t *b, blocking_op *op)
{
    for (blocking_op **p = &b->ops; *p; p = &(*p)->next)
        if (*p == op) {
            *p = op->next;
            return;
        }
}

static void op_free(epode_blocking_t *b, blocking_op *op)
{
    free_strings(b->mem, op->jids, op->n);
    im_free(b->mem, op);
}

/* A fetched list replaces ours: LOADED, or LIMIT with ours kept. */
static int apply_list(epode_blocking_t *b, const epode_stanza_t *res)
{
    epode_stanza_t *list = epode_stanza_find_child(res, "blocklist", EPODE_NS_BLOCKING);
    char **jids = NULL;
    size_t n = 0;
    int rc = list ? read_items(b, list, &jids, &n) : 0;
    if (rc == EPODE_ELIMIT)
        emit(b, EPODE_BLOCKING_LIMIT, NULL, 0);
    if (rc < 0)
        return rc;
    /* sorted (n log n: a server may send the whole bound), repeats dropped */
    if (n > 1)
        qsort(jids, n, sizeof *jids, cmp_jid);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (k > 0 && strcmp(jids[k - 1], jids[i]) == 0)
            im_free(b->mem, jids[i]);
        else
            jids[k++] = jids[i];
    }
    free_strings(b->mem, b->jids, b->n);
    b->jids = jids;
    b->n = k;
    b->cap = n;
    b->received = 1;
    emit(b, EPODE_BLOCKING_LOADED, b->jids, b->n);
    return 0;
}

static void on_answer(epode_conn_t *conn, epode_stanza_t *res, int status, void *user)
{
    (void)conn;
    blocking_op *op = user;
    epode_blocking_t *b = op->b;
    if (!b->conn)
        return; /* the connection is being freed: epode_blocking_free() tells it */
    unlink_op(b, op);
    epode_stanza_cond_t cond = EPODE_COND_NONE;
    if (status == 0) {
        const char *type = epode_stanza_get_type(res);
        if (!type || strcmp(type, "result") != 0) {
            if (epode_stanza_get_error(res, &cond, NULL, NULL) < 0 || cond == EPODE_COND_NONE)
                cond = EPODE_COND_UNDEFINED_CONDITION;
        }
    }
    if (status == 0 && cond == EPODE_COND_NONE) {
        switch (op->kind) {
        case OP_FETCH:
            status = apply_list(b, res);
            break;
        case OP_BLOCK:
            status = apply_block(b, op->jids, op->n);
            break;
        case OP_UNBLOCK:
            status = apply_unblock(b, op->jids, op->n);
            break;
        case OP_UNBLOCK_ALL:
            apply_unblock_all(b);
            break;
        }
    }
    if (op->cb)
        op->cb(b, status, cond, op->user);
    op_free(b, op);
}

static int send_op(epode_blocking_t *b, op_kind kind, const char *const *jids, size_t n,
                   epode_blocking_result_cb cb, void *user)
{
    if (!b || (n && !jids))
        return EPODE_EINVAL;
    if (!b->conn || !epode_conn_is_ready(b->conn))
        return EPODE_ESTATE;
    blocking_op *op = im_zalloc(b->mem, sizeof *op);
    if (!op)
        return EPODE_ENOMEM;
    op->b = b;
    op->kind = kind;
    op->cb = cb;
    op->user = user;
    int rc = 0;
    if (n && !(op->jids = im_zalloc(b->mem, n * sizeof *op->jids)))
        rc = EPODE_ENOMEM;
    for (size_t i = 0; rc == 0 && i < n; i++)
        if ((op->jids[i] = normalize(b->mem, jids[i], &rc)))
            op->n++;
    epode_stanza_t *iq = NULL, *el;
    static const char *const names[] = {"blocklist", "block", "unblock", "unblock"};
    if (rc == 0)
        rc = epode_stanza_new_iq(b->mem, kind == OP_FETCH ? "get" : "set", NULL, &iq);
    if (rc == 0)
        rc = epode_stanza_add_child_new(iq, names[kind], EPODE_NS_BLOCKING, &el);
    for (size_t i = 0; rc == 0 && i < op->n; i++) {
        epode_stanza_t *it;
        if ((rc = epode_stanza_add_child_new(el, "item", EPODE_NS_BLOCKING, &it)) == 0)
            rc = epode_stanza_set_attr(it, "jid", op->jids[i]);
    }
    if (rc == 0)
        rc = epode_conn_send_iq(b->conn, iq, 0, on_answer, op, &op->id);
    epode_stanza_unref(iq);
    if (rc < 0) {
        op_free(b, op);
        return rc;
    }
    op->next = b->ops;
    b->ops = op;
    return 0;
}

int epode_blocking_fetch(epode_blocking_t *b, epode_blocking_result_cb cb, void *user)
{
    return send_op(b, OP_FETCH, NULL, 0, cb, user);
}

int epode_blocking_block(epode_blocking_t *b, const char *const *jids, size_t n,
                         epode_blocking_result_cb cb, void *user)
{
    if (n == 0)
        return EPODE_EINVAL;
    for (size_t i = 0; jids && i < n; i++)
        if (!jids[i] || epode_jid_validate(jids[i]) < 0)
            return jids[i] ? EPODE_EJID : EPODE_EINVAL;
    return send_op(b, OP_BLOCK, jids, n, cb, user);
}

int epode_blocking_unblock(epode_blocking_t *b, const char *const *jids, size_t n,
                           epode_blocking_result_cb cb, void *user)
{
    if (n == 0)
        return EPODE_EINVAL;
    for (size_t i = 0; jids && i < n; i++)
        if (!jids[i] || epode_jid_validate(jids[i]) < 0)
            return jids[i] ? EPODE_EJID : EPODE_EINVAL;
    return send_op(b, OP_UNBLOCK, jids, n, cb, user);
}

int epode_blocking_unblock_all(epode_blocking_t *b, epode_blocking_result_cb cb, void *user)
{
    return send_op(b, OP_UNBLOCK_ALL, NULL, 0, cb, user);
}

/* ---- life cycle ------------------------------------------------------------- */

static void on_conn_event(epode_conn_t *conn, epode_conn_event_t ev, void *user)
{
    (void)conn;
    epode_blocking_t *b = user;
    if (ev == EPODE_CONN_FREED) {
        /* our ids die with the connection; pending answers are forgotten
         * here and reported canceled by epode_blocking_free() */
        b->conn = NULL;
        b->push_id = b->ev_id = 0;
        for (blocking_op *op = b->ops; op; op = op->next)
            op->id = 0;
        b->received = 0;
    } else if (ev == EPODE_CONN_DISCONNECTED) {
        b->received = 0;
    } else if (ev == EPODE_CONN_READY) {
        send_op(b, OP_FETCH, NULL, 0, NULL, NULL); /* failing, the list stays as it was */
    } else if (ev == EPODE_CONN_RESUMED && !b->received) {
        send_op(b, OP_FETCH, NULL, 0, NULL, NULL);
    }
}

int epode_blocking_new(epode_conn_t *conn, epode_blocking_event_cb cb, void *user,
                       epode_blocking_t **out)
{
    if (!conn || !out)
        return EPODE_EINVAL;
    const epode_mem_t *mem = im_mem(conn);
    epode_blocking_t *b = im_zalloc(mem, sizeof *b);
    if (!b)
        return EPODE_ENOMEM;
    b->conn = conn;
    b->mem = mem;
    b->cb = cb;
    b->user = user;
    b->max = EPODE_BLOCKLIST_MAX;
    int rc = epode_conn_add_handler(conn, "iq", EPODE_NS_BLOCKING, "set", on_push, b, &b->push_id);
    if (rc == 0)
        rc = epode_conn_add_event_cb(conn, on_conn_event, b, &b->ev_id);
    if (rc == 0 && epode_conn_is_ready(conn))
        rc = send_op(b, OP_FETCH, NULL, 0, NULL, NULL);
    if (rc < 0) {
        epode_blocking_free(b);
        return rc;
    }
    *out = b;
    return 0;
}

void epode_blocking_free(epode_blocking_t *b)
{
    if (!b)
        return;
    if (b->conn) {
        if (b->push_id)
            epode_conn_remove(b->conn, b->push_id);
        if (b->ev_id)
            epode_conn_remove(b->conn, b->ev_id);
    }
    while (b->ops) {
        blocking_op *op = b->ops;
        b->ops = op->next;
        if (b->conn && op->id)
            epode_conn_remove(b->conn, op->id);
        if (op->cb)
            op->cb(b, EPODE_ECANCELED, EPODE_COND_NONE, op->user);
        op_free(b, op);
    }
    free_strings(b->mem, b->jids, b->n);
    im_free(b->mem, b);
}

size_t epode_blocking_count(const epode_blocking_t *b)
{
    return b ? b->n : 0;
}

const char *epode_blocking_at(const epode_blocking_t *b, size_t i)
{
    return b && i < b->n ? b->jids[i] : NULL;
}

int epode_blocking_is_blocked(const epode_blocking_t *b, const char *jid)
{
    if (!b || !jid || b->n == 0)
        return 0;
    int rc, found = 0;
    char *norm = normalize(b->mem, jid, &rc);
    if (norm)
        find_pos(b, norm, &found);
    im_free(b->mem, norm);
    return found;
}

int epode_blocking_received(const epode_blocking_t *b)
{
    return b ? b->received : 0;
}

int epode_blocking_set_max(epode_blocking_t *b, size_t max)
{
    if (!b)
        return EPODE_EINVAL;
    b->max = max ? max : EPODE_BLOCKLIST_MAX;
    return 0;
}
