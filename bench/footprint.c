/* bench/footprint.c — what an idle session costs epode, counted through
 * the allocator hook (deterministic, unlike RSS), with no file
 * descriptors: N sessions log in over in-process memory transports
 * against a scripted server in the same process, then idle.
 *
 *   footprint [--sessions N] [--sm] [--window W] [--max-bytes B]
 *
 * Prints one RESULT line — bytes per idle session, allocations per
 * session, CPU time per login (run it at 1,000 and at 100,000: flat
 * means no O(n^2) anywhere) — and the bytes broken down by part.
 * --max-bytes B makes it a check (exit 1 above B bytes a session): the
 * test suite runs it on 1,000 sessions against a stated ceiling.
 *
 * The server side and the memory transports (standing in for sockets)
 * use libc's allocator and are not counted; everything else epode
 * allocates for the sessions is. libxml2's allocations are not epode's
 * allocator's either: a session holds none once logged in (its parser
 * context is given back), which bench/conn_bench idle confirms in RSS. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <epode.h>

#include "conn/conn_int.h"
#include "transport/transport.h"
#include "util/footprint.h"
#include "xml/parser_int.h"

/* ---- counting allocator ------------------------------------------------ */

typedef struct counter {
    size_t live, blocks, peak;
} counter;

static counter g_count;

/* Each block carries its size in front (16 bytes keep max_align_t). */
#define HDR 16

static void *c_malloc(size_t n, void *user)
{
    counter *c = user;
    unsigned char *p = malloc(HDR + n);
    if (!p)
        return NULL;
    memcpy(p, &n, sizeof n);
    c->live += n;
    c->blocks++;
    if (c->live > c->peak)
        c->peak = c->live;
    return p + HDR;
}

static void c_free(void *ptr, void *user)
{
    counter *c = user;
    if (!ptr)
        return;
    unsigned char *p = (unsigned char *)ptr - HDR;
    size_t n;
    memcpy(&n, p, sizeof n);
    c->live -= n;
    c->blocks--;
    free(p);
}

static void *c_realloc(void *ptr, size_t n, void *user)
{
    counter *c = user;
    if (!ptr)
        return c_malloc(n, user);
    unsigned char *p = (unsigned char *)ptr - HDR;
    size_t old;
    memcpy(&old, p, sizeof old);
    unsigned char *q = realloc(p, HDR + n);
    if (!q)
        return NULL;
    memcpy(q, &n, sizeof n);
    c->live = c->live - old + n;
    if (c->live > c->peak)
        c->peak = c->live;
    return q + HDR;
}

static const epode_mem_t counting = {c_malloc, c_realloc, c_free, &g_count};

/* ---- the scripted server ------------------------------------------------ */

#define HEADER                                                                                     \
    "<?xml version='1.0'?><stream:stream xmlns='jabber:client' "                                  \
    "xmlns:stream='http://etherx.jabber.org/streams' from='example.com' id='s1' version='1.0'>"
#define FEATURES_SASL                                                                              \
    "<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>"                       \
    "<mechanism>ANONYMOUS</mechanism></mechanisms></stream:features>"
#define FEATURES_BIND                                                                              \
    "<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features>"
/* What Prosody 0.12 offers after authentication, as bots meet it. */
#define FEATURES_BIND_SM                                                                           \
    "<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><required/></bind>"           \
    "<session xmlns='urn:ietf:params:xml:ns:xmpp-session'><optional/></session>"                   \
    "<ver xmlns='urn:xmpp:features:rosterver'/><sm xmlns='urn:xmpp:sm:2'><optional/></sm>"          \
    "<sm xmlns='urn:xmpp:sm:3'><optional/></sm><csi xmlns='urn:xmpp:csi:0'/>"                      \
    "<c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='http://prosody.im' "            \
    "ver='iNA9t5pNP0K8m87i8idnVbP7BUE='/></stream:features>"

enum stage { S_HEADER1, S_AUTH, S_HEADER2, S_BIND, S_ENABLE, S_DONE };

typedef struct session {
    epode_conn_t *conn;
    epode__transport *server; /* our end */
    enum stage stage;
    int ready;
    char in[600]; /* what the client wrote, not yet matched (a step is < 300 bytes) */
    size_t inlen;
} session;

static int g_sm;
static long g_ready, g_ended;

static void on_event(epode_conn_t *c, epode_conn_event_t ev, void *user)
{
    session *s = user;
    if (ev == EPODE_CONN_READY && !s->ready) {
        s->ready = 1;
        g_ready++;
    } else if (ev == EPODE_CONN_DISCONNECTED) {
        g_ended++;
        fprintf(stderr, "footprint: a session ended: %s\n", epode_conn_error_text(c));
    }
}

static void put(session *s, const char *xml)
{
    size_t len = strlen(xml);
    if (epode__transport_write(s->server, xml, len) != (long)len) {
        fprintf(stderr, "footprint: server write failed\n");
        exit(2);
    }
}

/* Takes what the client wrote; answers each step of the login once its
 * bytes are all in. 1 if something was written back. */
static int serve(session *s, long idx)
{
    long n;
    while ((n = epode__transport_read(s->server, s->in + s->inlen, sizeof s->in - 1 - s->inlen)) > 0)
        s->inlen += (size_t)n;
    s->in[s->inlen] = '\0';
    const char *at;
    char buf[512];
    switch (s->stage) {
    case S_HEADER1:
    case S_HEADER2:
        if (!(at = strstr(s->in, "<stream:stream")) || !strchr(at, '>'))
            return 0;
        put(s, s->stage == S_HEADER1 ? HEADER FEATURES_SASL
                                     : g_sm ? HEADER FEATURES_BIND_SM : HEADER FEATURES_BIND);
        s->stage = s->stage == S_HEADER1 ? S_AUTH : S_BIND;
        break;
    case S_AUTH:
        if (!(at = strstr(s->in, "<auth")) || (!strstr(at, "/>") && !strstr(at, "</auth>")))
            return 0;
        put(s, "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>");
        s->stage = S_HEADER2;
        break;
    case S_BIND: {
        const char *end;
        if (!(at = strstr(s->in, "<iq")) || !(end = strstr(at, "</iq>")))
            return 0;
        const char *id = strstr(at, "id=");
        const char *q = id ? strchr(id + 4, id[3]) : NULL; /* either quote */
        if (!q || q > end) {
            fprintf(stderr, "footprint: bind without an id: %s\n", at);
            exit(2);
        }
        snprintf(buf, sizeof buf,
                 "<iq type='result' id='%.*s'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
                 "<jid>anon%ld@example.com/r%ld</jid></bind></iq>",
                 (int)(q - id - 4), id + 4, idx, idx);
        put(s, buf);
        s->stage = g_sm ? S_ENABLE : S_DONE;
        break;
    }
    case S_ENABLE:
        if (!(at = strstr(s->in, "<enable")) || !strstr(at, "/>"))
            return 0;
        snprintf(buf, sizeof buf, "<enabled xmlns='urn:xmpp:sm:3' id='sm-%ld' resume='true'/>", idx);
        put(s, buf);
        s->stage = S_DONE;
        break;
    case S_DONE:
        s->inlen = 0; /* acks and the like: nothing to answer here */
        return 0;
    }
    s->inlen = 0; /* a step's bytes arrive whole before the client waits */
    return 1;
}

/* ---- driving ---------------------------------------------------------- */

static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void ignore(void *user, epode_parser_event_t ev, epode_stanza_t *el)
{
    (void)user, (void)ev, (void)el;
}

static void die(const char *what, int rc)
{
    fprintf(stderr, "footprint: %s: %s\n", what, epode_strerror(rc));
    exit(2);
}

static void start(epode_ctx_t *ctx, session *s, long i)
{
    epode__transport *client;
    int rc;
    char jid[64];
    snprintf(jid, sizeof jid, "example.com/r%ld", i);
    if ((rc = epode_conn_new(ctx, &s->conn)) < 0 || (rc = epode_conn_set_jid(s->conn, jid)) < 0 ||
        (rc = epode_conn_set_tls(s->conn, EPODE_TLS_DISABLED)) < 0 ||
        (rc = epode_conn_set_mechanisms(s->conn, "ANONYMOUS")) < 0 ||
        (rc = epode_conn_add_event_cb(s->conn, on_event, s, NULL)) < 0 ||
        (g_sm && (rc = epode_conn_set_stream_management(s->conn, 1)) < 0))
        die("connection set-up", rc);
    /* The pair stands in for a socket and is not counted (libc's
     * allocator): it holds both directions' queues, which the kernel
     * holds for a socket. A TCP session's transport object is ~180 bytes
     * (bench/conn_bench idle sees it in RSS). */
    if ((rc = epode__memory_pair(NULL, &client, &s->server)) < 0)
        die("memory pair", rc);
    if ((rc = epode__conn_start_over(s->conn, client)) < 0)
        die("start", rc);
}

int main(int argc, char **argv)
{
    long n = 1000, window = 500;
    size_t max_bytes = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--sessions") && i + 1 < argc)
            n = atol(argv[++i]);
        else if (!strcmp(argv[i], "--window") && i + 1 < argc)
            window = atol(argv[++i]);
        else if (!strcmp(argv[i], "--max-bytes") && i + 1 < argc)
            max_bytes = (size_t)atol(argv[++i]);
        else if (!strcmp(argv[i], "--sm"))
            g_sm = 1;
        else {
            fprintf(stderr, "usage: %s [--sessions N] [--sm] [--window W] [--max-bytes B]\n",
                    argv[0]);
            return 64;
        }
    }
    if (n < 4 || window < 1) {
        fprintf(stderr, "footprint: --sessions must be at least 4, --window at least 1\n");
        return 64;
    }
    int rc;
    epode_ctx_t *ctx;
    if ((rc = epode_global_init()) < 0 || (rc = epode_ctx_new(&counting, &ctx)) < 0)
        die("context", rc);

    /* The parser's idle share, measured alone: a parser that has read a
     * stream header and given its libxml2 context back, as a session's
     * does after login. */
    size_t before = g_count.live;
    epode_parser_t *p;
    if ((rc = epode_parser_new(&counting, ignore, NULL, &p)) < 0)
        die("parser", rc);
    epode_parser_feed(p, HEADER, strlen(HEADER));
    if (epode__parser_compact(p) < 0)
        die("parser compact", EPODE_ESTATE);
    size_t parser_bytes = g_count.live - before;
    epode_parser_free(p);

    session *ss = calloc((size_t)n, sizeof *ss);
    if (!ss)
        die("calloc", EPODE_ENOMEM);
    size_t live0 = g_count.live, blocks0 = g_count.blocks;
    double cpu0 = cpu_now();
    long started = 0;
    /* The sessions whose login is not over (the server's last word not
     * yet written, or READY not yet seen): at most `window` at once. */
    long *pend = malloc((size_t)n * sizeof *pend);
    if (!pend)
        die("malloc", EPODE_ENOMEM);
    long npend = 0;
    while ((started < n || npend > 0) && !g_ended) {
        while (started < n && npend < window) {
            start(ctx, &ss[started], started);
            pend[npend++] = started++;
        }
        for (int pass = 0; pass < 2; pass++) {
            for (long k = 0; k < npend; k++) {
                long i = pend[k];
                if (serve(&ss[i], i))
                    epode__conn_poke(ss[i].conn);
            }
            while ((rc = epode_ctx_run_once(ctx, 0)) > 0)
                ;
            if (rc < 0)
                die("run_once", rc);
        }
        for (long k = 0; k < npend;) {
            session *s = &ss[pend[k]];
            if (s->stage == S_DONE && s->ready)
                pend[k] = pend[--npend];
            else
                k++;
        }
    }
    free(pend);
    double login_cpu = cpu_now() - cpu0;
    /* idle: what is due right after login (the parser's context given
     * back) happens now; nothing else is waiting for time */
    for (int i = 0; i < 4; i++) {
        for (long j = 0; j < n; j++)
            if (serve(&ss[j], j)) /* <enabled/> comes after READY */
                epode__conn_poke(ss[j].conn);
        while (epode_ctx_run_once(ctx, 0) > 0)
            ;
    }
    size_t live = g_count.live - live0, blocks = g_count.blocks - blocks0;
    double per = (double)live / (double)n;

    epode__footprint f = {0};
    for (long i = 0; i < n; i++)
        epode__conn_footprint(ss[i].conn, &f);
    size_t parts = f.conn + f.engine + f.buffers + f.sm + f.features + f.dispatch + f.notes +
                   parser_bytes * (size_t)n;
    size_t other = live > parts ? live - parts : 0;

    printf("RESULT footprint sessions=%ld sm=%d ok=%d bytes_per_session=%.0f "
           "blocks_per_session=%.1f login_cpu_s=%.3f us_per_login=%.1f "
           "peak_bytes_per_session=%.0f\n",
           n, g_sm, g_ready == n, per, (double)blocks / (double)n, login_cpu,
           login_cpu * 1e6 / (double)n, (double)(g_count.peak - live0) / (double)n);
    printf("breakdown (bytes per idle session, asked of the allocator):\n");
    struct { const char *name; double v; } rows[] = {
        {"connection object (options, 9 timers inline)", (double)f.conn / n},
        {"stream engine (+ login strings, bound JID)", (double)f.engine / n},
        {"parser (state, saved stream header)", (double)parser_bytes},
        {"buffers (unwritten output, spare room)", (double)f.buffers / n},
        {"stream management (queue, session id, JID)", (double)f.sm / n},
        {"stream features kept", (double)f.features / n},
        {"handler tables", (double)f.dispatch / n},
        {"notes (security line...)", (double)f.notes / n},
        {"loop timer slots and other", (double)other / n},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        printf("  %-48s %7.0f\n", rows[i].name, rows[i].v);
    printf("  %-48s %7.0f\n", "total", per);

    int over = max_bytes && per > (double)max_bytes;
    if (over)
        printf("footprint: %.0f bytes a session is over the ceiling of %zu\n", per, max_bytes);
    for (long i = 0; i < n; i++) {
        epode_conn_free(ss[i].conn);
        epode__transport_free(ss[i].server);
    }
    epode_ctx_free(ctx);
    free(ss);
    if (g_count.live != 0) {
        printf("footprint: %zu bytes still allocated after everything was freed\n", g_count.live);
        return 1;
    }
    return g_ready == n && !over ? 0 : 1;
}
