/* examples/common/cli.h — the connection options every example accepts,
 * parsed once for all of them:
 *   --server HOST  --port N  --direct-tls  --ca-file FILE  --jid JID
 *   --password-file FILE  --verbose
 * plus a few for testing and unusual set-ups:
 *   --sasl "MECH MECH…"  --tls-max 1.2|1.3  --insecure-no-verify
 *   --timeout SECONDS  --proxy URL  --websocket URL  --bosh URL
 * Each example adds its own arguments after these. */
#ifndef EXAMPLES_CLI_H
#define EXAMPLES_CLI_H

#include <epode.h>

typedef struct cli {
    const char *server;
    unsigned port;
    int direct_tls;
    const char *ca_file;
    const char *jid;
    const char *password_file;
    int verbose;
    const char *sasl;
    int tls_max;
    int no_verify;
    unsigned timeout_s;
    const char *proxy; /* --proxy socks5://[user:pass@]host:port or http://… */
    const char *websocket; /* --websocket wss://host[:port]/path or ws://… */
    const char *bosh;      /* --bosh https://host[:port]/path or http://… */
    /* the program's own arguments (after the options) */
    int argc;
    char **argv;
    char password[1024];
} cli_t;

/* Parses argv; on a bad option prints "PROG: reason" and usage, then
 * exits 64. `usage` is the program's own synopsis line. --help prints
 * the usage, what the program does and every option on stdout and exits
 * 0; --version prints "PROG (epode VERSION)" and exits 0. */
void cli_parse(cli_t *o, int argc, char **argv, const char *usage);

/* What --help says besides the shared options: `about` (what the program
 * does, one paragraph) and `options` (the program's own options and
 * arguments, one "  --name ARG   text" line each, or NULL). Call before
 * cli_parse(); both are kept by pointer. */
void cli_set_help(const char *about, const char *options);

/* Makes a context and a connection configured from the options (JID,
 * password, server, TLS, CA, SASL, logging). Exits 1 with a one-line
 * reason on failure. */
void cli_connect_setup(const cli_t *o, epode_ctx_t **ctx, epode_conn_t **conn);

/* Makes SIGINT and SIGTERM ask the program to stop: they set a flag and
 * wake the loop of the context cli_connect_setup() makes (so call this
 * first: a signal during set-up is not lost). */
void cli_catch_signals(void);
/* 1 once SIGINT or SIGTERM has arrived. */
int cli_stop_requested(void);

/* One line describing why a connection ended ("authentication failed
 * (not-authorized)"), for the examples' error messages. */
const char *cli_reason(epode_conn_t *conn);

#endif
