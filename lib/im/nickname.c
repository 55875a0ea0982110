/* lib/im/nickname.c — User Nickname (XEP-0172) on the pubsub helper: our
 * nick published over PEP and added to our subscription requests; nicks
 * learnt from PEP notifications, subscription requests and messages.
 *
 * It never decides who someone is: every nick is handed out with the JID
 * that sent it. Freed before its connection, the helper lets go of it on
 * EPODE_CONN_FREED. */
#include <epode.h>

#include <string.h>

#include "im_alloc.h"

typedef struct nick_op {
    struct nick_op *next;
    epode_nickname_t *n;
    unsigned id;
    epode_nickname_result_cb cb;
    void *user;
} nick_op;

struct epode_nickname {
    epode_pubsub_t *ps;
    epode_conn_t *conn;
    const epode_mem_t *mem;
    unsigned ev_id, pres_id, msg_id, filter_id, conn_ev_id;
    int notify;
    epode_nickname_cb cb;
    void *user;
    char *own;
    nick_op *ops;
};

const char *epode_nickname_source_name(epode_nickname_source_t source)
{
    static const char *const names[] = {"pep", "presence", "message"};
    return (int)source >= EPODE_NICKNAME_PEP && (int)source <= EPODE_NICKNAME_MESSAGE
               ? names[source - EPODE_NICKNAME_PEP]
               : NULL;
}

const char *epode_nickname_from_stanza(const epode_stanza_t *st)
{
    epode_stanza_t *nk = st ? epode_stanza_find_child(st, "nick", EPODE_NS_NICK) : NULL;
    if (!nk)
        return NULL;
    const char *t = epode_stanza_get_text(nk);
    return t ? t : "";
}

static void on_event(epode_pubsub_t *ps, epode_pubsub_event_type_t type, const char *from,
                     const char *node, const epode_pubsub_item_t *item, epode_stanza_t *msg,
                     void *user)
{
    (void)ps, (void)node, (void)msg;
    epode_nickname_t *n = user;
    if (!n->cb || type != EPODE_PUBSUB_PUBLISHED)
        return;
    epode_stanza_t *p = epode_pubsub_item_payload(item);
    if (!p || strcmp(epode_stanza_get_name(p), "nick") != 0 || !epode_stanza_get_ns(p) ||
        strcmp(epode_stanza_get_ns(p), EPODE_NS_NICK) != 0)
        return;
    char own[1024];
    if (!from) {
        const char *me = epode_conn_bound_jid(n->conn);
        size_t len = me ? strcspn(me, "/") : 0;
        if (!me || len >= sizeof own)
            return;
        memcpy(own, me, len);
        own[len] = '\0';
        from = own;
    }
    const char *t = epode_stanza_get_text(p);
    n->cb(n, from, t ? t : "", EPODE_NICKNAME_PEP, n->user);
}

static int on_stanza(epode_conn_t *conn, epode_stanza_t *st, void *user)
{
    (void)conn;
    epode_nickname_t *n = user;
    const char *from = epode_stanza_get_from(st);
    const char *nick = epode_nickname_from_stanza(st);
    if (!n->cb || !from || !nick || !*nick)
        return EPODE_PASS;
    int presence = strcmp(epode_stanza_get_name(st), "presence") == 0;
    const char *type = epode_stanza_get_type(st);
    if (type && strcmp(type, "error") == 0)
        return EPODE_PASS;
    n->cb(n, from, nick, presence ? EPODE_NICKNAME_PRESENCE : EPODE_NICKNAME_MESSAGE, n->user);
    return EPODE_PASS;
}

static int on_outgoing(epode_conn_t *conn, epode_stanza_t *st, void *user)
{
    (void)conn;
    epode_nickname_t *n = user;
    epode_stanza_t *el;
    if (n->own && !epode_stanza_find_child(st, "nick", EPODE_NS_NICK) &&
        epode_stanza_add_child_new(st, "nick", EPODE_NS_NICK, &el) == 0)
        epode_stanza_set_text(el, n->own);
    return EPODE_PASS;
}

static void unlink_op(epode_nickname_t *n, nick_op *op)
{
    for (nick_op **p = &n->ops; *p; p = &(*p)->next)
        if (*p == op) {
            *p = op->next;
            return;
        }
}

static void on_reply(epode_pubsub_t *ps, const epode_pubsub_reply_t *r, void *user)
{
    (void)ps;
    nick_op *op = user;
    epode_nickname_t *n = op->n;
    unlink_op(n, op);
    if (op->cb)
        op->cb(n, epode_pubsub_reply_status(r), epode_pubsub_reply_cond(r),
               epode_pubsub_reply_pubsub_error(r), op->user);
    im_free(n->mem, op);
}

int epode_nickname_set(epode_nickname_t *n, const char *nick, epode_nickname_result_cb cb,
                       void *user)
{
    if (!n)
        return EPODE_EINVAL;
    if (!n->conn || !epode_conn_is_ready(n->conn))
        return EPODE_ESTATE;
    nick_op *op = im_zalloc(n->mem, sizeof *op);
    char *own = nick && *nick ? im_strdup(n->mem, nick) : NULL;
    epode_stanza_t *p = NULL;
    int rc = !op || (nick && *nick && !own) ? EPODE_ENOMEM : 0;
    if (rc == 0)
        rc = epode_stanza_new(n->mem, "nick", EPODE_NS_NICK, &p);
    if (rc == 0 && own)
        rc = epode_stanza_set_text(p, own);
    if (rc == 0) {
        op->n = n;
        op->cb = cb;
        op->user = user;
        rc = epode_pubsub_publish(n->ps, NULL, EPODE_NS_NICK, "current", p, NULL, on_reply, op,
                                  &op->id);
    }
    epode_stanza_unref(p);
    if (rc < 0) {
        im_free(n->mem, op);
        im_free(n->mem, own);
        return rc;
    }
    op->next = n->ops;
    n->ops = op;
    im_free(n->mem, n->own);
    n->own = own;
    return 0;
}

const char *epode_nickname_get_own(const epode_nickname_t *n)
{
    return n ? n->own : NULL;
}

static void on_conn_event(epode_conn_t *conn, epode_conn_event_t ev, void *user)
{
    (void)conn;
    epode_nickname_t *n = user;
    if (ev == EPODE_CONN_FREED) {
        n->conn = NULL;
        n->pres_id = n->msg_id = n->filter_id = n->conn_ev_id = 0;
    }
}

int epode_nickname_new(epode_pubsub_t *ps, epode_nickname_cb cb, void *user,
                       epode_nickname_t **out)
{
    if (!ps || !out)
        return EPODE_EINVAL;
    epode_conn_t *conn = epode_pubsub_conn(ps);
    if (!conn)
        return EPODE_ESTATE;
    const epode_mem_t *mem = im_mem(conn);
    epode_nickname_t *n = im_zalloc(mem, sizeof *n);
    if (!n)
        return EPODE_ENOMEM;
    n->ps = ps;
    n->conn = conn;
    n->mem = mem;
    n->cb = cb;
    n->user = user;
    int rc = epode_pubsub_add_event_cb(ps, EPODE_NS_NICK, on_event, n, &n->ev_id);
    if (rc == 0)
        rc = epode_conn_add_handler(conn, "presence", NULL, "subscribe", on_stanza, n, &n->pres_id);
    if (rc == 0)
        rc = epode_conn_add_handler(conn, "message", NULL, NULL, on_stanza, n, &n->msg_id);
    if (rc == 0)
        rc = epode_conn_add_filter(conn, "presence", NULL, "subscribe", on_outgoing, n, &n->filter_id);
    if (rc == 0)
        rc = epode_conn_add_event_cb(conn, on_conn_event, n, &n->conn_ev_id);
    if (rc == 0) {
        rc = epode_pubsub_add_notify(ps, EPODE_NS_NICK);
        n->notify = rc == 0;
        if (rc == EPODE_ESTATE)
            rc = 0;
    }
    if (rc < 0) {
        epode_nickname_free(n);
        return rc;
    }
    *out = n;
    return 0;
}

void epode_nickname_free(epode_nickname_t *n)
{
    if (!n)
        return;
    if (n->ev_id)
        epode_pubsub_remove_event_cb(n->ps, n->ev_id);
    if (n->notify)
        epode_pubsub_remove_notify(n->ps, EPODE_NS_NICK);
    if (n->conn) {
        unsigned ids[] = {n->pres_id, n->msg_id, n->filter_id, n->conn_ev_id};
        for (size_t i = 0; i < sizeof ids / sizeof *ids; i++)
            if (ids[i])
                epode_conn_remove(n->conn, ids[i]);
    }
    while (n->ops) {
        nick_op *op = n->ops;
        n->ops = op->next;
        epode_pubsub_cancel(n->ps, op->id);
        if (op->cb)
            op->cb(n, EPODE_ECANCELED, EPODE_COND_NONE, EPODE_PUBSUB_ERR_NONE, op->user);
        im_free(n->mem, op);
    }
    im_free(n->mem, n->own);
    im_free(n->mem, n);
}
