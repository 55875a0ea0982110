/* lib/loop/backend_poll.c — the portable backend: poll(2) over a dense
 * pollfd array with an fd → slot index, so adding, changing and removing
 * an fd is O(1) and there is no FD_SETSIZE ceiling. Ready fds are copied
 * out before they are reported, because reporting may add or remove fds
 * (and so move pollfd slots). All growth happens in change(), so wait()
 * never allocates. */
#define EPODE__LOOP_PRIVATE
#include "loop.h"

#include <errno.h>
#include <poll.h>
#include <stdint.h>

#include "util/alloc.h"

typedef struct ready_fd {
    int fd;
    unsigned revents;
} ready_fd;

struct epode__backend {
    const epode_mem_t *mem;
    struct pollfd *pfds; /* watched fds, [0, n) */
    ready_fd *ready;     /* as many as pfds can hold */
    size_t n, cap;
    int *slot; /* fd → index in pfds, -1: not watched */
    size_t nslots;
};

static int poll_create(const epode_mem_t *mem, epode__backend **out)
{
    epode__backend *b = epode__zalloc(mem, sizeof *b);
    if (!b)
        return EPODE_ENOMEM;
    b->mem = mem;
    *out = b;
    return 0;
}

static void poll_destroy(epode__backend *b)
{
    epode__dealloc(b->mem, b->pfds);
    epode__dealloc(b->mem, b->ready);
    epode__dealloc(b->mem, b->slot);
    epode__dealloc(b->mem, b);
}

static short poll_bits(unsigned events)
{
    short e = 0;
    if (events & EPODE__READ)
        e |= POLLIN;
    if (events & EPODE__WRITE)
        e |= POLLOUT;
    return e;
}

static int grow_slots(epode__backend *b, int fd)
{
    if ((size_t)fd < b->nslots)
        return 0;
    size_t want = b->nslots ? b->nslots : 64;
    while (want <= (size_t)fd)
        want *= 2;
    if (want > SIZE_MAX / sizeof *b->slot)
        return EPODE_ENOMEM;
    int *slot = epode__realloc(b->mem, b->slot, want * sizeof *slot);
    if (!slot)
        return EPODE_ENOMEM;
    for (size_t i = b->nslots; i < want; i++)
        slot[i] = -1;
    b->slot = slot;
    b->nslots = want;
    return 0;
}

static int grow_pfds(epode__backend *b)
{
    if (b->n < b->cap)
        return 0;
    size_t cap = b->cap ? b->cap * 2 : 16;
    if (cap > SIZE_MAX / sizeof *b->pfds || cap > SIZE_MAX / sizeof *b->ready)
        return EPODE_ENOMEM;
    /* Grow ready first: if pfds then fails, a larger ready is harmless. */
    ready_fd *ready = epode__realloc(b->mem, b->ready, cap * sizeof *ready);
    if (!ready)
        return EPODE_ENOMEM;
    b->ready = ready;
    struct pollfd *pfds = epode__realloc(b->mem, b->pfds, cap * sizeof *pfds);
    if (!pfds)
        return EPODE_ENOMEM;
    b->pfds = pfds;
    b->cap = cap;
    return 0;
}

static int poll_change(epode__backend *b, int fd, unsigned from, unsigned to)
{
    (void)from;
    int idx = (size_t)fd < b->nslots ? b->slot[fd] : -1;
    if (!to) {
        if (idx < 0)
            return 0;
        /* Fill the hole with the last entry. */
        struct pollfd last = b->pfds[--b->n];
        if ((size_t)idx != b->n) {
            b->pfds[idx] = last;
            b->slot[last.fd] = idx;
        }
        b->slot[fd] = -1;
        return 0;
    }
    if (idx >= 0) {
        b->pfds[idx].events = poll_bits(to);
        return 0;
    }
    if (b->n >= (size_t)INT32_MAX)
        return EPODE_ELIMIT;
    int rc = grow_slots(b, fd);
    if (rc == 0)
        rc = grow_pfds(b);
    if (rc)
        return rc;
    b->pfds[b->n] = (struct pollfd){.fd = fd, .events = poll_bits(to)};
    b->slot[fd] = (int)b->n++;
    return 0;
}

static int poll_wait(epode__backend *b, int timeout_ms, epode__ready_fn ready, epode__loop *l)
{
    int n = poll(b->pfds, (nfds_t)b->n, timeout_ms);
    if (n < 0)
        return errno == EINTR ? 0 : EPODE_ENET;
    size_t k = 0;
    for (size_t i = 0; i < b->n && k < (size_t)n; i++) {
        short e = b->pfds[i].revents;
        if (!e)
            continue;
        unsigned r = 0;
        if (e & POLLIN)
            r |= EPODE__READ;
        if (e & POLLOUT)
            r |= EPODE__WRITE;
        if (e & (POLLERR | POLLHUP | POLLNVAL))
            r |= EPODE__ERROR;
        b->ready[k++] = (ready_fd){b->pfds[i].fd, r};
    }
    /* ready() may grow (move) b->ready but keeps its first k entries. */
    for (size_t i = 0; i < k; i++)
        ready(l, b->ready[i].fd, b->ready[i].revents);
    return (int)k;
}

static int poll_backend_fd(const epode__backend *b)
{
    (void)b;
    return -1;
}

const epode__backend_ops epode__backend_poll = {
    "poll", poll_create, poll_destroy, poll_change, poll_wait, poll_backend_fd,
};
