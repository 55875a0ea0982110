-- tests/servers/mod_sasl2_backport.lua — TEST ONLY. Gives Prosody 0.12.3 the
-- few trunk interfaces that the prosody-modules SASL2 family (mod_sasl2,
-- mod_sasl2_bind2, mod_sasl2_fast, mod_sasl2_sm; Debian's prosody-modules
-- 0.0~hg20230223) expects, so that epode's SASL2/Bind2/FAST code can be
-- tested against a real server on loopback. Without it no client can log in
-- at all once those modules are loaded (see ../../shared SERVERS.md). Load it
-- with them (xmppservers.py --sasl2 does). Never for production use.
--
-- What it adds, each only where 0.12 lacks it:
-- 1. ssl_info(), ssl_peerfinished(), ssl_exportkeyingmaterial() on
--    net.server connections (wrapping the LuaSec socket's info,
--    getpeerfinished and exportkeyingmaterial);
-- 2. event.stream (with the client's stream-header 'from') in the
--    stream-features event, which mod_sasl2_fast reads to find the user's
--    tokens: a bytes/in filter on unauthenticated sessions remembers it;
-- 3. util.datetime.datetime() given a float (Lua 5.4's os.date refuses
--    non-integers): floored;
-- 4. stanza:get_child_attr(name, xmlns, attr);
-- 5. FAST with HT-SHA-256-EXPR on TLS 1.3: 0.12's SASL handler loses the
--    tls-exporter binding, so the FAST handler gets a binding table of its
--    own with it (RFC 9266: "EXPORTER-Channel-Binding", 32 bytes, empty
--    context) — a new table, so legacy SCRAM on TLS 1.3 is unchanged.

local filters = require "util.filters";
local st = require "util.stanza";
local dt = require "util.datetime";

local xmlns_sasl2 = "urn:xmpp:sasl:2";
local xmlns_fast = "urn:xmpp:fast:0";

-- 1. connection methods
local function lua_socket(conn)
	local sock = conn.socket and conn:socket() or conn.conn;
	return sock;
end

local function patch_connection(conn)
	local mt = conn and getmetatable(conn);
	local iface = mt and mt.__index;
	if type(iface) ~= "table" or iface.ssl_info then return; end
	function iface:ssl_info()
		local sock = lua_socket(self);
		if sock and sock.info then return sock:info(); end
	end
	function iface:ssl_peerfinished()
		local sock = lua_socket(self);
		if sock and sock.getpeerfinished then return sock:getpeerfinished(); end
	end
	function iface:ssl_exportkeyingmaterial(label, len, context)
		local sock = lua_socket(self);
		if sock and sock.exportkeyingmaterial then
			return sock:exportkeyingmaterial(label, len, context);
		end
	end
	module:log("debug", "added ssl_info/ssl_peerfinished/ssl_exportkeyingmaterial to connections");
end

-- 2. the stream header's 'from'
local function remember_from(session)
	if session.type ~= "c2s_unauthed" then return; end
	filters.add_filter(session, "bytes/in", function (data)
		if session.type == "c2s_unauthed" and type(data) == "string" then
			local header = data:match("<stream:stream[^>]*>");
			local from = header and (header:match("%sfrom='([^']*)'") or header:match('%sfrom="([^"]*)"'));
			if from then session.backport_stream_from = from; end
		end
		return data;
	end, 1000);
end
filters.add_filter_hook(remember_from);
function module.unload()
	filters.remove_filter_hook(remember_from);
end

module:hook("stream-features", function (event)
	local origin = event.origin;
	if origin.conn then patch_connection(origin.conn); end
	if not event.stream then
		event.stream = { from = origin.backport_stream_from; to = origin.host };
	end
end, 1000);

-- 3. datetime of a float
if not dt.backport_floored then
	local datetime = dt.datetime;
	dt.datetime = function (t)
		return datetime(t and math.floor(t));
	end
	dt.backport_floored = true;
end

-- 4. get_child_attr
if not st.stanza_mt.get_child_attr then
	function st.stanza_mt:get_child_attr(name, xmlns, attr)
		local child = self:get_child(name, xmlns);
		if child then return child.attr[attr]; end
	end
end

-- 5. tls-exporter for FAST on TLS 1.3 (after mod_sasl2_fast's own
-- <authenticate/> hook at 100, before mod_sasl2 processes it at 0)
module:hook_tag(xmlns_sasl2, "authenticate", function (session, auth)
	local handler = session.sasl_handler;
	if not (auth:get_child("fast", xmlns_fast) and handler and handler.fast and session.conn) then
		return;
	end
	local info = session.conn:ssl_info();
	if not (info and info.protocol == "TLSv1.3") then return; end
	local conn = session.conn;
	local cb = {};
	for k, v in pairs(handler.profile.cb or {}) do cb[k] = v; end
	cb["tls-exporter"] = function ()
		return conn:ssl_exportkeyingmaterial("EXPORTER-Channel-Binding", 32, "");
	end;
	handler.profile.cb = cb;
end, 50);
