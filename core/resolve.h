/*
 * resolve — where to connect for an outbound server-to-server stream: the
 * DNS lookups of RFC 6120 §3.2 with the Direct TLS records of XEP-0368, done
 * by c-ares on a thread of their own, so that no edge worker ever waits on
 * DNS (DESIGN §2).
 *
 * What a lookup does, for a domain D:
 *   1. SRV _xmpps-server._tcp.D (Direct TLS) and _xmpp-server._tcp.D
 *      (STARTTLS), in parallel.  Their records are mixed into one list, as if
 *      one RRset (XEP-0368 rule 1), ordered by priority and, within a
 *      priority, by the weighted random selection of RFC 2782.  At most
 *      RESOLVE_SRV_MAX records are used: those of the lowest priorities.
 *   2. A service whose answer is a single record with target "." is not
 *      offered (RFC 2782).  If no usable record is left and a service said
 *      "." there is no fallback (RFC 6120 §3.2.1 step 3; XEP-0368 §5):
 *      status -ENOENT.  A "." record among others is ignored.
 *   3. Each SRV target's A and AAAA records (c-ares' getaddrinfo, addresses
 *      sorted by RFC 6724), at most RESOLVE_ADDR_MAX per target: one
 *      resolve_target per address, target by target, in SRV order, at most
 *      RESOLVE_TARGETS_MAX in all.  No A/AAAA fallback once SRV records
 *      were found (RFC 6120 §3.2.1 step 8).
 *   4. No SRV record at all (no such name, no SRV data, or no answer: step
 *      9 says fall back when the SRV query gets no response): D's own A and
 *      AAAA records, port 5269, STARTTLS (§3.2.2).
 *   A domain that is an IP literal (1.2.3.4, [::1]) is not looked up: one
 *   target, port 5269, STARTTLS.
 *
 * Hostile answers.  c-ares parses the DNS messages; what it hands over is
 * bounded here before it is stored: record counts (above), target names
 * (at most 255 bytes, hostname characters only: letters, digits, '-', '_',
 * '.'; a name c-ares had to escape is skipped), port 0 skipped.  Nothing a
 * DNS server sends can make a result bigger than RESOLVE_TARGETS_MAX
 * targets.  A query name (the caller's domain) must be such a hostname, at
 * most 253 bytes (DNS names: 255 octets on the wire), labels 1..63 bytes.
 *
 * Threads and lifetimes (the offload.h rules: the answer comes back through
 * the caller's struct offload_port, done() runs in offload_drain()):
 *   - resolve_s2s() is called on the port's owner thread.  From then until
 *     done() the request is the resolver's: the caller reads nothing in it
 *     and frees nothing.  In done() the caller owns it again, targets
 *     included (resolve_req_clear frees them).
 *   - resolve_cancel() is how a caller forgets a request: done() still
 *     comes, soon (without waiting for DNS), with status -ECANCELED, and is
 *     where the caller frees it.
 *   - resolver_stop() cancels what is queued or in flight (done() comes for
 *     each, -ECANCELED), then joins the thread: the ports of those requests
 *     must still exist, and their owners drain them afterwards.  Nothing may
 *     call resolve_s2s() on a resolver being stopped.
 */
#ifndef XEDGE_RESOLVE_H
#define XEDGE_RESOLVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/offload.h"

#define RESOLVE_SRV_MAX 16       /* SRV records used, both services together */
#define RESOLVE_ADDR_MAX 8       /* addresses used per SRV target */
#define RESOLVE_TARGETS_MAX 64   /* targets in a result */
#define RESOLVE_NAME_MAX 253     /* bytes of a host name, without a final dot */
#define RESOLVE_INFLIGHT_MAX 1024  /* requests queued or running; more: -EAGAIN */
#define RESOLVE_S2S_PORT 5269    /* the fallback port (IANA xmpp-server) */

struct resolver;

/* One address to try, in order. */
struct resolve_target {
	char host[256];              /* the SRV target, or the domain (fallback, IP literal) */
	uint16_t port;               /* host order */
	bool direct_tls;             /* from _xmpps-server: TLS at once, ALPN xmpp-server */
	bool srv;                    /* from an SRV record (false: fallback or IP literal) */
	struct sockaddr_storage addr;  /* port included */
	socklen_t addrlen;
};

struct resolve_req {
	struct offload_job job;      /* first; the caller sets job.done (job.run is unused) */
	char domain[256];            /* in: the domain to reach (NUL-terminated) */
	/*
	 * out, valid in done(): 0 (ntargets >= 1), or
	 *   -ENOENT     no such domain, no address, or the service is not offered ("." SRV)
	 *   -ETIMEDOUT  no answer in time
	 *   -ECONNREFUSED  nothing listens where the DNS server should be (when
	 *               c-ares learns it before the timeout: else -ETIMEDOUT)
	 *   -EIO        the DNS server failed (SERVFAIL, REFUSED, a malformed answer)
	 *   -ENOMEM, -ECANCELED (resolve_cancel, resolver_stop)
	 */
	int status;
	struct resolve_target *targets;  /* malloc'd, ntargets of them, in the order to try */
	size_t ntargets;
	/* resolve.c's own */
	struct resolve_req *qnext;   /* the submission queue */
};

struct resolver_opts {
	const char *servers;         /* "127.0.0.1:5353,[::1]:53"; NULL or "": /etc/resolv.conf */
	/* 0: resolv.conf's "options timeout: attempts:", else c-ares' own
	 * 5000 ms and 4 tries.  c-ares doubles the timeout after each round of
	 * the servers: with one silent server, 5+10+20+40 s before -ETIMEDOUT,
	 * and a lookup has two rounds of queries (SRV, then addresses). */
	unsigned timeout_ms;         /* the first try's timeout */
	unsigned tries;              /* tries per server */
};

/* Start the resolver thread: *r on success.  opts NULL: all defaults.
 * 0, -EINVAL (servers do not parse), -ENOMEM, or -errno. */
int resolver_start(struct resolver **r, const struct resolver_opts *opts);

/* Cancel everything (see above), join the thread, free r.  r NULL: nothing. */
void resolver_stop(struct resolver *r);

/* Look up where to reach q->domain; the answer comes back on p (q->job.done
 * runs in offload_drain(p)).  0, or: -EINVAL (q->domain is not a host name
 * this module looks up, or job.done is unset), -EAGAIN (RESOLVE_INFLIGHT_MAX
 * requests already), -ESHUTDOWN; on failure q stays the caller's and no
 * done() comes. */
int resolve_s2s(struct resolver *r, struct offload_port *p, struct resolve_req *q);

/* Forget q (submitted, done() not yet called): done() comes soon with
 * -ECANCELED, unless the answer was already on its way (then it comes with
 * that).  On q's port owner thread. */
void resolve_cancel(struct resolver *r, struct resolve_req *q);

/* Free q's targets (after done()); q can be submitted again. */
void resolve_req_clear(struct resolve_req *q);

/* ---- the pure part (no DNS), exposed for tests/unit/test_resolve.c ---- */

/* An SRV record kept for use. */
struct resolve_srv {
	char host[256];
	uint16_t priority, weight, port;
	bool direct_tls;
};

/* What the two SRV lookups found. */
struct resolve_srv_set {
	struct resolve_srv rec[RESOLVE_SRV_MAX];
	size_t n;
	bool dot;                    /* a service answered a single "." record */
	unsigned skipped;            /* records refused (bad name, port 0, over the bound) */
	int err;                     /* first failure other than "no records" (-errno), or 0 */
};

/* Whether name is a host name this module sends to DNS (see above). */
bool resolve_name_ok(const char *name);

/*
 * Add one SRV answer (the DNS message abuf[0..alen), as c-ares' callback
 * gives it) to set, its records marked direct_tls or not.  Only the
 * RESOLVE_SRV_MAX records of lowest priority are kept over all calls.
 * Returns 0, or -errno when the message does not parse (also recorded in
 * set->err; a message with no SRV answer is not an error).
 */
int resolve_srv_add_answer(struct resolve_srv_set *set, const unsigned char *abuf, int alen,
			   bool direct_tls);

/* Offer one record to set (the bound above; a bad record is counted in
 * set->skipped). */
void resolve_srv_offer(struct resolve_srv_set *set, const struct resolve_srv *rec);

/* Random source: uniform in [0, bound), bound >= 1. */
typedef uint32_t (*resolve_rand_fn)(void *arg, uint32_t bound);

/*
 * Put rec[0..n) in the order to try (RFC 2782): ascending priority; within
 * a priority, repeatedly pick among the records left, zero-weight ones placed
 * first in their current order, by a number drawn uniformly from
 * [0, sum of weights] and the first record whose running sum of weights
 * reaches it.  rnd NULL: arc4random_uniform.
 */
void resolve_srv_order(struct resolve_srv *rec, size_t n, resolve_rand_fn rnd, void *arg);

/* A c-ares status (ARES_*) as the -errno of resolve_req.status. */
int resolve_ares_errno(int ares_status);

#endif
