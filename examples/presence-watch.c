/* examples/presence-watch.c — logs in, says it is available (optionally
 * with a show and a status), and prints one line per presence change of
 * anyone it can see, until SIGINT or SIGTERM:
 *
 *   JID/RESOURCE available|chat|away|xa|dnd [STATUS]
 *   JID/RESOURCE unavailable [STATUS]
 *   JID/RESOURCE error CONDITION
 *
 *   presence-watch [--server HOST] [--port N] [--direct-tls] [--ca-file FILE]
 *                  --jid JID --password-file FILE [--verbose]
 *                  [SHOW [STATUS...]]
 *
 * SHOW is one of available, chat, away, xa, dnd. Subscription requests are
 * printed ("JID asks to subscribe") and left unanswered. Exits 0 after a
 * clean close (sending unavailable first), 1 with a one-line reason if the
 * connection fails or drops, 64 for bad arguments. */
#include <epode.h>

#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "common/cli.h"

static epode_ctx_t *g_ctx;


typedef struct app {
    epode_show_t show;
    char status[1024];
    int disconnected, failed;
    char why[512];
} app;

static void on_change(epode_conn_t *conn, const epode_presence_info_t *info,
                      epode_presence_change_t change, void *user)
{
    (void)conn;
    (void)user;
    const char *status = epode_presence_info_status(info);
    if (change == EPODE_PRESENCE_ERROR)
        printf("%s error %s\n", epode_presence_info_jid(info),
               epode_stanza_cond_name(epode_presence_info_error(info)));
    else
        printf("%s %s%s%s\n", epode_presence_info_jid(info),
               epode_show_name(epode_presence_info_show(info)), status ? " " : "",
               status ? status : "");
    fflush(stdout);
}

static int on_subscription(epode_conn_t *conn, const char *from, epode_subscription_t what,
                           const char *status, void *user)
{
    (void)conn;
    (void)status;
    (void)user;
    if (what == EPODE_SUB_REQUEST) {
        printf("%s asks to subscribe\n", from);
        fflush(stdout);
    }
    return EPODE_SUB_DEFER;
}

static void on_event(epode_conn_t *conn, epode_conn_event_t ev, void *user)
{
    app *a = user;
    if (ev == EPODE_CONN_READY) {
        int rc = epode_presence_send(conn, a->show, a->status[0] ? a->status : NULL, 0);
        if (rc < 0) {
            a->failed = 1;
            snprintf(a->why, sizeof a->why, "could not send presence: %s", epode_strerror(rc));
            epode_conn_close(conn);
        }
    } else if (ev == EPODE_CONN_DISCONNECTED) {
        a->disconnected = 1;
        if (epode_conn_reason(conn) != EPODE_REASON_CLOSED && !a->failed) {
            a->failed = 1;
            snprintf(a->why, sizeof a->why, "%s", epode_conn_error_text(conn));
        }
        epode_ctx_stop(g_ctx);
    }
}

int main(int argc, char **argv)
{
    cli_t o;
    cli_parse(&o, argc, argv, "[SHOW [STATUS...]]");
    app a = {.show = EPODE_SHOW_AVAILABLE};
    if (o.argc >= 1 && (epode_show_from_name(o.argv[0], &a.show) < 0 ||
                        a.show == EPODE_SHOW_UNAVAILABLE)) {
        fprintf(stderr, "presence-watch: SHOW must be available, chat, away, xa or dnd, "
                        "not %s\n", o.argv[0]);
        return 64;
    }
    size_t off = 0;
    for (int i = 1; i < o.argc; i++) {
        int n = snprintf(a.status + off, sizeof a.status - off, "%s%s", i > 1 ? " " : "",
                         o.argv[i]);
        if (n < 0 || (size_t)n >= sizeof a.status - off) {
            fprintf(stderr, "presence-watch: status too long\n");
            return 64;
        }
        off += (size_t)n;
    }
    cli_catch_signals(); /* first: a signal during set-up still ends us cleanly */

    epode_conn_t *conn;
    cli_connect_setup(&o, &g_ctx, &conn);
    epode_conn_add_event_cb(conn, on_event, &a, NULL);
    epode_presence_tracker_t *tracker;
    int rc = epode_presence_tracker_new(conn, &tracker);
    if (rc == 0)
        rc = epode_presence_tracker_set_event_cb(tracker, on_change, &a);
    if (rc == 0)
        rc = epode_presence_tracker_set_subscription_cb(tracker, on_subscription, &a);
    if (rc == 0)
        rc = epode_conn_connect(conn);
    if (rc < 0) {
        fprintf(stderr, "presence-watch: %s\n", epode_strerror(rc));
        return 1;
    }
    int closing = 0;
    while (!a.disconnected) {
        if (cli_stop_requested() && !closing) {
            closing = 1; /* says unavailable, then DISCONNECTED follows */
            if (epode_presence_close(conn, NULL) < 0)
                break;
        }
        if (epode_ctx_run_once(g_ctx, -1) < 0)
            break;
    }
    epode_presence_tracker_free(tracker);
    epode_conn_free(conn);
    epode_ctx_free(g_ctx);
    if (a.failed) {
        fprintf(stderr, "presence-watch: %s\n", a.why);
        return 1;
    }
    return 0;
}
