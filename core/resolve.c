/*
 * resolve — see resolve.h for the contract.
 *
 * The thread.  One c-ares channel, driven by poll(): the sockets c-ares
 * reports through its socket-state callback, plus an eventfd that
 * resolve_s2s(), resolve_cancel() and resolver_stop() write to; the poll
 * timeout is ares_timeout()'s.  Everything c-ares calls back runs on this
 * thread, so the per-request state (struct resolve_op) needs no lock.
 *
 * A request becomes a resolve_op when the thread takes it from the queue.
 * The op owns the c-ares queries (their callbacks point into it) and counts
 * them (pending); it moves SRV -> ADDR -> done, each step starting when the
 * last query of the previous one has called back.  c-ares may call back
 * from inside the call that starts a query (a name in /etc/hosts, an error):
 * a step holds one extra count while it starts its queries, so it never
 * completes under its own feet.
 *
 * Answering is separate from freeing: the request goes back to its port
 * (offload_post, woken from this thread's own small ring) as soon as its
 * answer is known, or when it is cancelled, and op->q becomes NULL; the op
 * itself is freed when its last query has called back.  So a cancelled
 * request is answered at once, while c-ares may still be waiting for the
 * DNS server; those late callbacks touch only the op.
 */
#include "core/resolve.h"

#include <ares.h>
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <errno.h>
#include <liburing.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "core/log.h"

enum op_stage {
	OP_SRV,      /* the two SRV queries */
	OP_ADDR,     /* A/AAAA of every SRV target, or of the domain (fallback) */
};

struct resolve_op;

struct op_srv {                   /* one SRV query's callback argument */
	struct resolve_op *op;
	bool direct_tls;
};

struct op_addr {                  /* one getaddrinfo's callback argument and result */
	struct resolve_op *op;
	struct ares_addrinfo *ai;
	int status;                   /* -errno */
};

struct resolve_op {
	struct resolver *r;
	struct resolve_req *q;        /* NULL once answered */
	struct resolve_op *prev, *next;  /* r->ops */
	unsigned pending;             /* c-ares queries not yet called back (+1 while starting) */
	enum op_stage stage;
	bool fallback;                /* set.rec[0] is the domain itself, port 5269 */
	struct op_srv srvq[2];
	struct resolve_srv_set set;
	struct op_addr addr[RESOLVE_SRV_MAX];
	size_t naddr;
};

struct rsock {                    /* a socket c-ares wants watched */
	int fd;
	short events;
};

struct resolver {
	pthread_t tid;
	bool started;
	ares_channel ch;
	bool ch_ok;
	struct io_uring ring;         /* the thread's: MSG_RING wake-ups only */
	bool ring_ok;
	int efd;
	pthread_mutex_t lock;
	struct resolve_req *head, *tail;  /* submitted, not taken yet (lock) */
	unsigned inflight;            /* submitted, not answered yet (lock) */
	bool stop;                    /* (lock) */
	int cancels;                  /* atomic: resolve_cancel since the last scan */
	/* the thread's own */
	struct resolve_op *ops;
	struct rsock *socks;
	size_t nsocks, capsocks;
	struct pollfd *pfd;           /* the eventfd, then socks; grown by the loop only */
	size_t cappfd;
	bool stopping;
};

/* ---- the pure part ----------------------------------------------------- */

bool resolve_name_ok(const char *name)
{
	size_t len = 0, label = 0;

	for (const char *p = name; *p; p++, len++) {
		char c = *p;

		if (len >= RESOLVE_NAME_MAX)
			return false;
		if (c == '.') {
			if (label == 0)
				return false;   /* empty label, leading dot, ".." */
			label = 0;
			continue;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_'))
			return false;
		if (++label > 63)
			return false;
	}
	return len > 0 && label > 0;   /* no final dot: callers pass names as in JIDs */
}

void resolve_srv_offer(struct resolve_srv_set *set, const struct resolve_srv *rec)
{
	size_t worst = 0;

	if (rec->port == 0 || !resolve_name_ok(rec->host)) {
		set->skipped++;
		return;
	}
	if (set->n < RESOLVE_SRV_MAX) {
		set->rec[set->n++] = *rec;
		return;
	}
	/* Full: keep the lowest priorities.  The last of the worst goes, so
	 * records of one priority are kept in the order they came. */
	set->skipped++;
	for (size_t i = 1; i < set->n; i++)
		if (set->rec[i].priority >= set->rec[worst].priority)
			worst = i;
	if (rec->priority >= set->rec[worst].priority)
		return;
	memmove(&set->rec[worst], &set->rec[worst + 1], (set->n - worst - 1) * sizeof(*rec));
	set->rec[set->n - 1] = *rec;
}

int resolve_srv_add_answer(struct resolve_srv_set *set, const unsigned char *abuf, int alen,
			   bool direct_tls)
{
	struct ares_srv_reply *list = NULL;
	size_t count = 0;
	int st = ares_parse_srv_reply(abuf, alen, &list);

	if (st == ARES_ENODATA)
		return 0;
	if (st != ARES_SUCCESS) {
		int e = st == ARES_ENOMEM ? -ENOMEM : -EIO;   /* a malformed answer */

		if (!set->err)
			set->err = e;
		return e;
	}
	for (struct ares_srv_reply *s = list; s; s = s->next)
		count++;
	/* RFC 2782: precisely one record whose target is the root. */
	if (count == 1 && (list->host[0] == '\0' || strcmp(list->host, ".") == 0)) {
		set->dot = true;
		ares_free_data(list);
		return 0;
	}
	for (struct ares_srv_reply *s = list; s; s = s->next) {
		struct resolve_srv rec = { .priority = s->priority, .weight = s->weight,
					   .port = s->port, .direct_tls = direct_tls };
		size_t len = strlen(s->host);

		if (len >= sizeof(rec.host)) {
			set->skipped++;
			continue;
		}
		memcpy(rec.host, s->host, len + 1);
		resolve_srv_offer(set, &rec);
	}
	ares_free_data(list);
	return 0;
}

static uint32_t default_rand(void *arg, uint32_t bound)
{
	return arc4random_uniform(bound);
}

void resolve_srv_order(struct resolve_srv *rec, size_t n, resolve_rand_fn rnd, void *arg)
{
	if (!rnd)
		rnd = default_rand;
	/* Stable insertion sort by priority (n <= RESOLVE_SRV_MAX). */
	for (size_t i = 1; i < n; i++) {
		struct resolve_srv t = rec[i];
		size_t j = i;

		for (; j > 0 && rec[j - 1].priority > t.priority; j--)
			rec[j] = rec[j - 1];
		rec[j] = t;
	}
	for (size_t a = 0; a < n;) {
		size_t b = a;

		while (b < n && rec[b].priority == rec[a].priority)
			b++;
		/* rec[a..k) is ordered; pick rec[k] among rec[k..b). */
		for (size_t k = a; k + 1 < b; k++) {
			struct resolve_srv t;
			uint32_t sum = 0, run = 0, pick;
			size_t j, z = k;

			/* Zero weights first, each group in its current order. */
			for (j = k; j < b; j++) {
				if (rec[j].weight != 0)
					continue;
				t = rec[j];
				memmove(&rec[z + 1], &rec[z], (j - z) * sizeof(t));
				rec[z++] = t;
			}
			for (j = k; j < b; j++)
				sum += rec[j].weight;
			pick = rnd(arg, sum + 1);
			for (j = k; j < b; j++) {
				run += rec[j].weight;
				if (run >= pick)
					break;
			}
			if (j == b)
				j = b - 1;   /* a random source out of range: be safe */
			t = rec[j];
			memmove(&rec[k + 1], &rec[k], (j - k) * sizeof(t));
			rec[k] = t;
		}
		a = b;
	}
}

int resolve_ares_errno(int st)
{
	switch (st) {
	case ARES_SUCCESS:
		return 0;
	case ARES_ENODATA:
	case ARES_ENOTFOUND:
		return -ENOENT;
	case ARES_ETIMEOUT:
		return -ETIMEDOUT;
	case ARES_ECONNREFUSED:
		return -ECONNREFUSED;
	case ARES_ENOMEM:
		return -ENOMEM;
	case ARES_ECANCELLED:
	case ARES_EDESTRUCTION:
		return -ECANCELED;
	case ARES_EBADNAME:
		return -EINVAL;
	default:   /* SERVFAIL, REFUSED, FORMERR, a malformed answer, ... */
		return -EIO;
	}
}

/* ---- requests and their answers ----------------------------------------- */

/* An IP literal domain (RFC 7622 §3.2: IPv4 dotted quad, or IPv6 in
 * brackets): its one target.  Returns whether domain is one. */
static bool ip_literal(const char *domain, struct resolve_target *t)
{
	char buf[INET6_ADDRSTRLEN + 1];
	size_t len = strlen(domain);

	memset(t, 0, sizeof(*t));
	if (len >= 2 && domain[0] == '[' && domain[len - 1] == ']' && len - 2 < sizeof(buf)) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&t->addr;

		memcpy(buf, domain + 1, len - 2);
		buf[len - 2] = '\0';
		if (inet_pton(AF_INET6, buf, &s6->sin6_addr) != 1)
			return false;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(RESOLVE_S2S_PORT);
		t->addrlen = sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&t->addr;

		if (inet_pton(AF_INET, domain, &s4->sin_addr) != 1)
			return false;
		s4->sin_family = AF_INET;
		s4->sin_port = htons(RESOLVE_S2S_PORT);
		t->addrlen = sizeof(*s4);
	}
	memcpy(t->host, domain, len + 1);   /* len < 256: checked by resolve_s2s */
	t->port = RESOLVE_S2S_PORT;
	return true;
}

/* Answer q (its targets already set when status is 0). */
static void req_post(struct resolver *r, struct resolve_req *q, int status)
{
	q->status = status;
	pthread_mutex_lock(&r->lock);
	r->inflight--;
	pthread_mutex_unlock(&r->lock);
	offload_post(&r->ring, &q->job);
}

static void op_unlink(struct resolve_op *op)
{
	struct resolver *r = op->r;

	if (op->prev)
		op->prev->next = op->next;
	else
		r->ops = op->next;
	if (op->next)
		op->next->prev = op->prev;
}

static void op_free(struct resolve_op *op)
{
	for (size_t i = 0; i < op->naddr; i++)
		if (op->addr[i].ai)
			ares_freeaddrinfo(op->addr[i].ai);
	op_unlink(op);
	free(op);
}

static void op_answer(struct resolve_op *op, int status)
{
	if (op->q) {
		req_post(op->r, op->q, status);
		op->q = NULL;
	}
}

/* The targets of a finished ADDR step: SRV order, then address order. */
static int op_targets(struct resolve_op *op)
{
	struct resolve_req *q = op->q;
	size_t n = 0;
	int err = 0;

	for (size_t i = 0; i < op->naddr; i++) {
		const struct op_addr *a = &op->addr[i];
		size_t k = 0;

		if (!a->ai) {
			if (!err && a->status != -ENOENT)
				err = a->status;   /* the first real failure, in SRV order */
			continue;
		}
		for (const struct ares_addrinfo_node *nd = a->ai->nodes; nd; nd = nd->ai_next)
			if ((nd->ai_family == AF_INET || nd->ai_family == AF_INET6) &&
			    k < RESOLVE_ADDR_MAX && n < RESOLVE_TARGETS_MAX) {
				k++;
				n++;
			}
	}
	if (n == 0) {
		if (!err && op->fallback)
			err = op->set.err;   /* the SRV queries failed, so did the fallback */
		return err ? err : -ENOENT;
	}
	q->targets = calloc(n, sizeof(*q->targets));
	if (!q->targets)
		return -ENOMEM;
	for (size_t i = 0; i < op->naddr && q->ntargets < n; i++) {
		const struct resolve_srv *rec = &op->set.rec[i];
		size_t k = 0;

		if (!op->addr[i].ai)
			continue;
		for (const struct ares_addrinfo_node *nd = op->addr[i].ai->nodes;
		     nd && k < RESOLVE_ADDR_MAX && q->ntargets < n; nd = nd->ai_next) {
			struct resolve_target *t = &q->targets[q->ntargets];

			if (nd->ai_family == AF_INET && nd->ai_addrlen >= sizeof(struct sockaddr_in)) {
				memcpy(&t->addr, nd->ai_addr, sizeof(struct sockaddr_in));
				((struct sockaddr_in *)&t->addr)->sin_port = htons(rec->port);
				t->addrlen = sizeof(struct sockaddr_in);
			} else if (nd->ai_family == AF_INET6 &&
				   nd->ai_addrlen >= sizeof(struct sockaddr_in6)) {
				memcpy(&t->addr, nd->ai_addr, sizeof(struct sockaddr_in6));
				((struct sockaddr_in6 *)&t->addr)->sin6_port = htons(rec->port);
				t->addrlen = sizeof(struct sockaddr_in6);
			} else {
				continue;
			}
			memcpy(t->host, rec->host, sizeof(t->host));
			t->port = rec->port;
			t->direct_tls = rec->direct_tls;
			t->srv = !op->fallback;
			k++;
			q->ntargets++;
		}
	}
	return q->ntargets ? 0 : -ENOENT;
}

static void op_step(struct resolve_op *op);

static void addr_cb(void *arg, int status, int timeouts, struct ares_addrinfo *ai)
{
	struct op_addr *a = arg;
	struct resolve_op *op = a->op;

	a->status = resolve_ares_errno(status);
	if (status == ARES_SUCCESS && ai && op->q && !op->r->stopping)
		a->ai = ai;
	else if (ai)
		ares_freeaddrinfo(ai);
	if (--op->pending == 0)
		op_step(op);
}

static void srv_cb(void *arg, int status, int timeouts, unsigned char *abuf, int alen)
{
	struct op_srv *s = arg;
	struct resolve_op *op = s->op;

	if (op->q && !op->r->stopping) {
		if (status == ARES_SUCCESS)
			resolve_srv_add_answer(&op->set, abuf, alen, s->direct_tls);
		else if (status != ARES_ENOTFOUND && status != ARES_ENODATA &&
			 status != ARES_EBADNAME && !op->set.err)
			/* EBADNAME: the SRV name is too long for DNS, so it has no records */
			op->set.err = resolve_ares_errno(status);
	}
	if (--op->pending == 0)
		op_step(op);
}

static void op_start_addr(struct resolve_op *op)
{
	static const struct ares_addrinfo_hints hints = {
		.ai_family = AF_UNSPEC,
		.ai_socktype = SOCK_STREAM,
		.ai_protocol = IPPROTO_TCP,
	};

	op->stage = OP_ADDR;
	op->naddr = op->set.n;
	op->pending++;
	for (size_t i = 0; i < op->naddr; i++) {
		op->addr[i] = (struct op_addr){ .op = op, .status = -ENOENT };
		op->pending++;
		ares_getaddrinfo(op->r->ch, op->set.rec[i].host, NULL, &hints, addr_cb, &op->addr[i]);
	}
	if (--op->pending == 0)
		op_step(op);
}

/* The last query of the current step has called back. */
static void op_step(struct resolve_op *op)
{
	if (!op->q || op->r->stopping) {
		op_answer(op, -ECANCELED);
		op_free(op);
		return;
	}
	if (op->stage == OP_SRV) {
		if (op->set.n > 0) {
			resolve_srv_order(op->set.rec, op->set.n, NULL, NULL);
		} else if (op->set.dot) {
			op_answer(op, -ENOENT);
			op_free(op);
			return;
		} else {
			struct resolve_srv *fb = &op->set.rec[0];

			memset(fb, 0, sizeof(*fb));
			memcpy(fb->host, op->q->domain, strlen(op->q->domain) + 1);
			fb->port = RESOLVE_S2S_PORT;
			op->set.n = 1;
			op->fallback = true;
		}
		op_start_addr(op);
		return;
	}
	op_answer(op, op_targets(op));
	op_free(op);
}

static void op_start(struct resolver *r, struct resolve_req *q)
{
	struct resolve_op *op;
	char name[sizeof("_xmpps-server._tcp.") + sizeof(q->domain)];
	static const char *const svc[2] = { "_xmpps-server._tcp.", "_xmpp-server._tcp." };
	struct resolve_target t;

	if (__atomic_load_n(&q->job.cancelled, __ATOMIC_ACQUIRE)) {
		req_post(r, q, -ECANCELED);
		return;
	}
	if (ip_literal(q->domain, &t)) {
		q->targets = malloc(sizeof(t));
		if (!q->targets) {
			req_post(r, q, -ENOMEM);
			return;
		}
		q->targets[0] = t;
		q->ntargets = 1;
		req_post(r, q, 0);
		return;
	}
	op = calloc(1, sizeof(*op));
	if (!op) {
		req_post(r, q, -ENOMEM);
		return;
	}
	op->r = r;
	op->q = q;
	op->next = r->ops;
	if (r->ops)
		r->ops->prev = op;
	r->ops = op;
	op->stage = OP_SRV;
	op->pending++;
	for (int i = 0; i < 2; i++) {
		op->srvq[i] = (struct op_srv){ .op = op, .direct_tls = i == 0 };
		strcpy(name, svc[i]);
		strcat(name, q->domain);   /* fits: sizes above */
		op->pending++;
		ares_query(r->ch, name, ns_c_in, ns_t_srv, srv_cb, &op->srvq[i]);
	}
	if (--op->pending == 0)
		op_step(op);
}

/* ---- the thread -------------------------------------------------------- */

static void sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
	struct resolver *r = data;
	short ev = (short)((readable ? POLLIN : 0) | (writable ? POLLOUT : 0));
	size_t i;

	for (i = 0; i < r->nsocks && r->socks[i].fd != fd; i++)
		;
	if (!ev) {
		if (i < r->nsocks)
			r->socks[i] = r->socks[--r->nsocks];
		return;
	}
	if (i == r->nsocks) {
		if (r->nsocks == r->capsocks) {
			size_t cap = r->capsocks ? 2 * r->capsocks : 8;
			struct rsock *s = realloc(r->socks, cap * sizeof(*s));

			if (!s) {
				/* Unwatched, its queries time out: ares_timeout still runs them. */
				log_warn("resolve: out of memory for a DNS socket", "fd=%d", (int)fd);
				return;
			}
			r->socks = s;
			r->capsocks = cap;
		}
		r->nsocks++;
		r->socks[i].fd = fd;
	}
	r->socks[i].events = ev;
}

/* Take the submission queue; start its requests. */
static void take_queue(struct resolver *r)
{
	struct resolve_req *q;

	pthread_mutex_lock(&r->lock);
	q = r->head;
	r->head = r->tail = NULL;
	if (r->stop)
		r->stopping = true;
	pthread_mutex_unlock(&r->lock);
	while (q) {
		struct resolve_req *next = q->qnext;

		if (r->stopping)
			req_post(r, q, -ECANCELED);
		else
			op_start(r, q);
		q = next;
	}
}

/* Answer the requests whose callers gave up (their queries run on). */
static void scan_cancels(struct resolver *r)
{
	if (!__atomic_exchange_n(&r->cancels, 0, __ATOMIC_ACQ_REL))
		return;
	for (struct resolve_op *op = r->ops; op; op = op->next)
		if (op->q && __atomic_load_n(&op->q->job.cancelled, __ATOMIC_ACQUIRE))
			op_answer(op, -ECANCELED);
}

static void *resolver_main(void *arg)
{
	struct resolver *r = arg;
	struct pollfd *pfd;

	pthread_setname_np(pthread_self(), "xedge-resolve");
	while (!r->stopping) {
		struct timeval tv, *tvp = ares_timeout(r->ch, NULL, &tv);
		/* ares_timeout() rounds down to the millisecond, ares_process_fd()
		 * compares microseconds: never poll for 0 ms, it would spin. */
		int ms = tvp ? (int)(tv.tv_sec * 1000 + (tv.tv_usec + 999) / 1000) : -1;
		size_t n = 1 + r->nsocks;
		int k;

		if (ms == 0)
			ms = 1;
		if (n > r->cappfd) {
			struct pollfd *p = realloc(r->pfd, n * sizeof(*p));

			if (p) {
				r->pfd = p;
				r->cappfd = n;
			} else {
				n = r->cappfd;   /* watch what fits; the rest times out */
			}
		}
		/* A snapshot: c-ares may change its sockets while we process them
		 * (a stale readiness then reads EAGAIN on a non-blocking socket). */
		pfd = r->pfd;
		pfd[0] = (struct pollfd){ .fd = r->efd, .events = POLLIN };
		for (size_t i = 1; i < n; i++)
			pfd[i] = (struct pollfd){ .fd = r->socks[i - 1].fd, .events = r->socks[i - 1].events };
		k = poll(pfd, n, ms);
		if (k < 0 && errno != EINTR)
			log_warn("resolve: poll failed", "err=%s", strerror(errno));
		if (k > 0 && pfd[0].revents) {
			uint64_t v;

			if (read(r->efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
				log_warn("resolve: eventfd read failed", "err=%s", strerror(errno));
			take_queue(r);
			scan_cancels(r);
		}
		for (size_t i = 1; k > 0 && i < n; i++) {
			short re = pfd[i].revents;

			if (!re)
				continue;
			ares_process_fd(r->ch, re & (POLLIN | POLLERR | POLLHUP) ? pfd[i].fd : ARES_SOCKET_BAD,
					re & (POLLOUT | POLLERR | POLLHUP) ? pfd[i].fd : ARES_SOCKET_BAD);
		}
		ares_process_fd(r->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);   /* timeouts */
	}
	/* Stopping: the queue was answered by take_queue; answer the rest and let
	 * c-ares call every query back (the ops free themselves). */
	for (struct resolve_op *op = r->ops; op; op = op->next)
		op_answer(op, -ECANCELED);
	ares_cancel(r->ch);
	return NULL;
}

/* ---- the API ----------------------------------------------------------- */

static void wake(struct resolver *r)
{
	uint64_t one = 1;

	if (write(r->efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_warn("resolve: eventfd write failed", "err=%s", strerror(errno));
}

void resolver_stop(struct resolver *r)
{
	if (!r)
		return;
	if (r->started) {
		pthread_mutex_lock(&r->lock);
		r->stop = true;
		pthread_mutex_unlock(&r->lock);
		wake(r);
		pthread_join(r->tid, NULL);
	}
	if (r->ch_ok) {
		ares_destroy(r->ch);   /* calls back what is left: nothing, or ops of a failed start */
		ares_library_cleanup();
	}
	while (r->ops)   /* only if the thread never ran */
		op_free(r->ops);
	if (r->ring_ok)
		io_uring_queue_exit(&r->ring);
	if (r->efd >= 0)
		close(r->efd);
	pthread_mutex_destroy(&r->lock);
	free(r->socks);
	free(r->pfd);
	free(r);
}

int resolver_start(struct resolver **out, const struct resolver_opts *opts)
{
	struct resolver_opts none = { 0 };
	struct ares_options ao = { 0 };
	int mask = ARES_OPT_SOCK_STATE_CB | ARES_OPT_DOMAINS;
	struct resolver *r;
	int e;

	*out = NULL;
	if (!opts)
		opts = &none;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->efd = -1;
	pthread_mutex_init(&r->lock, NULL);
	r->pfd = calloc(8, sizeof(*r->pfd));   /* never NULL in the loop */
	if (!r->pfd) {
		e = -ENOMEM;
		goto fail;
	}
	r->cappfd = 8;
	e = ares_library_init(ARES_LIB_INIT_ALL);
	if (e != ARES_SUCCESS) {
		e = resolve_ares_errno(e);
		goto fail;
	}
	ao.sock_state_cb = sock_state;
	ao.sock_state_cb_data = r;
	ao.domains = NULL;   /* no search list: s2s domains are absolute */
	ao.ndomains = 0;
	if (opts->timeout_ms) {
		ao.timeout = (int)opts->timeout_ms;
		mask |= ARES_OPT_TIMEOUTMS;
	}
	if (opts->tries) {
		ao.tries = (int)opts->tries;
		mask |= ARES_OPT_TRIES;
	}
	e = ares_init_options(&r->ch, &ao, mask);
	if (e != ARES_SUCCESS) {
		ares_library_cleanup();
		e = e == ARES_ENOMEM ? -ENOMEM : -EIO;
		goto fail;
	}
	r->ch_ok = true;
	if (opts->servers && opts->servers[0]) {
		e = ares_set_servers_ports_csv(r->ch, opts->servers);
		if (e != ARES_SUCCESS) {
			e = e == ARES_ENOMEM ? -ENOMEM : -EINVAL;
			goto fail;
		}
	}
	r->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (r->efd < 0) {
		e = -errno;
		goto fail;
	}
	e = io_uring_queue_init(4, &r->ring, 0);
	if (e < 0)
		goto fail;
	r->ring_ok = true;
	e = -pthread_create(&r->tid, NULL, resolver_main, r);
	if (e < 0)
		goto fail;
	r->started = true;
	*out = r;
	return 0;
fail:
	resolver_stop(r);
	return e;
}

int resolve_s2s(struct resolver *r, struct offload_port *p, struct resolve_req *q)
{
	struct resolve_target t;
	bool was_empty;

	if (!q->job.done || !memchr(q->domain, '\0', sizeof(q->domain)))
		return -EINVAL;
	if (!resolve_name_ok(q->domain) && !ip_literal(q->domain, &t))
		return -EINVAL;
	q->status = 0;
	q->targets = NULL;
	q->ntargets = 0;
	q->qnext = NULL;
	pthread_mutex_lock(&r->lock);
	if (r->stop) {
		pthread_mutex_unlock(&r->lock);
		return -ESHUTDOWN;
	}
	if (r->inflight >= RESOLVE_INFLIGHT_MAX) {
		pthread_mutex_unlock(&r->lock);
		return -EAGAIN;
	}
	r->inflight++;
	offload_port_hold(p, &q->job);
	was_empty = r->head == NULL;
	if (r->tail)
		r->tail->qnext = q;
	else
		r->head = q;
	r->tail = q;
	pthread_mutex_unlock(&r->lock);
	if (was_empty)
		wake(r);
	return 0;
}

void resolve_cancel(struct resolver *r, struct resolve_req *q)
{
	offload_cancel(&q->job);
	__atomic_store_n(&r->cancels, 1, __ATOMIC_RELEASE);
	wake(r);
}

void resolve_req_clear(struct resolve_req *q)
{
	free(q->targets);
	q->targets = NULL;
	q->ntargets = 0;
}
