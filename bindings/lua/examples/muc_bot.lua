-- muc_bot.lua — joins a multi-user chat room and answers, in the room,
-- "!ping" with "pong" and "!echo TEXT" with TEXT. It ignores its own
-- messages and the history the room replays when it joins.
--
--   lua5.4 muc_bot.lua --jid bot@example.org --password-file pw.txt \
--       [--server HOST] [--port N] [--ca-file FILE] [--direct-tls] [--verbose] \
--       ROOM@SERVICE NICK
--
-- From the build tree: meson devenv -C build lua5.4 bindings/lua/examples/muc_bot.lua ...
-- Prints "joined ROOM/NICK" once in the room (if the nick is taken it
-- tries NICK_, NICK__, NICK___). A chat message "!quit" from its own
-- account makes it leave the room and close the connection; it then
-- exits 0. It exits 1 with a one-line reason if the connection fails, or
-- the room refuses or drops it; 2 on bad arguments.
local epode = require "epode"

local function usage(msg)
  io.stderr:write("muc_bot: ", msg, "\n",
    "usage: muc_bot.lua --jid JID --password-file FILE [--server HOST] [--port N]",
    " [--ca-file FILE] [--direct-tls] [--verbose] ROOM@SERVICE NICK\n")
  os.exit(2)
end

local opts, positional = {}, {}
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
  elseif a:sub(1, 2) == "--" then usage("unknown argument " .. a)
  else positional[#positional + 1] = a end
  i = i + 1
end
if not opts.jid then usage("--jid is required") end
if #positional ~= 2 then usage("need a room and a nick") end
local room, nick = positional[1], positional[2]

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
local quitting = false
local failure -- why we are ending, if it is a failure

local function fail(why)
  failure = failure or why
  bot:close()
end

-- The answer to a command, or nil for anything else.
local function answer(body)
  if body == "!ping" then return "pong" end
  local text = body:match("^!echo%s+(.-)%s*$")
  if text and text ~= "" then return text end
end

bot:on_muc(function(ev)
  if ev.type == "joined" then
    print(("joined %s/%s"):format(ev.room, ev.own_nick))
    io.stdout:flush()
  elseif ev.type == "message" then
    -- ev.nick is nil for messages from the room itself
    if ev.is_self or ev.is_history or not ev.nick then return end
    local reply = answer(ev.body)
    if reply then
      print(("%s: %s"):format(ev.nick, ev.body))
      io.stdout:flush()
      bot:send_groupchat(ev.room, reply)
    end
  elseif ev.type == "error" and ev.fatal then
    fail(("could not join %s: %s%s"):format(ev.room, ev.condition,
      ev.error_text and (": " .. ev.error_text) or ""))
  elseif ev.type == "left" then
    if quitting then bot:close() else fail("the room dropped us (kicked, banned or destroyed)") end
  end
end)

bot:on_message(function(msg)
  local from_bare = msg.from and msg.from:match("^[^/]+")
  if msg.type == "chat" and msg.body == "!quit" and from_bare == own_bare and not quitting then
    quitting = true
    -- leave politely; the "left" event closes the connection
    if not bot:leave(room, "bye") then bot:close() end
  end
end)

bot.on_error = function(message, where)
  io.stderr:write("muc_bot: ", where, " failed: ", message, "\n")
end

-- Joined at READY (and again after a reconnect); a bad room address is
-- refused here, before connecting.
bot:muc_nick_retry(3)
local ok, err = pcall(bot.join, bot, room, nick)
if not ok then
  io.stderr:write("muc_bot: ", err, "\n")
  os.exit(2)
end

bot:connect()
local reason, text = bot:run()
if failure then
  io.stderr:write("muc_bot: ", failure, "\n")
  os.exit(1)
elseif reason ~= "closed" then
  io.stderr:write("muc_bot: ", tostring(reason), ": ", tostring(text), "\n")
  os.exit(1)
end
