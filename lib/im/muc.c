/* lib/im/muc.c — XEP-0045 basics on the public API: the rooms of one
 * connection, their occupants and subject, joining (with history limits,
 * passwords, nick-conflict retries and instant-room unlocking), leaving,
 * sending, and rejoining after a reconnect. It reads only stanzas whose
 * `from` is a room it has joined; it never keeps a stanza. Freed before
 * its connection, it lets go of it on EPODE_CONN_FREED and never touches
 * it again (the rooms stay, not joined, until epode_muc_free()). */
#include <epode.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "im_alloc.h"

#define NS_DELAY "urn:xmpp:delay"
#define NS_XDATA "jabber:x:data"
#define MAX_CODES 16

typedef struct occ {
    epode_muc_occupant_t pub;
    char *nick, *jid, *role, *aff, *show, *status;
} occ;

typedef enum {
    R_PENDING,  /* join not sent yet (not READY, or waiting for a reconnect) */
    R_JOINING,  /* join sent, no self-presence yet (or unlocking a new room) */
    R_JOINED,
    R_LEAVING,
    R_DEAD      /* to be freed once the current dispatch is over */
} room_state;

struct epode_muc_room {
    epode_muc_t *muc;
    char *jid;        /* normalized bare JID */
    char *nick, *base_nick, *password;
    int maxstanzas, seconds;
    unsigned tries;
    room_state state;
    unsigned config_iq;
    char *subject;
    occ **occs;
    size_t nocc, cap;
    time_t since;     /* rejoin: ask history since the disconnect (0: none) */
    void *user;
};

struct epode_muc {
    epode_conn_t *conn;
    const epode_mem_t *mem; /* the context's allocator, for all we own */
    epode_muc_cb cb;
    void *user;
    unsigned pres_id, msg_id, event_id;
    epode_muc_room_t **rooms;
    size_t nrooms, cap;
    char *suffix;
    unsigned max_tries;
    int depth;        /* > 0 while a handler of ours runs */
};

/* ---- small helpers --------------------------------------------------------------------- */

static int set_str(const epode_mem_t *mem, char **dst, const char *src)
{
    char *d = NULL;
    if (src && !(d = im_strdup(mem, src)))
        return EPODE_ENOMEM;
    im_free(mem, *dst);
    *dst = d;
    return 0;
}

static int str_eq(const char *a, const char *b)
{
    return a && b && strcmp(a, b) == 0;
}

static void occ_free(const epode_mem_t *mem, occ *o)
{
    if (!o)
        return;
    im_free(mem, o->nick);
    im_free(mem, o->jid);
    im_free(mem, o->role);
    im_free(mem, o->aff);
    im_free(mem, o->show);
    im_free(mem, o->status);
    im_free(mem, o);
}

/* Takes an occupant's details from its presence (jid, role and
 * affiliation from `item` if there is one; show and status always): all
 * of them or, out of memory, none. */
static int occ_update(const epode_mem_t *mem, occ *o, const epode_stanza_t *item,
                      const epode_stanza_t *st)
{
    char **dst[5] = {&o->jid, &o->role, &o->aff, &o->show, &o->status};
    const char *src[5] = {
        item ? epode_stanza_get_attr(item, "jid") : NULL,
        item ? epode_stanza_get_attr(item, "role") : NULL,
        item ? epode_stanza_get_attr(item, "affiliation") : NULL,
        epode_stanza_child_text(st, "show", NULL),
        epode_stanza_child_text(st, "status", NULL),
    };
    char *nv[5] = {NULL};
    int first = item ? 0 : 3;
    for (int i = first; i < 5; i++)
        if (src[i] && !(nv[i] = im_strdup(mem, src[i]))) {
            for (int k = first; k < i; k++)
                im_free(mem, nv[k]);
            return EPODE_ENOMEM;
        }
    for (int i = first; i < 5; i++) {
        im_free(mem, *dst[i]);
        *dst[i] = nv[i];
    }
    return 0;
}

static void occ_sync(occ *o)
{
    o->pub.nick = o->nick;
    o->pub.jid = o->jid;
    o->pub.role = o->role ? o->role : "none";
    o->pub.affiliation = o->aff ? o->aff : "none";
    o->pub.show = o->show;
    o->pub.status = o->status;
}

/* The occupant called nick, or NULL. *idx (when asked for) is its index,
 * or r->nocc when there is none: always set, so no caller reads garbage. */
static occ *occ_find(const epode_muc_room_t *r, const char *nick, size_t *idx)
{
    size_t i = 0;
    while (i < r->nocc && !str_eq(r->occs[i]->nick, nick))
        i++;
    if (idx)
        *idx = i;
    return i < r->nocc ? r->occs[i] : NULL;
}

static void occ_clear(epode_muc_room_t *r)
{
    for (size_t i = 0; i < r->nocc; i++)
        occ_free(r->muc->mem, r->occs[i]);
    r->nocc = 0;
}

static void room_free(epode_muc_room_t *r)
{
    if (r->config_iq && r->muc->conn)
        epode_conn_remove(r->muc->conn, r->config_iq);
    const epode_mem_t *mem = r->muc->mem;
    occ_clear(r);
    im_free(mem, r->occs);
    im_free(mem, r->jid);
    im_free(mem, r->nick);
    im_free(mem, r->base_nick);
    im_free(mem, r->password);
    im_free(mem, r->subject);
    im_free(mem, r);
}

/* Frees the rooms marked dead, unless one of our handlers is running. */
static void reap(epode_muc_t *m)
{
    if (m->depth > 0)
        return;
    size_t w = 0;
    for (size_t i = 0; i < m->nrooms; i++) {
        if (m->rooms[i]->state == R_DEAD)
            room_free(m->rooms[i]);
        else
            m->rooms[w++] = m->rooms[i];
    }
    m->nrooms = w;
}

static void emit(epode_muc_room_t *r, epode_muc_event_t *ev)
{
    epode_muc_t *m = r->muc;
    ev->room = r;
    if (m->cb) {
        m->depth++;
        m->cb(m->conn, ev, m->user);
        m->depth--;
    }
}

/* ---- sending ----------------------------------------------------------------------------- */

static int send_join(epode_muc_room_t *r)
{
    epode_muc_t *m = r->muc;
    if (!m->conn)
        return EPODE_ESTATE;
    char to[3072];
    snprintf(to, sizeof to, "%s/%s", r->jid, r->nick);
    epode_stanza_t *p, *x, *el;
    int rc = epode_stanza_new_presence(m->mem, NULL, to, &p);
    if (rc < 0)
        return rc;
    rc = epode_stanza_add_child_new(p, "x", EPODE_NS_MUC, &x);
    if (rc == 0 && r->password && (rc = epode_stanza_add_child_new(x, "password", NULL, &el)) == 0)
        rc = epode_stanza_set_text(el, r->password);
    if (rc == 0 && (r->maxstanzas >= 0 || r->seconds >= 0 || r->since)) {
        char num[32];
        if ((rc = epode_stanza_add_child_new(x, "history", NULL, &el)) == 0 && r->maxstanzas >= 0) {
            snprintf(num, sizeof num, "%d", r->maxstanzas);
            rc = epode_stanza_set_attr(el, "maxstanzas", num);
        }
        if (rc == 0 && r->seconds >= 0) {
            snprintf(num, sizeof num, "%d", r->seconds);
            rc = epode_stanza_set_attr(el, "seconds", num);
        }
        if (rc == 0 && r->since) {
            struct tm tm;
            gmtime_r(&r->since, &tm);
            strftime(num, sizeof num, "%Y-%m-%dT%H:%M:%SZ", &tm);
            rc = epode_stanza_set_attr(el, "since", num);
        }
    }
    if (rc == 0)
        rc = epode_conn_send(m->conn, p);
    epode_stanza_unref(p);
    if (rc == 0)
        r->state = R_JOINING;
    return rc;
}

static void on_config_answer(epode_conn_t *conn, epode_stanza_t *result, int status, void *user)
{
    (void)conn;
    epode_muc_room_t *r = user;
    r->config_iq = 0;
    epode_muc_t *m = r->muc;
    if (!m->conn || r->state != R_JOINING || status == EPODE_ECANCELED)
        return; /* canceled: the connection ended, the join is redone at READY */
    const char *type = result ? epode_stanza_get_type(result) : NULL;
    m->depth++;
    if (status < 0 || str_eq(type, "error")) {
        /* the room stays locked; the application may configure it itself */
        epode_muc_event_t ev = {.type = EPODE_MUC_ERROR, .stanza = result,
                                .cond = EPODE_COND_UNDEFINED_CONDITION};
        if (result)
            epode_stanza_get_error(result, &ev.cond, NULL, &ev.error_text);
        else
            ev.error_text = "the room did not answer the instant-room configuration";
        emit(r, &ev);
    }
    if (r->state == R_JOINING) {
        r->state = R_JOINED;
        occ *self = occ_find(r, r->nick, NULL);
        epode_muc_event_t ev = {.type = EPODE_MUC_JOINED, .nick = r->nick, .is_self = 1,
                                .created = 1, .occupant = self ? &self->pub : NULL};
        emit(r, &ev);
    }
    m->depth--;
    reap(m);
}

static int send_instant_config(epode_muc_room_t *r)
{
    if (!r->muc->conn)
        return EPODE_ESTATE;
    epode_stanza_t *iq, *q, *x;
    int rc = epode_stanza_new_iq(r->muc->mem, "set", NULL, &iq);
    if (rc < 0)
        return rc;
    if ((rc = epode_stanza_set_to(iq, r->jid)) == 0 &&
        (rc = epode_stanza_add_child_new(iq, "query", EPODE_NS_MUC_OWNER, &q)) == 0 &&
        (rc = epode_stanza_add_child_new(q, "x", NS_XDATA, &x)) == 0 &&
        (rc = epode_stanza_set_attr(x, "type", "submit")) == 0)
        rc = epode_conn_send_iq(r->muc->conn, iq, 0, on_config_answer, r, &r->config_iq);
    epode_stanza_unref(iq);
    return rc;
}

/* ---- incoming ---------------------------------------------------------------------------- */

/* The room `from` belongs to (and the nick part, borrowed from *jid). */
static epode_muc_room_t *room_of(epode_muc_t *m, const char *from, epode_jid_t **jid)
{
    *jid = NULL;
    if (!from || epode_jid_new(m->mem, from, jid) < 0)
        return NULL;
    const char *bare = epode_jid_bare(*jid);
    for (size_t i = 0; i < m->nrooms; i++)
        if (m->rooms[i]->state != R_DEAD && strcmp(m->rooms[i]->jid, bare) == 0)
            return m->rooms[i];
    epode_jid_free(*jid);
    *jid = NULL;
    return NULL;
}

static size_t read_codes(const epode_stanza_t *x, int *codes)
{
    size_t n = 0;
    if (!x)
        return 0;
    for (epode_stanza_t *s = epode_stanza_find_child(x, "status", NULL); s && n < MAX_CODES;
         s = epode_stanza_find_next(s, "status", NULL)) {
        const char *c = epode_stanza_get_attr(s, "code");
        if (c)
            codes[n++] = atoi(c);
    }
    return n;
}

static int has_code(const int *codes, size_t n, int code)
{
    for (size_t i = 0; i < n; i++)
        if (codes[i] == code)
            return 1;
    return 0;
}

static void presence_error(epode_muc_room_t *r, epode_stanza_t *st, const char *nick)
{
    epode_muc_t *m = r->muc;
    epode_muc_event_t ev = {.type = EPODE_MUC_ERROR, .nick = nick, .stanza = st};
    if (epode_stanza_get_error(st, &ev.cond, NULL, &ev.error_text) < 0)
        ev.cond = EPODE_COND_UNDEFINED_CONDITION;
    if (r->state != R_JOINING) {
        emit(r, &ev);
        return;
    }
    if (ev.cond == EPODE_COND_CONFLICT && r->tries < m->max_tries) {
        r->tries++;
        size_t bl = strlen(r->base_nick), sl = strlen(m->suffix);
        char *nn = im_alloc(m->mem, bl + sl * r->tries + 1);
        if (nn) {
            memcpy(nn, r->base_nick, bl);
            for (unsigned i = 0; i < r->tries; i++)
                memcpy(nn + bl + sl * i, m->suffix, sl);
            nn[bl + sl * r->tries] = '\0';
            im_free(m->mem, r->nick);
            r->nick = nn;
            ev.retrying = 1;
            ev.nick = r->nick;
            emit(r, &ev);
            if (r->state == R_JOINING && send_join(r) == 0)
                return;
            if (r->state == R_DEAD)
                return;
            ev.retrying = 0;
        }
    }
    ev.fatal = 1;
    ev.retrying = 0;
    r->state = R_DEAD;
    emit(r, &ev);
}

static void self_joined(epode_muc_room_t *r, occ *self, epode_stanza_t *st, const int *codes,
                        size_t ncodes)
{
    if (has_code(codes, ncodes, 201)) {
        if (send_instant_config(r) == 0)
            return; /* JOINED once the room is unlocked */
    }
    r->state = R_JOINED;
    r->tries = 0;
    epode_muc_event_t ev = {.type = EPODE_MUC_JOINED, .nick = r->nick, .is_self = 1,
                            .occupant = &self->pub, .codes = codes, .ncodes = ncodes,
                            .stanza = st};
    emit(r, &ev);
}

static void on_room_presence(epode_muc_room_t *r, epode_stanza_t *st, const char *nick)
{
    const epode_mem_t *mem = r->muc->mem;
    const char *type = epode_stanza_get_type(st);
    if (str_eq(type, "error")) {
        presence_error(r, st, nick);
        return;
    }
    if (!nick || (type && strcmp(type, "unavailable") != 0))
        return; /* probes, subscriptions, the room's own presence */
    epode_stanza_t *x = epode_stanza_find_child(st, "x", EPODE_NS_MUC_USER);
    epode_stanza_t *item = x ? epode_stanza_find_child(x, "item", NULL) : NULL;
    int codes[MAX_CODES];
    size_t ncodes = read_codes(x, codes);
    int is_self = has_code(codes, ncodes, 110) || str_eq(nick, r->nick);
    epode_muc_event_t ev = {.nick = nick, .is_self = is_self, .codes = codes, .ncodes = ncodes,
                            .stanza = st};
    size_t idx;
    occ *o = occ_find(r, nick, &idx);

    if (type) { /* unavailable */
        /* out of memory, the presence is dropped before anything changed */
        char *new_nick = NULL;
        if (is_self && has_code(codes, ncodes, 303)) {
            const char *nn = item ? epode_stanza_get_attr(item, "nick") : NULL;
            if (nn && !(new_nick = im_strdup(mem, nn)))
                return;
        }
        if (o && item) { /* the last word on the occupant: role none, a ban, ... */
            /* best effort: o goes right after this event */
            const char *jid = epode_stanza_get_attr(item, "jid");
            if (jid)
                set_str(mem, &o->jid, jid);
            set_str(mem, &o->role, epode_stanza_get_attr(item, "role"));
            set_str(mem, &o->aff, epode_stanza_get_attr(item, "affiliation"));
            occ_sync(o);
        }
        if (o) {
            memmove(r->occs + idx, r->occs + idx + 1, (r->nocc - idx - 1) * sizeof *r->occs);
            r->nocc--;
        }
        if (is_self && has_code(codes, ncodes, 303)) {
            if (new_nick) {
                im_free(mem, r->nick);
                r->nick = new_nick;
            }
            occ_free(mem, o);
            return;
        }
        if (is_self) {
            r->state = R_DEAD;
            ev.type = EPODE_MUC_LEFT;
            ev.occupant = o ? &o->pub : NULL;
            emit(r, &ev);
        } else if (o) {
            ev.type = EPODE_MUC_OCCUPANT_LEFT;
            ev.occupant = &o->pub;
            emit(r, &ev);
        }
        occ_free(mem, o);
        return;
    }

    /* Everything this presence needs is allocated before anything
     * changes: out of memory, it is dropped and the room stays as it was. */
    int joining = is_self && r->state == R_JOINING;
    char *self_nick = NULL;
    if (joining && !str_eq(r->nick, nick) && !(self_nick = im_strdup(mem, nick)))
        return; /* the room picked our nick (210) */
    int is_new = !o;
    if (is_new) {
        if (r->nocc == r->cap) {
            size_t nc = r->cap ? r->cap * 2 : 8;
            occ **n = im_realloc(mem, r->occs, nc * sizeof *n);
            if (!n) {
                im_free(mem, self_nick);
                return;
            }
            r->occs = n;
            r->cap = nc;
        }
        if (!(o = im_zalloc(mem, sizeof *o)) || set_str(mem, &o->nick, nick) < 0 ||
            occ_update(mem, o, item, st) < 0) {
            occ_free(mem, o);
            im_free(mem, self_nick);
            return;
        }
        r->occs[r->nocc++] = o;
    } else if (occ_update(mem, o, item, st) < 0) {
        im_free(mem, self_nick);
        return;
    }
    o->pub.is_self = is_self;
    occ_sync(o);
    ev.occupant = &o->pub;

    if (joining) {
        if (self_nick) {
            im_free(mem, r->nick);
            r->nick = self_nick;
        }
        self_joined(r, o, st, codes, ncodes);
        return;
    }
    ev.type = is_new && !is_self ? EPODE_MUC_OCCUPANT_JOINED : EPODE_MUC_OCCUPANT_CHANGED;
    emit(r, &ev);
}

static int on_presence(epode_conn_t *conn, epode_stanza_t *st, void *user)
{
    (void)conn;
    epode_muc_t *m = user;
    if (!m->conn)
        return EPODE_PASS;
    epode_jid_t *from;
    epode_muc_room_t *r = room_of(m, epode_stanza_get_from(st), &from);
    if (!r)
        return EPODE_PASS;
    m->depth++;
    if (r->state != R_PENDING)
        on_room_presence(r, st, epode_jid_resource(from));
    m->depth--;
    epode_jid_free(from);
    reap(m);
    return EPODE_HANDLED;
}

static void on_room_message(epode_muc_room_t *r, epode_stanza_t *st, const char *nick)
{
    const char *type = epode_stanza_get_type(st);
    epode_muc_event_t ev = {.nick = nick, .stanza = st, .is_self = str_eq(nick, r->nick)};
    ev.is_history = epode_stanza_find_child(st, "delay", NS_DELAY) != NULL;
    if (str_eq(type, "error")) {
        ev.type = EPODE_MUC_ERROR;
        if (epode_stanza_get_error(st, &ev.cond, NULL, &ev.error_text) < 0)
            ev.cond = EPODE_COND_UNDEFINED_CONDITION;
        emit(r, &ev);
        return;
    }
    const char *body = epode_stanza_child_text(st, "body", NULL);
    const char *subject = epode_stanza_child_text(st, "subject", NULL);
    if (str_eq(type, "groupchat")) {
        if (subject && !body) {
            if (set_str(r->muc->mem, &r->subject, subject) < 0)
                return; /* out of memory: dropped, the old subject stays */
            ev.type = EPODE_MUC_SUBJECT;
            ev.subject = r->subject ? r->subject : subject;
            emit(r, &ev);
        } else if (body) {
            ev.type = EPODE_MUC_MESSAGE;
            ev.body = body;
            emit(r, &ev);
        }
    } else if (nick && body) {
        ev.type = EPODE_MUC_PRIVATE;
        ev.body = body;
        emit(r, &ev);
    }
}

static int on_message(epode_conn_t *conn, epode_stanza_t *st, void *user)
{
    (void)conn;
    epode_muc_t *m = user;
    if (!m->conn)
        return EPODE_PASS;
    epode_jid_t *from;
    epode_muc_room_t *r = room_of(m, epode_stanza_get_from(st), &from);
    if (!r)
        return EPODE_PASS;
    m->depth++;
    if (r->state == R_JOINED || r->state == R_JOINING || r->state == R_LEAVING)
        on_room_message(r, st, epode_jid_resource(from));
    m->depth--;
    epode_jid_free(from);
    reap(m);
    return EPODE_HANDLED;
}

static void on_event(epode_conn_t *conn, epode_conn_event_t event, void *user)
{
    (void)conn;
    epode_muc_t *m = user;
    if (event == EPODE_CONN_FREED) {
        /* Our ids die with the connection. The rooms stay, with what
         * was last known of them (the application may hold their handles
         * and, if it freed the connection from one of our events, that
         * event's occupant), but are joined no more; nobody is told: the
         * application is freeing things. */
        m->conn = NULL;
        m->pres_id = m->msg_id = m->event_id = 0;
        for (size_t i = 0; i < m->nrooms; i++) {
            epode_muc_room_t *r = m->rooms[i];
            r->config_iq = 0;
            if (r->state != R_DEAD)
                r->state = R_PENDING;
        }
        return;
    }
    m->depth++;
    if (event == EPODE_CONN_DISCONNECTED) {
        time_t now = time(NULL);
        for (size_t i = 0; i < m->nrooms; i++) {
            epode_muc_room_t *r = m->rooms[i];
            r->config_iq = 0; /* canceled with the connection */
            occ_clear(r);
            if (r->state == R_LEAVING) {
                r->state = R_DEAD;
                epode_muc_event_t ev = {.type = EPODE_MUC_LEFT, .nick = r->nick, .is_self = 1};
                emit(r, &ev);
            } else if (r->state == R_JOINED) {
                r->state = R_PENDING;
                r->since = now;
            } else if (r->state == R_JOINING) {
                r->state = R_PENDING;
            }
        }
    } else if (event == EPODE_CONN_READY) {
        for (size_t i = 0; i < m->nrooms; i++)
            if (m->rooms[i]->state == R_PENDING)
                send_join(m->rooms[i]);
    }
    m->depth--;
    reap(m);
}

/* ---- public ------------------------------------------------------------------------------ */

int epode_muc_new(epode_conn_t *conn, epode_muc_cb cb, void *user, epode_muc_t **out)
{
    if (!conn || !out)
        return EPODE_EINVAL;
    const epode_mem_t *mem = im_mem(conn);
    epode_muc_t *m = im_zalloc(mem, sizeof *m);
    if (!m)
        return EPODE_ENOMEM;
    m->conn = conn;
    m->mem = mem;
    m->cb = cb;
    m->user = user;
    int rc = set_str(mem, &m->suffix, "_");
    if (rc == 0)
        rc = epode_conn_add_handler(conn, "presence", NULL, NULL, on_presence, m, &m->pres_id);
    if (rc == 0 && (rc = epode_conn_add_handler(conn, "message", NULL, NULL, on_message, m,
                                           &m->msg_id)) < 0)
        epode_conn_remove(conn, m->pres_id);
    if (rc == 0 && (rc = epode_conn_add_event_cb(conn, on_event, m, &m->event_id)) < 0) {
        epode_conn_remove(conn, m->pres_id);
        epode_conn_remove(conn, m->msg_id);
    }
    if (rc < 0) {
        im_free(mem, m->suffix);
        im_free(mem, m);
        return rc;
    }
    *out = m;
    return 0;
}

void epode_muc_free(epode_muc_t *m)
{
    if (!m)
        return;
    if (m->conn) {
        epode_conn_remove(m->conn, m->pres_id);
        epode_conn_remove(m->conn, m->msg_id);
        epode_conn_remove(m->conn, m->event_id);
    }
    for (size_t i = 0; i < m->nrooms; i++)
        room_free(m->rooms[i]);
    im_free(m->mem, m->rooms);
    im_free(m->mem, m->suffix);
    im_free(m->mem, m);
}

int epode_muc_set_nick_retry(epode_muc_t *m, const char *suffix, unsigned max_tries)
{
    if (!m || (suffix && !*suffix))
        return EPODE_EINVAL;
    int rc = set_str(m->mem, &m->suffix, suffix ? suffix : "_");
    if (rc == 0)
        m->max_tries = max_tries;
    return rc;
}

/* The live room with this normalized bare JID. */
static epode_muc_room_t *find_bare(const epode_muc_t *m, const char *bare)
{
    for (size_t i = 0; i < m->nrooms; i++)
        if (m->rooms[i]->state != R_DEAD && strcmp(m->rooms[i]->jid, bare) == 0)
            return m->rooms[i];
    return NULL;
}

epode_muc_room_t *epode_muc_find(const epode_muc_t *m, const char *room)
{
    if (!m || !room)
        return NULL;
    epode_jid_t *j;
    if (epode_jid_new(m->mem, room, &j) < 0)
        return NULL;
    epode_muc_room_t *found = find_bare(m, epode_jid_bare(j));
    epode_jid_free(j);
    return found;
}

int epode_muc_join(epode_muc_t *m, const char *room, const char *nick, const char *password,
                   int maxstanzas, int seconds, epode_muc_room_t **out)
{
    if (!m || !room || !nick || !*nick)
        return EPODE_EINVAL;
    if (!m->conn)
        return EPODE_ESTATE;
    epode_jid_t *j;
    int rc = epode_jid_new(m->mem, room, &j);
    if (rc < 0)
        return rc;
    if (!epode_jid_is_bare(j) || !epode_jid_local(j)) {
        epode_jid_free(j);
        return EPODE_EJID;
    }
    char full[3072];
    if ((size_t)snprintf(full, sizeof full, "%s/%s", epode_jid_bare(j), nick) >= sizeof full ||
        epode_jid_validate(full) < 0) {
        epode_jid_free(j);
        return EPODE_EJID;
    }
    if (find_bare(m, epode_jid_bare(j))) {
        epode_jid_free(j);
        return EPODE_ESTATE;
    }
    epode_muc_room_t *r = im_zalloc(m->mem, sizeof *r);
    if (!r) {
        epode_jid_free(j);
        return EPODE_ENOMEM;
    }
    r->muc = m;
    r->maxstanzas = maxstanzas;
    r->seconds = seconds;
    r->state = R_PENDING;
    rc = set_str(m->mem, &r->jid, epode_jid_bare(j));
    epode_jid_free(j);
    if (rc == 0)
        rc = set_str(m->mem, &r->nick, nick);
    if (rc == 0)
        rc = set_str(m->mem, &r->base_nick, nick);
    if (rc == 0)
        rc = set_str(m->mem, &r->password, password);
    if (rc == 0 && m->nrooms == m->cap) {
        size_t nc = m->cap ? m->cap * 2 : 4;
        epode_muc_room_t **n = im_realloc(m->mem, m->rooms, nc * sizeof *n);
        if (!n)
            rc = EPODE_ENOMEM;
        else {
            m->rooms = n;
            m->cap = nc;
        }
    }
    if (rc == 0 && epode_conn_is_ready(m->conn))
        rc = send_join(r);
    if (rc < 0) {
        room_free(r);
        return rc;
    }
    m->rooms[m->nrooms++] = r;
    if (out)
        *out = r;
    return 0;
}

int epode_muc_leave(epode_muc_room_t *r, const char *status)
{
    if (!r)
        return EPODE_EINVAL;
    if (r->state == R_LEAVING || r->state == R_DEAD)
        return EPODE_ESTATE;
    epode_muc_t *m = r->muc;
    if (r->state == R_PENDING || !m->conn || !epode_conn_is_ready(m->conn)) {
        r->state = R_DEAD;
        reap(m);
        return 0;
    }
    char to[3072];
    snprintf(to, sizeof to, "%s/%s", r->jid, r->nick);
    epode_stanza_t *p, *el;
    int rc = epode_stanza_new_presence(m->mem, "unavailable", to, &p);
    if (rc < 0)
        return rc;
    if (status && (rc = epode_stanza_add_child_new(p, "status", NULL, &el)) == 0)
        rc = epode_stanza_set_text(el, status);
    if (rc == 0)
        rc = epode_conn_send(m->conn, p);
    epode_stanza_unref(p);
    if (rc == 0)
        r->state = R_LEAVING;
    return rc;
}

static int send_to_room(epode_muc_room_t *r, const char *type, const char *to, const char *body,
                        const char *subject, int muc_user_x)
{
    if (r->state != R_JOINED || !r->muc->conn)
        return EPODE_ESTATE;
    epode_stanza_t *msg, *el;
    int rc = epode_stanza_new_message(r->muc->mem, type, to, body, &msg);
    if (rc < 0)
        return rc;
    if (subject && (rc = epode_stanza_add_child_new(msg, "subject", NULL, &el)) == 0)
        rc = epode_stanza_set_text(el, subject);
    if (rc == 0 && muc_user_x)
        rc = epode_stanza_add_child_new(msg, "x", EPODE_NS_MUC_USER, NULL);
    if (rc == 0)
        rc = epode_conn_send(r->muc->conn, msg);
    epode_stanza_unref(msg);
    return rc;
}

int epode_muc_send(epode_muc_room_t *r, const char *body)
{
    if (!r || !body)
        return EPODE_EINVAL;
    return send_to_room(r, "groupchat", r->jid, body, NULL, 0);
}

int epode_muc_send_private(epode_muc_room_t *r, const char *nick, const char *body)
{
    if (!r || !nick || !body)
        return EPODE_EINVAL;
    char to[3072];
    if ((size_t)snprintf(to, sizeof to, "%s/%s", r->jid, nick) >= sizeof to ||
        epode_jid_validate(to) < 0)
        return EPODE_EJID;
    return send_to_room(r, "chat", to, body, NULL, 1);
}

int epode_muc_set_subject(epode_muc_room_t *r, const char *subject)
{
    if (!r || !subject)
        return EPODE_EINVAL;
    return send_to_room(r, "groupchat", r->jid, NULL, subject, 0);
}

const char *epode_muc_room_jid(const epode_muc_room_t *r)
{
    return r ? r->jid : NULL;
}

const char *epode_muc_room_nick(const epode_muc_room_t *r)
{
    return r ? r->nick : NULL;
}

int epode_muc_room_is_joined(const epode_muc_room_t *r)
{
    return r && r->state == R_JOINED;
}

const char *epode_muc_room_subject(const epode_muc_room_t *r)
{
    return r ? r->subject : NULL;
}

size_t epode_muc_room_occupant_count(const epode_muc_room_t *r)
{
    return r ? r->nocc : 0;
}

const epode_muc_occupant_t *epode_muc_room_occupant_at(const epode_muc_room_t *r, size_t i)
{
    return r && i < r->nocc ? &r->occs[i]->pub : NULL;
}

const epode_muc_occupant_t *epode_muc_room_occupant(const epode_muc_room_t *r, const char *nick)
{
    occ *o = r && nick ? occ_find(r, nick, NULL) : NULL;
    return o ? &o->pub : NULL;
}

void *epode_muc_room_get_user(const epode_muc_room_t *r)
{
    return r ? r->user : NULL;
}

void epode_muc_room_set_user(epode_muc_room_t *r, void *user)
{
    if (r)
        r->user = user;
}
