/*
 * fuzz_dialback — libFuzzer target for parser/dialback.c.
 *
 * dialback_parse() on arbitrary bytes (as a peer's element in an s2s
 * stream's context) must not misbehave; when it accepts, every field must
 * be bounded and NUL-terminated, the domains canonical (lowercase, valid),
 * and a request must carry a printable key.  Otherwise __builtin_trap().
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "parser/dialback.h"

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

#define CTX "xmlns='jabber:server' xmlns:db='jabber:server:dialback' " \
	    "xmlns:stream='http://etherx.jabber.org/streams'"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct db_elem d;
	char *s = malloc(size + 1);
	int r;

	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = 0;
	r = dialback_parse(s, size, CTX, &d);
	if (r == DB_OK) {
		CHECK(d.kind == DB_RESULT || d.kind == DB_VERIFY);
		CHECK(d.type >= DB_REQUEST && d.type <= DB_ERROR);
		CHECK(strlen(d.from) > 0 && jid_domain_valid(d.from, strlen(d.from)));
		CHECK(strlen(d.to) > 0 && jid_domain_valid(d.to, strlen(d.to)));
		for (const char *p = d.from; *p; p++)
			CHECK(!(*p >= 'A' && *p <= 'Z'));
		CHECK(strlen(d.id) <= DB_ID_MAX);
		CHECK(d.kind != DB_VERIFY || d.id[0]);
		CHECK(strlen(d.key) <= DB_KEY_MAX);
		CHECK(d.type != DB_REQUEST || d.key[0]);
		for (const char *p = d.key; *p; p++)
			CHECK(*p > ' ' && *p <= '~');
		CHECK(strlen(d.cond) < sizeof(d.cond));
	} else {
		CHECK(r >= DB_E_TYPE && r <= DB_E_XML);
		CHECK(dialback_error_str(r) != NULL);
	}
	free(s);
	return 0;
}
