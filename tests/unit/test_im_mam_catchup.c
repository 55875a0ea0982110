/* tests/unit/test_im_mam_catchup.c — the archive helper's automatic
 * catch-up (epode_mam_set_auto_catch_up) against a scripted server: the
 * last id taken from live messages our server stamped (and nobody
 * else's), a catch-up on each fresh session paging forwards from it,
 * results that also came live not delivered again, live copies of what
 * a catch-up delivered flagged as duplicates, the last id never moving
 * backwards; and the set/get of the last id for persistence. */
#include "test.h"

#include "scripted.h"

TEST_MAIN

#define ME "me@example.com/r1"

typedef struct got {
    char bodies[16][64];
    int n, done, status;
    size_t results;
} got;

static void on_result(epode_mam_t *mam, const epode_message_t *m, void *user)
{
    (void)mam;
    got *g = user;
    if (g->n < 16)
        snprintf(g->bodies[g->n++], sizeof g->bodies[0], "%s", epode_message_body(m, NULL));
}

static void on_done(epode_mam_t *mam, int status, epode_stanza_cond_t cond, const char *first,
                    const char *last, int complete, long count, size_t results, void *user)
{
    (void)mam, (void)cond, (void)first, (void)last, (void)complete, (void)count;
    got *g = user;
    g->done++;
    g->status = status;
    g->results = results;
}

/* A fresh session on the same connection (no resumption): READY again. */
static int relogin(scripted *s)
{
    epode__transport *client;
    scripted_send(s, "</stream:stream>"); /* the old stream ends: not resumable */
    s->next = s->nsent; /* what the old stream carried is not this one's */
    epode__transport_free(s->server);
    epode_parser_free(s->parser);
    s->server = NULL;
    s->parser = NULL;
    if (epode__memory_pair(NULL, &client, &s->server) < 0)
        return -1;
    if (epode_parser_new(NULL, scripted__on_client, s, &s->parser) < 0 ||
        epode__conn_start_over(s->conn, client) < 0) {
        epode__transport_free(client); /* still ours: not taken on failure */
        return -1;
    }
    scripted_pump(s);
    scripted_send(s, SCRIPTED_HDR "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:"
                                  "xmpp-sasl'><mechanism>ANONYMOUS</mechanism></mechanisms>"
                                  "</stream:features>");
    if (!scripted_next(s))
        return -1;
    epode_parser_reset(s->parser);
    scripted_send(s, "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>");
    scripted_send(s, SCRIPTED_HDR "<stream:features><bind xmlns='urn:ietf:params:xml:ns:"
                                  "xmpp-bind'/></stream:features>");
    epode_stanza_t *bind = scripted_next(s);
    if (!bind)
        return -1;
    char xml[512];
    snprintf(xml, sizeof xml, "<iq type='result' id='%s'><bind xmlns='urn:ietf:params:xml:ns:"
             "xmpp-bind'><jid>" ME "</jid></bind></iq>", epode_stanza_get_id(bind));
    scripted_send(s, xml);
    return epode_conn_is_ready(s->conn) ? 0 : -1;
}

static void live(scripted *s, const char *type, const char *by, const char *id, const char *body)
{
    char xml[1024];
    snprintf(xml, sizeof xml, "<message type='%s' from='peer@example.com/x' to='" ME "'>"
             "<body>%s</body><stanza-id xmlns='urn:xmpp:sid:0' by='%s' id='%s'/></message>",
             type, body, by, id);
    scripted_send(s, xml);
}

/* The next MAM query the client sent (its IQ), NULL if none. */
static epode_stanza_t *next_query(scripted *s)
{
    epode_stanza_t *st;
    while ((st = scripted_next(s)))
        if (epode_stanza_find_child(st, "query", EPODE_NS_MAM))
            return st;
    return NULL;
}

static const char *after_of(const epode_stanza_t *iq)
{
    epode_stanza_t *q = epode_stanza_find_child(iq, "query", EPODE_NS_MAM);
    epode_stanza_t *set = epode_stanza_find_child(q, "set", EPODE_NS_RSM);
    return epode_stanza_child_text(set, "after", EPODE_NS_RSM);
}

static void result(scripted *s, const epode_stanza_t *iq, const char *id, const char *body)
{
    epode_stanza_t *q = epode_stanza_find_child(iq, "query", EPODE_NS_MAM);
    char xml[1024];
    snprintf(xml, sizeof xml, "<message to='" ME "'><result xmlns='urn:xmpp:mam:2' queryid='%s' "
             "id='%s'><forwarded xmlns='urn:xmpp:forward:0'><delay xmlns='urn:xmpp:delay' "
             "stamp='2026-12-06T10:00:00Z'/><message xmlns='jabber:client' type='chat' "
             "from='peer@example.com/x'><body>%s</body></message></forwarded></result></message>",
             epode_stanza_get_attr(q, "queryid"), id, body);
    scripted_send(s, xml);
}

static void fin(scripted *s, const epode_stanza_t *iq, const char *first, const char *last,
                int complete)
{
    char xml[1024];
    snprintf(xml, sizeof xml, "<iq type='result' id='%s'><fin xmlns='urn:xmpp:mam:2'%s><set "
             "xmlns='http://jabber.org/protocol/rsm'><first>%s</first><last>%s</last></set>"
             "</fin></iq>", epode_stanza_get_id(iq), complete ? " complete='true'" : "", first,
             last);
    scripted_send(s, xml);
}

TEST(mam_auto_catch_up_tracks_our_servers_live_ids_only)
{
    scripted s;
    CHECK_INT(scripted_login(&s, "me@example.com", ME), 0);
    epode_mam_t *mam;
    got g = {0};
    CHECK_INT(epode_mam_new(s.conn, &mam), 0);
    CHECK_INT(epode_mam_set_auto_catch_up(mam, 1, 0, NULL, NULL, NULL), EPODE_EINVAL);
    CHECK_INT(epode_mam_set_auto_catch_up(mam, 1, EPODE_MAM_PAGE_MAX + 1, on_result, NULL, &g),
              EPODE_EINVAL);
    CHECK_INT(epode_mam_set_auto_catch_up(mam, 1, 2, on_result, on_done, &g), 0);
    CHECK(epode_mam_last_id(mam) == NULL);
    live(&s, "chat", "me@example.com", "L1", "one");
    CHECK_STR(epode_mam_last_id(mam), "L1");
    live(&s, "chat", "evil@example.com", "E1", "forged"); /* someone else's id */
    live(&s, "chat", "me@example.com/r1", "E2", "full"); /* not our bare JID */
    live(&s, "groupchat", "me@example.com", "E3", "room");
    live(&s, "error", "me@example.com", "E4", "err");
    CHECK_STR(epode_mam_last_id(mam), "L1");
    live(&s, "normal", "ME@example.com", "L2", "two");
    CHECK_STR(epode_mam_last_id(mam), "L2");
    CHECK_INT(epode_mam_set_last_id(mam, ""), EPODE_EINVAL);
    CHECK_INT(epode_mam_set_last_id(mam, "stored-7"), 0);
    CHECK_STR(epode_mam_last_id(mam), "stored-7");
    CHECK_INT(epode_mam_set_last_id(mam, NULL), 0);
    CHECK(epode_mam_last_id(mam) == NULL);
    /* a fresh session without a last id: nothing asked */
    CHECK_INT(relogin(&s), 0);
    CHECK(next_query(&s) == NULL);
    CHECK_INT(g.done, 0);
    epode_mam_free(mam);
    scripted_free(&s);
}

static epode_mam_t *dup_mam;
static int dups[8], ndups;

static int on_live(epode_conn_t *conn, const epode_message_t *m, void *user)
{
    (void)conn, (void)user;
    if (ndups < 8)
        dups[ndups++] = epode_mam_is_duplicate(dup_mam, epode_message_stanza(m));
    return EPODE_HANDLED;
}

TEST(mam_auto_catch_up_on_a_fresh_session_without_duplicates)
{
    scripted s;
    CHECK_INT(scripted_login(&s, "me@example.com", ME), 0);
    epode_mam_t *mam;
    got g = {0};
    CHECK_INT(epode_mam_new(s.conn, &mam), 0);
    CHECK_INT(epode_mam_set_auto_catch_up(mam, 1, 2, on_result, on_done, &g), 0);
    live(&s, "chat", "me@example.com", "A0", "seen before");
    CHECK_INT(relogin(&s), 0); /* the session could not be resumed */
    epode_stanza_t *q = next_query(&s);
    CHECK(q != NULL);
    CHECK_STR(after_of(q), "A0");
    /* while the catch-up runs, A2 arrives live */
    live(&s, "chat", "me@example.com", "A2", "two");
    CHECK_STR(epode_mam_last_id(mam), "A0"); /* parked until the end */
    result(&s, q, "A1", "one");
    CHECK_STR(epode_mam_last_id(mam), "A1");
    result(&s, q, "A2", "two"); /* came live: not again */
    fin(&s, q, "A1", "A2", 0);
    q = next_query(&s);
    CHECK(q != NULL);
    CHECK_STR(after_of(q), "A2");
    result(&s, q, "A3", "three"); /* archived while away, for another resource */
    fin(&s, q, "A3", "A3", 1);
    CHECK_INT(g.done, 1);
    CHECK_INT(g.status, 0);
    CHECK_INT(g.n, 2);
    CHECK_STR(g.bodies[0], "one");
    CHECK_STR(g.bodies[1], "three");
    CHECK_STR(epode_mam_last_id(mam), "A3"); /* not back to the live A2 */

    /* a live copy of what the catch-up delivered is flagged */
    epode_messaging_t *msgs;
    CHECK_INT(epode_messaging_new(s.conn, &msgs), 0);
    dup_mam = mam;
    CHECK_INT(epode_messaging_handler_add(msgs, NULL, on_live, NULL, NULL), 0);
    live(&s, "chat", "me@example.com", "A1", "one");
    live(&s, "chat", "me@example.com", "A2", "two"); /* live first: the catch-up skipped it */
    CHECK_INT(ndups, 2);
    CHECK_INT(dups[0], 1);
    CHECK_INT(dups[1], 0);
    epode_messaging_free(msgs);

    /* live again after the catch-up: the last id follows at once */
    live(&s, "chat", "me@example.com", "A4", "four");
    CHECK_STR(epode_mam_last_id(mam), "A4");
    /* a live message newer than the archive's last page wins at the end */
    CHECK_INT(relogin(&s), 0);
    q = next_query(&s);
    CHECK_STR(after_of(q), "A4");
    live(&s, "chat", "me@example.com", "A6", "six");
    result(&s, q, "A5", "five");
    fin(&s, q, "A5", "A5", 1);
    CHECK_INT(g.done, 2);
    CHECK_STR(epode_mam_last_id(mam), "A6");
    /* turned off: no catch-up on the next session */
    CHECK_INT(epode_mam_set_auto_catch_up(mam, 0, 0, NULL, NULL, NULL), 0);
    CHECK_INT(relogin(&s), 0);
    CHECK(next_query(&s) == NULL);
    epode_mam_free(mam);
    scripted_free(&s);
}

TEST(mam_auto_catch_up_an_unknown_id_is_reported)
{
    scripted s;
    CHECK_INT(scripted_login(&s, "me@example.com", ME), 0);
    epode_mam_t *mam;
    got g = {0};
    CHECK_INT(epode_mam_new(s.conn, &mam), 0);
    CHECK_INT(epode_mam_set_auto_catch_up(mam, 1, 0, on_result, on_done, &g), 0);
    CHECK_INT(epode_mam_set_last_id(mam, "gone"), 0);
    CHECK_INT(relogin(&s), 0);
    epode_stanza_t *q = next_query(&s);
    char xml[512];
    snprintf(xml, sizeof xml, "<iq type='error' id='%s'><error type='cancel'><item-not-found "
             "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>", epode_stanza_get_id(q));
    scripted_send(&s, xml);
    CHECK_INT(g.done, 1);
    CHECK_INT(g.status, 0);
    CHECK_STR(epode_mam_last_id(mam), "gone"); /* kept: the application decides */
    epode_mam_free(mam);
    scripted_free(&s);
}

/* Every allocation failing in turn: clean, and nothing left behind. */
TEST(mam_auto_catch_up_survives_every_failing_allocation)
{
    int swept = 0;
    for (long fail = 0; fail < 1000; fail++) {
        scripted_mem mm;
        scripted_mem_init(&mm);
        scripted s;
        CHECK_INT(scripted_login_mem(&s, &mm.mem, "me@example.com", ME), 0);
        epode_mam_t *mam = NULL;
        got g = {0};
        mm.fail_at = mm.calls + fail;
        int rc = epode_mam_new(s.conn, &mam);
        if (rc == 0)
            rc = epode_mam_set_auto_catch_up(mam, 1, 2, on_result, on_done, &g);
        CHECK(rc == 0 || rc == EPODE_ENOMEM);
        if (rc == 0) {
            live(&s, "chat", "me@example.com", "A0", "zero");
            if (relogin(&s) == 0) {
                epode_stanza_t *q = next_query(&s);
                if (q) {
                    live(&s, "chat", "me@example.com", "A2", "two");
                    result(&s, q, "A1", "one");
                    result(&s, q, "A2", "two");
                    fin(&s, q, "A1", "A2", 1);
                }
            }
        }
        int done = mm.fail_at > mm.calls;
        mm.fail_at = -1;
        epode_mam_free(mam);
        scripted_free(&s);
        CHECK_INT(mm.live, 0);
        swept++;
        if (done)
            break;
    }
    printf("# %d allocation points swept\n", swept);
}

/* A catch-up refused after its first page (a server's rate limit, say)
 * while a live message came: the last id stays at the archive's last
 * message delivered, the next session goes on from there, and the live
 * one is neither delivered again nor skipped past. */
TEST(mam_auto_catch_up_a_failed_catch_up_keeps_the_gap)
{
    scripted s;
    CHECK_INT(scripted_login(&s, "me@example.com", ME), 0);
    epode_mam_t *mam;
    got g = {0};
    CHECK_INT(epode_mam_new(s.conn, &mam), 0);
    CHECK_INT(epode_mam_set_auto_catch_up(mam, 1, 1, on_result, on_done, &g), 0);
    live(&s, "chat", "me@example.com", "A0", "seen before");
    CHECK_INT(relogin(&s), 0);
    epode_stanza_t *q = next_query(&s);
    CHECK_STR(after_of(q), "A0");
    live(&s, "chat", "me@example.com", "A9", "nine (live)");
    result(&s, q, "A1", "one");
    fin(&s, q, "A1", "A1", 0);
    q = next_query(&s);
    CHECK_STR(after_of(q), "A1");
    char xml[512];
    snprintf(xml, sizeof xml, "<iq type='error' id='%s'><error type='wait'><resource-constraint "
             "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>", epode_stanza_get_id(q));
    scripted_send(&s, xml);
    CHECK_INT(g.done, 1);
    CHECK_STR(epode_mam_last_id(mam), "A1"); /* not A9: A2..A8 are still owed */
    /* live meanwhile: kept aside too, the gap is still open */
    live(&s, "chat", "me@example.com", "A10", "ten (live)");
    CHECK_STR(epode_mam_last_id(mam), "A1");
    CHECK_INT(relogin(&s), 0);
    q = next_query(&s);
    CHECK_STR(after_of(q), "A1");
    result(&s, q, "A2", "two");
    result(&s, q, "A9", "nine (archive)");  /* came live: not again */
    result(&s, q, "A10", "ten (archive)"); /* came live: not again */
    fin(&s, q, "A2", "A10", 1);
    CHECK_INT(g.done, 2);
    CHECK_INT(g.status, 0);
    CHECK_INT(g.n, 2);
    CHECK_STR(g.bodies[0], "one");
    CHECK_STR(g.bodies[1], "two");
    CHECK_STR(epode_mam_last_id(mam), "A10");
    /* complete: live ids are the last id again */
    live(&s, "chat", "me@example.com", "A11", "eleven");
    CHECK_STR(epode_mam_last_id(mam), "A11");
    epode_mam_free(mam);
    scripted_free(&s);
}

/* The same, the link cut during the second page: the next session's
 * catch-up starts after A1, not after the live A9. */
TEST(mam_auto_catch_up_cut_by_a_reconnection_keeps_the_gap)
{
    scripted s;
    CHECK_INT(scripted_login(&s, "me@example.com", ME), 0);
    epode_mam_t *mam;
    got g = {0};
    CHECK_INT(epode_mam_new(s.conn, &mam), 0);
    CHECK_INT(epode_mam_set_auto_catch_up(mam, 1, 1, on_result, on_done, &g), 0);
    live(&s, "chat", "me@example.com", "A0", "seen before");
    CHECK_INT(relogin(&s), 0);
    epode_stanza_t *q = next_query(&s);
    live(&s, "chat", "me@example.com", "A9", "nine (live)");
    result(&s, q, "A1", "one");
    fin(&s, q, "A1", "A1", 0);
    q = next_query(&s);
    CHECK(q != NULL);
    CHECK_INT(relogin(&s), 0);
    q = next_query(&s);
    CHECK(q != NULL);
    CHECK_INT(g.done, 1);
    CHECK(g.status < 0);
    CHECK_STR(after_of(q), "A1");
    result(&s, q, "A9", "nine (archive)");
    fin(&s, q, "A9", "A9", 1);
    CHECK_INT(g.n, 1);
    CHECK_STR(epode_mam_last_id(mam), "A9");
    epode_mam_free(mam);
    scripted_free(&s);
}

/* A server whose pages do not advance (the same <last/>, never
 * complete): the catch-up ends with EPODE_EPROTOCOL after the page that
 * repeated itself, and the message is handed over once. */
TEST(mam_auto_catch_up_a_page_that_does_not_advance_ends_it)
{
    scripted s;
    CHECK_INT(scripted_login(&s, "me@example.com", ME), 0);
    epode_mam_t *mam;
    got g = {0};
    CHECK_INT(epode_mam_new(s.conn, &mam), 0);
    CHECK_INT(epode_mam_set_auto_catch_up(mam, 1, 1, on_result, on_done, &g), 0);
    live(&s, "chat", "me@example.com", "A0", "seen before");
    CHECK_INT(relogin(&s), 0);
    int pages = 0;
    epode_stanza_t *q;
    while (pages < 5 && (q = next_query(&s))) {
        result(&s, q, "A1", "one");
        fin(&s, q, "A1", "A1", 0);
        pages++;
    }
    CHECK_INT(pages, 2);
    CHECK_INT(g.done, 1);
    CHECK_INT(g.status, EPODE_EPROTOCOL);
    CHECK_INT(g.n, 1);
    CHECK_STR(epode_mam_last_id(mam), "A1");
    epode_mam_free(mam);
    scripted_free(&s);
}

/* Pages going round in a circle (after A2 the server starts again at
 * A1): the page holding only what was delivered already ends the
 * catch-up with EPODE_EPROTOCOL, each message handed over once. */
TEST(mam_auto_catch_up_pages_in_a_circle_end_it)
{
    scripted s;
    CHECK_INT(scripted_login(&s, "me@example.com", ME), 0);
    epode_mam_t *mam;
    got g = {0};
    CHECK_INT(epode_mam_new(s.conn, &mam), 0);
    CHECK_INT(epode_mam_set_auto_catch_up(mam, 1, 1, on_result, on_done, &g), 0);
    live(&s, "chat", "me@example.com", "A0", "seen before");
    CHECK_INT(relogin(&s), 0);
    int pages = 0;
    epode_stanza_t *q;
    while (pages < 6 && (q = next_query(&s))) {
        int one = strcmp(after_of(q), "A1") != 0;
        result(&s, q, one ? "A1" : "A2", one ? "one" : "two");
        fin(&s, q, one ? "A1" : "A2", one ? "A1" : "A2", 0);
        pages++;
    }
    CHECK_INT(pages, 3);
    CHECK_INT(g.done, 1);
    CHECK_INT(g.status, EPODE_EPROTOCOL);
    CHECK_INT(g.n, 2);
    CHECK_STR(g.bodies[0], "one");
    CHECK_STR(g.bodies[1], "two");
    epode_mam_free(mam);
    scripted_free(&s);
}
