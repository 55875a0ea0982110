/* tests/unit/test_conn.c — a connection over a memory transport to a
 * scripted server: handler dispatch through a real conn, IQ answers and
 * timeouts, service-unavailable for unhandled requests, outgoing filters,
 * event listeners, and a clean close. */
#include "test.h"

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

TEST_MAIN
