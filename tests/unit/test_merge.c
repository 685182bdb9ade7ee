/*
 * test_merge — bench/merge.c and bench/html.c: what `xedge-bench merge`
 * keeps beside the merged result.  Two slices of one scenario file merge
 * their scenario_file objects (counts summed, the file's description kept,
 * lateness the largest), the keys struct result does not model follow their
 * rule (clients summed, tls kept when equal, interrupted when any was), a
 * scenario_file that differs is named and left out, the file's thresholds
 * are evaluated on the merge, and the HTML report has the scenario's section
 * (sessions, weights, steps, phases, thresholds with pass/fail), escaped.
 * Includes the .c files under test (the bench is not in libxedge); html.c's
 * static helpers are renamed where result.c has the same names.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "bench/hist.c"
#include "bench/result.c"
#include "bench/threshold.c"
#define ms html_ms
#define esc html_esc
#include "bench/html.c"
#undef ms
#undef esc
#include "bench/merge.c"

#define BASE_S 1800000000ll

/* A scenario_file as a run writes it (bench/steps.c, bs_json), slice i of 2. */
static const char *sf_json(unsigned i, const char *session)
{
	static char buf[2048];

	snprintf(buf, sizeof(buf),
		 "{\"path\": \"s.yaml\", \"name\": \"s\", \"description\": \"a <test>\", "
		 "\"planned\": %u, \"arrived\": %u, \"rejected\": 0, \"finished\": %u, \"waited\": 0, "
		 "\"slice\": {\"index\": %u, \"count\": 2}, "
		 "\"phases\": [{\"line\": 3, \"text\": \"20/s for 1s: 20 users\", \"planned\": 10, "
		 "\"arrived\": 10}], "
		 "\"sessions\": [{\"name\": \"%s\", \"line\": 6, \"weight\": 3, \"share\": 0.75, "
		 "\"planned\": 8, \"started\": 8, \"finished\": %u, \"steps\": [\"  1  connect "
		 "(the target's transport)  (line 8)\", \"  2  chat to self, body 64 bytes  (line 9)\"]}, "
		 "{\"name\": \"idle\", \"line\": 12, \"weight\": 1, \"share\": 0.25, \"planned\": 2, "
		 "\"started\": 2, \"finished\": 2, \"steps\": [\"  1  idle until the run ends  (line 13)\"]}], "
		 "\"thresholds\": [{\"line\": 20, \"text\": \"login.count == 4\"}, "
		 "{\"line\": 21, \"text\": \"login.p99 < 1us\"}], "
		 "\"chat\": {\"sent\": %u, \"sent_measured\": 5, \"received\": 5, \"received_measured\": 5, "
		 "\"asked\": 0, \"answered\": 0, \"replies\": 0, \"window_timeouts\": 0}, "
		 "\"groupchat\": {\"sent\": 0, \"delivered\": 0, \"joined\": 0, \"join_failed\": 0}, "
		 "\"pings\": 0, \"published\": 0, "
		 "\"arrival_lateness_ms\": {\"p50\": %.3f, \"p99\": 2.000, \"max\": 3.000}, "
		 "\"drain\": {\"limit_s\": 2.000, \"waited_s\": %.3f, \"due_at_start\": %u, "
		 "\"due_at_end\": 0}}",
		 10 + i, 10 + i, 9 + i, i, session, 7 + i, 100 + i, 0.5 + i, 0.25 * (i + 1), 3 * i);
	return buf;
}

/* Slice i as a JSON v2 file with a scenario_file and the v1 keys of a run. */
static void write_slice(const char *path, unsigned i, const char *session, bool interrupted)
{
	struct result r;
	struct hist h;
	char more[4096];

	result_init(&r);
	snprintf(r.scenario, sizeof(r.scenario), "s");
	r.slice_index = i;
	r.slice_count = 2;
	r.start_unix_ns = (BASE_S + i) * 1000000000ll;
	r.duration_s = 2;
	r.interrupted = interrupted;
	hist_reset(&h);
	for (int k = 0; k < 2; k++)
		hist_record(&h, 1000000u * (uint64_t)(k + 1));
	r.tx[TX_LOGIN].count = 2;
	r.tx[TX_LOGIN].h = h;
	snprintf(more, sizeof(more), "  \"clients\": %u,\n  \"threads\": 1,\n  \"tls\": \"starttls\",\n"
		 "  \"messages\": {\"sent\": %u},\n  \"scenario_file\": %s,\n", 3 + i, i, sf_json(i, session));
	assert_int_equal(result_write_json_more(path, &r, more), 0);
	result_free(&r);
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *s = calloc(1, 1 << 20);

	assert_non_null(f);
	assert_non_null(s);
	(void)!fread(s, 1, (1 << 20) - 1, f);
	fclose(f);
	return s;
}

static char dir[64];

static const char *at(const char *name)
{
	static char paths[8][128];
	static unsigned k;
	char *p = paths[k++ % 8];

	snprintf(p, 128, "%s/%s", dir, name);
	return p;
}

static int run_merge(const char *a, const char *b)
{
	char *argv[] = { "merge", "-o", (char *)at("out.json"), "--html", (char *)at("out.html"),
			 (char *)a, (char *)b, NULL };

	return merge_main(7, argv);
}

static void test_sf_merge_rules(void **state)
{
	json_t *a = json_loads(sf_json(0, "echo"), 0, NULL), *b = json_loads(sf_json(1, "echo"), 0, NULL);
	json_t *c = json_loads(sf_json(1, "other"), 0, NULL);
	char where[256] = "";

	(void)state;
	assert_non_null(a);
	json_object_del(a, "slice");              /* as keep_add does with the first input */
	assert_int_equal(sf_merge(a, b, "scenario_file", where, sizeof(where)), 0);
	assert_int_equal(json_integer_value(json_object_get(a, "planned")), 21);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(a, "chat"), "sent")), 201);
	/* identity numbers stay, counts add up inside arrays too */
	json_t *ph = json_array_get(json_object_get(a, "phases"), 0);
	assert_int_equal(json_integer_value(json_object_get(ph, "line")), 3);
	assert_int_equal(json_integer_value(json_object_get(ph, "arrived")), 20);
	json_t *s0 = json_array_get(json_object_get(a, "sessions"), 0);
	assert_int_equal(json_integer_value(json_object_get(s0, "weight")), 3);
	assert_true(json_real_value(json_object_get(s0, "share")) == 0.75);
	assert_int_equal(json_integer_value(json_object_get(s0, "finished")), 15);
	/* durations and lateness percentiles: the largest (an upper bound) */
	assert_true(json_number_value(json_object_get(json_object_get(a, "arrival_lateness_ms"), "p50")) == 1.5);
	assert_true(json_number_value(json_object_get(json_object_get(a, "drain"), "waited_s")) == 0.5);
	assert_true(json_number_value(json_object_get(json_object_get(a, "drain"), "limit_s")) == 2);
	assert_int_equal(json_integer_value(json_object_get(json_object_get(a, "drain"), "due_at_start")), 3);
	/* another file: named where it differs */
	assert_int_equal(sf_merge(a, c, "scenario_file", where, sizeof(where)), -1);
	assert_string_equal(where, "sessions[0].name");
	json_decref(a);
	json_decref(b);
	json_decref(c);
}

static void test_merge_keeps_and_reports(void **state)
{
	json_error_t je;
	json_t *m, *sf;
	char *html;

	(void)state;
	write_slice(at("s0.json"), 0, "echo", false);
	write_slice(at("s1.json"), 1, "echo", true);
	/* the file's threshold login.p99 < 1us fails on the merge: exit status 3 */
	assert_int_equal(run_merge(at("s0.json"), at("s1.json")), 3);
	m = json_load_file(at("out.json"), 0, &je);
	assert_non_null(m);
	assert_int_equal(json_integer_value(json_object_get(m, "clients")), 3 + 4);
	assert_int_equal(json_integer_value(json_object_get(m, "threads")), 2);
	assert_string_equal(json_string_value(json_object_get(m, "tls")), "starttls");
	assert_true(json_is_true(json_object_get(m, "interrupted")));
	assert_null(json_object_get(m, "messages"));          /* a one-process view */
	assert_true(json_is_true(json_object_get(m, "merged")));
	sf = json_object_get(m, "scenario_file");
	assert_non_null(sf);
	assert_null(json_object_get(sf, "slice"));
	assert_int_equal(json_integer_value(json_object_get(sf, "finished")), 19);
	assert_string_equal(json_string_value(json_object_get(sf, "description")), "a <test>");
	json_decref(m);

	html = slurp(at("out.html"));
	assert_non_null(strstr(html, "<h2>Scenario s</h2>"));
	assert_non_null(strstr(html, "a &lt;test&gt;"));
	assert_non_null(strstr(html, "<td>echo</td><td>3</td><td>75.0 %</td><td>16</td><td>16</td>"
				     "<td>15</td>"));
	assert_non_null(strstr(html, "  2  chat to self, body 64 bytes  (line 9)\n"));
	assert_non_null(strstr(html, "connect (the target&#39;s transport)"));
	assert_non_null(strstr(html, "<td class=\"l\">20/s for 1s: 20 users</td><td>20</td><td>20</td><td>3</td>"));
	assert_non_null(strstr(html, "<td>login.count == 4</td><td>20</td>"));
	assert_non_null(strstr(html, "<td class=\"pass\">pass</td>"));
	assert_non_null(strstr(html, "<td>login.p99 &lt; 1us</td><td>21</td>"));
	assert_non_null(strstr(html, "<td class=\"fail\">FAIL</td>"));
	assert_non_null(strstr(html, "drain: up to 2 s"));
	free(html);

	/* slices of different files: scenario_file left out, the rest merged */
	write_slice(at("s1.json"), 1, "other", false);
	assert_int_equal(run_merge(at("s0.json"), at("s1.json")), 0);
	m = json_load_file(at("out.json"), 0, &je);
	assert_non_null(m);
	assert_null(json_object_get(m, "scenario_file"));
	assert_false(json_is_true(json_object_get(m, "interrupted")));
	assert_int_equal(json_integer_value(json_object_get(m, "clients")), 7);
	json_decref(m);
	html = slurp(at("out.html"));
	assert_null(strstr(html, "<h2>Scenario"));
	free(html);
	unlink(at("s0.json"));
	unlink(at("s1.json"));
	unlink(at("out.json"));
	unlink(at("out.html"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sf_merge_rules),
		cmocka_unit_test(test_merge_keeps_and_reports),
	};
	int rc;

	snprintf(dir, sizeof(dir), "/tmp/test_merge.XXXXXX");
	if (!mkdtemp(dir))
		return 1;
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	rmdir(dir);
	return rc;
}
