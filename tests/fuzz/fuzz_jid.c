/*
 * fuzz_jid — libFuzzer target for parser/jid.c.
 *
 * jid_parse() on arbitrary bytes must not misbehave; when it accepts, the
 * parts must lie inside the input and pass their own validators, the
 * canonical form must parse again, and canonicalising that must give the
 * same bytes (canonicalisation is idempotent).  Otherwise __builtin_trap().
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "parser/jid.h"

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

static void inside(const char *s, size_t n, const char *p, size_t len)
{
	if (len == 0)
		return;
	CHECK(p >= s && p + len <= s + n);
}

static void canon_check(const struct jid_view *v, int full)
{
	char a[JID_MAX + 1], b[JID_MAX + 1];
	struct jid_view w;
	int la, lb;

	la = jid_canon(v, full, a, sizeof(a));
	CHECK(la > 0 && (size_t)la <= JID_MAX && a[la] == '\0');
	CHECK(jid_parse(a, (size_t)la, &w) == 0);
	CHECK(w.local_len == v->local_len && w.domain_len == v->domain_len);
	CHECK(w.resource_len == (full ? v->resource_len : 0));
	lb = jid_canon(&w, full, b, sizeof(b));
	CHECK(lb == la && memcmp(a, b, (size_t)la) == 0);
	/* one byte short of room: refused, never truncated */
	CHECK(jid_canon(v, full, a, (size_t)la) == -1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* An exact-size copy so any over-read is caught by ASan. */
	char *s = malloc(size ? size : 1);
	struct jid_view v;

	if (s == NULL)
		return 0;
	memcpy(s, data, size);
	if (jid_parse(s, size, &v) == 0) {
		inside(s, size, v.local, v.local_len);
		inside(s, size, v.domain, v.domain_len);
		inside(s, size, v.resource, v.resource_len);
		CHECK(v.domain_len > 0 && jid_domain_valid(v.domain, v.domain_len));
		CHECK(v.local_len == 0 || jid_local_valid(v.local, v.local_len));
		CHECK(v.resource_len == 0 || jid_resource_valid(v.resource, v.resource_len));
		canon_check(&v, 1);
		canon_check(&v, 0);
	}
	/* The part validators on the raw input too. */
	(void)jid_local_valid(s, size);
	(void)jid_resource_valid(s, size);
	(void)jid_domain_valid(s, size);
	free(s);
	return 0;
}
