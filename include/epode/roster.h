/* epode/roster.h — the roster (RFC 6121 §2): the contact list the server
 * keeps for the account, fetched on every login, kept current by roster
 * pushes, changed with add/remove requests, and optionally cached by the
 * application so that a reconnect transfers only what changed (roster
 * versioning, RFC 6121 §2.6).
 *
 * A roster helper is made on a connection and lives as long as the
 * application wants it, across any number of reconnects: each READY
 * starts a fetch (sending the version it holds, if any), each push from
 * our own account is applied and answered. Pushes from anyone else (a
 * 'from' that is not our bare JID) are ignored (RFC 6121 §2.1.6): they are
 * left to other handlers, or answered service-unavailable by epode.
 *
 * Built on the public API only (handlers, event listeners, IQs).
 * Everything belongs to the connection's thread. Memory comes from the C
 * library's allocator (the public API has no way to reach a context's).
 */
#ifndef EPODE_ROSTER_H
#define EPODE_ROSTER_H

#include <stddef.h>

#include "common.h"
#include "conn.h"
#include "stanza.h"

#ifdef __cplusplus
extern "C" {
#endif

/** The roster namespace. */
#define EPODE_NS_ROSTER "jabber:iq:roster"

/** A roster helper (opaque). */
typedef struct epode_roster epode_roster_t;
/** One contact of the roster (opaque, read-only for the application). */
typedef struct epode_roster_item epode_roster_item_t;

/** An item's subscription state. REMOVE only appears on an item handed
 * to the REMOVED event or to the cache's store hook. */
typedef enum epode_roster_sub {
    EPODE_ROSTER_SUB_NONE = 0,
    EPODE_ROSTER_SUB_TO,
    EPODE_ROSTER_SUB_FROM,
    EPODE_ROSTER_SUB_BOTH,
    EPODE_ROSTER_SUB_REMOVE
} epode_roster_sub_t;

/** What happened to the roster. */
typedef enum epode_roster_event {
    /** A fetch completed: the roster now is the server's (item NULL).
     * Comes after the ADDED/UPDATED/REMOVED events for the differences
     * between what was held before (cache or last session) and it. */
    EPODE_ROSTER_RECEIVED = 1,
    /** An item appeared (a push, or a fetch). */
    EPODE_ROSTER_ADDED,
    /** An item's name, groups, subscription or ask changed. */
    EPODE_ROSTER_UPDATED,
    /** An item was removed; the item is readable only during the
     * callback, with subscription EPODE_ROSTER_SUB_REMOVE. */
    EPODE_ROSTER_REMOVED,
    /** A fetch failed (the server answered an error, did not answer in
     * time, or the connection ended first); item NULL. What was held
     * before is kept. */
    EPODE_ROSTER_FETCH_FAILED
} epode_roster_event_t;
/** The name of a value of epode_roster_event_t, e.g. "fetch_failed" for EPODE_ROSTER_FETCH_FAILED: a static lower-case
 * string (never to be freed), NULL for a value outside the enum. */
EPODE_API const char *epode_roster_event_name(epode_roster_event_t event);

/**
 * Told about changes. `item` is borrowed for the call (NULL for RECEIVED
 * and FETCH_FAILED). The callback may read the roster and call
 * epode_roster_add()/epode_roster_remove(), but must not free the roster.
 */
typedef void (*epode_roster_event_cb)(epode_roster_t *roster, epode_roster_event_t event,
                                      const epode_roster_item_t *item, void *user);

/**
 * The answer to epode_roster_add() or epode_roster_remove(): `status` 0
 * and `cond` EPODE_COND_NONE when the server accepted; `status` 0 and a
 * condition (and `text`, borrowed for the call, or NULL) when it refused;
 * `status` EPODE_ETIMEDOUT or EPODE_ECANCELED (connection ended, or the
 * roster was freed) when no answer came. The server confirms accepted
 * changes with a push, which updates the roster and fires its event.
 */
typedef void (*epode_roster_result_cb)(epode_roster_t *roster, int status,
                                       epode_stanza_cond_t cond, const char *text, void *user);

/**
 * The application's roster cache. Both hooks are optional.
 *
 * `load` runs once, just before the first fetch: it fills the roster with
 * epode_roster_load_item() and epode_roster_load_ver() from what the
 * application stored, and returns 0 (a negative value discards whatever
 * it loaded and fetches the whole roster).
 *
 * `store` runs whenever the roster changed as the server says: with
 * `full` 1, `items` is the whole roster (after a fetch that sent it);
 * with `full` 0, `items` are the items that changed (a push; a removed
 * item has subscription EPODE_ROSTER_SUB_REMOVE). `ver` is the roster
 * version to store with them, NULL if the server does not version
 * rosters. `items` and the strings are borrowed for the call.
 */
typedef struct epode_roster_cache {
    /** Gives the cached roster back (see above). */
    int (*load)(epode_roster_t *roster, void *user);
    /** Keeps what changed (see above). */
    void (*store)(epode_roster_t *roster, const char *ver, int full,
                  const epode_roster_item_t *const *items, size_t count, void *user);
    void *user; /**< passed to both */
} epode_roster_cache_t;

/**
 * Makes a roster helper on `conn` and registers its handlers: a fetch on
 * every READY (if the connection is READY already, one starts on the
 * next loop turn) and roster pushes. Caller owns *out and frees it with
 * epode_roster_free(). Freeing the connection first is allowed: the
 * helper becomes inert (its items stay readable; fetch, add and remove
 * return EPODE_ESTATE); still free it. Errors: EPODE_EINVAL,
 * EPODE_ENOMEM.
 */
EPODE_API int epode_roster_new(epode_conn_t *conn, epode_roster_t **out);

/**
 * Removes the helper's handlers and frees it with its items. Pending
 * add/remove callbacks are called with EPODE_ECANCELED first (also when
 * the connection was freed before). NULL is a no-op. Not from inside one
 * of the roster's own callbacks.
 */
EPODE_API void epode_roster_free(epode_roster_t *roster);

/** Sets the change callback (one per roster; NULL removes it). */
EPODE_API int epode_roster_set_event_cb(epode_roster_t *roster, epode_roster_event_cb cb,
                                        void *user);

/**
 * Sets the cache hooks (copied; NULL removes them). Set them before the
 * first READY so `load` runs before the first fetch. EPODE_EINVAL.
 */
EPODE_API int epode_roster_set_cache(epode_roster_t *roster, const epode_roster_cache_t *cache);

/**
 * Puts a cached item into the roster without any event (for the `load`
 * hook, or before connecting). `jid` is normalized; `name` may be NULL;
 * `groups` is an array of `ngroups` non-empty strings (duplicates
 * dropped). Strings are copied. An item with the same JID is replaced.
 * Errors: EPODE_EINVAL (NULL, empty group, REMOVE), EPODE_EJID,
 * EPODE_ENOMEM.
 */
EPODE_API int epode_roster_load_item(epode_roster_t *roster, const char *jid, const char *name,
                                     epode_roster_sub_t sub, int ask, const char *const *groups,
                                     size_t ngroups);

/**
 * Sets the version that goes with the cached items (copied; NULL forgets
 * it). The next fetch sends it, and the server then answers with only the
 * changes (or nothing) when it supports versioning; a server that ignores
 * it sends the whole roster, which replaces the cached one. Only give a
 * version the server itself handed out (the store hook's `ver`), or ""
 * when the application knows the server versions rosters but has nothing
 * cached yet. Errors: EPODE_EINVAL, EPODE_ENOMEM.
 */
EPODE_API int epode_roster_load_ver(epode_roster_t *roster, const char *ver);

/**
 * Fetches the roster now (an automatic fetch runs on every READY; this is
 * for a fetch on demand). A fetch already under way is not duplicated.
 * Errors: EPODE_ESTATE (not READY, or the connection was freed),
 * EPODE_ENOMEM.
 */
EPODE_API int epode_roster_fetch(epode_roster_t *roster);

/** 1 once a fetch completed on the current connection (reset to 0 when
 * the connection ends), else 0. */
EPODE_API int epode_roster_is_received(const epode_roster_t *roster);

/** The roster version held (borrowed, valid until the roster changes),
 * NULL if none. */
EPODE_API const char *epode_roster_ver(const epode_roster_t *roster);

/** Number of items. */
EPODE_API size_t epode_roster_count(const epode_roster_t *roster);

/**
 * The i-th item, in the byte order of the normalized JIDs (borrowed,
 * valid until the roster next changes: a push, a fetch, a load). NULL
 * past the end.
 */
EPODE_API const epode_roster_item_t *epode_roster_item_at(const epode_roster_t *roster, size_t i);

/**
 * The item with this JID, compared in normalized form ("Juliet@Example.COM"
 * finds juliet@example.com). Borrowed as for epode_roster_item_at(); NULL
 * if there is none or `jid` is not a valid JID.
 */
EPODE_API const epode_roster_item_t *epode_roster_find(const epode_roster_t *roster,
                                                       const char *jid);

/** The item's JID, normalized (borrowed from the item). */
EPODE_API const char *epode_roster_item_jid(const epode_roster_item_t *item);
/** The item's name (borrowed), NULL if it has none. */
EPODE_API const char *epode_roster_item_name(const epode_roster_item_t *item);
/** The item's subscription state. */
EPODE_API epode_roster_sub_t epode_roster_item_subscription(const epode_roster_item_t *item);
/** 1 if a subscription request of ours is pending (ask="subscribe"). */
EPODE_API int epode_roster_item_ask(const epode_roster_item_t *item);
/** Number of groups the item is in. */
EPODE_API size_t epode_roster_item_group_count(const epode_roster_item_t *item);
/** The i-th group name (borrowed from the item), NULL past the end. */
EPODE_API const char *epode_roster_item_group(const epode_roster_item_t *item, size_t i);

/** "none", "to", "from", "both", "remove" (static); NULL out of range. */
EPODE_API const char *epode_roster_sub_name(epode_roster_sub_t sub);

/**
 * Asks the server to add `jid` to the roster, or update it: `name` (NULL:
 * none) and the `ngroups` groups given replace what the item had. `cb`
 * (may be NULL) gets the answer; on an error return it is never called.
 * The roster itself changes when the server's push arrives. Errors:
 * EPODE_EINVAL (NULL, empty group), EPODE_EJID, EPODE_ESTATE (not READY,
 * or the connection was freed), EPODE_ENOMEM.
 */
EPODE_API int epode_roster_add(epode_roster_t *roster, const char *jid, const char *name,
                               const char *const *groups, size_t ngroups,
                               epode_roster_result_cb cb, void *user);

/**
 * Asks the server to remove `jid` from the roster (which also cancels
 * subscriptions both ways). `cb` as for epode_roster_add(). Errors:
 * EPODE_EINVAL, EPODE_EJID, EPODE_ESTATE, EPODE_ENOMEM.
 */
EPODE_API int epode_roster_remove(epode_roster_t *roster, const char *jid,
                                  epode_roster_result_cb cb, void *user);

#ifdef __cplusplus
}
#endif
#endif
