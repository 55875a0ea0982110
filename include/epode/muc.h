/* epode/muc.h — XEP-0045 Multi-User Chat basics: join (nick, password,
 * history limits), leave, messages to the room and private messages to
 * an occupant, the occupant list with roles, affiliations and real JIDs
 * (when the room shows them), the subject (read and set), nick conflicts
 * (reported, optionally retried with a suffix), room messages and errors
 * as events, and new rooms unlocked with the default configuration
 * (instant room). Rooms are rejoined after a reconnect. Built on the
 * public API only.
 *
 * Ownership: the helper owns its rooms and their occupants. A room handle
 * is valid from epode_muc_join() until the callback for its
 * EPODE_MUC_LEFT event (or a fatal EPODE_MUC_ERROR) returns, or until
 * epode_muc_free(). Event and occupant data are borrowed for the
 * callback. */
#ifndef EPODE_MUC_H
#define EPODE_MUC_H

#include "common.h"
#include "conn.h"
#include "stanza.h"

#ifdef __cplusplus
extern "C" {
#endif

#define EPODE_NS_MUC "http://jabber.org/protocol/muc" /**< Multi-user chat: joining (XEP-0045). */
/** Multi-user chat: occupant information and status codes. */
#define EPODE_NS_MUC_USER "http://jabber.org/protocol/muc#user"
/** Multi-user chat: room configuration. */
#define EPODE_NS_MUC_OWNER "http://jabber.org/protocol/muc#owner"

/** The MUC helper of one connection (opaque). */
typedef struct epode_muc epode_muc_t;
/** A room we joined or are joining (opaque, owned by the helper). */
typedef struct epode_muc_room epode_muc_room_t;

/** An occupant as the room last described it. Read-only, made by the
 * helper (fields may be added at the end); strings borrowed, valid until
 * the occupant changes or leaves. */
typedef struct epode_muc_occupant {
    const char *nick;        /**< the occupant's nick in the room */
    const char *jid;         /**< real JID, NULL when the room hides it */
    const char *role;        /**< "moderator", "participant", "visitor", "none" */
    const char *affiliation; /**< "owner", "admin", "member", "outcast", "none" */
    const char *show;        /**< presence show, NULL: available */
    const char *status;      /**< presence status text, NULL if none */
    int is_self;             /**< 1 for our own occupant */
} epode_muc_occupant_t;

/** What happened in a room. */
typedef enum epode_muc_event_type {
    EPODE_MUC_JOINED = 1,       /**< we are in (our self-presence, status 110,
                                     arrived; for a new room: once unlocked) */
    EPODE_MUC_OCCUPANT_JOINED,  /**< someone is in the room (also sent for
                                     those already there when we join) */
    EPODE_MUC_OCCUPANT_CHANGED, /**< an occupant's role, affiliation or
                                     presence changed */
    EPODE_MUC_OCCUPANT_LEFT,    /**< someone left (occupant: last state) */
    EPODE_MUC_MESSAGE,          /**< a groupchat message with a body */
    EPODE_MUC_PRIVATE,          /**< a private message from an occupant */
    EPODE_MUC_SUBJECT,          /**< the subject was told or changed */
    EPODE_MUC_ERROR,            /**< an error from the room (see cond) */
    EPODE_MUC_LEFT              /**< we are out: we left, were kicked or
                                     banned, or the room went away */
} epode_muc_event_type_t;
/** The name of a value of epode_muc_event_type_t, e.g. "occupant_joined" for EPODE_MUC_OCCUPANT_JOINED: a static lower-case
 * string (never to be freed), NULL for a value outside the enum. */
EPODE_API const char *epode_muc_event_type_name(epode_muc_event_type_t type);

/** One room event, borrowed for the callback. Fields that do not apply
 * are NULL or 0. Made by the helper; fields may be added at the end. */
typedef struct epode_muc_event {
    epode_muc_event_type_t type;          /**< what happened */
    epode_muc_room_t *room;               /**< the room it happened in */
    const char *nick;                     /**< the occupant concerned or
                                               the sender; NULL: the room */
    const epode_muc_occupant_t *occupant; /**< OCCUPANT_*, JOINED (us) */
    const char *body;                     /**< MESSAGE, PRIVATE */
    const char *subject;                  /**< SUBJECT ("" when cleared) */
    int is_self;                          /**< from or about our occupant */
    int is_history;                       /**< MESSAGE/SUBJECT replayed from
                                               history (delayed) */
    int created;                          /**< JOINED: we created the room */
    epode_stanza_cond_t cond;             /**< ERROR: the condition */
    const char *error_text;               /**< ERROR: the text, or NULL */
    int fatal;                            /**< ERROR: the join failed and the
                                               room handle is gone after the
                                               callback */
    int retrying;                         /**< ERROR (conflict): joining again
                                               as `nick` */
    const int *codes;                     /**< muc#user status codes seen */
    size_t ncodes;                        /**< how many codes */
    epode_stanza_t *stanza;               /**< the stanza behind it, or NULL */
} epode_muc_event_t;

/** Receives every room event of the helper. */
typedef void (*epode_muc_cb)(epode_conn_t *conn, const epode_muc_event_t *ev, void *user);

/**
 * Makes the MUC helper of `conn`; `cb` receives all room events. Survives
 * reconnects (joined rooms are joined again at READY). Caller owns *out
 * and frees it with epode_muc_free(). Freeing the connection first is
 * allowed: the helper becomes inert, without events (its rooms stay
 * valid, no longer joined, with their last known occupants and subject,
 * until epode_muc_free(); joining and sending return EPODE_ESTATE,
 * leaving drops the room at once); still free it.
 * Errors: EPODE_EINVAL, EPODE_ENOMEM.
 */
EPODE_API int epode_muc_new(epode_conn_t *conn, epode_muc_cb cb, void *user, epode_muc_t **out);

/** Frees the helper and all its rooms without sending anything (leave
 * rooms first for a polite exit). Not from inside its own callback. NULL
 * is a no-op. */
EPODE_API void epode_muc_free(epode_muc_t *muc);

/**
 * On a nick conflict (409) while joining, join again with `suffix` added
 * to the nick, up to `max_tries` times (0, the default: report the
 * conflict as a fatal error). Each retry is announced by an ERROR event
 * with `retrying` set. `suffix` is copied (NULL: "_"). Errors:
 * EPODE_EINVAL, EPODE_ENOMEM.
 */
EPODE_API int epode_muc_set_nick_retry(epode_muc_t *muc, const char *suffix, unsigned max_tries);

/**
 * Joins `room` (a bare JID "room@service") as `nick`. `password` may be
 * NULL. History: `maxstanzas` and `seconds` limit what the room replays
 * (-1: leave to the room; 0 maxstanzas: none). If the connection is not
 * READY the join goes out at the next READY. *out (may be NULL) receives
 * the room handle. Errors: EPODE_EINVAL, EPODE_EJID (room not a bare JID,
 * or room/nick not a valid JID), EPODE_ESTATE (already in or joining that
 * room, or the connection was freed), EPODE_ENOMEM.
 */
EPODE_API int epode_muc_join(epode_muc_t *muc, const char *room, const char *nick,
                             const char *password, int maxstanzas, int seconds,
                             epode_muc_room_t **out);

/**
 * Leaves the room (unavailable presence with optional `status` text).
 * EPODE_MUC_LEFT follows when the room confirms; if the connection is not
 * READY the room is dropped at once, without an event. Errors:
 * EPODE_EINVAL, EPODE_ESTATE (already leaving).
 */
EPODE_API int epode_muc_leave(epode_muc_room_t *room, const char *status);

/** Sends a groupchat message to the room. Errors: EPODE_EINVAL,
 * EPODE_ESTATE (not joined), EPODE_ENOMEM. */
EPODE_API int epode_muc_send(epode_muc_room_t *room, const char *body);

/** Sends a private message to occupant `nick` through the room. Errors:
 * EPODE_EINVAL, EPODE_EJID, EPODE_ESTATE (not joined), EPODE_ENOMEM. */
EPODE_API int epode_muc_send_private(epode_muc_room_t *room, const char *nick,
                                     const char *body);

/** Asks the room to change its subject (moderators, or as the room is
 * configured; a refusal comes back as an ERROR event). Errors as
 * epode_muc_send(). */
EPODE_API int epode_muc_set_subject(epode_muc_room_t *room, const char *subject);

/** The room with this bare JID (normalized comparison), or NULL. */
EPODE_API epode_muc_room_t *epode_muc_find(const epode_muc_t *muc, const char *room);

/** The room's bare JID (normalized; borrowed). */
EPODE_API const char *epode_muc_room_jid(const epode_muc_room_t *room);
/** Our current nick in the room (borrowed; may change on a retry or when
 * the room renames us). */
EPODE_API const char *epode_muc_room_nick(const epode_muc_room_t *room);
/** 1 once JOINED and until we leave or the connection drops. */
EPODE_API int epode_muc_room_is_joined(const epode_muc_room_t *room);
/** The room's subject (borrowed), NULL if none was told. */
EPODE_API const char *epode_muc_room_subject(const epode_muc_room_t *room);
/** Number of occupants we know of (ourselves included once joined). */
EPODE_API size_t epode_muc_room_occupant_count(const epode_muc_room_t *room);
/** The i-th occupant (in arrival order), NULL past the end. Borrowed. */
EPODE_API const epode_muc_occupant_t *epode_muc_room_occupant_at(const epode_muc_room_t *room,
                                                                 size_t i);
/** The occupant with this nick, NULL if none. Borrowed. */
EPODE_API const epode_muc_occupant_t *epode_muc_room_occupant(const epode_muc_room_t *room,
                                                              const char *nick);
/** The application's pointer for this room (NULL until set). */
EPODE_API void *epode_muc_room_get_user(const epode_muc_room_t *room);
/** Attaches an application pointer to the room. */
EPODE_API void epode_muc_room_set_user(epode_muc_room_t *room, void *user);

#ifdef __cplusplus
}
#endif
#endif
