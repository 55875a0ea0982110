/* tests/unit/test_stanza.c — the element tree of epode/stanza.h: life
 * cycle and reference counting, names and namespaces, attributes, text,
 * children, copy and equality, the message/presence/iq builders, replies
 * and error replies for every RFC 6120 condition, the condition tables,
 * and an allocation-failure sweep over a typical builder sequence. */
#include "test.h"

#include <stdint.h>

#include <epode.h>

#include "stanza/stanza_int.h"

/* ---- helpers ---------------------------------------------------------- */

/* Counts calls, successful allocations and live blocks. fail_at N fails
 * only the Nth call (1-based); fail_from N fails it and all later ones. */
typedef struct failmem {
    long calls, allocs, frees, live;
    long fail_at, fail_from;
    int injected; /* a failure was returned */
} failmem;

static int fm_fail(failmem *f)
{
    f->calls++;
    if ((f->fail_at && f->calls == f->fail_at) || (f->fail_from && f->calls >= f->fail_from)) {
        f->injected = 1;
        return 1;
    }
    return 0;
}

static void *fm_malloc(size_t size, void *user)
{
    failmem *f = user;
    if (fm_fail(f))
        return NULL;
    void *p = malloc(size);
    if (p) {
        f->allocs++;
        f->live++;
    }
    return p;
}

static void *fm_realloc(void *ptr, size_t size, void *user)
{
    failmem *f = user;
    if (fm_fail(f))
        return NULL;
    void *p = realloc(ptr, size);
    if (p) {
        f->allocs++;
        if (!ptr)
            f->live++;
    }
    return p;
}

static void fm_free(void *ptr, void *user)
{
    failmem *f = user;
    if (!ptr)
        return;
    f->frees++;
    f->live--;
    free(ptr);
}

#define FAILMEM(f) {fm_malloc, fm_realloc, fm_free, &(f)}

/* A pointer value no function may write: outputs must stay untouched. */
static char sentinel_obj;
#define SENTINEL ((epode_stanza_t *)(void *)&sentinel_obj)

static size_t count_children(const epode_stanza_t *el)
{
    size_t n = 0;
    for (epode_stanza_t *c = epode_stanza_first_child(el); c; c = epode_stanza_next(c))
        n++;
    return n;
}

/* Serialized form, in a static buffer (standalone, one line). */
static const char *xml(const epode_stanza_t *el)
{
    static char out[8192];
    char *t;
    size_t len;
    if (epode_stanza_to_text(el, EPODE_TEXT_ONE_LINE, &t, &len) < 0)
        return NULL;
    if (len >= sizeof out)
        len = sizeof out - 1;
    memcpy(out, t, len);
    out[len] = '\0';
    epode_free(t);
    return out;
}

static epode_stanza_t *parse(const char *text)
{
    epode_stanza_t *st = NULL;
    if (epode_stanza_from_text(NULL, text, (size_t)-1, &st, NULL) < 0)
        return NULL;
    return st;
}

/* ---- life cycle ------------------------------------------------------- */

TEST(stanza_new_makes_an_empty_root)
{
    epode_stanza_t *st = NULL;
    CHECK_INT(epode_stanza_new(NULL, "message", EPODE_NS_CLIENT, &st), 0);
    CHECK(st != NULL);
    CHECK_STR(epode_stanza_get_name(st), "message");
    CHECK_STR(epode_stanza_get_ns(st), EPODE_NS_CLIENT);
    CHECK(epode_stanza_get_prefix(st) == NULL);
    CHECK(epode_stanza_get_parent(st) == NULL);
    CHECK(epode_stanza_first_child(st) == NULL);
    CHECK_INT(epode_stanza_attr_count(st), 0);
    CHECK_STR(epode_stanza_get_text(st), "");
    epode_stanza_unref(st);
}

TEST(stanza_new_without_namespace_has_none)
{
    epode_stanza_t *st;
    CHECK_INT(epode_stanza_new(NULL, "x", NULL, &st), 0);
    CHECK(epode_stanza_get_ns(st) == NULL);
    epode_stanza_unref(st);
}

TEST(stanza_new_copies_its_strings)
{
    char name[] = "query", ns[] = "urn:example:copied";
    epode_stanza_t *st;
    CHECK_INT(epode_stanza_new(NULL, name, ns, &st), 0);
    memset(name, 'X', sizeof name - 1);
    memset(ns, 'X', sizeof ns - 1);
    CHECK_STR(epode_stanza_get_name(st), "query");
    CHECK_STR(epode_stanza_get_ns(st), "urn:example:copied");
    epode_stanza_unref(st);
}

TEST(stanza_new_rejects_invalid_names)
{
    static const char *const bad[] = {"", "1abc", "a b", "a:b", "-x", ".x", "a\tb",
                                      "a>", "\xFF", "a\xC3", "x\x01"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        epode_stanza_t *st = SENTINEL;
        CHECK_INT(epode_stanza_new(NULL, bad[i], NULL, &st), EPODE_EINVAL);
        CHECK(st == SENTINEL);
    }
    epode_stanza_t *st = SENTINEL;
    CHECK_INT(epode_stanza_new(NULL, NULL, NULL, &st), EPODE_EINVAL);
    CHECK(st == SENTINEL);
    CHECK_INT(epode_stanza_new(NULL, "ok", NULL, NULL), EPODE_EINVAL);
}

TEST(stanza_new_accepts_valid_names)
{
    static const char *const good[] = {"a", "_a", "a-b.c_9", "stream", "\xC3\xA9t\xC3\xA9",
                                       "\xE6\x97\xA5\xE6\x9C\xAC"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        epode_stanza_t *st;
        CHECK_INT(epode_stanza_new(NULL, good[i], NULL, &st), 0);
        CHECK_STR(epode_stanza_get_name(st), good[i]);
        epode_stanza_unref(st);
    }
}

TEST(stanza_new_reports_out_of_memory_and_leaves_out_untouched)
{
    failmem f = {.fail_from = 1};
    epode_mem_t mem = FAILMEM(f);
    epode_stanza_t *st = SENTINEL;
    CHECK_INT(epode_stanza_new(&mem, "message", EPODE_NS_CLIENT, &st), EPODE_ENOMEM);
    CHECK(st == SENTINEL);
    CHECK_INT(f.live, 0);
}

TEST(stanza_ref_and_unref_count_on_the_whole_tree)
{
    failmem f = {0};
    epode_mem_t mem = FAILMEM(f);
    epode_stanza_t *st, *child;
    CHECK_INT(epode_stanza_new(&mem, "iq", EPODE_NS_CLIENT, &st), 0);
    CHECK_INT(epode_stanza_add_child_new(st, "query", "jabber:iq:roster", &child), 0);
    CHECK(epode_stanza_ref(st) == st);
    epode_stanza_unref(st);
    CHECK(f.live > 0);
    CHECK_STR(epode_stanza_get_name(st), "iq");
    /* a reference taken on a child keeps the whole tree */
    CHECK(epode_stanza_ref(child) == child);
    epode_stanza_unref(st);
    CHECK(f.live > 0);
    CHECK_STR(epode_stanza_get_name(child), "query");
    CHECK_STR(epode_stanza_get_name(epode_stanza_get_parent(child)), "iq");
    epode_stanza_unref(child);
    CHECK_INT(f.live, 0);
}

TEST(stanza_unref_and_ref_of_null_are_harmless)
{
    epode_stanza_unref(NULL);
    CHECK(epode_stanza_ref(NULL) == NULL);
}

TEST(stanza_accessors_of_null_return_null)
{
    CHECK(epode_stanza_get_name(NULL) == NULL);
    CHECK(epode_stanza_get_ns(NULL) == NULL);
    CHECK(epode_stanza_get_prefix(NULL) == NULL);
    CHECK(epode_stanza_get_parent(NULL) == NULL);
    CHECK(epode_stanza_get_attr(NULL, "a") == NULL);
    CHECK(epode_stanza_get_text(NULL) == NULL);
    CHECK(epode_stanza_first_child(NULL) == NULL);
    CHECK(epode_stanza_next(NULL) == NULL);
    CHECK(epode_stanza_find_child(NULL, NULL, NULL) == NULL);
    CHECK(epode_stanza_child_text(NULL, "body", NULL) == NULL);
    CHECK_INT(epode_stanza_attr_count(NULL), 0);
    CHECK_INT(epode_stanza_set_attr(NULL, "a", "b"), EPODE_EINVAL);
    CHECK_INT(epode_stanza_add_text(NULL, "x", 1), EPODE_EINVAL);
    CHECK_INT(epode_stanza_remove(NULL), EPODE_EINVAL);
    CHECK_INT(epode_stanza_attr_at(NULL, 0, NULL, NULL, NULL), EPODE_EINVAL);
}

/* ---- names, namespaces, prefixes ---------------------------------------- */

TEST(stanza_set_prefix_sets_and_clears_the_prefix)
{
    epode_stanza_t *st;
    CHECK_INT(epode_stanza_new(NULL, "features", EPODE_NS_STREAMS, &st), 0);
    CHECK_INT(epode_stanza_set_prefix(st, "stream"), 0);
    CHECK_STR(epode_stanza_get_prefix(st), "stream");
    CHECK_INT(epode_stanza_set_prefix(st, "other"), 0);
    CHECK_STR(epode_stanza_get_prefix(st), "other");
    CHECK_INT(epode_stanza_set_prefix(st, NULL), 0);
    CHECK(epode_stanza_get_prefix(st) == NULL);
    epode_stanza_unref(st);
}

TEST(stanza_set_prefix_rejects_invalid_and_reserved_prefixes)
{
    static const char *const bad[] = {"", "xml", "xmlns", "1p", "a:b", "a b", "\xFF"};
    epode_stanza_t *st;
    CHECK_INT(epode_stanza_new(NULL, "x", "urn:x", &st), 0);
    CHECK_INT(epode_stanza_set_prefix(st, "p"), 0);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_INT(epode_stanza_set_prefix(st, bad[i]), EPODE_EINVAL);
        CHECK_STR(epode_stanza_get_prefix(st), "p");
    }
    CHECK_INT(epode_stanza_set_prefix(NULL, "p"), EPODE_EINVAL);
    epode_stanza_unref(st);
}

TEST(stanza_set_ns_changes_and_removes_the_namespace)
{
    epode_stanza_t *st;
    CHECK_INT(epode_stanza_new(NULL, "x", NULL, &st), 0);
    CHECK_INT(epode_stanza_set_ns(st, "urn:a"), 0);
    CHECK_STR(epode_stanza_get_ns(st), "urn:a");
    CHECK_INT(epode_stanza_set_ns(st, "urn:b"), 0);
    CHECK_STR(epode_stanza_get_ns(st), "urn:b");
    CHECK_INT(epode_stanza_set_ns(st, "urn:\xFF"), EPODE_EINVAL);
    CHECK_STR(epode_stanza_get_ns(st), "urn:b");
    CHECK_INT(epode_stanza_set_ns(st, NULL), 0);
    CHECK(epode_stanza_get_ns(st) == NULL);
    epode_stanza_unref(st);
}

/* ---- attributes ------------------------------------------------------- */

TEST(stanza_set_attr_adds_an_attribute)
{
    epode_stanza_t *st;
    CHECK_INT(epode_stanza_new(NULL, "message", EPODE_NS_CLIENT, &st), 0);
    CHECK(epode_stanza_get_attr(st, "to") == NULL);
    CHECK_INT(epode_stanza_set_attr(st, "to", "juliet@example.com"), 0);
    CHECK_STR(epode_stanza_get_attr(st, "to"), "juliet@example.com");
    CHECK_STR(epode_stanza_get_to(st), "juliet@example.com");
    CHECK_INT(epode_stanza_attr_count(st), 1);
    epode_stanza_unref(st);
}

TEST(stanza_set_attr_replaces_value)
{
    epode_stanza_t *st;
    CHECK_INT(epode_stanza_new(NULL, "message", NULL, &st), 0);
    CHECK_INT(epode_stanza_set_attr(st, "type", "chat"), 0);
    CHECK_INT(epode_stanza_set_attr(st, "id", "1"), 0);
    CHECK_INT(epode_stanza_set_attr(st, "type", "groupchat"), 0);
    CHECK_STR(epode_stanza_get_attr(st, "type"), "groupchat");
    CHECK_INT(epode_stanza_attr_count(st), 2);
    /* replacing keeps the attribute's position */
    const char *name;
    CHECK_INT(epode_stanza_attr_at(st, 0, &name, NULL, NULL), 0);
    CHECK_STR(name, "type");
    epode_stanza_unref(st);
}

TEST(stanza_set_attr_copies_the_value)
{
    char v[] = "original";
    epode_stanza_t *st;
    CHECK_INT(epode_stanza_new(NULL, "x", NULL, &st), 0);
    CHECK_INT(epode_stanza_set_attr(st, "a", v), 0);
    v[0] = 'X';
    CHECK_STR(epode_stanza_get_attr(st, "a"), "original");
    epode_stanza_unref(st);
}

TEST(stanza_set_attr_null_value_removes_it)
{
    epode_stanza_t *st;
    CHECK_INT(epode_stanza_new(NULL, "x", NULL, &st), 0);
    CHECK_INT(epode_stanza_set_attr(st, "a", "1"), 0);
    CHECK_INT(epode_stanza_set_attr(st, "b", "2"), 0);
    CHECK_INT(epode_stanza_set_attr(st, "a", NULL), 0);
    CHECK(epode_stanza_get_attr(st, "a") == NULL);
    CHECK_STR(epode_stanza_get_attr(st, "b"), "2");
    CHECK_INT(epode_stanza_attr_count(st), 1);
    /* removing an absent attribute is not an error */
    CHECK_INT(epode_stanza_set_attr(st, "zzz", NULL), 0);
    CHECK_INT(epode_stanza_set_to(st, NULL), 0);
    CHECK_INT(epode_stanza_attr_count(st), 1);
    epode_stanza_unref(st);
}

TEST(stanza_remove_attr_removes_or_reports_not_found)
{
    epode_stanza_t *st;
    CHECK_INT(epode_stanza_new(NULL, "x", NULL, &st), 0);
    CHECK_INT(epode_stanza_set_attr(st, "a", "1"), 0);
    CHECK_INT(epode_stanza_set_attr(st, "b", "2"), 0);
    CHECK_INT(epode_stanza_set_attr(st, "c", "3"), 0);
    CHECK_INT(epode_stanza_remove_attr(st, "b"), 0);
    CHECK_INT(epode_stanza_attr_count(st), 2);
    CHECK(epode_stanza_get_attr(st, "b") == NULL);
    CHECK_STR(epode_stanza_get_attr(st, "a"), "1");
    CHECK_STR(epode_stanza_get_attr(st, "c"), "3");
    CHECK_INT(epode_stanza_remove_attr(st, "b"), EPODE_ENOTFOUND);
    CHECK_INT(epode_stanza_remove_attr(st, "nope"), EPODE_ENOTFOUND);
    CHECK_INT(epode_stanza_remove_attr(st, NULL), EPODE_EINVAL);
    CHECK_INT(epode_stanza_remove_attr(st, "c"), 0);
    CHECK_INT(epode_stanza_remove_attr(st, "a"), 0);
    CHECK_INT(epode_stanza_attr_count(st), 0);
    epode_stanza_unref(st);
}

TEST(stanza_attr_at_lists_attributes_in_order)
{
    epode_stanza_t *st;
    CHECK_INT(epode_stanza_new(NULL, "x", NULL, &st), 0);
    static const char *const names[] = {"to", "from", "id", "type", "a", "b", "c", "d", "e"};
    char val[32];
    for (size_t i = 0; i < 9; i++) {
        snprintf(val, sizeof val, "v%zu", i);
        CHECK_INT(epode_stanza_set_attr(st, names[i], val), 0);
    }
    CHECK_INT(epode_stanza_attr_count(st), 9);
    for (size_t i = 0; i < 9; i++) {
        const char *n = NULL, *ns = "sentinel", *v = NULL;
        CHECK_INT(epode_stanza_attr_at(st, i, &n, &ns, &v), 0);
        snprintf(val, sizeof val, "v%zu", i);
        CHECK_STR(n, names[i]);
        CHECK(ns == NULL);
        CHECK_STR(v, val);
    }
    CHECK_INT(epode_stanza_attr_at(st, 9, NULL, NULL, NULL), EPODE_ERANGE);
    CHECK_INT(epode_stanza_attr_at(st, SIZE_MAX, NULL, NULL, NULL), EPODE_ERANGE);
    /* any out pointer may be NULL */
    const char *v;
    CHECK_INT(epode_stanza_attr_at(st, 2, NULL, NULL, &v), 0);
    CHECK_STR(v, "v2");
    epode_stanza_unref(st);
}

TEST(stanza_xml_lang_is_the_xml_namespace_lang_attribute)
{
    epode_stanza_t *st;
    CHECK_INT(epode_stanza_new(NULL, "body", EPODE_NS_CLIENT, &st), 0);
    CHECK_INT(epode_stanza_set_attr(st, "xml:lang", "en"), 0);
    CHECK_STR(epode_stanza_get_attr(st, "xml:lang"), "en");
    CHECK_STR(epode_stanza_get_attr_ns(st, "lang", EPODE_NS_XML), "en");
    CHECK(epode_stanza_get_attr(st, "lang") == NULL); /* a plain lang is another attribute */
    const char *n, *ns, *v;
    CHECK_INT(epode_stanza_attr_at(st, 0, &n, &ns, &v), 0);
    CHECK_STR(n, "lang");
    CHECK_STR(ns, EPODE_NS_XML);
    CHECK_STR(v, "en");
    /* both can live side by side */
    CHECK_INT(epode_stanza_set_attr(st, "lang", "plain"), 0);
    CHECK_INT(epode_stanza_attr_count(st), 2);
    CHECK_STR(epode_stanza_get_attr(st, "xml:lang"), "en");
    CHECK_STR(epode_stanza_get_attr(st, "lang"), "plain");
    /* replacing and removing work through either spelling */
    CHECK_INT(epode_stanza_set_attr_ns(st, "lang", EPODE_NS_XML, "xml", "fr"), 0);
    CHECK_STR(epode_stanza_get_attr(st, "xml:lang"), "fr");
    CHECK_INT(epode_stanza_attr_count(st), 2);
    CHECK_INT(epode_stanza_remove_attr(st, "xml:lang"), 0);
    CHECK(epode_stanza_get_attr(st, "xml:lang") == NULL);
    CHECK_STR(epode_stanza_get_attr(st, "lang"), "plain");
    epode_stanza_unref(st);
}

TEST(stanza_set_attr_ns_keeps_namespaced_attributes_apart)
{
    epode_stanza_t *st;
    CHECK_INT(epode_stanza_new(NULL, "x", "urn:x", &st), 0);
    CHECK_INT(epode_stanza_set_attr_ns(st, "foo", "urn:a", "a", "in-a"), 0);
    CHECK_INT(epode_stanza_set_attr_ns(st, "foo", "urn:b", "b", "in-b"), 0);
    CHECK_INT(epode_stanza_set_attr(st, "foo", "plain"), 0);
    CHECK_INT(epode_stanza_attr_count(st), 3);
    CHECK_STR(epode_stanza_get_attr_ns(st, "foo", "urn:a"), "in-a");
    CHECK_STR(epode_stanza_get_attr_ns(st, "foo", "urn:b"), "in-b");
    CHECK_STR(epode_stanza_get_attr_ns(st, "foo", NULL), "plain");
    CHECK_STR(epode_stanza_get_attr(st, "foo"), "plain");
    CHECK(epode_stanza_get_attr_ns(st, "foo", "urn:c") == NULL);
    /* replace by (name, ns), whatever the prefix */
    CHECK_INT(epode_stanza_set_attr_ns(st, "foo", "urn:a", "other", "new-a"), 0);
    CHECK_INT(epode_stanza_attr_count(st), 3);
    CHECK_STR(epode_stanza_get_attr_ns(st, "foo", "urn:a"), "new-a");
    /* remove with NULL */
    CHECK_INT(epode_stanza_set_attr_ns(st, "foo", "urn:b", "b", NULL), 0);
    CHECK(epode_stanza_get_attr_ns(st, "foo", "urn:b") == NULL);
    CHECK_INT(epode_stanza_attr_count(st), 2);
    const char *n, *ns;
    CHECK_INT(epode_stanza_attr_at(st, 0, &n, &ns, NULL), 0);
    CHECK_STR(n, "foo");
    CHECK_STR(ns, "urn:a");
    epode_stanza_unref(st);
}

TEST(stanza_set_attr_ns_rejects_inconsistent_prefix_and_namespace)
{
    epode_stanza_t *st;
    CHECK_INT(epode_stanza_new(NULL, "x", NULL, &st), 0);
    CHECK_INT(epode_stanza_set_attr_ns(st, "a", "urn:a", NULL, "v"), EPODE_EINVAL);
    CHECK_INT(epode_stanza_set_attr_ns(st, "a", NULL, "p", "v"), EPODE_EINVAL);
    CHECK_INT(epode_stanza_set_attr_ns(st, "a", "urn:a", "xmlns", "v"), EPODE_EINVAL);
    CHECK_INT(epode_stanza_set_attr_ns(st, "a", "urn:a", "xml", "v"), EPODE_EINVAL);
    CHECK_INT(epode_stanza_set_attr_ns(st, "a", "urn:a", "1p", "v"), EPODE_EINVAL);
    CHECK_INT(epode_stanza_set_attr_ns(st, "a", "urn:a", "p:q", "v"), EPODE_EINVAL);
    CHECK_INT(epode_stanza_set_attr_ns(st, "a", "urn:\xFF", "p", "v"), EPODE_EINVAL);
    CHECK_INT(epode_stanza_set_attr_ns(st, "xmlns", NULL, NULL, "urn:x"), EPODE_EINVAL);
    CHECK_INT(epode_stanza_set_attr(st, "xmlns", "urn:x"), EPODE_EINVAL);
    CHECK_INT(epode_stanza_attr_count(st), 0);
    epode_stanza_unref(st);
}

TEST(stanza_set_attr_rejects_invalid_names)
{
    static const char *const bad[] = {"", "1abc", "a b", "a:b", "xmlns:p", "-a", "a\x01"};
    epode_stanza_t *st;
    CHECK_INT(epode_stanza_new(NULL, "x", NULL, &st), 0);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK_INT(epode_stanza_set_attr(st, bad[i], "v"), EPODE_EINVAL);
    CHECK_INT(epode_stanza_set_attr(st, NULL, "v"), EPODE_EINVAL);
    CHECK_INT(epode_stanza_attr_count(st), 0);
    epode_stanza_unref(st);
}

TEST(stanza_set_attr_rejects_invalid_values_and_leaves_element_unchanged)
{
    static const char *const bad[] = {
        "\xFF", "ab\xC3", "\xC0\xAF", "\xED\xA0\x80", "a\001b", "\x1F", "\x0B",
        "\xEF\xBF\xBE", "\xEF\xBF\xBF", "\xF4\x90\x80\x80",
    };
    epode_stanza_t *st;
    CHECK_INT(epode_stanza_new(NULL, "x", NULL, &st), 0);
    CHECK_INT(epode_stanza_set_attr(st, "kept", "old"), 0);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        /* replacing an existing attribute */
        CHECK_INT(epode_stanza_set_attr(st, "kept", bad[i]), EPODE_EINVAL);
        CHECK_STR(epode_stanza_get_attr(st, "kept"), "old");
        /* adding a new one */
        CHECK_INT(epode_stanza_set_attr(st, "new", bad[i]), EPODE_EINVAL);
        CHECK(epode_stanza_get_attr(st, "new") == NULL);
        CHECK_INT(epode_stanza_set_attr(st, "xml:lang", bad[i]), EPODE_EINVAL);
        CHECK_INT(epode_stanza_set_attr_ns(st, "n", "urn:n", "n", bad[i]), EPODE_EINVAL);
        CHECK_INT(epode_stanza_attr_count(st), 1);
    }
    CHECK_STR(xml(st), "<x kept=\"old\"/>");
    epode_stanza_unref(st);
}

TEST(stanza_set_attr_accepts_whitespace_and_markup_characters)
{
    epode_stanza_t *st;
    CHECK_INT(epode_stanza_new(NULL, "x", NULL, &st), 0);
    CHECK_INT(epode_stanza_set_attr(st, "a", "tab\tlf\ncr\r<&>\"'"), 0);
    CHECK_STR(epode_stanza_get_attr(st, "a"), "tab\tlf\ncr\r<&>\"'");
    CHECK_INT(epode_stanza_set_attr(st, "e", ""), 0);
    CHECK_STR(epode_stanza_get_attr(st, "e"), "");
    epode_stanza_unref(st);
}

TEST(stanza_attributes_grow_past_many_entries)
{
    epode_stanza_t *st;
    CHECK_INT(epode_stanza_new(NULL, "x", NULL, &st), 0);
    char name[32], val[32];
    for (int i = 0; i < 200; i++) {
        snprintf(name, sizeof name, "a%d", i);
        snprintf(val, sizeof val, "%d", i * 7);
        CHECK_INT(epode_stanza_set_attr(st, name, val), 0);
    }
    CHECK_INT(epode_stanza_attr_count(st), 200);
    for (int i = 0; i < 200; i++) {
        snprintf(name, sizeof name, "a%d", i);
        snprintf(val, sizeof val, "%d", i * 7);
        CHECK_STR(epode_stanza_get_attr(st, name), val);
    }
    epode_stanza_unref(st);
}

TEST(stanza_common_attribute_shorthands_read_and_write)
{
    epode_stanza_t *st;
    CHECK_INT(epode_stanza_new(NULL, "iq", EPODE_NS_CLIENT, &st), 0);
    CHECK_INT(epode_stanza_set_id(st, "i1"), 0);
    CHECK_INT(epode_stanza_set_type(st, "get"), 0);
    CHECK_INT(epode_stanza_set_to(st, "a@b/c"), 0);
    CHECK_INT(epode_stanza_set_from(st, "d@e/f"), 0);
    CHECK_STR(epode_stanza_get_id(st), "i1");
    CHECK_STR(epode_stanza_get_type(st), "get");
    CHECK_STR(epode_stanza_get_to(st), "a@b/c");
    CHECK_STR(epode_stanza_get_from(st), "d@e/f");
    CHECK_INT(epode_stanza_set_from(st, NULL), 0);
    CHECK(epode_stanza_get_from(st) == NULL);
    epode_stanza_unref(st);
}

/* ---- text ------------------------------------------------------------- */

TEST(stanza_add_text_appends_and_get_text_reads)
{
    epode_stanza_t *st;
    CHECK_INT(epode_stanza_new(NULL, "body", NULL, &st), 0);
    CHECK_STR(epode_stanza_get_text(st), "");
    CHECK_INT(epode_stanza_add_text(st, "Hello", (size_t)-1), 0);
    CHECK_STR(epode_stanza_get_text(st), "Hello");
    CHECK_INT(epode_stanza_add_text(st, ", world!!!", 7), 0);
    CHECK_STR(epode_stanza_get_text(st), "Hello, world");
    CHECK_INT(epode_stanza_add_text(st, "ignored", 0), 0);
    CHECK_STR(epode_stanza_get_text(st), "Hello, world");
    epode_stanza_unref(st);
}

TEST(stanza_add_text_rejects_invalid_text_and_changes_nothing)
{
    epode_stanza_t *st;
    CHECK_INT(epode_stanza_new(NULL, "body", NULL, &st), 0);
    CHECK_INT(epode_stanza_add_text(st, "ok", (size_t)-1), 0);
    CHECK_INT(epode_stanza_add_text(st, "bad\x01", (size_t)-1), EPODE_EINVAL);
    CHECK_INT(epode_stanza_add_text(st, "bad\xFF", (size_t)-1), EPODE_EINVAL);
    CHECK_INT(epode_stanza_add_text(st, "nul\0inside", 10), EPODE_EINVAL);
    CHECK_INT(epode_stanza_add_text(st, "\xC3\xA9", 1), EPODE_EINVAL); /* cut sequence */
    CHECK_INT(epode_stanza_add_text(st, NULL, 0), EPODE_EINVAL);
    CHECK_STR(epode_stanza_get_text(st), "ok");
    CHECK_STR(xml(st), "<body>ok</body>");
    epode_stanza_unref(st);
}

TEST(stanza_set_text_replaces_all_children)
{
    epode_stanza_t *st, *c, *c2;
    CHECK_INT(epode_stanza_new(NULL, "x", NULL, &st), 0);
    CHECK_INT(epode_stanza_add_text(st, "a", (size_t)-1), 0);
    CHECK_INT(epode_stanza_add_child_new(st, "child", NULL, &c), 0);
    CHECK_INT(epode_stanza_add_text(st, "b", (size_t)-1), 0);
    CHECK_INT(epode_stanza_add_child_new(st, "child2", NULL, &c2), 0);
    CHECK_STR(epode_stanza_get_text(st), "ab");
    CHECK_INT(epode_stanza_set_text(st, "new"), 0);
    CHECK_STR(epode_stanza_get_text(st), "new");
    CHECK(epode_stanza_first_child(st) == NULL);
    /* the old children are removed, as epode_stanza_remove() leaves them */
    CHECK(epode_stanza_get_parent(c) == NULL);
    CHECK(epode_stanza_next(c) == NULL);
    CHECK_INT(epode_stanza_remove(c2), EPODE_EINVAL);
    CHECK_STR(epode_stanza_get_name(c), "child"); /* still readable */
    CHECK_STR(xml(st), "<x>new</x>");
    CHECK_INT(epode_stanza_set_text(st, ""), 0);
    CHECK_STR(epode_stanza_get_text(st), "");
    CHECK_STR(xml(st), "<x/>");
    epode_stanza_unref(st);
}

TEST(stanza_set_text_rejects_invalid_text_and_keeps_children)
{
    epode_stanza_t *st;
    CHECK_INT(epode_stanza_new(NULL, "x", NULL, &st), 0);
    CHECK_INT(epode_stanza_add_text(st, "keep", (size_t)-1), 0);
    CHECK_INT(epode_stanza_add_child_new(st, "c", NULL, NULL), 0);
    CHECK_INT(epode_stanza_set_text(st, "\x02"), EPODE_EINVAL);
    CHECK_INT(epode_stanza_set_text(st, NULL), EPODE_EINVAL);
    CHECK_STR(epode_stanza_get_text(st), "keep");
    CHECK_INT(count_children(st), 1);
    epode_stanza_unref(st);
}

TEST(stanza_get_text_joins_mixed_content_pieces)
{
    epode_stanza_t *st, *c;
    CHECK_INT(epode_stanza_new(NULL, "p", NULL, &st), 0);
    CHECK_INT(epode_stanza_add_text(st, "one ", (size_t)-1), 0);
    CHECK_INT(epode_stanza_add_child_new(st, "b", NULL, &c), 0);
    CHECK_INT(epode_stanza_add_text(c, "inner", (size_t)-1), 0);
    CHECK_INT(epode_stanza_add_text(st, "two ", (size_t)-1), 0);
    CHECK_INT(epode_stanza_add_child_new(st, "i", NULL, NULL), 0);
    CHECK_INT(epode_stanza_add_text(st, "three", (size_t)-1), 0);
    /* child elements' text is not the element's own */
    CHECK_STR(epode_stanza_get_text(st), "one two three");
    CHECK_STR(epode_stanza_get_text(c), "inner");
    /* the joined copy is refreshed after more text */
    CHECK_INT(epode_stanza_add_text(st, " four", (size_t)-1), 0);
    CHECK_STR(epode_stanza_get_text(st), "one two three four");
    /* and after removing a child, and after set_text */
    CHECK_INT(epode_stanza_remove(c), 0);
    CHECK_STR(epode_stanza_get_text(st), "one two three four");
    CHECK_INT(epode_stanza_set_text(st, "x"), 0);
    CHECK_STR(epode_stanza_get_text(st), "x");
    epode_stanza_unref(st);
}

TEST(stanza_get_text_keeps_non_ascii_and_markup_characters)
{
    epode_stanza_t *st;
    const char *t = "caf\xC3\xA9 <b> & \"q\" ]]> \xF0\x9F\x98\x80\r\n\t";
    CHECK_INT(epode_stanza_new(NULL, "body", NULL, &st), 0);
    CHECK_INT(epode_stanza_add_text(st, t, (size_t)-1), 0);
    CHECK_STR(epode_stanza_get_text(st), t);
    epode_stanza_unref(st);
}

/* ---- children --------------------------------------------------------- */

TEST(stanza_add_child_new_inherits_the_parents_namespace)
{
    epode_stanza_t *st, *body, *x, *y;
    CHECK_INT(epode_stanza_new(NULL, "message", EPODE_NS_CLIENT, &st), 0);
    CHECK_INT(epode_stanza_add_child_new(st, "body", NULL, &body), 0);
    CHECK_STR(epode_stanza_get_ns(body), EPODE_NS_CLIENT);
    CHECK(epode_stanza_get_parent(body) == st);
    CHECK_INT(epode_stanza_add_child_new(st, "x", "jabber:x:data", &x), 0);
    CHECK_STR(epode_stanza_get_ns(x), "jabber:x:data");
    CHECK_INT(epode_stanza_add_child_new(x, "field", NULL, &y), 0);
    CHECK_STR(epode_stanza_get_ns(y), "jabber:x:data");
    CHECK(epode_stanza_first_child(st) == body);
    CHECK(epode_stanza_next(body) == x);
    CHECK(epode_stanza_next(x) == NULL);
    epode_stanza_unref(st);
}

TEST(stanza_add_child_new_inherits_the_prefix_with_the_namespace)
{
    epode_stanza_t *st, *a, *b;
    CHECK_INT(epode_stanza_new(NULL, "features", EPODE_NS_STREAMS, &st), 0);
    CHECK_INT(epode_stanza_set_prefix(st, "stream"), 0);
    CHECK_INT(epode_stanza_add_child_new(st, "same", NULL, &a), 0);
    CHECK_STR(epode_stanza_get_prefix(a), "stream");
    CHECK_INT(epode_stanza_add_child_new(st, "starttls", "urn:ietf:params:xml:ns:xmpp-tls", &b), 0);
    CHECK(epode_stanza_get_prefix(b) == NULL);
    epode_stanza_unref(st);
}

TEST(stanza_add_child_new_rejects_bad_names_and_adds_nothing)
{
    epode_stanza_t *st, *out = SENTINEL;
    CHECK_INT(epode_stanza_new(NULL, "x", NULL, &st), 0);
    CHECK_INT(epode_stanza_add_child_new(st, "a b", NULL, &out), EPODE_EINVAL);
    CHECK_INT(epode_stanza_add_child_new(st, "", NULL, &out), EPODE_EINVAL);
    CHECK_INT(epode_stanza_add_child_new(st, NULL, NULL, &out), EPODE_EINVAL);
    CHECK_INT(epode_stanza_add_child_new(st, "ok", "urn:\x01", &out), EPODE_EINVAL);
    CHECK_INT(epode_stanza_add_child_new(NULL, "ok", NULL, &out), EPODE_EINVAL);
    CHECK(out == SENTINEL);
    CHECK(epode_stanza_first_child(st) == NULL);
    epode_stanza_unref(st);
}

TEST(stanza_first_child_and_next_skip_text)
{
    epode_stanza_t *st, *a, *b;
    CHECK_INT(epode_stanza_new(NULL, "x", NULL, &st), 0);
    CHECK_INT(epode_stanza_add_text(st, "t0", (size_t)-1), 0);
    CHECK(epode_stanza_first_child(st) == NULL);
    CHECK_INT(epode_stanza_add_child_new(st, "a", NULL, &a), 0);
    CHECK_INT(epode_stanza_add_text(st, "t1", (size_t)-1), 0);
    CHECK_INT(epode_stanza_add_text(st, "t2", (size_t)-1), 0);
    CHECK_INT(epode_stanza_add_child_new(st, "b", NULL, &b), 0);
    CHECK_INT(epode_stanza_add_text(st, "t3", (size_t)-1), 0);
    CHECK(epode_stanza_first_child(st) == a);
    CHECK(epode_stanza_next(a) == b);
    CHECK(epode_stanza_next(b) == NULL);
    CHECK_INT(count_children(st), 2);
    epode_stanza_unref(st);
}

TEST(stanza_find_child_matches_by_name_ns_or_any)
{
    epode_stanza_t *st, *b1, *b2, *x1, *x2, *d;
    CHECK_INT(epode_stanza_new(NULL, "message", EPODE_NS_CLIENT, &st), 0);
    CHECK_INT(epode_stanza_add_text(st, "text first", (size_t)-1), 0);
    CHECK_INT(epode_stanza_add_child_new(st, "body", NULL, &b1), 0);
    CHECK_INT(epode_stanza_add_child_new(st, "x", "jabber:x:oob", &x1), 0);
    CHECK_INT(epode_stanza_add_child_new(st, "body", NULL, &b2), 0);
    CHECK_INT(epode_stanza_add_child_new(st, "x", "jabber:x:data", &x2), 0);
    CHECK_INT(epode_stanza_add_child_new(st, "delay", "urn:xmpp:delay", &d), 0);

    CHECK(epode_stanza_find_child(st, "body", NULL) == b1);
    CHECK(epode_stanza_find_child(st, "body", EPODE_NS_CLIENT) == b1);
    CHECK(epode_stanza_find_child(st, "body", "urn:other") == NULL);
    CHECK(epode_stanza_find_child(st, "x", NULL) == x1);
    CHECK(epode_stanza_find_child(st, "x", "jabber:x:data") == x2);
    CHECK(epode_stanza_find_child(st, NULL, "urn:xmpp:delay") == d);
    CHECK(epode_stanza_find_child(st, NULL, NULL) == b1); /* text skipped */
    CHECK(epode_stanza_find_child(st, "nope", NULL) == NULL);

    CHECK(epode_stanza_find_next(b1, "body", NULL) == b2);
    CHECK(epode_stanza_find_next(b2, "body", NULL) == NULL);
    CHECK(epode_stanza_find_next(x1, "x", NULL) == x2);
    CHECK(epode_stanza_find_next(b1, NULL, NULL) == x1);
    CHECK(epode_stanza_find_next(b1, NULL, "jabber:x:data") == x2);
    CHECK(epode_stanza_find_next(d, NULL, NULL) == NULL);

    /* the loop the header suggests visits every match */
    int n = 0;
    for (epode_stanza_t *c = epode_stanza_find_child(st, NULL, EPODE_NS_CLIENT); c;
         c = epode_stanza_find_next(c, NULL, EPODE_NS_CLIENT))
        n++;
    CHECK_INT(n, 2);
    epode_stanza_unref(st);
}

TEST(stanza_child_text_reads_a_childs_text)
{
    epode_stanza_t *st;
    CHECK_INT(epode_stanza_new_message(NULL, "chat", "a@b", "hi there", &st), 0);
    CHECK_INT(epode_stanza_add_child_new(st, "subject", NULL, NULL), 0);
    CHECK_STR(epode_stanza_child_text(st, "body", NULL), "hi there");
    CHECK_STR(epode_stanza_child_text(st, "body", EPODE_NS_CLIENT), "hi there");
    CHECK_STR(epode_stanza_child_text(st, "subject", NULL), "");
    CHECK(epode_stanza_child_text(st, "thread", NULL) == NULL);
    CHECK(epode_stanza_child_text(st, "body", "urn:other") == NULL);
    epode_stanza_unref(st);
}

TEST(stanza_add_child_copies_from_another_tree)
{
    epode_stanza_t *src, *q, *item, *dst, *copy;
    CHECK_INT(epode_stanza_new(NULL, "iq", EPODE_NS_CLIENT, &src), 0);
    CHECK_INT(epode_stanza_add_child_new(src, "query", "jabber:iq:roster", &q), 0);
    CHECK_INT(epode_stanza_set_attr(q, "ver", "v1"), 0);
    CHECK_INT(epode_stanza_add_child_new(q, "item", NULL, &item), 0);
    CHECK_INT(epode_stanza_set_attr(item, "jid", "romeo@example.net"), 0);
    CHECK_INT(epode_stanza_add_text(item, "text", (size_t)-1), 0);

    CHECK_INT(epode_stanza_new(NULL, "iq", EPODE_NS_CLIENT, &dst), 0);
    CHECK_INT(epode_stanza_add_child(dst, q, &copy), 0);
    CHECK(copy != q);
    CHECK(epode_stanza_get_parent(copy) == dst);
    CHECK(epode_stanza_first_child(dst) == copy);
    CHECK(epode_stanza_equal(copy, q));
    CHECK_STR(epode_stanza_get_ns(copy), "jabber:iq:roster");

    /* independent of the source from now on */
    CHECK_INT(epode_stanza_set_attr(item, "jid", "changed"), 0);
    CHECK_INT(epode_stanza_add_child_new(q, "item", NULL, NULL), 0);
    epode_stanza_unref(src);
    epode_stanza_t *ci = epode_stanza_first_child(copy);
    CHECK_STR(epode_stanza_get_attr(ci, "jid"), "romeo@example.net");
    CHECK_STR(epode_stanza_get_text(ci), "text");
    CHECK_INT(count_children(copy), 1);
    CHECK_STR(xml(dst), "<iq xmlns=\"jabber:client\"><query xmlns=\"jabber:iq:roster\" ver=\"v1\">"
                        "<item jid=\"romeo@example.net\">text</item></query></iq>");
    epode_stanza_unref(dst);
}

TEST(stanza_add_child_copies_a_whole_root)
{
    epode_stanza_t *a, *b;
    CHECK_INT(epode_stanza_new_message(NULL, "chat", NULL, "inner", &a), 0);
    CHECK_INT(epode_stanza_new(NULL, "forwarded", "urn:xmpp:forward:0", &b), 0);
    CHECK_INT(epode_stanza_add_child(b, a, NULL), 0);
    epode_stanza_unref(a);
    CHECK_STR(xml(b), "<forwarded xmlns=\"urn:xmpp:forward:0\"><message xmlns=\"jabber:client\" "
                      "type=\"chat\"><body>inner</body></message></forwarded>");
    epode_stanza_unref(b);
}

TEST(stanza_add_child_of_an_ancestor_into_its_descendant_terminates)
{
    epode_stanza_t *r, *a, *b, *copy;
    CHECK_INT(epode_stanza_new(NULL, "r", NULL, &r), 0);
    CHECK_INT(epode_stanza_add_child_new(r, "a", NULL, &a), 0);
    CHECK_INT(epode_stanza_add_child_new(a, "b", NULL, &b), 0);
    CHECK_INT(epode_stanza_add_child(b, r, &copy), 0);
    /* the copy is a snapshot taken before it was added */
    CHECK_STR(xml(r), "<r><a><b><r><a><b/></a></r></b></a></r>");
    CHECK(epode_stanza_get_parent(copy) == b);
    /* and once more, the element into itself */
    CHECK_INT(epode_stanza_add_child(a, a, NULL), 0);
    CHECK_STR(xml(r), "<r><a><b><r><a><b/></a></r></b><a><b><r><a><b/></a></r></b></a></a></r>");
    epode_stanza_unref(r);
}

TEST(stanza_add_child_rejects_bad_arguments)
{
    epode_stanza_t *a, *out = SENTINEL;
    CHECK_INT(epode_stanza_new(NULL, "a", NULL, &a), 0);
    CHECK_INT(epode_stanza_add_child(a, NULL, &out), EPODE_EINVAL);
    CHECK_INT(epode_stanza_add_child(NULL, a, &out), EPODE_EINVAL);
    CHECK(out == SENTINEL);
    epode_stanza_unref(a);
}

TEST(stanza_remove_unlinks_and_the_element_stays_readable)
{
    epode_stanza_t *st, *a, *b, *c, *gc;
    CHECK_INT(epode_stanza_new(NULL, "x", NULL, &st), 0);
    CHECK_INT(epode_stanza_add_child_new(st, "a", NULL, &a), 0);
    CHECK_INT(epode_stanza_add_child_new(st, "b", NULL, &b), 0);
    CHECK_INT(epode_stanza_add_child_new(st, "c", NULL, &c), 0);
    CHECK_INT(epode_stanza_set_attr(b, "k", "v"), 0);
    CHECK_INT(epode_stanza_add_child_new(b, "gc", NULL, &gc), 0);
    CHECK_INT(epode_stanza_add_text(gc, "deep", (size_t)-1), 0);

    CHECK_INT(epode_stanza_remove(b), 0);
    CHECK(epode_stanza_get_parent(b) == NULL);
    CHECK(epode_stanza_next(a) == c);
    CHECK(epode_stanza_find_child(st, "b", NULL) == NULL);
    CHECK_INT(count_children(st), 2);
    CHECK_STR(xml(st), "<x><a/><c/></x>");
    /* the removed subtree is intact */
    CHECK_STR(epode_stanza_get_name(b), "b");
    CHECK_STR(epode_stanza_get_attr(b, "k"), "v");
    CHECK(epode_stanza_first_child(b) == gc);
    CHECK_STR(epode_stanza_get_text(gc), "deep");
    CHECK_STR(xml(b), "<b k=\"v\"><gc>deep</gc></b>");
    /* removing again, or removing a root, is refused */
    CHECK_INT(epode_stanza_remove(b), EPODE_EINVAL);
    CHECK_INT(epode_stanza_remove(st), EPODE_EINVAL);
    /* first and last */
    CHECK_INT(epode_stanza_remove(a), 0);
    CHECK_INT(epode_stanza_remove(c), 0);
    CHECK(epode_stanza_first_child(st) == NULL);
    CHECK_STR(xml(st), "<x/>");
    /* and new children still append correctly */
    CHECK_INT(epode_stanza_add_child_new(st, "d", NULL, NULL), 0);
    CHECK_STR(xml(st), "<x><d/></x>");
    epode_stanza_unref(st);
    /* (ASan: nothing of b is touched after the tree is gone) */
}

TEST(stanza_removed_element_can_be_added_back_as_a_copy)
{
    epode_stanza_t *st, *a;
    CHECK_INT(epode_stanza_new(NULL, "x", NULL, &st), 0);
    CHECK_INT(epode_stanza_add_child_new(st, "a", NULL, &a), 0);
    CHECK_INT(epode_stanza_add_child_new(st, "b", NULL, NULL), 0);
    CHECK_INT(epode_stanza_remove(a), 0);
    CHECK_INT(epode_stanza_add_child(st, a, NULL), 0);
    CHECK_STR(xml(st), "<x><b/><a/></x>");
    epode_stanza_unref(st);
}

/* ---- copy and equality -------------------------------------------------- */

static epode_stanza_t *sample_tree(void)
{
    epode_stanza_t *st, *q, *it;
    if (epode_stanza_new(NULL, "iq", EPODE_NS_CLIENT, &st) < 0)
        return NULL;
    epode_stanza_set_attr(st, "type", "result");
    epode_stanza_set_attr(st, "id", "r1");
    epode_stanza_set_attr(st, "xml:lang", "en");
    epode_stanza_add_child_new(st, "query", "jabber:iq:roster", &q);
    epode_stanza_set_attr_ns(q, "mark", "urn:m", "m", "1");
    epode_stanza_add_text(q, "lead ", (size_t)-1);
    epode_stanza_add_child_new(q, "item", NULL, &it);
    epode_stanza_set_attr(it, "jid", "a@b");
    epode_stanza_add_child_new(it, "group", NULL, NULL);
    epode_stanza_add_text(q, "tail", (size_t)-1);
    return st;
}

TEST(stanza_copy_is_deep_and_independent)
{
    epode_stanza_t *st = sample_tree(), *cp = SENTINEL;
    CHECK(st != NULL);
    const char *before = xml(st);
    CHECK(before != NULL);
    char saved[8192];
    snprintf(saved, sizeof saved, "%s", before);
    CHECK_INT(epode_stanza_copy(st, &cp), 0);
    CHECK(cp != st && cp != SENTINEL);
    CHECK(epode_stanza_equal(st, cp));
    CHECK_STR(xml(cp), saved);
    /* change the original every way there is */
    epode_stanza_t *q = epode_stanza_first_child(st);
    CHECK_INT(epode_stanza_set_attr(st, "type", "error"), 0);
    CHECK_INT(epode_stanza_set_attr(q, "ver", "2"), 0);
    CHECK_INT(epode_stanza_add_text(q, "more", (size_t)-1), 0);
    CHECK_INT(epode_stanza_remove(epode_stanza_first_child(q)), 0);
    CHECK(!epode_stanza_equal(st, cp));
    epode_stanza_unref(st);
    CHECK_STR(xml(cp), saved);
    epode_stanza_unref(cp);
}

TEST(stanza_copy_of_a_child_is_a_root_with_its_namespace)
{
    epode_stanza_t *st = sample_tree(), *cp;
    CHECK(st != NULL);
    epode_stanza_t *item = epode_stanza_find_child(epode_stanza_first_child(st), "item", NULL);
    CHECK(item != NULL);
    CHECK_INT(epode_stanza_copy(item, &cp), 0);
    epode_stanza_unref(st);
    CHECK(epode_stanza_get_parent(cp) == NULL);
    CHECK_STR(epode_stanza_get_ns(cp), "jabber:iq:roster"); /* it was inherited */
    CHECK_STR(xml(cp), "<item xmlns=\"jabber:iq:roster\" jid=\"a@b\"><group/></item>");
    epode_stanza_unref(cp);
}

TEST(stanza_copy_uses_the_same_allocator)
{
    failmem f = {0};
    epode_mem_t mem = FAILMEM(f);
    epode_stanza_t *st, *cp;
    CHECK_INT(epode_stanza_new_message(&mem, "chat", "a@b", "hi", &st), 0);
    long allocs = f.allocs;
    CHECK_INT(epode_stanza_copy(st, &cp), 0);
    CHECK(f.allocs > allocs);
    epode_stanza_unref(st);
    CHECK(f.live > 0);
    epode_stanza_unref(cp);
    CHECK_INT(f.live, 0);
}

TEST(stanza_copy_rejects_bad_arguments)
{
    epode_stanza_t *st, *out = SENTINEL;
    CHECK_INT(epode_stanza_new(NULL, "a", NULL, &st), 0);
    CHECK_INT(epode_stanza_copy(NULL, &out), EPODE_EINVAL);
    CHECK_INT(epode_stanza_copy(st, NULL), EPODE_EINVAL);
    CHECK(out == SENTINEL);
    epode_stanza_unref(st);
}

TEST(stanza_equal_ignores_attribute_order)
{
    epode_stanza_t *a, *b;
    CHECK_INT(epode_stanza_new(NULL, "x", "urn:x", &a), 0);
    CHECK_INT(epode_stanza_new(NULL, "x", "urn:x", &b), 0);
    epode_stanza_set_attr(a, "one", "1");
    epode_stanza_set_attr(a, "two", "2");
    epode_stanza_set_attr(a, "xml:lang", "en");
    epode_stanza_set_attr_ns(a, "n", "urn:n", "p", "3");
    epode_stanza_set_attr_ns(b, "n", "urn:n", "q", "3"); /* prefix of attributes is not content */
    epode_stanza_set_attr(b, "xml:lang", "en");
    epode_stanza_set_attr(b, "two", "2");
    epode_stanza_set_attr(b, "one", "1");
    CHECK(epode_stanza_equal(a, b));
    CHECK(epode_stanza_equal(b, a));
    epode_stanza_set_attr(b, "one", "one");
    CHECK(!epode_stanza_equal(a, b));
    epode_stanza_set_attr(b, "one", "1");
    epode_stanza_set_attr(b, "three", "3");
    CHECK(!epode_stanza_equal(a, b));
    CHECK(!epode_stanza_equal(b, a));
    epode_stanza_unref(a);
    epode_stanza_unref(b);
}

TEST(stanza_equal_compares_text_split_differently_as_one)
{
    epode_stanza_t *a, *b, *c;
    CHECK_INT(epode_stanza_new(NULL, "body", NULL, &a), 0);
    CHECK_INT(epode_stanza_new(NULL, "body", NULL, &b), 0);
    CHECK_INT(epode_stanza_new(NULL, "body", NULL, &c), 0);
    epode_stanza_add_text(a, "hello world", (size_t)-1);
    epode_stanza_add_text(b, "hel", (size_t)-1);
    epode_stanza_add_text(b, "lo w", (size_t)-1);
    epode_stanza_add_text(b, "orld", (size_t)-1);
    for (const char *p = "hello world"; *p; p++)
        epode_stanza_add_text(c, p, 1);
    CHECK(epode_stanza_equal(a, b));
    CHECK(epode_stanza_equal(b, c));
    CHECK(epode_stanza_equal(c, a));
    epode_stanza_add_text(c, "!", 1);
    CHECK(!epode_stanza_equal(a, c));
    CHECK(!epode_stanza_equal(c, a));
    epode_stanza_unref(a);
    epode_stanza_unref(b);
    epode_stanza_unref(c);
}

TEST(stanza_equal_compares_mixed_content_in_order)
{
    epode_stanza_t *a, *b;
    CHECK_INT(epode_stanza_new(NULL, "p", NULL, &a), 0);
    CHECK_INT(epode_stanza_new(NULL, "p", NULL, &b), 0);
    epode_stanza_add_text(a, "ab", (size_t)-1);
    epode_stanza_add_child_new(a, "br", NULL, NULL);
    epode_stanza_add_text(a, "c", (size_t)-1);
    epode_stanza_add_text(b, "a", (size_t)-1);
    epode_stanza_add_text(b, "b", (size_t)-1);
    epode_stanza_add_child_new(b, "br", NULL, NULL);
    epode_stanza_add_text(b, "c", (size_t)-1);
    CHECK(epode_stanza_equal(a, b));
    /* same characters, element in another place */
    epode_stanza_t *c;
    CHECK_INT(epode_stanza_new(NULL, "p", NULL, &c), 0);
    epode_stanza_add_text(c, "abc", (size_t)-1);
    epode_stanza_add_child_new(c, "br", NULL, NULL);
    CHECK(!epode_stanza_equal(a, c));
    CHECK(!epode_stanza_equal(c, a));
    epode_stanza_unref(a);
    epode_stanza_unref(b);
    epode_stanza_unref(c);
}

TEST(stanza_equal_sees_differences_in_names_namespaces_prefixes_and_children)
{
    epode_stanza_t *a, *b;
    CHECK_INT(epode_stanza_new(NULL, "x", "urn:a", &a), 0);
    CHECK_INT(epode_stanza_new(NULL, "x", "urn:b", &b), 0);
    CHECK(!epode_stanza_equal(a, b)); /* different ns */
    epode_stanza_set_ns(b, "urn:a");
    CHECK(epode_stanza_equal(a, b));
    epode_stanza_set_ns(b, NULL);
    CHECK(!epode_stanza_equal(a, b)); /* ns vs none */
    epode_stanza_set_ns(b, "urn:a");
    epode_stanza_set_prefix(b, "p");
    CHECK(!epode_stanza_equal(a, b)); /* prefix */
    epode_stanza_set_prefix(b, NULL);
    epode_stanza_add_child_new(a, "c1", NULL, NULL);
    CHECK(!epode_stanza_equal(a, b)); /* a child more */
    CHECK(!epode_stanza_equal(b, a));
    epode_stanza_add_child_new(b, "c2", NULL, NULL);
    CHECK(!epode_stanza_equal(a, b)); /* a different child */
    epode_stanza_t *c1, *c2;
    CHECK_INT(epode_stanza_new(NULL, "y", NULL, &c1), 0);
    CHECK_INT(epode_stanza_new(NULL, "z", NULL, &c2), 0);
    CHECK(!epode_stanza_equal(c1, c2)); /* different name */
    CHECK(epode_stanza_equal(c1, c1));
    CHECK(epode_stanza_equal(NULL, NULL));
    CHECK(!epode_stanza_equal(c1, NULL));
    CHECK(!epode_stanza_equal(NULL, c1));
    /* text vs nothing */
    epode_stanza_unref(c2);
    CHECK_INT(epode_stanza_new(NULL, "y", NULL, &c2), 0);
    epode_stanza_add_text(c1, "t", 1);
    CHECK(!epode_stanza_equal(c1, c2));
    CHECK(!epode_stanza_equal(c2, c1));
    epode_stanza_unref(c1);
    epode_stanza_unref(c2);
    epode_stanza_unref(a);
    epode_stanza_unref(b);
}

TEST(stanza_equal_child_order_matters)
{
    epode_stanza_t *a, *b;
    CHECK_INT(epode_stanza_new(NULL, "x", NULL, &a), 0);
    CHECK_INT(epode_stanza_new(NULL, "x", NULL, &b), 0);
    epode_stanza_add_child_new(a, "one", NULL, NULL);
    epode_stanza_add_child_new(a, "two", NULL, NULL);
    epode_stanza_add_child_new(b, "two", NULL, NULL);
    epode_stanza_add_child_new(b, "one", NULL, NULL);
    CHECK(!epode_stanza_equal(a, b));
    epode_stanza_unref(a);
    epode_stanza_unref(b);
}

/* ---- builders ----------------------------------------------------------- */

TEST(message_new_builds_a_client_message)
{
    epode_stanza_t *m;
    CHECK_INT(epode_stanza_new_message(NULL, "chat", "juliet@example.com", "Art thou <not> Romeo & ...?",
                                &m), 0);
    CHECK_STR(epode_stanza_get_name(m), "message");
    CHECK_STR(epode_stanza_get_ns(m), EPODE_NS_CLIENT);
    CHECK_STR(epode_stanza_get_type(m), "chat");
    CHECK_STR(epode_stanza_get_to(m), "juliet@example.com");
    CHECK(epode_stanza_get_id(m) == NULL);
    CHECK_STR(epode_stanza_child_text(m, "body", EPODE_NS_CLIENT), "Art thou <not> Romeo & ...?");
    CHECK_STR(xml(m), "<message xmlns=\"jabber:client\" type=\"chat\" to=\"juliet@example.com\">"
                      "<body>Art thou &lt;not&gt; Romeo &amp; ...?</body></message>");
    epode_stanza_unref(m);
}

TEST(message_new_with_nulls_has_no_attributes_or_body)
{
    epode_stanza_t *m;
    CHECK_INT(epode_stanza_new_message(NULL, NULL, NULL, NULL, &m), 0);
    CHECK_INT(epode_stanza_attr_count(m), 0);
    CHECK(epode_stanza_first_child(m) == NULL);
    CHECK_STR(xml(m), "<message xmlns=\"jabber:client\"/>");
    epode_stanza_unref(m);
    CHECK_INT(epode_stanza_new_message(NULL, NULL, NULL, "", &m), 0);
    CHECK_STR(xml(m), "<message xmlns=\"jabber:client\"><body/></message>");
    epode_stanza_unref(m);
}

TEST(message_new_rejects_invalid_text_without_leaking)
{
    failmem f = {0};
    epode_mem_t mem = FAILMEM(f);
    epode_stanza_t *m = SENTINEL;
    CHECK_INT(epode_stanza_new_message(&mem, "chat", "a@b", "bad\x01", &m), EPODE_EINVAL);
    CHECK_INT(epode_stanza_new_message(&mem, "chat", "a@b\xFF", "ok", &m), EPODE_EJID);
    CHECK_INT(epode_stanza_new_message(&mem, "\x02", NULL, NULL, &m), EPODE_EINVAL);
    CHECK_INT(epode_stanza_new_message(&mem, NULL, NULL, NULL, NULL), EPODE_EINVAL);
    CHECK(m == SENTINEL);
    CHECK_INT(f.live, 0);
}

TEST(message_new_with_body_needs_very_few_allocations)
{
    failmem f = {0};
    epode_mem_t mem = FAILMEM(f);
    epode_stanza_t *m;
    CHECK_INT(epode_stanza_new_message(&mem, "chat", "juliet@capulet.example/balcony",
                                "Wherefore art thou, Romeo?", &m), 0);
    printf("# message_new with body: %ld allocation(s)\n", f.allocs);
    CHECK(f.allocs <= 3);
    epode_stanza_unref(m);
    CHECK_INT(f.live, 0);
}

TEST(presence_new_builds_a_client_presence)
{
    epode_stanza_t *p;
    CHECK_INT(epode_stanza_new_presence(NULL, NULL, NULL, &p), 0);
    CHECK_STR(epode_stanza_get_name(p), "presence");
    CHECK_STR(epode_stanza_get_ns(p), EPODE_NS_CLIENT);
    CHECK(epode_stanza_get_type(p) == NULL);
    CHECK_STR(xml(p), "<presence xmlns=\"jabber:client\"/>");
    epode_stanza_unref(p);
    CHECK_INT(epode_stanza_new_presence(NULL, "subscribe", "romeo@example.net", &p), 0);
    CHECK_STR(epode_stanza_get_type(p), "subscribe");
    CHECK_STR(epode_stanza_get_to(p), "romeo@example.net");
    epode_stanza_unref(p);
    CHECK_INT(epode_stanza_new_presence(NULL, NULL, NULL, NULL), EPODE_EINVAL);
}

TEST(iq_new_accepts_the_four_types_and_keeps_a_given_id)
{
    static const char *const types[] = {"get", "set", "result", "error"};
    for (int i = 0; i < 4; i++) {
        epode_stanza_t *iq;
        CHECK_INT(epode_stanza_new_iq(NULL, types[i], "abc", &iq), 0);
        CHECK_STR(epode_stanza_get_name(iq), "iq");
        CHECK_STR(epode_stanza_get_ns(iq), EPODE_NS_CLIENT);
        CHECK_STR(epode_stanza_get_type(iq), types[i]);
        CHECK_STR(epode_stanza_get_id(iq), "abc");
        epode_stanza_unref(iq);
    }
}

TEST(iq_new_rejects_other_types)
{
    static const char *const bad[] = {"GET", "Get", "", "normal", "chat", "gets", "ge"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        epode_stanza_t *iq = SENTINEL;
        CHECK_INT(epode_stanza_new_iq(NULL, bad[i], "x", &iq), EPODE_EINVAL);
        CHECK(iq == SENTINEL);
    }
    epode_stanza_t *iq = SENTINEL;
    CHECK_INT(epode_stanza_new_iq(NULL, NULL, "x", &iq), EPODE_EINVAL);
    CHECK_INT(epode_stanza_new_iq(NULL, "get", "x", NULL), EPODE_EINVAL);
    CHECK_INT(epode_stanza_new_iq(NULL, "get", "bad\x01", &iq), EPODE_EINVAL);
    CHECK(iq == SENTINEL);
}

static int is_base64url(const char *s)
{
    for (; *s; s++)
        if (!strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", *s))
            return 0;
    return 1;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

TEST(iq_new_generates_distinct_16_character_ids)
{
    enum { N = 1000 };
    static char ids[N][17];
    static const char *sorted[N];
    for (int i = 0; i < N; i++) {
        epode_stanza_t *iq;
        CHECK_INT(epode_stanza_new_iq(NULL, "get", NULL, &iq), 0);
        const char *id = epode_stanza_get_id(iq);
        CHECK(id != NULL);
        CHECK_INT(strlen(id), 16);
        CHECK(is_base64url(id));
        memcpy(ids[i], id, 17);
        sorted[i] = ids[i];
        epode_stanza_unref(iq);
    }
    qsort(sorted, N, sizeof sorted[0], cmp_str);
    for (int i = 1; i < N; i++)
        CHECK(strcmp(sorted[i - 1], sorted[i]) != 0);
}

TEST(stanza_set_new_id_sets_and_returns_a_fresh_id)
{
    epode_stanza_t *st;
    CHECK_INT(epode_stanza_new_message(NULL, NULL, NULL, NULL, &st), 0);
    CHECK_INT(epode_stanza_set_id(st, "old"), 0);
    const char *id = NULL;
    CHECK_INT(epode_stanza_set_new_id(st, &id), 0);
    CHECK(id != NULL);
    CHECK(id == epode_stanza_get_id(st));
    CHECK_INT(strlen(id), 16);
    CHECK(is_base64url(id));
    CHECK(strcmp(id, "old") != 0);
    CHECK_INT(epode_stanza_attr_count(st), 1);
    char first[17];
    memcpy(first, id, 17);
    CHECK_INT(epode_stanza_set_new_id(st, NULL), 0);
    CHECK(strcmp(first, epode_stanza_get_id(st)) != 0);
    CHECK_INT(epode_stanza_set_new_id(NULL, &id), EPODE_EINVAL);
    epode_stanza_unref(st);
}

/* ---- replies -------------------------------------------------------- */

static epode_stanza_t *make_stanza(const char *name, const char *type, int with_child)
{
    epode_stanza_t *st, *c;
    if (epode_stanza_new(NULL, name, EPODE_NS_CLIENT, &st) < 0)
        return NULL;
    epode_stanza_set_from(st, "romeo@example.net/orchard");
    epode_stanza_set_to(st, "juliet@example.com/balcony");
    epode_stanza_set_id(st, "id-42");
    if (type)
        epode_stanza_set_type(st, type);
    if (with_child) {
        epode_stanza_add_child_new(st, "query", "http://jabber.org/protocol/disco#info", &c);
        epode_stanza_set_attr(c, "node", "n1");
        epode_stanza_add_child_new(c, "feature", NULL, NULL);
    }
    return st;
}

TEST(stanza_reply_swaps_addresses_and_keeps_id_and_type)
{
    epode_stanza_t *st = make_stanza("message", "chat", 1), *r = NULL;
    CHECK(st != NULL);
    CHECK_INT(epode_stanza_reply(st, &r), 0);
    CHECK_STR(epode_stanza_get_name(r), "message");
    CHECK_STR(epode_stanza_get_ns(r), EPODE_NS_CLIENT);
    CHECK_STR(epode_stanza_get_to(r), "romeo@example.net/orchard");
    CHECK_STR(epode_stanza_get_from(r), "juliet@example.com/balcony");
    CHECK_STR(epode_stanza_get_id(r), "id-42");
    CHECK_STR(epode_stanza_get_type(r), "chat");
    CHECK(epode_stanza_first_child(r) == NULL); /* no children copied */
    epode_stanza_unref(st);
    CHECK_STR(epode_stanza_get_to(r), "romeo@example.net/orchard"); /* own copies */
    epode_stanza_unref(r);
}

TEST(stanza_reply_to_iq_get_and_set_is_a_result)
{
    static const char *const in[] = {"get", "set", "result"};
    for (int i = 0; i < 3; i++) {
        epode_stanza_t *st = make_stanza("iq", in[i], 1), *r;
        CHECK(st != NULL);
        CHECK_INT(epode_stanza_reply(st, &r), 0);
        CHECK_STR(epode_stanza_get_type(r), "result");
        CHECK_STR(epode_stanza_get_id(r), "id-42");
        CHECK_STR(epode_stanza_get_to(r), "romeo@example.net/orchard");
        epode_stanza_unref(st);
        epode_stanza_unref(r);
    }
}

TEST(stanza_reply_without_addresses_has_none)
{
    epode_stanza_t *st, *r;
    CHECK_INT(epode_stanza_new_presence(NULL, NULL, NULL, &st), 0);
    CHECK_INT(epode_stanza_reply(st, &r), 0);
    CHECK_INT(epode_stanza_attr_count(r), 0);
    CHECK_STR(xml(r), "<presence xmlns=\"jabber:client\"/>");
    epode_stanza_unref(st);
    epode_stanza_unref(r);
    /* only a from: the reply gets a to, no from */
    CHECK_INT(epode_stanza_new_message(NULL, "normal", NULL, NULL, &st), 0);
    CHECK_INT(epode_stanza_set_from(st, "a@b"), 0);
    CHECK_INT(epode_stanza_reply(st, &r), 0);
    CHECK_STR(epode_stanza_get_to(r), "a@b");
    CHECK(epode_stanza_get_from(r) == NULL);
    epode_stanza_unref(st);
    epode_stanza_unref(r);
}

TEST(stanza_reply_keeps_a_prefixed_name)
{
    epode_stanza_t *st, *r;
    CHECK_INT(epode_stanza_new(NULL, "message", EPODE_NS_CLIENT, &st), 0);
    CHECK_INT(epode_stanza_set_prefix(st, "c"), 0);
    CHECK_INT(epode_stanza_reply(st, &r), 0);
    CHECK_STR(epode_stanza_get_prefix(r), "c");
    CHECK_STR(xml(r), "<c:message xmlns:c=\"jabber:client\"/>");
    epode_stanza_unref(st);
    epode_stanza_unref(r);
}

TEST(stanza_reply_rejects_bad_arguments)
{
    epode_stanza_t *st, *r = SENTINEL;
    CHECK_INT(epode_stanza_new_message(NULL, NULL, NULL, NULL, &st), 0);
    CHECK_INT(epode_stanza_reply(NULL, &r), EPODE_EINVAL);
    CHECK_INT(epode_stanza_reply(st, NULL), EPODE_EINVAL);
    CHECK(r == SENTINEL);
    epode_stanza_unref(st);
}

/* ---- error conditions ---------------------------------------------------- */

/* RFC 6120 §8.3.3, written out independently of the header's table. */
static const struct {
    epode_stanza_cond_t cond;
    const char *name;
    epode_error_type_t type;
} rfc_conditions[] = {
    {EPODE_COND_BAD_REQUEST, "bad-request", EPODE_ERRTYPE_MODIFY},
    {EPODE_COND_CONFLICT, "conflict", EPODE_ERRTYPE_CANCEL},
    {EPODE_COND_FEATURE_NOT_IMPLEMENTED, "feature-not-implemented", EPODE_ERRTYPE_CANCEL},
    {EPODE_COND_FORBIDDEN, "forbidden", EPODE_ERRTYPE_AUTH},
    {EPODE_COND_GONE, "gone", EPODE_ERRTYPE_CANCEL},
    {EPODE_COND_INTERNAL_SERVER_ERROR, "internal-server-error", EPODE_ERRTYPE_CANCEL},
    {EPODE_COND_ITEM_NOT_FOUND, "item-not-found", EPODE_ERRTYPE_CANCEL},
    {EPODE_COND_JID_MALFORMED, "jid-malformed", EPODE_ERRTYPE_MODIFY},
    {EPODE_COND_NOT_ACCEPTABLE, "not-acceptable", EPODE_ERRTYPE_MODIFY},
    {EPODE_COND_NOT_ALLOWED, "not-allowed", EPODE_ERRTYPE_CANCEL},
    {EPODE_COND_NOT_AUTHORIZED, "not-authorized", EPODE_ERRTYPE_AUTH},
    {EPODE_COND_POLICY_VIOLATION, "policy-violation", EPODE_ERRTYPE_MODIFY},
    {EPODE_COND_RECIPIENT_UNAVAILABLE, "recipient-unavailable", EPODE_ERRTYPE_WAIT},
    {EPODE_COND_REDIRECT, "redirect", EPODE_ERRTYPE_MODIFY},
    {EPODE_COND_REGISTRATION_REQUIRED, "registration-required", EPODE_ERRTYPE_AUTH},
    {EPODE_COND_REMOTE_SERVER_NOT_FOUND, "remote-server-not-found", EPODE_ERRTYPE_CANCEL},
    {EPODE_COND_REMOTE_SERVER_TIMEOUT, "remote-server-timeout", EPODE_ERRTYPE_WAIT},
    {EPODE_COND_RESOURCE_CONSTRAINT, "resource-constraint", EPODE_ERRTYPE_WAIT},
    {EPODE_COND_SERVICE_UNAVAILABLE, "service-unavailable", EPODE_ERRTYPE_CANCEL},
    {EPODE_COND_SUBSCRIPTION_REQUIRED, "subscription-required", EPODE_ERRTYPE_AUTH},
    {EPODE_COND_UNDEFINED_CONDITION, "undefined-condition", EPODE_ERRTYPE_CANCEL},
    {EPODE_COND_UNEXPECTED_REQUEST, "unexpected-request", EPODE_ERRTYPE_WAIT},
};
#define N_RFC_CONDITIONS (sizeof rfc_conditions / sizeof rfc_conditions[0])

static const char *const type_names[] = {NULL, "auth", "cancel", "continue", "modify", "wait"};

TEST(stanza_condition_table_covers_rfc6120)
{
    CHECK_INT(N_RFC_CONDITIONS, EPODE_COND__COUNT - 1);
    for (size_t i = 0; i < N_RFC_CONDITIONS; i++) {
        CHECK_STR(epode_stanza_cond_name(rfc_conditions[i].cond), rfc_conditions[i].name);
        CHECK_INT(epode_stanza_cond_from_name(rfc_conditions[i].name), rfc_conditions[i].cond);
        CHECK_INT(epode_stanza_cond_default_type(rfc_conditions[i].cond), rfc_conditions[i].type);
    }
}

TEST(stanza_cond_names_round_trip_and_unknown_names_are_none)
{
    for (int c = 1; c < EPODE_COND__COUNT; c++) {
        const char *n = epode_stanza_cond_name((epode_stanza_cond_t)c);
        CHECK(n != NULL);
        CHECK_INT(epode_stanza_cond_from_name(n), c);
        for (int d = 1; d < c; d++)
            CHECK(strcmp(n, epode_stanza_cond_name((epode_stanza_cond_t)d)) != 0);
    }
    CHECK(epode_stanza_cond_name(EPODE_COND_NONE) == NULL);
    CHECK(epode_stanza_cond_name(EPODE_COND__COUNT) == NULL);
    CHECK(epode_stanza_cond_name((epode_stanza_cond_t)-1) == NULL);
    CHECK(epode_stanza_cond_name((epode_stanza_cond_t)1000) == NULL);
    CHECK_INT(epode_stanza_cond_from_name(NULL), EPODE_COND_NONE);
    CHECK_INT(epode_stanza_cond_from_name(""), EPODE_COND_NONE);
    CHECK_INT(epode_stanza_cond_from_name("bogus"), EPODE_COND_NONE);
    CHECK_INT(epode_stanza_cond_from_name("Bad-Request"), EPODE_COND_NONE);
    CHECK_INT(epode_stanza_cond_from_name("bad-request "), EPODE_COND_NONE);
    CHECK_INT(epode_stanza_cond_from_name("not-well-formed"), EPODE_COND_NONE); /* stream only */
}

static const char *const rfc_stream_conditions[] = {
    "bad-format", "bad-namespace-prefix", "conflict", "connection-timeout", "host-gone",
    "host-unknown", "improper-addressing", "internal-server-error", "invalid-from",
    "invalid-namespace", "invalid-xml", "not-authorized", "not-well-formed",
    "policy-violation", "remote-connection-failed", "reset", "resource-constraint",
    "restricted-xml", "see-other-host", "system-shutdown", "undefined-condition",
    "unsupported-encoding", "unsupported-feature", "unsupported-stanza-type",
    "unsupported-version",
};

TEST(stream_cond_names_round_trip_for_every_condition)
{
    size_t n = sizeof rfc_stream_conditions / sizeof rfc_stream_conditions[0];
    CHECK_INT(n, EPODE_STREAM__COUNT - 1);
    for (size_t i = 0; i < n; i++) {
        epode_stream_cond_t c = epode_stream_cond_from_name(rfc_stream_conditions[i]);
        CHECK(c != EPODE_STREAM_NONE);
        CHECK_INT(c, (int)i + 1);
        CHECK_STR(epode_stream_cond_name(c), rfc_stream_conditions[i]);
    }
    for (int c = 1; c < EPODE_STREAM__COUNT; c++)
        CHECK_INT(epode_stream_cond_from_name(epode_stream_cond_name((epode_stream_cond_t)c)), c);
    CHECK_INT(epode_stream_cond_from_name("not-well-formed"), EPODE_STREAM_NOT_WELL_FORMED);
    CHECK_INT(epode_stream_cond_from_name("restricted-xml"), EPODE_STREAM_RESTRICTED_XML);
    CHECK_INT(epode_stream_cond_from_name("policy-violation"), EPODE_STREAM_POLICY_VIOLATION);
}

TEST(stream_cond_name_of_none_and_unknown_values)
{
    CHECK_STR(epode_stream_cond_name(EPODE_STREAM_NONE), "none");
    CHECK(epode_stream_cond_name(EPODE_STREAM__COUNT) == NULL);
    CHECK(epode_stream_cond_name((epode_stream_cond_t)-1) == NULL);
    CHECK(epode_stream_cond_name((epode_stream_cond_t)999) == NULL);
    CHECK_INT(epode_stream_cond_from_name(NULL), EPODE_STREAM_NONE);
    CHECK_INT(epode_stream_cond_from_name(""), EPODE_STREAM_NONE);
    CHECK_INT(epode_stream_cond_from_name("none"), EPODE_STREAM_NONE);
    CHECK_INT(epode_stream_cond_from_name("Not-Well-Formed"), EPODE_STREAM_NONE);
    CHECK_INT(epode_stream_cond_from_name("item-not-found"), EPODE_STREAM_NONE); /* stanza only */
}

TEST(error_type_names_round_trip)
{
    for (int t = EPODE_ERRTYPE_AUTH; t <= EPODE_ERRTYPE_WAIT; t++) {
        CHECK_STR(epode_error_type_name((epode_error_type_t)t), type_names[t]);
        CHECK_INT(epode_error_type_from_name(type_names[t]), t);
    }
    CHECK(epode_error_type_name(EPODE_ERRTYPE_DEFAULT) == NULL);
    CHECK(epode_error_type_name((epode_error_type_t)6) == NULL);
    CHECK(epode_error_type_name((epode_error_type_t)-1) == NULL);
    CHECK_INT(epode_error_type_from_name(NULL), EPODE_ERRTYPE_DEFAULT);
    CHECK_INT(epode_error_type_from_name(""), EPODE_ERRTYPE_DEFAULT);
    CHECK_INT(epode_error_type_from_name("Cancel"), EPODE_ERRTYPE_DEFAULT);
    CHECK_INT(epode_error_type_from_name("error"), EPODE_ERRTYPE_DEFAULT);
}

/* Checks an error reply's shell and its <error/>; returns the <error/>. */
static epode_stanza_t *check_error_shell(const epode_stanza_t *r, const char *name)
{
    if (strcmp(epode_stanza_get_name(r), name) != 0)
        return NULL;
    if (!epode_stanza_get_ns(r) || strcmp(epode_stanza_get_ns(r), EPODE_NS_CLIENT) != 0)
        return NULL;
    const char *to = epode_stanza_get_to(r), *from = epode_stanza_get_from(r);
    const char *id = epode_stanza_get_id(r), *type = epode_stanza_get_type(r);
    if (!to || strcmp(to, "romeo@example.net/orchard") || !from ||
        strcmp(from, "juliet@example.com/balcony") || !id || strcmp(id, "id-42") || !type ||
        strcmp(type, "error"))
        return NULL;
    epode_stanza_t *err = epode_stanza_find_child(r, "error", EPODE_NS_CLIENT);
    return err;
}

TEST(error_reply_for_every_condition_has_the_rfc_default_type)
{
    static const char *const kinds[][2] = {{"iq", "get"}, {"iq", "set"}, {"message", "chat"},
                                           {"message", NULL}, {"presence", "subscribe"}};
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++)
        for (size_t i = 0; i < N_RFC_CONDITIONS; i++) {
            epode_stanza_t *st = make_stanza(kinds[k][0], kinds[k][1], 1), *r = NULL;
            CHECK(st != NULL);
            CHECK_INT(epode_stanza_error_reply(st, rfc_conditions[i].cond, EPODE_ERRTYPE_DEFAULT,
                                               NULL, 0, &r), 0);
            epode_stanza_unref(st);
            epode_stanza_t *err = check_error_shell(r, kinds[k][0]);
            CHECK(err != NULL);
            CHECK(epode_stanza_first_child(r) == err); /* original not included */
            CHECK(epode_stanza_next(err) == NULL);
            CHECK_STR(epode_stanza_get_attr(err, "type"), type_names[rfc_conditions[i].type]);
            epode_stanza_t *c = epode_stanza_first_child(err);
            CHECK(c != NULL);
            CHECK_STR(epode_stanza_get_name(c), rfc_conditions[i].name);
            CHECK_STR(epode_stanza_get_ns(c), EPODE_NS_STANZAS);
            CHECK(epode_stanza_next(c) == NULL); /* no <text/> */

            epode_stanza_cond_t cond = EPODE_COND_NONE;
            epode_error_type_t type = EPODE_ERRTYPE_DEFAULT;
            const char *text = "sentinel";
            CHECK_INT(epode_stanza_get_error(r, &cond, &type, &text), 0);
            CHECK_INT(cond, rfc_conditions[i].cond);
            CHECK_INT(type, rfc_conditions[i].type);
            CHECK(text == NULL);
            epode_stanza_unref(r);
        }
}

TEST(error_reply_uses_an_explicit_type_and_text)
{
    for (size_t i = 0; i < N_RFC_CONDITIONS; i++)
        for (int t = EPODE_ERRTYPE_AUTH; t <= EPODE_ERRTYPE_WAIT; t++) {
            epode_stanza_t *st = make_stanza("iq", "set", 0), *r;
            CHECK(st != NULL);
            CHECK_INT(epode_stanza_error_reply(st, rfc_conditions[i].cond, (epode_error_type_t)t,
                                               "Some <special> & text", 0, &r), 0);
            epode_stanza_unref(st);
            epode_stanza_t *err = check_error_shell(r, "iq");
            CHECK(err != NULL);
            CHECK_STR(epode_stanza_get_attr(err, "type"), type_names[t]);
            epode_stanza_t *tx = epode_stanza_find_child(err, "text", EPODE_NS_STANZAS);
            CHECK(tx != NULL);
            CHECK_STR(epode_stanza_get_text(tx), "Some <special> & text");
            epode_stanza_cond_t cond;
            epode_error_type_t type;
            const char *text;
            CHECK_INT(epode_stanza_get_error(r, &cond, &type, &text), 0);
            CHECK_INT(cond, rfc_conditions[i].cond);
            CHECK_INT(type, t);
            CHECK_STR(text, "Some <special> & text");
            epode_stanza_unref(r);
        }
}

TEST(error_reply_serializes_as_rfc6120_shows)
{
    epode_stanza_t *st = make_stanza("iq", "get", 0), *r;
    CHECK(st != NULL);
    CHECK_INT(epode_stanza_error_reply(st, EPODE_COND_SERVICE_UNAVAILABLE, EPODE_ERRTYPE_DEFAULT,
                                       "Not here", 0, &r), 0);
    CHECK_STR(xml(r), "<iq xmlns=\"jabber:client\" to=\"romeo@example.net/orchard\" "
                      "from=\"juliet@example.com/balcony\" id=\"id-42\" type=\"error\">"
                      "<error type=\"cancel\"><service-unavailable "
                      "xmlns=\"urn:ietf:params:xml:ns:xmpp-stanzas\"/><text "
                      "xmlns=\"urn:ietf:params:xml:ns:xmpp-stanzas\">Not here</text></error></iq>");
    epode_stanza_unref(st);
    epode_stanza_unref(r);
}

TEST(error_reply_include_original_copies_children_before_the_error)
{
    epode_stanza_t *st = make_stanza("iq", "get", 1), *r;
    CHECK(st != NULL);
    CHECK_INT(epode_stanza_add_text(st, "stray text", (size_t)-1), 0);
    CHECK_INT(epode_stanza_add_child_new(st, "second", "urn:second", NULL), 0);
    CHECK_INT(epode_stanza_error_reply(st, EPODE_COND_ITEM_NOT_FOUND, EPODE_ERRTYPE_DEFAULT,
                                       NULL, 1, &r), 0);
    epode_stanza_t *q = epode_stanza_first_child(r);
    CHECK(q != NULL);
    CHECK(epode_stanza_equal(q, epode_stanza_first_child(st)));
    epode_stanza_t *second = epode_stanza_next(q);
    CHECK(second != NULL);
    CHECK_STR(epode_stanza_get_name(second), "second");
    CHECK_STR(epode_stanza_get_ns(second), "urn:second");
    epode_stanza_t *err = epode_stanza_next(second);
    CHECK(err != NULL);
    CHECK_STR(epode_stanza_get_name(err), "error");
    CHECK(epode_stanza_next(err) == NULL);
    epode_stanza_unref(st);
    /* the copies belong to the reply */
    CHECK_STR(epode_stanza_get_attr(q, "node"), "n1");
    CHECK_STR(xml(r), "<iq xmlns=\"jabber:client\" to=\"romeo@example.net/orchard\" "
                      "from=\"juliet@example.com/balcony\" id=\"id-42\" type=\"error\">"
                      "<query xmlns=\"http://jabber.org/protocol/disco#info\" node=\"n1\">"
                      "<feature/></query><second xmlns=\"urn:second\"/>"
                      "<error type=\"cancel\"><item-not-found "
                      "xmlns=\"urn:ietf:params:xml:ns:xmpp-stanzas\"/></error></iq>");
    epode_stanza_unref(r);
}

TEST(error_reply_refuses_to_answer_an_error)
{
    epode_stanza_t *st = make_stanza("iq", "error", 0), *r = SENTINEL;
    CHECK(st != NULL);
    CHECK_INT(epode_stanza_error_reply(st, EPODE_COND_BAD_REQUEST, EPODE_ERRTYPE_DEFAULT, NULL, 0,
                                       &r), EPODE_EINVAL);
    CHECK(r == SENTINEL);
    epode_stanza_unref(st);
    /* nor an error reply epode made itself */
    epode_stanza_t *m = make_stanza("message", "chat", 0), *e;
    CHECK(m != NULL);
    CHECK_INT(epode_stanza_error_reply(m, EPODE_COND_GONE, EPODE_ERRTYPE_DEFAULT, NULL, 0, &e), 0);
    CHECK_INT(epode_stanza_error_reply(e, EPODE_COND_GONE, EPODE_ERRTYPE_DEFAULT, NULL, 0, &r),
              EPODE_EINVAL);
    CHECK(r == SENTINEL);
    epode_stanza_unref(m);
    epode_stanza_unref(e);
}

TEST(error_reply_rejects_unknown_conditions_and_types)
{
    failmem f = {0};
    epode_mem_t mem = FAILMEM(f);
    epode_stanza_t *st, *r = SENTINEL;
    CHECK_INT(epode_stanza_new_iq(&mem, "get", "x", &st), 0);
    long live = f.live;
    CHECK_INT(epode_stanza_error_reply(st, EPODE_COND_NONE, 0, NULL, 0, &r), EPODE_EINVAL);
    CHECK_INT(epode_stanza_error_reply(st, EPODE_COND__COUNT, 0, NULL, 0, &r), EPODE_EINVAL);
    CHECK_INT(epode_stanza_error_reply(st, (epode_stanza_cond_t)-3, 0, NULL, 0, &r), EPODE_EINVAL);
    CHECK_INT(epode_stanza_error_reply(st, EPODE_COND_GONE, (epode_error_type_t)6, NULL, 0, &r),
              EPODE_EINVAL);
    CHECK_INT(epode_stanza_error_reply(st, EPODE_COND_GONE, (epode_error_type_t)-1, NULL, 0, &r),
              EPODE_EINVAL);
    CHECK_INT(epode_stanza_error_reply(st, EPODE_COND_GONE, 0, "bad\x01", 0, &r), EPODE_EINVAL);
    CHECK_INT(epode_stanza_error_reply(NULL, EPODE_COND_GONE, 0, NULL, 0, &r), EPODE_EINVAL);
    CHECK_INT(epode_stanza_error_reply(st, EPODE_COND_GONE, 0, NULL, 0, NULL), EPODE_EINVAL);
    CHECK(r == SENTINEL);
    CHECK_INT(f.live, live);
    epode_stanza_unref(st);
    CHECK_INT(f.live, 0);
}

TEST(get_error_round_trips_through_text)
{
    for (size_t i = 0; i < N_RFC_CONDITIONS; i++) {
        epode_stanza_t *st = make_stanza("message", "chat", 0), *r, *back;
        CHECK(st != NULL);
        CHECK_INT(epode_stanza_error_reply(st, rfc_conditions[i].cond, EPODE_ERRTYPE_DEFAULT,
                                           "why \xE2\x80\x94 because", 0, &r), 0);
        char *t;
        CHECK_INT(epode_stanza_to_text(r, EPODE_TEXT_IN_STREAM, &t, NULL), 0);
        /* in a stream, jabber:client is never declared again */
        int declares_client = strstr(t, "jabber:client") != NULL;
        epode_free(t);
        CHECK(!declares_client);
        CHECK_INT(epode_stanza_to_text(r, 0, &t, NULL), 0);
        CHECK_INT(epode_stanza_from_text(NULL, t, (size_t)-1, &back, NULL), 0);
        epode_free(t);
        CHECK(epode_stanza_equal(r, back));
        epode_stanza_cond_t cond;
        epode_error_type_t type;
        const char *text;
        CHECK_INT(epode_stanza_get_error(back, &cond, &type, &text), 0);
        CHECK_INT(cond, rfc_conditions[i].cond);
        CHECK_INT(type, rfc_conditions[i].type);
        CHECK_STR(text, "why \xE2\x80\x94 because");
        epode_stanza_unref(st);
        epode_stanza_unref(r);
        epode_stanza_unref(back);
    }
}

TEST(get_error_without_error_child_is_not_found)
{
    epode_stanza_t *st = make_stanza("iq", "get", 1);
    CHECK(st != NULL);
    epode_stanza_cond_t cond = EPODE_COND_GONE;
    epode_error_type_t type = EPODE_ERRTYPE_WAIT;
    const char *text = "untouched";
    CHECK_INT(epode_stanza_get_error(st, &cond, &type, &text), EPODE_ENOTFOUND);
    CHECK_INT(cond, EPODE_COND_GONE);
    CHECK_INT(type, EPODE_ERRTYPE_WAIT);
    CHECK_STR(text, "untouched");
    CHECK_INT(epode_stanza_get_error(st, NULL, NULL, NULL), EPODE_ENOTFOUND);
    CHECK_INT(epode_stanza_get_error(NULL, NULL, NULL, NULL), EPODE_EINVAL);
    epode_stanza_unref(st);
}

TEST(get_error_reads_parsed_errors_and_unknown_parts)
{
    epode_stanza_t *st = parse("<iq xmlns='jabber:client' type='error' id='1'>"
                               "<error type='frobnicate'><text xmlns='urn:ietf:params:xml:ns:xmpp-"
                               "stanzas' xml:lang='en'>first</text><made-up xmlns='urn:ietf:params:"
                               "xml:ns:xmpp-stanzas'/><unsupported xmlns='urn:app'/></error></iq>");
    CHECK(st != NULL);
    epode_stanza_cond_t cond;
    epode_error_type_t type;
    const char *text;
    CHECK_INT(epode_stanza_get_error(st, &cond, &type, &text), 0);
    CHECK_INT(cond, EPODE_COND_UNDEFINED_CONDITION);
    CHECK_INT(type, EPODE_ERRTYPE_DEFAULT);
    CHECK_STR(text, "first");
    epode_stanza_unref(st);

    /* a condition after an application-specific element, no type */
    st = parse("<message xmlns='jabber:client' type='error'><error><app xmlns='urn:app'/>"
               "<not-acceptable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>");
    CHECK(st != NULL);
    CHECK_INT(epode_stanza_get_error(st, &cond, &type, NULL), 0);
    CHECK_INT(cond, EPODE_COND_NOT_ACCEPTABLE);
    CHECK_INT(type, EPODE_ERRTYPE_DEFAULT);
    epode_stanza_unref(st);

    /* an <error/> in another namespace is not the stanza's error */
    st = parse("<message xmlns='jabber:client'><error xmlns='urn:other' type='cancel'/></message>");
    CHECK(st != NULL);
    CHECK_INT(epode_stanza_get_error(st, &cond, &type, &text), EPODE_ENOTFOUND);
    epode_stanza_unref(st);
}

/* ---- allocation failure sweep ------------------------------------------- */

static char long_text[3000];

static void init_long_text(void)
{
    memset(long_text, 'L', sizeof long_text - 1);
}

/* The builder sequence of a typical application: a message with children
 * and attributes, an error reply that includes it, a copy, the text form.
 * Returns 0 or the first error; checks on the way that failed calls left
 * their outputs and the trees untouched (a failed check gives -1000). */
static int builder_sequence(const epode_mem_t *mem, char **text_out, size_t *len_out)
{
    epode_stanza_t *m = SENTINEL, *x = SENTINEL, *err = SENTINEL, *cp = SENTINEL;
    char *text = (char *)SENTINEL;
    size_t len = 12345;
    int rc = epode_stanza_new_message(mem, "chat", "juliet@example.com/balcony", "Wherefore art thou?",
                               &m);
    if (rc < 0)
        return m == SENTINEL ? rc : -1000;
    size_t attrs = epode_stanza_attr_count(m);
    if ((rc = epode_stanza_add_child_new(m, "thread", NULL, &x)) < 0) {
        if (x != SENTINEL || epode_stanza_find_child(m, "thread", NULL))
            rc = -1000;
        goto out;
    }
    if ((rc = epode_stanza_add_text(x, "e0ffe42b28561960c6b12b944a092794b9683a38", (size_t)-1)) <
        0) {
        if (strcmp(epode_stanza_get_text(x), "") != 0)
            rc = -1000;
        goto out;
    }
    if ((rc = epode_stanza_add_child_new(m, "active", "http://jabber.org/protocol/chatstates",
                                         NULL)) < 0)
        goto out;
    if ((rc = epode_stanza_add_child_new(m, "html", "http://jabber.org/protocol/xhtml-im", &x)) <
        0)
        goto out;
    if ((rc = epode_stanza_add_text(x, long_text, (size_t)-1)) < 0) /* needs a new block */
        goto out;
    static const char *const names[] = {"id", "from", "xml:lang", "a1", "a2", "a3", "a4", "a5"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if ((rc = epode_stanza_set_attr(m, names[i], "value-of-some-length")) < 0) {
            if (epode_stanza_attr_count(m) != attrs || epode_stanza_get_attr(m, names[i]))
                rc = -1000;
            goto out;
        }
        attrs++;
    }
    if ((rc = epode_stanza_set_attr_ns(m, "mark", "urn:example:mark", "mk", "1")) < 0)
        goto out;
    if ((rc = epode_stanza_error_reply(m, EPODE_COND_SERVICE_UNAVAILABLE, EPODE_ERRTYPE_DEFAULT,
                                       "not now", 1, &err)) < 0) {
        if (err != SENTINEL)
            rc = -1000;
        err = NULL;
        goto out;
    }
    if ((rc = epode_stanza_copy(err, &cp)) < 0) {
        if (cp != SENTINEL)
            rc = -1000;
        cp = NULL;
        goto out;
    }
    if (!epode_stanza_equal(cp, err)) {
        rc = -1000;
        goto out;
    }
    if ((rc = epode_stanza_to_text(cp, 0, &text, &len)) < 0) {
        if (text != (char *)SENTINEL || len != 12345)
            rc = -1000;
        goto out;
    }
    *text_out = text;
    *len_out = len;
out:
    if (err == SENTINEL)
        err = NULL;
    if (cp == SENTINEL)
        cp = NULL;
    epode_stanza_unref(cp);
    epode_stanza_unref(err);
    epode_stanza_unref(m);
    return rc;
}

static void sweep(int sticky)
{
    init_long_text();
    char *ref = NULL;
    size_t ref_len = 0;
    CHECK_INT(builder_sequence(NULL, &ref, &ref_len), 0);
    int n;
    for (n = 1; n < 10000; n++) {
        failmem f = {0};
        if (sticky)
            f.fail_from = n;
        else
            f.fail_at = n;
        epode_mem_t mem = FAILMEM(f);
        char *text = NULL;
        size_t len = 0;
        int rc = builder_sequence(&mem, &text, &len);
        if (!f.injected) {
            /* every allocation succeeded: the sweep is complete */
            CHECK_INT(rc, 0);
            CHECK_INT(len, ref_len);
            CHECK_STR(text, ref);
            epode_free(text);
            CHECK_INT(f.live, 0);
            break;
        }
        if (rc == 0) {
            /* A failure may be absorbed (get_text's cache) but then the
             * result must be right. */
            CHECK_STR(text, ref);
            epode_free(text);
        } else if (rc != EPODE_ENOMEM) {
            printf("# failing allocation %d (%s): got %d\n", n, sticky ? "and later" : "only", rc);
            CHECK_INT(rc, EPODE_ENOMEM);
        }
        if (f.live != 0) {
            printf("# failing allocation %d: %ld block(s) leaked\n", n, f.live);
            CHECK_INT(f.live, 0);
        }
    }
    printf("# %s sweep: %d allocation points\n", sticky ? "sticky" : "single", n - 1);
    CHECK(n > 3);
    CHECK(n < 10000);
    epode_free(ref);
}

TEST(alloc_failure_sweep_single_failure_is_clean)
{
    sweep(0);
}

TEST(alloc_failure_sweep_persistent_failure_is_clean)
{
    sweep(1);
}

TEST(alloc_failure_in_mutators_leaves_the_tree_unchanged)
{
    init_long_text();
    failmem f = {0};
    epode_mem_t mem = FAILMEM(f);
    epode_stanza_t *st, *src, *out = SENTINEL;
    CHECK_INT(epode_stanza_new_message(&mem, "chat", "a@b", "body", &st), 0);
    CHECK_INT(epode_stanza_new(NULL, "payload", "urn:p", &src), 0);
    CHECK_INT(epode_stanza_add_text(src, long_text, (size_t)-1), 0);
    char before[8192];
    snprintf(before, sizeof before, "%s", xml(st));
    f.fail_from = f.calls + 1; /* every allocation from now on fails */
    /* Each of these needs more than the first block has left. */
    static char big[4000];
    memset(big, 'b', sizeof big - 1);
    CHECK_INT(epode_stanza_add_text(st, big, (size_t)-1), EPODE_ENOMEM);
    CHECK_INT(epode_stanza_set_text(epode_stanza_first_child(st), big), EPODE_ENOMEM);
    CHECK_INT(epode_stanza_set_attr(st, "big", big), EPODE_ENOMEM);
    CHECK_INT(epode_stanza_set_attr(st, "to", big), EPODE_ENOMEM);
    CHECK_INT(epode_stanza_add_child(st, src, &out), EPODE_ENOMEM);
    CHECK(out == SENTINEL);
    CHECK_INT(epode_stanza_copy(st, &out), EPODE_ENOMEM);
    CHECK(out == SENTINEL);
    CHECK_INT(epode_stanza_reply(st, &out), EPODE_ENOMEM);
    CHECK(out == SENTINEL);
    char *text = (char *)SENTINEL;
    size_t len = 7;
    CHECK_INT(epode_stanza_to_text(st, 0, &text, &len), EPODE_ENOMEM);
    CHECK(text == (char *)SENTINEL);
    CHECK_INT(len, 7);
    f.fail_from = 0;
    CHECK_STR(xml(st), before);
    CHECK_STR(epode_stanza_get_to(st), "a@b");
    epode_stanza_unref(src);
    epode_stanza_unref(st);
    CHECK_INT(f.live, 0);
}

TEST(alloc_failure_in_add_child_from_own_tree_leaves_it_unchanged)
{
    /* fail each allocation of add_child in turn, the source in the same tree */
    init_long_text();
    for (int n = 1; n < 100; n++) {
        failmem f = {0};
        epode_mem_t mem = FAILMEM(f);
        epode_stanza_t *st, *q;
        CHECK_INT(epode_stanza_new(&mem, "iq", EPODE_NS_CLIENT, &st), 0);
        CHECK_INT(epode_stanza_add_child_new(st, "query", "urn:q", &q), 0);
        CHECK_INT(epode_stanza_add_text(q, long_text, (size_t)-1), 0);
        CHECK_INT(epode_stanza_add_child_new(q, "item", NULL, NULL), 0);
        f.fail_at = f.calls + n;
        int rc = epode_stanza_add_child(q, st, NULL);
        int injected = f.injected;
        f.fail_at = 0;
        if (!injected) {
            CHECK_INT(rc, 0);
            CHECK_INT(count_children(q), 2);
            epode_stanza_unref(st);
            CHECK_INT(f.live, 0);
            break;
        }
        CHECK_INT(rc, EPODE_ENOMEM);
        CHECK_INT(count_children(q), 1);
        CHECK_STR(epode_stanza_get_name(epode_stanza_first_child(q)), "item");
        epode_stanza_unref(st);
        CHECK_INT(f.live, 0);
    }
}

TEST(stanza_refuses_prefixes_that_would_change_meaning)
{
    epode_stanza_t *el;
    CHECK_INT(epode_stanza_new(NULL, "b", "urn:B", &el), 0);
    CHECK_INT(epode_stanza_set_prefix(el, "p"), 0);
    /* p already names urn:B on this element */
    CHECK_INT(epode_stanza_set_attr_ns(el, "k", "urn:A", "p", "v"), EPODE_EINVAL);
    CHECK_INT(epode_stanza_set_attr_ns(el, "k", "urn:B", "p", "v"), 0);
    CHECK_INT(epode_stanza_set_attr_ns(el, "j", "urn:C", "q", "v"), 0);
    CHECK_INT(epode_stanza_set_attr_ns(el, "i", "urn:D", "q", "v"), EPODE_EINVAL);
    /* the XML namespace goes with "xml" only; xmlns' namespace never */
    CHECK_INT(epode_stanza_set_attr_ns(el, "z", EPODE_NS_XML, "x", "v"), EPODE_EINVAL);
    CHECK_INT(epode_stanza_set_attr_ns(el, "z", "urn:y", "xml", "v"), EPODE_EINVAL);
    CHECK_INT(epode_stanza_set_attr_ns(el, "z", "http://www.w3.org/2000/xmlns/", "x", "v"), EPODE_EINVAL);
    CHECK_INT(epode_stanza_set_ns(el, "urn:A"), EPODE_EINVAL); /* its attribute p:k is urn:B */
    epode_stanza_unref(el);
    /* a prefix needs a namespace; "" is no namespace */
    CHECK_INT(epode_stanza_new(NULL, "c", "", &el), 0);
    CHECK(epode_stanza_get_ns(el) == NULL);
    CHECK_INT(epode_stanza_set_prefix(el, "p"), EPODE_EINVAL);
    epode_stanza_unref(el);
}

/* Issue 14: the builders that take an address say EPODE_EJID for a bad
 * one, as epode_conn_send() and epode_message_build() do (it used to be
 * put on the wire as given). */
TEST(builders_refuse_invalid_to_with_ejid_and_allocate_nothing)
{
    failmem f = {0};
    epode_mem_t mem = FAILMEM(f);
    epode_stanza_t *m = SENTINEL;
    static const char *const bad[] = {"a@b@c", "", "@b", "a@", "a@b/", "a b@c", "a@b\xFF"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        CHECK_INT(epode_stanza_new_message(&mem, "chat", bad[i], "hi", &m), EPODE_EJID);
        CHECK_INT(epode_stanza_new_presence(&mem, NULL, bad[i], &m), EPODE_EJID);
        CHECK_INT(epode_stanza_new_presence(&mem, "subscribe", bad[i], &m), EPODE_EJID);
    }
    CHECK(m == SENTINEL);
    CHECK_INT(f.allocs, 0);
    CHECK_INT(f.live, 0);
    CHECK_INT(epode_stanza_new_message(&mem, "chat", "Juliet@Example.com/Balcony", "hi", &m), 0);
    CHECK_STR(epode_stanza_get_to(m), "Juliet@Example.com/Balcony"); /* kept as given */
    epode_stanza_unref(m);
    CHECK_INT(epode_stanza_new_presence(&mem, NULL, NULL, &m), 0);
    epode_stanza_unref(m);
    CHECK_INT(f.live, 0);
}

TEST_MAIN
