/* epode/loop.h — running a context's connections: the built-in loop
 * (epoll, poll fallback), or the application's own loop through the
 * external-loop API (curl multi-socket style).
 *
 * External-loop contract: readiness is level-triggered; the watch
 * callback is told whenever the set of fds epode wants watched, or the
 * events wanted on one, changes, and with events 0 before epode stops
 * using an fd; the timer callback is told whenever the next deadline
 * changes (0 means "call epode_ctx_process() now", -1 "no deadline").
 * epode's own callbacks (handlers, events) run only inside
 * epode_ctx_process() or the built-in run functions, never inside the
 * call that caused them. */
#ifndef EPODE_LOOP_H
#define EPODE_LOOP_H

#include "common.h"
#include "ctx.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Readiness bits. */
enum { EPODE_EV_READ = 1, EPODE_EV_WRITE = 2 };

/** Runs the built-in loop until epode_ctx_stop() is called or nothing is
 * left to wait for (no connection open, no timer armed). Returns 0, or a
 * negative error (EPODE_ESTATE in external mode). */
EPODE_API int epode_ctx_run(epode_ctx_t *ctx);

/** One turn of the built-in loop: waits at most `timeout_ms` (-1: until
 * something happens; 0: don't wait) and runs what is ready. Returns the
 * number of callbacks run, or a negative error. */
EPODE_API int epode_ctx_run_once(epode_ctx_t *ctx, int timeout_ms);

/** Makes epode_ctx_run() return after the current callback. */
EPODE_API void epode_ctx_stop(epode_ctx_t *ctx);

/** Thread-safe: wakes the built-in loop (or, in external mode, makes its
 * wakeup fd readable). The only function callable from another thread. */
EPODE_API int epode_ctx_wakeup(epode_ctx_t *ctx);

/** Told about fds to watch: `events` is EPODE_EV_READ|EPODE_EV_WRITE, or 0
 * to stop watching `fd`. `fd_user` is what epode_ctx_assign() attached. */
typedef void (*epode_watch_cb)(void *user, int fd, unsigned events, void *fd_user);
/** Told about the next deadline: call epode_ctx_process(ctx, -1, 0) after
 * `timeout_ms` (0: now; -1: no deadline). */
typedef void (*epode_timer_cb)(void *user, long timeout_ms);

/**
 * Switches the context to the application's loop. Every fd already in use
 * is announced at once through `watch`, and the current deadline through
 * `timer`. Errors: EPODE_EINVAL (NULL callback).
 */
EPODE_API int epode_ctx_set_external_loop(epode_ctx_t *ctx, epode_watch_cb watch,
                                          epode_timer_cb timer, void *user);

/** Attaches a pointer of the application's to an fd epode announced
 * (given back in later watch calls). EPODE_ENOTFOUND for an unknown fd. */
EPODE_API int epode_ctx_assign(epode_ctx_t *ctx, int fd, void *fd_user);

/** The application's loop says `fd` is ready for `events`, or (fd -1)
 * that the deadline passed. Runs what is due; returns how many callbacks
 * ran, or a negative error. */
EPODE_API int epode_ctx_process(epode_ctx_t *ctx, int fd, unsigned events);

/** The epoll fd behind the built-in loop: readable when
 * epode_ctx_run_once(ctx, 0) has work. Lets another loop watch a whole
 * context as one fd. -1 with the poll backend. */
EPODE_API int epode_ctx_fd(const epode_ctx_t *ctx);

/** Milliseconds until the context's next deadline (0: due now, -1: none). */
EPODE_API long epode_ctx_timeout(const epode_ctx_t *ctx);

#ifdef __cplusplus
}
#endif
#endif
