/*
 * fuzz_component — libFuzzer target for a component stream's byte-level
 * checks (parser/xep114.c) on the path the edge runs them: the framer splits
 * the input into items, xmlstage parses the header (whose `to` is matched
 * against two component names) and then each element, in the jabber:client
 * context as core/component.c sees them; the first element is checked as a
 * <handshake/> for a fixed stream id and secret, the others' addresses as a
 * component's stanzas.  The raw input also goes straight to every check.
 *
 * Invariants (__builtin_trap() otherwise): no crash, no out-of-bounds read;
 * a name matches only a `to` equal to it but for ASCII case and one trailing
 * dot; a handshake verifies exactly when it is the 40-digit hex of the right
 * digest in any case with no children; an accepted `from` is a JID whose
 * domain is the name or ends in "." + name.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "parser/framer.h"
#include "parser/jid.h"
#include "parser/xep114.h"
#include "parser/xmlstage.h"

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)
#define SID "0123456789abcdef0123456789abcdef"
#define SECRET "fuzz-secret"

static const char *const names[] = { "comp.example", "irc.localhost" };
static struct xmlstage *xs;
static char want[XEP114_HEX_LEN + 1];

static void host(const char *to, size_t n)
{
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		size_t len = strlen(names[i]), m = n;
		bool r = xep114_host_is(names[i], to, n);
		if (m && to[m - 1] == '.')
			m--;
		CHECK(r == (m == len && m > 0 && strncasecmp(to, names[i], m) == 0 &&
			    memchr(to, 0, m) == NULL));
	}
}

static void handshake(const char *text, size_t n, unsigned children)
{
	enum xep114_hs r = xep114_handshake(SID, strlen(SID), SECRET, strlen(SECRET), text, n, children);
	bool right = n == XEP114_HEX_LEN && !children && memchr(text, 0, n) == NULL &&
		     strncasecmp(text, want, n) == 0;

	CHECK(r == XEP114_HS_OK || r == XEP114_HS_MALFORMED || r == XEP114_HS_MISMATCH);
	CHECK((r == XEP114_HS_OK) == right);
}

static void address(const char *jid, size_t n, bool has)
{
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		enum xep114_addr own = xep114_addr(names[i], true, has, jid, n);
		enum xep114_addr any = xep114_addr(names[i], false, has, jid, n);
		struct jid_view v;

		CHECK(any != XEP114_ADDR_FOREIGN);
		CHECK((any == XEP114_ADDR_MISSING) == (!has || n == 0));
		if (any == XEP114_ADDR_OK) {
			CHECK(jid_parse(jid, n, &v) == 0);
			CHECK(own == XEP114_ADDR_OK || own == XEP114_ADDR_FOREIGN);
		} else {
			CHECK(own == any);
		}
		if (own == XEP114_ADDR_OK) {
			size_t len = strlen(names[i]);
			CHECK(v.domain_len >= len &&
			      strncasecmp(v.domain + v.domain_len - len, names[i], len) == 0 &&
			      (v.domain_len == len || v.domain[v.domain_len - len - 1] == '.'));
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct framer_limits lim = { .max_stanza = 65536, .max_depth = 32, .max_attrs = 64,
					   .max_name = 256, .max_value = 8192 };
	const char *p = (const char *)data;
	struct framer f;
	struct xs_header h;
	char *decls = NULL;
	size_t pos = 0, end;
	unsigned items = 0;

	if (!xs) {
		xs = xmlstage_new();
		CHECK(xs && xep114_digest_hex(SID, strlen(SID), SECRET, strlen(SECRET), want) == 0);
	}
	/* The raw bytes, to every check. */
	host(p, size);
	handshake(p, size, 0);
	address(p, size, true);

	framer_reset(&f);
	while (pos < size && items < 64) {
		int ev = framer_scan(&f, &lim, data + pos, size - pos, &end);
		struct xs_stanza s;

		if (ev == FRAMER_MORE || ev == FRAMER_ERROR)
			break;
		if (ev == FRAMER_HEADER) {
			if (decls || xmlstage_header(xs, p + pos, end, &h) != XMLSTAGE_OK)
				break;
			if (h.has_to)
				host(h.to.p, h.to.len);
			decls = strndup(h.ns_decls.p, h.ns_decls.len);
			if (!decls)
				break;
		} else if (ev == FRAMER_STANZA && decls) {
			if (xmlstage_stanza_fwd(xs, decls, strlen(decls), p + pos, end, &s) != XMLSTAGE_OK)
				break;
			if (items++ == 0) {
				handshake(s.text.p, s.text.len, s.children);
			} else {
				address(s.from.p, s.from.len, s.has_from);
				address(s.to.p, s.to.len, s.has_to);
			}
		} else if (ev == FRAMER_CLOSE) {
			break;
		}
		pos += end;
	}
	free(decls);
	return 0;
}
