/* epode_lua_modern.c — the modern IM layer in the Lua module: message
 * features on the message tables handlers get, builders, blocking
 * (XEP-0191), client state (XEP-0352) and archive queries (XEP-0313).
 * Not compiled on its own: epode_lua.c includes it, so it shares the
 * client's layout, its protected-call machinery and its rules (handlers
 * under lua_pcall, callbacks kept in the client's user values, never in
 * the registry).
 *
 *   msg.replace_id, .retract_id, .reactions_to, .reactions (array),
 *   .reply_to_id, .reply_to, .reply_body, .marker, .marker_id, .markable,
 *   .hints (array), .timestamp (XEP-0082 string), .timestamp_ms,
 *   .occupant_id, .origin_id, .archive_id (archive results), .ref_id (the id
 *   to name this message by: see epode_message_ref_id())
 *   epode.same_sender(msg_or_stanza, original_from [, occupant_id [, mode]])
 *   epode.correction(to, body, replace_id [, type]);  epode.retraction(to, id [, type])
 *   epode.reactions(to, id, {emoji...} [, type]);  epode.marker(to, id [, marker [, type]])
 *   epode.reply(to, body, reply_id [, {reply_to=, quote=, type=}])   -> stanzas to c:send()
 *   c:block(jid_or_list [, done]);  c:unblock(jid_or_list [, done]);  c:unblock_all([done])
 *   c:fetch_blocklist([done]);  c:blocklist() -> { jid... };  c:on_blocking(fn(event, jids, c))
 *        done(ok, condition, client)
 *   c:set_active(bool)
 *   c:mam_fetch({ with=, start=, ["end"]=, max=, after=, before=, archive=, catch_up= },
 *               function(messages, info, client) end)
 *        start/end: XEP-0082 strings or milliseconds; info: { ok=, condition=,
 *        first=, last=, complete=, count= }; messages: message tables, oldest first
 */

#include <stdlib.h>

/* ---- message features ------------------------------------------------------ */

static const char *const lua_hint_names[] = {"no-permanent-store", "no-store", "no-copy", "store"};

/* Adds the features of `m` to the table on top of the stack. */
static void push_message_features(lua_State *L, const epode_message_t *m)
{
    set_field_str(L, "replace_id", epode_message_replace_id(m));
    set_field_str(L, "retract_id", epode_message_retract_id(m));
    set_field_str(L, "occupant_id", epode_message_occupant_id(m));
    set_field_str(L, "origin_id", epode_message_origin_id(m));
    set_field_str(L, "archive_id", epode_message_archive_id(m));
    set_field_str(L, "ref_id", epode_message_ref_id(m));
    const char *rid = epode_message_reactions_id(m);
    set_field_str(L, "reactions_to", rid);
    if (rid) {
        size_t n = epode_message_reaction_count(m);
        lua_createtable(L, (int)n, 0);
        for (size_t i = 0; i < n; i++) {
            lua_pushstring(L, epode_message_reaction_at(m, i));
            lua_rawseti(L, -2, (lua_Integer)i + 1);
        }
        lua_setfield(L, -2, "reactions");
    }
    const char *to, *reply = epode_message_reply_id(m, &to);
    set_field_str(L, "reply_to_id", reply);
    set_field_str(L, "reply_to", to);
    /* reply_body only for a reply (XEP-0461): nil for any other message */
    const char *body = reply ? epode_message_body(m, NULL) : NULL;
    size_t a, b;
    if (body && epode_message_fallback(m, EPODE_NS_REPLY, &a, &b) == 0) {
        luaL_Buffer buf;
        luaL_buffinit(L, &buf);
        luaL_addlstring(&buf, body, a);
        luaL_addstring(&buf, body + b);
        luaL_pushresult(&buf);
        lua_setfield(L, -2, "reply_body");
    } else {
        set_field_str(L, "reply_body", body);
    }
    const char *mid = NULL;
    epode_marker_t mk = epode_message_marker(m, &mid);
    set_field_str(L, "marker", epode_marker_name(mk));
    set_field_str(L, "marker_id", mk ? mid : NULL);
    lua_pushboolean(L, epode_message_is_markable(m));
    lua_setfield(L, -2, "markable");
    unsigned h = epode_message_hints(m);
    lua_createtable(L, 4, 0);
    for (int i = 0, k = 1; i < 4; i++)
        if (h & (1u << i)) {
            lua_pushstring(L, lua_hint_names[i]);
            lua_rawseti(L, -2, k++);
        }
    lua_setfield(L, -2, "hints");
    long long ms;
    char stamp[EPODE_TIME_BUFSIZE];
    if (epode_message_delay(m, &ms, NULL, NULL) == 0 &&
        epode_time_format(ms, stamp, sizeof stamp) == 0) {
        lua_pushstring(L, stamp);
        lua_setfield(L, -2, "timestamp");
        lua_pushinteger(L, (lua_Integer)ms);
        lua_setfield(L, -2, "timestamp_ms");
    }
}

/* The message table handlers get, for an archived message. */
static void push_message_table(lua_State *L, const epode_message_t *m)
{
    lua_createtable(L, 0, 24);
    set_field_str(L, "from", epode_message_from(m));
    set_field_str(L, "to", epode_message_to(m));
    set_field_str(L, "type", epode_message_type(m));
    set_field_str(L, "body", epode_message_body(m, NULL));
    set_field_str(L, "id", epode_message_id(m));
    set_field_str(L, "subject", epode_message_subject(m, NULL));
    set_field_str(L, "thread", epode_message_thread(m));
    push_message_features(L, m);
    push_stanza(L, epode_message_stanza(m), 1);
    lua_setfield(L, -2, "stanza");
}

/* epode.same_sender(msg_or_stanza, original_from [, occupant_id [, mode]]) */
static int l_same_sender(lua_State *L)
{
    lstanza_t *b;
    if (lua_istable(L, 1)) { /* a message table: its stanza */
        lua_getfield(L, 1, "stanza");
        lua_replace(L, 1);
    }
    b = check_stanza(L, 1);
    const char *from = check_cstr(L, 2), *occ = opt_cstr(L, 3);
    static const char *const modes[] = {"auto", "direct", "occupant", NULL};
    int mode = luaL_checkoption(L, 4, "auto", modes);
    epode_message_t *v;
    int rc = epode_message_view_new(NULL, b->el, &v);
    if (rc < 0)
        return raise_epode(L, "epode.same_sender", rc);
    lua_pushboolean(L, epode_message_same_sender(v, from, occ, (epode_sender_mode_t)mode));
    epode_message_view_free(v);
    return 1;
}

/* ---- builders -------------------------------------------------------------- */

static int l_correction(lua_State *L)
{
    const char *to = check_cstr(L, 1), *body = check_cstr(L, 2), *id = check_cstr(L, 3);
    const char *type = luaL_optstring(L, 4, "chat");
    lstanza_t *b = new_box(L, 0);
    int rc = epode_message_build(type, to, body, NULL, NULL, &b->el);
    if (rc == 0)
        rc = epode_message_set_replace(b->el, id);
    return rc < 0 ? raise_epode(L, "epode.correction", rc) : 1;
}

static int l_retraction(lua_State *L)
{
    const char *to = check_cstr(L, 1), *id = check_cstr(L, 2);
    const char *type = luaL_optstring(L, 3, "chat");
    lstanza_t *b = new_box(L, 0);
    int rc = epode_message_build_retraction(type, to, id, &b->el);
    return rc < 0 ? raise_epode(L, "epode.retraction", rc) : 1;
}

static int l_reactions(lua_State *L)
{
    const char *to = check_cstr(L, 1), *id = check_cstr(L, 2);
    luaL_checktype(L, 3, LUA_TTABLE);
    const char *type = luaL_optstring(L, 4, "chat");
    lua_Integer n = luaL_len(L, 3);
    if (n < 0 || n > EPODE_REACTIONS_MAX)
        return luaL_argerror(L, 3, "too many reactions");
    const char *r[EPODE_REACTIONS_MAX];
    luaL_checkstack(L, (int)n + 4, "epode.reactions");
    for (lua_Integer i = 1; i <= n; i++) {
        lua_geti(L, 3, i); /* stays on the stack: the string lives */
        r[i - 1] = check_cstr(L, -1);
    }
    lstanza_t *b = new_box(L, 0);
    int rc = epode_message_build_reactions(type, to, id, r, (size_t)n, &b->el);
    return rc < 0 ? raise_epode(L, "epode.reactions", rc) : 1;
}

static int l_reply(lua_State *L)
{
    const char *to = check_cstr(L, 1), *body = check_cstr(L, 2), *id = check_cstr(L, 3);
    const char *rto = NULL, *quote = NULL, *type = "chat";
    if (!lua_isnoneornil(L, 4)) {
        luaL_checktype(L, 4, LUA_TTABLE);
        rto = opt_string(L, 4, "reply_to");
        quote = opt_string(L, 4, "quote");
        const char *t = opt_string(L, 4, "type");
        if (t)
            type = t;
    }
    lstanza_t *b = new_box(L, 0);
    int rc = epode_message_build_reply(type, to, body, rto, id, quote, &b->el);
    return rc < 0 ? raise_epode(L, "epode.reply", rc) : 1;
}

static int l_marker(lua_State *L)
{
    const char *to = check_cstr(L, 1), *id = check_cstr(L, 2);
    static const char *const names[] = {"received", "displayed", "acknowledged", NULL};
    int k = luaL_checkoption(L, 3, "displayed", names);
    const char *type = luaL_optstring(L, 4, "chat");
    lstanza_t *b = new_box(L, 0);
    int rc = epode_message_build_marker(type, to, (epode_marker_t)(k + 1), id, NULL, &b->el);
    return rc < 0 ? raise_epode(L, "epode.marker", rc) : 1;
}

/* ---- requests with a Lua callback ------------------------------------------- */

/* The client's UV_MODERN table: { [id] = { cb = fn, msgs = {} } } */
static void push_modern(lua_State *L, int client_idx)
{
    if (lua_getiuservalue(L, client_idx, UV_MODERN) != LUA_TTABLE) {
        lua_pop(L, 1);
        lua_newtable(L);
        lua_pushvalue(L, -1);
        lua_setiuservalue(L, client_idx, UV_MODERN);
    }
}

typedef struct lreq {
    client_t *c;
    lua_Integer id;
    /* what the callback hears */
    int status;
    epode_stanza_cond_t cond;
    const char *first, *last;
    int complete;
    long count;
    const epode_message_t *msg;
    int kind; /* 0: blocking done, 1: archive result, 2: archive done */
} lreq;

/* Registers `cb` (at idx, may be nil) under a fresh id; the request. */
static lreq *lreq_new(lua_State *L, client_t *c, int cb_idx)
{
    cb_idx = lua_absindex(L, cb_idx);
    lreq *q = malloc(sizeof *q);
    if (!q) {
        luaL_error(L, "out of memory");
        return NULL;
    }
    memset(q, 0, sizeof *q);
    q->c = c;
    q->id = ++c->next_req;
    push_modern(L, 1);
    lua_createtable(L, 0, 2);
    lua_pushvalue(L, cb_idx);
    lua_setfield(L, -2, "cb");
    lua_newtable(L);
    lua_setfield(L, -2, "msgs");
    lua_rawseti(L, -2, q->id);
    lua_pop(L, 1);
    return q;
}

static void lreq_forget(lua_State *L, lreq *q)
{
    push_modern(L, 1);
    lua_pushnil(L);
    lua_rawseti(L, -2, q->id);
    lua_pop(L, 1);
}

/* Protected: the request's callback (or, for an archive result, adding
 * the message to its list). */
static int lreq_protected(lua_State *L)
{
    lreq *q = lua_touserdata(L, 2);
    push_modern(L, 1);
    if (lua_rawgeti(L, -1, q->id) != LUA_TTABLE)
        return 0;
    int entry = lua_gettop(L);
    if (q->kind == 1) {
        lua_getfield(L, entry, "msgs");
        push_message_table(L, q->msg);
        lua_rawseti(L, -2, luaL_len(L, -2) + 1);
        return 0;
    }
    lua_pushnil(L);
    lua_rawseti(L, entry - 1, q->id); /* forgotten first: the callback may start another */
    lua_getfield(L, entry, "cb");
    if (!lua_isfunction(L, -1))
        return 0;
    int ok = q->status == 0 && q->cond == EPODE_COND_NONE;
    if (q->kind == 0) {
        lua_pushboolean(L, ok);
        if (q->cond != EPODE_COND_NONE)
            lua_pushstring(L, epode_stanza_cond_name(q->cond));
        else if (!ok)
            lua_pushstring(L, epode_err_name(q->status));
        else
            lua_pushnil(L);
        lua_pushvalue(L, 1);
        lua_call(L, 3, 0);
        return 0;
    }
    lua_getfield(L, entry, "msgs");
    lua_createtable(L, 0, 6);
    lua_pushboolean(L, ok);
    lua_setfield(L, -2, "ok");
    if (q->cond != EPODE_COND_NONE)
        set_field_str(L, "condition", epode_stanza_cond_name(q->cond));
    else if (!ok)
        set_field_str(L, "condition", epode_err_name(q->status));
    set_field_str(L, "first", q->first);
    set_field_str(L, "last", q->last);
    lua_pushboolean(L, q->complete);
    lua_setfield(L, -2, "complete");
    if (q->count >= 0) {
        lua_pushinteger(L, q->count);
        lua_setfield(L, -2, "count");
    }
    lua_pushvalue(L, 1);
    lua_call(L, 3, 0);
    return 0;
}

static void lreq_call(lreq *q, const char *where)
{
    /* Outside the loop (the client being collected) nothing is told. */
    if (q->c->in_loop)
        call_protected(q->c, lreq_protected, q, where);
}

/* ---- blocking ------------------------------------------------------------------ */

typedef struct block_call {
    epode_blocking_event_t ev;
    const char *const *jids;
    size_t n;
} block_call_t;

/* Protected: the event name and JID list every on_blocking handler gets. */
static int blocking_event_args(lua_State *L)
{
    block_call_t *bc = lua_touserdata(L, 2);
    const char *name = epode_blocking_event_name(bc->ev);
    lua_pushstring(L, name ? name : "unknown");
    lua_createtable(L, (int)bc->n, 0);
    for (size_t i = 0; i < bc->n; i++) {
        lua_pushstring(L, bc->jids[i]);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    return 2;
}

static void on_blocking_event_c(epode_blocking_t *b, epode_blocking_event_t ev,
                                const char *const *jids, size_t n, void *user)
{
    (void)b;
    client_t *c = user;
    block_call_t bc = {ev, jids, n};
    if (c->in_loop)
        dispatch(c, UV_ON_BLOCKING, blocking_event_args, &bc, "on_blocking");
}

static void on_blocking_done_c(epode_blocking_t *b, int status, epode_stanza_cond_t cond,
                               void *user)
{
    (void)b;
    lreq *q = user;
    q->status = status;
    q->cond = cond;
    q->kind = 0;
    lreq_call(q, "blocking");
    free(q);
}

static epode_blocking_t *ensure_blocking(lua_State *L, client_t *c, const char *where)
{
    if (!c->blocking) {
        int rc = epode_blocking_new(c->conn, on_blocking_event_c, c, &c->blocking);
        if (rc < 0)
            raise_epode(L, where, rc);
    }
    return c->blocking;
}

static int m_on_blocking(lua_State *L)
{
    client_t *c = check_client(L, "client:on_blocking");
    luaL_checktype(L, 2, LUA_TFUNCTION);
    ensure_blocking(L, c, "client:on_blocking");
    return add_handler(L, UV_ON_BLOCKING, "client:on_blocking");
}

/* kind: 0 block, 1 unblock, 2 unblock all, 3 fetch; the JIDs at 2, done after */
static int blocking_request(lua_State *L, int kind, const char *where)
{
    client_t *c = check_client(L, where);
    epode_blocking_t *bl = ensure_blocking(L, c, where);
    int done_idx = kind < 2 ? 3 : 2;
    if (!lua_isnoneornil(L, done_idx))
        luaL_checktype(L, done_idx, LUA_TFUNCTION);
    const char *v[256];
    size_t n = 0;
    if (kind < 2) {
        if (lua_type(L, 2) == LUA_TSTRING) {
            v[n++] = lua_tostring(L, 2);
        } else {
            luaL_checktype(L, 2, LUA_TTABLE);
            lua_Integer len = luaL_len(L, 2);
            if (len < 1 || len > 256)
                return luaL_argerror(L, 2, "1 to 256 JIDs");
            luaL_checkstack(L, (int)len + 8, where); /* the strings stay on the stack */
            for (lua_Integer i = 1; i <= len; i++) {
                lua_geti(L, 2, i);
                v[n++] = check_cstr(L, -1);
            }
        }
    }
    lreq *q = lreq_new(L, c, done_idx);
    int rc = kind == 0   ? epode_blocking_block(bl, v, n, on_blocking_done_c, q)
             : kind == 1 ? epode_blocking_unblock(bl, v, n, on_blocking_done_c, q)
             : kind == 2 ? epode_blocking_unblock_all(bl, on_blocking_done_c, q)
                         : epode_blocking_fetch(bl, on_blocking_done_c, q);
    if (rc < 0) {
        lreq_forget(L, q);
        free(q);
        return raise_epode(L, where, rc);
    }
    lua_settop(L, 1);
    return 1;
}

static int m_block(lua_State *L)
{
    return blocking_request(L, 0, "client:block");
}

static int m_unblock(lua_State *L)
{
    return blocking_request(L, 1, "client:unblock");
}

static int m_unblock_all(lua_State *L)
{
    return blocking_request(L, 2, "client:unblock_all");
}

static int m_fetch_blocklist(lua_State *L)
{
    return blocking_request(L, 3, "client:fetch_blocklist");
}

static int m_blocklist(lua_State *L)
{
    client_t *c = check_client(L, "client:blocklist");
    size_t n = epode_blocking_count(c->blocking);
    lua_createtable(L, (int)n, 0);
    for (size_t i = 0; i < n; i++) {
        lua_pushstring(L, epode_blocking_at(c->blocking, i));
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    return 1;
}

/* ---- client state --------------------------------------------------------------- */

static int m_set_active(lua_State *L)
{
    client_t *c = check_client(L, "client:set_active");
    int active = lua_toboolean(L, 2);
    int rc = 0;
    if (!c->csi)
        rc = epode_csi_new(c->conn, &c->csi);
    if (rc == 0)
        rc = epode_csi_set_active(c->csi, active);
    if (rc < 0)
        return raise_epode(L, "client:set_active", rc);
    lua_settop(L, 1);
    return 1;
}

/* ---- archive ---------------------------------------------------------------------- */

static void on_mam_result_c(epode_mam_t *mam, const epode_message_t *m, void *user)
{
    (void)mam;
    lreq *q = user;
    q->kind = 1;
    q->msg = m;
    lreq_call(q, "mam_fetch");
}

static void on_mam_done_c(epode_mam_t *mam, int status, epode_stanza_cond_t cond,
                          const char *first, const char *last, int complete, long count,
                          size_t results, void *user)
{
    (void)mam, (void)results;
    lreq *q = user;
    q->kind = 2;
    q->status = status;
    q->cond = cond;
    q->first = first;
    q->last = last;
    q->complete = complete;
    q->count = count;
    lreq_call(q, "mam_fetch");
    free(q);
}

/* A time option: an XEP-0082 string or milliseconds; EPODE_MAM_NO_TIME if absent. */
static long long opt_time(lua_State *L, int t, const char *key)
{
    long long ms = EPODE_MAM_NO_TIME;
    int ty = lua_getfield(L, t, key);
    if (ty == LUA_TSTRING) {
        if (epode_time_parse(lua_tostring(L, -1), &ms) < 0)
            luaL_error(L, "client:mam_fetch: '%s' is not an XEP-0082 time", key);
    } else if (ty == LUA_TNUMBER) {
        ms = (long long)lua_tointeger(L, -1);
    } else if (ty != LUA_TNIL) {
        luaL_error(L, "client:mam_fetch: '%s' must be a string or milliseconds", key);
    }
    lua_pop(L, 1);
    return ms;
}

static int m_mam_fetch(lua_State *L)
{
    client_t *c = check_client(L, "client:mam_fetch");
    luaL_checktype(L, 2, LUA_TTABLE);
    luaL_checktype(L, 3, LUA_TFUNCTION);
    const char *with = opt_string(L, 2, "with"), *after = opt_string(L, 2, "after");
    const char *before = opt_string(L, 2, "before"), *archive = opt_string(L, 2, "archive");
    const char *catch_up = opt_string(L, 2, "catch_up");
    long long start = opt_time(L, 2, "start"), end = opt_time(L, 2, "end");
    lua_Integer max = 0;
    if (lua_getfield(L, 2, "max") != LUA_TNIL)
        max = lua_tointeger(L, -1);
    lua_pop(L, 1);
    if (max < 0 || max > EPODE_MAM_PAGE_MAX)
        return luaL_error(L, "client:mam_fetch: max is 1 to %d", EPODE_MAM_PAGE_MAX);
    int rc = 0;
    if (!c->mam)
        rc = epode_mam_new(c->conn, &c->mam);
    if (rc < 0)
        return raise_epode(L, "client:mam_fetch", rc);
    lreq *q = lreq_new(L, c, 3);
    if (catch_up) {
        rc = epode_mam_catch_up(c->mam, catch_up, (unsigned)max, on_mam_result_c, on_mam_done_c,
                                q, NULL);
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
            rc = epode_mam_query_set_page(mq, (unsigned)max, after, before);
        if (rc == 0)
            rc = epode_mam_fetch(c->mam, mq, on_mam_result_c, on_mam_done_c, q, NULL);
        epode_mam_query_free(mq);
    }
    if (rc < 0) {
        lreq_forget(L, q);
        free(q);
        return raise_epode(L, "client:mam_fetch", rc);
    }
    lua_settop(L, 1);
    return 1;
}

/* ---- ping (XEP-0199) and software version (XEP-0092) --------------------------- */

/* A pending ping or version query: a full userdata (so a request whose
 * answer never comes, the helper freed first, costs no C memory) kept in
 * the UV_MODERN table as [id] = { cb = done, ud = request } until done
 * runs. epode holds a pointer to it meanwhile. */
typedef struct lask {
    client_t *c;
    lua_Integer id;
} lask;

typedef struct ask_answer {
    lask *q;
    int status;
    epode_stanza_cond_t cond;
    double rtt;                          /* ping */
    const char *name, *version, *os;     /* version */
    int is_version;
} ask_answer;

/* Pushes a new request userdata registered with the callback at cb_idx. */
static lask *lask_new(lua_State *L, client_t *c, int cb_idx)
{
    cb_idx = lua_absindex(L, cb_idx);
    lask *q = lua_newuserdatauv(L, sizeof *q, 0);
    q->c = c;
    q->id = c->next_req + 1;
    push_modern(L, 1);
    lua_createtable(L, 0, 2);
    lua_pushvalue(L, cb_idx);
    lua_setfield(L, -2, "cb");
    lua_pushvalue(L, -3);
    lua_setfield(L, -2, "ud");
    lua_rawseti(L, -2, q->id);
    lua_pop(L, 1);
    c->next_req = q->id;
    return q;
}

/* Protected: done(result, condition, client); the entry forgotten first
 * (its userdata stays on this stack while done runs). */
static int ask_protected(lua_State *L)
{
    ask_answer *a = lua_touserdata(L, 2);
    push_modern(L, 1);
    if (lua_rawgeti(L, -1, a->q->id) != LUA_TTABLE)
        return 0;
    int entry = lua_gettop(L);
    lua_getfield(L, entry, "ud"); /* anchors the request */
    lua_pushnil(L);
    lua_rawseti(L, entry - 1, a->q->id);
    lua_getfield(L, entry, "cb");
    if (!lua_isfunction(L, -1))
        return 0;
    if (a->status == 0 && a->cond == EPODE_COND_NONE) {
        if (a->is_version) {
            lua_createtable(L, 0, 3);
            set_field_str(L, "name", a->name);
            set_field_str(L, "version", a->version);
            set_field_str(L, "os", a->os);
        } else {
            lua_pushnumber(L, a->rtt);
        }
        lua_pushnil(L);
    } else {
        lua_pushnil(L);
        lua_pushstring(L, a->status == 0 ? epode_stanza_cond_name(a->cond)
                                         : epode_err_name(a->status));
    }
    lua_pushvalue(L, 1);
    lua_call(L, 3, 0);
    return 0;
}

static void ask_done(ask_answer *a, const char *where)
{
    if (a->q->c->in_loop)
        call_protected(a->q->c, ask_protected, a, where);
}

static void on_pong_c(epode_conn_t *conn, const char *jid, int status, epode_stanza_cond_t cond,
                      unsigned rtt_ms, void *user)
{
    (void)conn, (void)jid;
    ask_answer a = {user, status, cond, rtt_ms / 1000.0, NULL, NULL, NULL, 0};
    ask_done(&a, "ping");
}

static void on_version_c(epode_conn_t *conn, const char *jid, int status,
                         epode_stanza_cond_t cond, const char *name, const char *version,
                         const char *os, void *user)
{
    (void)conn, (void)jid;
    ask_answer a = {user, status, cond, 0, name, version, os, 1};
    ask_done(&a, "version");
}

/* The optional timeout in seconds at idx, as milliseconds (0: epode's 30 s). */
static unsigned opt_timeout_ms(lua_State *L, int idx)
{
    if (lua_isnoneornil(L, idx))
        return 0;
    lua_Number t = luaL_checknumber(L, idx);
    if (!(t >= 0.001) || t > 86400)
        luaL_argerror(L, idx, "a timeout in seconds, 0.001 to 86400");
    return (unsigned)(t * 1000.0 + 0.5);
}

/* c:ping(jid, done [, timeout]): jid nil pings our server; done(rtt_seconds,
 * nil, client) when it answered, done(nil, condition, client) for an
 * error answer (its condition) or none ("TIMEDOUT", "CANCELED"). From the
 * client's creation on, it also answers pings. */
static int m_ping(lua_State *L)
{
    client_t *c = check_client(L, "client:ping");
    const char *jid = opt_cstr(L, 2);
    luaL_checktype(L, 3, LUA_TFUNCTION);
    unsigned ms = opt_timeout_ms(L, 4);
    int rc = 0;
    if (!c->ping)
        rc = epode_ping_new(c->conn, &c->ping);
    if (rc < 0)
        return raise_epode(L, "client:ping", rc);
    lask *q = lask_new(L, c, 3);
    rc = epode_ping_send(c->ping, jid, ms, on_pong_c, q);
    if (rc < 0) {
        push_modern(L, 1);
        lua_pushnil(L);
        lua_rawseti(L, -2, q->id);
        return jid ? raise_epode_about(L, "client:ping", rc, jid) : raise_epode(L, "client:ping", rc);
    }
    lua_settop(L, 1);
    return 1;
}

/* c:set_version(name, version [, os]): answers XEP-0092 queries from now on. */
static int m_set_version(lua_State *L)
{
    client_t *c = check_client(L, "client:set_version");
    const char *name = check_cstr(L, 2), *version = check_cstr(L, 3), *os = opt_cstr(L, 4);
    int rc = c->version ? epode_software_version_set(c->version, name, version, os)
                        : epode_software_version_new(c->conn, name, version, os, &c->version);
    if (rc < 0)
        return raise_epode(L, "client:set_version", rc);
    lua_settop(L, 1);
    return 1;
}

/* c:version(jid, done [, timeout]): done({name=, version=, os=}, nil, client)
 * or done(nil, condition, client). Without c:set_version() first, the
 * helper this makes answers "epode" and the library's version, no OS. */
static int m_version(lua_State *L)
{
    client_t *c = check_client(L, "client:version");
    const char *jid = opt_cstr(L, 2);
    luaL_checktype(L, 3, LUA_TFUNCTION);
    unsigned ms = opt_timeout_ms(L, 4);
    int rc = 0;
    if (!c->version)
        rc = epode_software_version_new(c->conn, "epode", epode_version(), NULL, &c->version);
    if (rc < 0)
        return raise_epode(L, "client:version", rc);
    lask *q = lask_new(L, c, 3);
    rc = epode_software_version_query(c->version, jid, ms, on_version_c, q);
    if (rc < 0) {
        push_modern(L, 1);
        lua_pushnil(L);
        lua_rawseti(L, -2, q->id);
        return jid ? raise_epode_about(L, "client:version", rc, jid)
                   : raise_epode(L, "client:version", rc);
    }
    lua_settop(L, 1);
    return 1;
}
