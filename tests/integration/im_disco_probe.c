/* tests/integration/im_disco_probe.c — an epode client with the disco and
 * caps helpers, for test_im_disco.py and test_im_caps.py. Public API only.
 *
 *   im_disco_probe --server H --port N --ca-file F --jid J --password P
 *       [--feature NS]...        add a feature to what we answer
 *       [--presence-to JID]...   send (directed) available presence there;
 *                                without it, a broadcast presence is sent
 *       [--query JID [--node N]] print the entity's disco#info and #items
 *       [--watch BARE --check NS] wait until caps of a resource of BARE
 *                                are verified, print whether it has NS
 *       [--add-later NS]         once ready and after 1 s, add a feature
 *                                (caps re-sends presence with a new ver)
 *       [--linger S]             stay online S seconds (to be asked)
 *       [--timeout S]
 *
 * Prints "ready FULLJID", "ver VER" (and again on change), for --query
 * "identity: C/T NAME", "feature: NS", "item: JID [NODE]" then "query-done"
 * or "query-error COND"; for --watch "caps JID verified" then "supports
 * JID NS 1|0". Exit 0 when everything asked for was done, 1 otherwise. */
#include <epode.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct app {
    epode_ctx_t *ctx;
    epode_conn_t *conn;
    epode_disco_t *disco;
    epode_caps_t *caps;
    const char *presence_to[8];
    int npresence_to;
    const char *query, *node, *watch, *check, *add_later;
    unsigned linger_ms;
    int query_done, watch_done, linger_done, failed, replied;
    char last_ver[EPODE_CAPS_VER_MAX];
} app;

static void send_presence(app *a, const char *to)
{
    epode_stanza_t *p;
    if (epode_stanza_new_presence(NULL, NULL, to, &p) == 0) {
        epode_conn_send(a->conn, p);
        epode_stanza_unref(p);
    }
}

static void maybe_finish(app *a)
{
    if ((!a->query || a->query_done) && (!a->watch || a->watch_done) &&
        (!a->linger_ms || a->linger_done))
        epode_conn_close(a->conn);
}

static void print_ver(app *a)
{
    const char *v = epode_caps_get_ver(a->caps);
    if (v && strcmp(v, a->last_ver) != 0) {
        snprintf(a->last_ver, sizeof a->last_ver, "%s", v);
        printf("ver %s\n", v);
        fflush(stdout);
    }
}

static void on_items(epode_disco_t *d, const char *jid, const char *node,
                     const epode_disco_items_t *items, int status, epode_stanza_cond_t cond,
                     void *user)
{
    (void)d, (void)jid, (void)node, (void)status, (void)cond;
    app *a = user;
    for (size_t i = 0; items && i < items->nitems; i++)
        printf("item: %s%s%s\n", items->items[i].jid, items->items[i].node ? " " : "",
               items->items[i].node ? items->items[i].node : "");
    printf("query-done\n");
    fflush(stdout);
    a->query_done = 1;
    maybe_finish(a);
}

static void on_info(epode_disco_t *d, const char *jid, const char *node,
                    const epode_disco_info_t *info, int status, epode_stanza_cond_t cond,
                    void *user)
{
    (void)jid, (void)node;
    app *a = user;
    if (status < 0) {
        printf("query-error %s\n", cond ? epode_stanza_cond_name(cond) : epode_err_name(status));
        fflush(stdout);
        a->query_done = 1;
        a->failed = 1;
        maybe_finish(a);
        return;
    }
    for (size_t i = 0; i < info->nidentities; i++)
        printf("identity: %s/%s %s\n", info->identities[i].category, info->identities[i].type,
               info->identities[i].name ? info->identities[i].name : "");
    for (size_t i = 0; i < info->nfeatures; i++)
        printf("feature: %s\n", info->features[i]);
    for (size_t i = 0; i < info->nforms; i++)
        printf("form: %s\n", info->forms[i].form_type ? info->forms[i].form_type : "");
    if (epode_disco_get_items(d, a->query, a->node, 10000, on_items, a, NULL) < 0) {
        a->query_done = 1;
        a->failed = 1;
        maybe_finish(a);
    }
}

static void on_caps(epode_caps_t *c, const char *jid, const epode_disco_info_t *info, void *user)
{
    app *a = user;
    if (!info || !a->watch || a->watch_done || !epode_jid_str_equal(jid, a->watch, 1))
        return;
    printf("caps %s verified\n", jid);
    printf("supports %s %s %d\n", jid, a->check, epode_caps_supports(c, jid, a->check));
    fflush(stdout);
    a->watch_done = 1;
    maybe_finish(a);
}

/* A watched peer's presence is answered with ours, so it can learn our
 * caps in turn (presence between accounts without a subscription only
 * flows when directed). */
static int on_presence(epode_conn_t *conn, epode_stanza_t *st, void *user)
{
    (void)conn;
    app *a = user;
    const char *from = epode_stanza_get_from(st);
    if (a->watch && !a->replied && from && epode_jid_str_equal(from, a->watch, 1) &&
        !epode_jid_str_equal(from, epode_conn_bound_jid(a->conn), 0)) {
        a->replied = 1;
        send_presence(a, from);
    }
    return EPODE_PASS;
}

static int on_linger(epode_conn_t *conn, void *user)
{
    (void)conn;
    app *a = user;
    a->linger_done = 1;
    maybe_finish(a);
    return 0;
}

static int on_add_later(epode_conn_t *conn, void *user)
{
    (void)conn;
    app *a = user;
    epode_disco_add_feature(a->disco, NULL, a->add_later);
    print_ver(a);
    return 0;
}

static void on_event(epode_conn_t *conn, epode_conn_event_t ev, void *user)
{
    app *a = user;
    if (ev == EPODE_CONN_READY) {
        printf("ready %s\n", epode_conn_bound_jid(conn));
        print_ver(a);
        send_presence(a, NULL);
        for (int i = 0; i < a->npresence_to; i++)
            send_presence(a, a->presence_to[i]);
        if (a->query &&
            epode_disco_get_info(a->disco, a->query, a->node, 10000, on_info, a, NULL) < 0) {
            a->failed = 1;
            a->query_done = 1;
        }
        if (a->linger_ms)
            epode_conn_add_timer(conn, a->linger_ms, on_linger, a, NULL);
        if (a->add_later)
            epode_conn_add_timer(conn, 1000, on_add_later, a, NULL);
        maybe_finish(a);
    } else if (ev == EPODE_CONN_DISCONNECTED) {
        printf("disconnected %s\n", epode_conn_error_text(conn));
        epode_ctx_stop(a->ctx);
    }
}

static int on_timeout(epode_conn_t *conn, void *user)
{
    app *a = user;
    printf("timeout\n");
    a->failed = 1;
    epode_conn_close(conn);
    return 0;
}

int main(int argc, char **argv)
{
    app a = {0};
    const char *server = NULL, *ca = NULL, *jid = NULL, *password = NULL;
    const char *features[16];
    int nfeatures = 0;
    unsigned port = 0, timeout = 20;
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) {
            fprintf(stderr, "im_disco_probe: %s needs a value\n", o);
            return 64;
        }
        i++;
        if (!strcmp(o, "--server")) server = v;
        else if (!strcmp(o, "--port")) port = (unsigned)atoi(v);
        else if (!strcmp(o, "--ca-file")) ca = v;
        else if (!strcmp(o, "--jid")) jid = v;
        else if (!strcmp(o, "--password")) password = v;
        else if (!strcmp(o, "--feature") && nfeatures < 16) features[nfeatures++] = v;
        else if (!strcmp(o, "--presence-to") && a.npresence_to < 8) a.presence_to[a.npresence_to++] = v;
        else if (!strcmp(o, "--query")) a.query = v;
        else if (!strcmp(o, "--node")) a.node = v;
        else if (!strcmp(o, "--watch")) a.watch = v;
        else if (!strcmp(o, "--check")) a.check = v;
        else if (!strcmp(o, "--add-later")) a.add_later = v;
        else if (!strcmp(o, "--linger")) a.linger_ms = (unsigned)(atof(v) * 1000);
        else if (!strcmp(o, "--timeout")) timeout = (unsigned)atoi(v);
        else {
            fprintf(stderr, "im_disco_probe: unknown option %s\n", o);
            return 64;
        }
    }
    if (!jid || !password || (a.watch && !a.check)) {
        fprintf(stderr, "im_disco_probe: need --jid and --password (and --check with --watch)\n");
        return 64;
    }
    int rc = epode_global_init();
    if (rc == 0) rc = epode_ctx_new(NULL, &a.ctx);
    if (rc == 0) rc = epode_conn_new(a.ctx, &a.conn);
    if (rc == 0) rc = epode_conn_set_jid(a.conn, jid);
    if (rc == 0) rc = epode_conn_set_password(a.conn, password);
    if (rc == 0 && server) rc = epode_conn_set_server(a.conn, server, port);
    if (rc == 0 && ca) rc = epode_conn_set_ca_file(a.conn, ca);
    if (rc == 0) rc = epode_disco_new(a.conn, &a.disco);
    if (rc == 0) rc = epode_disco_add_identity(a.disco, NULL, "client", "bot", "im_disco_probe", NULL);
    for (int i = 0; rc == 0 && i < nfeatures; i++)
        rc = epode_disco_add_feature(a.disco, NULL, features[i]);
    if (rc == 0) rc = epode_caps_new(a.disco, "https://epode.example/im_disco_probe", &a.caps);
    if (rc == 0) rc = epode_caps_set_cb(a.caps, on_caps, &a);
    if (rc == 0) rc = epode_conn_add_event_cb(a.conn, on_event, &a, NULL);
    if (rc == 0) rc = epode_conn_add_handler(a.conn, "presence", NULL, "available", on_presence, &a, NULL);
    if (rc == 0) rc = epode_conn_add_timer(a.conn, timeout * 1000, on_timeout, &a, NULL);
    if (rc == 0) rc = epode_conn_connect(a.conn);
    if (rc < 0) {
        fprintf(stderr, "im_disco_probe: %s\n", epode_strerror(rc));
        return 1;
    }
    epode_ctx_run(a.ctx);
    epode_caps_free(a.caps);
    epode_disco_free(a.disco);
    epode_conn_free(a.conn);
    epode_ctx_free(a.ctx);
    int ok = !a.failed && (!a.query || a.query_done) && (!a.watch || a.watch_done);
    printf("%s\n", ok ? "OK" : "FAILED");
    return ok ? 0 : 1;
}
