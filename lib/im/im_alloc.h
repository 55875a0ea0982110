/* lib/im/im_alloc.h — allocation for the IM helpers through the context's
 * allocator (epode_ctx_mem), so an application's allocator and the
 * failing-allocator tests see the helpers' memory too. Built only on the
 * public API (epode_mem_t), like the helpers themselves. */
#ifndef EPODE_IM_ALLOC_H
#define EPODE_IM_ALLOC_H

#include <stdlib.h>
#include <string.h>

#include <epode.h>

/* The allocator of the context a connection belongs to (NULL: libc). */
static inline const epode_mem_t *im_mem(const epode_conn_t *conn)
{
    return epode_ctx_mem(epode_conn_ctx(conn));
}

static inline void *im_alloc(const epode_mem_t *mem, size_t n)
{
    if (n == 0)
        n = 1;
    return mem ? mem->malloc(n, mem->user) : malloc(n);
}

static inline void *im_zalloc(const epode_mem_t *mem, size_t n)
{
    void *p = im_alloc(mem, n);
    if (p)
        memset(p, 0, n);
    return p;
}

static inline void *im_realloc(const epode_mem_t *mem, void *p, size_t n)
{
    if (n == 0)
        n = 1;
    return mem ? mem->realloc(p, n, mem->user) : realloc(p, n);
}

static inline void im_free(const epode_mem_t *mem, void *p)
{
    if (!p)
        return;
    if (mem)
        mem->free(p, mem->user);
    else
        free(p);
}

static inline char *im_strndup(const epode_mem_t *mem, const char *s, size_t n)
{
    char *d = im_alloc(mem, n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

static inline char *im_strdup(const epode_mem_t *mem, const char *s)
{
    return s ? im_strndup(mem, s, strlen(s)) : NULL;
}

#endif
