-- busted spec for the modern IM layer of the Lua module
-- (bindings/lua/epode_lua_modern.c): message features and builders, the
-- sender check, and — tagged #server, against the Prosody tests/lua/run.sh
-- starts with mam, blocklist and csi — blocking, client state and archive
-- queries.
--
--   LUA_CPATH='build/bindings/lua/?.so;;' busted -o TAP tests/lua/modern_spec.lua

local epode = require "epode"

describe("message features without a server", function()
  it("builds what XEP-0308/0424/0444/0461/0333 say", function()
    local c = epode.correction("romeo@example.net", "fixed", "m1")
    assert.equals("m1", c:child("replace", "urn:xmpp:message-correct:0"):attr("id"))
    local r = epode.retraction("romeo@example.net", "m1")
    assert.equals("m1", r:child("retract", "urn:xmpp:message-retract:1"):attr("id"))
    assert.is_not_nil(r:child("store", "urn:xmpp:hints"))
    local x = epode.reactions("romeo@example.net", "m1", { "\u{1F44B}", "\u{1F422}" })
    local n = 0
    for _ in x:child("reactions", "urn:xmpp:reactions:0"):children("reaction") do n = n + 1 end
    assert.equals(2, n)
    assert.has_error(function() epode.reactions("romeo@example.net", "m1", { "a", "a" }) end)
    local many = {}
    for i = 1, 64 do many[i] = "r" .. i end   -- more values than a C function's minimum stack
    local big = epode.reactions("romeo@example.net", "m1", many)
    n = 0
    for _ in big:child("reactions", "urn:xmpp:reactions:0"):children("reaction") do n = n + 1 end
    assert.equals(64, n)
    many[65] = "r65"
    assert.has_error(function() epode.reactions("romeo@example.net", "m1", many) end)
    local p = epode.reply("anna@example.com", "Great idea!", "m1",
                          { reply_to = "anna@example.com/laptop", quote = "bake a cake" })
    assert.equals("> bake a cake\nGreat idea!", p:child("body").text)
    local k = epode.marker("romeo@example.net", "m1")
    assert.equals("m1", k:child("displayed", "urn:xmpp:chat-markers:0"):attr("id"))
  end)

  it("checks the sender of a correction", function()
    local st = epode.parse("<message xmlns='jabber:client' from='mallory@evil.example/x' " ..
      "type='chat'><replace xmlns='urn:xmpp:message-correct:0' id='m1'/></message>")
    assert.is_false(epode.same_sender(st, "romeo@example.net/orchard"))
    assert.is_true(epode.same_sender(st, "mallory@evil.example/y"))
    local g = epode.parse("<message xmlns='jabber:client' from='room@muc.example/mallory' " ..
      "type='groupchat'><replace xmlns='urn:xmpp:message-correct:0' id='m1'/></message>")
    assert.is_false(epode.same_sender(g, "room@muc.example/romeo"))
    assert.is_true(epode.same_sender(g, "room@muc.example/romeo", nil, "direct"))
    assert.has_error(function() epode.same_sender(g, "x@y", nil, "sideways") end)
  end)
end)

describe("the modern IM layer against Prosody #server", function()
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

  local function client(jid, password)
    return epode.client{ jid = jid, password = password, server = HOST, port = PORT,
                         ca_file = CA }
  end

  local function drive(clients, cond, seconds, what)
    local deadline = os.time() + (seconds or 20)
    while not cond() do
      assert(os.time() <= deadline, "timed out waiting for " .. (what or "a condition"))
      for _, c in ipairs(clients) do c:step(10) end
    end
  end

  local function connected(jid, pw)
    local c = client(jid, pw)
    local st = {}
    c:on_event(function(name) if name == "ready" then st.ready = true end end)
    c:connect()
    drive({ c }, function() return st.ready end, 20, "login")
    return c
  end

  it("pings and asks software versions (XEP-0199, XEP-0092)", function()
    local a = connected(ALICE .. "/lua-ping", alice_pw)
    local b = connected(BOB .. "/lua-ping", bob_pw)
    local r = {}
    local function ask(key) -- a done callback for a's request, recording into r[key]
      return { function(res, cond, cl)
        r[key] = { res, cond, cl == a }
      end }
    end
    a:ping(nil, table.unpack(ask("server")))
    drive({ a, b }, function() return r.server end, 20, "the server's pong")
    assert.is_number(r.server[1])
    assert.is_nil(r.server[2])
    assert.is_true(r.server[3]) -- done gets the client
    -- a resource that is not there: the server answers service-unavailable
    local bare = b:bound_jid():match("^[^/]+")
    a:ping(bare .. "/no-such-resource", table.unpack(ask("b1")))
    drive({ a, b }, function() return r.b1 end, 20, "the error")
    assert.same({ nil, "service-unavailable", true }, r.b1)
    -- b has pinged nobody, yet answers pings from its creation
    a:ping(b:bound_jid(), table.unpack(ask("b2")))
    drive({ a, b }, function() return r.b2 end, 20, "b's pong")
    assert.is_number(r.b2[1])
    assert.has_error(function() a:ping("not a jid@@", function() end) end,
      "client:ping: JID: malformed JID ('not a jid@@')")
    assert.has_error(function() a:ping(nil, function() end, -1) end)

    b:set_version("luabot", "2.0", "Plan 9")
    a:version(b:bound_jid(), function(res, cond) r.v = { res, cond } end)
    drive({ a, b }, function() return r.v end, 20, "b's version")
    assert.same({ { name = "luabot", version = "2.0", os = "Plan 9" } }, r.v)
    a:version(nil, function(res, cond) r.sv = { res, cond } end)
    drive({ a, b }, function() return r.sv end, 20, "the server's version")
    assert.equals("Prosody", r.sv[1].name)
    -- asking made a's helper: it answers with the library's name, no OS
    b:version(a:bound_jid(), function(res) r.av = res end)
    drive({ a, b }, function() return r.av end, 20, "a's version")
    assert.same({ name = "epode", version = epode.version }, r.av)
    a:close()
    b:close()
    drive({ a, b }, function() return not a:is_ready() and not b:is_ready() end, 10, "close")
    assert.has_error(function() a:ping(nil, function() end) end,
      "client:ping: STATE: not allowed in the current state")
  end)

  it("blocks, lists and unblocks, and sets the client state", function()
    local a = connected(ALICE .. "/lua-modern", alice_pw)
    local events = {}
    a:on_blocking(function(ev, jids) events[#events + 1] = ev end)
    local done = {}
    a:block("spammer@example.invalid", function(ok, cond) done.block = { ok, cond } end)
    drive({ a }, function() return done.block end, 20, "block")
    assert.same({ true }, done.block)
    assert.same({ "spammer@example.invalid" }, a:blocklist())
    local list = {}
    for i = 1, 40 do list[i] = "spam" .. i .. "@example.invalid" end
    a:block(list, function(ok) done.many = ok end)
    drive({ a }, function() return done.many ~= nil end, 20, "block 40")
    assert.is_true(done.many)
    assert.equals(41, #a:blocklist())
    a:unblock_all(function(ok) done.all = ok end)
    drive({ a }, function() return done.all ~= nil end, 20, "unblock_all")
    assert.same({}, a:blocklist())
    assert.is_true(#events >= 2)
    a:set_active(false)
    a:set_active(true)
    a:fetch_blocklist(function(ok) done.fetch = ok end)
    drive({ a }, function() return done.fetch ~= nil end, 20, "fetch after CSI")
    assert.is_true(done.fetch)
    a:close()
    drive({ a }, function() return not a:is_ready() end, 10, "close")
  end)

  it("reads message features and fetches the archive", function()
    local a = connected(ALICE .. "/lua-mam", alice_pw)
    local b = connected(BOB .. "/lua-mam", bob_pw)
    local got = {}
    a:on_message(function(msg) if msg.from and msg.from:find(BOB, 1, true) then got[#got + 1] = msg end end)
    local tag = tostring(os.time()) .. "-" .. tostring(math.random(1000000))
    local first_id = b:send_message(a:bound_jid(), "lua archived " .. tag)
    b:send(epode.correction(a:bound_jid(), "lua corrected " .. tag, "orig-" .. tag))
    b:send(epode.reactions(a:bound_jid(), "orig-" .. tag, { "\u{1F44D}" }))
    drive({ a, b }, function() return #got >= 3 end, 20, "the messages")
    assert.equals(first_id, got[1].ref_id)
    assert.equals("orig-" .. tag, got[2].replace_id)
    assert.is_nil(got[2].reply_body) -- a correction is no reply
    assert.equals("lua corrected " .. tag, got[2].body)
    assert.is_true(epode.same_sender(got[2], got[1].from))
    assert.equals("orig-" .. tag, got[3].reactions_to)
    assert.same({ "\u{1F44D}" }, got[3].reactions)
    local result
    a:mam_fetch({ with = BOB, before = "", max = 10 }, function(msgs, info) result = { msgs, info } end)
    drive({ a, b }, function() return result end, 20, "the archive")
    local msgs, info = result[1], result[2]
    assert.is_true(info.ok)
    local found
    for _, m in ipairs(msgs) do
      if m.body == "lua archived " .. tag then found = m end
    end
    assert.is_not_nil(found)
    assert.is_string(found.archive_id)
    assert.matches("^%d%d%d%d%-%d%d%-%d%dT", found.timestamp)
    assert.equals(info.last, msgs[#msgs].archive_id)
    a:close()
    b:close()
    drive({ a, b }, function() return not a:is_ready() and not b:is_ready() end, 10, "close")
  end)
end)
