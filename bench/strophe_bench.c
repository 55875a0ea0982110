/* bench/strophe_bench.c — libstrophe's side of the connection benchmarks,
 * the same measurements as bench/conn_bench.c (see there) made the way a
 * libstrophe application makes them: xmpp_handler_add for messages,
 * xmpp_message_new + xmpp_message_set_body + xmpp_send, xmpp_run_once.
 * Each run prints one "RESULT" line for bench/run.sh.
 *
 *   strophe_bench recv  PORT N
 *   strophe_bench send  PORT N
 *   strophe_bench idle  PORT K     (in a child process: libstrophe's
 *                                   select() loop aborts past ~1,020 fds;
 *                                   the parent reports where it died)
 *   strophe_bench idle-tls PORT K CA_FILE
 *                                  the same over STARTTLS (mandatory; its
 *                                  OpenSSL verifies the server against
 *                                  CA_FILE for montague.example)
 *   strophe_bench login HOST PORT DOMAIN CA_FILE JID PASSWORD COUNT
 */
#include <strophe.h>

#include <signal.h>
#include <stdint.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define TO_JID "juliet@capulet.example/balcony"
#define BATCH 100         /* messages sent between two loop turns */
#define HIGH_WATER 1000   /* queued stanzas (~280 KB) that make us wait */
#define INFLIGHT 200      /* logins in progress at once (idle) */

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

static void die(const char *what)
{
    fprintf(stderr, "strophe_bench: %s failed\n", what);
    exit(1);
}

/* ---- one connection to the fake server ------------------------------------- */

typedef struct sess {
    int ready, ended;
} sess;

static void on_conn(xmpp_conn_t *conn, xmpp_conn_event_t status, int error,
                    xmpp_stream_error_t *stream_error, void *user)
{
    (void)conn, (void)stream_error;
    sess *s = user;
    if (status == XMPP_CONN_CONNECT) {
        s->ready = 1;
    } else if (status == XMPP_CONN_DISCONNECT || status == XMPP_CONN_FAIL) {
        if (!s->ended && !s->ready)
            fprintf(stderr, "strophe_bench: connection failed (error %d)\n", error);
        s->ended = 1;
    }
}

static xmpp_conn_t *fake_conn(xmpp_ctx_t *ctx, unsigned port, sess *s)
{
    xmpp_conn_t *c = xmpp_conn_new(ctx);
    if (!c)
        die("xmpp_conn_new");
    xmpp_conn_set_flags(c, XMPP_CONN_FLAG_DISABLE_TLS);
    xmpp_conn_set_jid(c, "montague.example"); /* no node: SASL ANONYMOUS */
    if (xmpp_connect_client(c, "127.0.0.1", (unsigned short)port, on_conn, s) != XMPP_EOK)
        die("xmpp_connect_client");
    return c;
}

static void run_until(xmpp_ctx_t *ctx, const int *flag, const sess *s, double limit_s,
                      const char *what)
{
    double t0 = now();
    while (!*flag) {
        xmpp_run_once(ctx, 100);
        if (s && s->ended) {
            fprintf(stderr, "strophe_bench: connection ended while waiting for %s\n", what);
            exit(1);
        }
        if (now() - t0 > limit_s) {
            fprintf(stderr, "strophe_bench: timed out waiting for %s\n", what);
            exit(1);
        }
    }
}

typedef struct iq_wait {
    int done;
    unsigned long long stanzas, bytes, cpu_us;
    double at;
} iq_wait;

static int on_iq(xmpp_conn_t *conn, xmpp_stanza_t *result, void *user)
{
    (void)conn;
    iq_wait *w = user;
    w->at = now();
    w->done = 1;
    xmpp_stanza_t *st = xmpp_stanza_get_child_by_name_and_ns(result, "stats", "urn:epode:bench");
    if (st) {
        const char *v;
        if ((v = xmpp_stanza_get_attribute(st, "stanzas")))
            w->stanzas = strtoull(v, NULL, 10);
        if ((v = xmpp_stanza_get_attribute(st, "bytes")))
            w->bytes = strtoull(v, NULL, 10);
        if ((v = xmpp_stanza_get_attribute(st, "cpu_us")))
            w->cpu_us = strtoull(v, NULL, 10);
    }
    return 0; /* once */
}

static void iq_roundtrip(xmpp_ctx_t *ctx, xmpp_conn_t *c, const sess *s, const char *id,
                         iq_wait *w)
{
    memset(w, 0, sizeof *w);
    xmpp_stanza_t *iq = xmpp_iq_new(ctx, "get", id);
    xmpp_stanza_t *q = xmpp_stanza_new(ctx);
    if (!iq || !q)
        die("xmpp_iq_new");
    xmpp_stanza_set_name(q, "query");
    xmpp_stanza_set_ns(q, "urn:epode:bench");
    xmpp_stanza_add_child(iq, q);
    xmpp_stanza_release(q);
    xmpp_id_handler_add(c, on_iq, id, w);
    xmpp_send(c, iq);
    xmpp_stanza_release(iq);
    run_until(ctx, &w->done, s, 150, id);
}

static xmpp_ctx_t *new_ctx(void)
{
    xmpp_initialize();
    xmpp_ctx_t *ctx = xmpp_ctx_new(NULL, NULL); /* no logger: silent */
    if (!ctx)
        die("xmpp_ctx_new");
    return ctx;
}

static void finish(xmpp_ctx_t *ctx, xmpp_conn_t *c)
{
    xmpp_conn_release(c);
    xmpp_ctx_free(ctx);
    xmpp_shutdown();
}

/* ---- receive --------------------------------------------------------------- */

typedef struct recv_state {
    long count, target;
    size_t body_bytes;
    int done;
    double at;
} recv_state;

static int on_message(xmpp_conn_t *conn, xmpp_stanza_t *st, void *user)
{
    (void)conn;
    recv_state *r = user;
    /* the body's text, borrowed (xmpp_message_get_body would copy it) */
    xmpp_stanza_t *b = xmpp_stanza_get_child_by_name(st, "body");
    const char *from = xmpp_stanza_get_from(st);
    if (b && from) {
        xmpp_stanza_t *t = xmpp_stanza_get_children(b);
        const char *body = t ? xmpp_stanza_get_text_ptr(t) : NULL;
        if (body)
            r->body_bytes += strlen(body);
    }
    if (++r->count == r->target) {
        r->at = now();
        r->done = 1;
    }
    return 1; /* keep the handler */
}

/* The measured part (callgrind: --toggle-collect=recv_loop). */
static __attribute__((noinline)) void recv_loop(xmpp_ctx_t *ctx, recv_state *r, const sess *s)
{
    run_until(ctx, &r->done, s, 300, "the pushed messages");
}

static int bench_recv(unsigned port, long n)
{
    xmpp_ctx_t *ctx = new_ctx();
    sess s = {0};
    xmpp_conn_t *c = fake_conn(ctx, port, &s);
    run_until(ctx, &s.ready, &s, 30, "login");
    recv_state r = {.target = n};
    xmpp_handler_add(c, on_message, NULL, "message", NULL, &r);

    char id[64];
    snprintf(id, sizeof id, "bench-push-%ld", n);
    xmpp_stanza_t *iq = xmpp_iq_new(ctx, "get", id);
    if (!iq)
        die("xmpp_iq_new");
    double c0 = cpu_now(), t0 = now();
    xmpp_send(c, iq);
    xmpp_stanza_release(iq);
    recv_loop(ctx, &r, &s);
    double secs = r.at - t0, cpu = cpu_now() - c0;

    iq_wait w;
    iq_roundtrip(ctx, c, &s, "bench-stats-recv", &w);
    printf("RESULT recv strophe n=%ld secs=%.6f rate=%.0f client_cpu=%.3f server_cpu=%.3f\n", n,
           secs, n / secs, cpu / secs, w.cpu_us / 1e6 / secs);
    finish(ctx, c);
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
static __attribute__((noinline)) void send_loop(xmpp_ctx_t *ctx, xmpp_conn_t *c, const sess *s,
                                                long n)
{
    char id[32];
    for (long i = 0; i < n; i++) {
        make_id(id, i);
        const char *body = bodies[i % BODIES];
        xmpp_stanza_t *m = xmpp_message_new(ctx, "chat", TO_JID, id);
        xmpp_stanza_t *cs = xmpp_stanza_new(ctx);
        if (!m || !cs || xmpp_message_set_body(m, body) != XMPP_EOK)
            die("building a message");
        xmpp_stanza_set_name(cs, "active");
        xmpp_stanza_set_ns(cs, "http://jabber.org/protocol/chatstates");
        xmpp_stanza_add_child(m, cs);
        xmpp_stanza_release(cs);
        xmpp_send(c, m);
        xmpp_stanza_release(m);
        if ((i + 1) % BATCH == 0) {
            xmpp_run_once(ctx, 0);
            while (xmpp_conn_send_queue_len(c) > HIGH_WATER && !s->ended)
                xmpp_run_once(ctx, 100);
        }
    }
}

static int bench_send(unsigned port, long n)
{
    xmpp_ctx_t *ctx = new_ctx();
    sess s = {0};
    xmpp_conn_t *c = fake_conn(ctx, port, &s);
    run_until(ctx, &s.ready, &s, 30, "login");
    iq_wait w;
    iq_roundtrip(ctx, c, &s, "bench-reset-send", &w);

    make_bodies();
    double c0 = cpu_now(), t0 = now();
    send_loop(ctx, c, &s, n);
    iq_roundtrip(ctx, c, &s, "bench-stats-send", &w);
    double secs = w.at - t0, cpu = cpu_now() - c0;
    if ((long)w.stanzas != n) {
        fprintf(stderr, "strophe_bench: the server counted %llu messages, expected %ld\n",
                w.stanzas, n);
        return 1;
    }
    printf("RESULT send strophe n=%ld secs=%.6f rate=%.0f bytes=%llu client_cpu=%.3f "
           "server_cpu=%.3f\n",
           n, secs, n / secs, w.bytes, cpu / secs, w.cpu_us / 1e6 / secs);
    finish(ctx, c);
    return 0;
}

/* ---- idle sessions --------------------------------------------------------- */

/* Shared with the parent, so it knows how far the child got. */
typedef struct idle_shared {
    volatile long started, ready, ended;
} idle_shared;

typedef struct idle_sess {
    idle_shared *all;
    int ready, ended;
} idle_sess;

static void on_idle_conn(xmpp_conn_t *conn, xmpp_conn_event_t status, int error,
                         xmpp_stream_error_t *stream_error, void *user)
{
    (void)conn, (void)error, (void)stream_error;
    idle_sess *s = user;
    if (status == XMPP_CONN_CONNECT) {
        s->ready = 1;
        s->all->ready++;
    } else if ((status == XMPP_CONN_DISCONNECT || status == XMPP_CONN_FAIL) && !s->ended) {
        s->ended = 1;
        s->all->ended++;
        if (s->ready)
            s->all->ready--;
    }
}

static void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

/* Bytes malloc has handed out (the heap and its mmapped blocks). */
static size_t heap_in_use(void)
{
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}

static int idle_child(unsigned port, long k, const char *ca_file, idle_shared *all, int out_fd)
{
    const char *test = ca_file ? "idle-tls" : "idle";
    xmpp_ctx_t *ctx = new_ctx();
    xmpp_conn_t **conns = calloc((size_t)k, sizeof *conns);
    idle_sess *ss = calloc((size_t)k, sizeof *ss);
    if (!conns || !ss)
        die("calloc");
    malloc_trim(0);
    long rss0 = rss_kb();
    size_t heap0 = heap_in_use();
    double t0 = now();
    long started = 0;
    while (all->ready + all->ended < k) {
        /* Past 1,000 sessions, one login at a time, so the count at which
         * select() gives up is exact rather than off by a batch. */
        while (started < k &&
               started - all->ready - all->ended < (started >= 1000 ? 1 : INFLIGHT)) {
            ss[started].all = all;
            xmpp_conn_t *c = xmpp_conn_new(ctx);
            if (!c)
                die("xmpp_conn_new");
            if (ca_file) {
                xmpp_conn_set_flags(c, XMPP_CONN_FLAG_MANDATORY_TLS);
                xmpp_conn_set_cafile(c, ca_file);
            } else {
                xmpp_conn_set_flags(c, XMPP_CONN_FLAG_DISABLE_TLS);
            }
            xmpp_conn_set_jid(c, "montague.example");
            if (xmpp_connect_client(c, "127.0.0.1", (unsigned short)port, on_idle_conn,
                                    &ss[started]) != XMPP_EOK)
                die("xmpp_connect_client");
            conns[started++] = c;
            all->started = started;
        }
        xmpp_run_once(ctx, 100);
        /* Over TLS each of its connections loads the system trust store
         * into an SSL_CTX of its own (~0.1 s each): 1,000 take minutes. */
        if (now() - t0 > (ca_file ? 900 : 120))
            break;
    }
    double login_secs = now() - t0;
    double t1 = now();
    /* Idle means idle: 2 s of silence (epode gives back its parser memory
     * after 1 s), then glibc returns freed pages before RSS is read —
     * the same for both libraries. */
    while (now() - t1 < 2.0)
        xmpp_run_once(ctx, 100);
    malloc_trim(0);
    long rss1 = rss_kb();
    size_t heap1 = heap_in_use();
    int secured = started > 0 && xmpp_conn_is_secured(conns[0]);
    char line[320];
    int n;
    /* heap_bytes: all of malloc's (libstrophe, expat, OpenSSL). */
    if (all->ready == k)
        n = snprintf(line, sizeof line,
                     "RESULT %s strophe k=%ld ok=1 ready=%ld kb_per_session=%.2f "
                     "rss_delta_kb=%ld login_secs=%.3f heap_bytes=%.0f secured=%d\n",
                     test, k, all->ready, (double)(rss1 - rss0) / (double)k, rss1 - rss0,
                     login_secs, ((double)heap1 - (double)heap0) / (double)k, secured);
    else
        n = snprintf(line, sizeof line, "RESULT %s strophe k=%ld ok=0 ready=%ld failed=%ld\n",
                     test, k, all->ready, all->ended);
    if (write(out_fd, line, (size_t)n) != n)
        return 1;
    for (long i = 0; i < started; i++)
        xmpp_conn_release(conns[i]);
    xmpp_ctx_free(ctx);
    xmpp_shutdown();
    return 0;
}

static int bench_idle(unsigned port, long k, const char *ca_file)
{
    const char *test = ca_file ? "idle-tls" : "idle";
    raise_nofile();
    idle_shared *all = mmap(NULL, sizeof *all, PROT_READ | PROT_WRITE,
                            MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    int p[2];
    if (all == MAP_FAILED || pipe(p) < 0)
        die("mmap/pipe");
    memset((void *)all, 0, sizeof *all);
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0)
        die("fork");
    if (pid == 0) {
        close(p[0]);
        /* the abort message of a fortified FD_SET is not ours to show */
        _exit(idle_child(port, k, ca_file, all, p[1]));
    }
    close(p[1]);
    char buf[512];
    size_t got = 0;
    ssize_t r;
    while (got < sizeof buf - 1 && (r = read(p[0], buf + got, sizeof buf - 1 - got)) > 0)
        got += (size_t)r;
    buf[got] = '\0';
    close(p[0]);
    int status;
    waitpid(pid, &status, 0);
    if (got > 0) {
        fputs(buf, stdout);
        return 0;
    }
    if (WIFSIGNALED(status))
        printf("RESULT %s strophe k=%ld ok=0 crashed=1 signal=%s started=%ld ready=%ld\n", test,
               k, strsignal(WTERMSIG(status)), all->started, all->ready);
    else
        printf("RESULT %s strophe k=%ld ok=0 crashed=1 exit=%d started=%ld ready=%ld\n", test,
               k, WEXITSTATUS(status), all->started, all->ready);
    return 0;
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
    xmpp_ctx_t *ctx = new_ctx();
    double *t = calloc((size_t)count, sizeof *t);
    for (int i = 0; i < count; i++) {
        sess s = {0};
        xmpp_conn_t *c = xmpp_conn_new(ctx);
        if (!c)
            die("xmpp_conn_new");
        xmpp_conn_set_flags(c, XMPP_CONN_FLAG_MANDATORY_TLS);
        xmpp_conn_set_cafile(c, ca);
        xmpp_conn_set_jid(c, jid);
        xmpp_conn_set_pass(c, password);
        double t0 = now();
        if (xmpp_connect_client(c, host, (unsigned short)port, on_conn, &s) != XMPP_EOK)
            die("xmpp_connect_client");
        run_until(ctx, &s.ready, &s, 30, "login");
        t[i] = now() - t0;
        if (!xmpp_conn_is_secured(c)) {
            fprintf(stderr, "strophe_bench: the login was not secured\n");
            return 1;
        }
        xmpp_disconnect(c);
        double t1 = now();
        while (!s.ended && now() - t1 < 5)
            xmpp_run_once(ctx, 100);
        xmpp_conn_release(c);
    }
    qsort(t, (size_t)count, sizeof *t, cmp_double);
    printf("RESULT login strophe n=%d median_ms=%.2f best_ms=%.2f\n", count, t[count / 2] * 1e3,
           t[0] * 1e3);
    free(t);
    xmpp_ctx_free(ctx);
    xmpp_shutdown();
    return 0;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGPIPE, SIG_IGN);
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
