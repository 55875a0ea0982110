/* examples/epode-history.c — prints the account's message archive
 * (XEP-0313), one line per message: timestamp, sender, body.
 *
 *   epode-history [--server HOST] [--port N] [--ca-file FILE]
 *                 --jid JID --password-file FILE
 *                 [--with JID] [--since TIME] [--max N] [--room ROOM]
 *   epode-history --help | --version
 *
 * With --since it prints the first N messages archived since TIME,
 * oldest first; without, the N most recent ones, still oldest first.
 * TIME is an XEP-0082 timestamp (2024-05-01T12:00:00Z), a date
 * (2024-05-01, midnight UTC) or a time ago (30m, 12h, 7d). --max N
 * (default 50, at most 100000) bounds how many are printed. Pages of at
 * most 100 are fetched one after the other (RSM, XEP-0059). --room ROOM
 * reads a group chat's archive instead (the room's bare JID; --with then
 * names an occupant).
 *
 * A line: "2024-05-01T12:00:03Z juliet@example.com/balcony Hello" — the
 * archive's timestamp ("-" if it gave none), the sender as archived, the
 * body with line breaks written as \n. Messages without a body (chat
 * states, markers) are skipped. Exit status: 0 done, 1 connection or
 * archive failure (one line "epode-history: REASON" on stderr), 64 bad
 * usage. */
#include <epode.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/cli.h"

typedef struct app {
    const char *with;
    const char *room; /* a room's archive instead of ours */
    long long since;  /* EPODE_MAM_NO_TIME: the most recent messages */
    long max;
    epode_mam_t *mam;
    char **lines;     /* collected, in order */
    long nlines;
    long page_first;  /* backwards: where this page's lines start */
    int done;         /* 1 ok, -1 failed */
    char why[512];
    epode_ctx_t *ctx;
    epode_conn_t *conn;
} app;

/* Parses TIME as described at the top; 0 or -1. */
static int parse_since(const char *s, long long *ms)
{
    char buf[64];
    if (epode_time_parse(s, ms) == 0)
        return 0;
    if (strlen(s) == 10 && snprintf(buf, sizeof buf, "%sT00:00:00Z", s) > 0 &&
        epode_time_parse(buf, ms) == 0)
        return 0;
    char *end;
    long n = strtol(s, &end, 10);
    long unit = !strcmp(end, "s") ? 1 : !strcmp(end, "m") ? 60 : !strcmp(end, "h") ? 3600
              : !strcmp(end, "d") ? 86400 : 0;
    if (end == s || n < 0 || !unit || n > 100000L * 86400 / unit)
        return -1;
    *ms = ((long long)time(NULL) - (long long)n * unit) * 1000;
    return 0;
}

static char *format_line(const epode_message_t *m)
{
    const char *body = epode_message_body(m, NULL);
    if (!body)
        return NULL;
    char stamp[EPODE_TIME_BUFSIZE] = "-";
    long long ms;
    if (epode_message_delay(m, &ms, NULL, NULL) == 0)
        epode_time_format(ms, stamp, sizeof stamp);
    const char *from = epode_message_from(m);
    size_t n = strlen(stamp) + (from ? strlen(from) : 1) + 2 * strlen(body) + 4;
    char *line = malloc(n), *p;
    if (!line)
        return NULL;
    p = line + snprintf(line, n, "%s %s ", stamp, from ? from : "-");
    for (const char *b = body; *b; b++) {
        if (*b == '\n' || *b == '\r') {
            *p++ = '\\';
            *p++ = *b == '\n' ? 'n' : 'r';
        } else {
            *p++ = *b;
        }
    }
    *p = '\0';
    return line;
}

static void on_result(epode_mam_t *mam, const epode_message_t *m, void *user)
{
    (void)mam;
    app *a = user;
    char *line = format_line(m);
    if (!line)
        return;
    char **l = realloc(a->lines, (size_t)(a->nlines + 1) * sizeof *l);
    if (!l) {
        free(line);
        return;
    }
    a->lines = l;
    if (a->since == EPODE_MAM_NO_TIME) {
        /* paging backwards: this page goes before the ones already held,
         * in its own (chronological) order */
        memmove(l + a->page_first + 1, l + a->page_first,
                (size_t)(a->nlines - a->page_first) * sizeof *l);
        l[a->page_first++] = line;
    } else {
        l[a->nlines] = line;
    }
    a->nlines++;
}

static int ask_page(app *a, const char *after, const char *before);

static void finish(app *a, int ok)
{
    a->done = ok ? 1 : -1;
    epode_conn_close(a->conn);
}

static void on_done(epode_mam_t *mam, int status, epode_stanza_cond_t cond, const char *first,
                    const char *last, int complete, long count, size_t results, void *user)
{
    (void)mam, (void)count;
    app *a = user;
    if (status < 0 || cond != EPODE_COND_NONE) {
        snprintf(a->why, sizeof a->why, "the archive refused: %s",
                 status < 0 ? epode_strerror(status) : epode_stanza_cond_name(cond));
        finish(a, 0);
        return;
    }
    int backwards = a->since == EPODE_MAM_NO_TIME;
    if (complete || results == 0 || a->nlines >= a->max || !(backwards ? first : last)) {
        finish(a, 1);
        return;
    }
    int rc = backwards ? ask_page(a, NULL, first) : ask_page(a, last, NULL);
    if (rc < 0) {
        snprintf(a->why, sizeof a->why, "could not ask the archive: %s", epode_strerror(rc));
        finish(a, 0);
    }
}

static int ask_page(app *a, const char *after, const char *before)
{
    long left = a->max - a->nlines;
    epode_mam_query_t *q;
    int rc = epode_mam_query_new(NULL, &q);
    if (rc < 0)
        return rc;
    a->page_first = 0;
    if ((rc = epode_mam_query_set_with(q, a->with)) == 0 &&
        (rc = epode_mam_query_set_archive(q, a->room)) == 0 &&
        (a->since == EPODE_MAM_NO_TIME || (rc = epode_mam_query_set_start(q, a->since)) == 0) &&
        (rc = epode_mam_query_set_page(q, left < 100 ? (unsigned)left : 100, after, before)) == 0)
        rc = epode_mam_fetch(a->mam, q, on_result, on_done, a, NULL);
    epode_mam_query_free(q);
    return rc;
}

static void on_event(epode_conn_t *conn, epode_conn_event_t ev, void *user)
{
    app *a = user;
    if (ev == EPODE_CONN_READY) {
        /* the most recent first (an empty <before/>), or forwards from --since */
        int rc = ask_page(a, NULL, a->since == EPODE_MAM_NO_TIME ? "" : NULL);
        if (rc < 0) {
            snprintf(a->why, sizeof a->why, "could not ask the archive: %s", epode_strerror(rc));
            finish(a, 0);
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
    /* --with, --since and --max are epode-history's own; the rest are the
     * shared options */
    const char *with = NULL, *since = NULL, *max = NULL, *room = NULL;
    for (int i = 1; i < argc;) {
        const char **v = !strcmp(argv[i], "--with") ? &with
                         : !strcmp(argv[i], "--since") ? &since
                         : !strcmp(argv[i], "--max") ? &max
                         : !strcmp(argv[i], "--room") ? &room : NULL;
        if (!v) {
            i++;
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "epode-history: %s needs a value\n", argv[i]);
            return 64;
        }
        *v = argv[i + 1];
        memmove(argv + i, argv + i + 2, (size_t)(argc - i - 1) * sizeof *argv);
        argc -= 2;
    }
    cli_t o;
    cli_set_help(
        "Prints the account's message archive (XEP-0313), oldest first, one line per\n"
        "message: timestamp, sender, body (line breaks as \\n). Without --since: the\n"
        "most recent messages.",
        "  --with JID             only messages to or from JID\n"
        "  --since TIME           messages archived since TIME: 2024-05-01T12:00:00Z,\n"
        "                         2024-05-01 (midnight UTC), or ago: 30m, 12h, 7d\n"
        "  --max N                print at most N messages (default 50)\n"
        "  --room ROOM            a group chat's archive (the room's bare JID) instead\n"
        "                         of the account's; --with then names an occupant\n");
    cli_parse(&o, argc, argv, "[--with JID] [--since TIME] [--max N] [--room ROOM]");
    if (o.argc > 0) {
        fprintf(stderr, "epode-history: unexpected argument: %s\n", o.argv[0]);
        return 64;
    }
    app a = {.with = with, .room = room, .since = EPODE_MAM_NO_TIME, .max = 50};
    if (with && epode_jid_validate(with) < 0) {
        fprintf(stderr, "epode-history: not a valid JID: %s\n", with);
        return 64;
    }
    if (room && (epode_jid_validate(room) < 0 || strchr(room, '/'))) {
        fprintf(stderr, "epode-history: --room wants a room's bare JID: %s\n", room);
        return 64;
    }
    if (since && parse_since(since, &a.since) < 0) {
        fprintf(stderr, "epode-history: not a time: %s (2024-05-01T12:00:00Z, 2024-05-01, 12h)\n",
                since);
        return 64;
    }
    if (max) {
        char *end;
        a.max = strtol(max, &end, 10);
        if (*end || a.max <= 0 || a.max > 100000) {
            fprintf(stderr, "epode-history: bad --max %s (1 to 100000)\n", max);
            return 64;
        }
    }
    epode_ctx_t *ctx;
    epode_conn_t *conn;
    cli_connect_setup(&o, &ctx, &conn);
    epode_conn_set_fast(conn, 0, NULL, NULL, NULL); /* one login: no token to keep */
    a.ctx = ctx;
    a.conn = conn;
    if (epode_mam_new(conn, &a.mam) < 0) {
        fprintf(stderr, "epode-history: out of memory\n");
        return 1;
    }
    epode_conn_add_event_cb(conn, on_event, &a, NULL);
    int rc = epode_conn_connect(conn);
    if (rc < 0) {
        fprintf(stderr, "epode-history: %s\n", epode_strerror(rc));
        return 1;
    }
    epode_ctx_run(ctx);
    epode_mam_free(a.mam);
    epode_conn_free(conn);
    epode_ctx_free(ctx);
    for (long i = 0; i < a.nlines; i++) {
        if (a.done == 1)
            printf("%s\n", a.lines[i]);
        free(a.lines[i]);
    }
    free(a.lines);
    if (a.done != 1) {
        fprintf(stderr, "epode-history: %s\n", a.why[0] ? a.why : "failed");
        return 1;
    }
    return 0;
}
