/*
 * certname — the identities an X.509 leaf certificate presents, and whether
 * they name a given XMPP server (RFC 6125 §6 as RFC 6120 §13.7.1.2 and
 * §13.7.2 and RFC 7590 apply it; XEP-0178 §3 for SASL EXTERNAL between
 * servers).
 *
 * A pure codec: no I/O, no globals, no allocation, no wolfSSL.  The
 * certificate comes from the network: the DER walker reads only what it
 * needs (tbsCertificate's issuer, subject and subjectAltName extension),
 * refuses anything that is not DER (indefinite or non-minimal lengths,
 * multi-byte tags, elements running past their parent, a second
 * subjectAltName extension) and never reads outside the given bytes.
 *
 * Identities kept (names in lowercase ASCII, A-labels, no trailing dot):
 *   CERTNAME_DNS   SAN dNSName (DNS-ID), possibly "*.example.com";
 *   CERTNAME_SRV   SAN otherName id-on-dnsSRV 1.3.6.1.5.5.7.8.7 (SRV-ID,
 *                  RFC 4985, IA5String), e.g. "_xmpp-server.example.com";
 *   CERTNAME_XMPP  SAN otherName id-on-xmppAddr 1.3.6.1.5.5.7.8.5 (RFC 6120
 *                  §13.7.1.4, UTF8String) when it is a domain-only JID, as a
 *                  server's is: the domain, U-labels converted to A-labels;
 *   CERTNAME_CN    the subject's CN (CN-ID: an RDN of exactly one CN whose
 *                  value has the form of a domain name), only when the SAN
 *                  holds no DNS-ID, SRV-ID, URI-ID or XmppAddr (§6.4.4).
 * Presented names that can never match (not a domain name, a wildcard other
 * than a whole left-most label over two or more labels) are not kept.
 *
 * Matching a reference domain (§6.4): ASCII case-insensitive, label by
 * label; the reference's U-labels become A-labels first (RFC 3492; the
 * domain is taken as already prepared, RFC 7622 §3.2, so no Unicode
 * mapping is done here); a presented "*" matches exactly one whole
 * non-empty left-most label and only over at least two further labels
 * ("*.com" matches nothing); "w*", "*w", "xn--*" and "a.*.example" match
 * nothing.  An SRV-ID matches when its service is the one asked for and its
 * name matches by the same rules (§6.5.1); an XmppAddr only exactly.  A
 * reference whose last label is all digits (an IPv4 literal) never matches.
 */
#ifndef XEDGE_TLS_CERTNAME_H
#define XEDGE_TLS_CERTNAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Bytes of identities kept per certificate (certname_extract's cap). */
#define CERTNAME_MAX 4096u
/* Longest domain name (RFC 1035 §2.3.4, without the trailing dot). */
#define CERTNAME_DOMAIN_MAX 253u

enum certname_kind {
	CERTNAME_DNS = 1,
	CERTNAME_SRV,
	CERTNAME_XMPP,
	CERTNAME_CN,
};

/* What certname_extract saw besides the identities it kept. */
struct certname_info {
	bool self_issued;    /* subject and issuer are the same name */
	uint16_t dropped;    /* identities not kept: unusable names, or no room */
};

/*
 * Read the leaf certificate der[0..len) and write its identities into
 * out[0..cap) as records { kind, length, name[length] } (one byte each for
 * kind and length).  Returns the bytes written (0: no identity), or -1 when
 * der is not a certificate this walker reads (then *info is zeroed).
 * Records that do not fit are counted in info->dropped, never cut.
 */
int certname_extract(const uint8_t *der, size_t len, uint8_t *out, size_t cap,
		     struct certname_info *info);

/*
 * Walk records written by certname_extract: the record at offset *at of
 * ids[0..n) into *kind, *name (not NUL-terminated) and *name_len, *at
 * moving past it.  Returns false at the end (or on a record that does not
 * fit, which certname_extract never writes).
 */
bool certname_next(const uint8_t *ids, size_t n, size_t *at, int *kind, const char **name,
		   size_t *name_len);

/*
 * Whether the identities ids[0..n) name `domain` (NUL-terminated, a JID
 * domainpart) for `service` (an SRV service without its underscore:
 * "xmpp-server" for server-to-server streams): a DNS-ID, CN-ID or SRV-ID
 * for that service matching it, or an XmppAddr equal to it.
 */
bool certname_match(const uint8_t *ids, size_t n, const char *domain, const char *service);

/*
 * RFC 6125 §6.4 for one pair: does the presented DNS name p[0..plen) match
 * the reference domain r[0..rlen)?  Both are checked here: a reference must
 * be an ASCII domain name (A-labels) without wildcard.
 */
bool certname_dns_match(const char *p, size_t plen, const char *r, size_t rlen);

/*
 * A domain in the form identities are compared in: U-labels to A-labels
 * (RFC 3492), ASCII lowercased, one trailing dot dropped, each label 1..63
 * bytes of letters, digits, '-' or '_', at most CERTNAME_DOMAIN_MAX bytes.
 * Writes out (NUL-terminated; cap >= CERTNAME_DOMAIN_MAX + 1 always does).
 * Returns the length, or -1 when s[0..n) is not such a domain or does not
 * fit.
 */
int certname_domain(const char *s, size_t n, char *out, size_t cap);

#endif
