/* tests/unit/test_im_pubsub.c — the pubsub helper (XEP-0060/0163) against
 * a scripted server: the shape of each request (publish with
 * publish-options, retract, fetch by id and by max, subscribe,
 * unsubscribe, delete), answers read into replies (item ids, items,
 * subscription state, errors with their pubsub#errors condition),
 * notifications delivered per node, +notify counted on the disco helper,
 * and hostile input: malformed events, retractions without id, floods of
 * items; freeing order and failing allocations. */
#include "test.h"

#include "scripted.h"

TEST_MAIN

#define ME "juliet@capulet.lit/balcony"

typedef struct seen {
    int replies, ok, status;
    epode_stanza_cond_t cond;
    epode_pubsub_error_t perr;
    char item_id[64], sub[32], subid[32], unsupported[64];
    size_t nitems;
    char items[4][64];
    int events[64], nevents;
    char ev_from[64], ev_node[64], ev_id[64], ev_payload[64];
} seen;

static void on_reply(epode_pubsub_t *ps, const epode_pubsub_reply_t *r, void *user)
{
    (void)ps;
    seen *s = user;
    s->replies++;
    s->ok = epode_pubsub_reply_ok(r);
    s->status = epode_pubsub_reply_status(r);
    s->cond = epode_pubsub_reply_cond(r);
    s->perr = epode_pubsub_reply_pubsub_error(r);
    snprintf(s->item_id, sizeof s->item_id, "%s", epode_pubsub_reply_item_id(r) ? epode_pubsub_reply_item_id(r) : "");
    snprintf(s->sub, sizeof s->sub, "%s", epode_pubsub_reply_subscription(r) ? epode_pubsub_reply_subscription(r) : "");
    snprintf(s->subid, sizeof s->subid, "%s", epode_pubsub_reply_subid(r) ? epode_pubsub_reply_subid(r) : "");
    snprintf(s->unsupported, sizeof s->unsupported, "%s", epode_pubsub_reply_unsupported(r) ? epode_pubsub_reply_unsupported(r) : "");
    s->nitems = epode_pubsub_reply_item_count(r);
    for (size_t i = 0; i < s->nitems && i < 4; i++) {
        const epode_pubsub_item_t *it = epode_pubsub_reply_item_at(r, i);
        epode_stanza_t *p = epode_pubsub_item_payload(it);
        snprintf(s->items[i], sizeof s->items[i], "%s:%s", epode_pubsub_item_id(it),
                 p ? epode_stanza_get_name(p) : "-");
    }
}

static void on_event(epode_pubsub_t *ps, epode_pubsub_event_type_t type, const char *from,
                     const char *node, const epode_pubsub_item_t *item, epode_stanza_t *msg,
                     void *user)
{
    (void)ps, (void)msg;
    seen *s = user;
    if (s->nevents < 64)
        s->events[s->nevents++] = (int)type;
    snprintf(s->ev_from, sizeof s->ev_from, "%s", from ? from : "(none)");
    snprintf(s->ev_node, sizeof s->ev_node, "%s", node);
    snprintf(s->ev_id, sizeof s->ev_id, "%s", item && epode_pubsub_item_id(item) ? epode_pubsub_item_id(item) : "");
    epode_stanza_t *p = item ? epode_pubsub_item_payload(item) : NULL;
    snprintf(s->ev_payload, sizeof s->ev_payload, "%s", p ? epode_stanza_get_text(p) : "");
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
    snprintf(xml, sizeof xml, "<iq type='result' id='%s'%s%s%s>%s</iq>", epode_stanza_get_id(iq),
             epode_stanza_get_to(iq) ? " from='" : "",
             epode_stanza_get_to(iq) ? epode_stanza_get_to(iq) : "",
             epode_stanza_get_to(iq) ? "'" : "", payload ? payload : "");
    scripted_send(s, xml);
}

TEST(pubsub_publish_with_options_and_item_id)
{
    scripted s;
    CHECK_INT(scripted_login(&s, "juliet@capulet.lit", ME), 0);
    epode_pubsub_t *ps;
    CHECK_INT(epode_pubsub_new(s.conn, NULL, &ps), 0);
    epode_stanza_t *payload;
    CHECK_INT(epode_stanza_from_text(NULL, "<nick xmlns='http://jabber.org/protocol/nick'>J</nick>",
                                     (size_t)-1, &payload, NULL), 0);
    epode_form_t *opts;
    CHECK_INT(epode_pubsub_options_new(NULL, &opts), 0);
    CHECK_INT(epode_form_set_value(opts, "pubsub#access_model", "presence"), 0);
    seen a = {0};
    unsigned id = 0;
    CHECK_INT(epode_pubsub_publish(ps, NULL, "http://jabber.org/protocol/nick", "current", payload,
                                   opts, on_reply, &a, &id), 0);
    CHECK(id != 0);
    epode_stanza_unref(payload);
    epode_form_free(opts);
    epode_stanza_t *iq = next_iq(&s);
    CHECK(iq != NULL);
    CHECK_STR(epode_stanza_get_type(iq), "set");
    CHECK(epode_stanza_get_to(iq) == NULL); /* our own PEP service */
    epode_stanza_t *p = epode_stanza_find_child(iq, "pubsub", EPODE_NS_PUBSUB);
    epode_stanza_t *pub = epode_stanza_find_child(p, "publish", NULL);
    CHECK_STR(epode_stanza_get_attr(pub, "node"), "http://jabber.org/protocol/nick");
    epode_stanza_t *it = epode_stanza_find_child(pub, "item", NULL);
    CHECK_STR(epode_stanza_get_attr(it, "id"), "current");
    CHECK_STR(epode_stanza_child_text(it, "nick", "http://jabber.org/protocol/nick"), "J");
    epode_stanza_t *po = epode_stanza_find_child(p, "publish-options", NULL);
    CHECK(po != NULL);
    epode_form_t *f;
    CHECK_INT(epode_form_parse(NULL, epode_stanza_find_child(po, "x", "jabber:x:data"), &f), 0);
    CHECK_INT(epode_form_get_type(f), EPODE_FORM_SUBMIT);
    CHECK_STR(epode_form_get_form_type(f), EPODE_NS_PUBSUB_PUBLISH_OPTIONS);
    CHECK_STR(epode_form_get_value(f, "pubsub#access_model"), "presence");
    epode_form_free(f);
    answer(&s, iq, "<pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='"
                   "http://jabber.org/protocol/nick'><item id='current'/></publish></pubsub>");
    CHECK_INT(a.replies, 1);
    CHECK_INT(a.ok, 1);
    CHECK_STR(a.item_id, "current");
    /* without an id: the service's id is reported */
    CHECK_INT(epode_pubsub_publish(ps, "pubsub.capulet.lit", "news", NULL, NULL, NULL, on_reply,
                                   &a, NULL), 0);
    iq = next_iq(&s);
    CHECK_STR(epode_stanza_get_to(iq), "pubsub.capulet.lit");
    CHECK(epode_stanza_get_attr(epode_stanza_find_child(epode_stanza_find_child(
              epode_stanza_find_child(iq, "pubsub", NULL), "publish", NULL), "item", NULL),
                                "id") == NULL);
    answer(&s, iq, "<pubsub xmlns='http://jabber.org/protocol/pubsub'><publish node='news'>"
                   "<item id='ae890ac52d0df67ed7cfdf51b644e901'/></publish></pubsub>");
    CHECK_INT(a.replies, 2);
    CHECK_STR(a.item_id, "ae890ac52d0df67ed7cfdf51b644e901");
    /* an empty answer (allowed): the id asked */
    CHECK_INT(epode_pubsub_publish(ps, NULL, "n", "x1", NULL, NULL, on_reply, &a, NULL), 0);
    answer(&s, next_iq(&s), NULL);
    CHECK_STR(a.item_id, "x1");
    epode_pubsub_free(ps);
    scripted_free(&s);
}

TEST(pubsub_refuses_bad_arguments_and_not_ready)
{
    scripted s;
    CHECK_INT(scripted_login(&s, "juliet@capulet.lit", ME), 0);
    epode_pubsub_t *ps;
    CHECK_INT(epode_pubsub_new(s.conn, NULL, &ps), 0);
    seen a = {0};
    CHECK_INT(epode_pubsub_publish(ps, NULL, NULL, NULL, NULL, NULL, on_reply, &a, NULL), EPODE_EINVAL);
    CHECK_INT(epode_pubsub_publish(ps, NULL, "", NULL, NULL, NULL, on_reply, &a, NULL), EPODE_EINVAL);
    CHECK_INT(epode_pubsub_publish(ps, "a@@b", "n", NULL, NULL, NULL, on_reply, &a, NULL), EPODE_EJID);
    CHECK_INT(epode_pubsub_retract(ps, NULL, "n", NULL, 0, on_reply, &a, NULL), EPODE_EINVAL);
    CHECK_INT(epode_pubsub_subscribe(ps, NULL, "n", on_reply, &a, NULL), EPODE_EINVAL);
    CHECK_INT(epode_pubsub_add_notify(ps, "n"), EPODE_ESTATE); /* no disco helper */
    CHECK_INT(epode_pubsub_cancel(ps, 12345), EPODE_ENOTFOUND);
    CHECK_INT(epode_pubsub_remove_event_cb(ps, 9), EPODE_ENOTFOUND);
    epode_conn_close(s.conn);
    scripted_pump(&s);
    CHECK_INT(epode_pubsub_fetch(ps, NULL, "n", NULL, 0, on_reply, &a, NULL), EPODE_ESTATE);
    CHECK_INT(a.replies, 0);
    epode_pubsub_free(ps);
    scripted_free(&s);
}

TEST(pubsub_errors_carry_their_conditions)
{
    scripted s;
    CHECK_INT(scripted_login(&s, "juliet@capulet.lit", ME), 0);
    epode_pubsub_t *ps;
    CHECK_INT(epode_pubsub_new(s.conn, NULL, &ps), 0);
    seen a = {0};
    CHECK_INT(epode_pubsub_publish(ps, NULL, "urn:xmpp:bookmarks:1", "r@muc", NULL, NULL, on_reply,
                                   &a, NULL), 0);
    epode_stanza_t *iq = next_iq(&s);
    char xml[1024];
    snprintf(xml, sizeof xml, "<iq type='error' id='%s'><error type='cancel'><conflict xmlns="
             "'urn:ietf:params:xml:ns:xmpp-stanzas'/><precondition-not-met xmlns='http://jabber.org"
             "/protocol/pubsub#errors'/><text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>no</text>"
             "</error></iq>", epode_stanza_get_id(iq));
    scripted_send(&s, xml);
    CHECK_INT(a.replies, 1);
    CHECK_INT(a.ok, 0);
    CHECK_INT(a.status, 0);
    CHECK_INT(a.cond, EPODE_COND_CONFLICT);
    CHECK_INT(a.perr, EPODE_PUBSUB_ERR_PRECONDITION_NOT_MET);
    CHECK_STR(epode_pubsub_error_name(a.perr), "precondition_not_met");
    /* unsupported names its feature; item-not-found is the stanza condition */
    CHECK_INT(epode_pubsub_fetch(ps, NULL, "nope", NULL, 0, on_reply, &a, NULL), 0);
    iq = next_iq(&s);
    snprintf(xml, sizeof xml, "<iq type='error' id='%s'><error type='cancel'><feature-not-implemented "
             "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><unsupported xmlns='http://jabber.org/"
             "protocol/pubsub#errors' feature='retrieve-items'/></error></iq>", epode_stanza_get_id(iq));
    scripted_send(&s, xml);
    CHECK_INT(a.cond, EPODE_COND_FEATURE_NOT_IMPLEMENTED);
    CHECK_INT(a.perr, EPODE_PUBSUB_ERR_UNSUPPORTED);
    CHECK_STR(a.unsupported, "retrieve-items");
    CHECK_INT(epode_pubsub_fetch(ps, NULL, "nope", NULL, 0, on_reply, &a, NULL), 0);
    iq = next_iq(&s);
    snprintf(xml, sizeof xml, "<iq type='error' id='%s'><error type='cancel'><item-not-found "
             "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>", epode_stanza_get_id(iq));
    scripted_send(&s, xml);
    CHECK_INT(a.cond, EPODE_COND_ITEM_NOT_FOUND);
    CHECK_INT(a.perr, EPODE_PUBSUB_ERR_NONE);
    CHECK_INT(a.nitems, 0);
    /* names */
    CHECK_INT(epode_pubsub_error_from_name("item-forbidden"), EPODE_PUBSUB_ERR_ITEM_FORBIDDEN);
    CHECK_INT(epode_pubsub_error_from_name("bogus"), EPODE_PUBSUB_ERR_OTHER);
    CHECK_INT(epode_pubsub_error_from_name(NULL), EPODE_PUBSUB_ERR_NONE);
    CHECK_STR(epode_pubsub_error_name(EPODE_PUBSUB_ERR_UNSUPPORTED_ACCESS_MODEL), "unsupported_access_model");
    CHECK(epode_pubsub_error_name((epode_pubsub_error_t)99) == NULL);
    CHECK_STR(epode_pubsub_event_type_name(EPODE_PUBSUB_DELETED), "deleted");
    CHECK(epode_pubsub_event_type_name((epode_pubsub_event_type_t)0) == NULL);
    epode_pubsub_free(ps);
    scripted_free(&s);
}

TEST(pubsub_fetch_retract_subscribe_delete)
{
    scripted s;
    CHECK_INT(scripted_login(&s, "juliet@capulet.lit", ME), 0);
    epode_pubsub_t *ps;
    CHECK_INT(epode_pubsub_new(s.conn, NULL, &ps), 0);
    seen a = {0};
    /* fetch the two most recent */
    CHECK_INT(epode_pubsub_fetch(ps, "romeo@montague.lit", "urn:xmpp:avatar:metadata", NULL, 2,
                                 on_reply, &a, NULL), 0);
    epode_stanza_t *iq = next_iq(&s);
    CHECK_STR(epode_stanza_get_type(iq), "get");
    epode_stanza_t *items = epode_stanza_find_child(epode_stanza_find_child(iq, "pubsub", NULL), "items", NULL);
    CHECK_STR(epode_stanza_get_attr(items, "node"), "urn:xmpp:avatar:metadata");
    CHECK_STR(epode_stanza_get_attr(items, "max_items"), "2");
    answer(&s, iq, "<pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='urn:xmpp:avatar:metadata'>"
                   "<item id='a1'><metadata xmlns='urn:xmpp:avatar:metadata'/></item><item id='a2'/>"
                   "<junk/></items></pubsub>");
    CHECK_INT(a.ok, 1);
    CHECK_INT(a.nitems, 2);
    CHECK_STR(a.items[0], "a1:metadata");
    CHECK_STR(a.items[1], "a2:-");
    /* our own account named: asked without 'to', so an answer without 'from' is taken */
    CHECK_INT(epode_pubsub_fetch(ps, "Juliet@capulet.lit", "n", NULL, 0, on_reply, &a, NULL), 0);
    iq = next_iq(&s);
    CHECK(epode_stanza_get_to(iq) == NULL);
    answer(&s, iq, NULL);
    CHECK_INT(a.replies, 2);
    CHECK_INT(a.ok, 1);
    /* by id */
    CHECK_INT(epode_pubsub_fetch(ps, NULL, "n", "it-1", 5, on_reply, &a, NULL), 0);
    iq = next_iq(&s);
    items = epode_stanza_find_child(epode_stanza_find_child(iq, "pubsub", NULL), "items", NULL);
    CHECK(epode_stanza_get_attr(items, "max_items") == NULL);
    CHECK_STR(epode_stanza_get_attr(epode_stanza_find_child(items, "item", NULL), "id"), "it-1");
    answer(&s, iq, NULL);
    CHECK_INT(a.ok, 1);
    CHECK_INT(a.nitems, 0);
    /* retract with notify */
    CHECK_INT(epode_pubsub_retract(ps, NULL, "urn:xmpp:bookmarks:1", "room@muc.lit", 1, on_reply, &a, NULL), 0);
    iq = next_iq(&s);
    epode_stanza_t *ret = epode_stanza_find_child(epode_stanza_find_child(iq, "pubsub", NULL), "retract", NULL);
    CHECK_STR(epode_stanza_get_attr(ret, "notify"), "true");
    CHECK_STR(epode_stanza_get_attr(epode_stanza_find_child(ret, "item", NULL), "id"), "room@muc.lit");
    answer(&s, iq, NULL);
    CHECK_INT(a.replies, 4);
    /* subscribe: our bare JID */
    CHECK_INT(epode_pubsub_subscribe(ps, "pubsub.lit", "news", on_reply, &a, NULL), 0);
    iq = next_iq(&s);
    epode_stanza_t *sub = epode_stanza_find_child(epode_stanza_find_child(iq, "pubsub", NULL), "subscribe", NULL);
    CHECK_STR(epode_stanza_get_attr(sub, "jid"), "juliet@capulet.lit");
    CHECK_STR(epode_stanza_get_attr(sub, "node"), "news");
    answer(&s, iq, "<pubsub xmlns='http://jabber.org/protocol/pubsub'><subscription node='news' "
                   "jid='juliet@capulet.lit' subid='s1' subscription='subscribed'/></pubsub>");
    CHECK_STR(a.sub, "subscribed");
    CHECK_STR(a.subid, "s1");
    CHECK_INT(epode_pubsub_unsubscribe(ps, "pubsub.lit", "news", "s1", on_reply, &a, NULL), 0);
    iq = next_iq(&s);
    sub = epode_stanza_find_child(epode_stanza_find_child(iq, "pubsub", NULL), "unsubscribe", NULL);
    CHECK_STR(epode_stanza_get_attr(sub, "subid"), "s1");
    answer(&s, iq, NULL);
    CHECK_INT(a.ok, 1);
    /* configure: a node_config submission */
    epode_form_t *cfg;
    CHECK_INT(epode_form_new(NULL, EPODE_FORM_SUBMIT, &cfg), 0);
    CHECK_INT(epode_form_set_value(cfg, "pubsub#notify_retract", "true"), 0);
    CHECK_INT(epode_pubsub_configure(ps, NULL, "bm", cfg, on_reply, &a, NULL), 0);
    CHECK_INT(epode_pubsub_configure(ps, NULL, "bm", NULL, on_reply, &a, NULL), EPODE_EINVAL);
    epode_form_free(cfg);
    iq = next_iq(&s);
    epode_stanza_t *conf = epode_stanza_find_child(epode_stanza_find_child(iq, "pubsub", EPODE_NS_PUBSUB_OWNER), "configure", NULL);
    CHECK_STR(epode_stanza_get_attr(conf, "node"), "bm");
    epode_form_t *got;
    CHECK_INT(epode_form_parse(NULL, epode_stanza_find_child(conf, "x", "jabber:x:data"), &got), 0);
    CHECK_STR(epode_form_get_form_type(got), EPODE_NS_PUBSUB_NODE_CONFIG);
    CHECK_STR(epode_form_get_value(got, "pubsub#notify_retract"), "true");
    epode_form_free(got);
    answer(&s, iq, NULL);
    CHECK_INT(a.ok, 1);
    /* an answer from someone else is not accepted */
    CHECK_INT(epode_pubsub_delete_node(ps, NULL, "old", on_reply, &a, NULL), 0);
    iq = next_iq(&s);
    epode_stanza_t *del = epode_stanza_find_child(epode_stanza_find_child(iq, "pubsub", EPODE_NS_PUBSUB_OWNER), "delete", NULL);
    CHECK_STR(epode_stanza_get_attr(del, "node"), "old");
    int before = a.replies;
    char xml[256];
    snprintf(xml, sizeof xml, "<iq type='result' id='%s' from='mallory@evil.lit'/>", epode_stanza_get_id(iq));
    scripted_send(&s, xml);
    CHECK_INT(a.replies, before);
    answer(&s, iq, NULL);
    CHECK_INT(a.replies, before + 1);
    CHECK_INT(a.ok, 1);
    epode_pubsub_free(ps);
    scripted_free(&s);
}

TEST(pubsub_events_reach_callbacks_per_node)
{
    scripted s;
    CHECK_INT(scripted_login(&s, "juliet@capulet.lit", ME), 0);
    epode_pubsub_t *ps;
    CHECK_INT(epode_pubsub_new(s.conn, NULL, &ps), 0);
    seen all = {0}, nick = {0};
    unsigned id_all, id_nick;
    CHECK_INT(epode_pubsub_add_event_cb(ps, NULL, on_event, &all, &id_all), 0);
    CHECK_INT(epode_pubsub_add_event_cb(ps, "http://jabber.org/protocol/nick", on_event, &nick, &id_nick), 0);
    scripted_send(&s, "<message from='romeo@montague.lit' to='" ME "'><event xmlns='http://jabber.org/"
                      "protocol/pubsub#event'><items node='http://jabber.org/protocol/nick'><item id='cur'>"
                      "<nick xmlns='http://jabber.org/protocol/nick'>Romeo</nick></item></items></event></message>");
    CHECK_INT(nick.nevents, 1);
    CHECK_INT(nick.events[0], EPODE_PUBSUB_PUBLISHED);
    CHECK_STR(nick.ev_from, "romeo@montague.lit");
    CHECK_STR(nick.ev_id, "cur");
    CHECK_STR(nick.ev_payload, "Romeo");
    CHECK_INT(all.nevents, 1);
    /* another node: only the catch-all */
    scripted_send(&s, "<message from='romeo@montague.lit'><body>hi</body><event xmlns='http://jabber.org/"
                      "protocol/pubsub#event'><items node='urn:xmpp:avatar:metadata'><retract id='old'/>"
                      "<retract/><item id='new'/></items><purge node='p'/><delete node='d'/></event></message>");
    CHECK_INT(nick.nevents, 1);
    CHECK_INT(all.nevents, 5);
    CHECK_INT(all.events[1], EPODE_PUBSUB_RETRACTED);
    CHECK_INT(all.events[2], EPODE_PUBSUB_PUBLISHED);
    CHECK_INT(all.events[3], EPODE_PUBSUB_PURGED);
    CHECK_INT(all.events[4], EPODE_PUBSUB_DELETED);
    CHECK_STR(all.ev_node, "d");
    CHECK_INT(epode_pubsub_rejected(ps), 1); /* the retract without id */
    /* malformed: no node; an error message; a foreign namespace */
    scripted_send(&s, "<message from='x@y'><event xmlns='http://jabber.org/protocol/pubsub#event'>"
                      "<items><item id='z'/></items></event></message>");
    scripted_send(&s, "<message type='error' from='x@y'><event xmlns='http://jabber.org/protocol/pubsub#event'>"
                      "<items node='a'><item id='z'/></items></event></message>");
    scripted_send(&s, "<message from='x@y'><event xmlns='urn:other'><items node='a'><item id='z'/></items>"
                      "</event></message>");
    CHECK_INT(all.nevents, 5);
    CHECK_INT(epode_pubsub_rejected(ps), 2);
    /* own account: no from, or our bare JID */
    CHECK_INT(epode_pubsub_from_own_account(ps, NULL), 1);
    CHECK_INT(epode_pubsub_from_own_account(ps, "Juliet@capulet.lit"), 1);
    CHECK_INT(epode_pubsub_from_own_account(ps, "juliet@capulet.lit/balcony"), 0);
    CHECK_INT(epode_pubsub_from_own_account(ps, "romeo@montague.lit"), 0);
    /* removed callbacks hear nothing more */
    CHECK_INT(epode_pubsub_remove_event_cb(ps, id_all), 0);
    CHECK_INT(epode_pubsub_remove_event_cb(ps, id_all), EPODE_ENOTFOUND);
    scripted_send(&s, "<message from='romeo@montague.lit'><event xmlns='http://jabber.org/"
                      "protocol/pubsub#event'><items node='http://jabber.org/protocol/nick'><item id='cur'>"
                      "<nick xmlns='http://jabber.org/protocol/nick'>R2</nick></item></items></event></message>");
    CHECK_INT(all.nevents, 5);
    CHECK_INT(nick.nevents, 2);
    CHECK_STR(nick.ev_payload, "R2");
    epode_pubsub_free(ps);
    scripted_free(&s);
}

static void remove_self(epode_pubsub_t *ps, epode_pubsub_event_type_t type, const char *from,
                        const char *node, const epode_pubsub_item_t *item, epode_stanza_t *msg,
                        void *user)
{
    seen *s = user;
    on_event(ps, type, from, node, item, msg, user);
    epode_pubsub_remove_event_cb(ps, (unsigned)s->replies); /* its own id, kept there */
}

static seen *added_seen;
static void add_another(epode_pubsub_t *ps, epode_pubsub_event_type_t type, const char *from,
                        const char *node, const epode_pubsub_item_t *item, epode_stanza_t *msg,
                        void *user)
{
    on_event(ps, type, from, node, item, msg, user);
    epode_pubsub_add_event_cb(ps, NULL, on_event, added_seen, NULL);
}

TEST(pubsub_callbacks_added_inside_hear_the_next_item)
{
    scripted s;
    CHECK_INT(scripted_login(&s, "juliet@capulet.lit", ME), 0);
    epode_pubsub_t *ps;
    CHECK_INT(epode_pubsub_new(s.conn, NULL, &ps), 0);
    seen a = {0}, b = {0};
    added_seen = &b;
    unsigned id;
    CHECK_INT(epode_pubsub_add_event_cb(ps, NULL, add_another, &a, &id), 0);
    scripted_send(&s, "<message from='x@y'><event xmlns='http://jabber.org/protocol/pubsub#event'>"
                      "<items node='n'><item id='1'/></items></event></message>");
    CHECK_INT(a.nevents, 1);
    CHECK_INT(b.nevents, 0); /* added during that item: not told of it */
    CHECK_INT(epode_pubsub_remove_event_cb(ps, id), 0);
    scripted_send(&s, "<message from='x@y'><event xmlns='http://jabber.org/protocol/pubsub#event'>"
                      "<items node='n'><item id='2'/></items></event></message>");
    CHECK_INT(a.nevents, 1);
    CHECK_INT(b.nevents, 1);
    epode_pubsub_free(ps);
    scripted_free(&s);
}

TEST(pubsub_event_floods_are_bounded_and_removal_inside_is_safe)
{
    scripted s;
    CHECK_INT(scripted_login(&s, "juliet@capulet.lit", ME), 0);
    epode_pubsub_t *ps;
    CHECK_INT(epode_pubsub_new(s.conn, NULL, &ps), 0);
    seen a = {0}, b = {0};
    unsigned id;
    CHECK_INT(epode_pubsub_add_event_cb(ps, NULL, remove_self, &a, &id), 0);
    a.replies = (int)id;
    CHECK_INT(epode_pubsub_add_event_cb(ps, NULL, on_event, &b, NULL), 0);
    static char big[200000];
    size_t off = (size_t)snprintf(big, sizeof big, "<message from='x@y'><event xmlns='http://jabber.org/"
                                  "protocol/pubsub#event'><items node='n'>");
    for (int i = 0; i < EPODE_PUBSUB_MAX_ITEMS + 5; i++)
        off += (size_t)snprintf(big + off, sizeof big - off, "<item id='%d'/>", i);
    snprintf(big + off, sizeof big - off, "</items></event></message>");
    scripted_send(&s, big);
    CHECK_INT(a.nevents, 1); /* removed itself at the first item */
    CHECK_INT(b.nevents, 64);
    CHECK_INT(epode_pubsub_rejected(ps), 5);
    epode_pubsub_free(ps);
    scripted_free(&s);
}

TEST(pubsub_notify_is_counted_on_the_disco_helper)
{
    scripted s;
    CHECK_INT(scripted_login(&s, "juliet@capulet.lit", ME), 0);
    epode_disco_t *disco;
    CHECK_INT(epode_disco_new(s.conn, &disco), 0);
    epode_pubsub_t *ps;
    CHECK_INT(epode_pubsub_new(s.conn, disco, &ps), 0);
    CHECK_INT(epode_pubsub_add_notify(ps, "urn:xmpp:avatar:metadata"), 0);
    CHECK_INT(epode_pubsub_add_notify(ps, "urn:xmpp:avatar:metadata"), 0);
    CHECK_INT(epode_pubsub_add_notify(ps, "http://jabber.org/protocol/nick"), 0);
    epode_stanza_t *q;
    epode_disco_info_t *info;
    CHECK_INT(epode_disco_build_info(disco, NULL, &q), 0);
    CHECK_INT(epode_disco_info_parse(q, &info), 0);
    CHECK_INT(epode_disco_info_has_feature(info, "urn:xmpp:avatar:metadata+notify"), 1);
    CHECK_INT(epode_disco_info_has_feature(info, "http://jabber.org/protocol/nick+notify"), 1);
    epode_disco_info_free(info);
    epode_stanza_unref(q);
    CHECK_INT(epode_pubsub_remove_notify(ps, "urn:xmpp:avatar:metadata"), 0);
    CHECK_INT(epode_disco_build_info(disco, NULL, &q), 0);
    CHECK_INT(epode_disco_info_parse(q, &info), 0);
    CHECK_INT(epode_disco_info_has_feature(info, "urn:xmpp:avatar:metadata+notify"), 1);
    epode_disco_info_free(info);
    epode_stanza_unref(q);
    CHECK_INT(epode_pubsub_remove_notify(ps, "urn:xmpp:avatar:metadata"), 0);
    CHECK_INT(epode_pubsub_remove_notify(ps, "urn:xmpp:avatar:metadata"), EPODE_ENOTFOUND);
    CHECK_INT(epode_disco_build_info(disco, NULL, &q), 0);
    CHECK_INT(epode_disco_info_parse(q, &info), 0);
    CHECK_INT(epode_disco_info_has_feature(info, "urn:xmpp:avatar:metadata+notify"), 0);
    epode_disco_info_free(info);
    epode_stanza_unref(q);
    /* freeing the helper takes its features back */
    epode_pubsub_free(ps);
    CHECK_INT(epode_disco_build_info(disco, NULL, &q), 0);
    CHECK_INT(epode_disco_info_parse(q, &info), 0);
    CHECK_INT(epode_disco_info_has_feature(info, "http://jabber.org/protocol/nick+notify"), 0);
    epode_disco_info_free(info);
    epode_stanza_unref(q);
    epode_disco_free(disco);
    scripted_free(&s);
}

TEST(pubsub_caps_ver_changes_with_notify)
{
    scripted s;
    CHECK_INT(scripted_login(&s, "juliet@capulet.lit", ME), 0);
    epode_disco_t *disco;
    epode_caps_t *caps;
    epode_pubsub_t *ps;
    CHECK_INT(epode_disco_new(s.conn, &disco), 0);
    CHECK_INT(epode_caps_new(disco, "https://epode.example", &caps), 0);
    CHECK_INT(epode_pubsub_new(s.conn, disco, &ps), 0);
    char before[EPODE_CAPS_VER_MAX];
    snprintf(before, sizeof before, "%s", epode_caps_get_ver(caps));
    CHECK_INT(epode_pubsub_add_notify(ps, "urn:xmpp:bookmarks:1"), 0);
    CHECK(strcmp(before, epode_caps_get_ver(caps)) != 0);
    epode_pubsub_free(ps);
    CHECK_STR(epode_caps_get_ver(caps), before);
    epode_caps_free(caps);
    epode_disco_free(disco);
    scripted_free(&s);
}

TEST(pubsub_free_cancels_and_outlives_its_connection)
{
    scripted_mem mm;
    scripted_mem_init(&mm);
    scripted s;
    CHECK_INT(scripted_login_mem(&s, &mm.mem, "juliet@capulet.lit", ME), 0);
    epode_pubsub_t *ps;
    CHECK_INT(epode_pubsub_new(s.conn, NULL, &ps), 0);
    seen a = {0};
    unsigned id;
    CHECK_INT(epode_pubsub_fetch(ps, NULL, "n", NULL, 0, on_reply, &a, &id), 0);
    CHECK_INT(epode_pubsub_fetch(ps, NULL, "m", NULL, 0, on_reply, &a, NULL), 0);
    CHECK_INT(epode_pubsub_cancel(ps, id), 0);
    epode_conn_free(s.conn);
    s.conn = NULL;
    CHECK(epode_pubsub_conn(ps) == NULL);
    CHECK_INT(epode_pubsub_fetch(ps, NULL, "n", NULL, 0, on_reply, &a, NULL), EPODE_ESTATE);
    CHECK_INT(a.replies, 0);
    epode_pubsub_free(ps);
    CHECK_INT(a.replies, 1);
    CHECK_INT(a.status, EPODE_ECANCELED);
    scripted_free(&s);
    CHECK_INT(mm.live, 0);
}

TEST(pubsub_survives_every_failing_allocation)
{
    int swept = 0;
    for (long fail = 0; fail < 400; fail++) {
        scripted_mem mm;
        scripted_mem_init(&mm);
        scripted s;
        CHECK_INT(scripted_login_mem(&s, &mm.mem, "juliet@capulet.lit", ME), 0);
        seen a = {0};
        epode_pubsub_t *ps = NULL;
        epode_disco_t *disco = NULL;
        mm.fail_at = mm.calls + fail;
        int rc = epode_disco_new(s.conn, &disco);
        if (rc == 0)
            rc = epode_pubsub_new(s.conn, disco, &ps);
        CHECK(rc == 0 || rc == EPODE_ENOMEM);
        if (rc == 0) {
            rc = epode_pubsub_add_notify(ps, "n");
            CHECK(rc == 0 || rc == EPODE_ENOMEM);
            rc = epode_pubsub_add_event_cb(ps, "n", on_event, &a, NULL);
            CHECK(rc == 0 || rc == EPODE_ENOMEM);
            epode_form_t *opts = NULL;
            rc = epode_pubsub_options_new(&mm.mem, &opts);
            CHECK(rc == 0 || rc == EPODE_ENOMEM);
            rc = epode_pubsub_publish(ps, NULL, "n", "i", NULL, opts, on_reply, &a, NULL);
            CHECK(rc == 0 || rc == EPODE_ENOMEM || rc == EPODE_ESTATE);
            epode_form_free(opts);
            rc = epode_pubsub_fetch(ps, NULL, "n", NULL, 0, on_reply, &a, NULL);
            CHECK(rc == 0 || rc == EPODE_ENOMEM || rc == EPODE_ESTATE);
            scripted_pump(&s);
            epode_stanza_t *iq;
            while ((iq = next_iq(&s)))
                answer(&s, iq, "<pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='n'>"
                               "<item id='1'/><item id='2'/></items></pubsub>");
            scripted_send(&s, "<message from='x@y'><event xmlns='http://jabber.org/protocol/"
                              "pubsub#event'><items node='n'><item id='z'/></items></event></message>");
        }
        int done = mm.fail_at > mm.calls;
        mm.fail_at = -1;
        epode_pubsub_free(ps);
        epode_disco_free(disco);
        scripted_free(&s);
        CHECK_INT(mm.live, 0);
        swept++;
        if (done)
            break;
    }
    printf("# %d allocation points swept\n", swept);
}
