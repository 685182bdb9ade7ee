/*
 * claim — one process per served address; see claim.h.
 */
#include "core/claim.h"

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define CLAIM_PREFIX "xedge-listen-"
#define CLAIM_BACKLOG 128   /* never accepted: each refused start holds one until it exits */

/* The name of process `pid` (its comm), or "a process" when unreadable. */
static void claim_comm(pid_t pid, char *out, size_t outlen)
{
	char path[64];
	FILE *f;

	snprintf(out, outlen, "a process");
	snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return;
	if (fgets(out, (int)outlen, f))
		out[strcspn(out, "\n")] = '\0';
	else
		snprintf(out, outlen, "a process");
	fclose(f);
}

/* The pid listening on the claim `sa`, 0 when it cannot be learnt.  The
 * connect does not block: a full backlog only loses the pid. */
static pid_t claim_holder(const struct sockaddr_un *sa, socklen_t len)
{
	struct ucred cred = { 0 };
	socklen_t cl = sizeof(cred);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	pid_t pid = 0;

	if (fd < 0)
		return 0;
	if (connect(fd, (const struct sockaddr *)sa, len) == 0 &&
	    getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) == 0)
		pid = cred.pid;
	close(fd);
	return pid;
}

/* The claim's socket address; false when address is too long for one. */
static bool claim_name(const char *address, struct sockaddr_un *sa, socklen_t *len)
{
	size_t n = strlen(address);

	/* sun_path[0] = '\0' marks the abstract namespace; no terminator. */
	if (1 + sizeof(CLAIM_PREFIX) - 1 + n > sizeof(sa->sun_path))
		return false;
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	memcpy(sa->sun_path + 1, CLAIM_PREFIX, sizeof(CLAIM_PREFIX) - 1);
	memcpy(sa->sun_path + sizeof(CLAIM_PREFIX), address, n);
	*len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + sizeof(CLAIM_PREFIX) + n);
	return true;
}

pid_t claim_owner(const char *address)
{
	struct sockaddr_un sa;
	socklen_t len;

	return claim_name(address, &sa, &len) ? claim_holder(&sa, len) : 0;
}

int claim_address(const char *address, const char *hint, char *err, size_t errlen)
{
	struct sockaddr_un sa;
	socklen_t len;
	int fd, e;

	if (!claim_name(address, &sa, &len)) {
		snprintf(err, errlen, "address %s is too long to claim (at most %zu bytes)", address,
			 sizeof(sa.sun_path) - sizeof(CLAIM_PREFIX));
		return -1;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, "cannot claim address %s: socket: %s", address, strerror(errno));
		return -1;
	}
	/* listen() fixes the holder's credentials that SO_PEERCRED reports. */
	if (bind(fd, (struct sockaddr *)&sa, len) == 0 && listen(fd, CLAIM_BACKLOG) == 0)
		return fd;
	e = errno;
	close(fd);
	if (e == EADDRINUSE) {
		pid_t pid = claim_holder(&sa, len);
		char comm[32];

		if (pid == getpid()) {
			snprintf(err, errlen, "address %s is configured twice (%s)", address, hint);
		} else if (pid > 0) {
			claim_comm(pid, comm, sizeof(comm));
			snprintf(err, errlen, "address %s is already served by %s pid %d (stop it first, or %s)",
				 address, comm, (int)pid, hint);
		} else {
			snprintf(err, errlen, "address %s is already served by another xedge process "
				 "(stop it first, or %s)", address, hint);
		}
		return -1;
	}
	snprintf(err, errlen, "cannot claim address %s: %s", address, strerror(e));
	return -1;
}
