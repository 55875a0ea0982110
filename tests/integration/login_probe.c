/* tests/integration/login_probe.c — logs in once with the options given and
 * prints what happened, one line per fact, for the integration tests:
 *
 *   event CONNECTING | event TLS_UP | event AUTHENTICATED
 *   cert-callback REASON
 *   ready FULLJID
 *   security SECURITY-LINE
 *   message FROM BODY              (newlines in BODY printed as \n)
 *   disconnected reason=NAME error=ERRNAME condition=COND|- text=TEXT
 *   redirect HOST                  (with a see-other-host stream error)
 *
 *   login_probe [--server HOST] [--port N] [--direct-tls] [--ca-file FILE]
 *               --jid JID (--password P | --password-file F)
 *               [--sasl "MECH ..."] [--tls-max 1.2|1.3]
 *               [--accept-untrusted | --refuse-untrusted]
 *               [--send TO BODY] [--expect-from BAREJID] [--presence]
 *               [--timeout SECONDS] [--verbose] [--dns ADDR] [--proxy URL]
 *               [--websocket URL] [--bosh URL] [--reply]
 *
 * Once READY it sends initial presence (--presence), then the message
 * (--send), then waits for a chat message from --expect-from; then it
 * closes the stream. With --reply the message is sent only once the
 * expected one has arrived (so a test can order two probes without
 * sleeping: the second starts after the first printed "ready", which is
 * printed after its presence was sent). Exit 0 if READY was reached, the expected message
 * arrived and the connection then ended with reason CLOSED; else 1.
 * Bad arguments: exit 64. Uses only the public API. */
#include <epode.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct probe {
    const char *server;
    const char *dns; /* --dns: DNS servers for SRV lookups (tests) */
    const char *proxy; /* --proxy URL */
    const char *websocket; /* --websocket URL (RFC 7395) */
    const char *bosh; /* --bosh URL (XEP-0124/0206) */
    unsigned port;
    int direct_tls;
    const char *ca_file;
    const char *jid;
    char password[1024];
    int have_password;
    const char *sasl;
    int tls_max;
    int cert_cb; /* 0 none, 1 accept, -1 refuse */
    const char *send_to, *send_body;
    const char *expect_from;
    int presence;
    long timeout_s;
    int verbose;

    epode_ctx_t *ctx;
    int ready;      /* READY seen */
    int got;        /* expected message arrived */
    int sent;       /* --send done */
    int reply;      /* --reply: send once the expected message arrived */
    int ended;      /* DISCONNECTED seen */
    int closing;    /* we asked to close */
    epode_disconnect_reason_t reason;
} probe;

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static void usage(const char *why, const char *arg)
{
    fprintf(stderr, "login_probe: %s%s%s\n", why, arg ? " " : "", arg ? arg : "");
    fprintf(stderr, "usage: login_probe [--server HOST] [--port N] [--direct-tls] [--ca-file FILE]\n"
                    "       --jid JID (--password P | --password-file F) [--sasl MECHS]\n"
                    "       [--tls-max 1.2|1.3] [--accept-untrusted|--refuse-untrusted]\n"
                    "       [--send TO BODY] [--expect-from JID] [--presence] [--reply] [--timeout S]\n"
                    "       [--verbose]\n");
    exit(64);
}

static const char *reason_name(epode_disconnect_reason_t r)
{
    switch (r) {
    case EPODE_REASON_NONE: return "NONE";
    case EPODE_REASON_CLOSED: return "CLOSED";
    case EPODE_REASON_NETWORK: return "NETWORK";
    case EPODE_REASON_TLS: return "TLS";
    case EPODE_REASON_AUTH: return "AUTH";
    case EPODE_REASON_STREAM_ERROR: return "STREAM_ERROR";
    case EPODE_REASON_PROTOCOL: return "PROTOCOL";
    case EPODE_REASON_TIMEOUT: return "TIMEOUT";
    }
    return "UNKNOWN";
}

static const char *event_name(epode_conn_event_t ev)
{
    switch (ev) {
    case EPODE_CONN_CONNECTING: return "CONNECTING";
    case EPODE_CONN_TLS_UP: return "TLS_UP";
    case EPODE_CONN_AUTHENTICATED: return "AUTHENTICATED";
    case EPODE_CONN_READY: return "READY";
    case EPODE_CONN_DISCONNECTED: return "DISCONNECTED";
    case EPODE_CONN_RESUMED: return "RESUMED";
    case EPODE_CONN_FREED: return "FREED";
    case EPODE_CONN_DRAINED: return "DRAINED";
    }
    return "UNKNOWN";
}

/* Prints s on one line: newlines and backslashes escaped. */
static void print_oneline(const char *s)
{
    for (; *s; s++) {
        if (*s == '\n')
            fputs("\\n", stdout);
        else if (*s == '\r')
            fputs("\\r", stdout);
        else if (*s == '\\')
            fputs("\\\\", stdout);
        else
            putchar(*s);
    }
}

static void on_log(void *user, epode_log_level_t level, const char *area, const char *msg)
{
    (void)user;
    (void)level;
    fprintf(stderr, "[%s] %s\n", area, msg);
}

static int on_cert(epode_conn_t *conn, const char *reason, const unsigned char *der, size_t der_len,
                   void *user)
{
    (void)conn;
    probe *p = user;
    printf("cert-callback %s (der %zu bytes%s)\n", reason ? reason : "(null)", der_len,
           der && der_len ? "" : ", missing");
    fflush(stdout);
    return p->cert_cb > 0 ? 1 : 0;
}

static int send_message(epode_conn_t *conn, probe *p)
{
    epode_stanza_t *msg;
    int rc = epode_stanza_new_message(NULL, "chat", p->send_to, p->send_body, &msg);
    if (rc == 0) {
        rc = epode_conn_send(conn, msg);
        epode_stanza_unref(msg);
    }
    if (rc < 0)
        fprintf(stderr, "login_probe: send: %s\n", epode_strerror(rc));
    else
        p->sent = 1;
    return rc;
}

static void maybe_finish(epode_conn_t *conn, probe *p)
{
    if (p->closing || !p->ready)
        return;
    if (p->expect_from && !p->got)
        return;
    p->closing = 1;
    epode_conn_close(conn);
}

static int on_message(epode_conn_t *conn, epode_stanza_t *st, void *user)
{
    probe *p = user;
    const char *body = epode_stanza_child_text(st, "body", NULL);
    const char *from = epode_stanza_get_from(st);
    if (!body)
        return EPODE_PASS;
    printf("message %s ", from ? from : "-");
    print_oneline(body);
    putchar('\n');
    fflush(stdout);
    if (p->expect_from && from && epode_jid_str_equal(from, p->expect_from, 1) == 1) {
        p->got = 1;
        if (p->reply && p->send_to && !p->sent && send_message(conn, p) < 0) {
            p->closing = 1;
            epode_conn_close(conn);
            return EPODE_HANDLED;
        }
        maybe_finish(conn, p);
    }
    return EPODE_HANDLED;
}

static void on_event(epode_conn_t *conn, epode_conn_event_t ev, void *user)
{
    probe *p = user;
    if (ev == EPODE_CONN_DISCONNECTED) {
        const char *cond = epode_conn_condition(conn);
        p->reason = epode_conn_reason(conn);
        printf("disconnected reason=%s error=%s condition=%s text=", reason_name(p->reason),
               epode_err_name(epode_conn_error(conn)), cond && *cond ? cond : "-");
        print_oneline(epode_conn_error_text(conn));
        putchar('\n');
        if (epode_conn_redirect(conn))
            printf("redirect %s\n", epode_conn_redirect(conn));
        fflush(stdout);
        p->ended = 1;
        epode_ctx_stop(p->ctx);
        return;
    }
    if (ev == EPODE_CONN_FREED)
        return; /* the probe frees its connection: not a fact about the login */
    if (ev != EPODE_CONN_READY) {
        printf("event %s\n", event_name(ev));
        fflush(stdout);
        return;
    }
    p->ready = 1;
    int rc = 0;
    if (p->presence) {
        epode_stanza_t *pres;
        rc = epode_stanza_new_presence(NULL, NULL, NULL, &pres);
        if (rc == 0) {
            rc = epode_conn_send(conn, pres);
            epode_stanza_unref(pres);
        }
        if (rc < 0)
            fprintf(stderr, "login_probe: presence: %s\n", epode_strerror(rc));
    }
    /* "ready" after the presence went out: a test may start its peer on it */
    const char *sec = epode_conn_security(conn);
    printf("ready %s\n", epode_conn_bound_jid(conn) ? epode_conn_bound_jid(conn) : "(null)");
    printf("security %s\n", sec ? sec : "(null)");
    fflush(stdout);
    if (rc == 0 && p->send_to && !p->reply)
        rc = send_message(conn, p);
    if (rc < 0) {
        p->closing = 1;
        epode_conn_close(conn);
        return;
    }
    maybe_finish(conn, p);
}

static void parse(probe *p, int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int more = i + 1 < argc;
#define VAL() (more ? argv[++i] : (usage("option needs a value:", a), (char *)NULL))
        if (!strcmp(a, "--direct-tls")) p->direct_tls = 1;
        else if (!strcmp(a, "--accept-untrusted")) p->cert_cb = 1;
        else if (!strcmp(a, "--refuse-untrusted")) p->cert_cb = -1;
        else if (!strcmp(a, "--presence")) p->presence = 1;
        else if (!strcmp(a, "--verbose")) p->verbose = 1;
        else if (!strcmp(a, "--server")) p->server = VAL();
        else if (!strcmp(a, "--dns")) p->dns = VAL();
        else if (!strcmp(a, "--proxy")) p->proxy = VAL();
        else if (!strcmp(a, "--websocket")) p->websocket = VAL();
        else if (!strcmp(a, "--bosh")) p->bosh = VAL();
        else if (!strcmp(a, "--port")) {
            const char *v = VAL();
            char *end;
            long n = strtol(v, &end, 10);
            if (*end || n <= 0 || n > 65535)
                usage("bad port", v);
            p->port = (unsigned)n;
        } else if (!strcmp(a, "--ca-file")) p->ca_file = VAL();
        else if (!strcmp(a, "--jid")) p->jid = VAL();
        else if (!strcmp(a, "--password")) {
            snprintf(p->password, sizeof p->password, "%s", VAL());
            p->have_password = 1;
        } else if (!strcmp(a, "--password-file")) {
            const char *path = VAL();
            FILE *f = fopen(path, "r");
            if (!f)
                usage("cannot read", path);
            if (!fgets(p->password, sizeof p->password, f))
                p->password[0] = '\0';
            fclose(f);
            p->password[strcspn(p->password, "\r\n")] = '\0';
            p->have_password = 1;
        } else if (!strcmp(a, "--sasl")) p->sasl = VAL();
        else if (!strcmp(a, "--tls-max")) {
            const char *v = VAL();
            if (!strcmp(v, "1.2")) p->tls_max = 12;
            else if (!strcmp(v, "1.3")) p->tls_max = 13;
            else usage("bad --tls-max (1.2 or 1.3):", v);
        } else if (!strcmp(a, "--send")) {
            if (i + 2 >= argc)
                usage("--send needs TO and BODY", NULL);
            p->send_to = argv[++i];
            p->send_body = argv[++i];
        } else if (!strcmp(a, "--expect-from")) p->expect_from = VAL();
        else if (!strcmp(a, "--reply")) p->reply = 1;
        else if (!strcmp(a, "--timeout")) {
            const char *v = VAL();
            char *end;
            p->timeout_s = strtol(v, &end, 10);
            if (*end || p->timeout_s <= 0)
                usage("bad timeout", v);
        } else usage("unknown argument", a);
#undef VAL
    }
    if (!p->jid)
        usage("--jid is required", NULL);
    if (!p->have_password)
        usage("--password or --password-file is required", NULL);
}

static void check(int rc, const char *what)
{
    if (rc < 0) {
        printf("setup-error %s %s\n", what, epode_err_name(rc));
        fprintf(stderr, "login_probe: %s: %s\n", what, epode_strerror(rc));
        exit(1);
    }
}

int main(int argc, char **argv)
{
    probe p;
    memset(&p, 0, sizeof p);
    p.timeout_s = 20;
    parse(&p, argc, argv);

    check(epode_global_init(), "init");
    check(epode_ctx_new(NULL, &p.ctx), "ctx");
    if (p.dns)
        check(epode_ctx_set_dns_servers(p.ctx, p.dns), "dns");
    if (p.verbose)
        epode_ctx_set_log(p.ctx, EPODE_LOG_XML, on_log, NULL);
    epode_conn_t *conn;
    check(epode_conn_new(p.ctx, &conn), "conn");
    check(epode_conn_set_jid(conn, p.jid), "jid");
    check(epode_conn_set_password(conn, p.password), "password");
    if (p.server)
        check(epode_conn_set_server(conn, p.server, p.port), "server");
    if (p.direct_tls)
        check(epode_conn_set_tls(conn, EPODE_TLS_DIRECT), "tls");
    if (p.proxy)
        check(epode_conn_set_proxy(conn, p.proxy), "proxy");
    if (p.websocket)
        check(epode_conn_set_websocket(conn, p.websocket), "websocket");
    if (p.bosh)
        check(epode_conn_set_bosh(conn, p.bosh), "bosh");
    if (p.ca_file)
        check(epode_conn_set_ca_file(conn, p.ca_file), "ca-file");
    if (p.sasl)
        check(epode_conn_set_mechanisms(conn, p.sasl), "sasl");
    if (p.tls_max)
        check(epode_conn_set_tls_max_version(conn, p.tls_max), "tls-max");
    if (p.cert_cb)
        check(epode_conn_set_cert_cb(conn, on_cert, &p), "cert-cb");
    check(epode_conn_set_timeouts(conn, 5000, (unsigned)p.timeout_s * 1000u), "timeouts");
    check(epode_conn_add_event_cb(conn, on_event, &p, NULL), "event-cb");
    check(epode_conn_add_handler(conn, "message", NULL, NULL, on_message, &p, NULL), "handler");
    check(epode_conn_connect(conn), "connect");

    /* epode's login timeout is --timeout; our own overall deadline is 3 s
     * later (so a login timeout is epode's to report): once it passes we
     * close, and if even that does not end it within 3 s, we give up. */
    long deadline = now_ms() + p.timeout_s * 1000L + 3000;
    int timed_out = 0;
    while (!p.ended) {
        long left = deadline - now_ms();
        if (left <= 0) {
            if (!timed_out) {
                timed_out = 1;
                printf("timeout waiting (ready=%d expected-message=%d)\n", p.ready, p.got);
                fflush(stdout);
                p.closing = 1;
                epode_conn_close(conn);
                deadline = now_ms() + 3000;
                continue;
            }
            printf("stuck: no DISCONNECTED 3 s after close\n");
            break;
        }
        int rc = epode_ctx_run_once(p.ctx, (int)(left > 1000 ? 1000 : left));
        if (rc < 0) {
            printf("loop-error %s\n", epode_err_name(rc));
            break;
        }
    }
    epode_conn_free(conn);
    int free_rc = epode_ctx_free(p.ctx);
    if (free_rc < 0)
        printf("ctx-free-error %s\n", epode_err_name(free_rc));
    fflush(stdout);

    int ok = p.ready && !timed_out && p.ended && p.reason == EPODE_REASON_CLOSED &&
             (!p.expect_from || p.got) && (!p.send_to || p.sent) && free_rc == 0;
    return ok ? 0 : 1;
}
