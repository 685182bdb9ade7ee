/*
 * shard — which session server owns a bare JID: rendezvous (highest random
 * weight) hashing, Thaler and Ravishankar 1998.
 *
 * A pure function of the key and the shard names, never seeded: every edge
 * and every session server of a deployment computes the same owner from the
 * same list, in any order.  Each shard scores the key with
 * mix64(H(name) ^ H(key)) and the highest score owns it; adding or removing
 * a shard moves only the keys it takes or had (1/n of them), the rest stay.
 * H is 64-bit FNV-1a, mix64 the splitmix64 finaliser (which makes FNV's
 * weak low bits fit for comparison).  Cost: one hash of the key plus n
 * multiplications; n is small (shards of one deployment).
 *
 * Names: "0", "1", ... for the shards inside one process (their index), the
 * configured address ("sm-0.sm:5270") for xedge-sm processes.
 */
#ifndef XEDGE_SHARD_H
#define XEDGE_SHARD_H

#include <stddef.h>
#include <stdint.h>

/* 64-bit FNV-1a of p[0..n), continuing from h (start: SHARD_FNV_BASIS). */
#define SHARD_FNV_BASIS 0xcbf29ce484222325ull
uint64_t shard_fnv(uint64_t h, const void *p, size_t n);

/* The splitmix64 finaliser. */
uint64_t shard_mix64(uint64_t h);

/* H(name), computed once per shard when the list is set up. */
static inline uint64_t shard_name_hash(const char *name, size_t n)
{
	return shard_fnv(SHARD_FNV_BASIS, name, n);
}

/* The token of the WIRE_PING an edge sends after the WIRE_SESSION_CLOSE of a
 * session it moves off a shard that no longer owns its user ("members!"):
 * the shard answers it once what it stored for that session is committed
 * (core/members.h, sm/members.c). */
#define SHARD_MOVE_TOKEN 0x6d656d6265727321ull

/* The owner of key[0..n) (a canonical bare JID) among the shards whose name
 * hashes are names[0..count): its index; 0 when count <= 1. */
size_t shard_owner(const uint64_t *names, size_t count, const char *key, size_t n);

#endif
