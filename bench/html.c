/*
 * html — see html.h.  Charts are SVG polylines over a fixed 760 x 260
 * frame with linear axes ("nice" tick steps of 1, 2 or 5 x 10^k); a gap in
 * a series (a second without samples) breaks its line.  Every text that
 * comes from the result (scenario, causes, thresholds) is escaped.
 */
#include "bench/html.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define W 760.0
#define H 260.0
#define ML 64.0      /* left margin: y labels */
#define MR 16.0
#define LEG 112.0    /* a time chart's legend: a column right of the plot, never over a line */
#define MT 28.0      /* top: title and legend */
#define MB 34.0

static const char *const colors[] = {
	"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
	"#7f7f7f", "#bcbd22", "#393b79", "#637939"
};

struct line {
	const char *name;
	double *y;          /* NAN: no value */
};

static void esc(FILE *f, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '<': fputs("&lt;", f); break;
		case '>': fputs("&gt;", f); break;
		case '&': fputs("&amp;", f); break;
		case '"': fputs("&quot;", f); break;
		case '\'': fputs("&#39;", f); break;
		default: fputc(*s, f);
		}
	}
}

static double nice_step(double range, int ticks)
{
	double raw = range / ticks, mag, norm;

	if (!(raw > 0))
		return 1;
	mag = pow(10, floor(log10(raw)));
	norm = raw / mag;
	return (norm <= 1 ? 1 : norm <= 2 ? 2 : norm <= 5 ? 5 : 10) * mag;
}

static void num(char *b, size_t cap, double v)
{
	if (fabs(v) >= 1e6)
		snprintf(b, cap, "%.3gM", v / 1e6);
	else if (fabs(v) >= 1e4)
		snprintf(b, cap, "%.3gk", v / 1e3);
	else
		snprintf(b, cap, "%g", round(v * 1000) / 1000);
}

static void chart(FILE *f, const char *title, const char *unit, const double *x, size_t n,
		  const struct line *lines, unsigned nl)
{
	double xmax = 0, ymax = 0, xs, ys, step;
	char b[32];

	for (size_t i = 0; i < n; i++) {
		if (x[i] > xmax)
			xmax = x[i];
		for (unsigned l = 0; l < nl; l++)
			if (!isnan(lines[l].y[i]) && lines[l].y[i] > ymax)
				ymax = lines[l].y[i];
	}
	if (xmax <= 0)
		xmax = 1;
	step = nice_step(ymax > 0 ? ymax : 1, 5);
	ymax = ceil((ymax > 0 ? ymax : 1) / step) * step;
	xs = (W - ML - MR - LEG) / xmax;
	ys = (H - MT - MB) / ymax;
	fprintf(f, "<figure><svg viewBox=\"0 0 %.0f %.0f\" width=\"%.0f\" height=\"%.0f\" role=\"img\">\n", W, H, W, H);
	fprintf(f, "<text x=\"%.0f\" y=\"16\" class=\"t\">", ML);
	esc(f, title);
	fprintf(f, " (%s)</text>\n", unit);
	for (double v = 0; v <= ymax + step / 2; v += step) {
		double y = H - MB - v * ys;
		num(b, sizeof(b), v);
		fprintf(f, "<line x1=\"%.0f\" y1=\"%.1f\" x2=\"%.0f\" y2=\"%.1f\" class=\"g\"/>"
			"<text x=\"%.0f\" y=\"%.1f\" class=\"yl\">%s</text>\n", ML, y, W - MR - LEG, y, ML - 6,
			y + 4, b);
	}
	step = nice_step(xmax, 8);
	for (double v = 0; v <= xmax + step / 2; v += step) {
		double xx = ML + v * xs;
		num(b, sizeof(b), v);
		fprintf(f, "<text x=\"%.1f\" y=\"%.0f\" class=\"xl\">%s</text>\n", xx, H - MB + 16, b);
	}
	fprintf(f, "<text x=\"%.0f\" y=\"%.0f\" class=\"xl\">seconds</text>\n", W - MR - LEG - 20,
		H - 4);
	for (unsigned l = 0; l < nl; l++) {
		bool pen = false;
		const char *c = colors[l % (sizeof(colors) / sizeof(colors[0]))];
		fprintf(f, "<path fill=\"none\" stroke=\"%s\" stroke-width=\"1.8\" d=\"", c);
		for (size_t i = 0; i < n; i++) {
			if (isnan(lines[l].y[i])) {
				pen = false;
				continue;
			}
			fprintf(f, "%s%.1f %.1f ", pen ? "L" : "M", ML + x[i] * xs, H - MB - lines[l].y[i] * ys);
			pen = true;
		}
		fprintf(f, "\"/>\n<rect x=\"%.0f\" y=\"%.0f\" width=\"10\" height=\"10\" fill=\"%s\"/>"
			"<text x=\"%.0f\" y=\"%.0f\" class=\"lg\">", W - MR - LEG + 16, MT + 4 + 14.0 * l, c,
			W - MR - LEG + 30, MT + 13 + 14.0 * l);
		esc(f, lines[l].name);
		fprintf(f, "</text>\n");
	}
	fprintf(f, "<line x1=\"%.0f\" y1=\"%.0f\" x2=\"%.0f\" y2=\"%.0f\" class=\"a\"/>"
		"<line x1=\"%.0f\" y1=\"%.0f\" x2=\"%.0f\" y2=\"%.0f\" class=\"a\"/>\n</svg></figure>\n",
		ML, H - MB, W - MR - LEG, H - MB, ML, MT, ML, H - MB);
}

/* The latency distribution of one transaction: samples per power-of-two
 * latency band, as bars. */
static void distribution(FILE *f, const char *name, const struct hist *h)
{
	uint64_t band[28] = { 0 }, top = 0;
	unsigned lo_b = 28, hi_b = 0;
	double bw, ys;
	char b[32];

	for (unsigned i = 0; i < HIST_BUCKETS; i++) {
		uint64_t lo, hi;
		unsigned k;
		if (!h->b[i])
			continue;
		hist_bucket_range(i, &lo, &hi);
		k = lo ? 64u - (unsigned)__builtin_clzll(lo) : 0;   /* [2^(k-1), 2^k) µs */
		if (k > 27)
			k = 27;
		band[k] += h->b[i];
		if (k < lo_b)
			lo_b = k;
		if (k > hi_b)
			hi_b = k;
	}
	if (lo_b > hi_b)
		return;
	for (unsigned k = lo_b; k <= hi_b; k++)
		if (band[k] > top)
			top = band[k];
	bw = (W - ML - MR) / (hi_b - lo_b + 1);
	/* room for the counts above the bars (two rows of them on narrow bars) */
	ys = (H - MT - MB - (bw < 36 ? 24 : 12)) / (double)top;
	fprintf(f, "<figure><svg viewBox=\"0 0 %.0f %.0f\" width=\"%.0f\" height=\"%.0f\" role=\"img\">\n", W, H, W, H);
	fprintf(f, "<text x=\"%.0f\" y=\"16\" class=\"t\">", ML);
	esc(f, name);
	fprintf(f, ": latency distribution (samples per band, %" PRIu64 " in all)</text>\n", h->count);
	for (unsigned k = lo_b; k <= hi_b; k++) {
		double x = ML + (k - lo_b) * bw, hgt = (double)band[k] * ys;
		/* the band's upper bound, 2^k µs, in at most 3 digits; on narrow bars
		 * every other label goes one line lower, so that none overlap */
		double us = (double)(1ull << k);
		const char *unit = us < 1e3 ? "µs" : us < 1e6 ? "ms" : "s";
		double v = us < 1e3 ? us : us < 1e6 ? us / 1e3 : us / 1e6;
		bool low = bw < 48 && (k - lo_b) % 2;
		char cnt[32];
		snprintf(b, sizeof(b), v < 10 ? "<%.1f%s" : "<%.0f%s", v, unit);
		fprintf(f, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\">"
			"<title>%" PRIu64 "</title></rect>\n", x + 2, H - MB - hgt, bw - 4, hgt, colors[0],
			band[k]);
		fprintf(f, "<text x=\"%.1f\" y=\"%.0f\" class=\"xl\">", x + bw / 2,
			H - MB + (low ? 28 : 16));
		esc(f, b);
		fprintf(f, "</text>\n");
		num(cnt, sizeof(cnt), (double)band[k]);
		if (band[k])
			fprintf(f, "<text x=\"%.1f\" y=\"%.1f\" class=\"xl\">%s</text>\n", x + bw / 2,
				H - MB - hgt - 4 - (bw < 36 && (k - lo_b) % 2 ? 11 : 0), cnt);
	}
	fprintf(f, "<line x1=\"%.0f\" y1=\"%.0f\" x2=\"%.0f\" y2=\"%.0f\" class=\"a\"/>\n</svg></figure>\n",
		ML, H - MB, W - MR, H - MB);
}

static bool seen(const struct result *r, int k)
{
	return r->tx[k].count || r->tx[k].errors;
}

static double ms(uint64_t ns)
{
	return (double)ns / 1e6;
}

static void table(FILE *f, const struct result *r)
{
	uint64_t ops = result_operations(r);

	fprintf(f, "<h2>Summary</h2>\n<table><tr><th>transaction</th><th>count</th><th>errors</th>"
		"<th>rate/s</th><th>p50 ms</th><th>p90 ms</th><th>p99 ms</th><th>p99.9 ms</th>"
		"<th>max ms</th><th>mean ms</th></tr>\n");
	for (int k = 0; k < TX_N; k++) {
		const struct hist *h = &r->tx[k].h;
		if (!seen(r, k))
			continue;
		fprintf(f, "<tr><td>%s</td><td>%" PRIu64 "</td><td>%" PRIu64 "</td><td>%.1f</td>",
			result_txn_name(k), r->tx[k].count, r->tx[k].errors, result_txn_rate(r, k));
		if (h->count)
			fprintf(f, "<td>%.3f</td><td>%.3f</td><td>%.3f</td><td>%.3f</td><td>%.3f</td>"
				"<td>%.3f</td></tr>\n", ms(hist_percentile(h, 50)), ms(hist_percentile(h, 90)),
				ms(hist_percentile(h, 99)), ms(hist_percentile(h, 99.9)), ms(h->max_ns),
				ms(h->sum_ns / h->count));
		else
			fprintf(f, "<td colspan=\"6\">-</td></tr>\n");
	}
	fprintf(f, "</table>\n<p>errors: %" PRIu64 " of %" PRIu64 " operations (%.3f %%)</p>\n",
		r->errors, ops, ops ? 100.0 * (double)r->errors / (double)ops : 0.0);
	if (r->ncauses) {
		fprintf(f, "<h2>Errors by cause</h2>\n<table><tr><th>cause</th><th>count</th></tr>\n");
		for (unsigned i = 0; i < r->ncauses; i++) {
			fprintf(f, "<tr><td>");
			esc(f, r->causes[i].name);
			fprintf(f, "</td><td>%" PRIu64 "</td></tr>\n", r->causes[i].n);
		}
		fprintf(f, "</table>\n");
	}
}

static void thresholds(FILE *f, const struct result *r, const struct thr *thr, unsigned nthr)
{
	if (!nthr)
		return;
	fprintf(f, "<h2>Thresholds</h2>\n<table><tr><th>threshold</th><th>value</th><th></th></tr>\n");
	for (unsigned i = 0; i < nthr; i++) {
		double a;
		const char *why;
		char d[256];
		bool ok = thr_eval(&thr[i], r, &a, &why);
		thr_describe(&thr[i], a, why, d, sizeof(d));
		fprintf(f, "<tr><td>");
		esc(f, thr[i].text);
		fprintf(f, "</td><td>");
		esc(f, d + strlen(thr[i].text));
		fprintf(f, "</td><td class=\"%s\">%s</td></tr>\n", ok ? "pass" : "fail", ok ? "pass" : "FAIL");
	}
	fprintf(f, "</table>\n");
}

/* ---- the scenario section ---- */

static const char *jstr(const json_t *o, const char *key)
{
	const json_t *v = json_object_get(o, key);

	return json_is_string(v) ? json_string_value(v) : "";
}

static double jnum(const json_t *o, const char *key)
{
	const json_t *v = json_object_get(o, key);

	return json_is_number(v) ? json_number_value(v) : 0;
}

static json_int_t jint(const json_t *o, const char *key)
{
	const json_t *v = json_object_get(o, key);

	return json_is_integer(v) ? json_integer_value(v) : 0;
}

/* The file's thresholds, each evaluated on r (one that does not parse says so). */
static void scenario_thresholds(FILE *f, const struct result *r, const json_t *list)
{
	size_t i;
	const json_t *t;

	if (!json_array_size(list))
		return;
	fprintf(f, "<h3>Thresholds of the file</h3>\n<table><tr><th>threshold</th><th>line</th>"
		"<th>value</th><th></th></tr>\n");
	json_array_foreach(list, i, t) {
		struct thr th;
		char err[256], d[256];
		const char *text = jstr(t, "text"), *why;
		double a;
		bool ok = false;
		fprintf(f, "<tr><td>");
		esc(f, text);
		fprintf(f, "</td><td>%lld</td><td>", (long long)jint(t, "line"));
		if (thr_parse(text, &th, err, sizeof(err)) < 0) {
			esc(f, err);
		} else {
			ok = thr_eval(&th, r, &a, &why);
			thr_describe(&th, a, why, d, sizeof(d));
			esc(f, d + strlen(th.text));
		}
		fprintf(f, "</td><td class=\"%s\">%s</td></tr>\n", ok ? "pass" : "fail", ok ? "pass" : "FAIL");
	}
	fprintf(f, "</table>\n");
}

static void scenario_section(FILE *f, const struct result *r, const json_t *sf)
{
	const json_t *v, *list, *x, *drain;
	size_t i, k;

	if (!json_is_object(sf))
		return;
	fprintf(f, "<h2>Scenario ");
	esc(f, jstr(sf, "name"));
	fprintf(f, "</h2>\n<p>file <code>");
	esc(f, jstr(sf, "path"));
	fprintf(f, "</code>");
	if (*jstr(sf, "description")) {
		fprintf(f, ": ");
		esc(f, jstr(sf, "description"));
	}
	fprintf(f, "<br>%lld users planned, %lld arrived, %lld refused at max_users, %lld finished "
		"their program, %lld waited for a login slot</p>\n", (long long)jint(sf, "planned"),
		(long long)jint(sf, "arrived"), (long long)jint(sf, "rejected"),
		(long long)jint(sf, "finished"), (long long)jint(sf, "waited"));
	list = json_object_get(sf, "phases");
	if (json_array_size(list)) {
		fprintf(f, "<h3>Phases</h3>\n<table><tr><th>phase</th><th>arrivals</th><th>planned</th>"
			"<th>arrived</th><th>line</th></tr>\n");
		json_array_foreach(list, i, x) {
			fprintf(f, "<tr><td>%zu</td><td class=\"l\">", i + 1);
			esc(f, jstr(x, "text"));
			fprintf(f, "</td><td>%lld</td><td>%lld</td><td>%lld</td></tr>\n",
				(long long)jint(x, "planned"), (long long)jint(x, "arrived"),
				(long long)jint(x, "line"));
		}
		fprintf(f, "</table>\n");
	}
	list = json_object_get(sf, "sessions");
	if (json_array_size(list)) {
		fprintf(f, "<h3>Sessions</h3>\n<table><tr><th>session</th><th>weight</th><th>share</th>"
			"<th>planned</th><th>started</th><th>finished</th></tr>\n");
		json_array_foreach(list, i, x) {
			fprintf(f, "<tr><td>");
			esc(f, jstr(x, "name"));
			fprintf(f, "</td><td>%g</td><td>%.1f %%</td><td>%lld</td><td>%lld</td><td>%lld</td>"
				"</tr>\n", jnum(x, "weight"), 100 * jnum(x, "share"),
				(long long)jint(x, "planned"), (long long)jint(x, "started"),
				(long long)jint(x, "finished"));
		}
		fprintf(f, "</table>\n");
		json_array_foreach(list, i, x) {
			fprintf(f, "<p class=\"sn\">");
			esc(f, jstr(x, "name"));
			fprintf(f, " (line %lld): steps</p>\n<pre>", (long long)jint(x, "line"));
			json_array_foreach(json_object_get(x, "steps"), k, v) {
				if (json_is_string(v)) {
					esc(f, json_string_value(v));
					fputc('\n', f);
				}
			}
			fprintf(f, "</pre>\n");
		}
	}
	scenario_thresholds(f, r, json_object_get(sf, "thresholds"));
	drain = json_object_get(sf, "drain");
	if (json_is_object(drain))
		fprintf(f, "<p>drain: up to %.3g s for the messages still due to users alive at the end: "
			"%lld due then, waited %.3f s, %lld still due after it (lost)</p>\n",
			jnum(drain, "limit_s"), (long long)jint(drain, "due_at_start"),
			jnum(drain, "waited_s"), (long long)jint(drain, "due_at_end"));
	x = json_object_get(sf, "chat");
	v = json_object_get(sf, "groupchat");
	if (json_is_object(x) && json_is_object(v))
		fprintf(f, "<p>chat: %lld sent (%lld one-way after the warm-up, %lld of them received), "
			"%lld questions, %lld answered; group chat: %lld sent, %lld deliveries, %lld "
			"joins; %lld pings; %lld items published</p>\n", (long long)jint(x, "sent"),
			(long long)jint(x, "sent_measured"), (long long)jint(x, "received_measured"),
			(long long)jint(x, "asked"), (long long)jint(x, "answered"),
			(long long)jint(v, "sent"), (long long)jint(v, "delivered"),
			(long long)jint(v, "joined"), (long long)jint(sf, "pings"),
			(long long)jint(sf, "published"));
}

int html_write(const char *path, const struct result *r, const json_t *scenario,
	       const struct thr *thr, unsigned nthr)
{
	FILE *f = fopen(path, "w");
	size_t n = r->nseries;
	double *x = calloc(n ? n : 1, sizeof(double));
	double *ys = calloc((n ? n : 1) * (2 * TX_N + 2), sizeof(double));
	struct line lines[2 * TX_N + 2];
	time_t start = (time_t)(r->start_unix_ns / 1000000000);
	char when[64];
	unsigned nl;

	if (!f || !x || !ys) {
		int e = f ? ENOMEM : errno;
		if (f)
			fclose(f);
		free(x);
		free(ys);
		return -e;
	}
	strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", gmtime(&start));
	fprintf(f, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>xedge-bench ");
	esc(f, r->scenario);
	fprintf(f, "</title>\n<style>\nbody{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222}\n"
		"table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ccc;padding:3px 8px;"
		"text-align:right}td:first-child,th:first-child{text-align:left}\n"
		"figure{margin:8px 0}svg{background:#fafafa;border:1px solid #ddd}\n"
		".t{font-size:13px;font-weight:600}.g{stroke:#e4e4e4}.a{stroke:#444}"
		".yl{font-size:11px;text-anchor:end}.xl{font-size:11px;text-anchor:middle}"
		".lg{font-size:11px}\n"
		"pre{background:#f6f6f6;border:1px solid #ddd;padding:6px 10px;font-size:12px}"
		".sn{font-weight:600;margin:10px 0 0}td.l{text-align:left}\n"
		".pass{color:#1a7f37;font-weight:600}.fail{color:#c62828;font-weight:600}\n"
		"</style></head><body>\n<h1>xedge-bench: ");
	esc(f, r->scenario);
	fprintf(f, "</h1>\n<p>started %s, %.1f s, %u input%s", when, r->duration_s, r->inputs,
		r->inputs > 1 ? "s (merged)" : "");
	if (r->have_target)
		fprintf(f, "; target cpu avg %.1f %%, max %.1f %%, rss max %.1f MiB", r->target_cpu_avg,
			r->target_cpu_max, (double)r->target_rss_max_kib / 1024);
	fprintf(f, "; generator cpu avg %.1f %%", r->gen_cpu_avg);
	if (result_kib_per_session(r) >= 0)
		fprintf(f, ", %.1f KiB per session", result_kib_per_session(r));
	fprintf(f, "</p>\n");
	thresholds(f, r, thr, nthr);
	table(f, r);
	scenario_section(f, r, scenario);

	for (size_t i = 0; i < n; i++)
		x[i] = r->series[i].t;
	fprintf(f, "<h2>Over time</h2>\n");
	for (size_t i = 0; i < n; i++) {
		ys[i] = (double)r->series[i].users;
		ys[n + i] = (double)r->series[i].connected;
	}
	lines[0] = (struct line){ "online users", ys };
	lines[1] = (struct line){ "connected", ys + n };
	chart(f, "Users", "sessions", x, n, lines, 2);
	/* Rates in two charts, the session's steps and the operations of a logged-in
	 * user: thousands of messages a second would flatten tens of logins. */
	for (int part = 0; part < 2; part++) {
		nl = 0;
		for (int k = 0; k < TX_N; k++) {
			double *y = ys + (2 + k) * n;
			bool session = k <= TX_LOGIN || k == TX_RESUME;
			if (!seen(r, k) || session != (part == 0))
				continue;
			for (size_t i = 0; i < n; i++) {
				/* per second of the point's own length (the last one may be shorter) */
				double len = i ? r->series[i].t - r->series[i - 1].t : r->series[i].t;
				y[i] = len > 0 ? (double)r->series[i].tx[k].count / len : NAN;
			}
			lines[nl] = (struct line){ result_txn_name(k), y };
			nl++;
		}
		if (nl)
			chart(f, part ? "Rates of operations" : "Rates of logins and their steps",
			      "per second", x, n, lines, nl);
	}
	for (int k = 0; k < TX_N; k++) {
		char title[64];
		if (!r->tx[k].h.count)
			continue;
		for (size_t i = 0; i < n; i++) {
			struct hist h;
			result_point_hist(&r->series[i], k, &h);
			ys[i] = h.count ? ms(hist_percentile(&h, 50)) : NAN;
			ys[n + i] = h.count ? ms(hist_percentile(&h, 99)) : NAN;
		}
		lines[0] = (struct line){ "p50", ys };
		lines[1] = (struct line){ "p99", ys + n };
		snprintf(title, sizeof(title), "%s latency per second", result_txn_name(k));
		chart(f, title, "ms", x, n, lines, 2);
	}
	fprintf(f, "<h2>Latency distributions</h2>\n");
	for (int k = 0; k < TX_N; k++)
		if (r->tx[k].h.count)
			distribution(f, result_txn_name(k), &r->tx[k].h);
	fprintf(f, "</body></html>\n");
	free(x);
	free(ys);
	return fclose(f) == 0 ? 0 : -errno;
}
