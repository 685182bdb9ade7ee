/*
 * framer — the per-connection byte-level stanza boundary scanner (DESIGN §4).
 *
 * A pure codec with a few bytes of state per connection.  It walks plaintext
 * XML of one XMPP stream and reports where each item ends: the stream header
 * (the depth-0 open tag, optionally preceded by an XML declaration), each
 * top-level element (a stanza or nonza at depth 1), whitespace between them,
 * and the stream's closing tag.  It enforces the configured limits and
 * rejects what XMPP forbids (RFC 6120 §11.1: comments, processing
 * instructions, DOCTYPE and entity declarations, entity references other than
 * the five predefined ones and character references) as soon as it sees them.
 * It does not check well-formedness beyond what finding boundaries needs:
 * every stanza it returns is then parsed by expat (parser/xmlstage.h), and
 * the pair together must agree with expat on every input.
 *
 * Use: keep the unconsumed input contiguous in one buffer whose start is the
 * start of the current item.  Call framer_scan() on the whole buffer; it
 * resumes where it stopped (f->off) and returns an event.  After any event
 * other than FRAMER_MORE and FRAMER_ERROR, the item is buf[0..*end): consume
 * it (drop it from the buffer) and call again with the rest.  After a stream
 * restart (STARTTLS, SASL success) call framer_reset().
 */
#ifndef XEDGE_FRAMER_H
#define XEDGE_FRAMER_H

#include <stddef.h>
#include <stdint.h>

struct framer_limits {
	uint32_t max_stanza;    /* bytes of one top-level element (and of the header) */
	uint16_t max_depth;     /* element nesting below the stream element, >= 1 */
	uint16_t max_attrs;     /* attributes on one element (xmlns declarations included) */
	uint16_t max_name;      /* bytes of an element or attribute name */
	uint32_t max_value;     /* bytes of one attribute value */
};

enum framer_event {
	FRAMER_MORE = 0,  /* all input scanned, no item complete yet */
	FRAMER_HEADER,    /* buf[0..end) is [XML declaration] + stream open tag */
	FRAMER_STANZA,    /* buf[0..end) is one complete top-level element */
	FRAMER_SPACE,     /* buf[0..end) is whitespace between items (keepalive); reported
	                     when the buffer ends in it, so a run split across reads may
	                     come as several SPACE items (the only chunking-dependent event) */
	FRAMER_CLOSE,     /* buf[0..end) is the stream close tag (any name: caller checks) */
	FRAMER_ERROR      /* f->err says why; the stream must be closed */
};

/* Errors map one-to-one on RFC 6120 §4.9.3 stream error conditions. */
enum framer_error {
	FRAMER_OK = 0,
	FRAMER_E_NOT_WELL_FORMED, /* <not-well-formed/> */
	FRAMER_E_RESTRICTED,      /* <restricted-xml/>: comment, PI, DTD, entity */
	FRAMER_E_POLICY           /* <policy-violation/>: a limit was exceeded */
};

/* Opaque to callers except off and err; zero-initialised by framer_reset(). */
struct framer {
	uint32_t off;       /* bytes of the current item already scanned */
	uint32_t tok;       /* length of the current name or value */
	uint16_t depth;     /* open elements, 0 = at stream level */
	uint16_t attrs;     /* attributes seen on the current tag */
	uint8_t state;      /* scanner state (framer.c) */
	uint8_t sub;        /* sub-state: bytes matched of a fixed keyword */
	uint8_t quote;      /* the quote character of the current value */
	uint8_t flags;      /* FRAMER_F_* (framer.c) */
	uint8_t err;        /* enum framer_error after FRAMER_ERROR */
};

/* Start a new stream: the next item must be a stream header. */
void framer_reset(struct framer *f);

/* Scan buf[0..len); see the file comment.  *end is set for item events. */
enum framer_event framer_scan(struct framer *f, const struct framer_limits *lim,
			      const uint8_t *buf, size_t len, size_t *end);

const char *framer_error_str(uint8_t err); /* "not-well-formed", ... */

#endif
