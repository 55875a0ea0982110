/* lib/im/message.c — messages (RFC 6121 §5) and their opt-in extensions:
 * delivery receipts (XEP-0184), chat states (XEP-0085), stable stanza ids
 * (XEP-0359). Built on the public API only: one stanza handler for all
 * incoming messages (which parses each once into a view and hands it to
 * the application's handlers) and one outgoing filter that decorates
 * copies of what the application sends. Must never keep a pointer into a
 * stanza beyond the dispatch that lent it. Everything it allocates, the
 * stanzas it builds included, comes from the context's allocator.
 *
 * A stanza-id is reported only if the entity in its 'by' stamps ids and
 * strips forged ones (XEP-0359 §7): our own account once its disco#info,
 * asked on every READY, lists urn:xmpp:sid:0 (for that session), or
 * an entity the application names. Never because of what anyone else
 * announces, and never before that answer.
 *
 * Freed before its connection, the helper lets go of it on
 * EPODE_CONN_FREED and never touches it again. */
#include <epode.h>

#include <string.h>
#include <strings.h>

#include "im_alloc.h"
#include "message_view.h"

#define TRUST_MAX 64

typedef struct msg_handler {
    unsigned id;
    int type;                     /* index into types[], -1: any */
    epode_message_cb cb;
    void *user;
    int removed;
} msg_handler;

struct epode_messaging {
    epode_conn_t *conn;
    const epode_mem_t *mem;       /* the context's allocator */
    unsigned in_id, out_id;
    msg_handler *handlers;
    size_t nhandlers, cap;
    unsigned next_id;
    int depth;                    /* > 0 while dispatching */
    unsigned receipts;
    int origin_id;
    epode_receipt_cb receipt_cb;
    void *receipt_user;
    char *trusted[TRUST_MAX];
    size_t ntrusted;
    unsigned ev_id;               /* our READY/DISCONNECTED listener */
    unsigned sid_iq;              /* our account's disco#info, while it is out */
    int own_sid;                  /* this session: our account stamps ids */
};

static const char *const types[] = {"chat", "normal", "headline", "groupchat", "error"};
#define NTYPES (sizeof types / sizeof types[0])

static const char *const state_names[] = {NULL, "active", "composing", "paused", "inactive",
                                          "gone"};

static int type_index(const char *t)
{
    for (size_t i = 0; i < NTYPES; i++)
        if (strcmp(types[i], t) == 0)
            return (int)i;
    return -1;
}

/* ---- building ------------------------------------------------------------ */

static const char *own_lang(const epode_stanza_t *el)
{
    return epode_stanza_get_attr(el, "xml:lang");
}

/* One element per language (RFC 6121 §5.2.3, §5.2.4). */
static int add_text_child(epode_stanza_t *msg, const char *name, const char *lang,
                          const char *text)
{
    if (!msg || !text || (lang && !*lang))
        return EPODE_EINVAL;
    for (epode_stanza_t *c = epode_stanza_find_child(msg, name, EPODE_NS_CLIENT); c;
         c = epode_stanza_find_next(c, name, EPODE_NS_CLIENT)) {
        const char *l = own_lang(c);
        if ((!l && !lang) || (l && lang && strcmp(l, lang) == 0))
            return EPODE_EINVAL;
    }
    epode_stanza_t *child;
    int rc = epode_stanza_add_child_new(msg, name, EPODE_NS_CLIENT, &child);
    if (rc < 0)
        return rc;
    if ((lang && (rc = epode_stanza_set_attr(child, "xml:lang", lang)) < 0) ||
        (rc = epode_stanza_set_text(child, text)) < 0) {
        epode_stanza_remove(child);
        return rc;
    }
    return 0;
}

int epode_message_add_body(epode_stanza_t *msg, const char *lang, const char *text)
{
    return add_text_child(msg, "body", lang, text);
}

int epode_message_add_subject(epode_stanza_t *msg, const char *lang, const char *text)
{
    return add_text_child(msg, "subject", lang, text);
}

int epode_message_set_thread(epode_stanza_t *msg, const char *thread, const char *parent)
{
    if (!msg || (thread && !*thread) || (parent && (!*parent || !thread)))
        return EPODE_EINVAL;
    epode_stanza_t *old;
    while ((old = epode_stanza_find_child(msg, "thread", EPODE_NS_CLIENT)))
        epode_stanza_remove(old);
    if (!thread)
        return 0;
    epode_stanza_t *t;
    int rc = epode_stanza_add_child_new(msg, "thread", EPODE_NS_CLIENT, &t);
    if (rc < 0)
        return rc;
    if ((parent && (rc = epode_stanza_set_attr(t, "parent", parent)) < 0) ||
        (rc = epode_stanza_set_text(t, thread)) < 0) {
        epode_stanza_remove(t);
        return rc;
    }
    return 0;
}

int epode_message_build(const char *type, const char *to, const char *body,
                        const char *subject, const char *thread, epode_stanza_t **out)
{
    if (!out || !to)
        return EPODE_EINVAL;
    if (epode_jid_validate(to) < 0)
        return EPODE_EJID;
    if (type && (type_index(type) < 0 || strcmp(type, "error") == 0))
        return EPODE_EINVAL;
    if (type && strcmp(type, "normal") == 0)
        type = NULL;
    epode_stanza_t *msg;
    int rc = epode_stanza_new_message(NULL, type, to, NULL, &msg);
    if (rc < 0)
        return rc;
    if ((subject && (rc = epode_message_add_subject(msg, NULL, subject)) < 0) ||
        (body && (rc = epode_message_add_body(msg, NULL, body)) < 0) ||
        (thread && (rc = epode_message_set_thread(msg, thread, NULL)) < 0) ||
        (rc = epode_stanza_set_new_id(msg, NULL)) < 0) {
        epode_stanza_unref(msg);
        return rc;
    }
    *out = msg;
    return 0;
}

const char *epode_chatstate_name(epode_chatstate_t state)
{
    if ((int)state <= 0 || (int)state > EPODE_CHATSTATE_GONE)
        return NULL;
    return state_names[state];
}

static epode_chatstate_t chatstate_of(const epode_stanza_t *msg)
{
    for (epode_stanza_t *c = epode_stanza_first_child(msg); c; c = epode_stanza_next(c)) {
        const char *ns = epode_stanza_get_ns(c);
        if (!ns || strcmp(ns, EPODE_NS_CHATSTATES) != 0)
            continue;
        const char *n = epode_stanza_get_name(c);
        for (int i = 1; i <= EPODE_CHATSTATE_GONE; i++)
            if (strcmp(n, state_names[i]) == 0)
                return (epode_chatstate_t)i;
    }
    return EPODE_CHATSTATE_NONE;
}

int epode_message_add_chatstate(epode_stanza_t *msg, epode_chatstate_t state)
{
    const char *name = epode_chatstate_name(state);
    if (!msg || !name || chatstate_of(msg) != EPODE_CHATSTATE_NONE)
        return EPODE_EINVAL;
    return epode_stanza_add_child_new(msg, name, EPODE_NS_CHATSTATES, NULL);
}

/* ---- the view ------------------------------------------------------------ */

void epode__message_view_init(epode_message_t *v, epode_stanza_t *st)
{
    const char *t = epode_stanza_get_type(st);
    int ti = t ? type_index(t) : -1;
    if (ti < 0)
        ti = type_index("normal"); /* RFC 6121 §5.2.2: unknown means normal */
    *v = (epode_message_t){.st = st, .type = types[ti]};
    if (strcmp(v->type, "error") != 0)
        v->chatstate = chatstate_of(st);
}

epode_stanza_t *epode_message_stanza(const epode_message_t *m)
{
    return m ? m->st : NULL;
}

const char *epode_message_from(const epode_message_t *m)
{
    return m ? epode_stanza_get_from(m->st) : NULL;
}

const char *epode_message_to(const epode_message_t *m)
{
    return m ? epode_stanza_get_to(m->st) : NULL;
}

const char *epode_message_type(const epode_message_t *m)
{
    return m ? m->type : "normal";
}

const char *epode_message_id(const epode_message_t *m)
{
    return m ? epode_stanza_get_id(m->st) : NULL;
}

static const char *pick_lang(const epode_stanza_t *st, const char *name, const char *lang)
{
    const char *stanza_lang = own_lang(st);
    epode_stanza_t *first = NULL, *in_stanza_lang = NULL;
    for (epode_stanza_t *c = epode_stanza_find_child(st, name, EPODE_NS_CLIENT); c;
         c = epode_stanza_find_next(c, name, EPODE_NS_CLIENT)) {
        const char *l = own_lang(c);
        const char *eff = l ? l : stanza_lang;
        if (lang) {
            if (eff && strcasecmp(eff, lang) == 0)
                return epode_stanza_get_text(c);
            continue;
        }
        if (!l)
            return epode_stanza_get_text(c);
        if (!first)
            first = c;
        if (!in_stanza_lang && stanza_lang && strcasecmp(l, stanza_lang) == 0)
            in_stanza_lang = c;
    }
    if (lang)
        return NULL;
    if (in_stanza_lang)
        return epode_stanza_get_text(in_stanza_lang);
    return first ? epode_stanza_get_text(first) : NULL;
}

const char *epode_message_body(const epode_message_t *m, const char *lang)
{
    return m ? pick_lang(m->st, "body", lang) : NULL;
}

const char *epode_message_subject(const epode_message_t *m, const char *lang)
{
    return m ? pick_lang(m->st, "subject", lang) : NULL;
}

size_t epode_message_body_count(const epode_message_t *m)
{
    size_t n = 0;
    if (!m)
        return 0;
    for (epode_stanza_t *c = epode_stanza_find_child(m->st, "body", EPODE_NS_CLIENT); c;
         c = epode_stanza_find_next(c, "body", EPODE_NS_CLIENT))
        n++;
    return n;
}

int epode_message_body_at(const epode_message_t *m, size_t i, const char **lang,
                          const char **text)
{
    if (!m)
        return EPODE_EINVAL;
    for (epode_stanza_t *c = epode_stanza_find_child(m->st, "body", EPODE_NS_CLIENT); c;
         c = epode_stanza_find_next(c, "body", EPODE_NS_CLIENT)) {
        if (i-- > 0)
            continue;
        if (lang) {
            const char *l = own_lang(c);
            *lang = l ? l : own_lang(m->st);
        }
        if (text)
            *text = epode_stanza_get_text(c);
        return 0;
    }
    return EPODE_ERANGE;
}

const char *epode_message_thread(const epode_message_t *m)
{
    return m ? epode_stanza_child_text(m->st, "thread", EPODE_NS_CLIENT) : NULL;
}

const char *epode_message_thread_parent(const epode_message_t *m)
{
    epode_stanza_t *t = m ? epode_stanza_find_child(m->st, "thread", EPODE_NS_CLIENT) : NULL;
    return t ? epode_stanza_get_attr(t, "parent") : NULL;
}

epode_chatstate_t epode_message_chatstate(const epode_message_t *m)
{
    return m ? m->chatstate : EPODE_CHATSTATE_NONE;
}

const char *epode_message_origin_id(const epode_message_t *m)
{
    epode_stanza_t *o = m ? epode_stanza_find_child(m->st, "origin-id", EPODE_NS_SID) : NULL;
    return o ? epode_stanza_get_attr(o, "id") : NULL;
}

const char *epode_message_stanza_id(const epode_message_t *m)
{
    return m ? m->stanza_id : NULL;
}

epode_stanza_cond_t epode_message_error(const epode_message_t *m, epode_error_type_t *type,
                                        const char **text)
{
    if (type)
        *type = EPODE_ERRTYPE_DEFAULT;
    if (text)
        *text = NULL;
    if (!m || strcmp(m->type, "error") != 0)
        return EPODE_COND_NONE;
    epode_stanza_cond_t cond = EPODE_COND_UNDEFINED_CONDITION;
    if (epode_stanza_get_error(m->st, &cond, type, text) < 0)
        return EPODE_COND_UNDEFINED_CONDITION;
    return cond == EPODE_COND_NONE ? EPODE_COND_UNDEFINED_CONDITION : cond;
}

int epode_message_wants_receipt(const epode_message_t *m)
{
    return m && epode_stanza_find_child(m->st, "request", EPODE_NS_RECEIPTS) != NULL;
}

/* ---- the helper ------------------------------------------------------------ */

/* Our own bare JID once it announced urn:xmpp:sid:0 this session, or a
 * JID the application trusts, assigned the id. */
static int trusted_by(const epode_messaging_t *m, const char *by)
{
    if (!by || strchr(by, '/') || epode_jid_validate(by) < 0)
        return 0;
    const char *me = epode_conn_bound_jid(m->conn);
    if (m->own_sid && me && epode_jid_str_equal(by, me, 1))
        return 1;
    for (size_t i = 0; i < m->ntrusted; i++)
        if (epode_jid_str_equal(by, m->trusted[i], 0))
            return 1;
    return 0;
}

static const char *trusted_stanza_id(const epode_messaging_t *m, const epode_stanza_t *st)
{
    for (epode_stanza_t *c = epode_stanza_find_child(st, "stanza-id", EPODE_NS_SID); c;
         c = epode_stanza_find_next(c, "stanza-id", EPODE_NS_SID)) {
        const char *id = epode_stanza_get_attr(c, "id");
        if (id && *id && trusted_by(m, epode_stanza_get_attr(c, "by")))
            return id;
    }
    return NULL;
}

static void answer_receipt(epode_messaging_t *m, epode_stanza_t *st, const char *type)
{
    const char *from = epode_stanza_get_from(st), *id = epode_stanza_get_id(st);
    /* XEP-0184 §5: never for errors or groupchat; a receipt needs the id
     * it refers to; a receipt is not itself acknowledged. */
    if (!(m->receipts & EPODE_RECEIPTS_ANSWER) || !from || !id || !*id ||
        strcmp(type, "error") == 0 || strcmp(type, "groupchat") == 0 ||
        !epode_stanza_find_child(st, "request", EPODE_NS_RECEIPTS) ||
        epode_stanza_find_child(st, "received", EPODE_NS_RECEIPTS) ||
        epode_jid_validate(from) < 0)
        return;
    epode_stanza_t *r, *rec;
    if (epode_stanza_new_message(m->mem, NULL, from, NULL, &r) < 0)
        return;
    if (epode_stanza_set_new_id(r, NULL) == 0 &&
        epode_stanza_add_child_new(r, "received", EPODE_NS_RECEIPTS, &rec) == 0 &&
        epode_stanza_set_attr(rec, "id", id) == 0)
        epode_conn_send(m->conn, r);
    epode_stanza_unref(r);
}

static void compact(epode_messaging_t *m)
{
    size_t j = 0;
    for (size_t i = 0; i < m->nhandlers; i++)
        if (!m->handlers[i].removed)
            m->handlers[j++] = m->handlers[i];
    m->nhandlers = j;
}

static int on_message(epode_conn_t *conn, epode_stanza_t *st, void *user)
{
    epode_messaging_t *m = user;
    /* an archive result's wrapper is no message: epode/mam.h unwraps it */
    if (!m->conn || epode_stanza_find_child(st, "result", "urn:xmpp:mam:2"))
        return EPODE_PASS;
    const char *t = epode_stanza_get_type(st);
    int ti = t ? type_index(t) : -1;
    if (ti < 0)
        ti = type_index("normal"); /* RFC 6121 §5.2.2: unknown means normal */
    epode_message_t view;
    epode__message_view_init(&view, st);
    int is_error = strcmp(view.type, "error") == 0;
    if (!is_error)
        view.stanza_id = trusted_stanza_id(m, st);
    answer_receipt(m, st, view.type);

    epode_stanza_t *rec = is_error ? NULL : epode_stanza_find_child(st, "received",
                                                                    EPODE_NS_RECEIPTS);
    int result = EPODE_PASS;
    if (rec) {
        const char *acked = epode_stanza_get_attr(rec, "id");
        if (!acked || !*acked)
            acked = epode_stanza_get_id(st);
        const char *from = epode_stanza_get_from(st);
        if (m->receipt_cb && acked && *acked && from)
            m->receipt_cb(conn, from, acked, m->receipt_user);
        /* a pure receipt is not a message for the application */
        if (!epode_stanza_find_child(st, "body", EPODE_NS_CLIENT))
            return EPODE_HANDLED;
    }
    m->depth++;
    size_t n = m->nhandlers; /* handlers added during dispatch wait for the next */
    for (size_t i = 0; i < n; i++) {
        msg_handler *h = &m->handlers[i];
        if (h->removed || (h->type >= 0 && h->type != ti))
            continue;
        result = h->cb(conn, &view, h->user) == EPODE_PASS ? EPODE_PASS : EPODE_HANDLED;
        if (result == EPODE_HANDLED)
            break;
    }
    if (--m->depth == 0)
        compact(m);
    return result;
}

/* Outgoing: decorate the copy the connection is about to write. */
static int on_outgoing(epode_conn_t *conn, epode_stanza_t *st, void *user)
{
    (void)conn;
    epode_messaging_t *m = user;
    const char *t = epode_stanza_get_type(st);
    if (t && strcmp(t, "error") == 0)
        return EPODE_PASS;
    int is_receipt = epode_stanza_find_child(st, "received", EPODE_NS_RECEIPTS) != NULL;
    int want_request = (m->receipts & EPODE_RECEIPTS_REQUEST) && !is_receipt &&
                       !(t && strcmp(t, "groupchat") == 0) &&
                       epode_stanza_find_child(st, "body", EPODE_NS_CLIENT) &&
                       !epode_stanza_find_child(st, "request", EPODE_NS_RECEIPTS);
    if ((want_request || m->origin_id) && !epode_stanza_get_id(st))
        if (epode_stanza_set_new_id(st, NULL) < 0)
            return EPODE_PASS;
    /* Out of memory, a decoration is left out whole: the stanza still goes
     * out, only without it. */
    if (want_request)
        (void)epode_stanza_add_child_new(st, "request", EPODE_NS_RECEIPTS, NULL);
    if (m->origin_id && !epode_stanza_find_child(st, "origin-id", EPODE_NS_SID)) {
        epode_stanza_t *o;
        if (epode_stanza_add_child_new(st, "origin-id", EPODE_NS_SID, &o) == 0 &&
            epode_stanza_set_attr(o, "id", epode_stanza_get_id(st)) < 0)
            epode_stanza_remove(o); /* no origin-id without its id */
    }
    return EPODE_PASS;
}

/* Our account's disco#info came back: does it stamp stanza-ids? Only a
 * result counts (the IQ layer accepts it only from our account). */
static void on_own_info(epode_conn_t *conn, epode_stanza_t *result, int status, void *user)
{
    (void)conn;
    epode_messaging_t *m = user;
    m->sid_iq = 0;
    if (!m->conn)
        return; /* the connection is being freed */
    const char *type = result ? epode_stanza_get_type(result) : NULL;
    epode_disco_info_t *info;
    if (status != 0 || !type || strcmp(type, "result") != 0 ||
        epode_disco_info_parse(result, &info) < 0)
        return;
    m->own_sid = epode_disco_info_has_feature(info, EPODE_NS_SID) == 1;
    epode_disco_info_free(info);
}

/* Asks our bare JID for its disco#info (XEP-0359 §7: before trusting a
 * stanza-id, check that the entity in 'by' announces the feature). */
static int ask_own_info(epode_messaging_t *m)
{
    const char *me = epode_conn_bound_jid(m->conn);
    epode_jid_t *j = NULL;
    epode_stanza_t *iq = NULL;
    int rc = me ? epode_jid_new(m->mem, me, &j) : EPODE_ESTATE;
    if (rc == 0)
        rc = epode_stanza_new_iq(m->mem, "get", NULL, &iq);
    if (rc == 0)
        rc = epode_stanza_set_to(iq, epode_jid_bare(j));
    if (rc == 0)
        rc = epode_stanza_add_child_new(iq, "query", EPODE_NS_DISCO_INFO, NULL);
    if (rc == 0)
        rc = epode_conn_send_iq(m->conn, iq, 0, on_own_info, m, &m->sid_iq);
    epode_stanza_unref(iq);
    epode_jid_free(j);
    return rc;
}

static void on_conn_event(epode_conn_t *conn, epode_conn_event_t ev, void *user)
{
    (void)conn;
    epode_messaging_t *m = user;
    if (ev == EPODE_CONN_FREED) {
        /* our ids die with the connection; the question is forgotten */
        m->conn = NULL;
        m->in_id = m->out_id = m->ev_id = m->sid_iq = 0;
        m->own_sid = 0;
    } else if (ev == EPODE_CONN_READY) {
        m->own_sid = 0; /* a new session: what we knew may not hold */
        if (m->sid_iq)
            epode_conn_remove(m->conn, m->sid_iq);
        m->sid_iq = 0;
        ask_own_info(m); /* failing (no memory), ids stay untrusted */
    } else if (ev == EPODE_CONN_RESUMED && !m->own_sid && !m->sid_iq) {
        ask_own_info(m); /* the session goes on; the question was cut off */
    }
}

int epode_messaging_new(epode_conn_t *conn, epode_messaging_t **out)
{
    if (!conn || !out)
        return EPODE_EINVAL;
    const epode_mem_t *mem = im_mem(conn);
    epode_messaging_t *m = im_zalloc(mem, sizeof *m);
    if (!m)
        return EPODE_ENOMEM;
    m->conn = conn;
    m->mem = mem;
    int rc = epode_conn_add_handler(conn, "message", NULL, NULL, on_message, m, &m->in_id);
    if (rc < 0) {
        im_free(mem, m);
        return rc;
    }
    rc = epode_conn_add_filter(conn, "message", NULL, NULL, on_outgoing, m, &m->out_id);
    if (rc == 0)
        rc = epode_conn_add_event_cb(conn, on_conn_event, m, &m->ev_id);
    /* made after READY: ask now (not on a registration stream, which has
     * no account yet to ask about) */
    if (rc == 0 && epode_conn_is_ready(conn) && epode_conn_bound_jid(conn))
        rc = ask_own_info(m);
    if (rc < 0) {
        epode_messaging_free(m);
        return rc;
    }
    *out = m;
    return 0;
}

void epode_messaging_free(epode_messaging_t *m)
{
    if (!m)
        return;
    if (m->conn && m->in_id)
        epode_conn_remove(m->conn, m->in_id);
    if (m->conn && m->out_id)
        epode_conn_remove(m->conn, m->out_id);
    if (m->conn && m->ev_id)
        epode_conn_remove(m->conn, m->ev_id);
    if (m->conn && m->sid_iq)
        epode_conn_remove(m->conn, m->sid_iq); /* its callback is not called */
    const epode_mem_t *mem = m->mem;
    for (size_t i = 0; i < m->ntrusted; i++)
        im_free(mem, m->trusted[i]);
    im_free(mem, m->handlers);
    im_free(mem, m);
}

int epode_messaging_handler_add(epode_messaging_t *m, const char *type, epode_message_cb cb,
                                void *user, unsigned *id)
{
    if (!m || !cb)
        return EPODE_EINVAL;
    int ti = -1;
    if (type && (ti = type_index(type)) < 0)
        return EPODE_EINVAL;
    if (m->nhandlers == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 4;
        msg_handler *h = im_realloc(m->mem, m->handlers, cap * sizeof *h);
        if (!h)
            return EPODE_ENOMEM;
        m->handlers = h;
        m->cap = cap;
    }
    /* From 2^31 up: never an id the connection handed out, so one given
     * to epode_conn_remove() by mistake is not found rather than
     * removing somebody else's handler (dispatch.h's ids stay below). */
    if (++m->next_id < 0x80000001u)
        m->next_id = 0x80000001u;
    m->handlers[m->nhandlers++] = (msg_handler){m->next_id, ti, cb, user, 0};
    if (id)
        *id = m->next_id;
    return 0;
}

int epode_messaging_handler_remove(epode_messaging_t *m, unsigned id)
{
    if (!m)
        return EPODE_EINVAL;
    for (size_t i = 0; i < m->nhandlers; i++) {
        if (m->handlers[i].id == id && !m->handlers[i].removed) {
            m->handlers[i].removed = 1;
            if (m->depth == 0)
                compact(m);
            return 0;
        }
    }
    return EPODE_ENOTFOUND;
}

int epode_messaging_send(epode_messaging_t *m, epode_stanza_t *msg)
{
    if (!m || !msg)
        return EPODE_EINVAL;
    if (!m->conn)
        return EPODE_ESTATE;
    if (!epode_stanza_get_id(msg)) {
        int rc = epode_stanza_set_new_id(msg, NULL);
        if (rc < 0)
            return rc;
    }
    return epode_conn_send(m->conn, msg);
}

int epode_messaging_set_receipts(epode_messaging_t *m, unsigned flags)
{
    if (!m || (flags & ~(unsigned)(EPODE_RECEIPTS_REQUEST | EPODE_RECEIPTS_ANSWER)))
        return EPODE_EINVAL;
    m->receipts = flags;
    return 0;
}

int epode_messaging_set_receipt_cb(epode_messaging_t *m, epode_receipt_cb cb, void *user)
{
    if (!m)
        return EPODE_EINVAL;
    m->receipt_cb = cb;
    m->receipt_user = user;
    return 0;
}

int epode_messaging_send_chatstate(epode_messaging_t *m, const char *to,
                                   epode_chatstate_t state)
{
    if (!m || !to || !epode_chatstate_name(state))
        return EPODE_EINVAL;
    if (epode_jid_validate(to) < 0)
        return EPODE_EJID;
    if (!m->conn)
        return EPODE_ESTATE;
    epode_stanza_t *msg;
    int rc = epode_stanza_new_message(m->mem, "chat", to, NULL, &msg);
    if (rc < 0)
        return rc;
    if ((rc = epode_stanza_set_new_id(msg, NULL)) == 0 &&
        (rc = epode_message_add_chatstate(msg, state)) == 0 &&
        (rc = epode_stanza_add_child_new(msg, "no-store", EPODE_NS_HINTS, NULL)) == 0)
        rc = epode_conn_send(m->conn, msg);
    epode_stanza_unref(msg);
    return rc;
}

int epode_messaging_set_origin_id(epode_messaging_t *m, int on)
{
    if (!m)
        return EPODE_EINVAL;
    m->origin_id = on != 0;
    return 0;
}

int epode_messaging_trust_stanza_id(epode_messaging_t *m, const char *jid)
{
    if (!m || !jid)
        return EPODE_EINVAL;
    if (epode_jid_validate(jid) < 0 || strchr(jid, '/'))
        return EPODE_EJID;
    if (m->ntrusted == TRUST_MAX)
        return EPODE_ELIMIT;
    char *copy = im_strdup(m->mem, jid);
    if (!copy)
        return EPODE_ENOMEM;
    m->trusted[m->ntrusted++] = copy;
    return 0;
}
