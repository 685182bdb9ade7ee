/*
 * sm_tab / sm_buf — the session server's two containers: an intrusive chained
 * hash table and a growable byte buffer.  See sm_int.h for the contracts.
 *
 * The hash is FNV-1a over the key, started from a per-table random seed and
 * finished with a 64-bit mixer, so bucket choice is not predictable from
 * outside.  Keys that peers choose (resources) are also bounded in number
 * per account, which keeps chains short whatever they try.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "parser/xmltag.h"
#include "sm/sm_int.h"

#define TAB_INITIAL 64

int sm_tab_init(struct sm_tab *t)
{
	t->slots = calloc(TAB_INITIAL, sizeof(*t->slots));
	if (!t->slots)
		return -ENOMEM;
	t->mask = TAB_INITIAL - 1;
	t->count = 0;
	if (getrandom(&t->seed, sizeof(t->seed), GRND_NONBLOCK) != sizeof(t->seed))
		t->seed = (uint64_t)(uintptr_t)t ^ 0x9e3779b97f4a7c15ull;
	return 0;
}

void sm_tab_fini(struct sm_tab *t)
{
	free(t->slots);
	t->slots = NULL;
	t->count = 0;
}

uint64_t sm_tab_hash(const struct sm_tab *t, const void *key, size_t n)
{
	const uint8_t *p = key;
	uint64_t h = 0xcbf29ce484222325ull ^ t->seed;

	for (size_t i = 0; i < n; i++) {
		h ^= p[i];
		h *= 0x100000001b3ull;
	}
	/* splitmix64 finaliser: FNV's low bits alone are weak bucket indexes */
	h ^= h >> 30;
	h *= 0xbf58476d1ce4e5b9ull;
	h ^= h >> 27;
	h *= 0x94d049bb133111ebull;
	h ^= h >> 31;
	return h;
}

static void tab_grow(struct sm_tab *t)
{
	size_t nslots = (t->mask + 1) * 2;
	struct sm_tab_node **slots = calloc(nslots, sizeof(*slots));

	if (!slots)
		return;     /* keep working with longer chains */
	for (size_t i = 0; i <= t->mask; i++) {
		struct sm_tab_node *n = t->slots[i], *next;

		for (; n; n = next) {
			next = n->next;
			n->next = slots[n->hash & (nslots - 1)];
			slots[n->hash & (nslots - 1)] = n;
		}
	}
	free(t->slots);
	t->slots = slots;
	t->mask = nslots - 1;
}

void sm_tab_insert(struct sm_tab *t, struct sm_tab_node *n, uint64_t hash)
{
	if (t->count >= t->mask + 1)
		tab_grow(t);
	n->hash = hash;
	n->next = t->slots[hash & t->mask];
	t->slots[hash & t->mask] = n;
	t->count++;
}

void sm_tab_remove(struct sm_tab *t, struct sm_tab_node *n)
{
	struct sm_tab_node **pp = &t->slots[n->hash & t->mask];

	for (; *pp; pp = &(*pp)->next) {
		if (*pp == n) {
			*pp = n->next;
			n->next = NULL;
			t->count--;
			return;
		}
	}
}

/* ---- sm_buf ------------------------------------------------------------ */

int sm_buf_reserve(struct sm_buf *b, size_t n)
{
	size_t used = b->len - b->off, cap;
	uint8_t *p;

	if (b->cap - b->len >= n)
		return 0;
	/* Reclaim the consumed prefix before growing. */
	if (b->off) {
		memmove(b->p, b->p + b->off, used);
		b->off = 0;
		b->len = used;
		if (b->cap - b->len >= n)
			return 0;
	}
	if (b->max && n > b->max - used)
		return -ENOBUFS;
	if (n > SIZE_MAX / 4)
		return -ENOMEM;
	cap = b->cap ? b->cap : 256;
	while (cap - used < n)
		cap *= 2;
	if (b->max && cap > b->max)
		cap = b->max;
	p = realloc(b->p, cap);
	if (!p)
		return -ENOMEM;
	b->p = p;
	b->cap = cap;
	return 0;
}

void sm_buf_add(struct sm_buf *b, const void *d, size_t n)
{
	if (b->err)
		return;
	if (sm_buf_reserve(b, n) < 0) {
		b->err = 1;
		return;
	}
	if (n)
		memcpy(b->p + b->len, d, n);
	b->len += n;
}

void sm_buf_str(struct sm_buf *b, const char *s)
{
	sm_buf_add(b, s, strlen(s));
}

void sm_buf_esc(struct sm_buf *b, const char *s, size_t n)
{
	size_t need;

	if (b->err)
		return;
	/* The worst case is "&quot;" for every byte. */
	if (n > SIZE_MAX / 6 || sm_buf_reserve(b, n * 6) < 0) {
		b->err = 1;
		return;
	}
	need = xml_escape(s, n, (char *)b->p + b->len, b->cap - b->len);
	if (need > b->cap - b->len) {
		b->err = 1;
		return;
	}
	b->len += need;
}

void sm_buf_attr(struct sm_buf *b, const char *name, const char *value)
{
	if (!value)
		return;
	sm_buf_fmt(b, " %s='", name);
	sm_buf_esc(b, value, strlen(value));
	sm_buf_str(b, "'");
}

void sm_buf_disco_item(struct sm_buf *b, const char *jid, size_t n, const char *name)
{
	sm_buf_str(b, "<item jid='");
	sm_buf_esc(b, jid, n);
	sm_buf_str(b, "'");
	sm_buf_attr(b, "name", name);
	sm_buf_str(b, "/>");
}

void sm_buf_fmt(struct sm_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->err)
		return;
	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || sm_buf_reserve(b, (size_t)n + 1) < 0) {
		b->err = 1;
		return;
	}
	va_start(ap, fmt);
	vsnprintf((char *)b->p + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

void sm_buf_consume(struct sm_buf *b, size_t n)
{
	b->off += n;
	if (b->off >= b->len)
		b->off = b->len = 0;
}

void sm_buf_clear(struct sm_buf *b)
{
	b->off = b->len = 0;
	b->err = 0;
}

void sm_buf_free(struct sm_buf *b)
{
	free(b->p);
	b->p = NULL;
	b->off = b->len = b->cap = 0;
	b->err = 0;
}

/* ---- small helpers ------------------------------------------------------- */

char *sm_memdup_z(const void *p, size_t n)
{
	char *s = malloc(n + 1);

	if (s) {
		memcpy(s, p, n);
		s[n] = '\0';
	}
	return s;
}

const char *sm_error_type(const char *cond)
{
	/* RFC 6120 §8.3.3: the type each condition's definition gives. */
	static const struct { const char *cond, *type; } types[] = {
		{ "bad-request", "modify" }, { "jid-malformed", "modify" },
		{ "not-acceptable", "modify" }, { "policy-violation", "modify" },
		{ "resource-constraint", "wait" },
		{ "not-authorized", "auth" }, { "forbidden", "auth" },
		{ "registration-required", "auth" }, { "subscription-required", "auth" },
	};

	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (strcmp(cond, types[i].cond) == 0)
			return types[i].type;
	return "cancel";    /* internal-server-error, service-unavailable, ... */
}
