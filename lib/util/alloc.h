/* lib/util/alloc.h — allocation through an application's epode_mem_t
 * (NULL: libc), and blocks handed to the application that remember their
 * allocator so epode_free() can release them. */
#ifndef EPODE__ALLOC_H
#define EPODE__ALLOC_H

#include <stddef.h>
#include "epode/common.h"

void *epode__alloc(const epode_mem_t *mem, size_t size);
void *epode__zalloc(const epode_mem_t *mem, size_t size);
void *epode__realloc(const epode_mem_t *mem, void *ptr, size_t size);
void epode__dealloc(const epode_mem_t *mem, void *ptr);
/* NUL-terminated copy of len bytes; NULL on failure. */
char *epode__strndup(const epode_mem_t *mem, const char *s, size_t len);
char *epode__strdup(const epode_mem_t *mem, const char *s);

/* A block for the application to free with epode_free(): `size` usable
 * bytes, preceded by a hidden header naming its allocator. */
void *epode__user_alloc(const epode_mem_t *mem, size_t size);
/* Grows such a block; NULL leaves the old one intact. */
void *epode__user_realloc(void *ptr, size_t size);

#endif
