/*
 * xedgectl — administer a running xedge (embedded session server) or
 * xedge-sm over its admin socket.
 *
 *   xedgectl [-c CONFIG | -s SOCKET] user add JID PASSWORD   (PASSWORD "-": read stdin)
 *                                    user del JID
 *                                    sessions
 *                                    roster add USER CONTACT none|to|from|both [NAME...]
 *                                    roster list USER
 *   xedgectl [-c CONFIG] reload | drain | stats     (core/ctlproc.h)
 *
 * The socket is session_server.admin_socket of CONFIG (-c; default
 * $XEDGE_CONFIG, else /etc/xedge/xedge.yaml) or SOCKET (-s).  The protocol is
 * one command line, answered by reply lines and a final `ok` or
 * `error: <reason>` (sm/admin.c).  `user add` derives the SCRAM-SHA-1 and
 * SCRAM-SHA-256 keys here, with fresh random salts, so the password never
 * crosses the socket and is never stored.
 *
 * Exit status: 0 ok, 1 the server said error (or could not be reached), 2 usage.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/config.h"
#include "core/ctlproc.h"
#include "core/version.h"
#include "sm/sm.h"
#include "tls/crypto.h"

#define CTL_DEFAULT_CONFIG "/etc/xedge/xedge.yaml"
#define CTL_ITER 4096
#define CTL_SALT 16
#define CTL_TIMEOUT_S 30
#define CTL_LINE_MAX 8192

static void usage(FILE *f)
{
	fprintf(f,
		"usage: xedgectl [-c CONFIG | -s SOCKET] COMMAND\n"
		"commands:\n"
		"  user add JID PASSWORD        create an account (PASSWORD '-': read it from stdin)\n"
		"  user passwd JID PASSWORD     set a new password (PASSWORD '-': from stdin)\n"
		"  user del JID                 delete an account and everything stored for it\n"
		"  user list                    list the accounts\n"
		"  sessions                     list sessions\n"
		"  roster add USER CONTACT SUB [NAME]   SUB: none|to|from|both\n"
		"  roster del USER CONTACT      remove a roster item (pushed to online clients)\n"
		"  roster list USER\n"
		"  reload                       SIGHUP the xedge serving CONFIG; wait for the result\n"
		"  drain                        SIGUSR1 it: it drains and stays up; wait until no client is left\n"
		"  stats                        a summary of its /metrics (admin.address)\n"
		"  --version                    print the version\n"
		"CONFIG defaults to $XEDGE_CONFIG, else " CTL_DEFAULT_CONFIG
		"; its session_server.admin_socket is used.\n");
}

static void hex(char *out, const uint8_t *p, size_t n)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		*out++ = digits[p[i] >> 4];
		*out++ = digits[p[i] & 15];
	}
	*out = '\0';
}

/* A word that must travel as one token of the line protocol. */
static int word_ok(const char *s)
{
	return *s && !strpbrk(s, " \t\r\n");
}

/* Append "<salt> <iter> <stored> <server>" for one hash to line. */
static int scram_words(int hash, const char *pw, char *line, size_t cap)
{
	uint8_t salt[CTL_SALT], stored[CRYPTO_MAX_DIGEST], server[CRYPTO_MAX_DIGEST];
	char hs[2 * CTL_SALT + 1], hst[2 * CRYPTO_MAX_DIGEST + 1], hsv[2 * CRYPTO_MAX_DIGEST + 1];
	size_t dl = crypto_digest_len(hash), n = strlen(line);

	if (crypto_random(salt, sizeof(salt)) < 0 ||
	    crypto_scram_keys(hash, pw, strlen(pw), salt, sizeof(salt), CTL_ITER, stored,
			      server) < 0)
		return -1;
	hex(hs, salt, sizeof(salt));
	hex(hst, stored, dl);
	hex(hsv, server, dl);
	if ((size_t)snprintf(line + n, cap - n, " %s %u %s %s", hs, CTL_ITER, hst, hsv) >= cap - n)
		return -1;
	return 0;
}

static int read_password(char *pw, size_t cap)
{
	size_t n;

	if (!fgets(pw, (int)cap, stdin))
		return -1;
	n = strlen(pw);
	while (n && (pw[n - 1] == '\n' || pw[n - 1] == '\r'))
		pw[--n] = '\0';
	return n ? 0 : -1;
}

/*
 * Build the command line (newline-terminated) from the arguments.  Returns 0,
 * or 2 for a usage error (message printed), or 1 on another failure.
 */
static int build_command(int ac, char **av, char *line, size_t cap)
{
	char pw[1024];

	if (ac >= 1 && !strcmp(av[0], "sessions") && ac == 1) {
		snprintf(line, cap, "sessions");
	} else if (ac == 2 && !strcmp(av[0], "user") && !strcmp(av[1], "list")) {
		snprintf(line, cap, "user list");
	} else if (ac == 4 && !strcmp(av[0], "user") &&
		   (!strcmp(av[1], "add") || !strcmp(av[1], "passwd"))) {
		const char *p = av[3];

		if (!word_ok(av[2])) {
			fprintf(stderr, "xedgectl: JID must be one word (user@domain)\n");
			return 2;
		}
		if (!strcmp(p, "-")) {
			if (read_password(pw, sizeof(pw)) < 0) {
				fprintf(stderr, "xedgectl: no password on standard input\n");
				return 2;
			}
			p = pw;
		}
		if (!*p) {
			fprintf(stderr, "xedgectl: the password must not be empty\n");
			return 2;
		}
		snprintf(line, cap, "user %s %s", av[1], av[2]);
		if (scram_words(CRYPTO_SHA1, p, line, cap) < 0 ||
		    scram_words(CRYPTO_SHA256, p, line, cap) < 0) {
			fprintf(stderr, "xedgectl: cannot derive the SCRAM keys (wolfCrypt failed)\n");
			memset(pw, 0, sizeof(pw));
			return 1;
		}
		memset(pw, 0, sizeof(pw));
	} else if (ac == 3 && !strcmp(av[0], "user") && !strcmp(av[1], "del")) {
		if (!word_ok(av[2]))
			goto bad_word;
		snprintf(line, cap, "user del %s", av[2]);
	} else if (ac >= 5 && !strcmp(av[0], "roster") && !strcmp(av[1], "add")) {
		size_t n;

		if (!word_ok(av[2]) || !word_ok(av[3]) || !word_ok(av[4]))
			goto bad_word;
		n = (size_t)snprintf(line, cap, "roster add %s %s %s", av[2], av[3], av[4]);
		for (int i = 5; i < ac && n < cap; i++) {
			if (strpbrk(av[i], "\r\n")) {
				fprintf(stderr, "xedgectl: a roster name cannot contain a line break\n");
				return 2;
			}
			n += (size_t)snprintf(line + n, cap - n, " %s", av[i]);
		}
		if (n >= cap)
			goto too_long;
	} else if (ac == 4 && !strcmp(av[0], "roster") && !strcmp(av[1], "del")) {
		if (!word_ok(av[2]) || !word_ok(av[3]))
			goto bad_word;
		snprintf(line, cap, "roster del %s %s", av[2], av[3]);
	} else if (ac == 3 && !strcmp(av[0], "roster") && !strcmp(av[1], "list")) {
		if (!word_ok(av[2]))
			goto bad_word;
		snprintf(line, cap, "roster list %s", av[2]);
	} else {
		usage(stderr);
		return 2;
	}
	if (strlen(line) + 2 > cap)
		goto too_long;
	strcat(line, "\n");
	return 0;
bad_word:
	fprintf(stderr, "xedgectl: JIDs and the subscription are single words without spaces\n");
	return 2;
too_long:
	fprintf(stderr, "xedgectl: command too long\n");
	return 2;
}

static int connect_admin(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = CTL_TIMEOUT_S };
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;

		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

/* What to do about a server-side error, when there is something to say. */
static const char *hint(const char *reason)
{
	if (strstr(reason, "user exists"))
		return "delete it first with `xedgectl user del JID`, or pick another name";
	if (strstr(reason, "no such user"))
		return "create it with `xedgectl user add JID PASSWORD`";
	if (strstr(reason, "does not serve"))
		return "add the domain under domains: in the config and restart, or fix the JID";
	if (strstr(reason, "storage failed"))
		return "check the server log and that the database file is writable";
	return NULL;
}

/* Send line, print the reply lines; returns the exit status, or CTL_OTHER
 * with *shard set when another shard owns the account (sm.h).  *printed
 * counts the lines printed; with `sessions`, "no sessions" is left out (the
 * caller says it once for every shard). */
#define CTL_OTHER 3
static int converse(int fd, const char *line, bool sessions, int *shard, unsigned *printed)
{
	char buf[CTL_LINE_MAX * 2], *nl;
	size_t len = 0, off = strlen(line), sent = 0;
	ssize_t n;

	while (sent < off) {
		n = send(fd, line + sent, off - sent, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "xedgectl: sending the command failed: %s\n", strerror(errno));
			return 1;
		}
		sent += (size_t)n;
	}
	for (;;) {
		while ((nl = memchr(buf, '\n', len))) {
			*nl = '\0';
			if (!strcmp(buf, "ok"))
				return 0;
			if (!strncmp(buf, "error: " SM_ADMIN_SHARD_REPLY " ",
				     sizeof("error: " SM_ADMIN_SHARD_REPLY))) {
				*shard = atoi(buf + sizeof("error: " SM_ADMIN_SHARD_REPLY));
				return CTL_OTHER;
			}
			if (!strncmp(buf, "error: ", 7)) {
				const char *h = hint(buf + 7);

				fprintf(stderr, "xedgectl: %s\n", buf + 7);
				if (h)
					fprintf(stderr, "xedgectl: %s\n", h);
				return 1;
			}
			if (!sessions || strcmp(buf, "no sessions")) {
				printf("%s\n", buf);
				++*printed;
			}
			len -= (size_t)(nl + 1 - buf);
			memmove(buf, nl + 1, len);
		}
		if (len == sizeof(buf)) {
			/* A reply line longer than any we send: print it in pieces. */
			fwrite(buf, 1, len, stdout);
			len = 0;
		}
		n = recv(fd, buf + len, sizeof(buf) - len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			fprintf(stderr, "xedgectl: %s before the reply was complete\n",
				n == 0 ? "the server closed the connection" :
				errno == EAGAIN ? "timed out" : strerror(errno));
			return 1;
		}
		len += (size_t)n;
	}
}

/* The admin socket of embedded shard k: "<base>" for 0, "<base>.<k>". */
static void shard_socket(const char *base, int k, char *out, size_t cap)
{
	if (k == 0)
		snprintf(out, cap, "%s", base);
	else
		snprintf(out, cap, "%s.%d", base, k);
}

/* Run line on the session server at sock, following it to the shard that
 * owns the account; `sessions` asks every shard of the process. */
static int ask(const char *sock, const char *line, bool sessions)
{
	char path[CTL_LINE_MAX];
	unsigned printed = 0;
	int shard = 0, rc = 1, fd;

	for (int k = 0, hops = 0; k < 4096 && hops < 2; k++) {
		shard_socket(sock, k, path, sizeof(path));
		fd = connect_admin(path);
		if (fd < 0) {
			if (k > 0 && errno == ENOENT && sessions)
				break;      /* every shard asked */
			if (hops && errno == ENOENT) {
				fprintf(stderr, "xedgectl: shard %d of backend.shards owns this account: run "
					"this against that session server's config\n", shard);
				return 1;
			}
			fprintf(stderr, "xedgectl: cannot reach xedge admin socket %s: %s — is xedge (or "
				"xedge-sm) running with this config?\n", path, strerror(errno));
			return 1;
		}
		rc = converse(fd, line, sessions, &shard, &printed);
		close(fd);
		if (rc == CTL_OTHER) {
			/* An embedded shard's socket is next to the first; an
			 * xedge-sm shard has its own config. */
			if (strcmp(path, sock) || shard <= 0) {
				fprintf(stderr, "xedgectl: shard %d says shard %d owns this account: are the "
					"shard lists of the session servers the same?\n", k, shard);
				return 1;
			}
			k = shard - 1;
			hops++;
			continue;
		}
		if (rc || !sessions)
			return rc;
	}
	if (sessions && rc == 0 && printed == 0)
		printf("no sessions\n");
	return rc;
}

int main(int argc, char **argv)
{
	const char *config_path = NULL, *sock = NULL;
	char line[CTL_LINE_MAX], err[1024];
	struct config cfg;
	bool have_cfg = false;
	int i, rc;

	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		if (!strcmp(argv[i], "-c") && i + 1 < argc) {
			config_path = argv[++i];
		} else if (!strcmp(argv[i], "-s") && i + 1 < argc) {
			sock = argv[++i];
		} else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			usage(stdout);
			return 0;
		} else if (!strcmp(argv[i], "--version")) {
			printf("xedgectl %s\n", XEDGE_VERSION);
			return 0;
		} else {
			usage(stderr);
			return 2;
		}
	}
	if (i >= argc || (config_path && sock)) {
		usage(stderr);
		return 2;
	}
	if (argc - i == 1 && (!strcmp(argv[i], "reload") || !strcmp(argv[i], "drain") ||
			      !strcmp(argv[i], "stats"))) {
		if (sock) {
			fprintf(stderr, "xedgectl: %s works on the process serving a config: use -c CONFIG\n", argv[i]);
			return 2;
		}
		if (!config_path)
			config_path = getenv("XEDGE_CONFIG") ? getenv("XEDGE_CONFIG") : CTL_DEFAULT_CONFIG;
		if (config_load(config_path, &cfg, err, sizeof(err)) < 0) {
			fprintf(stderr, "xedgectl: %s\n", err);
			return 1;
		}
		rc = !strcmp(argv[i], "reload") ? ctlproc_reload(&cfg)
		     : !strcmp(argv[i], "drain") ? ctlproc_drain(&cfg) : ctlproc_stats(&cfg);
		config_free(&cfg);
		return rc;
	}
	rc = build_command(argc - i, argv + i, line, sizeof(line));
	if (rc)
		return rc;
	if (!sock) {
		if (!config_path)
			config_path = getenv("XEDGE_CONFIG") ? getenv("XEDGE_CONFIG") : CTL_DEFAULT_CONFIG;
		if (config_load(config_path, &cfg, err, sizeof(err)) < 0) {
			fprintf(stderr, "xedgectl: %s\nxedgectl: pass the server's config with -c, or "
				"its admin socket with -s\n", err);
			return 1;
		}
		have_cfg = true;
		sock = cfg.sm.admin_socket;
		if (!sock) {
			fprintf(stderr, "xedgectl: %s has no session_server.admin_socket: set one and "
				"restart the server, or use -s SOCKET\n", config_path);
			config_free(&cfg);
			return 1;
		}
	}
	rc = ask(sock, line, !strcmp(argv[i], "sessions"));
	memset(line, 0, sizeof(line));
	if (have_cfg)
		config_free(&cfg);
	return rc;
}
