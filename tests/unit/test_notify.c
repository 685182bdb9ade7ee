/* Unit tests for core/notify.c: datagrams to a path and to an abstract '@'
 * name, the environment consumed, WATCHDOG_USEC halved and ignored when
 * WATCHDOG_PID names another process, nothing sent without NOTIFY_SOCKET. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/notify.h"

/* A bound datagram socket standing in for systemd; `name` as in NOTIFY_SOCKET. */
static int listener(const char *name)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(name));
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	memcpy(sa.sun_path, name, strlen(name));
	if (name[0] == '@')
		sa.sun_path[0] = '\0';
	else
		len++;
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, len), 0);
	return fd;
}

static void expect_msg(int fd, const char *want)
{
	char buf[2048];
	ssize_t n = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);

	assert_true(n >= 0);
	buf[n] = '\0';
	assert_string_equal(buf, want);
}

static void expect_none(int fd)
{
	char buf[16];

	assert_int_equal(recv(fd, buf, sizeof(buf), MSG_DONTWAIT), -1);
}

static void test_notify_path(void **state)
{
	char path[64];
	int fd;

	snprintf(path, sizeof(path), "/tmp/xedge-unit-notify-%d", (int)getpid());
	unlink(path);
	fd = listener(path);
	setenv("NOTIFY_SOCKET", path, 1);
	unsetenv("WATCHDOG_USEC");
	assert_true(notify_init());
	assert_null(getenv("NOTIFY_SOCKET"));   /* not inherited by children */
	assert_int_equal(notify_watchdog_ms(), 0);
	notify_send("READY=1\nSTATUS=%d connections", 3);
	expect_msg(fd, "READY=1\nSTATUS=3 connections");
	close(fd);
	unlink(path);
}

static void test_notify_abstract_and_watchdog(void **state)
{
	char name[64], pid[32];
	int fd;

	snprintf(name, sizeof(name), "@xedge-unit-notify-%d", (int)getpid());
	fd = listener(name);
	setenv("NOTIFY_SOCKET", name, 1);
	setenv("WATCHDOG_USEC", "3000000", 1);
	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	setenv("WATCHDOG_PID", pid, 1);
	assert_true(notify_init());
	assert_int_equal(notify_watchdog_ms(), 1500);
	assert_null(getenv("WATCHDOG_USEC"));
	notify_send("WATCHDOG=1");
	expect_msg(fd, "WATCHDOG=1");
	expect_none(fd);
	close(fd);
}

static void test_notify_watchdog_for_another_pid(void **state)
{
	char name[64];
	int fd;

	snprintf(name, sizeof(name), "@xedge-unit-notify-other-%d", (int)getpid());
	fd = listener(name);
	setenv("NOTIFY_SOCKET", name, 1);
	setenv("WATCHDOG_USEC", "3000000", 1);
	setenv("WATCHDOG_PID", "1", 1);
	assert_true(notify_init());
	assert_int_equal(notify_watchdog_ms(), 0);
	close(fd);
}

static void test_notify_off(void **state)
{
	char longname[200];

	unsetenv("NOTIFY_SOCKET");
	setenv("WATCHDOG_USEC", "3000000", 1);
	unsetenv("WATCHDOG_PID");
	assert_false(notify_init());
	assert_int_equal(notify_watchdog_ms(), 0);   /* no pings with nowhere to send them */
	notify_send("READY=1");                      /* a no-op */
	/* Neither a relative name nor an over-long one is used. */
	setenv("NOTIFY_SOCKET", "relative/sock", 1);
	assert_false(notify_init());
	memset(longname, 'a', sizeof(longname) - 1);
	longname[0] = '/';
	longname[sizeof(longname) - 1] = '\0';
	setenv("NOTIFY_SOCKET", longname, 1);
	assert_false(notify_init());
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_notify_path),
		cmocka_unit_test(test_notify_abstract_and_watchdog),
		cmocka_unit_test(test_notify_watchdog_for_another_pid),
		cmocka_unit_test(test_notify_off),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
