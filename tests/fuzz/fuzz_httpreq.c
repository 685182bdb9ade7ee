/*
 * fuzz_httpreq — libFuzzer target for parser/httpreq.c (the admin
 * listener's request heads).
 *
 * httpreq_parse() on arbitrary bytes must stay in bounds; when it accepts,
 * the head length is within the input and HTTPREQ_MAX, the method is a
 * non-empty token and the path starts with '/', both NUL-terminated within
 * their arrays, as are the query, Content-Type and Range; a Range read
 * against a few sizes is ignored, unsatisfiable, or a range inside the
 * size; every prefix of an accepted head is need-more (0).
 * Otherwise __builtin_trap().
 */
#include <stdint.h>
#include <string.h>

#include "parser/httpreq.h"

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct httpreq r;
	long n = httpreq_parse((const char *)data, size, &r);

	CHECK(n == 0 || n == -400 || n == -431 || n == -505 || n > 0);
	if (n > 0) {
		CHECK((size_t)n <= size && n <= HTTPREQ_MAX);
		CHECK(memchr(r.method, 0, sizeof(r.method)) && r.method[0]);
		CHECK(memchr(r.path, 0, sizeof(r.path)) && r.path[0] == '/');
		CHECK(memchr(r.query, 0, sizeof(r.query)) && memchr(r.content_type, 0, sizeof(r.content_type)) &&
		      memchr(r.range, 0, sizeof(r.range)));
		CHECK(r.content_length >= -1);
		for (uint64_t size = 0; size < 3000; size += 999) {
			uint64_t first, last;
			int k = httpreq_range(r.range, size, &first, &last);
			CHECK(k == 0 || k == -416 || (k == 1 && first <= last && last < size));
		}
		CHECK(httpreq_parse((const char *)data, (size_t)n - 1, &r) == 0);
	}
	if (n == -431)
		CHECK(size >= HTTPREQ_MAX);
	return 0;
}
