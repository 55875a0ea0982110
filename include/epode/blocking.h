/* epode/blocking.h — the Blocking Command (XEP-0191): block and unblock
 * JIDs on the server (it then drops their messages, presence and IQs to
 * us and hides our presence from them), fetch the blocklist, and keep a
 * local copy current through the server's pushes.
 *
 * A blocking helper is made on a connection and lives across reconnects:
 * it fetches the list on every READY (the server only pushes changes to
 * sessions that fetched it), applies the pushes that come from our own
 * account (no 'from', or our bare JID) and answers them; a push from
 * anyone else is ignored (left to other handlers, or answered
 * service-unavailable by epode). The list is bounded (see
 * epode_blocking_set_max): a fetch or push that would exceed the bound
 * is refused, the list stays as it was, and the event callback hears
 * EPODE_BLOCKING_LIMIT.
 *
 * JIDs are kept normalized (epode/jid.h). The server decides what a
 * blocked JID covers (a domain blocks everyone on it, a bare JID every
 * resource, XEP-0191 §3.4); epode_blocking_is_blocked() only says
 * whether a JID is on the list as written.
 *
 * Built on the public API only. Everything belongs to the connection's
 * thread; memory comes from the context's allocator. */
#ifndef EPODE_BLOCKING_H
#define EPODE_BLOCKING_H

#include <stddef.h>

#include "common.h"
#include "conn.h"
#include "stanza.h"

#ifdef __cplusplus
extern "C" {
#endif

#define EPODE_NS_BLOCKING "urn:xmpp:blocking" /**< Blocking command (XEP-0191). */
/** The default bound on the local blocklist. */
#define EPODE_BLOCKLIST_MAX 10000

/** A blocking helper (opaque). */
typedef struct epode_blocking epode_blocking_t;

/** What happened to the blocklist. */
typedef enum epode_blocking_event {
    /** A fetch completed: `jids` is the whole list as the server has it. */
    EPODE_BLOCKING_LOADED = 1,
    /** These JIDs were added (a push, or our own block confirmed). */
    EPODE_BLOCKING_BLOCKED,
    /** These JIDs were removed. */
    EPODE_BLOCKING_UNBLOCKED,
    /** Everything was removed; `jids` is what was on the list. */
    EPODE_BLOCKING_UNBLOCKED_ALL,
    /** A fetch or push was refused because the list would exceed its
     * bound (`jids` empty); the list is unchanged. A push refused this
     * way is answered resource-constraint. */
    EPODE_BLOCKING_LIMIT
} epode_blocking_event_t;
/** The name of a value of epode_blocking_event_t, e.g. "unblocked_all" for EPODE_BLOCKING_UNBLOCKED_ALL: a static lower-case
 * string (never to be freed), NULL for a value outside the enum. */
EPODE_API const char *epode_blocking_event_name(epode_blocking_event_t event);

/**
 * Told about changes: `jids` (normalized, borrowed for the call) are
 * those the event is about. The callback may read the list and start
 * requests, but must not free the helper.
 */
typedef void (*epode_blocking_event_cb)(epode_blocking_t *b, epode_blocking_event_t event,
                                        const char *const *jids, size_t n, void *user);

/**
 * The answer to a request: `status` 0 and `cond` EPODE_COND_NONE on
 * success (the local list already reflects it when this runs); `status`
 * 0 and a condition when the server refused; EPODE_ETIMEDOUT,
 * EPODE_ECANCELED (the connection ended, or the helper was freed), or
 * EPODE_ELIMIT (a fetched list over the bound) otherwise.
 */
typedef void (*epode_blocking_result_cb)(epode_blocking_t *b, int status,
                                         epode_stanza_cond_t cond, void *user);

/**
 * Makes a blocking helper on `conn`: its push handler and a fetch on
 * every READY (at once when `conn` is READY already). `cb` (may be NULL)
 * hears the events. Caller owns *out and frees it with
 * epode_blocking_free(). Freeing the connection first is allowed: the
 * helper becomes inert (its list stays readable; requests return
 * EPODE_ESTATE); still free it. Errors: EPODE_EINVAL, EPODE_ENOMEM, and
 * as epode_conn_send() for the first fetch.
 */
EPODE_API int epode_blocking_new(epode_conn_t *conn, epode_blocking_event_cb cb, void *user,
                                 epode_blocking_t **out);

/** Removes the handlers and frees the helper and its list; pending
 * request callbacks are called with EPODE_ECANCELED first. NULL is fine.
 * Not from inside one of its own callbacks. */
EPODE_API void epode_blocking_free(epode_blocking_t *b);

/**
 * Fetches the blocklist again (LOADED follows); `cb` (may be NULL) hears
 * how it went. Errors: EPODE_EINVAL, EPODE_ESTATE (not READY, or the
 * connection was freed), EPODE_ENOMEM.
 */
EPODE_API int epode_blocking_fetch(epode_blocking_t *b, epode_blocking_result_cb cb, void *user);

/**
 * Asks the server to block `jids[0..n)` (n ≥ 1, each a valid JID:
 * domain, bare or full). `cb` (may be NULL) hears the answer. Errors:
 * EPODE_EINVAL, EPODE_EJID, EPODE_ESTATE, EPODE_ENOMEM; on error `cb` is
 * never called.
 */
EPODE_API int epode_blocking_block(epode_blocking_t *b, const char *const *jids, size_t n,
                                   epode_blocking_result_cb cb, void *user);

/** Asks the server to unblock `jids[0..n)` (n ≥ 1), as
 * epode_blocking_block(). */
EPODE_API int epode_blocking_unblock(epode_blocking_t *b, const char *const *jids, size_t n,
                                     epode_blocking_result_cb cb, void *user);

/** Asks the server to unblock everyone (an empty `<unblock/>`). Errors as
 * epode_blocking_block(). */
EPODE_API int epode_blocking_unblock_all(epode_blocking_t *b, epode_blocking_result_cb cb,
                                         void *user);

/** How many JIDs the local list holds. */
EPODE_API size_t epode_blocking_count(const epode_blocking_t *b);

/** The i-th JID of the local list, in byte order of the normalized JIDs
 * (borrowed until the list changes); NULL past the end. */
EPODE_API const char *epode_blocking_at(const epode_blocking_t *b, size_t i);

/** 1 if `jid` is on the local list exactly (normalized), else 0. */
EPODE_API int epode_blocking_is_blocked(const epode_blocking_t *b, const char *jid);

/** 1 once a fetch completed on the current session, else 0. */
EPODE_API int epode_blocking_received(const epode_blocking_t *b);

/** Sets the bound on the local list (default EPODE_BLOCKLIST_MAX; 0
 * restores it). Does not shrink a list already held. */
EPODE_API int epode_blocking_set_max(epode_blocking_t *b, size_t max);

#ifdef __cplusplus
}
#endif
#endif
