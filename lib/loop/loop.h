/* lib/loop/loop.h — the event loop layer: watched fds, one-shot timers,
 * the built-in loop (epoll, poll fallback) and the external-loop contract
 * (DESIGN.md "Event-loop integration"). Handles are embedded in their
 * owner's struct (libuv style): no allocation per fd or timer, and the
 * owner's lifetime is the handle's. Nothing here knows XMPP.
 *
 * Threads: a loop and its handles belong to one thread; the only
 * function another thread may call is epode__loop_wakeup().
 *
 * When callbacks run. epode's own io and timer callbacks run only inside
 * epode__loop_run_once(), epode__loop_run() and epode__loop_process(),
 * never inside the call that armed them (io_start on a ready fd, a timer
 * of 0 ms, …). Turn order: wait for io (not at all if a timer is due),
 * dispatch every ready io, then run the timers due at that moment. A
 * timer armed from an io callback with 0 ms therefore runs at the end of
 * the same turn, after the rest of that turn's io (this is how "process
 * now" work such as flushing queued stanzas is batched); one armed from a
 * timer callback runs in the next turn, after that turn's io poll, so a
 * timer re-arming itself with 0 ms cannot starve io.
 *
 * External mode. The application's watch and timer callbacks (see
 * epode__loop_set_external) are its own bookkeeping, like curl's socket
 * and timer callbacks: they are called synchronously from the call that
 * changes what epode waits for — io_start/io_set/io_stop for watch (so
 * "removed" is always said before the owner closes the fd), and
 * timer_start/timer_stop for timer. Both are diffed: no call when nothing
 * changed. Inside epode__loop_process() timer announcements are coalesced
 * and made once, when process returns. The application's callbacks must
 * not call back into epode, except epode__loop_assign() from watch. */
#ifndef EPODE__LOOP_H
#define EPODE__LOOP_H

#include <stddef.h>
#include <stdint.h>

#include "epode/common.h"

enum { EPODE__READ = 1, EPODE__WRITE = 2 }; /* same values as EPODE_EV_* */

typedef struct epode__loop epode__loop;

/* Called with the events that are ready (EPODE__READ|EPODE__WRITE; an
 * error or hang-up is reported as READ|WRITE so the owner's next read or
 * write sees it). Ready events the owner no longer wants are dropped. */
typedef void (*epode__io_cb)(void *user, unsigned revents);
typedef void (*epode__timer_cb)(void *user);

typedef struct epode__io {
    epode__loop *loop;
    int fd;
    unsigned events;  /* what the owner wants now */
    unsigned applied; /* what the backend / application was last told */
    epode__io_cb cb;
    void *user;
    int active;
} epode__io;

typedef struct epode__timer {
    epode__loop *loop;
    uint64_t due;     /* monotonic ms */
    uint64_t seq;     /* FIFO order among equal deadlines */
    size_t heap_index; /* position in the loop's heap, or SIZE_MAX */
    epode__timer_cb cb;
    void *user;
} epode__timer;

/* Application callbacks of the external-loop API (public in epode/loop.h):
 * watch(user, fd, events, fd_user): events 0 means "stop watching fd"
 * (always said before epode closes it); timer(user, ms): call process
 * after ms (0: now, -1: no deadline). */
typedef void (*epode__ext_watch_cb)(void *user, int fd, unsigned events, void *fd_user);
typedef void (*epode__ext_timer_cb)(void *user, long timeout_ms);

/* Makes a loop (with its internal wakeup eventfd). The backend is epoll
 * unless EPODE_LOOP_BACKEND=poll is set in the environment now (poll is
 * also the only one off Linux). `mem` must outlive the loop. Errors:
 * EPODE_ENOMEM, EPODE_ELIMIT (out of fds), EPODE_ENET (other OS error);
 * *out is untouched on failure. */
int epode__loop_new(const epode_mem_t *mem, epode__loop **out);
/* Frees the loop (NULL: no-op). Every io must be stopped and every timer
 * stopped first; never from inside one of the loop's callbacks. In
 * external mode the wakeup fd is announced removed before it is closed. */
void epode__loop_free(epode__loop *l);

/* Milliseconds from CLOCK_MONOTONIC. */
uint64_t epode__now_ms(void);

/* ---- fds ---------------------------------------------------------------- */
/* Starts watching fd for `events` (may be 0: known but idle). One io per
 * fd. A never-started io must be zeroed (`epode__io io = {0}`); a stopped
 * one may be started again. Errors: EPODE_EINVAL (bad fd, events or cb; fd not pollable),
 * EPODE_ESTATE (io already active, or fd watched by another io),
 * EPODE_ENOMEM, EPODE_ELIMIT, EPODE_ENET (epoll_ctl failed); on error
 * the io stays inactive. */
int epode__io_start(epode__loop *l, epode__io *io, int fd, unsigned events, epode__io_cb cb,
                    void *user);
/* Changes the interest. Cheap when unchanged (no syscall, no watch call).
 * EPODE_ESTATE if the io is not active; on a backend error the previous
 * interest stays in force. */
int epode__io_set(epode__io *io, unsigned events);
/* Stops watching (call before close(fd)); safe from inside any callback,
 * including io's own; a stopped io gets no further callback, even one
 * already reported ready in the same turn. No-op if not active. An io
 * started (or restarted) during a dispatch is not called for events of
 * that dispatch either: its fd number may belong to a closed predecessor. */
void epode__io_stop(epode__io *io);

/* ---- timers ------------------------------------------------------------- */
/* Makes t a timer of l, with a heap slot kept for it until
 * epode__timer_deinit, so that starting it later cannot fail for lack
 * of memory. EPODE_ENOMEM (t then belongs to no loop: starting it gives
 * EPODE_EINVAL), EPODE_EINVAL (no loop), or 0. */
int epode__timer_init(epode__loop *l, epode__timer *t);
/* Stops t and gives its heap slot back (the owner is going away). No-op
 * for a timer that belongs to no loop; t may be initialized again. */
void epode__timer_deinit(epode__timer *t);
/* (Re)arms a one-shot timer `delay_ms` from now (0: on the next turn,
 * after pending io; see the top of this file). Re-arming puts the timer
 * after every timer already armed for the same deadline. Errors:
 * EPODE_EINVAL (no cb, timer not initialized); never EPODE_ENOMEM for a
 * timer initialized with epode__timer_init. */
int epode__timer_start(epode__timer *t, uint64_t delay_ms, epode__timer_cb cb, void *user);
/* Disarms; safe from any callback; no-op if not armed. */
void epode__timer_stop(epode__timer *t);
int epode__timer_active(const epode__timer *t);

/* ---- driving it ---------------------------------------------------------- */
/* Built-in: waits up to timeout_ms (negative: until something happens,
 * 0: poll), never past the next timer's deadline, and dispatches ready io
 * and due timers. Returns the number of callbacks run (0 after a timeout
 * or a bare wakeup), or EPODE_ESTATE (external mode, or called from
 * inside one of this loop's callbacks), EPODE_ENET (the wait failed). */
int epode__loop_run_once(epode__loop *l, int timeout_ms);
/* Runs turns until epode__loop_stop() or until nothing is watched (no io
 * with non-zero interest besides the internal wakeup fd, and no armed
 * timer). 0, or a negative error of run_once. A stop() made before run()
 * makes it return at once; the flag is cleared when run returns. */
int epode__loop_run(epode__loop *l);
/* Asks run() to return after the current turn. Loop thread only (from
 * another thread: wakeup, and stop from the wakeup callback). */
void epode__loop_stop(epode__loop *l);
/* Thread-safe and async-signal-safe: wakes a loop blocked in run/run_once
 * (eventfd); in the loop's thread the wakeup callback then runs once for
 * any number of wakeups made since it last ran. 0 or EPODE_ENET. */
int epode__loop_wakeup(epode__loop *l);
/* Sets the callback run in the loop's thread after wakeups (NULL: none). */
void epode__loop_on_wakeup(epode__loop *l, epode__timer_cb cb, void *user);

/* External mode: from now on the application is told about every change
 * of fd interest and of the next deadline, and drives the loop with
 * epode__loop_process(); the built-in run functions refuse (EPODE_ESTATE).
 * Existing interests (the wakeup fd included) are announced at once, in
 * fd order, then the deadline if there is one. Once per loop: EPODE_ESTATE
 * if already external, EPODE_EINVAL without both callbacks. */
int epode__loop_set_external(epode__loop *l, epode__ext_watch_cb watch,
                             epode__ext_timer_cb timer, void *user);
/* Attaches the application's pointer to an fd epode watches (given back
 * in later watch calls, the "removed" one included); forgotten when epode
 * stops watching the fd. May be called from inside watch, even from the
 * first announcement of the fd. Never allocates. EPODE_ENOTFOUND for an
 * fd epode does not watch. */
int epode__loop_assign(epode__loop *l, int fd, void *fd_user);
/* The application says fd is ready for revents (EPODE__READ|EPODE__WRITE;
 * pass both for an error or hang-up), or fd -1: its timer fired. Runs
 * that fd's io callback, then due timers. After process(-1) the
 * application's timer counts as spent: the next deadline, if any, is
 * announced again even if unchanged. An fd epode no longer watches is
 * ignored. Returns how many callbacks ran, or EPODE_ESTATE (not external,
 * or called from inside one of the loop's callbacks). */
int epode__loop_process(epode__loop *l, int fd, unsigned revents);
/* The epoll fd, for an application that watches the whole built-in loop
 * as one fd: it is readable when some io is ready; combine it with
 * epode__loop_next_timeout() and call run_once(l, 0). -1 with the poll
 * backend. */
int epode__loop_backend_fd(const epode__loop *l);
/* ms until the next timer (0 if due, -1 if none). */
long epode__loop_next_timeout(const epode__loop *l);

/* For tests: 0 if the timer heap is well-ordered and every timer's
 * heap_index matches its slot, -1 otherwise. */
int epode__loop_check_heap(const epode__loop *l);

/* ---- private to the files of lib/loop ----------------------------------- */
#ifdef EPODE__LOOP_PRIVATE

/* Bits a backend reports; ERROR stands for error or hang-up. */
enum { EPODE__ERROR = 4 };

typedef struct epode__backend epode__backend;
typedef void (*epode__ready_fn)(epode__loop *l, int fd, unsigned revents);

typedef struct epode__backend_ops {
    const char *name;
    int (*create)(const epode_mem_t *mem, epode__backend **out);
    void (*destroy)(epode__backend *b);
    /* fd's interest goes from `from` to `to` (0: not watched at all). */
    int (*change)(epode__backend *b, int fd, unsigned from, unsigned to);
    /* Waits up to timeout_ms (-1: forever) and calls ready() once per
     * ready fd; ready() may change any registration. Returns the number
     * of fds reported (0 on EINTR) or EPODE_ENET. */
    int (*wait)(epode__backend *b, int timeout_ms, epode__ready_fn ready, epode__loop *l);
    int (*fd)(const epode__backend *b);
} epode__backend_ops;

extern const epode__backend_ops epode__backend_poll;
#ifdef __linux__
extern const epode__backend_ops epode__backend_epoll;
#endif

/* One slot per fd number. */
typedef struct epode__fd_slot {
    epode__io *io;
    void *fd_user;
    uint64_t since; /* the loop's turn when io was started */
} epode__fd_slot;

struct epode__loop {
    const epode_mem_t *mem;
    const epode__backend_ops *ops;
    epode__backend *backend;

    epode__fd_slot *fds;
    size_t nfds;
    size_t interested; /* active ios with interest, the wakeup io aside */

    epode__timer **heap;
    size_t heap_len, heap_cap;
    size_t timers; /* initialized timers: heap_cap is never below it */
    uint64_t timer_seq;

    uint64_t turn;     /* counts dispatches; see epode__fd_slot.since */
    int ran;           /* callbacks run in the current dispatch */
    int dispatching;   /* inside run_once / process */
    int stopped;

    int wake_rfd, wake_wfd; /* the same eventfd on Linux */
    epode__io wake_io;
    epode__timer_cb wake_cb;
    void *wake_user;

    int external;
    epode__ext_watch_cb ext_watch;
    epode__ext_timer_cb ext_timer;
    void *ext_user;
    uint64_t ext_due; /* deadline last announced; UINT64_MAX: none */
};

/* timer.c */
/* Runs the timers due now that were armed before this call. */
void epode__timers_run(epode__loop *l);
/* External mode: announces the next deadline if it changed (deferred
 * while dispatching). */
void epode__timers_announce(epode__loop *l);
void epode__timers_free(epode__loop *l);

/* An errno value as an EPODE_E… code. */
int epode__loop_errno(int err);

#endif /* EPODE__LOOP_PRIVATE */

#endif
