/* examples/echo-bot.c — logs in, says it is available, and answers every
 * chat message with the same body until SIGINT or SIGTERM, then closes
 * the stream cleanly. Like a well-behaved client it also accepts
 * subscription requests (and asks back), answers service discovery,
 * advertises entity capabilities, and answers pings and version queries —
 * each a few lines with epode's helpers.
 *
 *   echo-bot [--server HOST] [--port N] [--direct-tls] [--ca-file FILE]
 *            --jid JID --password-file FILE [--verbose]
 *
 * Exits 0 after a clean close, 1 with a one-line reason if the connection
 * fails or drops. */
#include <epode.h>

#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "common/cli.h"

static epode_ctx_t *g_ctx;

static int on_chat(epode_conn_t *conn, epode_stanza_t *msg, void *user)
{
    (void)user;
    const char *body = epode_stanza_child_text(msg, "body", NULL);
    const char *from = epode_stanza_get_from(msg);
    if (!body || !from)
        return EPODE_PASS; /* chat states and the like */
    epode_stanza_t *reply;
    if (epode_stanza_new_message(NULL, "chat", from, body, &reply) == 0) {
        const char *thread = epode_stanza_child_text(msg, "thread", NULL);
        epode_stanza_t *t;
        if (thread && epode_stanza_add_child_new(reply, "thread", NULL, &t) == 0)
            epode_stanza_add_text(t, thread, (size_t)-1);
        epode_conn_send(conn, reply);
        epode_stanza_unref(reply);
    }
    return EPODE_HANDLED;
}

typedef struct state {
    int ready_once;
    int disconnected;
    int failed;
    char why[512];
} state;

static void on_event(epode_conn_t *conn, epode_conn_event_t ev, void *user)
{
    state *s = user;
    if (ev == EPODE_CONN_READY) {
        s->ready_once = 1;
        epode_stanza_t *pres;
        if (epode_stanza_new_presence(NULL, NULL, NULL, &pres) == 0) {
            epode_conn_send(conn, pres);
            epode_stanza_unref(pres);
        }
    } else if (ev == EPODE_CONN_DISCONNECTED) {
        s->disconnected = 1;
        if (epode_conn_reason(conn) != EPODE_REASON_CLOSED) {
            s->failed = 1;
            snprintf(s->why, sizeof s->why, "%s", epode_conn_error_text(conn));
        }
        epode_ctx_stop(g_ctx);
    }
}

int main(int argc, char **argv)
{
    cli_t o;
    cli_parse(&o, argc, argv, "");
    if (o.argc) {
        fprintf(stderr, "echo-bot: unexpected argument %s\n", o.argv[0]);
        return 64;
    }
    cli_catch_signals(); /* first: a signal during set-up still ends us cleanly */

    epode_conn_t *conn;
    cli_connect_setup(&o, &g_ctx, &conn);
    state s = {0};
    epode_conn_add_event_cb(conn, on_event, &s, NULL);
    epode_conn_add_handler(conn, "message", NULL, "chat", on_chat, NULL, NULL);

    /* The helpers: each registers its own handlers on the connection. */
    epode_presence_tracker_t *tracker = NULL;
    epode_disco_t *disco = NULL;
    epode_caps_t *caps = NULL;
    epode_ping_t *ping = NULL;
    epode_software_version_t *version = NULL;
    if (epode_presence_tracker_new(conn, &tracker) < 0 ||
        epode_presence_tracker_set_auto_accept(tracker, EPODE_AUTO_ACCEPT_MUTUAL) < 0 ||
        epode_disco_new(conn, &disco) < 0 ||
        epode_disco_add_identity(disco, NULL, "client", "bot", "epode echo-bot", NULL) < 0 ||
        epode_ping_new(conn, &ping) < 0 ||
        epode_disco_add_feature(disco, NULL, "urn:xmpp:ping") < 0 ||
        epode_software_version_new(conn, "epode echo-bot", epode_version(), NULL, &version) < 0 ||
        epode_disco_add_feature(disco, NULL, "jabber:iq:version") < 0 ||
        epode_caps_new(disco, "https://epode.example/echo-bot", &caps) < 0) {
        fprintf(stderr, "echo-bot: could not set up the helpers\n");
        return 1;
    }

    int rc = epode_conn_connect(conn);
    if (rc < 0) {
        fprintf(stderr, "echo-bot: %s\n", epode_strerror(rc));
        return 1;
    }
    int closing = 0;
    while (!s.disconnected) {
        if (cli_stop_requested() && !closing) {
            closing = 1; /* DISCONNECTED follows the server's answer (or 5 s) */
            if (epode_conn_close(conn) < 0)
                break;
        }
        if (epode_ctx_run_once(g_ctx, -1) < 0)
            break;
    }
    epode_caps_free(caps);
    epode_disco_free(disco);
    epode_software_version_free(version);
    epode_ping_free(ping);
    epode_presence_tracker_free(tracker);
    epode_conn_free(conn);
    epode_ctx_free(g_ctx);
    if (s.failed) {
        fprintf(stderr, "echo-bot: %s\n", s.why);
        return 1;
    }
    return 0;
}
