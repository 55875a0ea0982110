/* tests/unit/test_hostmeta.c — XEP-0156 discovery (lib/http/hostmeta.c):
 * the XRD and JRD parsers on Prosody- and ejabberd-like documents and on
 * hostile ones, then the lookup on epode's loop against an HTTPS server
 * of the test's own (a gnutls thread on 127.0.0.1 serving a per-test
 * table of paths, certificates from tests/data/tls) and a DNS responder
 * of its own (UDP on 127.0.0.1: example.test is 127.0.0.1). Nothing
 * leaves loopback. */
#include "test.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gnutls/gnutls.h>

#include "http/dns.h"
#include "http/hostmeta.h"
#include "http/http.h"
#include "loop/loop.h"

TEST_MAIN

#define DATA "../data/tls/"
#define WS_REL "urn:xmpp:alt-connections:websocket"
#define BOSH_REL "urn:xmpp:alt-connections:xbosh"
#define XRD_OPEN "<?xml version='1.0' encoding='utf-8'?>\n<XRD xmlns='http://docs.oasis-open.org/ns/xri/xrd-1.0'>\n"

static epode__hostmeta_links L;

static int xrd(const char *doc)
{
    return epode__hostmeta_parse_xrd(doc, strlen(doc), &L);
}

static int jrd(const char *doc)
{
    return epode__hostmeta_parse_json(doc, strlen(doc), &L);
}

/* ---- XRD ---------------------------------------------------------------------------- */

TEST(hostmeta_xrd_prosody_like_document)
{
    CHECK_INT(xrd(XRD_OPEN
                  "  <Link rel='" BOSH_REL "' href='https://example.com:5281/http-bind'/>\n"
                  "  <Link rel='" WS_REL "' href='wss://example.com:5281/xmpp-websocket'/>\n"
                  "</XRD>\n"),
              0);
    CHECK_STR(L.websocket, "wss://example.com:5281/xmpp-websocket");
    CHECK_STR(L.bosh, "https://example.com:5281/http-bind");
    CHECK_INT(L.ignored, 0);
    CHECK_STR(L.note, "");
}

TEST(hostmeta_xrd_takes_the_first_acceptable_link_in_order)
{
    CHECK_INT(xrd(XRD_OPEN "<Link rel='" WS_REL "' href='ws://plain.example/ws'/>"
                           "<Link rel='" WS_REL "' href='wss://first.example/ws'/>"
                           "<Link rel='" WS_REL "' href='wss://second.example/ws'/>"
                           "<Link rel='" BOSH_REL "' href='http://plain.example/bosh'/>"
                           "<Link rel='" BOSH_REL "' href='https://first.example/bosh'/></XRD>"),
              0);
    CHECK_STR(L.websocket, "wss://first.example/ws");
    CHECK_STR(L.bosh, "https://first.example/bosh");
    CHECK_INT(L.ignored, 2);
    CHECK(strstr(L.note, "ws://plain.example/ws") && strstr(L.note, "not wss://"));
}

TEST(hostmeta_xrd_insecure_links_only_give_nothing)
{
    CHECK_INT(xrd(XRD_OPEN "<Link rel='" WS_REL "' href='ws://example.com/ws'/>"
                           "<Link rel='" BOSH_REL "' href='http://example.com/bosh'/></XRD>"),
              0);
    CHECK_STR(L.websocket, "");
    CHECK_STR(L.bosh, "");
    CHECK_INT(L.ignored, 2);
    /* and the other way round: a wss:// URL is no BOSH URL */
    CHECK_INT(xrd(XRD_OPEN "<Link rel='" BOSH_REL "' href='wss://example.com/ws'/>"
                           "<Link rel='" WS_REL "' href='https://example.com/bosh'/></XRD>"),
              0);
    CHECK_STR(L.websocket, "");
    CHECK_STR(L.bosh, "");
    CHECK_INT(L.ignored, 2);
}

TEST(hostmeta_xrd_skips_what_is_not_ours)
{
    /* a prefixed XRD, comments, a PI, properties, other rels, a template
     * link, namespaced attributes, a Link one level too deep, and
     * character references */
    CHECK_INT(xrd("<?xml version='1.0'?><!-- hand-written -->\n"
                  "<?xml-stylesheet href='x.xsl'?>"
                  "<x:XRD xmlns:x='http://docs.oasis-open.org/ns/xri/xrd-1.0' xmlns:o='urn:other'>"
                  "<x:Subject>example.com</x:Subject>"
                  "<x:Property type='urn:p'>v</x:Property>"
                  "<x:Link rel='lrdd' template='https://example.com/x?uri={uri}'/>"
                  "<x:Link o:rel='" WS_REL "' o:href='wss://spoof.example/'/>"
                  "<x:Link rel='" WS_REL "' href='wss://a&#46;example/ws?a=1&amp;b=2'>"
                  "<x:Link rel='" BOSH_REL "' href='https://deep.example/'/></x:Link>"
                  "<o:Link rel='" BOSH_REL "' href='https://other-ns.example/'/>"
                  "</x:XRD>"),
              0);
    CHECK_STR(L.websocket, "wss://a.example/ws?a=1&b=2");
    CHECK_STR(L.bosh, "");
    CHECK_INT(L.ignored, 0);
}

TEST(hostmeta_xrd_refuses_other_roots_and_malformed_xml)
{
    CHECK_INT(xrd("<XRD><Link rel='" WS_REL "' href='wss://a.example/'/></XRD>"), EPODE_EPROTOCOL);
    CHECK(strstr(L.note, "not an XRD"));
    CHECK_STR(L.websocket, "");
    CHECK_INT(xrd("<html xmlns='http://www.w3.org/1999/xhtml'><body>hi</body></html>"),
              EPODE_EPROTOCOL);
    CHECK_INT(xrd(XRD_OPEN "<Link rel='" WS_REL "' href='wss://a.example/'/>"), EPODE_EPROTOCOL);
    CHECK_STR(L.websocket, ""); /* nothing from a document cut short */
    CHECK_INT(xrd(""), EPODE_EPROTOCOL);
    CHECK_INT(xrd("{\"links\":[]}"), EPODE_EPROTOCOL);
    CHECK_INT(xrd(XRD_OPEN "<Link rel='a' rel='b'/></XRD>"), EPODE_EPROTOCOL);
    CHECK_INT(xrd(XRD_OPEN "<p:Link rel='a'/></XRD>"), EPODE_EPROTOCOL); /* unbound prefix */
    CHECK_INT(xrd(XRD_OPEN "</XRD><XRD/>"), EPODE_EPROTOCOL);
    CHECK_INT(epode__hostmeta_parse_xrd(NULL, 0, &L), EPODE_EPROTOCOL);
    CHECK_INT(epode__hostmeta_parse_xrd(NULL, 3, &L), EPODE_EINVAL);
    CHECK_INT(epode__hostmeta_parse_xrd("<a/>", 4, NULL), EPODE_EINVAL);
}

TEST(hostmeta_xrd_refuses_dtds_and_entities)
{
    /* the billion laughs: refused at the DTD, nothing expanded */
    CHECK_INT(xrd("<?xml version='1.0'?><!DOCTYPE XRD [<!ENTITY a 'aaaaaaaaaa'>"
                  "<!ENTITY b '&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;'><!ENTITY c '&b;&b;&b;&b;&b;&b;&b;&b;'>]>"
                  "<XRD xmlns='http://docs.oasis-open.org/ns/xri/xrd-1.0'>"
                  "<Link rel='" WS_REL "' href='wss://x.example/&c;'/></XRD>"),
              EPODE_EPROTOCOL);
    CHECK_STR(L.websocket, "");
    CHECK(strstr(L.note, "document type") != NULL);
    /* an external entity (never fetched) */
    CHECK_INT(xrd("<!DOCTYPE XRD SYSTEM 'http://127.0.0.1:1/x.dtd'><XRD "
                  "xmlns='http://docs.oasis-open.org/ns/xri/xrd-1.0'/>"),
              EPODE_EPROTOCOL);
    /* an undeclared entity */
    CHECK_INT(xrd(XRD_OPEN "<Link rel='" WS_REL "' href='wss://x.example/&ext;'/></XRD>"),
              EPODE_EPROTOCOL);
    CHECK_STR(L.websocket, "");
}

TEST(hostmeta_xrd_refuses_invalid_utf8)
{
    CHECK_INT(xrd(XRD_OPEN "<Link rel='" WS_REL "' href='wss://x.example/\xc3\x28'/></XRD>"),
              EPODE_EPROTOCOL);
    CHECK_STR(L.websocket, "");
    CHECK_INT(xrd(XRD_OPEN "<Subject>\xed\xa0\x80</Subject></XRD>"), EPODE_EPROTOCOL);
    /* valid UTF-8 in a URL is still not a URL we hand out */
    CHECK_INT(xrd(XRD_OPEN "<Link rel='" WS_REL "' href='wss://\xc3\xa9.example/'/></XRD>"), 0);
    CHECK_STR(L.websocket, "");
    CHECK_INT(L.ignored, 1);
}

TEST(hostmeta_xrd_refuses_huge_and_deep_documents)
{
    size_t n = EPODE__HOSTMETA_DOC_MAX + 1;
    char *big = malloc(n + 1);
    memset(big, ' ', n);
    memcpy(big, XRD_OPEN, strlen(XRD_OPEN));
    memcpy(big + n - 6, "</XRD>", 6);
    big[n] = '\0';
    CHECK_INT(epode__hostmeta_parse_xrd(big, n, &L), EPODE_ELIMIT);
    CHECK_INT(epode__hostmeta_parse_xrd(big, n - 1 - 6, &L), EPODE_EPROTOCOL); /* unclosed */
    memcpy(big + n - 7, "</XRD>", 6);
    CHECK_INT(epode__hostmeta_parse_xrd(big, n - 1, &L), 0); /* exactly the bound */
    free(big);
    char deep[2048] = XRD_OPEN;
    for (int i = 0; i < 40; i++)
        strcat(deep, "<a>");
    for (int i = 0; i < 40; i++)
        strcat(deep, "</a>");
    strcat(deep, "</XRD>");
    CHECK_INT(xrd(deep), EPODE_ELIMIT);
    /* a URL over the bound is ignored, not cut */
    char *longurl = malloc(4000);
    snprintf(longurl, 4000, XRD_OPEN "<Link rel='" WS_REL "' href='wss://x.example/%03000d'/></XRD>", 0);
    CHECK_INT(xrd(longurl), 0);
    CHECK_STR(L.websocket, "");
    CHECK_INT(L.ignored, 1);
    free(longurl);
}

/* What ejabberd 23.01's mod_host_meta serves (captured from a local
 * ejabberd with an https listener carrying /bosh and /ws), byte for byte. */
static const char ejabberd_xrd[] =
    "<?xml version='1.0' encoding='utf-8'?>\n<XRD xmlns='http://docs.oasis-open.org/ns/xri/xrd-1.0'>"
    "<Link rel='urn:xmpp:alt-connections:xbosh' href='https://localhost:51509/bosh'/>"
    "<Link rel='urn:xmpp:alt-connections:websocket' href='wss://localhost:51509/ws'/></XRD>";
static const char ejabberd_json[] =
    "{\"links\":[{\"rel\":\"urn:xmpp:alt-connections:xbosh\",\"href\":\"https://localhost:51509/bosh\"},"
    "{\"rel\":\"urn:xmpp:alt-connections:websocket\",\"href\":\"wss://localhost:51509/ws\"}]}";

TEST(hostmeta_ejabberd_documents)
{
    CHECK_INT(xrd(ejabberd_xrd), 0);
    CHECK_STR(L.websocket, "wss://localhost:51509/ws");
    CHECK_STR(L.bosh, "https://localhost:51509/bosh");
    CHECK_INT(jrd(ejabberd_json), 0);
    CHECK_STR(L.websocket, "wss://localhost:51509/ws");
    CHECK_STR(L.bosh, "https://localhost:51509/bosh");
    CHECK_INT(L.ignored, 0);
}

/* ---- JRD ---------------------------------------------------------------------------- */

TEST(hostmeta_json_ejabberd_like_document)
{
    CHECK_INT(jrd("{\"links\":[{\"rel\":\"" BOSH_REL "\",\"href\":\"https://example.com:5443/bosh\"},"
                  "{\"rel\":\"" WS_REL "\",\"href\":\"wss://example.com:5443/ws\"}]}"),
              0);
    CHECK_STR(L.websocket, "wss://example.com:5443/ws");
    CHECK_STR(L.bosh, "https://example.com:5443/bosh");
    CHECK_INT(L.ignored, 0);
}

TEST(hostmeta_json_order_escapes_and_other_members)
{
    CHECK_INT(jrd("\xef\xbb\xbf {\"subject\": \"example.com\", \"n\": [-1.5e+3, 0, true, false, null, {}],"
                  " \"x\": {\"links\": [{\"rel\": \"" WS_REL "\", \"href\": \"wss://nested.example/\"}]},"
                  " \"links\" : [ 1, \"s\", [], {\"rel\": \"lrdd\", \"template\": \"https://x/{uri}\"},"
                  " {\"href\": \"ws://plain.example/\", \"rel\": \"" WS_REL "\"},"
                  " {\"rel\": \"urn:xmpp:alt-connections:\\u0077ebsocket\", \"href\": \"wss:\\/\\/a.example\\/ws\","
                  "  \"titles\": {\"en\": \"\\ud83d\\ude00 \\u00e9\"}},"
                  " {\"rel\": \"" WS_REL "\", \"href\": \"wss://b.example/\"},"
                  " {\"rel\": \"" BOSH_REL "\", \"href\": \"https://\\u00e9.example/\"} ] }\r\n"),
              0);
    CHECK_STR(L.websocket, "wss://a.example/ws");
    CHECK_STR(L.bosh, ""); /* non-ASCII: not a URL we hand out */
    CHECK_INT(L.ignored, 2);
    CHECK(strstr(L.note, "ws://plain.example/"));
}

TEST(hostmeta_json_refuses_malformed_json)
{
    static const char *const bad[] = {
        "",
        "[]",
        "{",
        "{\"links\":[]",
        "{\"links\":[],}",
        "{\"links\":[1,]}",
        "{'links':[]}",
        "{\"links\":[]} x",
        "{\"links\":[]}{}",
        "{\"a\":01}",
        "{\"a\":1.}",
        "{\"a\":.5}",
        "{\"a\":+1}",
        "{\"a\":NaN}",
        "{\"a\":tru}",
        "{\"a\" 1}",
        "{\"a\":\"\\x\"}",
        "{\"a\":\"\\u12\"}",
        "{\"a\":\"tab\there\"}",
        "{\"a\":\"\\ud800\"}",
        "{\"a\":\"\\ud800\\u0041\"}",
        "{\"a\":\"\\udc00\"}",
        "{\"a\":\"\xc3\x28\"}",
        "{\"a\":\"\xed\xa0\x80\"}",
        "{\"a\":\"\xc0\xaf\"}",
        "{\"a\":\"\xf4\x90\x80\x80\"}",
        "{\"links\":{\"rel\":\"x\"}}",
        "{\"links\":\"x\"}",
        "\xef\xbb{}",
        "{\"a\":1}\x80",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        int rc = jrd(bad[i]);
        if (rc != EPODE_EPROTOCOL)
            printf("# case %zu: %d\n", i, rc);
        CHECK_INT(rc, EPODE_EPROTOCOL);
        CHECK(L.note[0] != '\0');
        CHECK_STR(L.websocket, "");
    }
    /* a NUL inside the document is not the end of it */
    CHECK_INT(epode__hostmeta_parse_json("{}\0{", 4, &L), EPODE_EPROTOCOL);
    /* a good link before the error is not handed out */
    CHECK_INT(jrd("{\"links\":[{\"rel\":\"" WS_REL "\",\"href\":\"wss://a.example/\"}],"), EPODE_EPROTOCOL);
    CHECK_STR(L.websocket, "");
    CHECK_INT(epode__hostmeta_parse_json(NULL, 1, &L), EPODE_EINVAL);
    CHECK_INT(epode__hostmeta_parse_json("{}", 2, NULL), EPODE_EINVAL);
}

TEST(hostmeta_json_without_links_or_with_ambiguous_ones)
{
    CHECK_INT(jrd("{\"subject\":\"acct:x\"}"), 0);
    CHECK_STR(L.websocket, "");
    CHECK(strstr(L.note, "no \"links\""));
    CHECK_INT(jrd("{\"links\":[{\"rel\":\"" WS_REL "\",\"href\":\"wss://a.example/\",\"href\":\"wss://b.example/\"},"
                  "{\"rel\":\"" BOSH_REL "\"},"
                  "{\"rel\":\"" BOSH_REL "\",\"href\":42}]}"),
              0);
    CHECK_STR(L.websocket, "");
    CHECK_STR(L.bosh, "");
    CHECK_INT(L.ignored, 3);
    CHECK(strstr(L.note, "two rel or href"));
    /* a URL with a line break or a NUL is not repeated in the note */
    CHECK_INT(jrd("{\"links\":[{\"rel\":\"" WS_REL "\",\"href\":\"ws://a\\nfake log line\"},"
                  "{\"rel\":\"" BOSH_REL "\",\"href\":\"https://b/\\u0000x\"}]}"),
              0);
    CHECK_INT(L.ignored, 2);
    CHECK(strchr(L.note, '\n') == NULL);
    CHECK(strstr(L.note, "(with control or non-ASCII characters)") != NULL);
    CHECK_INT(xrd(XRD_OPEN "<Link rel='" BOSH_REL "' href='https://b/&#10;x'/></XRD>"), 0);
    CHECK_INT(L.ignored, 1);
    CHECK(strchr(L.note, '\n') == NULL);
}

TEST(hostmeta_json_refuses_huge_and_deep_documents)
{
    char deep[512] = "{\"a\":";
    for (int i = 0; i < 40; i++)
        strcat(deep, "[");
    for (int i = 0; i < 40; i++)
        strcat(deep, "]");
    strcat(deep, "}");
    CHECK_INT(jrd(deep), EPODE_ELIMIT);
    /* 31 levels inside the top object are fine */
    strcpy(deep, "{\"a\":");
    for (int i = 0; i < 31; i++)
        strcat(deep, "[");
    for (int i = 0; i < 31; i++)
        strcat(deep, "]");
    strcat(deep, "}");
    CHECK_INT(jrd(deep), 0);
    size_t n = EPODE__HOSTMETA_DOC_MAX + 1;
    char *big = malloc(n);
    memset(big, ' ', n);
    big[0] = '{';
    big[n - 1] = '}';
    CHECK_INT(epode__hostmeta_parse_json(big, n, &L), EPODE_ELIMIT);
    CHECK_INT(epode__hostmeta_parse_json(big + 1, n - 1, &L), EPODE_EPROTOCOL);
    big[1] = '{';
    CHECK_INT(epode__hostmeta_parse_json(big + 1, n - 1, &L), 0);
    free(big);
    /* a long href is ignored, not cut */
    char *longurl = malloc(5000);
    snprintf(longurl, 5000, "{\"links\":[{\"rel\":\"" WS_REL "\",\"href\":\"wss://x.example/%03000d\"}]}", 0);
    CHECK_INT(jrd(longurl), 0);
    CHECK_STR(L.websocket, "");
    CHECK_INT(L.ignored, 1);
    free(longurl);
}

TEST(hostmeta_url_rules)
{
    CHECK_INT(epode__hostmeta_url_ok("wss://example.com/ws", 1), 1);
    CHECK_INT(epode__hostmeta_url_ok("WSS://Example.COM:443/ws?x=1", 1), 1);
    CHECK_INT(epode__hostmeta_url_ok("wss://[2001:db8::1]:5281/ws", 1), 1);
    CHECK_INT(epode__hostmeta_url_ok("wss://example.com", 1), 1);
    CHECK_INT(epode__hostmeta_url_ok("https://example.com/bosh", 0), 1);
    CHECK_INT(epode__hostmeta_url_ok("https://example.com/bosh", 1), 0);
    CHECK_INT(epode__hostmeta_url_ok("wss://example.com/ws", 0), 0);
    CHECK_INT(epode__hostmeta_url_ok("ws://example.com/ws", 1), 0);
    CHECK_INT(epode__hostmeta_url_ok("http://example.com/bosh", 0), 0);
    CHECK_INT(epode__hostmeta_url_ok("wss://", 1), 0);
    CHECK_INT(epode__hostmeta_url_ok("wss:///ws", 1), 0);
    CHECK_INT(epode__hostmeta_url_ok("wss://user:pw@example.com/", 1), 0);
    CHECK_INT(epode__hostmeta_url_ok("wss://example.com:0/", 1), 0);
    CHECK_INT(epode__hostmeta_url_ok("wss://example.com:65536/", 1), 0);
    CHECK_INT(epode__hostmeta_url_ok("wss://example.com:/", 1), 0);
    CHECK_INT(epode__hostmeta_url_ok("wss://example.com:44x/", 1), 0);
    CHECK_INT(epode__hostmeta_url_ok("wss://example.com/ws#frag", 1), 0);
    CHECK_INT(epode__hostmeta_url_ok("wss://example.com/a b", 1), 0);
    CHECK_INT(epode__hostmeta_url_ok("wss://exa_mple.com/", 1), 0);
    CHECK_INT(epode__hostmeta_url_ok("wss://[::1/", 1), 0);
    CHECK_INT(epode__hostmeta_url_ok("wss://[::1]x/", 1), 0);
    CHECK_INT(epode__hostmeta_url_ok("wss://example.com/\x7f", 1), 0);
    CHECK_INT(epode__hostmeta_url_ok(NULL, 1), 0);
}

/* ---- the lookup's servers -------------------------------------------------------------- */

/* A DNS responder: names in `a_names` are 127.0.0.1 (no AAAA), every
 * other name does not exist; or silence. */
typedef struct dnsd {
    int fd;
    unsigned port;
    pthread_t t;
    const char *const *a_names;
    int silent;
    volatile int queries;
    volatile int stop;
} dnsd;

static void *dnsd_main(void *arg)
{
    dnsd *d = arg;
    while (!d->stop) {
        struct pollfd p = {.fd = d->fd, .events = POLLIN};
        if (poll(&p, 1, 50) <= 0)
            continue;
        unsigned char q[512], r[600];
        struct sockaddr_in from;
        socklen_t fl = sizeof from;
        ssize_t n = recvfrom(d->fd, q, sizeof q, 0, (struct sockaddr *)&from, &fl);
        d->queries++;
        if (n < 17 || d->silent)
            continue;
        char name[256];
        size_t nl = 0, o = 12;
        while (o < (size_t)n && q[o] && nl < 200) {
            size_t l = q[o++];
            if (o + l > (size_t)n)
                break;
            if (nl)
                name[nl++] = '.';
            memcpy(name + nl, q + o, l);
            nl += l;
            o += l;
        }
        name[nl] = '\0';
        if (o + 5 > (size_t)n)
            continue;
        size_t qend = o + 5;
        unsigned qtype = (unsigned)(q[o + 1] << 8 | q[o + 2]);
        int known = 0;
        for (const char *const *a = d->a_names; a && *a; a++)
            known |= strcasecmp(*a, name) == 0;
        memcpy(r, q, qend);
        r[2] = 0x81; /* response, recursion desired */
        r[3] = known ? 0x80 : 0x83; /* recursion available; NXDOMAIN */
        r[6] = r[7] = r[8] = r[9] = r[10] = r[11] = 0;
        size_t w = qend;
        if (known && qtype == 1) {
            static const unsigned char ans[] = {0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 127, 0, 0, 1};
            memcpy(r + w, ans, sizeof ans);
            w += sizeof ans;
            r[7] = 1;
        }
        sendto(d->fd, r, w, 0, (struct sockaddr *)&from, fl);
    }
    return NULL;
}

static void dnsd_start(dnsd *d, const char *const *a_names)
{
    memset(d, 0, sizeof *d);
    d->a_names = a_names;
    d->fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bind(d->fd, (struct sockaddr *)&a, sizeof a);
    socklen_t al = sizeof a;
    getsockname(d->fd, (struct sockaddr *)&a, &al);
    d->port = ntohs(a.sin_port);
    pthread_create(&d->t, NULL, dnsd_main, d);
}

static void dnsd_stop(dnsd *d)
{
    d->stop = 1;
    pthread_join(d->t, NULL);
    close(d->fd);
}

/* An HTTPS server: each connection gets one answer from `routes` by
 * path ("%P" in an answer is the server's port), or a 404. */
typedef struct route {
    const char *path;
    const char *answer; /* a whole HTTP response, or NULL with big_body */
    size_t big_body;    /* a 200 with this many bytes of body */
} route;

typedef struct httpsd {
    int lfd;
    unsigned port;
    pthread_t t;
    const route *routes;
    const char *cert, *key;
    gnutls_certificate_credentials_t cred;
    char paths[8][128]; /* asked, in order */
    int nreq;
    volatile int stop;
} httpsd;

static void serve_one(httpsd *s, int fd)
{
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    gnutls_session_t ss;
    gnutls_init(&ss, GNUTLS_SERVER);
    gnutls_priority_set_direct(ss, "NORMAL", NULL);
    gnutls_credentials_set(ss, GNUTLS_CRD_CERTIFICATE, s->cred);
    gnutls_transport_set_int(ss, fd);
    int rc;
    do
        rc = gnutls_handshake(ss);
    while (rc < 0 && !gnutls_error_is_fatal(rc));
    if (rc < 0)
        goto out;
    char req[4096];
    size_t len = 0;
    while (len < sizeof req - 1) {
        ssize_t n = gnutls_record_recv(ss, req + len, sizeof req - 1 - len);
        if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED)
            continue;
        if (n <= 0)
            goto out;
        len += (size_t)n;
        req[len] = '\0';
        if (strstr(req, "\r\n\r\n"))
            break;
    }
    char path[128] = "";
    sscanf(req, "GET %127s ", path);
    if (s->nreq < 8)
        snprintf(s->paths[s->nreq], sizeof s->paths[0], "%s", path);
    s->nreq++;
    const route *r = s->routes;
    while (r && r->path && strcmp(r->path, path) != 0)
        r++;
    char head[4096];
    if (r && r->path && r->answer && strcmp(r->answer, "SILENT") == 0) {
        while (!s->stop)
            usleep(10000);
    } else if (r && r->path && r->answer) {
        /* "%P": our port */
        size_t w = 0;
        for (const char *c = r->answer; *c && w < sizeof head - 8; c++) {
            if (c[0] == '%' && c[1] == 'P') {
                w += (size_t)snprintf(head + w, sizeof head - w, "%u", s->port);
                c++;
            } else {
                head[w++] = *c;
            }
        }
        gnutls_record_send(ss, head, w);
    } else if (r && r->path) {
        int hl = snprintf(head, sizeof head,
                          "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
                          r->big_body);
        gnutls_record_send(ss, head, (size_t)hl);
        static char body[16384];
        memset(body, ' ', sizeof body);
        for (size_t sent = 0; sent < r->big_body;) {
            size_t n = r->big_body - sent < sizeof body ? r->big_body - sent : sizeof body;
            if (gnutls_record_send(ss, body, n) <= 0)
                break;
            sent += n;
        }
    } else {
        static const char nf[] = "HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n"
                                 "Connection: close\r\n\r\nnot found";
        gnutls_record_send(ss, nf, sizeof nf - 1);
    }
    gnutls_bye(ss, GNUTLS_SHUT_WR);
out:
    gnutls_deinit(ss);
    close(fd);
}

static void *httpsd_main(void *arg)
{
    httpsd *s = arg;
    while (!s->stop) {
        int fd = accept(s->lfd, NULL, NULL);
        if (fd < 0)
            break;
        serve_one(s, fd);
    }
    return NULL;
}

static void httpsd_start(httpsd *s, const route *routes, const char *cert)
{
    memset(s, 0, sizeof *s);
    s->routes = routes;
    char c[128], k[128];
    snprintf(c, sizeof c, DATA "%s.pem", cert ? cert : "server");
    snprintf(k, sizeof k, DATA "%s-key.pem", cert ? cert : "server");
    gnutls_certificate_allocate_credentials(&s->cred);
    gnutls_certificate_set_x509_key_file(s->cred, c, k, GNUTLS_X509_FMT_PEM);
    s->lfd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(s->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bind(s->lfd, (struct sockaddr *)&a, sizeof a);
    socklen_t al = sizeof a;
    getsockname(s->lfd, (struct sockaddr *)&a, &al);
    s->port = ntohs(a.sin_port);
    listen(s->lfd, 8);
    pthread_create(&s->t, NULL, httpsd_main, s);
}

static void httpsd_stop(httpsd *s)
{
    s->stop = 1;
    shutdown(s->lfd, SHUT_RDWR);
    pthread_join(s->t, NULL);
    close(s->lfd);
    gnutls_certificate_free_credentials(s->cred);
}

/* ---- the lookup ------------------------------------------------------------------------- */

typedef struct outcome {
    int calls;
    int status;
    char ws[256], bosh[256], text[1024];
    char log[2048];
    int cancel_in_log;
    epode__hostmeta_req *req;
} outcome;

static void on_result(void *user, int status, const char *ws, const char *bosh, const char *text)
{
    outcome *o = user;
    o->calls++;
    o->status = status;
    snprintf(o->ws, sizeof o->ws, "%s", ws ? ws : "(none)");
    snprintf(o->bosh, sizeof o->bosh, "%s", bosh ? bosh : "(none)");
    snprintf(o->text, sizeof o->text, "%s", text);
}

static void on_log(void *user, int level, const char *text)
{
    outcome *o = user;
    size_t n = strlen(o->log);
    snprintf(o->log + n, sizeof o->log - n, "[%d] %s\n", level, text);
    if (o->cancel_in_log)
        epode__hostmeta_cancel(o->req);
}

typedef struct fixture {
    epode__loop *l;
    epode__http *h;
    epode__http_dns *d;
    dnsd dns;
    httpsd web;
    int have_web;
} fixture;

static const char *const test_names[] = {"example.test", "xn--ex-cja.test", NULL};

static int fx_open(fixture *f, const route *routes, const char *cert)
{
    memset(f, 0, sizeof *f);
    signal(SIGPIPE, SIG_IGN);
    dnsd_start(&f->dns, test_names);
    if (routes) {
        httpsd_start(&f->web, routes, cert);
        f->have_web = 1;
    }
    char servers[64];
    snprintf(servers, sizeof servers, "127.0.0.1:%u", f->dns.port);
    if (epode__loop_new(NULL, &f->l) < 0 || epode__http_new(NULL, f->l, &f->h) < 0 ||
        epode__http_dns_new(NULL, f->l, servers, &f->d) < 0)
        return -1;
    return 0;
}

static void fx_close(fixture *f)
{
    epode__http_free(f->h);
    epode__http_dns_free(f->d);
    for (int i = 0; i < 5; i++)
        epode__loop_run_once(f->l, 0);
    epode__loop_free(f->l);
    if (f->have_web)
        httpsd_stop(&f->web);
    dnsd_stop(&f->dns);
}

static int lookup(fixture *f, const char *domain, outcome *o)
{
    memset(o, 0, sizeof *o);
    epode__hostmeta_opts opts = {.port = f->have_web ? f->web.port : 1,
                                 .ca_file = DATA "ca.pem",
                                 .timeout_ms = 5000,
                                 .log = on_log};
    int rc = epode__hostmeta_lookup(f->h, f->d, domain, &opts, on_result, o, &o->req);
    if (rc < 0)
        return rc;
    if (o->calls)
        return -100; /* never inside lookup() */
    uint64_t until = epode__now_ms() + 15000;
    while (!o->calls && epode__now_ms() < until)
        epode__loop_run_once(f->l, 100);
    return o->calls == 1 ? 0 : -200;
}

static const char xrd_body[] =
    "<?xml version='1.0' encoding='utf-8'?><XRD xmlns='http://docs.oasis-open.org/ns/xri/xrd-1.0'>"
    "<Link rel='" BOSH_REL "' href='https://example.test:5281/http-bind'/>"
    "<Link rel='" WS_REL "' href='wss://example.test:5281/xmpp-websocket'/></XRD>";
static const char json_body[] =
    "{\"links\":[{\"rel\":\"" WS_REL "\",\"href\":\"wss://example.test/ws\"}]}";

static char xrd_answer[1024], json_answer[1024], ws_only_xrd_answer[1024];

static void make_answers(void)
{
    snprintf(xrd_answer, sizeof xrd_answer,
             "HTTP/1.1 200 OK\r\nContent-Type: application/xrd+xml\r\nConnection: close\r\n"
             "Content-Length: %zu\r\n\r\n%s", strlen(xrd_body), xrd_body);
    snprintf(json_answer, sizeof json_answer,
             "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
             "Content-Length: %zu\r\n\r\n%s", strlen(json_body), json_body);
    static const char insecure[] =
        "<XRD xmlns='http://docs.oasis-open.org/ns/xri/xrd-1.0'>"
        "<Link rel='" WS_REL "' href='ws://example.test:5280/xmpp-websocket'/></XRD>";
    snprintf(ws_only_xrd_answer, sizeof ws_only_xrd_answer,
             "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: %zu\r\n\r\n%s",
             strlen(insecure), insecure);
}

TEST(hostmeta_lookup_finds_the_xrd)
{
    make_answers();
    route routes[] = {{"/.well-known/host-meta", xrd_answer, 0}, {NULL, NULL, 0}};
    fixture f;
    CHECK_INT(fx_open(&f, routes, NULL), 0);
    outcome o;
    CHECK_INT(lookup(&f, "example.test", &o), 0);
    CHECK_INT(o.status, 0);
    CHECK_STR(o.ws, "wss://example.test:5281/xmpp-websocket");
    CHECK_STR(o.bosh, "https://example.test:5281/http-bind");
    CHECK(strstr(o.text, "/.well-known/host-meta") != NULL);
    CHECK_INT(f.web.nreq, 1);
    CHECK_STR(f.web.paths[0], "/.well-known/host-meta");
    fx_close(&f);
}

TEST(hostmeta_lookup_falls_back_to_json)
{
    make_answers();
    route routes[] = {{"/.well-known/host-meta.json", json_answer, 0}, {NULL, NULL, 0}};
    fixture f;
    CHECK_INT(fx_open(&f, routes, NULL), 0);
    outcome o;
    CHECK_INT(lookup(&f, "example.test", &o), 0);
    CHECK_INT(o.status, 0);
    CHECK_STR(o.ws, "wss://example.test/ws");
    CHECK_STR(o.bosh, "(none)");
    CHECK(strstr(o.text, "host-meta.json") != NULL);
    CHECK_INT(f.web.nreq, 2);
    CHECK_STR(f.web.paths[0], "/.well-known/host-meta");
    CHECK_STR(f.web.paths[1], "/.well-known/host-meta.json");
    CHECK(strstr(o.log, "HTTP status 404") != NULL);
    fx_close(&f);
}

TEST(hostmeta_lookup_ignores_insecure_links_and_tries_json)
{
    make_answers();
    route routes[] = {{"/.well-known/host-meta", ws_only_xrd_answer, 0},
                      {"/.well-known/host-meta.json", json_answer, 0},
                      {NULL, NULL, 0}};
    fixture f;
    CHECK_INT(fx_open(&f, routes, NULL), 0);
    outcome o;
    CHECK_INT(lookup(&f, "example.test", &o), 0);
    CHECK_INT(o.status, 0);
    CHECK_STR(o.ws, "wss://example.test/ws");
    CHECK(strstr(o.log, "ws://example.test:5280/xmpp-websocket was ignored: not wss://") != NULL);
    fx_close(&f);
}

TEST(hostmeta_lookup_404_on_both_is_an_error_in_words)
{
    route routes[] = {{NULL, NULL, 0}};
    fixture f;
    CHECK_INT(fx_open(&f, routes, NULL), 0);
    outcome o;
    CHECK_INT(lookup(&f, "example.test", &o), 0);
    CHECK_INT(o.status, EPODE_EHTTP);
    CHECK_STR(o.ws, "(none)");
    CHECK_STR(o.bosh, "(none)");
    char want[200];
    snprintf(want, sizeof want, "https://example.test:%u/.well-known/host-meta: HTTP status 404; "
                                "https://example.test:%u/.well-known/host-meta.json: HTTP status 404",
             f.web.port, f.web.port);
    CHECK(strstr(o.text, want) != NULL);
    fx_close(&f);
}

TEST(hostmeta_lookup_refuses_a_redirect_to_http)
{
    route routes[] = {{"/.well-known/host-meta",
                       "HTTP/1.1 301 Moved\r\nLocation: http://example.test:%P/hm\r\n"
                       "Content-Length: 0\r\nConnection: close\r\n\r\n", 0},
                      {"/.well-known/host-meta.json",
                       "HTTP/1.1 302 Found\r\nLocation: http://example.test:%P/hm.json\r\n"
                       "Content-Length: 0\r\nConnection: close\r\n\r\n", 0},
                      {NULL, NULL, 0}};
    fixture f;
    CHECK_INT(fx_open(&f, routes, NULL), 0);
    outcome o;
    CHECK_INT(lookup(&f, "example.test", &o), 0);
    CHECK_INT(o.status, EPODE_EPROTOCOL);
    CHECK(strstr(o.text, "refused: only https://") != NULL);
    CHECK_INT(f.web.nreq, 2); /* nothing fetched over http:// */
    fx_close(&f);
}

TEST(hostmeta_lookup_follows_https_redirects)
{
    make_answers();
    /* same origin by path, then to another name (localhost, from
     * /etc/hosts) with its own lookup and certificate check */
    route routes[] = {{"/.well-known/host-meta",
                       "HTTP/1.1 301 Moved\r\nLocation: /moved\r\nContent-Length: 0\r\n"
                       "Connection: close\r\n\r\n", 0},
                      {"/moved",
                       "HTTP/1.1 307 Temporary\r\nlocation:  https://localhost:%P/final \r\n"
                       "Content-Length: 0\r\nConnection: close\r\n\r\n", 0},
                      {"/final", xrd_answer, 0},
                      {NULL, NULL, 0}};
    fixture f;
    CHECK_INT(fx_open(&f, routes, NULL), 0);
    outcome o;
    CHECK_INT(lookup(&f, "example.test", &o), 0);
    CHECK_INT(o.status, 0);
    CHECK_STR(o.ws, "wss://example.test:5281/xmpp-websocket");
    CHECK(strstr(o.text, "https://localhost:") && strstr(o.text, "/final"));
    CHECK_INT(f.web.nreq, 3);
    fx_close(&f);
}

TEST(hostmeta_lookup_stops_after_too_many_redirects)
{
    route routes[] = {{"/.well-known/host-meta",
                       "HTTP/1.1 301 Moved\r\nLocation: /.well-known/host-meta\r\n"
                       "Content-Length: 0\r\nConnection: close\r\n\r\n", 0},
                      {"/.well-known/host-meta.json",
                       "HTTP/1.1 301 Moved\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", 0},
                      {NULL, NULL, 0}};
    fixture f;
    CHECK_INT(fx_open(&f, routes, NULL), 0);
    outcome o;
    CHECK_INT(lookup(&f, "example.test", &o), 0);
    CHECK_INT(o.status, EPODE_EPROTOCOL);
    CHECK(strstr(o.text, "more than 3 redirects") != NULL);
    CHECK(strstr(o.text, "without a usable Location") != NULL);
    CHECK_INT(f.web.nreq, 5);
    fx_close(&f);
}

TEST(hostmeta_lookup_refuses_a_certificate_for_another_name)
{
    make_answers();
    route routes[] = {{"/.well-known/host-meta", xrd_answer, 0},
                      {"/.well-known/host-meta.json", json_answer, 0},
                      {NULL, NULL, 0}};
    fixture f;
    CHECK_INT(fx_open(&f, routes, "wrongname"), 0);
    outcome o;
    CHECK_INT(lookup(&f, "example.test", &o), 0);
    CHECK_INT(o.status, EPODE_ECERT);
    CHECK_STR(o.ws, "(none)");
    CHECK(strstr(o.text, "/.well-known/host-meta:") != NULL);
    fx_close(&f);
}

TEST(hostmeta_lookup_refuses_an_untrusted_certificate)
{
    make_answers();
    route routes[] = {{"/.well-known/host-meta", xrd_answer, 0}, {NULL, NULL, 0}};
    fixture f;
    CHECK_INT(fx_open(&f, routes, "untrusted"), 0); /* CN=localhost, another CA */
    outcome o;
    memset(&o, 0, sizeof o);
    epode__hostmeta_opts opts = {.port = f.web.port, .ca_file = DATA "ca.pem"};
    CHECK_INT(epode__hostmeta_lookup(f.h, f.d, "localhost", &opts, on_result, &o, NULL), 0);
    uint64_t until = epode__now_ms() + 15000;
    while (!o.calls && epode__now_ms() < until)
        epode__loop_run_once(f.l, 100);
    CHECK_INT(o.calls, 1);
    CHECK_INT(o.status, EPODE_ECERT);
    fx_close(&f);
}

TEST(hostmeta_lookup_refuses_an_oversized_document)
{
    route routes[] = {{"/.well-known/host-meta", NULL, EPODE__HOSTMETA_DOC_MAX + 1}, {NULL, NULL, 0}};
    fixture f;
    CHECK_INT(fx_open(&f, routes, NULL), 0);
    outcome o;
    CHECK_INT(lookup(&f, "example.test", &o), 0);
    CHECK_INT(o.status, EPODE_ELIMIT); /* not the JSON's weaker 404 */
    CHECK(strstr(o.text, "larger than 65536 bytes") != NULL);
    fx_close(&f);
}

TEST(hostmeta_lookup_of_an_unknown_domain)
{
    fixture f;
    CHECK_INT(fx_open(&f, NULL, NULL), 0);
    outcome o;
    CHECK_INT(lookup(&f, "nowhere.test", &o), 0);
    CHECK_INT(o.status, EPODE_EDNS);
    CHECK(strstr(o.text, "could not resolve nowhere.test") != NULL);
    fx_close(&f);
}

TEST(hostmeta_lookup_refuses_bad_arguments)
{
    fixture f;
    CHECK_INT(fx_open(&f, NULL, NULL), 0);
    outcome o = {0};
    static const char *const bad[] = {"", "example.test:443", "a b", "exa/mple", "user@example.test",
                                      "[::1", "ex\xc3\x28.test", "a\xe2\x80\xa8.test"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        CHECK_INT(epode__hostmeta_lookup(f.h, f.d, bad[i], NULL, on_result, &o, NULL), EPODE_EINVAL);
    CHECK_INT(epode__hostmeta_lookup(NULL, f.d, "example.test", NULL, on_result, &o, NULL), EPODE_EINVAL);
    CHECK_INT(epode__hostmeta_lookup(f.h, NULL, "example.test", NULL, on_result, &o, NULL), EPODE_EINVAL);
    CHECK_INT(epode__hostmeta_lookup(f.h, f.d, "example.test", NULL, NULL, &o, NULL), EPODE_EINVAL);
    CHECK_INT(o.calls, 0);
    fx_close(&f);
}

TEST(hostmeta_lookup_canceled)
{
    make_answers();
    route routes[] = {{"/.well-known/host-meta", ws_only_xrd_answer, 0},
                      {"/.well-known/host-meta.json", json_answer, 0},
                      {NULL, NULL, 0}};
    fixture f;
    CHECK_INT(fx_open(&f, routes, NULL), 0);
    /* while resolving (the DNS stays silent) */
    f.dns.silent = 1;
    outcome o = {0};
    epode__hostmeta_opts opts = {.port = f.web.port, .ca_file = DATA "ca.pem", .log = on_log};
    CHECK_INT(epode__hostmeta_lookup(f.h, f.d, "example.test", &opts, on_result, &o, &o.req), 0);
    for (int i = 0; i < 3; i++)
        epode__loop_run_once(f.l, 20);
    epode__hostmeta_cancel(o.req);
    for (int i = 0; i < 5; i++)
        epode__loop_run_once(f.l, 20);
    CHECK_INT(o.calls, 0);
    /* from the log callback (the ignored ws:// link): nothing more happens */
    f.dns.silent = 0;
    memset(&o, 0, sizeof o);
    o.cancel_in_log = 1;
    CHECK_INT(epode__hostmeta_lookup(f.h, f.d, "example.test", &opts, on_result, &o, &o.req), 0);
    uint64_t until = epode__now_ms() + 3000;
    while (!o.log[0] && epode__now_ms() < until)
        epode__loop_run_once(f.l, 50);
    CHECK(strstr(o.log, "ignored") != NULL);
    for (int i = 0; i < 10; i++)
        epode__loop_run_once(f.l, 20);
    CHECK_INT(o.calls, 0);
    CHECK_INT(f.web.nreq, 1);
    CHECK_INT(epode__http_active(f.h), 0);
    epode__hostmeta_cancel(NULL);
    fx_close(&f);
}

/* Every allocation of the request goes through opts.mem and comes back;
 * a failed one is a clean EPODE_ENOMEM without a callback. */
static long live, allocs, fail_at = -1;
static void *c_malloc(size_t size, void *user)
{
    (void)user;
    if (fail_at >= 0 && allocs++ == fail_at)
        return NULL;
    void *p = malloc(size);
    live += p != NULL;
    return p;
}
static void *c_realloc(void *ptr, size_t size, void *user)
{
    return ptr ? realloc(ptr, size) : c_malloc(size, user);
}
static void c_free(void *ptr, void *user)
{
    (void)user;
    live -= ptr != NULL;
    free(ptr);
}
static const epode_mem_t counting = {c_malloc, c_realloc, c_free, NULL};

TEST(hostmeta_lookup_allocations)
{
    make_answers();
    route routes[] = {{"/.well-known/host-meta.json", json_answer, 0}, {NULL, NULL, 0}};
    fixture f;
    CHECK_INT(fx_open(&f, routes, NULL), 0);
    outcome o = {0};
    epode__hostmeta_opts opts = {.mem = &counting, .port = f.web.port, .ca_file = DATA "ca.pem"};
    for (long i = 0; i < 2; i++) {
        live = allocs = 0;
        fail_at = i;
        CHECK_INT(epode__hostmeta_lookup(f.h, f.d, "example.test", &opts, on_result, &o, NULL),
                  EPODE_ENOMEM);
        CHECK_INT(live, 0);
    }
    fail_at = -1;
    live = allocs = 0;
    CHECK_INT(epode__hostmeta_lookup(f.h, f.d, "example.test", &opts, on_result, &o, NULL), 0);
    CHECK_INT(live, 2);
    uint64_t until = epode__now_ms() + 15000;
    while (!o.calls && epode__now_ms() < until)
        epode__loop_run_once(f.l, 100);
    CHECK_INT(o.calls, 1);
    CHECK_INT(o.status, 0);
    CHECK_INT(live, 0);
    fx_close(&f);
}

/* The callback may free the HTTP client and the resolver it ran on. */
typedef struct freeing {
    fixture *f;
    int calls, status;
} freeing;

static void free_in_cb(void *user, int status, const char *ws, const char *bosh, const char *text)
{
    (void)ws, (void)bosh, (void)text;
    freeing *x = user;
    x->calls++;
    x->status = status;
    epode__http_free(x->f->h);
    epode__http_dns_free(x->f->d);
    x->f->h = NULL;
    x->f->d = NULL;
}

TEST(hostmeta_lookup_callback_may_free_what_it_ran_on)
{
    make_answers();
    route routes[] = {{"/.well-known/host-meta", xrd_answer, 0}, {NULL, NULL, 0}};
    fixture f;
    CHECK_INT(fx_open(&f, routes, NULL), 0);
    freeing x = {.f = &f};
    epode__hostmeta_opts opts = {.port = f.web.port, .ca_file = DATA "ca.pem"};
    CHECK_INT(epode__hostmeta_lookup(f.h, f.d, "example.test", &opts, free_in_cb, &x, NULL), 0);
    uint64_t until = epode__now_ms() + 15000;
    while (!x.calls && epode__now_ms() < until)
        epode__loop_run_once(f.l, 100);
    CHECK_INT(x.calls, 1);
    CHECK_INT(x.status, 0);
    fx_close(&f);
}

TEST(hostmeta_lookup_times_out)
{
    /* the XRD request is read and never answered; the JSON one never
     * gets past the TCP backlog (the server is busy) */
    route routes[] = {{"/.well-known/host-meta", "SILENT", 0}, {NULL, NULL, 0}};
    fixture f;
    CHECK_INT(fx_open(&f, routes, NULL), 0);
    outcome o = {0};
    epode__hostmeta_opts opts = {.port = f.web.port, .ca_file = DATA "ca.pem", .timeout_ms = 400};
    uint64_t t0 = epode__now_ms();
    CHECK_INT(epode__hostmeta_lookup(f.h, f.d, "example.test", &opts, on_result, &o, NULL), 0);
    uint64_t until = t0 + 15000;
    while (!o.calls && epode__now_ms() < until)
        epode__loop_run_once(f.l, 100);
    CHECK_INT(o.calls, 1);
    CHECK_INT(o.status, EPODE_ETIMEDOUT);
    CHECK(epode__now_ms() - t0 < 3000);
    CHECK(strstr(o.text, "host-meta.json: timed out") != NULL);
    fx_close(&f);
}

TEST(hostmeta_lookup_of_an_internationalized_domain_asks_for_its_a_label)
{
    /* (the certificate has no such name: the lookup gets as far as TLS) */
    route routes[] = {{NULL, NULL, 0}};
    fixture f;
    CHECK_INT(fx_open(&f, routes, NULL), 0);
    outcome o;
    CHECK_INT(lookup(&f, "ex\xc3\xa9.test", &o), 0);
    CHECK_INT(o.status, EPODE_ECERT);
    CHECK(strstr(o.text, "https://xn--ex-cja.test:") != NULL);
    fx_close(&f);
}

/* An HTTP CONNECT proxy for one tunnel: it takes any name and connects
 * to 127.0.0.1 at the port asked, as a proxy that resolves would. */
typedef struct tunnel {
    int lfd;
    unsigned port;
    pthread_t t;
    char asked[256];
    volatile int stop;
} tunnel;

static void *tunnel_main(void *arg)
{
    tunnel *x = arg;
    int c = accept(x->lfd, NULL, NULL);
    if (c < 0)
        return NULL;
    char req[2048];
    size_t len = 0;
    while (len < sizeof req - 1 && !strstr(req, "\r\n\r\n")) {
        ssize_t n = recv(c, req + len, sizeof req - 1 - len, 0);
        if (n <= 0)
            break;
        len += (size_t)n;
        req[len] = '\0';
    }
    unsigned port = 0;
    char host[200] = "";
    if (sscanf(req, "CONNECT %199[^:]:%u ", host, &port) == 2) {
        snprintf(x->asked, sizeof x->asked, "%s:%u", host, port);
        int u = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        if (connect(u, (struct sockaddr *)&a, sizeof a) == 0) {
            static const char ok[] = "HTTP/1.1 200 Connection established\r\n\r\n";
            send(c, ok, sizeof ok - 1, MSG_NOSIGNAL);
            struct pollfd p[2] = {{.fd = c, .events = POLLIN}, {.fd = u, .events = POLLIN}};
            char buf[16384];
            while (!x->stop) {
                if (poll(p, 2, 50) <= 0)
                    continue;
                int from = (p[0].revents & (POLLIN | POLLHUP)) ? 0 : 1;
                ssize_t n = recv(p[from].fd, buf, sizeof buf, 0);
                if (n <= 0 || send(p[1 - from].fd, buf, (size_t)n, MSG_NOSIGNAL) != n)
                    break;
            }
        }
        close(u);
    }
    close(c);
    return NULL;
}

TEST(hostmeta_lookup_through_a_proxy_that_resolves_asks_no_dns)
{
    make_answers();
    route routes[] = {{"/.well-known/host-meta", xrd_answer, 0}, {NULL, NULL, 0}};
    fixture f;
    CHECK_INT(fx_open(&f, routes, NULL), 0);
    tunnel x;
    memset(&x, 0, sizeof x);
    x.lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bind(x.lfd, (struct sockaddr *)&a, sizeof a);
    socklen_t al = sizeof a;
    getsockname(x.lfd, (struct sockaddr *)&a, &al);
    x.port = ntohs(a.sin_port);
    listen(x.lfd, 4);
    pthread_create(&x.t, NULL, tunnel_main, &x);
    char proxy[64];
    snprintf(proxy, sizeof proxy, "http://127.0.0.1:%u", x.port);
    outcome o = {0};
    epode__hostmeta_opts opts = {.port = f.web.port, .ca_file = DATA "ca.pem", .proxy = proxy,
                                 .proxy_user = "u", .proxy_pass = "p"};
    /* no resolver needed */
    CHECK_INT(epode__hostmeta_lookup(f.h, NULL, "example.test", &opts, on_result, &o, NULL), 0);
    CHECK_INT(o.calls, 0);
    uint64_t until = epode__now_ms() + 15000;
    while (!o.calls && epode__now_ms() < until)
        epode__loop_run_once(f.l, 100);
    x.stop = 1;
    shutdown(x.lfd, SHUT_RDWR);
    pthread_join(x.t, NULL);
    close(x.lfd);
    CHECK_INT(o.calls, 1);
    CHECK_INT(o.status, 0);
    CHECK_STR(o.ws, "wss://example.test:5281/xmpp-websocket");
    char want[64];
    snprintf(want, sizeof want, "example.test:%u", f.web.port);
    CHECK_STR(x.asked, want);
    CHECK_INT(f.dns.queries, 0);
    /* each copied option is an allocation; a failed one leaves nothing */
    epode__hostmeta_opts mo = opts;
    mo.mem = &counting;
    epode__hostmeta_req *req = NULL;
    for (long i = 0; i < 6; i++) {
        live = allocs = 0;
        fail_at = i;
        CHECK_INT(epode__hostmeta_lookup(f.h, f.d, "example.test", &mo, on_result, &o, &req),
                  i < 5 ? EPODE_ENOMEM : 0);
        CHECK_INT(live, i < 5 ? 0 : 5);
    }
    fail_at = -1;
    epode__hostmeta_cancel(req);
    CHECK_INT(live, 0);
    /* a proxy that wants addresses (socks5://) still needs the resolver */
    opts.proxy = "socks5://127.0.0.1:1";
    CHECK_INT(epode__hostmeta_lookup(f.h, NULL, "example.test", &opts, on_result, &o, NULL), EPODE_EINVAL);
    opts.proxy = "";
    CHECK_INT(epode__hostmeta_lookup(f.h, f.d, "example.test", &opts, on_result, &o, NULL), EPODE_EINVAL);
    fx_close(&f);
}
