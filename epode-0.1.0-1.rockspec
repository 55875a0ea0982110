-- epode-0.1.0-1.rockspec — the Lua 5.4 module `require "epode"`, built by
-- LuaRocks from bindings/lua/epode_lua.c against an installed libepode
-- (README.md, "Install"). From the source tree:
--
--   luarocks --lua-version 5.4 make --local
--   eval "$(luarocks --lua-version 5.4 path)"     # ~/.luarocks on the paths
--   lua5.4 -e 'require "epode"'
--
-- libepode is looked for under /usr/local and /usr (include/epode.h,
-- lib/<multiarch>/libepode.so); for another prefix add EPODE_DIR=PREFIX
-- (or EPODE_INCDIR=... EPODE_LIBDIR=...). The module records that
-- library directory as its run-time path.
rockspec_format = "3.0"
package = "epode"
version = "0.1.0-1"
source = {
   url = "git+file://.",
}
description = {
   summary = "XMPP clients and bots in Lua, on the epode C library",
   detailed = [[
      Clients with message, presence, IQ and event handlers, stanzas,
      group chat, the built-in event loop or a step function for yours.
      TLS required and verified, SCRAM, stream management.
   ]],
   license = "MIT",
   labels = { "xmpp", "jabber", "chat" },
}
dependencies = {
   "lua >= 5.4, < 5.5",
}
external_dependencies = {
   EPODE = {
      header = "epode.h",
      library = "epode",
   },
}
build = {
   type = "builtin",
   modules = {
      epode = {
         -- epode_lua.c includes its other parts (epode_lua_*.c); the FAST
         -- token file is shared with the C tools
         sources = { "bindings/lua/epode_lua.c", "examples/common/fast_file.c" },
         libraries = { "epode" },
         incdirs = { "$(EPODE_INCDIR)" },
         libdirs = { "$(EPODE_LIBDIR)" },
      },
   },
   copy_directories = {},
}
