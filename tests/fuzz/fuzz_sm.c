/* tests/fuzz/fuzz_sm.c — libFuzzer target for the stream-management
 * counters and queue (lib/stream/sm.c): the input is a program of pushes,
 * acknowledgements (any h, near 2^32 too), drains and forgets, with a
 * starting counter from the first bytes. A model of what must be true is
 * kept beside it: an ack is refused (and changes nothing) exactly when it
 * confirms more than is queued, modulo 2^32; every pushed stanza is
 * reported once, in order, with its own bytes; nothing leaks. Aborts on a
 * broken invariant. The ack callback sometimes pushes from inside, as an
 * application's ack callback may send. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stream/sm.h"

static void require(int cond)
{
    if (!cond)
        abort();
}

typedef struct model {
    epode__sm *sm;
    uint64_t pushed, reported; /* stanzas, in order */
    int push_from_cb;
} model;

static int push_one(model *m)
{
    char id[32], body[64];
    snprintf(id, sizeof id, "s%llu", (unsigned long long)m->pushed);
    int n = snprintf(body, sizeof body, "<message id='%s'/>", id);
    if (epode__sm_push(m->sm, id, body, (size_t)n, 0) < 0)
        return -1;
    m->pushed++;
    return 0;
}

static void on_report(void *user, const char *id, const char *bytes, size_t len)
{
    model *m = user;
    char want[32], body[64];
    snprintf(want, sizeof want, "s%llu", (unsigned long long)m->reported);
    int n = snprintf(body, sizeof body, "<message id='%s'/>", want);
    require(id && strcmp(id, want) == 0);
    require(len == (size_t)n && memcmp(bytes, body, len) == 0);
    m->reported++;
    if (m->push_from_cb) {
        m->push_from_cb = 0;
        push_one(m); /* may move the queue's buffers: the bytes lent must not */
        require(memcmp(bytes, body, len) == 0);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    epode__sm sm;
    epode__sm_init(&sm, NULL);
    model m = {.sm = &sm};
    if (size >= 4) {
        /* start anywhere, near the wrap above all */
        uint32_t start = (uint32_t)data[0] << 24 | (uint32_t)data[1] << 16 | (uint32_t)data[2] << 8 |
                         data[3];
        sm.out = sm.acked = start;
        data += 4;
        size -= 4;
    }
    for (size_t i = 0; i < size; i++) {
        uint8_t op = data[i];
        switch (op & 7) {
        case 0: case 1: case 2: /* push 1..32 */
            for (int k = 0; k <= (op >> 3); k++)
                if (push_one(&m) < 0)
                    break;
            break;
        case 3: case 4: { /* ack a count relative to what was acked */
            uint32_t delta = op >> 3;
            if (op & 0x80)
                delta = 0xFFFFFFFFu - delta; /* a lie far beyond, or far behind */
            uint32_t h = sm.acked + delta;
            size_t queued = epode__sm_pending(&sm);
            uint64_t before = m.reported;
            m.push_from_cb = (op & 0x40) != 0;
            int rc = epode__sm_ack(&sm, h, on_report, &m);
            if (delta > queued) {
                require(rc < 0 && m.reported == before && epode__sm_pending(&sm) == queued);
            } else {
                require(rc == 0 && m.reported == before + delta && sm.acked == h);
            }
            break;
        }
        case 5: /* the stream ended: everything handed back */
            m.push_from_cb = 0;
            epode__sm_drain(&sm, on_report, &m);
            require(epode__sm_pending(&sm) == 0);
            require(m.reported == m.pushed);
            break;
        case 6: { /* resend: each queued stanza, in order, unchanged */
            model peek = m;
            peek.push_from_cb = 0;
            epode__sm_each(&sm, on_report, &peek);
            require(peek.reported == m.pushed);
            break;
        }
        default: /* forget the session (queue drained first, as the engine does) */
            m.push_from_cb = 0;
            epode__sm_drain(&sm, on_report, &m);
            epode__sm_forget(&sm);
            require(sm.out == 0 && sm.acked == 0 && epode__sm_pending(&sm) == 0);
            break;
        }
        require(epode__sm_pending(&sm) == m.pushed - m.reported);
    }
    epode__sm_free(&sm);
    return 0;
}
