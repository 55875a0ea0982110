-- tests/integration/register_captcha.lua HOST PORT CA JID PASSWORD TEXTS
-- [wrong] — registers JID on a server that protects registration with a
-- CAPTCHA (XEP-0158), through the Lua binding's fill callback (the C
-- helper's path): the answer is the last line of TEXTS, where the test's
-- captcha script writes each challenge text (or a wrong one with "wrong").
-- Prints "ok" or "failed CONDITION TEXT"; exit 0 on success.
local epode = require "epode"
local host, port, ca, jid, password, texts, wrong = table.unpack(arg)
local seen_media = false
local ok, cond, text = epode.register{
  jid = jid, password = password, server = host, port = tonumber(port), ca_file = ca,
  fill = function(fields)
    local answer = {}
    for _, f in ipairs(fields) do
      if f.media then
        seen_media = f.media[1] ~= nil and f.media[1]:match("^cid:") ~= nil
        local last
        for line in io.lines(texts) do last = line end
        answer[f.var] = wrong and "not-the-text" or last
      end
    end
    return answer
  end,
}
if ok then
  print("ok", seen_media and "media" or "no-media")
  os.exit(0)
end
print("failed", cond, text, seen_media and "media" or "no-media")
os.exit(1)
