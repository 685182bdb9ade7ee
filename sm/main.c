/*
 * xedge-sm — the reference session server as its own process.
 *
 *   xedge-sm -c FILE               serve (the session_server: and domains:
 *                                  sections of the xedge configuration)
 *   xedge-sm --check-config FILE   validate FILE, print "FILE: ok" or the
 *                                  error, exit 0 or 1
 *
 * Edges connect to session_server.listen ("host:port" or "unix:/path") and
 * present session_server.secret in their HELLO.  SIGTERM and SIGINT stop it
 * (sm_stop from the handler: it only writes an eventfd).  Under systemd
 * (core/notify.h) it sends READY=1 once its listener is open, STOPPING=1
 * when it stops, and from its event loop a STATUS line with the session and
 * link counts every 10 s and WATCHDOG=1 at half of $WATCHDOG_USEC.
 */
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/claim.h"
#include "core/config.h"
#include "core/log.h"
#include "core/notify.h"
#include "core/version.h"
#include "sm/sm.h"

#define STATUS_EVERY_MS 10000

static struct sm *running;

static void on_signal(int sig)
{
	(void)sig;
	if (running)
		sm_stop(running);
}

/* sm_config.tick, on the sm thread: systemd's STATUS line and watchdog. */
static void notify_tick(void *arg, size_t nsessions, size_t nlinks)
{
	int64_t *next_status = arg;
	struct timespec ts;
	int64_t now;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	now = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	if (notify_watchdog_ms())
		notify_send("WATCHDOG=1");
	if (now >= *next_status) {
		notify_send("STATUS=serving: %zu sessions, %zu edge links", nsessions, nlinks);
		*next_status = now + STATUS_EVERY_MS;
	}
}

static void usage(FILE *f)
{
	fprintf(f, "usage: xedge-sm -c CONFIG               run the session server\n"
		   "       xedge-sm --check-config CONFIG   validate CONFIG and exit (0: ok)\n"
		   "       xedge-sm --version\n");
}

/* What the sm needs beyond what config_load() checks. */
static int check_sm(const struct config *cfg, char *err, size_t errlen)
{
	if (!cfg->sm.database) {
		snprintf(err, errlen, "%s: session_server.database is not set: name the SQLite file "
			 "that holds accounts and rosters", cfg->path);
		return -1;
	}
	if (!cfg->sm.listen)
		snprintf(err, errlen, "%s: session_server.listen is not set: no edge can connect "
			 "(set it to \"host:port\" or \"unix:/path\")", cfg->path);
	return cfg->sm.listen ? 0 : -1;
}

int main(int argc, char **argv)
{
	const char *path = NULL, *domains[CONFIG_MAX_DOMAINS];
	struct sm_config smc = { 0 };
	struct sigaction sa;
	struct config cfg;
	char err[1024];
	bool check = false, notifying;
	int64_t next_status = 0;
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
	smc.domains = domains;
	smc.ndomains = cfg.ndomains;
	if (notifying) {
		uint64_t wd = notify_watchdog_ms();
		smc.tick = notify_tick;
		smc.tick_arg = &next_status;
		smc.tick_ms = wd && wd < STATUS_EVERY_MS ? (int)wd : STATUS_EVERY_MS;
	}
	sm = sm_new(&smc);
	if (!sm) {
		log_error("xedge-sm cannot start", "config=\"%s\"", path);
		close(claim);
		config_free(&cfg);
		return 1;
	}

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	running = sm;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);

	log_info("xedge-sm started", "config=\"%s\" database=\"%s\" listen=\"%s\" admin_socket=\"%s\" "
		 "domains=%zu secret=%s", path, smc.database, smc.listen,
		 smc.admin_socket ? smc.admin_socket : "", cfg.ndomains,
		 smc.secret && *smc.secret ? "set" : "none");
	notify_send("READY=1\nMAINPID=%ld\nSTATUS=serving %zu domains, listening on %s",
		    (long)getpid(), cfg.ndomains, smc.listen);
	rc = sm_run(sm);
	notify_send("STOPPING=1");
	running = NULL;
	sm_free(sm);
	log_info("xedge-sm stopped", "status=%d", rc);
	close(claim);
	config_free(&cfg);
	return rc < 0 ? 1 : 0;
}
