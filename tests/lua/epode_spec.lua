-- busted spec for the Lua module (bindings/lua).
--
-- The unit part needs no server. The part tagged #server talks to a real
-- Prosody whose details come from the environment (tests/lua/run.sh
-- starts one and sets EPODE_TEST_HOST, _PORT, _DOMAIN, _CA_FILE and the
-- accounts EPODE_TEST_ALICE / EPODE_TEST_BOB as "user:password").
--
--   LUA_CPATH='build/bindings/lua/?.so;;' busted -o TAP tests/lua/epode_spec.lua

local epode = require "epode"

-- A port on 127.0.0.1 nobody listens on (tcpmux): connecting is refused.
local CLOSED_PORT = 1

-- Runs a Lua chunk in a separate lua5.4 (same LUA_CPATH, so the same
-- module); returns its output (stdout and stderr together) and whether it
-- exited 0.
local function run_lua(code)
  local path = os.tmpname()
  local f = assert(io.open(path, "w"))
  f:write(code)
  f:close()
  local p = assert(io.popen("lua5.4 " .. path .. " 2>&1"))
  local out = p:read("a")
  local ok = p:close()
  os.remove(path)
  return out, ok
end

local function unreachable_client(extra)
  local opts = { jid = "nobody@localhost", password = "x",
                 server = "127.0.0.1", port = CLOSED_PORT }
  for k, v in pairs(extra or {}) do opts[k] = v end
  return epode.client(opts)
end

describe("the epode module", function()
  it("loads and says its version", function()
    assert.is_table(epode)
    assert.is_function(epode.client)
    assert.matches("^%d+%.%d+%.%d+$", epode.version)
  end)

  it("is the same table when required twice", function()
    assert.equals(epode, require "epode")
  end)
end)

describe("epode.client arguments", function()
  it("wants a table", function()
    assert.has_error(function() epode.client("alice@localhost") end,
      "bad argument #1 to 'client' (table expected, got string)")
    assert.has_error(function() epode.client() end)
  end)

  it("requires a jid", function()
    assert.has_error(function() epode.client{ password = "pw" } end,
      "epode.client: option 'jid' is required (a string)")
  end)

  it("refuses a malformed jid with epode's error name", function()
    local ok, err = pcall(epode.client, { jid = "a@@b" })
    assert.is_false(ok)
    assert.matches("^epode.client: JID: malformed JID", err)
  end)

  it("refuses unknown (misspelt) options", function()
    assert.has_error(function() epode.client{ jid = "a@localhost", pasword = "x" } end,
      "epode.client: unknown option 'pasword'")
  end)

  it("checks option types", function()
    assert.has_error(function() epode.client{ jid = 42 } end,
      "epode.client: option 'jid' must be a string, not number")
    assert.has_error(function() epode.client{ jid = "a@localhost", direct_tls = "yes" } end,
      "epode.client: option 'direct_tls' must be a boolean, not string")
    assert.has_error(function() epode.client{ jid = "a@localhost", port = "5222" } end,
      "epode.client: option 'port' must be an integer 1-65535")
    assert.has_error(function() epode.client{ jid = "a@localhost", port = 70000 } end,
      "epode.client: option 'port' must be an integer 1-65535")
    assert.has_error(function() epode.client{ jid = "a@localhost", port = 52.5 } end,
      "epode.client: option 'port' must be an integer 1-65535")
  end)

  it("accepts every documented option", function()
    local c = epode.client{ jid = "a@localhost/res", password = "pw", server = "127.0.0.1",
                            port = 5222, ca_file = "/nonexistent.pem", direct_tls = true,
                            verbose = false }
    assert.equals("userdata", type(c))
  end)
end)

describe("a client that never connects", function()
  it("has methods and a readable state", function()
    local c = epode.client{ jid = "alice@localhost", password = "pw" }
    assert.matches("^epode.client %(not ready%)", tostring(c))
    assert.is_nil(c:bound_jid())
    assert.is_false(c:is_ready())
    assert.is_number(c:fd())
    assert.equals(-1, c:timeout())
  end)

  it("registers and clears handlers", function()
    local c = epode.client{ jid = "alice@localhost" }
    assert.equals(c, c:on_message(function() end))
    assert.equals(c, c:on_event(function() end))
    assert.equals(c, c:on_message(nil))
    assert.has_error(function() c:on_message("not a function") end,
      "bad argument #1 to 'on_message' (function expected, got string)")
    assert.has_error(function() c:on_event(42) end)
  end)

  it("has an on_error field and no other settable fields", function()
    local c = epode.client{ jid = "alice@localhost" }
    assert.is_nil(c.on_error)
    local f = function() end
    c.on_error = f
    assert.equals(f, c.on_error)
    c.on_error = nil
    assert.is_nil(c.on_error)
    assert.has_error(function() c.on_error = 1 end,
      "epode client: on_error must be a function or nil, not number")
    assert.has_error(function() c.foo = 1 end,
      "epode client: cannot set field 'foo' (only on_error can be set)")
    assert.is_nil(c.no_such_method)
    assert.is_false(getmetatable(c))
  end)

  it("raises epode's error name and text", function()
    local c = epode.client{ jid = "alice@localhost" }
    assert.has_error(function() c:send_message("bob@localhost", "hi") end,
      "client:send_message: STATE: not allowed in the current state")
    assert.has_error(function() c:send_message("bob@localhost", "hi", "nonsense") end,
      "client:send_message: INVAL: invalid argument")
    assert.has_error(function() c:send_message("not a jid@@", "hi") end,
      "client:send_message: INVAL: invalid argument")
    assert.has_error(function() c:send_presence() end,
      "client:send_presence: STATE: not allowed in the current state")
    assert.has_error(function() c:send_presence("sleepy") end)
    assert.has_error(function() c:send_message("bob@localhost") end,
      "bad argument #2 to 'send_message' (string expected, got no value)")
    assert.has_error(function() c.connect(42) end)
  end)

  it("closes, runs and steps harmlessly when not connected", function()
    local c = epode.client{ jid = "alice@localhost" }
    assert.is_false(c:close())
    assert.is_nil(c:run())
    assert.equals(0, c:step(0))
    assert.equals(0, c:step())
    assert.has_error(function() c:step(-5) end)
  end)

  it("is garbage-collected, handlers and cycles included", function()
    local weak = setmetatable({}, { __mode = "v" })
    for i = 1, 200 do
      local c = epode.client{ jid = "user" .. i .. "@localhost", password = "pw" }
      c:on_message(function(msg) return c, msg end) -- a cycle through a user value
      c:on_event(function() return c end)
      c.on_error = function() return c end
      weak[i] = c
    end
    collectgarbage("collect")
    collectgarbage("collect")
    assert.is_nil(next(weak))
  end)

  it("is freed at the end of a <close> scope", function()
    local outer
    do
      local c <close> = epode.client{ jid = "alice@localhost" }
      outer = c
    end
    assert.has_error(function() outer:connect() end, "client:connect: the client has been freed")
    assert.matches("freed", tostring(outer))
  end)
end)

describe("a client whose server is unreachable", function()
  it("reports connecting and disconnected, and run() says why", function()
    local c = unreachable_client()
    local events = {}
    local info_seen
    c:on_event(function(name, info, client)
      events[#events + 1] = name
      assert.equals(c, client)
      if name == "disconnected" then info_seen = info end
    end)
    c:connect()
    assert.has_error(function() c:connect() end,
      "client:connect: STATE: not allowed in the current state")
    local reason, text = c:run()
    assert.same({ "connecting", "disconnected" }, events)
    assert.equals("network", reason)
    assert.is_string(text)
    assert.equals("network", info_seen.reason)
    assert.equals(text, info_seen.text)
    assert.equals("NET", info_seen.error)
  end)

  it("keeps run() going when a handler connects again", function()
    local c = unreachable_client()
    local events = {}
    c:on_event(function(name, _, client)
      events[#events + 1] = name
      if name == "disconnected" and #events == 2 then client:connect() end
    end)
    c:connect()
    assert.equals("network", c:run())
    assert.same({ "connecting", "disconnected", "connecting", "disconnected" }, events)
  end)

  it("can be driven with step()", function()
    local c = unreachable_client()
    local gone = false
    c:on_event(function(name) if name == "disconnected" then gone = true end end)
    c:connect()
    for _ = 1, 200 do
      if gone then break end
      c:step(50)
    end
    assert.is_true(gone)
  end)

  it("reports a failing handler to on_error and goes on", function()
    local c = unreachable_client()
    local reports = {}
    local events = {}
    c:on_event(function(name)
      events[#events + 1] = name
      if name == "connecting" then error("boom in handler") end
      if name == "disconnected" then error({ code = 42 }) end -- not a string
    end)
    c.on_error = function(message, where, traceback)
      reports[#reports + 1] = { message = message, where = where, traceback = traceback }
    end
    c:connect()
    assert.equals("network", c:run())
    assert.same({ "connecting", "disconnected" }, events)
    assert.equals(2, #reports)
    assert.matches("boom in handler", reports[1].message)
    assert.equals("on_event", reports[1].where)
    assert.matches("stack traceback", reports[1].traceback)
    assert.matches("^table: ", reports[2].message)
  end)

  it("refuses to run its loop from inside a handler", function()
    local c = unreachable_client()
    local message
    c:on_event(function(name, _, client)
      if name == "connecting" then client:run() end
    end)
    c.on_error = function(m) message = m end
    c:connect()
    assert.equals("network", c:run())
    assert.matches("client:run: the client's loop is already running", message)
  end)

  it("survives an on_error hook that fails", function()
    local out, ok = run_lua([[
      local epode = require "epode"
      local c = epode.client{ jid = "n@localhost", server = "127.0.0.1", port = 1 }
      c:on_event(function(name) if name == "connecting" then error("first") end end)
      c.on_error = function() error("second") end
      c:connect()
      print("run:", c:run())
    ]])
    assert.is_true(ok)
    assert.matches("the on_error hook failed too %(after a on_event handler error%)", out)
    assert.matches("second", out)
    assert.matches("run:%s+network", out)
  end)

  it("prints a handler error to stderr when no on_error is set", function()
    local out, ok = run_lua([[
      local epode = require "epode"
      local c = epode.client{ jid = "n@localhost", server = "127.0.0.1", port = 1 }
      c:on_event(function(name) if name == "connecting" then error("printed") end end)
      c:connect()
      print("run:", c:run())
    ]])
    assert.is_true(ok)
    assert.matches("epode: error in on_event handler: [^\n]*printed", out)
    assert.matches("run:%s+network", out)
  end)

  it("is collected while connecting, without events", function()
    local out, ok = run_lua([[
      local epode = require "epode"
      local c = epode.client{ jid = "n@localhost", server = "127.0.0.1", port = 1 }
      c:on_event(function(name) print("event", name) end)
      c:connect()
      c = nil
      collectgarbage(); collectgarbage()
      print("done")
    ]])
    assert.is_true(ok)
    assert.equals("done\n", out)
  end)
end)

-- ---- against a real server ------------------------------------------------

local HOST = os.getenv("EPODE_TEST_HOST")

describe("against Prosody #server", function()
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

  local function client(jid, password)
    return epode.client{ jid = jid, password = password, server = HOST, port = PORT,
                         ca_file = CA }
  end

  -- Steps every client until cond() holds; fails after `seconds`.
  local function drive(clients, cond, seconds, what)
    local deadline = os.time() + (seconds or 20)
    while not cond() do
      assert(os.time() <= deadline, "timed out waiting for " .. (what or "a condition"))
      for _, c in ipairs(clients) do c:step(10) end
    end
  end

  -- Records each client's events; `state[c].ready`, `.reason`.
  local function track(c)
    local st = { events = {} }
    c:on_event(function(name, info)
      st.events[#st.events + 1] = name
      if name == "ready" then st.ready = info.jid end
      if name == "disconnected" then st.reason = info.reason; st.info = info end
    end)
    return st
  end

  it("logs in, reports its events and bound JID, closes with run()", function()
    local c = client(ALICE, alice_pw)
    local st = track(c)
    c:on_event(function(name, info)
      st.events[#st.events + 1] = name
      if name == "tls" then st.security = info.security end
      if name == "ready" then
        st.ready = info.jid
        st.bound = c:bound_jid()
        st.is_ready = c:is_ready()
        assert.is_true(c:close())
      end
    end)
    c:connect()
    local reason = c:run()
    assert.equals("closed", reason)
    assert.same({ "connecting", "tls", "authenticated", "ready", "disconnected" }, st.events)
    assert.matches("^" .. ALICE:gsub("%p", "%%%0") .. "/.+", st.ready)
    assert.equals(st.ready, st.bound)
    assert.is_true(st.is_ready)
    assert.matches("TLS", st.security)
    assert.is_nil(c:bound_jid())
  end)

  it("reports a wrong password as an auth failure", function()
    local c = client(ALICE, "wrong-" .. alice_pw)
    local st = track(c)
    c:connect()
    assert.equals("auth", c:run())
    assert.equals("auth", st.reason)
    assert.equals("AUTH", st.info.error)
    assert.equals("not-authorized", st.info.condition)
  end)

  it("echoes messages between alice and bob (bob echoes)", function()
    local alice, bob = client(ALICE, alice_pw), client(BOB, bob_pw)
    local ast, bst = track(alice), track(bob)
    -- track() set on_event; ready presence for bob so bare-JID messages reach him
    bob:on_event(function(name, info)
      if name == "ready" then bst.ready = info.jid; bob:send_presence() end
      if name == "disconnected" then bst.reason = info.reason end
    end)

    local bob_errors = {}
    bob.on_error = function(message, where) bob_errors[#bob_errors + 1] = where .. ": " .. message end
    bob:on_message(function(msg, client_)
      if not msg.body then return end
      if msg.body == "fail" then error("bob refuses to echo this") end
      client_:send_message(msg.from, msg.body, msg.type)
    end)

    local got = {}
    alice:on_message(function(msg)
      if msg.body then got[#got + 1] = msg end
    end)

    alice:connect()
    bob:connect()
    drive({ alice, bob }, function() return ast.ready and bst.ready end, 20, "both ready")
    -- bob's presence must reach the server before alice writes to his bare JID
    for _ = 1, 5 do bob:step(20); alice:step(20) end

    local bodies = { "hello bob", "fail", "héllo ✓ <a&b> 'quotes' \"too\"", "last" }
    local ids = {}
    for i, b in ipairs(bodies) do
      ids[i] = alice:send_message(bob:bound_jid(), b)
      assert.is_string(ids[i])
    end
    alice:send_message(BOB, "to the bare JID")

    drive({ alice, bob }, function() return #got >= 4 end, 20, "the echoes")
    local received = {}
    for i, m in ipairs(got) do
      received[i] = m.body
      assert.equals("chat", m.type)
      assert.equals(bst.ready, m.from)
      assert.equals(ast.ready, m.to)
      assert.is_string(m.id)
    end
    assert.same({ "hello bob", "héllo ✓ <a&b> 'quotes' \"too\"", "last", "to the bare JID" },
                received)
    assert.equals(1, #bob_errors)
    assert.matches("^on_message: .*bob refuses to echo this", bob_errors[1])

    assert.is_true(alice:close())
    assert.is_true(bob:close())
    drive({ alice, bob }, function() return ast.reason and bst.reason end, 20, "both closed")
    assert.equals("closed", ast.reason)
    assert.equals("closed", bst.reason)
    assert.is_false(alice:close())
  end)

  it("runs the echo bot example", function()
    local spec_dir = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."
    local bot_script = spec_dir .. "/../../bindings/lua/examples/echo_bot.lua"
    local dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir -m 700 '" .. dir .. "'"))
    local function slurp(name)
      local f = io.open(dir .. "/" .. name)
      if not f then return nil end
      local s = f:read("a")
      f:close()
      return s
    end
    local pw = assert(io.open(dir .. "/pw", "w"))
    pw:write(bob_pw, "\n")
    pw:close()
    assert(os.execute(("(lua5.4 '%s' --jid '%s' --password-file '%s/pw' --server '%s' --port %d"
      .. " --ca-file '%s' >'%s/out' 2>&1 & echo $! >'%s/pid'; wait $!; echo $? >'%s/status') &")
      :format(bot_script, BOB .. "/bot", dir, HOST, PORT, CA, dir, dir, dir)))

    local alice, quitter = client(ALICE, alice_pw), client(BOB .. "/quitter", bob_pw)
    local ast, qst = track(alice), track(quitter)
    local got = {}
    alice:on_message(function(msg) if msg.body then got[#got + 1] = msg.body end end)
    local ok, err = pcall(function()
      alice:connect()
      quitter:connect()
      drive({ alice, quitter }, function()
        return ast.ready and qst.ready and (slurp("out") or ""):match("ready as ")
      end, 20, "the bot and two clients")
      alice:send_message(BOB .. "/bot", "hello bot")
      drive({ alice, quitter }, function() return #got >= 1 end, 20, "the bot's echo")
      assert.same({ "hello bot" }, got)
      quitter:send_message(BOB .. "/bot", "!quit")
      drive({ alice, quitter }, function() return slurp("status") end, 20, "the bot to exit")
      assert.equals("0\n", slurp("status"))
      assert.matches("ready as " .. BOB:gsub("%p", "%%%0") .. "/bot", slurp("out"))
      assert.matches(ALICE:gsub("%p", "%%%0") .. "/[^:]+: hello bot", slurp("out"))
    end)
    if not slurp("status") and slurp("pid") then
      os.execute("kill -TERM " .. slurp("pid"):match("%d+"))
    end
    alice:close()
    quitter:close()
    drive({ alice, quitter }, function() return ast.reason and qst.reason end, 20, "close")
    os.execute("rm -rf '" .. dir .. "'")
    assert(ok, err)
  end)

  it("frees a connected client on collection", function()
    local weak = setmetatable({}, { __mode = "v" })
    do
      local c = client(BOB, bob_pw)
      local st = track(c)
      c:connect()
      drive({ c }, function() return st.ready end, 20, "ready")
      weak[1] = c
    end
    collectgarbage("collect")
    collectgarbage("collect")
    assert.is_nil(weak[1])
  end)
end)
