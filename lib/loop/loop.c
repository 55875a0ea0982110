/* lib/loop/loop.c — the loop object: the fd → io table, interest changes
 * (to the backend, or diffed to the application in external mode), the
 * dispatch of ready fds, run/run_once/process and the thread-safe wakeup.
 * Timers live in timer.c, the OS waiting in backend_*.c. Never blocks
 * outside the backend's wait, never calls an io or timer callback outside
 * a dispatch, never prints. */
#define EPODE__LOOP_PRIVATE
#include "loop.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef __linux__
#include <sys/eventfd.h>
#endif

#include "util/alloc.h"

int epode__loop_errno(int err)
{
    switch (err) {
    case ENOMEM:
        return EPODE_ENOMEM;
    case EMFILE:
    case ENFILE:
    case ENOSPC: /* epoll: max_user_watches */
        return EPODE_ELIMIT;
    case EBADF:
    case EINVAL:
    case EPERM:
        return EPODE_EINVAL;
    default:
        return EPODE_ENET;
    }
}

static int grow_fds(epode__loop *l, int fd)
{
    if ((size_t)fd < l->nfds)
        return 0;
    size_t want = l->nfds ? l->nfds : 64;
    while (want <= (size_t)fd)
        want *= 2;
    if (want > SIZE_MAX / sizeof *l->fds)
        return EPODE_ENOMEM;
    epode__fd_slot *fds = epode__realloc(l->mem, l->fds, want * sizeof *fds);
    if (!fds)
        return EPODE_ENOMEM;
    memset(fds + l->nfds, 0, (want - l->nfds) * sizeof *fds);
    l->fds = fds;
    l->nfds = want;
    return 0;
}

/* Tells the backend, or the application, about io's new interest. */
static int apply(epode__io *io, unsigned to)
{
    epode__loop *l = io->loop;
    if (to == io->applied)
        return 0;
    if (l->external) {
        io->applied = to;
        l->ext_watch(l->ext_user, io->fd, to, l->fds[io->fd].fd_user);
        return 0;
    }
    int rc = l->ops->change(l->backend, io->fd, io->applied, to);
    if (rc)
        return rc;
    io->applied = to;
    return 0;
}

static void count_interest(epode__io *io, unsigned from, unsigned to)
{
    epode__loop *l = io->loop;
    if (io == &l->wake_io || !from == !to)
        return;
    if (to)
        l->interested++;
    else
        l->interested--;
}

int epode__io_start(epode__loop *l, epode__io *io, int fd, unsigned events, epode__io_cb cb,
                    void *user)
{
    if (!l || !io || fd < 0 || !cb || (events & ~(unsigned)(EPODE__READ | EPODE__WRITE)))
        return EPODE_EINVAL;
    if (io->active)
        return EPODE_ESTATE;
    int rc = grow_fds(l, fd);
    if (rc)
        return rc;
    if (l->fds[fd].io)
        return EPODE_ESTATE;
    io->loop = l;
    io->fd = fd;
    io->events = 0;
    io->applied = 0;
    io->cb = cb;
    io->user = user;
    /* Claimed before the announcement, so watch may assign a pointer. */
    l->fds[fd].io = io;
    l->fds[fd].fd_user = NULL;
    l->fds[fd].since = l->turn;
    rc = apply(io, events);
    if (rc) {
        l->fds[fd].io = NULL;
        return rc;
    }
    io->events = events;
    io->active = 1;
    count_interest(io, 0, events);
    return 0;
}

int epode__io_set(epode__io *io, unsigned events)
{
    if (!io || (events & ~(unsigned)(EPODE__READ | EPODE__WRITE)))
        return EPODE_EINVAL;
    if (!io->active)
        return EPODE_ESTATE;
    if (events == io->events)
        return 0;
    int rc = apply(io, events);
    if (rc)
        return rc;
    count_interest(io, io->events, events);
    io->events = events;
    return 0;
}

void epode__io_stop(epode__io *io)
{
    if (!io || !io->active)
        return;
    epode__loop *l = io->loop;
    apply(io, 0); /* removing never fails */
    count_interest(io, io->events, 0);
    l->fds[io->fd].io = NULL;
    l->fds[io->fd].fd_user = NULL;
    io->events = 0;
    io->active = 0;
}

/* The backend (or the application, through process) reports fd ready.
 * Whoever watches fd now decides: nobody, an io started during this very
 * dispatch (the report may be about a closed predecessor's fd), or an io
 * that no longer wants these events all get nothing. */
static void ready(epode__loop *l, int fd, unsigned revents)
{
    if (fd < 0 || (size_t)fd >= l->nfds)
        return;
    epode__fd_slot *s = &l->fds[fd];
    epode__io *io = s->io;
    if (!io || s->since == l->turn)
        return;
    unsigned r;
    if (revents & EPODE__ERROR)
        r = io->events ? EPODE__READ | EPODE__WRITE : 0;
    else
        r = revents & io->events;
    if (!r)
        return;
    if (io != &l->wake_io)
        l->ran++;
    io->cb(io->user, r); /* may stop or free io: not touched again */
}

/* ---- wakeup ------------------------------------------------------------- */

static void wake_drain(void *user, unsigned revents)
{
    epode__loop *l = user;
    (void)revents;
#ifdef __linux__
    uint64_t count;
    while (read(l->wake_rfd, &count, sizeof count) < 0 && errno == EINTR)
        ;
#else
    char buf[64];
    for (;;) {
        ssize_t n = read(l->wake_rfd, buf, sizeof buf);
        if (n > 0 || (n < 0 && errno == EINTR))
            continue;
        break;
    }
#endif
    if (l->wake_cb) {
        l->ran++;
        l->wake_cb(l->wake_user);
    }
}

static int wake_open(epode__loop *l)
{
#ifdef __linux__
    int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (fd < 0)
        return epode__loop_errno(errno);
    l->wake_rfd = l->wake_wfd = fd;
#else
    int p[2];
    if (pipe(p) < 0)
        return epode__loop_errno(errno);
    for (int i = 0; i < 2; i++) {
        fcntl(p[i], F_SETFD, FD_CLOEXEC);
        fcntl(p[i], F_SETFL, fcntl(p[i], F_GETFL) | O_NONBLOCK);
    }
    l->wake_rfd = p[0];
    l->wake_wfd = p[1];
#endif
    return 0;
}

static void wake_close(epode__loop *l)
{
    if (l->wake_wfd >= 0 && l->wake_wfd != l->wake_rfd)
        close(l->wake_wfd);
    if (l->wake_rfd >= 0)
        close(l->wake_rfd);
    l->wake_rfd = l->wake_wfd = -1;
}

int epode__loop_wakeup(epode__loop *l)
{
    int saved = errno, rc = 0;
    ssize_t w;
#ifdef __linux__
    uint64_t one = 1;
    do
        w = write(l->wake_wfd, &one, sizeof one);
    while (w < 0 && errno == EINTR);
#else
    char one = 1;
    do
        w = write(l->wake_wfd, &one, 1);
    while (w < 0 && errno == EINTR);
#endif
    /* EAGAIN: the counter (pipe) is full, so a wakeup is pending anyway. */
    if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
        rc = EPODE_ENET;
    errno = saved;
    return rc;
}

void epode__loop_on_wakeup(epode__loop *l, epode__timer_cb cb, void *user)
{
    l->wake_cb = cb;
    l->wake_user = user;
}

/* ---- the loop ------------------------------------------------------------ */

int epode__loop_new(const epode_mem_t *mem, epode__loop **out)
{
    if (!out)
        return EPODE_EINVAL;
    epode__loop *l = epode__zalloc(mem, sizeof *l);
    if (!l)
        return EPODE_ENOMEM;
    l->mem = mem;
    l->wake_rfd = l->wake_wfd = -1;
    l->ext_due = UINT64_MAX;
    l->ops = &epode__backend_poll;
#ifdef __linux__
    const char *want = getenv("EPODE_LOOP_BACKEND");
    if (!want || strcmp(want, "poll") != 0)
        l->ops = &epode__backend_epoll;
#endif
    int rc = l->ops->create(mem, &l->backend);
    if (rc == 0)
        rc = wake_open(l);
    if (rc == 0)
        rc = epode__io_start(l, &l->wake_io, l->wake_rfd, EPODE__READ, wake_drain, l);
    if (rc) {
        wake_close(l);
        if (l->backend)
            l->ops->destroy(l->backend);
        epode__dealloc(mem, l->fds);
        epode__dealloc(mem, l);
        return rc;
    }
    *out = l;
    return 0;
}

void epode__loop_free(epode__loop *l)
{
    if (!l)
        return;
    epode__io_stop(&l->wake_io);
    wake_close(l);
    if (l->backend)
        l->ops->destroy(l->backend);
    epode__timers_free(l);
    epode__dealloc(l->mem, l->fds);
    epode__dealloc(l->mem, l);
}

int epode__loop_run_once(epode__loop *l, int timeout_ms)
{
    if (l->external || l->dispatching)
        return EPODE_ESTATE;
    long t = l->heap_len ? epode__loop_next_timeout(l) : -1;
    if (timeout_ms >= 0 && (t < 0 || t > timeout_ms))
        t = timeout_ms;
    if (t > INT_MAX)
        t = INT_MAX;
    l->turn++;
    l->ran = 0;
    l->dispatching = 1;
    int rc = l->ops->wait(l->backend, (int)t, ready, l);
    if (rc >= 0)
        epode__timers_run(l);
    l->dispatching = 0;
    return rc < 0 ? rc : l->ran;
}

int epode__loop_run(epode__loop *l)
{
    int rc = 0;
    if (l->external || l->dispatching)
        rc = EPODE_ESTATE;
    while (rc >= 0 && !l->stopped && (l->interested > 0 || l->heap_len > 0))
        rc = epode__loop_run_once(l, -1);
    l->stopped = 0;
    return rc < 0 ? rc : 0;
}

void epode__loop_stop(epode__loop *l)
{
    l->stopped = 1;
}

int epode__loop_backend_fd(const epode__loop *l)
{
    return l->backend ? l->ops->fd(l->backend) : -1;
}

/* ---- external mode ------------------------------------------------------- */

int epode__loop_set_external(epode__loop *l, epode__ext_watch_cb watch,
                             epode__ext_timer_cb timer, void *user)
{
    if (!watch || !timer)
        return EPODE_EINVAL;
    if (l->external || l->dispatching)
        return EPODE_ESTATE;
    /* The backend is no longer used: drop it (and its fd) first, so the
     * switch cannot fail half-way. */
    for (size_t fd = 0; fd < l->nfds; fd++) {
        epode__io *io = l->fds[fd].io;
        if (io)
            io->applied = 0;
    }
    l->ops->destroy(l->backend);
    l->backend = NULL;
    l->external = 1;
    l->ext_watch = watch;
    l->ext_timer = timer;
    l->ext_user = user;
    l->ext_due = UINT64_MAX;
    for (size_t fd = 0; fd < l->nfds; fd++) {
        epode__io *io = l->fds[fd].io;
        if (io && io->events)
            apply(io, io->events);
    }
    epode__timers_announce(l);
    return 0;
}

int epode__loop_assign(epode__loop *l, int fd, void *fd_user)
{
    if (fd < 0 || (size_t)fd >= l->nfds || !l->fds[fd].io)
        return EPODE_ENOTFOUND;
    l->fds[fd].fd_user = fd_user;
    return 0;
}

int epode__loop_process(epode__loop *l, int fd, unsigned revents)
{
    if (!l->external || l->dispatching)
        return EPODE_ESTATE;
    l->turn++;
    l->ran = 0;
    l->dispatching = 1;
    if (fd >= 0)
        ready(l, fd, revents & (EPODE__READ | EPODE__WRITE | EPODE__ERROR));
    else
        l->ext_due = UINT64_MAX; /* the application's timer is spent */
    epode__timers_run(l);
    l->dispatching = 0;
    epode__timers_announce(l);
    return l->ran;
}
