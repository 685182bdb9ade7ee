/* shard — rendezvous hashing of bare JIDs over session servers (shard.h). */
#include "parser/shard.h"

uint64_t shard_fnv(uint64_t h, const void *p, size_t n)
{
	const unsigned char *s = p;

	for (size_t i = 0; i < n; i++)
		h = (h ^ s[i]) * 0x100000001b3ull;
	return h;
}

uint64_t shard_mix64(uint64_t h)
{
	h ^= h >> 30;
	h *= 0xbf58476d1ce4e5b9ull;
	h ^= h >> 27;
	h *= 0x94d049bb133111ebull;
	h ^= h >> 31;
	return h;
}

size_t shard_owner(const uint64_t *names, size_t count, const char *key, size_t n)
{
	uint64_t k, best = 0;
	size_t pick = 0;

	if (count <= 1)
		return 0;
	k = shard_fnv(SHARD_FNV_BASIS, key, n);
	for (size_t i = 0; i < count; i++) {
		uint64_t score = shard_mix64(names[i] ^ k);

		if (i == 0 || score > best) {
			best = score;
			pick = i;
		}
	}
	return pick;
}
