/* bench/parse.c — receive-path parser throughput: a generated stream of
 * realistic chat messages parsed into stanza trees by epode, and the same
 * bytes, in the same chunks, through libxml2's SAX2 push parser with empty
 * callbacks (the floor any libxml2-based parser stands on). Both run in
 * the same process, alternating, and the best round of each is compared,
 * so a noisy shared machine skews both alike.
 *
 *   bench/parse [MESSAGES [ROUNDS [CHUNK]]]     defaults 200000 5 4096
 */
#include <epode.h>

#include <libxml/parser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define HDR "<?xml version='1.0'?><stream:stream xmlns='jabber:client' " \
            "xmlns:stream='http://etherx.jabber.org/streams' from='capulet.example' " \
            "id='s-9f8e7d6c' version='1.0' xml:lang='en'>"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static char *make_stream(long n, size_t *len, size_t *msg_len)
{
    size_t cap = strlen(HDR) + (size_t)n * 400 + 64;
    char *s = malloc(cap);
    if (!s)
        exit(1);
    size_t off = (size_t)sprintf(s, "%s", HDR);
    for (long i = 0; i < n; i++) {
        size_t before = off;
        off += (size_t)sprintf(s + off,
            "<message from='juliet@capulet.example/balcony' to='romeo@montague.example/orchard' "
            "type='chat' id='msg-%08ld-5f2c9a1' xml:lang='en'><body>Wherefore art thou, Romeo? "
            "Deny thy father &amp; refuse thy name \xe2\x80\x94 caf\xc3\xa9 \xe2\x98\x95 "
            "\xc3\xa9t\xc3\xa9 no. %ld of the night, my sweet Juliet</body>"
            "<active xmlns='http://jabber.org/protocol/chatstates'/></message>",
            i, i % 1000);
        *msg_len = off - before;
    }
    *len = off;
    return s;
}

static long stanzas;

static void on_ev(void *user, epode_parser_event_t ev, epode_stanza_t *el)
{
    (void)user;
    if (ev == EPODE_PARSER_STANZA && el)
        stanzas++;
}

static double run_epode(const char *s, size_t len, size_t chunk)
{
    epode_parser_t *p;
    if (epode_parser_new(NULL, on_ev, NULL, &p) != 0)
        exit(1);
    stanzas = 0;
    double t = now();
    for (size_t off = 0; off < len; off += chunk) {
        size_t n = len - off < chunk ? len - off : chunk;
        if (epode_parser_feed(p, s + off, n) != 0) {
            fprintf(stderr, "epode parse error: %s\n", epode_parser_error_text(p));
            exit(1);
        }
    }
    t = now() - t;
    epode_parser_free(p);
    return t;
}

static long sax_elements;
static void sax_start(void *c, const xmlChar *l, const xmlChar *p, const xmlChar *u, int nn,
                      const xmlChar **ns, int na, int nd, const xmlChar **a)
{
    (void)c, (void)l, (void)p, (void)u, (void)nn, (void)ns, (void)na, (void)nd, (void)a;
    sax_elements++;
}
static void sax_end(void *c, const xmlChar *l, const xmlChar *p, const xmlChar *u)
{
    (void)c, (void)l, (void)p, (void)u;
}
static void sax_chars(void *c, const xmlChar *ch, int len)
{
    (void)c, (void)ch, (void)len;
}

static double run_sax(const char *s, size_t len, size_t chunk)
{
    xmlSAXHandler h;
    memset(&h, 0, sizeof h);
    h.initialized = XML_SAX2_MAGIC;
    h.startElementNs = sax_start;
    h.endElementNs = sax_end;
    h.characters = sax_chars;
    xmlParserCtxtPtr c = xmlCreatePushParserCtxt(&h, NULL, NULL, 0, NULL);
    xmlCtxtUseOptions(c, XML_PARSE_NONET | XML_PARSE_IGNORE_ENC);
    sax_elements = 0;
    double t = now();
    for (size_t off = 0; off < len; off += chunk) {
        size_t n = len - off < chunk ? len - off : chunk;
        if (xmlParseChunk(c, s + off, (int)n, 0) != 0) {
            fprintf(stderr, "libxml2 parse error\n");
            exit(1);
        }
    }
    t = now() - t;
    xmlFreeParserCtxt(c);
    return t;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 200000;
    int rounds = argc > 2 ? atoi(argv[2]) : 5;
    size_t chunk = argc > 3 ? (size_t)atol(argv[3]) : 4096;
    if (n <= 0 || rounds <= 0 || chunk == 0) {
        fprintf(stderr, "usage: %s [MESSAGES [ROUNDS [CHUNK]]]\n", argv[0]);
        return 64;
    }
    size_t len, msg_len;
    char *s = make_stream(n, &len, &msg_len);
    double best_e = 1e30, best_s = 1e30;
    for (int r = 0; r < rounds; r++) {
        double ts = run_sax(s, len, chunk);
        double te = run_epode(s, len, chunk);
        if (stanzas != n) {
            fprintf(stderr, "epode reported %ld stanzas, expected %ld\n", stanzas, n);
            return 1;
        }
        if (ts < best_s) best_s = ts;
        if (te < best_e) best_e = te;
    }
    double mb = len / 1e6;
    printf("stream: %ld messages of %zu bytes, %.1f MB, chunks of %zu bytes, best of %d rounds\n",
           n, msg_len, mb, chunk, rounds);
    printf("libxml2 SAX (empty callbacks): %10.0f stanzas/s %8.1f MB/s\n", n / best_s, mb / best_s);
    printf("epode parse + build trees:     %10.0f stanzas/s %8.1f MB/s\n", n / best_e, mb / best_e);
    printf("ratio epode / libxml2 SAX: %.2f (target >= 0.70)\n", best_s / best_e);
    free(s);
    return 0;
}
