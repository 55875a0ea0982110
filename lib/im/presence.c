/* lib/im/presence.c — presence and subscriptions (RFC 6121 §3, §4): the
 * functions that send them, and the tracker that follows everyone's
 * presence and hands subscription stanzas to the application. Built on
 * the public API only (one stanza handler, one event listener). The
 * tracker keeps its own copies of strings and a reference on each stanza
 * it keeps, never a borrowed pointer. Everything it allocates, the
 * stanzas it sends included, comes from the context's allocator. Freed
 * before its connection, the tracker lets go of it on EPODE_CONN_FREED
 * and never touches it again. */
#include <epode.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "im_alloc.h"

#define NS_MUC_USER "http://jabber.org/protocol/muc#user"

static const char *const show_names[] = {"unavailable", "dnd", "xa", "away", "available",
                                         "chat"};

const char *epode_show_name(epode_show_t show)
{
    if ((int)show < 0 || (int)show > EPODE_SHOW_CHAT)
        return NULL;
    return show_names[show];
}

int epode_show_from_name(const char *name, epode_show_t *show)
{
    if (!name || !show)
        return EPODE_EINVAL;
    for (int i = 0; i <= EPODE_SHOW_CHAT; i++)
        if (strcmp(name, show_names[i]) == 0) {
            *show = (epode_show_t)i;
            return 0;
        }
    return EPODE_EINVAL;
}

/* ---- sending ---------------------------------------------------------------- */

/* epode_presence_build() with the tree's allocator (NULL: libc). */
static int build(const epode_mem_t *mem, const char *to, epode_show_t show, const char *status,
                 int priority, epode_stanza_t **out)
{
    if (!out || !epode_show_name(show))
        return EPODE_EINVAL;
    if (to && epode_jid_validate(to) < 0)
        return EPODE_EJID;
    if (priority < -128 || priority > 127)
        return EPODE_ERANGE;
    epode_stanza_t *p;
    int rc = epode_stanza_new_presence(mem, show == EPODE_SHOW_UNAVAILABLE ? "unavailable" : NULL, to,
                                &p);
    if (rc < 0)
        return rc;
    epode_stanza_t *c;
    if (show != EPODE_SHOW_UNAVAILABLE && show != EPODE_SHOW_AVAILABLE) {
        if ((rc = epode_stanza_add_child_new(p, "show", NULL, &c)) < 0 ||
            (rc = epode_stanza_set_text(c, show_names[show])) < 0)
            goto fail;
    }
    if (status && ((rc = epode_stanza_add_child_new(p, "status", NULL, &c)) < 0 ||
                   (rc = epode_stanza_set_text(c, status)) < 0))
        goto fail;
    if (priority != 0 && show != EPODE_SHOW_UNAVAILABLE) {
        char num[8];
        snprintf(num, sizeof num, "%d", priority);
        if ((rc = epode_stanza_add_child_new(p, "priority", NULL, &c)) < 0 ||
            (rc = epode_stanza_set_text(c, num)) < 0)
            goto fail;
    }
    *out = p;
    return 0;
fail:
    epode_stanza_unref(p);
    return rc;
}

int epode_presence_build(const char *to, epode_show_t show, const char *status, int priority,
                         epode_stanza_t **out)
{
    return build(NULL, to, show, status, priority, out);
}

int epode_presence_send_to(epode_conn_t *conn, const char *to, epode_show_t show,
                           const char *status, int priority)
{
    if (!conn)
        return EPODE_EINVAL;
    epode_stanza_t *p;
    int rc = build(im_mem(conn), to, show, status, priority, &p);
    if (rc < 0)
        return rc;
    rc = epode_conn_send(conn, p);
    epode_stanza_unref(p);
    return rc;
}

int epode_presence_send(epode_conn_t *conn, epode_show_t show, const char *status, int priority)
{
    return epode_presence_send_to(conn, NULL, show, status, priority);
}

int epode_presence_close(epode_conn_t *conn, const char *status)
{
    if (!conn)
        return EPODE_EINVAL;
    if (epode_conn_is_ready(conn))
        (void)epode_presence_send_to(conn, NULL, EPODE_SHOW_UNAVAILABLE, status, 0);
    return epode_conn_close(conn);
}

static int send_sub(epode_conn_t *conn, const char *to, const char *type, const char *status)
{
    if (!conn || !to)
        return EPODE_EINVAL;
    const epode_mem_t *mem = im_mem(conn);
    epode_jid_t *j;
    int rc = epode_jid_new(mem, to, &j);
    if (rc < 0)
        return rc; /* EPODE_EJID, as every send path says */
    epode_stanza_t *p, *c;
    /* subscriptions are between bare JIDs (RFC 6121 §3.1.1) */
    rc = epode_stanza_new_presence(mem, type, epode_jid_bare(j), &p);
    epode_jid_free(j);
    if (rc < 0)
        return rc;
    if (status && ((rc = epode_stanza_add_child_new(p, "status", NULL, &c)) < 0 ||
                   (rc = epode_stanza_set_text(c, status)) < 0)) {
        epode_stanza_unref(p);
        return rc;
    }
    rc = epode_conn_send(conn, p);
    epode_stanza_unref(p);
    return rc;
}

int epode_presence_subscribe(epode_conn_t *conn, const char *to, const char *status)
{
    return send_sub(conn, to, "subscribe", status);
}

int epode_presence_approve(epode_conn_t *conn, const char *to)
{
    return send_sub(conn, to, "subscribed", NULL);
}

int epode_presence_deny(epode_conn_t *conn, const char *to)
{
    return send_sub(conn, to, "unsubscribed", NULL);
}

int epode_presence_cancel(epode_conn_t *conn, const char *to)
{
    return send_sub(conn, to, "unsubscribed", NULL);
}

int epode_presence_unsubscribe(epode_conn_t *conn, const char *to)
{
    return send_sub(conn, to, "unsubscribe", NULL);
}

/* ---- the tracker ---------------------------------------------------------------- */

struct epode_presence_info {
    char *full;
    char *bare;                  /* shared with the contact */
    const char *resource;        /* points into full, or NULL */
    epode_show_t show;
    char *status;
    int priority;
    unsigned long seq;           /* recency */
    epode_stanza_cond_t error;
    epode_stanza_t *st;          /* referenced */
};

typedef struct contact {
    char *bare;
    epode_presence_info_t **res;
    size_t nres, cap;
} contact;

struct epode_presence_tracker {
    epode_conn_t *conn;
    const epode_mem_t *mem;      /* the context's allocator */
    unsigned handler_id, event_id;
    contact *contacts;
    size_t ncontacts, cap;
    /* our own account's entry (other resources), if any: at own_idx */
    int has_own;
    size_t own_idx;
    unsigned long seq;
    epode_presence_event_cb event_cb;
    void *event_user;
    epode_subscription_cb sub_cb;
    void *sub_user;
    int auto_accept;
};

const char *epode_presence_info_jid(const epode_presence_info_t *i) { return i ? i->full : NULL; }
const char *epode_presence_info_bare(const epode_presence_info_t *i) { return i ? i->bare : NULL; }
const char *epode_presence_info_resource(const epode_presence_info_t *i)
{
    return i ? i->resource : NULL;
}
epode_show_t epode_presence_info_show(const epode_presence_info_t *i)
{
    return i ? i->show : EPODE_SHOW_UNAVAILABLE;
}
const char *epode_presence_info_status(const epode_presence_info_t *i)
{
    return i ? i->status : NULL;
}
int epode_presence_info_priority(const epode_presence_info_t *i) { return i ? i->priority : 0; }
epode_stanza_cond_t epode_presence_info_error(const epode_presence_info_t *i)
{
    return i ? i->error : EPODE_COND_NONE;
}
epode_stanza_t *epode_presence_info_stanza(const epode_presence_info_t *i)
{
    return i ? i->st : NULL;
}

static void info_free(const epode_mem_t *mem, epode_presence_info_t *i)
{
    if (!i)
        return;
    im_free(mem, i->full);
    im_free(mem, i->status);
    epode_stanza_unref(i->st);
    im_free(mem, i);
}

static contact *find_contact(const epode_presence_tracker_t *t, const char *bare, size_t *idx)
{
    for (size_t i = 0; i < t->ncontacts; i++)
        if (strcmp(t->contacts[i].bare, bare) == 0) {
            if (idx)
                *idx = i;
            return &t->contacts[i];
        }
    return NULL;
}

static void drop_contact(epode_presence_tracker_t *t, size_t idx)
{
    contact *c = &t->contacts[idx];
    for (size_t i = 0; i < c->nres; i++)
        info_free(t->mem, c->res[i]);
    im_free(t->mem, c->res);
    im_free(t->mem, c->bare);
    if (t->has_own && t->own_idx == idx)
        t->has_own = 0;
    t->contacts[idx] = t->contacts[--t->ncontacts];
    if (t->has_own && t->own_idx == t->ncontacts)
        t->own_idx = idx; /* the last one moved here */
}

static void clear(epode_presence_tracker_t *t)
{
    while (t->ncontacts)
        drop_contact(t, t->ncontacts - 1);
}

/* Our own account (RFC 6121 §4.2.2, §4.4.2: the server sends us our
 * other resources' presence, and our own back) is no contact: it is kept
 * and reported like any presence (an application sees itself come online
 * and its other resources), but not counted among contacts. */
static int is_own(const epode_presence_tracker_t *t, const char *bare)
{
    const char *me = t->conn ? epode_conn_bound_jid(t->conn) : NULL;
    return me && epode_jid_str_equal(bare, me, 1);
}

static void emit(epode_presence_tracker_t *t, const epode_presence_info_t *info,
                 epode_presence_change_t change)
{
    if (t->event_cb)
        t->event_cb(t->conn, info, change, t->event_user);
}


/* The status in the stanza's default language: one without xml:lang
 * first, else the first. */
static const char *status_of(const epode_stanza_t *st)
{
    epode_stanza_t *first = NULL;
    for (epode_stanza_t *c = epode_stanza_find_child(st, "status", EPODE_NS_CLIENT); c;
         c = epode_stanza_find_next(c, "status", EPODE_NS_CLIENT)) {
        if (!epode_stanza_get_attr(c, "xml:lang"))
            return epode_stanza_get_text(c);
        if (!first)
            first = c;
    }
    return first ? epode_stanza_get_text(first) : NULL;
}

static int priority_of(const epode_stanza_t *st)
{
    const char *p = epode_stanza_child_text(st, "priority", EPODE_NS_CLIENT);
    if (!p || !*p)
        return 0;
    char *end;
    long v = strtol(p, &end, 10);
    while (*end == ' ' || *end == '\t' || *end == '\n' || *end == '\r')
        end++;
    if (*end || v < -128 || v > 127)
        return 0; /* not a valid xs:byte: as if absent */
    return (int)v;
}

static epode_show_t show_of(const epode_stanza_t *st)
{
    const char *s = epode_stanza_child_text(st, "show", EPODE_NS_CLIENT);
    epode_show_t show;
    if (!s || epode_show_from_name(s, &show) < 0 || show == EPODE_SHOW_UNAVAILABLE ||
        show == EPODE_SHOW_AVAILABLE)
        return EPODE_SHOW_AVAILABLE; /* unknown <show/> values: plain available */
    return show;
}

static int same_str(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

static void on_available(epode_presence_tracker_t *t, epode_stanza_t *st, const epode_jid_t *j)
{
    const char *bare = epode_jid_bare(j), *full = epode_jid_full(j);
    size_t cidx;
    contact *c = find_contact(t, bare, &cidx);
    epode_presence_info_t *info = NULL;
    if (c)
        for (size_t i = 0; i < c->nres; i++)
            if (strcmp(c->res[i]->full, full) == 0)
                info = c->res[i];
    epode_show_t show = show_of(st);
    const char *status = status_of(st);
    int prio = priority_of(st);
    if (info) {
        int changed = info->show != show || info->priority != prio ||
                      !same_str(info->status, status);
        char *ns = im_strdup(t->mem, status);
        if (status && !ns)
            return; /* out of memory: the previous presence stays whole */
        im_free(t->mem, info->status);
        info->status = ns;
        info->show = show;
        info->priority = prio;
        info->seq = ++t->seq;
        epode_stanza_unref(info->st);
        info->st = epode_stanza_ref(st);
        if (changed)
            emit(t, info, EPODE_PRESENCE_CHANGED);
        return;
    }
    if (!c) {
        if (t->ncontacts == t->cap) {
            size_t cap = t->cap ? t->cap * 2 : 8;
            contact *n = im_realloc(t->mem, t->contacts, cap * sizeof *n);
            if (!n)
                return;
            t->contacts = n;
            t->cap = cap;
        }
        char *b = im_strdup(t->mem, bare);
        if (!b)
            return;
        c = &t->contacts[t->ncontacts++];
        *c = (contact){.bare = b};
        if (is_own(t, b)) {
            t->has_own = 1;
            t->own_idx = t->ncontacts - 1;
        }
    }
    if (c->nres == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 2;
        epode_presence_info_t **n = im_realloc(t->mem, c->res, cap * sizeof *n);
        if (!n)
            goto undo;
        c->res = n;
        c->cap = cap;
    }
    info = im_zalloc(t->mem, sizeof *info);
    if (!info)
        goto undo;
    info->full = im_strdup(t->mem, full);
    info->status = im_strdup(t->mem, status);
    if (!info->full || (status && !info->status)) {
        info_free(t->mem, info);
        goto undo;
    }
    info->bare = c->bare;
    info->resource = epode_jid_resource(j) ? info->full + strlen(c->bare) + 1 : NULL;
    info->show = show;
    info->priority = prio;
    info->seq = ++t->seq;
    info->st = epode_stanza_ref(st);
    c->res[c->nres++] = info;
    emit(t, info, EPODE_PRESENCE_AVAILABLE);
    return;
undo:
    if (c->nres == 0)
        drop_contact(t, (size_t)(c - t->contacts));
}

/* Unavailable (error NONE) or error: forget the resource, or every
 * resource of the contact when the stanza came from the bare JID. */
static void on_gone(epode_presence_tracker_t *t, epode_stanza_t *st, const epode_jid_t *j,
                    epode_stanza_cond_t error)
{
    const char *bare = epode_jid_bare(j), *full = epode_jid_full(j);
    int whole = epode_jid_is_bare(j);
    epode_presence_change_t change = error ? EPODE_PRESENCE_ERROR : EPODE_PRESENCE_UNAVAILABLE;
    const char *status = status_of(st);
    size_t cidx;
    contact *c = find_contact(t, bare, &cidx);
    int reported = 0;
    while (c) {
        epode_presence_info_t *gone = NULL;
        for (size_t i = 0; i < c->nres; i++)
            if (whole || strcmp(c->res[i]->full, full) == 0) {
                gone = c->res[i];
                /* keep the order resources came online in */
                memmove(&c->res[i], &c->res[i + 1], (c->nres - i - 1) * sizeof *c->res);
                c->nres--;
                break;
            }
        if (!gone)
            break;
        /* The info is out of the tracker; its bare string belongs to the
         * contact, which stays until the loop ends. */
        gone->show = EPODE_SHOW_UNAVAILABLE;
        gone->error = error;
        /* out of memory for the new status, the event goes without one */
        char *ns = im_strdup(t->mem, status);
        im_free(t->mem, gone->status);
        gone->status = ns;
        emit(t, gone, change);
        reported = 1;
        info_free(t->mem, gone);
    }
    if (c && c->nres == 0)
        drop_contact(t, cidx);
    if (!reported && error) {
        /* an error about someone we had nothing for: still tell */
        epode_presence_info_t tmp = {.full = (char *)full, .bare = (char *)bare,
                                     .resource = epode_jid_resource(j),
                                     .show = EPODE_SHOW_UNAVAILABLE, .error = error, .st = st};
        emit(t, &tmp, change);
    }
}

static void on_subscription(epode_presence_tracker_t *t, epode_stanza_t *st,
                            const epode_jid_t *j, epode_subscription_t what)
{
    const char *bare = epode_jid_bare(j);
    int decision = EPODE_SUB_DEFER;
    if (t->sub_cb)
        decision = t->sub_cb(t->conn, bare, what, status_of(st), t->sub_user);
    if (what != EPODE_SUB_REQUEST)
        return;
    if (decision == EPODE_SUB_DEFER && t->auto_accept != EPODE_AUTO_ACCEPT_OFF)
        decision = EPODE_SUB_ACCEPT;
    if (decision == EPODE_SUB_ACCEPT) {
        epode_presence_approve(t->conn, bare);
        if (t->auto_accept == EPODE_AUTO_ACCEPT_MUTUAL)
            epode_presence_subscribe(t->conn, bare, NULL);
    } else if (decision == EPODE_SUB_REFUSE) {
        epode_presence_deny(t->conn, bare);
    }
}

static int on_presence(epode_conn_t *conn, epode_stanza_t *st, void *user)
{
    (void)conn;
    epode_presence_tracker_t *t = user;
    const char *from = epode_stanza_get_from(st);
    if (!t->conn || !from || epode_stanza_find_child(st, "x", NS_MUC_USER))
        return EPODE_PASS;
    epode_jid_t *j;
    if (epode_jid_new(t->mem, from, &j) < 0)
        return EPODE_PASS; /* not a JID (or no memory): nothing to track */
    const char *type = epode_stanza_get_type(st);
    if (!type)
        on_available(t, st, j);
    else if (strcmp(type, "unavailable") == 0)
        on_gone(t, st, j, EPODE_COND_NONE);
    else if (strcmp(type, "error") == 0) {
        epode_stanza_cond_t cond = EPODE_COND_UNDEFINED_CONDITION;
        if (epode_stanza_get_error(st, &cond, NULL, NULL) < 0 || cond == EPODE_COND_NONE)
            cond = EPODE_COND_UNDEFINED_CONDITION;
        on_gone(t, st, j, cond);
    } else if (strcmp(type, "subscribe") == 0)
        on_subscription(t, st, j, EPODE_SUB_REQUEST);
    else if (strcmp(type, "subscribed") == 0)
        on_subscription(t, st, j, EPODE_SUB_APPROVED);
    else if (strcmp(type, "unsubscribed") == 0)
        on_subscription(t, st, j, EPODE_SUB_REVOKED);
    else if (strcmp(type, "unsubscribe") == 0)
        on_subscription(t, st, j, EPODE_SUB_ENDED);
    /* anything else (probe, unknown types) is not for clients: ignored */
    epode_jid_free(j);
    return EPODE_PASS;
}

static void on_conn_event(epode_conn_t *conn, epode_conn_event_t ev, void *user)
{
    (void)conn;
    epode_presence_tracker_t *t = user;
    if (ev == EPODE_CONN_DISCONNECTED) {
        clear(t);
    } else if (ev == EPODE_CONN_FREED) {
        /* our ids die with the connection; what we knew ends with it */
        t->conn = NULL;
        t->handler_id = t->event_id = 0;
        clear(t);
    }
}

int epode_presence_tracker_new(epode_conn_t *conn, epode_presence_tracker_t **out)
{
    if (!conn || !out)
        return EPODE_EINVAL;
    const epode_mem_t *mem = im_mem(conn);
    epode_presence_tracker_t *t = im_zalloc(mem, sizeof *t);
    if (!t)
        return EPODE_ENOMEM;
    t->conn = conn;
    t->mem = mem;
    int rc = epode_conn_add_handler(conn, "presence", NULL, NULL, on_presence, t, &t->handler_id);
    if (rc < 0) {
        im_free(mem, t);
        return rc;
    }
    rc = epode_conn_add_event_cb(conn, on_conn_event, t, &t->event_id);
    if (rc < 0) {
        epode_conn_remove(conn, t->handler_id);
        im_free(mem, t);
        return rc;
    }
    *out = t;
    return 0;
}

void epode_presence_tracker_free(epode_presence_tracker_t *t)
{
    if (!t)
        return;
    if (t->conn) {
        epode_conn_remove(t->conn, t->handler_id);
        epode_conn_remove(t->conn, t->event_id);
    }
    clear(t);
    im_free(t->mem, t->contacts);
    im_free(t->mem, t);
}

int epode_presence_tracker_set_event_cb(epode_presence_tracker_t *t, epode_presence_event_cb cb,
                                        void *user)
{
    if (!t)
        return EPODE_EINVAL;
    t->event_cb = cb;
    t->event_user = user;
    return 0;
}

int epode_presence_tracker_set_subscription_cb(epode_presence_tracker_t *t,
                                               epode_subscription_cb cb, void *user)
{
    if (!t)
        return EPODE_EINVAL;
    t->sub_cb = cb;
    t->sub_user = user;
    return 0;
}

int epode_presence_tracker_set_auto_accept(epode_presence_tracker_t *t, int policy)
{
    if (!t || policy < EPODE_AUTO_ACCEPT_OFF || policy > EPODE_AUTO_ACCEPT_MUTUAL)
        return EPODE_EINVAL;
    t->auto_accept = policy;
    return 0;
}

static contact *contact_of(epode_presence_tracker_t *t, const char *jid, epode_jid_t **jout)
{
    epode_jid_t *j;
    if (!t || !jid || epode_jid_new(t->mem, jid, &j) < 0)
        return NULL;
    contact *c = find_contact(t, epode_jid_bare(j), NULL);
    if (jout)
        *jout = j;
    else
        epode_jid_free(j);
    return c;
}

static int better(const epode_presence_info_t *a, const epode_presence_info_t *b)
{
    if (a->priority != b->priority)
        return a->priority > b->priority;
    if (a->show != b->show)
        return a->show > b->show;
    return a->seq > b->seq;
}

const epode_presence_info_t *epode_presence_tracker_best(epode_presence_tracker_t *t,
                                                         const char *jid)
{
    contact *c = contact_of(t, jid, NULL);
    const epode_presence_info_t *best = NULL;
    for (size_t i = 0; c && i < c->nres; i++)
        if (!best || better(c->res[i], best))
            best = c->res[i];
    return best;
}

const epode_presence_info_t *epode_presence_tracker_get(epode_presence_tracker_t *t,
                                                        const char *jid)
{
    epode_jid_t *j = NULL;
    contact *c = contact_of(t, jid, &j);
    const epode_presence_info_t *found = NULL;
    if (c && epode_jid_is_bare(j)) {
        found = epode_presence_tracker_best(t, jid);
    } else if (c) {
        for (size_t i = 0; i < c->nres; i++)
            if (strcmp(c->res[i]->full, epode_jid_full(j)) == 0)
                found = c->res[i];
    }
    epode_jid_free(j);
    return found;
}

size_t epode_presence_tracker_resource_count(epode_presence_tracker_t *t, const char *jid)
{
    contact *c = contact_of(t, jid, NULL);
    return c ? c->nres : 0;
}

const epode_presence_info_t *epode_presence_tracker_resource_at(epode_presence_tracker_t *t,
                                                                const char *jid, size_t i)
{
    contact *c = contact_of(t, jid, NULL);
    return c && i < c->nres ? c->res[i] : NULL;
}

size_t epode_presence_tracker_contact_count(const epode_presence_tracker_t *t)
{
    return t ? t->ncontacts - (t->has_own ? 1 : 0) : 0;
}

const char *epode_presence_tracker_contact_at(const epode_presence_tracker_t *t, size_t i)
{
    if (!t)
        return NULL;
    size_t k = t->has_own && i >= t->own_idx ? i + 1 : i; /* step over our own entry */
    return k < t->ncontacts ? t->contacts[k].bare : NULL;
}
