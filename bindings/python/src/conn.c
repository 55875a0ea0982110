/* conn.c — Connection: one epode connection with Python callbacks.
 *
 * Ownership. A Connection holds its Context. While connected (from
 * connect() until a DISCONNECTED after which no automatic reconnection
 * is scheduled, or until close()) it also holds a reference on itself,
 * so a client the application forgot about still finishes cleanly; the
 * reference is dropped through the context's deferred list, never from
 * inside epode. Every callback registered with epode points at an
 * `hent` that names its Connection (borrowed: the Connection outlives
 * its registrations — deallocation removes them first) and holds the
 * Python callable (visited by the GC).
 *
 * Callbacks. Handlers get a Message/Presence/Iq (or Stanza) wrapping the
 * received element. What they return: None/False — not handled; True —
 * handled; a Stanza — sent as the reply, handled; an awaitable — handed
 * to the connection's spawn hook with the stanza (the asyncio glue runs
 * it and, for an IQ request, sends its result as the reply). An
 * exception is reported to the error hook (or sys.unraisablehook) and an
 * IQ request whose handler raised is answered internal-server-error; a
 * KeyboardInterrupt or SystemExit stops the loop and propagates.
 */
#include "pyepode.h"

#include <math.h>

enum hkind { H_STANZA, H_IQ_WAIT, H_EVENT };

typedef struct pyepode_hent {
    struct pyepode_hent *next;
    ConnectionObject *owner; /* borrowed */
    PyObject *cb;            /* strong; NULL once cleared */
    unsigned id;             /* epode's id */
    enum hkind kind;
    int skip_archived;       /* a "message" handler: not for archive result wrappers */
} hent;

static hent *hent_add(ConnectionObject *self, PyObject *cb, enum hkind kind)
{
    hent *h = PyMem_Calloc(1, sizeof *h);
    if (!h) {
        PyErr_NoMemory();
        return NULL;
    }
    h->owner = self;
    h->cb = Py_XNewRef(cb);
    h->kind = kind;
    h->next = self->hents;
    self->hents = h;
    return h;
}

static void hent_unlink(ConnectionObject *self, hent *h)
{
    for (hent **pp = &self->hents; *pp; pp = &(*pp)->next) {
        if (*pp == h) {
            *pp = h->next;
            break;
        }
    }
    Py_CLEAR(h->cb);
    PyMem_Free(h);
}

static hent *hent_find(ConnectionObject *self, unsigned id)
{
    for (hent *h = self->hents; h; h = h->next)
        if (h->id == id)
            return h;
    return NULL;
}

/* ---- calling Python ---------------------------------------------------- */

static PyObject *str_spawn_missing;

static int is_awaitable(PyObject *r)
{
    return Py_TYPE(r)->tp_as_async && Py_TYPE(r)->tp_as_async->am_await &&
           !PyObject_TypeCheck(r, &StanzaType);
}

/* Hands an awaitable a callback returned to the spawn hook, with the
 * stanza it answers (or None). 0 if it will run; otherwise it is closed
 * (no "never awaited" warning on top), the failure reported, and -1. */
static int spawn_awaitable(ConnectionObject *self, PyObject *aw, PyObject *stanza,
                           const char *where)
{
    if (self->spawn) {
        PyObject *args[2] = {aw, stanza};
        PyObject *t = PyObject_Vectorcall(self->spawn, args, 2, NULL);
        if (t) {
            Py_DECREF(t);
            return 0;
        }
        if (!pyepode_keep_fatal(self->context))
            pyepode_report((PyObject *)self, where);
    } else {
        PyErr_SetObject(PyExc_RuntimeError, str_spawn_missing);
        pyepode_report((PyObject *)self, where);
    }
    PyObject *c = PyObject_CallMethod(aw, "close", NULL);
    if (!c)
        PyErr_Clear();
    Py_XDECREF(c);
    return -1;
}

PyObject *pyepode_call(ConnectionObject *owner, PyObject *cb, PyObject *const *args,
                       size_t nargs, const char *where)
{
    PyObject *r = PyObject_Vectorcall(cb, args, nargs, NULL);
    if (!r) {
        if (!pyepode_keep_fatal(owner->context))
            pyepode_report((PyObject *)owner, where);
        return NULL;
    }
    if (is_awaitable(r)) {
        /* An async callback: run it (asyncio) and let the caller see None,
         * "no decision now". */
        spawn_awaitable(owner, r, Py_None, where);
        Py_DECREF(r);
        return Py_NewRef(Py_None);
    }
    return r;
}

static const char *event_name(epode_conn_event_t ev)
{
    /* The C library names events, so every language uses the same words. */
    const char *n = epode_conn_event_name(ev);
    return n ? n : "unknown";
}

static const char *reason_name(epode_disconnect_reason_t r)
{
    return r == EPODE_REASON_NONE ? NULL : epode_disconnect_reason_name(r);
}

static void unpin(ConnectionObject *self)
{
    if (!self->pinned)
        return;
    self->pinned = 0;
    pyepode_defer_decref(self->context, (PyObject *)self);
}

/* Sends `reply` for `request`; reports failures. */
static void send_reply(ConnectionObject *self, PyObject *reply)
{
    int rc = epode_conn_send(self->conn, ((StanzaObject *)reply)->el);
    if (rc < 0 && rc != EPODE_ESTATE) {
        pyepode_raise(rc, "sending a handler's reply");
        pyepode_report((PyObject *)self, "handler reply");
    }
}

static int is_iq_request(epode_stanza_t *st)
{
    const char *type = epode_stanza_get_type(st);
    return strcmp(epode_stanza_get_name(st), "iq") == 0 && type &&
           (strcmp(type, "get") == 0 || strcmp(type, "set") == 0);
}

/* Answers the IQ request `st` with an error (never fails loudly: the
 * requester's timeout is the fallback). */
static void answer_error(ConnectionObject *self, epode_stanza_t *st, epode_stanza_cond_t cond,
                         epode_error_type_t type, const char *text)
{
    epode_stanza_t *err = NULL;
    if (epode_stanza_error_reply(st, cond, type, text, 0, &err) == 0) {
        epode_conn_send(self->conn, err);
        epode_stanza_unref(err);
    }
}

/* The answer an IQ handler asked for by raising StanzaError `exc`: its
 * condition (unknown ones become undefined-condition), type and text. */
static void answer_stanza_error(ConnectionObject *self, epode_stanza_t *st, PyObject *exc)
{
    PyObject *c = PyObject_GetAttrString(exc, "condition");
    PyObject *t = PyObject_GetAttrString(exc, "text");
    PyObject *ty = PyObject_GetAttrString(exc, "type");
    PyErr_Clear();
    epode_stanza_cond_t cond = EPODE_COND_UNDEFINED_CONDITION;
    epode_error_type_t type = EPODE_ERRTYPE_DEFAULT;
    const char *cs = c && PyUnicode_Check(c) ? PyUnicode_AsUTF8(c) : NULL;
    if (cs && epode_stanza_cond_from_name(cs) != EPODE_COND_NONE)
        cond = epode_stanza_cond_from_name(cs);
    if (ty && PyUnicode_Check(ty))
        type = epode_error_type_from_name(PyUnicode_AsUTF8(ty));
    const char *text = t && PyUnicode_Check(t) ? PyUnicode_AsUTF8(t) : NULL;
    PyErr_Clear();
    answer_error(self, st, cond, type, text);
    Py_XDECREF(c);
    Py_XDECREF(t);
    Py_XDECREF(ty);
}

static int on_stanza(epode_conn_t *conn, epode_stanza_t *st, void *user)
{
    (void)conn;
    hent *h = user;
    if (!h->cb)
        return EPODE_PASS;
    /* An archive query's <result/> wrapper is no message (epode/mam.h
     * unwraps it for client.mam), as for C's messaging helper. */
    if (h->skip_archived && epode_stanza_find_child(st, "result", "urn:xmpp:mam:2"))
        return EPODE_PASS;
    ConnectionObject *self = h->owner;
    Py_INCREF(self);
    PyObject *cb = Py_NewRef(h->cb);
    int verdict = EPODE_PASS;
    int request = is_iq_request(st);
    PyObject *arg = pyepode_stanza_wrap(st, 1);
    PyObject *r = arg ? PyObject_Vectorcall(cb, &arg, 1, NULL) : NULL;
    if (!r) {
        if (arg && request && PyErr_ExceptionMatches(pyepode_StanzaError)) {
            /* An intended answer, not a failure: no report. */
            PyObject *et, *ev, *tb;
            PyErr_Fetch(&et, &ev, &tb);
            PyErr_NormalizeException(&et, &ev, &tb);
            if (ev)
                answer_stanza_error(self, st, ev);
            Py_XDECREF(et);
            Py_XDECREF(ev);
            Py_XDECREF(tb);
            verdict = EPODE_HANDLED;
        } else if (!pyepode_keep_fatal(self->context)) {
            pyepode_report((PyObject *)self, "handler");
            if (arg && request) {
                answer_error(self, st, EPODE_COND_INTERNAL_SERVER_ERROR, EPODE_ERRTYPE_DEFAULT,
                             NULL);
                verdict = EPODE_HANDLED;
            }
        }
    } else if (r == Py_None || r == Py_False) {
        verdict = EPODE_PASS;
    } else if (PyObject_TypeCheck(r, &StanzaType)) {
        send_reply(self, r);
        verdict = EPODE_HANDLED;
    } else if (is_awaitable(r)) {
        /* A request must be answered even if the handler cannot run. */
        if (spawn_awaitable(self, r, arg, "handler") < 0 && request)
            answer_error(self, st, EPODE_COND_INTERNAL_SERVER_ERROR, EPODE_ERRTYPE_DEFAULT, NULL);
        verdict = EPODE_HANDLED;
    } else {
        int t = PyObject_IsTrue(r);
        if (t < 0 && !pyepode_keep_fatal(self->context))
            pyepode_report((PyObject *)self, "handler result");
        verdict = t > 0 ? EPODE_HANDLED : EPODE_PASS;
    }
    Py_XDECREF(r);
    Py_XDECREF(arg);
    Py_DECREF(cb);
    Py_DECREF(self);
    return verdict;
}

static void on_event(epode_conn_t *conn, epode_conn_event_t ev, void *user)
{
    hent *h = user;
    ConnectionObject *self = h->owner;
    Py_INCREF(self);
    if (ev == EPODE_CONN_DISCONNECTED) {
        self->closing = 0;
        /* The end, unless a reconnection is scheduled: unpin before the
         * application hears of it, so a connect() from its handler pins
         * the new attempt again (the deferred list keeps us alive). */
        if (!epode_conn_will_reconnect(conn))
            unpin(self);
    }
    if (h->cb) {
        PyObject *cb = Py_NewRef(h->cb);
        PyObject *name = PyUnicode_FromString(event_name(ev));
        if (name) {
            PyObject *r = pyepode_call(self, cb, &name, 1, "event handler");
            Py_XDECREF(r);
            Py_DECREF(name);
        } else if (!pyepode_keep_fatal(self->context)) {
            pyepode_report((PyObject *)self, "event handler");
        }
        Py_DECREF(cb);
    }
    Py_DECREF(self);
}

static void on_iq_answer(epode_conn_t *conn, epode_stanza_t *result, int status, void *user)
{
    (void)conn;
    hent *h = user;
    ConnectionObject *self = h->owner;
    Py_INCREF(self);
    PyObject *cb = h->cb ? Py_NewRef(h->cb) : NULL;
    hent_unlink(self, h); /* one answer only */
    if (cb) {
        PyObject *args[2] = {result ? pyepode_stanza_wrap(result, 1) : Py_NewRef(Py_None),
                             PyLong_FromLong(status)};
        if (args[0] && args[1]) {
            PyObject *r = pyepode_call(self, cb, args, 2, "IQ callback");
            Py_XDECREF(r);
        } else if (!pyepode_keep_fatal(self->context)) {
            pyepode_report((PyObject *)self, "IQ callback");
        }
        Py_XDECREF(args[0]);
        Py_XDECREF(args[1]);
        Py_DECREF(cb);
    }
    Py_DECREF(self);
}

static void on_ack(epode_conn_t *conn, int acked, const char *id, const char *xml, size_t len,
                   void *user)
{
    (void)conn;
    ConnectionObject *self = user;
    if (!self->on_ack)
        return;
    Py_INCREF(self);
    PyObject *cb = Py_NewRef(self->on_ack);
    PyObject *args[3] = {PyBool_FromLong(acked), pyepode_str_or_none(id),
                         PyUnicode_DecodeUTF8(xml, (Py_ssize_t)len, "replace")};
    if (args[0] && args[1] && args[2]) {
        /* epode may call this from inside close() (stanzas handed back):
         * whatever Python drops here waits until epode has returned. */
        self->context->depth++;
        PyObject *r = pyepode_call(self, cb, args, 3, "ack callback");
        self->context->depth--;
        Py_XDECREF(r);
    } else if (!pyepode_keep_fatal(self->context)) {
        pyepode_report((PyObject *)self, "ack callback");
    }
    for (int i = 0; i < 3; i++)
        Py_XDECREF(args[i]);
    Py_DECREF(cb);
    Py_DECREF(self);
}

/* ---- life cycle --------------------------------------------------------- */

static int check_open(ConnectionObject *self)
{
    if (!self->conn) {
        PyErr_SetString(PyExc_RuntimeError, "the connection has been freed");
        return -1;
    }
    return 0;
}

static PyObject *Connection_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"context", "jid", "password", NULL};
    ContextObject *ctx;
    const char *jid;
    PyObject *pw_obj = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O!s|O:Connection", kwlist, &ContextType, &ctx,
                                     &jid, &pw_obj))
        return NULL;
    const char *password;
    if (pyepode_opt_str(pw_obj, &password, "password") < 0)
        return NULL;
    ConnectionObject *self = (ConnectionObject *)type->tp_alloc(type, 0);
    if (!self)
        return NULL;
    self->context = (ContextObject *)Py_NewRef(ctx);
    self->connect_ms = 10000; /* epode's defaults (conn.h) */
    self->login_ms = 30000;
    int rc = epode_conn_new(ctx->ctx, &self->conn);
    if (rc == 0)
        rc = epode_conn_set_jid(self->conn, jid);
    if (rc == 0 && password)
        rc = epode_conn_set_password(self->conn, password);
    if (rc < 0) {
        Py_DECREF(self);
        return pyepode_raise(rc, rc == EPODE_EJID ? "the account JID" : "Connection");
    }
    hent *h = hent_add(self, NULL, H_EVENT);
    if (!h || (rc = epode_conn_add_event_cb(self->conn, on_event, h, &h->id)) < 0 ||
        (rc = epode_conn_set_ack_cb(self->conn, on_ack, self)) < 0) {
        Py_DECREF(self);
        return rc < 0 ? pyepode_raise(rc, "Connection") : NULL;
    }
    return (PyObject *)self;
}

static int Connection_traverse(ConnectionObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->context);
    Py_VISIT(self->on_error);
    Py_VISIT(self->on_ack);
    Py_VISIT(self->spawn);
    Py_VISIT(self->fast_store);
    Py_VISIT(self->fast_loaded);
    for (hent *h = self->hents; h; h = h->next)
        Py_VISIT(h->cb);
    return 0;
}

static int Connection_clear(ConnectionObject *self)
{
    /* The C connection stays until dealloc: only Python references go. */
    Py_CLEAR(self->on_error);
    Py_CLEAR(self->on_ack);
    Py_CLEAR(self->spawn);
    Py_CLEAR(self->fast_store); /* on_load/on_store see NULL: nothing stored */
    Py_CLEAR(self->fast_loaded);
    for (hent *h = self->hents; h; h = h->next)
        Py_CLEAR(h->cb);
    return 0;
}

static void Connection_dealloc(ConnectionObject *self)
{
    PyObject_GC_UnTrack(self);
    if (self->weakrefs)
        PyObject_ClearWeakRefs((PyObject *)self);
    Connection_clear(self);
    if (self->conn) {
        /* Nothing may call back into us after this point, even if the C
         * connection has to wait for the context to leave epode. */
        while (self->hents) {
            hent *h = self->hents;
            epode_conn_remove(self->conn, h->id);
            hent_unlink(self, h);
        }
        epode_conn_set_ack_cb(self->conn, NULL, NULL);
        pyepode_free_conn(self->context, self->conn);
        self->conn = NULL;
    }
    while (self->hents)
        hent_unlink(self, self->hents);
    Py_CLEAR(self->context);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* ---- options ------------------------------------------------------------ */

PyDoc_STRVAR(configure_doc,
"configure(*, server=None, port=0, tls=None, ca_file=None, client_cert=None,\n"
"          client_key=None, verify=None, mechanisms=None, keepalive=None,\n"
"          connect_timeout=None, login_timeout=None, stream_management=None,\n"
"          reconnect=None, reconnect_min=1.0, reconnect_max=60.0,\n"
"          resend_unacked=None, sm_ack_wait=1.0, sm_dead_link=30.0, register=None)\n--\n\n"
"Sets connection options (before connect()); None leaves one as it is.\n"
"resend_unacked: when a stream-management session cannot be resumed, send\n"
"its unconfirmed stanzas again on the fresh one instead of handing them back.\n"
"sm_ack_wait: seconds before asking for an ack; sm_dead_link: seconds without\n"
"an answer to that request after which the link counts as dead.\n"
"tls: 'required' (default), 'direct', 'optional' or 'disabled'. Times in seconds.\n"
"register: True stops the stream after TLS, before logging in, for in-band\n"
"registration (XEP-0077; READY comes unauthenticated); 'cleartext' allows it\n"
"without TLS too (insecure: tests and tunnels only); False: a normal login.");

static int ms_arg(PyObject *o, unsigned *out, const char *what)
{
    double v = PyFloat_AsDouble(o);
    if (v == -1.0 && PyErr_Occurred())
        return -1;
    if (!isfinite(v) || v < 0 || v > 4e6) {
        PyErr_Format(PyExc_ValueError, "%s out of range", what);
        return -1;
    }
    *out = (unsigned)(v * 1000.0 + 0.5);
    return 0;
}

static PyObject *Connection_configure(ConnectionObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"server", "port", "tls", "ca_file", "client_cert", "client_key",
                             "verify", "mechanisms", "keepalive", "connect_timeout",
                             "login_timeout", "stream_management", "reconnect",
                             "reconnect_min", "reconnect_max", "resend_unacked",
                             "sm_ack_wait", "sm_dead_link", "register", "component", NULL};
    PyObject *server = Py_None, *tls = Py_None, *ca = Py_None, *cert = Py_None,
             *key = Py_None, *verify = Py_None, *mechs = Py_None, *keepalive = Py_None,
             *cto = Py_None, *lto = Py_None, *sm = Py_None, *reconnect = Py_None,
             *rmin = Py_None, *rmax = Py_None, *resend = Py_None, *ack_wait = Py_None,
             *dead = Py_None, *reg = Py_None, *comp = Py_None;
    unsigned port = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|$OIOOOOOOOOOOOOOOOOOO:configure", kwlist,
                                     &server, &port, &tls, &ca, &cert, &key, &verify, &mechs,
                                     &keepalive, &cto, &lto, &sm, &reconnect, &rmin, &rmax,
                                     &resend, &ack_wait, &dead, &reg, &comp))
        return NULL;
    if (check_open(self) < 0)
        return NULL;
    const char *s;
    int rc = 0;
    if (server != Py_None || port) {
        if (pyepode_opt_str(server, &s, "server") < 0)
            return NULL;
        if (port > 65535) {
            PyErr_SetString(PyExc_ValueError, "port must be between 1 and 65535");
            return NULL;
        }
        if ((rc = epode_conn_set_server(self->conn, s, port)) < 0)
            return pyepode_raise(rc, "server");
    }
    if (tls != Py_None) {
        if (pyepode_opt_str(tls, &s, "tls") < 0)
            return NULL;
        epode_tls_mode_t mode;
        if (!strcmp(s, "required"))
            mode = EPODE_TLS_REQUIRED;
        else if (!strcmp(s, "direct"))
            mode = EPODE_TLS_DIRECT;
        else if (!strcmp(s, "optional"))
            mode = EPODE_TLS_OPTIONAL;
        else if (!strcmp(s, "disabled"))
            mode = EPODE_TLS_DISABLED;
        else {
            PyErr_Format(PyExc_ValueError,
                         "tls must be 'required', 'direct', 'optional' or 'disabled', not %R", tls);
            return NULL;
        }
        if ((rc = epode_conn_set_tls(self->conn, mode)) < 0)
            return pyepode_raise(rc, "tls");
    }
    if (ca != Py_None) {
        PyObject *path = PyOS_FSPath(ca);
        if (!path)
            return NULL;
        if (pyepode_opt_str(path, &s, "ca_file") < 0) {
            Py_DECREF(path);
            return NULL;
        }
        if ((rc = epode_conn_set_ca_file(self->conn, s)) < 0) {
            /* the library logs why; the exception names the file at least */
            char what[600];
            snprintf(what, sizeof what, "ca_file %s (missing, unreadable, or no PEM in it)", s);
            Py_DECREF(path);
            return pyepode_raise(rc, what);
        }
        Py_DECREF(path);
    }
    if (cert != Py_None || key != Py_None) {
        const char *c, *k;
        if (pyepode_opt_str(cert, &c, "client_cert") < 0 ||
            pyepode_opt_str(key, &k, "client_key") < 0)
            return NULL;
        if ((rc = epode_conn_set_client_cert(self->conn, c, k ? k : c)) < 0)
            return pyepode_raise(rc, "client_cert");
    }
    if (verify != Py_None) {
        int v = PyObject_IsTrue(verify);
        if (v < 0)
            return NULL;
        if ((rc = epode_conn_set_verify(self->conn, v)) < 0)
            return pyepode_raise(rc, "verify");
    }
    if (mechs != Py_None) {
        if (pyepode_opt_str(mechs, &s, "mechanisms") < 0)
            return NULL;
        if ((rc = epode_conn_set_mechanisms(self->conn, s)) < 0)
            return pyepode_raise(rc, "mechanisms");
    }
    unsigned ms;
    if (keepalive != Py_None) {
        if (ms_arg(keepalive, &ms, "keepalive") < 0)
            return NULL;
        if ((rc = epode_conn_set_keepalive(self->conn, ms / 1000)) < 0)
            return pyepode_raise(rc, "keepalive");
    }
    if (cto != Py_None || lto != Py_None) {
        /* One given alone keeps the other as it was. */
        unsigned c = self->connect_ms, l = self->login_ms;
        if ((cto != Py_None && ms_arg(cto, &c, "connect_timeout") < 0) ||
            (lto != Py_None && ms_arg(lto, &l, "login_timeout") < 0))
            return NULL;
        if (c == 0 || l == 0) {
            PyErr_SetString(PyExc_ValueError, "timeouts must be at least 1 ms");
            return NULL;
        }
        if ((rc = epode_conn_set_timeouts(self->conn, c, l)) < 0)
            return pyepode_raise(rc, "timeouts");
        self->connect_ms = c;
        self->login_ms = l;
    }
    if (sm != Py_None) {
        int v = PyObject_IsTrue(sm);
        if (v < 0)
            return NULL;
        if ((rc = epode_conn_set_stream_management(self->conn, v)) < 0)
            return pyepode_raise(rc, "stream_management");
    }
    if (reconnect == Py_None && (rmin != Py_None || rmax != Py_None))
        reconnect = self->reconnect ? Py_True : Py_False; /* new bounds, same switch */
    if (reconnect != Py_None) {
        unsigned lo = 1000, hi = 60000;
        if ((rmin != Py_None && ms_arg(rmin, &lo, "reconnect_min") < 0) ||
            (rmax != Py_None && ms_arg(rmax, &hi, "reconnect_max") < 0))
            return NULL;
        int on = PyObject_IsTrue(reconnect);
        if (on < 0)
            return NULL;
        if ((rc = epode_conn_set_reconnect(self->conn, on, lo, hi)) < 0)
            return pyepode_raise(rc, "reconnect");
        self->reconnect = on;
    }
    if (resend != Py_None || ack_wait != Py_None || dead != Py_None) {
        int on = self->sm_resend;
        unsigned wait = self->sm_wait_ms ? self->sm_wait_ms : 1000;
        unsigned dead_ms = self->sm_dead_ms ? self->sm_dead_ms : 30000;
        if (resend != Py_None && (on = PyObject_IsTrue(resend)) < 0)
            return NULL;
        if ((ack_wait != Py_None && ms_arg(ack_wait, &wait, "sm_ack_wait") < 0) ||
            (dead != Py_None && ms_arg(dead, &dead_ms, "sm_dead_link") < 0))
            return NULL;
        if ((rc = epode_conn_set_sm_policy(self->conn, 5, wait, dead_ms, on)) < 0)
            return pyepode_raise(rc, "sm policy");
        self->sm_resend = on;
        self->sm_wait_ms = wait;
        self->sm_dead_ms = dead_ms;
    }
    if (reg != Py_None) {
        int on, clear = PyUnicode_Check(reg) && PyUnicode_CompareWithASCIIString(reg, "cleartext") == 0;
        if (PyUnicode_Check(reg) && !clear) {
            PyErr_Format(PyExc_ValueError, "register must be True, False or 'cleartext', not %R", reg);
            return NULL;
        }
        if ((on = clear ? 1 : PyObject_IsTrue(reg)) < 0)
            return NULL;
        if ((rc = epode_conn_set_register(self->conn, on, clear)) < 0)
            return pyepode_raise(rc, "register");
    }
    if (comp != Py_None) {
        /* (domain, secret): XEP-0114 component mode (epode_conn_set_component) */
        const char *domain, *secret;
        if (!PyArg_ParseTuple(comp, "ss:component", &domain, &secret))
            return NULL;
        if ((rc = epode_conn_set_component(self->conn, domain, secret)) < 0)
            return pyepode_raise(rc, rc == EPODE_EJID ? "the component domain" : "component");
    }
    Py_RETURN_NONE;
}

/* ---- doing things --------------------------------------------------------- */

static PyObject *Connection_connect(ConnectionObject *self, PyObject *unused)
{
    (void)unused;
    if (check_open(self) < 0)
        return NULL;
    int rc = epode_conn_connect(self->conn);
    if (rc < 0)
        return pyepode_raise(rc, "connect");
    self->gen++;
    self->closing = 0;
    if (!self->pinned) {
        self->pinned = 1;
        Py_INCREF(self);
    }
    if (pyepode_raise_kept(self->context) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *Connection_close(ConnectionObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"status", NULL};
    PyObject *status_obj = Py_None;
    const char *status;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|O:close", kwlist, &status_obj) ||
        pyepode_opt_str(status_obj, &status, "status") < 0 || check_open(self) < 0)
        return NULL;
    if (self->closing)
        Py_RETURN_TRUE; /* already saying goodbye: let it finish */
    unsigned gen = self->gen;
    int rc = status && epode_conn_is_ready(self->conn) ? epode_presence_close(self->conn, status)
                                                       : epode_conn_close(self->conn);
    if (rc == EPODE_ESTATE) {
        /* Not connected: no DISCONNECTED event will come. (Waiting to
         * reconnect is different: the close stops the policy and a
         * DISCONNECTED with reason CLOSED follows on the next turn.) */
        if (gen == self->gen)
            unpin(self);
        if (pyepode_raise_kept(self->context) < 0)
            return NULL;
        return PyBool_FromLong(0);
    }
    if (rc < 0)
        return pyepode_raise(rc, "close");
    self->closing = 1;
    if (pyepode_raise_kept(self->context) < 0)
        return NULL;
    return PyBool_FromLong(1);
}

static PyObject *Connection_send(ConnectionObject *self, PyObject *arg)
{
    if (check_open(self) < 0)
        return NULL;
    epode_stanza_t *owned;
    epode_stanza_t *st = pyepode_stanza_arg(arg, &owned);
    if (!st)
        return NULL;
    int rc = epode_conn_send(self->conn, st);
    epode_stanza_unref(owned);
    if (rc < 0)
        return pyepode_raise(rc, "send");
    if (pyepode_raise_kept(self->context) < 0)
        return NULL;
    Py_RETURN_NONE;
}

PyDoc_STRVAR(send_message_doc,
"send_message(to, body, type='chat', *, id=None)\n--\n\n"
"Sends a <message/> with a <body/>; returns its id (a fresh random one\n"
"unless given). Raises epode.Error (EJID) for a malformed `to`, (ESTATE)\n"
"when not connected.");

static PyObject *Connection_send_message(ConnectionObject *self, PyObject *const *args,
                                         Py_ssize_t nargs, PyObject *kwnames)
{
    static const char *const names[] = {"to", "body", "type", "id"};
    PyObject *v[4] = {NULL, NULL, NULL, NULL};
    if (nargs > 3) {
        PyErr_SetString(PyExc_TypeError, "send_message() takes at most 3 positional arguments");
        return NULL;
    }
    for (Py_ssize_t i = 0; i < nargs; i++)
        v[i] = args[i];
    Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    for (Py_ssize_t i = 0; i < nkw; i++) {
        const char *k = PyUnicode_AsUTF8(PyTuple_GET_ITEM(kwnames, i));
        int j = 0;
        while (j < 4 && (!k || strcmp(k, names[j])))
            j++;
        if (j == 4 || v[j]) {
            PyErr_Format(PyExc_TypeError, "send_message() got an unexpected or repeated "
                                          "argument %R", PyTuple_GET_ITEM(kwnames, i));
            return NULL;
        }
        v[j] = args[nargs + i];
    }
    if (!v[0] || !v[1]) {
        PyErr_SetString(PyExc_TypeError, "send_message() needs `to` and `body`");
        return NULL;
    }
    const char *to, *body, *type = "chat", *id;
    if (pyepode_opt_str(v[0], &to, "to") < 0 || pyepode_opt_str(v[1], &body, "body") < 0 ||
        (v[2] && pyepode_opt_str(v[2], &type, "type") < 0) ||
        pyepode_opt_str(v[3], &id, "id") < 0 || check_open(self) < 0)
        return NULL;
    if (!to || !body) {
        PyErr_SetString(PyExc_TypeError, "send_message(): `to` and `body` must be str");
        return NULL;
    }
    if (type && strcmp(type, "chat") && strcmp(type, "normal") && strcmp(type, "groupchat") &&
        strcmp(type, "headline")) {
        PyErr_Format(PyExc_ValueError,
                     "type must be 'chat', 'normal', 'groupchat' or 'headline', not %R", v[2]);
        return NULL;
    }
    if (epode_jid_validate(to) < 0)
        return pyepode_raise(EPODE_EJID, "send_message to");
    epode_stanza_t *m = NULL;
    int rc = epode_stanza_new_message(NULL, type, to, body, &m);
    if (rc == 0)
        rc = id ? epode_stanza_set_id(m, id) : epode_stanza_set_new_id(m, &id);
    PyObject *result = NULL;
    if (rc == 0)
        result = PyUnicode_FromString(id);
    if (result && (rc = epode_conn_send(self->conn, m)) < 0)
        Py_CLEAR(result);
    epode_stanza_unref(m);
    if (rc < 0)
        return pyepode_raise(rc, "send_message");
    return result;
}

PyDoc_STRVAR(send_presence_doc,
"send_presence(show=None, status=None, priority=0, to=None)\n--\n\n"
"Sends our presence: broadcast (remembered, and sent again after an\n"
"automatic reconnection) or, with `to`, directed to one JID. show is\n"
"None (available), 'chat', 'away', 'xa', 'dnd' or 'unavailable'.");

static PyObject *Connection_send_presence(ConnectionObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"show", "status", "priority", "to", NULL};
    PyObject *show_obj = Py_None, *status_obj = Py_None, *to_obj = Py_None;
    int priority = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|OOiO:send_presence", kwlist, &show_obj,
                                     &status_obj, &priority, &to_obj))
        return NULL;
    const char *show_name, *status, *to;
    if (pyepode_opt_str(show_obj, &show_name, "show") < 0 ||
        pyepode_opt_str(status_obj, &status, "status") < 0 ||
        pyepode_opt_str(to_obj, &to, "to") < 0 || check_open(self) < 0)
        return NULL;
    epode_show_t show = EPODE_SHOW_AVAILABLE;
    if (show_name && strcmp(show_name, "available") != 0) {
        if (!strcmp(show_name, "unavailable"))
            show = EPODE_SHOW_UNAVAILABLE;
        else if (epode_show_from_name(show_name, &show) < 0) {
            PyErr_Format(PyExc_ValueError,
                         "show must be None, 'chat', 'away', 'xa', 'dnd' or 'unavailable', not %R",
                         show_obj);
            return NULL;
        }
    }
    if (priority < -128 || priority > 127) {
        PyErr_SetString(PyExc_ValueError, "priority must be between -128 and 127");
        return NULL;
    }
    if (to && epode_jid_validate(to) < 0)
        return pyepode_raise(EPODE_EJID, "send_presence to");
    int rc = to ? epode_presence_send_to(self->conn, to, show, status, priority)
                : epode_presence_send(self->conn, show, status, priority);
    if (rc < 0)
        return pyepode_raise(rc, "send_presence");
    Py_RETURN_NONE;
}

PyDoc_STRVAR(add_handler_doc,
"add_handler(callback, name=None, ns=None, type=None)\n--\n\n"
"Calls callback(stanza) for incoming stanzas named `name` ('message',\n"
"'presence', 'iq'; None: any) whose first child is in `ns` and whose type\n"
"is `type` (None: any). Returns an id for remove_handler(). Message\n"
"handlers (name 'message') do not see the <result/> wrappers of archive\n"
"queries (XEP-0313): the archive helper unwraps those.");

static PyObject *Connection_add_handler(ConnectionObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"callback", "name", "ns", "type", NULL};
    PyObject *cb, *o[3] = {Py_None, Py_None, Py_None};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|OOO:add_handler", kwlist, &cb, &o[0], &o[1],
                                     &o[2]))
        return NULL;
    const char *name, *ns, *type;
    if (pyepode_opt_str(o[0], &name, "name") < 0 || pyepode_opt_str(o[1], &ns, "ns") < 0 ||
        pyepode_opt_str(o[2], &type, "type") < 0 || check_open(self) < 0)
        return NULL;
    if (!PyCallable_Check(cb)) {
        PyErr_SetString(PyExc_TypeError, "the handler must be callable");
        return NULL;
    }
    hent *h = hent_add(self, cb, H_STANZA);
    if (!h)
        return NULL;
    h->skip_archived = name && strcmp(name, "message") == 0;
    int rc = epode_conn_add_handler(self->conn, name, ns, type, on_stanza, h, &h->id);
    if (rc < 0) {
        hent_unlink(self, h);
        return pyepode_raise(rc, "add_handler");
    }
    return PyLong_FromUnsignedLong(h->id);
}

static PyObject *Connection_remove_handler(ConnectionObject *self, PyObject *arg)
{
    unsigned long id = PyLong_AsUnsignedLong(arg);
    if (PyErr_Occurred() || check_open(self) < 0)
        return NULL;
    hent *h = hent_find(self, (unsigned)id);
    if (!h || h->kind == H_EVENT)
        return pyepode_raise(EPODE_ENOTFOUND, "remove_handler");
    int rc = epode_conn_remove(self->conn, h->id);
    hent_unlink(self, h);
    if (rc < 0)
        return pyepode_raise(rc, "remove_handler");
    Py_RETURN_NONE;
}

PyDoc_STRVAR(send_iq_doc,
"send_iq(iq, callback, timeout=30.0)\n--\n\n"
"Sends an IQ get/set and calls callback(answer, status) once: answer the\n"
"result or error stanza and status 0, or None and epode.ETIMEDOUT /\n"
"epode.ECANCELED. Returns an id for remove_handler() (which cancels).");

static PyObject *Connection_send_iq(ConnectionObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"iq", "callback", "timeout", NULL};
    PyObject *iq_obj, *cb, *timeout_obj = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OO|O:send_iq", kwlist, &iq_obj, &cb,
                                     &timeout_obj) ||
        check_open(self) < 0)
        return NULL;
    unsigned timeout_ms = 0;
    if (timeout_obj != Py_None) {
        if (ms_arg(timeout_obj, &timeout_ms, "timeout") < 0)
            return NULL;
        if (timeout_ms == 0)
            timeout_ms = 1;
    }
    if (!PyCallable_Check(cb)) {
        PyErr_SetString(PyExc_TypeError, "the callback must be callable");
        return NULL;
    }
    epode_stanza_t *owned;
    epode_stanza_t *st = pyepode_stanza_arg(iq_obj, &owned);
    if (!st)
        return NULL;
    const char *type = epode_stanza_get_type(st);
    if (strcmp(epode_stanza_get_name(st), "iq") != 0 || !type ||
        (strcmp(type, "get") != 0 && strcmp(type, "set") != 0)) {
        epode_stanza_unref(owned);
        PyErr_SetString(PyExc_ValueError, "send_iq() sends an <iq/> of type 'get' or 'set'");
        return NULL;
    }
    hent *h = hent_add(self, cb, H_IQ_WAIT);
    int rc = h ? epode_conn_send_iq(self->conn, st, timeout_ms, on_iq_answer, h, &h->id) : 0;
    epode_stanza_unref(owned);
    if (!h)
        return NULL;
    if (rc < 0) {
        hent_unlink(self, h);
        return pyepode_raise(rc, "send_iq");
    }
    return PyLong_FromUnsignedLong(h->id);
}

/* ---- properties ------------------------------------------------------------- */

static PyObject *get_bound_jid(ConnectionObject *self, void *c)
{
    (void)c;
    return self->conn ? pyepode_str_or_none(epode_conn_bound_jid(self->conn)) : Py_NewRef(Py_None);
}

static PyObject *get_ready(ConnectionObject *self, void *c)
{
    (void)c;
    return PyBool_FromLong(self->conn && epode_conn_is_ready(self->conn));
}

static PyObject *get_sm(ConnectionObject *self, void *c)
{
    (void)c;
    return PyBool_FromLong(self->conn && epode_conn_sm_enabled(self->conn));
}

static PyObject *get_closing(ConnectionObject *self, void *c)
{
    (void)c;
    return PyBool_FromLong(self->closing);
}

static PyObject *get_will_reconnect(ConnectionObject *self, void *c)
{
    (void)c;
    return PyBool_FromLong(self->conn && epode_conn_will_reconnect(self->conn));
}

static PyObject *get_reason(ConnectionObject *self, void *c)
{
    (void)c;
    return pyepode_str_or_none(self->conn ? reason_name(epode_conn_reason(self->conn)) : NULL);
}

static PyObject *get_security(ConnectionObject *self, void *c)
{
    (void)c;
    return pyepode_str_or_none(self->conn ? epode_conn_security(self->conn) : NULL);
}

static PyObject *get_pending_bytes(ConnectionObject *self, void *c)
{
    (void)c;
    return PyLong_FromSize_t(self->conn ? epode_conn_pending_bytes(self->conn) : 0);
}

static PyObject *get_draining(ConnectionObject *self, void *c)
{
    (void)c;
    return PyBool_FromLong(self->conn && epode_conn_is_draining(self->conn));
}

/* Back-pressure settings change at any time, unlike configure()'s. */
static PyObject *Connection_set_send_limits(ConnectionObject *self, PyObject *args,
                                            PyObject *kwds)
{
    static char *kwlist[] = {"max_unacked_stanzas", "max_pending_bytes", NULL};
    Py_ssize_t stanzas = 0, bytes = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|nn:set_send_limits", kwlist, &stanzas,
                                     &bytes) ||
        check_open(self) < 0)
        return NULL;
    if (stanzas < 0 || bytes < 0) {
        PyErr_SetString(PyExc_ValueError, "send limits cannot be negative");
        return NULL;
    }
    int rc = epode_conn_set_send_limits(self->conn, (size_t)stanzas, (size_t)bytes);
    if (rc < 0)
        return pyepode_raise(rc, "set_send_limits");
    Py_RETURN_NONE;
}

static PyObject *Connection_set_drain_threshold(ConnectionObject *self, PyObject *arg)
{
    Py_ssize_t low = PyLong_AsSsize_t(arg);
    if (low == -1 && PyErr_Occurred())
        return NULL;
    if (low < 0) {
        PyErr_SetString(PyExc_ValueError, "the low-water mark cannot be negative");
        return NULL;
    }
    if (check_open(self) < 0)
        return NULL;
    int rc = epode_conn_set_drain_threshold(self->conn, (size_t)low);
    if (rc < 0)
        return pyepode_raise(rc, "set_drain_threshold");
    Py_RETURN_NONE;
}

static PyObject *get_features(ConnectionObject *self, void *c)
{
    (void)c;
    const epode_stanza_t *f = self->conn ? epode_conn_stream_features(self->conn) : NULL;
    if (!f)
        Py_RETURN_NONE;
    /* A copy: the features element changes with the next stream. */
    epode_stanza_t *copy = NULL;
    int rc = epode_stanza_copy(f, &copy);
    if (rc < 0)
        return pyepode_raise(rc, "features");
    return pyepode_stanza_adopt(copy, 0);
}

static PyObject *get_last_error(ConnectionObject *self, void *c)
{
    (void)c;
    if (!self->conn || epode_conn_reason(self->conn) == EPODE_REASON_NONE)
        Py_RETURN_NONE;
    int code = epode_conn_error(self->conn);
    const char *cond = epode_conn_condition(self->conn);
    const char *text = epode_conn_error_text(self->conn);
    PyObject *exc = pyepode_make_error(code == EPODE_ETIMEDOUT ? pyepode_TimeoutError
                                                               : pyepode_Error,
                                       code, text, cond && *cond ? cond : NULL, text);
    if (!exc)
        return NULL;
    PyObject *reason = pyepode_str_or_none(reason_name(epode_conn_reason(self->conn)));
    PyObject *redirect = pyepode_str_or_none(epode_conn_redirect(self->conn));
    if (!reason || !redirect || PyObject_SetAttrString(exc, "reason", reason) < 0 ||
        PyObject_SetAttrString(exc, "redirect", redirect) < 0)
        Py_CLEAR(exc);
    Py_XDECREF(reason);
    Py_XDECREF(redirect);
    return exc;
}

static PyObject *get_hook(ConnectionObject *self, void *c)
{
    PyObject *cur = NULL;
    switch ((int)(intptr_t)c) {
    case 0: /* on_event: the event hent is the oldest one */
        for (hent *h = self->hents; h; h = h->next)
            if (h->kind == H_EVENT)
                cur = h->cb;
        break;
    case 1: cur = self->on_error; break;
    case 2: cur = self->on_ack; break;
    case 3: cur = self->spawn; break;
    }
    return Py_NewRef(cur ? cur : Py_None);
}

static int set_hook(ConnectionObject *self, PyObject *v, void *c)
{
    if (v == Py_None)
        v = NULL;
    if (v && !PyCallable_Check(v)) {
        PyErr_SetString(PyExc_TypeError, "the hook must be callable or None");
        return -1;
    }
    switch ((int)(intptr_t)c) {
    case 0:
        for (hent *h = self->hents; h; h = h->next)
            if (h->kind == H_EVENT)
                Py_XSETREF(h->cb, Py_XNewRef(v));
        break;
    case 1: Py_XSETREF(self->on_error, Py_XNewRef(v)); break;
    case 2: Py_XSETREF(self->on_ack, Py_XNewRef(v)); break;
    case 3: Py_XSETREF(self->spawn, Py_XNewRef(v)); break;
    }
    return 0;
}

static PyObject *get_context(ConnectionObject *self, void *c)
{
    (void)c;
    return Py_NewRef(self->context);
}

/* epode_conn_set_proxy: a bad URL is a ValueError (the URL not repeated:
 * it may hold a password); None or "" removes the proxy. */
static PyObject *Connection_set_proxy(ConnectionObject *self, PyObject *arg)
{
    const char *url;
    if (check_open(self) < 0 || pyepode_opt_str(arg, &url, "proxy") < 0)
        return NULL;
    int rc = epode_conn_set_proxy(self->conn, url);
    if (rc == EPODE_EINVAL) {
        PyErr_SetString(PyExc_ValueError,
                        "proxy must be socks5://[user:password@]host[:port] or "
                        "http://[user:password@]host[:port] (port 1-65535, no path)");
        return NULL;
    }
    if (rc < 0)
        return pyepode_raise(rc, "proxy");
    Py_RETURN_NONE;
}

/* epode_conn_set_websocket: a bad URL is a ValueError; "" goes back to
 * TCP; None asks for XEP-0156 discovery at the next connect; a build
 * without wslay (or, for None, without libcurl) is NotImplementedError. */
static PyObject *Connection_set_websocket(ConnectionObject *self, PyObject *arg)
{
    const char *url;
    if (check_open(self) < 0 || pyepode_opt_str(arg, &url, "websocket") < 0)
        return NULL;
    int rc = epode_conn_set_websocket(self->conn, url);
    if (rc == EPODE_EINVAL) {
        PyErr_SetString(PyExc_ValueError,
                        "websocket must be wss://host[:port][/path] or ws://host[:port][/path]");
        return NULL;
    }
    if (rc == EPODE_ENOTSUP) {
        PyErr_SetString(PyExc_NotImplementedError,
                        url ? "this epode was built without WebSocket support (wslay)"
                            : "this epode was built without HTTP support (libcurl), which "
                              "WebSocket discovery (XEP-0156) needs: give the URL");
        return NULL;
    }
    if (rc < 0)
        return pyepode_raise(rc, "websocket");
    Py_RETURN_NONE;
}

/* epode_conn_set_bosh: a bad URL is a ValueError; "" goes back to TCP;
 * None asks for XEP-0156 discovery at the next connect; a build without
 * libcurl is NotImplementedError. */
static PyObject *Connection_set_bosh(ConnectionObject *self, PyObject *arg)
{
    const char *url;
    if (check_open(self) < 0 || pyepode_opt_str(arg, &url, "bosh") < 0)
        return NULL;
    int rc = epode_conn_set_bosh(self->conn, url);
    if (rc == EPODE_EINVAL) {
        PyErr_SetString(PyExc_ValueError,
                        "bosh must be https://host[:port][/path] or http://host[:port][/path]");
        return NULL;
    }
    if (rc == EPODE_ENOTSUP) {
        PyErr_SetString(PyExc_NotImplementedError,
                        "this epode was built without BOSH support (libcurl)");
        return NULL;
    }
    if (rc < 0)
        return pyepode_raise(rc, "bosh");
    Py_RETURN_NONE;
}

static PyMethodDef Connection_methods[] = {
    {"configure", (PyCFunction)(void (*)(void))Connection_configure,
     METH_VARARGS | METH_KEYWORDS, configure_doc},
    {"set_proxy", (PyCFunction)Connection_set_proxy, METH_O,
     "set_proxy(url)\n--\n\nReaches the server through a proxy (before connect()):\n"
     "'socks5://[user:password@]host[:port]' (the proxy resolves the server's\n"
     "name: no DNS query for the XMPP domain, not even SRV) or\n"
     "'http://[user:password@]host[:port]' (HTTP CONNECT). None removes it.\n"
     "ValueError for a malformed URL."},
    {"set_websocket", (PyCFunction)Connection_set_websocket, METH_O,
     "set_websocket(url)\n--\n\nConnects over WebSocket (RFC 7395) instead of TCP (before\n"
     "connect()): 'wss://host[:port][/path]' (TLS, the certificate checked for\n"
     "host and the XMPP domain) or 'ws://…' (no TLS: loopback only). \"\" goes\n"
     "back to TCP; None finds the URL in the domain's host-meta (XEP-0156, wss://\n"
     "links only) at the next connect. ValueError for a malformed URL;\n"
     "NotImplementedError in a build without WebSocket support."},
    {"set_bosh", (PyCFunction)Connection_set_bosh, METH_O,
     "set_bosh(url)\n--\n\nConnects over BOSH (XEP-0124/0206: HTTP requests) instead of\n"
     "TCP (before connect()): 'https://host[:port][/path]' (TLS, the certificate\n"
     "checked for host and the XMPP domain) or 'http://…' (no TLS: loopback\n"
     "only). Replaces a WebSocket URL and vice versa; \"\" goes back to TCP;\n"
     "None finds the URL in the domain's host-meta (XEP-0156, https:// links\n"
     "only) at the next connect. ValueError for a malformed URL;\n"
     "NotImplementedError in a build without BOSH support (libcurl)."},
    {"connect", (PyCFunction)Connection_connect, METH_NOARGS,
     "connect()\n--\n\nStarts connecting; progress comes through on_event."},
    {"close", (PyCFunction)(void (*)(void))Connection_close, METH_VARARGS | METH_KEYWORDS,
     "close(status=None)\n--\n\nCloses the stream gracefully (with an unavailable presence\n"
     "carrying `status`, if given). True if a 'disconnected' event will follow,\n"
     "False if there was nothing to close."},
    {"send", (PyCFunction)Connection_send, METH_O,
     "send(stanza)\n--\n\nSends a Stanza (or XML text, parsed first)."},
    {"send_message", (PyCFunction)(void (*)(void))Connection_send_message,
     METH_FASTCALL | METH_KEYWORDS, send_message_doc},
    {"send_presence", (PyCFunction)(void (*)(void))Connection_send_presence,
     METH_VARARGS | METH_KEYWORDS, send_presence_doc},
    {"add_handler", (PyCFunction)(void (*)(void))Connection_add_handler,
     METH_VARARGS | METH_KEYWORDS, add_handler_doc},
    {"remove_handler", (PyCFunction)Connection_remove_handler, METH_O,
     "remove_handler(id)\n--\n\nRemoves a handler or cancels an IQ wait."},
    {"send_iq", (PyCFunction)(void (*)(void))Connection_send_iq, METH_VARARGS | METH_KEYWORDS,
     send_iq_doc},
    {"set_send_limits", (PyCFunction)(void (*)(void))Connection_set_send_limits,
     METH_VARARGS | METH_KEYWORDS,
     "set_send_limits(max_unacked_stanzas=0, max_pending_bytes=0)\n--\n\n"
     "Bounds what the connection holds for the server (0: the defaults, 100000\n"
     "stanzas and 16 MiB). At a bound send() raises epode.Error EBUSY and the\n"
     "stanza is not sent: await client.drain(), then send again. Any time."},
    {"set_drain_threshold", (PyCFunction)Connection_set_drain_threshold, METH_O,
     "set_drain_threshold(low_water)\n--\n\n"
     "The 'drained' event's low-water mark in unwritten bytes (default 65536)."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Connection_getset[] = {
    {"bound_jid", (getter)get_bound_jid, NULL, "The full JID bound, while ready.", NULL},
    {"ready", (getter)get_ready, NULL, "True once bound and until the stream ends.", NULL},
    {"sm_enabled", (getter)get_sm, NULL, "True while stream management is on.", NULL},
    {"closing", (getter)get_closing, NULL,
     "True from close() until the 'disconnected' event.", NULL},
    {"will_reconnect", (getter)get_will_reconnect, NULL,
     "True while an automatic reconnection is scheduled.", NULL},
    {"reason", (getter)get_reason, NULL,
     "After 'disconnected': 'closed', 'network', 'tls', 'auth', 'stream_error',\n"
     "'protocol' or 'timeout'.", NULL},
    {"last_error", (getter)get_last_error, NULL,
     "After 'disconnected': an epode.Error (not raised) saying why, or None.", NULL},
    {"security", (getter)get_security, NULL, "What protects the link ('TLS1.3 ...').", NULL},
    {"pending_bytes", (getter)get_pending_bytes, NULL, "Bytes queued, not yet written.", NULL},
    {"draining", (getter)get_draining, NULL,
     "True while a 'drained' event is due: over the low-water mark of unwritten\n"
     "bytes, or a send was refused with epode.EBUSY.", NULL},
    {"features", (getter)get_features, NULL, "A copy of the server's stream features.", NULL},
    {"context", (getter)get_context, NULL, "The Context.", NULL},
    {"on_event", (getter)get_hook, (setter)set_hook, "callable(event_name) or None.", (void *)0},
    {"on_error", (getter)get_hook, (setter)set_hook,
     "callable(exception) for exceptions raised by callbacks, or None.", (void *)1},
    {"on_ack", (getter)get_hook, (setter)set_hook,
     "callable(acked, id, xml) for stanzas sent under stream management.", (void *)2},
    {"spawn", (getter)get_hook, (setter)set_hook,
     "callable(awaitable, stanza) running what async handlers return.", (void *)3},
    {NULL, NULL, NULL, NULL, NULL},
};

PyTypeObject ConnectionType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "epode._epode.Connection",
    .tp_basicsize = sizeof(ConnectionObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "Connection(context, jid, password=None)\n--\n\n"
              "One epode connection (the low-level half of epode.Client).",
    .tp_new = Connection_new,
    .tp_dealloc = (destructor)Connection_dealloc,
    .tp_traverse = (traverseproc)Connection_traverse,
    .tp_clear = (inquiry)Connection_clear,
    .tp_methods = Connection_methods,
    .tp_getset = Connection_getset,
    .tp_weaklistoffset = offsetof(ConnectionObject, weakrefs),
};

int pyepode_conn_init_types(PyObject *m)
{
    str_spawn_missing = PyUnicode_InternFromString(
        "a handler returned an awaitable, but the connection is not run by asyncio");
    if (!str_spawn_missing || PyType_Ready(&ConnectionType) < 0 ||
        PyModule_AddObjectRef(m, "Connection", (PyObject *)&ConnectionType) < 0)
        return -1;
    return 0;
}
