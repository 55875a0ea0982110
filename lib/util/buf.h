/* lib/util/buf.h — a growable byte buffer. Appends never fail loudly:
 * the first allocation failure sets `failed` and the owner checks once
 * at the end (a serializer appends thousands of small pieces; checking
 * each would bury its logic). Once `failed` is set the contents are not
 * to be trusted: the piece that found no room is missing, and later
 * pieces that fit the block still land (the fast path does not look at
 * `failed`, to stay a compare and a copy). So the owner drops what it
 * wrote since it last checked, or ends whatever the bytes were for.
 *
 * A buffer can hold a credential for a while (the engine's output, with a
 * SASL response in it): epode__buf_mark_secret says so, and until those
 * bytes are consumed growth and consumption leave no copy of them behind
 * (see there). Buffers never marked behave exactly as before. */
#ifndef EPODE__BUF_H
#define EPODE__BUF_H

#include <stddef.h>
#include <string.h>
#include "epode/common.h"

typedef struct epode__buf {
    char *data;
    size_t len, cap;
    const epode_mem_t *mem;
    int failed;
    size_t secret; /* bytes [0, secret) may hold a credential; 0: none */
} epode__buf;

void epode__buf_init(epode__buf *b, const epode_mem_t *mem);
void epode__buf_free(epode__buf *b);
/* Makes room for `more` bytes past len; 0 or -1 (and failed set). */
int epode__buf_reserve(epode__buf *b, size_t more);
void epode__buf_append_slow(epode__buf *b, const void *data, size_t len);

static inline void epode__buf_append(epode__buf *b, const void *data, size_t len)
{
    if (len == 0)
        return; /* `data` may then be NULL (an empty WebSocket message), and
                   memcpy must not be given NULL even for 0 bytes */
    if (b->cap - b->len > len) {
        memcpy(b->data + b->len, data, len);
        b->len += len;
    } else {
        epode__buf_append_slow(b, data, len);
    }
}

static inline void epode__buf_puts(epode__buf *b, const char *s)
{
    epode__buf_append(b, s, strlen(s));
}

static inline void epode__buf_putc(epode__buf *b, char c)
{
    if (b->cap - b->len > 1)
        b->data[b->len++] = c;
    else
        epode__buf_append_slow(b, &c, 1);
}

/* Drops the first n bytes (consumed by a writer). */
void epode__buf_consume(epode__buf *b, size_t n);

/* Everything now in b may be a credential. Until it has all been
 * consumed: growing moves the contents to a new block and wipes the old
 * one (realloc would free it as it is), consuming wipes the bytes it
 * leaves behind past len, and freeing wipes the block. A buffer whose
 * marked bytes are consumed is an ordinary buffer again. Call it once the
 * credential is written, with room reserved beforehand so that writing
 * it did not grow the block. */
void epode__buf_mark_secret(epode__buf *b);

#endif
