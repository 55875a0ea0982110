/* tests/unit/test_im_free_order.c — every IM helper outlives its
 * connection safely (issue 11): the connection is freed first, on a
 * logged-in scripted connection with requests still pending or on one
 * that never connected; the helper then refuses what needs the
 * connection with EPODE_ESTATE and is freed without touching it. Run
 * under ASan these are use-after-free checks; the counting allocator
 * checks that nothing is left behind. */
#include <epode.h>

#include <stdio.h>
#include <string.h>

#include "test.h"
#include "scripted.h"

#define ME "anon@example.com/r1"

/* A logged-in connection whose context counts its live blocks. */
typedef struct fixture {
    scripted_mem mm;
    scripted s;
} fixture;

static int setup(fixture *f)
{
    scripted_mem_init(&f->mm);
    return scripted_login_mem(&f->s, &f->mm.mem, "example.com", ME);
}

/* The connection goes first; the helpers are freed after this. */
static void free_conn(fixture *f)
{
    epode_conn_free(f->s.conn);
    f->s.conn = NULL;
}

/* Everything else; 1 if no block of the context's allocator is left. */
static int teardown(fixture *f)
{
    scripted_free(&f->s);
    return f->mm.live == 0;
}

/* The next IQ the client sent (borrowed), NULL if none. */
static epode_stanza_t *next_iq(scripted *s)
{
    epode_stanza_t *st;
    while ((st = scripted_next(s)))
        if (strcmp(epode_stanza_get_name(st), "iq") == 0)
            return st;
    return NULL;
}

static int calls;

static void on_pong(epode_conn_t *c, const char *jid, int status, epode_stanza_cond_t cond,
                    unsigned rtt, void *user)
{
    (void)c, (void)jid, (void)status, (void)cond, (void)rtt, (void)user;
    calls++;
}

TEST(ping_outlives_its_connection)
{
    fixture f;
    CHECK_INT(setup(&f), 0);
    epode_ping_t *p;
    CHECK_INT(epode_ping_new(f.s.conn, &p), 0);
    calls = 0;
    CHECK_INT(epode_ping_send(p, "peer@example.net/x", 5000, on_pong, NULL), 0);
    CHECK_INT(epode_ping_set_keepalive(p, 60000, 0, NULL, NULL), 0);
    scripted_pump(&f.s);
    free_conn(&f);
    CHECK_INT(epode_ping_send(p, NULL, 0, on_pong, NULL), EPODE_ESTATE);
    CHECK_INT(epode_ping_set_keepalive(p, 0, 0, NULL, NULL), EPODE_ESTATE);
    epode_ping_free(p);
    CHECK_INT(calls, 0); /* the pending ping is forgotten, untold */
    CHECK(teardown(&f));
}

static void on_version(epode_conn_t *c, const char *jid, int status, epode_stanza_cond_t cond,
                       const char *name, const char *version, const char *os, void *user)
{
    (void)c, (void)jid, (void)status, (void)cond, (void)name, (void)version, (void)os;
    (void)user;
    calls++;
}

TEST(version_outlives_its_connection)
{
    fixture f;
    CHECK_INT(setup(&f), 0);
    epode_software_version_t *v;
    CHECK_INT(epode_software_version_new(f.s.conn, "epode", "1.0", NULL, &v), 0);
    calls = 0;
    CHECK_INT(epode_software_version_query(v, "peer@example.net/x", 0, on_version, NULL), 0);
    free_conn(&f);
    CHECK_INT(epode_software_version_query(v, NULL, 0, on_version, NULL), EPODE_ESTATE);
    CHECK_INT(epode_software_version_set(v, "epode", "1.1", "Linux"), 0); /* no connection needed */
    epode_software_version_free(v);
    CHECK_INT(calls, 0);
    CHECK(teardown(&f));
}

TEST(carbons_outlive_their_connection)
{
    fixture f;
    CHECK_INT(setup(&f), 0);
    epode_carbons_t *c;
    CHECK_INT(epode_carbons_new(f.s.conn, NULL, NULL, &c), 0);
    CHECK_INT(epode_carbons_enable(c, 1, NULL, NULL), 0); /* the request is pending */
    free_conn(&f);
    CHECK_INT(epode_carbons_enable(c, 0, NULL, NULL), EPODE_ESTATE);
    CHECK_INT(epode_carbons_is_enabled(c), 0);
    epode_carbons_free(c);
    CHECK(teardown(&f));
}

static void on_info(epode_disco_t *d, const char *jid, const char *node,
                    const epode_disco_info_t *info, int status, epode_stanza_cond_t cond,
                    void *user)
{
    (void)d, (void)jid, (void)node, (void)info, (void)status, (void)cond, (void)user;
    calls++;
}

TEST(disco_and_caps_outlive_their_connection)
{
    fixture f;
    CHECK_INT(setup(&f), 0);
    epode_disco_t *d;
    epode_caps_t *caps, *again = NULL;
    CHECK_INT(epode_disco_new(f.s.conn, &d), 0);
    CHECK_INT(epode_caps_new(d, "https://epode.example/test", &caps), 0);
    calls = 0;
    unsigned id;
    CHECK_INT(epode_disco_get_info(d, "peer@example.net/x", NULL, 0, on_info, NULL, &id), 0);
    /* a peer announces caps: the caps helper asks for them (a query of
     * its own through the disco helper) */
    scripted_send(&f.s, "<presence from='peer@example.net/y'><c xmlns='http://jabber.org/"
                        "protocol/caps' hash='sha-1' node='https://peer.example' "
                        "ver='QgayPKawpkPSDYmwT/WM94uAlu0='/></presence>");
    CHECK(next_iq(&f.s) != NULL);
    CHECK(next_iq(&f.s) != NULL);
    CHECK(epode_disco_conn(d) == f.s.conn);
    free_conn(&f);
    CHECK(epode_disco_conn(d) == NULL);
    CHECK_INT(epode_disco_get_info(d, NULL, NULL, 0, on_info, NULL, NULL), EPODE_ESTATE);
    CHECK_INT(epode_caps_new(d, "https://epode.example/other", &again), EPODE_ESTATE);
    CHECK(again == NULL);
    /* the registry still works, and the caps helper still follows it */
    const char *ver = epode_caps_get_ver(caps);
    char before[EPODE_CAPS_VER_MAX];
    snprintf(before, sizeof before, "%s", ver ? ver : "");
    CHECK_INT(epode_disco_add_feature(d, NULL, "urn:example:feature"), 0);
    CHECK(epode_caps_get_ver(caps) != NULL);
    CHECK(strcmp(epode_caps_get_ver(caps), before) != 0);
    CHECK(epode_caps_get_info(caps, "peer@example.net/y") == NULL);
    epode_caps_free(caps);
    CHECK_INT(epode_disco_cancel(d, id), 0); /* still listed, forgotten without its callback */
    epode_disco_free(d);
    CHECK_INT(calls, 0);
    CHECK(teardown(&f));
}

TEST(messaging_outlives_its_connection)
{
    fixture f;
    CHECK_INT(setup(&f), 0);
    epode_messaging_t *m;
    CHECK_INT(epode_messaging_new(f.s.conn, &m), 0); /* asks our account's disco#info */
    free_conn(&f);
    epode_stanza_t *msg;
    CHECK_INT(epode_message_build("chat", "juliet@example.com", "hi", NULL, NULL, &msg), 0);
    CHECK_INT(epode_messaging_send(m, msg), EPODE_ESTATE);
    epode_stanza_unref(msg);
    CHECK_INT(epode_messaging_send_chatstate(m, "juliet@example.com", EPODE_CHATSTATE_ACTIVE),
              EPODE_ESTATE);
    CHECK_INT(epode_messaging_set_receipts(m, EPODE_RECEIPTS_ANSWER), 0);
    epode_messaging_free(m);
    CHECK(teardown(&f));
}

TEST(presence_tracker_outlives_its_connection)
{
    fixture f;
    CHECK_INT(setup(&f), 0);
    epode_presence_tracker_t *t;
    CHECK_INT(epode_presence_tracker_new(f.s.conn, &t), 0);
    scripted_send(&f.s, "<presence from='juliet@example.com/balcony'/>");
    CHECK_INT(epode_presence_tracker_contact_count(t), 1);
    free_conn(&f);
    CHECK_INT(epode_presence_tracker_contact_count(t), 0); /* ended with the connection */
    CHECK(epode_presence_tracker_get(t, "juliet@example.com") == NULL);
    CHECK_INT(epode_presence_tracker_set_auto_accept(t, EPODE_AUTO_ACCEPT_OFF), 0);
    epode_presence_tracker_free(t);
    CHECK(teardown(&f));
}

static int canceled;

static void on_result(epode_roster_t *r, int status, epode_stanza_cond_t cond, const char *text,
                      void *user)
{
    (void)r, (void)cond, (void)text, (void)user;
    calls++;
    if (status == EPODE_ECANCELED)
        canceled++;
}

TEST(roster_outlives_its_connection)
{
    fixture f;
    CHECK_INT(setup(&f), 0);
    epode_roster_t *r;
    CHECK_INT(epode_roster_new(f.s.conn, &r), 0); /* READY: a fetch timer is set */
    CHECK_INT(epode_roster_fetch(r), 0);
    CHECK_INT(epode_roster_load_item(r, "romeo@example.net", "Romeo", EPODE_ROSTER_SUB_BOTH, 0,
                                     NULL, 0), 0);
    calls = canceled = 0;
    CHECK_INT(epode_roster_add(r, "nurse@example.com", NULL, NULL, 0, on_result, NULL), 0);
    free_conn(&f);
    CHECK_INT(epode_roster_fetch(r), EPODE_ESTATE);
    CHECK_INT(epode_roster_add(r, "tybalt@example.com", NULL, NULL, 0, on_result, NULL),
              EPODE_ESTATE);
    CHECK_INT(epode_roster_remove(r, "romeo@example.net", on_result, NULL), EPODE_ESTATE);
    CHECK_INT(epode_roster_is_received(r), 0);
    CHECK(epode_roster_find(r, "romeo@example.net") != NULL); /* the items stay */
    CHECK_INT(calls, 0);
    epode_roster_free(r);
    CHECK_INT(calls, 1); /* the pending add hears EPODE_ECANCELED at free, as always */
    CHECK_INT(canceled, 1);
    CHECK(teardown(&f));
}

#define ROOM "lounge@conference.example.com"
#define SELF_PRES \
    "<presence from='" ROOM "/bot'><x xmlns='http://jabber.org/protocol/muc#user'>" \
    "<item affiliation='none' role='participant'/><status code='110'/></x></presence>"

static int muc_events;

static void on_muc(epode_conn_t *c, const epode_muc_event_t *ev, void *user)
{
    (void)c, (void)ev, (void)user;
    muc_events++;
}

TEST(muc_outlives_its_connection)
{
    fixture f;
    CHECK_INT(setup(&f), 0);
    epode_muc_t *m;
    epode_muc_room_t *room, *other, *pending;
    muc_events = 0;
    CHECK_INT(epode_muc_new(f.s.conn, on_muc, NULL, &m), 0);
    CHECK_INT(epode_muc_join(m, ROOM, "bot", NULL, 0, -1, &room), 0);
    scripted_send(&f.s, SELF_PRES);
    CHECK(epode_muc_room_is_joined(room));
    CHECK_INT(epode_muc_join(m, "den@conference.example.com", "bot", NULL, 0, -1, &other), 0);
    CHECK_INT(epode_muc_join(m, "attic@conference.example.com", "bot", NULL, 0, -1, &pending),
              0);
    int events = muc_events;
    free_conn(&f);
    CHECK_INT(muc_events, events); /* nobody is told */
    CHECK(!epode_muc_room_is_joined(room));
    CHECK_STR(epode_muc_room_jid(room), ROOM);
    CHECK_INT(epode_muc_send(room, "hello?"), EPODE_ESTATE);
    CHECK_INT(epode_muc_send_private(room, "alice", "hello?"), EPODE_ESTATE);
    CHECK_INT(epode_muc_set_subject(room, "tea"), EPODE_ESTATE);
    CHECK_INT(epode_muc_join(m, "cellar@conference.example.com", "bot", NULL, 0, -1, NULL),
              EPODE_ESTATE);
    CHECK_INT(epode_muc_leave(other, NULL), 0); /* dropped at once, as when not READY */
    CHECK(epode_muc_find(m, "den@conference.example.com") == NULL);
    CHECK(epode_muc_find(m, ROOM) == room);
    epode_muc_free(m);
    CHECK(teardown(&f));
}

TEST(helpers_outlive_a_connection_that_never_connected)
{
    scripted_mem mm;
    scripted_mem_init(&mm);
    epode_ctx_t *ctx;
    epode_conn_t *conn;
    CHECK_INT(epode_ctx_new(&mm.mem, &ctx), 0);
    CHECK_INT(epode_conn_new(ctx, &conn), 0);
    epode_ping_t *p;
    epode_software_version_t *v;
    epode_carbons_t *c;
    epode_disco_t *d;
    epode_caps_t *caps;
    epode_messaging_t *m;
    epode_presence_tracker_t *t;
    epode_roster_t *r;
    epode_muc_t *muc;
    CHECK_INT(epode_ping_new(conn, &p), 0);
    CHECK_INT(epode_ping_set_keepalive(p, 1000, 0, NULL, NULL), 0);
    CHECK_INT(epode_software_version_new(conn, "epode", "1.0", NULL, &v), 0);
    CHECK_INT(epode_carbons_new(conn, NULL, NULL, &c), 0);
    CHECK_INT(epode_carbons_enable(c, 1, NULL, NULL), 0); /* wished for, sent at READY */
    CHECK_INT(epode_disco_new(conn, &d), 0);
    CHECK_INT(epode_caps_new(d, "https://epode.example/test", &caps), 0);
    CHECK_INT(epode_messaging_new(conn, &m), 0);
    CHECK_INT(epode_presence_tracker_new(conn, &t), 0);
    CHECK_INT(epode_roster_new(conn, &r), 0);
    CHECK_INT(epode_muc_new(conn, NULL, NULL, &muc), 0);
    CHECK_INT(epode_muc_join(muc, ROOM, "bot", NULL, 0, -1, NULL), 0); /* waits for READY */
    epode_conn_free(conn);
    CHECK_INT(epode_ping_send(p, NULL, 0, on_pong, NULL), EPODE_ESTATE);
    CHECK_INT(epode_software_version_query(v, NULL, 0, on_version, NULL), EPODE_ESTATE);
    CHECK_INT(epode_carbons_enable(c, 1, NULL, NULL), EPODE_ESTATE);
    CHECK_INT(epode_disco_get_info(d, NULL, NULL, 0, on_info, NULL, NULL), EPODE_ESTATE);
    CHECK_INT(epode_roster_fetch(r), EPODE_ESTATE);
    CHECK_INT(epode_muc_join(muc, "den@conference.example.com", "bot", NULL, 0, -1, NULL),
              EPODE_ESTATE);
    epode_muc_free(muc);
    epode_roster_free(r);
    epode_presence_tracker_free(t);
    epode_messaging_free(m);
    epode_caps_free(caps);
    epode_disco_free(d);
    epode_carbons_free(c);
    epode_software_version_free(v);
    epode_ping_free(p);
    epode_ctx_free(ctx);
    CHECK_INT(mm.live, 0);
}

/* ---- freed from inside a helper's own callback ------------------------------ */

static scripted *freeing;

static void on_pong_free_conn(epode_conn_t *c, const char *jid, int status,
                              epode_stanza_cond_t cond, unsigned rtt, void *user)
{
    (void)jid, (void)status, (void)cond, (void)rtt, (void)user;
    calls++;
    epode_conn_free(c); /* deferred until the connection's code returns */
    freeing->conn = NULL;
}

TEST(ping_outlives_a_connection_freed_from_its_callback)
{
    fixture f;
    CHECK_INT(setup(&f), 0);
    epode_ping_t *p;
    CHECK_INT(epode_ping_new(f.s.conn, &p), 0);
    CHECK_INT(epode_ping_set_keepalive(p, 60000, 0, NULL, NULL), 0);
    calls = 0;
    freeing = &f.s;
    CHECK_INT(epode_ping_send(p, "peer@example.net/x", 5000, on_pong_free_conn, NULL), 0);
    CHECK_INT(epode_ping_send(p, "peer@example.net/y", 5000, on_pong, NULL), 0);
    scripted_pump(&f.s);
    epode_stanza_t *iq = next_iq(&f.s);
    CHECK(iq != NULL);
    char xml[256];
    snprintf(xml, sizeof xml, "<iq type='result' id='%s' from='peer@example.net/x'/>",
             epode_stanza_get_id(iq));
    scripted_send(&f.s, xml);
    CHECK(f.s.conn == NULL);
    CHECK_INT(calls, 1);
    CHECK_INT(epode_ping_send(p, NULL, 0, on_pong, NULL), EPODE_ESTATE);
    epode_ping_free(p);
    CHECK_INT(calls, 1); /* the other pending ping is forgotten, untold */
    CHECK(teardown(&f));
}

static const epode_muc_occupant_t *kept;
static char kept_nick[64];

static void on_muc_free_conn(epode_conn_t *c, const epode_muc_event_t *ev, void *user)
{
    (void)user;
    if (ev->type != EPODE_MUC_JOINED)
        return;
    epode_conn_free(c);
    freeing->conn = NULL;
    kept = ev->occupant; /* still borrowed until we return */
    snprintf(kept_nick, sizeof kept_nick, "%s", kept ? kept->nick : "");
}

TEST(muc_outlives_a_connection_freed_from_its_event)
{
    fixture f;
    CHECK_INT(setup(&f), 0);
    epode_muc_t *m;
    epode_muc_room_t *room;
    CHECK_INT(epode_muc_new(f.s.conn, on_muc_free_conn, NULL, &m), 0);
    CHECK_INT(epode_muc_join(m, ROOM, "bot", NULL, 0, -1, &room), 0);
    freeing = &f.s;
    kept = NULL;
    scripted_send(&f.s, SELF_PRES);
    CHECK(f.s.conn == NULL);
    CHECK(kept != NULL);
    CHECK_STR(kept_nick, "bot");
    CHECK(!epode_muc_room_is_joined(room));
    CHECK_INT(epode_muc_send(room, "anyone?"), EPODE_ESTATE);
    epode_muc_free(m);
    CHECK(teardown(&f));
}

static void on_registered(epode_register_t *reg, int status, epode_stanza_cond_t cond,
                          const char *text, void *user)
{
    (void)reg, (void)status, (void)cond, (void)text, (void)user;
    calls++;
}

TEST(register_outlives_its_connection)
{
    fixture f;
    CHECK_INT(setup(&f), 0);
    epode_register_t *reg;
    CHECK_INT(epode_register_new(f.s.conn, &reg), 0);
    calls = 0;
    CHECK_INT(epode_register_change_password(reg, "old", "new", on_registered, NULL), 0);
    scripted_pump(&f.s);
    CHECK(next_iq(&f.s) != NULL);
    free_conn(&f);
    CHECK_INT(epode_register_remove(reg, on_registered, NULL), EPODE_ESTATE);
    CHECK_INT(epode_register_fetch(reg, 0, on_registered, NULL), EPODE_ESTATE);
    epode_register_free(reg);
    CHECK_INT(calls, 0); /* the pending request is forgotten, untold */
    CHECK(teardown(&f));
}

TEST_MAIN
