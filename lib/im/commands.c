/* lib/im/commands.c — Ad-Hoc Commands (XEP-0050) on the public API: the
 * commands we offer (sessions, their bounds and timeouts, the disco
 * listing filtered per requester) and requests to another entity's
 * commands.
 *
 * Invariants: a session is in `sessions` from its first execute until
 * it ends, and ends exactly once (end_session); its callback hears
 * `cancel` whenever it ends without a final answer of its own. A session
 * answers at most one request at a time (`pending` holds it), and is
 * never freed while a callback of the application runs with it
 * (`busy`). The disco items name the JID we were bound to at the last
 * READY; the outgoing filters take out of every disco#items answer on
 * the commands node the commands its addressee may not run, and turn a
 * disco#info answer on such a command's node into item-not-found. A
 * pending answer is timed like an idle session. */
#include <epode.h>

#include <stdlib.h>
#include <string.h>

#include "im_alloc.h"

#define MAX_NOTES 16
#define EXPIRED_KEPT 32

typedef struct command {
    struct command *next;
    char *node, *name;
    epode_command_cb cb;
    void *user;
} command;

typedef struct note {
    epode_command_note_type_t type;
    char *text;
} note;

struct epode_command_session {
    epode_command_session_t *next;
    epode_commands_t *cmds;
    command *cmd;
    char *id, *requester;
    epode_jid_t *jid; /* the requester parsed: its bare JID and domain */
    int own;          /* our own account: outside the total and the shares */
    unsigned stage;
    void *user;
    unsigned timer_id;
    /* the answer being made */
    epode_form_t *form;
    note notes[MAX_NOTES];
    size_t nnotes;
    unsigned allowed;
    epode_command_action_t def;
    epode_stanza_cond_t err_cond;
    epode_command_error_t err_specific;
    char *err_text;
    /* what the last answer allowed */
    unsigned next_allowed;
    epode_command_action_t next_def;
    epode_stanza_t *pending; /* the request being answered */
    int ended;
    int in_cb;   /* its callback is running */
    int replied; /* a status given to epode_command_session_reply() meanwhile */
};

typedef enum op_kind { OP_LIST, OP_RUN } op_kind;

typedef struct cmd_op {
    struct cmd_op *next;
    epode_commands_t *cmds;
    op_kind kind;
    unsigned id;
    char *jid, *node;
    epode_command_result_cb cb;
    epode_commands_list_cb list_cb;
    void *user;
} cmd_op;

struct epode_commands {
    epode_conn_t *conn;
    const epode_mem_t *mem;
    epode_disco_t *disco;
    unsigned iq_id, filter_id, info_filter_id, ev_id;
    command *commands;
    epode_command_session_t *sessions;
    size_t nsessions;
    size_t nothers; /* the sessions of requesters other than our own account */
    unsigned per_requester, max_sessions, timeout_ms;
    epode_commands_access_cb access;
    void *access_user;
    char *listed_jid; /* the JID our disco items name */
    char *expired[EXPIRED_KEPT];
    size_t expired_next;
    cmd_op *ops;
    int depth; /* application callbacks running */
};

/* ---- names ----------------------------------------------------------------- */

static const char *const action_names[] = {"execute", "next", "prev", "complete", "cancel"};
static const char *const status_names[] = {"executing", "completed", "canceled", "pending"};
static const char *const note_names[] = {"info", "warn", "error"};
static const char *const error_names[] = {"malformed-action", "bad-action",    "bad-locale",
                                          "bad-payload",      "bad-sessionid", "session-expired"};

#define NAME_IN(table, first, v)                                                                   \
    ((int)(v) >= (first) && (int)(v) - (first) < (int)(sizeof table / sizeof *table)               \
         ? table[(int)(v) - (first)]                                                               \
         : NULL)

const char *epode_command_action_name(epode_command_action_t action)
{
    return NAME_IN(action_names, EPODE_COMMAND_EXECUTE, action);
}

const char *epode_command_status_name(epode_command_status_t status)
{
    return NAME_IN(status_names, EPODE_COMMAND_EXECUTING, status);
}

const char *epode_command_note_type_name(epode_command_note_type_t type)
{
    return NAME_IN(note_names, EPODE_COMMAND_NOTE_INFO, type);
}

const char *epode_command_error_name(epode_command_error_t err)
{
    return NAME_IN(error_names, EPODE_COMMAND_ERROR_MALFORMED_ACTION, err);
}

/* The value whose name is `s` in `table` (first + index), 0 if none. */
static int from_name(const char *const *table, size_t n, int first, const char *s)
{
    for (size_t i = 0; s && i < n; i++)
        if (strcmp(table[i], s) == 0)
            return first + (int)i;
    return 0;
}
#define FROM_NAME(table, first, s) from_name(table, sizeof table / sizeof *table, first, s)

/* ---- small things ------------------------------------------------------------ */

static command *find_command(const epode_commands_t *c, const char *node)
{
    for (command *k = c->commands; node && k; k = k->next)
        if (strcmp(k->node, node) == 0)
            return k;
    return NULL;
}

static int allowed(epode_commands_t *c, const char *requester, const char *node)
{
    if (c->access) {
        c->depth++;
        int ok = c->access(c, requester, node, c->access_user);
        c->depth--;
        return ok == 1;
    }
    if (!requester)
        return 1; /* no 'from': our own server or account */
    const char *bound = c->conn ? epode_conn_bound_jid(c->conn) : NULL;
    return bound && epode_jid_str_equal(requester, bound, 1);
}

/* Sends an error reply to `req` with a commands-specific condition. */
static void send_error(epode_commands_t *c, const epode_stanza_t *req, epode_stanza_cond_t cond,
                       epode_command_error_t specific, const char *text)
{
    epode_stanza_t *r = NULL, *el;
    if (!c->conn ||
        epode_stanza_error_reply(req, cond, EPODE_ERRTYPE_DEFAULT, text, 0, &r) < 0)
        return;
    epode_stanza_t *err = epode_stanza_find_child(r, "error", NULL);
    if (specific != EPODE_COMMAND_ERROR_NONE && err)
        epode_stanza_add_child_new(err, epode_command_error_name(specific), EPODE_NS_COMMANDS,
                                   &el); /* failing, the stanza condition still says it */
    epode_conn_send(c->conn, r);
    epode_stanza_unref(r);
}

/* A fresh random session id (caller frees), NULL without memory. */
static char *new_session_id(epode_commands_t *c)
{
    epode_stanza_t *tmp;
    const char *id;
    char *s = NULL;
    if (epode_stanza_new(c->mem, "x", NULL, &tmp) < 0)
        return NULL;
    if (epode_stanza_set_new_id(tmp, &id) == 0)
        s = im_strdup(c->mem, id);
    epode_stanza_unref(tmp);
    return s;
}

/* ---- sessions ----------------------------------------------------------------- */

static void clear_answer(epode_command_session_t *s)
{
    const epode_mem_t *mem = s->cmds->mem;
    epode_form_free(s->form);
    s->form = NULL;
    for (size_t i = 0; i < s->nnotes; i++)
        im_free(mem, s->notes[i].text);
    s->nnotes = 0;
    im_free(mem, s->err_text);
    s->err_text = NULL;
    s->err_cond = EPODE_COND_NONE;
    s->err_specific = EPODE_COMMAND_ERROR_NONE;
    s->allowed = 0;
    s->def = 0;
}

static void remember_expired(epode_commands_t *c, const char *id)
{
    char *copy = im_strdup(c->mem, id);
    if (!copy)
        return; /* a late request then hears bad-sessionid: still a refusal */
    size_t i = c->expired_next++ % EXPIRED_KEPT;
    im_free(c->mem, c->expired[i]);
    c->expired[i] = copy;
}

static int was_expired(const epode_commands_t *c, const char *id)
{
    for (size_t i = 0; i < EXPIRED_KEPT; i++)
        if (c->expired[i] && strcmp(c->expired[i], id) == 0)
            return 1;
    return 0;
}

/* Unlinks and frees `s`; its callback hears `cancel` first when
 * `tell` is set. */
static void end_session(epode_command_session_t *s, int tell)
{
    epode_commands_t *c = s->cmds;
    if (s->ended)
        return;
    s->ended = 1;
    for (epode_command_session_t **p = &c->sessions; *p; p = &(*p)->next)
        if (*p == s) {
            *p = s->next;
            c->nsessions--;
            if (!s->own)
                c->nothers--;
            break;
        }
    if (s->timer_id && c->conn)
        epode_conn_remove(c->conn, s->timer_id);
    s->timer_id = 0;
    if (tell) {
        c->depth++;
        s->cmd->cb(c, s, EPODE_COMMAND_CANCEL, NULL, s->cmd->user);
        c->depth--;
    }
    clear_answer(s);
    epode_stanza_unref(s->pending);
    im_free(c->mem, s->id);
    im_free(c->mem, s->requester);
    epode_jid_free(s->jid);
    im_free(c->mem, s);
}

static int on_session_timeout(epode_conn_t *conn, void *user)
{
    (void)conn;
    epode_command_session_t *s = user;
    s->timer_id = 0; /* removed by returning 0 */
    remember_expired(s->cmds, s->id);
    if (s->pending) {
        /* the application left the request unanswered for the whole
         * timeout: the requester hears the session is gone (XEP-0050
         * §4.6), the command hears `cancel` */
        epode_stanza_t *req = s->pending;
        s->pending = NULL;
        send_error(s->cmds, req, EPODE_COND_NOT_ALLOWED, EPODE_COMMAND_ERROR_SESSION_EXPIRED,
                   "the command did not answer in time");
        epode_stanza_unref(req);
    }
    end_session(s, 1);
    return 0;
}

static void restart_timer(epode_command_session_t *s)
{
    epode_commands_t *c = s->cmds;
    if (!c->conn)
        return;
    if (s->timer_id)
        epode_conn_remove(c->conn, s->timer_id);
    s->timer_id = 0;
    /* failing, the session cannot time out but still ends with its
     * requester, the helper or the per-requester bound */
    epode_conn_add_timer(c->conn, c->timeout_ms, on_session_timeout, s, &s->timer_id);
}

/* Writes the answer to the pending request; ends the session unless it
 * stays executing. */
static void answer(epode_command_session_t *s, epode_command_status_t status)
{
    epode_commands_t *c = s->cmds;
    epode_stanza_t *req = s->pending;
    s->pending = NULL;
    if (s->err_cond != EPODE_COND_NONE) {
        send_error(c, req, s->err_cond, s->err_specific, s->err_text);
        epode_stanza_unref(req);
        end_session(s, 0);
        return;
    }
    epode_stanza_t *r = NULL, *cmd, *el;
    int rc = epode_stanza_reply(req, &r);
    if (rc == 0)
        rc = epode_stanza_add_child_new(r, "command", EPODE_NS_COMMANDS, &cmd);
    if (rc == 0)
        rc = epode_stanza_set_attr(cmd, "node", s->cmd->node);
    if (rc == 0)
        rc = epode_stanza_set_attr(cmd, "sessionid", s->id);
    if (rc == 0)
        rc = epode_stanza_set_attr(cmd, "status", epode_command_status_name(status));
    if (rc == 0 && status == EPODE_COMMAND_EXECUTING) {
        unsigned allow = s->allowed ? s->allowed : EPODE_COMMAND_ALLOW(EPODE_COMMAND_COMPLETE);
        epode_command_action_t def = s->def;
        if (!def)
            def = allow & EPODE_COMMAND_ALLOW(EPODE_COMMAND_COMPLETE) ? EPODE_COMMAND_COMPLETE
                  : allow & EPODE_COMMAND_ALLOW(EPODE_COMMAND_NEXT)   ? EPODE_COMMAND_NEXT
                                                                       : EPODE_COMMAND_PREV;
        rc = epode_stanza_add_child_new(cmd, "actions", EPODE_NS_COMMANDS, &el);
        if (rc == 0)
            rc = epode_stanza_set_attr(el, "execute", epode_command_action_name(def));
        static const epode_command_action_t order[] = {EPODE_COMMAND_PREV, EPODE_COMMAND_NEXT,
                                                       EPODE_COMMAND_COMPLETE};
        for (size_t i = 0; rc == 0 && i < 3; i++) {
            epode_stanza_t *a;
            if (allow & EPODE_COMMAND_ALLOW(order[i]))
                rc = epode_stanza_add_child_new(el, epode_command_action_name(order[i]),
                                                EPODE_NS_COMMANDS, &a);
        }
        s->next_allowed = allow;
        s->next_def = def;
    }
    for (size_t i = 0; rc == 0 && i < s->nnotes; i++) {
        rc = epode_stanza_add_child_new(cmd, "note", EPODE_NS_COMMANDS, &el);
        if (rc == 0)
            rc = epode_stanza_set_attr(el, "type", epode_command_note_type_name(s->notes[i].type));
        if (rc == 0)
            rc = epode_stanza_set_text(el, s->notes[i].text);
    }
    if (rc == 0 && s->form)
        rc = epode_form_add_to(s->form, cmd, NULL);
    if (rc == 0 && c->conn)
        epode_conn_send(c->conn, r);
    epode_stanza_unref(r);
    if (rc < 0) /* the requester cannot go on from nothing: the session ends */
        send_error(c, req, EPODE_COND_INTERNAL_SERVER_ERROR, EPODE_COMMAND_ERROR_NONE, NULL);
    epode_stanza_unref(req);
    clear_answer(s);
    s->stage++;
    if (status == EPODE_COMMAND_EXECUTING && rc == 0)
        restart_timer(s);
    else /* the application believes an executing session open: tell it */
        end_session(s, status == EPODE_COMMAND_EXECUTING);
}

/* Runs the command's callback for the request now pending on `s`. */
static void run(epode_command_session_t *s, epode_command_action_t action,
                const epode_form_t *form)
{
    epode_commands_t *c = s->cmds;
    if (s->timer_id && c->conn)
        epode_conn_remove(c->conn, s->timer_id);
    s->timer_id = 0;
    c->depth++;
    s->in_cb = 1;
    int st = s->cmd->cb(c, s, action, form, s->cmd->user);
    s->in_cb = 0;
    c->depth--;
    if (s->replied) { /* answered from inside the callback: that answer counts */
        st = s->replied;
        s->replied = 0;
    }
    if (action == EPODE_COMMAND_CANCEL) {
        clear_answer(s); /* whatever was set: a cancel's answer is fixed */
        answer(s, EPODE_COMMAND_CANCELED);
        return;
    }
    if (st == EPODE_COMMAND_PENDING && s->err_cond == EPODE_COND_NONE) {
        restart_timer(s); /* an answer that never comes still ends the session */
        return;
    }
    if (st != EPODE_COMMAND_EXECUTING && st != EPODE_COMMAND_COMPLETED &&
        st != EPODE_COMMAND_CANCELED && s->err_cond == EPODE_COND_NONE)
        s->err_cond = EPODE_COND_INTERNAL_SERVER_ERROR;
    answer(s, (epode_command_status_t)st);
}

/* ---- the responder ------------------------------------------------------------- */

/* Whether a session for `requester` (parsed: `jid`, NULL for our own
 * account) may open: the per-full-JID bound for everyone; for anyone
 * but our own account the per-account and per-domain shares and the
 * total too, so that no crowd of strangers locks our own account out. */
static int may_open(const epode_commands_t *c, const char *requester, const epode_jid_t *jid)
{
    size_t full = 0, bare = 0, domain = 0;
    for (epode_command_session_t *s = c->sessions; s; s = s->next) {
        if (epode_jid_str_equal(s->requester, requester, 0))
            full++;
        if (!jid || s->own || !s->jid)
            continue;
        if (strcmp(epode_jid_domain(s->jid), epode_jid_domain(jid)) == 0) {
            domain++;
            if (strcmp(epode_jid_bare(s->jid), epode_jid_bare(jid)) == 0)
                bare++;
        }
    }
    if (full >= c->per_requester)
        return 0;
    if (!jid)
        return 1;
    size_t per_account = c->per_requester > EPODE_COMMANDS_SESSIONS_PER_ACCOUNT
                             ? c->per_requester
                             : EPODE_COMMANDS_SESSIONS_PER_ACCOUNT;
    size_t per_domain = per_account > EPODE_COMMANDS_SESSIONS_PER_DOMAIN
                            ? per_account
                            : EPODE_COMMANDS_SESSIONS_PER_DOMAIN;
    return c->nothers < c->max_sessions && bare < per_account && domain < per_domain;
}

static int on_command(epode_conn_t *conn, epode_stanza_t *iq, void *user)
{
    (void)conn;
    epode_commands_t *c = user;
    epode_stanza_t *el = epode_stanza_find_child(iq, "command", EPODE_NS_COMMANDS);
    if (!c->conn || !el)
        return EPODE_PASS;
    const char *from = epode_stanza_get_from(iq);
    const char *requester = from ? from : epode_conn_bound_jid(c->conn);
    if (!requester)
        return EPODE_PASS;
    const char *node = epode_stanza_get_attr(el, "node");
    command *k = find_command(c, node);
    if (!k || !allowed(c, from, node)) {
        /* a command the requester may not run does not exist for it:
         * the same answer as an unknown node, so that nobody can probe
         * for hidden commands */
        send_error(c, iq, EPODE_COND_ITEM_NOT_FOUND, EPODE_COMMAND_ERROR_NONE, NULL);
        return EPODE_HANDLED;
    }
    const char *action_s = epode_stanza_get_attr(el, "action");
    epode_command_action_t action =
        action_s ? (epode_command_action_t)FROM_NAME(action_names, EPODE_COMMAND_EXECUTE,
                                                      action_s)
                 : EPODE_COMMAND_EXECUTE;
    if (!action) {
        send_error(c, iq, EPODE_COND_BAD_REQUEST, EPODE_COMMAND_ERROR_MALFORMED_ACTION, NULL);
        return EPODE_HANDLED;
    }
    epode_form_t *form = NULL;
    epode_stanza_t *x = epode_stanza_find_child(el, "x", EPODE_NS_DATA);
    if (x && action != EPODE_COMMAND_CANCEL) {
        int rc = epode_form_parse(c->mem, x, &form);
        if (rc == EPODE_ENOMEM)
            return EPODE_HANDLED; /* unanswered: the requester may retry */
        if (rc < 0 || epode_form_get_type(form) != EPODE_FORM_SUBMIT) {
            epode_form_free(form);
            send_error(c, iq, EPODE_COND_BAD_REQUEST, EPODE_COMMAND_ERROR_BAD_PAYLOAD,
                       rc < 0 ? "the data form cannot be read" : "a data form of type submit expected");
            return EPODE_HANDLED;
        }
    }
    const char *sid = epode_stanza_get_attr(el, "sessionid");
    epode_command_session_t *s = NULL;
    if (!sid) {
        if (action != EPODE_COMMAND_EXECUTE) {
            send_error(c, iq, EPODE_COND_BAD_REQUEST, EPODE_COMMAND_ERROR_BAD_SESSIONID,
                       "no session to continue");
            goto done;
        }
        const char *bound = epode_conn_bound_jid(c->conn);
        int own = !from || (bound && epode_jid_str_equal(requester, bound, 1));
        epode_jid_t *jid = NULL;
        if (!own) {
            int rc = epode_jid_new(c->mem, requester, &jid);
            if (rc == EPODE_ENOMEM)
                goto done; /* unanswered: the requester may retry */
            if (rc < 0) {
                send_error(c, iq, EPODE_COND_JID_MALFORMED, EPODE_COMMAND_ERROR_NONE, NULL);
                goto done;
            }
        }
        if (!may_open(c, requester, jid)) {
            epode_jid_free(jid);
            send_error(c, iq, EPODE_COND_RESOURCE_CONSTRAINT, EPODE_COMMAND_ERROR_NONE,
                       "too many open sessions");
            goto done;
        }
        s = im_zalloc(c->mem, sizeof *s);
        if (!s) {
            epode_jid_free(jid);
            goto done;
        }
        s->cmds = c;
        s->cmd = k;
        s->jid = jid;
        s->own = own;
        if (!(s->id = new_session_id(c)) || !(s->requester = im_strdup(c->mem, requester))) {
            im_free(c->mem, s->id);
            epode_jid_free(s->jid);
            im_free(c->mem, s);
            goto done;
        }
        s->next = c->sessions;
        c->sessions = s;
        c->nsessions++;
        if (!own)
            c->nothers++;
    } else {
        for (s = c->sessions; s; s = s->next)
            if (strcmp(s->id, sid) == 0)
                break;
        if (!s || s->cmd != k || !epode_jid_str_equal(s->requester, requester, 0)) {
            if (!s && was_expired(c, sid))
                send_error(c, iq, EPODE_COND_NOT_ALLOWED, EPODE_COMMAND_ERROR_SESSION_EXPIRED,
                           NULL);
            else
                send_error(c, iq, EPODE_COND_BAD_REQUEST, EPODE_COMMAND_ERROR_BAD_SESSIONID,
                           NULL);
            goto done;
        }
        if (s->pending) {
            send_error(c, iq, EPODE_COND_UNEXPECTED_REQUEST, EPODE_COMMAND_ERROR_NONE,
                       "the previous request is still being answered");
            goto done;
        }
        if (action == EPODE_COMMAND_EXECUTE)
            action = s->next_def;
        if (action != EPODE_COMMAND_CANCEL &&
            !(s->next_allowed & EPODE_COMMAND_ALLOW(action))) {
            send_error(c, iq, EPODE_COND_BAD_REQUEST, EPODE_COMMAND_ERROR_BAD_ACTION, NULL);
            goto done;
        }
    }
    s->pending = epode_stanza_ref(iq);
    run(s, action, form);
done:
    epode_form_free(form);
    return EPODE_HANDLED;
}

/* Takes out of a disco#items answer on the commands node the commands
 * its addressee may not run. */
static int on_items_out(epode_conn_t *conn, epode_stanza_t *iq, void *user)
{
    (void)conn;
    epode_commands_t *c = user;
    epode_stanza_t *q = epode_stanza_find_child(iq, "query", EPODE_NS_DISCO_ITEMS);
    const char *node = q ? epode_stanza_get_attr(q, "node") : NULL;
    if (!c->conn || !node || strcmp(node, EPODE_NS_COMMANDS) != 0)
        return EPODE_PASS;
    const char *to = epode_stanza_get_to(iq);
    epode_stanza_t *it = epode_stanza_find_child(q, "item", NULL);
    while (it) {
        epode_stanza_t *next = epode_stanza_find_next(it, "item", NULL);
        const char *n = epode_stanza_get_attr(it, "node");
        if (!n || !find_command(c, n) || !allowed(c, to, n))
            epode_stanza_remove(it);
        it = next;
    }
    return EPODE_HANDLED;
}

/* Turns a disco#info answer on a command's node into the answer for an
 * unknown node (item-not-found) when its addressee may not run the
 * command: a hidden command's name and existence stay hidden. */
static int on_info_out(epode_conn_t *conn, epode_stanza_t *iq, void *user)
{
    (void)conn;
    epode_commands_t *c = user;
    epode_stanza_t *q = epode_stanza_find_child(iq, "query", EPODE_NS_DISCO_INFO);
    const char *node = q ? epode_stanza_get_attr(q, "node") : NULL;
    if (!c->conn || !node || !find_command(c, node) || allowed(c, epode_stanza_get_to(iq), node))
        return EPODE_PASS;
    epode_stanza_t *err = NULL, *el;
    if (epode_stanza_error_reply(iq, EPODE_COND_ITEM_NOT_FOUND, EPODE_ERRTYPE_DEFAULT, NULL, 0,
                                 &err) == 0 &&
        (el = epode_stanza_find_child(err, "error", NULL)) != NULL &&
        epode_stanza_add_child(iq, el, NULL) == 0 && epode_stanza_set_type(iq, "error") == 0) {
        epode_stanza_remove(q); /* the error reply names nothing */
    } else {
        /* without memory for the error: at least nothing of the command */
        epode_stanza_t *ch;
        while ((ch = epode_stanza_first_child(q)) != NULL)
            epode_stanza_remove(ch);
    }
    epode_stanza_unref(err);
    return EPODE_HANDLED;
}

/* ---- the disco listing --------------------------------------------------------- */

static void unlist(epode_commands_t *c, const command *k)
{
    if (!c->disco)
        return;
    if (c->listed_jid)
        epode_disco_remove_item(c->disco, EPODE_NS_COMMANDS, c->listed_jid, k->node);
    epode_disco_remove_identity(c->disco, k->node, "automation", "command-node", NULL);
    epode_disco_remove_feature(c->disco, k->node, EPODE_NS_COMMANDS);
    epode_disco_remove_feature(c->disco, k->node, EPODE_NS_DATA);
}

static int list(epode_commands_t *c, const command *k)
{
    if (!c->disco)
        return 0;
    int rc = epode_disco_add_identity(c->disco, k->node, "automation", "command-node", k->name,
                                      NULL);
    if (rc == 0)
        rc = epode_disco_add_feature(c->disco, k->node, EPODE_NS_COMMANDS);
    if (rc == 0)
        rc = epode_disco_add_feature(c->disco, k->node, EPODE_NS_DATA);
    if (rc == 0 && c->listed_jid)
        rc = epode_disco_add_item(c->disco, EPODE_NS_COMMANDS, c->listed_jid, k->node, k->name);
    if (rc < 0)
        unlist(c, k);
    return rc;
}

/* At READY our JID may have changed: the items name the new one. */
static void relist(epode_commands_t *c)
{
    const char *bound = c->conn ? epode_conn_bound_jid(c->conn) : NULL;
    if (!c->disco || !bound || (c->listed_jid && strcmp(c->listed_jid, bound) == 0))
        return;
    char *jid = im_strdup(c->mem, bound);
    if (!jid)
        return;
    for (command *k = c->commands; k; k = k->next)
        if (c->listed_jid)
            epode_disco_remove_item(c->disco, EPODE_NS_COMMANDS, c->listed_jid, k->node);
    im_free(c->mem, c->listed_jid);
    c->listed_jid = jid;
    for (command *k = c->commands; k; k = k->next)
        epode_disco_add_item(c->disco, EPODE_NS_COMMANDS, jid, k->node, k->name);
}

/* ---- offering ---------------------------------------------------------------------- */

int epode_commands_add(epode_commands_t *c, const char *node, const char *name,
                       epode_command_cb cb, void *user)
{
    if (!c || !node || !*node || !name || !*name || !cb)
        return EPODE_EINVAL;
    if (find_command(c, node))
        return EPODE_ESTATE;
    command *k = im_zalloc(c->mem, sizeof *k);
    if (!k)
        return EPODE_ENOMEM;
    k->cb = cb;
    k->user = user;
    int rc = 0;
    if (!(k->node = im_strdup(c->mem, node)) || !(k->name = im_strdup(c->mem, name)))
        rc = EPODE_ENOMEM;
    if (rc == 0)
        rc = list(c, k);
    if (rc < 0) {
        im_free(c->mem, k->node);
        im_free(c->mem, k->name);
        im_free(c->mem, k);
        return rc;
    }
    /* kept in the order added: the listing follows it */
    command **p = &c->commands;
    while (*p)
        p = &(*p)->next;
    *p = k;
    return 0;
}

static void free_command(epode_commands_t *c, command *k)
{
    /* one session at a time, from the head again after each: a cancel
     * callback may end other sessions (answering a pending one frees
     * it), so no pointer into the list survives an end_session() */
    for (;;) {
        epode_command_session_t *s = c->sessions;
        while (s && s->cmd != k)
            s = s->next;
        if (!s)
            break;
        if (s->pending)
            send_error(c, s->pending, EPODE_COND_ITEM_NOT_FOUND, EPODE_COMMAND_ERROR_NONE,
                       "the command was withdrawn");
        end_session(s, 1);
    }
    unlist(c, k);
    im_free(c->mem, k->node);
    im_free(c->mem, k->name);
    im_free(c->mem, k);
}

int epode_commands_remove(epode_commands_t *c, const char *node)
{
    if (!c || !node)
        return EPODE_EINVAL;
    if (c->depth)
        return EPODE_ESTATE;
    for (command **p = &c->commands; *p; p = &(*p)->next)
        if (strcmp((*p)->node, node) == 0) {
            command *k = *p;
            *p = k->next;
            free_command(c, k);
            return 0;
        }
    return EPODE_ENOTFOUND;
}

int epode_commands_set_access_cb(epode_commands_t *c, epode_commands_access_cb cb, void *user)
{
    if (!c)
        return EPODE_EINVAL;
    c->access = cb;
    c->access_user = cb ? user : NULL;
    return 0;
}

int epode_commands_set_limits(epode_commands_t *c, unsigned per_requester,
                              unsigned max_sessions, unsigned timeout_ms)
{
    if (!c)
        return EPODE_EINVAL;
    c->per_requester = per_requester ? per_requester : EPODE_COMMANDS_SESSIONS_PER_REQUESTER;
    c->max_sessions = max_sessions ? max_sessions : EPODE_COMMANDS_SESSIONS_MAX;
    c->timeout_ms = timeout_ms ? timeout_ms : EPODE_COMMANDS_SESSION_TIMEOUT_MS;
    return 0;
}

size_t epode_commands_session_count(const epode_commands_t *c)
{
    return c ? c->nsessions : 0;
}

const char *epode_command_session_id(const epode_command_session_t *s)
{
    return s ? s->id : NULL;
}

const char *epode_command_session_node(const epode_command_session_t *s)
{
    return s ? s->cmd->node : NULL;
}

const char *epode_command_session_requester(const epode_command_session_t *s)
{
    return s ? s->requester : NULL;
}

unsigned epode_command_session_stage(const epode_command_session_t *s)
{
    return s ? s->stage : 0;
}

void *epode_command_session_get_user(const epode_command_session_t *s)
{
    return s ? s->user : NULL;
}

void epode_command_session_set_user(epode_command_session_t *s, void *user)
{
    if (s)
        s->user = user;
}

int epode_command_session_set_form(epode_command_session_t *s, const epode_form_t *form)
{
    if (!s)
        return EPODE_EINVAL;
    epode_form_t *copy = NULL;
    if (form) {
        /* a copy through the element form: forms.h has no copy of its own */
        epode_stanza_t *x;
        int rc = epode_form_to_stanza(form, &x);
        if (rc < 0)
            return rc;
        rc = epode_form_parse(s->cmds->mem, x, &copy);
        epode_stanza_unref(x);
        if (rc < 0)
            return rc == EPODE_ENOMEM ? rc : EPODE_EINVAL;
    }
    epode_form_free(s->form);
    s->form = copy;
    return 0;
}

int epode_command_session_add_note(epode_command_session_t *s, epode_command_note_type_t type,
                                   const char *text)
{
    if (!s || !text || !epode_command_note_type_name(type))
        return EPODE_EINVAL;
    if (s->nnotes == MAX_NOTES)
        return EPODE_ELIMIT;
    char *t = im_strdup(s->cmds->mem, text);
    if (!t)
        return EPODE_ENOMEM;
    s->notes[s->nnotes].type = type;
    s->notes[s->nnotes++].text = t;
    return 0;
}

int epode_command_session_set_actions(epode_command_session_t *s, unsigned allow,
                                      epode_command_action_t def)
{
    const unsigned all = EPODE_COMMAND_ALLOW(EPODE_COMMAND_NEXT) |
                         EPODE_COMMAND_ALLOW(EPODE_COMMAND_PREV) |
                         EPODE_COMMAND_ALLOW(EPODE_COMMAND_COMPLETE);
    if (!s || !(allow & all) || (allow & ~all) ||
        (def && (def < EPODE_COMMAND_NEXT || def > EPODE_COMMAND_COMPLETE ||
                 !(allow & EPODE_COMMAND_ALLOW(def)))))
        return EPODE_EINVAL;
    s->allowed = allow;
    s->def = def;
    return 0;
}

int epode_command_session_set_error(epode_command_session_t *s, epode_stanza_cond_t cond,
                                    epode_command_error_t specific, const char *text)
{
    if (!s || cond == EPODE_COND_NONE || !epode_stanza_cond_name(cond) ||
        (specific != EPODE_COMMAND_ERROR_NONE && !epode_command_error_name(specific)))
        return EPODE_EINVAL;
    char *t = NULL;
    if (text && !(t = im_strdup(s->cmds->mem, text)))
        return EPODE_ENOMEM;
    im_free(s->cmds->mem, s->err_text);
    s->err_text = t;
    s->err_cond = cond;
    s->err_specific = specific;
    return 0;
}

int epode_command_session_reply(epode_command_session_t *s, epode_command_status_t status)
{
    if (!s || status < EPODE_COMMAND_EXECUTING || status > EPODE_COMMAND_CANCELED)
        return EPODE_EINVAL;
    if (!s->pending || s->ended)
        return EPODE_ESTATE;
    if (s->in_cb) { /* the callback's caller sends it once it returns */
        s->replied = (int)status;
        return 0;
    }
    answer(s, status);
    return 0;
}

/* ---- running others' commands ---------------------------------------------------- */

static void unlink_op(epode_commands_t *c, cmd_op *op)
{
    for (cmd_op **p = &c->ops; *p; p = &(*p)->next)
        if (*p == op) {
            *p = op->next;
            return;
        }
}

static void op_free(epode_commands_t *c, cmd_op *op)
{
    im_free(c->mem, op->jid);
    im_free(c->mem, op->node);
    im_free(c->mem, op);
}

static void op_fail(cmd_op *op, int status, epode_stanza_cond_t cond,
                    epode_command_error_t specific, const char *text)
{
    epode_commands_t *c = op->cmds;
    c->depth++;
    if (op->kind == OP_LIST && op->list_cb)
        op->list_cb(c, op->jid, NULL, status, cond, op->user);
    else if (op->kind == OP_RUN && op->cb)
        op->cb(c, NULL, status, cond, specific, text, op->user);
    c->depth--;
}

/* The commands-specific condition inside an error stanza. */
static epode_command_error_t specific_error(const epode_stanza_t *st)
{
    epode_stanza_t *err = epode_stanza_find_child(st, "error", NULL);
    for (epode_stanza_t *e = err ? epode_stanza_find_child(err, NULL, EPODE_NS_COMMANDS) : NULL;
         e; e = epode_stanza_find_next(e, NULL, EPODE_NS_COMMANDS)) {
        int v = FROM_NAME(error_names, EPODE_COMMAND_ERROR_MALFORMED_ACTION,
                          epode_stanza_get_name(e));
        if (v)
            return (epode_command_error_t)v;
    }
    return EPODE_COMMAND_ERROR_NONE;
}

/* Reads a <command/> answer and hands it over; EPODE_EPROTOCOL if it
 * cannot be read (nothing handed over then). */
static int deliver_result(cmd_op *op, const epode_stanza_t *res)
{
    epode_commands_t *c = op->cmds;
    epode_stanza_t *el = epode_stanza_find_child(res, "command", EPODE_NS_COMMANDS);
    if (!el)
        return EPODE_EPROTOCOL;
    epode_command_result_t r = {0};
    r.status = (epode_command_status_t)FROM_NAME(status_names, EPODE_COMMAND_EXECUTING,
                                                 epode_stanza_get_attr(el, "status"));
    if (r.status == 0 || r.status == EPODE_COMMAND_PENDING)
        return EPODE_EPROTOCOL;
    const char *from = epode_stanza_get_from(res);
    r.jid = from ? from : op->jid;
    r.node = epode_stanza_get_attr(el, "node");
    if (!r.node)
        r.node = op->node;
    r.session_id = epode_stanza_get_attr(el, "sessionid");
    r.command = el;
    epode_command_note_t notes[MAX_NOTES];
    for (epode_stanza_t *n = epode_stanza_find_child(el, "note", EPODE_NS_COMMANDS);
         n && r.nnotes < MAX_NOTES; n = epode_stanza_find_next(n, "note", EPODE_NS_COMMANDS)) {
        const char *type = epode_stanza_get_attr(n, "type");
        int t = type ? FROM_NAME(note_names, EPODE_COMMAND_NOTE_INFO, type)
                     : EPODE_COMMAND_NOTE_INFO;
        const char *text = epode_stanza_get_text(n);
        notes[r.nnotes].type = t ? (epode_command_note_type_t)t : EPODE_COMMAND_NOTE_INFO;
        notes[r.nnotes++].text = text ? text : "";
    }
    r.notes = r.nnotes ? notes : NULL;
    epode_stanza_t *actions = epode_stanza_find_child(el, "actions", EPODE_NS_COMMANDS);
    if (actions && r.status == EPODE_COMMAND_EXECUTING) {
        for (epode_stanza_t *a = epode_stanza_first_child(actions); a; a = epode_stanza_next(a)) {
            int v = FROM_NAME(action_names, EPODE_COMMAND_EXECUTE, epode_stanza_get_name(a));
            if (v >= EPODE_COMMAND_NEXT && v <= EPODE_COMMAND_COMPLETE)
                r.actions |= EPODE_COMMAND_ALLOW(v);
        }
        int d = FROM_NAME(action_names, EPODE_COMMAND_EXECUTE,
                          epode_stanza_get_attr(actions, "execute"));
        if (d >= EPODE_COMMAND_NEXT && d <= EPODE_COMMAND_COMPLETE &&
            (r.actions & EPODE_COMMAND_ALLOW(d)))
            r.default_action = (epode_command_action_t)d;
    } else if (r.status == EPODE_COMMAND_EXECUTING) {
        /* no <actions/>: XEP-0050 §3.4 — execute means complete */
        r.actions = EPODE_COMMAND_ALLOW(EPODE_COMMAND_COMPLETE);
        r.default_action = EPODE_COMMAND_COMPLETE;
    }
    epode_form_t *form = NULL;
    epode_stanza_t *x = epode_stanza_find_child(el, "x", EPODE_NS_DATA);
    if (x && epode_form_parse(c->mem, x, &form) == 0)
        r.form = form;
    c->depth++;
    if (op->cb)
        op->cb(c, &r, 0, EPODE_COND_NONE, EPODE_COMMAND_ERROR_NONE, NULL, op->user);
    c->depth--;
    epode_form_free(form);
    return 0;
}

static void on_answer(epode_conn_t *conn, epode_stanza_t *res, int status, void *user)
{
    (void)conn;
    cmd_op *op = user;
    epode_commands_t *c = op->cmds;
    if (!c->conn)
        return; /* the connection is being freed: epode_commands_free() tells it */
    unlink_op(c, op);
    if (status < 0) {
        op_fail(op, status, EPODE_COND_NONE, EPODE_COMMAND_ERROR_NONE, NULL);
    } else {
        const char *type = epode_stanza_get_type(res);
        if (!type || strcmp(type, "result") != 0) {
            epode_stanza_cond_t cond = EPODE_COND_NONE;
            const char *text = NULL;
            if (epode_stanza_get_error(res, &cond, NULL, &text) < 0 || cond == EPODE_COND_NONE)
                cond = EPODE_COND_UNDEFINED_CONDITION;
            op_fail(op, EPODE_EPROTOCOL, cond, specific_error(res), text);
        } else if (op->kind == OP_LIST) {
            epode_disco_items_t *items = NULL;
            int rc = epode_disco_items_parse(res, &items);
            if (rc < 0) {
                op_fail(op, rc == EPODE_ENOMEM ? rc : EPODE_EPROTOCOL, EPODE_COND_NONE,
                        EPODE_COMMAND_ERROR_NONE, NULL);
            } else {
                c->depth++;
                if (op->list_cb)
                    op->list_cb(c, op->jid, items, 0, EPODE_COND_NONE, op->user);
                c->depth--;
            }
            epode_disco_items_free(items);
        } else if (deliver_result(op, res) < 0) {
            op_fail(op, EPODE_EPROTOCOL, EPODE_COND_NONE, EPODE_COMMAND_ERROR_NONE, NULL);
        }
    }
    op_free(c, op);
}

/* Sends a request; on failure nothing is kept and no callback runs. */
static int send_op(epode_commands_t *c, op_kind kind, const char *jid, const char *node,
                   const char *sid, epode_command_action_t action, const epode_form_t *form,
                   epode_command_result_cb cb, epode_commands_list_cb list_cb, void *user,
                   unsigned *id)
{
    if (!c || !jid || (kind == OP_RUN && !node))
        return EPODE_EINVAL;
    if (epode_jid_validate(jid) < 0)
        return EPODE_EJID;
    if (!c->conn || !epode_conn_is_ready(c->conn))
        return EPODE_ESTATE;
    cmd_op *op = im_zalloc(c->mem, sizeof *op);
    if (!op)
        return EPODE_ENOMEM;
    op->cmds = c;
    op->kind = kind;
    op->cb = cb;
    op->list_cb = list_cb;
    op->user = user;
    int rc = 0;
    if (!(op->jid = im_strdup(c->mem, jid)) || (node && !(op->node = im_strdup(c->mem, node))))
        rc = EPODE_ENOMEM;
    epode_stanza_t *iq = NULL, *el;
    if (rc == 0)
        rc = epode_stanza_new_iq(c->mem, kind == OP_LIST ? "get" : "set", NULL, &iq);
    if (rc == 0)
        rc = epode_stanza_set_to(iq, jid);
    if (rc == 0 && kind == OP_LIST) {
        rc = epode_stanza_add_child_new(iq, "query", EPODE_NS_DISCO_ITEMS, &el);
        if (rc == 0)
            rc = epode_stanza_set_attr(el, "node", EPODE_NS_COMMANDS);
    } else if (rc == 0) {
        rc = epode_stanza_add_child_new(iq, "command", EPODE_NS_COMMANDS, &el);
        if (rc == 0)
            rc = epode_stanza_set_attr(el, "node", node);
        if (rc == 0)
            rc = epode_stanza_set_attr(el, "action", epode_command_action_name(action));
        if (rc == 0 && sid)
            rc = epode_stanza_set_attr(el, "sessionid", sid);
        if (rc == 0 && form && action != EPODE_COMMAND_CANCEL)
            rc = epode_form_add_to(form, el, NULL);
    }
    if (rc == 0)
        rc = epode_conn_send_iq(c->conn, iq, 0, on_answer, op, &op->id);
    epode_stanza_unref(iq);
    if (rc < 0) {
        op_free(c, op);
        return rc;
    }
    op->next = c->ops;
    c->ops = op;
    if (id)
        *id = op->id;
    return 0;
}

int epode_commands_list(epode_commands_t *c, const char *jid, epode_commands_list_cb cb,
                        void *user, unsigned *id)
{
    return send_op(c, OP_LIST, jid, NULL, NULL, 0, NULL, NULL, cb, user, id);
}

int epode_commands_execute(epode_commands_t *c, const char *jid, const char *node,
                           const epode_form_t *form, epode_command_result_cb cb, void *user,
                           unsigned *id)
{
    return send_op(c, OP_RUN, jid, node, NULL, EPODE_COMMAND_EXECUTE, form, cb, NULL, user, id);
}

int epode_commands_continue(epode_commands_t *c, const char *jid, const char *node,
                            const char *session_id, epode_command_action_t action,
                            const epode_form_t *form, epode_command_result_cb cb, void *user,
                            unsigned *id)
{
    if (!session_id || !*session_id || !epode_command_action_name(action))
        return EPODE_EINVAL;
    return send_op(c, OP_RUN, jid, node, session_id, action, form, cb, NULL, user, id);
}

int epode_commands_cancel(epode_commands_t *c, unsigned id)
{
    if (!c || !id)
        return EPODE_EINVAL;
    for (cmd_op *op = c->ops; op; op = op->next)
        if (op->id == id) {
            unlink_op(c, op);
            if (c->conn)
                epode_conn_remove(c->conn, op->id);
            op_fail(op, EPODE_ECANCELED, EPODE_COND_NONE, EPODE_COMMAND_ERROR_NONE, NULL);
            op_free(c, op);
            return 0;
        }
    return EPODE_ENOTFOUND;
}

/* ---- life cycle ------------------------------------------------------------------- */

static void on_conn_event(epode_conn_t *conn, epode_conn_event_t ev, void *user)
{
    (void)conn;
    epode_commands_t *c = user;
    if (ev == EPODE_CONN_READY) {
        relist(c);
    } else if (ev == EPODE_CONN_FREED) {
        /* every id dies with the connection; sessions end now, pending
         * requests are reported canceled by epode_commands_free() */
        while (c->sessions) {
            c->sessions->timer_id = 0;
            end_session(c->sessions, 1);
        }
        c->conn = NULL;
        c->iq_id = c->filter_id = c->info_filter_id = c->ev_id = 0;
        for (cmd_op *op = c->ops; op; op = op->next)
            op->id = 0;
    }
}

int epode_commands_new(epode_conn_t *conn, epode_disco_t *disco, epode_commands_t **out)
{
    if (!conn || !out)
        return EPODE_EINVAL;
    const epode_mem_t *mem = im_mem(conn);
    epode_commands_t *c = im_zalloc(mem, sizeof *c);
    if (!c)
        return EPODE_ENOMEM;
    c->conn = conn;
    c->mem = mem;
    epode_commands_set_limits(c, 0, 0, 0);
    int rc = epode_conn_add_handler(conn, "iq", EPODE_NS_COMMANDS, "set", on_command, c,
                                    &c->iq_id);
    if (rc == 0)
        rc = epode_conn_add_filter(conn, "iq", EPODE_NS_DISCO_ITEMS, "result", on_items_out, c,
                                   &c->filter_id);
    if (rc == 0)
        rc = epode_conn_add_filter(conn, "iq", EPODE_NS_DISCO_INFO, "result", on_info_out, c,
                                   &c->info_filter_id);
    if (rc == 0)
        rc = epode_conn_add_event_cb(conn, on_conn_event, c, &c->ev_id);
    if (rc == 0 && disco) {
        c->disco = disco;
        rc = epode_disco_add_feature(disco, NULL, EPODE_NS_COMMANDS);
        if (rc == 0)
            rc = epode_disco_add_identity(disco, EPODE_NS_COMMANDS, "automation",
                                          "command-list", NULL, NULL);
    }
    if (rc < 0) {
        epode_commands_free(c);
        return rc;
    }
    relist(c);
    *out = c;
    return 0;
}

void epode_commands_free(epode_commands_t *c)
{
    if (!c)
        return;
    while (c->commands) {
        command *k = c->commands;
        c->commands = k->next;
        free_command(c, k);
    }
    if (c->conn) {
        if (c->iq_id)
            epode_conn_remove(c->conn, c->iq_id);
        if (c->filter_id)
            epode_conn_remove(c->conn, c->filter_id);
        if (c->info_filter_id)
            epode_conn_remove(c->conn, c->info_filter_id);
        if (c->ev_id)
            epode_conn_remove(c->conn, c->ev_id);
    }
    if (c->disco) {
        epode_disco_remove_feature(c->disco, NULL, EPODE_NS_COMMANDS);
        epode_disco_remove_identity(c->disco, EPODE_NS_COMMANDS, "automation", "command-list",
                                    NULL);
    }
    while (c->ops) {
        cmd_op *op = c->ops;
        c->ops = op->next;
        if (c->conn && op->id)
            epode_conn_remove(c->conn, op->id);
        op_fail(op, EPODE_ECANCELED, EPODE_COND_NONE, EPODE_COMMAND_ERROR_NONE, NULL);
        op_free(c, op);
    }
    for (size_t i = 0; i < EXPIRED_KEPT; i++)
        im_free(c->mem, c->expired[i]);
    im_free(c->mem, c->listed_jid);
    im_free(c->mem, c);
}
