/* docs/examples/roster-dump.c */
/* Print the account's roster and leave.
 *
 *   EPODE_PASSWORD=secret roster-dump me@example.org
 *
 * One line per contact: JID, subscription, name, groups. Built on the
 * roster helper (epode/roster.h), which fetches the roster on READY and
 * says so with EPODE_ROSTER_RECEIVED. Optional: EPODE_SERVER=host,
 * EPODE_PORT=n, EPODE_CA_FILE=ca.pem. */
#include <epode.h>

#include <stdio.h>
#include <stdlib.h>

struct state {
    epode_conn_t *conn;
    int failed;
};

static void print_item(const epode_roster_item_t *item)
{
    const char *name = epode_roster_item_name(item);
    printf("%s\t%s\t%s\t", epode_roster_item_jid(item),
           epode_roster_sub_name(epode_roster_item_subscription(item)), name ? name : "");
    for (size_t g = 0; g < epode_roster_item_group_count(item); g++)
        printf("%s%s", g ? "," : "", epode_roster_item_group(item, g));
    printf("\n");
}

/* Items are borrowed: valid until the roster next changes. */
static void on_roster(epode_roster_t *roster, epode_roster_event_t event,
                      const epode_roster_item_t *item, void *user)
{
    struct state *st = user;
    (void)item; /* set for ADDED/UPDATED/REMOVED, which we do not watch */
    if (event == EPODE_ROSTER_RECEIVED) {
        for (size_t i = 0; i < epode_roster_count(roster); i++)
            print_item(epode_roster_item_at(roster, i));
        epode_conn_close(st->conn);
    } else if (event == EPODE_ROSTER_FETCH_FAILED) {
        fprintf(stderr, "roster-dump: the roster could not be fetched\n");
        st->failed = 1;
        epode_conn_close(st->conn);
    }
}

static void on_event(epode_conn_t *conn, epode_conn_event_t event, void *user)
{
    struct state *st = user;
    if (event == EPODE_CONN_DISCONNECTED) {
        if (epode_conn_reason(conn) != EPODE_REASON_CLOSED) {
            st->failed = 1;
            fprintf(stderr, "roster-dump: %s\n", epode_conn_error_text(conn));
        }
        epode_ctx_stop(epode_conn_ctx(conn));
    }
}

int main(int argc, char **argv)
{
    const char *password = getenv("EPODE_PASSWORD");
    if (argc != 2 || !password) {
        fprintf(stderr, "usage: EPODE_PASSWORD=... roster-dump JID\n");
        return 64;
    }
    epode_ctx_t *ctx;
    int rc = epode_global_init();
    if (rc == 0)
        rc = epode_ctx_new(NULL, &ctx);
    if (rc < 0) {
        fprintf(stderr, "roster-dump: %s\n", epode_strerror(rc));
        return 1;
    }

    struct state st = {NULL, 0};
    epode_roster_t *roster = NULL;
    rc = epode_conn_new(ctx, &st.conn);
    if (rc == 0)
        rc = epode_conn_set_jid(st.conn, argv[1]);
    if (rc == 0)
        rc = epode_conn_set_password(st.conn, password);
    if (rc == 0 && getenv("EPODE_SERVER")) {
        const char *port = getenv("EPODE_PORT");
        rc = epode_conn_set_server(st.conn, getenv("EPODE_SERVER"),
                                   port ? (unsigned)atoi(port) : 0);
    }
    if (rc == 0 && getenv("EPODE_CA_FILE"))
        rc = epode_conn_set_ca_file(st.conn, getenv("EPODE_CA_FILE"));
    if (rc == 0)
        rc = epode_conn_add_event_cb(st.conn, on_event, &st, NULL);
    if (rc == 0)
        rc = epode_roster_new(st.conn, &roster);
    if (rc == 0)
        rc = epode_roster_set_event_cb(roster, on_roster, &st);
    if (rc == 0)
        rc = epode_conn_connect(st.conn);
    if (rc == 0)
        rc = epode_ctx_run(ctx); /* returns after epode_ctx_stop() */
    if (rc < 0) {
        fprintf(stderr, "roster-dump: %s\n", epode_strerror(rc));
        st.failed = 1;
    }

    epode_roster_free(roster); /* helpers before their connection */
    epode_conn_free(st.conn);
    epode_ctx_free(ctx);
    return st.failed;
}
