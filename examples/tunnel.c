/* examples/tunnel.c — an application-owned transport (epode/transport.h):
 * the connection runs over one end of a socketpair this program owns; a
 * relay thread of the program copies the other end to the real server
 * over TCP. Replace the relay with a serial line, an SSH channel or a
 * test harness: epode only sees the pipe, and still runs TLS (STARTTLS
 * or direct) over it, checked against the XMPP domain as usual.
 *
 *   tunnel [--server HOST --port N | --relay-to HOST:PORT] --jid JID
 *          --password-file FILE [--direct-tls] [--ca-file FILE]
 *
 * Logs in, sends itself a message, waits for it to come back, prints
 *   ready JID / security LINE / echo ok
 * and closes; exit 0 then, 1 on failure. Without --relay-to the relay
 * connects where epode asks it to (the --server/--port given, else the
 * JID's domain on 5222, or 5223 with --direct-tls; epode makes no DNS
 * lookup of its own with an application's transport). */
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <fcntl.h>

#include "common/cli.h"

/* ---- the pipe and its relay ------------------------------------------------------ */

static int errno_is_again(void)
{
    return errno == EAGAIN || errno == EWOULDBLOCK;
}

typedef struct tunnel {
    const char *relay_host; /* --relay-to, or NULL: where epode asks */
    char relay_port[8];
    int ours;               /* our end of the socketpair (epode's pipe) */
    int theirs, tcp;        /* the relay's end, and its link to the server */
    pthread_t relay;
    int relaying;
} tunnel;

/* Copies both ways until either side ends, then closes both. */
static void *relay_main(void *arg)
{
    tunnel *t = arg;
    struct pollfd p[2] = {{t->theirs, POLLIN, 0}, {t->tcp, POLLIN, 0}};
    char buf[16384];
    for (;;) {
        if (poll(p, 2, -1) < 0)
            break;
        int i = (p[0].revents & (POLLIN | POLLHUP | POLLERR)) ? 0
                : (p[1].revents & (POLLIN | POLLHUP | POLLERR)) ? 1 : -1;
        if (i < 0)
            continue;
        ssize_t n = read(p[i].fd, buf, sizeof buf);
        if (n <= 0)
            break;
        for (ssize_t off = 0; off < n;) {
            ssize_t w = send(p[1 - i].fd, buf + off, (size_t)(n - off), MSG_NOSIGNAL);
            if (w <= 0)
                goto out;
            off += w;
        }
    }
out:
    close(t->tcp);
    close(t->theirs);
    return NULL;
}

static int connect_tcp(const char *host, const char *port)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res, *ai;
    if (getaddrinfo(host, port, &hints, &res) != 0)
        return -1;
    int fd = -1;
    for (ai = res; ai && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol);
        if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    return fd;
}

/* epode calls open() at each connection attempt: make a fresh pipe and
 * relay. (A blocking connect keeps the example short; a real program
 * would connect without blocking its loop.) */
static int t_open(void *user, const char *host, unsigned port)
{
    tunnel *t = user;
    char p[8];
    snprintf(p, sizeof p, "%u", port);
    t->tcp = t->relay_host ? connect_tcp(t->relay_host, t->relay_port) : connect_tcp(host, p);
    if (t->tcp < 0)
        return EPODE_ENET;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0) {
        close(t->tcp);
        return EPODE_ENET;
    }
    t->ours = sv[0];
    t->theirs = sv[1];
    fcntl(t->ours, F_SETFL, fcntl(t->ours, F_GETFL) | O_NONBLOCK); /* never block epode */
    if (pthread_create(&t->relay, NULL, relay_main, t) != 0) {
        close(sv[0]);
        close(sv[1]);
        close(t->tcp);
        return EPODE_ENET;
    }
    t->relaying = 1;
    return 0;
}

static long t_read(void *user, void *buf, size_t len)
{
    ssize_t n = recv(((tunnel *)user)->ours, buf, len, 0);
    if (n < 0)
        return errno_is_again() ? EPODE_EAGAIN : EPODE_ENET;
    return (long)n;
}

static long t_write(void *user, const void *buf, size_t len)
{
    ssize_t n = send(((tunnel *)user)->ours, buf, len, MSG_NOSIGNAL);
    if (n < 0)
        return errno_is_again() ? EPODE_EAGAIN : EPODE_ENET;
    return (long)n;
}

static int t_fd(void *user)
{
    return ((tunnel *)user)->ours; /* epode's loop watches it */
}

static int t_shutdown(void *user)
{
    shutdown(((tunnel *)user)->ours, SHUT_WR);
    return 0;
}

static void t_close(void *user)
{
    tunnel *t = user;
    if (!t->relaying)
        return;
    shutdown(t->ours, SHUT_RDWR); /* the relay sees the end and stops */
    pthread_join(t->relay, NULL);
    close(t->ours);
    t->relaying = 0;
}

static const epode_transport_ops_t tunnel_ops = {
    .size = sizeof(epode_transport_ops_t),
    .name = "socketpair-tunnel",
    .framing = EPODE_FRAMING_STREAM,
    .open = t_open,
    .read = t_read,
    .write = t_write,
    .fd = t_fd,
    .shutdown = t_shutdown,
    .close = t_close,
    /* wants: NULL (read always, write after EAGAIN); pending: none */
};

/* ---- the XMPP side ------------------------------------------------------------------- */

static int done, failed, echoed;

static void on_event(epode_conn_t *c, epode_conn_event_t ev, void *user)
{
    (void)user;
    if (ev == EPODE_CONN_READY) {
        printf("ready %s\nsecurity %s\n", epode_conn_bound_jid(c), epode_conn_security(c));
        epode_stanza_t *m;
        if (epode_stanza_new_message(NULL, "chat", epode_conn_bound_jid(c), "through the tunnel",
                                     &m) == 0) {
            epode_conn_send(c, m);
            epode_stanza_unref(m);
        }
    } else if (ev == EPODE_CONN_DISCONNECTED) {
        if (!echoed) {
            fprintf(stderr, "tunnel: %s\n", cli_reason(c));
            failed = 1;
        }
        done = 1;
    }
}

static int on_message(epode_conn_t *c, epode_stanza_t *st, void *user)
{
    (void)user;
    const char *body = epode_stanza_child_text(st, "body", NULL);
    if (body && strcmp(body, "through the tunnel") == 0 && !echoed) {
        echoed = 1;
        printf("echo ok\n");
        fflush(stdout);
        epode_conn_close(c);
    }
    return EPODE_HANDLED;
}

int main(int argc, char **argv)
{
    static tunnel t;
    cli_t o;
    cli_set_help("Logs in over a socketpair this program owns, relayed to the server by a "
                 "thread of its own (an application's transport), sends itself a message "
                 "and waits for it.",
                 "  --relay-to HOST:PORT   where the relay connects (default: where epode\n"
                 "                         asks: --server/--port, else the JID's domain)\n");
    /* --relay-to first, the shared options after it */
    if (argc > 2 && strcmp(argv[1], "--relay-to") == 0) {
        static char host[256];
        const char *colon = strrchr(argv[2], ':');
        if (!colon || (size_t)(colon - argv[2]) >= sizeof host) {
            fprintf(stderr, "tunnel: --relay-to HOST:PORT\n");
            return 64;
        }
        memcpy(host, argv[2], (size_t)(colon - argv[2]));
        t.relay_host = host;
        snprintf(t.relay_port, sizeof t.relay_port, "%s", colon + 1);
        argv[2] = argv[0];
        argv += 2;
        argc -= 2;
    }
    cli_parse(&o, argc, argv, "");
    if (!o.jid || !o.password_file) {
        fprintf(stderr, "tunnel: --jid and --password-file are required\n");
        return 64;
    }
    cli_catch_signals();
    epode_ctx_t *ctx;
    epode_conn_t *conn;
    cli_connect_setup(&o, &ctx, &conn);
    if (epode_conn_set_transport(conn, &tunnel_ops, &t) < 0 ||
        epode_conn_add_event_cb(conn, on_event, NULL, NULL) < 0 ||
        epode_conn_add_handler(conn, "message", NULL, NULL, on_message, NULL, NULL) < 0 ||
        epode_conn_connect(conn) < 0) {
        fprintf(stderr, "tunnel: could not start\n");
        return 1;
    }
    while (!done && !cli_stop_requested())
        if (epode_ctx_run_once(ctx, -1) < 0)
            break;
    epode_conn_free(conn);
    epode_ctx_free(ctx);
    return failed || !echoed ? 1 : 0;
}
