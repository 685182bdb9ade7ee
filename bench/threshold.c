/*
 * threshold — see threshold.h.  The parser reads left to right: a metric
 * (letters, digits, '_' and '.'), blanks, an operator, blanks, a number, an
 * optional unit, blanks; anything else is an error naming what was expected.
 */
#include "bench/threshold.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int err_at(char *err, size_t cap, const char *text, const char *why)
{
	snprintf(err, cap, "bad threshold '%s': %s", text, why);
	return -1;
}

/* The metric after "<txn>." or "errors.": 0, or -1 when unknown. */
static int parse_stat(const char *s, size_t n, struct thr *t)
{
	char buf[32], *end;

	if (n == 0 || n >= sizeof(buf))
		return -1;
	memcpy(buf, s, n);
	buf[n] = '\0';
	if (t->txn < 0) {
		if (!strcmp(buf, "rate"))
			t->metric = THR_ERR_RATE;
		else if (!strcmp(buf, "count"))
			t->metric = THR_ERR_COUNT;
		else
			return -1;
		return 0;
	}
	if (!strcmp(buf, "count"))
		t->metric = THR_COUNT;
	else if (!strcmp(buf, "errors") || !strcmp(buf, "errors.count"))
		t->metric = THR_ERR_COUNT;
	else if (!strcmp(buf, "errors.rate"))
		t->metric = THR_ERR_RATE;
	else if (!strcmp(buf, "mean"))
		t->metric = THR_MEAN;
	else if (!strcmp(buf, "min"))
		t->metric = THR_MIN;
	else if (!strcmp(buf, "max"))
		t->metric = THR_MAX;
	else if (buf[0] == 'p' && isdigit((unsigned char)buf[1])) {
		errno = 0;
		t->pct = strtod(buf + 1, &end);
		if (errno || *end || !(t->pct > 0 && t->pct < 100))
			return -1;
		t->metric = THR_PCT;
	} else
		return -1;
	return 0;
}

static bool is_latency(int m)
{
	return m == THR_PCT || m == THR_MEAN || m == THR_MIN || m == THR_MAX;
}

int thr_parse(const char *text, struct thr *t, char *err, size_t cap)
{
	const char *p = text, *m, *dot, *u;
	size_t mlen, ulen;
	char *end;
	double v;

	memset(t, 0, sizeof(*t));
	while (isspace((unsigned char)*p))
		p++;
	snprintf(t->text, sizeof(t->text), "%s", p);
	for (size_t n = strlen(t->text); n && isspace((unsigned char)t->text[n - 1]); n--)
		t->text[n - 1] = '\0';
	m = p;
	while (isalnum((unsigned char)*p) || *p == '_' || *p == '.')
		p++;
	mlen = (size_t)(p - m);
	if (!mlen)
		return err_at(err, cap, text, "expected a metric such as message_rtt.p99 or errors.rate");
	dot = memchr(m, '.', mlen);
	if (!dot)
		return err_at(err, cap, text, "expected <transaction>.<statistic> or errors.rate/errors.count");
	if ((size_t)(dot - m) == 6 && !memcmp(m, "errors", 6)) {
		t->txn = -1;
	} else {
		t->txn = result_txn_find(m, (size_t)(dot - m));
		if (t->txn < 0)
			return err_at(err, cap, text, "unknown transaction (connect, tls, auth, bind, roster, "
				      "login, message_rtt, join, room_fanout, resume, publish, ping)");
	}
	if (parse_stat(dot + 1, mlen - (size_t)(dot + 1 - m), t) < 0)
		return err_at(err, cap, text, t->txn < 0 ? "errors.rate or errors.count" :
			      "unknown statistic (count, errors, errors.rate, pN, mean, min, max)");
	while (isspace((unsigned char)*p))
		p++;
	if (p[0] == '<' && p[1] == '=')
		t->op = THR_LE, p += 2;
	else if (p[0] == '>' && p[1] == '=')
		t->op = THR_GE, p += 2;
	else if (p[0] == '=' && p[1] == '=')
		t->op = THR_EQ, p += 2;
	else if (p[0] == '!' && p[1] == '=')
		t->op = THR_NE, p += 2;
	else if (p[0] == '<')
		t->op = THR_LT, p++;
	else if (p[0] == '>')
		t->op = THR_GT, p++;
	else
		return err_at(err, cap, text, "expected an operator (<, <=, >, >=, ==, !=)");
	while (isspace((unsigned char)*p))
		p++;
	if (!isdigit((unsigned char)*p) && *p != '.')
		return err_at(err, cap, text, "expected a number after the operator");
	errno = 0;
	v = strtod(p, &end);
	if (errno || end == p || !isfinite(v) || v < 0 || memchr(p, 'x', (size_t)(end - p)) ||
	    memchr(p, 'X', (size_t)(end - p)))
		return err_at(err, cap, text, "expected a non-negative number");
	u = end;
	while (isalpha((unsigned char)*end) || *end == '%')
		end++;
	ulen = (size_t)(end - u);
	while (isspace((unsigned char)*end))
		end++;
	if (*end)
		return err_at(err, cap, text, "unexpected text after the value");
	if (is_latency(t->metric)) {
		if (ulen == 2 && !memcmp(u, "us", 2))
			v *= 1e3;
		else if (ulen == 2 && !memcmp(u, "ms", 2))
			v *= 1e6;
		else if (ulen == 1 && *u == 's')
			v *= 1e9;
		else
			return err_at(err, cap, text, "a latency needs a unit: us, ms or s");
	} else if (t->metric == THR_ERR_RATE) {
		if (ulen == 1 && *u == '%')
			v /= 100;
		else if (ulen)
			return err_at(err, cap, text, "a rate is a fraction (0.001) or a percentage (0.1%)");
		if (v > 1)
			return err_at(err, cap, text, "a rate is at most 1 (100%)");
	} else if (ulen) {
		return err_at(err, cap, text, "a count takes no unit");
	}
	t->value = v;
	return 0;
}

static double rate(uint64_t errors, uint64_t ok)
{
	return errors + ok ? (double)errors / (double)(errors + ok) : 0;
}

bool thr_eval(const struct thr *t, const struct result *r, double *actual, const char **why)
{
	const struct result_txn *x = t->txn >= 0 ? &r->tx[t->txn] : NULL;
	double a = 0;

	*why = NULL;
	switch (t->metric) {
	case THR_COUNT:
		a = (double)x->count;
		break;
	case THR_ERR_COUNT:
		a = (double)(x ? x->errors : r->errors);
		break;
	case THR_ERR_RATE: {
		uint64_t ops = result_operations(r);
		a = x ? rate(x->errors, x->count) : ops ? (double)r->errors / (double)ops : 0;
		break;
	}
	default:
		if (!x->h.count) {
			*actual = 0;
			*why = "no samples";
			return false;
		}
		a = t->metric == THR_PCT ? (double)hist_percentile(&x->h, t->pct) :
		    t->metric == THR_MEAN ? (double)x->h.sum_ns / (double)x->h.count :
		    t->metric == THR_MIN ? (double)x->h.min_ns : (double)x->h.max_ns;
		break;
	}
	*actual = a;
	switch (t->op) {
	case THR_LT:
		return a < t->value;
	case THR_LE:
		return a <= t->value;
	case THR_GT:
		return a > t->value;
	case THR_GE:
		return a >= t->value;
	case THR_EQ:
		return a == t->value;
	default:
		return a != t->value;
	}
}

void thr_describe(const struct thr *t, double actual, const char *why, char *out, size_t cap)
{
	if (why)
		snprintf(out, cap, "%s (%s)", t->text, why);
	else if (is_latency(t->metric))
		snprintf(out, cap, "%s (actual %.3f ms)", t->text, actual / 1e6);
	else if (t->metric == THR_ERR_RATE)
		snprintf(out, cap, "%s (actual %.4f %%)", t->text, actual * 100);
	else
		snprintf(out, cap, "%s (actual %.0f)", t->text, actual);
}
