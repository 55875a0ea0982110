/* lib/loop/backend_epoll.c — the Linux backend: one level-triggered epoll
 * set (EPOLL_CLOEXEC). An fd with no interest is deleted from the set
 * rather than kept with an empty mask, because epoll reports hang-ups
 * and errors even for an empty mask and level-triggering would spin on
 * them. Knows nothing of ios: it reports fd numbers and the loop decides
 * who, if anyone, is still interested. */
#ifdef __linux__

#define EPODE__LOOP_PRIVATE
#include "loop.h"

#include <errno.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "util/alloc.h"

enum { BATCH_MIN = 64, BATCH_MAX = 1024 };

struct epode__backend {
    const epode_mem_t *mem;
    int epfd;
    struct epoll_event *events;
    int cap;
};

static int epoll_create_backend(const epode_mem_t *mem, epode__backend **out)
{
    epode__backend *b = epode__alloc(mem, sizeof *b);
    if (!b)
        return EPODE_ENOMEM;
    b->mem = mem;
    b->cap = BATCH_MIN;
    b->events = epode__alloc(mem, (size_t)b->cap * sizeof *b->events);
    if (!b->events) {
        epode__dealloc(mem, b);
        return EPODE_ENOMEM;
    }
    b->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (b->epfd < 0) {
        int rc = epode__loop_errno(errno);
        epode__dealloc(mem, b->events);
        epode__dealloc(mem, b);
        return rc;
    }
    *out = b;
    return 0;
}

static void epoll_destroy(epode__backend *b)
{
    close(b->epfd);
    epode__dealloc(b->mem, b->events);
    epode__dealloc(b->mem, b);
}

static int epoll_change(epode__backend *b, int fd, unsigned from, unsigned to)
{
    struct epoll_event ev = {0};
    ev.data.fd = fd;
    if (to & EPODE__READ)
        ev.events |= EPOLLIN;
    if (to & EPODE__WRITE)
        ev.events |= EPOLLOUT;
    if (!to) {
        /* Fails harmlessly if the owner closed the fd first. */
        epoll_ctl(b->epfd, EPOLL_CTL_DEL, fd, &ev);
        return 0;
    }
    int op = from ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    if (epoll_ctl(b->epfd, op, fd, &ev) == 0)
        return 0;
    /* The set and our records can disagree when an owner closed an fd
     * without stopping its io and the number came back: repair. */
    if (op == EPOLL_CTL_ADD && errno == EEXIST)
        op = EPOLL_CTL_MOD;
    else if (op == EPOLL_CTL_MOD && errno == ENOENT)
        op = EPOLL_CTL_ADD;
    else
        return errno == EPERM ? EPODE_EINVAL : epode__loop_errno(errno);
    if (epoll_ctl(b->epfd, op, fd, &ev) == 0)
        return 0;
    return errno == EPERM ? EPODE_EINVAL : epode__loop_errno(errno);
}

static int epoll_wait_backend(epode__backend *b, int timeout_ms, epode__ready_fn ready,
                              epode__loop *l)
{
    int n = epoll_wait(b->epfd, b->events, b->cap, timeout_ms);
    if (n < 0)
        return errno == EINTR ? 0 : EPODE_ENET;
    /* ready() may change registrations but never touches this array. */
    for (int i = 0; i < n; i++) {
        uint32_t e = b->events[i].events;
        unsigned r = 0;
        if (e & EPOLLIN)
            r |= EPODE__READ;
        if (e & EPOLLOUT)
            r |= EPODE__WRITE;
        if (e & (EPOLLERR | EPOLLHUP))
            r |= EPODE__ERROR;
        ready(l, b->events[i].data.fd, r);
    }
    if (n == b->cap && b->cap < BATCH_MAX) {
        /* A full batch: take more next time (keep this one if we can't). */
        struct epoll_event *more =
            epode__realloc(b->mem, b->events, (size_t)b->cap * 2 * sizeof *more);
        if (more) {
            b->events = more;
            b->cap *= 2;
        }
    }
    return n;
}

static int epoll_backend_fd(const epode__backend *b)
{
    return b->epfd;
}

const epode__backend_ops epode__backend_epoll = {
    "epoll", epoll_create_backend, epoll_destroy, epoll_change, epoll_wait_backend,
    epoll_backend_fd,
};

#else
/* ISO C wants something in every translation unit. */
typedef int epode__loop_no_epoll;
#endif
