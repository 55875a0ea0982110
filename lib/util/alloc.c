/* lib/util/alloc.c — every epode allocation passes here, so an
 * application allocator (and the tests' failing allocator) sees all of
 * them. Never aborts: callers check for NULL. */
#include "alloc.h"

#include <stdlib.h>
#include <string.h>
#include <stdalign.h>

void *epode__alloc(const epode_mem_t *mem, size_t size)
{
    if (size == 0)
        size = 1;
    return mem ? mem->malloc(size, mem->user) : malloc(size);
}

void *epode__zalloc(const epode_mem_t *mem, size_t size)
{
    void *p = epode__alloc(mem, size);
    if (p)
        memset(p, 0, size);
    return p;
}

void *epode__realloc(const epode_mem_t *mem, void *ptr, size_t size)
{
    if (size == 0)
        size = 1;
    return mem ? mem->realloc(ptr, size, mem->user) : realloc(ptr, size);
}

void epode__dealloc(const epode_mem_t *mem, void *ptr)
{
    if (!ptr)
        return;
    if (mem)
        mem->free(ptr, mem->user);
    else
        free(ptr);
}

char *epode__strndup(const epode_mem_t *mem, const char *s, size_t len)
{
    char *p = epode__alloc(mem, len + 1);
    if (!p)
        return NULL;
    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

char *epode__strdup(const epode_mem_t *mem, const char *s)
{
    return epode__strndup(mem, s, strlen(s));
}

/* The header keeps the block's payload maximally aligned. */
typedef union user_hdr {
    const epode_mem_t *mem;
    max_align_t align;
} user_hdr;

void *epode__user_alloc(const epode_mem_t *mem, size_t size)
{
    if (size > (size_t)-1 - sizeof(user_hdr))
        return NULL;
    user_hdr *h = epode__alloc(mem, sizeof *h + size);
    if (!h)
        return NULL;
    h->mem = mem;
    return h + 1;
}

void *epode__user_realloc(void *ptr, size_t size)
{
    if (!ptr || size > (size_t)-1 - sizeof(user_hdr))
        return NULL;
    user_hdr *h = (user_hdr *)ptr - 1;
    const epode_mem_t *mem = h->mem;
    user_hdr *n = epode__realloc(mem, h, sizeof *n + size);
    if (!n)
        return NULL;
    return n + 1;
}

void epode_free(void *ptr)
{
    if (!ptr)
        return;
    user_hdr *h = (user_hdr *)ptr - 1;
    epode__dealloc(h->mem, h);
}
