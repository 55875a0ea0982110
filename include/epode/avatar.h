/* epode/avatar.h — User Avatar (XEP-0084) over PEP, and vCard-based
 * avatar hashes in presence (XEP-0153).
 *
 * XEP-0084 keeps an avatar in two PEP nodes of its owner's account: the
 * image bytes (base64) in `urn:xmpp:avatar:data`, and what describes
 * them (size, type, optional width and height) in
 * `urn:xmpp:avatar:metadata`; both items have the SHA-1 of the bytes,
 * in hex, as their id. Publishing writes the data first, then the
 * metadata (which notifies contacts). Fetching reads a contact's
 * metadata, then the data item it names, and checks the bytes against
 * their SHA-1 before handing them out (a mismatch is EPODE_EPROTOCOL).
 *
 * XEP-0153 announces an avatar's hash in presence: a `photo` element,
 * the hash as its text, inside an `x` in the vcard-temp:x:update
 * namespace. The helper
 * reads it from every presence (the event callback, source
 * EPODE_AVATAR_VCARD) and, once we have an avatar (published, or set
 * with epode_avatar_set_vcard_hash()), adds it to every available
 * presence we send (an outgoing filter); when a publish or disable
 * changes it, our last broadcast presence is sent again at once, so
 * contacts learn the new hash (XEP-0153 §4.2). Servers
 * that mirror PEP avatars into vCards (Prosody's vcard_legacy) compute
 * the same hash: the SHA-1 of the image bytes.
 *
 * Built on the public API (and gnutls' SHA-1). Everything belongs to the
 * connection's thread; memory comes from the context's allocator. */
#ifndef EPODE_AVATAR_H
#define EPODE_AVATAR_H

#include <stddef.h>

#include "common.h"
#include "pubsub.h"

#ifdef __cplusplus
extern "C" {
#endif

#define EPODE_NS_AVATAR_DATA "urn:xmpp:avatar:data"         /**< XEP-0084 data node. */
#define EPODE_NS_AVATAR_METADATA "urn:xmpp:avatar:metadata" /**< XEP-0084 metadata node. */
#define EPODE_NS_VCARD_UPDATE "vcard-temp:x:update"         /**< XEP-0153 presence element. */
/** The default bound on a fetched avatar's bytes (epode_avatar_set_max_bytes). */
#define EPODE_AVATAR_MAX_BYTES (1024 * 1024)

/** Where an avatar announcement came from. */
typedef enum epode_avatar_source {
    EPODE_AVATAR_PEP = 1, /**< a XEP-0084 metadata notification */
    EPODE_AVATAR_VCARD    /**< a XEP-0153 hash in presence */
} epode_avatar_source_t;
/** The name of a value of epode_avatar_source_t, e.g. "vcard" for EPODE_AVATAR_VCARD: a static lower-case
 * string (never to be freed), NULL for a value outside the enum. */
EPODE_API const char *epode_avatar_source_name(epode_avatar_source_t source);

/** An avatar helper (opaque). */
typedef struct epode_avatar epode_avatar_t;

/**
 * Told that `jid` (bare for PEP, as in the presence for vCard) announced
 * an avatar: `id` is its SHA-1 in hex (borrowed), "" when the contact
 * has none, NULL when a vCard-based client is not ready to say (a
 * presence with an `<x/>` but no `<photo/>`). `type` is the metadata's
 * content type (PEP only; NULL otherwise).
 */
typedef void (*epode_avatar_event_cb)(epode_avatar_t *av, const char *jid, const char *id,
                                      const char *type, epode_avatar_source_t source,
                                      void *user);

/** The end of a publish: `status` 0 and `cond` EPODE_COND_NONE on
 * success, `id` the avatar's SHA-1 (borrowed); as epode_pubsub_result_cb
 * otherwise (`perr` the pubsub#errors condition). */
typedef void (*epode_avatar_result_cb)(epode_avatar_t *av, int status, epode_stanza_cond_t cond,
                                       epode_pubsub_error_t perr, const char *id, void *user);

/**
 * The end of a fetch: `status` 0 and `data`/`len` the image (borrowed for
 * the call; its SHA-1 is `id`, checked) with `type`; `status` 0 and
 * `data` NULL when `jid` has no avatar (no metadata, or empty metadata);
 * `status` 0 with `cond` set when the server refused (item-not-found for
 * a missing data item); EPODE_EPROTOCOL (bad base64, a SHA-1 mismatch, no
 * id), EPODE_ELIMIT (over the size bound), EPODE_ETIMEDOUT,
 * EPODE_ECANCELED otherwise.
 */
typedef void (*epode_avatar_fetch_cb)(epode_avatar_t *av, int status, epode_stanza_cond_t cond,
                                      const char *jid, const unsigned char *data, size_t len,
                                      const char *id, const char *type, void *user);

/**
 * Makes an avatar helper on `ps`: the metadata +notify feature (when `ps`
 * has a disco helper), metadata notifications, XEP-0153 hashes from
 * presence and the outgoing presence filter. `cb` (may be NULL) hears
 * announcements. Free it before `ps`. Errors: EPODE_EINVAL, EPODE_ESTATE
 * (the connection was freed), EPODE_ENOMEM.
 */
EPODE_API int epode_avatar_new(epode_pubsub_t *ps, epode_avatar_event_cb cb, void *user,
                               epode_avatar_t **out);

/** Frees the helper; pending requests' callbacks run with EPODE_ECANCELED
 * first (a request they start then fails with EPODE_ESTATE). NULL is
 * fine. Not from inside its callbacks. */
EPODE_API void epode_avatar_free(epode_avatar_t *av);

/**
 * Publishes `data` (`len` bytes, copied) as our avatar: its data item,
 * then its metadata with `type` (NULL: "image/png"), `width` and
 * `height` (0: not said). On success the XEP-0153 hash of our presence
 * becomes its id. Errors: EPODE_EINVAL (no bytes, a type with '<' or
 * quotes is fine but an empty one is not), EPODE_ESTATE (not READY),
 * EPODE_ENOMEM; then `cb` is never called.
 */
EPODE_API int epode_avatar_publish(epode_avatar_t *av, const unsigned char *data, size_t len,
                                   const char *type, unsigned width, unsigned height,
                                   epode_avatar_result_cb cb, void *user);

/** Says we have no avatar any more: empty metadata (contacts are told)
 * and an empty XEP-0153 photo. Errors as epode_avatar_publish(). */
EPODE_API int epode_avatar_disable(epode_avatar_t *av, epode_avatar_result_cb cb, void *user);

/** Fetches the avatar of `jid` (a bare JID; NULL: ours). Errors:
 * EPODE_EINVAL, EPODE_EJID, EPODE_ESTATE, EPODE_ENOMEM; then `cb` is
 * never called. */
EPODE_API int epode_avatar_fetch(epode_avatar_t *av, const char *jid, epode_avatar_fetch_cb cb,
                                 void *user);

/** Sets the largest avatar a fetch accepts, in bytes (0: the default,
 * EPODE_AVATAR_MAX_BYTES). */
EPODE_API int epode_avatar_set_max_bytes(epode_avatar_t *av, size_t max);

/**
 * Sets the XEP-0153 hash added to our available presences: a SHA-1 in
 * hex, "" to say we have none, NULL to add nothing (the default until a
 * publish succeeds). Errors: EPODE_EINVAL (not 40 hex digits nor ""),
 * EPODE_ENOMEM.
 */
EPODE_API int epode_avatar_set_vcard_hash(epode_avatar_t *av, const char *hash);

/** The hash our presences carry (borrowed), NULL if none. */
EPODE_API const char *epode_avatar_vcard_hash(const epode_avatar_t *av);

/** The XEP-0153 hash a presence announces (borrowed from `presence`): the
 * photo's text, "" for an empty `<photo/>`, NULL without one. */
EPODE_API const char *epode_avatar_presence_hash(const epode_stanza_t *presence);

/** The SHA-1 of `len` bytes as 40 lower-case hex digits into `out` (41
 * bytes). Errors: EPODE_EINVAL, EPODE_ERANGE (`size` < 41). */
EPODE_API int epode_avatar_hash(const unsigned char *data, size_t len, char *out, size_t size);

#ifdef __cplusplus
}
#endif
#endif
