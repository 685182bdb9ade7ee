/*
 * fuzz_framer — differential fuzzing of framer + xmlstage against expat.
 *
 * Input: byte 0 is a mode.  Its low 7 bits choose the chunking (0: all at
 * once; n: chunks of 1..n bytes from a PRNG seeded with byte 0).  If bit 7 is
 * clear, the rest is the body of a stream whose header is the fixed HDR
 * below; if set, the rest is the whole stream, header and XML declaration
 * included (that is how the header phase gets fuzzed).
 *
 * The "edge path" runs the framer over the stream as it arrives in chunks
 * and hands every item to xmlstage exactly as the edge does (header to
 * xmlstage_header, stanzas to xmlstage_stanza in the header's namespace
 * context, the close tag compared with the header's name), stopping at the
 * first error or at the stream close.  The "oracle" is one plain expat
 * parser over the whole stream (isFinal = 0) with the XMPP rules as
 * handlers: comments, PIs, DOCTYPE, entity/notation declarations and
 * undefined entities are restricted-xml; character data at stream level that
 * is not raw whitespace, CDATA at stream level, anything but '<' to start
 * the stream (a byte-order mark, say) and an empty stream element are
 * not-well-formed.  Whitespace before the header is skipped for the oracle,
 * as xmlstage_header does (it belongs to the previous stream on a restart).
 *
 * Traps (__builtin_trap) when:
 *   B  the edge path accepted items up to byte B and the oracle found an
 *      error before B; or the accepted header's or stanzas' boundaries
 *      (start, end of the start tag, end) differ from the oracle's; or a
 *      stanza the oracle completed before the edge path stopped was not
 *      delivered (a framer that misses an end just waits: only this sees it);
 *   A  the oracle accepts everything and the edge path reports an error,
 *      unless it is a policy limit or the edge path judged trailing bytes
 *      that expat was still holding back (checked by re-running expat with
 *      isFinal = 1, see expat_held_back(); e.g. "</a\xe5>" at the very end
 *      is a partial UTF-8 character to expat, not yet an error);
 *   C  the oracle's first error is restricted-xml and the edge path's is not
 *      (policy limits aside), or xmlstage's verdict on an item disagrees with
 *      the oracle's (restricted vs other; the error inside the item);
 *   E  the framer's events differ between whole-buffer, one-byte-at-a-time
 *      and the chosen chunking (consecutive SPACE events merged).
 * Limits are set high so that policy errors do not hide disagreements.
 *
 * Not checked: WHERE the framer and expat find an error when both find one.
 * The framer applies XMPP rules at the first byte that breaks them (e.g.
 * '<![' at stream level is refused at the '['), while expat may only
 * complain about a later byte of the same malformed token.  A framer that
 * wrongly rejects valid XML is caught by A on the input without the later
 * error, which the fuzzer reaches by deletion.
 *
 * Build with -DFUZZ_DEBUG (and -fsanitize=fuzzer as usual) to get the
 * failing check's line and both verdicts printed instead of a bare trap.
 */
#include <expat.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "parser/framer.h"
#include "parser/xmlstage.h"

#define HDR "<?xml version='1.0'?><stream:stream xmlns='jabber:client' " \
	    "xmlns:stream='http://etherx.jabber.org/streams' to='example.com' version='1.0'>"

#ifdef FUZZ_DEBUG
#include <stdio.h>
#define CHECK(cond)                                                                \
	do {                                                                       \
		if (!(cond)) {                                                     \
			fprintf(stderr, "CHECK failed line %d: %s\n", __LINE__, #cond); \
			dbg_dump();                                                \
			__builtin_trap();                                          \
		}                                                                  \
	} while (0)
static void dbg_dump(void);
#else
#define CHECK(cond) do { if (!(cond)) __builtin_trap(); } while (0)
#endif

enum { E_NONE = 0, E_NWF, E_RESTRICTED, E_POLICY };

static const struct framer_limits LIM = {
	.max_stanza = 1u << 24, .max_depth = 65535, .max_attrs = 65535,
	.max_name = 65535, .max_value = 1u << 24,
};

static int is_ws(uint8_t c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* ---- oracle ----------------------------------------------------------------- */

/* Boundaries of the top-level elements, all offsets absolute in the stream. */
struct tops {
	size_t n;
	size_t *start, *tag_end, *end;
};

static void tops_init(struct tops *t, size_t len)
{
	t->n = 0;
	t->start = calloc(len + 1, sizeof(size_t));
	t->tag_end = calloc(len + 1, sizeof(size_t));
	t->end = calloc(len + 1, sizeof(size_t));
	if (!t->start || !t->tag_end || !t->end)
		abort();
}

static void tops_free(struct tops *t)
{
	free(t->start);
	free(t->tag_end);
	free(t->end);
}

struct oracle {
	XML_Parser p;
	const uint8_t *doc;  /* the whole stream */
	size_t len;
	size_t base;         /* expat was given doc + base (leading whitespace skipped) */
	int err;             /* E_* */
	size_t err_pos;
	int by_handler;      /* err was decided by a rule handler, not by expat */
	int depth;           /* 1 = inside the stream element */
	struct tops t;
	size_t cur_start, cur_tag_end;
	int root_seen;
	size_t root_tag_end;
	int closed;
	size_t close_end;
};

static void o_fail(struct oracle *o, int err, size_t pos)
{
	if (!o->err) {
		o->err = err;
		o->err_pos = pos;
		o->by_handler = 1;
	}
	XML_StopParser(o->p, XML_FALSE);
}

static size_t o_idx(struct oracle *o)
{
	return o->base + (size_t)XML_GetCurrentByteIndex(o->p);
}

static size_t o_count(struct oracle *o)
{
	int n = XML_GetCurrentByteCount(o->p);
	return n > 0 ? (size_t)n : 0;
}

static void XMLCALL o_start(void *ud, const XML_Char *name, const XML_Char **atts)
{
	struct oracle *o = ud;

	if (o->err)
		return;
	if (o->depth == 0) {
		o->root_seen = 1;
		o->root_tag_end = o_idx(o) + o_count(o);
	} else if (o->depth == 1) {
		o->cur_start = o_idx(o);
		o->cur_tag_end = o->cur_start + o_count(o);
	}
	o->depth++;
}

static void XMLCALL o_end(void *ud, const XML_Char *name)
{
	struct oracle *o = ud;

	if (o->err)
		return;
	o->depth--;
	if (o->depth == 1) {
		o->t.start[o->t.n] = o->cur_start;
		o->t.tag_end[o->t.n] = o->cur_tag_end;
		o->t.end[o->t.n] = o_idx(o) + o_count(o);
		o->t.n++;
	} else if (o->depth == 0) {
		/* an empty-element tag ends at once (0 bytes of its own): an XMPP
		 * stream must open, so <stream:stream/> is refused */
		if (o_count(o) == 0) {
			o_fail(o, E_NWF, o->root_tag_end - 1);
			return;
		}
		o->closed = 1;
		o->close_end = o_idx(o) + o_count(o);
	}
}

static void XMLCALL o_text(void *ud, const XML_Char *s, int len)
{
	struct oracle *o = ud;
	size_t i, n;

	if (o->err || o->depth != 1)
		return;
	/* judge the raw bytes: "&#32;" is not whitespace at stream level */
	i = o_idx(o);
	n = o_count(o);
	if (n == 0 || i + n > o->len) {
		/* trailing ']' or CR flushed at the end: expat gives no raw range */
		for (int k = 0; k < len; k++)
			if (!is_ws((uint8_t)s[k])) {
				o_fail(o, E_NWF, i);
				return;
			}
		return;
	}
	for (size_t k = 0; k < n; k++)
		if (!is_ws(o->doc[i + k])) {
			o_fail(o, E_NWF, i + k);
			return;
		}
}

static void XMLCALL o_cdata(void *ud)
{
	struct oracle *o = ud;

	if (!o->err && o->depth == 1)
		o_fail(o, E_NWF, o_idx(o));
}

static void XMLCALL o_comment(void *ud, const XML_Char *d)
{
	struct oracle *o = ud;
	o_fail(o, E_RESTRICTED, o_idx(o));
}

static void XMLCALL o_pi(void *ud, const XML_Char *t, const XML_Char *d)
{
	struct oracle *o = ud;
	o_fail(o, E_RESTRICTED, o_idx(o));
}

static void XMLCALL o_doctype(void *ud, const XML_Char *n, const XML_Char *s, const XML_Char *p,
			      int i)
{
	struct oracle *o = ud;
	o_fail(o, E_RESTRICTED, o_idx(o));
}

static void XMLCALL o_entity(void *ud, const XML_Char *n, int pe, const XML_Char *v, int vl,
			     const XML_Char *b, const XML_Char *s, const XML_Char *p,
			     const XML_Char *nn)
{
	struct oracle *o = ud;
	o_fail(o, E_RESTRICTED, o_idx(o));
}

static void XMLCALL o_notation(void *ud, const XML_Char *n, const XML_Char *b, const XML_Char *s,
			       const XML_Char *p)
{
	struct oracle *o = ud;
	o_fail(o, E_RESTRICTED, o_idx(o));
}

static int o_class(enum XML_Error e)
{
	switch (e) {
	case XML_ERROR_UNDEFINED_ENTITY:
	case XML_ERROR_RECURSIVE_ENTITY_REF:
	case XML_ERROR_BINARY_ENTITY_REF:
	case XML_ERROR_ATTRIBUTE_EXTERNAL_ENTITY_REF:
	case XML_ERROR_EXTERNAL_ENTITY_HANDLING:
	case XML_ERROR_ENTITY_DECLARED_IN_PE:
		return E_RESTRICTED;
	default:
		return E_NWF;
	}
}

/* Parse doc[0..len) the way the edge path sees it, as one expat document. */
static void oracle_run(struct oracle *o, const uint8_t *doc, size_t len, int final)
{
	size_t base = 0;

	memset(o, 0, sizeof(*o));
	tops_init(&o->t, len);
	o->doc = doc;
	o->len = len;
	while (base < len && is_ws(doc[base]))
		base++;
	o->base = base;
	o->p = XML_ParserCreateNS("UTF-8", '\xff');
	if (!o->p)
		abort();
	/*
	 * A stream starts with '<' after optional whitespace, then a name: no
	 * byte-order mark (XMPP is UTF-8), and no NUL, which would even make
	 * expat guess UTF-16 ("\0<", "<\0") despite the forced UTF-8.
	 */
	if (base < len && (doc[base] != '<' || (base + 1 < len && doc[base + 1] == '\0'))) {
		o->err = E_NWF;
		o->err_pos = base;
		o->by_handler = 1;
		return;
	}
	XML_SetUserData(o->p, o);
	XML_SetReturnNSTriplet(o->p, XML_TRUE);
	XML_SetElementHandler(o->p, o_start, o_end);
	XML_SetCharacterDataHandler(o->p, o_text);
	XML_SetStartCdataSectionHandler(o->p, o_cdata);
	XML_SetCommentHandler(o->p, o_comment);
	XML_SetProcessingInstructionHandler(o->p, o_pi);
	XML_SetStartDoctypeDeclHandler(o->p, o_doctype);
	XML_SetEntityDeclHandler(o->p, o_entity);
	XML_SetNotationDeclHandler(o->p, o_notation);
	if (XML_Parse(o->p, (const char *)doc + base, (int)(len - base),
		      final ? XML_TRUE : XML_FALSE) != XML_STATUS_OK && !o->err) {
		o->err = o_class(XML_GetErrorCode(o->p));
		o->err_pos = o_idx(o);
	}
}

static void oracle_free(struct oracle *o)
{
	XML_ParserFree(o->p);
	tops_free(&o->t);
}

/*
 * Is byte pos inside "<?", "<!-" or "<!" + letter, which XMPP forbids
 * whatever follows (a PI, a comment, a DOCTYPE or other declaration)?  The
 * framer refuses those on their first bytes; expat judges them only once
 * complete.  Checked on the bytes, independently of the framer.
 */
static int restricted_prefix(const uint8_t *doc, size_t pos)
{
	size_t k = pos;

	while (k > 0 && pos - k < 5 && doc[k] != '<')
		k--;
	if (doc[k] != '<' || pos < k + 1)
		return 0;
	if (doc[k + 1] == '?')
		return 1;
	if (doc[k + 1] != '!' || pos < k + 2)
		return 0;
	return doc[k + 2] == '-' || ((doc[k + 2] | 0x20) >= 'a' && (doc[k + 2] | 0x20) <= 'z');
}

/*
 * The edge path judged byte pos of the unfinished item starting at item,
 * and expat (isFinal = 0) has not complained: was expat only holding the
 * bytes back?  Given the input as final, expat flushes held data through the
 * same rule handlers and must then find an error at or before pos, or a real
 * syntax error later in the same item.  "Unclosed token", "partial
 * character" and "no element found" after pos prove nothing (they only say
 * the input ends) — except after restricted_prefix(): no continuation can
 * make that acceptable, so any error at all will do.
 */
static int expat_held_back(const uint8_t *doc, size_t len, size_t item, size_t pos,
			   int prefix_rule)
{
	struct oracle o;
	enum XML_Error e;
	int ok, ending;

	oracle_run(&o, doc, len, 1);
	e = XML_GetErrorCode(o.p);
	ending = !o.by_handler && (e == XML_ERROR_UNCLOSED_TOKEN || e == XML_ERROR_PARTIAL_CHAR ||
				   e == XML_ERROR_UNCLOSED_CDATA_SECTION || e == XML_ERROR_NO_ELEMENTS);
	ok = o.err && (o.err_pos <= pos || prefix_rule || (o.err_pos >= item && !ending));
	oracle_free(&o);
	return ok;
}

/* ---- chunking --------------------------------------------------------------- */

static uint32_t rng_next(uint32_t *s)
{
	uint32_t x = *s;
	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	return *s = x;
}

/* chunk = 0: all at once; 1: byte at a time; otherwise PRNG sizes 1..chunk. */
static size_t next_chunk(size_t chunk, uint32_t *rng)
{
	if (chunk <= 1)
		return chunk;
	return 1 + rng_next(rng) % chunk;
}

/* ---- framer alone, for chunking invariance ---------------------------------- */

struct fev {
	uint8_t type, err;
	size_t end;
};

static size_t framer_events(const uint8_t *doc, size_t len, size_t chunk, uint32_t seed,
			    struct fev *ev)
{
	struct framer f;
	size_t start = 0, avail = 0, n = 0;
	uint32_t rng = seed;

	framer_reset(&f);
	while (avail < len) {
		size_t c = next_chunk(chunk, &rng);
		avail = (c == 0 || avail + c > len) ? len : avail + c;
		for (;;) {
			size_t end = 0;
			enum framer_event e = framer_scan(&f, &LIM, doc + start, avail - start, &end);
			if (e == FRAMER_MORE)
				break;
			if (e == FRAMER_ERROR) {
				ev[n++] = (struct fev){ e, f.err, start + f.off };
				return n;
			}
			CHECK(end > 0 && end <= avail - start);
			start += end;
			if (e == FRAMER_SPACE && n && ev[n - 1].type == FRAMER_SPACE)
				ev[n - 1].end = start;
			else
				ev[n++] = (struct fev){ e, 0, start };
		}
	}
	return n;
}

/* ---- the edge path ---------------------------------------------------------- */

struct edge {
	int err;          /* E_* */
	int by_framer;    /* the error came from the framer (else xmlstage / close name) */
	size_t err_pos;   /* framer: the bad byte; otherwise: the item's start */
	size_t item_start;/* framer: start of the unfinished item holding the bad byte */
	size_t item_end;  /* not by the framer: the failed item's end */
	size_t ok_end;    /* end of the last item accepted */
	int hdr_ok;
	size_t hdr_end;
	struct tops t;
	int closed;
};

static struct xmlstage *xs;

static int xs_class(int rc)
{
	if (rc == XMLSTAGE_E_RESTRICTED)
		return E_RESTRICTED;
	if (rc == XMLSTAGE_E_POLICY)
		return E_POLICY;
	return E_NWF;
}

static int fr_class(uint8_t err)
{
	if (err == FRAMER_E_RESTRICTED)
		return E_RESTRICTED;
	if (err == FRAMER_E_POLICY)
		return E_POLICY;
	return E_NWF;
}

/* Is item[0..n) "</" qname S* ">" for the header's qname? */
static int close_matches(const uint8_t *item, size_t n, const char *qname, size_t qlen)
{
	size_t i = 2 + qlen;

	if (n < i + 1 || item[0] != '<' || item[1] != '/' || memcmp(item + 2, qname, qlen) != 0)
		return 0;
	while (i < n && is_ws(item[i]))
		i++;
	return i == n - 1 && item[i] == '>';
}

static void edge_run(struct edge *g, const uint8_t *doc, size_t len, int fixed_hdr, size_t chunk,
		     uint32_t seed)
{
	struct framer f;
	struct xs_header h;
	struct xs_stanza s;
	char *decls = NULL, *qname = NULL;
	size_t dlen = 0, qlen = 0, start = 0, avail = 0;
	uint32_t rng = seed;

	framer_reset(&f);
	while (avail < len) {
		size_t c = next_chunk(chunk, &rng);
		avail = (c == 0 || avail + c > len) ? len : avail + c;
		for (;;) {
			size_t end = 0;
			enum framer_event e = framer_scan(&f, &LIM, doc + start, avail - start, &end);
			int rc;

			if (e == FRAMER_MORE)
				break;
			if (e == FRAMER_ERROR) {
				g->err = fr_class(f.err);
				g->by_framer = 1;
				g->err_pos = start + f.off;
				g->item_start = start;
				goto out;
			}
			switch (e) {
			case FRAMER_HEADER:
				CHECK(start == 0 && (!fixed_hdr || end == strlen(HDR)));
				rc = xmlstage_header(xs, (const char *)doc, end, &h);
				if (rc) {
					CHECK(!fixed_hdr);
					g->err = xs_class(rc);
					g->err_pos = start;
					g->item_end = start + end;
					goto out;
				}
				decls = malloc(h.ns_decls.len + 1);
				qlen = h.prefix.len + (h.prefix.len ? 1 : 0) + h.local.len;
				qname = malloc(qlen + 1);
				if (!decls || !qname)
					abort();
				memcpy(decls, h.ns_decls.p, h.ns_decls.len);
				dlen = h.ns_decls.len;
				/* the edge closes on a close tag naming the header's element */
				memcpy(qname, h.prefix.p, h.prefix.len);
				if (h.prefix.len)
					qname[h.prefix.len] = ':';
				memcpy(qname + qlen - h.local.len, h.local.p, h.local.len);
				g->hdr_ok = 1;
				g->hdr_end = end;
				break;
			case FRAMER_STANZA:
				rc = xmlstage_stanza(xs, decls, dlen, (const char *)doc + start, end, &s);
				if (rc) {
					g->err = xs_class(rc);
					g->err_pos = start;
					g->item_end = start + end;
					goto out;
				}
				g->t.start[g->t.n] = start;
				g->t.tag_end[g->t.n] = start + s.start_tag_end;
				g->t.end[g->t.n] = start + end;
				g->t.n++;
				break;
			case FRAMER_CLOSE:
				if (!close_matches(doc + start, end, qname, qlen)) {
					g->err = E_NWF;
					g->err_pos = start;
					g->item_end = start + end;
					goto out;
				}
				g->closed = 1;
				g->ok_end = start + end;
				goto out;
			default:
				break;
			}
			start += end;
			g->ok_end = start;
		}
	}
out:
	free(decls);
	free(qname);
}

#ifdef FUZZ_DEBUG
static struct oracle *dbg_o;
static struct edge *dbg_g;
static void dbg_dump(void)
{
	fprintf(stderr, "oracle: err=%d pos=%zu stanzas=%zu closed=%d root_tag_end=%zu\n",
		dbg_o->err, dbg_o->err_pos, dbg_o->t.n, dbg_o->closed, dbg_o->root_tag_end);
	fprintf(stderr, "edge:   err=%d by_framer=%d pos=%zu item_end=%zu ok_end=%zu stanzas=%zu "
		"closed=%d hdr_end=%zu\n", dbg_g->err, dbg_g->by_framer, dbg_g->err_pos,
		dbg_g->item_end, dbg_g->ok_end, dbg_g->t.n, dbg_g->closed, dbg_g->hdr_end);
	fprintf(stderr, "expat error: %s\n", XML_ErrorString(XML_GetErrorCode(dbg_o->p)));
}
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t len, chunk, n0, n1, n2;
	int fixed_hdr;
	uint8_t *doc;
	struct oracle o;
	struct edge g;
	struct fev *e0, *e1, *e2;
	uint32_t seed;

	if (size < 1 || size > (1u << 20))
		return 0;
	fixed_hdr = !(data[0] & 0x80);
	chunk = data[0] & 0x7f;
	seed = 0x9e3779b9u ^ data[0];
	data++;
	size--;
	if (!xs && !(xs = xmlstage_new()))
		abort();

	len = (fixed_hdr ? strlen(HDR) : 0) + size;
	doc = malloc(len ? len : 1);
	if (!doc)
		abort();
	if (fixed_hdr)
		memcpy(doc, HDR, strlen(HDR));
	memcpy(doc + len - size, data, size);

	memset(&g, 0, sizeof(g));
	tops_init(&g.t, len);
	e0 = calloc(len + 2, sizeof(*e0));
	e1 = calloc(len + 2, sizeof(*e1));
	e2 = calloc(len + 2, sizeof(*e2));
	if (!e0 || !e1 || !e2)
		abort();
#ifdef FUZZ_DEBUG
	dbg_o = &o;
	dbg_g = &g;
#endif
	oracle_run(&o, doc, len, 0);
	edge_run(&g, doc, len, fixed_hdr, chunk, seed);

	/* After the stream is closed the edge stops reading: compare before it. */
	if (g.closed) {
		CHECK(o.closed && o.close_end == g.ok_end);
		if (o.err && o.err_pos >= g.ok_end)
			o.err = E_NONE;
	}

	/* B: what the edge accepted, expat accepts, with the same boundaries... */
	CHECK(!(o.err && o.err_pos < g.ok_end));
	if (g.hdr_ok)
		CHECK(o.root_seen && o.root_tag_end == g.hdr_end);
	CHECK(o.t.n >= g.t.n);
	for (size_t i = 0; i < g.t.n; i++) {
		CHECK(o.t.start[i] == g.t.start[i]);
		CHECK(o.t.tag_end[i] == g.t.tag_end[i]);
		CHECK(o.t.end[i] == g.t.end[i]);
	}
	/*
	 * ...and nothing expat completed is missing: every stanza expat closed
	 * before the point where the edge path stopped was delivered.
	 */
	{
		size_t stop = g.err ? g.err_pos : len, want = 0;
		while (want < o.t.n && o.t.end[want] <= stop)
			want++;
		CHECK(g.t.n == want);
	}

	if (g.err != E_POLICY) {
		/* A: the edge path is never stricter than expat. */
		if (g.err && !o.err)
			CHECK(g.by_framer
				      ? expat_held_back(doc, len, g.item_start, g.err_pos,
							g.err == E_RESTRICTED &&
								restricted_prefix(doc, g.err_pos))
				      : expat_held_back(doc, len, g.err_pos, g.item_end - 1, 0));
		/* C: restricted-xml is recognised as such. */
		if (o.err == E_RESTRICTED)
			CHECK(g.err == E_RESTRICTED);
		/* xmlstage and the oracle judge a complete item alike */
		if (g.err && !g.by_framer && o.err) {
			CHECK(o.err_pos < g.item_end);
			CHECK((g.err == E_RESTRICTED) == (o.err == E_RESTRICTED));
		}
	}

	/* E: the framer's events do not depend on the chunking. */
	n0 = framer_events(doc, len, 0, seed, e0);
	n1 = framer_events(doc, len, 1, seed, e1);
	n2 = framer_events(doc, len, chunk, seed, e2);
	CHECK(n0 == n1 && n0 == n2);
	for (size_t i = 0; i < n0; i++) {
		CHECK(e0[i].type == e1[i].type && e0[i].end == e1[i].end && e0[i].err == e1[i].err);
		CHECK(e0[i].type == e2[i].type && e0[i].end == e2[i].end && e0[i].err == e2[i].err);
	}

	oracle_free(&o);
	tops_free(&g.t);
	free(e0);
	free(e1);
	free(e2);
	free(doc);
	return 0;
}
