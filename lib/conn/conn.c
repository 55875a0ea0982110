/* lib/conn/conn.c — the public connection: options, and the wiring of
 * resolver → connect → transport (tcp, then tls) → stream engine →
 * dispatch, driven by the context's loop. Everything the application sees
 * (events, handlers) runs from loop callbacks, never inside the call that
 * caused it. */
#include "conn_int.h"
#include "transport/bosh.h" /* its URL (the layer itself is built only with curl) */
#include "transport/websocket.h"

#include <ctype.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "epode/jid.h"
#include "auth/fast.h"
#include "util/alloc.h"
#include "util/footprint.h"
#include "util/utf8.h"
#include "util/rand.h"
#include "util/secret.h"

#define READ_CHUNK 16384
#define READ_BUDGET (256 * 1024) /* per turn, so one busy link can't starve others */
#define CLOSE_WAIT_MS 5000
#define IDLE_MS 1000 /* silence after which a link gives back its parser memory */
#define DEFAULT_DRAIN_LOW ((size_t)64 * 1024)
#define DEFAULT_MAX_UNACKED ((size_t)100000)
#define DEFAULT_MAX_PENDING ((size_t)16 * 1024 * 1024)

static void teardown(epode_conn_t *c);
static void on_login_timeout(void *user);
static void schedule_reconnect(epode_conn_t *c);
static int fast_retry(epode_conn_t *c);
static void sm_inline_timeout(epode_conn_t *c);
static void modern_free(epode_conn_t *c);

/* ---- small helpers ------------------------------------------------------------- */

/* ---- entry points ----------------------------------------------------------------
 * Every call from the loop (io, timers, resolver, connect) enters through
 * a guard that counts how deep we are. epode_conn_free() from inside one
 * of them (an application callback or handler freeing its connection)
 * only marks the connection; it is freed when the outermost entry
 * returns, so the code below the callback never touches freed memory. */

static void really_free(epode_conn_t *c);

static void enter(epode_conn_t *c) { c->depth++; }

static void leave(epode_conn_t *c)
{
    if (--c->depth == 0 && c->free_pending)
        really_free(c);
}

static void pump_body(epode_conn_t *c);
static void pump(epode_conn_t *c)
{
    enter(c);
    pump_body(c);
    leave(c);
}

#define GUARDED(name)                                                                              \
    static void name##_body(void *user);                                                           \
    static void name(void *user)                                                                   \
    {                                                                                              \
        epode_conn_t *c = user;                                                                    \
        enter(c);                                                                                  \
        name##_body(user);                                                                         \
        leave(c);                                                                                  \
    }
GUARDED(on_login_timeout)
GUARDED(on_redirect)
GUARDED(on_reconnect)
GUARDED(on_keepalive)
GUARDED(on_idle)
GUARDED(on_sm_timer)
GUARDED(on_dispatch_timer)
GUARDED(on_closed)
GUARDED(on_close_timeout)

static void on_io_body(void *user, unsigned revents);
void epode__conn_on_io(void *user, unsigned revents)
{
    epode_conn_t *c = user;
    enter(c);
    on_io_body(user, revents);
    leave(c);
}

/* The link's steps (link.c), each entered through the same guard. */
void epode__conn_on_connected(void *user, int status, int fd, const char *why)
{
    epode_conn_t *c = user;
    enter(c);
    epode__link_connected(c, status, fd, why);
    leave(c);
}

void epode__conn_on_targets(void *user, int status, const epode__target *t, size_t n)
{
    epode_conn_t *c = user;
    enter(c);
    epode__link_targets(c, status, t, n);
    leave(c);
}

#ifdef EPODE_HAVE_CURL
void epode__conn_on_discovered(void *user, int status, const char *ws, const char *bosh,
                               const char *text)
{
    epode_conn_t *c = user;
    enter(c);
    epode__discover_done(c, status, ws, bosh, text);
    leave(c);
}
#endif

static void on_start(void *user)
{
    epode_conn_t *c = user;
    enter(c);
    epode__link_start(c);
    leave(c);
}

static int set_str(epode_conn_t *c, char **field, const char *value)
{
    char *v = NULL;
    if (value && !(v = epode__strdup(c->ctx->mem, value)))
        return EPODE_ENOMEM;
    epode__dealloc(c->ctx->mem, *field);
    *field = v;
    return 0;
}

static void wipe(char *s)
{
    if (s)
        explicit_bzero(s, strlen(s)); /* not optimized away, unlike memset */
}

static void emit(epode_conn_t *c, epode_conn_event_t ev)
{
    if (c->free_pending)
        return; /* freed by the application: nobody is listening */
    /* Listeners added while this event is delivered (a helper made at
     * READY) see the state as it is: they are not told this event too. */
    unsigned mark = epode__dispatch_mark(c->dispatch);
    epode__dispatch_event_before(c->dispatch, c, ev, mark);
}

/* Notes (outcome.c) are formatted here, where their formats are checked. */
static void note(epode_conn_t *c, char **slot, size_t max, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void note(epode_conn_t *c, char **slot, size_t max, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    epode__conn_vnote(c, slot, max, fmt, ap);
    va_end(ap);
}

static void record(epode_conn_t *c, int err, epode_disconnect_reason_t reason, const char *cond,
                   const char *text)
{
    c->err = err;
    c->reason = reason;
    epode__conn_set_condition(c, cond);
    note(c, &c->text, NOTE_TEXT, "%s", text ? text : epode_strerror(err));
}

static void kick(epode_conn_t *c)
{
    epode__timer_start(&c->kick, 0, (epode__timer_cb)pump, c);
}

/* ---- options ---------------------------------------------------------------------- */

/* Every timer of a connection: each holds a slot in the loop's timer
 * heap from epode_conn_new to its free, so arming one never fails. */
#define CONN_TIMERS(c)                                                                             \
    {&(c)->kick, &(c)->login_timer, &(c)->keepalive_timer, &(c)->close_timer,                     \
     &(c)->dispatch_timer, &(c)->idle_timer, &(c)->sm_timer, &(c)->reconnect_timer,                \
     &(c)->stall_timer}

int epode_conn_new(epode_ctx_t *ctx, epode_conn_t **out)
{
    if (!ctx || !out)
        return EPODE_EINVAL;
    epode_conn_t *c = epode__zalloc(ctx->mem, sizeof *c);
    if (!c)
        return EPODE_ENOMEM;
    c->ctx = ctx;
    c->fd = -1;
    c->verify = 1;
    c->tls_max = 13;
    c->keepalive_s = 60;
    c->connect_ms = 10000;
    c->login_ms = 30000;
    if (epode__dispatch_new(ctx->mem, &c->dispatch) < 0) {
        epode__dealloc(ctx->mem, c);
        return EPODE_ENOMEM;
    }
    epode__timer *timers[] = CONN_TIMERS(c);
    int rc = 0;
    for (size_t i = 0; i < sizeof timers / sizeof timers[0] && rc == 0; i++)
        rc = epode__timer_init(ctx->loop, timers[i]);
    if (rc < 0) {
        for (size_t i = 0; i < sizeof timers / sizeof timers[0]; i++)
            epode__timer_deinit(timers[i]); /* no-op for those not made */
        epode__dispatch_free(c->dispatch);
        epode__dealloc(ctx->mem, c);
        return rc;
    }
    epode__sm_init(&c->sm_state, ctx->mem);
    c->sm_every = 5;
    c->sm_wait_ms = 1000;
    c->sm_dead_ms = 30000;
    c->drain_low = DEFAULT_DRAIN_LOW;
    c->max_unacked = DEFAULT_MAX_UNACKED;
    c->max_pending = DEFAULT_MAX_PENDING;
    ctx->conns++;
    *out = c;
    return 0;
}

static void release_link(epode_conn_t *c)
{
    if (c->query) {
        epode__query_cancel(c->query);
        c->query = NULL;
    }
#ifdef EPODE_HAVE_CURL
    epode__discover_cancel(c);
#endif
    if (c->fd >= 0) {
        epode__io_stop(&c->io);
        c->fd = -1;
    }
    epode__transport_free(c->tr);
    c->tr = NULL;
    epode__timer_stop(&c->kick);
    epode__timer_stop(&c->login_timer);
    epode__timer_stop(&c->keepalive_timer);
    epode__timer_stop(&c->close_timer);
    epode__timer_stop(&c->idle_timer);
    epode__timer_stop(&c->sm_timer);
    epode__timer_stop(&c->stall_timer);
    epode__engine_free(c->engine);
    c->engine = NULL;
    epode__dealloc(c->ctx->mem, c->targets);
    c->targets = NULL;
    c->ntargets = c->next_target = 0;
    if (c->creds) {
        epode__ctx_creds_put(c->ctx, c->creds);
        c->creds = NULL;
    }
    c->starttls_pending = 0;
    c->tls_verified = 0;
    c->state = C_IDLE;
}

void epode_conn_free(epode_conn_t *c)
{
    if (!c || c->free_pending)
        return;
    /* The IM helpers (and any other listener) let go of the connection
     * first, so freeing it before them is safe (they become inert). */
    c->free_pending = 1;
    epode__dispatch_event(c->dispatch, c, EPODE_CONN_FREED);
    c->user_closed = 1;
    c->ack_cb = NULL;
    c->cert_cb = NULL;
    epode__dispatch_silence(c->dispatch);
    if (c->depth > 0) {
        /* Inside one of its own callbacks: freed when that returns. */
        epode__ctx_log(c->ctx, EPODE_LOG_DEBUG, "conn",
                       "freed from inside its own callback: deferred until it returns");
        return;
    }
    really_free(c);
}

static void really_free(epode_conn_t *c)
{
    epode_ctx_t *ctx = c->ctx;
    const epode_mem_t *mem = ctx->mem;
    release_link(c);
    epode__timer *timers[] = CONN_TIMERS(c);
    for (size_t i = 0; i < sizeof timers / sizeof timers[0]; i++)
        epode__timer_deinit(timers[i]); /* stopped, their heap slots given back */
    epode__sm_free(&c->sm_state); /* freed with the connection, no events */
    epode__proxy_free(mem, c->proxy);
    epode__dealloc(mem, c->app);
    epode__conn_ws_free(c);
#ifdef EPODE_HAVE_CURL
    epode__discover_free(c);
#endif
    epode__conn_clear_notes(c, 1);
    epode_stanza_unref(c->last_presence);
    epode__dispatch_free(c->dispatch);
    wipe(c->password);
    modern_free(c);
    char **strs[] = {&c->jid, &c->localpart, &c->domain, &c->resource, &c->password, &c->host,
                     &c->ca_file, &c->cert_file, &c->key_file, &c->mechanisms, &c->redirect};
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++)
        epode__dealloc(mem, *strs[i]);
    ctx->conns--;
    epode__dealloc(mem, c);
}

static int idle_only(const epode_conn_t *c)
{
    return c && c->state == C_IDLE;
}

static void fast_forget(epode_conn_t *c);
static void give_back(void *user, const char *id, const char *bytes, size_t len);

/* Another account (bare JID) on this connection: nothing of the old one
 * goes to it — not its FAST token, not its resumable session (what that
 * never confirmed is given back), not a user-agent id made for it. */
static void account_changed(epode_conn_t *c)
{
    fast_forget(c);
    epode__sm_drain(&c->sm_state, give_back, c);
    epode__sm_forget(&c->sm_state);
    c->stuck_check = 0;
    c->resume_unproven = 0;
    struct conn_modern *m = c->modern;
    if (m && m->ua_id_made) {
        epode__dealloc(c->ctx->mem, m->ua_id);
        m->ua_id = NULL;
        m->ua_id_made = 0;
    }
#ifdef EPODE_HAVE_CURL
    /* a URL found in the old domain's host-meta is not the new one's:
     * the wish stays, the next connect looks again */
    if (c->discovery)
        epode__conn_ws_free(c);
#endif
}

int epode_conn_set_jid(epode_conn_t *c, const char *jid)
{
    if (!idle_only(c) || !jid)
        return c ? EPODE_ESTATE : EPODE_EINVAL;
    epode_jid_t *j;
    int rc = epode_jid_new(c->ctx->mem, jid, &j);
    if (rc < 0)
        return rc;
    if (c->jid && !epode_jid_str_equal(c->jid, epode_jid_full(j), 1))
        account_changed(c);
    if ((rc = set_str(c, &c->jid, epode_jid_full(j))) == 0 &&
        (rc = set_str(c, &c->localpart, epode_jid_local(j))) == 0 &&
        (rc = set_str(c, &c->domain, epode_jid_domain(j))) == 0)
        rc = set_str(c, &c->resource, epode_jid_resource(j));
    epode_jid_free(j);
    return rc;
}

int epode_conn_set_password(epode_conn_t *c, const char *password)
{
    if (!c)
        return EPODE_EINVAL;
    wipe(c->password);
    return set_str(c, &c->password, password);
}

int epode_conn_set_server(epode_conn_t *c, const char *host, unsigned port)
{
    if (!c || port > 65535)
        return EPODE_EINVAL;
    /* a name goes into a proxy's CONNECT request and into log lines: no
     * spaces or control characters (CR LF would add header lines) */
    for (const unsigned char *p = (const unsigned char *)host; p && *p; p++)
        if (*p <= ' ' || *p == 0x7f)
            return EPODE_EINVAL;
    c->port = port;
    return set_str(c, &c->host, host);
}

int epode_conn_set_tls(epode_conn_t *c, epode_tls_mode_t mode)
{
    if (!c || mode > EPODE_TLS_DISABLED)
        return EPODE_EINVAL;
    c->tls_mode = mode;
    return 0;
}

/* Files are read and parsed when they are set, so a wrong path is
 * refused where it is named instead of as "could not start TLS" later;
 * the log says which file and why. */
static int check_tls_files(epode_conn_t *c, const char *ca, const char *cert, const char *key)
{
    char why[300] = "";
    int rc = epode__tls_check_files(ca, cert, key, why, sizeof why);
    if (rc < 0)
        epode__ctx_log(c->ctx, EPODE_LOG_ERROR, "tls", "refused: %s",
                       why[0] ? why : epode_strerror(rc));
    return rc;
}

int epode_conn_set_ca_file(epode_conn_t *c, const char *path)
{
    if (!c)
        return EPODE_EINVAL;
    int rc = check_tls_files(c, path, NULL, NULL);
    return rc < 0 ? rc : set_str(c, &c->ca_file, path);
}

int epode_conn_set_client_cert(epode_conn_t *c, const char *cert_file, const char *key_file)
{
    if (!c || (!cert_file) != (!key_file))
        return EPODE_EINVAL;
    int rc = check_tls_files(c, NULL, cert_file, key_file);
    if (rc < 0)
        return rc;
    rc = set_str(c, &c->cert_file, cert_file);
    return rc < 0 ? rc : set_str(c, &c->key_file, key_file);
}

int epode_conn_set_tls_max_version(epode_conn_t *c, int version)
{
    if (!c || (version != 12 && version != 13))
        return EPODE_EINVAL;
    c->tls_max = version;
    return 0;
}

int epode_conn_set_tls_min_version(epode_conn_t *c, int version)
{
    if (!c || version < 10 || version > 13)
        return EPODE_EINVAL;
    c->tls_min = version;
    return 0;
}

int epode_conn_set_cert_cb(epode_conn_t *c, epode_cert_cb cb, void *user)
{
    if (!c)
        return EPODE_EINVAL;
    c->cert_cb = cb;
    c->cert_user = user;
    return 0;
}

int epode_conn_set_verify(epode_conn_t *c, int verify)
{
    if (!c)
        return EPODE_EINVAL;
    c->verify = verify != 0;
    return 0;
}

int epode_conn_set_mechanisms(epode_conn_t *c, const char *mechanisms)
{
    return c ? set_str(c, &c->mechanisms, mechanisms) : EPODE_EINVAL;
}

int epode_conn_set_keepalive(epode_conn_t *c, unsigned seconds)
{
    if (!c)
        return EPODE_EINVAL;
    c->keepalive_s = seconds;
    /* on a live session the new period starts now */
    if (c->engine && epode__engine_is_ready(c->engine)) {
        if (seconds)
            epode__timer_start(&c->keepalive_timer, seconds * 1000u, on_keepalive, c);
        else
            epode__timer_stop(&c->keepalive_timer);
    }
    return 0;
}

int epode_conn_set_limit(epode_conn_t *c, epode_parser_limit_t limit, size_t value)
{
    if (!c || (int)limit < 1 || (int)limit >= EPODE__NLIMITS)
        return EPODE_EINVAL;
    c->limits[limit] = value;
    return 0;
}

int epode_conn_set_scram_min_iterations(epode_conn_t *c, unsigned iterations)
{
    if (!c || iterations == 0)
        return EPODE_EINVAL;
    c->scram_min_iterations = iterations;
    return 0;
}

/* ---- SASL2, Bind2, FAST (issue 16) ------------------------------------------------------ */

/* The options and FAST state, made on first need: an idle session that
 * never met SASL2 carries one pointer for all of it. NULL on ENOMEM. */
static struct conn_modern *modern(epode_conn_t *c)
{
    if (!c->modern)
        c->modern = epode__zalloc(c->ctx->mem, sizeof *c->modern);
    return c->modern;
}

int epode_conn_set_sasl2(epode_conn_t *c, int enable)
{
    if (!c)
        return EPODE_EINVAL;
    if (!modern(c))
        return EPODE_ENOMEM;
    c->modern->sasl2_off = !enable;
    return 0;
}

/* A UUID in its text form: 8-4-4-4-12 hex digits. */
static int is_uuid(const char *s)
{
    if (strlen(s) != 36)
        return 0;
    for (int i = 0; i < 36; i++) {
        int dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? s[i] != '-' : !isxdigit((unsigned char)s[i]))
            return 0;
    }
    return 1;
}

int epode_conn_set_user_agent(epode_conn_t *c, const char *id, const char *software,
                              const char *device)
{
    if (!c || (id && !is_uuid(id)))
        return EPODE_EINVAL;
    char *i = NULL, *s = NULL, *d = NULL;
    const epode_mem_t *mem = c->ctx->mem;
    if (!modern(c) || (id && !(i = epode__strdup(mem, id))) ||
        (software && !(s = epode__strdup(mem, software))) ||
        (device && !(d = epode__strdup(mem, device)))) {
        epode__dealloc(mem, i);
        epode__dealloc(mem, s);
        epode__dealloc(mem, d);
        return EPODE_ENOMEM;
    }
    struct conn_modern *m = c->modern;
    epode__dealloc(mem, m->ua_id);
    epode__dealloc(mem, m->ua_software);
    epode__dealloc(mem, m->ua_device);
    m->ua_id = i;
    m->ua_id_made = 0;
    m->ua_software = s;
    m->ua_device = d;
    return 0;
}

const char *epode_conn_get_user_agent_id(epode_conn_t *c)
{
    if (!c || !modern(c))
        return NULL;
    struct conn_modern *m = c->modern;
    if (m->ua_id)
        return m->ua_id;
    unsigned char r[16];
    if (epode__random(r, sizeof r) < 0)
        return NULL;
    r[6] = (unsigned char)((r[6] & 0x0f) | 0x40); /* version 4 */
    r[8] = (unsigned char)((r[8] & 0x3f) | 0x80); /* RFC 4122 variant */
    char u[37];
    snprintf(u, sizeof u, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
             r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11], r[12],
             r[13], r[14], r[15]);
    m->ua_id = epode__strdup(c->ctx->mem, u);
    m->ua_id_made = m->ua_id != NULL;
    return m->ua_id;
}

int epode_conn_set_bind2(epode_conn_t *c, int enable, const char *tag, unsigned flags)
{
    if (!c || (tag && !*tag))
        return EPODE_EINVAL;
    if (!modern(c))
        return EPODE_ENOMEM;
    int rc = set_str(c, &c->modern->bind2_tag, enable ? tag : NULL);
    if (rc < 0)
        return rc;
    c->modern->bind2_mode = enable ? 1 : -1;
    c->modern->bind2_flags = enable ? flags : 0;
    return 0;
}

int epode_conn_set_fast(epode_conn_t *c, int enable, epode_fast_load_cb load,
                        epode_fast_store_cb store, void *user)
{
    if (!c || (!load) != (!store))
        return EPODE_EINVAL;
    if (!modern(c))
        return EPODE_ENOMEM;
    struct conn_modern *m = c->modern;
    m->fast_off = !enable;
    m->fast_load = load;
    m->fast_store = store;
    m->fast_user = user;
    return 0;
}

/* The token kept in memory (a secret), or none. */
static void fast_forget(epode_conn_t *c)
{
    struct conn_modern *m = c->modern;
    if (!m)
        return;
    const epode_mem_t *mem = c->ctx->mem;
    epode__secret_free(mem, m->fast_token);
    epode__dealloc(mem, m->fast_mech);
    epode__dealloc(mem, m->fast_expiry);
    epode__dealloc(mem, m->fast_jid);
    m->fast_token = m->fast_mech = m->fast_expiry = m->fast_jid = NULL;
}

static void modern_free(epode_conn_t *c)
{
    struct conn_modern *m = c->modern;
    if (!m)
        return;
    fast_forget(c);
    const epode_mem_t *mem = c->ctx->mem;
    epode__dealloc(mem, m->ua_id);
    epode__dealloc(mem, m->ua_software);
    epode__dealloc(mem, m->ua_device);
    epode__dealloc(mem, m->bind2_tag);
    epode__dealloc(mem, m);
    c->modern = NULL;
}

/* Keeps a token issued to the bare JID `jid`. */
static void fast_keep(epode_conn_t *c, const char *jid, const char *token, const char *mech,
                      const char *expiry)
{
    const epode_mem_t *mem = c->ctx->mem;
    fast_forget(c);
    struct conn_modern *m = modern(c);
    if (m) {
        m->fast_token = epode__secret_strdup(mem, token);
        m->fast_mech = epode__strdup(mem, mech);
        m->fast_expiry = expiry ? epode__strdup(mem, expiry) : NULL;
        m->fast_jid = epode__strdup(mem, jid);
    }
    if (!m || !m->fast_token || !m->fast_mech || !m->fast_jid) {
        fast_forget(c); /* out of memory: the password next time */
        epode__ctx_log(c->ctx, EPODE_LOG_WARN, "conn", "out of memory: FAST token not kept");
    }
}

/* Our bare JID, for the token store. */
static void bare_jid(const epode_conn_t *c, char *out, size_t size)
{
    snprintf(out, size, "%s@%s", c->localpart ? c->localpart : "", c->domain ? c->domain : "");
}

/* The engine's word on tokens: a new one to keep, or ours refused. */
static void eng_fast_token(void *user, const char *token, const char *mech, const char *expiry)
{
    epode_conn_t *c = user;
    char bare[3072];
    bare_jid(c, bare, sizeof bare);
    epode_fast_token_t t = {.jid = bare, .mechanism = mech, .token = token, .expiry = expiry};
    if (!token) {
        fast_forget(c);
        if (c->modern) {
            c->modern->fast_retry = 1; /* at once, with the password (see teardown) */
            c->modern->fast_skip = 1;  /* even if the store still has it */
        }
    } else {
        fast_keep(c, bare, token, mech, expiry);
    }
    if (c->modern && c->modern->fast_store)
        c->modern->fast_store(c, &t, c->modern->fast_user);
}

/* The user-agent id, made when a server first offers SASL2. */
static const char *eng_ua_id(void *user)
{
    return epode_conn_get_user_agent_id(user);
}

/* Asks the application's store, at every connect. */
static void fast_load_stored(epode_conn_t *c)
{
    struct conn_modern *m = c->modern;
    char bare[3072];
    bare_jid(c, bare, sizeof bare);
    epode_fast_token_t t = {0};
    int rc = m->fast_load(c, bare, &t, m->fast_user);
    if (rc < 0)
        epode__ctx_log(c->ctx, EPODE_LOG_WARN, "conn", "the FAST token store failed (%d): "
                       "logging in with the password", rc);
    if (rc != 1 || !t.token || !*t.token || !t.mechanism) {
        fast_forget(c);
        return;
    }
    if (!t.jid || !epode_jid_str_equal(t.jid, bare, 1)) {
        /* never present one account's (or domain's) token to another */
        epode__ctx_log(c->ctx, EPODE_LOG_WARN, "conn", "ignored a FAST token stored for %s: "
                       "this connection is %s", t.jid ? t.jid : "nobody", bare);
        fast_forget(c);
        return;
    }
    fast_keep(c, bare, t.token, t.mechanism, t.expiry);
}

/* The SASL2 part of the engine's configuration. */
static void sasl2_config(epode_conn_t *c, epode__engine_config *cfg)
{
    struct conn_modern *m = c->modern; /* NULL: every default */
    cfg->sasl2 = !(m && m->sasl2_off) && !c->component && !c->register_only;
    if (!cfg->sasl2)
        return;
    cfg->ua_id_cb = eng_ua_id;
    cfg->ua_software = m && m->ua_software ? m->ua_software : "epode";
    cfg->ua_device = m ? m->ua_device : NULL;
    int mode = m ? m->bind2_mode : 0;
    cfg->bind2_off = mode < 0 || (mode == 0 && c->resource);
    cfg->sm_inline_off = m && m->sm_inline_off;
    cfg->bind2_tag = m ? m->bind2_tag : NULL;
    cfg->bind2_carbons = m && (m->bind2_flags & EPODE_BIND2_CARBONS);
    cfg->bind2_csi_inactive = m && (m->bind2_flags & EPODE_BIND2_CSI_INACTIVE);
    if (m && m->fast_off)
        return;
    cfg->fast_request = 1;
    cfg->fast_token_cb = eng_fast_token;
    if (m && m->fast_skip) {
        /* just refused: the password this time, whatever the store says
         * (a store that did not forget would loop us through refusals) */
        m->fast_skip = 0;
        fast_forget(c);
        return;
    }
    if (m && m->fast_load)
        fast_load_stored(c);
    char bare[3072];
    bare_jid(c, bare, sizeof bare);
    if (m && m->fast_token && (!m->fast_jid || !epode_jid_str_equal(m->fast_jid, bare, 1))) {
        /* kept for another account (the JID changed since): never shown here */
        epode__ctx_log(c->ctx, EPODE_LOG_WARN, "conn", "forgot the FAST token of %s: "
                       "this connection is %s", m->fast_jid ? m->fast_jid : "nobody", bare);
        fast_forget(c);
    }
    long long exp;
    if (m && m->fast_token && m->fast_expiry &&
        epode__fast_parse_time(m->fast_expiry, &exp) == 0 && exp <= (long long)time(NULL)) {
        epode__ctx_log(c->ctx, EPODE_LOG_INFO, "conn", "the FAST token expired at %s: "
                       "logging in with the password", m->fast_expiry);
        fast_forget(c);
    }
    cfg->fast_token = m ? m->fast_token : NULL;
    cfg->fast_mechanism = m && m->fast_token ? m->fast_mech : NULL;
    cfg->fast_token_jid = m && m->fast_token ? m->fast_jid : NULL;
}

/* At the login timeout: a server that never answers a login with stream
 * management inline (Prosody 0.12 with mod_sasl2_sm) gets one more at
 * once, with the classic <enable/> after it, and never inline again. */
static void sm_inline_timeout(epode_conn_t *c)
{
    /* A <resume/> the server never answered (Prosody 0.12's mod_smacks
     * crashes resuming a BOSH session and says nothing): asking again
     * would hang again. The session is given up; its unacknowledged
     * stanzas wait for a fresh one (resend policy) or are handed back. */
    if (c->engine && epode__engine_resume_unanswered(c->engine) && c->sm_state.resumable) {
        epode__ctx_log(c->ctx, EPODE_LOG_WARN, "sm",
                       "the server never answered <resume/>: the next attempt starts a new "
                       "session");
        epode__sm_end_session(&c->sm_state);
    }
    if (c->engine && epode__engine_sasl2_sm_unanswered(c->engine) && modern(c) &&
        !c->modern->sm_inline_off) {
        c->modern->sm_inline_off = 1;
        c->modern->fast_retry = 1;
    }
}

/* The server refused our FAST token (or never answered a login with SM
 * inline): a new stream at once, with the password (or without inline
 * SM), and no DISCONNECTED for it. 1 when that is under way. */
static int fast_retry(epode_conn_t *c)
{
    if (!c->modern || !c->modern->fast_retry)
        return 0;
    c->modern->fast_retry = 0;
    if (c->user_closed || c->free_pending)
        return 0;
    epode__ctx_log(c->ctx, EPODE_LOG_INFO, "conn", "%s: logging in again at once",
                   epode_conn_error_text(c));
    release_link(c);
    epode__timer_start(&c->reconnect_timer, 0, on_reconnect, c);
    return 1;
}

int epode_conn_set_register(epode_conn_t *c, int enable, int allow_cleartext)
{
    if (!c)
        return EPODE_EINVAL;
    c->register_only = enable != 0;
    c->register_cleartext = enable && allow_cleartext;
    return 0;
}

int epode_conn_set_component(epode_conn_t *c, const char *domain, const char *secret)
{
    if (!c)
        return EPODE_EINVAL;
    if (!idle_only(c))
        return EPODE_ESTATE;
    if (domain && (!secret || !*secret))
        return EPODE_EINVAL;
    if (domain && (epode_jid_validate(domain) < 0 || strchr(domain, '@') || strchr(domain, '/')))
        return EPODE_EJID;
    int rc;
    wipe(c->password);
    if ((rc = set_str(c, &c->password, domain ? secret : NULL)) < 0 ||
        (rc = set_str(c, &c->domain, domain)) < 0)
        return rc;
    set_str(c, &c->jid, NULL);
    set_str(c, &c->localpart, NULL);
    set_str(c, &c->resource, NULL);
    c->component = domain != NULL;
    return 0;
}

/* XEP-0114 §3: the server routes only stanzas from the component's own
 * domain (and its users); it would bounce anything else. */
static int component_from_ok(const epode_conn_t *c, const epode_stanza_t *st)
{
    const char *ns = epode_stanza_get_ns(st), *name = epode_stanza_get_name(st);
    if (ns && strcmp(ns, EPODE_NS_CLIENT) != 0)
        return 1; /* not a stanza */
    if (strcmp(name, "message") && strcmp(name, "presence") && strcmp(name, "iq"))
        return 1;
    const char *from = epode_stanza_get_from(st);
    if (!from)
        return 0;
    const char *at = strchr(from, '@'), *slash = strchr(from, '/');
    const char *dom = at && (!slash || at < slash) ? at + 1 : from;
    size_t dlen = slash ? (size_t)(slash - dom) : strlen(dom);
    return strlen(c->domain) == dlen && strncasecmp(dom, c->domain, dlen) == 0;
}

int epode_conn_set_timeouts(epode_conn_t *c, unsigned connect_ms, unsigned login_ms)
{
    if (!c || !connect_ms || !login_ms)
        return EPODE_EINVAL;
    c->connect_ms = connect_ms;
    c->login_ms = login_ms;
    return 0;
}

int epode_conn_set_stream_management(epode_conn_t *c, int enable)
{
    if (!c)
        return EPODE_EINVAL;
    c->sm = enable != 0;
    return 0;
}

int epode_conn_set_ack_cb(epode_conn_t *c, epode_ack_cb cb, void *user)
{
    if (!c)
        return EPODE_EINVAL;
    c->ack_cb = cb;
    c->ack_user = user;
    return 0;
}

int epode_conn_set_reconnect(epode_conn_t *c, int enable, unsigned min_ms, unsigned max_ms)
{
    if (!c || (enable && (min_ms == 0 || max_ms < min_ms)))
        return EPODE_EINVAL;
    c->reconnect = enable != 0;
    c->rc_min = min_ms;
    c->rc_max = max_ms;
    return 0;
}

int epode_conn_set_sm_policy(epode_conn_t *c, unsigned request_every, unsigned ack_wait_ms,
                             unsigned dead_ms, int resend_unacked)
{
    if (!c || !request_every || !ack_wait_ms || dead_ms < ack_wait_ms)
        return EPODE_EINVAL;
    c->sm_every = request_every;
    c->sm_wait_ms = ack_wait_ms;
    c->sm_dead_ms = dead_ms;
    c->sm_resend = resend_unacked != 0;
    return 0;
}

int epode_conn_sm_enabled(const epode_conn_t *c)
{
    return c && c->engine && epode__engine_sm_enabled(c->engine);
}

/* ---- back-pressure ------------------------------------------------------------------
 * What we hold for the server is bounded (DESIGN, "Bad input and
 * limits"): the unacknowledged queue by length and bytes, and that queue
 * plus the output buffer by bytes. At a bound epode_conn_send() refuses
 * (EBUSY) and owes the sender a DRAINED once there is room; a server
 * that then acknowledges nothing ends the stream (on_stall_timer). */

int epode_conn_set_drain_threshold(epode_conn_t *c, size_t low_water)
{
    if (!c)
        return EPODE_EINVAL;
    c->drain_low = low_water;
    return 0;
}

int epode_conn_set_send_limits(epode_conn_t *c, size_t max_unacked_stanzas,
                               size_t max_pending_bytes)
{
    if (!c)
        return EPODE_EINVAL;
    c->max_unacked = max_unacked_stanzas ? max_unacked_stanzas : DEFAULT_MAX_UNACKED;
    c->max_pending = max_pending_bytes ? max_pending_bytes : DEFAULT_MAX_PENDING;
    return 0;
}

static size_t unwritten(const epode_conn_t *c)
{
    size_t n = 0;
    if (c->engine)
        epode__engine_output(c->engine, &n);
    return n;
}

/* The unacknowledged queue is at a bound. */
static int queue_full(const epode_conn_t *c)
{
    return c->sm_state.qlen >= c->max_unacked || c->sm_state.bytes.len >= c->max_pending;
}

/* A new stanza would be refused. */
static int send_full(const epode_conn_t *c)
{
    return queue_full(c) || unwritten(c) + c->sm_state.bytes.len >= c->max_pending;
}

int epode_conn_is_draining(const epode_conn_t *c)
{
    return epode_conn_is_ready(c) && (c->drain_due || unwritten(c) > c->drain_low);
}

/* ---- read-only state --------------------------------------------------------------- */

epode_disconnect_reason_t epode_conn_reason(const epode_conn_t *c) { return c ? c->reason : EPODE_REASON_NONE; }
int epode_conn_error(const epode_conn_t *c) { return c ? c->err : EPODE_EINVAL; }
const char *epode_conn_condition(const epode_conn_t *c) { return c ? c->condition : NULL; }
const char *epode_conn_error_text(const epode_conn_t *c) { return c && c->text ? c->text : ""; }
const char *epode_conn_redirect(const epode_conn_t *c) { return c ? c->redirect : NULL; }
epode_ctx_t *epode_conn_ctx(const epode_conn_t *c) { return c ? c->ctx : NULL; }
size_t epode_conn_pending_bytes(const epode_conn_t *c)
{
    size_t n = 0;
    if (c && c->engine)
        epode__engine_output(c->engine, &n);
    return n;
}
int epode_conn_is_ready(const epode_conn_t *c) { return c && c->engine && epode__engine_is_ready(c->engine); }

int epode_conn_will_reconnect(const epode_conn_t *c)
{
    return c && c->state == C_IDLE && epode__timer_active(&c->reconnect_timer);
}
const char *epode_conn_bound_jid(const epode_conn_t *c)
{
    return epode_conn_is_ready(c) ? epode__engine_bound_jid(c->engine) : NULL;
}
const epode_stanza_t *epode_conn_stream_features(const epode_conn_t *c)
{
    return epode_conn_is_ready(c) ? epode__engine_features(c->engine) : NULL;
}

const char *epode_conn_security(const epode_conn_t *c) { return c ? c->security : NULL; }

/* ---- the end of a connection ---------------------------------------------------------- */

/* Ends the link and tells the application (from loop callbacks only). */
/* see-other-host hops followed per connection attempt (a loop of
 * redirects ends there; include/epode/conn.h documents it) */
#define MAX_REDIRECTS 3

static void on_redirect_body(void *user)
{
    epode__link_next_target(user);
}

/* A see-other-host stream error: connect there instead, at most
 * MAX_REDIRECTS times per attempt — and only when the error came over TLS
 * whose certificate verifies for our XMPP domain, whatever
 * epode_conn_set_verify() or the certificate callback allowed. Before
 * TLS anyone on the path can write the error, and following it would
 * send our stream header (and whatever the new host asks for next) to a
 * host of their choosing. The new link is checked against the same
 * domain (tls_established: c->domain, never the redirect's host). */
static int follow_redirect(epode_conn_t *c)
{
    char host[256], why[200];
    unsigned port;
    if (!c->redirect)
        return 0;
    if (c->reason != EPODE_REASON_STREAM_ERROR || !c->condition ||
        strcmp(c->condition, "see-other-host") != 0) {
        /* whatever this is, it was not a redirect we checked */
        epode__dealloc(c->ctx->mem, c->redirect);
        c->redirect = NULL;
        return 0;
    }
    epode__transport *tls = epode__stack_tls(c->tr);
    if (!tls || epode__tls_verify(tls, c->domain, why, sizeof why) < 0) {
        if (epode__tls_version(tls) > 0)
            note(c, &c->text, NOTE_TEXT,
                     "refused a see-other-host redirect to %.200s received over TLS whose "
                     "certificate does not verify for %s (%s)", c->redirect, c->domain, why);
        else
            note(c, &c->text, NOTE_TEXT,
                     "refused a see-other-host redirect to %.200s received before TLS", c->redirect);
        epode__ctx_log(c->ctx, EPODE_LOG_WARN, "conn", "%s", epode_conn_error_text(c));
        epode__dealloc(c->ctx->mem, c->redirect);
        c->redirect = NULL; /* nothing the application should follow either */
        return 0;
    }
    if (c->redirects >= MAX_REDIRECTS) {
        note(c, &c->text, NOTE_TEXT,
                 "gave up after %d see-other-host redirects (the last to %.200s)", MAX_REDIRECTS,
                 c->redirect);
        return 0;
    }
    if (epode__parse_hostport(c->redirect, strlen(c->redirect), host, sizeof host, &port) < 0)
        return 0;
    epode__target *t = epode__alloc(c->ctx->mem, sizeof *t);
    if (!t)
        return 0;
    /* followed: it no longer describes how this connection ends */
    epode__dealloc(c->ctx->mem, c->redirect);
    c->redirect = NULL;
    unsigned redirects = c->redirects + 1;
    release_link(c);
    c->redirects = redirects;
    snprintf(t->host, sizeof t->host, "%s", host);
    t->direct_tls = c->direct_tls;
    t->port = (uint16_t)(port ? port : t->direct_tls ? 5223 : 5222);
    c->targets = t;
    c->ntargets = 1;
    c->next_target = 0;
    c->connect_failures = 0;
    epode__ctx_log(c->ctx, EPODE_LOG_INFO, "conn", "redirected to %s:%u (%s)", t->host, t->port,
                   epode_conn_error_text(c));
    c->reason = EPODE_REASON_NONE;
    c->err = 0;
    epode__conn_clear_notes(c, 0);
    c->state = C_RESOLVING;
    epode__timer_start(&c->login_timer, c->login_ms, on_login_timeout, c);
    epode__timer_start(&c->kick, 0, on_redirect, c);
    return 1;
}

static void give_back(void *user, const char *id, const char *bytes, size_t len)
{
    epode_conn_t *c = user;
    if (c->ack_cb)
        c->ack_cb(c, 0, id, bytes, len, c->ack_user);
}

static int start_attempt(epode_conn_t *c);

static void on_reconnect_body(void *user)
{
    epode_conn_t *c = user;
    if (c->state == C_IDLE && start_attempt(c) < 0) {
        /* could not even start: try again later */
        schedule_reconnect(c);
    }
}

/* Exponential backoff with jitter, capped; reset once logged in again. */
static void schedule_reconnect(epode_conn_t *c)
{
    uint64_t delay = c->rc_min;
    for (unsigned i = 0; i < c->rc_attempts && delay < c->rc_max; i++)
        delay *= 2;
    if (delay > c->rc_max)
        delay = c->rc_max;
    unsigned char r = 0;
    epode__random(&r, 1);
    delay = delay / 2 + (delay / 2) * r / 255; /* 50–100 % of it */
    c->rc_attempts++;
    epode__ctx_log(c->ctx, EPODE_LOG_INFO, "conn", "reconnecting in %llu ms (attempt %u)",
                   (unsigned long long)delay, c->rc_attempts);
    epode__timer_start(&c->reconnect_timer, delay, on_reconnect, c);
}

static void teardown(epode_conn_t *c)
{
    if (c->state == C_IDLE)
        return;
    if (c->tr) {
        /* a best-effort flush (what the transport takes now: TLS takes a
         * record at a time) and close_notify; never wait */
        size_t n;
        const char *out;
        for (int i = 0; i < 64 && c->engine && (out = epode__engine_output(c->engine, &n)) && n;
             i++) {
            long w = epode__transport_write(c->tr, out, n);
            if (w <= 0)
                break;
            epode__engine_consume(c->engine, (size_t)w);
        }
        epode__transport_shutdown(c->tr);
    }
    if (follow_redirect(c) || fast_retry(c))
        return;
    release_link(c);
    /* a session that lasted proves the server works: what ended it counts
     * alone (five server restarts a day apart are no poison stanza) */
    if (c->ready_at && epode__now_ms() - c->ready_at >= EPODE__LASTING_MS)
        c->fruitless = 0;
    c->ready_at = 0;
    if (c->reason == EPODE_REASON_STREAM_ERROR || c->reason == EPODE_REASON_PROTOCOL)
        c->fruitless++;
    /* The stream we resumed ended before the server confirmed anything
     * we resent. The next resumption says whether the server took any of
     * it: the same h means it took nothing, and resuming again may land
     * in the same trap (Prosody 0.12 feeds what follows <resumed/> to the
     * session's first parser, which a cut mid-stanza left inside an
     * element: it swallows every later stanza without a word). The engine
     * then logs in afresh instead of resending (see on_resume_answer).
     * Judging by h, not by how the stream ended: after a cut or a stall
     * the server may well have handled the resend, and a fresh session
     * would deliver it twice. */
    if (c->resume_unproven && c->sm_state.resumable) {
        c->stuck_check = 1;
        c->stuck_h = c->sm_state.acked;
    }
    c->resume_unproven = 0;
    int again = epode__conn_should_reconnect(c);
    if (!again) {
        /* No resumption will follow: hand back what was never confirmed. */
        epode__sm_drain(&c->sm_state, give_back, c);
        epode__sm_forget(&c->sm_state);
    }
    epode__dispatch_cancel_iqs(c->dispatch, c);
    epode__ctx_log(c->ctx, EPODE_LOG_INFO, "conn", "disconnected: %s", epode_conn_error_text(c));
    if (again)
        schedule_reconnect(c);
    emit(c, EPODE_CONN_DISCONNECTED);
}

static void fail(epode_conn_t *c, int err, epode_disconnect_reason_t reason, const char *text)
{
    if (c->engine && !epode__engine_has_ended(c->engine)) {
        epode__engine_abort(c->engine, err, reason, text); /* records via ended_cb */
    } else if (c->reason == EPODE_REASON_NONE) {
        record(c, err, reason, NULL, text);
    }
    teardown(c);
}

/* For link.c (conn_int.h): the same, from outside. */
void epode__conn_fail(epode_conn_t *c, int err, epode_disconnect_reason_t reason, const char *text)
{
    fail(c, err, reason, text);
}
void epode__conn_record(epode_conn_t *c, int err, epode_disconnect_reason_t reason, const char *text)
{
    record(c, err, reason, NULL, text);
}
void epode__conn_teardown(epode_conn_t *c) { teardown(c); }
void epode__conn_emit(epode_conn_t *c, epode_conn_event_t ev) { emit(c, ev); }
void epode__conn_pump(epode_conn_t *c) { pump(c); }
void epode__conn_on_login_timeout(void *user) { on_login_timeout(user); }

/* ---- engine callbacks ------------------------------------------------------------------- */

static void on_keepalive(void *user);
static void arm_dispatch_timer(epode_conn_t *c);

static void compact_after_login(epode_conn_t *c);

static void eng_event(void *user, int ev)
{
    epode_conn_t *c = user;
    switch (ev) {
    case EPODE__ENG_STARTTLS:
        c->starttls_pending = 1;
        break;
    case EPODE__ENG_AUTHENTICATED: {
        const char *mech = epode__engine_mechanism(c->engine);
        note(c, &c->security, NOTE_SECURITY, "%s%sSASL%s %s", c->security ? c->security : "",
             c->security ? ", " : "", epode__engine_used_sasl2(c->engine) ? "2" : "",
             mech ? mech : "?");
        emit(c, EPODE_CONN_AUTHENTICATED);
        break;
    }
    case EPODE__ENG_RESUMED:
        epode__timer_stop(&c->login_timer);
        c->rc_attempts = 0;
        c->ready_at = epode__now_ms();
        compact_after_login(c);
        /* Resent stanzas must be confirmed before this resumption counts
         * as working (see teardown). */
        c->resume_unproven = epode__engine_sm_pending(c->engine) > 0;
        if (c->keepalive_s)
            epode__timer_start(&c->keepalive_timer, c->keepalive_s * 1000u, on_keepalive, c);
        epode__ctx_log(c->ctx, EPODE_LOG_INFO, "conn", "resumed as %s",
                       epode__engine_bound_jid(c->engine));
        emit(c, EPODE_CONN_RESUMED);
        break;
    case EPODE__ENG_READY:
        c->stuck_check = 0; /* a fresh session: nothing to judge */
        c->rc_attempts = 0;
        c->ready_at = epode__now_ms();
        compact_after_login(c);
        /* the answer to <enable/> has a deadline: until it comes, what
         * the application sends waits (see on_sm_timer) */
        if (epode__engine_sm_holding(c->engine))
            epode__timer_start(&c->sm_timer, c->sm_wait_ms, on_sm_timer, c);
        epode__timer_stop(&c->login_timer);
        if (c->keepalive_s)
            epode__timer_start(&c->keepalive_timer, c->keepalive_s * 1000u, on_keepalive, c);
        epode__ctx_log(c->ctx, EPODE_LOG_INFO, "conn", "ready as %s (%s)",
                       epode__engine_bound_jid(c->engine) ? epode__engine_bound_jid(c->engine)
                                                          : "nobody (not authenticated)",
                       c->security ? c->security : "no TLS");
        /* A fresh session after a cut: say again who we are (RFC 6121
         * §4.2), once, through the outgoing filters (caps) like any
         * send. A broadcast presence sent by a READY handler is that
         * presence (remember_presence clears the mark): no second copy. */
        c->presence_pending = ++c->sessions > 1 && c->reconnect && c->last_presence;
        emit(c, EPODE_CONN_READY);
        if (c->presence_pending) {
            c->presence_pending = 0;
            epode_conn_send(c, c->last_presence); /* not READY any more: nothing to do */
        }
        break;
    }
}

static void eng_stanza(void *user, epode_stanza_t *st)
{
    epode_conn_t *c = user;
    if (c->free_pending)
        return; /* freed from an earlier callback of this turn */
    const char *self = epode__engine_bound_jid(c->engine);
    if (!self)
        self = c->domain; /* registration stream: no account yet, only the server */
    const char *name = epode_stanza_get_name(st), *type = epode_stanza_get_type(st);
    int request = strcmp(name, "iq") == 0 && type && (!strcmp(type, "get") || !strcmp(type, "set"));
    /* A handler that answers the request has answered it, whatever it
     * returns: epode_conn_send() notes the answer (one per request). */
    c->iq_req_id = request ? epode_stanza_get_id(st) : NULL;
    c->iq_req_from = epode_stanza_get_from(st);
    c->iq_req_answered = 0;
    int handled = epode__dispatch_stanza(c->dispatch, c, st, self);
    handled |= c->iq_req_answered;
    c->iq_req_id = c->iq_req_from = NULL;
    int bad;
    unsigned bad_id;
    while ((bad_id = epode__dispatch_take_bad_result(c->dispatch, &bad)) != 0)
        epode__ctx_log(c->ctx, EPODE_LOG_WARN, "dispatch",
                       "handler %u returned %d, which is neither EPODE_HANDLED (1) nor "
                       "EPODE_PASS (2): taken as EPODE_HANDLED",
                       bad_id, bad);
    arm_dispatch_timer(c);
    if (handled || !c->engine || !epode__engine_is_ready(c->engine))
        return;
    /* RFC 6120 §8.4: an IQ request nobody handles gets an error. Out of
     * memory for it, the request goes unanswered (it was counted as
     * handled, so ending the stream would not bring it back): say so. */
    if (request) {
        epode_stanza_t *err;
        int rc = epode_stanza_error_reply(st, EPODE_COND_SERVICE_UNAVAILABLE,
                                          EPODE_ERRTYPE_DEFAULT, NULL, 0, &err);
        if (rc == 0) {
            /* a component answers from the address asked */
            epode_stanza_set_from(err, c->component ? epode_stanza_get_to(st) : NULL);
            rc = epode__engine_send(c->engine, err);
            epode_stanza_unref(err);
        }
        if (rc < 0) {
            const char *id = epode_stanza_get_id(st), *from = epode_stanza_get_from(st);
            epode__ctx_log(c->ctx, EPODE_LOG_WARN, "conn",
                           "could not answer the IQ request %.100s from %.300s with "
                           "service-unavailable: %s", id ? id : "(no id)",
                           from ? from : "the server", epode_strerror(rc));
        }
    }
}

static void eng_ended(void *user, int err, int reason, const char *cond, const char *text)
{
    epode_conn_t *c = user;
    if (c->reason == EPODE_REASON_NONE)
        record(c, err, (epode_disconnect_reason_t)reason, cond, text);
    const char *redirect = epode__engine_redirect(c->engine);
    if (redirect)
        set_str(c, &c->redirect, redirect);
    /* teardown happens in pump, once the engine call has returned */
    kick(c);
}

static void eng_sm_result(void *user, int acked, const char *id, const char *bytes, size_t len)
{
    epode_conn_t *c = user;
    if (acked) {
        c->fruitless = 0; /* the server is taking our stanzas again */
        c->resume_unproven = 0;
        c->stuck_check = 0;
        c->stall_asked = 0; /* progress: a full queue starts a new wait */
        c->stall_since = 0;
    }
    if (c->ack_cb)
        c->ack_cb(c, acked, id, bytes, len, c->ack_user);
}

static void eng_skipped(void *user, const epode_stanza_t *st, int limit)
{
    epode_conn_t *c = user;
    static const char *const names[] = {"?", "stanza bytes", "depth", "attributes", "text bytes"};
    const char *from = epode_stanza_get_from(st), *id = epode_stanza_get_id(st);
    epode__ctx_log(c->ctx, EPODE_LOG_WARN, "conn",
                   "skipped a <%s/> from %s (id %s): over the %s limit; the stream goes on",
                   epode_stanza_get_name(st), from ? from : "the server", id ? id : "none",
                   limit > 0 && limit < 5 ? names[limit] : names[0]);
}

static void eng_log(void *user, int out, const char *data, size_t len)
{
    epode_conn_t *c = user;
    char red[4200];
    if (len > 4000)
        len = 4000;
    if (out)
        data = epode__log_redact(data, &len, red, sizeof red);
    epode__ctx_log(c->ctx, EPODE_LOG_XML, out ? "xml-out" : "xml-in", "%.*s", (int)len, data);
}

/* ---- timers --------------------------------------------------------------------------- */

static void on_login_timeout_body(void *user)
{
    epode_conn_t *c = user;
    sm_inline_timeout(c);
    fail(c, EPODE_ETIMEDOUT, EPODE_REASON_TIMEOUT, "login did not complete in time");
}

static void on_close_timeout_body(void *user)
{
    epode_conn_t *c = user;
    record(c, EPODE_ECLOSED, EPODE_REASON_CLOSED, NULL, "closed (the server did not answer)");
    if (c->engine)
        epode__engine_abort(c->engine, EPODE_ECLOSED, EPODE_REASON_CLOSED, "closed");
    teardown(c);
}

static void on_keepalive_body(void *user)
{
    epode_conn_t *c = user;
    uint64_t now = epode__now_ms(), period = c->keepalive_s * 1000u;
    if (!c->engine || !epode__engine_is_ready(c->engine))
        return;
    if (now - c->last_write >= period) {
        if (epode__engine_sm_enabled(c->engine) && now - c->last_read >= period &&
            !epode__timer_active(&c->sm_timer)) {
            /* Quiet both ways, with stream management: ask for an ack
             * instead of a bare space, and expect the answer. A receiver
             * with nothing unacknowledged would otherwise never notice a
             * link that died in silence (on_sm_timer does the waiting). */
            epode__engine_sm_request(c->engine);
            c->r_sent_at = now;
            c->probing = 1;
            epode__timer_start(&c->sm_timer, c->sm_dead_ms, on_sm_timer, c);
        } else {
            epode__engine_send_raw(c->engine, " ", 1);
        }
        kick(c);
        epode__timer_start(&c->keepalive_timer, period, on_keepalive, c);
    } else {
        epode__timer_start(&c->keepalive_timer, period - (now - c->last_write), on_keepalive, c);
    }
}

/* After IDLE_MS without a byte from the server, the engine gives back
 * the parser's libxml2 context (DESIGN: memory per session is a budget).
 * Armed once per quiet spell, not once per read. */
static void on_idle_body(void *user)
{
    epode_conn_t *c = user;
    if (!c->engine || !epode__engine_is_ready(c->engine))
        return;
    uint64_t quiet = epode__now_ms() - c->last_read;
    if (c->compact_now && epode__engine_sm_holding(c->engine))
        return; /* the answer to <enable/> is the login's last word: after it */
    if (quiet < IDLE_MS && !c->compact_now) {
        epode__timer_start(&c->idle_timer, IDLE_MS - quiet, on_idle, c);
        return;
    }
    c->compact_now = 0;
    epode__engine_compact(c->engine);
}

/* Right after a login the parser's libxml2 context (~17 KB) goes back,
 * whatever comes next: a session that then idles would hold it for
 * IDLE_MS, and contexts freed a second later lie between the small
 * blocks that later logins made, where malloc cannot return them (1,000
 * sessions: 10.8 KB of RSS per session for 4.4 KB of heap). A session
 * that is busy at once pays one new context. */
static void compact_after_login(epode_conn_t *c)
{
    /* the addresses tried: a reconnection looks them up afresh */
    epode__dealloc(c->ctx->mem, c->targets);
    c->targets = NULL;
    c->ntargets = c->next_target = 0;
    c->compact_now = 1;
    epode__timer_start(&c->idle_timer, 0, on_idle, c);
}

/* Unacknowledged stanzas: ask for an ack after sm_wait_ms; if nothing at
 * all comes back for sm_dead_ms after asking, the link is dead. */
static void on_sm_timer_body(void *user)
{
    epode_conn_t *c = user;
    if (c->engine && epode__engine_sm_holding(c->engine)) {
        uint64_t waited = epode__now_ms() - c->ready_at;
        if (waited >= c->sm_dead_ms) {
            char msg[160];
            snprintf(msg, sizeof msg, "the server did not answer <enable/> in %u ms", c->sm_dead_ms);
            fail(c, EPODE_ETIMEDOUT, EPODE_REASON_TIMEOUT, msg);
        } else {
            uint64_t left = c->sm_dead_ms - waited;
            epode__timer_start(&c->sm_timer, left < c->sm_wait_ms ? left : c->sm_wait_ms,
                               on_sm_timer, c);
        }
        return;
    }
    int probe = c->probing && c->last_read < c->r_sent_at; /* a keepalive <r/> unanswered */
    c->probing = probe;
    if (!c->engine || !epode__engine_sm_enabled(c->engine) ||
        (!epode__engine_sm_pending(c->engine) && !probe)) {
        c->r_sent_at = 0;
        return;
    }
    uint64_t now = epode__now_ms();
    if (c->r_sent_at && c->last_read < c->r_sent_at && now - c->r_sent_at >= c->sm_dead_ms) {
        char msg[160];
        snprintf(msg, sizeof msg, "no answer to an ack request for %u ms: the link is dead",
                 c->sm_dead_ms);
        fail(c, EPODE_ETIMEDOUT, EPODE_REASON_TIMEOUT, msg);
        return;
    }
    if (!c->r_sent_at || c->last_read >= c->r_sent_at) {
        epode__engine_sm_request(c->engine);
        c->r_sent_at = now;
        kick(c);
    }
    epode__timer_start(&c->sm_timer, c->sm_dead_ms - (now - c->r_sent_at), on_sm_timer, c);
}

/* The unacknowledged queue reached its bound, an <r/> went out after it
 * and sm_dead_ms passed without an ack (a server that answers other
 * things but never acks would otherwise keep us at the bound for ever).
 * A timeout rather than a protocol error: a slow or overloaded server
 * looks the same from here, so the link is treated as dead — resumed
 * when reconnection is on (the server's h then says what it had), the
 * queue handed back otherwise. */
GUARDED(on_stall_timer)
static void on_stall_timer_body(void *user)
{
    epode_conn_t *c = user;
    if (!c->stall_since || !c->engine || !epode__engine_sm_enabled(c->engine) || !queue_full(c))
        return;
    uint64_t waited = epode__now_ms() - c->stall_since;
    if (waited < c->sm_dead_ms) {
        epode__timer_start(&c->stall_timer, c->sm_dead_ms - waited, on_stall_timer, c);
        return;
    }
    char msg[200];
    snprintf(msg, sizeof msg,
             "the server acknowledged nothing of %zu stanzas (%zu bytes) held at the send limit "
             "in %u ms after asking",
             c->sm_state.qlen, c->sm_state.bytes.len, c->sm_dead_ms);
    fail(c, EPODE_ETIMEDOUT, EPODE_REASON_TIMEOUT, msg);
}

static void on_dispatch_timer_body(void *user)
{
    epode_conn_t *c = user;
    epode__dispatch_expire(c->dispatch, c, epode__now_ms());
    arm_dispatch_timer(c);
    if (c->engine)
        kick(c);
}

static void arm_dispatch_timer(epode_conn_t *c)
{
    uint64_t due = epode__dispatch_next_deadline(c->dispatch);
    if (due == UINT64_MAX) {
        epode__timer_stop(&c->dispatch_timer);
        return;
    }
    uint64_t now = epode__now_ms();
    epode__timer_start(&c->dispatch_timer, due > now ? due - now : 0, on_dispatch_timer, c);
}

/* ---- the stream -------------------------------------------------------------------------- */

int epode__conn_start_engine(epode_conn_t *c, const epode__tls_facts *tls)
{
    epode__engine_config cfg = {
        .domain = c->domain,
        .localpart = c->localpart,
        .resource = c->resource,
        .password = c->password,
        .mechanisms = c->mechanisms,
        .tls_mode = c->tls_mode,
        .have_client_cert = c->cert_file != NULL,
    };
    cfg.sm = !!c->sm;
    cfg.sm_state = &c->sm_state;
    size_t limits[EPODE__NLIMITS];
    for (size_t i = 0; i < EPODE__NLIMITS; i++)
        limits[i] = c->limits[i] ? c->limits[i] : c->ctx->limits[i];
    cfg.limits = limits;
    cfg.nlimits = EPODE__NLIMITS;
    cfg.scram_min_iterations = c->scram_min_iterations;
    sasl2_config(c, &cfg);
    cfg.register_only = !!c->register_only; /* one-bit flags */
    cfg.register_cleartext = !!c->register_cleartext;
    cfg.component = !!c->component;
    /* RFC 7395 (and BOSH, the layer wraps it): <open/>, one element per message */
    cfg.framed = c->ws_url != NULL || c->bosh_url != NULL;
    if (c->ws_url && !c->ws_url->secure)
        cfg.tls_mode = EPODE_TLS_DISABLED; /* ws:// (loopback, or TLS loosened): no STARTTLS */
    if (c->bosh_url && !c->bosh_url->secure)
        cfg.tls_mode = EPODE_TLS_DISABLED; /* http:// likewise; https:// is TLS (tls set) */
    if (c->component)
        cfg.sm = 0; /* XEP-0114 streams have no stream management */
    cfg.sm_request_every = c->sm_every;
    cfg.sm_resend = !!c->sm_resend;
    cfg.sm_stuck_check = !!c->stuck_check;
    cfg.sm_stuck_h = c->stuck_h;
    c->r_sent_at = 0;
    c->stall_asked = 0; /* drain_due stays: a sender refused on the last
                         * stream still waits for its DRAINED */
    c->stall_since = 0;
    epode__engine_cbs cbs = {eng_event, eng_stanza, eng_ended,
                             c->ctx->log && c->ctx->log_level >= EPODE_LOG_XML ? eng_log : NULL,
                             eng_sm_result, eng_skipped};
    int rc = epode__engine_new(c->ctx->mem, &cfg, &cbs, c, &c->engine);
    if (rc < 0)
        return rc;
    c->state = C_STREAM;
    return epode__engine_start(c->engine, tls);
}

static void update_io(epode_conn_t *c)
{
    if (!c->tr || c->fd < 0)
        return;
    unsigned want = epode__transport_wants(c->tr) | EPODE__READ;
    size_t out = 0;
    if (c->engine)
        epode__engine_output(c->engine, &out);
    if (out)
        want |= EPODE__WRITE;
    epode__io_set(&c->io, want);
}

static int flush(epode_conn_t *c)
{
    size_t n;
    const char *out;
    while (c->engine && (out = epode__engine_output(c->engine, &n)) && n > 0) {
        long w = epode__transport_write(c->tr, out, n);
        if (w == EPODE_EAGAIN)
            return 0;
        if (w < 0) {
            fail(c, EPODE_ENET, EPODE_REASON_NETWORK,
                 epode__transport_error(c->tr)[0] ? epode__transport_error(c->tr) : "write failed");
            return -1;
        }
        epode__engine_consume(c->engine, (size_t)w);
        c->last_write = epode__now_ms();
    }
    return 0;
}

/* After a flush: DRAINED when it is owed and sending is welcome again;
 * at the queue's bound, an ack is asked for and, once that request is
 * written, the stall timer runs. Last in pump: the event callback may
 * close, send or free. */
static void back_pressure(epode_conn_t *c)
{
    if (!c->engine || !epode__engine_is_ready(c->engine))
        return;
    size_t out = unwritten(c);
    if (epode__engine_sm_enabled(c->engine) && queue_full(c)) {
        if (!c->stall_asked) {
            c->stall_asked = 1;
            epode__engine_sm_request(c->engine);
            kick(c);
        } else if (!c->stall_since && out == 0) {
            c->stall_since = epode__now_ms();
            epode__timer_start(&c->stall_timer, c->sm_dead_ms, on_stall_timer, c);
        }
    } else if (c->stall_asked) {
        c->stall_asked = 0;
        c->stall_since = 0;
        epode__timer_stop(&c->stall_timer);
    }
    if (c->drain_due && out <= c->drain_low && !send_full(c) && epode_conn_is_ready(c)) {
        c->drain_due = 0;
        emit(c, EPODE_CONN_DRAINED);
    }
}

/* Reads, feeds, writes: the body of every io and kick callback. */
static void pump_body(epode_conn_t *c)
{
    if (c->state == C_IDLE || !c->tr)
        return;
    if (c->state == C_OPEN) {
        char why[300];
        int rc = epode__stack_open(c->tr, why, sizeof why);
        if (rc == EPODE_EAGAIN) {
            update_io(c);
            return;
        }
        if (rc < 0) {
            /* TLS's failures are TLS's (BOSH's certificate too: curl
             * checks it during the session's creation); a proxy refusing
             * our credentials is final; anything else the link's */
            int tls = rc == EPODE_ETLS || rc == EPODE_ECERT;
            fail(c, tls || rc == EPODE_EAUTH || rc == EPODE_EPROTOCOL ? rc : EPODE_ENET,
                 tls                     ? EPODE_REASON_TLS
                 : rc == EPODE_EAUTH     ? EPODE_REASON_AUTH
                 : rc == EPODE_EPROTOCOL ? EPODE_REASON_PROTOCOL
                                         : EPODE_REASON_NETWORK,
                 why);
            return;
        }
        epode__link_open(c);
        if (c->state != C_STREAM || !c->tr)
            return; /* failed, or closed (maybe reconnected) from an event */
    }
    char buf[READ_CHUNK];
    size_t budget = READ_BUDGET;
    while (c->engine && !epode__engine_has_ended(c->engine) && !c->starttls_pending && budget) {
        long n = epode__transport_read(c->tr, buf, sizeof buf);
        if (n == EPODE_EAGAIN)
            break;
        if (n == 0) {
            epode__engine_eof(c->engine);
            break;
        }
        if (n < 0) {
            char msg[300];
            snprintf(msg, sizeof msg, "%s",
                     epode__transport_error(c->tr)[0] ? epode__transport_error(c->tr)
                                                      : epode_strerror((int)n));
            /* EPODE_EPROTOCOL: a layer closed the link for the server's
             * breach of its protocol (WebSocket 1002/1003/1007/1009);
             * EPODE_ECERT: a certificate refused on a later connection of
             * the link (BOSH's HTTPS requests), a TLS matter as at first */
            int tls = n == EPODE_ETLS || n == EPODE_ECERT;
            epode__engine_abort(c->engine,
                                tls || n == EPODE_EPROTOCOL ? (int)n : EPODE_ENET,
                                tls                    ? EPODE_REASON_TLS
                                : n == EPODE_EPROTOCOL ? EPODE_REASON_PROTOCOL
                                                       : EPODE_REASON_NETWORK,
                                msg);
            break;
        }
        budget = (size_t)n > budget ? 0 : budget - (size_t)n;
        c->last_read = epode__now_ms();
        if (!epode__timer_active(&c->idle_timer))
            epode__timer_start(&c->idle_timer, IDLE_MS, on_idle, c);
        epode__engine_recv(c->engine, buf, (size_t)n);
        if (c->state == C_IDLE)
            return; /* closed from a handler */
        if (c->compact_now && c->engine && !epode__engine_sm_holding(c->engine))
            epode__timer_start(&c->idle_timer, 0, on_idle, c); /* the login is over */
    }
    if (c->engine && epode__engine_is_ready(c->engine) && unwritten(c) > c->drain_low)
        c->drain_due = 1; /* whatever put it there: sends, resends after a resume */
    if (flush(c) < 0)
        return;
    if (c->engine && epode__engine_has_ended(c->engine)) {
        teardown(c);
        return;
    }
    if (c->starttls_pending) {
        c->starttls_pending = 0;
        char why[300] = "", msg[340];
        int rc = epode__link_starttls(c, why, sizeof why);
        if (rc < 0) {
            snprintf(msg, sizeof msg, "could not start TLS%s%s", why[0] ? ": " : "", why);
            fail(c, rc, EPODE_REASON_TLS, msg);
            return;
        }
        pump(c);
        return;
    }
    update_io(c);
    if (epode__transport_pending(c->tr) > 0 || budget == 0)
        kick(c);
    /* Unacknowledged stanzas: ask for an ack soon, even if the count
     * that triggers <r/> is never reached (before going idle). */
    if (c->engine && epode__engine_sm_pending(c->engine) && !epode__timer_active(&c->sm_timer))
        epode__timer_start(&c->sm_timer, c->sm_wait_ms, on_sm_timer, c);
    back_pressure(c);
}

static void on_io_body(void *user, unsigned revents)
{
    (void)revents;
    pump(user);
}

int epode_conn_connect(epode_conn_t *c)
{
    if (!c)
        return EPODE_EINVAL;
    if (c->state != C_IDLE)
        return EPODE_ESTATE;
    if (!c->domain || (c->component && (!c->host || !c->password || c->ws_url || c->bosh_url)))
        return EPODE_EINVAL; /* a component has no SRV records: name its server */
    /* the application's pipe carries every byte: BOSH (curl's own
     * connections) and discovery (DNS and HTTPS of epode's) cannot */
    if (c->app && (c->bosh_url || c->discovery))
        return EPODE_EINVAL;
    c->user_closed = 0;
    c->rc_attempts = 0;
    c->fruitless = 0;
    epode__timer_stop(&c->reconnect_timer);
    return start_attempt(c);
}

static int start_attempt(epode_conn_t *c)
{
    c->reason = EPODE_REASON_NONE;
    c->err = 0;
    epode__conn_clear_notes(c, 1);
    epode__dealloc(c->ctx->mem, c->redirect);
    c->redirect = NULL;
    c->state = C_RESOLVING;
    c->redirects = 0;
    int rc = epode__timer_start(&c->kick, 0, on_start, c);
    if (rc < 0) {
        c->state = C_IDLE;
        return rc;
    }
    return 0;
}

int epode__conn_start_over(epode_conn_t *c, epode__transport *t)
{
    if (!c || !t || !c->domain)
        return EPODE_EINVAL;
    if (c->state != C_IDLE)
        return EPODE_ESTATE;
    c->reason = EPODE_REASON_NONE;
    c->err = 0;
    epode__conn_clear_notes(c, 1);
    c->tr = t;
    c->fd = -1; /* nothing to watch: epode__conn_poke() says when to look */
    int rc = epode__conn_start_engine(c, NULL);
    if (rc == 0)
        rc = epode__timer_start(&c->kick, 0, (epode__timer_cb)pump, c);
    if (rc < 0) {
        c->tr = NULL;
        c->state = C_IDLE;
        epode__engine_free(c->engine);
        c->engine = NULL;
        return rc;
    }
    return 0;
}

void epode__conn_footprint(const epode_conn_t *c, epode__footprint *f)
{
    const char *strs[] = {c->jid,     c->localpart, c->domain,   c->resource, c->password,
                          c->host,    c->ca_file,   c->cert_file, c->key_file, c->mechanisms,
                          c->redirect};
    f->conn += sizeof *c + (c->targets ? c->ntargets * sizeof *c->targets : 0);
    f->conn += (c->app ? sizeof *c->app : 0) + (c->proxy ? sizeof *c->proxy : 0);
    if (c->proxy)
        f->conn += epode__str_bytes(c->proxy->host) + epode__str_bytes(c->proxy->user) +
                   epode__str_bytes(c->proxy->pass);
    for (size_t i = 0; i < sizeof strs / sizeof strs[0]; i++)
        f->conn += epode__str_bytes(strs[i]);
    f->notes += epode__str_bytes(c->condition_note) + epode__str_bytes(c->text) +
                epode__str_bytes(c->security) + epode__str_bytes(c->last_connect_error);
    f->sm += epode__sm_footprint(&c->sm_state);
    f->dispatch += epode__dispatch_footprint(c->dispatch);
    if (c->engine)
        epode__engine_footprint(c->engine, f);
}

void epode__conn_poke(epode_conn_t *c)
{
    /* Only once there is a link: before it, the kick timer carries the
     * start of the attempt (on_start), which a kick would replace. */
    if (c && c->state != C_IDLE && c->tr)
        kick(c);
}

/* Keeps the last broadcast presence (no 'to'), to re-send it on a fresh
 * session after automatic reconnection; unavailable forgets it. Kept as
 * the application sent it: the outgoing filters run again on the re-send
 * (what they add may have changed since, e.g. the caps hash). */
static void remember_presence(epode_conn_t *c, const epode_stanza_t *st)
{
    if (strcmp(epode_stanza_get_name(st), "presence") != 0 || epode_stanza_get_to(st))
        return;
    const char *type = epode_stanza_get_type(st);
    if (type && strcmp(type, "unavailable") != 0)
        return; /* subscriptions and probes are not broadcasts */
    c->presence_pending = 0; /* sent from a READY handler: that one counts */
    if (st == c->last_presence)
        return; /* the re-send after a fresh login */
    epode_stanza_unref(c->last_presence);
    c->last_presence = NULL;
    if (!type)
        epode_stanza_copy(st, &c->last_presence); /* best effort */
}

/* 1 if `to` names the sender `from` of a request. No address on either
 * side means our server or our account (RFC 6120 §10.3). */
static int same_peer(const epode_conn_t *c, const char *from, const char *to)
{
    if (from && to)
        return epode_jid_str_equal(from, to, 0);
    const char *named = from ? from : to;
    if (!named)
        return 1;
    const char *self = c->engine ? epode__engine_bound_jid(c->engine) : NULL;
    return epode_jid_str_equal(named, c->domain, 0) ||
           (self && !strchr(named, '/') && epode_jid_str_equal(named, self, 1));
}

/* 1 if st answers the IQ request being dispatched: a result or error
 * with its id, back to its sender. */
static int answers_request(const epode_conn_t *c, const epode_stanza_t *st)
{
    const char *type = epode_stanza_get_type(st), *id = epode_stanza_get_id(st);
    return c->iq_req_id && id && type && strcmp(epode_stanza_get_name(st), "iq") == 0 &&
           (!strcmp(type, "result") || !strcmp(type, "error")) && !strcmp(id, c->iq_req_id) &&
           same_peer(c, c->iq_req_from, epode_stanza_get_to(st));
}

static int send_body(epode_conn_t *c, const epode_stanza_t *st);

/* Every public send path refuses a stanza whose `to` or `from` is not a
 * JID before anything is queued or counted: the server would bounce it
 * at best, and the application hears EPODE_EJID as from the builders.
 * Validation allocates nothing (a few hundred instructions for a
 * 30-byte JID; bench/conn_bench send). */
static int addresses_ok(const epode_stanza_t *st)
{
    /* One pass over the attributes: two lookups by name cost as much
     * as the validation itself. */
    const char *name, *ns, *value;
    for (size_t i = 0; epode_stanza_attr_at(st, i, &name, &ns, &value) == 0; i++)
        if (!ns && ((name[0] == 't' && name[1] == 'o' && !name[2]) ||
                    (name[0] == 'f' && !strcmp(name, "from"))) &&
            epode_jid_validate(value) < 0)
            return EPODE_EJID;
    return 0;
}

/* Outgoing filters run inside the call and may free the connection:
 * guarded like the loop's entry points. */
int epode_conn_send(epode_conn_t *c, const epode_stanza_t *st)
{
    if (!c || !st)
        return EPODE_EINVAL;
    if (addresses_ok(st) < 0 || (c->component && !component_from_ok(c, st)))
        return EPODE_EJID;
    if (c->free_pending)
        return EPODE_ESTATE;
    enter(c);
    int rc = send_body(c, st);
    leave(c);
    return rc;
}

static int send_body(epode_conn_t *c, const epode_stanza_t *st)
{
    if (!c->engine || !epode__engine_is_ready(c->engine))
        return EPODE_ESTATE;
    if (send_full(c)) {
        /* Refused before anything is serialized or counted; the loop
         * tells the sender (DRAINED) once there is room. */
        c->drain_due = 1;
        if (!epode__timer_active(&c->kick))
            kick(c);
        return EPODE_EBUSY;
    }
    if (c->reconnect)
        remember_presence(c, st);
    int rc;
    if (epode__dispatch_wants_outgoing(c->dispatch, st)) {
        /* Filters work on a copy: the caller's stanza stays as it was. */
        epode_stanza_t *copy;
        if ((rc = epode_stanza_copy(st, &copy)) < 0)
            return rc;
        epode__dispatch_outgoing(c->dispatch, c, copy);
        rc = c->engine && !c->free_pending ? epode__engine_send(c->engine, copy) : EPODE_ESTATE;
        epode_stanza_unref(copy);
    } else {
        rc = epode__engine_send(c->engine, st);
    }
    if (rc == 0 && answers_request(c, st))
        c->iq_req_answered = 1; /* no service-unavailable after it */
    if (rc == 0 && !epode__timer_active(&c->kick))
        kick(c); /* written once per loop turn, however many stanzas */
    return rc;
}

/* A close with no stream to say goodbye on: the end, on the next turn
 * (unconfirmed stanzas handed back, then DISCONNECTED). */
static void on_closed_body(void *user)
{
    teardown(user);
}

int epode_conn_close(epode_conn_t *c)
{
    if (!c)
        return EPODE_EINVAL;
    if (c->state == C_IDLE) {
        if (!epode__timer_active(&c->reconnect_timer))
            return EPODE_ESTATE;
        /* Waiting to reconnect: stops the policy, and ends like any close. */
        epode__timer_stop(&c->reconnect_timer);
        c->user_closed = 1;
        record(c, EPODE_ECLOSED, EPODE_REASON_CLOSED, NULL, "closed");
        c->state = C_CLOSING;
        /* cannot fail: stopping the reconnect timer made room for it */
        epode__timer_start(&c->close_timer, 0, on_closed, c);
        return 0;
    }
    if (c->state == C_CLOSING)
        return 0; /* closing already: its DISCONNECTED is on its way */
    c->user_closed = 1;
    record(c, EPODE_ECLOSED, EPODE_REASON_CLOSED, NULL, "closed");
    if (!c->engine || c->state != C_STREAM) {
        /* Nothing to say goodbye on yet: stop where we are, next turn,
         * starting no lookup or connect (on_start, on_redirect) first. */
        epode__timer_stop(&c->kick);
        if (c->engine)
            epode__engine_abort(c->engine, EPODE_ECLOSED, EPODE_REASON_CLOSED, "closed");
        if (c->query) {
            epode__query_cancel(c->query);
            c->query = NULL;
        }
#ifdef EPODE_HAVE_CURL
        epode__discover_cancel(c);
#endif
        c->state = C_CLOSING;
        epode__timer_start(&c->close_timer, 0, on_closed, c);
        return 0;
    }
    epode__engine_close(c->engine);
    c->state = C_CLOSING;
    epode__timer_start(&c->close_timer, CLOSE_WAIT_MS, on_close_timeout, c);
    kick(c);
    return 0;
}

/* ---- handlers (public API in epode/handler.h) ------------------------------------------------ */

int epode_conn_add_handler(epode_conn_t *c, const char *name, const char *ns, const char *type,
                           epode_handler_cb cb, void *user, unsigned *id)
{
    if (!c)
        return EPODE_EINVAL;
    return epode__dispatch_add(c->dispatch, name, ns, type, cb, user, id);
}

int epode_conn_remove(epode_conn_t *c, unsigned id)
{
    if (!c)
        return EPODE_EINVAL;
    int rc = epode__dispatch_remove(c->dispatch, id);
    arm_dispatch_timer(c);
    return rc;
}

int epode_conn_add_filter(epode_conn_t *c, const char *name, const char *ns,
                          const char *type, epode_handler_cb cb, void *user, unsigned *id)
{
    if (!c)
        return EPODE_EINVAL;
    return epode__dispatch_add_outgoing(c->dispatch, name, ns, type, cb, user, id);
}

int epode_conn_add_event_cb(epode_conn_t *c, epode_conn_event_cb cb, void *user, unsigned *id)
{
    if (!c)
        return EPODE_EINVAL;
    return epode__dispatch_add_event(c->dispatch, cb, user, id);
}

static int send_iq_body(epode_conn_t *c, epode_stanza_t *iq, unsigned timeout_ms, epode_iq_cb cb,
                        void *user, unsigned *id);

int epode_conn_send_iq(epode_conn_t *c, epode_stanza_t *iq, unsigned timeout_ms, epode_iq_cb cb,
                       void *user, unsigned *id)
{
    if (!c || !iq || !cb || strcmp(epode_stanza_get_name(iq), "iq") != 0)
        return EPODE_EINVAL;
    if (addresses_ok(iq) < 0)
        return EPODE_EJID; /* before an id is added or a wait registered */
    if (c->free_pending)
        return EPODE_ESTATE;
    enter(c);
    int rc = send_iq_body(c, iq, timeout_ms, cb, user, id);
    leave(c);
    return rc;
}

static int send_iq_body(epode_conn_t *c, epode_stanza_t *iq, unsigned timeout_ms, epode_iq_cb cb,
                        void *user, unsigned *id)
{
    const char *type = epode_stanza_get_type(iq);
    if (!type || (strcmp(type, "get") && strcmp(type, "set")))
        return EPODE_EINVAL;
    if (!c->engine || !epode__engine_is_ready(c->engine))
        return EPODE_ESTATE;
    const char *iq_id = epode_stanza_get_id(iq);
    int rc;
    if (!iq_id && (rc = epode_stanza_set_new_id(iq, &iq_id)) < 0)
        return rc;
    unsigned hid;
    uint64_t deadline = epode__now_ms() + (timeout_ms ? timeout_ms : 30000);
    rc = epode__dispatch_add_iq(c->dispatch, iq_id, epode_stanza_get_to(iq), deadline, cb, user,
                                &hid);
    if (rc < 0)
        return rc;
    if ((rc = epode_conn_send(c, iq)) < 0) {
        epode__dispatch_remove(c->dispatch, hid);
        return rc;
    }
    if (c->free_pending)
        return EPODE_ESTATE; /* a filter freed the connection */
    arm_dispatch_timer(c);
    if (id)
        *id = hid;
    return 0;
}

int epode_conn_add_timer(epode_conn_t *c, unsigned interval_ms, epode_conn_timer_cb cb, void *user,
                         unsigned *id)
{
    if (!c)
        return EPODE_EINVAL;
    int rc = epode__dispatch_add_timed(c->dispatch, interval_ms, epode__now_ms(), cb, user, id);
    if (rc == 0)
        arm_dispatch_timer(c);
    return rc;
}
