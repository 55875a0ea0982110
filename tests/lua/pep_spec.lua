-- busted spec for the PEP family of the Lua module
-- (bindings/lua/epode_lua_pep.c): argument checks without a server, then
-- — tagged #server, against the Prosody tests/lua/run.sh starts with pep
-- and bookmarks — bookmarks, pubsub items, an avatar and a nick.
--
--   LUA_CPATH='build/bindings/lua/?.so;;' busted -o TAP tests/lua/pep_spec.lua

local epode = require "epode"

describe("the PEP family without a server", function()
  it("refuses requests before login and bad arguments", function()
    local c = epode.client{ jid = "someone@localhost", password = "pw" }
    assert.has_error(function() c:publish("n", "<x xmlns='urn:x'/>", function() end) end,
      "client:publish: STATE: not allowed in the current state")
    assert.has_error(function() c:bookmarks(function() end) end,
      "client:bookmarks: STATE: not allowed in the current state")
    assert.has_error(function() c:publish("n", "<x", function() end) end)
    assert.has_error(function() c:publish("n", nil, { options = { ["pubsub#x"] = {} } },
                                          function() end) end)
    assert.has_error(function() c:publish_avatar("png", { width = -1 }, function() end) end)
    assert.has_error(function() c:fetch_items("n") end) -- no callback
    assert.has_error(function() c:on_pep(42) end)
    c:on_pep(function() end) -- fine before connect
    c:close()
  end)
end)

describe("the PEP family against Prosody #server", function()
  local HOST = os.getenv("EPODE_TEST_HOST")
  if not HOST then
    pending("no server: run tests/lua/run.sh BUILD_DIR")
    return
  end
  local PORT = tonumber(os.getenv("EPODE_TEST_PORT"))
  local DOMAIN = os.getenv("EPODE_TEST_DOMAIN")
  local MUC = os.getenv("EPODE_TEST_MUC_DOMAIN")
  local CA = os.getenv("EPODE_TEST_CA_FILE")
  local alice_user, alice_pw = os.getenv("EPODE_TEST_ALICE"):match("^([^:]+):(.*)$")
  local ALICE = alice_user .. "@" .. DOMAIN

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

  it("adds, lists and removes bookmarks, seen by another resource", function()
    local a = connected(ALICE .. "/lua-pep-a", alice_pw)
    local b = connected(ALICE .. "/lua-pep-b", alice_pw)
    local seen = {}
    b:on_pep(function(ev) if ev.kind == "bookmark" then seen[#seen + 1] = ev end end)
    b:send_presence()
    local r = {}
    drive({ a, b }, function() return #seen > 0 end, 20, "b's first fetch") -- "loaded"
    -- the server asks b's caps (disco#info) before it can tell b anything
    local settle = os.time() + 2
    drive({ a, b }, function() return os.time() >= settle end, 5, "b's caps")
    local room = "lua-room@" .. MUC
    a:add_bookmark(room, { name = "Lua Room", nick = "al", autojoin = true },
                   function(ok, err) r.add = { ok, err } end)
    drive({ a, b }, function() return r.add end, 20, "add")
    assert.same({ true }, r.add)
    drive({ a, b }, function() return seen[#seen].event == "added" end, 20, "b's notification")
    assert.equals(room, seen[#seen].room)
    assert.is_true(seen[#seen].autojoin)
    assert.equals("al", seen[#seen].nick)
    a:bookmarks(function(list, err) r.list = { list, err } end)
    drive({ a, b }, function() return r.list end, 20, "list")
    assert.same({ { room = room, name = "Lua Room", nick = "al", autojoin = true } }, r.list[1])
    a:remove_bookmark(room, function(ok, err) r.rm = { ok, err } end)
    drive({ a, b }, function() return r.rm and seen[#seen].event == "removed" end, 20, "remove")
    assert.same({ true }, r.rm)
    a:close()
    b:close()
    drive({ a, b }, function() return not a:is_ready() and not b:is_ready() end, 10, "close")
  end)

  it("publishes, fetches and retracts items; avatar and nick", function()
    local a = connected(ALICE .. "/lua-pep-items", alice_pw)
    local r = {}
    a:publish("urn:example:lua", "<t xmlns='urn:example:lua'>one</t>",
              { id = "i1", options = { ["pubsub#access_model"] = "presence" } },
              function(id, err) r.pub = { id, err } end)
    drive({ a }, function() return r.pub end, 20, "publish")
    assert.same({ "i1" }, r.pub)
    a:fetch_items("urn:example:lua", function(items, err) r.items = { items, err } end)
    drive({ a }, function() return r.items end, 20, "fetch")
    assert.equals(1, #r.items[1])
    assert.equals("i1", r.items[1][1].id)
    assert.equals("one", r.items[1][1].payload.text)
    a:retract("urn:example:lua", "i1", function(ok, err) r.ret = { ok, err } end)
    drive({ a }, function() return r.ret end, 20, "retract")
    assert.same({ true }, r.ret)
    a:fetch_items("urn:example:absent", { id = "x" }, function(items, err) r.absent = { items, err } end)
    drive({ a }, function() return r.absent end, 20, "absent node")
    assert.same({ nil, "item-not-found" }, r.absent)
    local png = "\137PNG\r\n\26\n" .. string.rep("lua", 50)
    a:publish_avatar(png, { width = 1, height = 1 }, function(id, err) r.av = { id, err } end)
    drive({ a }, function() return r.av end, 20, "avatar publish")
    assert.equals(40, #r.av[1])
    a:fetch_avatar(nil, function(data, err, _, ty) r.got = { data, err, ty } end)
    drive({ a }, function() return r.got end, 20, "avatar fetch")
    assert.same({ png, nil, "image/png" }, r.got)
    a:set_nick("Lua Alice", function(ok, err) r.nick = { ok, err } end)
    drive({ a }, function() return r.nick end, 20, "nick")
    assert.same({ true }, r.nick)
    a:close()
    drive({ a }, function() return not a:is_ready() end, 10, "close")
  end)
end)
