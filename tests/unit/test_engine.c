/* tests/unit/test_engine.c — the sans-I/O session engine against scripted
 * servers: server bytes in, client bytes and events out, byte for byte.
 * Friendly servers, and hostile ones (garbage, huge stanzas, stream errors
 * at every step, no STARTTLS, cleartext after <proceed/>, forged SASL
 * success, -PLUS stripped from the offer), and what the engine's memory
 * holds of the credentials afterwards. */
#include "test.h"

#include <epode.h>

#include "stream/engine.h"
#include "stream/sm.h"
#include "util/base64.h"

#define SHDR "<?xml version='1.0'?><stream:stream xmlns='jabber:client' " \
             "xmlns:stream='http://etherx.jabber.org/streams' from='example.com' id='s%d' version='1.0'>"
#define F_TLS "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls></stream:features>"
#define F_PLAIN "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>PLAIN</mechanism></mechanisms></stream:features>"
#define F_BIND_SESSION "<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/><session xmlns='urn:ietf:params:xml:ns:xmpp-session'/></stream:features>"
#define F_BIND "<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/><session xmlns='urn:ietf:params:xml:ns:xmpp-session'><optional/></session></stream:features>"
#define PROCEED "<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>"
#define SUCCESS "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>"
#define BIND_OK "<iq type='result' id='bind_1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><jid>juliet@example.com/balcony</jid></bind></iq>"
#define SESS_OK "<iq type='result' id='sess_1'/>"

typedef struct fx {
    epode__engine *e;
    char sm_log[2048];
    char events[256];
    int ended, err, reason;
    char cond[64], text[400];
    int stanzas;
    char last_stanza[1024];
    char log[1 << 15];
    size_t loglen;
    int hdr_n;
} fx;

static void ev_cb(void *u, int ev)
{
    fx *f = u;
    const char *n = ev == EPODE__ENG_STARTTLS        ? "STARTTLS "
                    : ev == EPODE__ENG_AUTHENTICATED ? "AUTH "
                    : ev == EPODE__ENG_RESUMED       ? "RESUMED "
                                                     : "READY ";
    strncat(f->events, n, sizeof f->events - strlen(f->events) - 1);
}

static void stanza_cb(void *u, epode_stanza_t *st)
{
    fx *f = u;
    f->stanzas++;
    char *t;
    if (epode_stanza_to_text(st, EPODE_TEXT_IN_STREAM, &t, NULL) == 0) {
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

static void log_cb(void *u, int out, const char *d, size_t n)
{
    fx *f = u;
    if (f->loglen + n + 8 < sizeof f->log) {
        memcpy(f->log + f->loglen, out ? "OUT " : "IN  ", 4);
        f->loglen += 4;
        memcpy(f->log + f->loglen, d, n);
        f->loglen += n;
        f->log[f->loglen++] = '\n';
        f->log[f->loglen] = '\0';
    }
}

static void sm_cb(void *u, int acked, const char *id, const char *bytes, size_t len)
{
    fx *f = u;
    char line[256];
    snprintf(line, sizeof line, "%s:%s:%zu ", acked ? "ack" : "back", id ? id : "-", len);
    (void)bytes;
    strncat(f->sm_log, line, sizeof f->sm_log - strlen(f->sm_log) - 1);
}

static const epode__tls_facts facts13 = {.version = 13, .key_bits = 256};

static int setup(fx *f, epode_tls_mode_t mode, const char *mechs)
{
    memset(f, 0, sizeof *f);
    if (epode_global_init() < 0)
        return -1;
    epode__engine_config cfg = {
        .domain = "example.com", .localpart = "juliet", .password = "r0meo!",
        .resource = "balcony", .tls_mode = mode, .mechanisms = mechs,
    };
    epode__engine_cbs cbs = {ev_cb, stanza_cb, ended_cb, log_cb, NULL, NULL};
    return epode__engine_new(NULL, &cfg, &cbs, f, &f->e);
}

/* Takes everything the client wrote. */
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

static int srv(fx *f, const char *s)
{
    return epode__engine_recv(f->e, s, strlen(s));
}

static char *hdr(fx *f)
{
    static char b[300];
    snprintf(b, sizeof b, SHDR, ++f->hdr_n);
    return b;
}

/* Runs the whole login (STARTTLS, PLAIN, bind, session). */
static int login(fx *f)
{
    if (epode__engine_start(f->e, NULL) < 0) return 0;
    char *o = take(f);
    if (!strstr(o, "to='example.com'") || strstr(o, "from=")) return 0;
    if (srv(f, hdr(f)) < 0 || srv(f, F_TLS) < 0) return 0;
    if (strcmp(take(f), "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>") != 0) return 0;
    if (srv(f, PROCEED) < 0) return 0;
    if (strcmp(f->events, "STARTTLS ") != 0) return 0;
    if (epode__engine_tls_ready(f->e, &facts13) < 0) return 0;
    o = take(f);
    if (!strstr(o, "from='juliet@example.com'")) return 0;
    if (srv(f, hdr(f)) < 0 || srv(f, F_PLAIN) < 0) return 0;
    /* base64("\0juliet\0r0meo!") */
    if (strcmp(take(f), "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>"
                        "AGp1bGlldAByMG1lbyE=</auth>") != 0) return 0;
    if (srv(f, SUCCESS) < 0) return 0;
    if (!strstr(take(f), "<stream:stream")) return 0;
    if (srv(f, hdr(f)) < 0 || srv(f, F_BIND_SESSION) < 0) return 0;
    o = take(f);
    if (strcmp(o, "<iq type=\"set\" id=\"bind_1\"><bind xmlns=\"urn:ietf:params:xml:ns:xmpp-bind\">"
                  "<resource>balcony</resource></bind></iq>") != 0) return 0;
    if (srv(f, BIND_OK) < 0) return 0;
    if (!strstr(take(f), "urn:ietf:params:xml:ns:xmpp-session")) return 0;
    if (srv(f, SESS_OK) < 0) return 0;
    return strcmp(f->events, "STARTTLS AUTH READY ") == 0 &&
           epode__engine_is_ready(f->e) &&
           strcmp(epode__engine_bound_jid(f->e), "juliet@example.com/balcony") == 0;
}

TEST(engine_full_login_starttls_plain_bind_session)
{
    fx f;
    CHECK_INT(setup(&f, EPODE_TLS_REQUIRED, NULL), 0);
    CHECK(login(&f));
    CHECK_INT(f.ended, 0);
    CHECK_STR(epode__engine_mechanism(f.e), "PLAIN");
    epode__engine_free(f.e);
}

TEST(engine_delivers_stanzas_and_sends_after_ready)
{
    fx f;
    CHECK_INT(setup(&f, EPODE_TLS_REQUIRED, NULL), 0);
    CHECK(login(&f));
    CHECK_INT(srv(&f, "<message from='romeo@example.net/x' type='chat'><body>hi</body></message>"), 0);
    CHECK_INT(f.stanzas, 1);
    CHECK_STR(f.last_stanza, "<message from=\"romeo@example.net/x\" type=\"chat\"><body>hi</body></message>");
    epode_stanza_t *m;
    CHECK_INT(epode_stanza_new_message(NULL, "chat", "romeo@example.net", "a < b", &m), 0);
    CHECK_INT(epode__engine_send(f.e, m), 0);
    epode_stanza_unref(m);
    CHECK_STR(take(&f), "<message type=\"chat\" to=\"romeo@example.net\"><body>a &lt; b</body></message>");
    epode__engine_free(f.e);
}

TEST(engine_send_before_ready_is_refused)
{
    fx f;
    CHECK_INT(setup(&f, EPODE_TLS_REQUIRED, NULL), 0);
    CHECK_INT(epode__engine_start(f.e, NULL), 0);
    epode_stanza_t *m;
    CHECK_INT(epode_stanza_new_message(NULL, "chat", "a@b", "x", &m), 0);
    CHECK_INT(epode__engine_send(f.e, m), EPODE_ESTATE);
    epode_stanza_unref(m);
    epode__engine_free(f.e);
}

TEST(engine_login_survives_one_byte_chunks)
{
    fx f;
    CHECK_INT(setup(&f, EPODE_TLS_DISABLED, "SCRAM-SHA-1 PLAIN"), 0);
    /* no TLS, so no PLAIN: offer SCRAM only and stop at the auth */
    CHECK_INT(epode__engine_start(f.e, &facts13), 0); /* as if direct TLS */
    take(&f);
    char script[4096];
    snprintf(script, sizeof script, SHDR "%s", 1, F_PLAIN);
    for (size_t i = 0; script[i]; i++)
        CHECK_INT(epode__engine_recv(f.e, script + i, 1), 0);
    CHECK(strstr(take(&f), "mechanism='PLAIN'"));
    epode__engine_free(f.e);
}

TEST(engine_refuses_server_without_starttls_when_tls_required)
{
    fx f;
    CHECK_INT(setup(&f, EPODE_TLS_REQUIRED, NULL), 0);
    CHECK_INT(epode__engine_start(f.e, NULL), 0);
    take(&f);
    srv(&f, hdr(&f));
    srv(&f, F_PLAIN);
    CHECK_INT(f.ended, 1);
    CHECK_INT(f.err, EPODE_ENOTLS);
    CHECK_INT(f.reason, EPODE_REASON_TLS);
    CHECK(strstr(f.text, "STARTTLS"));
    char *o = take(&f);
    CHECK(!strstr(o, "<auth"));
    CHECK(strstr(o, "</stream:stream>"));
    epode__engine_free(f.e);
}

/* TLS disabled here, against a server that authenticates only after
 * STARTTLS (what Prosody and ejabberd do by default): the reason is TLS,
 * and the text says so, not "no SASL mechanisms offered". */
TEST(engine_tls_disabled_against_a_tls_only_server_says_tls)
{
    fx f;
    CHECK_INT(setup(&f, EPODE_TLS_DISABLED, NULL), 0);
    CHECK_INT(epode__engine_start(f.e, NULL), 0);
    take(&f);
    srv(&f, hdr(&f));
    srv(&f, "<stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/>"
            "</starttls></stream:features>");
    CHECK_INT(f.ended, 1);
    CHECK_INT(f.err, EPODE_ENOTLS);
    CHECK_INT(f.reason, EPODE_REASON_TLS);
    CHECK(strstr(f.text, "TLS is disabled on this connection"));
    char *o = take(&f);
    CHECK(!strstr(o, "<starttls"));
    CHECK(strstr(o, "</stream:stream>"));
    epode__engine_free(f.e);
}

/* An HTTP server (or any non-XMPP service) on the port: the text names
 * what came back instead of libxml2's "Document is empty". */
TEST(engine_non_xml_answer_is_named_in_the_error_text)
{
    fx f;
    CHECK_INT(setup(&f, EPODE_TLS_REQUIRED, NULL), 0);
    CHECK_INT(epode__engine_start(f.e, NULL), 0);
    take(&f);
    srv(&f, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
    CHECK_INT(f.ended, 1);
    CHECK_INT(f.err, EPODE_EPROTOCOL);
    CHECK_INT(f.reason, EPODE_REASON_PROTOCOL);
    CHECK(strstr(f.text, "\"HTTP/1.1 400 Bad Request\""));
    CHECK(strstr(f.text, "XMPP port"));
    epode__engine_free(f.e);
    /* a well-formed but wrong document keeps the parser's words */
    CHECK_INT(setup(&f, EPODE_TLS_REQUIRED, NULL), 0);
    CHECK_INT(epode__engine_start(f.e, NULL), 0);
    take(&f);
    srv(&f, "<html><</html>");
    CHECK_INT(f.ended, 1);
    CHECK(!strstr(f.text, "XMPP port"));
    epode__engine_free(f.e);
}

TEST(engine_rejects_cleartext_after_proceed)
{
    fx f;
    CHECK_INT(setup(&f, EPODE_TLS_REQUIRED, NULL), 0);
    CHECK_INT(epode__engine_start(f.e, NULL), 0);
    take(&f);
    srv(&f, hdr(&f));
    srv(&f, F_TLS);
    take(&f);
    CHECK(srv(&f, PROCEED "<stream:features/>") < 0);
    CHECK_INT(f.ended, 1);
    CHECK_INT(f.err, EPODE_ETLS);
    CHECK_STR(f.cond, "policy-violation");
    CHECK(!strstr(f.events, "STARTTLS"));
    epode__engine_free(f.e);
}

TEST(engine_rejects_data_arriving_before_tls_is_up)
{
    fx f;
    CHECK_INT(setup(&f, EPODE_TLS_REQUIRED, NULL), 0);
    CHECK_INT(epode__engine_start(f.e, NULL), 0);
    take(&f);
    srv(&f, hdr(&f));
    srv(&f, F_TLS);
    srv(&f, PROCEED);
    CHECK_STR(f.events, "STARTTLS ");
    CHECK(srv(&f, "<x/>") < 0);
    CHECK_INT(f.err, EPODE_ETLS);
    epode__engine_free(f.e);
}

TEST(engine_starttls_failure_from_server)
{
    fx f;
    CHECK_INT(setup(&f, EPODE_TLS_REQUIRED, NULL), 0);
    CHECK_INT(epode__engine_start(f.e, NULL), 0);
    srv(&f, hdr(&f));
    srv(&f, F_TLS);
    srv(&f, "<failure xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
    CHECK_INT(f.err, EPODE_ETLS);
    CHECK_INT(f.reason, EPODE_REASON_TLS);
    epode__engine_free(f.e);
}

/* Drives a fresh engine to the given step, then sends `bad`. */
static int at_step(fx *f, int step, const char *bad)
{
    if (setup(f, EPODE_TLS_REQUIRED, NULL) < 0) return -1;
    epode__engine_start(f->e, NULL);
    if (step >= 1) srv(f, hdr(f));
    if (step >= 2) srv(f, F_TLS);
    if (step >= 3) { srv(f, PROCEED); epode__engine_tls_ready(f->e, &facts13); }
    if (step >= 4) srv(f, hdr(f));
    if (step >= 5) srv(f, F_PLAIN);
    if (step >= 6) srv(f, SUCCESS);
    if (step >= 7) srv(f, hdr(f));
    if (step >= 8) srv(f, F_BIND_SESSION);
    if (step >= 9) srv(f, BIND_OK);
    if (step >= 10) srv(f, SESS_OK);
    take(f);
    /* after <proceed/> and after <success/> the server's new stream has
     * not opened yet: open it first */
    if (step == 3 || step == 6)
        srv(f, hdr(f));
    return srv(f, bad);
}

TEST(engine_stream_error_at_every_step)
{
    for (int step = 1; step <= 10; step++) {
        fx f;
        at_step(&f, step, "<stream:error><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"
                          "<text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>Replaced</text></stream:error>");
        if (f.ended != 1 || f.err != EPODE_ESTREAM || strcmp(f.cond, "conflict") != 0 ||
            !strstr(f.text, "Replaced") || f.reason != EPODE_REASON_STREAM_ERROR)
            printf("# step %d: ended %d err %d cond %s text %s\n", step, f.ended, f.err, f.cond, f.text);
        CHECK_INT(f.ended, 1);
        CHECK_INT(f.err, EPODE_ESTREAM);
        CHECK_STR(f.cond, "conflict");
        CHECK(strstr(take(&f), "</stream:stream>"));
        epode__engine_free(f.e);
    }
}

TEST(engine_garbage_at_every_step_is_not_well_formed)
{
    for (int step = 1; step <= 10; step++) {
        fx f;
        CHECK(at_step(&f, step, "<a></b>") < 0);
        CHECK_INT(f.ended, 1);
        CHECK_INT(f.reason, EPODE_REASON_PROTOCOL);
        CHECK_STR(f.cond, "not-well-formed");
        char *o = take(&f);
        CHECK(strstr(o, "<stream:error><not-well-formed xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"));
        CHECK(strstr(o, "</stream:stream>"));
        epode__engine_free(f.e);
    }
}

/* DESIGN, "Bad input and limits": a well-formed stanza over a local limit
 * is skipped, the stream goes on, and a request gets policy-violation. */
TEST(engine_over_limit_stanza_is_skipped_and_the_stream_goes_on)
{
    fx f;
    CHECK_INT(setup(&f, EPODE_TLS_REQUIRED, NULL), 0);
    CHECK(login(&f));
    take(&f);
    static char big[400200];
    memset(big, 'a', sizeof big);
    memcpy(big, "<message from='x@y/z'><body>", 28);
    strcpy(big + sizeof big - 40, "</body></message>");
    CHECK_INT(srv(&f, big), 0);
    CHECK(!epode__engine_has_ended(f.e));
    static char deep[4000];
    strcpy(deep, "<iq type='get' id='q1' from='x@y/z'>");
    for (int i = 0; i < 300; i++)
        strcat(deep, "<a>");
    for (int i = 0; i < 300; i++)
        strcat(deep, "</a>");
    strcat(deep, "</iq>");
    CHECK_INT(srv(&f, deep), 0);
    const char *o = take(&f);
    CHECK(strstr(o, "type=\"error\"") && strstr(o, "id=\"q1\"") && strstr(o, "policy-violation"));
    CHECK_INT(srv(&f, "<message from='x@y/z'><body>next</body></message>"), 0);
    CHECK(!epode__engine_has_ended(f.e));
    epode__engine_free(f.e);
}

TEST(engine_see_other_host_gives_redirect)
{
    fx f;
    at_step(&f, 1, "<stream:error><see-other-host xmlns='urn:ietf:params:xml:ns:xmpp-streams'>"
                   "[2001:db8::1]:5222</see-other-host></stream:error>");
    CHECK_STR(f.cond, "see-other-host");
    CHECK_STR(epode__engine_redirect(f.e), "[2001:db8::1]:5222");
    epode__engine_free(f.e);
}

TEST(engine_unknown_stream_error_condition_is_undefined)
{
    fx f;
    at_step(&f, 4, "<stream:error><made-up xmlns='urn:x'/></stream:error>");
    CHECK_STR(f.cond, "undefined-condition");
    epode__engine_free(f.e);
}

TEST(engine_sasl_failure_reports_condition_and_text)
{
    fx f;
    at_step(&f, 5, "<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><not-authorized/>"
                   "<text>Wrong password</text></failure>");
    CHECK_INT(f.err, EPODE_EAUTH);
    CHECK_INT(f.reason, EPODE_REASON_AUTH);
    CHECK_STR(f.cond, "not-authorized");
    CHECK(strstr(f.text, "Wrong password"));
    CHECK(strcmp(f.events, "STARTTLS ") == 0);
    epode__engine_free(f.e);
}

TEST(engine_forged_scram_success_is_refused)
{
    fx f;
    CHECK_INT(setup(&f, EPODE_TLS_REQUIRED, "SCRAM-SHA-1"), 0);
    epode__engine_start(f.e, NULL);
    srv(&f, hdr(&f));
    srv(&f, F_TLS);
    srv(&f, PROCEED);
    epode__engine_tls_ready(f.e, &facts13);
    srv(&f, hdr(&f));
    srv(&f, "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>"
            "<mechanism>SCRAM-SHA-1</mechanism></mechanisms></stream:features>");
    CHECK(strstr(take(&f), "mechanism='SCRAM-SHA-1'"));
    srv(&f, SUCCESS); /* no server-final message: an impostor */
    CHECK_INT(f.ended, 1);
    CHECK_INT(f.err, EPODE_EAUTH);
    CHECK(!strstr(f.events, "AUTH"));
    epode__engine_free(f.e);
}

TEST(engine_scram_success_with_garbage_is_refused)
{
    fx f;
    CHECK_INT(setup(&f, EPODE_TLS_REQUIRED, "SCRAM-SHA-256"), 0);
    epode__engine_start(f.e, NULL);
    srv(&f, hdr(&f));
    srv(&f, F_TLS);
    srv(&f, PROCEED);
    epode__engine_tls_ready(f.e, &facts13);
    srv(&f, hdr(&f));
    srv(&f, "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>"
            "<mechanism>SCRAM-SHA-256</mechanism></mechanisms></stream:features>");
    srv(&f, "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>dj1ib2d1cw==</success>");
    CHECK_INT(f.err, EPODE_EAUTH);
    CHECK(!strstr(f.events, "AUTH"));
    epode__engine_free(f.e);
}

TEST(engine_sasl_data_not_base64_is_refused)
{
    fx f;
    CHECK_INT(setup(&f, EPODE_TLS_REQUIRED, "SCRAM-SHA-1"), 0);
    epode__engine_start(f.e, NULL);
    srv(&f, hdr(&f));
    srv(&f, F_TLS);
    srv(&f, PROCEED);
    epode__engine_tls_ready(f.e, &facts13);
    srv(&f, hdr(&f));
    srv(&f, "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>"
            "<mechanism>SCRAM-SHA-1</mechanism></mechanisms></stream:features>");
    srv(&f, "<challenge xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>not base64!</challenge>");
    CHECK_INT(f.ended, 1);
    CHECK_INT(f.err, EPODE_EAUTH);
    epode__engine_free(f.e);
}

TEST(engine_no_acceptable_mechanism)
{
    fx f;
    at_step(&f, 4, "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>"
                   "<mechanism>DIGEST-MD5</mechanism><mechanism>X-OAUTH2</mechanism></mechanisms>"
                   "</stream:features>");
    CHECK_INT(f.err, EPODE_ENOMECH);
    CHECK_INT(f.reason, EPODE_REASON_AUTH);
    epode__engine_free(f.e);
}

TEST(engine_plain_never_without_tls)
{
    fx f;
    CHECK_INT(setup(&f, EPODE_TLS_DISABLED, NULL), 0);
    epode__engine_start(f.e, NULL);
    srv(&f, hdr(&f));
    srv(&f, F_PLAIN);
    CHECK_INT(f.err, EPODE_ENOMECH);
    CHECK(!strstr(take(&f), "<auth"));
    epode__engine_free(f.e);
}

TEST(engine_stanza_before_login_is_refused)
{
    fx f;
    at_step(&f, 4, "<message><body>spam</body></message>");
    CHECK_INT(f.reason, EPODE_REASON_PROTOCOL);
    CHECK_STR(f.cond, "unsupported-stanza-type");
    CHECK_INT(f.stanzas, 0);
    epode__engine_free(f.e);
}

TEST(engine_bind_error_ends_login)
{
    fx f;
    at_step(&f, 8, "<iq type='error' id='bind_1'><error type='cancel'><not-allowed "
                   "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>");
    CHECK_INT(f.err, EPODE_EPROTOCOL);
    CHECK_STR(f.cond, "not-allowed");
    epode__engine_free(f.e);
}

TEST(engine_bind_result_without_jid_is_refused)
{
    fx f;
    at_step(&f, 8, "<iq type='result' id='bind_1'/>");
    CHECK_INT(f.ended, 1);
    CHECK_INT(f.reason, EPODE_REASON_PROTOCOL);
    CHECK(!epode__engine_is_ready(f.e));
    epode__engine_free(f.e);
}

TEST(engine_optional_session_is_skipped)
{
    fx f;
    at_step(&f, 7, F_BIND);
    take(&f);
    srv(&f, BIND_OK);
    CHECK(epode__engine_is_ready(f.e));
    CHECK(!strstr(take(&f), "session"));
    epode__engine_free(f.e);
}

TEST(engine_old_stream_version_is_refused)
{
    fx f;
    CHECK_INT(setup(&f, EPODE_TLS_REQUIRED, NULL), 0);
    epode__engine_start(f.e, NULL);
    srv(&f, "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' id='x'>");
    CHECK_STR(f.cond, "unsupported-version");
    epode__engine_free(f.e);
}

TEST(engine_close_handshake)
{
    fx f;
    CHECK_INT(setup(&f, EPODE_TLS_REQUIRED, NULL), 0);
    CHECK(login(&f));
    CHECK_INT(epode__engine_close(f.e), 0);
    CHECK_STR(take(&f), "</stream:stream>");
    CHECK_INT(f.ended, 0);
    srv(&f, "</stream:stream>");
    CHECK_INT(f.ended, 1);
    CHECK_INT(f.err, EPODE_ECLOSED);
    CHECK_INT(f.reason, EPODE_REASON_CLOSED);
    CHECK_STR(take(&f), "");
    epode__engine_free(f.e);
}

TEST(engine_server_closes_first)
{
    fx f;
    CHECK_INT(setup(&f, EPODE_TLS_REQUIRED, NULL), 0);
    CHECK(login(&f));
    srv(&f, "</stream:stream>");
    CHECK_INT(f.ended, 1);
    CHECK_STR(take(&f), "</stream:stream>");
    epode__engine_free(f.e);
}

TEST(engine_eof_without_close)
{
    fx f;
    CHECK_INT(setup(&f, EPODE_TLS_REQUIRED, NULL), 0);
    CHECK(login(&f));
    epode__engine_eof(f.e);
    CHECK_INT(f.ended, 1);
    CHECK_INT(f.err, EPODE_EEOF);
    CHECK_INT(f.reason, EPODE_REASON_NETWORK);
    epode__engine_free(f.e);
}

TEST(engine_log_redacts_credentials)
{
    fx f;
    CHECK_INT(setup(&f, EPODE_TLS_REQUIRED, NULL), 0);
    CHECK(login(&f));
    CHECK(strstr(f.log, "OUT <auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>[redacted]</auth>"));
    CHECK(!strstr(f.log, "AGp1bGlldAByMG1lbyE="));
    CHECK(strstr(f.log, "IN  <iq type='result' id='bind_1'>"));
    epode__engine_free(f.e);
}

TEST(engine_direct_tls_sends_from_in_first_header)
{
    fx f;
    CHECK_INT(setup(&f, EPODE_TLS_DIRECT, NULL), 0);
    CHECK_INT(epode__engine_start(f.e, &facts13), 0);
    CHECK(strstr(take(&f), "from='juliet@example.com'"));
    srv(&f, hdr(&f));
    srv(&f, F_PLAIN);
    CHECK(strstr(take(&f), "mechanism='PLAIN'"));
    epode__engine_free(f.e);
}

/* ---- stream management --------------------------------------------------- */

#define F_BIND_SM "<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/><sm xmlns='urn:xmpp:sm:3'/></stream:features>"

static epode__sm *g_owner_sm; /* set: the engine uses this owner state */
static const epode_mem_t *g_mem; /* set: login_sm's engine allocates with it */

/* The login up to bind with SM offered, on allocator `mem` with owner
 * state `sm_state` (NULLs: the defaults), logging into f->log if `log`. */
static int login_sm_with(fx *f, int sm_on, const epode_mem_t *mem, epode__sm *sm_state, int log)
{
    memset(f, 0, sizeof *f);
    if (epode_global_init() < 0)
        return 0;
    epode__engine_config cfg = {.domain = "example.com", .localpart = "juliet", .password = "r0meo!",
                                .tls_mode = EPODE_TLS_REQUIRED, .sm = sm_on,
                                .sm_state = sm_state};
    epode__engine_cbs cbs = {ev_cb, stanza_cb, ended_cb, log ? log_cb : NULL, sm_cb, NULL};
    if (epode__engine_new(mem, &cfg, &cbs, f, &f->e) < 0)
        return 0;
    epode__engine_start(f->e, &facts13);
    srv(f, hdr(f));
    srv(f, F_PLAIN);
    srv(f, SUCCESS);
    srv(f, hdr(f));
    srv(f, F_BIND_SM);
    take(f);
    srv(f, BIND_OK);
    return epode__engine_is_ready(f->e);
}

static int login_sm(fx *f, int sm_on)
{
    return login_sm_with(f, sm_on, g_mem, g_owner_sm, 0);
}

static void send_msg(fx *f, const char *id)
{
    epode_stanza_t *m;
    epode_stanza_new_message(NULL, "chat", "romeo@example.net", "x", &m);
    epode_stanza_set_id(m, id);
    epode__engine_send(f->e, m);
    epode_stanza_unref(m);
}

TEST(sm_enabled_after_bind_only_when_offered_and_asked)
{
    fx f;
    CHECK(login_sm(&f, 1));
    CHECK_STR(take(&f), "<enable xmlns='urn:xmpp:sm:3' resume='true'/>");
    srv(&f, "<enabled xmlns='urn:xmpp:sm:3' id='s1'/>");
    CHECK(epode__engine_sm_enabled(f.e));
    epode__engine_free(f.e);
    CHECK(login_sm(&f, 0));
    CHECK_STR(take(&f), "");
    epode__engine_free(f.e);
}

static int count_in(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p++)
        n++;
    return n;
}

TEST(sm_stanzas_held_for_enabled_are_logged_once)
{
    /* A stanza sent between <enable/> and <enabled/> waits in the queue
     * and goes out after <enabled/>: the XML log showed it twice (when
     * queued and when sent), which misleads anyone hunting duplicates
     * (found by the issue-15 user test). */
    fx f;
    CHECK(login_sm_with(&f, 1, g_mem, g_owner_sm, 1));
    send_msg(&f, "held1");
    CHECK(strstr(take(&f), "held1") == NULL); /* not on the wire yet */
    srv(&f, "<enabled xmlns='urn:xmpp:sm:3'/>");
    CHECK(strstr(take(&f), "held1") != NULL);
    send_msg(&f, "after1");
    CHECK_INT(count_in(f.log, "id=\"held1\""), 1);
    CHECK_INT(count_in(f.log, "id=\"after1\""), 1);
    epode__engine_free(f.e);
}

TEST(sm_acks_report_each_stanza_in_order)
{
    fx f;
    CHECK(login_sm(&f, 1));
    srv(&f, "<enabled xmlns='urn:xmpp:sm:3'/>");
    send_msg(&f, "m1");
    send_msg(&f, "m2");
    send_msg(&f, "m3");
    CHECK_INT((long long)epode__engine_sm_pending(f.e), 3);
    srv(&f, "<a xmlns='urn:xmpp:sm:3' h='2'/>");
    CHECK(strstr(f.sm_log, "ack:m1:") && strstr(f.sm_log, "ack:m2:"));
    CHECK(strstr(f.sm_log, "ack:m1:") < strstr(f.sm_log, "ack:m2:"));
    CHECK(!strstr(f.sm_log, "m3"));
    CHECK_INT((long long)epode__engine_sm_pending(f.e), 1);
    /* an old h again acknowledges nothing new */
    srv(&f, "<a xmlns='urn:xmpp:sm:3' h='2'/>");
    CHECK_INT((long long)epode__engine_sm_pending(f.e), 1);
    /* the stream ends: m3 comes back, with its bytes */
    epode__engine_eof(f.e);
    CHECK(strstr(f.sm_log, "back:m3:"));
    epode__engine_free(f.e);
}

TEST(sm_answers_r_with_handled_count)
{
    fx f;
    CHECK(login_sm(&f, 1));
    take(&f);
    srv(&f, "<message from='a@b/c'><body>before enabled: not counted</body></message>");
    srv(&f, "<enabled xmlns='urn:xmpp:sm:3'/>");
    srv(&f, "<message from='a@b/c'><body>1</body></message><presence from='a@b/c'/>"
            "<iq type='result' id='zz' from='example.com'/>");
    srv(&f, "<r xmlns='urn:xmpp:sm:3'/>");
    CHECK_STR(take(&f), "<a xmlns='urn:xmpp:sm:3' h='3'/>");
    epode__engine_free(f.e);
}

static int reallocs_fail;

static void *g_malloc(size_t n, void *u)
{
    (void)u;
    return malloc(n);
}

static void *g_realloc(void *p, size_t n, void *u)
{
    (void)u;
    return reallocs_fail ? NULL : realloc(p, n);
}

static void g_free(void *p, void *u)
{
    (void)u;
    free(p);
}

/* The output waits (a slow reader) and has no room for the <a/> the
 * server asks for: the stream ends with ENOMEM. It used to go on with
 * the answer lost, and the server waiting for it forever. */
TEST(sm_an_answer_that_finds_no_room_ends_the_stream)
{
    static const epode_mem_t mem = {g_malloc, g_realloc, g_free, NULL};
    fx f;
    g_mem = &mem;
    int ok = login_sm(&f, 1);
    g_mem = NULL;
    CHECK(ok);
    srv(&f, "<enabled xmlns='urn:xmpp:sm:3'/>");
    take(&f);
    reallocs_fail = 1; /* the output buffer cannot grow any more */
    for (int i = 0; i < 10000 && !f.ended; i++)
        srv(&f, "<r xmlns='urn:xmpp:sm:3'/>");
    reallocs_fail = 0;
    CHECK_INT(f.ended, 1);
    CHECK_INT(f.err, EPODE_ENOMEM);
    /* what was written before is whole: <a/>s only, the last one complete */
    const char *o = take(&f);
    CHECK(strncmp(o, "<a xmlns='urn:xmpp:sm:3' h='0'/>", 32) == 0);
    CHECK(strlen(o) % 32 == 0);
    epode__engine_free(f.e);
}

TEST(sm_requests_ack_every_five_stanzas)
{
    fx f;
    CHECK(login_sm(&f, 1));
    srv(&f, "<enabled xmlns='urn:xmpp:sm:3'/>");
    take(&f);
    for (int i = 0; i < 5; i++)
        send_msg(&f, "x");
    CHECK(strstr(take(&f), "</message><r xmlns='urn:xmpp:sm:3'/>"));
    epode__engine_free(f.e);
}

TEST(sm_h_larger_than_sent_is_a_stream_error)
{
    fx f;
    CHECK(login_sm(&f, 1));
    srv(&f, "<enabled xmlns='urn:xmpp:sm:3'/>");
    send_msg(&f, "m1");
    take(&f);
    srv(&f, "<a xmlns='urn:xmpp:sm:3' h='5'/>");
    CHECK_INT(f.ended, 1);
    CHECK_INT(f.reason, EPODE_REASON_PROTOCOL);
    char *o = take(&f);
    CHECK(strstr(o, "<handled-count-too-high xmlns='urn:xmpp:sm:3' h='5' send-count='1'/>"));
    CHECK(strstr(o, "</stream:stream>"));
    CHECK(strstr(f.sm_log, "back:m1:")); /* not confirmed: handed back */
    epode__engine_free(f.e);
}

TEST(sm_counters_wrap_at_2_32)
{
    fx f;
    CHECK(login_sm(&f, 1));
    srv(&f, "<enabled xmlns='urn:xmpp:sm:3'/>");
    epode__engine_sm_set_counters(f.e, 0xFFFFFFFEu, 0xFFFFFFFFu);
    send_msg(&f, "a");
    send_msg(&f, "b");
    send_msg(&f, "c");
    take(&f);
    srv(&f, "<a xmlns='urn:xmpp:sm:3' h='1'/>"); /* 0xFFFFFFFE + 3 wraps to 1 */
    CHECK_INT(f.ended, 0);
    CHECK_INT((long long)epode__engine_sm_pending(f.e), 0);
    CHECK(strstr(f.sm_log, "ack:c:"));
    srv(&f, "<message from='a@b/c'/>");
    srv(&f, "<r xmlns='urn:xmpp:sm:3'/>");
    CHECK_STR(take(&f), "<a xmlns='urn:xmpp:sm:3' h='0'/>");
    epode__engine_free(f.e);
}

TEST(sm_bad_h_and_unrequested_sm_are_refused)
{
    fx f;
    CHECK(login_sm(&f, 1));
    srv(&f, "<enabled xmlns='urn:xmpp:sm:3'/>");
    srv(&f, "<a xmlns='urn:xmpp:sm:3' h='-1'/>");
    CHECK_INT(f.reason, EPODE_REASON_PROTOCOL);
    epode__engine_free(f.e);
    CHECK(login_sm(&f, 0));
    srv(&f, "<a xmlns='urn:xmpp:sm:3' h='0'/>");
    CHECK_INT(f.reason, EPODE_REASON_PROTOCOL);
    epode__engine_free(f.e);
}

TEST(sm_close_asks_for_a_last_ack)
{
    fx f;
    CHECK(login_sm(&f, 1));
    srv(&f, "<enabled xmlns='urn:xmpp:sm:3'/>");
    send_msg(&f, "m1");
    take(&f);
    epode__engine_close(f.e);
    CHECK_STR(take(&f), "<r xmlns='urn:xmpp:sm:3'/></stream:stream>");
    srv(&f, "<a xmlns='urn:xmpp:sm:3' h='1'/></stream:stream>");
    CHECK(strstr(f.sm_log, "ack:m1:"));
    CHECK(!strstr(f.sm_log, "back:"));
    CHECK_INT(f.reason, EPODE_REASON_CLOSED);
    epode__engine_free(f.e);
}

/* Logs in again with the owner's state, up to the point where the client
 * chooses between resume and bind. */
static int g_stuck_check, g_resend;
static uint32_t g_stuck_h;

static int relogin(fx *f)
{
    char keep[2048];
    snprintf(keep, sizeof keep, "%s", f->sm_log);
    memset(f, 0, sizeof *f);
    snprintf(f->sm_log, sizeof f->sm_log, "%s", keep);
    epode__engine_config cfg = {.domain = "example.com", .localpart = "juliet", .password = "r0meo!",
                                .tls_mode = EPODE_TLS_REQUIRED, .sm = 1, .sm_state = g_owner_sm,
                                .sm_resend = g_resend, .sm_stuck_check = g_stuck_check,
                                .sm_stuck_h = g_stuck_h};
    epode__engine_cbs cbs = {ev_cb, stanza_cb, ended_cb, NULL, sm_cb, NULL};
    if (epode__engine_new(NULL, &cfg, &cbs, f, &f->e) < 0)
        return 0;
    epode__engine_start(f->e, &facts13);
    srv(f, hdr(f));
    srv(f, F_PLAIN);
    srv(f, SUCCESS);
    srv(f, hdr(f));
    take(f);
    srv(f, F_BIND_SM);
    return 1;
}

/* A session with m1..m3 sent, m1 acknowledged, then cut. */
static int cut_session(fx *f, epode__sm *owner)
{
    epode__sm_init(owner, NULL);
    g_owner_sm = owner;
    if (!login_sm(f, 1))
        return 0;
    srv(f, "<enabled xmlns='urn:xmpp:sm:3' id='sess-1' resume='true'/>");
    srv(f, "<message from='a@b/c'/>"); /* we handled 1 */
    send_msg(f, "m1");
    send_msg(f, "m2");
    send_msg(f, "m3");
    srv(f, "<a xmlns='urn:xmpp:sm:3' h='1'/>");
    take(f);
    epode__engine_eof(f->e);
    int ok = f->ended == 1 && epode__sm_pending(owner) == 2 && !strstr(f->sm_log, "back:");
    epode__engine_free(f->e);
    return ok;
}

TEST(sm_resume_resends_what_the_server_missed)
{
    fx f;
    epode__sm owner;
    CHECK(cut_session(&f, &owner));
    CHECK(relogin(&f));
    CHECK_STR(take(&f), "<resume xmlns='urn:xmpp:sm:3' h='1' previd='sess-1'/>");
    srv(&f, "<resumed xmlns='urn:xmpp:sm:3' h='2' previd='sess-1'/>");
    CHECK(strstr(f.sm_log, "ack:m2:"));
    char *o = take(&f);
    /* m3 again, the same bytes, then a request for its ack */
    CHECK_STR(o, "<message type=\"chat\" to=\"romeo@example.net\" id=\"m3\"><body>x</body></message>"
                 "<r xmlns='urn:xmpp:sm:3'/>");
    CHECK(strstr(f.events, "RESUMED"));
    CHECK(!strstr(f.events, "READY"));
    CHECK(epode__engine_is_ready(f.e));
    CHECK_STR(epode__engine_bound_jid(f.e), "juliet@example.com/balcony");
    srv(&f, "<a xmlns='urn:xmpp:sm:3' h='3'/>");
    CHECK(strstr(f.sm_log, "ack:m3:"));
    epode__engine_free(f.e);
    epode__sm_free(&owner);
    g_owner_sm = NULL;
}

/* The last resumed stream confirmed none of what it resent (conn.c arms
 * the check): a <resumed/> with the same h means the session took none of
 * it — Prosody 0.12's stuck parser — so nothing is resent into it; the
 * queue waits for a fresh session. A larger h is a working session. */
TEST(sm_resumed_with_the_same_h_again_is_left_for_a_fresh_session)
{
    fx f;
    epode__sm owner;
    CHECK(cut_session(&f, &owner));
    g_stuck_check = 1;
    g_stuck_h = 1;
    g_resend = 1;
    CHECK(relogin(&f));
    CHECK_STR(take(&f), "<resume xmlns='urn:xmpp:sm:3' h='1' previd='sess-1'/>");
    srv(&f, "<resumed xmlns='urn:xmpp:sm:3' h='1' previd='sess-1'/>");
    CHECK_STR(take(&f), ""); /* nothing resent into it */
    CHECK(epode__engine_has_ended(f.e));
    CHECK(!strstr(f.sm_log, "back:")); /* kept for the fresh session */
    CHECK_INT(epode__sm_pending(&owner), 2);
    CHECK(!owner.resumable);
    epode__engine_free(f.e);
    /* the next attempt binds afresh and sends m2 and m3 there */
    g_stuck_check = 0;
    CHECK(relogin(&f));
    take(&f);
    srv(&f, BIND_OK);
    CHECK_STR(take(&f), "<enable xmlns='urn:xmpp:sm:3' resume='true'/>");
    srv(&f, "<enabled xmlns='urn:xmpp:sm:3' id='sess-2' resume='true'/>");
    char *o = take(&f);
    CHECK(strstr(o, "id=\"m2\"") && strstr(o, "id=\"m3\""));
    g_resend = 0;
    epode__engine_free(f.e);
    epode__sm_free(&owner);
    g_owner_sm = NULL;
}

TEST(sm_resumed_with_a_larger_h_resends_as_usual_despite_the_check)
{
    fx f;
    epode__sm owner;
    CHECK(cut_session(&f, &owner));
    g_stuck_check = 1;
    g_stuck_h = 1;
    CHECK(relogin(&f));
    g_stuck_check = 0;
    take(&f);
    srv(&f, "<resumed xmlns='urn:xmpp:sm:3' h='2' previd='sess-1'/>");
    CHECK(!epode__engine_has_ended(f.e));
    CHECK(strstr(take(&f), "id=\"m3\""));
    epode__engine_free(f.e);
    epode__sm_free(&owner);
    g_owner_sm = NULL;
}

TEST(sm_resume_refused_hands_back_and_binds_anew)
{
    fx f;
    epode__sm owner;
    CHECK(cut_session(&f, &owner));
    CHECK(relogin(&f));
    take(&f);
    srv(&f, "<failed xmlns='urn:xmpp:sm:3' h='2'><item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></failed>");
    CHECK(strstr(f.sm_log, "ack:m2:")); /* h on <failed/> still confirms m2 */
    CHECK(strstr(f.sm_log, "back:m3:"));
    CHECK(strstr(take(&f), "<iq type=\"set\" id=\"bind_1\">"));
    srv(&f, BIND_OK);
    CHECK(strstr(f.events, "READY"));
    CHECK_INT((long long)epode__sm_pending(&owner), 0);
    epode__engine_free(f.e);
    epode__sm_free(&owner);
    g_owner_sm = NULL;
}

TEST(sm_resumed_with_impossible_h_is_a_stream_error)
{
    fx f;
    epode__sm owner;
    CHECK(cut_session(&f, &owner));
    CHECK(relogin(&f));
    take(&f);
    srv(&f, "<resumed xmlns='urn:xmpp:sm:3' h='9' previd='sess-1'/>");
    CHECK_INT(f.reason, EPODE_REASON_PROTOCOL);
    CHECK(strstr(take(&f), "handled-count-too-high"));
    CHECK(strstr(f.sm_log, "back:m2:") && strstr(f.sm_log, "back:m3:"));
    epode__engine_free(f.e);
    epode__sm_free(&owner);
    g_owner_sm = NULL;
}

TEST(sm_not_resumable_without_resume_flag)
{
    fx f;
    epode__sm owner;
    epode__sm_init(&owner, NULL);
    g_owner_sm = &owner;
    CHECK(login_sm(&f, 1));
    srv(&f, "<enabled xmlns='urn:xmpp:sm:3' id='x'/>"); /* no resume='true' */
    send_msg(&f, "m1");
    epode__engine_eof(f.e);
    CHECK(strstr(f.sm_log, "back:m1:")); /* nothing to resume: handed back at once */
    epode__engine_free(f.e);
    epode__sm_free(&owner);
    g_owner_sm = NULL;
}

TEST(sm_cut_during_starttls_of_the_reconnect_keeps_the_session)
{
    fx f;
    epode__sm owner;
    CHECK(cut_session(&f, &owner));
    /* the next connection is cut between <proceed/> and TLS */
    memset(&f, 0, sizeof f);
    epode__engine_config cfg = {.domain = "example.com", .localpart = "juliet", .password = "r0meo!",
                                .tls_mode = EPODE_TLS_REQUIRED, .sm = 1, .sm_state = &owner};
    epode__engine_cbs cbs = {ev_cb, stanza_cb, ended_cb, NULL, sm_cb, NULL};
    CHECK_INT(epode__engine_new(NULL, &cfg, &cbs, &f, &f.e), 0);
    epode__engine_start(f.e, NULL);
    srv(&f, hdr(&f));
    srv(&f, F_TLS);
    srv(&f, PROCEED);
    CHECK_STR(f.events, "STARTTLS ");
    epode__engine_eof(f.e);
    CHECK_INT(f.ended, 1);
    CHECK(!strstr(f.sm_log, "back:")); /* nothing handed back: still resumable */
    CHECK_INT((long long)epode__sm_pending(&owner), 2);
    epode__engine_free(f.e);
    /* and the one after that resumes */
    CHECK(relogin(&f));
    CHECK_STR(take(&f), "<resume xmlns='urn:xmpp:sm:3' h='1' previd='sess-1'/>");
    srv(&f, "<resumed xmlns='urn:xmpp:sm:3' h='3' previd='sess-1'/>");
    CHECK(strstr(f.sm_log, "ack:m2:") && strstr(f.sm_log, "ack:m3:"));
    epode__engine_free(f.e);
    epode__sm_free(&owner);
    g_owner_sm = NULL;
}

TEST(sm_refused_resume_can_resend_instead_of_handing_back)
{
    fx f;
    epode__sm owner;
    CHECK(cut_session(&f, &owner));
    char keep[2048];
    snprintf(keep, sizeof keep, "%s", f.sm_log);
    memset(&f, 0, sizeof f);
    snprintf(f.sm_log, sizeof f.sm_log, "%s", keep);
    epode__engine_config cfg = {.domain = "example.com", .localpart = "juliet", .password = "r0meo!",
                                .tls_mode = EPODE_TLS_REQUIRED, .sm = 1, .sm_state = &owner,
                                .sm_resend = 1};
    epode__engine_cbs cbs = {ev_cb, stanza_cb, ended_cb, NULL, sm_cb, NULL};
    CHECK_INT(epode__engine_new(NULL, &cfg, &cbs, &f, &f.e), 0);
    epode__engine_start(f.e, &facts13);
    srv(&f, hdr(&f));
    srv(&f, F_PLAIN);
    srv(&f, SUCCESS);
    srv(&f, hdr(&f));
    srv(&f, F_BIND_SM);
    take(&f);
    srv(&f, "<failed xmlns='urn:xmpp:sm:3'/>");
    CHECK(!strstr(f.sm_log, "back:")); /* kept, not handed back */
    take(&f);
    srv(&f, BIND_OK);
    /* enable first; m2 and m3 go again once the server has answered it,
     * counted on the new session (sent before <enabled/>, a cut would
     * leave them in no session at all) */
    CHECK_STR(take(&f), "<enable xmlns='urn:xmpp:sm:3' resume='true'/>");
    srv(&f, "<enabled xmlns='urn:xmpp:sm:3' id='sess-2' resume='true'/>");
    CHECK_STR(take(&f), "<message type=\"chat\" to=\"romeo@example.net\" id=\"m2\"><body>x</body></message>"
                        "<message type=\"chat\" to=\"romeo@example.net\" id=\"m3\"><body>x</body></message>"
                        "<r xmlns='urn:xmpp:sm:3'/>");
    srv(&f, "<a xmlns='urn:xmpp:sm:3' h='2'/>");
    CHECK(strstr(f.sm_log, "ack:m2:") && strstr(f.sm_log, "ack:m3:"));
    epode__engine_free(f.e);
    epode__sm_free(&owner);
    g_owner_sm = NULL;
}

/* ---- SASL against hostile servers: the GS2 flag ----------------------------------- */

static epode__tls_facts facts_with(int version, int unique, int exporter)
{
    epode__tls_facts t = {.version = version, .key_bits = 256};
    if (unique) {
        memset(t.tls_unique, 0x5a, 12);
        t.tls_unique_len = 12;
    }
    if (exporter) {
        memset(t.tls_exporter, 0xa5, 32);
        t.tls_exporter_len = 32;
    }
    return t;
}

/* Runs a login up to <auth/> over direct TLS with these facts (NULL: no
 * TLS at all), the server offering `mechs` (<mechanism/> elements) and
 * the features in `extra`; the GS2 header of the client-first message
 * ("y,," …), or a word saying what went wrong (static). */
static const char *gs2_header(fx *f, const epode__tls_facts *tls, const char *mechs,
                              const char *extra)
{
    static char gs2[128];
    if (setup(f, tls ? EPODE_TLS_DIRECT : EPODE_TLS_DISABLED, NULL) < 0 ||
        epode__engine_start(f->e, tls) < 0)
        return "(setup)";
    take(f);
    char features[2048];
    snprintf(features, sizeof features, "%s<stream:features><mechanisms xmlns='"
             "urn:ietf:params:xml:ns:xmpp-sasl'>%s</mechanisms>%s</stream:features>",
             hdr(f), mechs, extra);
    srv(f, features);
    const char *o = take(f);
    const char *b = strstr(o, "<auth ");
    b = b ? strchr(b, '>') : NULL;
    const char *e = b ? strstr(b, "</auth>") : NULL;
    if (!e)
        return "(no auth)";
    unsigned char raw[1024];
    size_t n;
    if ((size_t)(e - b - 1) > 1300 ||
        epode__base64_decode(b + 1, (size_t)(e - b - 1), raw, &n) < 0)
        return "(not base64)";
    /* gs2-header = gs2-cbind-flag "," [ authzid ] "," */
    const unsigned char *c1 = memchr(raw, ',', n);
    const unsigned char *c2 = c1 ? memchr(c1 + 1, ',', n - (size_t)(c1 + 1 - raw)) : NULL;
    if (!c2 || (size_t)(c2 + 1 - raw) >= sizeof gs2)
        return "(no gs2 header)";
    memcpy(gs2, raw, (size_t)(c2 + 1 - raw));
    gs2[c2 + 1 - raw] = '\0';
    return gs2;
}

#define M_SCRAM "<mechanism>SCRAM-SHA-1</mechanism><mechanism>SCRAM-SHA-256</mechanism>"
#define M_PLUS "<mechanism>SCRAM-SHA-1-PLUS</mechanism><mechanism>SCRAM-SHA-256-PLUS</mechanism>"
#define CB_LIST(types) "<sasl-channel-binding xmlns='urn:xmpp:sasl-cb:0'>" types "</sasl-channel-binding>"

TEST(engine_gs2_y_on_tls13_without_plus_or_list)
{
    /* A man in the middle strips -PLUS: the client could bind
     * (tls-exporter), so it says "y" and the real server, which does
     * channel binding, refuses the downgrade (RFC 5802 section 6). */
    fx f;
    epode__tls_facts t = facts_with(13, 0, 1);
    CHECK_STR(gs2_header(&f, &t, M_SCRAM, ""), "y,,");
    epode__engine_free(f.e);
}

TEST(engine_gs2_y_with_empty_cb_list)
{
    fx f;
    epode__tls_facts t = facts_with(13, 0, 1);
    CHECK_STR(gs2_header(&f, &t, M_SCRAM, "<sasl-channel-binding xmlns='urn:xmpp:sasl-cb:0'/>"), "y,,");
    epode__engine_free(f.e);
    t = facts_with(12, 1, 1);
    CHECK_STR(gs2_header(&f, &t, M_SCRAM, CB_LIST("")), "y,,");
    epode__engine_free(f.e);
}

TEST(engine_gs2_y_with_unknown_only_cb_list)
{
    fx f;
    epode__tls_facts t = facts_with(13, 0, 1);
    CHECK_STR(gs2_header(&f, &t, M_SCRAM,
                         CB_LIST("<channel-binding type='tls-server-end-point'/>"
                                 "<channel-binding type='x-made-up'/>")), "y,,");
    epode__engine_free(f.e);
    t = facts_with(12, 1, 0);
    CHECK_STR(gs2_header(&f, &t, M_SCRAM, CB_LIST("<channel-binding type='tls-exporter'/>")),
              "y,,");
    epode__engine_free(f.e);
}

TEST(engine_gs2_y_on_tls12_without_plus)
{
    fx f;
    epode__tls_facts t = facts_with(12, 1, 0);
    CHECK_STR(gs2_header(&f, &t, M_SCRAM, ""), "y,,");
    epode__engine_free(f.e);
    /* TLS 1.2 without tls-unique but with tls-exporter (extended master
     * secret): it could still bind. */
    t = facts_with(12, 0, 1);
    CHECK_STR(gs2_header(&f, &t, M_SCRAM, ""), "y,,");
    epode__engine_free(f.e);
}

TEST(engine_gs2_n_without_tls_or_binding_data)
{
    fx f;
    CHECK_STR(gs2_header(&f, NULL, M_SCRAM, ""), "n,,");
    epode__engine_free(f.e);
    CHECK_STR(gs2_header(&f, NULL, M_SCRAM M_PLUS, CB_LIST("<channel-binding type='tls-exporter'/>")),
              "n,,");
    epode__engine_free(f.e);
    /* TLS, but no binding data to be had. */
    epode__tls_facts t = facts_with(13, 0, 0);
    CHECK_STR(gs2_header(&f, &t, M_SCRAM, ""), "n,,");
    epode__engine_free(f.e);
}

TEST(engine_gs2_p_with_a_type_both_support)
{
    fx f;
    epode__tls_facts t = facts_with(13, 0, 1);
    CHECK_STR(gs2_header(&f, &t, M_SCRAM M_PLUS,
                         CB_LIST("<channel-binding type='tls-server-end-point'/>"
                                 "<channel-binding type='tls-exporter'/>")), "p=tls-exporter,,");
    CHECK_STR(epode__engine_mechanism(f.e), "SCRAM-SHA-256-PLUS");
    epode__engine_free(f.e);
    t = facts_with(12, 1, 1);
    CHECK_STR(gs2_header(&f, &t, M_SCRAM M_PLUS, ""), "p=tls-unique,,");
    epode__engine_free(f.e);
}

TEST(engine_gs2_n_when_plus_offered_without_a_common_type)
{
    /* ejabberd offers -PLUS on TLS 1.3 expecting tls-unique: plain SCRAM
     * with "n" ("y" would be a downgrade to a server that offered -PLUS). */
    fx f;
    epode__tls_facts t = facts_with(13, 0, 1);
    CHECK_STR(gs2_header(&f, &t, M_SCRAM M_PLUS, ""), "n,,");
    CHECK_STR(epode__engine_mechanism(f.e), "SCRAM-SHA-256");
    epode__engine_free(f.e);
    CHECK_STR(gs2_header(&f, &t, M_SCRAM M_PLUS, CB_LIST("")), "n,,");
    epode__engine_free(f.e);
    CHECK_STR(gs2_header(&f, &t, M_SCRAM M_PLUS, CB_LIST("<channel-binding type='tls-unique'/>")),
              "n,,");
    epode__engine_free(f.e);
}

/* ---- credentials in memory ----------------------------------------------------------- */

/* An allocator that knows every live block (a header before each) and
 * scans each block for the needles when it is freed or moved away from by
 * realloc, and on demand for the live ones. */
typedef struct scan_head {
    struct scan_head *prev, *next;
    size_t size;
    size_t pad;
} scan_head;

typedef struct scan_mem {
    epode_mem_t mem;
    scan_head live;
    const char *needles[4];
    int freed_hits, live_hits;
} scan_mem;

static int has_needle(const scan_mem *m, const scan_head *h)
{
    for (int i = 0; i < 4 && m->needles[i]; i++)
        if (memmem(h + 1, h->size, m->needles[i], strlen(m->needles[i])))
            return 1;
    return 0;
}

static void *scan_malloc(size_t n, void *u)
{
    scan_mem *m = u;
    scan_head *h = malloc(sizeof *h + n);
    if (!h)
        return NULL;
    h->size = n;
    h->prev = &m->live;
    h->next = m->live.next;
    m->live.next->prev = h;
    m->live.next = h;
    return h + 1;
}

static void scan_free(void *p, void *u)
{
    scan_mem *m = u;
    if (!p)
        return;
    scan_head *h = (scan_head *)p - 1;
    m->freed_hits += has_needle(m, h);
    h->prev->next = h->next;
    h->next->prev = h->prev;
    free(h);
}

static void *scan_realloc(void *p, size_t n, void *u)
{
    if (!p)
        return scan_malloc(n, u);
    size_t old = ((scan_head *)p - 1)->size;
    void *q = scan_malloc(n, u);
    if (!q)
        return NULL;
    memcpy(q, p, old < n ? old : n);
    scan_free(p, u); /* the old block, as realloc would leave it */
    return q;
}

static void scan_mem_init(scan_mem *m)
{
    memset(m, 0, sizeof *m);
    m->mem = (epode_mem_t){scan_malloc, scan_realloc, scan_free, m};
    m->live.next = m->live.prev = &m->live;
}

static int scan_live(scan_mem *m)
{
    int hits = 0;
    for (scan_head *h = m->live.next; h != &m->live; h = h->next)
        hits += has_needle(m, h);
    return hits;
}

/* Live blocks holding this one needle. */
static int scan_live_for(scan_mem *m, const char *needle)
{
    const char *all[4];
    memcpy(all, m->needles, sizeof all);
    memset(m->needles, 0, sizeof m->needles);
    m->needles[0] = needle;
    int hits = scan_live(m);
    memcpy(m->needles, all, sizeof all);
    return hits;
}

/* An engine on the scanning allocator, up to the server's features after
 * STARTTLS, for juliet with this password (NULL: "r0meo!"); needles: the
 * password and base64("\0juliet\0" password). */
static int plain_until_features_pw(fx *f, scan_mem *m, const char *password)
{
    static char pw64[600];
    char plain[400];
    if (!password)
        password = "r0meo!";
    int pl = snprintf(plain, sizeof plain, "%cjuliet%c%s", 0, 0, password);
    if (pl < 0 || (size_t)pl >= sizeof plain || epode__base64_encoded_len((size_t)pl) >= sizeof pw64)
        return 0;
    epode__base64_encode(pw64, plain, (size_t)pl);
    pw64[epode__base64_encoded_len((size_t)pl)] = '\0';
    scan_mem_init(m);
    m->needles[0] = strlen(password) >= 6 ? password : pw64; /* a short one is everywhere */
    m->needles[1] = pw64;
    memset(f, 0, sizeof *f);
    epode__engine_config cfg = {
        .domain = "example.com", .localpart = "juliet", .password = password,
        .resource = "balcony", .tls_mode = EPODE_TLS_REQUIRED,
    };
    epode__engine_cbs cbs = {ev_cb, stanza_cb, ended_cb, NULL, NULL, NULL};
    if (epode_global_init() < 0 || epode__engine_new(&m->mem, &cfg, &cbs, f, &f->e) < 0 ||
        epode__engine_start(f->e, NULL) < 0)
        return 0;
    take(f);
    srv(f, hdr(f));
    srv(f, F_TLS);
    take(f);
    srv(f, PROCEED);
    if (epode__engine_tls_ready(f->e, &facts13) < 0)
        return 0;
    take(f);
    return srv(f, hdr(f)) == 0;
}

static int plain_until_features(fx *f, scan_mem *m)
{
    return plain_until_features_pw(f, m, NULL);
}

/* The rest of the login after <success/>, then the checks of the end. */
static int plain_finish_and_free(fx *f, scan_mem *m)
{
    take(f);
    srv(f, hdr(f));
    srv(f, F_BIND);
    take(f);
    srv(f, BIND_OK);
    int ok = epode__engine_is_ready(f->e) && scan_live(m) == 0 && m->freed_hits == 0;
    epode__engine_free(f->e);
    return ok && m->freed_hits == 0 && m->live.next == &m->live; /* nothing leaked */
}

TEST(engine_plain_credentials_leave_no_copies)
{
    /* The owner writes the <auth/> out in two parts (a short write, then
     * the rest): each consume must leave no copy of the credential behind
     * the buffer's end. And once SASL has its own copy of the password,
     * the engine's is gone: no block of the engine's, live or freed,
     * holds either afterwards. */
    scan_mem m;
    fx f;
    CHECK(plain_until_features(&f, &m));
    CHECK_INT(srv(&f, F_PLAIN), 0);
    size_t n;
    const char *o = epode__engine_output(f.e, &n);
    CHECK_STR(m.needles[1], "AGp1bGlldAByMG1lbyE=");
    CHECK(memmem(o, n, m.needles[1], strlen(m.needles[1])) != NULL);
    epode__engine_consume(f.e, n - 3);
    CHECK_INT(scan_live_for(&m, m.needles[1]), 0);
    epode__engine_consume(f.e, 3);
    CHECK_INT(scan_live_for(&m, m.needles[1]), 0);
    /* The password: only SASL's copy until <success/>. */
    CHECK_INT(scan_live_for(&m, m.needles[0]), 1);
    CHECK_INT(srv(&f, SUCCESS), 0);
    CHECK(plain_finish_and_free(&f, &m));
}

TEST(engine_plain_credentials_not_left_by_growth)
{
    /* The server pipelines <success/> right behind the features: the
     * stream restart is written behind the unsent <auth/>, the output
     * buffer grows while it holds the credential, and the block it leaves
     * must not carry it. */
    scan_mem m;
    fx f;
    CHECK(plain_until_features(&f, &m));
    char both[512];
    snprintf(both, sizeof both, "%s%s", F_PLAIN, SUCCESS);
    CHECK_INT(srv(&f, both), 0);
    size_t n;
    const char *o = epode__engine_output(f.e, &n);
    CHECK(memmem(o, n, m.needles[1], strlen(m.needles[1])) != NULL);
    CHECK(memmem(o, n, "<stream:stream", 14) != NULL); /* the restart, behind it */
    CHECK_INT(m.freed_hits, 0);
    take(&f);
    CHECK_INT(scan_live_for(&m, m.needles[1]), 0);
    CHECK(plain_finish_and_free(&f, &m));
}

TEST(engine_plain_credentials_of_any_length_leave_no_copies)
{
    /* Passwords of every length up to 300, so that for some of them the
     * <auth/> ends right at the output buffer's capacity, wherever that
     * is: the block must not move while the credential is written into it. */
    for (size_t len = 1; len <= 300; len++) {
        char pw[301];
        unsigned x = (unsigned)len * 2654435761u;
        for (size_t i = 0; i < len; i++) {
            x = x * 1103515245u + 12345u;
            pw[i] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"[(x >> 16) % 62];
        }
        pw[len] = '\0';
        scan_mem m;
        fx f;
        CHECK(plain_until_features_pw(&f, &m, pw));
        CHECK_INT(srv(&f, F_PLAIN), 0);
        size_t n;
        const char *o = epode__engine_output(f.e, &n);
        CHECK(memmem(o, n, m.needles[1], strlen(m.needles[1])) != NULL);
        if (m.freed_hits)
            printf("# password of %zu characters\n", len);
        CHECK_INT(m.freed_hits, 0);
        take(&f);
        CHECK_INT(scan_live_for(&m, m.needles[1]), 0);
        CHECK_INT(srv(&f, SUCCESS), 0);
        CHECK(plain_finish_and_free(&f, &m));
    }
}

TEST(engine_registration_password_leaves_no_copies)
{
    /* XEP-0077 sends a new password as element text, through the same
     * output and stream-management queue as any stanza. Once written out
     * and acknowledged, no block of the engine's, live or freed, holds
     * it: not the output after a consume that moved the rest down, not
     * the queue after a partial ack copied the rest aside. */
    static const char pw[] = "n3w-S3cret-pw";
    static const char reg[] = "<iq type='set' id='reg1'><query xmlns='jabber:iq:register'>"
                              "<username>juliet</username><password>n3w-S3cret-pw</password>"
                              "</query></iq>";
    scan_mem m;
    scan_mem_init(&m);
    m.needles[0] = pw;
    epode__sm sm;
    epode__sm_init(&sm, &m.mem);
    fx f;
    CHECK(login_sm_with(&f, 1, &m.mem, &sm, 0));
    srv(&f, "<enabled xmlns='urn:xmpp:sm:3'/>");
    CHECK(epode__engine_is_ready(f.e));
    take(&f);
    send_msg(&f, "m1");
    epode_stanza_t *iq;
    CHECK_INT(epode_stanza_from_text(NULL, reg, sizeof reg - 1, &iq, NULL), 0);
    CHECK_INT(epode__engine_send(f.e, iq), 0);
    epode_stanza_unref(iq); /* the application's copy: not the engine's to wipe */
    for (int i = 0; i < 40; i++) /* behind it, enough to grow the output and the queue */
        send_msg(&f, "m2");
    size_t n;
    const char *o = epode__engine_output(f.e, &n);
    CHECK(memmem(o, n, pw, strlen(pw)) != NULL);
    epode__engine_consume(f.e, n - 7);
    epode__engine_consume(f.e, 7);
    CHECK_INT(m.freed_hits, 0);
    CHECK_INT(scan_live(&m), 1); /* the queue's copy, until the server has it */
    srv(&f, "<a xmlns='urn:xmpp:sm:3' h='1'/>"); /* m1: the rest is copied aside */
    CHECK_INT(m.freed_hits, 0);
    CHECK_INT(scan_live(&m), 1);
    srv(&f, "<a xmlns='urn:xmpp:sm:3' h='42'/>");
    CHECK_INT(m.freed_hits, 0);
    CHECK_INT(scan_live(&m), 0);
    epode__engine_free(f.e);
    epode__sm_free(&sm);
    CHECK_INT(m.freed_hits, 0);
    CHECK(m.live.next == &m.live); /* nothing leaked */
}

TEST(engine_scram_client_final_leaves_no_copies)
{
    /* The client-final message carries the proof: gone from the output
     * buffer's memory once written, also when the exchange then fails. */
    scan_mem m;
    scan_mem_init(&m);
    m.needles[0] = "r0meo!";
    fx f;
    memset(&f, 0, sizeof f);
    CHECK(epode_global_init() == 0);
    epode__engine_config cfg = {
        .domain = "example.com", .localpart = "juliet", .password = "r0meo!",
        .tls_mode = EPODE_TLS_DIRECT, .mechanisms = "SCRAM-SHA-1",
    };
    epode__engine_cbs cbs = {ev_cb, stanza_cb, ended_cb, NULL, NULL, NULL};
    CHECK_INT(epode__engine_new(&m.mem, &cfg, &cbs, &f, &f.e), 0);
    CHECK_INT(epode__engine_start(f.e, &facts13), 0);
    take(&f);
    srv(&f, hdr(&f));
    srv(&f, "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>"
            "<mechanism>SCRAM-SHA-1</mechanism></mechanisms></stream:features>");
    const char *o = take(&f);
    const char *b = strstr(o, "mechanism='SCRAM-SHA-1'>");
    CHECK(b != NULL);
    b += strlen("mechanism='SCRAM-SHA-1'>");
    unsigned char cf[256];
    size_t cf_len;
    CHECK_INT(epode__base64_decode(b, (size_t)(strstr(b, "</auth>") - b), cf, &cf_len), 0);
    const unsigned char *r = memmem(cf, cf_len, ",r=", 3);
    CHECK(r != NULL);
    char sf[300], sf64[420], xml[600];
    int sl = snprintf(sf, sizeof sf, "r=%.*sSrV,s=QSXCR+Q6sek8bf92,i=4096",
                      (int)(cf_len - (size_t)(r + 3 - cf)), (const char *)r + 3);
    epode__base64_encode(sf64, sf, (size_t)sl);
    sf64[epode__base64_encoded_len((size_t)sl)] = '\0';
    snprintf(xml, sizeof xml, "<challenge xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>%s</challenge>",
             sf64);
    srv(&f, xml);
    size_t n;
    o = epode__engine_output(f.e, &n);
    static char response[512]; /* the base64 client-final message */
    static const char open_tag[] = "<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>";
    const size_t ol = sizeof open_tag - 1;
    const char *rb = memmem(o, n, open_tag, ol);
    const char *re = rb ? memmem(rb, n - (size_t)(rb - o), "</response>", 11) : NULL;
    CHECK(re != NULL && (size_t)(re - rb) > ol + 40 && (size_t)(re - rb) - ol < sizeof response);
    memcpy(response, rb + ol, (size_t)(re - rb) - ol);
    response[(size_t)(re - rb) - ol] = '\0';
    m.needles[1] = response;
    epode__engine_consume(f.e, n - 3);
    epode__engine_consume(f.e, 3);
    CHECK_INT(scan_live(&m), 1); /* the password, which SASL still needs */
    /* An impostor's <success/>: refused, the stream ends. */
    srv(&f, "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>dj1ib2d1cw==</success>");
    CHECK_INT(f.err, EPODE_EAUTH);
    CHECK_INT(scan_live(&m), 0);
    CHECK_INT(m.freed_hits, 0);
    epode__engine_free(f.e);
    CHECK_INT(m.freed_hits, 0);
}

TEST_MAIN

/* ---- a hostile server's SCRAM iteration count, end to end (issue 12 item 2) ---- */

/* Logs in with SCRAM-SHA-1 over direct TLS and answers the client-first
 * message with iteration count `iter` (as text); returns the engine's
 * output after that challenge. */
static const char *scram_with_iterations(fx *f, const char *iter, unsigned floor)
{
    memset(f, 0, sizeof *f);
    if (epode_global_init() < 0)
        return NULL;
    epode__engine_config cfg = {
        .domain = "example.com", .localpart = "juliet", .password = "r0meo!",
        .tls_mode = EPODE_TLS_DIRECT, .mechanisms = "SCRAM-SHA-1", .scram_min_iterations = floor,
    };
    epode__engine_cbs cbs = {ev_cb, stanza_cb, ended_cb, NULL, NULL, NULL};
    if (epode__engine_new(NULL, &cfg, &cbs, f, &f->e) < 0 || epode__engine_start(f->e, &facts13) < 0)
        return NULL;
    take(f);
    srv(f, hdr(f));
    srv(f, "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>"
           "<mechanism>SCRAM-SHA-1</mechanism></mechanisms></stream:features>");
    const char *o = take(f);
    const char *b = strstr(o, "mechanism='SCRAM-SHA-1'>");
    if (!b)
        return NULL;
    b += strlen("mechanism='SCRAM-SHA-1'>");
    unsigned char cf[256];
    size_t cf_len;
    if (epode__base64_decode(b, (size_t)(strstr(b, "</auth>") - b), cf, &cf_len) < 0)
        return NULL;
    const unsigned char *r = memmem(cf, cf_len, ",r=", 3);
    if (!r)
        return NULL;
    char sf[300], sf64[420], xml[600];
    int sl = snprintf(sf, sizeof sf, "r=%.*sSrV,s=QSXCR+Q6sek8bf92,i=%s",
                      (int)(cf_len - (size_t)(r + 3 - cf)), (const char *)r + 3, iter);
    epode__base64_encode(sf64, sf, (size_t)sl);
    sf64[epode__base64_encoded_len((size_t)sl)] = '\0';
    snprintf(xml, sizeof xml, "<challenge xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>%s</challenge>",
             sf64);
    srv(f, xml);
    return take(f);
}

TEST(engine_scram_iteration_tricks_from_the_server_are_refused)
{
    static const char *const bad[] = {"+1", " 1", "1", "4095", "04096", "4294967297", "4096 "};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        fx f;
        const char *o = scram_with_iterations(&f, bad[i], 0);
        CHECK(o != NULL);
        /* no client-final message: the exchange is abandoned */
        CHECK(o && !strstr(o, "<response"));
        CHECK(o && strstr(o, "<abort"));
        CHECK_INT(f.ended, 1);
        epode__engine_free(f.e);
    }
    /* the floor is the connection's choice: 4096 answered, and 10000
     * refused under a floor of 20000 */
    fx f;
    const char *o = scram_with_iterations(&f, "4096", 0);
    CHECK(o && strstr(o, "<response"));
    epode__engine_free(f.e);
    o = scram_with_iterations(&f, "10000", 20000);
    CHECK(o && !strstr(o, "<response") && f.ended == 1);
    epode__engine_free(f.e);
}
