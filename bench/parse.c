/* bench/parse.c — receive-path parser throughput against its floor: a
 * generated stream of realistic chat messages parsed into stanza trees by
 * epode, and the same bytes, in the same chunks, through libxml2's SAX2
 * push parser driven the way a minimal SAX consumer drives it (the floor
 * any libxml2-based parser stands on).
 *
 * The baseline is kept honest: same libxml2, same options epode's
 * defaults would give a plain user (NONET | IGNORE_ENC), characters and
 * ignorable whitespace to one handler as any consumer that keeps text
 * sets them, and callbacks that read what a consumer must read — each
 * element's name and namespace, every attribute's name and value bytes,
 * every text byte's count — without building anything. It is not given
 * epode's tuning (see parser.c): what epode saves inside libxml2 counts
 * for epode.
 *
 * Both run in the same process, ROUNDS times; a round times one after
 * the other (which one goes first flips each round), so both of a round
 * see the same machine. The ratio is the median of the per-round ratios:
 * on a shared, loaded machine the best round of each can come from
 * different moments (the ratio of best rounds swung 0.6-1.0 at load 10
 * while the median stayed within 0.03); the best rounds are printed too.
 * Compare ratios from one run, never absolute numbers across runs.
 *
 *   bench/parse [MESSAGES [ROUNDS [CHUNK]]]     defaults 40000 41 4096
 *   bench/parse --only epode|sax [MESSAGES [ROUNDS [CHUNK]]]   (profiling)
 *
 * The last line is "RESULT parse epode rate=… sax_rate=… ratio=…
 * best_ratio=…" for bench/run.sh (rates: best rounds). */
#include <epode.h>

#include <libxml/parser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TARGET 0.85

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

/* ---- epode ---------------------------------------------------------------- */

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

/* ---- libxml2 SAX, the minimum a consumer does ------------------------------ */

static struct {
    long elements;
    unsigned long touched; /* folds what a consumer reads, so nothing is skipped */
} sax;

static void sax_start(void *c, const xmlChar *l, const xmlChar *p, const xmlChar *u, int nn,
                      const xmlChar **ns, int na, int nd, const xmlChar **a)
{
    (void)c, (void)p, (void)nn, (void)ns, (void)nd;
    sax.elements++;
    unsigned long h = l[0] + (u ? u[0] : 0);
    for (int i = 0; i < na; i++, a += 5)
        h += a[0][0] + (unsigned long)(a[4] - a[3]) + (a[4] > a[3] ? a[3][0] : 0);
    sax.touched += h;
}

static void sax_end(void *c, const xmlChar *l, const xmlChar *p, const xmlChar *u)
{
    (void)c, (void)p, (void)u;
    sax.touched += l[0];
}

static void sax_chars(void *c, const xmlChar *ch, int len)
{
    (void)c;
    sax.touched += (unsigned long)len + (len > 0 ? ch[0] : 0);
}

static double run_sax(const char *s, size_t len, size_t chunk)
{
    xmlSAXHandler h;
    memset(&h, 0, sizeof h);
    h.initialized = XML_SAX2_MAGIC;
    h.startElementNs = sax_start;
    h.endElementNs = sax_end;
    h.characters = sax_chars;
    h.ignorableWhitespace = sax_chars;
    xmlParserCtxtPtr c = xmlCreatePushParserCtxt(&h, NULL, NULL, 0, NULL);
    if (!c)
        exit(1);
    xmlCtxtUseOptions(c, XML_PARSE_NONET | XML_PARSE_IGNORE_ENC);
    sax.elements = 0;
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

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    int only = 0; /* 1 epode, 2 sax */
    if (argc > 2 && strcmp(argv[1], "--only") == 0) {
        only = strcmp(argv[2], "epode") == 0 ? 1 : strcmp(argv[2], "sax") == 0 ? 2 : -1;
        argc -= 2;
        argv += 2;
    }
    long n = argc > 1 ? atol(argv[1]) : 40000;
    int rounds = argc > 2 ? atoi(argv[2]) : 41;
    size_t chunk = argc > 3 ? (size_t)atol(argv[3]) : 4096;
    if (only < 0 || n <= 0 || rounds <= 0 || rounds > 1000 || chunk == 0 || chunk > (1u << 30)) {
        fprintf(stderr, "usage: %s [--only epode|sax] [MESSAGES [ROUNDS [CHUNK]]]\n", argv[0]);
        return 64;
    }
    xmlInitParser();
    size_t len, msg_len;
    char *s = make_stream(n, &len, &msg_len);
    double best_e = 1e30, best_s = 1e30, ratios[1000];
    for (int r = 0; r < rounds; r++) {
        double ts = 0, te = 0;
        int sax_first = r % 2 == 0;
        if (only != 1 && sax_first)
            ts = run_sax(s, len, chunk);
        if (only != 2)
            te = run_epode(s, len, chunk);
        if (only != 1 && !sax_first)
            ts = run_sax(s, len, chunk);
        if (only != 2 && stanzas != n) {
            fprintf(stderr, "epode reported %ld stanzas, expected %ld\n", stanzas, n);
            return 1;
        }
        if (only != 1 && sax.elements != 3 * n + 1) {
            fprintf(stderr, "libxml2 reported %ld elements, expected %ld\n", sax.elements,
                    3 * n + 1);
            return 1;
        }
        if (ts < best_s) best_s = ts;
        if (te < best_e) best_e = te;
        ratios[r] = te > 0 ? ts / te : 0;
    }
    double mb = len / 1e6;
    printf("stream: %ld messages of %zu bytes, %.1f MB, chunks of %zu bytes, %d rounds alternating\n",
           n, msg_len, mb, chunk, rounds);
    if (only != 1)
        printf("libxml2 SAX (minimal consumer): %10.0f stanzas/s %8.1f MB/s  (best round)\n",
               n / best_s, mb / best_s);
    if (only != 2)
        printf("epode parse + build trees:      %10.0f stanzas/s %8.1f MB/s  (best round)\n",
               n / best_e, mb / best_e);
    if (only == 0) {
        qsort(ratios, (size_t)rounds, sizeof ratios[0], cmp_double);
        double med = rounds % 2 ? ratios[rounds / 2]
                                : (ratios[rounds / 2 - 1] + ratios[rounds / 2]) / 2;
        double best = best_s / best_e;
        printf("ratio epode / libxml2 SAX: %.2f median of %d per-round ratios (target >= %.2f: "
               "%s); %.2f of the best rounds\n",
               med, rounds, TARGET, med >= TARGET ? "ok" : "MISSED", best);
        printf("RESULT parse epode rate=%.0f sax_rate=%.0f ratio=%.3f best_ratio=%.3f "
               "rounds=%d chunk=%zu\n",
               n / best_e, n / best_s, med, best, rounds, chunk);
    }
    /* (keeps the baseline's reads from being optimized away) */
    if (sax.touched == 1)
        fprintf(stderr, "\n");
    free(s);
    return 0;
}
