/*
 * notify — see notify.h.  One socket, opened by notify_init() and kept for
 * the process lifetime; sendto() with MSG_DONTWAIT|MSG_NOSIGNAL.
 */
#include "core/notify.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static int notify_fd = -1;
static struct sockaddr_un notify_addr;
static socklen_t notify_addrlen;
static uint64_t notify_wd_ms;

/* $WATCHDOG_USEC, when it is meant for this process. */
static void notify_watchdog_init(void)
{
	const char *usec = getenv("WATCHDOG_USEC"), *pid = getenv("WATCHDOG_PID");
	char *end;
	unsigned long long v;

	if (!usec)
		return;
	if (pid && strtoll(pid, NULL, 10) != (long long)getpid())
		return;
	v = strtoull(usec, &end, 10);
	if (*end == '\0' && v > 0)
		notify_wd_ms = v / 2000 ? v / 2000 : 1;
}

bool notify_init(void)
{
	const char *name = getenv("NOTIFY_SOCKET");
	size_t len;

	if (notify_fd >= 0)
		close(notify_fd);   /* called again (tests): start afresh */
	notify_fd = -1;
	notify_wd_ms = 0;
	notify_watchdog_init();
	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
	if (!name || (name[0] != '/' && name[0] != '@')) {
		unsetenv("NOTIFY_SOCKET");
		notify_wd_ms = 0;
		return false;
	}
	len = strlen(name);
	if (len < 2 || len >= sizeof(notify_addr.sun_path)) {
		unsetenv("NOTIFY_SOCKET");
		notify_wd_ms = 0;
		return false;
	}
	memset(&notify_addr, 0, sizeof(notify_addr));
	notify_addr.sun_family = AF_UNIX;
	memcpy(notify_addr.sun_path, name, len);
	if (name[0] == '@') {
		notify_addr.sun_path[0] = '\0';   /* abstract: no trailing NUL in the length */
		notify_addrlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
	} else {
		notify_addrlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + 1);
	}
	unsetenv("NOTIFY_SOCKET");
	notify_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (notify_fd < 0)
		notify_wd_ms = 0;
	return notify_fd >= 0;
}

void notify_send(const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	int n;

	if (notify_fd < 0)
		return;
	va_start(ap, fmt);
	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(msg))
		n = sizeof(msg) - 1;
	(void)sendto(notify_fd, msg, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL,
		     (const struct sockaddr *)&notify_addr, notify_addrlen);
}

uint64_t notify_watchdog_ms(void)
{
	return notify_wd_ms;
}
