/* lib/im/carbons.c — XEP-0280 on the public API: the enable/disable IQ,
 * re-enabling after each reconnect, and the checks a carbon copy must
 * pass before the application sees it. It must never deliver a carbon
 * that does not come from our own bare JID. Freed before its connection,
 * it lets go of it on EPODE_CONN_FREED and never touches it again. */
#include <epode.h>

#include <stdlib.h>
#include <string.h>

#include "im_alloc.h"

struct epode_carbons {
    epode_conn_t *conn;
    const epode_mem_t *mem; /* the context's allocator, for all we own */
    unsigned msg_id, event_id, iq_id;
    epode_carbon_cb cb;
    void *user;
    int wanted;   /* -1: nothing asked, 0: off, 1: on */
    int enabled;
    unsigned rejected;
    epode_carbons_enable_cb enable_cb;
    void *enable_user;
};

/* 1 if `from` is exactly our account's bare JID (normalized), 0 if not,
 * EPODE_ENOMEM if that could not be checked. */
static int from_own_account(epode_conn_t *conn, const epode_mem_t *mem, const char *from)
{
    const char *bound = epode_conn_bound_jid(conn);
    if (!from || !bound)
        return 0;
    epode_jid_t *f, *me;
    int rc = epode_jid_new(mem, from, &f);
    if (rc < 0)
        return rc == EPODE_ENOMEM ? rc : 0;
    int ok = 0;
    if ((rc = epode_jid_new(mem, bound, &me)) == 0) {
        ok = epode_jid_is_bare(f) && epode_jid_bare_equal(f, me);
        epode_jid_free(me);
    } else if (rc == EPODE_ENOMEM) {
        ok = rc;
    }
    epode_jid_free(f);
    return ok;
}

static int on_message(epode_conn_t *conn, epode_stanza_t *msg, void *user)
{
    epode_carbons_t *c = user;
    if (!c->conn)
        return EPODE_PASS;
    epode_stanza_t *wrap = NULL;
    epode_carbon_dir_t dir = EPODE_CARBON_RECEIVED;
    for (epode_stanza_t *ch = epode_stanza_first_child(msg); ch; ch = epode_stanza_next(ch)) {
        const char *ns = epode_stanza_get_ns(ch);
        if (!ns || strcmp(ns, EPODE_NS_CARBONS) != 0)
            continue;
        if (strcmp(epode_stanza_get_name(ch), "received") == 0) {
            wrap = ch;
            dir = EPODE_CARBON_RECEIVED;
            break;
        }
        if (strcmp(epode_stanza_get_name(ch), "sent") == 0) {
            wrap = ch;
            dir = EPODE_CARBON_SENT;
            break;
        }
    }
    if (!wrap)
        return EPODE_PASS;
    const char *type = epode_stanza_get_type(msg);
    if (type && strcmp(type, "error") == 0)
        return EPODE_PASS;
    int own = from_own_account(conn, c->mem, epode_stanza_get_from(msg));
    if (own < 0)
        return EPODE_PASS; /* out of memory: not delivered, not counted as forged */
    if (!own) {
        c->rejected++; /* forged: somebody else claims to speak for our account */
        return EPODE_PASS;
    }
    epode_stanza_t *fwd = epode_stanza_find_child(wrap, "forwarded", EPODE_NS_FORWARD);
    epode_stanza_t *inner = fwd ? epode_stanza_find_child(fwd, "message", NULL) : NULL;
    const char *ins = inner ? epode_stanza_get_ns(inner) : NULL;
    if (!inner || (ins && strcmp(ins, EPODE_NS_CLIENT) != 0)) {
        c->rejected++;
        return EPODE_PASS;
    }
    if (c->cb)
        c->cb(conn, dir, inner, msg, c->user);
    return EPODE_HANDLED;
}

static void on_enable_answer(epode_conn_t *conn, epode_stanza_t *result, int status, void *user)
{
    epode_carbons_t *c = user;
    c->iq_id = 0;
    if (!c->conn)
        return; /* the connection is being freed: forgotten, untold */
    epode_stanza_cond_t cond = EPODE_COND_NONE;
    const char *type = result ? epode_stanza_get_type(result) : NULL;
    if (type && strcmp(type, "error") == 0 &&
        epode_stanza_get_error(result, &cond, NULL, NULL) < 0)
        cond = EPODE_COND_UNDEFINED_CONDITION;
    int asked = c->wanted == 1;
    if (status == 0 && cond == EPODE_COND_NONE)
        c->enabled = asked;
    if (c->enable_cb)
        c->enable_cb(conn, asked, status, cond, c->enable_user);
}

/* Sends the enable/disable IQ for c->wanted; the request it replaces is
 * dropped only once the new one is out (on failure nothing changed). */
static int send_request(epode_carbons_t *c)
{
    epode_stanza_t *iq;
    unsigned id = 0;
    int rc = epode_stanza_new_iq(c->mem, "set", NULL, &iq);
    if (rc < 0)
        return rc;
    rc = epode_stanza_add_child_new(iq, c->wanted ? "enable" : "disable", EPODE_NS_CARBONS, NULL);
    if (rc == 0)
        rc = epode_conn_send_iq(c->conn, iq, 0, on_enable_answer, c, &id);
    epode_stanza_unref(iq);
    if (rc < 0)
        return rc;
    if (c->iq_id)
        epode_conn_remove(c->conn, c->iq_id);
    c->iq_id = id;
    return 0;
}

static void on_event(epode_conn_t *conn, epode_conn_event_t ev, void *user)
{
    (void)conn;
    epode_carbons_t *c = user;
    if (ev == EPODE_CONN_FREED) {
        /* our ids die with the connection; a pending answer is forgotten */
        c->conn = NULL;
        c->msg_id = c->event_id = c->iq_id = 0;
        c->enabled = 0;
    } else if (ev == EPODE_CONN_DISCONNECTED) {
        c->enabled = 0;
        c->iq_id = 0;
    } else if (ev == EPODE_CONN_READY && c->wanted == 1) {
        send_request(c);
    }
}

int epode_carbons_new(epode_conn_t *conn, epode_carbon_cb cb, void *user, epode_carbons_t **out)
{
    if (!conn || !out)
        return EPODE_EINVAL;
    const epode_mem_t *mem = im_mem(conn);
    epode_carbons_t *c = im_zalloc(mem, sizeof *c);
    if (!c)
        return EPODE_ENOMEM;
    c->conn = conn;
    c->mem = mem;
    c->cb = cb;
    c->user = user;
    c->wanted = -1;
    int rc = epode_conn_add_handler(conn, "message", NULL, NULL, on_message, c, &c->msg_id);
    if (rc == 0 && (rc = epode_conn_add_event_cb(conn, on_event, c, &c->event_id)) < 0)
        epode_conn_remove(conn, c->msg_id);
    if (rc < 0) {
        im_free(mem, c);
        return rc;
    }
    *out = c;
    return 0;
}

void epode_carbons_free(epode_carbons_t *c)
{
    if (!c)
        return;
    if (c->conn) {
        epode_conn_remove(c->conn, c->msg_id);
        epode_conn_remove(c->conn, c->event_id);
        if (c->iq_id)
            epode_conn_remove(c->conn, c->iq_id);
    }
    im_free(c->mem, c);
}

int epode_carbons_enable(epode_carbons_t *c, int enable, epode_carbons_enable_cb cb, void *user)
{
    if (!c)
        return EPODE_EINVAL;
    if (!c->conn)
        return EPODE_ESTATE;
    int wanted = c->wanted;
    epode_carbons_enable_cb old_cb = c->enable_cb;
    void *old_user = c->enable_user;
    c->wanted = enable ? 1 : 0;
    c->enable_cb = cb;
    c->enable_user = user;
    if (!epode_conn_is_ready(c->conn))
        return 0; /* sent at READY */
    int rc = send_request(c);
    if (rc < 0) { /* not sent: as if never asked */
        c->wanted = wanted;
        c->enable_cb = old_cb;
        c->enable_user = old_user;
    }
    return rc;
}

int epode_carbons_is_enabled(const epode_carbons_t *c)
{
    return c ? c->enabled : 0;
}

unsigned epode_carbons_rejected(const epode_carbons_t *c)
{
    return c ? c->rejected : 0;
}
