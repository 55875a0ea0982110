/* tests/fuzz/fuzz_sasl2.c — the engine's SASL2/Bind2/FAST answers
 * (lib/stream/sasl2.c and engine.c's SASL2 part) fed arbitrary server
 * bytes after <authenticate/>: <success/> with its authorization
 * identifier, Bind2 result, inline SM answers and FAST token,
 * <continue/>, <failure/>, <challenge/>, garbage. It must never crash,
 * leak or misbehave, and whatever the server sends:
 * - with a FAST token in use the login never succeeds (the server's
 *   proof is an HMAC of a token no input knows);
 * - a login that succeeds is for our account (juliet@example.com);
 * - no FAST token handed to the store appears in the XML log, however
 *   the server spells it and however its bytes are cut into reads.
 *
 * Input: byte 0 chooses the set-up (bit 0 authenticate with a FAST token,
 * bit 1 stream management wanted, bit 2 a resumable session to resume
 * inline, bits 3-7 the size of each read, 0: all at once); the rest is
 * what the server sends. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <epode.h>

#include "stream/engine.h"
#include "stream/sm.h"

static int ready, authenticated, tokens;
static char token[2048];
static char logbuf[1 << 16];
static size_t loglen;

static void ev(void *u, int e)
{
    (void)u;
    if (e == EPODE__ENG_READY || e == EPODE__ENG_RESUMED)
        ready = 1;
    if (e == EPODE__ENG_AUTHENTICATED)
        authenticated = 1;
}
static void stz(void *u, epode_stanza_t *st) { (void)u; (void)st; }
static void end_cb(void *u, int err, int reason, const char *cond, const char *text)
{
    (void)u; (void)err; (void)reason; (void)cond; (void)text;
}
static void tok(void *u, const char *t, const char *m, const char *x)
{
    (void)u; (void)m; (void)x;
    tokens += t != NULL;
    if (t && strlen(t) < sizeof token)
        strcpy(token, t);
}
static void lg(void *u, int out, const char *d, size_t n)
{
    (void)u;
    /* the reads up to the one that carried the token (what the server
     * writes after it may repeat it: that is the server's doing) */
    if (!out && !token[0] && loglen + n < sizeof logbuf) {
        memcpy(logbuf + loglen, d, n);
        loglen += n;
    }
}

#define FEATURES "<?xml version='1.0'?><stream:stream xmlns='jabber:client' " \
    "xmlns:stream='http://etherx.jabber.org/streams' from='example.com' id='s1' version='1.0'>" \
    "<stream:features><authentication xmlns='urn:xmpp:sasl:2'><mechanism>PLAIN</mechanism>" \
    "<inline><bind xmlns='urn:xmpp:bind:0'><inline><feature var='urn:xmpp:sm:3'/>" \
    "<feature var='urn:xmpp:carbons:2'/></inline></bind><sm xmlns='urn:xmpp:sm:3'/>" \
    "<fast xmlns='urn:xmpp:fast:0'><mechanism>HT-SHA-256-NONE</mechanism></fast></inline>" \
    "</authentication></stream:features>"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int init;
    if (!init) {
        if (epode_global_init() < 0)
            abort();
        init = 1;
    }
    if (size < 1)
        return 0;
    unsigned mode = data[0];
    ready = authenticated = tokens = 0;
    token[0] = '\0';
    loglen = 0;
    epode__sm sm;
    epode__sm_init(&sm, NULL);
    if (mode & 4) {
        sm.requested = sm.enabled = 1;
        sm.in = 2;
        epode__sm_set_resumable(&sm, "prev", "juliet@example.com/old");
        epode__sm_push(&sm, "m1", "<message id='m1'/>", 18, 0);
        sm.out = 1;
    }
    epode__engine_config cfg = {
        .domain = "example.com", .localpart = "juliet", .password = "r0meo!",
        .tls_mode = EPODE_TLS_DIRECT, .sm = (mode & 2) != 0, .sm_state = &sm, .sm_resend = 1,
        .sasl2 = 1, .ua_id = "d4b5a1a2-3c4d-4e5f-8a9b-0c1d2e3f4a5b", .fast_request = 1,
        .fast_token = (mode & 1) ? "secret-token:fuzz" : NULL,
        .fast_mechanism = (mode & 1) ? "HT-SHA-256-NONE" : NULL, .fast_token_cb = tok,
        .fast_token_jid = "juliet@example.com",
        .bind2_carbons = 1,
    };
    epode__engine_cbs cbs = {ev, stz, end_cb, lg, NULL, NULL};
    epode__engine *e;
    if (epode__engine_new(NULL, &cfg, &cbs, NULL, &e) < 0)
        abort();
    epode__tls_facts facts = {.version = 13, .key_bits = 256, .verified = 1};
    epode__engine_start(e, &facts);
    epode__engine_recv(e, FEATURES, sizeof FEATURES - 1);
    size_t n;
    epode__engine_output(e, &n);
    epode__engine_consume(e, n);
    loglen = 0;
    size_t chunk = mode >> 3 ? mode >> 3 : size;
    for (size_t at = 1; at < size && !epode__engine_has_ended(e); at += chunk)
        epode__engine_recv(e, (const char *)data + at, size - at < chunk ? size - at : chunk);
    if (tokens && strlen(token) >= 8 && memmem(logbuf, loglen, token, strlen(token)))
        abort(); /* the token is in the XML log */
    if ((mode & 1) && (authenticated || ready))
        abort(); /* a FAST success no input can prove */
    const char *jid = epode__engine_bound_jid(e);
    if (ready && jid && !epode_jid_str_equal(jid, "juliet@example.com", 1))
        abort(); /* logged in as somebody else */
    epode__engine_free(e);
    epode__sm_drain(&sm, NULL, NULL);
    epode__sm_free(&sm);
    return 0;
}
