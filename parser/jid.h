/*
 * jid — XMPP addresses (RFC 7622): split, validate, canonicalise.
 *
 * A pure codec: no I/O, no allocation.  A JID is [local@]domain[/resource].
 * Validation enforces what the edge and the session server rely on:
 *   - each part 1..JID_PART_MAX (1023) bytes, valid UTF-8 (no overlongs, no
 *     surrogates), no C0/C1 control characters, no U+FFFE/U+FFFF;
 *   - localpart: none of  " & ' / : < > @  and no whitespace;
 *   - domainpart: no whitespace, '@' or '/'; one trailing dot is dropped;
 *     ASCII labels are LDH (letters, digits, hyphen, underscore tolerated),
 *     each label 1..63 bytes; an IPv6 literal in brackets is accepted;
 *   - resourcepart: any printable UTF-8 (spaces allowed, controls not).
 * Canonical form lowercases ASCII letters of the localpart and domainpart
 * (the UsernameCaseMapped / IDNA mapping for the ASCII range; non-ASCII
 * bytes are kept as given).  Resourceparts are case-sensitive.
 */
#ifndef XEDGE_JID_H
#define XEDGE_JID_H

#include <stdbool.h>
#include <stddef.h>

#define JID_PART_MAX 1023
#define JID_MAX (3 * JID_PART_MAX + 2)   /* local@domain/resource */

/* Slices into the caller's string; lengths in bytes; absent parts have len 0. */
struct jid_view {
	const char *local;
	size_t local_len;
	const char *domain;
	size_t domain_len;      /* trailing dot already excluded */
	const char *resource;
	size_t resource_len;
};

/* Split and validate s[0..n).  Returns 0, or -1 when s is not a valid JID. */
int jid_parse(const char *s, size_t n, struct jid_view *out);

/* Validate one part on its own.  Return true when valid. */
bool jid_local_valid(const char *s, size_t n);
bool jid_domain_valid(const char *s, size_t n);
bool jid_resource_valid(const char *s, size_t n);

/*
 * Write the canonical form of v into out (NUL-terminated).  With full false
 * the resource is left out (bare JID).  Returns the length written (without
 * the NUL), or -1 when cap is too small.
 */
int jid_canon(const struct jid_view *v, bool full, char *out, size_t cap);

/* Lowercase ASCII letters of s[0..n) into out (n bytes, not terminated). */
void jid_fold(const char *s, size_t n, char *out);

#endif
