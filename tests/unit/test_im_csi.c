/* tests/unit/test_im_csi.c — Client State Indication (XEP-0352) on a
 * scripted server: sent only when the stream features offer it, said
 * again after a fresh login, and never counted by stream management (a
 * nonza counted as a stanza would shift every later ack by one). */
#include "test.h"

#include "scripted.h"

TEST_MAIN

#define ME "anon@example.com/r1"

/* Runs one stream on s->conn over a new pipe, up to READY, with `extra`
 * added to the post-authentication features (and stream management
 * enabled when `sm`). The connection must be idle (never connected, or
 * its last stream ended). */
static int stream_with(scripted *s, const char *extra, int sm)
{
    epode__transport *client;
    if (s->server)
        epode__transport_free(s->server);
    if (s->parser)
        epode_parser_free(s->parser);
    s->server = NULL;
    s->parser = NULL;
    if (epode__memory_pair(NULL, &client, &s->server) < 0 ||
        epode_parser_new(NULL, scripted__on_client, s, &s->parser) < 0 ||
        epode__conn_start_over(s->conn, client) < 0)
        return -1;
    scripted_pump(s);
    scripted_send(s, SCRIPTED_HDR "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>"
                     "<mechanism>ANONYMOUS</mechanism></mechanisms></stream:features>");
    if (!scripted_next(s))
        return -1;
    epode_parser_reset(s->parser);
    scripted_send(s, "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>");
    char xml[1024];
    snprintf(xml, sizeof xml, SCRIPTED_HDR "<stream:features><bind xmlns='urn:ietf:params:xml:ns:"
             "xmpp-bind'/>%s%s</stream:features>", sm ? "<sm xmlns='urn:xmpp:sm:3'/>" : "", extra);
    scripted_send(s, xml);
    epode_stanza_t *bind = scripted_next(s);
    if (!bind)
        return -1;
    snprintf(xml, sizeof xml, "<iq type='result' id='%s'><bind xmlns='urn:ietf:params:xml:ns:"
             "xmpp-bind'><jid>" ME "</jid></bind></iq>", epode_stanza_get_id(bind));
    scripted_send(s, xml);
    if (sm) {
        if (!scripted_next(s))
            return -1;
        scripted_send(s, "<enabled xmlns='urn:xmpp:sm:3' id='x' resume='true'/>");
    }
    return epode_conn_is_ready(s->conn) ? 0 : -1;
}

/* scripted_login with `extra` in the features (see stream_with). */
static int login_with(scripted *s, const char *extra, int sm)
{
    memset(s, 0, sizeof *s);
    if (epode_global_init() < 0 || epode_ctx_new(NULL, &s->ctx) < 0 ||
        epode_conn_new(s->ctx, &s->conn) < 0 || epode_conn_set_jid(s->conn, "example.com") < 0 ||
        epode_conn_set_tls(s->conn, EPODE_TLS_DISABLED) < 0 ||
        epode_conn_set_mechanisms(s->conn, "ANONYMOUS") < 0 ||
        (sm && epode_conn_set_stream_management(s->conn, 1) < 0))
        return -1;
    return stream_with(s, extra, sm);
}

#define CSI_FEATURE "<csi xmlns='urn:xmpp:csi:0'/>"

TEST(csi_sent_only_when_offered)
{
    scripted s;
    CHECK_INT(login_with(&s, "", 0), 0);
    epode_csi_t *c;
    CHECK_INT(epode_csi_new(s.conn, &c), 0);
    CHECK_INT(epode_csi_supported(c), 0);
    CHECK_INT(epode_csi_set_active(c, 0), 0);
    CHECK_INT(epode_csi_is_active(c), 0);
    scripted_pump(&s);
    CHECK_STR(scripted_next_text(&s), ""); /* nothing: not offered */
    epode_csi_free(c);
    scripted_free(&s);
}

TEST(csi_inactive_and_active_go_out_once_each)
{
    scripted s;
    CHECK_INT(login_with(&s, CSI_FEATURE, 0), 0);
    epode_csi_t *c;
    CHECK_INT(epode_csi_new(s.conn, &c), 0);
    CHECK_INT(epode_csi_supported(c), 1);
    CHECK_INT(epode_csi_set_active(c, 1), 0); /* the server's default already */
    scripted_pump(&s);
    CHECK_STR(scripted_next_text(&s), "");
    CHECK_INT(epode_csi_set_active(c, 0), 0);
    CHECK_INT(epode_csi_set_active(c, 0), 0);
    scripted_pump(&s);
    CHECK_STR(scripted_next_text(&s), "<inactive xmlns=\"urn:xmpp:csi:0\"/>");
    CHECK_STR(scripted_next_text(&s), "");
    CHECK_INT(epode_csi_set_active(c, 1), 0);
    scripted_pump(&s);
    CHECK_STR(scripted_next_text(&s), "<active xmlns=\"urn:xmpp:csi:0\"/>");
    epode_csi_free(c);
    scripted_free(&s);
}

static int acks_ok, acks_lost;

static void on_ack(epode_conn_t *c, int acked, const char *id, const char *xml, size_t len,
                   void *user)
{
    (void)c, (void)id, (void)user;
    if (memmem(xml, len, "csi", 3))
        acks_lost += 100; /* a nonza must never be tracked */
    if (acked)
        acks_ok++;
    else
        acks_lost++;
}

TEST(csi_is_not_counted_by_stream_management)
{
    scripted s;
    CHECK_INT(login_with(&s, CSI_FEATURE, 1), 0);
    acks_ok = acks_lost = 0;
    CHECK_INT(epode_conn_set_ack_cb(s.conn, on_ack, NULL), 0);
    epode_csi_t *c;
    CHECK_INT(epode_csi_new(s.conn, &c), 0);
    epode_stanza_t *msg;
    CHECK_INT(epode_message_build("chat", "friend@example.net", "one", NULL, NULL, &msg), 0);
    CHECK_INT(epode_conn_send(s.conn, msg), 0);
    CHECK_INT(epode_csi_set_active(c, 0), 0);
    CHECK_INT(epode_conn_send(s.conn, msg), 0);
    epode_stanza_unref(msg);
    scripted_pump(&s);
    /* the server handled both messages: h=2 acknowledges everything */
    scripted_send(&s, "<a xmlns='urn:xmpp:sm:3' h='2'/>");
    CHECK_INT(acks_ok, 2);
    CHECK_INT(acks_lost, 0);
    /* the stream ends: nothing is left to hand back */
    scripted_send(&s, "</stream:stream>");
    CHECK_INT(acks_lost, 0);
    epode_csi_free(c);
    scripted_free(&s);
}

TEST(csi_inactive_is_said_again_on_a_new_session)
{
    scripted s;
    CHECK_INT(login_with(&s, CSI_FEATURE, 0), 0);
    epode_csi_t *c;
    CHECK_INT(epode_csi_new(s.conn, &c), 0);
    CHECK_INT(epode_csi_set_active(c, 0), 0);
    scripted_pump(&s);
    CHECK_STR(scripted_next_text(&s), "<inactive xmlns=\"urn:xmpp:csi:0\"/>");
    /* the stream ends; a fresh one starts active on the server */
    scripted_send(&s, "</stream:stream>");
    CHECK_INT(epode_conn_is_ready(s.conn), 0);
    CHECK_INT(stream_with(&s, CSI_FEATURE, 0), 0);
    scripted_pump(&s);
    int found = 0;
    for (epode_stanza_t *st; (st = scripted_next(&s));)
        found += strcmp(epode_stanza_get_name(st), "inactive") == 0;
    CHECK_INT(found, 1);
    /* a server without CSI on the next session: nothing sent, still wanted */
    scripted_send(&s, "</stream:stream>");
    CHECK_INT(stream_with(&s, "", 0), 0);
    scripted_pump(&s);
    for (epode_stanza_t *st; (st = scripted_next(&s));)
        CHECK(strcmp(epode_stanza_get_name(st), "inactive") != 0);
    CHECK_INT(epode_csi_is_active(c), 0);
    CHECK_INT(epode_csi_supported(c), 0);
    epode_csi_free(c);
    scripted_free(&s);
}

TEST(csi_outlives_its_connection)
{
    scripted s;
    CHECK_INT(login_with(&s, CSI_FEATURE, 0), 0);
    epode_csi_t *c;
    CHECK_INT(epode_csi_new(s.conn, &c), 0);
    epode_conn_free(s.conn);
    s.conn = NULL;
    CHECK_INT(epode_csi_set_active(c, 0), EPODE_ESTATE);
    CHECK_INT(epode_csi_supported(c), 0);
    epode_csi_free(c);
    scripted_free(&s);
}

/* Every allocation failing in turn: only 0 and EPODE_ENOMEM come back,
 * nothing is left behind. */
TEST(csi_survives_every_failing_allocation)
{
    int swept = 0;
    for (long fail = 0; fail < 200; fail++) {
        scripted_mem mm;
        scripted_mem_init(&mm);
        scripted s;
        CHECK_INT(scripted_login_mem(&s, &mm.mem, "example.com", ME), 0);
        mm.fail_at = mm.calls + fail;
        epode_csi_t *c = NULL;
        int rc = epode_csi_new(s.conn, &c);
        CHECK(rc == 0 || rc == EPODE_ENOMEM);
        if (rc == 0) {
            rc = epode_csi_set_active(c, 0);
            CHECK(rc == 0 || rc == EPODE_ENOMEM);
        }
        int done = mm.fail_at > mm.calls;
        mm.fail_at = -1;
        epode_csi_free(c);
        scripted_free(&s);
        CHECK_INT(mm.live, 0);
        swept++;
        if (done)
            break;
    }
    printf("# %d allocation points swept\n", swept);
}

/* A view made with an allocator uses it, and a failing one is clean. */
TEST(message_view_new_uses_the_allocator)
{
    scripted_mem mm;
    scripted_mem_init(&mm);
    epode_stanza_t *st;
    CHECK_INT(epode_stanza_from_text(NULL, "<message xmlns='jabber:client' from='a@b'/>",
                                     (size_t)-1, &st, NULL), 0);
    epode_message_t *v = NULL;
    mm.fail_at = 0;
    CHECK_INT(epode_message_view_new(&mm.mem, st, &v), EPODE_ENOMEM);
    CHECK(v == NULL);
    mm.fail_at = -1;
    CHECK_INT(epode_message_view_new(&mm.mem, st, &v), 0);
    CHECK_INT(mm.live, 1);
    epode_message_view_free(v);
    CHECK_INT(mm.live, 0);
    epode_stanza_unref(st);
}
