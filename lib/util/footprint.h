/* lib/util/footprint.h — what one session holds, by part, in bytes asked
 * of the allocator (its own bookkeeping not included). For the memory
 * benchmark and the CI guard on it (bench/footprint.c): each layer fills
 * in its own part, so the figures follow the code. */
#ifndef EPODE__FOOTPRINT_H
#define EPODE__FOOTPRINT_H

#include <stddef.h>
#include <string.h>

typedef struct epode__footprint {
    size_t conn;     /* the connection object (timers and options inline) and its strings */
    size_t engine;   /* the stream engine and its copies of the login strings */
    size_t parser;   /* the parser's state and saved stream header (no libxml2 context) */
    size_t buffers;  /* bytes waiting to be written, and the buffers' spare room */
    size_t sm;       /* the stream-management queue and the session's id and JID */
    size_t features; /* the server's stream features, kept for the session */
    size_t dispatch; /* handler tables */
    size_t notes;    /* the connection's notes for the application (security line...) */
} epode__footprint;

static inline size_t epode__str_bytes(const char *s) { return s ? strlen(s) + 1 : 0; }

#endif
