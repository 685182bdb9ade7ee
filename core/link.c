/*
 * link — a worker's link to its session server: wire frames over a stream
 * socket (a socketpair end when the session server is embedded, TCP or a
 * Unix socket otherwise), driven by the worker's ring.
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
#include "core/route.h"

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

static int send_hello(struct worker *w)
{
	struct wire_msg m = { .type = WIRE_HELLO };
	const char *secret = w->cfg->backend_secret;

	m.u.hello.version = WIRE_VERSION;
	m.u.hello.worker = (uint16_t)w->id;
	if (secret)
		m.u.hello.secret = wire_s(secret, strlen(secret));
	return link_send(w, &m);
}

int link_open(struct worker *w)
{
	struct link *l = &w->link;
	const struct config *cfg = w->cfg;
	int fd = w->sm_fd, r;

	l->w = w;
	if (fd < 0) {
		r = endpoint_resolve(cfg->backend_address, &l->addr, &l->addrlen);
		if (r < 0) {
			log_error("backend.address is not a numeric host:port or unix:/path",
				  "backend=%s", cfg->backend_address);
			return r;
		}
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
				  "worker=%d backend=%s err=%s", w->id, cfg->backend_address, strerror(-fd));
			return fd;
		}
	}
	l->fd = fd;
	return send_hello(w);
}

int link_send(struct worker *w, const struct wire_msg *m)
{
	struct link *l = &w->link;
	size_t need = wire_size(m);

	if (l->dead)
		return -EPIPE;
	if ((size_t)buf_used(&l->out) + need > LINK_OUT_LIMIT) {
		log_error("session server link backlog full", "worker=%d queued=%u", w->id, buf_used(&l->out));
		return -ENOBUFS;
	}
	/* Reserve room and encode in place: no intermediate copy. */
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
	if (wire_encode(m, l->out.p + l->out.len, need) != need)
		return -EINVAL;
	l->out.len += (uint32_t)need;
	return 0;
}

bool link_congested(struct worker *w)
{
	const struct link *l = &w->link;

	return (size_t)buf_used(&l->out) + buf_used(&l->tx) > LINK_HIGH;
}

/* The link drained: let the clients that were paused for it read again. */
static void link_unpause(struct worker *w)
{
	for (uint32_t i = 0; i < w->nslots && w->link_paused; i++) {
		struct conn *c = w->slots[i];
		if (c && (c->paused & PAUSE_LINK))
			conn_resume(c, PAUSE_LINK);
	}
}

void link_flush(struct worker *w)
{
	struct link *l = &w->link;
	struct io_uring_sqe *sqe;

	STAT_SET(w->st.link_queue_bytes, buf_used(&l->out) + buf_used(&l->tx));
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

void link_arm(struct worker *w)
{
	struct link *l = &w->link;
	struct io_uring_sqe *sqe;

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

static void link_fail(struct worker *w, const char *why)
{
	struct link *l = &w->link;

	if (l->dead)
		return;
	l->dead = true;
	l->up = false;
	STAT_SET(w->st.link_up, 0);
	STAT_INC(w->st.link_losses);
	if (!w->stop)
		log_error("session server link lost", "worker=%d why=\"%s\"", w->id, why);
	/* Wake the pending recv; the socket is closed once its completion is in. */
	if (l->fd >= 0)
		shutdown(l->fd, SHUT_RDWR);
	l->fails = 0;
	l->backoff_ms = 0;
	l->retry_ms = worker_ms();   /* at once: see RETRY_FAST_MS */
	native_link_down(w);
}

/* The delay after `fails` refused attempts in a row. */
static unsigned link_backoff_ms(unsigned fails)
{
	unsigned ms = RETRY_FAST_MS;

	for (unsigned i = RETRY_FAST_TRIES; i < fails && ms < RETRY_MAX_MS; i++)
		ms *= 2;
	return ms < RETRY_MAX_MS ? ms : RETRY_MAX_MS;
}

int link_retry_wait_ms(const struct worker *w, uint64_t now_ms)
{
	const struct link *l = &w->link;

	/* An operation still out on the old socket wakes the loop by itself. */
	if (!l->dead || l->connecting || l->recv_armed || l->sending || w->stop ||
	    !w->cfg->backend_address)
		return -1;
	return l->retry_ms > now_ms ? (int)(l->retry_ms - now_ms) : 0;
}

/*
 * Reconnect to an external session server once the old socket has no
 * operation left: at once, then with backoff while it keeps failing.
 * Meanwhile logins get temporary-auth-failure (link_send fails).  The connect runs on the ring,
 * so a slow network never blocks the worker.
 */
void link_tick(struct worker *w)
{
	struct link *l = &w->link;
	struct io_uring_sqe *sqe;
	int fd;

	if (!l->dead || l->connecting || l->recv_armed || l->sending || w->stop ||
	    !w->cfg->backend_address || worker_ms() < l->retry_ms)
		return;
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

void link_on_connect(struct worker *w, int res)
{
	struct link *l = &w->link;

	l->connecting = false;
	if (res < 0) {
		l->backoff_ms = link_backoff_ms(++l->fails);
		l->retry_ms = worker_ms() + l->backoff_ms;
		log_debug("session server reconnect failed", "worker=%d err=%s attempt=%u retry_in=%ums",
			  w->id, strerror(-res), l->fails, l->backoff_ms);
		return;
	}
	l->dead = false;
	log_info("session server link reconnected", "worker=%d attempts=%u", w->id, l->fails + 1);
	l->fails = 0;
	send_hello(w);
	link_arm(w);
}

void link_on_recv(struct worker *w, int res)
{
	struct link *l = &w->link;

	l->recv_armed = false;
	if (res <= 0) {
		if (res != -ECANCELED)
			link_fail(w, res == 0 ? "closed by the session server" : strerror(-res));
		return;
	}
	l->rx.len += (uint32_t)res;
	if (l->stalled) {
		l->stalled = false;
		log_info("session server answers again", "worker=%d", w->id);
	}
	for (;;) {
		struct wire_msg m;
		long n = wire_decode(buf_data(&l->rx), buf_used(&l->rx), &m);
		if (n == 0)
			break;
		if (n < 0) {
			link_fail(w, "malformed frame from the session server");
			return;
		}
		if (m.type == WIRE_HELLO_OK) {
			l->up = true;
			STAT_SET(w->st.link_up, 1);
			log_info("session server link up", "worker=%d version=%u", w->id, m.u.hello_ok.version);
			route_link_up(w);
		} else if (m.type == WIRE_ROUTE) {
			route_from_sm(w, &m);
		} else if (m.type == WIRE_PING) {
			struct wire_msg pong = { .type = WIRE_PONG, .u.ping.token = m.u.ping.token };
			link_send(w, &pong);
		} else {
			native_on_frame(w, &m);
		}
		l->rx.off += (uint32_t)n;
	}
	if (!buf_used(&l->rx))
		l->rx.off = l->rx.len = 0;
	link_arm(w);
}

void link_on_send(struct worker *w, int res)
{
	struct link *l = &w->link;

	l->sending = false;
	if (res < 0) {
		link_fail(w, strerror(-res));
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
	struct link *l = &w->link;

	if (l->fd >= 0)
		close(l->fd);
	l->fd = -1;
	l->dead = true;
	buf_reset(&l->rx);
	buf_reset(&l->out);
	buf_reset(&l->tx);
}
