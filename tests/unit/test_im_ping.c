/* tests/unit/test_im_ping.c — the ping (XEP-0199) and software version
 * (XEP-0092) helpers against a scripted server. */
#include <epode.h>

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "test.h"
#include "scripted.h"

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Runs the loop (timers included) for about `ms` milliseconds, or until
 * *flag becomes non-zero. */
static void run_until(scripted *s, int ms, const int *flag)
{
    long long end = mono_ms() + ms;
    while (mono_ms() < end && !(flag && *flag)) {
        epode_ctx_run_once(s->ctx, 5);
        scripted_pump(s);
    }
}

/* The next stanza the client sent that is not whitespace or a stream close. */
static epode_stanza_t *next_iq(scripted *s)
{
    epode_stanza_t *st;
    while ((st = scripted_next(s)))
        if (strcmp(epode_stanza_get_name(st), "iq") == 0)
            return st;
    return NULL;
}

TEST(ping_answers_server_and_peer_pings)
{
    scripted s;
    CHECK_INT(scripted_login(&s, "example.com", "anon@example.com/r1"), 0);
    epode_ping_t *p;
    CHECK_INT(epode_ping_new(s.conn, &p), 0);
    scripted_send(&s, "<iq type='get' id='s1' from='example.com'><ping xmlns='urn:xmpp:ping'/></iq>");
    epode_stanza_t *r = next_iq(&s);
    CHECK(r != NULL);
    CHECK_STR(epode_stanza_get_type(r), "result");
    CHECK_STR(epode_stanza_get_id(r), "s1");
    CHECK_STR(epode_stanza_get_to(r), "example.com");
    CHECK(epode_stanza_first_child(r) == NULL);
    scripted_send(&s, "<iq type='get' id='s2' from='peer@example.net/x' to='anon@example.com/r1'>"
                      "<ping xmlns='urn:xmpp:ping'/></iq>");
    r = next_iq(&s);
    CHECK(r != NULL);
    CHECK_STR(epode_stanza_get_type(r), "result");
    CHECK_STR(epode_stanza_get_to(r), "peer@example.net/x");
    epode_ping_free(p);
    /* without the helper: service-unavailable, as for any unknown IQ */
    scripted_send(&s, "<iq type='get' id='s3' from='example.com'><ping xmlns='urn:xmpp:ping'/></iq>");
    r = next_iq(&s);
    CHECK(r != NULL);
    CHECK_STR(epode_stanza_get_type(r), "error");
    scripted_free(&s);
}

typedef struct pong {
    int calls, status;
    epode_stanza_cond_t cond;
    char jid[128];
} pong;

static void on_pong(epode_conn_t *c, const char *jid, int status, epode_stanza_cond_t cond,
                    unsigned rtt, void *user)
{
    (void)c, (void)rtt;
    pong *p = user;
    p->calls++;
    p->status = status;
    p->cond = cond;
    snprintf(p->jid, sizeof p->jid, "%s", jid);
}

TEST(ping_send_reports_pong_error_and_ignores_strangers)
{
    scripted s;
    CHECK_INT(scripted_login(&s, "example.com", "anon@example.com/r1"), 0);
    epode_ping_t *p;
    CHECK_INT(epode_ping_new(s.conn, &p), 0);
    pong a = {0}, b = {0}, c = {0};
    CHECK_INT(epode_ping_send(p, "peer@example.net/x", 5000, on_pong, &a), 0);
    scripted_pump(&s);
    epode_stanza_t *iq = next_iq(&s);
    CHECK(iq != NULL);
    CHECK_STR(epode_stanza_get_type(iq), "get");
    CHECK_STR(epode_stanza_get_to(iq), "peer@example.net/x");
    CHECK(epode_stanza_find_child(iq, "ping", "urn:xmpp:ping") != NULL);
    char xml[512];
    snprintf(xml, sizeof xml, "<iq type='result' id='%s' from='mallory@evil.example'/>",
             epode_stanza_get_id(iq));
    scripted_send(&s, xml);
    CHECK_INT(a.calls, 0);
    snprintf(xml, sizeof xml, "<iq type='result' id='%s' from='peer@example.net/x'/>",
             epode_stanza_get_id(iq));
    scripted_send(&s, xml);
    CHECK_INT(a.calls, 1);
    CHECK_INT(a.status, 0);
    CHECK_INT(a.cond, EPODE_COND_NONE);
    CHECK_STR(a.jid, "peer@example.net/x");

    /* an error answer still proves the entity is there */
    CHECK_INT(epode_ping_send(p, "peer@example.net/y", 5000, on_pong, &b), 0);
    scripted_pump(&s);
    iq = next_iq(&s);
    CHECK(iq != NULL);
    snprintf(xml, sizeof xml, "<iq type='error' id='%s' from='peer@example.net/y'><error type='cancel'>"
             "<service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>",
             epode_stanza_get_id(iq));
    scripted_send(&s, xml);
    CHECK_INT(b.calls, 1);
    CHECK_INT(b.status, 0);
    CHECK_INT(b.cond, EPODE_COND_SERVICE_UNAVAILABLE);

    /* NULL: our server */
    CHECK_INT(epode_ping_send(p, NULL, 30, on_pong, &c), 0);
    scripted_pump(&s);
    iq = next_iq(&s);
    CHECK(iq != NULL);
    CHECK_STR(epode_stanza_get_to(iq), "example.com");
    run_until(&s, 500, &c.calls);
    CHECK_INT(c.calls, 1);
    CHECK_INT(c.status, EPODE_ETIMEDOUT);
    CHECK_INT(epode_ping_send(p, "not a jid@", 0, on_pong, &c), EPODE_EJID);
    epode_ping_free(p);
    scripted_free(&s);
}

static void never_version(epode_conn_t *c, const char *jid, int status, epode_stanza_cond_t cond,
                          const char *name, const char *version, const char *os, void *user)
{
    (void)c, (void)jid, (void)status, (void)cond, (void)name, (void)version, (void)os;
    (*(int *)user)++;
}

/* A bad address is EJID whatever the connection's state, as every send
 * path says; a good one before READY is ESTATE. */
TEST(ping_and_version_say_ejid_before_estate)
{
    epode_ctx_t *ctx;
    epode_conn_t *conn;
    CHECK_INT(epode_global_init(), 0);
    CHECK_INT(epode_ctx_new(NULL, &ctx), 0);
    CHECK_INT(epode_conn_new(ctx, &conn), 0);
    epode_ping_t *p;
    epode_software_version_t *v;
    CHECK_INT(epode_ping_new(conn, &p), 0);
    CHECK_INT(epode_software_version_new(conn, "t", "1", NULL, &v), 0);
    pong a = {0};
    int vcalls = 0;
    CHECK_INT(epode_ping_send(p, "a@b@c", 1000, on_pong, &a), EPODE_EJID);
    CHECK_INT(epode_ping_send(p, "peer@example.net", 1000, on_pong, &a), EPODE_ESTATE);
    CHECK_INT(epode_software_version_query(v, "a@b@c", 1000, never_version, &vcalls), EPODE_EJID);
    CHECK_INT(epode_software_version_query(v, "peer@example.net", 1000, never_version, &vcalls),
              EPODE_ESTATE);
    CHECK_INT(a.calls + vcalls, 0);
    epode_software_version_free(v);
    epode_ping_free(p);
    epode_conn_free(conn);
    epode_ctx_free(ctx);
}

TEST(ping_pending_is_forgotten_on_free)
{
    scripted s;
    CHECK_INT(scripted_login(&s, "example.com", "anon@example.com/r1"), 0);
    epode_ping_t *p;
    CHECK_INT(epode_ping_new(s.conn, &p), 0);
    pong a = {0};
    CHECK_INT(epode_ping_send(p, "peer@example.net/x", 5000, on_pong, &a), 0);
    scripted_pump(&s);
    epode_stanza_t *iq = next_iq(&s);
    CHECK(iq != NULL);
    epode_ping_free(p);
    char xml[256];
    snprintf(xml, sizeof xml, "<iq type='result' id='%s' from='peer@example.net/x'/>",
             epode_stanza_get_id(iq));
    scripted_send(&s, xml);
    CHECK_INT(a.calls, 0);
    scripted_free(&s);
}

static void on_dead(epode_conn_t *c, unsigned timeout_ms, void *user)
{
    (void)c, (void)timeout_ms;
    (*(int *)user)++;
}

TEST(ping_keepalive_answered_keeps_the_connection)
{
    scripted s;
    CHECK_INT(scripted_login(&s, "example.com", "anon@example.com/r1"), 0);
    epode_ping_t *p;
    CHECK_INT(epode_ping_new(s.conn, &p), 0);
    int dead = 0;
    CHECK_INT(epode_ping_set_keepalive(p, 40, 200, on_dead, &dead), 0);
    int answered = 0;
    long long end = mono_ms() + 600;
    while (mono_ms() < end) {
        run_until(&s, 10, NULL);
        epode_stanza_t *iq;
        while ((iq = next_iq(&s))) {
            CHECK(epode_stanza_find_child(iq, "ping", "urn:xmpp:ping") != NULL);
            CHECK_STR(epode_stanza_get_to(iq), "example.com");
            char xml[256];
            snprintf(xml, sizeof xml, "<iq type='result' id='%s' from='example.com'/>",
                     epode_stanza_get_id(iq));
            scripted_send(&s, xml);
            answered++;
        }
    }
    CHECK(answered >= 3);
    CHECK_INT(dead, 0);
    CHECK(epode_conn_is_ready(s.conn));
    CHECK_INT(epode_ping_set_keepalive(p, 0, 0, NULL, NULL), 0);
    epode_ping_free(p);
    scripted_free(&s);
}

TEST(ping_keepalive_unanswered_closes_the_connection)
{
    scripted s;
    CHECK_INT(scripted_login(&s, "example.com", "anon@example.com/r1"), 0);
    epode_ping_t *p;
    CHECK_INT(epode_ping_new(s.conn, &p), 0);
    int dead = 0;
    CHECK_INT(epode_ping_set_keepalive(p, 30, 60, on_dead, &dead), 0);
    run_until(&s, 1000, &dead);
    CHECK_INT(dead, 1);
    CHECK_INT(epode_ping_timeouts(p), 1);
    /* the close handshake started: the client said </stream:stream> */
    scripted_send(&s, "</stream:stream>");
    run_until(&s, 50, NULL);
    CHECK(!epode_conn_is_ready(s.conn));
    CHECK_INT(s.events[s.nevents - 1], EPODE_CONN_DISCONNECTED);
    epode_ping_free(p);
    scripted_free(&s);
}

/* ---- software version ------------------------------------------------------------------ */

typedef struct vers {
    int calls, status;
    epode_stanza_cond_t cond;
    char name[64], version[64], os[64];
} vers;

static void on_version(epode_conn_t *c, const char *jid, int status, epode_stanza_cond_t cond,
                       const char *name, const char *version, const char *os, void *user)
{
    (void)c, (void)jid;
    vers *v = user;
    v->calls++;
    v->status = status;
    v->cond = cond;
    snprintf(v->name, sizeof v->name, "%s", name ? name : "(null)");
    snprintf(v->version, sizeof v->version, "%s", version ? version : "(null)");
    snprintf(v->os, sizeof v->os, "%s", os ? os : "(null)");
}

TEST(version_answers_with_what_the_app_set)
{
    scripted s;
    CHECK_INT(scripted_login(&s, "example.com", "anon@example.com/r1"), 0);
    epode_software_version_t *v;
    CHECK_INT(epode_software_version_new(s.conn, NULL, "1", NULL, &v), EPODE_EINVAL);
    CHECK_INT(epode_software_version_new(s.conn, "bot", "1.0", NULL, &v), 0);
    scripted_send(&s, "<iq type='get' id='v1' from='peer@example.net/x'>"
                      "<query xmlns='jabber:iq:version'/></iq>");
    CHECK_STR(scripted_next_text(&s), "<iq to=\"peer@example.net/x\" id=\"v1\" type=\"result\">"
                                      "<query xmlns=\"jabber:iq:version\"><name>bot</name>"
                                      "<version>1.0</version></query></iq>");
    CHECK_INT(epode_software_version_set(v, "bot <&>", "2.0", "Linux"), 0);
    scripted_send(&s, "<iq type='get' id='v2' from='peer@example.net/x'>"
                      "<query xmlns='jabber:iq:version'/></iq>");
    CHECK_STR(scripted_next_text(&s), "<iq to=\"peer@example.net/x\" id=\"v2\" type=\"result\">"
                                      "<query xmlns=\"jabber:iq:version\"><name>bot &lt;&amp;&gt;</name>"
                                      "<version>2.0</version><os>Linux</os></query></iq>");
    epode_software_version_free(v);
    scripted_free(&s);
}

TEST(version_query_reads_the_answer)
{
    scripted s;
    CHECK_INT(scripted_login(&s, "example.com", "anon@example.com/r1"), 0);
    epode_software_version_t *v;
    CHECK_INT(epode_software_version_new(s.conn, "bot", "1.0", NULL, &v), 0);
    vers a = {0}, b = {0};
    CHECK_INT(epode_software_version_query(v, "peer@example.net/x", 0, on_version, &a), 0);
    scripted_pump(&s);
    epode_stanza_t *iq = next_iq(&s);
    CHECK(iq != NULL);
    CHECK(epode_stanza_find_child(iq, "query", "jabber:iq:version") != NULL);
    char xml[512];
    snprintf(xml, sizeof xml, "<iq type='result' id='%s' from='peer@example.net/x'><query "
             "xmlns='jabber:iq:version'><name>Peer</name><version>9</version></query></iq>",
             epode_stanza_get_id(iq));
    scripted_send(&s, xml);
    CHECK_INT(a.calls, 1);
    CHECK_INT(a.status, 0);
    CHECK_INT(a.cond, EPODE_COND_NONE);
    CHECK_STR(a.name, "Peer");
    CHECK_STR(a.version, "9");
    CHECK_STR(a.os, "(null)");
    /* a result without the query is not a version */
    CHECK_INT(epode_software_version_query(v, NULL, 0, on_version, &b), 0);
    scripted_pump(&s);
    iq = next_iq(&s);
    CHECK(iq != NULL);
    CHECK_STR(epode_stanza_get_to(iq), "example.com");
    snprintf(xml, sizeof xml, "<iq type='result' id='%s' from='example.com'/>", epode_stanza_get_id(iq));
    scripted_send(&s, xml);
    CHECK_INT(b.calls, 1);
    CHECK_INT(b.cond, EPODE_COND_UNDEFINED_CONDITION);
    epode_software_version_free(v);
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

static int str_is(const char *a, const char *b)
{
    return a && b && strcmp(a, b) == 0;
}

typedef struct ping_work {
    sweep w;
    epode_ping_t *p;
    long helper_blocks;   /* live blocks the helper's creation added */
    int answered;         /* the server's ping got its result */
    int dead;
    pong a;
} ping_work;

/* The helper, a server ping answered, a ping sent and answered, the
 * keepalive armed (far off: it does not fire here). */
static void ping_workload(scripted *s, scripted_mem *m, ping_work *pw)
{
    long before = m->live;
    if (SWEPT(&pw->w, epode_ping_new(s->conn, &pw->p)) < 0) {
        pw->p = NULL;
        return;
    }
    pw->helper_blocks = m->live - before;
    SWEPT(&pw->w, epode_ping_set_keepalive(pw->p, 600000, 5000, on_dead, &pw->dead));
    scripted_send(s, "<iq type='get' id='s1' from='example.com'><ping xmlns='urn:xmpp:ping'/></iq>");
    epode_stanza_t *iq;
    while ((iq = next_iq(s)))
        if (str_is(epode_stanza_get_id(iq), "s1") && str_is(epode_stanza_get_type(iq), "result"))
            pw->answered = 1;
    if (!epode_conn_is_ready(s->conn)) /* a failed allocation may end the stream */
        return;
    if (SWEPT(&pw->w, epode_ping_send(pw->p, "peer@example.net/x", 5000, on_pong, &pw->a)) < 0)
        return;
    scripted_pump(s);
    while ((iq = next_iq(s))) {
        if (!epode_stanza_find_child(iq, "ping", "urn:xmpp:ping"))
            continue;
        char xml[256];
        snprintf(xml, sizeof xml, "<iq type='result' id='%s' from='peer@example.net/x'/>",
                 epode_stanza_get_id(iq));
        scripted_send(s, xml);
    }
}

TEST(ping_allocates_through_the_context_allocator)
{
    scripted_mem m;
    scripted_mem_init(&m);
    scripted s;
    CHECK_INT(scripted_login_mem(&s, &m.mem, "example.com", "anon@example.com/r1"), 0);
    ping_work pw = {0};
    ping_workload(&s, &m, &pw);
    CHECK(!pw.w.bad && !pw.w.nomem);
    CHECK(pw.p != NULL);
    CHECK(pw.helper_blocks >= 1);
    CHECK(pw.answered);
    CHECK_INT(pw.a.calls, 1);
    CHECK_INT(pw.a.status, 0);
    CHECK_STR(pw.a.jid, "peer@example.net/x");
    CHECK_INT(pw.dead, 0);
    long live = m.live;
    epode_ping_free(pw.p);
    CHECK(m.live < live); /* the helper went back through the same allocator */
    scripted_free(&s);
    CHECK_INT(m.live, 0);
}

TEST(ping_every_failed_allocation_is_clean)
{
    int clean = 0;
    long n;
    for (n = 0; n < 10000 && !clean; n++) {
        scripted_mem m;
        scripted_mem_init(&m);
        scripted s;
        CHECK_INT(scripted_login_mem(&s, &m.mem, "example.com", "anon@example.com/r1"), 0);
        m.fail_at = m.calls + n;
        ping_work pw = {0};
        ping_workload(&s, &m, &pw);
        clean = m.calls <= m.fail_at; /* nothing failed this time */
        epode_ping_free(pw.p);
        scripted_free(&s);
        if (pw.w.bad)
            printf("# with allocation %ld failing\n", n);
        CHECK(!pw.w.bad);
        CHECK_INT(m.live, 0);
        if (clean) {
            CHECK(!pw.w.nomem);
            CHECK(pw.answered);
            CHECK_INT(pw.a.calls, 1);
            CHECK_INT(pw.a.status, 0);
        }
    }
    CHECK(clean);
    printf("# ping: %ld allocation points swept\n", n - 1);
}

typedef struct version_work {
    sweep w;
    epode_software_version_t *v;
    long helper_blocks;
    int answered; /* the peer's query got our answer */
    vers a;
} version_work;

/* The helper with name, version and os; a peer's query answered; a
 * query of a peer and its answer. */
static void version_workload(scripted *s, scripted_mem *m, version_work *vw)
{
    long before = m->live;
    if (SWEPT(&vw->w, epode_software_version_new(s->conn, "bot", "1.0", "Linux", &vw->v)) < 0) {
        vw->v = NULL;
        return;
    }
    vw->helper_blocks = m->live - before;
    scripted_send(s, "<iq type='get' id='v1' from='peer@example.net/x'>"
                     "<query xmlns='jabber:iq:version'/></iq>");
    epode_stanza_t *iq;
    while ((iq = next_iq(s))) {
        epode_stanza_t *q = epode_stanza_find_child(iq, "query", "jabber:iq:version");
        if (str_is(epode_stanza_get_id(iq), "v1") && str_is(epode_stanza_get_type(iq), "result") &&
            q && str_is(epode_stanza_child_text(q, "name", NULL), "bot") &&
            str_is(epode_stanza_child_text(q, "os", NULL), "Linux"))
            vw->answered = 1;
    }
    if (!epode_conn_is_ready(s->conn))
        return;
    if (SWEPT(&vw->w, epode_software_version_query(vw->v, "peer@example.net/x", 5000, on_version, &vw->a)) < 0)
        return;
    scripted_pump(s);
    while ((iq = next_iq(s))) {
        if (!epode_stanza_find_child(iq, "query", "jabber:iq:version"))
            continue;
        char xml[512];
        snprintf(xml, sizeof xml, "<iq type='result' id='%s' from='peer@example.net/x'><query "
                 "xmlns='jabber:iq:version'><name>Peer</name><version>9</version></query></iq>",
                 epode_stanza_get_id(iq));
        scripted_send(s, xml);
    }
}

TEST(version_allocates_through_the_context_allocator)
{
    scripted_mem m;
    scripted_mem_init(&m);
    scripted s;
    CHECK_INT(scripted_login_mem(&s, &m.mem, "example.com", "anon@example.com/r1"), 0);
    version_work vw = {0};
    version_workload(&s, &m, &vw);
    CHECK(!vw.w.bad && !vw.w.nomem);
    CHECK(vw.v != NULL);
    CHECK(vw.helper_blocks >= 4); /* the helper and its three strings */
    CHECK(vw.answered);
    CHECK_INT(vw.a.calls, 1);
    CHECK_INT(vw.a.status, 0);
    CHECK_STR(vw.a.name, "Peer");
    long live = m.live;
    epode_software_version_free(vw.v);
    CHECK_INT(live - m.live, vw.helper_blocks);
    scripted_free(&s);
    CHECK_INT(m.live, 0);
}

TEST(version_every_failed_allocation_is_clean)
{
    int clean = 0;
    long n;
    for (n = 0; n < 10000 && !clean; n++) {
        scripted_mem m;
        scripted_mem_init(&m);
        scripted s;
        CHECK_INT(scripted_login_mem(&s, &m.mem, "example.com", "anon@example.com/r1"), 0);
        m.fail_at = m.calls + n;
        version_work vw = {0};
        version_workload(&s, &m, &vw);
        clean = m.calls <= m.fail_at;
        epode_software_version_free(vw.v);
        scripted_free(&s);
        if (vw.w.bad)
            printf("# with allocation %ld failing\n", n);
        CHECK(!vw.w.bad);
        CHECK_INT(m.live, 0);
        if (clean) {
            CHECK(!vw.w.nomem);
            CHECK(vw.answered);
            CHECK_INT(vw.a.calls, 1);
            CHECK_STR(vw.a.name, "Peer");
        }
    }
    CHECK(clean);
    printf("# version: %ld allocation points swept\n", n - 1);
}

TEST_MAIN
