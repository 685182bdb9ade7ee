/* hostport — session server endpoints and shard sets (hostport.h). */
#include "parser/hostport.h"

#include <arpa/inet.h>
#include <string.h>

bool hostport_name_ok(const char *name)
{
	size_t len = 0, label = 0;
	bool alpha = false;   /* a name of digits and dots only is a mistyped IPv4 address */

	for (const char *p = name; *p; p++, len++) {
		char c = *p;

		if (len >= HOSTPORT_NAME_MAX)
			return false;
		if (c == '.') {
			if (label == 0 || p[-1] == '-')
				return false;   /* empty label, leading dot, "..", label ending in '-' */
			label = 0;
			continue;
		}
		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_')
			alpha = true;
		else if (c == '-')
			alpha = true;
		else if (!(c >= '0' && c <= '9'))
			return false;
		if (label == 0 && c == '-')
			return false;
		if (++label > 63)
			return false;
	}
	return len > 0 && label > 0 && name[len - 1] != '-' && alpha;
}

static int port_parse(const char *s, uint16_t *port)
{
	unsigned long v = 0;

	if (!*s)
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		v = v * 10 + (unsigned long)(*s - '0');
		if (v > 65535)
			return -1;
	}
	if (v == 0)
		return -1;
	*port = (uint16_t)v;
	return 0;
}

int hostport_parse(const char *s, char *host, size_t hostlen, uint16_t *port)
{
	unsigned char tmp[16];
	const char *colon;
	size_t hl;

	if (s[0] == '[') {
		const char *rb = strchr(s, ']');

		if (!rb || rb[1] != ':')
			return HOSTPORT_BAD;
		hl = (size_t)(rb - s - 1);
		if (hl == 0 || hl >= hostlen)
			return HOSTPORT_BAD;
		memcpy(host, s + 1, hl);
		host[hl] = '\0';
		if (inet_pton(AF_INET6, host, tmp) != 1 || port_parse(rb + 2, port) < 0)
			return HOSTPORT_BAD;
		return HOSTPORT_IP;
	}
	colon = strchr(s, ':');
	if (!colon || strchr(colon + 1, ':'))
		return HOSTPORT_BAD;   /* none, or an IPv6 address without brackets */
	hl = (size_t)(colon - s);
	if (hl == 0 || hl >= hostlen)
		return HOSTPORT_BAD;
	memcpy(host, s, hl);
	host[hl] = '\0';
	if (port_parse(colon + 1, port) < 0)
		return HOSTPORT_BAD;
	if (inet_pton(AF_INET, host, tmp) == 1)
		return HOSTPORT_IP;
	return hostport_name_ok(host) ? HOSTPORT_NAME : HOSTPORT_BAD;
}

size_t hostport_set_sort(const char **names, size_t n)
{
	size_t k = 0;

	/* Insertion sort: sets are small (CONFIG_MAX_SHARDS). */
	for (size_t i = 1; i < n; i++) {
		const char *t = names[i];
		size_t j = i;

		for (; j > 0 && strcmp(names[j - 1], t) > 0; j--)
			names[j] = names[j - 1];
		names[j] = t;
	}
	/* Duplicates go to the end, in their order, so the caller frees them. */
	for (size_t i = 0; i < n; i++) {
		if (k > 0 && strcmp(names[k - 1], names[i]) == 0)
			continue;
		if (k != i) {
			const char *t = names[k];

			names[k] = names[i];
			names[i] = t;
		}
		k++;
	}
	return k;
}

bool hostport_set_equal(const char *const *a, size_t na, const char *const *b, size_t nb)
{
	if (na != nb)
		return false;
	for (size_t i = 0; i < na; i++)
		if (strcmp(a[i], b[i]) != 0)
			return false;
	return true;
}
