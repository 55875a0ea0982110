/* tests/unit/test_im_presence.c — presence sending, subscriptions and the
 * presence tracker on a scripted server: show/status/priority validation,
 * directed presence, unavailable on close, subscription decisions and
 * auto-accept, resources and the best one, events, errors, DISCONNECTED,
 * and malicious or malformed presence. */
#include "test.h"

#include <limits.h>

#include "scripted.h"

#define ME "anon@example.com/r1"

static char ev_log[4096];

static void on_change(epode_conn_t *conn, const epode_presence_info_t *i,
                      epode_presence_change_t ch, void *user)
{
    (void)conn;
    (void)user;
    static const char *names[] = {"?", "avail", "changed", "unavail", "error"};
    char line[512];
    snprintf(line, sizeof line, "%s %s %s %d %s %s;", names[ch], epode_presence_info_jid(i),
             epode_show_name(epode_presence_info_show(i)), epode_presence_info_priority(i),
             epode_presence_info_status(i) ? epode_presence_info_status(i) : "-",
             epode_presence_info_error(i) ? epode_stanza_cond_name(epode_presence_info_error(i))
                                          : "-");
    strncat(ev_log, line, sizeof ev_log - strlen(ev_log) - 1);
}

static int setup(scripted *s, epode_presence_tracker_t **t)
{
    ev_log[0] = 0;
    if (scripted_login(s, "example.com", ME) < 0 || epode_presence_tracker_new(s->conn, t) < 0)
        return -1;
    return epode_presence_tracker_set_event_cb(*t, on_change, NULL);
}

TEST(presence_build_validates_show_and_priority)
{
    epode_stanza_t *p;
    char *t;
    CHECK_INT(epode_presence_build(NULL, EPODE_SHOW_AWAY, "lunch", 5, &p), 0);
    CHECK_INT(epode_stanza_to_text(p, EPODE_TEXT_IN_STREAM, &t, NULL), 0);
    int ok = strcmp(t, "<presence><show>away</show><status>lunch</status>"
                       "<priority>5</priority></presence>") == 0;
    epode_free(t);
    epode_stanza_unref(p);
    CHECK(ok);
    CHECK_INT(epode_presence_build(NULL, EPODE_SHOW_AVAILABLE, NULL, -128, &p), 0);
    CHECK_STR(epode_stanza_child_text(p, "priority", NULL), "-128");
    CHECK(epode_stanza_find_child(p, "show", NULL) == NULL);
    epode_stanza_unref(p);
    CHECK_INT(epode_presence_build(NULL, EPODE_SHOW_AVAILABLE, NULL, 128, &p), EPODE_ERANGE);
    CHECK_INT(epode_presence_build(NULL, EPODE_SHOW_AVAILABLE, NULL, -129, &p), EPODE_ERANGE);
    CHECK_INT(epode_presence_build(NULL, (epode_show_t)42, NULL, 0, &p), EPODE_EINVAL);
    CHECK_INT(epode_presence_build("not a jid@", EPODE_SHOW_AVAILABLE, NULL, 0, &p), EPODE_EJID);
    CHECK_INT(epode_presence_build("room@muc.example.com/me", EPODE_SHOW_UNAVAILABLE, "bye", 9, &p), 0);
    CHECK_STR(epode_stanza_get_type(p), "unavailable");
    CHECK_STR(epode_stanza_get_to(p), "room@muc.example.com/me");
    CHECK(epode_stanza_find_child(p, "priority", NULL) == NULL);
    epode_stanza_unref(p);
    epode_show_t sh;
    CHECK_INT(epode_show_from_name("dnd", &sh), 0);
    CHECK_INT(sh, EPODE_SHOW_DND);
    CHECK_INT(epode_show_from_name("busy", &sh), EPODE_EINVAL);
    CHECK(epode_show_name((epode_show_t)-1) == NULL);
}

TEST(presence_send_directed_and_close)
{
    scripted s;
    CHECK_INT(scripted_login(&s, "example.com", ME), 0);
    CHECK_INT(epode_presence_send(s.conn, EPODE_SHOW_CHAT, NULL, 1), 0);
    CHECK_INT(epode_presence_send_to(s.conn, "juliet@example.com/b", EPODE_SHOW_DND, "busy", 0), 0);
    scripted_pump(&s);
    CHECK_STR(scripted_next_text(&s), "<presence><show>chat</show><priority>1</priority></presence>");
    CHECK_STR(scripted_next_text(&s), "<presence to=\"juliet@example.com/b\"><show>dnd</show>"
                                      "<status>busy</status></presence>");
    CHECK_INT(epode_presence_close(s.conn, "gone fishing"), 0);
    scripted_pump(&s);
    CHECK_STR(scripted_next_text(&s), "<presence type=\"unavailable\"><status>gone fishing"
                                      "</status></presence>");
    scripted_free(&s);
}

TEST(subscription_requests_are_sent_to_bare_jids)
{
    scripted s;
    CHECK_INT(scripted_login(&s, "example.com", ME), 0);
    CHECK_INT(epode_presence_subscribe(s.conn, "Juliet@Example.com/balcony", "it's me"), 0);
    CHECK_INT(epode_presence_approve(s.conn, "juliet@example.com"), 0);
    CHECK_INT(epode_presence_deny(s.conn, "mallory@evil.example"), 0);
    CHECK_INT(epode_presence_cancel(s.conn, "nurse@example.com"), 0);
    CHECK_INT(epode_presence_unsubscribe(s.conn, "nurse@example.com"), 0);
    CHECK_INT(epode_presence_subscribe(s.conn, "@bad", NULL), EPODE_EJID);
    scripted_pump(&s);
    CHECK_STR(scripted_next_text(&s), "<presence type=\"subscribe\" to=\"juliet@example.com\">"
                                      "<status>it's me</status></presence>");
    CHECK_STR(scripted_next_text(&s), "<presence type=\"subscribed\" to=\"juliet@example.com\"/>");
    CHECK_STR(scripted_next_text(&s), "<presence type=\"unsubscribed\" to=\"mallory@evil.example\"/>");
    CHECK_STR(scripted_next_text(&s), "<presence type=\"unsubscribed\" to=\"nurse@example.com\"/>");
    CHECK_STR(scripted_next_text(&s), "<presence type=\"unsubscribe\" to=\"nurse@example.com\"/>");
    scripted_free(&s);
}

static int sub_answer, sub_calls, sub_what;
static char sub_from[256], sub_status[256];

static int on_sub(epode_conn_t *conn, const char *from, epode_subscription_t what,
                  const char *status, void *user)
{
    (void)conn;
    (void)user;
    sub_calls++;
    sub_what = (int)what;
    snprintf(sub_from, sizeof sub_from, "%s", from);
    snprintf(sub_status, sizeof sub_status, "%s", status ? status : "-");
    return sub_answer;
}

TEST(subscription_requests_reach_the_application)
{
    scripted s;
    epode_presence_tracker_t *t;
    CHECK_INT(setup(&s, &t), 0);
    CHECK_INT(epode_presence_tracker_set_subscription_cb(t, on_sub, NULL), 0);
    sub_calls = 0;
    sub_answer = EPODE_SUB_DEFER;
    scripted_send(&s, "<presence type='subscribe' from='Juliet@example.com/x'><status>hi</status></presence>");
    CHECK_INT(sub_calls, 1);
    CHECK_INT(sub_what, EPODE_SUB_REQUEST);
    CHECK_STR(sub_from, "juliet@example.com");
    CHECK_STR(sub_status, "hi");
    CHECK(scripted_next(&s) == NULL); /* deferred: nothing sent */
    sub_answer = EPODE_SUB_ACCEPT;
    scripted_send(&s, "<presence type='subscribe' from='juliet@example.com'/>");
    CHECK_STR(scripted_next_text(&s), "<presence type=\"subscribed\" to=\"juliet@example.com\"/>");
    sub_answer = EPODE_SUB_REFUSE;
    scripted_send(&s, "<presence type='subscribe' from='mallory@evil.example'/>");
    CHECK_STR(scripted_next_text(&s), "<presence type=\"unsubscribed\" to=\"mallory@evil.example\"/>");
    scripted_send(&s, "<presence type='subscribed' from='juliet@example.com'/>");
    CHECK_INT(sub_what, EPODE_SUB_APPROVED);
    scripted_send(&s, "<presence type='unsubscribed' from='juliet@example.com'/>");
    CHECK_INT(sub_what, EPODE_SUB_REVOKED);
    scripted_send(&s, "<presence type='unsubscribe' from='juliet@example.com'/>");
    CHECK_INT(sub_what, EPODE_SUB_ENDED);
    CHECK(scripted_next(&s) == NULL); /* only requests are answered */
    /* garbage senders are ignored */
    scripted_send(&s, "<presence type='subscribe' from='@@'/>");
    scripted_send(&s, "<presence type='subscribe'/>");
    CHECK_INT(sub_calls, 6);
    epode_presence_tracker_free(t);
    scripted_free(&s);
}

TEST(subscription_auto_accept)
{
    scripted s;
    epode_presence_tracker_t *t;
    CHECK_INT(setup(&s, &t), 0);
    CHECK_INT(epode_presence_tracker_set_auto_accept(t, 7), EPODE_EINVAL);
    CHECK_INT(epode_presence_tracker_set_auto_accept(t, EPODE_AUTO_ACCEPT_ON), 0);
    scripted_send(&s, "<presence type='subscribe' from='juliet@example.com'/>");
    CHECK_STR(scripted_next_text(&s), "<presence type=\"subscribed\" to=\"juliet@example.com\"/>");
    CHECK(scripted_next(&s) == NULL);
    CHECK_INT(epode_presence_tracker_set_auto_accept(t, EPODE_AUTO_ACCEPT_MUTUAL), 0);
    scripted_send(&s, "<presence type='subscribe' from='romeo@example.com'/>");
    CHECK_STR(scripted_next_text(&s), "<presence type=\"subscribed\" to=\"romeo@example.com\"/>");
    CHECK_STR(scripted_next_text(&s), "<presence type=\"subscribe\" to=\"romeo@example.com\"/>");
    /* the application's refusal wins over auto-accept */
    CHECK_INT(epode_presence_tracker_set_subscription_cb(t, on_sub, NULL), 0);
    sub_answer = EPODE_SUB_REFUSE;
    scripted_send(&s, "<presence type='subscribe' from='mallory@evil.example'/>");
    CHECK_STR(scripted_next_text(&s), "<presence type=\"unsubscribed\" to=\"mallory@evil.example\"/>");
    CHECK(scripted_next(&s) == NULL);
    epode_presence_tracker_free(t);
    scripted_free(&s);
}

TEST(tracker_follows_resources_and_best)
{
    scripted s;
    epode_presence_tracker_t *t;
    CHECK_INT(setup(&s, &t), 0);
    scripted_send(&s, "<presence from='juliet@example.com/balcony'><priority>5</priority>"
                      "<show>away</show><status>out</status></presence>");
    scripted_send(&s, "<presence from='juliet@example.com/chamber'><priority>5</priority></presence>");
    scripted_send(&s, "<presence from='romeo@example.net/phone'/>");
    CHECK_STR(ev_log, "avail juliet@example.com/balcony away 5 out -;"
                      "avail juliet@example.com/chamber available 5 - -;"
                      "avail romeo@example.net/phone available 0 - -;");
    CHECK_INT(epode_presence_tracker_contact_count(t), 2);
    CHECK_INT(epode_presence_tracker_resource_count(t, "juliet@example.com"), 2);
    CHECK_INT(epode_presence_tracker_resource_count(t, "JULIET@example.com/any"), 2);
    CHECK_INT(epode_presence_tracker_resource_count(t, "nobody@example.com"), 0);
    /* same priority: the more available show wins */
    const epode_presence_info_t *b = epode_presence_tracker_best(t, "juliet@example.com");
    CHECK(b != NULL);
    CHECK_STR(epode_presence_info_resource(b), "chamber");
    CHECK_STR(epode_presence_info_bare(b), "juliet@example.com");
    CHECK(epode_presence_info_stanza(b) != NULL);
    /* higher priority beats show */
    ev_log[0] = 0;
    scripted_send(&s, "<presence from='juliet@example.com/balcony'><priority>6</priority>"
                      "<show>away</show><status>out</status></presence>");
    CHECK_STR(ev_log, "changed juliet@example.com/balcony away 6 out -;");
    b = epode_presence_tracker_get(t, "juliet@example.com");
    CHECK_STR(epode_presence_info_resource(b), "balcony");
    /* a repeat that changes nothing is no event */
    ev_log[0] = 0;
    scripted_send(&s, "<presence from='juliet@example.com/balcony'><priority>6</priority>"
                      "<show>away</show><status>out</status></presence>");
    CHECK_STR(ev_log, "");
    /* equal priority and show: the most recent wins */
    scripted_send(&s, "<presence from='juliet@example.com/balcony'><priority>5</priority></presence>");
    scripted_send(&s, "<presence from='juliet@example.com/chamber'><priority>5</priority>"
                      "<status>x</status></presence>");
    b = epode_presence_tracker_best(t, "juliet@example.com");
    CHECK_STR(epode_presence_info_resource(b), "chamber");
    scripted_send(&s, "<presence from='juliet@example.com/balcony'><priority>5</priority>"
                      "<status>y</status></presence>");
    b = epode_presence_tracker_best(t, "juliet@example.com");
    CHECK_STR(epode_presence_info_resource(b), "balcony");
    /* a specific resource */
    const epode_presence_info_t *c = epode_presence_tracker_get(t, "juliet@example.com/chamber");
    CHECK_STR(epode_presence_info_status(c), "x");
    CHECK(epode_presence_tracker_get(t, "juliet@example.com/nope") == NULL);
    CHECK(epode_presence_tracker_get(t, "@@") == NULL);
    /* one goes offline */
    ev_log[0] = 0;
    scripted_send(&s, "<presence type='unavailable' from='juliet@example.com/balcony'>"
                      "<status>bye</status></presence>");
    CHECK_STR(ev_log, "unavail juliet@example.com/balcony unavailable 5 bye -;");
    CHECK_INT(epode_presence_tracker_resource_count(t, "juliet@example.com"), 1);
    CHECK_STR(epode_presence_info_resource(epode_presence_tracker_resource_at(t, "juliet@example.com", 0)),
              "chamber");
    /* the last one: the contact is gone */
    scripted_send(&s, "<presence type='unavailable' from='juliet@example.com/chamber'/>");
    CHECK_INT(epode_presence_tracker_contact_count(t), 1);
    CHECK_STR(epode_presence_tracker_contact_at(t, 0), "romeo@example.net");
    CHECK(epode_presence_tracker_best(t, "juliet@example.com") == NULL);
    /* unavailable for someone unknown: nothing */
    ev_log[0] = 0;
    scripted_send(&s, "<presence type='unavailable' from='ghost@example.com/x'/>");
    CHECK_STR(ev_log, "");
    epode_presence_tracker_free(t);
    scripted_free(&s);
}

TEST(tracker_bare_unavailable_and_errors)
{
    scripted s;
    epode_presence_tracker_t *t;
    CHECK_INT(setup(&s, &t), 0);
    scripted_send(&s, "<presence from='juliet@example.com/a'/>");
    scripted_send(&s, "<presence from='juliet@example.com/b'/>");
    scripted_send(&s, "<presence from='romeo@example.net/a'/>");
    scripted_send(&s, "<presence from='romeo@example.net/b'/>");
    ev_log[0] = 0;
    /* unavailable from the bare JID: every resource goes */
    scripted_send(&s, "<presence type='unavailable' from='juliet@example.com'/>");
    CHECK_STR(ev_log, "unavail juliet@example.com/a unavailable 0 - -;"
                      "unavail juliet@example.com/b unavailable 0 - -;");
    /* an error from one resource removes it; from the bare JID, all */
    ev_log[0] = 0;
    scripted_send(&s, "<presence type='error' from='romeo@example.net/a'><error type='cancel'>"
                      "<item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></presence>");
    CHECK_STR(ev_log, "error romeo@example.net/a unavailable 0 - item-not-found;");
    CHECK_INT(epode_presence_tracker_resource_count(t, "romeo@example.net"), 1);
    ev_log[0] = 0;
    scripted_send(&s, "<presence type='error' from='romeo@example.net'><error type='cancel'>"
                      "<remote-server-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></presence>");
    CHECK_STR(ev_log, "error romeo@example.net/b unavailable 0 - remote-server-not-found;");
    CHECK_INT(epode_presence_tracker_contact_count(t), 0);
    /* an error about someone unknown is still reported; without <error/>
     * it is undefined-condition */
    ev_log[0] = 0;
    scripted_send(&s, "<presence type='error' from='nobody@example.org'/>");
    CHECK_STR(ev_log, "error nobody@example.org unavailable 0 - undefined-condition;");
    CHECK_INT(epode_presence_tracker_contact_count(t), 0);
    epode_presence_tracker_free(t);
    scripted_free(&s);
}

TEST(tracker_ignores_malformed_and_muc_presence)
{
    scripted s;
    epode_presence_tracker_t *t;
    CHECK_INT(setup(&s, &t), 0);
    scripted_send(&s, "<presence/>");                                    /* no from */
    scripted_send(&s, "<presence from='a@@b/c'/>");                      /* not a JID */
    scripted_send(&s, "<presence from='room@muc.example.com/nick'>"
                      "<x xmlns='http://jabber.org/protocol/muc#user'/></presence>");
    scripted_send(&s, "<presence type='probe' from='juliet@example.com'/>");
    scripted_send(&s, "<presence type='bogus' from='juliet@example.com/x'/>");
    CHECK_STR(ev_log, "");
    CHECK_INT(epode_presence_tracker_contact_count(t), 0);
    /* invalid show and priority values degrade to the defaults */
    scripted_send(&s, "<presence from='juliet@example.com/x'><show>sleeping</show>"
                      "<priority>1000</priority><status xml:lang='de'>weg</status>"
                      "<status>away</status></presence>");
    CHECK_STR(ev_log, "avail juliet@example.com/x available 0 away -;");
    ev_log[0] = 0;
    scripted_send(&s, "<presence from='juliet@example.com/x'><show>unavailable</show>"
                      "<priority>12abc</priority><status xml:lang='de'>weg</status></presence>");
    CHECK_STR(ev_log, "changed juliet@example.com/x available 0 weg -;");
    ev_log[0] = 0;
    scripted_send(&s, "<presence from='juliet@example.com/x'><priority> -3 </priority>"
                      "<status xml:lang='de'>weg</status></presence>");
    CHECK_STR(ev_log, "changed juliet@example.com/x available -3 weg -;");
    /* presence from a bare JID is tracked as such */
    ev_log[0] = 0;
    scripted_send(&s, "<presence from='gateway.example.com'/>");
    CHECK_STR(ev_log, "avail gateway.example.com available 0 - -;");
    const epode_presence_info_t *g = epode_presence_tracker_get(t, "gateway.example.com");
    CHECK(g != NULL);
    CHECK(epode_presence_info_resource(g) == NULL);
    epode_presence_tracker_free(t);
    scripted_free(&s);
}

TEST(tracker_cleared_on_disconnect)
{
    scripted s;
    epode_presence_tracker_t *t;
    CHECK_INT(setup(&s, &t), 0);
    scripted_send(&s, "<presence from='juliet@example.com/a'/>");
    CHECK_INT(epode_presence_tracker_contact_count(t), 1);
    scripted_send(&s, "</stream:stream>");
    scripted_pump(&s);
    CHECK(!epode_conn_is_ready(s.conn));
    CHECK_INT(epode_presence_tracker_contact_count(t), 0);
    CHECK(epode_presence_tracker_best(t, "juliet@example.com") == NULL);
    epode_presence_tracker_free(t);
    scripted_free(&s);
}

static epode_presence_tracker_t *g_tracker;
static int g_seen_inside;

static void on_change_query(epode_conn_t *conn, const epode_presence_info_t *i,
                            epode_presence_change_t ch, void *user)
{
    (void)conn;
    (void)user;
    (void)i;
    /* the tracker is consistent inside its own callback */
    if (ch == EPODE_PRESENCE_UNAVAILABLE)
        g_seen_inside = (int)epode_presence_tracker_resource_count(g_tracker, "juliet@example.com");
}

TEST(tracker_is_consistent_inside_callbacks)
{
    scripted s;
    CHECK_INT(setup(&s, &g_tracker), 0);
    CHECK_INT(epode_presence_tracker_set_event_cb(g_tracker, on_change_query, NULL), 0);
    scripted_send(&s, "<presence from='juliet@example.com/a'/>");
    scripted_send(&s, "<presence from='juliet@example.com/b'/>");
    g_seen_inside = -1;
    scripted_send(&s, "<presence type='unavailable' from='juliet@example.com/a'/>");
    CHECK_INT(g_seen_inside, 1);
    epode_presence_tracker_free(g_tracker);
    scripted_free(&s);
}

TEST(tracker_many_contacts)
{
    scripted s;
    epode_presence_tracker_t *t;
    CHECK_INT(setup(&s, &t), 0);
    CHECK_INT(epode_presence_tracker_set_event_cb(t, NULL, NULL), 0);
    char xml[256];
    for (int i = 0; i < 200; i++) {
        snprintf(xml, sizeof xml, "<presence from='u%d@example.com/r%d'/>", i % 50, i);
        scripted_send(&s, xml);
    }
    CHECK_INT(epode_presence_tracker_contact_count(t), 50);
    CHECK_INT(epode_presence_tracker_resource_count(t, "u7@example.com"), 4);
    epode_presence_tracker_free(t);
    scripted_free(&s);
}

/* ---- allocation through the context's allocator ------------------------- */

/* The calls of a workload: the first error, and whether any call
 * returned something else than 0 or EPODE_ENOMEM. */
typedef struct run {
    int rc, bad;
    scripted *s;
    scripted_mem *mm;
    size_t contacts, resources;
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

/* Every contact the tracker holds has a resource, and every resource
 * belongs to its contact: nothing half-added. */
static int tracker_consistent(epode_presence_tracker_t *t)
{
    for (size_t i = 0; i < epode_presence_tracker_contact_count(t); i++) {
        const char *bare = epode_presence_tracker_contact_at(t, i);
        size_t n = epode_presence_tracker_resource_count(t, bare);
        if (n == 0)
            return 0;
        for (size_t k = 0; k < n; k++) {
            const epode_presence_info_t *info = epode_presence_tracker_resource_at(t, bare, k);
            if (!info || strcmp(epode_presence_info_bare(info), bare) != 0 ||
                strncmp(epode_presence_info_jid(info), bare, strlen(bare)) != 0)
                return 0;
        }
    }
    return 1;
}

/* A tracker with mutual auto-accept: presences from two resources of one
 * contact, a change, a subscription request, our own presence. */
static void workload(run *r)
{
    scripted *s = r->s;
    epode_presence_tracker_t *t;
    ev_log[0] = 0;
    if (step(r, epode_presence_tracker_new(s->conn, &t)) < 0)
        return;
    step(r, epode_presence_tracker_set_event_cb(t, on_change, NULL));
    step(r, epode_presence_tracker_set_auto_accept(t, EPODE_AUTO_ACCEPT_MUTUAL));
    scripted_send(s, "<presence from='juliet@example.com/balcony'><show>away</show>"
                     "<status>out</status><priority>5</priority></presence>");
    scripted_send(s, "<presence from='juliet@example.com/chamber'><status>here</status>"
                     "</presence>");
    scripted_send(s, "<presence from='juliet@example.com/balcony'><status>back</status>"
                     "<priority>5</priority></presence>");
    scripted_send(s, "<presence type='subscribe' from='romeo@example.net/orchard'/>");
    step(r, epode_presence_send(s->conn, EPODE_SHOW_CHAT, "hello", 1));
    scripted_pump(s);
    /* the lookups parse JIDs: look with allocations working again */
    long fail_at = r->mm->fail_at;
    r->mm->fail_at = -1;
    if (!tracker_consistent(t)) {
        printf("# tracker inconsistent\n");
        r->bad = 1;
    }
    r->contacts = epode_presence_tracker_contact_count(t);
    r->resources = epode_presence_tracker_resource_count(t, "juliet@example.com");
    r->mm->fail_at = fail_at;
    epode_presence_tracker_free(t);
}

/* How many allocations a bare login takes. */
static long bare_login_calls(void)
{
    scripted_mem mm;
    scripted_mem_init(&mm);
    mm.fail_at = LONG_MAX; /* count, never fail */
    scripted s;
    if (scripted_login_mem(&s, &mm.mem, "example.com", ME) < 0)
        return -1;
    long calls = mm.calls;
    scripted_free(&s);
    return mm.live == 0 ? calls : -1;
}

TEST(presence_tracker_allocates_through_the_context)
{
    long bare = bare_login_calls();
    CHECK(bare > 0);
    scripted_mem mm;
    scripted_mem_init(&mm);
    mm.fail_at = LONG_MAX;
    scripted s;
    CHECK_INT(scripted_login_mem(&s, &mm.mem, "example.com", ME), 0);
    CHECK_INT(mm.calls, bare);
    run r = {.s = &s, .mm = &mm};
    workload(&r);
    CHECK_INT(r.rc, 0);
    CHECK_INT(r.bad, 0);
    CHECK(mm.calls > bare);
    CHECK_INT(r.contacts, 1);
    CHECK_INT(r.resources, 2);
    CHECK(strstr(ev_log, "avail juliet@example.com/balcony away 5 out -;"));
    CHECK(strstr(ev_log, "avail juliet@example.com/chamber available 0 here -;"));
    CHECK(strstr(ev_log, "changed juliet@example.com/balcony available 5 back -;"));
    CHECK_STR(scripted_next_text(&s), "<presence type=\"subscribed\" to=\"romeo@example.net\"/>");
    CHECK_STR(scripted_next_text(&s), "<presence type=\"subscribe\" to=\"romeo@example.net\"/>");
    CHECK_STR(scripted_next_text(&s), "<presence><show>chat</show><status>hello</status>"
                                      "<priority>1</priority></presence>");
    scripted_free(&s);
    CHECK_INT(mm.live, 0);
}

TEST(presence_tracker_survives_every_failing_allocation)
{
    long n;
    int done = 0;
    for (n = 0; !done && n < 100000; n++) {
        scripted_mem mm;
        scripted_mem_init(&mm);
        mm.fail_at = LONG_MAX;
        scripted s;
        CHECK_INT(scripted_login_mem(&s, &mm.mem, "example.com", ME), 0);
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

/* Issue 14: the tracker listed our own account among contacts (and
 * reported our own presence, which the server sends back to us). Our
 * other resources stay reachable by our bare JID, silently. */
TEST(tracker_keeps_our_own_account_out_of_the_contacts)
{
    scripted s;
    epode_presence_tracker_t *t;
    CHECK_INT(setup(&s, &t), 0);
    scripted_send(&s, "<presence from='anon@example.com/r1'/>"); /* ours, sent back */
    scripted_send(&s, "<presence from='romeo@example.net/a'><show>away</show></presence>");
    scripted_send(&s, "<presence from='Anon@Example.com/r2'><show>dnd</show></presence>");
    scripted_send(&s, "<presence from='juliet@example.com/balcony'/>");
    scripted_send(&s, "<presence from='anon@example.com/r3'/>");
    CHECK_INT(epode_presence_tracker_contact_count(t), 2);
    CHECK_STR(epode_presence_tracker_contact_at(t, 0), "romeo@example.net");
    CHECK_STR(epode_presence_tracker_contact_at(t, 1), "juliet@example.com");
    CHECK(epode_presence_tracker_contact_at(t, 2) == NULL);
    /* our resources, by our bare JID: answered, though not a contact */
    CHECK_INT(epode_presence_tracker_resource_count(t, "anon@example.com"), 3);
    CHECK_INT(epode_presence_info_show(epode_presence_tracker_get(t, "anon@example.com/r2")),
              EPODE_SHOW_DND);
    CHECK(epode_presence_tracker_get(t, ME) != NULL);
    /* a contact leaving moves entries around: ours stays out */
    scripted_send(&s, "<presence type='unavailable' from='romeo@example.net/a'/>");
    CHECK_INT(epode_presence_tracker_contact_count(t), 1);
    CHECK_STR(epode_presence_tracker_contact_at(t, 0), "juliet@example.com");
    CHECK(epode_presence_tracker_contact_at(t, 1) == NULL);
    scripted_send(&s, "<presence type='unavailable' from='anon@example.com/r2'/>");
    scripted_send(&s, "<presence type='unavailable' from='anon@example.com/r3'/>");
    scripted_send(&s, "<presence type='unavailable' from='anon@example.com/r1'/>");
    CHECK_INT(epode_presence_tracker_resource_count(t, "anon@example.com"), 0);
    CHECK_INT(epode_presence_tracker_contact_count(t), 1);
    CHECK_STR(epode_presence_tracker_contact_at(t, 0), "juliet@example.com");
    /* reported like any presence (an application sees itself online) */
    CHECK(strstr(ev_log, "avail anon@example.com/r2 dnd") != NULL);
    CHECK(strstr(ev_log, "unavail romeo@example.net/a") != NULL);
    epode_presence_tracker_free(t);
    scripted_free(&s);
}

TEST_MAIN
