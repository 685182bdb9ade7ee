/*
 * xedge — the edge.  Loads the configuration, starts the session server
 * (embedded, unless a backend is configured), the offload pool (slow jobs:
 * PLAIN's PBKDF2), one io_uring worker per core, and waits for
 * SIGTERM/SIGINT, which drains the workers; the pool stops after them.
 * Under systemd (notify.h) it reports READY=1 once listening, a STATUS line
 * every 10 s, WATCHDOG=1 when asked, and STOPPING=1 at shutdown.
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

#include "core/claim.h"
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

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* The STATUS line.  Each worker's nconns is written only by its own thread
 * (relaxed atomic stores, plain movs) and read here without a lock (relaxed
 * loads): the sum may be a moment stale, which is fine for a status line. */
static void notify_status(const struct worker *workers, int nworkers)
{
	unsigned long conns = 0;

	for (int i = 0; i < nworkers; i++)
		conns += __atomic_load_n(&workers[i].nconns, __ATOMIC_RELAXED);
	notify_send("STATUS=serving: %lu connections on %d workers", conns, nworkers);
}

/*
 * Waits for SIGTERM or SIGINT; meanwhile, when systemd listens (notify.h),
 * sends WATCHDOG=1 at half the watchdog interval and a STATUS line every
 * STATUS_EVERY_MS.  Returns the signal.
 */
static int wait_for_stop(const sigset_t *sigs, const struct worker *workers, int nworkers, bool notifying)
{
	uint64_t wd = notify_watchdog_ms(), next_status = 0, next_wd = 0, now, wake;
	struct timespec ts;
	int sig;

	if (!notifying) {
		do {
			if (sigwait(sigs, &sig) != 0)
				sig = SIGTERM;
		} while (sig != SIGTERM && sig != SIGINT);
		return sig;
	}
	for (;;) {
		now = now_ms();
		if (now >= next_status) {
			notify_status(workers, nworkers);
			next_status = now + STATUS_EVERY_MS;
		}
		if (wd && now >= next_wd) {
			notify_send("WATCHDOG=1");
			next_wd = now + wd;
		}
		wake = wd && next_wd < next_status ? next_wd : next_status;
		ts.tv_sec = (time_t)((wake - now) / 1000);
		ts.tv_nsec = (long)((wake - now) % 1000) * 1000000;
		sig = sigtimedwait(sigs, NULL, &ts);
		if (sig == SIGTERM || sig == SIGINT)
			return sig;
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
		snprintf(addr, sizeof(addr), strchr(cl->host, ':') ? "[%s]:%u" : "%s:%u", cl->host, cl->port);
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
	struct config cfg;
	char err[1024];
	const char *path = NULL;
	bool check = false;
	struct worker *workers = NULL;
	struct sm *sm = NULL;
	struct offload pool = { 0 };
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
	if (config_load(path, &cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	if (cfg.nlisteners == 0) {
		fprintf(stderr, "%s: no 'listeners' configured: add at least one (type c2s or c2s_tls)\n", path);
		config_free(&cfg);
		return 1;
	}
	if (tls_init(&cfg) < 0 || (cfg.s2s.enabled && tls_init_s2s(&cfg) < 0)) {
		fprintf(stderr, "%s: TLS set-up failed (see the log line above)\n", path);
		tls_shutdown();
		config_free(&cfg);
		return 1;
	}
	if (check) {
		printf("%s: ok\n", path);
		tls_shutdown();
		config_free(&cfg);
		return 0;
	}

	notifying = notify_init();   /* before any thread: it unsets the variables */
	if (claim_addresses(&cfg, claims, &nclaims) < 0)
		goto out;
	/* Signals go to sigwait() in this thread only. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);
	raise_nofile();

	nworkers = cfg.workers > 0 ? cfg.workers : (int)sysconf(_SC_NPROCESSORS_ONLN);
	if (nworkers < 1)
		nworkers = 1;
	if (io_uring_queue_init(8, &ctl, 0) < 0) {
		log_error("io_uring is not available: xedge needs Linux 6.1+ with io_uring enabled", "%s", "");
		goto out;
	}
	if (cfg.backend_upstream) {
		log_info("upstream mode: each client is relayed to its own stream on the upstream server",
			 "upstream=%s proxy_protocol=%s", cfg.backend_upstream,
			 cfg.upstream_proxy == PROXY_V2 ? "v2" : cfg.upstream_proxy == PROXY_V1 ? "v1" : "none");
	} else if (!cfg.backend_address) {
		sm = new_embedded_sm(&cfg);
		if (!sm) {
			log_error("cannot start the embedded session server", "database=%s",
				  cfg.sm.database ? cfg.sm.database : "xedge.db");
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
	if (s2s_process_init(&cfg) < 0)
		goto out_sm_unstarted;
	workers = calloc((size_t)nworkers, sizeof(*workers));
	if (!workers)
		goto out_sm_unstarted;
	for (int i = 0; i < nworkers; i++) {
		struct worker *w = &workers[i];
		w->id = i;
		w->cfg = &cfg;
		w->offload = &pool;
		w->sm_fd = -1;
		if (sm) {
			int sv[2];
			if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0 || sm_add_link(sm, sv[1]) < 0) {
				log_error("cannot link a worker to the embedded session server", "err=%s", strerror(errno));
				free(workers);
				goto out_sm_unstarted;
			}
			w->sm_fd = sv[0];
		}
	}
	if (sm && pthread_create(&sm_thr, NULL, sm_thread, sm) != 0) {
		log_error("cannot start the embedded session server thread", "%s", "");
		free(workers);
		goto out_sm_unstarted;
	}
	for (int i = 0; i < nworkers; i++) {
		struct worker *w = &workers[i];
		r = worker_start(w);
		if (r < 0) {
			log_error("worker failed to start", "worker=%d err=%s", i, strerror(-r));
			nworkers = i;
			goto out_workers;
		}
	}
	for (size_t i = 0; i < cfg.nlisteners; i++) {
		static const char *const kinds[] = { "?", "c2s-starttls", "c2s-direct-tls", "ws", "wss",
						     "s2s-starttls", "s2s-direct-tls", "component" };
		const struct config_listener *cl = &cfg.listeners[i];
		log_info("listening", "address=%s:%u type=%s path=%s proxy_protocol=%s", cl->host, cl->port,
			 kinds[cl->kind], cl->path ? cl->path : "-", cl->proxy_protocol ? "required" : "no");
	}
	log_info("xedge started", "version=%s workers=%d offload_threads=%d domains=%zu backend=%s",
		 XEDGE_VERSION, nworkers, npool, cfg.ndomains, cfg.backend_upstream ? "upstream" : cfg.backend_address ? cfg.backend_address
		 : "embedded");
	notify_send("READY=1\nMAINPID=%ld", (long)getpid());
	rc = 0;
	sig = wait_for_stop(&sigs, workers, nworkers, notifying);
	notify_send("STOPPING=1\nSTATUS=shutting down (signal %d)", sig);
	log_info("shutting down", "signal=%d", sig);

out_workers:
	for (int i = 0; i < nworkers; i++)
		worker_post(&workers[i], &ctl, CTRL_STOP);
	for (int i = 0; i < nworkers; i++)
		pthread_join(workers[i].thread, NULL);
	free(workers);
	offload_stop(&pool);   /* every job came back: workers wait for theirs */
	s2s_process_fini();
	if (sm) {
		sm_stop(sm);
		pthread_join(sm_thr, NULL);
		sm_free(sm);
	}
	goto out_ring;
out_sm_unstarted:
	offload_stop(&pool);   /* a no-op unless it started */
	s2s_process_fini();
	if (sm)
		sm_free(sm);
out_ring:
	io_uring_queue_exit(&ctl);
out:
	for (size_t i = 0; i < nclaims; i++)
		close(claims[i]);
	tls_shutdown();
	config_free(&cfg);
	return rc;
}
