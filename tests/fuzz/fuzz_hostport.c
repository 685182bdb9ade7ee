/*
 * fuzz_hostport — libFuzzer target for parser/hostport.c.
 *
 * The input, NUL-terminated, as an endpoint: hostport_parse must not
 * misbehave; when it accepts, the host fits the buffer, the port is 1-65535,
 * a NAME passes hostport_name_ok and printing "host:port" back (brackets for
 * an IPv6 address) parses to the same kind, host and port.  Then the input
 * split at newlines as a shard set: hostport_set_sort keeps every line, the
 * kept ones strictly increasing, and the set equals itself.  Otherwise
 * __builtin_trap().
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parser/hostport.h"

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

static void check_endpoint(const char *s)
{
	char host[HOSTPORT_MAX], again[HOSTPORT_MAX + 16], host2[HOSTPORT_MAX];
	uint16_t port = 0, port2 = 0;
	int kind = hostport_parse(s, host, sizeof(host), &port), kind2;

	if (kind == HOSTPORT_BAD)
		return;
	CHECK(kind == HOSTPORT_IP || kind == HOSTPORT_NAME);
	CHECK(strlen(host) < sizeof(host) && port >= 1);
	if (kind == HOSTPORT_NAME)
		CHECK(hostport_name_ok(host));
	snprintf(again, sizeof(again), strchr(host, ':') ? "[%s]:%u" : "%s:%u", host, port);
	kind2 = hostport_parse(again, host2, sizeof(host2), &port2);
	CHECK(kind2 == kind && port2 == port && strcmp(host2, host) == 0);
}

static void check_set(char *text)
{
	const char *v[64];
	size_t n = 0, keep;

	for (char *line = strtok(text, "\n"); line && n < 64; line = strtok(NULL, "\n"))
		v[n++] = line;
	keep = hostport_set_sort(v, n);
	CHECK(keep <= n && (n == 0 || keep >= 1));
	for (size_t i = 1; i < keep; i++)
		CHECK(strcmp(v[i - 1], v[i]) < 0);
	for (size_t i = keep; i < n; i++) {   /* each dropped one is a kept one again */
		size_t k = 0;

		while (k < keep && strcmp(v[k], v[i]) != 0)
			k++;
		CHECK(k < keep);
	}
	CHECK(hostport_set_equal(v, keep, v, keep));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s;

	if (size > 4096)
		return 0;
	s = malloc(size + 1);
	if (!s)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	check_endpoint(s);
	check_set(s);
	free(s);
	return 0;
}
