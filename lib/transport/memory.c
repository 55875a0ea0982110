/* lib/transport/memory.c — an in-process transport pair: two ends joined
 * by two byte queues, for tests and for applications that carry XMPP
 * over their own channel. No fd, no syscalls; never blocks. Each end is
 * freed on its own; the shared state goes with the last one. */
#include "transport/transport.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "util/alloc.h"

/* A ring buffer of bytes going one way. */
typedef struct mem_queue {
    unsigned char *data;
    size_t head, len, cap;
    size_t limit;    /* 0: unbounded */
    int writer_done; /* writer freed or shut down: reader gets EOF when empty */
    int reader_gone; /* reader freed: writes fail */
} mem_queue;

typedef struct mem_pair mem_pair;

typedef struct mem_end {
    epode__transport base; /* first: the transport pointer is the end */
    mem_pair *pair;
    int idx;
} mem_end;

struct mem_pair {
    const epode_mem_t *mem;
    mem_end ends[2];
    mem_queue q[2]; /* q[i] carries what end i writes to end 1 - i */
    int alive;
};

static mem_queue *out_queue(mem_end *e) { return &e->pair->q[e->idx]; }
static mem_queue *in_queue(mem_end *e) { return &e->pair->q[1 - e->idx]; }

/* Makes room for `want` more bytes, up to the limit. Returns how many of
 * them fit now (at least 1 unless full or out of memory). */
static size_t queue_room(const epode_mem_t *mem, mem_queue *q, size_t want)
{
    if (q->limit) {
        size_t left = q->len < q->limit ? q->limit - q->len : 0;
        if (want > left)
            want = left;
    }
    if (want <= q->cap - q->len)
        return want;
    size_t need = q->len + want;
    size_t cap = q->cap ? q->cap : 256;
    while (cap < need && cap <= SIZE_MAX / 2)
        cap *= 2;
    if (cap < need)
        cap = need;
    unsigned char *data = epode__alloc(mem, cap);
    if (!data)
        return q->cap - q->len; /* write what still fits */
    /* Unwrap into the new block. */
    size_t first = q->cap - q->head < q->len ? q->cap - q->head : q->len;
    if (q->len) {
        memcpy(data, q->data + q->head, first);
        memcpy(data + first, q->data, q->len - first);
    }
    epode__dealloc(mem, q->data);
    q->data = data;
    q->head = 0;
    q->cap = cap;
    return want;
}

static void queue_put(mem_queue *q, const unsigned char *src, size_t n)
{
    size_t tail = (q->head + q->len) % q->cap;
    size_t first = q->cap - tail < n ? q->cap - tail : n;
    memcpy(q->data + tail, src, first);
    memcpy(q->data, src + first, n - first);
    q->len += n;
}

static size_t queue_get(mem_queue *q, unsigned char *dst, size_t n)
{
    if (n > q->len)
        n = q->len;
    size_t first = q->cap - q->head < n ? q->cap - q->head : n;
    memcpy(dst, q->data + q->head, first);
    memcpy(dst + first, q->data, n - first);
    q->len -= n;
    q->head = q->len ? (q->head + n) % q->cap : 0;
    return n;
}

static long mem_read(epode__transport *t, void *buf, size_t len)
{
    mem_end *e = (mem_end *)t;
    mem_queue *q = in_queue(e);
    if (len == 0)
        return EPODE_EINVAL;
    if (q->len == 0)
        return q->writer_done ? 0 : EPODE_EAGAIN;
    if (len > LONG_MAX)
        len = LONG_MAX;
    return (long)queue_get(q, buf, len);
}

static long mem_write(epode__transport *t, const void *buf, size_t len)
{
    mem_end *e = (mem_end *)t;
    mem_queue *q = out_queue(e);
    if (q->writer_done) {
        epode__transport_set_error(t, "write after shutdown");
        return EPODE_ESTATE;
    }
    if (q->reader_gone) {
        epode__transport_set_error(t, "the other end of the memory transport is closed");
        return EPODE_ENET;
    }
    if (len == 0)
        return 0;
    if (len > LONG_MAX)
        len = LONG_MAX;
    size_t n = queue_room(e->pair->mem, q, len);
    if (n == 0) {
        if (q->limit && q->len >= q->limit)
            return EPODE_EAGAIN;
        epode__transport_set_error(t, "out of memory queueing %zu bytes", len);
        return EPODE_ENOMEM;
    }
    queue_put(q, buf, n);
    return (long)n;
}

static unsigned mem_wants(epode__transport *t)
{
    mem_queue *q = out_queue((mem_end *)t);
    unsigned w = EPODE__READ;
    if (q->limit && q->len >= q->limit)
        w |= EPODE__WRITE;
    return w;
}

static int mem_fd(epode__transport *t)
{
    (void)t;
    return -1;
}

static size_t mem_pending(epode__transport *t)
{
    return in_queue((mem_end *)t)->len;
}

static int mem_shutdown(epode__transport *t)
{
    out_queue((mem_end *)t)->writer_done = 1;
    return 0;
}

static void mem_free(epode__transport *t)
{
    mem_end *e = (mem_end *)t;
    mem_pair *p = e->pair;
    mem_queue *out = out_queue(e), *in = in_queue(e);
    out->writer_done = 1;
    in->reader_gone = 1;
    /* Nobody will read what was sent to us. */
    epode__dealloc(p->mem, in->data);
    in->data = NULL;
    in->head = in->len = in->cap = 0;
    epode__transport_clear_error(t);
    e->base.ops = NULL;
    if (--p->alive == 0) {
        epode__dealloc(p->mem, out->data);
        epode__dealloc(p->mem, p);
    }
}

static const epode__transport_ops mem_ops = {
    .name = "memory",
    .read = mem_read,
    .write = mem_write,
    .wants = mem_wants,
    .fd = mem_fd,
    .pending = mem_pending,
    .shutdown = mem_shutdown,
    .free = mem_free,
};

int epode__memory_pair(const epode_mem_t *mem, epode__transport **a, epode__transport **b)
{
    if (!a || !b)
        return EPODE_EINVAL;
    mem_pair *p = epode__zalloc(mem, sizeof *p);
    if (!p)
        return EPODE_ENOMEM;
    p->mem = mem;
    p->alive = 2;
    for (int i = 0; i < 2; i++) {
        p->ends[i].base.ops = &mem_ops;
        p->ends[i].base.mem = mem;
        p->ends[i].pair = p;
        p->ends[i].idx = i;
    }
    *a = &p->ends[0].base;
    *b = &p->ends[1].base;
    return 0;
}

void epode__memory_set_limit(epode__transport *t, size_t bytes)
{
    if (t && t->ops == &mem_ops)
        out_queue((mem_end *)t)->limit = bytes;
}
