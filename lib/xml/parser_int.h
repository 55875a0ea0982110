/* lib/xml/parser_int.h — what text.c needs of the parser: a fragment mode
 * (the first element is the stanza, no stream around it) (the final
 * check is the public epode_parser_finish()). */
#ifndef EPODE__PARSER_INT_H
#define EPODE__PARSER_INT_H

#include "epode/parser.h"

int epode__parser_new(const epode_mem_t *mem, epode_parser_cb cb, void *user, int fragment,
                      epode_parser_t **out);

/* Frees the libxml2 context (about 15 KB) while the stream is idle
 * between stanzas; the next feed builds a new one and replays the stream
 * header. EPODE_ESTATE when not at such a point (nothing changes). */
int epode__parser_compact(epode_parser_t *p);

/* For tests: how many times a fresh libxml2 context replaced the one in
 * use mid-stream (dictionary grown, big element skipped, compaction), and
 * the bytes of string pools in the current one's dictionary (0 without a
 * context). */
unsigned epode__parser_rebuilds(const epode_parser_t *p);
size_t epode__parser_dict_bytes(const epode_parser_t *p);

#endif
