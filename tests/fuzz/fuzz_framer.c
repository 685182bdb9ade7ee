/*
 * fuzz_framer — differential fuzzing of framer + xmlstage against expat.
 *
 * Input: byte 0 chooses the chunking (0: everything at once; n: chunks of
 * 1..n+1 bytes from a PRNG seeded with n); the rest is the body of a stream
 * whose header is the fixed HDR below.
 *
 * The "edge path" runs the framer over HDR + body as it arrives in chunks and
 * hands every item to xmlstage exactly as the edge does, stopping at the
 * first error or at the stream close.  The "oracle" is one plain expat parser
 * over the whole document (isFinal = 0) with the XMPP rules as handlers:
 * comments, PIs, DOCTYPE, entity/notation declarations and undefined
 * entities are restricted-xml; character data at stream level that is not
 * raw whitespace, and CDATA at stream level, are not-well-formed.
 *
 * Traps (__builtin_trap) when:
 *   B  the edge path accepted items up to byte B and the oracle found an
 *      error before B, or the accepted stanzas' boundaries (start, end of the
 *      start tag, end) differ from the oracle's, or a stanza the oracle
 *      completed before the edge path stopped was not delivered;
 *   A  the oracle accepts everything and the edge path reports an error,
 *      unless it is a policy limit or the edge path judged trailing bytes
 *      that expat was still holding back (checked by re-running expat with
 *      isFinal = 1, which must then report an error at or before the
 *      framer's, or inside the item xmlstage refused: e.g. "</a\xe5>" at
 *      the very end is a partial UTF-8 character to expat);
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
#define CLOSE_TAG "</stream:stream"

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

/* ---- oracle ----------------------------------------------------------------- */

struct oracle {
	XML_Parser p;
	const uint8_t *doc;
	size_t len;
	int err;            /* E_* */
	size_t err_pos;
	int by_handler;     /* err was decided by a rule handler, not by expat */
	int depth;          /* 1 = inside the stream element */
	size_t n;           /* stanzas completed */
	size_t *st_start, *st_tag_end, *st_end;
	size_t cur_start, cur_tag_end;
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
	return (size_t)XML_GetCurrentByteIndex(o->p);
}

static void XMLCALL o_start(void *ud, const XML_Char *name, const XML_Char **atts)
{
	struct oracle *o = ud;

	if (o->err)
		return;
	if (o->depth == 1) {
		o->cur_start = o_idx(o);
		o->cur_tag_end = o->cur_start + (size_t)XML_GetCurrentByteCount(o->p);
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
		o->st_start[o->n] = o->cur_start;
		o->st_tag_end[o->n] = o->cur_tag_end;
		o->st_end[o->n] = o_idx(o) + (size_t)XML_GetCurrentByteCount(o->p);
		o->n++;
	} else if (o->depth == 0) {
		o->closed = 1;
		o->close_end = o_idx(o) + (size_t)XML_GetCurrentByteCount(o->p);
	}
}

static int is_ws(uint8_t c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static void XMLCALL o_text(void *ud, const XML_Char *s, int len)
{
	struct oracle *o = ud;

	if (o->err || o->depth != 1)
		return;
	/* judge the raw bytes: "&#32;" is not whitespace at stream level */
	size_t i = o_idx(o);
	int n = XML_GetCurrentByteCount(o->p);
	if (n <= 0 || i + (size_t)n > o->len) {
		/* trailing ']' or CR flushed at the end: expat gives no raw range */
		for (int k = 0; k < len; k++)
			if (!is_ws((uint8_t)s[k])) {
				o_fail(o, E_NWF, i);
				return;
			}
		return;
	}
	for (size_t k = 0; k < (size_t)n; k++)
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

static XML_Parser o_parser(struct oracle *o)
{
	XML_Parser p = XML_ParserCreateNS("UTF-8", '\xff');

	if (!p)
		abort();
	XML_SetUserData(p, o);
	XML_SetReturnNSTriplet(p, XML_TRUE);
	XML_SetElementHandler(p, o_start, o_end);
	XML_SetCharacterDataHandler(p, o_text);
	XML_SetStartCdataSectionHandler(p, o_cdata);
	XML_SetCommentHandler(p, o_comment);
	XML_SetProcessingInstructionHandler(p, o_pi);
	XML_SetStartDoctypeDeclHandler(p, o_doctype);
	XML_SetEntityDeclHandler(p, o_entity);
	XML_SetNotationDeclHandler(p, o_notation);
	return p;
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

static void oracle_run(struct oracle *o, const uint8_t *doc, size_t len, int final)
{
	o->doc = doc;
	o->len = len;
	o->p = o_parser(o);
	if (XML_Parse(o->p, (const char *)doc, (int)len, final ? XML_TRUE : XML_FALSE) !=
	    XML_STATUS_OK && !o->err) {
		o->err = o_class(XML_GetErrorCode(o->p));
		o->err_pos = o_idx(o);
	}
}

/*
 * The framer judged byte pos, expat (isFinal = 0) has not complained: was
 * expat only holding the bytes back?  Given the input as final, expat flushes
 * held data through the same rule handlers and must then find an error at or
 * before pos.  "No element found" (the stream element is never closed in a
 * fuzz input) is reported at the end and proves nothing.
 */
static int expat_held_back(const uint8_t *doc, size_t len, size_t pos)
{
	struct oracle o;
	int ok;

	memset(&o, 0, sizeof(o));
	o.st_start = calloc(len + 1, sizeof(size_t));
	o.st_tag_end = calloc(len + 1, sizeof(size_t));
	o.st_end = calloc(len + 1, sizeof(size_t));
	oracle_run(&o, doc, len, 1);
	ok = o.err && o.err_pos <= pos &&
	     (o.by_handler || XML_GetErrorCode(o.p) != XML_ERROR_NO_ELEMENTS);
	XML_ParserFree(o.p);
	free(o.st_start);
	free(o.st_tag_end);
	free(o.st_end);
	return ok;
}

/* ---- framer alone, for chunking invariance ------------------------------ */

struct fev {
	uint8_t type, err;
	size_t end;
};

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

/* ---- the edge path -------------------------------------------------------- */

struct edge {
	int err;          /* E_* */
	int by_framer;    /* the error came from the framer (else xmlstage) */
	size_t err_pos;   /* framer: the bad byte; xmlstage: the item's start */
	size_t item_end;  /* xmlstage: the failed item's end */
	size_t ok_end;    /* end of the last item accepted */
	size_t n;
	size_t *st_start, *st_tag_end, *st_end;
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

static void edge_run(struct edge *g, const uint8_t *doc, size_t len, size_t chunk, uint32_t seed)
{
	struct framer f;
	struct xs_header h;
	struct xs_stanza s;
	char decls[512];
	size_t dlen = 0, start = 0, avail = 0;
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
				return;
			}
			switch (e) {
			case FRAMER_HEADER:
				/* the fixed header is the only one the body cannot change */
				CHECK(start == 0 && end == strlen(HDR));
				rc = xmlstage_header(xs, (const char *)doc, end, &h);
				CHECK(rc == XMLSTAGE_OK);
				CHECK(h.ns_decls.len < sizeof(decls));
				memcpy(decls, h.ns_decls.p, h.ns_decls.len);
				dlen = h.ns_decls.len;
				break;
			case FRAMER_STANZA:
				rc = xmlstage_stanza(xs, decls, dlen, (const char *)doc + start, end, &s);
				if (rc) {
					g->err = xs_class(rc);
					g->err_pos = start;
					g->item_end = start + end;
					return;
				}
				g->st_start[g->n] = start;
				g->st_tag_end[g->n] = start + s.start_tag_end;
				g->st_end[g->n] = start + end;
				g->n++;
				break;
			case FRAMER_CLOSE:
				/* the edge compares the name with the header's prefix */
				if (end < strlen(CLOSE_TAG) + 1 ||
				    memcmp(doc + start, CLOSE_TAG, strlen(CLOSE_TAG)) != 0 ||
				    !(is_ws(doc[start + strlen(CLOSE_TAG)]) ||
				      doc[start + strlen(CLOSE_TAG)] == '>')) {
					g->err = E_NWF;
					g->err_pos = start;
					g->item_end = start + end;
					return;
				}
				g->closed = 1;
				g->ok_end = start + end;
				return;
			default:
				break;
			}
			start += end;
			g->ok_end = start;
		}
	}
}

#ifdef FUZZ_DEBUG
static struct oracle *dbg_o;
static struct edge *dbg_g;
static void dbg_dump(void)
{
	fprintf(stderr, "oracle: err=%d pos=%zu stanzas=%zu closed=%d\n", dbg_o->err, dbg_o->err_pos,
		dbg_o->n, dbg_o->closed);
	fprintf(stderr, "edge:   err=%d by_framer=%d pos=%zu item_end=%zu ok_end=%zu stanzas=%zu "
		"closed=%d\n", dbg_g->err, dbg_g->by_framer, dbg_g->err_pos, dbg_g->item_end,
		dbg_g->ok_end, dbg_g->n, dbg_g->closed);
	fprintf(stderr, "expat error: %s\n", XML_ErrorString(XML_GetErrorCode(dbg_o->p)));
}
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t hl = strlen(HDR), len, chunk;
	uint8_t *doc;
	struct oracle o;
	struct edge g;
	struct fev *e0, *e1, *e2;
	size_t n0, n1, n2;
	uint32_t seed;

	if (size < 1 || size > (1u << 20))
		return 0;
	chunk = data[0];
	seed = 0x9e3779b9u ^ data[0];
	data++;
	size--;
	if (!xs && !(xs = xmlstage_new()))
		abort();

	len = hl + size;
	doc = malloc(len);
	memcpy(doc, HDR, hl);
	memcpy(doc + hl, data, size);

	memset(&o, 0, sizeof(o));
	memset(&g, 0, sizeof(g));
	o.st_start = calloc(len + 1, sizeof(size_t));
	o.st_tag_end = calloc(len + 1, sizeof(size_t));
	o.st_end = calloc(len + 1, sizeof(size_t));
	g.st_start = calloc(len + 1, sizeof(size_t));
	g.st_tag_end = calloc(len + 1, sizeof(size_t));
	g.st_end = calloc(len + 1, sizeof(size_t));
	e0 = calloc(len + 2, sizeof(*e0));
	e1 = calloc(len + 2, sizeof(*e1));
	e2 = calloc(len + 2, sizeof(*e2));

#ifdef FUZZ_DEBUG
	dbg_o = &o;
	dbg_g = &g;
#endif
	oracle_run(&o, doc, len, 0);
	edge_run(&g, doc, len, chunk, seed);

	/* After the stream is closed the edge stops reading: compare before it. */
	if (g.closed) {
		CHECK(o.closed && o.close_end == g.ok_end);
		if (o.err && o.err_pos >= g.ok_end)
			o.err = E_NONE;
	}

	/* B: what the edge accepted, expat accepts, with the same boundaries. */
	CHECK(!(o.err && o.err_pos < g.ok_end));
	CHECK(o.n >= g.n);
	for (size_t i = 0; i < g.n; i++) {
		CHECK(o.st_start[i] == g.st_start[i]);
		CHECK(o.st_tag_end[i] == g.st_tag_end[i]);
		CHECK(o.st_end[i] == g.st_end[i]);
	}

	/*
	 * ...and nothing expat completed is missing: every stanza expat closed
	 * before the point where the edge path stopped was delivered (a framer
	 * that misses a stanza's end just waits, which no other check sees).
	 */
	{
		size_t stop = g.err ? g.err_pos : len, want = 0;
		while (want < o.n && o.st_end[want] <= stop)
			want++;
		CHECK(g.n == want);
	}

	if (g.err != E_POLICY) {
		/* A: the framer is never stricter than expat. */
		if (g.err && !o.err) {
			/* xmlstage judged a whole item: expat must object inside it */
			CHECK(expat_held_back(doc, len, g.by_framer ? g.err_pos : g.item_end - 1));
		}
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

	XML_ParserFree(o.p);
	free(o.st_start);
	free(o.st_tag_end);
	free(o.st_end);
	free(g.st_start);
	free(g.st_tag_end);
	free(g.st_end);
	free(e0);
	free(e1);
	free(e2);
	free(doc);
	return 0;
}
