/* examples/component-echo.c — an XMPP component (XEP-0114) that echoes:
 * every message sent to anyone@DOMAIN comes back from that same JID with
 * the same body, and a presence probe to anyone@DOMAIN is answered
 * "available". The skeleton of a gateway: copy it, and replace the echo
 * with the other network.
 *
 *   component-echo --server HOST --port N --domain D --secret-file F
 *                  [--direct-tls] [--ca-file FILE] [--insecure-cleartext]
 *                  [--verbose]
 *
 * The server must know the component: Prosody's
 *   Component "comp.example.org"  component_secret = "..."
 * or ejabberd's listener `ejabberd_service` with `hosts: {D: {password}}`.
 * It reconnects after a cut until SIGINT or SIGTERM. Exits 0 after a clean
 * close, 1 with a one-line reason if the server refuses the component (a
 * wrong secret) or the first connection fails, 64 on bad usage. */
#include <epode.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *prog = "component-echo";

static const char usage_line[] =
    "usage: component-echo --server HOST --port N --domain D --secret-file F [--direct-tls]\n"
    "         [--ca-file FILE] [--insecure-cleartext] [--proxy URL] [--verbose]\n";

static void bad_usage(const char *fmt, const char *arg)
{
    fprintf(stderr, "%s: ", prog);
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n%s(%s --help lists every option)\n", usage_line, prog);
    exit(64);
}

static void help(void)
{
    printf("%s\n"
           "An XMPP component (XEP-0114) for the domain D: every message sent to\n"
           "anyone@D is answered from that JID with the same body, and presence probes\n"
           "to anyone@D are answered available. It reconnects after a cut.\n\n"
           "Options:\n"
           "  --server HOST          the XMPP server whose component port to use (required)\n"
           "  --port N               its component port (required; Prosody's default is 5347)\n"
           "  --domain D             the component's domain, as the server knows it (required)\n"
           "  --secret-file F        read the shared secret from the first line of F (required)\n"
           "  --direct-tls           TLS from the first byte (for a component port that offers\n"
           "                         it), verified against D\n"
           "  --ca-file FILE         with --direct-tls: trust the CAs in FILE (PEM)\n"
           "  --insecure-cleartext   allow a cleartext stream to a server that is not on this\n"
           "                         machine (the default allows cleartext to loopback only)\n"
           "  --proxy URL            reach the server through a proxy:\n"
           "                         socks5://[USER:PASS@]HOST[:PORT] (default port 1080) or\n"
           "                         http://[USER:PASS@]HOST[:PORT] (HTTP CONNECT, 8080);\n"
           "                         needs --direct-tls or --insecure-cleartext (a cleartext\n"
           "                         stream is allowed to loopback only, and where the proxy\n"
           "                         connects cannot be seen)\n"
           "  --verbose              print the XML traffic on stderr (the secret redacted)\n"
           "  --help                 print this help and exit\n"
           "  --version              print the version and exit\n\n"
           "Exit status: 0 after SIGINT or SIGTERM, 1 on failure (one line on stderr says\n"
           "why), 64 on bad usage.\n",
           usage_line);
    exit(fflush(stdout) == 0 ? 0 : 1);
}

static epode_ctx_t *volatile g_ctx;
static volatile sig_atomic_t g_stop;

static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
    epode_ctx_t *ctx = g_ctx;
    if (ctx)
        epode_ctx_wakeup(ctx); /* async-signal-safe */
}

/* A message to anyone@D: the same body back, from that JID. */
static int on_message(epode_conn_t *conn, epode_stanza_t *msg, void *user)
{
    (void)user;
    const char *body = epode_stanza_child_text(msg, "body", NULL);
    const char *from = epode_stanza_get_from(msg), *to = epode_stanza_get_to(msg);
    const char *type = epode_stanza_get_type(msg);
    if (!body || !from || !to || (type && strcmp(type, "error") == 0))
        return EPODE_PASS;
    epode_stanza_t *reply;
    if (epode_stanza_new_message(NULL, type ? type : "normal", from, body, &reply) == 0) {
        epode_stanza_set_from(reply, to); /* a component speaks for any JID of its domain */
        epode_conn_send(conn, reply);
        epode_stanza_unref(reply);
    }
    return EPODE_HANDLED;
}

/* A probe to anyone@D: they are there. */
static int on_probe(epode_conn_t *conn, epode_stanza_t *probe, void *user)
{
    (void)user;
    const char *from = epode_stanza_get_from(probe), *to = epode_stanza_get_to(probe);
    if (!from || !to)
        return EPODE_PASS;
    epode_stanza_t *pres;
    if (epode_stanza_new_presence(NULL, NULL, from, &pres) == 0) {
        epode_stanza_set_from(pres, to);
        epode_conn_send(conn, pres);
        epode_stanza_unref(pres);
    }
    return EPODE_HANDLED;
}

typedef struct state {
    int ever_ready, ended;
    char why[512];
} state;

static void on_event(epode_conn_t *conn, epode_conn_event_t ev, void *user)
{
    state *s = user;
    if (ev == EPODE_CONN_READY) {
        s->ever_ready = 1;
        fprintf(stderr, "%s: serving %s\n", prog, epode_conn_bound_jid(conn));
    } else if (ev == EPODE_CONN_DISCONNECTED) {
        if (epode_conn_will_reconnect(conn)) {
            fprintf(stderr, "%s: %s; reconnecting\n", prog, epode_conn_error_text(conn));
            return;
        }
        s->ended = 1;
        if (epode_conn_reason(conn) != EPODE_REASON_CLOSED)
            snprintf(s->why, sizeof s->why, "%s", epode_conn_error_text(conn));
    }
}

static void on_log(void *user, epode_log_level_t level, const char *area, const char *msg)
{
    (void)user;
    if (level == EPODE_LOG_XML)
        fprintf(stderr, "%s %s\n", strcmp(area, "xml-out") == 0 ? "SEND" : "RECV", msg);
    else
        fprintf(stderr, "[%s] %s\n", area, msg);
}

static void check(int rc, const char *what)
{
    if (rc < 0) {
        fprintf(stderr, "%s: %s: %s\n", prog, what, epode_strerror(rc));
        exit(1);
    }
}

int main(int argc, char **argv)
{
    const char *server = NULL, *domain = NULL, *secret_file = NULL, *ca_file = NULL;
    const char *proxy = NULL;
    unsigned port = 0;
    int direct_tls = 0, cleartext = 0, verbose = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has_val = i + 1 < argc;
        if (!strcmp(a, "--help")) help();
        else if (!strcmp(a, "--version")) {
            printf("%s (epode %s)\n", prog, epode_version());
            return fflush(stdout) == 0 ? 0 : 1;
        } else if (!strcmp(a, "--direct-tls")) direct_tls = 1;
        else if (!strcmp(a, "--insecure-cleartext")) cleartext = 1;
        else if (!strcmp(a, "--verbose")) verbose = 1;
        else if (strncmp(a, "--", 2) != 0) bad_usage("unexpected argument %s", a);
        else if (!has_val) bad_usage("option %s needs a value (or is unknown)", a);
        else if (!strcmp(a, "--server")) server = argv[++i];
        else if (!strcmp(a, "--domain")) domain = argv[++i];
        else if (!strcmp(a, "--secret-file")) secret_file = argv[++i];
        else if (!strcmp(a, "--ca-file")) ca_file = argv[++i];
        else if (!strcmp(a, "--proxy")) {
            proxy = argv[++i];
            if (strncmp(proxy, "socks5://", 9) && strncmp(proxy, "socks5h://", 10) &&
                strncmp(proxy, "http://", 7))
                bad_usage("bad --proxy %s (socks5://HOST:PORT or http://HOST:PORT)", "URL");
        }
        else if (!strcmp(a, "--port")) {
            char *end;
            long p = strtol(argv[++i], &end, 10);
            if (*end || p <= 0 || p > 65535) bad_usage("bad port %s", argv[i]);
            port = (unsigned)p;
        } else bad_usage("unknown option %s", a);
    }
    if (!server) bad_usage("%s", "--server is required");
    if (!port) bad_usage("%s", "--port is required");
    if (!domain) bad_usage("%s", "--domain is required");
    if (!secret_file) bad_usage("%s", "--secret-file is required");
    if (direct_tls && cleartext) bad_usage("%s", "--direct-tls and --insecure-cleartext contradict");

    char secret[1024];
    FILE *f = fopen(secret_file, "r");
    if (!f) {
        fprintf(stderr, "%s: cannot read %s: %s\n", prog, secret_file, strerror(errno));
        return 1;
    }
    if (!fgets(secret, sizeof secret, f))
        secret[0] = '\0';
    fclose(f);
    secret[strcspn(secret, "\r\n")] = '\0';

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    epode_ctx_t *ctx;
    epode_conn_t *conn;
    check(epode_global_init(), "initialization");
    check(epode_ctx_new(NULL, &ctx), "context");
    g_ctx = ctx;
    if (verbose)
        epode_ctx_set_log(ctx, EPODE_LOG_XML, on_log, NULL);
    check(epode_conn_new(ctx, &conn), "connection");
    int rc = epode_conn_set_component(conn, domain, secret);
    explicit_bzero(secret, sizeof secret); /* epode keeps its own copy, wiped */
    if (rc == EPODE_EJID)
        bad_usage("not a component domain: %s", domain);
    if (rc == EPODE_EINVAL) {
        fprintf(stderr, "%s: the secret file %s is empty\n", prog, secret_file);
        return 1;
    }
    check(rc, "component");
    check(epode_conn_set_server(conn, server, port), "server");
    if (direct_tls)
        check(epode_conn_set_tls(conn, EPODE_TLS_DIRECT), "TLS mode");
    else if (cleartext)
        check(epode_conn_set_tls(conn, EPODE_TLS_DISABLED), "TLS mode");
    if (ca_file)
        check(epode_conn_set_ca_file(conn, ca_file), "CA file");
    if (proxy && epode_conn_set_proxy(conn, proxy) < 0) {
        /* the URL itself is not repeated: it may hold a password */
        fprintf(stderr, "%s: bad --proxy URL (socks5://[USER:PASS@]HOST[:PORT] or "
                        "http://[USER:PASS@]HOST[:PORT])\n", prog);
        return 64;
    }
    check(epode_conn_set_reconnect(conn, 1, 1000, 30000), "reconnection");

    state s = {0};
    check(epode_conn_add_event_cb(conn, on_event, &s, NULL), "events");
    check(epode_conn_add_handler(conn, "message", NULL, NULL, on_message, NULL, NULL), "handler");
    check(epode_conn_add_handler(conn, "presence", NULL, "probe", on_probe, NULL, NULL), "handler");
    check(epode_conn_connect(conn), "connect");

    int closing = 0;
    while (!s.ended) {
        if (g_stop && !closing) {
            closing = 1; /* DISCONNECTED follows the server's answer (or 5 s) */
            if (epode_conn_close(conn) < 0)
                break;
        }
        if (epode_ctx_run_once(ctx, -1) < 0)
            break;
    }
    epode_conn_free(conn);
    g_ctx = NULL;
    epode_ctx_free(ctx);
    if (s.why[0]) {
        fprintf(stderr, "%s: %s\n", prog, s.why);
        return 1;
    }
    return 0;
}
