/*
 * discover — the shard set from DNS (backend.discover): the targets of the
 * SRV records of one name, each as "target:port", sorted, duplicates out
 * (parser/hostport.h).  That is what a Kubernetes headless Service in front
 * of a StatefulSet publishes: `_<port name>._tcp.<service>.<namespace>.svc.
 * <zone>` has one record per pod, target `<pod>.<service>.<namespace>.svc.
 * <zone>`, stable across pod restarts (a pod's IP address is not: that is
 * why the set is made of names, never of addresses).
 *
 * A thread of its own (discover_start) looks the name up every interval
 * with the system resolver (res_nquery: /etc/resolv.conf, as in a pod) and
 * calls back when the set changed; no event loop ever waits on it.  An
 * answer that fails, or has no usable record, changes nothing: the running
 * set stays (a DNS outage must not empty a deployment), and it is logged.
 * `confirm` > 1 asks for the same new set on that many lookups in a row
 * before it is reported (edges use 3: the session servers, which apply a
 * set at their first lookup, have then had at least one interval to start
 * relaying what they no longer own).
 *
 * Hostile answers: c-ares parses the DNS message; at most DISCOVER_MAX
 * targets are used (the first ones, by name order), names must be host
 * names (hostport_name_ok), port 0 is skipped.
 */
#ifndef XEDGE_DISCOVER_H
#define XEDGE_DISCOVER_H

#include <stddef.h>

#include "core/config.h"

#define DISCOVER_MAX CONFIG_MAX_SHARDS

struct discover;

/* The callback: names[0..n) (sorted, n >= 1) is the new set; the strings
 * are the caller's to keep only during the call.  On the discover thread. */
typedef void (*discover_fn)(void *arg, const char *const *names, size_t n);

/* One lookup, blocking (start-up, or the discover thread): 0 with
 * *names (malloc'd array of malloc'd strings, sorted, *n >= 1), or
 * -ENOENT (no usable record), -EIO, -ETIMEDOUT, -ENOMEM. */
int discover_lookup(const char *srv, char ***names, size_t *n);
void discover_names_free(char **names, size_t n);

/* Start looking srv up every interval_s seconds; the running set is
 * initial[0..ninitial) (copied).  0 or -errno. */
int discover_start(struct discover **d, const char *srv, unsigned interval_s, unsigned confirm,
		   const char *const *initial, size_t ninitial, discover_fn fn, void *arg);

/* Stop and join the thread; d NULL: nothing. */
void discover_stop(struct discover *d);

/* ---- the pure part, for tests/unit/test_discover.c ---- */

/* The set in the SRV answer abuf[0..alen): as discover_lookup. */
int discover_parse(const unsigned char *abuf, int alen, char ***names, size_t *n);

#endif
