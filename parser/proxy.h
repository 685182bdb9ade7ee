/*
 * proxy — the PROXY protocol header (HAProxy, "The PROXY protocol", versions
 * 1 and 2, doc/proxy-protocol.txt of 2020/03/05), receiver side.
 *
 * A pure codec: no I/O, no allocation, no globals.  A listener configured
 * for the PROXY protocol (never auto-detected: spec §5) calls proxy_parse()
 * on the first bytes of the connection until it returns non-zero; the
 * header is then buf[0..ret) and what follows belongs to the next layer
 * (TLS or XMPP).  The parser keeps no state between calls: give it the whole
 * buffer received so far each time.  It decides as early as the bytes allow:
 * the first byte that cannot begin or continue a valid header is an error,
 * so a client that is not a proxy is refused after one read.
 *
 * Bounds (both hold before the header is complete, so a caller never needs
 * to buffer more than PROXY_MAX_HDR bytes to hear a verdict):
 *   v1: the line, CRLF included, is at most PROXY_V1_MAX (107) bytes (§2.1);
 *   v2: 16 fixed bytes + len, with len <= PROXY_V2_MAX_LEN (520), so the
 *       whole header is at most 536 bytes: the size §2 says both formats
 *       are designed to fit in (576 - 40, the smallest TCP segment every host
 *       must accept).  A larger len is refused as soon as byte 16 arrives.
 *
 * What is checked, to the letter of the spec:
 *   v1: "PROXY" SP ("TCP4" | "TCP6") SP src SP dst SP sport SP dport CRLF,
 *       exactly one space between fields; IPv4 as four decimal numbers
 *       0..255 without leading zeroes; IPv6 made of hex digits and colons
 *       only (at most 39 characters), decoded by inet_pton() to exactly 128
 *       bits; ports decimal 0..65535 without leading zeroes ("0" itself is
 *       allowed).  "PROXY UNKNOWN" may be followed by CRLF directly or by a
 *       space and anything up to the CRLF, which is ignored.  A CR not
 *       followed by LF, or a LF without CR, is an error.
 *   v2: the 12-byte signature; version 2; command LOCAL (0) or PROXY (1);
 *       address family 0..3 and transport 0..2 (other nibbles are refused);
 *       len large enough for the address block the family announces (12, 36
 *       or 216 bytes); the bytes after the address block must be a sequence
 *       of whole TLVs; a PP2_TYPE_CRC32C TLV must be 4 bytes and match the
 *       CRC32c of the header (§2.2.3); a PP2_TYPE_UNIQUE_ID is at most 128
 *       bytes (§2.2.5).  Other TLVs are skipped; they are reported as an
 *       offset and length so a caller may walk them.
 *
 * Addresses are reported only when the header carries a TCP connection's
 * endpoints: v1 TCP4/TCP6, v2 PROXY with TCP over IPv4/IPv6.  For v2 LOCAL
 * (its family byte is ignored, §2.2), v1 UNKNOWN, and the v2 families the
 * edge does not serve (UNSPEC, UDP, UNIX) has_addr is 0 and the caller keeps
 * the socket's own addresses, as the spec's fallback to UNSPEC requires.
 */
#ifndef XEDGE_PROXY_H
#define XEDGE_PROXY_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define PROXY_V1_MAX 107          /* longest v1 line, CRLF included (§2.1) */
#define PROXY_V2_FIXED 16         /* signature, ver/cmd, family, len */
#define PROXY_V2_MAX_LEN 520      /* address block + TLVs; header <= 536 bytes */
#define PROXY_MAX_HDR (PROXY_V2_FIXED + PROXY_V2_MAX_LEN)
#define PROXY_UNIQUE_ID_MAX 128   /* §2.2.5 */

/* PP2 TLV types we interpret (§2.2). */
#define PROXY_TLV_CRC32C 0x03
#define PROXY_TLV_UNIQUE_ID 0x05

/* Error codes; proxy_parse() returns their negation. */
enum proxy_err {
	PROXY_EBAD = 1,    /* not a v1 or v2 header, or a field violates the spec */
	PROXY_ETOOLONG = 2,/* v1 line without CRLF in 107 bytes, or v2 len > PROXY_V2_MAX_LEN */
	PROXY_ECRC = 3     /* v2 CRC32C TLV does not match the header */
};

enum proxy_cmd {
	PROXY_CMD_LOCAL = 0,   /* v2 LOCAL: health check from the proxy itself */
	PROXY_CMD_PROXY = 1,   /* relayed connection (v1 TCP4/TCP6, v2 PROXY) */
	PROXY_CMD_UNKNOWN = 2  /* v1 "PROXY UNKNOWN" */
};

enum proxy_family {
	PROXY_FAM_UNSPEC = 0,
	PROXY_FAM_TCP4,
	PROXY_FAM_TCP6,
	PROXY_FAM_UDP4,        /* v2 only; no addresses reported */
	PROXY_FAM_UDP6,        /* v2 only; no addresses reported */
	PROXY_FAM_UNIX         /* v2 only, stream or datagram; no addresses reported */
};

struct proxy_hdr {
	uint8_t version;       /* 1 or 2 */
	uint8_t command;       /* enum proxy_cmd */
	uint8_t family;        /* enum proxy_family; UNSPEC for LOCAL and v1 UNKNOWN */
	uint8_t has_addr;      /* 1: src/dst below hold the client's connection */
	uint16_t src_port;     /* host order; also in src (network order) */
	uint16_t dst_port;
	uint16_t tlv_off;      /* v2: TLVs are buf[tlv_off .. tlv_off + tlv_len) */
	uint16_t tlv_len;      /* 0 for v1 and for v2 without TLVs */
	struct sockaddr_storage src;  /* AF_INET / AF_INET6 when has_addr, else zeroed */
	struct sockaddr_storage dst;
};

/*
 * Parse a PROXY header at the start of p[0..n).
 * Returns the header length (> 0) and fills *out; 0 when the bytes so far are
 * a valid beginning of a header but it is not complete (then n is below
 * PROXY_MAX_HDR and *out is unspecified); or -PROXY_E* when p does not start
 * with a valid header (the connection must be closed).  The result depends
 * only on p[0..n): calling again with more bytes of the same stream gives 0
 * until the header is complete, then always the same length.  Nothing is
 * retained; *out is owned by the caller and points to nothing in p.
 */
long proxy_parse(const uint8_t *p, size_t n, struct proxy_hdr *out);

/* "bad header", "header too long", "bad checksum"; "?" for other values. */
const char *proxy_strerror(long err);

/* The CRC32c (Castagnoli, RFC 4960 appendix B) of p[0..n), for tests and senders. */
uint32_t proxy_crc32c(const uint8_t *p, size_t n);

#endif
