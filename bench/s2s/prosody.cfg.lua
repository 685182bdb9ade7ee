-- Prosody 0.12 (Debian 12) for the federation benchmark (bench/s2s/run.sh): one instance
-- serves its domains, takes clients on a c2s port and other servers on an s2s port, and
-- reaches the other servers of the run through fixed loopback routes (plugins/
-- mod_bench_s2s_routes.lua: no DNS). Loopback only, no systemd. run.sh exports (Prosody
-- reads ENV_<NAME> as os.getenv("<NAME>")):
--   BENCH_PROSODY_DIR   state directory (data, pid, log, admin socket)             required
--   BENCH_PROSODY_PORT  c2s STARTTLS port                                           required
--   BENCH_S2S_PORT      s2s port (STARTTLS)                                         required
--   BENCH_CERT / BENCH_KEY  PEM certificate and key, valid for every BENCH_DOMAIN   required
--   BENCH_DOMAIN        the virtual hosts, separated by spaces                      required
--   BENCH_S2S_ROUTES    "domain=ip:port domain=ip:port ...": where the other servers are
--   BENCH_CA            a CA file: peers' certificates are verified against it and
--                       SASL EXTERNAL is used both ways (XEP-0178); empty: self-signed
--                       certificates, dialback (XEP-0220)
--   BENCH_LOGLEVEL      warn | info | debug                                         default warn
--   BENCH_PLUGINS       the directory of mod_bench_s2s_routes.lua (bench/s2s/plugins) required
--
-- The module set is the federation minimum on top of bench/prosody/prosody.cfg.lua's (login,
-- roster, one-to-one chat, offline storage): s2s with TLS and dialback. mod_s2s_bidi
-- (XEP-0288, autoloaded by 0.12) is disabled: xedge opens one stream per direction, and so
-- does every Prosody here, so that the pairs compared carry the same two streams.
local dir    = assert(ENV_BENCH_PROSODY_DIR, "BENCH_PROSODY_DIR is not set")
local port   = assert(tonumber(ENV_BENCH_PROSODY_PORT), "BENCH_PROSODY_PORT is not set")
local s2s    = assert(tonumber(ENV_BENCH_S2S_PORT), "BENCH_S2S_PORT is not set")
local cert   = assert(ENV_BENCH_CERT, "BENCH_CERT is not set")
local key    = assert(ENV_BENCH_KEY, "BENCH_KEY is not set")
local domain = assert(ENV_BENCH_DOMAIN, "BENCH_DOMAIN is not set")
local ca     = ENV_BENCH_CA ~= "" and ENV_BENCH_CA or nil

run_as_root = true                 -- the harness runs as root; Prosody would otherwise refuse
daemonize = false
pidfile = dir .. "/prosody.pid"
data_path = dir .. "/data"
admin_socket = dir .. "/admin.sock"  -- prosodyctl shell: provisioning (bench/prosody/register.sh)
certificates = dir .. "/certs"     -- empty: the certificate is given explicitly below
plugin_paths = { assert(ENV_BENCH_PLUGINS, "BENCH_PLUGINS is not set") }  -- bench/s2s/plugins
log = {
	{ levels = { min = ENV_BENCH_LOGLEVEL or "warn" }, to = "file", filename = dir .. "/prosody.log" };
	{ levels = { min = "error" }, to = "console" };
}
network_backend = "epoll"
network_settings = {
	nagle = false;        -- TCP_NODELAY, as xedge (see bench/prosody/prosody.cfg.lua)
	tcp_backlog = 4096;
}

interfaces = { "127.0.0.1" }
local_interfaces = { "127.0.0.1" }
c2s_ports = { port }
c2s_direct_tls_ports = {}
s2s_ports = { s2s }
s2s_direct_tls_ports = {}
component_ports = {}
http_ports = {}
https_ports = {}

modules_enabled = {
	"roster"; "saslauth"; "tls"; "dialback"; "disco"; "ping";
	"admin_shell";                 -- prosodyctl shell (provisioning), Unix socket only
	"bench_s2s_routes";            -- plugins/: the other servers' s2s ports, no DNS
}
modules_disabled = { "s2s_bidi" }

local routes = {}   -- (the config's globals can be set, not read back)
for d, target in (ENV_BENCH_S2S_ROUTES or ""):gmatch("([^%s=]+)=(%S+)") do
	routes[d] = target
end
bench_s2s_routes = routes

authentication = "internal_hashed" -- stored SCRAM-SHA-1 keys
default_iteration_count = 4096     -- as xedgectl
storage = "internal"
c2s_require_encryption = true
allow_unencrypted_plain_auth = false
c2s_stanza_size_limit = 262144
-- mod_limits is not loaded: no rate limiting of clients or of servers.

s2s_require_encryption = true      -- STARTTLS on every s2s stream (xedge requires it too)
s2s_secure_auth = ca ~= nil        -- with the test CA: only peers whose certificate verifies
s2s_timeout = 30                   -- connect and authenticate (xedge: s2s.connect_timeout 30)
dialback_secret = "bench-s2s-dialback-secret-" .. domain:match("%S+")

ssl = {
	certificate = cert;
	key = key;
	protocol = "tlsv1_2+";
	cafile = ca;
}

for vhost in domain:gmatch("%S+") do
	VirtualHost(vhost)
		ssl = { certificate = cert; key = key; protocol = "tlsv1_2+"; cafile = ca }
end
