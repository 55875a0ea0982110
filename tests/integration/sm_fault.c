/* tests/integration/sm_fault.c — the stream-management fault test's
 * client side: a sender and a receiver connection in one context, both
 * with stream management and automatic reconnection. The sender sends N
 * numbered messages (at most WINDOW unacknowledged at a time); the
 * receiver counts what arrives, recognizing duplicates by message id.
 * Meanwhile a fault proxy between them and the server cuts their links.
 * When every message is acknowledged or reported back, and the receiver
 * has had time to get them, it prints
 *   sm-fault LABEL: sent=N acked=A delivered=D duplicates=X unreported=U cuts=C
 * (unreported = sent, neither delivered nor reported back — must be 0;
 * duplicates counts repeated deliveries of acknowledged messages — must
 * be 0) and exits 0 if both are 0. Public API only.
 *
 *   sm_fault --server H --port N --ca-file F --sender JID --sender-password P
 *            --receiver JID --receiver-password P --count N [--label L]
 *            [--receiver-port N (the receiver through another proxy)]
 *            [--timeout SECONDS] [--window N] [--rate PER_SECOND]
 *            [--resend 0|1] [--ack-wait-ms N] [--dead-ms N] [--format burst]
 *            [--proxy URL (both connections through it)]
 *            [--sender-websocket URL] [--receiver-websocket URL]
 *            (that connection over WebSocket, RFC 7395: the URL names the
 *            server's HTTP port, or the fault proxy in front of it)
 *            [--sender-bosh URL] [--receiver-bosh URL]
 *            (that connection over BOSH, XEP-0124/0206, the same way)
 *
 * --window 0 is the bursty sender: every message is queued at once, as
 * fast as epode takes them (no window, no rate). --format burst prints
 *   sm-burst LABEL: sent=N acked=A handed_back=B delivered=D duplicates=X lost=L cuts=C
 * instead (lost = unreported).
 */
#include <epode.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct run {
    epode_ctx_t *ctx;
    epode_conn_t *tx, *rx;
    long n, window;       /* window 0: no limit */
    double rate;          /* at most this many messages per second (0: no limit) */
    double started;
    long bounced;         /* error replies the sender got for its messages */
    long next;            /* next message number to send (1-based) */
    unsigned char *state; /* per message: 0 unsent, 1 sent, 2 acked, 3 reported */
    unsigned *delivered;  /* per message: times the receiver got it */
    long acked, reported, dups_acked, dups_any;
    int tx_ready, rx_ready;
    int tx_down, rx_down; /* DISCONNECTED seen after our close */
    int closing;
    int resend;           /* -1: the policy's default */
    unsigned ack_wait_ms, dead_ms;
    long cuts;
    const char *rx_bare;
    const char *proxy; /* --proxy: both connections through it */
    char tx_bare[1024];
} run;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static long msg_number(const char *id)
{
    if (!id || strncmp(id, "sf-", 3) != 0)
        return 0;
    char *end;
    long i = strtol(id + 3, &end, 10);
    return *end ? 0 : i;
}

static void on_ack(epode_conn_t *c, int acked, const char *id, const char *xml, size_t len,
                   void *user)
{
    (void)c, (void)xml, (void)len;
    run *r = user;
    long i = msg_number(id);
    if (i < 1 || i > r->n)
        return;
    if (acked && r->state[i - 1] != 2) {
        if (r->state[i - 1] == 3)
            r->reported--; /* reported on one stream, confirmed after a resume */
        r->state[i - 1] = 2;
        r->acked++;
    } else if (!acked && r->state[i - 1] == 1) {
        r->state[i - 1] = 3;
        r->reported++;
    }
}

static long in_flight(const run *r)
{
    return (r->next - 1) - r->acked - r->reported;
}

static void pump_sender(run *r)
{
    while (r->tx_ready && r->next <= r->n && (r->window == 0 || in_flight(r) < r->window)) {
        if (r->rate > 0 && (r->next - 1) > (now() - r->started) * r->rate)
            return; /* paced: the proxy gets time to cut */
        char body[64], id[32];
        snprintf(body, sizeof body, "sm-fault #%ld", r->next);
        snprintf(id, sizeof id, "sf-%ld", r->next);
        epode_stanza_t *m;
        if (epode_stanza_new_message(NULL, "chat", r->rx_bare, body, &m) < 0)
            return;
        epode_stanza_set_id(m, id);
        int rc = epode_conn_send(r->tx, m);
        epode_stanza_unref(m);
        if (rc < 0)
            return; /* not ready any more: resume later */
        r->state[r->next - 1] = 1;
        r->next++;
    }
}

static void on_tx_event(epode_conn_t *c, epode_conn_event_t ev, void *user)
{
    run *r = user;
    if (getenv("SM_FAULT_VERBOSE") && (ev == EPODE_CONN_READY || ev == EPODE_CONN_RESUMED))
        fprintf(stderr, "sender %s\n", ev == EPODE_CONN_READY ? "ready" : "resumed");
    if (ev == EPODE_CONN_READY || ev == EPODE_CONN_RESUMED)
        r->tx_ready = 1;
    else if (ev == EPODE_CONN_DISCONNECTED) {
        r->tx_ready = 0;
        if (r->closing) {
            r->tx_down = 1;
            return;
        }
        r->cuts++;
        if (getenv("SM_FAULT_VERBOSE"))
            fprintf(stderr, "sender cut: %s\n", epode_conn_error_text(c));
    }
}

static void on_rx_event(epode_conn_t *c, epode_conn_event_t ev, void *user)
{
    run *r = user;
    if (getenv("SM_FAULT_VERBOSE") && (ev == EPODE_CONN_READY || ev == EPODE_CONN_RESUMED))
        fprintf(stderr, "receiver %s\n", ev == EPODE_CONN_READY ? "ready" : "resumed");
    if (ev == EPODE_CONN_READY) {
        epode_stanza_t *p;
        if (epode_stanza_new_presence(NULL, NULL, NULL, &p) == 0) {
            epode_conn_send(c, p);
            epode_stanza_unref(p);
        }
        r->rx_ready = 1;
    } else if (ev == EPODE_CONN_RESUMED) {
        r->rx_ready = 1;
    } else if (ev == EPODE_CONN_DISCONNECTED) {
        r->rx_ready = 0;
        if (r->closing) {
            r->rx_down = 1;
            return;
        }
        r->cuts++;
        if (getenv("SM_FAULT_VERBOSE"))
            fprintf(stderr, "receiver cut: %s\n", epode_conn_error_text(c));
    }
}

static int on_message(epode_conn_t *c, epode_stanza_t *st, void *user)
{
    (void)c;
    run *r = user;
    const char *from = epode_stanza_get_from(st);
    if (!from || !epode_jid_str_equal(from, r->tx_bare, 1))
        return EPODE_PASS;
    long i = msg_number(epode_stanza_get_id(st));
    if (i < 1 || i > r->n)
        return EPODE_PASS;
    if (r->delivered[i - 1]++ > 0) {
        r->dups_any++;
        if (r->state[i - 1] == 2)
            r->dups_acked++;
    }
    return EPODE_HANDLED;
}

static int on_bounce(epode_conn_t *c, epode_stanza_t *st, void *user)
{
    (void)c;
    run *r = user;
    r->bounced++;
    if (getenv("SM_FAULT_VERBOSE")) {
        epode_stanza_cond_t cond;
        epode_stanza_get_error(st, &cond, NULL, NULL);
        fprintf(stderr, "bounced %s: %s\n", epode_stanza_get_id(st) ? epode_stanza_get_id(st) : "-",
                epode_stanza_cond_name(cond));
    }
    return EPODE_HANDLED;
}

static epode_conn_t *make(run *r, const char *host, unsigned port, const char *ca,
                          const char *jid, const char *pw)
{
    epode_conn_t *c;
    if (epode_conn_new(r->ctx, &c) < 0 || epode_conn_set_jid(c, jid) < 0 ||
        epode_conn_set_password(c, pw) < 0 || epode_conn_set_server(c, host, port) < 0 ||
        epode_conn_set_ca_file(c, ca) < 0 || epode_conn_set_stream_management(c, 1) < 0 ||
        epode_conn_set_reconnect(c, 1, 50, 1000) < 0 || epode_conn_set_timeouts(c, 3000, 10000) < 0)
        return NULL;
    if (r->proxy && epode_conn_set_proxy(c, r->proxy) < 0)
        return NULL;
    if ((r->resend >= 0 || r->ack_wait_ms || r->dead_ms) &&
        epode_conn_set_sm_policy(c, 5, r->ack_wait_ms ? r->ack_wait_ms : 1000,
                                 r->dead_ms ? r->dead_ms : 30000, r->resend > 0) < 0)
        return NULL;
    return c;
}

static void on_log(void *user, epode_log_level_t level, const char *area, const char *msg)
{
    (void)user, (void)level;
    fprintf(stderr, "%s %s\n", area, msg);
}

int main(int argc, char **argv)
{
    const char *host = "127.0.0.1", *ca = NULL, *tx_jid = NULL, *tx_pw = NULL, *rx_jid = NULL,
               *rx_pw = NULL, *label = "server", *proxy = NULL, *tx_ws = NULL, *rx_ws = NULL,
               *tx_bosh = NULL, *rx_bosh = NULL;
    unsigned port = 0, rx_port = 0;
    long n = 1000, window = 50;
    double rate = 0;
    double timeout = 120;
    int resend = -1, burst_format = 0;
    unsigned ack_wait_ms = 0, dead_ms = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *a = argv[i], *v = argv[i + 1];
        if (!strcmp(a, "--server")) host = v;
        else if (!strcmp(a, "--port")) port = (unsigned)atoi(v);
        else if (!strcmp(a, "--receiver-port")) rx_port = (unsigned)atoi(v);
        else if (!strcmp(a, "--proxy")) proxy = v;
        else if (!strcmp(a, "--sender-websocket")) tx_ws = v;
        else if (!strcmp(a, "--receiver-websocket")) rx_ws = v;
        else if (!strcmp(a, "--sender-bosh")) tx_bosh = v;
        else if (!strcmp(a, "--receiver-bosh")) rx_bosh = v;
        else if (!strcmp(a, "--ca-file")) ca = v;
        else if (!strcmp(a, "--sender")) tx_jid = v;
        else if (!strcmp(a, "--sender-password")) tx_pw = v;
        else if (!strcmp(a, "--receiver")) rx_jid = v;
        else if (!strcmp(a, "--receiver-password")) rx_pw = v;
        else if (!strcmp(a, "--count")) n = atol(v);
        else if (!strcmp(a, "--window")) window = atol(v);
        else if (!strcmp(a, "--rate")) rate = atof(v);
        else if (!strcmp(a, "--label")) label = v;
        else if (!strcmp(a, "--timeout")) timeout = atof(v);
        else if (!strcmp(a, "--resend")) resend = atoi(v);
        else if (!strcmp(a, "--ack-wait-ms")) ack_wait_ms = (unsigned)atoi(v);
        else if (!strcmp(a, "--dead-ms")) dead_ms = (unsigned)atoi(v);
        else if (!strcmp(a, "--format")) burst_format = !strcmp(v, "burst");
        else {
            fprintf(stderr, "sm_fault: unknown option %s\n", a);
            return 64;
        }
    }
    if (!port || !ca || !tx_jid || !tx_pw || !rx_jid || !rx_pw || n <= 0 || window < 0) {
        fprintf(stderr, "sm_fault: missing options\n");
        return 64;
    }
    run r = {.n = n, .window = window, .rate = rate, .next = 1, .rx_bare = rx_jid,
             .resend = resend, .ack_wait_ms = ack_wait_ms, .dead_ms = dead_ms, .proxy = proxy};
    snprintf(r.tx_bare, sizeof r.tx_bare, "%s", tx_jid);
    r.state = calloc((size_t)n, 1);
    r.delivered = calloc((size_t)n, sizeof *r.delivered);
    if (!r.state || !r.delivered || epode_global_init() < 0 || epode_ctx_new(NULL, &r.ctx) < 0)
        return 1;
    if (getenv("SM_FAULT_XML"))
        epode_ctx_set_log(r.ctx, EPODE_LOG_XML, on_log, NULL);
    if (!(r.tx = make(&r, host, port, ca, tx_jid, tx_pw)) ||
        !(r.rx = make(&r, host, rx_port ? rx_port : port, ca, rx_jid, rx_pw)))
        return 1;
    if ((tx_ws && epode_conn_set_websocket(r.tx, tx_ws) < 0) ||
        (rx_ws && epode_conn_set_websocket(r.rx, rx_ws) < 0))
        return 1;
    if ((tx_bosh && epode_conn_set_bosh(r.tx, tx_bosh) < 0) ||
        (rx_bosh && epode_conn_set_bosh(r.rx, rx_bosh) < 0)) {
        fprintf(stderr, "sm_fault: bad --sender-bosh/--receiver-bosh URL\n");
        return 64;
    }
    epode_conn_add_event_cb(r.tx, on_tx_event, &r, NULL);
    epode_conn_set_ack_cb(r.tx, on_ack, &r);
    epode_conn_add_event_cb(r.rx, on_rx_event, &r, NULL);
    epode_conn_add_handler(r.rx, "message", NULL, NULL, on_message, &r, NULL);
    epode_conn_add_handler(r.tx, "message", NULL, "error", on_bounce, &r, NULL);
    if (epode_conn_connect(r.rx) < 0)
        return 1;
    double t0 = now();
    while (!r.rx_ready && now() - t0 < 20)
        epode_ctx_run_once(r.ctx, 100);
    if (epode_conn_connect(r.tx) < 0)
        return 1;
    r.started = now();
    double settled = 0, progress_at = 0;
    long last_delivered = -1;
    while (now() - t0 < timeout) {
        epode_ctx_run_once(r.ctx, 50);
        pump_sender(&r);
        int all_done = r.next > r.n && r.acked + r.reported == r.n;
        if (!all_done)
            continue;
        if (settled == 0)
            settled = now();
        long delivered = 0;
        for (long i = 0; i < r.n; i++)
            delivered += r.delivered[i] > 0;
        if (delivered != last_delivered) {
            last_delivered = delivered;
            progress_at = now();
        }
        /* every acknowledged message arrived, or nothing more for 15 s */
        if (delivered >= r.acked || now() - progress_at > 15)
            break;
    }
    long delivered = 0, unreported = 0;
    for (long i = 0; i < r.n; i++) {
        delivered += r.delivered[i] > 0;
        if (!r.delivered[i] && r.state[i] != 3)
            unreported++;
    }
    if (burst_format)
        printf("sm-burst %s: sent=%ld acked=%ld handed_back=%ld delivered=%ld duplicates=%ld "
               "lost=%ld cuts=%ld\n", label, r.next - 1, r.acked, r.reported, delivered,
               r.dups_acked, unreported, r.cuts);
    else
        printf("sm-fault %s: sent=%ld acked=%ld delivered=%ld duplicates=%ld unreported=%ld "
               "cuts=%ld\n", label, r.next - 1, r.acked, delivered, r.dups_acked, unreported, r.cuts);
    fflush(stdout);
    long dups_reported = r.dups_acked, dups_any_reported = r.dups_any;
    /* A clean close ends the server's sessions too (a cut one would stay
     * resumable, and its queue would be redelivered to later sessions). */
    r.closing = 1;
    if (epode_conn_close(r.tx) < 0)
        r.tx_down = 1;
    if (epode_conn_close(r.rx) < 0)
        r.rx_down = 1;
    double t1 = now();
    while (now() - t1 < 10 && !(r.tx_down && r.rx_down))
        epode_ctx_run_once(r.ctx, 100);
    epode_conn_free(r.tx);
    epode_conn_free(r.rx);
    epode_ctx_free(r.ctx);
    /* Copies that arrive while closing count too: say so on a line of
     * their own (the line above was the state when everything settled). */
    if (r.dups_acked != dups_reported || r.dups_any != dups_any_reported)
        printf("sm-late %s: duplicates=%ld copies=%ld after the report\n", label,
               r.dups_acked - dups_reported, r.dups_any - dups_any_reported);
    int ok = unreported == 0 && r.dups_acked == 0 && r.next - 1 == r.n;
    free(r.state);
    free(r.delivered);
    return ok ? 0 : 1;
}
