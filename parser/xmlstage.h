/*
 * xmlstage — the expat stage of stanza framing (DESIGN §4).
 *
 * One xmlstage per thread (edge worker or session server), reused for every
 * stanza of every connection on that thread.  It checks a complete item that
 * the framer delimited for full well-formedness, namespaces, UTF-8 and XMPP's
 * restricted XML, and extracts the routing facts in the same pass.  The
 * parser is kept open inside a synthetic stream header built from the
 * connection's own namespace declarations, and reset only when the next
 * stanza comes from a stream with different declarations or after an error.
 *
 * Strings in the returned structs point into the xmlstage's scratch memory
 * and are valid until the next call on the same xmlstage.  Attribute values
 * are returned decoded (entities replaced).
 */
#ifndef XEDGE_XMLSTAGE_H
#define XEDGE_XMLSTAGE_H

#include <stddef.h>
#include <stdint.h>

#define XMLSTAGE_NS_CLIENT "jabber:client"
#define XMLSTAGE_NS_STREAM "http://etherx.jabber.org/streams"
/* The c2s default context, as xs_header.ns_decls spells it for a header that
 * declares exactly xmlns='jabber:client' and xmlns:stream='...streams'. */
#define XMLSTAGE_C2S_DECLS "xmlns='" XMLSTAGE_NS_CLIENT "' xmlns:stream='" XMLSTAGE_NS_STREAM "'"

enum xmlstage_error {
	XMLSTAGE_OK = 0,
	XMLSTAGE_E_NOT_WELL_FORMED, /* not-well-formed: XML or Namespaces in XML (an unbound
	                               prefix too), RFC 6120 §4.9.3.13 */
	XMLSTAGE_E_RESTRICTED,      /* restricted-xml */
	XMLSTAGE_E_INVALID_NS,      /* invalid-namespace */
	XMLSTAGE_E_BAD_FORMAT,      /* bad-format (not returned today: a duplicate attribute is
	                               not-well-formed, XML "Unique Att Spec") */
	XMLSTAGE_E_POLICY,          /* policy-violation (scratch space exhausted) */
	XMLSTAGE_E_BAD_NS_PREFIX    /* bad-namespace-prefix (RFC 6120 §4.9.3.2): a prefix the
	                               sender's stream binds but that we do not support in a
	                               stanza (xmlstage_stanza_fwd only) */
};

struct xs_str {
	const char *p;  /* NUL-terminated; "" when absent */
	size_t len;
};

/* The stream header (<stream:stream ...>). */
struct xs_header {
	struct xs_str name_ns;    /* namespace of the element: must be XMLSTAGE_NS_STREAM */
	struct xs_str local;      /* local name: must be "stream" */
	struct xs_str prefix;     /* prefix used for the stream element ("stream"), for the close tag */
	struct xs_str default_ns; /* default namespace declared: "jabber:client" for c2s */
	struct xs_str to, from, version, id, lang;
	struct xs_str ns_decls;   /* the header's xmlns / xmlns:* attributes, re-serialised for
	                             stanza context (default first, then by prefix; never "":
	                             a header without any is "xmlns=''") */
	int has_to, has_version;
};

/* One top-level element. */
struct xs_stanza {
	struct xs_str ns;         /* namespace of the top element */
	struct xs_str local;      /* local name: message, presence, iq, auth, starttls, ... */
	struct xs_str to, from, type, id, lang;
	int has_to, has_from, has_type, has_id;
	struct xs_str child_ns;   /* namespace of the first child element ("" if none) */
	struct xs_str child_local;/* local name of the first child element */
	unsigned children;        /* number of direct child elements */
	struct xs_str text;       /* character data of the top element itself (SASL payloads) */
	struct xs_str leaf_text;  /* character data of the first grandchild element, e.g. the
	                             <resource/> of a bind request; "" when none; truncated
	                             to its first 4096 bytes (longer than any JID part) */
	int priority;             /* presence <priority/> value, 0 when absent */
	size_t start_tag_end;     /* byte offset just past the top element's start tag '>' */
};

struct xmlstage;

/* Returns NULL on allocation failure. */
struct xmlstage *xmlstage_new(void);
void xmlstage_free(struct xmlstage *xs);

/*
 * Parse a stream header item (as returned by FRAMER_HEADER, including any
 * XML declaration).  Returns XMLSTAGE_OK and fills *out, or an error.
 */
int xmlstage_header(struct xmlstage *xs, const char *buf, size_t len, struct xs_header *out);

/*
 * Parse one top-level element in the context of a stream whose header
 * declared ns_decls (xs_header.ns_decls; "" means the c2s default
 * `xmlns='jabber:client' xmlns:stream='...'`).  Returns XMLSTAGE_OK and
 * fills *out, or an error.
 */
int xmlstage_stanza(struct xmlstage *xs, const char *ns_decls, size_t ns_len,
		    const char *buf, size_t len, struct xs_stanza *out);

/*
 * Parse one stanza of a c2s stream in the c2s default context — the one it is
 * forwarded into, since recipients' streams declare only the defaults — for a
 * connection whose own header declared own_decls (its xs_header.ns_decls;
 * NULL or "" for the defaults).  As xmlstage_stanza(xs, NULL, 0, ...), except
 * for a prefix unbound in the default context:
 *   - bound nowhere in the sender's stream either: XMLSTAGE_E_NOT_WELL_FORMED
 *     (Namespaces in XML is violated, RFC 6120 §4.9.3.13);
 *   - bound by own_decls: the stanza is well-formed in the sender's stream
 *     but relies on a header prefix we do not support (its bytes would break
 *     the recipient's parser): XMLSTAGE_E_BAD_NS_PREFIX (RFC 6120 §4.9.3.2);
 *     or, if the stanza has another defect in the sender's context, that one.
 * *out is valid only on XMLSTAGE_OK.
 */
int xmlstage_stanza_fwd(struct xmlstage *xs, const char *own_decls, size_t own_len,
			const char *buf, size_t len, struct xs_stanza *out);

const char *xmlstage_error_str(int err); /* the stream error condition name */

#endif
