/* lib/im/csi.c — Client State Indication (XEP-0352) on the public API:
 * the wanted state, sent only to a server that lists urn:xmpp:csi:0 in
 * its stream features, and said again on every new session (a server
 * starts each one active). It keeps no stanza and sends nothing a
 * server did not offer. Freed before its connection, it lets go of it on
 * EPODE_CONN_FREED and never touches it again. */
#include <epode.h>

#include <string.h>

#include "im_alloc.h"

struct epode_csi {
    epode_conn_t *conn;
    const epode_mem_t *mem;
    unsigned ev_id;
    int wanted; /* 1 active, 0 inactive */
    int told;   /* what this session's server was last told (1: active, its default) */
};

static int offered(epode_conn_t *conn)
{
    const epode_stanza_t *f = conn && epode_conn_is_ready(conn) ? epode_conn_stream_features(conn)
                                                                : NULL;
    return f && epode_stanza_find_child(f, "csi", EPODE_NS_CSI) != NULL;
}

/* Tells the server the wanted state if it differs from what it knows. */
static int tell(epode_csi_t *c)
{
    if (c->told == c->wanted || !offered(c->conn))
        return 0;
    epode_stanza_t *el;
    int rc = epode_stanza_new(c->mem, c->wanted ? "active" : "inactive", EPODE_NS_CSI, &el);
    if (rc < 0)
        return rc;
    rc = epode_conn_send(c->conn, el);
    epode_stanza_unref(el);
    if (rc == 0)
        c->told = c->wanted;
    return rc;
}

static void on_conn_event(epode_conn_t *conn, epode_conn_event_t ev, void *user)
{
    (void)conn;
    epode_csi_t *c = user;
    if (ev == EPODE_CONN_FREED) {
        c->conn = NULL;
        c->ev_id = 0;
    } else if (ev == EPODE_CONN_READY) {
        c->told = 1; /* a new session starts active */
        tell(c);     /* failing (no memory), the wish waits for the next call */
    } else if (ev == EPODE_CONN_RESUMED) {
        tell(c); /* the server kept its state; say what changed meanwhile */
    }
}

int epode_csi_new(epode_conn_t *conn, epode_csi_t **out)
{
    if (!conn || !out)
        return EPODE_EINVAL;
    const epode_mem_t *mem = im_mem(conn);
    epode_csi_t *c = im_zalloc(mem, sizeof *c);
    if (!c)
        return EPODE_ENOMEM;
    c->conn = conn;
    c->mem = mem;
    c->wanted = c->told = 1;
    int rc = epode_conn_add_event_cb(conn, on_conn_event, c, &c->ev_id);
    if (rc < 0) {
        im_free(mem, c);
        return rc;
    }
    *out = c;
    return 0;
}

void epode_csi_free(epode_csi_t *c)
{
    if (!c)
        return;
    if (c->conn && c->ev_id)
        epode_conn_remove(c->conn, c->ev_id);
    im_free(c->mem, c);
}

int epode_csi_set_active(epode_csi_t *c, int active)
{
    if (!c)
        return EPODE_EINVAL;
    if (!c->conn)
        return EPODE_ESTATE;
    c->wanted = active != 0;
    return epode_conn_is_ready(c->conn) ? tell(c) : 0;
}

int epode_csi_is_active(const epode_csi_t *c)
{
    return c ? c->wanted : 1;
}

int epode_csi_supported(const epode_csi_t *c)
{
    return c && offered(c->conn);
}
