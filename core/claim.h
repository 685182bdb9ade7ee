/*
 * claim — one process per served address.  Before it opens a listener, a
 * program claims the address with a Linux abstract Unix socket named after
 * it ("\0xedge-listen-<address>"), held open for the process lifetime.  A
 * second claim of the same address in the same network namespace fails, and
 * the claimer learns the holder's pid (SO_PEERCRED).  Abstract names vanish
 * with their process: a crash leaves no stale lock.
 */
#ifndef XEDGE_CLAIM_H
#define XEDGE_CLAIM_H

#include <stddef.h>
#include <sys/types.h>

/* Claim `address` (as configured: "host:port", "[v6]:port", "unix:/path").
 * Returns the claim's descriptor (keep it open), or -1 with a one-line
 * message in err naming the address and the process that holds it;
 * `hint` ends the message ("change listeners[].address"). */
int claim_address(const char *address, const char *hint, char *err, size_t errlen);

/* The pid of the process holding the claim of `address`, or 0 when none
 * does (or it cannot be learnt).  For xedgectl: which process to signal. */
pid_t claim_owner(const char *address);

#endif
