/* tests/fuzz/fuzz_parser.c — the stream parser fed arbitrary bytes in
 * arbitrary chunks. The first byte picks the chunk size, whether the
 * callback resets on some element, and (top bit) whether the next byte
 * picks low limits, so that stanzas get skipped. Every stanza reported
 * must serialize and parse back to an equal tree; every skipped one must
 * come as a small summary with the limit it broke. Aborts on a broken
 * invariant. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <epode.h>

static epode_parser_t *g_parser;
static int g_reset_on_features;

/* Serializes el and parses it back: it must come back equal. */
static void round_trip(epode_stanza_t *el)
{
    char *text;
    size_t len;
    if (epode_stanza_to_text(el, 0, &text, &len) != 0)
        abort();
    epode_stanza_t *back;
    epode_stream_cond_t cond;
    int rc = epode_stanza_from_text(NULL, text, len, &back, &cond);
    /* A stanza the parser accepted must survive serialization, except
     * when it only fit the limits thanks to namespace declarations it
     * inherited (serialized standalone it grows), so allow ELIMIT. */
    if (rc == EPODE_ELIMIT) {
        epode_free(text);
        return;
    }
    if (rc != 0 || !epode_stanza_equal(el, back))
        abort();
    epode_stanza_unref(back);
    epode_free(text);
}

static void check_summary(epode_stanza_t *el)
{
    epode_parser_limit_t limit = epode_parser_skipped_limit(g_parser);
    if (!el || !epode_stanza_get_name(el) || epode_stanza_first_child(el))
        abort();
    if (limit != EPODE_LIMIT_STANZA_BYTES && limit != EPODE_LIMIT_DEPTH &&
        limit != EPODE_LIMIT_ATTRS && limit != EPODE_LIMIT_TEXT_BYTES)
        abort();
    static const char *const keep[] = {"from", "to", "id", "type"};
    for (size_t i = 0; i < 4; i++) {
        const char *v = epode_stanza_get_attr(el, keep[i]);
        if (v && strlen(v) > 3071)
            abort();
    }
    if (epode_stanza_get_attr(el, "xml:lang"))
        abort();
}

static void on_ev(void *user, epode_parser_event_t ev, epode_stanza_t *el)
{
    (void)user;
    if (ev == EPODE_PARSER_SKIPPED) {
        check_summary(el);
        round_trip(el);
    } else if (ev == EPODE_PARSER_STANZA) {
        if (epode_parser_skipped_limit(g_parser) != 0)
            abort();
        round_trip(el);
    } else {
        return;
    }
    if (g_reset_on_features && strcmp(epode_stanza_get_name(el), "features") == 0)
        epode_parser_reset(g_parser);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t chunk = (data[0] & 0x3f) + 1;
    g_reset_on_features = data[0] & 0x40;
    int low = data[0] & 0x80;
    data++, size--;
    unsigned sel = 0;
    if (low) {
        if (size < 1)
            return 0;
        sel = data[0];
        data++, size--;
    }
    if (epode_parser_new(NULL, on_ev, NULL, &g_parser) != 0)
        return 0;
    if (low) {
        /* depth 1-4, attributes 0-3 (as 1-4), text 4-256 bytes, stanza
         * 512-4096 bytes (the stream header must still fit) */
        epode_parser_set_limit(g_parser, EPODE_LIMIT_DEPTH, 1 + (sel & 3));
        epode_parser_set_limit(g_parser, EPODE_LIMIT_ATTRS, 1 + ((sel >> 2) & 3));
        epode_parser_set_limit(g_parser, EPODE_LIMIT_TEXT_BYTES, (size_t)4 << (2 * ((sel >> 4) & 3)));
        epode_parser_set_limit(g_parser, EPODE_LIMIT_STANZA_BYTES, (size_t)512 << ((sel >> 6) & 3));
    } else {
        epode_parser_set_limit(g_parser, EPODE_LIMIT_STANZA_BYTES, 8192);
    }
    size_t off = 0;
    while (off < size) {
        size_t n = size - off < chunk ? size - off : chunk;
        long rc = epode_parser_feed(g_parser, (const char *)data + off, n);
        if (epode_parser_skipped_limit(g_parser) != 0)
            abort(); /* only during the event */
        if (rc < 0) {
            if (epode_parser_condition(g_parser) == EPODE_STREAM_NONE)
                abort();
            break;
        }
        if ((size_t)rc > n)
            abort();
        off += n - (size_t)rc; /* re-feed what a reset left over */
        if (rc > 0 && n == (size_t)rc && chunk == n)
            off += 1; /* guarantee progress */
    }
    epode_parser_finish(g_parser);
    epode_parser_free(g_parser);
    return 0;
}
