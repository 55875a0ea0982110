/* epode_lua.c — the Lua 5.4 module: `local epode = require "epode"`.
 *
 *   local c = epode.client{ jid = "bot@example.org", password = "pw",
 *                           server = nil, port = nil, ca_file = nil,
 *                           direct_tls = false, verbose = false,
 *                           reconnect = false, reconnect_min = 1, reconnect_max = 60,
 *                           proxy = nil,   -- "socks5://[u:p@]host[:port]" | "http://…"
 *                           websocket = nil, -- "wss://host[:port]/path" | "ws://…" (RFC 7395)
 *                           bosh = nil }  -- "https://host[:port]/path" | "http://…" (XEP-0206)
 *        (reconnect: epode_conn_set_reconnect(), bounds in seconds; run()
 *        goes on through a cut that will be repaired)
 *   c:on_message(function(msg, client) ... end)   -- msg.from/.to/.type/.body/
 *                                                 -- .id/.subject/.thread/.stanza
 *   c:on_presence(function(st, client) ... end)   -- raw stanzas; returning
 *   c:on_iq(function(st, client) ... end)         -- true means handled
 *        (they see every presence and IQ, MUC presences and IQ results
 *        included; an IQ get or set nobody handles gets service-unavailable)
 *   c:on_event(function(name, info, client) ... end)  -- names and reasons
 *        from epode_conn_event_name() / epode_disconnect_reason_name()
 *   Every c:on_*(f) adds a handler and returns its id; c:remove(id)
 *   removes it. All handlers of a kind run, in the order added.
 *   c.on_error = function(message, where, traceback) ... end
 *   c:connect(); c:run()            -- or c:step(ms) from a loop of your own
 *   c:send_message(to, body [, type]) -> id;  c:send_presence([show [, status [, prio]]])
 *   c:send(stanza or "<xml/>") -> id;  c:close();  c:stop()
 *   c:bound_jid(), c:is_ready(), c:fd(), c:timeout()
 *
 * Multi-user chat (rooms are named by their bare JID; the MUC helper is
 * made on first use):
 *   c:on_muc(function(ev, client) ... end)  -- ev.type: "joined", "message",
 *        "private", "subject", "occupant_joined", "occupant_changed",
 *        "occupant_left", "error", "left"; ev.room, .nick, .body, .subject,
 *        .is_self, .is_history, .occupant, .condition, .fatal, .stanza ...
 *   c:join(room, nick [, password | {password=, history=, history_seconds=}])
 *   c:leave(room [, status]) -> false if not in it;  c:send_groupchat(room, body)
 *   c:send_private(room, nick, body);  c:set_subject(room, subject)
 *   c:occupants(room) -> { {nick=, jid=, role=, affiliation=, show=, status=,
 *                           is_self=}, ... } or nil;  c:room(room) -> table or nil
 *   c:muc_nick_retry(max_tries [, suffix])
 *
 * In-band registration (XEP-0077; the helper is made on first use):
 *   epode.register{ jid =, password =, server =, port =, ca_file =,
 *                   direct_tls =, fill = } -> true | nil, condition, text
 *        (blocking: its own client with register = true; condition as the
 *        server said it, "conflict" for a taken name, "not-allowed" when
 *        registration is closed, or an epode error name)
 *   epode.client{ ..., register = true }: the stream stops after TLS;
 *   c:register(username, password, done [, fill]) once "ready"
 *   c:change_password(new, done [, old]);  c:unregister(done)  (logged in)
 *        done(ok, condition, text, client); fill(fields, client) returns
 *        { var = value } for the fields the server still wants ({var=,
 *        type=, label=, required=, value=, media={uri...}}), nil gives up
 *
 * Message features, blocking, client state and the archive: see
 * epode_lua_modern.c (msg.replace_id, .reactions, .reply_body, ...;
 * epode.reactions(...) and friends; c:block(jid [, done]), c:blocklist(),
 * c:set_active(bool), c:mam_fetch({with=, start=, max=...}, fn)),
 * XEP-0199 and XEP-0092: c:ping(jid, done [, timeout]), c:set_version(name,
 * version [, os]), c:version(jid, done [, timeout]).
 *
 * Stanzas (userdata "epode.stanza": an element plus a reference on its
 * tree, so any element keeps the whole tree alive):
 *   epode.stanza(name [, ns] [, attrs]);  epode.parse("<xml/>")
 *   st.name, st.ns, st.text, st.attrs, st.parent;  st:attr(name [, ns])
 *   st:child([name [, ns]]);  for ch in st:children([name [, ns]]) do ... end
 *   st:add(name [, ns] [, attrs]) -> child;  st:add(other_stanza) -> copy
 *   st:set_attr(name, value_or_nil), st:set_text(s), st:add_text(s) -> st
 *   st:copy(), st:reply(), st:error_reply(condition [, text]);  tostring(st)
 * Stanzas handed to handlers are read-only (other handlers see the same
 * tree after this one): st:copy() gives a writable one.
 *
 * Ownership. Each client is one full userdata that owns its own context,
 * connection, messaging helper and (once used) MUC helper; __gc (and
 * __close) free them, helpers before the connection, closing the socket
 * at once without events. Only the client's own methods drive
 * its context, and every one of them holds the userdata on its stack
 * while epode runs, so a client can never be collected while epode is
 * inside it and no pinning is needed; a client dropped while connected
 * is simply disconnected by the collector. Handlers are kept as the
 * userdata's user values (never registry references), so a handler that
 * captures its own client makes an ordinary cycle the collector frees.
 * A stanza userdata owns one reference on its tree, dropped by __gc; a
 * userdata is always made (with a NULL element) before the tree it will
 * own, so a Lua error can never leave a tree without an owner.
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

#include "../../examples/common/fast_file.h"

#define CLIENT_MT "epode.client"
#define STANZA_MT "epode.stanza"

/* User value slots of a client userdata. */
enum {
    UV_ON_MESSAGE = 1,
    UV_ON_EVENT,
    UV_ON_ERROR,
    UV_ON_PRESENCE,
    UV_ON_IQ,
    UV_ON_MUC,
    UV_ON_BLOCKING, /* UV_ON_*: lists of handlers, see add_handler() */
    UV_ON_REGISTER, /* the pending registration request's callback */
    UV_REG_FILL,    /* ...and its form-filling function */
    UV_MODERN,      /* blocking handler and pending requests (epode_lua_modern.c) */
    UV_ON_PEP,      /* on_pep handlers (epode_lua_pep.c) */
    UV_COUNT = UV_ON_PEP
};

typedef struct client {
    epode_ctx_t *ctx;
    epode_conn_t *conn;
    epode_messaging_t *msgs;
    epode_muc_t *muc; /* made on first use (join, on_muc) */
    epode_register_t *reg; /* made on first use (register, change_password, unregister) */
    epode_blocking_t *blocking; /* these three: made on first use (epode_lua_modern.c) */
    epode_csi_t *csi;
    epode_mam_t *mam;
    epode_ping_t *ping;                 /* made on first c:ping() */
    epode_software_version_t *version;  /* made on first c:set_version() or c:version() */
    epode_upload_t *upload;  /* made on first c:upload() (epode_lua_upload.c) */
    fast_file_t *fast;       /* option fast_token_file (epode_lua_fast.c), or NULL */
    epode_disco_t *disco;        /* these two: made on first use of ad-hoc */
    epode_commands_t *commands;  /* commands (epode_lua_commands.c) */
    struct lua_pep *pep;         /* PEP helpers, made on first use (epode_lua_pep.c) */
    lua_Integer next_req;  /* ids of pending requests in the UV_MODERN table */
    lua_Integer next_handler; /* the last handler id given (c:on_*(), c:remove()) */
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

/* Names come from the C library's epode_*_name() functions, so Lua,
 * Python and C programs see the same words ("tls_up", "stream_error"). */
static const char *reason_name(epode_disconnect_reason_t r)
{
    const char *n = epode_disconnect_reason_name(r);
    return n ? n : "unknown";
}

static const char *event_name(epode_conn_event_t ev)
{
    const char *n = epode_conn_event_name(ev);
    return n ? n : "unknown";
}

static void set_field_str(lua_State *L, const char *key, const char *value)
{
    if (value) {
        lua_pushstring(L, value);
        lua_setfield(L, -2, key);
    }
}

static void pep_release(client_t *c); /* epode_lua_pep.c */

/* Frees everything the client owns (no events). Idempotent. */
static void client_release(client_t *c)
{
    pep_release(c); /* before the disco helper its caps helper sits on */
    epode_register_free(c->reg);
    c->reg = NULL;
    epode_commands_free(c->commands); /* open sessions end, pending requests told nothing */
    c->commands = NULL;
    epode_disco_free(c->disco);
    c->disco = NULL;
    epode_blocking_free(c->blocking); /* pending requests are told nothing (not in the loop) */
    c->blocking = NULL;
    epode_mam_free(c->mam);
    c->mam = NULL;
    epode_ping_free(c->ping); /* pending requests are told nothing (not in the loop) */
    c->ping = NULL;
    epode_software_version_free(c->version);
    c->version = NULL;
    epode_upload_free(c->upload); /* pending uploads are told nothing (not in the loop) */
    c->upload = NULL;
    epode_csi_free(c->csi);
    c->csi = NULL;
    epode_muc_free(c->muc);
    c->muc = NULL;
    epode_messaging_free(c->msgs);
    c->msgs = NULL;
    epode_conn_free(c->conn);
    c->conn = NULL;
    fast_file_free(c->fast); /* after the connection: it calls into it */
    c->fast = NULL;
    if (c->ctx)
        epode_ctx_free(c->ctx);
    c->ctx = NULL;
}

/* Raises "<where>: <NAME>: <text> ('<about>')". */
static int raise_epode_about(lua_State *L, const char *where, int rc, const char *about)
{
    return luaL_error(L, "%s: %s: %s ('%s')", where, epode_err_name(rc), epode_strerror(rc),
                      about);
}

/* A string argument that C can take as a C string: XML cannot carry NUL
 * anyway, and a silently truncated value would be worse than an error. */
static const char *check_cstr(lua_State *L, int idx)
{
    size_t len;
    const char *s = luaL_checklstring(L, idx, &len);
    if (strlen(s) != len)
        luaL_argerror(L, idx, "string contains a NUL byte");
    return s;
}

static const char *opt_cstr(lua_State *L, int idx)
{
    return lua_isnoneornil(L, idx) ? NULL : check_cstr(L, idx);
}

/* ---- stanzas ------------------------------------------------------------ */

typedef struct lstanza {
    epode_stanza_t *el; /* one reference on its tree; NULL only while being made */
    int readonly;       /* received: shared with epode and the other handlers */
} lstanza_t;

/* Pushes an empty stanza userdata. It is made, with its metatable, before
 * the tree it will own, so whatever raises afterwards leaves the tree to
 * __gc. */
static lstanza_t *new_box(lua_State *L, int readonly)
{
    lstanza_t *b = lua_newuserdatauv(L, sizeof *b, 0);
    b->el = NULL;
    b->readonly = readonly;
    luaL_setmetatable(L, STANZA_MT);
    return b;
}

/* Pushes a stanza userdata for `el`, taking a reference on its tree. */
static void push_stanza(lua_State *L, epode_stanza_t *el, int readonly)
{
    lstanza_t *b = new_box(L, readonly);
    b->el = epode_stanza_ref(el);
}

static lstanza_t *check_stanza(lua_State *L, int idx)
{
    lstanza_t *b = luaL_checkudata(L, idx, STANZA_MT);
    if (!b->el)
        luaL_argerror(L, idx, "empty stanza");
    return b;
}

static epode_stanza_t *check_writable(lua_State *L, const char *where)
{
    lstanza_t *b = check_stanza(L, 1);
    if (b->readonly)
        luaL_error(L, "%s: the stanza is read-only (it was received; st:copy() gives a "
                      "writable copy)", where);
    return b->el;
}

/* Sets the attributes in table `t` on `el`, in name order so that the
 * text form does not depend on the table's iteration order. Values are
 * strings or numbers. */
static void set_attrs_from(lua_State *L, epode_stanza_t *el, int t, const char *where)
{
    t = lua_absindex(L, t);
    size_t n = 0;
    lua_pushnil(L);
    while (lua_next(L, t)) {
        lua_pop(L, 1);
        if (lua_type(L, -1) != LUA_TSTRING)
            luaL_error(L, "%s: attribute names must be strings, not %s", where,
                       luaL_typename(L, -1));
        n++;
    }
    if (n == 0)
        return;
    /* The names stay anchored by the table while they are sorted and set. */
    const char **names = lua_newuserdatauv(L, n * sizeof *names, 0);
    size_t i = 0;
    lua_pushnil(L);
    while (lua_next(L, t)) {
        lua_pop(L, 1);
        names[i++] = lua_tostring(L, -1);
    }
    for (size_t a = 1; a < n; a++) /* insertion sort: a handful of names */
        for (size_t b = a; b > 0 && strcmp(names[b - 1], names[b]) > 0; b--) {
            const char *tmp = names[b];
            names[b] = names[b - 1];
            names[b - 1] = tmp;
        }
    for (i = 0; i < n; i++) {
        int ty = lua_getfield(L, t, names[i]);
        if (ty != LUA_TSTRING && ty != LUA_TNUMBER)
            luaL_error(L, "%s: attribute '%s' must be a string or a number, not %s", where,
                       names[i], lua_typename(L, ty));
        size_t len;
        const char *v = lua_tolstring(L, -1, &len); /* a copy: converting is harmless */
        if (strlen(v) != len)
            luaL_error(L, "%s: attribute '%s' contains a NUL byte", where, names[i]);
        int rc = epode_stanza_set_attr(el, names[i], v);
        if (rc < 0)
            raise_epode_about(L, where, rc, names[i]);
        lua_pop(L, 1);
    }
    lua_pop(L, 1); /* names */
}

/* Reads the optional (ns, attrs) arguments starting at `idx`: ns may be
 * left out when a table follows. Returns the ns, sets *attrs to the
 * table's index or 0. */
static const char *ns_and_attrs(lua_State *L, int idx, int *attrs)
{
    *attrs = 0;
    if (lua_istable(L, idx) && lua_isnoneornil(L, idx + 1)) {
        *attrs = idx;
        return NULL;
    }
    const char *ns = opt_cstr(L, idx);
    if (!lua_isnoneornil(L, idx + 1)) {
        luaL_checktype(L, idx + 1, LUA_TTABLE);
        *attrs = idx + 1;
    }
    return ns;
}

/* epode.stanza(name [, ns] [, attrs]): a new tree with one element. */
static int l_stanza(lua_State *L)
{
    const char *name = check_cstr(L, 1);
    int attrs;
    const char *ns = ns_and_attrs(L, 2, &attrs);
    lstanza_t *b = new_box(L, 0);
    int rc = epode_stanza_new(NULL, name, ns, &b->el);
    if (rc < 0)
        return raise_epode_about(L, "epode.stanza", rc, name);
    if (attrs)
        set_attrs_from(L, b->el, attrs, "epode.stanza");
    return 1;
}

/* Parses the string at `idx` into a new stanza userdata, pushed. */
static lstanza_t *parse_into_box(lua_State *L, int idx, const char *where)
{
    size_t len;
    const char *text = luaL_checklstring(L, idx, &len);
    lstanza_t *b = new_box(L, 0);
    epode_stream_cond_t cond = EPODE_STREAM_NONE;
    int rc = epode_stanza_from_text(NULL, text, len, &b->el, &cond);
    if (rc < 0) {
        if (cond != EPODE_STREAM_NONE && epode_stream_cond_name(cond))
            luaL_error(L, "%s: %s: %s (%s)", where, epode_err_name(rc), epode_strerror(rc),
                       epode_stream_cond_name(cond));
        raise_epode(L, where, rc);
    }
    return b;
}

/* epode.parse(text): one complete element, as a new tree. */
static int l_parse(lua_State *L)
{
    parse_into_box(L, 1, "epode.parse");
    return 1;
}

/* st:attr(name [, ns]) */
static int s_attr(lua_State *L)
{
    lstanza_t *b = check_stanza(L, 1);
    const char *name = check_cstr(L, 2);
    const char *v = lua_isnoneornil(L, 3)
                        ? epode_stanza_get_attr(b->el, name)
                        : epode_stanza_get_attr_ns(b->el, name, check_cstr(L, 3));
    if (v)
        lua_pushstring(L, v);
    else
        lua_pushnil(L);
    return 1;
}

/* st:child([name [, ns]]): the first matching child element, or nil. */
static int s_child(lua_State *L)
{
    lstanza_t *b = check_stanza(L, 1);
    const char *name = opt_cstr(L, 2);
    const char *ns = opt_cstr(L, 3);
    epode_stanza_t *ch = epode_stanza_find_child(b->el, name, ns);
    if (ch)
        push_stanza(L, ch, b->readonly);
    else
        lua_pushnil(L);
    return 1;
}

/* The iterator st:children() returns. Upvalues: the parent userdata
 * (which keeps the tree alive, so the element pointer in upvalue 4 stays
 * valid: elements live as long as their tree), the name and ns filters,
 * and the next element to give (nil at the end). */
static int children_iter(lua_State *L)
{
    epode_stanza_t *next = lua_touserdata(L, lua_upvalueindex(4));
    if (!next)
        return 0;
    lstanza_t *parent = lua_touserdata(L, lua_upvalueindex(1));
    const char *name = lua_tostring(L, lua_upvalueindex(2));
    const char *ns = lua_tostring(L, lua_upvalueindex(3));
    push_stanza(L, next, parent->readonly);
    epode_stanza_t *after = epode_stanza_find_next(next, name, ns);
    if (after)
        lua_pushlightuserdata(L, after);
    else
        lua_pushnil(L);
    lua_replace(L, lua_upvalueindex(4));
    return 1;
}

/* st:children([name [, ns]]): an iterator over matching child elements. */
static int s_children(lua_State *L)
{
    lstanza_t *b = check_stanza(L, 1);
    const char *name = opt_cstr(L, 2);
    const char *ns = opt_cstr(L, 3);
    lua_settop(L, 3);
    epode_stanza_t *first = epode_stanza_find_child(b->el, name, ns);
    if (first)
        lua_pushlightuserdata(L, first);
    else
        lua_pushnil(L);
    lua_pushcclosure(L, children_iter, 4);
    return 1;
}

/* st:add(name [, ns] [, attrs]) or st:add(other): appends a new child (a
 * NULL ns takes the parent's) or a copy of another stanza; returns it. */
static int s_add(lua_State *L)
{
    epode_stanza_t *el = check_writable(L, "stanza:add");
    epode_stanza_t *ch = NULL;
    int rc;
    if (lua_isuserdata(L, 2)) {
        lstanza_t *other = check_stanza(L, 2);
        rc = epode_stanza_add_child(el, other->el, &ch);
        if (rc < 0)
            return raise_epode(L, "stanza:add", rc);
    } else {
        const char *name = check_cstr(L, 2);
        int attrs;
        const char *ns = ns_and_attrs(L, 3, &attrs);
        rc = epode_stanza_add_child_new(el, name, ns, &ch);
        if (rc < 0)
            return raise_epode_about(L, "stanza:add", rc, name);
        if (attrs)
            set_attrs_from(L, ch, attrs, "stanza:add");
    }
    push_stanza(L, ch, 0);
    return 1;
}

/* st:set_attr(name, value): nil removes. Returns st. */
static int s_set_attr(lua_State *L)
{
    epode_stanza_t *el = check_writable(L, "stanza:set_attr");
    const char *name = check_cstr(L, 2);
    const char *value = NULL;
    if (!lua_isnoneornil(L, 3)) {
        if (lua_type(L, 3) != LUA_TNUMBER)
            luaL_checktype(L, 3, LUA_TSTRING);
        value = check_cstr(L, 3);
    }
    int rc = epode_stanza_set_attr(el, name, value);
    if (rc < 0)
        return raise_epode_about(L, "stanza:set_attr", rc, name);
    lua_settop(L, 1);
    return 1;
}

/* st:set_text(s): replaces the children with this text. Returns st. */
static int s_set_text(lua_State *L)
{
    epode_stanza_t *el = check_writable(L, "stanza:set_text");
    const char *text = check_cstr(L, 2);
    int rc = epode_stanza_set_text(el, text);
    if (rc < 0)
        return raise_epode(L, "stanza:set_text", rc);
    lua_settop(L, 1);
    return 1;
}

/* st:add_text(s): appends text after the last child. Returns st. */
static int s_add_text(lua_State *L)
{
    epode_stanza_t *el = check_writable(L, "stanza:add_text");
    size_t len;
    const char *text = luaL_checklstring(L, 2, &len);
    int rc = epode_stanza_add_text(el, text, len);
    if (rc < 0)
        return raise_epode(L, "stanza:add_text", rc);
    lua_settop(L, 1);
    return 1;
}

/* st:copy(): a deep copy of the element and its subtree, as a new tree. */
static int s_copy(lua_State *L)
{
    lstanza_t *src = check_stanza(L, 1);
    lstanza_t *b = new_box(L, 0);
    int rc = epode_stanza_copy(src->el, &b->el);
    if (rc < 0)
        return raise_epode(L, "stanza:copy", rc);
    return 1;
}

/* st:reply(): to/from swapped, same id, an IQ get/set becomes result. */
static int s_reply(lua_State *L)
{
    lstanza_t *src = check_stanza(L, 1);
    lstanza_t *b = new_box(L, 0);
    int rc = epode_stanza_reply(src->el, &b->el);
    if (rc < 0)
        return raise_epode(L, "stanza:reply", rc);
    return 1;
}

/* st:error_reply(condition [, text]): an RFC 6120 error reply. */
static int s_error_reply(lua_State *L)
{
    lstanza_t *src = check_stanza(L, 1);
    const char *name = check_cstr(L, 2);
    const char *text = opt_cstr(L, 3);
    epode_stanza_cond_t cond = epode_stanza_cond_from_name(name);
    if (cond == EPODE_COND_NONE)
        return luaL_error(L, "stanza:error_reply: INVAL: unknown condition '%s'", name);
    lstanza_t *b = new_box(L, 0);
    int rc = epode_stanza_error_reply(src->el, cond, EPODE_ERRTYPE_DEFAULT, text, 0, &b->el);
    if (rc < 0)
        return raise_epode(L, "stanza:error_reply", rc);
    return 1;
}

/* Pushes a string epode allocated and frees it, without leaking it when
 * pushing fails: the push runs protected, the error is raised after. */
static int push_owned_protected(lua_State *L)
{
    const char *s = lua_touserdata(L, 1);
    size_t len = (size_t)lua_tointeger(L, 2);
    lua_pushlstring(L, s, len);
    return 1;
}

static void push_owned(lua_State *L, char *s, size_t len)
{
    lua_pushcfunction(L, push_owned_protected);
    lua_pushlightuserdata(L, s);
    lua_pushinteger(L, (lua_Integer)len);
    int rc = lua_pcall(L, 2, 1, 0);
    epode_free(s);
    if (rc != LUA_OK)
        lua_error(L);
}

static int sm_tostring(lua_State *L)
{
    lstanza_t *b = check_stanza(L, 1);
    luaL_checkstack(L, 4, NULL); /* before anything is owned */
    char *text;
    size_t len;
    int rc = epode_stanza_to_text(b->el, 0, &text, &len);
    if (rc < 0)
        return raise_epode(L, "tostring(stanza)", rc);
    push_owned(L, text, len);
    return 1;
}

/* st.attrs: the attributes as a table; "xml:lang" for xml:lang, and
 * "{ns}name" for any other attribute in a namespace. */
static void push_attrs(lua_State *L, const epode_stanza_t *el)
{
    size_t n = epode_stanza_attr_count(el);
    lua_createtable(L, 0, (int)(n < 64 ? n : 64));
    for (size_t i = 0; i < n; i++) {
        const char *name, *ns, *value;
        if (epode_stanza_attr_at(el, i, &name, &ns, &value) < 0)
            break;
        if (!ns)
            lua_pushstring(L, name);
        else if (strcmp(ns, EPODE_NS_XML) == 0)
            lua_pushfstring(L, "xml:%s", name);
        else
            lua_pushfstring(L, "{%s}%s", ns, name);
        lua_pushstring(L, value);
        lua_rawset(L, -3);
    }
}

/* __index: methods, then the read-only fields name, ns, text, attrs and
 * parent. */
static int sm_index(lua_State *L)
{
    lstanza_t *b = check_stanza(L, 1);
    lua_pushvalue(L, 2);
    if (lua_rawget(L, lua_upvalueindex(1)) != LUA_TNIL)
        return 1;
    if (lua_type(L, 2) != LUA_TSTRING)
        return 1; /* nil */
    const char *k = lua_tostring(L, 2);
    const char *v = NULL;
    if (strcmp(k, "name") == 0) {
        v = epode_stanza_get_name(b->el);
    } else if (strcmp(k, "ns") == 0) {
        v = epode_stanza_get_ns(b->el);
    } else if (strcmp(k, "text") == 0) {
        if (!(v = epode_stanza_get_text(b->el)))
            return raise_epode(L, "stanza.text", EPODE_ENOMEM);
    } else if (strcmp(k, "attrs") == 0) {
        push_attrs(L, b->el);
        return 1;
    } else if (strcmp(k, "parent") == 0) {
        epode_stanza_t *p = epode_stanza_get_parent(b->el);
        if (p)
            push_stanza(L, p, b->readonly);
        else
            lua_pushnil(L);
        return 1;
    }
    if (v)
        lua_pushstring(L, v);
    else
        lua_pushnil(L);
    return 1;
}

static int sm_newindex(lua_State *L)
{
    return luaL_error(L, "epode stanza: cannot set field '%s' (use set_attr, set_text or add)",
                      luaL_tolstring(L, 2, NULL));
}

/* Two userdata are equal when they stand for the same element. */
static int sm_eq(lua_State *L)
{
    lstanza_t *a = luaL_testudata(L, 1, STANZA_MT);
    lstanza_t *b = luaL_testudata(L, 2, STANZA_MT);
    lua_pushboolean(L, a && b && a->el == b->el);
    return 1;
}

static int sm_gc(lua_State *L)
{
    lstanza_t *b = luaL_checkudata(L, 1, STANZA_MT);
    epode_stanza_unref(b->el);
    b->el = NULL;
    return 0;
}

static const luaL_Reg stanza_methods[] = {
    {"attr", s_attr},
    {"child", s_child},
    {"children", s_children},
    {"add", s_add},
    {"set_attr", s_set_attr},
    {"set_text", s_set_text},
    {"add_text", s_add_text},
    {"copy", s_copy},
    {"reply", s_reply},
    {"error_reply", s_error_reply},
    {NULL, NULL},
};

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

/* Runs the handlers listed in user value `slot` (see add_handler), in
 * the order they were added: make_args(client, data), protected, pushes
 * the arguments they all get; each handler then runs as fn(args...,
 * client) under its own pcall, a failure reported and the next one run.
 * The list is a snapshot (adding and removing replace it); a handler
 * removed meanwhile is marked and skipped. Returns 1 if any handler
 * returned a true value (handled). */
static int dispatch(client_t *c, int slot, lua_CFunction make_args, void *data, const char *where)
{
    lua_State *L = c->L;
    if (!L || !lua_checkstack(L, 16)) {
        fprintf(stderr, "epode: cannot run the %s handler (no Lua stack)\n", where);
        return 0;
    }
    int top = lua_gettop(L), handled = 0;
    lua_pushcfunction(L, handler_msgh); /* top + 1 */
    int base = top + 2;                 /* the list */
    if (lua_getiuservalue(L, c->self, slot) != LUA_TTABLE || lua_rawlen(L, base) == 0) {
        lua_settop(L, top);
        return 0; /* no handler: nothing built */
    }
    lua_Integer n = (lua_Integer)lua_rawlen(L, base);
    lua_pushcfunction(L, make_args);
    lua_pushvalue(L, c->self);
    lua_pushlightuserdata(L, data);
    if (lua_pcall(L, 2, LUA_MULTRET, top + 1) != LUA_OK) {
        report_error(c, where);
        lua_settop(L, top);
        return 0;
    }
    int nargs = lua_gettop(L) - base;
    if (!lua_checkstack(L, nargs + 8)) {
        lua_settop(L, top);
        fprintf(stderr, "epode: cannot run the %s handler (no Lua stack)\n", where);
        return 0;
    }
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, base, i); /* { id, fn (false once removed) } */
        lua_rawgeti(L, -1, 2);
        lua_remove(L, -2);
        if (!lua_isfunction(L, -1)) {
            lua_settop(L, base + nargs);
            continue;
        }
        for (int a = 1; a <= nargs; a++)
            lua_pushvalue(L, base + a);
        lua_pushvalue(L, c->self);
        if (lua_pcall(L, nargs + 1, 1, top + 1) == LUA_OK)
            handled |= lua_toboolean(L, -1);
        else
            report_error(c, where);
        lua_settop(L, base + nargs);
    }
    lua_settop(L, top);
    return handled;
}

static void push_message_features(lua_State *L, const epode_message_t *m);

typedef struct message_call {
    client_t *c;
    const epode_message_t *m;
} message_call_t;

/* Protected: the message table every on_message handler gets. */
static int message_args(lua_State *L)
{
    message_call_t *mc = lua_touserdata(L, 2);
    const epode_message_t *m = mc->m;
    lua_createtable(L, 0, 8);
    set_field_str(L, "from", epode_message_from(m));
    set_field_str(L, "to", epode_message_to(m));
    set_field_str(L, "type", epode_message_type(m));
    set_field_str(L, "body", epode_message_body(m, NULL));
    set_field_str(L, "id", epode_message_id(m));
    set_field_str(L, "subject", epode_message_subject(m, NULL));
    set_field_str(L, "thread", epode_message_thread(m));
    push_message_features(L, m);
    if (epode_message_error(m, NULL, NULL) != EPODE_COND_NONE) {
        const char *text = NULL;
        epode_stanza_cond_t cond = epode_message_error(m, NULL, &text);
        set_field_str(L, "error", epode_stanza_cond_name(cond));
        set_field_str(L, "error_text", text);
    }
    push_stanza(L, epode_message_stanza(m), 1);
    lua_setfield(L, -2, "stanza");
    return 1;
}

static int on_message_c(epode_conn_t *conn, const epode_message_t *m, void *user)
{
    (void)conn;
    client_t *c = user;
    message_call_t mc = {c, m};
    if (c->mam && epode_mam_is_duplicate(c->mam, epode_message_stanza(m)))
        return EPODE_HANDLED; /* c:catch_up() handed it over already */
    return dispatch(c, UV_ON_MESSAGE, message_args, &mc, "on_message") ? EPODE_HANDLED
                                                                        : EPODE_PASS;
}

typedef struct event_call {
    client_t *c;
    epode_conn_event_t ev;
} event_call_t;

/* Protected: the name and info table every on_event handler gets. */
static int event_args(lua_State *L)
{
    event_call_t *ec = lua_touserdata(L, 2);
    client_t *c = ec->c;
    lua_pushstring(L, event_name(ec->ev));
    lua_createtable(L, 0, 4);
    switch (ec->ev) {
    case EPODE_CONN_TLS_UP:
        set_field_str(L, "security", epode_conn_security(c->conn));
        break;
    case EPODE_CONN_READY:
    case EPODE_CONN_RESUMED:
        set_field_str(L, "jid", epode_conn_bound_jid(c->conn));
        /* by now it names the login too ("... SASL2 HT-SHA-256-EXPR") */
        set_field_str(L, "security", epode_conn_security(c->conn));
        break;
    case EPODE_CONN_DISCONNECTED:
        set_field_str(L, "reason", reason_name(epode_conn_reason(c->conn)));
        set_field_str(L, "text", epode_conn_error_text(c->conn));
        if (epode_conn_error(c->conn) < 0)
            set_field_str(L, "error", epode_err_name(epode_conn_error(c->conn)));
        set_field_str(L, "condition", epode_conn_condition(c->conn));
        lua_pushboolean(L, epode_conn_will_reconnect(c->conn));
        lua_setfield(L, -2, "reconnecting");
        break;
    default:
        break;
    }
    return 2;
}

static void on_event_c(epode_conn_t *conn, epode_conn_event_t ev, void *user)
{
    client_t *c = user;
    if (ev == EPODE_CONN_FREED)
        return; /* the client is being collected: nobody to tell */
    /* A cut that automatic reconnection will repair is no end: run()
     * goes on (the handlers still hear "disconnected", info.reconnecting). */
    if (ev == EPODE_CONN_DISCONNECTED && !epode_conn_will_reconnect(conn)) {
        c->ended = 1;
        c->reason = epode_conn_reason(conn);
    }
    event_call_t ec = {c, ev};
    dispatch(c, UV_ON_EVENT, event_args, &ec, "on_event");
    /* run() ends here, unless the handler connected again. */
    if (ev == EPODE_CONN_DISCONNECTED && c->running && c->ended)
        epode_ctx_stop(c->ctx);
}

/* Raw presence and IQ handlers: fn(stanza, client); a true result means
 * handled (an IQ get or set nobody handles is answered
 * service-unavailable by epode). */
static int stanza_args(lua_State *L)
{
    push_stanza(L, lua_touserdata(L, 2), 1);
    return 1;
}

static int on_stanza_c(client_t *c, epode_stanza_t *st, int slot, const char *where)
{
    return dispatch(c, slot, stanza_args, st, where) ? EPODE_HANDLED : EPODE_PASS;
}

static int on_presence_c(epode_conn_t *conn, epode_stanza_t *st, void *user)
{
    (void)conn;
    return on_stanza_c(user, st, UV_ON_PRESENCE, "on_presence");
}

static int on_iq_c(epode_conn_t *conn, epode_stanza_t *st, void *user)
{
    (void)conn;
    return on_stanza_c(user, st, UV_ON_IQ, "on_iq");
}

/* MUC room events: fn(event, client). */
static const char *muc_event_name(epode_muc_event_type_t t)
{
    const char *n = epode_muc_event_type_name(t);
    return n ? n : "unknown";
}

static void set_field_bool(lua_State *L, const char *key, int value)
{
    lua_pushboolean(L, value);
    lua_setfield(L, -2, key);
}

static void push_occupant(lua_State *L, const epode_muc_occupant_t *o)
{
    lua_createtable(L, 0, 7);
    set_field_str(L, "nick", o->nick);
    set_field_str(L, "jid", o->jid);
    set_field_str(L, "role", o->role);
    set_field_str(L, "affiliation", o->affiliation);
    set_field_str(L, "show", o->show);
    set_field_str(L, "status", o->status);
    set_field_bool(L, "is_self", o->is_self);
}

typedef struct muc_call {
    client_t *c;
    const epode_muc_event_t *ev;
} muc_call_t;

/* Protected: the event table every on_muc handler gets. */
static int muc_args(lua_State *L)
{
    muc_call_t *mc = lua_touserdata(L, 2);
    const epode_muc_event_t *ev = mc->ev;
    lua_createtable(L, 0, 12);
    set_field_str(L, "type", muc_event_name(ev->type));
    set_field_str(L, "room", epode_muc_room_jid(ev->room));
    set_field_str(L, "own_nick", epode_muc_room_nick(ev->room));
    set_field_str(L, "nick", ev->nick);
    set_field_str(L, "body", ev->body);
    set_field_str(L, "subject", ev->subject);
    set_field_bool(L, "is_self", ev->is_self);
    set_field_bool(L, "is_history", ev->is_history);
    if (ev->type == EPODE_MUC_JOINED)
        set_field_bool(L, "created", ev->created);
    if (ev->type == EPODE_MUC_ERROR) {
        const char *cond = epode_stanza_cond_name(ev->cond);
        set_field_str(L, "condition", cond ? cond : "undefined-condition");
        set_field_str(L, "error_text", ev->error_text);
        set_field_bool(L, "fatal", ev->fatal);
        set_field_bool(L, "retrying", ev->retrying);
    }
    if (ev->occupant) {
        push_occupant(L, ev->occupant);
        lua_setfield(L, -2, "occupant");
    }
    lua_createtable(L, (int)(ev->ncodes < 16 ? ev->ncodes : 16), 0);
    for (size_t i = 0; ev->codes && i < ev->ncodes; i++) {
        lua_pushinteger(L, ev->codes[i]);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    lua_setfield(L, -2, "codes");
    if (ev->stanza) {
        push_stanza(L, ev->stanza, 1);
        lua_setfield(L, -2, "stanza");
    }
    return 1;
}

static void on_muc_c(epode_conn_t *conn, const epode_muc_event_t *ev, void *user)
{
    (void)conn;
    client_t *c = user;
    muc_call_t mc = {c, ev};
    dispatch(c, UV_ON_MUC, muc_args, &mc, "on_muc");
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
    "jid", "password", "server", "port", "ca_file", "direct_tls", "verbose", "register",
    "domain", "secret", "tls", "reconnect", "reconnect_min", "reconnect_max", "proxy",
    "websocket", "bosh", "sasl2", "user_agent", "fast_token_file", NULL,
};

/* A number of seconds option (absent: `dflt`), as milliseconds. */
static unsigned opt_seconds_ms(lua_State *L, int t, const char *key, double dflt)
{
    int ty = lua_getfield(L, t, key);
    double v = dflt;
    if (ty != LUA_TNIL) {
        v = lua_tonumber(L, -1);
        if (ty != LUA_TNUMBER || !(v >= 0.001) || v > 86400)
            luaL_error(L, "epode.client: option '%s' must be a number of seconds, 0.001 to 86400",
                       key);
    }
    lua_pop(L, 1);
    return (unsigned)(v * 1000.0 + 0.5);
}

static void lfast_options(lua_State *L, client_t *c, int t); /* epode_lua_fast.c */

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
    /* XEP-0114 component mode: domain and secret instead of an account */
    const char *domain = opt_string(L, 1, "domain"), *secret = opt_string(L, 1, "secret");
    if (domain && (jid || !secret || !opt_string(L, 1, "server")))
        return luaL_error(L, "epode.component: 'domain' goes with 'secret' and 'server', "
                             "without 'jid'");
    if (!domain && secret)
        return luaL_error(L, "epode.client: option 'secret' is for components (epode.component)");
    if (!jid && !domain)
        return luaL_error(L, "epode.client: option 'jid' is required (a string)");
    const char *tls = opt_string(L, 1, "tls");
    epode_tls_mode_t tls_mode = EPODE_TLS_REQUIRED;
    if (tls) {
        int i = EPODE_TLS_REQUIRED;
        while (epode_tls_mode_name((epode_tls_mode_t)i) &&
               strcmp(epode_tls_mode_name((epode_tls_mode_t)i), tls) != 0)
            i++;
        if (!epode_tls_mode_name((epode_tls_mode_t)i))
            return luaL_error(L, "epode.client: option 'tls' must be \"required\", \"direct\", "
                                 "\"optional\" or \"disabled\"");
        tls_mode = (epode_tls_mode_t)i;
    }
    const char *password = opt_string(L, 1, "password");
    const char *server = opt_string(L, 1, "server");
    const char *ca_file = opt_string(L, 1, "ca_file");
    const char *proxy = opt_string(L, 1, "proxy");
    const char *websocket = opt_string(L, 1, "websocket");
    const char *bosh = opt_string(L, 1, "bosh");
    if (websocket && bosh)
        return luaL_error(L, "epode.client: options 'websocket' and 'bosh' exclude each other");
    int direct_tls = opt_bool(L, 1, "direct_tls");
    int verbose = opt_bool(L, 1, "verbose");
    /* reconnect = true: epode_conn_set_reconnect(), backoff from
     * reconnect_min to reconnect_max seconds (default 1 and 60, as Python) */
    int reconnect = opt_bool(L, 1, "reconnect");
    unsigned rmin = opt_seconds_ms(L, 1, "reconnect_min", 1.0);
    unsigned rmax = opt_seconds_ms(L, 1, "reconnect_max", 60.0);
    if (!reconnect && (lua_getfield(L, 1, "reconnect_min") != LUA_TNIL ||
                       lua_getfield(L, 1, "reconnect_max") != LUA_TNIL))
        return luaL_error(L, "epode.client: 'reconnect_min' and 'reconnect_max' go with "
                             "reconnect = true");
    lua_settop(L, 1);
    if (rmax < rmin)
        return luaL_error(L, "epode.client: 'reconnect_max' must not be below 'reconnect_min'");
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
    epode_conn_add_event_cb(c->conn, on_event_c, c, NULL);
    rc = epode_messaging_new(c->conn, &c->msgs);
    if (rc == 0)
        rc = epode_messaging_handler_add(c->msgs, NULL, on_message_c, c, NULL);
    if (rc == 0) /* pings are answered from the start (XEP-0199), as in Python */
        rc = epode_ping_new(c->conn, &c->ping);
    /* Removed with the connection: the client outlives neither. */
    if (rc == 0)
        rc = epode_conn_add_handler(c->conn, "presence", NULL, NULL, on_presence_c, c, NULL);
    if (rc == 0)
        rc = epode_conn_add_handler(c->conn, "iq", NULL, NULL, on_iq_c, c, NULL);
    if (rc < 0)
        return raise_epode(L, "epode.client", rc);

    rc = domain ? epode_conn_set_component(c->conn, domain, secret)
                : epode_conn_set_jid(c->conn, jid);
    if (rc < 0)
        return luaL_error(L, "epode.client: %s: %s ('%s')", epode_err_name(rc),
                          epode_strerror(rc), domain ? domain : jid);
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
    /* proxy = "socks5://[user:pass@]host[:port]" or "http://…" (CONNECT);
     * the URL is not repeated in the error: it may hold a password */
    if (proxy && (rc = epode_conn_set_proxy(c->conn, proxy)) < 0)
        return luaL_error(L, "epode.client: option 'proxy' must be "
                             "socks5://[user:password@]host[:port] or "
                             "http://[user:password@]host[:port] (%s)", epode_err_name(rc));
    /* websocket = "wss://host[:port]/path" or "ws://…": RFC 7395 instead of TCP */
    if (websocket && (rc = epode_conn_set_websocket(c->conn, websocket)) < 0) {
        if (rc == EPODE_ENOTSUP)
            return luaL_error(L, "epode.client: option 'websocket': this epode was built "
                                 "without WebSocket support (ENOTSUP)");
        return luaL_error(L, "epode.client: option 'websocket' must be wss://host[:port][/path] "
                             "or ws://host[:port][/path] (%s)", epode_err_name(rc));
    }
    /* bosh = "https://host[:port]/path" or "http://…": XEP-0124/0206 instead of TCP */
    if (bosh && (rc = epode_conn_set_bosh(c->conn, bosh)) < 0) {
        if (rc == EPODE_ENOTSUP)
            return luaL_error(L, "epode.client: option 'bosh': this epode was built "
                                 "without BOSH support (ENOTSUP)");
        return luaL_error(L, "epode.client: option 'bosh' must be https://host[:port][/path] "
                             "or http://host[:port][/path] (%s)", epode_err_name(rc));
    }
    if (tls && (rc = epode_conn_set_tls(c->conn, tls_mode)) < 0)
        return raise_epode(L, "epode.client", rc);
    /* register = true: the stream stops after TLS for in-band registration */
    if (opt_bool(L, 1, "register") && (rc = epode_conn_set_register(c->conn, 1, 0)) < 0)
        return raise_epode(L, "epode.client", rc);
    if (reconnect && (rc = epode_conn_set_reconnect(c->conn, 1, rmin, rmax)) < 0)
        return raise_epode(L, "epode.client", rc);
    lfast_options(L, c, 1); /* sasl2, user_agent, fast_token_file */
    return 1;
}

/* epode.component{domain=, secret=, server=, port=, ...}: epode.client in
 * XEP-0114 component mode (the same object and methods). */
static int l_component(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    if (lua_getfield(L, 1, "domain") != LUA_TSTRING)
        return luaL_error(L, "epode.component: option 'domain' is required (a string)");
    lua_pop(L, 1);
    return l_client(L);
}

/* ---- methods ----------------------------------------------------------- */

/* c:on_*(fn): adds fn to the list in user value `slot` and returns its
 * id, for c:remove(id). A list is an array of { id, fn } entries in the
 * order they were added; it is never changed in place but replaced by a
 * copy, so a dispatch under way keeps its snapshot. */
static int add_handler(lua_State *L, int slot, const char *where)
{
    client_t *c = check_client(L, where);
    luaL_checktype(L, 2, LUA_TFUNCTION);
    lua_settop(L, 2);
    lua_Integer n = lua_getiuservalue(L, 1, slot) == LUA_TTABLE ? (lua_Integer)lua_rawlen(L, 3) : 0;
    lua_createtable(L, (int)(n < 1000 ? n + 1 : 1000), 0);
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, 3, i);
        lua_rawseti(L, 4, i);
    }
    lua_Integer id = c->next_handler + 1;
    lua_createtable(L, 2, 0);
    lua_pushinteger(L, id);
    lua_rawseti(L, -2, 1);
    lua_pushvalue(L, 2);
    lua_rawseti(L, -2, 2);
    lua_rawseti(L, 4, n + 1);
    lua_setiuservalue(L, 1, slot);
    c->next_handler = id; /* only once nothing can raise any more */
    lua_pushinteger(L, id);
    return 1;
}

/* The user values holding handler lists. */
static const int handler_slots[] = {UV_ON_MESSAGE, UV_ON_EVENT, UV_ON_PRESENCE,
                                    UV_ON_IQ,      UV_ON_MUC,   UV_ON_BLOCKING};

/* c:remove(id): removes the handler c:on_*() gave this id (also from
 * inside a handler: it does not run again, not even later in the event
 * under way). Raises NOTFOUND for an id not (or no longer) registered. */
static int m_remove(lua_State *L)
{
    check_client(L, "client:remove");
    lua_Integer id = luaL_checkinteger(L, 2);
    lua_settop(L, 2);
    for (size_t s = 0; s < sizeof handler_slots / sizeof *handler_slots; s++) {
        if (lua_getiuservalue(L, 1, handler_slots[s]) != LUA_TTABLE) { /* 3 */
            lua_settop(L, 2);
            continue;
        }
        lua_Integer n = (lua_Integer)lua_rawlen(L, 3);
        for (lua_Integer i = 1; i <= n; i++) {
            lua_rawgeti(L, 3, i); /* 4: the entry */
            lua_rawgeti(L, 4, 1);
            int match = lua_tointeger(L, -1) == id;
            lua_pop(L, 1);
            if (!match) {
                lua_pop(L, 1);
                continue;
            }
            lua_createtable(L, (int)(n < 1000 ? n - 1 : 1000), 0); /* 5 */
            for (lua_Integer j = 1, k = 1; j <= n; j++) {
                if (j == i)
                    continue;
                lua_rawgeti(L, 3, j);
                lua_rawseti(L, 5, k++);
            }
            lua_pushboolean(L, 0);
            lua_rawseti(L, 4, 2); /* a dispatch under way skips it */
            lua_pushvalue(L, 5);
            lua_setiuservalue(L, 1, handler_slots[s]);
            lua_pushboolean(L, 1);
            return 1;
        }
        lua_settop(L, 2);
    }
    return luaL_error(L, "client:remove: %s: no handler with id %I", epode_err_name(EPODE_ENOTFOUND),
                      id);
}

static int m_on_message(lua_State *L)
{
    return add_handler(L, UV_ON_MESSAGE, "client:on_message");
}

static int m_on_event(lua_State *L)
{
    return add_handler(L, UV_ON_EVENT, "client:on_event");
}

static int m_on_presence(lua_State *L)
{
    return add_handler(L, UV_ON_PRESENCE, "client:on_presence");
}

static int m_on_iq(lua_State *L)
{
    return add_handler(L, UV_ON_IQ, "client:on_iq");
}

/* The MUC helper, made on first use. */
static epode_muc_t *ensure_muc(lua_State *L, client_t *c, const char *where)
{
    if (!c->muc) {
        int rc = epode_muc_new(c->conn, on_muc_c, c, &c->muc);
        if (rc < 0)
            raise_epode(L, where, rc);
    }
    return c->muc;
}

static int m_on_muc(lua_State *L)
{
    client_t *c = check_client(L, "client:on_muc");
    luaL_checktype(L, 2, LUA_TFUNCTION);
    ensure_muc(L, c, "client:on_muc");
    return add_handler(L, UV_ON_MUC, "client:on_muc");
}

/* client:send(stanza or xml_text): sends any stanza as it is; returns
 * its id, if it has one. */
static int m_send(lua_State *L)
{
    client_t *c = check_client(L, "client:send");
    lstanza_t *b = lua_type(L, 2) == LUA_TSTRING ? parse_into_box(L, 2, "client:send")
                                                  : check_stanza(L, 2);
    int rc = epode_conn_send(c->conn, b->el);
    if (rc < 0)
        return raise_epode(L, "client:send", rc);
    const char *id = epode_stanza_get_id(b->el); /* the box is on the stack */
    if (id)
        lua_pushstring(L, id);
    else
        lua_pushnil(L);
    return 1;
}

static lua_Integer opt_history(lua_State *L, int t, const char *key)
{
    int ty = lua_getfield(L, t, key);
    lua_Integer v = -1;
    if (ty != LUA_TNIL) {
        int isint = 0;
        v = lua_tointegerx(L, -1, &isint);
        if (ty != LUA_TNUMBER || !isint || v < 0 || v > 0x7fffffff)
            luaL_error(L, "client:join: option '%s' must be a non-negative integer", key);
    }
    lua_pop(L, 1);
    return v;
}

/* client:join(room, nick [, password | {password=, history=,
 * history_seconds=}]): joins now if ready, else at the next READY. */
static int m_join(lua_State *L)
{
    client_t *c = check_client(L, "client:join");
    const char *room = check_cstr(L, 2);
    const char *nick = check_cstr(L, 3);
    const char *password = NULL;
    lua_Integer maxstanzas = -1, seconds = -1;
    if (lua_type(L, 4) == LUA_TSTRING) {
        password = check_cstr(L, 4);
    } else if (lua_istable(L, 4)) {
        lua_pushnil(L);
        while (lua_next(L, 4)) {
            lua_pop(L, 1);
            const char *k = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "";
            if (strcmp(k, "password") != 0 && strcmp(k, "history") != 0 &&
                strcmp(k, "history_seconds") != 0)
                return luaL_error(L, "client:join: unknown option '%s'",
                                  luaL_tolstring(L, -1, NULL));
        }
        int ty = lua_getfield(L, 4, "password"); /* anchored by the table */
        if (ty != LUA_TNIL && ty != LUA_TSTRING)
            return luaL_error(L, "client:join: option 'password' must be a string");
        password = lua_tostring(L, -1);
        lua_pop(L, 1);
        maxstanzas = opt_history(L, 4, "history");
        seconds = opt_history(L, 4, "history_seconds");
    } else if (!lua_isnoneornil(L, 4)) {
        return luaL_typeerror(L, 4, "string (password) or table (options)");
    }
    if (!*nick)
        return luaL_argerror(L, 3, "the nick must not be empty");
    epode_muc_t *muc = ensure_muc(L, c, "client:join");
    int rc = epode_muc_join(muc, room, nick, password, (int)maxstanzas, (int)seconds, NULL);
    if (rc == EPODE_EJID)
        return luaL_error(L, "client:join: JID: %s (room '%s', nick '%s'; the room must be "
                             "a bare JID room@service)", epode_strerror(rc), room, nick);
    if (rc == EPODE_ESTATE)
        return luaL_error(L, "client:join: STATE: already in or joining '%s'", room);
    if (rc < 0)
        return raise_epode_about(L, "client:join", rc, room);
    lua_settop(L, 1);
    return 1;
}

/* The room named at index 2, or NULL if we are not in it (nor joining). */
static epode_muc_room_t *find_room(lua_State *L, client_t *c)
{
    const char *room = check_cstr(L, 2);
    return c->muc ? epode_muc_find(c->muc, room) : NULL;
}

static epode_muc_room_t *check_room(lua_State *L, client_t *c, const char *where)
{
    epode_muc_room_t *r = find_room(L, c);
    if (!r)
        luaL_error(L, "%s: STATE: not in room '%s'", where, lua_tostring(L, 2));
    return r;
}

/* A failure of a room operation; STATE means joined to it not yet. */
static int raise_room(lua_State *L, const char *where, int rc)
{
    if (rc == EPODE_ESTATE)
        return luaL_error(L, "%s: STATE: not joined to room '%s' (yet)", where,
                          lua_tostring(L, 2));
    return raise_epode_about(L, where, rc, lua_tostring(L, 2));
}

/* client:leave(room [, status]): true if a leave was started (or a join
 * not sent yet dropped), false if we were not in the room or leaving. */
static int m_leave(lua_State *L)
{
    client_t *c = check_client(L, "client:leave");
    epode_muc_room_t *r = find_room(L, c);
    const char *status = opt_cstr(L, 3);
    int rc = r ? epode_muc_leave(r, status) : EPODE_ESTATE;
    if (rc < 0 && rc != EPODE_ESTATE)
        return raise_epode_about(L, "client:leave", rc, lua_tostring(L, 2));
    lua_pushboolean(L, rc == 0);
    return 1;
}

static int m_send_groupchat(lua_State *L)
{
    client_t *c = check_client(L, "client:send_groupchat");
    epode_muc_room_t *r = check_room(L, c, "client:send_groupchat");
    int rc = epode_muc_send(r, check_cstr(L, 3));
    if (rc < 0)
        return raise_room(L, "client:send_groupchat", rc);
    return 0;
}

static int m_send_private(lua_State *L)
{
    client_t *c = check_client(L, "client:send_private");
    epode_muc_room_t *r = check_room(L, c, "client:send_private");
    int rc = epode_muc_send_private(r, check_cstr(L, 3), check_cstr(L, 4));
    if (rc < 0)
        return raise_room(L, "client:send_private", rc);
    return 0;
}

static int m_set_subject(lua_State *L)
{
    client_t *c = check_client(L, "client:set_subject");
    epode_muc_room_t *r = check_room(L, c, "client:set_subject");
    int rc = epode_muc_set_subject(r, check_cstr(L, 3));
    if (rc < 0)
        return raise_room(L, "client:set_subject", rc);
    return 0;
}

/* client:occupants(room): an array of occupant tables, in arrival order;
 * nil if we are not in the room. */
static int m_occupants(lua_State *L)
{
    client_t *c = check_client(L, "client:occupants");
    epode_muc_room_t *r = find_room(L, c);
    if (!r) {
        lua_pushnil(L);
        return 1;
    }
    size_t n = epode_muc_room_occupant_count(r);
    lua_createtable(L, (int)(n < 1024 ? n : 1024), 0);
    for (size_t i = 0; i < n; i++) {
        const epode_muc_occupant_t *o = epode_muc_room_occupant_at(r, i);
        if (!o)
            break;
        push_occupant(L, o);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    return 1;
}

/* client:room(room): { jid, nick, joined, subject, occupant_count } or nil. */
static int m_room(lua_State *L)
{
    client_t *c = check_client(L, "client:room");
    epode_muc_room_t *r = find_room(L, c);
    if (!r) {
        lua_pushnil(L);
        return 1;
    }
    lua_createtable(L, 0, 5);
    set_field_str(L, "jid", epode_muc_room_jid(r));
    set_field_str(L, "nick", epode_muc_room_nick(r));
    set_field_bool(L, "joined", epode_muc_room_is_joined(r));
    set_field_str(L, "subject", epode_muc_room_subject(r));
    lua_pushinteger(L, (lua_Integer)epode_muc_room_occupant_count(r));
    lua_setfield(L, -2, "occupant_count");
    return 1;
}

/* client:muc_nick_retry(max_tries [, suffix]): on a nick conflict, join
 * again with the suffix added, up to max_tries times (0: give up). */
static int m_muc_nick_retry(lua_State *L)
{
    client_t *c = check_client(L, "client:muc_nick_retry");
    lua_Integer max = luaL_checkinteger(L, 2);
    const char *suffix = opt_cstr(L, 3);
    if (max < 0 || max > 100)
        return luaL_argerror(L, 2, "0..100 tries");
    int rc = epode_muc_set_nick_retry(ensure_muc(L, c, "client:muc_nick_retry"), suffix,
                                      (unsigned)max);
    if (rc < 0)
        return raise_epode(L, "client:muc_nick_retry", rc);
    lua_settop(L, 1);
    return 1;
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
    const char *from = luaL_optstring(L, 5, NULL); /* a component's sender */
    epode_stanza_t *st;
    int rc = epode_message_build(type, to, body, NULL, NULL, &st);
    if (rc == 0 && from && (rc = epode_stanza_set_from(st, from)) < 0)
        epode_stanza_unref(st);
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

/* ---- in-band registration (XEP-0077) ------------------------------------ */

typedef struct reg_call {
    int status;
    epode_stanza_cond_t cond;
    const char *text;
} reg_call_t;

/* Protected: done(ok, condition, text, client), the request forgotten
 * first (the callback may start another). */
static int reg_done_protected(lua_State *L)
{
    reg_call_t *r = lua_touserdata(L, 2);
    lua_getiuservalue(L, 1, UV_ON_REGISTER);
    lua_pushnil(L);
    lua_setiuservalue(L, 1, UV_ON_REGISTER);
    lua_pushnil(L);
    lua_setiuservalue(L, 1, UV_REG_FILL);
    if (!lua_isfunction(L, -1))
        return 0;
    int ok = r->status == 0 && r->cond == EPODE_COND_NONE;
    lua_pushboolean(L, ok);
    if (ok)
        lua_pushnil(L);
    else
        lua_pushstring(L, r->status == 0 ? epode_stanza_cond_name(r->cond) : epode_err_name(r->status));
    if (!ok && r->text)
        lua_pushstring(L, r->text);
    else
        lua_pushnil(L);
    lua_pushvalue(L, 1);
    lua_call(L, 4, 0);
    return 0;
}

static void on_reg_done(epode_register_t *reg, int status, epode_stanza_cond_t cond,
                        const char *text, void *user)
{
    (void)reg;
    reg_call_t r = {status, cond, text};
    call_protected(user, reg_done_protected, &r, "register");
}

typedef struct fill_call {
    epode_form_t *form;
    int rc;
} fill_call_t;

/* Protected: fill(fields, client) with fields = { {var=, type=, label=,
 * required=, value=, media = {uri, ...}}, ... }; it returns { var = value }
 * (or nil/false to give up). */
static int reg_fill_protected(lua_State *L)
{
    fill_call_t *f = lua_touserdata(L, 2);
    lua_getiuservalue(L, 1, UV_REG_FILL);
    if (!lua_isfunction(L, -1))
        return 0;
    size_t n = epode_form_field_count(f->form);
    lua_createtable(L, (int)n, 0);
    for (size_t i = 0; i < n; i++) {
        const epode_form_field_t *fl = epode_form_field_at(f->form, i);
        lua_createtable(L, 0, 6);
        const char *v;
        if ((v = epode_form_field_var(fl)))
            lua_pushstring(L, v), lua_setfield(L, -2, "var");
        if ((v = epode_form_field_type_name(fl)))
            lua_pushstring(L, v), lua_setfield(L, -2, "type");
        if ((v = epode_form_field_label(fl)))
            lua_pushstring(L, v), lua_setfield(L, -2, "label");
        if ((v = epode_form_field_value(fl)))
            lua_pushstring(L, v), lua_setfield(L, -2, "value");
        lua_pushboolean(L, epode_form_field_required(fl));
        lua_setfield(L, -2, "required");
        const epode_stanza_t *media = epode_form_field_media(fl);
        if (media) {
            lua_newtable(L);
            int k = 1;
            for (epode_stanza_t *u = epode_stanza_find_child(media, "uri", NULL); u;
                 u = epode_stanza_find_next(u, "uri", NULL))
                lua_pushstring(L, epode_stanza_get_text(u)), lua_rawseti(L, -2, k++);
            lua_setfield(L, -2, "media");
        }
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    lua_pushvalue(L, 1);
    lua_call(L, 2, 1);
    if (!lua_istable(L, -1))
        return 0; /* given up: rc stays CANCELED */
    for (size_t i = 0; i < n; i++) {
        epode_form_field_t *fl = epode_form_field_at(f->form, i);
        const char *var = epode_form_field_var(fl);
        if (!var || lua_getfield(L, -1, var) == LUA_TNIL) {
            lua_pop(L, 1);
            continue;
        }
        const char *v = lua_tostring(L, -1);
        if (!v || epode_form_field_set_value(fl, v) < 0)
            return luaL_error(L, "register fill: the value for '%s' is not text a form can carry",
                              var);
        lua_pop(L, 1);
    }
    f->rc = 0;
    return 0;
}

static int on_reg_fill(epode_register_t *reg, epode_form_t *form, void *user)
{
    (void)reg;
    fill_call_t f = {form, EPODE_ECANCELED};
    call_protected(user, reg_fill_protected, &f, "register fill");
    return f.rc;
}

static client_t *reg_prepare(lua_State *L, const char *where, int done_idx)
{
    client_t *c = check_client(L, where);
    luaL_checktype(L, done_idx, LUA_TFUNCTION);
    int rc = 0;
    if (!c->reg && (rc = epode_register_new(c->conn, &c->reg)) < 0)
        raise_epode(L, where, rc);
    return c;
}

/* Keeps done (and fill) for the request just started, or raises. */
static int reg_started(lua_State *L, const char *where, int rc, int done_idx, int fill_idx)
{
    if (rc < 0)
        return raise_epode(L, where, rc);
    lua_pushvalue(L, done_idx);
    lua_setiuservalue(L, 1, UV_ON_REGISTER);
    if (fill_idx)
        lua_pushvalue(L, fill_idx);
    else
        lua_pushnil(L);
    lua_setiuservalue(L, 1, UV_REG_FILL);
    lua_settop(L, 1);
    return 1;
}

/* client:register(username, password, done [, fill]) on a client made with
 * register = true, once "ready". */
static int m_register(lua_State *L)
{
    const char *where = "client:register";
    const char *user = check_cstr(L, 2), *password = check_cstr(L, 3);
    client_t *c = reg_prepare(L, where, 4);
    if (!lua_isnoneornil(L, 5))
        luaL_checktype(L, 5, LUA_TFUNCTION);
    int has_fill = lua_isfunction(L, 5);
    int rc = epode_register_account(c->reg, user, password, has_fill ? on_reg_fill : NULL,
                                    on_reg_done, c);
    return reg_started(L, where, rc, 4, has_fill ? 5 : 0);
}

/* client:change_password(new, done [, old]) once logged in. */
static int m_change_password(lua_State *L)
{
    const char *where = "client:change_password";
    const char *new_pw = check_cstr(L, 2);
    const char *old_pw = lua_isnoneornil(L, 4) ? NULL : check_cstr(L, 4);
    client_t *c = reg_prepare(L, where, 3);
    int rc = epode_register_change_password(c->reg, old_pw, new_pw, on_reg_done, c);
    return reg_started(L, where, rc, 3, 0);
}

/* client:unregister(done) once logged in. */
static int m_unregister(lua_State *L)
{
    const char *where = "client:unregister";
    client_t *c = reg_prepare(L, where, 2);
    int rc = epode_register_remove(c->reg, on_reg_done, c);
    return reg_started(L, where, rc, 2, 0);
}

/* epode.register{ jid =, password =, server =, port =, ca_file =,
 * direct_tls =, verbose =, fill = } -> true, or nil, condition, text.
 * Blocking: runs its own client until the outcome. */
static const char register_lua[] =
    "local epode = ...\n"
    "function epode.register(opts)\n"
    "  if type(opts) ~= 'table' then error('epode.register: options table expected', 2) end\n"
    "  local o, password, fill = {}, opts.password, opts.fill\n"
    "  for k, v in pairs(opts) do if k ~= 'password' and k ~= 'fill' then o[k] = v end end\n"
    "  o.register = true\n"
    "  local user = type(o.jid) == 'string' and o.jid:match('^([^@/]+)@')\n"
    "  if not user then error('epode.register: the JID needs a username (user@domain)', 2) end\n"
    "  if type(password) ~= 'string' or password == '' then\n"
    "    error('epode.register: option \\'password\\' is required (a string)', 2) end\n"
    "  local c = epode.client(o)\n"
    "  local ok, cond, text\n"
    "  c:on_event(function(name, info, client)\n"
    "    if name == 'ready' then\n"
    "      client:register(user, password, function(success, condition, t)\n"
    "        ok, cond, text = success, condition, t\n"
    "        client:close()\n"
    "      end, fill)\n"
    "    end\n"
    "  end)\n"
    "  c:connect()\n"
    "  local reason, rtext = c:run()\n"
    "  if ok == nil then ok, cond, text = false, reason, rtext end\n"
    "  if ok then return true end\n"
    "  return nil, cond, text\n"
    "end\n";

/* The modern IM layer: message features, blocking, CSI, archive queries. */
#include "epode_lua_modern.c"

#include "epode_lua_fast.c"
/* HTTP File Upload (XEP-0363) and OOB URLs. */
#include "epode_lua_upload.c"
/* Ad-hoc commands (XEP-0050): c:command(), c:commands(), c:execute(), c:continue(). */
#include "epode_lua_commands.c"
/* PubSub/PEP, bookmarks, avatars, nicknames: c:on_pep(), c:publish(), c:bookmarks(), ... */
#include "epode_lua_pep.c"

static const luaL_Reg client_methods[] = {
    {"on_message", m_on_message},
    {"on_event", m_on_event},
    {"on_presence", m_on_presence},
    {"on_iq", m_on_iq},
    {"on_muc", m_on_muc},
    {"remove", m_remove},
    {"connect", m_connect},
    {"send", m_send},
    {"send_message", m_send_message},
    {"send_presence", m_send_presence},
    {"join", m_join},
    {"leave", m_leave},
    {"send_groupchat", m_send_groupchat},
    {"send_private", m_send_private},
    {"set_subject", m_set_subject},
    {"occupants", m_occupants},
    {"room", m_room},
    {"muc_nick_retry", m_muc_nick_retry},
    {"register", m_register},
    {"change_password", m_change_password},
    {"unregister", m_unregister},
    {"block", m_block},
    {"unblock", m_unblock},
    {"unblock_all", m_unblock_all},
    {"fetch_blocklist", m_fetch_blocklist},
    {"blocklist", m_blocklist},
    {"on_blocking", m_on_blocking},
    {"set_active", m_set_active},
    {"mam_fetch", m_mam_fetch},
    {"ping", m_ping},
    {"set_version", m_set_version},
    {"version", m_version},
    {"upload", m_upload},
    {"cancel_upload", m_cancel_upload},
    {"send_url", m_send_url},
    {"command", m_command},
    {"remove_command", m_remove_command},
    {"commands", m_commands},
    {"execute", m_execute},
    {"continue", m_continue},
    {"catch_up", m_catch_up},
    {"mam_last_id", m_mam_last_id},
    {"on_pep", m_on_pep},
    {"publish", m_publish},
    {"fetch_items", m_fetch_items},
    {"retract", m_retract},
    {"bookmarks", m_bookmarks},
    {"add_bookmark", m_add_bookmark},
    {"remove_bookmark", m_remove_bookmark},
    {"publish_avatar", m_publish_avatar},
    {"fetch_avatar", m_fetch_avatar},
    {"set_nick", m_set_nick},
    {"close", m_close},
    {"stop", m_stop},
    {"run", m_run},
    {"step", m_step},
    {"bound_jid", m_bound_jid},
    {"user_agent_id", m_user_agent_id},
    {"is_ready", m_is_ready},
    {"fd", m_fd},
    {"timeout", m_timeout},
    {NULL, NULL},
};

static const luaL_Reg module_funcs[] = {
    {"client", l_client},
    {"component", l_component},
    {"stanza", l_stanza},
    {"parse", l_parse},
    {"same_sender", l_same_sender},
    {"correction", l_correction},
    {"retraction", l_retraction},
    {"reactions", l_reactions},
    {"reply", l_reply},
    {"marker", l_marker},
    {"oob_url", l_oob_url},
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

    if (luaL_newmetatable(L, STANZA_MT)) {
        luaL_newlib(L, stanza_methods);
        lua_pushcclosure(L, sm_index, 1);
        lua_setfield(L, -2, "__index");
        lua_pushcfunction(L, sm_newindex);
        lua_setfield(L, -2, "__newindex");
        lua_pushcfunction(L, sm_gc);
        lua_setfield(L, -2, "__gc");
        lua_pushcfunction(L, sm_tostring);
        lua_setfield(L, -2, "__tostring");
        lua_pushcfunction(L, sm_eq);
        lua_setfield(L, -2, "__eq");
        lua_pushliteral(L, "epode.stanza");
        lua_setfield(L, -2, "__name");
        lua_pushboolean(L, 0);
        lua_setfield(L, -2, "__metatable");
    }
    lua_pop(L, 1);

    luaL_newlib(L, module_funcs);
    lua_pushstring(L, epode_version());
    lua_setfield(L, -2, "version");
    if (luaL_loadbufferx(L, register_lua, sizeof register_lua - 1, "=epode.register", "t") !=
        LUA_OK)
        return lua_error(L);
    lua_pushvalue(L, -2);
    lua_call(L, 1, 0); /* defines epode.register */
    return 1;
}
