/* tests/unit/test_sasl2.c — SASL2 (XEP-0388), Bind2 (XEP-0386), stream
 * management inside them and FAST (XEP-0484) in the sans-I/O engine,
 * against scripted servers: what the client writes, what it accepts, and
 * every way a server (or a man in the middle) can get it wrong — a
 * success that proves nothing, an identity that is not ours, answers to
 * requests never made, tasks epode does not do, tokens outside TLS. */
#include "test.h"

#include <epode.h>

#include "auth/fast.h"
#include "stream/engine.h"
#include "stream/sasl2.h"
#include "stream/sm.h"
#include "util/alloc.h"
#include "util/base64.h"
#include "scripted.h"

#define SHDR "<?xml version='1.0'?><stream:stream xmlns='jabber:client' " \
             "xmlns:stream='http://etherx.jabber.org/streams' from='example.com' id='s1' version='1.0'>"
#define NS2 "urn:xmpp:sasl:2"
#define AUTH_OPEN "<stream:features><authentication xmlns='" NS2 "'><mechanism>PLAIN</mechanism>"
#define INLINE_ALL "<inline><bind xmlns='urn:xmpp:bind:0'><inline><feature var='urn:xmpp:carbons:2'/>" \
                   "<feature var='urn:xmpp:csi:0'/><feature var='urn:xmpp:sm:3'/></inline></bind>" \
                   "<sm xmlns='urn:xmpp:sm:3'/><fast xmlns='urn:xmpp:fast:0'>" \
                   "<mechanism>HT-SHA-256-NONE</mechanism><mechanism>HT-SHA-256-UNIQ</mechanism>" \
                   "<mechanism>HT-SHA-256-EXPR</mechanism></fast></inline>"
#define F_SASL2 AUTH_OPEN INLINE_ALL "</authentication></stream:features>"
#define F_SASL2_NOBIND AUTH_OPEN "</authentication></stream:features>"
#define AUTHZ "<authorization-identifier>juliet@example.com/epode~x1</authorization-identifier>"
#define BOUND "<bound xmlns='urn:xmpp:bind:0'/>"
#define ENABLED "<enabled xmlns='urn:xmpp:sm:3' id='sm1' resume='true'/>"
#define TOKEN "secret-token:fast-0123456789"

typedef struct fx {
    epode__engine *e;
    char events[256];
    int ended, err, reason;
    char cond[64], text[400];
    char log[1 << 14];
    size_t loglen;
    int tokens;
    char token[128], mech[64], expiry[64];
    int forgot;
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

static void stanza_cb(void *u, epode_stanza_t *st) { (void)u; (void)st; }

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
    (void)out;
    if (f->loglen + n + 2 < sizeof f->log) {
        memcpy(f->log + f->loglen, d, n);
        f->loglen += n;
        f->log[f->loglen++] = '\n';
        f->log[f->loglen] = '\0';
    }
}

static void token_cb(void *u, const char *token, const char *mech, const char *expiry)
{
    fx *f = u;
    if (!token) {
        f->forgot++;
        return;
    }
    f->tokens++;
    snprintf(f->token, sizeof f->token, "%s", token);
    snprintf(f->mech, sizeof f->mech, "%s", mech ? mech : "");
    snprintf(f->expiry, sizeof f->expiry, "%s", expiry ? expiry : "");
}

static epode__tls_facts facts12(void)
{
    epode__tls_facts t = {.version = 12, .key_bits = 256, .tls_unique_len = 12, .verified = 1};
    memset(t.tls_unique, 0x55, 12);
    return t;
}

static epode__tls_facts facts13(int exporter)
{
    epode__tls_facts t = {.version = 13, .key_bits = 256, .verified = 1};
    if (exporter) {
        t.tls_exporter_len = 32;
        memset(t.tls_exporter, 0x77, 32);
    }
    return t;
}

typedef struct opts {
    int sm, sasl2_off, no_tls, carbons, csi, fast_request, sm_inline_off;
    const char *token, *token_mech, *mechs;
    const char *token_jid; /* NULL: juliet@example.com */
    const epode__tls_facts *tls;
    epode__sm *sm_state;
} opts;

static char *take(fx *f)
{
    static char buf[1 << 15];
    size_t n;
    const char *o = epode__engine_output(f->e, &n);
    if (n >= sizeof buf)
        n = sizeof buf - 1;
    memcpy(buf, o ? o : "", n);
    buf[n] = '\0';
    epode__engine_consume(f->e, n);
    return buf;
}

static int srv(fx *f, const char *s) { return epode__engine_recv(f->e, s, strlen(s)); }

/* An engine on a direct-TLS link (or cleartext), its header answered. */
static int setup(fx *f, const opts *o)
{
    memset(f, 0, sizeof *f);
    if (epode_global_init() < 0)
        return -1;
    epode__engine_config cfg = {
        .domain = "example.com", .localpart = "juliet", .password = "r0meo!",
        .tls_mode = o->no_tls ? EPODE_TLS_DISABLED : EPODE_TLS_DIRECT,
        .mechanisms = o->mechs, .sm = o->sm, .sm_state = o->sm_state,
        .sasl2 = !o->sasl2_off, .ua_id = "d4b5a1a2-3c4d-4e5f-8a9b-0c1d2e3f4a5b",
        .ua_software = "epode", .bind2_carbons = o->carbons, .bind2_csi_inactive = o->csi,
        .fast_request = o->fast_request, .fast_token = o->token,
        .fast_mechanism = o->token ? (o->token_mech ? o->token_mech : "HT-SHA-256-NONE") : NULL,
        .fast_token_jid = o->token_jid ? o->token_jid : "juliet@example.com",
        .fast_token_cb = token_cb, .sm_inline_off = o->sm_inline_off,
    };
    epode__engine_cbs cbs = {ev_cb, stanza_cb, ended_cb, log_cb, NULL, NULL};
    int rc = epode__engine_new(NULL, &cfg, &cbs, f, &f->e);
    if (rc < 0)
        return rc;
    epode__tls_facts def = facts13(0);
    rc = epode__engine_start(f->e, o->no_tls ? NULL : o->tls ? o->tls : &def);
    take(f);
    return rc < 0 ? rc : srv(f, SHDR);
}

/* The base64 text of <initial-response/> in `out`, decoded. */
static size_t initial_response(const char *out, unsigned char *buf, size_t size)
{
    const char *p = strstr(out, "<initial-response>");
    if (!p)
        return 0;
    p += strlen("<initial-response>");
    const char *q = strstr(p, "</initial-response>");
    size_t n = 0;
    if (!q || (size_t)(q - p) > size || epode__base64_decode(p, (size_t)(q - p), buf, &n) < 0)
        return 0;
    return n;
}

static void b64(const unsigned char *d, size_t n, char *out)
{
    epode__base64_encode(out, d, n);
    out[epode__base64_encoded_len(n)] = '\0';
}

TEST(sasl2_plain_with_bind2_carbons_csi_and_inline_sm)
{
    fx f;
    opts o = {.sm = 1, .carbons = 1, .csi = 1};
    CHECK_INT(setup(&f, &o), 0);
    CHECK_INT(srv(&f, F_SASL2), 0);
    char *out = take(&f);
    CHECK(strstr(out, "<authenticate xmlns='urn:xmpp:sasl:2' mechanism='PLAIN'>"));
    CHECK(strstr(out, "<user-agent id='d4b5a1a2-3c4d-4e5f-8a9b-0c1d2e3f4a5b'><software>epode</software></user-agent>"));
    CHECK(strstr(out, "<bind xmlns='urn:xmpp:bind:0'><tag>epode</tag><enable xmlns='urn:xmpp:carbons:2'/>"
                      "<inactive xmlns='urn:xmpp:csi:0'/><enable xmlns='urn:xmpp:sm:3' resume='true'/></bind>"));
    CHECK(!strstr(out, "request-token")); /* not asked for */
    CHECK(!strstr(out, "<resume")); /* nothing to resume */
    unsigned char ir[128];
    size_t n = initial_response(out, ir, sizeof ir);
    CHECK_INT((int)n, 14);
    CHECK(memcmp(ir, "\0juliet\0r0meo!", 14) == 0);
    CHECK(strstr(f.log, "<initial-response>[redacted]</initial-response>"));
    CHECK(!strstr(f.log, "cjBtZW8h")); /* no part of the password's base64 */
    CHECK_INT(srv(&f, "<success xmlns='" NS2 "'>" AUTHZ "<bound xmlns='urn:xmpp:bind:0'>" ENABLED
                      "<enabled xmlns='urn:xmpp:carbons:2'/></bound></success>"), 0);
    CHECK_STR(f.events, "AUTH READY ");
    CHECK_STR(epode__engine_bound_jid(f.e), "juliet@example.com/epode~x1");
    CHECK(epode__engine_sm_enabled(f.e));
    CHECK(epode__engine_sm_resumable(f.e));
    CHECK(epode__engine_carbons_inline(f.e));
    CHECK(epode__engine_used_sasl2(f.e));
    out = take(&f);
    CHECK(!strstr(out, "<stream:stream")); /* SASL2: no stream restart */
    CHECK(!strstr(out, "<enable")); /* enabled inline: no classic enable */
    /* the features Prosody sends after success change nothing */
    CHECK_INT(srv(&f, "<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features>"), 0);
    CHECK_STR(take(&f), "");
    CHECK_INT(f.ended, 0);
    epode__engine_free(f.e);
}

TEST(sasl2_inline_sm_unanswered_falls_back_to_classic_enable)
{
    fx f;
    opts o = {.sm = 1};
    CHECK_INT(setup(&f, &o), 0);
    srv(&f, F_SASL2);
    CHECK(strstr(take(&f), "<enable xmlns='urn:xmpp:sm:3' resume='true'/></bind>"));
    /* Prosody 0.12: bound, and not a word about SM */
    CHECK_INT(srv(&f, "<success xmlns='" NS2 "'>" AUTHZ BOUND "</success>"), 0);
    CHECK_STR(f.events, "AUTH READY ");
    CHECK_STR(take(&f), "<enable xmlns='urn:xmpp:sm:3' resume='true'/>");
    CHECK(epode__engine_sm_holding(f.e));
    CHECK_INT(srv(&f, ENABLED), 0);
    CHECK(epode__engine_sm_enabled(f.e));
    CHECK(epode__engine_sm_resumable(f.e));
    epode__engine_free(f.e);
}

TEST(sasl2_inline_sm_refused_means_no_sm)
{
    fx f;
    opts o = {.sm = 1};
    CHECK_INT(setup(&f, &o), 0);
    srv(&f, F_SASL2);
    take(&f);
    CHECK_INT(srv(&f, "<success xmlns='" NS2 "'>" AUTHZ "<bound xmlns='urn:xmpp:bind:0'>"
                      "<failed xmlns='urn:xmpp:sm:3'/></bound></success>"), 0);
    CHECK_STR(f.events, "AUTH READY ");
    CHECK_STR(take(&f), "");
    CHECK(!epode__engine_sm_enabled(f.e));
    epode__engine_free(f.e);
}

TEST(sasl2_without_bind2_binds_the_classic_way_on_the_next_features)
{
    fx f;
    opts o = {0};
    CHECK_INT(setup(&f, &o), 0);
    srv(&f, F_SASL2_NOBIND);
    char *out = take(&f);
    CHECK(strstr(out, "mechanism='PLAIN'"));
    CHECK(!strstr(out, "<bind"));
    CHECK_INT(srv(&f, "<success xmlns='" NS2 "'><authorization-identifier>juliet@example.com"
                      "</authorization-identifier></success>"), 0);
    CHECK_STR(f.events, "AUTH ");
    CHECK_STR(take(&f), "");
    CHECK_INT(srv(&f, "<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features>"), 0);
    CHECK(strstr(take(&f), "<bind xmlns=\"urn:ietf:params:xml:ns:xmpp-bind\"/>"));
    CHECK_INT(srv(&f, "<iq type='result' id='bind_1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
                      "<jid>juliet@example.com/r</jid></bind></iq>"), 0);
    CHECK_STR(f.events, "AUTH READY ");
    epode__engine_free(f.e);
}

TEST(sasl2_not_offered_uses_legacy_sasl)
{
    fx f;
    opts o = {0};
    CHECK_INT(setup(&f, &o), 0);
    srv(&f, "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>"
            "<mechanism>PLAIN</mechanism></mechanisms></stream:features>");
    char *out = take(&f);
    CHECK(strstr(out, "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>"));
    CHECK(!epode__engine_used_sasl2(f.e));
    epode__engine_free(f.e);
}

TEST(sasl2_turned_off_uses_legacy_sasl_even_when_offered)
{
    fx f;
    opts o = {.sasl2_off = 1};
    CHECK_INT(setup(&f, &o), 0);
    srv(&f, "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>"
            "<mechanism>PLAIN</mechanism></mechanisms><authentication xmlns='" NS2 "'>"
            "<mechanism>PLAIN</mechanism></authentication></stream:features>");
    CHECK(strstr(take(&f), "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl'"));
    epode__engine_free(f.e);
}

/* A success the engine must refuse, with what it must say. */
static int refused(const char *success, int err, const char *needle)
{
    fx f;
    opts o = {.sm = 1};
    if (setup(&f, &o) < 0)
        return 0;
    srv(&f, F_SASL2);
    take(&f);
    srv(&f, success);
    int ok = f.ended == 1 && f.err == err && !strstr(f.events, "READY") &&
             strstr(f.text, needle) != NULL && !epode__engine_is_ready(f.e);
    if (!ok)
        fprintf(stderr, "# ended %d err %d events '%s' text '%s'\n", f.ended, f.err, f.events,
                f.text);
    epode__engine_free(f.e);
    return ok;
}

TEST(sasl2_success_for_somebody_else_is_refused)
{
    CHECK(refused("<success xmlns='" NS2 "'><authorization-identifier>romeo@example.com/x"
                  "</authorization-identifier>" BOUND "</success>", EPODE_EAUTH, "somebody else"));
    CHECK(refused("<success xmlns='" NS2 "'><authorization-identifier>juliet@evil.example/x"
                  "</authorization-identifier>" BOUND "</success>", EPODE_EAUTH, "somebody else"));
}

TEST(sasl2_malformed_success_is_refused)
{
    CHECK(refused("<success xmlns='" NS2 "'>" BOUND "</success>", EPODE_EPROTOCOL,
                  "no authorization identifier"));
    CHECK(refused("<success xmlns='" NS2 "'>" AUTHZ AUTHZ BOUND "</success>", EPODE_EPROTOCOL,
                  "more than one"));
    CHECK(refused("<success xmlns='" NS2 "'><authorization-identifier>@@</authorization-identifier>"
                  "</success>", EPODE_EPROTOCOL, "invalid"));
    CHECK(refused("<success xmlns='" NS2 "'><authorization-identifier>juliet@example.com"
                  "</authorization-identifier>" BOUND "</success>", EPODE_EPROTOCOL, "full JID"));
    CHECK(refused("<success xmlns='" NS2 "'>" AUTHZ "<additional-data>AA==</additional-data>"
                  "<additional-data>AA==</additional-data>" BOUND "</success>", EPODE_EPROTOCOL,
                  "additional-data"));
    CHECK(refused("<success xmlns='" NS2 "'>" AUTHZ "<token xmlns='urn:xmpp:fast:0'/>" BOUND
                  "</success>", EPODE_EPROTOCOL, "without a token"));
    CHECK(refused("<success xmlns='" NS2 "'>" AUTHZ "<bound xmlns='urn:xmpp:bind:0'>" ENABLED
                  "<failed xmlns='urn:xmpp:sm:3'/></bound></success>", EPODE_EPROTOCOL, "two answers"));
    /* PLAIN is complete: data with its success is a lie */
    CHECK(refused("<success xmlns='" NS2 "'>" AUTHZ "<additional-data>dj1hYmM=</additional-data>"
                  BOUND "</success>", EPODE_EAUTH, "did not prove"));
    CHECK(refused("<success xmlns='" NS2 "'>" AUTHZ "<additional-data>!!</additional-data>"
                  BOUND "</success>", EPODE_EAUTH, "base64"));
    /* an answer to a <resume/> never sent */
    CHECK(refused("<success xmlns='" NS2 "'>" AUTHZ "<resumed xmlns='urn:xmpp:sm:3' h='0' previd='x'/>"
                  "</success>", EPODE_EPROTOCOL, "never made"));
}

TEST(sasl2_answers_to_requests_not_made_are_refused)
{
    fx f;
    opts o = {0}; /* no SM */
    CHECK_INT(setup(&f, &o), 0);
    srv(&f, F_SASL2_NOBIND); /* no Bind2 offered: none asked for */
    take(&f);
    srv(&f, "<success xmlns='" NS2 "'>" AUTHZ BOUND "</success>");
    CHECK_INT(f.ended, 1);
    CHECK_INT(f.err, EPODE_EPROTOCOL);
    CHECK(strstr(f.text, "never made"));
    CHECK(strstr(take(&f), "<stream:error>"));
    epode__engine_free(f.e);
}

TEST(sasl2_scram_success_without_server_signature_is_refused)
{
    fx f;
    opts o = {.mechs = "SCRAM-SHA-1"};
    CHECK_INT(setup(&f, &o), 0);
    srv(&f, "<stream:features><authentication xmlns='" NS2 "'><mechanism>SCRAM-SHA-1</mechanism>"
            "</authentication></stream:features>");
    char *out = take(&f);
    CHECK(strstr(out, "mechanism='SCRAM-SHA-1'"));
    unsigned char ir[256];
    size_t n = initial_response(out, ir, sizeof ir);
    CHECK(n > 3 && memcmp(ir, "n,,", 3) == 0); /* TLS 1.3 without exporter data: 'n' */
    srv(&f, "<success xmlns='" NS2 "'>" AUTHZ "</success>");
    CHECK_INT(f.ended, 1);
    CHECK_INT(f.err, EPODE_EAUTH);
    CHECK(!strstr(f.events, "AUTH"));
    epode__engine_free(f.e);
}

TEST(sasl2_scram_challenge_gets_a_sasl2_response)
{
    fx f;
    opts o = {.mechs = "SCRAM-SHA-1"};
    CHECK_INT(setup(&f, &o), 0);
    srv(&f, "<stream:features><authentication xmlns='" NS2 "'><mechanism>SCRAM-SHA-1</mechanism>"
            "</authentication></stream:features>");
    char *out = take(&f);
    unsigned char ir[256];
    size_t n = initial_response(out, ir, sizeof ir);
    CHECK(n > 0);
    ir[n] = '\0';
    const char *nonce = strstr((char *)ir, "r=");
    CHECK(nonce);
    char first[300], enc[500], msg[700];
    snprintf(first, sizeof first, "%sSRV,s=c2FsdHNhbHQ=,i=4096", nonce);
    b64((const unsigned char *)first, strlen(first), enc);
    snprintf(msg, sizeof msg, "<challenge xmlns='" NS2 "'>%s</challenge>", enc);
    CHECK_INT(srv(&f, msg), 0);
    out = take(&f);
    CHECK(strncmp(out, "<response xmlns='urn:xmpp:sasl:2'>", 34) == 0);
    /* the iteration floor holds on SASL2 too */
    epode__engine_free(f.e);

    CHECK_INT(setup(&f, &o), 0);
    srv(&f, "<stream:features><authentication xmlns='" NS2 "'><mechanism>SCRAM-SHA-1</mechanism>"
            "</authentication></stream:features>");
    out = take(&f);
    n = initial_response(out, ir, sizeof ir);
    ir[n] = '\0';
    nonce = strstr((char *)ir, "r=");
    snprintf(first, sizeof first, "%sSRV,s=c2FsdHNhbHQ=,i=1", nonce);
    b64((const unsigned char *)first, strlen(first), enc);
    snprintf(msg, sizeof msg, "<challenge xmlns='" NS2 "'>%s</challenge>", enc);
    srv(&f, msg);
    CHECK_INT(f.ended, 1);
    CHECK_INT(f.err, EPODE_EAUTH);
    CHECK(strstr(f.text, "iterations"));
    CHECK(strstr(take(&f), "<abort xmlns='urn:xmpp:sasl:2'/>"));
    epode__engine_free(f.e);
}

TEST(sasl2_continue_with_unsupported_tasks_is_reported)
{
    fx f;
    opts o = {0};
    CHECK_INT(setup(&f, &o), 0);
    srv(&f, F_SASL2);
    take(&f);
    srv(&f, "<continue xmlns='" NS2 "'><additional-data>AA==</additional-data><tasks>"
            "<task>HOTP-EXAMPLE</task><task>UPGR-SCRAM-SHA-256</task></tasks>"
            "<text>2FA required</text></continue>");
    CHECK_INT(f.ended, 1);
    CHECK_INT(f.err, EPODE_EAUTH);
    CHECK_INT(f.reason, EPODE_REASON_AUTH);
    CHECK_STR(f.cond, "unsupported-task");
    CHECK(strstr(f.text, "HOTP-EXAMPLE, UPGR-SCRAM-SHA-256"));
    CHECK(strstr(f.text, "2FA required"));
    CHECK(strstr(take(&f), "<abort xmlns='urn:xmpp:sasl:2'/>"));
    epode__engine_free(f.e);
}

TEST(sasl2_failure_reports_condition_and_text)
{
    fx f;
    opts o = {0};
    CHECK_INT(setup(&f, &o), 0);
    srv(&f, F_SASL2);
    take(&f);
    srv(&f, "<failure xmlns='" NS2 "'><not-authorized xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>"
            "<text>bad password</text></failure>");
    CHECK_INT(f.ended, 1);
    CHECK_INT(f.err, EPODE_EAUTH);
    CHECK_STR(f.cond, "not-authorized");
    CHECK(strstr(f.text, "bad password"));
    CHECK_INT(f.forgot, 0);
    epode__engine_free(f.e);
}

TEST(sasl2_unexpected_element_ends_the_stream)
{
    fx f;
    opts o = {0};
    CHECK_INT(setup(&f, &o), 0);
    srv(&f, F_SASL2);
    take(&f);
    srv(&f, "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>");
    CHECK_INT(f.ended, 1);
    CHECK_INT(f.err, EPODE_EPROTOCOL);
    epode__engine_free(f.e);
}

/* ---- inline resumption ---- */

static void set_resumable(epode__sm *sm)
{
    epode__sm_init(sm, NULL);
    sm->requested = sm->enabled = 1;
    sm->in = 3;
    epode__sm_set_resumable(sm, "prev-1", "juliet@example.com/old");
    epode__sm_push(sm, "m1", "<message id='m1'/>", 18, 0);
    sm->out = 1;
}

TEST(sasl2_inline_resume_resumes_the_session)
{
    fx f;
    epode__sm sm;
    set_resumable(&sm);
    opts o = {.sm = 1, .sm_state = &sm};
    CHECK_INT(setup(&f, &o), 0);
    srv(&f, F_SASL2);
    char *out = take(&f);
    CHECK(strstr(out, "<resume xmlns='urn:xmpp:sm:3' previd='prev-1' h='3'/>"));
    CHECK_INT(srv(&f, "<success xmlns='" NS2 "'><authorization-identifier>juliet@example.com/old"
                      "</authorization-identifier><resumed xmlns='urn:xmpp:sm:3' h='0' previd='prev-1'/>"
                      "</success>"), 0);
    CHECK_STR(f.events, "AUTH RESUMED ");
    CHECK_STR(epode__engine_bound_jid(f.e), "juliet@example.com/old");
    out = take(&f);
    CHECK(strstr(out, "<message id='m1'/>")); /* resent */
    epode__engine_free(f.e);
    epode__sm_drain(&sm, NULL, NULL);
    epode__sm_free(&sm);
}

TEST(sasl2_inline_resume_failed_binds_a_fresh_session)
{
    fx f;
    epode__sm sm;
    set_resumable(&sm);
    opts o = {.sm = 1, .sm_state = &sm};
    CHECK_INT(setup(&f, &o), 0);
    srv(&f, F_SASL2);
    take(&f);
    CHECK_INT(srv(&f, "<success xmlns='" NS2 "'>" AUTHZ "<failed xmlns='urn:xmpp:sm:3'/>"
                      "<bound xmlns='urn:xmpp:bind:0'>" ENABLED "</bound></success>"), 0);
    CHECK_STR(f.events, "AUTH READY ");
    CHECK_STR(epode__engine_bound_jid(f.e), "juliet@example.com/epode~x1");
    CHECK(epode__engine_sm_enabled(f.e));
    CHECK(strcmp(sm.id, "sm1") == 0);
    epode__engine_free(f.e);
    epode__sm_drain(&sm, NULL, NULL);
    epode__sm_free(&sm);
}

TEST(sasl2_inline_resume_unanswered_is_a_fresh_session)
{
    fx f;
    epode__sm sm;
    set_resumable(&sm);
    opts o = {.sm = 1, .sm_state = &sm};
    CHECK_INT(setup(&f, &o), 0);
    srv(&f, F_SASL2);
    take(&f);
    CHECK_INT(srv(&f, "<success xmlns='" NS2 "'>" AUTHZ BOUND "</success>"), 0);
    CHECK_STR(f.events, "AUTH READY ");
    CHECK_STR(take(&f), "<enable xmlns='urn:xmpp:sm:3' resume='true'/>");
    epode__engine_free(f.e);
    epode__sm_drain(&sm, NULL, NULL);
    epode__sm_free(&sm);
}

TEST(sasl2_features_after_a_bind2_login_enable_sm_the_classic_way)
{
    fx f;
    opts o = {.sm = 1};
    CHECK_INT(setup(&f, &o), 0);
    srv(&f, AUTH_OPEN "<inline><bind xmlns='urn:xmpp:bind:0'/></inline></authentication></stream:features>");
    CHECK(!strstr(take(&f), "urn:xmpp:sm:3"));
    CHECK_INT(srv(&f, "<success xmlns='" NS2 "'>" AUTHZ BOUND "</success>"), 0);
    CHECK_STR(f.events, "AUTH READY ");
    CHECK_STR(take(&f), ""); /* SM nowhere offered yet */
    CHECK_INT(srv(&f, "<stream:features><sm xmlns='urn:xmpp:sm:3'/></stream:features>"), 0);
    CHECK_STR(take(&f), "<enable xmlns='urn:xmpp:sm:3' resume='true'/>");
    CHECK(epode__engine_sm_holding(f.e));
    CHECK_INT(srv(&f, ENABLED), 0);
    CHECK(epode__engine_sm_enabled(f.e));
    /* features again change nothing */
    CHECK_INT(srv(&f, "<stream:features><sm xmlns='urn:xmpp:sm:3'/></stream:features>"), 0);
    CHECK_STR(take(&f), "");
    epode__engine_free(f.e);
}

TEST(sasl2_sm_inline_can_be_turned_off_and_is_reported_unanswered)
{
    fx f;
    epode__sm sm;
    set_resumable(&sm);
    opts o = {.sm = 1, .sm_state = &sm};
    CHECK_INT(setup(&f, &o), 0);
    srv(&f, F_SASL2);
    take(&f);
    CHECK(epode__engine_sasl2_sm_unanswered(f.e)); /* asked inline, no answer yet */
    epode__engine_free(f.e);
    o.sm_inline_off = 1;
    CHECK_INT(setup(&f, &o), 0);
    srv(&f, F_SASL2);
    char *out = take(&f);
    CHECK(!strstr(out, "urn:xmpp:sm:3"));
    CHECK(!epode__engine_sasl2_sm_unanswered(f.e));
    /* the old session comes back the classic way, on the next features */
    CHECK_INT(srv(&f, "<success xmlns='" NS2 "'><authorization-identifier>juliet@example.com"
                      "</authorization-identifier></success>"), 0);
    CHECK_INT(srv(&f, "<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>"
                      "<sm xmlns='urn:xmpp:sm:3'/></stream:features>"), 0);
    CHECK(strstr(take(&f), "<resume xmlns='urn:xmpp:sm:3' h='3' previd='prev-1'/>"));
    epode__engine_free(f.e);
    epode__sm_drain(&sm, NULL, NULL);
    epode__sm_free(&sm);
}

/* ---- XEP-0474 (SSDP) ---- */

#define F_SSDP(mechs) "<stream:features><authentication xmlns='" NS2 "'>" mechs "</authentication>" \
    "<sasl-channel-binding xmlns='urn:xmpp:sasl-cb:0'><channel-binding type='tls-server-end-point'/>" \
    "<channel-binding type='tls-exporter'/></sasl-channel-binding></stream:features>"
#define MECHS_BOTH "<mechanism>SCRAM-SHA-1-PLUS</mechanism><mechanism>SCRAM-SHA-1</mechanism>"

/* Runs to the server-first-message with attribute `extra` (e.g. ",h=…");
 * returns what the client wrote next. */
static char *ssdp_run(fx *f, const char *features, const char *extra)
{
    epode__tls_facts t = facts13(1);
    opts o = {.mechs = "SCRAM-SHA-1-PLUS SCRAM-SHA-1", .tls = &t};
    if (setup(f, &o) < 0)
        return NULL;
    srv(f, features);
    char *out = take(f);
    unsigned char ir[256];
    size_t n = initial_response(out, ir, sizeof ir);
    if (!n)
        return NULL;
    ir[n] = '\0';
    const char *nonce = strstr((char *)ir, "r=");
    char first[400], enc[700], msg[900];
    snprintf(first, sizeof first, "%sSRV,s=c2FsdHNhbHQ=,i=4096%s", nonce, extra);
    b64((const unsigned char *)first, strlen(first), enc);
    snprintf(msg, sizeof msg, "<challenge xmlns='" NS2 "'>%s</challenge>", enc);
    srv(f, msg);
    return take(f);
}

/* The example of XEP-0474 §6.3: SHA-1 of
 * "SCRAM-SHA-1\x1eSCRAM-SHA-1-PLUS\x1ftls-exporter\x1etls-server-end-point" */
#define SSDP_EXAMPLE ",h=G6k/rBLDqgOhRRaCuuatSDFkJ08="

TEST(ssdp_matching_hash_goes_on)
{
    fx f;
    char *out = ssdp_run(&f, F_SSDP(MECHS_BOTH), SSDP_EXAMPLE);
    CHECK(out && strncmp(out, "<response xmlns='urn:xmpp:sasl:2'>", 34) == 0);
    CHECK_INT(f.ended, 0);
    CHECK_STR(epode__engine_mechanism(f.e), "SCRAM-SHA-1-PLUS");
    epode__engine_free(f.e);
}

TEST(ssdp_no_hash_is_a_server_without_ssdp)
{
    fx f;
    char *out = ssdp_run(&f, F_SSDP(MECHS_BOTH), "");
    CHECK(out && strncmp(out, "<response xmlns='urn:xmpp:sasl:2'>", 34) == 0);
    CHECK_INT(f.ended, 0);
    epode__engine_free(f.e);
}

TEST(ssdp_detects_a_stripped_plus_mechanism)
{
    fx f;
    /* a man in the middle removed -PLUS; the server hashed what it sent */
    char *out = ssdp_run(&f, F_SSDP("<mechanism>SCRAM-SHA-1</mechanism>"), SSDP_EXAMPLE);
    CHECK(out && strstr(out, "<abort xmlns='urn:xmpp:sasl:2'/>"));
    CHECK(!strstr(out, "<response"));
    CHECK_INT(f.ended, 1);
    CHECK_INT(f.err, EPODE_EAUTH);
    CHECK(strstr(f.text, "downgrade-protection hash (XEP-0474) does not match"));
    epode__engine_free(f.e);
}

TEST(ssdp_detects_a_changed_binding_list_and_garbage)
{
    fx f;
    /* tls-exporter removed from the XEP-0440 list on the way */
    char *out = ssdp_run(&f, "<stream:features><authentication xmlns='" NS2 "'>" MECHS_BOTH
                             "</authentication><sasl-channel-binding xmlns='urn:xmpp:sasl-cb:0'>"
                             "<channel-binding type='tls-server-end-point'/></sasl-channel-binding>"
                             "</stream:features>", SSDP_EXAMPLE);
    CHECK(out && strstr(out, "<abort"));
    CHECK_INT(f.err, EPODE_EAUTH);
    epode__engine_free(f.e);
    out = ssdp_run(&f, F_SSDP(MECHS_BOTH), ",h=notbase64");
    CHECK(out && strstr(out, "<abort"));
    CHECK_INT(f.err, EPODE_EAUTH);
    epode__engine_free(f.e);
    out = ssdp_run(&f, F_SSDP(MECHS_BOTH), SSDP_EXAMPLE SSDP_EXAMPLE);
    CHECK(out && strstr(out, "<abort"));
    CHECK(strstr(f.text, "two downgrade-protection hashes"));
    epode__engine_free(f.e);
}

TEST(ssdp_protects_legacy_sasl_too)
{
    fx f;
    epode__tls_facts t = facts13(1);
    opts o = {.mechs = "SCRAM-SHA-1-PLUS SCRAM-SHA-1", .tls = &t, .sasl2_off = 1};
    CHECK_INT(setup(&f, &o), 0);
    srv(&f, "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>"
            "<mechanism>SCRAM-SHA-1</mechanism></mechanisms>"
            "<sasl-channel-binding xmlns='urn:xmpp:sasl-cb:0'><channel-binding type='tls-server-end-point'/>"
            "<channel-binding type='tls-exporter'/></sasl-channel-binding></stream:features>");
    char *out = take(&f);
    const char *p = strstr(out, "'SCRAM-SHA-1'>");
    CHECK(p);
    p += strlen("'SCRAM-SHA-1'>");
    unsigned char ir[256];
    size_t n = 0;
    const char *q = strstr(p, "</auth>");
    CHECK(q && epode__base64_decode(p, (size_t)(q - p), ir, &n) == 0);
    ir[n] = '\0';
    char first[400], enc[700], msg[900];
    snprintf(first, sizeof first, "%sSRV,s=c2FsdHNhbHQ=,i=4096" SSDP_EXAMPLE, strstr((char *)ir, "r="));
    b64((const unsigned char *)first, strlen(first), enc);
    snprintf(msg, sizeof msg, "<challenge xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>%s</challenge>", enc);
    srv(&f, msg);
    CHECK_INT(f.ended, 1);
    CHECK(strstr(f.text, "XEP-0474"));
    epode__engine_free(f.e);
}

/* ---- FAST ---- */

TEST(fast_token_is_requested_and_handed_over_never_logged)
{
    fx f;
    epode__tls_facts t = facts13(1);
    opts o = {.fast_request = 1, .tls = &t};
    CHECK_INT(setup(&f, &o), 0);
    srv(&f, F_SASL2);
    char *out = take(&f);
    CHECK(strstr(out, "<request-token xmlns='urn:xmpp:fast:0' mechanism='HT-SHA-256-EXPR'/>"));
    CHECK(!strstr(out, "<fast xmlns"));
    CHECK_INT(srv(&f, "<success xmlns='" NS2 "'>" AUTHZ BOUND "<token xmlns='urn:xmpp:fast:0' "
                      "expiry='2026-12-27T12:00:00Z' token='" TOKEN "'/></success>"), 0);
    CHECK_STR(f.events, "AUTH READY ");
    CHECK_INT(f.tokens, 1);
    CHECK_STR(f.token, TOKEN);
    CHECK_STR(f.mech, "HT-SHA-256-EXPR");
    CHECK_STR(f.expiry, "2026-12-27T12:00:00Z");
    CHECK(strstr(f.log, "[SASL2 answer, "));
    CHECK(strstr(f.log, " bytes, not logged: it may carry a token]"));
    CHECK(!strstr(f.log, "0123456789"));
    epode__engine_free(f.e);
}

TEST(fast_token_cut_between_two_reads_is_not_logged)
{
    fx f;
    epode__tls_facts t = facts13(1);
    opts o = {.fast_request = 1, .tls = &t};
    CHECK_INT(setup(&f, &o), 0);
    srv(&f, F_SASL2);
    take(&f);
    const char *a = "<success xmlns='" NS2 "'>" AUTHZ BOUND "<token xmlns='urn:xmpp:fast:0' "
                    "token='secret-token:fa";
    const char *b = "st-0123456789' expiry='2026-12-27T12:00:00Z'/></success>";
    CHECK_INT(srv(&f, a), 0);
    CHECK_INT(srv(&f, b), 0);
    CHECK_STR(f.events, "AUTH READY ");
    CHECK_STR(f.token, TOKEN);
    CHECK(!strstr(f.log, "0123456789"));
    CHECK(!strstr(f.log, "secret-token:fa"));
    CHECK(strstr(f.log, "not logged: it may carry a token]"));
    epode__engine_free(f.e);
}

TEST(fast_request_picks_uniq_on_tls12_and_none_without_binding)
{
    fx f;
    epode__tls_facts t = facts12();
    opts o = {.fast_request = 1, .tls = &t};
    CHECK_INT(setup(&f, &o), 0);
    srv(&f, F_SASL2);
    CHECK(strstr(take(&f), "mechanism='HT-SHA-256-UNIQ'/>"));
    epode__engine_free(f.e);
    epode__tls_facts t13 = facts13(0);
    o.tls = &t13;
    CHECK_INT(setup(&f, &o), 0);
    srv(&f, F_SASL2);
    CHECK(strstr(take(&f), "mechanism='HT-SHA-256-NONE'/>"));
    epode__engine_free(f.e);
}

/* Logs in with a token; returns the engine's output after the features. */
static char *fast_login(fx *f, const epode__tls_facts *t, const char *mech)
{
    opts o = {.token = TOKEN, .token_mech = mech, .tls = t, .fast_request = 1};
    if (setup(f, &o) < 0)
        return NULL;
    srv(f, F_SASL2);
    return take(f);
}

TEST(fast_login_with_token_none)
{
    fx f;
    epode__tls_facts t = facts13(0);
    char *out = fast_login(&f, &t, "HT-SHA-256-NONE");
    CHECK(out);
    CHECK(strstr(out, "mechanism='HT-SHA-256-NONE'"));
    CHECK(strstr(out, "<fast xmlns='urn:xmpp:fast:0'/>"));
    CHECK(!strstr(out, "request-token")); /* the server rotates on its own */
    unsigned char ir[128], want[32];
    size_t n = initial_response(out, ir, sizeof ir);
    CHECK_INT((int)n, 7 + 32);
    CHECK(memcmp(ir, "juliet\0", 7) == 0);
    CHECK_INT(epode__fast_hmac(TOKEN, "Initiator", NULL, 0, want), 0);
    CHECK(memcmp(ir + 7, want, 32) == 0);
    CHECK(!strstr(f.log, TOKEN));
    /* the server proves it has the token too */
    unsigned char resp[32];
    char enc[64], msg[400];
    epode__fast_hmac(TOKEN, "Responder", NULL, 0, resp);
    b64(resp, 32, enc);
    snprintf(msg, sizeof msg, "<success xmlns='" NS2 "'><additional-data>%s</additional-data>"
             AUTHZ BOUND "</success>", enc);
    CHECK_INT(srv(&f, msg), 0);
    CHECK_STR(f.events, "AUTH READY ");
    CHECK(epode__engine_used_fast(f.e));
    CHECK_STR(epode__engine_mechanism(f.e), "HT-SHA-256-NONE");
    epode__engine_free(f.e);
}

TEST(fast_login_with_exporter_binding_on_tls13)
{
    fx f;
    epode__tls_facts t = facts13(1);
    char *out = fast_login(&f, &t, "HT-SHA-256-EXPR");
    CHECK(strstr(out, "mechanism='HT-SHA-256-EXPR'"));
    unsigned char ir[128], want[32];
    size_t n = initial_response(out, ir, sizeof ir);
    CHECK_INT((int)n, 39);
    epode__fast_hmac(TOKEN, "Initiator", t.tls_exporter, 32, want);
    CHECK(memcmp(ir + 7, want, 32) == 0);
    unsigned char resp[32];
    char enc[64], msg[400];
    epode__fast_hmac(TOKEN, "Responder", t.tls_exporter, 32, resp);
    b64(resp, 32, enc);
    snprintf(msg, sizeof msg, "<success xmlns='" NS2 "'><additional-data>%s</additional-data>"
             AUTHZ BOUND "<token xmlns='urn:xmpp:fast:0' token='secret-token:new'/></success>", enc);
    CHECK_INT(srv(&f, msg), 0);
    CHECK_STR(f.events, "AUTH READY ");
    /* rotated: the new token, for the mechanism in use */
    CHECK_INT(f.tokens, 1);
    CHECK_STR(f.token, "secret-token:new");
    CHECK_STR(f.mech, "HT-SHA-256-EXPR");
    epode__engine_free(f.e);
}

TEST(fast_uniq_token_is_not_used_on_tls13)
{
    fx f;
    epode__tls_facts t = facts13(1);
    char *out = fast_login(&f, &t, "HT-SHA-256-UNIQ");
    CHECK(strstr(out, "mechanism='PLAIN'")); /* the password instead */
    CHECK(!strstr(out, "<fast xmlns"));
    CHECK(!epode__engine_used_fast(f.e));
    epode__engine_free(f.e);
}

TEST(fast_server_that_cannot_prove_the_token_is_refused)
{
    const char *bad[] = {
        "<success xmlns='" NS2 "'>" AUTHZ BOUND "</success>", /* no proof at all */
        "<success xmlns='" NS2 "'><additional-data>AAAA</additional-data>" AUTHZ BOUND "</success>",
    };
    for (size_t i = 0; i < 2; i++) {
        fx f;
        epode__tls_facts t = facts13(0);
        CHECK(fast_login(&f, &t, "HT-SHA-256-NONE"));
        srv(&f, bad[i]);
        CHECK_INT(f.ended, 1);
        CHECK_INT(f.err, EPODE_EAUTH);
        CHECK(strstr(f.text, "did not prove"));
        CHECK(!strstr(f.events, "AUTH"));
        epode__engine_free(f.e);
    }
    /* a proof computed with another binding (a relay between two TLS sessions) */
    fx f;
    epode__tls_facts t = facts13(1);
    CHECK(fast_login(&f, &t, "HT-SHA-256-EXPR"));
    unsigned char resp[32];
    char enc[64], msg[400];
    epode__fast_hmac(TOKEN, "Responder", NULL, 0, resp);
    b64(resp, 32, enc);
    snprintf(msg, sizeof msg, "<success xmlns='" NS2 "'><additional-data>%s</additional-data>"
             AUTHZ BOUND "</success>", enc);
    srv(&f, msg);
    CHECK_INT(f.err, EPODE_EAUTH);
    epode__engine_free(f.e);
}

TEST(fast_token_refused_is_forgotten)
{
    fx f;
    epode__tls_facts t = facts13(0);
    CHECK(fast_login(&f, &t, "HT-SHA-256-NONE"));
    srv(&f, "<failure xmlns='" NS2 "'><credentials-expired xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>"
            "</failure>");
    CHECK_INT(f.ended, 1);
    CHECK_INT(f.err, EPODE_EAUTH);
    CHECK_STR(f.cond, "credentials-expired");
    CHECK(strstr(f.text, "FAST token"));
    CHECK_INT(f.forgot, 1);
    CHECK(epode__engine_fast_refused(f.e));
    epode__engine_free(f.e);
}

TEST(fast_token_never_sent_without_tls)
{
    fx f;
    opts o = {.no_tls = 1, .token = TOKEN, .fast_request = 1, .mechs = "SCRAM-SHA-1"};
    CHECK_INT(setup(&f, &o), 0);
    srv(&f, "<stream:features><authentication xmlns='" NS2 "'><mechanism>SCRAM-SHA-1</mechanism>"
            "<mechanism>HT-SHA-256-NONE</mechanism>" INLINE_ALL "</authentication></stream:features>");
    char *out = take(&f);
    CHECK(strstr(out, "mechanism='SCRAM-SHA-1'"));
    CHECK(!strstr(out, "HT-SHA"));
    CHECK(!strstr(out, "request-token"));
    CHECK(!epode__engine_used_fast(f.e));
    epode__engine_free(f.e);
}

TEST(fast_token_not_used_when_its_mechanism_is_not_offered)
{
    fx f;
    epode__tls_facts t = facts13(0);
    opts o = {.token = TOKEN, .tls = &t};
    CHECK_INT(setup(&f, &o), 0);
    srv(&f, F_SASL2_NOBIND); /* no <fast/> at all */
    char *out = take(&f);
    CHECK(strstr(out, "mechanism='PLAIN'"));
    CHECK(!strstr(out, "fast"));
    epode__engine_free(f.e);
}

/* Issue-16 review: XML allows white space around '=', a read may end
 * anywhere (inside the attribute's name, after the '=', after the
 * quote), and a character reference may stand for any character: no
 * redaction by pattern holds. Nothing the server sends while a token may
 * come is logged, whatever the spelling and however it is cut. */
TEST(fast_token_never_logged_whatever_its_spelling_or_cuts)
{
    static const char *const spellings[] = {
        "<success xmlns='" NS2 "'>" AUTHZ BOUND "<token xmlns='urn:xmpp:fast:0' "
        "expiry='2026-12-27T12:00:00Z' token = '" TOKEN "'/></success>",
        "<success xmlns='" NS2 "'>" AUTHZ BOUND "<token xmlns='urn:xmpp:fast:0' token\n=\t\""
        TOKEN "\"/></success>",
        "<success xmlns='" NS2 "'>" AUTHZ BOUND "<token xmlns='urn:xmpp:fast:0' "
        "token='secret-token:fast-&#48;123456789'/></success>",
    };
    for (size_t i = 0; i < sizeof spellings / sizeof *spellings; i++) {
        size_t len = strlen(spellings[i]);
        /* whole, then cut in two at every place, then in reads of 1 to 7 bytes */
        for (size_t cut = 0; cut <= len + 7; cut++) {
            fx f;
            epode__tls_facts t = facts13(1);
            opts o = {.fast_request = 1, .tls = &t};
            CHECK_INT(setup(&f, &o), 0);
            srv(&f, F_SASL2);
            take(&f);
            if (cut <= len) {
                if (cut)
                    CHECK_INT(epode__engine_recv(f.e, spellings[i], cut), 0);
                if (cut < len)
                    CHECK_INT(epode__engine_recv(f.e, spellings[i] + cut, len - cut), 0);
            } else {
                size_t step = cut - len;
                for (size_t k = 0; k < len; k += step)
                    CHECK_INT(epode__engine_recv(f.e, spellings[i] + k,
                                                 len - k < step ? len - k : step), 0);
            }
            CHECK_STR(f.events, "AUTH READY ");
            CHECK_STR(f.token, TOKEN);
            CHECK(!strstr(f.log, "23456789"));
            CHECK(!strstr(f.log, "secret-token"));
            CHECK(!strstr(f.log, "&#48;"));
            epode__engine_free(f.e);
        }
    }
}

/* A login that neither uses nor asks for a token logs the server's words. */
TEST(sasl2_answer_is_logged_when_no_token_can_come)
{
    fx f;
    opts o = {0};
    CHECK_INT(setup(&f, &o), 0);
    srv(&f, F_SASL2);
    take(&f);
    CHECK_INT(srv(&f, "<success xmlns='" NS2 "'>" AUTHZ BOUND "</success>"), 0);
    CHECK_STR(f.events, "AUTH READY ");
    CHECK(strstr(f.log, "<success xmlns='" NS2 "'>" AUTHZ));
    epode__engine_free(f.e);
}

/* A token (or expiry) with a newline, a space, a control character, or
 * too long goes nowhere: the stores write it line by line, and a newline
 * would inject lines (another jid, another token) into the file. */
TEST(fast_token_with_controls_or_spaces_is_not_kept_and_bad_expiry_dropped)
{
    static const char *const bad[] = {
        "abc&#10;jid victim@elsewhere.example", "abc def", "abc&#9;def", "abc&#13;", "caf\xc3\xa9",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        fx f;
        epode__tls_facts t = facts13(1);
        opts o = {.fast_request = 1, .tls = &t};
        CHECK_INT(setup(&f, &o), 0);
        srv(&f, F_SASL2);
        take(&f);
        char msg[600];
        snprintf(msg, sizeof msg, "<success xmlns='" NS2 "'>" AUTHZ BOUND "<token xmlns='urn:xmpp:"
                 "fast:0' expiry='2026-12-27T12:00:00Z' token='%s'/></success>", bad[i]);
        CHECK_INT(srv(&f, msg), 0);
        CHECK_STR(f.events, "AUTH READY "); /* the login itself is fine */
        CHECK_INT(f.tokens, 0);
        epode__engine_free(f.e);
    }
    /* over 1024 bytes */
    {
        fx f;
        epode__tls_facts t = facts13(1);
        opts o = {.fast_request = 1, .tls = &t};
        CHECK_INT(setup(&f, &o), 0);
        srv(&f, F_SASL2);
        take(&f);
        static char msg[2400], big[1100];
        memset(big, 'x', 1025);
        big[1025] = '\0';
        snprintf(msg, sizeof msg, "<success xmlns='" NS2 "'>" AUTHZ BOUND "<token xmlns='urn:xmpp:"
                 "fast:0' token='%s'/></success>", big);
        CHECK_INT(srv(&f, msg), 0);
        CHECK_INT(f.tokens, 0);
        epode__engine_free(f.e);
    }
    /* a good token with an expiry that is no date-time: kept, the expiry dropped */
    fx f;
    epode__tls_facts t = facts13(1);
    opts o = {.fast_request = 1, .tls = &t};
    CHECK_INT(setup(&f, &o), 0);
    srv(&f, F_SASL2);
    take(&f);
    CHECK_INT(srv(&f, "<success xmlns='" NS2 "'>" AUTHZ BOUND "<token xmlns='urn:xmpp:fast:0' "
                      "expiry='tomorrow&#10;garbage' token='" TOKEN "'/></success>"), 0);
    CHECK_INT(f.tokens, 1);
    CHECK_STR(f.token, TOKEN);
    CHECK_STR(f.expiry, "");
    epode__engine_free(f.e);
}

/* Over TLS whose certificate did not verify (verification off, or the
 * application's callback said yes), whoever answers may be a man in the
 * middle: the token's proof could be replayed (-NONE) or relayed. No
 * token is used there, nor asked for. */
TEST(fast_token_neither_used_nor_requested_over_unverified_tls)
{
    const char *mechs[] = {"HT-SHA-256-NONE", "HT-SHA-256-EXPR"};
    for (int i = 0; i < 2; i++) {
        fx f;
        epode__tls_facts t = facts13(1);
        t.verified = 0;
        char *out = fast_login(&f, &t, mechs[i]);
        CHECK(out);
        CHECK(strstr(out, "mechanism='PLAIN'"));
        CHECK(!strstr(out, "HT-SHA"));
        CHECK(!strstr(out, "request-token"));
        CHECK(!strstr(out, "<fast xmlns"));
        CHECK(!epode__engine_used_fast(f.e));
        /* a token the server sends anyway is not taken */
        CHECK_INT(srv(&f, "<success xmlns='" NS2 "'>" AUTHZ BOUND "<token xmlns='urn:xmpp:fast:0' "
                          "token='" TOKEN "'/></success>"), 0);
        CHECK_STR(f.events, "AUTH READY ");
        CHECK_INT(f.tokens, 0);
        epode__engine_free(f.e);
    }
}

/* The engine's own check: a token issued to another account or domain is
 * never presented, whatever its owner configured. */
TEST(fast_token_of_another_account_is_not_used)
{
    const char *others[] = {"romeo@example.com", "juliet@evil.example", "example.com", ""};
    for (size_t i = 0; i < sizeof others / sizeof *others; i++) {
        fx f;
        epode__tls_facts t = facts13(0);
        opts o = {.token = TOKEN, .tls = &t, .token_jid = others[i]};
        CHECK_INT(setup(&f, &o), 0);
        srv(&f, F_SASL2);
        char *out = take(&f);
        CHECK(strstr(out, "mechanism='PLAIN'"));
        CHECK(!strstr(out, "HT-SHA-256-NONE'"));
        CHECK(!epode__engine_used_fast(f.e));
        epode__engine_free(f.e);
    }
    /* the same JID in another case is the same account */
    fx f;
    epode__tls_facts t = facts13(0);
    opts o = {.token = TOKEN, .tls = &t, .token_jid = "Juliet@Example.COM"};
    CHECK_INT(setup(&f, &o), 0);
    srv(&f, F_SASL2);
    CHECK(strstr(take(&f), "mechanism='HT-SHA-256-NONE'"));
    epode__engine_free(f.e);
}

/* An inline <resumed/> must be the session we asked for (its previd)
 * and the success must name that session's JID: a server that resumes
 * another session (another resource, another id) is refused. */
TEST(sasl2_inline_resumed_of_another_session_is_refused)
{
    static const char *const bad[] = {
        "<success xmlns='" NS2 "'><authorization-identifier>juliet@example.com/other"
        "</authorization-identifier><resumed xmlns='urn:xmpp:sm:3' h='0' previd='prev-1'/></success>",
        "<success xmlns='" NS2 "'><authorization-identifier>juliet@example.com/old"
        "</authorization-identifier><resumed xmlns='urn:xmpp:sm:3' h='0' previd='somebody-elses'/>"
        "</success>",
        "<success xmlns='" NS2 "'><authorization-identifier>juliet@example.com/other"
        "</authorization-identifier><resumed xmlns='urn:xmpp:sm:3' h='0'/></success>",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        fx f;
        epode__sm sm;
        epode__sm_init(&sm, NULL);
        sm.in = 3;
        CHECK_INT(epode__sm_set_resumable(&sm, "prev-1", "juliet@example.com/old"), 0);
        opts o = {.sm = 1, .sm_state = &sm};
        CHECK_INT(setup(&f, &o), 0);
        srv(&f, F_SASL2);
        CHECK(strstr(take(&f), "previd='prev-1'"));
        srv(&f, bad[i]);
        CHECK(!strstr(f.events, "RESUMED"));
        CHECK_INT(f.ended, 1);
        CHECK_INT(f.err, EPODE_EPROTOCOL);
        CHECK(strstr(f.text, "resumed another session"));
        epode__engine_free(f.e);
        epode__sm_drain(&sm, NULL, NULL);
        epode__sm_free(&sm);
    }
    /* the right one, its previd given or not */
    const char *good[] = {" previd='prev-1'", ""};
    for (int i = 0; i < 2; i++) {
        fx f;
        epode__sm sm;
        epode__sm_init(&sm, NULL);
        CHECK_INT(epode__sm_set_resumable(&sm, "prev-1", "juliet@example.com/old"), 0);
        opts o = {.sm = 1, .sm_state = &sm};
        CHECK_INT(setup(&f, &o), 0);
        srv(&f, F_SASL2);
        take(&f);
        char msg[400];
        snprintf(msg, sizeof msg, "<success xmlns='" NS2 "'><authorization-identifier>"
                 "juliet@example.com/old</authorization-identifier><resumed xmlns='urn:xmpp:sm:3'"
                 " h='0'%s/></success>", good[i]);
        CHECK_INT(srv(&f, msg), 0);
        CHECK_STR(f.events, "AUTH RESUMED ");
        CHECK_STR(epode__engine_bound_jid(f.e), "juliet@example.com/old");
        epode__engine_free(f.e);
        epode__sm_drain(&sm, NULL, NULL);
        epode__sm_free(&sm);
    }
}

/* Hostile shapes of SASL2 answers end the stream cleanly, never logged in. */
TEST(sasl2_hostile_answers_end_cleanly)
{
    static const char *const bad[] = {
        "<success xmlns='" NS2 "'/>",
        "<success xmlns='" NS2 "'><authorization-identifier/></success>",
        "<success xmlns='" NS2 "'>" AUTHZ AUTHZ "</success>",
        "<success xmlns='" NS2 "'>" AUTHZ "<additional-data>!!!</additional-data></success>",
        "<success xmlns='" NS2 "'>" AUTHZ "<bound xmlns='urn:xmpp:bind:0'><enabled xmlns="
        "'urn:xmpp:sm:3'/><failed xmlns='urn:xmpp:sm:3'/></bound></success>",
        "<failure xmlns='" NS2 "'/>",
        "<challenge xmlns='" NS2 "'>====</challenge>",
        "<challenge xmlns='" NS2 "'/>",
        "<bogus xmlns='" NS2 "'/>",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        fx f;
        opts o = {.sm = 1};
        CHECK_INT(setup(&f, &o), 0);
        srv(&f, F_SASL2);
        take(&f);
        srv(&f, bad[i]);
        CHECK_INT(f.ended, 1);
        CHECK(!strstr(f.events, "AUTH"));
        epode__engine_free(f.e);
    }
}

TEST(fast_hmac_and_token_helpers)
{
    CHECK_INT(epode__fast_mech_cb("HT-SHA-256-NONE"), EPODE__FAST_CB_NONE);
    CHECK_INT(epode__fast_mech_cb("HT-SHA-256-UNIQ"), EPODE__FAST_CB_UNIQUE);
    CHECK_INT(epode__fast_mech_cb("HT-SHA-256-EXPR"), EPODE__FAST_CB_EXPORTER);
    CHECK_INT(epode__fast_mech_cb("HT-SHA-512-NONE"), EPODE__FAST_CB_UNKNOWN);
    CHECK_INT(epode__fast_mech_cb(NULL), EPODE__FAST_CB_UNKNOWN);
    CHECK_INT(epode__fast_token_ok(TOKEN), 1);
    CHECK_INT(epode__fast_token_ok(""), 0);
    CHECK_INT(epode__fast_token_ok(NULL), 0);
    CHECK_INT(epode__fast_token_ok("abc\njid x@y"), 0);
    CHECK_INT(epode__fast_token_ok("a b"), 0);
    CHECK_INT(epode__fast_token_ok("a\x7f"), 0);
    CHECK_INT(epode__fast_token_ok("caf\xc3\xa9"), 0);
    char big[EPODE__FAST_TOKEN_MAX + 2];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    CHECK_INT(epode__fast_token_ok(big), 0);
    big[EPODE__FAST_TOKEN_MAX] = '\0';
    CHECK_INT(epode__fast_token_ok(big), 1);
    long long t;
    CHECK_INT(epode__fast_parse_time("1970-01-02T00:00:00Z", &t), 0);
    CHECK(t == 86400);
    CHECK_INT(epode__fast_parse_time("1970-01-02T01:00:00.123+01:00", &t), 0);
    CHECK(t == 86400);
    CHECK_INT(epode__fast_parse_time("1970-01-02", &t), EPODE_EINVAL);
    CHECK_INT(epode__fast_parse_time("1970-13-02T00:00:00Z", &t), EPODE_EINVAL);
    CHECK_INT(epode__fast_parse_time("1970-01-02T00:00:00", &t), EPODE_EINVAL);
    /* RFC 4231 test case 2 */
    unsigned char mac[32];
    CHECK_INT(epode__fast_hmac("Jefe", "what do ya want ", (const unsigned char *)"for nothing?", 12, mac), 0);
    static const unsigned char want[4] = {0x5b, 0xdc, 0xc1, 0x46};
    CHECK(memcmp(mac, want, 4) == 0);
}

/* ---- through a connection (public API) ---- */

static int loads;
static int load_cb(epode_conn_t *c, const char *jid, epode_fast_token_t *out, void *user)
{
    (void)c;
    loads++;
    if (strcmp(jid, "juliet@example.com") != 0)
        return 0;
    out->jid = user ? (const char *)user : jid;
    out->mechanism = "HT-SHA-256-NONE";
    out->token = TOKEN;
    out->expiry = NULL;
    return 1;
}

static void store_cb(epode_conn_t *c, const epode_fast_token_t *t, void *user)
{
    (void)c;
    (void)t;
    (void)user;
}

TEST(conn_user_agent_bind2_and_fast_options)
{
    epode_ctx_t *ctx;
    epode_conn_t *c;
    CHECK_INT(epode_global_init(), 0);
    CHECK_INT(epode_ctx_new(NULL, &ctx), 0);
    CHECK_INT(epode_conn_new(ctx, &c), 0);
    const char *id = epode_conn_get_user_agent_id(c);
    CHECK(id && strlen(id) == 36 && id[14] == '4' && strchr("89ab", id[19]));
    CHECK(epode_conn_get_user_agent_id(c) == id); /* stable */
    CHECK_INT(epode_conn_set_user_agent(c, "not-a-uuid", NULL, NULL), EPODE_EINVAL);
    CHECK_INT(epode_conn_set_user_agent(c, "d4b5a1a2-3c4d-4e5f-8a9b-0c1d2e3f4a5g", NULL, NULL),
              EPODE_EINVAL);
    CHECK_INT(epode_conn_set_user_agent(c, "D4B5A1A2-3C4D-4E5F-8A9B-0C1D2E3F4A5B", "bot", "pi"), 0);
    CHECK_STR(epode_conn_get_user_agent_id(c), "D4B5A1A2-3C4D-4E5F-8A9B-0C1D2E3F4A5B");
    CHECK_INT(epode_conn_set_fast(c, 1, load_cb, NULL, NULL), EPODE_EINVAL);
    CHECK_INT(epode_conn_set_fast(c, 1, NULL, store_cb, NULL), EPODE_EINVAL);
    CHECK_INT(epode_conn_set_fast(c, 1, load_cb, store_cb, NULL), 0);
    CHECK_INT(epode_conn_set_fast(c, 0, NULL, NULL, NULL), 0);
    CHECK_INT(epode_conn_set_bind2(c, 1, "", 0), EPODE_EINVAL);
    CHECK_INT(epode_conn_set_bind2(c, 1, "bot", EPODE_BIND2_CARBONS), 0);
    CHECK_INT(epode_conn_set_sasl2(c, 0), 0);
    CHECK_INT(epode_conn_set_sasl2(NULL, 0), EPODE_EINVAL);
    CHECK(epode_conn_get_user_agent_id(NULL) == NULL);
    epode_conn_free(c);
    epode_ctx_free(ctx);
}

/* A connection logging in with SASL2 + Bind2 (ANONYMOUS, no TLS); `jid`
 * of a stored token (NULL: the account's). */
static int conn_sasl2(scripted *s, const char *token_jid, char *auth_text, size_t size)
{
    memset(s, 0, sizeof *s);
    epode__transport *client;
    loads = 0;
    if (epode_global_init() < 0 || epode_ctx_new(NULL, &s->ctx) < 0 ||
        epode_conn_new(s->ctx, &s->conn) < 0 ||
        epode_conn_set_jid(s->conn, "juliet@example.com") < 0 ||
        epode_conn_set_tls(s->conn, EPODE_TLS_DISABLED) < 0 ||
        epode_conn_set_mechanisms(s->conn, "ANONYMOUS") < 0 ||
        epode_conn_set_fast(s->conn, 1, load_cb, store_cb, (void *)token_jid) < 0 ||
        epode_conn_set_bind2(s->conn, 1, "bot", EPODE_BIND2_CARBONS) < 0 ||
        epode_conn_add_event_cb(s->conn, scripted__on_event, s, NULL) < 0 ||
        epode__memory_pair(NULL, &client, &s->server) < 0 ||
        epode_parser_new(NULL, scripted__on_client, s, &s->parser) < 0)
        return -1;
    if (epode__conn_start_over(s->conn, client) < 0) {
        epode__transport_free(client);
        return -1;
    }
    scripted_pump(s);
    scripted_send(s, SCRIPTED_HDR "<stream:features><authentication xmlns='" NS2 "'>"
                     "<mechanism>ANONYMOUS</mechanism><mechanism>HT-SHA-256-NONE</mechanism>"
                     INLINE_ALL "</authentication></stream:features>");
    epode_stanza_t *auth = scripted_next(s);
    if (!auth || strcmp(epode_stanza_get_name(auth), "authenticate") != 0)
        return -1;
    char *t;
    if (epode_stanza_to_text(auth, 0, &t, NULL) == 0) {
        snprintf(auth_text, size, "%s", t);
        epode_free(t);
    }
    scripted_send(s, "<success xmlns='" NS2 "'><authorization-identifier>juliet@example.com/bot~1"
                     "</authorization-identifier>" BOUND "</success>");
    return epode_conn_is_ready(s->conn) ? 0 : -1;
}

TEST(conn_logs_in_with_sasl2_and_bind2_and_never_sends_a_token_in_clear)
{
    scripted s;
    char auth[2048] = "";
    CHECK_INT(conn_sasl2(&s, NULL, auth, sizeof auth), 0);
    CHECK_STR(epode_conn_bound_jid(s.conn), "juliet@example.com/bot~1");
    CHECK(strstr(epode_conn_security(s.conn), "SASL2 ANONYMOUS"));
    CHECK_INT(loads, 1); /* asked at connect */
    CHECK(strstr(auth, "mechanism=\"ANONYMOUS\""));
    CHECK(strstr(auth, "<tag>bot</tag>"));
    CHECK(strstr(auth, "<enable xmlns=\"urn:xmpp:carbons:2\"/>"));
    CHECK(strstr(auth, "<user-agent id=\""));
    CHECK(strstr(auth, "<software>epode</software>"));
    CHECK(!strstr(auth, "HT-SHA")); /* a token, but no TLS */
    CHECK(!strstr(auth, "request-token"));
    scripted_free(&s);
}

static char conn_log[4096];
static void conn_log_cb(void *user, epode_log_level_t level, const char *area, const char *msg)
{
    (void)user;
    (void)level;
    (void)area;
    strncat(conn_log, msg, sizeof conn_log - strlen(conn_log) - 2);
    strcat(conn_log, "\n");
}

TEST(conn_ignores_a_stored_token_of_another_domain_or_account)
{
    const char *others[] = {"juliet@evil.example", "romeo@example.com", "not a jid"};
    for (size_t i = 0; i < 3; i++) {
        scripted s;
        conn_log[0] = '\0';
        loads = 0;
        memset(&s, 0, sizeof s);
        epode__transport *client;
        CHECK_INT(epode_global_init(), 0);
        CHECK_INT(epode_ctx_new(NULL, &s.ctx), 0);
        epode_ctx_set_log(s.ctx, EPODE_LOG_WARN, conn_log_cb, NULL);
        CHECK_INT(epode_conn_new(s.ctx, &s.conn), 0);
        CHECK_INT(epode_conn_set_jid(s.conn, "juliet@example.com"), 0);
        CHECK_INT(epode_conn_set_tls(s.conn, EPODE_TLS_DISABLED), 0);
        CHECK_INT(epode_conn_set_mechanisms(s.conn, "ANONYMOUS"), 0);
        CHECK_INT(epode_conn_set_fast(s.conn, 1, load_cb, store_cb, (void *)others[i]), 0);
        CHECK_INT(epode__memory_pair(NULL, &client, &s.server), 0);
        CHECK_INT(epode_parser_new(NULL, scripted__on_client, &s, &s.parser), 0);
        CHECK_INT(epode__conn_start_over(s.conn, client), 0);
        scripted_pump(&s);
        CHECK_INT(loads, 1); /* asked once, at this connect */
        CHECK(strstr(conn_log, "ignored a FAST token stored for"));
        CHECK(strstr(conn_log, others[i]));
        scripted_free(&s);
    }
}

static int given_back;
static void count_given_back(epode_conn_t *c, int acked, const char *id, const char *xml,
                             size_t len, void *user)
{
    (void)c, (void)id, (void)xml, (void)len, (void)user;
    if (!acked)
        given_back++;
}

/* Issue-16 review: a token kept in memory (no store) must not survive
 * epode_conn_set_jid() to another account — the next login would present
 * it to another account's server — nor may the old account's resumable
 * session, nor a user-agent id made for it. The same account (another
 * resource, another case) keeps them. */
TEST(conn_set_jid_to_another_account_forgets_its_token_session_and_made_ua_id)
{
    scripted s;
    char auth[2048] = "";
    CHECK_INT(conn_sasl2(&s, NULL, auth, sizeof auth), 0);
    CHECK_INT(epode_conn_set_ack_cb(s.conn, count_given_back, NULL), 0);
    CHECK_INT(epode_conn_close(s.conn), 0);
    scripted_pump(&s);
    scripted_send(&s, "</stream:stream>");
    CHECK(!epode_conn_is_ready(s.conn));
    struct conn_modern *m = s.conn->modern;
    CHECK(m && m->fast_token); /* loaded at connect, kept in memory */
    CHECK_STR(m->fast_jid, "juliet@example.com");
    /* from now on in memory only */
    CHECK_INT(epode_conn_set_fast(s.conn, 1, NULL, NULL, NULL), 0);
    const char *made = epode_conn_get_user_agent_id(s.conn);
    CHECK(made);
    char made_copy[40];
    snprintf(made_copy, sizeof made_copy, "%s", made);
    CHECK_INT(epode__sm_set_resumable(&s.conn->sm_state, "sess-1", "juliet@example.com/bot~1"), 0);
    CHECK_INT(epode__sm_push(&s.conn->sm_state, "m1", "<message/>", 10, 0), 0);
    /* the same account: everything stays */
    given_back = 0;
    CHECK_INT(epode_conn_set_jid(s.conn, "Juliet@example.com/phone"), 0);
    CHECK(m->fast_token);
    CHECK(s.conn->sm_state.resumable);
    CHECK_STR(epode_conn_get_user_agent_id(s.conn), made_copy);
    CHECK_INT(given_back, 0);
    /* another account */
    CHECK_INT(epode_conn_set_jid(s.conn, "romeo@example.com"), 0);
    CHECK(m->fast_token == NULL && m->fast_jid == NULL);
    CHECK(!s.conn->sm_state.resumable && s.conn->sm_state.id == NULL);
    CHECK_INT((int)epode__sm_pending(&s.conn->sm_state), 0);
    CHECK_INT(given_back, 1); /* the old session's unconfirmed stanza, given back */
    const char *fresh = epode_conn_get_user_agent_id(s.conn);
    CHECK(fresh && strcmp(fresh, made_copy) != 0);
    /* an id the application gave stays: it is the application's to manage */
    CHECK_INT(epode_conn_set_user_agent(s.conn, "d4b5a1a2-3c4d-4e5f-8a9b-0c1d2e3f4a5b", NULL, NULL), 0);
    CHECK_INT(epode_conn_set_jid(s.conn, "juliet@evil.example"), 0);
    CHECK_STR(epode_conn_get_user_agent_id(s.conn), "d4b5a1a2-3c4d-4e5f-8a9b-0c1d2e3f4a5b");
    scripted_free(&s);
}

/* A kept token whose JID is not the connection's (however it got there)
 * is forgotten at connect, never handed to the engine. */
TEST(conn_forgets_a_kept_token_of_another_jid_at_connect)
{
    scripted s;
    char auth[2048] = "";
    CHECK_INT(conn_sasl2(&s, NULL, auth, sizeof auth), 0);
    CHECK_INT(epode_conn_close(s.conn), 0);
    scripted_pump(&s);
    scripted_send(&s, "</stream:stream>");
    struct conn_modern *m = s.conn->modern;
    CHECK(m && m->fast_token);
    CHECK_INT(epode_conn_set_fast(s.conn, 1, NULL, NULL, NULL), 0);
    epode__dealloc(NULL, m->fast_jid);
    m->fast_jid = epode__strdup(NULL, "romeo@example.com");
    conn_log[0] = '\0';
    epode_ctx_set_log(s.ctx, EPODE_LOG_WARN, conn_log_cb, NULL);
    epode__transport *client;
    epode__transport_free(s.server);
    CHECK_INT(epode__memory_pair(NULL, &client, &s.server), 0);
    CHECK_INT(epode__conn_start_over(s.conn, client), 0);
    CHECK(m->fast_token == NULL);
    CHECK(strstr(conn_log, "forgot the FAST token of romeo@example.com"));
    scripted_free(&s);
}

TEST(conn_with_a_resource_binds_it_exactly_unless_bind2_is_asked_for)
{
    scripted s;
    memset(&s, 0, sizeof s);
    epode__transport *client;
    CHECK_INT(epode_global_init(), 0);
    CHECK_INT(epode_ctx_new(NULL, &s.ctx), 0);
    CHECK_INT(epode_conn_new(s.ctx, &s.conn), 0);
    CHECK_INT(epode_conn_set_jid(s.conn, "juliet@example.com/balcony"), 0);
    CHECK_INT(epode_conn_set_tls(s.conn, EPODE_TLS_DISABLED), 0);
    CHECK_INT(epode_conn_set_mechanisms(s.conn, "ANONYMOUS"), 0);
    CHECK_INT(epode__memory_pair(NULL, &client, &s.server), 0);
    CHECK_INT(epode_parser_new(NULL, scripted__on_client, &s, &s.parser), 0);
    CHECK_INT(epode__conn_start_over(s.conn, client), 0);
    scripted_pump(&s);
    scripted_send(&s, SCRIPTED_HDR "<stream:features><authentication xmlns='" NS2 "'>"
                      "<mechanism>ANONYMOUS</mechanism>" INLINE_ALL "</authentication></stream:features>");
    epode_stanza_t *auth = scripted_next(&s);
    CHECK(auth && strcmp(epode_stanza_get_name(auth), "authenticate") == 0);
    CHECK(!epode_stanza_find_child(auth, "bind", "urn:xmpp:bind:0"));
    scripted_send(&s, "<success xmlns='" NS2 "'><authorization-identifier>juliet@example.com"
                      "</authorization-identifier></success><stream:features><bind "
                      "xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features>");
    const char *bind = scripted_next_text(&s);
    CHECK(bind && strstr(bind, "<resource>balcony</resource>"));
    scripted_free(&s);
}

/* ---- examples/common/fast_file.c (epode-send --fast-token-file, Lua) ---- */

#define load_cb ff_load_cb
#define store_cb ff_store_cb
#include "../../examples/common/fast_file.c"
#undef load_cb
#undef store_cb

#include <fcntl.h>
#include <sys/stat.h>

/* Runs fast_file_use(path) with stderr caught in `said`. */
static fast_file_t *ff_open(epode_conn_t *c, const char *path, char *err, size_t errlen,
                            char *said, size_t saidlen)
{
    fflush(stderr);
    int saved = dup(2);
    FILE *cap = tmpfile();
    dup2(fileno(cap), 2);
    err[0] = '\0';
    fast_file_t *ff = fast_file_use(c, path, 1, err, errlen);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    rewind(cap);
    size_t n = fread(said, 1, saidlen - 1, cap);
    said[n] = '\0';
    fclose(cap);
    return ff;
}

static void ff_write(const char *path, const char *data, size_t len, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd >= 0) {
        if (write(fd, data, len) != (ssize_t)len)
            perror("write");
        close(fd);
    }
    chmod(path, mode);
}

/* Issue-16 review: a directory is no token file; one others can read is
 * used with a warning; a NUL or a control character inside makes it no
 * token file; a token with a newline is never written (it would inject
 * lines, and keys, into the file). */
TEST(fast_file_checks_what_it_reads_and_writes)
{
    char dir[] = "/tmp/epode-fastfile-XXXXXX";
    CHECK(mkdtemp(dir));
    char path[128], err[300], said[1024];
    epode_ctx_t *ctx;
    epode_conn_t *c;
    CHECK_INT(epode_global_init(), 0);
    CHECK_INT(epode_ctx_new(NULL, &ctx), 0);
    CHECK_INT(epode_conn_new(ctx, &c), 0);
    CHECK_INT(epode_conn_set_jid(c, "juliet@example.com"), 0);
    /* a directory */
    CHECK(!ff_open(c, dir, err, sizeof err, said, sizeof said));
    CHECK(strstr(err, "is not a regular file"));
    /* readable by others: used, with a warning */
    static const char good[] = "user-agent d4b5a1a2-3c4d-4e5f-8a9b-0c1d2e3f4a5b\n"
                               "jid juliet@example.com\nmechanism HT-SHA-256-NONE\nexpiry -\n"
                               "token " TOKEN "\n";
    snprintf(path, sizeof path, "%s/world", dir);
    ff_write(path, good, sizeof good - 1, 0644);
    fast_file_t *ff = ff_open(c, path, err, sizeof err, said, sizeof said);
    CHECK(ff);
    CHECK(strstr(said, "can be read by others (mode 644)"));
    CHECK_STR(ff->token, TOKEN);
    fast_file_free(ff);
    /* private: no warning */
    chmod(path, 0600);
    ff = ff_open(c, path, err, sizeof err, said, sizeof said);
    CHECK(ff);
    CHECK_STR(said, "");
    fast_file_free(ff);
    /* a NUL inside the token line, a control character, no newline at the end */
    static const char nul[] = "token abc\0def\njid a@b\nmechanism X\n";
    ff_write(path, nul, sizeof nul - 1, 0600);
    CHECK(!ff_open(c, path, err, sizeof err, said, sizeof said));
    CHECK(strstr(err, "is not a FAST token file"));
    ff_write(path, "\x01\x02garbage\n", 10, 0600);
    CHECK(!ff_open(c, path, err, sizeof err, said, sizeof said));
    static const char tail[] = "jid juliet@example.com\nmechanism HT-SHA-256-NONE\ntoken abc";
    ff_write(path, tail, sizeof tail - 1, 0600);
    ff = ff_open(c, path, err, sizeof err, said, sizeof said);
    CHECK(ff);
    CHECK_STR(ff->token, "abc");
    /* the store: a token with a newline is not written; a good one is */
    epode_fast_token_t t = {.jid = "juliet@example.com", .mechanism = "HT-SHA-256-NONE",
                            .token = "abc\njid victim@elsewhere.example", .expiry = NULL};
    fflush(stderr);
    ff_store_cb(c, &t, ff);
    t.token = "secret-token:new";
    t.expiry = "2026-12-27T12:00:00Z\nbogus";
    ff_store_cb(c, &t, ff);
    CHECK_STR(ff->token, "abc"); /* unchanged */
    t.expiry = "2026-12-27T12:00:00Z";
    ff_store_cb(c, &t, ff);
    fast_file_free(ff);
    ff = ff_open(c, path, err, sizeof err, said, sizeof said);
    CHECK(ff);
    CHECK_STR(ff->token, "secret-token:new");
    CHECK_STR(ff->expiry, "2026-12-27T12:00:00Z");
    struct stat st;
    CHECK_INT(stat(path, &st), 0);
    CHECK_INT((int)(st.st_mode & 0777), 0600);
    fast_file_free(ff);
    epode_conn_free(c);
    epode_ctx_free(ctx);
    unlink(path);
    snprintf(path, sizeof path, "%s/world", dir);
    unlink(path);
    rmdir(dir);
}

TEST_MAIN
