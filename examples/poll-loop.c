/* examples/poll-loop.c — epode driven by the application's own event
 * loop, here a plain poll(2) loop: epode says which fds to watch and when
 * its next deadline is (epode_ctx_set_external_loop), the loop calls
 * epode_ctx_process() when an fd is ready or the deadline passes. The same
 * pattern plugs epode into GLib, libuv or asyncio.
 *
 * It logs in, sends one message, waits for the server's ping answer and
 * closes:
 *   poll-loop [--server HOST] [--port N] [--direct-tls] [--ca-file FILE]
 *             --jid JID --password-file FILE [--verbose] TO MESSAGE
 */
#include <epode.h>

#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/cli.h"

/* The application's view of what epode wants watched. */
#define MAX_FDS 64
static struct pollfd fds[MAX_FDS];
static int nfds;
static long deadline_ms = -1; /* absolute, monotonic; -1: none */

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static void on_watch(void *user, int fd, unsigned events, void *fd_user)
{
    (void)user, (void)fd_user;
    int i = 0;
    while (i < nfds && fds[i].fd != fd)
        i++;
    if (events == 0) { /* epode is done with this fd */
        if (i < nfds)
            fds[i] = fds[--nfds];
        return;
    }
    if (i == nfds) {
        if (nfds == MAX_FDS)
            return;
        fds[nfds++].fd = fd;
    }
    fds[i].events = (short)(((events & EPODE_EV_READ) ? POLLIN : 0) |
                            ((events & EPODE_EV_WRITE) ? POLLOUT : 0));
}

static void on_timer(void *user, long timeout_ms)
{
    (void)user;
    deadline_ms = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
}

typedef struct app {
    const char *to, *body;
    int done, finished;
    char why[512];
} app;

static void on_pong(epode_conn_t *conn, epode_stanza_t *res, int status, void *user)
{
    (void)res;
    app *a = user;
    a->done = status == 0 ? 1 : -1;
    if (status < 0)
        snprintf(a->why, sizeof a->why, "no answer from the server: %s", epode_strerror(status));
    epode_conn_close(conn);
}

static void on_event(epode_conn_t *conn, epode_conn_event_t ev, void *user)
{
    app *a = user;
    if (ev == EPODE_CONN_READY) {
        epode_stanza_t *m, *ping;
        if (epode_stanza_new_message(NULL, "chat", a->to, a->body, &m) == 0) {
            epode_conn_send(conn, m);
            epode_stanza_unref(m);
        }
        if (epode_stanza_new_iq(NULL, "get", NULL, &ping) == 0) {
            epode_stanza_add_child_new(ping, "ping", "urn:xmpp:ping", NULL);
            epode_conn_send_iq(conn, ping, 10000, on_pong, a, NULL);
            epode_stanza_unref(ping);
        }
    } else if (ev == EPODE_CONN_DISCONNECTED) {
        if (a->done == 0) {
            a->done = -1;
            snprintf(a->why, sizeof a->why, "%s", epode_conn_error_text(conn));
        }
        a->finished = 1;
    }
}

int main(int argc, char **argv)
{
    cli_t o;
    cli_parse(&o, argc, argv, "TO MESSAGE");
    if (o.argc != 2) {
        fprintf(stderr, "poll-loop: need TO and MESSAGE\n");
        return 64;
    }
    epode_ctx_t *ctx;
    epode_conn_t *conn;
    cli_connect_setup(&o, &ctx, &conn);
    app a = {.to = o.argv[0], .body = o.argv[1]};
    epode_conn_add_event_cb(conn, on_event, &a, NULL);
    /* From here on, this program's loop drives epode. */
    if (epode_ctx_set_external_loop(ctx, on_watch, on_timer, NULL) < 0 ||
        epode_conn_connect(conn) < 0) {
        fprintf(stderr, "poll-loop: could not start\n");
        return 1;
    }
    while (!a.finished) {
        int timeout = deadline_ms < 0 ? -1 : (int)(deadline_ms > now_ms() ? deadline_ms - now_ms() : 0);
        int n = poll(fds, (nfds_t)nfds, timeout);
        if (n < 0)
            continue; /* EINTR */
        /* Copy first: epode may change the set while we process. */
        struct pollfd ready[MAX_FDS];
        int nready = 0;
        for (int i = 0; i < nfds; i++)
            if (fds[i].revents)
                ready[nready++] = fds[i];
        for (int i = 0; i < nready; i++) {
            unsigned ev = 0;
            if (ready[i].revents & (POLLIN | POLLHUP | POLLERR))
                ev |= EPODE_EV_READ;
            if (ready[i].revents & (POLLOUT | POLLERR))
                ev |= EPODE_EV_WRITE;
            epode_ctx_process(ctx, ready[i].fd, ev);
        }
        if (deadline_ms >= 0 && now_ms() >= deadline_ms) {
            deadline_ms = -1;
            epode_ctx_process(ctx, -1, 0);
        }
    }
    epode_conn_free(conn);
    epode_ctx_free(ctx);
    if (a.done != 1) {
        fprintf(stderr, "poll-loop: %s\n", a.why);
        return 1;
    }
    return 0;
}
