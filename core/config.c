/*
 * config — YAML configuration loader; see config.h.
 *
 * The file is loaded as a libyaml document and walked once.  Every scalar is
 * checked where it is read, and the first problem is reported with the line
 * of the node that caused it ("FILE:LINE: reason"), so an operator can fix a
 * file without guessing.  Unknown keys are errors too: a typo must not
 * silently fall back to a default.
 */
#include "core/config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <yaml.h>

#include "core/log.h"
#include "parser/hostport.h"
#include "parser/jid.h"

struct loader {
	yaml_document_t doc;
	struct config *cfg;
	char dir[PATH_MAX];     /* the config file's directory, for relative paths */
	char *err;
	size_t errlen;
	unsigned long upstream_tls_line;  /* where backend.upstream_tls was set */
	unsigned long native_only_line;   /* where register / legacy_auth was turned on */
	const char *native_only_key;
	unsigned long s2s_line;           /* where the s2s section is */
	unsigned long shards_line;        /* where backend.shards is */
	unsigned long discover_line;      /* where backend.discover is */
	unsigned long upload_line;        /* where services.upload is */
	unsigned long listener_line[CONFIG_MAX_LISTENERS];
	const char *env_name;   /* set while an XEDGE_* variable is applied: errors name it */
	const char *env_value;
};

static int fail(struct loader *L, const yaml_node_t *n, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(struct loader *L, const yaml_node_t *n, const char *fmt, ...)
{
	char why[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	if (L->env_name)
		snprintf(L->err, L->errlen, "%s=%s: %s", L->env_name, L->env_value, why);
	else
		snprintf(L->err, L->errlen, "%s:%lu: %s", L->cfg->path,
			 n ? (unsigned long)n->start_mark.line + 1 : 0UL, why);
	return -1;
}

static const char *scalar(const yaml_node_t *n)
{
	return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

static int get_str(struct loader *L, const yaml_node_t *n, const char *key, char **out)
{
	const char *s = scalar(n);

	if (!s || !*s)
		return fail(L, n, "%s: expected a non-empty string", key);
	free(*out);
	*out = strdup(s);
	return *out ? 0 : fail(L, n, "out of memory");
}

static int get_path(struct loader *L, const yaml_node_t *n, const char *key, char **out)
{
	const char *s = scalar(n);
	char buf[PATH_MAX];

	if (!s || !*s)
		return fail(L, n, "%s: expected a file path", key);
	if (s[0] == '/' || !L->dir[0])
		return get_str(L, n, key, out);
	if ((size_t)snprintf(buf, sizeof(buf), "%s/%s", L->dir, s) >= sizeof(buf))
		return fail(L, n, "%s: path too long", key);
	free(*out);
	*out = strdup(buf);
	return *out ? 0 : fail(L, n, "out of memory");
}

static int parse_uint(const char *s, unsigned long max, unsigned long *out)
{
	char *end;
	unsigned long v;

	if (!s || !*s || *s == '-')
		return -1;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v > max)
		return -1;
	*out = v;
	return 0;
}

static int get_uint(struct loader *L, const yaml_node_t *n, const char *key,
		    unsigned long min, unsigned long max, unsigned long *out)
{
	if (parse_uint(scalar(n), max, out) < 0 || *out < min)
		return fail(L, n, "%s: expected a whole number from %lu to %lu", key, min, max);
	return 0;
}

#define GET_U(L, n, key, min, max, field) do {                       \
	unsigned long v_;                                             \
	if (get_uint(L, n, key, min, max, &v_) < 0)                   \
		return -1;                                            \
	field = v_;                                                   \
} while (0)

static int get_bool(struct loader *L, const yaml_node_t *n, const char *key, bool *out)
{
	const char *s = scalar(n);

	if (s && (!strcmp(s, "true") || !strcmp(s, "yes") || !strcmp(s, "on"))) {
		*out = true;
		return 0;
	}
	if (s && (!strcmp(s, "false") || !strcmp(s, "no") || !strcmp(s, "off"))) {
		*out = false;
		return 0;
	}
	return fail(L, n, "%s: expected true or false", key);
}

/* "host:port" or "[v6]:port" with a numeric host. */
static int split_addr(const char *s, char *host, size_t hostlen, uint16_t *port)
{
	const char *colon;
	size_t hl;
	unsigned long p;
	unsigned char tmp[16];

	if (s[0] == '[') {
		const char *rb = strchr(s, ']');
		if (!rb || rb[1] != ':')
			return -1;
		hl = (size_t)(rb - s - 1);
		colon = rb + 1;
		s++;
	} else {
		colon = strrchr(s, ':');
		if (!colon)
			return -1;
		hl = (size_t)(colon - s);
	}
	if (hl == 0 || hl >= hostlen)
		return -1;
	memcpy(host, s, hl);
	host[hl] = 0;
	if (parse_uint(colon + 1, 65535, &p) < 0 || p == 0)
		return -1;
	if (inet_pton(AF_INET, host, tmp) != 1 && inet_pton(AF_INET6, host, tmp) != 1)
		return -1;
	*port = (uint16_t)p;
	return 0;
}

typedef int (*pair_fn)(struct loader *L, const char *key, yaml_node_t *val, void *arg);

/* Call fn for every key of a mapping node. */
static int each_pair(struct loader *L, yaml_node_t *map, const char *what, pair_fn fn, void *arg)
{
	yaml_node_pair_t *p;

	if (!map || map->type != YAML_MAPPING_NODE)
		return fail(L, map, "%s: expected a mapping (key: value lines)", what);
	for (p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
		yaml_node_t *k = yaml_document_get_node(&L->doc, p->key);
		yaml_node_t *v = yaml_document_get_node(&L->doc, p->value);
		const char *ks = scalar(k);
		if (!ks)
			return fail(L, k, "%s: keys must be plain words", what);
		if (fn(L, ks, v, arg) < 0)
			return -1;
	}
	return 0;
}

static int listener_pair(struct loader *L, const char *key, yaml_node_t *v, void *arg)
{
	struct config_listener *l = arg;
	char host[INET6_ADDRSTRLEN + 1];

	if (!strcmp(key, "type")) {
		const char *s = scalar(v);
		if (s && !strcmp(s, "c2s"))
			l->kind = LISTEN_C2S;
		else if (s && (!strcmp(s, "c2s_tls") || !strcmp(s, "c2s-tls")))
			l->kind = LISTEN_C2S_TLS;
		else if (s && !strcmp(s, "ws"))
			l->kind = LISTEN_WS;
		else if (s && !strcmp(s, "wss"))
			l->kind = LISTEN_WSS;
		else if (s && !strcmp(s, "s2s"))
			l->kind = LISTEN_S2S;
		else if (s && (!strcmp(s, "s2s_tls") || !strcmp(s, "s2s-tls")))
			l->kind = LISTEN_S2S_TLS;
		else if (s && !strcmp(s, "component"))
			l->kind = LISTEN_COMPONENT;
		else
			return fail(L, v, "listener type: expected c2s (STARTTLS), c2s_tls (Direct TLS), "
				    "ws (WebSocket behind a TLS ingress), wss (WebSocket over TLS), s2s "
				    "(federation, STARTTLS), s2s_tls (federation, Direct TLS) or component "
				    "(XEP-0114)");
	} else if (!strcmp(key, "address")) {
		const char *s = scalar(v);
		if (!s || split_addr(s, host, sizeof(host), &l->port) < 0)
			return fail(L, v, "listener address: expected a numeric IP and port such as 127.0.0.1:5222 or [::1]:5222");
		free(l->host);
		l->host = strdup(host);
	} else if (!strcmp(key, "backlog")) {
		GET_U(L, v, "backlog", 1, 65535, l->backlog);
	} else if (!strcmp(key, "proxy_protocol")) {
		return get_bool(L, v, "listener proxy_protocol", &l->proxy_protocol);
	} else if (!strcmp(key, "path")) {
		const char *s = scalar(v);
		if (!s || s[0] != '/' || strlen(s) > 255 || strpbrk(s, " \t\r\n?#"))
			return fail(L, v, "listener path: expected an absolute HTTP path such as /xmpp-websocket");
		return get_str(L, v, "listener path", &l->path);
	} else {
		return fail(L, v, "listener: unknown key '%s' (known: type, address, backlog, "
			    "proxy_protocol, path)", key);
	}
	return 0;
}

/* An XMPP domain name, folded to its canonical form (lowercase, no final dot). */
static int get_domain(struct loader *L, const yaml_node_t *v, const char *key, char **out)
{
	const char *s = scalar(v);
	size_t n = s ? strlen(s) : 0;

	if (!s || !jid_domain_valid(s, n))
		return fail(L, v, "%s: '%s' is not a valid XMPP domain", key, s ? s : "");
	free(*out);
	*out = malloc(n + 1);
	if (!*out)
		return fail(L, v, "out of memory");
	jid_fold(s, n, *out);
	(*out)[n] = 0;
	if (n && (*out)[n - 1] == '.')
		(*out)[n - 1] = 0;
	return 0;
}

static int domain_pair(struct loader *L, const char *key, yaml_node_t *v, void *arg)
{
	struct config_domain *d = arg;

	if (!strcmp(key, "name")) {
		return get_domain(L, v, "domain name", &d->name);
	} else if (!strcmp(key, "cert")) {
		return get_path(L, v, "cert", &d->cert);
	} else if (!strcmp(key, "key")) {
		return get_path(L, v, "key", &d->key);
	} else {
		return fail(L, v, "domain: unknown key '%s' (known: name, cert, key)", key);
	}
	return 0;
}

static int limits_pair(struct loader *L, const char *name, yaml_node_t *v, void *arg)
{
	struct config *c = L->cfg;
	char key[64];   /* the qualified name, for errors */

	snprintf(key, sizeof(key), "limits.%s", name);
	if (!strcmp(name, "max_stanza_bytes"))
		GET_U(L, v, key, 1024, 16u << 20, c->limits.max_stanza_bytes);
	else if (!strcmp(name, "max_depth"))
		GET_U(L, v, key, 2, 1000, c->limits.max_depth);
	else if (!strcmp(name, "max_attrs"))
		GET_U(L, v, key, 4, 10000, c->limits.max_attrs);
	else if (!strcmp(name, "max_name_bytes"))
		GET_U(L, v, key, 16, 65535, c->limits.max_name_bytes);
	else if (!strcmp(name, "max_value_bytes"))
		GET_U(L, v, key, 1024, 16u << 20, c->limits.max_value_bytes);
	else if (!strcmp(name, "max_connections"))
		GET_U(L, v, key, 1, 1000000, c->limits.max_connections);
	else if (!strcmp(name, "max_auth_failures"))
		GET_U(L, v, key, 1, 100, c->limits.max_auth_failures);
	else if (!strcmp(name, "max_connections_per_ip"))
		GET_U(L, v, key, 1, 1000000, c->limits.max_connections_per_ip);
	else if (!strcmp(name, "connection_rate_per_ip"))
		GET_U(L, v, key, 1, 1000000, c->limits.connection_rate_per_ip);
	else if (!strcmp(name, "max_tls_handshakes"))
		GET_U(L, v, key, 1, 1000000, c->limits.max_tls_handshakes);
	else if (!strcmp(name, "max_out_bytes"))
		GET_U(L, v, key, 16384, 64u << 20, c->limits.max_out_bytes);
	else if (!strcmp(name, "rate_bytes"))
		GET_U(L, v, key, 1024, 1u << 30, c->limits.rate_bytes);
	else if (!strcmp(name, "rate_stanzas"))
		GET_U(L, v, key, 1, 1000000, c->limits.rate_stanzas);
	else
		return fail(L, v, "limits: unknown key '%s' (known: max_stanza_bytes, max_depth, "
			    "max_attrs, max_name_bytes, max_value_bytes, max_connections, max_auth_failures, "
			    "max_connections_per_ip, connection_rate_per_ip, max_tls_handshakes, "
			    "max_out_bytes, rate_bytes, rate_stanzas)", name);
	return 0;
}

static int timeouts_pair(struct loader *L, const char *name, yaml_node_t *v, void *arg)
{
	struct config *c = L->cfg;
	char key[64];   /* the qualified name, for errors */

	snprintf(key, sizeof(key), "timeouts.%s", name);
	if (!strcmp(name, "handshake"))
		GET_U(L, v, key, 1, 3600, c->timeouts.handshake);
	else if (!strcmp(name, "auth"))
		GET_U(L, v, key, 1, 3600, c->timeouts.auth);
	else if (!strcmp(name, "idle"))
		GET_U(L, v, key, 1, 86400 * 7, c->timeouts.idle);
	else if (!strcmp(name, "slow_reader"))
		GET_U(L, v, key, 1, 3600, c->timeouts.slow_reader);
	else if (!strcmp(name, "session_server"))
		GET_U(L, v, key, 1, 600, c->timeouts.session_server);
	else
		return fail(L, v, "timeouts: unknown key '%s' (known: handshake, auth, idle, slow_reader, "
			    "session_server; seconds)", name);
	return 0;
}

static int tls_pair(struct loader *L, const char *key, yaml_node_t *v, void *arg)
{
	if (!strcmp(key, "require"))
		return get_bool(L, v, "tls.require", &L->cfg->require_tls);
	if (!strcmp(key, "ca_file")) {
		if (get_path(L, v, "tls.ca_file", &L->cfg->tls_ca_file) < 0)
			return -1;
		if (access(L->cfg->tls_ca_file, R_OK) < 0)
			return fail(L, v, "tls.ca_file: cannot read %s: %s", L->cfg->tls_ca_file, strerror(errno));
		return 0;
	}
	return fail(L, v, "tls: unknown key '%s' (known: require, ca_file)", key);
}

/* Turning on a feature of the native backend: remembered, so that upstream
 * mode can be refused naming this line. */
static int native_only(struct loader *L, const yaml_node_t *v, const char *key, bool *out)
{
	if (get_bool(L, v, key, out) < 0)
		return -1;
	if (*out && !L->native_only_line) {
		L->native_only_line = v->start_mark.line + 1;
		L->native_only_key = key;
	}
	return 0;
}

static int register_pair(struct loader *L, const char *key, yaml_node_t *v, void *arg)
{
	if (!strcmp(key, "enabled"))
		return native_only(L, v, "register.enabled", &L->cfg->reg.enabled);
	if (!strcmp(key, "rate")) {
		GET_U(L, v, "register.rate", 1, 100000, L->cfg->reg.rate);
		return 0;
	}
	return fail(L, v, "register: unknown key '%s' (known: enabled, rate)", key);
}

static int legacy_auth_pair(struct loader *L, const char *key, yaml_node_t *v, void *arg)
{
	if (!strcmp(key, "enabled"))
		return native_only(L, v, "legacy_auth.enabled", &L->cfg->legacy_auth);
	return fail(L, v, "legacy_auth: unknown key '%s' (known: enabled)", key);
}

/* s2s.routes: `domain: ip:port` or `domain: tls://ip:port` */
static int route_pair(struct loader *L, const char *key, yaml_node_t *v, void *arg)
{
	struct config *c = L->cfg;
	struct config_s2s_route *r;
	char host[INET6_ADDRSTRLEN + 1];
	const char *s = scalar(v);
	yaml_node_t kn = { .type = YAML_SCALAR_NODE, .start_mark = v->start_mark };

	if (c->s2s.nroutes >= CONFIG_MAX_S2S_ROUTES)
		return fail(L, v, "s2s.routes: at most %d entries", CONFIG_MAX_S2S_ROUTES);
	r = &c->s2s.routes[c->s2s.nroutes++];
	kn.data.scalar.value = (yaml_char_t *)key;
	kn.data.scalar.length = strlen(key);
	if (get_domain(L, &kn, "s2s.routes", &r->domain) < 0)
		return -1;
	if (s && !strncmp(s, "tls://", 6)) {
		r->direct_tls = true;
		s += 6;
	}
	if (!s || split_addr(s, host, sizeof(host), &r->port) < 0)
		return fail(L, v, "s2s.routes.%s: expected a numeric address and port such as "
			    "192.0.2.7:5269 (tls://192.0.2.7:5270 for Direct TLS)", key);
	r->host = strdup(host);
	return r->host ? 0 : fail(L, v, "out of memory");
}

static int s2s_pair(struct loader *L, const char *key, yaml_node_t *v, void *arg)
{
	struct config *c = L->cfg;

	if (!strcmp(key, "dialback"))
		return get_bool(L, v, "s2s.dialback", &c->s2s.dialback);
	if (!strcmp(key, "require_valid_certs"))
		return get_bool(L, v, "s2s.require_valid_certs", &c->s2s.require_valid_certs);
	if (!strcmp(key, "dialback_secret")) {
		const char *s = scalar(v);
		if (!s || strlen(s) < 16)
			return fail(L, v, "s2s.dialback_secret: at least 16 characters (the same on every "
				    "edge that serves these domains)");
		return get_str(L, v, "s2s.dialback_secret", &c->s2s.dialback_secret);
	}
	if (!strcmp(key, "idle_timeout")) {
		GET_U(L, v, "s2s.idle_timeout", 1, 86400, c->s2s.idle_timeout);
		return 0;
	}
	if (!strcmp(key, "connect_timeout")) {
		GET_U(L, v, "s2s.connect_timeout", 1, 600, c->s2s.connect_timeout);
		return 0;
	}
	if (!strcmp(key, "queue_bytes")) {
		GET_U(L, v, "s2s.queue_bytes", 4096, 1u << 30, c->s2s.queue_bytes);
		return 0;
	}
	if (!strcmp(key, "rate_bytes")) {
		GET_U(L, v, "s2s.rate_bytes", 1024, 1u << 30, c->s2s.rate_bytes);
		return 0;
	}
	if (!strcmp(key, "rate_stanzas")) {
		GET_U(L, v, "s2s.rate_stanzas", 1, 10000000, c->s2s.rate_stanzas);
		return 0;
	}
	if (!strcmp(key, "dns_servers")) {
		const char *s = scalar(v);
		if (!s || !*s || strlen(s) > 512 || strspn(s, "0123456789abcdefABCDEF.:[],") != strlen(s))
			return fail(L, v, "s2s.dns_servers: expected numeric addresses such as "
				    "127.0.0.1:53,[::1]:53");
		return get_str(L, v, "s2s.dns_servers", &c->s2s.dns_servers);
	}
	if (!strcmp(key, "routes"))
		return each_pair(L, v, "s2s.routes", route_pair, NULL);
	return fail(L, v, "s2s: unknown key '%s' (known: dialback, require_valid_certs, "
		    "dialback_secret, idle_timeout, connect_timeout, queue_bytes, rate_bytes, rate_stanzas, "
		    "dns_servers, routes)", key);
}

static int component_pair(struct loader *L, const char *key, yaml_node_t *v, void *arg)
{
	struct config_component *k = arg;

	if (!strcmp(key, "name"))
		return get_domain(L, v, "component name", &k->name);
	if (!strcmp(key, "secret")) {
		const char *s = scalar(v);
		if (!s || !*s)
			return fail(L, v, "component secret: must not be empty");
		return get_str(L, v, "component secret", &k->secret);
	}
	return fail(L, v, "component: unknown key '%s' (known: name, secret)", key);
}

/* An endpoint: "host:port" as given, or "unix:PATH" with PATH resolved
 * like any other path in the file. */
static int get_endpoint(struct loader *L, const yaml_node_t *n, const char *key, char **out)
{
	const char *s = scalar(n);
	char buf[PATH_MAX], host[HOSTPORT_MAX];
	uint16_t port;

	if (s && strncmp(s, "unix:", 5) != 0 && hostport_parse(s, host, sizeof(host), &port) == HOSTPORT_BAD)
		return fail(L, n, "%s: expected host:port (a numeric IP, [IPv6] or a DNS name, port 1-65535) "
			    "or unix:/path, got \"%s\"", key, s);
	if (!s || strncmp(s, "unix:", 5) != 0)
		return get_str(L, n, key, out);
	if (!s[5])
		return fail(L, n, "%s: 'unix:' needs a socket path", key);
	if (s[5] == '/' || !L->dir[0])
		return get_str(L, n, key, out);
	if ((size_t)snprintf(buf, sizeof(buf), "unix:%s/%s", L->dir, s + 5) >= sizeof(buf))
		return fail(L, n, "%s: path too long", key);
	free(*out);
	*out = strdup(buf);
	return *out ? 0 : fail(L, n, "out of memory");
}

static int admin_pair(struct loader *L, const char *key, yaml_node_t *v, void *arg)
{
	char host[INET6_ADDRSTRLEN + 1];
	uint16_t port;
	const char *s = scalar(v);

	if (strcmp(key, "address") != 0)
		return fail(L, v, "admin: unknown key '%s' (known: address)", key);
	if (!s || split_addr(s, host, sizeof(host), &port) < 0)
		return fail(L, v, "admin.address: expected a numeric IP and port, such as 127.0.0.1:5280");
	return get_str(L, v, "admin.address", &L->cfg->admin.address);
}

/* A see-other-host value (RFC 6120 §4.9.3.19): host or [v6] with an optional
 * port; it goes into XML character data, so nothing that needs escaping. */
static bool redirect_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 300)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && !strchr(".-:[]_", s[i]))
			return false;
	return true;
}

static bool redirect_uri_ok(const char *s)
{
	size_t n = strlen(s);

	if ((strncmp(s, "wss://", 6) && strncmp(s, "ws://", 5)) || n > 1000)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] <= ' ' || strchr("<>&'\"", s[i]))
			return false;
	return true;
}

static int drain_pair(struct loader *L, const char *key, yaml_node_t *v, void *arg)
{
	struct config *c = L->cfg;
	const char *s = scalar(v);

	if (!strcmp(key, "redirect")) {
		if (!s || !redirect_ok(s))
			return fail(L, v, "drain.redirect: expected the host[:port] of another edge, such as "
				    "edge2.example.org:5222 or [2001:db8::2]:5222");
		return get_str(L, v, "drain.redirect", &c->drain.redirect);
	}
	if (!strcmp(key, "redirect_uri")) {
		if (!s || !redirect_uri_ok(s))
			return fail(L, v, "drain.redirect_uri: expected a ws:// or wss:// URI without spaces, "
				    "quotes or angle brackets");
		return get_str(L, v, "drain.redirect_uri", &c->drain.redirect_uri);
	}
	if (!strcmp(key, "rate")) {
		GET_U(L, v, "drain.rate", 1, 1000000, c->drain.rate);
		return 0;
	}
	if (!strcmp(key, "grace")) {
		GET_U(L, v, "drain.grace", 0, 86400, c->drain.grace);
		return 0;
	}
	return fail(L, v, "drain: unknown key '%s' (known: redirect, redirect_uri, rate, grace)", key);
}

/* stream_management.edge_id: goes into resumption ids, where '.' separates fields. */
static bool edge_id_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > CONFIG_EDGE_ID_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '_')
			return false;
	return true;
}

/* The host name's first label, reduced to what edge_id_ok() allows ("edge"
 * when nothing is left). */
static char *default_edge_id(void)
{
	char host[256] = "", id[CONFIG_EDGE_ID_MAX + 1];
	size_t n = 0;

	if (gethostname(host, sizeof(host) - 1) < 0)
		host[0] = 0;
	for (size_t i = 0; host[i] && host[i] != '.' && n < CONFIG_EDGE_ID_MAX; i++)
		if (isalnum((unsigned char)host[i]) || host[i] == '-' || host[i] == '_')
			id[n++] = host[i];
	id[n] = 0;
	return strdup(n ? id : "edge");
}

static bool edge_id_ok(const char *s);

/* stream_management.peers: `edge_id: host:port` */
static int peer_pair(struct loader *L, const char *key, yaml_node_t *v, void *arg)
{
	struct config *c = L->cfg;
	const char *s = scalar(v);
	size_t i = c->smacks.npeers;

	if (i >= CONFIG_MAX_PEERS)
		return fail(L, v, "stream_management.peers: at most %d entries", CONFIG_MAX_PEERS);
	if (!edge_id_ok(key))
		return fail(L, v, "stream_management.peers: '%s' is not an edge_id (1 to %d letters, digits, "
			    "'-' or '_')", key, CONFIG_EDGE_ID_MAX);
	if (!s || !redirect_ok(s))
		return fail(L, v, "stream_management.peers.%s: expected the host[:port] clients reach that "
			    "edge at", key);
	c->smacks.peers[i].edge_id = strdup(key);
	c->smacks.peers[i].addr = strdup(s);
	c->smacks.npeers++;
	return c->smacks.peers[i].edge_id && c->smacks.peers[i].addr ? 0 : fail(L, v, "out of memory");
}

static int smacks_pair(struct loader *L, const char *key, yaml_node_t *v, void *arg)
{
	struct config *c = L->cfg;
	const char *s = scalar(v);

	if (!strcmp(key, "enabled"))
		return get_bool(L, v, "stream_management.enabled", &c->smacks.enabled);
	if (!strcmp(key, "resume_timeout")) {
		GET_U(L, v, "stream_management.resume_timeout", 0, 86400, c->smacks.resume_timeout);
		return 0;
	}
	if (!strcmp(key, "max_unacked")) {
		GET_U(L, v, "stream_management.max_unacked", 4096, 1u << 30, c->smacks.max_unacked);
		return 0;
	}
	if (!strcmp(key, "edge_id")) {
		if (!s || !edge_id_ok(s))
			return fail(L, v, "stream_management.edge_id: expected 1 to %d letters, digits, '-' or '_'",
				    CONFIG_EDGE_ID_MAX);
		return get_str(L, v, "stream_management.edge_id", &c->smacks.edge_id);
	}
	if (!strcmp(key, "peers"))
		return each_pair(L, v, "stream_management.peers", peer_pair, NULL);
	return fail(L, v, "stream_management: unknown key '%s' (known: enabled, resume_timeout, max_unacked, "
		    "edge_id, peers)", key);
}

static int seq_each(struct loader *L, yaml_node_t *seq, const char *what, size_t max, size_t *count,
		    int (*one)(struct loader *L, yaml_node_t *item, size_t i));

static int one_shard(struct loader *L, yaml_node_t *item, size_t i)
{
	struct config *c = L->cfg;

	if (get_endpoint(L, item, "backend.shards[]", &c->backend_shards[i]) < 0 ||
	    get_str(L, item, "backend.shards[]", &c->backend_shard_names[i]) < 0)
		return -1;
	for (size_t j = 0; j < i; j++)
		if (!strcmp(c->backend_shard_names[j], c->backend_shard_names[i]))
			return fail(L, item, "backend.shards: %s is listed twice", c->backend_shard_names[i]);
	return 0;
}

static int discover_pair(struct loader *L, const char *key, yaml_node_t *v, void *arg)
{
	struct config *c = L->cfg;
	const char *s = scalar(v);

	if (!strcmp(key, "srv")) {
		if (!s || !hostport_name_ok(s))
			return fail(L, v, "backend.discover.srv: expected a DNS name such as "
				    "_xmpp-sm._tcp.xedge-sm.default.svc.cluster.local");
		return get_str(L, v, "backend.discover.srv", &c->backend_discover_srv);
	}
	if (!strcmp(key, "interval")) {
		GET_U(L, v, "backend.discover.interval", 1, 3600, c->backend_discover_interval);
		return 0;
	}
	return fail(L, v, "backend.discover: unknown key '%s' (known: srv, interval)", key);
}

static int backend_pair(struct loader *L, const char *key, yaml_node_t *v, void *arg)
{
	if (!strcmp(key, "address"))
		return get_endpoint(L, v, "backend.address", &L->cfg->backend_address);
	if (!strcmp(key, "shards")) {
		L->shards_line = v->start_mark.line + 1;
		return seq_each(L, v, "backend.shards", CONFIG_MAX_SHARDS, &L->cfg->nbackend_shards,
				one_shard);
	}
	if (!strcmp(key, "discover")) {
		L->discover_line = v->start_mark.line + 1;
		if (each_pair(L, v, "backend.discover", discover_pair, NULL) < 0)
			return -1;
		if (!L->cfg->backend_discover_srv)
			return fail(L, v, "backend.discover: 'srv' is required (the SRV name whose targets "
				    "are the session servers)");
		return 0;
	}
	if (!strcmp(key, "secret"))
		return get_str(L, v, "backend.secret", &L->cfg->backend_secret);
	if (!strcmp(key, "upstream")) {
		char host[INET6_ADDRSTRLEN + 1];
		uint16_t port;
		const char *s = scalar(v);
		if (!s || split_addr(s, host, sizeof(host), &port) < 0)
			return fail(L, v, "backend.upstream: expected a numeric IP and port of an XMPP server's "
				    "c2s listener, such as 127.0.0.1:5322");
		return get_str(L, v, "backend.upstream", &L->cfg->backend_upstream);
	}
	if (!strcmp(key, "proxy_protocol")) {
		const char *s = scalar(v);
		if (s && (!strcmp(s, "none") || !strcmp(s, "false")))
			L->cfg->upstream_proxy = PROXY_NONE;
		else if (s && !strcmp(s, "v1"))
			L->cfg->upstream_proxy = PROXY_V1;
		else if (s && !strcmp(s, "v2"))
			L->cfg->upstream_proxy = PROXY_V2;
		else
			return fail(L, v, "backend.proxy_protocol: expected none, v1 or v2");
		return 0;
	}
	if (!strcmp(key, "upstream_tls")) {
		L->upstream_tls_line = v->start_mark.line + 1;
		return get_bool(L, v, "backend.upstream_tls", &L->cfg->upstream_tls);
	}
	return fail(L, v, "backend: unknown key '%s' (known: address, shards, discover, secret, upstream, "
		    "proxy_protocol, upstream_tls)", key);
}

static int sm_pair(struct loader *L, const char *key, yaml_node_t *v, void *arg)
{
	struct config *c = L->cfg;

	if (!strcmp(key, "database")) {
		const char *s = scalar(v);

		/* A PostgreSQL connection URI is taken as is (sm/store.h); anything
		 * else is an SQLite file, relative to the configuration's folder. */
		if (s && (!strncmp(s, "postgresql://", 13) || !strncmp(s, "postgres://", 11)))
			return get_str(L, v, "session_server.database", &c->sm.database);
		return get_path(L, v, "session_server.database", &c->sm.database);
	}
	if (!strcmp(key, "admin_socket"))
		return get_path(L, v, "session_server.admin_socket", &c->sm.admin_socket);
	if (!strcmp(key, "listen"))
		return get_endpoint(L, v, "session_server.listen", &c->sm.listen);
	if (!strcmp(key, "secret"))
		return get_str(L, v, "session_server.secret", &c->sm.secret);
	if (!strcmp(key, "shard"))
		return get_str(L, v, "session_server.shard", &c->sm.shard);
	if (!strcmp(key, "version_os"))
		return get_bool(L, v, "session_server.version_os", &c->sm.version_os);
	if (!strcmp(key, "mam_retention_days")) {
		GET_U(L, v, "session_server.mam_retention_days", 0, 36500, c->sm.mam_retention_days);
		return 0;
	}
	if (!strcmp(key, "mam_default")) {
		const char *s = scalar(v);

		for (int i = 0; i < 3; i++)
			if (s && !strcmp(s, (const char *[]){ "never", "roster", "always" }[i])) {
				c->sm.mam_default = i;
				return 0;
			}
		return fail(L, v, "session_server.mam_default: expected always, roster or never");
	}
	return fail(L, v, "session_server: unknown key '%s' (known: database, admin_socket, listen, "
		    "secret, shard, version_os, mam_retention_days, mam_default)", key);
}

static int seq_each(struct loader *L, yaml_node_t *seq, const char *what, size_t max, size_t *count,
		    int (*one)(struct loader *L, yaml_node_t *item, size_t i))
{
	yaml_node_item_t *it;

	if (!seq || seq->type != YAML_SEQUENCE_NODE)
		return fail(L, seq, "%s: expected a list (lines starting with '-')", what);
	for (it = seq->data.sequence.items.start; it < seq->data.sequence.items.top; it++) {
		if (*count >= max)
			return fail(L, seq, "%s: at most %zu entries", what, max);
		if (one(L, yaml_document_get_node(&L->doc, *it), (*count)++) < 0)
			return -1;
	}
	return 0;
}

static int one_listener(struct loader *L, yaml_node_t *item, size_t i)
{
	struct config_listener *l = &L->cfg->listeners[i];

	l->backlog = 4096;
	L->listener_line[i] = item->start_mark.line + 1;
	if (each_pair(L, item, "listener", listener_pair, l) < 0)
		return -1;
	if (!l->kind || !l->host)
		return fail(L, item, "listener: needs both 'type' and 'address'");
	if (l->path && l->kind != LISTEN_WS && l->kind != LISTEN_WSS)
		return fail(L, item, "listener: 'path' applies to ws and wss listeners only");
	if (!l->path && (l->kind == LISTEN_WS || l->kind == LISTEN_WSS) &&
	    !(l->path = strdup("/xmpp-websocket")))
		return fail(L, item, "out of memory");
	return 0;
}

static int one_domain(struct loader *L, yaml_node_t *item, size_t i)
{
	struct config_domain *d = &L->cfg->domains[i];

	if (each_pair(L, item, "domain", domain_pair, d) < 0)
		return -1;
	if (!d->name)
		return fail(L, item, "domain: needs a 'name'");
	if (!d->cert != !d->key)
		return fail(L, item, "domain %s: give both 'cert' and 'key', or neither", d->name);
	for (size_t j = 0; j < i; j++)
		if (!strcmp(L->cfg->domains[j].name, d->name))
			return fail(L, item, "domain %s is listed twice", d->name);
	return 0;
}

static int one_component(struct loader *L, yaml_node_t *item, size_t i)
{
	struct config_component *k = &L->cfg->components[i];

	if (each_pair(L, item, "component", component_pair, k) < 0)
		return -1;
	if (!k->name || !k->secret)
		return fail(L, item, "component: needs both 'name' and 'secret'");
	for (size_t j = 0; j < i; j++)
		if (!strcmp(L->cfg->components[j].name, k->name))
			return fail(L, item, "component %s is listed twice", k->name);
	for (size_t j = 0; j < L->cfg->ndomains; j++)
		if (!strcmp(L->cfg->domains[j].name, k->name))
			return fail(L, item, "component %s: that name is one of 'domains' (served here); "
				    "a component needs a domain of its own", k->name);
	return 0;
}

static int muc_pair(struct loader *L, const char *key, yaml_node_t *v, void *arg)
{
	struct config *c = L->cfg;

	if (!strcmp(key, "domain")) {
		if (get_domain(L, v, "services.muc.domain", &c->sm.muc_domain) < 0)
			return -1;
		for (size_t j = 0; j < c->ndomains; j++)
			if (!strcasecmp(c->domains[j].name, c->sm.muc_domain))
				return fail(L, v, "services.muc.domain: %s is one of 'domains' (its users' "
					    "domain); the group-chat service needs a domain of its own, such "
					    "as conference.%s", c->sm.muc_domain, c->sm.muc_domain);
		return 0;
	}
	if (!strcmp(key, "history")) {
		GET_U(L, v, "services.muc.history", 0, 1000, c->sm.muc_history);
		return 0;
	}
	return fail(L, v, "services.muc: unknown key '%s' (known: domain, history)", key);
}

static int pubsub_pair(struct loader *L, const char *key, yaml_node_t *v, void *arg)
{
	struct config *c = L->cfg;

	if (!strcmp(key, "domain")) {
		if (get_domain(L, v, "services.pubsub.domain", &c->sm.pubsub_domain) < 0)
			return -1;
		for (size_t j = 0; j < c->ndomains; j++)
			if (!strcasecmp(c->domains[j].name, c->sm.pubsub_domain))
				return fail(L, v, "services.pubsub.domain: %s is one of 'domains'; the PubSub "
					    "service needs a domain of its own, such as pubsub.%s",
					    c->sm.pubsub_domain, c->sm.pubsub_domain);
		if (c->sm.muc_domain && !strcmp(c->sm.muc_domain, c->sm.pubsub_domain))
			return fail(L, v, "services.pubsub.domain: %s is the group-chat service's",
				    c->sm.pubsub_domain);
		return 0;
	}
	return fail(L, v, "services.pubsub: unknown key '%s' (known: domain)", key);
}

/* A number with an optional unit: "30d", "12h", "90m", "45s", "300" (seconds),
 * or "10M", "512k", "1G", "1048576" (bytes); units[i] multiplies by mult[i]. */
static int get_scaled(struct loader *L, const yaml_node_t *n, const char *key, const char *units,
		      const uint64_t *mult, uint64_t max, uint64_t *out)
{
	const char *s = scalar(n), *u;
	char *end;
	unsigned long long v;

	if (!s || *s < '0' || *s > '9')
		goto bad;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		goto bad;
	if (*end) {
		if (end[1] || !(u = strchr(units, *end)))
			goto bad;
		if (v > max / mult[u - units])
			goto bad;
		v *= mult[u - units];
	}
	if (v > max)
		goto bad;
	*out = v;
	return 0;
bad:
	return fail(L, n, "%s: expected a whole number with an optional unit (%s)", key,
		    units[0] == 's' ? "s, m, h, d" : "k, M, G");
}

static int get_duration(struct loader *L, const yaml_node_t *n, const char *key, uint32_t *out)
{
	static const uint64_t mult[] = { 1, 60, 3600, 86400 };
	uint64_t v;

	if (get_scaled(L, n, key, "smhd", mult, UINT32_MAX, &v) < 0)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

static int get_bytes(struct loader *L, const yaml_node_t *n, const char *key, uint64_t *out)
{
	static const uint64_t mult[] = { 1024, 1024 * 1024, 1024 * 1024 * 1024 };

	return get_scaled(L, n, key, "kMG", mult, 1ull << 50, out);
}

static int upload_pair(struct loader *L, const char *key, yaml_node_t *v, void *arg)
{
	struct config *c = L->cfg;

	if (!strcmp(key, "domain")) {
		if (get_domain(L, v, "services.upload.domain", &c->upload.domain) < 0)
			return -1;
		for (size_t j = 0; j < c->ndomains; j++)
			if (!strcasecmp(c->domains[j].name, c->upload.domain))
				return fail(L, v, "services.upload.domain: %s is one of 'domains'; the upload "
					    "service needs a domain of its own, such as upload.%s",
					    c->upload.domain, c->upload.domain);
		if ((c->sm.muc_domain && !strcmp(c->sm.muc_domain, c->upload.domain)) ||
		    (c->sm.pubsub_domain && !strcmp(c->sm.pubsub_domain, c->upload.domain)))
			return fail(L, v, "services.upload.domain: %s is another service's", c->upload.domain);
		return 0;
	}
	if (!strcmp(key, "max_size"))
		return get_bytes(L, v, "services.upload.max_size", &c->upload.max_size);
	if (!strcmp(key, "quota"))
		return get_bytes(L, v, "services.upload.quota", &c->upload.quota);
	if (!strcmp(key, "dir"))
		return get_path(L, v, "services.upload.dir", &c->upload.dir);
	if (!strcmp(key, "expire"))
		return get_duration(L, v, "services.upload.expire", &c->upload.expire);
	if (!strcmp(key, "slot_ttl")) {
		if (get_duration(L, v, "services.upload.slot_ttl", &c->upload.slot_ttl) < 0)
			return -1;
		if (c->upload.slot_ttl < 10 || c->upload.slot_ttl > 86400)
			return fail(L, v, "services.upload.slot_ttl: from 10 seconds to one day");
		return 0;
	}
	if (!strcmp(key, "url")) {
		const char *s = scalar(v);
		if (!s || (strncmp(s, "https://", 8) && strncmp(s, "http://", 7)) || strchr(s, '?') ||
		    strchr(s, '\'') || strchr(s, '<') || strchr(s, '&') || strchr(s, ' '))
			return fail(L, v, "services.upload.url: expected an http(s) URL without a query, "
				    "such as https://upload.example.com:5443");
		return get_str(L, v, "services.upload.url", &c->upload.url);
	}
	if (!strcmp(key, "secret")) {
		if (get_str(L, v, "services.upload.secret", &c->upload.secret) < 0)
			return -1;
		if (strlen(c->upload.secret) < 16)
			return fail(L, v, "services.upload.secret: at least 16 characters");
		return 0;
	}
	return fail(L, v, "services.upload: unknown key '%s' (known: domain, max_size, dir, expire, "
		    "quota, url, secret, slot_ttl)", key);
}

static int services_pair(struct loader *L, const char *key, yaml_node_t *v, void *arg)
{
	if (!strcmp(key, "muc"))
		return each_pair(L, v, "services.muc", muc_pair, NULL);
	if (!strcmp(key, "pubsub"))
		return each_pair(L, v, "services.pubsub", pubsub_pair, NULL);
	if (!strcmp(key, "upload")) {
		L->upload_line = v->start_mark.line + 1;
		return each_pair(L, v, "services.upload", upload_pair, NULL);
	}
	return fail(L, v, "services: unknown key '%s' (known: muc, pubsub, upload)", key);
}

/* admins: one bare JID (user@domain, no resource), kept canonical. */
static int one_admin(struct loader *L, yaml_node_t *item, size_t i)
{
	struct config *c = L->cfg;
	const char *s = scalar(item);
	char canon[JID_MAX + 1];
	struct jid_view v;
	int n;

	if (!s || jid_parse(s, strlen(s), &v) < 0 || !v.local_len || v.resource_len ||
	    (n = jid_canon(&v, false, canon, sizeof(canon))) < 0)
		return fail(L, item, "admins: '%s' is not a bare JID (user@domain)", s ? s : "");
	for (size_t j = 0; j < i; j++)
		if (!strcmp(c->admins[j], canon))
			return fail(L, item, "admins: %s is listed twice", canon);
	if (!(c->admins[i] = strdup(canon)))
		return fail(L, item, "out of memory");
	return 0;
}

static int top_pair(struct loader *L, const char *key, yaml_node_t *v, void *arg)
{
	struct config *c = L->cfg;

	if (!strcmp(key, "workers")) {
		GET_U(L, v, "workers", 0, 256, c->workers);
	} else if (!strcmp(key, "shards")) {
		GET_U(L, v, "shards", 0, CONFIG_MAX_SHARDS, c->shards);
	} else if (!strcmp(key, "log_level")) {
		const char *s = scalar(v);
		int lv = s ? log_level_parse(s) : -1;
		if (lv < 0)
			return fail(L, v, "log_level: expected debug, info, warn or error");
		c->log_level = lv;
	} else if (!strcmp(key, "listeners")) {
		return seq_each(L, v, "listeners", CONFIG_MAX_LISTENERS, &c->nlisteners, one_listener);
	} else if (!strcmp(key, "domains")) {
		return seq_each(L, v, "domains", CONFIG_MAX_DOMAINS, &c->ndomains, one_domain);
	} else if (!strcmp(key, "tls")) {
		return each_pair(L, v, "tls", tls_pair, NULL);
	} else if (!strcmp(key, "limits")) {
		return each_pair(L, v, "limits", limits_pair, NULL);
	} else if (!strcmp(key, "timeouts")) {
		return each_pair(L, v, "timeouts", timeouts_pair, NULL);
	} else if (!strcmp(key, "backend")) {
		return each_pair(L, v, "backend", backend_pair, NULL);
	} else if (!strcmp(key, "session_server")) {
		return each_pair(L, v, "session_server", sm_pair, NULL);
	} else if (!strcmp(key, "register")) {
		return each_pair(L, v, "register", register_pair, NULL);
	} else if (!strcmp(key, "legacy_auth")) {
		return each_pair(L, v, "legacy_auth", legacy_auth_pair, NULL);
	} else if (!strcmp(key, "s2s")) {
		L->s2s_line = v->start_mark.line + 1;
		return each_pair(L, v, "s2s", s2s_pair, NULL);
	} else if (!strcmp(key, "admin")) {
		return each_pair(L, v, "admin", admin_pair, NULL);
	} else if (!strcmp(key, "drain")) {
		return each_pair(L, v, "drain", drain_pair, NULL);
	} else if (!strcmp(key, "stream_management")) {
		return each_pair(L, v, "stream_management", smacks_pair, NULL);
	} else if (!strcmp(key, "components")) {
		return seq_each(L, v, "components", CONFIG_MAX_COMPONENTS, &c->ncomponents, one_component);
	} else if (!strcmp(key, "services")) {
		return each_pair(L, v, "services", services_pair, NULL);
	} else if (!strcmp(key, "admins")) {
		return seq_each(L, v, "admins", CONFIG_MAX_ADMINS, &c->nadmins, one_admin);
	} else {
		return fail(L, v, "unknown key '%s' (known: workers, log_level, listeners, domains, tls, "
			    "limits, timeouts, backend, session_server, register, legacy_auth, s2s, "
			    "components, admins, admin, drain, stream_management, services)", key);
	}
	return 0;
}

static void defaults(struct config *c)
{
	c->workers = 0;
	c->log_level = LOG_INFO;
	c->require_tls = true;
	c->limits.max_stanza_bytes = 256 * 1024;
	c->sm.version_os = true;
	c->limits.max_depth = 32;
	c->limits.max_attrs = 64;
	c->limits.max_name_bytes = 256;
	c->limits.max_value_bytes = 64 * 1024;
	c->limits.max_connections = 18000;
	c->limits.max_auth_failures = 3;
	c->limits.max_connections_per_ip = 200;
	c->limits.connection_rate_per_ip = 50;
	c->limits.max_tls_handshakes = 1024;
	c->limits.max_out_bytes = 1u << 20;
	c->limits.rate_bytes = 1u << 20;
	c->limits.rate_stanzas = 1000;
	c->timeouts.handshake = 10;
	c->timeouts.auth = 30;
	c->timeouts.idle = 600;
	c->timeouts.slow_reader = 30;
	c->timeouts.session_server = 2;
	c->reg.rate = 3;
	c->sm.mam_retention_days = 30;
	c->sm.muc_history = 20;
	c->upload.max_size = 10u << 20;
	c->upload.expire = 30 * 86400;
	c->upload.quota = 100u << 20;
	c->upload.slot_ttl = 300;
	c->sm.mam_default = 1;      /* roster */
	c->s2s.dialback = true;
	c->s2s.idle_timeout = 600;
	c->s2s.connect_timeout = 30;
	c->s2s.queue_bytes = 1u << 20;
	c->s2s.rate_bytes = 64u << 20;
	c->s2s.rate_stanzas = 100000;
	c->drain.rate = 1000;
	c->drain.grace = 25;
	c->smacks.enabled = true;
	c->smacks.resume_timeout = 300;
	c->smacks.max_unacked = 1u << 20;
}

/* The mappings of scalar keys an XEDGE_<SECTION>_<KEY> variable can set. */
static const struct {
	const char *env;    /* <SECTION>_ as it appears in the variable's name */
	const char *name;
	pair_fn fn;
} env_sections[] = {
	{ "TLS_", "tls", tls_pair },
	{ "LIMITS_", "limits", limits_pair },
	{ "TIMEOUTS_", "timeouts", timeouts_pair },
	{ "BACKEND_", "backend", backend_pair },
	{ "SESSION_SERVER_", "session_server", sm_pair },
	{ "REGISTER_", "register", register_pair },
	{ "LEGACY_AUTH_", "legacy_auth", legacy_auth_pair },
	{ "S2S_", "s2s", s2s_pair },
	{ "ADMIN_", "admin", admin_pair },
	{ "DRAIN_", "drain", drain_pair },
	{ "STREAM_MANAGEMENT_", "stream_management", smacks_pair },
};

/*
 * XEDGE_<SECTION>_<KEY>=value sets one scalar of a section, XEDGE_WORKERS
 * and XEDGE_LOG_LEVEL the top-level ones, whether or not the file has them:
 * applied after the file, as a scalar node run through the same validator,
 * with errors naming the variable.  A name whose section part is a known
 * section must name a known key; any other XEDGE_* name is not ours
 * (XEDGE_CONFIG is xedgectl's, tests use XEDGE_BIN) and is ignored.
 */
static int env_overrides(struct loader *L)
{
	extern char **environ;

	for (char **e = environ; e && *e; e++) {
		const char *eq = strchr(*e, '='), *rest = *e + strlen("XEDGE_");
		char name[128], key[128];
		size_t n;
		pair_fn fn = NULL;
		yaml_node_t v = { .type = YAML_SCALAR_NODE };
		int rc;

		if (strncmp(*e, "XEDGE_", strlen("XEDGE_")) || !eq || (size_t)(eq - *e) >= sizeof(name))
			continue;
		n = (size_t)(eq - *e);
		memcpy(name, *e, n);
		name[n] = 0;
		if (!strcmp(name, "XEDGE_WORKERS") || !strcmp(name, "XEDGE_LOG_LEVEL")) {
			fn = top_pair;
		} else {
			for (size_t i = 0; i < sizeof(env_sections) / sizeof(env_sections[0]); i++)
				if (!strncmp(rest, env_sections[i].env, strlen(env_sections[i].env))) {
					fn = env_sections[i].fn;
					rest += strlen(env_sections[i].env);
					break;
				}
		}
		if (!fn)
			continue;
		/* Kubernetes gives every container <SERVICE>_SERVICE_HOST,
		 * _SERVICE_PORT[_NAME], _PORT and _PORT_<N>_<PROTO>[_...] for each
		 * Service of its namespace: a Service named xedge-admin makes
		 * XEDGE_ADMIN_SERVICE_HOST.  No key of ours is named so: not ours. */
		if (!strncmp(rest, "SERVICE_", 8) || !strncmp(rest, "PORT", 4))
			continue;
		n = (size_t)(eq - rest);
		for (size_t i = 0; i <= n; i++)
			key[i] = i == n ? 0 : (rest[i] >= 'A' && rest[i] <= 'Z') ? (char)(rest[i] + 32) : rest[i];
		v.data.scalar.value = (yaml_char_t *)(eq + 1);
		v.data.scalar.length = strlen(eq + 1);
		L->env_name = name;
		L->env_value = eq + 1;
		rc = fn(L, key, &v, NULL);
		L->env_name = L->env_value = NULL;
		if (rc < 0)
			return -1;
	}
	return 0;
}

/* services.upload as a whole: a domain, a directory, a listener for the
 * URLs (or a url naming where the edge is reached); the default url. */
static int upload_check(struct loader *L)
{
	struct config *c = L->cfg;
	const struct config_listener *web = NULL;
	char *url;

	if (!c->upload.domain) {
		snprintf(L->err, L->errlen, "%s:%lu: services.upload needs 'domain'", c->path, L->upload_line);
		return -1;
	}
	if (c->nlisteners == 0)
		return 0;   /* xedge-sm's file: it lists the service (domain, max_size); edges serve it */
	if (!c->upload.dir) {
		snprintf(L->err, L->errlen, "%s:%lu: services.upload needs 'dir' (where the edge keeps the "
			 "files)", c->path, L->upload_line);
		return -1;
	}
	if (c->backend_upstream) {
		snprintf(L->err, L->errlen, "%s:%lu: services.upload needs the native backend (the slots are "
			 "given to the edge's own sessions)", c->path, L->upload_line);
		return -1;
	}
	for (size_t i = 0; i < c->nlisteners && !web; i++)
		if (c->listeners[i].kind == LISTEN_WSS)
			web = &c->listeners[i];
	for (size_t i = 0; i < c->nlisteners && !web; i++)
		if (c->listeners[i].kind == LISTEN_WS)
			web = &c->listeners[i];
	if (!web) {
		snprintf(L->err, L->errlen, "%s:%lu: services.upload: the files are served on the WebSocket "
			 "listeners; add a listener of type wss (or ws behind a TLS proxy)", c->path,
			 L->upload_line);
		return -1;
	}
	if (c->upload.url) {
		size_t n = strlen(c->upload.url);
		if (n && c->upload.url[n - 1] == '/')
			c->upload.url[n - 1] = 0;
		return 0;
	}
	if (asprintf(&url, "%s://%s:%u", web->kind == LISTEN_WSS ? "https" : "http", c->domains[0].name,
		     web->port) < 0) {
		snprintf(L->err, L->errlen, "%s: out of memory", c->path);
		return -1;
	}
	c->upload.url = url;
	return 0;
}

int config_load(const char *path, struct config *cfg, char *err, size_t errlen)
{
	struct loader L = { .cfg = cfg, .err = err, .errlen = errlen };
	yaml_parser_t parser;
	yaml_node_t *root;
	FILE *f;
	int rc = -1;

	memset(cfg, 0, sizeof(*cfg));
	defaults(cfg);
	cfg->path = strdup(path);
	if (!cfg->path) {
		snprintf(err, errlen, "%s: out of memory", path);
		return -1;
	}
	{
		const char *slash = strrchr(path, '/');
		if (slash && (size_t)(slash - path) < sizeof(L.dir)) {
			memcpy(L.dir, path, (size_t)(slash - path));
			L.dir[slash - path] = 0;
			if (!L.dir[0])
				strcpy(L.dir, "/");
		} else {
			strcpy(L.dir, ".");
		}
	}
	f = fopen(path, "r");
	if (!f) {
		snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
		config_free(cfg);
		return -1;
	}
	yaml_parser_initialize(&parser);
	yaml_parser_set_input_file(&parser, f);
	if (!yaml_parser_load(&parser, &L.doc)) {
		snprintf(err, errlen, "%s:%lu: YAML syntax error: %s", path,
			 (unsigned long)parser.problem_mark.line + 1,
			 parser.problem ? parser.problem : "unknown");
		yaml_parser_delete(&parser);
		fclose(f);
		config_free(cfg);
		return -1;
	}
	root = yaml_document_get_root_node(&L.doc);
	if (!root) {
		snprintf(err, errlen, "%s:1: the file is empty", path);
		goto out;
	}
	if (each_pair(&L, root, "top level", top_pair, NULL) < 0 || env_overrides(&L) < 0)
		goto out;
	if (cfg->ndomains == 0) {
		fail(&L, root, "no 'domains' configured: at least one domain to serve is required");
		goto out;
	}
	if (cfg->backend_upstream && cfg->backend_address) {
		fail(&L, root, "backend: 'upstream' and 'address' exclude each other (upstream mode fronts "
		     "any XMPP server; address names our own session server)");
		goto out;
	}
	if (cfg->nbackend_shards && (cfg->backend_address || cfg->backend_upstream)) {
		snprintf(err, errlen, "%s:%lu: backend.shards lists the session servers: it replaces "
			 "backend.address and excludes backend.upstream", path, L.shards_line);
		goto out;
	}
	if (cfg->backend_discover_srv && (cfg->nbackend_shards || cfg->backend_address ||
					  cfg->backend_upstream)) {
		snprintf(err, errlen, "%s:%lu: backend.discover finds the session servers in DNS: it "
			 "excludes backend.shards, backend.address and backend.upstream", path, L.discover_line);
		goto out;
	}
	if (cfg->backend_discover_srv) {
		cfg->backend_address = strdup(cfg->backend_discover_srv);   /* "external" */
		if (!cfg->backend_discover_interval)
			cfg->backend_discover_interval = 10;
	} else if (cfg->nbackend_shards) {
		cfg->backend_address = strdup(cfg->backend_shards[0]);   /* "external" */
	} else if (cfg->backend_address) {
		cfg->backend_shards[0] = strdup(cfg->backend_address);
		cfg->backend_shard_names[0] = strdup(cfg->backend_address);
		cfg->nbackend_shards = 1;
	}
	if ((cfg->backend_address && !cfg->backend_shards[0] && !cfg->backend_discover_srv) ||
	    (cfg->nbackend_shards && (!cfg->backend_address || !cfg->backend_shard_names[0]))) {
		fail(&L, root, "out of memory");
		goto out;
	}
	if (cfg->upstream_proxy && !cfg->backend_upstream) {
		fail(&L, root, "backend.proxy_protocol applies to upstream mode only (set backend.upstream)");
		goto out;
	}
	if (cfg->upstream_tls && !cfg->backend_upstream) {
		snprintf(err, errlen, "%s:%lu: backend.upstream_tls applies to upstream mode only (set "
			 "backend.upstream)", path, L.upstream_tls_line);
		goto out;
	}
	if (L.native_only_line && cfg->backend_upstream) {
		snprintf(err, errlen, "%s:%lu: %s applies to the native backend only (in upstream mode the "
			 "upstream server handles these requests)", path, L.native_only_line, L.native_only_key);
		goto out;
	}
	for (size_t i = 0; i < cfg->nlisteners; i++) {
		int k = cfg->listeners[i].kind;
		if (k == LISTEN_S2S || k == LISTEN_S2S_TLS)
			cfg->s2s.enabled = true;
		if ((k == LISTEN_S2S || k == LISTEN_S2S_TLS || k == LISTEN_COMPONENT) &&
		    cfg->backend_upstream) {
			snprintf(err, errlen, "%s:%lu: %s listeners need the native backend (in upstream "
				 "mode the upstream server federates and hosts components itself)", path,
				 L.listener_line[i], k == LISTEN_COMPONENT ? "component" : "s2s");
			goto out;
		}
		if (k == LISTEN_COMPONENT && cfg->ncomponents == 0) {
			snprintf(err, errlen, "%s:%lu: a component listener needs a 'components' list (name "
				 "and secret of each component allowed to connect)", path, L.listener_line[i]);
			goto out;
		}
	}
	if (L.upload_line && upload_check(&L) < 0)
		goto out;
	if (L.s2s_line && !cfg->s2s.enabled) {
		snprintf(err, errlen, "%s:%lu: s2s: settings given but no listener of type s2s or s2s_tls "
			 "(federation needs one: peers connect back to verify us)", path, L.s2s_line);
		goto out;
	}
	if (cfg->s2s.enabled && !cfg->s2s.dialback && !cfg->tls_ca_file) {
		snprintf(err, errlen, "%s:%lu: s2s.dialback is off, so peers must present certificates that "
			 "verify: set tls.ca_file (e.g. /etc/ssl/certs/ca-certificates.crt)", path, L.s2s_line);
		goto out;
	}
	if (cfg->upstream_tls && !cfg->tls_ca_file) {
		snprintf(err, errlen, "%s:%lu: backend.upstream_tls needs tls.ca_file: the CA certificates "
			 "that sign the upstream server's certificate", path, L.upstream_tls_line);
		goto out;
	}
	if (!cfg->smacks.edge_id && !(cfg->smacks.edge_id = default_edge_id())) {
		snprintf(err, errlen, "%s: out of memory", path);
		goto out;
	}
	rc = 0;
out:
	yaml_document_delete(&L.doc);
	yaml_parser_delete(&parser);
	fclose(f);
	if (rc == 0)
		log_set_min_level(cfg->log_level);
	else
		config_free(cfg);
	return rc;
}

void config_listener_addr(const struct config_listener *cl, char *buf, size_t cap)
{
	snprintf(buf, cap, strchr(cl->host, ':') ? "[%s]:%u" : "%s:%u", cl->host, cl->port);
}
