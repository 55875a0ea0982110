/* epode/carbons.h — XEP-0280 Message Carbons: asks the server to copy
 * every chat message of the account to this resource too, and delivers
 * those copies as their own events (sent by another of our resources, or
 * received by one). A carbon is trusted only when it comes from our own
 * bare JID: anything else claiming to be one is ignored (a stranger could
 * otherwise put words in our mouth). Built on the public API only. */
#ifndef EPODE_CARBONS_H
#define EPODE_CARBONS_H

#include "common.h"
#include "conn.h"
#include "stanza.h"

#ifdef __cplusplus
extern "C" {
#endif

#define EPODE_NS_CARBONS "urn:xmpp:carbons:2" /**< Message carbons (XEP-0280). */
/** Stanza forwarding (XEP-0297), which wraps carbon copies. */
#define EPODE_NS_FORWARD "urn:xmpp:forward:0"

/** A carbons helper bound to one connection (opaque). */
typedef struct epode_carbons epode_carbons_t;

/** Which way the copied message went. */
typedef enum epode_carbon_dir {
    EPODE_CARBON_RECEIVED = 1, /**< another of our resources received it */
    EPODE_CARBON_SENT          /**< another of our resources sent it */
} epode_carbon_dir_t;
/** The name of a value of epode_carbon_dir_t, e.g. "sent" for EPODE_CARBON_SENT: a static lower-case
 * string (never to be freed), NULL for a value outside the enum. */
EPODE_API const char *epode_carbon_dir_name(epode_carbon_dir_t dir);

/**
 * A verified carbon copy. `message` is the forwarded `<message/>` (its
 * `from`/`to` are the original's), `carrier` the stanza that brought it;
 * both borrowed for the call (ref the tree to keep them).
 */
typedef void (*epode_carbon_cb)(epode_conn_t *conn, epode_carbon_dir_t dir,
                                epode_stanza_t *message, epode_stanza_t *carrier, void *user);

/**
 * Makes the helper: carbon copies arriving on `conn` are checked and
 * passed to `cb`. Nothing is sent until epode_carbons_enable(). Survives
 * reconnects. Caller owns *out and frees it with epode_carbons_free().
 * Freeing the connection first is allowed: the helper becomes inert (a
 * pending request is forgotten, its callback not called;
 * epode_carbons_enable() returns EPODE_ESTATE); still free it. Errors:
 * EPODE_EINVAL, EPODE_ENOMEM.
 */
EPODE_API int epode_carbons_new(epode_conn_t *conn, epode_carbon_cb cb, void *user,
                                epode_carbons_t **out);

/** Stops listening, forgets a pending enable request (its callback is not
 * called) and frees the helper. Sends nothing. NULL is a no-op. */
EPODE_API void epode_carbons_free(epode_carbons_t *c);

/** The server's answer to an enable or disable request: `status` 0 and
 * `cond` EPODE_COND_NONE on success; `status` 0 and a condition when the
 * server refused; EPODE_ETIMEDOUT / EPODE_ECANCELED without an answer. */
typedef void (*epode_carbons_enable_cb)(epode_conn_t *conn, int enabled, int status,
                                        epode_stanza_cond_t cond, void *user);

/**
 * Asks the server to turn carbons on (`enable` non-zero) or off for this
 * session. The wish is remembered: carbons are turned on again after
 * every reconnect (servers forget them with the session). If the
 * connection is not READY now, the request goes out at the next READY.
 * `cb` (may be NULL) hears every answer. Errors: EPODE_EINVAL,
 * EPODE_ESTATE (the connection was freed), EPODE_ENOMEM.
 */
EPODE_API int epode_carbons_enable(epode_carbons_t *c, int enable, epode_carbons_enable_cb cb,
                                   void *user);

/** 1 once the server has confirmed carbons for the current session, 0
 * otherwise. */
EPODE_API int epode_carbons_is_enabled(const epode_carbons_t *c);

/** How many stanzas claiming to be carbons were ignored because they did
 * not come from our own bare JID, or were malformed. */
EPODE_API unsigned epode_carbons_rejected(const epode_carbons_t *c);

#ifdef __cplusplus
}
#endif
#endif
