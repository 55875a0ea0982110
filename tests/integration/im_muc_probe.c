/* tests/integration/im_muc_probe.c — one MUC occupant for the
 * integration tests, on the public API only. Logs in, joins --room as
 * --nick, waits for occupant --wait-occupant (if given), says --say (if
 * given), waits for a message --expect-body from --expect-from (if
 * given), prints the occupant list, leaves and closes. One line per
 * event on stdout:
 *   joined ROOM NICK created=0|1
 *   occupant NICK role=R affiliation=A jid=J      (joined or changed)
 *   occupant-left NICK
 *   message NICK BODY        (live, from others)
 *   history NICK BODY
 *   error COND fatal=0|1
 *   list NICK role=R affiliation=A jid=J           (before leaving)
 *   left
 * Exit 0 when everything asked for happened, 1 otherwise (reason on
 * stderr). */
#include <epode.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct probe {
    const char *room, *nick, *say, *wait_occ, *expect_from, *expect_body;
    epode_conn_t *conn;
    epode_ctx_t *ctx;
    epode_muc_t *muc;
    int said, got, leaving, left, done, failed;
    char why[256];
} probe;

static void show_occ(const char *what, const epode_muc_occupant_t *o)
{
    printf("%s %s role=%s affiliation=%s jid=%s\n", what, o->nick, o->role, o->affiliation,
           o->jid ? o->jid : "-");
}

static void progress(probe *p, epode_muc_room_t *room)
{
    if (!epode_muc_room_is_joined(room) || p->leaving)
        return;
    if (p->wait_occ && !epode_muc_room_occupant(room, p->wait_occ))
        return;
    if (p->say && !p->said) {
        p->said = 1;
        epode_muc_send(room, p->say);
    }
    if (p->expect_body && !p->got)
        return;
    for (size_t i = 0; i < epode_muc_room_occupant_count(room); i++)
        show_occ("list", epode_muc_room_occupant_at(room, i));
    p->leaving = 1;
    epode_muc_leave(room, "done");
}

static void on_room(epode_conn_t *conn, const epode_muc_event_t *ev, void *user)
{
    probe *p = user;
    switch (ev->type) {
    case EPODE_MUC_JOINED:
        printf("joined %s %s created=%d\n", epode_muc_room_jid(ev->room), epode_muc_room_nick(ev->room),
               ev->created);
        break;
    case EPODE_MUC_OCCUPANT_JOINED:
    case EPODE_MUC_OCCUPANT_CHANGED:
        show_occ("occupant", ev->occupant);
        break;
    case EPODE_MUC_OCCUPANT_LEFT:
        printf("occupant-left %s\n", ev->nick);
        break;
    case EPODE_MUC_MESSAGE:
        if (!ev->is_self)
            printf("%s %s %s\n", ev->is_history ? "history" : "message", ev->nick ? ev->nick : "-",
                   ev->body);
        if (!ev->is_self && !ev->is_history && p->expect_body && ev->nick &&
            strcmp(ev->body, p->expect_body) == 0 &&
            (!p->expect_from || strcmp(ev->nick, p->expect_from) == 0))
            p->got = 1;
        break;
    case EPODE_MUC_ERROR:
        printf("error %s fatal=%d\n", epode_stanza_cond_name(ev->cond) ? epode_stanza_cond_name(ev->cond)
                                                                       : "none", ev->fatal);
        if (ev->fatal) {
            p->failed = 1;
            snprintf(p->why, sizeof p->why, "join failed");
            epode_conn_close(conn);
        }
        break;
    case EPODE_MUC_LEFT:
        printf("left\n");
        p->left = 1;
        if (!p->leaving) {
            p->failed = 1;
            snprintf(p->why, sizeof p->why, "dropped by the room");
        }
        epode_conn_close(conn);
        break;
    default:
        break;
    }
    fflush(stdout);
    if (ev->type != EPODE_MUC_LEFT && !(ev->type == EPODE_MUC_ERROR && ev->fatal))
        progress(p, ev->room);
}

static void on_event(epode_conn_t *conn, epode_conn_event_t ev, void *user)
{
    probe *p = user;
    if (ev == EPODE_CONN_READY) {
        printf("ready %s\n", epode_conn_bound_jid(conn));
        fflush(stdout);
        int rc = epode_muc_join(p->muc, p->room, p->nick, NULL, 0, -1, NULL);
        if (rc < 0) {
            p->failed = 1;
            snprintf(p->why, sizeof p->why, "join: %s", epode_strerror(rc));
            epode_conn_close(conn);
        }
    } else if (ev == EPODE_CONN_DISCONNECTED) {
        p->done = 1;
        if (!p->left && !p->failed) {
            p->failed = 1;
            snprintf(p->why, sizeof p->why, "disconnected: %s", epode_conn_error_text(conn));
        }
        epode_ctx_stop(p->ctx);
    }
}

static int on_timeout(epode_conn_t *conn, void *user)
{
    probe *p = user;
    if (!p->failed) {
        p->failed = 1;
        snprintf(p->why, sizeof p->why, "timed out (said=%d got=%d leaving=%d)", p->said, p->got,
                 p->leaving);
    }
    if (epode_conn_close(conn) < 0)
        epode_ctx_stop(p->ctx);
    return 0;
}

int main(int argc, char **argv)
{
    const char *server = "127.0.0.1", *ca = NULL, *jid = NULL, *pw = NULL;
    unsigned port = 5222, timeout = 20;
    probe p = {0};
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (!strcmp(k, "--server")) server = v;
        else if (!strcmp(k, "--port")) port = (unsigned)atoi(v);
        else if (!strcmp(k, "--ca-file")) ca = v;
        else if (!strcmp(k, "--jid")) jid = v;
        else if (!strcmp(k, "--password")) pw = v;
        else if (!strcmp(k, "--room")) p.room = v;
        else if (!strcmp(k, "--nick")) p.nick = v;
        else if (!strcmp(k, "--say")) p.say = v;
        else if (!strcmp(k, "--wait-occupant")) p.wait_occ = v;
        else if (!strcmp(k, "--expect-from")) p.expect_from = v;
        else if (!strcmp(k, "--expect-body")) p.expect_body = v;
        else if (!strcmp(k, "--timeout")) timeout = (unsigned)atoi(v);
        else {
            fprintf(stderr, "im_muc_probe: unknown option %s\n", k);
            return 64;
        }
    }
    if (!jid || !pw || !p.room || !p.nick) {
        fprintf(stderr, "im_muc_probe: need --jid --password --room --nick\n");
        return 64;
    }
    if (epode_global_init() < 0 || epode_ctx_new(NULL, &p.ctx) < 0 ||
        epode_conn_new(p.ctx, &p.conn) < 0 || epode_conn_set_jid(p.conn, jid) < 0 ||
        epode_conn_set_password(p.conn, pw) < 0 || epode_conn_set_server(p.conn, server, port) < 0 ||
        (ca && epode_conn_set_ca_file(p.conn, ca) < 0) ||
        epode_muc_new(p.conn, on_room, &p, &p.muc) < 0 ||
        epode_conn_add_event_cb(p.conn, on_event, &p, NULL) < 0 ||
        epode_conn_add_timer(p.conn, timeout * 1000, on_timeout, &p, NULL) < 0 ||
        epode_conn_connect(p.conn) < 0) {
        fprintf(stderr, "im_muc_probe: set-up failed\n");
        return 1;
    }
    epode_ctx_run(p.ctx);
    epode_muc_free(p.muc);
    epode_conn_free(p.conn);
    epode_ctx_free(p.ctx);
    if (p.failed) {
        fprintf(stderr, "im_muc_probe: %s\n", p.why);
        return 1;
    }
    return 0;
}
