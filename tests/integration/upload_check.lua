-- tests/integration/upload_check.lua HOST PORT CA JID PASSWORD LIMIT — the
-- Lua binding's HTTP File Upload against a real server with an upload
-- service (run by test_upload.py): c:upload{data=...} with progress, a
-- file over the service's limit refused with LIMIT and the limit, and
-- c:send_url to our own account, read back with epode.oob_url. Prints
-- "url URL" for the upload, one line per step; exit 0 only if every step
-- went as expected.
local epode = require "epode"
local host, port, ca, jid, password, limit = table.unpack(arg)
port, limit = tonumber(port), tonumber(limit)
local ok = true

local function step(name, good, ...)
  print(name, good and "ok" or "FAILED", ...)
  ok = ok and good
end

local data = {}
for i = 0, 49999 do data[#data + 1] = string.char((i * 7 + 3) % 256) end
data = table.concat(data)

local c = epode.client{ jid = jid .. "/lua", password = password, server = host, port = port,
                        ca_file = ca }
local last_progress, url
c:on_message(function(msg, client)
  local oob = epode.oob_url(msg)
  if oob then
    step("oob", oob == url and msg.body == url, oob)
    client:close()
  end
end)
c:on_event(function(name, info, client)
  if name ~= "ready" then return end
  client:upload({ data = data, filename = "lua.bin", content_type = "application/octet-stream" },
    function(u, err, i)
      step("upload", u ~= nil and err == nil, err, i.text)
      step("progress", last_progress == #data, last_progress)
      url = u
      print("url " .. tostring(u))
      -- the limit disco announced is known now: refused at once
      local called, e = pcall(client.upload, client,
                              { data = string.rep("x", limit + 1), filename = "big.bin" },
                              function() step("limit-no-callback", false) end)
      step("limit", not called and tostring(e):find("LIMIT", 1, true) ~= nil, e)
      client:send_url(client:bound_jid(), url)
    end,
    function(sent, total) last_progress = sent; assert(total == #data) end)
end)
local args_ok = pcall(c.upload, c, {}, function() end)
step("needs-data-or-path", not args_ok)
c:connect()
local reason = c:run()
step("closed", reason == "closed", reason)
os.exit(ok and 0 or 1)
