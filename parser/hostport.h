/*
 * hostport — "host:port" endpoints of session servers, and shard sets.
 *
 * An endpoint is "host:port" where host is a numeric IPv4 address, an IPv6
 * address in brackets ("[::1]:5270"), or a DNS name (RFC 1123 host name;
 * '_' allowed as Kubernetes service names need; labels 1..63 bytes, at most
 * 253 bytes, no final dot), and port 1..65535 in decimal.  A name is
 * resolved by the caller each time it connects; the endpoint string itself
 * is the shard's identity (parser/shard.h hashes it), never the address it
 * resolves to.
 *
 * A shard set is the sorted list of distinct endpoint names; the same
 * answer in any order gives the same set (every edge and session server
 * must compute the same one).
 *
 * Pure: no I/O, no allocation, no globals.
 */
#ifndef XEDGE_HOSTPORT_H
#define XEDGE_HOSTPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HOSTPORT_NAME_MAX 253     /* a DNS name, without a final dot */
#define HOSTPORT_MAX (HOSTPORT_NAME_MAX + 7)   /* "name:65535" plus brackets */

enum hostport_kind {
	HOSTPORT_BAD = -1,   /* not host:port */
	HOSTPORT_IP = 0,     /* numeric IPv4, or IPv6 in brackets */
	HOSTPORT_NAME = 1    /* a DNS name: resolve it before each connect */
};

/* Split s into host (brackets removed, NUL-terminated, hostlen bytes at
 * most) and port.  Returns its enum hostport_kind; HOSTPORT_BAD leaves
 * host and port unspecified. */
int hostport_parse(const char *s, char *host, size_t hostlen, uint16_t *port);

/* Whether name is a DNS name as above. */
bool hostport_name_ok(const char *name);

/* Sort names[0..n) (strcmp order) and remove duplicates in place: the count
 * left.  The pointers are only moved; the dropped duplicates are the ones
 * past the returned count, so the caller can still free them. */
size_t hostport_set_sort(const char **names, size_t n);

/* Whether two sorted sets are equal. */
bool hostport_set_equal(const char *const *a, size_t na, const char *const *b, size_t nb);

#endif
