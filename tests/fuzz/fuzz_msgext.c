/* tests/fuzz/fuzz_msgext.c — today's message features read from
 * arbitrary bytes: whatever epode_stanza_from_text() makes of them, if
 * it is a <message/>, gets a view and every reader of epode/msgext.h and
 * messaging.h, with the promises they make checked (a fallback range
 * lies inside the body, reactions are distinct and bounded, ids are
 * non-empty); the first bytes also drive the builders. Never a crash, a
 * leak or a broken promise. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <epode.h>

static size_t sink;

static void touch(const char *s)
{
    if (s) {
        if (!*s)
            abort(); /* every id msgext hands out is non-empty */
        sink += strlen(s);
    }
}

static void read_all(const epode_message_t *m)
{
    long long ms;
    const char *from, *reason, *to;
    if (epode_message_delay(m, &ms, &from, &reason) == 0) {
        char buf[EPODE_TIME_BUFSIZE];
        long long back;
        if (epode_time_format(ms, buf, sizeof buf) == 0 &&
            (epode_time_parse(buf, &back) != 0 || back != ms))
            abort(); /* a parsed stamp formats and parses back to itself */
    }
    touch(epode_message_replace_id(m));
    touch(epode_message_retract_id(m));
    touch(epode_message_retracted(m, &ms));
    touch(epode_message_occupant_id(m));
    touch(epode_message_ref_id(m));
    touch(epode_message_reply_id(m, &to));
    const char *rid = epode_message_reactions_id(m);
    size_t n = epode_message_reaction_count(m);
    if (!rid && n)
        abort();
    if (n > EPODE_REACTIONS_MAX)
        abort();
    for (size_t i = 0; i < n; i++) {
        const char *r = epode_message_reaction_at(m, i);
        if (!r || !*r || strlen(r) > EPODE_REACTION_MAX_BYTES)
            abort();
        for (size_t k = 0; k < i; k++)
            if (strcmp(r, epode_message_reaction_at(m, k)) == 0)
                abort(); /* distinct */
    }
    if (epode_message_reaction_at(m, n))
        abort();
    const char *body = epode_message_body(m, NULL);
    size_t a, b;
    static const char *const fors[] = {EPODE_NS_REPLY, EPODE_NS_RETRACT, "urn:x"};
    for (int i = 0; i < 3; i++)
        if (epode_message_fallback(m, fors[i], &a, &b) == 0 &&
            (!body || a > b || b > strlen(body)))
            abort();
    const char *mid;
    if (epode_message_marker(m, &mid) != EPODE_MARKER_NONE)
        touch(mid);
    sink += (size_t)epode_message_is_markable(m) + epode_message_hints(m);
    sink += (size_t)epode_message_same_sender(m, "a@b/c", NULL, EPODE_SENDER_AUTO);
    sink += (size_t)epode_message_same_sender(m, "a@b/c", "x", EPODE_SENDER_OCCUPANT);
}

static void build_from(const uint8_t *data, size_t size)
{
    char text[64];
    size_t n = size < sizeof text - 1 ? size : sizeof text - 1;
    memcpy(text, data, n);
    text[n] = '\0';
    epode_stanza_t *st = NULL;
    const char *set[] = {text, "x"};
    if (epode_message_build_reactions("chat", "a@b", "id", set, 2, &st) == 0)
        epode_stanza_unref(st);
    st = NULL;
    if (epode_message_build_reply("chat", "a@b", text, NULL, "id", text, &st) == 0) {
        epode_message_t *v;
        size_t a, b;
        if (epode_message_view_new(NULL, st, &v) == 0) {
            /* the quote we wrote is exactly what the fallback covers */
            if (epode_message_fallback(v, EPODE_NS_REPLY, &a, &b) != 0 ||
                strcmp(epode_message_body(v, NULL) + b, text) != 0)
                abort();
            epode_message_view_free(v);
        }
        epode_stanza_unref(st);
    }
    long long ms;
    if (epode_time_parse(text, &ms) == 0) {
        char buf[EPODE_TIME_BUFSIZE];
        if (epode_time_format(ms, buf, sizeof buf) != 0 && ms >= -62135596800000LL &&
            ms <= 253402300799999LL)
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int init;
    if (!init) {
        epode_global_init();
        init = 1;
    }
    build_from(data, size);
    epode_stanza_t *st;
    if (epode_stanza_from_text(NULL, (const char *)data, size, &st, NULL) != 0)
        return 0;
    epode_message_t *v;
    if (epode_message_view_new(NULL, st, &v) == 0) {
        read_all(v);
        epode_message_view_free(v);
    }
    epode_stanza_unref(st);
    return 0;
}
