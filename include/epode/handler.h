/* epode/handler.h — what happens to incoming stanzas: handlers matched by
 * element name, the namespace of the first child, and type; IQ requests
 * with a callback for their answer (and a timeout); timed callbacks.
 * Handlers may be added or removed from inside any handler. An IQ get or
 * set that no handler marks as handled is answered service-unavailable
 * (RFC 6120 §8.4). */
#ifndef EPODE_HANDLER_H
#define EPODE_HANDLER_H

#include "common.h"
#include "conn.h"
#include "stanza.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * What a stanza handler returns. Neither value is 0: a handler that
 * returns 0 (the C habit for "success", or libstrophe's "remove me") is
 * treated as EPODE_HANDLED, and the connection logs a warning naming the
 * handler's id once.
 */
typedef enum epode_handler_result {
    EPODE_HANDLED = 1, /**< I took care of it (an IQ request is mine to answer) */
    EPODE_PASS = 2     /**< not mine (an IQ request that no handler takes
                            is answered service-unavailable) */
} epode_handler_result_t;
/** The name of a value of epode_handler_result_t ("handled", "pass"): a
 * static string, NULL for a value outside the enum. */
EPODE_API const char *epode_handler_result_name(epode_handler_result_t result);

/** A stanza handler. `stanza` is borrowed for the call (ref it to keep).
 * Every matching handler runs, in the order they were added, whatever
 * the others return. Return an epode_handler_result_t value. */
typedef int (*epode_handler_cb)(epode_conn_t *conn, epode_stanza_t *stanza, void *user);

/**
 * Adds a handler for stanzas named `name` ("message", "presence", "iq";
 * NULL: any) whose first child element is in namespace `ns` (NULL: any)
 * and whose type attribute is `type` (NULL: any; "normal" also matches a
 * message without type, "available" a presence without type). *id (may be
 * NULL) receives a non-zero id for epode_conn_remove(). Errors:
 * EPODE_EINVAL, EPODE_ENOMEM.
 */
EPODE_API int epode_conn_add_handler(epode_conn_t *conn, const char *name, const char *ns,
                                     const char *type, epode_handler_cb cb, void *user,
                                     unsigned *id);

/**
 * Adds an outgoing filter: for every stanza epode_conn_send() sends whose
 * name, first child's namespace and type match (as for
 * epode_conn_add_handler()), `cb` runs on a copy of it just before it is
 * written, and may change that copy (add a child, an attribute). The
 * caller's stanza is never touched. The return value is ignored. This is
 * how helpers decorate what the application sends (entity capabilities
 * on presence, receipt requests on messages). Remove with
 * epode_conn_remove().
 */
EPODE_API int epode_conn_add_filter(epode_conn_t *conn, const char *name, const char *ns,
                                    const char *type, epode_handler_cb cb, void *user,
                                    unsigned *id);

/** Removes whatever an id names: a handler (epode_conn_add_handler()), an
 * outgoing filter (epode_conn_add_filter()), an event listener
 * (epode_conn_add_event_cb()), an IQ answer callback
 * (epode_conn_send_iq()) or a timer (epode_conn_add_timer()). Effective
 * at once, even inside a dispatch; an IQ callback removed this way is not
 * called. EPODE_ENOTFOUND if no such id is live. */
EPODE_API int epode_conn_remove(epode_conn_t *conn, unsigned id);

/**
 * The answer to an IQ: `result` is the `result` or `error` stanza
 * (borrowed), and `status` 0; or `result` NULL and `status`
 * EPODE_ETIMEDOUT (no answer in time) or EPODE_ECANCELED (the connection
 * ended first).
 */
typedef void (*epode_iq_cb)(epode_conn_t *conn, epode_stanza_t *result, int status, void *user);

/**
 * Sends an IQ get/set (an id is added if it has none) and calls `cb` once
 * with its answer. Only an answer from the entity the IQ was sent to (or,
 * for an IQ without `to`, from our own server or account) is accepted.
 * `timeout_ms` 0 means 30 s. *id (may be NULL) identifies the wait for
 * epode_conn_remove(). Errors as epode_conn_send() (EPODE_EJID for an
 * invalid `to` or `from` comes before an id is added or anything is
 * registered); on error `cb` is never called.
 */
EPODE_API int epode_conn_send_iq(epode_conn_t *conn, epode_stanza_t *iq, unsigned timeout_ms,
                                 epode_iq_cb cb, void *user, unsigned *id);

/** A timed callback: return 1 to run again after the same interval, 0 to
 * be removed. */
typedef int (*epode_conn_timer_cb)(epode_conn_t *conn, void *user);
/** Runs `cb` every `interval_ms` while the connection exists (through
 * reconnections), until it returns 0 or is removed with
 * epode_conn_remove(). *id (may be NULL) receives its id. Errors:
 * EPODE_EINVAL (NULL conn or cb, `interval_ms` 0), EPODE_ENOMEM. */
EPODE_API int epode_conn_add_timer(epode_conn_t *conn, unsigned interval_ms,
                                   epode_conn_timer_cb cb, void *user, unsigned *id);

#ifdef __cplusplus
}
#endif
#endif
