/* tests/unit/test_im_muc.c — the MUC helper (XEP-0045) against a
 * scripted room: joining, occupants, messages, subject, conflicts, room
 * creation, leaving, and stanzas from strangers. */
#include <epode.h>

#include <stdio.h>
#include <string.h>

#include "test.h"
#include "scripted.h"

static const char *const names[] = {"?", "JOINED", "OCC_JOINED", "OCC_CHANGED", "OCC_LEFT",
                                    "MESSAGE", "PRIVATE", "SUBJECT", "ERROR", "LEFT"};

typedef struct rec {
    char log[32][160];
    int n;
    epode_muc_t *muc;
    int leave_on_message;
} rec;

static void on_muc(epode_conn_t *c, const epode_muc_event_t *ev, void *user)
{
    (void)c;
    rec *r = user;
    if (r->n >= 32)
        return;
    char extra[96] = "";
    if (ev->occupant)
        snprintf(extra, sizeof extra, " %s/%s%s%s", ev->occupant->role, ev->occupant->affiliation,
                 ev->occupant->jid ? " " : "", ev->occupant->jid ? ev->occupant->jid : "");
    snprintf(r->log[r->n++], sizeof r->log[0], "%s %s%s%s%s%s%s%s%s%s%s%s", names[ev->type],
             ev->nick ? ev->nick : "-", extra, ev->body ? " body=" : "", ev->body ? ev->body : "",
             ev->subject ? " subject=" : "", ev->subject ? ev->subject : "",
             ev->is_self ? " self" : "", ev->is_history ? " history" : "",
             ev->created ? " created" : "", ev->fatal ? " fatal" : "",
             ev->retrying ? " retrying" : "");
    if (ev->type == EPODE_MUC_ERROR && r->n < 32)
        snprintf(r->log[r->n++], sizeof r->log[0], "  cond=%s",
                 epode_stanza_cond_name(ev->cond) ? epode_stanza_cond_name(ev->cond) : "none");
    if (ev->type == EPODE_MUC_MESSAGE && r->leave_on_message)
        epode_muc_leave(ev->room, NULL);
}

static epode_stanza_t *next_named(scripted *s, const char *name)
{
    epode_stanza_t *st;
    while ((st = scripted_next(s)))
        if (strcmp(epode_stanza_get_name(st), name) == 0)
            return st;
    return NULL;
}

#define ROOM "lounge@conference.example.com"
#define OTHER_PRES \
    "<presence from='" ROOM "/alice'><x xmlns='http://jabber.org/protocol/muc#user'>" \
    "<item affiliation='member' role='participant' jid='alice@example.com/home'/></x></presence>"
#define SELF_PRES \
    "<presence from='" ROOM "/bot'><x xmlns='http://jabber.org/protocol/muc#user'>" \
    "<item affiliation='none' role='participant'/><status code='110'/></x></presence>"

/* Logs in, joins ROOM as bot and plays the room's answer. */
static int joined(scripted *s, rec *r, epode_muc_room_t **room)
{
    memset(r, 0, sizeof *r);
    if (scripted_login(s, "example.com", "anon@example.com/r1") < 0 ||
        epode_muc_new(s->conn, on_muc, r, &r->muc) < 0 ||
        epode_muc_join(r->muc, ROOM, "bot", NULL, 0, -1, room) < 0)
        return -1;
    scripted_pump(s);
    if (!next_named(s, "presence"))
        return -1;
    scripted_send(s, OTHER_PRES);
    scripted_send(s, SELF_PRES);
    return epode_muc_room_is_joined(*room) ? 0 : -1;
}

TEST(muc_join_sends_presence_with_history_and_password)
{
    scripted s;
    CHECK_INT(scripted_login(&s, "example.com", "anon@example.com/r1"), 0);
    rec r = {0};
    epode_muc_t *m;
    epode_muc_room_t *room;
    CHECK_INT(epode_muc_new(s.conn, on_muc, &r, &m), 0);
    CHECK_INT(epode_muc_join(m, "Lounge@Conference.Example.com", "bot", "s3cret", 5, 60, &room), 0);
    CHECK_STR(epode_muc_room_jid(room), ROOM);
    scripted_pump(&s);
    CHECK_STR(scripted_next_text(&s), "<presence to=\"" ROOM "/bot\"><x xmlns=\"http://jabber.org/"
              "protocol/muc\"><password>s3cret</password><history maxstanzas=\"5\" seconds=\"60\"/>"
              "</x></presence>");
    CHECK_INT(epode_muc_join(m, ROOM, "bot2", NULL, -1, -1, NULL), EPODE_ESTATE);
    CHECK_INT(epode_muc_join(m, ROOM "/res", "bot", NULL, -1, -1, NULL), EPODE_EJID);
    CHECK_INT(epode_muc_join(m, "conference.example.com", "bot", NULL, -1, -1, NULL), EPODE_EJID);
    CHECK(epode_muc_find(m, "LOUNGE@conference.example.com") == room);
    CHECK_INT(epode_muc_send(room, "too early"), EPODE_ESTATE);
    epode_muc_free(m);
    scripted_free(&s);
}

TEST(muc_occupants_self_presence_messages_subject)
{
    scripted s;
    rec r;
    epode_muc_room_t *room;
    CHECK_INT(joined(&s, &r, &room), 0);
    CHECK_INT(r.n, 2);
    CHECK_STR(r.log[0], "OCC_JOINED alice participant/member alice@example.com/home");
    CHECK_STR(r.log[1], "JOINED bot participant/none self");
    CHECK_INT(epode_muc_room_occupant_count(room), 2);
    const epode_muc_occupant_t *o = epode_muc_room_occupant(room, "alice");
    CHECK(o != NULL);
    CHECK_STR(o->role, "participant");
    CHECK_STR(o->affiliation, "member");
    CHECK_STR(o->jid, "alice@example.com/home");
    CHECK(epode_muc_room_occupant_at(room, 1)->is_self);
    CHECK(epode_muc_room_occupant_at(room, 2) == NULL);

    scripted_send(&s, "<message type='groupchat' from='" ROOM "/alice'><body>old</body>"
                      "<delay xmlns='urn:xmpp:delay' stamp='2020-01-01T00:00:00Z'/></message>");
    scripted_send(&s, "<message type='groupchat' from='" ROOM "/alice'><subject>Tea</subject></message>");
    scripted_send(&s, "<message type='groupchat' from='" ROOM "/alice'><body>hi all</body></message>");
    scripted_send(&s, "<message type='groupchat' from='" ROOM "/bot'><body>mine</body></message>");
    scripted_send(&s, "<message type='chat' from='" ROOM "/alice'><body>psst</body>"
                      "<x xmlns='http://jabber.org/protocol/muc#user'/></message>");
    /* a role change, then alice leaves */
    scripted_send(&s, "<presence from='" ROOM "/alice'><show>away</show><x xmlns='http://jabber.org/"
                      "protocol/muc#user'><item affiliation='member' role='moderator'/></x></presence>");
    scripted_send(&s, "<presence type='unavailable' from='" ROOM "/alice'><x xmlns='http://jabber.org/"
                      "protocol/muc#user'><item affiliation='member' role='none'/></x></presence>");
    CHECK_INT(r.n, 9);
    CHECK_STR(r.log[2], "MESSAGE alice body=old history");
    CHECK_STR(r.log[3], "SUBJECT alice subject=Tea");
    CHECK_STR(epode_muc_room_subject(room), "Tea");
    CHECK_STR(r.log[4], "MESSAGE alice body=hi all");
    CHECK_STR(r.log[5], "MESSAGE bot body=mine self");
    CHECK_STR(r.log[6], "PRIVATE alice body=psst");
    CHECK_STR(r.log[7], "OCC_CHANGED alice moderator/member");
    CHECK_STR(r.log[8], "OCC_LEFT alice none/member");
    CHECK_INT(epode_muc_room_occupant_count(room), 1);
    epode_muc_free(r.muc);
    scripted_free(&s);
}

TEST(muc_send_private_subject_and_leave)
{
    scripted s;
    rec r;
    epode_muc_room_t *room;
    CHECK_INT(joined(&s, &r, &room), 0);
    CHECK_INT(epode_muc_send(room, "hello <room>"), 0);
    CHECK_INT(epode_muc_send_private(room, "alice", "just you"), 0);
    CHECK_INT(epode_muc_set_subject(room, "New topic"), 0);
    scripted_pump(&s);
    CHECK_STR(scripted_next_text(&s), "<message type=\"groupchat\" to=\"" ROOM "\"><body>hello "
              "&lt;room&gt;</body></message>");
    CHECK_STR(scripted_next_text(&s), "<message type=\"chat\" to=\"" ROOM "/alice\"><body>just you"
              "</body><x xmlns=\"http://jabber.org/protocol/muc#user\"/></message>");
    CHECK_STR(scripted_next_text(&s), "<message type=\"groupchat\" to=\"" ROOM "\"><subject>New topic"
              "</subject></message>");
    CHECK_INT(epode_muc_leave(room, "bye"), 0);
    CHECK_INT(epode_muc_leave(room, "bye"), EPODE_ESTATE);
    scripted_pump(&s);
    CHECK_STR(scripted_next_text(&s), "<presence type=\"unavailable\" to=\"" ROOM "/bot\">"
              "<status>bye</status></presence>");
    scripted_send(&s, "<presence type='unavailable' from='" ROOM "/bot'><x xmlns='http://jabber.org/"
                      "protocol/muc#user'><item affiliation='none' role='none'/><status code='110'/>"
                      "</x></presence>");
    CHECK_STR(r.log[r.n - 1], "LEFT bot none/none self");
    CHECK(epode_muc_find(r.muc, ROOM) == NULL);
    /* the room is gone: its stanzas are no longer ours */
    int before = r.n;
    scripted_send(&s, "<message type='groupchat' from='" ROOM "/alice'><body>late</body></message>");
    CHECK_INT(r.n, before);
    epode_muc_free(r.muc);
    scripted_free(&s);
}

TEST(muc_leave_from_inside_an_event)
{
    scripted s;
    rec r;
    epode_muc_room_t *room;
    CHECK_INT(joined(&s, &r, &room), 0);
    r.leave_on_message = 1;
    scripted_send(&s, "<message type='groupchat' from='" ROOM "/alice'><body>go</body></message>");
    scripted_pump(&s);
    CHECK(strstr(scripted_next_text(&s), "type=\"unavailable\"") != NULL);
    scripted_send(&s, "<presence type='unavailable' from='" ROOM "/bot'><x xmlns='http://jabber.org/"
                      "protocol/muc#user'><status code='110'/></x></presence>");
    CHECK_STR(r.log[r.n - 1], "LEFT bot participant/none self"); /* no item: last known */
    CHECK(epode_muc_find(r.muc, ROOM) == NULL);
    epode_muc_free(r.muc);
    scripted_free(&s);
}

#define CONFLICT_ERR(nick) \
    "<presence type='error' from='" ROOM "/" nick "'><x xmlns='http://jabber.org/protocol/muc'/>" \
    "<error type='cancel' by='" ROOM "'><conflict xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>" \
    "</error></presence>"

TEST(muc_nick_conflict_is_reported)
{
    scripted s;
    CHECK_INT(scripted_login(&s, "example.com", "anon@example.com/r1"), 0);
    rec r = {0};
    epode_muc_t *m;
    CHECK_INT(epode_muc_new(s.conn, on_muc, &r, &m), 0);
    CHECK_INT(epode_muc_join(m, ROOM, "bot", NULL, -1, -1, NULL), 0);
    scripted_pump(&s);
    scripted_send(&s, CONFLICT_ERR("bot"));
    CHECK_INT(r.n, 2);
    CHECK_STR(r.log[0], "ERROR bot fatal");
    CHECK_STR(r.log[1], "  cond=conflict");
    CHECK(epode_muc_find(m, ROOM) == NULL);
    epode_muc_free(m);
    scripted_free(&s);
}

TEST(muc_nick_conflict_retried_with_a_suffix)
{
    scripted s;
    CHECK_INT(scripted_login(&s, "example.com", "anon@example.com/r1"), 0);
    rec r = {0};
    epode_muc_t *m;
    epode_muc_room_t *room;
    CHECK_INT(epode_muc_new(s.conn, on_muc, &r, &m), 0);
    CHECK_INT(epode_muc_set_nick_retry(m, "_", 2), 0);
    CHECK_INT(epode_muc_join(m, ROOM, "bot", NULL, -1, -1, &room), 0);
    scripted_pump(&s);
    CHECK(next_named(&s, "presence") != NULL);
    scripted_send(&s, CONFLICT_ERR("bot"));
    CHECK_STR(r.log[0], "ERROR bot_ retrying");
    CHECK_STR(epode_stanza_get_to(next_named(&s, "presence")), ROOM "/bot_");
    scripted_send(&s, CONFLICT_ERR("bot_"));
    CHECK_STR(r.log[2], "ERROR bot__ retrying");
    CHECK_STR(epode_stanza_get_to(next_named(&s, "presence")), ROOM "/bot__");
    scripted_send(&s, "<presence from='" ROOM "/bot__'><x xmlns='http://jabber.org/protocol/muc#user'>"
                      "<item affiliation='none' role='participant'/><status code='110'/></x></presence>");
    CHECK_STR(r.log[4], "JOINED bot__ participant/none self");
    CHECK_STR(epode_muc_room_nick(room), "bot__");
    epode_muc_free(m);
    /* out of tries: fatal */
    r.n = 0;
    CHECK_INT(epode_muc_new(s.conn, on_muc, &r, &m), 0);
    CHECK_INT(epode_muc_set_nick_retry(m, "-x", 1), 0);
    CHECK_INT(epode_muc_join(m, ROOM, "bot", NULL, -1, -1, &room), 0);
    scripted_send(&s, CONFLICT_ERR("bot"));
    scripted_send(&s, CONFLICT_ERR("bot-x"));
    CHECK_STR(r.log[0], "ERROR bot-x retrying");
    CHECK_STR(r.log[2], "ERROR bot-x fatal");
    CHECK(epode_muc_find(m, ROOM) == NULL);
    epode_muc_free(m);
    scripted_free(&s);
}

TEST(muc_new_room_is_unlocked_as_an_instant_room)
{
    scripted s;
    CHECK_INT(scripted_login(&s, "example.com", "anon@example.com/r1"), 0);
    rec r = {0};
    epode_muc_t *m;
    epode_muc_room_t *room;
    CHECK_INT(epode_muc_new(s.conn, on_muc, &r, &m), 0);
    CHECK_INT(epode_muc_join(m, ROOM, "bot", NULL, -1, -1, &room), 0);
    scripted_pump(&s);
    CHECK(next_named(&s, "presence") != NULL);
    scripted_send(&s, "<presence from='" ROOM "/bot'><x xmlns='http://jabber.org/protocol/muc#user'>"
                      "<item affiliation='owner' role='moderator'/><status code='110'/>"
                      "<status code='201'/></x></presence>");
    CHECK_INT(r.n, 0); /* not usable until unlocked */
    CHECK(!epode_muc_room_is_joined(room));
    epode_stanza_t *iq = next_named(&s, "iq");
    CHECK(iq != NULL);
    CHECK_STR(epode_stanza_get_type(iq), "set");
    CHECK_STR(epode_stanza_get_to(iq), ROOM);
    epode_stanza_t *q = epode_stanza_find_child(iq, "query", "http://jabber.org/protocol/muc#owner");
    CHECK(q != NULL);
    epode_stanza_t *x = epode_stanza_find_child(q, "x", "jabber:x:data");
    CHECK(x != NULL);
    CHECK_STR(epode_stanza_get_attr(x, "type"), "submit");
    CHECK(epode_stanza_first_child(x) == NULL);
    char xml[256];
    /* a result from anyone but the room does not count */
    snprintf(xml, sizeof xml, "<iq type='result' id='%s' from='mallory@evil.example'/>",
             epode_stanza_get_id(iq));
    scripted_send(&s, xml);
    CHECK_INT(r.n, 0);
    snprintf(xml, sizeof xml, "<iq type='result' id='%s' from='" ROOM "'/>", epode_stanza_get_id(iq));
    scripted_send(&s, xml);
    CHECK_INT(r.n, 1);
    CHECK_STR(r.log[0], "JOINED bot moderator/owner self created");
    CHECK(epode_muc_room_is_joined(room));
    epode_muc_free(m);
    scripted_free(&s);
}

TEST(muc_ignores_strangers_and_reports_room_errors)
{
    scripted s;
    rec r;
    epode_muc_room_t *room;
    CHECK_INT(joined(&s, &r, &room), 0);
    int before = r.n;
    /* another room we are not in, a plain contact, a server */
    scripted_send(&s, "<message type='groupchat' from='other@conference.example.com/alice'>"
                      "<body>x</body></message>");
    scripted_send(&s, "<presence from='mallory@evil.example/r'><x xmlns='http://jabber.org/"
                      "protocol/muc#user'><status code='110'/></x></presence>");
    scripted_send(&s, "<message type='groupchat' from='conference.example.com'><body>x</body></message>");
    scripted_send(&s, "<message type='groupchat'><body>no from</body></message>");
    CHECK_INT(r.n, before);
    CHECK_INT(epode_muc_room_occupant_count(room), 2);
    /* a message the room refused */
    scripted_send(&s, "<message type='error' from='" ROOM "'><body>x</body><error type='auth'>"
                      "<forbidden xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>");
    CHECK_STR(r.log[r.n - 2], "ERROR -");
    CHECK_STR(r.log[r.n - 1], "  cond=forbidden");
    CHECK(epode_muc_room_is_joined(room));
    /* kicked: LEFT with the room's word */
    scripted_send(&s, "<presence type='unavailable' from='" ROOM "/bot'><x xmlns='http://jabber.org/"
                      "protocol/muc#user'><item role='none'/><status code='307'/><status code='110'/>"
                      "</x></presence>");
    CHECK_STR(r.log[r.n - 1], "LEFT bot none/none self");
    CHECK(epode_muc_find(r.muc, ROOM) == NULL);
    epode_muc_free(r.muc);
    scripted_free(&s);
}

TEST(muc_disconnect_then_free_is_clean)
{
    scripted s;
    rec r;
    epode_muc_room_t *room;
    CHECK_INT(joined(&s, &r, &room), 0);
    scripted_send(&s, "<stream:error><system-shutdown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"
                      "</stream:error>");
    CHECK(!epode_muc_room_is_joined(room));
    CHECK_INT(epode_muc_room_occupant_count(room), 0);
    CHECK(epode_muc_find(r.muc, ROOM) == room); /* kept, to be rejoined */
    CHECK_INT(epode_muc_leave(room, NULL), 0);  /* not connected: dropped at once */
    CHECK(epode_muc_find(r.muc, ROOM) == NULL);
    epode_muc_free(r.muc);
    scripted_free(&s);
}

/* ---- allocation: through the context's allocator, every failure clean ------------------- */

/* What a workload's calls returned: in a sweep only 0 and EPODE_ENOMEM are clean. */
typedef struct sweep {
    int bad, nomem;
} sweep;

static int swept(sweep *w, int rc, const char *what, int line)
{
    if (rc == EPODE_ENOMEM)
        w->nomem = 1;
    else if (rc != 0) {
        printf("# %s:%d: %s == %s\n", __FILE__, line, what, epode_err_name(rc));
        w->bad = 1;
    }
    return rc;
}
#define SWEPT(w, expr) swept((w), (expr), #expr, __LINE__)

typedef struct muc_work {
    sweep w;
    rec r;
    long helper_blocks;   /* live blocks the helper's creation added */
    int join_sent, leave_sent, joined;
    size_t occupants;
    char subject[64];
} muc_work;

/* The helper; a join played by the room (another occupant, our
 * self-presence with 110, the subject, a groupchat message); leaving. */
static void muc_workload(scripted *s, scripted_mem *m, muc_work *mw)
{
    long before = m->live;
    if (SWEPT(&mw->w, epode_muc_new(s->conn, on_muc, &mw->r, &mw->r.muc)) < 0) {
        mw->r.muc = NULL;
        return;
    }
    mw->helper_blocks = m->live - before;
    epode_muc_room_t *room = NULL;
    if (SWEPT(&mw->w, epode_muc_join(mw->r.muc, ROOM, "bot", NULL, 0, -1, &room)) < 0) {
        /* nothing half-made: no room to find (looked up with the
         * allocator working, so that a NULL means there is none) */
        long fail_at = m->fail_at;
        m->fail_at = -1;
        if (epode_muc_find(mw->r.muc, ROOM)) {
            printf("# a failed join left a room\n");
            mw->w.bad = 1;
        }
        m->fail_at = fail_at;
        return;
    }
    scripted_pump(s);
    if (next_named(s, "presence"))
        mw->join_sent = 1;
    scripted_send(s, OTHER_PRES);
    scripted_send(s, SELF_PRES);
    scripted_send(s, "<message type='groupchat' from='" ROOM "'><subject>Tea</subject></message>");
    scripted_send(s, "<message type='groupchat' from='" ROOM "/alice'><body>hi</body></message>");
    mw->joined = epode_muc_room_is_joined(room);
    mw->occupants = epode_muc_room_occupant_count(room);
    const char *subject = epode_muc_room_subject(room);
    snprintf(mw->subject, sizeof mw->subject, "%s", subject ? subject : "");
    if (SWEPT(&mw->w, epode_muc_leave(room, "bye")) < 0)
        return;
    scripted_pump(s); /* the room may be gone from here on */
    if (next_named(s, "presence"))
        mw->leave_sent = 1;
    scripted_send(s, "<presence type='unavailable' from='" ROOM "/bot'><x xmlns='http://jabber.org"
                     "/protocol/muc#user'><item affiliation='none' role='none'/>"
                     "<status code='110'/></x></presence>");
}

TEST(muc_allocates_through_the_context_allocator)
{
    scripted_mem m;
    scripted_mem_init(&m);
    scripted s;
    CHECK_INT(scripted_login_mem(&s, &m.mem, "example.com", "anon@example.com/r1"), 0);
    muc_work mw = {0};
    muc_workload(&s, &m, &mw);
    CHECK(!mw.w.bad && !mw.w.nomem);
    CHECK(mw.r.muc != NULL);
    CHECK(mw.helper_blocks >= 2); /* the helper and its nick suffix */
    CHECK(mw.join_sent && mw.joined && mw.leave_sent);
    CHECK_INT(mw.occupants, 2);
    CHECK_STR(mw.subject, "Tea");
    CHECK_INT(mw.r.n, 5);
    CHECK_STR(mw.r.log[0], "OCC_JOINED alice participant/member alice@example.com/home");
    CHECK_STR(mw.r.log[1], "JOINED bot participant/none self");
    CHECK_STR(mw.r.log[2], "SUBJECT - subject=Tea");
    CHECK_STR(mw.r.log[3], "MESSAGE alice body=hi");
    CHECK_STR(mw.r.log[4], "LEFT bot none/none self");
    CHECK(epode_muc_find(mw.r.muc, ROOM) == NULL);
    long live = m.live;
    epode_muc_free(mw.r.muc);
    /* what the creation made, and the room list; the room and its
     * occupants went at LEFT */
    CHECK_INT(live - m.live, mw.helper_blocks + 1);
    scripted_free(&s);
    CHECK_INT(m.live, 0);
}

TEST(muc_every_failed_allocation_is_clean)
{
    int clean = 0;
    long n;
    for (n = 0; n < 10000 && !clean; n++) {
        scripted_mem m;
        scripted_mem_init(&m);
        scripted s;
        CHECK_INT(scripted_login_mem(&s, &m.mem, "example.com", "anon@example.com/r1"), 0);
        m.fail_at = m.calls + n;
        muc_work mw = {0};
        muc_workload(&s, &m, &mw);
        clean = m.calls <= m.fail_at; /* nothing failed this time */
        epode_muc_free(mw.r.muc);
        scripted_free(&s);
        if (mw.w.bad)
            printf("# with allocation %ld failing\n", n);
        CHECK(!mw.w.bad);
        CHECK_INT(m.live, 0);
        if (clean) {
            CHECK(!mw.w.nomem);
            CHECK(mw.joined && mw.leave_sent);
            CHECK_INT(mw.r.n, 5);
        }
    }
    CHECK(clean);
    printf("# muc: %ld allocation points swept\n", n - 1);
}

TEST_MAIN
