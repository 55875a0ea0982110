/* modern.c — the modern IM layer of epode as low-level Python: message
 * features read and built on epode.Message (epode/msgext.h), and the
 * Blocking, Mam and Csi types (epode/blocking.h, mam.h, csi.h). The
 * friendly layer (futures, pages, the client's attributes) is
 * epode/_modern.py; these only translate.
 *
 * Message features are attributes and methods of epode.Message, added to
 * its type here at module init (the type is a static one in stanza.c):
 * each reads a view made on the message's element (msgext.h). An
 * element that came from an archive query sits inside its <result/> in
 * the tree the handle keeps alive: `archive_id` and `timestamp` read the
 * wrapper for it (the archive's id and stamp, never the message's own
 * claim); a live message has no parent and reads its own <delay/>.
 *
 * Ownership follows im.c: each helper object holds a strong reference
 * on its Connection; callbacks are Python callables held here (visited
 * by the GC); requests hold their callback until epode answers; while
 * one of our callbacks runs we hold a reference on the object and let
 * it die only through the context's deferred list. */
#include "pyepode.h"

#include <limits.h>

/* ---- message features ------------------------------------------------------ */

static PyObject *datetime_utc(long long ms)
{
    static PyObject *fromts, *utc;
    if (!fromts) {
        PyObject *dt = PyImport_ImportModule("datetime");
        if (!dt)
            return NULL;
        PyObject *cls = PyObject_GetAttrString(dt, "datetime");
        PyObject *tz = PyObject_GetAttrString(dt, "timezone");
        Py_DECREF(dt);
        if (cls && tz) {
            fromts = PyObject_GetAttrString(cls, "fromtimestamp");
            utc = PyObject_GetAttrString(tz, "utc");
        }
        Py_XDECREF(cls);
        Py_XDECREF(tz);
        if (!fromts || !utc) {
            Py_CLEAR(fromts);
            Py_CLEAR(utc);
            return NULL;
        }
    }
    return PyObject_CallFunction(fromts, "dO", (double)ms / 1000.0, utc);
}

/* The <forwarded/> of a MAM <result/> this message sits in, else NULL. */
static epode_stanza_t *archive_forward(epode_stanza_t *el)
{
    epode_stanza_t *fwd = epode_stanza_get_parent(el);
    epode_stanza_t *res = fwd ? epode_stanza_get_parent(fwd) : NULL;
    const char *fns = fwd ? epode_stanza_get_ns(fwd) : NULL, *rns = res ? epode_stanza_get_ns(res) : NULL;
    if (!fns || !rns || strcmp(fns, EPODE_NS_FORWARD) != 0 || strcmp(rns, EPODE_NS_MAM) != 0 ||
        strcmp(epode_stanza_get_name(res), "result") != 0)
        return NULL;
    return fwd;
}

/* A view on self's element (caller frees), NULL with an exception. */
static epode_message_t *view_of(PyObject *self)
{
    epode_message_t *v;
    int rc = epode_message_view_new(NULL, ((StanzaObject *)self)->el, &v);
    if (rc < 0) {
        pyepode_raise(rc, "message view");
        return NULL;
    }
    return v;
}

enum {
    F_TIMESTAMP, F_DELAY_FROM, F_ARCHIVE_ID, F_REPLACE_ID, F_RETRACT_ID, F_REACTIONS_TO,
    F_REACTIONS, F_REPLY_TO_ID, F_REPLY_TO, F_REPLY_BODY, F_MARKER, F_MARKER_ID, F_MARKABLE,
    F_HINTS, F_OCCUPANT_ID, F_ORIGIN_ID, F_RETRACTED, F_REF_ID
};

static const char *const hint_names[] = {"no-permanent-store", "no-store", "no-copy", "store"};

static PyObject *get_feature(PyObject *self, void *closure)
{
    int what = (int)(intptr_t)closure;
    epode_stanza_t *el = ((StanzaObject *)self)->el;
    if (what == F_TIMESTAMP || what == F_DELAY_FROM || what == F_ARCHIVE_ID) {
        epode_stanza_t *fwd = archive_forward(el);
        if (what == F_ARCHIVE_ID)
            return pyepode_str_or_none(fwd ? epode_stanza_get_attr(epode_stanza_get_parent(fwd), "id")
                                           : NULL);
        const epode_stanza_t *d = fwd ? epode_stanza_find_child(fwd, "delay", EPODE_NS_DELAY)
                                      : epode_stanza_find_child(el, "delay", EPODE_NS_DELAY);
        long long ms;
        if (!d || epode_time_parse(epode_stanza_get_attr(d, "stamp"), &ms) < 0)
            Py_RETURN_NONE;
        return what == F_TIMESTAMP ? datetime_utc(ms)
                                   : pyepode_str_or_none(epode_stanza_get_attr(d, "from"));
    }
    epode_message_t *v = view_of(self);
    if (!v)
        return NULL;
    PyObject *r = NULL;
    const char *s, *to;
    switch (what) {
    case F_REPLACE_ID: r = pyepode_str_or_none(epode_message_replace_id(v)); break;
    case F_RETRACT_ID: r = pyepode_str_or_none(epode_message_retract_id(v)); break;
    case F_RETRACTED: r = pyepode_str_or_none(epode_message_retracted(v, NULL)); break;
    case F_REACTIONS_TO: r = pyepode_str_or_none(epode_message_reactions_id(v)); break;
    case F_REACTIONS: {
        size_t n = epode_message_reaction_count(v);
        r = PyTuple_New((Py_ssize_t)n);
        for (size_t i = 0; r && i < n; i++) {
            PyObject *o = PyUnicode_FromString(epode_message_reaction_at(v, i));
            if (!o)
                Py_CLEAR(r);
            else
                PyTuple_SET_ITEM(r, (Py_ssize_t)i, o);
        }
        break;
    }
    case F_REPLY_TO_ID: r = pyepode_str_or_none(epode_message_reply_id(v, NULL)); break;
    case F_REPLY_TO:
        epode_message_reply_id(v, &to);
        r = pyepode_str_or_none(to);
        break;
    case F_REPLY_BODY: {
        /* None unless the message is a reply (XEP-0461) */
        const char *body = epode_message_reply_id(v, NULL) ? epode_message_body(v, NULL) : NULL;
        size_t a, b;
        if (body && epode_message_fallback(v, EPODE_NS_REPLY, &a, &b) == 0) {
            size_t rest = strlen(body + b);
            char *buf = PyMem_Malloc(a + rest + 1);
            if (!buf) {
                PyErr_NoMemory();
                break;
            }
            memcpy(buf, body, a);
            memcpy(buf + a, body + b, rest + 1);
            r = PyUnicode_FromString(buf);
            PyMem_Free(buf);
        } else
            r = pyepode_str_or_none(body);
        break;
    }
    case F_MARKER:
        r = pyepode_str_or_none(epode_marker_name(epode_message_marker(v, NULL)));
        break;
    case F_MARKER_ID:
        s = NULL;
        epode_message_marker(v, &s);
        r = pyepode_str_or_none(s);
        break;
    case F_MARKABLE: r = PyBool_FromLong(epode_message_is_markable(v)); break;
    case F_HINTS: {
        unsigned h = epode_message_hints(v);
        PyObject *set = PySet_New(NULL);
        for (int i = 0; set && i < 4; i++) {
            if (!(h & (1u << i)))
                continue;
            PyObject *o = PyUnicode_FromString(hint_names[i]);
            if (!o || PySet_Add(set, o) < 0)
                Py_CLEAR(set);
            Py_XDECREF(o);
        }
        r = set ? PyFrozenSet_New(set) : NULL;
        Py_XDECREF(set);
        break;
    }
    case F_OCCUPANT_ID: r = pyepode_str_or_none(epode_message_occupant_id(v)); break;
    case F_ORIGIN_ID: r = pyepode_str_or_none(epode_message_origin_id(v)); break;
    case F_REF_ID: {
        /* an archived groupchat message is named by the room's archive id */
        epode_stanza_t *fwd = archive_forward(el);
        if (fwd && strcmp(epode_message_type(v), "groupchat") == 0)
            s = epode_stanza_get_attr(epode_stanza_get_parent(fwd), "id");
        else
            s = epode_message_ref_id(v);
        r = pyepode_str_or_none(s);
        break;
    }
    }
    epode_message_view_free(v);
    return r;
}

#define FEATURE(name, id, doc) {name, (getter)get_feature, NULL, doc, (void *)(intptr_t)(id)}

static PyGetSetDef feature_getset[] = {
    FEATURE("timestamp", F_TIMESTAMP,
            "When the message was sent, if delayed (XEP-0203), as an aware UTC datetime; "
            "for an archived message the archive's stamp. None if none."),
    FEATURE("delay_from", F_DELAY_FROM, "Who delayed the message (XEP-0203), or None."),
    FEATURE("archive_id", F_ARCHIVE_ID, "The archive id of a message from client.mam, or None."),
    FEATURE("replace_id", F_REPLACE_ID,
            "The id of the message this one corrects (XEP-0308), or None. Check "
            "same_sender() before applying."),
    FEATURE("retract_id", F_RETRACT_ID,
            "The id of the message this one retracts (XEP-0424), or None. Check "
            "same_sender() before applying."),
    FEATURE("retracted", F_RETRACTED, "For an archive's tombstone: the retraction's id, or None."),
    FEATURE("reactions_to", F_REACTIONS_TO,
            "The id of the message these reactions are for (XEP-0444), or None."),
    FEATURE("reactions", F_REACTIONS,
            "The sender's complete set of reactions (a tuple; empty removes them all)."),
    FEATURE("reply_to_id", F_REPLY_TO_ID, "The id of the message this one replies to (XEP-0461)."),
    FEATURE("reply_to", F_REPLY_TO, "The author of the message replied to, or None."),
    FEATURE("reply_body", F_REPLY_BODY,
            "For a reply (reply_to_id set): the body without its quoted fallback (XEP-0428), "
            "or the whole body if it has none; None for any other message."),
    FEATURE("marker", F_MARKER,
            "A chat marker (XEP-0333): 'displayed', 'received', 'acknowledged', or None."),
    FEATURE("marker_id", F_MARKER_ID, "The id the marker names, or None."),
    FEATURE("markable", F_MARKABLE, "True if the sender asks for chat markers."),
    FEATURE("hints", F_HINTS,
            "Processing hints (XEP-0334): a frozenset of 'store', 'no-store', 'no-copy', "
            "'no-permanent-store'."),
    FEATURE("occupant_id", F_OCCUPANT_ID, "The room's occupant id (XEP-0421), or None."),
    FEATURE("origin_id", F_ORIGIN_ID, "The sender's origin-id (XEP-0359), or None."),
    FEATURE("ref_id", F_REF_ID,
            "The id replies, reactions, markers and retractions use to name this message: "
            "the origin-id or id; for groupchat the room's archive id (archived messages "
            "only: a live one's stanza-id is not verified here), else None."),
    {NULL, NULL, NULL, NULL, NULL},
};

static int sender_mode(const char *m, epode_sender_mode_t *out)
{
    if (!m || !strcmp(m, "auto"))
        *out = EPODE_SENDER_AUTO;
    else if (!strcmp(m, "direct"))
        *out = EPODE_SENDER_DIRECT;
    else if (!strcmp(m, "occupant"))
        *out = EPODE_SENDER_OCCUPANT;
    else {
        PyErr_SetString(PyExc_ValueError, "mode is 'auto', 'direct' or 'occupant'");
        return -1;
    }
    return 0;
}

static PyObject *Message_same_sender(PyObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"original_from", "occupant_id", "mode", NULL};
    const char *from, *occ = NULL, *mode = NULL;
    epode_sender_mode_t m;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "s|zz:same_sender", kwlist, &from, &occ, &mode) ||
        sender_mode(mode, &m) < 0)
        return NULL;
    epode_message_t *v = view_of(self);
    if (!v)
        return NULL;
    int r = epode_message_same_sender(v, from, occ, m);
    epode_message_view_free(v);
    return PyBool_FromLong(r);
}

static PyObject *rc_self(PyObject *self, int rc, const char *where)
{
    if (rc < 0)
        return pyepode_raise(rc, where);
    return Py_NewRef(self);
}

static PyObject *Message_set_replace(PyObject *self, PyObject *arg)
{
    const char *id;
    if (!PyArg_Parse(arg, "s:set_replace", &id))
        return NULL;
    return rc_self(self, epode_message_set_replace(((StanzaObject *)self)->el, id), "set_replace");
}

static PyObject *Message_set_reply(PyObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"id", "to", NULL};
    const char *id, *to = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "s|z:set_reply", kwlist, &id, &to))
        return NULL;
    return rc_self(self, epode_message_set_reply(((StanzaObject *)self)->el, to, id), "set_reply");
}

static PyObject *Message_add_markable(PyObject *self, PyObject *unused)
{
    (void)unused;
    return rc_self(self, epode_message_add_markable(((StanzaObject *)self)->el), "add_markable");
}

static PyObject *Message_add_hints(PyObject *self, PyObject *args)
{
    unsigned h = 0;
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(args); i++) {
        const char *n = PyUnicode_AsUTF8(PyTuple_GET_ITEM(args, i));
        if (!n)
            return NULL;
        int k;
        for (k = 0; k < 4 && strcmp(n, hint_names[k]) != 0; k++)
            ;
        if (k == 4) {
            PyErr_Format(PyExc_ValueError, "unknown hint %s", n);
            return NULL;
        }
        h |= 1u << k;
    }
    return rc_self(self, epode_message_add_hints(((StanzaObject *)self)->el, h), "add_hints");
}

static PyMethodDef feature_methods[] = {
    {"same_sender", (PyCFunction)(void (*)(void))Message_same_sender, METH_VARARGS | METH_KEYWORDS,
     "same_sender(original_from, occupant_id=None, mode='auto')\n--\n\n"
     "True if this message (a correction, retraction or reaction update) comes from the sender "
     "of the original message, whose 'from' was original_from (XEP-0308/0424/0444 rules: the "
     "bare JID in a direct chat, the occupant in a room). mode: 'auto', 'direct', 'occupant'."},
    {"set_replace", (PyCFunction)Message_set_replace, METH_O,
     "set_replace(id)\n--\n\nMarks this message as the correction of message `id` (XEP-0308); "
     "returns self."},
    {"set_reply", (PyCFunction)(void (*)(void))Message_set_reply, METH_VARARGS | METH_KEYWORDS,
     "set_reply(id, to=None)\n--\n\nMarks this message as a reply to message `id` by `to` "
     "(XEP-0461); returns self."},
    {"add_markable", (PyCFunction)Message_add_markable, METH_NOARGS,
     "add_markable()\n--\n\nAsks the recipient for chat markers (XEP-0333); returns self."},
    {"add_hints", (PyCFunction)Message_add_hints, METH_VARARGS,
     "add_hints(*names)\n--\n\nAdds processing hints (XEP-0334): 'store', 'no-store', "
     "'no-copy', 'no-permanent-store'; returns self."},
    {NULL, NULL, 0, NULL},
};

/* ---- builders (module functions) ------------------------------------------------ */

static PyObject *built(int rc, epode_stanza_t *st, const char *where)
{
    if (rc < 0)
        return pyepode_raise(rc, where);
    return pyepode_stanza_adopt(st, 1);
}

static PyObject *mod_build_reactions(PyObject *m, PyObject *args)
{
    (void)m;
    const char *to, *id, *type;
    PyObject *seq;
    if (!PyArg_ParseTuple(args, "ssOz:build_reactions", &to, &id, &seq, &type))
        return NULL;
    PyObject *fast = PySequence_Fast(seq, "reactions must be a sequence of str");
    if (!fast)
        return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(fast);
    const char **r = PyMem_Calloc((size_t)n + 1, sizeof *r);
    PyObject *res = NULL;
    if (!r) {
        PyErr_NoMemory();
        goto out;
    }
    for (Py_ssize_t i = 0; i < n; i++)
        if (!(r[i] = PyUnicode_AsUTF8(PySequence_Fast_GET_ITEM(fast, i))))
            goto out;
    epode_stanza_t *st = NULL;
    int rc = epode_message_build_reactions(type, to, id, r, (size_t)n, &st);
    res = built(rc, st, "reactions");
out:
    PyMem_Free(r);
    Py_DECREF(fast);
    return res;
}

static PyObject *mod_build_retraction(PyObject *m, PyObject *args)
{
    (void)m;
    const char *to, *id, *type;
    if (!PyArg_ParseTuple(args, "ssz:build_retraction", &to, &id, &type))
        return NULL;
    epode_stanza_t *st = NULL;
    int rc = epode_message_build_retraction(type, to, id, &st);
    return built(rc, st, "retraction");
}

static PyObject *mod_build_reply(PyObject *m, PyObject *args)
{
    (void)m;
    const char *to, *body, *rto, *rid, *quote, *type;
    if (!PyArg_ParseTuple(args, "sszszz:build_reply", &to, &body, &rto, &rid, &quote, &type))
        return NULL;
    epode_stanza_t *st = NULL;
    int rc = epode_message_build_reply(type, to, body, rto, rid, quote, &st);
    return built(rc, st, "reply");
}

static PyObject *mod_build_marker(PyObject *m, PyObject *args)
{
    (void)m;
    const char *to, *id, *marker, *type, *thread;
    if (!PyArg_ParseTuple(args, "ssszz:build_marker", &to, &id, &marker, &type, &thread))
        return NULL;
    epode_marker_t k = EPODE_MARKER_NONE;
    for (int i = 1; i <= EPODE_MARKER_ACKNOWLEDGED; i++)
        if (!strcmp(marker, epode_marker_name((epode_marker_t)i)))
            k = (epode_marker_t)i;
    epode_stanza_t *st = NULL;
    int rc = epode_message_build_marker(type, to, k, id, thread, &st);
    return built(rc, st, "marker");
}

static PyObject *mod_time_parse(PyObject *m, PyObject *arg)
{
    (void)m;
    const char *s = PyUnicode_AsUTF8(arg);
    long long ms;
    if (!s)
        return NULL;
    if (epode_time_parse(s, &ms) < 0) {
        PyErr_Format(PyExc_ValueError, "not an XEP-0082 timestamp: %s", s);
        return NULL;
    }
    return PyLong_FromLongLong(ms);
}

static PyObject *mod_time_format(PyObject *m, PyObject *arg)
{
    (void)m;
    long long ms = PyLong_AsLongLong(arg);
    char buf[EPODE_TIME_BUFSIZE];
    if (ms == -1 && PyErr_Occurred())
        return NULL;
    if (epode_time_format(ms, buf, sizeof buf) < 0) {
        PyErr_SetString(PyExc_ValueError, "time out of range");
        return NULL;
    }
    return PyUnicode_FromString(buf);
}

static PyMethodDef module_functions[] = {
    {"build_reactions", mod_build_reactions, METH_VARARGS,
     "build_reactions(to, id, reactions, type)\n--\n\nA XEP-0444 reactions message."},
    {"build_retraction", mod_build_retraction, METH_VARARGS,
     "build_retraction(to, id, type)\n--\n\nA XEP-0424 retraction (urn:xmpp:message-retract:1)."},
    {"build_reply", mod_build_reply, METH_VARARGS,
     "build_reply(to, body, reply_to, reply_id, quote, type)\n--\n\nA XEP-0461 reply."},
    {"build_marker", mod_build_marker, METH_VARARGS,
     "build_marker(to, id, marker, type, thread)\n--\n\nA XEP-0333 chat marker."},
    {"time_parse", mod_time_parse, METH_O,
     "time_parse(text)\n--\n\nXEP-0082 timestamp -> milliseconds since the epoch."},
    {"time_format", mod_time_format, METH_O,
     "time_format(ms)\n--\n\nMilliseconds since the epoch -> XEP-0082 timestamp (UTC)."},
    {NULL, NULL, 0, NULL},
};

/* ---- helper objects ------------------------------------------------------------ */

typedef struct req {
    struct req *next;
    struct HelperObject *owner;
    PyObject *a, *b; /* callbacks (strong; NULL once cleared) */
} req;

typedef struct HelperObject {
    PyObject_HEAD
    ConnectionObject *conn;
    PyObject *on_event;
    req *reqs;
    int dying;
    void *helper;
    req *auto_req; /* Mam: the automatic catch-up's callbacks (kept in reqs) */
    PyObject *weakrefs;
} HelperObject;

static PyTypeObject BlockingType, MamType, CsiType, PingType, SoftwareVersionType;

static HelperObject *helper_new(PyTypeObject *type, PyObject *conn_obj)
{
    if (!PyObject_TypeCheck(conn_obj, &ConnectionType)) {
        PyErr_Format(PyExc_TypeError, "expected an epode Connection, not %.80s",
                     Py_TYPE(conn_obj)->tp_name);
        return NULL;
    }
    if (!((ConnectionObject *)conn_obj)->conn) {
        PyErr_SetString(PyExc_RuntimeError, "the connection has been freed");
        return NULL;
    }
    HelperObject *self = (HelperObject *)type->tp_alloc(type, 0);
    if (self)
        self->conn = (ConnectionObject *)Py_NewRef(conn_obj);
    return self;
}

static int helper_traverse(HelperObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->conn);
    Py_VISIT(self->on_event);
    for (req *q = self->reqs; q; q = q->next) {
        Py_VISIT(q->a);
        Py_VISIT(q->b);
    }
    return 0;
}

static int helper_clear(HelperObject *self)
{
    Py_CLEAR(self->on_event);
    for (req *q = self->reqs; q; q = q->next) {
        Py_CLEAR(q->a);
        Py_CLEAR(q->b);
    }
    return 0;
}

static void helper_dealloc_begin(HelperObject *self)
{
    PyObject_GC_UnTrack(self);
    if (self->weakrefs)
        PyObject_ClearWeakRefs((PyObject *)self);
    self->dying = 1;
}

static void helper_dealloc_end(HelperObject *self)
{
    while (self->reqs) {
        req *q = self->reqs;
        self->reqs = q->next;
        Py_XDECREF(q->a);
        Py_XDECREF(q->b);
        PyMem_Free(q);
    }
    Py_CLEAR(self->on_event);
    Py_CLEAR(self->conn);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static void enter(HelperObject *self)
{
    if (!self->dying)
        Py_INCREF(self);
}

static void leave(HelperObject *self)
{
    if (self->dying)
        return;
    if (Py_REFCNT(self) > 1) {
        Py_DECREF(self);
        return;
    }
    pyepode_defer_decref(self->conn->context, (PyObject *)self);
}

static req *req_new(HelperObject *owner, PyObject *a, PyObject *b)
{
    req *q = PyMem_Calloc(1, sizeof *q);
    if (!q) {
        PyErr_NoMemory();
        return NULL;
    }
    q->owner = owner;
    q->a = Py_XNewRef(a == Py_None ? NULL : a);
    q->b = Py_XNewRef(b == Py_None ? NULL : b);
    q->next = owner->reqs;
    owner->reqs = q;
    return q;
}

static void req_drop(req *q)
{
    for (req **pp = &q->owner->reqs; *pp; pp = &(*pp)->next)
        if (*pp == q) {
            *pp = q->next;
            break;
        }
    Py_XDECREF(q->a);
    Py_XDECREF(q->b);
    PyMem_Free(q);
}

/* cb(*args), args stolen (a NULL one: building it failed). */
static void call_cb(HelperObject *self, PyObject *cb, PyObject **args, size_t n, const char *where)
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

static PyObject *cond_or_none(epode_stanza_cond_t cond)
{
    return pyepode_str_or_none(cond == EPODE_COND_NONE ? NULL : epode_stanza_cond_name(cond));
}

static PyObject *get_on_event(HelperObject *self, void *c)
{
    (void)c;
    return Py_NewRef(self->on_event ? self->on_event : Py_None);
}

static int set_on_event(HelperObject *self, PyObject *v, void *c)
{
    (void)c;
    if (v && v != Py_None && !PyCallable_Check(v)) {
        PyErr_SetString(PyExc_TypeError, "on_event must be callable or None");
        return -1;
    }
    Py_XSETREF(self->on_event, v && v != Py_None ? Py_NewRef(v) : NULL);
    return 0;
}

static PyObject *tuple_of_strings(const char *const *s, size_t n)
{
    PyObject *t = PyTuple_New((Py_ssize_t)n);
    for (size_t i = 0; t && i < n; i++) {
        PyObject *o = PyUnicode_FromString(s[i]);
        if (!o)
            Py_CLEAR(t);
        else
            PyTuple_SET_ITEM(t, (Py_ssize_t)i, o);
    }
    return t;
}

/* ---- Blocking ---------------------------------------------------------------- */

static const char *block_event_name(epode_blocking_event_t ev)
{
    const char *n = epode_blocking_event_name(ev);
    return n ? n : "unknown";
}

static void on_block_event(epode_blocking_t *b, epode_blocking_event_t ev, const char *const *jids,
                           size_t n, void *user)
{
    (void)b;
    HelperObject *self = user;
    if (!self->on_event)
        return;
    enter(self);
    PyObject *args[2] = {PyUnicode_FromString(block_event_name(ev)), tuple_of_strings(jids, n)};
    call_cb(self, self->on_event, args, 2, "blocking event");
    leave(self);
}

static void on_block_result(epode_blocking_t *b, int status, epode_stanza_cond_t cond, void *user)
{
    (void)b;
    req *q = user;
    HelperObject *self = q->owner;
    enter(self);
    PyObject *cb = Py_XNewRef(q->a);
    req_drop(q);
    if (cb) {
        PyObject *args[2] = {PyLong_FromLong(status), cond_or_none(cond)};
        call_cb(self, cb, args, 2, "blocking request");
        Py_DECREF(cb);
    }
    leave(self);
}

static PyObject *Blocking_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"connection", NULL};
    PyObject *conn;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O:Blocking", kwlist, &conn))
        return NULL;
    HelperObject *self = helper_new(type, conn);
    if (!self)
        return NULL;
    int rc = epode_blocking_new(self->conn->conn, on_block_event, self,
                                (epode_blocking_t **)&self->helper);
    if (rc < 0) {
        Py_DECREF(self);
        return pyepode_raise(rc, "Blocking");
    }
    return (PyObject *)self;
}

static void Blocking_dealloc(HelperObject *self)
{
    helper_dealloc_begin(self);
    epode_blocking_free(self->helper); /* pending callbacks hear ECANCELED */
    helper_dealloc_end(self);
}

/* A list of JIDs from a str or a sequence of str. */
static const char **jid_list(PyObject *obj, PyObject **keep, size_t *n)
{
    *keep = PyUnicode_Check(obj) ? PyTuple_Pack(1, obj) : PySequence_Tuple(obj);
    if (!*keep)
        return NULL;
    Py_ssize_t k = PyTuple_GET_SIZE(*keep);
    const char **v = PyMem_Calloc((size_t)k + 1, sizeof *v);
    if (!v) {
        Py_CLEAR(*keep);
        PyErr_NoMemory();
        return NULL;
    }
    for (Py_ssize_t i = 0; i < k; i++)
        if (!(v[i] = PyUnicode_AsUTF8(PyTuple_GET_ITEM(*keep, i)))) {
            PyMem_Free(v);
            Py_CLEAR(*keep);
            return NULL;
        }
    *n = (size_t)k;
    return v;
}

/* kind: 0 block, 1 unblock, 2 unblock all, 3 fetch */
static PyObject *blocking_request(HelperObject *self, PyObject *jids, PyObject *cb, int kind)
{
    if (cb != Py_None && !PyCallable_Check(cb)) {
        PyErr_SetString(PyExc_TypeError, "callback must be callable or None");
        return NULL;
    }
    PyObject *keep = NULL;
    const char **v = NULL;
    size_t n = 0;
    if (kind < 2 && !(v = jid_list(jids, &keep, &n)))
        return NULL;
    req *q = req_new(self, cb, NULL);
    int rc = q ? 0 : EPODE_ENOMEM;
    if (rc == 0) {
        epode_blocking_t *b = self->helper;
        rc = kind == 0   ? epode_blocking_block(b, v, n, on_block_result, q)
             : kind == 1 ? epode_blocking_unblock(b, v, n, on_block_result, q)
             : kind == 2 ? epode_blocking_unblock_all(b, on_block_result, q)
                         : epode_blocking_fetch(b, on_block_result, q);
        if (rc < 0)
            req_drop(q);
    }
    PyMem_Free(v);
    Py_XDECREF(keep);
    if (!q)
        return NULL;
    if (rc < 0)
        return pyepode_raise(rc, "blocking");
    Py_RETURN_NONE;
}

static PyObject *Blocking_block(HelperObject *self, PyObject *args)
{
    PyObject *jids, *cb = Py_None;
    if (!PyArg_ParseTuple(args, "O|O:block", &jids, &cb))
        return NULL;
    return blocking_request(self, jids, cb, 0);
}

static PyObject *Blocking_unblock(HelperObject *self, PyObject *args)
{
    PyObject *jids, *cb = Py_None;
    if (!PyArg_ParseTuple(args, "O|O:unblock", &jids, &cb))
        return NULL;
    return blocking_request(self, jids, cb, 1);
}

static PyObject *Blocking_unblock_all(HelperObject *self, PyObject *args)
{
    PyObject *cb = Py_None;
    if (!PyArg_ParseTuple(args, "|O:unblock_all", &cb))
        return NULL;
    return blocking_request(self, NULL, cb, 2);
}

static PyObject *Blocking_fetch(HelperObject *self, PyObject *args)
{
    PyObject *cb = Py_None;
    if (!PyArg_ParseTuple(args, "|O:fetch", &cb))
        return NULL;
    return blocking_request(self, NULL, cb, 3);
}

static PyObject *Blocking_list(HelperObject *self, PyObject *unused)
{
    (void)unused;
    epode_blocking_t *b = self->helper;
    size_t n = epode_blocking_count(b);
    PyObject *t = PyTuple_New((Py_ssize_t)n);
    for (size_t i = 0; t && i < n; i++) {
        PyObject *o = PyUnicode_FromString(epode_blocking_at(b, i));
        if (!o)
            Py_CLEAR(t);
        else
            PyTuple_SET_ITEM(t, (Py_ssize_t)i, o);
    }
    return t;
}

static PyObject *Blocking_is_blocked(HelperObject *self, PyObject *arg)
{
    const char *j = PyUnicode_AsUTF8(arg);
    return j ? PyBool_FromLong(epode_blocking_is_blocked(self->helper, j)) : NULL;
}

static PyObject *Blocking_get_received(HelperObject *self, void *c)
{
    (void)c;
    return PyBool_FromLong(epode_blocking_received(self->helper));
}

static PyMethodDef Blocking_methods[] = {
    {"block", (PyCFunction)Blocking_block, METH_VARARGS,
     "block(jids, callback=None)\n--\n\ncallback(status, condition)."},
    {"unblock", (PyCFunction)Blocking_unblock, METH_VARARGS, "unblock(jids, callback=None)"},
    {"unblock_all", (PyCFunction)Blocking_unblock_all, METH_VARARGS, "unblock_all(callback=None)"},
    {"fetch", (PyCFunction)Blocking_fetch, METH_VARARGS, "fetch(callback=None)"},
    {"list", (PyCFunction)Blocking_list, METH_NOARGS, "list()\n--\n\nThe local blocklist."},
    {"is_blocked", (PyCFunction)Blocking_is_blocked, METH_O, "is_blocked(jid)"},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Blocking_getset[] = {
    {"on_event", (getter)get_on_event, (setter)set_on_event,
     "on_event(event, jids): 'loaded', 'blocked', 'unblocked', 'unblocked_all', 'limit'.", NULL},
    {"received", (getter)Blocking_get_received, NULL, "True once fetched this session.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

/* ---- Mam --------------------------------------------------------------------- */

static void on_mam_result(epode_mam_t *mam, const epode_message_t *m, void *user)
{
    (void)mam;
    req *q = user;
    HelperObject *self = q->owner;
    if (!q->a)
        return;
    enter(self);
    PyObject *args[1] = {pyepode_stanza_wrap(epode_message_stanza(m), 1)};
    call_cb(self, q->a, args, 1, "archive result");
    leave(self);
}

static void on_mam_done(epode_mam_t *mam, int status, epode_stanza_cond_t cond, const char *first,
                        const char *last, int complete, long count, size_t results, void *user)
{
    (void)mam;
    req *q = user;
    HelperObject *self = q->owner;
    enter(self);
    PyObject *cb = Py_XNewRef(q->b);
    req_drop(q);
    if (cb) {
        PyObject *args[7] = {PyLong_FromLong(status), cond_or_none(cond),
                             pyepode_str_or_none(first), pyepode_str_or_none(last),
                             PyBool_FromLong(complete), PyLong_FromLong(count),
                             PyLong_FromSize_t(results)};
        call_cb(self, cb, args, 7, "archive page");
        Py_DECREF(cb);
    }
    leave(self);
}

static PyObject *Mam_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"connection", NULL};
    PyObject *conn;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O:Mam", kwlist, &conn))
        return NULL;
    HelperObject *self = helper_new(type, conn);
    if (!self)
        return NULL;
    int rc = epode_mam_new(self->conn->conn, (epode_mam_t **)&self->helper);
    if (rc < 0) {
        Py_DECREF(self);
        return pyepode_raise(rc, "Mam");
    }
    return (PyObject *)self;
}

static void Mam_dealloc(HelperObject *self)
{
    helper_dealloc_begin(self);
    epode_mam_free(self->helper);
    helper_dealloc_end(self);
}

static int opt_ms(PyObject *o, long long *ms)
{
    *ms = EPODE_MAM_NO_TIME;
    if (!o || o == Py_None)
        return 0;
    *ms = PyLong_AsLongLong(o);
    return *ms == -1 && PyErr_Occurred() ? -1 : 0;
}

static PyObject *Mam_fetch(HelperObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"on_result", "on_done", "archive", "with_", "start", "end", "max",
                             "after", "before", "catch_up", NULL};
    PyObject *on_result, *on_done, *start_o = Py_None, *end_o = Py_None;
    const char *archive = NULL, *with = NULL, *after = NULL, *before = NULL;
    unsigned max = 0;
    int catch_up = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OO|zzOOIzzp:fetch", kwlist, &on_result, &on_done,
                                     &archive, &with, &start_o, &end_o, &max, &after, &before,
                                     &catch_up))
        return NULL;
    long long start, end;
    if (opt_ms(start_o, &start) < 0 || opt_ms(end_o, &end) < 0)
        return NULL;
    if ((on_result != Py_None && !PyCallable_Check(on_result)) ||
        (on_done != Py_None && !PyCallable_Check(on_done))) {
        PyErr_SetString(PyExc_TypeError, "callbacks must be callable or None");
        return NULL;
    }
    int rc;
    req *q = req_new(self, on_result, on_done);
    if (!q)
        return NULL;
    unsigned id = 0;
    if (catch_up) {
        rc = epode_mam_catch_up(self->helper, after, max, on_mam_result, on_mam_done, q, &id);
    } else {
        epode_mam_query_t *mq;
        rc = epode_mam_query_new(NULL, &mq);
        if (rc == 0 && archive)
            rc = epode_mam_query_set_archive(mq, archive);
        if (rc == 0 && with)
            rc = epode_mam_query_set_with(mq, with);
        if (rc == 0)
            rc = epode_mam_query_set_start(mq, start);
        if (rc == 0)
            rc = epode_mam_query_set_end(mq, end);
        if (rc == 0)
            rc = epode_mam_query_set_page(mq, max, after, before);
        if (rc == 0)
            rc = epode_mam_fetch(self->helper, mq, on_mam_result, on_mam_done, q, &id);
        epode_mam_query_free(mq);
    }
    if (rc < 0) {
        req_drop(q);
        return pyepode_raise(rc, "archive query");
    }
    return PyLong_FromUnsignedLong(id);
}

static PyObject *Mam_cancel(HelperObject *self, PyObject *arg)
{
    unsigned long id = PyLong_AsUnsignedLong(arg);
    if (id == (unsigned long)-1 && PyErr_Occurred())
        return NULL;
    int rc = epode_mam_cancel(self->helper, (unsigned)id);
    if (rc < 0)
        return pyepode_raise(rc, "cancel");
    Py_RETURN_NONE;
}

static PyObject *Mam_get_rejected(HelperObject *self, void *c)
{
    (void)c;
    return PyLong_FromUnsignedLong(epode_mam_rejected(self->helper));
}

/* The automatic catch-up (epode_mam_set_auto_catch_up): its callbacks
 * live in self->auto_req for the helper's life. */
static void on_auto_result(epode_mam_t *mam, const epode_message_t *m, void *user)
{
    (void)mam;
    HelperObject *self = user;
    req *q = self->auto_req;
    if (!q || !q->a)
        return;
    enter(self);
    PyObject *args[1] = {pyepode_stanza_wrap(epode_message_stanza(m), 1)};
    call_cb(self, q->a, args, 1, "catch-up result");
    leave(self);
}

static void on_auto_done(epode_mam_t *mam, int status, epode_stanza_cond_t cond, const char *first,
                         const char *last, int complete, long count, size_t results, void *user)
{
    (void)mam;
    HelperObject *self = user;
    req *q = self->auto_req;
    if (!q || !q->b || self->dying)
        return;
    enter(self);
    PyObject *args[7] = {PyLong_FromLong(status), cond_or_none(cond), pyepode_str_or_none(first),
                         pyepode_str_or_none(last), PyBool_FromLong(complete),
                         PyLong_FromLong(count), PyLong_FromSize_t(results)};
    call_cb(self, q->b, args, 7, "catch-up end");
    leave(self);
}

static PyObject *Mam_set_auto_catch_up(HelperObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"on_result", "on_done", "max", NULL};
    PyObject *on_result, *on_done = Py_None;
    unsigned max = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|OI:set_auto_catch_up", kwlist, &on_result,
                                     &on_done, &max))
        return NULL;
    if ((on_result != Py_None && !PyCallable_Check(on_result)) ||
        (on_done != Py_None && !PyCallable_Check(on_done))) {
        PyErr_SetString(PyExc_TypeError, "callbacks must be callable or None");
        return NULL;
    }
    int enable = on_result != Py_None;
    if (enable && !self->auto_req && !(self->auto_req = req_new(self, NULL, NULL)))
        return NULL;
    int rc = epode_mam_set_auto_catch_up(self->helper, enable, max, on_auto_result, on_auto_done,
                                         self);
    if (rc < 0)
        return pyepode_raise(rc, "set_auto_catch_up");
    if (self->auto_req) {
        Py_XSETREF(self->auto_req->a, enable ? Py_NewRef(on_result) : NULL);
        Py_XSETREF(self->auto_req->b, enable && on_done != Py_None ? Py_NewRef(on_done) : NULL);
    }
    Py_RETURN_NONE;
}

static PyObject *Mam_is_duplicate(HelperObject *self, PyObject *arg)
{
    epode_stanza_t *owned = NULL;
    epode_stanza_t *st = pyepode_stanza_arg(arg, &owned);
    if (!st)
        return NULL;
    int dup = epode_mam_is_duplicate(self->helper, st);
    epode_stanza_unref(owned);
    return PyBool_FromLong(dup);
}

static PyObject *Mam_get_last_id(HelperObject *self, void *c)
{
    (void)c;
    return pyepode_str_or_none(epode_mam_last_id(self->helper));
}

static int Mam_set_last_id(HelperObject *self, PyObject *v, void *c)
{
    (void)c;
    const char *id = NULL;
    if (!v || (v != Py_None && !(id = PyUnicode_Check(v) ? PyUnicode_AsUTF8(v) : NULL))) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_TypeError, "last_id is a str or None");
        return -1;
    }
    int rc = epode_mam_set_last_id(self->helper, id);
    if (rc == EPODE_EINVAL) {
        PyErr_SetString(PyExc_ValueError, "last_id must not be empty");
        return -1;
    }
    if (rc < 0) {
        pyepode_raise(rc, "last_id");
        return -1;
    }
    return 0;
}

static PyMethodDef Mam_methods[] = {
    {"set_auto_catch_up", (PyCFunction)(void (*)(void))Mam_set_auto_catch_up,
     METH_VARARGS | METH_KEYWORDS,
     "set_auto_catch_up(on_result, on_done=None, max=0)\n--\n\n"
     "Catches up on every fresh session from last_id (on_result None: off)."},
    {"is_duplicate", (PyCFunction)Mam_is_duplicate, METH_O,
     "is_duplicate(message)\n--\n\nTrue if a catch-up already delivered this live message."},
    {"fetch", (PyCFunction)(void (*)(void))Mam_fetch, METH_VARARGS | METH_KEYWORDS,
     "fetch(on_result, on_done, archive=None, with_=None, start=None, end=None, max=0, "
     "after=None, before=None, catch_up=False)\n--\n\n"
     "One page (or a catch-up from `after`). start/end in ms since the epoch. "
     "on_result(message); on_done(status, condition, first, last, complete, count, results). "
     "Returns the query id."},
    {"cancel", (PyCFunction)Mam_cancel, METH_O, "cancel(id)"},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Mam_getset[] = {
    {"rejected", (getter)Mam_get_rejected, NULL, "Archive results ignored (forged, unsolicited).",
     NULL},
    {"last_id", (getter)Mam_get_last_id, (setter)Mam_set_last_id,
     "The last archive id known (automatic catch-up starts after it).", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

/* ---- Csi ----------------------------------------------------------------------- */

static PyObject *Csi_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"connection", NULL};
    PyObject *conn;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O:Csi", kwlist, &conn))
        return NULL;
    HelperObject *self = helper_new(type, conn);
    if (!self)
        return NULL;
    int rc = epode_csi_new(self->conn->conn, (epode_csi_t **)&self->helper);
    if (rc < 0) {
        Py_DECREF(self);
        return pyepode_raise(rc, "Csi");
    }
    return (PyObject *)self;
}

static void Csi_dealloc(HelperObject *self)
{
    helper_dealloc_begin(self);
    epode_csi_free(self->helper);
    helper_dealloc_end(self);
}

static PyObject *Csi_set_active(HelperObject *self, PyObject *arg)
{
    int on = PyObject_IsTrue(arg);
    if (on < 0)
        return NULL;
    int rc = epode_csi_set_active(self->helper, on);
    if (rc < 0)
        return pyepode_raise(rc, "set_active");
    Py_RETURN_NONE;
}

static PyObject *Csi_get_active(HelperObject *self, void *c)
{
    (void)c;
    return PyBool_FromLong(epode_csi_is_active(self->helper));
}

static PyObject *Csi_get_supported(HelperObject *self, void *c)
{
    (void)c;
    return PyBool_FromLong(epode_csi_supported(self->helper));
}

static PyMethodDef Csi_methods[] = {
    {"set_active", (PyCFunction)Csi_set_active, METH_O, "set_active(active)"},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Csi_getset[] = {
    {"active", (getter)Csi_get_active, NULL, "The wanted state.", NULL},
    {"supported", (getter)Csi_get_supported, NULL, "True if the server offers CSI.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

/* ---- Ping (XEP-0199) ------------------------------------------------------------ */

static PyObject *Ping_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"connection", NULL};
    PyObject *conn;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O:Ping", kwlist, &conn))
        return NULL;
    HelperObject *self = helper_new(type, conn);
    if (!self)
        return NULL;
    int rc = epode_ping_new(self->conn->conn, (epode_ping_t **)&self->helper);
    if (rc < 0) {
        Py_DECREF(self);
        return pyepode_raise(rc, "Ping");
    }
    return (PyObject *)self;
}

static void Ping_dealloc(HelperObject *self)
{
    helper_dealloc_begin(self);
    epode_ping_free(self->helper);
    helper_dealloc_end(self);
}

static void on_pong(epode_conn_t *conn, const char *jid, int status, epode_stanza_cond_t cond,
                    unsigned rtt_ms, void *user)
{
    (void)conn;
    (void)jid;
    req *q = user;
    HelperObject *self = q->owner;
    enter(self);
    PyObject *cb = Py_XNewRef(q->a);
    req_drop(q);
    if (cb) {
        PyObject *args[3] = {PyLong_FromLong(status), cond_or_none(cond),
                             PyFloat_FromDouble(rtt_ms / 1000.0)};
        call_cb(self, cb, args, 3, "ping answer");
        Py_DECREF(cb);
    }
    leave(self);
}

/* Seconds (a number or None: the default) as milliseconds for epode, 0
 * meaning its default; -1 with ValueError for a negative or huge value. */
static int timeout_ms_arg(PyObject *o, unsigned *ms)
{
    *ms = 0;
    if (!o || o == Py_None)
        return 0;
    double t = PyFloat_AsDouble(o);
    if (t == -1.0 && PyErr_Occurred())
        return -1;
    if (!(t > 0) || t > 86400.0) {
        PyErr_SetString(PyExc_ValueError, "timeout must be a number of seconds, 0 < t <= 86400");
        return -1;
    }
    *ms = (unsigned)(t * 1000.0);
    if (*ms == 0)
        *ms = 1;
    return 0;
}

/* The arguments of a question to one entity, (callback, jid=None,
 * timeout=None), as Ping.send and SoftwareVersion.query take them; `fmt`
 * is "O|zO:NAME". Returns the request to hand to the C call, or NULL with
 * a Python error set. */
static req *jid_query_args(HelperObject *self, PyObject *args, PyObject *kwds, const char *fmt,
                           const char **jid, unsigned *ms)
{
    static char *kwlist[] = {"callback", "jid", "timeout", NULL};
    PyObject *cb, *timeout = Py_None;
    *jid = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, fmt, kwlist, &cb, jid, &timeout))
        return NULL;
    if (timeout_ms_arg(timeout, ms) < 0)
        return NULL;
    if (!PyCallable_Check(cb)) {
        PyErr_SetString(PyExc_TypeError, "callback must be callable");
        return NULL;
    }
    return req_new(self, cb, NULL);
}

static PyObject *Ping_send(HelperObject *self, PyObject *args, PyObject *kwds)
{
    const char *jid;
    unsigned ms;
    req *q = jid_query_args(self, args, kwds, "O|zO:send", &jid, &ms);
    if (!q)
        return NULL;
    int rc = epode_ping_send(self->helper, jid, ms, on_pong, q);
    if (rc < 0) {
        req_drop(q);
        return pyepode_raise(rc, "ping");
    }
    Py_RETURN_NONE;
}

static PyMethodDef Ping_methods[] = {
    {"send", (PyCFunction)(void (*)(void))Ping_send, METH_VARARGS | METH_KEYWORDS,
     "send(callback, jid=None, timeout=None)\n--\n\n"
     "Pings `jid` (None: our server); callback(status, condition, rtt_seconds) once: "
     "status 0 when it answered (condition None for a pong, else the error it answered "
     "with), ETIMEDOUT or ECANCELED without an answer. timeout in seconds (None: 30)."},
    {NULL, NULL, 0, NULL},
};

/* ---- SoftwareVersion (XEP-0092) ----------------------------------------------------- */

static PyObject *SoftwareVersion_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"connection", "name", "version", "os", NULL};
    PyObject *conn;
    const char *name, *version, *os = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "Oss|z:SoftwareVersion", kwlist, &conn, &name,
                                     &version, &os))
        return NULL;
    HelperObject *self = helper_new(type, conn);
    if (!self)
        return NULL;
    int rc = epode_software_version_new(self->conn->conn, name, version, os,
                                        (epode_software_version_t **)&self->helper);
    if (rc < 0) {
        Py_DECREF(self);
        return pyepode_raise(rc, "SoftwareVersion");
    }
    return (PyObject *)self;
}

static void SoftwareVersion_dealloc(HelperObject *self)
{
    helper_dealloc_begin(self);
    epode_software_version_free(self->helper);
    helper_dealloc_end(self);
}

static PyObject *SoftwareVersion_set(HelperObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"name", "version", "os", NULL};
    const char *name, *version, *os = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "ss|z:set", kwlist, &name, &version, &os))
        return NULL;
    int rc = epode_software_version_set(self->helper, name, version, os);
    if (rc < 0)
        return pyepode_raise(rc, "set_version");
    Py_RETURN_NONE;
}

static void on_version_answer(epode_conn_t *conn, const char *jid, int status,
                              epode_stanza_cond_t cond, const char *name, const char *version,
                              const char *os, void *user)
{
    (void)conn;
    (void)jid;
    req *q = user;
    HelperObject *self = q->owner;
    enter(self);
    PyObject *cb = Py_XNewRef(q->a);
    req_drop(q);
    if (cb) {
        PyObject *args[5] = {PyLong_FromLong(status), cond_or_none(cond),
                             pyepode_str_or_none(name), pyepode_str_or_none(version),
                             pyepode_str_or_none(os)};
        call_cb(self, cb, args, 5, "version answer");
        Py_DECREF(cb);
    }
    leave(self);
}

static PyObject *SoftwareVersion_query(HelperObject *self, PyObject *args, PyObject *kwds)
{
    const char *jid;
    unsigned ms;
    req *q = jid_query_args(self, args, kwds, "O|zO:query", &jid, &ms);
    if (!q)
        return NULL;
    int rc = epode_software_version_query(self->helper, jid, ms, on_version_answer, q);
    if (rc < 0) {
        req_drop(q);
        return pyepode_raise(rc, "version");
    }
    Py_RETURN_NONE;
}

static PyMethodDef SoftwareVersion_methods[] = {
    {"set", (PyCFunction)(void (*)(void))SoftwareVersion_set, METH_VARARGS | METH_KEYWORDS,
     "set(name, version, os=None)\n--\n\nChanges what is answered."},
    {"query", (PyCFunction)(void (*)(void))SoftwareVersion_query, METH_VARARGS | METH_KEYWORDS,
     "query(callback, jid=None, timeout=None)\n--\n\n"
     "Asks `jid` (None: our server); callback(status, condition, name, version, os) once "
     "(status 0 and condition None: its answer). timeout in seconds (None: 30)."},
    {NULL, NULL, 0, NULL},
};

#define HELPER_TYPE(var, pyname, newfn, dealloc, methods, getset, doc)         \
    static PyTypeObject var = {                                                \
        PyVarObject_HEAD_INIT(NULL, 0)                                         \
        .tp_name = pyname,                                                     \
        .tp_basicsize = sizeof(HelperObject),                                  \
        .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,                   \
        .tp_doc = doc,                                                         \
        .tp_new = newfn,                                                       \
        .tp_dealloc = (destructor)dealloc,                                     \
        .tp_traverse = (traverseproc)helper_traverse,                          \
        .tp_clear = (inquiry)helper_clear,                                     \
        .tp_methods = methods,                                                 \
        .tp_getset = getset,                                                   \
        .tp_weaklistoffset = offsetof(HelperObject, weakrefs),                 \
    };

HELPER_TYPE(BlockingType, "epode._epode.Blocking", Blocking_new, Blocking_dealloc,
            Blocking_methods, Blocking_getset,
            "Blocking(connection)\n--\n\nThe Blocking Command (XEP-0191), epode/blocking.h.")
HELPER_TYPE(MamType, "epode._epode.Mam", Mam_new, Mam_dealloc, Mam_methods, Mam_getset,
            "Mam(connection)\n--\n\nMessage Archive Management (XEP-0313), epode/mam.h.")
HELPER_TYPE(CsiType, "epode._epode.Csi", Csi_new, Csi_dealloc, Csi_methods, Csi_getset,
            "Csi(connection)\n--\n\nClient State Indication (XEP-0352), epode/csi.h.")
HELPER_TYPE(PingType, "epode._epode.Ping", Ping_new, Ping_dealloc, Ping_methods, NULL,
            "Ping(connection)\n--\n\nXMPP Ping (XEP-0199), epode/ping.h: answers pings "
            "from now on, and send() pings.")
HELPER_TYPE(SoftwareVersionType, "epode._epode.SoftwareVersion", SoftwareVersion_new,
            SoftwareVersion_dealloc, SoftwareVersion_methods, NULL,
            "SoftwareVersion(connection, name, version, os=None)\n--\n\nSoftware Version "
            "(XEP-0092), epode/version.h: answers version queries, and query() asks.")

int pyepode_modern_init(PyObject *m)
{
    /* the message features, on epode.Message (a static type of stanza.c) */
    PyObject *dict = MessageType.tp_dict;
    for (PyGetSetDef *g = feature_getset; g->name; g++) {
        PyObject *d = PyDescr_NewGetSet(&MessageType, g);
        if (!d || PyDict_SetItemString(dict, g->name, d) < 0) {
            Py_XDECREF(d);
            return -1;
        }
        Py_DECREF(d);
    }
    for (PyMethodDef *f = feature_methods; f->ml_name; f++) {
        PyObject *d = PyDescr_NewMethod(&MessageType, f);
        if (!d || PyDict_SetItemString(dict, f->ml_name, d) < 0) {
            Py_XDECREF(d);
            return -1;
        }
        Py_DECREF(d);
    }
    PyType_Modified(&MessageType);
    if (PyModule_AddFunctions(m, module_functions) < 0)
        return -1;
    PyTypeObject *types[] = {&BlockingType, &MamType, &CsiType, &PingType, &SoftwareVersionType};
    const char *names[] = {"Blocking", "Mam", "Csi", "Ping", "SoftwareVersion"};
    for (int i = 0; i < 5; i++)
        if (PyType_Ready(types[i]) < 0 || PyModule_AddObjectRef(m, names[i], (PyObject *)types[i]) < 0)
            return -1;
    return 0;
}
