/* tests/unit/test_im_nickname.c — the nickname helper (XEP-0172) against
 * a scripted server: publishing ours (and clearing it), our nick in the
 * subscription requests we send, nicks learnt from PEP notifications,
 * subscription requests and messages, and failing allocations. */
#include "test.h"

#include "scripted.h"

TEST_MAIN

#define ME "juliet@capulet.lit/balcony"

typedef struct seen {
    int results, status, events;
    epode_stanza_cond_t cond;
    char jid[128], nick[128];
    epode_nickname_source_t source;
} seen;

static void on_nick(epode_nickname_t *n, const char *jid, const char *nick,
                    epode_nickname_source_t source, void *user)
{
    (void)n;
    seen *s = user;
    s->events++;
    snprintf(s->jid, sizeof s->jid, "%s", jid);
    snprintf(s->nick, sizeof s->nick, "%s", nick);
    s->source = source;
}

static void on_result(epode_nickname_t *n, int status, epode_stanza_cond_t cond,
                      epode_pubsub_error_t perr, void *user)
{
    (void)n, (void)perr;
    seen *s = user;
    s->results++;
    s->status = status;
    s->cond = cond;
}

static epode_stanza_t *next_of(scripted *s, const char *name)
{
    epode_stanza_t *st;
    scripted_pump(s);
    while ((st = scripted_next(s)))
        if (strcmp(epode_stanza_get_name(st), name) == 0)
            return st;
    return NULL;
}

static void answer(scripted *s, epode_stanza_t *iq)
{
    char xml[256];
    snprintf(xml, sizeof xml, "<iq type='result' id='%s'/>", iq ? epode_stanza_get_id(iq) : "x");
    scripted_send(s, xml);
}

TEST(nickname_set_publishes_and_decorates_subscriptions)
{
    scripted s;
    CHECK_INT(scripted_login(&s, "juliet@capulet.lit", ME), 0);
    epode_pubsub_t *ps;
    epode_nickname_t *n;
    seen a = {0};
    CHECK_INT(epode_pubsub_new(s.conn, NULL, &ps), 0);
    CHECK_INT(epode_nickname_new(ps, on_nick, &a, &n), 0);
    CHECK(epode_nickname_get_own(n) == NULL);
    CHECK_INT(epode_nickname_set(n, "Jules", on_result, &a), 0);
    epode_stanza_t *iq = next_of(&s, "iq");
    epode_stanza_t *pub = epode_stanza_find_child(epode_stanza_find_child(iq, "pubsub", NULL), "publish", NULL);
    CHECK_STR(epode_stanza_get_attr(pub, "node"), "http://jabber.org/protocol/nick");
    CHECK_STR(epode_stanza_child_text(epode_stanza_find_child(pub, "item", NULL), "nick", EPODE_NS_NICK), "Jules");
    answer(&s, iq);
    CHECK_INT(a.results, 1);
    CHECK_INT(a.status, 0);
    CHECK_STR(epode_nickname_get_own(n), "Jules");
    CHECK_INT(epode_presence_subscribe(s.conn, "romeo@montague.lit", NULL), 0);
    epode_stanza_t *sub = next_of(&s, "presence");
    CHECK_STR(epode_nickname_from_stanza(sub), "Jules");
    /* an available presence is left alone */
    CHECK_INT(epode_presence_send(s.conn, EPODE_SHOW_AVAILABLE, NULL, 0), 0);
    CHECK(epode_nickname_from_stanza(next_of(&s, "presence")) == NULL);
    /* clearing: an empty <nick/>, nothing added any more */
    CHECK_INT(epode_nickname_set(n, NULL, on_result, &a), 0);
    iq = next_of(&s, "iq");
    pub = epode_stanza_find_child(epode_stanza_find_child(iq, "pubsub", NULL), "publish", NULL);
    CHECK_STR(epode_nickname_from_stanza(epode_stanza_find_child(pub, "item", NULL)), "");
    answer(&s, iq);
    CHECK_INT(epode_presence_subscribe(s.conn, "tybalt@capulet.lit", NULL), 0);
    CHECK(epode_nickname_from_stanza(next_of(&s, "presence")) == NULL);
    epode_nickname_free(n);
    epode_pubsub_free(ps);
    scripted_free(&s);
}

TEST(nickname_learnt_from_pep_presence_and_messages)
{
    scripted s;
    CHECK_INT(scripted_login(&s, "juliet@capulet.lit", ME), 0);
    epode_disco_t *disco;
    epode_pubsub_t *ps;
    epode_nickname_t *n;
    seen a = {0};
    CHECK_INT(epode_disco_new(s.conn, &disco), 0);
    CHECK_INT(epode_pubsub_new(s.conn, disco, &ps), 0);
    CHECK_INT(epode_nickname_new(ps, on_nick, &a, &n), 0);
    epode_stanza_t *q;
    epode_disco_info_t *info;
    CHECK_INT(epode_disco_build_info(disco, NULL, &q), 0);
    CHECK_INT(epode_disco_info_parse(q, &info), 0);
    CHECK_INT(epode_disco_info_has_feature(info, "http://jabber.org/protocol/nick+notify"), 1);
    epode_disco_info_free(info);
    epode_stanza_unref(q);
    scripted_send(&s, "<message from='romeo@montague.lit'><event xmlns='http://jabber.org/protocol/pubsub#event'>"
                      "<items node='http://jabber.org/protocol/nick'><item id='current'><nick xmlns="
                      "'http://jabber.org/protocol/nick'>Romeo</nick></item></items></event></message>");
    CHECK_INT(a.events, 1);
    CHECK_STR(a.jid, "romeo@montague.lit");
    CHECK_STR(a.nick, "Romeo");
    CHECK_INT(a.source, EPODE_NICKNAME_PEP);
    scripted_send(&s, "<presence from='benvolio@montague.lit' type='subscribe'><nick xmlns="
                      "'http://jabber.org/protocol/nick'>Ben</nick></presence>");
    CHECK_INT(a.events, 2);
    CHECK_STR(a.nick, "Ben");
    CHECK_INT(a.source, EPODE_NICKNAME_PRESENCE);
    scripted_send(&s, "<message from='nurse@capulet.lit/x' type='chat'><body>hi</body><nick xmlns="
                      "'http://jabber.org/protocol/nick'>Nurse</nick></message>");
    CHECK_INT(a.events, 3);
    CHECK_STR(a.jid, "nurse@capulet.lit/x");
    CHECK_INT(a.source, EPODE_NICKNAME_MESSAGE);
    /* not nicks: empty, an error, a foreign payload on the node */
    scripted_send(&s, "<message from='a@b'><nick xmlns='http://jabber.org/protocol/nick'/></message>");
    scripted_send(&s, "<message from='a@b' type='error'><nick xmlns='http://jabber.org/protocol/nick'>E</nick></message>");
    scripted_send(&s, "<message from='a@b'><event xmlns='http://jabber.org/protocol/pubsub#event'><items node="
                      "'http://jabber.org/protocol/nick'><item id='c'><x xmlns='urn:x'/></item></items></event></message>");
    CHECK_INT(a.events, 3);
    CHECK_STR(epode_nickname_source_name(EPODE_NICKNAME_MESSAGE), "message");
    CHECK(epode_nickname_source_name((epode_nickname_source_t)4) == NULL);
    epode_nickname_free(n);
    CHECK_INT(epode_disco_build_info(disco, NULL, &q), 0);
    CHECK_INT(epode_disco_info_parse(q, &info), 0);
    CHECK_INT(epode_disco_info_has_feature(info, "http://jabber.org/protocol/nick+notify"), 0);
    epode_disco_info_free(info);
    epode_stanza_unref(q);
    epode_pubsub_free(ps);
    epode_disco_free(disco);
    scripted_free(&s);
}

TEST(nickname_survives_every_failing_allocation)
{
    int swept = 0;
    for (long fail = 0; fail < 400; fail++) {
        scripted_mem mm;
        scripted_mem_init(&mm);
        scripted s;
        CHECK_INT(scripted_login_mem(&s, &mm.mem, "juliet@capulet.lit", ME), 0);
        seen a = {0};
        epode_pubsub_t *ps = NULL;
        epode_nickname_t *n = NULL;
        mm.fail_at = mm.calls + fail;
        int rc = epode_pubsub_new(s.conn, NULL, &ps);
        if (rc == 0)
            rc = epode_nickname_new(ps, on_nick, &a, &n);
        CHECK(rc == 0 || rc == EPODE_ENOMEM);
        if (rc == 0) {
            rc = epode_nickname_set(n, "J", on_result, &a);
            CHECK(rc == 0 || rc == EPODE_ENOMEM || rc == EPODE_ESTATE);
            answer(&s, next_of(&s, "iq"));
            epode_presence_subscribe(s.conn, "romeo@montague.lit", NULL);
            scripted_send(&s, "<presence from='b@m' type='subscribe'><nick xmlns='http://jabber.org/protocol/nick'>"
                              "B</nick></presence>");
        }
        int done = mm.fail_at > mm.calls;
        mm.fail_at = -1;
        epode_nickname_free(n);
        epode_pubsub_free(ps);
        scripted_free(&s);
        CHECK_INT(mm.live, 0);
        swept++;
        if (done)
            break;
    }
    printf("# %d allocation points swept\n", swept);
}
