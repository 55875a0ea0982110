/* epode/ping.h — XEP-0199 XMPP Ping: answers pings from the server and
 * from peers, pings any JID and measures the round trip, and can ping the
 * server at an interval to find a dead connection (closing it when the
 * answer does not come in time). Built on the public API only. */
#ifndef EPODE_PING_H
#define EPODE_PING_H

#include "common.h"
#include "conn.h"
#include "stanza.h"

#ifdef __cplusplus
extern "C" {
#endif

#define EPODE_NS_PING "urn:xmpp:ping" /**< XMPP ping (XEP-0199). */

/** A ping helper bound to one connection (opaque). */
typedef struct epode_ping epode_ping_t;

/**
 * Makes a ping helper on `conn`: from now on every `<ping/>` IQ get that
 * reaches the connection is answered with an empty result. The helper
 * survives reconnects. Caller owns *out and frees it with
 * epode_ping_free(). Freeing the connection first is allowed: the helper
 * becomes inert (pending pings are forgotten, their callbacks not
 * called; epode_ping_send() and epode_ping_set_keepalive() return
 * EPODE_ESTATE); still free it. Errors: EPODE_EINVAL, EPODE_ENOMEM
 * (nothing registered then).
 */
EPODE_API int epode_ping_new(epode_conn_t *conn, epode_ping_t **out);

/** Stops answering and pinging, forgets pending pings (their callbacks
 * are not called) and frees the helper. NULL is a no-op. Not from inside
 * one of the helper's own callbacks. */
EPODE_API void epode_ping_free(epode_ping_t *ping);

/**
 * The answer to epode_ping_send(). `status` 0: the entity answered, after
 * `rtt_ms` milliseconds; `cond` is EPODE_COND_NONE for a pong, or the
 * error condition it answered with (XEP-0199 §4: an error such as
 * service-unavailable still proves it is there). `status`
 * EPODE_ETIMEDOUT or EPODE_ECANCELED (the connection ended): no answer.
 * `jid` is the address pinged (borrowed for the call).
 */
typedef void (*epode_ping_cb)(epode_conn_t *conn, const char *jid, int status,
                              epode_stanza_cond_t cond, unsigned rtt_ms, void *user);

/**
 * Pings `jid` (NULL: our server) and calls `cb` once with the outcome.
 * `timeout_ms` 0 means 30 s. Errors: EPODE_EINVAL, EPODE_EJID, EPODE_ESTATE
 * (not READY, or the connection was freed), EPODE_ENOMEM; `cb` is never
 * called then.
 */
EPODE_API int epode_ping_send(epode_ping_t *ping, const char *jid, unsigned timeout_ms,
                              epode_ping_cb cb, void *user);

/** Told that a liveness ping went unanswered for `timeout_ms` and that the
 * connection is being closed because of it (DISCONNECTED follows). */
typedef void (*epode_ping_dead_cb)(epode_conn_t *conn, unsigned timeout_ms, void *user);

/**
 * Pings the server every `interval_ms` while the connection is READY; if
 * an answer (result or error) takes longer than `timeout_ms` (0: the
 * interval), calls `cb` (may be NULL) and closes the connection with
 * epode_conn_close(). `interval_ms` 0 turns liveness pings off (the
 * default). May be called at any time; replaces the earlier setting.
 * Errors: EPODE_EINVAL, EPODE_ESTATE (the connection was freed),
 * EPODE_ENOMEM.
 */
EPODE_API int epode_ping_set_keepalive(epode_ping_t *ping, unsigned interval_ms,
                                       unsigned timeout_ms, epode_ping_dead_cb cb, void *user);

/** How many liveness pings went unanswered in time since the helper was
 * made (for tests and monitoring). */
EPODE_API unsigned epode_ping_timeouts(const epode_ping_t *ping);

#ifdef __cplusplus
}
#endif
#endif
