/*
 * query — the fields of an iq's <query/> payload, for the iq namespaces the
 * edge answers itself (XEP-0077 jabber:iq:register, XEP-0078 jabber:iq:auth):
 * the character data of named children such as <username/>, <password/>,
 * <resource/>, or just whether an empty one like <remove/> is there.
 *
 * A parser that does no I/O and keeps no state between calls.  The stanza
 * was already accepted by xmlstage in the c2s default context
 * (xmlstage_stanza_fwd), so it is parsed again in that same context, with a
 * fresh expat parser per call: these requests are rare (logins without
 * SASL, registrations), and the routing path never comes here.
 *
 * Values are decoded (entities and character references replaced, CDATA
 * included) and copied into the caller's buffers, NUL-terminated; a value
 * longer than its buffer is reported, never truncated silently.  The caller
 * wipes buffers that held a password.
 */
#ifndef XEDGE_QUERY_H
#define XEDGE_QUERY_H

#include <stdbool.h>
#include <stddef.h>

struct query_field {
	const char *name;   /* local name of the child, in the query's namespace */
	char *buf;          /* the caller's buffer: cap bytes, NUL included */
	size_t cap;
	size_t len;         /* out: bytes of text in buf */
	bool present;       /* out: the child is there (possibly empty) */
	bool overflow;      /* out: its text did not fit in cap - 1 bytes */
};

/*
 * Parse the iq stanza el[0..len), whose one payload must be <query xmlns=ns>.
 * Fills f[0..n); *others counts what was not asked for: other children of
 * <query/> (or children in another namespace, such as a data form), a field
 * that appears twice, and elements inside a field.  Returns 0, or -1 when
 * the payload is not such a query or the bytes do not parse.
 */
int query_parse(const char *el, size_t len, const char *ns, struct query_field *f, size_t n,
		unsigned *others);

#endif
