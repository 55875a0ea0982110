/* lib/stream/sm.c — XEP-0198 counters and the unacknowledged queue. The
 * counters wrap at 2^32 as the XEP says; the difference (h - acked),
 * taken modulo 2^32, is what a new ack confirms, and it may never exceed
 * what is queued. */
#include "sm.h"

#include <string.h>

#include "util/alloc.h"
#include "util/footprint.h"

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

static void drop_session_strings(epode__sm *sm)
{
    epode__dealloc(sm->mem, sm->id);
    epode__dealloc(sm->mem, sm->jid);
    sm->id = sm->jid = NULL;
}

int epode__sm_set_resumable(epode__sm *sm, const char *id, const char *jid)
{
    drop_session_strings(sm);
    sm->resumable = 0;
    if (!id || !*id || strlen(id) > EPODE__SM_MAX_ID || !jid || !*jid ||
        strlen(jid) > EPODE__SM_MAX_JID)
        return EPODE_EINVAL;
    sm->id = epode__strdup(sm->mem, id);
    sm->jid = epode__strdup(sm->mem, jid);
    if (!sm->id || !sm->jid) {
        drop_session_strings(sm);
        return EPODE_ENOMEM;
    }
    sm->resumable = 1;
    return 0;
}

size_t epode__sm_footprint(const epode__sm *sm)
{
    size_t n = sm->qcap * sizeof *sm->q + sm->bytes.cap;
    for (size_t i = 0; i < sm->qlen; i++)
        n += epode__str_bytes(sm->q[(sm->qhead + i) % sm->qcap].id);
    return n + epode__str_bytes(sm->id) + epode__str_bytes(sm->jid);
}

void epode__sm_free(epode__sm *sm)
{
    drop_session_strings(sm);
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

int epode__sm_push(epode__sm *sm, const char *id, const char *bytes, size_t len, int secret)
{
    if (sm->qlen == sm->qcap && grow(sm) < 0)
        return EPODE_ENOMEM;
    char *idc = NULL;
    if (id && !(idc = epode__strdup(sm->mem, id)))
        return EPODE_ENOMEM;
    size_t before = sm->bytes.len;
    /* a credential: grow first (a failure sets `failed`, seen below), so
     * no block is left behind holding part of it */
    if (!secret || epode__buf_reserve(&sm->bytes, len) == 0)
        epode__buf_append(&sm->bytes, bytes, len);
    if (secret && !sm->bytes.failed)
        epode__buf_mark_secret(&sm->bytes);
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

/* Pops the n oldest entries, reporting each. Callbacks may do anything:
 * send (append to the queue, moving its buffers), or end the stream
 * (drain and forget the queue from inside). So the popped entries and
 * their bytes leave the queue before the first callback: the queue is
 * consistent at every call, and the bytes lent stay where they are until
 * the last callback has returned. Popping everything needs no memory
 * (the whole queue is taken over); popping part of it needs a copy of
 * the rest and a list of the popped entries: EPODE_ENOMEM, changing
 * nothing, if they cannot be had. */
static int pop(epode__sm *sm, size_t n, epode__sm_cb cb, void *user)
{
    if (n == 0)
        return 0;
    epode__sm_entry *q = sm->q, *popped;
    size_t head = sm->qhead, cap = sm->qcap;
    epode__buf lent = sm->bytes;
    if (n == sm->qlen) {
        popped = NULL; /* the ring itself, taken over */
        sm->q = NULL;
        sm->qhead = sm->qlen = sm->qcap = 0;
        epode__buf_init(&sm->bytes, sm->mem);
    } else {
        size_t total = 0;
        for (size_t i = 0; i < n; i++)
            total += entry_at(sm, i)->len;
        epode__buf rest;
        epode__buf_init(&rest, sm->mem);
        popped = epode__alloc(sm->mem, n * sizeof *popped);
        if (!popped || epode__buf_reserve(&rest, lent.len - total) < 0) {
            epode__dealloc(sm->mem, popped);
            epode__buf_free(&rest);
            return EPODE_ENOMEM;
        }
        epode__buf_append(&rest, lent.data + total, lent.len - total);
        if (lent.secret > total) /* the credential is still queued */
            epode__buf_mark_secret(&rest);
        for (size_t i = 0; i < n; i++)
            popped[i] = *entry_at(sm, i);
        sm->qhead = (sm->qhead + n) % sm->qcap;
        sm->qlen -= n;
        sm->bytes = rest;
    }
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        epode__sm_entry e = popped ? popped[i] : q[(head + i) % cap];
        if (cb)
            cb(user, e.id, lent.data + off, e.len);
        off += e.len;
        epode__dealloc(sm->mem, e.id);
    }
    epode__dealloc(sm->mem, popped ? (void *)popped : (void *)q);
    epode__buf_free(&lent);
    return 0;
}

int epode__sm_ack(epode__sm *sm, uint32_t h, epode__sm_cb cb, void *user)
{
    uint32_t newly = h - sm->acked; /* modulo 2^32 */
    if (newly > sm->qlen)
        return EPODE_EPROTOCOL;
    uint32_t before = sm->acked;
    sm->acked = h; /* before the callbacks: they may send */
    if (pop(sm, newly, cb, user) < 0) {
        sm->acked = before;
        return EPODE_ENOMEM;
    }
    return 0;
}

void epode__sm_drain(epode__sm *sm, epode__sm_cb cb, void *user)
{
    (void)pop(sm, sm->qlen, cb, user); /* the whole queue: needs no memory */
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

void epode__sm_end_session(epode__sm *sm)
{
    sm->resumable = sm->enabled = sm->requested = 0;
    drop_session_strings(sm);
    sm->in = 0;
}

void epode__sm_forget(epode__sm *sm)
{
    epode__sm_free(sm); /* also resets every field but the allocator */
}
