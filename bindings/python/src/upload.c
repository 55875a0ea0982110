/* bindings/python/src/upload.c — epode._epode.Upload: HTTP File Upload
 * (XEP-0363, epode/upload.h) for the Python layer (epode/_upload.py,
 * which turns the done callback into an awaitable), and
 * epode._epode.upload_send_url / oob_url for Out-of-Band URLs.
 *
 * Callbacks: done(code, url, condition, text, max_file_size,
 * http_status, retry_stamp) once per upload, progress(sent, total)
 * while the bytes go out. Both are kept (strong references) per upload
 * until done has run. A dying Upload frees its C helper without calling
 * Python (the C helper's ECANCELED callbacks are skipped). */
#include "pyepode.h"

typedef struct ureq {
    struct ureq *next;
    struct UploadObject *owner;
    PyObject *done, *progress; /* strong; NULL once cleared */
} ureq;

typedef struct UploadObject {
    PyObject_HEAD
    ConnectionObject *conn;
    epode_upload_t *up;
    ureq *reqs;
    int dying;
    PyObject *weakrefs;
} UploadObject;

static PyTypeObject UploadType;

static void req_drop(ureq *q)
{
    for (ureq **pp = &q->owner->reqs; *pp; pp = &(*pp)->next)
        if (*pp == q) {
            *pp = q->next;
            break;
        }
    Py_XDECREF(q->done);
    Py_XDECREF(q->progress);
    PyMem_Free(q);
}

/* Keeps self alive across a callback into Python (which may drop the
 * last reference to it). */
static void enter(UploadObject *self)
{
    if (!self->dying)
        Py_INCREF(self);
}

static void leave(UploadObject *self)
{
    if (self->dying)
        return;
    if (Py_REFCNT(self) > 1) {
        Py_DECREF(self);
        return;
    }
    pyepode_defer_decref(self->conn->context, (PyObject *)self);
}

static void on_done(epode_upload_t *up, unsigned id, const epode_upload_result_t *r, void *user)
{
    (void)up, (void)id;
    ureq *q = user;
    UploadObject *self = q->owner;
    if (self->dying || !q->done) {
        req_drop(q);
        return;
    }
    enter(self);
    PyObject *cb = Py_NewRef(q->done);
    req_drop(q);
    PyObject *args[7] = {
        PyLong_FromLong(r->err),
        pyepode_str_or_none(r->get_url),
        pyepode_str_or_none(r->condition),
        pyepode_str_or_none(r->text),
        PyLong_FromUnsignedLongLong(r->max_file_size),
        PyLong_FromLong(r->http_status),
        pyepode_str_or_none(r->retry_stamp),
    };
    int ok = 1;
    for (int i = 0; i < 7; i++)
        ok &= args[i] != NULL;
    if (ok) {
        PyObject *res = pyepode_call(self->conn, cb, args, 7, "upload done");
        Py_XDECREF(res);
    } else if (!pyepode_keep_fatal(self->conn->context)) {
        pyepode_report((PyObject *)self->conn, "upload done");
    }
    for (int i = 0; i < 7; i++)
        Py_XDECREF(args[i]);
    Py_DECREF(cb);
    leave(self);
}

static void on_progress(epode_upload_t *up, unsigned id, unsigned long long sent,
                        unsigned long long total, void *user)
{
    (void)up, (void)id;
    ureq *q = user;
    UploadObject *self = q->owner;
    if (self->dying || !q->progress)
        return;
    enter(self);
    PyObject *cb = Py_NewRef(q->progress);
    PyObject *args[2] = {PyLong_FromUnsignedLongLong(sent), PyLong_FromUnsignedLongLong(total)};
    if (args[0] && args[1]) {
        PyObject *res = pyepode_call(self->conn, cb, args, 2, "upload progress");
        Py_XDECREF(res);
    } else if (!pyepode_keep_fatal(self->conn->context)) {
        pyepode_report((PyObject *)self->conn, "upload progress");
    }
    Py_XDECREF(args[0]);
    Py_XDECREF(args[1]);
    Py_DECREF(cb);
    leave(self);
}

static PyObject *Upload_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"connection", NULL};
    PyObject *conn;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O!:Upload", kwlist, &ConnectionType, &conn))
        return NULL;
    if (!((ConnectionObject *)conn)->conn) {
        PyErr_SetString(PyExc_RuntimeError, "the connection has been freed");
        return NULL;
    }
    UploadObject *self = (UploadObject *)type->tp_alloc(type, 0);
    if (!self)
        return NULL;
    self->conn = (ConnectionObject *)Py_NewRef(conn);
    int rc = epode_upload_new(self->conn->conn, &self->up);
    if (rc < 0) {
        Py_DECREF(self);
        return pyepode_raise(rc, "Upload");
    }
    return (PyObject *)self;
}

static int Upload_traverse(UploadObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->conn);
    for (ureq *q = self->reqs; q; q = q->next) {
        Py_VISIT(q->done);
        Py_VISIT(q->progress);
    }
    return 0;
}

static int Upload_clear(UploadObject *self)
{
    for (ureq *q = self->reqs; q; q = q->next) {
        Py_CLEAR(q->done);
        Py_CLEAR(q->progress);
    }
    return 0;
}

static void Upload_dealloc(UploadObject *self)
{
    PyObject_GC_UnTrack(self);
    if (self->weakrefs)
        PyObject_ClearWeakRefs((PyObject *)self);
    self->dying = 1;
    epode_upload_free(self->up); /* its callbacks drop the requests */
    self->up = NULL;
    while (self->reqs)
        req_drop(self->reqs);
    Py_CLEAR(self->conn);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int usable(UploadObject *self)
{
    if (!self->up || !self->conn->conn) {
        PyErr_SetString(PyExc_RuntimeError, "the connection has been freed");
        return 0;
    }
    return 1;
}

static PyObject *Upload_start(UploadObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"done", "progress", "data", "path", "filename", "content_type", NULL};
    PyObject *done, *progress = Py_None, *data = Py_None, *path_o = Py_None, *name_o = Py_None,
                     *type_o = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|O$OOOO:start", kwlist, &done, &progress,
                                     &data, &path_o, &name_o, &type_o))
        return NULL;
    if (!usable(self))
        return NULL;
    if (!PyCallable_Check(done) || (progress != Py_None && !PyCallable_Check(progress))) {
        PyErr_SetString(PyExc_TypeError, "done and progress must be callable");
        return NULL;
    }
    epode_upload_file_t f = {0};
    PyObject *path_bytes = NULL;
    if (pyepode_opt_str(name_o, &f.filename, "filename") < 0 ||
        pyepode_opt_str(type_o, &f.content_type, "content_type") < 0)
        return NULL;
    if (path_o != Py_None) {
        if (!PyUnicode_FSConverter(path_o, &path_bytes))
            return NULL;
        f.path = PyBytes_AS_STRING(path_bytes);
    }
    Py_buffer buf = {0};
    int have_buf = 0;
    if (data != Py_None) {
        if (PyObject_GetBuffer(data, &buf, PyBUF_SIMPLE) < 0) {
            Py_XDECREF(path_bytes);
            return NULL;
        }
        have_buf = 1;
        f.data = buf.buf ? buf.buf : "";
        f.len = (size_t)buf.len;
    }
    ureq *q = PyMem_Calloc(1, sizeof *q);
    if (!q) {
        if (have_buf)
            PyBuffer_Release(&buf);
        Py_XDECREF(path_bytes);
        return PyErr_NoMemory();
    }
    q->owner = self;
    q->done = Py_NewRef(done);
    q->progress = progress == Py_None ? NULL : Py_NewRef(progress);
    q->next = self->reqs;
    self->reqs = q;
    unsigned id = 0;
    int rc = epode_upload_start(self->up, &f, on_done, progress == Py_None ? NULL : on_progress, q,
                                &id);
    if (have_buf)
        PyBuffer_Release(&buf);
    Py_XDECREF(path_bytes);
    if (rc < 0) {
        req_drop(q);
        return pyepode_raise(rc, "upload");
    }
    return PyLong_FromUnsignedLong(id);
}

static PyObject *Upload_cancel(UploadObject *self, PyObject *arg)
{
    unsigned long id = PyLong_AsUnsignedLong(arg);
    if (PyErr_Occurred() || !usable(self))
        return NULL;
    int rc = epode_upload_cancel(self->up, (unsigned)id);
    if (rc < 0)
        return pyepode_raise(rc, "cancel");
    if (pyepode_raise_kept(self->conn->context) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *Upload_set_service(UploadObject *self, PyObject *args)
{
    PyObject *jid_o;
    unsigned long long max = 0;
    if (!PyArg_ParseTuple(args, "O|K:set_service", &jid_o, &max) || !usable(self))
        return NULL;
    const char *jid;
    if (pyepode_opt_str(jid_o, &jid, "jid") < 0)
        return NULL;
    int rc = epode_upload_set_service(self->up, jid, max);
    if (rc < 0)
        return pyepode_raise(rc, "set_service");
    Py_RETURN_NONE;
}

static PyObject *Upload_allow_http(UploadObject *self, PyObject *arg)
{
    int on = PyObject_IsTrue(arg);
    if (on < 0 || !usable(self))
        return NULL;
    epode_upload_set_allow_http(self->up, on);
    Py_RETURN_NONE;
}

static PyObject *Upload_add_resolve(UploadObject *self, PyObject *args)
{
    const char *host, *addr;
    unsigned int port;
    if (!PyArg_ParseTuple(args, "sIs:add_resolve", &host, &port, &addr) || !usable(self))
        return NULL;
    int rc = epode_upload_add_resolve(self->up, host, port, addr);
    if (rc < 0)
        return pyepode_raise(rc, "add_resolve");
    Py_RETURN_NONE;
}

static PyObject *Upload_get_service(UploadObject *self, void *c)
{
    (void)c;
    return pyepode_str_or_none(self->up ? epode_upload_service(self->up) : NULL);
}

static PyObject *Upload_get_max(UploadObject *self, void *c)
{
    (void)c;
    return PyLong_FromUnsignedLongLong(self->up ? epode_upload_max_file_size(self->up) : 0);
}

static PyMethodDef Upload_methods[] = {
    {"start", (PyCFunction)(void (*)(void))Upload_start, METH_VARARGS | METH_KEYWORDS,
     "start(done, progress=None, *, data=None, path=None, filename=None, content_type=None)"
     " -> id\n\nUploads bytes (data) or a file (path); done(code, url, condition, text,"
     " max_file_size, http_status, retry_stamp) runs once, later."},
    {"cancel", (PyCFunction)Upload_cancel, METH_O, "cancel(id): done runs now with ECANCELED."},
    {"set_service", (PyCFunction)Upload_set_service, METH_VARARGS,
     "set_service(jid, max_file_size=0): skip discovery (None: discover again)."},
    {"allow_http", (PyCFunction)Upload_allow_http, METH_O,
     "allow_http(flag): accept http:// slot URLs (tests on loopback only)."},
    {"add_resolve", (PyCFunction)Upload_add_resolve, METH_VARARGS,
     "add_resolve(host, port, address): connect to address for host:port, no DNS."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Upload_getset[] = {
    {"service", (getter)Upload_get_service, NULL, "The upload service's JID, or None.", NULL},
    {"max_file_size", (getter)Upload_get_max, NULL, "Its max-file-size (0: unknown).", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject UploadType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "epode._epode.Upload",
    .tp_basicsize = sizeof(UploadObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "Upload(connection): HTTP File Upload (XEP-0363) on a connection.",
    .tp_new = Upload_new,
    .tp_dealloc = (destructor)Upload_dealloc,
    .tp_traverse = (traverseproc)Upload_traverse,
    .tp_clear = (inquiry)Upload_clear,
    .tp_methods = Upload_methods,
    .tp_getset = Upload_getset,
    .tp_weaklistoffset = offsetof(UploadObject, weakrefs),
};

static PyObject *py_send_url(PyObject *mod, PyObject *args)
{
    (void)mod;
    PyObject *conn;
    const char *to, *url, *type = NULL;
    if (!PyArg_ParseTuple(args, "O!ss|z:upload_send_url", &ConnectionType, &conn, &to, &url, &type))
        return NULL;
    ConnectionObject *c = (ConnectionObject *)conn;
    if (!c->conn) {
        PyErr_SetString(PyExc_RuntimeError, "the connection has been freed");
        return NULL;
    }
    int rc = epode_upload_send_url(c->conn, to, type, url);
    if (rc < 0)
        return pyepode_raise(rc, "send_url");
    Py_RETURN_NONE;
}

static PyObject *py_oob_url(PyObject *mod, PyObject *arg)
{
    (void)mod;
    epode_stanza_t *owned = NULL;
    epode_stanza_t *el = pyepode_stanza_arg(arg, &owned);
    if (!el)
        return NULL;
    PyObject *r = pyepode_str_or_none(epode_oob_url(el));
    epode_stanza_unref(owned);
    return r;
}

static PyMethodDef module_functions[] = {
    {"upload_send_url", py_send_url, METH_VARARGS,
     "upload_send_url(connection, to, url, type=None): a message with url as body and as"
     " XEP-0066 OOB data."},
    {"oob_url", py_oob_url, METH_O, "oob_url(message) -> str | None: its XEP-0066 URL."},
    {NULL, NULL, 0, NULL},
};

int pyepode_upload_init(PyObject *m)
{
    if (PyType_Ready(&UploadType) < 0 || PyModule_AddObjectRef(m, "Upload", (PyObject *)&UploadType) < 0)
        return -1;
    return PyModule_AddFunctions(m, module_functions);
}
