/* tests/unit/test_bosh.c — the BOSH transport (XEP-0124/0206) against a
 * scripted HTTP side. The layer makes its requests through a small
 * interface (epode__bosh_http); here a fake takes them, and the test
 * answers each one when and how it likes: out of order, cut (a broken
 * HTTP exchange), with an HTTP error, with something that is not a BOSH
 * body, too big. That drives every path the layer has without sockets,
 * threads or timing (curl's side is test_http's and the real servers').
 * Covered: the creation request and the session's attributes (bad ones
 * refused), the framing <open/> handed up, batching, polling, rid order,
 * resends with the same rid, restart, terminate (ours and the server's,
 * with conditions), HTTP errors, the bounds; and a full login through a
 * connection (SCRAM, never PLAIN in clear; no channel binding over
 * https). */
#include "test.h"

#include <stdio.h>
#include <time.h>

#include "conn/conn_int.h"
#include "transport/bosh.h"

TEST_MAIN

#define NS_BIND "http://jabber.org/protocol/httpbind"
#define MAXREQ 64

/* ---- the fake HTTP side -------------------------------------------------------------- */

typedef struct freq {
    int pending;
    char *body;
    size_t len;
    unsigned timeout_ms;
    epode__bosh_done_cb done;
    void *req;
} freq;

typedef struct fake {
    freq reqs[MAXREQ];
    int n;
    int freed;
    int tls; /* the TLS version answers report */
} fake;

static int f_start(void *user, const char *body, size_t len, unsigned timeout_ms,
                   epode__bosh_done_cb done, void *req, void **handle)
{
    fake *f = user;
    if (f->n == MAXREQ)
        return EPODE_ENOMEM;
    freq *r = &f->reqs[f->n++];
    r->pending = 1;
    r->body = malloc(len + 1);
    memcpy(r->body, body, len);
    r->body[len] = '\0';
    r->len = len;
    r->timeout_ms = timeout_ms;
    r->done = done;
    r->req = req;
    *handle = r;
    return 0;
}

static void f_cancel(void *user, void *handle)
{
    (void)user;
    ((freq *)handle)->pending = 0;
}

static void f_free(void *user)
{
    fake *f = user;
    f->freed++;
}

static void fake_clear(fake *f)
{
    for (int i = 0; i < f->n; i++)
        free(f->reqs[i].body);
    memset(f, 0, sizeof *f);
}

static int npending(const fake *f)
{
    int n = 0;
    for (int i = 0; i < f->n; i++)
        n += f->reqs[i].pending;
    return n;
}

/* The i-th request still pending, in the order they were made. */
static freq *pend(fake *f, int i)
{
    for (int k = 0; k < f->n; k++)
        if (f->reqs[k].pending && i-- == 0)
            return &f->reqs[k];
    return NULL;
}

static unsigned long long rid_of(const freq *r)
{
    const char *p = r ? strstr(r->body, "rid='") : NULL;
    return p ? strtoull(p + 5, NULL, 10) : 0;
}

static void answer_status(fake *f, freq *r, long status, const char *body)
{
    r->pending = 0;
    r->done(r->req, 0, status, body, strlen(body), "", f->tls);
}

static void answer(fake *f, freq *r, const char *body) { answer_status(f, r, 200, body); }

static void cut(freq *r)
{
    r->pending = 0;
    r->done(r->req, EPODE_ENET, 0, "", 0, "Connection reset by peer", 0);
}

/* ---- the layer --------------------------------------------------------------------- */

static int readies;
static void on_ready(void *user)
{
    (void)user;
    readies++;
}

static void make_(fake *f, size_t max_body, epode__transport **out)
{
    epode__bosh_options o = {.domain = "example.test",
                             .max_body = max_body,
                             .ready = on_ready,
                             .http = {.start = f_start, .cancel = f_cancel, .free = f_free, .user = f}};
    *out = NULL;
    CHECK_INT(epode__bosh_new(NULL, &o, out), 0);
}
/* t = the layer (the test stops if it could not be made) */
#define MAKE(t, f, max)                                                                            make_(f, max, &t);                                                                             CHECK(t)

#define SESSION_ANSWER(attrs, children)                                                        \
    "<body xmlns='" NS_BIND "' sid='s1' " attrs " from='example.test' "                        \
    "xmlns:stream='http://etherx.jabber.org/streams' xmlns:xmpp='urn:xmpp:xbosh' "           \
    "xmpp:version='1.0'>" children "</body>"
#define FEATURES                                                                               \
    "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>"                   \
    "<mechanism>SCRAM-SHA-1</mechanism></mechanisms></stream:features>"
#define OPEN_UP                                                                                \
    "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' from='example.test' id='s1' "         \
    "version='1.0'/>"
#define FEATURES_UP                                                                            \
    "<stream:features xmlns:stream=\"http://etherx.jabber.org/streams\"><mechanisms "         \
    "xmlns=\"urn:ietf:params:xml:ns:xmpp-sasl\"><mechanism>SCRAM-SHA-1</mechanism>"          \
    "</mechanisms></stream:features>"
#define ENGINE_OPEN                                                                            \
    "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='example.test' version='1.0' "     \
    "xml:lang='en'/>"

static int hs(epode__transport *t) { return t->ops->handshake(t); }

/* All there is to read now into buf (NUL-terminated); *end: the last
 * read's result (EPODE_EAGAIN, 0 or an error). One turn of the owner's. */
static size_t read_now(epode__transport *t, char *buf, size_t cap, long *end)
{
    size_t n = 0;
    long r;
    while ((r = epode__transport_read(t, buf + n, cap - 1 - n)) > 0) {
        n += (size_t)r;
        if (n == cap - 1)
            break;
    }
    buf[n] = '\0';
    if (end)
        *end = r;
    return n;
}

/* read_now(), then the owner's next turn (one more read), in which a poll
 * that came due goes out: what the layer's owner does in practice. */
static size_t read_all(epode__transport *t, char *buf, size_t cap, long *end)
{
    long e;
    size_t n = read_now(t, buf, cap, &e);
    if (e == EPODE_EAGAIN) {
        char c;
        e = epode__transport_read(t, &c, 1);
    }
    if (end)
        *end = e;
    return n;
}

/* The owner's next turn: one more read, which finds nothing. A poll due
 * once the engine has read everything goes out then, after what the
 * engine wrote in the turn that read it (see pump_requests). */
static void turn(epode__transport *t)
{
    char c;
    CHECK_INT(epode__transport_read(t, &c, 1), EPODE_EAGAIN);
}

/* A layer with its session made (requests=2) and the engine's first
 * <open/> written; the creation answer's bytes read and a turn passed.
 * One poll pending. */
static void opened_(fake *f, epode__transport **out)
{
    epode__transport *t;
    *out = NULL;
    MAKE(t, f, 0);
    CHECK_INT(hs(t), EPODE_EAGAIN);
    answer(f, pend(f, 0), SESSION_ANSWER("wait='60' requests='2' hold='1'", FEATURES));
    CHECK_INT(hs(t), 0);
    CHECK_INT(epode__transport_write(t, ENGINE_OPEN, strlen(ENGINE_OPEN)),
              (long)strlen(ENGINE_OPEN));
    char buf[4096];
    read_now(t, buf, sizeof buf, NULL);
    CHECK_STR(buf, OPEN_UP FEATURES_UP);
    CHECK_INT(npending(f), 0); /* the engine's answer to the features first */
    turn(t);
    CHECK_INT(npending(f), 1);
    *out = t;
}
#define OPENED(t, f)                                                                               opened_(f, &t);                                                                                CHECK(t)

static void done(epode__transport *t, fake *f)
{
    epode__transport_free(t);
    CHECK_INT(f->freed, 1);
    fake_clear(f);
}

static void wr(epode__transport *t, const char *s)
{
    CHECK_INT(epode__transport_write(t, s, strlen(s)), (long)strlen(s));
}

/* ---- session creation ------------------------------------------------------------ */

TEST(creation_request_and_session_answer)
{
    fake f = {0};
    readies = 0;
    epode__transport *t;
    MAKE(t, &f, 0);
    CHECK_INT(epode__transport_fd(t), -1);
    CHECK_INT(hs(t), EPODE_EAGAIN);
    CHECK_INT(npending(&f), 1);
    freq *r = pend(&f, 0);
    unsigned long long rid = rid_of(r);
    CHECK(rid > 0 && rid < (1ull << 53));
    char want[600];
    snprintf(want, sizeof want,
             "<body content='text/xml; charset=utf-8' hold='1' rid='%llu' to='example.test' "
             "ver='1.6' wait='60' xml:lang='en' xmpp:version='1.0' xmlns='" NS_BIND "' "
             "xmlns:xmpp='urn:xmpp:xbosh'/>",
             rid);
    CHECK_STR(r->body, want);
    CHECK(r->timeout_ms > 60000); /* beyond the server's wait */
    CHECK_INT(hs(t), EPODE_EAGAIN); /* no second creation */
    CHECK_INT(npending(&f), 1);
    /* nothing to read until the engine starts */
    char buf[2048];
    answer(&f, r, SESSION_ANSWER("wait='30' requests='2' hold='1' inactivity='60' polling='5'",
                                 FEATURES));
    CHECK(readies >= 1);
    CHECK_INT(hs(t), 0);
    CHECK_STR(epode__bosh_sid(t), "s1");
    /* the engine's first <open/> is the session made: no request */
    wr(t, ENGINE_OPEN);
    CHECK_INT(npending(&f), 0);
    long end;
    int before = readies;
    read_now(t, buf, sizeof buf, &end);
    CHECK_STR(buf, OPEN_UP FEATURES_UP);
    CHECK_INT(end, EPODE_EAGAIN);
    /* no poll in the turn that read the features (the engine answers
     * them in it); the owner is asked for another turn, and then, as the
     * engine wrote nothing, a poll goes out (the server can push), with
     * the next rid and a timeout from the server's wait */
    CHECK_INT(npending(&f), 0);
    CHECK(readies > before);
    turn(t);
    CHECK_INT(npending(&f), 1);
    r = pend(&f, 0);
    CHECK_INT(rid_of(r), rid + 1);
    snprintf(want, sizeof want, "<body rid='%llu' sid='s1' xmlns='" NS_BIND "'/>", rid + 1);
    CHECK_STR(r->body, want);
    CHECK(r->timeout_ms > 30000 && r->timeout_ms < 60000);
    turn(t); /* no second poll */
    CHECK_INT(npending(&f), 1);
    done(t, &f);
}

static void refused_session(const char *answer_body, int code, const char *words)
{
    fake f = {0};
    epode__transport *t;
    MAKE(t, &f, 0);
    CHECK_INT(hs(t), EPODE_EAGAIN);
    answer(&f, pend(&f, 0), answer_body);
    CHECK_INT(hs(t), code);
    if (!strstr(epode__transport_error(t), words))
        printf("# error text: %s\n", epode__transport_error(t));
    CHECK(strstr(epode__transport_error(t), words) != NULL);
    CHECK_INT(npending(&f), 0); /* nothing more asked */
    char buf[64];
    CHECK_INT(epode__transport_read(t, buf, sizeof buf), code);
    CHECK_INT(epode__transport_write(t, "<a/>", 4), code);
    done(t, &f);
}

TEST(absurd_session_attributes_are_refused)
{
    refused_session("<body xmlns='" NS_BIND "' wait='60' requests='2'/>", EPODE_EPROTOCOL,
                    "no sid");
    char longsid[400];
    snprintf(longsid, sizeof longsid, "<body xmlns='" NS_BIND "' sid='%0200d'/>", 7);
    refused_session(longsid, EPODE_EPROTOCOL, "sid is 200 bytes");
    refused_session("<body xmlns='" NS_BIND "' sid='a b'/>", EPODE_EPROTOCOL, "printable");
    refused_session("<body xmlns='" NS_BIND "' sid='s' requests='0'/>", EPODE_EPROTOCOL,
                    "requests='0'");
    refused_session("<body xmlns='" NS_BIND "' sid='s' requests='100000'/>", EPODE_EPROTOCOL,
                    "requests='100000'");
    refused_session("<body xmlns='" NS_BIND "' sid='s' requests='-1'/>", EPODE_EPROTOCOL,
                    "requests='-1'");
    refused_session("<body xmlns='" NS_BIND "' sid='s' wait='120'/>", EPODE_EPROTOCOL,
                    "wait='120'");
    refused_session("<body xmlns='" NS_BIND "' sid='s' hold='2'/>", EPODE_EPROTOCOL, "hold='2'");
    refused_session("<body xmlns='" NS_BIND "' sid='s' hold='0'/>", EPODE_EPROTOCOL, "hold='0'");
    refused_session("<body xmlns='" NS_BIND "' sid='s' inactivity='9999999'/>", EPODE_EPROTOCOL,
                    "inactivity");
    /* not BOSH at all */
    refused_session("<html xmlns='http://www.w3.org/1999/xhtml'/>", EPODE_EPROTOCOL,
                    "not a BOSH <body/>");
    refused_session("<body sid='s'/>", EPODE_EPROTOCOL, "not a BOSH <body/>");
    refused_session("Service Unavailable", EPODE_EPROTOCOL, "not XML");
    refused_session("<body xmlns='" NS_BIND "' sid='s'><unclosed></body>", EPODE_EPROTOCOL,
                    "not XML");
    /* the server refuses the session outright */
    refused_session("<body xmlns='" NS_BIND "' type='terminate' condition='host-unknown'/>",
                    EPODE_ENET, "host-unknown");
}

TEST(http_errors_end_the_link)
{
    fake f = {0};
    epode__transport *t;
    MAKE(t, &f, 0);
    CHECK_INT(hs(t), EPODE_EAGAIN);
    answer_status(&f, pend(&f, 0), 404, "<html>not found</html>");
    CHECK_INT(hs(t), EPODE_ENET);
    CHECK(strstr(epode__transport_error(t), "HTTP 404"));
    done(t, &f);

    OPENED(t, &f);
    answer_status(&f, pend(&f, 0), 503, "");
    char buf[64];
    CHECK_INT(epode__transport_read(t, buf, sizeof buf), EPODE_ENET);
    CHECK(strstr(epode__transport_error(t), "HTTP 503"));
    CHECK_INT(npending(&f), 0);
    done(t, &f);

    /* a certificate curl refused, or any other non-network failure:
     * no resend */
    MAKE(t, &f, 0);
    CHECK_INT(hs(t), EPODE_EAGAIN);
    freq *r = pend(&f, 0);
    r->pending = 0;
    r->done(r->req, EPODE_ECERT, 0, "", 0, "the server's certificate does not hold", 0);
    CHECK_INT(hs(t), EPODE_ECERT);
    CHECK(strstr(epode__transport_error(t), "certificate"));
    CHECK_INT(npending(&f), 0);
    done(t, &f);
}

/* ---- sending ------------------------------------------------------------------------- */

TEST(elements_are_batched_into_requests)
{
    fake f = {0};
    epode__transport *t;
    OPENED(t, &f);
    unsigned long long poll = rid_of(pend(&f, 0));
    /* one write, two stanzas, a whitespace keepalive: one request (the
     * second slot), the keepalive dropped */
    wr(t, "<message xmlns='jabber:client' to='a@b'><body>1 &lt; 2</body></message> "
          "<presence xmlns='jabber:client'/>");
    CHECK_INT(npending(&f), 2);
    freq *r = pend(&f, 1);
    CHECK_INT(rid_of(r), poll + 1);
    char want[600];
    snprintf(want, sizeof want,
             "<body rid='%llu' sid='s1' xmlns='" NS_BIND "'><message xmlns='jabber:client' "
             "to='a@b'><body>1 &lt; 2</body></message><presence xmlns='jabber:client'/></body>",
             poll + 1);
    CHECK_STR(r->body, want);
    /* both slots busy: the next elements wait, even cut in two writes */
    wr(t, "<iq xmlns='jabber:client' id='x' type='get'><ping xmlns='urn:xmpp:ping'/>");
    wr(t, "</iq>");
    wr(t, "   ");
    CHECK_INT(npending(&f), 2);
    /* the server gives the held poll back: the waiting iq goes at once */
    readies = 0;
    answer(&f, pend(&f, 0), "<body xmlns='" NS_BIND "'/>");
    CHECK(readies >= 1);
    CHECK_INT(npending(&f), 2);
    r = pend(&f, 1);
    snprintf(want, sizeof want,
             "<body rid='%llu' sid='s1' xmlns='" NS_BIND "'><iq xmlns='jabber:client' id='x' "
             "type='get'><ping xmlns='urn:xmpp:ping'/></iq></body>",
             poll + 2);
    CHECK_STR(r->body, want);
    /* whitespace alone makes no request */
    wr(t, "\n");
    CHECK_INT(npending(&f), 2);
    CHECK_INT(epode__transport_write(t, "", 0), 0); /* nothing waits */
    done(t, &f);
}

/* A fake `later`: what the layer asked for, fired by the test. */
static unsigned later_ms;
static void (*later_fire)(void *);
static void *later_arg;
static void f_later(void *user, unsigned ms, void (*fire)(void *), void *arg)
{
    (void)user;
    later_ms = ms;
    later_fire = fire;
    later_arg = arg;
}

TEST(a_request_waits_until_the_one_in_flight_is_a_moment_old)
{
    /* Two requests on two connections may reach the server in either
     * order; ejabberd 23.01 answers neither when the later rid comes
     * first (30 s stalls mid-session: a poll, then stanzas a millisecond
     * later). So stanzas that would follow a request still in flight by
     * less than PACE_MS (5 ms) wait for `later`, batched, and then go. */
    fake f = {0};
    later_fire = NULL;
    epode__bosh_options o = {.domain = "example.test", .ready = on_ready,
                             .http = {.start = f_start, .cancel = f_cancel, .free = f_free,
                                      .user = &f, .later = f_later}};
    epode__transport *t = NULL;
    CHECK_INT(epode__bosh_new(NULL, &o, &t), 0);
    CHECK_INT(hs(t), EPODE_EAGAIN);
    answer(&f, pend(&f, 0), SESSION_ANSWER("wait='60' requests='2' hold='1'", FEATURES));
    CHECK_INT(hs(t), 0);
    wr(t, ENGINE_OPEN);
    char buf[4096];
    read_all(t, buf, sizeof buf, NULL); /* and the poll, a turn later */
    CHECK_INT(npending(&f), 1);
    /* the poll just went: the presence waits */
    wr(t, "<presence xmlns='jabber:client'/>");
    wr(t, "<message xmlns='jabber:client' id='m'/>");
    CHECK_INT(npending(&f), 1);
    CHECK(later_fire != NULL && later_ms > 0 && later_ms <= 5);
    struct timespec ts = {0, 16 * 1000000};
    nanosleep(&ts, NULL); /* as the loop would, later_ms from now */
    later_fire(later_arg);
    CHECK_INT(npending(&f), 2); /* both stanzas in one request */
    CHECK(strstr(pend(&f, 1)->body, "<presence") && strstr(pend(&f, 1)->body, "id='m'"));
    /* the server lets the poll go (it holds the data request now): a
     * stanza more than 5 ms after that request goes at once */
    answer(&f, pend(&f, 0), "<body xmlns='" NS_BIND "'/>");
    CHECK_INT(npending(&f), 1);
    ts.tv_nsec = 20 * 1000000;
    nanosleep(&ts, NULL);
    later_fire = NULL;
    wr(t, "<presence xmlns='jabber:client'/>");
    CHECK_INT(npending(&f), 2);
    CHECK(later_fire == NULL);
    done(t, &f);
}

TEST(one_poll_is_always_outstanding)
{
    fake f = {0};
    epode__transport *t;
    OPENED(t, &f);
    unsigned long long rid = rid_of(pend(&f, 0));
    for (int i = 1; i <= 3; i++) {
        answer(&f, pend(&f, 0), "<body xmlns='" NS_BIND "'/>");
        CHECK_INT(npending(&f), 1);
        CHECK_INT(rid_of(pend(&f, 0)), rid + (unsigned long long)i);
    }
    /* data answered with nothing pending: a poll replaces it */
    wr(t, "<presence xmlns='jabber:client'/>");
    CHECK_INT(npending(&f), 2);
    answer(&f, pend(&f, 1), "<body xmlns='" NS_BIND "'/>");
    CHECK_INT(npending(&f), 1);
    answer(&f, pend(&f, 0), "<body xmlns='" NS_BIND "'/>");
    CHECK_INT(npending(&f), 1);
    CHECK_INT(rid_of(pend(&f, 0)), rid + 5);
    done(t, &f);
}

/* ---- receiving ------------------------------------------------------------------------ */

TEST(answers_are_handed_up_in_rid_order)
{
    fake f = {0};
    epode__transport *t;
    OPENED(t, &f);
    wr(t, "<presence xmlns='jabber:client'/>");
    CHECK_INT(npending(&f), 2);
    freq *first = pend(&f, 0), *second = pend(&f, 1);
    CHECK(rid_of(first) + 1 == rid_of(second));
    /* the later rid answers first: held until the earlier one came */
    answer(&f, second, "<body xmlns='" NS_BIND "'><message xmlns='jabber:client' id='2'/></body>");
    char buf[2048];
    long end;
    read_all(t, buf, sizeof buf, &end);
    CHECK_STR(buf, "");
    CHECK_INT(end, EPODE_EAGAIN);
    CHECK_INT(npending(&f), 1); /* still held: no new poll while one is out */
    answer(&f, first, "<body xmlns='" NS_BIND "'><message xmlns='jabber:client' id='1'>"
                      "<body>hi</body></message></body>");
    read_all(t, buf, sizeof buf, &end);
    CHECK_STR(buf, "<message xmlns=\"jabber:client\" id=\"1\"><body>hi</body></message>"
                   "<message xmlns=\"jabber:client\" id=\"2\"/>");
    turn(t);
    CHECK_INT(npending(&f), 1); /* and polling goes on, a turn later */
    done(t, &f);
}

TEST(prefixes_declared_on_body_survive)
{
    fake f = {0};
    epode__transport *t;
    OPENED(t, &f);
    answer(&f, pend(&f, 0),
           "<body xmlns='" NS_BIND "' xmlns:stream='http://etherx.jabber.org/streams' "
           "xmlns:c='jabber:client'><c:message id='p'/><stream:error><conflict "
           "xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></body>");
    char buf[2048];
    read_all(t, buf, sizeof buf, NULL);
    CHECK_STR(buf, "<c:message xmlns:c=\"jabber:client\" id=\"p\"/><stream:error "
                   "xmlns:stream=\"http://etherx.jabber.org/streams\"><conflict "
                   "xmlns=\"urn:ietf:params:xml:ns:xmpp-streams\"/></stream:error>");
    turn(t);
    /* a stanza without xmlns='jabber:client' is one (XEP-0206), not BOSH's */
    answer(&f, pend(&f, 0), "<body xmlns='" NS_BIND "'><message from='a@b'><body>x</body>"
                            "</message></body>");
    read_all(t, buf, sizeof buf, NULL);
    CHECK_STR(buf, "<message xmlns=\"jabber:client\" from=\"a@b\"><body>x</body></message>");
    done(t, &f);
}

TEST(a_broken_exchange_is_resent_with_the_same_rid)
{
    fake f = {0};
    epode__transport *t;
    OPENED(t, &f);
    wr(t, "<message xmlns='jabber:client' id='m1'/>");
    freq *r = pend(&f, 1);
    char *body = strdup(r->body);
    cut(r);
    CHECK_INT(npending(&f), 2);
    CHECK_STR(pend(&f, 1)->body, body); /* same rid, same bytes */
    cut(pend(&f, 1));
    CHECK_STR(pend(&f, 1)->body, body);
    /* the third try goes through: answered once, nothing lost or doubled */
    answer(&f, pend(&f, 1), "<body xmlns='" NS_BIND "'/>");
    answer(&f, pend(&f, 0), "<body xmlns='" NS_BIND "'><message xmlns='jabber:client' "
                            "id='in'/></body>");
    char buf[512];
    read_all(t, buf, sizeof buf, NULL);
    CHECK_STR(buf, "<message xmlns=\"jabber:client\" id=\"in\"/>");
    /* three breaks of one request: the link fails */
    r = pend(&f, 0);
    cut(r);
    cut(pend(&f, 0));
    readies = 0;
    cut(pend(&f, 0));
    CHECK(readies >= 1);
    CHECK_INT(npending(&f), 0);
    long end;
    read_all(t, buf, sizeof buf, &end);
    CHECK_INT(end, EPODE_ENET);
    CHECK(strstr(epode__transport_error(t), "failed 3 times"));
    CHECK(strstr(epode__transport_error(t), "Connection reset"));
    free(body);
    done(t, &f);
}

TEST(no_rid_goes_past_the_window_while_one_is_resent)
{
    fake f = {0};
    epode__transport *t;
    OPENED(t, &f);
    wr(t, "<presence xmlns='jabber:client'/>");
    freq *poll = pend(&f, 0), *data = pend(&f, 1);
    unsigned long long rid = rid_of(poll);
    cut(poll); /* the poll goes again, same rid */
    answer(&f, data, "<body xmlns='" NS_BIND "'/>"); /* the later one is answered */
    CHECK_INT(npending(&f), 1);
    /* only one request is out, but a new rid would be two past the one
     * being resent: the server may no longer be able to answer that one
     * again. Data waits. */
    wr(t, "<message xmlns='jabber:client' to='a@b'/>");
    CHECK_INT(npending(&f), 1);
    CHECK_INT(rid_of(pend(&f, 0)), rid);
    answer(&f, pend(&f, 0), "<body xmlns='" NS_BIND "'/>");
    CHECK_INT(npending(&f), 1);
    CHECK_INT(rid_of(pend(&f, 0)), rid + 2);
    CHECK(strstr(pend(&f, 0)->body, "<message"));
    done(t, &f);
}

TEST(restart_after_authentication)
{
    fake f = {0};
    epode__transport *t;
    OPENED(t, &f);
    unsigned long long rid = rid_of(pend(&f, 0));
    wr(t, "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-1'>biws</auth>");
    answer(&f, pend(&f, 0), "<body xmlns='" NS_BIND "'/>"); /* the held poll, given back */
    answer(&f, pend(&f, 0), "<body xmlns='" NS_BIND "'><success "
                            "xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/></body>");
    char buf[2048];
    read_all(t, buf, sizeof buf, NULL);
    CHECK_STR(buf, "<success xmlns=\"urn:ietf:params:xml:ns:xmpp-sasl\"/>");
    /* the engine's new <open/>: a restart request of its own */
    wr(t, ENGINE_OPEN);
    CHECK_INT(npending(&f), 2);
    char want[400];
    snprintf(want, sizeof want,
             "<body rid='%llu' sid='s1' to='example.test' xml:lang='en' xmpp:restart='true' "
             "xmlns='" NS_BIND "' xmlns:xmpp='urn:xmpp:xbosh'/>",
             rid + 3);
    CHECK_STR(pend(&f, 1)->body, want);
    /* the new stream's <open/> goes up at once */
    read_all(t, buf, sizeof buf, NULL);
    CHECK_STR(buf, OPEN_UP);
    /* the features may come on the held poll (Prosody's way), before the
     * restart's own answer */
    answer(&f, pend(&f, 0), "<body xmlns='" NS_BIND "' "
                            "xmlns:stream='http://etherx.jabber.org/streams'><stream:features>"
                            "<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features>"
                            "</body>");
    answer(&f, pend(&f, 0), "<body xmlns='" NS_BIND "'/>");
    read_all(t, buf, sizeof buf, NULL);
    CHECK_STR(buf, "<stream:features xmlns:stream=\"http://etherx.jabber.org/streams\">"
                   "<bind xmlns=\"urn:ietf:params:xml:ns:xmpp-bind\"/></stream:features>");
    done(t, &f);
}

/* ---- ending ------------------------------------------------------------------------------ */

TEST(our_close_is_a_terminate_request)
{
    fake f = {0};
    epode__transport *t;
    OPENED(t, &f);
    wr(t, "<presence xmlns='jabber:client' type='unavailable'/>"
          "<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>");
    CHECK_INT(npending(&f), 2);
    unsigned long long rid = rid_of(pend(&f, 1));
    char want[400];
    snprintf(want, sizeof want,
             "<body rid='%llu' sid='s1' type='terminate' xmlns='" NS_BIND "'><presence "
             "xmlns='jabber:client' type='unavailable'/></body>",
             rid);
    CHECK_STR(pend(&f, 1)->body, want);
    CHECK_INT(epode__transport_shutdown(t), 0);
    CHECK_INT(epode__transport_write(t, "<a/>", 4), EPODE_ENET); /* nothing after it */
    answer(&f, pend(&f, 0), "<body xmlns='" NS_BIND "'/>");
    CHECK_INT(npending(&f), 1); /* no poll after the terminate */
    answer(&f, pend(&f, 0), "<body xmlns='" NS_BIND "' type='terminate'/>");
    char buf[256];
    long end;
    read_all(t, buf, sizeof buf, &end);
    CHECK_STR(buf, "<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>");
    CHECK_INT(end, 0);
    CHECK_INT(npending(&f), 0);
    done(t, &f);
}

TEST(the_close_may_go_over_the_request_limit)
{
    fake f = {0};
    epode__transport *t;
    OPENED(t, &f);
    wr(t, "<presence xmlns='jabber:client'/>");
    CHECK_INT(npending(&f), 2);
    /* both requests out (the poll held): the terminate is one more
     * (XEP-0124 §11), not held back for up to `wait` seconds */
    wr(t, "<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>");
    CHECK_INT(npending(&f), 3);
    CHECK(strstr(pend(&f, 2)->body, "type='terminate'"));
    CHECK_INT(epode__transport_write(t, "", 0), EPODE_ENET); /* nothing after it */
    CHECK_INT(epode__transport_shutdown(t), 0);
    done(t, &f);
}

TEST(data_waits_while_both_requests_are_out)
{
    fake f = {0};
    epode__transport *t;
    OPENED(t, &f);
    /* a poll held and one data request out: more data waits for one */
    answer(&f, pend(&f, 0), "<body xmlns='" NS_BIND "'/>");
    wr(t, "<presence xmlns='jabber:client'/>");
    wr(t, "<message xmlns='jabber:client' to='a@b'/>");
    CHECK_INT(npending(&f), 2);
    CHECK_INT(epode__transport_write(t, "<iq xmlns='jabber:client' id='q' type='get'/>", 45), 45);
    CHECK_INT(npending(&f), 2);
    CHECK_INT(epode__transport_write(t, "", 0), EPODE_EAGAIN); /* the iq waits */
    done(t, &f);
}

static void server_terminates(const char *body, long code, const char *up, const char *words)
{
    fake f = {0};
    epode__transport *t;
    OPENED(t, &f);
    answer(&f, pend(&f, 0), body);
    char buf[1024];
    long end;
    read_all(t, buf, sizeof buf, &end);
    CHECK_STR(buf, up);
    CHECK_INT(end, code);
    if (words) {
        if (!strstr(epode__transport_error(t), words))
            printf("# error text: %s\n", epode__transport_error(t));
        CHECK(strstr(epode__transport_error(t), words) != NULL);
    }
    CHECK_INT(npending(&f), 0);
    done(t, &f);
}

TEST(the_servers_terminate_and_its_conditions)
{
    /* no condition: the stream's end */
    server_terminates("<body xmlns='" NS_BIND "' type='terminate'/>", 0,
                      "<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>", NULL);
    /* a condition: the children first (a stream error for the engine) */
    server_terminates("<body xmlns='" NS_BIND "' type='terminate' condition='remote-stream-error' "
                      "xmlns:stream='http://etherx.jabber.org/streams'><stream:error><conflict "
                      "xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error></body>",
                      EPODE_ENET,
                      "<stream:error xmlns:stream=\"http://etherx.jabber.org/streams\"><conflict "
                      "xmlns=\"urn:ietf:params:xml:ns:xmpp-streams\"/></stream:error>",
                      "remote-stream-error");
    server_terminates("<body xmlns='" NS_BIND "' type='terminate' condition='item-not-found'/>",
                      EPODE_ENET, "", "item-not-found");
    server_terminates("<body xmlns='" NS_BIND "' type='terminate' condition='see-other-uri'>"
                      "<uri>https://other.example.test/bosh</uri></body>",
                      EPODE_ENET, "", "see-other-uri to https://other.example.test/bosh");
    /* another session's answer, or not BOSH */
    server_terminates("<body xmlns='" NS_BIND "' sid='zz'/>", EPODE_EPROTOCOL, "",
                      "another session");
    server_terminates("<html/>", EPODE_EPROTOCOL, "", "not a BOSH <body/>");
}

/* ---- bounds ----------------------------------------------------------------------------- */

TEST(an_oversized_answer_ends_the_link)
{
    fake f = {0};
    epode__transport *t;
    MAKE(t, &f, 1000);
    CHECK_INT(hs(t), EPODE_EAGAIN);
    answer(&f, pend(&f, 0), SESSION_ANSWER("", FEATURES));
    CHECK_INT(hs(t), 0);
    wr(t, ENGINE_OPEN);
    char first[2048];
    read_all(t, first, sizeof first, NULL); /* the features, and the poll a turn later */
    char big[1200];
    snprintf(big, sizeof big, "<body xmlns='" NS_BIND "'><message xmlns='jabber:client'><body>"
                              "%0900d</body></message></body>", 1);
    answer(&f, pend(&f, 0), big);
    char buf[2048];
    long end;
    read_all(t, buf, sizeof buf, &end);
    CHECK_INT(end, EPODE_EPROTOCOL);
    CHECK(strstr(epode__transport_error(t), "1000-byte limit"));
    done(t, &f);
}

TEST(a_full_upward_buffer_stops_the_polling)
{
    fake f = {0};
    epode__transport *t;
    OPENED(t, &f);
    /* 1.2 MiB of stanzas the engine has not read yet */
    size_t n = 1200 * 1024;
    char *big = malloc(n + 200);
    int len = snprintf(big, 200, "<body xmlns='" NS_BIND "'><message xmlns='jabber:client'><body>");
    memset(big + len, 'x', n);
    strcpy(big + len + n, "</body></message></body>");
    answer(&f, pend(&f, 0), big);
    CHECK_INT(npending(&f), 0); /* no poll: the server cannot push more */
    CHECK(epode__transport_pending(t) > n);
    /* the engine reads: polling resumes */
    char *buf = malloc(n + 200);
    long end;
    read_all(t, buf, n + 200, &end);
    CHECK_INT(npending(&f), 1);
    free(big);
    free(buf);
    done(t, &f);
}

static char log_lines[8][400];
static int nlog;
static void on_log(void *user, int out, const char *line)
{
    (void)user;
    if (nlog < 8)
        snprintf(log_lines[nlog++], sizeof log_lines[0], "%c %s", out ? '>' : '<', line);
}

TEST(the_log_shows_body_tags_never_stanzas)
{
    fake f = {0};
    nlog = 0;
    epode__bosh_options o = {.domain = "example.test", .log = on_log,
                             .http = {.start = f_start, .cancel = f_cancel, .free = f_free, .user = &f}};
    epode__transport *t = NULL;
    CHECK_INT(epode__bosh_new(NULL, &o, &t), 0);
    CHECK_INT(hs(t), EPODE_EAGAIN);
    answer(&f, pend(&f, 0), SESSION_ANSWER("", FEATURES));
    CHECK_INT(hs(t), 0);
    wr(t, ENGINE_OPEN);
    wr(t, "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>c2VjcmV0</auth>");
    /* creation, its answer, the auth request (which does the poll's work:
     * no poll went out before it) */
    CHECK_INT(nlog, 3);
    CHECK(strncmp(log_lines[0], "> BOSH request <body content=", 29) == 0);
    /* the sid hidden (with the next rid it is the session's key) */
    CHECK(strstr(log_lines[1], "< BOSH answer <body xmlns='" NS_BIND "' sid='**'"));
    CHECK(!strstr(log_lines[1], "mechanism")); /* the tag only */
    CHECK(strstr(log_lines[2], "sid='**' xmlns='" NS_BIND "'>"));
    CHECK(!strstr(log_lines[2], "c2VjcmV0"));
    for (int i = 0; i < nlog; i++)
        CHECK(!strstr(log_lines[i], "'s1'"));
    epode__transport_free(t);
    fake_clear(&f);
}

TEST(url_parsing)
{
    epode__bosh_url *u = NULL;
    char why[200];
    CHECK_INT(epode__bosh_url_parse(NULL, "https://bosh.example.test/http-bind", &u, why,
                                    sizeof why), 0);
    CHECK_INT(u->secure, 1);
    CHECK_STR(u->host, "bosh.example.test");
    CHECK_INT(u->port, 443);
    CHECK_STR(u->url, "https://bosh.example.test/http-bind");
    epode__bosh_url_free(NULL, u);
    CHECK_INT(epode__bosh_url_parse(NULL, "http://[::1]:5280/http-bind", &u, why, sizeof why), 0);
    CHECK_INT(u->secure, 0);
    CHECK_STR(u->host, "::1");
    CHECK_INT(u->port, 5280);
    epode__bosh_url_free(NULL, u);
    const char *bad[] = {"ws://x/", "https://", "https://user:pw@x/", "https://x/#f",
                         "https://x/a b", "https://x:99999/", "bosh.example.test"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        why[0] = '\0';
        CHECK_INT(epode__bosh_url_parse(NULL, bad[i], &u, why, sizeof why), EPODE_EINVAL);
        CHECK(why[0] != '\0');
    }
}

/* ---- through a connection --------------------------------------------------------------- */

static fake *conn_fake;
static int override(void *user, const epode__bosh_url *url, epode__bosh_http *out)
{
    (void)url;
    conn_fake = user;
    *out = (epode__bosh_http){.start = f_start, .cancel = f_cancel, .free = f_free, .user = user};
    return 0;
}

typedef struct watch {
    int tls_up, ready, disconnected;
} watch;

static void on_event(epode_conn_t *c, epode_conn_event_t ev, void *u)
{
    (void)c;
    watch *w = u;
    w->tls_up += ev == EPODE_CONN_TLS_UP;
    w->ready += ev == EPODE_CONN_READY;
    w->disconnected += ev == EPODE_CONN_DISCONNECTED;
}

static void dbg_log(void *u, epode_log_level_t l, const char *area, const char *msg)
{
    (void)u, (void)l;
    printf("# [%s] %s\n", area, msg);
}

/* Runs the loop until `cond` or 2 s. */
#define SPIN(ctx, cond)                                                                        \
    for (int spin_ = 0; spin_ < 400 && !(cond); spin_++)                                      \
        epode_ctx_run_once(ctx, 5);

/* The pending request whose body contains `what`, or NULL. */
static freq *pending_with(fake *f, const char *what)
{
    for (int k = 0; k < f->n; k++)
        if (f->reqs[k].pending && strstr(f->reqs[k].body, what))
            return &f->reqs[k];
    return NULL;
}

/* Gives back the empty polls pending now (the server does so when a
 * newer request comes). */
static void answer_polls(fake *f)
{
    int n = f->n;
    for (int k = 0; k < n; k++) {
        freq *r = &f->reqs[k];
        if (r->pending && !strstr(r->body, "><") && !strstr(r->body, "xmpp:restart"))
            answer(f, r, "<body xmlns='" NS_BIND "'/>");
    }
}

typedef struct conn_setup {
    epode_ctx_t *ctx;
    epode_conn_t *c;
    watch w;
    fake f;
} conn_setup;

static void conn_up(conn_setup *s, const char *url, const char *mechanisms, int tls)
{
    memset(s, 0, sizeof *s);
    s->f.tls = tls;
    epode__bosh_http_override = override;
    epode__bosh_http_override_user = &s->f;
    CHECK(epode_global_init() == 0);
    CHECK(epode_ctx_new(NULL, &s->ctx) == 0);
    if (getenv("BOSH_LOG"))
        epode_ctx_set_log(s->ctx, EPODE_LOG_XML, dbg_log, NULL);
    CHECK(epode_conn_new(s->ctx, &s->c) == 0);
    CHECK(epode_conn_set_jid(s->c, "alice@example.test/bosh") == 0);
    CHECK(epode_conn_set_password(s->c, "secret") == 0);
    if (mechanisms)
        CHECK(epode_conn_set_mechanisms(s->c, mechanisms) == 0);
    CHECK_INT(epode_conn_set_bosh(s->c, url), 0);
    CHECK(epode_conn_add_event_cb(s->c, on_event, &s->w, NULL) == 0);
    CHECK_INT(epode_conn_connect(s->c), 0);
    SPIN(s->ctx, s->f.n > 0);
    CHECK_INT(s->f.n, 1);
    CHECK(strstr(s->f.reqs[0].body, "to='example.test'")); /* the JID's domain */
}

static void conn_down(conn_setup *s)
{
    epode_conn_free(s->c);
    epode_ctx_free(s->ctx);
    epode__bosh_http_override = NULL;
    CHECK_INT(s->f.freed, 1);
    fake_clear(&s->f);
}

/* The server's session answer with these mechanisms; then the first
 * request carrying an element (the client's answer to the features). */
static freq *offer(conn_setup *s, const char *mechs)
{
    char body[1024];
    snprintf(body, sizeof body,
             "<body xmlns='" NS_BIND "' sid='c1' wait='60' requests='2' hold='1' "
             "xmlns:stream='http://etherx.jabber.org/streams'><stream:features><mechanisms "
             "xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>%s</mechanisms></stream:features></body>",
             mechs);
    answer(&s->f, pend(&s->f, 0), body);
    freq *r = NULL;
    SPIN(s->ctx, (r = pending_with(&s->f, "</body>")) != NULL || s->w.disconnected);
    return r;
}

TEST(conn_logs_in_over_bosh_with_restart_and_bind)
{
    conn_setup s;
    conn_up(&s, "http://127.0.0.1:5280/http-bind", "ANONYMOUS", 0);
    if (!s.ctx)
        return;
    freq *r = offer(&s, "<mechanism>ANONYMOUS</mechanism>");
    CHECK(r && strstr(r->body, "mechanism='ANONYMOUS'"));
    answer_polls(&s.f);
    answer(&s.f, r, "<body xmlns='" NS_BIND "'><success xmlns='urn:ietf:params:xml:ns:"
                    "xmpp-sasl'/></body>");
    SPIN(s.ctx, (r = pending_with(&s.f, "xmpp:restart='true'")) != NULL);
    CHECK(r);
    answer_polls(&s.f);
    answer(&s.f, r, "<body xmlns='" NS_BIND "' xmlns:stream='http://etherx.jabber.org/streams'>"
                    "<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>"
                    "</stream:features></body>");
    SPIN(s.ctx, (r = pending_with(&s.f, "urn:ietf:params:xml:ns:xmpp-bind")) != NULL);
    CHECK(r);
    const char *id = strstr(r->body, "<iq ");
    id = id ? strstr(id, " id=") : NULL;
    CHECK(id);
    char bindid[64];
    snprintf(bindid, sizeof bindid, "%.*s", (int)strcspn(id + 5, "'\""), id + 5);
    char result[512];
    snprintf(result, sizeof result,
             "<body xmlns='" NS_BIND "'><iq xmlns='jabber:client' type='result' id='%s'><bind "
             "xmlns='urn:ietf:params:xml:ns:xmpp-bind'><jid>alice@example.test/bosh</jid></bind>"
             "</iq></body>",
             bindid);
    answer_polls(&s.f);
    answer(&s.f, r, result);
    SPIN(s.ctx, s.w.ready);
    CHECK_INT(s.w.ready, 1);
    CHECK_INT(s.w.tls_up, 0); /* http:// */
    epode_transport_facts_t tf = {.size = sizeof tf};
    CHECK_INT(epode_conn_transport_facts(s.c, &tf), 0);
    CHECK_INT(tf.framing, EPODE_FRAMING_MESSAGE);
    CHECK_INT(tf.tls_version, 0);
    /* a stanza goes out in a request; the server's push comes in on a poll */
    CHECK_INT(npending(&s.f), 1); /* the poll, held */
    epode_stanza_t *m;
    CHECK(epode_stanza_new_message(NULL, "chat", "bob@example.test", "hello", &m) == 0);
    CHECK(epode_conn_send(s.c, m) == 0);
    epode_stanza_unref(m);
    SPIN(s.ctx, (r = pending_with(&s.f, "<message")) != NULL);
    CHECK(r && strstr(r->body, "hello"));
    /* the application closes: a terminate request, one over the limit
     * (the poll and the message are out) */
    epode_conn_close(s.c);
    SPIN(s.ctx, (r = pending_with(&s.f, "type='terminate'")) != NULL || s.w.disconnected);
    CHECK(r);
    answer_polls(&s.f);
    freq *m2 = pending_with(&s.f, "<message");
    CHECK(m2);
    answer(&s.f, m2, "<body xmlns='" NS_BIND "'/>");
    answer(&s.f, r, "<body xmlns='" NS_BIND "' type='terminate'/>");
    SPIN(s.ctx, s.w.disconnected);
    CHECK_INT(s.w.disconnected, 1);
    CHECK_INT(epode_conn_reason(s.c), EPODE_REASON_CLOSED);
    conn_down(&s);
}

TEST(conn_over_http_never_sends_plain)
{
    conn_setup s;
    /* SCRAM where the server offers it too */
    conn_up(&s, "http://127.0.0.1:5280/http-bind", NULL, 0);
    if (!s.ctx)
        return;
    freq *r = offer(&s, "<mechanism>PLAIN</mechanism><mechanism>SCRAM-SHA-1</mechanism>");
    CHECK(r && strstr(r->body, "mechanism='SCRAM-SHA-1'>biws")); /* gs2 "n,," */
    conn_down(&s);
    /* PLAIN alone: refused, never sent */
    conn_up(&s, "http://127.0.0.1:5280/http-bind", NULL, 0);
    if (!s.ctx)
        return;
    r = offer(&s, "<mechanism>PLAIN</mechanism>");
    SPIN(s.ctx, s.w.disconnected);
    CHECK_INT(s.w.disconnected, 1);
    CHECK(!pending_with(&s.f, "PLAIN"));
    for (int k = 0; k < s.f.n; k++)
        CHECK(!strstr(s.f.reqs[k].body, "mechanism='PLAIN'"));
    CHECK_INT(epode_conn_reason(s.c), EPODE_REASON_AUTH);
    conn_down(&s);
}

TEST(conn_over_https_reports_tls_and_binds_no_channel)
{
    conn_setup s;
    conn_up(&s, "https://bosh.example.test/http-bind", NULL, 13);
    if (!s.ctx)
        return;
    freq *r = offer(&s, "<mechanism>SCRAM-SHA-1-PLUS</mechanism><mechanism>SCRAM-SHA-1"
                        "</mechanism><mechanism>PLAIN</mechanism>");
    /* TLS told (the certificate was curl's to check), no channel binding:
     * SCRAM without -PLUS, gs2 flag 'n' */
    CHECK_INT(s.w.tls_up, 1);
    CHECK(r && strstr(r->body, "mechanism='SCRAM-SHA-1'>biws"));
    CHECK_STR(epode_conn_security(s.c), "TLS 1.3 (BOSH)");
    epode_transport_facts_t tf = {.size = sizeof tf};
    CHECK_INT(epode_conn_transport_facts(s.c, &tf), 0);
    CHECK_INT(tf.tls_version, 13);
    CHECK_INT(tf.tls_unique_len + tf.tls_exporter_len, 0);
    conn_down(&s);
    /* a certificate curl refused (for the URL's host or the domain) */
    conn_up(&s, "https://bosh.example.test/http-bind", NULL, 13);
    if (!s.ctx)
        return;
    freq *q = pend(&s.f, 0);
    q->pending = 0;
    q->done(q->req, EPODE_ECERT, 0, "", 0, "the server's certificate does not hold for the "
                                           "XMPP domain", 0);
    SPIN(s.ctx, s.w.disconnected);
    CHECK_INT(s.w.disconnected, 1);
    CHECK_INT(epode_conn_reason(s.c), EPODE_REASON_TLS);
    CHECK_INT(epode_conn_error(s.c), EPODE_ECERT);
    CHECK(strstr(epode_conn_error_text(s.c), "XMPP domain"));
    CHECK_INT(s.w.tls_up, 0);
    conn_down(&s);
}

TEST(conn_over_bosh_ends_on_a_terminate_and_refuses_clear_text_elsewhere)
{
    conn_setup s;
    conn_up(&s, "http://127.0.0.1:5280/http-bind", NULL, 0);
    if (!s.ctx)
        return;
    answer(&s.f, pend(&s.f, 0), "<body xmlns='" NS_BIND "' type='terminate' "
                                "condition='host-unknown'/>");
    SPIN(s.ctx, s.w.disconnected);
    CHECK_INT(s.w.disconnected, 1);
    CHECK_INT(epode_conn_reason(s.c), EPODE_REASON_NETWORK);
    CHECK(strstr(epode_conn_error_text(s.c), "host-unknown"));
    conn_down(&s);

    /* http:// to another host: refused before any request */
    epode_ctx_t *ctx;
    epode_conn_t *c;
    watch w = {0};
    fake f = {0};
    epode__bosh_http_override = override;
    epode__bosh_http_override_user = &f;
    CHECK(epode_ctx_new(NULL, &ctx) == 0);
    CHECK(epode_conn_new(ctx, &c) == 0);
    CHECK(epode_conn_set_jid(c, "alice@example.test") == 0);
    CHECK(epode_conn_set_password(c, "secret") == 0);
    CHECK_INT(epode_conn_set_bosh(c, "http://bosh.example.test/http-bind"), 0);
    CHECK(epode_conn_add_event_cb(c, on_event, &w, NULL) == 0);
    CHECK_INT(epode_conn_connect(c), 0);
    SPIN(ctx, w.disconnected);
    CHECK_INT(w.disconnected, 1);
    CHECK_INT(epode_conn_error(c), EPODE_ENOTLS);
    CHECK_INT(f.n, 0);
    /* the options: bad URLs, NULL, ""; components */
    CHECK_INT(epode_conn_set_bosh(c, "ftp://x/"), EPODE_EINVAL);
    CHECK_INT(epode_conn_set_bosh(c, NULL), 0); /* discovery (XEP-0156), test_conn's */
    CHECK_INT(epode_conn_set_bosh(c, ""), 0);
    CHECK_INT(epode_conn_set_bosh(NULL, "https://x/"), EPODE_EINVAL);
    CHECK(epode_conn_set_component(c, "comp.example.test", "secret") == 0);
    CHECK(epode_conn_set_server(c, "127.0.0.1", 5347) == 0);
    CHECK_INT(epode_conn_set_bosh(c, "http://127.0.0.1/http-bind"), 0);
    CHECK_INT(epode_conn_connect(c), EPODE_EINVAL);
    epode_conn_free(c);
    epode_ctx_free(ctx);
    epode__bosh_http_override = NULL;
    fake_clear(&f);
}
