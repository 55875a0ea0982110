/* tests/integration/im_catchup_probe.c — the archive helper's automatic
 * catch-up (epode_mam_set_auto_catch_up) against real servers, public API
 * only.
 *
 *   im_catchup_probe --server H --port N --proxy-port P --ca-file F
 *                    --jid1 J --password1 P --jid2 J --password2 P [--count N]
 *
 * A (account 1, resource A) logs in through a fault proxy on port P with
 * automatic reconnection and no stream management, so a cut link ends its
 * session for good; C (account 2) logs in directly. C sends A "before";
 * once A has it, the probe prints "cut me" and waits for the test to cut
 * A's link (the proxy resets it). While A is away C sends --count (3)
 * messages "while away K"; A comes back on a fresh session, sends its
 * presence (the server's offline store then hands the same messages over
 * live) and catches up from the last archive id it saw. Every message A's
 * handler gets prints "got live|archived BODY", a live copy of what the
 * catch-up delivered prints "dup BODY" instead; "catchup done STATUS
 * RESULTS" ends the catch-up. Two seconds after it: "OK" (exit 0) or
 * "FAILED reason" (exit 1). */
#include <epode.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { A, C, N };

typedef struct probe {
    long count;
    epode_ctx_t *ctx;
    epode_conn_t *conn[N];
    int ready[N], closed[N], readies_a;
    epode_messaging_t *msg[N];
    epode_mam_t *mam;
    int step, cut, sent_away;
    long ticks, end_at;
    char bare_a[512];
    int finished, failed;
    char why[256];
} probe;

static probe P;

static void finish(int failed, const char *why)
{
    if (P.finished)
        return;
    P.finished = 1;
    P.failed = failed;
    snprintf(P.why, sizeof P.why, "%s", why);
    epode_conn_set_reconnect(P.conn[A], 0, 0, 0);
    for (int i = 0; i < N; i++)
        if (!P.closed[i])
            epode_conn_close(P.conn[i]);
}

static void send_to_a(const char *body)
{
    epode_stanza_t *m;
    if (epode_stanza_new_message(NULL, "chat", P.bare_a, body, &m) == 0) {
        epode_conn_send(P.conn[C], m);
        epode_stanza_unref(m);
    }
}

static int on_message(epode_conn_t *conn, const epode_message_t *m, void *user)
{
    (void)conn, (void)user;
    const char *body = epode_message_body(m, NULL);
    if (!body)
        return EPODE_PASS;
    if (epode_mam_is_duplicate(P.mam, epode_message_stanza(m))) {
        printf("dup %s\n", body);
    } else {
        printf("got live %s\n", body);
        if (!strcmp(body, "before") && !P.cut) {
            P.cut = 1;
            printf("cut me\n");
        }
    }
    fflush(stdout);
    return EPODE_HANDLED;
}

static void on_caught(epode_mam_t *mam, const epode_message_t *m, void *user)
{
    (void)mam, (void)user;
    printf("got archived %s\n", epode_message_body(m, NULL) ? epode_message_body(m, NULL) : "-");
    fflush(stdout);
}

static void on_caught_done(epode_mam_t *mam, int status, epode_stanza_cond_t cond,
                           const char *first, const char *last, int complete, long count,
                           size_t results, void *user)
{
    (void)mam, (void)first, (void)last, (void)complete, (void)count, (void)user;
    printf("catchup done %s %zu\n",
           status < 0 ? epode_err_name(status) : cond ? epode_stanza_cond_name(cond) : "ok",
           results);
    fflush(stdout);
    if (P.readies_a >= 2)
        P.end_at = P.ticks + 20;
}

static int on_tick(epode_conn_t *conn, void *user)
{
    (void)conn, (void)user;
    P.ticks++;
    if (P.step == 0 && P.ready[A] && P.ready[C]) {
        P.step = 1;
        send_to_a("before");
    }
    if (P.end_at && P.ticks >= P.end_at)
        finish(0, "");
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
    if (ev == EPODE_CONN_READY) {
        P.ready[i] = 1;
        printf("ready %c %s\n", "AC"[i], epode_conn_bound_jid(conn));
        fflush(stdout);
        if (i == A) {
            P.readies_a++;
            snprintf(P.bare_a, sizeof P.bare_a, "%.*s",
                     (int)strcspn(epode_conn_bound_jid(conn), "/"), epode_conn_bound_jid(conn));
        }
        epode_stanza_t *pres;
        if (epode_stanza_new_presence(NULL, NULL, NULL, &pres) == 0) {
            epode_conn_send(conn, pres);
            epode_stanza_unref(pres);
        }
    } else if (ev == EPODE_CONN_RESUMED && i == A) {
        finish(1, "A resumed its session: nothing to catch up");
    } else if (ev == EPODE_CONN_DISCONNECTED) {
        P.ready[i] = 0;
        if (i == A && P.cut && !P.sent_away && !P.finished) {
            P.sent_away = 1;
            for (long k = 1; k <= P.count; k++) {
                char body[64];
                snprintf(body, sizeof body, "while away %ld", k);
                send_to_a(body);
            }
            printf("sent while away\n");
            fflush(stdout);
        }
        if (epode_conn_will_reconnect(conn) && !P.finished)
            return;
        P.closed[i] = 1;
        if (!P.finished) {
            char why[256];
            snprintf(why, sizeof why, "%c disconnected: %s", "AC"[i],
                     epode_strerror(epode_conn_error(conn)));
            finish(1, why);
        }
        if (P.closed[A] && P.closed[C])
            epode_ctx_stop(P.ctx);
    }
}

int main(int argc, char **argv)
{
    const char *server = "127.0.0.1", *ca = NULL, *jid1 = NULL, *pw1 = NULL, *jid2 = NULL,
               *pw2 = NULL;
    unsigned port = 5222, proxy_port = 0;
    P.count = 3;
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (!strcmp(k, "--server")) server = v;
        else if (!strcmp(k, "--port")) port = (unsigned)atoi(v);
        else if (!strcmp(k, "--proxy-port")) proxy_port = (unsigned)atoi(v);
        else if (!strcmp(k, "--ca-file")) ca = v;
        else if (!strcmp(k, "--jid1")) jid1 = v;
        else if (!strcmp(k, "--password1")) pw1 = v;
        else if (!strcmp(k, "--jid2")) jid2 = v;
        else if (!strcmp(k, "--password2")) pw2 = v;
        else if (!strcmp(k, "--count")) P.count = atol(v);
        else {
            fprintf(stderr, "im_catchup_probe: unknown option %s\n", k);
            return 64;
        }
    }
    if (!jid1 || !pw1 || !jid2 || !pw2 || !proxy_port) {
        fprintf(stderr, "im_catchup_probe: need --jid1 --password1 --jid2 --password2 "
                        "--proxy-port\n");
        return 64;
    }
    if (epode_global_init() < 0 || epode_ctx_new(NULL, &P.ctx) < 0)
        return 1;
    for (int i = 0; i < N; i++) {
        char full[512];
        snprintf(full, sizeof full, "%s/%c", i == C ? jid2 : jid1, "AC"[i]);
        if (epode_conn_new(P.ctx, &P.conn[i]) < 0 || epode_conn_set_jid(P.conn[i], full) < 0 ||
            epode_conn_set_password(P.conn[i], i == C ? pw2 : pw1) < 0 ||
            epode_conn_set_server(P.conn[i], server, i == A ? proxy_port : port) < 0 ||
            (ca && epode_conn_set_ca_file(P.conn[i], ca) < 0) ||
            epode_conn_add_event_cb(P.conn[i], on_event, (void *)(long)i, NULL) < 0 ||
            epode_messaging_new(P.conn[i], &P.msg[i]) < 0) {
            fprintf(stderr, "im_catchup_probe: set-up failed\n");
            return 1;
        }
    }
    int rc = epode_conn_set_reconnect(P.conn[A], 1, 200, 1000);
    if (rc == 0)
        rc = epode_mam_new(P.conn[A], &P.mam);
    if (rc == 0)
        rc = epode_mam_set_auto_catch_up(P.mam, 1, 2, on_caught, on_caught_done, NULL);
    if (rc == 0)
        rc = epode_messaging_handler_add(P.msg[A], "chat", on_message, NULL, NULL);
    if (rc == 0)
        rc = epode_conn_add_timer(P.conn[C], 100, on_tick, NULL, NULL);
    if (rc == 0)
        rc = epode_conn_add_timer(P.conn[C], 40000, on_timeout, NULL, NULL);
    for (int i = 0; i < N && rc == 0; i++)
        rc = epode_conn_connect(P.conn[i]);
    if (rc < 0) {
        fprintf(stderr, "im_catchup_probe: %s\n", epode_strerror(rc));
        return 1;
    }
    epode_ctx_run(P.ctx);
    epode_mam_free(P.mam);
    for (int i = 0; i < N; i++) {
        epode_messaging_free(P.msg[i]);
        epode_conn_free(P.conn[i]);
    }
    epode_ctx_free(P.ctx);
    if (P.failed) {
        printf("FAILED %s\n", P.why);
        return 1;
    }
    printf("OK\n");
    return 0;
}
