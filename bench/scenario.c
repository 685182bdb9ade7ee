/*
 * scenario — scenario files for xedge-bench; see scenario.h for the model.
 *
 * The file is loaded as one libyaml document and walked once, top level
 * first, then each session's steps into its flat array.  Every error names
 * the line of the node at fault.  Mappings reject unknown and repeated keys
 * (libyaml keeps duplicates; a repeated key is a typo that would otherwise
 * silently win or lose).  Aliases are legal YAML, so a node may be reached
 * more than once: everything that can grow from them is bounded (steps per
 * session, sessions, phases, thresholds, pool size), which bounds the walk.
 *
 * After the walk, each session's program is checked in order against a small
 * model of the client (struct sim): which steps need an open stream, an
 * authenticated one, a bound resource, XEP-0198, a joined room.  A loop body
 * is checked twice, the second time from the state its first round leaves,
 * which is the state every later round starts from.
 *
 * Before any of that, the text has its variables substituted
 * (scenario_vars.c), line for line, so errors keep their lines.
 */
#include "bench/scenario.h"

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

#define NS_MS 1000000ull
#define NS_S 1000000000ull
#define NS_M (60 * NS_S)
#define NS_H (60 * NS_M)
#define MAX_TIME (30 * 24 * NS_H)     /* any duration: 30 days */
#define MAX_RATE 1e7                  /* per second */
#define MAX_COUNT 1000000000u
#define MAX_KEYS 64                   /* keys in one mapping */
#define MAX_POOL (4u << 20)           /* bytes of strings */

struct loader {
	yaml_document_t doc;
	struct bench_scenario *s;
	const char *name;                 /* the file, for errors */
	char *err;
	size_t errlen;
	/* the session being read */
	struct scn_session *ses;
	uint32_t cap_steps;
	/* chat steps naming a session (to: session:NAME), resolved at the end */
	struct { uint32_t sess, step, name, line; } *tos;
	uint32_t ntos, cap_tos;
};

static int bad(struct loader *L, const yaml_node_t *n, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail_line(struct loader *L, unsigned long line, const char *fmt, va_list ap)
{
	char why[400];

	vsnprintf(why, sizeof(why), fmt, ap);
	snprintf(L->err, L->errlen, "%s:%lu: %s", L->name, line, why);
	return -1;
}

static int bad(struct loader *L, const yaml_node_t *n, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = fail_line(L, n ? (unsigned long)n->start_mark.line + 1 : 1, fmt, ap);
	va_end(ap);
	return rc;
}

static int fail_at(struct loader *L, unsigned long line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail_at(struct loader *L, unsigned long line, const char *fmt, ...)
{
	va_list ap;
	int rc;

	va_start(ap, fmt);
	rc = fail_line(L, line, fmt, ap);
	va_end(ap);
	return rc;
}

static unsigned line_of(const yaml_node_t *n)
{
	return (unsigned)n->start_mark.line + 1;
}

static const char *scalar(const yaml_node_t *n)
{
	return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

/* A null value (`key:` with nothing, `~`, `null`) written as a plain scalar. */
static bool is_null(const yaml_node_t *n)
{
	const char *v = scalar(n);

	return v && n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
	       (!*v || !strcmp(v, "~") || !strcmp(v, "null"));
}

static yaml_node_t *node(struct loader *L, int id)
{
	return yaml_document_get_node(&L->doc, id);
}

/* ---- the string pool --------------------------------------------------------- */

static int pool_add(struct loader *L, const yaml_node_t *n, const char *v, uint32_t *off)
{
	struct bench_scenario *s = L->s;
	size_t len = strlen(v);

	if (!*v) {
		*off = 0;
		return 0;
	}
	if (len > SCN_MAX_STRING)
		return bad(L, n, "a string of at most %d bytes expected", SCN_MAX_STRING);
	if (s->strings_len + len + 1 > MAX_POOL)
		return bad(L, n, "too much text in the file");
	if (s->strings_len + len + 1 > s->strings_cap) {
		uint32_t cap = s->strings_cap ? s->strings_cap : 1024;
		char *p;

		while (cap < s->strings_len + len + 1)
			cap *= 2;
		p = realloc(s->strings, cap);
		if (!p)
			return bad(L, n, "out of memory");
		s->strings = p;
		s->strings_cap = cap;
	}
	memcpy(s->strings + s->strings_len, v, len + 1);
	*off = s->strings_len;
	s->strings_len += (uint32_t)len + 1;
	return 0;
}

/* A non-empty string value. */
static int get_str(struct loader *L, const yaml_node_t *n, const char *key, uint32_t *off)
{
	const char *v = scalar(n);

	if (!v || !*v)
		return bad(L, n, "%s: expected a non-empty string", key);
	return pool_add(L, n, v, off);
}

/* Values pasted into addresses (domains, user prefixes): token-like. */
static int get_token(struct loader *L, const yaml_node_t *n, const char *key, uint32_t *off)
{
	const char *v = scalar(n);

	if (!v || !*v || strlen(v) > 255)
		return bad(L, n, "%s: expected a name of 1 to 255 characters", key);
	for (const char *p = v; *p; p++)
		if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f || strchr("'\"<>&@/,=:", *p))
			return bad(L, n, "%s: '%c' is not allowed here", key, *p);
	return pool_add(L, n, v, off);
}

/* ---- numbers, durations, rates, sizes ------------------------------------------ */

/* A decimal number at the start of v (no sign, no exponent, no hex). */
static bool number(const char *v, double *out, const char **end)
{
	const char *p = v;
	char *e;

	if (!(*p >= '0' && *p <= '9') && !(*p == '.' && p[1] >= '0' && p[1] <= '9'))
		return false;
	while ((*p >= '0' && *p <= '9') || *p == '.')
		p++;
	errno = 0;
	*out = strtod(v, &e);
	if (errno || e != p || !isfinite(*out))
		return false;
	*end = p;
	return true;
}

static int parse_uint(const char *v, unsigned long max, unsigned long *out)
{
	unsigned long x = 0;

	if (!v || !*v)
		return -1;
	for (; *v; v++) {
		if (*v < '0' || *v > '9' || x > (max - (unsigned long)(*v - '0')) / 10)
			return -1;
		x = x * 10 + (unsigned long)(*v - '0');
	}
	*out = x;
	return 0;
}

static int get_uint(struct loader *L, const yaml_node_t *n, const char *key, unsigned long min,
		    unsigned long max, uint32_t *out)
{
	unsigned long v;

	if (parse_uint(scalar(n), max, &v) < 0 || v < min)
		return bad(L, n, "%s: expected a whole number from %lu to %lu", key, min, max);
	*out = (uint32_t)v;
	return 0;
}

/* "250ms", "10s", "1.5m", "1h"; a unit is required. */
static int parse_duration(const char *v, uint64_t *out)
{
	const char *u;
	double x, mul;

	if (!v || !number(v, &x, &u))
		return -1;
	if (!strcmp(u, "ms"))
		mul = (double)NS_MS;
	else if (!strcmp(u, "s"))
		mul = (double)NS_S;
	else if (!strcmp(u, "m"))
		mul = (double)NS_M;
	else if (!strcmp(u, "h"))
		mul = (double)NS_H;
	else
		return -1;
	x *= mul;
	if (x > (double)MAX_TIME)
		return -1;
	*out = (uint64_t)llround(x);
	return 0;
}

static int get_duration(struct loader *L, const yaml_node_t *n, const char *key, uint64_t min,
			uint64_t *out)
{
	if (parse_duration(scalar(n), out) < 0)
		return bad(L, n, "%s: expected a duration such as 250ms, 10s, 2m or 1h (at most 30 days)",
			    key);
	if (*out < min)
		return bad(L, n, "%s: must be at least %llums", key, (unsigned long long)(min / NS_MS));
	return 0;
}

/* "5/s", "300/m", "2/h", "0.5/s": per second. */
static int parse_rate(const char *v, double *out)
{
	const char *u;
	double x;

	if (!v || !number(v, &x, &u) || u[0] != '/')
		return -1;
	if (!strcmp(u, "/s"))
		;
	else if (!strcmp(u, "/m"))
		x /= 60;
	else if (!strcmp(u, "/h"))
		x /= 3600;
	else
		return -1;
	if (x > MAX_RATE)
		return -1;
	*out = x;
	return 0;
}

static int get_rate(struct loader *L, const yaml_node_t *n, const char *key, bool zero_ok,
		    double *out)
{
	if (parse_rate(scalar(n), out) < 0)
		return bad(L, n, "%s: expected a rate such as 5/s, 300/m or 2/h (at most 10000000/s)",
			    key);
	if (!zero_ok && *out <= 0)
		return bad(L, n, "%s: must be more than 0", key);
	return 0;
}

/* "64", "1k" (1024 bytes). */
static int get_size(struct loader *L, const yaml_node_t *n, const char *key, uint32_t *out)
{
	const char *v = scalar(n);
	char num[16];
	size_t len = v ? strlen(v) : 0;
	unsigned long x, mul = 1;

	if (len && (v[len - 1] == 'k' || v[len - 1] == 'K')) {
		mul = 1024;
		len--;
	}
	if (!len || len >= sizeof(num))
		goto bad;
	memcpy(num, v, len);
	num[len] = 0;
	if (parse_uint(num, SCN_MAX_BODY, &x) < 0 || x * mul > SCN_MAX_BODY)
		goto bad;
	*out = (uint32_t)(x * mul);
	return 0;
bad:
	return bad(L, n, "%s: expected a size in bytes such as 64 or 1k (at most 256k)", key);
}

static int get_bool(struct loader *L, const yaml_node_t *n, const char *key, bool *out)
{
	const char *v = scalar(n);

	if (v && (!strcmp(v, "true") || !strcmp(v, "yes") || !strcmp(v, "on")))
		*out = true;
	else if (v && (!strcmp(v, "false") || !strcmp(v, "no") || !strcmp(v, "off")))
		*out = false;
	else
		return bad(L, n, "%s: expected true or false", key);
	return 0;
}

/* v among names[0..n-1]: its index, or a failure listing them. */
static int get_enum(struct loader *L, const yaml_node_t *n, const char *key,
		    const char *const *names, int count, uint8_t *out)
{
	const char *v = scalar(n);
	char list[200] = "";
	size_t used = 0;

	for (int i = 0; v && i < count; i++)
		if (!strcasecmp(v, names[i])) {
			*out = (uint8_t)i;
			return 0;
		}
	for (int i = 0; i < count && used < sizeof(list); i++)
		used += (size_t)snprintf(list + used, sizeof(list) - used, "%s%s", i ? ", " : "",
					 names[i]);
	return bad(L, n, "%s: expected one of %s", key, list);
}

/* ---- mappings and sequences --------------------------------------------------- */

typedef int (*pair_fn)(struct loader *L, const char *key, yaml_node_t *k, yaml_node_t *v,
		       void *arg);

/* fn for every key of map; keys must be plain strings, each once. */
static int each_pair(struct loader *L, yaml_node_t *map, const char *what, pair_fn fn, void *arg)
{
	yaml_node_pair_t *p, *start;

	if (!map || map->type != YAML_MAPPING_NODE)
		return bad(L, map, "%s: expected a mapping (key: value lines)", what);
	start = map->data.mapping.pairs.start;
	if (map->data.mapping.pairs.top - start > MAX_KEYS)
		return bad(L, map, "%s: more than %d keys", what, MAX_KEYS);
	for (p = start; p < map->data.mapping.pairs.top; p++) {
		yaml_node_t *k = node(L, p->key), *v = node(L, p->value);
		const char *ks = scalar(k);

		if (!ks || !*ks)
			return bad(L, k ? k : map, "%s: keys must be plain words", what);
		for (yaml_node_pair_t *q = start; q < p; q++) {
			const char *qs = scalar(node(L, q->key));
			if (qs && !strcmp(qs, ks))
				return bad(L, k, "%s: '%s' is given twice", what, ks);
		}
		if (fn(L, ks, k, v, arg) < 0)
			return -1;
	}
	return 0;
}

static int unknown(struct loader *L, yaml_node_t *k, const char *what, const char *key,
		   const char *known)
{
	return bad(L, k, "%s: unknown key '%s' (known: %s)", what, key, known);
}

static int seq_len(struct loader *L, yaml_node_t *n, const char *what, size_t max, size_t *len)
{
	if (!n || n->type != YAML_SEQUENCE_NODE)
		return bad(L, n, "%s: expected a list (lines starting with '- ')", what);
	*len = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
	if (*len > max)
		return bad(L, n, "%s: more than %zu entries", what, max);
	return 0;
}

/* ---- target and users ---------------------------------------------------------- */

static const char *const tr_names[] = { "default", "plain", "starttls", "tls", "ws", "wss" };
static const char *const mech_names[] = { "scram-sha-256", "scram-sha-1", "plain" };

static int get_transport(struct loader *L, yaml_node_t *v, const char *key, uint8_t *out)
{
	const char *x = scalar(v);

	if (x && !strcmp(x, "direct")) {      /* --tls direct */
		*out = SCN_TR_TLS;
		return 0;
	}
	if (get_enum(L, v, key, tr_names + 1, 5, out) < 0)
		return -1;
	(*out)++;
	return 0;
}

static int target_pair(struct loader *L, const char *key, yaml_node_t *k, yaml_node_t *v, void *arg)
{
	struct scn_target *t = &L->s->target;
	uint32_t port;

	if (!strcmp(key, "host")) {
		unsigned char tmp[16];
		const char *h = scalar(v);
		if (!h || (inet_pton(AF_INET, h, tmp) != 1 && inet_pton(AF_INET6, h, tmp) != 1))
			return bad(L, v, "target.host: expected a numeric IPv4 or IPv6 address");
		return pool_add(L, v, h, &t->host);
	}
	if (!strcmp(key, "port")) {
		if (get_uint(L, v, "target.port", 1, 65535, &port) < 0)
			return -1;
		t->port = (uint16_t)port;
		return 0;
	}
	if (!strcmp(key, "domain"))
		return get_token(L, v, "target.domain", &t->domain);
	if (!strcmp(key, "tls"))
		return get_transport(L, v, "target.tls", &t->tls);
	if (!strcmp(key, "sni"))
		return get_token(L, v, "target.sni", &t->sni);
	if (!strcmp(key, "ws_path")) {
		const char *p = scalar(v);
		if (!p || p[0] != '/' || strpbrk(p, " \t\r\n"))
			return bad(L, v, "target.ws_path: expected an absolute path such as /xmpp-websocket");
		return pool_add(L, v, p, &t->ws_path);
	}
	if (!strcmp(key, "muc_domain"))
		return get_token(L, v, "target.muc_domain", &t->muc_domain);
	if (!strcmp(key, "pubsub"))
		return get_token(L, v, "target.pubsub", &t->pubsub);
	return unknown(L, k, "target", key, "host, port, domain, tls, sni, ws_path, muc_domain, pubsub");
}

static int users_pair(struct loader *L, const char *key, yaml_node_t *k, yaml_node_t *v, void *arg)
{
	struct scn_users *u = &L->s->users;

	if (!strcmp(key, "prefix"))
		return get_token(L, v, "users.prefix", &u->prefix);
	if (!strcmp(key, "password")) {
		const char *p = scalar(v);
		if (!p || !*p || strlen(p) > 200)
			return bad(L, v, "users.password: expected 1 to 200 characters");
		return pool_add(L, v, p, &u->password);
	}
	if (!strcmp(key, "offset"))
		return get_uint(L, v, "users.offset", 0, MAX_COUNT, &u->offset);
	if (!strcmp(key, "count"))
		return get_uint(L, v, "users.count", 1, MAX_COUNT, &u->count);
	return unknown(L, k, "users", key, "prefix, password, offset, count");
}

/* ---- phases -------------------------------------------------------------------- */

struct phase_keys {
	struct scn_phase *p;
	yaml_node_t *arrival, *ramp, *duration, *users;
};

static int phase_pair(struct loader *L, const char *key, yaml_node_t *k, yaml_node_t *v, void *arg)
{
	struct phase_keys *pk = arg;

	if (!strcmp(key, "arrival"))
		pk->arrival = v;
	else if (!strcmp(key, "ramp"))
		pk->ramp = v;
	else if (!strcmp(key, "duration"))
		pk->duration = v;
	else if (!strcmp(key, "users"))
		pk->users = v;
	else
		return unknown(L, k, "phase", key, "arrival, ramp, duration, users");
	return 0;
}

static int read_phase(struct loader *L, yaml_node_t *n, struct scn_phase *p)
{
	struct phase_keys pk = { .p = p };

	p->line = n ? line_of(n) : 1;
	if (each_pair(L, n, "phase", phase_pair, &pk) < 0)
		return -1;
	if (pk.arrival && pk.ramp)
		return bad(L, pk.ramp, "phase: arrival and ramp exclude each other");
	if (pk.users && get_uint(L, pk.users, "phase.users", 1, MAX_COUNT, &p->users) < 0)
		return -1;
	if (!pk.arrival && !pk.ramp) {
		if (!pk.users)
			return bad(L, n, "phase: expected arrival: RATE, ramp: [FROM, TO] or users: N");
		if (pk.duration)
			return bad(L, pk.duration, "phase: a burst (users without arrival or ramp) "
				    "has no duration");
		p->rate0 = p->rate1 = INFINITY;
		return 0;
	}
	if (pk.arrival) {
		if (get_rate(L, pk.arrival, "phase.arrival", true, &p->rate0) < 0)
			return -1;
		p->rate1 = p->rate0;
	} else {
		size_t len;
		if (seq_len(L, pk.ramp, "phase.ramp", 2, &len) < 0)
			return -1;
		if (len != 2)
			return bad(L, pk.ramp, "phase.ramp: expected [FROM, TO], two rates");
		if (get_rate(L, node(L, pk.ramp->data.sequence.items.start[0]), "phase.ramp", true,
			     &p->rate0) < 0 ||
		    get_rate(L, node(L, pk.ramp->data.sequence.items.start[1]), "phase.ramp", true,
			     &p->rate1) < 0)
			return -1;
	}
	if (!pk.duration)
		return bad(L, n, "phase: %s needs a duration", pk.arrival ? "arrival" : "ramp");
	return get_duration(L, pk.duration, "phase.duration", NS_MS, &p->duration_ns);
}

uint64_t scn_phase_users(const struct scn_phase *p)
{
	double n;

	if (isinf(p->rate0))
		return p->users;
	n = floor((p->rate0 + p->rate1) / 2 * ((double)p->duration_ns / 1e9) + 1e-9);
	if (p->users && n > p->users)
		return p->users;
	return n >= 1e18 ? (uint64_t)1e18 : (uint64_t)n;
}

/* ---- steps --------------------------------------------------------------------- */

static const char *const op_names[SCN_OP_COUNT] = {
	[SCN_CONNECT] = "connect", [SCN_AUTH] = "auth", [SCN_BIND] = "bind",
	[SCN_ROSTER] = "roster", [SCN_PRESENCE] = "presence", [SCN_SM] = "sm",
	[SCN_CHAT] = "chat", [SCN_REPLY] = "reply", [SCN_WAIT] = "wait", [SCN_PING] = "ping",
	[SCN_JOIN] = "join", [SCN_GROUPCHAT] = "groupchat", [SCN_LEAVE] = "leave",
	[SCN_PUBLISH] = "publish", [SCN_IDLE] = "idle", [SCN_THINK] = "think",
	[SCN_DROP] = "drop", [SCN_RESUME] = "resume", [SCN_LOGOUT] = "logout",
	[SCN_BARRIER] = "barrier", [SCN_LOOP] = "loop",
};

/* The parameter a scalar value stands for (`- idle: 30s`), and every
 * parameter a step knows, for errors. */
static const char *const op_main[SCN_OP_COUNT] = {
	[SCN_CONNECT] = "transport", [SCN_AUTH] = "mech", [SCN_BIND] = "resource",
	[SCN_PRESENCE] = "show", [SCN_CHAT] = "count", [SCN_REPLY] = "duration",
	[SCN_WAIT] = "for", [SCN_PING] = "timeout", [SCN_JOIN] = "room",
	[SCN_GROUPCHAT] = "count", [SCN_PUBLISH] = "node", [SCN_IDLE] = "duration",
	[SCN_THINK] = "fixed", [SCN_RESUME] = "timeout", [SCN_BARRIER] = "users",
	[SCN_LOOP] = "count",
};

static const char *const op_keys[SCN_OP_COUNT] = {
	[SCN_CONNECT] = "transport", [SCN_AUTH] = "mech", [SCN_BIND] = "resource",
	[SCN_ROSTER] = "none", [SCN_PRESENCE] = "show, status, priority", [SCN_SM] = "resume",
	[SCN_CHAT] = "to, body, rate, count, duration, window, peers, wait_reply",
	[SCN_REPLY] = "count, duration", [SCN_WAIT] = "for, timeout", [SCN_PING] = "timeout",
	[SCN_JOIN] = "room, nick, rooms, per_room, history",
	[SCN_GROUPCHAT] = "body, rate, count, duration, window",
	[SCN_LEAVE] = "none", [SCN_PUBLISH] = "node, to, items, body",
	[SCN_IDLE] = "duration", [SCN_THINK] = "fixed, uniform, exp", [SCN_DROP] = "none",
	[SCN_RESUME] = "timeout, offline", [SCN_LOGOUT] = "none", [SCN_BARRIER] = "users, timeout",
	[SCN_LOOP] = "count, duration, steps",
};

const char *scn_op_str(int op)
{
	return op >= 0 && op < SCN_OP_COUNT ? op_names[op] : "?";
}

const char *scn_transport_str(int tr)
{
	return tr >= 0 && tr <= SCN_TR_WSS ? tr_names[tr] : "?";
}

const char *scn_mech_str(int mech)
{
	return mech >= 0 && mech <= SCN_MECH_PLAIN ? mech_names[mech] : "?";
}

struct step_ctx {
	struct scn_step *st;
	uint32_t idx;              /* in the session */
	yaml_node_t *steps;        /* loop: its steps */
	bool have_count, have_duration, have_dist;
};

/* A pattern with {n} {user} {i} {run}: braces must name one of them. */
static int get_pattern(struct loader *L, yaml_node_t *v, const char *key, uint32_t *off)
{
	const char *p = scalar(v);

	if (!p || !*p)
		return bad(L, v, "%s: expected a non-empty pattern", key);
	for (const char *c = p; *c; c++) {
		if ((unsigned char)*c <= 0x20 || strchr("'\"<>&@/", *c))
			return bad(L, v, "%s: '%c' is not allowed here", key, *c);
		if (*c == '}')
			return bad(L, v, "%s: '}' without '{'", key);
		if (*c == '{') {
			const char *e = strchr(c, '}');
			size_t n = e ? (size_t)(e - c - 1) : 0;
			if (!e || !((n == 1 && (c[1] == 'n' || c[1] == 'i')) ||
				    (n == 4 && !strncmp(c + 1, "user", 4)) ||
				    (n == 3 && !strncmp(c + 1, "run", 3))))
				return bad(L, v, "%s: placeholders are {n}, {i}, {user} and {run}", key);
			c = e;
		}
	}
	return pool_add(L, v, p, off);
}

static int think_value(struct loader *L, yaml_node_t *v, struct step_ctx *c, uint8_t dist)
{
	struct scn_step *st = c->st;

	if (c->have_dist)
		return bad(L, v, "think: give one of fixed, uniform or exp");
	c->have_dist = true;
	st->u.think.dist = dist;
	if (dist == SCN_THINK_UNIFORM) {
		size_t len;
		if (seq_len(L, v, "think.uniform", 2, &len) < 0)
			return -1;
		if (len != 2)
			return bad(L, v, "think.uniform: expected [MIN, MAX], two durations");
		if (get_duration(L, node(L, v->data.sequence.items.start[0]), "think.uniform", 0,
				 &st->u.think.a_ns) < 0 ||
		    get_duration(L, node(L, v->data.sequence.items.start[1]), "think.uniform", 0,
				 &st->u.think.b_ns) < 0)
			return -1;
		if (st->u.think.b_ns < st->u.think.a_ns)
			return bad(L, v, "think.uniform: MIN is more than MAX");
		return 0;
	}
	return get_duration(L, v, dist == SCN_THINK_EXP ? "think.exp" : "think.fixed",
			    dist == SCN_THINK_EXP ? NS_MS : 0, &st->u.think.a_ns);
}

static int send_param(struct loader *L, const char *op, const char *key, yaml_node_t *v,
		      struct step_ctx *c)
{
	struct scn_send *m = &c->st->u.send;
	char what[40];

	snprintf(what, sizeof(what), "%s.%s", op, key);
	if (!strcmp(key, "body"))
		return get_size(L, v, what, &m->body);
	if (!strcmp(key, "rate"))
		return get_rate(L, v, what, false, &m->rate);
	if (!strcmp(key, "count")) {
		c->have_count = true;
		return get_uint(L, v, what, 1, MAX_COUNT, &m->count);
	}
	if (!strcmp(key, "duration")) {
		c->have_duration = true;
		return get_duration(L, v, what, NS_MS, &m->duration_ns);
	}
	if (!strcmp(key, "window"))
		return get_uint(L, v, what, 1, 65536, &m->window);
	return 1;
}

static int read_steps(struct loader *L, yaml_node_t *seq, unsigned depth);

/* One parameter of a step; 1 if the step has no such parameter. */
static int step_param(struct loader *L, const char *key, yaml_node_t *v, struct step_ctx *c)
{
	struct scn_step *st = c->st;
	static const char *const show_names[] = { "none", "away", "chat", "dnd", "xa" };
	static const char *const wait_names[] = { "message", "presence" };
	static const char *const pub_names[] = { "pep", "service" };
	int rc;

	switch (st->op) {
	case SCN_CONNECT:
		if (!strcmp(key, "transport"))
			return get_transport(L, v, "connect.transport", &st->u.connect.transport);
		break;
	case SCN_AUTH:
		if (!strcmp(key, "mech"))
			return get_enum(L, v, "auth.mech", mech_names, 3, &st->u.auth.mech);
		break;
	case SCN_BIND:
		if (!strcmp(key, "resource"))
			return get_pattern(L, v, "bind.resource", &st->u.bind.resource);
		break;
	case SCN_PRESENCE:
		if (!strcmp(key, "show"))
			return get_enum(L, v, "presence.show", show_names, 5, &st->u.presence.show);
		if (!strcmp(key, "status"))
			return get_str(L, v, "presence.status", &st->u.presence.status);
		if (!strcmp(key, "priority")) {
			const char *p = scalar(v);
			bool neg = p && *p == '-';
			unsigned long pr;
			if (!p || parse_uint(p + neg, 128, &pr) < 0 || (!neg && pr > 127))
				return bad(L, v, "presence.priority: expected a whole number from -128 to 127");
			st->u.presence.priority = (int8_t)(neg ? -(long)pr : (long)pr);
			return 0;
		}
		break;
	case SCN_SM:
		if (!strcmp(key, "resume"))
			return get_bool(L, v, "sm.resume", &st->u.sm.resume);
		break;
	case SCN_CHAT:
		if (!strcmp(key, "to")) {
			const char *t = scalar(v);
			struct scn_send *m = &st->u.send;
			if (t && !strncmp(t, "session:", 8)) {
				uint32_t off;
				if (!t[8])
					return bad(L, v, "chat.to: session: needs a session's name");
				if (L->ntos == L->cap_tos) {
					uint32_t cap = L->cap_tos ? 2 * L->cap_tos : 8;
					void *p = realloc(L->tos, cap * sizeof(*L->tos));
					if (!p)
						return bad(L, v, "out of memory");
					L->tos = p;
					L->cap_tos = cap;
				}
				if (pool_add(L, v, t + 8, &off) < 0)
					return -1;
				L->tos[L->ntos].sess = L->s->nsessions - 1;   /* counted before it is read */
				L->tos[L->ntos].step = c->idx;
				L->tos[L->ntos].name = off;
				L->tos[L->ntos].line = line_of(v);
				L->ntos++;
				m->to = SCN_TO_SESSION;
				return 0;
			}
			if (!t || (strcmp(t, "random") && strcmp(t, "peer") && strcmp(t, "self")))
				return bad(L, v, "chat.to: expected random, peer, self or session:NAME");
			m->to = !strcmp(t, "random") ? SCN_TO_RANDOM :
				!strcmp(t, "peer") ? SCN_TO_PEER : SCN_TO_SELF;
			return 0;
		}
		if (!strcmp(key, "peers"))
			return get_uint(L, v, "chat.peers", 1, 65536, &st->u.send.peers);
		if (!strcmp(key, "wait_reply"))
			return get_bool(L, v, "chat.wait_reply", &st->u.send.wait_reply);
		/* fall through */
	case SCN_GROUPCHAT:
		rc = send_param(L, op_names[st->op], key, v, c);
		if (rc <= 0)
			return rc;
		break;
	case SCN_REPLY:
		if (!strcmp(key, "count"))
			return get_uint(L, v, "reply.count", 1, MAX_COUNT, &st->u.reply.count);
		if (!strcmp(key, "duration"))
			return get_duration(L, v, "reply.duration", NS_MS, &st->u.reply.duration_ns);
		break;
	case SCN_WAIT:
		if (!strcmp(key, "for"))
			return get_enum(L, v, "wait.for", wait_names, 2, &st->u.wait.what);
		if (!strcmp(key, "timeout"))
			return get_duration(L, v, "wait.timeout", NS_MS, &st->u.wait.timeout_ns);
		break;
	case SCN_PING:
		if (!strcmp(key, "timeout"))
			return get_duration(L, v, "ping.timeout", NS_MS, &st->u.ping.timeout_ns);
		break;
	case SCN_RESUME:
		if (!strcmp(key, "timeout"))
			return get_duration(L, v, "resume.timeout", NS_MS, &st->u.resume.timeout_ns);
		if (!strcmp(key, "offline"))
			return get_duration(L, v, "resume.offline", 0, &st->u.resume.offline_ns);
		break;
	case SCN_JOIN:
		if (!strcmp(key, "room"))
			return get_pattern(L, v, "join.room", &st->u.join.room);
		if (!strcmp(key, "nick"))
			return get_pattern(L, v, "join.nick", &st->u.join.nick);
		if (!strcmp(key, "rooms"))
			return get_uint(L, v, "join.rooms", 1, MAX_COUNT, &st->u.join.rooms);
		if (!strcmp(key, "per_room"))
			return get_uint(L, v, "join.per_room", 1, MAX_COUNT, &st->u.join.per_room);
		if (!strcmp(key, "history"))
			return get_uint(L, v, "join.history", 0, 1000, &st->u.join.history);
		break;
	case SCN_PUBLISH:
		if (!strcmp(key, "node"))
			return get_str(L, v, "publish.node", &st->u.publish.node);
		if (!strcmp(key, "to"))
			return get_enum(L, v, "publish.to", pub_names, 2, &st->u.publish.to);
		if (!strcmp(key, "items"))
			return get_uint(L, v, "publish.items", 1, MAX_COUNT, &st->u.publish.items);
		if (!strcmp(key, "body"))
			return get_size(L, v, "publish.body", &st->u.publish.body);
		break;
	case SCN_IDLE:
		if (!strcmp(key, "duration"))
			return get_duration(L, v, "idle.duration", NS_MS, &st->u.idle.duration_ns);
		break;
	case SCN_BARRIER:
		if (!strcmp(key, "users"))
			return get_uint(L, v, "barrier.users", 1, MAX_COUNT, &st->u.barrier.users);
		if (!strcmp(key, "timeout"))
			return get_duration(L, v, "barrier.timeout", NS_MS, &st->u.barrier.timeout_ns);
		break;
	case SCN_THINK:
		if (!strcmp(key, "fixed"))
			return think_value(L, v, c, SCN_THINK_FIXED);
		if (!strcmp(key, "uniform"))
			return think_value(L, v, c, SCN_THINK_UNIFORM);
		if (!strcmp(key, "exp"))
			return think_value(L, v, c, SCN_THINK_EXP);
		break;
	case SCN_LOOP:
		if (!strcmp(key, "count")) {
			c->have_count = true;
			return get_uint(L, v, "loop.count", 1, MAX_COUNT, &st->u.loop.count);
		}
		if (!strcmp(key, "duration")) {
			c->have_duration = true;
			return get_duration(L, v, "loop.duration", NS_MS, &st->u.loop.duration_ns);
		}
		if (!strcmp(key, "steps")) {
			c->steps = v;
			return 0;
		}
		break;
	}
	return 1;
}

static int param_pair(struct loader *L, const char *key, yaml_node_t *k, yaml_node_t *v, void *arg)
{
	struct step_ctx *c = arg;
	int rc = step_param(L, key, v, c);

	if (rc > 0)
		return bad(L, k, "%s: unknown parameter '%s' (known: %s)", op_names[c->st->op], key,
			    op_keys[c->st->op]);
	return rc;
}

/* Defaults, before the parameters are read. */
static void step_defaults(struct scn_step *st)
{
	switch (st->op) {
	case SCN_SM:
		st->u.sm.resume = true;
		break;
	case SCN_CHAT:
		st->u.send.to = SCN_TO_RANDOM;
		st->u.send.peers = 8;
		/* fall through */
	case SCN_GROUPCHAT:
		st->u.send.body = 64;
		st->u.send.window = st->op == SCN_CHAT ? 4 : 1;
		break;
	case SCN_JOIN:
		st->u.join.rooms = 1;
		break;
	case SCN_PUBLISH:
		st->u.publish.items = 1;
		st->u.publish.body = 64;
		break;
	case SCN_THINK:
		st->u.think.a_ns = NS_S;
		break;
	case SCN_BARRIER:
		st->u.barrier.timeout_ns = 5 * NS_M;
		break;
	}
}

static struct scn_step *new_step(struct loader *L, yaml_node_t *n)
{
	struct scn_session *ses = L->ses;

	if (ses->nsteps == SCN_MAX_STEPS) {
		bad(L, n, "a session has at most %d steps (loop bodies included)", SCN_MAX_STEPS);
		return NULL;
	}
	if (ses->nsteps == L->cap_steps) {
		uint32_t cap = L->cap_steps ? 2 * L->cap_steps : 16;
		struct scn_step *p = realloc(ses->steps, cap * sizeof(*p));
		if (!p) {
			bad(L, n, "out of memory");
			return NULL;
		}
		ses->steps = p;
		L->cap_steps = cap;
	}
	return memset(&ses->steps[ses->nsteps++], 0, sizeof(struct scn_step));
}

static int read_step(struct loader *L, yaml_node_t *n, unsigned depth)
{
	const char *name = scalar(n);
	yaml_node_t *k = n, *v = NULL;
	struct step_ctx c = { 0 };
	struct scn_step *st;
	uint8_t op;
	int i;

	if (!name && n && n->type == YAML_MAPPING_NODE) {
		if (n->data.mapping.pairs.top - n->data.mapping.pairs.start != 1)
			return bad(L, n, "a step is a name (- roster) or a name with its parameters "
				    "(- chat: {rate: 1/s}), one per list entry");
		k = node(L, n->data.mapping.pairs.start[0].key);
		v = node(L, n->data.mapping.pairs.start[0].value);
		name = scalar(k);
	}
	if (!name || !*name)
		return bad(L, n, "a step is a name (- roster) or a name with its parameters "
			    "(- chat: {rate: 1/s})");
	for (i = 0; i < SCN_OP_COUNT && strcmp(name, op_names[i]); i++)
		;
	if (i == SCN_OP_COUNT)
		return bad(L, k, "unknown step '%s' (steps: connect, auth, bind, roster, presence, sm, "
			    "chat, reply, wait, ping, join, groupchat, leave, publish, idle, think, drop, "
			    "resume, logout, barrier, loop)", name);
	op = (uint8_t)i;
	if (!(st = new_step(L, n)))
		return -1;
	c.idx = L->ses->nsteps - 1;
	st->op = op;
	st->depth = (uint8_t)depth;
	st->line = line_of(k);
	step_defaults(st);
	c.st = st;
	if (v && !is_null(v)) {
		int rc;
		if (v->type == YAML_MAPPING_NODE) {
			rc = each_pair(L, v, name, param_pair, &c);
		} else if (v->type == YAML_SCALAR_NODE && op_main[op]) {
			rc = step_param(L, op_main[op], v, &c);
		} else if (v->type == YAML_SCALAR_NODE) {
			rc = bad(L, v, "%s: takes no parameters", name);
		} else {
			rc = bad(L, v, "%s: expected %s or a mapping of parameters", name,
				  op_main[op] ? op_main[op] : "nothing");
		}
		if (rc < 0)
			return -1;
		st = &L->ses->steps[c.idx];     /* a loop may have moved the array */
	}
	if (op == SCN_LOOP) {
		if (!c.have_count && !c.have_duration)
			return bad(L, k, "loop: needs count, duration or both");
		if (!c.steps)
			return bad(L, k, "loop: needs steps");
		if (depth + 1 >= SCN_MAX_DEPTH)
			return bad(L, k, "loop: nested more than %d deep", SCN_MAX_DEPTH - 1);
		if (read_steps(L, c.steps, depth + 1) < 0)
			return -1;
		st = &L->ses->steps[c.idx];
		st->u.loop.end = L->ses->nsteps;
		if (st->u.loop.end == c.idx + 1)
			return bad(L, c.steps, "loop: steps is empty");
	}
	if ((op == SCN_CHAT || op == SCN_GROUPCHAT) && !c.have_count && !c.have_duration)
		st->u.send.count = 1;
	if (op == SCN_JOIN && !st->u.join.room)
		return bad(L, k, "join: needs room (a pattern such as room{n})");
	return 0;
}

static int read_steps(struct loader *L, yaml_node_t *seq, unsigned depth)
{
	size_t len;

	if (seq_len(L, seq, "steps", SCN_MAX_STEPS, &len) < 0)
		return -1;
	if (!len)
		return bad(L, seq, "steps: expected at least one step");
	for (size_t i = 0; i < len; i++)
		if (read_step(L, node(L, seq->data.sequence.items.start[i]), depth) < 0)
			return -1;
	return 0;
}

/* ---- the static check of a session's program ---------------------------------- */

struct sim {
	bool stream, authed, bound, sm, resumable, room;
};

static int check_range(struct loader *L, const struct scn_session *ses, uint32_t from,
		       uint32_t to, struct sim *m, bool again);

static int check_step(struct loader *L, const struct scn_session *ses, uint32_t i, struct sim *m,
		      bool again, uint32_t *next)
{
	const struct scn_step *st = &ses->steps[i];
	const char *op = op_names[st->op];
	const char *round = again ? " (in the loop's next round)" : "";
	unsigned line = st->line;

	*next = i + 1;
	switch (st->op) {
	case SCN_CONNECT:
		if (m->stream)
			return fail_at(L, line, "connect: the stream is already open (logout or drop "
				       "first)%s", round);
		*m = (struct sim){ .stream = true };
		return 0;
	case SCN_AUTH:
		if (!m->stream)
			return fail_at(L, line, "auth: needs an open stream (connect first)%s", round);
		if (m->authed)
			return fail_at(L, line, "auth: the stream is already authenticated%s", round);
		m->authed = true;
		return 0;
	case SCN_BIND:
		if (!m->authed)
			return fail_at(L, line, "bind: needs an authenticated stream (connect, auth "
				       "first)%s", round);
		if (m->bound)
			return fail_at(L, line, "bind: a resource is already bound%s", round);
		m->bound = true;
		return 0;
	case SCN_SM:
		if (!m->bound)
			return fail_at(L, line, "sm: XEP-0198 is enabled after resource binding "
				       "(connect, auth, bind first)%s", round);
		if (m->sm)
			return fail_at(L, line, "sm: already enabled on this stream%s", round);
		m->sm = true;
		m->resumable = st->u.sm.resume;
		return 0;
	case SCN_RESUME:
		if (!m->sm)
			return fail_at(L, line, "resume: needs sm earlier on this stream%s", round);
		if (!m->resumable)
			return fail_at(L, line, "resume: the sm step at this point has resume: false%s",
				       round);
		return 0;
	case SCN_GROUPCHAT:
	case SCN_LEAVE:
		if (!m->room)
			return fail_at(L, line, "%s: needs a joined room (join first)%s", op, round);
		if (st->op == SCN_LEAVE)
			m->room = false;
		return 0;
	case SCN_JOIN:
		if (m->room)
			return fail_at(L, line, "join: already in a room (leave first)%s", round);
		/* fall through */
	case SCN_ROSTER:
	case SCN_PRESENCE:
	case SCN_CHAT:
	case SCN_REPLY:
	case SCN_WAIT:
	case SCN_PING:
	case SCN_PUBLISH:
		if (!m->bound)
			return fail_at(L, line, "%s: needs a bound resource (connect, auth, bind "
				       "first)%s", op, round);
		if (st->op == SCN_JOIN)
			m->room = true;
		return 0;
	case SCN_DROP:
	case SCN_LOGOUT:
		if (!m->stream)
			return fail_at(L, line, "%s: needs an open stream (connect first)%s", op, round);
		*m = (struct sim){ 0 };
		return 0;
	case SCN_IDLE:
	case SCN_THINK:
	case SCN_BARRIER:
		return 0;
	case SCN_LOOP: {
		struct sim entry = *m, first;
		if (check_range(L, ses, i + 1, st->u.loop.end, m, again) < 0)
			return -1;
		*next = st->u.loop.end;
		if (!memcmp(&entry, m, sizeof(entry)))
			return 0;        /* every round starts as the first did */
		first = *m;
		if (check_range(L, ses, i + 1, st->u.loop.end, m, true) < 0)
			return -1;
		if (memcmp(&first, m, sizeof(first)))
			return fail_at(L, line, "loop: its body leaves the session in a different "
				       "state each round");
		return 0;
	}
	}
	return fail_at(L, line, "unknown step");
}

static int check_range(struct loader *L, const struct scn_session *ses, uint32_t from,
		       uint32_t to, struct sim *m, bool again)
{
	uint32_t i = from, next;

	while (i < to) {
		if (check_step(L, ses, i, m, again, &next) < 0)
			return -1;
		i = next;
	}
	return 0;
}

/* ---- sessions ------------------------------------------------------------------ */

struct session_keys {
	yaml_node_t *name, *weight, *steps;
};

static int session_pair(struct loader *L, const char *key, yaml_node_t *k, yaml_node_t *v, void *arg)
{
	struct session_keys *sk = arg;

	if (!strcmp(key, "name"))
		sk->name = v;
	else if (!strcmp(key, "weight"))
		sk->weight = v;
	else if (!strcmp(key, "steps"))
		sk->steps = v;
	else
		return unknown(L, k, "session", key, "name, weight, steps");
	return 0;
}

static int read_session(struct loader *L, yaml_node_t *n, struct scn_session *ses)
{
	struct session_keys sk = { 0 };
	struct sim m = { 0 };

	ses->line = n ? line_of(n) : 1;
	ses->weight = 1;
	if (each_pair(L, n, "session", session_pair, &sk) < 0)
		return -1;
	if (!sk.name)
		return bad(L, n, "session: needs a name");
	if (get_token(L, sk.name, "session.name", &ses->name) < 0)
		return -1;
	for (uint32_t i = 0; i + 1 < L->s->nsessions; i++)
		if (!strcmp(scn_str(L->s, L->s->sessions[i].name), scn_str(L->s, ses->name)))
			return bad(L, sk.name, "session.name: '%s' is taken (line %u)",
				    scn_str(L->s, ses->name), L->s->sessions[i].line);
	if (sk.weight) {
		const char *w = scalar(sk.weight);
		const char *end;
		if (!w || !number(w, &ses->weight, &end) || *end || ses->weight > 1e9)
			return bad(L, sk.weight, "session.weight: expected a number (weights are relative)");
		if (ses->weight <= 0)
			return bad(L, sk.weight, "session.weight: must be more than 0 (remove the "
				    "session to run none of it)");
	}
	if (!sk.steps)
		return bad(L, n, "session: needs steps");
	L->ses = ses;
	L->cap_steps = 0;
	if (read_steps(L, sk.steps, 0) < 0)
		return -1;
	return check_range(L, ses, 0, ses->nsteps, &m, false);
}

/* ---- the top level ------------------------------------------------------------- */

struct top_keys {
	yaml_node_t *sessions, *phases, *thresholds;
};

static int top_pair(struct loader *L, const char *key, yaml_node_t *k, yaml_node_t *v, void *arg)
{
	struct bench_scenario *s = L->s;
	struct top_keys *tk = arg;

	if (!strcmp(key, "name"))
		return get_str(L, v, "name", &s->name);
	if (!strcmp(key, "description"))
		return get_str(L, v, "description", &s->description);
	if (!strcmp(key, "target"))
		return each_pair(L, v, "target", target_pair, NULL);
	if (!strcmp(key, "users"))
		return each_pair(L, v, "users", users_pair, NULL);
	if (!strcmp(key, "max_users"))
		return get_uint(L, v, "max_users", 0, 100000000, &s->max_users);
	if (!strcmp(key, "concurrency"))
		return get_uint(L, v, "concurrency", 0, 100000000, &s->concurrency);
	if (!strcmp(key, "duration"))
		return get_duration(L, v, "duration", NS_MS, &s->duration_ns);
	if (!strcmp(key, "timeout"))
		return get_duration(L, v, "timeout", 100 * NS_MS, &s->timeout_ns);
	if (!strcmp(key, "keepalive"))
		return get_duration(L, v, "keepalive", 0, &s->keepalive_ns);
	if (!strcmp(key, "warmup"))
		return get_duration(L, v, "warmup", 0, &s->warmup_ns);
	if (!strcmp(key, "drain"))
		return get_duration(L, v, "drain", 0, &s->drain_ns);
	if (!strcmp(key, "phases"))
		tk->phases = v;
	else if (!strcmp(key, "sessions"))
		tk->sessions = v;
	else if (!strcmp(key, "thresholds"))
		tk->thresholds = v;
	else
		return unknown(L, k, "top level", key, "name, description, target, users, phases, "
			       "max_users, concurrency, duration, timeout, keepalive, warmup, drain, "
			       "sessions, thresholds");
	return 0;
}

static int read_phases(struct loader *L, yaml_node_t *n)
{
	struct bench_scenario *s = L->s;
	size_t len;

	if (seq_len(L, n, "phases", SCN_MAX_PHASES, &len) < 0)
		return -1;
	if (!len)
		return bad(L, n, "phases: expected at least one phase");
	s->phases = calloc(len, sizeof(*s->phases));
	if (!s->phases)
		return bad(L, n, "out of memory");
	for (size_t i = 0; i < len; i++) {
		if (read_phase(L, node(L, n->data.sequence.items.start[i]), &s->phases[i]) < 0)
			return -1;
		s->nphases++;
	}
	return 0;
}

static int read_sessions(struct loader *L, yaml_node_t *n)
{
	struct bench_scenario *s = L->s;
	double sum = 0;
	size_t len;

	if (seq_len(L, n, "sessions", SCN_MAX_SESSIONS, &len) < 0)
		return -1;
	if (!len)
		return bad(L, n, "sessions: expected at least one session");
	s->sessions = calloc(len, sizeof(*s->sessions));
	if (!s->sessions)
		return bad(L, n, "out of memory");
	for (size_t i = 0; i < len; i++) {
		/* counted first: scn_free() frees the steps of a half-read session */
		struct scn_session *ses = &s->sessions[s->nsessions++];
		if (read_session(L, node(L, n->data.sequence.items.start[i]), ses) < 0)
			return -1;
		sum += ses->weight;
	}
	for (uint32_t i = 0; i < s->nsessions; i++)
		s->sessions[i].share = s->sessions[i].weight / sum;
	/* chat to: session:NAME */
	for (uint32_t i = 0; i < L->ntos; i++) {
		const char *want = scn_str(s, L->tos[i].name);
		uint32_t j;
		for (j = 0; j < s->nsessions && strcmp(scn_str(s, s->sessions[j].name), want); j++)
			;
		if (j == s->nsessions)
			return fail_at(L, L->tos[i].line, "chat.to: no session is named '%s'", want);
		s->sessions[L->tos[i].sess].steps[L->tos[i].step].u.send.to_session = (uint16_t)j;
	}
	return 0;
}

static int read_thresholds(struct loader *L, yaml_node_t *n)
{
	struct bench_scenario *s = L->s;
	size_t len;

	if (seq_len(L, n, "thresholds", SCN_MAX_THRESHOLDS, &len) < 0)
		return -1;
	s->thresholds = calloc(len ? len : 1, sizeof(*s->thresholds));
	if (!s->thresholds)
		return bad(L, n, "out of memory");
	for (size_t i = 0; i < len; i++) {
		yaml_node_t *t = node(L, n->data.sequence.items.start[i]);
		uint32_t off;
		if (get_str(L, t, "thresholds", &off) < 0)
			return -1;
		/* the pool may still move: keep the offset until the load is over */
		s->thresholds[i].text = (char *)(uintptr_t)off;
		s->thresholds[i].line = line_of(t);
		s->nthresholds++;
	}
	return 0;
}

static int read_root(struct loader *L, yaml_node_t *root)
{
	struct bench_scenario *s = L->s;
	struct top_keys tk = { 0 };

	if (each_pair(L, root, "top level", top_pair, &tk) < 0)
		return -1;
	if (!tk.phases)
		return bad(L, root, "phases: missing (for example: phases: [{users: 100}])");
	if (read_phases(L, tk.phases) < 0)
		return -1;
	if (!tk.sessions)
		return bad(L, root, "sessions: missing");
	if (read_sessions(L, tk.sessions) < 0)
		return -1;
	if (tk.thresholds && !is_null(tk.thresholds) && read_thresholds(L, tk.thresholds) < 0)
		return -1;
	if (s->duration_ns && s->warmup_ns >= s->duration_ns)
		return bad(L, root, "warmup: as long as the whole run (duration)");
	return 0;
}

static void defaults(struct bench_scenario *s)
{
	s->concurrency = 200;
	s->timeout_ns = 10 * NS_S;
	s->keepalive_ns = 60 * NS_S;
	s->drain_ns = 2 * NS_S;
}

static int load(struct loader *L, yaml_parser_t *parser)
{
	struct bench_scenario *s = L->s;
	yaml_document_t extra;
	yaml_node_t *root;
	int rc = -1;

	if (!yaml_parser_load(parser, &L->doc)) {
		snprintf(L->err, L->errlen, "%s:%lu: YAML syntax error: %s", L->name,
			 (unsigned long)parser->problem_mark.line + 1,
			 parser->problem ? parser->problem : "unknown");
		return -1;
	}
	root = yaml_document_get_root_node(&L->doc);
	if (!root) {
		snprintf(L->err, L->errlen, "%s:1: the file is empty", L->name);
		goto out;
	}
	if (read_root(L, root) < 0)
		goto out;
	if (!yaml_parser_load(parser, &extra)) {
		snprintf(L->err, L->errlen, "%s:%lu: YAML syntax error: %s", L->name,
			 (unsigned long)parser->problem_mark.line + 1,
			 parser->problem ? parser->problem : "unknown");
		goto out;
	}
	if (yaml_document_get_root_node(&extra)) {
		bad(L, yaml_document_get_root_node(&extra), "one YAML document per file ('---' "
		     "starts a second one)");
		yaml_document_delete(&extra);
		goto out;
	}
	yaml_document_delete(&extra);
	for (uint32_t i = 0; i < s->nthresholds; i++)
		s->thresholds[i].text = s->strings + (uintptr_t)s->thresholds[i].text;
	rc = 0;
out:
	yaml_document_delete(&L->doc);
	return rc;
}

static int load_with(struct loader *L, yaml_parser_t *parser, struct bench_scenario *s,
		     const char *name)
{
	int rc;

	s->path = strdup(name);
	/* offset 0 of the pool is "" */
	if (!s->path || !(s->strings = calloc(1, 1024))) {
		snprintf(L->err, L->errlen, "%s: out of memory", name);
		rc = -1;
	} else {
		s->strings_len = 1;
		s->strings_cap = 1024;
		L->name = s->path;
		rc = load(L, parser);
	}
	free(L->tos);
	if (rc < 0) {
		/* thresholds still hold offsets: nothing to free there */
		scn_free(s);
	}
	return rc;
}

/* The text after substitution (scn_subst with the --var variables), parsed. */
static int load_text(const void *data, size_t len, const char *name, struct bench_scenario *s,
		     char *err, size_t errlen)
{
	struct loader L = { .s = s, .err = err, .errlen = errlen, .name = name };
	yaml_parser_t parser;
	size_t tlen;
	char *text;
	int rc;

	memset(s, 0, sizeof(*s));
	defaults(s);
	if (scn_subst_vars(data, len, name, &text, &tlen, err, errlen) < 0)
		return -1;
	if (!yaml_parser_initialize(&parser)) {
		free(text);
		snprintf(err, errlen, "%s: out of memory", name);
		return -1;
	}
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, tlen);
	rc = load_with(&L, &parser, s, name);
	yaml_parser_delete(&parser);
	free(text);
	return rc;
}

int scn_load(const char *path, struct bench_scenario *s, char *err, size_t errlen)
{
	char *data = NULL;
	size_t len = 0, cap = 0, n;
	FILE *f;
	int rc;

	memset(s, 0, sizeof(*s));
	f = fopen(path, "r");
	if (!f) {
		snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
		return -1;
	}
	do {
		if (len == cap) {
			char *nd;
			cap = cap ? 2 * cap : 16384;
			if (cap > SCN_MAX_TEXT + 1 || !(nd = realloc(data, cap))) {
				free(data);
				fclose(f);
				snprintf(err, errlen, "%s: %s", path, cap > SCN_MAX_TEXT + 1 ?
					 "larger than 4 MiB" : "out of memory");
				return -1;
			}
			data = nd;
		}
		n = fread(data + len, 1, cap - len, f);
		len += n;
	} while (n > 0);
	if (ferror(f)) {
		snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
		free(data);
		fclose(f);
		return -1;
	}
	fclose(f);
	rc = load_text(data, len, path, s, err, errlen);
	free(data);
	return rc;
}

int scn_load_mem(const void *data, size_t len, const char *name, struct bench_scenario *s,
		 char *err, size_t errlen)
{
	return load_text(data, len, name, s, err, errlen);
}

void scn_free(struct bench_scenario *s)
{
	for (uint32_t i = 0; i < s->nsessions; i++)
		free(s->sessions[i].steps);
	free(s->sessions);
	free(s->phases);
	free(s->thresholds);
	free(s->strings);
	free(s->path);
	memset(s, 0, sizeof(*s));
}
