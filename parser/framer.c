/*
 * framer — byte-level stanza boundary scanner (contract in parser/framer.h).
 *
 * How it stays resumable with a few bytes of state: the caller keeps the
 * current item contiguous from buf[0], so everything the scanner has passed
 * over (buf[0..f->off)) is still there.  State that would otherwise need
 * memory — which entity is being referenced, whether a '#' reference is
 * hexadecimal — is read back from the buffer instead of being stored.  A call
 * never re-reads bytes before f->off except those few bytes of the current
 * reference, so the total work is linear in the input however it is chunked.
 *
 * Invariants:
 *   - f->off is the number of bytes of the current item already scanned;
 *     after FRAMER_ERROR it is the offset of the byte that caused the error.
 *   - f->depth counts open elements below the stream element; the header's
 *     own start tag is not counted.  depth <= lim->max_depth at all times.
 *   - Every byte is classified exactly once; each event is decided by the
 *     byte that completes it, so the item events (HEADER, STANZA, CLOSE,
 *     ERROR and its kind and offset) do not depend on how the input is
 *     chunked.
 *
 * Whitespace at stream level (FRAMER_SPACE) is reported as soon as a
 * non-space byte follows it OR when the buffer ends in it.  A keepalive (a
 * lone ' ') is therefore reported on the call that delivers it, without
 * waiting for the next stanza.  The price: a whitespace run split across
 * reads comes out as several SPACE events; only SPACE events depend on the
 * chunking (their concatenation does not).
 *
 * What it rejects itself (RFC 6120 §11.1): '<?' except one XML declaration
 * at the very start of the header item; '<!--'; '<!' followed by a letter
 * (DOCTYPE, ENTITY, ...); entity references other than the five predefined
 * ones (in character data, attribute values, and at stream level, where a
 * reference is an error anyway but an undefined entity is reported as
 * restricted-xml like expat does).  Character references
 * are checked for syntax only (expat checks their value).  '<![CDATA[' is
 * accepted inside stanzas and its content is not scanned for markup.  At
 * stream level, only whitespace, start tags and the close tag may appear.
 *
 * What it leaves to expat (parser/xmlstage.c): end-tag names matching start
 * tags, duplicate attributes, namespace prefixes, UTF-8 validity, characters
 * not allowed in XML, "]]>" in character data, '<' rules beyond boundary
 * finding.  The scanner must never be STRICTER than expat plus the XMPP
 * rules: tests/fuzz/fuzz_framer.c checks that differentially.
 *
 * Limits: besides those in struct framer_limits, an entity or character
 * reference longer than FRAMER_REF_MAX bytes is refused as a policy
 * violation (a legal "&#0000...65;" with dozens of leading zeros included).
 */
#include "parser/framer.h"

#include <string.h>

#define FRAMER_REF_MAX 32 /* bytes between '&' and ';' */

/* Scanner states (f->state).  S_PRE is 0 so framer_reset() can memset. */
enum {
	S_PRE = 0,   /* header item: whitespace before a '<' */
	S_STREAM,    /* depth 0 inside the stream, at the start of an item (off == 0) */
	S_SPACE,     /* a whitespace run at depth 0 (a SPACE item) */
	S_TEXT,      /* character data inside a stanza */
	S_LT,        /* after '<' */
	S_DECL_KW,   /* after "<?" in the header: matching "xml" then a space (sub) */
	S_DECL,      /* inside the XML declaration; sub = 1 after a '?' */
	S_BANG,      /* after "<!" */
	S_COMMENT,   /* after "<!-" */
	S_CDATA_KW,  /* after "<![": matching "CDATA[" (sub = bytes matched) */
	S_CDATA,     /* inside a CDATA section; sub = trailing ']' seen, max 2 */
	S_STAG_NAME, /* in a start tag's element name (tok = bytes) */
	S_STAG_WS,   /* in a start tag, after whitespace: attribute, '/', '>' */
	S_AFTER_VAL, /* in a start tag, right after a closing quote */
	S_ATTR_NAME, /* in an attribute name (tok = bytes) */
	S_ATTR_EQ,   /* after an attribute name, before '=' */
	S_ATTR_Q,    /* after '=', before the opening quote */
	S_ATTR_VAL,  /* in an attribute value (tok = bytes, quote = delimiter) */
	S_ATTR_REF,  /* in a reference inside an attribute value (sub = bytes) */
	S_TEXT_REF,  /* in a reference inside character data (sub = bytes) */
	S_STREAM_REF,/* in a reference at stream level (sub = bytes): an error either way */
	S_SLASH,     /* after '/' in a start tag: only '>' may follow */
	S_ETAG0,     /* after "</" */
	S_ETAG_NAME, /* in an end tag's name (tok = bytes) */
	S_ETAG_WS,   /* after an end tag's name: spaces, then '>' */
	S_ERROR      /* sticky: FRAMER_ERROR until framer_reset() */
};

/* f->flags */
#define F_STREAM 0x01 /* the header is done: items are stanzas, spaces, close */
#define F_DECL 0x02   /* an XML declaration was seen in this header item */
#define F_CLOSED 0x04 /* the stream close tag was seen: only whitespace may follow */

/* A SPACE run longer than this is cut, so f->off (32 bits) cannot overflow. */
#define SPACE_MAX 0x40000000u

static inline int is_ws(uint8_t c)
{
	return c == ' ' || c == '\n' || c == '\t' || c == '\r';
}

static inline int is_alpha(uint8_t c)
{
	return (uint8_t)((c | 0x20) - 'a') < 26;
}

static inline int is_digit(uint8_t c)
{
	return (uint8_t)(c - '0') < 10;
}

static inline int is_hex(uint8_t c)
{
	return is_digit(c) || (uint8_t)((c | 0x20) - 'a') < 6;
}

/*
 * Byte classes, one lookup per byte in the hot loops.
 * XML names are taken loosely: every byte >= 0x80 is accepted because the
 * scanner does not decode UTF-8 (expat checks names exactly).  Being looser
 * than expat is safe; being stricter would reject valid XMPP.
 */
#define C_NSTART 1 /* may start a name: [A-Za-z_:] and >= 0x80 */
#define C_NAME 2   /* may be in a name: those and [0-9.-] */
#define C_TEXT 4   /* ends a run of character data: '<' '&' */
#define C_VALUE 8  /* ends a run of an attribute value: '<' '&' and both quotes */

static const uint8_t byte_class[256] = {
	 0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,
	 0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,
	 0,  0,  8,  0,  0,  0, 12,  8,  0,  0,  0,  0,  0,  2,  2,  0,
	 2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  3,  0, 12,  0,  0,  0,
	 0,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,
	 3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  0,  0,  0,  0,  3,
	 0,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,
	 3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  0,  0,  0,  0,  0,
	 3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,
	 3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,
	 3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,
	 3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,
	 3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,
	 3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,
	 3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,
	 3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,  3,
};

static inline int is_name_start(uint8_t c)
{
	return byte_class[c] & C_NSTART;
}

static inline int is_name(uint8_t c)
{
	return byte_class[c] & C_NAME;
}

/* Bytes a name run may still take: up to max_name, the buffer, the item cap. */
static inline size_t run_stop(size_t off, size_t len, uint32_t max_stanza, size_t room)
{
	size_t stop = len < max_stanza ? len : max_stanza;
	return room < stop - off ? off + room : stop;
}

void framer_reset(struct framer *f)
{
	memset(f, 0, sizeof(*f));
}

const char *framer_error_str(uint8_t err)
{
	switch (err) {
	case FRAMER_OK:
		return "ok";
	case FRAMER_E_NOT_WELL_FORMED:
		return "not-well-formed";
	case FRAMER_E_RESTRICTED:
		return "restricted-xml";
	case FRAMER_E_POLICY:
		return "policy-violation";
	}
	return "undefined-condition";
}

/* Judge a complete reference r[0..n) (the bytes between '&' and ';'). */
static uint8_t ref_check(const uint8_t *r, size_t n)
{
	static const char *const predefined[] = { "lt", "gt", "amp", "quot", "apos" };

	if (n == 0)
		return FRAMER_E_NOT_WELL_FORMED;
	if (r[0] == '#') {
		/* the digits were validated byte by byte; only emptiness is left */
		if (n == 1 || (r[1] == 'x' && n == 2))
			return FRAMER_E_NOT_WELL_FORMED;
		return FRAMER_OK;
	}
	for (size_t i = 0; i < sizeof(predefined) / sizeof(predefined[0]); i++)
		if (strlen(predefined[i]) == n && memcmp(predefined[i], r, n) == 0)
			return FRAMER_OK;
	return FRAMER_E_RESTRICTED;
}

/*
 * Validate byte c as the next byte of the reference whose first sub bytes
 * are buf[off - sub .. off).  Returns FRAMER_OK or the error.
 */
static uint8_t ref_byte(const uint8_t *buf, size_t off, uint8_t sub, uint8_t c)
{
	if (sub >= FRAMER_REF_MAX)
		return FRAMER_E_POLICY;
	if (sub == 0)
		return (c == '#' || is_name_start(c)) ? FRAMER_OK : FRAMER_E_NOT_WELL_FORMED;
	if (buf[off - sub] != '#')
		return is_name(c) ? FRAMER_OK : FRAMER_E_NOT_WELL_FORMED;
	if (sub == 1)
		return (c == 'x' || is_digit(c)) ? FRAMER_OK : FRAMER_E_NOT_WELL_FORMED;
	if (buf[off - sub + 1] == 'x')
		return is_hex(c) ? FRAMER_OK : FRAMER_E_NOT_WELL_FORMED;
	return is_digit(c) ? FRAMER_OK : FRAMER_E_NOT_WELL_FORMED;
}

static enum framer_event fail(struct framer *f, size_t off, uint8_t err)
{
	f->off = (uint32_t)off;
	f->err = err;
	f->state = S_ERROR;
	return FRAMER_ERROR;
}

/* An item ends at buf[end): the next call starts a new item at depth 0. */
static enum framer_event emit(struct framer *f, size_t *end, size_t at, enum framer_event ev)
{
	*end = at;
	f->off = 0;
	f->tok = 0;
	f->sub = 0;
	f->state = S_STREAM;
	return ev;
}

enum framer_event framer_scan(struct framer *f, const struct framer_limits *lim,
			      const uint8_t *buf, size_t len, size_t *end)
{
	size_t off = f->off;
	uint8_t e;

	if (f->state == S_ERROR)
		return FRAMER_ERROR;
	/* The caller dropped bytes of an unfinished item: nothing sane follows. */
	if (len < off)
		return fail(f, len, FRAMER_E_NOT_WELL_FORMED);

	while (off < len) {
		uint8_t c = buf[off];

		/*
		 * An unfinished item that already holds max_stanza bytes can only
		 * grow past the limit: cut it now (slowloris, oversized stanza).
		 */
		if (off >= lim->max_stanza && f->state != S_STREAM && f->state != S_SPACE)
			return fail(f, off, FRAMER_E_POLICY);

		switch (f->state) {
		case S_PRE:
			if (c == '<')
				f->state = S_LT;
			else if (!is_ws(c))
				return fail(f, off, FRAMER_E_NOT_WELL_FORMED);
			break;

		case S_STREAM:
			if (is_ws(c)) {
				f->state = S_SPACE;
			} else if (c == '<' && !(f->flags & F_CLOSED)) {
				f->state = S_LT;
			} else if (c == '&' && !(f->flags & F_CLOSED)) {
				/* text at stream level, but an undefined entity is reported as
				 * such, as expat does */
				f->state = S_STREAM_REF;
				f->sub = 0;
			} else {
				return fail(f, off, FRAMER_E_NOT_WELL_FORMED);
			}
			break;

		case S_STREAM_REF:
			if (c == ';') {
				e = ref_check(buf + off - f->sub, f->sub);
				return fail(f, e == FRAMER_E_RESTRICTED ? off : 0,
					    e == FRAMER_E_RESTRICTED ? e : FRAMER_E_NOT_WELL_FORMED);
			}
			e = ref_byte(buf, off, f->sub, c);
			if (e == FRAMER_E_POLICY)
				return fail(f, off, e); /* as inside stanzas */
			if (e)
				return fail(f, 0, FRAMER_E_NOT_WELL_FORMED);
			f->sub++;
			break;

		case S_SPACE:
			if (!is_ws(c))
				return emit(f, end, off, FRAMER_SPACE);
			if (off >= SPACE_MAX)
				return emit(f, end, off, FRAMER_SPACE);
			break;

		case S_TEXT:
			if (c == '<') {
				f->state = S_LT;
			} else if (c == '&') {
				f->state = S_TEXT_REF;
				f->sub = 0;
			} else {
				/* Hot path: skip plain character data in a tight loop. */
				size_t stop = len < lim->max_stanza ? len : lim->max_stanza;
				off++;
				while (off < stop && !(byte_class[buf[off]] & C_TEXT))
					off++;
				continue;
			}
			break;

		case S_LT:
			if (c == '/') {
				if (!(f->flags & F_STREAM))
					return fail(f, off, FRAMER_E_NOT_WELL_FORMED);
				f->state = S_ETAG0;
			} else if (c == '?') {
				/* Only the header's first markup may be the XML declaration. */
				if (f->flags & (F_STREAM | F_DECL))
					return fail(f, off, FRAMER_E_RESTRICTED);
				f->state = S_DECL_KW;
				f->sub = 0;
			} else if (c == '!') {
				f->state = S_BANG;
			} else if (is_name_start(c)) {
				if ((f->flags & F_STREAM) && f->depth >= lim->max_depth)
					return fail(f, off, FRAMER_E_POLICY);
				if (lim->max_name < 1)
					return fail(f, off, FRAMER_E_POLICY);
				f->state = S_STAG_NAME;
				f->tok = 1;
				f->attrs = 0;
			} else {
				return fail(f, off, FRAMER_E_NOT_WELL_FORMED);
			}
			break;

		case S_DECL_KW:
			/* "<?xml" + space opens the declaration; any other target is a PI. */
			if (f->sub < 3) {
				if (c != (uint8_t)"xml"[f->sub])
					return fail(f, off, FRAMER_E_RESTRICTED);
				f->sub++;
			} else {
				if (!is_ws(c))
					return fail(f, off, FRAMER_E_RESTRICTED);
				f->state = S_DECL;
				f->sub = 0;
			}
			break;

		case S_DECL:
			/*
			 * No legal declaration has "?>" inside a quoted value (version and
			 * encoding names exclude '?'), so the first "?>" ends it.
			 */
			if (c == '>' && f->sub) {
				f->flags |= F_DECL;
				f->state = S_PRE;
			}
			f->sub = (c == '?');
			break;

		case S_BANG:
			if (c == '-') {
				f->state = S_COMMENT;
			} else if (c == '[') {
				/* CDATA is character data: only inside a stanza. */
				if (f->depth == 0)
					return fail(f, off, FRAMER_E_NOT_WELL_FORMED);
				f->state = S_CDATA_KW;
				f->sub = 0;
			} else if (is_alpha(c)) {
				return fail(f, off, FRAMER_E_RESTRICTED); /* DOCTYPE, ENTITY, ... */
			} else {
				return fail(f, off, FRAMER_E_NOT_WELL_FORMED);
			}
			break;

		case S_COMMENT:
			return fail(f, off, c == '-' ? FRAMER_E_RESTRICTED : FRAMER_E_NOT_WELL_FORMED);

		case S_CDATA_KW:
			if (c != (uint8_t)"CDATA["[f->sub])
				return fail(f, off, FRAMER_E_NOT_WELL_FORMED);
			if (++f->sub == 6) {
				f->state = S_CDATA;
				f->sub = 0;
			}
			break;

		case S_CDATA:
			if (c == ']') {
				if (f->sub < 2)
					f->sub++;
			} else if (c == '>' && f->sub == 2) {
				f->state = S_TEXT;
				f->sub = 0;
			} else {
				/* Nothing but "]]>" matters in here: jump to the next ']'. */
				size_t stop = len < lim->max_stanza ? len : lim->max_stanza;
				const uint8_t *q;
				f->sub = 0;
				off++;
				if (off < stop) {
					q = memchr(buf + off, ']', stop - off);
					off = q ? (size_t)(q - buf) : stop;
				}
				continue;
			}
			break;

		case S_STAG_NAME:
			if (is_name(c)) {
				size_t s0 = off, stop;
				if (f->tok >= lim->max_name)
					return fail(f, off, FRAMER_E_POLICY);
				stop = run_stop(off, len, lim->max_stanza, lim->max_name - f->tok);
				off++;
				while (off < stop && is_name(buf[off]))
					off++;
				f->tok += (uint32_t)(off - s0);
				continue;
			}
			/* fall through: the name ended, the byte is tag syntax */
			/* FALLTHROUGH */
		case S_STAG_WS:
		case S_AFTER_VAL:
			if (is_ws(c)) {
				f->state = S_STAG_WS;
			} else if (c == '/') {
				f->state = S_SLASH;
			} else if (c == '>') {
				if (!(f->flags & F_STREAM)) {
					/* the stream element's start tag ends the header item */
					f->flags = (uint8_t)((f->flags | F_STREAM) & ~F_DECL);
					return emit(f, end, off + 1, FRAMER_HEADER);
				}
				f->depth++;
				f->state = S_TEXT;
			} else if (f->state == S_STAG_WS && is_name_start(c)) {
				if (f->attrs >= lim->max_attrs || lim->max_name < 1)
					return fail(f, off, FRAMER_E_POLICY);
				f->attrs++;
				f->tok = 1;
				f->state = S_ATTR_NAME;
			} else {
				/* e.g. a='1'b='2', or a byte that cannot be in a name */
				return fail(f, off, FRAMER_E_NOT_WELL_FORMED);
			}
			break;

		case S_ATTR_NAME:
			if (is_name(c)) {
				size_t s0 = off, stop;
				if (f->tok >= lim->max_name)
					return fail(f, off, FRAMER_E_POLICY);
				stop = run_stop(off, len, lim->max_stanza, lim->max_name - f->tok);
				off++;
				while (off < stop && is_name(buf[off]))
					off++;
				f->tok += (uint32_t)(off - s0);
				continue;
			} else if (is_ws(c)) {
				f->state = S_ATTR_EQ;
			} else if (c == '=') {
				f->state = S_ATTR_Q;
			} else {
				return fail(f, off, FRAMER_E_NOT_WELL_FORMED); /* <a b> */
			}
			break;

		case S_ATTR_EQ:
			if (c == '=')
				f->state = S_ATTR_Q;
			else if (!is_ws(c))
				return fail(f, off, FRAMER_E_NOT_WELL_FORMED);
			break;

		case S_ATTR_Q:
			if (c == '\'' || c == '"') {
				f->quote = c;
				f->tok = 0;
				f->state = S_ATTR_VAL;
			} else if (!is_ws(c)) {
				return fail(f, off, FRAMER_E_NOT_WELL_FORMED);
			}
			break;

		case S_ATTR_VAL:
			if (c == f->quote) {
				f->state = S_AFTER_VAL;
				break;
			}
			if (c == '<')
				return fail(f, off, FRAMER_E_NOT_WELL_FORMED);
			if (f->tok >= lim->max_value)
				return fail(f, off, FRAMER_E_POLICY);
			if (c == '&') {
				f->tok++;
				f->state = S_ATTR_REF;
				f->sub = 0;
			} else {
				/* skip plain value bytes, never past the value limit */
				size_t s0 = off,
				       stop = run_stop(off, len, lim->max_stanza, lim->max_value - f->tok);
				/* the other quote stops the run too; it is then a plain byte */
				off++;
				while (off < stop && !(byte_class[buf[off]] & C_VALUE))
					off++;
				f->tok += (uint32_t)(off - s0);
				continue;
			}
			break;

		case S_ATTR_REF:
		case S_TEXT_REF:
			if (f->state == S_ATTR_REF) {
				if (f->tok >= lim->max_value)
					return fail(f, off, FRAMER_E_POLICY);
				f->tok++;
			}
			if (c == ';') {
				e = ref_check(buf + off - f->sub, f->sub);
				if (e)
					return fail(f, off, e);
				f->state = f->state == S_ATTR_REF ? S_ATTR_VAL : S_TEXT;
				f->sub = 0;
			} else {
				e = ref_byte(buf, off, f->sub, c);
				if (e)
					return fail(f, off, e);
				f->sub++;
			}
			break;

		case S_SLASH:
			if (c != '>')
				return fail(f, off, FRAMER_E_NOT_WELL_FORMED);
			/* An empty stream element would end the stream at once: refuse. */
			if (!(f->flags & F_STREAM))
				return fail(f, off, FRAMER_E_NOT_WELL_FORMED);
			if (f->depth == 0)
				return emit(f, end, off + 1, FRAMER_STANZA);
			f->state = S_TEXT;
			break;

		case S_ETAG0:
			if (!is_name_start(c))
				return fail(f, off, FRAMER_E_NOT_WELL_FORMED); /* </>, </ a> */
			if (lim->max_name < 1)
				return fail(f, off, FRAMER_E_POLICY);
			f->tok = 1;
			f->state = S_ETAG_NAME;
			break;

		case S_ETAG_NAME:
			if (is_name(c)) {
				size_t s0 = off, stop;
				if (f->tok >= lim->max_name)
					return fail(f, off, FRAMER_E_POLICY);
				stop = run_stop(off, len, lim->max_stanza, lim->max_name - f->tok);
				off++;
				while (off < stop && is_name(buf[off]))
					off++;
				f->tok += (uint32_t)(off - s0);
				continue;
			}
			/* FALLTHROUGH */
		case S_ETAG_WS:
			if (is_ws(c)) {
				f->state = S_ETAG_WS;
			} else if (c == '>') {
				if (f->depth == 0) {
					f->flags |= F_CLOSED;
					return emit(f, end, off + 1, FRAMER_CLOSE);
				}
				if (--f->depth == 0)
					return emit(f, end, off + 1, FRAMER_STANZA);
				f->state = S_TEXT;
			} else {
				return fail(f, off, FRAMER_E_NOT_WELL_FORMED);
			}
			break;

		default:
			return fail(f, off, FRAMER_E_NOT_WELL_FORMED);
		}
		off++;
	}

	f->off = (uint32_t)off;
	/* Report trailing whitespace now: a keepalive must not wait for more input. */
	if (f->state == S_SPACE)
		return emit(f, end, off, FRAMER_SPACE);
	return FRAMER_MORE;
}
