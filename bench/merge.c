/*
 * merge — the `xedge-bench merge` and `xedge-bench compare` subcommands:
 * results read from JSON v2 files (result_read_json), merged exactly
 * (result_merge), written as one JSON (and --html, --csv), thresholds
 * evaluated on the merged result; compare prints two results side by side
 * with their ratios.  The slices of a distributed run (slice {index,
 * count}, bench/slice.h) are checked: one given twice is an error (its
 * users would count twice), one missing a warning.  No network, no threads: files in, files out.
 *
 * The top-level keys struct result does not model are kept by a rule each
 * (keep_rules[]): the scenario file's object (scenario_file) when the inputs
 * ran the same file (its strings, lines, weights and shares equal), its
 * counts summed, its durations and lateness percentiles the largest (an
 * upper bound: a percentile of the whole lies between the slices'); clients
 * and threads summed; tls, mech, port, domain and any key unknown here kept
 * when every input has the same value.  An input that differs is named on
 * stderr and the key is left out.  The v1 views of one process (messages,
 * muc, remote, idle, bench, series) are left out: the merged v2 fields hold
 * what they measured.  The scenario file's thresholds are evaluated on the
 * merged result after the --threshold ones, and its HTML report has the
 * scenario's section.
 *
 * Exit status: 0 done, 1 usage or unreadable input, 3 a threshold failed.
 */
#include "bench/merge.h"

#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/html.h"

static const char merge_usage[] =
"usage: xedge-bench merge -o OUT.json [--html FILE] [--csv FILE] [--threshold EXPR]...\n"
"                         A.json B.json ...\n"
"Merges the JSON results of several xedge-bench processes (slices of one load) into\n"
"one: counts and histograms summed bucket by bucket (exact), time series aligned on\n"
"wall-clock seconds.  Slices (--index/--count) given twice are refused, missing ones\n"
"named.  Exit status: 0 done, 1 usage or bad input, 3 a threshold failed.\n";

static const char compare_usage[] =
"usage: xedge-bench compare A.json B.json\n"
"Prints, per transaction, count, rate, p50, p99, p99.9, max and errors of A and B\n"
"and the ratios B/A.\n";

int merge_thresholds(const struct result *r, const struct thr *thr, unsigned n, FILE *f)
{
	unsigned failed = 0;

	for (unsigned i = 0; i < n; i++) {
		double a;
		const char *why;
		char d[256];
		bool ok = thr_eval(&thr[i], r, &a, &why);
		thr_describe(&thr[i], a, why, d, sizeof(d));
		if (!ok) {
			fprintf(f, "threshold FAILED: %s\n", d);
			failed++;
		}
	}
	if (n && !failed)
		fprintf(f, "thresholds: all %u passed\n", n);
	else if (failed)
		fprintf(f, "thresholds: %u of %u FAILED\n", failed, n);
	return failed ? -1 : 0;
}

/* The slices of a distributed run (bench/slice.h) seen so far: a slice given
 * twice would count its users twice, one missing is a smaller load. */
struct slices {
	unsigned count;               /* the slices' count; 0: no sliced input yet */
	const char **file;            /* file[i]: where slice i came from, or NULL */
};

/* Note r (read from path); -1 (said) when it repeats a slice or its count differs. */
static int slices_check(struct slices *s, const struct result *r, const char *path)
{
	if (r->inputs != 1 || r->slice_count < 2)
		return 0;                 /* a whole run, or a merge's output */
	if (!s->count) {
		s->file = calloc(r->slice_count, sizeof(*s->file));
		if (!s->file) {
			fprintf(stderr, "xedge-bench merge: out of memory\n");
			return -1;
		}
		s->count = r->slice_count;
	}
	if (r->slice_count != s->count) {
		fprintf(stderr, "xedge-bench merge: %s is a slice of %u, the others of %u\n", path,
			r->slice_count, s->count);
		return -1;
	}
	if (r->slice_index >= s->count) {
		fprintf(stderr, "xedge-bench merge: %s: slice index %u of %u\n", path, r->slice_index,
			s->count);
		return -1;
	}
	if (s->file[r->slice_index]) {
		fprintf(stderr, "xedge-bench merge: slice %u of %u is in both %s and %s (its users "
			"would count twice)\n", r->slice_index, s->count, s->file[r->slice_index], path);
		return -1;
	}
	s->file[r->slice_index] = path;
	return 0;
}

/* Warn about the slices nobody gave, and free. */
static void slices_done(struct slices *s)
{
	unsigned missing = 0;

	for (unsigned i = 0; i < s->count; i++)
		if (!s->file[i] && missing++ < 10)
			fprintf(stderr, "xedge-bench merge: warning: slice %u of %u is missing\n", i,
				s->count);
	if (missing > 10)
		fprintf(stderr, "xedge-bench merge: warning: %u slices of %u are missing\n", missing,
			s->count);
	free(s->file);
	*s = (struct slices){ 0 };
}

/* ---- the keys kept beside the merged result ---- */

enum keep_rule {
	KEEP_DERIVED,    /* written from the merged result, or a one-process view: not copied */
	KEEP_SUM,        /* a whole number per input: summed */
	KEEP_SAME,       /* kept when every input has the same value */
	KEEP_SCENARIO,   /* scenario_file: see sf_merge */
};

static const struct {
	const char *key;
	enum keep_rule rule;
} keep_rules[] = {
	{ "scenario", KEEP_DERIVED }, { "elapsed_s", KEEP_DERIVED }, { "interrupted", KEEP_DERIVED },
	{ "logins", KEEP_DERIVED }, { "latency_ms", KEEP_DERIVED }, { "failures", KEEP_DERIVED },
	{ "target", KEEP_DERIVED }, { "version", KEEP_DERIVED }, { "hist_layout", KEEP_DERIVED },
	{ "scenario_name", KEEP_DERIVED }, { "slice", KEEP_DERIVED }, { "inputs", KEEP_DERIVED },
	{ "start_unix_ns", KEEP_DERIVED }, { "duration_s", KEEP_DERIVED }, { "errors", KEEP_DERIVED },
	{ "target_load", KEEP_DERIVED }, { "generator", KEEP_DERIVED },
	{ "transactions", KEEP_DERIVED }, { "timeline", KEEP_DERIVED }, { "merged", KEEP_DERIVED },
	{ "messages", KEEP_DERIVED }, { "muc", KEEP_DERIVED }, { "remote", KEEP_DERIVED },
	{ "idle", KEEP_DERIVED }, { "bench", KEEP_DERIVED }, { "series", KEEP_DERIVED },
	{ "clients", KEEP_SUM }, { "threads", KEEP_SUM },
	{ "tls", KEEP_SAME }, { "mech", KEEP_SAME }, { "port", KEEP_SAME }, { "domain", KEEP_SAME },
	{ "scenario_file", KEEP_SCENARIO },
};

static enum keep_rule keep_rule(const char *key)
{
	for (size_t i = 0; i < sizeof(keep_rules) / sizeof(keep_rules[0]); i++)
		if (!strcmp(keep_rules[i].key, key))
			return keep_rules[i].rule;
	return KEEP_SAME;
}

/* Numbers of scenario_file that name the scenario rather than count a run. */
static bool sf_identity(const char *key)
{
	return !strcmp(key, "line") || !strcmp(key, "weight") || !strcmp(key, "share") ||
	       !strcmp(key, "limit_s");
}

/* Merge scenario_file b into a (key: a's name in its parent; where: its path
 * for the message).  0, or -1 when they differ (where says at what). */
static int sf_merge(json_t *a, const json_t *b, const char *key, char *where, size_t cap)
{
	size_t len = strlen(where), i;
	const char *k;
	json_t *v;

	if (json_is_object(a) && json_is_object(b)) {
		json_object_foreach((json_t *)b, k, v) {
			snprintf(where + len, cap - len, "%s%s", len ? "." : "", k);
			if (strcmp(k, "slice") && !json_object_get(a, k))
				return -1;      /* a member only one of them has */
		}
		json_object_foreach(a, k, v) {
			json_t *w = json_object_get(b, k);
			snprintf(where + len, cap - len, "%s%s", len ? "." : "", k);
			if (!w || sf_merge(v, w, k, where, cap) < 0)
				return -1;
		}
		where[len] = '\0';
		return 0;
	}
	if (json_is_array(a) && json_is_array(b)) {
		if (json_array_size(a) != json_array_size(b))
			return -1;
		json_array_foreach(a, i, v) {
			snprintf(where + len, cap - len, "[%zu]", i);
			if (sf_merge(v, json_array_get(b, i), key, where, cap) < 0)
				return -1;
		}
		where[len] = '\0';
		return 0;
	}
	if (json_is_number(a) && json_is_number(b) && !sf_identity(key)) {
		if (json_is_integer(a) && json_is_integer(b))
			return json_integer_set(a, json_integer_value(a) + json_integer_value(b));
		if (json_number_value(b) > json_number_value(a))
			return json_real_set(a, json_number_value(b));
		return 0;
	}
	if (json_is_number(a) && json_is_number(b))
		return json_number_value(a) == json_number_value(b) ? 0 : -1;
	return json_equal(a, b) ? 0 : -1;
}

struct keep {
	json_t *kept;                 /* the members kept so far */
	const char *first;            /* the first input's path */
};

/* Drop key from what is kept, saying why. */
static void keep_drop(struct keep *k, const char *key, const char *path, const char *at)
{
	fprintf(stderr, "xedge-bench merge: warning: \"%s\" differs between %s and %s%s%s: "
		"left out\n", key, k->first, path, at && *at ? " at " : "", at ? at : "");
	json_object_del(k->kept, key);
}

/* Take the top-level keys of input path (read again: result_read_json has
 * checked it) into k; -1 when it cannot be read. */
static int keep_add(struct keep *k, const char *path, bool first)
{
	json_error_t je;
	json_t *root = json_load_file(path, 0, &je), *v;
	const char *key;
	void *tmp;
	char where[256];

	if (!root)
		return -1;
	if (first) {
		k->first = path;
		json_object_foreach(root, key, v) {
			if (keep_rule(key) == KEEP_SUM && !json_is_integer(v))
				continue;
			if (keep_rule(key) != KEEP_DERIVED)
				json_object_set_new(k->kept, key, json_deep_copy(v));
		}
		if (json_is_object(json_object_get(k->kept, "scenario_file")))
			json_object_del(json_object_get(k->kept, "scenario_file"), "slice");
		json_decref(root);
		return 0;
	}
	json_object_foreach_safe(k->kept, tmp, key, v) {
		json_t *w = json_object_get(root, key);
		where[0] = '\0';
		if (!w) {
			keep_drop(k, key, path, "(not in the second)");
			continue;
		}
		switch (keep_rule(key)) {
		case KEEP_SUM:
			if (!json_is_integer(w))
				keep_drop(k, key, path, NULL);
			else
				json_integer_set(v, json_integer_value(v) + json_integer_value(w));
			break;
		case KEEP_SCENARIO:
			if (sf_merge(v, w, key, where, sizeof(where)) < 0)
				keep_drop(k, key, path, where);
			break;
		default:
			if (!json_equal(v, w))
				keep_drop(k, key, path, NULL);
			break;
		}
	}
	json_decref(root);
	return 0;
}

/* The kept members as result_write_json_more takes them (malloc'd; NULL: none). */
static char *keep_text(const struct keep *k)
{
	char *text = NULL;
	size_t len = 0;
	FILE *m = open_memstream(&text, &len);
	const char *key;
	json_t *v;

	if (!m)
		return NULL;
	json_object_foreach(k->kept, key, v) {
		char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
		fprintf(m, "  ");
		result_json_str(m, key);
		fprintf(m, ": %s,\n", s ? s : "null");
		free(s);
	}
	fclose(m);
	return text;
}

/* The scenario file's thresholds after the command line's (nthr of them). */
static int keep_thresholds(const json_t *sf, struct thr *thr, unsigned *nthr)
{
	const json_t *t;
	size_t i;
	char err[256];

	json_array_foreach(json_object_get(sf, "thresholds"), i, t) {
		const json_t *text = json_object_get(t, "text");
		if (!json_is_string(text))
			continue;
		if (*nthr == MERGE_MAX_THRESHOLDS) {
			fprintf(stderr, "xedge-bench merge: more than %d thresholds with the scenario "
				"file's\n", MERGE_MAX_THRESHOLDS);
			return -1;
		}
		if (thr_parse(json_string_value(text), &thr[*nthr], err, sizeof(err)) < 0) {
			fprintf(stderr, "xedge-bench merge: the scenario file's threshold '%s': %s\n",
				json_string_value(text), err);
			return -1;
		}
		(*nthr)++;
	}
	return 0;
}

int merge_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "output", required_argument, NULL, 'o' },
		{ "html", required_argument, NULL, 'H' },
		{ "csv", required_argument, NULL, 'C' },
		{ "threshold", required_argument, NULL, 'T' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	const char *out = NULL, *html = NULL, *csv = NULL;
	struct thr thr[MERGE_MAX_THRESHOLDS];
	unsigned nthr = 0;
	struct result all, one;
	struct slices slices = { 0 };
	struct keep keep = { 0 };
	const json_t *sf;
	char err[512], *more;
	int ch, rc = 0;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
		switch (ch) {
		case 'o':
			out = optarg;
			break;
		case 'H':
			html = optarg;
			break;
		case 'C':
			csv = optarg;
			break;
		case 'T':
			if (nthr == MERGE_MAX_THRESHOLDS) {
				fprintf(stderr, "xedge-bench merge: more than %d thresholds\n", MERGE_MAX_THRESHOLDS);
				return 1;
			}
			if (thr_parse(optarg, &thr[nthr], err, sizeof(err)) < 0) {
				fprintf(stderr, "xedge-bench merge: %s\n", err);
				return 1;
			}
			nthr++;
			break;
		case 'h':
			fputs(merge_usage, stdout);
			return 0;
		default:
			fputs(merge_usage, stderr);
			return 1;
		}
	}
	if (!out || optind >= argc) {
		fputs(merge_usage, stderr);
		return 1;
	}
	if (result_read_json(argv[optind], &all, err, sizeof(err)) < 0) {
		fprintf(stderr, "xedge-bench merge: %s\n", err);
		return 1;
	}
	if (slices_check(&slices, &all, argv[optind]) < 0) {
		result_free(&all);
		return 1;
	}
	keep.kept = json_object();
	if (!keep.kept || keep_add(&keep, argv[optind], true) < 0) {
		fprintf(stderr, "xedge-bench merge: cannot read %s again\n", argv[optind]);
		result_free(&all);
		json_decref(keep.kept);
		return 1;
	}
	for (int i = optind + 1; i < argc; i++) {
		if (result_read_json(argv[i], &one, err, sizeof(err)) < 0) {
			fprintf(stderr, "xedge-bench merge: %s\n", err);
			result_free(&all);
			slices_done(&slices);
			return 1;
		}
		if (slices_check(&slices, &one, argv[i]) < 0 || keep_add(&keep, argv[i], false) < 0) {
			result_free(&one);
			result_free(&all);
			slices_done(&slices);
			json_decref(keep.kept);
			return 1;
		}
		if (strcmp(one.scenario, all.scenario) != 0)
			fprintf(stderr, "xedge-bench merge: warning: %s is scenario '%s', %s is '%s'\n",
				argv[i], one.scenario, argv[optind], all.scenario);
		rc = result_merge(&all, &one);
		result_free(&one);
		if (rc < 0) {
			fprintf(stderr, "xedge-bench merge: out of memory\n");
			result_free(&all);
			json_decref(keep.kept);
			return 1;
		}
	}
	slices_done(&slices);
	rc = 0;
	sf = json_object_get(keep.kept, "scenario_file");
	if (!json_is_object(sf))
		sf = NULL;
	if (sf && keep_thresholds(sf, thr, &nthr) < 0) {
		result_free(&all);
		json_decref(keep.kept);
		return 1;
	}
	more = keep_text(&keep);
	if (result_write_json_more(out, &all, more) < 0) {
		perror(out);
		rc = 1;
	}
	free(more);
	if (csv && result_write_csv(csv, &all) < 0) {
		perror(csv);
		rc = 1;
	}
	if (html && html_write(html, &all, sf, thr, nthr) < 0) {
		perror(html);
		rc = 1;
	}
	printf("merged %u results: %.1f s, %zu points%s\n", all.inputs, all.duration_s, all.nseries,
	       sf ? "; the scenario file's object kept (the inputs ran the same file)" : "");
	result_summary(stdout, &all);
	if (merge_thresholds(&all, thr, nthr, stdout) < 0 && rc == 0)
		rc = 3;
	result_free(&all);
	json_decref(keep.kept);
	return rc;
}

int merge_compare_main(int argc, char **argv)
{
	struct result a, b;
	char err[512];

	if (argc == 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
		fputs(compare_usage, stdout);
		return 0;
	}
	if (argc != 3) {
		fputs(compare_usage, stderr);
		return 1;
	}
	if (result_read_json(argv[1], &a, err, sizeof(err)) < 0) {
		fprintf(stderr, "xedge-bench compare: %s\n", err);
		return 1;
	}
	if (result_read_json(argv[2], &b, err, sizeof(err)) < 0) {
		fprintf(stderr, "xedge-bench compare: %s\n", err);
		result_free(&a);
		return 1;
	}
	printf("A = %s\nB = %s\n", argv[1], argv[2]);
	result_compare(stdout, &a, &b);
	result_free(&a);
	result_free(&b);
	return 0;
}
