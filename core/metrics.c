/*
 * metrics — per-thread counters and the Prometheus text format (metrics.h).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/metrics.h"

const uint32_t mh_bounds_us[MH_BUCKETS - 1] = {
	1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000,
	1000000, 2500000, 5000000, 10000000,
};

void mhist_observe(struct mhist *h, uint64_t us)
{
	int i = 0;

	while (i < MH_BUCKETS - 1 && us > mh_bounds_us[i])
		i++;
	STAT_INC(h->b[i]);
	STAT_ADD(h->sum_us, us);
}

void mhist_add(struct mhist *dst, const struct mhist *src)
{
	for (int i = 0; i < MH_BUCKETS; i++)
		dst->b[i] += STAT_GET(src->b[i]);
	dst->sum_us += STAT_GET(src->sum_us);
}

void mx_printf(struct mx *m, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (m->failed)
		return;
	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(m->p ? m->p + m->len : NULL, m->p ? m->cap - m->len : 0, fmt, ap);
		va_end(ap);
		if (n < 0) {
			m->failed = true;
			return;
		}
		if (m->p && (size_t)n < m->cap - m->len) {
			m->len += (size_t)n;
			return;
		}
		size_t cap = m->cap ? m->cap * 2 : 16384;
		while (cap < m->len + (size_t)n + 1)
			cap *= 2;
		char *p = realloc(m->p, cap);
		if (!p) {
			m->failed = true;
			return;
		}
		m->p = p;
		m->cap = cap;
	}
}

void mx_head(struct mx *m, const char *name, const char *type, const char *help)
{
	mx_printf(m, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

void mx_val(struct mx *m, const char *name, const char *labels, uint64_t v)
{
	if (labels[0])
		mx_printf(m, "%s{%s} %llu\n", name, labels, (unsigned long long)v);
	else
		mx_printf(m, "%s %llu\n", name, (unsigned long long)v);
}

void mx_one(struct mx *m, const char *name, const char *type, const char *help, uint64_t v)
{
	mx_head(m, name, type, help);
	mx_val(m, name, "", v);
}

void mx_valf(struct mx *m, const char *name, const char *labels, double v)
{
	if (labels[0])
		mx_printf(m, "%s{%s} %.6f\n", name, labels, v);
	else
		mx_printf(m, "%s %.6f\n", name, v);
}

void mx_hist(struct mx *m, const char *name, const char *help, const struct mhist *h)
{
	uint64_t cum = 0;

	mx_head(m, name, "histogram", help);
	for (int i = 0; i < MH_BUCKETS; i++) {
		cum += h->b[i];
		if (i < MH_BUCKETS - 1)
			mx_printf(m, "%s_bucket{le=\"%g\"} %llu\n", name, mh_bounds_us[i] / 1e6,
				  (unsigned long long)cum);
		else
			mx_printf(m, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)cum);
	}
	mx_printf(m, "%s_sum %.6f\n%s_count %llu\n", name, h->sum_us / 1e6, name, (unsigned long long)cum);
}

void mx_free(struct mx *m)
{
	free(m->p);
	*m = (struct mx){ 0 };
}
