/* docs/examples/hello-bot.c */
/* Log in and answer every chat message.
 *
 *   EPODE_PASSWORD=secret hello-bot bot@example.org
 *
 * Optional: EPODE_SERVER=host (skip the SRV lookup) and EPODE_PORT=n, EPODE_CA_FILE=ca.pem
 * (trust this CA instead of the system store). Ctrl-C closes the stream
 * cleanly. Exits 0 after a clean close, 1 with the reason otherwise. */
#include <epode.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

static epode_ctx_t *ctx;
static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
    epode_ctx_wakeup(ctx); /* the one thread-safe, signal-safe call */
}

/* A message handler: `msg` is borrowed for the call. */
static int on_chat(epode_conn_t *conn, const epode_message_t *msg, void *user)
{
    epode_messaging_t *messaging = user;
    const char *from = epode_message_from(msg);
    const char *body = epode_message_body(msg, NULL);
    if (!from || !body)
        return EPODE_PASS; /* a chat state or a receipt, nothing to answer */

    char text[1024];
    snprintf(text, sizeof text, "Hello! You said: %s", body);
    epode_stanza_t *reply;
    if (epode_message_build("chat", from, text, NULL, epode_message_thread(msg), &reply) < 0)
        return EPODE_PASS;
    if (epode_messaging_send(messaging, reply) < 0)
        fprintf(stderr, "hello-bot: could not answer %s\n", from);
    epode_stanza_unref(reply); /* we built it, we drop our reference */
    (void)conn;
    return EPODE_HANDLED;
}

struct state {
    int done;   /* DISCONNECTED arrived */
    int failed; /* ... and not because we closed */
};

static void on_event(epode_conn_t *conn, epode_conn_event_t event, void *user)
{
    struct state *st = user;
    if (event == EPODE_CONN_READY) {
        printf("online as %s (%s)\n", epode_conn_bound_jid(conn), epode_conn_security(conn));
        fflush(stdout);
        epode_presence_send(conn, EPODE_SHOW_CHAT, "Say hello", 0);
    } else if (event == EPODE_CONN_DISCONNECTED) {
        st->done = 1;
        if (epode_conn_reason(conn) != EPODE_REASON_CLOSED) {
            st->failed = 1;
            fprintf(stderr, "hello-bot: %s (%s)\n", epode_conn_error_text(conn),
                    epode_err_name(epode_conn_error(conn)));
        }
    }
}

int main(int argc, char **argv)
{
    const char *password = getenv("EPODE_PASSWORD");
    if (argc != 2 || !password) {
        fprintf(stderr, "usage: EPODE_PASSWORD=... hello-bot JID\n");
        return 64;
    }
    int rc = epode_global_init();
    if (rc == 0)
        rc = epode_ctx_new(NULL, &ctx);
    if (rc < 0) {
        fprintf(stderr, "hello-bot: %s\n", epode_strerror(rc));
        return 1;
    }

    epode_conn_t *conn;
    epode_messaging_t *messaging = NULL;
    struct state st = {0, 0};
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
        rc = epode_messaging_new(conn, &messaging);
    if (rc == 0)
        rc = epode_messaging_handler_add(messaging, "chat", on_chat, messaging, NULL);
    if (rc == 0)
        rc = epode_conn_connect(conn);
    if (rc < 0) {
        fprintf(stderr, "hello-bot: %s\n", epode_strerror(rc));
        epode_messaging_free(messaging);
        epode_conn_free(conn);
        epode_ctx_free(ctx);
        return 1;
    }

    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);

    /* The built-in loop, one turn at a time so that we can look at the
     * flag the signal handler sets (epode_ctx_run() would do otherwise). */
    int closing = 0;
    while (!st.done && epode_ctx_run_once(ctx, -1) >= 0) {
        if (stop_requested && !closing) {
            closing = 1; /* DISCONNECTED, reason CLOSED, follows */
            if (epode_conn_close(conn) < 0)
                break;
        }
    }

    /* Helpers before their connection, connections before their context. */
    epode_messaging_free(messaging);
    epode_conn_free(conn);
    epode_ctx_free(ctx);
    return st.failed;
}
