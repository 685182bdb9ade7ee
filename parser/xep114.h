/*
 * xep114 — the checks of the Jabber Component Protocol (XEP-0114,
 * jabber:component:accept) that depend only on bytes: which component a
 * stream header asks for, the <handshake/> credentials, and the addresses of
 * a component's stanzas.  No I/O, no allocation, no globals (the SHA-1 is
 * wolfCrypt's, through tls/crypto.h); core/component.c runs the stream.
 *
 * The handshake (XEP-0114 §3): the component proves it knows the shared
 * secret by sending hex(SHA-1(stream id || secret)) as the character data of
 * <handshake/>.  The XEP says the hex is lowercase; uppercase digits are
 * accepted too (the value is the same), nothing else: exactly 40 hex digits,
 * no whitespace, no child element.  The digest is compared in constant time.
 */
#ifndef XEDGE_XEP114_H
#define XEDGE_XEP114_H

#include <stdbool.h>
#include <stddef.h>

#define XEP114_HEX_LEN 40       /* hex of a SHA-1 digest */

/* What xep114_handshake() found. */
enum xep114_hs {
	XEP114_HS_OK = 0,       /* the digest matches */
	XEP114_HS_MALFORMED,    /* not 40 hex digits, or the element has children */
	XEP114_HS_MISMATCH      /* well-formed, wrong digest */
};

/* What xep114_addr() found about one address of a component's stanza. */
enum xep114_addr {
	XEP114_ADDR_OK = 0,
	XEP114_ADDR_MISSING,    /* absent or empty: improper-addressing (RFC 6120 §4.9.3.14) */
	XEP114_ADDR_MALFORMED,  /* not a JID (RFC 7622) */
	XEP114_ADDR_FOREIGN     /* a JID outside the component's domain: invalid-from (§4.9.3.9) */
};

/*
 * Does the stream header's `to` (to[0..n), as sent) name the component
 * `name` (canonical: lowercase, no trailing dot, as config.c stores it)?
 * ASCII case and one trailing dot are ignored (RFC 7622 §3.2).
 */
bool xep114_host_is(const char *name, const char *to, size_t n);

/*
 * Check the handshake's character data text[0..n) against stream id
 * sid[0..sid_len) and secret[0..secret_len).  children: the number of child
 * elements <handshake/> had (any is malformed).
 */
enum xep114_hs xep114_handshake(const char *sid, size_t sid_len, const char *secret,
				size_t secret_len, const char *text, size_t n, unsigned children);

/* The handshake a component with this secret sends for stream id sid: 40
 * lowercase hex digits and a NUL into out[XEP114_HEX_LEN + 1].  0, or -1
 * when hashing failed. */
int xep114_digest_hex(const char *sid, size_t sid_len, const char *secret, size_t secret_len,
		      char out[XEP114_HEX_LEN + 1]);

/*
 * Check one address of a stanza from component `name`: present and a JID;
 * when `own` is true (the 'from'), its domain must also be the component's
 * domain or a subdomain of it (XEP-0114 §3: "the domain identifier portion
 * of the JID contained in the 'from' attribute MUST match the hostname of
 * the component"; subdomains are routed to it too).  has: whether the
 * attribute was present.
 */
enum xep114_addr xep114_addr(const char *name, bool own, bool has, const char *jid, size_t n);

#endif
