/* epode_lua.c — the Lua 5.4 module: `local epode = require "epode"`.
 *
 *   local c = epode.client{ jid = "bot@example.org", password = "pw",
 *                           server = nil, port = nil, ca_file = nil,
 *                           direct_tls = false, verbose = false }
 *   c:on_message(function(msg, client) ... end)   -- msg.from/.to/.type/.body/.id
 *   c:on_event(function(name, info, client) ... end)
 *   c.on_error = function(message, where, traceback) ... end
 *   c:connect(); c:run()            -- or c:step(ms) from a loop of your own
 *
 * Ownership. Each client is one full userdata that owns its own context,
 * connection and messaging helper; __gc (and __close) free them, closing
 * the socket at once without events. Only the client's own methods drive
 * its context, and every one of them holds the userdata on its stack
 * while epode runs, so a client can never be collected while epode is
 * inside it and no pinning is needed; a client dropped while connected
 * is simply disconnected by the collector. Handlers are kept as the
 * userdata's user values (never registry references), so a handler that
 * captures its own client makes an ordinary cycle the collector frees.
 *
 * Errors. Every epode failure raises a Lua error
 * "<function>: <NAME>: <text>" (NAME as epode_err_name()). Handlers run
 * under lua_pcall from inside protected C functions: everything that can
 * raise (building tables, calling the handler, reporting) happens inside
 * a pcall, so a Lua error never unwinds through epode's C frames. A
 * handler that fails is reported to the client's on_error hook, or else
 * printed to stderr, and the loop goes on.
 */
#include <epode.h>

#include <lauxlib.h>
#include <lua.h>

#include <stdio.h>
#include <string.h>

#define CLIENT_MT "epode.client"

/* User value slots of a client userdata. */
enum { UV_ON_MESSAGE = 1, UV_ON_EVENT = 2, UV_ON_ERROR = 3, UV_COUNT = 3 };

typedef struct client {
    epode_ctx_t *ctx;
    epode_conn_t *conn;
    epode_messaging_t *msgs;
    lua_State *L;  /* the state running the loop, only while in_loop */
    int self;      /* the userdata's absolute stack index in L, while in_loop */
    int in_loop;   /* inside run() or step() */
    int running;   /* inside run(): stop at DISCONNECTED */
    int ended;     /* a DISCONNECTED was seen since the last connect */
    epode_disconnect_reason_t reason;
} client_t;

/* ---- helpers ----------------------------------------------------------- */

static int raise_epode(lua_State *L, const char *where, int rc)
{
    return luaL_error(L, "%s: %s: %s", where, epode_err_name(rc), epode_strerror(rc));
}

static client_t *check_client(lua_State *L, const char *where)
{
    client_t *c = luaL_checkudata(L, 1, CLIENT_MT);
    if (!c->ctx)
        luaL_error(L, "%s: the client has been freed", where);
    return c;
}

static const char *reason_name(epode_disconnect_reason_t r)
{
    switch (r) {
    case EPODE_REASON_NONE: return "none";
    case EPODE_REASON_CLOSED: return "closed";
    case EPODE_REASON_NETWORK: return "network";
    case EPODE_REASON_TLS: return "tls";
    case EPODE_REASON_AUTH: return "auth";
    case EPODE_REASON_STREAM_ERROR: return "stream-error";
    case EPODE_REASON_PROTOCOL: return "protocol";
    case EPODE_REASON_TIMEOUT: return "timeout";
    }
    return "unknown";
}

static const char *event_name(epode_conn_event_t ev)
{
    switch (ev) {
    case EPODE_CONN_CONNECTING: return "connecting";
    case EPODE_CONN_TLS_UP: return "tls";
    case EPODE_CONN_AUTHENTICATED: return "authenticated";
    case EPODE_CONN_READY: return "ready";
    case EPODE_CONN_DISCONNECTED: return "disconnected";
    case EPODE_CONN_RESUMED: return "resumed";
    }
    return "unknown";
}

static void set_field_str(lua_State *L, const char *key, const char *value)
{
    if (value) {
        lua_pushstring(L, value);
        lua_setfield(L, -2, key);
    }
}

/* Frees everything the client owns (no events). Idempotent. */
static void client_release(client_t *c)
{
    epode_messaging_free(c->msgs);
    c->msgs = NULL;
    epode_conn_free(c->conn);
    c->conn = NULL;
    if (c->ctx)
        epode_ctx_free(c->ctx);
    c->ctx = NULL;
}

/* ---- calling into Lua from epode's callbacks ---------------------------- */

/* Message handler for handler calls: turns any error value into
 * { message = tostring(err), traceback = "..." }. */
static int handler_msgh(lua_State *L)
{
    luaL_tolstring(L, 1, NULL);     /* message */
    luaL_traceback(L, L, NULL, 1); /* traceback */
    lua_createtable(L, 0, 2);
    lua_insert(L, -3);
    lua_setfield(L, -3, "traceback");
    lua_setfield(L, -2, "message");
    return 1;
}

/* Every protected function below is called as fn(client, data): the
 * client userdata at index 1 and a light userdata at 2. Pushing a light C
 * function, a light userdata or a copy of a stack value never allocates,
 * so nothing outside lua_pcall can raise. */

/* Protected: fn(client, error, where). The error is the table handler_msgh
 * made, or a bare message after a memory error (no message handler runs
 * then). Calls on_error(message, where, traceback) if set, else prints to
 * stderr. */
static int report_protected(lua_State *L)
{
    const char *where = lua_touserdata(L, 3);
    const char *message = NULL;
    const char *traceback = NULL;
    if (lua_istable(L, 2)) {
        lua_getfield(L, 2, "message");
        lua_getfield(L, 2, "traceback");
        message = lua_tostring(L, -2);
        traceback = lua_tostring(L, -1);
    } else if (lua_type(L, 2) == LUA_TSTRING) {
        message = lua_tostring(L, 2);
    }
    if (!message)
        message = "(error object is not a string)";
    lua_getiuservalue(L, 1, UV_ON_ERROR);
    if (lua_isfunction(L, -1)) {
        lua_pushstring(L, message);
        lua_pushstring(L, where);
        if (traceback)
            lua_pushstring(L, traceback);
        else
            lua_pushnil(L);
        lua_call(L, 3, 0);
    } else {
        fprintf(stderr, "epode: error in %s handler: %s\n%s%s", where, message,
                traceback ? traceback : "", traceback ? "\n" : "");
        fflush(stderr);
    }
    return 0;
}

/* Reports the error object on top of the stack (and pops it). Never
 * raises. `where` must be a string literal. */
static void report_error(client_t *c, const char *where)
{
    lua_State *L = c->L;
    lua_pushcfunction(L, report_protected);
    lua_insert(L, -2);
    lua_pushvalue(L, c->self);
    lua_insert(L, -2);
    lua_pushlightuserdata(L, (void *)where);
    if (lua_pcall(L, 3, 0, 0) != LUA_OK) {
        const char *e = lua_tostring(L, -1);
        fprintf(stderr, "epode: the on_error hook failed too (after a %s handler error): %s\n",
                where, e ? e : "(error object is not a string)");
        fflush(stderr);
        lua_pop(L, 1);
    }
}

/* Runs fn(client, data) protected; reports a failure. Called from epode's
 * callbacks, which run only inside run() or step(), whose frame holds the
 * client at index c->self. */
static void call_protected(client_t *c, lua_CFunction fn, void *data, const char *where)
{
    lua_State *L = c->L;
    if (!L || !lua_checkstack(L, 8)) {
        fprintf(stderr, "epode: cannot run the %s handler (no Lua stack)\n", where);
        return;
    }
    int top = lua_gettop(L);
    lua_pushcfunction(L, handler_msgh);
    lua_pushcfunction(L, fn);
    lua_pushvalue(L, c->self);
    lua_pushlightuserdata(L, data);
    if (lua_pcall(L, 2, 0, top + 1) != LUA_OK)
        report_error(c, where);
    lua_settop(L, top);
}

typedef struct message_call {
    client_t *c;
    const epode_message_t *m;
} message_call_t;

static int message_protected(lua_State *L)
{
    message_call_t *mc = lua_touserdata(L, 2);
    lua_getiuservalue(L, 1, UV_ON_MESSAGE);
    if (!lua_isfunction(L, -1))
        return 0;
    const epode_message_t *m = mc->m;
    lua_createtable(L, 0, 8);
    set_field_str(L, "from", epode_message_from(m));
    set_field_str(L, "to", epode_message_to(m));
    set_field_str(L, "type", epode_message_type(m));
    set_field_str(L, "body", epode_message_body(m, NULL));
    set_field_str(L, "id", epode_message_id(m));
    set_field_str(L, "subject", epode_message_subject(m, NULL));
    set_field_str(L, "thread", epode_message_thread(m));
    if (epode_message_error(m, NULL, NULL) != EPODE_COND_NONE) {
        const char *text = NULL;
        epode_stanza_cond_t cond = epode_message_error(m, NULL, &text);
        set_field_str(L, "error", epode_stanza_cond_name(cond));
        set_field_str(L, "error_text", text);
    }
    lua_pushvalue(L, 1);
    lua_call(L, 2, 0);
    return 0;
}

static int on_message_c(epode_conn_t *conn, const epode_message_t *m, void *user)
{
    (void)conn;
    client_t *c = user;
    message_call_t mc = {c, m};
    call_protected(c, message_protected, &mc, "on_message");
    return EPODE_PASS;
}

typedef struct event_call {
    client_t *c;
    epode_conn_event_t ev;
} event_call_t;

static int event_protected(lua_State *L)
{
    event_call_t *ec = lua_touserdata(L, 2);
    client_t *c = ec->c;
    lua_getiuservalue(L, 1, UV_ON_EVENT);
    if (!lua_isfunction(L, -1))
        return 0;
    lua_pushstring(L, event_name(ec->ev));
    lua_createtable(L, 0, 4);
    switch (ec->ev) {
    case EPODE_CONN_TLS_UP:
        set_field_str(L, "security", epode_conn_security(c->conn));
        break;
    case EPODE_CONN_READY:
    case EPODE_CONN_RESUMED:
        set_field_str(L, "jid", epode_conn_bound_jid(c->conn));
        break;
    case EPODE_CONN_DISCONNECTED:
        set_field_str(L, "reason", reason_name(epode_conn_reason(c->conn)));
        set_field_str(L, "text", epode_conn_error_text(c->conn));
        if (epode_conn_error(c->conn) < 0)
            set_field_str(L, "error", epode_err_name(epode_conn_error(c->conn)));
        set_field_str(L, "condition", epode_conn_condition(c->conn));
        break;
    default:
        break;
    }
    lua_pushvalue(L, 1);
    lua_call(L, 3, 0);
    return 0;
}

static void on_event_c(epode_conn_t *conn, epode_conn_event_t ev, void *user)
{
    client_t *c = user;
    if (ev == EPODE_CONN_DISCONNECTED) {
        c->ended = 1;
        c->reason = epode_conn_reason(conn);
    }
    event_call_t ec = {c, ev};
    call_protected(c, event_protected, &ec, "on_event");
    /* run() ends here, unless the handler connected again. */
    if (ev == EPODE_CONN_DISCONNECTED && c->running && c->ended)
        epode_ctx_stop(c->ctx);
}

static void log_stderr(void *user, epode_log_level_t level, const char *area, const char *msg)
{
    (void)user;
    (void)level;
    fprintf(stderr, "epode %s: %s\n", area, msg);
}

/* ---- epode.client{...} -------------------------------------------------- */

static const char *opt_string(lua_State *L, int t, const char *key)
{
    int ty = lua_getfield(L, t, key);
    const char *s = NULL;
    if (ty == LUA_TSTRING)
        s = lua_tostring(L, -1); /* stays anchored by the options table */
    else if (ty != LUA_TNIL)
        luaL_error(L, "epode.client: option '%s' must be a string, not %s", key,
                   lua_typename(L, ty));
    lua_pop(L, 1);
    return s;
}

static int opt_bool(lua_State *L, int t, const char *key)
{
    int ty = lua_getfield(L, t, key);
    if (ty != LUA_TNIL && ty != LUA_TBOOLEAN)
        luaL_error(L, "epode.client: option '%s' must be a boolean, not %s", key,
                   lua_typename(L, ty));
    int b = lua_toboolean(L, -1);
    lua_pop(L, 1);
    return b;
}

static const char *const known_options[] = {
    "jid", "password", "server", "port", "ca_file", "direct_tls", "verbose", NULL,
};

static int l_client(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);

    /* Refuse misspelt options instead of ignoring them. */
    lua_pushnil(L);
    while (lua_next(L, 1)) {
        lua_pop(L, 1);
        if (lua_type(L, -1) != LUA_TSTRING)
            return luaL_error(L, "epode.client: option names must be strings");
        const char *k = lua_tostring(L, -1);
        int ok = 0;
        for (const char *const *o = known_options; *o; o++)
            ok |= strcmp(*o, k) == 0;
        if (!ok)
            return luaL_error(L, "epode.client: unknown option '%s'", k);
    }

    const char *jid = opt_string(L, 1, "jid");
    if (!jid)
        return luaL_error(L, "epode.client: option 'jid' is required (a string)");
    const char *password = opt_string(L, 1, "password");
    const char *server = opt_string(L, 1, "server");
    const char *ca_file = opt_string(L, 1, "ca_file");
    int direct_tls = opt_bool(L, 1, "direct_tls");
    int verbose = opt_bool(L, 1, "verbose");
    lua_Integer port = 0;
    int ty = lua_getfield(L, 1, "port");
    if (ty != LUA_TNIL) {
        int isint = 0;
        port = lua_tointegerx(L, -1, &isint);
        if (ty != LUA_TNUMBER || !isint || port < 1 || port > 65535)
            return luaL_error(L, "epode.client: option 'port' must be an integer 1-65535");
    }
    lua_pop(L, 1);

    client_t *c = lua_newuserdatauv(L, sizeof *c, UV_COUNT);
    memset(c, 0, sizeof *c);
    luaL_setmetatable(L, CLIENT_MT); /* from here on __gc frees what is made */

    int rc = epode_ctx_new(NULL, &c->ctx);
    if (rc < 0)
        return raise_epode(L, "epode.client", rc);
    if (verbose)
        epode_ctx_set_log(c->ctx, EPODE_LOG_XML, log_stderr, NULL);
    rc = epode_conn_new(c->ctx, &c->conn);
    if (rc < 0)
        return raise_epode(L, "epode.client", rc);
    epode_conn_set_event_cb(c->conn, on_event_c, c);
    rc = epode_messaging_new(c->conn, &c->msgs);
    if (rc == 0)
        rc = epode_messaging_handler_add(c->msgs, NULL, on_message_c, c, NULL);
    if (rc < 0)
        return raise_epode(L, "epode.client", rc);

    rc = epode_conn_set_jid(c->conn, jid);
    if (rc < 0)
        return luaL_error(L, "epode.client: %s: %s ('%s')", epode_err_name(rc),
                          epode_strerror(rc), jid);
    if (password && (rc = epode_conn_set_password(c->conn, password)) < 0)
        return raise_epode(L, "epode.client", rc);
    if (server || port) {
        const char *host = server;
        epode_jid_t *j = NULL;
        if (!host) { /* a port alone: the JID's domain, on that port */
            rc = epode_jid_new(NULL, jid, &j);
            if (rc < 0)
                return raise_epode(L, "epode.client", rc);
            host = epode_jid_domain(j);
        }
        rc = epode_conn_set_server(c->conn, host, (unsigned)port);
        epode_jid_free(j);
        if (rc < 0)
            return raise_epode(L, "epode.client", rc);
    }
    if (ca_file && (rc = epode_conn_set_ca_file(c->conn, ca_file)) < 0)
        return luaL_error(L, "epode.client: %s: %s ('%s')", epode_err_name(rc),
                          epode_strerror(rc), ca_file);
    if (direct_tls && (rc = epode_conn_set_tls(c->conn, EPODE_TLS_DIRECT)) < 0)
        return raise_epode(L, "epode.client", rc);
    return 1;
}

/* ---- methods ----------------------------------------------------------- */

static int set_handler(lua_State *L, int slot, const char *where)
{
    check_client(L, where);
    if (!lua_isnoneornil(L, 2))
        luaL_checktype(L, 2, LUA_TFUNCTION);
    lua_settop(L, 2);
    lua_setiuservalue(L, 1, slot);
    lua_settop(L, 1);
    return 1; /* the client, for chaining */
}

static int m_on_message(lua_State *L)
{
    return set_handler(L, UV_ON_MESSAGE, "client:on_message");
}

static int m_on_event(lua_State *L)
{
    return set_handler(L, UV_ON_EVENT, "client:on_event");
}

static int m_connect(lua_State *L)
{
    client_t *c = check_client(L, "client:connect");
    int rc = epode_conn_connect(c->conn);
    if (rc < 0)
        return raise_epode(L, "client:connect", rc);
    c->ended = 0;
    c->reason = EPODE_REASON_NONE;
    lua_settop(L, 1);
    return 1;
}

static int m_send_message(lua_State *L)
{
    client_t *c = check_client(L, "client:send_message");
    const char *to = luaL_checkstring(L, 2);
    const char *body = luaL_checkstring(L, 3);
    const char *type = luaL_optstring(L, 4, "chat");
    epode_stanza_t *st;
    int rc = epode_message_build(type, to, body, NULL, NULL, &st);
    if (rc < 0)
        return raise_epode(L, "client:send_message", rc);
    rc = epode_messaging_send(c->msgs, st);
    /* Copy the id out before unref: pushing it may raise (memory), and
     * nothing may be left owned by C when Lua unwinds. */
    char id[128] = "";
    const char *sid = epode_stanza_get_id(st);
    if (rc == 0 && sid && strlen(sid) < sizeof id)
        memcpy(id, sid, strlen(sid) + 1);
    epode_stanza_unref(st);
    if (rc < 0)
        return raise_epode(L, "client:send_message", rc);
    if (id[0])
        lua_pushstring(L, id);
    else
        lua_pushnil(L);
    return 1; /* the message id */
}

/* client:send_presence([show [, status [, priority]]]): show is
 * "available" (the default), "chat", "away", "xa", "dnd" or
 * "unavailable". */
static int m_send_presence(lua_State *L)
{
    client_t *c = check_client(L, "client:send_presence");
    const char *show_name = luaL_optstring(L, 2, "available");
    const char *status = luaL_optstring(L, 3, NULL);
    lua_Integer prio = luaL_optinteger(L, 4, 0);
    epode_show_t show;
    if (epode_show_from_name(show_name, &show) < 0)
        return luaL_error(L, "client:send_presence: INVAL: unknown show '%s' (available, chat, "
                             "away, xa, dnd or unavailable)", show_name);
    if (prio < -128 || prio > 127)
        return luaL_argerror(L, 4, "priority must be -128..127");
    int rc = epode_presence_send(c->conn, show, status, (int)prio);
    if (rc < 0)
        return raise_epode(L, "client:send_presence", rc);
    return 0;
}

static int m_close(lua_State *L)
{
    client_t *c = check_client(L, "client:close");
    int rc = epode_conn_close(c->conn);
    if (rc < 0 && rc != EPODE_ESTATE)
        return raise_epode(L, "client:close", rc);
    lua_pushboolean(L, rc == 0); /* false: there was nothing to close */
    return 1;
}

static int m_stop(lua_State *L)
{
    client_t *c = check_client(L, "client:stop");
    epode_ctx_stop(c->ctx);
    return 0;
}

/* Enters the loop: records the state callbacks will use. */
static client_t *loop_enter(lua_State *L, const char *where)
{
    client_t *c = check_client(L, where);
    if (c->in_loop)
        luaL_error(L, "%s: the client's loop is already running (called from a handler?)",
                   where);
    c->L = L;
    c->self = 1;
    c->in_loop = 1;
    return c;
}

static void loop_leave(client_t *c)
{
    c->L = NULL;
    c->in_loop = 0;
    c->running = 0;
}

static int m_run(lua_State *L)
{
    client_t *c = loop_enter(L, "client:run");
    lua_settop(L, 1);
    c->running = 1;
    int rc = 0;
    if (!c->ended) /* nothing to do after DISCONNECTED until the next connect */
        rc = epode_ctx_run(c->ctx);
    loop_leave(c);
    if (rc < 0)
        return raise_epode(L, "client:run", rc);
    if (!c->ended)
        return 0; /* stopped */
    lua_pushstring(L, reason_name(c->reason));
    lua_pushstring(L, c->conn ? epode_conn_error_text(c->conn) : "");
    return 2; /* why the connection ended, and a sentence */
}

static int m_step(lua_State *L)
{
    lua_Integer t = luaL_optinteger(L, 2, 0);
    if (t < -1 || t > 86400000)
        return luaL_argerror(L, 2, "timeout in milliseconds: -1 (wait) or 0..86400000");
    client_t *c = loop_enter(L, "client:step");
    lua_settop(L, 1);
    int rc = epode_ctx_run_once(c->ctx, (int)t);
    loop_leave(c);
    if (rc < 0)
        return raise_epode(L, "client:step", rc);
    lua_pushinteger(L, rc);
    return 1; /* how many callbacks ran */
}

static int m_bound_jid(lua_State *L)
{
    client_t *c = check_client(L, "client:bound_jid");
    const char *j = epode_conn_bound_jid(c->conn);
    if (j)
        lua_pushstring(L, j);
    else
        lua_pushnil(L);
    return 1;
}

static int m_is_ready(lua_State *L)
{
    client_t *c = check_client(L, "client:is_ready");
    lua_pushboolean(L, epode_conn_is_ready(c->conn));
    return 1;
}

static int m_fd(lua_State *L)
{
    client_t *c = check_client(L, "client:fd");
    lua_pushinteger(L, epode_ctx_fd(c->ctx));
    return 1;
}

static int m_timeout(lua_State *L)
{
    client_t *c = check_client(L, "client:timeout");
    lua_pushinteger(L, epode_ctx_timeout(c->ctx));
    return 1;
}

/* ---- metamethods ------------------------------------------------------- */

static int mm_gc(lua_State *L)
{
    client_t *c = luaL_checkudata(L, 1, CLIENT_MT);
    client_release(c);
    return 0;
}

static int mm_close(lua_State *L)
{
    client_t *c = luaL_checkudata(L, 1, CLIENT_MT);
    if (c->in_loop)
        return luaL_error(L, "client: cannot free a client from inside its own loop");
    client_release(c);
    return 0;
}

static int mm_tostring(lua_State *L)
{
    client_t *c = luaL_checkudata(L, 1, CLIENT_MT);
    if (!c->ctx)
        lua_pushfstring(L, "epode.client (freed): %p", (void *)c);
    else
        lua_pushfstring(L, "epode.client (%s): %p",
                        epode_conn_is_ready(c->conn) ? "ready" : "not ready", (void *)c);
    return 1;
}

/* __index: methods first, then the on_error hook field. */
static int mm_index(lua_State *L)
{
    lua_pushvalue(L, 2);
    if (lua_rawget(L, lua_upvalueindex(1)) != LUA_TNIL)
        return 1;
    if (lua_type(L, 2) == LUA_TSTRING && strcmp(lua_tostring(L, 2), "on_error") == 0) {
        lua_getiuservalue(L, 1, UV_ON_ERROR);
        return 1;
    }
    lua_pushnil(L);
    return 1;
}

/* __newindex: only `client.on_error = function(message, where, traceback)`. */
static int mm_newindex(lua_State *L)
{
    if (lua_type(L, 2) != LUA_TSTRING || strcmp(lua_tostring(L, 2), "on_error") != 0)
        return luaL_error(L, "epode client: cannot set field '%s' (only on_error can be set)",
                          luaL_tolstring(L, 2, NULL));
    if (!lua_isnil(L, 3) && !lua_isfunction(L, 3))
        return luaL_error(L, "epode client: on_error must be a function or nil, not %s",
                          luaL_typename(L, 3));
    lua_settop(L, 3);
    lua_setiuservalue(L, 1, UV_ON_ERROR);
    return 0;
}

static const luaL_Reg client_methods[] = {
    {"on_message", m_on_message},
    {"on_event", m_on_event},
    {"connect", m_connect},
    {"send_message", m_send_message},
    {"send_presence", m_send_presence},
    {"close", m_close},
    {"stop", m_stop},
    {"run", m_run},
    {"step", m_step},
    {"bound_jid", m_bound_jid},
    {"is_ready", m_is_ready},
    {"fd", m_fd},
    {"timeout", m_timeout},
    {NULL, NULL},
};

static const luaL_Reg module_funcs[] = {
    {"client", l_client},
    {NULL, NULL},
};

EPODE_API int luaopen_epode(lua_State *L);

EPODE_API int luaopen_epode(lua_State *L)
{
    int rc = epode_global_init();
    if (rc < 0)
        return raise_epode(L, "require 'epode'", rc);

    if (luaL_newmetatable(L, CLIENT_MT)) {
        luaL_newlib(L, client_methods);
        lua_pushcclosure(L, mm_index, 1);
        lua_setfield(L, -2, "__index");
        lua_pushcfunction(L, mm_newindex);
        lua_setfield(L, -2, "__newindex");
        lua_pushcfunction(L, mm_gc);
        lua_setfield(L, -2, "__gc");
        lua_pushcfunction(L, mm_close);
        lua_setfield(L, -2, "__close");
        lua_pushcfunction(L, mm_tostring);
        lua_setfield(L, -2, "__tostring");
        lua_pushliteral(L, "epode.client");
        lua_setfield(L, -2, "__name");
        lua_pushboolean(L, 0);
        lua_setfield(L, -2, "__metatable"); /* getmetatable() can't tamper */
    }
    lua_pop(L, 1);

    luaL_newlib(L, module_funcs);
    lua_pushstring(L, epode_version());
    lua_setfield(L, -2, "version");
    return 1;
}
