/*
 * ctlproc — reload, drain and stats for xedgectl (ctlproc.h).
 */
#include <errno.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "core/claim.h"
#include "core/ctlproc.h"
#include "core/link.h"
#include "core/metrics.h"

#define HTTP_TIMEOUT_S 5

/* The process serving cfg, with the address it was found by in addr. */
static pid_t serving_pid(const struct config *cfg, char *addr, size_t cap)
{
	if (cfg->nlisteners)
		config_listener_addr(&cfg->listeners[0], addr, cap);
	else if (cfg->sm.listen)
		snprintf(addr, cap, "%s", cfg->sm.listen);
	else
		return 0;
	return claim_owner(addr);
}

static pid_t find(const struct config *cfg, const char *cmd)
{
	char addr[300];
	pid_t pid = serving_pid(cfg, addr, sizeof(addr));

	if (pid <= 0)
		fprintf(stderr, "xedgectl %s: no running xedge serves %s (the first address of %s): start it, "
			"or pass its config with -c\n", cmd, addr[0] ? addr : "(no listener)", cfg->path);
	return pid;
}

static double mono_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* GET path from the admin listener into out (NUL-terminated body).
 * Returns the HTTP status, or -1 when it cannot be reached. */
static int http_get(const char *address, const char *path, struct mx *out)
{
	struct sockaddr_storage ss;
	struct timeval tv = { .tv_sec = HTTP_TIMEOUT_S };
	struct mx resp = { 0 };
	char buf[16384], *body;
	socklen_t len;
	ssize_t n;
	int fd, status = -1;

	if (endpoint_resolve(address, &ss, &len) < 0)
		return -1;
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	n = snprintf(buf, sizeof(buf), "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", path, address);
	if (connect(fd, (struct sockaddr *)&ss, len) < 0 || send(fd, buf, (size_t)n, MSG_NOSIGNAL) != n)
		goto out;
	while ((n = recv(fd, buf, sizeof(buf), 0)) > 0)
		mx_printf(&resp, "%.*s", (int)n, buf);
	if (n < 0 || resp.failed || !resp.p || sscanf(resp.p, "HTTP/1.%*d %d", &status) != 1) {
		status = -1;
		goto out;
	}
	body = strstr(resp.p, "\r\n\r\n");
	mx_printf(out, "%s", body ? body + 4 : "");
out:
	close(fd);
	mx_free(&resp);
	return status;
}

/* The sum of the samples of metric `name` whose labels contain `filter`
 * (NULL: all); -1 when there is none. */
static double msum(const char *text, const char *name, const char *filter)
{
	size_t nl = strlen(name);
	double total = -1;

	for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
		const char *end = strchr(p, '\n'), *sp;
		char line[512];
		size_t ll = end ? (size_t)(end - p) : strlen(p);

		if (ll >= sizeof(line) || strncmp(p, name, nl) != 0 || (p[nl] != '{' && p[nl] != ' '))
			continue;
		memcpy(line, p, ll);
		line[ll] = 0;
		if (filter && !strstr(line, filter))
			continue;
		sp = strrchr(line, ' ');
		if (sp)
			total = (total < 0 ? 0 : total) + strtod(sp + 1, NULL);
	}
	return total;
}

/* xedge_config_reloads_total by result; false when not reachable. */
static bool reload_counts(const struct config *cfg, double *ok, double *failed)
{
	struct mx m = { 0 };
	bool got = false;

	if (http_get(cfg->admin.address, "/metrics", &m) == 200 && m.p) {
		*ok = msum(m.p, "xedge_config_reloads_total", "\"ok\"");
		*failed = msum(m.p, "xedge_config_reloads_total", "\"failed\"");
		got = *ok >= 0 && *failed >= 0;
	}
	mx_free(&m);
	return got;
}

int ctlproc_reload(const struct config *cfg)
{
	pid_t pid = find(cfg, "reload");
	double ok0, failed0, ok, failed;
	bool watch;

	if (pid <= 0)
		return 1;
	watch = cfg->admin.address && reload_counts(cfg, &ok0, &failed0);
	if (kill(pid, SIGHUP) < 0) {
		fprintf(stderr, "xedgectl reload: cannot signal pid %d: %s (run as its user or root)\n", (int)pid,
			strerror(errno));
		return 1;
	}
	if (!watch) {
		printf("sent SIGHUP to pid %d: the result is in its log (with admin.address set, xedgectl "
		       "would wait for it)\n", (int)pid);
		return 0;
	}
	for (double end = mono_s() + 15; mono_s() < end; usleep(100000)) {
		if (!reload_counts(cfg, &ok, &failed))
			continue;
		if (ok > ok0) {
			printf("pid %d reloaded %s\n", (int)pid, cfg->path);
			return 0;
		}
		if (failed > failed0) {
			fprintf(stderr, "xedgectl reload: pid %d refused the new configuration and keeps the running "
				"one: its log says why (xedge --check-config %s)\n", (int)pid, cfg->path);
			return 1;
		}
	}
	fprintf(stderr, "xedgectl reload: pid %d did not report a reload within 15 s: see its log\n", (int)pid);
	return 1;
}

/* Client connections open, from /metrics; -1 when unknown. */
static double clients_left(const struct config *cfg)
{
	struct mx m = { 0 };
	double v = -1, sum = 0, part;

	if (cfg->admin.address && http_get(cfg->admin.address, "/metrics", &m) == 200 && m.p) {
		static const char *const kinds[] = { "\"c2s\"", "\"c2s_tls\"", "\"ws\"", "\"wss\"" };
		for (size_t i = 0; i < 4; i++)
			if ((part = msum(m.p, "xedge_connections", kinds[i])) > 0)
				sum += part;
		v = sum;
	}
	mx_free(&m);
	return v;
}

/* Still running: a zombie (exited, its parent has not reaped it yet) is not. */
static bool running(pid_t pid)
{
	char path[64], buf[256], *rp;
	FILE *f;
	size_t n;

	if (kill(pid, 0) < 0)
		return false;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return true;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	rp = strrchr(buf, ')');   /* "pid (comm) S ...": comm may hold spaces */
	return !(rp && rp[1] == ' ' && (rp[2] == 'Z' || rp[2] == 'X'));
}

int ctlproc_drain(const struct config *cfg)
{
	pid_t pid;
	double start = mono_s(), limit = cfg->drain.grace + 10, next = 0;

	if (!cfg->nlisteners) {
		fprintf(stderr, "xedgectl drain: %s has no listeners: drain empties an edge (xedge); stop "
			"xedge-sm with SIGTERM\n", cfg->path);
		return 1;
	}
	pid = find(cfg, "drain");
	if (pid <= 0)
		return 1;
	if (kill(pid, SIGUSR1) < 0) {
		fprintf(stderr, "xedgectl drain: cannot signal pid %d: %s (run as its user or root)\n", (int)pid,
			strerror(errno));
		return 1;
	}
	printf("draining pid %d: listeners closed, clients told to go at %u/s%s%s\n", (int)pid, cfg->drain.rate,
	       cfg->drain.redirect ? " to " : "", cfg->drain.redirect ? cfg->drain.redirect : "");
	fflush(stdout);
	if (!cfg->admin.address) {
		printf("(no admin.address: xedgectl cannot follow it; the process stays up until SIGTERM)\n");
		return 0;
	}
	while (running(pid)) {
		double now = mono_s(), left = clients_left(cfg);
		if (left == 0) {
			printf("pid %d drained after %.1f s: no client left; it stays up, not ready, until "
			       "stopped (SIGTERM then exits at once)\n", (int)pid, now - start);
			return 0;
		}
		if (now - start > limit) {
			fprintf(stderr, "xedgectl drain: %.0f clients still on pid %d after %.0f s (drain.grace "
				"%u): SIGTERM closes them\n", left, (int)pid, now - start, cfg->drain.grace);
			return 1;
		}
		if (now >= next) {
			if (left > 0)
				printf("  %.0f s: %.0f clients left\n", now - start, left);
			fflush(stdout);
			next = now + 1;
		}
		usleep(100000);
	}
	printf("pid %d exited while draining\n", (int)pid);
	return 0;
}

static void row(const char *what, const char *text, const char *name, const char *filter)
{
	double v = msum(text, name, filter);

	if (v >= 0)
		printf("  %-34s %14.0f\n", what, v);
}

int ctlproc_stats(const struct config *cfg)
{
	struct mx m = { 0 }, r = { 0 };
	int st;

	if (!cfg->admin.address) {
		fprintf(stderr, "xedgectl stats: %s has no admin.address: add `admin: {address: "
			"127.0.0.1:5280}` and restart the server\n", cfg->path);
		return 1;
	}
	st = http_get(cfg->admin.address, "/metrics", &m);
	if (st != 200 || !m.p) {
		fprintf(stderr, "xedgectl stats: cannot read http://%s/metrics (%s): is the server running "
			"with this config?\n", cfg->admin.address, st < 0 ? strerror(errno) : "bad status");
		mx_free(&m);
		return 1;
	}
	http_get(cfg->admin.address, "/readyz", &r);
	printf("%s  http://%s  %s", msum(m.p, "xedge_workers", NULL) >= 0 ? "xedge" : "xedge-sm",
	       cfg->admin.address, r.p ? r.p : "readiness unknown\n");
	if (msum(m.p, "xedge_workers", NULL) >= 0) {
		static const char *const kinds[] = { "c2s", "c2s_tls", "ws", "wss", "s2s", "s2s_tls",
						     "component", "s2s_out", "upstream" };
		char f[64];
		printf("  %-34s %14s\n", "connections", "now");
		for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
			snprintf(f, sizeof(f), "listener=\"%s\"", kinds[i]);
			if (msum(m.p, "xedge_connections", f) > 0) {
				char what[64];
				snprintf(what, sizeof(what), "  %s", kinds[i]);
				row(what, m.p, "xedge_connections", f);
			}
		}
		row("  of them in session", m.p, "xedge_connections", "state=\"session\"");
		printf("  %-34s %14s\n", "since start", "total");
		row("  logins", m.p, "xedge_logins_total", NULL);
		row("  authentication failures", m.p, "xedge_sasl_failures_total", NULL);
		row("  messages in", m.p, "xedge_stanzas_total", "direction=\"in\",kind=\"message\"");
		row("  messages out", m.p, "xedge_stanzas_total", "direction=\"out\",kind=\"message\"");
		row("  presence in", m.p, "xedge_stanzas_total", "direction=\"in\",kind=\"presence\"");
		row("  iq in", m.p, "xedge_stanzas_total", "direction=\"in\",kind=\"iq\"");
		row("  stream errors sent", m.p, "xedge_stream_errors_total", NULL);
		row("  TLS handshakes", m.p, "xedge_tls_handshakes_total", NULL);
		row("  TLS handshake failures", m.p, "xedge_tls_handshake_failures_total", NULL);
		row("  rate-limit pauses", m.p, "xedge_rate_limit_pauses_total", NULL);
		row("  slow readers closed", m.p, "xedge_slow_reader_closes_total", NULL);
		row("  session server links up", m.p, "xedge_session_server_links", "\"up\"");
		row("  session server links down", m.p, "xedge_session_server_links", "\"down\"");
		row("  reloads ok", m.p, "xedge_config_reloads_total", "\"ok\"");
		row("  reloads failed", m.p, "xedge_config_reloads_total", "\"failed\"");
	}
	if (msum(m.p, "xedge_sm_sessions", NULL) >= 0) {
		printf("  %-34s %14s\n", "session server", "");
		row("  sessions bound", m.p, "xedge_sm_sessions", NULL);
		row("  edge links", m.p, "xedge_sm_edge_links", NULL);
		row("  messages routed", m.p, "xedge_sm_stanzas_routed_total", "\"message\"");
		row("  messages delivered", m.p, "xedge_sm_stanzas_delivered_total", "\"message\"");
		row("  offline messages stored", m.p, "xedge_sm_offline_stored_total", NULL);
		row("  storage jobs queued", m.p, "xedge_sm_store_queue_jobs", NULL);
	}
	mx_free(&m);
	mx_free(&r);
	return 0;
}
