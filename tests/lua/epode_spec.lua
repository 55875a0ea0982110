-- busted spec for the Lua module (bindings/lua).
--
-- The unit part needs no server. The part tagged #server talks to a real
-- Prosody whose details come from the environment (tests/lua/run.sh
-- starts one and sets EPODE_TEST_HOST, _PORT, _DOMAIN, _MUC_DOMAIN,
-- _CA_FILE and the accounts EPODE_TEST_ALICE / EPODE_TEST_BOB as
-- "user:password").
--
--   LUA_CPATH='build/bindings/lua/?.so;;' busted -o TAP tests/lua/epode_spec.lua

local epode = require "epode"

-- A port on 127.0.0.1 nobody listens on (tcpmux): connecting is refused.
local CLOSED_PORT = 1

-- The example bots, found from this file's own path.
local SPEC_DIR = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."
local EXAMPLES = SPEC_DIR .. "/../../bindings/lua/examples"

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

  it("takes sasl2, user_agent and fast_token_file, and checks them", function()
    local c = epode.client{ jid = "a@localhost", sasl2 = false,
                            user_agent = "d4b5a1a2-3c4d-4e5f-8a9b-0c1d2e3f4a5b" }
    assert.are.equal("d4b5a1a2-3c4d-4e5f-8a9b-0c1d2e3f4a5b", c:user_agent_id())
    local made = epode.client{ jid = "a@localhost" }:user_agent_id()
    assert.matches("^%x+%-%x+%-4%x+%-[89ab]%x+%-%x+$", made)
    assert.has_error(function() epode.client{ jid = "a@localhost", user_agent = "nope" } end,
      "epode.client: option 'user_agent' must be a UUID (INVAL)")
    assert.has_error(function() epode.client{ jid = "a@localhost", sasl2 = "yes" } end,
      "epode.client: option 'sasl2' must be a boolean, not string")
    local path = os.tmpname()
    local f = io.open(path, "w"); f:write("not a token file\n"); f:close()
    local ok, err = pcall(epode.client, { jid = "a@localhost", fast_token_file = path })
    os.remove(path)
    assert.is_false(ok)
    assert.matches("option 'fast_token_file': .* is not a FAST token file", err)
    -- a missing file is an empty store
    assert.is_not_nil(epode.client{ jid = "a@localhost", fast_token_file = path })
    -- a user_agent given wins over the file's (a user saw it ignored)
    f = io.open(path, "w")
    f:write("user-agent 11111111-2222-4333-8444-555555555555\n")
    f:close()
    local both = epode.client{ jid = "a@localhost", fast_token_file = path,
                               user_agent = "66666666-7777-4888-9999-aaaaaaaaaaaa" }
    assert.are.equal("66666666-7777-4888-9999-aaaaaaaaaaaa", both:user_agent_id())
    assert.are.equal("11111111-2222-4333-8444-555555555555",
                     epode.client{ jid = "a@localhost", fast_token_file = path }:user_agent_id())
    os.remove(path)
  end)

  it("takes reconnect with its backoff bounds, and checks them", function()
    assert.is_not_nil(epode.client{ jid = "a@localhost", reconnect = true })
    assert.is_not_nil(epode.client{ jid = "a@localhost", reconnect = true,
                                    reconnect_min = 0.5, reconnect_max = 0.5 })
    assert.has_error(function() epode.client{ jid = "a@localhost", reconnect = "yes" } end,
      "epode.client: option 'reconnect' must be a boolean, not string")
    assert.has_error(function() epode.client{ jid = "a@localhost", reconnect_min = 2 } end,
      "epode.client: 'reconnect_min' and 'reconnect_max' go with reconnect = true")
    assert.has_error(function()
      epode.client{ jid = "a@localhost", reconnect = true, reconnect_min = 0 }
    end, "epode.client: option 'reconnect_min' must be a number of seconds, 0.001 to 86400")
    assert.has_error(function()
      epode.client{ jid = "a@localhost", reconnect = true, reconnect_max = "60" }
    end, "epode.client: option 'reconnect_max' must be a number of seconds, 0.001 to 86400")
    assert.has_error(function()
      epode.client{ jid = "a@localhost", reconnect = true, reconnect_min = 5, reconnect_max = 1 }
    end, "epode.client: 'reconnect_max' must not be below 'reconnect_min'")
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

  it("takes a proxy URL and refuses a malformed one", function()
    assert.is_not_nil(epode.client{ jid = "a@localhost", proxy = "socks5://u:p@127.0.0.1:9050" })
    assert.is_not_nil(epode.client{ jid = "a@localhost", proxy = "http://127.0.0.1:3128" })
    local ok, err = pcall(epode.client, { jid = "a@localhost", proxy = "socks5://u:sekrit@h:0" })
    assert.is_false(ok)
    assert.matches("option 'proxy' must be socks5://", err, 1, true)
    assert.is_nil(err:find("sekrit", 1, true)) -- the password is not repeated
    assert.has_error(function() epode.client{ jid = "a@localhost", proxy = 1080 } end,
      "epode.client: option 'proxy' must be a string, not number")
  end)

  it("takes a WebSocket URL and refuses a malformed one", function()
    assert.is_not_nil(epode.client{ jid = "a@localhost", websocket = "wss://localhost/xmpp-websocket" })
    assert.is_not_nil(epode.client{ jid = "a@localhost", websocket = "ws://127.0.0.1:5280/ws" })
    local ok, err = pcall(epode.client, { jid = "a@localhost", websocket = "https://h/" })
    assert.is_false(ok)
    assert.matches("option 'websocket' must be wss://", err, 1, true)
    assert.has_error(function() epode.client{ jid = "a@localhost", websocket = 5280 } end,
      "epode.client: option 'websocket' must be a string, not number")
  end)

  it("takes a BOSH URL and refuses a malformed one or one beside websocket", function()
    assert.is_not_nil(epode.client{ jid = "a@localhost", bosh = "https://localhost/http-bind" })
    assert.is_not_nil(epode.client{ jid = "a@localhost", bosh = "http://127.0.0.1:5280/bosh" })
    local ok, err = pcall(epode.client, { jid = "a@localhost", bosh = "wss://h/" })
    assert.is_false(ok)
    assert.matches("option 'bosh' must be https://", err, 1, true)
    assert.has_error(function() epode.client{ jid = "a@localhost", bosh = 5280 } end,
      "epode.client: option 'bosh' must be a string, not number")
    ok, err = pcall(epode.client, { jid = "a@localhost", bosh = "http://127.0.0.1/b",
                                    websocket = "ws://127.0.0.1/w" })
    assert.is_false(ok)
    assert.matches("options 'websocket' and 'bosh' exclude each other", err, 1, true)
  end)

  it("accepts every documented option", function()
    local c = epode.client{ jid = "a@localhost/res", password = "pw", server = "127.0.0.1",
                            port = 5222, ca_file = SPEC_DIR .. "/../data/tls/ca.pem", direct_tls = true,
                            verbose = false }
    assert.equals("userdata", type(c))
  end)
end)

describe("epode.component (XEP-0114)", function()
  it("wants a domain, a secret and a server, and no jid", function()
    assert.is_function(epode.component)
    assert.has_error(function() epode.component{ secret = "s", server = "127.0.0.1" } end,
      "epode.component: option 'domain' is required (a string)")
    assert.has_error(function() epode.component{ domain = "comp.localhost", server = "127.0.0.1" } end,
      "epode.component: 'domain' goes with 'secret' and 'server', without 'jid'")
    assert.has_error(function() epode.component{ domain = "comp.localhost", secret = "s" } end,
      "epode.component: 'domain' goes with 'secret' and 'server', without 'jid'")
    assert.has_error(function()
      epode.component{ domain = "comp.localhost", secret = "s", server = "127.0.0.1",
                       jid = "a@localhost" }
    end, "epode.component: 'domain' goes with 'secret' and 'server', without 'jid'")
    assert.has_error(function() epode.client{ jid = "a@localhost", secret = "s" } end,
      "epode.client: option 'secret' is for components (epode.component)")
    local ok, err = pcall(epode.component, { domain = "a@comp.localhost", secret = "s",
                                             server = "127.0.0.1" })
    assert.is_false(ok)
    assert.matches("^epode.client: JID:", err)
    assert.has_error(function()
      epode.component{ domain = "comp.localhost", secret = "s", server = "127.0.0.1", tls = "maybe" }
    end, 'epode.client: option \'tls\' must be "required", "direct", "optional" or "disabled"')
  end)

  it("runs like a client: an unreachable component port ends the run", function()
    local c = epode.component{ domain = "comp.localhost", secret = "s", server = "127.0.0.1",
                               port = CLOSED_PORT, tls = "disabled" }
    local events = {}
    c:on_event(function(name) events[#events + 1] = name end)
    c:connect()
    assert.equals("network", c:run())
    assert.same({ "connecting", "disconnected" }, events)
    assert.is_false(c:is_ready())
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

  it("adds handlers, each with its own id, and removes them by id", function()
    local c = epode.client{ jid = "alice@localhost" }
    local ids = { c:on_message(function() end), c:on_event(function() end),
                  c:on_presence(function() end), c:on_iq(function() end),
                  c:on_muc(function() end), c:on_blocking(function() end),
                  c:on_message(function() end) }
    local seen = {}
    for _, id in ipairs(ids) do
      assert.is_number(id)
      assert.is_nil(seen[id])
      seen[id] = true
    end
    assert.is_true(c:remove(ids[1]))
    assert.has_error(function() c:remove(ids[1]) end,
      "client:remove: NOTFOUND: no handler with id " .. ids[1])
    for i = 2, #ids do assert.is_true(c:remove(ids[i])) end
    assert.has_error(function() c:remove(12345) end,
      "client:remove: NOTFOUND: no handler with id 12345")
    assert.has_error(function() c:on_message(nil) end,
      "bad argument #1 to 'on_message' (function expected, got nil)")
    assert.has_error(function() c:on_message("not a function") end,
      "bad argument #1 to 'on_message' (function expected, got string)")
    assert.has_error(function() c:on_event(42) end)
    assert.has_error(function() c:on_muc(42) end)
  end)

  it("runs every handler of a kind in the order added; removed ones stop at once", function()
    local c = epode.client{ jid = "alice@localhost", server = "127.0.0.1", port = CLOSED_PORT }
    local calls = {}
    local second
    c:on_event(function(name, info, client)
      assert.equals(c, client)
      calls[#calls + 1] = "first " .. name
      if name == "connecting" then c:remove(second) end -- in the middle of the event
    end)
    second = c:on_event(function(name) calls[#calls + 1] = "second " .. name end)
    c:on_event(function(name) calls[#calls + 1] = "third " .. name; error("third fails") end)
    c:on_event(function(name, info)
      calls[#calls + 1] = "fourth " .. name
      if name == "disconnected" then calls[#calls + 1] = info.reason end
    end)
    local errors = 0
    c.on_error = function() errors = errors + 1 end
    c:connect()
    assert.equals("network", c:run())
    assert.same({ "first connecting", "third connecting", "fourth connecting",
                  "first disconnected", "third disconnected", "fourth disconnected",
                  "network" }, calls)
    assert.equals(2, errors)
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
      "client:send_message: JID: malformed JID")
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

describe("stanzas", function()
  local NS_STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"

  it("are built with a name, a namespace and attributes", function()
    local m = epode.stanza("message", "jabber:client", { to = "bob@example.org", type = "chat",
                                                         id = "m1" })
    assert.equals("userdata", type(m))
    assert.equals("message", m.name)
    assert.equals("jabber:client", m.ns)
    assert.equals("bob@example.org", m:attr("to"))
    assert.is_nil(m:attr("from"))
    assert.is_nil(m.parent)
    local body = m:add("body")
    assert.equals("jabber:client", body.ns) -- a child takes its parent's namespace
    assert.equals(body, body:set_text("hi"))
    -- attributes from a table are set in name order: the text is stable
    assert.equals('<message xmlns="jabber:client" id="m1" to="bob@example.org" type="chat">'
      .. '<body>hi</body></message>', tostring(m))
  end)

  it("take attributes without a namespace, and numbers as values", function()
    local iq = epode.stanza("iq", { type = "get", id = 7 })
    assert.is_nil(iq.ns)
    assert.equals("7", iq:attr("id"))
    local q = iq:add("query", "jabber:iq:version")
    assert.equals("jabber:iq:version", q.ns)
    local x = q:add("x", { a = "1" })
    assert.equals("jabber:iq:version", x.ns)
    assert.equals("1", x:attr("a"))
    assert.equals('<iq id="7" type="get"><query xmlns="jabber:iq:version"><x a="1"/></query></iq>',
      tostring(iq))
  end)

  it("set and remove attributes, chaining", function()
    local st = epode.stanza("presence")
    assert.equals(st, st:set_attr("to", "room@muc.example.org/nick"):set_attr("priority", 5))
    assert.same({ to = "room@muc.example.org/nick", priority = "5" }, st.attrs)
    st:set_attr("priority", nil)
    assert.same({ to = "room@muc.example.org/nick" }, st.attrs)
  end)

  it("read attributes as a table, namespaced ones included", function()
    local st = epode.parse([[<a xmlns="urn:a" xmlns:p="urn:p" y="2" xml:lang="fr" p:x="1"/>]])
    assert.same({ y = "2", ["xml:lang"] = "fr", ["{urn:p}x"] = "1" }, st.attrs)
    assert.equals("fr", st:attr("xml:lang"))
    assert.equals("1", st:attr("x", "urn:p"))
    assert.is_nil(st:attr("x"))
  end)

  it("escape text and attributes, and read them back", function()
    local nasty = "<a&b> \"double\" 'single' ]]> héllo ✓"
    local m = epode.stanza("message", { to = "x@example.org", title = nasty })
    m:add("body"):set_text(nasty)
    local text = tostring(m)
    assert.is_nil(text:find("<a&b>", 1, true))
    assert.truthy(text:find("&lt;a&amp;b&gt;", 1, true))
    local back = epode.parse(text)
    assert.equals(nasty, back:child("body").text)
    assert.equals(nasty, back:attr("title"))
    assert.equals(text, tostring(back))
  end)

  it("hold mixed content", function()
    local p = epode.stanza("p")
    p:add_text("one ")
    p:add("b"):set_text("two")
    p:add_text(" three")
    assert.equals("one  three", p.text) -- own text only
    assert.equals("<p>one <b>two</b> three</p>", tostring(p))
    p:set_text("replaced")
    assert.is_nil(p:child())
    assert.equals("<p>replaced</p>", tostring(p))
  end)

  it("find children by name and namespace", function()
    local st = epode.parse([[<iq type="result"><query xmlns="urn:one"><item n="1"/>]]
      .. [[<other/><item n="2"/></query><query xmlns="urn:two"/>text</iq>]])
    assert.equals("urn:one", st:child().ns)
    assert.equals("urn:one", st:child("query").ns)
    assert.equals("urn:two", st:child("query", "urn:two").ns)
    assert.is_nil(st:child("query", "urn:three"))
    assert.is_nil(st:child("nothing"))
    local names = {}
    for ch in st:child("query"):children() do names[#names + 1] = ch.name end
    assert.same({ "item", "other", "item" }, names)
    local ns = {}
    for q in st:children("query") do ns[#ns + 1] = q.ns end
    assert.same({ "urn:one", "urn:two" }, ns)
    local items = {}
    for item in st:child("query"):children("item", "urn:one") do
      items[#items + 1] = item:attr("n")
    end
    assert.same({ "1", "2" }, items)
    for _ in st:children("none") do error("no such child") end
    assert.equals("text", st.text)
  end)

  it("compare equal when they stand for the same element", function()
    local m = epode.stanza("message")
    local b = m:add("body")
    assert.equals(b, m:child("body"))
    assert.equals(m, b.parent)
    assert.are_not.equal(m, b)
    assert.are_not.equal(m, epode.stanza("message"))
  end)

  it("copy other stanzas in, and are copied", function()
    local src = epode.stanza("x", "urn:x", { a = "1" })
    local m = epode.stanza("message")
    local added = m:add(src)
    src:set_attr("a", "2")
    assert.equals("1", added:attr("a"))
    assert.equals("urn:x", added.ns)
    local c = m:copy()
    m:set_attr("id", "changed")
    assert.is_nil(c:attr("id"))
    assert.equals('<message><x xmlns="urn:x" a="1"/></message>', tostring(c))
  end)

  it("make replies and error replies", function()
    local iq = epode.parse([[<iq type="get" id="q1" from="a@x/r" to="b@x/r">]]
      .. [[<query xmlns="urn:q"/></iq>]])
    local r = iq:reply()
    assert.same({ type = "result", id = "q1", to = "a@x/r", from = "b@x/r" }, r.attrs)
    assert.is_nil(r:child())
    local e = iq:error_reply("item-not-found", "no such thing")
    assert.equals("error", e:attr("type"))
    local err = e:child("error")
    assert.equals("cancel", err:attr("type"))
    assert.is_not_nil(err:child("item-not-found", NS_STANZAS))
    assert.equals("no such thing", err:child("text", NS_STANZAS).text)
    assert.has_error(function() iq:error_reply("no-such-condition") end,
      "stanza:error_reply: INVAL: unknown condition 'no-such-condition'")
    assert.has_error(function() e:error_reply("bad-request") end,
      "stanza:error_reply: INVAL: invalid argument") -- errors are never answered
  end)

  it("raise parse errors with epode's error name", function()
    assert.has_error(function() epode.parse("<a>") end,
      "epode.parse: XML: XML stream error (see the parser's condition) (not-well-formed)")
    local ok, err = pcall(epode.parse, "<a><b></a>")
    assert.is_false(ok)
    assert.matches("^epode.parse: XML: ", err)
    ok, err = pcall(epode.parse, "")
    assert.is_false(ok)
    assert.matches("^epode.parse: [A-Z]+: ", err)
    ok, err = pcall(epode.parse, "<a/><b/>")
    assert.is_false(ok)
    assert.matches("^epode.parse: [A-Z]+: ", err)
    ok, err = pcall(epode.parse, '<!DOCTYPE a [<!ENTITY e "x">]><a>&e;</a>')
    assert.is_false(ok)
    assert.matches("^epode.parse: [A-Z]+: ", err)
    assert.has_error(function() epode.parse() end)
  end)

  it("refuse bad names, text and arguments", function()
    assert.has_error(function() epode.stanza("bad name") end,
      "epode.stanza: INVAL: invalid argument ('bad name')")
    assert.has_error(function() epode.stanza("") end,
      "epode.stanza: INVAL: invalid argument ('')")
    assert.has_error(function() epode.stanza() end)
    local st = epode.stanza("a")
    assert.has_error(function() st:set_attr("bad name", "x") end,
      "stanza:set_attr: INVAL: invalid argument ('bad name')")
    assert.has_error(function() st:set_attr("x", true) end)
    assert.has_error(function() st:set_text("invalid \255 utf-8") end,
      "stanza:set_text: INVAL: invalid argument")
    assert.has_error(function() st:set_text("control \1 character") end,
      "stanza:set_text: INVAL: invalid argument")
    assert.has_error(function() st:set_text("nul \0 byte") end,
      "bad argument #1 to 'set_text' (string contains a NUL byte)")
    assert.has_error(function() st:add("b", { [1] = "x" }) end,
      "stanza:add: attribute names must be strings, not number")
    assert.has_error(function() epode.stanza("a", { x = {} }) end,
      "epode.stanza: attribute 'x' must be a string or a number, not table")
    assert.has_error(function() st.name = "b" end,
      "epode stanza: cannot set field 'name' (use set_attr, set_text or add)")
    assert.is_nil(st.no_such_field)
    assert.is_false(getmetatable(st))
    assert.has_error(function() st.attr(42) end)
  end)

  it("keep their tree alive: a child outlives its parent's variable", function()
    local child, grandchild
    do
      local root = epode.stanza("root", "urn:gc", { id = "r" })
      child = root:add("child")
      grandchild = child:add("grandchild"):set_text("deep")
    end
    collectgarbage("collect")
    collectgarbage("collect")
    assert.equals("child", child.name)
    assert.equals("urn:gc", child.ns)
    assert.equals("r", child.parent:attr("id"))
    assert.equals("deep", grandchild.text)
    child:add("more")
    assert.equals('<root xmlns="urn:gc" id="r"><child><grandchild>deep</grandchild><more/>'
      .. "</child></root>", tostring(grandchild.parent.parent))
  end)

  it("survive collection in the middle of an iteration", function()
    local iter
    do
      local st = epode.parse("<l><i n='1'/><i n='2'/><i n='3'/></l>")
      iter = st:children("i")
    end
    local got = {}
    for ch in iter do
      collectgarbage("collect")
      got[#got + 1] = ch:attr("n")
    end
    assert.same({ "1", "2", "3" }, got)
  end)

  it("are all collected", function()
    local weak = setmetatable({}, { __mode = "v" })
    for i = 1, 500 do
      local st = epode.stanza("message", { id = tostring(i) })
      weak[#weak + 1] = st:add("body"):set_text("text " .. i)
      weak[#weak + 1] = st
    end
    collectgarbage("collect")
    collectgarbage("collect")
    assert.is_nil(next(weak))
  end)
end)

describe("multi-user chat without a server", function()
  it("refuses a malformed room JID with a clear error", function()
    local c = epode.client{ jid = "alice@localhost" }
    assert.has_error(function() c:join("not a jid@@", "nick") end,
      "client:join: JID: malformed JID (room 'not a jid@@', nick 'nick'; "
      .. "the room must be a bare JID room@service)")
    assert.has_error(function() c:join("room@conference.localhost/res", "nick") end,
      "client:join: JID: malformed JID (room 'room@conference.localhost/res', nick 'nick'; "
      .. "the room must be a bare JID room@service)")
    assert.has_error(function() c:join("conference.localhost", "nick") end,
      "client:join: JID: malformed JID (room 'conference.localhost', nick 'nick'; "
      .. "the room must be a bare JID room@service)")
    assert.has_error(function() c:join("room@conference.localhost", "") end,
      "bad argument #2 to 'join' (the nick must not be empty)")
    assert.has_error(function() c:join("room@conference.localhost") end)
    assert.has_error(function() c:join("room@conference.localhost", "n", { pasword = "x" }) end,
      "client:join: unknown option 'pasword'")
    assert.has_error(function() c:join("room@conference.localhost", "n", { history = -1 }) end,
      "client:join: option 'history' must be a non-negative integer")
    assert.has_error(function() c:join("room@conference.localhost", "n", 42) end)
    assert.is_nil(c:room("room@conference.localhost"))
  end)

  it("keeps a join made before connecting until READY", function()
    local c = epode.client{ jid = "alice@localhost" }
    local room = "Room@Conference.localhost"
    assert.equals(c, c:join(room, "Alice", { password = "secret", history = 0 }))
    assert.same({ jid = "room@conference.localhost", nick = "Alice", joined = false,
                  occupant_count = 0 }, c:room(room))
    assert.same({}, c:occupants(room))
    assert.has_error(function() c:join(room, "Other") end,
      "client:join: STATE: already in or joining 'Room@Conference.localhost'")
    assert.has_error(function() c:send_groupchat(room, "hi") end,
      "client:send_groupchat: STATE: not joined to room 'Room@Conference.localhost' (yet)")
    assert.has_error(function() c:send_groupchat("other@conference.localhost", "hi") end,
      "client:send_groupchat: STATE: not in room 'other@conference.localhost'")
    assert.has_error(function() c:set_subject("other@conference.localhost", "s") end,
      "client:set_subject: STATE: not in room 'other@conference.localhost'")
    assert.has_error(function() c:send_private(room, "Bob", "psst") end,
      "client:send_private: STATE: not joined to room 'Room@Conference.localhost' (yet)")
    assert.is_true(c:leave(room)) -- not sent yet: dropped at once
    assert.is_false(c:leave(room))
    assert.is_nil(c:occupants(room))
    assert.is_false(c:leave("never@conference.localhost"))
    assert.is_false(c:leave("not a jid@@"))
  end)

  it("registers room handlers and nick retries", function()
    local c = epode.client{ jid = "alice@localhost" }
    assert.is_number(c:on_muc(function() end))
    assert.has_error(function() c:on_muc(1) end)
    assert.equals(c, c:muc_nick_retry(3))
    assert.equals(c, c:muc_nick_retry(2, "-"))
    assert.has_error(function() c:muc_nick_retry(2, "") end,
      "client:muc_nick_retry: INVAL: invalid argument")
    assert.has_error(function() c:muc_nick_retry(-1) end)
    assert.is_number(c:on_presence(function() end))
    assert.is_number(c:on_iq(function() end))
  end)

  it("sends stanzas only when ready", function()
    local c = epode.client{ jid = "alice@localhost" }
    assert.has_error(function() c:send(epode.stanza("presence")) end,
      "client:send: STATE: not allowed in the current state")
    assert.has_error(function() c:send("<presence/>") end,
      "client:send: STATE: not allowed in the current state")
    assert.has_error(function() c:send("<presence>") end,
      "client:send: XML: XML stream error (see the parser's condition) (not-well-formed)")
    assert.has_error(function() c:send(42) end)
  end)

  it("frees a client with rooms, handlers and cycles", function()
    local weak = setmetatable({}, { __mode = "v" })
    for i = 1, 100 do
      local c = epode.client{ jid = "user" .. i .. "@localhost" }
      c:on_muc(function(ev) return c, ev end)
      c:on_iq(function() return c end)
      c:join("room" .. i .. "@conference.localhost", "nick")
      weak[i] = c
    end
    collectgarbage("collect")
    collectgarbage("collect")
    assert.is_nil(next(weak))
  end)

  it("muc_bot.lua refuses a bad room address before connecting", function()
    local out, ok = run_lua(([[
      arg = { "--jid", "bot@localhost", "not a room@@", "Bot" }
      dofile(%q)
    ]]):format(EXAMPLES .. "/muc_bot.lua"))
    assert.is_falsy(ok)
    assert.matches("muc_bot: client:join: JID: malformed JID", out)
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
    local st = { events = {} }
    c:on_event(function(name, info)
      st.events[#st.events + 1] = name
      if name == "tls_up" then st.security = info.security end
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
    assert.same({ "connecting", "tls_up", "authenticated", "ready", "disconnected" }, st.events)
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
    -- added after track()'s: ready presence for bob so bare-JID messages reach him
    bob:on_event(function(name) if name == "ready" then bob:send_presence() end end)

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

  -- Starts an example bot (a script in EXAMPLES) in the background with
  -- the server's options; slurp(name) reads its "out" (stdout and stderr)
  -- or "status" (its exit status, once it exited); stop() kills it if it
  -- still runs and removes its files.
  local function start_bot(script, jid, password, args)
    local dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir -m 700 '" .. dir .. "'"))
    local pw = assert(io.open(dir .. "/pw", "w"))
    pw:write(password, "\n")
    pw:close()
    local quoted = {}
    for i, a in ipairs(args or {}) do quoted[i] = "'" .. a .. "'" end
    assert(os.execute(("(lua5.4 '%s/%s' --jid '%s' --password-file '%s/pw' --server '%s'"
      .. " --port %d --ca-file '%s' %s >'%s/out' 2>&1 & echo $! >'%s/pid'; wait $!;"
      .. " echo $? >'%s/status') &")
      :format(EXAMPLES, script, jid, dir, HOST, PORT, CA, table.concat(quoted, " "), dir, dir,
              dir)))
    local bot = {}
    function bot.slurp(name)
      local f = io.open(dir .. "/" .. name)
      if not f then return nil end
      local s = f:read("a")
      f:close()
      return s
    end
    function bot.stop()
      if not bot.slurp("status") and bot.slurp("pid") then
        os.execute("kill -TERM " .. bot.slurp("pid"):match("%d+"))
      end
      os.execute("rm -rf '" .. dir .. "'")
    end
    return bot
  end

  it("runs the echo bot example", function()
    local bot = start_bot("echo_bot.lua", BOB .. "/bot", bob_pw)
    local alice, quitter = client(ALICE, alice_pw), client(BOB .. "/quitter", bob_pw)
    local ast, qst = track(alice), track(quitter)
    local got = {}
    alice:on_message(function(msg) if msg.body then got[#got + 1] = msg.body end end)
    local ok, err = pcall(function()
      alice:connect()
      quitter:connect()
      drive({ alice, quitter }, function()
        return ast.ready and qst.ready and (bot.slurp("out") or ""):match("ready as ")
      end, 20, "the bot and two clients")
      alice:send_message(BOB .. "/bot", "hello bot")
      drive({ alice, quitter }, function() return #got >= 1 end, 20, "the bot's echo")
      assert.same({ "hello bot" }, got)
      quitter:send_message(BOB .. "/bot", "!quit")
      drive({ alice, quitter }, function() return bot.slurp("status") end, 20, "the bot to exit")
      assert.equals("0\n", bot.slurp("status"))
      assert.matches("ready as " .. BOB:gsub("%p", "%%%0") .. "/bot", bot.slurp("out"))
      assert.matches(ALICE:gsub("%p", "%%%0") .. "/[^:]+: hello bot", bot.slurp("out"))
    end)
    bot.stop()
    alice:close()
    quitter:close()
    drive({ alice, quitter }, function() return ast.reason and qst.reason end, 20, "close")
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
  -- ---- multi-user chat --------------------------------------------------

  local MUC = os.getenv("EPODE_TEST_MUC_DOMAIN") or ("conference." .. DOMAIN)

  -- The first event of `kind` in `events` (about `nick`, if given).
  local function find(events, kind, nick)
    for _, ev in ipairs(events) do
      if ev.type == kind and (nick == nil or ev.nick == nick) then return ev end
    end
  end

  local function nicks_of(occupants)
    local n = {}
    for _, o in ipairs(occupants) do n[#n + 1] = o.nick end
    table.sort(n)
    return n
  end

  it("joins a room with two clients who talk in it", function()
    local room = "lua-talk@" .. MUC
    local alice, bob = client(ALICE, alice_pw), client(BOB, bob_pw)
    local ast, bst = track(alice), track(bob)
    local aev, bev, bob_msgs = {}, {}, {}
    alice:on_muc(function(ev, cl)
      assert.equals(alice, cl)
      aev[#aev + 1] = ev
    end)
    bob:on_muc(function(ev) bev[#bev + 1] = ev end)
    bob:on_message(function(msg) bob_msgs[#bob_msgs + 1] = msg end)

    alice:join(room, "Alice") -- before connecting: sent at READY
    alice:connect()
    bob:connect()
    drive({ alice, bob }, function() return find(aev, "joined") and bst.ready end, 20,
      "alice in the room, bob ready")
    local joined = find(aev, "joined")
    assert.equals(room, joined.room)
    assert.equals("Alice", joined.nick)
    assert.equals("Alice", joined.own_nick)
    assert.is_true(joined.is_self)
    assert.is_true(joined.created)
    assert.equals("owner", joined.occupant.affiliation)

    bob:join(room, "Bob", { history = 0 })
    drive({ alice, bob }, function()
      return find(bev, "joined") and find(aev, "occupant_joined", "Bob")
    end, 20, "bob in the room")
    assert.is_false(find(bev, "joined").created)
    assert.equals("Alice", find(bev, "occupant_joined", "Alice").occupant.nick)
    local occ = bob:occupants(room)
    assert.same({ "Alice", "Bob" }, nicks_of(occ))
    for _, o in ipairs(occ) do
      if o.nick == "Alice" then
        assert.equals("moderator", o.role)
        assert.equals("owner", o.affiliation)
        assert.is_false(o.is_self)
      else
        assert.equals("participant", o.role)
        assert.is_true(o.is_self)
      end
    end
    local info = bob:room(room)
    info.subject = nil -- the room tells it at some point after the join
    assert.same({ jid = room, nick = "Bob", joined = true, occupant_count = 2 }, info)

    alice:send_groupchat(room, "hello room <&> ✓")
    drive({ alice, bob }, function() return find(bev, "message") and find(aev, "message") end,
      20, "the groupchat message")
    local got = find(bev, "message")
    assert.equals(room, got.room)
    assert.equals("Alice", got.nick)
    assert.equals("hello room <&> ✓", got.body)
    assert.is_false(got.is_self)
    assert.is_false(got.is_history)
    assert.equals("message", got.stanza.name)
    assert.equals("groupchat", got.stanza:attr("type"))
    assert.equals(room .. "/Alice", got.stanza:attr("from"))
    assert.has_error(function() got.stanza:set_attr("type", "chat") end,
      "stanza:set_attr: the stanza is read-only (it was received; st:copy() gives a "
      .. "writable copy)")
    assert.is_true(find(aev, "message").is_self) -- the room reflects ours back
    -- plain message handlers see room messages too, as groupchat
    local gc
    for _, m in ipairs(bob_msgs) do if m.type == "groupchat" then gc = m end end
    assert.equals("hello room <&> ✓", gc.body)
    assert.equals(got.stanza, gc.stanza)

    bob:send_private(room, "Alice", "psst")
    drive({ alice, bob }, function() return find(aev, "private") end, 20, "the private message")
    assert.equals("Bob", find(aev, "private").nick)
    assert.equals("psst", find(aev, "private").body)

    alice:set_subject(room, "Lua talk")
    drive({ alice, bob }, function()
      return bev[#bev].type == "subject" and bev[#bev].subject ~= ""
    end, 20, "the subject")
    assert.equals("Lua talk", bev[#bev].subject)
    assert.equals("Alice", bev[#bev].nick)
    assert.equals("Lua talk", bob:room(room).subject)

    assert.is_true(bob:leave(room, "bye"))
    assert.is_false(bob:leave(room)) -- already leaving
    drive({ alice, bob }, function()
      return find(bev, "left") and find(aev, "occupant_left", "Bob")
    end, 20, "bob out of the room")
    assert.is_nil(bob:occupants(room))
    assert.same({ "Alice" }, nicks_of(alice:occupants(room)))
    assert.has_error(function() bob:send_groupchat(room, "too late") end,
      "client:send_groupchat: STATE: not in room '" .. room .. "'")

    alice:close()
    bob:close()
    drive({ alice, bob }, function() return ast.reason and bst.reason end, 20, "both closed")
    -- the room is kept, to be joined again after a reconnect
    assert.is_false(alice:room(room).joined)
    assert.same({}, alice:occupants(room))
  end)

  it("reports a nick conflict, and retries with a suffix when asked", function()
    local room = "lua-conflict@" .. MUC
    local alice, bob = client(ALICE, alice_pw), client(BOB, bob_pw)
    local ast, bst = track(alice), track(bob)
    local aev, bev = {}, {}
    alice:on_muc(function(ev) aev[#aev + 1] = ev end)
    bob:on_muc(function(ev) bev[#bev + 1] = ev end)
    alice:join(room, "Same")
    alice:connect()
    bob:connect()
    drive({ alice, bob }, function() return find(aev, "joined") and bst.ready end, 20, "ready")

    bob:join(room, "Same")
    drive({ alice, bob }, function() return find(bev, "error") end, 20, "the conflict")
    local e = find(bev, "error")
    assert.equals("conflict", e.condition)
    assert.is_true(e.fatal)
    assert.is_false(e.retrying)
    assert.equals(room, e.room)
    assert.is_nil(bob:room(room)) -- gone with the fatal error

    bev = {}
    bob:muc_nick_retry(2)
    bob:join(room, "Same")
    drive({ alice, bob }, function() return find(bev, "joined") end, 20, "the retried join")
    assert.is_true(find(bev, "error").retrying)
    assert.is_false(find(bev, "error").fatal)
    assert.equals("Same_", find(bev, "joined").own_nick)
    assert.equals("Same_", bob:room(room).nick)

    alice:close()
    bob:close()
    drive({ alice, bob }, function() return ast.reason and bst.reason end, 20, "both closed")
  end)

  it("handles raw IQs and presences, and sends stanzas built in Lua", function()
    local alice, bob = client(ALICE, alice_pw), client(BOB, bob_pw)
    local ast, bst = track(alice), track(bob)
    local readonly_error
    bob:on_iq(function(iq, cl)
      assert.equals(bob, cl)
      if iq:attr("type") ~= "get" then return end
      if not iq:child("query", "urn:example:lua") then return end -- epode answers the rest
      readonly_error = select(2, pcall(iq.set_attr, iq, "id", "changed"))
      local r = iq:reply()
      r:add("query", "urn:example:lua"):add("answer"):set_text("42 <&>")
      cl:send(r)
      return true
    end)
    local presences = {}
    bob:on_presence(function(p)
      if (p:attr("from") or ""):find(ALICE, 1, true) == 1 then presences[#presences + 1] = p end
    end)
    local results = {}
    alice:on_iq(function(iq)
      local id = iq:attr("id")
      if id and id:match("^lua%-q") then results[id] = iq end
      return false
    end)
    alice:connect()
    bob:connect()
    drive({ alice, bob }, function() return ast.ready and bst.ready end, 20, "both ready")

    assert.is_nil(alice:send(("<presence to='%s'><status>hi &amp; bye</status></presence>")
      :format(bob:bound_jid())))
    local q1 = epode.stanza("iq", { type = "get", id = "lua-q1", to = bob:bound_jid() })
    q1:add("query", "urn:example:lua")
    assert.equals("lua-q1", alice:send(q1))
    local q2 = epode.stanza("iq", { type = "get", id = "lua-q2", to = bob:bound_jid() })
    q2:add("query", "urn:example:unknown")
    alice:send(q2)
    drive({ alice, bob }, function()
      return results["lua-q1"] and results["lua-q2"] and #presences > 0
    end, 20, "the answers and the presence")

    local r1 = results["lua-q1"]
    assert.equals("result", r1:attr("type"))
    assert.equals(bob:bound_jid(), r1:attr("from"))
    assert.equals("42 <&>", r1:child("query", "urn:example:lua"):child("answer").text)
    local r2 = results["lua-q2"]
    assert.equals("error", r2:attr("type"))
    assert.is_not_nil(r2:child("error"):child("service-unavailable",
                                                "urn:ietf:params:xml:ns:xmpp-stanzas"))
    assert.matches("stanza:set_attr: the stanza is read%-only", readonly_error)
    collectgarbage("collect") -- received stanzas kept by Lua stay readable
    assert.equals("hi & bye", presences[1]:child("status").text)
    assert.equals(ast.ready, presences[1]:attr("from"))

    alice:close()
    bob:close()
    drive({ alice, bob }, function() return ast.reason and bst.reason end, 20, "both closed")
  end)

  it("runs the MUC bot example", function()
    local room = "lua-bot@" .. MUC
    local bot
    local alice, quitter = client(ALICE, alice_pw), client(BOB .. "/quitter", bob_pw)
    local ast, qst = track(alice), track(quitter)
    local aev = {}
    alice:on_muc(function(ev) aev[#aev + 1] = ev end)
    local ok, err = pcall(function()
      -- a "!ping" in the room's history: the bot must not answer it
      alice:join(room, "Alice")
      alice:connect()
      quitter:connect()
      drive({ alice, quitter }, function() return find(aev, "joined") and qst.ready end, 20,
        "alice in the room")
      alice:send_groupchat(room, "!ping")
      drive({ alice, quitter }, function() return find(aev, "message") end, 20, "the reflection")

      bot = start_bot("muc_bot.lua", BOB .. "/mucbot", bob_pw, { room, "PingBot" })

      drive({ alice, quitter }, function()
        return find(aev, "occupant_joined", "PingBot") and (bot.slurp("out") or ""):match("joined ")
      end, 20, "the bot in the room")
      alice:send_groupchat(room, "!ping")
      alice:send_groupchat(room, "!echo !ping") -- the bot must not answer itself
      alice:send_groupchat(room, "not a command")
      alice:send_groupchat(room, "!echo done  ")
      local said = {}
      drive({ alice, quitter }, function()
        said = {}
        for _, ev in ipairs(aev) do
          if ev.type == "message" and ev.nick == "PingBot" then said[#said + 1] = ev.body end
        end
        return said[#said] == "done"
      end, 20, "the bot's answers")
      assert.same({ "pong", "!ping", "done" }, said)

      quitter:send_message(BOB .. "/mucbot", "!quit")
      drive({ alice, quitter }, function()
        return bot.slurp("status") and find(aev, "occupant_left", "PingBot")
      end, 20, "the bot to leave and exit")
      assert.equals("0\n", bot.slurp("status"))
      local out = bot.slurp("out")
      assert.matches("joined " .. (room .. "/PingBot"):gsub("%p", "%%%0"), out)
      assert.matches("Alice: !ping\n", out)
      assert.matches("Alice: !echo done", out)
    end)
    if bot then bot.stop() end
    alice:close()
    quitter:close()
    drive({ alice, quitter }, function() return ast.reason and qst.reason end, 20, "close")
    assert(ok, err)
  end)

  it("a component (XEP-0114) answers a client from any JID of its domain", function()
    local cdomain, cport, csecret =
      (os.getenv("EPODE_TEST_COMPONENT") or ""):match("^([^:]+):(%d+):(.*)$")
    if not cdomain then
      pending("no component port (tests/lua/run.sh gives one)")
      return
    end
    local comp = epode.component{ domain = cdomain, secret = csecret, server = HOST,
                                  port = tonumber(cport) }
    comp:on_message(function(msg, cl)
      if msg.body then cl:send_message(msg.from, msg.body:upper(), "chat", msg.to) end
    end)
    local cst = track(comp)
    comp:connect()
    local alice = client(ALICE, alice_pw)
    local ast = track(alice)
    local got
    alice:on_message(function(msg) if msg.body then got = { msg.from, msg.body } end end)
    alice:connect()
    drive({ comp, alice }, function() return cst.ready and ast.ready end, 20, "both ready")
    assert.equals(cdomain, comp:bound_jid())
    local target = "anyone@" .. cdomain
    alice:send_message(target, "shout this")
    drive({ comp, alice }, function() return got end, 20, "the echo")
    assert.same({ target, "SHOUT THIS" }, got)
    -- no from in the component's domain: refused before sending
    assert.has_error(function() comp:send_message(ALICE, "who am I") end)
    comp:close()
    alice:close()
    drive({ comp, alice }, function() return cst.reason and ast.reason end, 20, "close")

    local bad = epode.component{ domain = cdomain, secret = "not " .. csecret, server = HOST,
                                 port = tonumber(cport) }
    bad:connect()
    local reason, text = bad:run()
    assert.equals("stream_error", reason)
    assert.matches("not%-authorized", text)
    assert.matches("refused the component handshake", text)
  end)

  -- A TCP proxy to the server that resets every open connection when
  -- told (tests/integration/faultproxy.py, driven through a pipe).
  local function start_proxy()
    local script, portfile = os.tmpname(), os.tmpname()
    os.remove(portfile)
    local f = assert(io.open(script, "w"))
    f:write([[
import os, sys
sys.path.insert(0, "tests/integration")
from faultproxy import FaultProxy
p = FaultProxy(sys.argv[1], int(sys.argv[2]))
with open(sys.argv[3] + ".tmp", "w") as f:
    f.write(str(p.port))
os.rename(sys.argv[3] + ".tmp", sys.argv[3])
for line in sys.stdin:
    if line.strip() == "cut":
        p.cut_all()
p.close()
]])
    f:close()
    local pipe = assert(io.popen(("/usr/bin/python3 %s %s %d %s"):format(script, HOST, PORT,
                                                                        portfile), "w"))
    local port
    local deadline = os.time() + 20
    repeat
      local pf = io.open(portfile)
      if pf then port = tonumber(pf:read("a")); pf:close() end
      assert(os.time() <= deadline, "the proxy did not start")
    until port
    os.remove(script)
    os.remove(portfile)
    return {
      port = port,
      cut = function() pipe:write("cut\n"); pipe:flush() end,
      close = function() pipe:close() end,
    }
  end

  it("reconnects after a cut (reconnect = true), joins its room again, run() goes on", function()
    local proxy = start_proxy()
    local c = epode.client{ jid = ALICE .. "/lua-rc", password = alice_pw, server = HOST,
                            port = proxy.port, ca_file = CA, reconnect = true,
                            reconnect_min = 0.05, reconnect_max = 0.2 }
    local room = "lua-rc-" .. os.time() .. "@" .. (os.getenv("EPODE_TEST_MUC_DOMAIN")
                                                   or ("conference." .. DOMAIN))
    local events, cut_info, joins = {}, nil, 0
    c:on_event(function(name, info)
      events[#events + 1] = name
      if name == "disconnected" and not cut_info then cut_info = info end
    end)
    c:on_muc(function(ev, client)
      if ev.type ~= "joined" then return end
      joins = joins + 1
      if joins == 1 then proxy.cut() else client:close() end
    end)
    c:join(room, "rc")
    c:connect()
    local reason = c:run() -- not ended by the cut: only by the close after the second join
    proxy.close()
    assert.equals("closed", reason)
    assert.equals(2, joins)
    assert.same({ "connecting", "tls_up", "authenticated", "ready", "disconnected",
                  "connecting", "tls_up", "authenticated", "ready", "disconnected" }, events)
    assert.equals("network", cut_info.reason)
    assert.is_true(cut_info.reconnecting)
  end)
end)
