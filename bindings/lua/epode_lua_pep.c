/* epode_lua_pep.c — the PEP family in the Lua module: publish-subscribe
 * and PEP (XEP-0060/0163), bookmarks (XEP-0402), avatars (XEP-0084 with
 * XEP-0153 hashes) and nicknames (XEP-0172). Not compiled on its own:
 * epode_lua.c includes it after epode_lua_modern.c, whose request table
 * (UV_MODERN) it shares: a pending request is [id] = { cb = done }.
 *
 *   c:on_pep(fn)  fn(event, client) for every notification, as a table:
 *       { kind = "pubsub", type = "published"|"retracted"|"purged"|"deleted",
 *         from =, node =, id =, publisher =, payload = stanza }
 *       { kind = "bookmark", event = "loaded"|"added"|"updated"|"removed"|
 *         "fetch_failed", room =, name =, nick =, password =, autojoin = }
 *       { kind = "avatar", jid =, id =, type =, source = "pep"|"vcard" }
 *       { kind = "nick", jid =, nick =, source = "pep"|"presence"|"message" }
 *   c:publish(node, payload [, { id =, jid =, options = { var = value } }], done)
 *       done(item_id, err, client)
 *   c:fetch_items(node [, { jid =, id =, max = }], done)
 *       done({ { id =, publisher =, payload = }, ... }, err, client)
 *   c:retract(node, id [, { jid =, notify = }], done)   done(true, err, client)
 *   c:bookmarks(done)                 done({ bookmark tables }, err, client)
 *   c:add_bookmark(room [, { name =, autojoin =, nick =, password = }], done)
 *   c:remove_bookmark(room, done)     done(true, err, client)
 *   c:publish_avatar(data [, { type =, width =, height = }], done)  done(id, err, client)
 *   c:fetch_avatar(jid, done)         done(data | false (none), err, client, type)
 *   c:set_nick(nick, done)            done(true, err, client)
 *
 * On failure a callback gets nil and an error word: the XEP-0060 pubsub
 * condition when the service named one ("precondition_not_met"), else
 * the stanza condition ("item-not-found"), else the error name
 * ("TIMEDOUT"). The helpers are made on first use (before or after
 * connect); they advertise NODE+notify through a caps helper of their
 * own on the client's disco helper. As with the other requests, nothing
 * reaches Lua outside the loop. */

typedef struct lua_pep {
    epode_caps_t *caps;
    epode_pubsub_t *ps;
    epode_bookmarks_t *bm;
    epode_avatar_t *av;
    epode_nickname_t *nick;
} lua_pep_t;

enum { P_ITEM_ID, P_ITEMS, P_OK, P_BOOKMARKS, P_AVATAR };

typedef struct lpep {
    client_t *c;
    lua_Integer id;
    int kind;
    /* what the callback hears (borrowed for the call) */
    int status;
    epode_stanza_cond_t cond;
    epode_pubsub_error_t perr;
    const epode_pubsub_reply_t *reply;
    const char *str, *type;
    const unsigned char *data;
    size_t len;
} lpep;

static void pep_release(client_t *c)
{
    if (!c->pep)
        return;
    epode_bookmarks_free(c->pep->bm); /* pending requests are told nothing (not in the loop) */
    epode_avatar_free(c->pep->av);
    epode_nickname_free(c->pep->nick);
    epode_pubsub_free(c->pep->ps);
    epode_caps_free(c->pep->caps);
    free(c->pep);
    c->pep = NULL;
}

static void push_bookmark(lua_State *L, const epode_bookmark_t *b)
{
    lua_createtable(L, 0, 5);
    set_field_str(L, "room", epode_bookmark_room(b));
    set_field_str(L, "name", epode_bookmark_name(b));
    set_field_str(L, "nick", epode_bookmark_nick(b));
    set_field_str(L, "password", epode_bookmark_password(b));
    lua_pushboolean(L, epode_bookmark_autojoin(b));
    lua_setfield(L, -2, "autojoin");
}

static void push_item(lua_State *L, const epode_pubsub_item_t *it)
{
    lua_createtable(L, 0, 3);
    set_field_str(L, "id", epode_pubsub_item_id(it));
    set_field_str(L, "publisher", epode_pubsub_item_publisher(it));
    if (epode_pubsub_item_payload(it)) {
        push_stanza(L, epode_pubsub_item_payload(it), 1);
        lua_setfield(L, -2, "payload");
    }
}

/* ---- notifications ------------------------------------------------------------------ */

typedef struct pep_ev {
    const char *kind;
    epode_pubsub_event_type_t type;
    const char *from, *node, *jid, *id, *type_s, *source, *nick, *event;
    const epode_pubsub_item_t *item;
    const epode_bookmark_t *bm;
} pep_ev;

static int pep_event_args(lua_State *L)
{
    pep_ev *e = lua_touserdata(L, 2);
    lua_createtable(L, 0, 8);
    set_field_str(L, "kind", e->kind);
    set_field_str(L, "from", e->from);
    set_field_str(L, "node", e->node);
    set_field_str(L, "jid", e->jid);
    set_field_str(L, "id", e->id);
    set_field_str(L, "source", e->source);
    set_field_str(L, "nick", e->nick);
    set_field_str(L, "event", e->event);
    if (strcmp(e->kind, "pubsub") == 0) {
        set_field_str(L, "type", epode_pubsub_event_type_name(e->type));
        if (e->item) {
            set_field_str(L, "id", epode_pubsub_item_id(e->item));
            set_field_str(L, "publisher", epode_pubsub_item_publisher(e->item));
            if (epode_pubsub_item_payload(e->item)) {
                push_stanza(L, epode_pubsub_item_payload(e->item), 1);
                lua_setfield(L, -2, "payload");
            }
        }
    } else {
        set_field_str(L, "type", e->type_s);
    }
    if (e->bm) {
        set_field_str(L, "room", epode_bookmark_room(e->bm));
        set_field_str(L, "name", epode_bookmark_name(e->bm));
        set_field_str(L, "nick", epode_bookmark_nick(e->bm));
        set_field_str(L, "password", epode_bookmark_password(e->bm));
        lua_pushboolean(L, epode_bookmark_autojoin(e->bm));
        lua_setfield(L, -2, "autojoin");
    }
    return 1;
}

static void pep_dispatch(client_t *c, pep_ev *e)
{
    if (c->in_loop)
        dispatch(c, UV_ON_PEP, pep_event_args, e, "on_pep");
}

static void on_ps_event_c(epode_pubsub_t *ps, epode_pubsub_event_type_t type, const char *from,
                          const char *node, const epode_pubsub_item_t *item, epode_stanza_t *msg,
                          void *user)
{
    (void)ps, (void)msg;
    pep_ev e = {.kind = "pubsub", .type = type, .from = from, .node = node, .item = item};
    pep_dispatch(user, &e);
}

static void on_bm_event_c(epode_bookmarks_t *b, epode_bookmarks_event_t ev,
                          const epode_bookmark_t *bm, void *user)
{
    (void)b;
    pep_ev e = {.kind = "bookmark", .event = epode_bookmarks_event_name(ev), .bm = bm};
    pep_dispatch(user, &e);
}

static void on_av_event_c(epode_avatar_t *av, const char *jid, const char *id, const char *type,
                          epode_avatar_source_t source, void *user)
{
    (void)av;
    pep_ev e = {.kind = "avatar", .jid = jid, .id = id, .type_s = type,
                .source = epode_avatar_source_name(source)};
    pep_dispatch(user, &e);
}

static void on_nick_event_c(epode_nickname_t *n, const char *jid, const char *nick,
                            epode_nickname_source_t source, void *user)
{
    (void)n;
    pep_ev e = {.kind = "nick", .jid = jid, .nick = nick, .source = epode_nickname_source_name(source)};
    pep_dispatch(user, &e);
}

/* The helpers, made on first use; raises on failure. */
static lua_pep_t *ensure_pep(lua_State *L, client_t *c, const char *where)
{
    if (c->pep)
        return c->pep;
    lua_pep_t *p = calloc(1, sizeof *p);
    if (!p) {
        luaL_error(L, "%s: out of memory", where);
        return NULL;
    }
    c->pep = p;
    int rc = c->disco ? 0 : epode_disco_new(c->conn, &c->disco);
    if (rc == 0)
        rc = epode_caps_new(c->disco, "https://epode.example/lua", &p->caps);
    if (rc == 0)
        rc = epode_pubsub_new(c->conn, c->disco, &p->ps);
    if (rc == 0)
        rc = epode_pubsub_add_event_cb(p->ps, NULL, on_ps_event_c, c, NULL);
    if (rc == 0)
        rc = epode_bookmarks_new(p->ps, on_bm_event_c, c, &p->bm);
    if (rc == 0)
        rc = epode_avatar_new(p->ps, on_av_event_c, c, &p->av);
    if (rc == 0)
        rc = epode_nickname_new(p->ps, on_nick_event_c, c, &p->nick);
    if (rc < 0) {
        pep_release(c);
        raise_epode(L, where, rc);
    }
    return p;
}

static int m_on_pep(lua_State *L)
{
    client_t *c = check_client(L, "client:on_pep");
    luaL_checktype(L, 2, LUA_TFUNCTION);
    ensure_pep(L, c, "client:on_pep");
    return add_handler(L, UV_ON_PEP, "client:on_pep");
}

/* ---- requests -------------------------------------------------------------------------- */

static void push_err(lua_State *L, const lpep *q)
{
    if (q->perr != EPODE_PUBSUB_ERR_NONE)
        lua_pushstring(L, epode_pubsub_error_name(q->perr));
    else if (q->cond != EPODE_COND_NONE)
        lua_pushstring(L, epode_stanza_cond_name(q->cond));
    else
        lua_pushstring(L, epode_err_name(q->status));
}

/* Protected: done(result, err, client [, extra]). */
static int lpep_protected(lua_State *L)
{
    lpep *q = lua_touserdata(L, 2);
    push_modern(L, 1);
    if (lua_rawgeti(L, -1, q->id) != LUA_TTABLE)
        return 0;
    int entry = lua_gettop(L);
    lua_pushnil(L);
    lua_rawseti(L, entry - 1, q->id); /* forgotten first: the callback may start another */
    if (lua_getfield(L, entry, "cb") != LUA_TFUNCTION)
        return 0;
    int ok = q->status == 0 && q->cond == EPODE_COND_NONE;
    int nargs = 3;
    if (!ok) {
        lua_pushnil(L);
        push_err(L, q);
    } else {
        switch (q->kind) {
        case P_ITEM_ID:
            if (q->str)
                lua_pushstring(L, q->str);
            else
                lua_pushboolean(L, 1);
            break;
        case P_ITEMS: {
            size_t n = epode_pubsub_reply_item_count(q->reply);
            lua_createtable(L, (int)n, 0);
            for (size_t i = 0; i < n; i++) {
                push_item(L, epode_pubsub_reply_item_at(q->reply, i));
                lua_rawseti(L, -2, (lua_Integer)i + 1);
            }
            break;
        }
        case P_BOOKMARKS: {
            epode_bookmarks_t *b = q->c->pep ? q->c->pep->bm : NULL;
            size_t n = epode_bookmarks_count(b);
            lua_createtable(L, (int)n, 0);
            for (size_t i = 0; i < n; i++) {
                push_bookmark(L, epode_bookmarks_at(b, i));
                lua_rawseti(L, -2, (lua_Integer)i + 1);
            }
            break;
        }
        case P_AVATAR:
            if (q->data)
                lua_pushlstring(L, (const char *)q->data, q->len);
            else
                lua_pushboolean(L, 0); /* no avatar */
            break;
        default:
            lua_pushboolean(L, 1);
        }
        lua_pushnil(L);
    }
    lua_pushvalue(L, 1);
    if (q->kind == P_AVATAR) {
        if (q->type)
            lua_pushstring(L, q->type);
        else
            lua_pushnil(L);
        nargs = 4;
    }
    lua_call(L, nargs, 0);
    return 0;
}

static void lpep_finish(lpep *q, const char *where)
{
    if (q->c->in_loop)
        call_protected(q->c, lpep_protected, q, where);
    free(q);
}

static lpep *lpep_new(lua_State *L, client_t *c, int cb_idx, int kind)
{
    luaL_checktype(L, cb_idx, LUA_TFUNCTION);
    cb_idx = lua_absindex(L, cb_idx);
    lpep *q = calloc(1, sizeof *q);
    if (!q) {
        luaL_error(L, "out of memory");
        return NULL;
    }
    q->c = c;
    q->kind = kind;
    q->id = ++c->next_req;
    push_modern(L, 1);
    lua_createtable(L, 0, 1);
    lua_pushvalue(L, cb_idx);
    lua_setfield(L, -2, "cb");
    lua_rawseti(L, -2, q->id);
    lua_pop(L, 1);
    return q;
}

/* After a failed start: forgets the request and raises. */
static int lpep_fail(lua_State *L, lpep *q, const char *where, int rc)
{
    push_modern(L, 1);
    lua_pushnil(L);
    lua_rawseti(L, -2, q->id);
    lua_pop(L, 1);
    free(q);
    return raise_epode(L, where, rc);
}

static void on_reply_c(epode_pubsub_t *ps, const epode_pubsub_reply_t *r, void *user)
{
    (void)ps;
    lpep *q = user;
    q->status = epode_pubsub_reply_status(r);
    q->cond = epode_pubsub_reply_cond(r);
    q->perr = epode_pubsub_reply_pubsub_error(r);
    q->reply = r;
    q->str = epode_pubsub_reply_item_id(r);
    lpep_finish(q, "pubsub");
}

static void on_bm_result_c(epode_bookmarks_t *b, int status, epode_stanza_cond_t cond,
                           epode_pubsub_error_t perr, void *user)
{
    (void)b;
    lpep *q = user;
    q->status = status;
    q->cond = cond;
    q->perr = perr;
    lpep_finish(q, "bookmarks");
}

static void on_av_result_c(epode_avatar_t *av, int status, epode_stanza_cond_t cond,
                           epode_pubsub_error_t perr, const char *id, void *user)
{
    (void)av;
    lpep *q = user;
    q->status = status;
    q->cond = cond;
    q->perr = perr;
    q->str = id;
    lpep_finish(q, "avatar");
}

static void on_av_fetch_c(epode_avatar_t *av, int status, epode_stanza_cond_t cond,
                          const char *jid, const unsigned char *data, size_t len, const char *id,
                          const char *type, void *user)
{
    (void)av, (void)jid, (void)id;
    lpep *q = user;
    q->status = status;
    q->cond = cond;
    q->data = data;
    q->len = len;
    q->type = type;
    lpep_finish(q, "avatar fetch");
}

static void on_nick_result_c(epode_nickname_t *n, int status, epode_stanza_cond_t cond,
                             epode_pubsub_error_t perr, void *user)
{
    (void)n;
    lpep *q = user;
    q->status = status;
    q->cond = cond;
    q->perr = perr;
    lpep_finish(q, "nick");
}

/* An options table at `idx` (may be absent when `done_idx` is idx). */
static int pep_opts_at(lua_State *L, int idx)
{
    if (lua_type(L, idx) == LUA_TTABLE)
        return idx;
    return 0;
}

/* A string (or number) option, left on the stack to stay anchored; NULL
 * (nothing left) when absent. */
static const char *pep_opt_field(lua_State *L, int t, const char *key)
{
    if (!t)
        return NULL;
    int ty = lua_getfield(L, t, key);
    if (ty == LUA_TSTRING || ty == LUA_TNUMBER)
        return lua_tostring(L, -1);
    if (ty != LUA_TNIL)
        luaL_error(L, "option '%s' must be a string, not %s", key, lua_typename(L, ty));
    lua_pop(L, 1);
    return NULL;
}

static lua_Integer pep_opt_int(lua_State *L, int t, const char *key)
{
    if (!t)
        return 0;
    lua_Integer v = 0;
    if (lua_getfield(L, t, key) != LUA_TNIL)
        v = luaL_checkinteger(L, -1);
    lua_pop(L, 1);
    return v;
}

static int pep_opt_bool(lua_State *L, int t, const char *key, int dflt)
{
    if (!t)
        return dflt;
    int v = lua_getfield(L, t, key) == LUA_TNIL ? dflt : lua_toboolean(L, -1);
    lua_pop(L, 1);
    return v;
}

/* c:publish(node, payload [, opts], done) */
static int m_publish(lua_State *L)
{
    client_t *c = check_client(L, "client:publish");
    lua_pep_t *p = ensure_pep(L, c, "client:publish");
    const char *node = check_cstr(L, 2);
    int t = pep_opts_at(L, 4), done = t ? 5 : 4;
    luaL_checktype(L, done, LUA_TFUNCTION); /* before anything is made */
    epode_stanza_t *payload = NULL;
    if (lua_type(L, 3) == LUA_TSTRING)
        payload = parse_into_box(L, 3, "client:publish")->el; /* the box stays on the stack */
    else if (!lua_isnil(L, 3))
        payload = check_stanza(L, 3)->el;
    luaL_checkstack(L, 32, "client:publish");
    const char *id = pep_opt_field(L, t, "id");
    const char *jid = pep_opt_field(L, t, "jid");
    epode_form_t *form = NULL;
    if (t && lua_getfield(L, t, "options") == LUA_TTABLE) {
        int o = lua_gettop(L);
        int rc = epode_pubsub_options_new(NULL, &form);
        if (rc < 0)
            return raise_epode(L, "client:publish", rc);
        lua_pushnil(L);
        while (lua_next(L, o)) {
            const char *var = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
            const char *val = lua_type(L, -1) == LUA_TBOOLEAN ? (lua_toboolean(L, -1) ? "true" : "false")
                              : lua_type(L, -1) == LUA_TSTRING || lua_type(L, -1) == LUA_TNUMBER
                                  ? lua_tostring(L, -1)
                                  : NULL;
            if (!var || !val || epode_form_set_value(form, var, val) < 0) {
                epode_form_free(form);
                return luaL_error(L, "client:publish: options must map names to strings, "
                                     "numbers or booleans");
            }
            lua_pop(L, 1);
        }
    }
    lpep *q = lpep_new(L, c, done, P_ITEM_ID);
    int rc = epode_pubsub_publish(p->ps, jid, node, id, payload, form, on_reply_c, q, NULL);
    epode_form_free(form);
    if (rc < 0)
        return lpep_fail(L, q, "client:publish", rc);
    lua_settop(L, 1);
    return 1;
}

/* c:fetch_items(node [, opts], done) */
static int m_fetch_items(lua_State *L)
{
    client_t *c = check_client(L, "client:fetch_items");
    lua_pep_t *p = ensure_pep(L, c, "client:fetch_items");
    const char *node = check_cstr(L, 2);
    int t = pep_opts_at(L, 3), done = t ? 4 : 3;
    const char *jid = pep_opt_field(L, t, "jid");
    const char *id = pep_opt_field(L, t, "id");
    lua_Integer max = pep_opt_int(L, t, "max");
    if (max < 0 || max > 100000)
        return luaL_error(L, "client:fetch_items: max out of range");
    lpep *q = lpep_new(L, c, done, P_ITEMS);
    int rc = epode_pubsub_fetch(p->ps, jid, node, id, (unsigned)max, on_reply_c, q, NULL);
    if (rc < 0)
        return lpep_fail(L, q, "client:fetch_items", rc);
    lua_settop(L, 1);
    return 1;
}

/* c:retract(node, id [, opts], done) */
static int m_retract(lua_State *L)
{
    client_t *c = check_client(L, "client:retract");
    lua_pep_t *p = ensure_pep(L, c, "client:retract");
    const char *node = check_cstr(L, 2), *id = check_cstr(L, 3);
    int t = pep_opts_at(L, 4), done = t ? 5 : 4;
    const char *jid = pep_opt_field(L, t, "jid");
    int notify = pep_opt_bool(L, t, "notify", 1);
    lpep *q = lpep_new(L, c, done, P_OK);
    int rc = epode_pubsub_retract(p->ps, jid, node, id, notify, on_reply_c, q, NULL);
    if (rc < 0)
        return lpep_fail(L, q, "client:retract", rc);
    lua_settop(L, 1);
    return 1;
}

static int m_bookmarks(lua_State *L)
{
    client_t *c = check_client(L, "client:bookmarks");
    lua_pep_t *p = ensure_pep(L, c, "client:bookmarks");
    lpep *q = lpep_new(L, c, 2, P_BOOKMARKS);
    int rc = epode_bookmarks_fetch(p->bm, on_bm_result_c, q);
    if (rc < 0)
        return lpep_fail(L, q, "client:bookmarks", rc);
    lua_settop(L, 1);
    return 1;
}

/* c:add_bookmark(room [, opts], done) */
static int m_add_bookmark(lua_State *L)
{
    client_t *c = check_client(L, "client:add_bookmark");
    lua_pep_t *p = ensure_pep(L, c, "client:add_bookmark");
    const char *room = check_cstr(L, 2);
    int t = pep_opts_at(L, 3), done = t ? 4 : 3;
    luaL_checkstack(L, 16, "client:add_bookmark");
    const char *name = pep_opt_field(L, t, "name");
    const char *nick = pep_opt_field(L, t, "nick");
    const char *password = pep_opt_field(L, t, "password");
    int autojoin = pep_opt_bool(L, t, "autojoin", 1);
    lpep *q = lpep_new(L, c, done, P_OK);
    int rc = epode_bookmarks_add(p->bm, room, name, autojoin, nick, password, on_bm_result_c, q);
    if (rc < 0)
        return lpep_fail(L, q, "client:add_bookmark", rc);
    lua_settop(L, 1);
    return 1;
}

static int m_remove_bookmark(lua_State *L)
{
    client_t *c = check_client(L, "client:remove_bookmark");
    lua_pep_t *p = ensure_pep(L, c, "client:remove_bookmark");
    const char *room = check_cstr(L, 2);
    lpep *q = lpep_new(L, c, 3, P_OK);
    int rc = epode_bookmarks_remove(p->bm, room, on_bm_result_c, q);
    if (rc < 0)
        return lpep_fail(L, q, "client:remove_bookmark", rc);
    lua_settop(L, 1);
    return 1;
}

/* c:publish_avatar(data [, opts], done) */
static int m_publish_avatar(lua_State *L)
{
    client_t *c = check_client(L, "client:publish_avatar");
    lua_pep_t *p = ensure_pep(L, c, "client:publish_avatar");
    size_t len;
    const char *data = luaL_checklstring(L, 2, &len);
    int t = pep_opts_at(L, 3), done = t ? 4 : 3;
    const char *type = pep_opt_field(L, t, "type");
    lua_Integer w = pep_opt_int(L, t, "width"), h = pep_opt_int(L, t, "height");
    if (w < 0 || h < 0 || w > 65535 || h > 65535)
        return luaL_error(L, "client:publish_avatar: width/height out of range");
    lpep *q = lpep_new(L, c, done, P_ITEM_ID);
    int rc = epode_avatar_publish(p->av, (const unsigned char *)data, len, type, (unsigned)w,
                                  (unsigned)h, on_av_result_c, q);
    if (rc < 0)
        return lpep_fail(L, q, "client:publish_avatar", rc);
    lua_settop(L, 1);
    return 1;
}

static int m_fetch_avatar(lua_State *L)
{
    client_t *c = check_client(L, "client:fetch_avatar");
    lua_pep_t *p = ensure_pep(L, c, "client:fetch_avatar");
    const char *jid = opt_cstr(L, 2);
    lpep *q = lpep_new(L, c, 3, P_AVATAR);
    int rc = epode_avatar_fetch(p->av, jid, on_av_fetch_c, q);
    if (rc < 0)
        return lpep_fail(L, q, "client:fetch_avatar", rc);
    lua_settop(L, 1);
    return 1;
}

static int m_set_nick(lua_State *L)
{
    client_t *c = check_client(L, "client:set_nick");
    lua_pep_t *p = ensure_pep(L, c, "client:set_nick");
    const char *nick = opt_cstr(L, 2);
    lpep *q = lpep_new(L, c, 3, P_OK);
    int rc = epode_nickname_set(p->nick, nick, on_nick_result_c, q);
    if (rc < 0)
        return lpep_fail(L, q, "client:set_nick", rc);
    lua_settop(L, 1);
    return 1;
}
