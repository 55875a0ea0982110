/* stanza.c — Stanza and its subclasses Message, Presence and Iq: Python
 * handles on elements of epode stanza trees.
 *
 * A handle holds one reference on its tree (epode_stanza_ref on the
 * element), so a child kept after its parent's handle is gone stays
 * valid; the tree is freed when the last handle (and epode) let go.
 * Nothing is converted up front: a received message costs one small
 * object, and attributes, children and text are read from the C tree
 * when asked for.
 */
#include "pyepode.h"

static PyObject *new_handle(PyTypeObject *type, epode_stanza_t *el)
{
    StanzaObject *self = (StanzaObject *)type->tp_alloc(type, 0);
    if (!self)
        return NULL;
    self->el = epode_stanza_ref(el);
    return (PyObject *)self;
}

static PyTypeObject *type_for(const epode_stanza_t *el, int by_name)
{
    if (!by_name)
        return &StanzaType;
    const char *name = epode_stanza_get_name(el);
    const char *ns = epode_stanza_get_ns(el);
    if (!ns || strcmp(ns, "jabber:client") != 0)
        return &StanzaType;
    if (strcmp(name, "message") == 0)
        return &MessageType;
    if (strcmp(name, "presence") == 0)
        return &PresenceType;
    if (strcmp(name, "iq") == 0)
        return &IqType;
    return &StanzaType;
}

PyObject *pyepode_stanza_wrap(epode_stanza_t *el, int by_name)
{
    return new_handle(type_for(el, by_name), el);
}

PyObject *pyepode_stanza_adopt(epode_stanza_t *root, int by_name)
{
    PyObject *h = pyepode_stanza_wrap(root, by_name);
    epode_stanza_unref(root);
    return h;
}

static epode_stanza_t *parse_text(PyObject *obj)
{
    const char *text;
    Py_ssize_t len;
    if (PyUnicode_Check(obj)) {
        text = PyUnicode_AsUTF8AndSize(obj, &len);
        if (!text)
            return NULL;
    } else if (PyBytes_Check(obj)) {
        text = PyBytes_AS_STRING(obj);
        len = PyBytes_GET_SIZE(obj);
    } else {
        PyErr_Format(PyExc_TypeError, "expected a Stanza, str or bytes, not %.80s",
                     Py_TYPE(obj)->tp_name);
        return NULL;
    }
    epode_stanza_t *root = NULL;
    epode_stream_cond_t cond = 0;
    int rc = epode_stanza_from_text(NULL, text, (size_t)len, &root, &cond);
    if (rc < 0) {
        if (rc == EPODE_ENOMEM)
            return (void *)PyErr_NoMemory();
        const char *cname = (rc == EPODE_EXML || rc == EPODE_ELIMIT) ? epode_stream_cond_name(cond)
                                                                    : NULL;
        PyObject *exc = pyepode_make_error(pyepode_Error, rc,
                                           cname ? cname : epode_strerror(rc), cname, NULL);
        if (exc) {
            PyObject *msg = PyUnicode_FromFormat("cannot parse the XML: %s (%s)",
                                                 epode_strerror(rc),
                                                 cname ? cname : epode_err_name(rc));
            if (msg) {
                PyObject *a = PyTuple_Pack(1, msg);
                if (a) {
                    PyObject_SetAttrString(exc, "args", a);
                    Py_DECREF(a);
                }
                Py_DECREF(msg);
            }
            PyErr_SetObject(pyepode_Error, exc);
            Py_DECREF(exc);
        }
        return NULL;
    }
    return root;
}

epode_stanza_t *pyepode_stanza_arg(PyObject *obj, epode_stanza_t **owned)
{
    *owned = NULL;
    if (PyObject_TypeCheck(obj, &StanzaType))
        return ((StanzaObject *)obj)->el;
    epode_stanza_t *root = parse_text(obj);
    *owned = root;
    return root;
}

static int check_rc(int rc, const char *where)
{
    if (rc < 0) {
        pyepode_raise(rc, where);
        return -1;
    }
    return 0;
}

/* Sets attributes from a mapping of str -> str (None: remove). */
static int set_attrs(epode_stanza_t *el, PyObject *attrs)
{
    if (!attrs || attrs == Py_None)
        return 0;
    if (!PyDict_Check(attrs)) {
        PyErr_SetString(PyExc_TypeError, "attrs must be a dict of str to str");
        return -1;
    }
    PyObject *k, *v;
    Py_ssize_t pos = 0;
    while (PyDict_Next(attrs, &pos, &k, &v)) {
        const char *name, *value;
        if (!PyUnicode_Check(k)) {
            PyErr_SetString(PyExc_TypeError, "attribute names must be str");
            return -1;
        }
        if (pyepode_opt_str(k, &name, "an attribute name") < 0 ||
            pyepode_opt_str(v, &value, "an attribute value") < 0)
            return -1;
        if (check_rc(epode_stanza_set_attr(el, name, value), "set attribute") < 0)
            return -1;
    }
    return 0;
}

/* ---- construction ----------------------------------------------------- */

static PyObject *Stanza_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"name", "ns", "attrs", "text", NULL};
    const char *name, *ns = "jabber:client";
    PyObject *ns_obj = NULL, *attrs = NULL, *text_obj = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "s|OOO:Stanza", kwlist, &name, &ns_obj, &attrs,
                                     &text_obj))
        return NULL;
    const char *text;
    if ((ns_obj && pyepode_opt_str(ns_obj, &ns, "ns") < 0) ||
        pyepode_opt_str(text_obj, &text, "text") < 0)
        return NULL;
    epode_stanza_t *root = NULL;
    if (check_rc(epode_stanza_new(NULL, name, ns, &root), "Stanza") < 0)
        return NULL;
    if (set_attrs(root, attrs) < 0 ||
        (text && check_rc(epode_stanza_set_text(root, text), "Stanza text") < 0)) {
        epode_stanza_unref(root);
        return NULL;
    }
    PyObject *h = new_handle(type, root);
    epode_stanza_unref(root);
    return h;
}

static PyObject *Message_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    (void)type;
    static char *kwlist[] = {"to", "body", "type", "id", NULL};
    PyObject *o[4] = {NULL, NULL, NULL, NULL};
    const char *s[4];
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|OOOO:Message", kwlist, &o[0], &o[1], &o[2],
                                     &o[3]))
        return NULL;
    for (int i = 0; i < 4; i++)
        if (pyepode_opt_str(o[i], &s[i], kwlist[i]) < 0)
            return NULL;
    if (s[0] && epode_jid_validate(s[0]) < 0)
        return pyepode_raise(EPODE_EJID, "Message to");
    epode_stanza_t *root = NULL;
    if (check_rc(epode_stanza_new_message(NULL, s[2], s[0], s[1], &root), "Message") < 0)
        return NULL;
    /* Like epode_message_build(): a message always has an id (receipts,
     * corrections and retractions name it), a fresh one unless given. */
    if (check_rc(s[3] ? epode_stanza_set_id(root, s[3]) : epode_stanza_set_new_id(root, NULL),
                 "Message id") < 0) {
        epode_stanza_unref(root);
        return NULL;
    }
    return pyepode_stanza_adopt(root, 1);
}

static PyObject *Presence_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    (void)type;
    static char *kwlist[] = {"to", "type", "show", "status", "priority", NULL};
    PyObject *o[4] = {NULL, NULL, NULL, NULL}, *prio = Py_None;
    const char *s[4];
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|OOOOO:Presence", kwlist, &o[0], &o[1], &o[2],
                                     &o[3], &prio))
        return NULL;
    for (int i = 0; i < 4; i++)
        if (pyepode_opt_str(o[i], &s[i], kwlist[i]) < 0)
            return NULL;
    if (s[0] && epode_jid_validate(s[0]) < 0)
        return pyepode_raise(EPODE_EJID, "Presence to");
    epode_show_t show = EPODE_SHOW_AVAILABLE;
    if (s[2] && epode_show_from_name(s[2], &show) < 0) {
        PyErr_Format(PyExc_ValueError,
                     "show must be one of 'chat', 'away', 'xa', 'dnd' (or None), not %R", o[2]);
        return NULL;
    }
    epode_stanza_t *root = NULL;
    if (check_rc(epode_stanza_new_presence(NULL, s[1], s[0], &root), "Presence") < 0)
        return NULL;
    int rc = 0;
    if (s[2] && show != EPODE_SHOW_AVAILABLE)
        rc = epode_stanza_add_child_new(root, "show", NULL, NULL) < 0 ? -1 : 0;
    if (rc == 0 && s[2] && show != EPODE_SHOW_AVAILABLE)
        rc = epode_stanza_set_text(epode_stanza_find_child(root, "show", NULL), s[2]);
    epode_stanza_t *st = NULL;
    if (rc == 0 && s[3] && (rc = epode_stanza_add_child_new(root, "status", NULL, &st)) == 0)
        rc = epode_stanza_set_text(st, s[3]);
    if (rc == 0 && prio != Py_None) {
        long p = PyLong_AsLong(prio);
        if (p == -1 && PyErr_Occurred()) {
            epode_stanza_unref(root);
            return NULL;
        }
        if (p < -128 || p > 127) {
            epode_stanza_unref(root);
            PyErr_SetString(PyExc_ValueError, "priority must be between -128 and 127");
            return NULL;
        }
        char buf[8];
        snprintf(buf, sizeof buf, "%ld", p);
        if ((rc = epode_stanza_add_child_new(root, "priority", NULL, &st)) == 0)
            rc = epode_stanza_set_text(st, buf);
    }
    if (check_rc(rc, "Presence") < 0) {
        epode_stanza_unref(root);
        return NULL;
    }
    return pyepode_stanza_adopt(root, 1);
}

static PyObject *Iq_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    (void)type;
    static char *kwlist[] = {"type", "to", "id", NULL};
    PyObject *o[3] = {NULL, NULL, NULL};
    const char *s[3];
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|OOO:Iq", kwlist, &o[0], &o[1], &o[2]))
        return NULL;
    for (int i = 0; i < 3; i++)
        if (pyepode_opt_str(o[i], &s[i], kwlist[i]) < 0)
            return NULL;
    if (!s[0])
        s[0] = "get";
    if (strcmp(s[0], "get") && strcmp(s[0], "set") && strcmp(s[0], "result") &&
        strcmp(s[0], "error")) {
        PyErr_Format(PyExc_ValueError, "type must be 'get', 'set', 'result' or 'error', not %R",
                     o[0]);
        return NULL;
    }
    if (s[1] && epode_jid_validate(s[1]) < 0)
        return pyepode_raise(EPODE_EJID, "Iq to");
    epode_stanza_t *root = NULL;
    if (check_rc(epode_stanza_new_iq(NULL, s[0], s[2], &root), "Iq") < 0)
        return NULL;
    if (s[1] && check_rc(epode_stanza_set_to(root, s[1]), "Iq to") < 0) {
        epode_stanza_unref(root);
        return NULL;
    }
    return pyepode_stanza_adopt(root, 1);
}

static PyObject *Stanza_parse(PyObject *cls, PyObject *arg)
{
    (void)cls;
    epode_stanza_t *root = parse_text(arg);
    return root ? pyepode_stanza_adopt(root, 1) : NULL;
}

static void Stanza_dealloc(StanzaObject *self)
{
    if (self->weakrefs)
        PyObject_ClearWeakRefs((PyObject *)self);
    epode_stanza_unref(self->el);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* ---- reading ---------------------------------------------------------- */

static PyObject *get_name(StanzaObject *self, void *c)
{
    (void)c;
    return pyepode_str_or_none(epode_stanza_get_name(self->el));
}

static PyObject *get_ns(StanzaObject *self, void *c)
{
    (void)c;
    return pyepode_str_or_none(epode_stanza_get_ns(self->el));
}

static PyObject *get_text(StanzaObject *self, void *c)
{
    (void)c;
    const char *t = epode_stanza_get_text(self->el);
    if (!t)
        return PyErr_NoMemory();
    return pyepode_str_or_none(t);
}

static int set_text(StanzaObject *self, PyObject *v, void *c)
{
    (void)c;
    const char *t;
    if (pyepode_opt_str(v, &t, "text") < 0)
        return -1;
    return check_rc(epode_stanza_set_text(self->el, t ? t : ""), "text");
}

/* id, type, to, from: closure is the attribute name. */
static PyObject *get_attr_named(StanzaObject *self, void *c)
{
    return pyepode_str_or_none(epode_stanza_get_attr(self->el, c));
}

static int set_attr_named(StanzaObject *self, PyObject *v, void *c)
{
    const char *s;
    if (pyepode_opt_str(v, &s, c) < 0)
        return -1;
    if (s && (!strcmp(c, "to") || !strcmp(c, "from")) && epode_jid_validate(s) < 0) {
        pyepode_raise(EPODE_EJID, c);
        return -1;
    }
    return check_rc(epode_stanza_set_attr(self->el, c, s), c);
}

static PyObject *get_attrs(StanzaObject *self, void *c)
{
    (void)c;
    PyObject *d = PyDict_New();
    size_t n = epode_stanza_attr_count(self->el);
    for (size_t i = 0; d && i < n; i++) {
        const char *name, *ns, *value;
        epode_stanza_attr_at(self->el, i, &name, &ns, &value);
        PyObject *k = (ns && !strcmp(ns, "http://www.w3.org/XML/1998/namespace"))
                          ? PyUnicode_FromFormat("xml:%s", name)
                      : ns ? PyUnicode_FromFormat("{%s}%s", ns, name)
                           : PyUnicode_FromString(name);
        PyObject *v = pyepode_str_or_none(value);
        if (!k || !v || PyDict_SetItem(d, k, v) < 0)
            Py_CLEAR(d);
        Py_XDECREF(k);
        Py_XDECREF(v);
    }
    return d;
}

static PyObject *get_parent(StanzaObject *self, void *c)
{
    (void)c;
    epode_stanza_t *p = epode_stanza_get_parent(self->el);
    if (!p)
        Py_RETURN_NONE;
    return pyepode_stanza_wrap(p, epode_stanza_get_parent(p) == NULL);
}

static PyObject *get_root(StanzaObject *self, void *c)
{
    (void)c;
    epode_stanza_t *el = self->el, *p;
    if (!epode_stanza_get_parent(el))
        return Py_NewRef(self);
    while ((p = epode_stanza_get_parent(el)))
        el = p;
    return pyepode_stanza_wrap(el, 1);
}

static PyObject *children_list(epode_stanza_t *el, const char *name, const char *ns)
{
    PyObject *list = PyList_New(0);
    for (epode_stanza_t *ch = epode_stanza_find_child(el, name, ns); list && ch;
         ch = epode_stanza_find_next(ch, name, ns)) {
        PyObject *h = pyepode_stanza_wrap(ch, 0);
        if (!h || PyList_Append(list, h) < 0)
            Py_CLEAR(list);
        Py_XDECREF(h);
    }
    return list;
}

static PyObject *get_self(StanzaObject *self, void *c)
{
    (void)c;
    return Py_NewRef(self);
}

static PyObject *get_children(StanzaObject *self, void *c)
{
    (void)c;
    return children_list(self->el, NULL, NULL);
}

static PyObject *get_error(StanzaObject *self, void *c)
{
    (void)c;
    epode_stanza_cond_t cond;
    epode_error_type_t type;
    const char *text;
    if (epode_stanza_get_error(self->el, &cond, &type, &text) < 0)
        Py_RETURN_NONE;
    PyObject *exc = pyepode_make_error(pyepode_StanzaError, EPODE_EPROTOCOL,
                                       epode_stanza_cond_name(cond),
                                       epode_stanza_cond_name(cond), text);
    if (!exc)
        return NULL;
    PyObject *t = pyepode_str_or_none(epode_error_type_name(type));
    if (!t || PyObject_SetAttrString(exc, "type", t) < 0 ||
        PyObject_SetAttrString(exc, "stanza", (PyObject *)self) < 0)
        Py_CLEAR(exc);
    Py_XDECREF(t);
    return exc;
}

/* Message: body, subject, thread (first child's text; None if absent). */
static PyObject *get_child_text(StanzaObject *self, void *c)
{
    return pyepode_str_or_none(epode_stanza_child_text(self->el, c, NULL));
}

static PyObject *get_message_type(StanzaObject *self, void *c)
{
    (void)c;
    const char *t = epode_stanza_get_type(self->el);
    return PyUnicode_FromString(t ? t : "normal");
}

static PyObject *get_presence_type(StanzaObject *self, void *c)
{
    (void)c;
    const char *t = epode_stanza_get_type(self->el);
    return PyUnicode_FromString(t ? t : "available");
}

static PyObject *get_show(StanzaObject *self, void *c)
{
    (void)c;
    const char *s = epode_stanza_child_text(self->el, "show", NULL);
    epode_show_t show;
    if (!s || epode_show_from_name(s, &show) < 0)
        Py_RETURN_NONE; /* absent or invalid: plain available */
    return PyUnicode_FromString(epode_show_name(show));
}

static PyObject *get_priority(StanzaObject *self, void *c)
{
    (void)c;
    const char *s = epode_stanza_child_text(self->el, "priority", NULL);
    char *end;
    long p = s ? strtol(s, &end, 10) : 0;
    if (!s || *end || end == s || p < -128 || p > 127)
        p = 0;
    return PyLong_FromLong(p);
}

static PyObject *get_from_bare(StanzaObject *self, void *c)
{
    (void)c;
    const char *from = epode_stanza_get_from(self->el);
    if (!from)
        Py_RETURN_NONE;
    const char *slash = strchr(from, '/');
    return PyUnicode_DecodeUTF8(from, slash ? slash - from : (Py_ssize_t)strlen(from), "replace");
}

/* ---- attribute mapping ------------------------------------------------ */

static PyObject *Stanza_getitem(StanzaObject *self, PyObject *key)
{
    const char *name;
    if (!PyUnicode_Check(key)) {
        PyErr_SetString(PyExc_TypeError, "attribute names are str");
        return NULL;
    }
    if (pyepode_opt_str(key, &name, "an attribute name") < 0)
        return NULL;
    const char *v = epode_stanza_get_attr(self->el, name);
    if (!v) {
        PyErr_SetObject(PyExc_KeyError, key);
        return NULL;
    }
    return pyepode_str_or_none(v);
}

static int Stanza_setitem(StanzaObject *self, PyObject *key, PyObject *value)
{
    const char *name, *v = NULL;
    if (!PyUnicode_Check(key)) {
        PyErr_SetString(PyExc_TypeError, "attribute names are str");
        return -1;
    }
    if (pyepode_opt_str(key, &name, "an attribute name") < 0)
        return -1;
    if (!value) {
        int rc = epode_stanza_remove_attr(self->el, name);
        if (rc == EPODE_ENOTFOUND) {
            PyErr_SetObject(PyExc_KeyError, key);
            return -1;
        }
        return check_rc(rc, "del attribute");
    }
    if (value == Py_None) {
        PyErr_SetString(PyExc_TypeError, "attribute values are str (use del to remove)");
        return -1;
    }
    if (pyepode_opt_str(value, &v, "an attribute value") < 0)
        return -1;
    return check_rc(epode_stanza_set_attr(self->el, name, v), "set attribute");
}

/* `"to" in st`: attribute presence, as st["to"] reads it. */
static int Stanza_contains(StanzaObject *self, PyObject *key)
{
    if (!PyUnicode_Check(key))
        return 0;
    const char *name;
    if (pyepode_opt_str(key, &name, "an attribute name") < 0)
        return -1;
    return epode_stanza_get_attr(self->el, name) != NULL;
}

static Py_ssize_t Stanza_len(StanzaObject *self)
{
    Py_ssize_t n = 0;
    for (epode_stanza_t *ch = epode_stanza_first_child(self->el); ch; ch = epode_stanza_next(ch))
        n++;
    return n;
}

static PyObject *Stanza_iter(StanzaObject *self)
{
    PyObject *list = children_list(self->el, NULL, NULL);
    if (!list)
        return NULL;
    PyObject *it = PyObject_GetIter(list);
    Py_DECREF(list);
    return it;
}

static int Stanza_bool(StanzaObject *self)
{
    (void)self;
    return 1; /* an element without children is still something */
}

/* ---- methods ---------------------------------------------------------- */

static int name_ns_args(PyObject *args, PyObject *kwds, const char *fmt, const char **name,
                        const char **ns)
{
    static char *kwlist[] = {"name", "ns", NULL};
    PyObject *n = NULL, *s = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, fmt, kwlist, &n, &s))
        return -1;
    if (pyepode_opt_str(n, name, "name") < 0 || pyepode_opt_str(s, ns, "ns") < 0)
        return -1;
    return 0;
}

static PyObject *Stanza_find(StanzaObject *self, PyObject *args, PyObject *kwds)
{
    const char *name, *ns;
    if (name_ns_args(args, kwds, "|OO:find", &name, &ns) < 0)
        return NULL;
    epode_stanza_t *ch = epode_stanza_find_child(self->el, name, ns);
    if (!ch)
        Py_RETURN_NONE;
    return pyepode_stanza_wrap(ch, 0);
}

static PyObject *Stanza_find_all(StanzaObject *self, PyObject *args, PyObject *kwds)
{
    const char *name, *ns;
    if (name_ns_args(args, kwds, "|OO:find_all", &name, &ns) < 0)
        return NULL;
    return children_list(self->el, name, ns);
}

static PyObject *Stanza_find_text(StanzaObject *self, PyObject *args, PyObject *kwds)
{
    const char *name, *ns;
    if (name_ns_args(args, kwds, "O|O:find_text", &name, &ns) < 0)
        return NULL;
    return pyepode_str_or_none(epode_stanza_child_text(self->el, name, ns));
}

static PyObject *Stanza_get(StanzaObject *self, PyObject *args)
{
    PyObject *key, *dflt = Py_None;
    const char *name;
    if (!PyArg_ParseTuple(args, "O|O:get", &key, &dflt) ||
        pyepode_opt_str(key, &name, "an attribute name") < 0)
        return NULL;
    const char *v = name ? epode_stanza_get_attr(self->el, name) : NULL;
    return v ? pyepode_str_or_none(v) : Py_NewRef(dflt);
}

static PyObject *Stanza_add(StanzaObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"child", "ns", "attrs", "text", NULL};
    PyObject *child, *ns_obj = NULL, *attrs = NULL, *text_obj = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|OOO:add", kwlist, &child, &ns_obj, &attrs,
                                     &text_obj))
        return NULL;
    const char *ns, *text;
    if (pyepode_opt_str(ns_obj, &ns, "ns") < 0 || pyepode_opt_str(text_obj, &text, "text") < 0)
        return NULL;
    epode_stanza_t *out = NULL;
    if (PyUnicode_Check(child)) {
        const char *name;
        if (pyepode_opt_str(child, &name, "name") < 0)
            return NULL;
        if (check_rc(epode_stanza_add_child_new(self->el, name, ns, &out), "add") < 0)
            return NULL;
    } else if (PyObject_TypeCheck(child, &StanzaType)) {
        if (ns_obj && ns_obj != Py_None) {
            PyErr_SetString(PyExc_TypeError, "ns applies to a new element, not to a Stanza");
            return NULL;
        }
        if (check_rc(epode_stanza_add_child(self->el, ((StanzaObject *)child)->el, &out),
                     "add") < 0)
            return NULL;
    } else {
        PyErr_Format(PyExc_TypeError, "add() takes an element name or a Stanza, not %.80s",
                     Py_TYPE(child)->tp_name);
        return NULL;
    }
    if (set_attrs(out, attrs) < 0 ||
        (text && check_rc(epode_stanza_set_text(out, text), "add text") < 0)) {
        epode_stanza_remove(out);
        return NULL;
    }
    return pyepode_stanza_wrap(out, 0);
}

static PyObject *Stanza_append_text(StanzaObject *self, PyObject *arg)
{
    const char *t;
    if (pyepode_opt_str(arg, &t, "text") < 0)
        return NULL;
    if (t && check_rc(epode_stanza_add_text(self->el, t, (size_t)-1), "append_text") < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *Stanza_remove(StanzaObject *self, PyObject *unused)
{
    (void)unused;
    if (check_rc(epode_stanza_remove(self->el), "remove") < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *Stanza_copy(StanzaObject *self, PyObject *unused)
{
    (void)unused;
    epode_stanza_t *root = NULL;
    if (check_rc(epode_stanza_copy(self->el, &root), "copy") < 0)
        return NULL;
    return pyepode_stanza_adopt(root, 1);
}

static PyObject *to_xml(StanzaObject *self, unsigned flags)
{
    char *text = NULL;
    size_t len = 0;
    if (check_rc(epode_stanza_to_text(self->el, flags, &text, &len), "to_xml") < 0)
        return NULL;
    PyObject *s = PyUnicode_DecodeUTF8(text, (Py_ssize_t)len, "replace");
    epode_free(text);
    return s;
}

static PyObject *Stanza_to_xml(StanzaObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"in_stream", "one_line", NULL};
    int in_stream = 0, one_line = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|$pp:to_xml", kwlist, &in_stream, &one_line))
        return NULL;
    return to_xml(self, (in_stream ? EPODE_TEXT_IN_STREAM : 0) |
                            (one_line ? EPODE_TEXT_ONE_LINE : 0));
}

static PyObject *Stanza_str(StanzaObject *self)
{
    return to_xml(self, 0);
}

static PyObject *Stanza_repr(StanzaObject *self)
{
    PyObject *xml = to_xml(self, EPODE_TEXT_IN_STREAM | EPODE_TEXT_ONE_LINE);
    if (!xml)
        return NULL;
    Py_ssize_t n = PyUnicode_GET_LENGTH(xml);
    PyObject *r;
    if (n > 200) {
        PyObject *cut = PyUnicode_Substring(xml, 0, 197);
        r = cut ? PyUnicode_FromFormat("<%s %U...>", Py_TYPE(self)->tp_name, cut) : NULL;
        Py_XDECREF(cut);
    } else {
        r = PyUnicode_FromFormat("<%s %U>", Py_TYPE(self)->tp_name, xml);
    }
    Py_DECREF(xml);
    return r;
}

static PyObject *Stanza_richcompare(PyObject *a, PyObject *b, int op)
{
    if ((op != Py_EQ && op != Py_NE) || !PyObject_TypeCheck(b, &StanzaType))
        Py_RETURN_NOTIMPLEMENTED;
    int eq = epode_stanza_equal(((StanzaObject *)a)->el, ((StanzaObject *)b)->el);
    return PyBool_FromLong(op == Py_EQ ? eq : !eq);
}

static PyObject *Stanza_reply(StanzaObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"body", NULL};
    PyObject *body_obj = NULL;
    const char *body;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|O:reply", kwlist, &body_obj) ||
        pyepode_opt_str(body_obj, &body, "body") < 0)
        return NULL;
    epode_stanza_t *root = NULL;
    if (check_rc(epode_stanza_reply(self->el, &root), "reply") < 0)
        return NULL;
    epode_stanza_t *b = NULL;
    if (body && (check_rc(epode_stanza_add_child_new(root, "body", NULL, &b), "reply") < 0 ||
                 check_rc(epode_stanza_set_text(b, body), "reply body") < 0)) {
        epode_stanza_unref(root);
        return NULL;
    }
    return pyepode_stanza_adopt(root, 1);
}

static PyObject *Stanza_error_reply(StanzaObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"condition", "text", "type", "include_original", NULL};
    const char *cond_name;
    PyObject *text_obj = NULL, *type_obj = NULL;
    int include = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "s|OOp:error_reply", kwlist, &cond_name,
                                     &text_obj, &type_obj, &include))
        return NULL;
    const char *text, *type_name;
    if (pyepode_opt_str(text_obj, &text, "text") < 0 ||
        pyepode_opt_str(type_obj, &type_name, "type") < 0)
        return NULL;
    epode_stanza_cond_t cond = epode_stanza_cond_from_name(cond_name);
    if (cond == EPODE_COND_NONE) {
        PyErr_Format(PyExc_ValueError, "unknown stanza error condition '%s' (RFC 6120 8.3.3)",
                     cond_name);
        return NULL;
    }
    epode_error_type_t type = EPODE_ERRTYPE_DEFAULT;
    if (type_name) {
        type = epode_error_type_from_name(type_name);
        if (type == EPODE_ERRTYPE_DEFAULT) {
            PyErr_Format(PyExc_ValueError,
                         "type must be 'auth', 'cancel', 'continue', 'modify' or 'wait'");
            return NULL;
        }
    }
    epode_stanza_t *root = NULL;
    if (check_rc(epode_stanza_error_reply(self->el, cond, type, text, include, &root),
                 "error_reply") < 0)
        return NULL;
    return pyepode_stanza_adopt(root, 1);
}

static PyMethodDef Stanza_methods[] = {
    {"parse", (PyCFunction)Stanza_parse, METH_O | METH_CLASS,
     "parse(xml)\n--\n\nParses one element from str or bytes into a new stanza (a Message,\n"
     "Presence or Iq for those names in jabber:client). Raises epode.Error\n"
     "(condition: the RFC 6120 stream condition) on bad or restricted XML."},
    {"find", (PyCFunction)(void (*)(void))Stanza_find, METH_VARARGS | METH_KEYWORDS,
     "find(name=None, ns=None)\n--\n\nThe first child element matching name and ns (None: any), or None."},
    {"find_all", (PyCFunction)(void (*)(void))Stanza_find_all, METH_VARARGS | METH_KEYWORDS,
     "find_all(name=None, ns=None)\n--\n\nEvery child element matching name and ns, as a list."},
    {"find_text", (PyCFunction)(void (*)(void))Stanza_find_text, METH_VARARGS | METH_KEYWORDS,
     "find_text(name, ns=None)\n--\n\nThe text of the first matching child, or None if there is none."},
    {"get", (PyCFunction)Stanza_get, METH_VARARGS,
     "get(name, default=None)\n--\n\nAn attribute's value, or default."},
    {"add", (PyCFunction)(void (*)(void))Stanza_add, METH_VARARGS | METH_KEYWORDS,
     "add(child, ns=None, attrs=None, text=None)\n--\n\n"
     "Appends a new element named `child` (ns None: the parent's namespace),\n"
     "or a copy of the Stanza `child`, and returns it."},
    {"append_text", (PyCFunction)Stanza_append_text, METH_O,
     "append_text(text)\n--\n\nAppends character data after the last child."},
    {"remove", (PyCFunction)Stanza_remove, METH_NOARGS,
     "remove()\n--\n\nUnlinks this element from its parent."},
    {"copy", (PyCFunction)Stanza_copy, METH_NOARGS,
     "copy()\n--\n\nA deep copy of this element as a new stanza."},
    {"to_xml", (PyCFunction)(void (*)(void))Stanza_to_xml, METH_VARARGS | METH_KEYWORDS,
     "to_xml(*, in_stream=False, one_line=False)\n--\n\nThe element as XML text."},
    {"reply", (PyCFunction)(void (*)(void))Stanza_reply, METH_VARARGS | METH_KEYWORDS,
     "reply(body=None)\n--\n\nA reply: to/from swapped, same id, IQ get/set -> result;\n"
     "with `body`, a <body/> is added (for messages)."},
    {"error_reply", (PyCFunction)(void (*)(void))Stanza_error_reply, METH_VARARGS | METH_KEYWORDS,
     "error_reply(condition, text=None, type=None, include_original=False)\n--\n\n"
     "An error reply with an RFC 6120 condition ('item-not-found', ...)."},
    {NULL, NULL, 0, NULL},
};

#define ATTR_GS(n, doc) {n, (getter)get_attr_named, (setter)set_attr_named, doc, n}

static PyGetSetDef Stanza_getset[] = {
    {"name", (getter)get_name, NULL, "The element's local name.", NULL},
    {"ns", (getter)get_ns, NULL, "The element's namespace URI (None: none).", NULL},
    {"text", (getter)get_text, (setter)set_text,
     "The element's own text (setting it replaces every child).", NULL},
    {"attrs", (getter)get_attrs, NULL, "A dict copy of the attributes.", NULL},
    {"parent", (getter)get_parent, NULL, "The parent element, or None.", NULL},
    {"root", (getter)get_root, NULL, "The top element of this tree.", NULL},
    {"children", (getter)get_children, NULL, "The child elements, as a list.", NULL},
    {"stanza", (getter)get_self, NULL, "The element itself (handlers' argument is the stanza).",
     NULL},
    {"error", (getter)get_error, NULL,
     "For an error stanza, its <error/> as an epode.StanzaError (not raised); else None.",
     NULL},
    ATTR_GS("id", "The id attribute, or None."),
    ATTR_GS("to", "The to attribute, or None."),
    {"from_", (getter)get_attr_named, (setter)set_attr_named, "The from attribute, or None.",
     "from"},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyGetSetDef Message_getset[] = {
    {"type", (getter)get_message_type, (setter)set_attr_named,
     "The message type ('normal' when absent, as RFC 6121 says).", "type"},
    {"body", (getter)get_child_text, NULL, "The text of the first <body/>, or None.", "body"},
    {"subject", (getter)get_child_text, NULL, "The text of <subject/>, or None.", "subject"},
    {"thread", (getter)get_child_text, NULL, "The text of <thread/>, or None.", "thread"},
    {"from_bare", (getter)get_from_bare, NULL, "The sender's bare JID, or None.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyGetSetDef Presence_getset[] = {
    {"type", (getter)get_presence_type, (setter)set_attr_named,
     "The presence type ('available' when absent).", "type"},
    {"show", (getter)get_show, NULL, "'chat', 'away', 'xa', 'dnd', or None.", NULL},
    {"status", (getter)get_child_text, NULL, "The text of <status/>, or None.", "status"},
    {"priority", (getter)get_priority, NULL, "The priority (0 when absent or invalid).", NULL},
    {"from_bare", (getter)get_from_bare, NULL, "The sender's bare JID, or None.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyGetSetDef Iq_getset[] = {
    {"type", (getter)get_attr_named, (setter)set_attr_named,
     "'get', 'set', 'result' or 'error'.", "type"},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMappingMethods Stanza_as_mapping = {
    .mp_subscript = (binaryfunc)Stanza_getitem,
    .mp_ass_subscript = (objobjargproc)Stanza_setitem,
};

static PySequenceMethods Stanza_as_sequence = {
    .sq_length = (lenfunc)Stanza_len,
    .sq_contains = (objobjproc)Stanza_contains,
};

static PyNumberMethods Stanza_as_number = {
    .nb_bool = (inquiry)Stanza_bool,
};

PyTypeObject StanzaType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "epode.Stanza",
    .tp_basicsize = sizeof(StanzaObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
    .tp_doc = "Stanza(name, ns='jabber:client', attrs=None, text=None)\n--\n\n"
              "An XML element of a stanza tree. st['attr'] reads and writes attributes,\n"
              "iterating gives the child elements, str() the XML. A handle keeps its\n"
              "whole tree alive.",
    .tp_new = Stanza_new,
    .tp_dealloc = (destructor)Stanza_dealloc,
    .tp_repr = (reprfunc)Stanza_repr,
    .tp_str = (reprfunc)Stanza_str,
    .tp_as_mapping = &Stanza_as_mapping,
    .tp_as_sequence = &Stanza_as_sequence,
    .tp_as_number = &Stanza_as_number,
    .tp_iter = (getiterfunc)Stanza_iter,
    .tp_richcompare = Stanza_richcompare,
    .tp_hash = PyObject_HashNotImplemented,
    .tp_methods = Stanza_methods,
    .tp_getset = Stanza_getset,
    .tp_weaklistoffset = offsetof(StanzaObject, weakrefs),
};

#define SUBTYPE(var, pyname, newfn, getset, doc)                               \
    PyTypeObject var = {                                                       \
        PyVarObject_HEAD_INIT(NULL, 0)                                         \
        .tp_name = pyname,                                                     \
        .tp_basicsize = sizeof(StanzaObject),                                  \
        .tp_flags = Py_TPFLAGS_DEFAULT,                                        \
        .tp_doc = doc,                                                         \
        .tp_new = newfn,                                                       \
        .tp_base = &StanzaType,                                                \
        .tp_getset = getset,                                                   \
    };

SUBTYPE(MessageType, "epode.Message", Message_new, Message_getset,
        "Message(to=None, body=None, type=None, id=None)\n--\n\n"
        "A <message/>: from_, to, type, id, body, subject, thread.")
SUBTYPE(PresenceType, "epode.Presence", Presence_new, Presence_getset,
        "Presence(to=None, type=None, show=None, status=None, priority=None)\n--\n\n"
        "A <presence/>: from_, to, type, show, status, priority.")
SUBTYPE(IqType, "epode.Iq", Iq_new, Iq_getset,
        "Iq(type='get', to=None, id=None)\n--\n\nAn <iq/>; id None makes a fresh random one.")

int pyepode_stanza_init_types(PyObject *m)
{
    PyTypeObject *types[] = {&StanzaType, &MessageType, &PresenceType, &IqType};
    const char *names[] = {"Stanza", "Message", "Presence", "Iq"};
    for (int i = 0; i < 4; i++) {
        if (PyType_Ready(types[i]) < 0 ||
            PyModule_AddObjectRef(m, names[i], (PyObject *)types[i]) < 0)
            return -1;
    }
    return 0;
}
