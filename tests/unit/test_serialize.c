/* tests/unit/test_serialize.c — trees to text and back: escaping, where
 * namespace declarations go (standalone and inside a stream), one-line
 * output, from_text on good and bad input, a round trip over thousands of
 * generated trees, and parse/serialize fixed points on real stanzas. */
#include "test.h"

#include <stdint.h>

#include <epode.h>

#include "util/buf.h"
#include "xml/serialize.h"

/* ---- helpers ---------------------------------------------------------- */

/* Serialized form in a static buffer; NULL on error. */
static const char *ser(const epode_stanza_t *el, unsigned flags)
{
    static char out[1 << 16];
    char *t;
    size_t len = 0;
    if (epode_stanza_to_text(el, flags, &t, &len) < 0)
        return NULL;
    if (len != strlen(t) || len >= sizeof out) {
        epode_free(t);
        return NULL;
    }
    memcpy(out, t, len + 1);
    epode_free(t);
    return out;
}

static epode_stanza_t *mk(const char *name, const char *ns)
{
    epode_stanza_t *st = NULL;
    epode_stanza_new(NULL, name, ns, &st);
    return st;
}

static epode_stanza_t *child(epode_stanza_t *parent, const char *name, const char *ns)
{
    epode_stanza_t *c = NULL;
    epode_stanza_add_child_new(parent, name, ns, &c);
    return c;
}

static epode_stanza_t *parse(const char *text)
{
    epode_stanza_t *st = NULL;
    if (epode_stanza_from_text(NULL, text, (size_t)-1, &st, NULL) < 0)
        return NULL;
    return st;
}

/* Parses text as it would arrive inside a client stream: the default
 * namespace jabber:client and the stream prefix are declared around it. */
static epode_stanza_t *parse_in_stream(const char *text)
{
    static const char open[] = "<wrap xmlns='jabber:client' "
                               "xmlns:stream='http://etherx.jabber.org/streams'>";
    size_t n = strlen(text);
    char *buf = malloc(sizeof open + n + 16);
    if (!buf)
        return NULL;
    memcpy(buf, open, sizeof open - 1);
    memcpy(buf + sizeof open - 1, text, n);
    strcpy(buf + sizeof open - 1 + n, "</wrap>");
    epode_stanza_t *w = parse(buf), *out = NULL;
    free(buf);
    if (w && epode_stanza_first_child(w))
        epode_stanza_copy(epode_stanza_first_child(w), &out);
    epode_stanza_unref(w);
    return out;
}

/* from_text's result code and condition for `text`. */
static int bad(const char *text, size_t len, epode_stream_cond_t *cond)
{
    epode_stanza_t *st = (epode_stanza_t *)(void *)&st;
    *cond = EPODE_STREAM_NONE;
    int rc = epode_stanza_from_text(NULL, text, len, &st, cond);
    if (rc == 0)
        epode_stanza_unref(st);
    else if (st != (epode_stanza_t *)(void *)&st)
        return 1000; /* output written on failure */
    return rc;
}

/* ---- escaping ------------------------------------------------------- */

TEST(serialize_escapes_markup_in_attribute_values)
{
    epode_stanza_t *st = mk("x", NULL);
    CHECK_INT(epode_stanza_set_attr(st, "a", "a&b<c>d\"e'f"), 0);
    CHECK_STR(ser(st, 0), "<x a=\"a&amp;b&lt;c&gt;d&quot;e'f\"/>");
    epode_stanza_unref(st);
}

TEST(serialize_escapes_whitespace_in_attributes_as_character_references)
{
    epode_stanza_t *st = mk("x", NULL);
    CHECK_INT(epode_stanza_set_attr(st, "a", "t\tn\nr\r sp"), 0);
    CHECK_STR(ser(st, 0), "<x a=\"t&#9;n&#10;r&#13; sp\"/>");
    epode_stanza_unref(st);
}

TEST(serialize_escapes_markup_in_text_but_not_quotes)
{
    epode_stanza_t *st = mk("body", NULL);
    CHECK_INT(epode_stanza_add_text(st, "a&b<c>d\"e'f", (size_t)-1), 0);
    CHECK_STR(ser(st, 0), "<body>a&amp;b&lt;c&gt;d\"e'f</body>");
    epode_stanza_unref(st);
}

TEST(serialize_escapes_carriage_return_in_text)
{
    epode_stanza_t *st = mk("body", NULL);
    CHECK_INT(epode_stanza_add_text(st, "line1\r\nline2\rend\ttab", (size_t)-1), 0);
    CHECK_STR(ser(st, 0), "<body>line1&#13;\nline2&#13;end\ttab</body>");
    epode_stanza_unref(st);
}

TEST(serialize_one_line_escapes_line_feeds_in_text)
{
    epode_stanza_t *st = mk("body", NULL);
    CHECK_INT(epode_stanza_add_text(st, "a\nb\r\nc", (size_t)-1), 0);
    CHECK_STR(ser(st, EPODE_TEXT_ONE_LINE), "<body>a&#10;b&#13;&#10;c</body>");
    CHECK_STR(ser(st, 0), "<body>a\nb&#13;\nc</body>");
    epode_stanza_unref(st);
}

TEST(serialize_escapes_cdata_end_in_text)
{
    epode_stanza_t *st = mk("body", NULL);
    CHECK_INT(epode_stanza_add_text(st, "x]]>y]]", (size_t)-1), 0);
    CHECK_STR(ser(st, 0), "<body>x]]&gt;y]]</body>");
    epode_stanza_unref(st);
}

TEST(serialize_writes_non_ascii_as_is)
{
    epode_stanza_t *st = mk("body", NULL);
    const char *t = "caf\xC3\xA9 \xE6\x97\xA5\xE6\x9C\xAC \xF0\x9F\x98\x80";
    CHECK_INT(epode_stanza_add_text(st, t, (size_t)-1), 0);
    CHECK_INT(epode_stanza_set_attr(st, "a", t), 0);
    char want[256];
    snprintf(want, sizeof want, "<body a=\"%s\">%s</body>", t, t);
    CHECK_STR(ser(st, 0), want);
    epode_stanza_unref(st);
}

TEST(serialize_escape_helpers_work_on_byte_ranges)
{
    epode__buf b;
    epode__buf_init(&b, NULL);
    epode__escape_text(&b, "<a>\nb", 5, 0);
    epode__buf_putc(&b, '|');
    epode__escape_text(&b, "<a>\nb", 5, 1);
    epode__buf_putc(&b, '|');
    epode__escape_attr(&b, "\"&\"x", 3);
    epode__buf_putc(&b, '\0');
    CHECK(!b.failed);
    CHECK_STR(b.data, "&lt;a&gt;\nb|&lt;a&gt;&#10;b|&quot;&amp;&quot;");
    epode__buf_free(&b);
}

TEST(serialize_writes_empty_elements_self_closed)
{
    epode_stanza_t *st = mk("x", NULL);
    CHECK_STR(ser(st, 0), "<x/>");
    CHECK_INT(epode_stanza_add_text(st, "", 0), 0);
    CHECK_STR(ser(st, 0), "<x/>");
    CHECK_INT(epode_stanza_set_attr(st, "a", ""), 0);
    CHECK_STR(ser(st, 0), "<x a=\"\"/>");
    epode_stanza_t *c = child(st, "y", NULL);
    CHECK(c != NULL);
    CHECK_STR(ser(st, 0), "<x a=\"\"><y/></x>");
    epode_stanza_unref(st);
}

TEST(serialize_keeps_attribute_order)
{
    epode_stanza_t *st = mk("iq", NULL);
    epode_stanza_set_attr(st, "to", "t");
    epode_stanza_set_attr(st, "type", "get");
    epode_stanza_set_attr(st, "id", "1");
    epode_stanza_set_attr(st, "from", "f");
    CHECK_STR(ser(st, 0), "<iq to=\"t\" type=\"get\" id=\"1\" from=\"f\"/>");
    epode_stanza_unref(st);
}

TEST(serialize_reports_length_and_accepts_null_length)
{
    epode_stanza_t *st = mk("x", "urn:x");
    char *t;
    size_t len = 0;
    CHECK_INT(epode_stanza_to_text(st, 0, &t, &len), 0);
    CHECK_INT(len, strlen("<x xmlns=\"urn:x\"/>"));
    CHECK_STR(t, "<x xmlns=\"urn:x\"/>");
    epode_free(t);
    CHECK_INT(epode_stanza_to_text(st, 0, &t, NULL), 0);
    CHECK_STR(t, "<x xmlns=\"urn:x\"/>");
    epode_free(t);
    epode_stanza_unref(st);
}

TEST(serialize_rejects_bad_arguments_and_leaves_outputs)
{
    epode_stanza_t *st = mk("x", NULL);
    char *t = (char *)&st;
    size_t len = 99;
    CHECK_INT(epode_stanza_to_text(NULL, 0, &t, &len), EPODE_EINVAL);
    CHECK_INT(epode_stanza_to_text(st, 0, NULL, &len), EPODE_EINVAL);
    CHECK(t == (char *)&st);
    CHECK_INT(len, 99);
    epode_stanza_unref(st);
}

/* ---- namespace declarations --------------------------------------------- */

TEST(serialize_declares_the_root_namespace_standalone_only)
{
    epode_stanza_t *m;
    CHECK_INT(epode_stanza_new_message(NULL, NULL, NULL, "hi", &m), 0);
    CHECK_STR(ser(m, 0), "<message xmlns=\"jabber:client\"><body>hi</body></message>");
    CHECK_STR(ser(m, EPODE_TEXT_IN_STREAM), "<message><body>hi</body></message>");
    epode_stanza_unref(m);
}

TEST(serialize_root_without_namespace_declares_nothing)
{
    epode_stanza_t *st = mk("message", NULL);
    child(st, "body", NULL);
    CHECK_STR(ser(st, 0), "<message><body/></message>");
    CHECK_STR(ser(st, EPODE_TEXT_IN_STREAM), "<message><body/></message>");
    epode_stanza_unref(st);
}

TEST(serialize_child_in_parents_namespace_has_no_declaration)
{
    epode_stanza_t *iq = mk("iq", EPODE_NS_CLIENT);
    epode_stanza_t *q = child(iq, "query", "jabber:iq:roster");
    epode_stanza_t *it = child(q, "item", NULL);
    child(it, "group", "jabber:iq:roster"); /* explicit, same as in scope */
    CHECK_STR(ser(iq, 0), "<iq xmlns=\"jabber:client\"><query xmlns=\"jabber:iq:roster\">"
                          "<item><group/></item></query></iq>");
    epode_stanza_unref(iq);
}

TEST(serialize_child_in_another_namespace_declares_it_and_siblings_return)
{
    epode_stanza_t *m = mk("message", EPODE_NS_CLIENT);
    child(m, "active", "http://jabber.org/protocol/chatstates");
    child(m, "body", NULL);
    child(m, "x", "urn:a");
    child(m, "x", "urn:a"); /* a sibling declares again: scopes do not leak */
    CHECK_STR(ser(m, 0), "<message xmlns=\"jabber:client\"><active "
                         "xmlns=\"http://jabber.org/protocol/chatstates\"/><body/><x "
                         "xmlns=\"urn:a\"/><x xmlns=\"urn:a\"/></message>");
    CHECK_STR(ser(m, EPODE_TEXT_IN_STREAM),
              "<message><active xmlns=\"http://jabber.org/protocol/chatstates\"/><body/><x "
              "xmlns=\"urn:a\"/><x xmlns=\"urn:a\"/></message>");
    epode_stanza_unref(m);
}

TEST(serialize_inner_element_back_in_an_outer_namespace_redeclares_it)
{
    epode_stanza_t *m = mk("message", EPODE_NS_CLIENT);
    epode_stanza_t *f = child(m, "forwarded", "urn:xmpp:forward:0");
    epode_stanza_t *inner = child(f, "message", EPODE_NS_CLIENT);
    child(inner, "body", NULL);
    CHECK_STR(ser(m, EPODE_TEXT_IN_STREAM),
              "<message><forwarded xmlns=\"urn:xmpp:forward:0\"><message "
              "xmlns=\"jabber:client\"><body/></message></forwarded></message>");
    epode_stanza_unref(m);
}

TEST(serialize_child_without_namespace_under_a_namespaced_parent_undeclares)
{
    epode_stanza_t *st = mk("x", "urn:x");
    epode_stanza_t *c = child(st, "plain", NULL);
    CHECK_INT(epode_stanza_set_ns(c, NULL), 0);
    child(c, "deeper", NULL); /* inherits "none" */
    CHECK_STR(ser(st, 0), "<x xmlns=\"urn:x\"><plain xmlns=\"\"><deeper/></plain></x>");
    epode_stanza_t *back = parse(ser(st, 0));
    CHECK(back != NULL);
    CHECK(epode_stanza_equal(st, back));
    epode_stanza_unref(back);
    epode_stanza_unref(st);
}

TEST(serialize_prefixed_element_declares_its_prefix_once)
{
    epode_stanza_t *a = mk("a", "urn:p");
    CHECK_INT(epode_stanza_set_prefix(a, "p"), 0);
    epode_stanza_t *b = child(a, "b", NULL);
    CHECK_STR(epode_stanza_get_prefix(b), "p");
    child(b, "c", NULL);
    child(a, "d", "urn:other");
    CHECK_STR(ser(a, 0), "<p:a xmlns:p=\"urn:p\"><p:b><p:c/></p:b><d xmlns=\"urn:other\"/></p:a>");
    epode_stanza_unref(a);
}

TEST(serialize_prefixed_child_declares_and_default_namespace_is_kept)
{
    epode_stanza_t *iq = mk("iq", EPODE_NS_CLIENT);
    epode_stanza_t *q = child(iq, "query", "jabber:iq:roster");
    CHECK_INT(epode_stanza_set_prefix(q, "r"), 0);
    epode_stanza_t *it = child(q, "item", NULL); /* r:item */
    epode_stanza_t *plain = child(it, "note", EPODE_NS_CLIENT); /* default ns in scope */
    CHECK(plain != NULL);
    CHECK_STR(ser(iq, 0), "<iq xmlns=\"jabber:client\"><r:query xmlns:r=\"jabber:iq:roster\">"
                          "<r:item><note/></r:item></r:query></iq>");
    CHECK_STR(ser(iq, EPODE_TEXT_IN_STREAM),
              "<iq><r:query xmlns:r=\"jabber:iq:roster\"><r:item><note/></r:item></r:query></iq>");
    epode_stanza_unref(iq);
}

TEST(serialize_stream_prefix_is_declared_standalone_only)
{
    epode_stanza_t *f = mk("features", EPODE_NS_STREAMS);
    CHECK_INT(epode_stanza_set_prefix(f, "stream"), 0);
    epode_stanza_t *tls = child(f, "starttls", "urn:ietf:params:xml:ns:xmpp-tls");
    child(tls, "required", NULL);
    CHECK_STR(ser(f, 0), "<stream:features xmlns:stream=\"http://etherx.jabber.org/streams\">"
                         "<starttls xmlns=\"urn:ietf:params:xml:ns:xmpp-tls\"><required/>"
                         "</starttls></stream:features>");
    CHECK_STR(ser(f, EPODE_TEXT_IN_STREAM),
              "<stream:features><starttls xmlns=\"urn:ietf:params:xml:ns:xmpp-tls\"><required/>"
              "</starttls></stream:features>");
    epode_stanza_unref(f);
}

TEST(serialize_in_stream_declares_other_namespaces_and_rebound_prefixes)
{
    epode_stanza_t *st = mk("a", "urn:x");
    CHECK_STR(ser(st, EPODE_TEXT_IN_STREAM), "<a xmlns=\"urn:x\"/>");
    epode_stanza_unref(st);
    st = mk("a", "urn:not-streams");
    CHECK_INT(epode_stanza_set_prefix(st, "stream"), 0);
    CHECK_STR(ser(st, EPODE_TEXT_IN_STREAM), "<stream:a xmlns:stream=\"urn:not-streams\"/>");
    epode_stanza_unref(st);
}

TEST(serialize_stream_error_in_stream)
{
    epode_stanza_t *e = mk("error", EPODE_NS_STREAMS);
    CHECK_INT(epode_stanza_set_prefix(e, "stream"), 0);
    child(e, "not-well-formed", EPODE_NS_STREAM_ERRORS);
    CHECK_STR(ser(e, EPODE_TEXT_IN_STREAM),
              "<stream:error><not-well-formed "
              "xmlns=\"urn:ietf:params:xml:ns:xmpp-streams\"/></stream:error>");
    epode_stanza_unref(e);
}

TEST(serialize_xml_lang_never_declares_the_xml_prefix)
{
    epode_stanza_t *m = mk("message", EPODE_NS_CLIENT);
    CHECK_INT(epode_stanza_set_attr(m, "xml:lang", "en"), 0);
    epode_stanza_t *b = child(m, "body", NULL);
    CHECK_INT(epode_stanza_set_attr(b, "xml:lang", "cs"), 0);
    CHECK_STR(ser(m, 0), "<message xmlns=\"jabber:client\" xml:lang=\"en\">"
                         "<body xml:lang=\"cs\"/></message>");
    CHECK(strstr(ser(m, EPODE_TEXT_IN_STREAM), "xmlns:xml") == NULL);
    epode_stanza_unref(m);
}

TEST(serialize_namespaced_attributes_declare_their_prefix)
{
    epode_stanza_t *a = mk("a", "urn:a");
    CHECK_INT(epode_stanza_set_attr_ns(a, "x", "urn:f", "f", "1"), 0);
    CHECK_INT(epode_stanza_set_attr_ns(a, "y", "urn:f", "f", "2"), 0); /* same prefix: once */
    CHECK_INT(epode_stanza_set_attr(a, "plain", "3"), 0);
    epode_stanza_t *c = child(a, "c", NULL);
    CHECK_INT(epode_stanza_set_attr_ns(c, "z", "urn:f", "f", "4"), 0); /* bound above */
    CHECK_INT(epode_stanza_set_attr_ns(c, "w", "urn:g", "g", "5"), 0);
    CHECK_STR(ser(a, 0), "<a xmlns=\"urn:a\" xmlns:f=\"urn:f\" f:x=\"1\" f:y=\"2\" plain=\"3\">"
                         "<c xmlns:g=\"urn:g\" f:z=\"4\" g:w=\"5\"/></a>");
    epode_stanza_unref(a);
}

TEST(serialize_attribute_sharing_the_elements_prefix_needs_no_declaration)
{
    epode_stanza_t *a = mk("a", "urn:p");
    CHECK_INT(epode_stanza_set_prefix(a, "p"), 0);
    CHECK_INT(epode_stanza_set_attr_ns(a, "k", "urn:p", "p", "v"), 0);
    CHECK_STR(ser(a, 0), "<p:a xmlns:p=\"urn:p\" p:k=\"v\"/>");
    epode_stanza_unref(a);
}

TEST(serialize_escapes_namespace_uris)
{
    epode_stanza_t *a = mk("a", "urn:a&b\"c<d>");
    CHECK_STR(ser(a, 0), "<a xmlns=\"urn:a&amp;b&quot;c&lt;d&gt;\"/>");
    epode_stanza_unref(a);
    /* a URI the parser accepts reads back the same */
    a = mk("a", "urn:a'b");
    CHECK_INT(epode_stanza_set_attr_ns(a, "k", "urn:k?x=1;y='2'", "k", "v"), 0);
    CHECK_STR(ser(a, 0), "<a xmlns=\"urn:a'b\" xmlns:k=\"urn:k?x=1;y='2'\" k:k=\"v\"/>");
    epode_stanza_t *back = parse(ser(a, 0));
    CHECK(back != NULL);
    CHECK_STR(epode_stanza_get_ns(back), "urn:a'b");
    CHECK(epode_stanza_equal(a, back));
    epode_stanza_unref(back);
    epode_stanza_unref(a);
}

TEST(serialize_many_namespaced_attributes_on_one_element_parse_back)
{
    /* More prefixes than the serializer keeps per element, with a later
     * attribute reusing an earlier prefix. */
    epode_stanza_t *a = mk("a", "urn:a");
    char name[32], ns[32], prefix[32];
    for (int i = 0; i < 12; i++) {
        snprintf(name, sizeof name, "n%d", i);
        snprintf(ns, sizeof ns, "urn:n%d", i);
        snprintf(prefix, sizeof prefix, "p%d", i);
        CHECK_INT(epode_stanza_set_attr_ns(a, name, ns, prefix, "v"), 0);
    }
    for (int i = 0; i < 12; i++) {
        snprintf(name, sizeof name, "m%d", i);
        snprintf(ns, sizeof ns, "urn:n%d", i);
        snprintf(prefix, sizeof prefix, "p%d", i);
        CHECK_INT(epode_stanza_set_attr_ns(a, name, ns, prefix, "w"), 0);
    }
    epode_stanza_t *c = child(a, "c", NULL);
    CHECK_INT(epode_stanza_set_attr_ns(c, "k", "urn:n11", "p11", "x"), 0);
    const char *t = ser(a, 0);
    CHECK(t != NULL);
    epode_stream_cond_t cond;
    epode_stanza_t *back = NULL;
    int rc = epode_stanza_from_text(NULL, t, (size_t)-1, &back, &cond);
    if (rc != 0)
        printf("# %s\n# -> %s\n", t, epode_stream_cond_name(cond));
    CHECK_INT(rc, 0);
    CHECK(epode_stanza_equal(a, back));
    epode_stanza_unref(back);
    epode_stanza_unref(a);
}

/* ---- from_text: good input ------------------------------------------------ */

TEST(from_text_parses_a_stanza)
{
    epode_stanza_t *st = NULL;
    epode_stream_cond_t cond = EPODE_STREAM_BAD_FORMAT;
    CHECK_INT(epode_stanza_from_text(NULL,
                                     "<message xmlns='jabber:client' to='a@b' type=\"chat\">"
                                     "<body>hi &amp; bye &lt;3 &#x1F600;&#65;&quot;&apos;</body>"
                                     "<x xmlns='urn:x' a='&lt;&amp;&gt;&quot;&#9;'/></message>",
                                     (size_t)-1, &st, &cond), 0);
    CHECK_INT(cond, EPODE_STREAM_NONE);
    CHECK_STR(epode_stanza_get_name(st), "message");
    CHECK_STR(epode_stanza_get_ns(st), EPODE_NS_CLIENT);
    CHECK_STR(epode_stanza_get_to(st), "a@b");
    CHECK_STR(epode_stanza_get_type(st), "chat");
    CHECK_STR(epode_stanza_child_text(st, "body", NULL), "hi & bye <3 \xF0\x9F\x98\x80" "A\"'");
    epode_stanza_t *x = epode_stanza_find_child(st, "x", "urn:x");
    CHECK(x != NULL);
    CHECK_STR(epode_stanza_get_attr(x, "a"), "<&>\"\t");
    epode_stanza_unref(st);
}

TEST(from_text_honours_an_explicit_length)
{
    epode_stanza_t *st;
    CHECK_INT(epode_stanza_from_text(NULL, "<a/>garbage", 4, &st, NULL), 0);
    CHECK_STR(epode_stanza_get_name(st), "a");
    epode_stanza_unref(st);
}

TEST(from_text_accepts_surrounding_whitespace_and_an_xml_declaration)
{
    epode_stanza_t *st;
    CHECK_INT(epode_stanza_from_text(NULL, "  \n<a>x</a>\r\n ", (size_t)-1, &st, NULL), 0);
    CHECK_STR(epode_stanza_get_text(st), "x");
    epode_stanza_unref(st);
    CHECK_INT(epode_stanza_from_text(NULL, "<?xml version='1.0' encoding='UTF-8'?><a/>",
                                     (size_t)-1, &st, NULL), 0);
    CHECK_STR(epode_stanza_get_name(st), "a");
    epode_stanza_unref(st);
}

TEST(from_text_keeps_prefixes_and_namespaced_attributes)
{
    epode_stanza_t *st = parse("<stream:features xmlns:stream='http://etherx.jabber.org/streams' "
                               "xmlns:f='urn:f' f:k='v' xml:lang='en'><stream:x/>"
                               "<b xmlns='urn:b'/></stream:features>");
    CHECK(st != NULL);
    CHECK_STR(epode_stanza_get_prefix(st), "stream");
    CHECK_STR(epode_stanza_get_ns(st), EPODE_NS_STREAMS);
    CHECK_STR(epode_stanza_get_attr_ns(st, "k", "urn:f"), "v");
    CHECK_STR(epode_stanza_get_attr(st, "xml:lang"), "en");
    CHECK_INT(epode_stanza_attr_count(st), 2); /* declarations are not attributes */
    epode_stanza_t *x = epode_stanza_first_child(st);
    CHECK_STR(epode_stanza_get_prefix(x), "stream");
    CHECK_STR(epode_stanza_get_ns(x), EPODE_NS_STREAMS);
    epode_stanza_t *b = epode_stanza_next(x);
    CHECK(epode_stanza_get_prefix(b) == NULL);
    CHECK_STR(epode_stanza_get_ns(b), "urn:b");
    epode_stanza_unref(st);
}

TEST(from_text_keeps_whitespace_and_carriage_returns_in_text)
{
    epode_stanza_t *st = parse("<a> x \t y \n<b/>  <c>&#13;&#10;</c>&#13;</a>");
    CHECK(st != NULL);
    CHECK_STR(epode_stanza_get_text(st), " x \t y \n  \r");
    CHECK_STR(epode_stanza_child_text(st, "c", NULL), "\r\n");
    epode_stanza_unref(st);
}

/* ---- from_text: bad input ------------------------------------------------- */

TEST(from_text_rejects_restricted_xml)
{
    static const char *const cases[] = {
        "<a><!-- comment --></a>",
        "<!-- comment --><a/>",
        "<a><?pi data?></a>",
        "<?pi data?><a/>",
        "<!DOCTYPE a><a/>",
        "<!DOCTYPE a [<!ENTITY e 'x'>]><a>&e;</a>",
        "<a>&foo;</a>",
        "<a b='&foo;'/>",
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        epode_stream_cond_t cond;
        int rc = bad(cases[i], (size_t)-1, &cond);
        if (rc != EPODE_EXML || cond != EPODE_STREAM_RESTRICTED_XML)
            printf("# %s -> %d %s\n", cases[i], rc, epode_stream_cond_name(cond));
        CHECK_INT(rc, EPODE_EXML);
        CHECK_INT(cond, EPODE_STREAM_RESTRICTED_XML);
    }
}

TEST(from_text_rejects_malformed_xml_as_not_well_formed)
{
    static const char *const cases[] = {
        "<a>",
        "<a><b></a>",
        "<a></b>",
        "<a/><b/>",
        "<a/><a/>",
        "<a>\xFF</a>",
        "<a b='\xC3'/>",
        "<a>\xED\xA0\x80</a>",
        "<a",
        "a",
        "</a>",
        "<a b='1' b='2'/>",
        "<p:a/>",
        "<a>\x01</a>",
        "<a b=1/>",
        "<1a/>",
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        epode_stream_cond_t cond;
        int rc = bad(cases[i], (size_t)-1, &cond);
        if (rc != EPODE_EXML || cond != EPODE_STREAM_NOT_WELL_FORMED)
            printf("# %s -> %d %s\n", cases[i], rc, epode_stream_cond_name(cond));
        CHECK_INT(rc, EPODE_EXML);
        CHECK_INT(cond, EPODE_STREAM_NOT_WELL_FORMED);
    }
}

TEST(from_text_rejects_empty_input)
{
    epode_stream_cond_t cond;
    CHECK_INT(bad("", (size_t)-1, &cond), EPODE_EXML);
    CHECK_INT(cond, EPODE_STREAM_NOT_WELL_FORMED);
    CHECK_INT(bad("<a/>", 0, &cond), EPODE_EXML);
    CHECK_INT(cond, EPODE_STREAM_NOT_WELL_FORMED);
    CHECK_INT(bad("   \n", (size_t)-1, &cond), EPODE_EXML);
    CHECK_INT(cond, EPODE_STREAM_NOT_WELL_FORMED);
}

TEST(from_text_rejects_a_nul_inside_the_given_length)
{
    epode_stream_cond_t cond;
    CHECK_INT(bad("<a>x\0y</a>", 10, &cond), EPODE_EXML);
    CHECK_INT(cond, EPODE_STREAM_NOT_WELL_FORMED);
}

TEST(from_text_rejects_a_400k_attribute_as_policy_violation)
{
    size_t n = 400 * 1024;
    char *t = malloc(n + 32);
    CHECK(t != NULL);
    memcpy(t, "<a b='", 6);
    memset(t + 6, 'x', n);
    strcpy(t + 6 + n, "'/>");
    epode_stream_cond_t cond;
    int rc = bad(t, (size_t)-1, &cond);
    free(t);
    CHECK_INT(rc, EPODE_ELIMIT);
    CHECK_INT(cond, EPODE_STREAM_POLICY_VIOLATION);
}

TEST(from_text_rejects_400k_of_text_as_policy_violation)
{
    size_t n = 400 * 1024;
    char *t = malloc(n + 32);
    CHECK(t != NULL);
    memcpy(t, "<a>", 3);
    memset(t + 3, 'x', n);
    strcpy(t + 3 + n, "</a>");
    epode_stream_cond_t cond;
    int rc = bad(t, (size_t)-1, &cond);
    free(t);
    CHECK_INT(rc, EPODE_ELIMIT);
    CHECK_INT(cond, EPODE_STREAM_POLICY_VIOLATION);
}

TEST(from_text_rejects_deep_nesting_as_policy_violation)
{
    char t[3000] = "";
    for (int i = 0; i < 300; i++)
        strcat(t, "<a>");
    for (int i = 0; i < 300; i++)
        strcat(t, "</a>");
    epode_stream_cond_t cond;
    CHECK_INT(bad(t, (size_t)-1, &cond), EPODE_ELIMIT);
    CHECK_INT(cond, EPODE_STREAM_POLICY_VIOLATION);
}

TEST(from_text_rejects_null_arguments)
{
    epode_stanza_t *st = (epode_stanza_t *)(void *)&st;
    CHECK_INT(epode_stanza_from_text(NULL, NULL, 0, &st, NULL), EPODE_EINVAL);
    CHECK_INT(epode_stanza_from_text(NULL, "<a/>", 4, NULL, NULL), EPODE_EINVAL);
    CHECK(st == (epode_stanza_t *)(void *)&st);
}

TEST(from_text_condition_pointer_may_be_null_on_error)
{
    epode_stanza_t *st = (epode_stanza_t *)(void *)&st;
    CHECK_INT(epode_stanza_from_text(NULL, "<a>", 3, &st, NULL), EPODE_EXML);
    CHECK(st == (epode_stanza_t *)(void *)&st);
}

/* ---- allocation failure ------------------------------------------------ */

typedef struct failmem {
    long calls, live, fail_at;
    int injected;
} failmem;

static void *fm_malloc(size_t size, void *user)
{
    failmem *f = user;
    if (++f->calls == f->fail_at) {
        f->injected = 1;
        return NULL;
    }
    void *p = malloc(size);
    if (p)
        f->live++;
    return p;
}

static void *fm_realloc(void *ptr, size_t size, void *user)
{
    failmem *f = user;
    if (++f->calls == f->fail_at) {
        f->injected = 1;
        return NULL;
    }
    void *p = realloc(ptr, size);
    if (p && !ptr)
        f->live++;
    return p;
}

static void fm_free(void *ptr, void *user)
{
    failmem *f = user;
    if (ptr) {
        f->live--;
        free(ptr);
    }
}

TEST(from_text_uses_the_given_allocator)
{
    failmem f = {0};
    epode_mem_t mem = {fm_malloc, fm_realloc, fm_free, &f};
    epode_stanza_t *st;
    CHECK_INT(epode_stanza_from_text(&mem, "<a><b/></a>", (size_t)-1, &st, NULL), 0);
    CHECK(f.calls > 0);
    CHECK(f.live > 0); /* the tree */
    epode_stanza_t *cp;
    CHECK_INT(epode_stanza_copy(st, &cp), 0); /* and what is made from it */
    epode_stanza_unref(st);
    long live = f.live;
    epode_stanza_unref(cp);
    CHECK(f.live < live);
    CHECK_INT(f.live, 0);
}

TEST(from_text_out_of_memory_is_clean_at_every_allocation)
{
    static char text[6000];
    strcpy(text, "<iq xmlns='jabber:client' type='result' id='1'><query xmlns='jabber:iq:roster'>");
    for (int i = 0; i < 40; i++) {
        char item[128];
        snprintf(item, sizeof item, "<item jid='user%d@example.com' name='User %d'><group>G</group>"
                 "</item>", i, i);
        strcat(text, item);
    }
    strcat(text, "</query></iq>");
    epode_stanza_t *ref = parse(text);
    CHECK(ref != NULL);
    int n;
    for (n = 1; n < 1000; n++) {
        failmem f = {.fail_at = n};
        epode_mem_t mem = {fm_malloc, fm_realloc, fm_free, &f};
        epode_stanza_t *st = (epode_stanza_t *)(void *)&st;
        epode_stream_cond_t cond = EPODE_STREAM_NONE;
        int rc = epode_stanza_from_text(&mem, text, (size_t)-1, &st, &cond);
        if (!f.injected) {
            CHECK_INT(rc, 0);
            CHECK(epode_stanza_equal(st, ref));
            epode_stanza_unref(st);
            CHECK_INT(f.live, 0);
            break;
        }
        CHECK_INT(rc, EPODE_ENOMEM);
        CHECK(st == (epode_stanza_t *)(void *)&st);
        CHECK_INT(f.live, 0);
    }
    printf("# from_text: %d allocation points\n", n - 1);
    CHECK(n > 1 && n < 1000);
    epode_stanza_unref(ref);
}

TEST(to_text_out_of_memory_is_clean_at_every_allocation)
{
    epode_stanza_t *ref = parse("<message xmlns='jabber:client'><body>hello</body></message>");
    CHECK(ref != NULL);
    static char big[5000];
    memset(big, 'x', sizeof big - 1);
    CHECK_INT(epode_stanza_add_text(ref, big, (size_t)-1), 0);
    int n;
    for (n = 1; n < 100; n++) {
        failmem f = {0};
        epode_mem_t mem = {fm_malloc, fm_realloc, fm_free, &f};
        epode_stanza_t *tmp, *st;
        CHECK_INT(epode_stanza_new(&mem, "wrap", NULL, &tmp), 0);
        CHECK_INT(epode_stanza_add_child(tmp, ref, &st), 0);
        f.fail_at = f.calls + n;
        char *t = (char *)&n;
        size_t len = 5;
        int rc = epode_stanza_to_text(st, 0, &t, &len);
        int injected = f.injected;
        f.fail_at = 0;
        if (!injected) {
            CHECK_INT(rc, 0);
            CHECK_INT(len, strlen(t));
            epode_free(t);
            epode_stanza_unref(tmp);
            CHECK_INT(f.live, 0);
            break;
        }
        CHECK_INT(rc, EPODE_ENOMEM);
        CHECK(t == (char *)&n);
        CHECK_INT(len, 5);
        epode_stanza_unref(tmp);
        CHECK_INT(f.live, 0);
    }
    printf("# to_text: %d allocation points\n", n - 1);
    CHECK(n > 1 && n < 100);
    epode_stanza_unref(ref);
}

/* ---- round trip over generated trees ------------------------------------ */

typedef struct rng {
    uint64_t s;
} rng;

static uint64_t next(rng *r)
{
    /* xorshift64* */
    r->s ^= r->s >> 12;
    r->s ^= r->s << 25;
    r->s ^= r->s >> 27;
    return r->s * 0x2545F4914F6CDD1DULL;
}

static unsigned pick(rng *r, unsigned n) { return (unsigned)(next(r) >> 33) % n; }
static int chance(rng *r, unsigned percent) { return pick(r, 100) < percent; }

static const char *const gen_names[] = {
    "message", "body", "x", "item", "query", "c", "a", "b", "foo-bar", "_u", "n.1",
    "\xC3\xA9l\xC3\xA9ment", "\xE6\x97\xA5\xE6\x9C\xAC", "delay", "error", "text", "stream",
};
static const char *const gen_ns[] = {
    EPODE_NS_CLIENT, "urn:a", "urn:b", "http://jabber.org/protocol/disco#info",
    EPODE_NS_STREAMS, "urn:x:a;b'c=d", "urn:%C3%BC", EPODE_NS_STANZAS,
};
static const char *const gen_prefixes[] = {"p", "q", "stream", "x1", "db"};
static const char *const gen_attr_names[] = {"to", "from", "id", "type", "a", "b-c", "k.1",
                                             "\xC3\xA9"};
static const char *const gen_pieces[] = {
    "a", "hello", " ", "  ", "&", "<", ">", "\"", "'", "]]>", "]]", "\r", "\n", "\t",
    "\r\n", "\xC3\xA9", "\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E", "\xF0\x9F\x98\x80", "&amp;",
    "&#38;", "&#x41;", "\xC2\xA0", "=", "/>", "<!--", "?>", "xmlns", "\x7F", "\xC2\x85",
    "\xE2\x80\xA8", "\xEF\xBF\xBD",
};

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static void gen_string(rng *r, char *out, size_t cap, unsigned max_pieces)
{
    size_t len = 0;
    unsigned n = pick(r, max_pieces + 1);
    out[0] = '\0';
    for (unsigned i = 0; i < n; i++) {
        const char *p = gen_pieces[pick(r, NELEM(gen_pieces))];
        size_t pl = strlen(p);
        if (len + pl + 1 > cap)
            break;
        memcpy(out + len, p, pl + 1);
        len += pl;
    }
}

static int gen_attrs(rng *r, epode_stanza_t *el)
{
    unsigned n = pick(r, 5);
    char val[128];
    for (unsigned i = 0; i < n; i++) {
        gen_string(r, val, sizeof val, 6);
        unsigned kind = pick(r, 10);
        int rc;
        if (kind < 6) {
            rc = epode_stanza_set_attr(el, gen_attr_names[pick(r, NELEM(gen_attr_names))], val);
        } else if (kind < 7) {
            rc = epode_stanza_set_attr(el, "xml:lang", val);
        } else {
            /* prefix bound consistently per namespace unless testing clashes */
            unsigned k = pick(r, NELEM(gen_ns));
            char prefix[32];
            snprintf(prefix, sizeof prefix, "ns%u", k);
            rc = epode_stanza_set_attr_ns(el, gen_attr_names[pick(r, NELEM(gen_attr_names))],
                                          gen_ns[k], prefix, val);
        }
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int gen_children(rng *r, epode_stanza_t *el, int depth)
{
    unsigned n = depth >= 6 ? 0 : pick(r, depth < 2 ? 6 : 4);
    char text[128];
    for (unsigned i = 0; i < n; i++) {
        if (chance(r, 35)) {
            gen_string(r, text, sizeof text, 5);
            if (epode_stanza_add_text(el, text, (size_t)-1) < 0)
                return -1;
            continue;
        }
        epode_stanza_t *c;
        unsigned how = pick(r, 10);
        const char *ns = how < 5 ? NULL : gen_ns[pick(r, NELEM(gen_ns))];
        if (epode_stanza_add_child_new(el, gen_names[pick(r, NELEM(gen_names))], ns, &c) < 0)
            return -1;
        if (how == 9 && epode_stanza_set_ns(c, NULL) < 0) /* out of any namespace */
            return -1;
        if (epode_stanza_get_ns(c) && chance(r, 25)) {
            if (epode_stanza_set_prefix(c, gen_prefixes[pick(r, NELEM(gen_prefixes))]) < 0)
                return -1;
        } else if (how == 9 || (epode_stanza_get_prefix(c) && chance(r, 30))) {
            if (epode_stanza_set_prefix(c, NULL) < 0)
                return -1;
        }
        if (gen_attrs(r, c) < 0 || gen_children(r, c, depth + 1) < 0)
            return -1;
    }
    return 0;
}

static epode_stanza_t *gen_tree(rng *r, int root_in_client)
{
    epode_stanza_t *st;
    const char *ns = root_in_client ? EPODE_NS_CLIENT
                                    : (chance(r, 15) ? NULL : gen_ns[pick(r, NELEM(gen_ns))]);
    if (epode_stanza_new(NULL, gen_names[pick(r, NELEM(gen_names))], ns, &st) < 0)
        return NULL;
    if (ns && !root_in_client && chance(r, 20))
        epode_stanza_set_prefix(st, gen_prefixes[pick(r, NELEM(gen_prefixes))]);
    if (gen_attrs(r, st) < 0 || gen_children(r, st, 1) < 0) {
        epode_stanza_unref(st);
        return NULL;
    }
    return st;
}

static int check_round_trip(const epode_stanza_t *x, unsigned flags, int n)
{
    char *t;
    size_t len;
    if (epode_stanza_to_text(x, flags, &t, &len) < 0) {
        printf("# tree %d: to_text failed\n", n);
        return 0;
    }
    if ((flags & EPODE_TEXT_ONE_LINE) && memchr(t, '\n', len)) {
        printf("# tree %d: a line feed in one-line output: %s\n", n, t);
        epode_free(t);
        return 0;
    }
    epode_stanza_t *back;
    epode_stream_cond_t cond = EPODE_STREAM_NONE;
    int ok;
    if (flags & EPODE_TEXT_IN_STREAM) {
        back = parse_in_stream(t);
        ok = back != NULL;
    } else {
        ok = epode_stanza_from_text(NULL, t, len, &back, &cond) == 0;
    }
    if (!ok) {
        printf("# tree %d (flags %u) does not parse (%s): %s\n", n, flags,
               epode_stream_cond_name(cond), t);
        epode_free(t);
        return 0;
    }
    ok = epode_stanza_equal(x, back);
    if (!ok) {
        const char *again = ser(back, flags);
        printf("# tree %d (flags %u) differs after a round trip:\n#  %s\n#  %s\n", n, flags, t,
               again ? again : "?");
    }
    epode_free(t);
    epode_stanza_unref(back);
    return ok;
}

TEST(round_trip_of_generated_trees_gives_equal_trees)
{
    rng r = {0x9E3779B97F4A7C15ULL};
    int trees = 0, max_depth_seen = 0;
    size_t total = 0;
    for (int n = 0; n < 2000; n++) {
        epode_stanza_t *x = gen_tree(&r, 0);
        CHECK(x != NULL);
        char *t;
        size_t len;
        CHECK_INT(epode_stanza_to_text(x, 0, &t, &len), 0);
        total += len;
        int depth = 0, d = 0;
        for (size_t i = 0; i + 1 < len; i++) {
            if (t[i] == '<' && t[i + 1] != '/')
                d++;
            if ((t[i] == '<' && t[i + 1] == '/') || (t[i] == '/' && t[i + 1] == '>'))
                d--;
            if (d > depth)
                depth = d;
        }
        epode_free(t);
        if (depth > max_depth_seen)
            max_depth_seen = depth;
        int ok = check_round_trip(x, 0, n) && check_round_trip(x, EPODE_TEXT_ONE_LINE, n);
        epode_stanza_unref(x);
        CHECK(ok);
        trees++;
    }
    printf("# %d trees, %zu bytes, depth up to %d\n", trees, total, max_depth_seen);
    CHECK(max_depth_seen >= 6);
}

TEST(round_trip_of_generated_trees_in_stream_gives_equal_trees)
{
    rng r = {0xD1B54A32D192ED03ULL};
    for (int n = 0; n < 2000; n++) {
        epode_stanza_t *x = gen_tree(&r, 1);
        CHECK(x != NULL);
        int ok = check_round_trip(x, EPODE_TEXT_IN_STREAM, n) &&
                 check_round_trip(x, EPODE_TEXT_IN_STREAM | EPODE_TEXT_ONE_LINE, n);
        epode_stanza_unref(x);
        CHECK(ok);
    }
}

TEST(round_trip_serialization_is_a_fixed_point)
{
    rng r = {42};
    for (int n = 0; n < 500; n++) {
        epode_stanza_t *x = gen_tree(&r, 0);
        CHECK(x != NULL);
        char *t1, *t2;
        CHECK_INT(epode_stanza_to_text(x, 0, &t1, NULL), 0);
        epode_stanza_t *y = parse(t1);
        epode_stanza_unref(x);
        CHECK(y != NULL);
        CHECK_INT(epode_stanza_to_text(y, 0, &t2, NULL), 0);
        int same = strcmp(t1, t2) == 0;
        if (!same)
            printf("# %s\n# %s\n", t1, t2);
        epode_free(t1);
        epode_free(t2);
        epode_stanza_unref(y);
        CHECK(same);
    }
}

/* ---- fixed points on real stanzas ----------------------------------------- */

static const char *const realistic[] = {
    /* message: body in several languages, thread, chat state */
    "<message xmlns='jabber:client' from='juliet@example.com/balcony' "
    "to='romeo@example.net' type='chat' id='ktx72v49' xml:lang='en'>"
    "<body>Art thou not Romeo, and a Montague?</body>"
    "<body xml:lang='cs'>Nejsi Romeo, a Montek?</body>"
    "<body xml:lang='ja'>\xE3\x81\x82\xE3\x81\xAA\xE3\x81\x9F\xE3\x81\xAF\xE3\x83\xAD\xE3\x83\x9F"
    "\xE3\x82\xAA\xEF\xBC\x9F</body>"
    "<subject xml:lang='en'>Hi &amp; &lt;bye&gt;</subject>"
    "<thread parent='7edac73ab41e45c4aafa7b2d7b749080'>e0ffe42b28561960c6b12b944a092794b9683a38"
    "</thread><active xmlns='http://jabber.org/protocol/chatstates'/></message>",
    /* presence with entity capabilities */
    "<presence xmlns='jabber:client' from='romeo@montague.lit/orchard'><show>away</show>"
    "<status>In the orchard &amp; &lt;resting&gt;</status><priority>5</priority>"
    "<c xmlns='http://jabber.org/protocol/caps' hash='sha-1' "
    "node='http://code.google.com/p/exodus' ver='QgayPKawpkPSDYmwT/WM94uAlu0='/></presence>",
    /* roster result */
    "<iq xmlns='jabber:client' to='juliet@example.com/balcony' type='result' id='hu2bac18'>"
    "<query xmlns='jabber:iq:roster' ver='ver11'>"
    "<item jid='romeo@example.net' name='Romeo' subscription='both'><group>Friends</group></item>"
    "<item jid='mercutio@example.com' name='Mercutio' subscription='from'/>"
    "<item jid='benvolio@example.net' name='Benvolio &quot;B&quot;' subscription='none'/>"
    "</query></iq>",
    /* disco#info result with a data form */
    "<iq xmlns='jabber:client' type='result' from='plays.shakespeare.lit' "
    "to='romeo@montague.net/orchard' id='info1'>"
    "<query xmlns='http://jabber.org/protocol/disco#info'>"
    "<identity category='conference' type='text' name='Play-Specific Chatrooms'/>"
    "<identity category='client' type='pc' name='Psi 0.11' xml:lang='en'/>"
    "<feature var='http://jabber.org/protocol/disco#info'/>"
    "<feature var='http://jabber.org/protocol/muc'/>"
    "<x xmlns='jabber:x:data' type='result'>"
    "<field var='FORM_TYPE' type='hidden'><value>urn:xmpp:dataforms:softwareinfo</value></field>"
    "<field var='ip_version' type='text-multi'><value>ipv4</value><value>ipv6</value></field>"
    "<field var='os'><value>Mac</value></field></x></query></iq>",
    /* stream features */
    "<stream:features xmlns:stream='http://etherx.jabber.org/streams'>"
    "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/></starttls>"
    "<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'><mechanism>SCRAM-SHA-1-PLUS</mechanism>"
    "<mechanism>SCRAM-SHA-1</mechanism><mechanism>PLAIN</mechanism></mechanisms>"
    "<c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='http://prosody.im' "
    "ver='SpT0Is7nD5bUO0hBXe1TDhD8Dbs='/><sm xmlns='urn:xmpp:sm:3'/></stream:features>",
    /* stream error with text */
    "<stream:error xmlns:stream='http://etherx.jabber.org/streams'>"
    "<not-well-formed xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"
    "<text xmlns='urn:ietf:params:xml:ns:xmpp-streams' xml:lang='en'>Bad &lt;XML&gt;</text>"
    "</stream:error>",
    /* pretty-printed, with whitespace text between children */
    "<iq xmlns='jabber:client' type='set' id='bind_1'>\n"
    "  <bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>\n"
    "    <resource>balcony</resource>\n"
    "  </bind>\r\n"
    "</iq>",
    /* error stanza with the original payload */
    "<message xmlns='jabber:client' type='error' id='m1' from='a@b' to='c@d'>"
    "<body>hello</body><error type='cancel' by='b'>"
    "<service-unavailable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
    "<text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>Gone fishing</text></error></message>",
    /* prefixes declared at the root and used below, namespaced attributes */
    "<iq xmlns='jabber:client' xmlns:r='jabber:iq:roster' xmlns:f='urn:f' type='get' id='1' "
    "f:flag='yes'><r:query r:ver='1'><r:item jid='x@y'/></r:query></iq>",
    /* forwarded message (carbons) with delay */
    "<message xmlns='jabber:client' from='romeo@montague.example' "
    "to='romeo@montague.example/home'><received xmlns='urn:xmpp:carbons:2'>"
    "<forwarded xmlns='urn:xmpp:forward:0'><delay xmlns='urn:xmpp:delay' "
    "stamp='2010-07-10T23:08:25Z'/><message xmlns='jabber:client' "
    "from='juliet@capulet.example/balcony' to='romeo@montague.example/garden' type='chat'>"
    "<body>What man art thou that, thus bescreen'd in night, so stumblest on my counsel?</body>"
    "<thread>0e3141cd80894871a68e6fe6b1ec56fa</thread></message></forwarded></received></message>",
    /* attribute values with whitespace character references, CDATA-free markup */
    "<x xmlns='urn:x' a='&#9;tab&#10;lf&#13;cr' b='&apos;&quot;'>&#13;\n]]&gt;</x>",
};

TEST(parse_serialize_parse_is_a_fixed_point_on_real_stanzas)
{
    for (size_t i = 0; i < NELEM(realistic); i++) {
        epode_stanza_t *a = parse(realistic[i]);
        if (!a)
            printf("# stanza %zu does not parse\n", i);
        CHECK(a != NULL);
        for (unsigned flags = 0; flags < 4; flags++) {
            char *t1, *t2;
            CHECK_INT(epode_stanza_to_text(a, flags, &t1, NULL), 0);
            epode_stanza_t *b = (flags & EPODE_TEXT_IN_STREAM) ? parse_in_stream(t1) : parse(t1);
            if (!b)
                printf("# stanza %zu flags %u: %s does not parse\n", i, flags, t1);
            CHECK(b != NULL);
            int eq = epode_stanza_equal(a, b);
            CHECK_INT(epode_stanza_to_text(b, flags, &t2, NULL), 0);
            int same = strcmp(t1, t2) == 0;
            if (!eq || !same)
                printf("# stanza %zu flags %u:\n#  %s\n#  %s\n", i, flags, t1, t2);
            epode_free(t1);
            epode_free(t2);
            epode_stanza_unref(b);
            CHECK(eq);
            CHECK(same);
        }
        epode_stanza_unref(a);
    }
}

TEST(real_stanzas_serialize_compactly)
{
    epode_stanza_t *a = parse(realistic[0]);
    CHECK(a != NULL);
    CHECK_STR(ser(a, EPODE_TEXT_IN_STREAM),
              "<message from=\"juliet@example.com/balcony\" to=\"romeo@example.net\" type=\"chat\" "
              "id=\"ktx72v49\" xml:lang=\"en\"><body>Art thou not Romeo, and a Montague?</body>"
              "<body xml:lang=\"cs\">Nejsi Romeo, a Montek?</body><body xml:lang=\"ja\">"
              "\xE3\x81\x82\xE3\x81\xAA\xE3\x81\x9F\xE3\x81\xAF\xE3\x83\xAD\xE3\x83\x9F\xE3\x82\xAA"
              "\xEF\xBC\x9F</body><subject xml:lang=\"en\">Hi &amp; &lt;bye&gt;</subject>"
              "<thread parent=\"7edac73ab41e45c4aafa7b2d7b749080\">"
              "e0ffe42b28561960c6b12b944a092794b9683a38</thread>"
              "<active xmlns=\"http://jabber.org/protocol/chatstates\"/></message>");
    epode_stanza_unref(a);
    a = parse(realistic[8]);
    CHECK(a != NULL);
    CHECK_STR(ser(a, EPODE_TEXT_IN_STREAM),
              "<iq xmlns:f=\"urn:f\" type=\"get\" id=\"1\" f:flag=\"yes\"><r:query "
              "xmlns:r=\"jabber:iq:roster\" r:ver=\"1\"><r:item jid=\"x@y\"/></r:query></iq>");
    epode_stanza_unref(a);
}

/* Every name epode accepts, it must read back: a sample of code points as
 * the first and as a later character of an element name. */
TEST(names_accepted_by_stanza_new_parse_back)
{
    int accepted = 0;
    for (uint32_t cp = 0x21; cp < 0x110000; cp += (cp < 0x3100 ? 1 : 97)) {
        if (cp >= 0xD800 && cp <= 0xDFFF)
            continue;
        unsigned char u[5] = {0};
        if (cp < 0x80) {
            u[0] = (unsigned char)cp;
        } else if (cp < 0x800) {
            u[0] = (unsigned char)(0xC0 | (cp >> 6));
            u[1] = (unsigned char)(0x80 | (cp & 0x3F));
        } else if (cp < 0x10000) {
            u[0] = (unsigned char)(0xE0 | (cp >> 12));
            u[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
            u[2] = (unsigned char)(0x80 | (cp & 0x3F));
        } else {
            u[0] = (unsigned char)(0xF0 | (cp >> 18));
            u[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
            u[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
            u[3] = (unsigned char)(0x80 | (cp & 0x3F));
        }
        char names[2][16];
        snprintf(names[0], sizeof names[0], "%s", (char *)u);
        snprintf(names[1], sizeof names[1], "a%s", (char *)u);
        for (int k = 0; k < 2; k++) {
            epode_stanza_t *st;
            if (epode_stanza_new(NULL, names[k], NULL, &st) < 0)
                continue;
            accepted++;
            epode_stanza_t *back = parse(ser(st, 0));
            if (!back)
                printf("# U+%04X accepted in \"%s\" but does not parse back\n", (unsigned)cp,
                       names[k]);
            CHECK(back != NULL);
            CHECK(epode_stanza_equal(st, back));
            epode_stanza_unref(back);
            epode_stanza_unref(st);
        }
    }
    CHECK(accepted > 1000);
}

TEST_MAIN
