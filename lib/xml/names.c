/* lib/xml/names.c — the names of the values of the parser's public enums
 * (parser.h): lower-case snake words for logs, bindings and tools. Static
 * strings; NULL for a value outside the enum. Never allocates. */
#include "epode/parser.h"

#define NAME_AT(table, first, v)                                                                   \
    ((int)(v) >= (first) && (int)(v) - (first) < (int)(sizeof table / sizeof *table)               \
         ? table[(int)(v) - (first)]                                                               \
         : NULL)

const char *epode_parser_event_name(epode_parser_event_t event)
{
    static const char *const names[] = {"stream_open", "stanza", "stream_close", "skipped"};
    return NAME_AT(names, EPODE_PARSER_STREAM_OPEN, event);
}

const char *epode_parser_limit_name(epode_parser_limit_t limit)
{
    static const char *const names[] = {"stanza_bytes", "depth", "attrs", "text_bytes"};
    return NAME_AT(names, EPODE_LIMIT_STANZA_BYTES, limit);
}
