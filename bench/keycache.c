/*
 * keycache — an optional on-disk cache of SCRAM ClientKey/ServerKey per
 * (hash, salt, iteration count, password), as RFC 5802 §5.1 allows a client.
 *
 * Why: the client's PBKDF2 costs 2 ms (SHA-1) to 4 ms (SHA-256) of CPU per
 * login in Debian's wolfSSL, which would cap a 2-core bench at a few hundred
 * SCRAM logins per second and measure the bench instead of the server.  The
 * salts the server stores are stable across runs, so the second run of the
 * same user set pays only HMACs.
 *
 * File: one entry per line, "<hash-id> <salt b64> <iter> <pwtag hex>
 * <client-key b64> <server-key b64>", where pwtag is the first 8 bytes of
 * SHA-256(password) so a changed --password does not reuse stale keys.
 * Unreadable lines are skipped.  New entries are appended at keycache_close.
 *
 * Thread-safe: one mutex around a chained hash table; a lookup happens once
 * per SCRAM login, far from any hot path.
 */
#include "bench/bench.h"
#include "bench/scram_client.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define KC_BUCKETS 65536u

struct kc_entry {
	struct kc_entry *next;
	uint64_t h;
	int hash;
	uint32_t iter;
	uint8_t salt_len;
	bool fresh;                     /* not yet in the file */
	uint8_t salt[SCRAM_SALT_MAX];
	struct scram_keys k;
};

static pthread_mutex_t kc_mu = PTHREAD_MUTEX_INITIALIZER;
static struct kc_entry **kc_tab;
static char *kc_path;
static uint8_t kc_pwtag[8];
static char kc_pwtag_hex[17];

static uint64_t kc_hash(int hash, const uint8_t *salt, size_t slen, uint32_t iter)
{
	uint64_t h = 1469598103934665603ull ^ (uint64_t)hash ^ ((uint64_t)iter << 8);

	for (size_t i = 0; i < slen; i++)
		h = (h ^ salt[i]) * 1099511628211ull;
	return h;
}

static struct kc_entry *kc_find(uint64_t h, int hash, const uint8_t *salt, size_t slen, uint32_t iter)
{
	for (struct kc_entry *e = kc_tab[h % KC_BUCKETS]; e; e = e->next)
		if (e->h == h && e->hash == hash && e->iter == iter && e->salt_len == slen &&
		    memcmp(e->salt, salt, slen) == 0)
			return e;
	return NULL;
}

static void kc_insert(int hash, const uint8_t *salt, size_t slen, uint32_t iter,
		      const struct scram_keys *k, bool fresh)
{
	uint64_t h = kc_hash(hash, salt, slen, iter);
	struct kc_entry *e;

	if (slen > SCRAM_SALT_MAX || kc_find(h, hash, salt, slen, iter))
		return;
	e = calloc(1, sizeof(*e));
	if (!e)
		return;
	e->h = h;
	e->hash = hash;
	e->iter = iter;
	e->salt_len = (uint8_t)slen;
	e->fresh = fresh;
	memcpy(e->salt, salt, slen);
	e->k = *k;
	e->next = kc_tab[h % KC_BUCKETS];
	kc_tab[h % KC_BUCKETS] = e;
}

static void kc_load_line(char *line)
{
	char *f[6], *save = NULL;
	uint8_t salt[SCRAM_SALT_MAX];
	struct scram_keys k;
	long sl;
	int hash, n = 0;
	size_t dl;

	for (char *p = strtok_r(line, " \t\n", &save); p && n < 6; p = strtok_r(NULL, " \t\n", &save))
		f[n++] = p;
	if (n != 6 || strcmp(f[3], kc_pwtag_hex) != 0)
		return;
	hash = atoi(f[0]);
	dl = crypto_digest_len(hash);
	sl = crypto_b64_decode(f[1], strlen(f[1]), salt, sizeof(salt));
	if (!dl || sl <= 0 ||
	    crypto_b64_decode(f[4], strlen(f[4]), k.client_key, sizeof(k.client_key)) != (long)dl ||
	    crypto_b64_decode(f[5], strlen(f[5]), k.server_key, sizeof(k.server_key)) != (long)dl)
		return;
	kc_insert(hash, salt, (size_t)sl, (uint32_t)strtoul(f[2], NULL, 10), &k, false);
}

int keycache_open(const char *path, const char *password)
{
	uint8_t d[32];
	char line[512];
	FILE *f;

	kc_tab = calloc(KC_BUCKETS, sizeof(*kc_tab));
	kc_path = strdup(path);
	if (!kc_tab || !kc_path || crypto_hash(CRYPTO_SHA256, password, strlen(password), d) < 0)
		return -ENOMEM;
	memcpy(kc_pwtag, d, sizeof(kc_pwtag));
	for (int i = 0; i < 8; i++)
		snprintf(kc_pwtag_hex + 2 * i, 3, "%02x", kc_pwtag[i]);
	f = fopen(path, "r");
	if (!f)
		return errno == ENOENT ? 0 : -errno;
	while (fgets(line, sizeof(line), f))
		kc_load_line(line);
	fclose(f);
	return 0;
}

bool keycache_get(int hash, const uint8_t *salt, size_t slen, uint32_t iter, struct scram_keys *k)
{
	struct kc_entry *e;

	if (!kc_tab)
		return false;
	pthread_mutex_lock(&kc_mu);
	e = kc_find(kc_hash(hash, salt, slen, iter), hash, salt, slen, iter);
	if (e)
		*k = e->k;
	pthread_mutex_unlock(&kc_mu);
	return e != NULL;
}

void keycache_put(int hash, const uint8_t *salt, size_t slen, uint32_t iter,
		  const struct scram_keys *k)
{
	if (!kc_tab)
		return;
	pthread_mutex_lock(&kc_mu);
	kc_insert(hash, salt, slen, iter, k, true);
	pthread_mutex_unlock(&kc_mu);
}

int keycache_close(void)
{
	FILE *f = NULL;
	int n = 0;

	if (!kc_tab)
		return 0;
	for (unsigned b = 0; b < KC_BUCKETS; b++) {
		struct kc_entry *e = kc_tab[b], *next;
		for (; e; e = next) {
			next = e->next;
			if (e->fresh) {
				char s[2 * SCRAM_SALT_MAX], ck[64], sk[64];
				size_t dl = crypto_digest_len(e->hash);
				if (!f) {
					/* ClientKey logs in as the user: owner-only. */
					int fd = open(kc_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
					f = fd >= 0 ? fdopen(fd, "a") : NULL;
					if (fd >= 0 && !f)
						close(fd);
				}
				if (f && crypto_b64_encode(e->salt, e->salt_len, s, sizeof(s)) > 0 &&
				    crypto_b64_encode(e->k.client_key, dl, ck, sizeof(ck)) > 0 &&
				    crypto_b64_encode(e->k.server_key, dl, sk, sizeof(sk)) > 0) {
					fprintf(f, "%d %s %u %s %s %s\n", e->hash, s, e->iter, kc_pwtag_hex,
						ck, sk);
					n++;
				}
			}
			explicit_bzero(e, sizeof(*e));
			free(e);
		}
	}
	if (f && fclose(f) != 0)
		n = -errno;
	free(kc_tab);
	free(kc_path);
	kc_tab = NULL;
	return n;
}
