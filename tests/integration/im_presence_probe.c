/* tests/integration/im_presence_probe.c — one epode connection with a
 * presence tracker, driven line by line on stdin by the integration tests
 * (test_im_presence.py). Public API only.
 *
 *   im_presence_probe --server H --port N --ca-file F --jid J --password P
 *                     [--auto-accept on|mutual] [--show S] [--priority N]
 *                     [--timeout S]
 *
 * Prints: "ready FULLJID"; "avail|changed FULL SHOW PRIO [STATUS]";
 * "unavail FULL"; "error FULL COND"; "sub request|approved|revoked|ended
 * BARE"; answers to commands; "disconnected REASON" at the end.
 * Commands: "subscribe JID", "approve JID", "deny JID", "unsubscribe JID",
 * "cancel JID", "presence SHOW PRIO [STATUS]", "best BARE" -> "best BARE
 * FULL|none", "count BARE" -> "count BARE N", "quit" (unavailable and a
 * clean close). EOF on stdin quits as well. */
#include <epode.h>

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *reasons[] = {"NONE", "CLOSED", "NETWORK", "TLS", "AUTH",
                                "STREAM_ERROR", "PROTOCOL", "TIMEOUT"};

typedef struct probe {
    epode_ctx_t *ctx;
    epode_conn_t *conn;
    epode_presence_tracker_t *tracker;
    epode_show_t show;
    int priority;
    int done;
    char line[4096];
    size_t len;
} probe;

static void out(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void out(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
}

static void on_change(epode_conn_t *conn, const epode_presence_info_t *i,
                      epode_presence_change_t ch, void *user)
{
    (void)conn;
    (void)user;
    const char *st = epode_presence_info_status(i);
    if (ch == EPODE_PRESENCE_AVAILABLE || ch == EPODE_PRESENCE_CHANGED)
        out("%s %s %s %d%s%s", ch == EPODE_PRESENCE_AVAILABLE ? "avail" : "changed",
            epode_presence_info_jid(i), epode_show_name(epode_presence_info_show(i)),
            epode_presence_info_priority(i), st ? " " : "", st ? st : "");
    else if (ch == EPODE_PRESENCE_UNAVAILABLE)
        out("unavail %s", epode_presence_info_jid(i));
    else
        out("error %s %s", epode_presence_info_jid(i),
            epode_stanza_cond_name(epode_presence_info_error(i)));
}

static int on_sub(epode_conn_t *conn, const char *from, epode_subscription_t what,
                  const char *status, void *user)
{
    (void)conn;
    (void)status;
    (void)user;
    static const char *names[] = {"?", "request", "approved", "revoked", "ended"};
    out("sub %s %s", names[what], from);
    return EPODE_SUB_DEFER;
}

static void command(probe *p, char *line)
{
    char *cmd = strtok(line, " "), *arg = strtok(NULL, " "), *rest = strtok(NULL, "");
    int rc = 0;
    if (!cmd)
        return;
    if (strcmp(cmd, "quit") == 0) {
        rc = epode_presence_close(p->conn, NULL);
        p->done = 1;
    } else if (strcmp(cmd, "subscribe") == 0 && arg) {
        rc = epode_presence_subscribe(p->conn, arg, NULL);
    } else if (strcmp(cmd, "approve") == 0 && arg) {
        rc = epode_presence_approve(p->conn, arg);
    } else if (strcmp(cmd, "deny") == 0 && arg) {
        rc = epode_presence_deny(p->conn, arg);
    } else if (strcmp(cmd, "cancel") == 0 && arg) {
        rc = epode_presence_cancel(p->conn, arg);
    } else if (strcmp(cmd, "unsubscribe") == 0 && arg) {
        rc = epode_presence_unsubscribe(p->conn, arg);
    } else if (strcmp(cmd, "presence") == 0 && arg && rest) {
        epode_show_t show;
        char *status = strchr(rest, ' ');
        if (status)
            *status++ = 0;
        rc = epode_show_from_name(arg, &show);
        if (rc == 0)
            rc = epode_presence_send(p->conn, show, status, atoi(rest));
    } else if (strcmp(cmd, "best") == 0 && arg) {
        const epode_presence_info_t *b = epode_presence_tracker_best(p->tracker, arg);
        out("best %s %s", arg, b ? epode_presence_info_jid(b) : "none");
    } else if (strcmp(cmd, "count") == 0 && arg) {
        out("count %s %zu", arg, epode_presence_tracker_resource_count(p->tracker, arg));
    } else {
        out("bad-command %s", cmd);
        return;
    }
    out("done %s %s", cmd, rc < 0 ? epode_err_name(rc) : "OK");
}

static int poll_stdin(epode_conn_t *conn, void *user)
{
    (void)conn;
    probe *p = user;
    char buf[1024];
    for (;;) {
        ssize_t n = read(0, buf, sizeof buf);
        if (n == 0) {
            if (!p->done) {
                p->done = 1;
                epode_presence_close(p->conn, NULL);
            }
            return 0;
        }
        if (n < 0)
            return errno == EAGAIN || errno == EINTR ? 1 : 0;
        for (ssize_t i = 0; i < n; i++) {
            if (buf[i] == '\n') {
                p->line[p->len] = 0;
                p->len = 0;
                command(p, p->line);
                if (p->done)
                    return 0;
            } else if (p->len + 1 < sizeof p->line) {
                p->line[p->len++] = buf[i];
            }
        }
    }
}

static void on_event(epode_conn_t *conn, epode_conn_event_t ev, void *user)
{
    probe *p = user;
    if (ev == EPODE_CONN_READY) {
        out("ready %s", epode_conn_bound_jid(conn));
        epode_presence_send(conn, p->show, NULL, p->priority);
        epode_conn_add_timer(conn, 20, poll_stdin, p, NULL);
    } else if (ev == EPODE_CONN_DISCONNECTED) {
        out("disconnected %s %s", reasons[epode_conn_reason(conn)], epode_conn_error_text(conn));
        epode_ctx_stop(p->ctx);
    }
}

static int on_timeout(epode_conn_t *conn, void *user)
{
    (void)user;
    out("timeout");
    epode_conn_close(conn);
    return 0;
}

int main(int argc, char **argv)
{
    const char *server = NULL, *ca = NULL, *jid = NULL, *pw = NULL, *auto_accept = NULL;
    unsigned port = 0, timeout = 60;
    probe p = {.show = EPODE_SHOW_AVAILABLE};
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (!strcmp(k, "--server")) server = v;
        else if (!strcmp(k, "--port")) port = (unsigned)atoi(v);
        else if (!strcmp(k, "--ca-file")) ca = v;
        else if (!strcmp(k, "--jid")) jid = v;
        else if (!strcmp(k, "--password")) pw = v;
        else if (!strcmp(k, "--auto-accept")) auto_accept = v;
        else if (!strcmp(k, "--priority")) p.priority = atoi(v);
        else if (!strcmp(k, "--timeout")) timeout = (unsigned)atoi(v);
        else if (!strcmp(k, "--show")) {
            if (epode_show_from_name(v, &p.show) < 0) {
                fprintf(stderr, "im_presence_probe: bad show %s\n", v);
                return 64;
            }
        } else {
            fprintf(stderr, "im_presence_probe: unknown option %s\n", k);
            return 64;
        }
    }
    if (!jid || !pw) {
        fprintf(stderr, "im_presence_probe: --jid and --password are required\n");
        return 64;
    }
    fcntl(0, F_SETFL, fcntl(0, F_GETFL) | O_NONBLOCK);
    int rc;
    if ((rc = epode_global_init()) < 0 || (rc = epode_ctx_new(NULL, &p.ctx)) < 0 ||
        (rc = epode_conn_new(p.ctx, &p.conn)) < 0 || (rc = epode_conn_set_jid(p.conn, jid)) < 0 ||
        (rc = epode_conn_set_password(p.conn, pw)) < 0 ||
        (server && (rc = epode_conn_set_server(p.conn, server, port)) < 0) ||
        (ca && (rc = epode_conn_set_ca_file(p.conn, ca)) < 0) ||
        (rc = epode_conn_add_event_cb(p.conn, on_event, &p, NULL)) < 0 ||
        (rc = epode_presence_tracker_new(p.conn, &p.tracker)) < 0 ||
        (rc = epode_presence_tracker_set_event_cb(p.tracker, on_change, &p)) < 0 ||
        (rc = epode_presence_tracker_set_subscription_cb(p.tracker, on_sub, &p)) < 0 ||
        (auto_accept && (rc = epode_presence_tracker_set_auto_accept(
                             p.tracker, strcmp(auto_accept, "mutual") == 0
                                            ? EPODE_AUTO_ACCEPT_MUTUAL
                                            : EPODE_AUTO_ACCEPT_ON)) < 0) ||
        (rc = epode_conn_add_timer(p.conn, timeout * 1000, on_timeout, &p, NULL)) < 0 ||
        (rc = epode_conn_connect(p.conn)) < 0) {
        fprintf(stderr, "im_presence_probe: %s\n", epode_strerror(rc));
        return 1;
    }
    epode_ctx_run(p.ctx);
    int ok = epode_conn_reason(p.conn) == EPODE_REASON_CLOSED;
    epode_presence_tracker_free(p.tracker);
    epode_conn_free(p.conn);
    epode_ctx_free(p.ctx);
    return ok ? 0 : 1;
}
