/* tests/unit/test_conn.c — a connection over a memory transport to a
 * scripted server: handler dispatch through a real conn, IQ answers and
 * timeouts, service-unavailable for unhandled requests (and only those),
 * outgoing filters, event listeners, a clean close, closing at every
 * stage (one DISCONNECTED each time), and the presence re-sent after a
 * fresh login. */
#include "test.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "scripted.h"

TEST(conn_logs_in_over_a_scripted_server)
{
    scripted s;
    CHECK_INT(scripted_login(&s, "example.com", "anon@example.com/r1"), 0);
    CHECK_STR(epode_conn_bound_jid(s.conn), "anon@example.com/r1");
    CHECK_INT(s.nevents, 2);
    CHECK_INT(s.events[0], EPODE_CONN_AUTHENTICATED);
    CHECK_INT(s.events[1], EPODE_CONN_READY);
    scripted_free(&s);
}

TEST(conn_answers_unhandled_iq_with_service_unavailable)
{
    scripted s;
    CHECK_INT(scripted_login(&s, "example.com", "anon@example.com/r1"), 0);
    scripted_send(&s, "<iq type='get' id='q1' from='romeo@example.net/x'><query xmlns='urn:unknown'/></iq>");
    const char *t = scripted_next_text(&s);
    CHECK(strstr(t, "type=\"error\""));
    CHECK(strstr(t, "id=\"q1\""));
    CHECK(strstr(t, "to=\"romeo@example.net/x\""));
    CHECK(strstr(t, "<service-unavailable xmlns=\"urn:ietf:params:xml:ns:xmpp-stanzas\"/>"));
    /* results and errors are never answered */
    scripted_send(&s, "<iq type='result' id='zz'/>");
    scripted_send(&s, "<iq type='error' id='zy'/>");
    CHECK(scripted_next(&s) == NULL);
    scripted_free(&s);
}

static int take_ping(epode_conn_t *c, epode_stanza_t *st, void *u)
{
    (void)u;
    epode_stanza_t *r;
    if (epode_stanza_reply(st, &r) == 0) {
        epode_conn_send(c, r);
        epode_stanza_unref(r);
    }
    return EPODE_HANDLED;
}

TEST(conn_handler_takes_iq_and_replies)
{
    scripted s;
    CHECK_INT(scripted_login(&s, "example.com", "anon@example.com/r1"), 0);
    CHECK_INT(epode_handler_add(s.conn, "iq", "urn:xmpp:ping", "get", take_ping, NULL, NULL), 0);
    scripted_send(&s, "<iq type='get' id='p1' from='example.com'><ping xmlns='urn:xmpp:ping'/></iq>");
    CHECK_STR(scripted_next_text(&s), "<iq to=\"example.com\" id=\"p1\" type=\"result\"/>");
    scripted_free(&s);
}

typedef struct answer { int calls, status; char type[16]; } answer;

static void on_answer(epode_conn_t *c, epode_stanza_t *res, int status, void *u)
{
    (void)c;
    answer *a = u;
    a->calls++;
    a->status = status;
    snprintf(a->type, sizeof a->type, "%s", res ? epode_stanza_get_type(res) : "-");
}

TEST(conn_send_iq_gets_its_answer_once)
{
    scripted s;
    CHECK_INT(scripted_login(&s, "example.com", "anon@example.com/r1"), 0);
    epode_stanza_t *iq;
    CHECK_INT(epode_iq_new(NULL, "get", "v1", &iq), 0);
    epode_stanza_set_to(iq, "peer@example.net/x");
    epode_stanza_add_child_new(iq, "query", "jabber:iq:version", NULL);
    answer a = {0};
    CHECK_INT(epode_conn_send_iq(s.conn, iq, 5000, on_answer, &a, NULL), 0);
    epode_stanza_unref(iq);
    scripted_pump(&s);
    CHECK(strstr(scripted_next_text(&s), "id=\"v1\""));
    /* from someone else: ignored (and, being a result, not answered) */
    scripted_send(&s, "<iq type='result' id='v1' from='mallory@evil.example'/>");
    CHECK_INT(a.calls, 0);
    scripted_send(&s, "<iq type='result' id='v1' from='peer@example.net/x'/>");
    CHECK_INT(a.calls, 1);
    CHECK_INT(a.status, 0);
    CHECK_STR(a.type, "result");
    scripted_free(&s);
}

TEST(conn_pending_iq_is_canceled_when_the_stream_ends)
{
    scripted s;
    CHECK_INT(scripted_login(&s, "example.com", "anon@example.com/r1"), 0);
    epode_stanza_t *iq;
    CHECK_INT(epode_iq_new(NULL, "get", NULL, &iq), 0);
    answer a = {0};
    CHECK_INT(epode_conn_send_iq(s.conn, iq, 5000, on_answer, &a, NULL), 0);
    epode_stanza_unref(iq);
    scripted_send(&s, "<stream:error><system-shutdown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>");
    CHECK_INT(a.calls, 1);
    CHECK_INT(a.status, EPODE_ECANCELED);
    CHECK_INT(epode_conn_reason(s.conn), EPODE_REASON_STREAM_ERROR);
    CHECK_STR(epode_conn_condition(s.conn), "system-shutdown");
    CHECK_INT(s.events[s.nevents - 1], EPODE_CONN_DISCONNECTED);
    scripted_free(&s);
}

static int add_marker(epode_conn_t *c, epode_stanza_t *st, void *u)
{
    (void)c, (void)u;
    epode_stanza_add_child_new(st, "c", "urn:test:marker", NULL);
    return EPODE_PASS;
}

TEST(conn_outgoing_filter_changes_a_copy_only)
{
    scripted s;
    CHECK_INT(scripted_login(&s, "example.com", "anon@example.com/r1"), 0);
    CHECK_INT(epode_handler_add_outgoing(s.conn, "presence", NULL, NULL, add_marker, NULL, NULL), 0);
    epode_stanza_t *p, *m;
    CHECK_INT(epode_presence_new(NULL, NULL, NULL, &p), 0);
    CHECK_INT(epode_message_new(NULL, "chat", "a@b", "hi", &m), 0);
    CHECK_INT(epode_conn_send(s.conn, p), 0);
    CHECK_INT(epode_conn_send(s.conn, m), 0);
    scripted_pump(&s);
    CHECK_STR(scripted_next_text(&s), "<presence><c xmlns=\"urn:test:marker\"/></presence>");
    CHECK_STR(scripted_next_text(&s), "<message type=\"chat\" to=\"a@b\"><body>hi</body></message>");
    CHECK(epode_stanza_first_child(p) == NULL); /* the caller's stanza is untouched */
    epode_stanza_unref(p), epode_stanza_unref(m);
    scripted_free(&s);
}

TEST(conn_close_handshake_over_memory)
{
    scripted s;
    CHECK_INT(scripted_login(&s, "example.com", "anon@example.com/r1"), 0);
    CHECK_INT(epode_conn_close(s.conn), 0);
    scripted_pump(&s);
    CHECK_INT(s.nevents, 2); /* no DISCONNECTED until the server answers */
    scripted_send(&s, "</stream:stream>");
    CHECK_INT(s.events[s.nevents - 1], EPODE_CONN_DISCONNECTED);
    CHECK_INT(epode_conn_reason(s.conn), EPODE_REASON_CLOSED);
    CHECK_INT(epode_conn_close(s.conn), EPODE_ESTATE);
    scripted_free(&s);
}

TEST(conn_send_before_ready_is_refused)
{
    epode_ctx_t *ctx;
    epode_conn_t *conn;
    CHECK_INT(epode_global_init(), 0);
    CHECK_INT(epode_ctx_new(NULL, &ctx), 0);
    CHECK_INT(epode_conn_new(ctx, &conn), 0);
    epode_stanza_t *m;
    CHECK_INT(epode_message_new(NULL, "chat", "a@b", "x", &m), 0);
    CHECK_INT(epode_conn_send(conn, m), EPODE_ESTATE);
    CHECK_INT(epode_conn_connect(conn), EPODE_EINVAL); /* no JID */
    CHECK_INT(epode_conn_set_jid(conn, "not a jid@"), EPODE_EJID);
    CHECK_INT(epode_ctx_free(ctx), EPODE_ESTATE); /* a connection still lives */
    epode_stanza_unref(m);
    epode_conn_free(conn);
    CHECK_INT(epode_ctx_free(ctx), 0);
}

TEST(conn_exposes_stream_features_and_allocator)
{
    scripted s;
    CHECK_INT(scripted_login(&s, "example.com", "anon@example.com/r1"), 0);
    const epode_stanza_t *f = epode_conn_stream_features(s.conn);
    CHECK(f);
    CHECK(epode_stanza_find_child(f, "bind", "urn:ietf:params:xml:ns:xmpp-bind"));
    CHECK(epode_ctx_mem(s.ctx) == NULL);
    epode_conn_close(s.conn);
    scripted_send(&s, "</stream:stream>");
    CHECK(epode_conn_stream_features(s.conn) == NULL);
    scripted_free(&s);
}

static void count_acks(epode_conn_t *c, int acked, const char *id, const char *xml, size_t len,
                       void *user)
{
    (void)c, (void)id, (void)xml, (void)len;
    int *n = user;
    n[acked ? 0 : 1]++;
}

TEST(conn_dead_link_detected_when_acks_stop)
{
    scripted s;
    CHECK_INT(scripted_login_sm(&s, "example.com", "anon@example.com/r1"), 0);
    CHECK(epode_conn_sm_enabled(s.conn));
    CHECK_INT(epode_conn_set_sm_policy(s.conn, 100, 20, 10, 0), EPODE_EINVAL);
    CHECK_INT(epode_conn_set_sm_policy(s.conn, 100, 20, 60, 0), 0);
    int acks[2] = {0, 0};
    epode_conn_set_ack_cb(s.conn, count_acks, acks);
    epode_stanza_t *m;
    CHECK_INT(epode_message_new(NULL, "chat", "a@b", "x", &m), 0);
    CHECK_INT(epode_conn_send(s.conn, m), 0);
    epode_stanza_unref(m);
    scripted_pump(&s);
    /* the server says nothing: an <r/> after 20 ms, then death at 60 ms */
    for (int i = 0; i < 300 && epode_conn_reason(s.conn) == EPODE_REASON_NONE; i++)
        epode_ctx_run_once(s.ctx, 10);
    CHECK_INT(epode_conn_reason(s.conn), EPODE_REASON_TIMEOUT);
    CHECK(strstr(epode_conn_error_text(s.conn), "link is dead"));
    CHECK_INT(acks[1], 1); /* the message came back, unconfirmed */
    int saw_r = 0;
    scripted_pump(&s);
    for (epode_stanza_t *st; (st = scripted_next(&s));)
        saw_r |= strcmp(epode_stanza_get_name(st), "r") == 0;
    CHECK(saw_r);
    scripted_free(&s);
}

TEST(conn_answered_acks_keep_the_link_alive)
{
    scripted s;
    CHECK_INT(scripted_login_sm(&s, "example.com", "anon@example.com/r1"), 0);
    CHECK_INT(epode_conn_set_sm_policy(s.conn, 100, 20, 2000, 0), 0);
    int acks[2] = {0, 0};
    epode_conn_set_ack_cb(s.conn, count_acks, acks);
    epode_stanza_t *m;
    CHECK_INT(epode_message_new(NULL, "chat", "a@b", "x", &m), 0);
    CHECK_INT(epode_conn_send(s.conn, m), 0);
    epode_stanza_unref(m);
    scripted_pump(&s);
    for (int i = 0; i < 5; i++)
        epode_ctx_run_once(s.ctx, 10);
    scripted_send(&s, "<a xmlns='urn:xmpp:sm:3' h='1'/>");
    for (int i = 0; i < 15; i++)
        epode_ctx_run_once(s.ctx, 10);
    CHECK_INT(acks[0], 1);
    CHECK_INT(epode_conn_reason(s.conn), EPODE_REASON_NONE);
    CHECK(epode_conn_is_ready(s.conn));
    scripted_free(&s);
}

TEST(conn_will_reconnect_tells_a_pause_from_the_end)
{
    scripted s;
    CHECK_INT(scripted_login_mem(&s, NULL, "anon@example.com", "anon@example.com/r1"), 0);
    CHECK_INT(epode_conn_will_reconnect(s.conn), 0);
    CHECK_INT(epode_conn_set_reconnect(s.conn, 1, 5000, 10000), 0);
    /* a server going away for a while: retried */
    scripted_send(&s, "<stream:error><system-shutdown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"
                      "</stream:error></stream:stream>");
    for (int i = 0; i < 20 && epode_conn_reason(s.conn) == EPODE_REASON_NONE; i++)
        epode_ctx_run_once(s.ctx, 10);
    CHECK_INT(epode_conn_reason(s.conn), EPODE_REASON_STREAM_ERROR);
    CHECK_INT(epode_conn_will_reconnect(s.conn), 1);
    /* closing while waiting ends the policy */
    CHECK_INT(epode_conn_close(s.conn), 0);
    CHECK_INT(epode_conn_will_reconnect(s.conn), 0);
    CHECK_INT(epode_conn_close(s.conn), 0); /* already closing: no second end */
    for (int i = 0; i < 5; i++)
        epode_ctx_run_once(s.ctx, 0);
    CHECK_INT(epode_conn_reason(s.conn), EPODE_REASON_CLOSED);
    CHECK_INT(epode_conn_close(s.conn), EPODE_ESTATE);
    scripted_free(&s);
}

TEST(conn_will_reconnect_is_0_for_a_final_error)
{
    scripted s;
    CHECK_INT(scripted_login_mem(&s, NULL, "anon@example.com", "anon@example.com/r1"), 0);
    CHECK_INT(epode_conn_set_reconnect(s.conn, 1, 5000, 10000), 0);
    scripted_send(&s, "<stream:error><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"
                      "</stream:error></stream:stream>");
    for (int i = 0; i < 20 && epode_conn_reason(s.conn) == EPODE_REASON_NONE; i++)
        epode_ctx_run_once(s.ctx, 10);
    CHECK_INT(epode_conn_reason(s.conn), EPODE_REASON_STREAM_ERROR);
    CHECK_INT(epode_conn_will_reconnect(s.conn), 0);
    CHECK_INT(epode_conn_will_reconnect(NULL), 0);
    scripted_free(&s);
}

/* ---- issue 11: closing while a reconnection waits; the presence re-sent
 * after a fresh login; one answer per IQ request ------------------------ */

#define GIVEN_BACK 100 /* in a timeline: a stanza handed back (acked 0) */

/* What a connection told, in order, with the reason of each DISCONNECTED
 * and whether a reconnection was then scheduled. */
typedef struct timeline {
    int n, ev[32], reason[32], will[32];
} timeline;

static void timeline_add(timeline *t, epode_conn_t *c, int ev)
{
    if (t->n >= 32)
        return;
    t->ev[t->n] = ev;
    t->reason[t->n] = ev == EPODE_CONN_DISCONNECTED ? (int)epode_conn_reason(c) : 0;
    t->will[t->n] = epode_conn_will_reconnect(c);
    t->n++;
}

static void on_timeline(epode_conn_t *c, epode_conn_event_t ev, void *u)
{
    timeline_add(u, c, (int)ev);
}

static void on_given_back(epode_conn_t *c, int acked, const char *id, const char *xml,
                          size_t len, void *u)
{
    (void)id, (void)xml, (void)len;
    if (!acked)
        timeline_add(u, c, GIVEN_BACK);
}

static int timeline_count(const timeline *t, int ev)
{
    int n = 0;
    for (int i = 0; i < t->n; i++)
        n += t->ev[i] == ev;
    return n;
}

static uint64_t ms_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Runs the loop for `ms` (the server side is not read). */
static void run_for(epode_ctx_t *ctx, int ms)
{
    uint64_t end = ms_now() + (uint64_t)ms;
    while (ms_now() < end)
        epode_ctx_run_once(ctx, 5);
}

/* The server's end of the pipe goes away: the client sees the link cut. */
static void cut(scripted *s)
{
    epode__transport_free(s->server);
    s->server = NULL;
    epode__conn_poke(s->conn);
    while (epode_ctx_run_once(s->ctx, 0) > 0)
        ;
}

/* The reconnection, over a new pipe instead of DNS and TCP: logs in
 * again as anon@example.com/r2; with `sm`, the server refuses to resume. */
static int relogin(scripted *s, int sm)
{
    epode__timer_stop(&s->conn->reconnect_timer); /* the attempt starts, here */
    epode_parser_reset(s->parser);
    epode__transport *client;
    if (epode__memory_pair(NULL, &client, &s->server) < 0 ||
        epode__conn_start_over(s->conn, client) < 0)
        return -1;
    scripted_pump(s);
    scripted_send(s, SCRIPTED_HDR "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:"
                     "xmpp-sasl'><mechanism>ANONYMOUS</mechanism></mechanisms></stream:features>");
    epode_stanza_t *st = scripted_next(s);
    if (!st || strcmp(epode_stanza_get_name(st), "auth") != 0)
        return -1;
    epode_parser_reset(s->parser);
    scripted_send(s, "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>");
    scripted_send(s, sm ? SCRIPTED_HDR "<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>"
                              "<sm xmlns='urn:xmpp:sm:3'/></stream:features>"
                         : SCRIPTED_HDR "<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>"
                              "</stream:features>");
    st = scripted_next(s);
    if (sm) {
        if (!st || strcmp(epode_stanza_get_name(st), "resume") != 0)
            return -1;
        scripted_send(s, "<failed xmlns='urn:xmpp:sm:3'/>");
        st = scripted_next(s);
    }
    if (!st || strcmp(epode_stanza_get_name(st), "iq") != 0)
        return -1;
    char xml[512];
    snprintf(xml, sizeof xml, "<iq type='result' id='%s'><bind xmlns='urn:ietf:params:xml:ns:"
             "xmpp-bind'><jid>anon@example.com/r2</jid></bind></iq>", epode_stanza_get_id(st));
    scripted_send(s, xml);
    if (sm) {
        st = scripted_next(s);
        if (!st || strcmp(epode_stanza_get_name(st), "enable") != 0)
            return -1;
        scripted_send(s, "<enabled xmlns='urn:xmpp:sm:3' id='scripted2' resume='true'/>");
    }
    return epode_conn_is_ready(s->conn) ? 0 : -1;
}

static int send_message(scripted *s, const char *id)
{
    epode_stanza_t *m;
    int rc = epode_message_new(NULL, "chat", "a@b", "x", &m);
    if (rc == 0 && (rc = epode_stanza_set_id(m, id)) == 0)
        rc = epode_conn_send(s->conn, m);
    epode_stanza_unref(m);
    return rc;
}

TEST(conn_close_while_waiting_to_reconnect_ends_with_disconnected)
{
    scripted s;
    timeline t = {0};
    CHECK_INT(scripted_login_sm(&s, "anon@example.com", "anon@example.com/r1"), 0);
    CHECK_INT(epode_conn_add_event_cb(s.conn, on_timeline, &t, NULL), 0);
    CHECK_INT(epode_conn_set_ack_cb(s.conn, on_given_back, &t), 0);
    CHECK_INT(epode_conn_set_reconnect(s.conn, 1, 200, 200), 0);
    CHECK_INT(send_message(&s, "m1"), 0); /* never acknowledged */
    scripted_pump(&s);
    cut(&s);
    CHECK_INT(t.n, 1);
    CHECK_INT(t.ev[0], EPODE_CONN_DISCONNECTED);
    CHECK_INT(t.reason[0], EPODE_REASON_NETWORK);
    CHECK_INT(t.will[0], 1); /* kept for the resumption */
    CHECK_INT(epode_conn_close(s.conn), 0);
    CHECK_INT(t.n, 1); /* nothing runs inside the call */
    CHECK_INT(epode_conn_will_reconnect(s.conn), 0);
    /* a loop that waits for DISCONNECTED gets it, and nothing after it,
     * even past the time the reconnection was due */
    run_for(s.ctx, 400);
    CHECK_INT(t.n, 3);
    CHECK_INT(t.ev[1], GIVEN_BACK); /* handed back first */
    CHECK_INT(t.ev[2], EPODE_CONN_DISCONNECTED);
    CHECK_INT(t.reason[2], EPODE_REASON_CLOSED);
    CHECK_INT(t.will[2], 0);
    CHECK_INT(epode_conn_close(s.conn), EPODE_ESTATE);
    scripted_free(&s);
}

static void close_when_disconnected(epode_conn_t *c, epode_conn_event_t ev, void *u)
{
    (void)u;
    if (ev == EPODE_CONN_DISCONNECTED && epode_conn_will_reconnect(c))
        epode_conn_close(c);
}

TEST(conn_close_from_the_disconnected_event_of_a_cut_ends_once_more)
{
    scripted s;
    timeline t = {0};
    CHECK_INT(scripted_login_mem(&s, NULL, "anon@example.com", "anon@example.com/r1"), 0);
    CHECK_INT(epode_conn_add_event_cb(s.conn, on_timeline, &t, NULL), 0);
    CHECK_INT(epode_conn_add_event_cb(s.conn, close_when_disconnected, NULL, NULL), 0);
    CHECK_INT(epode_conn_set_reconnect(s.conn, 1, 200, 200), 0);
    cut(&s);
    run_for(s.ctx, 400);
    CHECK_INT(t.n, 2);
    CHECK_INT(t.ev[0], EPODE_CONN_DISCONNECTED);
    CHECK_INT(t.reason[0], EPODE_REASON_NETWORK);
    CHECK_INT(t.ev[1], EPODE_CONN_DISCONNECTED);
    CHECK_INT(t.reason[1], EPODE_REASON_CLOSED);
    scripted_free(&s);
}

static void close_on_connecting(epode_conn_t *c, epode_conn_event_t ev, void *u)
{
    (void)u;
    if (ev == EPODE_CONN_CONNECTING)
        epode_conn_close(c);
}

enum { AT_ONCE, FROM_CONNECTING, DURING_LOOKUP, DURING_CONNECT };

/* Connects to a server that never lets the connection past where it is
 * closed (a DNS server that never answers, a listener that never
 * accepts), closes it at `when`, runs the loop a while: what came. */
static int close_early(const char *dns, const char *host, unsigned port, int when, timeline *t)
{
    epode_ctx_t *ctx;
    epode_conn_t *conn;
    memset(t, 0, sizeof *t);
    if (epode_global_init() < 0 || epode_ctx_new(NULL, &ctx) < 0)
        return -1;
    int rc = -1;
    if ((dns && epode_ctx_set_dns_servers(ctx, dns) < 0) || epode_conn_new(ctx, &conn) < 0)
        goto out_ctx;
    if (epode_conn_set_jid(conn, "bot@example.com") < 0 ||
        epode_conn_set_tls(conn, EPODE_TLS_DISABLED) < 0 ||
        (host && epode_conn_set_server(conn, host, port) < 0) ||
        epode_conn_add_event_cb(conn, on_timeline, t, NULL) < 0 ||
        (when == FROM_CONNECTING &&
         epode_conn_add_event_cb(conn, close_on_connecting, NULL, NULL) < 0) ||
        epode_conn_connect(conn) < 0)
        goto out;
    if (when == DURING_LOOKUP || when == DURING_CONNECT) {
        enum conn_state want = when == DURING_LOOKUP ? C_RESOLVING : C_CONNECTING;
        uint64_t end = ms_now() + 2000;
        while (!(conn->state == want && conn->query) && ms_now() < end)
            epode_ctx_run_once(ctx, 5);
        if (!(conn->state == want && conn->query))
            goto out;
    }
    if (when != FROM_CONNECTING && epode_conn_close(conn) < 0)
        goto out;
    run_for(ctx, 150);
    rc = epode_conn_close(conn) == EPODE_ESTATE ? 0 : -1; /* over */
out:
    epode_conn_free(conn);
out_ctx:
    epode_ctx_free(ctx);
    return rc;
}

/* Exactly one DISCONNECTED, the last event, with reason CLOSED. */
static int ended_once_closed(const timeline *t)
{
    return timeline_count(t, EPODE_CONN_DISCONNECTED) == 1 && t->n > 0 &&
           t->ev[t->n - 1] == EPODE_CONN_DISCONNECTED && t->reason[t->n - 1] == EPODE_REASON_CLOSED;
}

TEST(conn_close_before_the_stream_ends_with_one_disconnected)
{
    /* a DNS server that never answers */
    int dns = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof sa;
    CHECK(dns >= 0);
    CHECK_INT(bind(dns, (struct sockaddr *)&sa, sizeof sa), 0);
    CHECK_INT(getsockname(dns, (struct sockaddr *)&sa, &len), 0);
    char servers[64];
    snprintf(servers, sizeof servers, "127.0.0.1:%u", (unsigned)ntohs(sa.sin_port));
    /* a listener whose backlog is full: connecting never completes */
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), filler = -1;
    struct sockaddr_in la = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    len = sizeof la;
    CHECK(lfd >= 0);
    CHECK_INT(bind(lfd, (struct sockaddr *)&la, sizeof la), 0);
    CHECK_INT(listen(lfd, 0), 0);
    CHECK_INT(getsockname(lfd, (struct sockaddr *)&la, &len), 0);
    filler = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK_INT(connect(filler, (struct sockaddr *)&la, sizeof la), 0);
    unsigned port = ntohs(la.sin_port);

    timeline t;
    CHECK_INT(close_early(servers, NULL, 0, AT_ONCE, &t), 0);
    CHECK(ended_once_closed(&t));
    CHECK_INT(close_early(servers, NULL, 0, FROM_CONNECTING, &t), 0);
    CHECK(ended_once_closed(&t));
    CHECK_INT(t.ev[0], EPODE_CONN_CONNECTING);
    CHECK_INT(close_early(servers, NULL, 0, DURING_LOOKUP, &t), 0);
    CHECK(ended_once_closed(&t));
    CHECK_INT(close_early(NULL, "127.0.0.1", port, DURING_CONNECT, &t), 0);
    CHECK(ended_once_closed(&t));
    close(filler);
    close(lfd);
    close(dns);
}

static void count_connects(void *u, epode_log_level_t level, const char *area, const char *msg)
{
    (void)level, (void)area;
    if (strncmp(msg, "connecting to ", 14) == 0)
        ++*(int *)u;
}

TEST(conn_close_while_following_a_redirect_connects_nowhere)
{
    scripted s;
    timeline t = {0};
    int connects = 0;
    CHECK_INT(scripted_login(&s, "example.com", "anon@example.com/r1"), 0);
    epode_ctx_set_log(s.ctx, EPODE_LOG_INFO, count_connects, &connects);
    CHECK_INT(epode_conn_add_event_cb(s.conn, on_timeline, &t, NULL), 0);
    const char *e = "<stream:error><see-other-host xmlns='urn:ietf:params:xml:ns:xmpp-streams'>"
                    "127.0.0.1:9</see-other-host></stream:error>";
    epode__transport_write(s.server, e, strlen(e));
    epode__conn_poke(s.conn);
    for (int i = 0; i < 10 && s.conn->state != C_RESOLVING; i++)
        epode_ctx_run_once(s.ctx, 0);
    CHECK_INT(s.conn->state, C_RESOLVING); /* the new server is tried on the next turn */
    CHECK_INT(epode_conn_close(s.conn), 0);
    run_for(s.ctx, 100);
    CHECK_INT(connects, 0);
    CHECK(ended_once_closed(&t));
    scripted_free(&s);
}

/* The broadcast presences the client sent since the last read. */
static int next_presences(scripted *s, char texts[][256], int max)
{
    int n = 0;
    for (epode_stanza_t *st; (st = scripted_next(s));) {
        if (strcmp(epode_stanza_get_name(st), "presence") != 0 || epode_stanza_get_to(st))
            continue;
        char *x;
        if (n < max && epode_stanza_to_text(st, EPODE_TEXT_IN_STREAM, &x, NULL) == 0) {
            snprintf(texts[n], 256, "%s", x);
            epode_free(x);
        }
        n++;
    }
    return n;
}

static int send_presence(epode_conn_t *c, const char *to, const char *status)
{
    epode_stanza_t *p, *st;
    int rc = epode_presence_new(NULL, NULL, to, &p);
    if (rc < 0)
        return rc;
    if ((rc = epode_stanza_add_child_new(p, "status", NULL, &st)) == 0 &&
        (rc = epode_stanza_set_text(st, status)) == 0)
        rc = epode_conn_send(c, p);
    epode_stanza_unref(p);
    return rc;
}

#define MARKED(status) "<presence><status>" status "</status><c xmlns=\"urn:test:marker\"/></presence>"

/* Logged in, with an outgoing filter that marks presence, reconnection
 * on, two broadcast presences sent (the second is the one that counts),
 * then the link cut. */
static int presence_then_cut(scripted *s, int sm)
{
    int rc = sm ? scripted_login_sm(s, "anon@example.com", "anon@example.com/r1")
                : scripted_login(s, "anon@example.com", "anon@example.com/r1");
    char texts[4][256];
    if (rc < 0 ||
        epode_handler_add_outgoing(s->conn, "presence", NULL, NULL, add_marker, NULL, NULL) < 0 ||
        epode_conn_set_reconnect(s->conn, 1, 5000, 10000) < 0 ||
        send_presence(s->conn, NULL, "one") < 0 || send_presence(s->conn, NULL, "two") < 0)
        return -1;
    scripted_pump(s);
    if (next_presences(s, texts, 4) != 2 || strcmp(texts[1], MARKED("two")) != 0)
        return -1;
    cut(s);
    return epode_conn_will_reconnect(s->conn) ? 0 : -1;
}

TEST(conn_fresh_login_resends_the_presence_through_the_filters)
{
    scripted s;
    char texts[4][256];
    CHECK_INT(presence_then_cut(&s, 0), 0);
    CHECK_INT(relogin(&s, 0), 0);
    scripted_pump(&s);
    CHECK_INT(next_presences(&s, texts, 4), 1);
    CHECK_STR(texts[0], MARKED("two"));
    scripted_free(&s);
}

TEST(conn_refused_resumption_resends_the_presence_through_the_filters)
{
    scripted s;
    char texts[4][256];
    CHECK_INT(presence_then_cut(&s, 1), 0);
    CHECK_INT(relogin(&s, 1), 0);
    scripted_pump(&s);
    CHECK_INT(next_presences(&s, texts, 4), 1);
    CHECK_STR(texts[0], MARKED("two"));
    scripted_free(&s);
}

/* A READY handler: a directed presence (a room), and with *u a
 * broadcast one too. */
static void present_on_ready(epode_conn_t *c, epode_conn_event_t ev, void *u)
{
    if (ev != EPODE_CONN_READY)
        return;
    send_presence(c, "room@muc.example.com/me", "in the room");
    if (*(int *)u)
        send_presence(c, NULL, "ready");
}

TEST(conn_ready_handler_presence_is_the_only_one_sent)
{
    scripted s;
    char texts[4][256];
    int broadcast = 1;
    CHECK_INT(presence_then_cut(&s, 0), 0);
    CHECK_INT(epode_conn_add_event_cb(s.conn, present_on_ready, &broadcast, NULL), 0);
    CHECK_INT(relogin(&s, 0), 0);
    scripted_pump(&s);
    CHECK_INT(next_presences(&s, texts, 4), 1);
    CHECK_STR(texts[0], MARKED("ready"));
    /* and epode re-sends that one after the next cut */
    broadcast = 0;
    cut(&s);
    CHECK_INT(relogin(&s, 0), 0);
    scripted_pump(&s);
    CHECK_INT(next_presences(&s, texts, 4), 1);
    CHECK_STR(texts[0], MARKED("ready"));
    scripted_free(&s);
}

/* An IQ handler that sends a result and still returns EPODE_PASS; `u`
 * (if not NULL) is "id" or "@to" to answer with instead of the request's. */
static int answer_but_pass(epode_conn_t *c, epode_stanza_t *st, void *u)
{
    const char *other = u;
    epode_stanza_t *r;
    if (epode_stanza_reply(st, &r) == 0) {
        if (other && other[0] == '@')
            epode_stanza_set_to(r, other + 1);
        else if (other)
            epode_stanza_set_id(r, other);
        epode_conn_send(c, r);
        epode_stanza_unref(r);
    }
    return EPODE_PASS;
}

static int pass_silently(epode_conn_t *c, epode_stanza_t *st, void *u)
{
    (void)c, (void)st, (void)u;
    return EPODE_PASS;
}

#define TIME_GET(id, from) "<iq type='get' id='" id "'" from "><time xmlns='urn:xmpp:time'/></iq>"

TEST(conn_iq_answered_by_a_passing_handler_is_answered_once)
{
    scripted s;
    CHECK_INT(scripted_login(&s, "example.com", "anon@example.com/r1"), 0);
    CHECK_INT(epode_handler_add(s.conn, "iq", "urn:xmpp:time", "get", answer_but_pass, NULL, NULL), 0);
    scripted_send(&s, TIME_GET("t1", " from='romeo@example.net/x'"));
    CHECK_STR(scripted_next_text(&s), "<iq to=\"romeo@example.net/x\" id=\"t1\" type=\"result\"/>");
    CHECK(scripted_next(&s) == NULL);
    /* from our own server (no from): the same */
    scripted_send(&s, TIME_GET("t2", ""));
    CHECK_STR(scripted_next_text(&s), "<iq id=\"t2\" type=\"result\"/>");
    CHECK(scripted_next(&s) == NULL);
    scripted_free(&s);
}

TEST(conn_iq_passed_unanswered_gets_service_unavailable)
{
    scripted s;
    CHECK_INT(scripted_login(&s, "example.com", "anon@example.com/r1"), 0);
    CHECK_INT(epode_handler_add(s.conn, "iq", NULL, NULL, pass_silently, NULL, NULL), 0);
    scripted_send(&s, TIME_GET("t1", " from='romeo@example.net/x'"));
    const char *t = scripted_next_text(&s);
    CHECK(strstr(t, "type=\"error\""));
    CHECK(strstr(t, "id=\"t1\""));
    CHECK(strstr(t, "<service-unavailable "));
    CHECK(scripted_next(&s) == NULL);
    scripted_free(&s);
}

TEST(conn_iq_answer_to_another_request_does_not_count)
{
    scripted s;
    CHECK_INT(scripted_login(&s, "example.com", "anon@example.com/r1"), 0);
    unsigned h;
    CHECK_INT(epode_handler_add(s.conn, "iq", "urn:xmpp:time", "get", answer_but_pass, "t0", &h), 0);
    scripted_send(&s, TIME_GET("t1", " from='romeo@example.net/x'"));
    CHECK(strstr(scripted_next_text(&s), "id=\"t0\" type=\"result\""));
    const char *t = scripted_next_text(&s);
    CHECK(strstr(t, "id=\"t1\" type=\"error\""));
    CHECK(strstr(t, "<service-unavailable "));
    CHECK(scripted_next(&s) == NULL);
    /* the same id sent to someone else does not answer it either */
    CHECK_INT(epode_handler_remove(s.conn, h), 0);
    CHECK_INT(epode_handler_add(s.conn, "iq", "urn:xmpp:time", "get", answer_but_pass,
                                "@mallory@evil.example", NULL), 0);
    scripted_send(&s, TIME_GET("t2", " from='romeo@example.net/x'"));
    CHECK(strstr(scripted_next_text(&s), "to=\"mallory@evil.example\" id=\"t2\" type=\"result\""));
    t = scripted_next_text(&s);
    CHECK(strstr(t, "id=\"t2\" type=\"error\""));
    CHECK(strstr(t, "<service-unavailable "));
    CHECK(scripted_next(&s) == NULL);
    scripted_free(&s);
}

TEST_MAIN
