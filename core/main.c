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
 *   SIGINT   stop at once: every stream gets system-shutdown.
 * Under systemd (notify.h) it reports READY=1 once listening, RELOADING=1
 * then READY=1 around a reload, a STATUS line every 10 s, WATCHDOG=1 when
 * asked, and STOPPING=1 at shutdown.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/admin_http.h"
#include "core/claim.h"
#include "core/edge_metrics.h"
#include "core/config.h"
#include "core/version.h"
#include "core/log.h"
#include "core/notify.h"
#include "core/s2s.h"
#include "core/offload.h"
#include "core/worker.h"
#include "sm/sm.h"
#include "tls/tls.h"


static void usage(FILE *f)
{
	fprintf(f, "usage: xedge -c CONFIG          run the edge\n"
		   "       xedge --check-config CONFIG  validate CONFIG and exit (0: ok)\n"
		   "       xedge --version\n");
}

static void *sm_thread(void *arg)
{
	sm_run(arg);
	return NULL;
}

#define STATUS_EVERY_MS 10000
#define TICK_MS 200

/*
 * The running edge as the admin thread and the signal loop see it.  The
 * configuration in use is `cfg` (a reload swaps it); configurations it
 * replaced stay allocated until exit in `retired`, since connections keep
 * pointers into them (their domain, their listener).
 */
struct edge {
	struct worker *workers;
	int nworkers;
	struct config *cfg;          /* current (main thread writes, admin reads: atomic) */
	struct config *retired[64];  /* replaced by reloads, freed at exit */
	size_t nretired;
	struct sm *sm;               /* embedded session server, or NULL */
	int draining;                /* atomic: readiness false */
	uint64_t reloads_ok, reloads_failed;   /* atomic */
};

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
	const struct config *cfg = __atomic_load_n(&e->cfg, __ATOMIC_ACQUIRE);

	mx_head(m, "xedge_build_info", "gauge", "The running version.");
	mx_printf(m, "xedge_build_info{version=\"%s\"} 1\n", XEDGE_VERSION);
	mx_head(m, "xedge_workers", "gauge", "Edge worker threads.");
	mx_val(m, "xedge_workers", "", (uint64_t)e->nworkers);
	mx_head(m, "xedge_draining", "gauge", "1 while draining (after SIGTERM).");
	mx_val(m, "xedge_draining", "", (uint64_t)__atomic_load_n(&e->draining, __ATOMIC_RELAXED));
	mx_head(m, "xedge_config_reloads_total", "counter", "Configuration reloads (SIGHUP), by result.");
	mx_val(m, "xedge_config_reloads_total", "result=\"ok\"", STAT_GET(e->reloads_ok));
	mx_val(m, "xedge_config_reloads_total", "result=\"failed\"", STAT_GET(e->reloads_failed));
	edge_metrics(m, cfg, e->workers, e->nworkers);
	if (e->sm)
		sm_metrics(e->sm, m);
}

static const char *admin_unready(void *arg)
{
	struct edge *e = arg;

	if (__atomic_load_n(&e->draining, __ATOMIC_RELAXED))
		return "draining";
	if (!e->cfg->backend_upstream && !edge_linked(e->workers, e->nworkers))
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

static bool str_differs(const char *a, const char *b)
{
	return (a == NULL) != (b == NULL) || (a && strcmp(a, b) != 0);
}

/* The first key a reload cannot apply that differs between the running
 * configuration and the new one (it needs a restart), or NULL. */
static const char *reload_blocker(const struct config *a, const struct config *b)
{
	if (a->workers != b->workers)
		return "workers";
	if (a->nlisteners != b->nlisteners)
		return "listeners";
	for (size_t i = 0; i < a->nlisteners; i++) {
		const struct config_listener *x = &a->listeners[i], *y = &b->listeners[i];
		if (x->kind != y->kind || x->port != y->port || strcmp(x->host, y->host) ||
		    x->proxy_protocol != y->proxy_protocol || str_differs(x->path, y->path) ||
		    x->backlog != y->backlog)
			return "listeners";
	}
	if (a->ndomains != b->ndomains)
		return "domains";
	for (size_t i = 0; i < a->ndomains; i++)
		if (strcmp(a->domains[i].name, b->domains[i].name))
			return "domains[].name";
	if (str_differs(a->backend_address, b->backend_address) || str_differs(a->backend_secret, b->backend_secret) ||
	    str_differs(a->backend_upstream, b->backend_upstream) || a->upstream_proxy != b->upstream_proxy ||
	    a->upstream_tls != b->upstream_tls)
		return "backend";
	if (str_differs(a->tls_ca_file, b->tls_ca_file))
		return "tls.ca_file";
	if (a->s2s.enabled != b->s2s.enabled || a->s2s.dialback != b->s2s.dialback ||
	    a->s2s.require_valid_certs != b->s2s.require_valid_certs ||
	    str_differs(a->s2s.dialback_secret, b->s2s.dialback_secret) ||
	    str_differs(a->s2s.dns_servers, b->s2s.dns_servers) || a->s2s.nroutes != b->s2s.nroutes)
		return "s2s";
	for (size_t i = 0; i < a->s2s.nroutes; i++)
		if (strcmp(a->s2s.routes[i].domain, b->s2s.routes[i].domain) ||
		    strcmp(a->s2s.routes[i].host, b->s2s.routes[i].host) ||
		    a->s2s.routes[i].port != b->s2s.routes[i].port ||
		    a->s2s.routes[i].direct_tls != b->s2s.routes[i].direct_tls)
			return "s2s.routes";
	if (a->ncomponents != b->ncomponents)
		return "components";
	for (size_t i = 0; i < a->ncomponents; i++)
		if (strcmp(a->components[i].name, b->components[i].name) ||
		    strcmp(a->components[i].secret, b->components[i].secret))
			return "components";
	if (str_differs(a->sm.database, b->sm.database) || str_differs(a->sm.admin_socket, b->sm.admin_socket) ||
	    str_differs(a->sm.listen, b->sm.listen) || str_differs(a->sm.secret, b->sm.secret) ||
	    a->sm.version_os != b->sm.version_os || a->sm.mam_retention_days != b->sm.mam_retention_days ||
	    a->sm.mam_default != b->sm.mam_default)
		return "session_server";
	if (str_differs(a->admin.address, b->admin.address))
		return "admin.address";
	return NULL;
}

/* SIGHUP: load the file again and switch to it, or keep the running
 * configuration and log why not. */
static void reload(struct edge *e, struct io_uring *ctl)
{
	struct config *next = calloc(1, sizeof(*next));
	int level = log_min_level;
	const char *blocker;
	char err[1024];

	notify_send("RELOADING=1\nMONOTONIC_USEC=%llu", (unsigned long long)now_ms() * 1000);
	log_info("reloading the configuration (SIGHUP)", "file=%s", e->cfg->path);
	if (!next || e->nretired == sizeof(e->retired) / sizeof(e->retired[0])) {
		log_error("reload failed: too many reloads kept in memory or out of memory; restart to reload "
			  "again (the running configuration stays)", "reloads=%zu", e->nretired);
		free(next);
		goto failed;
	}
	if (config_load(e->cfg->path, next, err, sizeof(err)) < 0) {
		log_min_level = level;
		log_error("reload failed: the running configuration stays", "why=\"%s\"", err);
		free(next);
		goto failed;
	}
	blocker = reload_blocker(e->cfg, next);
	if (blocker) {
		log_min_level = level;
		log_error("reload failed: a key that needs a restart changed (restart xedge to apply it); the "
			  "running configuration stays", "key=%s file=%s", blocker, next->path);
		config_free(next);
		free(next);
		goto failed;
	}
	if (tls_reload(next, next->s2s.enabled) < 0) {
		log_min_level = level;
		log_error("reload failed: the certificates or keys do not load (see the line above); the "
			  "running configuration stays", "file=%s", next->path);
		config_free(next);
		free(next);
		goto failed;
	}
	e->retired[e->nretired++] = e->cfg;
	__atomic_store_n(&e->cfg, next, __ATOMIC_RELEASE);
	for (int i = 0; i < e->nworkers; i++)
		__atomic_store_n(&e->workers[i].next_cfg, next, __ATOMIC_RELEASE);
	post_all(e, ctl, CTRL_RELOAD);
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

/* SIGTERM: readiness false, listeners closed, clients told to go at
 * drain.rate a second; returns when none is left, after drain.grace
 * seconds, or on a second SIGTERM or a SIGINT. */
static void drain(struct edge *e, struct io_uring *ctl, const sigset_t *sigs)
{
	const struct config *cfg = e->cfg;
	uint64_t start = now_ms(), deadline = start + (uint64_t)cfg->drain.grace * 1000, next_status = 0;
	uint32_t per = cfg->drain.rate / (uint32_t)e->nworkers;
	struct timespec ts = { 0, TICK_MS * 1000000L };
	uint64_t left;
	int sig;

	__atomic_store_n(&e->draining, 1, __ATOMIC_RELAXED);
	for (int i = 0; i < e->nworkers; i++)
		e->workers[i].drain_rate = per ? per : 1;
	log_info("draining (SIGTERM): listeners closed, clients told to go", "clients=%llu rate=%u/s grace=%us redirect=%s",
		 (unsigned long long)edge_clients(e->workers, e->nworkers), cfg->drain.rate, cfg->drain.grace,
		 cfg->drain.redirect ? cfg->drain.redirect : "-");
	post_all(e, ctl, CTRL_DRAIN);
	for (;;) {
		uint64_t now = now_ms();
		left = edge_clients(e->workers, e->nworkers);
		if (left == 0) {
			log_info("drained: no client left", "seconds=%.1f", (double)(now - start) / 1000);
			return;
		}
		if (now >= deadline) {
			log_info("drain grace period over: closing the rest", "clients=%llu grace=%us",
				 (unsigned long long)left, cfg->drain.grace);
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
 * The signal loop: reloads on SIGHUP, drains on SIGTERM, returns on SIGINT
 * or once drained; meanwhile, when systemd listens (notify.h), WATCHDOG=1 at
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
			notify_status(e, "serving");
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
		if (sig == SIGHUP) {
			reload(e, ctl);
		} else if (sig == SIGTERM) {
			notify_send("STOPPING=1\nSTATUS=draining");
			drain(e, ctl, sigs);
			return sig;
		} else if (sig == SIGINT) {
			notify_send("STOPPING=1\nSTATUS=stopping");
			return sig;
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

/* The embedded session server, created but not started: its links are added
 * first (sm.h: only its own thread may touch it once sm_run() runs). */
static struct sm *new_embedded_sm(const struct config *cfg)
{
	const char *domains[CONFIG_MAX_DOMAINS];
	struct sm_config smc = { 0 };
	struct sm *sm;

	for (size_t i = 0; i < cfg->ndomains; i++)
		domains[i] = cfg->domains[i].name;
	smc.database = cfg->sm.database ? cfg->sm.database : "xedge.db";
	smc.admin_socket = cfg->sm.admin_socket;
	smc.listen = cfg->sm.listen;
	smc.secret = cfg->sm.secret;
	smc.hide_os = !cfg->sm.version_os;
	smc.mam_retention_days = cfg->sm.mam_retention_days;
	smc.mam_default = cfg->sm.mam_default;
	smc.domains = domains;
	smc.ndomains = cfg->ndomains;
	sm = sm_new(&smc);
	return sm;
}

int main(int argc, char **argv)
{
	static struct edge e;
	struct config *cfg;
	char err[1024];
	const char *path = NULL;
	bool check = false;
	struct offload pool = { 0 };
	struct admin_http *admin = NULL;
	pthread_t sm_thr;
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

	notifying = notify_init();   /* before any thread: it unsets the variables */
	if (claim_addresses(cfg, claims, &nclaims) < 0)
		goto out;
	/* Signals go to sigtimedwait() in this thread only. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);
	raise_nofile();

	nworkers = cfg->workers > 0 ? cfg->workers : (int)sysconf(_SC_NPROCESSORS_ONLN);
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
		e.sm = new_embedded_sm(cfg);
		if (!e.sm) {
			log_error("cannot start the embedded session server", "database=%s",
				  cfg->sm.database ? cfg->sm.database : "xedge.db");
			goto out_ring;
		}
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
	e.workers = calloc((size_t)nworkers, sizeof(*e.workers));
	if (!e.workers)
		goto out_sm_unstarted;
	for (int i = 0; i < nworkers; i++) {
		struct worker *w = &e.workers[i];
		w->id = i;
		w->cfg = cfg;
		w->offload = &pool;
		w->sm_fd = -1;
		if (e.sm) {
			int sv[2];
			if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0 || sm_add_link(e.sm, sv[1]) < 0) {
				log_error("cannot link a worker to the embedded session server", "err=%s", strerror(errno));
				goto out_sm_unstarted;
			}
			w->sm_fd = sv[0];
		}
	}
	if (e.sm && pthread_create(&sm_thr, NULL, sm_thread, e.sm) != 0) {
		log_error("cannot start the embedded session server thread", "%s", "");
		goto out_sm_unstarted;
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
	admin_http_stop(admin);
	for (int i = 0; i < nworkers; i++)
		worker_post(&e.workers[i], &ctl, CTRL_STOP);
	for (int i = 0; i < nworkers; i++)
		pthread_join(e.workers[i].thread, NULL);
	free(e.workers);
	offload_stop(&pool);   /* every job came back: workers wait for theirs */
	s2s_process_fini();
	if (e.sm) {
		sm_stop(e.sm);
		pthread_join(sm_thr, NULL);
		sm_free(e.sm);
	}
	goto out_ring;
out_sm_unstarted:
	free(e.workers);
	offload_stop(&pool);   /* a no-op unless it started */
	s2s_process_fini();
	if (e.sm)
		sm_free(e.sm);
out_ring:
	io_uring_queue_exit(&ctl);
out:
	for (size_t i = 0; i < nclaims; i++)
		close(claims[i]);
	tls_shutdown();
	for (size_t i = 0; i < e.nretired; i++) {
		config_free(e.retired[i]);
		free(e.retired[i]);
	}
	config_free(e.cfg ? e.cfg : cfg);
	free(e.cfg ? e.cfg : cfg);
	return rc;
}
