/* tests/sim/sim.c — deterministic simulation of XEP-0198 stream management
 * (issue 11), in the manner of FoundationDB's and TigerBeetle's simulators:
 * one process, no clock, no sockets, every decision drawn from one seeded
 * PRNG, so a failing schedule replays exactly from its seed.
 *
 * THE MODEL
 *   client  the real stream engine (lib/stream/engine.c, sm.c) plus a small
 *           driver playing lib/conn/conn.c's part: it owns the epode__sm
 *           across engines (cfg.sm_state), tears an engine down after it
 *           ended (one best-effort flush of its output, then the link is
 *           shut), reconnects after a cut, a timeout or a system-shutdown
 *           exactly when conn.c's should_reconnect() would (at most five
 *           fruitless sessions in a row), asks for acks when conn.c's ack
 *           timer would, and hands back (sm_result acked 0) what is still
 *           queued when it will not reconnect (conn.c's teardown). The
 *           engine chooses resume vs bind, except that, like conn.c, the
 *           driver gives up a resumable session whose resumed stream died
 *           before the server confirmed any resent stanza.
 *           Half the schedules run with sm_resend, half without. Login is
 *           PLAIN, allowed because the engine is started as if on direct
 *           TLS (tls facts given to epode__engine_start).
 *   app     an unbounded outbox of messages (ids m0, m1, ...; bodies of
 *           random length with characters that need escaping and multi-
 *           byte UTF-8, derived from the seed and the id so both ends can
 *           check them). It hands them to the engine whenever the engine is
 *           ready, in bursts at random times (sometimes hundreds: long
 *           queues), and also from inside the engine's callbacks: the
 *           READY/RESUMED events, received stanzas, and sm_result — that
 *           is, from inside the engine's ack-processing loop. Half of the
 *           messages handed back are sent again, as new messages.
 *   server  a small XMPP server state machine that parses the client's
 *           bytes with epode's own parser (include/epode/parser.h): stream
 *           header, features (PLAIN; after <success/> bind and <sm/>),
 *           bind, <enable/> -> <enabled id resume='true'/> (in some
 *           schedules sometimes not resumable, or <failed/>), <r/> -> <a
 *           h/>, <a h/>, <resume/> -> <resumed h/> followed by its own
 *           unacknowledged stanzas, or <failed [h]/>; clean close. It keeps
 *           sessions (one per bound resource: h, its own counter, its
 *           unacknowledged stanzas to the client), pushes messages of its
 *           own (s0, s1, ...) and <r/>s. A resumption takes the session
 *           over from a connection the server still thinks alive and
 *           closes that one (Prosody's behaviour).
 *   network a link is two byte pipes. Bytes move in chunks of random size
 *           (often one byte), so every element can be split anywhere. When
 *           the client gives a link up (timeout, or after its engine
 *           ended), the server may go on seeing that link for a while — a
 *           "zombie": it still reads what the client wrote and may push to
 *           it — until it sees EOF, times it out, or a resumption takes
 *           its session over; meanwhile the client is already connected
 *           again on a new link.
 *
 * THE FAULT SCHEDULE (chaos phase, then a calm phase, then the end)
 *   Each schedule first draws its own rates, so schedules range from
 *   quiet to hostile. Per step one action is drawn: deliver a chunk in
 *   either direction (or on the zombie link), move engine output to the
 *   wire, an application burst, conn.c's ack timer, a server push or <r/>,
 *   a stall of one direction, a cut (both ends; the client sees EOF or a
 *   reset), a client-side timeout (the server keeps the link as a
 *   zombie), a cut armed to fire at a random byte inside what was just
 *   written (mid-stanza, between a stanza and its <r/>, inside <resume/>,
 *   while <resumed/> or <failed/> is in flight), a server restart (abrupt
 *   or with system-shutdown; keeping its sessions or losing them;
 *   sometimes without offering stream management afterwards), expiry of a
 *   detached session, refusal of the next resumption (<failed/> with or
 *   without h), the server dropping the zombie, and compaction of the idle
 *   engine. A third of the schedules start the counters near 2^32
 *   (epode__engine_sm_set_counters on READY, mirrored by the server).
 *   Then the calm phase delivers everything and lets the client
 *   reconnect, send its outbox and get its acks; then the client closes
 *   cleanly (epode__engine_close, sometimes with stanzas unacknowledged)
 *   or gives up (a last cut with no reconnection: conn.c drains).
 *
 * THE INVARIANTS (checked as the schedule runs and at its end)
 *   I1 result exactly once. Every stanza the engine accepted while stream
 *      management counted it (sm_pending grew by one on send) gets exactly
 *      one sm_result: acked 1, or acked 0 (handed back). engine.h and
 *      conn.h promise one or the other: handed back means "the stream
 *      ended first, you may send it again", after which the engine no
 *      longer holds it, so an ack after a hand-back — or any second
 *      result — is a bug. A resend after a refused resume (sm_resend) is
 *      not a hand-back: the stanza stays queued and its one result comes
 *      later. At the end nothing may be left without a result (nothing
 *      lost silently).
 *   I2 acked means handled: an acked stanza was received by the server;
 *      acks come oldest first; the bytes reported are the bytes written,
 *      and stay valid for the whole callback, even if it sends.
 *   I3 at most once at the server, in order. The server never receives an
 *      id twice, except a stanza the engine resent after a refused
 *      resumption whose earlier copy was handled in a session whose final
 *      h the client never learnt (the server restarted without state, the
 *      session expired, or <failed/> carried no h or never arrived).
 *      Within one server session, stanzas arrive in the order sent. The
 *      server never sees a stanza the engine did not accept.
 *   I4 the client never receives a server stanza twice (its h is right)
 *      and receives them in order.
 *   I5 counters agree modulo 2^32 whenever the link is quiet: the
 *      server's h equals the client's out, the client's h equals the
 *      server's out, and out - acked equals the queue length on both
 *      sides. Every h the client sends is within what the server sent.
 *   I6 against this honest server the engine never ends a stream with a
 *      protocol, auth or TLS error, and the client never violates the
 *      protocol (the server checks every element against its state).
 *   I7 every byte the client writes parses as a well-formed stream with
 *      the server's epode parser; every message arrives with the id and
 *      body it was sent with (a resend is never corrupt).
 *   I8 no leaks: every allocation through the engine's allocator is freed
 *      at the end of each schedule (and ASan in the sanitizer build).
 *   I9 liveness: in the calm phase the client gets back to READY, sends
 *      its whole outbox and, when it waits for them, gets every ack.
 *
 * Usage: sim [--schedules N] [--seed S] [--verbose] [--chaos N] [--shrink]
 *            [--failures N] [--oversized 0|1] [--avoid BUG|all]...
 *   Schedule i uses seed S+i (S defaults to 1). Without --schedules the
 *   count is $EPODE_SIM_SCHEDULES, else 100000 (1 with --seed). The
 *   regression schedules (README) run first unless --seed or --chaos is
 *   given. --verbose traces every event of every schedule. --chaos N caps
 *   the chaos phase at N steps; --shrink finds the shortest chaos phase
 *   with which --seed still fails the same way. --failures N prints the
 *   first N failures (20). --avoid steers clear of a bug already found
 *   (names in avoid_names) to look for others. With --oversized 1 (the
 *   default) the server pushes, in a third of the schedules, stanzas over
 *   the client's stanza limit (2048 bytes there): the engine must skip
 *   them and count them as handled (DESIGN, "Bad input and limits"), or
 *   I4, I5 or I6 fail.
 *   Every failure prints its
 *   seed and the command that replays it; replay is exact (no clock, no
 *   addresses, nothing uninitialized decides anything), in any build. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <epode.h>
#include <epode/parser.h>

#include "stream/engine.h"
#include "stream/sm.h"

#define NS_SM "urn:xmpp:sm:3"
#define NS_SASL "urn:ietf:params:xml:ns:xmpp-sasl"
#define NS_BIND "urn:ietf:params:xml:ns:xmpp-bind"
#define DOMAIN "example.com"
#define SRV_HEADER "<?xml version='1.0'?><stream:stream xmlns='jabber:client' " \
                   "xmlns:stream='http://etherx.jabber.org/streams' from='" DOMAIN "' id='st%ld' version='1.0'>"

/* --avoid: stay clear of bugs already found, to look for others. */
enum {
    AVOID_ACKREQ = 1,     /* conn.c's ack timer during a login */
    AVOID_ENABLEFAIL = 2, /* <failed/> answering <enable/> */
    AVOID_NOSM = 4,       /* a server that stops offering SM */
    AVOID_ACKBYTES = 8    /* reading sm_result's bytes after sending */
};
static const char *const avoid_names[] = {"ackreq", "enablefail", "nosm", "ackbytes"};
static unsigned g_avoid;
static int g_oversized; /* --oversized: the server sometimes pushes stanzas over the client's limit */
static char g_avoid_args[200]; /* for the replay lines */

/* Schedules that found bugs (README tells each story), with the shortest
 * chaos phase that still showed it. The CI run runs them first. A seed
 * means this file's version of the world: change the simulator and they
 * may wander off (then look again with --shrink). */
static const struct regression {
    uint64_t seed;
    long chaos;
    int oversized;
    const char *bug;
} regressions[] = {
    {27, 81, 0, "B1: <r/> before <auth/> (the ack timer during a new login)"},
    {150, 75, 0, "B1: <r/> right after <auth/>, where the restarted stream's header belongs"},
    {2, 102, 0, "B1: <r/> on the restarted stream, before <resume/> or bind"},
    {552, 45, 0, "B2: <failed/> answering <enable/>: queue dropped without results"},
    {6441, 84, 0, "B3: a server without SM after one with it: stale session"},
    {49, -1, 0, "B4: sm_result's bytes reallocated under a callback that sends"},
    {20, 132, 1, "B5: a stanza skipped for a local limit is not counted in h"},
    {48, 196, 1, "B5: ... so a resumption delivers stanzas twice"},
};
static const size_t n_regression = sizeof regressions / sizeof *regressions;

/* What the schedules reached, summed over the run (printed at the end):
 * a simulator that never reaches a state tests nothing there. */
static struct coverage {
    long cuts, armed_cuts, timeouts, zombies, takeovers, restarts, restarts_lost, resumed,
        refused_h, refused_no_h, refused_unknown, resent_after_refusal, dup_allowed, acked, back,
        wrapped, long_queue, enable_failed, no_sm_streams, graceful_close, gave_up, unproven,
        oversized;
} g_cov;

/* ---- PRNG (splitmix64): the only source of decisions -------------------- */

typedef struct rng { uint64_t s; } rng;

static uint64_t rnd(rng *r)
{
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
/* 0 .. n-1 (n >= 1) */
static uint32_t below(rng *r, uint32_t n) { return (uint32_t)(((rnd(r) >> 32) * n) >> 32); }
/* true with probability pm/1000 */
static int chance(rng *r, uint32_t pm) { return below(r, 1000) < pm; }

static uint64_t mix(uint64_t a, uint64_t b)
{
    rng r = {a * 0x9E3779B97F4A7C15ull ^ b};
    return rnd(&r);
}

static uint64_t fnv(const char *p, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    while (n--)
        h = (h ^ (unsigned char)*p++) * 1099511628211ull;
    return h;
}

/* ---- counting allocator (I8 without ASan) --------------------------------- */

static long g_live;

static void *c_malloc(size_t n, void *u)
{
    (void)u;
    void *p = malloc(n);
    if (p)
        g_live++;
    return p;
}
static void *c_realloc(void *p, size_t n, void *u)
{
    (void)u;
    void *q = realloc(p, n);
    if (q && !p)
        g_live++;
    return q;
}
static void c_free(void *p, void *u)
{
    (void)u;
    if (p)
        g_live--;
    free(p);
}
static const epode_mem_t g_mem = {c_malloc, c_realloc, c_free, NULL};

/* ---- the simulator's own memory (plain malloc) ----------------------------- */

static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n);
    if (!q) {
        fprintf(stderr, "sim: out of memory\n");
        exit(2);
    }
    return q;
}

typedef struct bytes { char *d; size_t len, cap; } bytes;

static void b_reserve(bytes *b, size_t more)
{
    if (b->cap - b->len >= more + 1)
        return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len < more + 1)
        cap *= 2;
    b->d = xrealloc(b->d, cap);
    b->cap = cap;
}
static void b_add(bytes *b, const char *s, size_t n)
{
    b_reserve(b, n);
    memcpy(b->d + b->len, s, n);
    b->len += n;
    b->d[b->len] = '\0';
}
static void b_printf(bytes *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void b_printf(bytes *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    b_reserve(b, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(b->d + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

#define VEC_PUSH(v, n, cap, x)                                                  \
    do {                                                                        \
        if ((n) == (cap)) {                                                     \
            (cap) = (cap) ? (cap) * 2 : 64;                                     \
            (v) = xrealloc((v), (cap) * sizeof *(v));                           \
        }                                                                       \
        (v)[(n)++] = (x);                                                       \
    } while (0)

/* A FIFO of ints (the outbox, a server session's unacknowledged stanzas). */
typedef struct fifo { int *q; size_t head, len, cap; } fifo;

static void fifo_push(fifo *f, int v)
{
    if (f->len == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 16;
        int *q = xrealloc(NULL, cap * sizeof *q);
        for (size_t i = 0; i < f->len; i++)
            q[i] = f->q[(f->head + i) % f->cap];
        free(f->q);
        f->q = q;
        f->cap = cap;
        f->head = 0;
    }
    f->q[(f->head + f->len) % f->cap] = v;
    f->len++;
}
static int fifo_at(const fifo *f, size_t i) { return f->q[(f->head + i) % f->cap]; }
static void fifo_pop(fifo *f, size_t n)
{
    if (!n)
        return;
    f->head = (f->head + n) % f->cap;
    f->len -= n;
}
static void fifo_free(fifo *f)
{
    free(f->q);
    memset(f, 0, sizeof *f);
}

/* ---- the world ---------------------------------------------------------------- */

enum mstate { M_NEW = 0, M_SENT, M_UNTRACKED, M_ACKED, M_BACK };

typedef struct msg {
    uint32_t units;    /* body length in characters */
    uint32_t len;      /* serialized length, and its hash */
    uint64_t hash;
    int64_t seq;       /* order in which the engine accepted it (-1: not yet) */
    int32_t srv_sess;  /* server session that last received it, or -1 */
    uint16_t srv_recv; /* times the server received it */
    uint8_t state;
    uint8_t may_dup;   /* queued when the engine resent after a refused resume */
} msg;

typedef struct pipe_ {
    bytes b;   /* bytes in flight are b.d[off .. b.len) */
    size_t off;
    uint64_t written, delivered; /* absolute offsets */
    uint64_t cut_at;             /* cut when delivered reaches this (0: none) */
    int fin;                     /* writer closed: EOF once drained */
    int stall;                   /* steps left without delivery */
} pipe_;

typedef struct ssess {
    int live, attached, sm, resumable, enable_refused;
    char id[24];
    char jid[64];
    uint32_t handled, out, acked; /* h of client stanzas, ours sent, client's h */
    fifo q;                        /* our unacknowledged stanzas (s-numbers) */
    int64_t last_seq;              /* in-order check */
    int told_h;                    /* the client processed this session's final h */
    int link;                      /* link id it is attached to */
} ssess;

enum sstage { SS_HDR1 = 0, SS_AUTH, SS_HDR2, SS_PREBIND, SS_BOUND };

struct sim;

/* One connection: the pipes and the server's side of it. */
typedef struct link {
    struct sim *s;
    int up;         /* the server still has this connection */
    int id;
    pipe_ c2s, s2c;
    epode_parser_t *sp;
    int stage, reset;
    int scur;       /* session attached here, or -1 */
    int closing;    /* server wrote </stream:stream> (or gave up): ignores input */
    int told_sess;  /* session whose <failed h/> is in flight, or -1 */
    uint64_t told_mark;
} link;

typedef struct sim {
    rng r;
    uint64_t seed;
    int verbose, calm;
    int failed;
    char why[600];
    long step;
    bytes tmp, body;

    /* schedule parameters */
    int sm_resend;
    unsigned request_every;
    uint32_t p_cut, p_trig, p_timeout, p_restart, p_restart_nostate, p_nosm, p_expire, p_refuse,
        p_refuse_h, p_burst, p_big_burst, p_push, p_srv_r, p_stall, p_onebyte, p_cb_send,
        p_enable_plain, p_enable_fail, p_compact, p_eof, p_zombie, p_zombie_end;
    int wrap;
    uint32_t base_out, base_in;
    long chaos_steps;

    /* application */
    msg *m;
    size_t nm, cm;
    fifo outbox;
    int64_t next_seq, last_acked_seq;
    uint8_t *s_recv; /* client: times each server stanza was received */
    size_t ns_recv, cs_recv;
    long last_s_recv;

    /* client driver (conn.c's part) */
    epode__sm sm;
    epode__engine *e;
    int e_ended; /* the engine called ended; teardown pending */
    int end_err, end_reason;
    char end_cond[64];
    int user_closed; /* final phase: no reconnection */
    int fruitless;       /* conn.c: sessions ended by the server without progress */
    int resume_unproven; /* conn.c: resumed, nothing resent confirmed yet */
    int wait;        /* steps until reconnection; -1: not waiting */
    int gave_up;
    long engines;
    int long_queue_seen, wrap_seen;

    /* network: the client's link and the one the server may still see */
    link links[2];
    link *cl; /* NULL when the client has none */
    link *zl; /* zombie, or NULL */
    int next_link;

    /* server */
    ssess *ss;
    size_t nss, css;
    int sm_offered;
    int refuse_next, refuse_with_h;
    uint32_t next_base_h, next_base_out;
    long streams;
    long s_next; /* next server stanza number */
    uint8_t *s_big; /* which of them are oversized */
    size_t ns_big, cs_big;
    size_t client_limit; /* the client's stanza byte limit (0: default) */
    uint32_t p_big_push;
} sim;

#define trace(s, ...)                                                           \
    do {                                                                        \
        if ((s)->verbose)                                                       \
            trace_((s), __VA_ARGS__);                                           \
    } while (0)
static void trace_(sim *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void trace_(sim *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("[%5ld] ", s->step);
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
}

static void fail(sim *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(sim *s, const char *fmt, ...)
{
    if (s->failed)
        return;
    s->failed = 1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->why, sizeof s->why, fmt, ap);
    va_end(ap);
    if (s->verbose)
        printf("[%5ld] FAILED: %s\n", s->step, s->why);
}

/* A printable excerpt of bytes, for traces. */
static const char *excerpt(sim *s, const char *d, size_t n)
{
    s->tmp.len = 0;
    size_t lim = n > 200 ? 200 : n;
    for (size_t i = 0; i < lim; i++)
        b_add(&s->tmp, d[i] == '\n' ? "~" : d + i, 1);
    if (n > lim)
        b_printf(&s->tmp, "...(+%zu)", n - lim);
    return s->tmp.d ? s->tmp.d : "";
}

/* ---- message bodies: derived from (seed, kind, number), checked at both ends -- */

static const char *const units[] = {"a", "b", "c", "d", "e", "f", "g", "h", "i", " ", "<", ">",
                                    "&", "'", "\"", "\n", "\t", "]]>", "\xc3\xa9",
                                    "\xe2\x82\xac", "\xf0\x9d\x84\x9e", "x", "y", "z"};
#define N_UNITS (sizeof units / sizeof *units)

static const char *body_text(sim *s, char kind, size_t n, uint32_t count)
{
    static size_t ulen[N_UNITS];
    if (!ulen[0])
        for (size_t i = 0; i < N_UNITS; i++)
            ulen[i] = strlen(units[i]);
    bytes *out = &s->body;
    out->len = 0;
    rng r = {mix(s->seed, (uint64_t)n * 2 + (kind == 's'))};
    b_reserve(out, (size_t)count * 4 + 24);
    char num[24];
    size_t k = sizeof num;
    do
        num[--k] = (char)('0' + n % 10);
    while (n /= 10);
    out->d[out->len++] = kind;
    memcpy(out->d + out->len, num + k, sizeof num - k);
    out->len += sizeof num - k;
    out->d[out->len++] = ':';
    for (uint32_t i = 0; i < count; i++) {
        uint32_t u = below(&r, N_UNITS);
        memcpy(out->d + out->len, units[u], ulen[u]);
        out->len += ulen[u];
    }
    out->d[out->len] = '\0';
    return out->d;
}

/* Server stanza n's body length; the oversized ones (--oversized) break
 * the client's stanza limit and must be skipped, and counted, by it. */
static uint32_t s_units(const sim *s, long n)
{
    if ((size_t)n < s->ns_big && s->s_big[n])
        return 1300 + (uint32_t)(n % 300); /* over 2048 bytes serialized */
    return 3 + (uint32_t)(n % 17);
}

/* ---- pipes ------------------------------------------------------------------------ */

static size_t pipe_len(const pipe_ *p) { return p->b.len - p->off; }
static const char *pipe_data(const pipe_ *p) { return p->b.d + p->off; }

static void pipe_take(pipe_ *p, size_t n)
{
    p->off += n;
    p->delivered += n;
    if (p->off == p->b.len) {
        p->off = p->b.len = 0;
    } else if (p->off > 65536 && p->off > p->b.len / 2) {
        memmove(p->b.d, p->b.d + p->off, p->b.len - p->off);
        p->b.len -= p->off;
        p->off = 0;
    }
}

static void pipe_write(pipe_ *p, const char *d, size_t n)
{
    if (p->fin)
        return;
    b_add(&p->b, d, n);
    p->written += n;
}

static void pipe_clear(pipe_ *p)
{
    p->b.len = p->off = 0;
    p->written = p->delivered = 0;
    p->cut_at = 0;
    p->fin = 0;
    p->stall = 0;
}

/* Arms a cut at a random byte inside the n bytes just written: often
 * inside stream-management traffic and stanzas, seldom inside the login
 * (or no session would ever be established to resume). */
static void maybe_arm_cut(sim *s, pipe_ *p, size_t n, const char *what)
{
    if (n == 0 || p->cut_at || !s->p_trig)
        return;
    int sm = what[0] == '<' || strstr(what, "stanza") || strstr(what, "client bytes with");
    if (!chance(&s->r, sm ? s->p_trig : s->p_trig / 8))
        return;
    p->cut_at = p->written - n + below(&s->r, (uint32_t)n) + 1;
    g_cov.armed_cuts++;
    trace(s, "  armed a cut %" PRIu64 " bytes into %s", p->cut_at - (p->written - n), what);
}

/* ---- server -------------------------------------------------------------------------- */

static ssess *cur(link *L) { return L->scur >= 0 ? &L->s->ss[L->scur] : NULL; }

static void srv_write(link *L, const char *d, const char *what)
{
    sim *s = L->s;
    size_t n = strlen(d);
    trace(s, "S%d> %s", L->id, excerpt(s, d, n));
    pipe_write(&L->s2c, d, n);
    if (L == s->cl)
        maybe_arm_cut(s, &L->s2c, n, what);
}

static void sess_destroy(sim *s, int i, const char *why)
{
    ssess *x = &s->ss[i];
    if (!x->live)
        return;
    trace(s, "  server: session %d (%s) destroyed: %s", i, x->id[0] ? x->id : "no sm", why);
    x->live = 0;
    fifo_free(&x->q);
    for (int k = 0; k < 2; k++)
        if (s->links[k].scur == i)
            s->links[k].scur = -1;
    x->attached = 0;
}

static int sess_new(sim *s)
{
    ssess z;
    memset(&z, 0, sizeof z);
    z.live = 1;
    z.last_seq = -1;
    VEC_PUSH(s->ss, s->nss, s->css, z);
    int i = (int)s->nss - 1;
    snprintf(s->ss[i].jid, sizeof s->ss[i].jid, "sim@" DOMAIN "/r%d", i);
    return i;
}

/* The client says it handled h of our stanzas (I5, server side). */
static int srv_take_h(sim *s, ssess *x, uint32_t h, const char *where)
{
    uint32_t newly = h - x->acked;
    if (newly > x->q.len) {
        fail(s, "I5: the client's h=%u in %s acknowledges %u stanzas but the server has only %zu "
                "unacknowledged (server out=%u acked=%u)",
             h, where, newly, x->q.len, x->out, x->acked);
        return -1;
    }
    x->acked = h;
    fifo_pop(&x->q, newly);
    return 0;
}

static void srv_send_msg(link *L, ssess *x, int n, int resend)
{
    sim *s = L->s;
    epode_stanza_t *st = NULL;
    char id[24];
    snprintf(id, sizeof id, "s%d", n);
    if (epode_stanza_new_message(&g_mem, "chat", x->jid, body_text(s, 's', (size_t)n, s_units(s, n)), &st) < 0 ||
        epode_stanza_set_id(st, id) < 0 || epode_stanza_set_from(st, "peer@" DOMAIN "/x") < 0) {
        fail(s, "sim: cannot build a server stanza");
        epode_stanza_unref(st);
        return;
    }
    char *t;
    size_t tl;
    if (epode_stanza_to_text(st, EPODE_TEXT_IN_STREAM, &t, &tl) == 0) {
        trace(s, "S%d> %s%s", L->id, resend ? "(resent) " : "", id);
        pipe_write(&L->s2c, t, tl);
        if (L == s->cl)
            maybe_arm_cut(s, &L->s2c, tl, "a server stanza");
        epode_free(t);
    }
    epode_stanza_unref(st);
}

static void srv_push(link *L)
{
    ssess *x = cur(L);
    if (!x || L->stage != SS_BOUND || L->closing)
        return;
    sim *s = L->s;
    int n = (int)s->s_next++;
    uint8_t big = s->client_limit && chance(&s->r, s->p_big_push);
    VEC_PUSH(s->s_big, s->ns_big, s->cs_big, big);
    g_cov.oversized += big;
    if (x->sm) {
        x->out++;
        fifo_push(&x->q, n);
    }
    srv_send_msg(L, x, n, 0);
}

static void srv_header(link *L)
{
    char h[300];
    snprintf(h, sizeof h, SRV_HEADER, ++L->s->streams);
    srv_write(L, h, "a stream header");
}

static void srv_features(link *L)
{
    srv_header(L);
    if (L->stage == SS_HDR1) {
        srv_write(L, "<stream:features><mechanisms xmlns='" NS_SASL "'><mechanism>PLAIN</mechanism>"
                     "</mechanisms></stream:features>", "features");
        L->stage = SS_AUTH;
    } else {
        srv_write(L, L->s->sm_offered ? "<stream:features><bind xmlns='" NS_BIND "'/><sm xmlns='" NS_SM
                                        "'/></stream:features>"
                                      : "<stream:features><bind xmlns='" NS_BIND "'/></stream:features>",
                  "features");
        L->stage = SS_PREBIND;
    }
}

static int parse_u32(const char *v, uint32_t *out)
{
    if (!v || !*v)
        return -1;
    unsigned long long x = 0;
    for (; *v; v++) {
        if (*v < '0' || *v > '9')
            return -1;
        x = x * 10 + (unsigned)(*v - '0');
        if (x > 0xFFFFFFFFull)
            return -1;
    }
    *out = (uint32_t)x;
    return 0;
}

static void link_server_end(sim *s, link *L, const char *why);

static void srv_resume(link *L, epode_stanza_t *st)
{
    sim *s = L->s;
    const char *previd = epode_stanza_get_attr(st, "previd");
    uint32_t h;
    if (!previd || parse_u32(epode_stanza_get_attr(st, "h"), &h) < 0) {
        fail(s, "I6: malformed <resume/> from the client");
        return;
    }
    int found = -1;
    for (size_t i = 0; i < s->nss; i++)
        if (s->ss[i].live && s->ss[i].resumable && strcmp(s->ss[i].id, previd) == 0)
            found = (int)i;
    if (found < 0 || s->refuse_next) {
        char f[300];
        int with_h = found >= 0 && s->refuse_with_h;
        if (with_h)
            g_cov.refused_h++;
        else if (found >= 0)
            g_cov.refused_no_h++;
        else
            g_cov.refused_unknown++;
        if (with_h)
            snprintf(f, sizeof f, "<failed xmlns='" NS_SM "' h='%u'><item-not-found "
                                  "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></failed>",
                     s->ss[found].handled);
        else
            snprintf(f, sizeof f, "<failed xmlns='" NS_SM "'><item-not-found "
                                  "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></failed>");
        s->refuse_next = 0;
        srv_write(L, f, "<failed/>");
        if (found >= 0) {
            if (with_h) {
                L->told_sess = found;
                L->told_mark = L->s2c.written;
            }
            /* a zombie holding it loses it */
            for (int k = 0; k < 2; k++)
                if (s->links[k].scur == found && &s->links[k] != L)
                    link_server_end(s, &s->links[k], "its session was refused for resumption");
            sess_destroy(s, found, "resumption refused");
        }
        return;
    }
    ssess *x = &s->ss[found];
    if (x->attached) {
        /* the server still thinks the old connection alive: take over */
        link *old = &s->links[x->link];
        trace(s, "  server: session %d taken over from link %d", found, old->id);
        g_cov.takeovers++;
        old->scur = -1; /* so that ending it does not detach the session */
        x->attached = 0;
        link_server_end(s, old, "session taken over by a resumption");
    }
    if ((uint32_t)(x->acked - h) - 1u < 0x7FFFFFFFu) {
        /* behind what we know: a <resume/> that waited on a connection
         * the client had already given up (it resumed elsewhere since) */
        trace(s, "  server: stale h=%u in <resume/> (acked %u)", h, x->acked);
    } else if (srv_take_h(s, x, h, "<resume/>") < 0) {
        return;
    }
    char r[300];
    snprintf(r, sizeof r, "<resumed xmlns='" NS_SM "' h='%u' previd='%s'/>", x->handled, x->id);
    srv_write(L, r, "<resumed/>");
    g_cov.resumed++;
    x->attached = 1;
    x->link = (int)(L - s->links);
    L->scur = found;
    L->stage = SS_BOUND;
    for (size_t i = 0; i < x->q.len; i++)
        srv_send_msg(L, x, fifo_at(&x->q, i), 1);
}

static void srv_client_stanza(link *L, epode_stanza_t *st)
{
    sim *s = L->s;
    const char *name = epode_stanza_get_name(st);
    ssess *x = cur(L);
    if (strcmp(name, "message") != 0 || !x) {
        fail(s, "I6: the client sent <%s/> in jabber:client %s", name,
             x ? "(only messages expected)" : "before binding a resource");
        return;
    }
    const char *id = epode_stanza_get_id(st);
    size_t n;
    char *end;
    if (!id || id[0] != 'm' || (n = strtoul(id + 1, &end, 10), *end) || n >= s->nm) {
        fail(s, "I7: a message with an unknown id '%s'", id ? id : "(none)");
        return;
    }
    msg *m = &s->m[n];
    const char *body = epode_stanza_child_text(st, "body", NULL);
    const char *want = body_text(s, 'm', n, m->units);
    if (!body || strcmp(body, want) != 0) {
        fail(s, "I7: m%zu arrived with a different body (%zu bytes, expected %zu)", n,
             body ? strlen(body) : 0, strlen(want));
        return;
    }
    if (m->state == M_NEW) {
        fail(s, "I3: the server received m%zu, which the engine never accepted", n);
        return;
    }
    if (x->sm)
        x->handled++;
    if (m->srv_recv > 0) {
        int prev = m->srv_sess;
        int ok = m->may_dup && prev != L->scur && !s->ss[prev].told_h;
        trace(s, "  server: m%zu again (earlier in session %d)%s", n, prev,
              ok ? ": allowed, resent after a refused resume" : "");
        g_cov.dup_allowed += ok;
        if (!ok) {
            fail(s, "I3: the server received m%zu twice (first in session %d, now in %d; "
                    "resent after a refused resume: %s; that session's h told: %s)",
                 n, prev, L->scur, m->may_dup ? "yes" : "no", s->ss[prev].told_h ? "yes" : "no");
            return;
        }
    }
    if (m->seq <= x->last_seq) {
        fail(s, "I3: m%zu (send #%" PRId64 ") arrived after send #%" PRId64 " in session %d", n,
             m->seq, x->last_seq, L->scur);
        return;
    }
    x->last_seq = m->seq;
    m->srv_recv++;
    m->srv_sess = L->scur;
}

static void srv_sm_element(link *L, epode_stanza_t *st)
{
    sim *s = L->s;
    const char *name = epode_stanza_get_name(st);
    ssess *x = cur(L);
    if (strcmp(name, "resume") == 0) {
        if (L->stage != SS_PREBIND || !s->sm_offered) {
            fail(s, "I6: <resume/> %s", L->stage != SS_PREBIND ? "at the wrong point of the stream"
                                        : "although this stream did not offer stream management");
            return;
        }
        srv_resume(L, st);
        return;
    }
    if (!x || L->stage != SS_BOUND) {
        fail(s, "I6: <%s xmlns='urn:xmpp:sm:3'/> before binding", name);
        return;
    }
    if (strcmp(name, "enable") == 0) {
        if (!s->sm_offered || x->sm) {
            fail(s, "I6: <enable/> %s", x->sm ? "twice" : "although not offered");
            return;
        }
        if (chance(&s->r, s->p_enable_fail)) {
            x->enable_refused = 1;
            g_cov.enable_failed++;
            srv_write(L, "<failed xmlns='" NS_SM "'><unexpected-request "
                         "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></failed>", "<failed/>");
            return;
        }
        x->sm = 1;
        x->handled = s->next_base_h;
        x->out = x->acked = s->next_base_out;
        char r[200];
        if (chance(&s->r, s->p_enable_plain)) {
            snprintf(r, sizeof r, "<enabled xmlns='" NS_SM "'/>");
        } else {
            x->resumable = 1;
            snprintf(x->id, sizeof x->id, "sm-%d", L->scur);
            snprintf(r, sizeof r, "<enabled xmlns='" NS_SM "' id='%s' resume='true'/>", x->id);
        }
        srv_write(L, r, "<enabled/>");
        return;
    }
    if (!x->sm) {
        /* After a refused <enable/>, a client may already have pipelined
         * <r/> and <a/>: Prosody ignores them, and so do we. */
        if (x->enable_refused && (strcmp(name, "r") == 0 || strcmp(name, "a") == 0))
            return;
        fail(s, "I6: <%s xmlns='urn:xmpp:sm:3'/> although stream management is not enabled", name);
        return;
    }
    if (strcmp(name, "r") == 0) {
        char a[80];
        snprintf(a, sizeof a, "<a xmlns='" NS_SM "' h='%u'/>", x->handled);
        srv_write(L, a, "<a/>");
        return;
    }
    if (strcmp(name, "a") == 0) {
        uint32_t h;
        if (parse_u32(epode_stanza_get_attr(st, "h"), &h) < 0) {
            fail(s, "I6: <a/> without a valid h");
            return;
        }
        srv_take_h(s, x, h, "<a/>");
        return;
    }
    fail(s, "I6: unexpected <%s xmlns='urn:xmpp:sm:3'/>", name);
}

static void srv_element(link *L, epode_stanza_t *st)
{
    sim *s = L->s;
    const char *name = epode_stanza_get_name(st), *ns = epode_stanza_get_ns(st);
    if (!ns)
        ns = "";
    switch (L->stage) {
    case SS_AUTH: {
        if (strcmp(name, "auth") != 0 || strcmp(ns, NS_SASL) != 0) {
            fail(s, "I6: expected <auth/>, got <%s xmlns='%s'/>", name, ns);
            return;
        }
        const char *mech = epode_stanza_get_attr(st, "mechanism");
        const char *t = epode_stanza_get_text(st);
        /* base64 of "\0sim\0pw" */
        if (!mech || strcmp(mech, "PLAIN") != 0 || !t || strcmp(t, "AHNpbQBwdw==") != 0) {
            fail(s, "I6: bad <auth/> (%s, %s)", mech ? mech : "-", t ? t : "-");
            return;
        }
        srv_write(L, "<success xmlns='" NS_SASL "'/>", "<success/>");
        epode_parser_reset(L->sp);
        L->reset = 1;
        L->stage = SS_HDR2;
        return;
    }
    case SS_PREBIND:
        if (strcmp(ns, NS_SM) == 0) {
            srv_sm_element(L, st);
            return;
        }
        if (strcmp(name, "iq") == 0 && epode_stanza_find_child(st, "bind", NS_BIND)) {
            const char *id = epode_stanza_get_id(st);
            int i = sess_new(s);
            L->scur = i;
            s->ss[i].attached = 1;
            s->ss[i].link = (int)(L - s->links);
            char r[400];
            snprintf(r, sizeof r, "<iq type='result' id='%s'><bind xmlns='" NS_BIND "'><jid>%s</jid>"
                                  "</bind></iq>", id ? id : "", s->ss[i].jid);
            srv_write(L, r, "the bind result");
            L->stage = SS_BOUND;
            return;
        }
        fail(s, "I6: expected bind or <resume/>, got <%s xmlns='%s'/>", name, ns);
        return;
    case SS_BOUND:
        if (strcmp(ns, NS_SM) == 0) {
            srv_sm_element(L, st);
            return;
        }
        if (strcmp(ns, "jabber:client") == 0) {
            srv_client_stanza(L, st);
            return;
        }
        fail(s, "I6: unexpected <%s xmlns='%s'/>", name, ns);
        return;
    default:
        fail(s, "I6: <%s xmlns='%s'/> at server stage %d", name, ns, L->stage);
        return;
    }
}

static void srv_on_parser(void *user, epode_parser_event_t ev, epode_stanza_t *el)
{
    link *L = user;
    sim *s = L->s;
    if (s->failed || L->closing)
        return;
    switch (ev) {
    case EPODE_PARSER_STREAM_OPEN:
        if (L->stage != SS_HDR1 && L->stage != SS_HDR2) {
            fail(s, "I6: a stream header at server stage %d", L->stage);
            return;
        }
        srv_features(L);
        return;
    case EPODE_PARSER_STANZA:
        srv_element(L, el);
        return;
    case EPODE_PARSER_SKIPPED:
        /* nothing the client sends comes near the server's limits */
        fail(s, "I7: the server had to skip an element of the client's over its limits");
        return;
    case EPODE_PARSER_STREAM_CLOSE:
        /* A clean close ends the session (XEP-0198: not resumable). */
        trace(s, "  server: the client closed its stream on link %d", L->id);
        srv_write(L, "</stream:stream>", "the closing tag");
        L->s2c.fin = 1;
        L->closing = 1;
        if (L->scur >= 0)
            sess_destroy(s, L->scur, "clean close");
        return;
    }
}

static void srv_feed(link *L, const char *d, size_t n)
{
    sim *s = L->s;
    while (n > 0 && !s->failed && !L->closing && L->sp) {
        long left = epode_parser_feed(L->sp, d, n);
        if (left < 0) {
            fail(s, "I7: the client's bytes are not a well-formed stream: %s (%s)",
                 epode_parser_error_text(L->sp),
                 epode_stream_cond_name(epode_parser_condition(L->sp)));
            return;
        }
        if (!L->reset && left > 0) {
            fail(s, "sim: the parser left %ld bytes", left);
            return;
        }
        L->reset = 0;
        d += n - (size_t)left;
        n = (size_t)left;
    }
}

/* The server's side of a connection ends (EOF, cut, restart, takeover):
 * its session is detached, or destroyed if it cannot be resumed. */
static void link_server_end(sim *s, link *L, const char *why)
{
    if (!L->up)
        return;
    trace(s, "  server: link %d ends (%s)", L->id, why);
    L->up = 0;
    epode_parser_free(L->sp);
    L->sp = NULL;
    ssess *x = cur(L);
    if (x) {
        x->attached = 0;
        if (!(x->sm && x->resumable))
            sess_destroy(s, L->scur, "disconnected, not resumable");
        else
            trace(s, "  server: session %d detached", L->scur);
    }
    L->scur = -1;
    pipe_clear(&L->c2s);
    pipe_clear(&L->s2c);
    if (s->zl == L)
        s->zl = NULL;
}

/* ---- the application ---------------------------------------------------------------- */

static int new_msg(sim *s)
{
    msg z;
    memset(&z, 0, sizeof z);
    z.seq = -1;
    z.srv_sess = -1;
    uint32_t k = below(&s->r, 1000);
    z.units = k < 850 ? below(&s->r, 16) : k < 995 ? below(&s->r, 200) : below(&s->r, 2500);
    VEC_PUSH(s->m, s->nm, s->cm, z);
    return (int)s->nm - 1;
}

/* Hands message i to the engine: 1 accepted, 0 not now (not ready). */
static int engine_take(sim *s, int i)
{
    if (!s->e || s->e_ended || !epode__engine_is_ready(s->e))
        return 0;
    msg *m = &s->m[i];
    char id[24];
    snprintf(id, sizeof id, "m%d", i);
    epode_stanza_t *st = NULL;
    if (epode_stanza_new_message(&g_mem, "chat", "peer@" DOMAIN, body_text(s, 'm', (size_t)i, m->units),
                          &st) < 0 ||
        epode_stanza_set_id(st, id) < 0) {
        fail(s, "sim: cannot build a message");
        epode_stanza_unref(st);
        return 0;
    }
    size_t before = epode__engine_sm_pending(s->e);
    int rc = epode__engine_send(s->e, st);
    epode_stanza_unref(st);
    if (rc == EPODE_ESTATE)
        return 0;
    if (rc < 0) {
        fail(s, "engine_send(m%d): %s", i, epode_strerror(rc));
        return 0;
    }
    size_t after = epode__engine_sm_pending(s->e);
    m->seq = s->next_seq++;
    if (after == before + 1) {
        m->state = M_SENT;
        /* the bytes the queue keeps for it (the server checks the wire) */
        const epode__sm *q = &s->sm;
        const epode__sm_entry *en = &q->q[(q->qhead + q->qlen - 1) % q->qcap];
        m->len = (uint32_t)en->len;
        m->hash = fnv(q->bytes.data + q->bytes.len - en->len, en->len);
    } else if (after == before) {
        m->state = M_UNTRACKED;
    } else {
        fail(s, "I1: sending m%d moved sm_pending from %zu to %zu", i, before, after);
        return 0;
    }
    trace(s, "app: m%d sent%s (units %u, pending %zu)", i, m->state == M_UNTRACKED ? " untracked" : "",
          m->units, after);
    return 1;
}

static void flush_outbox(sim *s)
{
    while (s->outbox.len && !s->failed) {
        if (!engine_take(s, fifo_at(&s->outbox, 0)))
            return;
        fifo_pop(&s->outbox, 1);
    }
}

/* The application sends n new messages now (or queues them behind the
 * ones waiting). */
static void app_burst(sim *s, uint32_t n, const char *where)
{
    trace(s, "app: a burst of %u %s", n, where);
    for (uint32_t k = 0; k < n && !s->failed; k++) {
        int i = new_msg(s);
        if (s->outbox.len || !engine_take(s, i))
            fifo_push(&s->outbox, i);
    }
}

static int parse_mid(sim *s, const char *id)
{
    char *end;
    if (!id || id[0] != 'm')
        return -1;
    unsigned long n = strtoul(id + 1, &end, 10);
    if (*end || n >= s->nm)
        return -1;
    return (int)n;
}

static void on_result(sim *s, int acked, const char *id, const char *bytes, size_t len)
{
    int i = parse_mid(s, id);
    if (i < 0) {
        fail(s, "I1: sm_result for an unknown id '%s'", id ? id : "(null)");
        return;
    }
    msg *m = &s->m[i];
    trace(s, "app: m%d %s", i, acked ? "acked" : "handed back");
    if (m->state != M_SENT) {
        fail(s, "I1: m%d got a second result (%s after %s)", i, acked ? "acked" : "handed back",
             m->state == M_ACKED ? "acked" : m->state == M_BACK ? "handed back" : "never sent");
        return;
    }
    if (len != m->len || fnv(bytes, len) != m->hash) {
        fail(s, "I2: the bytes reported for m%d are not the bytes written (%zu vs %u): %s", i, len,
             m->len, excerpt(s, bytes, len));
        return;
    }
    if (acked) {
        if (m->srv_recv == 0) {
            fail(s, "I2: m%d was acknowledged but the server never received it", i);
            return;
        }
        if (m->seq <= s->last_acked_seq) {
            fail(s, "I2: m%d (send #%" PRId64 ") acknowledged after send #%" PRId64, i, m->seq,
                 s->last_acked_seq);
            return;
        }
        s->last_acked_seq = m->seq;
        m->state = M_ACKED;
        g_cov.acked++;
    } else {
        m->state = M_BACK;
        g_cov.back++;
        /* sometimes the application sends it again, as a new message */
        if (!s->user_closed && chance(&s->r, 250)) {
            int k = new_msg(s);
            s->m[k].units = s->m[i].units;
            fifo_push(&s->outbox, k);
        }
    }
}

/* ---- the client driver (conn.c's part) -------------------------------------------- */

static void cb_event(void *u, int ev)
{
    sim *s = u;
    if (ev == EPODE__ENG_READY) {
        size_t pending = epode__sm_pending(&s->sm);
        trace(s, "client: READY as %s (%zu queued from the last session)",
              epode__engine_bound_jid(s->e), pending);
        if (pending)
            g_cov.resent_after_refusal += (long)pending;
        const epode_stanza_t *f = epode__engine_features(s->e);
        int sm_here = f && epode_stanza_find_child(f, "sm", NS_SM);
        if (!sm_here)
            g_cov.no_sm_streams++;
        s->next_base_h = s->next_base_out = 0;
        if (s->wrap && pending == 0 && sm_here && s->sm.requested) {
            epode__engine_sm_set_counters(s->e, s->base_out, s->base_in);
            s->next_base_h = s->base_out;
            s->next_base_out = s->base_in;
        }
    } else if (ev == EPODE__ENG_RESUMED) {
        trace(s, "client: RESUMED as %s", epode__engine_bound_jid(s->e));
        s->resume_unproven = epode__engine_sm_pending(s->e) > 0; /* conn.c */
    } else {
        trace(s, "client: event %d", ev);
    }
    if ((ev == EPODE__ENG_READY || ev == EPODE__ENG_RESUMED) && chance(&s->r, s->p_cb_send))
        app_burst(s, 1 + below(&s->r, 3), "from the READY/RESUMED callback");
}

static void cb_stanza(void *u, epode_stanza_t *st)
{
    sim *s = u;
    const char *id = epode_stanza_get_id(st);
    char *end;
    unsigned long n;
    if (!id || id[0] != 's' || (n = strtoul(id + 1, &end, 10), *end) || (long)n >= s->s_next) {
        fail(s, "I4: the client received a stanza with an unknown id '%s'", id ? id : "(none)");
        return;
    }
    while (s->ns_recv <= n)
        VEC_PUSH(s->s_recv, s->ns_recv, s->cs_recv, 0);
    const char *body = epode_stanza_child_text(st, "body", NULL);
    if (!body || strcmp(body, body_text(s, 's', n, s_units(s, (long)n))) != 0) {
        fail(s, "I7: s%lu reached the client with a different body", n);
        return;
    }
    if (s->s_recv[n]++) {
        fail(s, "I4: the client received s%lu twice", n);
        return;
    }
    if ((long)n <= s->last_s_recv) {
        fail(s, "I4: the client received s%lu after s%ld", n, s->last_s_recv);
        return;
    }
    s->last_s_recv = (long)n;
    trace(s, "client: got s%lu", n);
    if (chance(&s->r, s->p_cb_send / 4))
        app_burst(s, 1, "from the stanza callback");
}

static void cb_ended(void *u, int err, int reason, const char *cond, const char *text)
{
    sim *s = u;
    trace(s, "client: ended: %s, reason %d, %s (%s)", epode_err_name(err), reason,
          cond ? cond : "-", text ? text : "");
    s->e_ended = 1;
    s->end_err = err;
    s->end_reason = reason;
    snprintf(s->end_cond, sizeof s->end_cond, "%s", cond ? cond : "");
    if (reason == EPODE_REASON_PROTOCOL || reason == EPODE_REASON_AUTH ||
        reason == EPODE_REASON_TLS)
        fail(s, "I6: the engine ended the stream against an honest server: %s, %s (%s)",
             epode_err_name(err), cond ? cond : "-", text ? text : "");
}

static void cb_result(void *u, int acked, const char *id, const char *bytes, size_t len)
{
    sim *s = u;
    if (acked)
        s->fruitless = s->resume_unproven = 0; /* conn.c's eng_sm_result */
    /* The application reacts from inside the ack loop — and may look at
     * the bytes after sending (they are lent "for the call"). Whether they
     * still exist is decided without touching them, and without looking at
     * addresses (where realloc puts a block is not deterministic): if the
     * queue's buffer they point into was reallocated, they may dangle. */
    if (acked && chance(&s->r, s->p_cb_send) && below(&s->r, 2) && !(g_avoid & AVOID_ACKBYTES)) {
        const char *q0 = s->sm.bytes.data;
        size_t qcap = s->sm.bytes.cap;
        int inside = q0 && bytes >= q0 && bytes < q0 + qcap; /* same object: deterministic */
        app_burst(s, 1 + below(&s->r, 4), "from inside an ack callback, before reading the bytes");
        if (!s->failed && inside && s->sm.bytes.cap != qcap) {
            fail(s, "I2: the bytes sm_result lent for %s moved (the queue's buffer was "
                    "reallocated) when the callback sent a stanza",
                 id ? id : "(null)");
            return;
        }
        on_result(s, acked, id, bytes, len);
        return;
    }
    on_result(s, acked, id, bytes, len);
    if (acked && !s->failed && chance(&s->r, s->p_cb_send))
        app_burst(s, 1 + below(&s->r, 4), "from inside an ack callback");
}

static void give_back(void *u, const char *id, const char *bytes, size_t len)
{
    on_result(u, 0, id, bytes, len);
}

/* conn.c's stream_error_is_final(). */
static int stream_error_is_final(const char *cond)
{
    static const char *const final[] = {
        "conflict", "host-unknown", "host-gone", "not-authorized", "invalid-from",
        "invalid-namespace", "unsupported-version", "unsupported-encoding",
        "improper-addressing", "bad-namespace-prefix",
    };
    for (size_t i = 0; i < sizeof final / sizeof final[0]; i++)
        if (strcmp(cond, final[i]) == 0)
            return 1;
    return 0;
}

/* conn.c's should_reconnect() (MAX_FRUITLESS 5). */
static int should_reconnect(const sim *s)
{
    if (s->user_closed)
        return 0;
    if (s->end_reason == EPODE_REASON_NETWORK || s->end_reason == EPODE_REASON_TIMEOUT)
        return 1;
    if (s->end_reason == EPODE_REASON_TLS)
        return s->end_err == EPODE_ETLS;
    if (s->fruitless >= 5)
        return 0;
    if (s->end_reason == EPODE_REASON_STREAM_ERROR)
        return !stream_error_is_final(s->end_cond);
    return s->end_reason == EPODE_REASON_PROTOCOL;
}

/* Delivers all that is left on a zombie (or drops it), then EOF. */
static void zombie_finish(sim *s)
{
    link *Z = s->zl;
    if (!Z)
        return;
    if (chance(&s->r, 500) && pipe_len(&Z->c2s) && Z->sp) {
        trace(s, "C%d~> %s", Z->id, excerpt(s, pipe_data(&Z->c2s), pipe_len(&Z->c2s)));
        srv_feed(Z, pipe_data(&Z->c2s), pipe_len(&Z->c2s));
    }
    link_server_end(s, Z, "EOF on the old connection");
}

/* The client lets its link go. The server learns of it later (the link
 * becomes a zombie), or at once. */
static void client_release_link(sim *s, int orderly)
{
    link *L = s->cl;
    if (!L)
        return;
    s->cl = NULL;
    if (!L->up)
        return;
    L->s2c.b.len = L->s2c.off = 0; /* nobody reads these any more */
    L->s2c.cut_at = L->c2s.cut_at = 0;
    L->told_sess = -1;
    if (orderly)
        L->c2s.fin = 1;
    if (s->zl)
        zombie_finish(s);
    if (chance(&s->r, s->p_zombie)) {
        trace(s, "NET: link %d lingers on the server's side", L->id);
        g_cov.zombies++;
        s->zl = L;
        return;
    }
    if (orderly && chance(&s->r, 500) && pipe_len(&L->c2s) && L->sp) {
        trace(s, "C%d~> %s", L->id, excerpt(s, pipe_data(&L->c2s), pipe_len(&L->c2s)));
        srv_feed(L, pipe_data(&L->c2s), pipe_len(&L->c2s));
    }
    link_server_end(s, L, orderly ? "EOF" : "reset");
}

/* After the engine ended (never from inside its callbacks). */
static void teardown(sim *s)
{
    if (!s->e_ended)
        return;
    s->e_ended = 0;
    if (s->cl && s->cl->up) {
        size_t n;
        const char *out = epode__engine_output(s->e, &n);
        if (n) {
            trace(s, "C%d> (last flush) %s", s->cl->id, excerpt(s, out, n));
            pipe_write(&s->cl->c2s, out, n);
        }
    }
    /* after a timeout the link is presumed dead: no FIN reaches the server */
    client_release_link(s, s->end_reason != EPODE_REASON_TIMEOUT);
    epode__engine_free(s->e);
    s->e = NULL;
    if (s->end_reason == EPODE_REASON_STREAM_ERROR || s->end_reason == EPODE_REASON_PROTOCOL)
        s->fruitless++;
    if (s->resume_unproven && s->sm.resumable) {
        /* conn.c: the resumed stream died before the server confirmed
         * anything we resent; log in afresh next time, keeping the queue
         * (the resend policy or a hand-back takes it) */
        trace(s, "client: the resumed session confirmed nothing: a fresh one next time");
        g_cov.unproven++;
        epode__sm_end_session(&s->sm);
    }
    s->resume_unproven = 0;
    if (should_reconnect(s)) {
        s->wait = (int)below(&s->r, 6);
        trace(s, "client: reconnecting in %d steps (%zu queued)", s->wait,
              epode__sm_pending(&s->sm));
    } else {
        trace(s, "client: not reconnecting; %zu handed back", epode__sm_pending(&s->sm));
        epode__sm_drain(&s->sm, give_back, s);
        epode__sm_forget(&s->sm);
        s->gave_up = 1;
        s->wait = -1;
    }
}

static void client_connect(sim *s)
{
    s->wait = -1;
    link *L = &s->links[0] == s->zl ? &s->links[1] : &s->links[0];
    pipe_clear(&L->c2s);
    pipe_clear(&L->s2c);
    L->up = 1;
    L->id = s->next_link++;
    L->stage = SS_HDR1;
    L->reset = L->closing = 0;
    L->scur = -1;
    L->told_sess = -1;
    if (epode_parser_new(&g_mem, srv_on_parser, L, &L->sp) < 0) {
        fail(s, "sim: parser_new failed");
        return;
    }
    s->cl = L;
    epode__engine_config cfg = {
        .domain = DOMAIN, .localpart = "sim", .password = "pw", .resource = NULL,
        .tls_mode = EPODE_TLS_REQUIRED, .sm = 1, .sm_state = &s->sm,
        .sm_request_every = s->request_every, .sm_resend = s->sm_resend,
        .max_stanza_bytes = s->client_limit,
    };
    /* designated: the engine's callback set grows (skipped, ...) */
    epode__engine_cbs cbs = {.event = cb_event, .stanza = cb_stanza, .ended = cb_ended,
                             .sm_result = cb_result};
    int rc = epode__engine_new(&g_mem, &cfg, &cbs, s, &s->e);
    if (rc < 0) {
        fail(s, "engine_new: %s", epode_strerror(rc));
        return;
    }
    s->engines++;
    /* With sm_resend, what is queued now may go again on a new session if
     * this connection does not resume (refused, or not offered): it may
     * then arrive twice (conn.h), as long as the server never told us it
     * had it (I3 checks that part). */
    if (s->sm_resend)
        for (size_t k = 0; k < s->sm.qlen; k++) {
            int i = parse_mid(s, s->sm.q[(s->sm.qhead + k) % s->sm.qcap].id);
            if (i >= 0)
                s->m[i].may_dup = 1;
        }
    trace(s, "client: connecting on link %d (engine %ld, %zu queued, resumable %d)", L->id,
          s->engines, epode__sm_pending(&s->sm), s->sm.resumable);
    /* as if on direct TLS: the engine allows PLAIN only inside TLS */
    static const epode__tls_facts facts = {.version = 13, .key_bits = 256};
    rc = epode__engine_start(s->e, &facts);
    if (rc < 0)
        fail(s, "engine_start: %s", epode_strerror(rc));
}

/* ---- network actions ------------------------------------------------------------ */

static size_t chunk_size(sim *s, size_t avail)
{
    /* logins go in fewer, still randomly split, chunks (one-byte logins
     * are the unit tests' business): sessions get established to be cut */
    if (s->calm || !s->e || s->e_ended || !epode__engine_is_ready(s->e))
        return avail <= 1 ? 1 : below(&s->r, 2) ? avail : 1 + below(&s->r, (uint32_t)avail);
    if (avail <= 1 || chance(&s->r, s->p_onebyte))
        return 1;
    uint32_t k = below(&s->r, 4);
    if (k == 0)
        return avail;
    if (k == 1)
        return 1 + below(&s->r, avail > 64 ? 64 : (uint32_t)avail);
    return 1 + below(&s->r, (uint32_t)(avail > 100000 ? 100000 : avail));
}

static void cut(sim *s, const char *why);

static void deliver_c2s(sim *s, link *L, size_t k)
{
    pipe_ *p = &L->c2s;
    if (p->cut_at && p->delivered + k >= p->cut_at)
        k = (size_t)(p->cut_at - p->delivered);
    if (k) {
        /* the server's callbacks write only the other pipe */
        trace(s, "C%d~> %s", L->id, excerpt(s, pipe_data(p), k));
        srv_feed(L, pipe_data(p), k);
        if (L->up)
            pipe_take(p, k);
    }
    if (L == s->cl && p->cut_at && p->delivered >= p->cut_at)
        cut(s, "an armed cut (client to server)");
}

static void deliver_s2c(sim *s, size_t k)
{
    link *L = s->cl;
    pipe_ *p = &L->s2c;
    if (p->cut_at && p->delivered + k >= p->cut_at)
        k = (size_t)(p->cut_at - p->delivered);
    if (k && s->e && !s->e_ended) {
        /* the client's callbacks never touch the pipes; teardown comes after */
        trace(s, "<~S%d %s", L->id, excerpt(s, pipe_data(p), k));
        epode__engine_recv(s->e, pipe_data(p), k);
        pipe_take(p, k);
        if (L->told_sess >= 0 && p->delivered >= L->told_mark) {
            s->ss[L->told_sess].told_h = 1;
            L->told_sess = -1;
        }
        teardown(s);
    }
    if (s->cl == L && p->cut_at && p->delivered >= p->cut_at)
        cut(s, "an armed cut (server to client)");
}

/* Engine output onto the wire, k bytes of it. */
static void client_flush(sim *s, size_t k)
{
    size_t n;
    const char *out = epode__engine_output(s->e, &n);
    if (k > n)
        k = n;
    if (!k)
        return;
    trace(s, "C%d> %s", s->cl->id, excerpt(s, out, k));
    pipe_write(&s->cl->c2s, out, k);
    maybe_arm_cut(s, &s->cl->c2s, k,
                  memmem(out, k, NS_SM, strlen(NS_SM)) || memmem(out, k, "<message", 8)
                      ? "client bytes with stanzas or SM elements" : "client bytes");
    epode__engine_consume(s->e, k);
}

/* The connection dies for both ends. */
static void cut(sim *s, const char *why)
{
    link *L = s->cl;
    if (!L || !L->up)
        return;
    g_cov.cuts++;
    trace(s, "NET: link %d cut (%s); %zu bytes to the server and %zu to the client lost", L->id,
          why, pipe_len(&L->c2s), pipe_len(&L->s2c));
    s->cl = NULL;
    link_server_end(s, L, why);
    if (s->e && !s->e_ended) {
        if (chance(&s->r, s->p_eof))
            epode__engine_eof(s->e);
        else
            epode__engine_abort(s->e, EPODE_ENET, EPODE_REASON_NETWORK, "connection reset");
    }
    teardown(s);
}

/* The client gives up on a link the server still has (conn.c's login
 * timer or its dead-link timer): the server keeps it as a zombie. */
static void client_timeout(sim *s)
{
    if (!s->e || s->e_ended || !s->cl)
        return;
    trace(s, "client: timeout on link %d", s->cl->id);
    g_cov.timeouts++;
    epode__engine_abort(s->e, EPODE_ETIMEDOUT, EPODE_REASON_TIMEOUT, "timed out");
    teardown(s);
}

static void check_eofs(sim *s)
{
    link *L = s->cl;
    if (L && !L->up) {
        /* the server closed it (a resumption took its session over) */
        trace(s, "NET: the server closed link %d", L->id);
        s->cl = NULL;
        if (s->e && !s->e_ended) {
            if (chance(&s->r, s->p_eof))
                epode__engine_eof(s->e);
            else
                epode__engine_abort(s->e, EPODE_ENET, EPODE_REASON_NETWORK, "connection reset");
        }
        teardown(s);
        return;
    }
    if (L && L->s2c.fin && pipe_len(&L->s2c) == 0 && s->e && !s->e_ended) {
        trace(s, "NET: EOF to the client");
        epode__engine_eof(s->e);
        teardown(s);
    }
    link *Z = s->zl;
    if (Z && Z->c2s.fin && pipe_len(&Z->c2s) == 0)
        link_server_end(s, Z, "EOF on the old connection");
}

/* ---- server actions ------------------------------------------------------------- */

static void srv_restart(sim *s)
{
    int keep = !chance(&s->r, s->p_restart_nostate);
    link *L = s->cl;
    int graceful = L && L->up && L->sp && !L->closing && chance(&s->r, 400);
    g_cov.restarts++;
    g_cov.restarts_lost += !keep;
    trace(s, "SERVER: restart (%s, %s)", graceful ? "system-shutdown" : "abrupt",
          keep ? "keeping its sessions" : "losing its sessions");
    if (s->zl)
        link_server_end(s, s->zl, "server restart");
    if (graceful) {
        if (L->stage == SS_HDR1 || L->stage == SS_HDR2)
            srv_header(L); /* RFC 6120 §4.9.1.2: a stream to carry the error */
        srv_write(L, "<stream:error><system-shutdown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"
                     "</stream:error></stream:stream>", "system-shutdown");
        L->s2c.fin = 1;
        L->closing = 1;
        ssess *x = cur(L);
        if (x) {
            x->attached = 0;
            if (!(x->sm && x->resumable))
                sess_destroy(s, L->scur, "disconnected, not resumable");
            L->scur = -1;
        }
    } else {
        cut(s, "server restart");
    }
    for (size_t i = 0; i < s->nss; i++)
        if (s->ss[i].live && !s->ss[i].attached && !keep)
            sess_destroy(s, (int)i, "the server restarted without its state");
    int was = s->sm_offered;
    s->sm_offered = !chance(&s->r, s->p_nosm);
    if (was != s->sm_offered)
        trace(s, "SERVER: %s offers stream management", s->sm_offered ? "now" : "no longer");
}

static void srv_expire(sim *s)
{
    for (size_t i = 0; i < s->nss; i++)
        if (s->ss[i].live && !s->ss[i].attached) {
            sess_destroy(s, (int)i, "expired");
            return;
        }
}

/* ---- checks ---------------------------------------------------------------------- */

static int quiet(const sim *s)
{
    size_t n = 0;
    if (s->e)
        epode__engine_output(s->e, &n);
    return s->cl && s->cl->up && s->e && !s->e_ended && n == 0 && pipe_len(&s->cl->c2s) == 0 &&
           pipe_len(&s->cl->s2c) == 0;
}

/* I5 when nothing is in flight. */
static void check_counters(sim *s)
{
    if (!quiet(s) || !epode__engine_is_ready(s->e) || !epode__engine_sm_enabled(s->e))
        return;
    ssess *x = cur(s->cl);
    if (!x || !x->sm || s->cl->closing)
        return;
    const epode__sm *c = &s->sm;
    if (c->out != x->handled || c->in != x->out || (uint32_t)(c->out - c->acked) != c->qlen ||
        (uint32_t)(x->out - x->acked) != x->q.len)
        fail(s, "I5: counters disagree on a quiet link: client out=%u acked=%u queue=%zu in=%u; "
                "server handled=%u out=%u acked=%u queue=%zu",
             c->out, c->acked, c->qlen, c->in, x->handled, x->out, x->acked, x->q.len);
}

/* ---- one schedule ------------------------------------------------------------------ */

static void draw_params(sim *s)
{
    rng *r = &s->r;
    static const uint32_t cuts[] = {0, 3, 10, 30, 80};
    s->sm_resend = (int)below(r, 2);
    s->request_every = 1 + below(r, 8);
    s->p_cut = cuts[below(r, 5)];
    s->p_trig = below(r, 3) == 0 ? 0 : 10 + below(r, 100);
    s->p_timeout = below(r, 2) == 0 ? below(r, 20) : 0;
    s->p_restart = below(r, 3) == 0 ? 0 : below(r, 10);
    s->p_restart_nostate = below(r, 700);
    s->p_nosm = below(r, 4) == 0 ? below(r, 300) : 0;
    s->p_expire = below(r, 6);
    s->p_refuse = below(r, 7);
    s->p_refuse_h = below(r, 1000);
    s->p_burst = 3 + below(r, 30);
    s->p_big_burst = below(r, 8) == 0 ? 20 + below(r, 60) : 0;
    s->p_push = below(r, 120);
    s->p_srv_r = below(r, 60);
    s->p_stall = below(r, 30);
    s->p_onebyte = below(r, 4) == 0 ? 500 : 50;
    s->p_cb_send = below(r, 150);
    s->p_enable_plain = below(r, 8) == 0 ? 200 : 0;
    s->p_enable_fail = below(r, 8) == 0 ? 150 : 0;
    s->p_compact = below(r, 30);
    s->p_eof = below(r, 1000);
    s->p_zombie = below(r, 2) ? below(r, 1000) : 0;
    s->p_zombie_end = 5 + below(r, 60);
    s->wrap = below(r, 3) == 0;
    s->base_out = 0xFFFFFFFFu - below(r, 40);
    s->base_in = 0xFFFFFFFFu - below(r, 40);
    s->chaos_steps = 40 + below(r, 660);
    if (g_avoid & AVOID_ENABLEFAIL)
        s->p_enable_fail = 0;
    if (g_avoid & AVOID_NOSM)
        s->p_nosm = 0;
    if (g_oversized) { /* drawn last: other schedules stay as they were */
        s->client_limit = below(r, 3) == 0 ? 2048 : 0;
        s->p_big_push = 20 + below(r, 100);
    }
}

enum act {
    A_C2S, A_S2C, A_FLUSH, A_BURST, A_ACKREQ, A_PUSH, A_SRV_R, A_STALL, A_CUT, A_TIMEOUT,
    A_RESTART, A_EXPIRE, A_REFUSE, A_COMPACT, A_SENDQ, A_Z_C2S, A_Z_PUSH, A_Z_END, A_IDLE, N_ACT
};

static void chaos_step(sim *s)
{
    rng *r = &s->r;
    link *L = s->cl, *Z = s->zl;
    if (L) {
        if (L->c2s.stall)
            L->c2s.stall--;
        if (L->s2c.stall)
            L->s2c.stall--;
    }
    if (!L && s->wait > 0)
        s->wait--;
    else if (!L && s->wait == 0)
        client_connect(s);
    L = s->cl;
    size_t out = 0;
    if (s->e && !s->e_ended)
        epode__engine_output(s->e, &out);
    uint32_t w[N_ACT] = {0};
    if (L) {
        w[A_C2S] = pipe_len(&L->c2s) && !L->c2s.stall ? 300 : 0;
        w[A_S2C] = pipe_len(&L->s2c) && !L->s2c.stall ? 300 : 0;
        w[A_FLUSH] = out ? 250 : 0;
        w[A_ACKREQ] = s->e && epode__engine_sm_pending(s->e) ? 20 : 0;
        w[A_PUSH] = L->scur >= 0 ? s->p_push : 0;
        w[A_SRV_R] = L->scur >= 0 && s->ss[L->scur].sm ? s->p_srv_r : 0;
        /* faults are rarer during a login, or no session would ever be
         * established to resume (armed cuts still hit logins) */
        int ready = s->e && !s->e_ended && epode__engine_is_ready(s->e);
        w[A_STALL] = s->p_stall;
        w[A_CUT] = ready ? s->p_cut : s->p_cut / 6;
        w[A_TIMEOUT] = ready ? s->p_timeout : s->p_timeout / 4;
        /* conn.c's dead-link timer: no answer while the server's side stalls */
        if (ready && L->s2c.stall && s->p_timeout && epode__engine_sm_pending(s->e))
            w[A_TIMEOUT] += 40;
        w[A_COMPACT] = s->p_compact;
        w[A_SENDQ] = s->outbox.len ? 100 : 0;
    }
    w[A_IDLE] = 300; /* time passes: faults keep their rate per unit of time */
    w[A_BURST] = s->p_burst;
    w[A_RESTART] = s->e && !s->e_ended && epode__engine_is_ready(s->e) ? s->p_restart
                                                                        : s->p_restart / 6;
    w[A_EXPIRE] = s->p_expire;
    w[A_REFUSE] = s->p_refuse;
    if (Z) {
        w[A_Z_C2S] = pipe_len(&Z->c2s) ? 150 : 0;
        w[A_Z_PUSH] = Z->scur >= 0 ? s->p_push / 2 : 0;
        w[A_Z_END] = s->p_zombie_end;
    }
    uint32_t total = 0;
    for (int i = 0; i < N_ACT; i++)
        total += w[i];
    if (!total)
        return;
    uint32_t pick = below(r, total);
    int a = 0;
    while (pick >= w[a])
        pick -= w[a++];
    switch ((enum act)a) {
    case A_C2S:
        deliver_c2s(s, L, chunk_size(s, pipe_len(&L->c2s)));
        break;
    case A_S2C:
        deliver_s2c(s, chunk_size(s, pipe_len(&L->s2c)));
        break;
    case A_FLUSH:
        client_flush(s, chunk_size(s, out));
        break;
    case A_BURST: {
        uint32_t n = chance(r, s->p_big_burst) ? 40 + below(r, 200) : 1 + below(r, 5);
        app_burst(s, n, "at a random time");
        break;
    }
    case A_ACKREQ:
        /* conn.c's on_sm_timer: armed whenever stanzas are pending; it
         * asks if stream management is enabled (with --avoid ackreq, only
         * once the engine is ready) */
        if (epode__engine_sm_enabled(s->e) &&
            (!(g_avoid & AVOID_ACKREQ) || epode__engine_is_ready(s->e))) {
            trace(s, "client: the ack timer asks: <r/>");
            epode__engine_sm_request(s->e);
        }
        break;
    case A_PUSH: {
        uint32_t n = 1 + below(r, 4);
        trace(s, "SERVER: pushes %u stanzas on link %d", n, L->id);
        while (n--)
            srv_push(L);
        break;
    }
    case A_SRV_R:
        if (!L->closing && L->stage == SS_BOUND)
            srv_write(L, "<r xmlns='" NS_SM "'/>", "<r/>");
        break;
    case A_STALL: {
        pipe_ *p = below(r, 2) ? &L->c2s : &L->s2c;
        p->stall = (int)(1 + below(r, 40));
        trace(s, "NET: %s stalls for %d steps", p == &L->c2s ? "client->server" : "server->client",
              p->stall);
        break;
    }
    case A_CUT:
        cut(s, "at random");
        break;
    case A_TIMEOUT:
        client_timeout(s);
        break;
    case A_RESTART:
        srv_restart(s);
        break;
    case A_EXPIRE:
        srv_expire(s);
        break;
    case A_REFUSE:
        s->refuse_next = 1;
        s->refuse_with_h = chance(r, s->p_refuse_h);
        trace(s, "SERVER: will refuse the next resumption (%s h)",
              s->refuse_with_h ? "with" : "without");
        break;
    case A_COMPACT:
        if (s->e && !s->e_ended && out == 0) {
            trace(s, "client: compact");
            epode__engine_compact(s->e);
        }
        break;
    case A_SENDQ:
        flush_outbox(s);
        break;
    case A_Z_C2S:
        deliver_c2s(s, Z, chunk_size(s, pipe_len(&Z->c2s)));
        break;
    case A_Z_PUSH:
        trace(s, "SERVER: pushes a stanza on old link %d", Z->id);
        srv_push(Z);
        break;
    case A_Z_END:
        link_server_end(s, Z, below(r, 2) ? "the server timed the old link out" : "EOF at last");
        break;
    case A_IDLE:
    case N_ACT:
        break;
    }
    check_eofs(s);
    check_counters(s);
    if (s->sm.qlen >= 100 && !s->long_queue_seen) {
        s->long_queue_seen = 1;
        g_cov.long_queue++;
    }
    if (s->wrap && s->sm.requested && s->sm.out < 1000 && s->sm.acked < 1000 &&
        s->sm.out > 0 && !s->wrap_seen) {
        s->wrap_seen = 1;
        g_cov.wrapped++;
    }
}

/* Moves everything: engine output to the wire, the pipes to their ends. */
static void drain_all(sim *s)
{
    for (int guard = 0; guard < 1000 && s->cl && !s->failed; guard++) {
        size_t out = 0;
        link *L = s->cl;
        if (s->e && !s->e_ended)
            epode__engine_output(s->e, &out);
        if (out)
            client_flush(s, chunk_size(s, out));
        else if (pipe_len(&L->c2s))
            deliver_c2s(s, L, chunk_size(s, pipe_len(&L->c2s)));
        else if (pipe_len(&L->s2c))
            deliver_s2c(s, chunk_size(s, pipe_len(&L->s2c)));
        else
            break;
        check_eofs(s);
    }
    check_eofs(s);
}

static void free_world(sim *s)
{
    epode__engine_free(s->e);
    s->e = NULL;
    for (int k = 0; k < 2; k++) {
        epode_parser_free(s->links[k].sp);
        free(s->links[k].c2s.b.d);
        free(s->links[k].s2c.b.d);
    }
    epode__sm_free(&s->sm);
    for (size_t i = 0; i < s->nss; i++)
        fifo_free(&s->ss[i].q);
    free(s->ss);
    free(s->m);
    fifo_free(&s->outbox);
    free(s->s_recv);
    free(s->s_big);
    free(s->tmp.d);
    free(s->body.d);
}

/* Runs one schedule: 0 if every invariant held, else 1 with s->why. */
static int run_one(sim *s, uint64_t seed, int verbose, long chaos_cap)
{
    memset(s, 0, sizeof *s);
    s->seed = seed;
    s->r.s = seed;
    s->verbose = verbose;
    s->wait = -1;
    s->sm_offered = 1;
    s->last_acked_seq = -1;
    s->last_s_recv = -1;
    for (int k = 0; k < 2; k++) {
        s->links[k].s = s;
        s->links[k].scur = -1;
        s->links[k].told_sess = -1;
    }
    epode__sm_init(&s->sm, &g_mem);
    g_live = 0;
    draw_params(s);
    if (chaos_cap >= 0 && s->chaos_steps > chaos_cap)
        s->chaos_steps = chaos_cap;
    trace(s, "seed %" PRIu64 ": resend=%d r_every=%u cut=%u trig=%u timeout=%u restart=%u"
             "(nostate %u, nosm %u) expire=%u refuse=%u(h %u) burst=%u(big %u) push=%u zombie=%u "
             "enable(plain %u, fail %u) wrap=%d(%u,%u) chaos=%ld",
          seed, s->sm_resend, s->request_every, s->p_cut, s->p_trig, s->p_timeout, s->p_restart,
          s->p_restart_nostate, s->p_nosm, s->p_expire, s->p_refuse, s->p_refuse_h, s->p_burst,
          s->p_big_burst, s->p_push, s->p_zombie, s->p_enable_plain, s->p_enable_fail, s->wrap,
          s->base_out, s->base_in, s->chaos_steps);

    client_connect(s);
    for (s->step = 0; s->step < s->chaos_steps && !s->failed && !s->gave_up; s->step++)
        chaos_step(s);

    /* calm: no more faults; the server offers SM again */
    trace(s, "---- calm ----");
    s->calm = 1;
    s->sm_offered = 1;
    s->refuse_next = 0;
    s->p_trig = 0;
    if (s->cl)
        s->cl->c2s.cut_at = s->cl->s2c.cut_at = 0;
    if (s->zl)
        zombie_finish(s);
    int close_with_pending = chance(&s->r, 300);
    int give_up = chance(&s->r, 200);
    long calm;
    for (calm = 0; calm < 400 && !s->failed && !s->gave_up; calm++, s->step++) {
        if (s->cl)
            s->cl->c2s.stall = s->cl->s2c.stall = 0;
        if (!s->cl && s->wait >= 0)
            client_connect(s);
        drain_all(s);
        flush_outbox(s);
        drain_all(s);
        if (s->zl)
            zombie_finish(s);
        check_counters(s);
        if (s->failed || !quiet(s) || !epode__engine_is_ready(s->e) || s->outbox.len)
            continue;
        if (close_with_pending || epode__engine_sm_pending(s->e) == 0 ||
            !epode__engine_sm_enabled(s->e))
            break;
        trace(s, "client: the ack timer asks: <r/>");
        epode__engine_sm_request(s->e);
    }
    if (!s->failed && !s->gave_up && calm >= 400)
        fail(s, "I9: no progress in the calm phase (link=%d ready=%d outbox=%zu pending=%zu)",
             s->cl != NULL, s->e ? epode__engine_is_ready(s->e) : 0, s->outbox.len,
             epode__sm_pending(&s->sm));

    /* the end: a clean close, or a last cut after which the client gives up */
    if (!s->failed && !s->gave_up) {
        s->user_closed = 1;
        if (give_up) {
            trace(s, "---- the client gives up ----");
            g_cov.gave_up++;
            cut(s, "the last one");
        } else {
            trace(s, "---- the client closes ----");
            g_cov.graceful_close++;
            epode__engine_close(s->e);
            for (int i = 0; i < 100 && s->e && !s->failed; i++, s->step++)
                drain_all(s);
            if (s->e && !s->failed)
                fail(s, "I9: the clean close did not finish");
        }
    }

    /* I1 at the end: every accepted stanza has had its one result */
    for (size_t i = 0; i < s->nm && !s->failed; i++)
        if (s->m[i].state == M_SENT)
            fail(s, "I1: m%zu was sent under stream management and never acknowledged nor handed "
                    "back (lost silently)",
                 i);

    size_t sent = s->nm, ob = s->outbox.len;
    free_world(s);
    if (!s->failed && g_live != 0)
        fail(s, "I8: %ld allocations not freed at the end of the schedule", g_live);
    if (verbose)
        printf("seed %" PRIu64 ": %s (%zu messages, %zu left in the outbox, %ld engines)\n", seed,
               s->failed ? "FAILED" : "ok", sent, ob, s->engines);
    return s->failed;
}

/* ---- main --------------------------------------------------------------------------- */

static void usage(void)
{
    fprintf(stderr, "usage: sim [--schedules N] [--seed S] [--verbose] [--chaos N] [--shrink] "
                    "[--failures N] [--oversized 0|1] [--avoid BUG|all]...\n");
    exit(2);
}

/* A failure's kind: its message with the numbers blanked. */
static void kind_of(const char *why, char *k, size_t n)
{
    size_t o = 0;
    for (const char *c = why; *c && o + 1 < n; c++)
        if (*c >= '0' && *c <= '9') {
            if (!o || k[o - 1] != '#')
                k[o++] = '#';
        } else {
            k[o++] = *c;
        }
    k[o] = '\0';
}

int main(int argc, char **argv)
{
    long long n = -1;
    long print_max = 20;
    int oversized = 1;
    uint64_t seed = 1;
    int have_seed = 0, verbose = 0, shrink = 0;
    long chaos = -1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--schedules") && i + 1 < argc) {
            n = atoll(argv[++i]);
        } else if (!strcmp(argv[i], "--seed") && i + 1 < argc) {
            seed = strtoull(argv[++i], NULL, 0);
            have_seed = 1;
        } else if (!strcmp(argv[i], "--chaos") && i + 1 < argc) {
            chaos = atol(argv[++i]);
        } else if (!strcmp(argv[i], "--verbose")) {
            verbose = 1;
        } else if (!strcmp(argv[i], "--failures") && i + 1 < argc) {
            print_max = atol(argv[++i]);
        } else if (!strcmp(argv[i], "--oversized") && i + 1 < argc) {
            oversized = atoi(argv[++i]) != 0;
            snprintf(g_avoid_args + strlen(g_avoid_args), sizeof g_avoid_args - strlen(g_avoid_args),
                     " --oversized %d", oversized);
        } else if (!strcmp(argv[i], "--shrink")) {
            shrink = 1;
        } else if (!strcmp(argv[i], "--avoid") && i + 1 < argc) {
            const char *a = argv[++i];
            int known = !strcmp(a, "all");
            for (size_t k = 0; k < sizeof avoid_names / sizeof *avoid_names; k++)
                if (!strcmp(a, avoid_names[k])) {
                    g_avoid |= 1u << k;
                    known = 1;
                }
            if (!strcmp(a, "all"))
                g_avoid = ~0u;
            if (!known)
                usage();
            size_t l = strlen(g_avoid_args);
            snprintf(g_avoid_args + l, sizeof g_avoid_args - l, " --avoid %s", a);
        } else {
            usage();
        }
    }
    if (n < 0) {
        const char *env = getenv("EPODE_SIM_SCHEDULES");
        n = env && *env ? atoll(env) : have_seed ? 1 : 100000;
    }
    g_oversized = oversized;
    if (epode_global_init() < 0) {
        fprintf(stderr, "sim: epode_global_init failed\n");
        return 2;
    }
    static sim s;
    if (shrink) {
        if (!run_one(&s, seed, 0, chaos)) {
            printf("sim: seed %" PRIu64 " does not fail\n", seed);
            return 0;
        }
        /* the shortest chaos phase that fails the same way */
        char want[200], got[200];
        kind_of(s.why, want, sizeof want);
        long lo = 0;
        for (;; lo++) {
            if (!run_one(&s, seed, 0, lo))
                continue;
            kind_of(s.why, got, sizeof got);
            if (!strcmp(want, got))
                break;
        }
        printf("sim: seed %" PRIu64 " fails with a chaos phase of %ld steps: %s\n"
               "  replay: tests/sim/sim --seed %" PRIu64 " --chaos %ld%s --verbose\n",
               seed, lo, s.why, seed, lo, g_avoid_args);
        return 1;
    }
    long failures = 0, printed = 0;
    char kinds[32][200];
    long kind_n[32];
    uint64_t kind_seed[32];
    int nkinds = 0;
    long long total = n;
    /* the regression schedules first (not with --seed or --chaos) */
    for (long long i = have_seed || chaos >= 0 ? 0 : -(long long)n_regression; i < n; i++) {
        int regression = i < 0;
        const struct regression *rg = regression ? &regressions[i + (long long)n_regression] : NULL;
        uint64_t sd = rg ? rg->seed : seed + (uint64_t)i;
        long cap = rg ? rg->chaos : chaos;
        g_oversized = rg ? rg->oversized : oversized;
        if (regression)
            total++;
        if (!run_one(&s, sd, verbose, cap))
            continue;
        failures++;
        char k[200];
        kind_of(s.why, k, sizeof k);
        int j = 0;
        while (j < nkinds && strcmp(kinds[j], k) != 0)
            j++;
        if (j == nkinds && nkinds < 32) {
            snprintf(kinds[nkinds], sizeof kinds[nkinds], "%s", k);
            kind_n[nkinds] = 0;
            kind_seed[nkinds] = sd;
            nkinds++;
        }
        if (j < nkinds)
            kind_n[j]++;
        if (printed++ < print_max) {
            char capped[60] = "";
            if (cap >= 0)
                snprintf(capped, sizeof capped, " --chaos %ld", cap);
            if (rg && rg->oversized != oversized)
                strcat(capped, rg->oversized ? " --oversized 1" : " --oversized 0");
            printf("sim: %sseed %" PRIu64 "%s%s%s FAILED: %s\n"
                   "  replay: tests/sim/sim --seed %" PRIu64 "%s%s --verbose\n",
                   rg ? "regression " : "", sd, rg ? " (" : "", rg ? rg->bug : "", rg ? ")" : "",
                   s.why, sd, capped, g_avoid_args);
        }
    }
    for (int j = 0; j < nkinds; j++)
        printf("sim: %6ld x %s (first: seed %" PRIu64 ")\n", kind_n[j], kinds[j], kind_seed[j]);
    if (!shrink && n >= 10)
        printf("sim: reached: %ld cuts (%ld armed), %ld timeouts, %ld zombie links, %ld takeovers, "
               "%ld restarts (%ld losing state), %ld resumptions, %ld refused (%ld with h, %ld "
               "without, %ld unknown), %ld queued at a fresh READY (%ld arrived twice), %ld enable "
               "refused, %ld READY without SM, %ld schedules past 2^32, %ld with 100+ queued, %ld "
               "acked, %ld handed back, %ld clean closes, %ld give-ups, %ld unproven resumptions "
               "abandoned, %ld oversized stanzas pushed\n",
               g_cov.cuts, g_cov.armed_cuts, g_cov.timeouts, g_cov.zombies, g_cov.takeovers,
               g_cov.restarts, g_cov.restarts_lost, g_cov.resumed,
               g_cov.refused_h + g_cov.refused_no_h + g_cov.refused_unknown, g_cov.refused_h,
               g_cov.refused_no_h, g_cov.refused_unknown, g_cov.resent_after_refusal,
               g_cov.dup_allowed, g_cov.enable_failed, g_cov.no_sm_streams, g_cov.wrapped,
               g_cov.long_queue, g_cov.acked, g_cov.back, g_cov.graceful_close, g_cov.gave_up,
               g_cov.unproven, g_cov.oversized);
    char range[80] = "no seed range";
    if (n > 0)
        snprintf(range, sizeof range, "seed range %" PRIu64 "..%" PRIu64, seed, seed + (uint64_t)n - 1);
    printf("sim: %lld schedules, %ld failures (%s%s)\n", total, failures, range,
           total > n ? ", and the regression seeds" : "");
    return failures ? 1 : 0;
}
