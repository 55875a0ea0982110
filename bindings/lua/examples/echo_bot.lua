-- echo_bot.lua — answers every chat or normal message with the same body.
--
--   lua5.4 echo_bot.lua --jid bot@example.org --password-file pw.txt \
--       [--server HOST] [--port N] [--ca-file FILE] [--direct-tls] [--verbose]
--
-- From the build tree: meson devenv -C build lua5.4 bindings/lua/examples/echo_bot.lua ...
-- Runs until the connection ends (a message "!quit" from its own account
-- closes it cleanly); exits non-zero with a one-line reason if it ended
-- for any other reason than that.
local epode = require "epode"

local function usage(msg)
  io.stderr:write("echo_bot: ", msg, "\n",
    "usage: echo_bot.lua --jid JID --password-file FILE [--server HOST] [--port N]",
    " [--ca-file FILE] [--direct-tls] [--verbose]\n")
  os.exit(2)
end

local opts = {}
local i = 1
while i <= #arg do
  local a = arg[i]
  local function value()
    i = i + 1
    return arg[i] or usage(a .. " needs a value")
  end
  if a == "--jid" then opts.jid = value()
  elseif a == "--password-file" then opts.password_file = value()
  elseif a == "--server" then opts.server = value()
  elseif a == "--port" then opts.port = math.tointeger(tonumber(value())) or usage("bad --port")
  elseif a == "--ca-file" then opts.ca_file = value()
  elseif a == "--direct-tls" then opts.direct_tls = true
  elseif a == "--verbose" then opts.verbose = true
  else usage("unknown argument " .. a) end
  i = i + 1
end
if not opts.jid then usage("--jid is required") end

local password
if opts.password_file then
  local f = assert(io.open(opts.password_file))
  password = f:read("l")
  f:close()
end

local bot = epode.client{
  jid = opts.jid, password = password, server = opts.server, port = opts.port,
  ca_file = opts.ca_file, direct_tls = opts.direct_tls, verbose = opts.verbose,
}

local own_bare = opts.jid:match("^[^/]+")

bot:on_event(function(name, info)
  if name == "ready" then
    bot:send_presence("chat", "echoing")
    print("ready as " .. info.jid)
    io.stdout:flush()
  end
end)

bot:on_message(function(msg)
  if not msg.body or (msg.type ~= "chat" and msg.type ~= "normal") then
    return -- chat states, errors, headlines, group chat
  end
  local from_bare = msg.from and msg.from:match("^[^/]+")
  if msg.body == "!quit" and from_bare == own_bare then
    bot:close()
    return
  end
  print(("%s: %s"):format(msg.from, msg.body))
  io.stdout:flush()
  bot:send_message(msg.from, msg.body, msg.type)
end)

-- A handler that fails is reported here; the bot keeps running.
bot.on_error = function(message, where)
  io.stderr:write("echo_bot: ", where, " failed: ", message, "\n")
end

bot:connect()
local reason, text = bot:run()
if reason ~= "closed" then
  io.stderr:write("echo_bot: ", tostring(reason), ": ", tostring(text), "\n")
  os.exit(1)
end
