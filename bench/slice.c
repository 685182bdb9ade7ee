/*
 * slice — this process's slice of a distributed load and the shared
 * wall-clock start (contract in slice.h).
 */
#include "bench/slice.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench/bench.h"

/* Unix seconds can be ten digits plus a fraction; refuse anything that would
 * overflow int64 nanoseconds (year 2262). */
#define MAX_UNIX_S 9000000000ll

/* n decimal digits at *p -> *v; advances *p.  0, or -1. */
static int digits(const char **p, int n, int *v)
{
	*v = 0;
	for (int i = 0; i < n; i++) {
		if (!isdigit((unsigned char)(*p)[i]))
			return -1;
		*v = *v * 10 + ((*p)[i] - '0');
	}
	*p += n;
	return 0;
}

/* An optional ".ddd" (up to nine digits count; more are read and dropped). */
static int fraction(const char **p, int64_t *ns)
{
	int64_t scale = 100000000;

	*ns = 0;
	if (**p != '.')
		return 0;
	(*p)++;
	if (!isdigit((unsigned char)**p))
		return -1;
	for (; isdigit((unsigned char)**p); (*p)++) {
		*ns += (**p - '0') * scale;
		scale /= 10;
	}
	return 0;
}

static int days_in(int y, int m)
{
	static const int d[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	return m == 2 && leap ? 29 : d[m - 1];
}

int slice_parse_time(const char *s, int64_t *unix_ns)
{
	const char *p = s;
	int y, mo, d, h, mi, sec, oh = 0, om = 0, sign = 0;
	int64_t frac, t;
	struct tm tm = { 0 };

	if (!*s)
		return -1;
	/* unix seconds: digits only, with an optional fraction */
	if (strspn(s, "0123456789") == strcspn(s, ".")) {
		int64_t v = 0;
		for (; isdigit((unsigned char)*p); p++) {
			v = v * 10 + (*p - '0');
			if (v > MAX_UNIX_S)
				return -1;
		}
		if (p == s || fraction(&p, &frac) < 0 || *p)
			return -1;
		*unix_ns = v * 1000000000ll + frac;
		return 0;
	}
	/* RFC 3339 §5.6 date-time */
	if (digits(&p, 4, &y) || *p++ != '-' || digits(&p, 2, &mo) || *p++ != '-' ||
	    digits(&p, 2, &d) || (*p != 'T' && *p != 't' && *p != ' '))
		return -1;
	p++;
	if (digits(&p, 2, &h) || *p++ != ':' || digits(&p, 2, &mi) || *p++ != ':' ||
	    digits(&p, 2, &sec) || fraction(&p, &frac) < 0)
		return -1;
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		sign = *p++ == '+' ? 1 : -1;
		if (digits(&p, 2, &oh) || *p++ != ':' || digits(&p, 2, &om) || oh > 23 || om > 59)
			return -1;
	} else {
		return -1;        /* RFC 3339 requires the offset: no local time */
	}
	/* a leap second (:60) is read as the next second's start */
	if (*p || y < 1970 || mo < 1 || mo > 12 || d < 1 || d > days_in(y, mo) || h > 23 ||
	    mi > 59 || sec > 60)
		return -1;
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	t = (int64_t)timegm(&tm) - sign * (oh * 3600 + om * 60);
	if (t < 0 || t > MAX_UNIX_S)
		return -1;
	*unix_ns = t * 1000000000ll + frac;
	return 0;
}

static int slice_fail(char *err, size_t cap, const char *fmt, const char *a, const char *b)
{
	snprintf(err, cap, fmt, a, b);
	return -1;
}

static int parse_index(const char *s, unsigned max, unsigned *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || !isdigit((unsigned char)*s) || v > max)
		return -1;
	*out = (unsigned)v;
	return 0;
}

int slice_options(struct slice *s, const char *index, const char *count, const char *start_at,
		  char *err, size_t cap)
{
	const char *iname = "--index ", *cname = "--count ";

	*s = (struct slice){ .index = 0, .count = 1 };
	if (!index && (index = getenv("JOB_COMPLETION_INDEX")) && *index)
		iname = "JOB_COMPLETION_INDEX=";
	if (!count && (count = getenv("XEDGE_BENCH_COUNT")) && *count)
		cname = "XEDGE_BENCH_COUNT=";
	if (index && !*index)
		index = NULL;       /* an empty variable: not set */
	if (count && !*count)
		count = NULL;
	if (count && parse_index(count, SLICE_MAX, &s->count) < 0)
		return slice_fail(err, cap, "bad %s%s (slices: 1 to 100000)", cname, count);
	if (count && s->count == 0)
		return slice_fail(err, cap, "bad %s%s (slices: 1 to 100000)", cname, count);
	if (index && parse_index(index, SLICE_MAX, &s->index) < 0)
		return slice_fail(err, cap, "bad %s%s (a slice index from 0)", iname, index);
	if (index && !count)
		return slice_fail(err, cap, "%s%s without --count or XEDGE_BENCH_COUNT: how many "
			    "slices share the load?", iname, index);
	if (!index && s->count > 1)
		return slice_fail(err, cap, "%s%s without --index or JOB_COMPLETION_INDEX: which slice "
			    "is this?", cname, count);
	if (s->index >= s->count) {
		char c[16];
		snprintf(c, sizeof(c), "%u", s->count);
		return slice_fail(err, cap, "slice index %s is not below the count %s", index, c);
	}
	if (start_at && slice_parse_time(start_at, &s->start_at_ns) < 0)
		return slice_fail(err, cap, "bad --start-at '%s' (RFC 3339 such as %s, or unix seconds)",
			    start_at, "2026-12-07T12:00:00Z");
	return 0;
}

/* floor(i * total / n), without overflow */
static unsigned cut(unsigned i, unsigned total, unsigned n)
{
	return (unsigned)((uint64_t)i * total / n);
}

int slice_apply(struct slice *s, struct bench_opts *o, char *err, size_t cap)
{
	unsigned whole = o->clients, lo, hi;
	double share;

	s->whole_clients = whole;
	s->first = 0;
	s->n = whole;
	if (s->count == 1)
		return 0;
	if (o->remote_host)
		return slice_fail(err, cap, "%s%s", "--remote with --count > 1: its two halves would need two "
			    "user offsets (run one sliced load per server)", "");
	if (o->scenario == SC_MUC) {
		unsigned rlo = cut(s->index, o->rooms, s->count);
		unsigned rhi = cut(s->index + 1, o->rooms, s->count);
		if (o->rooms < s->count) {
			char a[32], b[32];
			snprintf(a, sizeof(a), "%u", o->rooms);
			snprintf(b, sizeof(b), "%u", s->count);
			return slice_fail(err, cap, "muc: %s rooms cannot make %s slices (whole rooms each)", a, b);
		}
		o->rooms = rhi - rlo;
		lo = rlo * o->room_size;
		hi = rhi * o->room_size;
	} else {
		unsigned min = o->scenario == SC_CHAT ? 2 : 1;
		lo = cut(s->index, whole, s->count);
		hi = cut(s->index + 1, whole, s->count);
		if ((uint64_t)whole < (uint64_t)min * s->count) {
			char a[32], b[48];
			snprintf(a, sizeof(a), "%u", whole);
			snprintf(b, sizeof(b), "%u slices (%u each at least)", s->count, min);
			return slice_fail(err, cap, "--clients %s cannot make %s", a, b);
		}
	}
	share = (double)(hi - lo) / whole;
	o->clients = hi - lo;
	o->split = o->clients;
	o->offset += lo;
	o->ramp *= share;                 /* 0 (unlimited) stays 0 */
	o->join_rate *= share;
	if (o->concurrency) {
		/* a bound, not a rate: the share rounded up, never 0 (which is unlimited) */
		uint64_t c = ((uint64_t)o->concurrency * (hi - lo) + whole - 1) / whole;
		o->concurrency = c ? (unsigned)c : 1;
	}
	s->first = lo;
	s->n = hi - lo;
	return 0;
}

static void show(const struct slice *s, int64_t left_ns, bool tty)
{
	char when[40], line[200];
	time_t t = (time_t)(s->start_at_ns / 1000000000ll);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	snprintf(line, sizeof(line), "[%5.0fs %-6s] slice %u of %u starts at %s in %.0f s",
		 0.0, "wait", s->index, s->count, when, ceil((double)left_ns / 1e9));
	if (tty)
		fprintf(stderr, "\r%s\033[K", line);
	else
		fprintf(stderr, "%s\n", line);
}

static int64_t wall_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

int slice_wait(const struct slice *s, volatile sig_atomic_t *stop, bool tty)
{
	int64_t now = wall_ns(), left = s->start_at_ns - now;
	bool drawn = false;

	if (!s->start_at_ns)
		return 0;
	if (-left > SLICE_LATE_NS) {
		fprintf(stderr, "xedge-bench: --start-at is %.1f s in the past (more than %lld s late): "
			"the other slices have started without this one\n", (double)-left / 1e9,
			SLICE_LATE_NS / 1000000000ll);
		return -1;
	}
	while (left > 0) {
		/* wake at every whole second before the start (to redraw), then at the start */
		int64_t step = left % 1000000000ll ? left % 1000000000ll : 1000000000ll;
		int64_t until = now + step;
		struct timespec ts = { .tv_sec = until / 1000000000ll, .tv_nsec = until % 1000000000ll };

		if (*stop)
			break;
		show(s, left, tty);
		drawn = true;
		/* absolute on the wall clock: a clock step (NTP) moves the wake-up with it */
		while (clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &ts, NULL) == EINTR && !*stop)
			;
		now = wall_ns();
		left = s->start_at_ns - now;
	}
	if (drawn && tty)
		fputc('\n', stderr);
	if (*stop)
		return 1;
	if (!drawn && left < 0)   /* late, within SLICE_LATE_NS: say by how much */
		fprintf(stderr, "xedge-bench: starting %.3f s after --start-at\n", (double)-left / 1e9);
	return 0;
}
