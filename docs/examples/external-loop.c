/* docs/examples/external-loop.c */
/* Drive epode from your own poll(2) loop.
 *
 *   EPODE_PASSWORD=secret external-loop me@example.org
 *
 * Logs in, asks the server for a ping (XEP-0199), prints the round trip
 * and closes. epode never blocks and never sleeps here: it tells this
 * program which fds to watch (on_watch) and when its next deadline is
 * (on_timer); the loop calls epode_ctx_process() when one of them is due.
 * Optional: EPODE_SERVER=host, EPODE_PORT=n, EPODE_CA_FILE=ca.pem. */
#include <epode.h>

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* What epode wants watched, in the form poll(2) takes. */
#define MAX_FDS 16
static struct pollfd fds[MAX_FDS];
static int nfds;
static long deadline = -1; /* absolute, in now_ms() time; -1: none */

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

/* epode: "watch `fd` for `events`" (0: "stop watching it, I close it"). */
static void on_watch(void *user, int fd, unsigned events, void *fd_user)
{
    (void)user, (void)fd_user;
    int i = 0;
    while (i < nfds && fds[i].fd != fd)
        i++;
    if (events == 0) {
        if (i < nfds)
            fds[i] = fds[--nfds];
        return;
    }
    if (i == nfds) {
        if (nfds == MAX_FDS)
            return; /* a real program would grow its table */
        fds[nfds++].fd = fd;
    }
    fds[i].events = (short)(((events & EPODE_EV_READ) ? POLLIN : 0) |
                            ((events & EPODE_EV_WRITE) ? POLLOUT : 0));
}

/* epode: "call epode_ctx_process(ctx, -1, 0) in `timeout_ms`" (0: now,
 * -1: never mind). Each call replaces the previous deadline. */
static void on_timer(void *user, long timeout_ms)
{
    (void)user;
    deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
}

struct state {
    long sent_at;
    int done, failed;
};

/* The answer to our IQ: `result` is borrowed for the call. */
static void on_pong(epode_conn_t *conn, epode_stanza_t *result, int status, void *user)
{
    struct state *st = user;
    if (status < 0) { /* EPODE_ETIMEDOUT or EPODE_ECANCELED: no stanza */
        fprintf(stderr, "external-loop: no answer: %s\n", epode_strerror(status));
        st->failed = 1;
    } else if (strcmp(epode_stanza_get_type(result), "error") == 0) { /* or "result" */
        epode_stanza_cond_t cond;
        epode_stanza_get_error(result, &cond, NULL, NULL);
        fprintf(stderr, "external-loop: ping refused: %s\n", epode_stanza_cond_name(cond));
        st->failed = 1;
    } else {
        printf("pong after %ld ms\n", now_ms() - st->sent_at);
    }
    epode_conn_close(conn);
}

static void send_ping(epode_conn_t *conn, struct state *st)
{
    epode_stanza_t *iq;
    if (epode_stanza_new_iq(NULL, "get", NULL, &iq) < 0) {
        st->failed = 1;
        epode_conn_close(conn);
        return;
    }
    st->sent_at = now_ms();
    if (epode_stanza_add_child_new(iq, "ping", EPODE_NS_PING, NULL) < 0 ||
        epode_conn_send_iq(conn, iq, 10000, on_pong, st, NULL) < 0) {
        st->failed = 1;
        epode_conn_close(conn);
    }
    epode_stanza_unref(iq); /* sending serialized it: our reference is ours to drop */
}

static void on_event(epode_conn_t *conn, epode_conn_event_t event, void *user)
{
    struct state *st = user;
    if (event == EPODE_CONN_READY) {
        send_ping(conn, st);
    } else if (event == EPODE_CONN_DISCONNECTED) {
        st->done = 1;
        if (epode_conn_reason(conn) != EPODE_REASON_CLOSED) {
            st->failed = 1;
            fprintf(stderr, "external-loop: %s\n", epode_conn_error_text(conn));
        }
    }
}

int main(int argc, char **argv)
{
    const char *password = getenv("EPODE_PASSWORD");
    if (argc != 2 || !password) {
        fprintf(stderr, "usage: EPODE_PASSWORD=... external-loop JID\n");
        return 64;
    }
    epode_ctx_t *ctx;
    int rc = epode_global_init();
    if (rc == 0)
        rc = epode_ctx_new(NULL, &ctx);
    if (rc < 0) {
        fprintf(stderr, "external-loop: %s\n", epode_strerror(rc));
        return 1;
    }
    /* From here on, this program's loop drives the context. */
    rc = epode_ctx_set_external_loop(ctx, on_watch, on_timer, NULL);

    epode_conn_t *conn = NULL;
    struct state st = {0, 0, 0};
    if (rc == 0)
        rc = epode_conn_new(ctx, &conn);
    if (rc == 0)
        rc = epode_conn_set_jid(conn, argv[1]);
    if (rc == 0)
        rc = epode_conn_set_password(conn, password);
    if (rc == 0 && getenv("EPODE_SERVER")) {
        const char *port = getenv("EPODE_PORT");
        rc = epode_conn_set_server(conn, getenv("EPODE_SERVER"), port ? (unsigned)atoi(port) : 0);
    }
    if (rc == 0 && getenv("EPODE_CA_FILE"))
        rc = epode_conn_set_ca_file(conn, getenv("EPODE_CA_FILE"));
    if (rc == 0)
        rc = epode_conn_add_event_cb(conn, on_event, &st, NULL);
    if (rc == 0)
        rc = epode_conn_connect(conn);
    if (rc < 0) {
        fprintf(stderr, "external-loop: %s\n", epode_strerror(rc));
        epode_conn_free(conn);
        epode_ctx_free(ctx);
        return 1;
    }

    while (!st.done) {
        long wait = -1;
        if (deadline >= 0)
            wait = deadline > now_ms() ? deadline - now_ms() : 0;
        if (poll(fds, (nfds_t)nfds, (int)wait) < 0)
            continue; /* EINTR */

        /* Copy what is ready first: epode may change fds[] while it runs. */
        struct pollfd ready[MAX_FDS];
        int nready = 0;
        for (int i = 0; i < nfds; i++)
            if (fds[i].revents)
                ready[nready++] = fds[i];
        for (int i = 0; i < nready; i++) {
            unsigned events = 0;
            if (ready[i].revents & (POLLIN | POLLHUP | POLLERR))
                events |= EPODE_EV_READ;
            if (ready[i].revents & (POLLOUT | POLLERR))
                events |= EPODE_EV_WRITE;
            epode_ctx_process(ctx, ready[i].fd, events);
        }
        if (deadline >= 0 && now_ms() >= deadline) {
            deadline = -1; /* on_timer sets the next one, if any */
            epode_ctx_process(ctx, -1, 0);
        }
    }

    epode_conn_free(conn);
    epode_ctx_free(ctx);
    return st.failed;
}
