/* tests/unit/test_im_avatar.c — the avatar helper (XEP-0084, XEP-0153)
 * against a scripted server: publish (data then metadata, hash and
 * base64 right), fetch (metadata, then data checked against its SHA-1),
 * no avatar, hostile data (bad base64, a wrong hash, too large),
 * metadata notifications, hashes from presence and in ours, disable,
 * and failing allocations. */
#include "test.h"

#include "scripted.h"

TEST_MAIN

#define ME "juliet@capulet.lit/balcony"
/* "hello" and its SHA-1 */
#define HELLO_SHA1 "aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d"

typedef struct seen {
    int results, status;
    epode_stanza_cond_t cond;
    char id[64], jid[128], type[64];
    unsigned char data[64];
    size_t len;
    int got_data;
    int events;
    char ev_jid[128], ev_id[64];
    int ev_null_id;
    epode_avatar_source_t ev_source;
} seen;

static void on_result(epode_avatar_t *av, int status, epode_stanza_cond_t cond,
                      epode_pubsub_error_t perr, const char *id, void *user)
{
    (void)av, (void)perr;
    seen *s = user;
    s->results++;
    s->status = status;
    s->cond = cond;
    snprintf(s->id, sizeof s->id, "%s", id ? id : "(null)");
}

static void on_fetch(epode_avatar_t *av, int status, epode_stanza_cond_t cond, const char *jid,
                     const unsigned char *data, size_t len, const char *id, const char *type,
                     void *user)
{
    (void)av;
    seen *s = user;
    s->results++;
    s->status = status;
    s->cond = cond;
    s->got_data = data != NULL;
    s->len = len;
    if (data && len <= sizeof s->data)
        memcpy(s->data, data, len);
    snprintf(s->jid, sizeof s->jid, "%s", jid ? jid : "(null)");
    snprintf(s->id, sizeof s->id, "%s", id ? id : "(null)");
    snprintf(s->type, sizeof s->type, "%s", type ? type : "(null)");
}

static void on_event(epode_avatar_t *av, const char *jid, const char *id, const char *type,
                     epode_avatar_source_t source, void *user)
{
    (void)av, (void)type;
    seen *s = user;
    s->events++;
    snprintf(s->ev_jid, sizeof s->ev_jid, "%s", jid);
    snprintf(s->ev_id, sizeof s->ev_id, "%s", id ? id : "");
    s->ev_null_id = id == NULL;
    s->ev_source = source;
}

static epode_stanza_t *next_iq(scripted *s)
{
    epode_stanza_t *st;
    scripted_pump(s);
    while ((st = scripted_next(s)))
        if (strcmp(epode_stanza_get_name(st), "iq") == 0)
            return st;
    return NULL;
}

static void answer(scripted *s, epode_stanza_t *iq, const char *payload)
{
    char xml[8192];
    const char *to = iq ? epode_stanza_get_to(iq) : NULL;
    snprintf(xml, sizeof xml, "<iq type='result' id='%s'%s%s%s>%s</iq>", iq ? epode_stanza_get_id(iq) : "x",
             to ? " from='" : "", to ? to : "", to ? "'" : "", payload ? payload : "");
    scripted_send(s, xml);
}

static int setup(scripted *s, epode_pubsub_t **ps, epode_avatar_t **av, seen *a)
{
    if (scripted_login(s, "juliet@capulet.lit", ME) < 0 || epode_pubsub_new(s->conn, NULL, ps) < 0 ||
        epode_avatar_new(*ps, on_event, a, av) < 0)
        return -1;
    return 0;
}

TEST(avatar_hash_is_sha1_hex)
{
    char h[41];
    CHECK_INT(epode_avatar_hash((const unsigned char *)"hello", 5, h, sizeof h), 0);
    CHECK_STR(h, HELLO_SHA1);
    CHECK_INT(epode_avatar_hash((const unsigned char *)"hello", 5, h, 40), EPODE_ERANGE);
    CHECK_STR(epode_avatar_source_name(EPODE_AVATAR_VCARD), "vcard");
    CHECK(epode_avatar_source_name((epode_avatar_source_t)0) == NULL);
}

TEST(avatar_publish_sends_data_then_metadata)
{
    scripted s;
    epode_pubsub_t *ps;
    epode_avatar_t *av;
    seen a = {0};
    CHECK_INT(setup(&s, &ps, &av, &a), 0);
    CHECK_INT(epode_avatar_publish(av, (const unsigned char *)"hello", 5, NULL, 64, 0, on_result, &a), 0);
    epode_stanza_t *iq = next_iq(&s);
    epode_stanza_t *pub = epode_stanza_find_child(epode_stanza_find_child(iq, "pubsub", NULL), "publish", NULL);
    CHECK_STR(epode_stanza_get_attr(pub, "node"), "urn:xmpp:avatar:data");
    epode_stanza_t *it = epode_stanza_find_child(pub, "item", NULL);
    CHECK_STR(epode_stanza_get_attr(it, "id"), HELLO_SHA1);
    CHECK_STR(epode_stanza_child_text(it, "data", "urn:xmpp:avatar:data"), "aGVsbG8=");
    answer(&s, iq, NULL);
    CHECK_INT(a.results, 0);
    iq = next_iq(&s);
    pub = epode_stanza_find_child(epode_stanza_find_child(iq, "pubsub", NULL), "publish", NULL);
    CHECK_STR(epode_stanza_get_attr(pub, "node"), "urn:xmpp:avatar:metadata");
    it = epode_stanza_find_child(pub, "item", NULL);
    CHECK_STR(epode_stanza_get_attr(it, "id"), HELLO_SHA1);
    epode_stanza_t *info = epode_stanza_find_child(epode_stanza_find_child(it, "metadata", NULL), "info", NULL);
    CHECK_STR(epode_stanza_get_attr(info, "bytes"), "5");
    CHECK_STR(epode_stanza_get_attr(info, "type"), "image/png");
    CHECK_STR(epode_stanza_get_attr(info, "width"), "64");
    CHECK(epode_stanza_get_attr(info, "height") == NULL);
    CHECK(epode_avatar_vcard_hash(av) == NULL);
    answer(&s, iq, NULL);
    CHECK_INT(a.results, 1);
    CHECK_INT(a.status, 0);
    CHECK_STR(a.id, HELLO_SHA1);
    CHECK_STR(epode_avatar_vcard_hash(av), HELLO_SHA1);
    /* our next available presence carries the hash; a subscription does not */
    CHECK_INT(epode_presence_send(s.conn, EPODE_SHOW_AVAILABLE, NULL, 0), 0);
    CHECK_INT(epode_presence_subscribe(s.conn, "romeo@montague.lit", NULL), 0);
    scripted_pump(&s);
    epode_stanza_t *st, *avail = NULL, *sub = NULL;
    while ((st = scripted_next(&s)))
        if (strcmp(epode_stanza_get_name(st), "presence") == 0) {
            if (epode_stanza_get_type(st))
                sub = st;
            else
                avail = st;
        }
    CHECK(avail && sub);
    CHECK_STR(epode_avatar_presence_hash(avail), HELLO_SHA1);
    CHECK(epode_avatar_presence_hash(sub) == NULL);
    /* a failed data publish ends it there */
    CHECK_INT(epode_avatar_publish(av, (const unsigned char *)"x", 1, "image/jpeg", 0, 0, on_result, &a), 0);
    iq = next_iq(&s);
    char xml[512];
    snprintf(xml, sizeof xml, "<iq type='error' id='%s'><error type='modify'><not-acceptable xmlns="
             "'urn:ietf:params:xml:ns:xmpp-stanzas'/><payload-too-big xmlns='http://jabber.org/protocol/"
             "pubsub#errors'/></error></iq>", epode_stanza_get_id(iq));
    scripted_send(&s, xml);
    CHECK_INT(a.results, 2);
    CHECK_INT(a.cond, EPODE_COND_NOT_ACCEPTABLE);
    CHECK(next_iq(&s) == NULL);
    CHECK_STR(epode_avatar_vcard_hash(av), HELLO_SHA1);
    /* argument checks */
    CHECK_INT(epode_avatar_publish(av, NULL, 0, NULL, 0, 0, NULL, NULL), EPODE_EINVAL);
    CHECK_INT(epode_avatar_publish(av, (const unsigned char *)"x", 1, "", 0, 0, NULL, NULL), EPODE_EINVAL);
    CHECK_INT(epode_avatar_set_vcard_hash(av, "nothex"), EPODE_EINVAL);
    CHECK_INT(epode_avatar_set_vcard_hash(av, "AAF4C61DDCC5E8A2DABEDE0F3B482CD9AEA9434D"), 0);
    CHECK_STR(epode_avatar_vcard_hash(av), HELLO_SHA1);
    epode_avatar_free(av);
    epode_pubsub_free(ps);
    scripted_free(&s);
}

TEST(avatar_publish_sends_our_presence_again_with_the_hash)
{
    scripted s;
    epode_pubsub_t *ps;
    epode_avatar_t *av;
    seen a = {0};
    CHECK_INT(setup(&s, &ps, &av, &a), 0);
    CHECK_INT(epode_presence_send(s.conn, EPODE_SHOW_AWAY, "out", 0), 0);
    CHECK_INT(epode_presence_send_to(s.conn, "room@muc.lit/me", EPODE_SHOW_AVAILABLE, NULL, 0), 0);
    scripted_pump(&s);
    epode_stanza_t *st;
    while ((st = scripted_next(&s)))
        CHECK(epode_avatar_presence_hash(st) == NULL); /* no avatar yet: nothing added */
    CHECK_INT(epode_avatar_publish(av, (const unsigned char *)"hello", 5, NULL, 0, 0, on_result, &a), 0);
    answer(&s, next_iq(&s), NULL);
    answer(&s, next_iq(&s), NULL);
    CHECK_INT(a.results, 1);
    scripted_pump(&s);
    epode_stanza_t *again = NULL;
    int n = 0;
    while ((st = scripted_next(&s)))
        if (strcmp(epode_stanza_get_name(st), "presence") == 0) {
            again = st;
            n++;
        }
    CHECK_INT(n, 1); /* the broadcast one, not the directed one */
    CHECK(again && epode_stanza_get_to(again) == NULL);
    CHECK_STR(epode_avatar_presence_hash(again), HELLO_SHA1);
    CHECK_STR(epode_stanza_child_text(again, "show", NULL), "away");
    CHECK_STR(epode_stanza_child_text(again, "status", NULL), "out");
    /* the same avatar again: nothing changes, nothing sent */
    CHECK_INT(epode_avatar_publish(av, (const unsigned char *)"hello", 5, NULL, 0, 0, on_result, &a), 0);
    answer(&s, next_iq(&s), NULL);
    answer(&s, next_iq(&s), NULL);
    scripted_pump(&s);
    n = 0;
    while ((st = scripted_next(&s)))
        n += strcmp(epode_stanza_get_name(st), "presence") == 0;
    CHECK_INT(n, 0);
    /* after an unavailable broadcast nothing is sent again */
    CHECK_INT(epode_presence_send(s.conn, EPODE_SHOW_UNAVAILABLE, NULL, 0), 0);
    CHECK_INT(epode_avatar_disable(av, on_result, &a), 0);
    answer(&s, next_iq(&s), NULL);
    scripted_pump(&s);
    n = 0;
    while ((st = scripted_next(&s)))
        n += strcmp(epode_stanza_get_name(st), "presence") == 0 && !epode_stanza_get_type(st);
    CHECK_INT(n, 0);
    epode_avatar_free(av);
    epode_pubsub_free(ps);
    scripted_free(&s);
}

TEST(avatar_fetch_checks_the_bytes)
{
    scripted s;
    epode_pubsub_t *ps;
    epode_avatar_t *av;
    seen a = {0};
    CHECK_INT(setup(&s, &ps, &av, &a), 0);
    CHECK_INT(epode_avatar_fetch(av, "romeo@montague.lit", on_fetch, &a), 0);
    epode_stanza_t *iq = next_iq(&s);
    CHECK_STR(epode_stanza_get_to(iq), "romeo@montague.lit");
    epode_stanza_t *items = epode_stanza_find_child(epode_stanza_find_child(iq, "pubsub", NULL), "items", NULL);
    CHECK_STR(epode_stanza_get_attr(items, "node"), "urn:xmpp:avatar:metadata");
    answer(&s, iq, "<pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='urn:xmpp:avatar:metadata'>"
                   "<item id='" HELLO_SHA1 "'><metadata xmlns='urn:xmpp:avatar:metadata'><info bytes='5' id='"
                   HELLO_SHA1 "' type='image/png'/></metadata></item></items></pubsub>");
    iq = next_iq(&s);
    items = epode_stanza_find_child(epode_stanza_find_child(iq, "pubsub", NULL), "items", NULL);
    CHECK_STR(epode_stanza_get_attr(items, "node"), "urn:xmpp:avatar:data");
    CHECK_STR(epode_stanza_get_attr(epode_stanza_find_child(items, "item", NULL), "id"), HELLO_SHA1);
    answer(&s, iq, "<pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='urn:xmpp:avatar:data'>"
                   "<item id='" HELLO_SHA1 "'><data xmlns='urn:xmpp:avatar:data'>aGVs\nbG8=</data></item>"
                   "</items></pubsub>");
    CHECK_INT(a.results, 1);
    CHECK_INT(a.status, 0);
    CHECK_INT(a.got_data, 1);
    CHECK_INT(a.len, 5);
    CHECK(memcmp(a.data, "hello", 5) == 0);
    CHECK_STR(a.type, "image/png");
    CHECK_STR(a.id, HELLO_SHA1);
    CHECK_STR(a.jid, "romeo@montague.lit");
    /* a wrong hash, bad base64, too large: refused */
    const char *bad[] = {"aGVsbG9v", "aGV$bG8=", "aGVsbG8=="};
    for (int i = 0; i < 3; i++) {
        CHECK_INT(epode_avatar_fetch(av, "romeo@montague.lit", on_fetch, &a), 0);
        answer(&s, next_iq(&s), "<pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='urn:xmpp:"
                                "avatar:metadata'><item id='" HELLO_SHA1 "'><metadata xmlns='urn:xmpp:avatar:"
                                "metadata'><info bytes='5' id='" HELLO_SHA1 "' type='image/png'/></metadata>"
                                "</item></items></pubsub>");
        char xml[1024];
        snprintf(xml, sizeof xml, "<pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='urn:xmpp:"
                 "avatar:data'><item id='" HELLO_SHA1 "'><data xmlns='urn:xmpp:avatar:data'>%s</data></item>"
                 "</items></pubsub>", bad[i]);
        answer(&s, next_iq(&s), xml);
        CHECK_INT(a.results, 2 + i);
        CHECK_INT(a.status, EPODE_EPROTOCOL);
        CHECK_INT(a.got_data, 0);
    }
    CHECK_INT(epode_avatar_set_max_bytes(av, 4), 0);
    CHECK_INT(epode_avatar_fetch(av, "romeo@montague.lit", on_fetch, &a), 0);
    answer(&s, next_iq(&s), "<pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='urn:xmpp:"
                            "avatar:metadata'><item id='" HELLO_SHA1 "'><metadata xmlns='urn:xmpp:avatar:"
                            "metadata'><info id='" HELLO_SHA1 "' type='image/png'/></metadata>"
                            "</item></items></pubsub>");
    answer(&s, next_iq(&s), "<pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='urn:xmpp:"
                            "avatar:data'><item id='" HELLO_SHA1 "'><data xmlns='urn:xmpp:avatar:data'>"
                            "aGVsbG8=</data></item></items></pubsub>");
    CHECK_INT(a.status, EPODE_ELIMIT);
    CHECK_INT(epode_avatar_set_max_bytes(av, 0), 0);
    /* no metadata node / empty metadata: no avatar, no error */
    CHECK_INT(epode_avatar_fetch(av, "nobody@montague.lit", on_fetch, &a), 0);
    iq = next_iq(&s);
    char xml[512];
    snprintf(xml, sizeof xml, "<iq type='error' id='%s' from='nobody@montague.lit'><error type='cancel'>"
             "<item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>", epode_stanza_get_id(iq));
    int before = a.results;
    scripted_send(&s, xml);
    CHECK_INT(a.results, before + 1);
    CHECK_INT(a.status, 0);
    CHECK_INT(a.cond, EPODE_COND_NONE);
    CHECK_INT(a.got_data, 0);
    CHECK_INT(epode_avatar_fetch(av, "romeo@montague.lit", on_fetch, &a), 0);
    answer(&s, next_iq(&s), "<pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='urn:xmpp:"
                            "avatar:metadata'><item id='current'><metadata xmlns='urn:xmpp:avatar:metadata'/>"
                            "</item></items></pubsub>");
    CHECK_INT(a.results, before + 2);
    CHECK_INT(a.got_data, 0);
    CHECK(next_iq(&s) == NULL);
    CHECK_INT(epode_avatar_fetch(av, "bad@@jid", on_fetch, &a), EPODE_EJID);
    /* freeing with a fetch open: canceled */
    CHECK_INT(epode_avatar_fetch(av, "romeo@montague.lit", on_fetch, &a), 0);
    before = a.results;
    epode_avatar_free(av);
    CHECK_INT(a.results, before + 1);
    CHECK_INT(a.status, EPODE_ECANCELED);
    epode_pubsub_free(ps);
    scripted_free(&s);
}

TEST(avatar_announcements_from_pep_and_presence)
{
    scripted s;
    epode_pubsub_t *ps;
    epode_avatar_t *av;
    seen a = {0};
    CHECK_INT(setup(&s, &ps, &av, &a), 0);
    scripted_send(&s, "<message from='romeo@montague.lit'><event xmlns='http://jabber.org/protocol/pubsub#event'>"
                      "<items node='urn:xmpp:avatar:metadata'><item id='" HELLO_SHA1 "'><metadata xmlns="
                      "'urn:xmpp:avatar:metadata'><info bytes='5' id='" HELLO_SHA1 "' type='image/png'/>"
                      "</metadata></item></items></event></message>");
    CHECK_INT(a.events, 1);
    CHECK_STR(a.ev_jid, "romeo@montague.lit");
    CHECK_STR(a.ev_id, HELLO_SHA1);
    CHECK_INT(a.ev_source, EPODE_AVATAR_PEP);
    scripted_send(&s, "<message from='romeo@montague.lit'><event xmlns='http://jabber.org/protocol/pubsub#event'>"
                      "<items node='urn:xmpp:avatar:metadata'><item id='current'><metadata xmlns="
                      "'urn:xmpp:avatar:metadata'/></item></items></event></message>");
    CHECK_INT(a.events, 2);
    CHECK_STR(a.ev_id, "");
    /* XEP-0153 in presence */
    scripted_send(&s, "<presence from='romeo@montague.lit/orchard'><x xmlns='vcard-temp:x:update'><photo>"
                      HELLO_SHA1 "</photo></x></presence>");
    CHECK_INT(a.events, 3);
    CHECK_STR(a.ev_jid, "romeo@montague.lit/orchard");
    CHECK_STR(a.ev_id, HELLO_SHA1);
    CHECK_INT(a.ev_source, EPODE_AVATAR_VCARD);
    scripted_send(&s, "<presence from='romeo@montague.lit/orchard'><x xmlns='vcard-temp:x:update'/></presence>");
    CHECK_INT(a.events, 4);
    CHECK_INT(a.ev_null_id, 1); /* not ready to say */
    scripted_send(&s, "<presence from='romeo@montague.lit/orchard'><x xmlns='vcard-temp:x:update'><photo>"
                      "not-a-hash</photo></x></presence>");
    scripted_send(&s, "<presence from='romeo@montague.lit/orchard' type='subscribe'><x xmlns='vcard-temp:x:update'>"
                      "<photo>" HELLO_SHA1 "</photo></x></presence>");
    scripted_send(&s, "<presence from='romeo@montague.lit/orchard'/>");
    CHECK_INT(a.events, 4);
    /* disable: empty metadata, an empty photo in our presence */
    CHECK_INT(epode_avatar_disable(av, on_result, &a), 0);
    epode_stanza_t *iq = next_iq(&s);
    epode_stanza_t *it = epode_stanza_find_child(epode_stanza_find_child(epode_stanza_find_child(iq, "pubsub", NULL),
                                                                         "publish", NULL), "item", NULL);
    epode_stanza_t *md = epode_stanza_find_child(it, "metadata", "urn:xmpp:avatar:metadata");
    CHECK(md && !epode_stanza_first_child(md));
    answer(&s, iq, NULL);
    CHECK_INT(a.results, 1);
    CHECK_STR(epode_avatar_vcard_hash(av), "");
    CHECK_INT(epode_presence_send(s.conn, EPODE_SHOW_AWAY, NULL, 0), 0);
    scripted_pump(&s);
    epode_stanza_t *st, *pres = NULL;
    while ((st = scripted_next(&s)))
        if (strcmp(epode_stanza_get_name(st), "presence") == 0)
            pres = st;
    CHECK(pres != NULL);
    CHECK_STR(epode_avatar_presence_hash(pres), "");
    epode_avatar_free(av);
    epode_pubsub_free(ps);
    scripted_free(&s);
}

TEST(avatar_survives_every_failing_allocation)
{
    int swept = 0;
    for (long fail = 0; fail < 600; fail++) {
        scripted_mem mm;
        scripted_mem_init(&mm);
        scripted s;
        CHECK_INT(scripted_login_mem(&s, &mm.mem, "juliet@capulet.lit", ME), 0);
        seen a = {0};
        epode_pubsub_t *ps = NULL;
        epode_avatar_t *av = NULL;
        mm.fail_at = mm.calls + fail;
        int rc = epode_pubsub_new(s.conn, NULL, &ps);
        if (rc == 0)
            rc = epode_avatar_new(ps, on_event, &a, &av);
        CHECK(rc == 0 || rc == EPODE_ENOMEM);
        if (rc == 0) {
            rc = epode_avatar_publish(av, (const unsigned char *)"hello", 5, NULL, 0, 0, on_result, &a);
            CHECK(rc == 0 || rc == EPODE_ENOMEM || rc == EPODE_ESTATE);
            answer(&s, next_iq(&s), NULL);
            answer(&s, next_iq(&s), NULL);
            rc = epode_avatar_fetch(av, "romeo@montague.lit", on_fetch, &a);
            CHECK(rc == 0 || rc == EPODE_ENOMEM || rc == EPODE_ESTATE);
            answer(&s, next_iq(&s), "<pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='urn:xmpp:"
                                    "avatar:metadata'><item id='" HELLO_SHA1 "'><metadata xmlns='urn:xmpp:avatar:"
                                    "metadata'><info id='" HELLO_SHA1 "' type='image/png'/></metadata>"
                                    "</item></items></pubsub>");
            answer(&s, next_iq(&s), "<pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='urn:xmpp:"
                                    "avatar:data'><item id='" HELLO_SHA1 "'><data xmlns='urn:xmpp:avatar:data'>"
                                    "aGVsbG8=</data></item></items></pubsub>");
            epode_presence_send(s.conn, EPODE_SHOW_AVAILABLE, NULL, 0);
            scripted_pump(&s);
        }
        int done = mm.fail_at > mm.calls;
        mm.fail_at = -1;
        epode_avatar_free(av);
        epode_pubsub_free(ps);
        scripted_free(&s);
        CHECK_INT(mm.live, 0);
        swept++;
        if (done)
            break;
    }
    printf("# %d allocation points swept\n", swept);
}

/* A callback canceled by epode_avatar_free() that tries again: refused
 * with EPODE_ESTATE, one callback each, free does not spin. */
static int again_calls, again_rc;

static void fetch_again(epode_avatar_t *av, int status, epode_stanza_cond_t cond, const char *jid,
                        const unsigned char *data, size_t len, const char *id, const char *type,
                        void *user)
{
    (void)status, (void)cond, (void)jid, (void)data, (void)len, (void)id, (void)type, (void)user;
    if (++again_calls < 1000)
        again_rc = epode_avatar_fetch(av, NULL, fetch_again, NULL);
}

static void publish_again(epode_avatar_t *av, int status, epode_stanza_cond_t cond,
                          epode_pubsub_error_t perr, const char *id, void *user)
{
    (void)status, (void)cond, (void)perr, (void)id, (void)user;
    if (++again_calls < 1000)
        again_rc = epode_avatar_publish(av, (const unsigned char *)"hello", 5, NULL, 0, 0,
                                        publish_again, NULL);
}

TEST(avatar_free_refuses_a_retry_from_a_canceled_callback)
{
    scripted s;
    epode_pubsub_t *ps;
    epode_avatar_t *av;
    seen a = {0};
    CHECK_INT(setup(&s, &ps, &av, &a), 0);
    again_calls = 0;
    CHECK_INT(epode_avatar_fetch(av, NULL, fetch_again, NULL), 0);
    CHECK_INT(epode_avatar_publish(av, (const unsigned char *)"hello", 5, NULL, 0, 0,
                                   publish_again, NULL), 0);
    epode_avatar_free(av);
    CHECK_INT(again_calls, 2);
    CHECK_INT(again_rc, EPODE_ESTATE);
    epode_pubsub_free(ps);
    scripted_free(&s);
}
