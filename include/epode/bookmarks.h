/* epode/bookmarks.h — PEP Native Bookmarks (XEP-0402, urn:xmpp:bookmarks:1):
 * the rooms a user keeps, stored on their own account as one PEP item
 * per room (item id: the room's bare JID; payload: a `<conference/>`
 * with a name, the autojoin flag, a nick and a password), shared by all
 * their clients and kept current through notifications.
 *
 * A bookmarks helper sits on a pubsub helper (epode/pubsub.h): it fetches
 * the list on every READY, advertises `urn:xmpp:bookmarks:1+notify` (when
 * the pubsub helper has a disco helper) and applies notifications that
 * come from our own account only (a contact cannot change our
 * bookmarks). Adding publishes with the publish-options XEP-0402 asks
 * for (persist_items true, max_items max, send_last_published_item
 * never, access_model whitelist) and keeps a bookmark's `<extensions/>`
 * when it is changed. Autojoin: given a MUC helper (epode/muc.h), the
 * helper joins every autojoin room when the list is loaded and when a
 * bookmark with autojoin arrives.
 *
 * Built on the public API only. Everything belongs to the connection's
 * thread; memory comes from the context's allocator. */
#ifndef EPODE_BOOKMARKS_H
#define EPODE_BOOKMARKS_H

#include <stddef.h>

#include "common.h"
#include "muc.h"
#include "pubsub.h"

#ifdef __cplusplus
extern "C" {
#endif

#define EPODE_NS_BOOKMARKS "urn:xmpp:bookmarks:1" /**< PEP native bookmarks (XEP-0402). */
/** The bound on the local list. */
#define EPODE_BOOKMARKS_MAX 1000

/** One bookmark (opaque, borrowed from its helper until the list changes). */
typedef struct epode_bookmark epode_bookmark_t;
/** The room's bare JID (normalized; borrowed). */
EPODE_API const char *epode_bookmark_room(const epode_bookmark_t *bm);
/** The room's name as the user called it (borrowed), NULL if none. */
EPODE_API const char *epode_bookmark_name(const epode_bookmark_t *bm);
/** The nick to join with (borrowed), NULL if none. */
EPODE_API const char *epode_bookmark_nick(const epode_bookmark_t *bm);
/** The room's password (borrowed), NULL if none. */
EPODE_API const char *epode_bookmark_password(const epode_bookmark_t *bm);
/** 1 if the room is to be joined when the client starts, else 0. */
EPODE_API int epode_bookmark_autojoin(const epode_bookmark_t *bm);

/** A bookmarks helper (opaque). */
typedef struct epode_bookmarks epode_bookmarks_t;

/** What happened to the list. */
typedef enum epode_bookmarks_event {
    EPODE_BOOKMARKS_LOADED = 1, /**< a fetch completed (`bm` NULL): the list is the server's */
    EPODE_BOOKMARKS_ADDED,      /**< `bm` is new */
    EPODE_BOOKMARKS_UPDATED,    /**< `bm` changed */
    EPODE_BOOKMARKS_REMOVED,    /**< `bm` is gone (readable for the call only) */
    EPODE_BOOKMARKS_FETCH_FAILED /**< the fetch at READY failed (`bm` NULL);
                                      the list is as it was */
} epode_bookmarks_event_t;
/** The name of a value of epode_bookmarks_event_t, e.g. "fetch_failed" for EPODE_BOOKMARKS_FETCH_FAILED: a static lower-case
 * string (never to be freed), NULL for a value outside the enum. */
EPODE_API const char *epode_bookmarks_event_name(epode_bookmarks_event_t event);

/** Told about changes; `bm` borrowed for the call. May read the list and
 * start requests; must not free the helper. */
typedef void (*epode_bookmarks_event_cb)(epode_bookmarks_t *b, epode_bookmarks_event_t event,
                                         const epode_bookmark_t *bm, void *user);

/**
 * The answer to a request: `status` 0 and `cond` EPODE_COND_NONE on
 * success (the local list already reflects it); `status` 0 with a
 * condition (and `perr`, the pubsub#errors one) when the server refused;
 * EPODE_ETIMEDOUT or EPODE_ECANCELED without an answer.
 */
typedef void (*epode_bookmarks_result_cb)(epode_bookmarks_t *b, int status,
                                          epode_stanza_cond_t cond, epode_pubsub_error_t perr,
                                          void *user);

/**
 * Makes a bookmarks helper on `ps`: a fetch on every READY (at once when
 * READY already), the +notify feature, notifications. `cb` (may be NULL)
 * hears the events. Free it before `ps`. Caller owns *out. Errors:
 * EPODE_EINVAL, EPODE_ESTATE (the pubsub helper's connection was freed),
 * EPODE_ENOMEM.
 */
EPODE_API int epode_bookmarks_new(epode_pubsub_t *ps, epode_bookmarks_event_cb cb, void *user,
                                  epode_bookmarks_t **out);

/** Frees the helper and its list; pending requests' callbacks run with
 * EPODE_ECANCELED first (a request they start then fails with
 * EPODE_ESTATE). NULL is fine. Not from inside its callbacks. */
EPODE_API void epode_bookmarks_free(epode_bookmarks_t *b);

/**
 * Joins autojoin rooms through `muc` (NULL: stop): every autojoin
 * bookmark when the list is loaded, and each one that arrives or changes
 * with autojoin set. The nick is the bookmark's, else `default_nick`
 * (copied; NULL: the local part of our JID). Rooms already joined are
 * left alone. `muc` must outlive the helper or be unset first. Errors:
 * EPODE_EINVAL, EPODE_ENOMEM.
 */
EPODE_API int epode_bookmarks_set_autojoin(epode_bookmarks_t *b, epode_muc_t *muc,
                                           const char *default_nick);

/** Fetches the list again (LOADED follows). Errors: EPODE_EINVAL,
 * EPODE_ESTATE (not READY), EPODE_ENOMEM. */
EPODE_API int epode_bookmarks_fetch(epode_bookmarks_t *b, epode_bookmarks_result_cb cb,
                                    void *user);

/**
 * Adds or replaces the bookmark of `room` (a bare JID): `name`, `nick`,
 * `password` (each NULL: none), `autojoin`. `cb` (may be NULL) hears the
 * answer. Errors: EPODE_EINVAL, EPODE_EJID (not a bare JID),
 * EPODE_ESTATE, EPODE_ENOMEM; then `cb` is never called.
 */
EPODE_API int epode_bookmarks_add(epode_bookmarks_t *b, const char *room, const char *name,
                                  int autojoin, const char *nick, const char *password,
                                  epode_bookmarks_result_cb cb, void *user);

/** Removes the bookmark of `room` (retracted with notify). Errors as
 * epode_bookmarks_add(). */
EPODE_API int epode_bookmarks_remove(epode_bookmarks_t *b, const char *room,
                                     epode_bookmarks_result_cb cb, void *user);

/** How many bookmarks the local list holds. */
EPODE_API size_t epode_bookmarks_count(const epode_bookmarks_t *b);
/** The i-th bookmark, in byte order of the room JIDs; NULL past the end. */
EPODE_API const epode_bookmark_t *epode_bookmarks_at(const epode_bookmarks_t *b, size_t i);
/** The bookmark of `room` (any spelling of its JID), NULL if none. */
EPODE_API const epode_bookmark_t *epode_bookmarks_find(const epode_bookmarks_t *b,
                                                       const char *room);
/** 1 once a fetch completed on the current session, else 0. */
EPODE_API int epode_bookmarks_received(const epode_bookmarks_t *b);

#ifdef __cplusplus
}
#endif
#endif
