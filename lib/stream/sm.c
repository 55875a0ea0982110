/* lib/stream/sm.c — XEP-0198 counters and the unacknowledged queue. The
 * counters wrap at 2^32 as the XEP says; the difference (h - acked),
 * taken modulo 2^32, is what a new ack confirms, and it may never exceed
 * what is queued. */
#include "sm.h"

#include <string.h>

#include "util/alloc.h"

void epode__sm_init(epode__sm *sm, const epode_mem_t *mem)
{
    memset(sm, 0, sizeof *sm);
    sm->mem = mem;
    epode__buf_init(&sm->bytes, mem);
}

static epode__sm_entry *entry_at(epode__sm *sm, size_t i)
{
    return &sm->q[(sm->qhead + i) % sm->qcap];
}

void epode__sm_free(epode__sm *sm)
{
    for (size_t i = 0; i < sm->qlen; i++)
        epode__dealloc(sm->mem, entry_at(sm, i)->id);
    epode__dealloc(sm->mem, sm->q);
    epode__buf_free(&sm->bytes);
    epode__sm_init(sm, sm->mem);
}

static int grow(epode__sm *sm)
{
    size_t cap = sm->qcap ? sm->qcap * 2 : 16;
    epode__sm_entry *q = epode__alloc(sm->mem, cap * sizeof *q);
    if (!q)
        return -1;
    for (size_t i = 0; i < sm->qlen; i++)
        q[i] = *entry_at(sm, i);
    epode__dealloc(sm->mem, sm->q);
    sm->q = q;
    sm->qcap = cap;
    sm->qhead = 0;
    return 0;
}

int epode__sm_push(epode__sm *sm, const char *id, const char *bytes, size_t len)
{
    if (sm->qlen == sm->qcap && grow(sm) < 0)
        return EPODE_ENOMEM;
    char *idc = NULL;
    if (id && !(idc = epode__strdup(sm->mem, id)))
        return EPODE_ENOMEM;
    size_t before = sm->bytes.len;
    epode__buf_append(&sm->bytes, bytes, len);
    if (sm->bytes.failed) {
        sm->bytes.failed = 0;
        sm->bytes.len = before;
        epode__dealloc(sm->mem, idc);
        return EPODE_ENOMEM;
    }
    *entry_at(sm, sm->qlen) = (epode__sm_entry){idc, len};
    sm->qlen++;
    sm->out++;
    return 0;
}

/* Pops the n oldest entries, reporting each; the bytes go in one move.
 * A callback may send (and so append to the queue): the bytes it was
 * lent must not move under it, so the rest of the queue moves to a new
 * buffer first and the reported bytes stay where they are until the
 * last callback has returned. */
static void pop(epode__sm *sm, size_t n, epode__sm_cb cb, void *user)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += entry_at(sm, i)->len;
    epode__buf lent = sm->bytes, rest;
    epode__buf_init(&rest, sm->mem);
    if (cb && n && (lent.len == total || epode__buf_reserve(&rest, lent.len - total) == 0)) {
        if (lent.len > total)
            epode__buf_append(&rest, lent.data + total, lent.len - total);
        sm->bytes = rest;
        size_t off = 0;
        while (n--) {
            epode__sm_entry e = *entry_at(sm, 0);
            sm->qhead = (sm->qhead + 1) % sm->qcap;
            sm->qlen--;
            cb(user, e.id, lent.data + off, e.len);
            off += e.len;
            epode__dealloc(sm->mem, e.id);
        }
        epode__buf_free(&lent);
        return;
    }
    /* No callback (or no memory for the move): report in place. */
    size_t off = 0;
    while (n--) {
        epode__sm_entry e = *entry_at(sm, 0);
        sm->qhead = (sm->qhead + 1) % sm->qcap;
        sm->qlen--;
        if (cb)
            cb(user, e.id, sm->bytes.data + off, e.len);
        off += e.len;
        epode__dealloc(sm->mem, e.id);
    }
    epode__buf_consume(&sm->bytes, off);
}

int epode__sm_ack(epode__sm *sm, uint32_t h, epode__sm_cb cb, void *user)
{
    uint32_t newly = h - sm->acked; /* modulo 2^32 */
    if (newly > sm->qlen)
        return EPODE_EPROTOCOL;
    sm->acked = h;
    pop(sm, newly, cb, user);
    return 0;
}

void epode__sm_drain(epode__sm *sm, epode__sm_cb cb, void *user)
{
    pop(sm, sm->qlen, cb, user);
}

void epode__sm_each(epode__sm *sm, epode__sm_cb cb, void *user)
{
    size_t off = 0;
    for (size_t i = 0; i < sm->qlen; i++) {
        epode__sm_entry *e = entry_at(sm, i);
        cb(user, e->id, sm->bytes.data + off, e->len);
        off += e->len;
    }
}

void epode__sm_forget(epode__sm *sm)
{
    epode__sm_free(sm); /* also resets every field but the allocator */
}
