/* examples/muc-bot.c — joins a multi-user chat room and answers `!ping`
 * with `pong` and `!time` with the current UTC time, in the room. It
 * ignores its own messages and the room's history, and stays until
 * SIGINT or SIGTERM, then leaves the room and closes the stream.
 *
 *   muc-bot [--server HOST] [--port N] [--direct-tls] [--ca-file FILE]
 *           --jid JID --password-file FILE [--verbose] ROOM@SERVICE NICK
 *
 * Prints "joined ROOM/NICK" once in the room. Exits 0 after a clean
 * close; 1 with a one-line reason if the connection fails or the room
 * refuses or drops us. If the nick is taken it tries NICK_, NICK__, …
 * (a new room is created with the default configuration). */
#include <epode.h>

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/cli.h"

static epode_ctx_t *g_ctx;


typedef struct bot {
    const char *room, *nick;
    epode_muc_t *muc;
    int disconnected, failed;
    char why[512];
} bot;

static void fail(epode_conn_t *conn, bot *b, const char *why)
{
    if (!b->failed) {
        b->failed = 1;
        snprintf(b->why, sizeof b->why, "%s", why);
    }
    epode_conn_close(conn);
}

static void answer(epode_muc_room_t *room, const char *body)
{
    if (strcmp(body, "!ping") == 0) {
        epode_muc_send(room, "pong");
    } else if (strcmp(body, "!time") == 0) {
        char now[64];
        time_t t = time(NULL);
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(now, sizeof now, "%Y-%m-%d %H:%M:%S UTC", &tm);
        epode_muc_send(room, now);
    }
}

static void on_room(epode_conn_t *conn, const epode_muc_event_t *ev, void *user)
{
    bot *b = user;
    char why[512];
    switch (ev->type) {
    case EPODE_MUC_JOINED:
        printf("joined %s/%s\n", epode_muc_room_jid(ev->room), epode_muc_room_nick(ev->room));
        fflush(stdout);
        break;
    case EPODE_MUC_MESSAGE:
        if (!ev->is_self && !ev->is_history && ev->nick)
            answer(ev->room, ev->body);
        break;
    case EPODE_MUC_ERROR:
        if (ev->fatal) {
            snprintf(why, sizeof why, "could not join %s: %s%s%s", b->room,
                     epode_stanza_cond_name(ev->cond) ? epode_stanza_cond_name(ev->cond) : "error",
                     ev->error_text ? ": " : "", ev->error_text ? ev->error_text : "");
            fail(conn, b, why);
        }
        break;
    case EPODE_MUC_LEFT:
        if (!cli_stop_requested())
            fail(conn, b, "the room dropped us (kicked, banned or destroyed)");
        else
            epode_conn_close(conn);
        break;
    default:
        break;
    }
}

static void on_event(epode_conn_t *conn, epode_conn_event_t ev, void *user)
{
    bot *b = user;
    if (ev == EPODE_CONN_READY) {
        /* Once per process: the helper rejoins by itself after a reconnect. */
        if (!epode_muc_find(b->muc, b->room)) {
            int rc = epode_muc_join(b->muc, b->room, b->nick, NULL, 0, -1, NULL);
            if (rc < 0) {
                char why[256];
                snprintf(why, sizeof why, "could not join %s: %s", b->room, epode_strerror(rc));
                fail(conn, b, why);
            }
        }
    } else if (ev == EPODE_CONN_DISCONNECTED) {
        b->disconnected = 1;
        if (epode_conn_reason(conn) != EPODE_REASON_CLOSED && !b->failed) {
            b->failed = 1;
            snprintf(b->why, sizeof b->why, "%s", epode_conn_error_text(conn));
        }
    }
}

int main(int argc, char **argv)
{
    cli_t o;
    cli_parse(&o, argc, argv, "ROOM@SERVICE NICK");
    if (o.argc != 2) {
        fprintf(stderr, "muc-bot: need a room and a nick\n"
                        "usage: muc-bot [options] --jid JID --password-file FILE ROOM@SERVICE NICK\n");
        return 64;
    }
    bot b = {.room = o.argv[0], .nick = o.argv[1]};
    if (epode_jid_validate(b.room) < 0 || strchr(b.room, '/') || !strchr(b.room, '@')) {
        fprintf(stderr, "muc-bot: not a room address (ROOM@SERVICE): %s\n", b.room);
        return 64;
    }
    cli_catch_signals(); /* first: a signal during set-up still ends us cleanly */

    epode_conn_t *conn;
    cli_connect_setup(&o, &g_ctx, &conn);
    epode_ping_t *ping = NULL;
    int rc = epode_muc_new(conn, on_room, &b, &b.muc);
    if (rc == 0)
        rc = epode_muc_set_nick_retry(b.muc, "_", 3);
    if (rc == 0)
        rc = epode_ping_new(conn, &ping);
    if (rc == 0)
        rc = epode_conn_add_event_cb(conn, on_event, &b, NULL);
    if (rc == 0)
        rc = epode_conn_connect(conn);
    if (rc < 0) {
        fprintf(stderr, "muc-bot: %s\n", epode_strerror(rc));
        return 1;
    }
    int closing = 0;
    time_t leave_started = 0;
    while (!b.disconnected) {
        if (cli_stop_requested() && !closing) {
            closing = 1;
            leave_started = time(NULL);
            epode_muc_room_t *room = epode_muc_find(b.muc, b.room);
            /* leave politely; LEFT (or 2 s without it) closes the stream */
            if (!room || !epode_conn_is_ready(conn) || epode_muc_leave(room, NULL) < 0)
                epode_conn_close(conn);
        }
        if (epode_ctx_run_once(g_ctx, closing ? 500 : -1) < 0)
            break;
        if (closing == 1 && !b.disconnected && time(NULL) - leave_started >= 2) {
            closing = 2;
            epode_conn_close(conn);
        }
    }
    epode_muc_free(b.muc);
    epode_ping_free(ping);
    epode_conn_free(conn);
    epode_ctx_free(g_ctx);
    if (b.failed) {
        fprintf(stderr, "muc-bot: %s\n", b.why);
        return 1;
    }
    return 0;
}
