/* epode_lua_commands.c — ad-hoc commands (XEP-0050, epode/commands.h) in
 * the Lua module, and the archive's automatic catch-up (c:catch_up()). Not compiled on its own: epode_lua.c includes it after
 * epode_lua_modern.c, whose request table (UV_MODERN) it shares; Lua
 * functions live there, never in the registry, and run under lua_pcall.
 *
 *   c:command(node, name, fn [, allow])   offer a command; fn(session, c) runs
 *        for each request of a session and returns a reply (below);
 *        allow: nil (our own account only), true (anyone), a list of JIDs
 *        (a bare JID allows its resources) or a function(jid) -> boolean
 *   c:remove_command(node)
 *   c:commands(jid, fn(items, err, c))     items: { {jid=, node=, name=}... }
 *   c:execute(jid, node, [form], fn(result, err, specific, c))
 *   c:continue(jid, node, session_id, action, [form], fn(result, err, specific, c))
 *        action: "execute" (the default one), "next", "prev", "complete", "cancel"
 *
 * session: { node=, session_id=, requester=, stage=, action=, form=, data= }
 *   (data: a table kept for the session's life; form: what was submitted)
 * reply: { status="executing"|"completed"|"canceled", form=, notes=,
 *          actions={ "next", "prev", "complete" }, default= }, or a string
 *   (completed with that note), or nil (completed); fn may also return
 *   nil, condition [, specific [, text]] to answer with an error.
 * form: { type="form"|"submit"|"result"|"cancel", title=, instructions={...},
 *         fields={ {var=, type=, label=, desc=, required=, value=, values={...},
 *                   options={ {label=, value=}... }}... } }; as an argument, a
 *   plain { var = value, ... } table is a submission of those values.
 * result: { jid=, node=, session_id=, status=, notes={ {type=, text=}... },
 *           form=, actions={...}, default= }
 *
 *   c:catch_up(true [, last_id])   on every fresh session, what the archive holds
 *        after the last archive id seen goes to the on_message handlers (message
 *        tables with archive_id); a live copy of one is not handed on again
 *   c:catch_up(false);  c:mam_last_id() -> the last archive id seen, or nil
 */

/* ---- forms <-> tables --------------------------------------------------------- */

static void cmd_push_form(lua_State *L, const epode_form_t *f)
{
    lua_createtable(L, 0, 4);
    set_field_str(L, "type", epode_form_type_name(epode_form_get_type(f)));
    set_field_str(L, "title", epode_form_get_title(f));
    lua_newtable(L);
    for (size_t i = 0; i < epode_form_instructions_count(f); i++) {
        lua_pushstring(L, epode_form_instructions_at(f, i));
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    lua_setfield(L, -2, "instructions");
    lua_newtable(L);
    for (size_t i = 0; i < epode_form_field_count(f); i++) {
        const epode_form_field_t *fl = epode_form_field_at(f, i);
        lua_createtable(L, 0, 8);
        set_field_str(L, "var", epode_form_field_var(fl));
        const char *t = epode_form_field_type_name(fl);
        set_field_str(L, "type", t ? t : "text-single");
        set_field_str(L, "label", epode_form_field_label(fl));
        set_field_str(L, "desc", epode_form_field_desc(fl));
        lua_pushboolean(L, epode_form_field_required(fl));
        lua_setfield(L, -2, "required");
        set_field_str(L, "value", epode_form_field_value(fl));
        lua_newtable(L);
        for (size_t k = 0; k < epode_form_field_value_count(fl); k++) {
            lua_pushstring(L, epode_form_field_value_at(fl, k));
            lua_rawseti(L, -2, (lua_Integer)k + 1);
        }
        lua_setfield(L, -2, "values");
        lua_newtable(L);
        for (size_t k = 0; k < epode_form_field_option_count(fl); k++) {
            const char *label = NULL, *v = epode_form_field_option_at(fl, k, &label);
            lua_createtable(L, 0, 2);
            set_field_str(L, "label", label);
            set_field_str(L, "value", v);
            lua_rawseti(L, -2, (lua_Integer)k + 1);
        }
        lua_setfield(L, -2, "options");
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    lua_setfield(L, -2, "fields");
}

/* A string field of the table at idx, or NULL. */
static const char *cmd_field(lua_State *L, int idx, const char *key)
{
    lua_getfield(L, idx, key);
    const char *s = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
    lua_pop(L, 1); /* the table keeps the string alive */
    return s;
}

/* A value as form text: strings, numbers, booleans. */
static const char *cmd_form_text(lua_State *L, int idx)
{
    if (lua_type(L, idx) == LUA_TBOOLEAN)
        return lua_toboolean(L, idx) ? "true" : "false";
    return lua_type(L, idx) == LUA_TSTRING || lua_type(L, idx) == LUA_TNUMBER
               ? lua_tostring(L, idx)
               : NULL;
}

/* Fills `f` from the form table at idx: 0, or an epode error code. */
static int cmd_fill_form(lua_State *L, int idx, epode_form_t *f)
{
    idx = lua_absindex(L, idx);
    int top = lua_gettop(L), rc = 0;
    const char *title = cmd_field(L, idx, "title");
    if (title)
        rc = epode_form_set_title(f, title);
    if (lua_getfield(L, idx, "instructions") == LUA_TTABLE)
        for (lua_Integer i = 1; rc == 0 && lua_rawgeti(L, -1, i) == LUA_TSTRING; i++) {
            rc = epode_form_add_instructions(f, lua_tostring(L, -1));
            lua_pop(L, 1);
        }
    lua_settop(L, top);
    if (lua_getfield(L, idx, "fields") != LUA_TTABLE) {
        lua_pop(L, 1);
        /* { var = value, ... }: a submission of those values */
        lua_pushnil(L);
        while (rc == 0 && lua_next(L, idx)) {
            if (lua_type(L, -2) == LUA_TSTRING && strcmp(lua_tostring(L, -2), "type") &&
                strcmp(lua_tostring(L, -2), "title") && strcmp(lua_tostring(L, -2), "instructions")) {
                const char *v = cmd_form_text(L, -1);
                if (v)
                    rc = epode_form_set_value(f, lua_tostring(L, -2), v);
            }
            lua_pop(L, 1);
        }
    } else {
        int fields = lua_gettop(L);
        for (lua_Integer i = 1; rc == 0 && lua_rawgeti(L, fields, i) == LUA_TTABLE; i++) {
            int fl_idx = lua_gettop(L);
            epode_form_field_t *fl;
            const char *type = cmd_field(L, fl_idx, "type");
            epode_form_field_type_t ft = epode_form_field_type_from_name(type);
            rc = epode_form_add_field(f, cmd_field(L, fl_idx, "var"),
                                      ft ? ft : EPODE_FIELD_TEXT_SINGLE,
                                      cmd_field(L, fl_idx, "label"), &fl);
            const char *desc = cmd_field(L, fl_idx, "desc");
            if (rc == 0 && desc)
                rc = epode_form_field_set_desc(fl, desc);
            lua_getfield(L, fl_idx, "required");
            if (rc == 0 && lua_toboolean(L, -1))
                rc = epode_form_field_set_required(fl, 1);
            lua_pop(L, 1);
            lua_getfield(L, fl_idx, "value");
            const char *v = cmd_form_text(L, -1);
            if (rc == 0 && v)
                rc = epode_form_field_add_value(fl, v);
            lua_pop(L, 1);
            if (lua_getfield(L, fl_idx, "values") == LUA_TTABLE)
                for (lua_Integer k = 1; rc == 0 && lua_rawgeti(L, -1, k) != LUA_TNIL; k++) {
                    if ((v = cmd_form_text(L, -1)))
                        rc = epode_form_field_add_value(fl, v);
                    lua_pop(L, 1);
                }
            lua_settop(L, fl_idx);
            if (lua_getfield(L, fl_idx, "options") == LUA_TTABLE)
                for (lua_Integer k = 1; rc == 0 && lua_rawgeti(L, -1, k) != LUA_TNIL; k++) {
                    if (lua_type(L, -1) == LUA_TTABLE) {
                        const char *ov = cmd_field(L, -1, "value");
                        if (ov)
                            rc = epode_form_field_add_option(fl, cmd_field(L, -1, "label"), ov);
                    } else if ((v = cmd_form_text(L, -1))) {
                        rc = epode_form_field_add_option(fl, NULL, v);
                    }
                    lua_pop(L, 1);
                }
            lua_settop(L, fields);
        }
    }
    lua_settop(L, top);
    return rc;
}

/* A new form from the table at idx (nil: NULL); `type` when it names none.
 * Caller frees. */
static epode_form_t *cmd_form_arg(lua_State *L, int idx, epode_form_type_t type)
{
    if (lua_isnoneornil(L, idx))
        return NULL;
    luaL_checktype(L, idx, LUA_TTABLE);
    const char *t = cmd_field(L, idx, "type");
    static const char *const names[] = {"form", "submit", "cancel", "result"};
    for (int i = 0; t && i < 4; i++)
        if (!strcmp(t, names[i]))
            type = (epode_form_type_t)(i + 1);
    epode_form_t *f;
    int rc = epode_form_new(NULL, type, &f);
    if (rc < 0)
        luaL_error(L, "form: %s", epode_strerror(rc));
    if ((rc = cmd_fill_form(L, idx, f)) < 0) {
        epode_form_free(f);
        luaL_error(L, "form: %s: %s", epode_err_name(rc), epode_strerror(rc));
    }
    return f;
}

/* ---- offering ------------------------------------------------------------------- */

/* UV_MODERN.commands: { [node] = { fn=, allow= } }; UV_MODERN.command_data:
 * { [session_id] = table } */
static void push_cmd_table(lua_State *L, int client_idx, const char *key)
{
    push_modern(L, client_idx);
    if (lua_getfield(L, -1, key) != LUA_TTABLE) {
        lua_pop(L, 1);
        lua_newtable(L);
        lua_pushvalue(L, -1);
        lua_setfield(L, -3, key);
    }
    lua_remove(L, -2);
}

typedef struct cmd_call {
    epode_command_session_t *s;
    epode_command_action_t action;
    const epode_form_t *form;
    int status;
    const char *requester, *node;
    int allowed;
} cmd_call;

static int cmd_protected(lua_State *L)
{
    cmd_call *cc = lua_touserdata(L, 2);
    const char *node = epode_command_session_node(cc->s);
    const char *sid = epode_command_session_id(cc->s);
    push_cmd_table(L, 1, "commands");
    if (lua_getfield(L, -1, node) != LUA_TTABLE)
        return 0;
    int entry = lua_gettop(L);
    int top = lua_gettop(L);
    lua_getfield(L, entry, "fn");
    /* the session table */
    lua_createtable(L, 0, 7);
    set_field_str(L, "node", node);
    set_field_str(L, "session_id", sid);
    set_field_str(L, "requester", epode_command_session_requester(cc->s));
    lua_pushinteger(L, epode_command_session_stage(cc->s));
    lua_setfield(L, -2, "stage");
    set_field_str(L, "action", epode_command_action_name(cc->action));
    if (cc->form) {
        cmd_push_form(L, cc->form);
        lua_setfield(L, -2, "form");
    }
    push_cmd_table(L, 1, "command_data");
    if (lua_getfield(L, -1, sid) != LUA_TTABLE) {
        lua_pop(L, 1);
        lua_newtable(L);
        lua_pushvalue(L, -1);
        lua_setfield(L, -3, sid);
    }
    lua_setfield(L, -3, "data");
    lua_pop(L, 1);
    lua_pushvalue(L, 1);
    lua_call(L, 2, 3);
    int r = top + 1;
    if (lua_isnil(L, r) && lua_type(L, r + 1) == LUA_TSTRING) { /* nil, condition, specific */
        epode_stanza_cond_t cond = epode_stanza_cond_from_name(lua_tostring(L, r + 1));
        const char *sp = lua_type(L, r + 2) == LUA_TSTRING ? lua_tostring(L, r + 2) : NULL;
        int spec = 0;
        for (int i = EPODE_COMMAND_ERROR_MALFORMED_ACTION;
             sp && i <= EPODE_COMMAND_ERROR_SESSION_EXPIRED; i++)
            if (!strcmp(sp, epode_command_error_name((epode_command_error_t)i)))
                spec = i;
        if (cond == EPODE_COND_NONE)
            return luaL_error(L, "command %s: unknown condition %s", node, lua_tostring(L, r + 1));
        epode_command_session_set_error(cc->s, cond, (epode_command_error_t)spec, NULL);
        cc->status = EPODE_COMMAND_CANCELED;
        return 0;
    }
    if (lua_isnil(L, r)) {
        cc->status = EPODE_COMMAND_COMPLETED;
        return 0;
    }
    if (lua_type(L, r) == LUA_TSTRING) {
        epode_command_session_add_note(cc->s, EPODE_COMMAND_NOTE_INFO, lua_tostring(L, r));
        cc->status = EPODE_COMMAND_COMPLETED;
        return 0;
    }
    luaL_checktype(L, r, LUA_TTABLE);
    const char *st = cmd_field(L, r, "status");
    cc->status = !st || !strcmp(st, "completed") ? EPODE_COMMAND_COMPLETED
                 : !strcmp(st, "executing")      ? EPODE_COMMAND_EXECUTING
                 : !strcmp(st, "canceled")       ? EPODE_COMMAND_CANCELED
                                                 : -1;
    if (cc->status < 0)
        return luaL_error(L, "command %s: status is executing, completed or canceled", node);
    if (lua_getfield(L, r, "form") == LUA_TTABLE) {
        epode_form_t *f = cmd_form_arg(L, -1, cc->status == EPODE_COMMAND_EXECUTING
                                              ? EPODE_FORM_FORM
                                              : EPODE_FORM_RESULT);
        epode_command_session_set_form(cc->s, f);
        epode_form_free(f);
    }
    lua_settop(L, r);
    if (lua_getfield(L, r, "notes") == LUA_TTABLE)
        for (lua_Integer i = 1; lua_rawgeti(L, -1, i) != LUA_TNIL; i++) {
            epode_command_note_type_t t = EPODE_COMMAND_NOTE_INFO;
            const char *text = NULL;
            if (lua_type(L, -1) == LUA_TTABLE) {
                const char *tn = cmd_field(L, -1, "type");
                t = tn && !strcmp(tn, "warn")    ? EPODE_COMMAND_NOTE_WARN
                    : tn && !strcmp(tn, "error") ? EPODE_COMMAND_NOTE_ERROR
                                                 : EPODE_COMMAND_NOTE_INFO;
                text = cmd_field(L, -1, "text");
            } else {
                text = lua_tostring(L, -1);
            }
            if (text)
                epode_command_session_add_note(cc->s, t, text);
            lua_pop(L, 1);
        }
    lua_settop(L, r);
    if (cc->status == EPODE_COMMAND_EXECUTING && lua_getfield(L, r, "actions") == LUA_TTABLE) {
        unsigned mask = 0;
        for (lua_Integer i = 1; lua_rawgeti(L, -1, i) == LUA_TSTRING; i++) {
            for (int a = EPODE_COMMAND_NEXT; a <= EPODE_COMMAND_COMPLETE; a++)
                if (!strcmp(lua_tostring(L, -1), epode_command_action_name((epode_command_action_t)a)))
                    mask |= EPODE_COMMAND_ALLOW(a);
            lua_pop(L, 1);
        }
        const char *def = cmd_field(L, r, "default");
        int d = 0;
        for (int a = EPODE_COMMAND_NEXT; def && a <= EPODE_COMMAND_COMPLETE; a++)
            if (!strcmp(def, epode_command_action_name((epode_command_action_t)a)))
                d = a;
        if (mask && epode_command_session_set_actions(cc->s, mask, (epode_command_action_t)d) < 0)
            return luaL_error(L, "command %s: bad actions or default", node);
    }
    return 0;
}

static int cmd_drop_data_protected(lua_State *L)
{
    cmd_call *cc = lua_touserdata(L, 2);
    push_cmd_table(L, 1, "command_data");
    lua_pushnil(L);
    lua_setfield(L, -2, epode_command_session_id(cc->s));
    return 0;
}

static int on_command_c(epode_commands_t *cmds, epode_command_session_t *s,
                        epode_command_action_t action, const epode_form_t *form, void *user)
{
    (void)cmds;
    client_t *c = user;
    cmd_call cc = {s, action, form, -1, NULL, NULL, 0};
    if (!c->in_loop)
        return action == EPODE_COMMAND_CANCEL ? 0 : -1;
    if (action != EPODE_COMMAND_CANCEL)
        call_protected(c, cmd_protected, &cc, "command");
    if (action == EPODE_COMMAND_CANCEL || cc.status != EPODE_COMMAND_EXECUTING)
        call_protected(c, cmd_drop_data_protected, &cc, "command");
    return cc.status;
}

static int cmd_access_protected(lua_State *L)
{
    cmd_call *cc = lua_touserdata(L, 2);
    push_cmd_table(L, 1, "commands");
    if (lua_getfield(L, -1, cc->node) != LUA_TTABLE)
        return 0;
    int entry = lua_gettop(L);
    int t = lua_getfield(L, entry, "allow");
    client_t *c = lua_touserdata(L, 1);
    const char *me = epode_conn_bound_jid(c->conn);
    if (t == LUA_TNIL) {
        cc->allowed = !cc->requester || (me && epode_jid_str_equal(cc->requester, me, 1));
    } else if (t == LUA_TBOOLEAN) {
        cc->allowed = lua_toboolean(L, -1);
    } else if (t == LUA_TFUNCTION) {
        lua_pushstring(L, cc->requester ? cc->requester : (me ? me : ""));
        lua_call(L, 1, 1);
        cc->allowed = lua_toboolean(L, -1);
    } else if (t == LUA_TTABLE && cc->requester) {
        for (lua_Integer i = 1; lua_rawgeti(L, -1, i) == LUA_TSTRING; i++) {
            const char *j = lua_tostring(L, -1);
            if (epode_jid_str_equal(cc->requester, j, !strchr(j, '/')))
                cc->allowed = 1; /* a bare JID: any of its resources */
            lua_pop(L, 1);
        }
    }
    return 0;
}

static int on_cmd_access_c(epode_commands_t *cmds, const char *requester, const char *node,
                       void *user)
{
    (void)cmds;
    client_t *c = user;
    cmd_call cc = {0};
    cc.requester = requester;
    cc.node = node;
    if (c->in_loop)
        call_protected(c, cmd_access_protected, &cc, "command access");
    return cc.allowed;
}

static epode_commands_t *ensure_cmds(lua_State *L, client_t *c, const char *where)
{
    int rc = 0;
    if (!c->disco)
        rc = epode_disco_new(c->conn, &c->disco);
    if (rc == 0 && !c->commands) {
        rc = epode_commands_new(c->conn, c->disco, &c->commands);
        if (rc == 0)
            rc = epode_commands_set_access_cb(c->commands, on_cmd_access_c, c);
    }
    if (rc < 0)
        raise_epode(L, where, rc);
    return c->commands;
}

/* c:command(node, name, fn [, allow]) */
static int m_command(lua_State *L)
{
    client_t *c = check_client(L, "client:command");
    const char *node = luaL_checkstring(L, 2), *name = luaL_checkstring(L, 3);
    luaL_checktype(L, 4, LUA_TFUNCTION);
    int at = lua_type(L, 5);
    luaL_argcheck(L, at == LUA_TNONE || at == LUA_TNIL || at == LUA_TBOOLEAN ||
                         at == LUA_TTABLE || at == LUA_TFUNCTION,
                  5, "allow: nil, true, a list of JIDs or a function");
    lua_settop(L, 5); /* allow: nil when absent, before anything is pushed */
    epode_commands_t *cmds = ensure_cmds(L, c, "client:command");
    int rc = epode_commands_add(cmds, node, name, on_command_c, c);
    if (rc == EPODE_ESTATE)
        return luaL_error(L, "client:command: %s is already offered", node);
    if (rc < 0)
        return raise_epode(L, "client:command", rc);
    push_cmd_table(L, 1, "commands");
    lua_createtable(L, 0, 2);
    lua_pushvalue(L, 4);
    lua_setfield(L, -2, "fn");
    lua_pushvalue(L, 5);
    lua_setfield(L, -2, "allow");
    lua_setfield(L, -2, node);
    lua_settop(L, 1);
    return 1;
}

/* c:remove_command(node) */
static int m_remove_command(lua_State *L)
{
    client_t *c = check_client(L, "client:remove_command");
    const char *node = luaL_checkstring(L, 2);
    int rc = c->commands ? epode_commands_remove(c->commands, node) : EPODE_ENOTFOUND;
    if (rc < 0)
        return raise_epode(L, "client:remove_command", rc);
    push_cmd_table(L, 1, "commands");
    lua_pushnil(L);
    lua_setfield(L, -2, node);
    lua_settop(L, 1);
    return 1;
}

/* ---- running others' ---------------------------------------------------------- */

typedef struct cmd_req {
    client_t *c;
    lua_Integer id;
    int list;
    const epode_command_result_t *result;
    const epode_disco_items_t *items;
    int status;
    epode_stanza_cond_t cond;
    epode_command_error_t specific;
} cmd_req;

static cmd_req *cmd_req_new(lua_State *L, client_t *c, int cb_idx)
{
    cb_idx = lua_absindex(L, cb_idx);
    cmd_req *q = malloc(sizeof *q);
    if (!q) {
        luaL_error(L, "out of memory");
        return NULL;
    }
    memset(q, 0, sizeof *q);
    q->c = c;
    q->id = ++c->next_req;
    push_modern(L, 1);
    lua_createtable(L, 0, 1);
    lua_pushvalue(L, cb_idx);
    lua_setfield(L, -2, "cb");
    lua_rawseti(L, -2, q->id);
    lua_pop(L, 1);
    return q;
}

static void cmd_req_drop(lua_State *L, cmd_req *q)
{
    push_modern(L, 1);
    lua_pushnil(L);
    lua_rawseti(L, -2, q->id);
    lua_pop(L, 1);
    free(q);
}

static int cmd_req_protected(lua_State *L)
{
    cmd_req *q = lua_touserdata(L, 2);
    push_modern(L, 1);
    if (lua_rawgeti(L, -1, q->id) != LUA_TTABLE)
        return 0;
    lua_getfield(L, -1, "cb");
    lua_pushnil(L);
    lua_rawseti(L, -4, q->id); /* forgotten first: the callback may ask again */
    int cb = lua_gettop(L);
    int ok = q->status == 0 && q->cond == EPODE_COND_NONE;
    if (q->list && ok) {
        lua_newtable(L);
        for (size_t i = 0; i < q->items->nitems; i++) {
            lua_createtable(L, 0, 3);
            set_field_str(L, "jid", q->items->items[i].jid);
            set_field_str(L, "node", q->items->items[i].node);
            set_field_str(L, "name", q->items->items[i].name);
            lua_rawseti(L, -2, (lua_Integer)i + 1);
        }
    } else if (!q->list && q->result) {
        const epode_command_result_t *r = q->result;
        lua_createtable(L, 0, 8);
        set_field_str(L, "jid", r->jid);
        set_field_str(L, "node", r->node);
        set_field_str(L, "session_id", r->session_id);
        set_field_str(L, "status", epode_command_status_name(r->status));
        lua_newtable(L);
        for (size_t i = 0; i < r->nnotes; i++) {
            lua_createtable(L, 0, 2);
            set_field_str(L, "type", epode_command_note_type_name(r->notes[i].type));
            set_field_str(L, "text", r->notes[i].text);
            lua_rawseti(L, -2, (lua_Integer)i + 1);
        }
        lua_setfield(L, -2, "notes");
        if (r->form) {
            cmd_push_form(L, r->form);
            lua_setfield(L, -2, "form");
        }
        lua_newtable(L);
        lua_Integer n = 0;
        for (int a = EPODE_COMMAND_NEXT; a <= EPODE_COMMAND_COMPLETE; a++)
            if (r->actions & EPODE_COMMAND_ALLOW(a)) {
                lua_pushstring(L, epode_command_action_name((epode_command_action_t)a));
                lua_rawseti(L, -2, ++n);
            }
        lua_setfield(L, -2, "actions");
        if (r->default_action)
            set_field_str(L, "default", epode_command_action_name(r->default_action));
    } else {
        lua_pushnil(L);
    }
    if (ok)
        lua_pushnil(L);
    else
        lua_pushstring(L, q->cond != EPODE_COND_NONE ? epode_stanza_cond_name(q->cond)
                                                    : epode_err_name(q->status));
    if (!q->list) {
        if (q->specific)
            lua_pushstring(L, epode_command_error_name(q->specific));
        else
            lua_pushnil(L);
    }
    lua_pushvalue(L, 1);
    if (lua_type(L, cb) == LUA_TFUNCTION)
        lua_call(L, q->list ? 3 : 4, 0);
    return 0;
}

static void cmd_req_call(cmd_req *q)
{
    /* Outside the loop (the client being collected) nothing is told. */
    if (q->c->in_loop)
        call_protected(q->c, cmd_req_protected, q, "command answer");
    free(q);
}

static void on_cmd_result_c(epode_commands_t *cmds, const epode_command_result_t *r, int status,
                            epode_stanza_cond_t cond, epode_command_error_t specific,
                            const char *text, void *user)
{
    (void)cmds, (void)text;
    cmd_req *q = user;
    q->result = r;
    q->status = status;
    q->cond = cond;
    q->specific = specific;
    cmd_req_call(q);
}

static void on_cmd_list_c(epode_commands_t *cmds, const char *jid,
                          const epode_disco_items_t *items, int status, epode_stanza_cond_t cond,
                          void *user)
{
    (void)cmds, (void)jid;
    cmd_req *q = user;
    q->status = status;
    q->cond = cond;
    q->items = items;
    cmd_req_call(q);
}

/* c:commands(jid, fn(items, err, c)) */
static int m_commands(lua_State *L)
{
    client_t *c = check_client(L, "client:commands");
    const char *jid = luaL_checkstring(L, 2);
    luaL_checktype(L, 3, LUA_TFUNCTION);
    epode_commands_t *cmds = ensure_cmds(L, c, "client:commands");
    cmd_req *q = cmd_req_new(L, c, 3);
    q->list = 1;
    int rc = epode_commands_list(cmds, jid, on_cmd_list_c, q, NULL);
    if (rc < 0) {
        cmd_req_drop(L, q);
        return raise_epode(L, "client:commands", rc);
    }
    lua_settop(L, 1);
    return 1;
}

static int run_cmd(lua_State *L, const char *where, int cont)
{
    client_t *c = check_client(L, where);
    const char *jid = luaL_checkstring(L, 2), *node = luaL_checkstring(L, 3);
    const char *sid = cont ? luaL_checkstring(L, 4) : NULL;
    int action = EPODE_COMMAND_EXECUTE;
    if (cont) {
        const char *a = luaL_checkstring(L, 5);
        action = 0;
        for (int i = EPODE_COMMAND_EXECUTE; i <= EPODE_COMMAND_CANCEL; i++)
            if (!strcmp(a, epode_command_action_name((epode_command_action_t)i)))
                action = i;
        luaL_argcheck(L, action, 5, "execute, next, prev, complete or cancel");
    }
    int form_idx = cont ? 6 : 4;
    luaL_checktype(L, form_idx + 1, LUA_TFUNCTION);
    epode_commands_t *cmds = ensure_cmds(L, c, where);
    epode_form_t *form = cmd_form_arg(L, form_idx, EPODE_FORM_SUBMIT);
    cmd_req *q = cmd_req_new(L, c, form_idx + 1);
    int rc = cont ? epode_commands_continue(cmds, jid, node, sid, (epode_command_action_t)action,
                                            form, on_cmd_result_c, q, NULL)
                  : epode_commands_execute(cmds, jid, node, form, on_cmd_result_c, q, NULL);
    epode_form_free(form);
    if (rc < 0) {
        cmd_req_drop(L, q);
        return raise_epode(L, where, rc);
    }
    lua_settop(L, 1);
    return 1;
}

/* c:execute(jid, node, [form], fn(result, err, specific, c)) */
static int m_execute(lua_State *L)
{
    return run_cmd(L, "client:execute", 0);
}

/* c:continue(jid, node, session_id, action, [form], fn(result, err, specific, c)) */
static int m_continue(lua_State *L)
{
    return run_cmd(L, "client:continue", 1);
}

/* ---- the archive's automatic catch-up ------------------------------------------ */

static void on_lua_caught(epode_mam_t *mam, const epode_message_t *m, void *user)
{
    (void)mam;
    client_t *c = user;
    message_call_t mc = {c, m};
    if (c->in_loop)
        dispatch(c, UV_ON_MESSAGE, message_args, &mc, "on_message");
}

/* c:catch_up(enable [, last_id]) */
static int m_catch_up(lua_State *L)
{
    client_t *c = check_client(L, "client:catch_up");
    int enable = lua_toboolean(L, 2);
    const char *last = luaL_optstring(L, 3, NULL);
    int rc = 0;
    if (!c->mam)
        rc = epode_mam_new(c->conn, &c->mam);
    if (rc == 0 && last)
        rc = epode_mam_set_last_id(c->mam, last);
    if (rc == 0)
        rc = epode_mam_set_auto_catch_up(c->mam, enable, 0, on_lua_caught, NULL, c);
    if (rc < 0)
        return raise_epode(L, "client:catch_up", rc);
    lua_settop(L, 1);
    return 1;
}

/* c:mam_last_id() */
static int m_mam_last_id(lua_State *L)
{
    client_t *c = check_client(L, "client:mam_last_id");
    const char *id = c->mam ? epode_mam_last_id(c->mam) : NULL;
    if (id)
        lua_pushstring(L, id);
    else
        lua_pushnil(L);
    return 1;
}
