/*
 * xmltag — byte-level edits of an element's start tag, and XML escaping.
 *
 * Stanzas are forwarded as they came; the only edits are stamping `from`
 * (edge) and setting `to` (session server, presence broadcast).  These work
 * on an element that expat already accepted, so the start tag is well formed;
 * they still never read outside the given bytes.
 */
#ifndef XEDGE_XMLTAG_H
#define XEDGE_XMLTAG_H

#include <stddef.h>

struct xmltag_attr {
	const char *name;   /* attribute name, e.g. "from" (no prefix) */
	const char *value;  /* unescaped value; NULL removes the attribute */
};

/*
 * Copy the element el[0..len) to out, with the attributes in set[0..n)
 * replaced, added or removed in the top-level start tag.  Replaced or added
 * attributes are written right after the element name, values escaped with
 * apostrophes.  Returns the length of the result; if that exceeds cap,
 * nothing useful is in out and the caller retries with a larger buffer.
 * Returns 0 if el does not start with a start tag.
 */
size_t xmltag_rewrite(const char *el, size_t len, const struct xmltag_attr *set, size_t n,
		      char *out, size_t cap);

/*
 * Escape s[0..n) for use in attribute values and character data
 * (& < > " ').  Returns the escaped length; writes at most cap bytes.
 */
size_t xml_escape(const char *s, size_t n, char *out, size_t cap);

#endif
