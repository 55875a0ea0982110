/* epode/parser.h — the incremental XMPP stream parser: bytes in, in any
 * chunks; stream open, one tree per depth-1 element, stream close and
 * errors out. It enforces XMPP's restricted XML (RFC 6120 §11) and size
 * limits, and never fetches or expands anything.
 *
 * Malformed XML and restricted-XML violations end the stream. A
 * well-formed depth-1 element (a stanza) that breaks a local limit does
 * not: it is skipped whole and reported as EPODE_PARSER_SKIPPED, and the
 * stream goes on. Only what cannot be skipped in bounded memory ends the
 * stream (see epode_parser_limit_t). */
#ifndef EPODE_PARSER_H
#define EPODE_PARSER_H

#include <stddef.h>
#include "common.h"
#include "stanza.h"

#ifdef __cplusplus
extern "C" {
#endif

/** A stream parser (opaque). One per stream direction. */
typedef struct epode_parser epode_parser_t;

/** What the parser reports. */
typedef enum epode_parser_event {
    /** The stream header arrived. The element is `<stream:stream>` with
     * its attributes and no children. */
    EPODE_PARSER_STREAM_OPEN = 1,
    /** A complete depth-1 element (a stanza, or a stream-level element
     * such as `<stream:features/>`). */
    EPODE_PARSER_STANZA,
    /** `</stream:stream>` arrived. The element is NULL. */
    EPODE_PARSER_STREAM_CLOSE,
    /** A depth-1 element that broke a local limit (epode_parser_skipped_limit()
     * says which) but was well-formed to its end. Its tree was not built
     * (what was built when the limit broke is freed, and its bytes are not
     * kept); the stream goes on with the next element. Well-formedness and
     * restricted XML are still checked inside it: a violation there ends
     * the stream as anywhere else, and no SKIPPED is reported.
     *
     * The element is a small summary, not the element: its name, namespace
     * and prefix, and those of its `from`, `to`, `id` and `type`
     * attributes (unprefixed) it carried, each at most 3071 bytes long
     * (the longest JID; a longer value is left out). No other attributes,
     * no children, no text. Its start tag is always parsed before the
     * event, so all four are there whatever limit broke. An application
     * answers an IQ request with a policy-violation error from it. Only
     * streams skip: the fragment parser behind epode_stanza_from_text()
     * fails with EPODE_ELIMIT instead. */
    EPODE_PARSER_SKIPPED
} epode_parser_event_t;
/** The name of a value of epode_parser_event_t, e.g. "stream_open" for EPODE_PARSER_STREAM_OPEN: a static lower-case
 * string (never to be freed), NULL for a value outside the enum. */
EPODE_API const char *epode_parser_event_name(epode_parser_event_t event);

/**
 * The event callback. `el` is borrowed for the duration of the call: take
 * a reference (epode_stanza_ref) to keep it. The callback may call
 * epode_parser_stop() or epode_parser_reset() on its parser, and nothing
 * else of it.
 */
typedef void (*epode_parser_cb)(void *user, epode_parser_event_t event, epode_stanza_t *el);

/**
 * Local limits, per parser; each has a default and can be changed with
 * epode_parser_set_limit(). A depth-1 element that breaks one is skipped
 * (EPODE_PARSER_SKIPPED), not an error. The defaults accept what XMPP
 * servers relay: Prosody and ejabberd forward stanzas of up to 256 KiB as
 * the sender wrote them, plus what the server adds (delay, stanza-id,
 * addresses, carbons and MAM wrappers, namespace declarations it writes
 * out again), and do not limit nesting or attributes beyond that size.
 *
 * What still ends the stream with policy-violation (EPODE_ELIMIT), because
 * skipping it would need memory without bound (libxml2 keeps a whole start
 * tag, a stack entry per open element and a dictionary of names):
 * - a stream header larger than EPODE_LIMIT_STANZA_BYTES, or with more
 *   attributes than EPODE_LIMIT_ATTRS;
 * - one start tag (or other markup libxml2 must hold whole) larger than
 *   the byte limit or 2 MiB, whichever is larger;
 * - a skipped element larger than twice the byte limit or 4 MiB, whichever
 *   is larger, or nested deeper than the depth limit or 131072, whichever
 *   is larger;
 * - more distinct names and namespaces inside one element than libxml2's
 *   dictionary is allowed (1 MiB of names or the byte limit, whichever is
 *   larger; or 131072 distinct names).
 */
typedef enum epode_parser_limit {
    /** Bytes of one depth-1 element, from its `<` to its end. Also
     * bounds the stream header (an error there). Default 327680
     * (256 KiB as sent, plus 64 KiB for what the server adds). */
    EPODE_LIMIT_STANZA_BYTES = 1,
    /** Element nesting inside a stanza (the stanza itself is 1).
     * Default 256. */
    EPODE_LIMIT_DEPTH,
    /** Attributes on one element (namespace declarations not counted).
     * Default 256. */
    EPODE_LIMIT_ATTRS,
    /** Bytes of character data in one stanza, all elements together.
     * Default 327680, as for EPODE_LIMIT_STANZA_BYTES. */
    EPODE_LIMIT_TEXT_BYTES
} epode_parser_limit_t;
/** The name of a value of epode_parser_limit_t, e.g. "stanza_bytes" for EPODE_LIMIT_STANZA_BYTES: a static lower-case
 * string (never to be freed), NULL for a value outside the enum. */
EPODE_API const char *epode_parser_limit_name(epode_parser_limit_t limit);

/**
 * Makes a parser that reports to `cb` with `user`. Caller owns *out and
 * frees it with epode_parser_free(). Errors: EPODE_EINVAL, EPODE_ENOMEM.
 */
EPODE_API int epode_parser_new(const epode_mem_t *mem, epode_parser_cb cb, void *user,
                               epode_parser_t **out);

/** Frees the parser (not from inside its callback). NULL is a no-op. */
EPODE_API void epode_parser_free(epode_parser_t *p);

/** Sets a limit; EPODE_EINVAL for an unknown limit or a value of 0. Takes
 * effect from the next byte fed (an element already being skipped stays
 * skipped). */
EPODE_API int epode_parser_set_limit(epode_parser_t *p, epode_parser_limit_t limit,
                                     size_t value);

/**
 * Feeds `len` bytes of the stream; events are reported from inside this
 * call. Chunks may split tags, entities or UTF-8 sequences anywhere.
 *
 * Returns the number of bytes NOT consumed — 0 normally; more when the
 * callback called epode_parser_reset(): the bytes after the element that
 * was being reported are left to the caller, untouched (for example what
 * a server sent after `<proceed/>`: they sit at the end of `data`). Calling
 * it from the parser's own callback gives EPODE_ESTATE.
 * Returns a negative code on error: EPODE_EXML (the stream is bad;
 * epode_parser_condition() says how) or EPODE_ELIMIT (policy-violation:
 * something that cannot be skipped, see epode_parser_limit_t).
 * After an error the parser refuses everything until reset.
 */
EPODE_API long epode_parser_feed(epode_parser_t *p, const char *data, size_t len);

/**
 * Starts over for a new stream (after STARTTLS or SASL success): the next
 * bytes must begin with a new stream header. Called from the callback, it
 * takes effect when the callback returns and works like stop for the rest
 * of the fed bytes. Clears any error. Errors: EPODE_ENOMEM.
 */
EPODE_API int epode_parser_reset(epode_parser_t *p);

/**
 * Says the input has ended (the peer closed the connection). Returns 0 if
 * it ended at a clean point: after `</stream:stream>`, between stanzas,
 * or before any byte; EPODE_EXML (not-well-formed) if it ended inside the
 * stream header or a stanza, whose bytes are then lost; the earlier error
 * if the parser had already failed.
 */
EPODE_API int epode_parser_finish(epode_parser_t *p);

/** The stream error condition that stopped the parser, or
 * EPODE_STREAM_NONE. */
EPODE_API epode_stream_cond_t epode_parser_condition(const epode_parser_t *p);

/** A short English description of the error (borrowed, "" if none). */
EPODE_API const char *epode_parser_error_text(const epode_parser_t *p);

/**
 * Which limit the element being reported as EPODE_PARSER_SKIPPED broke
 * (the first one, if it broke several). Valid only inside the callback for
 * that event; 0 (no limit) anywhere else, and for a NULL parser.
 */
EPODE_API epode_parser_limit_t epode_parser_skipped_limit(const epode_parser_t *p);

/** 1 while a stream is open (header seen, close not yet), else 0. */
EPODE_API int epode_parser_stream_is_open(const epode_parser_t *p);

#ifdef __cplusplus
}
#endif
#endif
