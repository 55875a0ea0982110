/* bindings/python/src/commands.c — epode._epode.Commands and
 * CommandSession: ad-hoc commands (XEP-0050, epode/commands.h) for the
 * Python layer (epode/_commands.py), which turns these callbacks into
 * decorators, sessions and awaitables.
 *
 * Forms cross the boundary as plain tuples, (type, title, instructions,
 * fields) with fields (var, type, label, desc, required, values,
 * options) and options (label, value): the Python layer makes
 * epode.Form of them. A CommandSession wraps a C session only while it
 * may be used: during the command's call, and while its answer is
 * pending; after that every method raises. */
#include "pyepode.h"

#include <string.h>

typedef struct creq {
    struct creq *next;
    struct CommandsObject *owner;
    PyObject *cb; /* strong; NULL once cleared */
} creq;

typedef struct SessionObject {
    PyObject_HEAD
    epode_command_session_t *s; /* NULL once it may not be used */
    struct SessionObject *next_pending;
    struct CommandsObject *owner; /* borrowed: a pending session is in its list */
} SessionObject;

typedef struct CommandsObject {
    PyObject_HEAD
    ConnectionObject *conn;
    PyObject *disco; /* the _epode.Disco whose C helper lists ours (kept alive) */
    PyObject *on_command, *on_access;
    epode_commands_t *cmds;
    creq *reqs;
    SessionObject *pending; /* sessions whose answer is pending (strong refs) */
    int dying;
    PyObject *weakrefs;
} CommandsObject;

static PyTypeObject CommandsType, SessionType;

/* ---- forms <-> tuples ------------------------------------------------------------ */

static PyObject *str_or_none(const char *s)
{
    return pyepode_str_or_none(s);
}

static PyObject *strings(size_t n, const char *(*at)(const void *, size_t), const void *obj)
{
    PyObject *t = PyTuple_New((Py_ssize_t)n);
    for (size_t i = 0; t && i < n; i++) {
        PyObject *o = PyUnicode_FromString(at(obj, i));
        if (!o)
            Py_CLEAR(t);
        else
            PyTuple_SET_ITEM(t, (Py_ssize_t)i, o);
    }
    return t;
}

static const char *value_at(const void *f, size_t i)
{
    return epode_form_field_value_at(f, i);
}

static const char *instr_at(const void *f, size_t i)
{
    return epode_form_instructions_at(f, i);
}

static PyObject *field_tuple(const epode_form_field_t *f)
{
    size_t nopt = epode_form_field_option_count(f);
    PyObject *opts = PyTuple_New((Py_ssize_t)nopt);
    for (size_t i = 0; opts && i < nopt; i++) {
        const char *label = NULL;
        const char *value = epode_form_field_option_at(f, i, &label);
        PyObject *o = Py_BuildValue("(NN)", str_or_none(label), str_or_none(value));
        if (!o)
            Py_CLEAR(opts);
        else
            PyTuple_SET_ITEM(opts, (Py_ssize_t)i, o);
    }
    if (!opts)
        return NULL;
    const char *type = epode_form_field_type_name(f);
    return Py_BuildValue("(NNNNNNN)", str_or_none(epode_form_field_var(f)),
                         str_or_none(type ? type : "text-single"),
                         str_or_none(epode_form_field_label(f)),
                         str_or_none(epode_form_field_desc(f)),
                         PyBool_FromLong(epode_form_field_required(f)),
                         strings(epode_form_field_value_count(f), value_at, f), opts);
}

static PyObject *form_tuple(const epode_form_t *form)
{
    if (!form)
        return Py_NewRef(Py_None);
    size_t n = epode_form_field_count(form);
    PyObject *fields = PyList_New((Py_ssize_t)n);
    for (size_t i = 0; fields && i < n; i++) {
        PyObject *f = field_tuple(epode_form_field_at(form, i));
        if (!f)
            Py_CLEAR(fields);
        else
            PyList_SET_ITEM(fields, (Py_ssize_t)i, f);
    }
    if (!fields)
        return NULL;
    return Py_BuildValue("(NNNN)", str_or_none(epode_form_type_name(epode_form_get_type(form))),
                         str_or_none(epode_form_get_title(form)),
                         strings(epode_form_instructions_count(form), instr_at, form), fields);
}

static int opt_utf8(PyObject *o, const char **out)
{
    *out = NULL;
    if (o == Py_None)
        return 0;
    if (!PyUnicode_Check(o)) {
        PyErr_SetString(PyExc_TypeError, "form strings must be str or None");
        return -1;
    }
    return (*out = PyUnicode_AsUTF8(o)) ? 0 : -1;
}

/* A C form from the tuple shape above; NULL with an exception. */
static epode_form_t *form_from(PyObject *t)
{
    PyObject *type_o, *title_o, *instr, *fields;
    if (!PyArg_ParseTuple(t, "OOOO;a form is (type, title, instructions, fields)", &type_o,
                          &title_o, &instr, &fields))
        return NULL;
    const char *type, *title;
    if (opt_utf8(type_o, &type) < 0 || opt_utf8(title_o, &title) < 0)
        return NULL;
    static const char *const types[] = {"form", "submit", "cancel", "result"};
    int ti = 0;
    for (int i = 0; type && i < 4; i++)
        if (strcmp(type, types[i]) == 0)
            ti = i + 1;
    if (!ti) {
        PyErr_SetString(PyExc_ValueError, "a form's type is 'form', 'submit', 'cancel' or 'result'");
        return NULL;
    }
    epode_form_t *form;
    int rc = epode_form_new(NULL, (epode_form_type_t)ti, &form);
    if (rc < 0) {
        pyepode_raise(rc, "form");
        return NULL;
    }
    if (title && (rc = epode_form_set_title(form, title)) < 0)
        goto fail;
    PyObject *seq = PySequence_Fast(instr, "instructions must be a sequence of str");
    if (!seq)
        goto fail_py;
    for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(seq); i++) {
        const char *line;
        if (opt_utf8(PySequence_Fast_GET_ITEM(seq, i), &line) < 0) {
            Py_DECREF(seq);
            goto fail_py;
        }
        if (line && (rc = epode_form_add_instructions(form, line)) < 0) {
            Py_DECREF(seq);
            goto fail;
        }
    }
    Py_DECREF(seq);
    seq = PySequence_Fast(fields, "fields must be a sequence");
    if (!seq)
        goto fail_py;
    for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(seq); i++) {
        PyObject *var_o, *ftype_o, *label_o, *desc_o, *values, *options;
        int required;
        if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(seq, i),
                              "OOOOpOO;a field is (var, type, label, desc, required, values, "
                              "options)",
                              &var_o, &ftype_o, &label_o, &desc_o, &required, &values, &options)) {
            Py_DECREF(seq);
            goto fail_py;
        }
        const char *var, *ftype, *label, *desc;
        if (opt_utf8(var_o, &var) < 0 || opt_utf8(ftype_o, &ftype) < 0 ||
            opt_utf8(label_o, &label) < 0 || opt_utf8(desc_o, &desc) < 0) {
            Py_DECREF(seq);
            goto fail_py;
        }
        epode_form_field_t *f;
        epode_form_field_type_t ft = epode_form_field_type_from_name(ftype);
        rc = epode_form_add_field(form, var, ft ? ft : EPODE_FIELD_TEXT_SINGLE, label, &f);
        if (rc == 0 && desc)
            rc = epode_form_field_set_desc(f, desc);
        if (rc == 0 && required)
            rc = epode_form_field_set_required(f, 1);
        PyObject *vs = rc == 0 ? PySequence_Fast(values, "values must be a sequence of str")
                               : NULL;
        for (Py_ssize_t k = 0; vs && rc == 0 && k < PySequence_Fast_GET_SIZE(vs); k++) {
            const char *v;
            if (opt_utf8(PySequence_Fast_GET_ITEM(vs, k), &v) < 0 || !v) {
                if (!PyErr_Occurred())
                    PyErr_SetString(PyExc_TypeError, "a field value must be str");
                Py_CLEAR(vs);
                break;
            }
            rc = epode_form_field_add_value(f, v);
        }
        PyObject *os = vs && rc == 0 ? PySequence_Fast(options, "options must be a sequence")
                                     : NULL;
        Py_XDECREF(vs);
        for (Py_ssize_t k = 0; os && rc == 0 && k < PySequence_Fast_GET_SIZE(os); k++) {
            PyObject *lo, *vo;
            const char *ol, *ov;
            if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(os, k), "OO;an option is (label, value)",
                                  &lo, &vo) ||
                opt_utf8(lo, &ol) < 0 || opt_utf8(vo, &ov) < 0 || !ov) {
                if (!PyErr_Occurred())
                    PyErr_SetString(PyExc_TypeError, "an option's value must be str");
                Py_CLEAR(os);
                break;
            }
            rc = epode_form_field_add_option(f, ol, ov);
        }
        int failed_py = rc == 0 && !os;
        Py_XDECREF(os);
        if (failed_py || rc < 0) {
            Py_DECREF(seq);
            if (failed_py)
                goto fail_py;
            goto fail;
        }
    }
    Py_DECREF(seq);
    return form;
fail:
    pyepode_raise(rc, "form");
fail_py:
    epode_form_free(form);
    return NULL;
}

/* A C form from None or a tuple; 0 with *out NULL for None. */
static int opt_form(PyObject *o, epode_form_t **out)
{
    *out = NULL;
    if (!o || o == Py_None)
        return 0;
    return (*out = form_from(o)) ? 0 : -1;
}

/* ---- life cycle helpers --------------------------------------------------------------- */

static void enter(CommandsObject *self)
{
    if (!self->dying)
        Py_INCREF(self);
}

static void leave(CommandsObject *self)
{
    if (self->dying)
        return;
    if (Py_REFCNT(self) > 1) {
        Py_DECREF(self);
        return;
    }
    pyepode_defer_decref(self->conn->context, (PyObject *)self);
}

static creq *creq_new(CommandsObject *owner, PyObject *cb)
{
    creq *q = PyMem_Calloc(1, sizeof *q);
    if (!q) {
        PyErr_NoMemory();
        return NULL;
    }
    q->owner = owner;
    q->cb = Py_XNewRef(cb == Py_None ? NULL : cb);
    q->next = owner->reqs;
    owner->reqs = q;
    return q;
}

static void creq_drop(creq *q)
{
    for (creq **pp = &q->owner->reqs; *pp; pp = &(*pp)->next)
        if (*pp == q) {
            *pp = q->next;
            break;
        }
    Py_XDECREF(q->cb);
    PyMem_Free(q);
}

static void call(CommandsObject *self, PyObject *cb, PyObject **args, size_t n, const char *where)
{
    int ok = cb != NULL;
    for (size_t i = 0; i < n; i++)
        if (!args[i])
            ok = 0;
    if (ok) {
        PyObject *r = pyepode_call(self->conn, cb, args, n, where);
        Py_XDECREF(r);
    } else if (cb && PyErr_Occurred() && !pyepode_keep_fatal(self->conn->context)) {
        pyepode_report((PyObject *)self->conn, where);
    }
    for (size_t i = 0; i < n; i++)
        Py_XDECREF(args[i]);
}

/* ---- CommandSession ------------------------------------------------------------------- */

static void unpend(SessionObject *so)
{
    CommandsObject *owner = so->owner;
    for (SessionObject **pp = owner ? &owner->pending : NULL; pp && *pp;
         pp = &(*pp)->next_pending)
        if (*pp == so) {
            *pp = so->next_pending;
            so->next_pending = NULL;
            so->owner = NULL;
            Py_DECREF(so); /* the list's reference */
            return;
        }
}

static epode_command_session_t *live(SessionObject *so)
{
    if (!so->s)
        PyErr_SetString(PyExc_RuntimeError,
                        "this command session is over (use it only in its command's call, "
                        "or until its pending answer is sent)");
    return so->s;
}

static PyObject *Session_get_str(SessionObject *so, void *which)
{
    epode_command_session_t *s = live(so);
    if (!s)
        return NULL;
    const char *v = which == (void *)0   ? epode_command_session_id(s)
                    : which == (void *)1 ? epode_command_session_node(s)
                                         : epode_command_session_requester(s);
    return str_or_none(v);
}

static PyObject *Session_get_stage(SessionObject *so, void *c)
{
    (void)c;
    epode_command_session_t *s = live(so);
    return s ? PyLong_FromUnsignedLong(epode_command_session_stage(s)) : NULL;
}

static PyObject *Session_get_live(SessionObject *so, void *c)
{
    (void)c;
    return PyBool_FromLong(so->s != NULL);
}

static PyObject *ret_rc(int rc, const char *where)
{
    if (rc < 0)
        return pyepode_raise(rc, where);
    Py_RETURN_NONE;
}

static PyObject *Session_set_form(SessionObject *so, PyObject *arg)
{
    epode_command_session_t *s = live(so);
    epode_form_t *f;
    if (!s || opt_form(arg, &f) < 0)
        return NULL;
    int rc = epode_command_session_set_form(s, f);
    epode_form_free(f);
    return ret_rc(rc, "set_form");
}

static int name_in(const char *s, const char *(*name)(int), int lo, int hi)
{
    for (int i = lo; s && i <= hi; i++)
        if (strcmp(name(i), s) == 0)
            return i;
    return 0;
}

static const char *note_name(int i)
{
    return epode_command_note_type_name((epode_command_note_type_t)i);
}

static const char *action_name(int i)
{
    return epode_command_action_name((epode_command_action_t)i);
}

static const char *error_name(int i)
{
    return epode_command_error_name((epode_command_error_t)i);
}

static PyObject *Session_add_note(SessionObject *so, PyObject *args)
{
    const char *type, *text;
    if (!PyArg_ParseTuple(args, "ss:add_note", &type, &text))
        return NULL;
    epode_command_session_t *s = live(so);
    if (!s)
        return NULL;
    int t = name_in(type, note_name, EPODE_COMMAND_NOTE_INFO, EPODE_COMMAND_NOTE_ERROR);
    if (!t) {
        PyErr_SetString(PyExc_ValueError, "a note's type is 'info', 'warn' or 'error'");
        return NULL;
    }
    return ret_rc(epode_command_session_add_note(s, (epode_command_note_type_t)t, text),
                  "add_note");
}

static PyObject *Session_set_actions(SessionObject *so, PyObject *args)
{
    PyObject *allowed;
    const char *def = NULL;
    if (!PyArg_ParseTuple(args, "O|z:set_actions", &allowed, &def))
        return NULL;
    epode_command_session_t *s = live(so);
    if (!s)
        return NULL;
    PyObject *seq = PySequence_Fast(allowed, "actions must be a sequence of str");
    if (!seq)
        return NULL;
    unsigned mask = 0;
    for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(seq); i++) {
        PyObject *o = PySequence_Fast_GET_ITEM(seq, i);
        const char *a = PyUnicode_Check(o) ? PyUnicode_AsUTF8(o) : NULL;
        int v = name_in(a, action_name, EPODE_COMMAND_NEXT, EPODE_COMMAND_COMPLETE);
        if (!v) {
            Py_DECREF(seq);
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_ValueError,
                                "allowed actions are 'next', 'prev' and 'complete'");
            return NULL;
        }
        mask |= EPODE_COMMAND_ALLOW(v);
    }
    Py_DECREF(seq);
    int d = def ? name_in(def, action_name, EPODE_COMMAND_NEXT, EPODE_COMMAND_COMPLETE) : 0;
    if (def && !d) {
        PyErr_SetString(PyExc_ValueError, "the default action is 'next', 'prev' or 'complete'");
        return NULL;
    }
    int rc = epode_command_session_set_actions(s, mask, (epode_command_action_t)d);
    if (rc == EPODE_EINVAL) {
        PyErr_SetString(PyExc_ValueError,
                        "allow at least one action, and a default among those allowed");
        return NULL;
    }
    return ret_rc(rc, "set_actions");
}

static PyObject *Session_set_error(SessionObject *so, PyObject *args)
{
    const char *cond, *specific = NULL, *text = NULL;
    if (!PyArg_ParseTuple(args, "s|zz:set_error", &cond, &specific, &text))
        return NULL;
    epode_command_session_t *s = live(so);
    if (!s)
        return NULL;
    epode_stanza_cond_t c = epode_stanza_cond_from_name(cond);
    int sp = specific ? name_in(specific, error_name, EPODE_COMMAND_ERROR_MALFORMED_ACTION,
                                EPODE_COMMAND_ERROR_SESSION_EXPIRED)
                      : 0;
    if (c == EPODE_COND_NONE || (specific && !sp)) {
        PyErr_Format(PyExc_ValueError, "unknown condition %s",
                     c == EPODE_COND_NONE ? cond : specific);
        return NULL;
    }
    return ret_rc(epode_command_session_set_error(s, c, (epode_command_error_t)sp, text),
                  "set_error");
}

static int status_of(const char *s)
{
    static const char *const names[] = {"executing", "completed", "canceled", "pending"};
    for (int i = 0; s && i < 4; i++)
        if (strcmp(names[i], s) == 0)
            return i + 1;
    return 0;
}

static PyObject *Session_reply(SessionObject *so, PyObject *arg)
{
    const char *st = PyUnicode_Check(arg) ? PyUnicode_AsUTF8(arg) : NULL;
    int v = status_of(st);
    if (!v || v == EPODE_COMMAND_PENDING) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_ValueError,
                            "status is 'executing', 'completed' or 'canceled'");
        return NULL;
    }
    epode_command_session_t *s = live(so);
    if (!s)
        return NULL;
    int rc = epode_command_session_reply(s, (epode_command_status_t)v);
    if (rc == 0) {
        so->s = NULL; /* answered: the next request makes a new wrapper */
        unpend(so);
    }
    return ret_rc(rc, "reply");
}

static PyMethodDef Session_methods[] = {
    {"set_form", (PyCFunction)Session_set_form, METH_O, "set_form(form_tuple_or_None)"},
    {"add_note", (PyCFunction)Session_add_note, METH_VARARGS, "add_note(type, text)"},
    {"set_actions", (PyCFunction)Session_set_actions, METH_VARARGS,
     "set_actions(allowed, default=None)"},
    {"set_error", (PyCFunction)Session_set_error, METH_VARARGS,
     "set_error(condition, specific=None, text=None)"},
    {"reply", (PyCFunction)Session_reply, METH_O,
     "reply(status)\n--\n\nSends a pending answer: 'executing', 'completed' or 'canceled'."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Session_getset[] = {
    {"id", (getter)Session_get_str, NULL, "The session id.", (void *)0},
    {"node", (getter)Session_get_str, NULL, "The command's node.", (void *)1},
    {"requester", (getter)Session_get_str, NULL, "The requester's full JID.", (void *)2},
    {"stage", (getter)Session_get_stage, NULL, "Requests before this one.", NULL},
    {"live", (getter)Session_get_live, NULL, "True while it may be used.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static void Session_dealloc(SessionObject *so)
{
    Py_TYPE(so)->tp_free((PyObject *)so);
}

static PyTypeObject SessionType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "epode._epode.CommandSession",
    .tp_basicsize = sizeof(SessionObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "One session of one of our commands (epode/commands.h), while usable.",
    .tp_dealloc = (destructor)Session_dealloc,
    .tp_methods = Session_methods,
    .tp_getset = Session_getset,
};

/* ---- Commands: offering ------------------------------------------------------------- */

static SessionObject *find_pending(CommandsObject *self, epode_command_session_t *s)
{
    for (SessionObject *so = self->pending; so; so = so->next_pending)
        if (so->s == s)
            return so;
    return NULL;
}

static int on_command(epode_commands_t *cmds, epode_command_session_t *s,
                      epode_command_action_t action, const epode_form_t *form, void *user)
{
    (void)cmds;
    CommandsObject *self = user;
    if (action == EPODE_COMMAND_CANCEL) {
        SessionObject *so = find_pending(self, s);
        if (so) { /* ended while its answer was pending */
            so->s = NULL;
            unpend(so);
        }
    }
    if (!self->on_command || self->dying)
        return action == EPODE_COMMAND_CANCEL ? 0 : -1;
    enter(self);
    SessionObject *so = PyObject_New(SessionObject, &SessionType);
    int status = -1;
    if (so) {
        so->s = s;
        so->next_pending = NULL;
        so->owner = NULL;
        PyObject *args[3] = {(PyObject *)so, PyUnicode_FromString(epode_command_action_name(action)),
                             form_tuple(form)};
        PyObject *r = NULL;
        if (args[1] && args[2])
            r = pyepode_call(self->conn, self->on_command, args, 3, "command");
        else if (!pyepode_keep_fatal(self->conn->context))
            pyepode_report((PyObject *)self->conn, "command");
        Py_XDECREF(args[1]);
        Py_XDECREF(args[2]);
        if (r && PyUnicode_Check(r))
            status = status_of(PyUnicode_AsUTF8(r));
        else if (r && r != Py_None && !pyepode_keep_fatal(self->conn->context)) {
            PyErr_SetString(PyExc_TypeError, "a command's dispatcher returns a status name");
            pyepode_report((PyObject *)self->conn, "command");
        }
        PyErr_Clear();
        Py_XDECREF(r);
        if (status == EPODE_COMMAND_PENDING && action != EPODE_COMMAND_CANCEL) {
            so->owner = self;
            so->next_pending = self->pending;
            self->pending = so; /* takes our reference */
        } else {
            so->s = NULL;
            Py_DECREF(so);
        }
    } else {
        PyErr_Clear();
    }
    leave(self);
    return status == 0 ? -1 : status;
}

static int on_access(epode_commands_t *cmds, const char *requester, const char *node, void *user)
{
    (void)cmds;
    CommandsObject *self = user;
    if (!self->on_access || self->dying)
        return 0;
    enter(self);
    PyObject *args[2] = {str_or_none(requester), PyUnicode_FromString(node)};
    int ok = 0;
    if (args[0] && args[1]) {
        PyObject *r = pyepode_call(self->conn, self->on_access, args, 2, "command access");
        if (r) {
            ok = PyObject_IsTrue(r) == 1;
            Py_DECREF(r);
        }
    }
    PyErr_Clear();
    Py_XDECREF(args[0]);
    Py_XDECREF(args[1]);
    leave(self);
    return ok;
}

static PyObject *Commands_add(CommandsObject *self, PyObject *args)
{
    const char *node, *name;
    if (!PyArg_ParseTuple(args, "ss:add", &node, &name))
        return NULL;
    if (!self->cmds)
        return pyepode_raise(EPODE_ESTATE, "add");
    int rc = epode_commands_add(self->cmds, node, name, on_command, self);
    if (rc == EPODE_ESTATE) {
        PyErr_Format(PyExc_ValueError, "a command with node %R is already offered",
                     PyTuple_GET_ITEM(args, 0));
        return NULL;
    }
    return ret_rc(rc, "add");
}

static PyObject *Commands_remove(CommandsObject *self, PyObject *args)
{
    const char *node;
    if (!PyArg_ParseTuple(args, "s:remove", &node))
        return NULL;
    int rc = self->cmds ? epode_commands_remove(self->cmds, node) : EPODE_ESTATE;
    if (rc == EPODE_ENOTFOUND) {
        PyErr_Format(PyExc_KeyError, "%s", node);
        return NULL;
    }
    return ret_rc(rc, "remove");
}

static PyObject *Commands_set_limits(CommandsObject *self, PyObject *args)
{
    unsigned per, max, timeout_ms;
    if (!PyArg_ParseTuple(args, "III:set_limits", &per, &max, &timeout_ms))
        return NULL;
    return ret_rc(epode_commands_set_limits(self->cmds, per, max, timeout_ms), "set_limits");
}

static PyObject *Commands_get_cb(CommandsObject *self, void *which)
{
    PyObject *v = which ? self->on_access : self->on_command;
    return Py_NewRef(v ? v : Py_None);
}

static int Commands_set_cb(CommandsObject *self, PyObject *v, void *which)
{
    if (v && v != Py_None && !PyCallable_Check(v)) {
        PyErr_SetString(PyExc_TypeError, "must be callable or None");
        return -1;
    }
    PyObject *nv = v && v != Py_None ? Py_NewRef(v) : NULL;
    if (which) {
        Py_XSETREF(self->on_access, nv);
        if (self->cmds)
            epode_commands_set_access_cb(self->cmds, nv ? on_access : NULL, self);
    } else {
        Py_XSETREF(self->on_command, nv);
    }
    return 0;
}

static PyObject *Commands_get_count(CommandsObject *self, void *c)
{
    (void)c;
    return PyLong_FromSize_t(epode_commands_session_count(self->cmds));
}

/* ---- Commands: running others' ------------------------------------------------------- */

static PyObject *notes_list(const epode_command_result_t *r)
{
    PyObject *l = PyList_New((Py_ssize_t)r->nnotes);
    for (size_t i = 0; l && i < r->nnotes; i++) {
        PyObject *t = Py_BuildValue("(ss)", epode_command_note_type_name(r->notes[i].type),
                                    r->notes[i].text);
        if (!t)
            Py_CLEAR(l);
        else
            PyList_SET_ITEM(l, (Py_ssize_t)i, t);
    }
    return l;
}

static PyObject *actions_tuple(unsigned mask)
{
    PyObject *l = PyList_New(0);
    for (int a = EPODE_COMMAND_NEXT; l && a <= EPODE_COMMAND_COMPLETE; a++) {
        if (!(mask & EPODE_COMMAND_ALLOW(a)))
            continue;
        PyObject *s = PyUnicode_FromString(epode_command_action_name((epode_command_action_t)a));
        if (!s || PyList_Append(l, s) < 0)
            Py_CLEAR(l);
        Py_XDECREF(s);
    }
    if (!l)
        return NULL;
    PyObject *t = PyList_AsTuple(l);
    Py_DECREF(l);
    return t;
}

static PyObject *result_tuple(const epode_command_result_t *r)
{
    return Py_BuildValue("(NNNNNNNN)", str_or_none(r->jid), str_or_none(r->node),
                         str_or_none(r->session_id),
                         str_or_none(epode_command_status_name(r->status)), notes_list(r),
                         form_tuple(r->form), actions_tuple(r->actions),
                         str_or_none(r->default_action
                                         ? epode_command_action_name(r->default_action)
                                         : NULL));
}

static PyObject *cond_or_none(epode_stanza_cond_t cond)
{
    return str_or_none(cond == EPODE_COND_NONE ? NULL : epode_stanza_cond_name(cond));
}

static void on_result(epode_commands_t *cmds, const epode_command_result_t *r, int status,
                      epode_stanza_cond_t cond, epode_command_error_t specific, const char *text,
                      void *user)
{
    (void)cmds;
    creq *q = user;
    CommandsObject *self = q->owner;
    enter(self);
    PyObject *cb = Py_XNewRef(q->cb);
    creq_drop(q);
    if (cb) {
        PyObject *args[5] = {PyLong_FromLong(status), cond_or_none(cond),
                             str_or_none(epode_command_error_name(specific)), str_or_none(text),
                             r ? result_tuple(r) : Py_NewRef(Py_None)};
        call(self, cb, args, 5, "command answer");
        Py_DECREF(cb);
    }
    leave(self);
}

static void on_list(epode_commands_t *cmds, const char *jid, const epode_disco_items_t *items,
                    int status, epode_stanza_cond_t cond, void *user)
{
    (void)cmds;
    (void)jid;
    creq *q = user;
    CommandsObject *self = q->owner;
    enter(self);
    PyObject *cb = Py_XNewRef(q->cb);
    creq_drop(q);
    if (cb) {
        PyObject *l = PyList_New(0);
        for (size_t i = 0; l && items && i < items->nitems; i++) {
            const epode_disco_item_t *it = &items->items[i];
            if (!it->node)
                continue; /* not a command */
            PyObject *t = Py_BuildValue("(NNN)", str_or_none(it->jid), str_or_none(it->node),
                                        str_or_none(it->name));
            if (!t || PyList_Append(l, t) < 0)
                Py_CLEAR(l);
            Py_XDECREF(t);
        }
        PyObject *args[3] = {PyLong_FromLong(status), cond_or_none(cond), l};
        call(self, cb, args, 3, "command list");
        Py_DECREF(cb);
    }
    leave(self);
}

static PyObject *Commands_list(CommandsObject *self, PyObject *args)
{
    const char *jid;
    PyObject *cb;
    if (!PyArg_ParseTuple(args, "sO:list", &jid, &cb))
        return NULL;
    if (!self->cmds)
        return pyepode_raise(EPODE_ESTATE, "list");
    creq *q = creq_new(self, cb);
    if (!q)
        return NULL;
    unsigned id = 0;
    int rc = epode_commands_list(self->cmds, jid, on_list, q, &id);
    if (rc < 0) {
        creq_drop(q);
        return pyepode_raise(rc, "list");
    }
    return PyLong_FromUnsignedLong(id);
}

static PyObject *Commands_run(CommandsObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"jid", "node", "callback", "session_id", "action", "form", NULL};
    const char *jid, *node, *sid = NULL, *action = "execute";
    PyObject *cb, *form_o = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "ssO|zsO:run", kwlist, &jid, &node, &cb, &sid,
                                     &action, &form_o))
        return NULL;
    if (!self->cmds)
        return pyepode_raise(EPODE_ESTATE, "command");
    int a = name_in(action, action_name, EPODE_COMMAND_EXECUTE, EPODE_COMMAND_CANCEL);
    if (!a) {
        PyErr_SetString(PyExc_ValueError,
                        "action is 'execute', 'next', 'prev', 'complete' or 'cancel'");
        return NULL;
    }
    epode_form_t *form;
    if (opt_form(form_o, &form) < 0)
        return NULL;
    creq *q = creq_new(self, cb);
    if (!q) {
        epode_form_free(form);
        return NULL;
    }
    unsigned id = 0;
    int rc = sid ? epode_commands_continue(self->cmds, jid, node, sid, (epode_command_action_t)a,
                                           form, on_result, q, &id)
                 : epode_commands_execute(self->cmds, jid, node, form, on_result, q, &id);
    epode_form_free(form);
    if (rc < 0) {
        creq_drop(q);
        return pyepode_raise(rc, "command");
    }
    return PyLong_FromUnsignedLong(id);
}

static PyObject *Commands_cancel(CommandsObject *self, PyObject *arg)
{
    unsigned long id = PyLong_AsUnsignedLong(arg);
    if (id == (unsigned long)-1 && PyErr_Occurred())
        return NULL;
    int rc = self->cmds ? epode_commands_cancel(self->cmds, (unsigned)id) : EPODE_ENOTFOUND;
    return PyBool_FromLong(rc == 0);
}

/* ---- the type ---------------------------------------------------------------------- */

static PyObject *Commands_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"connection", "disco", NULL};
    PyObject *conn_obj, *disco_obj = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|O:Commands", kwlist, &conn_obj, &disco_obj))
        return NULL;
    if (!PyObject_TypeCheck(conn_obj, &ConnectionType)) {
        PyErr_Format(PyExc_TypeError, "expected an epode Connection, not %.80s",
                     Py_TYPE(conn_obj)->tp_name);
        return NULL;
    }
    if (!((ConnectionObject *)conn_obj)->conn) {
        PyErr_SetString(PyExc_RuntimeError, "the connection has been freed");
        return NULL;
    }
    epode_disco_t *disco = NULL;
    if (disco_obj != Py_None && !(disco = pyepode_disco_of(disco_obj)))
        return NULL;
    CommandsObject *self = (CommandsObject *)type->tp_alloc(type, 0);
    if (!self)
        return NULL;
    self->conn = (ConnectionObject *)Py_NewRef(conn_obj);
    self->disco = disco ? Py_NewRef(disco_obj) : NULL;
    int rc = epode_commands_new(self->conn->conn, disco, &self->cmds);
    if (rc < 0) {
        Py_DECREF(self);
        return pyepode_raise(rc, "Commands");
    }
    return (PyObject *)self;
}

static int Commands_traverse(CommandsObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->conn);
    Py_VISIT(self->disco);
    Py_VISIT(self->on_command);
    Py_VISIT(self->on_access);
    for (creq *q = self->reqs; q; q = q->next)
        Py_VISIT(q->cb);
    return 0;
}

static int Commands_clear(CommandsObject *self)
{
    Py_CLEAR(self->on_command);
    Py_CLEAR(self->on_access);
    for (creq *q = self->reqs; q; q = q->next)
        Py_CLEAR(q->cb);
    return 0;
}

static void Commands_dealloc(CommandsObject *self)
{
    PyObject_GC_UnTrack(self);
    if (self->weakrefs)
        PyObject_ClearWeakRefs((PyObject *)self);
    self->dying = 1;
    epode_commands_free(self->cmds); /* sessions end; pending requests hear canceled */
    self->cmds = NULL;
    while (self->pending) {
        SessionObject *so = self->pending;
        so->s = NULL;
        unpend(so);
    }
    while (self->reqs) {
        creq *q = self->reqs;
        self->reqs = q->next;
        Py_XDECREF(q->cb);
        PyMem_Free(q);
    }
    Py_CLEAR(self->on_command);
    Py_CLEAR(self->on_access);
    Py_CLEAR(self->disco); /* after the C helper: it lists through the disco */
    Py_CLEAR(self->conn);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMethodDef Commands_methods[] = {
    {"add", (PyCFunction)Commands_add, METH_VARARGS,
     "add(node, name)\n--\n\nOffers a command; requests go to on_command."},
    {"remove", (PyCFunction)Commands_remove, METH_VARARGS, "remove(node)"},
    {"set_limits", (PyCFunction)Commands_set_limits, METH_VARARGS,
     "set_limits(per_requester, max_sessions, timeout_ms)\n--\n\n0: the default."},
    {"list", (PyCFunction)Commands_list, METH_VARARGS,
     "list(jid, callback)\n--\n\ncallback(status, condition, [(jid, node, name)])."},
    {"run", (PyCFunction)(void (*)(void))Commands_run, METH_VARARGS | METH_KEYWORDS,
     "run(jid, node, callback, session_id=None, action='execute', form=None)\n--\n\n"
     "callback(status, condition, specific, text, result_tuple_or_None)."},
    {"cancel", (PyCFunction)Commands_cancel, METH_O, "cancel(id)"},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Commands_getset[] = {
    {"on_command", (getter)Commands_get_cb, (setter)Commands_set_cb,
     "on_command(session, action, form_tuple) -> status name or 'pending'.", NULL},
    {"on_access", (getter)Commands_get_cb, (setter)Commands_set_cb,
     "on_access(requester, node) -> bool; None: our own account only.", (void *)1},
    {"session_count", (getter)Commands_get_count, NULL, "Open sessions.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject CommandsType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "epode._epode.Commands",
    .tp_basicsize = sizeof(CommandsObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "Commands(connection, disco=None)\n--\n\nAd-hoc commands (XEP-0050), "
              "epode/commands.h.",
    .tp_new = Commands_new,
    .tp_dealloc = (destructor)Commands_dealloc,
    .tp_traverse = (traverseproc)Commands_traverse,
    .tp_clear = (inquiry)Commands_clear,
    .tp_methods = Commands_methods,
    .tp_getset = Commands_getset,
    .tp_weaklistoffset = offsetof(CommandsObject, weakrefs),
};

int pyepode_commands_init(PyObject *m)
{
    if (PyType_Ready(&CommandsType) < 0 || PyType_Ready(&SessionType) < 0)
        return -1;
    if (PyModule_AddObjectRef(m, "Commands", (PyObject *)&CommandsType) < 0 ||
        PyModule_AddObjectRef(m, "CommandSession", (PyObject *)&SessionType) < 0)
        return -1;
    return 0;
}
