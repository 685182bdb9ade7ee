/*
 * proxy — see proxy.h for the formats, the bounds and the contract.
 *
 * v1 is read by a cursor that never looks past min(n, PROXY_V1_MAX): every
 * token reader returns MORE when it runs out of bytes and BAD on the first
 * byte that cannot continue the token, so a broken line is refused at its
 * first wrong byte and a good one is "need more" until its LF arrives.  MORE
 * with 107 bytes in hand means the line is too long.
 *
 * v2 is judged field by field as its 16 fixed bytes arrive, then as a whole
 * once 16 + len bytes are here (the spec forbids parsing a partial address
 * block).  For LOCAL and for an UNSPEC family or transport the spec says to
 * ignore the block, so its bytes are skipped unread; after a known address
 * block (TCP/UDP over IPv4/IPv6, UNIX) the rest must be whole TLVs.
 */
#include "parser/proxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

enum { OK = 0, MORE = 1, BAD = 2 };

static const uint8_t V2SIG[12] = { 0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
				   0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A };

/* ---- v1 ------------------------------------------------------------------ */

struct cur {
	const uint8_t *p;
	size_t lim;   /* min(n, PROXY_V1_MAX): never read at or past it */
	size_t i;
};

/* Match the literal s at the cursor: OK (advanced), MORE (a prefix), BAD. */
static int lit(struct cur *c, const char *s)
{
	size_t len = strlen(s);

	for (size_t k = 0; k < len; k++) {
		if (c->i + k >= c->lim)
			return MORE;
		if (c->p[c->i + k] != (uint8_t)s[k])
			return BAD;
	}
	c->i += len;
	return OK;
}

/* Is s still possible at the cursor (all available bytes match)? */
static int could_be(const struct cur *c, const char *s)
{
	size_t len = strlen(s);

	for (size_t k = 0; k < len && c->i + k < c->lim; k++)
		if (c->p[c->i + k] != (uint8_t)s[k])
			return 0;
	return 1;
}

/*
 * A decimal number <= max without leading zeroes, ended by the byte term
 * (consumed).  Refused as soon as it exceeds max, so a long run of digits
 * fails early.
 */
static int dec(struct cur *c, uint32_t max, uint8_t term, uint32_t *val)
{
	uint32_t v = 0;
	size_t digits = 0;

	for (;;) {
		uint8_t b;

		if (c->i >= c->lim)
			return MORE;
		b = c->p[c->i];
		if (b >= '0' && b <= '9') {
			if (digits == 1 && v == 0)
				return BAD;   /* leading zero */
			v = v * 10 + (uint32_t)(b - '0');
			if (v > max)
				return BAD;
			digits++;
			c->i++;
			continue;
		}
		if (digits == 0 || b != term)
			return BAD;
		c->i++;
		*val = v;
		return OK;
	}
}

static int ip4(struct cur *c, uint8_t last_term, struct in_addr *a)
{
	uint8_t o[4];
	uint32_t v;
	int r;

	for (int k = 0; k < 4; k++) {
		r = dec(c, 255, k < 3 ? '.' : last_term, &v);
		if (r != OK)
			return r;
		o[k] = (uint8_t)v;
	}
	memcpy(&a->s_addr, o, 4);   /* already network order */
	return OK;
}

static int is_hex(uint8_t b)
{
	return (b >= '0' && b <= '9') || (b >= 'a' && b <= 'f') || (b >= 'A' && b <= 'F');
}

/* Hex digits and colons only, at most 39, ended by a space; then inet_pton. */
static int ip6(struct cur *c, struct in6_addr *a)
{
	char tmp[40];
	size_t k = 0;

	for (;;) {
		uint8_t b;

		if (c->i >= c->lim)
			return MORE;
		b = c->p[c->i];
		if (b == ' ')
			break;
		if (!is_hex(b) && b != ':')
			return BAD;
		if (k == 39)
			return BAD;
		tmp[k++] = (char)b;
		c->i++;
	}
	if (k < 2)
		return BAD;
	c->i++;   /* the space */
	tmp[k] = '\0';
	return inet_pton(AF_INET6, tmp, a) == 1 ? OK : BAD;
}

static int crlf(struct cur *c)
{
	return lit(c, "\r\n");
}

static void set4(struct sockaddr_storage *ss, struct in_addr a, uint16_t port)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;

	sin->sin_family = AF_INET;
	sin->sin_addr = a;
	sin->sin_port = htons(port);
}

static void set6(struct sockaddr_storage *ss, const struct in6_addr *a, uint16_t port)
{
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

	sin6->sin6_family = AF_INET6;
	sin6->sin6_addr = *a;
	sin6->sin6_port = htons(port);
}

/* "UNKNOWN" was matched: CRLF, or a space and anything but CR/LF up to CRLF. */
static int v1_unknown_rest(struct cur *c)
{
	if (c->i >= c->lim)
		return MORE;
	if (c->p[c->i] == '\r')
		return crlf(c);
	if (c->p[c->i] != ' ')
		return BAD;
	for (c->i++; c->i < c->lim; c->i++) {
		if (c->p[c->i] == '\n')
			return BAD;   /* a LF without its CR */
		if (c->p[c->i] == '\r')
			return crlf(c);
	}
	return MORE;
}

static int v1_body(struct cur *c, struct proxy_hdr *out)
{
	struct in_addr s4, d4;
	struct in6_addr s6, d6;
	uint32_t sp, dp;
	int r, six;

	if ((r = lit(c, "PROXY ")) != OK)
		return r;
	if (could_be(c, "UNKNOWN")) {
		if ((r = lit(c, "UNKNOWN")) != OK)
			return r;
		if ((r = v1_unknown_rest(c)) != OK)
			return r;
		out->command = PROXY_CMD_UNKNOWN;
		out->family = PROXY_FAM_UNSPEC;
		return OK;
	}
	if (could_be(c, "TCP4 "))
		six = 0;
	else if (could_be(c, "TCP6 "))
		six = 1;
	else
		return BAD;
	if ((r = lit(c, six ? "TCP6 " : "TCP4 ")) != OK)
		return r;
	if (six) {
		if ((r = ip6(c, &s6)) != OK || (r = ip6(c, &d6)) != OK)
			return r;
	} else {
		if ((r = ip4(c, ' ', &s4)) != OK || (r = ip4(c, ' ', &d4)) != OK)
			return r;
	}
	if ((r = dec(c, 65535, ' ', &sp)) != OK)
		return r;
	if ((r = dec(c, 65535, '\r', &dp)) != OK)
		return r;
	c->i--;   /* dec consumed the CR: read the pair as one */
	if ((r = crlf(c)) != OK)
		return r;
	out->command = PROXY_CMD_PROXY;
	out->has_addr = 1;
	out->src_port = (uint16_t)sp;
	out->dst_port = (uint16_t)dp;
	if (six) {
		out->family = PROXY_FAM_TCP6;
		set6(&out->src, &s6, out->src_port);
		set6(&out->dst, &d6, out->dst_port);
	} else {
		out->family = PROXY_FAM_TCP4;
		set4(&out->src, s4, out->src_port);
		set4(&out->dst, d4, out->dst_port);
	}
	return OK;
}

static long v1_parse(const uint8_t *p, size_t n, struct proxy_hdr *out)
{
	struct cur c = { p, n < PROXY_V1_MAX ? n : PROXY_V1_MAX, 0 };
	int r;

	out->version = 1;
	r = v1_body(&c, out);
	if (r == OK)
		return (long)c.i;
	if (r == BAD)
		return -PROXY_EBAD;
	return n >= PROXY_V1_MAX ? -PROXY_ETOOLONG : 0;
}

/* ---- v2 ------------------------------------------------------------------ */

/* Bitwise CRC32c, reflected polynomial 0x82F63B78: a header is <= 536 bytes,
 * so a table would buy nothing worth its cache lines. */
static uint32_t crc_bytes(uint32_t crc, const uint8_t *p, size_t n, int zero)
{
	for (size_t i = 0; i < n; i++) {
		crc ^= zero ? 0 : p[i];
		for (int k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1)));
	}
	return crc;
}

uint32_t proxy_crc32c(const uint8_t *p, size_t n)
{
	return ~crc_bytes(0xFFFFFFFFu, p, n, 0);
}

/* Bytes of the address block for the family/transport byte; 0 for UNSPEC. */
static size_t v2_addr_len(uint8_t fam)
{
	uint8_t af = fam >> 4, tp = fam & 0x0F;

	if (af == 0 || tp == 0)
		return 0;
	return af == 1 ? 12 : af == 2 ? 36 : 216;
}

static int v2_tlvs(const uint8_t *p, size_t off, size_t end)
{
	while (off < end) {
		uint8_t type;
		size_t len;

		if (end - off < 3)
			return -PROXY_EBAD;
		type = p[off];
		len = ((size_t)p[off + 1] << 8) | p[off + 2];
		if (len > end - off - 3)
			return -PROXY_EBAD;
		if (type == PROXY_TLV_CRC32C) {
			uint32_t want, crc;
			size_t v = off + 3;

			if (len != 4)
				return -PROXY_EBAD;
			want = ((uint32_t)p[v] << 24) | ((uint32_t)p[v + 1] << 16) |
			       ((uint32_t)p[v + 2] << 8) | p[v + 3];
			/* The checksum of the header with its own field zeroed. */
			crc = crc_bytes(0xFFFFFFFFu, p, v, 0);
			crc = crc_bytes(crc, p, 4, 1);
			crc = ~crc_bytes(crc, p + v + 4, end - v - 4, 0);
			if (crc != want)
				return -PROXY_ECRC;
		} else if (type == PROXY_TLV_UNIQUE_ID && len > PROXY_UNIQUE_ID_MAX) {
			return -PROXY_EBAD;
		}
		off += 3 + len;
	}
	return 0;
}

static long v2_parse(const uint8_t *p, size_t n, struct proxy_hdr *out)
{
	size_t k = n < sizeof(V2SIG) ? n : sizeof(V2SIG);
	size_t len, alen, total;
	uint8_t cmd, fam;
	int r;

	if (memcmp(p, V2SIG, k) != 0)
		return -PROXY_EBAD;
	if (n < 13)
		return 0;
	if ((p[12] >> 4) != 2 || (p[12] & 0x0F) > 1)
		return -PROXY_EBAD;
	cmd = p[12] & 0x0F;
	if (n < 14)
		return 0;
	fam = p[13];
	/* LOCAL ignores the family byte (§2.2); PROXY must name a defined one. */
	if (cmd == PROXY_CMD_PROXY && ((fam >> 4) > 3 || (fam & 0x0F) > 2))
		return -PROXY_EBAD;
	if (n < 16)
		return 0;
	len = ((size_t)p[14] << 8) | p[15];
	if (len > PROXY_V2_MAX_LEN)
		return -PROXY_ETOOLONG;
	alen = cmd == PROXY_CMD_PROXY ? v2_addr_len(fam) : 0;
	if (len < alen)
		return -PROXY_EBAD;
	total = PROXY_V2_FIXED + len;
	if (n < total)
		return 0;

	out->version = 2;
	out->command = cmd;
	out->family = PROXY_FAM_UNSPEC;
	if (cmd == PROXY_CMD_LOCAL || alen == 0)
		return (long)total;   /* block ignored, as the spec says */

	switch (fam) {
	case 0x11:
	case 0x21: {
		const uint8_t *a = p + PROXY_V2_FIXED;
		size_t al = fam == 0x11 ? 4 : 16;

		out->src_port = (uint16_t)((a[2 * al] << 8) | a[2 * al + 1]);
		out->dst_port = (uint16_t)((a[2 * al + 2] << 8) | a[2 * al + 3]);
		if (fam == 0x11) {
			struct in_addr s, d;
			memcpy(&s.s_addr, a, 4);
			memcpy(&d.s_addr, a + 4, 4);
			set4(&out->src, s, out->src_port);
			set4(&out->dst, d, out->dst_port);
			out->family = PROXY_FAM_TCP4;
		} else {
			struct in6_addr s, d;
			memcpy(&s, a, 16);
			memcpy(&d, a + 16, 16);
			set6(&out->src, &s, out->src_port);
			set6(&out->dst, &d, out->dst_port);
			out->family = PROXY_FAM_TCP6;
		}
		out->has_addr = 1;
		break;
	}
	case 0x12:
		out->family = PROXY_FAM_UDP4;
		break;
	case 0x22:
		out->family = PROXY_FAM_UDP6;
		break;
	default:   /* 0x31, 0x32 */
		out->family = PROXY_FAM_UNIX;
		break;
	}
	if ((r = v2_tlvs(p, PROXY_V2_FIXED + alen, total)) != 0) {
		out->has_addr = 0;
		return r;
	}
	out->tlv_off = (uint16_t)(PROXY_V2_FIXED + alen);
	out->tlv_len = (uint16_t)(len - alen);
	return (long)total;
}

/* ---- entry --------------------------------------------------------------- */

long proxy_parse(const uint8_t *p, size_t n, struct proxy_hdr *out)
{
	if (p == NULL || out == NULL)
		return -PROXY_EBAD;
	memset(out, 0, sizeof(*out));
	if (n == 0)
		return 0;
	if (p[0] == 'P')
		return v1_parse(p, n, out);
	if (p[0] == V2SIG[0])
		return v2_parse(p, n, out);
	return -PROXY_EBAD;
}

const char *proxy_strerror(long err)
{
	switch (err < 0 ? -err : err) {
	case PROXY_EBAD:
		return "bad header";
	case PROXY_ETOOLONG:
		return "header too long";
	case PROXY_ECRC:
		return "bad checksum";
	default:
		return "?";
	}
}
