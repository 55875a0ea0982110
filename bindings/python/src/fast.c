/* bindings/python/src/fast.c — SASL2's user agent and FAST token stores
 * (XEP-0388, XEP-0484) for Python connections: module functions
 * conn_set_sasl2, conn_set_user_agent, conn_user_agent_id and
 * conn_set_fast, which epode.Client wraps. A store is any object with
 * load(jid) -> mapping or None and store(jid, mapping or None); the
 * connection keeps it alive, and a dict of its own with the values the
 * last load() gave (epode reads and copies their UTF-8 after the lookups:
 * a Mapping may build a value at each access and drop it at once). Python strings cannot be wiped: a token handed to
 * Python lives as long as Python keeps it (said in the stub). */
#include "pyepode.h"

static ConnectionObject *conn_arg(PyObject *o)
{
    if (!PyObject_TypeCheck(o, &ConnectionType)) {
        PyErr_SetString(PyExc_TypeError, "expected an epode Connection");
        return NULL;
    }
    ConnectionObject *c = (ConnectionObject *)o;
    if (!c->conn) {
        PyErr_SetString(PyExc_ValueError, "the connection is closed");
        return NULL;
    }
    return c;
}

/* The token's four values out of any mapping, into a new dict that
 * holds them (missing keys left out); NULL with an exception. */
static PyObject *token_values(PyObject *map)
{
    static const char *const keys[] = {"jid", "mechanism", "token", "expiry"};
    PyObject *d = PyDict_New();
    for (size_t i = 0; d && i < sizeof keys / sizeof *keys; i++) {
        PyObject *v = PyMapping_GetItemString(map, keys[i]);
        if (!v) {
            if (!PyErr_ExceptionMatches(PyExc_KeyError)) {
                Py_CLEAR(d);
                break;
            }
            PyErr_Clear();
            continue;
        }
        if (PyDict_SetItemString(d, keys[i], v) < 0)
            Py_CLEAR(d);
        Py_DECREF(v);
    }
    return d;
}

/* A str value of `d` (from token_values, which keeps it alive), or NULL
 * (None, missing); -1 on a wrong type. */
static int get_str(PyObject *d, const char *key, const char **out)
{
    *out = NULL;
    PyObject *v = PyDict_GetItemString(d, key); /* borrowed: d holds it */
    if (!v || v == Py_None)
        return 0;
    if (!PyUnicode_Check(v)) {
        PyErr_Format(PyExc_TypeError, "FAST token %s must be a str", key);
        return -1;
    }
    return (*out = PyUnicode_AsUTF8(v)) ? 0 : -1;
}

static int on_load(epode_conn_t *conn, const char *jid, epode_fast_token_t *out, void *user)
{
    (void)conn;
    ConnectionObject *self = user;
    if (!self->fast_store)
        return 0;
    PyObject *meth = PyObject_GetAttrString(self->fast_store, "load");
    PyObject *arg = meth ? PyUnicode_FromString(jid) : NULL;
    PyObject *r = arg ? pyepode_call(self, meth, &arg, 1, "fast_token_store.load") : NULL;
    if (!meth || !arg)
        pyepode_report((PyObject *)self, "fast_token_store.load");
    Py_XDECREF(meth);
    Py_XDECREF(arg);
    if (!r)
        return -1;
    if (r == Py_None) {
        Py_DECREF(r);
        Py_CLEAR(self->fast_loaded);
        return 0;
    }
    PyObject *d = PyMapping_Check(r) ? token_values(r) : NULL;
    Py_DECREF(r);
    Py_XSETREF(self->fast_loaded, d); /* holds the values until the next load */
    if (!d || get_str(d, "jid", &out->jid) < 0 || get_str(d, "mechanism", &out->mechanism) < 0 ||
        get_str(d, "token", &out->token) < 0 || get_str(d, "expiry", &out->expiry) < 0) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_TypeError, "fast_token_store.load() must return a mapping or None");
        pyepode_report((PyObject *)self, "fast_token_store.load");
        return -1;
    }
    return out->token ? 1 : 0;
}

static void on_store(epode_conn_t *conn, const epode_fast_token_t *t, void *user)
{
    (void)conn;
    ConnectionObject *self = user;
    if (!self->fast_store)
        return;
    PyObject *tok = Py_None, *args[2] = {NULL, NULL};
    if (t->token) {
        tok = Py_BuildValue("{s:s,s:s,s:s,s:z}", "jid", t->jid, "mechanism", t->mechanism, "token",
                            t->token, "expiry", t->expiry);
    } else {
        Py_INCREF(tok);
    }
    PyObject *meth = tok ? PyObject_GetAttrString(self->fast_store, "store") : NULL;
    args[0] = meth ? PyUnicode_FromString(t->jid) : NULL;
    args[1] = tok;
    PyObject *r = args[0] ? pyepode_call(self, meth, args, 2, "fast_token_store.store") : NULL;
    if (!tok || !meth || !args[0])
        pyepode_report((PyObject *)self, "fast_token_store.store");
    Py_XDECREF(r);
    Py_XDECREF(meth);
    Py_XDECREF(args[0]);
    Py_XDECREF(tok);
}

static PyObject *mod_conn_set_fast(PyObject *mod, PyObject *args)
{
    (void)mod;
    PyObject *co, *store;
    int enable = 1;
    if (!PyArg_ParseTuple(args, "OO|p:conn_set_fast", &co, &store, &enable))
        return NULL;
    ConnectionObject *c = conn_arg(co);
    if (!c)
        return NULL;
    if (store != Py_None && (!PyObject_HasAttrString(store, "load") ||
                             !PyObject_HasAttrString(store, "store"))) {
        PyErr_SetString(PyExc_TypeError, "a FAST token store needs load(jid) and store(jid, token)");
        return NULL;
    }
    int rc = store == Py_None ? epode_conn_set_fast(c->conn, enable, NULL, NULL, NULL)
                              : epode_conn_set_fast(c->conn, enable, on_load, on_store, c);
    if (rc < 0)
        return pyepode_raise(rc, "fast");
    Py_XSETREF(c->fast_store, store == Py_None ? NULL : Py_NewRef(store));
    Py_CLEAR(c->fast_loaded);
    Py_RETURN_NONE;
}

static PyObject *mod_conn_set_sasl2(PyObject *mod, PyObject *args)
{
    (void)mod;
    PyObject *co;
    int enable;
    if (!PyArg_ParseTuple(args, "Op:conn_set_sasl2", &co, &enable))
        return NULL;
    ConnectionObject *c = conn_arg(co);
    if (!c)
        return NULL;
    int rc = epode_conn_set_sasl2(c->conn, enable);
    return rc < 0 ? pyepode_raise(rc, "sasl2") : Py_NewRef(Py_None);
}

static PyObject *mod_conn_set_user_agent(PyObject *mod, PyObject *args)
{
    (void)mod;
    PyObject *co;
    const char *id, *software = NULL, *device = NULL;
    if (!PyArg_ParseTuple(args, "Oz|zz:conn_set_user_agent", &co, &id, &software, &device))
        return NULL;
    ConnectionObject *c = conn_arg(co);
    if (!c)
        return NULL;
    int rc = epode_conn_set_user_agent(c->conn, id, software, device);
    return rc < 0 ? pyepode_raise(rc, "user_agent") : Py_NewRef(Py_None);
}

static PyObject *mod_conn_user_agent_id(PyObject *mod, PyObject *co)
{
    (void)mod;
    ConnectionObject *c = conn_arg(co);
    if (!c)
        return NULL;
    const char *id = epode_conn_get_user_agent_id(c->conn);
    return id ? PyUnicode_FromString(id) : PyErr_NoMemory();
}

static PyMethodDef fast_functions[] = {
    {"conn_set_fast", mod_conn_set_fast, METH_VARARGS,
     "conn_set_fast(conn, store, enable=True): FAST tokens (XEP-0484) kept by store"},
    {"conn_set_sasl2", mod_conn_set_sasl2, METH_VARARGS,
     "conn_set_sasl2(conn, enable): SASL2 (XEP-0388) when offered"},
    {"conn_set_user_agent", mod_conn_set_user_agent, METH_VARARGS,
     "conn_set_user_agent(conn, id, software=None, device=None)"},
    {"conn_user_agent_id", mod_conn_user_agent_id, METH_O,
     "conn_user_agent_id(conn) -> str: the SASL2 user-agent id (made if none)"},
    {NULL, NULL, 0, NULL},
};

int pyepode_fast_init(PyObject *module)
{
    return PyModule_AddFunctions(module, fast_functions);
}
