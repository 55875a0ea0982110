/* lib/im/register.c — XEP-0077 in-band registration on the public API:
 * fetch the registration form (a data form, or legacy fields turned into
 * one), fill and submit it, change the password, remove the account. One
 * request at a time; its callback is the last thing a request does, so
 * the application may free the helper or start another request from it.
 * Passwords the helper keeps are wiped before their memory is given
 * back. Freed before its connection, it lets go of it on
 * EPODE_CONN_FREED and never touches that connection again. */
#include <epode.h>
#include <epode/forms.h>
#include <epode/register.h>

#include <stdio.h>
#include <string.h>

#include "im_alloc.h"

#define FORM_TYPE_REGISTER "jabber:iq:register"
#define FORM_TYPE_CHANGEPW "jabber:iq:register:changepassword"

enum op {
    OP_NONE = 0,
    OP_FETCH,          /* epode_register_fetch */
    OP_SUBMIT,         /* epode_register_submit */
    OP_ACCOUNT_FETCH,  /* epode_register_account, first step */
    OP_ACCOUNT_SUBMIT, /* ... second step */
    OP_CHANGE,         /* epode_register_change_password */
    OP_CHANGE_FORM,    /* ... again, with the server's form filled */
    OP_REMOVE
};

struct epode_register {
    epode_conn_t *conn;
    const epode_mem_t *mem;
    unsigned event_id;
    unsigned timed_id; /* an outcome known at once, told from the loop */
    /* the request in flight */
    enum op op;
    unsigned wait_id; /* the IQ wait, for epode_conn_remove() */
    unsigned timeout_ms;
    epode_register_cb cb;
    epode_register_fill_cb fill;
    void *user;
    char *username, *password, *old_password;
    /* the last fetch */
    epode_form_t *form;
    int data_form, registered;
    char *instructions, *oob_url;
    epode_stanza_t *answer;
    char msg[300]; /* a sentence for the callback's text */
};

/* Legacy fields XEP-0077 §14.1 lists, besides the ones handled apart. */
static int is_legacy_field(const char *name)
{
    static const char *const names[] = {
        "username", "nick", "password", "name", "first", "last", "email", "address", "city",
        "state", "zip", "phone", "url", "date", "misc", "text", "key",
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(names[i], name) == 0)
            return 1;
    return 0;
}

static void free_secret(const epode_mem_t *mem, char **s)
{
    if (*s) {
        memset(*s, 0, strlen(*s));
        im_free(mem, *s);
        *s = NULL;
    }
}

static void forget_request(epode_register_t *r)
{
    if (r->timed_id && r->conn)
        epode_conn_remove(r->conn, r->timed_id);
    r->timed_id = 0;
    r->op = OP_NONE;
    r->wait_id = 0;
    r->cb = NULL;
    r->fill = NULL;
    r->user = NULL;
    free_secret(r->mem, &r->username);
    free_secret(r->mem, &r->password);
    free_secret(r->mem, &r->old_password);
}

static void forget_fetch(epode_register_t *r)
{
    epode_form_free(r->form);
    r->form = NULL;
    r->data_form = r->registered = 0;
    im_free(r->mem, r->instructions);
    im_free(r->mem, r->oob_url);
    r->instructions = r->oob_url = NULL;
    epode_stanza_unref(r->answer);
    r->answer = NULL;
}

/* Ends the request and tells the application: the last thing done. */
static void finish(epode_register_t *r, int status, epode_stanza_cond_t cond, const char *text)
{
    epode_register_cb cb = r->cb;
    void *user = r->user;
    forget_request(r);
    if (cb)
        cb(r, status, cond, text, user);
}

static void on_conn_event(epode_conn_t *conn, epode_conn_event_t ev, void *user)
{
    (void)conn;
    epode_register_t *r = user;
    if (ev != EPODE_CONN_FREED)
        return;
    /* every id dies with the connection; a pending request is forgotten */
    r->conn = NULL;
    r->event_id = r->timed_id = 0;
    forget_request(r);
}

int epode_register_new(epode_conn_t *conn, epode_register_t **out)
{
    if (!conn || !out)
        return EPODE_EINVAL;
    const epode_mem_t *mem = im_mem(conn);
    epode_register_t *r = im_zalloc(mem, sizeof *r);
    if (!r)
        return EPODE_ENOMEM;
    r->conn = conn;
    r->mem = mem;
    int rc = epode_conn_add_event_cb(conn, on_conn_event, r, &r->event_id);
    if (rc < 0) {
        im_free(mem, r);
        return rc;
    }
    *out = r;
    return 0;
}

void epode_register_free(epode_register_t *r)
{
    if (!r)
        return;
    if (r->conn) {
        if (r->wait_id)
            epode_conn_remove(r->conn, r->wait_id);
        epode_conn_remove(r->conn, r->event_id);
    }
    forget_request(r);
    forget_fetch(r);
    im_free(r->mem, r);
}

/* ---- sending ---------------------------------------------------------------------- */

static void on_answer(epode_conn_t *conn, epode_stanza_t *result, int status, void *user);

/* A new <iq type=`type`><query xmlns='jabber:iq:register'/></iq>. */
static int query_new(epode_register_t *r, const char *type, epode_stanza_t **iq,
                     epode_stanza_t **query)
{
    int rc = epode_stanza_new_iq(r->mem, type, NULL, iq);
    if (rc < 0)
        return rc;
    if ((rc = epode_stanza_add_child_new(*iq, "query", EPODE_NS_REGISTER, query)) < 0)
        epode_stanza_unref(*iq);
    return rc;
}

/* Sends iq (consumed) for op; on success the request is in flight. */
static int send_request(epode_register_t *r, epode_stanza_t *iq, enum op op)
{
    unsigned id = 0;
    int rc = epode_conn_send_iq(r->conn, iq, r->timeout_ms, on_answer, r, &id);
    epode_stanza_unref(iq);
    if (rc == 0) {
        r->op = op;
        r->wait_id = id;
    }
    return rc;
}

static int can_start(const epode_register_t *r)
{
    if (!r->conn || r->op != OP_NONE || !epode_conn_is_ready(r->conn))
        return EPODE_ESTATE;
    return 0;
}

static int start_fetch(epode_register_t *r, enum op op)
{
    epode_stanza_t *iq, *q;
    int rc = query_new(r, "get", &iq, &q);
    return rc < 0 ? rc : send_request(r, iq, op);
}

/* The server's word, known without asking: told from the loop. */
static int on_unoffered(epode_conn_t *conn, void *user)
{
    (void)conn;
    epode_register_t *r = user;
    r->timed_id = 0; /* removed by returning 0 */
    finish(r, 0, EPODE_COND_SERVICE_UNAVAILABLE,
           "the server does not offer in-band registration (no register stream feature)");
    return 0;
}

/* Before authentication a server that does not advertise registration
 * gets no query: some end the stream for any IQ then. */
static int offered(const epode_register_t *r)
{
    const epode_stanza_t *f = epode_conn_stream_features(r->conn);
    return epode_conn_bound_jid(r->conn) || !f ||
           epode_stanza_find_child(f, "register", EPODE_NS_REGISTER_FEATURE);
}

int epode_register_fetch(epode_register_t *r, unsigned timeout_ms, epode_register_cb cb,
                         void *user)
{
    if (!r || !cb)
        return EPODE_EINVAL;
    int rc = can_start(r);
    if (rc < 0)
        return rc;
    r->timeout_ms = timeout_ms;
    if (!offered(r))
        rc = epode_conn_add_timer(r->conn, 1, on_unoffered, r, &r->timed_id);
    else
        rc = start_fetch(r, OP_FETCH);
    if (rc < 0)
        return rc;
    r->op = OP_FETCH;
    r->cb = cb;
    r->user = user;
    return 0;
}

/* Writes the fetched form into a <query/> the way it came. */
static int fill_query(epode_register_t *r, epode_stanza_t *q)
{
    if (r->data_form) {
        epode_form_t *sub;
        int rc = epode_form_submit(r->form, &sub);
        if (rc < 0)
            return rc;
        rc = epode_form_add_to(sub, q, NULL);
        epode_form_free(sub);
        return rc;
    }
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < epode_form_field_count(r->form); i++) {
        epode_form_field_t *f = epode_form_field_at(r->form, i);
        const char *v = epode_form_field_value(f);
        epode_stanza_t *el;
        if ((rc = epode_stanza_add_child_new(q, epode_form_field_var(f), EPODE_NS_REGISTER,
                                             &el)) == 0 && v && *v)
            rc = epode_stanza_add_text(el, v, (size_t)-1);
    }
    return rc;
}

static int start_submit(epode_register_t *r, enum op op, const char **why)
{
    const char *bad = NULL, *w = NULL;
    if (epode_form_validate(r->form, &bad, &w) < 0) {
        snprintf(r->msg, sizeof r->msg, "the registration form is not complete: field '%.60s': %s",
                 bad ? bad : "?", w);
        if (why)
            *why = r->msg;
        return EPODE_EINVAL;
    }
    epode_stanza_t *iq, *q;
    int rc = query_new(r, "set", &iq, &q);
    if (rc < 0)
        return rc;
    if ((rc = fill_query(r, q)) < 0) {
        epode_stanza_unref(iq);
        return rc;
    }
    return send_request(r, iq, op);
}

int epode_register_submit(epode_register_t *r, unsigned timeout_ms, epode_register_cb cb,
                          void *user)
{
    if (!r || !cb)
        return EPODE_EINVAL;
    int rc = can_start(r);
    if (rc < 0)
        return rc;
    if (!r->form)
        return EPODE_ESTATE;
    r->timeout_ms = timeout_ms;
    if ((rc = start_submit(r, OP_SUBMIT, NULL)) < 0)
        return rc;
    r->cb = cb;
    r->user = user;
    return 0;
}

/* ---- answers ------------------------------------------------------------------------ */

/* Legacy fields of <query/> as a form of type form. */
static int legacy_form(epode_register_t *r, const epode_stanza_t *q, epode_form_t **out)
{
    epode_form_t *f = NULL;
    int rc = epode_form_new(r->mem, EPODE_FORM_FORM, &f);
    for (epode_stanza_t *c = epode_stanza_first_child(q); rc == 0 && c; c = epode_stanza_next(c)) {
        const char *ns = epode_stanza_get_ns(c), *name = epode_stanza_get_name(c);
        if (!ns || strcmp(ns, EPODE_NS_REGISTER) != 0 || !is_legacy_field(name) ||
            epode_form_get_field(f, name))
            continue;
        epode_form_field_type_t type = !strcmp(name, "password") ? EPODE_FIELD_TEXT_PRIVATE
                                       : !strcmp(name, "key")    ? EPODE_FIELD_HIDDEN
                                                                 : EPODE_FIELD_TEXT_SINGLE;
        epode_form_field_t *fl;
        const char *v = epode_stanza_get_text(c);
        if (!v)
            rc = EPODE_ENOMEM;
        else if ((rc = epode_form_add_field(f, name, type, NULL, &fl)) == 0) {
            epode_form_field_set_required(fl, type != EPODE_FIELD_HIDDEN);
            if (*v)
                rc = epode_form_field_set_value(fl, v);
        }
    }
    if (rc < 0) {
        epode_form_free(f);
        return rc == EPODE_EINVAL ? EPODE_EPROTOCOL : rc;
    }
    *out = f;
    return 0;
}

/* Keeps what a fetch brought; 0, or an error and a sentence. */
static int take_fetch(epode_register_t *r, epode_stanza_t *iq, const char **why)
{
    forget_fetch(r);
    epode_stanza_t *q = epode_stanza_find_child(iq, "query", EPODE_NS_REGISTER);
    if (!q) {
        *why = "the server's answer carries no registration query";
        return EPODE_EPROTOCOL;
    }
    int rc;
    epode_stanza_t *x = epode_form_find(q, NULL);
    if (x) {
        rc = epode_form_parse(r->mem, x, &r->form);
        r->data_form = rc == 0;
        if (rc < 0) {
            *why = rc == EPODE_ELIMIT ? "the server's registration form is over epode's limits"
                                      : "the server's registration form is malformed";
            return rc == EPODE_ENOMEM ? rc : rc == EPODE_ELIMIT ? rc : EPODE_EPROTOCOL;
        }
    } else if ((rc = legacy_form(r, q, &r->form)) < 0) {
        *why = "the server's registration fields are malformed";
        return rc;
    }
    r->registered = epode_stanza_find_child(q, "registered", EPODE_NS_REGISTER) != NULL;
    const char *t = epode_stanza_child_text(q, "instructions", EPODE_NS_REGISTER);
    if (t && !(r->instructions = im_strdup(r->mem, t)))
        return EPODE_ENOMEM;
    epode_stanza_t *oob = epode_stanza_find_child(q, "x", EPODE_NS_OOB);
    if (oob && (t = epode_stanza_child_text(oob, "url", EPODE_NS_OOB)) &&
        !(r->oob_url = im_strdup(r->mem, t)))
        return EPODE_ENOMEM;
    r->answer = epode_stanza_ref(iq);
    return 0;
}

static int set_field(epode_form_t *form, const char *var, const char *value)
{
    epode_form_field_t *f = epode_form_get_field(form, var);
    return f ? epode_form_field_set_value(f, value) : EPODE_ENOTFOUND;
}

/* epode_register_account(): the form came; fill it and submit. */
static void account_fill_and_submit(epode_register_t *r)
{
    int rc = set_field(r->form, "username", r->username);
    if (rc == 0 || rc == EPODE_ENOTFOUND)
        rc = set_field(r->form, "password", r->password);
    if (rc < 0 && rc != EPODE_ENOTFOUND) {
        finish(r, rc, EPODE_COND_NONE, "could not fill in the registration form");
        return;
    }
    int only_oob = r->oob_url && epode_form_field_count(r->form) == 0;
    int complete = epode_form_validate(r->form, NULL, NULL) == 0 && !only_oob;
    if (!complete && r->fill) {
        rc = r->fill(r, r->form, r->user);
        if (rc < 0) {
            finish(r, rc, EPODE_COND_NONE, "the application did not fill in the form");
            return;
        }
    } else if (only_oob) {
        snprintf(r->msg, sizeof r->msg, "the server asks for registration out of band: %.200s",
                 r->oob_url);
        finish(r, EPODE_EINVAL, EPODE_COND_NONE, r->msg);
        return;
    }
    const char *why = NULL;
    if ((rc = start_submit(r, OP_ACCOUNT_SUBMIT, &why)) < 0)
        finish(r, rc, EPODE_COND_NONE, why ? why : "could not send the registration");
}

/* The server's change-password form: fill it with what we know. */
static int resend_change_form(epode_register_t *r, epode_stanza_t *err)
{
    epode_stanza_t *q = epode_stanza_find_child(err, "query", EPODE_NS_REGISTER);
    epode_stanza_t *x = q ? epode_form_find(q, NULL) : NULL;
    if (!x || !r->old_password)
        return EPODE_ENOTFOUND;
    epode_form_t *form, *sub = NULL;
    int rc = epode_form_parse(r->mem, x, &form);
    if (rc < 0)
        return rc;
    if ((rc = set_field(form, "password", r->password)) == 0 &&
        (rc = set_field(form, "old_password", r->old_password)) == 0) {
        epode_form_field_t *u = epode_form_get_field(form, "username");
        if (u && !epode_form_field_value(u) && r->username)
            rc = epode_form_field_set_value(u, r->username);
    }
    if (rc == 0)
        rc = epode_form_submit(form, &sub);
    epode_form_free(form);
    if (rc < 0)
        return rc;
    epode_stanza_t *iq, *nq;
    if ((rc = query_new(r, "set", &iq, &nq)) == 0 && (rc = epode_form_add_to(sub, nq, NULL)) < 0)
        epode_stanza_unref(iq);
    epode_form_free(sub);
    return rc < 0 ? rc : send_request(r, iq, OP_CHANGE_FORM);
}

static void on_answer(epode_conn_t *conn, epode_stanza_t *result, int status, void *user)
{
    (void)conn;
    epode_register_t *r = user;
    enum op op = r->op;
    r->wait_id = 0;
    r->op = OP_NONE;
    if (!r->conn) /* the connection is being freed: forgotten, untold */
        return;
    if (status < 0 || !result) {
        if (status == EPODE_ETIMEDOUT)
            snprintf(r->msg, sizeof r->msg, "no answer from the server in time");
        else
            snprintf(r->msg, sizeof r->msg, "the connection ended before the server answered"
                     " (%.200s)", epode_conn_error_text(r->conn));
        finish(r, status < 0 ? status : EPODE_EPROTOCOL, EPODE_COND_NONE, r->msg);
        return;
    }
    const char *type = epode_stanza_get_type(result);
    if (type && strcmp(type, "error") == 0) {
        epode_stanza_cond_t cond;
        const char *text = NULL;
        if (epode_stanza_get_error(result, &cond, NULL, &text) < 0)
            cond = EPODE_COND_UNDEFINED_CONDITION;
        if (op == OP_CHANGE && resend_change_form(r, result) == 0) {
            r->op = OP_CHANGE_FORM; /* send_request set it; kept for clarity */
            return;
        }
        finish(r, 0, cond, text ? text : epode_register_cond_text(cond));
        return;
    }
    if (!type || strcmp(type, "result") != 0) {
        finish(r, EPODE_EPROTOCOL, EPODE_COND_NONE, "the server answered with a non-result IQ");
        return;
    }
    const char *why = NULL;
    int rc;
    switch (op) {
    case OP_FETCH:
    case OP_ACCOUNT_FETCH:
        if ((rc = take_fetch(r, result, &why)) < 0) {
            forget_fetch(r);
            finish(r, rc, EPODE_COND_NONE, why ? why : epode_strerror(rc));
            return;
        }
        if (op == OP_FETCH) {
            finish(r, 0, EPODE_COND_NONE, NULL);
            return;
        }
        r->op = OP_ACCOUNT_FETCH; /* still ours while filling */
        account_fill_and_submit(r);
        return;
    default:
        finish(r, 0, EPODE_COND_NONE, NULL);
        return;
    }
}

/* ---- the whole flows ------------------------------------------------------------------- */

static int keep_strings(epode_register_t *r, const char *username, const char *password,
                        const char *old_password)
{
    if ((username && !(r->username = im_strdup(r->mem, username))) ||
        (password && !(r->password = im_strdup(r->mem, password))) ||
        (old_password && !(r->old_password = im_strdup(r->mem, old_password)))) {
        forget_request(r);
        return EPODE_ENOMEM;
    }
    return 0;
}

int epode_register_account(epode_register_t *r, const char *username, const char *password,
                           epode_register_fill_cb fill, epode_register_cb done, void *user)
{
    if (!r || !username || !*username || !password || !*password || !done)
        return EPODE_EINVAL;
    int rc = can_start(r);
    if (rc < 0)
        return rc;
    if ((rc = keep_strings(r, username, password, NULL)) < 0)
        return rc;
    r->timeout_ms = 0;
    if (!offered(r))
        rc = epode_conn_add_timer(r->conn, 1, on_unoffered, r, &r->timed_id);
    else
        rc = start_fetch(r, OP_ACCOUNT_FETCH);
    if (rc < 0) {
        forget_request(r);
        return rc;
    }
    r->op = OP_ACCOUNT_FETCH;
    r->cb = done;
    r->fill = fill;
    r->user = user;
    return 0;
}

/* The localpart of the bound JID into a new string, or NULL. */
static char *own_username(epode_register_t *r)
{
    const char *bound = epode_conn_bound_jid(r->conn);
    if (!bound)
        return NULL;
    size_t at = strcspn(bound, "@/");
    return bound[at] == '@' ? im_strndup(r->mem, bound, at) : NULL;
}

int epode_register_change_password(epode_register_t *r, const char *old_password,
                                   const char *new_password, epode_register_cb cb, void *user)
{
    if (!r || !new_password || !*new_password || !cb)
        return EPODE_EINVAL;
    int rc = can_start(r);
    if (rc < 0)
        return rc;
    char *username = own_username(r);
    if (!username)
        return epode_conn_bound_jid(r->conn) ? EPODE_ENOMEM : EPODE_ESTATE;
    rc = keep_strings(r, NULL, new_password, old_password);
    r->username = username;
    epode_stanza_t *iq = NULL, *q, *el;
    if (rc == 0 && (rc = query_new(r, "set", &iq, &q)) == 0) {
        if ((rc = epode_stanza_add_child_new(q, "username", NULL, &el)) == 0 &&
            (rc = epode_stanza_add_text(el, username, (size_t)-1)) == 0 &&
            (rc = epode_stanza_add_child_new(q, "password", NULL, &el)) == 0)
            rc = epode_stanza_add_text(el, new_password, (size_t)-1);
        if (rc < 0)
            epode_stanza_unref(iq);
    }
    r->timeout_ms = 0;
    if (rc == 0)
        rc = send_request(r, iq, OP_CHANGE);
    if (rc < 0) {
        forget_request(r);
        return rc;
    }
    r->cb = cb;
    r->user = user;
    return 0;
}

int epode_register_remove(epode_register_t *r, epode_register_cb cb, void *user)
{
    if (!r || !cb)
        return EPODE_EINVAL;
    int rc = can_start(r);
    if (rc < 0)
        return rc;
    if (!epode_conn_bound_jid(r->conn))
        return EPODE_ESTATE;
    epode_stanza_t *iq, *q;
    if ((rc = query_new(r, "set", &iq, &q)) < 0)
        return rc;
    if ((rc = epode_stanza_add_child_new(q, "remove", NULL, NULL)) < 0) {
        epode_stanza_unref(iq);
        return rc;
    }
    r->timeout_ms = 0;
    if ((rc = send_request(r, iq, OP_REMOVE)) < 0)
        return rc;
    r->cb = cb;
    r->user = user;
    return 0;
}

/* ---- the fetched form ------------------------------------------------------------------ */

epode_form_t *epode_register_form(const epode_register_t *r) { return r ? r->form : NULL; }
int epode_register_is_data_form(const epode_register_t *r) { return r && r->form && r->data_form; }
int epode_register_is_registered(const epode_register_t *r) { return r ? r->registered : 0; }
const char *epode_register_instructions(const epode_register_t *r)
{
    return r ? r->instructions : NULL;
}
const char *epode_register_oob_url(const epode_register_t *r) { return r ? r->oob_url : NULL; }
const epode_stanza_t *epode_register_answer(const epode_register_t *r)
{
    return r ? r->answer : NULL;
}

int epode_register_set_credentials(epode_register_t *r, const char *username,
                                   const char *password)
{
    if (!r || !username || !password)
        return EPODE_EINVAL;
    if (!r->form)
        return EPODE_ESTATE;
    if (!epode_form_get_field(r->form, "username") || !epode_form_get_field(r->form, "password"))
        return EPODE_ENOTFOUND;
    int rc = set_field(r->form, "username", username);
    return rc < 0 ? rc : set_field(r->form, "password", password);
}

const char *epode_register_cond_text(epode_stanza_cond_t cond)
{
    switch (cond) {
    case EPODE_COND_NONE:
        return NULL;
    case EPODE_COND_CONFLICT:
        return "already registered";
    case EPODE_COND_NOT_ACCEPTABLE:
        return "required information missing or not acceptable";
    case EPODE_COND_NOT_ALLOWED:
        return "registration not allowed (closed, or a check such as a CAPTCHA failed)";
    case EPODE_COND_BAD_REQUEST:
        return "bad request (a required field is missing)";
    case EPODE_COND_FORBIDDEN:
        return "forbidden";
    case EPODE_COND_NOT_AUTHORIZED:
        return "not authorized";
    case EPODE_COND_RESOURCE_CONSTRAINT:
        return "too many registrations: try again later";
    case EPODE_COND_SERVICE_UNAVAILABLE:
        return "in-band registration is not offered";
    case EPODE_COND_FEATURE_NOT_IMPLEMENTED:
        return "the server does not implement in-band registration";
    default:
        return epode_stanza_cond_name(cond);
    }
}
