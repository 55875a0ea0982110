/* epode/register.h — XEP-0077 In-Band Registration: create an account
 * before logging in, change its password while logged in, remove it.
 * Built on the public API only.
 *
 * Creating an account, step by step:
 *   1. a connection in registration mode (epode_conn_set_register) with
 *      the JID to register (its domain names the server; the localpart
 *      is the username), connected until EPODE_CONN_READY: the stream
 *      then stops after TLS, before authentication;
 *   2. epode_register_new() on it, then epode_register_account(): it
 *      fetches the server's registration form, fills in the username and
 *      password, asks the application's fill callback for anything else
 *      (an e-mail address, a CAPTCHA — XEP-0158 — or an out-of-band
 *      instruction, XEP-0077 §5), submits, and reports the outcome;
 *   3. close that connection and log in with a normal one.
 * The smaller steps (epode_register_fetch(), epode_register_submit())
 * are there for applications that show the form themselves.
 *
 * Outcomes: `status` 0 and `cond` EPODE_COND_NONE is success; `status` 0
 * and a condition is the server's refusal — conflict (the username is
 * taken), not-acceptable (a required field is missing or refused),
 * not-allowed (registration is closed), bad-request, forbidden,
 * resource-constraint (too many registrations, try later),
 * service-unavailable (no in-band registration here)…, with the
 * server's text when it sent one; a negative `status` says why no
 * answer counts: EPODE_ETIMEDOUT, EPODE_ECANCELED (the connection ended
 * or the helper was freed), EPODE_EPROTOCOL (the server answered with
 * something that is not a registration answer), EPODE_EINVAL (the form
 * could not be filled), EPODE_ENOMEM. */
#ifndef EPODE_REGISTER_H
#define EPODE_REGISTER_H

#include "common.h"
#include "conn.h"
#include "forms.h"
#include "stanza.h"

#ifdef __cplusplus
extern "C" {
#endif

#define EPODE_NS_REGISTER "jabber:iq:register" /**< In-band registration (XEP-0077). */
/** The stream feature announcing in-band registration. */
#define EPODE_NS_REGISTER_FEATURE "http://jabber.org/features/iq-register"
#define EPODE_NS_OOB "jabber:x:oob" /**< Out-of-band data (XEP-0066), for registration elsewhere. */

/** A registration helper bound to one connection (opaque). */
typedef struct epode_register epode_register_t;

/**
 * Makes a registration helper on `conn` (registration mode for creating
 * accounts; a logged-in connection for changing the password or
 * removing the account). Caller owns *out and frees it with
 * epode_register_free(). Freeing the connection first is allowed: the
 * helper becomes inert (a pending request's callback is not called;
 * every call returns EPODE_ESTATE); still free it. Errors: EPODE_EINVAL,
 * EPODE_ENOMEM.
 */
EPODE_API int epode_register_new(epode_conn_t *conn, epode_register_t **out);

/** Forgets a pending request (its callback is not called) and frees the
 * helper. NULL is a no-op. Not from inside its own callbacks. */
EPODE_API void epode_register_free(epode_register_t *reg);

/**
 * The outcome of a request (see the top of this file for `status` and
 * `cond`). `text` is the server's error text or a sentence of epode's
 * (borrowed for the call; NULL if none). The helper may be freed from
 * inside, and a new request started.
 */
typedef void (*epode_register_cb)(epode_register_t *reg, int status, epode_stanza_cond_t cond,
                                  const char *text, void *user);

/**
 * Asks the server for its registration form (an IQ get). On success the
 * form is available through epode_register_form() and the facts around
 * it through the getters below, until the next fetch or the helper is
 * freed. Only one request at a time. `timeout_ms` 0 means 30 s. Before
 * authentication, a server whose stream features do not advertise
 * registration (`<register xmlns='http://jabber.org/features/iq-register'/>`)
 * is not asked — some end the stream for an unexpected IQ — and `cb`
 * gets, from the loop, status 0 and EPODE_COND_SERVICE_UNAVAILABLE.
 * Errors: EPODE_EINVAL, EPODE_ESTATE (not READY, another request
 * pending, or the connection was freed), EPODE_ENOMEM; `cb` is never
 * called then.
 */
EPODE_API int epode_register_fetch(epode_register_t *reg, unsigned timeout_ms,
                                   epode_register_cb cb, void *user);

/**
 * The fetched form (borrowed; the application may fill it in place), or
 * NULL before a successful fetch. A server's XEP-0004 form
 * (`<x xmlns="jabber:x:data"/>` inside the query) is returned as it came;
 * the legacy fields (`<username/>`, `<password/>`, `<email/>`…) are
 * turned into a form of type form whose fields have those names (text-
 * single, text-private for the password), all required, with the values
 * the server put in them. epode_register_submit() sends it back in the
 * shape it came in.
 */
EPODE_API epode_form_t *epode_register_form(const epode_register_t *reg);
/** 1 if the fetched form is the server's data form, 0 if legacy fields. */
EPODE_API int epode_register_is_data_form(const epode_register_t *reg);
/** 1 if the server said the account is already registered
 * (`<registered/>` in the answer to a fetch on a logged-in stream). */
EPODE_API int epode_register_is_registered(const epode_register_t *reg);
/** The server's `<instructions/>` outside any data form (borrowed), or
 * NULL. */
EPODE_API const char *epode_register_instructions(const epode_register_t *reg);
/** The out-of-band URL (XEP-0066 `jabber:x:oob`, XEP-0077 §5): the server
 * wants registration done on a web page (borrowed), or NULL. */
EPODE_API const char *epode_register_oob_url(const epode_register_t *reg);
/**
 * The whole `<iq/>` the server answered the fetch with (borrowed until the
 * next fetch), for what the form refers to: a CAPTCHA's image travels as
 * XEP-0231 `<data xmlns='urn:xmpp:bob'/>` beside the query, named by the
 * `cid:` URI in a field's media (epode_form_field_media()).
 */
EPODE_API const epode_stanza_t *epode_register_answer(const epode_register_t *reg);

/**
 * Sets the username and password in the fetched form: the fields
 * `username` and `password` (also accepted as the data form field names
 * of XEP-0077's FORM_TYPE jabber:iq:register). Errors: EPODE_EINVAL,
 * EPODE_ESTATE (nothing fetched), EPODE_ENOTFOUND (the form has no such
 * field), EPODE_ENOMEM.
 */
EPODE_API int epode_register_set_credentials(epode_register_t *reg, const char *username,
                                             const char *password);

/**
 * Submits the fetched form (with its values as they are now): legacy
 * fields as legacy elements, a data form as its submission
 * (epode_form_submit()). The form is checked first
 * (epode_form_validate()): a required field left empty makes this fail
 * with EPODE_EINVAL and nothing is sent. Errors: EPODE_EINVAL,
 * EPODE_ESTATE (nothing fetched, not READY, a request pending),
 * EPODE_ENOMEM; `cb` is never called then.
 */
EPODE_API int epode_register_submit(epode_register_t *reg, unsigned timeout_ms,
                                    epode_register_cb cb, void *user);

/**
 * Asked by epode_register_account() to complete a form whose required
 * fields are not all filled after the username and password went in (an
 * e-mail, a CAPTCHA), or which carries only an out-of-band URL. Fill
 * `form` in place (epode_form_field_set_value(); the CAPTCHA's media and
 * epode_register_answer() say what to show) and return 0 to submit it,
 * or a negative code to give up: the done callback then gets that code
 * as `status`. Runs inside the loop; the form is borrowed for the call.
 */
typedef int (*epode_register_fill_cb)(epode_register_t *reg, epode_form_t *form, void *user);

/**
 * Registers `username` with `password` on a connection in registration
 * mode: fetch, fill (username and password; then `fill` if anything
 * required is still empty or only an out-of-band URL is offered — with
 * `fill` NULL that is an EPODE_EINVAL outcome saying which field),
 * submit, then `done` once with the outcome (always from the loop,
 * never inside this call). A server without in-band registration gives
 * service-unavailable (see epode_register_fetch()). Timeouts are 30 s
 * per request. Errors: EPODE_EINVAL, EPODE_ESTATE, EPODE_ENOMEM; `done` is never
 * called then. The strings are copied.
 */
EPODE_API int epode_register_account(epode_register_t *reg, const char *username,
                                     const char *password, epode_register_fill_cb fill,
                                     epode_register_cb done, void *user);

/**
 * Changes the logged-in account's password (XEP-0077 §3.3) to
 * `new_password`. If the server answers with a form asking for the old
 * password (FORM_TYPE jabber:iq:register:changepassword), the form is
 * filled with `old_password` (may be NULL: the outcome is then the
 * server's refusal) and sent once more. `cb` gets the outcome; on
 * success the connection stays logged in, and later logins need the new
 * password. Errors: EPODE_EINVAL, EPODE_ESTATE (not READY, not logged
 * in, a request pending), EPODE_ENOMEM; `cb` is never called then.
 */
EPODE_API int epode_register_change_password(epode_register_t *reg, const char *old_password,
                                             const char *new_password, epode_register_cb cb,
                                             void *user);

/**
 * Removes (cancels) the logged-in account (XEP-0077 §3.2). On success the
 * server usually ends the stream right after (a DISCONNECTED, often with
 * a stream error such as not-authorized, follows the callback). Errors
 * as epode_register_change_password().
 */
EPODE_API int epode_register_remove(epode_register_t *reg, epode_register_cb cb, void *user);

/**
 * A short English phrase for a registration error condition as XEP-0077
 * uses it ("already registered" for conflict, "registration not allowed
 * (closed, or a check such as a CAPTCHA failed)" for
 * not-allowed, "required information missing or not acceptable" for
 * not-acceptable…); the RFC 6120 name for the others; NULL for
 * EPODE_COND_NONE. Static storage.
 */
EPODE_API const char *epode_register_cond_text(epode_stanza_cond_t cond);

#ifdef __cplusplus
}
#endif
#endif
