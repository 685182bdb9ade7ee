-- mod_bench_s2s_routes: outgoing s2s for the domains listed in the global option
-- bench_s2s_routes goes to a fixed loopback address and port, without any DNS lookup,
-- so that bench/s2s/run.sh can federate several servers on 127.0.0.1 on ports of its own.
--
--   bench_s2s_routes = { ["xa.localhost"] = "127.0.0.1:26269"; ... }
--
-- How: mod_s2s asks net.resolvers.service.new(domain, "xmpp-server", ...) for the targets of
-- a new outgoing stream (STARTTLS), chained after "xmpps-server" (Direct TLS) when it has a
-- TLS context. For a routed domain the first yields the one configured target and the second
-- none (net.resolvers.manual: a fixed list). Any other domain is resolved as usual.
-- Loaded as a global module (modules_enabled in the global section); wrapping the resolver
-- constructor once, however many hosts load it, and restoring it on unload.
module:set_global();

local manual = require "net.resolvers.manual";
local service = require "net.resolvers.service";

local routes = {};
for domain, target in pairs(module:get_option("bench_s2s_routes", {})) do
	local ip, port = tostring(target):match("^(%d+%.%d+%.%d+%.%d+):(%d+)$");
	port = tonumber(port);
	if not ip or not port or port < 1 or port > 65535 then
		error(("bench_s2s_routes[%q] = %q: expected a numeric IPv4 address and port such as "
			.. "127.0.0.1:26269"):format(domain, tostring(target)));
	end
	routes[domain] = { ip = ip; port = port };
end

local original = service._bench_s2s_original or service.new;
service._bench_s2s_original = original;

service.new = function (hostname, srv_name, conn_type, extra)
	local route = routes[hostname];
	if not route then
		return original(hostname, srv_name, conn_type, extra);
	end
	if srv_name ~= "xmpp-server" then
		return manual.new({}, conn_type, extra);   -- no Direct TLS target
	end
	module:log("debug", "s2s to %s: fixed route %s:%d", hostname, route.ip, route.port);
	return manual.new({ { conn_type .. "4", route.ip, route.port, extra } }, conn_type, extra);
end

function module.unload()
	service.new = original;
	service._bench_s2s_original = nil;
end
