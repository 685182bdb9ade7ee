/* Unit tests for core/config.c: defaults, values, and errors that name the bad line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/config.h"
#include "core/log.h"

static char path[64];

static int load(const char *yaml, struct config *cfg, char *err, size_t errlen)
{
	FILE *f;

	strcpy(path, "/tmp/xedge-test-config-XXXXXX");
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	f = fdopen(fd, "w");
	fputs(yaml, f);
	fclose(f);
	int r = config_load(path, cfg, err, errlen);
	unlink(path);
	return r;
}

#define DB_DOMAIN "domains: [{name: example.org, cert: /etc/c.pem, key: /etc/k.pem}]\n"

/* session_server.database: a file relative to the configuration's folder,
 * or a PostgreSQL URI taken as it is (sm/store.h). */
static void test_database_path_or_uri(void **state)
{
	static const char *const uris[] = {
		"postgresql://xedge:pw@db.example:5432/xedge?sslmode=require",
		"postgres://db.example/xedge",
	};
	struct config cfg;
	char err[512], yaml[256];

	assert_int_equal(load(DB_DOMAIN "session_server: {database: x.db}\n", &cfg, err,
			      sizeof(err)), 0);
	assert_string_equal(cfg.sm.database, "/tmp/x.db");
	config_free(&cfg);
	for (size_t i = 0; i < sizeof(uris) / sizeof(uris[0]); i++) {
		snprintf(yaml, sizeof(yaml), DB_DOMAIN "session_server: {database: '%s'}\n", uris[i]);
		assert_int_equal(load(yaml, &cfg, err, sizeof(err)), 0);
		assert_string_equal(cfg.sm.database, uris[i]);
		config_free(&cfg);
	}
}

static void test_full(void **state)
{
	struct config cfg;
	char err[512];
	const char *yaml =
		"workers: 3\n"
		"listeners:\n"
		"  - type: c2s\n"
		"    address: 127.0.0.1:5222\n"
		"  - type: c2s_tls\n"
		"    address: '[::1]:5223'\n"
		"domains:\n"
		"  - name: Example.ORG\n"
		"    cert: /etc/c.pem\n"
		"    key: k.pem\n"
		"tls: {require: false}\n"
		"limits: {max_stanza_bytes: 65536, max_auth_failures: 5}\n"
		"timeouts: {idle: 120}\n"
		"backend: {address: 'unix:/run/sm.sock', secret: s3}\n"
		"session_server: {listen: '127.0.0.1:5270', admin_socket: a.sock, version_os: false,"
		" mam_retention_days: 7, mam_default: always}\n"
		"register: {enabled: true, rate: 10}\n"
		"legacy_auth: {enabled: yes}\n";

	assert_int_equal(load(yaml, &cfg, err, sizeof(err)), 0);
	assert_int_equal(cfg.workers, 3);
	assert_int_equal(cfg.nlisteners, 2);
	assert_int_equal(cfg.listeners[0].kind, LISTEN_C2S);
	assert_string_equal(cfg.listeners[1].host, "::1");
	assert_int_equal(cfg.listeners[1].port, 5223);
	assert_int_equal(cfg.listeners[1].kind, LISTEN_C2S_TLS);
	assert_string_equal(cfg.domains[0].name, "example.org");
	assert_string_equal(cfg.domains[0].cert, "/etc/c.pem");
	assert_string_equal(cfg.domains[0].key, "/tmp/k.pem"); /* relative to the file */
	assert_false(cfg.require_tls);
	assert_int_equal(cfg.limits.max_stanza_bytes, 65536);
	assert_int_equal(cfg.limits.max_auth_failures, 5);
	assert_int_equal(cfg.limits.max_depth, 32); /* default kept */
	assert_int_equal(cfg.timeouts.idle, 120);
	assert_int_equal(cfg.timeouts.auth, 30);
	assert_string_equal(cfg.backend_address, "unix:/run/sm.sock");
	assert_string_equal(cfg.sm.listen, "127.0.0.1:5270");   /* not a path */
	assert_string_equal(cfg.sm.admin_socket, "/tmp/a.sock");
	assert_false(cfg.sm.version_os);
	assert_int_equal(cfg.sm.mam_retention_days, 7);
	assert_int_equal(cfg.sm.mam_default, 2);
	assert_true(cfg.reg.enabled);
	assert_int_equal(cfg.reg.rate, 10);
	assert_true(cfg.legacy_auth);
	config_free(&cfg);

	/* Defaults: both off, three accounts per address per minute. */
	assert_int_equal(load("domains:\n  - name: a.org\n", &cfg, err, sizeof(err)), 0);
	assert_false(cfg.reg.enabled);
	assert_int_equal(cfg.reg.rate, 3);
	assert_false(cfg.legacy_auth);
	config_free(&cfg);
}

/* Each bad file must be refused with the line of the offending node. */
static void expect_error(const char *yaml, const char *line_tag, const char *words)
{
	struct config cfg;
	char err[512];

	assert_int_equal(load(yaml, &cfg, err, sizeof(err)), -1);
	if (!strstr(err, line_tag) || !strstr(err, words))
		fail_msg("error '%s' lacks '%s' or '%s'", err, line_tag, words);
	config_free(&cfg);
}

static void test_errors(void **state)
{
	expect_error("domains:\n  - name: a.org\nlisteners:\n  - type: c2s\n    address: 1.2.3.4\n",
		     ":5: ", "listener address");
	expect_error("domains:\n  - name: a.org\nlimits:\n  max_depth: -4\n", ":4: ", "max_depth");
	expect_error("domains:\n  - name: a.org\nlimits:\n  max_dpeth: 4\n", ":4: ", "unknown key 'max_dpeth'");
	expect_error("domains:\n  - name: a.org\nsession_server:\n  mam_default: often\n", ":4: ",
		     "expected always, roster or never");
	expect_error("domains:\n  - name: a.org\nsession_server:\n  mam_retention_days: -1\n",
		     ":4: ", "mam_retention_days");
	expect_error("domains:\n  - name: 'bad domain'\n", ":2: ", "not a valid XMPP domain");
	expect_error("workers: 1\n", ":1: ", "no 'domains'");
	expect_error("domains: [ {name: a.org\n", ":", "YAML syntax error");
	expect_error("domains:\n  - name: a.org\ntls:\n  require: maybe\n", ":4: ", "true or false");
	expect_error("domains:\n  - name: a.org\n    cert: c.pem\n", ":2: ", "both 'cert' and 'key'");
	expect_error("domains:\n  - name: a.org\n  - name: A.org\n", ":3: ", "listed twice");
	expect_error("domains:\n  - name: a.org\nbackend:\n  upstream: 127.0.0.1:5322\n  upstream_tls: true\n",
		     ":5: ", "needs tls.ca_file");
	expect_error("domains:\n  - name: a.org\ntls:\n  ca_file: /nonexistent/ca.pem\n", ":4: ",
		     "tls.ca_file: cannot read");
	expect_error("domains:\n  - name: a.org\nbackend:\n  upstream_tls: on\n", ":4: ", "upstream mode only");
	expect_error("domains:\n  - name: a.org\nregister:\n  enabled: perhaps\n", ":4: ",
		     "register.enabled: expected true or false");
	expect_error("domains:\n  - name: a.org\nregister:\n  rate: 0\n", ":4: ", "register.rate");
	expect_error("domains:\n  - name: a.org\nregister:\n  rat: 5\n", ":4: ", "unknown key 'rat'");
	expect_error("domains:\n  - name: a.org\nlegacy_auth:\n  enable: true\n", ":4: ",
		     "unknown key 'enable'");
	expect_error("domains:\n  - name: a.org\nbackend:\n  upstream: 127.0.0.1:5322\nlegacy_auth:\n"
		     "  enabled: true\n", ":6: ", "legacy_auth.enabled applies to the native backend only");
	expect_error("domains:\n  - name: a.org\nregister: {enabled: true}\nbackend:\n"
		     "  upstream: 127.0.0.1:5322\n", ":3: ", "register.enabled applies to the native");
	expect_error("domains:\n  - name: a.org\nlisteners:\n  - type: s2s\n    address: 127.0.0.1:5269\n"
		     "backend:\n  upstream: 127.0.0.1:5322\n", ":4: ", "s2s listeners need the native");
	expect_error("domains:\n  - name: a.org\nlisteners:\n  - type: component\n"
		     "    address: 127.0.0.1:5347\n", ":4: ", "needs a 'components' list");
	expect_error("domains:\n  - name: a.org\ns2s:\n  dialback: false\n", ":4: ",
		     "no listener of type s2s");
	expect_error("domains:\n  - name: a.org\nlisteners:\n  - type: s2s\n    address: 127.0.0.1:5269\n"
		     "s2s:\n  dialback: false\n", ":7: ", "set tls.ca_file");
	expect_error("domains:\n  - name: a.org\ns2s:\n  routes:\n    b.org: b.org:5269\n", ":5: ",
		     "s2s.routes.b.org: expected a numeric address");
	expect_error("domains:\n  - name: a.org\nbackend:\n  shards: [\"127.0.0.1:5270\", \"127.0.0.1:5270\"]\n",
		     ":4: ", "listed twice");
	expect_error("domains:\n  - name: a.org\nbackend:\n  address: 127.0.0.1:5270\n  shards: [\"127.0.0.1:5271\"]\n",
		     ":5: ", "replaces backend.address");
	expect_error("domains:\n  - name: a.org\nshards: 65\n", ":3: ", "shards");
	expect_error("domains:\n  - name: a.org\nstream_management:\n  peers:\n    'e.1': 10.0.0.2:5222\n",
		     ":5: ", "not an edge_id");
	expect_error("domains:\n  - name: a.org\nstream_management:\n  peers:\n    e1: '<x>'\n",
		     ":5: ", "host[:port]");
	expect_error("domains:\n  - name: a.org\ns2s:\n  dialback_secret: short\n", ":4: ",
		     "at least 16 characters");
	expect_error("domains:\n  - name: a.org\ncomponents:\n  - name: irc.a.org\n", ":4: ",
		     "needs both 'name' and 'secret'");
	expect_error("domains:\n  - name: a.org\ncomponents:\n  - name: a.org\n    secret: x\n", ":4: ",
		     "is one of 'domains'");
	expect_error("domains:\n  - name: a.org\nservices:\n  muc:\n    domain: A.org\n", ":5: ",
		     "needs a domain of its own");
	expect_error("domains:\n  - name: a.org\nservices:\n  muc:\n    domain: 'x y'\n", ":5: ",
		     "not a valid XMPP domain");
	expect_error("domains:\n  - name: a.org\nservices:\n  muc:\n    history: 5000\n", ":5: ",
		     "services.muc.history");
	expect_error("domains:\n  - name: a.org\nservices:\n  chat: {}\n", ":4: ",
		     "unknown key 'chat' (known: muc, pubsub, upload)");
	expect_error("listeners:\n  - type: wss\n    address: 127.0.0.1:5443\ndomains:\n  - name: a.org\n"
		     "services:\n  upload:\n    domain: up.a.org\n", ":8: ", "needs 'dir'");
	expect_error("domains:\n  - name: a.org\nservices:\n  upload:\n    dir: /x\n", ":5: ",
		     "needs 'domain'");
	expect_error("listeners:\n  - type: c2s\n    address: 127.0.0.1:5222\ndomains:\n  - name: a.org\n"
		     "services:\n  upload:\n    domain: up.a.org\n    dir: /x\n", ":8: ",
		     "add a listener of type wss");
	expect_error("domains:\n  - name: a.org\nservices:\n  upload:\n    expire: 3w\n", ":5: ",
		     "services.upload.expire: expected a whole number with an optional unit (s, m, h, d)");
	expect_error("domains:\n  - name: a.org\nservices:\n  upload:\n    max_size: 10X\n", ":5: ",
		     "(k, M, G)");
	expect_error("domains:\n  - name: a.org\nservices:\n  upload:\n    url: ftp://x\n", ":5: ",
		     "services.upload.url");
	expect_error("domains:\n  - name: a.org\nservices:\n  upload:\n    slot_ttl: 5\n", ":5: ",
		     "from 10 seconds to one day");
	expect_error("domains:\n  - name: a.org\nservices:\n  pubsub:\n    domain: a.org\n", ":5: ",
		     "needs a domain of its own");
}

/* Shards: the embedded count, backend.shards (names kept as written), and
 * backend.address as a list of one. */
/* services.upload: units, the default URL from the wss listener. */
static void test_upload(void **state)
{
	struct config cfg;
	char err[512];

	assert_int_equal(load("listeners:\n  - type: wss\n    address: 127.0.0.1:5443\ndomains:\n  - name: a.org\n"
			      "services:\n  upload:\n    domain: upload.a.org\n    dir: /var/x\n    max_size: 5M\n"
			      "    expire: 7d\n    quota: 1G\n", &cfg, err, sizeof(err)), 0);
	assert_string_equal(cfg.upload.domain, "upload.a.org");
	assert_string_equal(cfg.upload.url, "https://a.org:5443");
	assert_true(cfg.upload.max_size == 5u << 20);
	assert_int_equal(cfg.upload.expire, 7 * 86400);
	assert_true(cfg.upload.quota == 1ull << 30);
	assert_int_equal(cfg.upload.slot_ttl, 300);
	config_free(&cfg);
	assert_int_equal(load("listeners:\n  - type: ws\n    address: 127.0.0.1:5280\ndomains:\n  - name: a.org\n"
			      "services:\n  upload:\n    domain: upload.a.org\n    dir: /var/x\n"
			      "    url: https://files.a.org/\n    expire: 0\n", &cfg, err, sizeof(err)), 0);
	assert_string_equal(cfg.upload.url, "https://files.a.org");
	assert_int_equal(cfg.upload.expire, 0);
	assert_true(cfg.upload.max_size == 10u << 20);
	config_free(&cfg);
	/* xedge-sm's file (no listeners): the domain and the limit it advertises are enough */
	assert_int_equal(load("domains:\n  - name: a.org\nservices:\n  upload:\n    domain: upload.a.org\n"
			      "    max_size: 1M\n", &cfg, err, sizeof(err)), 0);
	assert_true(cfg.upload.max_size == 1u << 20 && !cfg.upload.dir && !cfg.upload.url);
	config_free(&cfg);
}

static void test_shards(void **state)
{
	struct config c;
	char err[512];

	assert_int_equal(load("domains:\n  - name: a.org\nshards: 4\n", &c, err, sizeof(err)), 0);
	assert_int_equal(c.shards, 4);
	assert_int_equal(c.nbackend_shards, 0);
	assert_null(c.backend_address);
	config_free(&c);
	assert_int_equal(load("domains:\n  - name: a.org\nbackend:\n  shards:\n    - \"10.0.0.1:5270\"\n"
			      "    - \"10.0.0.2:5270\"\nsession_server:\n  shard: \"10.0.0.2:5270\"\n", &c, err,
			      sizeof(err)), 0);
	assert_int_equal(c.nbackend_shards, 2);
	assert_string_equal(c.backend_shard_names[1], "10.0.0.2:5270");
	assert_string_equal(c.backend_address, "10.0.0.1:5270");    /* external */
	assert_string_equal(c.sm.shard, "10.0.0.2:5270");
	config_free(&c);
	assert_int_equal(load("domains:\n  - name: a.org\nbackend:\n  address: 10.0.0.1:5270\n", &c, err,
			      sizeof(err)), 0);
	assert_int_equal(c.nbackend_shards, 1);
	assert_string_equal(c.backend_shards[0], "10.0.0.1:5270");
	config_free(&c);
}

/* admins: bare JIDs kept canonical; a malformed one, a full JID, a domain
 * alone or a repeated one is refused on its line; a reload cannot change them. */
static void test_admins(void **state)
{
	struct config a, b;
	char err[512];

	assert_int_equal(load("domains:\n  - name: a.org\nadmins:\n  - Boss@A.org\n  - ops@b.org\n",
			      &a, err, sizeof(err)), 0);
	assert_int_equal(a.nadmins, 2);
	assert_string_equal(a.admins[0], "boss@a.org");
	assert_string_equal(a.admins[1], "ops@b.org");
	assert_int_equal(load("domains:\n  - name: a.org\nadmins: [boss@a.org]\n", &b, err,
			      sizeof(err)), 0);
	assert_string_equal(config_reload_blocker(&a, &b), "admins");
	config_free(&b);
	assert_int_equal(load("domains:\n  - name: a.org\nadmins: [boss@a.org, ops@b.org]\n", &b,
			      err, sizeof(err)), 0);
	assert_null(config_reload_blocker(&a, &b));
	config_adopt(&b, &a);
	config_free(&a);
	assert_string_equal(b.admins[1], "ops@b.org");
	config_free(&b);
	expect_error("domains:\n  - name: a.org\nadmins:\n  - boss@a.org\n  - not a jid@@\n", ":5: ",
		     "admins: 'not a jid@@' is not a bare JID");
	expect_error("domains:\n  - name: a.org\nadmins:\n  - boss@a.org/phone\n", ":4: ",
		     "is not a bare JID");
	expect_error("domains:\n  - name: a.org\nadmins:\n  - a.org\n", ":4: ", "is not a bare JID");
	expect_error("domains:\n  - name: a.org\nadmins:\n  - b@a.org\n  - B@a.org\n", ":5: ",
		     "admins: b@a.org is listed twice");
	expect_error("domains:\n  - name: a.org\nadmins: boss@a.org\n", ":3: ", "admins: expected a list");
}

/* Shard membership: names in backend addresses, backend.discover, and what
 * a reload may change (a list of external shards, not the kind of backend);
 * a reload's configuration keeps its own shard strings, freed with it even
 * when lent (ASan checks the frees). */
static void test_members(void **state)
{
	struct config a, b;
	char err[512];

	assert_int_equal(load("domains:\n  - name: a.org\nbackend:\n  shards:\n    - \"sm-0.sm.ns.svc:5290\"\n"
			      "    - \"[fd00::1]:5290\"\n    - \"unix:/run/sm.sock\"\n", &a, err, sizeof(err)), 0);
	assert_int_equal(a.nbackend_shards, 3);
	assert_string_equal(a.backend_shard_names[0], "sm-0.sm.ns.svc:5290");
	assert_null(a.backend_discover_srv);
	assert_int_equal(load("domains:\n  - name: a.org\nbackend:\n  shards:\n    - \"sm-1.sm.ns.svc:5290\"\n",
			      &b, err, sizeof(err)), 0);
	assert_null(config_reload_blocker(&a, &b));      /* another list: applied (core/members.c) */
	config_adopt(&b, &a);
	config_free(&a);                                 /* lent: frees its own list */
	assert_string_equal(b.backend_shard_names[0], "sm-1.sm.ns.svc:5290");
	assert_int_equal(load("domains:\n  - name: a.org\n", &a, err, sizeof(err)), 0);
	assert_string_equal(config_reload_blocker(&a, &b), "backend.shards");   /* embedded -> list */
	config_free(&a);

	assert_int_equal(load("domains:\n  - name: a.org\nbackend:\n  discover:\n"
			      "    srv: _sm-link._tcp.xedge-sm.default.svc.cluster.local\n", &a, err, sizeof(err)), 0);
	assert_string_equal(a.backend_discover_srv, "_sm-link._tcp.xedge-sm.default.svc.cluster.local");
	assert_int_equal(a.backend_discover_interval, 10);
	assert_int_equal(a.nbackend_shards, 0);
	assert_non_null(a.backend_address);              /* external session servers */
	assert_string_equal(config_reload_blocker(&a, &b), "backend.shards");   /* discover -> list */
	config_free(&b);
	assert_int_equal(load("domains:\n  - name: a.org\nbackend:\n  discover:\n    srv: _x._tcp.other\n"
			      "    interval: 3\n", &b, err, sizeof(err)), 0);
	assert_int_equal(b.backend_discover_interval, 3);
	assert_string_equal(config_reload_blocker(&a, &b), "backend.discover");
	config_free(&a);
	config_free(&b);

	expect_error("domains:\n  - name: a.org\nbackend:\n  address: \"sm:0\"\n", ":4: ", "backend.address");
	expect_error("domains:\n  - name: a.org\nbackend:\n  shards:\n    - \"a:1\"\n    - \"b b:1\"\n", ":6: ",
		     "expected host:port");
	expect_error("domains:\n  - name: a.org\nbackend:\n  address: \"::1:5270\"\n", ":4: ", "[IPv6]");
	expect_error("domains:\n  - name: a.org\nbackend:\n  discover:\n    srv: \"a..b\"\n", ":5: ",
		     "backend.discover.srv");
	expect_error("domains:\n  - name: a.org\nbackend:\n  discover:\n    srv: a.b\n    interval: 3601\n",
		     ":6: ", "backend.discover.interval");
	expect_error("domains:\n  - name: a.org\nbackend:\n  discover:\n    srv: a.b\n    ttl: 3\n", ":6: ",
		     "unknown key 'ttl'");
	expect_error("domains:\n  - name: a.org\nbackend:\n  address: \"a:1\"\n  discover:\n    srv: a.b\n",
		     ":6: ", "excludes backend.shards, backend.address");
}

/* XEP-0198: defaults, values, bounds, the edge id's alphabet, and a reload
 * that changes the edge id (resumption ids carry it) needing a restart. */
static void test_stream_management(void **state)
{
	struct config a, b;
	char err[512];

	assert_int_equal(load("domains:\n  - name: a.org\n", &a, err, sizeof(err)), 0);
	assert_true(a.smacks.enabled);
	assert_int_equal(a.smacks.resume_timeout, 300);
	assert_int_equal(a.smacks.max_unacked, 1u << 20);
	assert_non_null(a.smacks.edge_id);
	assert_true(strlen(a.smacks.edge_id) >= 1 && strlen(a.smacks.edge_id) <= CONFIG_EDGE_ID_MAX);
	assert_null(strchr(a.smacks.edge_id, '.'));
	assert_int_equal(load("domains:\n  - name: a.org\nstream_management:\n  enabled: false\n"
			      "  resume_timeout: 60\n  max_unacked: 65536\n  edge_id: edge-2_b\n", &b, err, sizeof(err)), 0);
	assert_false(b.smacks.enabled);
	assert_int_equal(b.smacks.resume_timeout, 60);
	assert_int_equal(b.smacks.max_unacked, 65536);
	assert_string_equal(b.smacks.edge_id, "edge-2_b");
	assert_string_equal(config_reload_blocker(&a, &b), "stream_management.edge_id");
	config_free(&b);
	assert_int_equal(load("domains:\n  - name: a.org\nstream_management:\n  peers:\n"
			      "    e1: 10.0.0.2:5222\n    e2: '[fd00::2]:5222'\n", &b, err, sizeof(err)), 0);
	assert_int_equal(b.smacks.npeers, 2);
	assert_string_equal(b.smacks.peers[0].edge_id, "e1");
	assert_string_equal(b.smacks.peers[0].addr, "10.0.0.2:5222");
	assert_string_equal(b.smacks.peers[1].addr, "[fd00::2]:5222");
	config_free(&b);
	assert_int_equal(load("domains:\n  - name: a.org\nstream_management:\n  resume_timeout: 0\n"
			      "  max_unacked: 4096\n", &b, err, sizeof(err)), 0);
	free(b.smacks.edge_id);
	b.smacks.edge_id = strdup(a.smacks.edge_id);
	assert_null(config_reload_blocker(&a, &b));   /* the rest applies on reload */
	config_free(&a);
	config_free(&b);

	expect_error("domains:\n  - name: a.org\nstream_management:\n  edge_id: a.b\n", ":4: ",
		     "stream_management.edge_id: expected 1 to 32 letters");
	expect_error("domains:\n  - name: a.org\nstream_management:\n  edge_id: "
		     "abcdefghijabcdefghijabcdefghijabc\n", ":4: ", "stream_management.edge_id");
	expect_error("domains:\n  - name: a.org\nstream_management:\n  max_unacked: 100\n", ":4: ",
		     "stream_management.max_unacked");
	expect_error("domains:\n  - name: a.org\nstream_management:\n  resume_timeout: 86401\n", ":4: ",
		     "stream_management.resume_timeout");
	expect_error("domains:\n  - name: a.org\nstream_management:\n  enabled: sometimes\n", ":4: ",
		     "true or false");
	expect_error("domains:\n  - name: a.org\nstream_management:\n  resume: 5\n", ":4: ",
		     "unknown key 'resume'");
}

static void test_s2s(void **state)
{
	struct config cfg;
	char err[512];
	const char *yaml =
		"listeners:\n"
		"  - type: s2s\n"
		"    address: 0.0.0.0:5269\n"
		"  - type: s2s_tls\n"
		"    address: 0.0.0.0:5270\n"
		"  - type: component\n"
		"    address: 127.0.0.1:5347\n"
		"domains:\n"
		"  - name: a.org\n"
		"s2s:\n"
		"  require_valid_certs: true\n"
		"  idle_timeout: 60\n"
		"  dns_servers: 127.0.0.1:5353\n"
		"  rate_stanzas: 2000\n"
		"  routes:\n"
		"    B.org: 127.0.0.2:5269\n"
		"    c.org: tls://[::1]:5270\n"
		"components:\n"
		"  - name: IRC.a.org\n"
		"    secret: s3cret\n";

	assert_int_equal(load(yaml, &cfg, err, sizeof(err)), 0);
	assert_true(cfg.s2s.enabled);
	assert_true(cfg.s2s.dialback);
	assert_true(cfg.s2s.require_valid_certs);
	assert_int_equal(cfg.s2s.idle_timeout, 60);
	assert_int_equal(cfg.s2s.connect_timeout, 30);
	assert_string_equal(cfg.s2s.dns_servers, "127.0.0.1:5353");
	assert_int_equal(cfg.s2s.rate_stanzas, 2000);
	assert_int_equal(cfg.s2s.rate_bytes, 64u << 20);
	assert_int_equal(cfg.listeners[0].kind, LISTEN_S2S);
	assert_int_equal(cfg.listeners[1].kind, LISTEN_S2S_TLS);
	assert_int_equal(cfg.listeners[2].kind, LISTEN_COMPONENT);
	assert_int_equal(cfg.s2s.nroutes, 2);
	assert_string_equal(cfg.s2s.routes[0].domain, "b.org");
	assert_string_equal(cfg.s2s.routes[0].host, "127.0.0.2");
	assert_int_equal(cfg.s2s.routes[0].port, 5269);
	assert_false(cfg.s2s.routes[0].direct_tls);
	assert_string_equal(cfg.s2s.routes[1].host, "::1");
	assert_true(cfg.s2s.routes[1].direct_tls);
	assert_int_equal(cfg.ncomponents, 1);
	assert_string_equal(cfg.components[0].name, "irc.a.org");
	assert_string_equal(cfg.components[0].secret, "s3cret");
	config_free(&cfg);
}

/* The exact error config_load gives for yaml under the environment set. */
static void expect_exact(const char *yaml, const char *want)
{
	struct config cfg;
	char err[512];

	assert_int_equal(load(yaml, &cfg, err, sizeof(err)), -1);
	assert_string_equal(err, want);
	config_free(&cfg);
}

static void test_env_override(void **state)
{
	struct config cfg;
	char err[512];
	const char *base = "workers: 1\ndomains:\n  - name: a.org\nlimits:\n  max_stanza_bytes: 65536\n";

	/* keys the file has */
	setenv("XEDGE_LIMITS_MAX_STANZA_BYTES", "4096", 1);
	setenv("XEDGE_WORKERS", "7", 1);
	assert_int_equal(load(base, &cfg, err, sizeof(err)), 0);
	assert_int_equal(cfg.limits.max_stanza_bytes, 4096);
	assert_int_equal(cfg.workers, 7);
	config_free(&cfg);
	unsetenv("XEDGE_WORKERS");

	/* keys the file lacks, in sections the file lacks; programs' own and
	 * foreign XEDGE_* names are ignored */
	setenv("XEDGE_LIMITS_MAX_DEPTH", "12", 1);
	setenv("XEDGE_LOG_LEVEL", "warn", 1);
	setenv("XEDGE_S2S_IDLE_TIMEOUT", "77", 1);
	setenv("XEDGE_SESSION_SERVER_DATABASE", "/data/x.db", 1);
	setenv("XEDGE_TIMEOUTS_AUTH", "9", 1);
	setenv("XEDGE_SESSION_SERVER_MAM_DEFAULT", "always", 1);
	setenv("XEDGE_BIN", "build/asan", 1);
	setenv("XEDGE_CONFIG", "/etc/xedge/xedge.yaml", 1);
	assert_int_equal(load(base, &cfg, err, sizeof(err)), 0);
	assert_int_equal(cfg.limits.max_stanza_bytes, 4096);
	assert_int_equal(cfg.limits.max_depth, 12);
	assert_int_equal(cfg.log_level, LOG_WARN);
	assert_int_equal(cfg.s2s.idle_timeout, 77);
	assert_string_equal(cfg.sm.database, "/data/x.db");
	assert_int_equal(cfg.timeouts.auth, 9);
	assert_int_equal(cfg.sm.mam_default, 2);
	config_free(&cfg);
	unsetenv("XEDGE_LIMITS_MAX_DEPTH");
	unsetenv("XEDGE_LOG_LEVEL");
	unsetenv("XEDGE_S2S_IDLE_TIMEOUT");
	unsetenv("XEDGE_SESSION_SERVER_DATABASE");
	unsetenv("XEDGE_TIMEOUTS_AUTH");
	unsetenv("XEDGE_SESSION_SERVER_MAM_DEFAULT");
	unsetenv("XEDGE_BIN");
	unsetenv("XEDGE_CONFIG");

	/* a bad value names the variable, not a line of the file */
	setenv("XEDGE_LIMITS_MAX_STANZA_BYTES", "12", 1);
	expect_exact(base, "XEDGE_LIMITS_MAX_STANZA_BYTES=12: limits.max_stanza_bytes: expected a "
		     "whole number from 1024 to 16777216");
	unsetenv("XEDGE_LIMITS_MAX_STANZA_BYTES");
	setenv("XEDGE_LIMITS_MAX_DEPTH", "abc", 1);
	expect_exact(base, "XEDGE_LIMITS_MAX_DEPTH=abc: limits.max_depth: expected a whole number "
		     "from 2 to 1000");
	unsetenv("XEDGE_LIMITS_MAX_DEPTH");
	setenv("XEDGE_LOG_LEVEL", "loud", 1);
	expect_exact(base, "XEDGE_LOG_LEVEL=loud: log_level: expected debug, info, warn or error");
	unsetenv("XEDGE_LOG_LEVEL");
	setenv("XEDGE_TLS_CA_FILE", "/nonexistent/ca.pem", 1);
	expect_exact(base, "XEDGE_TLS_CA_FILE=/nonexistent/ca.pem: tls.ca_file: cannot read "
		     "/nonexistent/ca.pem: No such file or directory");
	unsetenv("XEDGE_TLS_CA_FILE");

	/* an unknown key of a known section names the variable and the known keys */
	setenv("XEDGE_TIMEOUTS_IDEL", "5", 1);
	expect_exact(base, "XEDGE_TIMEOUTS_IDEL=5: timeouts: unknown key 'idel' (known: handshake, "
		     "auth, idle, slow_reader, session_server; seconds)");
	unsetenv("XEDGE_TIMEOUTS_IDEL");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_full),
		cmocka_unit_test(test_database_path_or_uri),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_s2s),
		cmocka_unit_test(test_stream_management),
		cmocka_unit_test(test_shards),
		cmocka_unit_test(test_upload),
		cmocka_unit_test(test_admins),
		cmocka_unit_test(test_members),
		cmocka_unit_test(test_env_override),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
