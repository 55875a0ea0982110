/* tests/unit/test_framing.c — the stream engine on a message-framed
 * transport (RFC 7395): <open/> and <close/> instead of the stream header
 * and end, a new <open/> at each restart, every element standing alone
 * (stanzas declare jabber:client, stream errors their prefix), and the
 * server's frames — <open/>, features, stream errors with the prefix
 * declared inline, <close/> with see-other-uri, garbage — fed one frame
 * after the other, as the WebSocket layer hands them up. */
#include "test.h"

#include <epode.h>

#include "stream/engine.h"

TEST_MAIN

#define NSF "urn:ietf:params:xml:ns:xmpp-framing"
#define SOPEN "<open xmlns='" NSF "' from='example.com' id='s1' version='1.0'/>"
#define F_PLAIN                                                                                \
    "<stream:features xmlns:stream='http://etherx.jabber.org/streams'><mechanisms "            \
    "xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms>"       \
    "</stream:features>"
#define F_BIND                                                                                 \
    "<stream:features xmlns:stream='http://etherx.jabber.org/streams'><bind "                  \
    "xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features>"
#define SUCCESS "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>"
#define BIND_OK                                                                                \
    "<iq xmlns='jabber:client' type='result' id='bind_1'><bind "                               \
    "xmlns='urn:ietf:params:xml:ns:xmpp-bind'><jid>juliet@example.com/balcony</jid></bind></iq>"

typedef struct fx {
    epode__engine *e;
    char events[256];
    int ended, err, reason;
    char cond[64], text[400];
    int stanzas, skipped;
    char last_stanza[1024];
} fx;

static void ev_cb(void *u, int ev)
{
    fx *f = u;
    strncat(f->events,
            ev == EPODE__ENG_AUTHENTICATED ? "AUTH " : ev == EPODE__ENG_READY ? "READY " : "OTHER ",
            sizeof f->events - strlen(f->events) - 1);
}

static void stanza_cb(void *u, epode_stanza_t *st)
{
    fx *f = u;
    f->stanzas++;
    char *t;
    if (epode_stanza_to_text(st, 0, &t, NULL) == 0) {
        snprintf(f->last_stanza, sizeof f->last_stanza, "%s", t);
        epode_free(t);
    }
}

static void ended_cb(void *u, int err, int reason, const char *cond, const char *text)
{
    fx *f = u;
    f->ended++;
    f->err = err;
    f->reason = reason;
    snprintf(f->cond, sizeof f->cond, "%s", cond ? cond : "");
    snprintf(f->text, sizeof f->text, "%s", text ? text : "");
}

static void skipped_cb(void *u, const epode_stanza_t *st, int limit)
{
    (void)st;
    (void)limit;
    ((fx *)u)->skipped++;
}

static const epode__tls_facts facts13 = {.version = 13, .key_bits = 256};

static int setup(fx *f, size_t max_stanza)
{
    memset(f, 0, sizeof *f);
    if (epode_global_init() < 0)
        return -1;
    epode__engine_config cfg = {
        .domain = "example.com", .localpart = "juliet", .password = "r0meo!",
        .resource = "balcony", .tls_mode = EPODE_TLS_DIRECT, .mechanisms = "PLAIN",
        .framed = 1, .max_stanza_bytes = max_stanza,
    };
    epode__engine_cbs cbs = {ev_cb, stanza_cb, ended_cb, NULL, NULL, skipped_cb};
    return epode__engine_new(NULL, &cfg, &cbs, f, &f->e);
}

static char *take(fx *f)
{
    static char buf[1 << 16];
    size_t n;
    const char *o = epode__engine_output(f->e, &n);
    if (n >= sizeof buf)
        n = sizeof buf - 1;
    memcpy(buf, o ? o : "", n);
    buf[n] = '\0';
    epode__engine_consume(f->e, n);
    return buf;
}

/* One frame from the server. */
static int frame(fx *f, const char *s) { return epode__engine_recv(f->e, s, strlen(s)); }

/* Up to READY: <open/>, PLAIN, restart by a new <open/>, bind. */
#define login(f) login_(f, __LINE__)
static int login_(fx *f, int line)
{
    (void)line;
    if (epode__engine_start(f->e, &facts13) < 0)
        return (printf("# login step 1 events %s text %s\n", f->events, f->text), 0);
    if (strcmp(take(f), "<open xmlns='" NSF "' to='example.com' version='1.0' "
                        "from='juliet@example.com' xml:lang='en'/>") != 0)
        return (printf("# login step 2 events %s text %s\n", f->events, f->text), 0);
    if (frame(f, SOPEN) < 0 || frame(f, F_PLAIN) < 0)
        return (printf("# login step 3 events %s text %s\n", f->events, f->text), 0);
    if (!strstr(take(f), "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>"))
        return (printf("# login step 4 events %s text %s\n", f->events, f->text), 0);
    if (frame(f, SUCCESS) < 0)
        return (printf("# login step 5 events %s text %s\n", f->events, f->text), 0);
    /* the restart is a new <open/>, nothing else */
    if (strcmp(take(f), "<open xmlns='" NSF "' to='example.com' version='1.0' "
                        "from='juliet@example.com' xml:lang='en'/>") != 0)
        return (printf("# login step 6 events %s text %s\n", f->events, f->text), 0);
    if (frame(f, SOPEN) < 0 || frame(f, F_BIND) < 0)
        return (printf("# login step 7 events %s text %s\n", f->events, f->text), 0);
    /* stanzas stand alone: jabber:client is declared */
    char *o = take(f);
    if (strcmp(o, "<iq xmlns=\"jabber:client\" type=\"set\" id=\"bind_1\"><bind "
                        "xmlns=\"urn:ietf:params:xml:ns:xmpp-bind\"><resource>balcony</resource>"
                        "</bind></iq>") != 0)
        return (printf("# login step 8 events %s text %s out [%s]\n", f->events, f->text, o), 0);
    if (frame(f, BIND_OK) < 0)
        return (printf("# login step 9 events %s text %s\n", f->events, f->text), 0);
    return epode__engine_is_ready(f->e) && strcmp(f->events, "AUTH READY ") == 0;
}

TEST(framed_login_opens_restarts_and_closes_with_framing_elements)
{
    fx f;
    CHECK(setup(&f, 0) == 0);
    CHECK(login(&f));
    /* a stanza both ways */
    epode_stanza_t *m;
    CHECK(epode_stanza_new_message(NULL, "chat", "romeo@example.net", "hi", &m) == 0);
    CHECK(epode__engine_send(f.e, m) == 0);
    epode_stanza_unref(m);
    CHECK(strncmp(take(&f), "<message xmlns=\"jabber:client\" ", 31) == 0);
    /* the server's stanzas may or may not declare jabber:client */
    CHECK(frame(&f, "<message xmlns='jabber:client' from='romeo@example.net'><body>a</body>"
                    "</message>") == 0);
    CHECK(frame(&f, "<message from='romeo@example.net'><body>b</body></message>") == 0);
    CHECK_INT(f.stanzas, 2);
    CHECK(strstr(f.last_stanza, "<body>b</body>"));
    /* whitespace between frames is harmless */
    CHECK(frame(&f, " ") == 0);
    CHECK(epode__engine_close(f.e) == 0);
    CHECK_STR(take(&f), "<close xmlns='" NSF "'/>");
    CHECK(frame(&f, "<close xmlns='" NSF "'/>") < 0);
    CHECK_INT(f.ended, 1);
    CHECK_INT(f.err, EPODE_ECLOSED);
    CHECK_INT(f.reason, EPODE_REASON_CLOSED);
    epode__engine_free(f.e);
}

TEST(framed_server_close_first_is_answered)
{
    fx f;
    CHECK(setup(&f, 0) == 0);
    CHECK(login(&f));
    CHECK(frame(&f, "<close xmlns='" NSF "'/>") < 0);
    CHECK_STR(take(&f), "<close xmlns='" NSF "'/>");
    CHECK_INT(f.err, EPODE_ECLOSED);
    CHECK_INT(f.reason, EPODE_REASON_NETWORK);
    CHECK_STR(f.text, "the server closed the stream");
    epode__engine_free(f.e);
}

TEST(framed_close_with_see_other_uri_names_it)
{
    fx f;
    CHECK(setup(&f, 0) == 0);
    CHECK(login(&f));
    CHECK(frame(&f, "<close xmlns='" NSF "' see-other-uri='wss://other.example/ws'/>") < 0);
    CHECK(strstr(f.text, "wss://other.example/ws (see-other-uri)"));
    CHECK_INT(f.reason, EPODE_REASON_NETWORK);
    epode__engine_free(f.e);
}

TEST(framed_stream_error_with_its_prefix_declared_inline)
{
    fx f;
    CHECK(setup(&f, 0) == 0);
    CHECK(epode__engine_start(f.e, &facts13) == 0);
    take(&f);
    CHECK(frame(&f, SOPEN) == 0);
    CHECK(frame(&f, "<stream:error xmlns:stream='http://etherx.jabber.org/streams'><host-unknown "
                    "xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>") < 0);
    CHECK_STR(f.cond, "host-unknown");
    CHECK_INT(f.reason, EPODE_REASON_STREAM_ERROR);
    CHECK_STR(take(&f), "<close xmlns='" NSF "'/>");
    epode__engine_free(f.e);
}

TEST(framed_garbage_frame_is_a_stream_error_that_stands_alone)
{
    fx f;
    CHECK(setup(&f, 0) == 0);
    CHECK(login(&f));
    CHECK(frame(&f, "<message><body>x</bo></message>") < 0);
    CHECK_INT(f.err, EPODE_EPROTOCOL);
    char *o = take(&f);
    CHECK(strncmp(o, "<stream:error xmlns:stream='http://etherx.jabber.org/streams'>"
                     "<not-well-formed xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>", 124) == 0);
    CHECK(strstr(o, "</stream:error><close xmlns='" NSF "'/>"));
    epode__engine_free(f.e);
}

TEST(framed_stream_end_tag_in_a_frame_ends_the_stream)
{
    fx f;
    CHECK(setup(&f, 0) == 0);
    CHECK(login(&f));
    CHECK(frame(&f, "</stream:stream>") < 0);
    CHECK_INT(f.ended, 1);
    CHECK_INT(f.err, EPODE_ECLOSED);
    epode__engine_free(f.e);
}

TEST(framed_open_needs_version_1)
{
    fx f;
    CHECK(setup(&f, 0) == 0);
    CHECK(epode__engine_start(f.e, &facts13) == 0);
    take(&f);
    CHECK(frame(&f, "<open xmlns='" NSF "' from='example.com' id='s1'/>") < 0);
    CHECK_STR(f.cond, "unsupported-version");
    epode__engine_free(f.e);
}

TEST(framed_second_open_or_unknown_framing_element_is_refused)
{
    fx f;
    CHECK(setup(&f, 0) == 0);
    CHECK(login(&f));
    CHECK(frame(&f, SOPEN) < 0);
    CHECK_INT(f.err, EPODE_EPROTOCOL);
    epode__engine_free(f.e);
    CHECK(setup(&f, 0) == 0);
    CHECK(login(&f));
    CHECK(frame(&f, "<reopen xmlns='" NSF "'/>") < 0);
    CHECK(strstr(f.text, "framing namespace"));
    epode__engine_free(f.e);
}

TEST(framed_stanza_over_the_limit_is_skipped_and_the_stream_goes_on)
{
    fx f;
    CHECK(setup(&f, 2000) == 0);
    CHECK(login(&f));
    static char big[5000];
    int n = snprintf(big, sizeof big, "<message from='a@b/c' id='big'><body>");
    memset(big + n, 'x', 3000);
    strcpy(big + n + 3000, "</body></message>");
    CHECK(frame(&f, big) == 0);
    CHECK_INT(f.skipped, 1);
    CHECK(frame(&f, "<message from='a@b/c'><body>small</body></message>") == 0);
    CHECK_INT(f.stanzas, 1);
    CHECK_INT(f.ended, 0);
    epode__engine_free(f.e);
}

TEST(framed_whitespace_keepalive_is_raw_bytes_for_the_transport)
{
    /* The engine writes what it is given; the WebSocket layer turns
     * whitespace between elements into a ping. */
    fx f;
    CHECK(setup(&f, 0) == 0);
    CHECK(login(&f));
    CHECK(epode__engine_send_raw(f.e, " ", 1) == 0);
    CHECK_STR(take(&f), " ");
    epode__engine_free(f.e);
}

/* A SASL2 failure over a framed transport ends the stream with <close/>
 * (it wrote the byte stream's </stream:stream> into a WebSocket frame). */
TEST(framed_sasl2_failure_ends_with_close)
{
    fx f;
    memset(&f, 0, sizeof f);
    CHECK(epode_global_init() == 0);
    epode__engine_config cfg = {
        .domain = "example.com", .localpart = "juliet", .password = "r0meo!",
        .tls_mode = EPODE_TLS_DIRECT, .mechanisms = "PLAIN", .framed = 1, .sasl2 = 1,
        .ua_id = "d4b5a1a2-3c4d-4e5f-8a9b-0c1d2e3f4a5b",
    };
    epode__engine_cbs cbs = {ev_cb, stanza_cb, ended_cb, NULL, NULL, skipped_cb};
    CHECK(epode__engine_new(NULL, &cfg, &cbs, &f, &f.e) == 0);
    CHECK(epode__engine_start(f.e, &facts13) == 0);
    take(&f);
    CHECK(frame(&f, SOPEN) == 0);
    CHECK(frame(&f, "<stream:features xmlns:stream='http://etherx.jabber.org/streams'>"
                    "<authentication xmlns='urn:xmpp:sasl:2'><mechanism>PLAIN</mechanism>"
                    "</authentication></stream:features>") == 0);
    CHECK(strstr(take(&f), "<authenticate xmlns='urn:xmpp:sasl:2' mechanism='PLAIN'"));
    frame(&f, "<failure xmlns='urn:xmpp:sasl:2'><not-authorized "
              "xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/></failure>");
    CHECK_INT(f.ended, 1);
    CHECK_INT(f.reason, EPODE_REASON_AUTH);
    char *o = take(&f);
    CHECK(!strstr(o, "</stream:stream>"));
    CHECK(strstr(o, "<close xmlns='" NSF "'/>"));
    epode__engine_free(f.e);
}
