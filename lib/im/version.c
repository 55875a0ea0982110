/* lib/im/version.c — XEP-0092 on the public API: the responder and the
 * query. It owns copies of the strings it answers with and its pending
 * query records; it never keeps a stanza. Freed before its connection, it
 * lets go of it on EPODE_CONN_FREED and never touches it again. */
#include <epode.h>

#include <stdlib.h>
#include <string.h>

#include "im_alloc.h"

typedef struct version_req {
    struct version_req *next;
    epode_software_version_t *owner;
    unsigned id;
    epode_software_version_cb cb;
    void *user;
    char jid[];
} version_req;

struct epode_software_version {
    epode_conn_t *conn;
    const epode_mem_t *mem; /* the context's allocator, for all we own */
    unsigned handler_id, event_id;
    char *name, *version, *os;
    version_req *pending;
};

static char *dup_or_null(const epode_mem_t *mem, const char *s, int *failed)
{
    if (!s)
        return NULL;
    char *d = im_strdup(mem, s);
    if (!d)
        *failed = 1;
    return d;
}

static int on_request(epode_conn_t *conn, epode_stanza_t *iq, void *user)
{
    epode_software_version_t *v = user;
    if (!v->conn || !epode_stanza_find_child(iq, "query", EPODE_NS_VERSION))
        return EPODE_PASS;
    epode_stanza_t *reply, *q, *el;
    if (epode_stanza_reply(iq, &reply) < 0)
        return EPODE_HANDLED; /* out of memory: the asker times out */
    int rc = epode_stanza_add_child_new(reply, "query", EPODE_NS_VERSION, &q);
    const char *names[3] = {"name", "version", "os"};
    const char *vals[3] = {v->name, v->version, v->os};
    for (int i = 0; i < 3 && rc == 0; i++) {
        if (!vals[i])
            continue;
        if ((rc = epode_stanza_add_child_new(q, names[i], NULL, &el)) == 0)
            rc = epode_stanza_set_text(el, vals[i]);
    }
    if (rc == 0)
        epode_conn_send(conn, reply);
    epode_stanza_unref(reply);
    return EPODE_HANDLED;
}

int epode_software_version_set(epode_software_version_t *v, const char *name, const char *version,
                               const char *os)
{
    if (!v || !name || !version)
        return EPODE_EINVAL;
    int failed = 0;
    char *n = dup_or_null(v->mem, name, &failed), *ver = dup_or_null(v->mem, version, &failed),
         *o = dup_or_null(v->mem, os, &failed);
    if (failed) {
        im_free(v->mem, n);
        im_free(v->mem, ver);
        im_free(v->mem, o);
        return EPODE_ENOMEM;
    }
    im_free(v->mem, v->name);
    im_free(v->mem, v->version);
    im_free(v->mem, v->os);
    v->name = n;
    v->version = ver;
    v->os = o;
    return 0;
}

/* The connection is being freed: our ids die with it, pending queries
 * are forgotten (their callbacks not called), the helper is inert. */
static void on_conn_event(epode_conn_t *conn, epode_conn_event_t ev, void *user)
{
    (void)conn;
    epode_software_version_t *v = user;
    if (ev != EPODE_CONN_FREED)
        return;
    v->conn = NULL;
    v->handler_id = v->event_id = 0;
    for (version_req *r = v->pending; r; r = r->next)
        r->id = 0;
}

int epode_software_version_new(epode_conn_t *conn, const char *name, const char *version,
                               const char *os, epode_software_version_t **out)
{
    if (!conn || !out || !name || !version)
        return EPODE_EINVAL;
    const epode_mem_t *mem = im_mem(conn);
    epode_software_version_t *v = im_zalloc(mem, sizeof *v);
    if (!v)
        return EPODE_ENOMEM;
    v->conn = conn;
    v->mem = mem;
    int rc = epode_software_version_set(v, name, version, os);
    if (rc == 0)
        rc = epode_conn_add_handler(conn, "iq", EPODE_NS_VERSION, "get", on_request, v,
                               &v->handler_id);
    if (rc == 0 && (rc = epode_conn_add_event_cb(conn, on_conn_event, v, &v->event_id)) < 0)
        epode_conn_remove(conn, v->handler_id);
    if (rc < 0) {
        im_free(mem, v->name);
        im_free(mem, v->version);
        im_free(mem, v->os);
        im_free(mem, v);
        return rc;
    }
    *out = v;
    return 0;
}

void epode_software_version_free(epode_software_version_t *v)
{
    if (!v)
        return;
    if (v->conn) {
        epode_conn_remove(v->conn, v->handler_id);
        epode_conn_remove(v->conn, v->event_id);
    }
    while (v->pending) {
        version_req *r = v->pending;
        v->pending = r->next;
        if (v->conn && r->id)
            epode_conn_remove(v->conn, r->id);
        im_free(v->mem, r);
    }
    im_free(v->mem, v->name);
    im_free(v->mem, v->version);
    im_free(v->mem, v->os);
    im_free(v->mem, v);
}

static void on_answer(epode_conn_t *conn, epode_stanza_t *result, int status, void *user)
{
    version_req *r = user;
    epode_software_version_t *v = r->owner;
    const epode_mem_t *mem = v->mem; /* the callback may free v */
    for (version_req **pp = &v->pending; *pp; pp = &(*pp)->next)
        if (*pp == r) {
            *pp = r->next;
            break;
        }
    if (!v->conn) { /* the connection is being freed: forgotten, untold */
        im_free(mem, r);
        return;
    }
    epode_stanza_cond_t cond = EPODE_COND_NONE;
    const char *name = NULL, *version = NULL, *os = NULL;
    if (result) {
        const char *type = epode_stanza_get_type(result);
        epode_stanza_t *q = epode_stanza_find_child(result, "query", EPODE_NS_VERSION);
        if (type && strcmp(type, "error") == 0) {
            if (epode_stanza_get_error(result, &cond, NULL, NULL) < 0)
                cond = EPODE_COND_UNDEFINED_CONDITION;
        } else if (!q) {
            cond = EPODE_COND_UNDEFINED_CONDITION; /* a result without the query */
        } else {
            name = epode_stanza_child_text(q, "name", NULL);
            version = epode_stanza_child_text(q, "version", NULL);
            os = epode_stanza_child_text(q, "os", NULL);
        }
    }
    r->cb(conn, r->jid, status, cond, name, version, os, r->user);
    im_free(mem, r);
}

int epode_software_version_query(epode_software_version_t *v, const char *jid, unsigned timeout_ms,
                                 epode_software_version_cb cb, void *user)
{
    if (!v || !cb)
        return EPODE_EINVAL;
    int rc;
    /* a bad address is EJID whatever the state, as epode_conn_send() says */
    if (jid && (rc = epode_jid_validate(jid)) < 0)
        return rc;
    if (!v->conn || !epode_conn_is_ready(v->conn))
        return EPODE_ESTATE;
    char domain[1024];
    if (!jid) {
        epode_jid_t *me;
        if ((rc = epode_jid_new(v->mem, epode_conn_bound_jid(v->conn), &me)) < 0)
            return rc;
        size_t n = strlen(epode_jid_domain(me));
        if (n < sizeof domain)
            memcpy(domain, epode_jid_domain(me), n + 1);
        epode_jid_free(me);
        if (n >= sizeof domain)
            return EPODE_ELIMIT;
        jid = domain;
    } else if ((rc = epode_jid_validate(jid)) < 0) {
        return rc;
    }
    size_t len = strlen(jid);
    version_req *r = im_zalloc(v->mem, sizeof *r + len + 1);
    if (!r)
        return EPODE_ENOMEM;
    memcpy(r->jid, jid, len + 1);
    r->owner = v;
    r->cb = cb;
    r->user = user;
    epode_stanza_t *iq;
    if ((rc = epode_stanza_new_iq(v->mem, "get", NULL, &iq)) < 0) {
        im_free(v->mem, r);
        return rc;
    }
    if ((rc = epode_stanza_set_to(iq, jid)) == 0 &&
        (rc = epode_stanza_add_child_new(iq, "query", EPODE_NS_VERSION, NULL)) == 0)
        rc = epode_conn_send_iq(v->conn, iq, timeout_ms, on_answer, r, &r->id);
    epode_stanza_unref(iq);
    if (rc < 0) {
        im_free(v->mem, r);
        return rc;
    }
    r->next = v->pending;
    v->pending = r;
    return 0;
}
