/*
 * Unit tests for parser/proxy.c: the spec's examples and maximal lines,
 * every v1 and v2 rule, the early verdicts, and chunking invariance: every
 * parse goes through check(), which also parses every prefix (each in an
 * exact-size heap copy, so ASan sees any read past n) and demands 0 until
 * the header is complete, then the same length; for an error, 0 and then
 * the same error from some prefix on.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include "parser/proxy.h"

/* Parse p[0..n) and all its prefixes; returns the whole-buffer result. */
static long check(const void *p, size_t n, struct proxy_hdr *h)
{
	long whole, prev = 0;
	struct proxy_hdr tmp;

	{
		uint8_t *c = malloc(n ? n : 1);
		assert_non_null(c);
		memcpy(c, p, n);
		whole = proxy_parse(c, n, h);
		free(c);
	}
	for (size_t k = 0; k <= n; k++) {
		uint8_t *c = malloc(k ? k : 1);
		long r;

		assert_non_null(c);
		memcpy(c, p, k);
		r = proxy_parse(c, k, &tmp);
		free(c);
		if (whole > 0)
			assert_int_equal(r, (long)k < whole ? 0 : whole);
		else if (whole == 0)
			assert_int_equal(r, 0);
		else {
			assert_true(r == 0 || r == whole);
			assert_true(prev == 0 || r == prev);   /* once decided, stays */
			prev = r;
		}
		if (r == 0)
			assert_true(k < PROXY_MAX_HDR);
	}
	return whole;
}

static long check_s(const char *s, struct proxy_hdr *h)
{
	return check(s, strlen(s), h);
}

/* The smallest prefix length of s that gets a verdict (error or length). */
static size_t verdict_at(const void *p, size_t n)
{
	struct proxy_hdr h;

	for (size_t k = 0; k <= n; k++)
		if (proxy_parse(p, k, &h) != 0)
			return k;
	return (size_t)-1;
}

static void assert_v4(const struct sockaddr_storage *ss, const char *ip, uint16_t port)
{
	const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;
	char buf[INET_ADDRSTRLEN];

	assert_int_equal(sin->sin_family, AF_INET);
	assert_non_null(inet_ntop(AF_INET, &sin->sin_addr, buf, sizeof(buf)));
	assert_string_equal(buf, ip);
	assert_int_equal(ntohs(sin->sin_port), port);
}

static void assert_v6(const struct sockaddr_storage *ss, const char *ip, uint16_t port)
{
	const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;
	char buf[INET6_ADDRSTRLEN];

	assert_int_equal(sin6->sin6_family, AF_INET6);
	assert_non_null(inet_ntop(AF_INET6, &sin6->sin6_addr, buf, sizeof(buf)));
	assert_string_equal(buf, ip);
	assert_int_equal(ntohs(sin6->sin6_port), port);
}

/* ---- v1 ------------------------------------------------------------------ */

static void test_v1_spec_example(void **state)
{
	const char *line = "PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n";
	char buf[256];
	struct proxy_hdr h;

	(void)state;
	snprintf(buf, sizeof(buf), "%sGET / HTTP/1.1\r\nHost: 192.168.0.11\r\n\r\n", line);
	assert_int_equal(check_s(buf, &h), (long)strlen(line));
	assert_int_equal(h.version, 1);
	assert_int_equal(h.command, PROXY_CMD_PROXY);
	assert_int_equal(h.family, PROXY_FAM_TCP4);
	assert_int_equal(h.has_addr, 1);
	assert_int_equal(h.src_port, 56324);
	assert_int_equal(h.dst_port, 443);
	assert_int_equal(h.tlv_len, 0);
	assert_v4(&h.src, "192.168.0.1", 56324);
	assert_v4(&h.dst, "192.168.0.11", 443);
}

static void test_v1_maximal_lines(void **state)
{
	const char *l4 = "PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n";
	const char *l6 = "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
			 "FFFF:FFFF:FFFF:FFFF:FFFF:FFFF:FFFF:FFFF 65535 65535\r\n";
	const char *lu = "PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff "
			 "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n";
	struct proxy_hdr h;

	(void)state;
	assert_int_equal(strlen(l4), 56);
	assert_int_equal(check_s(l4, &h), 56);
	assert_v4(&h.src, "255.255.255.255", 65535);
	assert_int_equal(strlen(l6), 104);
	assert_int_equal(check_s(l6, &h), 104);
	assert_int_equal(h.family, PROXY_FAM_TCP6);
	assert_v6(&h.src, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 65535);
	assert_int_equal(strlen(lu), PROXY_V1_MAX);
	assert_int_equal(check_s(lu, &h), PROXY_V1_MAX);
	assert_int_equal(h.command, PROXY_CMD_UNKNOWN);
	assert_int_equal(h.has_addr, 0);
}

static void test_v1_small_values(void **state)
{
	struct proxy_hdr h;

	(void)state;
	assert_int_equal(check_s("PROXY TCP4 0.0.0.0 10.0.0.1 0 5222\r\n", &h), 36);
	assert_v4(&h.src, "0.0.0.0", 0);
	assert_v4(&h.dst, "10.0.0.1", 5222);
	assert_true(check_s("PROXY TCP6 ::1 2001:db8::0001 1 65535\r\nX", &h) > 0);
	assert_v6(&h.src, "::1", 1);
	assert_v6(&h.dst, "2001:db8::1", 65535);
	assert_true(check_s("PROXY TCP6 :: ::ffff 1 2\r\n", &h) > 0);
	assert_v6(&h.src, "::", 1);
}

static void test_v1_unknown(void **state)
{
	struct proxy_hdr h;

	(void)state;
	assert_int_equal(check_s("PROXY UNKNOWN\r\n", &h), 15);
	assert_int_equal(h.version, 1);
	assert_int_equal(h.command, PROXY_CMD_UNKNOWN);
	assert_int_equal(h.family, PROXY_FAM_UNSPEC);
	assert_int_equal(h.has_addr, 0);
	/* anything before the CRLF is ignored, even nonsense */
	assert_int_equal(check_s("PROXY UNKNOWN what ever 999.1 x\r\n", &h), 33);
	assert_int_equal(check_s("PROXY UNKNOWN \r\n", &h), 16);
}

static void test_v1_too_long(void **state)
{
	char buf[200];
	struct proxy_hdr h;

	(void)state;
	memset(buf, 'a', sizeof(buf));
	memcpy(buf, "PROXY UNKNOWN ", 14);
	memcpy(buf + PROXY_V1_MAX - 2, "\r\n", 2);
	assert_int_equal(check(buf, PROXY_V1_MAX, &h), PROXY_V1_MAX);
	memcpy(buf + PROXY_V1_MAX - 2, "aa\r\n", 4);
	assert_int_equal(check(buf, PROXY_V1_MAX + 2, &h), -PROXY_ETOOLONG);
	assert_int_equal(verdict_at(buf, PROXY_V1_MAX + 2), PROXY_V1_MAX);
	/* CR as the 107th byte: the LF would be the 108th */
	memcpy(buf + PROXY_V1_MAX - 1, "\r\n", 2);
	assert_int_equal(check(buf, PROXY_V1_MAX + 1, &h), -PROXY_ETOOLONG);
}

static void test_v1_bad(void **state)
{
	static const char *const bad[] = {
		"proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n",
		"PROXY  TCP4 1.2.3.4 5.6.7.8 1 2\r\n",
		"PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n",
		"PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n",
		"PROXY TCP4 1.2.3.4 5.6.7.8  1 2\r\n",
		"PROXY TCP4 1.2.3.4 5.6.7.8 1  2\r\n",
		"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n",
		"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n",
		"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX",
		"PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n",
		"PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n",
		"PROXY TCP4 1.2.3.00 5.6.7.8 1 2\r\n",
		"PROXY TCP4 256.2.3.4 5.6.7.8 1 2\r\n",
		"PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n",
		"PROXY TCP4 1.2.3.4.5 5.6.7.8 1 2\r\n",
		"PROXY TCP4 1..3.4 5.6.7.8 1 2\r\n",
		"PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n",
		"PROXY TCP4 1.2.3.4 5.6.7.8 00 2\r\n",
		"PROXY TCP4 1.2.3.4 5.6.7.8 1 65536\r\n",
		"PROXY TCP4 1.2.3.4 5.6.7.8 1 99999\r\n",
		"PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n",
		"PROXY TCP4 1.2.3.4 5.6.7.8 +1 2\r\n",
		"PROXY TCP4 ::1 ::1 1 2\r\n",
		"PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n",
		"PROXY TCP6 ::ffff:1.2.3.4 ::1 1 2\r\n",
		"PROXY TCP6 ::1::2 ::1 1 2\r\n",
		"PROXY TCP6 1:2:3:4:5:6:7 ::1 1 2\r\n",
		"PROXY TCP6 1:2:3:4:5:6:7:8:9 ::1 1 2\r\n",
		"PROXY TCP6 12345::1 ::1 1 2\r\n",
		"PROXY TCP6 : ::1 1 2\r\n",
		"PROXY TCP6 0000:0000:0000:0000:0000:0000:0000:00001 ::1 1 2\r\n",
		"PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n",
		"PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n",
		"PROXY TCP 1.2.3.4 5.6.7.8 1 2\r\n",
		"PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n",
		"PROXY UNKNOWN\n",
		"PROXY UNKNOWN\rX",
		"PROXY UNKNOWNX\r\n",
		"PROXY UNKNOWN junk\nmore\r\n",
		"PROXY UNKNOWN junk\rmore\r\n",
		"PROXY\r\n",
		"PROXY \r\n",
		"PROXYTCP4 1.2.3.4 5.6.7.8 1 2\r\n",
		"GET / HTTP/1.1\r\n",
		"\x16\x03\x01\x02\x00",
		"<?xml version='1.0'?>",
	};
	struct proxy_hdr h;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		long r = check_s(bad[i], &h);
		if (r != -PROXY_EBAD)
			fail_msg("#%zu \"%s\": %ld", i, bad[i], r);
	}
}

static void test_v1_early_verdicts(void **state)
{
	const char *p;
	struct proxy_hdr h;

	(void)state;
	/* not a proxy at all: refused on the first byte */
	assert_int_equal(verdict_at("GET / HTTP/1.1", 14), 1);
	assert_int_equal(verdict_at("PRX", 3), 3);
	/* a bad octet is refused as soon as it exceeds 255 */
	p = "PROXY TCP4 1.2.3.4 5.6.7.999 1 2\r\n";
	assert_int_equal(verdict_at(p, strlen(p)), strlen("PROXY TCP4 1.2.3.4 5.6.7.99") + 1);
	/* a leading zero is refused at the digit after it */
	p = "PROXY TCP4 1.2.3.4 5.6.7.8 0123 2\r\n";
	assert_int_equal(verdict_at(p, strlen(p)), strlen("PROXY TCP4 1.2.3.4 5.6.7.8 01"));
	/* complete but short prefixes are "need more" */
	assert_int_equal(proxy_parse((const uint8_t *)"PROXY TCP4 1.2.3.4", 18, &h), 0);
	assert_int_equal(proxy_parse((const uint8_t *)"PROXY UNKNOWN\r", 14, &h), 0);
	assert_int_equal(proxy_parse((const uint8_t *)"P", 1, &h), 0);
	assert_int_equal(proxy_parse((const uint8_t *)"", 0, &h), 0);
}

/* ---- v2 ------------------------------------------------------------------ */

static const uint8_t SIG[12] = { 0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
				 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A };

/* Build a v2 header: fixed part + body[0..blen); returns its length. */
static size_t v2(uint8_t *out, uint8_t vc, uint8_t fam, const void *body, size_t blen)
{
	memcpy(out, SIG, 12);
	out[12] = vc;
	out[13] = fam;
	out[14] = (uint8_t)(blen >> 8);
	out[15] = (uint8_t)blen;
	if (blen)
		memcpy(out + 16, body, blen);
	return 16 + blen;
}

static const uint8_t ADDR4[12] = { 192, 0, 2, 1, 198, 51, 100, 7, 0xC3, 0x50, 0x14, 0x66 };

static void test_v2_proxy_tcp4(void **state)
{
	uint8_t buf[128];
	size_t n = v2(buf, 0x21, 0x11, ADDR4, 12);
	struct proxy_hdr h;

	(void)state;
	memcpy(buf + n, "<stream", 7);
	assert_int_equal(check(buf, n + 7, &h), 28);
	assert_int_equal(h.version, 2);
	assert_int_equal(h.command, PROXY_CMD_PROXY);
	assert_int_equal(h.family, PROXY_FAM_TCP4);
	assert_int_equal(h.has_addr, 1);
	assert_v4(&h.src, "192.0.2.1", 50000);
	assert_v4(&h.dst, "198.51.100.7", 5222);
	assert_int_equal(h.src_port, 50000);
	assert_int_equal(h.dst_port, 5222);
	assert_int_equal(h.tlv_len, 0);
	/* the verdict waits for the whole address block */
	assert_int_equal(verdict_at(buf, n + 7), 28);
}

static void test_v2_proxy_tcp6(void **state)
{
	uint8_t body[36] = { 0x20, 0x01, 0x0d, 0xb8, [15] = 1, [16] = 0xfe, [17] = 0x80, [31] = 2,
			     [32] = 0x00, [33] = 0x50, [34] = 0x14, [35] = 0x67 };
	uint8_t buf[128];
	size_t n = v2(buf, 0x21, 0x21, body, 36);
	struct proxy_hdr h;

	(void)state;
	assert_int_equal(check(buf, n, &h), 52);
	assert_int_equal(h.family, PROXY_FAM_TCP6);
	assert_v6(&h.src, "2001:db8::1", 80);
	assert_v6(&h.dst, "fe80::2", 5223);
}

static void test_v2_local(void **state)
{
	uint8_t buf[600], junk[40];
	struct proxy_hdr h;
	size_t n;

	(void)state;
	n = v2(buf, 0x20, 0x00, NULL, 0);
	assert_int_equal(check(buf, n, &h), 16);
	assert_int_equal(h.command, PROXY_CMD_LOCAL);
	assert_int_equal(h.family, PROXY_FAM_UNSPEC);
	assert_int_equal(h.has_addr, 0);
	/* LOCAL: the length is honoured, the block and family byte ignored */
	memset(junk, 0xEE, sizeof(junk));
	n = v2(buf, 0x20, 0xFF, junk, sizeof(junk));
	assert_int_equal(check(buf, n, &h), 56);
	assert_int_equal(h.has_addr, 0);
	assert_int_equal(h.tlv_len, 0);
	n = v2(buf, 0x20, 0x11, ADDR4, 12);
	assert_int_equal(check(buf, n, &h), 28);
	assert_int_equal(h.has_addr, 0);
	assert_int_equal(h.command, PROXY_CMD_LOCAL);
}

static void test_v2_fallback_families(void **state)
{
	uint8_t buf[600], body[300];
	struct proxy_hdr h;
	size_t n;

	(void)state;
	memset(body, 0, sizeof(body));
	n = v2(buf, 0x21, 0x12, ADDR4, 12);
	assert_int_equal(check(buf, n, &h), 28);
	assert_int_equal(h.family, PROXY_FAM_UDP4);
	assert_int_equal(h.has_addr, 0);
	n = v2(buf, 0x21, 0x22, body, 36);
	assert_int_equal(check(buf, n, &h), 52);
	assert_int_equal(h.family, PROXY_FAM_UDP6);
	n = v2(buf, 0x21, 0x31, body, 216);
	assert_int_equal(check(buf, n, &h), 232);
	assert_int_equal(h.family, PROXY_FAM_UNIX);
	assert_int_equal(h.has_addr, 0);
	n = v2(buf, 0x21, 0x32, body, 216);
	assert_int_equal(check(buf, n, &h), 232);
	/* UNSPEC family or transport: the block is ignored whatever it holds */
	memset(body, 0xAB, 5);
	n = v2(buf, 0x21, 0x00, body, 5);
	assert_int_equal(check(buf, n, &h), 21);
	assert_int_equal(h.family, PROXY_FAM_UNSPEC);
	assert_int_equal(h.has_addr, 0);
	n = v2(buf, 0x21, 0x10, body, 5);
	assert_int_equal(check(buf, n, &h), 21);
	n = v2(buf, 0x21, 0x01, body, 0);
	assert_int_equal(check(buf, n, &h), 16);
}

static void test_v2_tlvs(void **state)
{
	uint8_t body[128], buf[256];
	struct proxy_hdr h;
	size_t b = 0, n;

	(void)state;
	memcpy(body, ADDR4, 12);
	b = 12;
	/* ALPN "xmpp-client", AUTHORITY "example.com", an empty NOOP */
	memcpy(body + b, "\x01\x00\x0bxmpp-client", 14);
	b += 14;
	memcpy(body + b, "\x02\x00\x0b" "example.com", 14);
	b += 14;
	memcpy(body + b, "\x04\x00\x00", 3);
	b += 3;
	n = v2(buf, 0x21, 0x11, body, b);
	assert_int_equal(check(buf, n, &h), (long)n);
	assert_int_equal(h.has_addr, 1);
	assert_int_equal(h.tlv_off, 28);
	assert_int_equal(h.tlv_len, b - 12);
	assert_memory_equal(buf + h.tlv_off, "\x01\x00\x0bxmpp-client", 14);

	/* a TLV longer than what is left */
	body[12 + 2] = 0x0c;
	n = v2(buf, 0x21, 0x11, body, b);
	assert_int_equal(check(buf, n, &h), -PROXY_EBAD);
	body[12 + 2] = 0x0b;
	/* 1 or 2 stray bytes after the last TLV */
	n = v2(buf, 0x21, 0x11, body, b - 1);
	assert_int_equal(check(buf, n, &h), -PROXY_EBAD);
	n = v2(buf, 0x21, 0x11, body, 13);
	assert_int_equal(check(buf, n, &h), -PROXY_EBAD);
	n = v2(buf, 0x21, 0x11, body, 14);
	assert_int_equal(check(buf, n, &h), -PROXY_EBAD);
	/* a TLV of 3 bytes alone is fine */
	n = v2(buf, 0x21, 0x11, body, 12 + 0);
	assert_int_equal(check(buf, n, &h), 28);
}

static void test_v2_unique_id(void **state)
{
	uint8_t body[200], buf[256];
	struct proxy_hdr h;
	size_t n;

	(void)state;
	memset(body, 'u', sizeof(body));
	memcpy(body, ADDR4, 12);
	memcpy(body + 12, "\x05\x00\x80", 3);
	n = v2(buf, 0x21, 0x11, body, 12 + 3 + 128);
	assert_int_equal(check(buf, n, &h), (long)n);
	memcpy(body + 12, "\x05\x00\x81", 3);
	n = v2(buf, 0x21, 0x11, body, 12 + 3 + 129);
	assert_int_equal(check(buf, n, &h), -PROXY_EBAD);
}

static void test_v2_crc32c(void **state)
{
	uint8_t body[64], buf[128];
	struct proxy_hdr h;
	uint32_t crc;
	size_t n;

	(void)state;
	assert_int_equal(proxy_crc32c((const uint8_t *)"123456789", 9), 0xE3069283u);
	assert_int_equal(proxy_crc32c(NULL, 0), 0);
	memcpy(body, ADDR4, 12);
	memcpy(body + 12, "\x03\x00\x04\x00\x00\x00\x00", 7);
	memcpy(body + 19, "\x04\x00\x02hi", 5);
	n = v2(buf, 0x21, 0x11, body, 24);
	crc = proxy_crc32c(buf, n);
	buf[31] = (uint8_t)(crc >> 24);
	buf[32] = (uint8_t)(crc >> 16);
	buf[33] = (uint8_t)(crc >> 8);
	buf[34] = (uint8_t)crc;
	assert_int_equal(check(buf, n, &h), (long)n);
	buf[n - 1] ^= 1;
	assert_int_equal(check(buf, n, &h), -PROXY_ECRC);
	buf[n - 1] ^= 1;
	buf[34] ^= 0x80;
	assert_int_equal(check(buf, n, &h), -PROXY_ECRC);
	/* the checksum TLV must be exactly 4 bytes */
	memcpy(body + 12, "\x03\x00\x03\x00\x00\x00", 6);
	n = v2(buf, 0x21, 0x11, body, 18);
	assert_int_equal(check(buf, n, &h), -PROXY_EBAD);
}

static void test_v2_bad_fixed_part(void **state)
{
	uint8_t buf[700], zero[256];
	struct proxy_hdr h;
	size_t n;

	(void)state;
	memset(buf, 0, sizeof(buf));
	memset(zero, 0, sizeof(zero));
	/* signature: refused at the first wrong byte */
	n = v2(buf, 0x21, 0x11, ADDR4, 12);
	buf[5] = 0x0E;
	assert_int_equal(check(buf, n, &h), -PROXY_EBAD);
	assert_int_equal(verdict_at(buf, n), 6);
	/* version 1 and 3 in the binary format; commands 2..15 */
	n = v2(buf, 0x11, 0x11, ADDR4, 12);
	assert_int_equal(check(buf, n, &h), -PROXY_EBAD);
	assert_int_equal(verdict_at(buf, n), 13);
	n = v2(buf, 0x31, 0x11, ADDR4, 12);
	assert_int_equal(check(buf, n, &h), -PROXY_EBAD);
	for (uint8_t c = 2; c < 16; c++) {
		n = v2(buf, (uint8_t)(0x20 | c), 0x11, ADDR4, 12);
		assert_int_equal(check(buf, n, &h), -PROXY_EBAD);
	}
	/* undefined family and transport nibbles */
	n = v2(buf, 0x21, 0x41, ADDR4, 12);
	assert_int_equal(check(buf, n, &h), -PROXY_EBAD);
	assert_int_equal(verdict_at(buf, n), 14);
	n = v2(buf, 0x21, 0x13, ADDR4, 12);
	assert_int_equal(check(buf, n, &h), -PROXY_EBAD);
	n = v2(buf, 0x21, 0xF1, ADDR4, 12);
	assert_int_equal(check(buf, n, &h), -PROXY_EBAD);
	/* len too small for the family's address block: refused at byte 16 */
	n = v2(buf, 0x21, 0x11, ADDR4, 11);
	assert_int_equal(check(buf, n, &h), -PROXY_EBAD);
	assert_int_equal(verdict_at(buf, n), 16);
	n = v2(buf, 0x21, 0x21, zero, 35);
	assert_int_equal(check(buf, n, &h), -PROXY_EBAD);
	n = v2(buf, 0x21, 0x31, zero, 215);
	assert_int_equal(check(buf, n, &h), -PROXY_EBAD);
}

static void test_v2_length_bound(void **state)
{
	uint8_t body[PROXY_V2_MAX_LEN + 1], buf[PROXY_MAX_HDR + 1];
	struct proxy_hdr h;
	size_t n, t = PROXY_V2_MAX_LEN - 12 - 3;

	(void)state;
	memset(body, 0, sizeof(body));
	memcpy(body, ADDR4, 12);
	body[12] = 0x04;   /* one NOOP filling the rest */
	body[13] = (uint8_t)(t >> 8);
	body[14] = (uint8_t)t;
	n = v2(buf, 0x21, 0x11, body, PROXY_V2_MAX_LEN);
	assert_int_equal(n, PROXY_MAX_HDR);
	assert_int_equal(n, 536);
	assert_int_equal(check(buf, n, &h), 536);
	/* one more byte of length is refused at byte 16, before any body */
	t++;
	body[13] = (uint8_t)(t >> 8);
	body[14] = (uint8_t)t;
	n = v2(buf, 0x21, 0x11, body, PROXY_V2_MAX_LEN + 1);
	assert_int_equal(check(buf, n, &h), -PROXY_ETOOLONG);
	assert_int_equal(verdict_at(buf, n), 16);
	buf[14] = 0xFF;
	buf[15] = 0xFF;
	assert_int_equal(proxy_parse(buf, 16, &h), -PROXY_ETOOLONG);
}

static void test_contract(void **state)
{
	struct proxy_hdr h;

	(void)state;
	assert_int_equal(proxy_parse(NULL, 4, &h), -PROXY_EBAD);
	assert_int_equal(proxy_parse((const uint8_t *)"PROXY", 5, NULL), -PROXY_EBAD);
	assert_string_equal(proxy_strerror(-PROXY_EBAD), "bad header");
	assert_string_equal(proxy_strerror(PROXY_ETOOLONG), "header too long");
	assert_string_equal(proxy_strerror(-PROXY_ECRC), "bad checksum");
	assert_string_equal(proxy_strerror(-99), "?");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_v1_spec_example),
		cmocka_unit_test(test_v1_maximal_lines),
		cmocka_unit_test(test_v1_small_values),
		cmocka_unit_test(test_v1_unknown),
		cmocka_unit_test(test_v1_too_long),
		cmocka_unit_test(test_v1_bad),
		cmocka_unit_test(test_v1_early_verdicts),
		cmocka_unit_test(test_v2_proxy_tcp4),
		cmocka_unit_test(test_v2_proxy_tcp6),
		cmocka_unit_test(test_v2_local),
		cmocka_unit_test(test_v2_fallback_families),
		cmocka_unit_test(test_v2_tlvs),
		cmocka_unit_test(test_v2_unique_id),
		cmocka_unit_test(test_v2_crc32c),
		cmocka_unit_test(test_v2_bad_fixed_part),
		cmocka_unit_test(test_v2_length_bound),
		cmocka_unit_test(test_contract),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
