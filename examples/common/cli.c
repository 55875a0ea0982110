/* examples/common/cli.c — option parsing and connection set-up shared by
 * the examples, so each example is only what it is for. */
#include "cli.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *prog = "epode-example";

/* ---- signals --------------------------------------------------------------- */

static epode_ctx_t *volatile signal_ctx;
static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
    epode_ctx_t *ctx = signal_ctx;
    if (ctx)
        epode_ctx_wakeup(ctx); /* a write(2) to an eventfd: async-signal-safe */
}

void cli_catch_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

int cli_stop_requested(void)
{
    return stop_requested;
}

static const char *help_about, *help_options;

void cli_set_help(const char *about, const char *options)
{
    help_about = about;
    help_options = options;
}

static void die_usage(const char *usage, const char *fmt, const char *arg)
{
    fprintf(stderr, "%s: ", prog);
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\nusage: %s [--server HOST] [--port N] [--direct-tls] [--ca-file FILE]\n"
                    "       --jid JID --password-file FILE [--verbose] %s\n"
                    "(%s --help lists every option)\n", prog, usage, prog);
    exit(64);
}

/* --help: every option cli_parse() accepts, then the program's own. */
static void help(const char *usage)
{
    printf("usage: %s [OPTIONS] --jid JID --password-file FILE %s\n\n", prog, usage);
    if (help_about)
        printf("%s\n\n", help_about);
    printf("Connection options:\n"
           "  --jid JID              the account to log in as (required)\n"
           "  --password-file FILE   read the password from the first line of FILE (required)\n"
           "  --server HOST          connect to HOST instead of looking up the JID's\n"
           "                         domain in DNS (SRV); certificates are still checked\n"
           "                         against the JID's domain\n"
           "  --port N               the port with --server (default 5222, 5223 with\n"
           "                         --direct-tls)\n"
           "  --direct-tls           TLS from the first byte (XEP-0368) instead of STARTTLS\n"
           "  --ca-file FILE         trust the CAs in FILE (PEM) instead of the system store\n"
           "  --sasl \"MECH ...\"      allow only these SASL mechanisms, in this order\n"
           "                         (e.g. \"SCRAM-SHA-256 SCRAM-SHA-1\")\n"
           "  --tls-max 1.2|1.3      highest TLS version to offer (default 1.3)\n"
           "  --insecure-no-verify   do not verify the server's certificate (dangerous:\n"
           "                         anyone on the path can impersonate the server)\n"
           "  --timeout SECONDS      time allowed to log in (default 30)\n"
           "  --proxy URL            reach the server through a proxy:\n"
           "                         socks5://[USER:PASS@]HOST[:PORT] (default port 1080;\n"
           "                         the proxy resolves the server's name: no DNS query\n"
           "                         for the XMPP domain, not even SRV) or\n"
           "                         http://[USER:PASS@]HOST[:PORT] (HTTP CONNECT, 8080)\n"
           "  --websocket URL        XMPP over WebSocket (RFC 7395) instead of TCP:\n"
           "                         wss://HOST[:PORT]/PATH (TLS, checked for HOST and the\n"
           "                         JID's domain) or ws://... (no TLS: loopback only)\n"
           "  --bosh URL             XMPP over BOSH (XEP-0124/0206, HTTP requests) instead\n"
           "                         of TCP: https://HOST[:PORT]/PATH (TLS, checked for\n"
           "                         HOST and the JID's domain) or http://... (no TLS:\n"
           "                         loopback only); not with --websocket\n"
           "  --verbose              print the XML traffic on stderr (credentials redacted)\n"
           "  --help                 print this help and exit\n"
           "  --version              print the version and exit\n"
           "  --                     end of options\n");
    if (help_options)
        printf("\n%s options and arguments:\n%s", prog, help_options);
    printf("\nExit status: 0 on success, 1 on failure (one line on stderr says why),\n"
           "64 on bad usage.\n");
    exit(fflush(stdout) == 0 ? 0 : 1);
}

void cli_parse(cli_t *o, int argc, char **argv, const char *usage)
{
    memset(o, 0, sizeof *o);
    const char *slash = strrchr(argv[0], '/');
    prog = slash ? slash + 1 : argv[0];
    o->timeout_s = 30;
    int i = 1;
    for (; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--") == 0) {
            i++;
            break;
        }
        if (strncmp(a, "--", 2) != 0)
            break;
        int has_val = i + 1 < argc;
        if (!strcmp(a, "--direct-tls")) o->direct_tls = 1;
        else if (!strcmp(a, "--verbose")) o->verbose = 1;
        else if (!strcmp(a, "--insecure-no-verify")) o->no_verify = 1;
        else if (!strcmp(a, "--help")) help(usage);
        else if (!strcmp(a, "--version")) {
            printf("%s (epode %s)\n", prog, epode_version());
            exit(fflush(stdout) == 0 ? 0 : 1);
        }
        else if (!has_val) die_usage(usage, "option %s needs a value (or is unknown)", a);
        else if (!strcmp(a, "--server")) o->server = argv[++i];
        else if (!strcmp(a, "--port")) {
            char *end;
            long p = strtol(argv[++i], &end, 10);
            if (*end || p <= 0 || p > 65535) die_usage(usage, "bad port %s", argv[i]);
            o->port = (unsigned)p;
        } else if (!strcmp(a, "--ca-file")) o->ca_file = argv[++i];
        else if (!strcmp(a, "--proxy")) {
            o->proxy = argv[++i];
            if (strncmp(o->proxy, "socks5://", 9) && strncmp(o->proxy, "socks5h://", 10) &&
                strncmp(o->proxy, "http://", 7))
                die_usage(usage, "bad --proxy %s (socks5://HOST:PORT or http://HOST:PORT)",
                          "URL");
        }
        else if (!strcmp(a, "--websocket")) {
            o->websocket = argv[++i];
            if (strncasecmp(o->websocket, "wss://", 6) && strncasecmp(o->websocket, "ws://", 5))
                die_usage(usage, "bad --websocket %s (wss://HOST[:PORT]/PATH or ws://...)",
                          o->websocket);
        }
        else if (!strcmp(a, "--bosh")) {
            o->bosh = argv[++i];
            if (strncasecmp(o->bosh, "https://", 8) && strncasecmp(o->bosh, "http://", 7))
                die_usage(usage, "bad --bosh %s (https://HOST[:PORT]/PATH or http://...)",
                          o->bosh);
        }
        else if (!strcmp(a, "--jid")) o->jid = argv[++i];
        else if (!strcmp(a, "--password-file")) o->password_file = argv[++i];
        else if (!strcmp(a, "--sasl")) o->sasl = argv[++i];
        else if (!strcmp(a, "--tls-max")) {
            const char *v = argv[++i];
            if (!strcmp(v, "1.2")) o->tls_max = 12;
            else if (!strcmp(v, "1.3")) o->tls_max = 13;
            else die_usage(usage, "bad --tls-max %s (1.2 or 1.3)", v);
        } else if (!strcmp(a, "--timeout")) {
            char *end;
            long t = strtol(argv[++i], &end, 10);
            if (*end || t <= 0 || t > 86400) die_usage(usage, "bad timeout %s", argv[i]);
            o->timeout_s = (unsigned)t;
        } else die_usage(usage, "unknown option %s", a);
    }
    o->argc = argc - i;
    o->argv = argv + i;
    if (o->websocket && o->bosh)
        die_usage(usage, "%s", "--websocket and --bosh exclude each other");
    if (!o->jid)
        die_usage(usage, "%s", "--jid is required");
    if (epode_jid_validate(o->jid) < 0)
        die_usage(usage, "not a valid JID: %s", o->jid);
    if (!o->password_file)
        die_usage(usage, "%s", "--password-file is required");
    FILE *f = fopen(o->password_file, "r");
    if (!f) {
        fprintf(stderr, "%s: cannot read %s: %s\n", prog, o->password_file, strerror(errno));
        exit(1);
    }
    if (!fgets(o->password, sizeof o->password, f))
        o->password[0] = '\0';
    fclose(f);
    o->password[strcspn(o->password, "\r\n")] = '\0';
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

/* "CA file /x/ca.pem (missing, unreadable, or no PEM in it)": what a
 * refused TLS file is, for check()'s message (the library only logs it). */
static const char *tls_file_what(const char *kind, const char *path)
{
    static char buf[600];
    snprintf(buf, sizeof buf, "%s %s (missing, unreadable, or no PEM in it)", kind, path);
    return buf;
}

void cli_connect_setup(const cli_t *o, epode_ctx_t **ctx, epode_conn_t **conn)
{
    check(epode_global_init(), "initialization");
    check(epode_ctx_new(NULL, ctx), "context");
    signal_ctx = *ctx;
    if (o->verbose)
        epode_ctx_set_log(*ctx, EPODE_LOG_XML, on_log, NULL);
    check(epode_conn_new(*ctx, conn), "connection");
    check(epode_conn_set_jid(*conn, o->jid), "JID");
    check(epode_conn_set_password(*conn, o->password), "password");
    if (o->server)
        check(epode_conn_set_server(*conn, o->server, o->port), "server");
    if (o->direct_tls)
        check(epode_conn_set_tls(*conn, EPODE_TLS_DIRECT), "TLS mode");
    if (o->ca_file)
        check(epode_conn_set_ca_file(*conn, o->ca_file), tls_file_what("CA file", o->ca_file));
    if (o->sasl)
        check(epode_conn_set_mechanisms(*conn, o->sasl), "SASL mechanisms");
    if (o->tls_max)
        check(epode_conn_set_tls_max_version(*conn, o->tls_max), "TLS version");
    if (o->no_verify)
        check(epode_conn_set_verify(*conn, 0), "verification");
    if (o->proxy && epode_conn_set_proxy(*conn, o->proxy) < 0) {
        /* the URL itself is not repeated: it may hold a password */
        fprintf(stderr, "%s: bad --proxy URL (socks5://[USER:PASS@]HOST[:PORT] or "
                        "http://[USER:PASS@]HOST[:PORT], port 1-65535)\n", prog);
        exit(64);
    }
    if (o->websocket) {
        int rc = epode_conn_set_websocket(*conn, o->websocket);
        if (rc == EPODE_ENOTSUP) {
            fprintf(stderr, "%s: --websocket: this epode was built without WebSocket support\n",
                    prog);
            exit(1);
        }
        if (rc < 0) {
            fprintf(stderr, "%s: bad --websocket URL %s (wss://HOST[:PORT]/PATH or ws://...)\n",
                    prog, o->websocket);
            exit(64);
        }
    }
    if (o->bosh) {
        int rc = epode_conn_set_bosh(*conn, o->bosh);
        if (rc == EPODE_ENOTSUP) {
            fprintf(stderr, "%s: --bosh: this epode was built without BOSH support (libcurl)\n",
                    prog);
            exit(1);
        }
        if (rc < 0) {
            fprintf(stderr, "%s: bad --bosh URL %s (https://HOST[:PORT]/PATH or http://...)\n",
                    prog, o->bosh);
            exit(64);
        }
    }
    check(epode_conn_set_timeouts(*conn, 10000, o->timeout_s * 1000), "timeouts");
}

const char *cli_reason(epode_conn_t *conn)
{
    return epode_conn_error_text(conn);
}
