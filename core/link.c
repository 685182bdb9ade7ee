/*
 * link — a worker's links to its session servers, one per shard: wire
 * frames over a stream socket (a socketpair end when the session servers are
 * embedded, TCP or a Unix socket otherwise), driven by the worker's ring.
 * A session lives on the shard that owns its bare JID (parser/shard.h).
 *
 * External session servers have a slot each in a table of CONFIG_MAX_SHARDS
 * (the shard set may change: core/members.h); a slot's address is looked up
 * again before every connect when it is a DNS name, on the offload pool.
 *
 * Frames are encoded straight into `out`; at the end of each loop iteration
 * everything queued goes out in one send (one in flight; the rest waits), so
 * a burst of stanzas costs one syscall.  Received bytes accumulate in `rx`
 * and whole frames are decoded from its front.
 */
#include "core/link.h"

#include "core/worker.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/log.h"
#include "core/chan.h"
#include "core/route.h"
#include "core/members.h"
#include "core/offload.h"
#include "core/rtx.h"
#include "parser/hostport.h"
#include "parser/jid.h"
#include "parser/shard.h"

#define LINK_RX_CHUNK (256u * 1024)
#define LINK_OUT_LIMIT (256u << 20)   /* beyond this the session server is not keeping up */
#define LINK_HIGH (8u << 20)          /* queued bytes: clients that add to it pause reading */
#define LINK_LOW (2u << 20)           /* ... and resume below this */
#define CONNECT_TRIES 100             /* x 100 ms: wait up to 10 s for a starting xedge-sm */

/* Reconnecting after a link loss: the first attempt at once (a restarted
 * session server is often back already), then every RETRY_FAST_MS for
 * RETRY_FAST_TRIES attempts, then doubling up to RETRY_MAX_MS. */
#define RETRY_FAST_MS 200
#define RETRY_FAST_TRIES 20
#define RETRY_MAX_MS 30000

/* A DNS lookup of a link's address, on the offload pool (link_tick_one):
 * run() calls getaddrinfo, done() on the worker takes the address the
 * attempt count picks.  l NULL: the link forgot it (link_close, or its slot
 * was freed); done() then only frees it. */
struct link_dns {
	struct offload_job job;
	struct link *l;
	char host[HOSTPORT_MAX];
	char port[8];
	struct sockaddr_storage ss;
	socklen_t len;
	int status;              /* 0 or -errno */
	unsigned skip;           /* failed attempts: start further down the answer */
};

int endpoint_resolve(const char *addr, struct sockaddr_storage *ss, socklen_t *len)
{
	memset(ss, 0, sizeof(*ss));
	if (strncmp(addr, "unix:", 5) == 0) {
		struct sockaddr_un *sun = (struct sockaddr_un *)ss;
		if (strlen(addr + 5) >= sizeof(sun->sun_path))
			return -ENAMETOOLONG;
		sun->sun_family = AF_UNIX;
		strcpy(sun->sun_path, addr + 5);
		*len = sizeof(*sun);
		return 0;
	}
	{
		char host[256];
		const char *colon = strrchr(addr, ':');
		struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICHOST }, *ai;
		size_t hl;

		if (!colon || (hl = (size_t)(colon - addr)) >= sizeof(host))
			return -EINVAL;
		memcpy(host, addr, hl);
		host[hl] = 0;
		if (host[0] == '[') {
			memmove(host, host + 1, hl);
			host[strcspn(host, "]")] = 0;
		}
		if (getaddrinfo(host, colon + 1, &hints, &ai) != 0)
			return -EINVAL;
		memcpy(ss, ai->ai_addr, ai->ai_addrlen);
		*len = ai->ai_addrlen;
		freeaddrinfo(ai);
		return 0;
	}
}

static int link_socket(const struct link *l)
{
	int one = 1, fd = socket(l->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd >= 0 && l->addr.ss_family != AF_UNIX)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd < 0 ? -errno : fd;
}

static int send_hello(struct link *l)
{
	struct wire_msg m = { .type = WIRE_HELLO };
	const char *secret = l->w->cfg->backend_secret;

	m.u.hello.version = WIRE_VERSION;
	m.u.hello.worker = (uint16_t)l->w->id;
	l->nsent = 0;   /* the session server counts this connection's frames from here */
	if (secret)
		m.u.hello.secret = wire_s(secret, strlen(secret));
	return link_send(l, &m);
}

/* Slot k becomes the link to the external session server name, at address
 * addr (backend.shards: the endpoint as resolved; else the name itself):
 * not connected yet (dead, due at once).  0 or -errno. */
int link_slot_set(struct worker *w, uint16_t k, const char *name, const char *addr)
{
	struct link *l = &w->links[k];
	char host[HOSTPORT_MAX];
	uint16_t port;

	memset(l, 0, sizeof(*l));
	l->w = w;
	l->shard = k;
	l->fd = -1;
	l->dead = true;
	l->retry_ms = 0;
	l->name = strdup(name);
	if (!l->name)
		return -ENOMEM;
	if (strncmp(addr, "unix:", 5) && hostport_parse(addr, host, sizeof(host), &port) == HOSTPORT_NAME) {
		l->dns = true;     /* looked up before each connect */
		return 0;
	}
	if (endpoint_resolve(addr, &l->addr, &l->addrlen) < 0) {
		log_error("backend.address or backend.shards: not host:port or unix:/path", "backend=%s", addr);
		free(l->name);
		l->name = NULL;
		return -EINVAL;
	}
	return 0;
}

/* Slot k is no longer a shard's and has no operation left: free it. */
void link_slot_free(struct worker *w, uint16_t k)
{
	struct link *l = &w->links[k];

	if (l->dns_job)
		l->dns_job->l = NULL;   /* its done() frees it */
	if (l->fd >= 0)
		close(l->fd);
	buf_reset(&l->rx);
	buf_reset(&l->out);
	buf_reset(&l->tx);
	if (l->rtx || l->wait)
		log_warn("unconfirmed frames of a removed shard dropped", "worker=%d shard=%u waiting=%u",
			 w->id, k, l->nwait);
	rtx_link_free(l);
	free(l->name);
	memset(l, 0, sizeof(*l));
	l->w = w;
	l->shard = k;
	l->fd = -1;
	l->dead = true;
}

/* The link to shard k: its chans (embedded) or a connection to
 * backend.shards[k]. */
static int link_open_one(struct worker *w, struct link *l, uint16_t k)
{
	const struct config *cfg = w->cfg;
	const char *addr = cfg->backend_shards[k];
	int fd = -1, r;

	l->w = w;
	l->shard = k;
	l->fd = -1;
	if (w->sm_chans) {
		l->cout = &w->sm_chans[2 * k];
		l->cin = &w->sm_chans[2 * k + 1];
		return send_hello(l);
	}
	r = link_slot_set(w, k, cfg->backend_shard_names[k], addr);
	if (r < 0)
		return r;
	if (l->dns)
		return 0;   /* never a blocking lookup: link_tick looks it up and connects */
	l->dead = false;
	{
		/* Start-up only: a worker has no clients yet, so waiting here
		 * for a session server that is still starting blocks no one. */
		for (int i = 0; i < CONNECT_TRIES; i++) {
			fd = link_socket(l);
			if (fd < 0)
				break;
			if (connect(fd, (struct sockaddr *)&l->addr, l->addrlen) == 0)
				break;
			r = -errno;
			close(fd);
			fd = r;
			if (fd != -ECONNREFUSED && fd != -ENOENT)
				break;
			usleep(100 * 1000);
		}
		if (fd < 0) {
			log_error("cannot reach the session server: start xedge-sm or fix backend.address",
				  "worker=%d backend=%s err=%s", w->id, addr, strerror(-fd));
			return fd;
		}
	}
	l->fd = fd;
	return send_hello(l);
}

int link_open(struct worker *w)
{
	/* External session servers: a slot for every shard there may ever be
	 * (members.c adds and removes them; a link never moves in memory, as
	 * the ring's operations point at it). */
	uint16_t n = w->nshards ? w->nshards : w->sm_chans ? 1 : 0;
	uint16_t cap = w->sm_chans ? n : CONFIG_MAX_SHARDS;
	int r;

	w->links = calloc(cap, sizeof(*w->links));
	w->shard_names = calloc(CONFIG_MAX_SHARDS, sizeof(*w->shard_names));
	if (!w->links || !w->shard_names)
		return -ENOMEM;
	for (uint16_t k = 0; k < cap; k++) {
		w->links[k].w = w;
		w->links[k].shard = k;
		w->links[k].fd = -1;
		w->links[k].dead = !w->sm_chans;
	}
	for (uint16_t k = 0; k < n; k++) {
		char idx[8];
		const char *name = w->sm_chans ? idx : w->cfg->backend_shard_names[k];

		snprintf(idx, sizeof(idx), "%u", k);
		w->shard_names[k] = shard_name_hash(name, strlen(name));
		w->owner_slot[k] = k;
	}
	w->nowners = n;
	w->nlinks = cap;
	for (uint16_t k = 0; k < n; k++)
		if ((r = link_open_one(w, &w->links[k], k)) < 0)
			return r;
	return 0;
}

struct link *link_of(struct worker *w, const char *bare, size_t n)
{
	if (!w->nowners)
		return &w->links[0];   /* no shard known yet: a dead link, logins wait */
	return &w->links[w->owner_slot[shard_owner(w->shard_names, w->nowners, bare, n)]];
}

struct link *link_first(struct worker *w)
{
	return &w->links[w->nowners ? w->owner_slot[0] : 0];
}

struct link *link_of_jid(struct worker *w, const uint8_t *jid, size_t n)
{
	char bare[JID_MAX + 1];
	struct jid_view v;
	int len;

	if (w->nowners <= 1 || n > JID_MAX || jid_parse((const char *)jid, n, &v) < 0 ||
	    (len = jid_canon(&v, false, bare, sizeof(bare))) < 0)
		return link_first(w);
	return link_of(w, bare, (size_t)len);
}

/* Room for need more bytes at the end of l->out: 0, or -ENOBUFS / -ENOMEM. */
static int out_reserve(struct link *l, size_t need)
{
	if ((size_t)buf_used(&l->out) + need > LINK_OUT_LIMIT) {
		log_error("session server link backlog full", "worker=%d shard=%u queued=%u", l->w->id,
			  l->shard, buf_used(&l->out));
		return -ENOBUFS;
	}
	if (l->out.len + need > l->out.cap) {
		size_t cap = l->out.cap ? l->out.cap : 4096;
		if (l->out.off) {
			memmove(l->out.p, l->out.p + l->out.off, l->out.len - l->out.off);
			l->out.len -= l->out.off;
			l->out.off = 0;
		}
		while (cap < l->out.len + need)
			cap *= 2;
		uint8_t *p = realloc(l->out.p, cap);
		if (!p)
			return -ENOMEM;
		l->out.p = p;
		l->out.cap = (uint32_t)cap;
	}
	return 0;
}

int link_send(struct link *l, const struct wire_msg *m)
{
	size_t need = wire_size(m);
	int r;

	if (l->dead)
		return -EPIPE;
	if ((r = out_reserve(l, need)) < 0)
		return r;
	/* Encode in place: no intermediate copy. */
	if (wire_encode(m, l->out.p + l->out.len, need) != need)
		return -EINVAL;
	l->out.len += (uint32_t)need;
	l->nsent++;
	return 0;
}

int link_send_raw(struct link *l, const uint8_t *frame, size_t len)
{
	int r;

	if (l->dead)
		return -EPIPE;
	if ((r = out_reserve(l, len)) < 0)
		return r;
	memcpy(l->out.p + l->out.len, frame, len);
	l->out.len += (uint32_t)len;
	l->nsent++;
	return 0;
}

bool link_congested(const struct link *l)
{
	return (size_t)buf_used(&l->out) + buf_used(&l->tx) > LINK_HIGH;
}

/* The links drained: let the clients that were paused for them read again. */
static void link_unpause(struct worker *w)
{
	for (uint16_t k = 0; k < w->nlinks; k++)
		if ((size_t)buf_used(&w->links[k].out) + buf_used(&w->links[k].tx) >= LINK_LOW)
			return;
	for (uint32_t i = 0; i < w->nslots && w->link_paused; i++) {
		struct conn *c = w->slots[i];
		if (c && (c->paused & PAUSE_LINK))
			conn_resume(c, PAUSE_LINK);
	}
}

static void link_flush_one(struct link *l)
{
	struct worker *w = l->w;
	struct io_uring_sqe *sqe;

	if (l->cout) {
		/* Full ring: the bytes wait for the next iteration. */
		if (buf_used(&l->out) && chan_put(l->cout, buf_data(&l->out), buf_used(&l->out)) == 0) {
			l->out.off = l->out.len = 0;
			if (w->link_paused)
				link_unpause(w);
		}
		return;
	}
	if (l->sending || l->dead)
		return;
	if (!buf_used(&l->tx)) {
		struct buf t = l->tx;
		l->tx = l->out;
		l->out = t;
	}
	if (!buf_used(&l->tx))
		return;
	sqe = io_uring_get_sqe(&w->ring);
	if (!sqe)
		return; /* next iteration */
	io_uring_prep_send(sqe, l->fd, buf_data(&l->tx), buf_used(&l->tx), MSG_NOSIGNAL);
	io_uring_sqe_set_data64(sqe, UD(l, OP_LINK_SEND));
	l->sending = true;
}

void link_flush(struct worker *w)
{
	uint64_t queued = 0;

	for (uint16_t k = 0; k < w->nlinks; k++) {
		queued += buf_used(&w->links[k].out) + buf_used(&w->links[k].tx);
		link_flush_one(&w->links[k]);
	}
	STAT_SET(w->st.link_queue_bytes, queued);
}

static void link_arm_one(struct link *l)
{
	struct worker *w = l->w;
	struct io_uring_sqe *sqe;

	if (l->cin) {
		/* One read of the worker's eventfd serves every chan: on links[0]. */
		if (l->shard != 0 || l->recv_armed || !(sqe = worker_sqe(w)))
			return;
		io_uring_prep_read(sqe, w->chan_fd, &w->chan_val, sizeof(w->chan_val), 0);
		io_uring_sqe_set_data64(sqe, UD(l, OP_LINK_RECV));
		l->recv_armed = true;
		return;
	}
	if (l->recv_armed || l->dead)
		return;
	if (l->rx.cap - l->rx.len < LINK_RX_CHUNK / 4) {
		/* make room: compact, then grow */
		size_t used = buf_used(&l->rx);
		if (l->rx.off) {
			memmove(l->rx.p, l->rx.p + l->rx.off, used);
			l->rx.off = 0;
			l->rx.len = (uint32_t)used;
		}
		if (l->rx.cap - l->rx.len < LINK_RX_CHUNK / 4) {
			size_t cap = l->rx.cap ? (size_t)l->rx.cap * 2 : LINK_RX_CHUNK;
			uint8_t *p = realloc(l->rx.p, cap);
			if (!p) {
				/* Not armed: the loop tries again each iteration. */
				log_error("out of memory for the session server link", "worker=%d", w->id);
				return;
			}
			l->rx.p = p;
			l->rx.cap = (uint32_t)cap;
		}
	}
	sqe = worker_sqe(w);
	if (!sqe)
		return; /* the loop arms it on a later iteration */
	io_uring_prep_recv(sqe, l->fd, l->rx.p + l->rx.len, l->rx.cap - l->rx.len, 0);
	io_uring_sqe_set_data64(sqe, UD(l, OP_LINK_RECV));
	l->recv_armed = true;
}

void link_arm(struct worker *w)
{
	for (uint16_t k = 0; k < w->nlinks; k++)
		link_arm_one(&w->links[k]);
}

static void link_fail(struct link *l, const char *why)
{
	struct worker *w = l->w;

	if (l->dead)
		return;
	l->dead = true;
	if (l->up)
		STAT_SET(w->st.link_up, STAT_GET(w->st.link_up) - 1);
	l->up = false;
	STAT_INC(w->st.link_losses);
	if (!w->stop)
		log_error("session server link lost", "worker=%d shard=%u why=\"%s\"", w->id, l->shard,
			  why);
	/* Wake the pending recv; the socket is closed once its completion is in. */
	if (l->fd >= 0)
		shutdown(l->fd, SHUT_RDWR);
	l->fails = 0;
	l->backoff_ms = 0;
	l->retry_ms = worker_ms();   /* at once: see RETRY_FAST_MS */
	native_link_down(l);
}

void link_retire(struct link *l)
{
	struct worker *w = l->w;

	if (l->up)
		STAT_SET(w->st.link_up, STAT_GET(w->st.link_up) - 1);
	l->up = false;
	l->leaving = true;
	if (!l->dead)
		log_info("session server link closed: no longer a shard, no session left on it",
			 "worker=%d shard=%u name=%s", w->id, l->shard, l->name ? l->name : "");
	l->dead = true;
	/* Wake the pending recv; the socket is closed with the slot. */
	if (l->fd >= 0)
		shutdown(l->fd, SHUT_RDWR);
}

bool link_quiet(const struct link *l)
{
	return !l->connecting && !l->recv_armed && !l->sending && !l->resolving;
}

/* The delay after `fails` refused attempts in a row. */
static unsigned link_backoff_ms(unsigned fails)
{
	unsigned ms = RETRY_FAST_MS;

	for (unsigned i = RETRY_FAST_TRIES; i < fails && ms < RETRY_MAX_MS; i++)
		ms *= 2;
	return ms < RETRY_MAX_MS ? ms : RETRY_MAX_MS;
}

/* A reconnect can be made on l (an external session server's, whose old
 * socket has no operation left). */
static bool link_idle_dead(const struct link *l)
{
	return l->dead && !l->connecting && !l->recv_armed && !l->sending && !l->w->stop &&
	       l->name && !l->leaving && !l->resolving && (l->addrlen || l->dns);
}

static void link_dns_run(struct offload_job *j)
{
	struct link_dns *d = (struct link_dns *)j;
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_ADDRCONFIG }, *ai, *a;
	int r = getaddrinfo(d->host, d->port, &hints, &ai);
	unsigned count = 0;

	if (r != 0) {
		d->status = r == EAI_NONAME || r == EAI_NODATA ? -ENOENT : r == EAI_AGAIN ? -EAGAIN
			    : r == EAI_MEMORY ? -ENOMEM : -EIO;
		return;
	}
	/* Several addresses (IPv6 and IPv4): one per attempt, in turn. */
	for (a = ai; a; a = a->ai_next)
		count++;
	a = ai;
	for (unsigned i = d->skip % count; i > 0; i--)
		a = a->ai_next;
	memcpy(&d->ss, a->ai_addr, a->ai_addrlen);
	d->len = a->ai_addrlen;
	d->status = 0;
	freeaddrinfo(ai);
}

/* The lookup is back: connect to what it found, at once (link_tick). */
static void link_dns_done(struct offload_job *j)
{
	struct link_dns *d = (struct link_dns *)j;
	struct link *l = d->l;

	if (!l) {
		free(d);
		return;
	}
	l->dns_job = NULL;
	l->resolving = false;
	if (d->status < 0 || j->cancelled) {
		l->retry_ms = worker_ms() + link_backoff_ms(++l->fails);
		log_warn("session server address not found", "worker=%d shard=%u name=%s err=%s attempt=%u",
			 l->w->id, l->shard, l->name, strerror(d->status < 0 ? -d->status : ECANCELED),
			 l->fails);
	} else {
		memcpy(&l->addr, &d->ss, sizeof(l->addr));
		l->addrlen = d->len;
		l->fresh = true;
		l->retry_ms = worker_ms();
	}
	free(d);
}

/* Look the link's name up on the offload pool; link_tick connects when it
 * is back. */
static void link_dns_start(struct link *l)
{
	struct worker *w = l->w;
	struct link_dns *d = calloc(1, sizeof(*d));
	uint16_t port;

	if (!d || hostport_parse(l->name, d->host, sizeof(d->host), &port) != HOSTPORT_NAME) {
		free(d);
		l->retry_ms = worker_ms() + link_backoff_ms(++l->fails);
		return;
	}
	snprintf(d->port, sizeof(d->port), "%u", port);
	d->skip = l->fails;
	d->l = l;
	d->job.run = link_dns_run;
	d->job.done = link_dns_done;
	if (offload_submit(w->offload, &w->offload_port, &d->job) < 0) {
		free(d);
		l->retry_ms = worker_ms() + link_backoff_ms(++l->fails);
		return;
	}
	l->dns_job = d;
	l->resolving = true;
}

int link_retry_wait_ms(const struct worker *w, uint64_t now_ms)
{
	int best = -1;

	/* An operation still out on an old socket wakes the loop by itself. */
	for (uint16_t k = 0; k < w->nlinks; k++) {
		const struct link *l = &w->links[k];
		int wait;

		if (!link_idle_dead(l))
			continue;
		wait = l->retry_ms > now_ms ? (int)(l->retry_ms - now_ms) : 0;
		if (best < 0 || wait < best)
			best = wait;
	}
	return best;
}

/*
 * Reconnect to an external session server once the old socket has no
 * operation left: at once, then with backoff while it keeps failing.
 * Meanwhile logins get temporary-auth-failure (link_send fails).  The connect runs on the ring,
 * so a slow network never blocks the worker.
 */
static void link_tick_one(struct link *l)
{
	struct worker *w = l->w;
	struct io_uring_sqe *sqe;
	int fd;

	if (!link_idle_dead(l) || worker_ms() < l->retry_ms)
		return;
	if (l->dns && !l->fresh) {
		/* A name: where it points now (a restarted pod has a new address). */
		link_dns_start(l);
		return;
	}
	l->fresh = false;
	if (l->fd >= 0)
		close(l->fd);
	l->fd = -1;
	buf_reset(&l->rx);
	buf_reset(&l->out);
	buf_reset(&l->tx);
	fd = link_socket(l);
	if (fd < 0) {
		l->retry_ms = worker_ms() + link_backoff_ms(++l->fails);
		return;
	}
	sqe = io_uring_get_sqe(&w->ring);
	if (!sqe) {
		close(fd);
		return;
	}
	l->fd = fd;
	io_uring_prep_connect(sqe, fd, (struct sockaddr *)&l->addr, l->addrlen);
	io_uring_sqe_set_data64(sqe, UD(l, OP_LINK_CONNECT));
	l->connecting = true;
}

void link_tick(struct worker *w)
{
	for (uint16_t k = 0; k < w->nlinks; k++)
		link_tick_one(&w->links[k]);
	members_tick(w);
}

void link_on_connect(struct link *l, int res)
{
	struct worker *w = l->w;

	l->connecting = false;
	if (l->leaving) {
		l->dead = true;   /* no longer a shard's: members_tick frees it */
		return;
	}
	if (res < 0) {
		l->backoff_ms = link_backoff_ms(++l->fails);
		l->retry_ms = worker_ms() + l->backoff_ms;
		log_debug("session server reconnect failed", "worker=%d shard=%u err=%s attempt=%u "
			  "retry_in=%ums", w->id, l->shard, strerror(-res), l->fails, l->backoff_ms);
		return;
	}
	l->dead = false;
	log_info("session server link reconnected", "worker=%d shard=%u attempts=%u", w->id, l->shard,
		 l->fails + 1);
	l->fails = 0;
	send_hello(l);
	link_arm_one(l);
}

/* Act on the whole frames at p[0..len): the bytes they took, or -1 after a
 * malformed one (the link failed). */
static long link_frames(struct link *l, const uint8_t *p, size_t len)
{
	struct worker *w = l->w;
	size_t off = 0;

	if (l->stalled) {
		l->stalled = false;
		log_info("session server answers again", "worker=%d shard=%u", w->id, l->shard);
	}
	for (;;) {
		struct wire_msg m;
		long n = wire_decode(p + off, len - off, &m);
		if (n == 0)
			break;
		if (n < 0) {
			link_fail(l, "malformed frame from the session server");
			return -1;
		}
		if (m.type == WIRE_HELLO_OK) {
			if (!l->up)
				STAT_SET(w->st.link_up, STAT_GET(w->st.link_up) + 1);
			l->up = true;
			log_info("session server link up", "worker=%d shard=%u version=%u", w->id, l->shard,
				 m.u.hello_ok.version);
			route_link_up(l);
			rtx_link_up(l);
			native_link_up(l);
		} else if (m.type == WIRE_ROUTE) {
			route_from_sm(l, &m);
		} else if (m.type == WIRE_HANDLED) {
			rtx_confirm(l, m.u.handled.count);
		} else if (m.type == WIRE_PONG) {
			members_pong(l, &m);
		} else if (m.type == WIRE_PING) {
			struct wire_msg pong = { .type = WIRE_PONG, .u.ping.token = m.u.ping.token };
			link_send(l, &pong);
		} else {
			native_on_frame(l, &m);
		}
		off += (size_t)n;
	}
	return (long)off;
}

/* The worker's eventfd fired: every chunk the shards sent, in order per shard. */
static void link_chan_input(struct worker *w)
{
	for (uint16_t k = 0; k < w->nlinks; k++) {
		struct link *l = &w->links[k];
		struct chan_chunk *c;

		while ((c = chan_get(l->cin))) {
			/* A chunk holds whole frames: the sm flushes only those. */
			if (link_frames(l, c->data, c->len) != (long)c->len)
				log_error("partial frame from an embedded shard", "worker=%d shard=%u", w->id,
					  l->shard);
			free(c);
		}
	}
}

void link_on_recv(struct link *l, int res)
{
	long n;

	l->recv_armed = false;
	if (l->cin) {
		if (res < 0 && res != -ECANCELED && res != -EINTR && res != -EAGAIN)
			log_error("embedded shards' eventfd read failed", "worker=%d err=%s", l->w->id,
				  strerror(-res));
		if (res != -ECANCELED)
			link_chan_input(l->w);
		link_arm_one(l);
		return;
	}
	if (res <= 0) {
		if (res != -ECANCELED)
			link_fail(l, res == 0 ? "closed by the session server" : strerror(-res));
		return;
	}
	l->rx.len += (uint32_t)res;
	n = link_frames(l, buf_data(&l->rx), buf_used(&l->rx));
	if (n < 0)
		return;
	l->rx.off += (uint32_t)n;
	if (!buf_used(&l->rx))
		l->rx.off = l->rx.len = 0;
	link_arm_one(l);
}

void link_on_send(struct link *l, int res)
{
	struct worker *w = l->w;

	l->sending = false;
	if (res < 0) {
		link_fail(l, strerror(-res));
		return;
	}
	l->tx.off += (uint32_t)res;
	if (l->tx.off >= l->tx.len)
		l->tx.off = l->tx.len = 0; /* keep the memory: the link is always busy */
	if (w->link_paused && (size_t)buf_used(&l->out) + buf_used(&l->tx) < LINK_LOW)
		link_unpause(w);
}

void link_close(struct worker *w)
{
	for (uint16_t k = 0; k < w->nlinks; k++) {
		struct link *l = &w->links[k];

		if (l->fd >= 0)
			close(l->fd);
		l->fd = -1;
		l->dead = true;
		if (l->dns_job)
			l->dns_job->l = NULL;
		free(l->name);
		l->name = NULL;
		buf_reset(&l->rx);
		buf_reset(&l->out);
		buf_reset(&l->tx);
		rtx_link_free(l);
	}
	free(w->links);
	free(w->shard_names);
	w->links = NULL;
	w->shard_names = NULL;
	w->nlinks = 0;
}
