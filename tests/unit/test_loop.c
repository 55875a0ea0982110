/* tests/unit/test_loop.c — the event loop: io readiness and interest
 * changes, stopping ios and timers from inside callbacks (ready events of
 * the same batch included), timer order and FIFO among equal deadlines,
 * zero-delay timers, the heap under random churn, run/stop/wakeup, the
 * external-loop contract (exact watch and timer announcements, process),
 * tens of thousands of fds, allocation failure, and overhead figures.
 * Tests named *_epoll and *_poll run the same body on each backend. */
#include "test.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "epode/common.h"
#include "loop/loop.h"

/* ---- helpers ------------------------------------------------------------ */

static const char *backend = "epoll";

static void use_backend(const char *name)
{
    backend = name;
    if (strcmp(name, "poll") == 0)
        setenv("EPODE_LOOP_BACKEND", "poll", 1);
    else
        unsetenv("EPODE_LOOP_BACKEND");
    alarm(60); /* a loop that blocks by mistake kills the run, loudly */
}

#define TEST_BOTH(name)                                                        \
    static void both_##name(void);                                             \
    TEST(name##_epoll)                                                         \
    {                                                                          \
        use_backend("epoll");                                                  \
        both_##name();                                                         \
    }                                                                          \
    TEST(name##_poll)                                                          \
    {                                                                          \
        use_backend("poll");                                                   \
        both_##name();                                                         \
    }                                                                          \
    static void both_##name(void)

/* A loop on the backend asked for (checked through backend_fd). */
static epode__loop *mk(void)
{
    epode__loop *l = NULL;
    if (epode__loop_new(NULL, &l) != 0)
        return NULL;
    int is_epoll = epode__loop_backend_fd(l) >= 0;
    if (is_epoll != (strcmp(backend, "epoll") == 0)) {
        epode__loop_free(l);
        return NULL;
    }
    return l;
}

static int pair(int sv[2])
{
    return socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv);
}

static void put(int fd)
{
    ssize_t n = write(fd, "x", 1);
    (void)n;
}

static void drain(int fd)
{
    char buf[4096];
    while (read(fd, buf, sizeof buf) > 0)
        ;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* What happened, in order: one letter and a number per event. */
static struct {
    int n;
    char what[256];
    long arg[256];
} trail;

static void trail_reset(void)
{
    trail.n = 0;
}

static void trail_add(char what, long arg)
{
    if (trail.n < 256) {
        trail.what[trail.n] = what;
        trail.arg[trail.n] = arg;
        trail.n++;
    }
}

/* An io owner that counts its calls and remembers the last revents. */
typedef struct watcher {
    epode__io io;
    int fd;
    int calls;
    unsigned last;
    char tag;
    int result; /* of a nested call made by the callback */
    struct watcher *other; /* for tests where one io acts on another */
    epode__loop *loop;
    epode__timer *timer;
} watcher;

static void on_io(void *user, unsigned revents)
{
    watcher *w = user;
    w->calls++;
    w->last = revents;
    trail_add(w->tag, (long)revents);
}

static void count_timer(void *user)
{
    int *n = user;
    (*n)++;
}

/* ---- io ------------------------------------------------------------------ */

TEST_BOTH(io_reports_read_readiness_level_triggered)
{
    epode__loop *l = mk();
    CHECK(l);
    int sv[2];
    CHECK_INT(pair(sv), 0);
    watcher w = {.fd = sv[0]};
    CHECK_INT(epode__io_start(l, &w.io, sv[0], EPODE__READ, on_io, &w), 0);
    CHECK_INT(epode__loop_run_once(l, 0), 0);
    CHECK_INT(w.calls, 0);

    put(sv[1]);
    CHECK_INT(epode__loop_run_once(l, -1), 1);
    CHECK_INT(w.calls, 1);
    CHECK_INT(w.last, EPODE__READ);
    /* Not drained: reported again. */
    CHECK_INT(epode__loop_run_once(l, 0), 1);
    CHECK_INT(w.calls, 2);
    drain(sv[0]);
    CHECK_INT(epode__loop_run_once(l, 0), 0);
    CHECK_INT(w.calls, 2);

    epode__io_stop(&w.io);
    CHECK_INT(w.io.active, 0);
    close(sv[0]);
    close(sv[1]);
    epode__loop_free(l);
}

TEST_BOTH(io_reports_pipe_write_and_read_readiness)
{
    epode__loop *l = mk();
    CHECK(l);
    int p[2];
    CHECK_INT(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
    watcher r = {.fd = p[0]}, w = {.fd = p[1]};
    CHECK_INT(epode__io_start(l, &r.io, p[0], EPODE__READ, on_io, &r), 0);
    CHECK_INT(epode__io_start(l, &w.io, p[1], EPODE__WRITE, on_io, &w), 0);

    CHECK_INT(epode__loop_run_once(l, 0), 1);
    CHECK_INT(w.calls, 1);
    CHECK_INT(w.last, EPODE__WRITE);
    CHECK_INT(r.calls, 0);

    /* Fill the pipe: the write end stops being ready, the read end is. */
    char buf[4096] = {0};
    while (write(p[1], buf, sizeof buf) > 0)
        ;
    CHECK_INT(epode__loop_run_once(l, 0), 1);
    CHECK_INT(r.calls, 1);
    CHECK_INT(r.last, EPODE__READ);
    CHECK_INT(w.calls, 1);

    drain(p[0]);
    CHECK_INT(epode__loop_run_once(l, 0), 1);
    CHECK_INT(w.calls, 2);
    CHECK_INT(r.calls, 1);

    epode__io_stop(&r.io);
    epode__io_stop(&w.io);
    close(p[0]);
    close(p[1]);
    epode__loop_free(l);
}

TEST_BOTH(io_set_changes_interest)
{
    epode__loop *l = mk();
    CHECK(l);
    int sv[2];
    CHECK_INT(pair(sv), 0);
    put(sv[1]); /* sv[0] is now readable and writable */
    watcher w = {.fd = sv[0]};
    CHECK_INT(epode__io_start(l, &w.io, sv[0], 0, on_io, &w), 0);
    CHECK_INT(epode__loop_run_once(l, 0), 0);

    CHECK_INT(epode__io_set(&w.io, EPODE__READ), 0);
    CHECK_INT(epode__loop_run_once(l, 0), 1);
    CHECK_INT(w.last, EPODE__READ);
    CHECK_INT(epode__io_set(&w.io, EPODE__WRITE), 0);
    CHECK_INT(epode__loop_run_once(l, 0), 1);
    CHECK_INT(w.last, EPODE__WRITE);
    CHECK_INT(epode__io_set(&w.io, EPODE__READ | EPODE__WRITE), 0);
    CHECK_INT(epode__io_set(&w.io, EPODE__READ | EPODE__WRITE), 0); /* unchanged */
    CHECK_INT(epode__loop_run_once(l, 0), 1);
    CHECK_INT(w.last, EPODE__READ | EPODE__WRITE);
    CHECK_INT(epode__io_set(&w.io, 0), 0);
    CHECK_INT(epode__loop_run_once(l, 0), 0);
    CHECK_INT(w.calls, 3);
    CHECK_INT(epode__io_set(&w.io, 4), EPODE_EINVAL);
    CHECK_INT(w.io.events, 0);

    epode__io_stop(&w.io);
    CHECK_INT(epode__io_set(&w.io, EPODE__READ), EPODE_ESTATE);
    close(sv[0]);
    close(sv[1]);
    epode__loop_free(l);
}

TEST_BOTH(io_hangup_is_reported_as_read_and_write)
{
    epode__loop *l = mk();
    CHECK(l);
    int p[2];
    CHECK_INT(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
    watcher r = {.fd = p[0]};
    CHECK_INT(epode__io_start(l, &r.io, p[0], EPODE__READ, on_io, &r), 0);
    close(p[1]);
    CHECK_INT(epode__loop_run_once(l, 0), 1);
    CHECK_INT(r.last, EPODE__READ | EPODE__WRITE);
    /* With no interest left, a hang-up is not reported (nor spun on). */
    CHECK_INT(epode__io_set(&r.io, 0), 0);
    CHECK_INT(epode__loop_run_once(l, 0), 0);
    epode__io_stop(&r.io);
    close(p[0]);
    epode__loop_free(l);
}

TEST_BOTH(io_start_rejects_bad_arguments)
{
    epode__loop *l = mk();
    CHECK(l);
    int sv[2];
    CHECK_INT(pair(sv), 0);
    watcher w = {0}, v = {0};
    CHECK_INT(epode__io_start(l, &w.io, -1, EPODE__READ, on_io, &w), EPODE_EINVAL);
    CHECK_INT(epode__io_start(l, &w.io, sv[0], 4, on_io, &w), EPODE_EINVAL);
    CHECK_INT(epode__io_start(l, &w.io, sv[0], EPODE__READ, NULL, &w), EPODE_EINVAL);
    CHECK_INT(w.io.active, 0);
    CHECK_INT(epode__io_start(l, &w.io, sv[0], EPODE__READ, on_io, &w), 0);
    CHECK_INT(epode__io_start(l, &w.io, sv[1], EPODE__READ, on_io, &w), EPODE_ESTATE);
    CHECK_INT(epode__io_start(l, &v.io, sv[0], EPODE__READ, on_io, &v), EPODE_ESTATE);
    CHECK_INT(v.io.active, 0);
    epode__io_stop(&w.io);
    epode__io_stop(&w.io); /* no-op */

    /* A regular file: epoll refuses it, poll reports it always ready. */
    int f = open("/proc/self/stat", O_RDONLY | O_CLOEXEC);
    CHECK(f >= 0);
    int rc = epode__io_start(l, &v.io, f, EPODE__READ, on_io, &v);
    if (strcmp(backend, "epoll") == 0) {
        CHECK_INT(rc, EPODE_EINVAL);
        CHECK_INT(v.io.active, 0);
    } else {
        CHECK_INT(rc, 0);
        epode__io_stop(&v.io);
    }
    close(f);
    close(sv[0]);
    close(sv[1]);
    epode__loop_free(l);
}

static void stop_self(void *user, unsigned revents)
{
    watcher *w = user;
    (void)revents;
    w->calls++;
    epode__io_stop(&w->io);
}

TEST_BOTH(io_stopped_inside_own_callback_is_not_called_again)
{
    epode__loop *l = mk();
    CHECK(l);
    int sv[2];
    CHECK_INT(pair(sv), 0);
    put(sv[1]);
    watcher w = {.fd = sv[0]};
    CHECK_INT(epode__io_start(l, &w.io, sv[0], EPODE__READ, stop_self, &w), 0);
    CHECK_INT(epode__loop_run_once(l, 0), 1);
    CHECK_INT(epode__loop_run_once(l, 0), 0);
    CHECK_INT(w.calls, 1);
    CHECK_INT(epode__loop_run(l), 0); /* nothing left: returns at once */
    close(sv[0]);
    close(sv[1]);
    epode__loop_free(l);
}

/* Whichever of two ready ios runs first stops the other. */
static void stop_other(void *user, unsigned revents)
{
    watcher *w = user;
    (void)revents;
    w->calls++;
    epode__io_stop(&w->other->io);
}

TEST_BOTH(io_stopped_by_another_in_the_same_batch_is_not_called)
{
    epode__loop *l = mk();
    CHECK(l);
    int a[2], b[2];
    CHECK_INT(pair(a), 0);
    CHECK_INT(pair(b), 0);
    put(a[1]);
    put(b[1]);
    watcher wa = {.fd = a[0]}, wb = {.fd = b[0]};
    wa.other = &wb;
    wb.other = &wa;
    CHECK_INT(epode__io_start(l, &wa.io, a[0], EPODE__READ, stop_other, &wa), 0);
    CHECK_INT(epode__io_start(l, &wb.io, b[0], EPODE__READ, stop_other, &wb), 0);
    CHECK_INT(epode__loop_run_once(l, 0), 1);
    CHECK_INT(wa.calls + wb.calls, 1);
    CHECK_INT(epode__loop_run_once(l, 0), 1); /* the survivor, still ready */
    CHECK_INT(wa.calls + wb.calls, 2);
    CHECK_INT(wa.io.active + wb.io.active, 1);
    epode__io_stop(&wa.io);
    epode__io_stop(&wb.io);
    close(a[0]), close(a[1]), close(b[0]), close(b[1]);
    epode__loop_free(l);
}

/* The first of two ready ios stops the other, closes its fd and starts a
 * new, ready io on the very same fd number within the batch. */
static watcher *swap_new;
static int swap_peer;

static void swap_other(void *user, unsigned revents)
{
    watcher *w = user;
    (void)revents;
    w->calls++;
    watcher *o = w->other;
    if (!o->io.active)
        return;
    int old = o->fd;
    epode__io_stop(&o->io);
    close(o->fd);
    int sv[2];
    if (pair(sv) != 0)
        return;
    swap_peer = sv[1];
    put(sv[1]);
    swap_new->fd = sv[0];
    if (sv[0] == old)
        epode__io_start(w->loop, &swap_new->io, sv[0], EPODE__READ, on_io, swap_new);
}

TEST_BOTH(io_started_in_a_batch_on_a_reused_fd_waits_for_the_next_turn)
{
    epode__loop *l = mk();
    CHECK(l);
    int a[2], b[2];
    CHECK_INT(pair(a), 0);
    CHECK_INT(pair(b), 0);
    put(a[1]);
    put(b[1]);
    watcher wa = {.fd = a[0], .loop = l}, wb = {.fd = b[0], .loop = l}, wc = {.tag = 'c'};
    wa.other = &wb;
    wb.other = &wa;
    swap_new = &wc;
    CHECK_INT(epode__io_start(l, &wa.io, a[0], EPODE__READ, swap_other, &wa), 0);
    CHECK_INT(epode__io_start(l, &wb.io, b[0], EPODE__READ, swap_other, &wb), 0);
    CHECK_INT(epode__loop_run_once(l, 0), 1);
    CHECK(wc.io.active); /* the fd number was reused */
    CHECK_INT(wc.calls, 0);
    CHECK_INT(epode__loop_run_once(l, 0), 2); /* survivor and newcomer */
    CHECK_INT(wc.calls, 1);
    watcher *survivor = wa.io.active ? &wa : &wb;
    epode__io_stop(&survivor->io);
    epode__io_stop(&wc.io);
    close(survivor->fd);
    close(wc.fd);
    close(swap_peer);
    close(a[1]), close(b[1]);
    epode__loop_free(l);
}

/* Each of two ready ios takes READ away from the other: the other's READ
 * event, already in the batch, is dropped. */
static void narrow_other(void *user, unsigned revents)
{
    watcher *w = user;
    (void)revents;
    w->calls++;
    epode__io_set(&w->other->io, EPODE__WRITE);
}

TEST_BOTH(io_set_in_a_batch_drops_events_no_longer_wanted)
{
    epode__loop *l = mk();
    CHECK(l);
    int a[2], b[2];
    CHECK_INT(pair(a), 0);
    CHECK_INT(pair(b), 0);
    put(a[1]);
    put(b[1]);
    watcher wa = {.fd = a[0]}, wb = {.fd = b[0]};
    wa.other = &wb;
    wb.other = &wa;
    CHECK_INT(epode__io_start(l, &wa.io, a[0], EPODE__READ, narrow_other, &wa), 0);
    CHECK_INT(epode__io_start(l, &wb.io, b[0], EPODE__READ, narrow_other, &wb), 0);
    CHECK_INT(epode__loop_run_once(l, 0), 1);
    CHECK_INT(wa.calls + wb.calls, 1);
    epode__io_stop(&wa.io);
    epode__io_stop(&wb.io);
    close(a[0]), close(a[1]), close(b[0]), close(b[1]);
    epode__loop_free(l);
}

/* Owners may free themselves (and their embedded handles) in callbacks. */
typedef struct owner {
    epode__io io;
    epode__timer timer;
    int fd;
    int *freed;
} owner;

static void owner_io_frees(void *user, unsigned revents)
{
    owner *o = user;
    (void)revents;
    epode__io_stop(&o->io);
    (*o->freed)++;
    free(o);
}

static void owner_timer_frees(void *user)
{
    owner *o = user;
    (*o->freed)++;
    free(o);
}

TEST_BOTH(handles_owners_may_free_themselves_in_callbacks)
{
    epode__loop *l = mk();
    CHECK(l);
    int sv[2];
    CHECK_INT(pair(sv), 0);
    put(sv[1]);
    int freed = 0;
    owner *a = calloc(1, sizeof *a), *b = calloc(1, sizeof *b);
    CHECK(a && b);
    a->freed = b->freed = &freed;
    CHECK_INT(epode__io_start(l, &a->io, sv[0], EPODE__READ, owner_io_frees, a), 0);
    epode__timer_init(l, &b->timer);
    CHECK_INT(epode__timer_start(&b->timer, 0, owner_timer_frees, b), 0);
    CHECK_INT(epode__loop_run(l), 0);
    CHECK_INT(freed, 2);
    close(sv[0]);
    close(sv[1]);
    epode__loop_free(l);
}

/* ---- timers ----------------------------------------------------------------- */

typedef struct stamp {
    epode__timer t;
    int id;
    uint64_t armed_ms, delay;
    uint64_t fired_ms;
} stamp;

static void stamp_fire(void *user)
{
    stamp *s = user;
    s->fired_ms = epode__now_ms();
    trail_add('t', s->id);
}

TEST_BOTH(timers_fire_in_deadline_order_and_never_early)
{
    epode__loop *l = mk();
    CHECK(l);
    trail_reset();
    static const uint64_t delays[] = {30, 10, 20, 0, 15};
    stamp s[5];
    for (int i = 0; i < 5; i++) {
        epode__timer_init(l, &s[i].t);
        s[i].id = i;
        s[i].delay = delays[i];
        s[i].armed_ms = epode__now_ms();
        CHECK_INT(epode__timer_start(&s[i].t, delays[i], stamp_fire, &s[i]), 0);
        CHECK(epode__timer_active(&s[i].t));
    }
    CHECK_INT(epode__loop_check_heap(l), 0);
    CHECK_INT(epode__loop_run(l), 0);
    CHECK_INT(trail.n, 5);
    static const long order[] = {3, 1, 4, 2, 0};
    for (int i = 0; i < 5; i++)
        CHECK_INT(trail.arg[i], order[i]);
    for (int i = 0; i < 5; i++) {
        CHECK(s[i].fired_ms >= s[i].armed_ms + s[i].delay);
        CHECK(!epode__timer_active(&s[i].t));
    }
    epode__loop_free(l);
}

TEST_BOTH(timers_with_equal_deadlines_fire_in_arming_order)
{
    epode__loop *l = mk();
    CHECK(l);
    trail_reset();
    enum { N = 200 };
    static stamp s[N];
    for (int i = 0; i < N; i++) {
        epode__timer_init(l, &s[i].t);
        s[i].id = i;
    }
    /* All in the same millisecond as far as the clock allows; arming
     * order is the tie-break, and re-arming moves a timer to the back. */
    for (int i = 0; i < N; i++)
        CHECK_INT(epode__timer_start(&s[i].t, 2, stamp_fire, &s[i]), 0);
    CHECK_INT(epode__timer_start(&s[0].t, 2, stamp_fire, &s[0]), 0);
    CHECK_INT(epode__timer_start(&s[10].t, 2, stamp_fire, &s[10]), 0);
    CHECK_INT(epode__loop_check_heap(l), 0);
    CHECK_INT(epode__loop_run(l), 0);
    CHECK_INT(trail.n, N);
    int k = 0;
    for (int i = 1; i < N; i++)
        if (i != 10)
            CHECK_INT(trail.arg[k++], i);
    CHECK_INT(trail.arg[k++], 0);
    CHECK_INT(trail.arg[k++], 10);
    epode__loop_free(l);
}

TEST_BOTH(zero_delay_timer_runs_after_pending_io_without_blocking)
{
    epode__loop *l = mk();
    CHECK(l);
    trail_reset();
    int sv[2];
    CHECK_INT(pair(sv), 0);
    put(sv[1]);
    watcher w = {.fd = sv[0], .tag = 'i'};
    CHECK_INT(epode__io_start(l, &w.io, sv[0], EPODE__READ, on_io, &w), 0);
    stamp s = {.id = 7};
    epode__timer_init(l, &s.t);
    CHECK_INT(epode__timer_start(&s.t, 0, stamp_fire, &s), 0);
    CHECK_INT(trail.n, 0); /* nothing runs inside the arming call */
    CHECK_INT(epode__loop_next_timeout(l), 0);
    CHECK_INT(epode__loop_run_once(l, -1), 2);
    CHECK_INT(trail.n, 2);
    CHECK_INT(trail.what[0], 'i');
    CHECK_INT(trail.what[1], 't');
    epode__io_stop(&w.io);

    /* Alone, with nothing else ready: run_once(-1) returns at once. */
    CHECK_INT(epode__timer_start(&s.t, 0, stamp_fire, &s), 0);
    uint64_t t0 = now_ns();
    CHECK_INT(epode__loop_run_once(l, -1), 1);
    CHECK((now_ns() - t0) < 100000000u);
    CHECK_INT(epode__loop_next_timeout(l), -1);
    close(sv[0]);
    close(sv[1]);
    epode__loop_free(l);
}

static stamp *flush_timer;

static void io_arms_flush(void *user, unsigned revents)
{
    on_io(user, revents);
    if (!epode__timer_active(&flush_timer->t))
        epode__timer_start(&flush_timer->t, 0, stamp_fire, flush_timer);
}

TEST_BOTH(zero_delay_timer_armed_by_io_runs_after_the_rest_of_that_turns_io)
{
    epode__loop *l = mk();
    CHECK(l);
    trail_reset();
    int a[2], b[2];
    CHECK_INT(pair(a), 0);
    CHECK_INT(pair(b), 0);
    put(a[1]);
    put(b[1]);
    watcher wa = {.fd = a[0], .tag = 'a'}, wb = {.fd = b[0], .tag = 'b'};
    stamp flush = {.id = 1};
    epode__timer_init(l, &flush.t);
    flush_timer = &flush;
    CHECK_INT(epode__io_start(l, &wa.io, a[0], EPODE__READ, io_arms_flush, &wa), 0);
    CHECK_INT(epode__io_start(l, &wb.io, b[0], EPODE__READ, io_arms_flush, &wb), 0);
    CHECK_INT(epode__loop_run_once(l, 0), 3);
    CHECK_INT(trail.n, 3);
    CHECK(trail.what[0] != 't' && trail.what[1] != 't');
    CHECK_INT(trail.what[2], 't');
    epode__io_stop(&wa.io);
    epode__io_stop(&wb.io);
    close(a[0]), close(a[1]), close(b[0]), close(b[1]);
    epode__loop_free(l);
}

static void rearm_zero(void *user)
{
    watcher *w = user;
    w->calls++;
    trail_add('t', w->calls);
    epode__timer_start(w->timer, 0, rearm_zero, w);
}

TEST_BOTH(zero_delay_timer_rearming_itself_runs_once_per_turn_and_lets_io_in)
{
    epode__loop *l = mk();
    CHECK(l);
    trail_reset();
    int sv[2];
    CHECK_INT(pair(sv), 0);
    put(sv[1]);
    watcher io = {.fd = sv[0], .tag = 'i'};
    CHECK_INT(epode__io_start(l, &io.io, sv[0], EPODE__READ, on_io, &io), 0);
    epode__timer t;
    epode__timer_init(l, &t);
    watcher tw = {.timer = &t};
    CHECK_INT(epode__timer_start(&t, 0, rearm_zero, &tw), 0);
    for (int turn = 1; turn <= 5; turn++) {
        CHECK_INT(epode__loop_run_once(l, -1), 2);
        CHECK_INT(tw.calls, turn);
        CHECK_INT(io.calls, turn);
    }
    for (int i = 0; i < 10; i++)
        CHECK_INT(trail.what[i], i % 2 ? 't' : 'i');
    epode__timer_stop(&t);
    epode__io_stop(&io.io);
    close(sv[0]);
    close(sv[1]);
    epode__loop_free(l);
}

static void periodic(void *user)
{
    watcher *w = user;
    w->calls++;
    if (w->calls < 5)
        epode__timer_start(w->timer, 1, periodic, w);
}

TEST_BOTH(timer_restarted_from_own_callback_repeats)
{
    epode__loop *l = mk();
    CHECK(l);
    epode__timer t;
    epode__timer_init(l, &t);
    watcher w = {.timer = &t};
    uint64_t t0 = epode__now_ms();
    CHECK_INT(epode__timer_start(&t, 1, periodic, &w), 0);
    CHECK_INT(epode__loop_run(l), 0);
    CHECK_INT(w.calls, 5);
    CHECK(epode__now_ms() - t0 >= 5);
    CHECK(!epode__timer_active(&t));
    epode__loop_free(l);
}

static epode__timer *victim;

static void stop_victim(void *user)
{
    count_timer(user);
    epode__timer_stop(victim);
}

TEST_BOTH(timer_stopped_by_another_due_timer_does_not_fire)
{
    epode__loop *l = mk();
    CHECK(l);
    epode__timer a, b;
    epode__timer_init(l, &a);
    epode__timer_init(l, &b);
    int na = 0, nb = 0;
    victim = &b;
    CHECK_INT(epode__timer_start(&a, 0, stop_victim, &na), 0);
    CHECK_INT(epode__timer_start(&b, 0, count_timer, &nb), 0);
    CHECK_INT(epode__loop_run_once(l, 0), 1);
    CHECK_INT(na, 1);
    CHECK_INT(nb, 0);
    CHECK(!epode__timer_active(&b));
    epode__timer_stop(&b); /* no-op */
    CHECK_INT(epode__loop_run(l), 0);
    CHECK_INT(nb, 0);
    epode__loop_free(l);
}

/* 10,000 timers under random start / restart / stop: the heap stays
 * ordered with correct back-indices, and running them fires each armed
 * one exactly once, in (deadline, arming) order. */
typedef struct churn {
    epode__timer t;
    int fired;
} churn;

static uint64_t last_due, last_seq;
static int order_ok, churn_fired;

static void churn_fire(void *user)
{
    churn *c = user;
    if (c->t.due < last_due || (c->t.due == last_due && c->t.seq < last_seq))
        order_ok = 0;
    last_due = c->t.due;
    last_seq = c->t.seq;
    c->fired++;
    churn_fired++;
}

TEST_BOTH(timer_heap_stays_valid_under_10k_random_starts_and_stops)
{
    epode__loop *l = mk();
    CHECK(l);
    enum { N = 10000, OPS = 60000 };
    churn *c = calloc(N, sizeof *c);
    CHECK(c);
    for (int i = 0; i < N; i++)
        epode__timer_init(l, &c[i].t);
    uint32_t seed = 12345;
    for (int op = 0; op < OPS; op++) {
        seed = seed * 1103515245u + 12345u;
        uint32_t r = seed >> 8;
        churn *x = &c[r % N];
        if ((r >> 14) % 3 == 0)
            epode__timer_stop(&x->t);
        else
            CHECK_INT(epode__timer_start(&x->t, (r >> 16) % 25, churn_fire, x), 0);
        if (op % 600 == 0)
            CHECK_INT(epode__loop_check_heap(l), 0);
    }
    CHECK_INT(epode__loop_check_heap(l), 0);
    int armed = 0;
    for (int i = 0; i < N; i++)
        armed += epode__timer_active(&c[i].t);
    CHECK(armed > N / 3);
    last_due = last_seq = 0;
    order_ok = 1;
    churn_fired = 0;
    CHECK_INT(epode__loop_run(l), 0);
    CHECK_INT(churn_fired, armed);
    CHECK(order_ok);
    for (int i = 0; i < N; i++)
        CHECK(c[i].fired <= 1);
    free(c);
    epode__loop_free(l);
}

TEST_BOTH(next_timeout_reports_the_nearest_deadline)
{
    epode__loop *l = mk();
    CHECK(l);
    epode__timer a, b;
    epode__timer_init(l, &a);
    epode__timer_init(l, &b);
    int n = 0;
    CHECK_INT(epode__loop_next_timeout(l), -1);
    CHECK_INT(epode__timer_start(&a, 5000, count_timer, &n), 0);
    long t = epode__loop_next_timeout(l);
    CHECK(t >= 4990 && t <= 5000);
    CHECK_INT(epode__timer_start(&b, 0, count_timer, &n), 0);
    CHECK_INT(epode__loop_next_timeout(l), 0);
    epode__timer_stop(&b);
    CHECK(epode__loop_next_timeout(l) > 4900);
    CHECK_INT(epode__timer_start(&a, 0, NULL, &n), EPODE_EINVAL);
    epode__timer_stop(&a);
    CHECK_INT(epode__loop_next_timeout(l), -1);
    CHECK_INT(n, 0);
    epode__loop_free(l);
}

/* ---- run / stop / wakeup ---------------------------------------------------- */

TEST_BOTH(run_returns_when_nothing_is_left)
{
    epode__loop *l = mk();
    CHECK(l);
    CHECK_INT(epode__loop_run(l), 0); /* only the wakeup fd: nothing to do */
    int sv[2];
    CHECK_INT(pair(sv), 0);
    put(sv[1]);
    watcher w = {.fd = sv[0]};
    CHECK_INT(epode__io_start(l, &w.io, sv[0], EPODE__READ, stop_self, &w), 0);
    epode__timer t;
    epode__timer_init(l, &t);
    int n = 0;
    CHECK_INT(epode__timer_start(&t, 10, count_timer, &n), 0);
    CHECK_INT(epode__loop_run(l), 0);
    CHECK_INT(w.calls, 1);
    CHECK_INT(n, 1);
    /* An io with no interest does not keep run() going either. */
    watcher idle = {0};
    CHECK_INT(epode__io_start(l, &idle.io, sv[0], 0, on_io, &idle), 0);
    CHECK_INT(epode__loop_run(l), 0);
    epode__io_stop(&idle.io);
    close(sv[0]);
    close(sv[1]);
    epode__loop_free(l);
}

static void stop_on_third(void *user)
{
    watcher *w = user;
    w->calls++;
    epode__timer_start(w->timer, 1, stop_on_third, w);
    if (w->calls % 3 == 0)
        epode__loop_stop(w->loop);
}

TEST_BOTH(stop_makes_run_return_after_the_turn)
{
    epode__loop *l = mk();
    CHECK(l);
    epode__timer t;
    epode__timer_init(l, &t);
    watcher w = {.timer = &t, .loop = l};
    CHECK_INT(epode__timer_start(&t, 1, stop_on_third, &w), 0);
    CHECK_INT(epode__loop_run(l), 0);
    CHECK_INT(w.calls, 3);
    CHECK(epode__timer_active(&t));
    CHECK_INT(epode__loop_run(l), 0); /* the flag was cleared */
    CHECK_INT(w.calls, 6);
    epode__loop_stop(l); /* before run: returns at once */
    CHECK_INT(epode__loop_run(l), 0);
    CHECK_INT(w.calls, 6);
    epode__timer_stop(&t);
    epode__loop_free(l);
}

static void *wake_later(void *arg)
{
    struct timespec ts = {0, 50 * 1000000};
    nanosleep(&ts, NULL);
    for (int i = 0; i < 3; i++)
        epode__loop_wakeup(arg);
    return NULL;
}

TEST_BOTH(wakeup_from_another_thread_unblocks_run_once)
{
    epode__loop *l = mk();
    CHECK(l);
    int woken = 0;
    epode__loop_on_wakeup(l, count_timer, &woken);
    pthread_t th;
    uint64_t t0 = now_ns();
    CHECK_INT(pthread_create(&th, NULL, wake_later, l), 0);
    int rc = epode__loop_run_once(l, -1);
    uint64_t waited = now_ns() - t0;
    pthread_join(th, NULL);
    CHECK(waited >= 40000000u);
    if (rc == 1) /* the three wakeups may straddle two turns */
        rc = epode__loop_run_once(l, 0);
    CHECK(rc >= 0);
    CHECK(woken >= 1 && woken <= 2);
    /* Drained: the next turn does not see it. */
    int before = woken;
    CHECK_INT(epode__loop_run_once(l, 0), 0);
    CHECK_INT(woken, before);
    /* Without a callback a wakeup still ends the wait; it runs nothing. */
    epode__loop_on_wakeup(l, NULL, NULL);
    CHECK_INT(epode__loop_wakeup(l), 0);
    CHECK_INT(epode__loop_run_once(l, -1), 0);
    epode__loop_free(l);
}

static void nested_run(void *user)
{
    watcher *w = user;
    w->result = epode__loop_run_once(w->loop, 0);
}

TEST_BOTH(run_once_refuses_to_nest)
{
    epode__loop *l = mk();
    CHECK(l);
    epode__timer t;
    epode__timer_init(l, &t);
    watcher w = {.loop = l};
    CHECK_INT(epode__timer_start(&t, 0, nested_run, &w), 0);
    CHECK_INT(epode__loop_run_once(l, 0), 1);
    CHECK_INT(w.result, EPODE_ESTATE);
    CHECK_INT(epode__loop_process(l, -1, 0), EPODE_ESTATE); /* not external */
    epode__loop_free(l);
}

TEST(backend_fd_is_the_epoll_fd_and_readable_when_io_is_ready)
{
    use_backend("epoll");
    epode__loop *l = mk();
    CHECK(l);
    int efd = epode__loop_backend_fd(l);
    CHECK(efd >= 0);
    int sv[2];
    CHECK_INT(pair(sv), 0);
    watcher w = {.fd = sv[0]};
    CHECK_INT(epode__io_start(l, &w.io, sv[0], EPODE__READ, on_io, &w), 0);
    struct pollfd p = {.fd = efd, .events = POLLIN};
    CHECK_INT(poll(&p, 1, 0), 0);
    put(sv[1]);
    CHECK_INT(poll(&p, 1, 0), 1);
    CHECK_INT(epode__loop_run_once(l, 0), 1);
    epode__io_stop(&w.io);
    close(sv[0]);
    close(sv[1]);
    epode__loop_free(l);
}

/* ---- external mode ---------------------------------------------------------- */

/* What the application was told: watch calls ('w', fd, events, fd_user)
 * and timer calls ('t', ms). */
typedef struct told {
    char kind;
    int fd;
    unsigned events;
    void *fd_user;
    long ms;
    int fd_open; /* the fd was still open when told */
} told;

static struct {
    int n;
    told e[128];
    epode__loop *loop;
    void *assign_on_first; /* assign this pointer when an fd is first watched */
} app;

static void app_reset(epode__loop *l)
{
    memset(&app, 0, sizeof app);
    app.loop = l;
}

static void app_watch(void *user, int fd, unsigned events, void *fd_user)
{
    (void)user;
    if (app.n < 128)
        app.e[app.n++] = (told){'w', fd, events, fd_user, 0, fcntl(fd, F_GETFD) != -1};
    if (app.assign_on_first && events && !fd_user)
        epode__loop_assign(app.loop, fd, app.assign_on_first);
}

static void app_timer(void *user, long ms)
{
    (void)user;
    if (app.n < 128)
        app.e[app.n++] = (told){'t', -1, 0, NULL, ms, 1};
}

/* Checks the i-th announcement is a watch of fd for events. */
#define CHECK_WATCH(i, f, ev)                                                  \
    do {                                                                       \
        CHECK((i) < app.n);                                                    \
        CHECK_INT(app.e[i].kind, 'w');                                         \
        CHECK_INT(app.e[i].fd, f);                                             \
        CHECK_INT(app.e[i].events, ev);                                        \
    } while (0)

#define CHECK_TIMER(i, lo, hi)                                                 \
    do {                                                                       \
        CHECK((i) < app.n);                                                    \
        CHECK_INT(app.e[i].kind, 't');                                         \
        CHECK(app.e[i].ms >= (lo) && app.e[i].ms <= (hi));                     \
    } while (0)

/* Switches l to external mode; returns the wakeup fd it announces. */
static int go_external(epode__loop *l)
{
    app_reset(l);
    if (epode__loop_set_external(l, app_watch, app_timer, NULL) != 0)
        return -1;
    if (app.n != 1 || app.e[0].kind != 'w' || app.e[0].events != EPODE__READ)
        return -1;
    int fd = app.e[0].fd;
    app.n = 0;
    return fd;
}

TEST(external_watch_announces_exactly_the_changes)
{
    use_backend("epoll");
    epode__loop *l = mk();
    CHECK(l);
    int wake = go_external(l);
    CHECK(wake >= 0);
    CHECK_INT(epode__loop_backend_fd(l), -1); /* no backend in external mode */
    int sv[2];
    CHECK_INT(pair(sv), 0);
    watcher a = {.fd = sv[0]}, b = {.fd = sv[1]};
    CHECK_INT(epode__io_start(l, &a.io, sv[0], 0, on_io, &a), 0);
    CHECK_INT(epode__io_set(&a.io, EPODE__READ), 0);
    CHECK_INT(epode__io_set(&a.io, EPODE__READ), 0);
    CHECK_INT(epode__io_set(&a.io, EPODE__READ | EPODE__WRITE), 0);
    CHECK_INT(epode__io_set(&a.io, EPODE__WRITE), 0);
    CHECK_INT(epode__io_set(&a.io, 0), 0);
    CHECK_INT(epode__io_set(&a.io, 0), 0);
    CHECK_INT(epode__io_set(&a.io, EPODE__READ), 0);
    CHECK_INT(epode__io_start(l, &b.io, sv[1], EPODE__READ | EPODE__WRITE, on_io, &b), 0);
    epode__io_stop(&a.io);
    epode__io_stop(&a.io);
    CHECK_INT(epode__io_set(&b.io, 0), 0);
    epode__io_stop(&b.io); /* already told "removed" by set(0) */

    CHECK_INT(app.n, 8);
    CHECK_WATCH(0, sv[0], EPODE__READ);
    CHECK_WATCH(1, sv[0], EPODE__READ | EPODE__WRITE);
    CHECK_WATCH(2, sv[0], EPODE__WRITE);
    CHECK_WATCH(3, sv[0], 0);
    CHECK_WATCH(4, sv[0], EPODE__READ);
    CHECK_WATCH(5, sv[1], EPODE__READ | EPODE__WRITE);
    CHECK_WATCH(6, sv[0], 0);
    CHECK_WATCH(7, sv[1], 0);
    for (int i = 0; i < app.n; i++)
        CHECK(app.e[i].fd_open); /* removal is said before the fd closes */
    CHECK_INT(a.calls + b.calls, 0); /* no io callback outside process */
    close(sv[0]);
    close(sv[1]);

    app.n = 0;
    epode__loop_free(l);
    CHECK_INT(app.n, 1);
    CHECK_WATCH(0, wake, 0);
    CHECK(app.e[0].fd_open);
}

TEST(external_existing_interests_are_announced_at_the_switch)
{
    use_backend("epoll");
    epode__loop *l = mk();
    CHECK(l);
    int sv[2];
    CHECK_INT(pair(sv), 0);
    watcher a = {.fd = sv[0]}, b = {.fd = sv[1]};
    CHECK_INT(epode__io_start(l, &a.io, sv[0], EPODE__WRITE, on_io, &a), 0);
    CHECK_INT(epode__io_start(l, &b.io, sv[1], 0, on_io, &b), 0);
    epode__timer t;
    epode__timer_init(l, &t);
    int n = 0;
    CHECK_INT(epode__timer_start(&t, 1000, count_timer, &n), 0);
    app_reset(l);
    CHECK_INT(epode__loop_set_external(l, app_watch, app_timer, NULL), 0);
    CHECK_INT(app.n, 3);
    /* In fd order: the wakeup fd was made before the pair. */
    CHECK_INT(app.e[0].kind, 'w');
    CHECK(app.e[0].fd < sv[0]);
    CHECK_INT(app.e[0].events, EPODE__READ);
    CHECK_WATCH(1, sv[0], EPODE__WRITE);
    CHECK_TIMER(2, 990, 1000);
    CHECK_INT(epode__loop_set_external(l, app_watch, app_timer, NULL), EPODE_ESTATE);
    CHECK_INT(epode__loop_run_once(l, 0), EPODE_ESTATE);
    CHECK_INT(epode__loop_run(l), EPODE_ESTATE);
    epode__timer_stop(&t);
    epode__io_stop(&a.io);
    epode__io_stop(&b.io);
    close(sv[0]);
    close(sv[1]);
    epode__loop_free(l);
    CHECK_INT(n, 0);
}

TEST(external_assigned_pointer_is_given_back_until_removal)
{
    use_backend("epoll");
    epode__loop *l = mk();
    CHECK(l);
    CHECK(go_external(l) >= 0);
    int marker;
    app.assign_on_first = &marker;
    int sv[2];
    CHECK_INT(pair(sv), 0);
    watcher a = {.fd = sv[0]};
    CHECK_INT(epode__io_start(l, &a.io, sv[0], EPODE__READ, on_io, &a), 0);
    CHECK_INT(epode__io_set(&a.io, EPODE__WRITE), 0);
    epode__io_stop(&a.io);
    app.assign_on_first = NULL;
    CHECK_INT(epode__io_start(l, &a.io, sv[0], EPODE__READ, on_io, &a), 0);
    epode__io_stop(&a.io);
    CHECK_INT(app.n, 5);
    CHECK(app.e[0].fd_user == NULL);    /* first told, then assigned */
    CHECK(app.e[1].fd_user == &marker); /* WRITE */
    CHECK(app.e[2].fd_user == &marker); /* removed */
    CHECK(app.e[3].fd_user == NULL);    /* forgotten with the removal */
    CHECK(app.e[4].fd_user == NULL);
    CHECK_INT(epode__loop_assign(l, -1, &marker), EPODE_ENOTFOUND);
    CHECK_INT(epode__loop_assign(l, sv[0], &marker), EPODE_ENOTFOUND); /* stopped */
    CHECK_INT(epode__loop_assign(l, 100000, &marker), EPODE_ENOTFOUND);
    close(sv[0]);
    close(sv[1]);
    epode__loop_free(l);
}

TEST(external_timer_announces_each_change_of_the_next_deadline)
{
    use_backend("epoll");
    epode__loop *l = mk();
    CHECK(l);
    CHECK(go_external(l) >= 0);
    epode__timer a, b, c, d;
    epode__timer_init(l, &a);
    epode__timer_init(l, &b);
    epode__timer_init(l, &c);
    epode__timer_init(l, &d);
    int n = 0;
    CHECK_INT(epode__timer_start(&a, 1000, count_timer, &n), 0); /* → 1000 */
    CHECK_INT(epode__timer_start(&b, 2000, count_timer, &n), 0); /* top unchanged */
    CHECK_INT(epode__timer_start(&c, 500, count_timer, &n), 0);  /* → 500 */
    epode__timer_stop(&c);                                       /* → 1000 */
    CHECK_INT(epode__timer_start(&a, 3000, count_timer, &n), 0); /* → 2000 (b) */
    CHECK_INT(epode__timer_start(&d, 0, count_timer, &n), 0);    /* → 0 */
    epode__timer_stop(&d);                                       /* → 2000 */
    epode__timer_stop(&b);                                       /* → 3000 */
    epode__timer_stop(&a);                                       /* → -1 */
    epode__timer_stop(&a);                                       /* nothing */
    CHECK_INT(app.n, 8);
    CHECK_TIMER(0, 990, 1000);
    CHECK_TIMER(1, 490, 500);
    CHECK_TIMER(2, 980, 1000);
    CHECK_TIMER(3, 1980, 2000);
    CHECK_TIMER(4, 0, 0);
    CHECK_TIMER(5, 1980, 2000);
    CHECK_TIMER(6, 2980, 3000);
    CHECK_TIMER(7, -1, -1);
    CHECK_INT(n, 0); /* and nothing ran */
    epode__loop_free(l);
}

static void io_calls_process(void *user, unsigned revents)
{
    watcher *w = user;
    w->calls++;
    w->last = revents;
    w->result = epode__loop_process(w->loop, -1, 0);
}

TEST(external_process_runs_the_fds_callback_then_due_timers)
{
    use_backend("epoll");
    epode__loop *l = mk();
    CHECK(l);
    CHECK(go_external(l) >= 0);
    int sv[2];
    CHECK_INT(pair(sv), 0);
    put(sv[1]);
    watcher a = {.fd = sv[0], .loop = l};
    CHECK_INT(epode__io_start(l, &a.io, sv[0], EPODE__READ, io_calls_process, &a), 0);
    epode__timer t, later;
    epode__timer_init(l, &t);
    epode__timer_init(l, &later);
    int n = 0, m = 0;
    CHECK_INT(epode__timer_start(&t, 0, count_timer, &n), 0);
    CHECK_INT(epode__timer_start(&later, 60000, count_timer, &m), 0);
    CHECK_INT(a.calls + n, 0);
    CHECK_INT(app.n, 2);
    CHECK_WATCH(0, sv[0], EPODE__READ);
    CHECK_TIMER(1, 0, 0);
    app.n = 0;

    CHECK_INT(epode__loop_process(l, sv[0], EPODE__READ), 2);
    CHECK_INT(a.calls, 1);
    CHECK_INT(a.last, EPODE__READ);
    CHECK_INT(a.result, EPODE_ESTATE); /* process does not nest */
    CHECK_INT(n, 1);
    CHECK_INT(m, 0);
    CHECK_INT(app.n, 1); /* the next deadline moved to `later` */
    CHECK_TIMER(0, 59990, 60000);
    app.n = 0;

    /* Events the io does not want, unknown fds and early timers: nothing. */
    CHECK_INT(epode__loop_process(l, sv[0], EPODE__WRITE), 0);
    CHECK_INT(epode__loop_process(l, 999, EPODE__READ), 0);
    CHECK_INT(app.n, 0);
    /* Both bits for an error: the io gets what it wants. */
    CHECK_INT(epode__loop_process(l, sv[0], EPODE__READ | EPODE__WRITE), 1);
    CHECK_INT(a.last, EPODE__READ);
    epode__timer_stop(&later);
    epode__io_stop(&a.io);
    CHECK_INT(epode__loop_process(l, sv[0], EPODE__READ), 0); /* stale */
    CHECK_INT(a.calls, 2);
    close(sv[0]);
    close(sv[1]);
    epode__loop_free(l);
}

static epode__timer burst[3];

static void start_burst(void *user)
{
    count_timer(user);
    epode__timer_start(&burst[0], 20000, count_timer, user);
    epode__timer_start(&burst[1], 5000, count_timer, user);
    epode__timer_start(&burst[2], 10000, count_timer, user);
    epode__timer_stop(&burst[1]);
}

TEST(external_timer_changes_inside_process_are_announced_once_at_the_end)
{
    use_backend("epoll");
    epode__loop *l = mk();
    CHECK(l);
    CHECK(go_external(l) >= 0);
    epode__timer t;
    epode__timer_init(l, &t);
    for (int i = 0; i < 3; i++)
        epode__timer_init(l, &burst[i]);
    int n = 0;
    CHECK_INT(epode__timer_start(&t, 0, start_burst, &n), 0);
    app.n = 0;
    CHECK_INT(epode__loop_process(l, -1, 0), 1);
    CHECK_INT(n, 1);
    CHECK_INT(app.n, 1);
    CHECK_TIMER(0, 9990, 10000);
    for (int i = 0; i < 3; i++)
        epode__timer_stop(&burst[i]);
    epode__loop_free(l);
}

TEST(external_timer_fired_early_is_announced_again)
{
    use_backend("epoll");
    epode__loop *l = mk();
    CHECK(l);
    CHECK(go_external(l) >= 0);
    int sv[2];
    CHECK_INT(pair(sv), 0);
    watcher a = {.fd = sv[0]};
    CHECK_INT(epode__io_start(l, &a.io, sv[0], EPODE__READ, on_io, &a), 0);
    epode__timer t;
    epode__timer_init(l, &t);
    int n = 0;
    CHECK_INT(epode__timer_start(&t, 5000, count_timer, &n), 0);
    app.n = 0;
    /* io activity leaves the application's timer running: no call. */
    CHECK_INT(epode__loop_process(l, sv[0], EPODE__READ), 1);
    CHECK_INT(app.n, 0);
    /* Its timer fired (early): it is spent, so the deadline is repeated. */
    CHECK_INT(epode__loop_process(l, -1, 0), 0);
    CHECK_INT(n, 0);
    CHECK_INT(app.n, 1);
    CHECK_TIMER(0, 4990, 5000);
    epode__timer_stop(&t);
    CHECK_INT(app.n, 2);
    CHECK_TIMER(1, -1, -1);
    epode__io_stop(&a.io);
    close(sv[0]);
    close(sv[1]);
    epode__loop_free(l);
}

TEST(external_wakeup_fd_is_watched_like_any_other)
{
    use_backend("epoll");
    epode__loop *l = mk();
    CHECK(l);
    int wake = go_external(l);
    CHECK(wake >= 0);
    int woken = 0;
    epode__loop_on_wakeup(l, count_timer, &woken);
    struct pollfd p = {.fd = wake, .events = POLLIN};
    CHECK_INT(poll(&p, 1, 0), 0);
    pthread_t th;
    CHECK_INT(pthread_create(&th, NULL, wake_later, l), 0);
    CHECK_INT(poll(&p, 1, 5000), 1);
    pthread_join(th, NULL);
    CHECK_INT(epode__loop_process(l, wake, EPODE__READ), 1);
    CHECK_INT(woken, 1);
    CHECK_INT(poll(&p, 1, 0), 0); /* drained */
    epode__loop_free(l);
}

/* ---- many fds --------------------------------------------------------------- */

typedef struct many {
    epode__io io;
    int fd;
    int *done;
} many;

static void many_ready(void *user, unsigned revents)
{
    many *m = user;
    uint64_t v;
    (void)revents;
    if (read(m->fd, &v, sizeof v) == (ssize_t)sizeof v)
        (*m->done)++;
    epode__io_stop(&m->io);
}

TEST_BOTH(tens_of_thousands_of_fds)
{
    struct rlimit rl;
    CHECK_INT(getrlimit(RLIMIT_NOFILE, &rl), 0);
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    long want = rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > 30064 ? 30000
                                                                    : (long)rl.rlim_cur - 64;
    if (want < 2000) {
        printf("# skipped: RLIMIT_NOFILE hard limit %ld is too low\n", (long)rl.rlim_max);
        return;
    }
    epode__loop *l = mk();
    CHECK(l);
    many *m = calloc((size_t)want, sizeof *m);
    CHECK(m);
    int done = 0, highest = 0;
    long n = 0;
    while (n < want) {
        int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (fd < 0)
            break; /* out of fds: test with what we have */
        m[n].fd = fd;
        m[n].done = &done;
        if (fd > highest)
            highest = fd;
        CHECK_INT(epode__io_start(l, &m[n].io, fd, EPODE__READ, many_ready, &m[n]), 0);
        n++;
    }
    CHECK(n >= 2000);
    CHECK_INT(epode__loop_run_once(l, 0), 0);
    uint64_t t0 = now_ns();
    uint64_t one = 1;
    for (long i = 0; i < n; i++)
        CHECK_INT(write(m[i].fd, &one, sizeof one), (ssize_t)sizeof one);
    int turns = 0;
    while (done < n && turns < 1000) {
        CHECK(epode__loop_run_once(l, 1000) > 0);
        turns++;
    }
    double ms = (double)(now_ns() - t0) / 1e6;
    CHECK_INT(done, n);
    printf("# %s: %ld fds (highest %d), all ready, dispatched in %d turns, %.1f ms\n", backend, n,
           highest, turns, ms);
    CHECK_INT(epode__loop_run(l), 0); /* all stopped themselves */
    for (long i = 0; i < n; i++)
        close(m[i].fd);
    free(m);
    epode__loop_free(l);
}

/* ---- allocation failure ------------------------------------------------------ */

typedef struct failing {
    long calls, live, fail_at, fail_from;
} failing;

static int fail_now(failing *f)
{
    f->calls++;
    return (f->fail_at && f->calls == f->fail_at) || (f->fail_from && f->calls >= f->fail_from);
}

static void *f_malloc(size_t size, void *user)
{
    failing *f = user;
    if (fail_now(f))
        return NULL;
    void *p = malloc(size);
    if (p)
        f->live++;
    return p;
}

static void *f_realloc(void *ptr, size_t size, void *user)
{
    failing *f = user;
    if (fail_now(f))
        return NULL;
    void *p = realloc(ptr, size);
    if (p && !ptr)
        f->live++;
    return p;
}

static void f_free(void *ptr, void *user)
{
    failing *f = user;
    if (ptr)
        f->live--;
    free(ptr);
}

/* Makes a loop, an io on a high fd (the fd tables must grow) and 40
 * timers (the heap must grow), runs a turn, tears down. Returns the first
 * error. */
static int scenario(const epode_mem_t *mem, int high_fd)
{
    epode__loop *l = NULL;
    int rc = epode__loop_new(mem, &l);
    if (rc)
        return rc;
    watcher w = {0};
    epode__timer t[40];
    int n = 0, started = 0;
    rc = epode__io_start(l, &w.io, high_fd, EPODE__READ, on_io, &w);
    for (; rc == 0 && started < 40; started++) {
        rc = epode__timer_init(l, &t[started]); /* makes its heap slot */
        if (rc == 0)
            rc = epode__timer_start(&t[started], 0, count_timer, &n);
        if (rc) {
            if (epode__timer_active(&t[started]))
                rc = EPODE_EINVAL; /* a failed init must leave it unarmed */
            break;
        }
    }
    if (rc == 0) {
        int ran = epode__loop_run_once(l, 0);
        if (ran != 40)
            rc = ran < 0 ? ran : EPODE_EINVAL;
    }
    for (int i = 0; i < started; i++)
        epode__timer_stop(&t[i]);
    if (!w.io.active && rc == 0)
        rc = EPODE_EINVAL;
    epode__io_stop(&w.io);
    epode__loop_free(l);
    return rc;
}

TEST_BOTH(allocation_failure_gives_enomem_without_leaks)
{
    int sv[2];
    CHECK_INT(pair(sv), 0);
    int high = fcntl(sv[0], F_DUPFD_CLOEXEC, 1500);
    CHECK(high >= 1500);

    /* Plain loop_new: each allocation failing in turn. */
    int k;
    for (k = 1; k < 100; k++) {
        failing f = {.fail_at = k};
        epode_mem_t mem = {f_malloc, f_realloc, f_free, &f};
        epode__loop *l = (epode__loop *)&f;
        int rc = epode__loop_new(&mem, &l);
        if (rc == 0) {
            epode__loop_free(l);
            CHECK_INT(f.live, 0);
            break;
        }
        CHECK_INT(rc, EPODE_ENOMEM);
        CHECK(l == (epode__loop *)&f); /* output untouched */
        CHECK_INT(f.live, 0);
    }
    CHECK(k > 1 && k < 100);

    /* The whole scenario, failing the k-th and every later allocation,
     * and failing only the k-th. */
    int sweeps = 0;
    for (int mode = 0; mode < 2; mode++) {
        for (k = 1; k < 200; k++) {
            failing f = {0};
            if (mode)
                f.fail_at = k;
            else
                f.fail_from = k;
            epode_mem_t mem = {f_malloc, f_realloc, f_free, &f};
            int rc = scenario(&mem, high);
            CHECK_INT(f.live, 0);
            if (rc == 0 && f.calls < k)
                break; /* no allocation left to fail */
            if (rc != 0)
                CHECK_INT(rc, EPODE_ENOMEM);
            sweeps++;
        }
        CHECK(k < 200);
    }
    CHECK(sweeps > 6);
    /* And with a working allocator it all succeeds. */
    failing f = {0};
    epode_mem_t mem = {f_malloc, f_realloc, f_free, &f};
    CHECK_INT(scenario(&mem, high), 0);
    CHECK_INT(f.live, 0);
    close(high);
    close(sv[0]);
    close(sv[1]);
}

/* Initialized timers have their heap slots: starting them all at once
 * never allocates, so it cannot fail for lack of memory; deinit gives
 * the slots back to the next timers made. */
TEST(timer_start_needs_no_memory_once_initialized)
{
    failing f = {0};
    epode_mem_t mem = {f_malloc, f_realloc, f_free, &f};
    epode__loop *l = NULL;
    CHECK_INT(epode__loop_new(&mem, &l), 0);
    epode__timer t[64]; /* the heap doubles from 16: exactly full */
    int n = 0;
    for (int i = 0; i < 64; i++)
        CHECK_INT(epode__timer_init(l, &t[i]), 0);
    f.fail_from = f.calls + 1; /* nothing can be allocated from now on */
    for (int i = 0; i < 64; i++)
        CHECK_INT(epode__timer_start(&t[i], 0, count_timer, &n), 0);
    CHECK_INT(epode__loop_check_heap(l), 0);
    CHECK_INT(epode__loop_run_once(l, 0), 64);
    for (int i = 0; i < 64; i++)
        epode__timer_deinit(&t[i]);
    for (int i = 0; i < 64; i++) /* the slots given back are used again */
        CHECK_INT(epode__timer_init(l, &t[i]), 0);
    epode__timer extra;
    CHECK_INT(epode__timer_init(l, &extra), EPODE_ENOMEM); /* a 65th needs more */
    CHECK(!epode__timer_active(&extra));
    CHECK_INT(epode__timer_start(&extra, 0, count_timer, &n), EPODE_EINVAL);
    epode__timer_deinit(&extra); /* no-op: it belongs to no loop */
    for (int i = 0; i < 64; i++)
        epode__timer_deinit(&t[i]);
    epode__loop_free(l);
    CHECK_INT(f.live, 0);
}

/* ---- overhead figures ---------------------------------------------------------- */

static void noop_timer(void *user)
{
    (void)user;
}

TEST_BOTH(overhead_per_turn_and_per_timer)
{
    long n = 200000;
    const char *env = getenv("EPODE_LOOP_BENCH_N");
    if (env && atol(env) > 0)
        n = atol(env);
    epode__loop *l = mk();
    CHECK(l);
    int sv[2];
    CHECK_INT(pair(sv), 0);
    watcher w = {0}; /* one idle socket: the wait has something to look at */
    CHECK_INT(epode__io_start(l, &w.io, sv[0], EPODE__READ, on_io, &w), 0);

    uint64_t t0 = now_ns();
    for (long i = 0; i < n; i++)
        epode__loop_run_once(l, 0);
    double idle = (double)(now_ns() - t0) / (double)n;

    epode__timer t;
    epode__timer_init(l, &t);
    t0 = now_ns();
    for (long i = 0; i < n; i++) {
        epode__timer_start(&t, 0, noop_timer, NULL);
        epode__loop_run_once(l, 0);
    }
    double with_timer = (double)(now_ns() - t0) / (double)n;

    /* Start + stop with 10,000 other timers armed (heap depth ~13). */
    enum { ARMED = 10000 };
    epode__timer *many = calloc(ARMED, sizeof *many);
    CHECK(many);
    for (int i = 0; i < ARMED; i++) {
        epode__timer_init(l, &many[i]);
        CHECK_INT(epode__timer_start(&many[i], 60000 + (uint64_t)i % 977, noop_timer, NULL), 0);
    }
    t0 = now_ns();
    for (long i = 0; i < n; i++) {
        epode__timer_start(&t, 30000 + (uint64_t)i % 60000, noop_timer, NULL);
        epode__timer_stop(&t);
    }
    double startstop = (double)(now_ns() - t0) / (double)n;
    for (int i = 0; i < ARMED; i++)
        epode__timer_stop(&many[i]);
    free(many);

    printf("# %s, %ld iterations: idle run_once(0) %.0f ns/turn; +1 zero-delay timer "
           "%.0f ns/turn (%.0f ns per timer); start+stop among %d timers %.0f ns\n",
           backend, n, idle, with_timer, with_timer - idle, ARMED, startstop);
    epode__io_stop(&w.io);
    close(sv[0]);
    close(sv[1]);
    epode__loop_free(l);
}

TEST_MAIN
