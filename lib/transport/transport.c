/* lib/transport/transport.c — what every transport shares: its error
 * text, kept on the heap and only while there is an error to tell (an
 * idle link carries none; it was an inline 160 bytes in every transport,
 * two per TLS session).
 *
 * The layers and how they stack (tcp | app → proxy → tls → websocket…),
 * the one function that builds a stack from a connection's options, and
 * how to add a layer: the comment at the top of stack.c. */
#include "transport.h"

#include <stdarg.h>
#include <stdio.h>

#include "util/alloc.h"

void epode__transport_set_error(epode__transport *t, const char *fmt, ...)
{
    char tmp[EPODE__TRANSPORT_ERROR_MAX];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    epode__dealloc(t->mem, t->error);
    t->error = n > 0 ? epode__strdup(t->mem, tmp) : NULL; /* out of memory: no words */
}

void epode__transport_copy_error(epode__transport *to, const epode__transport *from)
{
    if (to != from)
        epode__transport_set_error(to, "%s", epode__transport_error(from));
}

void epode__transport_clear_error(epode__transport *t)
{
    epode__dealloc(t->mem, t->error);
    t->error = NULL;
}
