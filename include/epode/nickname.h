/* epode/nickname.h — User Nickname (XEP-0172): the nick a user wants to
 * be known by, published over PEP (`http://jabber.org/protocol/nick`)
 * and carried in presence subscription requests and in messages to
 * people who do not know us yet (`<nick xmlns='…nick'>`).
 *
 * A nickname helper sits on a pubsub helper: it advertises the node's
 * +notify (when the pubsub helper has a disco helper), reports the nicks
 * it learns — from PEP notifications, from subscription requests and
 * from messages — and publishes ours. Once ours is set it is also added
 * to the subscription requests we send. A nick is a claim of its sender,
 * not an identity: show it beside the JID, never instead of it.
 *
 * Built on the public API only. Everything belongs to the connection's
 * thread; memory comes from the context's allocator. */
#ifndef EPODE_NICKNAME_H
#define EPODE_NICKNAME_H

#include "common.h"
#include "pubsub.h"

#ifdef __cplusplus
extern "C" {
#endif

#define EPODE_NS_NICK "http://jabber.org/protocol/nick" /**< User nickname (XEP-0172). */

/** Where a nick was learnt. */
typedef enum epode_nickname_source {
    EPODE_NICKNAME_PEP = 1,   /**< a PEP notification (`jid` bare) */
    EPODE_NICKNAME_PRESENCE,  /**< a subscription request */
    EPODE_NICKNAME_MESSAGE    /**< a message */
} epode_nickname_source_t;
/** The name of a value of epode_nickname_source_t, e.g. "presence" for EPODE_NICKNAME_PRESENCE: a static lower-case
 * string (never to be freed), NULL for a value outside the enum. */
EPODE_API const char *epode_nickname_source_name(epode_nickname_source_t source);

/** A nickname helper (opaque). */
typedef struct epode_nickname epode_nickname_t;

/** Told that `jid` calls itself `nick` (both borrowed; `nick` "" when a
 * PEP nick was cleared). */
typedef void (*epode_nickname_cb)(epode_nickname_t *n, const char *jid, const char *nick,
                                  epode_nickname_source_t source, void *user);

/** The answer to epode_nickname_set(), as epode_bookmarks_result_cb. */
typedef void (*epode_nickname_result_cb)(epode_nickname_t *n, int status,
                                         epode_stanza_cond_t cond, epode_pubsub_error_t perr,
                                         void *user);

/** Makes a nickname helper on `ps`; `cb` (may be NULL) hears the nicks
 * learnt. Free it before `ps`. Errors: EPODE_EINVAL, EPODE_ESTATE (the
 * connection was freed), EPODE_ENOMEM. */
EPODE_API int epode_nickname_new(epode_pubsub_t *ps, epode_nickname_cb cb, void *user,
                                 epode_nickname_t **out);

/** Frees the helper; a pending set's callback runs with EPODE_ECANCELED
 * first. NULL is fine. Not from inside its callbacks. */
EPODE_API void epode_nickname_free(epode_nickname_t *n);

/**
 * Publishes `nick` as ours (NULL or "": clears it — an empty `<nick/>`)
 * and adds it to the subscription requests we send from now on. Errors:
 * EPODE_EINVAL, EPODE_ESTATE (not READY), EPODE_ENOMEM; then `cb` is
 * never called.
 */
EPODE_API int epode_nickname_set(epode_nickname_t *n, const char *nick,
                                 epode_nickname_result_cb cb, void *user);

/** Our nick as last set (borrowed), NULL if none. */
EPODE_API const char *epode_nickname_get_own(const epode_nickname_t *n);

/** The nick a stanza carries (its `<nick/>` child's text, borrowed from
 * `st`), "" for an empty one, NULL without one. */
EPODE_API const char *epode_nickname_from_stanza(const epode_stanza_t *st);

#ifdef __cplusplus
}
#endif
#endif
