/* epode/commands.h — Ad-Hoc Commands (XEP-0050, http://jabber.org/protocol/commands)
 * with data forms (XEP-0004, epode/forms.h): offering commands (a bot)
 * and running another entity's commands (a client).
 *
 * Offering. epode_commands_add() registers a command: its node, a
 * human-readable name and a callback. The commands are listed through
 * the disco helper given to epode_commands_new(): the feature
 * http://jabber.org/protocol/commands in our disco#info, each command an
 * item of disco#items on the node http://jabber.org/protocol/commands
 * (and the command's own node answers disco#info with the identity
 * automation/command-node). A requester runs a command in a session:
 * `execute` opens it and calls the callback, which answers through the
 * session object (a form to fill, a result form, notes, the actions
 * allowed next) and returns the status: EPODE_COMMAND_EXECUTING keeps the
 * session open for the requester's next request (next, prev, complete,
 * execute, cancel, each calling the callback again with the form the
 * requester submitted), EPODE_COMMAND_COMPLETED or _CANCELED ends it.
 *
 * Who may list and run commands: the access callback
 * (epode_commands_set_access_cb()) decides per requester and node. The
 * DEFAULT IS OUR OWN ACCOUNT ONLY: a requester whose bare JID is the
 * bare JID we are bound to. To anyone not allowed a command does not
 * exist: executing it gets `item-not-found` (as an unknown node does),
 * it is not in the disco#items list, and disco#info on its node gets
 * `item-not-found` too.
 *
 * Sessions are bounded: at most EPODE_COMMANDS_SESSIONS_PER_REQUESTER
 * open sessions per requesting full JID (then `resource-constraint`).
 * Requesters other than our own account (our bare JID, or no 'from')
 * share besides at most EPODE_COMMANDS_SESSIONS_MAX sessions in all,
 * at most EPODE_COMMANDS_SESSIONS_PER_ACCOUNT per bare JID and
 * EPODE_COMMANDS_SESSIONS_PER_DOMAIN per domain (each at least the
 * per-requester bound); our own account is bounded per full JID only,
 * so that strangers holding every session cannot lock it out. A session
 * with no request for EPODE_COMMANDS_SESSION_TIMEOUT_MS ends (the
 * callback hears a `cancel` then; a request for it later gets
 * `not-allowed` + `session-expired` while the id is remembered,
 * `bad-request` + `bad-sessionid` after). The same timeout runs while a
 * request is left pending (EPODE_COMMAND_PENDING): a command that does
 * not answer in time has the requester answered `not-allowed` +
 * `session-expired`, and hears `cancel`.
 * A session id belongs to the full JID and node that opened it: anyone
 * else naming it gets `bad-request` + `bad-sessionid`, as XEP-0050 §4.4
 * says for an unknown id. Requests that cannot be read are answered
 * with XEP-0050's conditions: an unknown action `bad-request` +
 * `malformed-action`, an action the session does not allow
 * `bad-request` + `bad-action`, a form that is not a submission or
 * cannot be parsed `bad-request` + `bad-payload`, an unknown node
 * `item-not-found`.
 *
 * Running. epode_commands_list() asks an entity for its commands,
 * epode_commands_execute() starts one, epode_commands_continue() sends
 * the next step of a session (a filled form with next/complete/prev, or
 * cancel). Each answer comes as an epode_command_result_t: status,
 * session id, notes, form, the actions allowed next.
 *
 * A helper belongs to one connection and its thread; memory comes from
 * the context's allocator. Freeing the connection first is allowed: the
 * helper becomes inert (sessions end, their callbacks hear `cancel`);
 * still free it. Free it before the disco helper it was given. */
#ifndef EPODE_COMMANDS_H
#define EPODE_COMMANDS_H

#include <stddef.h>

#include "common.h"
#include "conn.h"
#include "disco.h"
#include "forms.h"
#include "stanza.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Ad-hoc commands (XEP-0050): the namespace, the disco feature and the
 * node that lists the commands. */
#define EPODE_NS_COMMANDS "http://jabber.org/protocol/commands"

/** Open sessions one requesting full JID may have at a time (default). */
#define EPODE_COMMANDS_SESSIONS_PER_REQUESTER 5
/** Open sessions in all of requesters other than our own account
 * (default). */
#define EPODE_COMMANDS_SESSIONS_MAX 1000
/** Open sessions one bare JID other than our own account may have
 * (raised to the per-requester bound if that is higher). */
#define EPODE_COMMANDS_SESSIONS_PER_ACCOUNT 10
/** Open sessions the requesters of one domain other than our own
 * account may have together (raised to the per-account bound if that is
 * higher). */
#define EPODE_COMMANDS_SESSIONS_PER_DOMAIN 50
/** A session with no request for this long ends, and a request left
 * pending this long is answered with an error (default, 10 minutes). */
#define EPODE_COMMANDS_SESSION_TIMEOUT_MS 600000u

/** What a request asks (XEP-0050 §3.4's action attribute). */
typedef enum epode_command_action {
    EPODE_COMMAND_EXECUTE = 1, /**< start; within a session: the default action */
    EPODE_COMMAND_NEXT,        /**< go on to the next stage */
    EPODE_COMMAND_PREV,        /**< go back to the previous stage */
    EPODE_COMMAND_COMPLETE,    /**< finish with what was given */
    EPODE_COMMAND_CANCEL       /**< abandon the session */
} epode_command_action_t;
/** The XEP-0050 name of an action ("execute", "next", "prev",
 * "complete", "cancel"): static, NULL outside the enum. */
EPODE_API const char *epode_command_action_name(epode_command_action_t action);

/** Bits for the actions allowed in the next request (a session's
 * `<actions/>`): 1 << EPODE_COMMAND_NEXT and so on. */
#define EPODE_COMMAND_ALLOW(action) (1u << (unsigned)(action))

/** Where a session stands (the status attribute). */
typedef enum epode_command_status {
    EPODE_COMMAND_EXECUTING = 1, /**< open: more requests expected */
    EPODE_COMMAND_COMPLETED,     /**< finished */
    EPODE_COMMAND_CANCELED,      /**< abandoned */
    /** (only as an epode_command_cb return) the answer comes later,
     * from epode_command_session_reply() */
    EPODE_COMMAND_PENDING
} epode_command_status_t;
/** The name of a status ("executing", "completed", "canceled",
 * "pending"): static, NULL outside the enum. */
EPODE_API const char *epode_command_status_name(epode_command_status_t status);

/** The type of a note. */
typedef enum epode_command_note_type {
    EPODE_COMMAND_NOTE_INFO = 1, /**< "info" (the default) */
    EPODE_COMMAND_NOTE_WARN,     /**< "warn" */
    EPODE_COMMAND_NOTE_ERROR     /**< "error" */
} epode_command_note_type_t;
/** The name of a note type ("info", "warn", "error"): static, NULL
 * outside the enum. */
EPODE_API const char *epode_command_note_type_name(epode_command_note_type_t type);

/** The commands-specific error conditions (XEP-0050 §4.6), carried
 * beside a stanza error condition. */
typedef enum epode_command_error {
    EPODE_COMMAND_ERROR_NONE = 0,      /**< none */
    EPODE_COMMAND_ERROR_MALFORMED_ACTION, /**< "malformed-action" */
    EPODE_COMMAND_ERROR_BAD_ACTION,    /**< "bad-action" */
    EPODE_COMMAND_ERROR_BAD_LOCALE,    /**< "bad-locale" */
    EPODE_COMMAND_ERROR_BAD_PAYLOAD,   /**< "bad-payload" */
    EPODE_COMMAND_ERROR_BAD_SESSIONID, /**< "bad-sessionid" */
    EPODE_COMMAND_ERROR_SESSION_EXPIRED /**< "session-expired" */
} epode_command_error_t;
/** The XEP-0050 element name of a specific condition ("bad-sessionid");
 * NULL for EPODE_COMMAND_ERROR_NONE or a value outside the enum. */
EPODE_API const char *epode_command_error_name(epode_command_error_t err);

/** A commands helper on one connection (opaque). */
typedef struct epode_commands epode_commands_t;

/**
 * Makes a commands helper on `conn`. `disco` (may be NULL: then our
 * commands can be run but are not listed) gets the commands feature and
 * node; it must outlive this helper. Caller owns *out
 * (epode_commands_free()). Errors: EPODE_EINVAL, EPODE_ENOMEM.
 */
EPODE_API int epode_commands_new(epode_conn_t *conn, epode_disco_t *disco,
                                 epode_commands_t **out);

/** Ends open sessions (each command callback hears `cancel`), forgets
 * pending requests (their callbacks run with EPODE_ECANCELED), removes
 * what it added to the disco helper and frees the helper. NULL is fine.
 * Not from inside its own callbacks. */
EPODE_API void epode_commands_free(epode_commands_t *cmds);

/* ---- offering commands ------------------------------------------------------ */

/** One execution of one of our commands, as the callback sees it
 * (opaque; owned by the helper). */
typedef struct epode_command_session epode_command_session_t;

/**
 * A command's callback, run for every request in a session. `action` is
 * what the requester asked (EPODE_COMMAND_EXECUTE for the first request;
 * a later `execute` is passed as the session's default action), `form` the
 * data form it submitted (borrowed for the call; NULL if none). Answer
 * through the session (set_form, add_note, set_actions) and return
 * EPODE_COMMAND_EXECUTING (the session stays open), _COMPLETED or
 * _CANCELED (it ends), or EPODE_COMMAND_PENDING to answer later with
 * epode_command_session_reply() (the session pointer stays valid until
 * then, or until the callback hears `cancel`: when no answer came within
 * the session timeout, the requester is answered `not-allowed` +
 * `session-expired` and the session ends). Any other value, or a stanza error set with
 * epode_command_session_set_error(), answers with an error and ends the
 * session.
 *
 * For EPODE_COMMAND_CANCEL (asked by the requester, or the session timed
 * out, or the helper or connection is going away) the return value is
 * ignored: the session ends after the call.
 */
typedef int (*epode_command_cb)(epode_commands_t *cmds, epode_command_session_t *session,
                                epode_command_action_t action, const epode_form_t *form,
                                void *user);

/**
 * Offers a command: `node` (its identifier, unique per helper), `name`
 * (shown to users), `cb` and `user`. Strings are copied. Errors:
 * EPODE_EINVAL (NULL or empty node or name, cb NULL), EPODE_ESTATE (the
 * node is taken), EPODE_ENOMEM.
 */
EPODE_API int epode_commands_add(epode_commands_t *cmds, const char *node, const char *name,
                                 epode_command_cb cb, void *user);

/** Withdraws a command; its open sessions end (the callback hears
 * `cancel`). EPODE_ENOTFOUND if there is no such node, EPODE_ESTATE from
 * inside one of this helper's callbacks. */
EPODE_API int epode_commands_remove(epode_commands_t *cmds, const char *node);

/**
 * Decides whether `requester` (a full JID, borrowed) may see and run the
 * command `node`: return 1 to allow, 0 to refuse. It is asked for every
 * listing (per command) and every request of a session.
 */
typedef int (*epode_commands_access_cb)(epode_commands_t *cmds, const char *requester,
                                        const char *node, void *user);

/** Sets the access callback; NULL restores the default (our own bare JID
 * only). Errors: EPODE_EINVAL. */
EPODE_API int epode_commands_set_access_cb(epode_commands_t *cmds, epode_commands_access_cb cb,
                                           void *user);

/**
 * Changes the session bounds: at most `per_requester` open sessions per
 * requesting full JID, `max_sessions` in all for requesters other than
 * our own account (0: the defaults above) and `timeout_ms` without a
 * request, or without an answer to a pending one, before a session ends
 * (0: the default). Affects sessions opened afterwards. Errors:
 * EPODE_EINVAL.
 */
EPODE_API int epode_commands_set_limits(epode_commands_t *cmds, unsigned per_requester,
                                        unsigned max_sessions, unsigned timeout_ms);

/** Open sessions right now. */
EPODE_API size_t epode_commands_session_count(const epode_commands_t *cmds);

/** The session's id (borrowed, valid with the session). */
EPODE_API const char *epode_command_session_id(const epode_command_session_t *s);
/** The command's node (borrowed). */
EPODE_API const char *epode_command_session_node(const epode_command_session_t *s);
/** The requester's full JID (borrowed). */
EPODE_API const char *epode_command_session_requester(const epode_command_session_t *s);
/** How many requests the session has had before this one (0 at the
 * first execute). */
EPODE_API unsigned epode_command_session_stage(const epode_command_session_t *s);
/** The application's pointer for this session (NULL at first). */
EPODE_API void *epode_command_session_get_user(const epode_command_session_t *s);
/** Sets the application's pointer for this session; freeing what it
 * points to is the application's business (do it on `cancel` or when
 * returning a final status). */
EPODE_API void epode_command_session_set_user(epode_command_session_t *s, void *user);

/**
 * The form of this answer: a form to fill (type form) or a result
 * (type result); copied. NULL removes one set before. Errors:
 * EPODE_EINVAL, EPODE_ENOMEM.
 */
EPODE_API int epode_command_session_set_form(epode_command_session_t *s,
                                             const epode_form_t *form);
/** Adds a note to this answer (text copied). Errors: EPODE_EINVAL
 * (type outside the enum, text NULL), EPODE_ELIMIT (more than 16
 * notes), EPODE_ENOMEM. */
EPODE_API int epode_command_session_add_note(epode_command_session_t *s,
                                             epode_command_note_type_t type, const char *text);
/**
 * The actions the requester may take next when the answer's status is
 * executing: `allowed` a mask of EPODE_COMMAND_ALLOW() bits of NEXT,
 * PREV and COMPLETE, `default_action` one of them (0: the first of
 * complete, next in `allowed`). Cancel is always allowed. Without this
 * call an executing answer allows `complete` only. Errors: EPODE_EINVAL
 * (no bit among the three, or a default outside `allowed`).
 */
EPODE_API int epode_command_session_set_actions(epode_command_session_t *s, unsigned allowed,
                                                epode_command_action_t default_action);
/**
 * Makes this answer an error instead: `cond` (not EPODE_COND_NONE),
 * `specific` a commands-specific condition (may be NONE), `text` (may be
 * NULL, copied). The session ends with it. Errors: EPODE_EINVAL,
 * EPODE_ENOMEM.
 */
EPODE_API int epode_command_session_set_error(epode_command_session_t *s,
                                              epode_stanza_cond_t cond,
                                              epode_command_error_t specific, const char *text);
/**
 * Answers a request left pending (the callback returned
 * EPODE_COMMAND_PENDING) with `status` and what was set on the session
 * since. A final status (or an error set) frees the session: do not
 * touch it afterwards. Called from inside the session's own callback,
 * the answer goes out when the callback returns, whatever it returns.
 * Errors: EPODE_EINVAL (status not executing, completed or canceled),
 * EPODE_ESTATE (nothing pending).
 */
EPODE_API int epode_command_session_reply(epode_command_session_t *s,
                                          epode_command_status_t status);

/* ---- running others' commands ------------------------------------------------ */

/** A note of an answer. */
typedef struct epode_command_note {
    epode_command_note_type_t type; /**< info, warn or error */
    const char *text;               /**< its text (never NULL) */
} epode_command_note_t;

/** An answer to a request. Every pointer is borrowed for the callback. */
typedef struct epode_command_result {
    const char *jid;               /**< who answered */
    const char *node;              /**< the command's node */
    const char *session_id;        /**< the session's id; NULL if none was given */
    epode_command_status_t status; /**< executing, completed or canceled */
    const epode_command_note_t *notes; /**< the notes, in order */
    size_t nnotes;                     /**< how many notes */
    const epode_form_t *form; /**< the form of the answer, NULL if none (or unreadable) */
    unsigned actions; /**< EPODE_COMMAND_ALLOW() bits allowed next (executing only) */
    epode_command_action_t default_action; /**< the default action, 0 if none */
    const epode_stanza_t *command; /**< the `<command/>` element it was read from */
} epode_command_result_t;

/**
 * The answer to epode_commands_execute() or _continue(). `status` 0:
 * `result` holds it. Otherwise `result` is NULL and `status` is
 * EPODE_EPROTOCOL (an error answer: `cond` its stanza condition,
 * `specific` the commands condition if any, `text` its text or NULL; or
 * an answer without a usable `<command/>`, `cond` EPODE_COND_NONE),
 * EPODE_ETIMEDOUT or EPODE_ECANCELED.
 */
typedef void (*epode_command_result_cb)(epode_commands_t *cmds,
                                        const epode_command_result_t *result, int status,
                                        epode_stanza_cond_t cond, epode_command_error_t specific,
                                        const char *text, void *user);

/** The answer to epode_commands_list(): as epode_disco_items_cb (items
 * borrowed for the call; each item's node is a command, its name the
 * command's name). */
typedef void (*epode_commands_list_cb)(epode_commands_t *cmds, const char *jid,
                                       const epode_disco_items_t *items, int status,
                                       epode_stanza_cond_t cond, void *user);

/**
 * Asks `jid` for the commands it offers us (disco#items on the commands
 * node). `cb` runs once. *id (may be NULL) is for
 * epode_commands_cancel(). Errors: EPODE_EINVAL, EPODE_EJID,
 * EPODE_ESTATE (not READY, or the connection was freed), EPODE_ENOMEM;
 * `cb` is not called then.
 */
EPODE_API int epode_commands_list(epode_commands_t *cmds, const char *jid,
                                  epode_commands_list_cb cb, void *user, unsigned *id);

/**
 * Runs the command `node` of `jid` (action execute), with `form` (may be
 * NULL; a submission, written as it is) for commands that take their
 * input at once. `cb` runs once with the answer. Errors as
 * epode_commands_list().
 */
EPODE_API int epode_commands_execute(epode_commands_t *cmds, const char *jid, const char *node,
                                     const epode_form_t *form, epode_command_result_cb cb,
                                     void *user, unsigned *id);

/**
 * Sends the next request of the session `session_id` of `jid`'s command
 * `node`: `action` (EPODE_COMMAND_EXECUTE: the session's default) with
 * `form` (may be NULL; for a form the answer asked to fill, pass the
 * result of epode_form_submit()). EPODE_COMMAND_CANCEL ends the session.
 * Errors as epode_commands_list(), EPODE_EINVAL for an action outside
 * the enum or a NULL session id.
 */
EPODE_API int epode_commands_continue(epode_commands_t *cmds, const char *jid, const char *node,
                                      const char *session_id, epode_command_action_t action,
                                      const epode_form_t *form, epode_command_result_cb cb,
                                      void *user, unsigned *id);

/** Forgets a pending list/execute/continue; its callback runs with
 * EPODE_ECANCELED. EPODE_ENOTFOUND if it is not pending. */
EPODE_API int epode_commands_cancel(epode_commands_t *cmds, unsigned id);

#ifdef __cplusplus
}
#endif
#endif
