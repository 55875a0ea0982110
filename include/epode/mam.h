/* epode/mam.h — Message Archive Management (XEP-0313, urn:xmpp:mam:2)
 * with Result Set Management (XEP-0059) paging: the server's history of
 * our conversations, or of a room's.
 *
 * A query names an archive (our account's, or a room's bare JID), an
 * optional filter (the peer, a time range; sent as a XEP-0004 form) and
 * a page: its size, and where it starts — after an archive id (paging
 * forwards), before one (backwards), or the last page. The server sends
 * the page's messages one by one, then a result with the ids of the
 * page's first and last message and whether the range is complete. Each
 * message reaches the application as the same view message handlers get
 * (epode/messaging.h, epode/msgext.h): its 'from', body and extensions
 * are the archived message's; epode_message_archive_id() gives its
 * archive id and epode_message_delay() the time the archive stamped on
 * it (never a time the message claims itself).
 *
 * What is trusted: a result is taken only from the archive asked (our
 * bare JID, or no 'from', for our own; the room's bare JID for a room),
 * only for a query still open and only with its queryid, and only while
 * the page has room (the server may send fewer messages than asked, not
 * more). Everything else is ignored and counted (epode_mam_rejected()),
 * as XEP-0313 §8 requires. RSM counts that are not numbers are reported
 * as unknown (-1).
 *
 * Catching up: after a reconnection that could not resume its session
 * (a READY that is not a RESUMED), messages sent meanwhile are in the
 * archive. Store the archive id of the last message you handled
 * (epode_message_archive_id(), or the stanza-id our server stamps on
 * live messages, epode_message_stanza_id()) and call
 * epode_mam_catch_up() with it: it pages forwards until the archive says
 * complete. Or let the helper do it (epode_mam_set_auto_catch_up()): it
 * keeps the last archive id itself and catches up on every fresh session.
 *
 * Built on the public API only; forms through epode/forms.h. Everything
 * belongs to the connection's thread; memory comes from the context's
 * allocator. */
#ifndef EPODE_MAM_H
#define EPODE_MAM_H

#include <stddef.h>

#include "common.h"
#include "conn.h"
#include "messaging.h"
#include "stanza.h"

#ifdef __cplusplus
extern "C" {
#endif

#define EPODE_NS_MAM "urn:xmpp:mam:2" /**< Message archive management (XEP-0313). */
/** Result set management (XEP-0059), MAM's paging. */
#define EPODE_NS_RSM "http://jabber.org/protocol/rsm"

/** "No time" for epode_mam_query_set_start() and _end(). */
#define EPODE_MAM_NO_TIME (-9223372036854775807LL - 1)
/** The page size when none is set. */
#define EPODE_MAM_PAGE_DEFAULT 100
/** The largest page size accepted. */
#define EPODE_MAM_PAGE_MAX 1000

/** The archive id of a message that came from an archive query (its
 * `<result id='…'/>`), NULL for any other message. Borrowed. */
EPODE_API const char *epode_message_archive_id(const epode_message_t *m);

/* ---- queries ------------------------------------------------------------------ */

/** What to ask an archive (opaque; made, filled, passed to
 * epode_mam_fetch(), which copies what it needs, then freed). */
typedef struct epode_mam_query epode_mam_query_t;

/** Makes an empty query: our own archive, everything, the first page of
 * EPODE_MAM_PAGE_DEFAULT messages. Caller owns *out
 * (epode_mam_query_free()). Errors: EPODE_EINVAL, EPODE_ENOMEM. */
EPODE_API int epode_mam_query_new(const epode_mem_t *mem, epode_mam_query_t **out);

/** Frees a query. NULL is fine. */
EPODE_API void epode_mam_query_free(epode_mam_query_t *q);

/** The archive to ask: a room's bare JID for its archive; NULL: our
 * own. Errors: EPODE_EJID (not a bare JID), EPODE_ENOMEM. */
EPODE_API int epode_mam_query_set_archive(epode_mam_query_t *q, const char *jid);

/** Only messages to or from `jid` (a bare JID matches all its
 * resources; in a room archive, the occupant); NULL: everyone. Errors:
 * EPODE_EJID, EPODE_ENOMEM. */
EPODE_API int epode_mam_query_set_with(epode_mam_query_t *q, const char *jid);

/** Only messages archived at or after `ms` (milliseconds since the
 * epoch); EPODE_MAM_NO_TIME: no bound. EPODE_EINVAL out of range. */
EPODE_API int epode_mam_query_set_start(epode_mam_query_t *q, long long ms);

/** Only messages archived at or before `ms`; EPODE_MAM_NO_TIME: no
 * bound. EPODE_EINVAL out of range. */
EPODE_API int epode_mam_query_set_end(epode_mam_query_t *q, long long ms);

/**
 * The page: at most `max` messages (0: EPODE_MAM_PAGE_DEFAULT; more than
 * EPODE_MAM_PAGE_MAX is EPODE_EINVAL). `after` (an archive id): the
 * page that follows that message — paging forwards, from a previous
 * page's last id. `before`: the page that precedes that message — paging
 * backwards, from a previous page's first id; "" asks for the last page
 * (the most recent messages). Both NULL: the first page. Within a page
 * messages always come oldest first. Errors: EPODE_EINVAL (both set, or
 * an empty `after`), EPODE_ENOMEM.
 */
EPODE_API int epode_mam_query_set_page(epode_mam_query_t *q, unsigned max, const char *after,
                                       const char *before);

/* ---- the helper ---------------------------------------------------------------- */

/** An archive helper on one connection (opaque). */
typedef struct epode_mam epode_mam_t;

/**
 * One archived message of a page: `msg` is borrowed for the call (its
 * stanza can be kept with epode_stanza_ref()). Return value ignored.
 */
typedef void (*epode_mam_result_cb)(epode_mam_t *mam, const epode_message_t *msg, void *user);

/**
 * The end of a page: `status` 0 and `cond` EPODE_COND_NONE when the
 * server completed it (an error condition when it refused — item-not-
 * found for an unknown id); EPODE_ETIMEDOUT / EPODE_ECANCELED without
 * an answer. `first`/`last` are the page's first and last archive ids
 * (borrowed; NULL for an empty page), `complete` 1 when the server says
 * no more pages follow in that direction, `count` the server's total for
 * the query (-1 if unknown or unusable), `results` how many messages were
 * delivered (for a catch-up: over all its pages).
 */
typedef void (*epode_mam_done_cb)(epode_mam_t *mam, int status, epode_stanza_cond_t cond,
                                  const char *first, const char *last, int complete, long count,
                                  size_t results, void *user);

/** Makes an archive helper on `conn` (its result handler). Caller owns
 * *out and frees it with epode_mam_free(). Freeing the connection first
 * is allowed: the helper becomes inert; still free it. Errors:
 * EPODE_EINVAL, EPODE_ENOMEM. */
EPODE_API int epode_mam_new(epode_conn_t *conn, epode_mam_t **out);

/** Frees the helper; open queries end with EPODE_ECANCELED (their done
 * callback runs first). NULL is fine. Not from inside its callbacks. */
EPODE_API void epode_mam_free(epode_mam_t *mam);

/**
 * Asks for one page as `q` says. `on_result` (may be NULL) hears each
 * message, `on_done` (may be NULL) the end; `user` goes to both. *id
 * (may be NULL) identifies the query for epode_mam_cancel(). Errors:
 * EPODE_EINVAL, EPODE_ESTATE (not READY, or the connection was freed),
 * EPODE_ENOMEM; then no callback runs.
 */
EPODE_API int epode_mam_fetch(epode_mam_t *mam, const epode_mam_query_t *q,
                              epode_mam_result_cb on_result, epode_mam_done_cb on_done,
                              void *user, unsigned *id);

/**
 * Catches up on our own archive from `last_id` (the archive id of the
 * last message the application handled): pages of `max` (0: default)
 * forwards, every message to `on_result`, until the archive says
 * complete; `on_done` runs once, at the end (for the last page, or the
 * first error). `last_id` NULL starts from the beginning of the archive
 * — think twice. An id the archive no longer has ends with
 * item-not-found: fall back to a time range then. A page that is not
 * complete yet ends where it began (its `<last/>` is the `<after/>` it
 * was asked with) ends the catch-up with status EPODE_EPROTOCOL instead
 * of asking the same page forever; so does, for the automatic catch-up,
 * a page holding only messages it delivered already (pages going round
 * in a circle). Errors as epode_mam_fetch().
 */
EPODE_API int epode_mam_catch_up(epode_mam_t *mam, const char *last_id, unsigned max,
                                 epode_mam_result_cb on_result, epode_mam_done_cb on_done,
                                 void *user, unsigned *id);

/* ---- automatic catch-up ---------------------------------------------------------- */

/**
 * Catches up automatically: on every READY (a fresh session: the first
 * login, or a reconnection that could not resume; never after RESUMED)
 * the helper runs epode_mam_catch_up() from the last archive id it knows
 * (epode_mam_last_id()) with pages of `max` (0: default), and hands each
 * archived message to `on_result` (its view has epode_message_archive_id()
 * and the archive's epode_message_delay()); `on_done` (may be NULL) hears
 * the end of each catch-up. Without a last id (nothing seen yet, none
 * set) there is nothing to catch up from and nothing is asked.
 *
 * The last id: the stanza-id our server stamped on each live message
 * (`<stanza-id by='our bare JID'/>`, chat and normal messages, not
 * errors), and the archive id of each message a catch-up delivered. It
 * only moves forwards: while a catch-up runs, live ids are kept aside and
 * become the last id when it ends complete (status 0, no condition,
 * `complete` set). A catch-up that fails, is cut by a reconnection or
 * ends incomplete leaves the last id at the last archive message it
 * delivered: the next one (on the next READY) goes on from there, and
 * live ids stay aside (and remembered against duplicates) until one
 * completes. epode_mam_set_last_id() outside a catch-up drops what was
 * kept aside. Trusting a live stanza-id by our bare
 * JID needs a server that strips such ids arriving from outside; every
 * server with XEP-0313 does (it must implement XEP-0359), and on one
 * without it there is no archive to catch up from.
 *
 * No duplicates: a result whose id was seen on a live message since the
 * last complete catch-up, or that a catch-up delivered already, is not
 * delivered; a live message whose stanza-id a
 * catch-up already delivered is flagged by epode_mam_is_duplicate() (call
 * it in your message handler with the message's stanza and drop what it
 * flags: handlers see every live message, added before or after this
 * helper). The ids
 * remembered for this are bounded (the last EPODE_MAM_SEEN_IDS of each
 * kind).
 *
 * `enable` 0 turns it off (a running catch-up goes on). Errors:
 * EPODE_EINVAL (max too large, on_result NULL while enabling).
 */
EPODE_API int epode_mam_set_auto_catch_up(epode_mam_t *mam, int enable, unsigned max,
                                          epode_mam_result_cb on_result,
                                          epode_mam_done_cb on_done, void *user);

/** How many ids epode_mam_is_duplicate() and the live-id check remember. */
#define EPODE_MAM_SEEN_IDS 256

/** The last archive id known (borrowed, until the next message or
 * epode_mam_set_last_id()); NULL if none. Store it across restarts. */
EPODE_API const char *epode_mam_last_id(const epode_mam_t *mam);

/** Sets the last archive id (a stored one, at start-up); NULL forgets it.
 * Errors: EPODE_EINVAL (an empty id), EPODE_ENOMEM. */
EPODE_API int epode_mam_set_last_id(epode_mam_t *mam, const char *id);

/** 1 if `message`, a live `<message/>` stanza (epode_message_stanza() of
 * a view), was already delivered by an automatic catch-up (its stanza-id
 * by our bare JID is one a catch-up handed over), else 0 (also for an
 * archive result itself). */
EPODE_API int epode_mam_is_duplicate(const epode_mam_t *mam, const epode_stanza_t *message);

/** Ends an open query or catch-up: its done callback runs with
 * EPODE_ECANCELED; later results are ignored. EPODE_ENOTFOUND if no such
 * query is open. */
EPODE_API int epode_mam_cancel(epode_mam_t *mam, unsigned id);

/** How many archive results were ignored: from another JID than the
 * archive asked, for no open query, past the page size, or malformed. */
EPODE_API unsigned epode_mam_rejected(const epode_mam_t *mam);

#ifdef __cplusplus
}
#endif
#endif
