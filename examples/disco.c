/* examples/disco.c — asks an entity what it is and what it offers
 * (XEP-0030 service discovery) and prints the answer:
 *
 *   disco [options] JID [NODE]
 *
 * prints `identity: CATEGORY/TYPE NAME` lines, then `feature: NS` lines,
 * then `item: JID [NODE]` lines (items from disco#items; an entity that
 * has none, or refuses disco#items, simply has no item lines). Exits 0
 * once both answers are in; on failure one line "disco: REASON" on
 * stderr and a non-zero exit status. */
#include <epode.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cli.h"

typedef struct app {
    const char *jid, *node;
    epode_ctx_t *ctx;
    epode_disco_t *disco;
    int done; /* 1: printed everything, -1: failed */
    char why[512];
} app;

static void fail(app *a, epode_conn_t *conn, const char *what, int status,
                 epode_stanza_cond_t cond)
{
    if (cond != EPODE_COND_NONE)
        snprintf(a->why, sizeof a->why, "%s: %s", what, epode_stanza_cond_name(cond));
    else
        snprintf(a->why, sizeof a->why, "%s: %s", what, epode_strerror(status));
    a->done = -1;
    epode_conn_close(conn);
}

static void on_items(epode_disco_t *d, const char *jid, const char *node,
                     const epode_disco_items_t *items, int status, epode_stanza_cond_t cond,
                     void *user)
{
    (void)jid, (void)node;
    app *a = user;
    epode_conn_t *conn = epode_disco_conn(d);
    /* disco#items is optional: an entity that refuses it has no items */
    if (status < 0 && cond == EPODE_COND_NONE) {
        fail(a, conn, "disco#items", status, cond);
        return;
    }
    for (size_t i = 0; items && i < items->nitems; i++) {
        const epode_disco_item_t *it = &items->items[i];
        printf("item: %s%s%s\n", it->jid, it->node ? " " : "", it->node ? it->node : "");
    }
    a->done = 1;
    epode_conn_close(conn);
}

static void on_info(epode_disco_t *d, const char *jid, const char *node,
                    const epode_disco_info_t *info, int status, epode_stanza_cond_t cond,
                    void *user)
{
    (void)jid, (void)node;
    app *a = user;
    epode_conn_t *conn = epode_disco_conn(d);
    if (status < 0) {
        fail(a, conn, "disco#info", status, cond);
        return;
    }
    for (size_t i = 0; i < info->nidentities; i++) {
        const epode_disco_identity_t *id = &info->identities[i];
        printf("identity: %s/%s%s%s\n", id->category, id->type, id->name ? " " : "",
               id->name ? id->name : "");
    }
    for (size_t i = 0; i < info->nfeatures; i++)
        printf("feature: %s\n", info->features[i]);
    int rc = epode_disco_get_items(d, a->jid, a->node, 0, on_items, a, NULL);
    if (rc < 0)
        fail(a, conn, "disco#items", rc, EPODE_COND_NONE);
}

static void on_event(epode_conn_t *conn, epode_conn_event_t ev, void *user)
{
    app *a = user;
    if (ev == EPODE_CONN_READY) {
        int rc = epode_disco_get_info(a->disco, a->jid, a->node, 0, on_info, a, NULL);
        if (rc < 0)
            fail(a, conn, "disco#info", rc, EPODE_COND_NONE);
    } else if (ev == EPODE_CONN_DISCONNECTED) {
        if (a->done == 0) {
            snprintf(a->why, sizeof a->why, "%s", cli_reason(conn));
            a->done = -1;
        }
        epode_ctx_stop(a->ctx);
    }
}

int main(int argc, char **argv)
{
    cli_t o;
    cli_parse(&o, argc, argv, "JID [NODE]");
    if (o.argc < 1 || o.argc > 2) {
        fprintf(stderr, "disco: need a JID (and optionally a node)\n"
                        "usage: disco [options] --jid JID --password-file FILE JID [NODE]\n");
        return 64;
    }
    app a = {.jid = o.argv[0], .node = o.argc > 1 ? o.argv[1] : NULL};
    if (epode_jid_validate(a.jid) < 0) {
        fprintf(stderr, "disco: not a valid JID: %s\n", a.jid);
        return 64;
    }
    epode_ctx_t *ctx;
    epode_conn_t *conn;
    cli_connect_setup(&o, &ctx, &conn);
    a.ctx = ctx;
    int rc = epode_disco_new(conn, &a.disco);
    if (rc == 0) {
        epode_conn_add_event_cb(conn, on_event, &a, NULL);
        rc = epode_conn_connect(conn);
    }
    if (rc < 0) {
        fprintf(stderr, "disco: %s\n", epode_strerror(rc));
        return 1;
    }
    epode_ctx_run(ctx);
    epode_disco_free(a.disco);
    epode_conn_free(conn);
    epode_ctx_free(ctx);
    if (a.done != 1) {
        fprintf(stderr, "disco: %s\n", a.why[0] ? a.why : "failed");
        return 1;
    }
    return 0;
}
