/* tests/integration/exchange.c — two accounts, two connections in ONE
 * context: both log in, send initial presence and ping their server (so
 * the presence is in effect), then each sends N chat messages to the
 * other's bare JID in one burst. Every message must arrive exactly once
 * and in order ("A->B 17" after "A->B 16"), from the other account.
 *
 *   exchange [--server HOST] [--port N] [--direct-tls] [--ca-file FILE]
 *            --jid1 JID --password1 P --jid2 JID --password2 P
 *            [--count N] [--timeout S] [--verbose]
 *
 * Prints per side: "ready SIDE JID", "sent SIDE N", and at the end
 * "received SIDE got=N dup=N out-of-order=N foreign=N" and the
 * disconnect lines; exit 0 if all N arrived each way exactly once in
 * order and both connections closed cleanly, else 1. Bad arguments: 64.
 * Uses only the public API. */
#include <epode.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct side side;
struct side {
    const char *name; /* "A" or "B" */
    const char *jid, *password;
    epode_conn_t *conn;
    side *peer;
    int ready, pinged, ended, closing;
    long sent;
    long next;   /* index of the next message expected from the peer */
    long got, dup, out_of_order, foreign;
    epode_disconnect_reason_t reason;
};

static epode_ctx_t *g_ctx;
static long g_count = 200;
static int g_started;

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static void usage(const char *why, const char *arg)
{
    fprintf(stderr, "exchange: %s%s%s\n", why, arg ? " " : "", arg ? arg : "");
    fprintf(stderr, "usage: exchange [--server HOST] [--port N] [--direct-tls] [--ca-file FILE]\n"
                    "       --jid1 JID --password1 P --jid2 JID --password2 P [--count N]\n"
                    "       [--timeout S] [--verbose]\n");
    exit(64);
}

static void bare_of(const char *jid, char *out, size_t n)
{
    snprintf(out, n, "%.*s", (int)strcspn(jid, "/"), jid);
}

static void send_burst(side *s)
{
    char to[1024], body[64];
    bare_of(s->peer->jid, to, sizeof to);
    for (long i = 0; i < g_count; i++) {
        snprintf(body, sizeof body, "%s->%s %ld", s->name, s->peer->name, i);
        epode_stanza_t *m;
        int rc = epode_stanza_new_message(NULL, "chat", to, body, &m);
        if (rc == 0) {
            rc = epode_conn_send(s->conn, m);
            epode_stanza_unref(m);
        }
        if (rc < 0) {
            printf("send-error %s %ld %s\n", s->name, i, epode_err_name(rc));
            return;
        }
        s->sent++;
    }
    printf("sent %s %ld (pending bytes %zu)\n", s->name, s->sent, epode_conn_pending_bytes(s->conn));
    fflush(stdout);
}

static void maybe_start(side *s)
{
    if (g_started || !s->pinged || !s->peer->pinged)
        return;
    g_started = 1;
    send_burst(s);
    send_burst(s->peer);
}

static void maybe_close(side *s)
{
    /* Each side closes once it has everything from its peer and its peer
     * has everything from it (both in this process). */
    side *a = s, *b = s->peer;
    if (a->got >= g_count && b->got >= g_count) {
        if (!a->closing) {
            a->closing = 1;
            epode_conn_close(a->conn);
        }
        if (!b->closing) {
            b->closing = 1;
            epode_conn_close(b->conn);
        }
    }
}

static int on_message(epode_conn_t *conn, epode_stanza_t *st, void *user)
{
    (void)conn;
    side *s = user;
    const char *body = epode_stanza_child_text(st, "body", NULL);
    const char *from = epode_stanza_get_from(st);
    if (!body)
        return EPODE_PASS;
    char prefix[32];
    snprintf(prefix, sizeof prefix, "%s->%s ", s->peer->name, s->name);
    if (!from || epode_jid_str_equal(from, s->peer->jid, 1) != 1 ||
        strncmp(body, prefix, strlen(prefix)) != 0) {
        s->foreign++;
        printf("foreign %s from=%s body=%s\n", s->name, from ? from : "-", body);
        return EPODE_HANDLED;
    }
    char *end;
    long i = strtol(body + strlen(prefix), &end, 10);
    if (*end || i < 0 || i >= g_count) {
        s->foreign++;
        printf("foreign %s from=%s body=%s\n", s->name, from, body);
    } else if (i == s->next) {
        s->next++;
        s->got++;
    } else if (i < s->next) {
        s->dup++;
        printf("duplicate %s %ld (expected %ld)\n", s->name, i, s->next);
    } else {
        s->out_of_order++;
        printf("out-of-order %s %ld (expected %ld)\n", s->name, i, s->next);
        s->next = i + 1;
        s->got++;
    }
    maybe_close(s);
    return EPODE_HANDLED;
}

static void on_ping(epode_conn_t *conn, epode_stanza_t *result, int status, void *user)
{
    side *s = user;
    if (status < 0 || !result || strcmp(epode_stanza_get_type(result) ? epode_stanza_get_type(result) : "", "result")) {
        printf("ping-failed %s %s\n", s->name, status < 0 ? epode_err_name(status) : "error reply");
        s->closing = 1;
        epode_conn_close(conn);
        return;
    }
    s->pinged = 1;
    maybe_start(s);
}

static const char *reason_name(epode_disconnect_reason_t r)
{
    static const char *names[] = {"NONE", "CLOSED", "NETWORK", "TLS", "AUTH", "STREAM_ERROR",
                                  "PROTOCOL", "TIMEOUT"};
    return (unsigned)r < sizeof names / sizeof names[0] ? names[r] : "UNKNOWN";
}

static void on_event(epode_conn_t *conn, epode_conn_event_t ev, void *user)
{
    side *s = user;
    if (ev == EPODE_CONN_DISCONNECTED) {
        const char *cond = epode_conn_condition(conn);
        s->ended = 1;
        s->reason = epode_conn_reason(conn);
        printf("disconnected %s reason=%s error=%s condition=%s text=%s\n", s->name,
               reason_name(s->reason), epode_err_name(epode_conn_error(conn)),
               cond && *cond ? cond : "-", epode_conn_error_text(conn));
        fflush(stdout);
        if (!s->peer->closing && !s->peer->ended) {
            s->peer->closing = 1; /* no point waiting: the run failed */
            epode_conn_close(s->peer->conn);
        }
        return;
    }
    if (ev != EPODE_CONN_READY)
        return;
    s->ready = 1;
    printf("ready %s %s\n", s->name, epode_conn_bound_jid(conn));
    fflush(stdout);
    epode_stanza_t *pres, *ping;
    int rc = epode_stanza_new_presence(NULL, NULL, NULL, &pres);
    if (rc == 0) {
        rc = epode_conn_send(conn, pres);
        epode_stanza_unref(pres);
    }
    if (rc == 0 && (rc = epode_stanza_new_iq(NULL, "get", NULL, &ping)) == 0) {
        const char *at = strchr(s->jid, '@');
        char domain[1024];
        bare_of(at ? at + 1 : s->jid, domain, sizeof domain);
        epode_stanza_set_to(ping, domain);
        rc = epode_stanza_add_child_new(ping, "ping", "urn:xmpp:ping", NULL);
        if (rc == 0)
            rc = epode_conn_send_iq(conn, ping, 10000, on_ping, s, NULL);
        epode_stanza_unref(ping);
    }
    if (rc < 0) {
        printf("setup-error %s %s\n", s->name, epode_err_name(rc));
        s->closing = 1;
        epode_conn_close(conn);
    }
}

static void check(int rc, const char *what)
{
    if (rc < 0) {
        printf("setup-error %s %s\n", what, epode_err_name(rc));
        exit(1);
    }
}

static void on_log(void *user, epode_log_level_t level, const char *area, const char *msg)
{
    (void)user, (void)level;
    fprintf(stderr, "[%s] %s\n", area, msg);
}

int main(int argc, char **argv)
{
    const char *server = NULL, *ca_file = NULL;
    unsigned port = 0;
    int direct_tls = 0, verbose = 0;
    long timeout_s = 30;
    side a = {.name = "A"}, b = {.name = "B"};
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i];
        int more = i + 1 < argc;
#define VAL() (more ? argv[++i] : (usage("option needs a value:", o), (char *)NULL))
        if (!strcmp(o, "--direct-tls")) direct_tls = 1;
        else if (!strcmp(o, "--verbose")) verbose = 1;
        else if (!strcmp(o, "--server")) server = VAL();
        else if (!strcmp(o, "--port")) {
            const char *v = VAL();
            char *end;
            long n = strtol(v, &end, 10);
            if (*end || n <= 0 || n > 65535)
                usage("bad port", v);
            port = (unsigned)n;
        } else if (!strcmp(o, "--ca-file")) ca_file = VAL();
        else if (!strcmp(o, "--jid1")) a.jid = VAL();
        else if (!strcmp(o, "--password1")) a.password = VAL();
        else if (!strcmp(o, "--jid2")) b.jid = VAL();
        else if (!strcmp(o, "--password2")) b.password = VAL();
        else if (!strcmp(o, "--count")) {
            const char *v = VAL();
            char *end;
            g_count = strtol(v, &end, 10);
            if (*end || g_count <= 0)
                usage("bad count", v);
        } else if (!strcmp(o, "--timeout")) {
            const char *v = VAL();
            char *end;
            timeout_s = strtol(v, &end, 10);
            if (*end || timeout_s <= 0)
                usage("bad timeout", v);
        } else usage("unknown argument", o);
#undef VAL
    }
    if (!a.jid || !a.password || !b.jid || !b.password)
        usage("--jid1, --password1, --jid2 and --password2 are required", NULL);
    a.peer = &b;
    b.peer = &a;

    check(epode_global_init(), "init");
    check(epode_ctx_new(NULL, &g_ctx), "ctx");
    if (verbose)
        epode_ctx_set_log(g_ctx, EPODE_LOG_DEBUG, on_log, NULL);
    side *sides[2] = {&a, &b};
    for (int k = 0; k < 2; k++) {
        side *s = sides[k];
        check(epode_conn_new(g_ctx, &s->conn), "conn");
        check(epode_conn_set_jid(s->conn, s->jid), "jid");
        check(epode_conn_set_password(s->conn, s->password), "password");
        if (server)
            check(epode_conn_set_server(s->conn, server, port), "server");
        if (direct_tls)
            check(epode_conn_set_tls(s->conn, EPODE_TLS_DIRECT), "tls");
        if (ca_file)
            check(epode_conn_set_ca_file(s->conn, ca_file), "ca-file");
        check(epode_conn_set_timeouts(s->conn, 5000, 20000), "timeouts");
        check(epode_conn_add_event_cb(s->conn, on_event, s, NULL), "event-cb");
        check(epode_conn_add_handler(s->conn, "message", NULL, NULL, on_message, s, NULL), "handler");
    }
    check(epode_conn_connect(a.conn), "connect A");
    check(epode_conn_connect(b.conn), "connect B");

    long t0 = now_ms(), deadline = t0 + timeout_s * 1000L;
    int timed_out = 0;
    while (!(a.ended && b.ended)) {
        long left = deadline - now_ms();
        if (left <= 0) {
            if (timed_out) {
                printf("stuck: no DISCONNECTED 3 s after close\n");
                break;
            }
            timed_out = 1;
            printf("timeout: A got %ld/%ld, B got %ld/%ld\n", a.got, g_count, b.got, g_count);
            for (int k = 0; k < 2; k++)
                if (!sides[k]->ended) {
                    sides[k]->closing = 1;
                    epode_conn_close(sides[k]->conn);
                }
            deadline = now_ms() + 3000;
            continue;
        }
        int rc = epode_ctx_run_once(g_ctx, (int)(left > 1000 ? 1000 : left));
        if (rc < 0) {
            printf("loop-error %s\n", epode_err_name(rc));
            break;
        }
    }
    long ms = now_ms() - t0;
    int ok = !timed_out;
    for (int k = 0; k < 2; k++) {
        side *s = sides[k];
        printf("received %s got=%ld dup=%ld out-of-order=%ld foreign=%ld\n", s->name, s->got, s->dup,
               s->out_of_order, s->foreign);
        ok = ok && s->ready && s->sent == g_count && s->got == g_count && s->dup == 0 &&
             s->out_of_order == 0 && s->foreign == 0 && s->ended && s->reason == EPODE_REASON_CLOSED;
        epode_conn_free(s->conn);
    }
    printf("elapsed-ms %ld\n", ms);
    if (epode_ctx_free(g_ctx) < 0) {
        printf("ctx-free-error\n");
        ok = 0;
    }
    printf("%s\n", ok ? "OK" : "FAILED");
    return ok ? 0 : 1;
}
