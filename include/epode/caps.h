/* epode/caps.h — entity capabilities (XEP-0115): our verification string
 * computed from what our disco helper answers and attached to every
 * available presence we send; others' capabilities learned from their
 * presence, fetched once per `ver`, verified before they are trusted and
 * cached, and queried per JID.
 *
 * A caps helper sits on a disco helper (epode/disco.h) of the same
 * connection: make it with epode_caps_new() and free it with
 * epode_caps_free() before the disco helper. It survives reconnects.
 * Freeing the connection first is allowed: the helper becomes inert (what
 * it learnt from presence is forgotten, without callbacks; the cache and
 * our ver stay); still free it, then the disco helper. */
#ifndef EPODE_CAPS_H
#define EPODE_CAPS_H

#include <stddef.h>
#include "common.h"
#include "conn.h"
#include "disco.h"

#ifdef __cplusplus
extern "C" {
#endif

#define EPODE_NS_CAPS "http://jabber.org/protocol/caps" /**< Entity capabilities (XEP-0115). */

/** Room for any verification string epode computes (SHA-512 in base64
 * is 88 characters), NUL included. */
#define EPODE_CAPS_VER_MAX 96

/** A caps helper (opaque). */
typedef struct epode_caps epode_caps_t;

/**
 * Computes the XEP-0115 §5.1 verification string of `info` with hash
 * `algo` ("sha-1", "sha-224", "sha-256", "sha-384" or "sha-512", the IANA
 * names XEP-0115 uses) into `out` (`size` bytes, NUL-terminated). Forms
 * whose FORM_TYPE is missing or not hidden are ignored, as §5.4 says.
 * Errors: EPODE_EINVAL (unknown algo, NULL argument), EPODE_EPROTOCOL
 * (ill-formed per §5.4: a repeated identity, feature or FORM_TYPE, or a
 * FORM_TYPE with differing values; or ambiguous: a '<' in any string
 * that is hashed, a '/' in an identity's category, type or xml:lang, an
 * identity without category or type — each lets another disco#info hash
 * to the same string), EPODE_ERANGE (`size` too small), EPODE_ENOMEM.
 */
EPODE_API int epode_caps_hash(const epode_disco_info_t *info, const char *algo, char *out,
                              size_t size);

/**
 * Makes a caps helper: adds the caps feature to `disco`, computes our
 * `ver` (SHA-1) and from then on attaches `<c xmlns='…caps' hash='sha-1'
 * node='NODE' ver='…'/>` to every available presence sent on the
 * connection, answers disco#info for "NODE#VER", re-sends the last
 * broadcast presence when our features change, and learns others'
 * capabilities from their presence. `node` names the software (a URI,
 * e.g. "https://example.org/mybot"). Caller owns *out. Errors:
 * EPODE_EINVAL, EPODE_ESTATE (the disco helper's connection was freed),
 * EPODE_ENOMEM.
 */
EPODE_API int epode_caps_new(epode_disco_t *disco, const char *node, epode_caps_t **out);

/** Stops everything above and frees the helper (the caps feature is
 * removed from the disco helper). NULL is a no-op. */
EPODE_API void epode_caps_free(epode_caps_t *caps);

/** Our current verification string (borrowed, changes when features
 * do), or NULL if it could not be computed. */
EPODE_API const char *epode_caps_get_ver(const epode_caps_t *caps);

/**
 * Does `jid` (a full JID, as in its presence) support `feature`? 1 yes,
 * 0 no (its capabilities are known and verified and lack it),
 * EPODE_ENOTFOUND (nothing verified is known about it: no presence with
 * caps, still being fetched, or its answer failed verification),
 * EPODE_EINVAL.
 */
EPODE_API int epode_caps_supports(const epode_caps_t *caps, const char *jid, const char *feature);

/** The verified disco#info of `jid` (borrowed until its presence changes
 * or the helper is freed), NULL if none is known. */
EPODE_API const epode_disco_info_t *epode_caps_get_info(const epode_caps_t *caps, const char *jid);

/** Told when what is known about `jid` changes: `info` (borrowed for the
 * call) is its verified capabilities, or NULL when they are gone
 * (unavailable, presence without caps, disconnected). */
typedef void (*epode_caps_cb)(epode_caps_t *caps, const char *jid,
                              const epode_disco_info_t *info, void *user);
/** Sets the change callback (NULL: none). */
EPODE_API int epode_caps_set_cb(epode_caps_t *caps, epode_caps_cb cb, void *user);

/**
 * Persistence of the cache, so capabilities survive restarts. `load`
 * returns the XML text `store` was given for this hash and ver (borrowed
 * until the callback runs again, NULL if unknown); whatever it returns is
 * verified again before it is used. `store` is told of every newly
 * verified entry, as the text of its disco#info `<query/>`.
 */
typedef const char *(*epode_caps_load_cb)(void *user, const char *hash, const char *ver);
/** Told of a newly verified entry: `xml` is its disco#info `<query/>`
 * as text, to keep under (`hash`, `ver`); all borrowed for the call. */
typedef void (*epode_caps_store_cb)(void *user, const char *hash, const char *ver,
                                    const char *xml);
/** Sets the persistence hooks (either may be NULL). */
EPODE_API int epode_caps_set_store(epode_caps_t *caps, epode_caps_load_cb load,
                                   epode_caps_store_cb store, void *user);

/** Number of verified entries in the cache (for tests and statistics). */
EPODE_API size_t epode_caps_cache_count(const epode_caps_t *caps);

/*
 * What others' answers may make the helper keep, and when an answer is
 * shared. A peer that announces a `ver` is asked for its disco#info
 * (one request per ver at a time); the answer is checked against the
 * ver. It then serves every JID announcing that ver (cached, handed to
 * the store hook) only if the string it hashes cannot be read as another
 * disco#info: besides what epode_caps_hash() refuses, no feature may look
 * like an identity ("a/b/c…") and, if it has forms, its first FORM_TYPE
 * may not sort after its last feature (otherwise features could be moved
 * into a form with the same hash and honest JIDs would appear to lack
 * them). A matching answer that fails only this test is its sender's
 * alone: that JID is known, and every other JID is asked for its own.
 * Entries keep only what the hash covers (identities, features, forms
 * with a hidden FORM_TYPE and their fields' values); a string XEP-0115
 * hashes longer than 32 KiB is refused. The contents of forms can still
 * be rearranged by a peer for a ver it did not make (XEP-0115 cannot
 * tell a field's name from a value): do not trust them for decisions.
 *
 * Bounds (a stranger's presence can reach us): at most `max_peers` JIDs
 * are tracked (default 4096; presence from more is not looked at and
 * their capabilities stay unknown), `max_queries` disco#info requests are
 * out at once (default 16; others wait their turn, oldest first) and
 * entries hold about `max_bytes` (default 8 MiB; unused cached entries
 * are dropped first, then answers are not kept). Reaching a bound calls
 * the limit callback.
 */

/** Which bound was reached. */
typedef enum epode_caps_limit {
    EPODE_CAPS_LIMIT_PEERS = 1, /**< `jid` is not tracked: max_peers are */
    EPODE_CAPS_LIMIT_QUERIES,   /**< `jid` waits: max_queries requests are out */
    EPODE_CAPS_LIMIT_MEMORY     /**< the answer for `jid` (its own, or the
                                     store hook's) was not kept: max_bytes */
} epode_caps_limit_t;
/** The name of a value of epode_caps_limit_t, e.g. "queries" for EPODE_CAPS_LIMIT_QUERIES: a static lower-case
 * string (never to be freed), NULL for a value outside the enum. */
EPODE_API const char *epode_caps_limit_name(epode_caps_limit_t limit);

/** Told that a bound was reached, each time it affects a JID (`jid`
 * borrowed for the call). Runs inside the presence or IQ handler. */
typedef void (*epode_caps_limit_cb)(epode_caps_t *caps, epode_caps_limit_t limit,
                                    const char *jid, void *user);
/** Sets the limit callback (NULL: none). */
EPODE_API int epode_caps_set_limit_cb(epode_caps_t *caps, epode_caps_limit_cb cb, void *user);

/** Sets the bounds above; 0 keeps a bound as it is. Lower bounds apply
 * to what comes next (nothing already kept is dropped). EPODE_EINVAL for
 * a NULL helper. */
EPODE_API int epode_caps_set_limits(epode_caps_t *caps, size_t max_peers, size_t max_queries,
                                    size_t max_bytes);

#ifdef __cplusplus
}
#endif
#endif
