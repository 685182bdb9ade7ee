/* iplimit — see iplimit.h. */
#include "core/iplimit.h"

#include <pthread.h>
#include <string.h>

#define IPLIMIT_SLOTS (1u << 17)   /* 131072 distinct addresses at once, ~4.7 MiB */
#define IPLIMIT_PROBE 64           /* linear probe length before "table full" */

struct ipent {
	uint8_t ip[16];
	uint32_t conns;        /* open connections */
	uint32_t rate_count;   /* connections accepted in second rate_sec */
	uint64_t rate_sec;
};

#define IPLIMIT_REG_SLOTS 4096      /* addresses registering in one minute, 128 KiB */

struct regent {
	uint8_t ip[16];
	uint32_t count;        /* attempts in minute `minute` */
	uint64_t minute;       /* now / 60; an entry of another minute is free */
};

static struct ipent table[IPLIMIT_SLOTS];
static struct regent regtab[IPLIMIT_REG_SLOTS];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static uint32_t hash_ip(const uint8_t ip[16])
{
	uint64_t h = 1469598103934665603ULL;   /* FNV-1a */

	for (int i = 0; i < 16; i++)
		h = (h ^ ip[i]) * 1099511628211ULL;
	return (uint32_t)(h ^ (h >> 32));
}

/* An entry is free when it holds no connection and its rate window is over. */
static int ent_free(const struct ipent *e, uint64_t now)
{
	return e->conns == 0 && e->rate_sec != now;
}

int iplimit_enter(const uint8_t ip[16], uint32_t max_conc, uint32_t per_sec, uint64_t now)
{
	uint32_t h = hash_ip(ip);
	struct ipent *hit = NULL, *spare = NULL;
	int v = IPLIMIT_OK;

	pthread_mutex_lock(&lock);
	for (uint32_t i = 0; i < IPLIMIT_PROBE; i++) {
		struct ipent *e = &table[(h + i) & (IPLIMIT_SLOTS - 1)];
		if (!ent_free(e, now) && memcmp(e->ip, ip, 16) == 0) {
			hit = e;
			break;
		}
		if (!spare && ent_free(e, now))
			spare = e;
	}
	if (!hit) {
		if (!spare) {
			v = IPLIMIT_TABLE_FULL;
			goto out;
		}
		hit = spare;
		memcpy(hit->ip, ip, 16);
		hit->conns = 0;
		hit->rate_count = 0;
		hit->rate_sec = now;
	}
	if (hit->rate_sec != now) {
		hit->rate_sec = now;
		hit->rate_count = 0;
	}
	if (hit->conns >= max_conc)
		v = IPLIMIT_TOO_MANY;
	else if (hit->rate_count >= per_sec)
		v = IPLIMIT_TOO_FAST;
	else {
		hit->conns++;
		hit->rate_count++;
	}
out:
	pthread_mutex_unlock(&lock);
	return v;
}

void iplimit_leave(const uint8_t ip[16])
{
	uint32_t h = hash_ip(ip);

	pthread_mutex_lock(&lock);
	for (uint32_t i = 0; i < IPLIMIT_PROBE; i++) {
		struct ipent *e = &table[(h + i) & (IPLIMIT_SLOTS - 1)];
		if (e->conns && memcmp(e->ip, ip, 16) == 0) {
			e->conns--;
			break;
		}
	}
	pthread_mutex_unlock(&lock);
}

int iplimit_register(const uint8_t ip[16], uint32_t per_min, uint64_t now)
{
	uint32_t h = hash_ip(ip);
	uint64_t minute = now / 60 + 1;   /* + 1: a zeroed entry is never current */
	struct regent *hit = NULL, *spare = NULL;
	int v = IPLIMIT_OK;

	pthread_mutex_lock(&lock);
	for (uint32_t i = 0; i < IPLIMIT_PROBE; i++) {
		struct regent *e = &regtab[(h + i) & (IPLIMIT_REG_SLOTS - 1)];
		if (e->minute == minute && memcmp(e->ip, ip, 16) == 0) {
			hit = e;
			break;
		}
		if (!spare && e->minute != minute)
			spare = e;
	}
	if (!hit && !spare) {
		v = IPLIMIT_TABLE_FULL;
	} else {
		if (!hit) {
			hit = spare;
			memcpy(hit->ip, ip, 16);
			hit->count = 0;
			hit->minute = minute;
		}
		if (hit->count >= per_min)
			v = IPLIMIT_TOO_FAST;
		else
			hit->count++;
	}
	pthread_mutex_unlock(&lock);
	return v;
}

const char *iplimit_verdict_str(int v)
{
	switch (v) {
	case IPLIMIT_OK: return "ok";
	case IPLIMIT_TOO_MANY: return "too many connections from this address";
	case IPLIMIT_TOO_FAST: return "connection rate from this address exceeded";
	default: return "address table full";
	}
}
