/*
 * xedge-sm — the reference session server as its own process.
 *
 *   xedge-sm -c FILE               serve (the session_server: and domains:
 *                                  sections of the xedge configuration)
 *   xedge-sm --check-config FILE   validate FILE, print "FILE: ok" or the
 *                                  error, exit 0 or 1
 *
 * Edges connect to session_server.listen ("host:port" or "unix:/path") and
 * present session_server.secret in their HELLO.  Signals are taken by a
 * thread of their own (sigtimedwait): SIGTERM and SIGINT stop it (sm_stop
 * only writes an eventfd); SIGHUP reads the file again and applies its
 * log_level (the other keys of a session server need a restart, and the
 * log says so).  With `admin: {address: ...}` an admin HTTP listener serves
 * /metrics (xedge_sm_*), /healthz and /readyz.  Under systemd
 * (core/notify.h) it sends READY=1 once its listener is open, STOPPING=1
 * when it stops, and from its event loop a STATUS line with the session and
 * link counts every 10 s and WATCHDOG=1 at half of $WATCHDOG_USEC.
 */
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/admin_http.h"
#include "core/claim.h"
#include "core/config.h"
#include "core/discover.h"
#include "core/log.h"
#include "core/notify.h"
#include "core/version.h"
#include "core/metrics.h"
#include "parser/hostport.h"
#include "sm/sm.h"
#include "sm/store.h"

#define STATUS_EVERY_MS 10000

struct sm_proc {
	struct sm *sm;
	const char *path;
	sigset_t sigs;
	int done;                /* atomic: sm_run returned, the signal thread ends */
	int stopping;            /* atomic: readiness false */
	bool notifying;          /* under systemd: STATUS and WATCHDOG from the tick */
	int64_t next_watchdog;   /* monotonic ms of the next WATCHDOG=1 */
	int64_t next_status;
	/* A new shard set (a reload of backend.shards, or backend.discover's
	 * thread) waiting for the sm thread's next tick (sm_members_set). */
	pthread_mutex_t mlock;
	char **mnames;           /* (mlock) NULL: none waiting */
	size_t mn;
	char *mself;             /* (mlock) this server's name in it, or NULL */
	char **names;            /* the set in use (the sm thread's), for comparing */
	size_t n;
};

#define MEMBERS_TICK_MS 200   /* how soon a new shard set applies */

/* Leave names[0..n) (copied) and self for the sm thread.  false: out of memory. */
static bool members_post(struct sm_proc *p, const char *const *names, size_t n, const char *self)
{
	char **v = calloc(n ? n : 1, sizeof(*v));
	char *me = self ? strdup(self) : NULL;
	size_t i = 0;

	for (; v && i < n && (v[i] = strdup(names[i])); i++)
		;
	if (!v || i < n || (self && !me)) {
		discover_names_free(v, i);
		free(me);
		return false;
	}
	pthread_mutex_lock(&p->mlock);
	discover_names_free(p->mnames, p->mn);
	free(p->mself);
	p->mnames = v;
	p->mn = n;
	p->mself = me;
	pthread_mutex_unlock(&p->mlock);
	return true;
}

/* backend.discover's thread: a new shard set. */
static void members_found(void *arg, const char *const *names, size_t n)
{
	struct sm_proc *p = arg;

	pthread_mutex_lock(&p->mlock);
	char *self = p->mself ? strdup(p->mself) : NULL;
	pthread_mutex_unlock(&p->mlock);
	if (!members_post(p, names, n, self))
		log_error("shard discovery: out of memory, the set is not applied", "shards=%zu", n);
	free(self);
}

static int sm_shard_self(const struct config *cfg);

/* SIGHUP: the log level and backend.shards are the keys a running session
 * server takes from the file again; anything else needs a restart. */
static void reload(struct sm_proc *p)
{
	struct config cfg;
	int level = LOG_MIN_LEVEL();
	char err[1024];

	notify_send("RELOADING=1");
	if (config_load(p->path, &cfg, err, sizeof(err)) < 0) {
		log_set_min_level(level);
		log_error("reload failed: the running configuration stays", "why=\"%s\"", err);
	} else {
		int self = sm_shard_self(&cfg);

		if (cfg.nbackend_shards > 1 && self < 0)
			log_error("reload: this session server is not in the new backend.shards: it owns no "
				  "account now (set session_server.shard to its entry)", "file=%s", p->path);
		if (cfg.nbackend_shards && !cfg.backend_discover_srv &&
		    !members_post(p, (const char *const *)cfg.backend_shard_names, cfg.nbackend_shards,
				  self >= 0 ? cfg.backend_shard_names[self] : NULL))
			log_error("reload: backend.shards not applied (out of memory)", "file=%s", p->path);
		log_info("configuration reloaded: log_level and backend.shards applied (other "
			 "session_server keys take a restart)", "file=%s log_level=%d shards=%zu", p->path,
			 cfg.log_level, cfg.nbackend_shards);
		config_free(&cfg);
	}
	notify_send("READY=1");
}

static void *signal_thread(void *arg)
{
	struct sm_proc *p = arg;
	struct timespec ts = { 0, 200 * 1000000L };

	while (!__atomic_load_n(&p->done, __ATOMIC_ACQUIRE)) {
		int sig = sigtimedwait(&p->sigs, NULL, &ts);
		if (sig == SIGHUP) {
			reload(p);
		} else if (sig == SIGUSR1) {
			log_warn("SIGUSR1 ignored: a session server does not drain (edges do); stop it with SIGTERM",
				 "%s", "");
		} else if (sig == SIGTERM || sig == SIGINT) {
			__atomic_store_n(&p->stopping, 1, __ATOMIC_RELAXED);
			log_info("stopping", "signal=%d", sig);
			sm_stop(p->sm);
		}
	}
	return NULL;
}

static void admin_metrics(void *arg, struct mx *m)
{
	struct sm_proc *p = arg;

	mx_head(m, "xedge_sm_build_info", "gauge", "The running version.");
	mx_printf(m, "xedge_sm_build_info{version=\"%s\"} 1\n", XEDGE_VERSION);
	sm_metrics(&p->sm, 1, m);
}

static const char *admin_unready(void *arg)
{
	struct sm_proc *p = arg;

	return __atomic_load_n(&p->stopping, __ATOMIC_RELAXED) ? "stopping" : NULL;
}

/* sm_config.tick, on the sm thread: a new shard set; systemd's STATUS
 * line and watchdog. */
static void proc_tick(void *arg, size_t nsessions, size_t nlinks)
{
	struct sm_proc *p = arg;
	struct timespec ts;
	char **v, *self;
	int64_t now;
	size_t n;

	pthread_mutex_lock(&p->mlock);
	v = p->mnames;
	n = p->mn;
	self = p->mself ? strdup(p->mself) : NULL;
	p->mnames = NULL;
	p->mn = 0;
	pthread_mutex_unlock(&p->mlock);
	if (v && hostport_set_equal((const char *const *)v, n, (const char *const *)p->names, p->n)) {
		discover_names_free(v, n);
	} else if (v && sm_members_set(p->sm, (const char *const *)v, n, self) == 0) {
		discover_names_free(p->names, p->n);
		p->names = v;
		p->n = n;
	} else if (v) {
		log_error("shard set not applied: out of memory", "shards=%zu", n);
		discover_names_free(v, n);
	}
	free(self);
	if (!p->notifying)
		return;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	/* The tick runs faster (shard-set changes); the watchdog wants one ping
	 * per half of its period, not one per tick. */
	if (notify_watchdog_ms() && now >= p->next_watchdog) {
		notify_send("WATCHDOG=1");
		p->next_watchdog = now + (int64_t)notify_watchdog_ms();
	}
	if (now >= p->next_status) {
		notify_send("STATUS=serving: %zu sessions, %zu edge links", nsessions, nlinks);
		p->next_status = now + STATUS_EVERY_MS;
	}
}

static void usage(FILE *f)
{
	fprintf(f, "usage: xedge-sm -c CONFIG               run the session server\n"
		   "       xedge-sm --check-config CONFIG   validate CONFIG and exit (0: ok)\n"
		   "       xedge-sm --version\n");
}

/* Which entry of backend.shards this process is: session_server.shard, or
 * else the entry equal to session_server.listen; -1 when none. */
static int sm_shard_self(const struct config *cfg)
{
	const char *me = cfg->sm.shard ? cfg->sm.shard : cfg->sm.listen;

	for (size_t i = 0; me && i < cfg->nbackend_shards; i++)
		if (!strcmp(cfg->backend_shard_names[i], me) || !strcmp(cfg->backend_shards[i], me))
			return (int)i;
	return -1;
}

/* What the sm needs beyond what config_load() checks. */
static int check_sm(const struct config *cfg, char *err, size_t errlen)
{
	if (!cfg->sm.database) {
		snprintf(err, errlen, "%s: session_server.database is not set: name the SQLite file "
			 "(or the postgresql:// URI) that holds accounts and rosters", cfg->path);
		return -1;
	}
	if (!cfg->sm.listen) {
		snprintf(err, errlen, "%s: session_server.listen is not set: no edge can connect "
			 "(set it to \"host:port\" or \"unix:/path\")", cfg->path);
		return -1;
	}
	if (cfg->backend_discover_srv && !cfg->sm.shard) {
		snprintf(err, errlen, "%s: backend.discover needs session_server.shard (or "
			 "XEDGE_SESSION_SERVER_SHARD): this server's target:port in the SRV records, such as "
			 "xedge-sm-0.xedge-sm.default.svc.cluster.local:5280", cfg->path);
		return -1;
	}
	if (cfg->nbackend_shards > 1 && sm_shard_self(cfg) < 0) {
		snprintf(err, errlen, "%s: this session server is not one of backend.shards: set "
			 "session_server.shard (or XEDGE_SESSION_SERVER_SHARD) to its entry there",
			 cfg->path);
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	const char *path = NULL, *domains[CONFIG_MAX_DOMAINS];
	struct sm_config smc = { 0 };
	static struct sm_proc proc = { .mlock = PTHREAD_MUTEX_INITIALIZER };
	struct discover *disc = NULL;
	struct admin_http *admin = NULL;
	pthread_t sig_thr;
	struct config cfg;
	char dbname[512];
	char err[1024];
	bool check = false, notifying;
	struct sm *sm;
	int rc, claim;

	for (int i = 1; i < argc; i++) {
		if ((!strcmp(argv[i], "-c") || !strcmp(argv[i], "--config")) && i + 1 < argc) {
			path = argv[++i];
		} else if (!strcmp(argv[i], "--check-config") && i + 1 < argc) {
			path = argv[++i];
			check = true;
		} else if (!strcmp(argv[i], "--version")) {
			printf("xedge-sm %s\n", XEDGE_VERSION);
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
	if (check_sm(&cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		config_free(&cfg);
		return 1;
	}
	if (check) {
		printf("%s: ok\n", path);
		config_free(&cfg);
		return 0;
	}

	notifying = notify_init();
	/* One session server per address: claim it before the listener opens
	 * (core/claim.h); the claim stays open until exit. */
	claim = claim_address(cfg.sm.listen, "change session_server.listen", err, sizeof(err));
	if (claim < 0) {
		fprintf(stderr, "%s\n", err);
		config_free(&cfg);
		return 1;
	}
	for (size_t i = 0; i < cfg.ndomains; i++)
		domains[i] = cfg.domains[i].name;
	smc.database = cfg.sm.database;
	smc.admin_socket = cfg.sm.admin_socket;
	smc.listen = cfg.sm.listen;
	smc.secret = cfg.sm.secret;
	smc.hide_os = !cfg.sm.version_os;
	smc.mam_retention_days = cfg.sm.mam_retention_days;
	smc.mam_default = cfg.sm.mam_default;
	smc.muc_domain = cfg.sm.muc_domain;
	smc.muc_history = cfg.sm.muc_history;
	smc.pubsub_domain = cfg.sm.pubsub_domain;
	smc.upload_domain = cfg.upload.domain;
	smc.upload_max_size = cfg.upload.max_size;
	smc.admins = (const char *const *)cfg.admins;
	smc.nadmins = cfg.nadmins;
	smc.domains = domains;
	smc.ndomains = cfg.ndomains;
	if (cfg.nbackend_shards > 1) {
		smc.shards = (const char *const *)cfg.backend_shard_names;
		smc.nshards = cfg.nbackend_shards;
		smc.shard_self = (size_t)sm_shard_self(&cfg);
	}
	proc.notifying = notifying;
	if (notifying) {
		uint64_t wd = notify_watchdog_ms();
		smc.tick_ms = wd && wd < STATUS_EVERY_MS ? (int)wd : STATUS_EVERY_MS;
	}
	/* A new shard set (SIGHUP, discovery) applies this soon. */
	if (!smc.tick_ms || smc.tick_ms > MEMBERS_TICK_MS)
		smc.tick_ms = MEMBERS_TICK_MS;
	smc.tick = proc_tick;
	smc.tick_arg = &proc;
	if (cfg.nbackend_shards) {
		proc.names = calloc(cfg.nbackend_shards, sizeof(*proc.names));
		for (size_t i = 0; proc.names && i < cfg.nbackend_shards; i++)
			if ((proc.names[proc.n] = strdup(cfg.backend_shard_names[i])))
				proc.n++;
	}
	/* Every thread (the storage thread, the admin thread) inherits the
	 * mask: the signals go to signal_thread only. */
	sigemptyset(&proc.sigs);
	sigaddset(&proc.sigs, SIGTERM);
	sigaddset(&proc.sigs, SIGINT);
	sigaddset(&proc.sigs, SIGHUP);
	sigaddset(&proc.sigs, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &proc.sigs, NULL);
	signal(SIGPIPE, SIG_IGN);
	sm = sm_new(&smc);
	if (!sm) {
		log_error("xedge-sm cannot start", "config=\"%s\"", path);
		close(claim);
		config_free(&cfg);
		return 1;
	}

	proc.sm = sm;
	proc.path = path;
	if (cfg.backend_discover_srv) {
		/* The first lookup before serving, then the discover thread. */
		char **names = NULL;
		size_t n = 0;
		int r = discover_lookup(cfg.backend_discover_srv, &names, &n);

		proc.mself = strdup(cfg.sm.shard);
		if (r < 0)
			log_warn("shard discovery: nothing found yet; this server owns no account until it is",
				 "srv=%s err=%s", cfg.backend_discover_srv, strerror(-r));
		if (!proc.mself || sm_members_set(sm, (const char *const *)names, n, cfg.sm.shard) < 0 ||
		    discover_start(&disc, cfg.backend_discover_srv, cfg.backend_discover_interval, 1,
				   (const char *const *)names, n, members_found, &proc) < 0) {
			log_error("xedge-sm cannot start its shard discovery", "srv=%s", cfg.backend_discover_srv);
			discover_names_free(names, n);
			sm_free(sm);
			close(claim);
			config_free(&cfg);
			return 1;
		}
		proc.names = names;
		proc.n = n;
	}
	if (cfg.admin.address) {
		static const struct admin_http_ops ops = { .metrics = admin_metrics, .unready = admin_unready,
							   .arg = &proc };
		admin = admin_http_start(cfg.admin.address, &ops);
		if (!admin) {
			discover_stop(disc);
			sm_free(sm);
			close(claim);
			config_free(&cfg);
			return 1;
		}
	}
	if (pthread_create(&sig_thr, NULL, signal_thread, &proc) != 0) {
		log_error("xedge-sm cannot start its signal thread", "%s", "");
		discover_stop(disc);
		admin_http_stop(admin);
		sm_free(sm);
		close(claim);
		config_free(&cfg);
		return 1;
	}

	sm_store_describe(smc.database, dbname, sizeof(dbname));   /* no password in logs */
	log_info("xedge-sm started", "config=\"%s\" database=\"%s\" listen=\"%s\" admin_socket=\"%s\" "
		 "domains=%zu secret=%s", path, dbname, smc.listen,
		 smc.admin_socket ? smc.admin_socket : "", cfg.ndomains,
		 smc.secret && *smc.secret ? "set" : "none");
	notify_send("READY=1\nMAINPID=%ld\nSTATUS=serving %zu domains, listening on %s",
		    (long)getpid(), cfg.ndomains, smc.listen);
	rc = sm_run(sm);
	notify_send("STOPPING=1");
	__atomic_store_n(&proc.done, 1, __ATOMIC_RELEASE);
	pthread_join(sig_thr, NULL);
	discover_stop(disc);
	discover_names_free(proc.names, proc.n);
	discover_names_free(proc.mnames, proc.mn);
	free(proc.mself);
	admin_http_stop(admin);
	sm_free(sm);
	log_info("xedge-sm stopped", "status=%d", rc);
	close(claim);
	config_free(&cfg);
	return rc < 0 ? 1 : 0;
}
