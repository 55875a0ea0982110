/* tests/unit/test_im_mam.c — Message Archive Management (XEP-0313) with
 * RSM (XEP-0059) against a scripted server: the query and its filter
 * form, results unwrapped into message views, paging both ways, room
 * archives, catch-up; and what a hostile server or peer sends: results
 * from another JID than the archive asked, for no open query, past the
 * page size, forwarded messages without a delay (the message's own claim
 * is never taken), bogus RSM counts. */
#include "test.h"

#include "scripted.h"

TEST_MAIN

#define ME "anon@example.com/r1"

typedef struct seen {
    int results;
    char ids[16][64], froms[16][128], bodies[16][128];
    long long stamps[16];
    int dones, status, complete;
    epode_stanza_cond_t cond;
    char first[64], last[64];
    long count;
    size_t delivered;
} seen;

static void cp(char *d, size_t n, const char *s)
{
    snprintf(d, n, "%s", s ? s : "(null)");
}

static void on_result(epode_mam_t *mam, const epode_message_t *m, void *user)
{
    (void)mam;
    seen *s = user;
    int i = s->results++;
    if (i >= 16)
        return;
    cp(s->ids[i], sizeof s->ids[i], epode_message_archive_id(m));
    cp(s->froms[i], sizeof s->froms[i], epode_message_from(m));
    cp(s->bodies[i], sizeof s->bodies[i], epode_message_body(m, NULL));
    s->stamps[i] = -1;
    epode_message_delay(m, &s->stamps[i], NULL, NULL);
}

static void on_done(epode_mam_t *mam, int status, epode_stanza_cond_t cond, const char *first,
                    const char *last, int complete, long count, size_t results, void *user)
{
    (void)mam;
    seen *s = user;
    s->dones++;
    s->status = status;
    s->cond = cond;
    cp(s->first, sizeof s->first, first);
    cp(s->last, sizeof s->last, last);
    s->complete = complete;
    s->count = count;
    s->delivered = results;
}

static epode_stanza_t *next_iq(scripted *s)
{
    epode_stanza_t *st;
    while ((st = scripted_next(s)))
        if (strcmp(epode_stanza_get_name(st), "iq") == 0)
            return st;
    return NULL;
}

/* The query the client sent: its IQ id and queryid. */
typedef struct sent_query {
    char id[64], qid[64];
    epode_stanza_t *iq, *query, *set, *form;
} sent_query;

static int take_query(scripted *s, sent_query *q)
{
    memset(q, 0, sizeof *q);
    do { /* other IQs (the messaging helper's disco#info) are skipped */
        q->iq = next_iq(s);
        q->query = q->iq ? epode_stanza_find_child(q->iq, "query", EPODE_NS_MAM) : NULL;
    } while (q->iq && !q->query);
    if (!q->query)
        return -1;
    snprintf(q->id, sizeof q->id, "%s", epode_stanza_get_id(q->iq));
    snprintf(q->qid, sizeof q->qid, "%s", epode_stanza_get_attr(q->query, "queryid"));
    q->set = epode_stanza_find_child(q->query, "set", EPODE_NS_RSM);
    q->form = epode_stanza_find_child(q->query, "x", "jabber:x:data");
    return 0;
}

/* A form field's first value in the sent query (NULL if none). */
static const char *field(const sent_query *q, const char *var)
{
    if (!q->form)
        return NULL;
    for (epode_stanza_t *f = epode_stanza_find_child(q->form, "field", NULL); f;
         f = epode_stanza_find_next(f, "field", NULL)) {
        const char *v = epode_stanza_get_attr(f, "var");
        if (v && strcmp(v, var) == 0)
            return epode_stanza_child_text(f, "value", NULL);
    }
    return NULL;
}

/* The server sends one result (`from_attr` like " from='x'" or ""). */
static void send_result(scripted *s, const char *from_attr, const char *qid, const char *id,
                        const char *stamp, const char *inner_from, const char *body)
{
    char xml[2048], delay[256] = "";
    if (stamp)
        snprintf(delay, sizeof delay, "<delay xmlns='urn:xmpp:delay' stamp='%s'/>", stamp);
    snprintf(xml, sizeof xml, "<message to='" ME "'%s><result xmlns='urn:xmpp:mam:2' queryid='%s' "
             "id='%s'><forwarded xmlns='urn:xmpp:forward:0'>%s<message xmlns='jabber:client' "
             "from='%s' to='anon@example.com' type='chat'><body>%s</body>"
             "<delay xmlns='urn:xmpp:delay' stamp='1999-01-01T00:00:00Z'/></message></forwarded>"
             "</result></message>", from_attr, qid, id, delay, inner_from, body);
    scripted_send(s, xml);
}

static void send_fin(scripted *s, const char *id, const char *fin_attrs, const char *set)
{
    char xml[2048];
    snprintf(xml, sizeof xml, "<iq type='result' id='%s'><fin xmlns='urn:xmpp:mam:2'%s>"
             "<set xmlns='http://jabber.org/protocol/rsm'>%s</set></fin></iq>", id, fin_attrs, set);
    scripted_send(s, xml);
}

static int setup(scripted *s, epode_mam_t **mam)
{
    if (scripted_login(s, "example.com", ME) < 0 || epode_mam_new(s->conn, mam) < 0)
        return -1;
    return 0;
}

TEST(mam_query_with_filters_and_results_unwrapped)
{
    scripted s;
    epode_mam_t *mam;
    CHECK_INT(setup(&s, &mam), 0);
    epode_mam_query_t *q;
    CHECK_INT(epode_mam_query_new(NULL, &q), 0);
    CHECK_INT(epode_mam_query_set_with(q, "Juliet@Capulet.lit"), 0);
    CHECK_INT(epode_mam_query_set_start(q, 1278803305000LL), 0);
    CHECK_INT(epode_mam_query_set_end(q, 1278889705000LL), 0);
    CHECK_INT(epode_mam_query_set_page(q, 10, NULL, NULL), 0);
    seen a = {0};
    CHECK_INT(epode_mam_fetch(mam, q, on_result, on_done, &a, NULL), 0);
    epode_mam_query_free(q);
    scripted_pump(&s);
    sent_query sq;
    CHECK_INT(take_query(&s, &sq), 0);
    CHECK_STR(epode_stanza_get_type(sq.iq), "set");
    CHECK(epode_stanza_get_to(sq.iq) == NULL); /* our own archive */
    CHECK(sq.qid[0] != 0);
    CHECK(sq.form != NULL);
    CHECK_STR(epode_stanza_get_attr(sq.form, "type"), "submit");
    CHECK_STR(field(&sq, "FORM_TYPE"), "urn:xmpp:mam:2");
    CHECK_STR(field(&sq, "with"), "juliet@capulet.lit");
    CHECK_STR(field(&sq, "start"), "2010-07-10T23:08:25Z");
    CHECK_STR(field(&sq, "end"), "2010-07-11T23:08:25Z");
    CHECK_STR(epode_stanza_child_text(sq.set, "max", NULL), "10");
    /* the archive is our bare JID: with and without 'from' */
    send_result(&s, " from='anon@example.com'", sq.qid, "28482-98726-73623", "2010-07-10T23:08:25Z",
                "juliet@capulet.lit/balcony", "Hail to thee");
    send_result(&s, "", sq.qid, "09af3-cc343-b409f", "2010-07-10T23:09:32.5Z",
                "anon@example.com/r2", "and to you");
    CHECK_INT(a.results, 2);
    CHECK_STR(a.ids[0], "28482-98726-73623");
    CHECK_STR(a.froms[0], "juliet@capulet.lit/balcony");
    CHECK_STR(a.bodies[0], "Hail to thee");
    CHECK_INT(a.stamps[0], 1278803305000LL);
    CHECK_INT(a.stamps[1], 1278803372500LL);
    send_fin(&s, sq.id, " complete='true'", "<first index='0'>28482-98726-73623</first>"
                                            "<last>09af3-cc343-b409f</last><count>2</count>");
    CHECK_INT(a.dones, 1);
    CHECK_INT(a.status, 0);
    CHECK_INT(a.cond, EPODE_COND_NONE);
    CHECK_STR(a.first, "28482-98726-73623");
    CHECK_STR(a.last, "09af3-cc343-b409f");
    CHECK_INT(a.complete, 1);
    CHECK_INT(a.count, 2);
    CHECK_INT(a.delivered, 2);
    /* after the end, results for that query are unsolicited */
    send_result(&s, "", sq.qid, "late", "2010-07-10T23:09:32Z", "x@y", "late");
    CHECK_INT(a.results, 2);
    CHECK_INT(epode_mam_rejected(mam), 1);
    epode_mam_free(mam);
    scripted_free(&s);
}

TEST(mam_results_from_another_jid_are_ignored)
{
    scripted s;
    epode_mam_t *mam;
    CHECK_INT(setup(&s, &mam), 0);
    epode_mam_query_t *q;
    CHECK_INT(epode_mam_query_new(NULL, &q), 0);
    seen a = {0};
    CHECK_INT(epode_mam_fetch(mam, q, on_result, on_done, &a, NULL), 0);
    scripted_pump(&s);
    sent_query sq;
    CHECK_INT(take_query(&s, &sq), 0);
    const char *forged[] = {" from='mallory@evil.example'", " from='anon@example.com/r2'",
                            " from='example.com'", " from='anon2@example.com'", " from='@@'"};
    for (size_t i = 0; i < sizeof forged / sizeof *forged; i++)
        send_result(&s, forged[i], sq.qid, "f1", "2010-07-10T23:08:25Z", "boss@example.com/x",
                    "fire everyone");
    /* the right archive, a wrong queryid */
    send_result(&s, "", "not-our-query", "f2", "2010-07-10T23:08:25Z", "boss@example.com/x", "x");
    /* no queryid at all */
    scripted_send(&s, "<message><result xmlns='urn:xmpp:mam:2' id='f3'><forwarded "
                      "xmlns='urn:xmpp:forward:0'><message xmlns='jabber:client' from='a@b'><body>x"
                      "</body></message></forwarded></result></message>");
    CHECK_INT(a.results, 0);
    CHECK_INT(epode_mam_rejected(mam), 7);
    /* malformed: no id, nothing forwarded, a message in another namespace */
    char xml[1024];
    snprintf(xml, sizeof xml, "<message><result xmlns='urn:xmpp:mam:2' queryid='%s'><forwarded "
             "xmlns='urn:xmpp:forward:0'><message xmlns='jabber:client' from='a@b'/></forwarded>"
             "</result></message>", sq.qid);
    scripted_send(&s, xml);
    snprintf(xml, sizeof xml, "<message><result xmlns='urn:xmpp:mam:2' queryid='%s' id='x'/>"
             "</message>", sq.qid);
    scripted_send(&s, xml);
    snprintf(xml, sizeof xml, "<message><result xmlns='urn:xmpp:mam:2' queryid='%s' id='x'>"
             "<forwarded xmlns='urn:xmpp:forward:0'><message xmlns='urn:evil' from='a@b'/>"
             "</forwarded></result></message>", sq.qid);
    scripted_send(&s, xml);
    CHECK_INT(a.results, 0);
    CHECK_INT(epode_mam_rejected(mam), 10);
    epode_mam_query_free(q);
    epode_mam_free(mam);
    CHECK_INT(a.dones, 1); /* told at free */
    CHECK_INT(a.status, EPODE_ECANCELED);
    scripted_free(&s);
}

static int count_messages(epode_conn_t *conn, const epode_message_t *m, void *user)
{
    (void)conn, (void)m;
    ++*(int *)user;
    return EPODE_PASS;
}

TEST(mam_results_are_not_messages_for_the_messaging_helper)
{
    scripted s;
    epode_mam_t *mam;
    CHECK_INT(setup(&s, &mam), 0);
    epode_messaging_t *msgs;
    CHECK_INT(epode_messaging_new(s.conn, &msgs), 0);
    int n = 0;
    CHECK_INT(epode_messaging_handler_add(msgs, NULL, count_messages, &n, NULL), 0);
    epode_mam_query_t *q;
    CHECK_INT(epode_mam_query_new(NULL, &q), 0);
    seen a = {0};
    CHECK_INT(epode_mam_fetch(mam, q, on_result, on_done, &a, NULL), 0);
    scripted_pump(&s);
    sent_query sq;
    CHECK_INT(take_query(&s, &sq), 0);
    send_result(&s, "", sq.qid, "1", "2010-07-10T23:08:25Z", "j@c/b", "one");
    send_result(&s, " from='mallory@evil.example'", sq.qid, "2", "2010-07-10T23:08:25Z", "j@c/b",
                "forged");
    CHECK_INT(a.results, 1);
    CHECK_INT(n, 0);
    scripted_send(&s, "<message from='j@c/b' type='chat'><body>live</body></message>");
    CHECK_INT(n, 1);
    epode_mam_query_free(q);
    epode_messaging_free(msgs);
    epode_mam_free(mam);
    scripted_free(&s);
}

TEST(mam_forwarded_without_delay_has_no_timestamp)
{
    scripted s;
    epode_mam_t *mam;
    CHECK_INT(setup(&s, &mam), 0);
    epode_mam_query_t *q;
    CHECK_INT(epode_mam_query_new(NULL, &q), 0);
    seen a = {0};
    CHECK_INT(epode_mam_fetch(mam, q, on_result, on_done, &a, NULL), 0);
    scripted_pump(&s);
    sent_query sq;
    CHECK_INT(take_query(&s, &sq), 0);
    /* the inner message claims 1999: that claim is not the archive's */
    send_result(&s, "", sq.qid, "nodelay", NULL, "juliet@capulet.lit/b", "when?");
    send_result(&s, "", sq.qid, "baddelay", "yesterday", "juliet@capulet.lit/b", "when?");
    CHECK_INT(a.results, 2);
    CHECK_INT(a.stamps[0], -1);
    CHECK_INT(a.stamps[1], -1);
    CHECK_STR(a.ids[0], "nodelay");
    epode_mam_query_free(q);
    epode_mam_free(mam);
    scripted_free(&s);
}

TEST(mam_rsm_bogus_counts_and_oversize_pages)
{
    scripted s;
    epode_mam_t *mam;
    CHECK_INT(setup(&s, &mam), 0);
    epode_mam_query_t *q;
    CHECK_INT(epode_mam_query_new(NULL, &q), 0);
    CHECK_INT(epode_mam_query_set_page(q, 2, NULL, NULL), 0);
    seen a = {0};
    CHECK_INT(epode_mam_fetch(mam, q, on_result, on_done, &a, NULL), 0);
    scripted_pump(&s);
    sent_query sq;
    CHECK_INT(take_query(&s, &sq), 0);
    /* three results for a page of two: the third is ignored */
    send_result(&s, "", sq.qid, "1", "2010-07-10T23:08:25Z", "j@c/b", "one");
    send_result(&s, "", sq.qid, "2", "2010-07-10T23:08:26Z", "j@c/b", "two");
    send_result(&s, "", sq.qid, "3", "2010-07-10T23:08:27Z", "j@c/b", "three");
    CHECK_INT(a.results, 2);
    CHECK_INT(epode_mam_rejected(mam), 1);
    send_fin(&s, sq.id, " complete='maybe'", "<first index='-5'>1</first><last>2</last>"
                                             "<count>-12</count>");
    CHECK_INT(a.dones, 1);
    CHECK_INT(a.count, -1);
    CHECK_INT(a.complete, 0);
    /* more bogus counts */
    const char *counts[] = {"<count>lots</count>", "<count>99999999999999999999</count>",
                            "<count></count>", "<count> 5</count>", ""};
    for (size_t i = 0; i < sizeof counts / sizeof *counts; i++) {
        CHECK_INT(epode_mam_fetch(mam, q, on_result, on_done, &a, NULL), 0);
        scripted_pump(&s);
        CHECK_INT(take_query(&s, &sq), 0);
        send_fin(&s, sq.id, "", counts[i]);
        CHECK_INT(a.count, -1);
        CHECK_STR(a.first, "(null)");
    }
    /* a result without <fin/> is not an answer we understand */
    CHECK_INT(epode_mam_fetch(mam, q, on_result, on_done, &a, NULL), 0);
    scripted_pump(&s);
    CHECK_INT(take_query(&s, &sq), 0);
    char xml[256];
    snprintf(xml, sizeof xml, "<iq type='result' id='%s'/>", sq.id);
    scripted_send(&s, xml);
    CHECK_INT(a.cond, EPODE_COND_UNDEFINED_CONDITION);
    /* a refusal */
    CHECK_INT(epode_mam_fetch(mam, q, on_result, on_done, &a, NULL), 0);
    scripted_pump(&s);
    CHECK_INT(take_query(&s, &sq), 0);
    snprintf(xml, sizeof xml, "<iq type='error' id='%s'><error type='cancel'><item-not-found "
             "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>", sq.id);
    scripted_send(&s, xml);
    CHECK_INT(a.cond, EPODE_COND_ITEM_NOT_FOUND);
    epode_mam_query_free(q);
    epode_mam_free(mam);
    scripted_free(&s);
}

TEST(mam_pages_forwards_and_backwards)
{
    scripted s;
    epode_mam_t *mam;
    CHECK_INT(setup(&s, &mam), 0);
    epode_mam_query_t *q;
    CHECK_INT(epode_mam_query_new(NULL, &q), 0);
    seen a = {0};
    sent_query sq;
    /* forwards: after the last id of a page */
    CHECK_INT(epode_mam_query_set_page(q, 5, "09af3", NULL), 0);
    CHECK_INT(epode_mam_fetch(mam, q, on_result, on_done, &a, NULL), 0);
    scripted_pump(&s);
    CHECK_INT(take_query(&s, &sq), 0);
    CHECK(sq.form == NULL); /* no filter: no form */
    CHECK_STR(epode_stanza_child_text(sq.set, "after", NULL), "09af3");
    CHECK(epode_stanza_find_child(sq.set, "before", NULL) == NULL);
    /* backwards: before the first id */
    CHECK_INT(epode_mam_query_set_page(q, 5, NULL, "28482"), 0);
    CHECK_INT(epode_mam_fetch(mam, q, on_result, on_done, &a, NULL), 0);
    scripted_pump(&s);
    CHECK_INT(take_query(&s, &sq), 0);
    CHECK_STR(epode_stanza_child_text(sq.set, "before", NULL), "28482");
    /* the last page: an empty <before/> */
    CHECK_INT(epode_mam_query_set_page(q, 5, NULL, ""), 0);
    CHECK_INT(epode_mam_fetch(mam, q, on_result, on_done, &a, NULL), 0);
    scripted_pump(&s);
    CHECK_INT(take_query(&s, &sq), 0);
    epode_stanza_t *b = epode_stanza_find_child(sq.set, "before", NULL);
    CHECK(b != NULL);
    CHECK_STR(epode_stanza_get_text(b), "");
    /* bad pages */
    CHECK_INT(epode_mam_query_set_page(q, 5, "a", "b"), EPODE_EINVAL);
    CHECK_INT(epode_mam_query_set_page(q, EPODE_MAM_PAGE_MAX + 1, NULL, NULL), EPODE_EINVAL);
    CHECK_INT(epode_mam_query_set_archive(q, "room@muc/nick"), EPODE_EJID);
    CHECK_INT(epode_mam_query_set_with(q, "@@"), EPODE_EJID);
    CHECK_INT(epode_mam_query_set_start(q, 253402300800000LL), EPODE_EINVAL);
    epode_mam_query_free(q);
    epode_mam_free(mam);
    scripted_free(&s);
}

TEST(mam_room_archive_takes_results_from_the_room_only)
{
    scripted s;
    epode_mam_t *mam;
    CHECK_INT(setup(&s, &mam), 0);
    epode_mam_query_t *q;
    CHECK_INT(epode_mam_query_new(NULL, &q), 0);
    CHECK_INT(epode_mam_query_set_archive(q, "Coven@Chat.Shakespeare.lit"), 0);
    seen a = {0};
    CHECK_INT(epode_mam_fetch(mam, q, on_result, on_done, &a, NULL), 0);
    scripted_pump(&s);
    sent_query sq;
    CHECK_INT(take_query(&s, &sq), 0);
    CHECK_STR(epode_stanza_get_to(sq.iq), "coven@chat.shakespeare.lit");
    /* our own account is not the room */
    send_result(&s, "", sq.qid, "r0", "2010-07-10T23:08:25Z", "coven@chat.shakespeare.lit/w", "x");
    send_result(&s, " from='anon@example.com'", sq.qid, "r0", "2010-07-10T23:08:25Z",
                "coven@chat.shakespeare.lit/w", "x");
    /* an occupant is not the room */
    send_result(&s, " from='coven@chat.shakespeare.lit/firstwitch'", sq.qid, "r0",
                "2010-07-10T23:08:25Z", "coven@chat.shakespeare.lit/w", "x");
    CHECK_INT(a.results, 0);
    send_result(&s, " from='coven@chat.shakespeare.lit'", sq.qid, "r1", "2010-07-10T23:08:25Z",
                "coven@chat.shakespeare.lit/firstwitch", "Thrice the brinded cat hath mew'd.");
    CHECK_INT(a.results, 1);
    CHECK_STR(a.froms[0], "coven@chat.shakespeare.lit/firstwitch");
    /* the answer must come from the room too (the IQ layer checks it) */
    char xml[512];
    snprintf(xml, sizeof xml, "<iq type='result' id='%s' from='coven@chat.shakespeare.lit'>"
             "<fin xmlns='urn:xmpp:mam:2' complete='true'><set xmlns='http://jabber.org/protocol/"
             "rsm'><first>r1</first><last>r1</last></set></fin></iq>", sq.id);
    scripted_send(&s, xml);
    CHECK_INT(a.dones, 1);
    CHECK_INT(a.complete, 1);
    epode_mam_query_free(q);
    epode_mam_free(mam);
    scripted_free(&s);
}

TEST(mam_catch_up_pages_until_complete)
{
    scripted s;
    epode_mam_t *mam;
    CHECK_INT(setup(&s, &mam), 0);
    seen a = {0};
    CHECK_INT(epode_mam_catch_up(mam, "stored-7", 2, on_result, on_done, &a, NULL), 0);
    scripted_pump(&s);
    sent_query sq;
    CHECK_INT(take_query(&s, &sq), 0);
    CHECK_STR(epode_stanza_child_text(sq.set, "after", NULL), "stored-7");
    CHECK_STR(epode_stanza_child_text(sq.set, "max", NULL), "2");
    send_result(&s, "", sq.qid, "8", "2010-07-10T23:08:25Z", "j@c/b", "eight");
    send_result(&s, "", sq.qid, "9", "2010-07-10T23:08:26Z", "j@c/b", "nine");
    send_fin(&s, sq.id, "", "<first>8</first><last>9</last>");
    CHECK_INT(a.dones, 0);
    CHECK_INT(take_query(&s, &sq), 0);
    CHECK_STR(epode_stanza_child_text(sq.set, "after", NULL), "9");
    send_result(&s, "", sq.qid, "10", "2010-07-10T23:08:27Z", "j@c/b", "ten");
    send_fin(&s, sq.id, " complete='true'", "<first>10</first><last>10</last>");
    CHECK_INT(a.dones, 1);
    CHECK_INT(a.status, 0);
    CHECK_INT(a.results, 3);
    CHECK_INT(a.delivered, 3);
    CHECK_STR(a.bodies[2], "ten");
    /* an id the archive forgot */
    CHECK_INT(epode_mam_catch_up(mam, "gone", 0, on_result, on_done, &a, NULL), 0);
    scripted_pump(&s);
    CHECK_INT(take_query(&s, &sq), 0);
    char xml[256];
    snprintf(xml, sizeof xml, "<iq type='error' id='%s'><error type='cancel'><item-not-found "
             "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>", sq.id);
    scripted_send(&s, xml);
    CHECK_INT(a.dones, 2);
    CHECK_INT(a.cond, EPODE_COND_ITEM_NOT_FOUND);
    /* cancel stops it */
    unsigned id;
    CHECK_INT(epode_mam_catch_up(mam, "x", 0, on_result, on_done, &a, &id), 0);
    CHECK_INT(epode_mam_cancel(mam, id), 0);
    CHECK_INT(a.dones, 3);
    CHECK_INT(a.status, EPODE_ECANCELED);
    CHECK_INT(epode_mam_cancel(mam, id), EPODE_ENOTFOUND);
    epode_mam_free(mam);
    scripted_free(&s);
}

TEST(mam_outlives_its_connection_and_sweeps_allocations)
{
    for (long fail = 0; fail < 300; fail++) {
        scripted_mem mm;
        scripted_mem_init(&mm);
        scripted s;
        CHECK_INT(scripted_login_mem(&s, &mm.mem, "example.com", ME), 0);
        mm.fail_at = mm.calls + fail;
        epode_mam_t *mam = NULL;
        epode_mam_query_t *q = NULL;
        seen a = {0};
        int rc = epode_mam_new(s.conn, &mam);
        CHECK(rc == 0 || rc == EPODE_ENOMEM);
        if (rc == 0 && (rc = epode_mam_query_new(&mm.mem, &q)) == 0 &&
            (rc = epode_mam_query_set_with(q, "j@c")) == 0 &&
            (rc = epode_mam_query_set_start(q, 0)) == 0)
            rc = epode_mam_fetch(mam, q, on_result, on_done, &a, NULL);
        CHECK(rc == 0 || rc == EPODE_ENOMEM || rc == EPODE_ESTATE);
        if (rc == 0) {
            scripted_pump(&s);
            sent_query sq;
            if (take_query(&s, &sq) == 0)
                send_result(&s, "", sq.qid, "1", "2010-07-10T23:08:25Z", "j@c/b", "one");
        }
        int done = mm.fail_at > mm.calls;
        mm.fail_at = -1;
        epode_conn_free(s.conn); /* the connection first */
        s.conn = NULL;
        if (mam && rc == 0)
            CHECK_INT(epode_mam_fetch(mam, q, on_result, on_done, &a, NULL), EPODE_ESTATE);
        epode_mam_query_free(q);
        epode_mam_free(mam);
        scripted_free(&s);
        CHECK_INT(mm.live, 0);
        if (done)
            break;
    }
}
