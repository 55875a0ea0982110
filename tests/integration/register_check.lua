-- tests/integration/register_check.lua HOST PORT CA JID PASSWORD — the Lua
-- binding's in-band registration against a real server with registration
-- open (run by test_register.py): epode.register, a conflict the second
-- time, a login, change_password, a login with the new password, then
-- unregister and a refused login. Prints one line per step; exit 0 only
-- if every step went as expected.
local epode = require "epode"
local host, port, ca, jid, password = table.unpack(arg)
port = tonumber(port)
local ok = true

local function step(name, good, ...)
  print(name, good and "ok" or "FAILED", ...)
  ok = ok and good
end

local r, cond, text = epode.register{ jid = jid, password = password, server = host,
                                      port = port, ca_file = ca }
step("register", r == true, cond, text)
r, cond, text = epode.register{ jid = jid, password = password, server = host, port = port,
                                ca_file = ca }
step("conflict", r == nil and cond == "conflict", cond, text)

-- logs in, runs action(client, finish) once ready; returns what finish got
-- (or false, reason of the disconnection)
local function session(pw, action)
  local c = epode.client{ jid = jid, password = pw, server = host, port = port, ca_file = ca }
  local result
  c:on_event(function(name, info, client)
    if name == "ready" then
      action(client, function(...) result = table.pack(...); client:close() end)
    end
  end)
  c:connect()
  local reason, why = c:run()
  if not result then return false, reason, why end
  return table.unpack(result, 1, result.n)
end

local good, c2, t2 = session(password, function(client, finish)
  client:change_password("new-" .. password, function(success, condition, t)
    finish(success, condition, t)
  end)
end)
step("change_password", good == true, c2, t2)
good, c2 = session(password, function(_, finish) finish(true) end)
step("old password refused", good == false and c2 == "auth", c2)
good, c2, t2 = session("new-" .. password, function(client, finish)
  client:unregister(function(success, condition, t) finish(success, condition, t) end)
end)
step("unregister", good == true, c2, t2)
good, c2 = session("new-" .. password, function(_, finish) finish(true) end)
step("removed account refused", good == false and c2 == "auth", c2)

-- misuse is an error, not a crash
local e = select(2, pcall(epode.register, { jid = "nouser", password = "x" }))
step("bad jid raises", tostring(e):find("username") ~= nil, e)
os.exit(ok and 0 or 1)
