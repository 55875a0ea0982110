/* tests/unit/test_im_message.c — the messaging helper on a scripted
 * server: building messages, the parsed view handlers get, error
 * conditions, delivery receipts (XEP-0184), chat states (XEP-0085) and
 * stable stanza ids (XEP-0359), including what a malicious peer sends:
 * forged stanza-ids, receipt requests on errors and groupchat, garbage. */
#include "test.h"

#include <limits.h>

#include "scripted.h"

#define ME "anon@example.com/r1"

static char got_from[256], got_body[256], got_body_de[256], got_subject[256], got_thread[256],
    got_parent[256], got_type[32], got_origin[64], got_sid[64], got_err_text[128];
static int got_count, got_nbodies, got_state, got_cond;

static void cp(char *dst, size_t n, const char *s)
{
    snprintf(dst, n, "%s", s ? s : "(null)");
}

static int record(epode_conn_t *conn, const epode_message_t *m, void *user)
{
    (void)conn;
    got_count++;
    cp(got_from, sizeof got_from, epode_message_from(m));
    cp(got_type, sizeof got_type, epode_message_type(m));
    cp(got_body, sizeof got_body, epode_message_body(m, NULL));
    cp(got_body_de, sizeof got_body_de, epode_message_body(m, "de"));
    cp(got_subject, sizeof got_subject, epode_message_subject(m, NULL));
    cp(got_thread, sizeof got_thread, epode_message_thread(m));
    cp(got_parent, sizeof got_parent, epode_message_thread_parent(m));
    cp(got_origin, sizeof got_origin, epode_message_origin_id(m));
    cp(got_sid, sizeof got_sid, epode_message_stanza_id(m));
    got_nbodies = (int)epode_message_body_count(m);
    got_state = (int)epode_message_chatstate(m);
    const char *text;
    got_cond = (int)epode_message_error(m, NULL, &text);
    cp(got_err_text, sizeof got_err_text, text);
    return user ? EPODE_HANDLED : EPODE_PASS;
}

static void reset(void)
{
    got_count = 0;
    got_body[0] = got_from[0] = 0;
}

/* The id of the helper's disco#info query to our bare JID, if that is
 * the next stanza the client sent (else ""). */
static char own_query[64];

static const char *take_own_query(scripted *s)
{
    own_query[0] = '\0';
    epode_stanza_t *iq = scripted_next(s);
    epode_stanza_t *q = iq ? epode_stanza_find_child(iq, "query",
                                                     "http://jabber.org/protocol/disco#info") : NULL;
    const char *to = iq ? epode_stanza_get_to(iq) : NULL;
    if (q && strcmp(epode_stanza_get_type(iq), "get") == 0 && to &&
        strcmp(to, "anon@example.com") == 0 && !epode_stanza_get_attr(q, "node"))
        snprintf(own_query, sizeof own_query, "%s", epode_stanza_get_id(iq));
    return own_query;
}

/* Our account answers that query (from `from`) listing `features`. */
static void answer_own_query(scripted *s, const char *from, const char *features)
{
    char xml[1024];
    snprintf(xml, sizeof xml, "<iq type='result' id='%s' from='%s' to='" ME "'><query xmlns="
             "'http://jabber.org/protocol/disco#info'><identity category='account' "
             "type='registered'/>%s</query></iq>", own_query, from, features);
    scripted_send(s, xml);
}

#define SID_FEATURE "<feature var='urn:xmpp:sid:0'/>"

/* Logged in, a helper, its question to our account taken off the wire
 * (and left unanswered: no stanza-id is trusted). */
static int setup(scripted *s, epode_messaging_t **m)
{
    reset();
    if (scripted_login(s, "example.com", ME) < 0 || epode_messaging_new(s->conn, m) < 0)
        return -1;
    scripted_pump(s);
    return *take_own_query(s) ? 0 : -1;
}

TEST(message_build_with_bodies_subject_thread)
{
    epode_stanza_t *msg;
    CHECK_INT(epode_message_build("chat", "juliet@example.com", "hi", "greeting", "t1", &msg), 0);
    CHECK(epode_stanza_get_id(msg) != NULL);
    CHECK_INT(epode_message_add_body(msg, "de", "hallo"), 0);
    CHECK_INT(epode_message_add_body(msg, "de", "nochmal"), EPODE_EINVAL);
    CHECK_INT(epode_message_add_body(msg, NULL, "again"), EPODE_EINVAL);
    CHECK_INT(epode_message_add_body(msg, "", "x"), EPODE_EINVAL);
    CHECK_INT(epode_message_set_thread(msg, "t2", "t0"), 0);
    CHECK_INT(epode_message_add_chatstate(msg, EPODE_CHATSTATE_ACTIVE), 0);
    CHECK_INT(epode_message_add_chatstate(msg, EPODE_CHATSTATE_GONE), EPODE_EINVAL);
    char *t;
    epode_stanza_set_id(msg, "m1");
    CHECK_INT(epode_stanza_to_text(msg, EPODE_TEXT_IN_STREAM, &t, NULL), 0);
    int ok = strcmp(t, "<message type=\"chat\" to=\"juliet@example.com\" id=\"m1\">"
                       "<subject>greeting</subject><body>hi</body>"
                       "<body xml:lang=\"de\">hallo</body><thread parent=\"t0\">t2</thread>"
                       "<active xmlns=\"http://jabber.org/protocol/chatstates\"/></message>") == 0;
    if (!ok)
        printf("# %s\n", t);
    epode_free(t);
    epode_stanza_unref(msg);
    CHECK(ok);
    CHECK_INT(epode_message_build("bogus", "juliet@example.com", "x", NULL, NULL, &msg),
              EPODE_EINVAL);
    CHECK_INT(epode_message_build("error", "juliet@example.com", "x", NULL, NULL, &msg),
              EPODE_EINVAL);
    CHECK_INT(epode_message_build("chat", "not a jid@", "x", NULL, NULL, &msg), EPODE_EJID);
    CHECK_INT(epode_message_build(NULL, "a@b", NULL, NULL, NULL, &msg), 0);
    CHECK(epode_stanza_get_type(msg) == NULL);
    epode_stanza_unref(msg);
    CHECK_STR(epode_chatstate_name(EPODE_CHATSTATE_PAUSED), "paused");
    CHECK(epode_chatstate_name(EPODE_CHATSTATE_NONE) == NULL);
    CHECK(epode_chatstate_name((epode_chatstate_t)99) == NULL);
}

/* Message handler ids are never the connection's: epode_conn_remove()
 * given one by mistake finds nothing instead of removing somebody else's
 * registration (it used to remove the helper's own stanza handler). */
TEST(message_handler_ids_are_not_connection_ids)
{
    scripted s;
    epode_messaging_t *m;
    CHECK_INT(setup(&s, &m), 0);
    unsigned id;
    CHECK_INT(epode_messaging_handler_add(m, "chat", record, NULL, &id), 0);
    CHECK(id >= 0x80000000u);
    CHECK_INT(epode_conn_remove(s.conn, id), EPODE_ENOTFOUND);
    got_count = 0;
    scripted_send(&s, "<message type='chat' from='juliet@example.com/balcony' id='i1'>"
                      "<body>still heard</body></message>");
    CHECK_INT(got_count, 1);
    CHECK_INT(epode_messaging_handler_remove(m, id), 0);
    epode_messaging_free(m);
    scripted_free(&s);
}

TEST(message_handler_gets_parsed_view_by_language)
{
    scripted s;
    epode_messaging_t *m;
    CHECK_INT(setup(&s, &m), 0);
    CHECK_INT(epode_messaging_handler_add(m, "chat", record, NULL, NULL), 0);
    scripted_send(&s, "<message type='chat' from='juliet@example.com/balcony' id='x1' xml:lang='en'>"
                      "<body xml:lang='de'>Hallo</body><body>Hello</body>"
                      "<subject xml:lang='de'>Betreff</subject>"
                      "<thread parent='p1'>th1</thread></message>");
    CHECK_INT(got_count, 1);
    CHECK_STR(got_type, "chat");
    CHECK_STR(got_from, "juliet@example.com/balcony");
    CHECK_STR(got_body, "Hello");
    CHECK_STR(got_body_de, "Hallo");
    CHECK_STR(got_subject, "Betreff"); /* only one: the default falls back to it */
    CHECK_STR(got_thread, "th1");
    CHECK_STR(got_parent, "p1");
    CHECK_INT(got_nbodies, 2);
    /* a body in an unknown language is never given for another */
    reset();
    scripted_send(&s, "<message type='chat' from='juliet@example.com/b'>"
                      "<body xml:lang='fr'>Bonjour</body></message>");
    CHECK_INT(got_count, 1);
    CHECK_STR(got_body, "Bonjour");
    CHECK_STR(got_body_de, "(null)");
    /* the stanza's language applies to a body without its own */
    reset();
    scripted_send(&s, "<message type='chat' from='juliet@example.com/b' xml:lang='de'>"
                      "<body>Guten Tag</body></message>");
    CHECK_STR(got_body_de, "Guten Tag");
    /* other types do not reach a chat handler */
    reset();
    scripted_send(&s, "<message type='headline' from='news@example.com'><body>n</body></message>");
    scripted_send(&s, "<message from='juliet@example.com/b'><body>plain</body></message>");
    CHECK_INT(got_count, 0);
    epode_messaging_free(m);
    scripted_free(&s);
}

TEST(message_without_or_with_unknown_type_is_normal)
{
    scripted s;
    epode_messaging_t *m;
    CHECK_INT(setup(&s, &m), 0);
    CHECK_INT(epode_messaging_handler_add(m, "normal", record, NULL, NULL), 0);
    CHECK_INT(epode_messaging_handler_add(m, "nonsense", record, NULL, NULL), EPODE_EINVAL);
    scripted_send(&s, "<message from='juliet@example.com/b'><body>plain</body></message>");
    CHECK_INT(got_count, 1);
    CHECK_STR(got_type, "normal");
    scripted_send(&s, "<message type='weird' from='juliet@example.com/b'><body>w</body></message>");
    CHECK_INT(got_count, 2);
    CHECK_STR(got_body, "w");
    epode_messaging_free(m);
    scripted_free(&s);
}

TEST(message_error_reports_condition)
{
    scripted s;
    epode_messaging_t *m;
    CHECK_INT(setup(&s, &m), 0);
    CHECK_INT(epode_messaging_handler_add(m, "error", record, NULL, NULL), 0);
    scripted_send(&s, "<message type='error' from='nobody@example.com' id='m9'>"
                      "<body>lost</body><error type='cancel'>"
                      "<service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
                      "<text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>no such user</text>"
                      "</error></message>");
    CHECK_INT(got_count, 1);
    CHECK_INT(got_cond, EPODE_COND_SERVICE_UNAVAILABLE);
    CHECK_STR(got_err_text, "no such user");
    /* an error without <error/> (malformed) is still an error */
    scripted_send(&s, "<message type='error' from='nobody@example.com'/>");
    CHECK_INT(got_count, 2);
    CHECK_INT(got_cond, EPODE_COND_UNDEFINED_CONDITION);
    CHECK(scripted_next(&s) == NULL); /* errors are never answered */
    epode_messaging_free(m);
    scripted_free(&s);
}

TEST(message_handlers_stop_at_handled_and_can_be_removed)
{
    scripted s;
    epode_messaging_t *m;
    unsigned id1, id2;
    CHECK_INT(setup(&s, &m), 0);
    CHECK_INT(epode_messaging_handler_add(m, NULL, record, &s, &id1), 0); /* HANDLED */
    CHECK_INT(epode_messaging_handler_add(m, NULL, record, NULL, &id2), 0);
    scripted_send(&s, "<message type='chat' from='a@example.com/x'><body>1</body></message>");
    CHECK_INT(got_count, 1);
    CHECK_INT(epode_messaging_handler_remove(m, id1), 0);
    CHECK_INT(epode_messaging_handler_remove(m, id1), EPODE_ENOTFOUND);
    scripted_send(&s, "<message type='chat' from='a@example.com/x'><body>2</body></message>");
    CHECK_INT(got_count, 2);
    CHECK_STR(got_body, "2");
    epode_messaging_free(m);
    scripted_free(&s);
}

static char rc_from[256], rc_id[128];
static int rc_count;

static void on_receipt(epode_conn_t *conn, const char *from, const char *id, void *user)
{
    (void)conn;
    (void)user;
    rc_count++;
    cp(rc_from, sizeof rc_from, from);
    cp(rc_id, sizeof rc_id, id);
}

TEST(receipts_answered_only_where_the_xep_allows)
{
    scripted s;
    epode_messaging_t *m;
    CHECK_INT(setup(&s, &m), 0);
    CHECK_INT(epode_messaging_handler_add(m, NULL, record, NULL, NULL), 0);
    /* off by default */
    scripted_send(&s, "<message type='chat' from='juliet@example.com/b' id='r0'><body>x</body>"
                      "<request xmlns='urn:xmpp:receipts'/></message>");
    CHECK(scripted_next(&s) == NULL);
    CHECK_INT(epode_messaging_set_receipts(m, EPODE_RECEIPTS_ANSWER), 0);
    CHECK_INT(epode_messaging_set_receipts(m, 1u << 7), EPODE_EINVAL);
    scripted_send(&s, "<message type='chat' from='juliet@example.com/b' id='r1'><body>x</body>"
                      "<request xmlns='urn:xmpp:receipts'/></message>");
    const char *t = scripted_next_text(&s);
    CHECK(strstr(t, "to=\"juliet@example.com/b\""));
    CHECK(strstr(t, "<received xmlns=\"urn:xmpp:receipts\" id=\"r1\"/>"));
    CHECK(!strstr(t, "<request"));
    /* never for groupchat, errors, messages without id, receipts, or a
     * sender that is not a JID */
    scripted_send(&s, "<message type='groupchat' from='room@muc.example.com/n' id='g1'>"
                      "<body>x</body><request xmlns='urn:xmpp:receipts'/></message>");
    scripted_send(&s, "<message type='error' from='juliet@example.com/b' id='e1'>"
                      "<request xmlns='urn:xmpp:receipts'/><error type='cancel'>"
                      "<item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>");
    scripted_send(&s, "<message type='chat' from='juliet@example.com/b'><body>x</body>"
                      "<request xmlns='urn:xmpp:receipts'/></message>");
    scripted_send(&s, "<message from='juliet@example.com/b' id='loop'>"
                      "<received xmlns='urn:xmpp:receipts' id='zz'/>"
                      "<request xmlns='urn:xmpp:receipts'/></message>");
    scripted_send(&s, "<message type='chat' from='@@bad' id='b1'><body>x</body>"
                      "<request xmlns='urn:xmpp:receipts'/></message>");
    CHECK(scripted_next(&s) == NULL);
    epode_messaging_free(m);
    scripted_free(&s);
}

TEST(receipts_received_are_reported_with_the_acked_id)
{
    scripted s;
    epode_messaging_t *m;
    CHECK_INT(setup(&s, &m), 0);
    CHECK_INT(epode_messaging_handler_add(m, NULL, record, NULL, NULL), 0);
    CHECK_INT(epode_messaging_set_receipt_cb(m, on_receipt, NULL), 0);
    rc_count = 0;
    scripted_send(&s, "<message from='juliet@example.com/b' id='x'>"
                      "<received xmlns='urn:xmpp:receipts' id='m42'/></message>");
    CHECK_INT(rc_count, 1);
    CHECK_STR(rc_id, "m42");
    CHECK_STR(rc_from, "juliet@example.com/b");
    CHECK_INT(got_count, 0); /* a pure receipt is not a message */
    /* old clients: no id on <received/>, the message's id names it */
    scripted_send(&s, "<message from='juliet@example.com/b' id='m43'>"
                      "<received xmlns='urn:xmpp:receipts'/></message>");
    CHECK_INT(rc_count, 2);
    CHECK_STR(rc_id, "m43");
    /* neither: nothing to report */
    scripted_send(&s, "<message from='juliet@example.com/b'><received xmlns='urn:xmpp:receipts'/></message>");
    CHECK_INT(rc_count, 2);
    /* an error bounce carrying a receipt is an error, not a receipt */
    scripted_send(&s, "<message type='error' from='juliet@example.com/b' id='m44'>"
                      "<received xmlns='urn:xmpp:receipts' id='m44'/></message>");
    CHECK_INT(rc_count, 2);
    CHECK_INT(got_count, 1);
    epode_messaging_free(m);
    scripted_free(&s);
}

TEST(receipts_requested_on_outgoing_messages)
{
    scripted s;
    epode_messaging_t *m;
    CHECK_INT(setup(&s, &m), 0);
    CHECK_INT(epode_messaging_set_receipts(m, EPODE_RECEIPTS_REQUEST), 0);
    epode_stanza_t *msg;
    CHECK_INT(epode_stanza_new_message(NULL, "chat", "juliet@example.com", "hi", &msg), 0);
    CHECK_INT(epode_messaging_send(m, msg), 0);
    const char *id = epode_stanza_get_id(msg);
    CHECK(id != NULL);
    /* the caller's stanza is untouched apart from the id */
    CHECK(epode_stanza_find_child(msg, "request", EPODE_NS_RECEIPTS) == NULL);
    scripted_pump(&s);
    epode_stanza_t *out = scripted_next(&s);
    CHECK(out != NULL);
    CHECK_STR(epode_stanza_get_id(out), id);
    CHECK(epode_stanza_find_child(out, "request", EPODE_NS_RECEIPTS) != NULL);
    epode_stanza_unref(msg);
    /* not on groupchat, nor on messages without a body */
    CHECK_INT(epode_stanza_new_message(NULL, "groupchat", "room@muc.example.com", "hi", &msg), 0);
    CHECK_INT(epode_conn_send(s.conn, msg), 0);
    epode_stanza_unref(msg);
    CHECK_INT(epode_messaging_send_chatstate(m, "juliet@example.com", EPODE_CHATSTATE_COMPOSING), 0);
    scripted_pump(&s);
    out = scripted_next(&s);
    CHECK(out && epode_stanza_find_child(out, "request", EPODE_NS_RECEIPTS) == NULL);
    out = scripted_next(&s);
    CHECK(out && epode_stanza_find_child(out, "request", EPODE_NS_RECEIPTS) == NULL);
    CHECK(epode_stanza_find_child(out, "composing", EPODE_NS_CHATSTATES) != NULL);
    CHECK(epode_stanza_find_child(out, "no-store", EPODE_NS_HINTS) != NULL);
    CHECK_STR(epode_stanza_get_type(out), "chat");
    /* a plain send without an id still gets one on the wire */
    CHECK_INT(epode_stanza_new_message(NULL, "chat", "juliet@example.com", "x", &msg), 0);
    CHECK_INT(epode_conn_send(s.conn, msg), 0);
    epode_stanza_unref(msg);
    scripted_pump(&s);
    out = scripted_next(&s);
    CHECK(out && epode_stanza_get_id(out) != NULL);
    CHECK(epode_stanza_find_child(out, "request", EPODE_NS_RECEIPTS) != NULL);
    epode_messaging_free(m);
    /* freed: no more decoration */
    CHECK_INT(epode_stanza_new_message(NULL, "chat", "juliet@example.com", "x", &msg), 0);
    CHECK_INT(epode_conn_send(s.conn, msg), 0);
    epode_stanza_unref(msg);
    scripted_pump(&s);
    out = scripted_next(&s);
    CHECK(out && epode_stanza_find_child(out, "request", EPODE_NS_RECEIPTS) == NULL);
    scripted_free(&s);
}

TEST(chatstates_reported_and_validated)
{
    scripted s;
    epode_messaging_t *m;
    CHECK_INT(setup(&s, &m), 0);
    CHECK_INT(epode_messaging_handler_add(m, "chat", record, NULL, NULL), 0);
    scripted_send(&s, "<message type='chat' from='juliet@example.com/b'>"
                      "<composing xmlns='http://jabber.org/protocol/chatstates'/></message>");
    CHECK_INT(got_count, 1);
    CHECK_INT(got_state, EPODE_CHATSTATE_COMPOSING);
    CHECK_STR(got_body, "(null)");
    scripted_send(&s, "<message type='chat' from='juliet@example.com/b'><body>x</body>"
                      "<dancing xmlns='http://jabber.org/protocol/chatstates'/></message>");
    CHECK_INT(got_state, EPODE_CHATSTATE_NONE);
    scripted_send(&s, "<message type='chat' from='juliet@example.com/b'><body>x</body>"
                      "<gone xmlns='urn:wrong'/></message>");
    CHECK_INT(got_state, EPODE_CHATSTATE_NONE);
    CHECK_INT(epode_messaging_send_chatstate(m, "juliet@example.com", EPODE_CHATSTATE_NONE),
              EPODE_EINVAL);
    CHECK_INT(epode_messaging_send_chatstate(m, "bad jid@", EPODE_CHATSTATE_ACTIVE),
              EPODE_EJID);
    epode_messaging_free(m);
    scripted_free(&s);
}

TEST(stanza_id_only_from_trusted_by)
{
    scripted s;
    epode_messaging_t *m;
    CHECK_INT(setup(&s, &m), 0);
    CHECK_INT(epode_messaging_handler_add(m, NULL, record, NULL, NULL), 0);
    /* forged by the sender: by = the sender itself */
    scripted_send(&s, "<message type='chat' from='mallory@evil.example/x'><body>x</body>"
                      "<stanza-id xmlns='urn:xmpp:sid:0' by='mallory@evil.example' id='forged'/>"
                      "<origin-id xmlns='urn:xmpp:sid:0' id='o1'/></message>");
    CHECK_STR(got_sid, "(null)");
    CHECK_STR(got_origin, "o1");
    /* by our full JID, or our server: not the archive's */
    scripted_send(&s, "<message type='chat' from='juliet@example.com/b'><body>x</body>"
                      "<stanza-id xmlns='urn:xmpp:sid:0' by='anon@example.com/r1' id='f2'/>"
                      "<stanza-id xmlns='urn:xmpp:sid:0' by='example.com' id='f3'/></message>");
    CHECK_STR(got_sid, "(null)");
    /* by our bare JID (any case), once our account announced the feature:
     * trusted, even after an untrusted one */
    answer_own_query(&s, "anon@example.com", SID_FEATURE);
    scripted_send(&s, "<message type='chat' from='juliet@example.com/b'><body>x</body>"
                      "<stanza-id xmlns='urn:xmpp:sid:0' by='mallory@evil.example' id='f4'/>"
                      "<stanza-id xmlns='urn:xmpp:sid:0' by='Anon@Example.com' id='real'/></message>");
    CHECK_STR(got_sid, "real");
    /* a room, once the application trusts it */
    const char *room = "<message type='groupchat' from='room@muc.example.com/n'><body>x</body>"
                       "<stanza-id xmlns='urn:xmpp:sid:0' by='room@muc.example.com' id='r1'/></message>";
    scripted_send(&s, room);
    CHECK_STR(got_sid, "(null)");
    CHECK_INT(epode_messaging_trust_stanza_id(m, "room@muc.example.com"), 0);
    CHECK_INT(epode_messaging_trust_stanza_id(m, "room@muc.example.com/nick"), EPODE_EJID);
    CHECK_INT(epode_messaging_trust_stanza_id(m, "@"), EPODE_EJID);
    scripted_send(&s, room);
    CHECK_STR(got_sid, "r1");
    /* empty ids are no ids */
    scripted_send(&s, "<message type='chat' from='juliet@example.com/b'><body>x</body>"
                      "<stanza-id xmlns='urn:xmpp:sid:0' by='anon@example.com' id=''/></message>");
    CHECK_STR(got_sid, "(null)");
    epode_messaging_free(m);
    scripted_free(&s);
}

static const char *const OWN_SID_MSG =
    "<message type='chat' from='juliet@example.com/b'><body>x</body>"
    "<stanza-id xmlns='urn:xmpp:sid:0' by='anon@example.com' id='own1'/></message>";

TEST(stanza_id_trusted_only_once_our_account_announces_sid)
{
    scripted s;
    epode_messaging_t *m;
    CHECK_INT(setup(&s, &m), 0); /* the helper asked our bare JID */
    CHECK_INT(epode_messaging_handler_add(m, NULL, record, NULL, NULL), 0);
    /* before the answer: a stanza-id naming our account is ignored */
    scripted_send(&s, OWN_SID_MSG);
    CHECK_INT(got_count, 1);
    CHECK_STR(got_sid, "(null)");
    /* an answer from someone else is not our account's */
    answer_own_query(&s, "mallory@evil.example", SID_FEATURE);
    scripted_send(&s, OWN_SID_MSG);
    CHECK_STR(got_sid, "(null)");
    /* our account announces urn:xmpp:sid:0: its ids are trusted now */
    answer_own_query(&s, "anon@example.com", SID_FEATURE);
    scripted_send(&s, OWN_SID_MSG);
    CHECK_STR(got_sid, "own1");
    /* ...and only its: a stanza-id by anyone else, our server, or another
     * user of it, is not trusted because our account announced the feature */
    scripted_send(&s, "<message type='chat' from='juliet@example.com/b'><body>x</body>"
                      "<stanza-id xmlns='urn:xmpp:sid:0' by='juliet@example.com' id='j1'/>"
                      "<stanza-id xmlns='urn:xmpp:sid:0' by='example.com' id='d1'/></message>");
    CHECK_STR(got_sid, "(null)");
    epode_messaging_free(m);

    /* an account that does not announce it: never trusted */
    CHECK_INT(epode_messaging_new(s.conn, &m), 0);
    CHECK_INT(epode_messaging_handler_add(m, NULL, record, NULL, NULL), 0);
    scripted_pump(&s);
    CHECK(*take_own_query(&s));
    answer_own_query(&s, "anon@example.com", "<feature var='urn:xmpp:mam:2'/>");
    scripted_send(&s, OWN_SID_MSG);
    CHECK_STR(got_sid, "(null)");
    epode_messaging_free(m);

    /* an error answer: not trusted either */
    CHECK_INT(epode_messaging_new(s.conn, &m), 0);
    CHECK_INT(epode_messaging_handler_add(m, NULL, record, NULL, NULL), 0);
    scripted_pump(&s);
    CHECK(*take_own_query(&s));
    char xml[512];
    snprintf(xml, sizeof xml, "<iq type='error' id='%s' from='anon@example.com'><query xmlns="
             "'http://jabber.org/protocol/disco#info'><feature var='urn:xmpp:sid:0'/></query>"
             "<error type='cancel'><service-unavailable xmlns='urn:ietf:params:xml:ns:"
             "xmpp-stanzas'/></error></iq>", own_query);
    scripted_send(&s, xml);
    scripted_send(&s, OWN_SID_MSG);
    CHECK_STR(got_sid, "(null)");
    /* freed with its question still out: nothing is called later */
    epode_messaging_free(m);
    CHECK_INT(epode_messaging_new(s.conn, &m), 0);
    epode_messaging_free(m);
    scripted_pump(&s);
    CHECK(*take_own_query(&s));
    answer_own_query(&s, "anon@example.com", SID_FEATURE);
    CHECK(epode_conn_is_ready(s.conn));
    scripted_free(&s);
}

TEST(origin_id_added_when_asked)
{
    scripted s;
    epode_messaging_t *m;
    CHECK_INT(setup(&s, &m), 0);
    CHECK_INT(epode_messaging_set_origin_id(m, 1), 0);
    epode_stanza_t *msg;
    CHECK_INT(epode_message_build("chat", "juliet@example.com", "hi", NULL, NULL, &msg), 0);
    CHECK_INT(epode_messaging_send(m, msg), 0);
    scripted_pump(&s);
    epode_stanza_t *out = scripted_next(&s);
    CHECK(out != NULL);
    epode_stanza_t *o = epode_stanza_find_child(out, "origin-id", EPODE_NS_SID);
    CHECK(o != NULL);
    CHECK_STR(epode_stanza_get_attr(o, "id"), epode_stanza_get_id(msg));
    epode_stanza_unref(msg);
    epode_messaging_free(m);
    scripted_free(&s);
}

TEST(message_garbage_is_harmless)
{
    scripted s;
    epode_messaging_t *m;
    CHECK_INT(setup(&s, &m), 0);
    CHECK_INT(epode_messaging_handler_add(m, NULL, record, NULL, NULL), 0);
    CHECK_INT(epode_messaging_set_receipts(m, EPODE_RECEIPTS_ANSWER | EPODE_RECEIPTS_REQUEST), 0);
    CHECK_INT(epode_messaging_set_receipt_cb(m, on_receipt, NULL), 0);
    scripted_send(&s, "<message/>");
    scripted_send(&s, "<message type='chat'><body><b>nested</b></body><thread/><subject/></message>");
    scripted_send(&s, "<message type='chat' from='a@b/c'><body xml:lang=''>x</body>"
                      "<received xmlns='urn:xmpp:receipts' id=''/></message>");
    CHECK(got_count >= 2);
    CHECK(epode_conn_is_ready(s.conn));
    CHECK_INT(epode_messaging_handler_add(NULL, NULL, record, NULL, NULL), EPODE_EINVAL);
    CHECK_INT(epode_messaging_new(NULL, &m), EPODE_EINVAL);
    epode_messaging_free(NULL);
    epode_messaging_free(m);
    scripted_free(&s);
}

/* ---- allocation through the context's allocator ------------------------- */

/* The calls of a workload: the first error, and whether any call
 * returned something else than 0 or EPODE_ENOMEM. */
typedef struct run {
    int rc, bad;
    scripted *s;
} run;

static int step(run *r, int rc)
{
    /* Out of memory, the library itself may drop the stream: what is sent
     * after that fails with EPODE_ESTATE, which is then no surprise. */
    int ok = rc == 0 || rc == EPODE_ENOMEM ||
             (rc == EPODE_ESTATE && !epode_conn_is_ready(r->s->conn));
    if (!ok) {
        printf("# unexpected %d\n", rc);
        r->bad = 1;
    }
    if (rc < 0 && r->rc == 0)
        r->rc = rc;
    return rc;
}

/* Messaging with everything on: receipts both ways, chat states,
 * origin-id, a trusted archive; a message with a receipt request comes
 * in, a receipt, then we send a message and a chat state. */
static void workload(run *r)
{
    scripted *s = r->s;
    epode_messaging_t *m;
    reset();
    rc_count = 0;
    if (step(r, epode_messaging_new(s->conn, &m)) < 0)
        return;
    scripted_pump(s);
    if (*take_own_query(s))
        answer_own_query(s, "anon@example.com", SID_FEATURE);
    step(r, epode_messaging_handler_add(m, "chat", record, NULL, NULL));
    step(r, epode_messaging_set_receipts(m, EPODE_RECEIPTS_ANSWER | EPODE_RECEIPTS_REQUEST));
    step(r, epode_messaging_set_receipt_cb(m, on_receipt, NULL));
    step(r, epode_messaging_set_origin_id(m, 1));
    step(r, epode_messaging_trust_stanza_id(m, "archive.example.com"));
    scripted_send(s, "<message type='chat' from='juliet@example.com/b' id='in1'>"
                     "<body>hi</body><composing xmlns='http://jabber.org/protocol/chatstates'/>"
                     "<request xmlns='urn:xmpp:receipts'/>"
                     "<stanza-id xmlns='urn:xmpp:sid:0' by='archive.example.com' id='s1'/>"
                     "</message>");
    scripted_send(s, "<message from='juliet@example.com/b' id='x'>"
                     "<received xmlns='urn:xmpp:receipts' id='m42'/></message>");
    epode_stanza_t *msg;
    if (step(r, epode_message_build("chat", "juliet@example.com", "hello", NULL, NULL, &msg)) ==
        0) {
        step(r, epode_messaging_send(m, msg));
        epode_stanza_unref(msg);
    }
    step(r, epode_messaging_send_chatstate(m, "juliet@example.com", EPODE_CHATSTATE_ACTIVE));
    scripted_pump(s);
    epode_messaging_free(m);
}

/* How many allocations a bare login takes. */
static long bare_login_calls(void)
{
    scripted_mem mm;
    scripted_mem_init(&mm);
    mm.fail_at = LONG_MAX; /* count, never fail */
    scripted s;
    if (scripted_login_mem(&s, &mm.mem, "example.com", ME) < 0)
        return -1;
    long calls = mm.calls;
    scripted_free(&s);
    return mm.live == 0 ? calls : -1;
}

TEST(messaging_allocates_through_the_context)
{
    long bare = bare_login_calls();
    CHECK(bare > 0);
    scripted_mem mm;
    scripted_mem_init(&mm);
    mm.fail_at = LONG_MAX;
    scripted s;
    CHECK_INT(scripted_login_mem(&s, &mm.mem, "example.com", ME), 0);
    CHECK_INT(mm.calls, bare);
    run r = {.s = &s};
    workload(&r);
    CHECK_INT(r.rc, 0);
    CHECK_INT(r.bad, 0);
    CHECK(mm.calls > bare);
    /* it did what it should: handled, receipt answered, receipt reported,
     * our message decorated, chat state sent */
    CHECK_INT(got_count, 1);
    CHECK_STR(got_sid, "s1");
    CHECK_INT(got_state, EPODE_CHATSTATE_COMPOSING);
    CHECK_INT(rc_count, 1);
    CHECK(strstr(scripted_next_text(&s), "<received xmlns=\"urn:xmpp:receipts\" id=\"in1\"/>"));
    const char *t = scripted_next_text(&s);
    CHECK(strstr(t, "<request xmlns=\"urn:xmpp:receipts\"/>"));
    CHECK(strstr(t, "<origin-id xmlns=\"urn:xmpp:sid:0\""));
    CHECK(strstr(scripted_next_text(&s), "<active"));
    scripted_free(&s);
    CHECK_INT(mm.live, 0);
}

TEST(messaging_survives_every_failing_allocation)
{
    long n;
    int done = 0;
    for (n = 0; !done && n < 100000; n++) {
        scripted_mem mm;
        scripted_mem_init(&mm);
        mm.fail_at = LONG_MAX;
        scripted s;
        CHECK_INT(scripted_login_mem(&s, &mm.mem, "example.com", ME), 0);
        mm.fail_at = mm.calls + n; /* the nth allocation after login on fails */
        run r = {.s = &s};
        workload(&r);
        scripted_free(&s);
        done = mm.calls <= mm.fail_at; /* nothing failed: all points covered */
        if (r.bad || mm.live != 0)
            printf("# failing from allocation %ld after login: bad %d, %ld live\n", n, r.bad,
                   mm.live);
        CHECK_INT(r.bad, 0);
        CHECK_INT(mm.live, 0);
        if (done)
            CHECK_INT(r.rc, 0);
    }
    CHECK(done);
    printf("# %ld allocation points swept\n", n - 1);
}

/* A registration-mode stream (epode_conn_set_register) is READY with no
 * account: the helper can still be made on it (found by fuzz_mam). */
TEST(messaging_new_on_a_registration_stream)
{
    epode_ctx_t *ctx;
    epode_conn_t *conn;
    epode__transport *client, *server;
    CHECK_INT(epode_global_init(), 0);
    CHECK_INT(epode_ctx_new(NULL, &ctx), 0);
    CHECK_INT(epode_conn_new(ctx, &conn), 0);
    CHECK_INT(epode_conn_set_jid(conn, "newbie@example.com"), 0);
    CHECK_INT(epode_conn_set_tls(conn, EPODE_TLS_DISABLED), 0);
    CHECK_INT(epode_conn_set_register(conn, 1, 1), 0);
    CHECK_INT(epode__memory_pair(NULL, &client, &server), 0);
    CHECK_INT(epode__conn_start_over(conn, client), 0);
    static const char hdr[] =
        "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' "
        "from='example.com' id='x' version='1.0'><stream:features><register xmlns='"
        "http://jabber.org/features/iq-register'/></stream:features>";
    epode__transport_write(server, hdr, sizeof hdr - 1);
    for (int i = 0; i < 20; i++) {
        epode__conn_poke(conn);
        while (epode_ctx_run_once(ctx, 0) > 0)
            ;
    }
    CHECK_INT(epode_conn_is_ready(conn), 1);
    CHECK(epode_conn_bound_jid(conn) == NULL);
    epode_messaging_t *m = NULL;
    CHECK_INT(epode_messaging_new(conn, &m), 0);
    epode_messaging_free(m);
    epode_conn_free(conn);
    epode__transport_free(server);
    epode_ctx_free(ctx);
}

TEST_MAIN
