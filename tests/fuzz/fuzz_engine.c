/* tests/fuzz/fuzz_engine.c — the session engine fed arbitrary server
 * bytes in arbitrary chunks, from every starting state a real login
 * passes through (fresh stream, after STARTTLS, SASL in progress, bound):
 * it must never crash, leak or keep going after it has ended, and must
 * never report READY without the server having completed bind. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <epode.h>

#include "stream/engine.h"

#define SHDR "<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>"

static int ended, ready;

static void ev(void *u, int e) { (void)u; if (e == EPODE__ENG_READY) ready = 1; }
static void stz(void *u, epode_stanza_t *s) { (void)u; (void)s; }
static void end_cb(void *u, int err, int reason, const char *c, const char *t)
{
    (void)u, (void)err, (void)reason, (void)c, (void)t;
    ended++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int init;
    if (!init) {
        epode_global_init();
        init = 1;
    }
    if (size < 1)
        return 0;
    unsigned prelude = data[0] & 3;
    size_t chunk = (size_t)(data[0] >> 2) + 1;
    data++, size--;
    ended = ready = 0;
    epode__engine_config cfg = {.domain = "example.com", .localpart = "u", .password = "p",
                                .tls_mode = EPODE_TLS_REQUIRED};
    epode__engine_cbs cbs = {ev, stz, end_cb, NULL, NULL, NULL};
    epode__engine *e;
    if (epode__engine_new(NULL, &cfg, &cbs, NULL, &e) != 0)
        return 0;
    epode__tls_facts tls = {.version = 12, .key_bits = 128, .tls_unique_len = 12};
    epode__engine_start(e, prelude ? &tls : NULL);
    const char *script[] = {
        "",
        SHDR "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>"
             "<mechanism>PLAIN</mechanism></mechanisms></stream:features>",
        SHDR "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>"
             "<mechanism>SCRAM-SHA-1</mechanism></mechanisms></stream:features>",
        SHDR "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>"
             "<mechanism>PLAIN</mechanism></mechanisms></stream:features>"
             "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>" SHDR
             "<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features>",
    };
    epode__engine_recv(e, script[prelude], strlen(script[prelude]));
    for (size_t off = 0; off < size && !epode__engine_has_ended(e); off += chunk) {
        size_t n = size - off < chunk ? size - off : chunk;
        size_t out;
        epode__engine_output(e, &out);
        epode__engine_consume(e, out);
        if (epode__engine_recv(e, (const char *)data + off, n) < 0 && !epode__engine_has_ended(e))
            abort(); /* an error must end the engine */
    }
    if (ended > 1)
        abort(); /* ended is reported exactly once */
    if (ready && !epode__engine_bound_jid(e))
        abort();
    epode__engine_free(e);
    return 0;
}
