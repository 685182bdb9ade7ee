/*
 * fuzz_proxy — libFuzzer target for parser/proxy.c.
 *
 * Invariants, any breach is __builtin_trap():
 *   - the result is an error code, 0, or a length <= n within the format's
 *     bound (107 for v1, 536 for v2); 0 only while n < PROXY_MAX_HDR;
 *   - chunking: every prefix (an exact-size heap copy, so ASan catches a
 *     read past n) gives 0 until the header is complete and then the same
 *     length; for an error, 0 and then the same error once decided;
 *   - the report is coherent: addresses only for PROXY over TCP4/TCP6, in
 *     the right sockaddr family; a v1 TCP4 line re-printed from the report
 *     is the input line byte for byte; a v2 address block is the input's;
 *     TLVs lie inside the header.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parser/proxy.h"

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

static long parse_copy(const uint8_t *data, size_t k, struct proxy_hdr *h)
{
	uint8_t *c = malloc(k ? k : 1);
	long r;

	CHECK(c != NULL);
	memcpy(c, data, k);
	r = proxy_parse(c, k, h);
	free(c);
	return r;
}

static void check_report(const uint8_t *data, long r, const struct proxy_hdr *h)
{
	const struct sockaddr_in *s4 = (const struct sockaddr_in *)&h->src;
	const struct sockaddr_in *d4 = (const struct sockaddr_in *)&h->dst;
	const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&h->src;
	const struct sockaddr_in6 *d6 = (const struct sockaddr_in6 *)&h->dst;

	CHECK(h->version == 1 || h->version == 2);
	CHECK(h->version == 1 ? r <= PROXY_V1_MAX : r <= PROXY_MAX_HDR);
	CHECK(h->version == 1 ? data[0] == 'P' : data[0] == 0x0D);
	if (h->has_addr) {
		CHECK(h->command == PROXY_CMD_PROXY);
		CHECK(h->family == PROXY_FAM_TCP4 || h->family == PROXY_FAM_TCP6);
	} else {
		CHECK(h->src.ss_family == AF_UNSPEC && h->dst.ss_family == AF_UNSPEC);
		CHECK(h->src_port == 0 && h->dst_port == 0);
	}
	if (h->family == PROXY_FAM_TCP4 && h->has_addr) {
		CHECK(s4->sin_family == AF_INET && d4->sin_family == AF_INET);
		CHECK(ntohs(s4->sin_port) == h->src_port && ntohs(d4->sin_port) == h->dst_port);
	}
	if (h->family == PROXY_FAM_TCP6 && h->has_addr) {
		CHECK(s6->sin6_family == AF_INET6 && d6->sin6_family == AF_INET6);
		CHECK(ntohs(s6->sin6_port) == h->src_port && ntohs(d6->sin6_port) == h->dst_port);
	}
	if (h->version == 1) {
		CHECK(h->tlv_len == 0);
		CHECK(data[r - 2] == '\r' && data[r - 1] == '\n');
		if (h->family == PROXY_FAM_TCP4) {
			char a[INET_ADDRSTRLEN], b[INET_ADDRSTRLEN], line[128];
			int k;

			CHECK(inet_ntop(AF_INET, &s4->sin_addr, a, sizeof(a)) != NULL);
			CHECK(inet_ntop(AF_INET, &d4->sin_addr, b, sizeof(b)) != NULL);
			k = snprintf(line, sizeof(line), "PROXY TCP4 %s %s %u %u\r\n", a, b,
				     h->src_port, h->dst_port);
			CHECK(k == r && memcmp(line, data, (size_t)k) == 0);
		}
	} else {
		size_t len = ((size_t)data[14] << 8) | data[15];

		CHECK((size_t)r == PROXY_V2_FIXED + len);
		CHECK(h->command == (data[12] & 0x0F));
		if (h->tlv_len)
			CHECK((size_t)h->tlv_off + h->tlv_len == (size_t)r);
		if (h->has_addr && h->family == PROXY_FAM_TCP4) {
			CHECK(memcmp(&s4->sin_addr, data + 16, 4) == 0);
			CHECK(memcmp(&d4->sin_addr, data + 20, 4) == 0);
		}
		if (h->has_addr && h->family == PROXY_FAM_TCP6) {
			CHECK(memcmp(&s6->sin6_addr, data + 16, 16) == 0);
			CHECK(memcmp(&d6->sin6_addr, data + 32, 16) == 0);
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct proxy_hdr h, t;
	long r, prev = 0;
	size_t upto;

	if (size > 2 * PROXY_MAX_HDR)
		size = 2 * PROXY_MAX_HDR;
	r = parse_copy(data, size, &h);
	CHECK(r == -PROXY_EBAD || r == -PROXY_ETOOLONG || r == -PROXY_ECRC ||
	      (r >= 0 && (size_t)r <= size));
	if (r == 0)
		CHECK(size < PROXY_MAX_HDR);
	if (r > 0)
		check_report(data, r, &h);

	/* prefixes: all of them up to the verdict, a few after it */
	upto = r > 0 ? (size_t)r : size;
	for (size_t k = 0; k <= upto; k++) {
		long rk = parse_copy(data, k, &t);

		if (r > 0)
			CHECK(rk == ((size_t)k < (size_t)r ? 0 : r));
		else if (r == 0)
			CHECK(rk == 0);
		else {
			CHECK(rk == 0 || rk == r);
			CHECK(prev == 0 || rk == prev);
			prev = rk;
		}
	}
	if (r > 0 && (size_t)r < size) {
		CHECK(parse_copy(data, (size_t)r + 1, &t) == r);
		CHECK(memcmp(&t, &h, sizeof(t)) == 0);
	}
	return 0;
}
