/* epode/pubsub.h — Publish-Subscribe (XEP-0060) and Personal Eventing
 * (XEP-0163): publish items to a node (with publish-options), retract
 * them, fetch a node's items, subscribe to and unsubscribe from a
 * service's node, delete a node, and hear the event notifications the
 * service sends (`<event xmlns='…pubsub#event'>`: items published,
 * items retracted, a node purged or deleted).
 *
 * A request goes to a pubsub service's JID, or (jid NULL) to our own
 * account: that is PEP, where every user's account is a service and
 * contacts with a presence subscription get its notifications when their
 * client advertises `NODE+notify` in its entity capabilities. The helper
 * keeps that advertisement: epode_pubsub_add_notify() adds the feature
 * to the disco helper it was given (the caps helper then re-sends our
 * presence with the new `ver`), counted per node so several helpers may
 * ask for the same node.
 *
 * What is trusted: a notification is delivered with the JID that sent it
 * (for PEP: the contact's bare JID; for a service: the service), and the
 * application decides what that JID may say — a notification about our
 * own account's PEP nodes comes from our bare JID or without 'from'
 * (epode_pubsub_from_own_account()). Items beyond EPODE_PUBSUB_MAX_ITEMS
 * in one stanza are ignored, as are items without an id where one is
 * required (retract). Errors carry the RFC 6120 condition and, when the
 * service gave one, the XEP-0060 pubsub#errors condition
 * (epode_pubsub_error_t): precondition-not-met comes as
 * EPODE_COND_CONFLICT with EPODE_PUBSUB_ERR_PRECONDITION_NOT_MET, an
 * unknown node or item as EPODE_COND_ITEM_NOT_FOUND.
 *
 * Built on the public API only. Everything belongs to the connection's
 * thread; memory comes from the context's allocator. */
#ifndef EPODE_PUBSUB_H
#define EPODE_PUBSUB_H

#include <stddef.h>

#include "common.h"
#include "conn.h"
#include "disco.h"
#include "forms.h"
#include "stanza.h"

#ifdef __cplusplus
extern "C" {
#endif

#define EPODE_NS_PUBSUB "http://jabber.org/protocol/pubsub" /**< Publish-subscribe (XEP-0060). */
/** Event notifications (XEP-0060 §4.3). */
#define EPODE_NS_PUBSUB_EVENT "http://jabber.org/protocol/pubsub#event"
/** Owner use cases: delete, purge, configure (XEP-0060 §8). */
#define EPODE_NS_PUBSUB_OWNER "http://jabber.org/protocol/pubsub#owner"
/** Pubsub-specific error conditions (XEP-0060 §14.3). */
#define EPODE_NS_PUBSUB_ERRORS "http://jabber.org/protocol/pubsub#errors"
/** The FORM_TYPE of publish-options (XEP-0060 §7.1.5). */
#define EPODE_NS_PUBSUB_PUBLISH_OPTIONS "http://jabber.org/protocol/pubsub#publish-options"

/** At most this many items are read from one answer or notification. */
#define EPODE_PUBSUB_MAX_ITEMS 1000

/** The pubsub#errors condition of an error answer (XEP-0060 §14.3).
 * Values follow that list's order; EPODE_PUBSUB_ERR_NONE: none given. */
typedef enum epode_pubsub_error {
    EPODE_PUBSUB_ERR_NONE = 0,
    EPODE_PUBSUB_ERR_CLOSED_NODE,                   /**< closed-node */
    EPODE_PUBSUB_ERR_CONFIGURATION_REQUIRED,        /**< configuration-required */
    EPODE_PUBSUB_ERR_INVALID_JID,                   /**< invalid-jid */
    EPODE_PUBSUB_ERR_INVALID_OPTIONS,               /**< invalid-options */
    EPODE_PUBSUB_ERR_INVALID_PAYLOAD,               /**< invalid-payload */
    EPODE_PUBSUB_ERR_INVALID_SUBID,                 /**< invalid-subid */
    EPODE_PUBSUB_ERR_ITEM_FORBIDDEN,                /**< item-forbidden */
    EPODE_PUBSUB_ERR_ITEM_REQUIRED,                 /**< item-required */
    EPODE_PUBSUB_ERR_JID_REQUIRED,                  /**< jid-required */
    EPODE_PUBSUB_ERR_MAX_ITEMS_EXCEEDED,            /**< max-items-exceeded */
    EPODE_PUBSUB_ERR_MAX_NODES_EXCEEDED,            /**< max-nodes-exceeded */
    EPODE_PUBSUB_ERR_NODEID_REQUIRED,               /**< nodeid-required */
    EPODE_PUBSUB_ERR_NOT_IN_ROSTER_GROUP,           /**< not-in-roster-group */
    EPODE_PUBSUB_ERR_NOT_SUBSCRIBED,                /**< not-subscribed */
    EPODE_PUBSUB_ERR_PAYLOAD_TOO_BIG,               /**< payload-too-big */
    EPODE_PUBSUB_ERR_PAYLOAD_REQUIRED,              /**< payload-required */
    EPODE_PUBSUB_ERR_PENDING_SUBSCRIPTION,          /**< pending-subscription */
    EPODE_PUBSUB_ERR_PRECONDITION_NOT_MET,          /**< precondition-not-met */
    EPODE_PUBSUB_ERR_PRESENCE_SUBSCRIPTION_REQUIRED, /**< presence-subscription-required */
    EPODE_PUBSUB_ERR_SUBID_REQUIRED,                /**< subid-required */
    EPODE_PUBSUB_ERR_TOO_MANY_SUBSCRIPTIONS,        /**< too-many-subscriptions */
    EPODE_PUBSUB_ERR_UNSUPPORTED,                   /**< unsupported (a feature is named) */
    EPODE_PUBSUB_ERR_UNSUPPORTED_ACCESS_MODEL,      /**< unsupported-access-model */
    EPODE_PUBSUB_ERR_OTHER                          /**< a pubsub#errors element epode does not know */
} epode_pubsub_error_t;
/** The name of a value of epode_pubsub_error_t, e.g. "precondition_not_met" for EPODE_PUBSUB_ERR_PRECONDITION_NOT_MET: a static lower-case
 * string (never to be freed), NULL for a value outside the enum. */
EPODE_API const char *epode_pubsub_error_name(epode_pubsub_error_t err);
/** The value for an XEP-0060 element name ("precondition-not-met");
 * EPODE_PUBSUB_ERR_OTHER for a name not on the list, _NONE for NULL. */
EPODE_API epode_pubsub_error_t epode_pubsub_error_from_name(const char *name);

/** What a notification says. */
typedef enum epode_pubsub_event_type {
    EPODE_PUBSUB_PUBLISHED = 1, /**< an item was published (payload may be absent) */
    EPODE_PUBSUB_RETRACTED,     /**< an item was retracted (id only) */
    EPODE_PUBSUB_PURGED,        /**< every item of the node was removed */
    EPODE_PUBSUB_DELETED        /**< the node was deleted */
} epode_pubsub_event_type_t;
/** The name of a value of epode_pubsub_event_type_t, e.g. "retracted" for EPODE_PUBSUB_RETRACTED: a static lower-case
 * string (never to be freed), NULL for a value outside the enum. */
EPODE_API const char *epode_pubsub_event_type_name(epode_pubsub_event_type_t type);

/* ---- items -------------------------------------------------------------------- */

/** One item of an answer or notification (opaque, borrowed for the
 * callback that hands it out). */
typedef struct epode_pubsub_item epode_pubsub_item_t;

/** The item's id (borrowed), NULL if it had none. */
EPODE_API const char *epode_pubsub_item_id(const epode_pubsub_item_t *item);
/** The item's publisher attribute (borrowed), NULL if absent — a claim
 * of the service, not checked by epode. */
EPODE_API const char *epode_pubsub_item_publisher(const epode_pubsub_item_t *item);
/** The item's payload: its first child element (borrowed, part of the
 * answer's tree: ref its root to keep it, or copy it), NULL if none. */
EPODE_API epode_stanza_t *epode_pubsub_item_payload(const epode_pubsub_item_t *item);

/* ---- the helper ----------------------------------------------------------------- */

/** A pubsub helper on one connection (opaque). */
typedef struct epode_pubsub epode_pubsub_t;

/** The answer to a request (opaque, borrowed for the callback). */
typedef struct epode_pubsub_reply epode_pubsub_reply_t;

/** 0 when the service answered (with a result or an error), else
 * EPODE_ETIMEDOUT, EPODE_ECANCELED (connection ended, helper freed). */
EPODE_API int epode_pubsub_reply_status(const epode_pubsub_reply_t *r);
/** The RFC 6120 condition of an error answer; EPODE_COND_NONE for a
 * result (or no answer). */
EPODE_API epode_stanza_cond_t epode_pubsub_reply_cond(const epode_pubsub_reply_t *r);
/** The pubsub#errors condition of an error answer, EPODE_PUBSUB_ERR_NONE
 * if none. */
EPODE_API epode_pubsub_error_t epode_pubsub_reply_pubsub_error(const epode_pubsub_reply_t *r);
/** The feature an `<unsupported feature='…'/>` names (borrowed), else NULL. */
EPODE_API const char *epode_pubsub_reply_unsupported(const epode_pubsub_reply_t *r);
/** The error's text (borrowed), NULL if none. */
EPODE_API const char *epode_pubsub_reply_text(const epode_pubsub_reply_t *r);
/** 1 if the request succeeded (status 0, no error condition), else 0. */
EPODE_API int epode_pubsub_reply_ok(const epode_pubsub_reply_t *r);
/** The answer stanza (borrowed; NULL without one). */
EPODE_API epode_stanza_t *epode_pubsub_reply_stanza(const epode_pubsub_reply_t *r);
/** The node the request named (borrowed). */
EPODE_API const char *epode_pubsub_reply_node(const epode_pubsub_reply_t *r);
/** For a publish: the item id the service reports (or the one asked),
 * borrowed; NULL otherwise. */
EPODE_API const char *epode_pubsub_reply_item_id(const epode_pubsub_reply_t *r);
/** For a fetch: how many items came (bounded by EPODE_PUBSUB_MAX_ITEMS). */
EPODE_API size_t epode_pubsub_reply_item_count(const epode_pubsub_reply_t *r);
/** For a fetch: the i-th item in document order, NULL past the end. */
EPODE_API const epode_pubsub_item_t *epode_pubsub_reply_item_at(const epode_pubsub_reply_t *r,
                                                                size_t i);
/** For a subscribe: the subscription state the service reports
 * ("subscribed", "pending", "unconfigured"; borrowed), else NULL. */
EPODE_API const char *epode_pubsub_reply_subscription(const epode_pubsub_reply_t *r);
/** For a subscribe: the subscription id, if the service gave one. */
EPODE_API const char *epode_pubsub_reply_subid(const epode_pubsub_reply_t *r);

/** The answer to a request; `reply` is borrowed for the call. */
typedef void (*epode_pubsub_result_cb)(epode_pubsub_t *ps, const epode_pubsub_reply_t *reply,
                                       void *user);

/**
 * Makes a pubsub helper on `conn` (its notification handler). `disco`
 * (may be NULL) is the disco helper where epode_pubsub_add_notify()
 * advertises `NODE+notify`; free the pubsub helper before it. Caller
 * owns *out (epode_pubsub_free()). Freeing the connection first is
 * allowed: the helper becomes inert; still free it. Errors:
 * EPODE_EINVAL, EPODE_ENOMEM.
 */
EPODE_API int epode_pubsub_new(epode_conn_t *conn, epode_disco_t *disco, epode_pubsub_t **out);

/** Removes the handlers and the notify features it added, and frees the
 * helper; pending requests' callbacks run first with EPODE_ECANCELED.
 * NULL is fine. Not from inside one of its own callbacks. */
EPODE_API void epode_pubsub_free(epode_pubsub_t *ps);

/** The connection (NULL once it was freed). */
EPODE_API epode_conn_t *epode_pubsub_conn(const epode_pubsub_t *ps);

/**
 * Publishes an item to `node` at `jid` (NULL: our own PEP service):
 * `item_id` (NULL: the service picks one), `payload` (one element,
 * copied; NULL publishes an item without payload), `options` (NULL:
 * none) a form of publish-options — its fields are sent as a submission
 * with FORM_TYPE pubsub#publish-options (set for you). `cb` (may be
 * NULL) hears the answer; *id (may be NULL) is for epode_pubsub_cancel().
 * Errors: EPODE_EINVAL, EPODE_EJID, EPODE_ESTATE (not READY, or the
 * connection was freed), EPODE_ENOMEM; then `cb` is never called.
 */
EPODE_API int epode_pubsub_publish(epode_pubsub_t *ps, const char *jid, const char *node,
                                   const char *item_id, const epode_stanza_t *payload,
                                   const epode_form_t *options, epode_pubsub_result_cb cb,
                                   void *user, unsigned *id);

/**
 * Makes an empty publish-options form (type submit, FORM_TYPE set) to
 * fill with epode_form_set_value() ("pubsub#persist_items" "true",
 * "pubsub#access_model" "whitelist", "pubsub#max_items" "max", …).
 * Caller owns *out (epode_form_free()). Errors: EPODE_EINVAL, EPODE_ENOMEM.
 */
EPODE_API int epode_pubsub_options_new(const epode_mem_t *mem, epode_form_t **out);

/** Retracts item `item_id` from `node` at `jid` (NULL: our PEP);
 * `notify` non-zero asks the service to notify subscribers. Errors and
 * callback as epode_pubsub_publish(). */
EPODE_API int epode_pubsub_retract(epode_pubsub_t *ps, const char *jid, const char *node,
                                   const char *item_id, int notify, epode_pubsub_result_cb cb,
                                   void *user, unsigned *id);

/**
 * Fetches items of `node` at `jid` (NULL: our PEP): the item `item_id`
 * only (NULL: all), at most the `max` most recent (0: no limit; ignored
 * with an item id). The reply's items are read with
 * epode_pubsub_reply_item_at(). Errors as epode_pubsub_publish().
 */
EPODE_API int epode_pubsub_fetch(epode_pubsub_t *ps, const char *jid, const char *node,
                                 const char *item_id, unsigned max, epode_pubsub_result_cb cb,
                                 void *user, unsigned *id);

/** Subscribes our bare JID to `node` at the service `jid` (required:
 * PEP subscriptions come through +notify instead). The reply says the
 * subscription state and id. Errors as epode_pubsub_publish(). */
EPODE_API int epode_pubsub_subscribe(epode_pubsub_t *ps, const char *jid, const char *node,
                                     epode_pubsub_result_cb cb, void *user, unsigned *id);

/** Unsubscribes our bare JID from `node` at `jid`; `subid` (NULL: none)
 * when the service gave one. Errors as epode_pubsub_publish(). */
EPODE_API int epode_pubsub_unsubscribe(epode_pubsub_t *ps, const char *jid, const char *node,
                                       const char *subid, epode_pubsub_result_cb cb, void *user,
                                       unsigned *id);

/** Deletes `node` at `jid` (NULL: our PEP) — an owner request. Errors as
 * epode_pubsub_publish(). */
EPODE_API int epode_pubsub_delete_node(epode_pubsub_t *ps, const char *jid, const char *node,
                                       epode_pubsub_result_cb cb, void *user, unsigned *id);

/** The FORM_TYPE of a node's configuration (XEP-0060 §8.2). */
#define EPODE_NS_PUBSUB_NODE_CONFIG "http://jabber.org/protocol/pubsub#node_config"

/**
 * Configures `node` at `jid` (NULL: our PEP) — an owner request: the
 * fields of `config` ("pubsub#notify_retract" "true", "pubsub#max_items"
 * "max", …) are sent as a submission with FORM_TYPE pubsub#node_config
 * (set for you). Fields not sent keep their values. Errors as
 * epode_pubsub_publish().
 */
EPODE_API int epode_pubsub_configure(epode_pubsub_t *ps, const char *jid, const char *node,
                                     const epode_form_t *config, epode_pubsub_result_cb cb,
                                     void *user, unsigned *id);

/** Forgets a pending request: its callback is not called.
 * EPODE_ENOTFOUND if it is not pending. */
EPODE_API int epode_pubsub_cancel(epode_pubsub_t *ps, unsigned id);

/* ---- notifications --------------------------------------------------------------- */

/**
 * A notification: `from` (borrowed; the notifying service, or the
 * contact's bare JID for PEP; NULL if the message had no 'from', which
 * means our own account), `node`, and for PUBLISHED and RETRACTED the
 * `item` (borrowed for the call; a retraction has an id only). One call
 * per item. `message` is the whole stanza (borrowed; ref it to keep).
 */
typedef void (*epode_pubsub_event_cb)(epode_pubsub_t *ps, epode_pubsub_event_type_t type,
                                      const char *from, const char *node,
                                      const epode_pubsub_item_t *item, epode_stanza_t *message,
                                      void *user);

/** Calls `cb` for notifications about `node` (NULL: every node), in the
 * order callbacks were added. *id (may be NULL) is for
 * epode_pubsub_remove_event_cb(). Errors: EPODE_EINVAL, EPODE_ENOMEM. */
EPODE_API int epode_pubsub_add_event_cb(epode_pubsub_t *ps, const char *node,
                                        epode_pubsub_event_cb cb, void *user, unsigned *id);
/** Removes an event callback (allowed inside one). EPODE_ENOTFOUND if
 * there is no such id. */
EPODE_API int epode_pubsub_remove_event_cb(epode_pubsub_t *ps, unsigned id);

/**
 * Advertises interest in `node`'s PEP notifications: adds `NODE+notify`
 * to the disco helper's features (so to our caps `ver`). Counted: the
 * feature goes when every add is matched by epode_pubsub_remove_notify().
 * Errors: EPODE_EINVAL, EPODE_ESTATE (the helper has no disco helper),
 * EPODE_ENOMEM.
 */
EPODE_API int epode_pubsub_add_notify(epode_pubsub_t *ps, const char *node);
/** Takes back one epode_pubsub_add_notify(); EPODE_ENOTFOUND if none. */
EPODE_API int epode_pubsub_remove_notify(epode_pubsub_t *ps, const char *node);

/** 1 if `from` (a notification's or any stanza's 'from'; NULL included)
 * is our own account: no 'from', or exactly our bare JID. 0 otherwise. */
EPODE_API int epode_pubsub_from_own_account(const epode_pubsub_t *ps, const char *from);

/** How many notifications or items were ignored as malformed or over
 * the bound. */
EPODE_API unsigned epode_pubsub_rejected(const epode_pubsub_t *ps);

#ifdef __cplusplus
}
#endif
#endif
