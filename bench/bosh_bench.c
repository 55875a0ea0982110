/* bench/bosh_bench.c — what BOSH (XEP-0124/0206) costs beside a TCP
 * stream, end to end against a real server on loopback: two accounts log
 * in, one sends N chat messages to the other's full JID, at most WINDOW
 * of them in flight (sent, not yet received), and the time from the
 * first send to the last arrival gives messages per second. Either side
 * may be over BOSH (--sender-bosh URL, --receiver-bosh URL), the other
 * over TCP (STARTTLS, verified with CA_FILE). bench/bosh_bench.py starts
 * Prosody and alternates the runs. Prints one line:
 *
 *   RESULT bosh_bench LABEL messages=N seconds=S rate=R
 *
 *   bosh_bench HOST PORT CA_FILE SENDER PASSWORD RECEIVER PASSWORD
 *              [--count N] [--window W] [--label L]
 *              [--sender-bosh URL] [--receiver-bosh URL]
 *
 * Exit 0 when every message arrived in time, 1 otherwise, 64 on bad
 * arguments. Uses only the public API. */
#include <epode.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

typedef struct bench {
    epode_ctx_t *ctx;
    epode_conn_t *tx, *rx;
    int tx_ready, rx_ready, failed, ended;
    long n, window, sent, received;
    double t0, t1;
} bench;

static void on_event(epode_conn_t *c, epode_conn_event_t ev, void *user)
{
    bench *b = user;
    if (ev == EPODE_CONN_READY) {
        epode_stanza_t *p;
        if (epode_stanza_new_presence(NULL, NULL, NULL, &p) == 0) {
            epode_conn_send(c, p);
            epode_stanza_unref(p);
        }
        if (c == b->tx)
            b->tx_ready = 1;
        else
            b->rx_ready = 1;
    } else if (ev == EPODE_CONN_DISCONNECTED && ++b->ended && b->received < b->n) {
        fprintf(stderr, "bosh_bench: %s disconnected: %s\n", c == b->tx ? "sender" : "receiver",
                epode_conn_error_text(c));
        b->failed = 1;
    }
}

static int on_message(epode_conn_t *c, epode_stanza_t *st, void *user)
{
    (void)c, (void)st;
    bench *b = user;
    if (++b->received == b->n)
        b->t1 = now();
    return EPODE_HANDLED;
}

static epode_conn_t *make(bench *b, const char *host, unsigned port, const char *ca,
                          const char *jid, const char *pw, const char *bosh)
{
    epode_conn_t *c;
    if (epode_conn_new(b->ctx, &c) < 0 || epode_conn_set_jid(c, jid) < 0 ||
        epode_conn_set_password(c, pw) < 0 || epode_conn_set_server(c, host, port) < 0 ||
        epode_conn_set_ca_file(c, ca) < 0 || epode_conn_set_timeouts(c, 10000, 30000) < 0)
        return NULL;
    if (bosh && epode_conn_set_bosh(c, bosh) < 0) {
        fprintf(stderr, "bosh_bench: bad BOSH URL %s\n", bosh);
        exit(64);
    }
    epode_conn_add_event_cb(c, on_event, b, NULL);
    return c;
}

int main(int argc, char **argv)
{
    if (argc < 8) {
        fprintf(stderr, "usage: bosh_bench HOST PORT CA_FILE SENDER PASSWORD RECEIVER PASSWORD\n"
                        "       [--count N] [--window W] [--label L]\n"
                        "       [--sender-bosh URL] [--receiver-bosh URL]\n");
        return 64;
    }
    bench b = {.n = 5000, .window = 100};
    const char *label = "tcp", *tx_bosh = NULL, *rx_bosh = NULL;
    for (int i = 8; i + 1 < argc; i += 2) {
        const char *a = argv[i], *v = argv[i + 1];
        if (!strcmp(a, "--count")) b.n = atol(v);
        else if (!strcmp(a, "--window")) b.window = atol(v);
        else if (!strcmp(a, "--label")) label = v;
        else if (!strcmp(a, "--sender-bosh")) tx_bosh = v;
        else if (!strcmp(a, "--receiver-bosh")) rx_bosh = v;
        else {
            fprintf(stderr, "bosh_bench: unknown option %s\n", a);
            return 64;
        }
    }
    if (b.n <= 0 || b.window <= 0 || (argc - 8) % 2) {
        fprintf(stderr, "bosh_bench: bad --count, --window or a missing value\n");
        return 64;
    }
    unsigned port = (unsigned)atoi(argv[2]);
    if (epode_global_init() < 0 || epode_ctx_new(NULL, &b.ctx) < 0)
        return 1;
    b.tx = make(&b, argv[1], port, argv[3], argv[4], argv[5], tx_bosh);
    b.rx = make(&b, argv[1], port, argv[3], argv[6], argv[7], rx_bosh);
    if (!b.tx || !b.rx ||
        epode_conn_add_handler(b.rx, "message", NULL, NULL, on_message, &b, NULL) < 0 ||
        epode_conn_connect(b.tx) < 0 || epode_conn_connect(b.rx) < 0)
        return 1;
    double deadline = now() + 30;
    while (!(b.tx_ready && b.rx_ready) && !b.failed && now() < deadline)
        epode_ctx_run_once(b.ctx, 100);
    if (!(b.tx_ready && b.rx_ready)) {
        fprintf(stderr, "bosh_bench: not logged in within 30 s\n");
        return 1;
    }
    char to[1024];
    snprintf(to, sizeof to, "%s", epode_conn_bound_jid(b.rx));
    /* the receiver's presence reaches the server before the first message */
    for (double settle = now() + 0.5; now() < settle;)
        epode_ctx_run_once(b.ctx, 50);
    b.t0 = now();
    deadline = b.t0 + 300;
    while (b.received < b.n && !b.failed && now() < deadline) {
        while (b.sent < b.n && b.sent - b.received < b.window) {
            char body[64];
            snprintf(body, sizeof body, "bench message %ld", b.sent);
            epode_stanza_t *m;
            if (epode_stanza_new_message(NULL, "chat", to, body, &m) < 0)
                return 1;
            int rc = epode_conn_send(b.tx, m);
            epode_stanza_unref(m);
            if (rc < 0) {
                fprintf(stderr, "bosh_bench: send: %s\n", epode_strerror(rc));
                return 1;
            }
            b.sent++;
        }
        epode_ctx_run_once(b.ctx, 100);
    }
    int ok = b.received == b.n;
    if (ok) {
        double s = b.t1 - b.t0;
        printf("RESULT bosh_bench %s messages=%ld seconds=%.3f rate=%.0f\n", label, b.n, s,
               (double)b.n / s);
    } else {
        fprintf(stderr, "bosh_bench: %ld of %ld messages arrived\n", b.received, b.n);
    }
    epode_conn_close(b.tx);
    epode_conn_close(b.rx);
    for (double end = now() + 3; now() < end && b.ended < 2;)
        epode_ctx_run_once(b.ctx, 100);
    epode_conn_free(b.tx);
    epode_conn_free(b.rx);
    epode_ctx_free(b.ctx);
    fflush(stdout);
    return ok ? 0 : 1;
}
