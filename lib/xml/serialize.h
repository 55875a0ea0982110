/* lib/xml/serialize.h — stanza trees to XML bytes, appended to a buffer
 * (the connection's output buffer on the send path). */
#ifndef EPODE__SERIALIZE_H
#define EPODE__SERIALIZE_H

#include "epode/stanza.h"
#include "util/buf.h"

/* Appends el's XML to b. flags: EPODE_TEXT_* from epode/stanza.h. Errors
 * are reported through b->failed. */
void epode__serialize(epode__buf *b, const epode_stanza_t *el, unsigned flags);

/* Appends escaped text / attribute-value bytes. */
void epode__escape_text(epode__buf *b, const char *s, size_t len, int one_line);
void epode__escape_attr(epode__buf *b, const char *s, size_t len);

#endif
