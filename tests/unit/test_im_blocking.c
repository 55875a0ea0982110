/* tests/unit/test_im_blocking.c — the blocking helper (XEP-0191) against
 * a scripted server: the fetch at READY, block/unblock/unblock-all and
 * the local list, pushes, and what a hostile peer sends: pushes from
 * someone else, malformed items, lists over the bound; freeing order and
 * failing allocations. */
#include "test.h"

#include "scripted.h"

TEST_MAIN

#define ME "anon@example.com/r1"

typedef struct seen {
    int events[32], nevents;
    char last[8][128];
    size_t nlast;
    int results, status;
    epode_stanza_cond_t cond;
} seen;

static void on_event(epode_blocking_t *b, epode_blocking_event_t ev, const char *const *jids,
                     size_t n, void *user)
{
    (void)b;
    seen *s = user;
    if (s->nevents < 32)
        s->events[s->nevents++] = (int)ev;
    s->nlast = n < 8 ? n : 8;
    for (size_t i = 0; i < s->nlast; i++)
        snprintf(s->last[i], sizeof s->last[i], "%s", jids[i]);
}

static void on_result(epode_blocking_t *b, int status, epode_stanza_cond_t cond, void *user)
{
    (void)b;
    seen *s = user;
    s->results++;
    s->status = status;
    s->cond = cond;
}

static epode_stanza_t *next_iq(scripted *s)
{
    epode_stanza_t *st;
    while ((st = scripted_next(s)))
        if (strcmp(epode_stanza_get_name(st), "iq") == 0)
            return st;
    return NULL;
}

/* Answers the next IQ with `payload` inside a result (NULL: empty). */
static void answer_next(scripted *s, const char *payload)
{
    epode_stanza_t *iq = next_iq(s);
    char xml[8192];
    snprintf(xml, sizeof xml, "<iq type='result' id='%s'>%s</iq>",
             iq ? epode_stanza_get_id(iq) : "none", payload ? payload : "");
    scripted_send(s, xml);
}

/* Logged in, a helper, its fetch answered with `list` items. */
static int setup(scripted *s, seen *a, epode_blocking_t **b, const char *items)
{
    if (scripted_login(s, "example.com", ME) < 0 || epode_blocking_new(s->conn, on_event, a, b) < 0)
        return -1;
    scripted_pump(s);
    epode_stanza_t *iq = next_iq(s);
    if (!iq || strcmp(epode_stanza_get_type(iq), "get") != 0 ||
        !epode_stanza_find_child(iq, "blocklist", EPODE_NS_BLOCKING))
        return -1;
    char xml[8192];
    snprintf(xml, sizeof xml, "<iq type='result' id='%s'><blocklist xmlns='urn:xmpp:blocking'>%s"
             "</blocklist></iq>", epode_stanza_get_id(iq), items);
    scripted_send(s, xml);
    return 0;
}

TEST(blocking_fetches_at_ready_and_keeps_the_list)
{
    scripted s;
    seen a = {0};
    epode_blocking_t *b;
    CHECK_INT(setup(&s, &a, &b, "<item jid='Romeo@Montague.net'/><item jid='iago@shakespeare.lit'/>"
                                "<item jid='romeo@montague.net'/>"), 0);
    CHECK_INT(epode_blocking_received(b), 1);
    CHECK_INT(a.nevents, 1);
    CHECK_INT(a.events[0], EPODE_BLOCKING_LOADED);
    CHECK_INT(epode_blocking_count(b), 2); /* normalized, the repeat dropped */
    CHECK_STR(epode_blocking_at(b, 0), "iago@shakespeare.lit");
    CHECK_STR(epode_blocking_at(b, 1), "romeo@montague.net");
    CHECK(epode_blocking_at(b, 2) == NULL);
    CHECK_INT(epode_blocking_is_blocked(b, "ROMEO@montague.net"), 1);
    CHECK_INT(epode_blocking_is_blocked(b, "romeo@montague.net/orchard"), 0);
    epode_blocking_free(b);
    scripted_free(&s);
}

TEST(blocking_block_unblock_and_unblock_all)
{
    scripted s;
    seen a = {0};
    epode_blocking_t *b;
    CHECK_INT(setup(&s, &a, &b, ""), 0);
    const char *two[] = {"romeo@montague.net", "evil.example"};
    CHECK_INT(epode_blocking_block(b, two, 2, on_result, &a), 0);
    scripted_pump(&s);
    epode_stanza_t *iq = next_iq(&s);
    CHECK(iq != NULL);
    CHECK_STR(epode_stanza_get_type(iq), "set");
    epode_stanza_t *blk = epode_stanza_find_child(iq, "block", EPODE_NS_BLOCKING);
    CHECK(blk != NULL);
    epode_stanza_t *it = epode_stanza_find_child(blk, "item", NULL);
    CHECK_STR(epode_stanza_get_attr(it, "jid"), "romeo@montague.net");
    CHECK_STR(epode_stanza_get_attr(epode_stanza_next(it), "jid"), "evil.example");
    /* the server pushes the change first, then answers */
    scripted_send(&s, "<iq type='set' id='push1'><block xmlns='urn:xmpp:blocking'>"
                      "<item jid='romeo@montague.net'/><item jid='evil.example'/></block></iq>");
    epode_stanza_t *ack = next_iq(&s);
    CHECK(ack != NULL);
    CHECK_STR(epode_stanza_get_type(ack), "result");
    CHECK_STR(epode_stanza_get_id(ack), "push1");
    CHECK_INT(a.events[a.nevents - 1], EPODE_BLOCKING_BLOCKED);
    CHECK_INT(a.nlast, 2);
    char xml[256];
    snprintf(xml, sizeof xml, "<iq type='result' id='%s'/>", epode_stanza_get_id(iq));
    int before = a.nevents;
    scripted_send(&s, xml);
    CHECK_INT(a.results, 1);
    CHECK_INT(a.status, 0);
    CHECK_INT(a.cond, EPODE_COND_NONE);
    CHECK_INT(a.nevents, before); /* nothing new: the push already did it */
    CHECK_INT(epode_blocking_count(b), 2);
    /* unblock one: confirmed by the answer alone */
    const char *one[] = {"evil.example"};
    CHECK_INT(epode_blocking_unblock(b, one, 1, on_result, &a), 0);
    scripted_pump(&s);
    answer_next(&s, NULL);
    CHECK_INT(a.results, 2);
    CHECK_INT(a.events[a.nevents - 1], EPODE_BLOCKING_UNBLOCKED);
    CHECK_STR(a.last[0], "evil.example");
    CHECK_INT(epode_blocking_count(b), 1);
    /* unblock all: an empty <unblock/> */
    CHECK_INT(epode_blocking_unblock_all(b, on_result, &a), 0);
    scripted_pump(&s);
    iq = next_iq(&s);
    epode_stanza_t *ub = iq ? epode_stanza_find_child(iq, "unblock", EPODE_NS_BLOCKING) : NULL;
    CHECK(ub != NULL);
    CHECK(epode_stanza_first_child(ub) == NULL);
    snprintf(xml, sizeof xml, "<iq type='result' id='%s'/>", epode_stanza_get_id(iq));
    scripted_send(&s, xml);
    CHECK_INT(a.events[a.nevents - 1], EPODE_BLOCKING_UNBLOCKED_ALL);
    CHECK_STR(a.last[0], "romeo@montague.net");
    CHECK_INT(epode_blocking_count(b), 0);
    /* refused by the server: the list is unchanged */
    CHECK_INT(epode_blocking_block(b, one, 1, on_result, &a), 0);
    scripted_pump(&s);
    iq = next_iq(&s);
    snprintf(xml, sizeof xml, "<iq type='error' id='%s'><error type='cancel'><not-allowed "
             "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>", epode_stanza_get_id(iq));
    scripted_send(&s, xml);
    CHECK_INT(a.cond, EPODE_COND_NOT_ALLOWED);
    CHECK_INT(epode_blocking_count(b), 0);
    /* bad arguments */
    const char *bad[] = {"@@"};
    CHECK_INT(epode_blocking_block(b, bad, 1, on_result, &a), EPODE_EJID);
    CHECK_INT(epode_blocking_block(b, NULL, 0, on_result, &a), EPODE_EINVAL);
    CHECK_INT(epode_blocking_unblock(b, one, 0, on_result, &a), EPODE_EINVAL);
    epode_blocking_free(b);
    scripted_free(&s);
}

TEST(blocking_push_from_a_stranger_is_ignored)
{
    scripted s;
    seen a = {0};
    epode_blocking_t *b;
    CHECK_INT(setup(&s, &a, &b, "<item jid='romeo@montague.net'/>"), 0);
    int before = a.nevents;
    const char *forged[] = {"mallory@evil.example", "anon@example.com/other", "example.com",
                            "anon2@example.com", "@@"};
    for (size_t i = 0; i < sizeof forged / sizeof *forged; i++) {
        char xml[512];
        snprintf(xml, sizeof xml, "<iq type='set' id='f%zu' from='%s'><unblock "
                 "xmlns='urn:xmpp:blocking'/></iq>", i, forged[i]);
        scripted_send(&s, xml);
        /* epode answers it service-unavailable: not ours */
        epode_stanza_t *ans = next_iq(&s);
        CHECK(ans != NULL);
        CHECK_STR(epode_stanza_get_type(ans), "error");
    }
    CHECK_INT(a.nevents, before);
    CHECK_INT(epode_blocking_count(b), 1);
    /* our bare JID in any letter case is the account */
    scripted_send(&s, "<iq type='set' id='ok' from='Anon@Example.com'><block xmlns='urn:xmpp:blocking'>"
                      "<item jid='iago@shakespeare.lit'/></block></iq>");
    CHECK_INT(epode_blocking_count(b), 2);
    epode_blocking_free(b);
    scripted_free(&s);
}

TEST(blocking_malformed_pushes_are_refused)
{
    scripted s;
    seen a = {0};
    epode_blocking_t *b;
    CHECK_INT(setup(&s, &a, &b, ""), 0);
    scripted_send(&s, "<iq type='set' id='p1'><block xmlns='urn:xmpp:blocking'/></iq>");
    epode_stanza_t *ans = next_iq(&s);
    CHECK(ans != NULL);
    CHECK_STR(epode_stanza_get_type(ans), "error");
    scripted_send(&s, "<iq type='set' id='p2'><block xmlns='urn:xmpp:blocking'><item jid='ok@x'/>"
                      "<item jid='@@bad'/></block></iq>");
    ans = next_iq(&s);
    CHECK_STR(epode_stanza_get_type(ans), "error");
    scripted_send(&s, "<iq type='set' id='p3'><block xmlns='urn:xmpp:blocking'><item/></block></iq>");
    ans = next_iq(&s);
    CHECK_STR(epode_stanza_get_type(ans), "error");
    scripted_send(&s, "<iq type='set' id='p4'><blocklist xmlns='urn:xmpp:blocking'/></iq>");
    ans = next_iq(&s);
    CHECK_STR(epode_stanza_get_type(ans), "error");
    CHECK_INT(epode_blocking_count(b), 0);
    CHECK_INT(a.nevents, 1); /* only LOADED */
    epode_blocking_free(b);
    scripted_free(&s);
}

TEST(blocking_oversize_lists_are_refused)
{
    scripted s;
    seen a = {0};
    epode_blocking_t *b;
    CHECK_INT(scripted_login(&s, "example.com", ME), 0);
    CHECK_INT(epode_blocking_new(s.conn, on_event, &a, &b), 0);
    CHECK_INT(epode_blocking_set_max(b, 3), 0);
    scripted_pump(&s);
    answer_next(&s, "<blocklist xmlns='urn:xmpp:blocking'><item jid='a@x'/><item jid='b@x'/>"
                    "<item jid='c@x'/><item jid='d@x'/></blocklist>");
    CHECK_INT(a.events[a.nevents - 1], EPODE_BLOCKING_LIMIT);
    CHECK_INT(epode_blocking_count(b), 0);
    CHECK_INT(epode_blocking_received(b), 0);
    /* a fetch within the bound */
    CHECK_INT(epode_blocking_fetch(b, on_result, &a), 0);
    scripted_pump(&s);
    answer_next(&s, "<blocklist xmlns='urn:xmpp:blocking'><item jid='a@x'/><item jid='b@x'/>"
                    "</blocklist>");
    CHECK_INT(a.status, 0);
    CHECK_INT(epode_blocking_count(b), 2);
    /* a push past the bound: refused whole, answered resource-constraint */
    scripted_send(&s, "<iq type='set' id='big'><block xmlns='urn:xmpp:blocking'><item jid='c@x'/>"
                      "<item jid='d@x'/></block></iq>");
    epode_stanza_t *ans = next_iq(&s);
    CHECK_STR(epode_stanza_get_type(ans), "error");
    epode_stanza_cond_t cond;
    CHECK_INT(epode_stanza_get_error(ans, &cond, NULL, NULL), 0);
    CHECK_INT(cond, EPODE_COND_RESOURCE_CONSTRAINT);
    CHECK_INT(epode_blocking_count(b), 2);
    CHECK_INT(a.events[a.nevents - 1], EPODE_BLOCKING_LIMIT);
    /* one more fits */
    scripted_send(&s, "<iq type='set' id='one'><block xmlns='urn:xmpp:blocking'><item jid='c@x'/>"
                      "</block></iq>");
    CHECK_STR(epode_stanza_get_type(next_iq(&s)), "result");
    CHECK_INT(epode_blocking_count(b), 3);
    /* a fetch answer over the bound reports ELIMIT and keeps the list */
    CHECK_INT(epode_blocking_fetch(b, on_result, &a), 0);
    scripted_pump(&s);
    answer_next(&s, "<blocklist xmlns='urn:xmpp:blocking'><item jid='a@x'/><item jid='b@x'/>"
                    "<item jid='c@x'/><item jid='e@x'/></blocklist>");
    CHECK_INT(a.status, EPODE_ELIMIT);
    CHECK_INT(epode_blocking_count(b), 3);
    epode_blocking_free(b);
    scripted_free(&s);
}

TEST(blocking_refetches_after_a_new_session_and_cancels_on_free)
{
    scripted s;
    seen a = {0};
    epode_blocking_t *b;
    CHECK_INT(setup(&s, &a, &b, "<item jid='a@x'/>"), 0);
    const char *one[] = {"z@x"};
    CHECK_INT(epode_blocking_block(b, one, 1, on_result, &a), 0);
    scripted_pump(&s);
    /* the stream ends before the answer: canceled */
    scripted_send(&s, "<stream:error><system-shutdown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"
                      "</stream:error>");
    CHECK_INT(a.results, 1);
    CHECK_INT(a.status, EPODE_ECANCELED);
    CHECK_INT(epode_blocking_received(b), 0);
    CHECK_INT(epode_blocking_count(b), 1); /* kept until the next fetch */
    CHECK_INT(epode_blocking_block(b, one, 1, on_result, &a), EPODE_ESTATE);
    epode_blocking_free(b);
    scripted_free(&s);
}

/* (as in test_im_csi.c) Runs one stream on s->conn over a new pipe, up to READY, with `extra`
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

TEST(blocking_fetches_again_on_every_new_session)
{
    scripted s;
    seen a = {0};
    epode_blocking_t *b;
    CHECK_INT(setup(&s, &a, &b, "<item jid='a@x'/>"), 0);
    CHECK_INT(epode_blocking_received(b), 1);
    scripted_send(&s, "</stream:stream>");
    CHECK_INT(epode_blocking_received(b), 0);
    CHECK_INT(stream_with(&s, "", 0), 0);
    scripted_pump(&s);
    epode_stanza_t *iq = next_iq(&s);
    CHECK(iq != NULL);
    CHECK(epode_stanza_find_child(iq, "blocklist", EPODE_NS_BLOCKING) != NULL);
    char xml[512];
    snprintf(xml, sizeof xml, "<iq type='result' id='%s'><blocklist xmlns='urn:xmpp:blocking'>"
             "<item jid='b@x'/></blocklist></iq>", epode_stanza_get_id(iq));
    scripted_send(&s, xml);
    CHECK_INT(epode_blocking_received(b), 1);
    CHECK_INT(epode_blocking_count(b), 1);
    CHECK_STR(epode_blocking_at(b, 0), "b@x"); /* the server's list replaces ours */
    epode_blocking_free(b);
    scripted_free(&s);
}

/* Big pushes, unsorted and with repeats, merge into a sorted list in
 * n log n (a server may send the whole bound at once). */
TEST(blocking_large_pushes_merge_sorted)
{
    scripted s;
    seen a = {0};
    epode_blocking_t *b;
    CHECK_INT(setup(&s, &a, &b, "<item jid='u0500@x'/><item jid='zz@x'/><item jid='aa@x'/>"), 0);
    enum { N = 3000 };
    size_t cap = N * 40 + 256, len = 0;
    char *xml = malloc(cap);
    CHECK(xml != NULL);
    len += (size_t)snprintf(xml + len, cap - len, "<iq type='set' id='big'><block "
                                                  "xmlns='urn:xmpp:blocking'>");
    for (int i = N - 1; i >= 0; i--) /* descending, and every tenth twice */
        len += (size_t)snprintf(xml + len, cap - len, "<item jid='u%04d@x'/>%s", i,
                                i % 10 == 0 ? "<item jid='AA@X'/>" : "");
    snprintf(xml + len, cap - len, "</block></iq>");
    scripted_send(&s, xml);
    CHECK_STR(epode_stanza_get_type(next_iq(&s)), "result");
    CHECK_INT(epode_blocking_count(b), N + 2); /* u0500 and aa were there */
    for (size_t i = 1; i < epode_blocking_count(b); i++)
        CHECK(strcmp(epode_blocking_at(b, i - 1), epode_blocking_at(b, i)) < 0);
    CHECK_STR(epode_blocking_at(b, 0), "aa@x");
    CHECK_STR(epode_blocking_at(b, N + 1), "zz@x");
    /* unblock every other one in one push */
    len = (size_t)snprintf(xml, cap, "<iq type='set' id='un'><unblock xmlns='urn:xmpp:blocking'>");
    for (int i = 0; i < N; i += 2)
        len += (size_t)snprintf(xml + len, cap - len, "<item jid='u%04d@x'/>", i);
    snprintf(xml + len, cap - len, "<item jid='not-there@x'/></unblock></iq>");
    scripted_send(&s, xml);
    CHECK_STR(epode_stanza_get_type(next_iq(&s)), "result");
    CHECK_INT(epode_blocking_count(b), N / 2 + 2);
    CHECK_INT(epode_blocking_is_blocked(b, "u0001@x"), 1);
    CHECK_INT(epode_blocking_is_blocked(b, "u0002@x"), 0);
    for (size_t i = 1; i < epode_blocking_count(b); i++)
        CHECK(strcmp(epode_blocking_at(b, i - 1), epode_blocking_at(b, i)) < 0);
    free(xml);
    epode_blocking_free(b);
    scripted_free(&s);
}

TEST(blocking_outlives_its_connection)
{
    scripted_mem mm;
    scripted_mem_init(&mm);
    scripted s;
    CHECK_INT(scripted_login_mem(&s, &mm.mem, "example.com", ME), 0);
    seen a = {0};
    epode_blocking_t *b;
    CHECK_INT(epode_blocking_new(s.conn, on_event, &a, &b), 0);
    scripted_pump(&s);
    answer_next(&s, "<blocklist xmlns='urn:xmpp:blocking'><item jid='a@x'/></blocklist>");
    const char *one[] = {"z@x"};
    CHECK_INT(epode_blocking_block(b, one, 1, on_result, &a), 0);
    scripted_pump(&s);
    epode_conn_free(s.conn);
    s.conn = NULL;
    CHECK_INT(epode_blocking_fetch(b, on_result, &a), EPODE_ESTATE);
    CHECK_INT(epode_blocking_count(b), 1);
    CHECK_INT(a.results, 0);
    epode_blocking_free(b);
    CHECK_INT(a.results, 1); /* told at free */
    CHECK_INT(a.status, EPODE_ECANCELED);
    scripted_free(&s);
    CHECK_INT(mm.live, 0);
}

/* Every allocation failing in turn: only 0 and EPODE_ENOMEM come back,
 * and nothing is left behind. */
TEST(blocking_survives_every_failing_allocation)
{
    int swept = 0;
    for (long fail = 0; fail < 400; fail++) {
        scripted_mem mm;
        scripted_mem_init(&mm);
        scripted s;
        CHECK_INT(scripted_login_mem(&s, &mm.mem, "example.com", ME), 0);
        seen a = {0};
        epode_blocking_t *b = NULL;
        mm.fail_at = mm.calls + fail;
        int rc = epode_blocking_new(s.conn, on_event, &a, &b);
        if (rc != 0 && rc != EPODE_ENOMEM)
            printf("# fail at %ld: %s\n", fail, epode_err_name(rc));
        CHECK(rc == 0 || rc == EPODE_ENOMEM);
        if (rc == 0) {
            scripted_pump(&s);
            answer_next(&s, "<blocklist xmlns='urn:xmpp:blocking'><item jid='a@x'/>"
                            "<item jid='b@x'/></blocklist>");
            scripted_send(&s, "<iq type='set' id='p'><block xmlns='urn:xmpp:blocking'>"
                              "<item jid='c@x'/></block></iq>");
            const char *one[] = {"a@x"};
            rc = epode_blocking_unblock(b, one, 1, on_result, &a);
            /* ESTATE: a failed write of our own ended the stream */
            CHECK(rc == 0 || rc == EPODE_ENOMEM || rc == EPODE_ESTATE);
            scripted_pump(&s);
            answer_next(&s, NULL);
        }
        int done = mm.fail_at > mm.calls;
        mm.fail_at = -1;
        epode_blocking_free(b);
        scripted_free(&s);
        CHECK_INT(mm.live, 0);
        swept++;
        if (done)
            break;
    }
    printf("# %d allocation points swept\n", swept);
}
