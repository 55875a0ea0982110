/* tests/integration/im_carbons_probe.c — two accounts, up to three
 * connections in one context, for the carbons, ping and version
 * integration tests (public API only).
 *
 *   im_carbons_probe --server H --port N --ca-file F --jid1 J --password1 P
 *                    --jid2 J --password2 P --mode carbons|ping|version
 *
 * carbons: A and B are resources of account 1, C is account 2. B enables
 *   carbons; then C sends a chat message to A's full JID and A sends one
 *   to C. B prints "carbon received FROM TO BODY" and "carbon sent FROM
 *   TO BODY"; A prints "direct FROM BODY".
 * ping: A pings the server and C's full JID ("ping server|peer status=S
 *   cond=C rtt=N"), then runs liveness pings every 200 ms for 1.5 s
 *   ("keepalive timeouts=N ready=1").
 * version: C asks A (which answers epode-probe 1.2.3 TestOS) and the
 *   server: "version peer NAME VERSION OS", "version server ...".
 * Ends with "OK" (exit 0) or "FAILED reason" (exit 1). */
#include <epode.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { A, B, C, N };

typedef struct probe {
    const char *mode;
    epode_ctx_t *ctx;
    epode_conn_t *conn[N];
    int used[N], ready[N], closed[N];
    epode_carbons_t *carbons;
    epode_ping_t *ping, *answerer;
    epode_software_version_t *ver[N];
    int carbons_on, started, got_rcv, got_sent, got_direct;
    int pings, versions, keepalive_ticks;
    int finished, failed;
    char why[256];
} probe;

static probe P;

static const char *nz(const char *s)
{
    return s ? s : "-";
}

static void finish(int failed, const char *why)
{
    if (P.finished)
        return;
    P.finished = 1;
    P.failed = failed;
    snprintf(P.why, sizeof P.why, "%s", why);
    for (int i = 0; i < N; i++)
        if (P.used[i] && !P.closed[i])
            epode_conn_close(P.conn[i]);
}

static void send_chat(epode_conn_t *from, const char *to, const char *body)
{
    epode_stanza_t *m;
    if (epode_stanza_new_message(NULL, "chat", to, body, &m) == 0) {
        epode_conn_send(from, m);
        epode_stanza_unref(m);
    }
}

static void maybe_done_carbons(void)
{
    if (P.got_rcv && P.got_sent && P.got_direct)
        finish(0, "");
}

static void on_carbon(epode_conn_t *c, epode_carbon_dir_t dir, epode_stanza_t *msg,
                      epode_stanza_t *carrier, void *user)
{
    (void)c, (void)carrier, (void)user;
    const char *body = epode_stanza_child_text(msg, "body", NULL);
    printf("carbon %s %s %s %s\n", dir == EPODE_CARBON_SENT ? "sent" : "received",
           nz(epode_stanza_get_from(msg)), nz(epode_stanza_get_to(msg)), nz(body));
    fflush(stdout);
    if (body && dir == EPODE_CARBON_RECEIVED && !strcmp(body, "to A from C"))
        P.got_rcv = 1;
    if (body && dir == EPODE_CARBON_SENT && !strcmp(body, "to C from A"))
        P.got_sent = 1;
    maybe_done_carbons();
}

static int on_chat_a(epode_conn_t *c, epode_stanza_t *msg, void *user)
{
    (void)c, (void)user;
    const char *body = epode_stanza_child_text(msg, "body", NULL);
    if (body && !strcmp(body, "to A from C")) {
        printf("direct %s %s\n", nz(epode_stanza_get_from(msg)), body);
        fflush(stdout);
        P.got_direct = 1;
        maybe_done_carbons();
    }
    return EPODE_PASS;
}

static void on_carbons_enabled(epode_conn_t *c, int enabled, int status, epode_stanza_cond_t cond,
                               void *user)
{
    (void)c, (void)user;
    printf("carbons-enabled %d status=%d cond=%s\n", enabled, status, nz(epode_stanza_cond_name(cond)));
    fflush(stdout);
    if (status < 0 || cond != EPODE_COND_NONE)
        finish(1, "carbons not enabled");
    else
        P.carbons_on = 1;
}

static void on_ping(epode_conn_t *c, const char *jid, int status, epode_stanza_cond_t cond,
                    unsigned rtt, void *user)
{
    (void)c, (void)jid;
    printf("ping %s status=%s cond=%s rtt=%u\n", (const char *)user, epode_err_name(status),
           nz(epode_stanza_cond_name(cond)), rtt);
    fflush(stdout);
    if (status < 0)
        finish(1, "ping unanswered");
    else
        P.pings++;
}

static void on_dead(epode_conn_t *c, unsigned t, void *user)
{
    (void)c, (void)t, (void)user;
    finish(1, "liveness ping timed out");
}

static void on_version(epode_conn_t *c, const char *jid, int status, epode_stanza_cond_t cond,
                       const char *name, const char *version, const char *os, void *user)
{
    (void)c, (void)jid;
    printf("version %s status=%s cond=%s %s %s %s\n", (const char *)user, epode_err_name(status),
           nz(epode_stanza_cond_name(cond)), nz(name), nz(version), nz(os));
    fflush(stdout);
    if (status < 0)
        finish(1, "version query unanswered");
    else if (++P.versions == 2)
        finish(0, "");
}

/* Runs every 100 ms: starts the scenario once everybody is ready. */
static int on_tick(epode_conn_t *conn, void *user)
{
    (void)conn, (void)user;
    if (P.finished)
        return 0;
    for (int i = 0; i < N; i++)
        if (P.used[i] && !P.ready[i])
            return 1;
    if (!strcmp(P.mode, "carbons")) {
        if (P.carbons_on && !P.started) {
            P.started = 1;
            send_chat(P.conn[C], epode_conn_bound_jid(P.conn[A]), "to A from C");
            char bare[512];
            snprintf(bare, sizeof bare, "%.*s", (int)strcspn(epode_conn_bound_jid(P.conn[C]), "/"),
                     epode_conn_bound_jid(P.conn[C]));
            send_chat(P.conn[A], bare, "to C from A");
        }
    } else if (!strcmp(P.mode, "ping")) {
        if (!P.started) {
            P.started = 1;
            if (epode_ping_send(P.ping, NULL, 5000, on_ping, "server") < 0 ||
                epode_ping_send(P.ping, epode_conn_bound_jid(P.conn[C]), 5000, on_ping, "peer") < 0 ||
                epode_ping_set_keepalive(P.ping, 200, 3000, on_dead, NULL) < 0)
                finish(1, "could not ping");
        } else if (++P.keepalive_ticks == 15) {
            printf("keepalive timeouts=%u ready=%d\n", epode_ping_timeouts(P.ping),
                   epode_conn_is_ready(P.conn[A]));
            fflush(stdout);
            finish(P.pings == 2 ? 0 : 1, "pings missing");
        }
    } else if (!strcmp(P.mode, "version")) {
        if (!P.started) {
            P.started = 1;
            if (epode_software_version_query(P.ver[C], epode_conn_bound_jid(P.conn[A]), 5000, on_version,
                                    "peer") < 0 ||
                epode_software_version_query(P.ver[C], NULL, 5000, on_version, "server") < 0)
                finish(1, "could not query");
        }
    }
    return 1;
}

static int on_timeout(epode_conn_t *conn, void *user)
{
    (void)conn, (void)user;
    finish(1, "timed out");
    return 0;
}

static void on_event(epode_conn_t *conn, epode_conn_event_t ev, void *user)
{
    int i = (int)(long)user;
    (void)conn;
    if (ev == EPODE_CONN_READY) {
        P.ready[i] = 1;
        printf("ready %c %s\n", 'A' + i, epode_conn_bound_jid(conn));
        fflush(stdout);
        epode_stanza_t *pres;
        if (epode_stanza_new_presence(NULL, NULL, NULL, &pres) == 0) {
            epode_conn_send(conn, pres);
            epode_stanza_unref(pres);
        }
    } else if (ev == EPODE_CONN_DISCONNECTED) {
        P.closed[i] = 1;
        if (!P.finished)
            finish(1, epode_conn_error_text(conn));
        int all = 1;
        for (int k = 0; k < N; k++)
            if (P.used[k] && !P.closed[k])
                all = 0;
        if (all)
            epode_ctx_stop(P.ctx);
    }
}

int main(int argc, char **argv)
{
    const char *server = "127.0.0.1", *ca = NULL, *jid1 = NULL, *pw1 = NULL, *jid2 = NULL,
               *pw2 = NULL;
    unsigned port = 5222;
    P.mode = "carbons";
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (!strcmp(k, "--server")) server = v;
        else if (!strcmp(k, "--port")) port = (unsigned)atoi(v);
        else if (!strcmp(k, "--ca-file")) ca = v;
        else if (!strcmp(k, "--jid1")) jid1 = v;
        else if (!strcmp(k, "--password1")) pw1 = v;
        else if (!strcmp(k, "--jid2")) jid2 = v;
        else if (!strcmp(k, "--password2")) pw2 = v;
        else if (!strcmp(k, "--mode")) P.mode = v;
        else {
            fprintf(stderr, "im_carbons_probe: unknown option %s\n", k);
            return 64;
        }
    }
    if (!jid1 || !pw1 || !jid2 || !pw2) {
        fprintf(stderr, "im_carbons_probe: need --jid1 --password1 --jid2 --password2\n");
        return 64;
    }
    P.used[A] = P.used[C] = 1;
    P.used[B] = !strcmp(P.mode, "carbons");
    if (epode_global_init() < 0 || epode_ctx_new(NULL, &P.ctx) < 0)
        return 1;
    for (int i = 0; i < N; i++) {
        if (!P.used[i])
            continue;
        char full[512];
        snprintf(full, sizeof full, "%s/%s", i == C ? jid2 : jid1, i == A ? "A" : i == B ? "B" : "C");
        if (epode_conn_new(P.ctx, &P.conn[i]) < 0 || epode_conn_set_jid(P.conn[i], full) < 0 ||
            epode_conn_set_password(P.conn[i], i == C ? pw2 : pw1) < 0 ||
            epode_conn_set_server(P.conn[i], server, port) < 0 ||
            (ca && epode_conn_set_ca_file(P.conn[i], ca) < 0) ||
            epode_conn_add_event_cb(P.conn[i], on_event, (void *)(long)i, NULL) < 0) {
            fprintf(stderr, "im_carbons_probe: set-up failed\n");
            return 1;
        }
    }
    int rc = 0;
    if (!strcmp(P.mode, "carbons")) {
        rc = epode_carbons_new(P.conn[B], on_carbon, NULL, &P.carbons);
        if (rc == 0)
            rc = epode_carbons_enable(P.carbons, 1, on_carbons_enabled, NULL);
        if (rc == 0)
            rc = epode_conn_add_handler(P.conn[A], "message", NULL, "chat", on_chat_a, NULL, NULL);
    } else if (!strcmp(P.mode, "ping")) {
        rc = epode_ping_new(P.conn[A], &P.ping);
        if (rc == 0)
            rc = epode_ping_new(P.conn[C], &P.answerer);
    } else if (!strcmp(P.mode, "version")) {
        rc = epode_software_version_new(P.conn[A], "epode-probe", "1.2.3", "TestOS", &P.ver[A]);
        if (rc == 0)
            rc = epode_software_version_new(P.conn[C], "epode-probe-c", "0", NULL, &P.ver[C]);
    } else {
        fprintf(stderr, "im_carbons_probe: unknown mode %s\n", P.mode);
        return 64;
    }
    if (rc == 0)
        rc = epode_conn_add_timer(P.conn[A], 100, on_tick, NULL, NULL);
    if (rc == 0)
        rc = epode_conn_add_timer(P.conn[A], 20000, on_timeout, NULL, NULL);
    for (int i = 0; i < N && rc == 0; i++)
        if (P.used[i])
            rc = epode_conn_connect(P.conn[i]);
    if (rc < 0) {
        fprintf(stderr, "im_carbons_probe: %s\n", epode_strerror(rc));
        return 1;
    }
    epode_ctx_run(P.ctx);
    epode_carbons_free(P.carbons);
    epode_ping_free(P.ping);
    epode_ping_free(P.answerer);
    epode_software_version_free(P.ver[A]);
    epode_software_version_free(P.ver[C]);
    for (int i = 0; i < N; i++)
        epode_conn_free(P.conn[i]);
    epode_ctx_free(P.ctx);
    if (P.failed) {
        printf("FAILED %s\n", P.why);
        return 1;
    }
    printf("OK\n");
    return 0;
}
