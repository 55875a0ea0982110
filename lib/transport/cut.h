/* lib/transport/cut.h — the output cutter shared by the message-framed
 * transports (websocket.c, bosh.c): what the stream engine writes in
 * framed mode is a sequence of complete top-level elements, possibly
 * with whitespace between them (the keepalive), handed over in chunks
 * cut anywhere. The cutter follows tag depth (the engine's serializer
 * escapes '<' in text and attribute values and writes no comments,
 * CDATA or PIs) and hands each complete element to its owner, keeping
 * only an element cut short until the rest comes. */
#ifndef EPODE__CUT_H
#define EPODE__CUT_H

#include <stddef.h>

#include "util/buf.h"

/* One complete element d[start, end): 0, or a negative code that stops
 * the cutting (returned by epode__cut_write). */
typedef int (*epode__cut_element_cb)(void *user, const char *d, size_t start, size_t end);
/* Whitespace between elements: called once per epode__cut_write call
 * that met some (before the elements after it). May be NULL. */
typedef int (*epode__cut_space_cb)(void *user);

typedef struct epode__cut {
    epode__buf out;       /* bytes of an element cut short (a secret buffer) */
    size_t cut_pos;       /* how far `out` has been scanned */
    size_t frame_start;   /* where the element being cut began (-1: none yet) */
    int depth;
    int state;
    char quote, last;     /* quote char inside a value; last byte in a tag */
    epode__cut_element_cb element;
    epode__cut_space_cb space;
    void *user;
} epode__cut;

void epode__cut_init(epode__cut *c, const epode_mem_t *mem, epode__cut_element_cb element,
                     epode__cut_space_cb space, void *user);
void epode__cut_free(epode__cut *c);
/* Cuts buf[0, len) after what came before. 0: every byte taken (complete
 * elements given to the callback, the rest kept); a callback's negative
 * code; EPODE_ENOMEM with *lost 0: nothing taken (offer the bytes
 * again), with *lost 1: the elements handed over are gone but the rest
 * could not be kept (the stream is broken: fail). Elements are handed
 * from the caller's bytes when nothing is held, so most cost no copy.
 * What is written may be a credential: `out` is a secret buffer. */
int epode__cut_write(epode__cut *c, const void *buf, size_t len, int *lost);
/* 1 while part of an element is held. */
static inline int epode__cut_holding(const epode__cut *c) { return c->out.len > 0; }

#endif
