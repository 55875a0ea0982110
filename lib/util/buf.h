/* lib/util/buf.h — a growable byte buffer. Appends never fail loudly:
 * the first allocation failure sets `failed`, later appends do nothing,
 * and the owner checks once at the end (a serializer appends thousands
 * of small pieces; checking each would bury its logic). */
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
} epode__buf;

void epode__buf_init(epode__buf *b, const epode_mem_t *mem);
void epode__buf_free(epode__buf *b);
/* Makes room for `more` bytes past len; 0 or -1 (and failed set). */
int epode__buf_reserve(epode__buf *b, size_t more);
void epode__buf_append_slow(epode__buf *b, const void *data, size_t len);

static inline void epode__buf_append(epode__buf *b, const void *data, size_t len)
{
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

#endif
