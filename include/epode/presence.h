/* epode/presence.h — presence (RFC 6121 §4) and subscriptions (RFC 6121
 * §3): sending our availability (show, status, priority), directed
 * presence, unavailable on close; requesting, approving, denying and
 * cancelling subscriptions; and a presence tracker that knows who is
 * online on which resources, picks the "best" resource of a contact,
 * reports changes, and passes incoming subscription requests to the
 * application (which decides, or lets the tracker auto-accept).
 *
 * The sending functions need no helper object. The tracker is made on a
 * connection, lives across reconnects (it is emptied, without events,
 * when the connection ends: every contact's presence is unknown again
 * until the server sends it after the next READY) and is freed by the
 * application. Freeing the connection first is allowed: the tracker
 * becomes inert and empty (no tracker function uses the connection);
 * still free it. Presence from MUC rooms (with a muc#user child) is left
 * to the MUC helper and not tracked.
 *
 * Our own account is not a contact (RFC 6121: the server sends us the
 * presence of our account's other resources, §4.4.2, and our own back,
 * §4.2.2, but they are no roster items). The tracker keeps and reports
 * those presences like any other (events, epode_presence_tracker_get(),
 * _best(), _resource_count() and _resource_at() with our bare JID,
 * epode_conn_bound_jid()), so an application sees itself come online and
 * where else it is online, but never counts our bare JID among contacts
 * (epode_presence_tracker_contact_count() and _contact_at()).
 *
 * Built on the public API only (handlers and event listeners).
 * Everything belongs to the connection's thread. Memory comes from the C
 * library's allocator (the public API has no way to reach a context's).
 */
#ifndef EPODE_PRESENCE_H
#define EPODE_PRESENCE_H

#include <stddef.h>

#include "common.h"
#include "conn.h"
#include "stanza.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Availability, in the order the tracker ranks it (higher is more
 * available): UNAVAILABLE < DND < XA < AWAY < AVAILABLE < CHAT. */
typedef enum epode_show {
    EPODE_SHOW_UNAVAILABLE = 0, /**< unavailable presence (offline) */
    EPODE_SHOW_DND,       /**< `<show>dnd</show>`: do not disturb */
    EPODE_SHOW_XA,        /**< `<show>xa</show>`: extended away */
    EPODE_SHOW_AWAY,      /**< `<show>away</show>` */
    EPODE_SHOW_AVAILABLE, /**< no `<show/>` */
    EPODE_SHOW_CHAT       /**< `<show>chat</show>`: free for chat */
} epode_show_t;

/** "unavailable", "dnd", "xa", "away", "available", "chat"; NULL out of
 * range. Static storage. */
EPODE_API const char *epode_show_name(epode_show_t show);
/** Parses one of the names above into *show. EPODE_EINVAL for anything
 * else (the RFC allows no other `<show/>` value). */
EPODE_API int epode_show_from_name(const char *name, epode_show_t *show);

/* ---- sending presence ------------------------------------------------- */

/**
 * Builds a presence: `to` NULL for a broadcast, else directed to that JID;
 * `show` EPODE_SHOW_UNAVAILABLE gives type="unavailable" (priority then
 * not written); `status` NULL for none; `priority` -128..127 (0 is not
 * written). Caller owns *out. Errors: EPODE_EJID (`to` is not a valid
 * JID), EPODE_EINVAL (show out of range, invalid status text),
 * EPODE_ERANGE (priority), EPODE_ENOMEM.
 */
EPODE_API int epode_presence_build(const char *to, epode_show_t show, const char *status,
                                   int priority, epode_stanza_t **out);

/** Sends our presence to everyone subscribed (initial presence the first
 * time after READY, updated presence after that). Errors as
 * epode_presence_build() and epode_conn_send(). */
EPODE_API int epode_presence_send(epode_conn_t *conn, epode_show_t show, const char *status,
                                  int priority);

/** Sends directed presence to one JID (RFC 6121 §4.6), e.g. a MUC room or
 * a contact who is not subscribed. Errors as epode_presence_send(). */
EPODE_API int epode_presence_send_to(epode_conn_t *conn, const char *to, epode_show_t show,
                                     const char *status, int priority);

/**
 * Sends unavailable presence (with `status`, may be NULL) and then closes
 * the stream (epode_conn_close()). Closing without it is fine as well: the
 * server broadcasts unavailable for us when the stream ends (RFC 6121
 * §4.5.2); this only lets the application say why. Errors as
 * epode_conn_close(); an unsendable presence is skipped.
 */
EPODE_API int epode_presence_close(epode_conn_t *conn, const char *status);

/* ---- subscriptions (RFC 6121 §3) ----------------------------------------- */

/** Asks `to` (a JID; its bare part is used) for a subscription to its
 * presence, with an optional message (`status`, NULL: none). Errors:
 * EPODE_EINVAL (NULL), EPODE_EJID (`to` is not a valid JID; this and
 * the four functions below), EPODE_ENOMEM, and as epode_conn_send(). */
EPODE_API int epode_presence_subscribe(epode_conn_t *conn, const char *to, const char *status);
/** Approves `to`'s request (or pre-approves, RFC 6121 §3.4): sends
 * `subscribed`. */
EPODE_API int epode_presence_approve(epode_conn_t *conn, const char *to);
/** Refuses `to`'s pending request: sends `unsubscribed`. */
EPODE_API int epode_presence_deny(epode_conn_t *conn, const char *to);
/** Cancels the subscription `to` has to our presence: sends
 * `unsubscribed` (the same stanza as a denial, RFC 6121 §3.2). */
EPODE_API int epode_presence_cancel(epode_conn_t *conn, const char *to);
/** Ends our subscription to `to`'s presence: sends `unsubscribe`. */
EPODE_API int epode_presence_unsubscribe(epode_conn_t *conn, const char *to);

/* ---- the tracker ------------------------------------------------------- */

/** A presence tracker (opaque). */
typedef struct epode_presence_tracker epode_presence_tracker_t;
/** One resource's presence as the tracker knows it (opaque, read-only).
 * Borrowed: valid until the tracker next changes (the next presence
 * stanza, DISCONNECTED, or epode_presence_tracker_free()). */
typedef struct epode_presence_info epode_presence_info_t;

/** The full JID ("bare" alone for presence sent from a bare JID). */
EPODE_API const char *epode_presence_info_jid(const epode_presence_info_t *info);
/** The normalized bare JID. */
EPODE_API const char *epode_presence_info_bare(const epode_presence_info_t *info);
/** The resource, NULL for presence from a bare JID. */
EPODE_API const char *epode_presence_info_resource(const epode_presence_info_t *info);
/** Availability (EPODE_SHOW_UNAVAILABLE in UNAVAILABLE and ERROR events). */
EPODE_API epode_show_t epode_presence_info_show(const epode_presence_info_t *info);
/** The status text in the stanza's default language (NULL: none). */
EPODE_API const char *epode_presence_info_status(const epode_presence_info_t *info);
/** The priority, -128..127 (0 when absent or invalid). */
EPODE_API int epode_presence_info_priority(const epode_presence_info_t *info);
/** The condition of a presence error (ERROR events), else EPODE_COND_NONE. */
EPODE_API epode_stanza_cond_t epode_presence_info_error(const epode_presence_info_t *info);
/** The last presence stanza received for this resource (borrowed; the
 * tracker holds a reference while it keeps the entry; epode_stanza_ref()
 * to keep it longer), for extensions the tracker does not read. */
EPODE_API epode_stanza_t *epode_presence_info_stanza(const epode_presence_info_t *info);

/** What changed. */
typedef enum epode_presence_change {
    EPODE_PRESENCE_AVAILABLE = 1, /**< a resource came online */
    EPODE_PRESENCE_CHANGED,       /**< its show, status or priority changed */
    EPODE_PRESENCE_UNAVAILABLE,   /**< it went offline (and is forgotten) */
    EPODE_PRESENCE_ERROR          /**< a presence error: the resource (all of
                                       the contact's, for an error from the
                                       bare JID) is forgotten; the info
                                       carries the condition */
} epode_presence_change_t;
/** The name of a value of epode_presence_change_t, e.g. "unavailable" for EPODE_PRESENCE_UNAVAILABLE: a static lower-case
 * string (never to be freed), NULL for a value outside the enum. */
EPODE_API const char *epode_presence_change_name(epode_presence_change_t change);

/** A presence change; `info` is borrowed for the call. During
 * UNAVAILABLE and ERROR it is no longer in the tracker. */
typedef void (*epode_presence_event_cb)(epode_conn_t *conn, const epode_presence_info_t *info,
                                        epode_presence_change_t change, void *user);

/**
 * Makes a tracker on `conn` and registers its handlers. Caller owns *out
 * and frees it with epode_presence_tracker_free(), before or after the
 * connection (see above). Errors: EPODE_EINVAL, EPODE_ENOMEM.
 */
EPODE_API int epode_presence_tracker_new(epode_conn_t *conn, epode_presence_tracker_t **out);
/** Removes the tracker's handlers and frees it. NULL is fine. Not from
 * inside one of its own callbacks. */
EPODE_API void epode_presence_tracker_free(epode_presence_tracker_t *t);

/** Sets the change callback (NULL: none). */
EPODE_API int epode_presence_tracker_set_event_cb(epode_presence_tracker_t *t,
                                                  epode_presence_event_cb cb, void *user);

/**
 * A resource's presence: for a full JID, that resource's (or the bare
 * JID's own, for a contact that sends presence from its bare JID); for a
 * bare JID, the best resource's (epode_presence_tracker_best()). NULL if
 * offline, unknown or `jid` is invalid. Borrowed as described above.
 */
EPODE_API const epode_presence_info_t *epode_presence_tracker_get(epode_presence_tracker_t *t,
                                                                  const char *jid);
/**
 * The best resource of a bare JID (any resource given is ignored): the
 * highest priority, then the most available show, then the most recent
 * presence. Negative priorities are still considered (RFC 6121 §4.7.2.3
 * only keeps servers from routing to them). NULL if none is online.
 */
EPODE_API const epode_presence_info_t *epode_presence_tracker_best(epode_presence_tracker_t *t,
                                                                   const char *jid);
/** How many resources of a bare JID are online (0 if unknown). */
EPODE_API size_t epode_presence_tracker_resource_count(epode_presence_tracker_t *t,
                                                       const char *jid);
/** The i-th online resource of a bare JID, in the order they came online
 * (NULL past the end). */
EPODE_API const epode_presence_info_t *
epode_presence_tracker_resource_at(epode_presence_tracker_t *t, const char *jid, size_t i);
/** How many contacts have at least one resource online. */
EPODE_API size_t epode_presence_tracker_contact_count(const epode_presence_tracker_t *t);
/** The i-th such contact's normalized bare JID (NULL past the end).
 * Borrowed, valid as long as an info (see epode_presence_info_t). */
EPODE_API const char *epode_presence_tracker_contact_at(const epode_presence_tracker_t *t,
                                                        size_t i);

/* ---- incoming subscription stanzas ---------------------------------------- */

/** A subscription stanza someone sent us. */
typedef enum epode_subscription {
    EPODE_SUB_REQUEST = 1, /**< `subscribe`: they ask to see our presence */
    EPODE_SUB_APPROVED,    /**< `subscribed`: they let us see theirs */
    EPODE_SUB_REVOKED,     /**< `unsubscribed`: they denied or cancelled ours */
    EPODE_SUB_ENDED        /**< `unsubscribe`: they no longer see ours */
} epode_subscription_t;
/** The name of a value of epode_subscription_t, e.g. "request" for EPODE_SUB_REQUEST: a static lower-case
 * string (never to be freed), NULL for a value outside the enum. */
EPODE_API const char *epode_subscription_name(epode_subscription_t what);

/** What the subscription callback decides about a REQUEST. */
enum {
    EPODE_SUB_DEFER = 0,   /**< nothing now (or the auto-accept policy, if
                                set); answer later with
                                epode_presence_approve()/deny() */
    EPODE_SUB_ACCEPT = 1,  /**< approve (send `subscribed`) */
    EPODE_SUB_REFUSE = 2   /**< deny (send `unsubscribed`) */
};

/**
 * Called for each subscription stanza: `from` is the sender's bare JID
 * and `status` its optional message (both borrowed for the call). The
 * return value matters only for REQUEST (see EPODE_SUB_DEFER…).
 */
typedef int (*epode_subscription_cb)(epode_conn_t *conn, const char *from,
                                     epode_subscription_t what, const char *status, void *user);

/** Sets the subscription callback (NULL: none). */
EPODE_API int epode_presence_tracker_set_subscription_cb(epode_presence_tracker_t *t,
                                                         epode_subscription_cb cb, void *user);

/** Auto-accept policies for requests the callback leaves (DEFER). */
enum {
    EPODE_AUTO_ACCEPT_OFF = 0,  /**< the default: the application answers */
    EPODE_AUTO_ACCEPT_ON,       /**< approve every request */
    EPODE_AUTO_ACCEPT_MUTUAL    /**< approve, and ask for theirs in return */
};
/** Sets the auto-accept policy. EPODE_EINVAL for an unknown one. */
EPODE_API int epode_presence_tracker_set_auto_accept(epode_presence_tracker_t *t, int policy);

#ifdef __cplusplus
}
#endif
#endif
