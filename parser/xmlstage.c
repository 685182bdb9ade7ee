/*
 * xmlstage — expat stage of stanza framing (contract in parser/xmlstage.h).
 *
 * One expat parser per xmlstage, created with namespace processing,
 * separator XS_SEP (0xFF) and triplets on, so element and attribute names
 * arrive as "uri\xfflocal" or "uri\xfflocal\xffprefix", or "local" when they
 * are in no namespace.  0xFF cannot occur in UTF-8 and expat checks UTF-8,
 * so the split is never ambiguous.  The encoding is forced to UTF-8 (an
 * encoding named in an XML declaration is ignored; RFC 6120 §11.6 allows
 * only UTF-8).
 *
 * Stream context.  For stanzas the parser sits inside a synthetic root
 * element `<stream NS_DECLS>` (an unprefixed name, so it works whatever
 * prefix the connection used for the streams namespace) and each stanza is
 * fed with isFinal = 0: expat stays inside the root between stanzas.  The
 * end of the stanza is seen by depth counting in the handlers.  The parser
 * is reset (XML_ParserReset, only ever between calls, never from a handler)
 * and the root re-fed when:
 *   - the next stanza's ns_decls differ from the current root's;
 *   - the previous call failed (expat may be stopped or mid-token);
 *   - the names seen since the last reset exceed XS_NAME_BUDGET.  expat
 *     stores every distinct element name, attribute name and prefix it meets
 *     in its DTD tables for the parser's life (measured: ~120 bytes each), so
 *     a long-lived parser fed attacker-chosen names would grow without
 *     bound.  Each name seen is charged its length + XS_NAME_COST whether or
 *     not expat already knew it (telling them apart would cost a lookup), so
 *     ordinary traffic resets every ~1000 stanzas: one reset (~2 µs) per
 *     ~1000 stanzas, and expat's tables stay under a couple of MiB.
 * xmlstage_header() also leaves the parser inside the header it parsed, so
 * the connection's first stanza needs no reset.
 *
 * Restricted XML (RFC 6120 §11.1): handlers for comments, processing
 * instructions, DOCTYPE, entity and notation declarations stop the parser
 * (XML_StopParser) and the call reports XMLSTAGE_E_RESTRICTED; expat's
 * "undefined entity" maps to RESTRICTED as well.  Any other expat error maps
 * to NOT_WELL_FORMED (RFC 6120 §4.9.3.13: XML or Namespaces in XML), an
 * unbound prefix (Namespaces in XML, "Prefix Declared") and duplicate
 * attributes (XML's "Unique Att Spec") included.  Only
 * xmlstage_stanza_fwd() returns BAD_NS_PREFIX: for a prefix that is bound in
 * the sender's own stream but not in the context the stanza is forwarded into.  An item must start with
 * '<' (after whitespace, for a header) and a header's second byte must not
 * be NUL: expat guesses UTF-16 from "\0<" or "<\0" even when UTF-8 is forced.
 *
 * Memory: everything is allocated in xmlstage_new() except
 *   - the scratch arena, which grows once from XS_SCRATCH_MIN to
 *     XS_SCRATCH_MAX when a stanza needs it (XMLSTAGE_E_POLICY beyond);
 *   - the copy of the current ns_decls, grown when a longer one is seen
 *     (capped at XS_CTX_MAX);
 *   - expat's own buffers (it keeps the largest chunk fed; bounded by the
 *     framer's max_stanza) and name tables (bounded by XS_NAME_BUDGET).
 * Strings are recorded as offsets into the scratch arena while expat runs
 * (the arena may move when it grows) and turned into pointers at the end.
 * The top element's own character data goes to a fixed XS_TEXT_MAX buffer
 * (more is XMLSTAGE_E_POLICY); the first grandchild's text to a fixed
 * XS_LEAF_MAX buffer (more is truncated), <priority/> to XS_PRIO_MAX bytes.
 */
#include "parser/xmlstage.h"
#include "parser/xmltag.h"

#include <expat.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#define XS_SEP '\xff'
#define XS_NS_XML "http://www.w3.org/XML/1998/namespace"
#define XS_DEFAULT_DECLS XMLSTAGE_C2S_DECLS

#define XS_TEXT_MAX (16u * 1024)       /* top element's own text (SASL payloads) */
#define XS_SCRATCH_MIN (4u * 1024)     /* names and attribute values of one item */
#define XS_SCRATCH_MAX (64u * 1024)
#define XS_CTX_MAX (64u * 1024)        /* ns_decls of one stream */
#define XS_NAME_BUDGET (1u << 20)      /* reset the parser after this much name charge */
#define XS_NAME_COST 128               /* charge per name on top of its length */
#define XS_MAX_DECLS 128               /* namespace declarations on a header */
#define XS_PRIO_MAX 16                 /* bytes of <priority/> text we look at */
#define XS_LEAF_MAX 4096               /* first grandchild's text (a bind <resource/>);
                                          kept to this many bytes: JID parts are <= 1023 */

/*
 * Reparse deferral (expat >= 2.6.0, and backported by Debian into some
 * 2.5.0 security updates without changing the version macros) can hold back
 * a token until more input arrives.  A stanza must be parsed completely by
 * the call that feeds it, so it is turned off.  The header of the installed
 * 2.5.0-1+deb12u1 does not declare the function, and a version check cannot
 * see the backport, so it is declared weak here and called only if the
 * loaded libexpat provides it.
 */
#if XML_MAJOR_VERSION > 2 || (XML_MAJOR_VERSION == 2 && XML_MINOR_VERSION >= 6)
#define xs_no_deferral(p) ((void)XML_SetReparseDeferralEnabled((p), XML_FALSE))
#else
extern XML_Bool XML_SetReparseDeferralEnabled(XML_Parser parser, XML_Bool enabled)
	__attribute__((weak));
static void xs_no_deferral(XML_Parser p)
{
	if (XML_SetReparseDeferralEnabled)
		(void)XML_SetReparseDeferralEnabled(p, XML_FALSE);
}
#endif

enum xs_mode {
	XS_IDLE,   /* between calls: handlers ignore everything */
	XS_ROOT,   /* feeding the synthetic root: exactly one start tag, nothing else */
	XS_HEADER, /* parsing a stream header */
	XS_STANZA  /* parsing one top-level element */
};

/* A string in the scratch arena: offset and length, NUL at off + len. */
struct span {
	uint32_t off, len;
	uint8_t set;
};

/* Fields extracted from the current item. */
enum {
	FLD_NS, FLD_LOCAL, FLD_PREFIX, FLD_DEFNS,
	FLD_TO, FLD_FROM, FLD_TYPE, FLD_ID, FLD_LANG, FLD_VERSION,
	FLD_CHILD_NS, FLD_CHILD_LOCAL,
	FLD_N
};

struct xmlstage {
	XML_Parser p;
	unsigned long salt;       /* hash salt kept across resets (no getrandom per reset) */
	int mode;                 /* enum xs_mode */
	int err;                  /* error decided by a handler, 0 if none */
	int need_reset;           /* parser unusable until reset (error, stop, partial) */
	int unbound;              /* the last error was expat's unbound prefix */
	uint64_t fed;             /* bytes fed since the last reset (expat's byte index) */
	uint64_t base;            /* value of fed where the current item began */
	uint64_t names;           /* name charge since the last reset (XS_NAME_BUDGET) */

	char *ctx;                /* ns_decls of the current root, valid if ctx_valid */
	size_t ctx_len, ctx_cap;
	int ctx_valid;

	/* per item */
	unsigned depth;           /* open elements of the item */
	int top_seen, top_done, is_presence;
	unsigned children;
	size_t start_tag_end;
	struct span f[FLD_N];
	struct span decl_prefix[XS_MAX_DECLS], decl_uri[XS_MAX_DECLS];
	unsigned ndecls;
	int in_prio, prio_seen, prio_bad;
	char prio[XS_PRIO_MAX];
	size_t prio_len;
	int leaf_state;           /* 0: no grandchild yet, 1: inside the first one, 2: done */
	char leaf[XS_LEAF_MAX + 1];
	size_t leaf_len;

	char *scratch;
	size_t used, size;
	char *text;               /* XS_TEXT_MAX + 1 bytes */
	size_t text_len;
};

const char *xmlstage_error_str(int err)
{
	switch (err) {
	case XMLSTAGE_OK:
		return "ok";
	case XMLSTAGE_E_NOT_WELL_FORMED:
		return "not-well-formed";
	case XMLSTAGE_E_RESTRICTED:
		return "restricted-xml";
	case XMLSTAGE_E_INVALID_NS:
		return "invalid-namespace";
	case XMLSTAGE_E_BAD_FORMAT:
		return "bad-format";
	case XMLSTAGE_E_POLICY:
		return "policy-violation";
	case XMLSTAGE_E_BAD_NS_PREFIX:
		return "bad-namespace-prefix";
	}
	return "undefined-condition";
}

/* Stop expat from inside a handler; the first reason wins. */
static void xs_stop(struct xmlstage *xs, int err)
{
	if (!xs->err)
		xs->err = err;
	XML_StopParser(xs->p, XML_FALSE);
}

/* Copy s[0..n) into the arena as a NUL-terminated string. */
static int xs_reserve(struct xmlstage *xs, size_t n);

static int xs_store(struct xmlstage *xs, struct span *sp, const char *s, size_t n)
{
	if (n >= XS_SCRATCH_MAX || xs_reserve(xs, n + 1))
		return -1;
	memcpy(xs->scratch + xs->used, s, n);
	xs->scratch[xs->used + n] = '\0';
	sp->off = (uint32_t)xs->used;
	sp->len = (uint32_t)n;
	sp->set = 1;
	xs->used += n + 1;
	return 0;
}

static void xs_field(struct xmlstage *xs, int fld, const char *s, size_t n)
{
	if (xs_store(xs, &xs->f[fld], s, n))
		xs_stop(xs, XMLSTAGE_E_POLICY);
}

static struct xs_str xs_get(const struct xmlstage *xs, const struct span *sp)
{
	struct xs_str r = { "", 0 };
	if (sp->set) {
		r.p = xs->scratch + sp->off;
		r.len = sp->len;
	}
	return r;
}

/* Split an expat name "uri SEP local [SEP prefix]" or "local". */
struct qname {
	const char *ns, *local, *prefix;
	size_t ns_len, local_len, prefix_len;
};

static void xs_split(const char *name, struct qname *q)
{
	const char *s1 = strchr(name, XS_SEP), *s2;

	if (!s1) {
		q->ns = "";
		q->ns_len = 0;
		q->local = name;
		q->local_len = strlen(name);
		q->prefix = "";
		q->prefix_len = 0;
		return;
	}
	q->ns = name;
	q->ns_len = (size_t)(s1 - name);
	q->local = s1 + 1;
	s2 = strchr(q->local, XS_SEP);
	if (s2) {
		q->local_len = (size_t)(s2 - q->local);
		q->prefix = s2 + 1;
		q->prefix_len = strlen(q->prefix);
	} else {
		q->local_len = strlen(q->local);
		q->prefix = "";
		q->prefix_len = 0;
	}
}

static int eq(const char *a, size_t alen, const char *lit)
{
	return strlen(lit) == alen && memcmp(a, lit, alen) == 0;
}

/* Record to/from/type/id/version (unprefixed) and xml:lang of a top element. */
static void xs_attrs(struct xmlstage *xs, const char **atts, int header)
{
	for (; atts[0]; atts += 2) {
		struct qname q;
		int fld = -1;

		xs_split(atts[0], &q);
		if (q.ns_len == 0) {
			if (eq(q.local, q.local_len, "to"))
				fld = FLD_TO;
			else if (eq(q.local, q.local_len, "from"))
				fld = FLD_FROM;
			else if (eq(q.local, q.local_len, "id"))
				fld = FLD_ID;
			else if (!header && eq(q.local, q.local_len, "type"))
				fld = FLD_TYPE;
			else if (header && eq(q.local, q.local_len, "version"))
				fld = FLD_VERSION;
		} else if (eq(q.ns, q.ns_len, XS_NS_XML) && eq(q.local, q.local_len, "lang")) {
			fld = FLD_LANG;
		}
		if (fld >= 0)
			xs_field(xs, fld, atts[1], strlen(atts[1]));
	}
}

/* The byte offset just past the current event's bytes, relative to the item. */
static size_t xs_event_end(const struct xmlstage *xs)
{
	XML_Index i = XML_GetCurrentByteIndex(xs->p);
	int n = XML_GetCurrentByteCount(xs->p);

	if (i < 0 || (uint64_t)i < xs->base)
		return 0;
	return (size_t)((uint64_t)i - xs->base) + (size_t)(n > 0 ? n : 0);
}

static void XMLCALL on_start(void *ud, const XML_Char *name, const XML_Char **atts)
{
	struct xmlstage *xs = ud;
	struct qname q;

	if (xs->err || xs->mode == XS_IDLE)
		return;
	if (xs->mode == XS_ROOT) {
		/* ns_decls that smuggle in markup: not from one of our headers */
		if (xs->top_seen++)
			xs_stop(xs, XMLSTAGE_E_NOT_WELL_FORMED);
		return;
	}
	xs->names += strlen(name) + XS_NAME_COST;
	for (const char **a = atts; a[0]; a += 2)
		xs->names += strlen(a[0]) + XS_NAME_COST;
	xs_split(name, &q);
	if (xs->mode == XS_HEADER) {
		/* the header item holds exactly one start tag: the stream's */
		if (xs->top_seen) {
			xs_stop(xs, XMLSTAGE_E_NOT_WELL_FORMED);
			return;
		}
		xs->top_seen = 1;
		xs->depth = 1;
		xs_field(xs, FLD_NS, q.ns, q.ns_len);
		xs_field(xs, FLD_LOCAL, q.local, q.local_len);
		xs_field(xs, FLD_PREFIX, q.prefix, q.prefix_len);
		xs_attrs(xs, atts, 1);
		return;
	}

	if (xs->depth == 0) {
		/* a second element in one item: the framer and expat disagree */
		if (xs->top_seen) {
			xs_stop(xs, XMLSTAGE_E_NOT_WELL_FORMED);
			return;
		}
		xs->top_seen = 1;
		xs->start_tag_end = xs_event_end(xs);
		xs_field(xs, FLD_NS, q.ns, q.ns_len);
		xs_field(xs, FLD_LOCAL, q.local, q.local_len);
		xs->is_presence = eq(q.local, q.local_len, "presence");
		xs_attrs(xs, atts, 0);
	} else if (xs->depth == 1) {
		if (xs->children++ == 0) {
			xs_field(xs, FLD_CHILD_NS, q.ns, q.ns_len);
			xs_field(xs, FLD_CHILD_LOCAL, q.local, q.local_len);
		}
		/* <priority/> in the presence's own namespace; the first one counts */
		if (xs->is_presence && !xs->prio_seen && eq(q.local, q.local_len, "priority") &&
		    xs->f[FLD_NS].set && q.ns_len == xs->f[FLD_NS].len &&
		    memcmp(q.ns, xs->scratch + xs->f[FLD_NS].off, q.ns_len) == 0) {
			xs->prio_seen = 1;
			xs->in_prio = 1;
		}
	} else if (xs->depth == 2 && xs->in_prio) {
		xs->prio_bad = 1; /* markup inside <priority/> */
	}
	if (xs->depth == 2 && xs->children == 1 && xs->leaf_state == 0)
		xs->leaf_state = 1; /* the first child's first child, e.g. bind's <resource/> */
	xs->depth++;
}

/* <priority/> holds an xs:byte: optional spaces and sign, digits, spaces. */
static int xs_priority(const char *s, size_t n, int bad)
{
	size_t i = 0;
	int neg = 0, v = 0, digits = 0;

	if (bad)
		return 0;
	while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n'))
		i++;
	if (i < n && (s[i] == '-' || s[i] == '+'))
		neg = s[i++] == '-';
	for (; i < n && s[i] >= '0' && s[i] <= '9'; i++, digits++) {
		v = v * 10 + (s[i] - '0');
		if (v > 128)
			return 0;
	}
	while (i < n && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n'))
		i++;
	if (!digits || i != n)
		return 0;
	if (neg)
		v = -v;
	return v > 127 ? 0 : v;
}

static void XMLCALL on_end(void *ud, const XML_Char *name)
{
	struct xmlstage *xs = ud;

	if (xs->err || xs->mode == XS_IDLE)
		return;
	if (xs->mode != XS_STANZA || xs->depth == 0) {
		/* closes the stream element inside one item */
		xs_stop(xs, XMLSTAGE_E_NOT_WELL_FORMED);
		return;
	}
	xs->depth--;
	if (xs->depth == 1 && xs->in_prio)
		xs->in_prio = 0;
	if (xs->depth == 2 && xs->leaf_state == 1)
		xs->leaf_state = 2;
	if (xs->depth == 0)
		xs->top_done = 1;
}

static void XMLCALL on_text(void *ud, const XML_Char *s, int n)
{
	struct xmlstage *xs = ud;

	if (xs->err || xs->mode == XS_IDLE || n <= 0)
		return;
	if (xs->mode != XS_STANZA || xs->depth == 0) {
		xs_stop(xs, XMLSTAGE_E_NOT_WELL_FORMED);
		return;
	}
	if (xs->depth == 1) {
		if ((size_t)n > XS_TEXT_MAX - xs->text_len) {
			xs_stop(xs, XMLSTAGE_E_POLICY);
			return;
		}
		memcpy(xs->text + xs->text_len, s, (size_t)n);
		xs->text_len += (size_t)n;
	} else if (xs->depth == 2 && xs->in_prio) {
		if ((size_t)n > XS_PRIO_MAX - xs->prio_len) {
			xs->prio_bad = 1;
			return;
		}
		memcpy(xs->prio + xs->prio_len, s, (size_t)n);
		xs->prio_len += (size_t)n;
	} else if (xs->depth == 3 && xs->leaf_state == 1) {
		/*
		 * Truncate, never fail: every stanza's first grandchild passes here
		 * (an XHTML-IM <body/> may be long), and the one consumer, a bind
		 * <resource/>, rejects anything near this size as an invalid JID part.
		 */
		size_t room = XS_LEAF_MAX - xs->leaf_len;
		size_t k = (size_t)n < room ? (size_t)n : room;
		memcpy(xs->leaf + xs->leaf_len, s, k);
		xs->leaf_len += k;
	}
}

static void XMLCALL on_ns(void *ud, const XML_Char *prefix, const XML_Char *uri)
{
	struct xmlstage *xs = ud;
	unsigned i;

	if (xs->err)
		return;
	/* declarations intern their prefix (as an attribute name) in expat */
	xs->names += (prefix ? strlen(prefix) : 0) + XS_NAME_COST;
	if (xs->mode != XS_HEADER || xs->top_seen)
		return;
	if (xs->ndecls >= XS_MAX_DECLS) {
		xs_stop(xs, XMLSTAGE_E_POLICY);
		return;
	}
	i = xs->ndecls++;
	memset(&xs->decl_prefix[i], 0, sizeof(xs->decl_prefix[i]));
	if (prefix && xs_store(xs, &xs->decl_prefix[i], prefix, strlen(prefix)))
		xs_stop(xs, XMLSTAGE_E_POLICY);
	if (xs_store(xs, &xs->decl_uri[i], uri ? uri : "", uri ? strlen(uri) : 0))
		xs_stop(xs, XMLSTAGE_E_POLICY);
	if (!prefix)
		xs->f[FLD_DEFNS] = xs->decl_uri[i];
}

static void XMLCALL on_comment(void *ud, const XML_Char *data)
{
	xs_stop(ud, XMLSTAGE_E_RESTRICTED);
}

static void XMLCALL on_pi(void *ud, const XML_Char *target, const XML_Char *data)
{
	xs_stop(ud, XMLSTAGE_E_RESTRICTED);
}

static void XMLCALL on_doctype(void *ud, const XML_Char *name, const XML_Char *sysid,
			       const XML_Char *pubid, int has_internal_subset)
{
	xs_stop(ud, XMLSTAGE_E_RESTRICTED);
}

static void XMLCALL on_entity(void *ud, const XML_Char *name, int is_pe, const XML_Char *value,
			      int value_len, const XML_Char *base, const XML_Char *sysid,
			      const XML_Char *pubid, const XML_Char *notation)
{
	xs_stop(ud, XMLSTAGE_E_RESTRICTED);
}

static void XMLCALL on_notation(void *ud, const XML_Char *name, const XML_Char *base,
				const XML_Char *sysid, const XML_Char *pubid)
{
	xs_stop(ud, XMLSTAGE_E_RESTRICTED);
}

/* Handlers and options do not survive XML_ParserReset: install them each time. */
static void xs_setup(struct xmlstage *xs)
{
	XML_Parser p = xs->p;

	XML_SetUserData(p, xs);
	XML_SetReturnNSTriplet(p, XML_TRUE);
	XML_SetHashSalt(p, xs->salt);
	xs_no_deferral(p);
	XML_SetElementHandler(p, on_start, on_end);
	XML_SetCharacterDataHandler(p, on_text);
	XML_SetStartNamespaceDeclHandler(p, on_ns);
	XML_SetCommentHandler(p, on_comment);
	XML_SetProcessingInstructionHandler(p, on_pi);
	XML_SetStartDoctypeDeclHandler(p, on_doctype);
	XML_SetEntityDeclHandler(p, on_entity);
	XML_SetNotationDeclHandler(p, on_notation);
}

/* expat's verdict, mapped on the stream error conditions. */
static int xs_map(struct xmlstage *xs)
{
	if (xs->err)
		return xs->err;
	xs->unbound = XML_GetErrorCode(xs->p) == XML_ERROR_UNBOUND_PREFIX;
	switch (XML_GetErrorCode(xs->p)) {
	case XML_ERROR_UNDEFINED_ENTITY:
	case XML_ERROR_RECURSIVE_ENTITY_REF:
	case XML_ERROR_BINARY_ENTITY_REF:
	case XML_ERROR_ATTRIBUTE_EXTERNAL_ENTITY_REF:
	case XML_ERROR_EXTERNAL_ENTITY_HANDLING:
	case XML_ERROR_ENTITY_DECLARED_IN_PE:
		return XMLSTAGE_E_RESTRICTED;
	case XML_ERROR_UNBOUND_PREFIX:
		/* Namespaces in XML, NSC "Prefix Declared": RFC 6120 §4.9.3.13 */
		return XMLSTAGE_E_NOT_WELL_FORMED;
	case XML_ERROR_DUPLICATE_ATTRIBUTE:
		/* XML 1.0 WFC "Unique Att Spec": a well-formedness error */
		return XMLSTAGE_E_NOT_WELL_FORMED;
	case XML_ERROR_NO_MEMORY:
		return XMLSTAGE_E_POLICY;
	default:
		return XMLSTAGE_E_NOT_WELL_FORMED;
	}
}

static void xs_begin_item(struct xmlstage *xs, int mode)
{
	xs->mode = mode;
	xs->err = 0;
	xs->depth = 0;
	xs->top_seen = xs->top_done = xs->is_presence = 0;
	xs->children = 0;
	xs->start_tag_end = 0;
	memset(xs->f, 0, sizeof(xs->f));
	xs->ndecls = 0;
	xs->in_prio = xs->prio_seen = xs->prio_bad = 0;
	xs->prio_len = 0;
	xs->leaf_state = 0;
	xs->leaf_len = 0;
	xs->used = 0;
	xs->text_len = 0;
	xs->base = xs->fed;
}

static int xs_feed(struct xmlstage *xs, const char *buf, size_t len)
{
	xs->unbound = 0;
	/* expat takes an int length; items are far smaller, but say so */
	if (len > INT32_MAX)
		return XMLSTAGE_E_POLICY;
	if (XML_Parse(xs->p, buf, (int)len, XML_FALSE) != XML_STATUS_OK)
		return xs_map(xs);
	xs->fed += len;
	return xs->err;
}

static void xs_reset(struct xmlstage *xs)
{
	XML_ParserReset(xs->p, "UTF-8");
	xs_setup(xs);
	xs->fed = 0;
	xs->names = 0;
	xs->need_reset = 0;
	xs->ctx_valid = 0;
	xs->mode = XS_IDLE;
}

static int xs_set_ctx(struct xmlstage *xs, const char *decls, size_t n)
{
	if (n > xs->ctx_cap) {
		size_t cap = n < 256 ? 256 : n;
		char *g;
		if (n > XS_CTX_MAX)
			return -1;
		g = realloc(xs->ctx, cap);
		if (!g)
			return -1;
		xs->ctx = g;
		xs->ctx_cap = cap;
	}
	if (n)
		memcpy(xs->ctx, decls, n);
	xs->ctx_len = n;
	xs->ctx_valid = 1;
	return 0;
}

/* Put the parser inside `<stream DECLS>`, reusing the current root if equal. */
static int xs_enter(struct xmlstage *xs, const char *decls, size_t n)
{
	int rc;

	if (!xs->need_reset && xs->ctx_valid && xs->names < XS_NAME_BUDGET && n == xs->ctx_len &&
	    (n == 0 || memcmp(decls, xs->ctx, n) == 0))
		return XMLSTAGE_OK;
	xs_reset(xs);
	if (xs_set_ctx(xs, decls, n))
		return XMLSTAGE_E_POLICY;
	xs->ctx_valid = 0;
	xs_begin_item(xs, XS_ROOT);
	rc = xs_feed(xs, "<stream ", 8);
	/* from our copy: decls may point into the scratch arena (a header result) */
	if (!rc)
		rc = xs_feed(xs, xs->ctx, n);
	if (!rc)
		rc = xs_feed(xs, ">", 1);
	if (!rc && !xs->top_seen)
		rc = XMLSTAGE_E_NOT_WELL_FORMED;
	xs->mode = XS_IDLE;
	if (rc) {
		/* declarations that expat refuses: not from one of our headers */
		xs->need_reset = 1;
		return rc;
	}
	xs->ctx_valid = 1;
	return XMLSTAGE_OK;
}

struct xmlstage *xmlstage_new(void)
{
	struct xmlstage *xs = calloc(1, sizeof(*xs));

	if (!xs)
		return NULL;
	xs->p = XML_ParserCreateNS("UTF-8", XS_SEP);
	xs->scratch = malloc(XS_SCRATCH_MIN);
	xs->text = malloc(XS_TEXT_MAX + 1);
	if (!xs->p || !xs->scratch || !xs->text)
		goto fail;
	xs->size = XS_SCRATCH_MIN;
	/* one salt for the xmlstage's life: resets then need no entropy */
	if (getrandom(&xs->salt, sizeof(xs->salt), GRND_NONBLOCK) != (ssize_t)sizeof(xs->salt))
		xs->salt = (unsigned long)(uintptr_t)xs ^ 0x9e3779b97f4a7c15ul;
	if (!xs->salt)
		xs->salt = 1;
	xs_setup(xs);
	xs->need_reset = 1;
	return xs;
fail:
	xmlstage_free(xs);
	return NULL;
}

void xmlstage_free(struct xmlstage *xs)
{
	if (!xs)
		return;
	if (xs->p)
		XML_ParserFree(xs->p);
	free(xs->scratch);
	free(xs->text);
	free(xs->ctx);
	free(xs);
}

static int is_space(char c)
{
	return c == ' ' || c == '\n' || c == '\t' || c == '\r';
}

/* Make room for n more bytes in the arena (it grows once, to XS_SCRATCH_MAX). */
static int xs_reserve(struct xmlstage *xs, size_t n)
{
	char *g;

	if (n <= xs->size - xs->used)
		return 0;
	if (xs->size >= XS_SCRATCH_MAX || n > XS_SCRATCH_MAX - xs->used)
		return -1;
	g = realloc(xs->scratch, XS_SCRATCH_MAX);
	if (!g)
		return -1;
	xs->scratch = g;
	xs->size = XS_SCRATCH_MAX;
	return 0;
}

/* Order of declarations in ns_decls: the default one first, then by prefix. */
static int decl_cmp(const struct xmlstage *xs, unsigned a, unsigned b)
{
	const struct span *pa = &xs->decl_prefix[a], *pb = &xs->decl_prefix[b];

	if (!pa->set || !pb->set)
		return (int)pa->set - (int)pb->set;
	return strcmp(xs->scratch + pa->off, xs->scratch + pb->off);
}

/*
 * Serialise the header's namespace declarations as attribute text.  A
 * canonical order makes headers that differ only in attribute order (both
 * are common among clients) share one parser context.
 */
static int xs_decls(struct xmlstage *xs, struct span *out)
{
	unsigned order[XS_MAX_DECLS];
	size_t need = 1, start;

	for (unsigned i = 0; i < xs->ndecls; i++) {
		unsigned j = i;
		while (j > 0 && decl_cmp(xs, order[j - 1], i) > 0) {
			order[j] = order[j - 1];
			j--;
		}
		order[j] = i;
	}
	for (unsigned i = 0; i < xs->ndecls; i++) {
		const struct span *pp = &xs->decl_prefix[i], *u = &xs->decl_uri[i];
		need += 1 + 5 + (pp->set ? 1 + pp->len : 0) + 2 +
			xml_escape(xs->scratch + u->off, u->len, NULL, 0) + 1;
	}
	if (xs_reserve(xs, need + 8))
		return -1;
	start = xs->used;
	/*
	 * No declarations at all: say so explicitly, since "" means the c2s
	 * default to xmlstage_stanza() (and would bind stream: for a stream
	 * that never did).  At the root, xmlns='' changes nothing.
	 */
	if (xs->ndecls == 0) {
		memcpy(xs->scratch + xs->used, "xmlns=''", 8);
		xs->used += 8;
	}
	for (unsigned k = 0; k < xs->ndecls; k++) {
		const struct span *pp = &xs->decl_prefix[order[k]], *u = &xs->decl_uri[order[k]];
		char *w = xs->scratch + xs->used;
		if (k)
			*w++ = ' ';
		memcpy(w, "xmlns", 5);
		w += 5;
		if (pp->set) {
			*w++ = ':';
			memcpy(w, xs->scratch + pp->off, pp->len);
			w += pp->len;
		}
		*w++ = '=';
		*w++ = '\'';
		w += xml_escape(xs->scratch + u->off, u->len, w, u->len * 6);
		*w++ = '\'';
		xs->used = (size_t)(w - xs->scratch);
	}
	xs->scratch[xs->used] = '\0';
	out->off = (uint32_t)start;
	out->len = (uint32_t)(xs->used - start);
	out->set = 1;
	xs->used++;
	return 0;
}

int xmlstage_header(struct xmlstage *xs, const char *buf, size_t len, struct xs_header *out)
{
	struct span decls;
	size_t skip = 0;
	int rc;

	memset(out, 0, sizeof(*out));
	/*
	 * Whitespace before a restart header belongs to the previous stream
	 * (keepalives sent between <success/> and the new header): skip it so an
	 * XML declaration still comes first for expat.
	 */
	while (skip < len && is_space(buf[skip]))
		skip++;
	/*
	 * expat guesses the encoding from the first two bytes even with UTF-8
	 * forced: a NUL in either (00 3C, 3C 00) or a UTF-16 byte-order mark
	 * switches it to UTF-16.  '<' and a non-NUL byte keep it on UTF-8 (and
	 * a byte-order mark is not XMPP anyway).
	 */
	if (skip >= len || buf[skip] != '<' || (skip + 1 < len && buf[skip + 1] == '\0')) {
		xs->need_reset = 1;
		return XMLSTAGE_E_NOT_WELL_FORMED;
	}
	xs_reset(xs);
	xs_begin_item(xs, XS_HEADER);
	rc = xs_feed(xs, buf + skip, len - skip);
	if (!rc && !xs->top_seen)
		rc = XMLSTAGE_E_NOT_WELL_FORMED; /* no stream element in the item */
	if (!rc && xs_decls(xs, &decls))
		rc = XMLSTAGE_E_POLICY;
	if (!rc && xs_set_ctx(xs, xs->scratch + decls.off, decls.len))
		rc = XMLSTAGE_E_POLICY;
	if (rc) {
		xs->need_reset = 1;
		xs->ctx_valid = 0;
		return rc;
	}
	/* the parser now sits inside this stream: stanzas can follow directly */
	xs->mode = XS_IDLE;

	out->name_ns = xs_get(xs, &xs->f[FLD_NS]);
	out->local = xs_get(xs, &xs->f[FLD_LOCAL]);
	out->prefix = xs_get(xs, &xs->f[FLD_PREFIX]);
	out->default_ns = xs_get(xs, &xs->f[FLD_DEFNS]);
	out->to = xs_get(xs, &xs->f[FLD_TO]);
	out->from = xs_get(xs, &xs->f[FLD_FROM]);
	out->version = xs_get(xs, &xs->f[FLD_VERSION]);
	out->id = xs_get(xs, &xs->f[FLD_ID]);
	out->lang = xs_get(xs, &xs->f[FLD_LANG]);
	out->ns_decls = xs_get(xs, &decls);
	out->has_to = xs->f[FLD_TO].set;
	out->has_version = xs->f[FLD_VERSION].set;
	return XMLSTAGE_OK;
}

int xmlstage_stanza(struct xmlstage *xs, const char *ns_decls, size_t ns_len,
		    const char *buf, size_t len, struct xs_stanza *out)
{
	int rc;

	memset(out, 0, sizeof(*out));
	xs->unbound = 0;
	if (!ns_decls || ns_len == 0) {
		ns_decls = XS_DEFAULT_DECLS;
		ns_len = sizeof(XS_DEFAULT_DECLS) - 1;
	}
	/* an item is one element: it starts with '<' (see xmlstage_header on why) */
	if (len == 0 || buf[0] != '<')
		return XMLSTAGE_E_NOT_WELL_FORMED;
	rc = xs_enter(xs, ns_decls, ns_len);
	if (rc)
		return rc;
	xs_begin_item(xs, XS_STANZA);
	rc = xs_feed(xs, buf, len);
	if (!rc && (!xs->top_done || xs->depth != 0))
		rc = XMLSTAGE_E_NOT_WELL_FORMED; /* the element did not end in the item */
	xs->mode = XS_IDLE;
	if (rc) {
		xs->need_reset = 1;
		return rc;
	}

	out->ns = xs_get(xs, &xs->f[FLD_NS]);
	out->local = xs_get(xs, &xs->f[FLD_LOCAL]);
	out->to = xs_get(xs, &xs->f[FLD_TO]);
	out->from = xs_get(xs, &xs->f[FLD_FROM]);
	out->type = xs_get(xs, &xs->f[FLD_TYPE]);
	out->id = xs_get(xs, &xs->f[FLD_ID]);
	out->lang = xs_get(xs, &xs->f[FLD_LANG]);
	out->has_to = xs->f[FLD_TO].set;
	out->has_from = xs->f[FLD_FROM].set;
	out->has_type = xs->f[FLD_TYPE].set;
	out->has_id = xs->f[FLD_ID].set;
	out->child_ns = xs_get(xs, &xs->f[FLD_CHILD_NS]);
	out->child_local = xs_get(xs, &xs->f[FLD_CHILD_LOCAL]);
	out->children = xs->children;
	xs->text[xs->text_len] = '\0';
	out->text.p = xs->text;
	out->text.len = xs->text_len;
	xs->leaf[xs->leaf_len] = '\0';
	out->leaf_text.p = xs->leaf;
	out->leaf_text.len = xs->leaf_len;
	out->priority = xs->prio_seen ? xs_priority(xs->prio, xs->prio_len, xs->prio_bad) : 0;
	out->start_tag_end = xs->start_tag_end;
	return XMLSTAGE_OK;
}

int xmlstage_stanza_fwd(struct xmlstage *xs, const char *own_decls, size_t own_len,
			const char *buf, size_t len, struct xs_stanza *out)
{
	int rc = xmlstage_stanza(xs, NULL, 0, buf, len, out);

	if (rc != XMLSTAGE_E_NOT_WELL_FORMED || !xs->unbound || !own_decls || own_len == 0 ||
	    (own_len == sizeof(XS_DEFAULT_DECLS) - 1 && memcmp(own_decls, XS_DEFAULT_DECLS, own_len) == 0))
		return rc;
	/*
	 * Unbound where it is forwarded to: is it bound in the sender's own
	 * stream?  Only on this error path, so a second parse costs nothing in
	 * normal traffic; the next stanza's xs_enter() switches back.
	 */
	rc = xmlstage_stanza(xs, own_decls, own_len, buf, len, out);
	memset(out, 0, sizeof(*out));
	if (rc == XMLSTAGE_OK)
		return XMLSTAGE_E_BAD_NS_PREFIX;
	if (rc == XMLSTAGE_E_NOT_WELL_FORMED && xs->unbound)
		return XMLSTAGE_E_NOT_WELL_FORMED; /* bound nowhere */
	/*
	 * The prefix is bound in the sender's stream, and the stanza has another
	 * defect there: report that one, the first the sender's own parser sees.
	 */
	return rc;
}
