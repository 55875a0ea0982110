-- busted spec for ad-hoc commands in the Lua module
-- (bindings/lua/epode_lua_commands.c): argument checks without a server,
-- and — tagged #server, against the Prosody tests/lua/run.sh starts — a
-- Lua bot's commands listed and run by another Lua client: a one-step
-- command, a two-step one through next, prev and complete, cancel, an
-- unknown session, an error the command answers, and a stranger refused.
--
--   LUA_CPATH='build/bindings/lua/?.so;;' busted -o TAP tests/lua/commands_spec.lua

local epode = require "epode"

describe("ad-hoc commands without a server", function()
  it("checks its arguments", function()
    local c = epode.client{ jid = "bot@example.invalid/r", password = "x" }
    assert.has_error(function() c:command("n", "Name") end)
    assert.has_error(function() c:command("n", "Name", function() end, 42) end)
    c:command("n", "Name", function() return "hi" end)
    assert.has_error(function() c:command("n", "Again", function() end) end,
      "client:command: n is already offered")
    c:remove_command("n")
    assert.has_error(function() c:remove_command("n") end)
    assert.has_error(function() c:execute("peer@example.invalid/x", "n", nil, function() end) end,
      "client:execute: STATE: not allowed in the current state")
    assert.has_error(function()
      c:continue("peer@example.invalid/x", "n", "s1", "sideways", nil, function() end)
    end)
  end)
end)

describe("ad-hoc commands against Prosody #server", function()
  local HOST = os.getenv("EPODE_TEST_HOST")
  if not HOST then
    pending("no server: run tests/lua/run.sh BUILD_DIR")
    return
  end
  local PORT = tonumber(os.getenv("EPODE_TEST_PORT"))
  local DOMAIN = os.getenv("EPODE_TEST_DOMAIN")
  local CA = os.getenv("EPODE_TEST_CA_FILE")
  local alice_user, alice_pw = os.getenv("EPODE_TEST_ALICE"):match("^([^:]+):(.*)$")
  local bob_user, bob_pw = os.getenv("EPODE_TEST_BOB"):match("^([^:]+):(.*)$")
  local ALICE = alice_user .. "@" .. DOMAIN
  local BOB = bob_user .. "@" .. DOMAIN

  local function drive(clients, cond, seconds, what)
    local deadline = os.time() + (seconds or 20)
    while not cond() do
      assert(os.time() <= deadline, "timed out waiting for " .. (what or "a condition"))
      for _, c in ipairs(clients) do c:step(10) end
    end
  end

  local function connected(jid, pw)
    local c = epode.client{ jid = jid, password = pw, server = HOST, port = PORT, ca_file = CA }
    local st = {}
    c:on_event(function(name) if name == "ready" then st.ready = true end end)
    c:connect()
    drive({ c }, function() return st.ready end, 20, "login")
    return c
  end

  it("offers commands to our own account and runs them through every action", function()
    local bot = connected(ALICE .. "/lua-bot", alice_pw)
    local me = connected(ALICE .. "/lua-desk", alice_pw)
    local stranger = connected(BOB .. "/lua-x", bob_pw)
    local errors = {}
    for _, c in ipairs({ bot, me, stranger }) do
      c.on_error = function(e) errors[#errors + 1] = tostring(e) end
    end
    local cancels = 0
    bot:command("uptime", "Uptime", function(s, cl)
      assert.equals(bot, cl)
      return { status = "completed", notes = { "up", { type = "warn", text = "careful" } },
               form = { type = "result", fields = { { var = "seconds", value = 5 } } } }
    end)
    bot:command("echo", "Echo", function(s)
      if s.stage == 0 or s.action == "prev" then
        return { status = "executing", actions = { "next" },
                 form = { title = "Echo", fields = {
                   { var = "text", label = "Text", required = true, value = s.data.text } } } }
      elseif s.action == "next" then
        s.data.text = s.form.fields[1].value
        if s.data.text == "bad" then return nil, "bad-request", "bad-payload" end
        return { status = "executing", actions = { "prev", "complete" }, default = "complete" }
      end
      return "echo: " .. s.data.text
    end)
    bot:command("open", "Open", function() return nil end, true)

    local r = {}
    me:commands(bot:bound_jid(), function(items, err) r.items, r.err = items, err end)
    drive({ bot, me }, function() return r.items or r.err end, 20, "the list")
    assert.is_nil(r.err)
    assert.same({ "uptime", "echo", "open" },
                { r.items[1].node, r.items[2].node, r.items[3].node })
    assert.equals("Uptime", r.items[1].name)

    local function run(...)
      local out = {}
      local n = select("#", ...)
      local args = { ... }
      args[n + 1] = function(res, err, specific, cl)
        out.res, out.err, out.specific, out.done = res, err, specific, cl
      end
      if n == 3 then
        me:execute(table.unpack(args, 1, n + 1))
      else
        me:continue(table.unpack(args, 1, n + 1))
      end
      drive({ bot, me }, function() return out.done end, 20,
            "an answer (" .. table.concat(errors, "; ") .. ")")
      return out.res, out.err, out.specific
    end
    local bj = bot:bound_jid()
    local res = run(bj, "uptime", nil)
    assert.equals("completed", res.status)
    assert.same({ { type = "info", text = "up" }, { type = "warn", text = "careful" } }, res.notes)
    assert.equals("5", res.form.fields[1].value)

    res = run(bj, "echo", nil)
    assert.equals("executing", res.status)
    assert.same({ "next" }, res.actions)
    assert.is_true(res.form.fields[1].required)
    local sid = res.session_id
    res = run(bj, "echo", sid, "next", { text = "hello" })
    assert.same({ "prev", "complete" }, res.actions)
    assert.equals("complete", res.default)
    res = run(bj, "echo", sid, "prev", nil)
    assert.equals("hello", res.form.fields[1].value)
    res = run(bj, "echo", sid, "next", { type = "submit", fields = { { var = "text", value = "again" } } })
    res = run(bj, "echo", sid, "execute", nil)
    assert.equals("completed", res.status)
    assert.equals("echo: again", res.notes[1].text)

    res = run(bj, "echo", nil)
    res = run(bj, "echo", res.session_id, "cancel", nil)
    assert.equals("canceled", res.status)
    local _, err, specific = run(bj, "echo", "no-such-session", "next", nil)
    assert.equals("bad-request", err)
    assert.equals("bad-sessionid", specific)
    res = run(bj, "echo", nil)
    _, err, specific = run(bj, "echo", res.session_id, "next", { text = "bad" })
    assert.equals("bad-request", err)
    assert.equals("bad-payload", specific)

    -- another account sees only what it may run
    local sr = {}
    stranger:commands(bj, function(items) sr.items = items end)
    drive({ bot, stranger }, function() return sr.items end, 20, "the stranger's list")
    assert.equals(1, #sr.items)
    assert.equals("open", sr.items[1].node)
    stranger:execute(bj, "uptime", nil, function(res2, err2) sr.res, sr.err = res2, err2 ; sr.done = true end)
    drive({ bot, stranger }, function() return sr.done end, 20, "the refusal")
    assert.is_nil(sr.res)
    assert.equals("item-not-found", sr.err) -- not allowed: as if absent
    for _, c in ipairs({ bot, me, stranger }) do c:close() end
    drive({ bot, me, stranger }, function()
      return not bot:is_ready() and not me:is_ready() and not stranger:is_ready()
    end, 10, "close")
  end)

  it("catches up from the archive on a fresh session, once", function()
    local a = epode.client{ jid = ALICE .. "/lua-k", password = alice_pw, server = HOST,
                            port = PORT, ca_file = CA }
    local got, st = {}, {}
    a:on_message(function(m)
      if m.body then got[#got + 1] = { m.body, m.archive_id ~= nil } end
    end)
    a:on_event(function(name) st[name] = (st[name] or 0) + 1 end)
    a:catch_up(true)
    assert.is_nil(a:mam_last_id())
    a:connect()
    drive({ a }, function() return st.ready == 1 end, 20, "login")
    a:send_presence()
    local b = connected(BOB .. "/lua-k", bob_pw)
    b:send_message(ALICE, "live one")
    drive({ a, b }, function() return #got == 1 end, 20, "the live message")
    assert.same({ "live one", false }, got[1])
    local last = a:mam_last_id()
    assert.is_string(last)
    a:close()
    drive({ a, b }, function() return st.disconnected == 1 end, 10, "a's close")
    b:send_message(ALICE, "away two")
    b:send_message(ALICE, "away three")
    local t = os.time() + 1
    while os.time() < t do b:step(10) end
    a:connect()                 -- a fresh session: no resumption
    drive({ a, b }, function() return st.ready == 2 end, 20, "login again")
    a:send_presence()           -- the offline store hands them over live too
    drive({ a, b }, function() return #got >= 3 end, 20, "the caught-up messages")
    t = os.time() + 1
    while os.time() < t do a:step(10) b:step(10) end
    local bodies = {}
    for _, g in ipairs(got) do bodies[#bodies + 1] = g[1] end
    table.sort(bodies)
    assert.same({ "away three", "away two", "live one" }, bodies)
    assert.is_not.equals(last, a:mam_last_id())
    a:close()
    b:close()
    drive({ a, b }, function() return not a:is_ready() and not b:is_ready() end, 10, "close")
  end)
end)
