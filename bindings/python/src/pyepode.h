/* pyepode.h — what the parts of the Python extension module `epode._epode`
 * share: the object layouts, the exception types and small helpers.
 *
 * Threading: every epode call is made with the GIL held, except the wait
 * in Context.run() (poll(2) with the GIL released). A context and its
 * connections belong to the thread that made them, as in C.
 */
#ifndef PYEPODE_H
#define PYEPODE_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <epode.h>

/* ---- errors ---------------------------------------------------------- */

extern PyObject *pyepode_Error;        /* epode.Error(Exception) */
extern PyObject *pyepode_StanzaError;  /* epode.StanzaError(Error) */
extern PyObject *pyepode_TimeoutError; /* epode.TimeoutError(Error, TimeoutError) */

/* Raises epode.Error (TimeoutError for EPODE_ETIMEDOUT) for the negative
 * code `rc`, prefixed with `where`. Always returns NULL. */
PyObject *pyepode_raise(int rc, const char *where);
/* Builds (does not raise) an exception instance of `type` with the
 * attributes code, name, condition, text (NULL: None). New reference,
 * NULL with an exception set on failure. */
PyObject *pyepode_make_error(PyObject *type, int code, const char *message,
                             const char *condition, const char *text);
/* Reports the current exception as raised by an application callback
 * `cb_owner` (a Connection: its error hook, else sys.unraisablehook).
 * Clears it. */
void pyepode_report(PyObject *cb_owner, const char *where);

/* ---- Context --------------------------------------------------------- */

typedef struct pyepode_fdent {
    int fd;
    unsigned events;
} pyepode_fdent;

typedef struct {
    PyObject_HEAD
    epode_ctx_t *ctx;
    PyObject *driver;        /* watch(fd, events)/timer(ms) target, or NULL: native */
    pyepode_fdent *fds;      /* what epode wants watched */
    size_t nfds, capfds;
    long long due_ms;        /* monotonic ms of the next deadline, -1: none */
    long timer_ms;           /* the last value announced, -1: none */
    int stop;                /* ask run() to return */
    int running;             /* inside run() */
    int depth;               /* inside process()/run() */
    PyObject *deferred;      /* objects to drop once epode is out of the way */
    epode_conn_t **dead;     /* connections to free once out of epode */
    size_t ndead, capdead;
    PyObject *exc_type, *exc_value, *exc_tb; /* a BaseException (KeyboardInterrupt,
                                                SystemExit) from a callback, raised
                                                again once out of epode */
    PyObject *weakrefs;
    PyObject *log;           /* log(level, area, msg) for epode's log lines, or NULL */
} ContextObject;

extern PyTypeObject ContextType;

/* Keeps `obj` (stolen reference) until the context is back outside
 * epode, then drops it: releasing the last reference to a connection
 * from inside one of its own callbacks would free it under epode. */
int pyepode_defer_decref(ContextObject *ctx, PyObject *obj);
/* Frees `conn` now, or once the context is out of epode. */
void pyepode_free_conn(ContextObject *ctx, epode_conn_t *conn);
/* Drops what was deferred if the context is not inside epode. */
void pyepode_flush_deferred(ContextObject *ctx);
/* Called with an exception set inside a callback: a KeyboardInterrupt or
 * SystemExit is kept to be raised when process()/run() return (and stops
 * run()); returns 1 then, 0 (exception untouched) for ordinary ones. */
int pyepode_keep_fatal(ContextObject *ctx);
/* After an epode call made outside process()/run() (send, close, ...):
 * raises a KeyboardInterrupt/SystemExit a callback raised meanwhile.
 * Returns -1 with it set, else 0. */
int pyepode_raise_kept(ContextObject *ctx);

/* ---- stanzas --------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    epode_stanza_t *el;  /* an element of a tree we hold one reference on */
    PyObject *weakrefs;
} StanzaObject;

extern PyTypeObject StanzaType, MessageType, PresenceType, IqType;

/* Wraps `el` (borrowed; takes a reference on its tree) in the type that
 * fits its name when `by_name` (Message, Presence, Iq), else Stanza. */
PyObject *pyepode_stanza_wrap(epode_stanza_t *el, int by_name);
/* Wraps a tree the caller owns (one reference, stolen even on failure). */
PyObject *pyepode_stanza_adopt(epode_stanza_t *root, int by_name);
/* The element of a Stanza, or a stanza parsed from str/bytes XML into
 * *owned (which the caller unrefs). NULL with TypeError/Error otherwise. */
epode_stanza_t *pyepode_stanza_arg(PyObject *obj, epode_stanza_t **owned);
int pyepode_stanza_init_types(PyObject *module);

/* ---- connections ----------------------------------------------------- */

struct pyepode_hent;

typedef struct {
    PyObject_HEAD
    ContextObject *context;
    epode_conn_t *conn;
    PyObject *on_error;      /* callable(exception) or NULL */
    PyObject *on_ack;        /* callable(acked, id, xml) or NULL */
    struct pyepode_hent *hents; /* handlers, listeners and IQ waits we registered */
    PyObject *spawn;         /* callable(coroutine) for async handlers, or NULL */
    int pinned;              /* holds a reference on itself while connected */
    int reconnect;           /* automatic reconnection is on */
    int sm_resend;           /* the stream-management policy set (0: defaults) */
    unsigned sm_wait_ms, sm_dead_ms;
    int closing;             /* close() started; DISCONNECTED will follow */
    unsigned gen;            /* bumped by connect(): tells a restart from a stale end */
    unsigned connect_ms, login_ms; /* the timeouts set (epode's defaults at first) */
    PyObject *fast_store;    /* FAST token store (fast.c), or NULL */
    PyObject *fast_loaded;   /* what its load() last gave (epode copies from it) */
    PyObject *weakrefs;
} ConnectionObject;

extern PyTypeObject ConnectionType;
int pyepode_conn_init_types(PyObject *module);
/* The IM helpers (im.c): Roster, PresenceTracker, Disco, Caps, Muc. */
int pyepode_im_init_types(PyObject *module);
/* The modern IM layer (modern.c): message features on epode.Message, and
 * Blocking, Mam, Csi. After pyepode_stanza_init_types(). */
int pyepode_modern_init(PyObject *module);
/* In-band registration (register.c): Register. */
int pyepode_register_init(PyObject *module);
/* Ad-hoc commands (commands.c): Commands, CommandSession. */
int pyepode_commands_init(PyObject *module);
/* HTTP File Upload (upload.c): Upload, upload_send_url, oob_url. */
int pyepode_upload_init(PyObject *module);
/* conn_set_fast, conn_set_sasl2, conn_set_user_agent, conn_user_agent_id (fast.c) */
int pyepode_fast_init(PyObject *module);
/* PubSub/PEP, bookmarks, avatars, nicknames (pep.c): _epode.Pep. */
int pyepode_pep_init(PyObject *module);
/* The C disco helper of an _epode.Disco (im.c); NULL with TypeError for
 * anything else, RuntimeError once its connection is gone. Borrowed. */
epode_disco_t *pyepode_disco_of(PyObject *obj);
/* The C MUC helper of an _epode.Muc (im.c); NULL with TypeError for
 * anything else, RuntimeError once it is gone. Borrowed. */
epode_muc_t *pyepode_muc_of(PyObject *obj);

/* Calls `cb(*args)` for epode, reporting (not propagating) an exception
 * to `owner`; a returned coroutine is handed to owner's spawn hook.
 * Returns the result (new reference) or NULL after reporting. */
PyObject *pyepode_call(ConnectionObject *owner, PyObject *cb, PyObject *const *args,
                       size_t nargs, const char *where);

/* String helpers: a C string from str (UTF-8, no NUL inside) or None. */
int pyepode_opt_str(PyObject *obj, const char **out, const char *what);
PyObject *pyepode_str_or_none(const char *s);

#endif
