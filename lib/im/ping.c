/* lib/im/ping.c — XEP-0199 on the public API: answers pings, sends them
 * (round-trip time measured on the monotonic clock) and runs liveness
 * pings at an interval. It owns only its pending-ping records; it never
 * keeps a stanza. Freed before its connection, it lets go of it on
 * EPODE_CONN_FREED and does nothing more (never touching that connection
 * again). */
#include <epode.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "im_alloc.h"

typedef struct ping_req {
    struct ping_req *next;
    epode_ping_t *owner;
    unsigned id;          /* the IQ wait, for epode_conn_remove() */
    int keepalive;        /* a liveness ping (no user callback) */
    uint64_t started_ms;
    epode_ping_cb cb;
    void *user;
    char jid[];
} ping_req;

struct epode_ping {
    epode_conn_t *conn;
    const epode_mem_t *mem; /* the context's allocator, for all we own */
    unsigned handler_id, event_id;
    unsigned timed_id;      /* liveness timer, 0 if off */
    unsigned interval_ms, timeout_ms;
    epode_ping_dead_cb dead_cb;
    void *dead_user;
    int keepalive_pending;
    unsigned timeouts;
    ping_req *pending;
};

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int on_ping_request(epode_conn_t *conn, epode_stanza_t *iq, void *user)
{
    epode_ping_t *p = user;
    if (!p->conn || !epode_stanza_find_child(iq, "ping", EPODE_NS_PING))
        return EPODE_PASS;
    epode_stanza_t *reply;
    if (epode_stanza_reply(iq, &reply) == 0) {
        epode_conn_send(conn, reply);
        epode_stanza_unref(reply);
    }
    return EPODE_HANDLED;
}

/* The connection is being freed: every id we hold dies with it (nothing
 * may be removed from it now), and the pending pings' callbacks will not
 * be called. From now on the helper is inert. */
static void on_conn_event(epode_conn_t *conn, epode_conn_event_t ev, void *user)
{
    (void)conn;
    epode_ping_t *p = user;
    if (ev != EPODE_CONN_FREED)
        return;
    p->conn = NULL;
    p->handler_id = p->event_id = p->timed_id = 0;
    p->keepalive_pending = 0;
    for (ping_req *r = p->pending; r; r = r->next)
        r->id = 0;
}

int epode_ping_new(epode_conn_t *conn, epode_ping_t **out)
{
    if (!conn || !out)
        return EPODE_EINVAL;
    const epode_mem_t *mem = im_mem(conn);
    epode_ping_t *p = im_zalloc(mem, sizeof *p);
    if (!p)
        return EPODE_ENOMEM;
    p->conn = conn;
    p->mem = mem;
    int rc = epode_conn_add_handler(conn, "iq", EPODE_NS_PING, "get", on_ping_request, p,
                               &p->handler_id);
    if (rc == 0 && (rc = epode_conn_add_event_cb(conn, on_conn_event, p, &p->event_id)) < 0)
        epode_conn_remove(conn, p->handler_id);
    if (rc < 0) {
        im_free(mem, p);
        return rc;
    }
    *out = p;
    return 0;
}

static void unlink_req(epode_ping_t *p, ping_req *r)
{
    for (ping_req **pp = &p->pending; *pp; pp = &(*pp)->next)
        if (*pp == r) {
            *pp = r->next;
            return;
        }
}

void epode_ping_free(epode_ping_t *p)
{
    if (!p)
        return;
    if (p->conn) {
        epode_conn_remove(p->conn, p->handler_id);
        epode_conn_remove(p->conn, p->event_id);
        if (p->timed_id)
            epode_conn_remove(p->conn, p->timed_id);
    }
    while (p->pending) {
        ping_req *r = p->pending;
        p->pending = r->next;
        if (p->conn && r->id)
            epode_conn_remove(p->conn, r->id);
        im_free(p->mem, r);
    }
    im_free(p->mem, p);
}

static void on_answer(epode_conn_t *conn, epode_stanza_t *result, int status, void *user)
{
    ping_req *r = user;
    epode_ping_t *p = r->owner;
    const epode_mem_t *mem = p->mem; /* the callback may free p */
    unlink_req(p, r);
    if (!p->conn) { /* the connection is being freed: forgotten, untold */
        im_free(mem, r);
        return;
    }
    unsigned rtt = (unsigned)(now_ms() - r->started_ms);
    epode_stanza_cond_t cond = EPODE_COND_NONE;
    if (result && epode_stanza_get_type(result) &&
        strcmp(epode_stanza_get_type(result), "error") == 0 &&
        epode_stanza_get_error(result, &cond, NULL, NULL) < 0)
        cond = EPODE_COND_UNDEFINED_CONDITION;
    if (r->keepalive) {
        p->keepalive_pending = 0;
        if (status == EPODE_ETIMEDOUT) {
            p->timeouts++;
            if (p->dead_cb)
                p->dead_cb(conn, p->timeout_ms, p->dead_user);
            epode_conn_close(conn);
        }
    } else if (r->cb) {
        r->cb(conn, r->jid, status, cond, rtt, r->user);
    }
    im_free(mem, r);
}

/* Our server's domain, from the bound JID, into buf; 0 or an error. */
static int server_domain(epode_conn_t *conn, const epode_mem_t *mem, char *buf, size_t size)
{
    const char *bound = epode_conn_bound_jid(conn);
    if (!bound)
        return EPODE_ESTATE;
    epode_jid_t *j;
    int rc = epode_jid_new(mem, bound, &j);
    if (rc < 0)
        return rc;
    size_t n = strlen(epode_jid_domain(j));
    if (n >= size)
        rc = EPODE_ELIMIT;
    else
        memcpy(buf, epode_jid_domain(j), n + 1);
    epode_jid_free(j);
    return rc;
}

static int send_ping(epode_ping_t *p, const char *jid, unsigned timeout_ms, int keepalive,
                     epode_ping_cb cb, void *user)
{
    char domain[1024];
    int rc;
    /* a bad address is EJID whatever the state, as epode_conn_send() says */
    if (jid && (rc = epode_jid_validate(jid)) < 0)
        return rc;
    if (!p->conn || !epode_conn_is_ready(p->conn))
        return EPODE_ESTATE;
    if (!jid) {
        if ((rc = server_domain(p->conn, p->mem, domain, sizeof domain)) < 0)
            return rc;
        jid = domain;
    } else if ((rc = epode_jid_validate(jid)) < 0) {
        return rc;
    }
    size_t len = strlen(jid);
    ping_req *r = im_zalloc(p->mem, sizeof *r + len + 1);
    if (!r)
        return EPODE_ENOMEM;
    memcpy(r->jid, jid, len + 1);
    r->owner = p;
    r->keepalive = keepalive;
    r->cb = cb;
    r->user = user;
    epode_stanza_t *iq;
    if ((rc = epode_stanza_new_iq(p->mem, "get", NULL, &iq)) < 0) {
        im_free(p->mem, r);
        return rc;
    }
    if ((rc = epode_stanza_set_to(iq, jid)) == 0 &&
        (rc = epode_stanza_add_child_new(iq, "ping", EPODE_NS_PING, NULL)) == 0) {
        r->started_ms = now_ms();
        rc = epode_conn_send_iq(p->conn, iq, timeout_ms, on_answer, r, &r->id);
    }
    epode_stanza_unref(iq);
    if (rc < 0) {
        im_free(p->mem, r);
        return rc;
    }
    r->next = p->pending;
    p->pending = r;
    return 0;
}

int epode_ping_send(epode_ping_t *p, const char *jid, unsigned timeout_ms, epode_ping_cb cb,
                    void *user)
{
    if (!p || !cb)
        return EPODE_EINVAL;
    return send_ping(p, jid, timeout_ms, 0, cb, user);
}

static int on_interval(epode_conn_t *conn, void *user)
{
    epode_ping_t *p = user;
    if (!p->conn)
        return 0;
    if (!epode_conn_is_ready(conn) || p->keepalive_pending)
        return 1;
    if (send_ping(p, NULL, p->timeout_ms, 1, NULL, NULL) == 0)
        p->keepalive_pending = 1;
    return 1;
}

int epode_ping_set_keepalive(epode_ping_t *p, unsigned interval_ms, unsigned timeout_ms,
                             epode_ping_dead_cb cb, void *user)
{
    if (!p)
        return EPODE_EINVAL;
    if (!p->conn)
        return EPODE_ESTATE;
    unsigned tid = 0;
    if (interval_ms) {
        int rc = epode_conn_add_timer(p->conn, interval_ms, on_interval, p, &tid);
        if (rc < 0)
            return rc;
    }
    if (p->timed_id)
        epode_conn_remove(p->conn, p->timed_id);
    p->timed_id = tid;
    p->interval_ms = interval_ms;
    p->timeout_ms = timeout_ms ? timeout_ms : interval_ms;
    p->dead_cb = cb;
    p->dead_user = user;
    return 0;
}

unsigned epode_ping_timeouts(const epode_ping_t *p)
{
    return p ? p->timeouts : 0;
}
