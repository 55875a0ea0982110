/* module.c — `epode._epode`: the exception types, the Context (one epode
 * context driven either by an asyncio loop through epode's external-loop
 * API, or by run(), a poll(2) loop that releases the GIL while it waits),
 * and the module itself.
 *
 * The context is always in epode's external mode. epode tells us which
 * fds it wants watched and when its next deadline is; we keep that here
 * and pass it on to the current driver: a Python object with methods
 * watch(fd, events) and timer(ms) (the asyncio glue in epode/_loop.py),
 * or nobody, in which case run() polls the table itself. Switching the
 * driver replays the table to the new one, so a context can move from
 * one asyncio loop to the next (asyncio.run() makes a new loop each
 * time) or to run().
 */
#include "pyepode.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <time.h>

PyObject *pyepode_Error;
PyObject *pyepode_StanzaError;
PyObject *pyepode_TimeoutError;

/* ---- errors ----------------------------------------------------------- */

PyObject *pyepode_str_or_none(const char *s)
{
    if (!s)
        Py_RETURN_NONE;
    return PyUnicode_DecodeUTF8(s, (Py_ssize_t)strlen(s), "replace");
}

int pyepode_opt_str(PyObject *obj, const char **out, const char *what)
{
    if (!obj || obj == Py_None) {
        *out = NULL;
        return 0;
    }
    if (!PyUnicode_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "%s must be str or None, not %.80s", what,
                     Py_TYPE(obj)->tp_name);
        return -1;
    }
    Py_ssize_t len;
    const char *s = PyUnicode_AsUTF8AndSize(obj, &len);
    if (!s)
        return -1;
    if ((size_t)len != strlen(s)) {
        PyErr_Format(PyExc_ValueError, "%s must not contain NUL characters", what);
        return -1;
    }
    *out = s;
    return 0;
}

PyObject *pyepode_make_error(PyObject *type, int code, const char *message,
                             const char *condition, const char *text)
{
    /* the server chose part of these words: decode leniently */
    PyObject *msg = PyUnicode_DecodeUTF8(message, (Py_ssize_t)strlen(message), "replace");
    PyObject *exc = msg ? PyObject_CallFunctionObjArgs(type, msg, NULL) : NULL;
    Py_XDECREF(msg);
    if (!exc)
        return NULL;
    static const char *const names[4] = {"code", "name", "condition", "text"};
    for (int i = 0; i < 4; i++) {
        PyObject *v = i == 0 ? PyLong_FromLong(code)
                    : i == 1 ? (code < 0 ? PyUnicode_FromFormat("E%s", epode_err_name(code))
                                         : Py_NewRef(Py_None))
                    : pyepode_str_or_none(i == 2 ? condition : text);
        int rc = v ? PyObject_SetAttrString(exc, names[i], v) : -1;
        Py_XDECREF(v);
        if (rc < 0) {
            Py_DECREF(exc);
            return NULL;
        }
    }
    return exc;
}

PyObject *pyepode_raise(int rc, const char *where)
{
    if (rc == EPODE_ENOMEM)
        return PyErr_NoMemory();
    PyObject *type = rc == EPODE_ETIMEDOUT ? pyepode_TimeoutError : pyepode_Error;
    PyObject *msg = PyUnicode_FromFormat("%s: %s (E%s)", where, epode_strerror(rc),
                                         epode_err_name(rc));
    if (!msg)
        return NULL;
    PyObject *exc = pyepode_make_error(type, rc, PyUnicode_AsUTF8(msg), NULL, NULL);
    Py_DECREF(msg);
    if (exc) {
        PyErr_SetObject(type, exc);
        Py_DECREF(exc);
    }
    return NULL;
}

void pyepode_report(PyObject *cb_owner, const char *where)
{
    if (!PyErr_Occurred())
        return;
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    if (tb && value)
        PyException_SetTraceback(value, tb);
    ConnectionObject *c = (cb_owner && PyObject_TypeCheck(cb_owner, &ConnectionType))
                              ? (ConnectionObject *)cb_owner : NULL;
    if (c && c->on_error && value) {
        PyObject *hook = Py_NewRef(c->on_error);
        PyObject *r = PyObject_CallOneArg(hook, value);
        if (r) {
            Py_DECREF(r);
            Py_DECREF(hook);
            Py_XDECREF(type);
            Py_XDECREF(value);
            Py_XDECREF(tb);
            return;
        }
        /* The hook failed too: a KeyboardInterrupt/SystemExit there
         * stops the loop; anything else is reported the usual way, then
         * the original below. */
        if (!pyepode_keep_fatal(c->context))
            PyErr_WriteUnraisable(hook);
        Py_DECREF(hook);
    }
    PyErr_Restore(type, value, tb);
    PyObject *ctx = PyUnicode_FromFormat("epode %s", where);
    PyErr_WriteUnraisable(ctx);
    Py_XDECREF(ctx);
}

/* ---- Context ---------------------------------------------------------- */

static PyObject *str_watch, *str_timer;

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void driver_call(ContextObject *self, PyObject *name, long a, long b, int two)
{
    if (!self->driver)
        return;
    /* epode may call us while an exception is pending in the caller: keep
     * it aside for the driver's call. */
    PyObject *err_type, *err_value, *err_tb;
    PyErr_Fetch(&err_type, &err_value, &err_tb);
    PyObject *drv = Py_NewRef(self->driver);
    self->depth++; /* whatever Python drops here is freed after epode returns */
    PyObject *args[3] = {drv, PyLong_FromLong(a), two ? PyLong_FromLong(b) : NULL};
    PyObject *r = args[1] && (!two || args[2])
                      ? PyObject_VectorcallMethod(name, args, two ? 3 : 2, NULL)
                      : NULL;
    Py_XDECREF(args[1]);
    Py_XDECREF(args[2]);
    self->depth--;
    if (r)
        Py_DECREF(r);
    else if (!pyepode_keep_fatal(self))
        PyErr_WriteUnraisable(drv);
    Py_DECREF(drv);
    PyErr_Restore(err_type, err_value, err_tb);
}

/* epode → us: the fd table changed. */
static void on_watch(void *user, int fd, unsigned events, void *fd_user)
{
    (void)fd_user;
    ContextObject *self = user;
    size_t i;
    for (i = 0; i < self->nfds; i++)
        if (self->fds[i].fd == fd)
            break;
    if (i == self->nfds) {
        if (!events)
            return;
        if (self->nfds == self->capfds) {
            size_t cap = self->capfds ? self->capfds * 2 : 8;
            pyepode_fdent *n = PyMem_RawRealloc(self->fds, cap * sizeof *n);
            if (!n) {
                /* Nothing sensible is left: the connection would hang.
                 * Tell the user loudly; epode will time the link out. */
                PyErr_NoMemory();
                PyErr_WriteUnraisable((PyObject *)self);
                return;
            }
            self->fds = n;
            self->capfds = cap;
        }
        self->fds[self->nfds].fd = fd;
        self->fds[self->nfds].events = events;
        self->nfds++;
    } else if (events) {
        self->fds[i].events = events;
    } else {
        self->fds[i] = self->fds[--self->nfds];
    }
    driver_call(self, str_watch, fd, (long)events, 1);
}

/* epode → us: the next deadline changed. */
static void on_timer(void *user, long timeout_ms)
{
    ContextObject *self = user;
    self->timer_ms = timeout_ms;
    self->due_ms = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
    driver_call(self, str_timer, timeout_ms, 0, 0);
}

int pyepode_defer_decref(ContextObject *ctx, PyObject *obj)
{
    if (!ctx->deferred) {
        ctx->deferred = PyList_New(0);
        if (!ctx->deferred) {
            /* Leaking one object beats freeing it under epode. */
            PyErr_Clear();
            return -1;
        }
    }
    int rc = PyList_Append(ctx->deferred, obj);
    if (rc < 0)
        PyErr_Clear();
    else
        Py_DECREF(obj);
    return rc;
}

void pyepode_free_conn(ContextObject *ctx, epode_conn_t *conn)
{
    if (ctx->depth == 0) {
        epode_conn_free(conn);
        return;
    }
    if (ctx->ndead == ctx->capdead) {
        size_t cap = ctx->capdead ? ctx->capdead * 2 : 4;
        epode_conn_t **n = PyMem_RawRealloc(ctx->dead, cap * sizeof *n);
        if (!n) {
            /* Closing at once is the lesser evil than leaking a socket. */
            epode_conn_free(conn);
            return;
        }
        ctx->dead = n;
        ctx->capdead = cap;
    }
    ctx->dead[ctx->ndead++] = conn;
}

void pyepode_flush_deferred(ContextObject *ctx)
{
    if (ctx->depth > 0)
        return;
    while (ctx->ndead > 0)
        epode_conn_free(ctx->dead[--ctx->ndead]);
    if (!ctx->deferred || PyList_GET_SIZE(ctx->deferred) == 0)
        return;
    PyObject *list = ctx->deferred;
    ctx->deferred = NULL;
    Py_DECREF(list); /* may run deallocators, which may defer again */
}

static PyObject *Context_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, ":Context", kwlist))
        return NULL;
    int rc = epode_global_init();
    if (rc < 0)
        return pyepode_raise(rc, "epode_global_init");
    ContextObject *self = (ContextObject *)type->tp_alloc(type, 0);
    if (!self)
        return NULL;
    self->due_ms = -1;
    self->timer_ms = -1;
    rc = epode_ctx_new(NULL, &self->ctx);
    if (rc < 0) {
        Py_DECREF(self);
        return pyepode_raise(rc, "epode_ctx_new");
    }
    rc = epode_ctx_set_external_loop(self->ctx, on_watch, on_timer, self);
    if (rc < 0) {
        Py_DECREF(self);
        return pyepode_raise(rc, "epode_ctx_set_external_loop");
    }
    return (PyObject *)self;
}

static int Context_traverse(ContextObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->driver);
    Py_VISIT(self->log);
    Py_VISIT(self->deferred);
    Py_VISIT(self->exc_type);
    Py_VISIT(self->exc_value);
    Py_VISIT(self->exc_tb);
    return 0;
}

static int Context_clear(ContextObject *self)
{
    Py_CLEAR(self->driver);
    Py_CLEAR(self->log);
    Py_CLEAR(self->deferred);
    return 0;
}

static void Context_dealloc(ContextObject *self)
{
    PyObject_GC_UnTrack(self);
    if (self->weakrefs)
        PyObject_ClearWeakRefs((PyObject *)self);
    Context_clear(self);
    Py_CLEAR(self->exc_type);
    Py_CLEAR(self->exc_value);
    Py_CLEAR(self->exc_tb);
    while (self->ndead > 0)
        epode_conn_free(self->dead[--self->ndead]);
    PyMem_RawFree(self->dead);
    if (self->ctx)
        epode_ctx_free(self->ctx); /* connections hold us: none is left */
    PyMem_RawFree(self->fds);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* epode → us: a log line (the GIL is held: epode only runs inside
 * process()/run()). An exception from the callable is reported, never
 * raised into epode. */
static void on_log(void *user, epode_log_level_t level, const char *area, const char *msg)
{
    ContextObject *self = user;
    if (!self->log)
        return;
    PyObject *err_type, *err_value, *err_tb;
    PyErr_Fetch(&err_type, &err_value, &err_tb);
    PyObject *fn = Py_NewRef(self->log);
    self->depth++;
    PyObject *r = PyObject_CallFunction(fn, "iss", (int)level, area ? area : "",
                                        msg ? msg : "");
    self->depth--;
    if (r)
        Py_DECREF(r);
    else if (!pyepode_keep_fatal(self))
        PyErr_WriteUnraisable(fn);
    Py_DECREF(fn);
    PyErr_Restore(err_type, err_value, err_tb);
}

PyDoc_STRVAR(set_log_doc,
"set_log(fn, max_level=LOG_DEBUG)\n--\n\n"
"Sends epode's log lines up to max_level (LOG_ERROR, LOG_WARN, LOG_INFO,\n"
"LOG_DEBUG, or LOG_XML for the XML traffic, credentials redacted) to\n"
"fn(level, area, msg); None stops them. The epode package already routes\n"
"them to the 'epode' logger of the logging module (see epode.XML).");

static PyObject *Context_set_log(ContextObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"fn", "max_level", NULL};
    PyObject *fn;
    int max_level = EPODE_LOG_DEBUG;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|i:set_log", kwlist, &fn, &max_level))
        return NULL;
    if (fn != Py_None && !PyCallable_Check(fn)) {
        PyErr_SetString(PyExc_TypeError, "set_log: fn must be callable or None");
        return NULL;
    }
    if (!epode_log_level_name((epode_log_level_t)max_level)) {
        PyErr_Format(PyExc_ValueError, "set_log: no such log level %d", max_level);
        return NULL;
    }
    Py_XSETREF(self->log, fn == Py_None ? NULL : Py_NewRef(fn));
    epode_ctx_set_log(self->ctx, (epode_log_level_t)max_level, self->log ? on_log : NULL,
                      self->log ? self : NULL);
    Py_RETURN_NONE;
}

PyDoc_STRVAR(set_driver_doc,
"set_driver(driver)\n--\n\n"
"Hands the context to `driver` (an object with watch(fd, events) and\n"
"timer(ms) methods), or to run() when None. The fds epode watches and\n"
"its deadline are replayed to the new driver at once.");

static PyObject *Context_set_driver(ContextObject *self, PyObject *driver)
{
    if (self->running && driver != Py_None) {
        PyErr_SetString(PyExc_RuntimeError, "the context is inside run()");
        return NULL;
    }
    Py_XSETREF(self->driver, driver == Py_None ? NULL : Py_NewRef(driver));
    if (!self->driver)
        Py_RETURN_NONE;
    /* Copy first: a driver method may make epode change the table. */
    size_t n = self->nfds;
    pyepode_fdent *copy = PyMem_RawMalloc((n ? n : 1) * sizeof *copy);
    if (!copy)
        return PyErr_NoMemory();
    memcpy(copy, self->fds, n * sizeof *copy);
    PyObject *drv = Py_NewRef(self->driver);
    PyObject *r = NULL;
    for (size_t i = 0; i < n; i++) {
        r = PyObject_CallMethod(drv, "watch", "iI", copy[i].fd, copy[i].events);
        if (!r)
            break;
        Py_DECREF(r);
    }
    PyMem_RawFree(copy);
    if (n == 0 || r) {
        long ms = self->due_ms < 0 ? -1 : (long)(self->due_ms > now_ms() ? self->due_ms - now_ms() : 0);
        r = PyObject_CallMethod(drv, "timer", "l", ms);
        Py_XDECREF(r);
    }
    Py_DECREF(drv);
    if (!r) {
        /* A driver that could not take the table does not drive. */
        Py_CLEAR(self->driver);
        return NULL;
    }
    Py_RETURN_NONE;
}

int pyepode_keep_fatal(ContextObject *ctx)
{
    if (!PyErr_ExceptionMatches(PyExc_KeyboardInterrupt) &&
        !PyErr_ExceptionMatches(PyExc_SystemExit))
        return 0;
    if (ctx->exc_type) {
        /* One is already waiting: the first wins. */
        PyErr_Clear();
        return 1;
    }
    PyErr_Fetch(&ctx->exc_type, &ctx->exc_value, &ctx->exc_tb);
    ctx->stop = 1;
    return 1;
}

int pyepode_raise_kept(ContextObject *ctx)
{
    pyepode_flush_deferred(ctx);
    if (ctx->depth == 0 && ctx->exc_type && !ctx->running) {
        PyErr_Restore(ctx->exc_type, ctx->exc_value, ctx->exc_tb);
        ctx->exc_type = ctx->exc_value = ctx->exc_tb = NULL;
        ctx->stop = 0;
        return -1;
    }
    return 0;
}

/* After epode returned: drops deferred objects, raises a kept exception. */
static int after_epode(ContextObject *self)
{
    pyepode_flush_deferred(self);
    if (self->depth == 0 && self->exc_type) {
        PyErr_Restore(self->exc_type, self->exc_value, self->exc_tb);
        self->exc_type = self->exc_value = self->exc_tb = NULL;
        return -1;
    }
    return 0;
}

PyDoc_STRVAR(process_doc,
"process(fd, events)\n--\n\n"
"The loop says `fd` is ready for `events` (READ|WRITE), or with fd -1\n"
"that epode's deadline passed. Runs what is due; returns how many\n"
"callbacks ran.");

static PyObject *Context_process(ContextObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "process(fd, events) takes 2 arguments");
        return NULL;
    }
    long fd = PyLong_AsLong(args[0]);
    unsigned events = (unsigned)PyLong_AsUnsignedLongMask(args[1]);
    if (PyErr_Occurred())
        return NULL;
    if (fd < -1 || fd > INT_MAX) {
        PyErr_SetString(PyExc_ValueError, "fd out of range");
        return NULL;
    }
    Py_INCREF(self);
    self->depth++;
    int rc = epode_ctx_process(self->ctx, (int)fd, events);
    self->depth--;
    int failed = after_epode(self);
    Py_DECREF(self);
    if (failed)
        return NULL;
    if (rc < 0)
        return pyepode_raise(rc, "process");
    return PyLong_FromLong(rc);
}

static unsigned poll_to_epode(short revents, unsigned wanted)
{
    unsigned ev = 0;
    if (revents & (POLLIN | POLLPRI))
        ev |= EPODE_EV_READ;
    if (revents & POLLOUT)
        ev |= EPODE_EV_WRITE;
    if (revents & (POLLERR | POLLHUP | POLLNVAL))
        ev |= wanted; /* let epode read the error or the end */
    return ev;
}

PyDoc_STRVAR(run_doc,
"run(timeout=None)\n--\n\n"
"Drives the context with poll(2) until stop() is called or `timeout`\n"
"seconds have passed (None: no limit). The GIL is released while it\n"
"waits. A KeyboardInterrupt or SystemExit, from a signal or a handler,\n"
"ends it and propagates. Returns True if stopped, False on timeout.");

static PyObject *Context_run(ContextObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"timeout", NULL};
    PyObject *timeout_obj = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|O:run", kwlist, &timeout_obj))
        return NULL;
    long long end = -1;
    if (timeout_obj != Py_None) {
        double t = PyFloat_AsDouble(timeout_obj);
        if (t == -1.0 && PyErr_Occurred())
            return NULL;
        if (!isfinite(t) || t < 0 || t > 1e9) {
            PyErr_SetString(PyExc_ValueError, "timeout must be a finite number of seconds >= 0");
            return NULL;
        }
        end = now_ms() + (long long)(t * 1000.0 + 0.5);
    }
    if (self->driver) {
        PyErr_SetString(PyExc_RuntimeError,
                        "the context is driven by an event loop; use it (await), not run()");
        return NULL;
    }
    if (self->running || self->depth > 0) {
        PyErr_SetString(PyExc_RuntimeError, "run() called from inside the context's loop");
        return NULL;
    }
    Py_INCREF(self);
    self->running = 1;
    self->stop = 0;
    struct pollfd *pfd = NULL;
    size_t pcap = 0;
    PyObject *result = NULL;
    for (;;) {
        if (self->stop) {
            result = Py_NewRef(Py_True);
            break;
        }
        long long now = now_ms();
        if (end >= 0 && now >= end) {
            result = Py_NewRef(Py_False);
            break;
        }
        long long wait = -1;
        if (self->due_ms >= 0)
            wait = self->due_ms > now ? self->due_ms - now : 0;
        if (end >= 0 && (wait < 0 || wait > end - now))
            wait = end - now;
        if (wait > INT32_MAX)
            wait = INT32_MAX;
        size_t n = self->nfds;
        if (n > pcap) {
            struct pollfd *np = PyMem_RawRealloc(pfd, n * sizeof *np);
            if (!np) {
                PyErr_NoMemory();
                break;
            }
            pfd = np;
            pcap = n;
        }
        for (size_t i = 0; i < n; i++) {
            pfd[i].fd = self->fds[i].fd;
            pfd[i].events = (short)(((self->fds[i].events & EPODE_EV_READ) ? POLLIN : 0) |
                                    ((self->fds[i].events & EPODE_EV_WRITE) ? POLLOUT : 0));
            pfd[i].revents = 0;
        }
        int ready, err = 0;
        Py_BEGIN_ALLOW_THREADS
        ready = poll(pfd, n, (int)wait);
        if (ready < 0)
            err = errno;
        Py_END_ALLOW_THREADS
        if (ready < 0) {
            if (err == EINTR) {
                if (PyErr_CheckSignals() < 0)
                    break;
                continue;
            }
            errno = err;
            PyErr_SetFromErrno(PyExc_OSError);
            break;
        }
        int rc = 0;
        self->depth++;
        for (size_t i = 0; i < n && ready > 0 && rc >= 0; i++) {
            if (!pfd[i].revents)
                continue;
            ready--;
            /* Still wanted? An earlier callback of this turn may have
             * dropped the fd. */
            unsigned wanted = 0;
            for (size_t j = 0; j < self->nfds; j++)
                if (self->fds[j].fd == pfd[i].fd)
                    wanted = self->fds[j].events;
            unsigned ev = poll_to_epode(pfd[i].revents, wanted) & wanted;
            if (ev)
                rc = epode_ctx_process(self->ctx, pfd[i].fd, ev);
        }
        if (rc >= 0 && self->due_ms >= 0 && now_ms() >= self->due_ms)
            rc = epode_ctx_process(self->ctx, -1, 0);
        self->depth--;
        if (after_epode(self) < 0)
            break;
        if (rc < 0) {
            pyepode_raise(rc, "run");
            break;
        }
        if (PyErr_CheckSignals() < 0)
            break;
    }
    PyMem_RawFree(pfd);
    self->running = 0;
    self->stop = 0;
    Py_DECREF(self);
    return result;
}

static PyObject *Context_stop(ContextObject *self, PyObject *unused)
{
    (void)unused;
    self->stop = 1;
    /* From a handler the loop sees the flag at once; from another thread
     * (under the GIL) the wait must be interrupted. */
    epode_ctx_wakeup(self->ctx);
    Py_RETURN_NONE;
}

static PyObject *Context_wakeup(ContextObject *self, PyObject *unused)
{
    (void)unused;
    int rc = epode_ctx_wakeup(self->ctx);
    if (rc < 0)
        return pyepode_raise(rc, "wakeup");
    Py_RETURN_NONE;
}

static PyObject *Context_watched(ContextObject *self, PyObject *unused)
{
    (void)unused;
    PyObject *d = PyDict_New();
    for (size_t i = 0; d && i < self->nfds; i++) {
        PyObject *k = PyLong_FromLong(self->fds[i].fd);
        PyObject *v = PyLong_FromUnsignedLong(self->fds[i].events);
        if (!k || !v || PyDict_SetItem(d, k, v) < 0)
            Py_CLEAR(d);
        Py_XDECREF(k);
        Py_XDECREF(v);
    }
    return d;
}

static PyObject *Context_get_timeout(ContextObject *self, void *closure)
{
    (void)closure;
    long ms = epode_ctx_timeout(self->ctx);
    if (ms < 0)
        Py_RETURN_NONE;
    return PyFloat_FromDouble(ms / 1000.0);
}

static PyObject *Context_get_driver(ContextObject *self, void *closure)
{
    (void)closure;
    return Py_NewRef(self->driver ? self->driver : Py_None);
}

static PyObject *Context_get_running(ContextObject *self, void *closure)
{
    (void)closure;
    return PyBool_FromLong(self->running);
}

static PyMethodDef Context_methods[] = {
    {"set_driver", (PyCFunction)Context_set_driver, METH_O, set_driver_doc},
    {"set_log", (PyCFunction)(void (*)(void))Context_set_log, METH_VARARGS | METH_KEYWORDS,
     set_log_doc},
    {"process", (PyCFunction)(void (*)(void))Context_process, METH_FASTCALL, process_doc},
    {"run", (PyCFunction)(void (*)(void))Context_run, METH_VARARGS | METH_KEYWORDS, run_doc},
    {"stop", (PyCFunction)Context_stop, METH_NOARGS,
     "stop()\n--\n\nMakes run() return after the current callback (callable from\n"
     "another thread: it wakes the wait)."},
    {"wakeup", (PyCFunction)Context_wakeup, METH_NOARGS,
     "wakeup()\n--\n\nWakes the loop; the one method callable from another thread."},
    {"watched", (PyCFunction)Context_watched, METH_NOARGS,
     "watched()\n--\n\nA dict fd -> events of what epode wants watched now."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Context_getset[] = {
    {"timeout", (getter)Context_get_timeout, NULL,
     "Seconds until epode's next deadline, or None.", NULL},
    {"driver", (getter)Context_get_driver, NULL, "The current driver, or None.", NULL},
    {"running", (getter)Context_get_running, NULL, "True inside run().", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

PyTypeObject ContextType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "epode._epode.Context",
    .tp_basicsize = sizeof(ContextObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "Context()\n--\n\nAn epode context: connections made from it share its DNS\n"
              "resolver, TLS credentials and loop. It belongs to one thread.",
    .tp_new = Context_new,
    .tp_dealloc = (destructor)Context_dealloc,
    .tp_traverse = (traverseproc)Context_traverse,
    .tp_clear = (inquiry)Context_clear,
    .tp_methods = Context_methods,
    .tp_getset = Context_getset,
    .tp_weaklistoffset = offsetof(ContextObject, weakrefs),
};

/* ---- the module ------------------------------------------------------- */

static PyObject *mod_strerror(PyObject *m, PyObject *arg)
{
    (void)m;
    long code = PyLong_AsLong(arg);
    if (code == -1 && PyErr_Occurred())
        return NULL;
    return PyUnicode_FromString(epode_strerror((int)code));
}

static PyMethodDef module_methods[] = {
    {"strerror", mod_strerror, METH_O, "strerror(code)\n--\n\nepode's text for an error code."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "epode._epode",
    .m_doc = "The C core of the epode Python binding (use the `epode` package).",
    .m_size = -1,
    .m_methods = module_methods,
};

static int add_error_codes(PyObject *m)
{
    PyObject *codes = PyDict_New();
    if (!codes)
        return -1;
#define ADD_CODE(name, code, text)                                             \
    do {                                                                       \
        PyObject *v = PyLong_FromLong(code);                                   \
        if (!v || PyDict_SetItemString(codes, "E" #name, v) < 0 ||             \
            PyModule_AddObjectRef(m, "E" #name, v) < 0) {                      \
            Py_XDECREF(v);                                                     \
            Py_DECREF(codes);                                                  \
            return -1;                                                         \
        }                                                                      \
        Py_DECREF(v);                                                          \
    } while (0);
    EPODE_ERRORS(ADD_CODE)
#undef ADD_CODE
    int rc = PyModule_AddObjectRef(m, "error_codes", codes);
    Py_DECREF(codes);
    return rc;
}

PyMODINIT_FUNC PyInit__epode(void)
{
    str_watch = PyUnicode_InternFromString("watch");
    str_timer = PyUnicode_InternFromString("timer");
    if (!str_watch || !str_timer)
        return NULL;
    if (PyType_Ready(&ContextType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module_def);
    if (!m)
        return NULL;
    pyepode_Error = PyErr_NewExceptionWithDoc(
        "epode.Error",
        "An epode failure. Attributes: code (the negative EPODE_E... number),\n"
        "name ('EAUTH', ...), condition (the RFC 6120 condition, if any) and\n"
        "text (the peer's explanation, if any).",
        NULL, NULL);
    if (!pyepode_Error)
        goto fail;
    pyepode_StanzaError = PyErr_NewExceptionWithDoc(
        "epode.StanzaError",
        "An error stanza in answer to a request: condition ('item-not-found',\n"
        "...), type ('cancel', ...), text, and stanza (the whole answer).",
        pyepode_Error, NULL);
    PyObject *bases = PyTuple_Pack(2, pyepode_Error, PyExc_TimeoutError);
    if (bases) {
        pyepode_TimeoutError = PyErr_NewExceptionWithDoc(
            "epode.TimeoutError", "No answer in time (also a builtin TimeoutError).", bases, NULL);
        Py_DECREF(bases);
    }
    if (!pyepode_StanzaError || !pyepode_TimeoutError)
        goto fail;
    if (PyModule_AddObjectRef(m, "Error", pyepode_Error) < 0 ||
        PyModule_AddObjectRef(m, "StanzaError", pyepode_StanzaError) < 0 ||
        PyModule_AddObjectRef(m, "TimeoutError", pyepode_TimeoutError) < 0 ||
        PyModule_AddObjectRef(m, "Context", (PyObject *)&ContextType) < 0 ||
        PyModule_AddIntConstant(m, "LOG_ERROR", EPODE_LOG_ERROR) < 0 ||
        PyModule_AddIntConstant(m, "LOG_WARN", EPODE_LOG_WARN) < 0 ||
        PyModule_AddIntConstant(m, "LOG_INFO", EPODE_LOG_INFO) < 0 ||
        PyModule_AddIntConstant(m, "LOG_DEBUG", EPODE_LOG_DEBUG) < 0 ||
        PyModule_AddIntConstant(m, "LOG_XML", EPODE_LOG_XML) < 0 ||
        PyModule_AddIntConstant(m, "READ", EPODE_EV_READ) < 0 ||
        PyModule_AddIntConstant(m, "WRITE", EPODE_EV_WRITE) < 0 ||
        PyModule_AddStringConstant(m, "epode_version", epode_version()) < 0 ||
        add_error_codes(m) < 0)
        goto fail;
    if (pyepode_stanza_init_types(m) < 0 || pyepode_conn_init_types(m) < 0 ||
        pyepode_im_init_types(m) < 0 || pyepode_modern_init(m) < 0 ||
        pyepode_register_init(m) < 0)
        goto fail;
    if (pyepode_commands_init(m) < 0)
        goto fail;
    if (pyepode_upload_init(m) < 0)
        goto fail;
    if (pyepode_fast_init(m) < 0)
        goto fail;
    if (pyepode_pep_init(m) < 0)
        goto fail;
    return m;
fail:
    Py_DECREF(m);
    return NULL;
}
