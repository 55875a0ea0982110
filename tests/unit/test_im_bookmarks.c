/* tests/unit/test_im_bookmarks.c — the bookmarks helper (XEP-0402)
 * against a scripted server: the fetch at READY and the local list,
 * add with the XEP's publish-options (extensions kept), remove, changes
 * through notifications (only from our own account), autojoin through
 * the MUC helper, an absent node, and failing allocations. */
#include "test.h"

#include "scripted.h"

TEST_MAIN

#define ME "juliet@capulet.lit/balcony"

typedef struct seen {
    int events[32], nevents;
    char last_room[128];
    int results, status;
    epode_stanza_cond_t cond;
    epode_pubsub_error_t perr;
} seen;

static void on_event(epode_bookmarks_t *b, epode_bookmarks_event_t ev, const epode_bookmark_t *bm,
                     void *user)
{
    (void)b;
    seen *s = user;
    if (s->nevents < 32)
        s->events[s->nevents++] = (int)ev;
    snprintf(s->last_room, sizeof s->last_room, "%s", bm ? epode_bookmark_room(bm) : "");
}

static void on_result(epode_bookmarks_t *b, int status, epode_stanza_cond_t cond,
                      epode_pubsub_error_t perr, void *user)
{
    (void)b;
    seen *s = user;
    s->results++;
    s->status = status;
    s->cond = cond;
    s->perr = perr;
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
    snprintf(xml, sizeof xml, "<iq type='result' id='%s'>%s</iq>", iq ? epode_stanza_get_id(iq) : "x",
             payload ? payload : "");
    scripted_send(s, xml);
}

#define ITEMS(x) "<pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='urn:xmpp:bookmarks:1'>" x "</items></pubsub>"

static int setup(scripted *s, epode_pubsub_t **ps, epode_bookmarks_t **b, seen *a, const char *items)
{
    if (scripted_login(s, "juliet@capulet.lit", ME) < 0 || epode_pubsub_new(s->conn, NULL, ps) < 0 ||
        epode_bookmarks_new(*ps, on_event, a, b) < 0)
        return -1;
    epode_stanza_t *iq = next_iq(s);
    if (!iq || strcmp(epode_stanza_get_type(iq), "get") != 0)
        return -1;
    epode_stanza_t *it = epode_stanza_find_child(epode_stanza_find_child(iq, "pubsub", NULL), "items", NULL);
    if (!it || strcmp(epode_stanza_get_attr(it, "node"), "urn:xmpp:bookmarks:1") != 0)
        return -1;
    answer(s, iq, items);
    return 0;
}

TEST(bookmarks_fetch_at_ready_fills_the_list)
{
    scripted s;
    epode_pubsub_t *ps;
    epode_bookmarks_t *b;
    seen a = {0};
    CHECK_INT(setup(&s, &ps, &b, &a, ITEMS(
        "<item id='Orchard@Chat.Shakespeare.lit'><conference xmlns='urn:xmpp:bookmarks:1' name='The Orchard' "
        "autojoin='true'><nick>JC</nick><password>pw</password></conference></item>"
        "<item id='balcony@chat.shakespeare.lit'><conference xmlns='urn:xmpp:bookmarks:1'/></item>"
        "<item id='not a jid@@'><conference xmlns='urn:xmpp:bookmarks:1'/></item>"
        "<item id='x@y'><other xmlns='urn:x'/></item>"
        "<item id='full@jid.lit/res'><conference xmlns='urn:xmpp:bookmarks:1'/></item>")), 0);
    CHECK_INT(a.nevents, 1);
    CHECK_INT(a.events[0], EPODE_BOOKMARKS_LOADED);
    CHECK_INT(epode_bookmarks_received(b), 1);
    CHECK_INT(epode_bookmarks_count(b), 2);
    const epode_bookmark_t *bm = epode_bookmarks_at(b, 1);
    CHECK_STR(epode_bookmark_room(bm), "orchard@chat.shakespeare.lit");
    CHECK_STR(epode_bookmark_name(bm), "The Orchard");
    CHECK_STR(epode_bookmark_nick(bm), "JC");
    CHECK_STR(epode_bookmark_password(bm), "pw");
    CHECK_INT(epode_bookmark_autojoin(bm), 1);
    bm = epode_bookmarks_find(b, "Balcony@chat.shakespeare.lit");
    CHECK(bm != NULL);
    CHECK(epode_bookmark_name(bm) == NULL);
    CHECK_INT(epode_bookmark_autojoin(bm), 0);
    CHECK(epode_bookmarks_find(b, "nope@chat.shakespeare.lit") == NULL);
    CHECK_STR(epode_bookmarks_event_name(EPODE_BOOKMARKS_FETCH_FAILED), "fetch_failed");
    CHECK(epode_bookmarks_event_name((epode_bookmarks_event_t)9) == NULL);
    epode_bookmarks_free(b);
    epode_pubsub_free(ps);
    scripted_free(&s);
}

TEST(bookmarks_absent_node_is_an_empty_list)
{
    scripted s;
    epode_pubsub_t *ps;
    epode_bookmarks_t *b;
    seen a = {0};
    CHECK_INT(scripted_login(&s, "juliet@capulet.lit", ME), 0);
    CHECK_INT(epode_pubsub_new(s.conn, NULL, &ps), 0);
    CHECK_INT(epode_bookmarks_new(ps, on_event, &a, &b), 0);
    epode_stanza_t *iq = next_iq(&s);
    char xml[512];
    snprintf(xml, sizeof xml, "<iq type='error' id='%s'><error type='cancel'><item-not-found xmlns="
             "'urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>", epode_stanza_get_id(iq));
    scripted_send(&s, xml);
    CHECK_INT(a.nevents, 1);
    CHECK_INT(a.events[0], EPODE_BOOKMARKS_LOADED);
    CHECK_INT(epode_bookmarks_received(b), 1);
    /* another error at the next fetch: FETCH_FAILED, the list kept */
    CHECK_INT(epode_bookmarks_fetch(b, on_result, &a), 0);
    iq = next_iq(&s);
    snprintf(xml, sizeof xml, "<iq type='error' id='%s'><error type='cancel'><forbidden xmlns="
             "'urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>", epode_stanza_get_id(iq));
    scripted_send(&s, xml);
    CHECK_INT(a.results, 1);
    CHECK_INT(a.cond, EPODE_COND_FORBIDDEN);
    epode_bookmarks_free(b);
    epode_pubsub_free(ps);
    scripted_free(&s);
}

TEST(bookmarks_add_publishes_with_options_and_keeps_extensions)
{
    scripted s;
    epode_pubsub_t *ps;
    epode_bookmarks_t *b;
    seen a = {0};
    CHECK_INT(setup(&s, &ps, &b, &a, ITEMS("<item id='orchard@chat.lit'><conference xmlns='urn:xmpp:"
                                           "bookmarks:1' name='O'><extensions><state xmlns='urn:x:s'/>"
                                           "</extensions></conference></item>")), 0);
    CHECK_INT(epode_bookmarks_add(b, "Orchard@chat.lit", "Orchard", 1, "Jules", NULL, on_result, &a), 0);
    epode_stanza_t *iq = next_iq(&s);
    CHECK(iq != NULL);
    epode_stanza_t *p = epode_stanza_find_child(iq, "pubsub", EPODE_NS_PUBSUB);
    epode_stanza_t *pub = epode_stanza_find_child(p, "publish", NULL);
    CHECK_STR(epode_stanza_get_attr(pub, "node"), "urn:xmpp:bookmarks:1");
    epode_stanza_t *it = epode_stanza_find_child(pub, "item", NULL);
    CHECK_STR(epode_stanza_get_attr(it, "id"), "orchard@chat.lit");
    epode_stanza_t *conf = epode_stanza_find_child(it, "conference", EPODE_NS_BOOKMARKS);
    CHECK_STR(epode_stanza_get_attr(conf, "name"), "Orchard");
    CHECK_STR(epode_stanza_get_attr(conf, "autojoin"), "true");
    CHECK_STR(epode_stanza_child_text(conf, "nick", EPODE_NS_BOOKMARKS), "Jules");
    CHECK(epode_stanza_find_child(conf, "password", NULL) == NULL);
    epode_stanza_t *ext = epode_stanza_find_child(conf, "extensions", EPODE_NS_BOOKMARKS);
    CHECK(ext && epode_stanza_find_child(ext, "state", "urn:x:s"));
    epode_form_t *f;
    CHECK_INT(epode_form_parse(NULL, epode_stanza_find_child(epode_stanza_find_child(p, "publish-options", NULL),
                                                             "x", "jabber:x:data"), &f), 0);
    CHECK_STR(epode_form_get_form_type(f), EPODE_NS_PUBSUB_PUBLISH_OPTIONS);
    CHECK_STR(epode_form_get_value(f, "pubsub#persist_items"), "true");
    CHECK_STR(epode_form_get_value(f, "pubsub#max_items"), "max");
    CHECK_STR(epode_form_get_value(f, "pubsub#send_last_published_item"), "never");
    CHECK_STR(epode_form_get_value(f, "pubsub#access_model"), "whitelist");
    epode_form_free(f);
    answer(&s, iq, NULL);
    CHECK_INT(a.results, 1);
    CHECK_INT(a.status, 0);
    CHECK_INT(a.events[a.nevents - 1], EPODE_BOOKMARKS_UPDATED);
    CHECK_STR(epode_bookmark_nick(epode_bookmarks_find(b, "orchard@chat.lit")), "Jules");
    /* the server's notification of the same change: nothing new */
    int before = a.nevents;
    scripted_send(&s, "<message from='juliet@capulet.lit' to='" ME "'><event xmlns='http://jabber.org/"
                      "protocol/pubsub#event'><items node='urn:xmpp:bookmarks:1'><item id='orchard@chat.lit'>"
                      "<conference xmlns='urn:xmpp:bookmarks:1' name='Orchard' autojoin='true'><nick>Jules"
                      "</nick></conference></item></items></event></message>");
    CHECK_INT(a.nevents, before);
    /* a refused publish: the list unchanged, the conditions told */
    CHECK_INT(epode_bookmarks_add(b, "new@chat.lit", NULL, 0, NULL, NULL, on_result, &a), 0);
    iq = next_iq(&s);
    char xml[1024];
    snprintf(xml, sizeof xml, "<iq type='error' id='%s'><error type='cancel'><conflict xmlns="
             "'urn:ietf:params:xml:ns:xmpp-stanzas'/><precondition-not-met xmlns='http://jabber.org"
             "/protocol/pubsub#errors'/></error></iq>", epode_stanza_get_id(iq));
    scripted_send(&s, xml);
    CHECK_INT(a.results, 2);
    CHECK_INT(a.cond, EPODE_COND_CONFLICT);
    CHECK_INT(a.perr, EPODE_PUBSUB_ERR_PRECONDITION_NOT_MET);
    CHECK_INT(epode_bookmarks_count(b), 1);
    /* bad rooms */
    CHECK_INT(epode_bookmarks_add(b, "room@chat.lit/nick", NULL, 0, NULL, NULL, NULL, NULL), EPODE_EJID);
    CHECK_INT(epode_bookmarks_add(b, "chat.lit", NULL, 0, NULL, NULL, NULL, NULL), EPODE_EJID);
    CHECK_INT(epode_bookmarks_add(b, NULL, NULL, 0, NULL, NULL, NULL, NULL), EPODE_EINVAL);
    /* remove: a retract with notify */
    CHECK_INT(epode_bookmarks_remove(b, "orchard@chat.lit", on_result, &a), 0);
    iq = next_iq(&s);
    epode_stanza_t *ret = epode_stanza_find_child(epode_stanza_find_child(iq, "pubsub", NULL), "retract", NULL);
    CHECK_STR(epode_stanza_get_attr(ret, "notify"), "true");
    CHECK_STR(epode_stanza_get_attr(epode_stanza_find_child(ret, "item", NULL), "id"), "orchard@chat.lit");
    answer(&s, iq, NULL);
    CHECK_INT(a.events[a.nevents - 1], EPODE_BOOKMARKS_REMOVED);
    CHECK_STR(a.last_room, "orchard@chat.lit");
    CHECK_INT(epode_bookmarks_count(b), 0);
    epode_bookmarks_free(b);
    epode_pubsub_free(ps);
    scripted_free(&s);
}

/* A server that refuses some of the options (ejabberd 23.01 knows only
 * persist_items and access_model) is asked once more with those two. */
TEST(bookmarks_add_retries_with_fewer_options)
{
    scripted s;
    epode_pubsub_t *ps;
    epode_bookmarks_t *b;
    seen a = {0};
    CHECK_INT(setup(&s, &ps, &b, &a, ITEMS("")), 0);
    CHECK_INT(epode_bookmarks_add(b, "r@chat.lit", NULL, 1, NULL, NULL, on_result, &a), 0);
    epode_stanza_t *iq = next_iq(&s);
    char xml[1024];
    snprintf(xml, sizeof xml, "<iq type='error' id='%s'><error type='wait'><resource-constraint xmlns="
             "'urn:ietf:params:xml:ns:xmpp-stanzas'/><text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>"
             "Unknown field 'pubsub#max_items'</text></error></iq>", epode_stanza_get_id(iq));
    scripted_send(&s, xml);
    CHECK_INT(a.results, 0);
    iq = next_iq(&s);
    CHECK(iq != NULL);
    epode_form_t *f;
    epode_stanza_t *p = epode_stanza_find_child(iq, "pubsub", NULL);
    CHECK_INT(epode_form_parse(NULL, epode_stanza_find_child(epode_stanza_find_child(p, "publish-options", NULL),
                                                             "x", "jabber:x:data"), &f), 0);
    CHECK_STR(epode_form_get_value(f, "pubsub#persist_items"), "true");
    CHECK_STR(epode_form_get_value(f, "pubsub#access_model"), "whitelist");
    CHECK(epode_form_get_field(f, "pubsub#max_items") == NULL);
    epode_form_free(f);
    /* refused again: told, not asked a third time */
    snprintf(xml, sizeof xml, "<iq type='error' id='%s'><error type='wait'><resource-constraint xmlns="
             "'urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>", epode_stanza_get_id(iq));
    scripted_send(&s, xml);
    CHECK_INT(a.results, 1);
    CHECK_INT(a.cond, EPODE_COND_RESOURCE_CONSTRAINT);
    CHECK(next_iq(&s) == NULL);
    CHECK_INT(epode_bookmarks_count(b), 0);
    /* the second time it works */
    CHECK_INT(epode_bookmarks_add(b, "r@chat.lit", NULL, 1, NULL, NULL, on_result, &a), 0);
    iq = next_iq(&s);
    snprintf(xml, sizeof xml, "<iq type='error' id='%s'><error type='modify'><not-acceptable xmlns="
             "'urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>", epode_stanza_get_id(iq));
    scripted_send(&s, xml);
    answer(&s, next_iq(&s), NULL);
    CHECK_INT(a.results, 2);
    CHECK_INT(a.status, 0);
    CHECK_INT(a.cond, EPODE_COND_NONE);
    CHECK_INT(epode_bookmarks_count(b), 1);
    /* and the rest as node configuration */
    iq = next_iq(&s);
    CHECK(iq != NULL);
    epode_stanza_t *conf = epode_stanza_find_child(epode_stanza_find_child(iq, "pubsub", EPODE_NS_PUBSUB_OWNER),
                                                   "configure", NULL);
    CHECK_STR(epode_stanza_get_attr(conf, "node"), "urn:xmpp:bookmarks:1");
    CHECK_INT(epode_form_parse(NULL, epode_stanza_find_child(conf, "x", "jabber:x:data"), &f), 0);
    CHECK_STR(epode_form_get_form_type(f), EPODE_NS_PUBSUB_NODE_CONFIG);
    CHECK_STR(epode_form_get_value(f, "pubsub#notify_retract"), "true");
    CHECK_STR(epode_form_get_value(f, "pubsub#max_items"), "max");
    epode_form_free(f);
    answer(&s, iq, NULL);
    CHECK_INT(a.results, 2);
    epode_bookmarks_free(b);
    epode_pubsub_free(ps);
    scripted_free(&s);
}

TEST(bookmarks_notifications_only_from_our_account)
{
    scripted s;
    epode_pubsub_t *ps;
    epode_bookmarks_t *b;
    seen a = {0};
    CHECK_INT(setup(&s, &ps, &b, &a, ITEMS("")), 0);
    /* a contact's bookmarks notification is not ours */
    scripted_send(&s, "<message from='romeo@montague.lit'><event xmlns='http://jabber.org/protocol/"
                      "pubsub#event'><items node='urn:xmpp:bookmarks:1'><item id='evil@chat.lit'>"
                      "<conference xmlns='urn:xmpp:bookmarks:1' autojoin='1'/></item></items></event></message>");
    CHECK_INT(epode_bookmarks_count(b), 0);
    /* ours: added, then retracted */
    scripted_send(&s, "<message><event xmlns='http://jabber.org/protocol/pubsub#event'><items node="
                      "'urn:xmpp:bookmarks:1'><item id='good@chat.lit'><conference xmlns='urn:xmpp:"
                      "bookmarks:1' autojoin='1'/></item></items></event></message>");
    CHECK_INT(epode_bookmarks_count(b), 1);
    CHECK_INT(a.events[a.nevents - 1], EPODE_BOOKMARKS_ADDED);
    CHECK_INT(epode_bookmark_autojoin(epode_bookmarks_at(b, 0)), 1);
    scripted_send(&s, "<message from='juliet@capulet.lit'><event xmlns='http://jabber.org/protocol/"
                      "pubsub#event'><items node='urn:xmpp:bookmarks:1'><retract id='good@chat.lit'/>"
                      "</items></event></message>");
    CHECK_INT(epode_bookmarks_count(b), 0);
    CHECK_INT(a.events[a.nevents - 1], EPODE_BOOKMARKS_REMOVED);
    epode_bookmarks_free(b);
    epode_pubsub_free(ps);
    scripted_free(&s);
}

TEST(bookmarks_autojoin_joins_through_the_muc_helper)
{
    scripted s;
    epode_pubsub_t *ps;
    epode_bookmarks_t *b;
    epode_muc_t *muc;
    seen a = {0};
    CHECK_INT(scripted_login(&s, "juliet@capulet.lit", ME), 0);
    CHECK_INT(epode_muc_new(s.conn, NULL, NULL, &muc), 0);
    CHECK_INT(epode_pubsub_new(s.conn, NULL, &ps), 0);
    CHECK_INT(epode_bookmarks_new(ps, on_event, &a, &b), 0);
    CHECK_INT(epode_bookmarks_set_autojoin(b, muc, NULL), 0);
    answer(&s, next_iq(&s), ITEMS(
        "<item id='orchard@chat.lit'><conference xmlns='urn:xmpp:bookmarks:1' autojoin='true'>"
        "<nick>JC</nick><password>pw</password></conference></item>"
        "<item id='quiet@chat.lit'><conference xmlns='urn:xmpp:bookmarks:1' autojoin='false'/></item>"
        "<item id='lobby@chat.lit'><conference xmlns='urn:xmpp:bookmarks:1' autojoin='true'/></item>"));
    scripted_pump(&s);
    int joins = 0;
    epode_stanza_t *st;
    while ((st = scripted_next(&s))) {
        if (strcmp(epode_stanza_get_name(st), "presence") != 0)
            continue;
        const char *to = epode_stanza_get_to(st);
        joins++;
        if (strncmp(to, "orchard@", 8) == 0) {
            CHECK_STR(to, "orchard@chat.lit/JC");
            epode_stanza_t *x = epode_stanza_find_child(st, "x", "http://jabber.org/protocol/muc");
            CHECK_STR(epode_stanza_child_text(x, "password", NULL), "pw");
        } else {
            CHECK_STR(to, "lobby@chat.lit/juliet"); /* our local part */
        }
    }
    CHECK_INT(joins, 2);
    CHECK(epode_muc_find(muc, "quiet@chat.lit") == NULL);
    /* one arriving later with autojoin; the default nick now set */
    CHECK_INT(epode_bookmarks_set_autojoin(b, muc, "Jules"), 0);
    scripted_send(&s, "<message><event xmlns='http://jabber.org/protocol/pubsub#event'><items node="
                      "'urn:xmpp:bookmarks:1'><item id='late@chat.lit'><conference xmlns='urn:xmpp:"
                      "bookmarks:1' autojoin='true'/></item></items></event></message>");
    CHECK(epode_muc_find(muc, "late@chat.lit") != NULL);
    epode_bookmarks_free(b);
    epode_pubsub_free(ps);
    epode_muc_free(muc);
    scripted_free(&s);
}

TEST(bookmarks_notify_feature_and_free_cancels)
{
    scripted s;
    CHECK_INT(scripted_login(&s, "juliet@capulet.lit", ME), 0);
    epode_disco_t *disco;
    epode_pubsub_t *ps;
    epode_bookmarks_t *b;
    seen a = {0};
    CHECK_INT(epode_disco_new(s.conn, &disco), 0);
    CHECK_INT(epode_pubsub_new(s.conn, disco, &ps), 0);
    CHECK_INT(epode_bookmarks_new(ps, on_event, &a, &b), 0);
    epode_stanza_t *q;
    epode_disco_info_t *info;
    CHECK_INT(epode_disco_build_info(disco, NULL, &q), 0);
    CHECK_INT(epode_disco_info_parse(q, &info), 0);
    CHECK_INT(epode_disco_info_has_feature(info, "urn:xmpp:bookmarks:1+notify"), 1);
    epode_disco_info_free(info);
    epode_stanza_unref(q);
    CHECK_INT(epode_bookmarks_add(b, "r@chat.lit", NULL, 0, NULL, NULL, on_result, &a), 0);
    epode_bookmarks_free(b);
    CHECK_INT(a.results, 1);
    CHECK_INT(a.status, EPODE_ECANCELED);
    CHECK_INT(epode_disco_build_info(disco, NULL, &q), 0);
    CHECK_INT(epode_disco_info_parse(q, &info), 0);
    CHECK_INT(epode_disco_info_has_feature(info, "urn:xmpp:bookmarks:1+notify"), 0);
    epode_disco_info_free(info);
    epode_stanza_unref(q);
    epode_pubsub_free(ps);
    epode_disco_free(disco);
    scripted_free(&s);
}

TEST(bookmarks_survive_every_failing_allocation)
{
    int swept = 0;
    for (long fail = 0; fail < 600; fail++) {
        scripted_mem mm;
        scripted_mem_init(&mm);
        scripted s;
        CHECK_INT(scripted_login_mem(&s, &mm.mem, "juliet@capulet.lit", ME), 0);
        seen a = {0};
        epode_pubsub_t *ps = NULL;
        epode_bookmarks_t *b = NULL;
        mm.fail_at = mm.calls + fail;
        int rc = epode_pubsub_new(s.conn, NULL, &ps);
        if (rc == 0)
            rc = epode_bookmarks_new(ps, on_event, &a, &b);
        CHECK(rc == 0 || rc == EPODE_ENOMEM);
        if (rc == 0) {
            answer(&s, next_iq(&s), ITEMS("<item id='a@chat.lit'><conference xmlns='urn:xmpp:bookmarks:1'"
                                          " name='A'><nick>n</nick></conference></item>"));
            rc = epode_bookmarks_add(b, "b@chat.lit", "B", 1, "nick", "pw", on_result, &a);
            CHECK(rc == 0 || rc == EPODE_ENOMEM || rc == EPODE_ESTATE);
            answer(&s, next_iq(&s), NULL);
            scripted_send(&s, "<message><event xmlns='http://jabber.org/protocol/pubsub#event'><items "
                              "node='urn:xmpp:bookmarks:1'><retract id='a@chat.lit'/></items></event></message>");
        }
        int done = mm.fail_at > mm.calls;
        mm.fail_at = -1;
        epode_bookmarks_free(b);
        epode_pubsub_free(ps);
        scripted_free(&s);
        CHECK_INT(mm.live, 0);
        swept++;
        if (done)
            break;
    }
    printf("# %d allocation points swept\n", swept);
}

/* A callback canceled by epode_bookmarks_free() that tries again:
 * refused with EPODE_ESTATE, one callback each, free does not spin. */
static int again_calls, again_rc;

static void add_again(epode_bookmarks_t *b, int status, epode_stanza_cond_t cond,
                      epode_pubsub_error_t perr, void *user)
{
    (void)status, (void)cond, (void)perr, (void)user;
    if (++again_calls < 1000)
        again_rc = epode_bookmarks_add(b, "r@chat.lit", NULL, 0, NULL, NULL, add_again, NULL);
}

static void fetch_again(epode_bookmarks_t *b, int status, epode_stanza_cond_t cond,
                        epode_pubsub_error_t perr, void *user)
{
    (void)status, (void)cond, (void)perr, (void)user;
    if (++again_calls < 1000)
        again_rc = epode_bookmarks_fetch(b, fetch_again, NULL);
}

static void remove_again(epode_bookmarks_t *b, int status, epode_stanza_cond_t cond,
                         epode_pubsub_error_t perr, void *user)
{
    (void)status, (void)cond, (void)perr, (void)user;
    if (++again_calls < 1000)
        again_rc = epode_bookmarks_remove(b, "r@chat.lit", remove_again, NULL);
}

TEST(bookmarks_free_refuses_a_retry_from_a_canceled_callback)
{
    scripted s;
    epode_pubsub_t *ps;
    epode_bookmarks_t *b;
    seen a = {0};
    CHECK_INT(setup(&s, &ps, &b, &a, ITEMS("")), 0);
    again_calls = 0;
    CHECK_INT(epode_bookmarks_add(b, "r@chat.lit", NULL, 0, NULL, NULL, add_again, NULL), 0);
    CHECK_INT(epode_bookmarks_fetch(b, fetch_again, NULL), 0);
    CHECK_INT(epode_bookmarks_remove(b, "r@chat.lit", remove_again, NULL), 0);
    epode_bookmarks_free(b);
    CHECK_INT(again_calls, 3);
    CHECK_INT(again_rc, EPODE_ESTATE);
    epode_pubsub_free(ps);
    scripted_free(&s);
}
