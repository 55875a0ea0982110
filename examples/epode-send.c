/* examples/epode-send.c — sends one chat message, sendxmpp style, and
 * exits 0 only once the server has it: after the message it pings the
 * server (XEP-0199) and waits for the answer, which the server sends
 * after handling everything before it on the stream.
 *
 *   epode-send [--server HOST] [--port N] [--direct-tls] [--ca-file FILE]
 *              --jid JID --password-file FILE [--verbose] TO MESSAGE...
 *   epode-send --help | --version
 *
 * With --count N it sends N numbered messages ("MESSAGE #1" …) under
 * stream management (XEP-0198) and exits 0 only once the server has
 * acknowledged every one of them (servers without stream management: a
 * ping round trip after the last one). A cut does not end it: it
 * reconnects with backoff and resumes the session, or logs in afresh and
 * sends again what the server never confirmed, until every message is
 * acknowledged — or --give-up-after SECONDS (default 120) have passed,
 * or the server refuses for good (bad credentials, say).
 *
 * Prints nothing on success; on failure one line "epode-send: REASON" on
 * stderr and a non-zero exit status. */
#include <epode.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/cli.h"
#include "common/fast_file.h"

typedef struct app {
    const char *to;
    char body[8192];
    long count;         /* --count: messages to send (0: one, unnumbered) */
    unsigned char *state; /* per message: 0 to send, 1 sent, 2 acknowledged */
    long acked, handed_back;
    int verbose;
    int done;   /* 1: confirmed, -1: failed */
    int finished; /* the last DISCONNECTED came */
    char why[512];
    epode_ctx_t *ctx;
} app;

static void on_ack(epode_conn_t *conn, int acked, const char *id, const char *xml, size_t len,
                   void *user)
{
    (void)id, (void)xml, (void)len;
    app *a = user;
    long i = 0;
    if (id && strncmp(id, "epode-send-", 11) == 0)
        i = strtol(id + 11, NULL, 10);
    if (i < 1 || i > a->count || a->state[i - 1] == 2)
        return;
    if (!acked) {
        /* Handed back: sent again on the next session (see on_event). */
        a->state[i - 1] = 0;
        a->handed_back++;
        return;
    }
    a->state[i - 1] = 2;
    if (++a->acked == a->count && a->done == 0) {
        a->done = 1;
        epode_conn_close(conn);
    }
}

/* Sends the message(s); 0 or a negative error. */
static int send_all(epode_conn_t *conn, app *a)
{
    long n = a->count ? a->count : 1;
    for (long i = 1; i <= n; i++) {
        if (a->count && a->state[i - 1] != 0)
            continue; /* in the library's hands, or confirmed */
        epode_stanza_t *msg;
        char body[8300], id[32];
        if (a->count)
            snprintf(body, sizeof body, "%s #%ld", a->body, i);
        int rc = epode_stanza_new_message(NULL, "chat", a->to, a->count ? body : a->body, &msg);
        if (rc < 0)
            return rc;
        snprintf(id, sizeof id, "epode-send-%ld", i);
        if ((rc = epode_stanza_set_id(msg, id)) == 0)
            rc = epode_conn_send(conn, msg);
        epode_stanza_unref(msg);
        if (rc < 0)
            return rc;
        if (a->count)
            a->state[i - 1] = 1;
    }
    return 0;
}

static void on_ping_answer(epode_conn_t *conn, epode_stanza_t *result, int status, void *user)
{
    app *a = user;
    if (status == EPODE_ECANCELED) {
        /* The connection ended first: DISCONNECTED says why (the stream
         * error and its text), which is what the user must read. */
        return;
    }
    if (status < 0) {
        snprintf(a->why, sizeof a->why, "no confirmation from the server: %s", epode_strerror(status));
        a->done = -1;
    } else {
        (void)result; /* a result or an error: either way the server got here */
        a->done = 1;
    }
    epode_conn_close(conn);
}

static void on_event(epode_conn_t *conn, epode_conn_event_t ev, void *user)
{
    app *a = user;
    if (ev == EPODE_CONN_READY) {
        epode_stanza_t *ping;
        const epode_stanza_t *f = epode_conn_stream_features(conn);
        int sm = a->count && f && epode_stanza_find_child(f, "sm", "urn:xmpp:sm:3");
        int rc = send_all(conn, a);
        if (rc == 0 && sm)
            return; /* done when every message is acknowledged */
        if (rc == 0 && (rc = epode_stanza_new_iq(NULL, "get", NULL, &ping)) == 0) {
            const char *bound = epode_conn_bound_jid(conn);
            const char *at = strchr(bound, '@');
            char domain[1024];
            snprintf(domain, sizeof domain, "%.*s", (int)strcspn(at ? at + 1 : bound, "/"),
                     at ? at + 1 : bound);
            epode_stanza_set_to(ping, domain);
            epode_stanza_add_child_new(ping, "ping", "urn:xmpp:ping", NULL);
            rc = epode_conn_send_iq(conn, ping, 0, on_ping_answer, a, NULL);
            epode_stanza_unref(ping);
        }
        if (rc < 0) {
            snprintf(a->why, sizeof a->why, "could not send: %s", epode_strerror(rc));
            a->done = -1;
            epode_conn_close(conn);
        }
    } else if (ev == EPODE_CONN_DISCONNECTED) {
        if (a->done == 0 && a->count && epode_conn_will_reconnect(conn)) {
            if (a->verbose)
                fprintf(stderr, "epode-send: %s; %ld of %ld confirmed, reconnecting\n",
                        epode_conn_error_text(conn), a->acked, a->count);
            return; /* the reconnection policy takes it from here */
        }
        if (a->done == 0) {
            if (a->count)
                snprintf(a->why, sizeof a->why, "%ld of %ld messages not confirmed (%s)",
                         a->count - a->acked, a->count, epode_conn_error_text(conn));
            else
                snprintf(a->why, sizeof a->why, "%s", epode_conn_error_text(conn));
            a->done = -1;
        }
        a->finished = 1;
        epode_ctx_stop(a->ctx);
    }
}

int main(int argc, char **argv)
{
    /* --count N and --give-up-after S are epode-send's own; the rest are
     * the shared options */
    long count = 0, give_up = 120;
    const char *fast_file = NULL;
    for (int i = 1; i + 1 < argc;) {
        if (!strcmp(argv[i], "--fast-token-file")) {
            fast_file = argv[i + 1];
            memmove(argv + i, argv + i + 2, (size_t)(argc - i - 1) * sizeof *argv);
            argc -= 2;
            continue;
        }
        long *v = !strcmp(argv[i], "--count") ? &count
                  : !strcmp(argv[i], "--give-up-after") ? &give_up : NULL;
        if (!v) {
            i++;
            continue;
        }
        char *end;
        *v = strtol(argv[i + 1], &end, 10);
        if (*end || *v <= 0 || *v > 10000000) {
            fprintf(stderr, "epode-send: bad %s %s\n", argv[i], argv[i + 1]);
            return 64;
        }
        memmove(argv + i, argv + i + 2, (size_t)(argc - i - 1) * sizeof *argv);
        argc -= 2;
    }
    cli_t o;
    cli_set_help(
        "Sends MESSAGE (the words joined by spaces) to TO as a chat message and exits 0\n"
        "only once the server has it (a ping round trip follows the message).",
        "  TO                     the recipient's JID\n"
        "  MESSAGE...             the message text\n"
        "  --count N              send N numbered messages (\"MESSAGE #1\" ...) under stream\n"
        "                         management (XEP-0198); reconnect, resume and resend\n"
        "                         through cuts until the server has acknowledged all\n"
        "  --give-up-after SECONDS  with --count: fail if they are not all acknowledged\n"
        "                         by then (default 120)\n"
        "  --fast-token-file FILE  log in with the FAST token (XEP-0484) kept in FILE if\n"
        "                         there is one, and keep the server's new token there\n"
        "                         (mode 0600, replaced atomically)\n");
    cli_parse(&o, argc, argv,
              "[--count N [--give-up-after SECONDS]] [--fast-token-file FILE] TO MESSAGE...");
    if (o.argc < 2) {
        fprintf(stderr, "epode-send: need a recipient and a message\n"
                        "usage: epode-send [options] --jid JID --password-file FILE TO MESSAGE...\n");
        return 64;
    }
    app a = {.to = o.argv[0], .count = count, .verbose = o.verbose};
    if (count && !(a.state = calloc((size_t)count, 1))) {
        fprintf(stderr, "epode-send: out of memory\n");
        return 1;
    }
    if (epode_jid_validate(a.to) < 0) {
        fprintf(stderr, "epode-send: not a valid JID: %s\n", a.to);
        return 64;
    }
    size_t off = 0;
    for (int i = 1; i < o.argc; i++) {
        int n = snprintf(a.body + off, sizeof a.body - off, "%s%s", i > 1 ? " " : "", o.argv[i]);
        if (n < 0 || (size_t)n >= sizeof a.body - off) {
            fprintf(stderr, "epode-send: message too long\n");
            return 64;
        }
        off += (size_t)n;
    }
    epode_ctx_t *ctx;
    epode_conn_t *conn;
    cli_connect_setup(&o, &ctx, &conn);
    fast_file_t *ff = NULL;
    char why[300];
    if (fast_file && !(ff = fast_file_use(conn, fast_file, 1, why, sizeof why))) {
        fprintf(stderr, "epode-send: %s\n", why);
        return 1;
    }
    /* One login and gone: a token asked for now could not be kept, and
     * the server would hold it for weeks. (--count reconnects: a token
     * in memory saves its re-logins the password hashing.) */
    if (!ff && !count)
        epode_conn_set_fast(conn, 0, NULL, NULL, NULL);
    a.ctx = ctx;
    epode_conn_add_event_cb(conn, on_event, &a, NULL);
    if (count) {
        /* Survive cuts: resume, or log in afresh and resend what the
         * server never confirmed; a dead link is noticed within 15 s. */
        epode_conn_set_stream_management(conn, 1);
        epode_conn_set_ack_cb(conn, on_ack, &a);
        epode_conn_set_reconnect(conn, 1, 200, 5000);
        epode_conn_set_sm_policy(conn, 5, 1000, 15000, 1);
    }
    int rc = epode_conn_connect(conn);
    if (rc < 0) {
        fprintf(stderr, "epode-send: %s\n", epode_strerror(rc));
        return 1;
    }
    if (count) {
        struct timespec t0, now;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        int gave_up = 0;
        while (!a.finished && epode_ctx_run_once(ctx, 250) >= 0) {
            clock_gettime(CLOCK_MONOTONIC, &now);
            long long ms = (long long)(now.tv_sec - t0.tv_sec) * 1000 +
                           (now.tv_nsec - t0.tv_nsec) / 1000000;
            if (!gave_up && a.done == 0 && ms >= give_up * 1000LL) {
                gave_up = 1;
                snprintf(a.why, sizeof a.why, "gave up after %ld s: %ld of %ld messages not confirmed "
                         "(last: %s)", give_up, a.count - a.acked, a.count,
                         epode_conn_error_text(conn)[0] ? epode_conn_error_text(conn) : "none");
                a.done = -1;
                if (epode_conn_close(conn) < 0)
                    break; /* nothing left to close */
            }
        }
    } else {
        epode_ctx_run(ctx);
    }
    epode_conn_free(conn);
    epode_ctx_free(ctx);
    fast_file_free(ff);
    free(a.state);
    if (a.done != 1) {
        fprintf(stderr, "epode-send: %s\n", a.why[0] ? a.why : "failed");
        return 1;
    }
    return 0;
}
