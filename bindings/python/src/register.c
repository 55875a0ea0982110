/* register.c — epode._epode.Register: the in-band registration helper
 * (epode/register.h, XEP-0077) for Python. One request at a time, as in
 * C; its callback is taken out of the object before it runs, so the
 * callback may start the next request. The pure-Python layer
 * (epode/_register.py) turns these callbacks into awaitables and the
 * fetched form into a RegistrationForm. */
#include "pyepode.h"

#include <stddef.h>

typedef struct {
    PyObject_HEAD
    ConnectionObject *conn; /* strong, kept until dealloc */
    epode_register_t *reg;
    PyObject *cb;           /* the pending request's callback, or NULL */
    int dying;
    PyObject *weakrefs;
} RegisterObject;

static PyTypeObject RegisterType;

/* Around a callback from epode: alive until epode has returned. */
static void enter(RegisterObject *self)
{
    if (!self->dying)
        Py_INCREF(self);
}

static void leave(RegisterObject *self)
{
    if (self->dying)
        return;
    if (Py_REFCNT(self) > 1) {
        Py_DECREF(self);
        return;
    }
    pyepode_defer_decref(self->conn->context, (PyObject *)self);
}

static void on_done(epode_register_t *reg, int status, epode_stanza_cond_t cond, const char *text,
                    void *user)
{
    (void)reg;
    RegisterObject *self = user;
    enter(self);
    PyObject *cb = self->cb; /* ours now: the callback may start another request */
    self->cb = NULL;
    if (cb) {
        PyObject *args[3] = {
            PyLong_FromLong(status),
            pyepode_str_or_none(cond == EPODE_COND_NONE ? NULL : epode_stanza_cond_name(cond)),
            pyepode_str_or_none(text)};
        if (args[0] && args[1] && args[2]) {
            PyObject *r = pyepode_call(self->conn, cb, args, 3, "registration callback");
            Py_XDECREF(r);
        } else if (!pyepode_keep_fatal(self->conn->context)) {
            pyepode_report((PyObject *)self->conn, "registration callback");
        }
        for (int i = 0; i < 3; i++)
            Py_XDECREF(args[i]);
        Py_DECREF(cb);
    }
    leave(self);
}

static PyObject *Register_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"connection", NULL};
    PyObject *conn;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O:Register", kwlist, &conn))
        return NULL;
    if (!PyObject_TypeCheck(conn, &ConnectionType)) {
        PyErr_Format(PyExc_TypeError, "expected an epode Connection, not %.80s",
                     Py_TYPE(conn)->tp_name);
        return NULL;
    }
    if (!((ConnectionObject *)conn)->conn) {
        PyErr_SetString(PyExc_RuntimeError, "the connection has been freed");
        return NULL;
    }
    RegisterObject *self = (RegisterObject *)type->tp_alloc(type, 0);
    if (!self)
        return NULL;
    self->conn = (ConnectionObject *)Py_NewRef(conn);
    int rc = epode_register_new(self->conn->conn, &self->reg);
    if (rc < 0) {
        Py_DECREF(self);
        return pyepode_raise(rc, "Register");
    }
    return (PyObject *)self;
}

static int Register_traverse(RegisterObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->conn);
    Py_VISIT(self->cb);
    return 0;
}

static int Register_clear(RegisterObject *self)
{
    Py_CLEAR(self->cb);
    return 0;
}

static void Register_dealloc(RegisterObject *self)
{
    PyObject_GC_UnTrack(self);
    if (self->weakrefs)
        PyObject_ClearWeakRefs((PyObject *)self);
    self->dying = 1;
    epode_register_free(self->reg); /* a pending request is forgotten, untold */
    Py_CLEAR(self->cb);
    Py_CLEAR(self->conn);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int check(RegisterObject *self, PyObject *cb)
{
    if (!self->conn->conn) {
        PyErr_SetString(PyExc_RuntimeError, "the connection has been freed");
        return -1;
    }
    if (!PyCallable_Check(cb)) {
        PyErr_SetString(PyExc_TypeError, "the callback must be callable");
        return -1;
    }
    return 0;
}

/* After starting a request: keep its callback, or raise. */
static PyObject *started(RegisterObject *self, int rc, PyObject *cb, const char *where)
{
    if (rc < 0)
        return pyepode_raise(rc, where);
    Py_XSETREF(self->cb, Py_NewRef(cb));
    if (pyepode_raise_kept(self->conn->context) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *Register_fetch(RegisterObject *self, PyObject *args)
{
    PyObject *cb;
    double timeout = 30.0;
    if (!PyArg_ParseTuple(args, "O|d:fetch", &cb, &timeout) || check(self, cb) < 0)
        return NULL;
    if (!(timeout > 0 && timeout < 4e6)) {
        PyErr_SetString(PyExc_ValueError, "timeout out of range");
        return NULL;
    }
    int rc = epode_register_fetch(self->reg, (unsigned)(timeout * 1000.0 + 0.5), on_done, self);
    return started(self, rc, cb, "fetch");
}

static PyObject *Register_submit(RegisterObject *self, PyObject *args)
{
    PyObject *cb;
    double timeout = 30.0;
    if (!PyArg_ParseTuple(args, "O|d:submit", &cb, &timeout) || check(self, cb) < 0)
        return NULL;
    if (!(timeout > 0 && timeout < 4e6)) {
        PyErr_SetString(PyExc_ValueError, "timeout out of range");
        return NULL;
    }
    int rc = epode_register_submit(self->reg, (unsigned)(timeout * 1000.0 + 0.5), on_done, self);
    return started(self, rc, cb, "submit");
}

static PyObject *Register_change_password(RegisterObject *self, PyObject *args)
{
    const char *new_pw, *old_pw = NULL;
    PyObject *cb, *old = Py_None;
    if (!PyArg_ParseTuple(args, "sO|O:change_password", &new_pw, &cb, &old) ||
        check(self, cb) < 0 || pyepode_opt_str(old, &old_pw, "old_password") < 0)
        return NULL;
    int rc = epode_register_change_password(self->reg, old_pw, new_pw, on_done, self);
    return started(self, rc, cb, "change_password");
}

static PyObject *Register_remove(RegisterObject *self, PyObject *cb)
{
    if (check(self, cb) < 0)
        return NULL;
    int rc = epode_register_remove(self->reg, on_done, self);
    return started(self, rc, cb, "unregister");
}

/* (var, type, label, required, values, options, media) */
static PyObject *field_tuple(const epode_form_field_t *f)
{
    size_t nv = epode_form_field_value_count(f), no = epode_form_field_option_count(f);
    PyObject *values = PyList_New((Py_ssize_t)nv), *options = PyList_New((Py_ssize_t)no);
    PyObject *media = NULL;
    int bad = !values || !options;
    for (size_t i = 0; !bad && i < nv; i++) {
        PyObject *v = PyUnicode_FromString(epode_form_field_value_at(f, i));
        if (!v)
            bad = 1;
        else
            PyList_SET_ITEM(values, (Py_ssize_t)i, v);
    }
    for (size_t i = 0; !bad && i < no; i++) {
        const char *label;
        const char *value = epode_form_field_option_at(f, i, &label);
        PyObject *o = Py_BuildValue("(NN)", pyepode_str_or_none(label),
                                    PyUnicode_FromString(value));
        if (!o)
            bad = 1;
        else
            PyList_SET_ITEM(options, (Py_ssize_t)i, o);
    }
    const epode_stanza_t *m = epode_form_field_media(f);
    if (!bad)
        media = m ? pyepode_stanza_wrap((epode_stanza_t *)m, 0) : Py_NewRef(Py_None);
    if (bad || !media) {
        Py_XDECREF(values);
        Py_XDECREF(options);
        return NULL;
    }
    const char *type = epode_form_field_type_name(f);
    return Py_BuildValue("(NsNONNN)", pyepode_str_or_none(epode_form_field_var(f)),
                         type ? type : "text-single", pyepode_str_or_none(epode_form_field_label(f)),
                         epode_form_field_required(f) ? Py_True : Py_False, values, options, media);
}

/* form() -> None before a fetch, else a dict: fields (list of tuples),
 * title, instructions, oob_url, registered, data_form, form_type, answer. */
static PyObject *Register_form(RegisterObject *self, PyObject *unused)
{
    (void)unused;
    const epode_form_t *form = epode_register_form(self->reg);
    if (!form)
        Py_RETURN_NONE;
    size_t n = epode_form_field_count(form);
    PyObject *fields = PyList_New((Py_ssize_t)n);
    for (size_t i = 0; fields && i < n; i++) {
        PyObject *t = field_tuple(epode_form_field_at(form, i));
        if (!t)
            Py_CLEAR(fields);
        else
            PyList_SET_ITEM(fields, (Py_ssize_t)i, t);
    }
    if (!fields)
        return NULL;
    /* the form's own instructions, else the query's */
    PyObject *instr;
    size_t ni = epode_form_instructions_count(form);
    if (ni) {
        PyObject *lines = PyList_New((Py_ssize_t)ni), *sep = NULL;
        for (size_t i = 0; lines && i < ni; i++) {
            PyObject *l = PyUnicode_FromString(epode_form_instructions_at(form, i));
            if (!l)
                Py_CLEAR(lines);
            else
                PyList_SET_ITEM(lines, (Py_ssize_t)i, l);
        }
        sep = lines ? PyUnicode_FromString("\n") : NULL;
        instr = sep ? PyUnicode_Join(sep, lines) : NULL;
        Py_XDECREF(sep);
        Py_XDECREF(lines);
    } else {
        instr = pyepode_str_or_none(epode_register_instructions(self->reg));
    }
    const epode_stanza_t *answer = epode_register_answer(self->reg);
    PyObject *ans = answer ? pyepode_stanza_wrap((epode_stanza_t *)answer, 1) : Py_NewRef(Py_None);
    return Py_BuildValue("{sNsNsNsNsOsOsNsN}", "fields", fields, "title",
                         pyepode_str_or_none(epode_form_get_title(form)), "instructions", instr,
                         "oob_url", pyepode_str_or_none(epode_register_oob_url(self->reg)),
                         "registered", epode_register_is_registered(self->reg) ? Py_True : Py_False,
                         "data_form", epode_register_is_data_form(self->reg) ? Py_True : Py_False,
                         "form_type", pyepode_str_or_none(epode_form_get_form_type(form)),
                         "answer", ans);
}

/* set_value(var, value): a str, a list of str, or None (no value). */
static PyObject *Register_set_value(RegisterObject *self, PyObject *args)
{
    const char *var;
    PyObject *value;
    if (!PyArg_ParseTuple(args, "sO:set_value", &var, &value))
        return NULL;
    epode_form_t *form = epode_register_form(self->reg);
    epode_form_field_t *f = form ? epode_form_get_field(form, var) : NULL;
    if (!f) {
        PyErr_SetString(PyExc_KeyError, var);
        return NULL;
    }
    int rc = 0;
    if (value == Py_None) {
        epode_form_field_clear_values(f);
    } else if (PyUnicode_Check(value)) {
        const char *s;
        if (pyepode_opt_str(value, &s, "value") < 0)
            return NULL;
        rc = epode_form_field_set_value(f, s);
    } else if (PyList_Check(value) || PyTuple_Check(value)) {
        PyObject *seq = PySequence_Fast(value, "values");
        if (!seq)
            return NULL;
        /* check them all first: a failure leaves the values as they were */
        Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
        for (Py_ssize_t i = 0; i < n; i++) {
            const char *s;
            PyObject *o = PySequence_Fast_GET_ITEM(seq, i);
            if (!PyUnicode_Check(o) || pyepode_opt_str(o, &s, "value") < 0) {
                if (!PyErr_Occurred())
                    PyErr_SetString(PyExc_TypeError, "form values are str");
                Py_DECREF(seq);
                return NULL;
            }
        }
        epode_form_field_clear_values(f);
        for (Py_ssize_t i = 0; rc == 0 && i < n; i++) {
            const char *s;
            pyepode_opt_str(PySequence_Fast_GET_ITEM(seq, i), &s, "value");
            rc = epode_form_field_add_value(f, s);
        }
        Py_DECREF(seq);
    } else {
        PyErr_SetString(PyExc_TypeError, "form values are str");
        return NULL;
    }
    if (rc < 0)
        return pyepode_raise(rc, "set_value");
    Py_RETURN_NONE;
}

static PyObject *Register_cond_text(PyObject *cls, PyObject *arg)
{
    (void)cls;
    const char *name;
    if (pyepode_opt_str(arg, &name, "condition") < 0)
        return NULL;
    epode_stanza_cond_t cond = epode_stanza_cond_from_name(name);
    return pyepode_str_or_none(cond == EPODE_COND_NONE ? name : epode_register_cond_text(cond));
}

static PyMethodDef Register_methods[] = {
    {"fetch", (PyCFunction)Register_fetch, METH_VARARGS,
     "fetch(callback, timeout=30.0)\n--\n\nAsks for the registration form; "
     "callback(status, condition, text)."},
    {"submit", (PyCFunction)Register_submit, METH_VARARGS,
     "submit(callback, timeout=30.0)\n--\n\nSends the fetched form back with its values."},
    {"change_password", (PyCFunction)Register_change_password, METH_VARARGS,
     "change_password(new, callback, old=None)\n--\n\nChanges the logged-in account's password."},
    {"remove", (PyCFunction)Register_remove, METH_O,
     "remove(callback)\n--\n\nRemoves the logged-in account."},
    {"form", (PyCFunction)Register_form, METH_NOARGS,
     "form()\n--\n\nThe fetched form as a dict, or None."},
    {"set_value", (PyCFunction)Register_set_value, METH_VARARGS,
     "set_value(var, value)\n--\n\nSets a field of the fetched form (str, list of str, None)."},
    {"cond_text", (PyCFunction)Register_cond_text, METH_O | METH_CLASS,
     "cond_text(condition)\n--\n\nXEP-0077's phrase for a condition (epode_register_cond_text)."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject RegisterType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "epode._epode.Register",
    .tp_basicsize = sizeof(RegisterObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "Register(connection)\n--\n\nIn-band registration (XEP-0077), epode/register.h.",
    .tp_new = Register_new,
    .tp_dealloc = (destructor)Register_dealloc,
    .tp_traverse = (traverseproc)Register_traverse,
    .tp_clear = (inquiry)Register_clear,
    .tp_methods = Register_methods,
    .tp_weaklistoffset = offsetof(RegisterObject, weakrefs),
};

int pyepode_register_init(PyObject *m)
{
    if (PyType_Ready(&RegisterType) < 0 ||
        PyModule_AddObjectRef(m, "Register", (PyObject *)&RegisterType) < 0)
        return -1;
    return 0;
}
