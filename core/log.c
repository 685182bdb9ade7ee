/*
 * log — see log.h.
 *
 * The rate limit is GCRA, the single-timestamp form of a token bucket: a site
 * may write when now >= tat - (LOG_BURST - 1) * LOG_INTERVAL_NS, and writing
 * moves tat to max(tat, now) + LOG_INTERVAL_NS.  One compare-and-swap takes
 * the token; a refused line only reads tat and bumps the suppressed count.
 * Time is CLOCK_MONOTONIC_COARSE (a few ms of resolution is plenty here).
 *
 * Pending summaries.  A site that drops its first line pushes itself (once,
 * for the process's life) on a lock-free list; log_flush() walks it and, for
 * each site with lines pending whose bucket has a token, writes
 * `msg="..." suppressed=N`.  log_write_site() runs log_flush() when a second
 * has passed since the last run (one thread wins the CAS on next_flush).
 */
#include "core/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int log_min_level = LOG_INFO;

static const char *const level_names[] = { "debug", "info", "warn", "error" };

static struct log_site *_Atomic pending;  /* sites that have dropped lines */
static _Atomic uint64_t next_flush;       /* monotonic ns of the next log_flush() run */

#ifndef LOG_NOW_NS
static uint64_t log_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}
#define LOG_NOW_NS() log_now_ns()
#endif

/* Format and write one line; suppressed > 0 appends `suppressed=N`. */
static void log_vline(int level, const char *msg, uint64_t suppressed, const char *fmt,
		      va_list ap)
{
	char line[1024];
	struct timespec ts;
	struct tm tm;
	size_t n;
	int r;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	n = strftime(line, sizeof(line), "ts=%Y-%m-%dT%H:%M:%S", &tm);
	r = snprintf(line + n, sizeof(line) - n, ".%03ldZ level=%s msg=\"%s\"",
		     ts.tv_nsec / 1000000, level_names[level], msg);
	if (r > 0)
		n += (size_t)r < sizeof(line) - n ? (size_t)r : sizeof(line) - n - 1;
	if (fmt && *fmt && n < sizeof(line) - 2) {
		line[n++] = ' ';
		r = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
		if (r > 0)
			n += (size_t)r < sizeof(line) - n ? (size_t)r : sizeof(line) - n - 1;
	}
	if (n > sizeof(line) - 2)
		n = sizeof(line) - 2;
	if (suppressed) {
		/* the count must survive a truncated tail: it goes over its end if need be */
		char tail[40];
		int t = snprintf(tail, sizeof(tail), " suppressed=%llu", (unsigned long long)suppressed);
		if (t > 0 && (size_t)t < sizeof(tail)) {
			if (n + (size_t)t > sizeof(line) - 2)
				n = sizeof(line) - 2 - (size_t)t;
			memcpy(line + n, tail, (size_t)t);
			n += (size_t)t;
		}
	}
	line[n++] = '\n';
	(void)!write(STDERR_FILENO, line, n);
}

static void log_line(int level, const char *msg, uint64_t suppressed, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vline(level, msg, suppressed, fmt, ap);
	va_end(ap);
}

void log_write(int level, const char *msg, const char *fmt, ...)
{
	va_list ap;

	if (level < LOG_MIN_LEVEL())
		return;
	va_start(ap, fmt);
	log_vline(level, msg, 0, fmt, ap);
	va_end(ap);
}

/* Take a token from the site's bucket at time now: 1 if the line may go. */
static int site_take(struct log_site *s, uint64_t now)
{
	const uint64_t tau = (uint64_t)(LOG_BURST - 1) * LOG_INTERVAL_NS;
	uint64_t tat = atomic_load_explicit(&s->tat, memory_order_relaxed);

	for (;;) {
		if (tat > now + tau)
			return 0;
		if (atomic_compare_exchange_weak_explicit(&s->tat, &tat,
							  (tat > now ? tat : now) + LOG_INTERVAL_NS,
							  memory_order_relaxed, memory_order_relaxed))
			return 1;
	}
}

static void site_list(struct log_site *s)
{
	struct log_site *head;

	if (atomic_exchange_explicit(&s->listed, 1, memory_order_relaxed))
		return;
	head = atomic_load_explicit(&pending, memory_order_relaxed);
	do {
		s->next = head;
	} while (!atomic_compare_exchange_weak_explicit(&pending, &head, s, memory_order_release,
							memory_order_relaxed));
}

static void flush_at(uint64_t now)
{
	for (struct log_site *s = atomic_load_explicit(&pending, memory_order_acquire); s;
	     s = s->next) {
		uint64_t n;

		if (!atomic_load_explicit(&s->suppressed, memory_order_relaxed) || !site_take(s, now))
			continue;
		n = atomic_exchange_explicit(&s->suppressed, 0, memory_order_relaxed);
		if (n && s->level >= LOG_MIN_LEVEL())
			log_line(s->level, s->msg, n, NULL);
	}
}

void log_flush(void)
{
	flush_at(LOG_NOW_NS());
}

void log_write_site(struct log_site *s, const char *fmt, ...)
{
	uint64_t now, n, due;
	va_list ap;

	if (s->level < LOG_MIN_LEVEL())
		return;
	now = LOG_NOW_NS();
	if (!site_take(s, now)) {
		atomic_fetch_add_explicit(&s->suppressed, 1, memory_order_relaxed);
		site_list(s);
		return;
	}
	n = atomic_exchange_explicit(&s->suppressed, 0, memory_order_relaxed);
	va_start(ap, fmt);
	log_vline(s->level, s->msg, n, fmt, ap);
	va_end(ap);
	/* summaries of sites that went quiet, at most once a second */
	due = atomic_load_explicit(&next_flush, memory_order_relaxed);
	if (now >= due && atomic_load_explicit(&pending, memory_order_relaxed) &&
	    atomic_compare_exchange_strong_explicit(&next_flush, &due, now + LOG_INTERVAL_NS,
						    memory_order_relaxed, memory_order_relaxed))
		flush_at(now);
}

int log_level_parse(const char *s)
{
	for (int i = 0; i < 4; i++)
		if (strcmp(s, level_names[i]) == 0)
			return i;
	return -1;
}
