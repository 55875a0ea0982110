/* im.c — the IM helpers of epode as low-level Python types: Roster,
 * PresenceTracker, Disco, Caps and Muc (epode/roster.h, presence.h,
 * disco.h, caps.h, muc.h). The friendly layer (futures, decorators,
 * named tuples) is epode/_im.py; these types only translate.
 *
 * What crosses to Python is plain data, copied out of epode at once
 * (epode's items and infos are borrowed and change under us): tuples of
 * str/int/bool/None, and Stanza handles (which hold their own reference
 * on the tree). _im.py turns the tuples into named tuples.
 *
 * Ownership. Each object holds a strong reference on its Connection (a
 * Caps also on its Disco), so the C connection outlives the C helper,
 * which tp_dealloc frees. Callbacks are Python callables held here
 * (visited by the GC); the requests we started (roster add/remove, disco
 * queries) are `im_req`s holding their callback until epode answers.
 *
 * epode forbids freeing a helper from inside one of its own callbacks.
 * While one of ours runs we hold a reference on the object, and drop it
 * through the context's deferred list if it is the last one, so the
 * object can only die once epode is out of the way. Exceptions raised by
 * callbacks are reported (pyepode_call: the connection's error hook, or
 * kept to be raised later for KeyboardInterrupt/SystemExit), never
 * propagated through epode.
 */
#include "pyepode.h"

#include <math.h>
#include <stdarg.h>

/* ---- common ------------------------------------------------------------- */

struct ImObject;

/* A request started with a Python callback, waiting for epode's answer. */
typedef struct im_req {
    struct im_req *next;
    struct ImObject *owner;  /* borrowed: the owner frees what is left of its
                                requests when it goes */
    ConnectionObject *conn;  /* borrowed (the owner's), for reporting */
    PyObject *cb;            /* strong; NULL once cleared by the GC */
    unsigned id;             /* epode's id (disco queries) */
} im_req;

enum { IM_NCB = 2 };

typedef struct ImObject {
    PyObject_HEAD
    ConnectionObject *conn;  /* strong, kept until dealloc */
    PyObject *parent;        /* strong, kept until dealloc (Caps: its Disco) */
    PyObject *cbs[IM_NCB];   /* the callbacks; meaning per type */
    im_req *reqs;
    int dying;               /* in tp_dealloc: callbacks must not touch our refcount */
    PyObject *weakrefs;
} ImObject;

typedef struct {
    ImObject base;
    epode_roster_t *roster;
} RosterObject;

typedef struct {
    ImObject base;
    epode_presence_tracker_t *tracker;
    int auto_accept;         /* epode has no getter */
} TrackerObject;

typedef struct {
    ImObject base;
    epode_disco_t *disco;
} DiscoObject;

typedef struct {
    ImObject base;
    epode_caps_t *caps;
    PyObject *node;          /* str: epode has no getter */
} CapsObject;

typedef struct {
    ImObject base;
    epode_muc_t *muc;
    PyObject *rooms;         /* set of room JIDs joined through us (epode cannot
                                list its rooms); pruned when asked */
} MucObject;

static PyTypeObject RosterType, TrackerType, DiscoType, CapsType, MucType;

static int im_init_base(ImObject *self, PyObject *conn_obj)
{
    if (!PyObject_TypeCheck(conn_obj, &ConnectionType)) {
        PyErr_Format(PyExc_TypeError, "expected an epode Connection, not %.80s",
                     Py_TYPE(conn_obj)->tp_name);
        return -1;
    }
    ConnectionObject *c = (ConnectionObject *)conn_obj;
    if (!c->conn) {
        PyErr_SetString(PyExc_RuntimeError, "the connection has been freed");
        return -1;
    }
    self->conn = (ConnectionObject *)Py_NewRef(conn_obj);
    return 0;
}

/* The start of every constructor taking just a connection: parses
 * `connection` (fmt is "O:TypeName"), allocates, holds the connection. */
static ImObject *im_new_on_conn(PyTypeObject *type, PyObject *args, PyObject *kwds,
                                const char *fmt)
{
    static char *kwlist[] = {"connection", NULL};
    PyObject *conn;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, fmt, kwlist, &conn))
        return NULL;
    ImObject *self = (ImObject *)type->tp_alloc(type, 0);
    if (!self)
        return NULL;
    if (im_init_base(self, conn) < 0) {
        Py_DECREF(self);
        return NULL;
    }
    return self;
}

static int im_traverse(ImObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->conn);
    Py_VISIT(self->parent);
    for (int i = 0; i < IM_NCB; i++)
        Py_VISIT(self->cbs[i]);
    for (im_req *q = self->reqs; q; q = q->next)
        Py_VISIT(q->cb);
    return 0;
}

/* Drops the Python callbacks only: the C helper and the references that
 * keep its connection alive stay until dealloc. */
static int im_clear(ImObject *self)
{
    for (int i = 0; i < IM_NCB; i++)
        Py_CLEAR(self->cbs[i]);
    for (im_req *q = self->reqs; q; q = q->next)
        Py_CLEAR(q->cb);
    return 0;
}

/* First half of a dealloc: untracked, weakrefs gone, and marked dying:
 * callbacks that epode runs while the C helper is freed (a roster's
 * pending requests get ECANCELED) still reach Python, but must not take
 * a reference on an object whose count already reached zero. */
static void im_dealloc_begin(ImObject *self)
{
    PyObject_GC_UnTrack(self);
    if (self->weakrefs)
        PyObject_ClearWeakRefs((PyObject *)self);
    self->dying = 1;
}

/* Second half, once the C helper is freed: what is left of the requests
 * (those epode dropped without calling) and the references. */
static void im_dealloc_end(ImObject *self)
{
    while (self->reqs) {
        im_req *q = self->reqs;
        self->reqs = q->next;
        Py_XDECREF(q->cb);
        PyMem_Free(q);
    }
    for (int i = 0; i < IM_NCB; i++)
        Py_CLEAR(self->cbs[i]);
    Py_CLEAR(self->parent);
    Py_CLEAR(self->conn);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* Around a callback from epode: keep the object alive, and let it die
 * only once epode has returned. */
static void im_enter(ImObject *self)
{
    if (!self->dying)
        Py_INCREF(self);
}

static void im_leave(ImObject *self)
{
    if (self->dying)
        return;
    if (Py_REFCNT(self) > 1) {
        Py_DECREF(self);
        return;
    }
    ContextObject *ctx = self->conn->context;
    if (pyepode_defer_decref(ctx, (PyObject *)self) < 0) {
        /* Could not defer: leaking the object beats freeing it under epode. */
    }
}

static im_req *req_new(ImObject *owner, PyObject *cb)
{
    im_req *q = PyMem_Calloc(1, sizeof *q);
    if (!q) {
        PyErr_NoMemory();
        return NULL;
    }
    q->owner = owner;
    q->conn = owner->conn;
    q->cb = Py_XNewRef(cb);
    q->next = owner->reqs;
    owner->reqs = q;
    return q;
}

static void req_unlink(ImObject *owner, im_req *q)
{
    for (im_req **pp = &owner->reqs; *pp; pp = &(*pp)->next)
        if (*pp == q) {
            *pp = q->next;
            return;
        }
}

/* Takes the request out of its owner's list and frees it; returns its
 * callback (a new reference, or NULL). */
static PyObject *req_take(im_req *q)
{
    req_unlink(q->owner, q);
    PyObject *cb = q->cb;
    PyMem_Free(q);
    return cb;
}

/* Calls cb(*args) (args are new references, stolen; a NULL one means
 * building it failed with an exception set). Reports failures; returns
 * the result or NULL. */
static PyObject *im_call(ConnectionObject *conn, PyObject *cb, PyObject **args, size_t n,
                         const char *where)
{
    PyObject *r = NULL;
    int ok = 1;
    for (size_t i = 0; i < n; i++)
        if (!args[i])
            ok = 0;
    if (ok) {
        r = pyepode_call(conn, cb, args, n, where);
    } else if (!pyepode_keep_fatal(conn->context)) {
        pyepode_report((PyObject *)conn, where);
    }
    for (size_t i = 0; i < n; i++)
        Py_XDECREF(args[i]);
    return r;
}

/* A tuple of the `n` new references given (stolen, NULL ones included:
 * then the result is NULL with the exception their builder set). */
static PyObject *steal_tuple(Py_ssize_t n, ...)
{
    va_list ap;
    PyObject *t = PyTuple_New(n);
    int bad = !t;
    va_start(ap, n);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *o = va_arg(ap, PyObject *);
        if (!o)
            bad = 1;
        if (bad)
            Py_XDECREF(o);
        else
            PyTuple_SET_ITEM(t, i, o);
    }
    va_end(ap);
    if (bad) {
        Py_XDECREF(t);
        return NULL;
    }
    return t;
}

#define S(s) pyepode_str_or_none(s)

static PyObject *cond_or_none(epode_stanza_cond_t cond)
{
    return S(cond == EPODE_COND_NONE ? NULL : epode_stanza_cond_name(cond));
}

static PyObject *get_cb(ImObject *self, void *c)
{
    PyObject *cb = self->cbs[(int)(intptr_t)c];
    return Py_NewRef(cb ? cb : Py_None);
}

static int set_cb(ImObject *self, PyObject *v, void *c)
{
    if (!v || v == Py_None)
        v = NULL;
    else if (!PyCallable_Check(v)) {
        PyErr_SetString(PyExc_TypeError, "the callback must be callable or None");
        return -1;
    }
    Py_XSETREF(self->cbs[(int)(intptr_t)c], Py_XNewRef(v));
    return 0;
}

static PyObject *get_connection(ImObject *self, void *c)
{
    (void)c;
    return Py_NewRef((PyObject *)self->conn);
}

static int opt_timeout(PyObject *obj, unsigned *ms)
{
    *ms = 0; /* epode's default: 30 s */
    if (!obj || obj == Py_None)
        return 0;
    double v = PyFloat_AsDouble(obj);
    if (v == -1.0 && PyErr_Occurred())
        return -1;
    if (!isfinite(v) || v <= 0 || v > 4e6) {
        PyErr_SetString(PyExc_ValueError, "timeout must be positive (seconds)");
        return -1;
    }
    *ms = (unsigned)(v * 1000.0 + 0.5);
    if (*ms == 0)
        *ms = 1;
    return 0;
}

static int check_callable(PyObject *cb, int optional)
{
    if (optional && (!cb || cb == Py_None))
        return 0;
    if (!cb || !PyCallable_Check(cb)) {
        PyErr_SetString(PyExc_TypeError, "the callback must be callable");
        return -1;
    }
    return 0;
}

/* ---- Roster ------------------------------------------------------------- */

static PyObject *roster_item_tuple(const epode_roster_item_t *it)
{
    size_t n = epode_roster_item_group_count(it);
    PyObject *groups = PyTuple_New((Py_ssize_t)n);
    for (size_t i = 0; groups && i < n; i++) {
        PyObject *g = S(epode_roster_item_group(it, i));
        if (!g) {
            Py_CLEAR(groups);
            break;
        }
        PyTuple_SET_ITEM(groups, (Py_ssize_t)i, g);
    }
    return steal_tuple(5, S(epode_roster_item_jid(it)), S(epode_roster_item_name(it)),
                       S(epode_roster_sub_name(epode_roster_item_subscription(it))),
                       PyBool_FromLong(epode_roster_item_ask(it)), groups);
}

static const char *roster_event_name(epode_roster_event_t ev)
{
    const char *n = epode_roster_event_name(ev);
    return n ? n : "unknown";
}

static void on_roster_event(epode_roster_t *r, epode_roster_event_t ev,
                            const epode_roster_item_t *item, void *user)
{
    (void)r;
    ImObject *self = user;
    if (!self->cbs[0])
        return;
    im_enter(self);
    PyObject *cb = Py_NewRef(self->cbs[0]);
    PyObject *args[2] = {PyUnicode_FromString(roster_event_name(ev)),
                         item ? roster_item_tuple(item) : Py_NewRef(Py_None)};
    Py_XDECREF(im_call(self->conn, cb, args, 2, "roster callback"));
    Py_DECREF(cb);
    im_leave(self);
}

static void on_roster_result(epode_roster_t *r, int status, epode_stanza_cond_t cond,
                             const char *text, void *user)
{
    (void)r;
    im_req *q = user;
    ImObject *owner = q->owner;
    ConnectionObject *conn = q->conn;
    im_enter(owner);
    PyObject *cb = req_take(q);
    if (cb) {
        PyObject *args[3] = {PyLong_FromLong(status), cond_or_none(cond), S(text)};
        Py_XDECREF(im_call(conn, cb, args, 3, "roster result callback"));
        Py_DECREF(cb);
    }
    im_leave(owner);
}

static PyObject *Roster_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    RosterObject *self = (RosterObject *)im_new_on_conn(type, args, kwds, "O:Roster");
    if (!self)
        return NULL;
    int rc = epode_roster_new(self->base.conn->conn, &self->roster);
    if (rc == 0)
        rc = epode_roster_set_event_cb(self->roster, on_roster_event, self);
    if (rc < 0) {
        Py_DECREF(self);
        return pyepode_raise(rc, "Roster");
    }
    return (PyObject *)self;
}

/* Pending add/remove requests are answered ECANCELED here, before the
 * roster goes: the garbage collector runs finalizers on a whole cycle
 * before clearing any of it, so the callbacks are still intact (from
 * tp_dealloc they might already have been cleared). epode_roster_free
 * then finds no callback left to call. */
static void Roster_finalize(PyObject *o)
{
    ImObject *s = (ImObject *)o;
    PyObject *et, *ev, *etb;
    PyErr_Fetch(&et, &ev, &etb);
    for (im_req *q = s->reqs; q; q = q->next) {
        PyObject *cb = q->cb;
        if (!cb)
            continue;
        q->cb = NULL;
        PyObject *a[3] = {PyLong_FromLong(EPODE_ECANCELED), Py_NewRef(Py_None),
                          Py_NewRef(Py_None)};
        Py_XDECREF(im_call(s->conn, cb, a, 3, "roster result callback"));
        Py_DECREF(cb);
    }
    PyErr_Restore(et, ev, etb);
}

static void Roster_dealloc(RosterObject *self)
{
    if (PyObject_CallFinalizerFromDealloc((PyObject *)self) < 0)
        return; /* resurrected by a callback */
    im_dealloc_begin(&self->base);
    if (self->roster) {
        epode_roster_set_event_cb(self->roster, NULL, NULL);
        /* Calls the pending add/remove callbacks with ECANCELED. */
        epode_roster_free(self->roster);
        self->roster = NULL;
    }
    im_dealloc_end(&self->base);
}

static PyObject *Roster_fetch(RosterObject *self, PyObject *unused)
{
    (void)unused;
    int rc = epode_roster_fetch(self->roster);
    if (rc < 0)
        return pyepode_raise(rc, "roster fetch");
    Py_RETURN_NONE;
}

/* Holds the UTF-8 of a sequence of str for epode (valid while *keep lives). */
static const char **str_array(PyObject *seq_obj, PyObject **keep, size_t *n, const char *what)
{
    *keep = NULL;
    if (PyUnicode_Check(seq_obj)) {
        PyErr_Format(PyExc_TypeError, "%s must be a sequence of str, not a str", what);
        return NULL;
    }
    PyObject *seq = PySequence_Fast(seq_obj, "expected a sequence of str");
    if (!seq)
        return NULL;
    Py_ssize_t len = PySequence_Fast_GET_SIZE(seq);
    const char **arr = PyMem_Calloc(len ? (size_t)len : 1, sizeof *arr);
    if (!arr) {
        Py_DECREF(seq);
        PyErr_NoMemory();
        return NULL;
    }
    for (Py_ssize_t i = 0; i < len; i++) {
        PyObject *o = PySequence_Fast_GET_ITEM(seq, i);
        if (!PyUnicode_Check(o)) {
            PyErr_Format(PyExc_TypeError, "%s must be str, not %.80s", what, Py_TYPE(o)->tp_name);
            goto fail;
        }
        if (pyepode_opt_str(o, &arr[i], what) < 0)
            goto fail;
    }
    *keep = seq;
    *n = (size_t)len;
    return arr;
fail:
    PyMem_Free(arr);
    Py_DECREF(seq);
    return NULL;
}

PyDoc_STRVAR(Roster_add_doc,
"add(jid, name=None, groups=(), callback=None)\n--\n\n"
"Asks the server to add or update `jid` (name and groups replace the\n"
"item's). callback(status, condition, text) gets the answer: status 0 and\n"
"condition None when accepted, a condition ('not-allowed', ...) when\n"
"refused, or status epode.ETIMEDOUT / epode.ECANCELED. The roster itself\n"
"changes when the server's push arrives (the 'added'/'updated' event).");

static PyObject *Roster_add(RosterObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"jid", "name", "groups", "callback", NULL};
    const char *jid, *name;
    PyObject *name_obj = Py_None, *groups_obj = NULL, *cb = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "s|OOO:add", kwlist, &jid, &name_obj,
                                     &groups_obj, &cb) ||
        pyepode_opt_str(name_obj, &name, "name") < 0 || check_callable(cb, 1) < 0)
        return NULL;
    PyObject *keep = NULL;
    size_t n = 0;
    const char **groups = NULL;
    if (groups_obj && groups_obj != Py_None &&
        !(groups = str_array(groups_obj, &keep, &n, "a group")))
        return NULL;
    im_req *q = req_new(&self->base, cb == Py_None ? NULL : cb);
    int rc = q ? epode_roster_add(self->roster, jid, name, groups, n, on_roster_result, q) : 0;
    PyMem_Free(groups);
    Py_XDECREF(keep);
    if (!q)
        return NULL;
    if (rc < 0) {
        Py_XDECREF(req_take(q));
        return pyepode_raise(rc, "roster add");
    }
    Py_RETURN_NONE;
}

PyDoc_STRVAR(Roster_remove_doc,
"remove(jid, callback=None)\n--\n\n"
"Asks the server to remove `jid` (which also ends the subscriptions both\n"
"ways). callback as for add().");

static PyObject *Roster_remove(RosterObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"jid", "callback", NULL};
    const char *jid;
    PyObject *cb = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "s|O:remove", kwlist, &jid, &cb) ||
        check_callable(cb, 1) < 0)
        return NULL;
    im_req *q = req_new(&self->base, cb == Py_None ? NULL : cb);
    if (!q)
        return NULL;
    int rc = epode_roster_remove(self->roster, jid, on_roster_result, q);
    if (rc < 0) {
        Py_XDECREF(req_take(q));
        return pyepode_raise(rc, "roster remove");
    }
    Py_RETURN_NONE;
}

static PyObject *Roster_find(RosterObject *self, PyObject *arg)
{
    const char *jid;
    if (pyepode_opt_str(arg, &jid, "jid") < 0)
        return NULL;
    const epode_roster_item_t *it = jid ? epode_roster_find(self->roster, jid) : NULL;
    if (!it)
        Py_RETURN_NONE;
    return roster_item_tuple(it);
}

static PyObject *Roster_items(RosterObject *self, PyObject *unused)
{
    (void)unused;
    size_t n = epode_roster_count(self->roster);
    PyObject *list = PyList_New((Py_ssize_t)n);
    for (size_t i = 0; list && i < n; i++) {
        PyObject *t = roster_item_tuple(epode_roster_item_at(self->roster, i));
        if (!t) {
            Py_CLEAR(list);
            break;
        }
        PyList_SET_ITEM(list, (Py_ssize_t)i, t);
    }
    return list;
}

static Py_ssize_t Roster_len(RosterObject *self)
{
    return (Py_ssize_t)epode_roster_count(self->roster);
}

static PyObject *Roster_get_ver(RosterObject *self, void *c)
{
    (void)c;
    return S(epode_roster_ver(self->roster));
}

static PyObject *Roster_get_received(RosterObject *self, void *c)
{
    (void)c;
    return PyBool_FromLong(epode_roster_is_received(self->roster));
}

static PyMethodDef Roster_methods[] = {
    {"fetch", (PyCFunction)Roster_fetch, METH_NOARGS,
     "fetch()\n--\n\nFetches the roster now (one runs at every login anyway); the\n"
     "'received' or 'fetch_failed' event tells the outcome. epode.Error\n"
     "(ESTATE) when not logged in."},
    {"add", (PyCFunction)(void (*)(void))Roster_add, METH_VARARGS | METH_KEYWORDS,
     Roster_add_doc},
    {"remove", (PyCFunction)(void (*)(void))Roster_remove, METH_VARARGS | METH_KEYWORDS,
     Roster_remove_doc},
    {"find", (PyCFunction)Roster_find, METH_O,
     "find(jid)\n--\n\nThe item (jid, name, subscription, ask, groups) as a tuple, or None."},
    {"items", (PyCFunction)Roster_items, METH_NOARGS,
     "items()\n--\n\nEvery item, as tuples, in the order of their JIDs."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Roster_getset[] = {
    {"on_event", (getter)get_cb, (setter)set_cb,
     "callable(event, item) or None: event 'received', 'added', 'updated',\n"
     "'removed' or 'fetch_failed'; item a tuple or None.", (void *)0},
    {"version", (getter)Roster_get_ver, NULL, "The roster version held, or None.", NULL},
    {"received", (getter)Roster_get_received, NULL,
     "True once a fetch completed on the current connection.", NULL},
    {"connection", (getter)get_connection, NULL, "The Connection.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PySequenceMethods Roster_as_sequence = {
    .sq_length = (lenfunc)Roster_len,
};

static PyTypeObject RosterType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "epode._epode.Roster",
    .tp_basicsize = sizeof(RosterObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "Roster(connection)\n--\n\nThe roster helper of a connection (the low-level half\n"
              "of epode.Roster): fetched at every login, kept current by pushes.",
    .tp_new = Roster_new,
    .tp_dealloc = (destructor)Roster_dealloc,
    .tp_finalize = Roster_finalize,
    .tp_traverse = (traverseproc)im_traverse,
    .tp_clear = (inquiry)im_clear,
    .tp_methods = Roster_methods,
    .tp_getset = Roster_getset,
    .tp_as_sequence = &Roster_as_sequence,
    .tp_weaklistoffset = offsetof(ImObject, weakrefs),
};

/* ---- PresenceTracker ------------------------------------------------------ */

static PyObject *presence_info_tuple(const epode_presence_info_t *i)
{
    epode_stanza_t *st = epode_presence_info_stanza(i);
    return steal_tuple(8, S(epode_presence_info_jid(i)), S(epode_presence_info_resource(i)),
                       S(epode_show_name(epode_presence_info_show(i))),
                       S(epode_presence_info_status(i)),
                       PyLong_FromLong(epode_presence_info_priority(i)),
                       S(epode_presence_info_bare(i)),
                       cond_or_none(epode_presence_info_error(i)),
                       st ? pyepode_stanza_wrap(st, 1) : Py_NewRef(Py_None));
}

static const char *presence_change_name(epode_presence_change_t ch)
{
    const char *n = epode_presence_change_name(ch);
    return n ? n : "unknown";
}

static const char *subscription_name(epode_subscription_t s)
{
    const char *n = epode_subscription_name(s);
    return n ? n : "unknown";
}

static void on_presence_change(epode_conn_t *conn, const epode_presence_info_t *info,
                               epode_presence_change_t change, void *user)
{
    (void)conn;
    ImObject *self = user;
    if (!self->cbs[0])
        return;
    im_enter(self);
    PyObject *cb = Py_NewRef(self->cbs[0]);
    PyObject *args[2] = {PyUnicode_FromString(presence_change_name(change)),
                         presence_info_tuple(info)};
    Py_XDECREF(im_call(self->conn, cb, args, 2, "presence callback"));
    Py_DECREF(cb);
    im_leave(self);
}

/* The decision: True approves, False refuses, None (or a failure) defers
 * to the auto-accept policy. */
static int on_subscription(epode_conn_t *conn, const char *from, epode_subscription_t what,
                           const char *status, void *user)
{
    (void)conn;
    ImObject *self = user;
    if (!self->cbs[1])
        return EPODE_SUB_DEFER;
    im_enter(self);
    PyObject *cb = Py_NewRef(self->cbs[1]);
    PyObject *args[3] = {S(from), PyUnicode_FromString(subscription_name(what)), S(status)};
    PyObject *r = im_call(self->conn, cb, args, 3, "subscription callback");
    int decision = EPODE_SUB_DEFER; /* an async decider returned None here: it decides later */
    if (r && r != Py_None) {
        int t = PyObject_IsTrue(r);
        if (t < 0) {
            if (!pyepode_keep_fatal(self->conn->context))
                pyepode_report((PyObject *)self->conn, "subscription callback");
        } else {
            decision = t ? EPODE_SUB_ACCEPT : EPODE_SUB_REFUSE;
        }
    }
    Py_XDECREF(r);
    Py_DECREF(cb);
    im_leave(self);
    return decision;
}

static PyObject *Tracker_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    TrackerObject *self = (TrackerObject *)im_new_on_conn(type, args, kwds, "O:PresenceTracker");
    if (!self)
        return NULL;
    int rc = epode_presence_tracker_new(self->base.conn->conn, &self->tracker);
    if (rc == 0)
        rc = epode_presence_tracker_set_event_cb(self->tracker, on_presence_change, self);
    if (rc == 0)
        rc = epode_presence_tracker_set_subscription_cb(self->tracker, on_subscription, self);
    if (rc < 0) {
        Py_DECREF(self);
        return pyepode_raise(rc, "PresenceTracker");
    }
    return (PyObject *)self;
}

static void Tracker_dealloc(TrackerObject *self)
{
    im_dealloc_begin(&self->base);
    epode_presence_tracker_free(self->tracker);
    self->tracker = NULL;
    im_dealloc_end(&self->base);
}

static PyObject *info_or_none(const epode_presence_info_t *i)
{
    if (!i)
        Py_RETURN_NONE;
    return presence_info_tuple(i);
}

static PyObject *Tracker_get(TrackerObject *self, PyObject *arg)
{
    const char *jid;
    if (pyepode_opt_str(arg, &jid, "jid") < 0)
        return NULL;
    return info_or_none(jid ? epode_presence_tracker_get(self->tracker, jid) : NULL);
}

static PyObject *Tracker_best(TrackerObject *self, PyObject *arg)
{
    const char *jid;
    if (pyepode_opt_str(arg, &jid, "jid") < 0)
        return NULL;
    return info_or_none(jid ? epode_presence_tracker_best(self->tracker, jid) : NULL);
}

static PyObject *Tracker_resources(TrackerObject *self, PyObject *arg)
{
    const char *jid;
    if (pyepode_opt_str(arg, &jid, "jid") < 0)
        return NULL;
    size_t n = jid ? epode_presence_tracker_resource_count(self->tracker, jid) : 0;
    PyObject *list = PyList_New((Py_ssize_t)n);
    for (size_t i = 0; list && i < n; i++) {
        PyObject *t = info_or_none(epode_presence_tracker_resource_at(self->tracker, jid, i));
        if (!t) {
            Py_CLEAR(list);
            break;
        }
        PyList_SET_ITEM(list, (Py_ssize_t)i, t);
    }
    return list;
}

static PyObject *Tracker_contacts(TrackerObject *self, PyObject *unused)
{
    (void)unused;
    size_t n = epode_presence_tracker_contact_count(self->tracker);
    PyObject *list = PyList_New((Py_ssize_t)n);
    for (size_t i = 0; list && i < n; i++) {
        PyObject *s = S(epode_presence_tracker_contact_at(self->tracker, i));
        if (!s) {
            Py_CLEAR(list);
            break;
        }
        PyList_SET_ITEM(list, (Py_ssize_t)i, s);
    }
    return list;
}

/* subscribe/approve/deny/cancel/unsubscribe: the sending functions. */
static PyObject *Tracker_subscribe(TrackerObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"jid", "status", NULL};
    const char *jid, *status;
    PyObject *status_obj = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "s|O:subscribe", kwlist, &jid, &status_obj) ||
        pyepode_opt_str(status_obj, &status, "status") < 0)
        return NULL;
    if (epode_jid_validate(jid) < 0)
        return pyepode_raise(EPODE_EJID, "subscribe");
    int rc = epode_presence_subscribe(self->base.conn->conn, jid, status);
    if (rc < 0)
        return pyepode_raise(rc, "subscribe");
    Py_RETURN_NONE;
}

static PyObject *tracker_send(TrackerObject *self, PyObject *arg,
                              int (*fn)(epode_conn_t *, const char *), const char *where)
{
    const char *jid;
    if (pyepode_opt_str(arg, &jid, "jid") < 0)
        return NULL;
    if (!jid || epode_jid_validate(jid) < 0)
        return pyepode_raise(EPODE_EJID, where);
    int rc = fn(self->base.conn->conn, jid);
    if (rc < 0)
        return pyepode_raise(rc, where);
    Py_RETURN_NONE;
}

static PyObject *Tracker_approve(TrackerObject *self, PyObject *arg)
{
    return tracker_send(self, arg, epode_presence_approve, "approve");
}

static PyObject *Tracker_deny(TrackerObject *self, PyObject *arg)
{
    return tracker_send(self, arg, epode_presence_deny, "deny");
}

static PyObject *Tracker_cancel(TrackerObject *self, PyObject *arg)
{
    return tracker_send(self, arg, epode_presence_cancel, "cancel");
}

static PyObject *Tracker_unsubscribe(TrackerObject *self, PyObject *arg)
{
    return tracker_send(self, arg, epode_presence_unsubscribe, "unsubscribe");
}

static PyObject *Tracker_get_auto(TrackerObject *self, void *c)
{
    (void)c;
    return PyLong_FromLong(self->auto_accept);
}

static int Tracker_set_auto(TrackerObject *self, PyObject *v, void *c)
{
    (void)c;
    if (!v) {
        PyErr_SetString(PyExc_AttributeError, "auto_accept cannot be deleted");
        return -1;
    }
    long p = PyLong_AsLong(v);
    if (p == -1 && PyErr_Occurred())
        return -1;
    int rc = p < 0 || p > 2 ? EPODE_EINVAL
                            : epode_presence_tracker_set_auto_accept(self->tracker, (int)p);
    if (rc < 0) {
        PyErr_SetString(PyExc_ValueError, "auto_accept must be 0 (off), 1 (on) or 2 (mutual)");
        return -1;
    }
    self->auto_accept = (int)p;
    return 0;
}

static PyMethodDef Tracker_methods[] = {
    {"get", (PyCFunction)Tracker_get, METH_O,
     "get(jid)\n--\n\nA full JID's presence (a bare JID: its best resource's) as a tuple\n"
     "(jid, resource, show, status, priority, bare, error, stanza), or None."},
    {"best", (PyCFunction)Tracker_best, METH_O,
     "best(jid)\n--\n\nThe best online resource of a bare JID (highest priority, then\n"
     "most available, then most recent), or None."},
    {"resources", (PyCFunction)Tracker_resources, METH_O,
     "resources(jid)\n--\n\nThe online resources of a bare JID, in the order they came."},
    {"contacts", (PyCFunction)Tracker_contacts, METH_NOARGS,
     "contacts()\n--\n\nThe bare JIDs with at least one resource online."},
    {"subscribe", (PyCFunction)(void (*)(void))Tracker_subscribe, METH_VARARGS | METH_KEYWORDS,
     "subscribe(jid, status=None)\n--\n\nAsks `jid` for a subscription to its presence."},
    {"approve", (PyCFunction)Tracker_approve, METH_O,
     "approve(jid)\n--\n\nApproves (or pre-approves) jid's subscription request."},
    {"deny", (PyCFunction)Tracker_deny, METH_O,
     "deny(jid)\n--\n\nRefuses jid's pending subscription request."},
    {"cancel", (PyCFunction)Tracker_cancel, METH_O,
     "cancel(jid)\n--\n\nCancels jid's subscription to our presence."},
    {"unsubscribe", (PyCFunction)Tracker_unsubscribe, METH_O,
     "unsubscribe(jid)\n--\n\nEnds our subscription to jid's presence."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Tracker_getset[] = {
    {"on_event", (getter)get_cb, (setter)set_cb,
     "callable(change, info) or None: change 'available', 'changed',\n"
     "'unavailable' or 'error'.", (void *)0},
    {"on_subscription", (getter)get_cb, (setter)set_cb,
     "callable(jid, kind, status) or None, kind 'request', 'approved',\n"
     "'revoked' or 'ended'. For a request: True approves, False refuses,\n"
     "None leaves it to auto_accept (or to a later approve()/deny()).", (void *)1},
    {"auto_accept", (getter)Tracker_get_auto, (setter)Tracker_set_auto,
     "What happens to requests the callback leaves: 0 nothing, 1 approve,\n"
     "2 approve and ask back.", NULL},
    {"connection", (getter)get_connection, NULL, "The Connection.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject TrackerType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "epode._epode.PresenceTracker",
    .tp_basicsize = sizeof(TrackerObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "PresenceTracker(connection)\n--\n\nWho is online on which resources (the\n"
              "low-level half of epode.PresenceTracker).",
    .tp_new = Tracker_new,
    .tp_dealloc = (destructor)Tracker_dealloc,
    .tp_traverse = (traverseproc)im_traverse,
    .tp_clear = (inquiry)im_clear,
    .tp_methods = Tracker_methods,
    .tp_getset = Tracker_getset,
    .tp_weaklistoffset = offsetof(ImObject, weakrefs),
};

/* ---- Disco -------------------------------------------------------------- */

/* (node, [(category, type, name, lang)], [feature], [(form_type, type,
 * [(var, type, (value, ...))])]) */
static PyObject *disco_info_tuple(const epode_disco_info_t *info)
{
    PyObject *ids = PyList_New((Py_ssize_t)info->nidentities);
    for (size_t i = 0; ids && i < info->nidentities; i++) {
        const epode_disco_identity_t *id = &info->identities[i];
        PyObject *t = steal_tuple(4, S(id->category), S(id->type), S(id->name), S(id->lang));
        if (!t) {
            Py_CLEAR(ids);
            break;
        }
        PyList_SET_ITEM(ids, (Py_ssize_t)i, t);
    }
    PyObject *feats = PyList_New((Py_ssize_t)info->nfeatures);
    for (size_t i = 0; feats && i < info->nfeatures; i++) {
        PyObject *s = S(info->features[i]);
        if (!s) {
            Py_CLEAR(feats);
            break;
        }
        PyList_SET_ITEM(feats, (Py_ssize_t)i, s);
    }
    PyObject *forms = PyList_New((Py_ssize_t)info->nforms);
    for (size_t i = 0; forms && i < info->nforms; i++) {
        const epode_disco_form_t *f = &info->forms[i];
        PyObject *fields = PyList_New((Py_ssize_t)f->nfields);
        for (size_t j = 0; fields && j < f->nfields; j++) {
            const epode_disco_field_t *fd = &f->fields[j];
            PyObject *vals = PyTuple_New((Py_ssize_t)fd->nvalues);
            for (size_t k = 0; vals && k < fd->nvalues; k++) {
                PyObject *v = S(fd->values[k]);
                if (!v) {
                    Py_CLEAR(vals);
                    break;
                }
                PyTuple_SET_ITEM(vals, (Py_ssize_t)k, v);
            }
            PyObject *t = steal_tuple(3, S(fd->var), S(fd->type), vals);
            if (!t) {
                Py_CLEAR(fields);
                break;
            }
            PyList_SET_ITEM(fields, (Py_ssize_t)j, t);
        }
        PyObject *t = steal_tuple(3, S(f->form_type), S(f->type), fields);
        if (!t) {
            Py_CLEAR(forms);
            break;
        }
        PyList_SET_ITEM(forms, (Py_ssize_t)i, t);
    }
    return steal_tuple(4, S(info->node), ids, feats, forms);
}

/* (node, [(jid, node, name)]) */
static PyObject *disco_items_tuple(const epode_disco_items_t *items)
{
    PyObject *list = PyList_New((Py_ssize_t)items->nitems);
    for (size_t i = 0; list && i < items->nitems; i++) {
        const epode_disco_item_t *it = &items->items[i];
        PyObject *t = steal_tuple(3, S(it->jid), S(it->node), S(it->name));
        if (!t) {
            Py_CLEAR(list);
            break;
        }
        PyList_SET_ITEM(list, (Py_ssize_t)i, t);
    }
    return steal_tuple(2, S(items->node), list);
}

static void disco_answer(im_req *q, int status, epode_stanza_cond_t cond, PyObject *result,
                         const char *where)
{
    ImObject *owner = q->owner;
    ConnectionObject *conn = q->conn;
    im_enter(owner);
    PyObject *cb = req_take(q);
    if (cb) {
        PyObject *args[3] = {PyLong_FromLong(status), result, cond_or_none(cond)};
        Py_XDECREF(im_call(conn, cb, args, 3, where));
        Py_DECREF(cb);
    } else {
        Py_XDECREF(result);
        if (!result)
            PyErr_Clear();
    }
    im_leave(owner);
}

static void on_disco_info(epode_disco_t *d, const char *jid, const char *node,
                          const epode_disco_info_t *info, int status, epode_stanza_cond_t cond,
                          void *user)
{
    (void)d, (void)jid, (void)node;
    disco_answer(user, status, cond, info ? disco_info_tuple(info) : Py_NewRef(Py_None),
                 "disco#info callback");
}

static void on_disco_items(epode_disco_t *d, const char *jid, const char *node,
                           const epode_disco_items_t *items, int status,
                           epode_stanza_cond_t cond, void *user)
{
    (void)d, (void)jid, (void)node;
    disco_answer(user, status, cond, items ? disco_items_tuple(items) : Py_NewRef(Py_None),
                 "disco#items callback");
}

static PyObject *Disco_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    DiscoObject *self = (DiscoObject *)im_new_on_conn(type, args, kwds, "O:Disco");
    if (!self)
        return NULL;
    int rc = epode_disco_new(self->base.conn->conn, &self->disco);
    if (rc < 0) {
        Py_DECREF(self);
        return pyepode_raise(rc, "Disco");
    }
    return (PyObject *)self;
}

static void Disco_dealloc(DiscoObject *self)
{
    im_dealloc_begin(&self->base);
    /* Pending queries are dropped without their callbacks: im_dealloc_end
     * frees what is left of them. */
    epode_disco_free(self->disco);
    self->disco = NULL;
    im_dealloc_end(&self->base);
}

static PyObject *rc_none(int rc, const char *where)
{
    if (rc < 0)
        return pyepode_raise(rc, where);
    Py_RETURN_NONE;
}

static PyObject *Disco_add_identity(DiscoObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"category", "type", "name", "lang", "node", NULL};
    const char *cat, *type, *s[3];
    PyObject *o[3] = {Py_None, Py_None, Py_None};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "ss|OOO:add_identity", kwlist, &cat, &type,
                                     &o[0], &o[1], &o[2]) ||
        pyepode_opt_str(o[0], &s[0], "name") < 0 || pyepode_opt_str(o[1], &s[1], "lang") < 0 ||
        pyepode_opt_str(o[2], &s[2], "node") < 0)
        return NULL;
    return rc_none(epode_disco_add_identity(self->disco, s[2], cat, type, s[0], s[1]),
                    "add_identity");
}

static PyObject *Disco_remove_identity(DiscoObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"category", "type", "lang", "node", NULL};
    const char *cat, *type, *s[2];
    PyObject *o[2] = {Py_None, Py_None};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "ss|OO:remove_identity", kwlist, &cat, &type,
                                     &o[0], &o[1]) ||
        pyepode_opt_str(o[0], &s[0], "lang") < 0 || pyepode_opt_str(o[1], &s[1], "node") < 0)
        return NULL;
    return rc_none(epode_disco_remove_identity(self->disco, s[1], cat, type, s[0]),
                    "remove_identity");
}

static PyObject *Disco_feature(DiscoObject *self, PyObject *args, PyObject *kwds, int add)
{
    static char *kwlist[] = {"var", "node", NULL};
    const char *var, *node;
    PyObject *node_obj = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, add ? "s|O:add_feature" : "s|O:remove_feature",
                                     kwlist, &var, &node_obj) ||
        pyepode_opt_str(node_obj, &node, "node") < 0)
        return NULL;
    return add ? rc_none(epode_disco_add_feature(self->disco, node, var), "add_feature")
               : rc_none(epode_disco_remove_feature(self->disco, node, var), "remove_feature");
}

static PyObject *Disco_add_feature(DiscoObject *self, PyObject *args, PyObject *kwds)
{
    return Disco_feature(self, args, kwds, 1);
}

static PyObject *Disco_remove_feature(DiscoObject *self, PyObject *args, PyObject *kwds)
{
    return Disco_feature(self, args, kwds, 0);
}

static PyObject *Disco_add_item(DiscoObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"jid", "item_node", "name", "node", NULL};
    const char *jid, *s[3];
    PyObject *o[3] = {Py_None, Py_None, Py_None};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "s|OOO:add_item", kwlist, &jid, &o[0], &o[1],
                                     &o[2]) ||
        pyepode_opt_str(o[0], &s[0], "item_node") < 0 ||
        pyepode_opt_str(o[1], &s[1], "name") < 0 || pyepode_opt_str(o[2], &s[2], "node") < 0)
        return NULL;
    return rc_none(epode_disco_add_item(self->disco, s[2], jid, s[0], s[1]), "add_item");
}

static PyObject *Disco_remove_item(DiscoObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"jid", "item_node", "node", NULL};
    const char *jid, *s[2];
    PyObject *o[2] = {Py_None, Py_None};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "s|OO:remove_item", kwlist, &jid, &o[0],
                                     &o[1]) ||
        pyepode_opt_str(o[0], &s[0], "item_node") < 0 || pyepode_opt_str(o[1], &s[1], "node") < 0)
        return NULL;
    return rc_none(epode_disco_remove_item(self->disco, s[1], jid, s[0]), "remove_item");
}

static PyObject *Disco_add_form(DiscoObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"form", "node", NULL};
    PyObject *form_obj, *node_obj = Py_None;
    const char *node;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|O:add_form", kwlist, &form_obj, &node_obj) ||
        pyepode_opt_str(node_obj, &node, "node") < 0)
        return NULL;
    epode_stanza_t *owned;
    epode_stanza_t *form = pyepode_stanza_arg(form_obj, &owned);
    if (!form)
        return NULL;
    int rc = epode_disco_add_form(self->disco, node, form);
    epode_stanza_unref(owned);
    return rc_none(rc, "add_form");
}

static PyObject *Disco_remove_form(DiscoObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"form_type", "node", NULL};
    const char *ft, *node;
    PyObject *node_obj = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "s|O:remove_form", kwlist, &ft, &node_obj) ||
        pyepode_opt_str(node_obj, &node, "node") < 0)
        return NULL;
    return rc_none(epode_disco_remove_form(self->disco, node, ft), "remove_form");
}

static PyObject *Disco_set_alias(DiscoObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"alias", "target", NULL};
    const char *alias, *target;
    PyObject *target_obj = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "s|O:set_alias", kwlist, &alias, &target_obj) ||
        pyepode_opt_str(target_obj, &target, "target") < 0)
        return NULL;
    return rc_none(epode_disco_set_alias(self->disco, alias, target), "set_alias");
}

static PyObject *Disco_remove_alias(DiscoObject *self, PyObject *arg)
{
    const char *alias;
    if (pyepode_opt_str(arg, &alias, "alias") < 0)
        return NULL;
    if (!alias)
        return pyepode_raise(EPODE_EINVAL, "remove_alias");
    return rc_none(epode_disco_remove_alias(self->disco, alias), "remove_alias");
}

/* Our own <query/> for `node`, as a Stanza (as_tuple 0) or parsed. */
static PyObject *disco_local(DiscoObject *self, PyObject *args, PyObject *kwds, int as_tuple)
{
    static char *kwlist[] = {"node", NULL};
    PyObject *node_obj = Py_None;
    const char *node;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, as_tuple ? "|O:local_info" : "|O:build_info",
                                     kwlist, &node_obj) ||
        pyepode_opt_str(node_obj, &node, "node") < 0)
        return NULL;
    epode_stanza_t *q = NULL;
    int rc = epode_disco_build_info(self->disco, node, &q);
    if (rc < 0)
        return pyepode_raise(rc, as_tuple ? "local_info" : "build_info");
    if (!as_tuple)
        return pyepode_stanza_adopt(q, 0);
    epode_disco_info_t *info = NULL;
    rc = epode_disco_info_parse(q, &info);
    epode_stanza_unref(q);
    if (rc < 0)
        return pyepode_raise(rc, "local_info");
    PyObject *t = disco_info_tuple(info);
    epode_disco_info_free(info);
    return t;
}

static PyObject *Disco_build_info(DiscoObject *self, PyObject *args, PyObject *kwds)
{
    return disco_local(self, args, kwds, 0);
}

static PyObject *Disco_local_info(DiscoObject *self, PyObject *args, PyObject *kwds)
{
    return disco_local(self, args, kwds, 1);
}

static PyObject *disco_ask(DiscoObject *self, PyObject *args, PyObject *kwds, int items)
{
    static char *kwlist[] = {"jid", "node", "callback", "timeout", NULL};
    PyObject *jid_obj, *node_obj, *cb, *timeout_obj = Py_None;
    const char *jid, *node;
    unsigned ms;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, items ? "OOO|O:get_items" : "OOO|O:get_info",
                                     kwlist, &jid_obj, &node_obj, &cb, &timeout_obj) ||
        pyepode_opt_str(jid_obj, &jid, "jid") < 0 || pyepode_opt_str(node_obj, &node, "node") < 0 ||
        check_callable(cb, 0) < 0 || opt_timeout(timeout_obj, &ms) < 0)
        return NULL;
    im_req *q = req_new(&self->base, cb);
    if (!q)
        return NULL;
    int rc = items ? epode_disco_get_items(self->disco, jid, node, ms, on_disco_items, q, &q->id)
                   : epode_disco_get_info(self->disco, jid, node, ms, on_disco_info, q, &q->id);
    if (rc < 0) {
        Py_XDECREF(req_take(q));
        return pyepode_raise(rc, items ? "disco items" : "disco info");
    }
    return PyLong_FromUnsignedLong(q->id);
}

PyDoc_STRVAR(Disco_get_info_doc,
"get_info(jid, node, callback, timeout=None)\n--\n\n"
"Asks `jid` (None: our own account) for disco#info of `node` (or None).\n"
"callback(status, info, condition) runs once: status 0 and the info as a\n"
"tuple (node, identities, features, forms); or None and epode.EPROTOCOL\n"
"(an error answer: condition names it), ETIMEDOUT or ECANCELED. timeout in\n"
"seconds (None: 30). Returns an id for cancel().");

static PyObject *Disco_get_info(DiscoObject *self, PyObject *args, PyObject *kwds)
{
    return disco_ask(self, args, kwds, 0);
}

static PyObject *Disco_get_items(DiscoObject *self, PyObject *args, PyObject *kwds)
{
    return disco_ask(self, args, kwds, 1);
}

static PyObject *Disco_cancel(DiscoObject *self, PyObject *arg)
{
    unsigned long id = PyLong_AsUnsignedLong(arg);
    if (id == (unsigned long)-1 && PyErr_Occurred())
        return NULL;
    for (im_req *q = self->base.reqs; q; q = q->next)
        if (q->id == id) {
            epode_disco_cancel(self->disco, q->id);
            Py_XDECREF(req_take(q));
            Py_RETURN_TRUE;
        }
    Py_RETURN_FALSE;
}

static PyMethodDef Disco_methods[] = {
    {"add_identity", (PyCFunction)(void (*)(void))Disco_add_identity,
     METH_VARARGS | METH_KEYWORDS,
     "add_identity(category, type, name=None, lang=None, node=None)\n--\n\n"
     "Adds an identity to what we answer (for `node`, None: ourselves)."},
    {"remove_identity", (PyCFunction)(void (*)(void))Disco_remove_identity,
     METH_VARARGS | METH_KEYWORDS,
     "remove_identity(category, type, lang=None, node=None)\n--\n\nRemoves an identity."},
    {"add_feature", (PyCFunction)(void (*)(void))Disco_add_feature,
     METH_VARARGS | METH_KEYWORDS,
     "add_feature(var, node=None)\n--\n\nAdds a feature to what we answer."},
    {"remove_feature", (PyCFunction)(void (*)(void))Disco_remove_feature,
     METH_VARARGS | METH_KEYWORDS,
     "remove_feature(var, node=None)\n--\n\nRemoves a feature (epode.Error ENOTFOUND if absent)."},
    {"add_item", (PyCFunction)(void (*)(void))Disco_add_item, METH_VARARGS | METH_KEYWORDS,
     "add_item(jid, item_node=None, name=None, node=None)\n--\n\n"
     "Adds an item to what disco#items of `node` answers."},
    {"remove_item", (PyCFunction)(void (*)(void))Disco_remove_item,
     METH_VARARGS | METH_KEYWORDS,
     "remove_item(jid, item_node=None, node=None)\n--\n\nRemoves an item."},
    {"add_form", (PyCFunction)(void (*)(void))Disco_add_form, METH_VARARGS | METH_KEYWORDS,
     "add_form(form, node=None)\n--\n\nAdds an XEP-0128 form (a jabber:x:data result with a\n"
     "hidden FORM_TYPE; a Stanza or XML text)."},
    {"remove_form", (PyCFunction)(void (*)(void))Disco_remove_form,
     METH_VARARGS | METH_KEYWORDS,
     "remove_form(form_type, node=None)\n--\n\nRemoves the form with that FORM_TYPE."},
    {"set_alias", (PyCFunction)(void (*)(void))Disco_set_alias, METH_VARARGS | METH_KEYWORDS,
     "set_alias(alias, target=None)\n--\n\nAnswers node `alias` with what `target` holds."},
    {"remove_alias", (PyCFunction)Disco_remove_alias, METH_O,
     "remove_alias(alias)\n--\n\nRemoves an alias."},
    {"build_info", (PyCFunction)(void (*)(void))Disco_build_info, METH_VARARGS | METH_KEYWORDS,
     "build_info(node=None)\n--\n\nThe disco#info <query/> we would answer, as a Stanza."},
    {"local_info", (PyCFunction)(void (*)(void))Disco_local_info, METH_VARARGS | METH_KEYWORDS,
     "local_info(node=None)\n--\n\nWhat we would answer, as an info tuple."},
    {"get_info", (PyCFunction)(void (*)(void))Disco_get_info, METH_VARARGS | METH_KEYWORDS,
     Disco_get_info_doc},
    {"get_items", (PyCFunction)(void (*)(void))Disco_get_items, METH_VARARGS | METH_KEYWORDS,
     "get_items(jid, node, callback, timeout=None)\n--\n\nLike get_info() for disco#items:\n"
     "the result is (node, [(jid, node, name), ...])."},
    {"cancel", (PyCFunction)Disco_cancel, METH_O,
     "cancel(id)\n--\n\nForgets a pending query (its callback will not run). False if it\n"
     "was not pending."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Disco_getset[] = {
    {"connection", (getter)get_connection, NULL, "The Connection.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject DiscoType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "epode._epode.Disco",
    .tp_basicsize = sizeof(DiscoObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "Disco(connection)\n--\n\nService discovery (XEP-0030): what we answer, and\n"
              "queries to others (the low-level half of epode.Disco).",
    .tp_new = Disco_new,
    .tp_dealloc = (destructor)Disco_dealloc,
    .tp_traverse = (traverseproc)im_traverse,
    .tp_clear = (inquiry)im_clear,
    .tp_methods = Disco_methods,
    .tp_getset = Disco_getset,
    .tp_weaklistoffset = offsetof(ImObject, weakrefs),
};

/* ---- Caps --------------------------------------------------------------- */

static void on_caps(epode_caps_t *caps, const char *jid, const epode_disco_info_t *info,
                    void *user)
{
    (void)caps;
    ImObject *self = user;
    if (!self->cbs[0])
        return;
    im_enter(self);
    PyObject *cb = Py_NewRef(self->cbs[0]);
    PyObject *args[2] = {S(jid), info ? disco_info_tuple(info) : Py_NewRef(Py_None)};
    Py_XDECREF(im_call(self->conn, cb, args, 2, "caps callback"));
    Py_DECREF(cb);
    im_leave(self);
}

static PyObject *Caps_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"disco", "node", NULL};
    PyObject *disco_obj, *node_obj;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O!U:Caps", kwlist, &DiscoType, &disco_obj,
                                     &node_obj))
        return NULL;
    const char *node;
    if (pyepode_opt_str(node_obj, &node, "node") < 0)
        return NULL;
    DiscoObject *disco = (DiscoObject *)disco_obj;
    CapsObject *self = (CapsObject *)type->tp_alloc(type, 0);
    if (!self)
        return NULL;
    if (im_init_base(&self->base, (PyObject *)disco->base.conn) < 0) {
        Py_DECREF(self);
        return NULL;
    }
    /* The C caps lives on the C disco: keep it until we are gone. */
    self->base.parent = Py_NewRef(disco_obj);
    self->node = Py_NewRef(node_obj);
    int rc = epode_caps_new(disco->disco, node, &self->caps);
    if (rc == 0)
        rc = epode_caps_set_cb(self->caps, on_caps, self);
    if (rc < 0) {
        Py_DECREF(self);
        return pyepode_raise(rc, "Caps");
    }
    return (PyObject *)self;
}

static void Caps_dealloc(CapsObject *self)
{
    im_dealloc_begin(&self->base);
    epode_caps_free(self->caps); /* before its disco: base.parent still holds it */
    self->caps = NULL;
    Py_CLEAR(self->node);
    im_dealloc_end(&self->base);
}

static PyObject *Caps_supports(CapsObject *self, PyObject *args)
{
    const char *jid, *feature;
    if (!PyArg_ParseTuple(args, "ss:supports", &jid, &feature))
        return NULL;
    int rc = epode_caps_supports(self->caps, jid, feature);
    if (rc == EPODE_ENOTFOUND)
        Py_RETURN_NONE;
    if (rc < 0)
        return pyepode_raise(rc, "supports");
    return PyBool_FromLong(rc);
}

static PyObject *Caps_info(CapsObject *self, PyObject *arg)
{
    const char *jid;
    if (pyepode_opt_str(arg, &jid, "jid") < 0)
        return NULL;
    const epode_disco_info_t *info = jid ? epode_caps_get_info(self->caps, jid) : NULL;
    if (!info)
        Py_RETURN_NONE;
    return disco_info_tuple(info);
}

static PyObject *Caps_get_ver(CapsObject *self, void *c)
{
    (void)c;
    return S(epode_caps_get_ver(self->caps));
}

static PyObject *Caps_get_node(CapsObject *self, void *c)
{
    (void)c;
    return Py_NewRef(self->node);
}

static PyObject *Caps_get_count(CapsObject *self, void *c)
{
    (void)c;
    return PyLong_FromSize_t(epode_caps_cache_count(self->caps));
}

static PyObject *Caps_get_disco(CapsObject *self, void *c)
{
    (void)c;
    return Py_NewRef(self->base.parent);
}

static PyMethodDef Caps_methods[] = {
    {"supports", (PyCFunction)Caps_supports, METH_VARARGS,
     "supports(jid, feature)\n--\n\nDoes `jid` (a full JID) support `feature`? True, False, or\n"
     "None when nothing verified is known about it (yet)."},
    {"info", (PyCFunction)Caps_info, METH_O,
     "info(jid)\n--\n\nThe verified disco#info of `jid` as an info tuple, or None."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Caps_getset[] = {
    {"on_event", (getter)get_cb, (setter)set_cb,
     "callable(jid, info) or None: what is known about jid changed (info\n"
     "None: nothing any more).", (void *)0},
    {"ver", (getter)Caps_get_ver, NULL, "Our verification string, or None.", NULL},
    {"node", (getter)Caps_get_node, NULL, "The node we announce.", NULL},
    {"cache_count", (getter)Caps_get_count, NULL, "Verified entries cached.", NULL},
    {"disco", (getter)Caps_get_disco, NULL, "The Disco it sits on.", NULL},
    {"connection", (getter)get_connection, NULL, "The Connection.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject CapsType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "epode._epode.Caps",
    .tp_basicsize = sizeof(CapsObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "Caps(disco, node)\n--\n\nEntity capabilities (XEP-0115) on a Disco (the\n"
              "low-level half of epode.Caps).",
    .tp_new = Caps_new,
    .tp_dealloc = (destructor)Caps_dealloc,
    .tp_traverse = (traverseproc)im_traverse,
    .tp_clear = (inquiry)im_clear,
    .tp_methods = Caps_methods,
    .tp_getset = Caps_getset,
    .tp_weaklistoffset = offsetof(ImObject, weakrefs),
};

/* ---- Muc ---------------------------------------------------------------- */

static PyObject *occupant_tuple(const epode_muc_occupant_t *o)
{
    return steal_tuple(7, S(o->nick), S(o->jid), S(o->role), S(o->affiliation), S(o->show),
                       S(o->status), PyBool_FromLong(o->is_self));
}

static PyObject *room_tuple(const epode_muc_room_t *r)
{
    size_t n = epode_muc_room_occupant_count(r);
    PyObject *occs = PyList_New((Py_ssize_t)n);
    for (size_t i = 0; occs && i < n; i++) {
        PyObject *t = occupant_tuple(epode_muc_room_occupant_at(r, i));
        if (!t) {
            Py_CLEAR(occs);
            break;
        }
        PyList_SET_ITEM(occs, (Py_ssize_t)i, t);
    }
    return steal_tuple(5, S(epode_muc_room_jid(r)), S(epode_muc_room_nick(r)),
                       PyBool_FromLong(epode_muc_room_is_joined(r)),
                       S(epode_muc_room_subject(r)), occs);
}

static const char *muc_event_name(epode_muc_event_type_t t)
{
    const char *n = epode_muc_event_type_name(t);
    return n ? n : "unknown";
}

/* (type, room, nick, occupant, body, subject, is_self, history, created,
 *  condition, text, fatal, retrying, codes, stanza) */
static PyObject *muc_event_tuple(const epode_muc_event_t *ev)
{
    PyObject *codes = PyTuple_New((Py_ssize_t)ev->ncodes);
    for (size_t i = 0; codes && i < ev->ncodes; i++) {
        PyObject *c = PyLong_FromLong(ev->codes[i]);
        if (!c) {
            Py_CLEAR(codes);
            break;
        }
        PyTuple_SET_ITEM(codes, (Py_ssize_t)i, c);
    }
    return steal_tuple(
        15, PyUnicode_FromString(muc_event_name(ev->type)), S(epode_muc_room_jid(ev->room)),
        S(ev->nick), ev->occupant ? occupant_tuple(ev->occupant) : Py_NewRef(Py_None),
        S(ev->body), S(ev->subject), PyBool_FromLong(ev->is_self),
        PyBool_FromLong(ev->is_history), PyBool_FromLong(ev->created),
        ev->type == EPODE_MUC_ERROR ? cond_or_none(ev->cond) : Py_NewRef(Py_None),
        S(ev->error_text), PyBool_FromLong(ev->fatal), PyBool_FromLong(ev->retrying), codes,
        ev->stanza ? pyepode_stanza_wrap(ev->stanza, 1) : Py_NewRef(Py_None));
}

static void on_muc_event(epode_conn_t *conn, const epode_muc_event_t *ev, void *user)
{
    (void)conn;
    ImObject *self = user;
    if (!self->cbs[0])
        return;
    im_enter(self);
    PyObject *cb = Py_NewRef(self->cbs[0]);
    PyObject *arg = muc_event_tuple(ev);
    Py_XDECREF(im_call(self->conn, cb, &arg, 1, "MUC callback"));
    Py_DECREF(cb);
    im_leave(self);
}

static PyObject *Muc_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    MucObject *self = (MucObject *)im_new_on_conn(type, args, kwds, "O:Muc");
    if (!self)
        return NULL;
    if (!(self->rooms = PySet_New(NULL))) {
        Py_DECREF(self);
        return NULL;
    }
    int rc = epode_muc_new(self->base.conn->conn, on_muc_event, self, &self->muc);
    if (rc < 0) {
        Py_DECREF(self);
        return pyepode_raise(rc, "Muc");
    }
    return (PyObject *)self;
}

static void Muc_dealloc(MucObject *self)
{
    im_dealloc_begin(&self->base);
    epode_muc_free(self->muc);
    self->muc = NULL;
    Py_CLEAR(self->rooms);
    im_dealloc_end(&self->base);
}

static epode_muc_room_t *muc_room(MucObject *self, const char *room, const char *where)
{
    epode_muc_room_t *r = epode_muc_find(self->muc, room);
    if (!r) {
        PyObject *msg = PyUnicode_FromFormat("%s: not in room %s", where, room);
        if (msg) {
            PyObject *exc = pyepode_make_error(pyepode_Error, EPODE_ENOTFOUND,
                                               PyUnicode_AsUTF8(msg), NULL, NULL);
            if (exc) {
                PyErr_SetObject(pyepode_Error, exc);
                Py_DECREF(exc);
            }
            Py_DECREF(msg);
        }
    }
    return r;
}

PyDoc_STRVAR(Muc_join_doc,
"join(room, nick, password=None, maxstanzas=-1, seconds=-1)\n--\n\n"
"Joins `room` (a bare JID) as `nick`; the 'joined' event (or a fatal\n"
"'error') follows. History: at most `maxstanzas` messages of the last\n"
"`seconds` (-1: the room's default). Not logged in: the join goes out at\n"
"login. Returns the room's normalized JID. epode.Error EJID for a bad\n"
"room or nick, ESTATE if already in (or joining) that room.");

static PyObject *Muc_join(MucObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"room", "nick", "password", "maxstanzas", "seconds", NULL};
    const char *room, *nick, *password;
    PyObject *pw_obj = Py_None;
    int maxstanzas = -1, seconds = -1;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "ss|Oii:join", kwlist, &room, &nick, &pw_obj,
                                     &maxstanzas, &seconds) ||
        pyepode_opt_str(pw_obj, &password, "password") < 0)
        return NULL;
    epode_muc_room_t *r = NULL;
    int rc = epode_muc_join(self->muc, room, nick, password, maxstanzas, seconds, &r);
    if (rc < 0)
        return pyepode_raise(rc, "join");
    PyObject *jid = S(epode_muc_room_jid(r));
    if (jid && PySet_Add(self->rooms, jid) < 0)
        Py_CLEAR(jid);
    return jid;
}

static PyObject *Muc_leave(MucObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"room", "status", NULL};
    const char *room, *status;
    PyObject *status_obj = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "s|O:leave", kwlist, &room, &status_obj) ||
        pyepode_opt_str(status_obj, &status, "status") < 0)
        return NULL;
    epode_muc_room_t *r = muc_room(self, room, "leave");
    if (!r)
        return NULL;
    int rc = epode_muc_leave(r, status);
    if (rc < 0)
        return pyepode_raise(rc, "leave");
    /* True: 'left' will follow; False: dropped at once (not logged in). */
    return PyBool_FromLong(epode_muc_find(self->muc, room) != NULL);
}

static PyObject *Muc_send(MucObject *self, PyObject *args)
{
    const char *room, *body;
    if (!PyArg_ParseTuple(args, "ss:send", &room, &body))
        return NULL;
    epode_muc_room_t *r = muc_room(self, room, "send");
    if (!r)
        return NULL;
    return rc_none(epode_muc_send(r, body), "send");
}

static PyObject *Muc_send_private(MucObject *self, PyObject *args)
{
    const char *room, *nick, *body;
    if (!PyArg_ParseTuple(args, "sss:send_private", &room, &nick, &body))
        return NULL;
    epode_muc_room_t *r = muc_room(self, room, "send_private");
    if (!r)
        return NULL;
    return rc_none(epode_muc_send_private(r, nick, body), "send_private");
}

static PyObject *Muc_set_subject(MucObject *self, PyObject *args)
{
    const char *room, *subject;
    if (!PyArg_ParseTuple(args, "ss:set_subject", &room, &subject))
        return NULL;
    epode_muc_room_t *r = muc_room(self, room, "set_subject");
    if (!r)
        return NULL;
    return rc_none(epode_muc_set_subject(r, subject), "set_subject");
}

static PyObject *Muc_room(MucObject *self, PyObject *arg)
{
    const char *room;
    if (pyepode_opt_str(arg, &room, "room") < 0)
        return NULL;
    epode_muc_room_t *r = room ? epode_muc_find(self->muc, room) : NULL;
    if (!r)
        Py_RETURN_NONE;
    return room_tuple(r);
}

static PyObject *Muc_rooms(MucObject *self, PyObject *unused)
{
    (void)unused;
    PyObject *list = PyList_New(0), *gone = PyList_New(0);
    PyObject *it = list && gone ? PyObject_GetIter(self->rooms) : NULL, *jid;
    while (it && (jid = PyIter_Next(it))) {
        epode_muc_room_t *r = epode_muc_find(self->muc, PyUnicode_AsUTF8(jid));
        PyObject *t = r ? room_tuple(r) : NULL;
        int rc = r ? (t ? PyList_Append(list, t) : -1) : PyList_Append(gone, jid);
        Py_XDECREF(t);
        Py_DECREF(jid);
        if (rc < 0)
            Py_CLEAR(it);
    }
    Py_XDECREF(it);
    if (PyErr_Occurred()) {
        Py_XDECREF(list);
        Py_XDECREF(gone);
        return NULL;
    }
    /* Forget the rooms epode no longer has (left, refused, dropped). */
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(gone); i++)
        PySet_Discard(self->rooms, PyList_GET_ITEM(gone, i));
    Py_DECREF(gone);
    if (PyList_Sort(list) < 0)
        Py_CLEAR(list);
    return list;
}

static PyObject *Muc_set_nick_retry(MucObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"max_tries", "suffix", NULL};
    PyObject *tries_obj, *suffix_obj = Py_None;
    const char *suffix;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|O:set_nick_retry", kwlist, &tries_obj,
                                     &suffix_obj) ||
        pyepode_opt_str(suffix_obj, &suffix, "suffix") < 0)
        return NULL;
    long tries = PyLong_AsLong(tries_obj);
    if (tries == -1 && PyErr_Occurred())
        return NULL;
    if (tries < 0 || tries > 100) {
        PyErr_SetString(PyExc_ValueError, "max_tries must be between 0 and 100");
        return NULL;
    }
    return rc_none(epode_muc_set_nick_retry(self->muc, suffix, (unsigned)tries), "set_nick_retry");
}

static int Muc_traverse(MucObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->rooms);
    return im_traverse(&self->base, visit, arg);
}

static PyMethodDef Muc_methods[] = {
    {"join", (PyCFunction)(void (*)(void))Muc_join, METH_VARARGS | METH_KEYWORDS, Muc_join_doc},
    {"leave", (PyCFunction)(void (*)(void))Muc_leave, METH_VARARGS | METH_KEYWORDS,
     "leave(room, status=None)\n--\n\nLeaves the room. True if a 'left' event will follow,\n"
     "False if the room was dropped at once (not logged in)."},
    {"send", (PyCFunction)Muc_send, METH_VARARGS,
     "send(room, body)\n--\n\nSends a groupchat message (epode.Error ESTATE if not joined)."},
    {"send_private", (PyCFunction)Muc_send_private, METH_VARARGS,
     "send_private(room, nick, body)\n--\n\nSends a private message to an occupant."},
    {"set_subject", (PyCFunction)Muc_set_subject, METH_VARARGS,
     "set_subject(room, subject)\n--\n\nAsks the room to change its subject."},
    {"room", (PyCFunction)Muc_room, METH_O,
     "room(jid)\n--\n\nThe room as a tuple (jid, nick, joined, subject, occupants), or None."},
    {"rooms", (PyCFunction)Muc_rooms, METH_NOARGS,
     "rooms()\n--\n\nEvery room we are in or joining, as tuples (sorted by JID)."},
    {"set_nick_retry", (PyCFunction)(void (*)(void))Muc_set_nick_retry,
     METH_VARARGS | METH_KEYWORDS,
     "set_nick_retry(max_tries, suffix=None)\n--\n\nOn a nick conflict, join again with\n"
     "`suffix` (default '_') added, up to max_tries times."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Muc_getset[] = {
    {"on_event", (getter)get_cb, (setter)set_cb,
     "callable(event_tuple) or None, for every room event.", (void *)0},
    {"connection", (getter)get_connection, NULL, "The Connection.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject MucType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "epode._epode.Muc",
    .tp_basicsize = sizeof(MucObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "Muc(connection)\n--\n\nMulti-user chat (XEP-0045) rooms of a connection (the\n"
              "low-level half of epode.Muc).",
    .tp_new = Muc_new,
    .tp_dealloc = (destructor)Muc_dealloc,
    .tp_traverse = (traverseproc)Muc_traverse,
    .tp_clear = (inquiry)im_clear,
    .tp_methods = Muc_methods,
    .tp_getset = Muc_getset,
    .tp_weaklistoffset = offsetof(ImObject, weakrefs),
};

/* ---- module ------------------------------------------------------------- */

int pyepode_im_init_types(PyObject *m)
{
    PyTypeObject *types[] = {&RosterType, &TrackerType, &DiscoType, &CapsType, &MucType};
    const char *names[] = {"Roster", "PresenceTracker", "Disco", "Caps", "Muc"};
    for (size_t i = 0; i < sizeof types / sizeof *types; i++)
        if (PyType_Ready(types[i]) < 0 ||
            PyModule_AddObjectRef(m, names[i], (PyObject *)types[i]) < 0)
            return -1;
    if (PyModule_AddIntConstant(m, "AUTO_ACCEPT_OFF", EPODE_AUTO_ACCEPT_OFF) < 0 ||
        PyModule_AddIntConstant(m, "AUTO_ACCEPT_ON", EPODE_AUTO_ACCEPT_ON) < 0 ||
        PyModule_AddIntConstant(m, "AUTO_ACCEPT_MUTUAL", EPODE_AUTO_ACCEPT_MUTUAL) < 0)
        return -1;
    return 0;
}

epode_muc_t *pyepode_muc_of(PyObject *obj)
{
    if (!PyObject_TypeCheck(obj, &MucType)) {
        PyErr_Format(PyExc_TypeError, "expected an epode._epode.Muc, not %.80s",
                     Py_TYPE(obj)->tp_name);
        return NULL;
    }
    MucObject *m = (MucObject *)obj;
    if (!m->muc) {
        PyErr_SetString(PyExc_RuntimeError, "the MUC helper has been freed");
        return NULL;
    }
    return m->muc;
}

epode_disco_t *pyepode_disco_of(PyObject *obj)
{
    if (!PyObject_TypeCheck(obj, &DiscoType)) {
        PyErr_Format(PyExc_TypeError, "expected an epode._epode.Disco, not %.80s",
                     Py_TYPE(obj)->tp_name);
        return NULL;
    }
    DiscoObject *d = (DiscoObject *)obj;
    if (!d->disco || !epode_disco_conn(d->disco)) {
        PyErr_SetString(PyExc_RuntimeError, "the disco helper's connection has been freed");
        return NULL;
    }
    return d->disco;
}
