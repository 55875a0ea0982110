/* lib/loop/timer.c — one-shot timers on a binary min-heap of pointers to
 * the owners' embedded epode__timer handles, ordered by (deadline, arming
 * order) so equal deadlines fire first-armed first. Each handle keeps its
 * heap slot, so start, restart and stop are O(log n) and never search.
 * The heap has a slot for every initialized timer (init makes room,
 * deinit gives it back), so starting a timer never allocates and never
 * fails for lack of memory: a connection whose kick or deadline could
 * not be armed would stall in silence. Never calls a timer inside the
 * call that armed it. */
#define EPODE__LOOP_PRIVATE
#include "loop.h"

#include <limits.h>
#include <time.h>

#include "util/alloc.h"

uint64_t epode__now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int earlier(const epode__timer *a, const epode__timer *b)
{
    return a->due < b->due || (a->due == b->due && a->seq < b->seq);
}

static void place(epode__timer **heap, size_t i, epode__timer *t)
{
    heap[i] = t;
    t->heap_index = i;
}

static void sift_up(epode__timer **heap, size_t i, epode__timer *t)
{
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!earlier(t, heap[parent]))
            break;
        place(heap, i, heap[parent]);
        i = parent;
    }
    place(heap, i, t);
}

static void sift_down(epode__timer **heap, size_t len, size_t i, epode__timer *t)
{
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= len)
            break;
        if (child + 1 < len && earlier(heap[child + 1], heap[child]))
            child++;
        if (!earlier(heap[child], t))
            break;
        place(heap, i, heap[child]);
        i = child;
    }
    place(heap, i, t);
}

/* Puts t (already in the heap) where its new key belongs. */
static void reposition(epode__loop *l, epode__timer *t)
{
    size_t i = t->heap_index;
    if (i > 0 && earlier(t, l->heap[(i - 1) / 2]))
        sift_up(l->heap, i, t);
    else
        sift_down(l->heap, l->heap_len, i, t);
}

static void heap_remove(epode__loop *l, epode__timer *t)
{
    size_t i = t->heap_index;
    epode__timer *last = l->heap[--l->heap_len];
    t->heap_index = SIZE_MAX;
    if (last == t)
        return;
    last->heap_index = i;
    l->heap[i] = last;
    reposition(l, last);
}

static int heap_grow(epode__loop *l)
{
    size_t cap = l->heap_cap ? l->heap_cap * 2 : 16;
    if (cap > SIZE_MAX / sizeof *l->heap)
        return EPODE_ENOMEM;
    epode__timer **heap = epode__realloc(l->mem, l->heap, cap * sizeof *heap);
    if (!heap)
        return EPODE_ENOMEM;
    l->heap = heap;
    l->heap_cap = cap;
    return 0;
}

int epode__timer_init(epode__loop *l, epode__timer *t)
{
    t->loop = NULL;
    t->due = 0;
    t->seq = 0;
    t->heap_index = SIZE_MAX;
    t->cb = NULL;
    t->user = NULL;
    if (!l)
        return EPODE_EINVAL;
    if (l->timers == l->heap_cap && heap_grow(l) < 0)
        return EPODE_ENOMEM;
    l->timers++;
    t->loop = l;
    return 0;
}

void epode__timer_deinit(epode__timer *t)
{
    if (!t->loop)
        return;
    epode__timer_stop(t);
    t->loop->timers--;
    t->loop = NULL;
}

int epode__timer_active(const epode__timer *t)
{
    return t->heap_index != SIZE_MAX;
}

int epode__timer_start(epode__timer *t, uint64_t delay_ms, epode__timer_cb cb, void *user)
{
    epode__loop *l = t->loop;
    if (!l || !cb)
        return EPODE_EINVAL;
    /* init made room for every timer: this cannot happen */
    if (t->heap_index == SIZE_MAX && l->heap_len == l->heap_cap && heap_grow(l) < 0)
        return EPODE_ENOMEM;
    uint64_t now = epode__now_ms();
    t->due = delay_ms > UINT64_MAX - now ? UINT64_MAX : now + delay_ms;
    t->seq = l->timer_seq++;
    t->cb = cb;
    t->user = user;
    if (t->heap_index == SIZE_MAX) {
        l->heap_len++;
        sift_up(l->heap, l->heap_len - 1, t);
    } else {
        reposition(l, t);
    }
    epode__timers_announce(l);
    return 0;
}

void epode__timer_stop(epode__timer *t)
{
    if (t->heap_index == SIZE_MAX)
        return;
    heap_remove(t->loop, t);
    epode__timers_announce(t->loop);
}

void epode__timers_run(epode__loop *l)
{
    if (l->heap_len == 0)
        return;
    /* Timers armed by the callbacks below get a later seq (and a deadline
     * no earlier than now), so they wait for the next turn. */
    uint64_t now = epode__now_ms();
    uint64_t limit = l->timer_seq;
    while (l->heap_len > 0) {
        epode__timer *t = l->heap[0];
        if (t->due > now || t->seq >= limit)
            break;
        heap_remove(l, t);
        l->ran++;
        t->cb(t->user); /* may free t's owner: t is not touched again */
    }
}

void epode__timers_announce(epode__loop *l)
{
    if (!l->external || l->dispatching)
        return;
    uint64_t due = l->heap_len ? l->heap[0]->due : UINT64_MAX;
    if (due == l->ext_due)
        return;
    l->ext_due = due;
    long ms = -1;
    if (due != UINT64_MAX) {
        uint64_t now = epode__now_ms();
        ms = due <= now ? 0 : due - now > (uint64_t)LONG_MAX ? LONG_MAX : (long)(due - now);
    }
    l->ext_timer(l->ext_user, ms);
}

long epode__loop_next_timeout(const epode__loop *l)
{
    if (l->heap_len == 0)
        return -1;
    uint64_t due = l->heap[0]->due, now = epode__now_ms();
    if (due <= now)
        return 0;
    return due - now > (uint64_t)LONG_MAX ? LONG_MAX : (long)(due - now);
}

int epode__loop_check_heap(const epode__loop *l)
{
    for (size_t i = 0; i < l->heap_len; i++) {
        const epode__timer *t = l->heap[i];
        if (!t || t->heap_index != i || t->loop != l)
            return -1;
        if (i > 0 && earlier(t, l->heap[(i - 1) / 2]))
            return -1;
    }
    return 0;
}

void epode__timers_free(epode__loop *l)
{
    epode__dealloc(l->mem, l->heap);
    l->heap = NULL;
    l->heap_len = l->heap_cap = l->timers = 0;
}
