/* tests/unit/test_im_roster.c — the roster helper against a scripted
 * server: fetch on READY, versioning with the cache hooks, pushes applied
 * and answered, pushes from strangers ignored, malformed pushes and
 * results, add/remove answers, reconnects and teardown with requests
 * still out. */
#include "test.h"

#include <limits.h>

#include <unistd.h>

#include "scripted.h"

#define ME "juliet@example.com/balcony"

typedef struct seen {
    int added, updated, removed, received, failed;
    char last[256];
    int stores, last_full;
    size_t last_count;
    char last_ver[64];
    char store_jids[512];
} seen;

static void on_roster(epode_roster_t *r, epode_roster_event_t ev, const epode_roster_item_t *it,
                      void *user)
{
    (void)r;
    seen *s = user;
    switch (ev) {
    case EPODE_ROSTER_ADDED: s->added++; break;
    case EPODE_ROSTER_UPDATED: s->updated++; break;
    case EPODE_ROSTER_REMOVED:
        s->removed++;
        if (epode_roster_item_subscription(it) != EPODE_ROSTER_SUB_REMOVE)
            s->removed += 1000; /* flagged: must say remove */
        break;
    case EPODE_ROSTER_RECEIVED: s->received++; break;
    case EPODE_ROSTER_FETCH_FAILED: s->failed++; break;
    }
    if (it)
        snprintf(s->last, sizeof s->last, "%s", epode_roster_item_jid(it));
}

static void on_store(epode_roster_t *r, const char *ver, int full,
                     const epode_roster_item_t *const *items, size_t n, void *user)
{
    (void)r;
    seen *s = user;
    s->stores++;
    s->last_full = full;
    s->last_count = n;
    snprintf(s->last_ver, sizeof s->last_ver, "%s", ver ? ver : "(null)");
    s->store_jids[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(s->store_jids);
        snprintf(s->store_jids + l, sizeof s->store_jids - l, "%s%s:%s", i ? "," : "",
                 epode_roster_item_jid(items[i]),
                 epode_roster_sub_name(epode_roster_item_subscription(items[i])));
    }
}

/* Logs in, makes the roster, starts the fetch; returns the fetch's id. */
static const char *setup(scripted *s, epode_roster_t **r, seen *sn)
{
    memset(sn, 0, sizeof *sn);
    if (scripted_login(s, "juliet@example.com", ME) < 0)
        return NULL;
    if (epode_roster_new(s->conn, r) < 0)
        return NULL;
    epode_roster_set_event_cb(*r, on_roster, sn);
    epode_roster_cache_t c = {.store = on_store, .user = sn};
    epode_roster_set_cache(*r, &c);
    if (epode_roster_fetch(*r) < 0)
        return NULL;
    scripted_pump(s);
    epode_stanza_t *get = scripted_next(s);
    if (!get || strcmp(epode_stanza_get_type(get), "get") != 0 ||
        !epode_stanza_find_child(get, "query", EPODE_NS_ROSTER))
        return NULL;
    return epode_stanza_get_id(get);
}

static void sendf(scripted *s, const char *fmt, const char *id)
{
    char xml[8192];
    snprintf(xml, sizeof xml, fmt, id);
    scripted_send(s, xml);
}

#define ROSTER3 "<iq type='result' id='%s'><query xmlns='jabber:iq:roster' ver='v1'>" \
    "<item jid='romeo@example.net' name='Romeo' subscription='both'><group>Friends</group>" \
    "<group>Lovers</group></item>" \
    "<item jid='Nurse@Example.COM' subscription='from' ask='subscribe'/>" \
    "<item jid='benvolio@example.net' subscription='to'><group>Friends</group></item>" \
    "</query></iq>"

TEST(roster_fetch_fills_items_sorted_with_events_and_store)
{
    scripted s;
    epode_roster_t *r;
    seen sn;
    const char *id = setup(&s, &r, &sn);
    CHECK(id);
    CHECK_INT(epode_roster_is_received(r), 0);
    sendf(&s, ROSTER3, id);
    CHECK_INT(epode_roster_is_received(r), 1);
    CHECK_INT(sn.added, 3);
    CHECK_INT(sn.received, 1);
    CHECK_INT(sn.stores, 1);
    CHECK_INT(sn.last_full, 1);
    CHECK_INT(sn.last_count, 3);
    CHECK_STR(sn.last_ver, "v1");
    CHECK_STR(epode_roster_ver(r), "v1");
    CHECK_INT(epode_roster_count(r), 3);
    CHECK_STR(epode_roster_item_jid(epode_roster_item_at(r, 0)), "benvolio@example.net");
    CHECK_STR(epode_roster_item_jid(epode_roster_item_at(r, 1)), "nurse@example.com");
    CHECK_STR(epode_roster_item_jid(epode_roster_item_at(r, 2)), "romeo@example.net");
    CHECK(epode_roster_item_at(r, 3) == NULL);
    const epode_roster_item_t *it = epode_roster_find(r, "ROMEO@example.net.");
    CHECK(it);
    CHECK_STR(epode_roster_item_name(it), "Romeo");
    CHECK_INT(epode_roster_item_subscription(it), EPODE_ROSTER_SUB_BOTH);
    CHECK_INT(epode_roster_item_ask(it), 0);
    CHECK_INT(epode_roster_item_group_count(it), 2);
    CHECK_STR(epode_roster_item_group(it, 0), "Friends");
    CHECK_STR(epode_roster_item_group(it, 1), "Lovers");
    CHECK(epode_roster_item_group(it, 2) == NULL);
    it = epode_roster_find(r, "nurse@example.com");
    CHECK(it);
    CHECK(epode_roster_item_name(it) == NULL);
    CHECK_INT(epode_roster_item_ask(it), 1);
    CHECK_INT(epode_roster_item_subscription(it), EPODE_ROSTER_SUB_FROM);
    CHECK(epode_roster_find(r, "nobody@example.com") == NULL);
    CHECK(epode_roster_find(r, "not a jid@@") == NULL);
    CHECK(scripted_next(&s) == NULL); /* a result is never answered */
    epode_roster_free(r);
    scripted_free(&s);
}

TEST(roster_fetch_starts_by_itself_when_made_on_a_ready_connection)
{
    scripted s;
    CHECK_INT(scripted_login(&s, "juliet@example.com", ME), 0);
    epode_roster_t *r;
    CHECK_INT(epode_roster_new(s.conn, &r), 0);
    CHECK(scripted_next(&s) == NULL); /* not inside new: on the next turn */
    usleep(5000);
    scripted_pump(&s);
    epode_stanza_t *get = scripted_next(&s);
    CHECK(get);
    epode_stanza_t *q = epode_stanza_find_child(get, "query", EPODE_NS_ROSTER);
    CHECK(q);
    CHECK(epode_stanza_get_attr(q, "ver") == NULL); /* nothing cached: no ver */
    CHECK(epode_stanza_get_to(get) == NULL);
    epode_roster_free(r);
    scripted_free(&s);
}

TEST(roster_push_applied_and_answered)
{
    scripted s;
    epode_roster_t *r;
    seen sn;
    const char *id = setup(&s, &r, &sn);
    CHECK(id);
    sendf(&s, ROSTER3, id);
    sn.added = 0;
    scripted_send(&s, "<iq type='set' id='push1'><query xmlns='jabber:iq:roster' ver='v2'>"
                      "<item jid='tybalt@example.org' name='T' subscription='none'/></query></iq>");
    CHECK_STR(scripted_next_text(&s), "<iq id=\"push1\" type=\"result\"/>");
    CHECK_INT(sn.added, 1);
    CHECK_STR(sn.last, "tybalt@example.org");
    CHECK_STR(epode_roster_ver(r), "v2");
    CHECK_INT(sn.last_full, 0);
    CHECK_STR(sn.store_jids, "tybalt@example.org:none");
    CHECK_STR(sn.last_ver, "v2");
    CHECK_INT(epode_roster_count(r), 4);
    /* from our bare JID, written in another case: still our account */
    scripted_send(&s, "<iq type='set' id='push2' from='JULIET@example.com'><query "
                      "xmlns='jabber:iq:roster' ver='v3'><item jid='tybalt@example.org' "
                      "name='Tybalt' subscription='to'><group>Foes</group></item></query></iq>");
    CHECK_STR(scripted_next_text(&s), "<iq to=\"JULIET@example.com\" id=\"push2\" type=\"result\"/>");
    CHECK_INT(sn.updated, 1);
    const epode_roster_item_t *it = epode_roster_find(r, "tybalt@example.org");
    CHECK_STR(epode_roster_item_name(it), "Tybalt");
    CHECK_STR(epode_roster_item_group(it, 0), "Foes");
    /* the same again changes nothing: no event, but still answered */
    scripted_send(&s, "<iq type='set' id='push3'><query xmlns='jabber:iq:roster' ver='v4'><item "
                      "jid='tybalt@example.org' name='Tybalt' subscription='to'><group>Foes"
                      "</group></item></query></iq>");
    CHECK_STR(scripted_next_text(&s), "<iq id=\"push3\" type=\"result\"/>");
    CHECK_INT(sn.updated, 1);
    /* removal */
    scripted_send(&s, "<iq type='set' id='push4'><query xmlns='jabber:iq:roster' ver='v5'>"
                      "<item jid='Romeo@example.net' subscription='remove'/></query></iq>");
    CHECK_STR(scripted_next_text(&s), "<iq id=\"push4\" type=\"result\"/>");
    CHECK_INT(sn.removed, 1);
    CHECK_STR(sn.last, "romeo@example.net");
    CHECK_STR(sn.store_jids, "romeo@example.net:remove");
    CHECK(epode_roster_find(r, "romeo@example.net") == NULL);
    CHECK_INT(epode_roster_count(r), 3);
    /* removing what is not there: answered, stored, no event */
    scripted_send(&s, "<iq type='set' id='push5'><query xmlns='jabber:iq:roster'>"
                      "<item jid='ghost@example.net' subscription='remove'/></query></iq>");
    CHECK_STR(scripted_next_text(&s), "<iq id=\"push5\" type=\"result\"/>");
    CHECK_INT(sn.removed, 1);
    CHECK_STR(epode_roster_ver(r), "v5"); /* a push without ver keeps it */
    epode_roster_free(r);
    scripted_free(&s);
}

TEST(roster_push_from_a_stranger_is_ignored)
{
    scripted s;
    epode_roster_t *r;
    seen sn;
    const char *id = setup(&s, &r, &sn);
    CHECK(id);
    sendf(&s, ROSTER3, id);
    int stores = sn.stores;
    static const char *const froms[] = {
        "mallory@evil.example",          /* a stranger */
        "juliet@example.com/balcony",    /* our full JID is not the account */
        "juliet@example.com/other",      /* nor another resource of ours */
        "example.com",                   /* nor our server */
        "juliet@evil.example",           /* same local part elsewhere */
        "not@@valid",                    /* garbage */
        "",                              /* empty */
    };
    for (size_t i = 0; i < sizeof froms / sizeof *froms; i++) {
        char xml[512];
        snprintf(xml, sizeof xml, "<iq type='set' id='evil%zu' from='%s'><query xmlns='jabber:iq:"
                 "roster' ver='evil'><item jid='mallory@evil.example' name='Trust me' "
                 "subscription='both'/><item jid='romeo@example.net' subscription='remove'/>"
                 "</query></iq>", i, froms[i]);
        scripted_send(&s, xml);
        epode_stanza_t *ans = scripted_next(&s);
        CHECK(ans);
        /* not ours: epode's fallback refuses it, the roster is untouched */
        CHECK_STR(epode_stanza_get_type(ans), "error");
        epode_stanza_cond_t cond;
        CHECK_INT(epode_stanza_get_error(ans, &cond, NULL, NULL), 0);
        CHECK_INT(cond, EPODE_COND_SERVICE_UNAVAILABLE);
    }
    CHECK_INT(epode_roster_count(r), 3);
    CHECK(epode_roster_find(r, "mallory@evil.example") == NULL);
    CHECK(epode_roster_find(r, "romeo@example.net") != NULL);
    CHECK_STR(epode_roster_ver(r), "v1");
    CHECK_INT(sn.stores, stores);
    CHECK_INT(sn.added, 3);
    CHECK_INT(sn.removed, 0);
    epode_roster_free(r);
    scripted_free(&s);
}

TEST(roster_malformed_pushes_refused_with_bad_request)
{
    scripted s;
    epode_roster_t *r;
    seen sn;
    const char *id = setup(&s, &r, &sn);
    CHECK(id);
    sendf(&s, ROSTER3, id);
    static const char *const bad[] = {
        /* two items */
        ("<iq type='set' id='b0'><query xmlns='jabber:iq:roster'><item jid='a@example.net'/>"
         "<item jid='b@example.net'/></query></iq>"),
        /* no item */
        "<iq type='set' id='b1'><query xmlns='jabber:iq:roster' ver='x'/></iq>",
        /* item without jid */
        "<iq type='set' id='b2'><query xmlns='jabber:iq:roster'><item name='x'/></query></iq>",
        /* invalid jid */
        "<iq type='set' id='b3'><query xmlns='jabber:iq:roster'><item jid='a@b@c'/></query></iq>",
        "<iq type='set' id='b4'><query xmlns='jabber:iq:roster'><item jid=''/></query></iq>",
        /* not a query */
        "<iq type='set' id='b5'><junk xmlns='jabber:iq:roster'/></iq>",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        scripted_send(&s, bad[i]);
        epode_stanza_t *ans = scripted_next(&s);
        CHECK(ans);
        CHECK_STR(epode_stanza_get_type(ans), "error");
        epode_stanza_cond_t cond;
        CHECK_INT(epode_stanza_get_error(ans, &cond, NULL, NULL), 0);
        CHECK_INT(cond, EPODE_COND_BAD_REQUEST);
        CHECK(scripted_next(&s) == NULL); /* exactly one answer */
    }
    CHECK_INT(epode_roster_count(r), 3);
    CHECK_STR(epode_roster_ver(r), "v1");
    CHECK_INT(sn.added, 3);
    epode_roster_free(r);
    scripted_free(&s);
}

TEST(roster_result_garbage_items_left_out)
{
    scripted s;
    epode_roster_t *r;
    seen sn;
    const char *id = setup(&s, &r, &sn);
    CHECK(id);
    sendf(&s, "<iq type='result' id='%s'><query xmlns='jabber:iq:roster'>"
              "<item name='no jid'/><item jid='x@@y'/><item jid='gone@example.net' "
              "subscription='remove'/><item jid='a@example.net' subscription='weird' "
              "ask='maybe'><group></group><group>G</group><group>G</group></item>"
              "<item jid='A@example.net' name='second wins'/>"
              "<other xmlns='urn:x'><item jid='hidden@example.net'/></other>"
              "<item xmlns='urn:other' jid='otherns@example.net'/></query></iq>", id);
    CHECK_INT(sn.received, 1);
    CHECK_INT(epode_roster_count(r), 1);
    const epode_roster_item_t *it = epode_roster_find(r, "a@example.net");
    CHECK(it);
    CHECK_STR(epode_roster_item_name(it), "second wins");
    CHECK_INT(epode_roster_item_subscription(it), EPODE_ROSTER_SUB_NONE);
    CHECK_INT(epode_roster_item_ask(it), 0);
    CHECK(epode_roster_ver(r) == NULL); /* no ver: the server does not version */
    CHECK_STR(sn.last_ver, "(null)");
    epode_roster_free(r);
    scripted_free(&s);
}

TEST(roster_result_from_a_stranger_not_accepted)
{
    scripted s;
    epode_roster_t *r;
    seen sn;
    const char *id = setup(&s, &r, &sn);
    CHECK(id);
    char xml[512];
    snprintf(xml, sizeof xml, "<iq type='result' id='%s' from='mallory@evil.example'>"
             "<query xmlns='jabber:iq:roster'><item jid='mallory@evil.example'/></query></iq>", id);
    scripted_send(&s, xml);
    CHECK_INT(sn.received, 0);
    CHECK_INT(epode_roster_count(r), 0);
    /* the real answer still counts */
    sendf(&s, ROSTER3, id);
    CHECK_INT(sn.received, 1);
    CHECK_INT(epode_roster_count(r), 3);
    epode_roster_free(r);
    scripted_free(&s);
}

TEST(roster_fetch_error_reported_and_cache_kept)
{
    scripted s;
    epode_roster_t *r;
    seen sn;
    CHECK_INT(scripted_login(&s, "juliet@example.com", ME), 0);
    CHECK_INT(epode_roster_new(s.conn, &r), 0);
    memset(&sn, 0, sizeof sn);
    epode_roster_set_event_cb(r, on_roster, &sn);
    CHECK_INT(epode_roster_load_item(r, "romeo@example.net", "R", EPODE_ROSTER_SUB_BOTH, 0,
                                     NULL, 0), 0);
    CHECK_INT(epode_roster_fetch(r), 0);
    CHECK_INT(epode_roster_fetch(r), 0); /* not duplicated */
    scripted_pump(&s);
    epode_stanza_t *get = scripted_next(&s);
    CHECK(get);
    CHECK(scripted_next(&s) == NULL);
    sendf(&s, "<iq type='error' id='%s'><error type='cancel'><internal-server-error "
              "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>", epode_stanza_get_id(get));
    CHECK_INT(sn.failed, 1);
    CHECK_INT(sn.received, 0);
    CHECK_INT(epode_roster_count(r), 1);
    epode_roster_free(r);
    scripted_free(&s);
}

/* ---- versioning and the cache ------------------------------------------ */

typedef struct cache_app {
    seen sn;
    int loads;
    int fail_load;
} cache_app;

static int on_load(epode_roster_t *r, void *user)
{
    cache_app *a = user;
    a->loads++;
    static const char *const g[] = {"Friends", "Friends", "Verona"};
    epode_roster_load_item(r, "romeo@example.net", "Romeo", EPODE_ROSTER_SUB_BOTH, 0, g, 3);
    epode_roster_load_item(r, "nurse@example.com", NULL, EPODE_ROSTER_SUB_FROM, 1, NULL, 0);
    epode_roster_load_ver(r, "v7");
    return a->fail_load ? -1 : 0;
}

static void on_store_app(epode_roster_t *r, const char *ver, int full,
                         const epode_roster_item_t *const *items, size_t n, void *user)
{
    on_store(r, ver, full, items, n, &((cache_app *)user)->sn);
}

static epode_stanza_t *start_cached(scripted *s, epode_roster_t **r, cache_app *a)
{
    memset(a, 0, sizeof *a);
    if (scripted_login(s, "juliet@example.com", ME) < 0 || epode_roster_new(s->conn, r) < 0)
        return NULL;
    epode_roster_set_event_cb(*r, on_roster, &a->sn);
    epode_roster_cache_t c = {.load = on_load, .store = on_store_app, .user = a};
    epode_roster_set_cache(*r, &c);
    usleep(5000); /* the automatic fetch of a roster made on a READY conn */
    scripted_pump(s);
    return scripted_next(s);
}

TEST(roster_versioning_empty_result_keeps_the_cache)
{
    scripted s;
    epode_roster_t *r;
    cache_app a;
    epode_stanza_t *get = start_cached(&s, &r, &a);
    CHECK(get);
    CHECK_INT(a.loads, 1);
    epode_stanza_t *q = epode_stanza_find_child(get, "query", EPODE_NS_ROSTER);
    CHECK_STR(epode_stanza_get_attr(q, "ver"), "v7");
    sendf(&s, "<iq type='result' id='%s'/>", epode_stanza_get_id(get));
    CHECK_INT(a.sn.received, 1);
    CHECK_INT(a.sn.added + a.sn.updated + a.sn.removed, 0); /* nothing changed */
    CHECK_INT(a.sn.stores, 0);
    CHECK_INT(epode_roster_count(&*r), 2);
    const epode_roster_item_t *it = epode_roster_find(r, "romeo@example.net");
    CHECK_INT(epode_roster_item_group_count(it), 2); /* duplicate group dropped */
    CHECK_STR(epode_roster_ver(r), "v7");
    /* changes follow as pushes */
    scripted_send(&s, "<iq type='set' id='p'><query xmlns='jabber:iq:roster' ver='v8'><item "
                      "jid='nurse@example.com' subscription='both'/></query></iq>");
    CHECK_STR(scripted_next_text(&s), "<iq id=\"p\" type=\"result\"/>");
    CHECK_INT(a.sn.updated, 1);
    CHECK_STR(a.sn.last_ver, "v8");
    CHECK_STR(a.sn.store_jids, "nurse@example.com:both");
    epode_roster_free(r);
    scripted_free(&s);
}

TEST(roster_versioning_ignored_by_server_replaces_the_cache)
{
    scripted s;
    epode_roster_t *r;
    cache_app a;
    epode_stanza_t *get = start_cached(&s, &r, &a);
    CHECK(get);
    /* the server answers with the full roster (and maybe no ver at all) */
    sendf(&s, "<iq type='result' id='%s'><query xmlns='jabber:iq:roster'>"
              "<item jid='romeo@example.net' name='Romeo' subscription='both'>"
              "<group>Verona</group><group>Friends</group></item>"
              "<item jid='tybalt@example.org' subscription='none'/></query></iq>",
              epode_stanza_get_id(get));
    CHECK_INT(a.sn.received, 1);
    CHECK_INT(a.sn.added, 1);   /* tybalt */
    CHECK_INT(a.sn.removed, 1); /* the nurse */
    CHECK_INT(a.sn.updated, 0); /* romeo's groups are the same set */
    CHECK_INT(epode_roster_count(r), 2);
    CHECK(epode_roster_find(r, "nurse@example.com") == NULL);
    CHECK(epode_roster_ver(r) == NULL);
    CHECK_INT(a.sn.stores, 1);
    CHECK_INT(a.sn.last_full, 1);
    CHECK_STR(a.sn.store_jids, "romeo@example.net:both,tybalt@example.org:none");
    epode_roster_free(r);
    scripted_free(&s);
}

TEST(roster_failed_load_fetches_everything)
{
    scripted s;
    epode_roster_t *r;
    cache_app a;
    memset(&a, 0, sizeof a);
    CHECK_INT(scripted_login(&s, "juliet@example.com", ME), 0);
    CHECK_INT(epode_roster_new(s.conn, &r), 0);
    a.fail_load = 1;
    epode_roster_cache_t c = {.load = on_load, .user = &a};
    epode_roster_set_cache(r, &c);
    CHECK_INT(epode_roster_fetch(r), 0);
    scripted_pump(&s);
    epode_stanza_t *get = scripted_next(&s);
    CHECK(get);
    CHECK(epode_stanza_get_attr(epode_stanza_find_child(get, "query", EPODE_NS_ROSTER), "ver") == NULL);
    CHECK_INT(epode_roster_count(r), 0);
    /* without ver, an empty answer is an empty roster */
    sendf(&s, "<iq type='result' id='%s'/>", epode_stanza_get_id(get));
    CHECK_INT(epode_roster_is_received(r), 1);
    CHECK_INT(epode_roster_count(r), 0);
    epode_roster_free(r);
    scripted_free(&s);
}

/* Ends the stream from the server side and logs in again over a new pipe. */
static int relogin(scripted *s)
{
    scripted_send(s, "</stream:stream>");
    if (epode_conn_is_ready(s->conn))
        return -1;
    epode__transport_free(s->server);
    s->server = NULL;
    epode_parser_reset(s->parser);
    epode__transport *client;
    if (epode__memory_pair(NULL, &client, &s->server) < 0 ||
        epode__conn_start_over(s->conn, client) < 0)
        return -1;
    scripted_pump(s);
    scripted_send(s, SCRIPTED_HDR "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:"
                     "xmpp-sasl'><mechanism>ANONYMOUS</mechanism></mechanisms></stream:features>");
    epode_stanza_t *auth = scripted_next(s);
    if (!auth || strcmp(epode_stanza_get_name(auth), "auth") != 0)
        return -1;
    epode_parser_reset(s->parser);
    scripted_send(s, "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>");
    scripted_send(s, SCRIPTED_HDR "<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>"
                     "</stream:features>");
    epode_stanza_t *bind = scripted_next(s);
    if (!bind)
        return -1;
    char xml[512];
    snprintf(xml, sizeof xml, "<iq type='result' id='%s'><bind xmlns='urn:ietf:params:xml:ns:"
             "xmpp-bind'><jid>" ME "</jid></bind></iq>", epode_stanza_get_id(bind));
    scripted_send(s, xml);
    return epode_conn_is_ready(s->conn) ? 0 : -1;
}

TEST(roster_reconnect_fetches_with_the_version_held)
{
    scripted s;
    epode_roster_t *r;
    seen sn;
    const char *id = setup(&s, &r, &sn);
    CHECK(id);
    sendf(&s, ROSTER3, id);
    CHECK_INT(relogin(&s), 0);
    CHECK_INT(epode_roster_is_received(r), 0);
    CHECK_INT(epode_roster_count(r), 3); /* kept while disconnected */
    epode_stanza_t *get = scripted_next(&s);
    CHECK(get);
    CHECK_STR(epode_stanza_get_type(get), "get");
    epode_stanza_t *q = epode_stanza_find_child(get, "query", EPODE_NS_ROSTER);
    CHECK(q);
    CHECK_STR(epode_stanza_get_attr(q, "ver"), "v1");
    sendf(&s, "<iq type='result' id='%s'/>", epode_stanza_get_id(get));
    CHECK_INT(sn.received, 2);
    CHECK_INT(epode_roster_is_received(r), 1);
    CHECK_INT(epode_roster_count(r), 3);
    epode_roster_free(r);
    scripted_free(&s);
}

TEST(roster_fetch_canceled_by_disconnect_then_retried)
{
    scripted s;
    epode_roster_t *r;
    seen sn;
    const char *id = setup(&s, &r, &sn);
    CHECK(id);
    CHECK_INT(relogin(&s), 0);
    CHECK_INT(sn.failed, 1); /* the first fetch never got its answer */
    epode_stanza_t *get = scripted_next(&s);
    CHECK(get);
    CHECK(epode_stanza_get_attr(epode_stanza_find_child(get, "query", EPODE_NS_ROSTER), "ver") == NULL);
    sendf(&s, ROSTER3, epode_stanza_get_id(get));
    CHECK_INT(sn.received, 1);
    epode_roster_free(r);
    scripted_free(&s);
}

/* ---- add / remove ---------------------------------------------------------- */

typedef struct result { int calls, status; epode_stanza_cond_t cond; char text[64]; } result;

static void on_result(epode_roster_t *r, int status, epode_stanza_cond_t cond, const char *text,
                      void *user)
{
    (void)r;
    result *res = user;
    res->calls++;
    res->status = status;
    res->cond = cond;
    snprintf(res->text, sizeof res->text, "%s", text ? text : "");
}

TEST(roster_add_sends_item_and_reports_result)
{
    scripted s;
    epode_roster_t *r;
    seen sn;
    const char *id = setup(&s, &r, &sn);
    CHECK(id);
    sendf(&s, ROSTER3, id);
    result res = {0};
    static const char *const g[] = {"Friends", "Verona", "Friends"};
    CHECK_INT(epode_roster_add(r, "mercutio@example.net", "Mercutio <M&>", g, 3, on_result, &res), 0);
    scripted_pump(&s);
    epode_stanza_t *set = scripted_next(&s);
    CHECK(set);
    char *t;
    CHECK_INT(epode_stanza_to_text(set, EPODE_TEXT_IN_STREAM, &t, NULL), 0);
    char want[512];
    snprintf(want, sizeof want, "<iq type=\"set\" id=\"%s\"><query xmlns=\"jabber:iq:roster\">"
             "<item jid=\"mercutio@example.net\" name=\"Mercutio &lt;M&amp;&gt;\"><group>Friends"
             "</group><group>Verona</group></item></query></iq>", epode_stanza_get_id(set));
    int same = strcmp(t, want) == 0;
    if (!same)
        printf("# got %s\n", t);
    epode_free(t);
    CHECK(same);
    CHECK_INT(res.calls, 0);
    sendf(&s, "<iq type='result' id='%s'/>", epode_stanza_get_id(set));
    CHECK_INT(res.calls, 1);
    CHECK_INT(res.status, 0);
    CHECK_INT(res.cond, EPODE_COND_NONE);
    CHECK(epode_roster_find(r, "mercutio@example.net") == NULL); /* the push does that */

    /* remove, refused */
    result res2 = {0};
    CHECK_INT(epode_roster_remove(r, "romeo@example.net", on_result, &res2), 0);
    scripted_pump(&s);
    set = scripted_next(&s);
    CHECK(set);
    epode_stanza_t *item = epode_stanza_find_child(epode_stanza_find_child(set, "query",
                                                   EPODE_NS_ROSTER), "item", EPODE_NS_ROSTER);
    CHECK_STR(epode_stanza_get_attr(item, "subscription"), "remove");
    CHECK_STR(epode_stanza_get_attr(item, "jid"), "romeo@example.net");
    sendf(&s, "<iq type='error' id='%s'><error type='cancel'><item-not-found xmlns='urn:ietf:"
              "params:xml:ns:xmpp-stanzas'/><text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>"
              "no such</text></error></iq>", epode_stanza_get_id(set));
    CHECK_INT(res2.calls, 1);
    CHECK_INT(res2.status, 0);
    CHECK_INT(res2.cond, EPODE_COND_ITEM_NOT_FOUND);
    CHECK_STR(res2.text, "no such");

    /* an error without a condition still reads as a failure */
    result res3 = {0};
    CHECK_INT(epode_roster_add(r, "x@example.net", NULL, NULL, 0, on_result, &res3), 0);
    scripted_pump(&s);
    set = scripted_next(&s);
    CHECK(set);
    sendf(&s, "<iq type='error' id='%s'/>", epode_stanza_get_id(set));
    CHECK_INT(res3.calls, 1);
    CHECK_INT(res3.cond, EPODE_COND_UNDEFINED_CONDITION);

    /* bad arguments: refused at once, callback never called */
    static const char *const empty[] = {""};
    CHECK_INT(epode_roster_add(r, "bad@@jid", NULL, NULL, 0, on_result, &res3), EPODE_EJID);
    CHECK_INT(epode_roster_add(r, "ok@example.net", NULL, empty, 1, on_result, &res3), EPODE_EINVAL);
    CHECK_INT(epode_roster_add(r, NULL, NULL, NULL, 0, on_result, &res3), EPODE_EINVAL);
    CHECK_INT(epode_roster_remove(r, "", on_result, &res3), EPODE_EJID);
    CHECK_INT(res3.calls, 1);
    scripted_pump(&s);
    CHECK(scripted_next(&s) == NULL);
    epode_roster_free(r);
    scripted_free(&s);
}

TEST(roster_free_cancels_pending_requests)
{
    scripted s;
    epode_roster_t *r;
    seen sn;
    const char *id = setup(&s, &r, &sn);
    CHECK(id);
    result res = {0};
    CHECK_INT(epode_roster_add(r, "a@example.net", "A", NULL, 0, on_result, &res), 0);
    CHECK_INT(epode_roster_remove(r, "b@example.net", NULL, NULL), 0);
    scripted_pump(&s);
    epode_stanza_t *set = scripted_next(&s);
    CHECK(set);
    CHECK(scripted_next(&s)); /* the remove */
    epode_roster_free(r); /* fetch, add and remove still out */
    CHECK_INT(res.calls, 1);
    CHECK_INT(res.status, EPODE_ECANCELED);
    /* late answers and pushes find nobody: pushes get the fallback */
    sendf(&s, ROSTER3, id);
    sendf(&s, "<iq type='result' id='%s'/>", epode_stanza_get_id(set));
    scripted_send(&s, "<iq type='set' id='late'><query xmlns='jabber:iq:roster'><item "
                      "jid='z@example.net'/></query></iq>");
    const char *t = scripted_next_text(&s);
    if (!strstr(t, "service-unavailable"))
        printf("# got %s\n", t);
    CHECK(strstr(t, "service-unavailable"));
    CHECK_INT(res.calls, 1);
    scripted_free(&s);
}

TEST(roster_requests_refused_when_not_ready)
{
    epode_ctx_t *ctx;
    epode_conn_t *conn;
    CHECK_INT(epode_global_init(), 0);
    CHECK_INT(epode_ctx_new(NULL, &ctx), 0);
    CHECK_INT(epode_conn_new(ctx, &conn), 0);
    epode_roster_t *r;
    CHECK_INT(epode_roster_new(conn, &r), 0);
    CHECK_INT(epode_roster_fetch(r), EPODE_ESTATE);
    CHECK_INT(epode_roster_add(r, "a@example.net", NULL, NULL, 0, NULL, NULL), EPODE_ESTATE);
    CHECK_INT(epode_roster_load_item(r, "a@example.net", NULL, EPODE_ROSTER_SUB_REMOVE, 0, NULL, 0),
              EPODE_EINVAL);
    CHECK_INT(epode_roster_load_item(r, "a@@", NULL, EPODE_ROSTER_SUB_NONE, 0, NULL, 0), EPODE_EJID);
    CHECK_INT(epode_roster_load_item(r, "b@example.net", "B", EPODE_ROSTER_SUB_TO, 0, NULL, 0), 0);
    CHECK_INT(epode_roster_load_item(r, "B@example.net", "B2", EPODE_ROSTER_SUB_TO, 0, NULL, 0), 0);
    CHECK_INT(epode_roster_count(r), 1);
    CHECK_STR(epode_roster_item_name(epode_roster_find(r, "b@example.net")), "B2");
    CHECK_INT(epode_roster_new(NULL, &r) , EPODE_EINVAL);
    CHECK_STR(epode_roster_sub_name(EPODE_ROSTER_SUB_BOTH), "both");
    CHECK(epode_roster_sub_name((epode_roster_sub_t)42) == NULL);
    epode_roster_free(r);
    epode_roster_free(NULL);
    epode_conn_free(conn);
    epode_ctx_free(ctx);
}

/* ---- allocation through the context's allocator ------------------------- */

/* The calls of a workload: the first error, and whether any call
 * returned something else than 0 or EPODE_ENOMEM. */
typedef struct run {
    int rc, bad;
    scripted *s;
    scripted_mem *mm;
    seen sn;
    result res;
    size_t count;
    char ver[16];
} run;

static int step(run *r, int rc)
{
    /* Out of memory, the library itself may drop the stream: what is sent
     * after that fails with EPODE_ESTATE, which is then no surprise. */
    int ok = rc == 0 || rc == EPODE_ENOMEM ||
             (rc == EPODE_ESTATE && !epode_conn_is_ready(r->s->conn));
    if (!ok) {
        printf("# unexpected %d\n", rc);
        r->bad = 1;
    }
    if (rc < 0 && r->rc == 0)
        r->rc = rc;
    return rc;
}

/* The next IQ of `type` the client sent with a roster query, or NULL. */
static epode_stanza_t *next_roster_iq(scripted *s, const char *type)
{
    epode_stanza_t *st;
    while ((st = scripted_next(s)))
        if (strcmp(epode_stanza_get_name(st), "iq") == 0 && epode_stanza_get_type(st) &&
            strcmp(epode_stanza_get_type(st), type) == 0 &&
            epode_stanza_find_child(st, "query", EPODE_NS_ROSTER))
            return st;
    return NULL;
}

/* What the roster holds is whole: sorted, every item findable, and what
 * its version says (none: nothing yet, or the result without its
 * version; v1: the result; v2: the push applied too). A dropped stream
 * (the library out of memory) makes it not received but keeps it. */
static int roster_consistent(const epode_roster_t *r)
{
    size_t n = epode_roster_count(r);
    for (size_t i = 0; i < n; i++) {
        const epode_roster_item_t *it = epode_roster_item_at(r, i);
        if (!it || epode_roster_find(r, epode_roster_item_jid(it)) != it ||
            (i > 0 && strcmp(epode_roster_item_jid(epode_roster_item_at(r, i - 1)),
                             epode_roster_item_jid(it)) >= 0))
            return 0;
    }
    const char *ver = epode_roster_ver(r);
    int tybalt = epode_roster_find(r, "tybalt@example.org") != NULL;
    if (epode_roster_is_received(r) && n == 0)
        return 0;
    if (!ver)
        return n == 0 || (n == 3 && !tybalt);
    if (strcmp(ver, "v1") == 0)
        return n == 3 && !tybalt;
    return strcmp(ver, "v2") == 0 && n == 4 && tybalt;
}

/* A roster made on a READY connection: the result of its fetch, a push,
 * an item added and its answer. */
static void workload(run *r)
{
    scripted *s = r->s;
    epode_roster_t *ro;
    memset(&r->sn, 0, sizeof r->sn);
    memset(&r->res, 0, sizeof r->res);
    if (step(r, epode_roster_new(s->conn, &ro)) < 0)
        return;
    step(r, epode_roster_set_event_cb(ro, on_roster, &r->sn));
    epode_roster_cache_t c = {.store = on_store, .user = &r->sn};
    step(r, epode_roster_set_cache(ro, &c));
    step(r, epode_roster_fetch(ro));
    scripted_pump(s);
    epode_stanza_t *get = next_roster_iq(s, "get");
    if (get)
        sendf(s, ROSTER3, epode_stanza_get_id(get));
    scripted_send(s, "<iq type='set' id='push1'><query xmlns='jabber:iq:roster' ver='v2'>"
                     "<item jid='tybalt@example.org' name='T' subscription='none'>"
                     "<group>Foes</group></item></query></iq>");
    static const char *const g[] = {"Friends", "Verona"};
    int added = step(r, epode_roster_add(ro, "mercutio@example.net", "Mercutio", g, 2,
                                         on_result, &r->res)) == 0;
    scripted_pump(s);
    epode_stanza_t *set = next_roster_iq(s, "set");
    if (set)
        sendf(s, "<iq type='result' id='%s'/>", epode_stanza_get_id(set));
    /* the lookups allocate: look with allocations working again */
    long fail_at = r->mm->fail_at;
    r->mm->fail_at = -1;
    if (!roster_consistent(ro)) {
        printf("# roster inconsistent: received %d ver %s count %zu\n", epode_roster_is_received(ro), epode_roster_ver(ro) ? epode_roster_ver(ro) : "-", epode_roster_count(ro));
        r->bad = 1;
    }
    r->count = epode_roster_count(ro);
    snprintf(r->ver, sizeof r->ver, "%s", epode_roster_ver(ro) ? epode_roster_ver(ro) : "-");
    r->mm->fail_at = fail_at;
    epode_roster_free(ro);
    /* an add that went out is answered exactly once (canceled at worst) */
    if (r->res.calls != added) {
        printf("# add answered %d times\n", r->res.calls);
        r->bad = 1;
    }
}

/* How many allocations a bare login takes. */
static long bare_login_calls(void)
{
    scripted_mem mm;
    scripted_mem_init(&mm);
    mm.fail_at = LONG_MAX; /* count, never fail */
    scripted s;
    if (scripted_login_mem(&s, &mm.mem, "juliet@example.com", ME) < 0)
        return -1;
    long calls = mm.calls;
    scripted_free(&s);
    return mm.live == 0 ? calls : -1;
}

TEST(roster_allocates_through_the_context)
{
    long bare = bare_login_calls();
    CHECK(bare > 0);
    scripted_mem mm;
    scripted_mem_init(&mm);
    mm.fail_at = LONG_MAX;
    scripted s;
    CHECK_INT(scripted_login_mem(&s, &mm.mem, "juliet@example.com", ME), 0);
    CHECK_INT(mm.calls, bare);
    run r = {.s = &s, .mm = &mm};
    workload(&r);
    CHECK_INT(r.rc, 0);
    CHECK_INT(r.bad, 0);
    CHECK(mm.calls > bare);
    CHECK_INT(r.count, 4);
    CHECK_STR(r.ver, "v2");
    CHECK_INT(r.sn.added, 4);
    CHECK_INT(r.sn.received, 1);
    CHECK_INT(r.res.calls, 1);
    CHECK_INT(r.res.status, 0);
    scripted_free(&s);
    CHECK_INT(mm.live, 0);
}

TEST(roster_survives_every_failing_allocation)
{
    long n;
    int done = 0;
    for (n = 0; !done && n < 100000; n++) {
        scripted_mem mm;
        scripted_mem_init(&mm);
        mm.fail_at = LONG_MAX;
        scripted s;
        CHECK_INT(scripted_login_mem(&s, &mm.mem, "juliet@example.com", ME), 0);
        mm.fail_at = mm.calls + n; /* the nth allocation after login on fails */
        run r = {.s = &s, .mm = &mm};
        workload(&r);
        scripted_free(&s);
        done = mm.calls <= mm.fail_at; /* nothing failed: all points covered */
        if (r.bad || mm.live != 0)
            printf("# failing from allocation %ld after login: bad %d, %ld live\n", n, r.bad,
                   mm.live);
        CHECK_INT(r.bad, 0);
        CHECK_INT(mm.live, 0);
        if (done)
            CHECK_INT(r.rc, 0);
    }
    CHECK(done);
    printf("# %ld allocation points swept\n", n - 1);
}

TEST_MAIN
