/* tests/unit/test_im_msgext.c — today's message features (epode/msgext.h):
 * timestamps, delays, corrections, retractions, reactions, replies,
 * markers, hints; built here and read back through the messaging
 * helper on a scripted server, plus what a hostile peer sends: a
 * correction or retraction from someone else, oversize reaction lists,
 * fallback ranges outside the body, garbage stamps. */
#include "test.h"

#include "scripted.h"

TEST_MAIN

#define ME "anon@example.com/r1"

/* ---- timestamps -------------------------------------------------------------- */

TEST(time_parse_accepts_xep0082_forms)
{
    long long ms = 0;
    CHECK_INT(epode_time_parse("1970-01-01T00:00:00Z", &ms), 0);
    CHECK_INT(ms, 0);
    CHECK_INT(epode_time_parse("2010-07-10T23:08:25Z", &ms), 0);
    CHECK_INT(ms, 1278803305000LL);
    CHECK_INT(epode_time_parse("2010-07-10T23:08:25.123Z", &ms), 0);
    CHECK_INT(ms, 1278803305123LL);
    CHECK_INT(epode_time_parse("2010-07-10T23:08:25.1234567Z", &ms), 0);
    CHECK_INT(ms, 1278803305123LL);
    CHECK_INT(epode_time_parse("2010-07-11T01:08:25+02:00", &ms), 0);
    CHECK_INT(ms, 1278803305000LL);
    CHECK_INT(epode_time_parse("2010-07-10T18:08:25.5-05:00", &ms), 0);
    CHECK_INT(ms, 1278803305500LL);
    CHECK_INT(epode_time_parse("2024-02-29T12:00:00Z", &ms), 0);
    CHECK_INT(epode_time_parse("1969-12-31T23:59:59Z", &ms), 0);
    CHECK_INT(ms, -1000);
}

TEST(time_parse_refuses_garbage)
{
    long long ms = 42;
    const char *bad[] = {"", "2010-07-10", "2010-07-10T23:08:25", "2010-07-10 23:08:25Z",
                         "2010-13-10T23:08:25Z", "2023-02-29T00:00:00Z", "2010-07-10T24:00:00Z",
                         "2010-07-10T23:60:00Z", "2010-07-10T23:08:60Z", "2010-07-10T23:08:25.Z",
                         "2010-07-10T23:08:25Zx", "2010-07-10T23:08:25+2:00", "0000-01-01T00:00:00Z",
                         "+2010-07-10T23:08:25Z", "2010-7-10T23:08:25Z", "2010-07-10T23:08:25+24:00"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        if (epode_time_parse(bad[i], &ms) != EPODE_EINVAL)
            printf("# accepted %s\n", bad[i]);
        CHECK_INT(epode_time_parse(bad[i], &ms), EPODE_EINVAL);
    }
    CHECK_INT(ms, 42);
    CHECK_INT(epode_time_parse(NULL, &ms), EPODE_EINVAL);
}

TEST(time_format_round_trips)
{
    char buf[EPODE_TIME_BUFSIZE];
    CHECK_INT(epode_time_format(1278803305000LL, buf, sizeof buf), 0);
    CHECK_STR(buf, "2010-07-10T23:08:25Z");
    CHECK_INT(epode_time_format(1278803305123LL, buf, sizeof buf), 0);
    CHECK_STR(buf, "2010-07-10T23:08:25.123Z");
    CHECK_INT(epode_time_format(-1, buf, sizeof buf), 0);
    CHECK_STR(buf, "1969-12-31T23:59:59.999Z");
    CHECK_INT(epode_time_format(0, buf, 5), EPODE_ERANGE);
    CHECK_INT(epode_time_format(253402300800000LL, buf, sizeof buf), EPODE_EINVAL);
    for (long long t = -62135596800000LL; t < 253402300799999LL; t += 987654321987LL) {
        long long back;
        CHECK_INT(epode_time_format(t, buf, sizeof buf), 0);
        CHECK_INT(epode_time_parse(buf, &back), 0);
        CHECK_INT(back, t);
    }
}

/* ---- receiving through the messaging helper ------------------------------------ */

typedef struct got {
    int calls;
    epode_stanza_t *st; /* the last message, kept */
} got;

static int keep(epode_conn_t *c, const epode_message_t *m, void *user)
{
    (void)c;
    got *g = user;
    g->calls++;
    epode_stanza_unref(g->st);
    g->st = epode_stanza_ref(epode_message_stanza(m));
    return EPODE_HANDLED;
}

/* Parses `xml` into a view (the same readers handlers use). */
static epode_message_t *view_of(const char *xml)
{
    /* as inside a client stream: jabber:client by default */
    static char buf[65536];
    if (strncmp(xml, "<message", 8) != 0 ||
        (size_t)snprintf(buf, sizeof buf, "<message xmlns='jabber:client'%s", xml + 8) >= sizeof buf)
        return NULL;
    epode_stanza_t *st;
    if (epode_stanza_from_text(NULL, buf, (size_t)-1, &st, NULL) < 0)
        return NULL;
    epode_message_t *v = NULL;
    epode_message_view_new(NULL, st, &v);
    epode_stanza_unref(st);
    return v;
}

TEST(delay_is_read_on_live_messages_and_views)
{
    scripted s;
    CHECK_INT(scripted_login(&s, "example.com", ME), 0);
    epode_messaging_t *m;
    CHECK_INT(epode_messaging_new(s.conn, &m), 0);
    got g = {0};
    long long ms = 0;
    const char *from = NULL, *reason = NULL;
    CHECK_INT(epode_messaging_handler_add(m, NULL, keep, &g, NULL), 0);
    scripted_send(&s, "<message from='juliet@example.com/balcony' type='chat'><body>hi</body>"
                      "<delay xmlns='urn:xmpp:delay' from='example.com' stamp='garbage'/>"
                      "<delay xmlns='urn:xmpp:delay' from='example.com' "
                      "stamp='2002-09-10T23:08:25Z'>Offline Storage</delay></message>");
    CHECK_INT(g.calls, 1);
    epode_message_t *v;
    CHECK_INT(epode_message_view_new(NULL, g.st, &v), 0);
    CHECK_INT(epode_message_delay(v, &ms, &from, &reason), 0);
    CHECK_INT(ms, 1031699305000LL);
    CHECK_STR(from, "example.com");
    CHECK_STR(reason, "Offline Storage");
    epode_message_view_free(v);
    /* none at all */
    v = view_of("<message from='a@b'><body>x</body></message>");
    CHECK(v != NULL);
    ms = 7;
    CHECK_INT(epode_message_delay(v, &ms, NULL, NULL), EPODE_ENOTFOUND);
    CHECK_INT(ms, 7);
    epode_message_view_free(v);
    epode_stanza_unref(g.st);
    epode_messaging_free(m);
    scripted_free(&s);
}

TEST(add_delay_builds_a_stamp)
{
    epode_stanza_t *msg;
    CHECK_INT(epode_message_build("chat", "a@b", "x", NULL, NULL, &msg), 0);
    CHECK_INT(epode_message_add_delay(msg, 1278803305123LL, "b", "relayed"), 0);
    CHECK_INT(epode_message_add_delay(msg, 0, NULL, NULL), EPODE_EINVAL);
    epode_stanza_t *d = epode_stanza_find_child(msg, "delay", EPODE_NS_DELAY);
    CHECK(d != NULL);
    CHECK_STR(epode_stanza_get_attr(d, "stamp"), "2010-07-10T23:08:25.123Z");
    epode_stanza_unref(msg);
    CHECK_INT(epode_message_view_new(NULL, NULL, NULL), EPODE_EINVAL);
}

/* ---- corrections and the sender check ------------------------------------------ */

TEST(correction_built_and_read)
{
    epode_stanza_t *msg;
    CHECK_INT(epode_message_build("chat", "juliet@example.com", "fixed", NULL, NULL, &msg), 0);
    CHECK_INT(epode_message_set_replace(msg, "orig-1"), 0);
    CHECK_INT(epode_message_set_replace(msg, "orig-2"), EPODE_EINVAL);
    CHECK_INT(epode_message_set_replace(msg, ""), EPODE_EINVAL);
    CHECK_INT(epode_stanza_set_from(msg, "romeo@example.net/orchard"), 0);
    epode_message_t *v;
    CHECK_INT(epode_message_view_new(NULL, msg, &v), 0);
    CHECK_STR(epode_message_replace_id(v), "orig-1");
    CHECK_STR(epode_message_body(v, NULL), "fixed");
    /* the original came from romeo's other resource: the same sender */
    CHECK_INT(epode_message_same_sender(v, "Romeo@example.net/phone", NULL, EPODE_SENDER_AUTO), 1);
    CHECK_INT(epode_message_same_sender(v, "romeo@example.net", NULL, EPODE_SENDER_DIRECT), 1);
    epode_message_view_free(v);
    epode_stanza_unref(msg);
}

TEST(correction_from_another_sender_is_refused)
{
    epode_message_t *v = view_of("<message from='mallory@evil.example/x' type='chat'>"
                                 "<body>I owe you nothing</body>"
                                 "<replace xmlns='urn:xmpp:message-correct:0' id='orig-1'/></message>");
    CHECK(v != NULL);
    CHECK_STR(epode_message_replace_id(v), "orig-1");
    CHECK_INT(epode_message_same_sender(v, "romeo@example.net/orchard", NULL, EPODE_SENDER_AUTO), 0);
    CHECK_INT(epode_message_same_sender(v, "romeo@example.net", NULL, EPODE_SENDER_DIRECT), 0);
    CHECK_INT(epode_message_same_sender(v, NULL, NULL, EPODE_SENDER_AUTO), 0);
    CHECK_INT(epode_message_same_sender(v, "not a jid@@", NULL, EPODE_SENDER_AUTO), 0);
    epode_message_view_free(v);
    /* no from at all */
    v = view_of("<message type='chat'><replace xmlns='urn:xmpp:message-correct:0' id='o'/></message>");
    CHECK_INT(epode_message_same_sender(v, "romeo@example.net", NULL, EPODE_SENDER_AUTO), 0);
    epode_message_view_free(v);
    /* an error bounced back is never a correction */
    v = view_of("<message from='romeo@example.net/o' type='error'><replace "
                "xmlns='urn:xmpp:message-correct:0' id='o'/></message>");
    CHECK(epode_message_replace_id(v) == NULL);
    CHECK_INT(epode_message_same_sender(v, "romeo@example.net/o", NULL, EPODE_SENDER_AUTO), 0);
    epode_message_view_free(v);
    /* an empty id names nothing */
    v = view_of("<message from='romeo@example.net/o'><replace xmlns='urn:xmpp:message-correct:0' "
                "id=''/></message>");
    CHECK(epode_message_replace_id(v) == NULL);
    epode_message_view_free(v);
}

TEST(correction_in_a_room_needs_the_same_occupant)
{
    /* another occupant of the same room: same bare JID, refused */
    epode_message_t *v = view_of("<message from='room@muc.example/mallory' type='groupchat'>"
                                 "<body>x</body><replace xmlns='urn:xmpp:message-correct:0' id='s1'/>"
                                 "</message>");
    CHECK_INT(epode_message_same_sender(v, "room@muc.example/romeo", NULL, EPODE_SENDER_AUTO), 0);
    CHECK_INT(epode_message_same_sender(v, "room@muc.example/mallory", NULL, EPODE_SENDER_AUTO), 1);
    /* the room itself is no occupant */
    CHECK_INT(epode_message_same_sender(v, "room@muc.example", NULL, EPODE_SENDER_OCCUPANT), 0);
    epode_message_view_free(v);
    /* same nick, another occupant id: someone else took the nick */
    v = view_of("<message from='room@muc.example/romeo' type='groupchat'><body>x</body>"
                "<occupant-id xmlns='urn:xmpp:occupant-id:0' id='occ-2'/>"
                "<replace xmlns='urn:xmpp:message-correct:0' id='s1'/></message>");
    CHECK_STR(epode_message_occupant_id(v), "occ-2");
    CHECK_INT(epode_message_same_sender(v, "room@muc.example/romeo", "occ-1", EPODE_SENDER_AUTO), 0);
    CHECK_INT(epode_message_same_sender(v, "room@muc.example/romeo", "occ-2", EPODE_SENDER_AUTO), 1);
    epode_message_view_free(v);
    /* the original had an occupant id, the correction none: refused */
    v = view_of("<message from='room@muc.example/romeo' type='groupchat'><body>x</body>"
                "<replace xmlns='urn:xmpp:message-correct:0' id='s1'/></message>");
    CHECK_INT(epode_message_same_sender(v, "room@muc.example/romeo", "occ-1", EPODE_SENDER_AUTO), 0);
    epode_message_view_free(v);
    /* a private message relayed by a room (muc#user x): full JIDs compared */
    v = view_of("<message from='room@muc.example/mallory' type='chat'><body>x</body>"
                "<x xmlns='http://jabber.org/protocol/muc#user'/>"
                "<replace xmlns='urn:xmpp:message-correct:0' id='p1'/></message>");
    CHECK_INT(epode_message_same_sender(v, "room@muc.example/romeo", NULL, EPODE_SENDER_AUTO), 0);
    CHECK_INT(epode_message_same_sender(v, "room@muc.example/romeo", NULL, EPODE_SENDER_DIRECT), 1);
    epode_message_view_free(v);
}

/* ---- retractions ------------------------------------------------------------------- */

TEST(retraction_built_as_in_xep0424_v1)
{
    epode_stanza_t *msg;
    CHECK_INT(epode_message_build_retraction("chat", "lord@capulet.example", "wrong-1", &msg), 0);
    CHECK_STR(epode_stanza_get_type(msg), "chat");
    CHECK(epode_stanza_get_id(msg) != NULL);
    epode_stanza_t *r = epode_stanza_find_child(msg, "retract", EPODE_NS_RETRACT);
    CHECK(r != NULL);
    CHECK_STR(epode_stanza_get_attr(r, "id"), "wrong-1");
    epode_stanza_t *f = epode_stanza_find_child(msg, "fallback", EPODE_NS_FALLBACK);
    CHECK(f != NULL);
    CHECK_STR(epode_stanza_get_attr(f, "for"), EPODE_NS_RETRACT);
    CHECK(epode_stanza_child_text(msg, "body", EPODE_NS_CLIENT) != NULL);
    CHECK(epode_stanza_find_child(msg, "store", EPODE_NS_HINTS) != NULL);
    epode_message_t *v;
    CHECK_INT(epode_message_view_new(NULL, msg, &v), 0);
    CHECK_STR(epode_message_retract_id(v), "wrong-1");
    CHECK_INT(epode_message_hints(v), EPODE_HINT_STORE);
    size_t a, b;
    CHECK_INT(epode_message_fallback(v, EPODE_NS_RETRACT, &a, &b), 0);
    CHECK_INT(a, 0);
    CHECK_INT(b, strlen(epode_message_body(v, NULL)));
    epode_message_view_free(v);
    epode_stanza_unref(msg);
    CHECK_INT(epode_message_build_retraction("chat", "lord@capulet.example", "", &msg), EPODE_EINVAL);
    CHECK_INT(epode_message_build_retraction("bogus", "lord@capulet.example", "x", &msg), EPODE_EINVAL);
    /* a bad address gets the answer every send path gives: EJID */
    CHECK_INT(epode_message_build_retraction("chat", "@@", "x", &msg), EPODE_EJID);
    CHECK_INT(epode_message_build_retraction("chat", "a@b@c", "x", &msg), EPODE_EJID);
    const char *one[] = {"+1"};
    CHECK_INT(epode_message_build_reactions("chat", "a@b@c", "x", one, 1, &msg), EPODE_EJID);
    CHECK_INT(epode_message_build_marker("chat", "a@b@c", EPODE_MARKER_DISPLAYED, "x", NULL, &msg),
              EPODE_EJID);
    CHECK_INT(epode_message_build_reply("chat", "a@b@c", "yes", NULL, "m", NULL, &msg),
              EPODE_EJID);
    CHECK_INT(epode_stanza_new_message(NULL, "chat", "r@e", "hi", &msg), 0);
    CHECK_INT(epode_message_set_reply(msg, "a@b@c", "m"), EPODE_EJID);
    CHECK_INT(epode_message_add_delay(msg, 0, "a@b@c", NULL), EPODE_EJID);
    CHECK(epode_stanza_find_child(msg, "reply", EPODE_NS_REPLY) == NULL);
    CHECK(epode_stanza_find_child(msg, "delay", EPODE_NS_DELAY) == NULL);
    epode_stanza_unref(msg);
}

TEST(retraction_old_form_and_tombstones_are_read)
{
    epode_message_t *v = view_of("<message from='romeo@example.net/o' type='chat'>"
                                 "<apply-to xmlns='urn:xmpp:fasten:0' id='old-1'>"
                                 "<retract xmlns='urn:xmpp:message-retract:0'/></apply-to></message>");
    CHECK_STR(epode_message_retract_id(v), "old-1");
    epode_message_view_free(v);
    /* apply-to without a retract inside is something else */
    v = view_of("<message from='romeo@example.net/o'><apply-to xmlns='urn:xmpp:fasten:0' id='x'>"
                "<other xmlns='urn:example'/></apply-to></message>");
    CHECK(epode_message_retract_id(v) == NULL);
    epode_message_view_free(v);
    v = view_of("<message from='romeo@example.net'><retracted xmlns='urn:xmpp:message-retract:1' "
                "id='retract-1' stamp='2019-09-20T23:09:32Z'/></message>");
    long long ms = 0;
    CHECK_STR(epode_message_retracted(v, &ms), "retract-1");
    CHECK_INT(ms, 1569020972000LL);
    CHECK(epode_message_retract_id(v) == NULL);
    epode_message_view_free(v);
}

TEST(retraction_from_another_sender_is_refused)
{
    epode_message_t *v = view_of("<message from='mallory@evil.example/x' type='chat'>"
                                 "<retract xmlns='urn:xmpp:message-retract:1' id='m1'/></message>");
    CHECK_STR(epode_message_retract_id(v), "m1");
    CHECK_INT(epode_message_same_sender(v, "romeo@example.net/orchard", NULL, EPODE_SENDER_AUTO), 0);
    CHECK_INT(epode_message_same_sender(v, "mallory@evil.example", NULL, EPODE_SENDER_AUTO), 1);
    epode_message_view_free(v);
}

/* ---- reactions ----------------------------------------------------------------------- */

TEST(reactions_built_and_read)
{
    const char *set[] = {"\xF0\x9F\x91\x8B", "\xF0\x9F\x90\xA2"};
    epode_stanza_t *msg;
    CHECK_INT(epode_message_build_reactions("chat", "romeo@example.net", "744f", set, 2, &msg), 0);
    CHECK(epode_stanza_find_child(msg, "store", EPODE_NS_HINTS) != NULL);
    epode_message_t *v;
    CHECK_INT(epode_message_view_new(NULL, msg, &v), 0);
    CHECK_STR(epode_message_reactions_id(v), "744f");
    CHECK_INT(epode_message_reaction_count(v), 2);
    CHECK_STR(epode_message_reaction_at(v, 0), set[0]);
    CHECK_STR(epode_message_reaction_at(v, 1), set[1]);
    CHECK(epode_message_reaction_at(v, 2) == NULL);
    epode_message_view_free(v);
    epode_stanza_unref(msg);
    /* an empty set removes all */
    CHECK_INT(epode_message_build_reactions("chat", "romeo@example.net", "744f", NULL, 0, &msg), 0);
    CHECK_INT(epode_message_view_new(NULL, msg, &v), 0);
    CHECK_STR(epode_message_reactions_id(v), "744f");
    CHECK_INT(epode_message_reaction_count(v), 0);
    epode_message_view_free(v);
    epode_stanza_unref(msg);
    /* refused: repeats, empty, too long, too many */
    const char *rep[] = {"a", "a"};
    CHECK_INT(epode_message_build_reactions("chat", "r@e", "i", rep, 2, &msg), EPODE_EINVAL);
    const char *empty[] = {""};
    CHECK_INT(epode_message_build_reactions("chat", "r@e", "i", empty, 1, &msg), EPODE_EINVAL);
    char longr[EPODE_REACTION_MAX_BYTES + 2];
    memset(longr, 'x', sizeof longr - 1);
    longr[sizeof longr - 1] = 0;
    const char *lng[] = {longr};
    CHECK_INT(epode_message_build_reactions("chat", "r@e", "i", lng, 1, &msg), EPODE_EINVAL);
    CHECK_INT(epode_message_build_reactions("chat", "r@e", "i", set, EPODE_REACTIONS_MAX + 1, &msg),
              EPODE_EINVAL);
}

TEST(reactions_hostile_lists)
{
    /* repeats and junk are skipped */
    epode_message_t *v = view_of("<message from='j@e/b' type='chat'><reactions "
                                 "xmlns='urn:xmpp:reactions:0' id='m1'><reaction>+1</reaction>"
                                 "<reaction>+1</reaction><reaction></reaction><reaction>ok</reaction>"
                                 "</reactions></message>");
    CHECK_STR(epode_message_reactions_id(v), "m1");
    CHECK_INT(epode_message_reaction_count(v), 2);
    CHECK_STR(epode_message_reaction_at(v, 1), "ok");
    epode_message_view_free(v);
    /* two <reactions/>: malformed, ignored */
    v = view_of("<message from='j@e/b'><reactions xmlns='urn:xmpp:reactions:0' id='m1'/>"
                "<reactions xmlns='urn:xmpp:reactions:0' id='m2'/></message>");
    CHECK(epode_message_reactions_id(v) == NULL);
    CHECK_INT(epode_message_reaction_count(v), 0);
    epode_message_view_free(v);
    /* no id */
    v = view_of("<message from='j@e/b'><reactions xmlns='urn:xmpp:reactions:0'>"
                "<reaction>a</reaction></reactions></message>");
    CHECK(epode_message_reactions_id(v) == NULL);
    epode_message_view_free(v);
    /* oversize: more distinct reactions than the limit, and a flood of repeats */
    char xml[40000];
    size_t n = (size_t)snprintf(xml, sizeof xml, "<message from='j@e/b'><reactions "
                                                 "xmlns='urn:xmpp:reactions:0' id='m1'>");
    for (int i = 0; i <= EPODE_REACTIONS_MAX; i++)
        n += (size_t)snprintf(xml + n, sizeof xml - n, "<reaction>r%d</reaction>", i);
    snprintf(xml + n, sizeof xml - n, "</reactions></message>");
    v = view_of(xml);
    CHECK(v != NULL);
    CHECK(epode_message_reactions_id(v) == NULL);
    CHECK_INT(epode_message_reaction_count(v), 0);
    CHECK(epode_message_reaction_at(v, 0) == NULL);
    epode_message_view_free(v);
    n = (size_t)snprintf(xml, sizeof xml, "<message from='j@e/b'><reactions "
                                          "xmlns='urn:xmpp:reactions:0' id='m1'>");
    for (int i = 0; i < 1000; i++)
        n += (size_t)snprintf(xml + n, sizeof xml - n, "<reaction>a</reaction>");
    snprintf(xml + n, sizeof xml - n, "</reactions></message>");
    v = view_of(xml);
    CHECK(v != NULL);
    CHECK(epode_message_reactions_id(v) == NULL);
    epode_message_view_free(v);
}

/* ---- replies and fallbacks ----------------------------------------------------------- */

TEST(reply_built_with_a_fallback_and_read)
{
    epode_stanza_t *msg;
    CHECK_INT(epode_message_build_reply("chat", "anna@example.com", "Great idea!",
                                        "anna@example.com/laptop", "message-id1",
                                        "Anna wrote:\nWe should bake a c\xC3\xA4ke", &msg), 0);
    epode_message_t *v;
    CHECK_INT(epode_message_view_new(NULL, msg, &v), 0);
    const char *to;
    CHECK_STR(epode_message_reply_id(v, &to), "message-id1");
    CHECK_STR(to, "anna@example.com/laptop");
    const char *body = epode_message_body(v, NULL);
    CHECK_STR(body, "> Anna wrote:\n> We should bake a c\xC3\xA4ke\nGreat idea!");
    size_t a, b;
    CHECK_INT(epode_message_fallback(v, EPODE_NS_REPLY, &a, &b), 0);
    CHECK_INT(a, 0);
    CHECK_STR(body + b, "Great idea!");
    /* the range is written in characters: one less than bytes here */
    epode_stanza_t *fb = epode_stanza_find_child(msg, "fallback", EPODE_NS_FALLBACK);
    CHECK_INT(atoi(epode_stanza_get_attr(epode_stanza_first_child(fb), "end")), (int)b - 1);
    CHECK_INT(epode_message_fallback(v, EPODE_NS_RETRACT, &a, &b), EPODE_ENOTFOUND);
    epode_message_view_free(v);
    epode_stanza_unref(msg);
    /* without a quote: no fallback */
    CHECK_INT(epode_message_build_reply("chat", "anna@example.com", "yes", NULL, "m", NULL, &msg), 0);
    CHECK_INT(epode_message_view_new(NULL, msg, &v), 0);
    CHECK_STR(epode_message_reply_id(v, &to), "m");
    CHECK(to == NULL);
    CHECK_INT(epode_message_fallback(v, EPODE_NS_REPLY, &a, &b), EPODE_ENOTFOUND);
    epode_message_view_free(v);
    epode_stanza_unref(msg);
    CHECK_INT(epode_message_build_reply("chat", "anna@example.com", "yes", "@@", "m", NULL, &msg),
              EPODE_EJID);
}

TEST(fallback_ranges_outside_the_body_are_ignored)
{
    const char *bad[] = {"start='0' end='99'", "start='5' end='2'", "start='-1' end='2'",
                         "start='x' end='2'", "start='0' end='99999999999'", "start='0'"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char xml[512];
        snprintf(xml, sizeof xml, "<message from='a@b/c'><body>short</body><reply "
                 "xmlns='urn:xmpp:reply:0' id='m'/><fallback xmlns='urn:xmpp:fallback:0' "
                 "for='urn:xmpp:reply:0'><body %s/></fallback></message>", bad[i]);
        epode_message_t *v = view_of(xml);
        CHECK(v != NULL);
        size_t a = 77, b = 77;
        CHECK_INT(epode_message_fallback(v, EPODE_NS_REPLY, &a, &b), EPODE_ENOTFOUND);
        CHECK_INT(a, 77);
        epode_message_view_free(v);
    }
    /* a range up to the very end is fine */
    epode_message_t *v = view_of("<message from='a@b/c'><body>short</body><fallback "
                                 "xmlns='urn:xmpp:fallback:0' for='urn:xmpp:reply:0'><body start='2' "
                                 "end='5'/></fallback></message>");
    size_t a, b;
    CHECK_INT(epode_message_fallback(v, EPODE_NS_REPLY, &a, &b), 0);
    CHECK_INT(a, 2);
    CHECK_INT(b, 5);
    epode_message_view_free(v);
}

/* ---- markers and hints --------------------------------------------------------------- */

TEST(markers_built_and_read)
{
    epode_stanza_t *msg;
    CHECK_INT(epode_message_build("chat", "j@e", "hi", NULL, NULL, &msg), 0);
    CHECK_INT(epode_message_add_markable(msg), 0);
    CHECK_INT(epode_message_add_markable(msg), EPODE_EINVAL);
    epode_message_t *v;
    CHECK_INT(epode_message_view_new(NULL, msg, &v), 0);
    CHECK_INT(epode_message_is_markable(v), 1);
    CHECK_INT(epode_message_marker(v, NULL), EPODE_MARKER_NONE);
    epode_message_view_free(v);
    epode_stanza_unref(msg);
    CHECK_INT(epode_message_build_marker("chat", "romeo@e", EPODE_MARKER_DISPLAYED, "the-msg-1",
                                         "t1", &msg), 0);
    CHECK_INT(epode_message_view_new(NULL, msg, &v), 0);
    const char *id = NULL;
    CHECK_INT(epode_message_marker(v, &id), EPODE_MARKER_DISPLAYED);
    CHECK_STR(id, "the-msg-1");
    CHECK_STR(epode_message_thread(v), "t1");
    CHECK(epode_message_body(v, NULL) == NULL);
    epode_message_view_free(v);
    epode_stanza_unref(msg);
    CHECK_STR(epode_marker_name(EPODE_MARKER_ACKNOWLEDGED), "acknowledged");
    CHECK(epode_marker_name(EPODE_MARKER_NONE) == NULL);
    CHECK_INT(epode_message_build_marker("chat", "r@e", EPODE_MARKER_NONE, "x", NULL, &msg),
              EPODE_EINVAL);
    CHECK_INT(epode_message_build_marker("chat", "r@e", EPODE_MARKER_RECEIVED, "", NULL, &msg),
              EPODE_EINVAL);
    /* a marker without an id is none */
    v = view_of("<message from='a@b'><received xmlns='urn:xmpp:chat-markers:0'/></message>");
    CHECK_INT(epode_message_marker(v, &id), EPODE_MARKER_NONE);
    epode_message_view_free(v);
}

TEST(hints_added_once_and_read)
{
    epode_stanza_t *msg;
    CHECK_INT(epode_message_build("chat", "j@e", "hi", NULL, NULL, &msg), 0);
    CHECK_INT(epode_message_add_hints(msg, EPODE_HINT_NO_COPY | EPODE_HINT_NO_STORE), 0);
    CHECK_INT(epode_message_add_hints(msg, EPODE_HINT_NO_COPY | EPODE_HINT_STORE), 0);
    CHECK_INT(epode_message_add_hints(msg, 1u << 9), EPODE_EINVAL);
    int n = 0;
    for (epode_stanza_t *c = epode_stanza_first_child(msg); c; c = epode_stanza_next(c))
        n += strcmp(epode_stanza_get_name(c), "no-copy") == 0;
    CHECK_INT(n, 1);
    epode_message_t *v;
    CHECK_INT(epode_message_view_new(NULL, msg, &v), 0);
    CHECK_INT(epode_message_hints(v), EPODE_HINT_NO_COPY | EPODE_HINT_NO_STORE | EPODE_HINT_STORE);
    epode_message_view_free(v);
    epode_stanza_unref(msg);
}

TEST(ref_id_follows_the_xeps)
{
    epode_message_t *v = view_of("<message from='a@b/c' id='plain' type='chat'>"
                                 "<origin-id xmlns='urn:xmpp:sid:0' id='origin'/></message>");
    CHECK_STR(epode_message_ref_id(v), "origin");
    epode_message_view_free(v);
    v = view_of("<message from='a@b/c' id='plain' type='chat'/>");
    CHECK_STR(epode_message_ref_id(v), "plain");
    epode_message_view_free(v);
    /* groupchat: only a trusted stanza-id, none in a bare view */
    v = view_of("<message from='r@m/n' id='plain' type='groupchat'><stanza-id xmlns='urn:xmpp:sid:0'"
                " by='r@m' id='sid'/></message>");
    CHECK(epode_message_ref_id(v) == NULL);
    epode_message_view_free(v);
}

/* The features arrive through the helper's handlers like any message. */
TEST(features_read_inside_a_message_handler)
{
    scripted s;
    CHECK_INT(scripted_login(&s, "example.com", ME), 0);
    epode_messaging_t *m;
    CHECK_INT(epode_messaging_new(s.conn, &m), 0);
    got g = {0};
    CHECK_INT(epode_messaging_handler_add(m, "chat", keep, &g, NULL), 0);
    scripted_send(&s, "<message from='juliet@example.com/b' type='chat' id='c2'><body>fixed</body>"
                      "<replace xmlns='urn:xmpp:message-correct:0' id='c1'/>"
                      "<markable xmlns='urn:xmpp:chat-markers:0'/></message>");
    CHECK_INT(g.calls, 1);
    epode_message_t *v;
    CHECK_INT(epode_message_view_new(NULL, g.st, &v), 0);
    CHECK_STR(epode_message_replace_id(v), "c1");
    CHECK_INT(epode_message_is_markable(v), 1);
    CHECK_INT(epode_message_same_sender(v, "juliet@example.com/a", NULL, EPODE_SENDER_AUTO), 1);
    epode_message_view_free(v);
    epode_stanza_unref(g.st);
    epode_messaging_free(m);
    scripted_free(&s);
}

TEST(view_new_refuses_what_is_not_a_message)
{
    epode_stanza_t *st;
    CHECK_INT(epode_stanza_from_text(NULL, "<iq type='get' id='x'/>", (size_t)-1, &st, NULL), 0);
    epode_message_t *v = NULL;
    CHECK_INT(epode_message_view_new(NULL, st, &v), EPODE_EINVAL);
    CHECK(v == NULL);
    epode_stanza_unref(st);
    CHECK_INT(epode_stanza_from_text(NULL, "<message xmlns='urn:other'/>", (size_t)-1, &st, NULL), 0);
    CHECK_INT(epode_message_view_new(NULL, st, &v), EPODE_EINVAL);
    epode_stanza_unref(st);
    epode_message_view_free(NULL);
}
