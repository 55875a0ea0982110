/* tests/integration/im_message_probe.c — one epode connection with a
 * messaging helper, driven line by line on stdin by the integration tests
 * (test_im_messaging.py). Public API only.
 *
 *   im_message_probe --server H --port N --ca-file F --jid J --password P
 *                    [--origin-id 0|1] [--show S] [--priority N] [--timeout S]
 *
 * Prints: "ready FULLJID"; "message FROM TYPE id=ID state=STATE
 * receipt=0|1 origin=ID body=BODY"; "error FROM COND id=ID"; "receipt
 * FROM ACKED-ID"; "sent ID" and "done CMD OK|ERR" for commands;
 * "disconnected REASON TEXT" at the end. Commands: "receipts
 * request|answer|request,answer|none", "send TYPE TO BODY...", "state TO
 * active|composing|paused|inactive|gone", "quit". EOF on stdin quits too. */
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
    epode_messaging_t *m;
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

static int on_message(epode_conn_t *conn, const epode_message_t *m, void *user)
{
    (void)conn;
    (void)user;
    const char *body = epode_message_body(m, NULL), *id = epode_message_id(m);
    const char *state = epode_chatstate_name(epode_message_chatstate(m));
    if (strcmp(epode_message_type(m), "error") == 0) {
        out("error %s %s id=%s", epode_message_from(m) ? epode_message_from(m) : "-",
            epode_stanza_cond_name(epode_message_error(m, NULL, NULL)), id ? id : "-");
        return EPODE_HANDLED;
    }
    out("message %s %s id=%s state=%s receipt=%d origin=%s body=%s",
        epode_message_from(m) ? epode_message_from(m) : "-", epode_message_type(m),
        id ? id : "-", state ? state : "-", epode_message_wants_receipt(m),
        epode_message_origin_id(m) ? epode_message_origin_id(m) : "-", body ? body : "-");
    return EPODE_HANDLED;
}

static void on_receipt(epode_conn_t *conn, const char *from, const char *id, void *user)
{
    (void)conn;
    (void)user;
    out("receipt %s %s", from, id);
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
    } else if (strcmp(cmd, "send") == 0 && arg && rest) {
        /* send TYPE TO BODY */
        char *to = strtok(rest, " "), *body = strtok(NULL, "");
        epode_stanza_t *msg;
        rc = epode_message_build(arg, to ? to : "", body, NULL, NULL, &msg);
        if (rc == 0) {
            rc = epode_messaging_send(p->m, msg);
            if (rc == 0)
                out("sent %s", epode_stanza_get_id(msg));
            epode_stanza_unref(msg);
        }
    } else if (strcmp(cmd, "state") == 0 && arg && rest) {
        /* state TO STATE */
        epode_chatstate_t st = EPODE_CHATSTATE_NONE;
        for (int i = 1; i <= EPODE_CHATSTATE_GONE; i++)
            if (strcmp(rest, epode_chatstate_name((epode_chatstate_t)i)) == 0)
                st = (epode_chatstate_t)i;
        rc = epode_messaging_send_chatstate(p->m, arg, st);
    } else if (strcmp(cmd, "receipts") == 0 && arg) {
        unsigned f = 0;
        if (strstr(arg, "request"))
            f |= EPODE_RECEIPTS_REQUEST;
        if (strstr(arg, "answer"))
            f |= EPODE_RECEIPTS_ANSWER;
        rc = epode_messaging_set_receipts(p->m, f);
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
    const char *server = NULL, *ca = NULL, *jid = NULL, *pw = NULL;
    int origin = 0;
    unsigned port = 0, timeout = 60;
    probe p = {.show = EPODE_SHOW_AVAILABLE};
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (!strcmp(k, "--server")) server = v;
        else if (!strcmp(k, "--port")) port = (unsigned)atoi(v);
        else if (!strcmp(k, "--ca-file")) ca = v;
        else if (!strcmp(k, "--jid")) jid = v;
        else if (!strcmp(k, "--password")) pw = v;
        else if (!strcmp(k, "--origin-id")) origin = atoi(v);
        else if (!strcmp(k, "--priority")) p.priority = atoi(v);
        else if (!strcmp(k, "--timeout")) timeout = (unsigned)atoi(v);
        else if (!strcmp(k, "--show")) {
            if (epode_show_from_name(v, &p.show) < 0) {
                fprintf(stderr, "im_message_probe: bad show %s\n", v);
                return 64;
            }
        } else {
            fprintf(stderr, "im_message_probe: unknown option %s\n", k);
            return 64;
        }
    }
    if (!jid || !pw) {
        fprintf(stderr, "im_message_probe: --jid and --password are required\n");
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
        (rc = epode_messaging_new(p.conn, &p.m)) < 0 ||
        (rc = epode_messaging_handler_add(p.m, NULL, on_message, &p, NULL)) < 0 ||
        (rc = epode_messaging_set_receipt_cb(p.m, on_receipt, &p)) < 0 ||
        (rc = epode_messaging_set_origin_id(p.m, origin)) < 0 ||
        (rc = epode_conn_add_timer(p.conn, timeout * 1000, on_timeout, &p, NULL)) < 0 ||
        (rc = epode_conn_connect(p.conn)) < 0) {
        fprintf(stderr, "im_message_probe: %s\n", epode_strerror(rc));
        return 1;
    }
    epode_ctx_run(p.ctx);
    int ok = epode_conn_reason(p.conn) == EPODE_REASON_CLOSED;
    epode_messaging_free(p.m);
    epode_conn_free(p.conn);
    epode_ctx_free(p.ctx);
    return ok ? 0 : 1;
}
