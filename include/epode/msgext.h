/* epode/msgext.h — today's message features on top of epode/messaging.h:
 * delayed delivery (XEP-0203) on every message view, corrections
 * (XEP-0308), retractions (XEP-0424), reactions (XEP-0444), replies
 * (XEP-0461) with their compatibility fallback (XEP-0428), chat markers
 * (XEP-0333), processing hints (XEP-0334), occupant ids (XEP-0421), and
 * XEP-0082 timestamps.
 *
 * Each feature has builders (on any message stanza, no helper needed)
 * and readers on the parsed view (epode_message_t) that message
 * handlers, carbons (through epode_message_view_new()) and archive
 * queries (epode/mam.h) hand out. Readers never allocate; what they
 * return is borrowed from the view's stanza.
 *
 * Who may change what: a correction, a retraction or a reaction update
 * names an earlier message by id, and anyone can send one. Before
 * applying it, check that it comes from the sender of the message it
 * names with epode_message_same_sender() (XEP-0308 §5, XEP-0424 §5,
 * XEP-0444 §5.1: the same bare JID in a direct chat, the same occupant
 * — full JID, and XEP-0421 occupant id where the room gives one — in a
 * room or a room's private message). epode cannot do it for you: only
 * the application keeps the original messages.
 *
 * Which id to name: for a groupchat message, the stanza-id the room
 * assigned (epode_message_stanza_id(), once the room is trusted with
 * epode_messaging_trust_stanza_id()); otherwise the origin-id if the
 * message has one, else its 'id' attribute. epode_message_ref_id()
 * picks it.
 *
 * Retraction: epode builds the current XEP-0424 form (version 0.4,
 * urn:xmpp:message-retract:1: a `<retract id='…'/>` child) and reads it
 * and the older form (urn:xmpp:message-retract:0 inside a XEP-0422
 * <apply-to/>) that clients still send. */
#ifndef EPODE_MSGEXT_H
#define EPODE_MSGEXT_H

#include <stddef.h>

#include "common.h"
#include "messaging.h"
#include "stanza.h"

#ifdef __cplusplus
extern "C" {
#endif

#define EPODE_NS_DELAY "urn:xmpp:delay" /**< Delayed delivery (XEP-0203). */
#define EPODE_NS_CORRECT "urn:xmpp:message-correct:0" /**< Last message correction (XEP-0308). */
/** Message retraction, current form (XEP-0424). */
#define EPODE_NS_RETRACT "urn:xmpp:message-retract:1"
/** Message retraction, older form (inside XEP-0422 fastening). */
#define EPODE_NS_RETRACT_0 "urn:xmpp:message-retract:0"
#define EPODE_NS_FASTEN "urn:xmpp:fasten:0" /**< Message fastening (XEP-0422). */
#define EPODE_NS_REACTIONS "urn:xmpp:reactions:0" /**< Message reactions (XEP-0444). */
#define EPODE_NS_REPLY "urn:xmpp:reply:0" /**< Message replies (XEP-0461). */
#define EPODE_NS_FALLBACK "urn:xmpp:fallback:0" /**< Fallback indication (XEP-0428). */
#define EPODE_NS_MARKERS "urn:xmpp:chat-markers:0" /**< Chat markers (XEP-0333). */
#define EPODE_NS_OCCUPANT_ID "urn:xmpp:occupant-id:0" /**< Occupant identifiers (XEP-0421). */

/* ---- timestamps (XEP-0082) ---------------------------------------------- */

/** Room for any timestamp epode_time_format() writes, with its NUL. */
#define EPODE_TIME_BUFSIZE 32

/**
 * Parses an XEP-0082 DateTime ("2024-05-01T12:30:00Z", optional
 * fraction of a second, "Z" or a "+hh:mm"/"-hh:mm" offset) into
 * milliseconds since 1970-01-01T00:00:00Z (fractions beyond milliseconds
 * are cut). Strict: every field in range, nothing before or after.
 * Errors: EPODE_EINVAL (NULL or not such a timestamp; *ms untouched).
 */
EPODE_API int epode_time_parse(const char *text, long long *ms);

/**
 * Writes `ms` (milliseconds since the epoch, years 0001 to 9999) as an
 * XEP-0082 DateTime in UTC: "2024-05-01T12:30:00Z", with ".123" before
 * the Z when there are milliseconds. Errors: EPODE_EINVAL (NULL buffer,
 * out of range), EPODE_ERANGE (`size` under what is needed; use
 * EPODE_TIME_BUFSIZE).
 */
EPODE_API int epode_time_format(long long ms, char *buf, size_t size);

/* ---- views on any message stanza ----------------------------------------- */

/**
 * Makes a view on `msg` (a `<message/>`) outside a message handler — a
 * carbon copy (epode/carbons.h), a stanza of your own — so the readers
 * of messaging.h and of this header work on it. The view takes a
 * reference on the stanza's tree; no stanza-id is trusted in it
 * (epode_message_stanza_id() is NULL). Caller owns *out and frees it
 * with epode_message_view_free(). `mem` NULL: libc. Errors: EPODE_EINVAL
 * (NULL, or not a message), EPODE_ENOMEM.
 */
EPODE_API int epode_message_view_new(const epode_mem_t *mem, epode_stanza_t *msg,
                                     epode_message_t **out);

/** Frees a view made by epode_message_view_new() and drops its stanza
 * reference. NULL is fine. Never for the views handlers are lent. */
EPODE_API void epode_message_view_free(epode_message_t *view);

/* ---- delayed delivery (XEP-0203) ----------------------------------------- */

/**
 * When the message was first sent, if it was delayed: its `<delay/>`
 * (for an archived message from epode/mam.h, the archive's: the time it
 * was archived). `ms` gets the stamp as milliseconds since the epoch;
 * `from` (who delayed it) and `reason` (its text) are borrowed, NULL if
 * absent. Any output may be NULL. A delay inside a live message is what
 * its sender or a server on the way claims, not a proof. Returns 0, or
 * EPODE_ENOTFOUND if the message carries no delay with a valid stamp
 * (outputs untouched then).
 */
EPODE_API int epode_message_delay(const epode_message_t *m, long long *ms, const char **from,
                                  const char **reason);

/**
 * Adds a `<delay/>` (XEP-0203) stamped `ms`, with `from` and `reason`
 * (NULL: none). Errors: EPODE_EINVAL (the message has one already, time
 * out of range), EPODE_EJID (`from` is not a valid JID), EPODE_ENOMEM.
 */
EPODE_API int epode_message_add_delay(epode_stanza_t *msg, long long ms, const char *from,
                                      const char *reason);

/* ---- who sent it --------------------------------------------------------- */

/** The XEP-0421 occupant id a room stamped on the message (NULL: none).
 * Only meaningful from a room that announces urn:xmpp:occupant-id:0. */
EPODE_API const char *epode_message_occupant_id(const epode_message_t *m);

/** How epode_message_same_sender() compares senders. */
typedef enum epode_sender_mode {
    /** OCCUPANT for a groupchat message or one carrying a MUC `<x/>`
     * (http://jabber.org/protocol/muc#user: rooms add it to the private
     * messages they relay), DIRECT otherwise. */
    EPODE_SENDER_AUTO = 0,
    /** A direct chat: the bare JIDs must be equal. */
    EPODE_SENDER_DIRECT,
    /** A room or a room's private message: the full JIDs (room/nick)
     * must be equal, and so must the occupant ids when the original had
     * one (a later message without one is then refused). */
    EPODE_SENDER_OCCUPANT
} epode_sender_mode_t;
/** The name of a value of epode_sender_mode_t, e.g. "occupant" for EPODE_SENDER_OCCUPANT: a static lower-case
 * string (never to be freed), NULL for a value outside the enum. */
EPODE_API const char *epode_sender_mode_name(epode_sender_mode_t mode);

/**
 * 1 if `later` (a correction, retraction or reaction update) comes from
 * the sender of the message it names, whose 'from' was `orig_from` and
 * whose occupant id (epode_message_occupant_id()) was `orig_occupant_id`
 * (NULL: none); 0 if not — then ignore what it asks. For a message you
 * sent yourself, pass your own JID (epode_conn_bound_jid()). JIDs are
 * compared normalized; an invalid or missing JID matches nothing. Room
 * occupants can leave and others take their nick: XEP-0308 also wants
 * the application to check that the occupant did not change in between
 * (track the room's presences, or rely on occupant ids). A reaction in
 * a direct chat may come from either party: check both JIDs. An error
 * message, or one without 'from', never matches.
 */
EPODE_API int epode_message_same_sender(const epode_message_t *later, const char *orig_from,
                                        const char *orig_occupant_id, epode_sender_mode_t mode);

/**
 * The id other messages use to name this one (see the top of this
 * header): for groupchat, the trusted stanza-id (NULL if none: such a
 * message cannot be referred to); otherwise the origin-id, else the
 * 'id' attribute (NULL if neither). Borrowed.
 */
EPODE_API const char *epode_message_ref_id(const epode_message_t *m);

/* ---- corrections (XEP-0308) ---------------------------------------------- */

/**
 * Marks `msg` as the correction of the message with id `id` (always the
 * first message's id, even when correcting a correction): adds
 * `<replace id='…'/>`. The new message carries the whole corrected
 * content and an id of its own. Errors: EPODE_EINVAL (NULL, empty id, or
 * a replace already there), EPODE_ENOMEM.
 */
EPODE_API int epode_message_set_replace(epode_stanza_t *msg, const char *id);

/** The id of the message this one corrects (NULL: not a correction).
 * Check the sender with epode_message_same_sender() before applying. */
EPODE_API const char *epode_message_replace_id(const epode_message_t *m);

/* ---- retractions (XEP-0424) ---------------------------------------------- */

/**
 * Makes a retraction of the message named `id` (see "which id" above),
 * sent to `to` with `type` ("chat", "groupchat", NULL: normal): a fresh
 * id, `<retract id='…'/>` (urn:xmpp:message-retract:1), a fallback body
 * marked as such (XEP-0428) for clients that do not know retractions,
 * and a `<store/>` hint so archives keep it. Caller owns *out. Errors:
 * EPODE_EINVAL, EPODE_EJID (`to` is not a valid JID), EPODE_ENOMEM,
 * EPODE_ERANDOM.
 */
EPODE_API int epode_message_build_retraction(const char *type, const char *to, const char *id,
                                             epode_stanza_t **out);

/** The id of the message this one retracts (NULL: not a retraction);
 * both urn:xmpp:message-retract:1 and the older :0 form are read. Check
 * the sender with epode_message_same_sender() before applying. */
EPODE_API const char *epode_message_retract_id(const epode_message_t *m);

/**
 * For a tombstone (an archived message an archive emptied after its
 * retraction): returns the retraction's id and sets *ms (may be NULL;
 * untouched if the tombstone has no valid stamp) to when it happened.
 * NULL if the message is not a tombstone.
 */
EPODE_API const char *epode_message_retracted(const epode_message_t *m, long long *ms);

/* ---- reactions (XEP-0444) ------------------------------------------------ */

/** The most reactions epode reads or builds in one message. */
#define EPODE_REACTIONS_MAX 64
/** The longest single reaction, in bytes (an emoji sequence is far shorter). */
#define EPODE_REACTION_MAX_BYTES 64

/**
 * Makes a reactions message: the complete set `reactions[0..n)` (n 0:
 * remove all of ours) to the message named `id`, sent to `to` with
 * `type`, with a fresh id and a `<store/>` hint. Errors: EPODE_EINVAL
 * (NULL, an empty, over-long or repeated reaction, more than
 * EPODE_REACTIONS_MAX), EPODE_EJID (`to` is not a valid JID),
 * EPODE_ENOMEM, EPODE_ERANDOM. Caller owns *out.
 */
EPODE_API int epode_message_build_reactions(const char *type, const char *to, const char *id,
                                            const char *const *reactions, size_t n,
                                            epode_stanza_t **out);

/**
 * The id of the message these reactions are for, NULL if the message
 * carries none we accept: none at all, more than one `<reactions/>`
 * (XEP-0444 §5 forbids it), no id, more than EPODE_REACTIONS_MAX
 * distinct reactions, or more than four times that many `<reaction/>`
 * elements (repeats included: a flood is refused, not walked). A reactions message replaces all earlier
 * reactions of the same sender to that message (check the sender with
 * epode_message_same_sender()); an empty set removes them.
 */
EPODE_API const char *epode_message_reactions_id(const epode_message_t *m);

/** How many distinct reactions the message carries (0 when
 * epode_message_reactions_id() is NULL). Empty and over-long reactions
 * and repeats are skipped. */
EPODE_API size_t epode_message_reaction_count(const epode_message_t *m);

/** The i-th distinct reaction (borrowed), NULL past the end. */
EPODE_API const char *epode_message_reaction_at(const epode_message_t *m, size_t i);

/* ---- replies (XEP-0461) and fallbacks (XEP-0428) ------------------------- */

/**
 * Marks `msg` as a reply to the message named `id` written by `to` (its
 * author's full JID in a room, a bare JID is fine in a direct chat; NULL:
 * leave out): adds `<reply/>`. Errors: EPODE_EINVAL (NULL or empty id, a
 * reply already there), EPODE_EJID (`to` is not a valid JID),
 * EPODE_ENOMEM.
 */
EPODE_API int epode_message_set_reply(epode_stanza_t *msg, const char *to, const char *id);

/**
 * Makes a complete reply: a message of `type` to `to` whose body is
 * `quote` as quoted lines ("> line\n" each; NULL: no quote) followed by
 * `body`, marked as a reply to (`reply_to`, `reply_id`) as
 * epode_message_set_reply() does, with the quoted part marked as a
 * fallback for urn:xmpp:reply:0 so that supporting clients show only
 * `body`. A fresh id. Caller owns *out. Errors: EPODE_EINVAL, EPODE_EJID
 * (`to` or `reply_to` is not a valid JID), EPODE_ENOMEM, EPODE_ERANDOM.
 */
EPODE_API int epode_message_build_reply(const char *type, const char *to, const char *body,
                                        const char *reply_to, const char *reply_id,
                                        const char *quote, epode_stanza_t **out);

/** The id of the message this one replies to (NULL: not a reply);
 * `to` (may be NULL) gets its author as given (borrowed; NULL if none). */
EPODE_API const char *epode_message_reply_id(const epode_message_t *m, const char **to);

/**
 * Where the default body (epode_message_body(m, NULL)) holds fallback
 * text for the feature `for_ns` (e.g. EPODE_NS_REPLY): byte offsets
 * [*start, *end) into it, converted from XEP-0426 character counts. A
 * fallback without a range covers the whole body. Returns 0, or
 * EPODE_ENOTFOUND (no such fallback, no body, or a range that does not
 * fit the body: ignore it then).
 */
EPODE_API int epode_message_fallback(const epode_message_t *m, const char *for_ns,
                                     size_t *start, size_t *end);

/* ---- chat markers (XEP-0333) --------------------------------------------- */

/** A chat marker. RECEIVED and ACKNOWLEDGED come from older versions of
 * XEP-0333 and are read and built for clients that still use them. */
typedef enum epode_marker {
    EPODE_MARKER_NONE = 0,
    EPODE_MARKER_RECEIVED,
    EPODE_MARKER_DISPLAYED,
    EPODE_MARKER_ACKNOWLEDGED
} epode_marker_t;

/** The element name of a marker ("displayed"); NULL for NONE or out of
 * range. Static storage. */
EPODE_API const char *epode_marker_name(epode_marker_t marker);

/** Adds `<markable/>`: asks the recipient for displayed markers. The
 * message needs an id (epode_messaging_send() gives it one). Errors:
 * EPODE_EINVAL (already markable), EPODE_ENOMEM. */
EPODE_API int epode_message_add_markable(epode_stanza_t *msg);

/** 1 if the message asks for markers, else 0. */
EPODE_API int epode_message_is_markable(const epode_message_t *m);

/**
 * Makes a marker message for the message named `id` (see "which id"),
 * to `to` (in a direct chat the bare JID of its sender will do) with
 * `type` and `thread` (NULL: none). XEP-0333 forbids answering a marker
 * with a marker, marking your own messages, and markers on error
 * messages: that is the caller's to avoid. Caller owns *out. Errors:
 * EPODE_EINVAL, EPODE_EJID (`to` is not a valid JID), EPODE_ENOMEM,
 * EPODE_ERANDOM.
 */
EPODE_API int epode_message_build_marker(const char *type, const char *to, epode_marker_t marker,
                                         const char *id, const char *thread,
                                         epode_stanza_t **out);

/** The marker the message carries, with the id it names in *id (may be
 * NULL; borrowed). EPODE_MARKER_NONE if none, or one without an id. */
EPODE_API epode_marker_t epode_message_marker(const epode_message_t *m, const char **id);

/* ---- processing hints (XEP-0334) ----------------------------------------- */

/** Hints, or-ed together. */
enum {
    EPODE_HINT_NO_PERMANENT_STORE = 1u << 0, /**< `<no-permanent-store/>` */
    EPODE_HINT_NO_STORE = 1u << 1,           /**< `<no-store/>` */
    EPODE_HINT_NO_COPY = 1u << 2,            /**< `<no-copy/>` */
    EPODE_HINT_STORE = 1u << 3               /**< `<store/>` */
};

/** Adds the hints in `hints` the message does not carry yet. Errors:
 * EPODE_EINVAL (unknown bits), EPODE_ENOMEM (then none is added). */
EPODE_API int epode_message_add_hints(epode_stanza_t *msg, unsigned hints);

/** The hints the message carries (0: none). */
EPODE_API unsigned epode_message_hints(const epode_message_t *m);

#ifdef __cplusplus
}
#endif
#endif
