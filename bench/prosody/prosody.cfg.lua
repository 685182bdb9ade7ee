-- Prosody 0.12 (Debian 12) for xedge's side-by-side benchmark (bench/compare).
-- Loopback only, no systemd, state in BENCH_PROSODY_DIR. Started by bench/prosody/start.sh,
-- which exports these variables (Prosody reads ENV_<NAME> as os.getenv("<NAME>")):
--   BENCH_PROSODY_DIR   state directory (data, pid, log, admin socket)      required
--   BENCH_PROSODY_PORT  c2s STARTTLS port; Direct TLS is PORT+1             default 24322
--   BENCH_CERT / BENCH_KEY  PEM certificate and key for BENCH_DOMAIN      required
--   BENCH_DOMAIN        the one virtual host                              default localhost
--   BENCH_LOGLEVEL      info | debug | warn                                default warn
--   BENCH_MUC           a group-chat (XEP-0045) component on this domain   default none
--                       (bench/muc: every user may create rooms)
--
-- The module set is the minimum a client login and one-to-one chat need, to compare like with
-- like: xedge (embedded session server) does roster, presence, routing; stream management,
-- carbons, PEP, MAM, CSI are off here (smacks would keep killed clients' sessions for 600 s).
local dir    = assert(ENV_BENCH_PROSODY_DIR, "BENCH_PROSODY_DIR is not set")
local port   = tonumber(ENV_BENCH_PROSODY_PORT or "24322")
local cert   = assert(ENV_BENCH_CERT, "BENCH_CERT is not set")
local key    = assert(ENV_BENCH_KEY, "BENCH_KEY is not set")
local domain = ENV_BENCH_DOMAIN or "localhost"

run_as_root = true                 -- the harness runs as root; Prosody would otherwise refuse
daemonize = false
pidfile = dir .. "/prosody.pid"
data_path = dir .. "/data"
admin_socket = dir .. "/admin.sock"  -- prosodyctl shell (bulk provisioning: register.sh)
certificates = dir .. "/certs"     -- empty: the certificate is given explicitly below
log = {
	{ levels = { min = ENV_BENCH_LOGLEVEL or "warn" }, to = "file", filename = dir .. "/prosody.log" };
	{ levels = { min = "error" }, to = "console" };
}
network_backend = "epoll"          -- the 0.12 default, stated so the document can say so
-- server_epoll keeps Nagle on by default: small writes (a TLS handshake flight, a stanza) then
-- wait for the peer's delayed ACK, ~40 ms per round (measured here: STARTTLS + features took
-- 70 ms). xedge and ejabberd set TCP_NODELAY; so does Prosody with this documented setting.
network_settings = {
	nagle = false;        -- TCP_NODELAY, as xedge and ejabberd
	tcp_backlog = 4096;   -- the listen backlog xedge and ejabberd use here (default 128)
}

interfaces = { "127.0.0.1" }
local_interfaces = { "127.0.0.1" }
c2s_ports = { port }               -- STARTTLS
c2s_direct_tls_ports = { port + 1 }  -- XEP-0368
s2s_ports = {}
component_ports = {}
http_ports = {}
https_ports = {}

modules_enabled = {
	"roster"; "saslauth"; "tls"; "disco"; "ping";
	"register";                    -- XEP-0077, used only by the tsung cross-check's users if asked
	"admin_shell";                 -- prosodyctl shell (provisioning), Unix socket only
}
modules_disabled = { "s2s" }   -- no federation (xedge has none); offline storage stays, as in xedge

authentication = "internal_hashed" -- stored SCRAM-SHA-1 keys; offers SCRAM-SHA-1 and PLAIN
default_iteration_count = 4096     -- the same PBKDF2 count as xedgectl and ejabberd (0.12 default: 10000)
storage = "internal"               -- one file per account under data_path
c2s_require_encryption = true
allow_unencrypted_plain_auth = false
allow_registration = true
min_seconds_between_registrations = 0
registration_throttle_max = nil
c2s_stanza_size_limit = 262144     -- as xedge's limits.max_stanza_bytes
-- mod_limits is not loaded: no rate limiting of clients.

ssl = {
	certificate = cert;
	key = key;
	protocol = "tlsv1_2+";
}

VirtualHost(domain)
	ssl = { certificate = cert; key = key; protocol = "tlsv1_2+" }

-- Group chat for bench/muc only: Prosody's own mod_muc with its defaults (rooms locked until
-- their creator configures them, XEP-0045 §10.1), except that any user may create a room.
if ENV_BENCH_MUC and ENV_BENCH_MUC ~= "" then
	Component(ENV_BENCH_MUC) "muc"
		restrict_room_creation = false
end
