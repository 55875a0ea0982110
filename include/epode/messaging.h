/* epode/messaging.h — messages (RFC 6121 §5): building chat, normal,
 * headline and groupchat messages with bodies and subjects in several
 * languages and a thread; message handlers by type that get a parsed view
 * (bodies by language, subject, thread, ids, error condition); and three
 * opt-in extensions: delivery receipts (XEP-0184), chat states (XEP-0085)
 * and stable stanza ids (XEP-0359).
 *
 * The building functions work on any stanza and need no helper object.
 * Handlers and the extensions live in a messaging helper made on a
 * connection (epode_messaging_new) and freed by the application; it
 * survives reconnects. Built on the public API only (handlers, outgoing
 * filters, IQs). Everything belongs to the connection's thread. Memory
 * comes from the context's allocator.
 *
 * Stable stanza ids, and why only some are trusted: a <stanza-id/>
 * (XEP-0359) names the entity that assigned it in 'by'. Anyone can put
 * one into a message they send us, so an id claimed by someone we do not
 * trust would let a stranger make a message collide with (and, in an
 * archive, replace or hide) a real one. A server that stamps the messages
 * it archives for us (by = our bare JID) also strips any stanza-id with
 * that 'by' arriving from outside, and says so by announcing
 * urn:xmpp:sid:0 in our account's disco#info (XEP-0359 §5, §7); a server
 * that does not announce it strips nothing. So the helper asks our bare
 * JID for its disco#info on every READY (and when it is made on a ready
 * connection), and reports a stanza-id by = our bare JID only once that
 * answer lists urn:xmpp:sid:0, for the rest of that session (stanza-ids
 * that arrive before the answer are ignored). The only other ids
 * reported are those by an entity the application names with
 * epode_messaging_trust_stanza_id() after checking that it announces the
 * feature (a MUC room, with epode_disco_get_info(), for instance). What
 * one entity announces never makes another's ids trusted. Every other
 * stanza-id is ignored. <origin-id/> is the sender's own id and is
 * reported as such, never as a stable id.
 */
#ifndef EPODE_MESSAGING_H
#define EPODE_MESSAGING_H

#include <stddef.h>

#include "common.h"
#include "conn.h"
#include "stanza.h"

#ifdef __cplusplus
extern "C" {
#endif

#define EPODE_NS_RECEIPTS "urn:xmpp:receipts" /**< Delivery receipts (XEP-0184). */
/** Chat state notifications (XEP-0085). */
#define EPODE_NS_CHATSTATES "http://jabber.org/protocol/chatstates"
#define EPODE_NS_SID "urn:xmpp:sid:0" /**< Unique and stable stanza ids (XEP-0359). */
#define EPODE_NS_HINTS "urn:xmpp:hints" /**< Message processing hints (XEP-0334). */

/* ---- building messages (no helper needed) ---------------------------- */

/**
 * Adds a `<body/>` to a message. `lang` (NULL: none, the stanza's own
 * language applies) is set as xml:lang. RFC 6121 §5.2.3 allows one body
 * per language: EPODE_EINVAL if the message already has a body in that
 * language (or without one, for NULL), or if `text` is NULL or not valid
 * XML text. Errors: EPODE_EINVAL, EPODE_ENOMEM.
 */
EPODE_API int epode_message_add_body(epode_stanza_t *msg, const char *lang, const char *text);

/** Adds a `<subject/>`, with the same rules as epode_message_add_body(). */
EPODE_API int epode_message_add_subject(epode_stanza_t *msg, const char *lang, const char *text);

/**
 * Sets the `<thread/>` (replacing any), with an optional `parent` thread
 * (NULL: none). `thread` NULL removes it. Errors: EPODE_EINVAL,
 * EPODE_ENOMEM.
 */
EPODE_API int epode_message_set_thread(epode_stanza_t *msg, const char *thread,
                                       const char *parent);

/**
 * Makes a complete message: `type` ("chat", "normal", "headline",
 * "groupchat"; NULL: normal, written without a type), `to` (required, a
 * valid JID), `body` and `subject` (NULL: none), `thread` (NULL: none),
 * and a fresh random id. Caller owns *out (epode_stanza_unref()).
 * Errors: EPODE_EINVAL (unknown type, missing `to`), EPODE_EJID (`to` is
 * not a valid JID, as epode_conn_send() would say),
 * EPODE_ENOMEM, EPODE_ERANDOM.
 */
EPODE_API int epode_message_build(const char *type, const char *to, const char *body,
                                  const char *subject, const char *thread,
                                  epode_stanza_t **out);

/* ---- chat states (XEP-0085) -------------------------------------------- */

/** A chat state. NONE: the message carries none. */
typedef enum epode_chatstate {
    EPODE_CHATSTATE_NONE = 0,
    EPODE_CHATSTATE_ACTIVE,
    EPODE_CHATSTATE_COMPOSING,
    EPODE_CHATSTATE_PAUSED,
    EPODE_CHATSTATE_INACTIVE,
    EPODE_CHATSTATE_GONE
} epode_chatstate_t;

/** The element name of a state ("composing"); NULL for NONE or out of
 * range. Static storage. */
EPODE_API const char *epode_chatstate_name(epode_chatstate_t state);

/** Adds a chat state element to a message (typically `active` to a
 * message with a body). Errors: EPODE_EINVAL (NONE, out of range, or the
 * message has one already), EPODE_ENOMEM. */
EPODE_API int epode_message_add_chatstate(epode_stanza_t *msg, epode_chatstate_t state);

/* ---- the parsed view handlers get --------------------------------------- */

/** A received message as its handler sees it (opaque). Valid only during
 * the callback; every string it returns is borrowed from the stanza. */
typedef struct epode_message epode_message_t;

/** The message stanza itself (borrowed; epode_stanza_ref() to keep it). */
EPODE_API epode_stanza_t *epode_message_stanza(const epode_message_t *m);
/** Its 'from' (NULL if absent, which means our own account). */
EPODE_API const char *epode_message_from(const epode_message_t *m);
/** Its 'to' (NULL if absent). */
EPODE_API const char *epode_message_to(const epode_message_t *m);
/** Its type: "chat", "normal" (also when absent or unknown, RFC 6121
 * §5.2.2), "headline", "groupchat" or "error". Never NULL. */
EPODE_API const char *epode_message_type(const epode_message_t *m);
/** Its 'id' attribute (NULL if absent). */
EPODE_API const char *epode_message_id(const epode_message_t *m);

/**
 * The body in language `lang`. `lang` NULL gives the default body: the
 * one without xml:lang (it has the stanza's language), else the one in
 * the stanza's xml:lang, else the first. A body in an unknown language
 * is never returned for another one. NULL if there is none.
 */
EPODE_API const char *epode_message_body(const epode_message_t *m, const char *lang);
/** How many `<body/>` elements the message has. */
EPODE_API size_t epode_message_body_count(const epode_message_t *m);
/** The i-th body: its language (the stanza's xml:lang if it has none of
 * its own; NULL if neither) and text. Outputs may be NULL. EPODE_ERANGE
 * past the end. */
EPODE_API int epode_message_body_at(const epode_message_t *m, size_t i, const char **lang,
                                    const char **text);
/** The subject, chosen as epode_message_body() chooses (NULL: none). */
EPODE_API const char *epode_message_subject(const epode_message_t *m, const char *lang);
/** The thread id (borrowed; NULL if none). */
EPODE_API const char *epode_message_thread(const epode_message_t *m);
/** The thread's parent id (borrowed; NULL if none). */
EPODE_API const char *epode_message_thread_parent(const epode_message_t *m);
/** The chat state the message carries (EPODE_CHATSTATE_NONE if none). */
EPODE_API epode_chatstate_t epode_message_chatstate(const epode_message_t *m);
/** The sender's XEP-0359 origin-id (NULL: none). Chosen by the sender:
 * good for spotting duplicates from one sender, never for trust. */
EPODE_API const char *epode_message_origin_id(const epode_message_t *m);
/** The XEP-0359 stanza-id assigned by a trusted entity (see the top of
 * this header: our account once it announced urn:xmpp:sid:0, or an
 * entity the application named), NULL if there is none we trust. */
EPODE_API const char *epode_message_stanza_id(const epode_message_t *m);
/** For a message of type error: its condition (EPODE_COND_NONE for any
 * other message; EPODE_COND_UNDEFINED_CONDITION if an error names none
 * epode knows or has no `<error/>`), and through `type`/`text` (may be
 * NULL) the error type and text (borrowed, NULL if none). */
EPODE_API epode_stanza_cond_t epode_message_error(const epode_message_t *m,
                                                  epode_error_type_t *type, const char **text);
/** 1 if the message asks for a delivery receipt (XEP-0184), else 0. */
EPODE_API int epode_message_wants_receipt(const epode_message_t *m);

/* ---- the messaging helper ------------------------------------------------- */

/** A messaging helper on one connection (opaque). */
typedef struct epode_messaging epode_messaging_t;

/**
 * Makes a messaging helper on `conn` and registers its handlers. It lives
 * until epode_messaging_free(), across reconnects. Freeing the connection
 * first is allowed: the helper becomes inert (sending returns
 * EPODE_ESTATE); still free it. Nothing is opt-in yet: no receipts, no
 * origin-ids. If `conn` is ready it sends the disco#info query about our
 * account at once (see stable stanza ids above), otherwise on READY.
 * Caller owns *out. Errors: EPODE_EINVAL, EPODE_ENOMEM, and as
 * epode_conn_send() for that query.
 */
EPODE_API int epode_messaging_new(epode_conn_t *conn, epode_messaging_t **out);

/** Removes the helper's handlers and frees it. NULL is fine. Not from
 * inside one of its own callbacks. */
EPODE_API void epode_messaging_free(epode_messaging_t *m);

/**
 * A message handler: `msg` is borrowed for the call. Return EPODE_HANDLED
 * to stop later message handlers of this helper (other epode handlers on
 * the connection still run), EPODE_PASS to let them see it. Any other
 * value (0 included) counts as EPODE_HANDLED (see epode_handler_result_t).
 */
typedef int (*epode_message_cb)(epode_conn_t *conn, const epode_message_t *msg, void *user);

/**
 * Calls `cb` for every incoming message of type `type` ("chat", "normal"
 * — which includes messages without a type —, "headline", "groupchat",
 * "error"; NULL: all). Receipt-only messages (a `<received/>` and no
 * body) are reported through the receipt callback instead; archive
 * results (XEP-0313 `<result/>` wrappers) are not reported at all: they
 * are epode/mam.h's to unwrap and check. Handlers run
 * in the order they were added. *id (may be NULL) is for
 * epode_messaging_handler_remove() (it is never an id of the connection's:
 * epode_conn_remove() answers EPODE_ENOTFOUND for it). Errors: EPODE_EINVAL (unknown type),
 * EPODE_ENOMEM.
 */
EPODE_API int epode_messaging_handler_add(epode_messaging_t *m, const char *type,
                                          epode_message_cb cb, void *user, unsigned *id);
/** Removes a message handler (also from inside a callback).
 * EPODE_ENOTFOUND if no such id. */
EPODE_API int epode_messaging_handler_remove(epode_messaging_t *m, unsigned id);

/**
 * Sends a message built by the application, giving it a fresh id first if
 * it has none (so the id the caller reads afterwards with
 * epode_stanza_get_id() is the one receipts will name). The caller keeps
 * its reference. Errors as epode_conn_send(), EPODE_ERANDOM, and
 * EPODE_ESTATE once the connection was freed (`msg` untouched then).
 */
EPODE_API int epode_messaging_send(epode_messaging_t *m, epode_stanza_t *msg);

/* ---- delivery receipts (XEP-0184) --------------------------------------- */

/** Receipt options, or-ed together for epode_messaging_set_receipts(). */
enum {
    /** Add `<request/>` to every outgoing chat, normal or headline message
     * with a body (never to groupchat or error messages, nor to a
     * message that carries a receipt itself). A message without an id
     * gets one on the wire; use epode_messaging_send() to know it. */
    EPODE_RECEIPTS_REQUEST = 1u << 0,
    /** Answer receipt requests: a `<received id='…'/>` to the sender's
     * full JID, for a request carried by a message with an id that is
     * not of type error or groupchat (XEP-0184 §5) and is not itself a
     * receipt. */
    EPODE_RECEIPTS_ANSWER = 1u << 1
};

/** Turns receipt behaviour on or off (`flags` 0: both off, the default). */
EPODE_API int epode_messaging_set_receipts(epode_messaging_t *m, unsigned flags);

/**
 * A receipt arrived: `from` (borrowed) confirms it received our message
 * with id `acked_id` (borrowed; the `<received/>`'s id, or the receipt
 * message's own id for old clients that leave it out).
 */
typedef void (*epode_receipt_cb)(epode_conn_t *conn, const char *from, const char *acked_id,
                                 void *user);
/** Sets the receipt callback (NULL: none). Works whether or not requests
 * are added automatically. */
EPODE_API int epode_messaging_set_receipt_cb(epode_messaging_t *m, epode_receipt_cb cb,
                                             void *user);

/* ---- chat states (XEP-0085) and stable ids (XEP-0359) ------------------- */

/**
 * Sends a standalone chat state notification (a chat message without a
 * body, with a `<no-store/>` hint, XEP-0334) to `to`. Errors: EPODE_EINVAL
 * (NULL or bad state), EPODE_EJID (`to` is not a valid JID), EPODE_ESTATE
 * (the connection was freed), and as epode_conn_send().
 */
EPODE_API int epode_messaging_send_chatstate(epode_messaging_t *m, const char *to,
                                             epode_chatstate_t state);

/** Adds an `<origin-id/>` (XEP-0359) to every outgoing message that has
 * none, with the message's own id (`on` non-zero; off by default). */
EPODE_API int epode_messaging_set_origin_id(epode_messaging_t *m, int on);

/**
 * Trusts stanza-ids whose 'by' is `jid` (a bare JID, e.g. a MUC room),
 * besides our own bare JID once our account announces urn:xmpp:sid:0.
 * Name only an entity whose disco#info lists urn:xmpp:sid:0: one that
 * does not may pass on ids forged by anyone. Errors: EPODE_EJID,
 * EPODE_ENOMEM, EPODE_ELIMIT (more than 64 entries).
 */
EPODE_API int epode_messaging_trust_stanza_id(epode_messaging_t *m, const char *jid);

#ifdef __cplusplus
}
#endif
#endif
