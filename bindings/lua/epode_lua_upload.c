/* epode_lua_upload.c — HTTP File Upload (XEP-0363) and Out-of-Band URLs
 * (XEP-0066) in the Lua module. Not compiled on its own: epode_lua.c
 * includes it after epode_lua_modern.c, whose request table (UV_MODERN)
 * it shares: a pending upload is [id] = { cb = done, progress = fn },
 * forgotten before done runs.
 *
 *   c:upload({ data = s | path = p, filename =, content_type =, service =, max =,
 *              allow_http =, resolve = { host, port, address } },
 *            function(url, err, info, client) end [, function(sent, total, client) end]) -> id
 *        url on success; else nil, the error name ("LIMIT", "REFUSED", "HTTP",
 *        "NOTFOUND", "CERT", ...) and info = { condition=, text=, max_file_size=,
 *        http_status=, retry_stamp= }
 *   c:cancel_upload(id)         (done runs with "CANCELED")
 *   c:send_url(to, url [, type])  a message with url as body and as OOB data
 *   epode.oob_url(msg_or_stanza) -> url or nil
 *
 * As with the other requests, nothing reaches Lua outside the loop (a
 * client being collected cancels its uploads silently). */

typedef struct lupload {
    client_t *c;
    lua_Integer id;
    /* what the callback hears (borrowed for the call) */
    const epode_upload_result_t *res;
    unsigned long long sent, total;
    int progress;
} lupload;

/* Protected: done(url, err, info, client) or progress(sent, total, client). */
static int lupload_protected(lua_State *L)
{
    lupload *u = lua_touserdata(L, 2);
    push_modern(L, 1);
    if (lua_rawgeti(L, -1, u->id) != LUA_TTABLE)
        return 0;
    int entry = lua_gettop(L);
    if (u->progress) {
        if (lua_getfield(L, entry, "progress") != LUA_TFUNCTION)
            return 0;
        lua_pushinteger(L, (lua_Integer)u->sent);
        lua_pushinteger(L, (lua_Integer)u->total);
        lua_pushvalue(L, 1);
        lua_call(L, 3, 0);
        return 0;
    }
    lua_pushnil(L);
    lua_rawseti(L, entry - 1, u->id); /* forgotten first: the callback may upload again */
    if (lua_getfield(L, entry, "cb") != LUA_TFUNCTION)
        return 0;
    const epode_upload_result_t *r = u->res;
    if (r->err == 0) {
        lua_pushstring(L, r->get_url);
        lua_pushnil(L);
    } else {
        lua_pushnil(L);
        lua_pushstring(L, epode_err_name(r->err));
    }
    lua_createtable(L, 0, 5);
    set_field_str(L, "condition", r->condition);
    set_field_str(L, "text", r->text);
    set_field_str(L, "retry_stamp", r->retry_stamp);
    lua_pushinteger(L, (lua_Integer)r->max_file_size);
    lua_setfield(L, -2, "max_file_size");
    lua_pushinteger(L, (lua_Integer)r->http_status);
    lua_setfield(L, -2, "http_status");
    lua_pushvalue(L, 1);
    lua_call(L, 4, 0);
    return 0;
}

static void on_upload_done_c(epode_upload_t *up, unsigned id, const epode_upload_result_t *r,
                             void *user)
{
    (void)up, (void)id;
    lupload *u = user;
    u->res = r;
    u->progress = 0;
    if (u->c->in_loop)
        call_protected(u->c, lupload_protected, u, "upload");
    free(u);
}

static void on_upload_progress_c(epode_upload_t *up, unsigned id, unsigned long long sent,
                                 unsigned long long total, void *user)
{
    (void)up, (void)id;
    lupload *u = user;
    u->sent = sent;
    u->total = total;
    u->progress = 1;
    if (u->c->in_loop)
        call_protected(u->c, lupload_protected, u, "upload progress");
}

static int m_upload(lua_State *L)
{
    client_t *c = check_client(L, "client:upload");
    luaL_checktype(L, 2, LUA_TTABLE);
    luaL_checktype(L, 3, LUA_TFUNCTION);
    if (!lua_isnoneornil(L, 4))
        luaL_checktype(L, 4, LUA_TFUNCTION);
    epode_upload_file_t f = {0};
    size_t len = 0;
    int ty = lua_getfield(L, 2, "data");
    if (ty == LUA_TSTRING)
        f.data = lua_tolstring(L, -1, &len); /* anchored by the options table */
    else if (ty != LUA_TNIL)
        return luaL_error(L, "client:upload: 'data' must be a string");
    lua_pop(L, 1);
    f.len = len;
    f.path = opt_string(L, 2, "path");
    f.filename = opt_string(L, 2, "filename");
    f.content_type = opt_string(L, 2, "content_type");
    const char *service = opt_string(L, 2, "service");
    lua_Integer max = 0;
    if (lua_getfield(L, 2, "max") != LUA_TNIL)
        max = luaL_checkinteger(L, -1);
    lua_pop(L, 1);
    int allow_http = lua_getfield(L, 2, "allow_http") != LUA_TNIL && lua_toboolean(L, -1);
    lua_pop(L, 1);
    if (f.data && !f.filename)
        f.filename = "file.bin";
    int rc = 0;
    if (!c->upload)
        rc = epode_upload_new(c->conn, &c->upload);
    if (rc == 0 && allow_http)
        rc = epode_upload_set_allow_http(c->upload, 1);
    if (rc == 0 && lua_getfield(L, 2, "resolve") == LUA_TTABLE) {
        lua_rawgeti(L, -1, 1);
        lua_rawgeti(L, -2, 2);
        lua_rawgeti(L, -3, 3);
        const char *host = lua_tostring(L, -3), *addr = lua_tostring(L, -1);
        lua_Integer port = lua_tointeger(L, -2);
        rc = host && addr && port > 0 && port < 65536
                 ? epode_upload_add_resolve(c->upload, host, (unsigned)port, addr)
                 : EPODE_EINVAL;
        lua_pop(L, 3);
    }
    lua_settop(L, 4);
    if (rc == 0 && service)
        rc = epode_upload_set_service(c->upload, service, (unsigned long long)max);
    if (rc < 0)
        return raise_epode(L, "client:upload", rc);
    lupload *u = malloc(sizeof *u);
    if (!u)
        return luaL_error(L, "out of memory");
    memset(u, 0, sizeof *u);
    u->c = c;
    u->id = ++c->next_req;
    push_modern(L, 1);
    lua_createtable(L, 0, 2);
    lua_pushvalue(L, 3);
    lua_setfield(L, -2, "cb");
    lua_pushvalue(L, 4);
    lua_setfield(L, -2, "progress");
    lua_rawseti(L, -2, u->id);
    lua_pop(L, 1);
    unsigned uid = 0;
    rc = epode_upload_start(c->upload, &f, on_upload_done_c,
                            lua_isnil(L, 4) ? NULL : on_upload_progress_c, u, &uid);
    if (rc < 0) {
        push_modern(L, 1);
        lua_pushnil(L);
        lua_rawseti(L, -2, u->id);
        free(u);
        return raise_epode(L, "client:upload", rc);
    }
    lua_pushinteger(L, (lua_Integer)uid);
    return 1;
}

static int m_cancel_upload(lua_State *L)
{
    client_t *c = check_client(L, "client:cancel_upload");
    lua_Integer id = luaL_checkinteger(L, 2);
    int rc = c->upload ? epode_upload_cancel(c->upload, (unsigned)id) : EPODE_ENOTFOUND;
    if (rc < 0)
        return raise_epode(L, "client:cancel_upload", rc);
    lua_settop(L, 1);
    return 1;
}

static int m_send_url(lua_State *L)
{
    client_t *c = check_client(L, "client:send_url");
    const char *to = check_cstr(L, 2), *url = check_cstr(L, 3), *type = opt_cstr(L, 4);
    int rc = epode_upload_send_url(c->conn, to, type, url);
    if (rc < 0)
        return raise_epode(L, "client:send_url", rc);
    lua_settop(L, 1);
    return 1;
}

/* epode.oob_url(msg_or_stanza) */
static int l_oob_url(lua_State *L)
{
    if (lua_istable(L, 1)) { /* a message table: its stanza */
        lua_getfield(L, 1, "stanza");
        lua_replace(L, 1);
    }
    lstanza_t *b = check_stanza(L, 1);
    const char *url = epode_oob_url(b->el);
    if (url)
        lua_pushstring(L, url);
    else
        lua_pushnil(L);
    return 1;
}
