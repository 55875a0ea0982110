/* examples/roster.c — shows and changes the account's roster.
 *
 *   roster [options] list              one line per contact:
 *                                      JID<TAB>subscription<TAB>name<TAB>groups
 *                                      (groups comma-separated; empty fields empty)
 *   roster [options] add JID [NAME]    adds the contact, or renames it
 *   roster [options] remove JID        removes the contact
 *
 * Options are the shared ones (examples/common/cli.h). Exit 0 on success;
 * on failure one line "roster: REASON" on stderr and exit 1 (64 for bad
 * arguments). Built on epode's roster helper (epode/roster.h). */
#include <epode.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cli.h"

typedef struct app {
    const char *cmd, *jid, *name;
    epode_ctx_t *ctx;
    epode_roster_t *roster;
    int done; /* 1 success, -1 failure */
    char why[512];
} app;

static void finish(app *a, epode_conn_t *conn, int ok)
{
    if (a->done == 0)
        a->done = ok ? 1 : -1;
    epode_conn_close(conn);
}

/* Names and groups may hold tabs or line breaks: printed as spaces so
 * the output stays one line per item, tab-separated. */
static void put_field(const char *s)
{
    for (; s && *s; s++)
        putchar(*s == '\t' || *s == '\n' || *s == '\r' ? ' ' : *s);
}

static void print_roster(const epode_roster_t *r)
{
    for (size_t i = 0; i < epode_roster_count(r); i++) {
        const epode_roster_item_t *it = epode_roster_item_at(r, i);
        put_field(epode_roster_item_jid(it));
        putchar('\t');
        put_field(epode_roster_sub_name(epode_roster_item_subscription(it)));
        putchar('\t');
        put_field(epode_roster_item_name(it));
        putchar('\t');
        for (size_t g = 0; g < epode_roster_item_group_count(it); g++) {
            if (g)
                putchar(',');
            put_field(epode_roster_item_group(it, g));
        }
        putchar('\n');
    }
    fflush(stdout);
}

static void on_result(epode_roster_t *r, int status, epode_stanza_cond_t cond, const char *text,
                      void *user)
{
    (void)r;
    app *a = user;
    if (status < 0)
        snprintf(a->why, sizeof a->why, "no answer from the server: %s", epode_strerror(status));
    else if (cond != EPODE_COND_NONE)
        snprintf(a->why, sizeof a->why, "the server refused: %s%s%s", epode_stanza_cond_name(cond),
                 text ? ": " : "", text ? text : "");
    a->done = (status == 0 && cond == EPODE_COND_NONE) ? 1 : -1;
    epode_ctx_stop(a->ctx);
}

static void on_roster(epode_roster_t *r, epode_roster_event_t ev, const epode_roster_item_t *it,
                      void *user)
{
    (void)it;
    app *a = user;
    if (strcmp(a->cmd, "list") != 0 || a->done)
        return;
    if (ev == EPODE_ROSTER_RECEIVED) {
        print_roster(r);
        a->done = 1;
        epode_ctx_stop(a->ctx);
    } else if (ev == EPODE_ROSTER_FETCH_FAILED) {
        snprintf(a->why, sizeof a->why, "could not fetch the roster");
        a->done = -1;
        epode_ctx_stop(a->ctx);
    }
}

static void on_event(epode_conn_t *conn, epode_conn_event_t ev, void *user)
{
    app *a = user;
    if (ev == EPODE_CONN_READY && strcmp(a->cmd, "list") != 0) {
        int rc = !strcmp(a->cmd, "add")
                     ? epode_roster_add(a->roster, a->jid, a->name, NULL, 0, on_result, a)
                     : epode_roster_remove(a->roster, a->jid, on_result, a);
        if (rc < 0) {
            snprintf(a->why, sizeof a->why, "could not send: %s", epode_strerror(rc));
            finish(a, conn, 0);
        }
    } else if (ev == EPODE_CONN_DISCONNECTED) {
        if (a->done == 0) {
            snprintf(a->why, sizeof a->why, "%s", cli_reason(conn));
            a->done = -1;
        }
        epode_ctx_stop(a->ctx);
    }
}

int main(int argc, char **argv)
{
    cli_t o;
    cli_parse(&o, argc, argv, "list | add JID [NAME] | remove JID");
    app a = {0};
    if (o.argc >= 1)
        a.cmd = o.argv[0];
    int ok_args = a.cmd && ((!strcmp(a.cmd, "list") && o.argc == 1) ||
                            (!strcmp(a.cmd, "add") && (o.argc == 2 || o.argc == 3)) ||
                            (!strcmp(a.cmd, "remove") && o.argc == 2));
    if (!ok_args) {
        fprintf(stderr, "roster: need list, add JID [NAME] or remove JID\n"
                        "usage: roster [options] --jid JID --password-file FILE "
                        "list | add JID [NAME] | remove JID\n");
        return 64;
    }
    if (o.argc >= 2) {
        a.jid = o.argv[1];
        a.name = o.argc == 3 ? o.argv[2] : NULL;
        if (epode_jid_validate(a.jid) < 0) {
            fprintf(stderr, "roster: not a valid JID: %s\n", a.jid);
            return 64;
        }
    }
    epode_ctx_t *ctx;
    epode_conn_t *conn;
    cli_connect_setup(&o, &ctx, &conn);
    a.ctx = ctx;
    int rc = epode_roster_new(conn, &a.roster);
    if (rc == 0)
        rc = epode_roster_set_event_cb(a.roster, on_roster, &a);
    if (rc == 0)
        rc = epode_conn_add_event_cb(conn, on_event, &a, NULL);
    if (rc == 0)
        rc = epode_conn_connect(conn);
    if (rc < 0) {
        fprintf(stderr, "roster: %s\n", epode_strerror(rc));
        return 1;
    }
    epode_ctx_run(ctx);
    /* Done (or failed): close the stream cleanly and let it end. */
    int status = a.done;
    a.done = status ? status : -1;
    if (epode_conn_close(conn) == 0)
        epode_ctx_run(ctx);
    epode_roster_free(a.roster);
    epode_conn_free(conn);
    epode_ctx_free(ctx);
    if (status != 1) {
        fprintf(stderr, "roster: %s\n", a.why[0] ? a.why : "failed");
        return 1;
    }
    return 0;
}
