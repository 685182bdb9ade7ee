/*
 * xedge — the edge.  Loads the configuration, starts the session server
 * (embedded, unless a backend is configured), the offload pool (slow jobs:
 * PLAIN's PBKDF2), one io_uring worker per core, the admin HTTP listener
 * when configured (admin_http.h), and then handles signals on this thread:
 *   SIGHUP   reload: certificates and keys, limits, rate limits, timeouts,
 *            log level, drain settings; sessions are kept.  A reload that
 *            fails (bad file, a key that needs a restart changed, a
 *            certificate that does not load) changes nothing and says why.
 *   SIGTERM  drain: readiness goes false, the listeners close, clients are
 *            told to go (see-other-host with drain.redirect, else
 *            system-shutdown) at drain.rate a second; the process exits
 *            when no client is left or after drain.grace seconds.  A second
 *            SIGTERM, or SIGINT, stops at once.
 *   SIGUSR1  drain and stay up, not ready (xedgectl drain): for a preStop
 *            hook, which must not outlive the process; SIGTERM then exits
 *            as soon as no client is left.
 *   SIGINT   stop at once: every stream gets system-shutdown.
 * Under systemd (notify.h) it reports READY=1 once listening, RELOADING=1
 * then READY=1 around a reload, a STATUS line every 10 s, WATCHDOG=1 when
 * asked, and STOPPING=1 at shutdown.
 */
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/admin_http.h"
#include "core/chan.h"
#include "core/claim.h"
#include "core/edge_metrics.h"
#include "core/config.h"
#include "core/version.h"
#include "core/discover.h"
#include "core/log.h"
#include "core/members.h"
#include "core/notify.h"
#include "core/s2s.h"
#include "core/offload.h"
#include "core/upload.h"
#include "core/worker.h"
#include "sm/sm.h"
#include "sm/store.h"
#include "tls/tls.h"


static void usage(FILE *f)
{
	fprintf(f, "usage: xedge -c CONFIG          run the edge\n"
		   "       xedge --check-config CONFIG  validate CONFIG and exit (0: ok)\n"
		   "       xedge --version\n");
}

/* "One per core": the CPUs this process may run on (taskset, a container's
 * cpuset), not every CPU of the machine. */
static int cpus_usable(void)
{
	cpu_set_t set;

	if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0)
		return CPU_COUNT(&set);
	return (int)sysconf(_SC_NPROCESSORS_ONLN);
}

static void *sm_thread(void *arg)
{
	sm_run(arg);
	return NULL;
}

#define STATUS_EVERY_MS 10000
#define TICK_MS 200

/*
 * The running edge as the signal loop and the admin thread see it.  The
 * configuration in use is `cfg`; a reload replaces it and retires the old
 * one, which is freed (reclaim) once every worker has switched to a newer
 * one.  The admin thread reads only what a reload cannot change, copied
 * here at start (kinds, upstream), and the workers' counters.
 */
struct edge {
	struct worker *workers;
	int nworkers;
	struct config *cfg;          /* current: the main thread's */
	struct config *retired[16];  /* replaced, not yet freed */
	size_t nretired;
	struct sm **sms;             /* embedded session servers (shards), or NULL */
	int nsms;
	struct chan *peer_chans;     /* [i * nsms + j]: from shard i to shard j */
	pthread_t *sm_threads;
	struct offload *pool;        /* the offload threads */
	bool upstream;               /* backend.upstream: no session server link */
	bool kinds[CK_COUNT];        /* connection kinds the configuration makes (edge_metrics) */
	int draining;                /* atomic: readiness false */
	uint64_t drain_start, drain_deadline;   /* ms; 0: not draining */
	uint64_t reloads_ok, reloads_failed;   /* atomic */
	/* backend.discover (core/discover.h): its thread leaves a new shard
	 * set here and wakes the signal loop with MEMBERS_SIG; the loop hands
	 * it to the workers (core/members.h). */
	struct discover *disc;
	pthread_t main_tid;
	pthread_mutex_t mlock;
	char **mnames;               /* (mlock) the newest set not yet published */
	size_t mn;
};

#define MEMBERS_SIG SIGRTMIN
/* Lookups in a row that must give a new set before the edge moves to it:
 * the session servers take it at their first, and with the edge's and
 * their lookups at any phase of the interval, the third lookup comes at
 * least one interval after theirs (docs/architecture.md, "Shards"). */
#define MEMBERS_CONFIRM 3

/* The discover thread: a new shard set. */
static void members_found(void *arg, const char *const *names, size_t n)
{
	struct edge *e = arg;
	char **v = calloc(n, sizeof(*v));
	size_t i = 0;

	for (; v && i < n && (v[i] = strdup(names[i])); i++)
		;
	if (!v || i < n) {
		log_error("shard discovery: out of memory, the set is not applied", "shards=%zu", n);
		discover_names_free(v, i);
		return;
	}
	pthread_mutex_lock(&e->mlock);
	discover_names_free(e->mnames, e->mn);
	e->mnames = v;
	e->mn = n;
	pthread_mutex_unlock(&e->mlock);
	pthread_kill(e->main_tid, MEMBERS_SIG);
}

/* The signal loop: publish what discovery found (names are addresses). */
static void members_take(struct edge *e, struct io_uring *ctl)
{
	char **v;
	size_t n;

	pthread_mutex_lock(&e->mlock);
	v = e->mnames;
	n = e->mn;
	e->mnames = NULL;
	e->mn = 0;
	pthread_mutex_unlock(&e->mlock);
	if (!v)
		return;
	if (members_publish(e->workers, e->nworkers, ctl, (const char *const *)v, NULL, n) < 0)
		log_error("shard set not applied: out of memory", "shards=%zu", n);
	else
		log_info("shard set applied (backend.discover)", "shards=%zu first=%s", n, v[0]);
	discover_names_free(v, n);
}

/* A reload changed backend.shards: the workers move to the new list. */
static void members_reloaded(struct edge *e, struct io_uring *ctl, const struct config *old,
			     const struct config *next)
{
	bool same = old->nbackend_shards == next->nbackend_shards;

	for (size_t i = 0; same && i < old->nbackend_shards; i++)
		same = !strcmp(old->backend_shard_names[i], next->backend_shard_names[i]) &&
		       !strcmp(old->backend_shards[i], next->backend_shards[i]);
	if (same || !next->nbackend_shards || !old->backend_address)
		return;
	if (members_publish(e->workers, e->nworkers, ctl, (const char *const *)next->backend_shard_names,
			    (const char *const *)next->backend_shards, next->nbackend_shards) < 0) {
		log_error("backend.shards: the new list is not applied (out of memory)", "shards=%zu",
			  next->nbackend_shards);
		return;
	}
	log_info("backend.shards changed: sessions move to their new owners", "shards=%zu was=%zu",
		 next->nbackend_shards, old->nbackend_shards);
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* admin_http_ops, on the admin thread. */
static void admin_metrics(void *arg, struct mx *m)
{
	struct edge *e = arg;

	mx_head(m, "xedge_build_info", "gauge", "The running version.");
	mx_printf(m, "xedge_build_info{version=\"%s\"} 1\n", XEDGE_VERSION);
	mx_one(m, "xedge_workers", "gauge", "Edge worker threads.", (uint64_t)e->nworkers);
	mx_one(m, "xedge_draining", "gauge",
	       "1 while draining (after SIGTERM or SIGUSR1).",
	       (uint64_t)__atomic_load_n(&e->draining, __ATOMIC_RELAXED));
	mx_one(m, "xedge_offload_queue_jobs", "gauge",
	       "Slow jobs (PLAIN's key derivation) waiting for an offload thread.",
	       __atomic_load_n(&e->pool->queued, __ATOMIC_RELAXED));
	mx_head(m, "xedge_config_reloads_total", "counter", "Configuration reloads (SIGHUP), by result.");
	mx_val(m, "xedge_config_reloads_total", "result=\"ok\"", STAT_GET(e->reloads_ok));
	mx_val(m, "xedge_config_reloads_total", "result=\"failed\"", STAT_GET(e->reloads_failed));
	edge_metrics(m, e->kinds, e->upstream, e->workers, e->nworkers);
	if (e->nsms)
		sm_metrics(e->sms, (size_t)e->nsms, m);
}

static const char *admin_unready(void *arg)
{
	struct edge *e = arg;

	if (__atomic_load_n(&e->draining, __ATOMIC_RELAXED))
		return "draining";
	if (!e->upstream && !edge_linked(e->workers, e->nworkers))
		return "no session server linked";
	return NULL;
}

static void notify_status(const struct edge *e, const char *what)
{
	notify_send("STATUS=%s: %llu client connections on %d workers", what,
		    (unsigned long long)edge_clients(e->workers, e->nworkers), e->nworkers);
}

static void post_all(struct edge *e, struct io_uring *ctl, int cmd)
{
	for (int i = 0; i < e->nworkers; i++)
		worker_post(&e->workers[i], ctl, cmd);
}

/* Free the retired configurations (and drop the TLS contexts made for
 * them) that no worker uses any more. */
static void reclaim(struct edge *e)
{
	uint64_t acked = e->cfg->generation;
	size_t kept = 0;

	for (int i = 0; i < e->nworkers; i++) {
		uint64_t g = __atomic_load_n(&e->workers[i].cfg_acked, __ATOMIC_ACQUIRE);
		if (g < acked)
			acked = g;
	}
	tls_reclaim(acked);
	for (size_t i = 0; i < e->nretired; i++) {
		if (e->retired[i]->generation < acked) {
			config_free(e->retired[i]);
			free(e->retired[i]);
		} else {
			e->retired[kept++] = e->retired[i];
		}
	}
	e->nretired = kept;
}

/* SIGHUP: load the file again and switch to it, or keep the running
 * configuration and log why not. */
static void reload(struct edge *e, struct io_uring *ctl)
{
	struct config *next = calloc(1, sizeof(*next));
	int level = LOG_MIN_LEVEL();
	const char *blocker;
	char err[1024];

	notify_send("RELOADING=1\nMONOTONIC_USEC=%llu", (unsigned long long)now_ms() * 1000);
	log_info("reloading the configuration (SIGHUP)", "file=%s", e->cfg->path);
	reclaim(e);
	if (!next || e->nretired == sizeof(e->retired) / sizeof(e->retired[0])) {
		log_error("reload failed: the workers have not switched to the previous reloads yet (or out "
			  "of memory); try again in a moment (the running configuration stays)", "pending=%zu",
			  e->nretired);
		free(next);
		goto failed;
	}
	if (config_load(e->cfg->path, next, err, sizeof(err)) < 0) {
		log_set_min_level(level);
		log_error("reload failed: the running configuration stays", "why=\"%s\"", err);
		free(next);
		goto failed;
	}
	blocker = config_reload_blocker(e->cfg, next);
	if (blocker) {
		log_set_min_level(level);
		log_error("reload failed: a key that needs a restart changed (restart xedge to apply it); the "
			  "running configuration stays", "key=%s file=%s", blocker, next->path);
		config_free(next);
		free(next);
		goto failed;
	}
	next->generation = e->cfg->generation + 1;
	/* Before the TLS contexts: their domain names are the shared strings. */
	config_adopt(next, e->cfg);
	if (tls_reload(next, next->s2s.enabled) < 0) {
		log_set_min_level(level);
		log_error("reload failed: the certificates or keys do not load (see the line above); the "
			  "running configuration stays", "file=%s", next->path);
		config_unadopt(next, e->cfg);
		config_free(next);
		free(next);
		goto failed;
	}
	e->retired[e->nretired++] = e->cfg;
	e->cfg = next;
	for (int i = 0; i < e->nworkers; i++)
		__atomic_store_n(&e->workers[i].next_cfg, next, __ATOMIC_RELEASE);
	post_all(e, ctl, CTRL_RELOAD);
	members_reloaded(e, ctl, e->retired[e->nretired - 1], next);
	STAT_INC(e->reloads_ok);
	log_info("configuration reloaded: new TLS handshakes use the certificates loaded now; sessions go on",
		 "file=%s domains=%zu log_level=%d", next->path, next->ndomains, next->log_level);
	notify_send("READY=1");
	notify_status(e, "serving");
	return;
failed:
	STAT_INC(e->reloads_failed);
	notify_send("READY=1");
}

/* Start draining (once): readiness false, listeners closed, clients told
 * to go at drain.rate a second from now on; the deadline is drain.grace. */
static void drain_start(struct edge *e, struct io_uring *ctl, const char *why)
{
	const struct config *cfg = e->cfg;
	uint32_t per = cfg->drain.rate / (uint32_t)e->nworkers;

	if (e->drain_deadline)
		return;
	e->drain_start = now_ms();
	e->drain_deadline = e->drain_start + (uint64_t)cfg->drain.grace * 1000;
	__atomic_store_n(&e->draining, 1, __ATOMIC_RELAXED);
	for (int i = 0; i < e->nworkers; i++)
		e->workers[i].drain_rate = per ? per : 1;
	log_info("draining: listeners closed, clients told to go", "why=%s clients=%llu rate=%u/s grace=%us redirect=%s",
		 why, (unsigned long long)edge_clients(e->workers, e->nworkers), cfg->drain.rate, cfg->drain.grace,
		 cfg->drain.redirect ? cfg->drain.redirect : "-");
	post_all(e, ctl, CTRL_DRAIN);
}

/* SIGTERM: drain (unless SIGUSR1 began it), then return once no client is
 * left, at the drain's deadline, or on a second SIGTERM or a SIGINT. */
static void drain(struct edge *e, struct io_uring *ctl, const sigset_t *sigs)
{
	struct timespec ts = { 0, TICK_MS * 1000000L };
	uint64_t left, next_status = 0;
	int sig;

	drain_start(e, ctl, "SIGTERM");
	for (;;) {
		uint64_t now = now_ms();
		left = edge_clients(e->workers, e->nworkers);
		if (left == 0) {
			log_info("drained: no client left", "seconds=%.1f", (double)(now - e->drain_start) / 1000);
			return;
		}
		if (now >= e->drain_deadline) {
			log_info("drain grace period over: closing the rest", "clients=%llu grace=%us",
				 (unsigned long long)left, e->cfg->drain.grace);
			return;
		}
		if (now >= next_status) {
			notify_status(e, "draining");
			if (notify_watchdog_ms())
				notify_send("WATCHDOG=1");
			next_status = now + 1000;
		}
		sig = sigtimedwait(sigs, NULL, &ts);
		if (sig == SIGTERM || sig == SIGINT) {
			log_info("stopping now (second signal while draining)", "signal=%d clients=%llu", sig,
				 (unsigned long long)left);
			return;
		}
	}
}

/*
 * The signal loop: reloads on SIGHUP, starts a drain that keeps the process
 * up on SIGUSR1 (xedgectl drain: a Kubernetes preStop hook must not outlive
 * its container's main process), drains and returns on SIGTERM, returns at
 * once on SIGINT; meanwhile, when systemd listens (notify.h), WATCHDOG=1 at
 * half the watchdog interval and a STATUS line every STATUS_EVERY_MS.
 */
static int serve_signals(struct edge *e, struct io_uring *ctl, const sigset_t *sigs, bool notifying)
{
	uint64_t wd = notify_watchdog_ms(), next_status = 0, next_wd = 0, now, wake;
	struct timespec ts;
	int sig;

	for (;;) {
		now = now_ms();
		if (notifying && now >= next_status) {
			notify_status(e, e->drain_deadline ? "draining" : "serving");
			next_status = now + STATUS_EVERY_MS;
		}
		if (wd && now >= next_wd) {
			notify_send("WATCHDOG=1");
			next_wd = now + wd;
		}
		wake = wd && next_wd < next_status ? next_wd : next_status;
		if (!notifying)
			wake = now + 3600 * 1000;
		ts.tv_sec = (time_t)((wake - now) / 1000);
		ts.tv_nsec = (long)((wake - now) % 1000) * 1000000;
		sig = sigtimedwait(sigs, NULL, &ts);
		reclaim(e);
		if (sig == SIGHUP) {
			reload(e, ctl);
		} else if (sig == SIGUSR1) {
			drain_start(e, ctl, "SIGUSR1");
		} else if (sig == SIGTERM) {
			notify_send("STOPPING=1\nSTATUS=draining");
			drain(e, ctl, sigs);
			return sig;
		} else if (sig == SIGINT) {
			notify_send("STOPPING=1\nSTATUS=stopping");
			return sig;
		} else if (sig == MEMBERS_SIG) {
			members_take(e, ctl);
		}
		/* -1 with EAGAIN: the timeout; EINTR: try again. */
	}
}

/* Direct descriptors do not count against RLIMIT_NOFILE, but the per-ring
 * registered table is capped by it: use the whole hard limit. */
static void raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

/*
 * Claim every address this process is about to serve (claim.h), before any
 * listener opens: a second xedge on the same addresses would otherwise start
 * (SO_REUSEPORT) and split the users between two unrelated servers.  The
 * claims stay open in `fds` until exit.  0, or -1 after printing why.
 */
static int claim_addresses(const struct config *cfg, int *fds, size_t *nfds)
{
	char addr[300], err[512];
	int fd;

	*nfds = 0;
	for (size_t i = 0; i < cfg->nlisteners; i++) {
		const struct config_listener *cl = &cfg->listeners[i];
		config_listener_addr(cl, addr, sizeof(addr));
		fd = claim_address(addr, "change listeners[].address", err, sizeof(err));
		if (fd < 0) {
			fprintf(stderr, "%s\n", err);
			return -1;
		}
		fds[(*nfds)++] = fd;
	}
	/* The embedded session server's own listener, when it has one. */
	if (!cfg->backend_upstream && !cfg->backend_address && cfg->sm.listen) {
		fd = claim_address(cfg->sm.listen, "change session_server.listen", err, sizeof(err));
		if (fd < 0) {
			fprintf(stderr, "%s\n", err);
			return -1;
		}
		fds[(*nfds)++] = fd;
	}
	return 0;
}

/* Embedded shard k of n, created but not started: its links are added first
 * (sm.h: only its own thread may touch it once sm_run() runs).  Shard 0 has
 * the admin socket and the listener; shard k > 0 the admin socket
 * "<admin_socket>.<k>" (xedgectl finds it by the account's owner). */
static struct sm *new_embedded_sm(const struct config *cfg, int k, int n, const char *const *names)
{
	const char *domains[CONFIG_MAX_DOMAINS];
	struct sm_config smc = { 0 };
	char admin[PATH_MAX];
	struct sm *sm;

	for (size_t i = 0; i < cfg->ndomains; i++)
		domains[i] = cfg->domains[i].name;
	smc.database = cfg->sm.database ? cfg->sm.database : "xedge.db";
	smc.admin_socket = cfg->sm.admin_socket;
	if (k > 0 && cfg->sm.admin_socket) {
		snprintf(admin, sizeof(admin), "%s.%d", cfg->sm.admin_socket, k);
		smc.admin_socket = admin;
	}
	smc.listen = k == 0 ? cfg->sm.listen : NULL;
	smc.secret = cfg->sm.secret;
	smc.hide_os = !cfg->sm.version_os;
	smc.mam_retention_days = cfg->sm.mam_retention_days;
	smc.mam_default = cfg->sm.mam_default;
	smc.muc_domain = cfg->sm.muc_domain;
	smc.muc_history = cfg->sm.muc_history;
	smc.pubsub_domain = cfg->sm.pubsub_domain;
	smc.upload_domain = cfg->upload.domain;
	smc.upload_max_size = cfg->upload.max_size;
	smc.admins = (const char *const *)cfg->admins;
	smc.nadmins = cfg->nadmins;
	smc.domains = domains;
	smc.ndomains = cfg->ndomains;
	smc.shards = names;
	smc.nshards = (size_t)n;
	smc.shard_self = (size_t)k;
	sm = sm_new(&smc);
	return sm;
}

/* The embedded shards, all or none (the reason is logged). */
static int start_embedded(struct edge *e, const struct config *cfg, int n)
{
	static char name_buf[CONFIG_MAX_SHARDS][12];
	static const char *names[CONFIG_MAX_SHARDS];

	e->sms = calloc((size_t)n, sizeof(*e->sms));
	e->sm_threads = calloc((size_t)n, sizeof(*e->sm_threads));
	if (!e->sms || !e->sm_threads)
		return -1;
	for (int k = 0; k < n; k++) {
		snprintf(name_buf[k], sizeof(name_buf[k]), "%d", k);
		names[k] = name_buf[k];
	}
	/* One after the other: the first creates the database's schema. */
	for (int k = 0; k < n; k++) {
		e->sms[k] = new_embedded_sm(cfg, k, n, names);
		if (!e->sms[k]) {
			char dbname[512];

			/* A PostgreSQL URI may hold a password: logs get its description. */
			sm_store_describe(cfg->sm.database ? cfg->sm.database : "xedge.db", dbname,
					  sizeof(dbname));
			log_error("cannot start the embedded session server", "shard=%d database=\"%s\"", k,
				  dbname);
			return -1;
		}
		e->nsms = k + 1;
	}
	/* Each pair of shards linked directly, both ways. */
	e->peer_chans = calloc((size_t)n * (size_t)n, sizeof(*e->peer_chans));
	if (!e->peer_chans)
		return -1;
	for (int i = 0; i < n; i++)
		for (int j = 0; j < n; j++)
			if (i != j && chan_init(&e->peer_chans[i * n + j], sm_chan_fd(e->sms[j])) < 0)
				return -1;
	for (int i = 0; i < n; i++)
		for (int j = 0; j < n; j++)
			if (i != j && sm_add_peer_link(e->sms[i], (size_t)j, &e->peer_chans[j * n + i],
						       &e->peer_chans[i * n + j]) < 0)
				return -1;
	return 0;
}

/* Worker w's in-process links to the shards sms[0..n) (core/chan.h). */
static int link_embedded(struct worker *w, struct sm **sms, int n)
{
	w->chan_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	w->sm_chans = calloc(2 * (size_t)n, sizeof(*w->sm_chans));
	if (w->chan_fd < 0 || !w->sm_chans)
		return -1;
	for (int k = 0; k < n; k++)
		if (chan_init(&w->sm_chans[2 * k], sm_chan_fd(sms[k])) < 0 ||
		    chan_init(&w->sm_chans[2 * k + 1], w->chan_fd) < 0 ||
		    sm_add_chan_link(sms[k], &w->sm_chans[2 * k], &w->sm_chans[2 * k + 1]) < 0)
			return -1;
	return 0;
}

/* Once no thread uses them. */
static void unlink_embedded(struct worker *workers, int n)
{
	for (int i = 0; workers && i < n; i++) {
		struct worker *w = &workers[i];

		for (int k = 0; w->sm_chans && k < 2 * w->nshards; k++)
			chan_fini(&w->sm_chans[k]);
		free(w->sm_chans);
		if (w->chan_fd >= 0)
			close(w->chan_fd);
	}
}

static void stop_embedded(struct edge *e, int started)
{
	for (int k = 0; k < started; k++)
		sm_stop(e->sms[k]);
	for (int k = 0; k < started; k++)
		pthread_join(e->sm_threads[k], NULL);
	for (int k = 0; k < e->nsms; k++)
		sm_free(e->sms[k]);
	for (int k = 0; e->peer_chans && k < e->nsms * e->nsms; k++)
		chan_fini(&e->peer_chans[k]);
	free(e->peer_chans);
	e->peer_chans = NULL;
	free(e->sms);
	free(e->sm_threads);
	e->sms = NULL;
	e->nsms = 0;
}

int main(int argc, char **argv)
{
	static struct edge e = { .mlock = PTHREAD_MUTEX_INITIALIZER };
	struct config *cfg;
	char err[1024];
	const char *path = NULL;
	bool check = false;
	struct offload pool = { 0 };
	struct admin_http *admin = NULL;
	int nshards = 0, sm_started = 0;
	struct io_uring ctl;
	sigset_t sigs;
	int nworkers, npool, sig, rc = 1, r;
	int claims[CONFIG_MAX_LISTENERS + 1];
	size_t nclaims = 0;
	bool notifying;

	for (int i = 1; i < argc; i++) {
		if ((!strcmp(argv[i], "-c") || !strcmp(argv[i], "--config")) && i + 1 < argc) {
			path = argv[++i];
		} else if (!strcmp(argv[i], "--check-config") && i + 1 < argc) {
			path = argv[++i];
			check = true;
		} else if (!strcmp(argv[i], "--version")) {
			printf("xedge %s\n", XEDGE_VERSION);
			return 0;
		} else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			usage(stdout);
			return 0;
		} else {
			usage(stderr);
			return 2;
		}
	}
	if (!path) {
		usage(stderr);
		return 2;
	}
	cfg = calloc(1, sizeof(*cfg));
	if (!cfg)
		return 1;
	if (config_load(path, cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		free(cfg);
		return 1;
	}
	e.cfg = cfg;
	e.pool = &pool;
	e.upstream = cfg->backend_upstream != NULL;
	edge_kinds(cfg, e.kinds);
	if (cfg->nlisteners == 0) {
		fprintf(stderr, "%s: no 'listeners' configured: add at least one (type c2s or c2s_tls)\n", path);
		goto out;
	}
	if (tls_init(cfg) < 0 || (cfg->s2s.enabled && tls_init_s2s(cfg) < 0)) {
		fprintf(stderr, "%s: TLS set-up failed (see the log line above)\n", path);
		goto out;
	}
	if (check) {
		printf("%s: ok\n", path);
		rc = 0;
		goto out;
	}

	if (upload_init(cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s: %s\n", path, err);
		goto out;
	}
	notifying = notify_init();   /* before any thread: it unsets the variables */
	if (claim_addresses(cfg, claims, &nclaims) < 0)
		goto out;
	/* Signals go to sigtimedwait() in this thread only. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGHUP);
	sigaddset(&sigs, SIGUSR1);
	sigaddset(&sigs, MEMBERS_SIG);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);
	raise_nofile();

	nworkers = cfg->workers > 0 ? cfg->workers : cpus_usable();
	if (nworkers < 1)
		nworkers = 1;
	if (io_uring_queue_init(8, &ctl, 0) < 0) {
		log_error("io_uring is not available: xedge needs Linux 6.1+ with io_uring enabled", "%s", "");
		goto out;
	}
	if (cfg->backend_upstream) {
		log_info("upstream mode: each client is relayed to its own stream on the upstream server",
			 "upstream=%s proxy_protocol=%s", cfg->backend_upstream,
			 cfg->upstream_proxy == PROXY_V2 ? "v2" : cfg->upstream_proxy == PROXY_V1 ? "v1" : "none");
	} else if (!cfg->backend_address) {
		/* One shard per core unless told; one when another edge links to
		 * this process's session server (session_server.listen). */
		nshards = cfg->shards > 0 ? cfg->shards
			  : cfg->sm.listen ? 1 : cpus_usable();
		if (nshards < 1)
			nshards = 1;
		if (nshards > 1 && cfg->sm.listen) {
			log_error("session_server.listen serves one shard: set shards: 1, or run xedge-sm "
				  "processes and list them in backend.shards", "shards=%d", nshards);
			goto out_ring;
		}
		if (start_embedded(&e, cfg, nshards) < 0)
			goto out_sm_unstarted;
		log_info("embedded session servers", "shards=%d", nshards);
	} else {
		nshards = (int)cfg->nbackend_shards;
	}
	/* Before the workers (they submit to it), stopped after them. */
	npool = offload_default_threads();
	r = offload_start(&pool, npool);
	if (r < 0) {
		log_error("cannot start the offload threads", "threads=%d err=%s", npool, strerror(-r));
		goto out_sm_unstarted;
	}
	if (s2s_process_init(cfg) < 0)
		goto out_sm_unstarted;
	/* struct worker is cache-line aligned (its counters share no line with
	 * another thread's): calloc only promises 16 bytes. */
	e.workers = aligned_alloc(_Alignof(struct worker), (size_t)nworkers * sizeof(*e.workers));
	if (!e.workers)
		goto out_sm_unstarted;
	memset(e.workers, 0, (size_t)nworkers * sizeof(*e.workers));
	for (int i = 0; i < nworkers; i++)
		e.workers[i].chan_fd = -1;
	for (int i = 0; i < nworkers; i++) {
		struct worker *w = &e.workers[i];
		w->id = i;
		w->cfg = cfg;
		w->offload = &pool;
		w->nshards = (uint16_t)nshards;
		if (e.nsms && link_embedded(w, e.sms, e.nsms) < 0) {
			log_error("cannot link a worker to the embedded session servers", "worker=%d", i);
			goto out_sm_unstarted;
		}
	}
	for (; sm_started < e.nsms; sm_started++)
		if (pthread_create(&e.sm_threads[sm_started], NULL, sm_thread, e.sms[sm_started]) != 0) {
			log_error("cannot start the embedded session server thread", "shard=%d", sm_started);
			goto out_workers_unstarted;
		}
	for (int i = 0; i < nworkers; i++) {
		r = worker_start(&e.workers[i]);
		if (r < 0) {
			log_error("worker failed to start", "worker=%d err=%s", i, strerror(-r));
			nworkers = i;
			goto out_workers;
		}
	}
	e.nworkers = nworkers;
	if (cfg->backend_discover_srv) {
		/* The first lookup here, before clients come (blocking the main
		 * thread only); then the discover thread every interval. */
		char **names = NULL;
		size_t n = 0;

		e.main_tid = pthread_self();
		r = discover_lookup(cfg->backend_discover_srv, &names, &n);
		if (r < 0) {
			log_warn("shard discovery: nothing found yet; logins wait for the first shard",
				 "srv=%s err=%s", cfg->backend_discover_srv, strerror(-r));
		} else {
			log_info("shard discovery: first shard set", "srv=%s shards=%zu first=%s",
				 cfg->backend_discover_srv, n, names[0]);
			members_publish(e.workers, e.nworkers, &ctl, (const char *const *)names, NULL, n);
		}
		r = discover_start(&e.disc, cfg->backend_discover_srv, cfg->backend_discover_interval,
				   MEMBERS_CONFIRM,
				   (const char *const *)names, n, members_found, &e);
		discover_names_free(names, n);
		if (r < 0) {
			log_error("cannot start the shard discovery thread", "err=%s", strerror(-r));
			goto out_workers;
		}
	}
	for (size_t i = 0; i < cfg->nlisteners; i++) {
		static const char *const kinds[] = { "?", "c2s-starttls", "c2s-direct-tls", "ws", "wss",
						     "s2s-starttls", "s2s-direct-tls", "component" };
		const struct config_listener *cl = &cfg->listeners[i];
		log_info("listening", "address=%s:%u type=%s path=%s proxy_protocol=%s", cl->host, cl->port,
			 kinds[cl->kind], cl->path ? cl->path : "-", cl->proxy_protocol ? "required" : "no");
	}
	if (cfg->admin.address) {
		static const struct admin_http_ops ops = { .metrics = admin_metrics, .unready = admin_unready, .arg = &e };
		admin = admin_http_start(cfg->admin.address, &ops);
		if (!admin)
			goto out_workers;
	}
	log_info("xedge started", "version=%s workers=%d offload_threads=%d domains=%zu backend=%s",
		 XEDGE_VERSION, nworkers, npool, cfg->ndomains, cfg->backend_upstream ? "upstream" : cfg->backend_address ? cfg->backend_address
		 : "embedded");
	notify_send("READY=1\nMAINPID=%ld", (long)getpid());
	rc = 0;
	sig = serve_signals(&e, &ctl, &sigs, notifying);
	log_info("shutting down", "signal=%d", sig);

out_workers:
	discover_stop(e.disc);
	e.disc = NULL;
	admin_http_stop(admin);
	for (int i = 0; i < nworkers; i++)
		worker_post(&e.workers[i], &ctl, CTRL_STOP);
	for (int i = 0; i < nworkers; i++)
		pthread_join(e.workers[i].thread, NULL);
out_workers_unstarted:
	offload_stop(&pool);   /* every job came back: workers wait for theirs */
	s2s_process_fini();
	stop_embedded(&e, sm_started);
	unlink_embedded(e.workers, nworkers);
	free(e.workers);
	goto out_ring;
out_sm_unstarted:
	offload_stop(&pool);   /* a no-op unless it started */
	s2s_process_fini();
	stop_embedded(&e, 0);
	unlink_embedded(e.workers, nworkers);
	free(e.workers);
out_ring:
	discover_names_free(e.mnames, e.mn);
	io_uring_queue_exit(&ctl);
out:
	for (size_t i = 0; i < nclaims; i++)
		close(claims[i]);
	tls_shutdown();
	for (size_t i = 0; i < e.nretired; i++) {
		config_free(e.retired[i]);
		free(e.retired[i]);
	}
	config_free(e.cfg);
	free(e.cfg);
	return rc;
}
