/* lib/stream/sm.h — stream management (XEP-0198) bookkeeping: the
 * counters (modulo 2^32) and the queue of sent stanzas not yet
 * acknowledged, kept as the bytes that were written (DESIGN: nothing is
 * serialized twice) with each stanza's id. No XML and no I/O here: the
 * engine speaks the protocol. */
#ifndef EPODE__SM_H
#define EPODE__SM_H

#include <stddef.h>
#include <stdint.h>

#include "epode/common.h"
#include "util/buf.h"

typedef struct epode__sm_entry {
    char *id;   /* the stanza's id attribute, or NULL */
    size_t len; /* its bytes in the queue's byte buffer */
} epode__sm_entry;

typedef struct epode__sm {
    const epode_mem_t *mem;
    int requested;    /* <enable/> sent: outbound counting has started */
    int enabled;      /* <enabled/> received: inbound counting too */
    uint32_t out;     /* stanzas sent since <enable/> */
    uint32_t acked;   /* the server's last h */
    uint32_t in;      /* stanzas received since <enabled/> (our h) */
    char *id;         /* the server's session id, for <resume previd/> */
    int resumable;    /* the server allows resumption of this session */
    char *jid;        /* the full JID bound in that session */
    epode__sm_entry *q; /* ring of unacknowledged stanzas, oldest first */
    size_t qhead, qlen, qcap;
    epode__buf bytes; /* their serialized bytes, oldest first */
} epode__sm;

void epode__sm_init(epode__sm *sm, const epode_mem_t *mem);
void epode__sm_free(epode__sm *sm);

/* Records a sent stanza (its bytes and id). `secret`: the bytes hold a
 * credential (an in-band registration password): the queue's buffer is
 * then wiped wherever it leaves them (util/buf.h, mark_secret) until they
 * are acknowledged. EPODE_ENOMEM leaves the queue as it was and the
 * stanza uncounted. */
int epode__sm_push(epode__sm *sm, const char *id, const char *bytes, size_t len, int secret);

/* 1 while the queue may hold such a credential. */
static inline int epode__sm_holds_secret(const epode__sm *sm)
{
    return sm->bytes.secret != 0;
}

/* Called for each stanza leaving the queue: id may be NULL; bytes/len
 * are the stanza as written (valid during the call). */
typedef void (*epode__sm_cb)(void *user, const char *id, const char *bytes, size_t len);

/* The server says it has handled `h` stanzas. Pops (and reports) the
 * newly acknowledged ones. EPODE_EPROTOCOL, changing nothing, if h
 * acknowledges more than was sent (a server bug or a lie); EPODE_ENOMEM,
 * changing nothing, if the rest of the queue could not be moved aside.
 * The callback may send or drain: the queue is consistent at each call. */
int epode__sm_ack(epode__sm *sm, uint32_t h, epode__sm_cb cb, void *user);

/* Reports and drops every stanza still unacknowledged. */
void epode__sm_drain(epode__sm *sm, epode__sm_cb cb, void *user);

/* Calls cb for each stanza still queued, oldest first, without removing
 * it (resending after a resume). */
void epode__sm_each(epode__sm *sm, epode__sm_cb cb, void *user);

/* Ends the session (not resumable, its id and inbound count gone) but
 * keeps the queue and its counters: its stanzas wait for a new session
 * (resend policy). */
void epode__sm_end_session(epode__sm *sm);

/* The longest session id and JID kept for resumption (bytes). */
#define EPODE__SM_MAX_ID 255
#define EPODE__SM_MAX_JID 3071

/* The server enabled a resumable session `id` for the bound `jid`: keeps
 * copies (on the heap: a session without resumption carries none) and
 * sets resumable. EPODE_EINVAL for an empty or over-long value and
 * EPODE_ENOMEM leave the session not resumable. */
int epode__sm_set_resumable(epode__sm *sm, const char *id, const char *jid);

/* Forgets the session (id, counters), keeping the allocator; the queue
 * must be drained first. */
void epode__sm_forget(epode__sm *sm);

/* Bytes the state holds beyond its own struct: the queue and strings. */
size_t epode__sm_footprint(const epode__sm *sm);

/* Stanzas sent and not yet acknowledged. */
static inline size_t epode__sm_pending(const epode__sm *sm) { return sm->qlen; }

#endif
