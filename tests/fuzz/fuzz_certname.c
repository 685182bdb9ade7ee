/*
 * fuzz_certname — libFuzzer target for tls/certname.c.
 *
 * The input is read twice.  As a certificate: certname_extract must not
 * misbehave; what it keeps must walk as whole records of a known kind with
 * names of the normal form (lowercase letters, digits, '-', '_', '.', and
 * '*' only as a whole left-most label), and every name without a wildcard
 * must match itself as a reference (an SRV-ID for its own service), unless
 * it is an IPv4-like name, which never does.  As text "presented\nreference":
 * certname_dns_match must not misbehave, and when it matches, the
 * reference in compared form must equal the presented name or be one label
 * longer than a wildcard's base; certname_domain must be idempotent.
 * Otherwise __builtin_trap().
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tls/certname.h"

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

static int name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';
}

static int ipv4_like(const char *s, size_t n)
{
	size_t i = n;

	while (i && s[i - 1] != '.')
		i--;
	for (size_t k = i; k < n; k++)
		if (s[k] < '0' || s[k] > '9')
			return 0;
	return 1;
}

static void check_cert(const uint8_t *der, size_t size)
{
	static uint8_t ids[CERTNAME_MAX];
	struct certname_info info;
	char ref[CERTNAME_DOMAIN_MAX + 1];
	size_t at = 0, len;
	const char *name;
	int kind, n = certname_extract(der, size, ids, sizeof(ids), &info);

	CHECK(n >= -1 && n <= (int)sizeof(ids));
	if (n < 0) {
		CHECK(info.dropped == 0 && !info.self_issued);
		return;
	}
	while (certname_next(ids, (size_t)n, &at, &kind, &name, &len)) {
		size_t base = 0;
		CHECK(kind >= CERTNAME_DNS && kind <= CERTNAME_CN);
		CHECK(len > 0 && len <= CERTNAME_DOMAIN_MAX);
		if (kind == CERTNAME_SRV) {
			const char *dot = memchr(name, '.', len);
			CHECK(name[0] == '_' && dot && dot > name + 1);
			base = (size_t)(dot - name) + 1;
		}
		if (len - base >= 2 && name[base] == '*' && name[base + 1] == '.') {
			CHECK(kind != CERTNAME_XMPP);
			for (size_t i = base + 2; i < len; i++)
				CHECK(name_char(name[i]));
			continue;
		}
		for (size_t i = base; i < len; i++)
			CHECK(name_char(name[i]));
		memcpy(ref, name + base, len - base);
		ref[len - base] = '\0';
		if (kind == CERTNAME_SRV) {
			char svc[CERTNAME_DOMAIN_MAX];
			memcpy(svc, name + 1, base - 2);
			svc[base - 2] = '\0';
			CHECK(certname_match(ids, (size_t)n, ref, svc) == !ipv4_like(ref, len - base));
		} else {
			CHECK(certname_match(ids, (size_t)n, ref, "xmpp-server") == !ipv4_like(ref, len - base));
		}
	}
	CHECK(at == (size_t)n);
}

static void check_text(const uint8_t *data, size_t size)
{
	const uint8_t *nl = memchr(data, '\n', size);
	char a[CERTNAME_DOMAIN_MAX + 1], b[CERTNAME_DOMAIN_MAX + 1], p[CERTNAME_DOMAIN_MAX + 1];
	size_t plen, rlen;
	int la, lb, lp;

	if (!nl)
		return;
	plen = (size_t)(nl - data);
	rlen = size - plen - 1;
	/* An exact-size copy each, so any over-read is caught by ASan. */
	char *pres = malloc(plen ? plen : 1), *refs = malloc(rlen ? rlen : 1);
	if (!pres || !refs) {
		free(pres);
		free(refs);
		return;
	}
	memcpy(pres, data, plen);
	memcpy(refs, nl + 1, rlen);
	la = certname_domain(refs, rlen, a, sizeof(a));
	if (la >= 0) {
		lb = certname_domain(a, (size_t)la, b, sizeof(b));
		CHECK(lb == la && memcmp(a, b, (size_t)la) == 0);
	}
	if (certname_dns_match(pres, plen, refs, rlen)) {
		CHECK(la > 0);
		lp = certname_domain(pres[0] == '*' && plen > 1 ? pres + 2 : pres,
				     pres[0] == '*' && plen > 1 ? plen - 2 : plen, p, sizeof(p));
		CHECK(lp > 0);
		if (pres[0] == '*') {
			const char *dot = memchr(a, '.', (size_t)la);
			CHECK(dot && (size_t)(a + la - dot - 1) == (size_t)lp && memcmp(dot + 1, p, (size_t)lp) == 0);
		} else {
			CHECK(lp == la && memcmp(a, p, (size_t)la) == 0);
		}
	}
	free(pres);
	free(refs);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *der = malloc(size ? size : 1);

	if (!der)
		return 0;
	memcpy(der, data, size);
	check_cert(der, size);
	free(der);
	check_text(data, size);
	return 0;
}
