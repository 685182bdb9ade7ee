/*
 * merge — the `xedge-bench merge` and `xedge-bench compare` subcommands:
 * results read from JSON v2 files (result_read_json), merged exactly
 * (result_merge), written as one JSON (and --html, --csv), thresholds
 * evaluated on the merged result; compare prints two results side by side
 * with their ratios.  The slices of a distributed run (slice {index,
 * count}, bench/slice.h) are checked: one given twice is an error (its
 * users would count twice), one missing a warning.  No network, no threads: files in, files out.
 *
 * Exit status: 0 done, 1 usage or unreadable input, 3 a threshold failed.
 */
#include "bench/merge.h"

#include <getopt.h>
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
	char err[512];
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
	for (int i = optind + 1; i < argc; i++) {
		if (result_read_json(argv[i], &one, err, sizeof(err)) < 0) {
			fprintf(stderr, "xedge-bench merge: %s\n", err);
			result_free(&all);
			slices_done(&slices);
			return 1;
		}
		if (slices_check(&slices, &one, argv[i]) < 0) {
			result_free(&one);
			result_free(&all);
			slices_done(&slices);
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
			return 1;
		}
	}
	slices_done(&slices);
	rc = 0;
	if (result_write_json(out, &all) < 0) {
		perror(out);
		rc = 1;
	}
	if (csv && result_write_csv(csv, &all) < 0) {
		perror(csv);
		rc = 1;
	}
	if (html && html_write(html, &all, thr, nthr) < 0) {
		perror(html);
		rc = 1;
	}
	printf("merged %u results: %.1f s, %zu points\n", all.inputs, all.duration_s, all.nseries);
	result_summary(stdout, &all);
	if (merge_thresholds(&all, thr, nthr, stdout) < 0 && rc == 0)
		rc = 3;
	result_free(&all);
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
