/* tests/unit/test_dispatch.c — handler tables: matching by name, first
 * child's namespace and type; order; removal and addition from inside a
 * handler; IQ answers accepted only from the right sender; timeouts;
 * cancellation; timed callbacks. */
#include "test.h"

#include <epode.h>

#include "dispatch/dispatch.h"

static epode_conn_t *const CONN = (epode_conn_t *)0x1; /* opaque to dispatch */

static epode_stanza_t *st(const char *xml)
{
    epode_stanza_t *s = NULL;
    epode_stanza_from_text(NULL, xml, (size_t)-1, &s, NULL);
    return s;
}

typedef struct rec {
    char log[512];
    int rc;
    epode__dispatch *d;
    unsigned remove_id;
    int add_more;
} rec;

static void note(rec *r, const char *what)
{
    strncat(r->log, what, sizeof r->log - strlen(r->log) - 1);
}

static int h_a(epode_conn_t *c, epode_stanza_t *s, void *u) { (void)c, (void)s; note(u, "a"); return ((rec *)u)->rc; }
static int h_b(epode_conn_t *c, epode_stanza_t *s, void *u) { (void)c, (void)s; note(u, "b"); return EPODE_PASS; }

static int h_remover(epode_conn_t *c, epode_stanza_t *s, void *u)
{
    (void)c, (void)s;
    rec *r = u;
    note(r, "r");
    epode__dispatch_remove(r->d, r->remove_id);
    if (r->add_more)
        epode__dispatch_add(r->d, NULL, NULL, NULL, h_b, r, NULL);
    return EPODE_PASS;
}

TEST(dispatch_matches_name_namespace_and_type)
{
    epode__dispatch *d;
    CHECK_INT(epode__dispatch_new(NULL, &d), 0);
    rec r = {0};
    CHECK_INT(epode__dispatch_add(d, "message", NULL, "chat", h_a, &r, NULL), 0);
    CHECK_INT(epode__dispatch_add(d, "iq", "urn:xmpp:ping", "get", h_b, &r, NULL), 0);
    epode_stanza_t *m = st("<message xmlns='jabber:client' type='chat'><body>x</body></message>");
    epode_stanza_t *n = st("<message xmlns='jabber:client'><body>x</body></message>");
    epode_stanza_t *p = st("<iq xmlns='jabber:client' type='get' id='1'><ping xmlns='urn:xmpp:ping'/></iq>");
    epode_stanza_t *q = st("<iq xmlns='jabber:client' type='get' id='2'><query xmlns='urn:x'/></iq>");
    epode__dispatch_stanza(d, CONN, m, NULL);
    epode__dispatch_stanza(d, CONN, n, NULL);
    epode__dispatch_stanza(d, CONN, p, NULL);
    epode__dispatch_stanza(d, CONN, q, NULL);
    CHECK_STR(r.log, "ab");
    epode_stanza_unref(m), epode_stanza_unref(n), epode_stanza_unref(p), epode_stanza_unref(q);
    epode__dispatch_free(d);
}

TEST(dispatch_normal_and_available_match_missing_type)
{
    epode__dispatch *d;
    CHECK_INT(epode__dispatch_new(NULL, &d), 0);
    rec r = {0};
    epode__dispatch_add(d, "message", NULL, "normal", h_a, &r, NULL);
    epode__dispatch_add(d, "presence", NULL, "available", h_b, &r, NULL);
    epode_stanza_t *m = st("<message xmlns='jabber:client'/>");
    epode_stanza_t *p = st("<presence xmlns='jabber:client'/>");
    epode_stanza_t *u = st("<presence xmlns='jabber:client' type='unavailable'/>");
    epode__dispatch_stanza(d, CONN, m, NULL);
    epode__dispatch_stanza(d, CONN, p, NULL);
    epode__dispatch_stanza(d, CONN, u, NULL);
    CHECK_STR(r.log, "ab");
    epode_stanza_unref(m), epode_stanza_unref(p), epode_stanza_unref(u);
    epode__dispatch_free(d);
}

TEST(dispatch_runs_all_matching_in_order_and_reports_handled)
{
    epode__dispatch *d;
    CHECK_INT(epode__dispatch_new(NULL, &d), 0);
    rec r = {0};
    r.rc = EPODE_PASS;
    epode__dispatch_add(d, NULL, NULL, NULL, h_a, &r, NULL);
    epode__dispatch_add(d, "iq", NULL, NULL, h_b, &r, NULL);
    epode__dispatch_add(d, NULL, NULL, NULL, h_a, &r, NULL);
    epode_stanza_t *q = st("<iq xmlns='jabber:client' type='get' id='2'/>");
    CHECK_INT(epode__dispatch_stanza(d, CONN, q, NULL), 0);
    CHECK_STR(r.log, "aba");
    r.rc = EPODE_HANDLED;
    CHECK_INT(epode__dispatch_stanza(d, CONN, q, NULL), 1);
    epode_stanza_unref(q);
    epode__dispatch_free(d);
}

TEST(dispatch_remove_inside_handler_takes_effect_at_once)
{
    epode__dispatch *d;
    CHECK_INT(epode__dispatch_new(NULL, &d), 0);
    rec r = {0};
    r.d = d;
    r.add_more = 1;
    epode__dispatch_add(d, NULL, NULL, NULL, h_remover, &r, NULL);
    epode__dispatch_add(d, NULL, NULL, NULL, h_a, &r, &r.remove_id);
    epode_stanza_t *m = st("<message xmlns='jabber:client'/>");
    epode__dispatch_stanza(d, CONN, m, NULL);
    /* h_a removed before its turn; h_b added now waits for the next stanza */
    CHECK_STR(r.log, "r");
    r.add_more = 0;
    epode__dispatch_stanza(d, CONN, m, NULL);
    CHECK_STR(r.log, "rrb");
    CHECK_INT(epode__dispatch_remove(d, r.remove_id), EPODE_ENOTFOUND);
    epode_stanza_unref(m);
    epode__dispatch_free(d);
}

typedef struct iqrec {
    int calls, status;
    char type[16];
} iqrec;

static void iq_cb(epode_conn_t *c, epode_stanza_t *res, int status, void *u)
{
    (void)c;
    iqrec *r = u;
    r->calls++;
    r->status = status;
    snprintf(r->type, sizeof r->type, "%s", res ? epode_stanza_get_type(res) : "-");
}

TEST(dispatch_iq_answer_only_from_the_addressee)
{
    epode__dispatch *d;
    CHECK_INT(epode__dispatch_new(NULL, &d), 0);
    iqrec r = {0};
    CHECK_INT(epode__dispatch_add_iq(d, "q1", "Romeo@Example.net/Orchard", 1000, iq_cb, &r, NULL), 0);
    epode_stanza_t *forged = st("<iq xmlns='jabber:client' type='result' id='q1' from='mallory@evil.example'/>");
    epode_stanza_t *noform = st("<iq xmlns='jabber:client' type='result' id='q1'/>");
    epode_stanza_t *good = st("<iq xmlns='jabber:client' type='result' id='q1' from='romeo@example.net/Orchard'/>");
    CHECK_INT(epode__dispatch_stanza(d, CONN, forged, "juliet@example.com/b"), 0);
    CHECK_INT(epode__dispatch_stanza(d, CONN, noform, "juliet@example.com/b"), 0);
    CHECK_INT(r.calls, 0);
    CHECK_INT(epode__dispatch_stanza(d, CONN, good, "juliet@example.com/b"), 1);
    CHECK_INT(r.calls, 1);
    CHECK_STR(r.type, "result");
    /* answered once: a replay is not delivered */
    CHECK_INT(epode__dispatch_stanza(d, CONN, good, "juliet@example.com/b"), 0);
    CHECK_INT(r.calls, 1);
    epode_stanza_unref(forged), epode_stanza_unref(noform), epode_stanza_unref(good);
    epode__dispatch_free(d);
}

/* An IQ to our own bare JID is answered by our server for the account,
 * and Prosody writes no `from` then: that answer counts; for an IQ to
 * anyone else (another account, another of our resources) it does not. */
TEST(dispatch_iq_to_our_bare_jid_accepts_an_answer_without_from)
{
    const char *to[] = {"Juliet@example.com", "juliet@example.com/other", "romeo@example.com"};
    const int want[] = {1, 0, 0};
    for (size_t i = 0; i < 3; i++) {
        epode__dispatch *d;
        CHECK_INT(epode__dispatch_new(NULL, &d), 0);
        iqrec r = {0};
        CHECK_INT(epode__dispatch_add_iq(d, "q", to[i], 1000, iq_cb, &r, NULL), 0);
        epode_stanza_t *noform = st("<iq xmlns='jabber:client' type='result' id='q'/>");
        CHECK_INT(epode__dispatch_stanza(d, CONN, noform, "juliet@example.com/b"), want[i]);
        CHECK_INT(r.calls, want[i]);
        epode_stanza_unref(noform);
        epode__dispatch_free(d);
    }
}

TEST(dispatch_iq_without_to_accepts_server_and_self_only)
{
    const char *ok[] = {NULL, "example.com", "juliet@example.com", "juliet@example.com/b"};
    const char *bad[] = {"other.example", "romeo@example.com", "juliet@example.com/other"};
    for (size_t i = 0; i < 4 + 3; i++) {
        epode__dispatch *d;
        CHECK_INT(epode__dispatch_new(NULL, &d), 0);
        iqrec r = {0};
        epode__dispatch_add_iq(d, "x", NULL, 1000, iq_cb, &r, NULL);
        const char *from = i < 4 ? ok[i] : bad[i - 4];
        char xml[200];
        if (from)
            snprintf(xml, sizeof xml, "<iq xmlns='jabber:client' type='error' id='x' from='%s'/>", from);
        else
            snprintf(xml, sizeof xml, "<iq xmlns='jabber:client' type='error' id='x'/>");
        epode_stanza_t *s = st(xml);
        epode__dispatch_stanza(d, CONN, s, "juliet@example.com/b");
        CHECK_INT(r.calls, i < 4 ? 1 : 0);
        epode_stanza_unref(s);
        epode__dispatch_free(d);
    }
}

TEST(dispatch_iq_timeout_and_cancel)
{
    epode__dispatch *d;
    CHECK_INT(epode__dispatch_new(NULL, &d), 0);
    iqrec a = {0}, b = {0};
    epode__dispatch_add_iq(d, "a", NULL, 100, iq_cb, &a, NULL);
    epode__dispatch_add_iq(d, "b", NULL, 500, iq_cb, &b, NULL);
    CHECK_INT((long long)epode__dispatch_next_deadline(d), 100);
    epode__dispatch_expire(d, CONN, 99);
    CHECK_INT(a.calls, 0);
    epode__dispatch_expire(d, CONN, 100);
    CHECK_INT(a.calls, 1);
    CHECK_INT(a.status, EPODE_ETIMEDOUT);
    CHECK_INT((long long)epode__dispatch_next_deadline(d), 500);
    epode__dispatch_cancel_iqs(d, CONN);
    CHECK_INT(b.calls, 1);
    CHECK_INT(b.status, EPODE_ECANCELED);
    CHECK(epode__dispatch_next_deadline(d) == UINT64_MAX);
    epode__dispatch_free(d);
}

TEST(dispatch_removed_iq_wait_is_never_called)
{
    epode__dispatch *d;
    CHECK_INT(epode__dispatch_new(NULL, &d), 0);
    iqrec a = {0};
    unsigned id;
    epode__dispatch_add_iq(d, "a", NULL, 100, iq_cb, &a, &id);
    CHECK_INT(epode__dispatch_remove(d, id), 0);
    epode__dispatch_expire(d, CONN, 1000);
    epode__dispatch_cancel_iqs(d, CONN);
    CHECK_INT(a.calls, 0);
    epode__dispatch_free(d);
}

static int ticks;
static int timed_cb(epode_conn_t *c, void *u)
{
    (void)c, (void)u;
    return ++ticks < 3;
}

TEST(dispatch_timed_runs_until_it_says_stop)
{
    epode__dispatch *d;
    CHECK_INT(epode__dispatch_new(NULL, &d), 0);
    ticks = 0;
    CHECK_INT(epode__dispatch_add_timed(d, 10, 0, timed_cb, NULL, NULL), 0);
    for (uint64_t t = 0; t <= 100; t += 5)
        epode__dispatch_expire(d, CONN, t);
    CHECK_INT(ticks, 3);
    CHECK(epode__dispatch_next_deadline(d) == UINT64_MAX);
    CHECK_INT(epode__dispatch_add_timed(d, 0, 0, timed_cb, NULL, NULL), EPODE_EINVAL);
    epode__dispatch_free(d);
}

static int add_caps(epode_conn_t *c, epode_stanza_t *s, void *u)
{
    (void)c;
    note(u, "o");
    epode_stanza_add_child_new(s, "c", "http://jabber.org/protocol/caps", NULL);
    return EPODE_PASS;
}

TEST(dispatch_outgoing_filters_match_and_change_the_stanza)
{
    epode__dispatch *d;
    CHECK_INT(epode__dispatch_new(NULL, &d), 0);
    rec r = {0};
    unsigned id;
    CHECK_INT(epode__dispatch_add_outgoing(d, "presence", NULL, "available", add_caps, &r, &id), 0);
    epode_stanza_t *p = st("<presence xmlns='jabber:client'/>");
    epode_stanza_t *u = st("<presence xmlns='jabber:client' type='unavailable'/>");
    epode_stanza_t *m = st("<message xmlns='jabber:client'/>");
    CHECK(epode__dispatch_wants_outgoing(d, p));
    CHECK(!epode__dispatch_wants_outgoing(d, u));
    CHECK(!epode__dispatch_wants_outgoing(d, m));
    epode__dispatch_outgoing(d, CONN, p);
    CHECK_STR(r.log, "o");
    CHECK(epode_stanza_find_child(p, "c", "http://jabber.org/protocol/caps"));
    /* outgoing filters are not incoming handlers, and vice versa */
    CHECK_INT(epode__dispatch_stanza(d, CONN, p, NULL), 0);
    CHECK_STR(r.log, "o");
    CHECK_INT(epode__dispatch_remove(d, id), 0);
    CHECK(!epode__dispatch_wants_outgoing(d, p));
    epode_stanza_unref(p), epode_stanza_unref(u), epode_stanza_unref(m);
    epode__dispatch_free(d);
}

static void ev_a(epode_conn_t *c, epode_conn_event_t ev, void *u)
{
    (void)c;
    note(u, ev == EPODE_CONN_READY ? "R" : "D");
}

TEST(dispatch_event_listeners_in_order_and_removable)
{
    epode__dispatch *d;
    CHECK_INT(epode__dispatch_new(NULL, &d), 0);
    rec r = {0};
    unsigned a, b;
    CHECK_INT(epode__dispatch_add_event(d, ev_a, &r, &a), 0);
    CHECK_INT(epode__dispatch_add_event(d, ev_a, &r, &b), 0);
    epode__dispatch_event(d, CONN, EPODE_CONN_READY);
    CHECK_STR(r.log, "RR");
    CHECK_INT(epode__dispatch_remove(d, a), 0);
    epode__dispatch_event(d, CONN, EPODE_CONN_DISCONNECTED);
    CHECK_STR(r.log, "RRD");
    /* listeners never see stanzas */
    epode_stanza_t *m = st("<message xmlns='jabber:client'/>");
    CHECK_INT(epode__dispatch_stanza(d, CONN, m, NULL), 0);
    epode_stanza_unref(m);
    epode__dispatch_free(d);
}

TEST_MAIN
