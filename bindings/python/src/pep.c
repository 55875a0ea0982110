/* bindings/python/src/pep.c — the PEP family for Python: one type,
 * _epode.Pep(connection, disco), over epode/pubsub.h with the bookmarks,
 * avatar and nickname helpers (epode/bookmarks.h, avatar.h, nickname.h)
 * made on it when first started. Callback-based; epode/_pep.py builds
 * client.pubsub, .bookmarks, .avatar and .nickname on it.
 *
 * Ownership: the object holds its connection and the Disco object (the
 * pubsub helper must be freed before its disco helper), every pending
 * request's callback, and the event callables. Freed, it frees the
 * helpers (pending callbacks hear ECANCELED while the object is dying:
 * they are then dropped). Never called back inside a call that asked. */
#include "pyepode.h"

#include <stddef.h>
#include <string.h>

typedef struct preq {
    struct preq *next;
    struct PepObject *owner;
    PyObject *cb; /* strong; NULL once dropped */
} preq;

typedef struct PepObject {
    PyObject_HEAD
    ConnectionObject *conn;
    PyObject *disco_obj;
    PyObject *muc_obj; /* the Muc bookmarks autojoin through (outlives it), or NULL */
    epode_pubsub_t *ps;
    epode_bookmarks_t *bm;
    epode_avatar_t *av;
    epode_nickname_t *nick;
    PyObject *on_event, *on_bookmark, *on_avatar, *on_nick;
    preq *reqs;
    int dying;
    PyObject *weakrefs;
} PepObject;

static PyTypeObject PepType;

/* ---- plumbing ------------------------------------------------------------------- */

static preq *preq_new(PepObject *self, PyObject *cb)
{
    if (cb != Py_None && !PyCallable_Check(cb)) {
        PyErr_SetString(PyExc_TypeError, "callback must be callable or None");
        return NULL;
    }
    preq *q = PyMem_Calloc(1, sizeof *q);
    if (!q) {
        PyErr_NoMemory();
        return NULL;
    }
    q->owner = self;
    q->cb = cb == Py_None ? NULL : Py_NewRef(cb);
    q->next = self->reqs;
    self->reqs = q;
    return q;
}

static void preq_drop(preq *q)
{
    for (preq **pp = &q->owner->reqs; *pp; pp = &(*pp)->next)
        if (*pp == q) {
            *pp = q->next;
            break;
        }
    Py_XDECREF(q->cb);
    PyMem_Free(q);
}

static void enter(PepObject *self)
{
    if (!self->dying)
        Py_INCREF(self);
}

static void leave(PepObject *self)
{
    if (self->dying)
        return;
    if (Py_REFCNT(self) > 1) {
        Py_DECREF(self);
        return;
    }
    pyepode_defer_decref(self->conn->context, (PyObject *)self);
}

/* cb(*args), args stolen (a NULL one: building it failed). */
static void call_cb(PepObject *self, PyObject *cb, PyObject **args, size_t n, const char *where)
{
    int ok = cb != NULL && !self->dying;
    for (size_t i = 0; i < n; i++)
        if (!args[i])
            ok = 0;
    if (ok) {
        PyObject *r = pyepode_call(self->conn, cb, args, n, where);
        Py_XDECREF(r);
    } else if (cb && !self->dying && PyErr_Occurred() && !pyepode_keep_fatal(self->conn->context)) {
        pyepode_report((PyObject *)self->conn, where);
    } else {
        PyErr_Clear();
    }
    for (size_t i = 0; i < n; i++)
        Py_XDECREF(args[i]);
}

static PyObject *cond_or_none(epode_stanza_cond_t cond)
{
    return pyepode_str_or_none(cond == EPODE_COND_NONE ? NULL : epode_stanza_cond_name(cond));
}

static PyObject *perr_or_none(epode_pubsub_error_t e)
{
    return pyepode_str_or_none(e == EPODE_PUBSUB_ERR_NONE ? NULL : epode_pubsub_error_name(e));
}

/* Takes q's callback and drops q; NULL if none. */
static PyObject *take_cb(preq *q)
{
    PyObject *cb = Py_XNewRef(q->cb);
    preq_drop(q);
    return cb;
}

static PyObject *item_tuple(const epode_pubsub_item_t *it)
{
    epode_stanza_t *p = epode_pubsub_item_payload(it);
    return Py_BuildValue("(NNN)", pyepode_str_or_none(epode_pubsub_item_id(it)),
                         pyepode_str_or_none(epode_pubsub_item_publisher(it)),
                         p ? pyepode_stanza_wrap(p, 0) : Py_NewRef(Py_None));
}

/* A submit form from a dict {var: str | bool | int | sequence of str}. */
static int form_from_dict(PyObject *d, epode_form_t **out)
{
    *out = NULL;
    if (d == Py_None)
        return 0;
    if (!PyDict_Check(d)) {
        PyErr_SetString(PyExc_TypeError, "options must be a dict or None");
        return -1;
    }
    epode_form_t *f;
    int rc = epode_form_new(NULL, EPODE_FORM_SUBMIT, &f);
    if (rc < 0) {
        pyepode_raise(rc, "options");
        return -1;
    }
    PyObject *k, *v;
    Py_ssize_t pos = 0;
    while (PyDict_Next(d, &pos, &k, &v)) {
        const char *var = PyUnicode_Check(k) ? PyUnicode_AsUTF8(k) : NULL;
        if (!var) {
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_TypeError, "option names must be str");
            epode_form_free(f);
            return -1;
        }
        PyObject *seq = PyUnicode_Check(v) || PyBool_Check(v) || PyLong_Check(v)
                            ? PyTuple_Pack(1, v)
                            : PySequence_Tuple(v);
        if (!seq) {
            epode_form_free(f);
            return -1;
        }
        for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(seq) && rc == 0; i++) {
            PyObject *o = PyTuple_GET_ITEM(seq, i);
            PyObject *s = PyBool_Check(o) ? PyUnicode_FromString(o == Py_True ? "true" : "false")
                                          : PyObject_Str(o);
            const char *t = s ? PyUnicode_AsUTF8(s) : NULL;
            if (!t) {
                rc = -1;
            } else {
                epode_form_field_t *fld = epode_form_get_field(f, var);
                if (!fld)
                    rc = epode_form_set_value(f, var, t);
                else
                    rc = epode_form_field_add_value(fld, t);
                if (rc < 0)
                    pyepode_raise(rc, "options");
            }
            Py_XDECREF(s);
        }
        Py_DECREF(seq);
        if (rc < 0) {
            epode_form_free(f);
            return -1;
        }
    }
    *out = f;
    return 0;
}

/* ---- pubsub ----------------------------------------------------------------------- */

static void on_reply(epode_pubsub_t *ps, const epode_pubsub_reply_t *r, void *user)
{
    (void)ps;
    preq *q = user;
    PepObject *self = q->owner;
    enter(self);
    PyObject *cb = take_cb(q);
    if (cb) {
        PyObject *extra;
        size_t n = epode_pubsub_reply_item_count(r);
        if (epode_pubsub_reply_subscription(r)) {
            extra = Py_BuildValue("(NN)", pyepode_str_or_none(epode_pubsub_reply_subscription(r)),
                                  pyepode_str_or_none(epode_pubsub_reply_subid(r)));
        } else if (epode_pubsub_reply_item_id(r)) {
            extra = PyUnicode_FromString(epode_pubsub_reply_item_id(r));
        } else {
            extra = PyList_New((Py_ssize_t)n);
            for (size_t i = 0; extra && i < n; i++) {
                PyObject *t = item_tuple(epode_pubsub_reply_item_at(r, i));
                if (!t)
                    Py_CLEAR(extra);
                else
                    PyList_SET_ITEM(extra, (Py_ssize_t)i, t);
            }
        }
        PyObject *args[5] = {PyLong_FromLong(epode_pubsub_reply_status(r)),
                             cond_or_none(epode_pubsub_reply_cond(r)),
                             perr_or_none(epode_pubsub_reply_pubsub_error(r)),
                             pyepode_str_or_none(epode_pubsub_reply_text(r)), extra};
        call_cb(self, cb, args, 5, "pubsub request");
        Py_DECREF(cb);
    }
    leave(self);
}

static void on_ps_event(epode_pubsub_t *ps, epode_pubsub_event_type_t type, const char *from,
                        const char *node, const epode_pubsub_item_t *item, epode_stanza_t *msg,
                        void *user)
{
    (void)ps, (void)msg;
    PepObject *self = user;
    if (!self->on_event || self->dying)
        return;
    enter(self);
    PyObject *args[4] = {PyUnicode_FromString(epode_pubsub_event_type_name(type)),
                         pyepode_str_or_none(from), PyUnicode_FromString(node),
                         item ? item_tuple(item) : Py_NewRef(Py_None)};
    call_cb(self, self->on_event, args, 4, "pubsub event");
    leave(self);
}

static int check_ps(PepObject *self)
{
    if (!self->ps || !epode_pubsub_conn(self->ps)) {
        PyErr_SetString(PyExc_RuntimeError, "the connection has been freed");
        return -1;
    }
    return 0;
}

/* Runs a request made by `start` with a preq; raises on its error. */
#define PEP_REQUEST(self, cb, where, call)                                                        \
    do {                                                                                          \
        preq *q = preq_new(self, cb);                                                             \
        if (!q)                                                                                   \
            return NULL;                                                                          \
        int rc_ = (call);                                                                         \
        if (rc_ < 0) {                                                                            \
            preq_drop(q);                                                                         \
            return pyepode_raise(rc_, where);                                                     \
        }                                                                                         \
    } while (0)

static PyObject *Pep_publish(PepObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"node", "payload", "id", "jid", "options", "callback", NULL};
    const char *node, *id = NULL, *jid = NULL;
    PyObject *payload = Py_None, *options = Py_None, *cb = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "s|OzzOO:publish", kwlist, &node, &payload, &id,
                                     &jid, &options, &cb) ||
        check_ps(self) < 0)
        return NULL;
    epode_stanza_t *owned = NULL, *el = NULL;
    if (payload != Py_None && !(el = pyepode_stanza_arg(payload, &owned)))
        return NULL;
    epode_form_t *form = NULL;
    if (form_from_dict(options, &form) < 0) {
        epode_stanza_unref(owned);
        return NULL;
    }
    preq *q = preq_new(self, cb);
    int rc = q ? epode_pubsub_publish(self->ps, jid, node, id, el, form, on_reply, q, NULL) : 0;
    epode_form_free(form);
    epode_stanza_unref(owned);
    if (!q)
        return NULL;
    if (rc < 0) {
        preq_drop(q);
        return pyepode_raise(rc, "publish");
    }
    Py_RETURN_NONE;
}

static PyObject *Pep_retract(PepObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"node", "id", "jid", "notify", "callback", NULL};
    const char *node, *id, *jid = NULL;
    int notify = 1;
    PyObject *cb = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "ss|zpO:retract", kwlist, &node, &id, &jid,
                                     &notify, &cb) ||
        check_ps(self) < 0)
        return NULL;
    PEP_REQUEST(self, cb, "retract",
                epode_pubsub_retract(self->ps, jid, node, id, notify, on_reply, q, NULL));
    Py_RETURN_NONE;
}

static PyObject *Pep_fetch(PepObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"node", "jid", "id", "max", "callback", NULL};
    const char *node, *jid = NULL, *id = NULL;
    unsigned max = 0;
    PyObject *cb = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "s|zzIO:fetch", kwlist, &node, &jid, &id, &max,
                                     &cb) ||
        check_ps(self) < 0)
        return NULL;
    PEP_REQUEST(self, cb, "fetch",
                epode_pubsub_fetch(self->ps, jid, node, id, max, on_reply, q, NULL));
    Py_RETURN_NONE;
}

static PyObject *Pep_subscribe(PepObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"jid", "node", "subscribe", "subid", "callback", NULL};
    const char *jid, *node, *subid = NULL;
    int sub = 1;
    PyObject *cb = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "ss|pzO:subscribe", kwlist, &jid, &node, &sub,
                                     &subid, &cb) ||
        check_ps(self) < 0)
        return NULL;
    PEP_REQUEST(self, cb, sub ? "subscribe" : "unsubscribe",
                sub ? epode_pubsub_subscribe(self->ps, jid, node, on_reply, q, NULL)
                    : epode_pubsub_unsubscribe(self->ps, jid, node, subid, on_reply, q, NULL));
    Py_RETURN_NONE;
}

static PyObject *Pep_delete_node(PepObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"node", "jid", "callback", NULL};
    const char *node, *jid = NULL;
    PyObject *cb = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "s|zO:delete_node", kwlist, &node, &jid, &cb) ||
        check_ps(self) < 0)
        return NULL;
    PEP_REQUEST(self, cb, "delete_node",
                epode_pubsub_delete_node(self->ps, jid, node, on_reply, q, NULL));
    Py_RETURN_NONE;
}

static PyObject *Pep_configure(PepObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"node", "options", "jid", "callback", NULL};
    const char *node, *jid = NULL;
    PyObject *options, *cb = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "sO|zO:configure", kwlist, &node, &options, &jid,
                                     &cb) ||
        check_ps(self) < 0)
        return NULL;
    epode_form_t *form;
    if (form_from_dict(options, &form) < 0)
        return NULL;
    if (!form) {
        PyErr_SetString(PyExc_TypeError, "options must be a dict");
        return NULL;
    }
    preq *q = preq_new(self, cb);
    int rc = q ? epode_pubsub_configure(self->ps, jid, node, form, on_reply, q, NULL) : 0;
    epode_form_free(form);
    if (!q)
        return NULL;
    if (rc < 0) {
        preq_drop(q);
        return pyepode_raise(rc, "configure");
    }
    Py_RETURN_NONE;
}

static PyObject *Pep_notify(PepObject *self, PyObject *args)
{
    const char *node;
    int on = 1;
    if (!PyArg_ParseTuple(args, "s|p:notify", &node, &on) || check_ps(self) < 0)
        return NULL;
    int rc = on ? epode_pubsub_add_notify(self->ps, node) : epode_pubsub_remove_notify(self->ps, node);
    if (rc < 0)
        return pyepode_raise(rc, "notify");
    Py_RETURN_NONE;
}

/* ---- bookmarks ---------------------------------------------------------------------- */

static PyObject *bookmark_tuple(const epode_bookmark_t *b)
{
    return Py_BuildValue("(sNNNO)", epode_bookmark_room(b), pyepode_str_or_none(epode_bookmark_name(b)),
                         pyepode_str_or_none(epode_bookmark_nick(b)),
                         pyepode_str_or_none(epode_bookmark_password(b)),
                         epode_bookmark_autojoin(b) ? Py_True : Py_False);
}

static void on_bm_event(epode_bookmarks_t *b, epode_bookmarks_event_t ev, const epode_bookmark_t *bm,
                        void *user)
{
    (void)b;
    PepObject *self = user;
    if (!self->on_bookmark || self->dying)
        return;
    enter(self);
    PyObject *args[2] = {PyUnicode_FromString(epode_bookmarks_event_name(ev)),
                         bm ? bookmark_tuple(bm) : Py_NewRef(Py_None)};
    call_cb(self, self->on_bookmark, args, 2, "bookmarks event");
    leave(self);
}

static void on_result4(PepObject *self, preq *q, int status, epode_stanza_cond_t cond,
                       epode_pubsub_error_t perr, PyObject *extra, const char *where)
{
    enter(self);
    PyObject *cb = take_cb(q);
    if (cb) {
        PyObject *args[4] = {PyLong_FromLong(status), cond_or_none(cond), perr_or_none(perr),
                             extra ? extra : Py_NewRef(Py_None)};
        call_cb(self, cb, args, 4, where);
        Py_DECREF(cb);
    } else {
        Py_XDECREF(extra);
    }
    leave(self);
}

static void on_bm_result(epode_bookmarks_t *b, int status, epode_stanza_cond_t cond,
                         epode_pubsub_error_t perr, void *user)
{
    (void)b;
    preq *q = user;
    on_result4(q->owner, q, status, cond, perr, NULL, "bookmarks request");
}

static int need_bm(PepObject *self)
{
    if (check_ps(self) < 0)
        return -1;
    if (!self->bm) {
        int rc = epode_bookmarks_new(self->ps, on_bm_event, self, &self->bm);
        if (rc < 0) {
            pyepode_raise(rc, "bookmarks");
            return -1;
        }
    }
    return 0;
}

static PyObject *Pep_bookmarks_start(PepObject *self, PyObject *unused)
{
    (void)unused;
    if (need_bm(self) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *Pep_bookmarks_autojoin(PepObject *self, PyObject *args)
{
    PyObject *muc_obj = Py_None;
    const char *nick = NULL;
    if (!PyArg_ParseTuple(args, "O|z:bookmarks_autojoin", &muc_obj, &nick) || need_bm(self) < 0)
        return NULL;
    epode_muc_t *muc = NULL;
    if (muc_obj != Py_None && !(muc = pyepode_muc_of(muc_obj)))
        return NULL;
    int rc = epode_bookmarks_set_autojoin(self->bm, muc, nick);
    if (rc < 0)
        return pyepode_raise(rc, "bookmarks autojoin");
    Py_XSETREF(self->muc_obj, muc ? Py_NewRef(muc_obj) : NULL);
    Py_RETURN_NONE;
}

static PyObject *Pep_bookmarks_list(PepObject *self, PyObject *unused)
{
    (void)unused;
    size_t n = epode_bookmarks_count(self->bm);
    PyObject *t = PyTuple_New((Py_ssize_t)n);
    for (size_t i = 0; t && i < n; i++) {
        PyObject *o = bookmark_tuple(epode_bookmarks_at(self->bm, i));
        if (!o)
            Py_CLEAR(t);
        else
            PyTuple_SET_ITEM(t, (Py_ssize_t)i, o);
    }
    return t;
}

static PyObject *Pep_bookmarks_received(PepObject *self, PyObject *unused)
{
    (void)unused;
    return PyBool_FromLong(epode_bookmarks_received(self->bm));
}

static PyObject *Pep_bookmarks_fetch(PepObject *self, PyObject *args)
{
    PyObject *cb = Py_None;
    if (!PyArg_ParseTuple(args, "|O:bookmarks_fetch", &cb) || need_bm(self) < 0)
        return NULL;
    PEP_REQUEST(self, cb, "bookmarks", epode_bookmarks_fetch(self->bm, on_bm_result, q));
    Py_RETURN_NONE;
}

static PyObject *Pep_bookmarks_add(PepObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"room", "name", "autojoin", "nick", "password", "callback", NULL};
    const char *room, *name = NULL, *nick = NULL, *password = NULL;
    int autojoin = 0;
    PyObject *cb = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "s|zpzzO:bookmarks_add", kwlist, &room, &name,
                                     &autojoin, &nick, &password, &cb) ||
        need_bm(self) < 0)
        return NULL;
    PEP_REQUEST(self, cb, "bookmarks",
                epode_bookmarks_add(self->bm, room, name, autojoin, nick, password, on_bm_result, q));
    Py_RETURN_NONE;
}

static PyObject *Pep_bookmarks_remove(PepObject *self, PyObject *args)
{
    const char *room;
    PyObject *cb = Py_None;
    if (!PyArg_ParseTuple(args, "s|O:bookmarks_remove", &room, &cb) || need_bm(self) < 0)
        return NULL;
    PEP_REQUEST(self, cb, "bookmarks", epode_bookmarks_remove(self->bm, room, on_bm_result, q));
    Py_RETURN_NONE;
}

/* ---- avatar --------------------------------------------------------------------------- */

static void on_av_event(epode_avatar_t *av, const char *jid, const char *id, const char *type,
                        epode_avatar_source_t source, void *user)
{
    (void)av;
    PepObject *self = user;
    if (!self->on_avatar || self->dying)
        return;
    enter(self);
    PyObject *args[4] = {PyUnicode_FromString(jid), pyepode_str_or_none(id), pyepode_str_or_none(type),
                         PyUnicode_FromString(epode_avatar_source_name(source))};
    call_cb(self, self->on_avatar, args, 4, "avatar event");
    leave(self);
}

static void on_av_result(epode_avatar_t *av, int status, epode_stanza_cond_t cond,
                         epode_pubsub_error_t perr, const char *id, void *user)
{
    (void)av;
    preq *q = user;
    on_result4(q->owner, q, status, cond, perr, pyepode_str_or_none(id), "avatar request");
}

static void on_av_fetch(epode_avatar_t *av, int status, epode_stanza_cond_t cond, const char *jid,
                        const unsigned char *data, size_t len, const char *id, const char *type,
                        void *user)
{
    (void)av, (void)jid;
    preq *q = user;
    PyObject *extra = data ? Py_BuildValue("(y#NN)", (const char *)data, (Py_ssize_t)len,
                                           pyepode_str_or_none(id), pyepode_str_or_none(type))
                           : Py_NewRef(Py_None);
    on_result4(q->owner, q, status, cond, EPODE_PUBSUB_ERR_NONE, extra, "avatar fetch");
}

static int need_av(PepObject *self)
{
    if (check_ps(self) < 0)
        return -1;
    if (!self->av) {
        int rc = epode_avatar_new(self->ps, on_av_event, self, &self->av);
        if (rc < 0) {
            pyepode_raise(rc, "avatar");
            return -1;
        }
    }
    return 0;
}

static PyObject *Pep_avatar_start(PepObject *self, PyObject *unused)
{
    (void)unused;
    if (need_av(self) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *Pep_avatar_publish(PepObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"data", "type", "width", "height", "callback", NULL};
    Py_buffer data;
    const char *type = NULL;
    unsigned w = 0, h = 0;
    PyObject *cb = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "y*|zIIO:avatar_publish", kwlist, &data, &type, &w,
                                     &h, &cb))
        return NULL;
    PyObject *ret = NULL;
    if (need_av(self) == 0) {
        preq *q = preq_new(self, cb);
        int rc = q ? epode_avatar_publish(self->av, data.buf, (size_t)data.len, type, w, h,
                                          on_av_result, q)
                   : 0;
        if (q && rc < 0) {
            preq_drop(q);
            pyepode_raise(rc, "avatar publish");
        } else if (q) {
            ret = Py_NewRef(Py_None);
        }
    }
    PyBuffer_Release(&data);
    return ret;
}

static PyObject *Pep_avatar_disable(PepObject *self, PyObject *args)
{
    PyObject *cb = Py_None;
    if (!PyArg_ParseTuple(args, "|O:avatar_disable", &cb) || need_av(self) < 0)
        return NULL;
    PEP_REQUEST(self, cb, "avatar", epode_avatar_disable(self->av, on_av_result, q));
    Py_RETURN_NONE;
}

static PyObject *Pep_avatar_fetch(PepObject *self, PyObject *args)
{
    const char *jid = NULL;
    PyObject *cb = Py_None;
    if (!PyArg_ParseTuple(args, "z|O:avatar_fetch", &jid, &cb) || need_av(self) < 0)
        return NULL;
    PEP_REQUEST(self, cb, "avatar fetch", epode_avatar_fetch(self->av, jid, on_av_fetch, q));
    Py_RETURN_NONE;
}

static PyObject *Pep_avatar_set_vcard_hash(PepObject *self, PyObject *args)
{
    const char *hash = NULL;
    if (!PyArg_ParseTuple(args, "z:avatar_set_vcard_hash", &hash) || need_av(self) < 0)
        return NULL;
    int rc = epode_avatar_set_vcard_hash(self->av, hash);
    if (rc < 0)
        return pyepode_raise(rc, "avatar");
    Py_RETURN_NONE;
}

static PyObject *Pep_avatar_vcard_hash(PepObject *self, PyObject *unused)
{
    (void)unused;
    return pyepode_str_or_none(epode_avatar_vcard_hash(self->av));
}

/* ---- nickname ----------------------------------------------------------------------- */

static void on_nick_event(epode_nickname_t *n, const char *jid, const char *nick,
                          epode_nickname_source_t source, void *user)
{
    (void)n;
    PepObject *self = user;
    if (!self->on_nick || self->dying)
        return;
    enter(self);
    PyObject *args[3] = {PyUnicode_FromString(jid), PyUnicode_FromString(nick),
                         PyUnicode_FromString(epode_nickname_source_name(source))};
    call_cb(self, self->on_nick, args, 3, "nickname event");
    leave(self);
}

static void on_nick_result(epode_nickname_t *n, int status, epode_stanza_cond_t cond,
                           epode_pubsub_error_t perr, void *user)
{
    (void)n;
    preq *q = user;
    on_result4(q->owner, q, status, cond, perr, NULL, "nickname request");
}

static int need_nick(PepObject *self)
{
    if (check_ps(self) < 0)
        return -1;
    if (!self->nick) {
        int rc = epode_nickname_new(self->ps, on_nick_event, self, &self->nick);
        if (rc < 0) {
            pyepode_raise(rc, "nickname");
            return -1;
        }
    }
    return 0;
}

static PyObject *Pep_nickname_start(PepObject *self, PyObject *unused)
{
    (void)unused;
    if (need_nick(self) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *Pep_nickname_set(PepObject *self, PyObject *args)
{
    const char *nick = NULL;
    PyObject *cb = Py_None;
    if (!PyArg_ParseTuple(args, "z|O:nickname_set", &nick, &cb) || need_nick(self) < 0)
        return NULL;
    PEP_REQUEST(self, cb, "nickname", epode_nickname_set(self->nick, nick, on_nick_result, q));
    Py_RETURN_NONE;
}

static PyObject *Pep_nickname_own(PepObject *self, PyObject *unused)
{
    (void)unused;
    return pyepode_str_or_none(epode_nickname_get_own(self->nick));
}

/* ---- the type ----------------------------------------------------------------------- */

static PyObject *Pep_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"connection", "disco", NULL};
    PyObject *conn, *disco_obj = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|O:Pep", kwlist, &conn, &disco_obj))
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
    epode_disco_t *disco = NULL;
    if (disco_obj != Py_None && !(disco = pyepode_disco_of(disco_obj)))
        return NULL;
    PepObject *self = (PepObject *)type->tp_alloc(type, 0);
    if (!self)
        return NULL;
    self->conn = (ConnectionObject *)Py_NewRef(conn);
    self->disco_obj = disco ? Py_NewRef(disco_obj) : NULL;
    int rc = epode_pubsub_new(self->conn->conn, disco, &self->ps);
    if (rc < 0) {
        Py_DECREF(self);
        return pyepode_raise(rc, "Pep");
    }
    rc = epode_pubsub_add_event_cb(self->ps, NULL, on_ps_event, self, NULL);
    if (rc < 0) {
        Py_DECREF(self);
        return pyepode_raise(rc, "Pep");
    }
    return (PyObject *)self;
}

static int Pep_traverse(PepObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->conn);
    Py_VISIT(self->disco_obj);
    Py_VISIT(self->muc_obj);
    Py_VISIT(self->on_event);
    Py_VISIT(self->on_bookmark);
    Py_VISIT(self->on_avatar);
    Py_VISIT(self->on_nick);
    for (preq *q = self->reqs; q; q = q->next)
        Py_VISIT(q->cb);
    return 0;
}

static int Pep_clear(PepObject *self)
{
    Py_CLEAR(self->on_event);
    Py_CLEAR(self->on_bookmark);
    Py_CLEAR(self->on_avatar);
    Py_CLEAR(self->on_nick);
    for (preq *q = self->reqs; q; q = q->next)
        Py_CLEAR(q->cb);
    return 0;
}

static void Pep_dealloc(PepObject *self)
{
    PyObject_GC_UnTrack(self);
    if (self->weakrefs)
        PyObject_ClearWeakRefs((PyObject *)self);
    self->dying = 1;
    /* the helpers on the pubsub helper first, then it, then its disco */
    epode_bookmarks_free(self->bm);
    epode_avatar_free(self->av);
    epode_nickname_free(self->nick);
    epode_pubsub_free(self->ps);
    while (self->reqs) {
        preq *q = self->reqs;
        self->reqs = q->next;
        Py_XDECREF(q->cb);
        PyMem_Free(q);
    }
    Pep_clear(self);
    Py_CLEAR(self->muc_obj); /* after the bookmarks helper that joined through it */
    Py_CLEAR(self->disco_obj);
    Py_CLEAR(self->conn);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

#define CALLABLE_SLOT(field)                                                                      \
    static PyObject *get_##field(PepObject *self, void *c)                                        \
    {                                                                                             \
        (void)c;                                                                                  \
        return Py_NewRef(self->field ? self->field : Py_None);                                    \
    }                                                                                             \
    static int set_##field(PepObject *self, PyObject *v, void *c)                                 \
    {                                                                                             \
        (void)c;                                                                                  \
        if (v && v != Py_None && !PyCallable_Check(v)) {                                          \
            PyErr_SetString(PyExc_TypeError, #field " must be callable or None");                 \
            return -1;                                                                            \
        }                                                                                         \
        Py_XSETREF(self->field, v && v != Py_None ? Py_NewRef(v) : NULL);                         \
        return 0;                                                                                 \
    }
CALLABLE_SLOT(on_event)
CALLABLE_SLOT(on_bookmark)
CALLABLE_SLOT(on_avatar)
CALLABLE_SLOT(on_nick)

static PyGetSetDef Pep_getset[] = {
    {"on_event", (getter)get_on_event, (setter)set_on_event,
     "callable(type, from_, node, item) for every notification; item (id, publisher, payload) "
     "or None", NULL},
    {"on_bookmark", (getter)get_on_bookmark, (setter)set_on_bookmark,
     "callable(event, bookmark): bookmark (room, name, nick, password, autojoin) or None", NULL},
    {"on_avatar", (getter)get_on_avatar, (setter)set_on_avatar,
     "callable(jid, id, type, source): an avatar announcement ('pep' or 'vcard')", NULL},
    {"on_nick", (getter)get_on_nick, (setter)set_on_nick,
     "callable(jid, nick, source): a nick learnt ('pep', 'presence', 'message')", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

#define M(name, fn, flags, doc) {name, (PyCFunction)(void (*)(void))fn, flags, doc}
static PyMethodDef Pep_methods[] = {
    M("publish", Pep_publish, METH_VARARGS | METH_KEYWORDS,
      "publish(node, payload=None, id=None, jid=None, options=None, callback=None)\n--\n\n"
      "callback(status, condition, pubsub_error, text, item_id)."),
    M("retract", Pep_retract, METH_VARARGS | METH_KEYWORDS,
      "retract(node, id, jid=None, notify=True, callback=None)"),
    M("fetch", Pep_fetch, METH_VARARGS | METH_KEYWORDS,
      "fetch(node, jid=None, id=None, max=0, callback=None)\n--\n\n"
      "callback(status, condition, pubsub_error, text, [(id, publisher, payload), ...])."),
    M("subscribe", Pep_subscribe, METH_VARARGS | METH_KEYWORDS,
      "subscribe(jid, node, subscribe=True, subid=None, callback=None)\n--\n\n"
      "callback(..., (subscription, subid)) when subscribing."),
    M("delete_node", Pep_delete_node, METH_VARARGS | METH_KEYWORDS,
      "delete_node(node, jid=None, callback=None)"),
    M("configure", Pep_configure, METH_VARARGS | METH_KEYWORDS,
      "configure(node, options, jid=None, callback=None)"),
    M("notify", Pep_notify, METH_VARARGS, "notify(node, on=True)\n--\n\nNODE+notify in our caps."),
    M("bookmarks_start", Pep_bookmarks_start, METH_NOARGS, "Makes the bookmarks helper."),
    M("bookmarks_list", Pep_bookmarks_list, METH_NOARGS, "The local list of bookmark tuples."),
    M("bookmarks_autojoin", Pep_bookmarks_autojoin, METH_VARARGS,
      "bookmarks_autojoin(muc, nick=None)\n--\n\nJoins autojoin rooms through `muc` "
      "(an _epode.Muc; None: stop)."),
    M("bookmarks_received", Pep_bookmarks_received, METH_NOARGS, "True once fetched."),
    M("bookmarks_fetch", Pep_bookmarks_fetch, METH_VARARGS,
      "bookmarks_fetch(callback=None)\n--\n\ncallback(status, condition, pubsub_error, None)."),
    M("bookmarks_add", Pep_bookmarks_add, METH_VARARGS | METH_KEYWORDS,
      "bookmarks_add(room, name=None, autojoin=False, nick=None, password=None, callback=None)"),
    M("bookmarks_remove", Pep_bookmarks_remove, METH_VARARGS,
      "bookmarks_remove(room, callback=None)"),
    M("avatar_start", Pep_avatar_start, METH_NOARGS, "Makes the avatar helper."),
    M("avatar_publish", Pep_avatar_publish, METH_VARARGS | METH_KEYWORDS,
      "avatar_publish(data, type=None, width=0, height=0, callback=None)\n--\n\n"
      "callback(status, condition, pubsub_error, id)."),
    M("avatar_disable", Pep_avatar_disable, METH_VARARGS, "avatar_disable(callback=None)"),
    M("avatar_fetch", Pep_avatar_fetch, METH_VARARGS,
      "avatar_fetch(jid, callback=None)\n--\n\n"
      "callback(status, condition, None, (data, id, type) or None)."),
    M("avatar_set_vcard_hash", Pep_avatar_set_vcard_hash, METH_VARARGS,
      "avatar_set_vcard_hash(hash)\n--\n\nThe XEP-0153 hash our presence carries (None: none)."),
    M("avatar_vcard_hash", Pep_avatar_vcard_hash, METH_NOARGS, "The XEP-0153 hash we announce."),
    M("nickname_start", Pep_nickname_start, METH_NOARGS, "Makes the nickname helper."),
    M("nickname_set", Pep_nickname_set, METH_VARARGS,
      "nickname_set(nick, callback=None)\n--\n\ncallback(status, condition, pubsub_error, None)."),
    M("nickname_own", Pep_nickname_own, METH_NOARGS, "Our nick as last set, or None."),
    {NULL, NULL, 0, NULL},
};

static PyTypeObject PepType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "epode._epode.Pep",
    .tp_basicsize = sizeof(PepObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "Pep(connection, disco=None)\n--\n\nPubSub/PEP (XEP-0060/0163) with bookmarks "
              "(XEP-0402), avatars (XEP-0084/0153) and nicknames (XEP-0172).",
    .tp_new = Pep_new,
    .tp_dealloc = (destructor)Pep_dealloc,
    .tp_traverse = (traverseproc)Pep_traverse,
    .tp_clear = (inquiry)Pep_clear,
    .tp_methods = Pep_methods,
    .tp_getset = Pep_getset,
    .tp_weaklistoffset = offsetof(PepObject, weakrefs),
};

int pyepode_pep_init(PyObject *m)
{
    if (PyType_Ready(&PepType) < 0 || PyModule_AddObjectRef(m, "Pep", (PyObject *)&PepType) < 0)
        return -1;
    return 0;
}
