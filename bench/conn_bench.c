/* bench/conn_bench.c — epode's side of the connection benchmarks, over
 * loopback against bench/fake_server (SASL ANONYMOUS; no TLS, or STARTTLS
 * with the server's throw-away CA), and a
 * login-time figure against a real server. bench/strophe_bench.c does
 * the same with libstrophe; bench/run.sh runs both, alternating, and
 * prints the table. Each run prints one "RESULT" line:
 *
 *   conn_bench recv  PORT N    the server pushes N chat messages; stanzas/s
 *                              dispatched to a "message" handler
 *   conn_bench send  PORT N    N messages built (epode_stanza_new_message) and
 *                              sent (epode_conn_send) until the server
 *                              has counted them all (a stats IQ answers)
 *   conn_bench idle  PORT K    K sessions logged in and idle in one
 *                              process: RSS delta / K
 *   conn_bench idle-tls PORT K CA_FILE
 *                              the same over STARTTLS (required, TLS 1.3
 *                              when the server offers it), the server's
 *                              certificate verified against CA_FILE for
 *                              montague.example (fake_server --ca-out)
 *                              idle and idle-tls, environment:
 *                              CONN_BENCH_PUSH=N sends each session N
 *                              messages before the idle period (idle
 *                              after traffic, not just after the login);
 *                              CONN_BENCH_HOLD=S idles S s instead of 2
 *                              (time for a heap profiler's snapshot)
 *   conn_bench login HOST PORT DOMAIN CA_FILE JID PASSWORD COUNT
 *                              STARTTLS + SCRAM logins one after the other:
 *                              median and best time to READY
 */
#include <epode.h>

#include <stdint.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define TO_JID "juliet@capulet.example/balcony"
#define BATCH 100                 /* messages sent between two loop turns */
#define HIGH_WATER (256u * 1024u) /* pending output that makes us wait */
#define INFLIGHT 200              /* logins in progress at once (idle) */

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_now(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static long rss_kb(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long size = 0, res = 0;
    if (f) {
        if (fscanf(f, "%ld %ld", &size, &res) != 2)
            res = 0;
        fclose(f);
    }
    return res * (sysconf(_SC_PAGESIZE) / 1024);
}

static void die(const char *what, int rc)
{
    fprintf(stderr, "conn_bench: %s: %s\n", what, rc ? epode_strerror(rc) : "failed");
    exit(1);
}

/* ---- one connection to the fake server ------------------------------------- */

typedef struct sess {
    int ready, ended;
} sess;

static void on_event(epode_conn_t *conn, epode_conn_event_t ev, void *user)
{
    sess *s = user;
    if (ev == EPODE_CONN_READY)
        s->ready = 1;
    else if (ev == EPODE_CONN_DISCONNECTED) {
        s->ended = 1;
        if (!s->ready || epode_conn_reason(conn) != EPODE_REASON_CLOSED)
            fprintf(stderr, "conn_bench: disconnected: %s\n", epode_conn_error_text(conn));
    }
}

static epode_conn_t *fake_conn(epode_ctx_t *ctx, unsigned port, sess *s)
{
    epode_conn_t *c;
    int rc;
    if ((rc = epode_conn_new(ctx, &c)) < 0)
        die("conn_new", rc);
    if ((rc = epode_conn_set_jid(c, "montague.example")) < 0 ||
        (rc = epode_conn_set_server(c, "127.0.0.1", port)) < 0 ||
        (rc = epode_conn_set_tls(c, EPODE_TLS_DISABLED)) < 0 ||
        (rc = epode_conn_set_mechanisms(c, "ANONYMOUS")) < 0 ||
        (rc = epode_conn_add_event_cb(c, on_event, s, NULL)) < 0 ||
        (rc = epode_conn_connect(c)) < 0)
        die("connection set-up", rc);
    return c;
}

static void run_until(epode_ctx_t *ctx, const int *flag, const sess *s, double limit_s,
                      const char *what)
{
    double t0 = now();
    while (!*flag) {
        int rc = epode_ctx_run_once(ctx, 100);
        if (rc < 0)
            die("run_once", rc);
        if (s && s->ended) {
            fprintf(stderr, "conn_bench: connection ended while waiting for %s\n", what);
            exit(1);
        }
        if (now() - t0 > limit_s) {
            fprintf(stderr, "conn_bench: timed out waiting for %s\n", what);
            exit(1);
        }
    }
}

typedef struct iq_wait {
    int done;
    unsigned long long stanzas, bytes, cpu_us;
    double at;
} iq_wait;

static void on_iq(epode_conn_t *conn, epode_stanza_t *result, int status, void *user)
{
    (void)conn;
    iq_wait *w = user;
    w->at = now();
    w->done = 1;
    if (status < 0 || !result) {
        fprintf(stderr, "conn_bench: IQ failed: %s\n", epode_strerror(status));
        exit(1);
    }
    epode_stanza_t *st = epode_stanza_find_child(result, "stats", "urn:epode:bench");
    if (st) {
        const char *v;
        if ((v = epode_stanza_get_attr(st, "stanzas")))
            w->stanzas = strtoull(v, NULL, 10);
        if ((v = epode_stanza_get_attr(st, "bytes")))
            w->bytes = strtoull(v, NULL, 10);
        if ((v = epode_stanza_get_attr(st, "cpu_us")))
            w->cpu_us = strtoull(v, NULL, 10);
    }
}

/* Sends an IQ get with this id and waits for its answer. */
static void iq_roundtrip(epode_ctx_t *ctx, epode_conn_t *c, const sess *s, const char *id,
                         iq_wait *w)
{
    epode_stanza_t *iq;
    int rc;
    memset(w, 0, sizeof *w);
    if ((rc = epode_stanza_new_iq(NULL, "get", id, &iq)) < 0)
        die("iq_new", rc);
    epode_stanza_t *child;
    if ((rc = epode_stanza_add_child_new(iq, "query", "urn:epode:bench", &child)) < 0)
        die("add_child_new", rc);
    if ((rc = epode_conn_send_iq(c, iq, 120000, on_iq, w, NULL)) < 0)
        die("send_iq", rc);
    epode_stanza_unref(iq);
    run_until(ctx, &w->done, s, 150, id);
}

/* An allocator that counts the bytes epode holds (malloc's usable size,
 * so no header changes what RSS sees). libxml2, gnutls and c-ares
 * allocate on their own: mallinfo2() below sees those. */
static size_t g_epode_bytes;

static void *count_malloc(size_t n, void *user)
{
    (void)user;
    void *p = malloc(n);
    if (p)
        g_epode_bytes += malloc_usable_size(p);
    return p;
}

static void *count_realloc(void *p, size_t n, void *user)
{
    (void)user;
    size_t old = p ? malloc_usable_size(p) : 0;
    void *q = realloc(p, n);
    if (q)
        g_epode_bytes = g_epode_bytes - old + malloc_usable_size(q);
    return q;
}

static void count_free(void *p, void *user)
{
    (void)user;
    if (p)
        g_epode_bytes -= malloc_usable_size(p);
    free(p);
}

static const epode_mem_t counting_mem = {count_malloc, count_realloc, count_free, NULL};

/* Bytes malloc has handed out (the heap and its mmapped blocks). */
static size_t heap_in_use(void)
{
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}

static epode_ctx_t *new_ctx_with(const epode_mem_t *mem)
{
    int rc;
    epode_ctx_t *ctx;
    if ((rc = epode_global_init()) < 0)
        die("global_init", rc);
    if ((rc = epode_ctx_new(mem, &ctx)) < 0)
        die("ctx_new", rc);
    return ctx;
}

static epode_ctx_t *new_ctx(void) { return new_ctx_with(NULL); }

/* ---- receive --------------------------------------------------------------- */

typedef struct recv_state {
    long count, target;
    size_t body_bytes;
    int done;
    double at;
} recv_state;

static int on_message(epode_conn_t *conn, epode_stanza_t *st, void *user)
{
    (void)conn;
    recv_state *r = user;
    const char *body = epode_stanza_child_text(st, "body", NULL);
    const char *from = epode_stanza_get_from(st);
    if (body && from)
        r->body_bytes += strlen(body);
    if (++r->count == r->target) {
        r->at = now();
        r->done = 1;
    }
    return EPODE_HANDLED;
}

/* The measured part (callgrind: --toggle-collect=recv_loop). */
static __attribute__((noinline)) void recv_loop(epode_ctx_t *ctx, recv_state *r, const sess *s)
{
    run_until(ctx, &r->done, s, 300, "the pushed messages");
}

static int bench_recv(unsigned port, long n)
{
    epode_ctx_t *ctx = new_ctx();
    sess s = {0};
    epode_conn_t *c = fake_conn(ctx, port, &s);
    run_until(ctx, &s.ready, &s, 30, "login");
    recv_state r = {.target = n};
    int rc = epode_conn_add_handler(c, "message", NULL, NULL, on_message, &r, NULL);
    if (rc < 0)
        die("handler_add", rc);

    char id[64];
    snprintf(id, sizeof id, "bench-push-%ld", n);
    epode_stanza_t *iq;
    if ((rc = epode_stanza_new_iq(NULL, "get", id, &iq)) < 0)
        die("iq_new", rc);
    double c0 = cpu_now(), t0 = now();
    if ((rc = epode_conn_send(c, iq)) < 0)
        die("send", rc);
    epode_stanza_unref(iq);
    recv_loop(ctx, &r, &s);
    double secs = r.at - t0, cpu = cpu_now() - c0;

    iq_wait w;
    iq_roundtrip(ctx, c, &s, "bench-stats-recv", &w);
    printf("RESULT recv epode n=%ld secs=%.6f rate=%.0f client_cpu=%.3f server_cpu=%.3f\n", n,
           secs, n / secs, cpu / secs, w.cpu_us / 1e6 / secs);
    epode_conn_free(c);
    epode_ctx_free(ctx);
    return 0;
}

/* ---- send ------------------------------------------------------------------ */

/* The messages' ids and bodies, made cheaply so that the loop measures
 * the library, not printf: ids "msg-%08ld-5f2c9a1", 1000 distinct bodies
 * (the same text the fake server pushes). */
#define BODIES 1000
static char bodies[BODIES][160];

static void make_bodies(void)
{
    for (int i = 0; i < BODIES; i++)
        snprintf(bodies[i], sizeof bodies[i],
                 "Wherefore art thou, Romeo? Deny thy father & refuse thy name "
                 "\xe2\x80\x94 caf\xc3\xa9 \xe2\x98\x95 \xc3\xa9t\xc3\xa9 no. %03d of the night, "
                 "my sweet Juliet", i);
}

static void make_id(char *id, long i)
{
    memcpy(id, "msg-00000000-5f2c9a1", 21);
    for (int d = 11; d >= 4 && i > 0; d--, i /= 10)
        id[d] = (char)('0' + i % 10);
}


/* The measured part (callgrind: --toggle-collect=send_loop). */
static __attribute__((noinline)) void send_loop(epode_ctx_t *ctx, epode_conn_t *c, const sess *s,
                                                long n)
{
    char id[32];
    int rc;
    for (long i = 0; i < n; i++) {
        epode_stanza_t *m, *cs;
        make_id(id, i);
        const char *body = bodies[i % BODIES];
        if ((rc = epode_stanza_new_message(NULL, "chat", TO_JID, body, &m)) < 0 ||
            (rc = epode_stanza_set_id(m, id)) < 0 ||
            (rc = epode_stanza_add_child_new(m, "active", "http://jabber.org/protocol/chatstates",
                                             &cs)) < 0)
            die("building a message", rc);
        if ((rc = epode_conn_send(c, m)) < 0)
            die("send", rc);
        epode_stanza_unref(m);
        if ((i + 1) % BATCH == 0) {
            if ((rc = epode_ctx_run_once(ctx, 0)) < 0)
                die("run_once", rc);
            while (epode_conn_pending_bytes(c) > HIGH_WATER && !s->ended)
                if ((rc = epode_ctx_run_once(ctx, 100)) < 0)
                    die("run_once", rc);
        }
    }
}

static int bench_send(unsigned port, long n)
{
    epode_ctx_t *ctx = new_ctx();
    sess s = {0};
    epode_conn_t *c = fake_conn(ctx, port, &s);
    run_until(ctx, &s.ready, &s, 30, "login");
    iq_wait w;
    iq_roundtrip(ctx, c, &s, "bench-reset-send", &w);

    make_bodies();
    double c0 = cpu_now(), t0 = now();
    send_loop(ctx, c, &s, n);
    iq_roundtrip(ctx, c, &s, "bench-stats-send", &w);
    double secs = w.at - t0, cpu = cpu_now() - c0;
    if ((long)w.stanzas != n) {
        fprintf(stderr, "conn_bench: the server counted %llu messages, expected %ld\n", w.stanzas,
                n);
        return 1;
    }
    printf("RESULT send epode n=%ld secs=%.6f rate=%.0f bytes=%llu client_cpu=%.3f "
           "server_cpu=%.3f\n",
           n, secs, n / secs, w.bytes, cpu / secs, w.cpu_us / 1e6 / secs);
    epode_conn_free(c);
    epode_ctx_free(ctx);
    return 0;
}

/* ---- idle sessions --------------------------------------------------------- */

static void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

typedef struct idle_state {
    long ready, ended;
    int closing; /* the measurement is over: DISCONNECTED is expected */
    long received; /* messages pushed to all sessions (CONN_BENCH_PUSH) */
} idle_state;

typedef struct idle_sess {
    idle_state *all;
    int ready;
} idle_sess;

static void on_idle_event(epode_conn_t *conn, epode_conn_event_t ev, void *user)
{
    idle_sess *s = user;
    if (ev == EPODE_CONN_READY) {
        s->ready = 1;
        s->all->ready++;
    } else if (ev == EPODE_CONN_DISCONNECTED) {
        s->all->ended++;
        if (s->ready)
            s->all->ready--;
        if (s->all->ended <= 3 && !s->all->closing)
            fprintf(stderr, "conn_bench: session ended: %s\n", epode_conn_error_text(conn));
    }
}

/* ca_file NULL: no TLS; else STARTTLS required, verified against it. */
static int on_idle_message(epode_conn_t *conn, epode_stanza_t *st, void *user)
{
    (void)conn, (void)st;
    ((idle_state *)user)->received++;
    return EPODE_HANDLED;
}

static int bench_idle(unsigned port, long k, const char *ca_file)
{
    const char *test = ca_file ? "idle-tls" : "idle";
    char security[160] = "";
    raise_nofile();
    epode_ctx_t *ctx = new_ctx_with(&counting_mem);
    epode_conn_t **conns = calloc((size_t)k, sizeof *conns);
    idle_sess *ss = calloc((size_t)k, sizeof *ss);
    if (!conns || !ss)
        die("calloc", EPODE_ENOMEM);
    idle_state all = {0};
    malloc_trim(0);
    long rss0 = rss_kb();
    size_t heap0 = heap_in_use(), own0 = g_epode_bytes;
    double t0 = now();
    long started = 0;
    int rc;
    while (all.ready + all.ended < k) {
        while (started < k && started - all.ready - all.ended < INFLIGHT) {
            epode_conn_t *c;
            ss[started].all = &all;
            if ((rc = epode_conn_new(ctx, &c)) < 0)
                die("conn_new", rc);
            if ((rc = epode_conn_set_jid(c, "montague.example")) < 0 ||
                (rc = epode_conn_set_server(c, "127.0.0.1", port)) < 0 ||
                (rc = epode_conn_set_tls(c, ca_file ? EPODE_TLS_REQUIRED
                                                    : EPODE_TLS_DISABLED)) < 0 ||
                (ca_file && (rc = epode_conn_set_ca_file(c, ca_file)) < 0) ||
                (rc = epode_conn_set_mechanisms(c, "ANONYMOUS")) < 0 ||
                (rc = epode_conn_add_event_cb(c, on_idle_event, &ss[started], NULL)) < 0 ||
                (rc = epode_conn_connect(c)) < 0)
                die("connection set-up", rc);
            conns[started++] = c;
        }
        if ((rc = epode_ctx_run_once(ctx, 100)) < 0)
            die("run_once", rc);
        if (now() - t0 > (ca_file ? 600 : 120)) {
            fprintf(stderr, "conn_bench: idle: timed out with %ld of %ld ready\n", all.ready, k);
            break;
        }
    }
    double login_secs = now() - t0;
    /* CONN_BENCH_PUSH=N: each session is sent N chat messages first, so
     * what is measured is idle after traffic, not just after the login. */
    const char *push_env = getenv("CONN_BENCH_PUSH");
    long push = push_env ? atol(push_env) : 0;
    if (push > 0 && all.ready == k) {
        char id[64];
        snprintf(id, sizeof id, "bench-push-%ld", push);
        for (long i = 0; i < k; i++) {
            epode_stanza_t *iq = NULL;
            if ((rc = epode_conn_add_handler(conns[i], "message", NULL, NULL, on_idle_message, &all,
                                        NULL)) < 0 ||
                (rc = epode_stanza_new_iq(NULL, "get", id, &iq)) < 0 ||
                (rc = epode_conn_send(conns[i], iq)) < 0)
                die("push", rc);
            epode_stanza_unref(iq);
        }
        double tp = now();
        while (all.received < push * k && now() - tp < 120)
            if ((rc = epode_ctx_run_once(ctx, 100)) < 0)
                die("run_once", rc);
        fprintf(stderr, "conn_bench: %ld messages pushed to %ld sessions\n", all.received, k);
    }
    if (started > 0 && epode_conn_security(conns[0]))
        snprintf(security, sizeof security, "%s", epode_conn_security(conns[0]));
    for (char *p = security; *p; p++)
        if (*p == ' ')
            *p = '_';
    /* Idle for a moment: whatever epode does with idle links happens now. */
    double t1 = now();
    /* Idle means idle: 2 s of silence (epode gives back its parser memory
     * after 1 s), then glibc returns freed pages before RSS is read —
     * the same for both libraries. */
    /* CONN_BENCH_HOLD=S holds the sessions idle S seconds instead (for a
     * heap profiler's snapshot: valgrind's vgdb, massif). */
    const char *hold_env = getenv("CONN_BENCH_HOLD");
    double hold = hold_env ? atof(hold_env) : 2.0;
    if (hold_env)
        fprintf(stderr, "conn_bench: %ld sessions idle for %.0f s\n", all.ready, hold);
    while (now() - t1 < hold)
        epode_ctx_run_once(ctx, 100);
    malloc_trim(0);
    long rss1 = rss_kb();
    size_t heap1 = heap_in_use(), own1 = g_epode_bytes;
    /* epode_bytes: what epode's allocator holds per session; heap_bytes:
     * all of malloc's (libxml2, c-ares... included); RSS also counts
     * what malloc keeps free but cannot give back (fragmentation). */
    if (all.ready == k)
        printf("RESULT %s epode k=%ld ok=1 ready=%ld kb_per_session=%.2f rss_delta_kb=%ld "
               "login_secs=%.3f epode_bytes=%.0f heap_bytes=%.0f security=%s\n",
               test, k, all.ready, (double)(rss1 - rss0) / (double)k, rss1 - rss0, login_secs,
               ((double)own1 - (double)own0) / (double)k,
               ((double)heap1 - (double)heap0) / (double)k, security[0] ? security : "none");
    else
        printf("RESULT %s epode k=%ld ok=0 ready=%ld failed=%ld\n", test, k, all.ready,
               all.ended);
    fflush(stdout);
    /* Close as a client should: the server answers and closes first, so
     * each link's TIME_WAIT is the server's and this side's ephemeral
     * ports are free for the next run at once (19,000 sessions take two
     * thirds of them; freeing the connections outright left them all in
     * TIME_WAIT, and the next large run crawled through connect()). */
    all.closing = 1;
    for (long i = 0; i < started; i++)
        epode_conn_close(conns[i]);
    double t2 = now();
    while (all.ready > 0 && now() - t2 < 20)
        epode_ctx_run_once(ctx, 100);
    for (long i = 0; i < started; i++)
        epode_conn_free(conns[i]);
    epode_ctx_free(ctx);
    free(conns);
    free(ss);
    return all.ready == k ? 0 : 1;
}

/* ---- login against a real server ------------------------------------------- */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int bench_login(const char *host, unsigned port, const char *domain, const char *ca,
                       const char *jid, const char *password, int count)
{
    (void)domain;
    epode_ctx_t *ctx = new_ctx();
    double *t = calloc((size_t)count, sizeof *t);
    char security[160] = "";
    int rc;
    for (int i = 0; i < count; i++) {
        sess s = {0};
        epode_conn_t *c;
        if ((rc = epode_conn_new(ctx, &c)) < 0)
            die("conn_new", rc);
        if ((rc = epode_conn_set_jid(c, jid)) < 0 ||
            (rc = epode_conn_set_password(c, password)) < 0 ||
            (rc = epode_conn_set_server(c, host, port)) < 0 ||
            (rc = epode_conn_set_ca_file(c, ca)) < 0 ||
            (rc = epode_conn_add_event_cb(c, on_event, &s, NULL)) < 0)
            die("connection set-up", rc);
        double t0 = now();
        if ((rc = epode_conn_connect(c)) < 0)
            die("connect", rc);
        run_until(ctx, &s.ready, &s, 30, "login");
        t[i] = now() - t0;
        if (epode_conn_security(c))
            snprintf(security, sizeof security, "%s", epode_conn_security(c));
        epode_conn_close(c);
        double t1 = now();
        while (!s.ended && now() - t1 < 5)
            epode_ctx_run_once(ctx, 100);
        epode_conn_free(c);
    }
    qsort(t, (size_t)count, sizeof *t, cmp_double);
    for (char *p = security; *p; p++)
        if (*p == ' ')
            *p = '_';
    printf("RESULT login epode n=%d median_ms=%.2f best_ms=%.2f security=%s\n", count,
           t[count / 2] * 1e3, t[0] * 1e3, security[0] ? security : "?");
    free(t);
    epode_ctx_free(ctx);
    return 0;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc == 4 && !strcmp(argv[1], "recv"))
        return bench_recv((unsigned)atoi(argv[2]), atol(argv[3]));
    if (argc == 4 && !strcmp(argv[1], "send"))
        return bench_send((unsigned)atoi(argv[2]), atol(argv[3]));
    if (argc == 4 && !strcmp(argv[1], "idle"))
        return bench_idle((unsigned)atoi(argv[2]), atol(argv[3]), NULL);
    if (argc == 5 && !strcmp(argv[1], "idle-tls"))
        return bench_idle((unsigned)atoi(argv[2]), atol(argv[3]), argv[4]);
    if (argc == 9 && !strcmp(argv[1], "login"))
        return bench_login(argv[2], (unsigned)atoi(argv[3]), argv[4], argv[5], argv[6], argv[7],
                           atoi(argv[8]));
    fprintf(stderr,
            "usage: %s recv PORT N | send PORT N | idle PORT K | idle-tls PORT K CA_FILE |\n"
            "       %s login HOST PORT DOMAIN CA_FILE JID PASSWORD COUNT\n",
            argv[0], argv[0]);
    return 64;
}
