/* tests/unit/test_util.c — the util layer: error codes and their names,
 * the version string, strict UTF-8 decoding and the XML character and
 * name rules, the growable buffer (including allocation failure), the
 * allocator hooks and blocks freed with epode_free(), random ids. */
#include "test.h"

#include <limits.h>
#include <stdalign.h>
#include <stddef.h>
#include <stdint.h>

#include <epode.h>

#include "util/alloc.h"
#include "util/buf.h"
#include "util/rand.h"
#include "util/utf8.h"

/* ---- a counting allocator that can fail ------------------------------- */

/* Counts calls, successful allocations and frees, and the blocks still
 * alive. fail_at N fails the Nth call (1-based) only; fail_from N fails
 * the Nth and every later one; 0 disables either. */
typedef struct counting {
    long calls, mallocs, reallocs, frees, live;
    long fail_at, fail_from;
    void *last_freed;
} counting;

static int should_fail(counting *c)
{
    c->calls++;
    return (c->fail_at && c->calls == c->fail_at) || (c->fail_from && c->calls >= c->fail_from);
}

static void *c_malloc(size_t size, void *user)
{
    counting *c = user;
    if (should_fail(c))
        return NULL;
    void *p = malloc(size);
    if (p) {
        c->mallocs++;
        c->live++;
    }
    return p;
}

static void *c_realloc(void *ptr, size_t size, void *user)
{
    counting *c = user;
    if (should_fail(c))
        return NULL;
    void *p = realloc(ptr, size);
    if (p) {
        c->reallocs++;
        if (!ptr)
            c->live++;
    }
    return p;
}

static void c_free(void *ptr, void *user)
{
    counting *c = user;
    if (!ptr)
        return;
    c->frees++;
    c->live--;
    c->last_freed = ptr;
    free(ptr);
}

#define COUNTING_MEM(c) {c_malloc, c_realloc, c_free, &(c)}

/* ---- error codes ---------------------------------------------------- */

static const struct {
    int code;
    const char *name;
} expected_errors[] = {
    {EPODE_ENOMEM, "NOMEM"}, {EPODE_EINVAL, "INVAL"},       {EPODE_EJID, "JID"},
    {EPODE_EXML, "XML"},     {EPODE_ELIMIT, "LIMIT"},       {EPODE_ENOTFOUND, "NOTFOUND"},
    {EPODE_ESTATE, "STATE"}, {EPODE_ERANDOM, "RANDOM"},     {EPODE_ERANGE, "RANGE"},
};
#define N_EXPECTED_ERRORS (sizeof expected_errors / sizeof expected_errors[0])

TEST(errors_codes_are_stable_negative_numbers)
{
    /* Codes are ABI: they must never be renumbered. */
    CHECK_INT(EPODE_ENOMEM, -1);
    CHECK_INT(EPODE_EINVAL, -2);
    CHECK_INT(EPODE_EJID, -3);
    CHECK_INT(EPODE_EXML, -4);
    CHECK_INT(EPODE_ELIMIT, -5);
    CHECK_INT(EPODE_ENOTFOUND, -6);
    CHECK_INT(EPODE_ESTATE, -7);
    CHECK_INT(EPODE_ERANDOM, -8);
    CHECK_INT(EPODE_ERANGE, -9);
}

TEST(err_name_names_every_code_without_prefix)
{
    for (size_t i = 0; i < N_EXPECTED_ERRORS; i++)
        CHECK_STR(epode_err_name(expected_errors[i].code), expected_errors[i].name);
}

/* Every code of the list, in list order (the list only grows at its end). */
static const int all_codes[] = {
#define X(name, code, text) code,
    EPODE_ERRORS(X)
#undef X
};
#define N_CODES (sizeof all_codes / sizeof all_codes[0])

TEST(strerror_matches_the_error_list_for_every_code)
{
    size_t n = 0;
#define X(name, code, text)                                                    \
    CHECK_STR(epode_strerror(code), text);                                     \
    CHECK_STR(epode_err_name(code), #name);                                    \
    CHECK_INT(EPODE_E##name, code);                                            \
    n++;
    EPODE_ERRORS(X)
#undef X
    CHECK(n >= N_EXPECTED_ERRORS);
}

TEST(error_codes_are_consecutive_from_minus_one)
{
    for (size_t i = 0; i < N_CODES; i++)
        CHECK_INT(all_codes[i], -(int)i - 1);
}

TEST(strerror_sentences_and_names_are_distinct_and_not_the_fallbacks)
{
    for (size_t i = 0; i < N_CODES; i++) {
        const char *s = epode_strerror(all_codes[i]);
        const char *n = epode_err_name(all_codes[i]);
        CHECK(s != NULL && s[0] != '\0');
        CHECK(strcmp(s, "unknown error") != 0);
        CHECK(strcmp(s, "success") != 0);
        CHECK(n != NULL && n[0] != '\0');
        CHECK(strcmp(n, "UNKNOWN") != 0);
        CHECK(strcmp(n, "OK") != 0);
        CHECK(strncmp(n, "EPODE_", 6) != 0);
        for (size_t j = 0; j < i; j++) {
            CHECK(strcmp(s, epode_strerror(all_codes[j])) != 0);
            CHECK(strcmp(n, epode_err_name(all_codes[j])) != 0);
        }
    }
}

TEST(strerror_and_err_name_of_zero_are_success_and_ok)
{
    CHECK_STR(epode_strerror(0), "success");
    CHECK_STR(epode_err_name(0), "OK");
}

TEST(strerror_and_err_name_of_unknown_codes_are_fallbacks)
{
    const int last = all_codes[N_CODES - 1];
    const int unknown[] = {last - 1, last - 2, last - 1000, 1, 2, 100, INT_MIN, INT_MAX};
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        CHECK_STR(epode_strerror(unknown[i]), "unknown error");
        CHECK_STR(epode_err_name(unknown[i]), "UNKNOWN");
    }
}

TEST(version_matches_the_header_macros)
{
    char want[32];
    snprintf(want, sizeof want, "%d.%d.%d", EPODE_VERSION_MAJOR, EPODE_VERSION_MINOR,
             EPODE_VERSION_PATCH);
    CHECK_STR(epode_version(), want);
    CHECK_STR(epode_version(), EPODE_VERSION_STRING);
    CHECK(epode_version() == epode_version()); /* static storage */
}

/* ---- UTF-8 decoding ------------------------------------------------- */

static size_t dec(const char *s, size_t len, uint32_t *cp)
{
    *cp = 0xDEADBEEF;
    return epode__utf8_decode((const unsigned char *)s, len, cp);
}

TEST(utf8_decode_accepts_one_to_four_byte_sequences)
{
    static const struct {
        const char *s;
        size_t len;
        uint32_t cp;
    } ok[] = {
        {"A", 1, 0x41},
        {"\x7F", 1, 0x7F},
        {"\xC2\x80", 2, 0x80},
        {"\xC3\xA9", 2, 0xE9},
        {"\xDF\xBF", 2, 0x7FF},
        {"\xE0\xA0\x80", 3, 0x800},
        {"\xE2\x82\xAC", 3, 0x20AC},
        {"\xED\x9F\xBF", 3, 0xD7FF},
        {"\xEE\x80\x80", 3, 0xE000},
        {"\xEF\xBF\xBD", 3, 0xFFFD},
        {"\xEF\xBF\xBF", 3, 0xFFFF},
        {"\xF0\x90\x80\x80", 4, 0x10000},
        {"\xF0\x9F\x98\x80", 4, 0x1F600},
        {"\xF4\x8F\xBF\xBF", 4, 0x10FFFF},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        uint32_t cp;
        CHECK_INT(dec(ok[i].s, strlen(ok[i].s), &cp), ok[i].len);
        CHECK_INT(cp, ok[i].cp);
    }
    /* Only the first sequence is decoded when more follow. */
    uint32_t cp;
    CHECK_INT(dec("\xC3\xA9xyz", 5, &cp), 2);
    CHECK_INT(cp, 0xE9);
    /* NUL is a valid one-byte sequence (callers decide whether it is allowed). */
    CHECK_INT(dec("\0", 1, &cp), 1);
    CHECK_INT(cp, 0);
}

TEST(utf8_decode_rejects_overlong_forms)
{
    static const char *const bad[] = {
        "\xC0\x80",         "\xC0\xAF",         "\xC1\xBF",
        "\xE0\x80\x80",     "\xE0\x80\xAF",     "\xE0\x9F\xBF",
        "\xF0\x80\x80\x80", "\xF0\x80\x80\xAF", "\xF0\x8F\xBF\xBF",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint32_t cp;
        CHECK_INT(dec(bad[i], strlen(bad[i]), &cp), 0);
    }
}

TEST(utf8_decode_rejects_surrogates)
{
    static const char *const bad[] = {"\xED\xA0\x80", "\xED\xAD\xBF", "\xED\xB0\x80",
                                      "\xED\xBF\xBF"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint32_t cp;
        CHECK_INT(dec(bad[i], 3, &cp), 0);
    }
}

TEST(utf8_decode_rejects_code_points_above_10ffff)
{
    static const char *const bad[] = {
        "\xF4\x90\x80\x80", "\xF4\xBF\xBF\xBF", "\xF5\x80\x80\x80", "\xF7\xBF\xBF\xBF",
        "\xF8\x88\x80\x80\x80", "\xFC\x84\x80\x80\x80\x80", "\xFE", "\xFF",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint32_t cp;
        CHECK_INT(dec(bad[i], strlen(bad[i]), &cp), 0);
    }
}

TEST(utf8_decode_rejects_truncated_and_broken_sequences)
{
    uint32_t cp;
    CHECK_INT(dec("", 0, &cp), 0);
    CHECK_INT(dec("\xC3", 1, &cp), 0);
    CHECK_INT(dec("\xE2\x82", 2, &cp), 0);
    CHECK_INT(dec("\xF0\x9F\x98", 3, &cp), 0);
    /* the length given, not the NUL, ends the input */
    CHECK_INT(dec("\xC3\xA9", 1, &cp), 0);
    CHECK_INT(dec("\xE2\x82\xAC", 2, &cp), 0);
    CHECK_INT(dec("\xF0\x9F\x98\x80", 3, &cp), 0);
    /* a continuation byte missing or replaced */
    CHECK_INT(dec("\xC3\x41", 2, &cp), 0);
    CHECK_INT(dec("\xE2\x28\xA1", 3, &cp), 0);
    CHECK_INT(dec("\xE2\x82\x28", 3, &cp), 0);
    CHECK_INT(dec("\xF0\x9F\x98\x41", 4, &cp), 0);
    CHECK_INT(dec("\xC3\xC3\xA9", 3, &cp), 0);
    /* a lone continuation byte */
    CHECK_INT(dec("\x80", 1, &cp), 0);
    CHECK_INT(dec("\xBF", 1, &cp), 0);
}

/* A straightforward reference encoder for the exhaustive checks. */
static size_t ref_encode(uint32_t cp, unsigned char *o)
{
    if (cp < 0x80) {
        o[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (unsigned char)(0xC0 | (cp >> 6));
        o[1] = (unsigned char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xE0 | (cp >> 12));
        o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (unsigned char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (unsigned char)(0xF0 | (cp >> 18));
    o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (unsigned char)(0x80 | (cp & 0x3F));
    return 4;
}

TEST(utf8_decode_round_trips_every_scalar_value)
{
    for (uint32_t cp = 0; cp <= 0x10FFFF; cp++) {
        if (cp >= 0xD800 && cp <= 0xDFFF)
            continue;
        unsigned char b[4];
        size_t n = ref_encode(cp, b);
        uint32_t got = 0xDEADBEEF;
        size_t m = epode__utf8_decode(b, n, &got);
        if (m != n || got != cp) {
            printf("# U+%04X: decoded %zu bytes as U+%04X\n", (unsigned)cp, m, (unsigned)got);
            CHECK(0);
        }
        /* any shorter prefix is truncated */
        for (size_t k = 1; k < n; k++)
            CHECK_INT(epode__utf8_decode(b, k, &got), 0);
    }
}

/* Every 2- and 3-byte string: accepted exactly when it is the shortest
 * encoding of a scalar value. */
TEST(utf8_decode_agrees_with_reference_on_all_short_sequences)
{
    unsigned char b[3];
    for (unsigned x = 0x80; x <= 0xFF; x++)
        for (unsigned y = 0; y <= 0xFF; y++) {
            b[0] = (unsigned char)x;
            b[1] = (unsigned char)y;
            uint32_t cp;
            size_t n = epode__utf8_decode(b, 2, &cp);
            unsigned char r[4];
            int want = x >= 0xC2 && x <= 0xDF && (y & 0xC0) == 0x80;
            CHECK_INT(n, want ? 2 : 0);
            if (n)
                CHECK(ref_encode(cp, r) == 2 && memcmp(r, b, 2) == 0);
        }
    for (unsigned x = 0xE0; x <= 0xEF; x++)
        for (unsigned y = 0; y <= 0xFF; y++)
            for (unsigned z = 0; z <= 0xFF; z++) {
                b[0] = (unsigned char)x;
                b[1] = (unsigned char)y;
                b[2] = (unsigned char)z;
                uint32_t cp;
                size_t n = epode__utf8_decode(b, 3, &cp);
                uint32_t v = ((x & 0x0Fu) << 12) | ((y & 0x3Fu) << 6) | (z & 0x3Fu);
                int want = (y & 0xC0) == 0x80 && (z & 0xC0) == 0x80 && v >= 0x800 &&
                           !(v >= 0xD800 && v <= 0xDFFF);
                if ((n == 3) != want) {
                    printf("# %02X %02X %02X: got %zu\n", x, y, z, n);
                    CHECK(0);
                }
                if (n)
                    CHECK_INT(cp, v);
            }
}

/* ---- XML text and name rules ---------------------------------------- */

static int text_ok(const char *s) { return epode__xml_text_ok(s, strlen(s)); }
static int name_ok(const char *s) { return epode__xml_ncname_ok(s, strlen(s)); }

TEST(xml_text_ok_accepts_text_xml_can_carry)
{
    CHECK(epode__xml_text_ok("", 0));
    CHECK(text_ok("hello, world"));
    CHECK(text_ok("tab\tnewline\ncr\r"));
    CHECK(text_ok("<&>\"']]>"));
    CHECK(text_ok("\x7F")); /* DEL is an XML Char */
    CHECK(text_ok("\xC2\x80\xC2\x9F")); /* so are the C1 controls */
    CHECK(text_ok("caf\xC3\xA9 \xE6\x97\xA5\xE6\x9C\xAC \xF0\x9F\x98\x80"));
    CHECK(text_ok("\xEF\xBF\xBD"));         /* U+FFFD */
    CHECK(text_ok("\xF4\x8F\xBF\xBF"));     /* U+10FFFF */
    CHECK(text_ok("\xEE\x80\x80"));         /* U+E000, after the surrogates */
}

TEST(xml_text_ok_rejects_control_characters_and_nul)
{
    CHECK(!text_ok("a\001b"));
    CHECK(!text_ok("\x08"));
    CHECK(!text_ok("\x0B"));
    CHECK(!text_ok("\x0C"));
    CHECK(!text_ok("\x1F"));
    CHECK(!epode__xml_text_ok("a\0b", 3));
    for (int c = 0; c < 0x20; c++) {
        char s[2] = {(char)c, 0};
        CHECK_INT(epode__xml_text_ok(s, 1), c == '\t' || c == '\n' || c == '\r');
    }
}

TEST(xml_text_ok_rejects_noncharacters_fffe_ffff)
{
    CHECK(!text_ok("\xEF\xBF\xBE"));
    CHECK(!text_ok("\xEF\xBF\xBF"));
    CHECK(!text_ok("ok\xEF\xBF\xBF"));
}

TEST(xml_text_ok_rejects_invalid_utf8)
{
    CHECK(!text_ok("\xFF"));
    CHECK(!text_ok("abc\xC3"));
    CHECK(!text_ok("\xC0\xAF"));
    CHECK(!text_ok("\xED\xA0\x80"));
    CHECK(!text_ok("\xF4\x90\x80\x80"));
    CHECK(!text_ok("\x80"));
}

TEST(xml_text_ok_checks_only_the_given_length)
{
    CHECK(epode__xml_text_ok("ab\x01", 2));
    CHECK(!epode__xml_text_ok("ab\x01", 3));
    /* a sequence cut by the length is truncated, hence invalid */
    CHECK(!epode__xml_text_ok("a\xC3\xA9", 2));
}

TEST(xml_ncname_ok_accepts_names)
{
    CHECK(name_ok("a"));
    CHECK(name_ok("Z"));
    CHECK(name_ok("_"));
    CHECK(name_ok("_private"));
    CHECK(name_ok("message"));
    CHECK(name_ok("origin-id"));
    CHECK(name_ok("a.b-c_d9"));
    CHECK(name_ok("x\xC2\xB7y"));            /* middle dot inside a name */
    CHECK(name_ok("\xC3\xA9t\xC3\xA9"));     /* été */
    CHECK(name_ok("\xE6\x97\xA5\xE6\x9C\xAC")); /* 日本 */
}

TEST(xml_ncname_ok_rejects_non_names)
{
    CHECK(!epode__xml_ncname_ok("", 0));
    CHECK(!name_ok(""));
    CHECK(!name_ok("1abc"));
    CHECK(!name_ok("-a"));
    CHECK(!name_ok(".a"));
    CHECK(!name_ok("a b"));
    CHECK(!name_ok("a:b"));   /* an NCName has no colon */
    CHECK(!name_ok(":a"));
    CHECK(!name_ok("a\tb"));
    CHECK(!name_ok("a\x01"));
    CHECK(!name_ok("a/b"));
    CHECK(!name_ok("a>"));
    CHECK(!name_ok("a="));
    CHECK(!name_ok("a\"b"));
    CHECK(!name_ok("\xC2\xB7x"));      /* middle dot cannot start a name */
    CHECK(!name_ok("\xFF"));           /* invalid UTF-8 */
    CHECK(!name_ok("a\xC3"));          /* truncated */
    CHECK(!name_ok("a\xEF\xBF\xBF"));  /* U+FFFF */
    CHECK(!epode__xml_ncname_ok("a\0b", 3));
}

/* XML 1.0 fifth edition's NameStartChar and NameChar, outside ASCII.
 * Anything epode accepts as a name it will write, so it must be a name
 * to every XML parser, ours included. */
TEST(xml_ncname_ok_follows_xml_name_character_ranges)
{
    CHECK(name_ok("\xC3\x80"));        /* U+00C0 */
    CHECK(!name_ok("\xC3\x97"));       /* U+00D7 multiplication sign */
    CHECK(!name_ok("a\xC3\x97" "b"));
    CHECK(!name_ok("\xC3\xB7"));       /* U+00F7 division sign */
    CHECK(!name_ok("\xCC\x80" "a"));   /* U+0300 combining grave: not a start */
    CHECK(name_ok("a\xCC\x80"));       /*  ... but a name character */
    CHECK(!name_ok("\xCD\xBE"));       /* U+037E greek question mark */
    CHECK(!name_ok("a\xE2\x80\x80"));  /* U+2000 en quad */
    CHECK(name_ok("a\xE2\x80\xBF"));   /* U+203F undertie: name char */
    CHECK(!name_ok("\xE2\x80\xBF"));   /*  ... not a start */
    CHECK(!name_ok("\xE2\x80\x8B"));   /* U+200B zero width space */
    CHECK(name_ok("\xE2\x80\x8C"));    /* U+200C ZWNJ is a start char */
    CHECK(!name_ok("\xEE\x80\x80"));   /* U+E000 private use */
    CHECK(name_ok("\xF0\x90\x80\x80")); /* U+10000 */
    CHECK(!name_ok("\xF3\xB0\x80\x80")); /* U+F0000 */
    CHECK(!name_ok("\xE3\x80\x80"));   /* U+3000 ideographic space */
    CHECK(name_ok("\xE3\x80\x81"));    /* U+3001 */
}

TEST(xml_ncname_ok_checks_only_the_given_length)
{
    CHECK(epode__xml_ncname_ok("ab:c", 2));
    CHECK(!epode__xml_ncname_ok("ab:c", 3));
}

/* ---- buffers -------------------------------------------------------- */

TEST(buf_starts_empty_and_grows_on_append)
{
    epode__buf b;
    epode__buf_init(&b, NULL);
    CHECK(b.data == NULL);
    CHECK_INT(b.len, 0);
    CHECK_INT(b.cap, 0);
    CHECK_INT(b.failed, 0);
    epode__buf_puts(&b, "hello");
    epode__buf_putc(&b, ' ');
    epode__buf_append(&b, "world!!", 5);
    CHECK_INT(b.len, 11);
    CHECK(memcmp(b.data, "hello world", 11) == 0);
    CHECK(b.cap > b.len);
    epode__buf_free(&b);
    CHECK(b.data == NULL);
    CHECK_INT(b.len, 0);
    CHECK_INT(b.cap, 0);
}

/* Nothing to append may come as (NULL, 0): an empty WebSocket message
 * from wslay did, and memcpy(dst, NULL, 0) is undefined (the fuzz smoke's
 * UBSan stopped on it). Both paths: an empty buffer and one with room. */
TEST(buf_append_of_nothing_accepts_null)
{
    epode__buf b;
    epode__buf_init(&b, NULL);
    epode__buf_append(&b, NULL, 0);
    CHECK_INT(b.len, 0);
    epode__buf_puts(&b, "x");
    epode__buf_append(&b, NULL, 0);
    CHECK_INT(b.len, 1);
    CHECK_INT(b.failed, 0);
    epode__buf_free(&b);
}

TEST(buf_keeps_contents_across_many_growths_and_a_spare_byte)
{
    counting c = {0};
    epode_mem_t mem = COUNTING_MEM(c);
    epode__buf b;
    epode__buf_init(&b, &mem);
    for (int i = 0; i < 100000; i++) {
        epode__buf_putc(&b, (char)('a' + i % 26));
        CHECK(b.cap > b.len); /* room for a NUL, always */
    }
    CHECK_INT(b.len, 100000);
    CHECK_INT(b.failed, 0);
    for (int i = 0; i < 100000; i++)
        CHECK_INT(b.data[i], 'a' + i % 26);
    /* geometric growth: a handful of reallocations, not one per byte */
    CHECK(c.reallocs + c.mallocs <= 16);
    /* one large append */
    static char big[70000];
    memset(big, 'z', sizeof big);
    epode__buf_append(&b, big, sizeof big);
    CHECK_INT(b.len, 170000);
    CHECK(b.cap > b.len);
    CHECK_INT(b.data[169999], 'z');
    CHECK_INT(b.data[99999], 'a' + 99999 % 26);
    epode__buf_free(&b);
    CHECK_INT(c.live, 0);
}

TEST(buf_append_of_exactly_the_free_space_keeps_the_spare_byte)
{
    epode__buf b;
    epode__buf_init(&b, NULL);
    CHECK_INT(epode__buf_reserve(&b, 10), 0);
    size_t room = b.cap - b.len;
    char fill[1024];
    memset(fill, 'x', sizeof fill);
    CHECK(room <= sizeof fill);
    epode__buf_append(&b, fill, room);
    CHECK_INT(b.len, room);
    CHECK(b.cap > b.len);
    epode__buf_free(&b);
}

TEST(buf_reserve_makes_room_without_changing_contents)
{
    epode__buf b;
    epode__buf_init(&b, NULL);
    epode__buf_puts(&b, "abc");
    CHECK_INT(epode__buf_reserve(&b, 5000), 0);
    CHECK(b.cap - b.len > 5000);
    CHECK_INT(b.len, 3);
    CHECK(memcmp(b.data, "abc", 3) == 0);
    CHECK_INT(epode__buf_reserve(&b, 0), 0);
    epode__buf_free(&b);
}

TEST(buf_consume_drops_bytes_from_the_front)
{
    epode__buf b;
    epode__buf_init(&b, NULL);
    epode__buf_puts(&b, "0123456789");
    epode__buf_consume(&b, 0);
    CHECK_INT(b.len, 10);
    epode__buf_consume(&b, 3);
    CHECK_INT(b.len, 7);
    CHECK(memcmp(b.data, "3456789", 7) == 0);
    epode__buf_puts(&b, "ab");
    CHECK(memcmp(b.data, "3456789ab", 9) == 0);
    epode__buf_consume(&b, 9);
    CHECK_INT(b.len, 0);
    epode__buf_puts(&b, "xy");
    epode__buf_consume(&b, 1000); /* more than there is: empties it */
    CHECK_INT(b.len, 0);
    epode__buf_consume(&b, 1); /* on an empty buffer */
    CHECK_INT(b.len, 0);
    epode__buf_free(&b);
}

TEST(buf_first_allocation_failure_sets_failed_and_leaves_it_empty)
{
    counting c = {.fail_from = 1};
    epode_mem_t mem = COUNTING_MEM(c);
    epode__buf b;
    epode__buf_init(&b, &mem);
    epode__buf_puts(&b, "hello");
    CHECK_INT(b.failed, 1);
    CHECK_INT(b.len, 0);
    CHECK(b.data == NULL);
    CHECK_INT(epode__buf_reserve(&b, 1), -1);
    epode__buf_putc(&b, 'x');
    CHECK_INT(b.len, 0);
    epode__buf_free(&b);
    CHECK_INT(c.live, 0);
}

TEST(buf_failure_keeps_earlier_contents_and_sticks)
{
    counting c = {.fail_from = 2}; /* the first block only */
    epode_mem_t mem = COUNTING_MEM(c);
    epode__buf b;
    epode__buf_init(&b, &mem);
    epode__buf_puts(&b, "kept");
    CHECK_INT(b.failed, 0);
    char *data = b.data;
    size_t cap = b.cap;
    static char big[4096];
    memset(big, 'q', sizeof big);
    epode__buf_append(&b, big, sizeof big); /* needs growth: fails */
    CHECK_INT(b.failed, 1);
    CHECK(b.data == data);
    CHECK_INT(b.cap, cap);
    CHECK_INT(b.len, 4);
    CHECK(memcmp(b.data, "kept", 4) == 0);
    /* Once failed, reserve refuses even what would fit, without asking
     * the allocator again. */
    long calls = c.calls;
    CHECK_INT(epode__buf_reserve(&b, 1), -1);
    epode__buf_append(&b, big, sizeof big);
    CHECK_INT(c.calls, calls);
    CHECK_INT(b.failed, 1);
    CHECK_INT(b.len, 4);
    epode__buf_free(&b);
    CHECK_INT(c.live, 0);
}

TEST(buf_reserve_refuses_sizes_that_would_overflow)
{
    counting c = {0};
    epode_mem_t mem = COUNTING_MEM(c);
    epode__buf b;
    epode__buf_init(&b, &mem);
    epode__buf_puts(&b, "x");
    long calls = c.calls;
    CHECK_INT(epode__buf_reserve(&b, SIZE_MAX - 2), -1);
    CHECK_INT(b.failed, 1);
    CHECK_INT(c.calls, calls); /* refused before asking for memory */
    CHECK_INT(b.len, 1);
    epode__buf_free(&b);
    CHECK_INT(c.live, 0);
}

/* ---- allocation helpers --------------------------------------------- */

TEST(alloc_goes_through_the_application_allocator)
{
    counting c = {0};
    epode_mem_t mem = COUNTING_MEM(c);
    void *p = epode__alloc(&mem, 10);
    CHECK(p != NULL);
    CHECK_INT(c.mallocs, 1);
    p = epode__realloc(&mem, p, 100);
    CHECK(p != NULL);
    CHECK_INT(c.reallocs, 1);
    epode__dealloc(&mem, p);
    CHECK_INT(c.frees, 1);
    epode__dealloc(&mem, NULL); /* no call for NULL */
    CHECK_INT(c.frees, 1);
    CHECK_INT(c.live, 0);
}

TEST(alloc_of_zero_bytes_returns_a_block)
{
    void *p = epode__alloc(NULL, 0);
    CHECK(p != NULL);
    p = epode__realloc(NULL, p, 0);
    CHECK(p != NULL);
    epode__dealloc(NULL, p);
    void *z = epode__zalloc(NULL, 0);
    CHECK(z != NULL);
    epode__dealloc(NULL, z);
}

TEST(zalloc_zeroes_and_reports_failure)
{
    unsigned char *p = epode__zalloc(NULL, 64);
    CHECK(p != NULL);
    for (int i = 0; i < 64; i++)
        CHECK_INT(p[i], 0);
    epode__dealloc(NULL, p);
    counting c = {.fail_from = 1};
    epode_mem_t mem = COUNTING_MEM(c);
    CHECK(epode__zalloc(&mem, 64) == NULL);
    CHECK(epode__alloc(&mem, 64) == NULL);
}

TEST(strdup_and_strndup_copy_and_terminate)
{
    char *s = epode__strdup(NULL, "hello");
    CHECK_STR(s, "hello");
    epode__dealloc(NULL, s);
    s = epode__strndup(NULL, "hello", 3);
    CHECK_STR(s, "hel");
    epode__dealloc(NULL, s);
    s = epode__strndup(NULL, "a\0b", 3); /* embedded NUL copied too */
    CHECK(s != NULL && s[0] == 'a' && s[1] == '\0' && s[2] == 'b' && s[3] == '\0');
    epode__dealloc(NULL, s);
    counting c = {.fail_from = 1};
    epode_mem_t mem = COUNTING_MEM(c);
    CHECK(epode__strdup(&mem, "x") == NULL);
    CHECK_INT(c.live, 0);
}

TEST(user_alloc_block_is_freed_by_epode_free_through_its_allocator)
{
    counting c = {0};
    epode_mem_t mem = COUNTING_MEM(c);
    char *p = epode__user_alloc(&mem, 100);
    CHECK(p != NULL);
    CHECK_INT(c.mallocs, 1);
    CHECK_INT(c.live, 1);
    CHECK_INT((uintptr_t)p % alignof(max_align_t), 0);
    memset(p, 'x', 100);
    epode_free(p);
    CHECK_INT(c.frees, 1);
    CHECK_INT(c.live, 0);
    /* the custom free got the block the custom malloc made, not p */
    CHECK(c.last_freed != NULL && c.last_freed != (void *)p);
    CHECK((char *)c.last_freed < p);
}

TEST(user_alloc_with_null_allocator_uses_libc)
{
    char *p = epode__user_alloc(NULL, 16);
    CHECK(p != NULL);
    strcpy(p, "fifteen chars..");
    epode_free(p);
    p = epode__user_alloc(NULL, 0);
    CHECK(p != NULL);
    epode_free(p);
}

TEST(user_realloc_grows_and_keeps_the_allocator)
{
    counting c = {0};
    epode_mem_t mem = COUNTING_MEM(c);
    char *p = epode__user_alloc(&mem, 4);
    CHECK(p != NULL);
    memcpy(p, "abc", 4);
    char *q = epode__user_realloc(p, 100000);
    CHECK(q != NULL);
    CHECK_INT(c.reallocs, 1);
    CHECK_STR(q, "abc");
    CHECK_INT((uintptr_t)q % alignof(max_align_t), 0);
    epode_free(q);
    CHECK_INT(c.frees, 1);
    CHECK_INT(c.live, 0);
}

TEST(user_realloc_failure_leaves_the_block_intact)
{
    counting c = {0};
    epode_mem_t mem = COUNTING_MEM(c);
    char *p = epode__user_alloc(&mem, 8);
    CHECK(p != NULL);
    strcpy(p, "intact");
    c.fail_from = c.calls + 1;
    CHECK(epode__user_realloc(p, 1 << 20) == NULL);
    CHECK_STR(p, "intact");
    CHECK(epode__user_realloc(NULL, 10) == NULL);
    CHECK(epode__user_realloc(p, SIZE_MAX) == NULL);
    epode_free(p);
    CHECK_INT(c.live, 0);
}

TEST(user_alloc_failure_returns_null_and_frees_nothing)
{
    counting c = {.fail_from = 1};
    epode_mem_t mem = COUNTING_MEM(c);
    CHECK(epode__user_alloc(&mem, 10) == NULL);
    CHECK_INT(c.frees, 0);
    c.fail_from = 0;
    long calls = c.calls;
    CHECK(epode__user_alloc(&mem, SIZE_MAX) == NULL); /* overflow: not even asked */
    CHECK(epode__user_alloc(&mem, SIZE_MAX - 4) == NULL);
    CHECK_INT(c.calls, calls);
}

TEST(epode_free_of_null_is_a_no_op)
{
    epode_free(NULL);
    CHECK(1);
}

TEST(epode_free_releases_serialized_text_through_the_trees_allocator)
{
    counting c = {0};
    epode_mem_t mem = COUNTING_MEM(c);
    epode_stanza_t *st;
    CHECK_INT(epode_stanza_new_message(&mem, "chat", "a@b", "hi", &st), 0);
    char *text;
    CHECK_INT(epode_stanza_to_text(st, 0, &text, NULL), 0);
    long frees = c.frees;
    epode_stanza_unref(st);
    CHECK(c.frees > frees);
    CHECK(c.live >= 1); /* the text is still ours */
    frees = c.frees;
    epode_free(text);
    CHECK_INT(c.frees, frees + 1);
    CHECK_INT(c.live, 0);
}

/* ---- random ids ----------------------------------------------------- */

TEST(random_id_is_base64url_of_the_asked_length)
{
    char id[65];
    for (size_t len = 0; len <= 64; len++) {
        memset(id, '!', sizeof id);
        CHECK_INT(epode__random_id(id, len), 0);
        CHECK_INT(strlen(id), len);
        for (size_t i = 0; i < len; i++)
            CHECK(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_",
                         id[i]) != NULL && id[i] != '\0');
    }
    char big[100];
    CHECK_INT(epode__random_id(big, 65), EPODE_EINVAL);
}

TEST(random_fills_the_buffer)
{
    unsigned char a[64] = {0}, b[64] = {0};
    CHECK_INT(epode__random(a, sizeof a), 0);
    CHECK_INT(epode__random(b, sizeof b), 0);
    CHECK(memcmp(a, b, sizeof a) != 0);
    CHECK_INT(epode__random(a, 0), 0);
}

TEST_MAIN
