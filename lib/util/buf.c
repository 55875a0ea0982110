/* lib/util/buf.c — growth and consumption for epode__buf. Keeps one spare
 * byte so the contents can always be NUL-terminated in place. */
#include "buf.h"
#include "alloc.h"

void epode__buf_init(epode__buf *b, const epode_mem_t *mem)
{
    b->data = NULL;
    b->len = b->cap = 0;
    b->mem = mem;
    b->failed = 0;
}

void epode__buf_free(epode__buf *b)
{
    epode__dealloc(b->mem, b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

int epode__buf_reserve(epode__buf *b, size_t more)
{
    if (b->failed)
        return -1;
    if (b->cap - b->len > more)
        return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len <= more) {
        if (cap > ((size_t)-1) / 2) {
            b->failed = 1;
            return -1;
        }
        cap *= 2;
    }
    char *d = epode__realloc(b->mem, b->data, cap);
    if (!d) {
        b->failed = 1;
        return -1;
    }
    b->data = d;
    b->cap = cap;
    return 0;
}

void epode__buf_append_slow(epode__buf *b, const void *data, size_t len)
{
    if (epode__buf_reserve(b, len) < 0)
        return;
    memcpy(b->data + b->len, data, len);
    b->len += len;
}

void epode__buf_consume(epode__buf *b, size_t n)
{
    if (n >= b->len) {
        b->len = 0;
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
}
