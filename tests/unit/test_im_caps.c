/* tests/unit/test_im_caps.c — entity capabilities (XEP-0115): the
 * verification string against the XEP's worked examples and its §5.4
 * rules, <c/> on our presence, and others' capabilities fetched once per
 * ver, verified (a mismatch is neither cached nor trusted) and cached. */
#include "test.h"
#include "scripted.h"

#define ME "me@example.com/res"
#define NS_INFO "http://jabber.org/protocol/disco#info"

static int has(const char *hay, const char *needle)
{
    return strstr(hay, needle) != NULL;
}

static int hash_of(const char *xml, char *ver)
{
    epode_stanza_t *st;
    epode_disco_info_t *info;
    int rc = epode_stanza_from_text(NULL, xml, (size_t)-1, &st, NULL);
    if (rc < 0)
        return rc;
    rc = epode_disco_info_parse(st, &info);
    epode_stanza_unref(st);
    if (rc < 0)
        return rc;
    rc = epode_caps_hash(info, "sha-1", ver, EPODE_CAPS_VER_MAX);
    epode_disco_info_free(info);
    return rc;
}

#define SIMPLE_Q                                                                 \
    "<query xmlns='" NS_INFO "'>"                                                \
    "<identity category='client' type='pc' name='Exodus 0.9.1'/>"                \
    "<feature var='http://jabber.org/protocol/disco#info'/>"                     \
    "<feature var='http://jabber.org/protocol/disco#items'/>"                    \
    "<feature var='http://jabber.org/protocol/muc'/>"                            \
    "<feature var='http://jabber.org/protocol/caps'/>"                           \
    "</query>"
#define SIMPLE_VER "QgayPKawpkPSDYmwT/WM94uAlu0="

#define COMPLEX_BODY                                                             \
    "<identity xml:lang='en' category='client' name='Psi 0.11' type='pc'/>"      \
    "<identity xml:lang='el' category='client' name='\xce\xa8 0.11' type='pc'/>" \
    "<feature var='http://jabber.org/protocol/caps'/>"                           \
    "<feature var='http://jabber.org/protocol/disco#info'/>"                     \
    "<feature var='http://jabber.org/protocol/disco#items'/>"                    \
    "<feature var='http://jabber.org/protocol/muc'/>"                            \
    "<x xmlns='jabber:x:data' type='result'>"                                    \
    "<field var='FORM_TYPE' type='hidden'><value>urn:xmpp:dataforms:softwareinfo</value></field>" \
    "<field var='ip_version' type='text-multi'><value>ipv4</value><value>ipv6</value></field>" \
    "<field var='os'><value>Mac</value></field>"                                 \
    "<field var='os_version'><value>10.5.1</value></field>"                      \
    "<field var='software'><value>Psi</value></field>"                           \
    "<field var='software_version'><value>0.11</value></field>"                  \
    "</x>"
#define COMPLEX_VER "q07IKJEyjvHSyhy//CH0CxmKi8w="
#define SHAREABLE_COMPLEX_Q                                                      \
    "<query xmlns='" NS_INFO "'>" COMPLEX_BODY "<feature var='urn:xmpp:time'/></query>"

TEST(caps_hash_simple_example)
{
    char ver[EPODE_CAPS_VER_MAX];
    CHECK_INT(hash_of(SIMPLE_Q, ver), 0);
    CHECK_STR(ver, SIMPLE_VER);
}

TEST(caps_hash_complex_example_with_form)
{
    char ver[EPODE_CAPS_VER_MAX];
    CHECK_INT(hash_of("<query xmlns='" NS_INFO "' node='http://psi-im.org#" COMPLEX_VER "'>"
                      COMPLEX_BODY "</query>", ver), 0);
    CHECK_STR(ver, COMPLEX_VER);
    /* fields and values in another order hash the same */
    CHECK_INT(hash_of("<query xmlns='" NS_INFO "'>"
        "<x xmlns='jabber:x:data' type='result'>"
        "<field var='software_version'><value>0.11</value></field>"
        "<field var='ip_version' type='text-multi'><value>ipv6</value><value>ipv4</value></field>"
        "<field var='software'><value>Psi</value></field>"
        "<field var='os_version'><value>10.5.1</value></field>"
        "<field var='os'><value>Mac</value></field>"
        "<field var='FORM_TYPE' type='hidden'><value>urn:xmpp:dataforms:softwareinfo</value></field>"
        "</x>"
        "<feature var='http://jabber.org/protocol/muc'/>"
        "<feature var='http://jabber.org/protocol/disco#items'/>"
        "<feature var='http://jabber.org/protocol/disco#info'/>"
        "<feature var='http://jabber.org/protocol/caps'/>"
        "<identity xml:lang='el' category='client' name='\xce\xa8 0.11' type='pc'/>"
        "<identity xml:lang='en' category='client' name='Psi 0.11' type='pc'/>"
        "</query>", ver), 0);
    CHECK_STR(ver, COMPLEX_VER);
}

TEST(caps_hash_other_algorithms_and_bad_arguments)
{
    epode_stanza_t *st;
    epode_disco_info_t *info;
    CHECK_INT(epode_stanza_from_text(NULL, SIMPLE_Q, (size_t)-1, &st, NULL), 0);
    CHECK_INT(epode_disco_info_parse(st, &info), 0);
    epode_stanza_unref(st);
    char ver[EPODE_CAPS_VER_MAX];
    CHECK_INT(epode_caps_hash(info, "sha-256", ver, sizeof ver), 0);
    CHECK_INT(strlen(ver), 44);
    CHECK_INT(epode_caps_hash(info, "sha-512", ver, sizeof ver), 0);
    CHECK_INT(strlen(ver), 88);
    CHECK_INT(epode_caps_hash(info, "md5", ver, sizeof ver), EPODE_EINVAL);
    CHECK_INT(epode_caps_hash(info, "sha-1", ver, 10), EPODE_ERANGE);
    epode_disco_info_free(info);
}

TEST(caps_hash_ill_formed_answers_rejected)
{
    char ver[EPODE_CAPS_VER_MAX], plain[EPODE_CAPS_VER_MAX];
    /* a repeated feature, identity, FORM_TYPE, or a FORM_TYPE with two values */
    CHECK_INT(hash_of("<query xmlns='" NS_INFO "'><identity category='client' type='pc'/>"
                      "<feature var='a'/><feature var='a'/></query>", ver), EPODE_EPROTOCOL);
    CHECK_INT(hash_of("<query xmlns='" NS_INFO "'><identity category='client' type='pc'/>"
                      "<identity category='client' type='pc'/></query>", ver), EPODE_EPROTOCOL);
    CHECK_INT(hash_of("<query xmlns='" NS_INFO "'>"
        "<x xmlns='jabber:x:data' type='result'><field var='FORM_TYPE' type='hidden'><value>u:f</value></field></x>"
        "<x xmlns='jabber:x:data' type='result'><field var='FORM_TYPE' type='hidden'><value>u:f</value></field></x>"
        "</query>", ver), EPODE_EPROTOCOL);
    CHECK_INT(hash_of("<query xmlns='" NS_INFO "'>"
        "<x xmlns='jabber:x:data' type='result'><field var='FORM_TYPE' type='hidden'><value>u:f</value>"
        "<value>u:g</value></field></x></query>", ver), EPODE_EPROTOCOL);
    /* a form whose FORM_TYPE is not hidden, or missing, is ignored */
    CHECK_INT(hash_of("<query xmlns='" NS_INFO "'><feature var='a'/></query>", plain), 0);
    CHECK_INT(hash_of("<query xmlns='" NS_INFO "'><feature var='a'/>"
        "<x xmlns='jabber:x:data' type='result'><field var='FORM_TYPE'><value>u:f</value></field>"
        "<field var='z'><value>1</value></field></x>"
        "<x xmlns='jabber:x:data' type='result'><field var='y'><value>1</value></field></x>"
        "</query>", ver), 0);
    CHECK_STR(ver, plain);
    /* "&amp;lt;" in a name is the four characters "&lt;", no separator;
     * "&lt;" is a '<', the separator itself: refused (issue 12) */
    CHECK_INT(hash_of("<query xmlns='" NS_INFO "'><identity category='client' type='pc' "
                      "name='x&amp;lt;y'/></query>", ver), 0);
    CHECK_INT(hash_of("<query xmlns='" NS_INFO "'><identity category='client' type='pc' "
                      "name='x&lt;y'/></query>", plain), EPODE_EPROTOCOL);
}

/* ---- issue 12: answers that read as another answer ------------------------ */

/* The simple example's S with its features folded into the identity's
 * name: the same string, the same hash, no features. */
#define COLLIDE_LT_Q                                                             \
    "<query xmlns='" NS_INFO "'>"                                                \
    "<identity category='client' type='pc' name='Exodus 0.9.1&lt;"               \
    "http://jabber.org/protocol/caps&lt;http://jabber.org/protocol/disco#info&lt;" \
    "http://jabber.org/protocol/disco#items&lt;http://jabber.org/protocol/muc'/>"  \
    "</query>"

/* The same S again, without a '<': the last two features moved into a
 * form whose FORM_TYPE and field are those features. */
#define COLLIDE_FORM_Q                                                           \
    "<query xmlns='" NS_INFO "'>"                                                \
    "<identity category='client' type='pc' name='Exodus 0.9.1'/>"                \
    "<feature var='http://jabber.org/protocol/caps'/>"                           \
    "<feature var='http://jabber.org/protocol/disco#info'/>"                     \
    "<x xmlns='jabber:x:data' type='result'>"                                    \
    "<field var='FORM_TYPE' type='hidden'><value>http://jabber.org/protocol/disco#items</value></field>" \
    "<field var='http://jabber.org/protocol/muc'/></x>"                         \
    "</query>"

/* And once more: the identity moved into the features. */
#define COLLIDE_ID_Q                                                             \
    "<query xmlns='" NS_INFO "'>"                                                \
    "<feature var='client/pc//Exodus 0.9.1'/>"                                   \
    "<feature var='http://jabber.org/protocol/caps'/>"                           \
    "<feature var='http://jabber.org/protocol/disco#info'/>"                     \
    "<feature var='http://jabber.org/protocol/disco#items'/>"                    \
    "<feature var='http://jabber.org/protocol/muc'/>"                            \
    "</query>"

TEST(caps_hash_refuses_strings_that_read_two_ways)
{
    char ver[EPODE_CAPS_VER_MAX], other[EPODE_CAPS_VER_MAX];
    /* '<' folds items together: the simple example without its features */
    CHECK_INT(hash_of(COLLIDE_LT_Q, ver), EPODE_EPROTOCOL);
    /* ... wherever it is: a feature, a FORM_TYPE, a field's var or value */
    CHECK_INT(hash_of("<query xmlns='" NS_INFO "'><identity category='client' type='pc'/>"
                      "<feature var='a&lt;b'/></query>", ver), EPODE_EPROTOCOL);
    CHECK_INT(hash_of("<query xmlns='" NS_INFO "'><feature var='z'/>"
        "<x xmlns='jabber:x:data' type='result'><field var='FORM_TYPE' type='hidden'>"
        "<value>u&lt;f</value></field></x></query>", ver), EPODE_EPROTOCOL);
    CHECK_INT(hash_of("<query xmlns='" NS_INFO "'><feature var='z'/>"
        "<x xmlns='jabber:x:data' type='result'><field var='FORM_TYPE' type='hidden'>"
        "<value>u:f</value></field><field var='a&lt;b'><value>1</value></field></x></query>",
        ver), EPODE_EPROTOCOL);
    CHECK_INT(hash_of("<query xmlns='" NS_INFO "'><feature var='z'/>"
        "<x xmlns='jabber:x:data' type='result'><field var='FORM_TYPE' type='hidden'>"
        "<value>u:f</value></field><field var='a'><value>1&lt;2</value></field></x></query>",
        ver), EPODE_EPROTOCOL);
    /* '/' in a type moves the identity's fields: category a, type "b/c"
     * reads like type b, lang c, name "/" */
    CHECK_INT(hash_of("<query xmlns='" NS_INFO "'><identity category='a' type='b/c'/>"
                      "</query>", ver), EPODE_EPROTOCOL);
    CHECK_INT(hash_of("<query xmlns='" NS_INFO "'><identity category='a' type='b' "
                      "xml:lang='c' name='/'/></query>", other), 0);
    CHECK_INT(hash_of("<query xmlns='" NS_INFO "'><identity category='a/b' type='c'/>"
                      "</query>", ver), EPODE_EPROTOCOL);
    CHECK_INT(hash_of("<query xmlns='" NS_INFO "'><identity category='a' type='b' "
                      "xml:lang='c/d'/></query>", ver), EPODE_EPROTOCOL);
    /* a '/' in a name is only a name (it comes after the three others) */
    CHECK_INT(hash_of("<query xmlns='" NS_INFO "'><identity category='client' type='pc' "
                      "name='Psi+ 1.5 / Linux'/></query>", ver), 0);
    /* Moving features into a form or an identity into the features needs
     * no forbidden character: the hash is the simple example's. The
     * helper must not serve such answers for others (see below). */
    CHECK_INT(hash_of(COLLIDE_FORM_Q, ver), 0);
    CHECK_STR(ver, SIMPLE_VER);
    CHECK_INT(hash_of(COLLIDE_ID_Q, ver), 0);
    CHECK_STR(ver, SIMPLE_VER);
}

/* ---- our own capabilities ------------------------------------------------ */

static const char *attr_of_c(epode_stanza_t *st, const char *attr)
{
    epode_stanza_t *c = st ? epode_stanza_find_child(st, "c", EPODE_NS_CAPS) : NULL;
    return c ? epode_stanza_get_attr(c, attr) : NULL;
}

static int count_c(epode_stanza_t *st)
{
    int n = 0;
    for (epode_stanza_t *c = epode_stanza_find_child(st, "c", EPODE_NS_CAPS); c;
         c = epode_stanza_find_next(c, "c", EPODE_NS_CAPS))
        n++;
    return n;
}

TEST(caps_on_our_presence_and_resent_when_features_change)
{
    scripted s;
    CHECK(scripted_login(&s, "me@example.com", ME) == 0);
    epode_disco_t *d;
    epode_caps_t *caps;
    CHECK_INT(epode_disco_new(s.conn, &d), 0);
    CHECK_INT(epode_caps_new(d, "https://epode.example/test", &caps), 0);
    const char *v1 = epode_caps_get_ver(caps);
    CHECK(v1 != NULL);
    char ver1[EPODE_CAPS_VER_MAX];
    snprintf(ver1, sizeof ver1, "%s", v1);
    /* our ver is the hash of what we answer */
    epode_stanza_t *q;
    epode_disco_info_t *info;
    char expect[EPODE_CAPS_VER_MAX];
    CHECK_INT(epode_disco_build_info(d, NULL, &q), 0);
    CHECK_INT(epode_disco_info_parse(q, &info), 0);
    epode_stanza_unref(q);
    CHECK_INT(epode_disco_info_has_feature(info, EPODE_NS_CAPS), 1);
    CHECK_INT(epode_caps_hash(info, "sha-1", expect, sizeof expect), 0);
    epode_disco_info_free(info);
    CHECK_STR(ver1, expect);

    /* available presence gets <c/>, the app's own stale one replaced */
    epode_stanza_t *p;
    CHECK_INT(epode_stanza_new_presence(NULL, NULL, NULL, &p), 0);
    epode_stanza_t *stale;
    CHECK_INT(epode_stanza_add_child_new(p, "c", EPODE_NS_CAPS, &stale), 0);
    epode_stanza_set_attr(stale, "ver", "stale");
    epode_stanza_add_child_new(p, "status", NULL, &stale);
    epode_stanza_set_text(stale, "here");
    CHECK_INT(epode_conn_send(s.conn, p), 0);
    epode_stanza_unref(p);
    scripted_pump(&s);
    epode_stanza_t *out = scripted_next(&s);
    CHECK(out != NULL);
    CHECK_INT(count_c(out), 1);
    CHECK_STR(attr_of_c(out, "ver"), ver1);
    CHECK_STR(attr_of_c(out, "hash"), "sha-1");
    CHECK_STR(attr_of_c(out, "node"), "https://epode.example/test");

    /* disco#info for node#ver answers with the same info */
    char xml[1024];
    snprintf(xml, sizeof xml, "<iq type='get' id='cv' from='peer@example.com/x'><query xmlns='"
             NS_INFO "' node='https://epode.example/test#%s'/></iq>", ver1);
    scripted_send(&s, xml);
    out = scripted_next(&s);
    CHECK(out && strcmp(epode_stanza_get_type(out), "result") == 0);
    CHECK_INT(epode_disco_info_parse(out, &info), 0);
    CHECK_INT(epode_caps_hash(info, "sha-1", expect, sizeof expect), 0);
    epode_disco_info_free(info);
    CHECK_STR(expect, ver1);

    /* directed and subscription presences: directed gets <c/>, neither
     * becomes the presence to re-send */
    CHECK_INT(epode_stanza_new_presence(NULL, NULL, "room@conf.example.com/me", &p), 0);
    epode_conn_send(s.conn, p);
    epode_stanza_unref(p);
    CHECK_INT(epode_stanza_new_presence(NULL, "subscribe", "x@example.com", &p), 0);
    epode_conn_send(s.conn, p);
    epode_stanza_unref(p);
    scripted_pump(&s);
    out = scripted_next(&s);
    CHECK_STR(attr_of_c(out, "ver"), ver1);
    out = scripted_next(&s);
    CHECK_INT(count_c(out), 0);

    /* a feature changes: a new ver, the last broadcast presence re-sent */
    CHECK_INT(epode_disco_add_feature(d, NULL, "urn:xmpp:ping"), 0);
    CHECK(strcmp(epode_caps_get_ver(caps), ver1) != 0);
    scripted_pump(&s);
    out = scripted_next(&s);
    CHECK(out != NULL);
    CHECK(epode_stanza_get_to(out) == NULL);
    CHECK_STR(epode_stanza_child_text(out, "status", NULL), "here");
    CHECK_STR(attr_of_c(out, "ver"), epode_caps_get_ver(caps));
    CHECK(scripted_next(&s) == NULL);
    /* the old node#ver is no longer answered */
    snprintf(xml, sizeof xml, "<iq type='get' id='cv2' from='peer@example.com/x'><query xmlns='"
             NS_INFO "' node='https://epode.example/test#%s'/></iq>", ver1);
    scripted_send(&s, xml);
    CHECK(has(scripted_next_text(&s), "item-not-found"));

    /* after unavailable nothing is re-sent */
    CHECK_INT(epode_stanza_new_presence(NULL, "unavailable", NULL, &p), 0);
    epode_conn_send(s.conn, p);
    epode_stanza_unref(p);
    scripted_pump(&s);
    out = scripted_next(&s);
    CHECK_INT(count_c(out), 0);
    CHECK_INT(epode_disco_remove_feature(d, NULL, "urn:xmpp:ping"), 0);
    scripted_pump(&s);
    CHECK(scripted_next(&s) == NULL);
    CHECK_STR(epode_caps_get_ver(caps), ver1);

    epode_caps_free(caps);
    /* the feature goes with the helper */
    CHECK_INT(epode_disco_remove_feature(d, NULL, EPODE_NS_CAPS), EPODE_ENOTFOUND);
    epode_disco_free(d);
    scripted_free(&s);
}

/* ---- others' capabilities ------------------------------------------------ */

typedef struct seen {
    int calls, last_known;
    char last_jid[256];
    char stored[4096];
    char stored_ver[128];
    int stores, loads;
    const char *load_reply;
} seen;

static void on_caps(epode_caps_t *c, const char *jid, const epode_disco_info_t *info, void *user)
{
    (void)c;
    seen *s = user;
    s->calls++;
    s->last_known = info != NULL;
    snprintf(s->last_jid, sizeof s->last_jid, "%s", jid);
}

static void presence_with_caps(scripted *s, const char *from, const char *hash, const char *ver)
{
    char xml[1024];
    snprintf(xml, sizeof xml, "<presence from='%s'><c xmlns='http://jabber.org/protocol/caps' "
             "hash='%s' node='http://code.google.com/p/exodus' ver='%s'/></presence>", from, hash, ver);
    scripted_send(s, xml);
}

/* The next stanza the client sent, if it is a disco#info query to `to`
 * for the exodus node#ver; its id, else "". */
static const char *query_to(scripted *s, const char *to, const char *ver)
{
    static char id[128];
    epode_stanza_t *q = scripted_next(s);
    id[0] = '\0';
    if (!q || strcmp(epode_stanza_get_name(q), "iq") != 0)
        return id;
    epode_stanza_t *qu = epode_stanza_find_child(q, "query", NS_INFO);
    char node[256];
    snprintf(node, sizeof node, "http://code.google.com/p/exodus#%s", ver);
    if (qu && strcmp(epode_stanza_get_to(q), to) == 0 &&
        strcmp(epode_stanza_get_attr(qu, "node"), node) == 0)
        snprintf(id, sizeof id, "%s", epode_stanza_get_id(q));
    return id;
}

static void answer(scripted *s, const char *from, const char *id, const char *query)
{
    char xml[4096];
    snprintf(xml, sizeof xml, "<iq type='result' id='%s' from='%s' to='" ME "'>%s</iq>", id, from,
             query);
    scripted_send(s, xml);
}

TEST(caps_of_others_fetched_once_verified_and_cached)
{
    scripted s;
    CHECK(scripted_login(&s, "me@example.com", ME) == 0);
    epode_disco_t *d;
    epode_caps_t *caps;
    CHECK_INT(epode_disco_new(s.conn, &d), 0);
    CHECK_INT(epode_caps_new(d, "https://epode.example/test", &caps), 0);
    seen sn = {0};
    epode_caps_set_cb(caps, on_caps, &sn);
    size_t base = epode_caps_cache_count(caps); /* ourselves */

    presence_with_caps(&s, "a@example.com/1", "sha-1", SIMPLE_VER);
    const char *id = query_to(&s, "a@example.com/1", SIMPLE_VER);
    CHECK(*id);
    char ida[128];
    snprintf(ida, sizeof ida, "%s", id);
    CHECK_INT(epode_caps_supports(caps, "a@example.com/1", "http://jabber.org/protocol/muc"),
              EPODE_ENOTFOUND);
    /* a second JID with the same ver while the query is out: no new query */
    presence_with_caps(&s, "b@example.com/2", "sha-1", SIMPLE_VER);
    CHECK(scripted_next(&s) == NULL);
    /* the same presence again: no new query either */
    presence_with_caps(&s, "a@example.com/1", "sha-1", SIMPLE_VER);
    CHECK(scripted_next(&s) == NULL);

    answer(&s, "a@example.com/1", ida, SIMPLE_Q);
    CHECK_INT(epode_caps_cache_count(caps), base + 1);
    CHECK_INT(sn.calls, 2);
    CHECK_INT(epode_caps_supports(caps, "a@example.com/1", "http://jabber.org/protocol/muc"), 1);
    CHECK_INT(epode_caps_supports(caps, "b@example.com/2", "http://jabber.org/protocol/muc"), 1);
    CHECK_INT(epode_caps_supports(caps, "b@example.com/2", "urn:xmpp:jingle:1"), 0);
    CHECK_INT(epode_caps_supports(caps, "c@example.com/3", "urn:xmpp:jingle:1"), EPODE_ENOTFOUND);
    /* a third JID with a cached ver: known at once, no query */
    presence_with_caps(&s, "c@example.com/3", "sha-1", SIMPLE_VER);
    CHECK(scripted_next(&s) == NULL);
    CHECK_INT(epode_caps_supports(caps, "c@example.com/3", "http://jabber.org/protocol/muc"), 1);
    CHECK(epode_caps_get_info(caps, "c@example.com/3") != NULL);
    /* unavailable forgets the JID, not the cache */
    scripted_send(&s, "<presence type='unavailable' from='c@example.com/3'/>");
    CHECK_INT(sn.last_known, 0);
    CHECK_STR(sn.last_jid, "c@example.com/3");
    CHECK_INT(epode_caps_supports(caps, "c@example.com/3", "http://jabber.org/protocol/muc"),
              EPODE_ENOTFOUND);
    CHECK_INT(epode_caps_cache_count(caps), base + 1);
    /* presence without caps forgets too */
    scripted_send(&s, "<presence from='a@example.com/1'/>");
    CHECK_INT(epode_caps_supports(caps, "a@example.com/1", "http://jabber.org/protocol/muc"),
              EPODE_ENOTFOUND);
    /* our own presence, reflected: known without asking ourselves */
    char xml[512];
    snprintf(xml, sizeof xml, "<presence from='" ME "'><c xmlns='http://jabber.org/protocol/caps' "
             "hash='sha-1' node='https://epode.example/test' ver='%s'/></presence>",
             epode_caps_get_ver(caps));
    scripted_send(&s, xml);
    CHECK(scripted_next(&s) == NULL);
    CHECK_INT(epode_caps_supports(caps, ME, EPODE_NS_CAPS), 1);
    /* the connection ends: JIDs are forgotten, the cache kept */
    scripted_send(&s, "</stream:stream>");
    scripted_pump(&s);
    CHECK_INT(epode_caps_supports(caps, "b@example.com/2", "http://jabber.org/protocol/muc"),
              EPODE_ENOTFOUND);
    CHECK_INT(epode_caps_cache_count(caps), base + 1);
    epode_caps_free(caps);
    epode_disco_free(d);
    scripted_free(&s);
}

TEST(caps_hash_mismatch_not_cached_not_trusted)
{
    scripted s;
    CHECK(scripted_login(&s, "me@example.com", ME) == 0);
    epode_disco_t *d;
    epode_caps_t *caps;
    CHECK_INT(epode_disco_new(s.conn, &d), 0);
    CHECK_INT(epode_caps_new(d, "https://epode.example/test", &caps), 0);
    seen sn = {0};
    epode_caps_set_cb(caps, on_caps, &sn);
    size_t base = epode_caps_cache_count(caps);

    /* the liar advertises the simple example's ver and answers with more
     * features than that ver stands for */
    presence_with_caps(&s, "liar@example.com/1", "sha-1", SIMPLE_VER);
    const char *id = query_to(&s, "liar@example.com/1", SIMPLE_VER);
    CHECK(*id);
    char idl[128];
    snprintf(idl, sizeof idl, "%s", id);
    presence_with_caps(&s, "honest@example.com/2", "sha-1", SIMPLE_VER);
    CHECK(scripted_next(&s) == NULL);
    answer(&s, "liar@example.com/1", idl,
           "<query xmlns='" NS_INFO "'><identity category='client' type='pc' name='Exodus 0.9.1'/>"
           "<feature var='http://jabber.org/protocol/disco#info'/>"
           "<feature var='http://jabber.org/protocol/disco#items'/>"
           "<feature var='http://jabber.org/protocol/muc'/>"
           "<feature var='http://jabber.org/protocol/caps'/>"
           "<feature var='urn:evil'/></query>");
    CHECK_INT(epode_caps_cache_count(caps), base);
    CHECK_INT(sn.calls, 0);
    CHECK_INT(epode_caps_supports(caps, "liar@example.com/1", "urn:evil"), EPODE_ENOTFOUND);
    CHECK(epode_caps_get_info(caps, "liar@example.com/1") == NULL);
    /* the other JID advertising that ver is asked in turn */
    id = query_to(&s, "honest@example.com/2", SIMPLE_VER);
    CHECK(*id);
    char idh[128];
    snprintf(idh, sizeof idh, "%s", id);
    /* the liar repeating its presence is not asked again */
    presence_with_caps(&s, "liar@example.com/1", "sha-1", SIMPLE_VER);
    CHECK(scripted_next(&s) == NULL);
    /* an answer with garbage and a repeated feature: ill-formed, refused */
    answer(&s, "honest@example.com/2", idh,
           "<query xmlns='" NS_INFO "'><identity category='client'/><feature/>"
           "<feature var='a'/><feature var='a'/><x xmlns='jabber:x:data'><field><value/></field></x>"
           "<identity category='client' type='pc' name='Exodus 0.9.1'/></query>");
    CHECK_INT(epode_caps_cache_count(caps), base);
    CHECK_INT(epode_caps_supports(caps, "honest@example.com/2", "a"), EPODE_ENOTFOUND);
    /* a new JID with the ver: asked, answers right, trusted */
    presence_with_caps(&s, "third@example.com/3", "sha-1", SIMPLE_VER);
    id = query_to(&s, "third@example.com/3", SIMPLE_VER);
    CHECK(*id);
    char id3[128];
    snprintf(id3, sizeof id3, "%s", id);
    /* an answer forged from another JID is not taken */
    answer(&s, "liar@example.com/1", id3, "<query xmlns='" NS_INFO "'/>");
    CHECK_INT(epode_caps_cache_count(caps), base);
    answer(&s, "third@example.com/3", id3, SIMPLE_Q);
    CHECK_INT(epode_caps_cache_count(caps), base + 1);
    CHECK_INT(epode_caps_supports(caps, "third@example.com/3", "http://jabber.org/protocol/muc"), 1);
    /* the JIDs that failed are not credited after the fact */
    CHECK_INT(epode_caps_supports(caps, "liar@example.com/1", "http://jabber.org/protocol/muc"),
              EPODE_ENOTFOUND);
    /* a hash we do not know: nothing asked, nothing trusted */
    presence_with_caps(&s, "odd@example.com/4", "md5", "abc");
    CHECK(scripted_next(&s) == NULL);
    CHECK_INT(epode_caps_supports(caps, "odd@example.com/4", "x"), EPODE_ENOTFOUND);
    /* legacy caps (no hash): ignored */
    scripted_send(&s, "<presence from='old@example.com/5'><c xmlns='http://jabber.org/protocol/caps' "
                      "node='n' ver='1.0'/></presence>");
    CHECK(scripted_next(&s) == NULL);
    /* an error answer and a timeout-free cancel on free: no leak, no call */
    presence_with_caps(&s, "err@example.com/6", "sha-1", "AAAAAAAAAAAAAAAAAAAAAAAAAAA=");
    id = query_to(&s, "err@example.com/6", "AAAAAAAAAAAAAAAAAAAAAAAAAAA=");
    CHECK(*id);
    char xml[512];
    snprintf(xml, sizeof xml, "<iq type='error' id='%s' from='err@example.com/6'><error type='cancel'>"
             "<item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>", id);
    scripted_send(&s, xml);
    CHECK_INT(epode_caps_supports(caps, "err@example.com/6", "x"), EPODE_ENOTFOUND);
    presence_with_caps(&s, "late@example.com/7", "sha-1", "BBBBBBBBBBBBBBBBBBBBBBBBBBB=");
    epode_caps_free(caps);
    epode_disco_free(d);
    scripted_free(&s);
}

static const char *load_cb(void *user, const char *hash, const char *ver)
{
    seen *s = user;
    s->loads++;
    if (strcmp(hash, "sha-1") == 0 && strcmp(ver, s->stored_ver) == 0)
        return s->load_reply;
    return NULL;
}

static void store_cb(void *user, const char *hash, const char *ver, const char *xml)
{
    seen *s = user;
    (void)hash;
    s->stores++;
    snprintf(s->stored_ver, sizeof s->stored_ver, "%s", ver);
    snprintf(s->stored, sizeof s->stored, "%s", xml);
}

TEST(caps_cache_persistence_hook_verified_on_load)
{
    scripted s;
    CHECK(scripted_login(&s, "me@example.com", ME) == 0);
    epode_disco_t *d;
    epode_caps_t *caps;
    CHECK_INT(epode_disco_new(s.conn, &d), 0);
    CHECK_INT(epode_caps_new(d, "https://epode.example/test", &caps), 0);
    seen sn = {0};
    CHECK_INT(epode_caps_set_store(caps, load_cb, store_cb, &sn), 0);
    /* the complex example and a feature that sorts after its FORM_TYPE
     * (see caps_ambiguous_answer_is_its_senders_alone for why) */
    char cver[EPODE_CAPS_VER_MAX];
    CHECK_INT(hash_of(SHAREABLE_COMPLEX_Q, cver), 0);
    presence_with_caps(&s, "a@example.com/1", "sha-1", cver);
    CHECK_INT(sn.loads, 1);
    const char *id = query_to(&s, "a@example.com/1", cver);
    CHECK(*id);
    char ida[128];
    snprintf(ida, sizeof ida, "%s", id);
    answer(&s, "a@example.com/1", ida, SHAREABLE_COMPLEX_Q);
    CHECK_INT(sn.stores, 1);
    CHECK_STR(sn.stored_ver, cver);
    CHECK(has(sn.stored, "urn:xmpp:dataforms:softwareinfo"));
    epode_caps_free(caps);

    /* a new helper (a restart): the stored entry is loaded, no query */
    CHECK_INT(epode_caps_new(d, "https://epode.example/test", &caps), 0);
    CHECK_INT(epode_caps_set_store(caps, load_cb, store_cb, &sn), 0);
    sn.load_reply = sn.stored;
    presence_with_caps(&s, "b@example.com/2", "sha-1", cver);
    CHECK(scripted_next(&s) == NULL);
    CHECK_INT(epode_caps_supports(caps, "b@example.com/2", "http://jabber.org/protocol/muc"), 1);
    CHECK_INT(sn.stores, 1);
    epode_caps_free(caps);

    /* a tampered store is not believed: the entity is asked */
    CHECK_INT(epode_caps_new(d, "https://epode.example/test", &caps), 0);
    CHECK_INT(epode_caps_set_store(caps, load_cb, store_cb, &sn), 0);
    sn.load_reply = "<query xmlns='" NS_INFO "'><feature var='urn:evil'/></query>";
    presence_with_caps(&s, "c@example.com/3", "sha-1", cver);
    CHECK(*query_to(&s, "c@example.com/3", cver));
    CHECK_INT(epode_caps_supports(caps, "c@example.com/3", "urn:evil"), EPODE_ENOTFOUND);
    sn.load_reply = "not xml <<";
    presence_with_caps(&s, "e@example.com/3", "sha-1", SIMPLE_VER);
    CHECK(*query_to(&s, "e@example.com/3", SIMPLE_VER));
    epode_caps_free(caps);
    epode_disco_free(d);
    scripted_free(&s);
}

/* ---- issue 12: poisoning and bounds ---------------------------------------- */

/* The next stanza the client sent: a caps query to `to` (its id), else "". */
static const char *next_query_id(scripted *s, const char *to, const char *ver, char *id, size_t n)
{
    snprintf(id, n, "%s", query_to(s, to, ver));
    return id;
}

TEST(caps_collision_refused_not_cached_nor_persisted)
{
    scripted s;
    CHECK(scripted_login(&s, "me@example.com", ME) == 0);
    epode_disco_t *d;
    epode_caps_t *caps;
    CHECK_INT(epode_disco_new(s.conn, &d), 0);
    CHECK_INT(epode_caps_new(d, "https://epode.example/test", &caps), 0);
    seen sn = {0};
    CHECK_INT(epode_caps_set_store(caps, load_cb, store_cb, &sn), 0);
    size_t base = epode_caps_cache_count(caps);
    char id[128];

    /* three strangers announce the popular ver and answer with the three
     * collisions; an honest JID waits behind them */
    presence_with_caps(&s, "m1@evil.example/1", "sha-1", SIMPLE_VER);
    CHECK(*next_query_id(&s, "m1@evil.example/1", SIMPLE_VER, id, sizeof id));
    presence_with_caps(&s, "honest@example.com/2", "sha-1", SIMPLE_VER);
    CHECK(scripted_next(&s) == NULL);
    answer(&s, "m1@evil.example/1", id, COLLIDE_LT_Q);
    CHECK_INT(epode_caps_cache_count(caps), base);
    CHECK_INT(sn.stores, 0);
    CHECK_INT(epode_caps_supports(caps, "m1@evil.example/1", "http://jabber.org/protocol/muc"),
              EPODE_ENOTFOUND); /* ill-formed: not even its own */
    /* the honest JID is asked in turn; it is slow, a second stranger and a
     * third come along; the honest answer is lost (an error) */
    CHECK(*next_query_id(&s, "honest@example.com/2", SIMPLE_VER, id, sizeof id));
    presence_with_caps(&s, "m2@evil.example/1", "sha-1", SIMPLE_VER);
    presence_with_caps(&s, "m3@evil.example/1", "sha-1", SIMPLE_VER);
    CHECK(scripted_next(&s) == NULL);
    char xml[512];
    snprintf(xml, sizeof xml, "<iq type='error' id='%s' from='honest@example.com/2'><error "
             "type='wait'><resource-constraint xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
             "</error></iq>", id);
    scripted_send(&s, xml);
    CHECK(*next_query_id(&s, "m2@evil.example/1", SIMPLE_VER, id, sizeof id));
    answer(&s, "m2@evil.example/1", id, COLLIDE_FORM_Q);
    CHECK(*next_query_id(&s, "m3@evil.example/1", SIMPLE_VER, id, sizeof id));
    answer(&s, "m3@evil.example/1", id, COLLIDE_ID_Q);
    CHECK_INT(epode_caps_cache_count(caps), base);
    CHECK_INT(sn.stores, 0);
    /* what they said is theirs alone */
    CHECK_INT(epode_caps_supports(caps, "m2@evil.example/1", "http://jabber.org/protocol/muc"), 0);
    CHECK_INT(epode_caps_supports(caps, "m3@evil.example/1", "client/pc//Exodus 0.9.1"), 1);

    /* a JID that announces the ver now is asked itself, answers right:
     * cached, persisted, and what it says is what honest JIDs have */
    presence_with_caps(&s, "fine@example.com/4", "sha-1", SIMPLE_VER);
    CHECK(*next_query_id(&s, "fine@example.com/4", SIMPLE_VER, id, sizeof id));
    answer(&s, "fine@example.com/4", id, SIMPLE_Q);
    CHECK_INT(epode_caps_cache_count(caps), base + 1);
    CHECK_INT(sn.stores, 1);
    CHECK(!has(sn.stored, "evil") && has(sn.stored, "http://jabber.org/protocol/muc"));
    presence_with_caps(&s, "late@example.com/5", "sha-1", SIMPLE_VER);
    CHECK(scripted_next(&s) == NULL);
    CHECK_INT(epode_caps_supports(caps, "late@example.com/5", "http://jabber.org/protocol/muc"), 1);
    epode_caps_free(caps);

    /* a store holding a collision is not believed: the JID is asked */
    CHECK_INT(epode_caps_new(d, "https://epode.example/test", &caps), 0);
    CHECK_INT(epode_caps_set_store(caps, load_cb, store_cb, &sn), 0);
    snprintf(sn.stored_ver, sizeof sn.stored_ver, "%s", SIMPLE_VER);
    const char *bad[] = {COLLIDE_LT_Q, COLLIDE_FORM_Q, COLLIDE_ID_Q};
    for (int i = 0; i < 3; i++) {
        char jid[64];
        snprintf(jid, sizeof jid, "fresh%d@example.com/1", i);
        sn.load_reply = bad[i];
        presence_with_caps(&s, jid, "sha-1", SIMPLE_VER);
        CHECK(*next_query_id(&s, jid, SIMPLE_VER, id, sizeof id));
        CHECK_INT(epode_caps_supports(caps, jid, "http://jabber.org/protocol/muc"), EPODE_ENOTFOUND);
        snprintf(xml, sizeof xml, "<iq type='error' id='%s' from='%s'><error type='cancel'>"
                 "<item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>",
                 id, jid);
        scripted_send(&s, xml);
    }
    CHECK_INT(epode_caps_cache_count(caps), base);
    epode_caps_free(caps);
    epode_disco_free(d);
    scripted_free(&s);
}

TEST(caps_unverified_answer_serves_no_other_peer)
{
    scripted s;
    CHECK(scripted_login(&s, "me@example.com", ME) == 0);
    epode_disco_t *d;
    epode_caps_t *caps;
    CHECK_INT(epode_disco_new(s.conn, &d), 0);
    CHECK_INT(epode_caps_new(d, "https://epode.example/test", &caps), 0);
    seen sn = {0};
    epode_caps_set_cb(caps, on_caps, &sn);
    char id[128];
    /* the stranger is asked first; two honest JIDs wait for its answer */
    presence_with_caps(&s, "mallory@evil.example/x", "sha-1", SIMPLE_VER);
    CHECK(*next_query_id(&s, "mallory@evil.example/x", SIMPLE_VER, id, sizeof id));
    presence_with_caps(&s, "romeo@example.com/a", "sha-1", SIMPLE_VER);
    presence_with_caps(&s, "juliet@example.com/b", "sha-1", SIMPLE_VER);
    answer(&s, "mallory@evil.example/x", id, COLLIDE_FORM_Q);
    /* its answer matched the ver but could be read as another: it does not
     * make the honest JIDs lack muc; they are not known yet */
    CHECK_INT(epode_caps_supports(caps, "romeo@example.com/a", "http://jabber.org/protocol/muc"),
              EPODE_ENOTFOUND);
    CHECK_INT(epode_caps_supports(caps, "juliet@example.com/b", "http://jabber.org/protocol/muc"),
              EPODE_ENOTFOUND);
    CHECK_INT(sn.calls, 1);
    CHECK_STR(sn.last_jid, "mallory@evil.example/x");
    /* the oldest honest JID is asked for its own */
    CHECK(*next_query_id(&s, "romeo@example.com/a", SIMPLE_VER, id, sizeof id));
    answer(&s, "romeo@example.com/a", id, SIMPLE_Q);
    CHECK_INT(epode_caps_supports(caps, "romeo@example.com/a", "http://jabber.org/protocol/muc"), 1);
    CHECK_INT(epode_caps_supports(caps, "juliet@example.com/b", "http://jabber.org/protocol/muc"), 1);
    /* and the stranger keeps only what it said of itself */
    CHECK_INT(epode_caps_supports(caps, "mallory@evil.example/x", "http://jabber.org/protocol/muc"), 0);
    CHECK(scripted_next(&s) == NULL);
    epode_caps_free(caps);
    epode_disco_free(d);
    scripted_free(&s);
}

TEST(caps_ambiguous_answer_is_its_senders_alone)
{
    scripted s;
    CHECK(scripted_login(&s, "me@example.com", ME) == 0);
    epode_disco_t *d;
    epode_caps_t *caps;
    CHECK_INT(epode_disco_new(s.conn, &d), 0);
    CHECK_INT(epode_caps_new(d, "https://epode.example/test", &caps), 0);
    seen sn = {0};
    CHECK_INT(epode_caps_set_store(caps, load_cb, store_cb, &sn), 0);
    size_t base = epode_caps_cache_count(caps);
    char id[128];
    /* XEP-0115's own complex example: its FORM_TYPE sorts after every
     * feature, so the FORM_TYPE could be a feature of another answer with
     * the same hash. Each JID is known by its own answer, none cached. */
    presence_with_caps(&s, "psi@example.com/1", "sha-1", COMPLEX_VER);
    CHECK(*next_query_id(&s, "psi@example.com/1", COMPLEX_VER, id, sizeof id));
    presence_with_caps(&s, "psi@example.com/2", "sha-1", COMPLEX_VER);
    answer(&s, "psi@example.com/1", id, "<query xmlns='" NS_INFO "'>" COMPLEX_BODY "</query>");
    CHECK_INT(epode_caps_supports(caps, "psi@example.com/1", "http://jabber.org/protocol/muc"), 1);
    const epode_disco_info_t *info = epode_caps_get_info(caps, "psi@example.com/1");
    CHECK(info && info->nforms == 1 && info->forms[0].form_type &&
          strcmp(info->forms[0].form_type, "urn:xmpp:dataforms:softwareinfo") == 0);
    CHECK_INT(epode_caps_cache_count(caps), base);
    CHECK_INT(sn.stores, 0);
    CHECK(*next_query_id(&s, "psi@example.com/2", COMPLEX_VER, id, sizeof id));
    answer(&s, "psi@example.com/2", id, "<query xmlns='" NS_INFO "'>" COMPLEX_BODY "</query>");
    CHECK_INT(epode_caps_supports(caps, "psi@example.com/2", "http://jabber.org/protocol/muc"), 1);
    CHECK_INT(epode_caps_cache_count(caps), base);
    /* what is kept is what the hash covers: a form the hash ignores (its
     * FORM_TYPE is not hidden) is dropped, field types and labels too */
    char cver[EPODE_CAPS_VER_MAX];
    CHECK_INT(hash_of(SHAREABLE_COMPLEX_Q, cver), 0);
    presence_with_caps(&s, "gajim@example.com/1", "sha-1", cver);
    CHECK(*next_query_id(&s, "gajim@example.com/1", cver, id, sizeof id));
    answer(&s, "gajim@example.com/1", id,
           "<query xmlns='" NS_INFO "'>" COMPLEX_BODY "<feature var='urn:xmpp:time'/>"
           "<x xmlns='jabber:x:data' type='result'><field var='FORM_TYPE'>"
           "<value>urn:xmpp:dataforms:softwareinfo</value></field>"
           "<field var='os'><value>Evil</value></field></x><unhashed xmlns='urn:x'/></query>");
    CHECK_INT(epode_caps_cache_count(caps), base + 1);
    CHECK_INT(sn.stores, 1);
    CHECK(!has(sn.stored, "Evil") && !has(sn.stored, "unhashed") && !has(sn.stored, "text-multi"));
    info = epode_caps_get_info(caps, "gajim@example.com/1");
    CHECK(info && info->nforms == 1);
    epode_caps_free(caps);
    epode_disco_free(d);
    scripted_free(&s);
}

static int count_iq(scripted *s)
{
    int n = 0;
    for (int i = 0; i < s->nsent; i++)
        if (strcmp(epode_stanza_get_name(s->sent[i]), "iq") == 0)
            n++;
    return n;
}

/* A flood of presences, each from a JID and with a ver never seen. */
static void flood(scripted *s, int from, int to)
{
    for (int i = from; i < to; i++) {
        char jid[64], ver[64];
        snprintf(jid, sizeof jid, "bot%d@evil.example/r%d", i, i);
        snprintf(ver, sizeof ver, "%027d=", i);
        presence_with_caps(s, jid, "sha-1", ver);
    }
}

TEST(caps_bounds_hold_under_a_flood_of_peers)
{
    scripted_mem m;
    scripted_mem_init(&m);
    scripted s;
    CHECK_INT(scripted_login_mem(&s, &m.mem, "me@example.com", ME), 0);
    epode_disco_t *d;
    epode_caps_t *caps;
    CHECK_INT(epode_disco_new(s.conn, &d), 0);
    CHECK_INT(epode_caps_new(d, "https://epode.example/test", &caps), 0);
    int before = count_iq(&s);
    flood(&s, 0, 4500);
    /* a bounded number of disco#info requests, not one per stranger */
    int asked = count_iq(&s) - before;
    CHECK(asked > 0 && asked <= 16);
    long live = m.live;
    flood(&s, 4500, 9000);
    CHECK_INT(count_iq(&s) - before, asked);
    /* twice as many strangers, not twice the memory */
    CHECK(m.live <= live + 16);
    CHECK(epode_conn_is_ready(s.conn));
    epode_caps_free(caps);
    epode_disco_free(d);
    scripted_free(&s);
    CHECK_INT(m.live, 0);
}

typedef struct limits_seen {
    int peers, queries, memory;
    char last[128];
} limits_seen;

static void on_limit(epode_caps_t *c, epode_caps_limit_t limit, const char *jid, void *user)
{
    (void)c;
    limits_seen *l = user;
    if (limit == EPODE_CAPS_LIMIT_PEERS)
        l->peers++;
    else if (limit == EPODE_CAPS_LIMIT_QUERIES)
        l->queries++;
    else if (limit == EPODE_CAPS_LIMIT_MEMORY)
        l->memory++;
    snprintf(l->last, sizeof l->last, "%s", jid ? jid : "(null)");
}

TEST(caps_limits_reported_and_queued_peers_asked_later)
{
    scripted s;
    CHECK(scripted_login(&s, "me@example.com", ME) == 0);
    epode_disco_t *d;
    epode_caps_t *caps;
    CHECK_INT(epode_disco_new(s.conn, &d), 0);
    CHECK_INT(epode_caps_new(d, "https://epode.example/test", &caps), 0);
    limits_seen ls = {0};
    CHECK_INT(epode_caps_set_limit_cb(caps, on_limit, &ls), 0);
    CHECK_INT(epode_caps_set_limits(NULL, 1, 1, 1), EPODE_EINVAL);
    CHECK_INT(epode_caps_set_limits(caps, 3, 1, 0), 0);
    char id[128], cver[EPODE_CAPS_VER_MAX];
    CHECK_INT(hash_of(SHAREABLE_COMPLEX_Q, cver), 0);
    presence_with_caps(&s, "a@example.com/1", "sha-1", SIMPLE_VER);
    CHECK(*next_query_id(&s, "a@example.com/1", SIMPLE_VER, id, sizeof id));
    /* one request out: the second ver waits, and we hear of it */
    presence_with_caps(&s, "b@example.com/1", "sha-1", cver);
    CHECK(scripted_next(&s) == NULL);
    CHECK_INT(ls.queries, 1);
    CHECK_STR(ls.last, "b@example.com/1");
    /* a third JID fits, a fourth is not tracked */
    presence_with_caps(&s, "c@example.com/1", "sha-1", SIMPLE_VER);
    presence_with_caps(&s, "d@example.com/1", "sha-1", SIMPLE_VER);
    CHECK_INT(ls.peers, 1);
    CHECK_STR(ls.last, "d@example.com/1");
    /* the answer frees the slot: the waiting ver is asked */
    answer(&s, "a@example.com/1", id, SIMPLE_Q);
    CHECK_INT(epode_caps_supports(caps, "c@example.com/1", "http://jabber.org/protocol/muc"), 1);
    CHECK_INT(epode_caps_supports(caps, "d@example.com/1", "http://jabber.org/protocol/muc"),
              EPODE_ENOTFOUND);
    CHECK(*next_query_id(&s, "b@example.com/1", cver, id, sizeof id));
    /* with almost no memory to spend, the answer is not kept */
    CHECK_INT(epode_caps_set_limits(caps, 0, 0, 1), 0);
    answer(&s, "b@example.com/1", id, SHAREABLE_COMPLEX_Q);
    CHECK_INT(ls.memory, 1);
    CHECK_STR(ls.last, "b@example.com/1");
    CHECK_INT(epode_caps_supports(caps, "b@example.com/1", "urn:xmpp:time"), EPODE_ENOTFOUND);
    /* with room again, an unused cached entry makes way for a new one */
    CHECK_INT(epode_caps_set_limits(caps, 0, 0, 8u << 20), 0);
    scripted_send(&s, "<presence type='unavailable' from='a@example.com/1'/>");
    scripted_send(&s, "<presence type='unavailable' from='c@example.com/1'/>");
    presence_with_caps(&s, "e@example.com/1", "sha-1", cver);
    CHECK(*next_query_id(&s, "e@example.com/1", cver, id, sizeof id));
    size_t n = epode_caps_cache_count(caps);
    CHECK_INT(epode_caps_set_limits(caps, 0, 0, 3500), 0); /* ours, and one of these */
    answer(&s, "e@example.com/1", id, SHAREABLE_COMPLEX_Q);
    CHECK_INT(epode_caps_supports(caps, "e@example.com/1", "urn:xmpp:time"), 1);
    CHECK_INT(epode_caps_cache_count(caps), n); /* the simple example's entry went */
    epode_caps_free(caps);
    epode_disco_free(d);
    scripted_free(&s);
}

/* ---- allocation: through the context's allocator, every failure clean ------------------- */

/* What a workload's calls returned: in a sweep only 0 and EPODE_ENOMEM are clean. */
typedef struct sweep {
    int bad, nomem;
} sweep;

static int swept(sweep *w, int rc, const char *what, int line)
{
    if (rc == EPODE_ENOMEM)
        w->nomem = 1;
    else if (rc != 0) {
        printf("# %s:%d: %s == %s\n", __FILE__, line, what, epode_err_name(rc));
        w->bad = 1;
    }
    return rc;
}
#define SWEPT(w, expr) swept((w), (expr), #expr, __LINE__)

typedef struct caps_work {
    sweep w;
    epode_disco_t *d;
    epode_caps_t *caps;
    long helper_blocks;  /* live blocks the caps helper's creation added */
    int c_sent;          /* our presence went out with <c/> and our ver */
    int peer_known;      /* the peer's answer verified and cached */
    int feature_failed;  /* the feature registration failed... */
    int ver_kept;        /* ...and our ver did not change */
    int resent;          /* the feature added: presence re-sent with the new ver */
} caps_work;

/* The helpers; our presence (the filter adds <c/>); a peer's presence with
 * caps, its disco#info query answered with a matching hash (cached); a
 * feature added (presence re-sent). */
static void caps_workload(scripted *s, scripted_mem *m, caps_work *cw)
{
    if (SWEPT(&cw->w, epode_disco_new(s->conn, &cw->d)) < 0) {
        cw->d = NULL;
        return;
    }
    long before = m->live;
    if (SWEPT(&cw->w, epode_caps_new(cw->d, "https://epode.example/test", &cw->caps)) < 0) {
        cw->caps = NULL;
        return;
    }
    cw->helper_blocks = m->live - before;
    char ver1[EPODE_CAPS_VER_MAX];
    snprintf(ver1, sizeof ver1, "%s", epode_caps_get_ver(cw->caps) ? epode_caps_get_ver(cw->caps) : "");
    epode_stanza_t *p;
    if (epode_stanza_new_presence(NULL, NULL, NULL, &p) == 0) {
        SWEPT(&cw->w, epode_conn_send(s->conn, p));
        epode_stanza_unref(p);
    }
    scripted_pump(s);
    epode_stanza_t *out;
    while ((out = scripted_next(s)))
        if (strcmp(epode_stanza_get_name(out), "presence") == 0 && count_c(out) == 1 &&
            ver1[0] && attr_of_c(out, "ver") && strcmp(attr_of_c(out, "ver"), ver1) == 0)
            cw->c_sent = 1;
    if (!epode_conn_is_ready(s->conn)) /* a failed allocation may end the stream */
        return;

    presence_with_caps(s, "a@example.com/1", "sha-1", SIMPLE_VER);
    const char *id = query_to(s, "a@example.com/1", SIMPLE_VER);
    if (*id) {
        char ida[128];
        snprintf(ida, sizeof ida, "%s", id);
        answer(s, "a@example.com/1", ida, SIMPLE_Q);
    }
    cw->peer_known = epode_caps_supports(cw->caps, "a@example.com/1",
                                         "http://jabber.org/protocol/muc") == 1;
    while (scripted_next(s))
        ;
    if (!epode_conn_is_ready(s->conn))
        return;

    snprintf(ver1, sizeof ver1, "%s", epode_caps_get_ver(cw->caps) ? epode_caps_get_ver(cw->caps) : "");
    if (SWEPT(&cw->w, epode_disco_add_feature(cw->d, NULL, "urn:xmpp:ping")) < 0) {
        const char *v = epode_caps_get_ver(cw->caps);
        cw->feature_failed = 1;
        cw->ver_kept = strcmp(v ? v : "", ver1) == 0;
        return;
    }
    scripted_pump(s);
    const char *v2 = epode_caps_get_ver(cw->caps);
    while ((out = scripted_next(s)))
        if (strcmp(epode_stanza_get_name(out), "presence") == 0 && v2 && strcmp(v2, ver1) != 0 &&
            attr_of_c(out, "ver") && strcmp(attr_of_c(out, "ver"), v2) == 0)
            cw->resent = 1;
}

TEST(caps_allocates_through_the_context_allocator)
{
    scripted_mem m;
    scripted_mem_init(&m);
    scripted s;
    CHECK_INT(scripted_login_mem(&s, &m.mem, "example.com", "anon@example.com/r1"), 0);
    caps_work cw = {0};
    caps_workload(&s, &m, &cw);
    CHECK(!cw.w.bad && !cw.w.nomem);
    CHECK(cw.caps != NULL);
    CHECK(cw.helper_blocks >= 2); /* the helper and its node at least */
    CHECK(cw.c_sent);
    CHECK(cw.peer_known);
    CHECK(cw.resent);
    CHECK_INT(epode_caps_cache_count(cw.caps), 3); /* ourselves twice, the peer */
    long live = m.live;
    epode_caps_free(cw.caps);
    CHECK(m.live < live); /* the helper went back through the same allocator */
    epode_disco_free(cw.d);
    scripted_free(&s);
    CHECK_INT(m.live, 0);
}

TEST(caps_every_failed_allocation_is_clean)
{
    int clean = 0, kept = 0;
    long n;
    for (n = 0; n < 20000 && !clean; n++) {
        scripted_mem m;
        scripted_mem_init(&m);
        scripted s;
        CHECK_INT(scripted_login_mem(&s, &m.mem, "example.com", "anon@example.com/r1"), 0);
        m.fail_at = m.calls + n;
        caps_work cw = {0};
        caps_workload(&s, &m, &cw);
        clean = m.calls <= m.fail_at; /* nothing failed this time */
        epode_caps_free(cw.caps);
        epode_disco_free(cw.d);
        scripted_free(&s);
        if (cw.w.bad)
            printf("# with allocation %ld failing\n", n);
        CHECK(!cw.w.bad);
        CHECK_INT(m.live, 0);
        if (cw.feature_failed) {
            CHECK(cw.ver_kept); /* a failed registration leaves our ver alone */
            kept++;
        }
        if (clean) {
            CHECK(!cw.w.nomem);
            CHECK(cw.c_sent);
            CHECK(cw.peer_known);
            CHECK(cw.resent);
        }
    }
    CHECK(clean);
    CHECK(kept > 0); /* the sweep did reach a failing registration */
    printf("# caps: %ld allocation points swept\n", n - 1);
}

TEST_MAIN
