/* lib/util/buf.c — growth and consumption for epode__buf. Keeps one spare
 * byte so the contents can always be NUL-terminated in place. While a
 * buffer holds a credential (b->secret), no byte of it may be left in
 * memory the buffer no longer uses: not in a block given back, not past
 * len. */
#include "buf.h"
#include "alloc.h"

void epode__buf_init(epode__buf *b, const epode_mem_t *mem)
{
    b->data = NULL;
    b->len = b->cap = 0;
    b->mem = mem;
    b->failed = 0;
    b->secret = 0;
}

void epode__buf_free(epode__buf *b)
{
    if (b->secret && b->data)
        explicit_bzero(b->data, b->cap);
    epode__dealloc(b->mem, b->data);
    b->data = NULL;
    b->len = b->cap = 0;
    b->secret = 0;
}

/* Growth of a buffer holding a credential: a new block, the old one wiped
 * before it is given back. */
static char *move_secret(epode__buf *b, size_t cap)
{
    char *d = epode__alloc(b->mem, cap);
    if (!d)
        return NULL;
    memcpy(d, b->data, b->len);
    explicit_bzero(b->data, b->cap);
    epode__dealloc(b->mem, b->data);
    return d;
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
    char *d = b->secret && b->data ? move_secret(b, cap) : epode__realloc(b->mem, b->data, cap);
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
    if (len == 0)
        return;
    if (epode__buf_reserve(b, len) < 0)
        return;
    memcpy(b->data + b->len, data, len);
    b->len += len;
}

void epode__buf_consume(epode__buf *b, size_t n)
{
    size_t old = b->len;
    if (n >= b->len) {
        b->len = 0;
    } else {
        memmove(b->data, b->data + n, b->len - n);
        b->len -= n;
    }
    if (b->secret) {
        /* What moved left its old copy past the new end: wipe up to the
         * old end, or to the end of the credential if an owner cut len
         * below it. */
        size_t top = old > b->secret ? old : b->secret;
        if (top > b->cap)
            top = b->cap;
        explicit_bzero(b->data + b->len, top - b->len);
        b->secret = n >= b->secret ? 0 : b->secret - n;
        if (b->secret > b->len)
            b->secret = b->len;
    }
}

void epode__buf_mark_secret(epode__buf *b)
{
    b->secret = b->len;
}
