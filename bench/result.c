/*
 * result — see result.h.  Histograms go to JSON exactly: count, sum, min,
 * max and the nonzero buckets as [index, count] pairs, with the layout's
 * name beside them ("hist_layout") so a reader never adds buckets of two
 * different layouts.  The reader trusts nothing in the file: every index,
 * count and string is bounded and checked, and a histogram whose buckets do
 * not add up to its count is refused.
 */
#include "bench/result.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define HIST_LAYOUT "log-linear-us-64x21"
#define MAX_SERIES 10000000u       /* points read from one file at most */
#define MAX_UNIX_S 100000000000ll  /* wall-clock seconds: year 5138; keeps ns sums in int64 */

static const char *const txn_names[TX_N] = {
	"connect", "tls", "auth", "bind", "roster", "login", "message_rtt", "join", "room_fanout",
	"resume", "publish", "ping", "ws"
};

const char *result_txn_name(int txn)
{
	return txn >= 0 && txn < TX_N ? txn_names[txn] : "?";
}

int result_txn_find(const char *name, size_t len)
{
	for (int i = 0; i < TX_N; i++)
		if (strlen(txn_names[i]) == len && memcmp(txn_names[i], name, len) == 0)
			return i;
	return -1;
}

/* Causes by their stage: the first prefix that matches.  The rest failed a
 * login somewhere else (a stream error, a socket error, the login phase's end). */
static const struct {
	const char *prefix;
	int txn;
	bool login;
} cause_map[] = {
	{ "join:", TX_JOIN, false },
	{ "ping:", TX_PING, false },
	{ "publish:", TX_PUBLISH, false },
	{ "resume:", TX_RESUME, false },
	{ "arrival:", -1, false },
	{ "barrier:", -1, false },
	{ "sm:", -1, false },
	{ "wait:", -1, false },
	{ "dropped:", -1, false },
	{ "message:", TX_MESSAGE_RTT, false },
	{ "connect", TX_CONNECT, true },
	{ "ws:", TX_WS, true },
	{ "timeout:ws", TX_WS, true },
	{ "no-descriptor-slot", TX_CONNECT, true },
	{ "timeout:connect", TX_CONNECT, true },
	{ "tls-", TX_TLS, true },
	{ "starttls-", TX_TLS, true },
	{ "timeout:tls", TX_TLS, true },
	{ "timeout:starttls", TX_TLS, true },
	{ "sasl", TX_AUTH, true },
	{ "timeout:sasl", TX_AUTH, true },
	{ "bind-", TX_BIND, true },
	{ "timeout:bind", TX_BIND, true },
	{ "roster-", TX_ROSTER, true },
	{ "timeout:roster", TX_ROSTER, true },
};

int result_txn_of_cause(const char *cause, bool *login)
{
	for (size_t i = 0; i < sizeof(cause_map) / sizeof(cause_map[0]); i++)
		if (strncmp(cause, cause_map[i].prefix, strlen(cause_map[i].prefix)) == 0) {
			*login = cause_map[i].login;
			return cause_map[i].txn;
		}
	*login = true;
	return TX_LOGIN;
}

void result_cause_count(const char *cause, uint64_t n, uint64_t err[TX_N])
{
	bool login;
	int txn = result_txn_of_cause(cause, &login);

	if (txn >= 0)
		err[txn] += n;
	if (login && txn != TX_LOGIN)
		err[TX_LOGIN] += n;
}

void result_init(struct result *r)
{
	memset(r, 0, sizeof(*r));
	r->version = 2;
	r->slice_count = 1;
	r->inputs = 1;
}

void result_free(struct result *r)
{
	for (size_t i = 0; i < r->nseries; i++)
		for (int k = 0; k < TX_N; k++)
			free(r->series[i].tx[k].b);
	free(r->series);
	r->series = NULL;
	r->nseries = r->capseries = 0;
}

static void cause_add(struct result_cause *c, unsigned *nc, const char *name, uint64_t n)
{
	unsigned i;

	for (i = 0; i < *nc; i++)
		if (strcmp(c[i].name, name) == 0)
			break;
	if (i == *nc) {
		if (*nc == RESULT_MAX_CAUSES)
			i = RESULT_MAX_CAUSES - 1;    /* the last slot becomes "other" */
		else
			(*nc)++;
		snprintf(c[i].name, sizeof(c[i].name), "%s", i == RESULT_MAX_CAUSES - 1 ? "other" : name);
	}
	c[i].n += n;
}

void result_cause(struct result *r, const char *cause, uint64_t n)
{
	bool login;
	int txn = result_txn_of_cause(cause, &login);

	if (!n)
		return;
	cause_add(r->causes, &r->ncauses, cause, n);
	r->errors += n;
	if (txn >= 0) {
		cause_add(r->tx[txn].causes, &r->tx[txn].ncauses, cause, n);
		r->tx[txn].errors += n;
	}
	if (login && txn != TX_LOGIN) {
		cause_add(r->tx[TX_LOGIN].causes, &r->tx[TX_LOGIN].ncauses, cause, n);
		r->tx[TX_LOGIN].errors += n;
	}
}

uint64_t result_operations(const struct result *r)
{
	static const int top[] = { TX_LOGIN, TX_MESSAGE_RTT, TX_JOIN, TX_RESUME, TX_PUBLISH, TX_PING };
	uint64_t n = r->errors;

	for (size_t i = 0; i < sizeof(top) / sizeof(top[0]); i++)
		n += r->tx[top[i]].count;
	return n;
}

double result_kib_per_session(const struct result *r)
{
	if (!r->peak_sessions || !r->gen_rss_max_kib)
		return -1;
	return ((double)r->gen_rss_max_kib - (double)r->gen_rss_start_kib) / (double)r->peak_sessions;
}

double result_gen_bytes_per_session(const struct result_gen_mem *m, bool heap)
{
	double before = heap ? (double)m->heap_alloc_before : (double)m->rss_before_kib * 1024;
	double held = heap ? (double)m->heap_alloc_held : (double)m->rss_held_kib * 1024;

	if (!m->held || !m->sessions_held || (heap && !m->heap_alloc_held))
		return -1;
	return (held - before) / (double)m->sessions_held;
}

double result_txn_rate(const struct result *r, int txn)
{
	return r->duration_s > 0 ? (double)r->tx[txn].count / r->duration_s : 0;
}

/* ---- timeline ------------------------------------------------------------------ */

struct result_point *result_point_add(struct result *r)
{
	struct result_point *p;

	if (r->nseries == r->capseries) {
		size_t cap = r->capseries ? 2 * r->capseries : 64;
		p = realloc(r->series, cap * sizeof(*p));
		if (!p)
			return NULL;
		r->series = p;
		r->capseries = cap;
	}
	p = &r->series[r->nseries++];
	memset(p, 0, sizeof(*p));
	p->target_cpu = -1;
	return p;
}

int result_point_txn(struct result_point *p, int txn, const struct hist *h, uint64_t errors)
{
	struct result_ptxn *x = &p->tx[txn];
	uint32_t nb = 0, k = 0;

	free(x->b);
	memset(x, 0, sizeof(*x));
	x->errors = errors;
	if (!h->count)
		return 0;
	for (unsigned i = 0; i < HIST_BUCKETS; i++)
		nb += h->b[i] != 0;
	x->b = malloc(nb * sizeof(*x->b));
	if (!x->b)
		return -1;
	for (unsigned i = 0; i < HIST_BUCKETS; i++)
		if (h->b[i])
			x->b[k++] = (struct result_bucket){ .i = i, .n = h->b[i] };
	x->nb = nb;
	x->count = h->count;
	x->sum_ns = h->sum_ns;
	x->min_ns = h->min_ns;
	x->max_ns = h->max_ns;
	return 0;
}

void result_point_hist(const struct result_point *p, int txn, struct hist *out)
{
	const struct result_ptxn *x = &p->tx[txn];

	hist_reset(out);
	for (uint32_t k = 0; k < x->nb; k++)
		out->b[x->b[k].i] += x->b[k].n;
	out->count = x->count;
	out->sum_ns = x->sum_ns;
	out->min_ns = x->min_ns;
	out->max_ns = x->max_ns;
}

/* ---- merge ---------------------------------------------------------------------- */

static int ptxn_merge(struct result_ptxn *into, const struct result_ptxn *from)
{
	struct result_bucket *b;
	uint32_t i = 0, j = 0, k = 0;

	into->errors += from->errors;
	if (!from->count)
		return 0;
	b = malloc(((size_t)into->nb + from->nb) * sizeof(*b));
	if (!b)
		return -1;
	while (i < into->nb || j < from->nb) {
		if (j == from->nb || (i < into->nb && into->b[i].i < from->b[j].i))
			b[k++] = into->b[i++];
		else if (i == into->nb || from->b[j].i < into->b[i].i)
			b[k++] = from->b[j++];
		else {
			b[k] = into->b[i++];
			b[k++].n += from->b[j++].n;
		}
	}
	free(into->b);
	into->b = b;
	into->nb = k;
	if (!into->count || from->min_ns < into->min_ns)
		into->min_ns = from->min_ns;
	if (from->max_ns > into->max_ns)
		into->max_ns = from->max_ns;
	into->count += from->count;
	into->sum_ns += from->sum_ns;
	return 0;
}

static int point_merge(struct result_point *into, const struct result_point *from)
{
	into->users += from->users;
	into->connected += from->connected;
	/* Slices sample the same target: its figures are the largest seen, not a sum. */
	if (from->target_cpu > into->target_cpu)
		into->target_cpu = from->target_cpu;
	if (from->target_rss_kib > into->target_rss_kib)
		into->target_rss_kib = from->target_rss_kib;
	into->bench_cpu += from->bench_cpu;
	for (int k = 0; k < TX_N; k++)
		if (ptxn_merge(&into->tx[k], &from->tx[k]) < 0)
			return -1;
	return 0;
}

static int point_copy(struct result_point *to, const struct result_point *from)
{
	*to = *from;
	for (int k = 0; k < TX_N; k++) {
		to->tx[k].b = NULL;
		if (!from->tx[k].nb)
			continue;
		to->tx[k].b = malloc(from->tx[k].nb * sizeof(*to->tx[k].b));
		if (!to->tx[k].b) {
			for (int j = 0; j < k; j++)
				free(to->tx[j].b);
			return -1;
		}
		memcpy(to->tx[k].b, from->tx[k].b, from->tx[k].nb * sizeof(*to->tx[k].b));
	}
	return 0;
}

/* Both timelines ascend by unix_s.  A point of from is added into the point
 * of into that ends in the same wall-clock second; the others are copied
 * aside, then the two sorted lists are interleaved (moves, no copies). */
static int series_merge(struct result *into, const struct result *from)
{
	struct result_point *extra = NULL, *s;
	size_t nextra = 0, i = 0, j, k = 0, e = 0;

	if (!from->nseries)
		return 0;
	extra = malloc(from->nseries * sizeof(*extra));
	if (!extra)
		return -1;
	for (j = 0; j < from->nseries; j++) {
		const struct result_point *b = &from->series[j];
		while (i < into->nseries && into->series[i].unix_s < b->unix_s)
			i++;
		if (i < into->nseries && into->series[i].unix_s == b->unix_s) {
			if (point_merge(&into->series[i], b) < 0)
				goto fail;
		} else if (point_copy(&extra[nextra], b) < 0) {
			goto fail;
		} else {
			nextra++;
		}
	}
	if (!nextra) {
		free(extra);
		return 0;
	}
	s = malloc((into->nseries + nextra) * sizeof(*s));
	if (!s)
		goto fail;
	for (i = 0; i < into->nseries || e < nextra;)
		s[k++] = e == nextra || (i < into->nseries && into->series[i].unix_s <= extra[e].unix_s) ?
			 into->series[i++] : extra[e++];
	free(into->series);
	free(extra);
	into->series = s;
	into->nseries = into->capseries = k;
	return 0;
fail:
	for (e = 0; e < nextra; e++)
		for (int t = 0; t < TX_N; t++)
			free(extra[e].tx[t].b);
	free(extra);
	return -1;
}

int result_merge(struct result *into, const struct result *from)
{
	int64_t end_a = into->start_unix_ns + (int64_t)(into->duration_s * 1e9);
	int64_t end_b = from->start_unix_ns + (int64_t)(from->duration_s * 1e9);
	int64_t start = into->start_unix_ns < from->start_unix_ns ? into->start_unix_ns :
			from->start_unix_ns;

	if (series_merge(into, from) < 0)
		return -1;
	into->start_unix_ns = start;
	into->duration_s = (double)((end_a > end_b ? end_a : end_b) - start) / 1e9;
	for (size_t i = 0; i < into->nseries; i++)
		into->series[i].t = (double)(into->series[i].unix_s * 1000000000ll - start) / 1e9;
	into->inputs += from->inputs;
	if (from->slice_count > into->slice_count)
		into->slice_count = from->slice_count;
	for (int k = 0; k < TX_N; k++) {
		struct result_txn *a = &into->tx[k];
		const struct result_txn *b = &from->tx[k];
		a->count += b->count;
		a->errors += b->errors;
		hist_merge(&a->h, &b->h);
		for (unsigned c = 0; c < b->ncauses; c++)
			cause_add(a->causes, &a->ncauses, b->causes[c].name, b->causes[c].n);
	}
	into->errors += from->errors;
	for (unsigned c = 0; c < from->ncauses; c++)
		cause_add(into->causes, &into->ncauses, from->causes[c].name, from->causes[c].n);
	if (from->have_target) {
		into->have_target = true;
		if (from->target_cpu_avg > into->target_cpu_avg)
			into->target_cpu_avg = from->target_cpu_avg;
		if (from->target_cpu_max > into->target_cpu_max)
			into->target_cpu_max = from->target_cpu_max;
		if (from->target_rss_max_kib > into->target_rss_max_kib)
			into->target_rss_max_kib = from->target_rss_max_kib;
	}
	into->gen_cpu_avg += from->gen_cpu_avg;
	into->gen_cpu_max += from->gen_cpu_max;
	into->gen_rss_start_kib += from->gen_rss_start_kib;
	into->gen_rss_max_kib += from->gen_rss_max_kib;
	into->peak_sessions += from->peak_sessions;
	into->interrupted |= from->interrupted;
	if (from->gm.held) {
		into->gm.held = true;
		into->gm.sessions_held += from->gm.sessions_held;
		into->gm.rss_before_kib += from->gm.rss_before_kib;
		into->gm.rss_held_kib += from->gm.rss_held_kib;
		into->gm.heap_alloc_before += from->gm.heap_alloc_before;
		into->gm.heap_alloc_held += from->gm.heap_alloc_held;
		into->gm.heap_resident_before += from->gm.heap_resident_before;
		into->gm.heap_resident_held += from->gm.heap_resident_held;
	}
	return 0;
}

/* ---- JSON out -------------------------------------------------------------------- */

static double ms(uint64_t ns)
{
	return (double)ns / 1e6;
}

void result_json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fprintf(f, "\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			fprintf(f, "\\u%04x", *s);
		else
			fputc(*s, f);
	}
	fputc('"', f);
}

static void json_causes(FILE *f, const struct result_cause *c, unsigned n)
{
	fputc('{', f);
	for (unsigned i = 0; i < n; i++) {
		fprintf(f, "%s", i ? ", " : "");
		result_json_str(f, c[i].name);
		fprintf(f, ": %" PRIu64, c[i].n);
	}
	fputc('}', f);
}

static void json_buckets(FILE *f, const struct hist *h)
{
	bool first = true;

	fputc('[', f);
	for (unsigned i = 0; i < HIST_BUCKETS; i++)
		if (h->b[i]) {
			fprintf(f, "%s[%u, %" PRIu64 "]", first ? "" : ", ", i, h->b[i]);
			first = false;
		}
	fputc(']', f);
}

static void json_hist(FILE *f, const struct hist *h)
{
	fprintf(f, "{\"count\": %" PRIu64 ", \"sum_ns\": %" PRIu64 ", \"min_ns\": %" PRIu64
		", \"max_ns\": %" PRIu64 ", \"p50_ms\": %.3f, \"p90_ms\": %.3f, \"p99_ms\": %.3f, "
		"\"p999_ms\": %.3f, \"max_ms\": %.3f, \"mean_ms\": %.3f, \"buckets\": ",
		h->count, h->sum_ns, h->count ? h->min_ns : 0, h->max_ns, ms(hist_percentile(h, 50)),
		ms(hist_percentile(h, 90)), ms(hist_percentile(h, 99)), ms(hist_percentile(h, 99.9)),
		ms(h->max_ns), h->count ? ms(h->sum_ns / h->count) : 0.0);
	json_buckets(f, h);
	fputc('}', f);
}

static void json_ptxn(FILE *f, const struct result_ptxn *x)
{
	fprintf(f, "{\"count\": %" PRIu64 ", \"errors\": %" PRIu64 ", \"sum_ns\": %" PRIu64
		", \"min_ns\": %" PRIu64 ", \"max_ns\": %" PRIu64 ", \"buckets\": [",
		x->count, x->errors, x->sum_ns, x->min_ns, x->max_ns);
	for (uint32_t k = 0; k < x->nb; k++)
		fprintf(f, "%s[%u, %" PRIu64 "]", k ? ", " : "", x->b[k].i, x->b[k].n);
	fprintf(f, "]}");
}

/* JSON: a number, or null when negative (unknown). */
static void json_num_or_null(FILE *f, double v)
{
	if (v >= 0)
		fprintf(f, "%.1f", v);
	else
		fprintf(f, "null");
}

/* The held-sessions fields of the "generator" object (after its others). */
static void json_gen_mem(FILE *f, const struct result_gen_mem *m)
{
	fprintf(f, ", \"sessions_held\": %" PRIu64 ", \"rss_before_kib\": %" PRIu64
		", \"rss_held_kib\": %" PRIu64 ", \"bytes_per_session\": ", m->sessions_held,
		m->rss_before_kib, m->rss_held_kib);
	json_num_or_null(f, result_gen_bytes_per_session(m, false));
	fprintf(f, ", \"heap_allocated_before\": %" PRIu64 ", \"heap_allocated_held\": %" PRIu64
		", \"heap_resident_before\": %" PRIu64 ", \"heap_resident_held\": %" PRIu64
		", \"heap_bytes_per_session\": ", m->heap_alloc_before, m->heap_alloc_held,
		m->heap_resident_before, m->heap_resident_held);
	json_num_or_null(f, result_gen_bytes_per_session(m, true));
}

void result_json_fields(FILE *f, const struct result *r)
{
	uint64_t ops = result_operations(r);
	double kps = result_kib_per_session(r);

	fprintf(f, "  \"version\": %d,\n  \"hist_layout\": \"%s\",\n  \"scenario_name\": ", r->version,
		HIST_LAYOUT);
	result_json_str(f, r->scenario);
	fprintf(f, ",\n  \"slice\": {\"index\": %u, \"count\": %u},\n  \"inputs\": %u,\n",
		r->slice_index, r->slice_count, r->inputs);
	fprintf(f, "  \"start_unix_ns\": %" PRId64 ",\n  \"duration_s\": %.3f,\n", r->start_unix_ns,
		r->duration_s);
	fprintf(f, "  \"errors\": {\"count\": %" PRIu64 ", \"operations\": %" PRIu64
		", \"rate\": %.6f, \"by_cause\": ", r->errors, ops, ops ? (double)r->errors / (double)ops : 0.0);
	json_causes(f, r->causes, r->ncauses);
	fprintf(f, "},\n");
	fprintf(f, "  \"target_load\": {\"sampled\": %s, \"cpu_avg\": %.1f, \"cpu_max\": %.1f, "
		"\"rss_max_kib\": %" PRIu64 "},\n", r->have_target ? "true" : "false", r->target_cpu_avg,
		r->target_cpu_max, r->target_rss_max_kib);
	fprintf(f, "  \"generator\": {\"cpu_avg\": %.1f, \"cpu_max\": %.1f, \"rss_start_kib\": %" PRIu64
		", \"rss_max_kib\": %" PRIu64 ", \"peak_sessions\": %" PRIu64 ", \"kib_per_session\": ",
		r->gen_cpu_avg, r->gen_cpu_max, r->gen_rss_start_kib, r->gen_rss_max_kib, r->peak_sessions);
	if (kps >= 0)
		fprintf(f, "%.2f", kps);
	else
		fprintf(f, "null");
	json_gen_mem(f, &r->gm);
	fprintf(f, "},\n");
	fprintf(f, "  \"transactions\": {\n");
	for (int k = 0; k < TX_N; k++) {
		const struct result_txn *x = &r->tx[k];
		fprintf(f, "    \"%s\": {\"count\": %" PRIu64 ", \"errors\": %" PRIu64
			", \"rate_per_s\": %.3f, \"causes\": ", txn_names[k], x->count, x->errors,
			result_txn_rate(r, k));
		json_causes(f, x->causes, x->ncauses);
		fprintf(f, ", \"hist\": ");
		json_hist(f, &x->h);
		fprintf(f, "}%s\n", k + 1 < TX_N ? "," : "");
	}
	fprintf(f, "  },\n  \"timeline\": [\n");
	for (size_t i = 0; i < r->nseries; i++) {
		const struct result_point *p = &r->series[i];
		bool first = true;
		fprintf(f, "    {\"unix_s\": %" PRId64 ", \"t\": %.3f, \"users\": %" PRIu64
			", \"connected\": %" PRIu64 ", \"target_cpu\": %.1f, \"target_rss_kib\": %" PRIu64
			", \"bench_cpu\": %.1f, \"tx\": {", p->unix_s, p->t, p->users, p->connected,
			p->target_cpu, p->target_rss_kib, p->bench_cpu);
		for (int k = 0; k < TX_N; k++) {
			if (!p->tx[k].count && !p->tx[k].errors)
				continue;
			fprintf(f, "%s\"%s\": ", first ? "" : ", ", txn_names[k]);
			json_ptxn(f, &p->tx[k]);
			first = false;
		}
		fprintf(f, "}}%s\n", i + 1 < r->nseries ? "," : "");
	}
	fprintf(f, "  ],\n");
}

static void v1_lat(FILE *f, const char *name, const struct hist *h, bool comma)
{
	fprintf(f, "    \"%s\": {\"count\": %" PRIu64 ", \"p50\": %.3f, \"p90\": %.3f, \"p99\": %.3f, "
		"\"p999\": %.3f, \"max\": %.3f, \"mean\": %.3f}%s\n", name, h->count,
		ms(hist_percentile(h, 50)), ms(hist_percentile(h, 90)), ms(hist_percentile(h, 99)),
		ms(hist_percentile(h, 99.9)), ms(h->max_ns), h->count ? ms(h->sum_ns / h->count) : 0.0,
		comma ? "," : "");
}

int result_write_json(const char *path, const struct result *r)
{
	return result_write_json_more(path, r, NULL);
}

int result_write_json_more(const char *path, const struct result *r, const char *more)
{
	FILE *f = fopen(path, "w");
	bool first = true;

	if (!f)
		return -errno;
	/* The v1 fields a merged result can give exactly; the rest (rates over
	 * phases, lost messages by window) stay with each slice's own file. */
	fprintf(f, "{\n  \"scenario\": ");
	result_json_str(f, r->scenario);
	fprintf(f, ",\n  \"elapsed_s\": %.3f,\n  \"interrupted\": %s,\n", r->duration_s,
		r->interrupted ? "true" : "false");
	if (more)
		fputs(more, f);
	fprintf(f, "  \"logins\": {\"connected\": %" PRIu64 ", \"logged_in\": %" PRIu64
		", \"failed\": %" PRIu64 ", \"peak_connected\": %" PRIu64 "},\n",
		r->tx[TX_CONNECT].count, r->tx[TX_LOGIN].count, r->tx[TX_LOGIN].errors, r->peak_sessions);
	fprintf(f, "  \"latency_ms\": {\n");
	v1_lat(f, "connect", &r->tx[TX_CONNECT].h, true);
	v1_lat(f, "tls", &r->tx[TX_TLS].h, true);
	v1_lat(f, "auth", &r->tx[TX_AUTH].h, true);
	v1_lat(f, "login", &r->tx[TX_LOGIN].h, true);
	v1_lat(f, "message", &r->tx[TX_MESSAGE_RTT].h, false);
	fprintf(f, "  },\n  \"failures\": {");
	for (unsigned i = 0; i < r->ncauses; i++) {
		if (strncmp(r->causes[i].name, "message:", 8) == 0)
			continue;
		fprintf(f, "%s", first ? "" : ", ");
		result_json_str(f, r->causes[i].name);
		fprintf(f, ": %" PRIu64, r->causes[i].n);
		first = false;
	}
	fprintf(f, "},\n  \"target\": {\"pids\": [], \"cpu_avg\": %.1f, \"cpu_max\": %.1f, "
		"\"rss_max_kib\": %" PRIu64 "},\n", r->target_cpu_avg, r->target_cpu_max,
		r->target_rss_max_kib);
	result_json_fields(f, r);
	fprintf(f, "  \"merged\": true\n}\n");
	return fclose(f) == 0 ? 0 : -errno;
}

/* ---- JSON in --------------------------------------------------------------------- */

static int read_fail(char *err, size_t cap, const char *fmt, const char *what)
{
	snprintf(err, cap, fmt, what);
	return -1;
}

/* A non-negative integer member; absent: *out = 0, ok. */
static int get_u64(json_t *o, const char *key, uint64_t *out)
{
	json_t *v = json_object_get(o, key);

	*out = 0;
	if (!v)
		return 0;
	if (json_is_integer(v) && json_integer_value(v) >= 0) {
		*out = (uint64_t)json_integer_value(v);
		return 0;
	}
	if (json_is_real(v) && json_real_value(v) >= 0 && json_real_value(v) < 1.8e19) {
		*out = (uint64_t)json_real_value(v);
		return 0;
	}
	return -1;
}

static double get_num(json_t *o, const char *key, double dflt)
{
	json_t *v = json_object_get(o, key);

	return json_is_number(v) ? json_number_value(v) : dflt;
}

/* A number member bounded to [lo, hi] (so casts and sums of hostile values stay defined). */
static double get_bounded(json_t *o, const char *key, double dflt, double lo, double hi)
{
	double v = get_num(o, key, dflt);

	return v < lo ? lo : v > hi ? hi : v;
}

static int read_causes(json_t *o, struct result_cause *c, unsigned *n)
{
	const char *k;
	json_t *v;

	if (!o)
		return 0;
	if (!json_is_object(o))
		return -1;
	json_object_foreach(o, k, v) {
		if (!json_is_integer(v) || json_integer_value(v) < 0)
			return -1;
		cause_add(c, n, k, (uint64_t)json_integer_value(v));
	}
	return 0;
}

/* Buckets [[i, n], ...] into h (added), with their total in *sum. */
static int read_buckets(json_t *a, struct hist *h, struct result_ptxn *x, uint64_t *total)
{
	size_t i;
	json_t *e;
	uint32_t prev = 0;

	*total = 0;
	if (!json_is_array(a) || json_array_size(a) > HIST_BUCKETS)
		return -1;
	if (x) {
		x->b = json_array_size(a) ? malloc(json_array_size(a) * sizeof(*x->b)) : NULL;
		if (json_array_size(a) && !x->b)
			return -1;
		x->nb = 0;
	}
	json_array_foreach(a, i, e) {
		json_t *ji = json_array_get(e, 0), *jn = json_array_get(e, 1);
		json_int_t bi, bn;
		if (!json_is_array(e) || json_array_size(e) != 2 || !json_is_integer(ji) || !json_is_integer(jn))
			return -1;
		bi = json_integer_value(ji);
		bn = json_integer_value(jn);
		if (bi < 0 || bi >= (json_int_t)HIST_BUCKETS || bn <= 0 || (i && (uint32_t)bi <= prev))
			return -1;
		prev = (uint32_t)bi;
		if (h)
			h->b[bi] += (uint64_t)bn;
		if (x)
			x->b[x->nb++] = (struct result_bucket){ .i = (uint32_t)bi, .n = (uint64_t)bn };
		*total += (uint64_t)bn;
	}
	return 0;
}

static int read_hist(json_t *o, struct hist *h)
{
	uint64_t total;

	hist_reset(h);
	if (!json_is_object(o) || get_u64(o, "count", &h->count) < 0 ||
	    get_u64(o, "sum_ns", &h->sum_ns) < 0 || get_u64(o, "min_ns", &h->min_ns) < 0 ||
	    get_u64(o, "max_ns", &h->max_ns) < 0 ||
	    read_buckets(json_object_get(o, "buckets"), h, NULL, &total) < 0 || total != h->count ||
	    (h->count && h->min_ns > h->max_ns))
		return -1;
	return 0;
}

static int read_point(json_t *o, struct result_point *p, char *err, size_t cap)
{
	json_t *tx = json_object_get(o, "tx"), *v;
	const char *k;

	if (!json_is_object(o) || !json_is_integer(json_object_get(o, "unix_s")))
		return read_fail(err, cap, "%s: a timeline point without unix_s", "");
	p->unix_s = json_integer_value(json_object_get(o, "unix_s"));
	if (p->unix_s < 0 || p->unix_s > MAX_UNIX_S)
		return read_fail(err, cap, "%s: a timeline unix_s out of range", "");
	p->t = get_num(o, "t", 0);
	if (get_u64(o, "users", &p->users) < 0 || get_u64(o, "connected", &p->connected) < 0 ||
	    get_u64(o, "target_rss_kib", &p->target_rss_kib) < 0)
		return read_fail(err, cap, "%s: a bad timeline gauge", "");
	p->target_cpu = get_num(o, "target_cpu", -1);
	p->bench_cpu = get_num(o, "bench_cpu", 0);
	if (tx && !json_is_object(tx))
		return read_fail(err, cap, "%s: a bad timeline \"tx\"", "");
	json_object_foreach(tx, k, v) {
		int t = result_txn_find(k, strlen(k));
		struct result_ptxn *x;
		uint64_t total;
		if (t < 0)
			return read_fail(err, cap, "unknown transaction '%s' in the timeline", k);
		x = &p->tx[t];
		if (x->b || !json_is_object(v) || get_u64(v, "count", &x->count) < 0 ||
		    get_u64(v, "errors", &x->errors) < 0 || get_u64(v, "sum_ns", &x->sum_ns) < 0 ||
		    get_u64(v, "min_ns", &x->min_ns) < 0 || get_u64(v, "max_ns", &x->max_ns) < 0 ||
		    read_buckets(json_object_get(v, "buckets"), NULL, x, &total) < 0 ||
		    total != x->count)
			return read_fail(err, cap, "a bad timeline histogram of '%s'", k);
	}
	return 0;
}

int result_read_json(const char *path, struct result *r, char *err, size_t cap)
{
	json_error_t je;
	/* duplicate keys are allowed: a run's v1 fields have "target" twice (the address,
	 * then the sampled pids), and the last one wins, as in Python */
	json_t *root = json_load_file(path, 0, &je), *v, *o;
	const char *k;
	size_t i;
	int rc = -1;

	result_init(r);
	if (!root) {
		snprintf(err, cap, "%s:%d: %s", path, je.line, je.text);
		return -1;
	}
	if (!json_is_object(root)) {
		read_fail(err, cap, "%s: not a JSON object", path);
		goto out;
	}
	v = json_object_get(root, "version");
	if (!json_is_integer(v) || json_integer_value(v) != 2) {
		read_fail(err, cap, "%s: not an xedge-bench JSON v2 result (\"version\": 2)", path);
		goto out;
	}
	v = json_object_get(root, "hist_layout");
	if (!json_is_string(v) || strcmp(json_string_value(v), HIST_LAYOUT) != 0) {
		read_fail(err, cap, "%s: histogram layout is not " HIST_LAYOUT, path);
		goto out;
	}
	v = json_object_get(root, "scenario_name");
	snprintf(r->scenario, sizeof(r->scenario), "%s", json_is_string(v) ? json_string_value(v) : "");
	o = json_object_get(root, "slice");
	r->slice_index = (unsigned)get_bounded(o, "index", 0, 0, 1e6);
	r->slice_count = (unsigned)get_bounded(o, "count", 1, 1, 1e6);
	r->inputs = (unsigned)get_bounded(root, "inputs", 1, 1, 1e6);
	v = json_object_get(root, "start_unix_ns");
	if (!json_is_integer(v)) {
		read_fail(err, cap, "%s: no start_unix_ns", path);
		goto out;
	}
	r->start_unix_ns = json_integer_value(v);
	if (r->start_unix_ns < 0 || r->start_unix_ns / 1000000000ll > MAX_UNIX_S) {
		read_fail(err, cap, "%s: start_unix_ns out of range", path);
		goto out;
	}
	r->duration_s = get_bounded(root, "duration_s", 0, 0, 1e8);
	r->interrupted = json_is_true(json_object_get(root, "interrupted"));
	o = json_object_get(root, "errors");
	if (!json_is_object(o) || get_u64(o, "count", &r->errors) < 0 ||
	    read_causes(json_object_get(o, "by_cause"), r->causes, &r->ncauses) < 0) {
		read_fail(err, cap, "%s: a bad \"errors\" object", path);
		goto out;
	}
	o = json_object_get(root, "target_load");
	r->have_target = json_is_true(json_object_get(o, "sampled"));
	r->target_cpu_avg = get_num(o, "cpu_avg", 0);
	r->target_cpu_max = get_num(o, "cpu_max", 0);
	(void)get_u64(o, "rss_max_kib", &r->target_rss_max_kib);
	o = json_object_get(root, "generator");
	r->gen_cpu_avg = get_num(o, "cpu_avg", 0);
	r->gen_cpu_max = get_num(o, "cpu_max", 0);
	(void)get_u64(o, "rss_start_kib", &r->gen_rss_start_kib);
	(void)get_u64(o, "rss_max_kib", &r->gen_rss_max_kib);
	(void)get_u64(o, "peak_sessions", &r->peak_sessions);
	r->gm.held = get_u64(o, "sessions_held", &r->gm.sessions_held) == 0 && r->gm.sessions_held;
	(void)get_u64(o, "rss_before_kib", &r->gm.rss_before_kib);
	(void)get_u64(o, "rss_held_kib", &r->gm.rss_held_kib);
	(void)get_u64(o, "heap_allocated_before", &r->gm.heap_alloc_before);
	(void)get_u64(o, "heap_allocated_held", &r->gm.heap_alloc_held);
	(void)get_u64(o, "heap_resident_before", &r->gm.heap_resident_before);
	(void)get_u64(o, "heap_resident_held", &r->gm.heap_resident_held);
	o = json_object_get(root, "transactions");
	if (!json_is_object(o)) {
		read_fail(err, cap, "%s: no \"transactions\"", path);
		goto out;
	}
	json_object_foreach(o, k, v) {
		int t = result_txn_find(k, strlen(k));
		struct result_txn *x;
		if (t < 0) {
			read_fail(err, cap, "unknown transaction '%s'", k);
			goto out;
		}
		x = &r->tx[t];
		if (!json_is_object(v) || get_u64(v, "count", &x->count) < 0 ||
		    get_u64(v, "errors", &x->errors) < 0 ||
		    read_causes(json_object_get(v, "causes"), x->causes, &x->ncauses) < 0 ||
		    read_hist(json_object_get(v, "hist"), &x->h) < 0) {
			read_fail(err, cap, "a bad transaction '%s'", k);
			goto out;
		}
	}
	o = json_object_get(root, "timeline");
	if (!json_is_array(o) || json_array_size(o) > MAX_SERIES) {
		read_fail(err, cap, "%s: no \"timeline\" array", path);
		goto out;
	}
	json_array_foreach(o, i, v) {
		struct result_point *p = result_point_add(r);
		if (!p) {
			read_fail(err, cap, "%s: out of memory", path);
			goto out;
		}
		if (read_point(v, p, err, cap) < 0)
			goto out;
		if (i && p->unix_s < r->series[i - 1].unix_s) {
			read_fail(err, cap, "%s: the timeline is not in time order", path);
			goto out;
		}
	}
	rc = 0;
out:
	json_decref(root);
	if (rc < 0)
		result_free(r);
	return rc;
}

/* ---- CSV and tables -------------------------------------------------------------- */

static bool txn_seen(const struct result *r, int k)
{
	return r->tx[k].count || r->tx[k].errors;
}

int result_write_csv(const char *path, const struct result *r)
{
	FILE *f = fopen(path, "w");

	if (!f)
		return -errno;
	fprintf(f, "t,unix_s,users,connected");
	for (int k = 0; k < TX_N; k++)
		if (txn_seen(r, k))
			fprintf(f, ",%s_count,%s_errors,%s_p50_ms,%s_p99_ms", txn_names[k], txn_names[k],
				txn_names[k], txn_names[k]);
	fputc('\n', f);
	for (size_t i = 0; i < r->nseries; i++) {
		const struct result_point *p = &r->series[i];
		fprintf(f, "%.3f,%" PRId64 ",%" PRIu64 ",%" PRIu64, p->t, p->unix_s, p->users, p->connected);
		for (int k = 0; k < TX_N; k++) {
			struct hist h;
			if (!txn_seen(r, k))
				continue;
			fprintf(f, ",%" PRIu64 ",%" PRIu64, p->tx[k].count, p->tx[k].errors);
			if (!p->tx[k].count) {
				fprintf(f, ",,");
				continue;
			}
			result_point_hist(p, k, &h);
			fprintf(f, ",%.3f,%.3f", ms(hist_percentile(&h, 50)), ms(hist_percentile(&h, 99)));
		}
		fputc('\n', f);
	}
	return fclose(f) == 0 ? 0 : -errno;
}

void result_summary(FILE *f, const struct result *r)
{
	uint64_t ops = result_operations(r);

	fprintf(f, "\n%-14s %10s %8s %9s %9s %9s %9s %9s %9s\n", "transactions", "count", "errors",
		"rate/s", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "max ms");
	for (int k = 0; k < TX_N; k++) {
		const struct result_txn *x = &r->tx[k];
		if (!txn_seen(r, k))
			continue;
		fprintf(f, "  %-12s %10" PRIu64 " %8" PRIu64 " %9.1f", txn_names[k], x->count, x->errors,
			result_txn_rate(r, k));
		if (x->h.count)
			fprintf(f, " %9.3f %9.3f %9.3f %9.3f %9.3f\n", ms(hist_percentile(&x->h, 50)),
				ms(hist_percentile(&x->h, 90)), ms(hist_percentile(&x->h, 99)),
				ms(hist_percentile(&x->h, 99.9)), ms(x->h.max_ns));
		else
			fprintf(f, " %9s\n", "-");
	}
	fprintf(f, "  errors %" PRIu64 " of %" PRIu64 " operations (%.3f %%)\n", r->errors, ops,
		ops ? 100.0 * (double)r->errors / (double)ops : 0.0);
}

static void ratio(FILE *f, double a, double b)
{
	if (a > 0)
		fprintf(f, " %9.2fx", b / a);
	else
		fprintf(f, " %10s", b > 0 ? "new" : "-");
}

static void cmp_row(FILE *f, const char *label, const struct result *r, int k)
{
	const struct hist *h = &r->tx[k].h;

	fprintf(f, "  %-8s %10" PRIu64 " %10.1f %10.3f %10.3f %10.3f %10.3f %10" PRIu64 "\n", label,
		r->tx[k].count, result_txn_rate(r, k), ms(hist_percentile(h, 50)),
		ms(hist_percentile(h, 99)), ms(hist_percentile(h, 99.9)), ms(h->max_ns), r->tx[k].errors);
}

void result_compare(FILE *f, const struct result *a, const struct result *b)
{
	uint64_t oa = result_operations(a), ob = result_operations(b);

	fprintf(f, "A: %s, %.1f s, %u input%s   B: %s, %.1f s, %u input%s\n", a->scenario,
		a->duration_s, a->inputs, a->inputs > 1 ? "s" : "", b->scenario, b->duration_s,
		b->inputs, b->inputs > 1 ? "s" : "");
	for (int k = 0; k < TX_N; k++) {
		const struct hist *ha = &a->tx[k].h, *hb = &b->tx[k].h;
		if (!txn_seen(a, k) && !txn_seen(b, k))
			continue;
		fprintf(f, "\n%-10s %10s %10s %10s %10s %10s %10s %10s\n", txn_names[k], "count", "rate/s",
			"p50 ms", "p99 ms", "p99.9 ms", "max ms", "errors");
		cmp_row(f, "A", a, k);
		cmp_row(f, "B", b, k);
		fprintf(f, "  %-8s", "B/A");
		ratio(f, (double)a->tx[k].count, (double)b->tx[k].count);
		ratio(f, result_txn_rate(a, k), result_txn_rate(b, k));
		ratio(f, (double)hist_percentile(ha, 50), (double)hist_percentile(hb, 50));
		ratio(f, (double)hist_percentile(ha, 99), (double)hist_percentile(hb, 99));
		ratio(f, (double)hist_percentile(ha, 99.9), (double)hist_percentile(hb, 99.9));
		ratio(f, (double)ha->max_ns, (double)hb->max_ns);
		ratio(f, (double)a->tx[k].errors, (double)b->tx[k].errors);
		fputc('\n', f);
	}
	fprintf(f, "\nerrors   A %" PRIu64 " of %" PRIu64 " (%.3f %%)   B %" PRIu64 " of %" PRIu64
		" (%.3f %%)\n", a->errors, oa, oa ? 100.0 * (double)a->errors / (double)oa : 0.0,
		b->errors, ob, ob ? 100.0 * (double)b->errors / (double)ob : 0.0);
}
