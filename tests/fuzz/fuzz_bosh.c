/* tests/fuzz/fuzz_bosh.c — the BOSH layer's answer path fed arbitrary
 * HTTP bodies: the input is split at NUL bytes into answers; the first
 * answers the session's creation request, the others the requests
 * pending then (the oldest, or by a flag the newest, so answers also come
 * out of rid order), with an occasional HTTP error status or a broken
 * exchange. Between answers the test reads what the layer hands up and
 * writes stanzas, a restart and a close, as the engine would. It must
 * never crash, leak, hand up bytes after an error or the end, nor make
 * more than two requests at once (three when the third ends the session). The first byte holds the flags. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <epode.h>

#include "transport/bosh.h"

#define MAXREQ 256

typedef struct freq {
    int pending;
    epode__bosh_done_cb done;
    void *req;
} freq;

static freq reqs[MAXREQ];
static int nreqs;

static int f_start(void *user, const char *body, size_t len, unsigned timeout_ms,
                   epode__bosh_done_cb done, void *req, void **handle)
{
    (void)user, (void)timeout_ms;
    if (nreqs == MAXREQ)
        return EPODE_ENOMEM;
    reqs[nreqs] = (freq){1, done, req};
    *handle = &reqs[nreqs++];
    int pending = 0;
    for (int i = 0; i < nreqs; i++)
        pending += reqs[i].pending;
    /* never more than two in flight; a third only to end the session */
    if (pending > 3 || (pending == 3 && !memmem(body, len, "type='terminate'", 16)))
        abort();
    return 0;
}

static void f_cancel(void *user, void *handle)
{
    (void)user;
    ((freq *)handle)->pending = 0;
}

static freq *pick(int newest)
{
    freq *r = NULL;
    for (int i = 0; i < nreqs; i++)
        if (reqs[i].pending) {
            r = &reqs[i];
            if (!newest)
                break;
        }
    return r;
}

/* Reads everything; 1 once the layer has ended (error or end). */
static int drain(epode__transport *t)
{
    char buf[4096];
    long n;
    while ((n = epode__transport_read(t, buf, sizeof buf)) > 0) {
    }
    if (n == EPODE_EAGAIN)
        return 0;
    /* ended: it stays ended */
    if (epode__transport_read(t, buf, sizeof buf) > 0)
        abort();
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    unsigned flags = data[0];
    data++, size--;
    nreqs = 0;
    memset(reqs, 0, sizeof reqs);
    epode__bosh_options o = {.domain = "example.test",
                             .max_body = 2048,
                             .http = {.start = f_start, .cancel = f_cancel}};
    epode__transport *t = NULL;
    if (epode__bosh_new(NULL, &o, &t) < 0)
        return 0;
    t->ops->handshake(t);
    int step = 0, opened = 0;
    while (size > 0 || step == 0) {
        const uint8_t *z = memchr(data, 0, size);
        size_t len = z ? (size_t)(z - data) : size;
        freq *r = pick((flags >> (step % 8)) & 1);
        if (!r)
            break;
        r->pending = 0;
        unsigned kind = (flags >> ((step + 3) % 8)) & 3;
        if (kind == 3 && step > 0 && (step & 1))
            r->done(r->req, EPODE_ENET, 0, "", 0, "reset", 0);
        else if (kind == 3 && step > 0)
            r->done(r->req, 0, 404, (const char *)data, len, "", 0);
        else
            r->done(r->req, 0, 200, (const char *)data, len, "", 13);
        if (!opened && t->ops->handshake(t) == 0) {
            static const char open[] = "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' "
                                       "to='example.test' version='1.0'/>";
            epode__transport_write(t, open, sizeof open - 1);
            opened = 1;
        }
        if (opened) {
            if (drain(t))
                break;
            static const char *const w[] = {
                "<message xmlns='jabber:client' to='a@b'><body>x</body></message>",
                "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='example.test'/>", " ",
                "<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>"};
            const char *s = w[(flags + (unsigned)step) % 4];
            epode__transport_write(t, s, strlen(s));
        }
        step++;
        if (!z)
            break;
        data = z + 1;
        size -= len + 1;
    }
    epode__transport_free(t);
    return 0;
}
