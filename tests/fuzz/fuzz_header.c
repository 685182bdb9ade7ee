/*
 * libFuzzer target: the stream header path, as the edge runs it — the framer
 * finds the header item, then xmlstage_header() parses it — plus
 * xmlstage_header() on the raw input, since it must survive any bytes.
 * Invariants: no crash, no leak, and a header the pair accepts has a
 * non-empty local name whose strings are NUL-terminated at their length.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "parser/framer.h"
#include "parser/xmlstage.h"

static struct xmlstage *xs;

static void check(const struct xs_header *h)
{
	const struct xs_str *f[] = { &h->name_ns, &h->local, &h->prefix, &h->default_ns, &h->to,
				     &h->from, &h->version, &h->id, &h->lang, &h->ns_decls };
	for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++)
		if (!f[i]->p || strlen(f[i]->p) != f[i]->len)
			__builtin_trap();
	if (h->local.len == 0)
		__builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct framer_limits lim = { .max_stanza = 65536, .max_depth = 32, .max_attrs = 64,
					   .max_name = 256, .max_value = 8192 };
	struct framer f;
	struct xs_header h;
	size_t end;

	if (!xs)
		xs = xmlstage_new();
	framer_reset(&f);
	if (framer_scan(&f, &lim, data, size, &end) == FRAMER_HEADER &&
	    xmlstage_header(xs, (const char *)data, end, &h) == XMLSTAGE_OK)
		check(&h);
	if (xmlstage_header(xs, (const char *)data, size, &h) == XMLSTAGE_OK)
		check(&h);
	return 0;
}
