/*
 * Unit tests for core/log.c: the per-call-site rate limit (burst, refill,
 * suppressed=N on the next line, summaries from log_flush), logfmt output,
 * and the accounting under concurrent writers.  log.c is included with a
 * fake monotonic clock, so no test sleeps or depends on real time.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <pthread.h>
#include <regex.h>
#include <unistd.h>

static _Atomic uint64_t fake_now = 1000ull * 1000000000ull;
#define LOG_NOW_NS() atomic_load(&fake_now)
#include "core/log.c"

#define SEC 1000000000ull

static int saved_stderr = -1;
static FILE *capture_file;

/* Send stderr (fd 2) to a temporary file until capture_end(). */
static void capture_begin(void)
{
	capture_file = tmpfile();
	assert_non_null(capture_file);
	fflush(stderr);
	saved_stderr = dup(STDERR_FILENO);
	assert_true(saved_stderr >= 0);
	assert_int_equal(dup2(fileno(capture_file), STDERR_FILENO), STDERR_FILENO);
}

/* Restore stderr; returns what was written meanwhile (caller frees). */
static char *capture_end(void)
{
	long size;
	char *buf;

	assert_int_equal(dup2(saved_stderr, STDERR_FILENO), STDERR_FILENO);
	close(saved_stderr);
	size = lseek(fileno(capture_file), 0, SEEK_END);
	assert_true(size >= 0);
	buf = malloc((size_t)size + 1);
	assert_non_null(buf);
	assert_int_equal(pread(fileno(capture_file), buf, (size_t)size, 0), size);
	buf[size] = '\0';
	fclose(capture_file);
	return buf;
}

static int count_lines(const char *s, const char *needle)
{
	int n = 0;

	for (const char *l = s; *l;) {
		const char *e = strchr(l, '\n');
		size_t len = e ? (size_t)(e - l) : strlen(l);
		if (!needle || memmem(l, len, needle, strlen(needle)))
			n++;
		l += len + (e ? 1 : 0);
	}
	return n;
}

static int reset(void **state)
{
	log_min_level = LOG_DEBUG;
	/* an hour after the previous test: every site's bucket is full... */
	atomic_fetch_add(&fake_now, 3600 * SEC);
	/* ...and nothing is pending from it */
	capture_begin();
	log_flush();
	free(capture_end());
	atomic_fetch_add(&fake_now, 3600 * SEC);   /* the flush took a token */
	atomic_store(&next_flush, 0);
	return 0;
}

/* Each function body is one call site. */
static void site_flood(int i)
{
	log_warn("connection refused: per-IP limit", "peer=127.0.0.%d", i);
}

static void site_other(int i)
{
	log_warn("other event", "i=%d", i);
}

static void site_info(int i)
{
	log_info("info event", "i=%d", i);
}

static void site_debug(int i)
{
	log_debug("debug event", "i=%d", i);
}

/* The N+1th line within a second is dropped; the next line that passes says how many. */
static void test_burst_then_suppressed(void **state)
{
	char *out;

	capture_begin();
	for (int i = 0; i < LOG_BURST + 5; i++)
		site_flood(i);
	out = capture_end();
	assert_int_equal(count_lines(out, "msg=\"connection refused: per-IP limit\""), LOG_BURST);
	assert_null(strstr(out, "suppressed="));
	assert_non_null(strstr(out, "peer=127.0.0.9\n"));
	assert_null(strstr(out, "peer=127.0.0.10\n"));   /* the 11th */
	free(out);

	/* half a second later: still no token */
	atomic_fetch_add(&fake_now, SEC / 2);
	capture_begin();
	site_flood(100);
	out = capture_end();
	assert_string_equal(out, "");
	free(out);

	/* a second after the burst: one line, carrying the count of the 6 dropped */
	atomic_fetch_add(&fake_now, SEC / 2);
	capture_begin();
	site_flood(101);
	site_flood(102);
	out = capture_end();
	assert_int_equal(count_lines(out, NULL), 1);
	assert_non_null(strstr(out, " peer=127.0.0.101 suppressed=6\n"));
	free(out);
}

/* The line stays logfmt: ts, level, msg, the caller's keys, then suppressed. */
static void test_logfmt(void **state)
{
	regex_t rx;
	char *out;

	assert_int_equal(regcomp(&rx,
				 "^ts=[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z "
				 "level=warn msg=\"connection refused: per-IP limit\" "
				 "peer=127\\.0\\.0\\.[0-9]+ suppressed=[0-9]+\n$",
				 REG_EXTENDED | REG_NOSUB),
			 0);
	for (int i = 0; i < LOG_BURST + 1; i++) {
		capture_begin();
		site_flood(i);
		free(capture_end());
	}
	atomic_fetch_add(&fake_now, SEC);
	capture_begin();
	site_flood(7);
	out = capture_end();
	assert_int_equal(regexec(&rx, out, 0, NULL, 0), 0);
	regfree(&rx);
	free(out);
}

/* A site that went quiet gets its own summary line from log_flush(), once. */
static void test_flush_summary(void **state)
{
	char *out;

	capture_begin();
	for (int i = 0; i < LOG_BURST + 15; i++)
		site_flood(i);
	log_flush();           /* no token yet: nothing */
	out = capture_end();
	assert_int_equal(count_lines(out, NULL), LOG_BURST);
	free(out);

	atomic_fetch_add(&fake_now, SEC);
	capture_begin();
	log_flush();
	log_flush();
	out = capture_end();
	assert_int_equal(count_lines(out, NULL), 1);
	assert_non_null(strstr(out, " level=warn msg=\"connection refused: per-IP limit\" "
				    "suppressed=15\n"));
	free(out);

	/* nothing pending: the next line has no suppressed= */
	atomic_fetch_add(&fake_now, SEC);
	capture_begin();
	site_flood(1);
	out = capture_end();
	assert_null(strstr(out, "suppressed="));
	free(out);
}

/* Any site's line runs the flush, at most once a second: quiet floods get reported. */
static void test_flush_from_another_site(void **state)
{
	char *out;

	capture_begin();
	for (int i = 0; i < LOG_BURST + 3; i++)
		site_flood(i);
	site_other(0);                 /* its own bucket: written; the flood's has no token */
	atomic_fetch_add(&fake_now, SEC);
	site_other(1);                 /* a second later: the flood's summary follows it */
	site_other(2);                 /* within that second: no second flush */
	out = capture_end();
	assert_int_equal(count_lines(out, "msg=\"other event\""), 3);
	assert_int_equal(count_lines(out, "suppressed="), 1);
	assert_non_null(strstr(out, "msg=\"connection refused: per-IP limit\" suppressed=3\n"));
	free(out);
}

/* Buckets refill at one line a second, up to the burst. */
static void test_refill(void **state)
{
	char *out;
	int n;

	capture_begin();
	for (int i = 0; i < LOG_BURST; i++)
		site_flood(i);
	atomic_fetch_add(&fake_now, 3 * SEC);
	for (int i = 0; i < 10; i++)
		site_flood(i);
	atomic_fetch_add(&fake_now, 60 * SEC);
	for (int i = 0; i < 3 * LOG_BURST; i++)
		site_flood(i);
	out = capture_end();
	n = count_lines(out, "msg=\"connection refused");
	assert_int_equal(n, LOG_BURST + 3 + LOG_BURST);
	free(out);
}

/* Sites are independent; debug is never limited; lines under log_min_level cost nothing. */
static void test_sites_levels(void **state)
{
	char *out;

	capture_begin();
	for (int i = 0; i < 3 * LOG_BURST; i++)
		site_flood(i);
	for (int i = 0; i < LOG_BURST; i++)
		site_info(i);
	for (int i = 0; i < 5 * LOG_BURST; i++)
		site_debug(i);
	out = capture_end();
	assert_int_equal(count_lines(out, "msg=\"connection refused"), LOG_BURST);
	assert_int_equal(count_lines(out, "level=info msg=\"info event\""), LOG_BURST);
	assert_int_equal(count_lines(out, "level=debug msg=\"debug event\""), 5 * LOG_BURST);
	free(out);

	/* below the level: neither written nor counted as suppressed */
	log_min_level = LOG_WARN;
	capture_begin();
	for (int i = 0; i < 3 * LOG_BURST; i++)
		site_info(i);
	log_min_level = LOG_DEBUG;
	atomic_fetch_add(&fake_now, 60 * SEC);
	site_info(99);
	out = capture_end();
	assert_int_equal(count_lines(out, "info event"), 1);
	assert_null(strstr(out, "info event\" i=99 suppressed="));
	free(out);
}

/* Concurrent writers on one site: exactly LOG_BURST lines, and every other line counted. */
#define THREADS 4
#define PER_THREAD 20000

static void *flood_thread(void *arg)
{
	for (int i = 0; i < PER_THREAD; i++)
		site_flood(i);
	return arg;
}

static void test_threads(void **state)
{
	pthread_t th[THREADS];
	unsigned long long n = 0;
	const char *p;
	char *out;

	capture_begin();
	for (int i = 0; i < THREADS; i++)
		assert_int_equal(pthread_create(&th[i], NULL, flood_thread, NULL), 0);
	for (int i = 0; i < THREADS; i++)
		assert_int_equal(pthread_join(th[i], NULL), 0);
	atomic_fetch_add(&fake_now, SEC);
	log_flush();
	out = capture_end();
	assert_int_equal(count_lines(out, NULL), LOG_BURST + 1);
	p = strstr(out, "suppressed=");
	assert_non_null(p);
	assert_int_equal(sscanf(p, "suppressed=%llu", &n), 1);
	assert_int_equal(n, THREADS * PER_THREAD - LOG_BURST);
	free(out);
}

/* A long tail is cut, but the count is kept. */
static void test_long_line_keeps_count(void **state)
{
	char big[2000];
	char *out;

	memset(big, 'v', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	capture_begin();
	for (int i = 0; i < LOG_BURST + 3; i++) {
		if (i == LOG_BURST + 2)
			atomic_fetch_add(&fake_now, SEC);
		log_warn("long2", "k=%s", big);
	}
	out = capture_end();
	assert_int_equal(count_lines(out, NULL), LOG_BURST + 1);
	assert_non_null(strstr(out, "vvvv suppressed=2\n"));
	for (const char *l = out; *l;) {
		const char *e = strchr(l, '\n');
		assert_non_null(e);
		assert_true(e - l < 1024);
		l = e + 1;
	}
	free(out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_burst_then_suppressed, reset),
		cmocka_unit_test_setup(test_logfmt, reset),
		cmocka_unit_test_setup(test_flush_summary, reset),
		cmocka_unit_test_setup(test_flush_from_another_site, reset),
		cmocka_unit_test_setup(test_refill, reset),
		cmocka_unit_test_setup(test_sites_levels, reset),
		cmocka_unit_test_setup(test_threads, reset),
		cmocka_unit_test_setup(test_long_line_keeps_count, reset),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
