/* tests/unit/test_jid.c — JIDs: parsing, the validation rules of
 * epode/jid.h part by part, normalization, accessors, comparison, copy,
 * construction from parts, allocator use and argument checks. */
#include "test.h"

#include "epode/jid.h"

/* ---- helpers ---------------------------------------------------------- */

/* Counts allocations and frees; fails every allocation when `fail`. */
struct counting {
    int allocs, frees, fail;
};

static void *count_malloc(size_t size, void *user)
{
    struct counting *c = user;
    if (c->fail)
        return NULL;
    c->allocs++;
    return malloc(size);
}

static void *count_realloc(void *ptr, size_t size, void *user)
{
    struct counting *c = user;
    if (c->fail)
        return NULL;
    if (!ptr)
        c->allocs++;
    return realloc(ptr, size);
}

static void count_free(void *ptr, void *user)
{
    struct counting *c = user;
    if (ptr)
        c->frees++;
    free(ptr);
}

static epode_mem_t counting_mem(struct counting *c)
{
    return (epode_mem_t){count_malloc, count_realloc, count_free, c};
}

static int valid(const char *text)
{
    return epode_jid_validate(text) == 0;
}

/* Parses `text`, expecting success, and checks its normalized full form. */
static int parses_to(const char *text, const char *full)
{
    epode_jid_t *jid = NULL;
    if (epode_jid_new(NULL, text, &jid) != 0)
        return 0;
    int ok = strcmp(epode_jid_full(jid), full) == 0;
    epode_jid_free(jid);
    return ok;
}

/* Parsing fails with EPODE_EJID, validation agrees, nothing is stored. */
static int rejected(const char *text)
{
    epode_jid_t *sentinel = (epode_jid_t *)&sentinel, *jid = sentinel;
    return epode_jid_new(NULL, text, &jid) == EPODE_EJID && jid == sentinel &&
           epode_jid_validate(text) == EPODE_EJID;
}

/* A string of `n` copies of `c` (n < sizeof buffer). */
static char *repeat(char *buf, char c, size_t n)
{
    memset(buf, c, n);
    buf[n] = '\0';
    return buf;
}

/* ---- valid forms ------------------------------------------------------ */

TEST(jid_parses_domain_only)
{
    epode_jid_t *jid = NULL;
    CHECK_INT(epode_jid_new(NULL, "example.com", &jid), 0);
    CHECK(epode_jid_local(jid) == NULL);
    CHECK_STR(epode_jid_domain(jid), "example.com");
    CHECK(epode_jid_resource(jid) == NULL);
    CHECK_STR(epode_jid_bare(jid), "example.com");
    CHECK_STR(epode_jid_full(jid), "example.com");
    CHECK_INT(epode_jid_is_bare(jid), 1);
    epode_jid_free(jid);
}

TEST(jid_parses_bare_jid)
{
    epode_jid_t *jid = NULL;
    CHECK_INT(epode_jid_new(NULL, "juliet@example.com", &jid), 0);
    CHECK_STR(epode_jid_local(jid), "juliet");
    CHECK_STR(epode_jid_domain(jid), "example.com");
    CHECK(epode_jid_resource(jid) == NULL);
    CHECK_STR(epode_jid_bare(jid), "juliet@example.com");
    CHECK_STR(epode_jid_full(jid), "juliet@example.com");
    CHECK_INT(epode_jid_is_bare(jid), 1);
    epode_jid_free(jid);
}

TEST(jid_parses_full_jid)
{
    epode_jid_t *jid = NULL;
    CHECK_INT(epode_jid_new(NULL, "juliet@example.com/balcony", &jid), 0);
    CHECK_STR(epode_jid_local(jid), "juliet");
    CHECK_STR(epode_jid_domain(jid), "example.com");
    CHECK_STR(epode_jid_resource(jid), "balcony");
    CHECK_STR(epode_jid_bare(jid), "juliet@example.com");
    CHECK_STR(epode_jid_full(jid), "juliet@example.com/balcony");
    CHECK_INT(epode_jid_is_bare(jid), 0);
    epode_jid_free(jid);
}

TEST(jid_parses_domain_with_resource)
{
    epode_jid_t *jid = NULL;
    CHECK_INT(epode_jid_new(NULL, "example.com/foo", &jid), 0);
    CHECK(epode_jid_local(jid) == NULL);
    CHECK_STR(epode_jid_domain(jid), "example.com");
    CHECK_STR(epode_jid_resource(jid), "foo");
    CHECK_STR(epode_jid_bare(jid), "example.com");
    CHECK_STR(epode_jid_full(jid), "example.com/foo");
    epode_jid_free(jid);
}

TEST(jid_resource_is_everything_after_first_slash)
{
    epode_jid_t *jid = NULL;
    CHECK_INT(epode_jid_new(NULL, "juliet@example.com/foo@bar/baz", &jid), 0);
    CHECK_STR(epode_jid_local(jid), "juliet");
    CHECK_STR(epode_jid_domain(jid), "example.com");
    CHECK_STR(epode_jid_resource(jid), "foo@bar/baz");
    epode_jid_free(jid);

    /* An '@' after the first '/' does not make a localpart. */
    CHECK_INT(epode_jid_new(NULL, "example.com/foo@bar", &jid), 0);
    CHECK(epode_jid_local(jid) == NULL);
    CHECK_STR(epode_jid_domain(jid), "example.com");
    CHECK_STR(epode_jid_resource(jid), "foo@bar");
    epode_jid_free(jid);
}

TEST(jid_resource_keeps_spaces_case_and_symbols)
{
    epode_jid_t *jid = NULL;
    CHECK_INT(epode_jid_new(NULL, "a@b/ Hello World \"&'<>:@ ", &jid), 0);
    CHECK_STR(epode_jid_resource(jid), " Hello World \"&'<>:@ ");
    epode_jid_free(jid);
    CHECK(valid("a@b/\xC2\xA0\xE3\x80\x80")); /* U+00A0, U+3000 */
}

TEST(jid_accepts_ipv6_literal)
{
    CHECK(parses_to("[::1]", "[::1]"));
    CHECK(parses_to("juliet@[2001:db8::1]/r", "juliet@[2001:db8::1]/r"));
    CHECK(parses_to("[::FFFF:192.0.2.1]", "[::ffff:192.0.2.1]"));
    CHECK(parses_to("[2001:DB8::A]", "[2001:db8::a]"));
}

TEST(jid_rejects_bad_ip_literals)
{
    CHECK(rejected("[]"));
    CHECK(rejected("[::1"));
    CHECK(rejected("[::1]x"));
    CHECK(rejected("[192.0.2.1]"));
    CHECK(rejected("[not-an-address]"));
    CHECK(rejected("[::1%eth0]"));
    CHECK(rejected("[1:2:3:4:5:6:7:8:9]"));
    CHECK(rejected("x[::1]"));
    CHECK(rejected("[::1].example"));
    CHECK(rejected("[0000000000000000000000000000000000000000000000000000000000000000000::1]"));
}

TEST(jid_accepts_ipv4_as_labels)
{
    CHECK(parses_to("juliet@192.0.2.1/r", "juliet@192.0.2.1/r"));
}

TEST(jid_accepts_non_ascii)
{
    epode_jid_t *jid = NULL;
    /* "Ĵuliet@ëxample.com/☃" */
    CHECK_INT(epode_jid_new(NULL, "\xC4\xB4uliet@\xC3\xABxample.com/\xE2\x98\x83", &jid), 0);
    CHECK_STR(epode_jid_local(jid), "\xC4\xB4uliet");
    CHECK_STR(epode_jid_domain(jid), "\xC3\xABxample.com");
    CHECK_STR(epode_jid_resource(jid), "\xE2\x98\x83");
    epode_jid_free(jid);
    CHECK(valid("\xF0\x9F\x98\x80@\xF0\x9F\x98\x80.example")); /* U+1F600 */
    CHECK(valid("\xE4\xBE\x8B\xE5\xAD\x90.\xE6\xB5\x8B\xE8\xAF\x95"));
}

TEST(jid_accepts_hyphens_and_digits_in_labels)
{
    CHECK(valid("a-b.c-d.123"));
    CHECK(valid("-a-.b"));
}

/* ---- normalization ---------------------------------------------------- */

TEST(jid_lowercases_ascii_in_local_and_domain)
{
    epode_jid_t *jid = NULL;
    CHECK_INT(epode_jid_new(NULL, "JuLiEt@ExAmPlE.CoM/BalCony", &jid), 0);
    CHECK_STR(epode_jid_local(jid), "juliet");
    CHECK_STR(epode_jid_domain(jid), "example.com");
    CHECK_STR(epode_jid_resource(jid), "BalCony");
    CHECK_STR(epode_jid_bare(jid), "juliet@example.com");
    CHECK_STR(epode_jid_full(jid), "juliet@example.com/BalCony");
    epode_jid_free(jid);
}

TEST(jid_keeps_non_ascii_case)
{
    /* "É@É" stays as it is: no Unicode case folding. */
    CHECK(parses_to("\xC3\x89@\xC3\x89", "\xC3\x89@\xC3\x89"));
    CHECK(!epode_jid_str_equal("\xC3\x89@x", "\xC3\xA9@x", 0));
}

TEST(jid_strips_one_trailing_dot_from_domain)
{
    CHECK(parses_to("example.com.", "example.com"));
    CHECK(parses_to("juliet@Example.COM./r", "juliet@example.com/r"));
    CHECK(parses_to("[::1].", "[::1]"));
    CHECK(rejected("example.com.."));
    CHECK(rejected("."));
    CHECK(rejected("a@./r"));
}

TEST(jid_trailing_dot_is_not_counted_in_length)
{
    char buf[1100];
    /* 16 labels of 63 bytes and their separators: 1023 bytes. */
    size_t n = 0;
    for (int i = 0; i < 16; i++) {
        memset(buf + n, 'a', 63);
        n += 63;
        buf[n++] = '.';
    }
    buf[--n] = '\0';
    CHECK_INT(strlen(buf), 1023);
    CHECK(valid(buf));
    buf[n] = '.';
    buf[n + 1] = '\0';
    CHECK(valid(buf)); /* 1024 bytes with the dot that is stripped */
}

/* ---- invalid forms ---------------------------------------------------- */

TEST(jid_rejects_empty_string)
{
    CHECK(rejected(""));
}

TEST(jid_rejects_empty_localpart)
{
    CHECK(rejected("@example.com"));
    CHECK(rejected("@example.com/r"));
}

TEST(jid_rejects_empty_domainpart)
{
    CHECK(rejected("juliet@"));
    CHECK(rejected("juliet@/r"));
    CHECK(rejected("/r"));
    CHECK(rejected("@"));
    CHECK(rejected("@/"));
}

TEST(jid_rejects_empty_resourcepart)
{
    CHECK(rejected("example.com/"));
    CHECK(rejected("juliet@example.com/"));
}

TEST(jid_rejects_second_at_before_slash)
{
    CHECK(rejected("a@b@example.com"));
}

TEST(jid_rejects_each_forbidden_localpart_character)
{
    static const char *const bad[] = {
        "a\"b", "a&b", "a'b", "a:b", "a<b", "a>b", "a b",
        "a\xC2\xA0"     "b", /* U+00A0 */
        "a\xE1\x9A\x80" "b", /* U+1680 */
        "a\xE2\x80\x80" "b", /* U+2000 */
        "a\xE2\x80\x85" "b", /* U+2005 */
        "a\xE2\x80\x8A" "b", /* U+200A */
        "a\xE2\x80\xA8" "b", /* U+2028 */
        "a\xE2\x80\xA9" "b", /* U+2029 */
        "a\xE2\x80\xAF" "b", /* U+202F */
        "a\xE2\x81\x9F" "b", /* U+205F */
        "a\xE3\x80\x80" "b", /* U+3000 */
        "a\x01" "b", "a\tb", "a\nb", "a\x1F" "b", "a\x7F" "b",
        "a\xC2\x80" "b", "a\xC2\x9F" "b", /* U+0080, U+009F */
    };
    char buf[64];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(buf, sizeof buf, "%s@example.com", bad[i]);
        if (!rejected(buf)) {
            printf("# accepted localpart #%zu\n", i);
            CHECK(0);
        }
    }
    /* Just outside the refused ranges. */
    CHECK(valid("a\xE2\x80\x8B" "b@example.com")); /* U+200B */
    CHECK(valid("a\xC2\xA1" "b@example.com"));    /* U+00A1 */
    CHECK(valid("a.b_c+d=e!#$%*?^`{|}~@example.com"));
}

TEST(jid_rejects_slash_and_at_in_localpart_from_parts)
{
    epode_jid_t *jid = NULL;
    CHECK_INT(epode_jid_new_from_parts(NULL, "a/b", "example.com", NULL, &jid), EPODE_EJID);
    CHECK_INT(epode_jid_new_from_parts(NULL, "a@b", "example.com", NULL, &jid), EPODE_EJID);
    CHECK(jid == NULL);
}

TEST(jid_rejects_forbidden_domain_characters)
{
    static const char *const bad[] = {
        "exa mple.com", "exa_mple.com", "example.com:5222", "exa\"mple", "exa&mple",
        "exa'mple", "exa<mple", "exa>mple", "exa\x01mple", "exa\x7Fmple",
        "exa\xC2\x85mple", "exa\xC2\xA0mple", "exa\xE3\x80\x80mple",
        "exa\xE2\x80\xA8mple", "exa[mple", "exa]mple", "exa!mple",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (!rejected(bad[i])) {
            printf("# accepted domain #%zu\n", i);
            CHECK(0);
        }
    }
}

TEST(jid_rejects_empty_labels)
{
    CHECK(rejected(".example.com"));
    CHECK(rejected("example..com"));
    CHECK(rejected("a@..com"));
}

TEST(jid_rejects_control_characters_in_resource)
{
    CHECK(rejected("a@b/x\x01y"));
    CHECK(rejected("a@b/x\ty"));
    CHECK(rejected("a@b/x\ny"));
    CHECK(rejected("a@b/x\x7Fy"));
    CHECK(rejected("a@b/x\xC2\x80y"));
    CHECK(rejected("a@b/x\xC2\x9Fy"));
    CHECK(valid("a@b/x\xC2\xA0y"));
}

TEST(jid_limits_localpart_to_1023_bytes)
{
    char buf[1100];
    repeat(buf, 'a', 1023);
    strcat(buf, "@example.com");
    CHECK(valid(buf));
    repeat(buf, 'a', 1024);
    strcat(buf, "@example.com");
    CHECK(rejected(buf));
}

TEST(jid_limits_resourcepart_to_1023_bytes)
{
    char buf[1100];
    strcpy(buf, "a@b/");
    repeat(buf + 4, 'r', 1023);
    CHECK(valid(buf));
    repeat(buf + 4, 'r', 1024);
    CHECK(rejected(buf));
}

TEST(jid_limits_domainpart_to_1023_bytes)
{
    char buf[1100];
    /* 16 labels of 63 bytes: 1023 bytes; one more byte in the last: 1024. */
    size_t n = 0;
    for (int i = 0; i < 16; i++) {
        memset(buf + n, 'd', 63);
        n += 63;
        buf[n++] = '.';
    }
    buf[--n] = '\0';
    CHECK_INT(strlen(buf), 1023);
    CHECK(valid(buf));
    buf[0] = 'x';
    memmove(buf + 1, buf, n + 1); /* the first label becomes 64 bytes */
    CHECK(rejected(buf));
    /* 1024 bytes made of short labels. */
    n = 0;
    while (n < 1024) {
        buf[n++] = 'a';
        buf[n++] = '.';
    }
    buf[1023] = 'a';
    buf[1024] = '\0';
    CHECK(rejected(buf));
    buf[1022] = '\0';
    CHECK(valid(buf)); /* "a.a.…a" of 1021 bytes + "." stripped */
}

TEST(jid_limits_labels_to_63_bytes)
{
    char buf[200];
    repeat(buf, 'l', 63);
    strcat(buf, ".example");
    CHECK(valid(buf));
    repeat(buf, 'l', 64);
    strcat(buf, ".example");
    CHECK(rejected(buf));
    strcpy(buf, "example.");
    repeat(buf + 8, 'l', 64);
    CHECK(rejected(buf));
    /* The limit is in bytes: 31 two-byte characters (62) pass, 32 (64) fail. */
    buf[0] = '\0';
    for (int i = 0; i < 31; i++)
        strcat(buf, "\xC3\xA9");
    CHECK(valid(buf));
    strcat(buf, "\xC3\xA9");
    CHECK(rejected(buf));
}

TEST(jid_rejects_invalid_utf8)
{
    static const char *const bad[] = {
        "\xC0\xAF",         /* overlong '/' */
        "\xE0\x80\xAF",     /* overlong, 3 bytes */
        "\xF0\x80\x80\xAF", /* overlong, 4 bytes */
        "\xED\xA0\x80",     /* surrogate U+D800 */
        "\xED\xBF\xBF",     /* surrogate U+DFFF */
        "\xC3",             /* truncated */
        "\xE2\x98",         /* truncated */
        "\xF0\x9F\x98",     /* truncated */
        "\xFF", "\xFE", "\x80", "\xBF", /* never valid / stray continuation */
        "\xF4\x90\x80\x80", /* beyond U+10FFFF */
        "\xF5\x80\x80\x80",
    };
    char buf[64];
    static const char *const fmt[] = {"a%sb@example.com", "a@ex%sample.com", "a@example.com/r%sr"};
    for (size_t f = 0; f < 3; f++) {
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
            snprintf(buf, sizeof buf, fmt[f], bad[i]);
            if (!rejected(buf)) {
                printf("# accepted invalid UTF-8 #%zu in part %zu\n", i, f);
                CHECK(0);
            }
        }
    }
    /* A truncated sequence at the very end of each part. */
    CHECK(rejected("a\xC3@example.com"));
    CHECK(rejected("example\xC3"));
    CHECK(rejected("example\xC3/r"));
    CHECK(rejected("example/r\xC3"));
}

/* ---- comparison ------------------------------------------------------- */

TEST(jid_equal_compares_normalized_forms)
{
    epode_jid_t *a = NULL, *b = NULL, *c = NULL, *d = NULL;
    CHECK_INT(epode_jid_new(NULL, "Juliet@Example.COM./Balcony", &a), 0);
    CHECK_INT(epode_jid_new(NULL, "juliet@example.com/Balcony", &b), 0);
    CHECK_INT(epode_jid_new(NULL, "juliet@example.com/balcony", &c), 0);
    CHECK_INT(epode_jid_new(NULL, "juliet@example.com", &d), 0);
    CHECK_INT(epode_jid_equal(a, b), 1);
    CHECK_INT(epode_jid_equal(a, c), 0);
    CHECK_INT(epode_jid_equal(a, d), 0);
    CHECK_INT(epode_jid_bare_equal(a, c), 1);
    CHECK_INT(epode_jid_bare_equal(a, d), 1);
    CHECK_INT(epode_jid_compare(a, b), 0);
    CHECK(epode_jid_compare(a, c) != 0);
    CHECK_INT(epode_jid_compare(a, c), -epode_jid_compare(c, a));
    CHECK(epode_jid_compare(d, a) < 0);
    CHECK(epode_jid_compare(a, d) > 0);
    epode_jid_free(a);
    epode_jid_free(b);
    epode_jid_free(c);
    epode_jid_free(d);
}

TEST(jid_equal_distinguishes_parts)
{
    epode_jid_t *a = NULL, *b = NULL, *c = NULL;
    CHECK_INT(epode_jid_new(NULL, "example.com", &a), 0);
    CHECK_INT(epode_jid_new(NULL, "x@example.com", &b), 0);
    CHECK_INT(epode_jid_new(NULL, "example.com/x", &c), 0);
    CHECK_INT(epode_jid_equal(a, b), 0);
    CHECK_INT(epode_jid_bare_equal(a, b), 0);
    CHECK_INT(epode_jid_equal(a, c), 0);
    CHECK_INT(epode_jid_bare_equal(a, c), 1);
    CHECK(epode_jid_compare(a, b) != 0);
    CHECK(epode_jid_compare(a, c) != 0);
    CHECK(epode_jid_compare(b, c) != 0);
    epode_jid_free(a);
    epode_jid_free(b);
    epode_jid_free(c);
}

TEST(jid_compare_is_a_total_order)
{
    static const char *const texts[] = {
        "a", "a/x", "a@a", "a@a/x", "b", "a@b", "A@B/y", "[::1]", "z@[::1]/\xC3\xA9",
    };
    enum { N = sizeof texts / sizeof texts[0] };
    epode_jid_t *j[N];
    for (int i = 0; i < N; i++)
        CHECK_INT(epode_jid_new(NULL, texts[i], &j[i]), 0);
    for (int x = 0; x < N; x++) {
        CHECK_INT(epode_jid_compare(j[x], j[x]), 0);
        for (int y = 0; y < N; y++) {
            int cxy = epode_jid_compare(j[x], j[y]);
            CHECK_INT(cxy, -epode_jid_compare(j[y], j[x]));
            CHECK_INT(cxy == 0, epode_jid_equal(j[x], j[y]));
            for (int z = 0; z < N; z++)
                if (cxy < 0 && epode_jid_compare(j[y], j[z]) < 0)
                    CHECK(epode_jid_compare(j[x], j[z]) < 0);
        }
    }
    for (int i = 0; i < N; i++)
        epode_jid_free(j[i]);
}

TEST(jid_str_equal_normalizes_without_allocating)
{
    CHECK_INT(epode_jid_str_equal("Juliet@Example.COM.", "juliet@example.com", 0), 1);
    CHECK_INT(epode_jid_str_equal("Juliet@Example.COM./R", "juliet@example.com/R", 0), 1);
    CHECK_INT(epode_jid_str_equal("juliet@example.com/R", "juliet@example.com/r", 0), 0);
    CHECK_INT(epode_jid_str_equal("juliet@example.com/R", "juliet@example.com/r", 1), 1);
    CHECK_INT(epode_jid_str_equal("juliet@example.com/R", "juliet@example.com", 0), 0);
    CHECK_INT(epode_jid_str_equal("juliet@example.com/R", "juliet@example.com", 1), 1);
    CHECK_INT(epode_jid_str_equal("example.com", "x@example.com", 1), 0);
    CHECK_INT(epode_jid_str_equal("example.com", "example.co", 0), 0);
    CHECK_INT(epode_jid_str_equal("romeo@example.com", "juliet@example.com", 0), 0);
    CHECK_INT(epode_jid_str_equal("[::A]", "[::a]", 0), 1);
    /* An '@' in the resource is not a localpart. */
    CHECK_INT(epode_jid_str_equal("a@b/c", "b/c", 1), 0);
}

TEST(jid_str_equal_invalid_equals_nothing)
{
    CHECK_INT(epode_jid_str_equal("@x", "@x", 0), 0);
    CHECK_INT(epode_jid_str_equal("a b@x", "a b@x", 1), 0);
    CHECK_INT(epode_jid_str_equal("x", "x/", 1), 0);
    CHECK_INT(epode_jid_str_equal("x/", "x", 1), 0);
    CHECK_INT(epode_jid_str_equal(NULL, "x", 0), 0);
    CHECK_INT(epode_jid_str_equal("x", NULL, 0), 0);
    CHECK_INT(epode_jid_str_equal(NULL, NULL, 0), 0);
}

/* ---- copy and construction from parts -------------------------------- */

TEST(jid_copy_is_equal_and_independent)
{
    struct counting c = {0};
    epode_mem_t mem = counting_mem(&c);
    epode_jid_t *a = NULL, *b = NULL;
    CHECK_INT(epode_jid_new(&mem, "Juliet@Example.com/Balcony", &a), 0);
    CHECK_INT(epode_jid_copy(a, &b), 0);
    CHECK(a != b);
    CHECK_INT(c.allocs, 2); /* one block per JID, through the JID's allocator */
    CHECK_INT(epode_jid_equal(a, b), 1);
    epode_jid_free(a);
    CHECK_STR(epode_jid_local(b), "juliet");
    CHECK_STR(epode_jid_domain(b), "example.com");
    CHECK_STR(epode_jid_resource(b), "Balcony");
    CHECK_STR(epode_jid_bare(b), "juliet@example.com");
    CHECK_STR(epode_jid_full(b), "juliet@example.com/Balcony");
    epode_jid_free(b);
    CHECK_INT(c.frees, 2);
}

TEST(jid_copy_keeps_absent_parts_absent)
{
    epode_jid_t *a = NULL, *b = NULL;
    CHECK_INT(epode_jid_new(NULL, "example.com", &a), 0);
    CHECK_INT(epode_jid_copy(a, &b), 0);
    CHECK(epode_jid_local(b) == NULL);
    CHECK(epode_jid_resource(b) == NULL);
    CHECK_STR(epode_jid_full(b), "example.com");
    epode_jid_free(a);
    epode_jid_free(b);
}

TEST(jid_new_from_parts_builds_normalized_jid)
{
    epode_jid_t *jid = NULL;
    CHECK_INT(epode_jid_new_from_parts(NULL, "Juliet", "Example.COM.", "Bal/c@ny", &jid), 0);
    CHECK_STR(epode_jid_local(jid), "juliet");
    CHECK_STR(epode_jid_domain(jid), "example.com");
    CHECK_STR(epode_jid_resource(jid), "Bal/c@ny");
    CHECK_STR(epode_jid_full(jid), "juliet@example.com/Bal/c@ny");
    /* What it builds parses back to the same JID. */
    epode_jid_t *again = NULL;
    CHECK_INT(epode_jid_new(NULL, epode_jid_full(jid), &again), 0);
    CHECK_INT(epode_jid_equal(jid, again), 1);
    epode_jid_free(again);
    epode_jid_free(jid);

    CHECK_INT(epode_jid_new_from_parts(NULL, NULL, "example.com", NULL, &jid), 0);
    CHECK_STR(epode_jid_full(jid), "example.com");
    CHECK(epode_jid_local(jid) == NULL);
    CHECK_INT(epode_jid_is_bare(jid), 1);
    epode_jid_free(jid);

    CHECK_INT(epode_jid_new_from_parts(NULL, NULL, "example.com", "r", &jid), 0);
    CHECK_STR(epode_jid_full(jid), "example.com/r");
    CHECK_STR(epode_jid_bare(jid), "example.com");
    epode_jid_free(jid);
}

TEST(jid_new_from_parts_rejects_invalid_parts)
{
    epode_jid_t *sentinel = (epode_jid_t *)&sentinel, *jid = sentinel;
    char big[1100];
    repeat(big, 'a', 1024);
    CHECK_INT(epode_jid_new_from_parts(NULL, "", "example.com", NULL, &jid), EPODE_EJID);
    CHECK_INT(epode_jid_new_from_parts(NULL, NULL, "", NULL, &jid), EPODE_EJID);
    CHECK_INT(epode_jid_new_from_parts(NULL, NULL, ".", NULL, &jid), EPODE_EJID);
    CHECK_INT(epode_jid_new_from_parts(NULL, NULL, "example.com", "", &jid), EPODE_EJID);
    CHECK_INT(epode_jid_new_from_parts(NULL, "a b", "example.com", NULL, &jid), EPODE_EJID);
    CHECK_INT(epode_jid_new_from_parts(NULL, "a", "example.com/r", NULL, &jid), EPODE_EJID);
    CHECK_INT(epode_jid_new_from_parts(NULL, "a", "b@example.com", NULL, &jid), EPODE_EJID);
    CHECK_INT(epode_jid_new_from_parts(NULL, "a", "example.com", "x\ny", &jid), EPODE_EJID);
    CHECK_INT(epode_jid_new_from_parts(NULL, big, "example.com", NULL, &jid), EPODE_EJID);
    CHECK_INT(epode_jid_new_from_parts(NULL, "a", "example.com", big, &jid), EPODE_EJID);
    CHECK_INT(epode_jid_new_from_parts(NULL, "\xC0\xAF", "example.com", NULL, &jid), EPODE_EJID);
    CHECK(jid == sentinel);
    big[1023] = '\0';
    CHECK_INT(epode_jid_new_from_parts(NULL, big, "example.com", big, &jid), 0);
    CHECK_INT(strlen(epode_jid_full(jid)), 1023 + 1 + 11 + 1 + 1023);
    epode_jid_free(jid);
}

/* ---- allocation and arguments ---------------------------------------- */

TEST(jid_uses_one_allocation_from_its_allocator)
{
    struct counting c = {0};
    epode_mem_t mem = counting_mem(&c);
    epode_jid_t *jid = NULL;
    CHECK_INT(epode_jid_new(&mem, "juliet@example.com/balcony", &jid), 0);
    CHECK_INT(c.allocs, 1);
    epode_jid_free(jid);
    CHECK_INT(c.frees, 1);
    CHECK_INT(epode_jid_new_from_parts(&mem, "a", "b", "c", &jid), 0);
    CHECK_INT(c.allocs, 2);
    epode_jid_free(jid);
    CHECK_INT(c.frees, 2);
}

TEST(jid_reports_enomem_and_leaves_out_untouched)
{
    struct counting c = {.fail = 1};
    epode_mem_t mem = counting_mem(&c);
    epode_jid_t *sentinel = (epode_jid_t *)&sentinel, *jid = sentinel;
    CHECK_INT(epode_jid_new(&mem, "juliet@example.com/balcony", &jid), EPODE_ENOMEM);
    CHECK(jid == sentinel);
    CHECK_INT(epode_jid_new_from_parts(&mem, "a", "b", "c", &jid), EPODE_ENOMEM);
    CHECK(jid == sentinel);

    /* A copy uses the original's allocator, which now fails. */
    c.fail = 0;
    epode_jid_t *orig = NULL;
    CHECK_INT(epode_jid_new(&mem, "juliet@example.com", &orig), 0);
    c.fail = 1;
    CHECK_INT(epode_jid_copy(orig, &jid), EPODE_ENOMEM);
    CHECK(jid == sentinel);
    epode_jid_free(orig);
    CHECK_INT(c.allocs, c.frees);
}

TEST(jid_invalid_text_allocates_nothing)
{
    struct counting c = {0};
    epode_mem_t mem = counting_mem(&c);
    epode_jid_t *jid = NULL;
    CHECK_INT(epode_jid_new(&mem, "@example.com", &jid), EPODE_EJID);
    CHECK_INT(epode_jid_new_from_parts(&mem, "a", "", NULL, &jid), EPODE_EJID);
    CHECK_INT(c.allocs, 0);
}

TEST(jid_null_arguments_give_einval)
{
    epode_jid_t *sentinel = (epode_jid_t *)&sentinel, *jid = sentinel;
    CHECK_INT(epode_jid_new(NULL, NULL, &jid), EPODE_EINVAL);
    CHECK_INT(epode_jid_new(NULL, "example.com", NULL), EPODE_EINVAL);
    CHECK_INT(epode_jid_new_from_parts(NULL, "a", NULL, "r", &jid), EPODE_EINVAL);
    CHECK_INT(epode_jid_new_from_parts(NULL, "a", "example.com", "r", NULL), EPODE_EINVAL);
    CHECK_INT(epode_jid_copy(NULL, &jid), EPODE_EINVAL);
    CHECK(jid == sentinel);
    CHECK_INT(epode_jid_validate(NULL), EPODE_EINVAL);

    epode_jid_t *a = NULL;
    CHECK_INT(epode_jid_new(NULL, "example.com", &a), 0);
    CHECK_INT(epode_jid_copy(a, NULL), EPODE_EINVAL);
    CHECK_INT(epode_jid_equal(a, NULL), 0);
    CHECK_INT(epode_jid_equal(NULL, a), 0);
    CHECK_INT(epode_jid_bare_equal(a, NULL), 0);
    CHECK(epode_jid_compare(NULL, a) < 0);
    CHECK(epode_jid_compare(a, NULL) > 0);
    CHECK_INT(epode_jid_compare(NULL, NULL), 0);
    epode_jid_free(a);
    epode_jid_free(NULL);
}

TEST(jid_accessors_tolerate_null)
{
    CHECK(epode_jid_local(NULL) == NULL);
    CHECK(epode_jid_domain(NULL) == NULL);
    CHECK(epode_jid_resource(NULL) == NULL);
    CHECK(epode_jid_bare(NULL) == NULL);
    CHECK(epode_jid_full(NULL) == NULL);
    CHECK_INT(epode_jid_is_bare(NULL), 0);
}

/* Every ASCII byte in each part, against the rules stated in epode/jid.h
 * (the parser answers ASCII from a table; this holds the table to them). */
TEST(jid_every_ascii_byte_in_every_part)
{
    for (int c = 1; c < 128; c++) {
        int control = c < 0x20 || c == 0x7F;
        int local_ok = !control && c != ' ' && !strchr("\"&'/:<>@", c);
        int domain_ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                        (c >= '0' && c <= '9') || c == '-';
        char buf[32];
        snprintf(buf, sizeof buf, "a%cb@example.com/r", c);
        if (c != '/' && c != '@') /* those move the part boundaries */
            CHECK_INT(epode_jid_validate(buf), local_ok ? 0 : EPODE_EJID);
        snprintf(buf, sizeof buf, "l@ex%cample.com/r", c);
        if (c != '/' && c != '.')
            CHECK_INT(epode_jid_validate(buf), domain_ok ? 0 : EPODE_EJID);
        snprintf(buf, sizeof buf, "l@example.com/r%cs", c);
        CHECK_INT(epode_jid_validate(buf), control ? EPODE_EJID : 0);
    }
    /* the separators themselves, where they do move the boundaries */
    CHECK_INT(epode_jid_validate("a@b@c"), EPODE_EJID);
    CHECK_INT(epode_jid_validate("a/b@c"), 0); /* domain "a", resource "b@c" */
    CHECK_INT(epode_jid_validate("l@ex..ample.com"), EPODE_EJID);
    /* non-ASCII still goes through the full rules */
    CHECK_INT(epode_jid_validate("j\xc3\xbcliet@example.com"), 0);
    CHECK_INT(epode_jid_validate("j\xc2\xa0liet@example.com"), EPODE_EJID); /* U+00A0 */
    CHECK_INT(epode_jid_validate("l@example.com/r\xc2\x85"), EPODE_EJID);   /* U+0085 */
    CHECK_INT(epode_jid_validate("l@exa\xc3\xa9mple.com/r"), 0);
    CHECK_INT(epode_jid_validate("l@exa\xe3\x80\x80mple.com"), EPODE_EJID); /* U+3000 */
    CHECK_INT(epode_jid_validate("l@example.com/\xc3"), EPODE_EJID);        /* truncated */
}

/* epode_jid_validate() answers the usual ASCII JIDs in one pass and
 * leaves the rest to the parser epode_jid_new() uses: on strings made of
 * the characters that matter, both must always agree. */
TEST(jid_validate_agrees_with_jid_new_on_random_strings)
{
    static const char alphabet[] = "ab-.@/[]:1 \"\x7f\xc3\xa9";
    unsigned seed = 12345;
    char buf[24];
    for (int n = 0; n < 200000; n++) {
        seed = seed * 1103515245u + 12345u;
        size_t len = (seed >> 16) % (sizeof buf - 1);
        for (size_t i = 0; i < len; i++) {
            seed = seed * 1103515245u + 12345u;
            buf[i] = alphabet[(seed >> 16) % (sizeof alphabet - 1)];
        }
        buf[len] = '\0';
        epode_jid_t *j = NULL;
        int rc = epode_jid_new(NULL, buf, &j);
        epode_jid_free(j);
        if (epode_jid_validate(buf) != rc)
            printf("# disagree on \"%s\"\n", buf);
        CHECK_INT(epode_jid_validate(buf), rc);
    }
    /* the edges of the lengths */
    char big[1100];
    memset(big, 'a', sizeof big);
    for (size_t n = 60; n < 70; n++) { /* one label of n bytes */
        memcpy(big, "l@", 2);
        big[2 + n] = '\0';
        CHECK_INT(epode_jid_validate(big), n <= 63 ? 0 : EPODE_EJID);
        memset(big, 'a', sizeof big);
    }
    for (size_t n = 1020; n < 1026; n++) { /* localpart, then resource of n bytes */
        memcpy(big + n, "@d", 3);
        CHECK_INT(epode_jid_validate(big), n <= 1023 ? 0 : EPODE_EJID);
        memset(big, 'a', sizeof big);
        memcpy(big, "d/", 2);
        big[2 + n] = '\0';
        CHECK_INT(epode_jid_validate(big), n <= 1023 ? 0 : EPODE_EJID);
        memset(big, 'a', sizeof big);
    }
    /* a domain of 1023 bytes in labels of 63, and one byte more */
    for (size_t n = 1022; n < 1026; n++) {
        memset(big, 'a', sizeof big);
        for (size_t i = 63; i < n; i += 64)
            big[i] = '.';
        big[n] = '\0';
        if (big[n - 1] == '.')
            continue;
        CHECK_INT(epode_jid_validate(big), n <= 1023 ? 0 : EPODE_EJID);
    }
}

TEST_MAIN
