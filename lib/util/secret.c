/* lib/util/secret.c — allocation of credentials (see secret.h). The
 * invariant: a secret's bytes lie only in the pages it was given, which
 * are marked MADV_DONTDUMP while it lives (the small header naming the
 * allocator's block lies below them, in ordinary memory), and those pages
 * are zero again before they are handed back. Memory comes from the
 * caller's epode_mem_t like any other, so failing allocations can be
 * tested and counted. */
#include "secret.h"

#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "alloc.h"

/* Just below each secret. */
typedef struct head {
    void *block; /* what the allocator returned */
    size_t span; /* bytes of the secret, wiped on free */
} head;

#ifdef MADV_DONTDUMP

static size_t page_size(void)
{
    long p = sysconf(_SC_PAGESIZE);
    return p > 0 ? (size_t)p : 4096;
}

void *epode__secret_alloc(const epode_mem_t *mem, size_t size)
{
    size_t page = page_size();
    if (size == 0)
        size = 1;
    if (size > SIZE_MAX - 2 * page - sizeof(head))
        return NULL;
    /* Whole pages for the secret, and room below the first page boundary
     * for the head: madvise works on pages, and nothing else of ours may
     * share them (it would drop out of core dumps too). */
    size_t span = (size + page - 1) / page * page;
    unsigned char *block = epode__alloc(mem, sizeof(head) + page - 1 + span);
    if (!block)
        return NULL;
    uintptr_t at = ((uintptr_t)block + sizeof(head) + page - 1) & ~(uintptr_t)(page - 1);
    unsigned char *p = (unsigned char *)at;
    head h = {block, span};
    memcpy(p - sizeof h, &h, sizeof h);
    memset(p, 0, span);
    /* Best effort: where the kernel refuses, the secret is still wiped. */
    (void)madvise(p, span, MADV_DONTDUMP);
    return p;
}

void epode__secret_free(const epode_mem_t *mem, void *ptr)
{
    if (!ptr)
        return;
    unsigned char *p = ptr;
    head h;
    memcpy(&h, p - sizeof h, sizeof h);
    explicit_bzero(p, h.span); /* not optimized away, unlike memset */
    /* The pages go back to the allocator: let them be dumped again, as
     * whatever it puts there next expects. */
    (void)madvise(p, h.span, MADV_DODUMP);
    epode__dealloc(mem, h.block);
}

#else /* no MADV_DONTDUMP: wiped, but dumped like the rest */

void *epode__secret_alloc(const epode_mem_t *mem, size_t size)
{
    if (size == 0)
        size = 1;
    if (size > SIZE_MAX - sizeof(head))
        return NULL;
    unsigned char *block = epode__zalloc(mem, sizeof(head) + size);
    if (!block)
        return NULL;
    head h = {block, size};
    memcpy(block, &h, sizeof h);
    return block + sizeof h;
}

void epode__secret_free(const epode_mem_t *mem, void *ptr)
{
    if (!ptr)
        return;
    unsigned char *p = ptr;
    head h;
    memcpy(&h, p - sizeof h, sizeof h);
    explicit_bzero(p, h.span);
    epode__dealloc(mem, h.block);
}

#endif

char *epode__secret_strdup(const epode_mem_t *mem, const char *s)
{
    size_t n = strlen(s);
    if (n == SIZE_MAX)
        return NULL;
    char *p = epode__secret_alloc(mem, n + 1);
    if (p)
        memcpy(p, s, n + 1);
    return p;
}
