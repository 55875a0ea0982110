/* bindings/lua/epode_lua_fast.c — SASL2 (XEP-0388) and FAST (XEP-0484) for
 * Lua clients, included by epode_lua.c: the epode.client{} options sasl2,
 * user_agent and fast_token_file, and c:user_agent_id(). The token file is
 * examples/common/fast_file.c's (epode-send --fast-token-file's format):
 * mode 0600, replaced atomically, the token wiped from memory with the
 * client. */

/* Applies the options of table t to a new client; raises a Lua error for
 * a bad one. */
static void lfast_options(lua_State *L, client_t *c, int t)
{
    int rc;
    int ty = lua_getfield(L, t, "sasl2");
    lua_pop(L, 1);
    if (ty != LUA_TNIL && !opt_bool(L, t, "sasl2") && (rc = epode_conn_set_sasl2(c->conn, 0)) < 0)
        raise_epode(L, "epode.client", rc);
    const char *path = opt_string(L, t, "fast_token_file");
    if (path) {
        char why[400];
        if (!(c->fast = fast_file_use(c->conn, path, 0, why, sizeof why)))
            luaL_error(L, "epode.client: option 'fast_token_file': %s", why);
    }
    /* After the file: a user_agent given wins over the file's (as in
     * Python); the file's token, filed under the other id, is not offered
     * and the next token is kept under this one. */
    const char *ua = opt_string(L, t, "user_agent");
    if (ua && (rc = epode_conn_set_user_agent(c->conn, ua, NULL, NULL)) < 0)
        luaL_error(L, "epode.client: option 'user_agent' must be a UUID (%s)", epode_err_name(rc));
}

/* c:user_agent_id() -> the SASL2 user-agent id (the one given, read from
 * the token file, or made by epode). */
static int m_user_agent_id(lua_State *L)
{
    client_t *c = check_client(L, "client:user_agent_id");
    const char *id = epode_conn_get_user_agent_id(c->conn);
    if (!id)
        return raise_epode(L, "client:user_agent_id", EPODE_ENOMEM);
    lua_pushstring(L, id);
    return 1;
}
