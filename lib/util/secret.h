/* lib/util/secret.h — memory for credentials (a password copy, cyrus'
 * password secret). A secret is zeroed when allocated and wiped before it
 * is freed; where the platform has madvise(MADV_DONTDUMP) its pages are
 * also left out of core dumps while it lives (elsewhere that step is
 * skipped, silently).
 *
 * The price, on Linux: a secret takes whole pages (about two pages of the
 * allocator's memory for a short password) and splits the heap's mapping
 * until it is freed. Use it for copies that live through a login, not for
 * one per idle session by the thousand: each live secret is a mapping, and
 * a process has about 65,000 of them (vm.max_map_count). */
#ifndef EPODE__SECRET_H
#define EPODE__SECRET_H

#include <stddef.h>

#include "epode/common.h"

/* `size` zeroed bytes (at least 1), page-aligned where pages can be kept
 * out of core dumps. Caller frees with epode__secret_free and the same
 * `mem` (NULL: libc). NULL when out of memory. */
void *epode__secret_alloc(const epode_mem_t *mem, size_t size);
/* A NUL-terminated copy of s in a secret; NULL when out of memory. */
char *epode__secret_strdup(const epode_mem_t *mem, const char *s);
/* Wipes the whole secret, gives its pages back to core dumps and frees
 * it. NULL: no-op. */
void epode__secret_free(const epode_mem_t *mem, void *p);

#endif
