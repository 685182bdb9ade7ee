/* Unit tests for core/claim.c: one claim per address, the holder named by pid,
 * released with its process, a claim held by this process named as a duplicate. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/claim.h"

/* An address no other test run uses at the same time. */
static void addr_for(char *out, size_t len, const char *tag)
{
	snprintf(out, len, "unit-%s-%d:5222", tag, (int)getpid());
}

static void test_claim_once(void **state)
{
	char addr[64], err[256];
	int fd, fd2;

	addr_for(addr, sizeof(addr), "once");
	fd = claim_address(addr, "change it", err, sizeof(err));
	assert_true(fd >= 0);
	fd2 = claim_address(addr, "change it", err, sizeof(err));
	assert_int_equal(fd2, -1);
	assert_non_null(strstr(err, "is configured twice (change it)"));
	assert_non_null(strstr(err, addr));
	close(fd);
	/* Released: claimable again. */
	fd = claim_address(addr, "change it", err, sizeof(err));
	assert_true(fd >= 0);
	close(fd);
}

static void test_claim_held_by_another_process(void **state)
{
	char addr[64], err[256], want[160];
	int ready[2], done[2], status, fd;
	pid_t pid;
	char c;

	addr_for(addr, sizeof(addr), "other");
	assert_int_equal(pipe(ready), 0);
	assert_int_equal(pipe(done), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int cfd = claim_address(addr, "x", err, sizeof(err));
		c = cfd >= 0 ? 'y' : 'n';
		(void)!write(ready[1], &c, 1);
		(void)!read(done[0], &c, 1);
		_exit(0);
	}
	assert_int_equal(read(ready[0], &c, 1), 1);
	assert_int_equal(c, 'y');
	fd = claim_address(addr, "change listeners[].address", err, sizeof(err));
	assert_int_equal(fd, -1);
	snprintf(want, sizeof(want), "address %s is already served by ", addr);
	assert_non_null(strstr(err, want));
	snprintf(want, sizeof(want), " pid %d (stop it first, or change listeners[].address)", (int)pid);
	assert_non_null(strstr(err, want));
	/* The holder exits: its claim vanishes with it, nothing stale is left. */
	assert_int_equal(write(done[1], "x", 1), 1);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	fd = claim_address(addr, "x", err, sizeof(err));
	assert_true(fd >= 0);
	close(fd);
	close(ready[0]);
	close(ready[1]);
	close(done[0]);
	close(done[1]);
}

static void test_claim_too_long(void **state)
{
	char addr[200], err[256];

	memset(addr, 'a', sizeof(addr) - 1);
	addr[sizeof(addr) - 1] = '\0';
	assert_int_equal(claim_address(addr, "x", err, sizeof(err)), -1);
	assert_non_null(strstr(err, "too long"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_claim_once),
		cmocka_unit_test(test_claim_held_by_another_process),
		cmocka_unit_test(test_claim_too_long),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
