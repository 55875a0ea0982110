/* tests/unit/test_im_carbons.c — the carbons helper (XEP-0280) against a
 * scripted server, forged carbons included. */
#include <epode.h>

#include <stdio.h>
#include <string.h>

#include "test.h"
#include "scripted.h"

typedef struct seen {
    int calls;
    epode_carbon_dir_t dir;
    char from[128], to[128], body[128];
    int enable_calls, enable_status, enabled;
    epode_stanza_cond_t enable_cond;
} seen;

static void on_carbon(epode_conn_t *c, epode_carbon_dir_t dir, epode_stanza_t *msg,
                      epode_stanza_t *carrier, void *user)
{
    (void)c, (void)carrier;
    seen *s = user;
    s->calls++;
    s->dir = dir;
    const char *f = epode_stanza_get_from(msg), *t = epode_stanza_get_to(msg);
    const char *b = epode_stanza_child_text(msg, "body", NULL);
    snprintf(s->from, sizeof s->from, "%s", f ? f : "");
    snprintf(s->to, sizeof s->to, "%s", t ? t : "");
    snprintf(s->body, sizeof s->body, "%s", b ? b : "");
}

static void on_enabled(epode_conn_t *c, int enabled, int status, epode_stanza_cond_t cond,
                       void *user)
{
    (void)c;
    seen *s = user;
    s->enable_calls++;
    s->enabled = enabled;
    s->enable_status = status;
    s->enable_cond = cond;
}

static epode_stanza_t *next_named(scripted *s, const char *name)
{
    epode_stanza_t *st;
    while ((st = scripted_next(s)))
        if (strcmp(epode_stanza_get_name(st), name) == 0)
            return st;
    return NULL;
}

#define RECEIVED(from, inner_from) \
    "<message from='" from "' to='anon@example.com/r1' type='chat'>" \
    "<received xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'>" \
    "<message xmlns='jabber:client' from='" inner_from "' to='anon@example.com/other' type='chat'>" \
    "<body>hello</body></message></forwarded></received></message>"

TEST(carbons_enable_sends_the_iq_and_reports)
{
    scripted s;
    CHECK_INT(scripted_login(&s, "example.com", "anon@example.com/r1"), 0);
    seen a = {0};
    epode_carbons_t *c;
    CHECK_INT(epode_carbons_new(s.conn, on_carbon, &a, &c), 0);
    CHECK_INT(epode_carbons_enable(c, 1, on_enabled, &a), 0);
    scripted_pump(&s);
    epode_stanza_t *iq = next_named(&s, "iq");
    CHECK(iq != NULL);
    CHECK_STR(epode_stanza_get_type(iq), "set");
    CHECK(epode_stanza_find_child(iq, "enable", "urn:xmpp:carbons:2") != NULL);
    CHECK_STR(scripted_next_text(&s), ""); /* nothing else */
    CHECK_INT(epode_carbons_is_enabled(c), 0);
    char xml[256];
    snprintf(xml, sizeof xml, "<iq type='result' id='%s'/>", epode_stanza_get_id(iq));
    scripted_send(&s, xml);
    CHECK_INT(a.enable_calls, 1);
    CHECK_INT(a.enable_status, 0);
    CHECK_INT(a.enable_cond, EPODE_COND_NONE);
    CHECK_INT(a.enabled, 1);
    CHECK_INT(epode_carbons_is_enabled(c), 1);
    /* refused */
    CHECK_INT(epode_carbons_enable(c, 0, on_enabled, &a), 0);
    scripted_pump(&s);
    iq = next_named(&s, "iq");
    CHECK(iq != NULL);
    CHECK(epode_stanza_find_child(iq, "disable", "urn:xmpp:carbons:2") != NULL);
    snprintf(xml, sizeof xml, "<iq type='error' id='%s'><error type='cancel'><not-allowed "
             "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>", epode_stanza_get_id(iq));
    scripted_send(&s, xml);
    CHECK_INT(a.enable_calls, 2);
    CHECK_INT(a.enable_cond, EPODE_COND_NOT_ALLOWED);
    CHECK_INT(epode_carbons_is_enabled(c), 1);
    epode_carbons_free(c);
    scripted_free(&s);
}

TEST(carbons_received_and_sent_copies_are_delivered)
{
    scripted s;
    CHECK_INT(scripted_login(&s, "example.com", "anon@example.com/r1"), 0);
    seen a = {0};
    epode_carbons_t *c;
    CHECK_INT(epode_carbons_new(s.conn, on_carbon, &a, &c), 0);
    /* the carrier's from is our bare JID, in any letter case */
    scripted_send(&s, RECEIVED("Anon@EXAMPLE.com", "friend@example.net/phone"));
    CHECK_INT(a.calls, 1);
    CHECK_INT(a.dir, EPODE_CARBON_RECEIVED);
    CHECK_STR(a.from, "friend@example.net/phone");
    CHECK_STR(a.body, "hello");
    scripted_send(&s, "<message from='anon@example.com' to='anon@example.com/r1' type='chat'>"
                      "<sent xmlns='urn:xmpp:carbons:2'><forwarded xmlns='urn:xmpp:forward:0'>"
                      "<message xmlns='jabber:client' to='friend@example.net' from='anon@example.com/other'"
                      " type='chat'><body>bye</body></message></forwarded></sent></message>");
    CHECK_INT(a.calls, 2);
    CHECK_INT(a.dir, EPODE_CARBON_SENT);
    CHECK_STR(a.to, "friend@example.net");
    CHECK_STR(a.body, "bye");
    CHECK_INT(epode_carbons_rejected(c), 0);
    epode_carbons_free(c);
    scripted_free(&s);
}

TEST(carbons_forged_by_a_stranger_are_ignored)
{
    scripted s;
    CHECK_INT(scripted_login(&s, "example.com", "anon@example.com/r1"), 0);
    seen a = {0};
    epode_carbons_t *c;
    CHECK_INT(epode_carbons_new(s.conn, on_carbon, &a, &c), 0);
    scripted_send(&s, RECEIVED("mallory@evil.example", "boss@example.com/desk"));
    scripted_send(&s, RECEIVED("mallory@evil.example/res", "boss@example.com/desk"));
    /* our full JID (another resource) is not the bare JID the server uses */
    scripted_send(&s, RECEIVED("anon@example.com/other", "boss@example.com/desk"));
    /* another account on our own server */
    scripted_send(&s, RECEIVED("anon2@example.com", "boss@example.com/desk"));
    /* the server's domain */
    scripted_send(&s, RECEIVED("example.com", "boss@example.com/desk"));
    /* no from at all */
    scripted_send(&s, "<message to='anon@example.com/r1'><received xmlns='urn:xmpp:carbons:2'>"
                      "<forwarded xmlns='urn:xmpp:forward:0'><message xmlns='jabber:client' "
                      "from='boss@example.com/desk'><body>x</body></message></forwarded></received></message>");
    /* invalid from */
    scripted_send(&s, RECEIVED("@@@", "boss@example.com/desk"));
    CHECK_INT(a.calls, 0);
    CHECK_INT(epode_carbons_rejected(c), 7);
    /* from us but nothing forwarded: malformed, ignored */
    scripted_send(&s, "<message from='anon@example.com'><received xmlns='urn:xmpp:carbons:2'/></message>");
    CHECK_INT(a.calls, 0);
    CHECK_INT(epode_carbons_rejected(c), 8);
    /* an ordinary message is not a carbon */
    scripted_send(&s, "<message from='friend@example.net/x' type='chat'><body>plain</body></message>");
    CHECK_INT(epode_carbons_rejected(c), 8);
    CHECK_INT(a.calls, 0);
    epode_carbons_free(c);
    scripted_free(&s);
}

TEST(carbons_enable_before_ready_goes_out_at_ready)
{
    scripted s;
    CHECK_INT(scripted_login(&s, "example.com", "anon@example.com/r1"), 0);
    seen a = {0};
    epode_carbons_t *c;
    CHECK_INT(epode_carbons_new(s.conn, on_carbon, &a, &c), 0);
    CHECK_INT(epode_carbons_enable(c, 1, on_enabled, &a), 0);
    scripted_pump(&s);
    epode_stanza_t *iq = next_named(&s, "iq");
    CHECK(iq != NULL);
    /* the stream ends before the answer: canceled, and not enabled */
    scripted_send(&s, "<stream:error><system-shutdown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"
                      "</stream:error>");
    CHECK_INT(a.enable_calls, 1);
    CHECK_INT(a.enable_status, EPODE_ECANCELED);
    CHECK_INT(epode_carbons_is_enabled(c), 0);
    epode_carbons_free(c);
    scripted_free(&s);
}

/* ---- allocation: through the context's allocator, every failure clean ------------------- */

/* What a workload's calls returned: in a sweep only 0 and EPODE_ENOMEM are clean. */
typedef struct sweep {
    int bad, nomem;
} sweep;

static int swept(sweep *w, int rc, const char *what, int line)
{
    if (rc == EPODE_ENOMEM)
        w->nomem = 1;
    else if (rc != 0) {
        printf("# %s:%d: %s == %s\n", __FILE__, line, what, epode_err_name(rc));
        w->bad = 1;
    }
    return rc;
}
#define SWEPT(w, expr) swept((w), (expr), #expr, __LINE__)

typedef struct carbons_work {
    sweep w;
    epode_carbons_t *c;
    long helper_blocks;   /* live blocks the helper's creation added */
    seen a;
} carbons_work;

/* The helper; enabling (answered); a valid received carbon and a forged one. */
static void carbons_workload(scripted *s, scripted_mem *m, carbons_work *cw)
{
    long before = m->live;
    if (SWEPT(&cw->w, epode_carbons_new(s->conn, on_carbon, &cw->a, &cw->c)) < 0) {
        cw->c = NULL;
        return;
    }
    cw->helper_blocks = m->live - before;
    if (SWEPT(&cw->w, epode_carbons_enable(cw->c, 1, on_enabled, &cw->a)) == 0) {
        scripted_pump(s);
        epode_stanza_t *iq = next_named(s, "iq");
        if (iq) {
            char xml[256];
            snprintf(xml, sizeof xml, "<iq type='result' id='%s'/>", epode_stanza_get_id(iq));
            scripted_send(s, xml);
        }
    }
    scripted_send(s, RECEIVED("anon@example.com", "friend@example.net/phone"));
    scripted_send(s, RECEIVED("mallory@evil.example", "boss@example.com/desk"));
}

TEST(carbons_allocate_through_the_context_allocator)
{
    scripted_mem m;
    scripted_mem_init(&m);
    scripted s;
    CHECK_INT(scripted_login_mem(&s, &m.mem, "example.com", "anon@example.com/r1"), 0);
    carbons_work cw = {0};
    carbons_workload(&s, &m, &cw);
    CHECK(!cw.w.bad && !cw.w.nomem);
    CHECK(cw.c != NULL);
    CHECK(cw.helper_blocks >= 1);
    CHECK_INT(cw.a.enable_calls, 1);
    CHECK_INT(cw.a.enable_status, 0);
    CHECK_INT(epode_carbons_is_enabled(cw.c), 1);
    CHECK_INT(cw.a.calls, 1);
    CHECK_STR(cw.a.from, "friend@example.net/phone");
    CHECK_INT(epode_carbons_rejected(cw.c), 1);
    long live = m.live;
    epode_carbons_free(cw.c);
    CHECK_INT(live - m.live, cw.helper_blocks); /* the same blocks, through the same allocator */
    scripted_free(&s);
    CHECK_INT(m.live, 0);
}

TEST(carbons_every_failed_allocation_is_clean)
{
    int clean = 0;
    long n;
    for (n = 0; n < 10000 && !clean; n++) {
        scripted_mem m;
        scripted_mem_init(&m);
        scripted s;
        CHECK_INT(scripted_login_mem(&s, &m.mem, "example.com", "anon@example.com/r1"), 0);
        m.fail_at = m.calls + n;
        carbons_work cw = {0};
        carbons_workload(&s, &m, &cw);
        clean = m.calls <= m.fail_at; /* nothing failed this time */
        /* a forged carbon is never delivered, whatever failed */
        if (cw.a.calls > 1 || (cw.a.calls == 1 && strcmp(cw.a.from, "friend@example.net/phone") != 0))
            cw.w.bad = 1;
        unsigned rejected = epode_carbons_rejected(cw.c);
        epode_carbons_free(cw.c);
        scripted_free(&s);
        if (cw.w.bad)
            printf("# with allocation %ld failing\n", n);
        CHECK(!cw.w.bad);
        CHECK(rejected <= 1); /* a failed allocation is not taken for a forgery */
        CHECK_INT(m.live, 0);
        if (clean) {
            CHECK(!cw.w.nomem);
            CHECK_INT(cw.a.enable_calls, 1);
            CHECK_INT(cw.a.calls, 1);
            CHECK_INT(rejected, 1);
        }
    }
    CHECK(clean);
    printf("# carbons: %ld allocation points swept\n", n - 1);
}

TEST_MAIN
