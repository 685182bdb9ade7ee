/*
 * s2s — see s2s.h.
 *
 * Outbound (role_s2s_out).  Stanzas for a remote domain arrive from the
 * session server (s2s_deliver), which sends every stanza of one (local
 * domain, remote domain) pair to the same worker; the worker keeps one
 * `struct s2s_out` per pair in a hash table.  Its life:
 *   resolve  s2s.routes, or DNS on the resolver thread (resolve.h: SRV
 *            _xmpps-server then _xmpp-server, by priority and weight, then
 *            A/AAAA; no SRV: the domain's A/AAAA on 5269);
 *   connect  each target in turn until one answers (Direct TLS targets
 *            start with TLS, ALPN xmpp-server);
 *   stream   our header (from local, to remote), the peer's header and
 *            features; STARTTLS is required (RFC 7590) — a peer that does
 *            not offer it is not used;
 *   auth     SASL EXTERNAL (XEP-0178) when the peer offers it, which it
 *            does when our certificate verified; else dialback (XEP-0220):
 *            <db:result> with our key, and the peer's verdict.  With
 *            s2s.require_valid_certs the peer's certificate must verify for
 *            the remote domain (RFC 6125); without, a peer whose certificate
 *            does not verify is used (authenticated by DNS, like dialback);
 *   ready    stanzas flow; the stream closes after s2s.idle_timeout idle.
 * While it is not ready, stanzas wait in the pair's queue (s2s.queue_bytes
 * at most: beyond, resource-constraint).  A pair that cannot be reached by
 * s2s.connect_timeout, or whose targets all fail, bounces what waits with
 * remote-server-not-found (-timeout for the deadline) and is forgotten: the
 * next stanza starts afresh.
 *
 * Inbound (role_s2s_in).  The peer's stream must be for one of our domains
 * (or a component's) and is secured first (STARTTLS required, or a Direct
 * TLS listener); its certificate is requested.  The peer authenticates a
 * (local, remote) pair with SASL EXTERNAL (offered only when its
 * certificate verifies for the domain its header names) or with dialback:
 * <db:result> is checked either at once, when its certificate verifies for
 * that domain (XEP-0344 "dialback without dialback"), or by a verification
 * stream to the remote domain's authoritative server (<db:verify>; an
 * s2s_out with purpose VERIFY, not in the table).  Stanzas are accepted only
 * for authenticated pairs: `from` in a domain the peer authenticated
 * (<invalid-from/>), `to` in a domain of ours for that pair (<host-unknown/>
 * / <improper-addressing/>), then they go to the session server (route.h).
 *
 * Authoritative side: a <db:verify> on any inbound stream is answered from
 * the key alone — keys are HMAC-SHA256(SHA256(secret), receiving + ' ' +
 * originating + ' ' + stream id) in hex (XEP-0185), with s2s.dialback_secret
 * shared by every edge of a deployment (random per process when unset) —
 * so any worker, or any edge behind the same DNS name, can answer it.
 */
#include "core/s2s.h"

#include <errno.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/resolve.h"
#include "core/route.h"
#include "core/worker.h"
#include "core/xmpp.h"
#include "core/xprt.h"
#include "parser/dialback.h"
#include "parser/jid.h"
#include "parser/xmltag.h"
#include "parser/xtree.h"
#include "tls/crypto.h"
#include "tls/tls.h"

#define NS_SERVER "jabber:server"
#define NS_DB_FEATURE "urn:xmpp:features:dialback"
#define DB_DECL "xmlns:db='" NS_DIALBACK "'"

#define S2S_MAX_PAIRS 16      /* pairs one inbound stream may authenticate */
#define S2S_MAX_PENDING 8     /* dialback requests of one inbound stream under verification */

enum purpose { P_DELIVER = 1, P_VERIFY };
enum phase { PH_RESOLVE = 1, PH_CONNECT, PH_STREAM, PH_AUTH, PH_DIALBACK, PH_READY, PH_DONE };

/* A stanza waiting for its pair's stream: the routing fields (for a bounce)
 * then the raw bytes, in one allocation. */
struct s2s_item {
	struct s2s_item *next;
	uint8_t kind;
	uint16_t type_len, to_len, from_len, id_len;
	uint32_t raw_len;
	char data[];
};

struct s2s_out {
	struct s2s_out *next;         /* hash chain (deliver) or the worker's verify list */
	struct worker *w;
	uint8_t purpose, phase;
	bool external_failed;         /* the peer refused our SASL EXTERNAL: dialback next */
	bool sasl_done;               /* SASL EXTERNAL succeeded: the restarted stream is ours */
	char *local, *remote;         /* canonical domains: ours, theirs */
	struct conn *c;               /* the stream being set up or in use */
	struct s2s_dns *dns;          /* lookup in flight */
	struct resolve_target *targets;
	size_t ntargets, next_target;
	struct sockaddr_storage addr; /* the target being tried (conn_connect keeps a pointer) */
	socklen_t addrlen;
	bool direct_tls;
	uint64_t deadline;            /* worker clock: ready by then, or give up */
	/* deliver */
	struct s2s_item *qhead, *qtail;
	size_t qbytes;
	/* verify: the inbound stream that asked, and what to check */
	uint32_t in_idx, in_gen;
	char *key, *sid;
};

struct s2s_dns {
	struct resolve_req q;
	struct s2s_out *out;          /* NULL: forgotten, free when done */
};

/* c->s2s of an s2s stream, either way. */
struct s2s_conn {
	struct s2s_out *out;          /* outbound: its pair or verification */
	char id[40];                  /* inbound: our stream id; outbound: the peer's */
	char *from;                   /* inbound: the domain the peer's header named */
	uint8_t nauth, npending;
	struct { const char *local; char *remote; } auth[S2S_MAX_PAIRS];
};

struct s2s {
	struct s2s_out **tab;
	size_t cap, n;
	struct s2s_out *verifies;
};

/* Process-wide: the resolver thread and the dialback key's secret. */
static struct resolver *resolver;
static char db_secret[DB_KEY_HEX + 1];   /* hex SHA-256 of the secret */

static void out_fail(struct s2s_out *o, const char *cond, const char *why);
static void out_next_target(struct s2s_out *o);

/* ---- process set-up ------------------------------------------------------ */

int s2s_process_init(const struct config *cfg)
{
	uint8_t rnd[32];
	int r;

	if (!cfg->s2s.enabled)
		return 0;
	if (cfg->s2s.dialback_secret) {
		dialback_secret_hex(cfg->s2s.dialback_secret, strlen(cfg->s2s.dialback_secret), db_secret);
	} else {
		crypto_random(rnd, sizeof(rnd));
		dialback_secret_hex(rnd, sizeof(rnd), db_secret);
		log_info("s2s: dialback keys from a random secret (set s2s.dialback_secret when several "
			 "edges serve the same domains)", "workers_share=%s", "yes");
	}
	{
		/* Two tries of 2 s per query: c-ares' own defaults (5 s doubling
		 * over 4 tries) would outlast s2s.connect_timeout by far. */
		struct resolver_opts ro = { .servers = cfg->s2s.dns_servers, .timeout_ms = 2000, .tries = 2 };
		r = resolver_start(&resolver, &ro);
	}
	if (r < 0) {
		log_error("s2s: cannot start the DNS resolver", "err=%s dns_servers=%s", strerror(-r),
			  cfg->s2s.dns_servers ? cfg->s2s.dns_servers : "/etc/resolv.conf");
		return r;
	}
	return 0;
}

void s2s_process_fini(void)
{
	if (resolver) {
		resolver_stop(resolver);
		resolver = NULL;
	}
}

/* ---- domains ------------------------------------------------------------- */

/* One of our domains (served or a component's), config-owned, or NULL. */
static const char *our_domain(const struct config *cfg, const char *s, size_t n)
{
	return xmpp_served_domain(cfg, s, n, true);
}

/* The canonical domain of the JID j (malloc'd), or NULL when j is not one. */
static char *jid_domain_dup(const char *j, size_t n)
{
	struct jid_view v;
	char *d;

	if (n == 0 || n > JID_MAX || jid_parse(j, n, &v) < 0)
		return NULL;
	d = malloc(v.domain_len + 1);
	if (d) {
		jid_fold(v.domain, v.domain_len, d);
		d[v.domain_len] = 0;
	}
	return d;
}

/* Why the peer's certificate does not authenticate it as domain, for logs. */
static const char *peer_why(const struct tls *t, const char *domain, char *buf, size_t len)
{
	const char *w = t ? tls_peer_why(t, domain, buf, len) : "no TLS";

	return w ? w : "certificate fine";
}

/* ---- the pair table --------------------------------------------------------- */

static uint64_t pair_hash(const char *local, const char *remote)
{
	uint64_t h = 1469598103934665603ull;

	for (const char *p = local; *p; p++)
		h = (h ^ (uint8_t)*p) * 1099511628211ull;
	h = (h ^ ' ') * 1099511628211ull;
	for (const char *p = remote; *p; p++)
		h = (h ^ (uint8_t)*p) * 1099511628211ull;
	return h;
}

static struct s2s *state(struct worker *w)
{
	if (!w->s2s)
		w->s2s = calloc(1, sizeof(struct s2s));
	return w->s2s;
}

static struct s2s_out **pair_slot(struct s2s *s, const char *local, const char *remote)
{
	struct s2s_out **pp;

	if (!s->cap)
		return NULL;
	pp = &s->tab[pair_hash(local, remote) & (s->cap - 1)];
	while (*pp && (strcmp((*pp)->local, local) || strcmp((*pp)->remote, remote)))
		pp = &(*pp)->next;
	return pp;
}

static int pair_insert(struct s2s *s, struct s2s_out *o)
{
	struct s2s_out **pp;

	if (s->n + 1 > s->cap / 2) {
		size_t ncap = s->cap ? s->cap * 2 : 16;
		struct s2s_out **nt = calloc(ncap, sizeof(*nt));
		if (!nt)
			return -ENOMEM;
		for (size_t i = 0; i < s->cap; i++) {
			struct s2s_out *e = s->tab[i], *next;
			for (; e; e = next) {
				next = e->next;
				e->next = nt[pair_hash(e->local, e->remote) & (ncap - 1)];
				nt[pair_hash(e->local, e->remote) & (ncap - 1)] = e;
			}
		}
		free(s->tab);
		s->tab = nt;
		s->cap = ncap;
	}
	pp = &s->tab[pair_hash(o->local, o->remote) & (s->cap - 1)];
	o->next = *pp;
	*pp = o;
	s->n++;
	return 0;
}

static void out_unlink(struct s2s_out *o)
{
	struct s2s *s = o->w->s2s;
	struct s2s_out **pp;

	if (o->purpose == P_DELIVER) {
		pp = pair_slot(s, o->local, o->remote);
		if (pp && *pp == o) {
			*pp = o->next;
			s->n--;
		}
	} else {
		for (pp = &s->verifies; *pp && *pp != o; pp = &(*pp)->next)
			;
		if (*pp)
			*pp = o->next;
	}
}

/* ---- queue ------------------------------------------------------------------ */

static struct s2s_item *item_new(const struct wire_msg *m)
{
	const struct wire_str *f[4] = { &m->u.stanza.type, &m->u.stanza.to, &m->u.stanza.from,
					&m->u.stanza.id };
	size_t len = m->u.stanza.raw.len;
	struct s2s_item *it;
	char *p;

	for (int i = 0; i < 4; i++)
		len += f[i]->len;
	it = malloc(sizeof(*it) + len);
	if (!it)
		return NULL;
	it->next = NULL;
	it->kind = m->u.stanza.kind;
	it->type_len = (uint16_t)m->u.stanza.type.len;
	it->to_len = (uint16_t)m->u.stanza.to.len;
	it->from_len = (uint16_t)m->u.stanza.from.len;
	it->id_len = (uint16_t)m->u.stanza.id.len;
	it->raw_len = m->u.stanza.raw.len;
	p = it->data;
	for (int i = 0; i < 4; i++) {
		memcpy(p, f[i]->p, f[i]->len);
		p += f[i]->len;
	}
	memcpy(p, m->u.stanza.raw.p, m->u.stanza.raw.len);
	return it;
}

static void item_bounce(struct worker *w, const struct s2s_item *it, const char *cond)
{
	const char *p = it->data;
	struct wire_str type = wire_s(p, it->type_len);
	struct wire_str to = wire_s(p += it->type_len, it->to_len);
	struct wire_str from = wire_s(p += it->to_len, it->from_len);
	struct wire_str id = wire_s(p += it->from_len, it->id_len);

	route_bounce(w, it->kind, type, to, from, id, cond);
}

static const char *item_raw(const struct s2s_item *it)
{
	return it->data + it->type_len + it->to_len + it->from_len + it->id_len;
}

/* A stanza onto a ready stream, in the stream's own namespace: a top-level
 * xmlns (WebSocket clients send jabber:client on every stanza) is removed,
 * so jabber:server, the stream's default, applies. */
static void stanza_write(struct conn *c, const void *raw, size_t len)
{
	static const struct xmltag_attr no_ns = { "xmlns", NULL };
	struct worker *w = c->w;
	size_t n;

	if (!memmem(raw, len < 512 ? len : 512, "xmlns", 5)) {
		xmpp_out(c, raw, len);
	} else {
		n = xmltag_rewrite(raw, len, &no_ns, 1, w->stamp, w->stamp_cap);
		if (n > w->stamp_cap) {
			char *nb = realloc(w->stamp, n + 1024);
			if (!nb)
				return;
			w->stamp = nb;
			w->stamp_cap = n + 1024;
			n = xmltag_rewrite(raw, len, &no_ns, 1, w->stamp, w->stamp_cap);
		}
		xmpp_out(c, n ? w->stamp : raw, n ? n : len);
	}
	conn_count_stanza(c, 1, stanza_kind_of(raw, len), len);
	c->last_rx = w->now;   /* activity either way keeps the stream from idling out */
}

/* ---- outbound pairs --------------------------------------------------------- */

static void out_free(struct s2s_out *o)
{
	struct s2s_item *it, *next;

	out_unlink(o);
	if (o->dns) {
		o->dns->out = NULL;   /* its answer (-ECANCELED, soon) is freed when it comes */
		resolve_cancel(resolver, &o->dns->q);
	}
	if (o->c) {
		struct s2s_conn *sc = o->c->s2s;
		if (sc)
			sc->out = NULL;
		if (o->c->state != CS_CLOSING)
			xmpp_end(o->c, WIRE_CLOSE_NORMAL);
	}
	for (it = o->qhead; it; it = next) {
		next = it->next;
		free(it);
	}
	free(o->targets);
	free(o->local);
	free(o->remote);
	free(o->key);
	free(o->sid);
	free(o);
}

/* Verification finished (valid true/false, or an error condition): tell the
 * inbound stream that asked, if it is still there. */
static void verify_report(struct s2s_out *o, int valid, const char *cond);

static void out_fail(struct s2s_out *o, const char *cond, const char *why)
{
	struct s2s_item *it;
	unsigned n = 0;

	o->phase = PH_DONE;
	for (it = o->qhead; it; it = it->next, n++)
		item_bounce(o->w, it, cond);
	if (o->purpose == P_VERIFY) {
		log_warn("s2s: dialback verification failed", "local=%s remote=%s why=\"%s\" cond=%s",
			 o->local, o->remote, why, cond);
		verify_report(o, -1, cond);
	} else {
		log_warn("s2s: remote server unreachable", "local=%s remote=%s why=\"%s\" bounced=%u cond=%s",
			 o->local, o->remote, why, n, cond);
	}
	out_free(o);
}

static void out_ready(struct s2s_out *o, const char *how)
{
	struct conn *c = o->c;
	struct s2s_item *it, *next;
	unsigned n = 0;

	o->phase = PH_READY;
	c->flags |= CF_AUTHED;
	if (c->state != CS_RELAY && !xmpp_set_state(c, CS_RELAY)) {
		out_fail(o, "internal-server-error", "illegal state");
		return;
	}
	c->due = 0;
	c->last_rx = c->w->now;
	conn_timer(c, c->w->now + c->w->cfg->s2s.idle_timeout);
	for (it = o->qhead; it; it = next, n++) {
		next = it->next;
		stanza_write(c, item_raw(it), it->raw_len);
		free(it);
	}
	o->qhead = o->qtail = NULL;
	o->qbytes = 0;
	log_info("s2s: outbound stream ready", "local=%s remote=%s auth=%s conn=%u flushed=%u",
		 o->local, o->remote, how, c->idx, n);
}

static void dns_done(struct offload_job *j)
{
	struct s2s_dns *d = (struct s2s_dns *)j;
	struct s2s_out *o = d->out;

	if (!o) {
		resolve_req_clear(&d->q);
		free(d);
		return;
	}
	o->dns = NULL;
	if (d->q.status < 0 || d->q.ntargets == 0) {
		int st = d->q.status;
		resolve_req_clear(&d->q);
		free(d);
		out_fail(o, st == -ETIMEDOUT ? "remote-server-timeout" : "remote-server-not-found",
			 st == -ETIMEDOUT ? "DNS lookup timed out"
			 : st == -ENOENT || st == 0 ? "no such domain, or no XMPP service there"
			 : "DNS lookup failed");
		return;
	}
	o->targets = d->q.targets;
	o->ntargets = d->q.ntargets;
	d->q.targets = NULL;
	d->q.ntargets = 0;
	resolve_req_clear(&d->q);
	free(d);
	o->next_target = 0;
	out_next_target(o);
}

static int numeric_addr(const char *host, uint16_t port, struct sockaddr_storage *ss, socklen_t *len)
{
	struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
		a4->sin_family = AF_INET;
		a4->sin_port = htons(port);
		*len = sizeof(*a4);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons(port);
		*len = sizeof(*a6);
		return 0;
	}
	return -1;
}

/* Where to find o->remote: s2s.routes, or DNS. */
static void out_resolve(struct s2s_out *o)
{
	const struct config *cfg = o->w->cfg;
	struct s2s_dns *d;
	int r;

	o->phase = PH_RESOLVE;
	for (size_t i = 0; i < cfg->s2s.nroutes; i++) {
		const struct config_s2s_route *rt = &cfg->s2s.routes[i];
		struct resolve_target *t;
		if (strcmp(rt->domain, o->remote) != 0)
			continue;
		t = calloc(1, sizeof(*t));
		if (!t) {
			out_fail(o, "internal-server-error", "out of memory");
			return;
		}
		snprintf(t->host, sizeof(t->host), "%s", o->remote);
		t->port = rt->port;
		t->direct_tls = rt->direct_tls;
		if (numeric_addr(rt->host, rt->port, &t->addr, &t->addrlen) < 0) {
			free(t);
			out_fail(o, "remote-server-not-found", "bad s2s.routes address");
			return;
		}
		o->targets = t;
		o->ntargets = 1;
		o->next_target = 0;
		out_next_target(o);
		return;
	}
	d = calloc(1, sizeof(*d));
	if (!d) {
		out_fail(o, "internal-server-error", "out of memory");
		return;
	}
	d->out = o;
	d->q.job.done = dns_done;
	snprintf(d->q.domain, sizeof(d->q.domain), "%s", o->remote);
	r = resolver ? resolve_s2s(resolver, &o->w->offload_port, &d->q) : -ENOSYS;
	if (r < 0) {
		free(d);
		out_fail(o, "remote-server-not-found", "the resolver refused the lookup");
		return;
	}
	o->dns = d;
}

static const struct role_ops *const s2s_out_role = &role_s2s_out;

static void out_next_target(struct s2s_out *o)
{
	struct worker *w = o->w;
	int err = 0;

	for (; o->next_target < o->ntargets; o->next_target++) {
		const struct resolve_target *t = &o->targets[o->next_target];
		struct s2s_conn *sc;
		struct conn *c;

		if (w->now >= o->deadline) {
			out_fail(o, "remote-server-timeout", "s2s.connect_timeout passed");
			return;
		}
		memcpy(&o->addr, &t->addr, t->addrlen);
		o->addrlen = t->addrlen;
		o->direct_tls = t->direct_tls;
		sc = calloc(1, sizeof(*sc));
		c = sc ? conn_connect(w, (struct sockaddr *)&o->addr, o->addrlen, s2s_out_role, &err) : NULL;
		if (!c) {
			free(sc);
			log_warn("s2s: cannot open a connection", "remote=%s err=%s", o->remote,
				 strerror(err ? -err : ENOMEM));
			continue;
		}
		sc->out = o;
		c->s2s = sc;
		c->domain = our_domain(w->cfg, o->local, strlen(o->local));
		/* One target may not eat the whole deadline: the next gets its turn. */
		c->due = o->deadline < w->now + w->cfg->timeouts.handshake ? o->deadline
			 : w->now + w->cfg->timeouts.handshake;
		snprintf(c->peer, sizeof(c->peer), "%.36s:%u", t->host, t->port);
		o->c = c;
		o->phase = PH_CONNECT;
		o->next_target++;
		log_debug("s2s: connecting", "local=%s remote=%s target=%s:%u direct_tls=%d", o->local,
			  o->remote, t->host, t->port, t->direct_tls);
		return;
	}
	out_fail(o, "remote-server-not-found", o->ntargets ? "no target answered" : "no target");
}

/* The stream of o ended before it was ready: try the next target. */
static void out_stream_lost(struct s2s_out *o, const char *why)
{
	o->c = NULL;
	if (o->phase == PH_READY || o->phase == PH_DONE) {
		out_free(o);   /* the next stanza opens a new stream */
		return;
	}
	log_info("s2s: target failed, trying the next", "local=%s remote=%s why=\"%s\"", o->local,
		 o->remote, why);
	out_next_target(o);
}

static struct s2s_out *out_new(struct worker *w, int purpose, const char *local, const char *remote)
{
	struct s2s_out *o = calloc(1, sizeof(*o));

	if (!o)
		return NULL;
	o->w = w;
	o->purpose = (uint8_t)purpose;
	o->local = strdup(local);
	o->remote = strdup(remote);
	o->deadline = w->now + w->cfg->s2s.connect_timeout;
	if (!o->local || !o->remote) {
		free(o->local);
		free(o->remote);
		free(o);
		return NULL;
	}
	return o;
}

void s2s_deliver(struct worker *w, const struct wire_msg *m)
{
	const struct config *cfg = w->cfg;
	struct s2s *s = state(w);
	char *local = jid_domain_dup((const char *)m->u.stanza.from.p, m->u.stanza.from.len);
	char *remote = jid_domain_dup((const char *)m->u.stanza.to.p, m->u.stanza.to.len);
	const char *cond = NULL;
	struct s2s_out **pp, *o;
	struct s2s_item *it;

	if (!s || !local || !remote || w->stop) {
		cond = !s || w->stop ? "remote-server-timeout" : "remote-server-not-found";
		goto bounce;
	}
	/* Only our own domains originate, and ours are never remote. */
	if (!our_domain(cfg, local, strlen(local)) || our_domain(cfg, remote, strlen(remote))) {
		log_warn("s2s: refusing to route", "from_domain=%s to_domain=%s", local, remote);
		cond = "service-unavailable";
		goto bounce;
	}
	pp = pair_slot(s, local, remote);
	o = pp ? *pp : NULL;
	if (o && o->phase == PH_READY && o->c && o->c->state == CS_RELAY) {
		stanza_write(o->c, m->u.stanza.raw.p, m->u.stanza.raw.len);
		goto out;
	}
	if (!o) {
		o = out_new(w, P_DELIVER, local, remote);
		if (!o || pair_insert(s, o) < 0) {
			if (o) {
				free(o->local);
				free(o->remote);
				free(o);
			}
			cond = "internal-server-error";
			goto bounce;
		}
		log_info("s2s: new outbound stream", "local=%s remote=%s", local, remote);
		out_resolve(o);   /* may fail at once and free o */
		pp = pair_slot(s, local, remote);
		o = pp ? *pp : NULL;
		if (!o) {
			cond = "remote-server-not-found";
			goto bounce;
		}
	}
	if (o->qbytes + m->u.stanza.raw.len > cfg->s2s.queue_bytes) {
		cond = "resource-constraint";
		goto bounce;
	}
	it = item_new(m);
	if (!it) {
		cond = "resource-constraint";
		goto bounce;
	}
	if (o->qtail)
		o->qtail->next = it;
	else
		o->qhead = it;
	o->qtail = it;
	o->qbytes += m->u.stanza.raw.len;
	goto out;
bounce:
	route_bounce(w, m->u.stanza.kind, m->u.stanza.type, m->u.stanza.to, m->u.stanza.from,
		     m->u.stanza.id, cond);
out:
	free(local);
	free(remote);
}

/* ---- the outbound stream (role_s2s_out) ---------------------------------------- */

/* The domain whose certificate we present: the local one, or for a
 * component's stream (components federate under their own domain, which has
 * no certificate here) the first served domain — the peer then falls back to
 * dialback, which proves the component's domain. */
static const char *tls_local(const struct conn *c)
{
	const struct config *cfg = c->w->cfg;
	const char *local = c->s2s->out->local;

	for (size_t i = 0; i < cfg->ndomains; i++)
		if (!strcmp(cfg->domains[i].name, local))
			return local;
	return cfg->domains[0].name;
}

static void out_open(struct conn *c)
{
	struct s2s_out *o = c->s2s->out;
	char attrs[1800];

	snprintf(attrs, sizeof(attrs), DB_DECL " from='%s' to='%s'", o->local, o->remote);
	xmpp_open(c, attrs);
}

static void out_secured(struct conn *c)
{
	struct s2s_out *o = c->s2s ? c->s2s->out : NULL;

	if (!o) {
		xmpp_end(c, WIRE_CLOSE_NORMAL);
		return;
	}
	out_open(c);
}

static void out_connected(struct conn *c, int res)
{
	struct s2s_out *o = c->s2s ? c->s2s->out : NULL;

	if (res < 0 || !o)
		return;   /* closing: ended() moves on to the next target */
	c->due = o->deadline;   /* connected: the stream has until the pair's deadline */
	conn_timer(c, c->due);
	if (o->direct_tls) {
		if (!xprt_tls_client_s2s(c, tls_local(c), o->remote, true, out_secured))
			xmpp_abort(c);
		return;
	}
	xmpp_transport_ready(c);
	out_open(c);
}

static int out_header(struct conn *c, const struct xs_header *h)
{
	struct s2s_conn *sc = c->s2s;
	struct s2s_out *o = sc ? sc->out : NULL;

	if (!o) {
		xmpp_end(c, WIRE_CLOSE_NORMAL);
		return STOP_DISCARD;
	}
	snprintf(sc->id, sizeof(sc->id), "%.*s", (int)(h->id.len < sizeof(sc->id) ? h->id.len : 0), h->id.p);
	if (!xmpp_set_state(c, CS_NEGOTIATE)) {
		xmpp_error(c, "internal-server-error", NULL);
		return STOP_DISCARD;
	}
	o->phase = PH_STREAM;
	return GO_ON;
}

static void send_db_result(struct conn *c, struct s2s_out *o)
{
	char key[DB_KEY_HEX + 1], buf[2600];

	/* We are the originating server: the key names the receiving one. */
	if (!c->s2s->id[0] || dialback_key(db_secret, o->remote, o->local, c->s2s->id, key) < 0) {
		xmpp_error(c, "invalid-id", NULL);
		return;
	}
	snprintf(buf, sizeof(buf), "<db:result from='%s' to='%s'>%s</db:result>", o->local, o->remote, key);
	xmpp_outs(c, buf);
	o->phase = PH_DIALBACK;
}

/* Features of the peer's stream: secure it, then authenticate. */
static int out_features(struct conn *c, struct s2s_out *o, const uint8_t *p, size_t n)
{
	char why[256];
	const struct config *cfg = c->w->cfg;
	struct xtree *t = xtree_parse((const char *)p, n, c->hdr_decls, NULL, NULL);
	const struct xtree_node *f = t ? xtree_root(t) : NULL, *mechs, *m;
	bool starttls = f && xtree_child(f, NS_TLS, "starttls");
	bool dialback = f && (xtree_child(f, NS_DB_FEATURE, "dialback") || (c->hdr_decls &&
			       strstr(c->hdr_decls, NS_DIALBACK)));
	bool external = false;

	if (f && (mechs = xtree_child(f, NS_SASL, "mechanisms")))
		for (m = xtree_child(mechs, NS_SASL, "mechanism"); m; m = xtree_next(m, NS_SASL, "mechanism"))
			if (!strcmp(xtree_text(m), "EXTERNAL"))
				external = true;
	xtree_free(t);
	if (!f) {
		xmpp_error(c, "not-well-formed", NULL);
		return STOP_DISCARD;
	}
	if (!(c->flags & CF_TLS)) {
		if (starttls) {
			xmpp_outs(c, "<starttls xmlns='" NS_TLS "'/>");
			return GO_ON;
		}
		if (o->purpose == P_DELIVER) {
			log_warn("s2s: peer offers no STARTTLS; refusing to send stanzas unencrypted",
				 "remote=%s", o->remote);
			xmpp_end(c, WIRE_CLOSE_ERROR);
			return STOP_DISCARD;
		}
	}
	if (o->purpose == P_VERIFY) {
		char buf[3200];
		snprintf(buf, sizeof(buf), "<db:verify from='%s' to='%s' id='%s'>%s</db:verify>", o->local,
			 o->remote, o->sid, o->key);
		xmpp_outs(c, buf);
		o->phase = PH_DIALBACK;
		return GO_ON;
	}
	if (o->sasl_done) {
		/* Features after SASL success: the stream is ours. */
		out_ready(o, "SASL EXTERNAL");
		return GO_ON;
	}
	{
		const struct tls *tls = xprt_tls_peer(c);
		bool valid = tls && tls_peer_chain_ok(tls) && tls_peer_has_id(tls, o->remote);
		if (!valid && cfg->s2s.require_valid_certs) {
			log_warn("s2s: remote certificate does not verify, and s2s.require_valid_certs is on",
				 "remote=%s why=\"%s\"", o->remote, peer_why(tls, o->remote, why, sizeof(why)));
			xmpp_end(c, WIRE_CLOSE_ERROR);
			return STOP_DISCARD;
		}
	}
	if (external && !o->external_failed) {
		char b64[1400], buf[1600];
		long bn = crypto_b64_encode(o->local, strlen(o->local), b64, sizeof(b64));
		snprintf(buf, sizeof(buf), "<auth xmlns='" NS_SASL "' mechanism='EXTERNAL'>%s</auth>",
			 bn > 0 ? b64 : "=");
		xmpp_outs(c, buf);
		o->phase = PH_AUTH;
		xmpp_set_state(c, CS_SASL);
		return GO_ON;
	}
	if (dialback && cfg->s2s.dialback) {
		send_db_result(c, o);
		return GO_ON;
	}
	log_warn("s2s: no way to authenticate to the peer", "remote=%s external=%d dialback_offered=%d "
		 "dialback_enabled=%d", o->remote, external, dialback, cfg->s2s.dialback);
	xmpp_end(c, WIRE_CLOSE_ERROR);
	return STOP_DISCARD;
}

static int out_element(struct conn *c, const struct xs_stanza *s, const uint8_t *p, size_t n)
{
	struct s2s_out *o = c->s2s ? c->s2s->out : NULL;

	if (!o) {
		xmpp_end(c, WIRE_CLOSE_NORMAL);
		return STOP_DISCARD;
	}
	if (xs_streq(&s->ns, NS_STREAMS) && xs_streq(&s->local, "error")) {
		log_warn("s2s: the remote server sent a stream error", "remote=%s cond=%.*s", o->remote,
			 (int)s->child_local.len, s->child_local.p);
		xmpp_end(c, WIRE_CLOSE_ERROR);
		return STOP_DISCARD;
	}
	if (xs_streq(&s->ns, NS_STREAMS) && xs_streq(&s->local, "features"))
		return out_features(c, o, p, n);
	if (xs_streq(&s->ns, NS_TLS) && xs_streq(&s->local, "proceed") && !(c->flags & CF_TLS)) {
		c->flags &= ~CF_HEADER_SENT;
		if (!xmpp_set_state(c, CS_STARTTLS) ||
		    !xprt_tls_client_s2s(c, tls_local(c), o->remote, false, out_secured)) {
			xmpp_abort(c);
			return STOP_DISCARD;
		}
		return STOP_DISCARD;   /* TLS follows, never XML */
	}
	if (xs_streq(&s->ns, NS_SASL) && o->phase == PH_AUTH) {
		if (xs_streq(&s->local, "success")) {
			o->sasl_done = true;
			xmpp_restart(c);
			out_open(c);
			return GO_ON;
		}
		log_info("s2s: the peer refused SASL EXTERNAL; dialback next", "remote=%s", o->remote);
		o->external_failed = true;
		if (!c->w->cfg->s2s.dialback) {
			xmpp_end(c, WIRE_CLOSE_ERROR);
			return STOP_DISCARD;
		}
		xmpp_set_state(c, CS_NEGOTIATE);
		send_db_result(c, o);
		return GO_ON;
	}
	if (xs_streq(&s->ns, NS_DIALBACK) && o->phase == PH_DIALBACK) {
		struct db_elem *d = malloc(sizeof(*d));
		int r = d ? dialback_parse((const char *)p, n, c->hdr_decls, d) : DB_E_XML;
		int kind = d ? d->kind : 0, type = d ? d->type : 0;
		bool ours = r == DB_OK && !strcmp(d->from, o->remote) && !strcmp(d->to, o->local) &&
			    (kind != DB_VERIFY || !strcmp(d->id, o->sid));
		char cond[32];

		snprintf(cond, sizeof(cond), "%s", d && d->cond[0] ? d->cond : "remote-server-not-found");
		free(d);
		if (r != DB_OK) {
			xmpp_error(c, dialback_error_str(r), NULL);
			return STOP_DISCARD;
		}
		if (ours && type != DB_REQUEST && o->purpose == P_VERIFY && kind == DB_VERIFY) {
			verify_report(o, type == DB_VALID ? 1 : type == DB_INVALID ? 0 : -1, cond);
			o->phase = PH_DONE;
			xmpp_end(c, WIRE_CLOSE_NORMAL);   /* ended() frees o */
			return STOP_DISCARD;
		}
		if (ours && type != DB_REQUEST && o->purpose == P_DELIVER && kind == DB_RESULT) {
			if (type == DB_VALID) {
				out_ready(o, "dialback");
				return GO_ON;
			}
			log_warn("s2s: the remote server refused our dialback", "remote=%s answer=%s cond=%s",
				 o->remote, type == DB_INVALID ? "invalid" : "error", cond);
			xmpp_end(c, WIRE_CLOSE_ERROR);
			return STOP_DISCARD;
		}
	}
	/* Anything else on our outbound stream (we do not do XEP-0288
	 * bidirectional streams) is ignored. */
	log_debug("s2s: element ignored on an outbound stream", "remote=%s element=%.*s", o->remote,
		  (int)s->local.len, s->local.p);
	return GO_ON;
}

static void out_ended(struct conn *c, int reason)
{
	struct s2s_conn *sc = c->s2s;
	struct s2s_out *o = sc ? sc->out : NULL;

	if (!o)
		return;
	sc->out = NULL;
	if (o->c != c)
		return;
	if (o->purpose == P_VERIFY && o->phase != PH_DONE) {
		o->c = NULL;
		if (o->next_target < o->ntargets) {
			out_next_target(o);
			return;
		}
		out_fail(o, "remote-server-not-found", "verification stream ended");
		return;
	}
	if (o->phase == PH_DONE) {
		o->c = NULL;
		out_free(o);
		return;
	}
	out_stream_lost(o, reason == WIRE_CLOSE_NORMAL ? "stream closed" : "stream failed");
}

static void s2s_conn_free(struct conn *c)
{
	struct s2s_conn *sc = c->s2s;

	if (!sc)
		return;
	if (sc->out && sc->out->c == c) {
		struct s2s_out *o = sc->out;
		sc->out = NULL;
		o->c = NULL;
		if (o->phase == PH_READY || o->phase == PH_DONE)
			out_free(o);
		else
			out_next_target(o);
	}
	for (unsigned i = 0; i < sc->nauth; i++)
		free(sc->auth[i].remote);
	free(sc->from);
	free(sc);
	c->s2s = NULL;
}

static uint32_t s2s_idle(const struct conn *c)
{
	return c->w->cfg->s2s.idle_timeout;
}

const struct role_ops role_s2s_out = {
	.name = "s2s-out",
	.ns = NS_SERVER,
	.own_prefix = "<db:",
	.header = out_header,
	.element = out_element,
	.ended = out_ended,
	.free = s2s_conn_free,
	.connected = out_connected,
	.idle = s2s_idle,
};

/* ---- verification (we are the receiving server) -------------------------------- */

static struct conn *conn_by_slot(struct worker *w, uint32_t idx, uint32_t gen)
{
	struct conn *c = idx < w->nslots ? w->slots[idx] : NULL;

	return c && c->gen == gen && c->state != CS_CLOSING ? c : NULL;
}

static void auth_add(struct conn *c, const char *local, const char *remote)
{
	struct s2s_conn *sc = c->s2s;

	for (unsigned i = 0; i < sc->nauth; i++)
		if (sc->auth[i].local == local && !strcmp(sc->auth[i].remote, remote))
			return;
	if (sc->nauth < S2S_MAX_PAIRS && (sc->auth[sc->nauth].remote = strdup(remote))) {
		sc->auth[sc->nauth].local = local;
		sc->nauth++;
	}
	c->flags |= CF_AUTHED;
	if (c->state != CS_RELAY)
		xmpp_set_state(c, CS_RELAY);
	c->due = 0;
	c->last_rx = c->w->now;
}

/* Our answer to the peer's <db:result>. */
static void db_answer(struct conn *c, const char *local, const char *remote, int valid, const char *cond)
{
	char buf[2600];

	if (valid > 0) {
		snprintf(buf, sizeof(buf), "<db:result from='%s' to='%s' type='valid'/>", local, remote);
		auth_add(c, local, remote);
		log_info("s2s: inbound stream authenticated", "conn=%u local=%s remote=%s auth=dialback",
			 c->idx, local, remote);
	} else if (valid == 0) {
		snprintf(buf, sizeof(buf), "<db:result from='%s' to='%s' type='invalid'/>", local, remote);
		log_warn("s2s: dialback key invalid", "conn=%u local=%s remote=%s", c->idx, local, remote);
	} else {
		snprintf(buf, sizeof(buf), "<db:result from='%s' to='%s' type='error'><error type='%s'><%s "
			 "xmlns='" NS_STANZAS "'/></error></db:result>", local, remote,
			 !strcmp(cond, "remote-server-timeout") ? "wait" : "cancel", cond);
	}
	xmpp_outs(c, buf);
}

static void verify_report(struct s2s_out *o, int valid, const char *cond)
{
	struct conn *c = conn_by_slot(o->w, o->in_idx, o->in_gen);
	const char *local;

	if (!c || !c->s2s)
		return;
	if (c->s2s->npending)
		c->s2s->npending--;
	local = our_domain(c->w->cfg, o->local, strlen(o->local));
	if (local)
		db_answer(c, local, o->remote, valid, cond ? cond : "remote-server-not-found");
	o->in_idx = UINT32_MAX;
}

/* <db:result from='remote' to='local'>key</db:result> on an inbound stream. */
static int in_db_result(struct conn *c, const struct db_elem *d)
{
	char why[256];
	const struct config *cfg = c->w->cfg;
	struct s2s_conn *sc = c->s2s;
	const char *local = our_domain(cfg, d->to, strlen(d->to));
	const struct tls *tls = xprt_tls_peer(c);
	struct s2s_out *o;
	struct s2s *st;

	if (!local) {
		xmpp_error(c, "host-unknown", NULL);
		return STOP_DISCARD;
	}
	/* XEP-0344: a certificate valid for the domain proves it already. */
	if (tls && tls_peer_chain_ok(tls) && tls_peer_has_id(tls, d->from)) {
		db_answer(c, local, d->from, 1, NULL);
		return GO_ON;
	}
	if (cfg->s2s.require_valid_certs || !cfg->s2s.dialback) {
		log_warn("s2s: dialback refused: the peer's certificate does not verify", "conn=%u "
			 "remote=%s why=\"%s\"", c->idx, d->from, peer_why(tls, d->from, why, sizeof(why)));
		db_answer(c, local, d->from, -1, "not-authorized");
		return GO_ON;
	}
	if (sc->npending >= S2S_MAX_PENDING) {
		xmpp_error(c, "policy-violation", "too many dialback requests at once");
		return STOP_DISCARD;
	}
	st = state(c->w);
	o = st ? out_new(c->w, P_VERIFY, local, d->from) : NULL;
	if (!o || !(o->key = strdup(d->key)) || !(o->sid = strdup(sc->id))) {
		if (o)
			out_free(o);
		xmpp_error(c, "internal-server-error", NULL);
		return STOP_DISCARD;
	}
	o->in_idx = c->idx;
	o->in_gen = c->gen;
	o->next = st->verifies;
	st->verifies = o;
	sc->npending++;
	log_info("s2s: verifying a dialback key with the authoritative server", "conn=%u local=%s remote=%s",
		 c->idx, o->local, o->remote);
	out_resolve(o);
	return GO_ON;
}

/* <db:verify from='receiving' to='ours' id='...'>key</db:verify>: we are the
 * authoritative server; the key says it all. */
static int in_db_verify(struct conn *c, const struct db_elem *d)
{
	const char *local = our_domain(c->w->cfg, d->to, strlen(d->to));
	char want[DB_KEY_HEX + 1], *eid, buf[3200];
	bool valid;

	if (!local) {
		xmpp_error(c, "host-unknown", NULL);
		return STOP_DISCARD;
	}
	valid = dialback_key(db_secret, d->from, local, d->id, want) == 0 &&
		strlen(d->key) == DB_KEY_HEX && crypto_equal(want, d->key, DB_KEY_HEX);
	eid = xmpp_esc_dup(d->id, strlen(d->id));
	if (eid) {
		snprintf(buf, sizeof(buf), "<db:verify from='%s' to='%s' id='%s' type='%s'/>", local, d->from,
			 eid, valid ? "valid" : "invalid");
		xmpp_outs(c, buf);
	}
	free(eid);
	log_info("s2s: dialback key checked for a receiving server", "conn=%u local=%s receiving=%s "
		 "valid=%d", c->idx, local, d->from, valid);
	return GO_ON;
}

/* A dialback request on an inbound stream. */
static int in_dialback(struct conn *c, const uint8_t *p, size_t n)
{
	struct db_elem *d = malloc(sizeof(*d));
	int r;

	if (!d) {
		xmpp_error(c, "internal-server-error", NULL);
		return STOP_DISCARD;
	}
	r = dialback_parse((const char *)p, n, c->hdr_decls, d);
	if (r == DB_OK && d->type != DB_REQUEST)
		r = DB_E_TYPE;   /* answers belong on our own streams */
	if (r != DB_OK)
		xmpp_error(c, dialback_error_str(r), NULL);
	else
		r = d->kind == DB_RESULT ? in_db_result(c, d) : in_db_verify(c, d);
	free(d);
	return r < 0 ? STOP_DISCARD : r;
}

/* ---- the inbound stream (role_s2s_in) -------------------------------------------- */

static void in_features(struct conn *c)
{
	const struct config *cfg = c->w->cfg;
	const struct tls *tls = xprt_tls_peer(c);
	struct s2s_conn *sc = c->s2s;
	char buf[600];
	int n = 0;

	if (!(c->flags & CF_TLS)) {
		xmpp_outs(c, "<stream:features><starttls xmlns='" NS_TLS "'><required/></starttls>"
			  "</stream:features>");
		return;
	}
	n += snprintf(buf + n, sizeof(buf) - (size_t)n, "<stream:features>");
	if (!(c->flags & CF_AUTHED) && sc->from && tls && tls_peer_chain_ok(tls) &&
	    tls_peer_has_id(tls, sc->from))
		n += snprintf(buf + n, sizeof(buf) - (size_t)n, "<mechanisms xmlns='" NS_SASL "'>"
			      "<mechanism>EXTERNAL</mechanism></mechanisms>");
	if (cfg->s2s.dialback)
		n += snprintf(buf + n, sizeof(buf) - (size_t)n, "<dialback xmlns='" NS_DB_FEATURE
			      "'><errors/></dialback>");
	snprintf(buf + n, sizeof(buf) - (size_t)n, "</stream:features>");
	xmpp_outs(c, buf);
}

static int in_header(struct conn *c, const struct xs_header *h)
{
	struct s2s_conn *sc = c->s2s;
	uint8_t rnd[12];
	char attrs[1800], *efrom = NULL;

	if (!sc && !(sc = c->s2s = calloc(1, sizeof(*sc)))) {
		xmpp_error(c, "internal-server-error", NULL);
		return STOP_DISCARD;
	}
	crypto_random(rnd, sizeof(rnd));
	for (size_t i = 0; i < sizeof(rnd); i++)
		snprintf(sc->id + 2 * i, 3, "%02x", rnd[i]);
	free(sc->from);
	sc->from = h->from.len ? jid_domain_dup(h->from.p, h->from.len) : NULL;
	if (sc->from && strlen(sc->from) <= 253)      /* a DNS name; anything longer is not echoed */
		efrom = xmpp_esc_dup(sc->from, strlen(sc->from));
	snprintf(attrs, sizeof(attrs), DB_DECL " id='%s' from='%s'%s%s%s", sc->id, xmpp_domain(c),
		 efrom ? " to='" : "", efrom ? efrom : "", efrom ? "'" : "");
	free(efrom);
	xmpp_open(c, attrs);
	/* A stream restarted after SASL EXTERNAL is authenticated already. */
	if (!xmpp_set_state(c, (c->flags & CF_AUTHED) ? CS_RELAY : CS_NEGOTIATE)) {
		xmpp_error(c, "internal-server-error", NULL);
		return STOP_DISCARD;
	}
	in_features(c);
	return GO_ON;
}

/* XEP-0178: <auth mechanism='EXTERNAL'>: the certificate is the proof. */
static int in_sasl(struct conn *c, const struct xs_stanza *s, const uint8_t *p, size_t n)
{
	char why[256];
	struct s2s_conn *sc = c->s2s;
	const struct tls *tls = xprt_tls_peer(c);
	struct xtree *t = xtree_parse((const char *)p, n, c->hdr_decls, NULL, NULL);
	const struct xtree_node *a = t ? xtree_root(t) : NULL;
	const char *mech = a ? xtree_attr(a, "mechanism") : NULL;
	const char *text = a ? xtree_text(a) : "";
	char *authz = NULL;
	const char *local = xmpp_domain(c);

	if (!xs_streq(&s->local, "auth") || !mech || strcmp(mech, "EXTERNAL") != 0 ||
	    (c->flags & CF_AUTHED)) {
		xtree_free(t);
		xmpp_outs(c, "<failure xmlns='" NS_SASL "'><invalid-mechanism/></failure>");
		return GO_ON;
	}
	if (text[0] && strcmp(text, "=") != 0) {
		uint8_t d[JID_PART_MAX + 1];
		long dn = crypto_b64_decode(text, strlen(text), d, sizeof(d) - 1);
		if (dn > 0)
			authz = jid_domain_dup((const char *)d, (size_t)dn);
		if (!authz) {
			xtree_free(t);
			xmpp_outs(c, "<failure xmlns='" NS_SASL "'><incorrect-encoding/></failure>");
			return GO_ON;
		}
	}
	xtree_free(t);
	if (!authz && sc->from)
		authz = strdup(sc->from);
	if (!authz || !tls || !tls_peer_chain_ok(tls) || !tls_peer_has_id(tls, authz) ||
	    (sc->from && strcmp(authz, sc->from) != 0)) {
		log_warn("s2s: SASL EXTERNAL refused", "conn=%u authzid=%s why=\"%s\"", c->idx,
			 authz ? authz : "-", peer_why(tls, authz, why, sizeof(why)));
		free(authz);
		xmpp_outs(c, "<failure xmlns='" NS_SASL "'><not-authorized/></failure>");
		return GO_ON;
	}
	xmpp_outs(c, "<success xmlns='" NS_SASL "'/>");
	auth_add(c, local, authz);
	log_info("s2s: inbound stream authenticated", "conn=%u local=%s remote=%s auth=SASL-EXTERNAL",
		 c->idx, local, authz);
	free(authz);
	xmpp_restart(c);
	return STOP_KEEP;
}

/* A stanza from the peer: its addresses must fit a pair it authenticated. */
static int in_stanza(struct conn *c, const struct xs_stanza *s, const uint8_t *p, size_t n)
{
	struct s2s_conn *sc = c->s2s;
	const char *local;
	char *remote;
	bool ok = false;

	if (!s->has_to || !s->has_from || !s->to.len || !s->from.len) {
		xmpp_error(c, "improper-addressing", NULL);
		return STOP_DISCARD;
	}
	{
		struct jid_view v;
		local = jid_parse(s->to.p, s->to.len, &v) == 0 ? our_domain(c->w->cfg, v.domain, v.domain_len)
		      : NULL;
	}
	remote = jid_domain_dup(s->from.p, s->from.len);
	if (!remote) {
		xmpp_error(c, "invalid-from", NULL);
		return STOP_DISCARD;
	}
	for (unsigned i = 0; i < sc->nauth && !ok; i++)
		ok = !strcmp(sc->auth[i].remote, remote);
	if (!ok) {
		free(remote);
		xmpp_error(c, "invalid-from", NULL);
		return STOP_DISCARD;
	}
	if (!local) {
		free(remote);
		xmpp_error(c, "host-unknown", NULL);
		return STOP_DISCARD;
	}
	free(remote);
	if (route_to_sm(c->w, s, p, n) < 0)
		xmpp_stanza_error(c, s, "wait", "resource-constraint", NULL);
	return GO_ON;
}

static int in_element(struct conn *c, const struct xs_stanza *s, const uint8_t *p, size_t n)
{
	if (xs_streq(&s->ns, NS_STREAMS) && xs_streq(&s->local, "error")) {
		log_info("s2s: the remote server sent a stream error", "conn=%u cond=%.*s", c->idx,
			 (int)s->child_local.len, s->child_local.p);
		xmpp_end(c, WIRE_CLOSE_ERROR);
		return STOP_DISCARD;
	}
	if (xs_streq(&s->ns, NS_TLS) && xs_streq(&s->local, "starttls") && c->state == CS_NEGOTIATE)
		return xmpp_starttls(c, !(c->flags & CF_TLS) && xprt_tls_server_s2s(c));
	if (!(c->flags & CF_TLS)) {
		xmpp_error(c, "policy-violation", "STARTTLS is required");
		return STOP_DISCARD;
	}
	if (xs_streq(&s->ns, NS_SASL))
		return in_sasl(c, s, p, n);
	if (xs_streq(&s->ns, NS_DIALBACK))
		return in_dialback(c, p, n);
	if ((xs_streq(&s->ns, NS_CLIENT) || xs_streq(&s->ns, NS_SERVER)) && route_kind(s)) {
		if (!(c->flags & CF_AUTHED)) {
			xmpp_error(c, "not-authorized", NULL);
			return STOP_DISCARD;
		}
		return in_stanza(c, s, p, n);
	}
	xmpp_error(c, "unsupported-stanza-type", NULL);
	return STOP_DISCARD;
}

static void in_ended(struct conn *c, int reason)
{
	struct s2s_conn *sc = c->s2s;

	if (sc && sc->nauth)
		log_info("s2s: inbound stream closed", "conn=%u remote=%s reason=%d", c->idx,
			 sc->auth[0].remote, reason);
}

const struct role_ops role_s2s_in = {
	.name = "s2s-in",
	.ns = NS_SERVER,
	.own_prefix = "<db:",
	.header = in_header,
	.element = in_element,
	.ended = in_ended,
	.free = s2s_conn_free,
	.served = our_domain,
	.idle = s2s_idle,
	.federated = true,
};

/* ---- the worker's part ------------------------------------------------------------ */

void s2s_worker_stop(struct worker *w)
{
	struct s2s *s = w->s2s;

	if (!s)
		return;
	while (s->verifies)
		out_fail(s->verifies, "remote-server-timeout", "the edge is shutting down");
	for (size_t i = 0; i < s->cap; i++)
		while (s->tab[i]) {
			if (s->tab[i]->qhead)
				out_fail(s->tab[i], "remote-server-timeout", "the edge is shutting down");
			else
				out_free(s->tab[i]);
		}
}

void s2s_worker_free(struct worker *w)
{
	struct s2s *s = w->s2s;

	if (!s)
		return;
	while (s->verifies)
		out_free(s->verifies);
	for (size_t i = 0; i < s->cap; i++)
		while (s->tab[i])
			out_free(s->tab[i]);
	free(s->tab);
	free(s);
	w->s2s = NULL;
}
