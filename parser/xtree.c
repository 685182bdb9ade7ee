/*
 * xtree — bounded XML tree on expat (contract in parser/xtree.h).
 *
 * Parsing.  One expat parser per call, created with namespace processing,
 * separator XT_SEP (0xFF, which UTF-8 never contains, so the split is never
 * ambiguous) and triplets, so names arrive as "uri\xfflocal\xffprefix",
 * "uri\xfflocal" (default namespace) or "local" (no namespace).  The input
 * is fed inside a synthetic root `<r CTX>`, then `</r>` ends the document:
 * that gives the input its stream's namespace context and lets the handlers
 * see, by depth, anything that is not exactly one element (text or a second
 * element at depth 0, or an end tag closing the root).  Restricted XML is
 * enforced as in xmlstage.c: the handlers for comments, PIs, DOCTYPE, entity
 * and notation declarations stop the parser, and expat's undefined-entity
 * errors map to XTREE_E_RESTRICTED.
 *
 * Namespace URIs.  Each declaration's URI is copied into the arena once, on
 * a stack of bindings (prefix, URI, depth of the declaring element; the
 * root's at depth 0) popped when the declaring element ends.  A name's URI
 * is then the innermost binding of its prefix, so the elements of one scope
 * share one string and the arena stays linear in the input even for
 * `<a xmlns='LONG'><b/><b/>...`.  XTREE_MAX_NS bounds the stack and so the
 * cost of a lookup.
 *
 * Text.  An element's direct text arrives in pieces between its children.
 * The pieces go onto one text stack (a buffer of the input's length: decoded
 * text is never longer than its source); an open element remembers where
 * its text starts (in text_len until it ends), its children's text is
 * pushed above and popped when each child ends, so its own pieces end up
 * contiguous and are copied into the arena when it ends.  Text that is only
 * white space in an element with children is dropped then: it is the
 * indentation of element-only content, and kept it would gather in front
 * of the children when the element is written.
 *
 * Arena.  A chain of blocks, doubling from XT_BLOCK_MIN to XT_BLOCK_MAX
 * (one block of exactly the size needed for a larger request); pointers
 * stay valid as it grows.  Every byte malloc'd for blocks counts against
 * max_mem.  The struct xtree itself lives in the first block.
 */
#include "parser/xtree.h"

#include <expat.h>
#include <stdalign.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define XT_SEP '\xff'
#define XT_ALIGN alignof(max_align_t)
#define XT_BLOCK_MIN (4u * 1024)
#define XT_BLOCK_MAX (256u * 1024)

struct xt_block {
	struct xt_block *next;
	size_t size, used;
	alignas(max_align_t) unsigned char data[];
};

struct xtree {
	struct xt_block *blocks; /* newest first; the last one holds this struct */
	size_t mem, max_mem;     /* bytes malloc'd for blocks, and the cap */
	struct xtree_node *root;
};

struct xt_binding {
	const char *prefix; /* NULL for the default namespace */
	size_t prefix_len;
	const char *uri;    /* "" for xmlns='' */
	size_t uri_len;
	unsigned depth;     /* of the declaring element; 0 for the context */
};

struct xt_parse {
	struct xtree *t;
	struct xtree_limits lim;
	XML_Parser p;
	long long body, body_end;  /* byte indexes where the input begins and ends */
	int err;                   /* decided by a handler, 0 if none */
	int root_seen, top_seen, top_done;
	unsigned depth;            /* open elements of the input */
	unsigned elements;
	struct xtree_node *cur;    /* innermost open element, NULL at depth 0 */
	char *text;                /* the text stack */
	size_t text_used, text_cap;
	struct xt_binding bind[XTREE_MAX_NS];
	unsigned nbind;
};

const char *xtree_error_str(int err)
{
	switch (err) {
	case XTREE_OK:
		return "ok";
	case XTREE_E_MALFORMED:
		return "malformed";
	case XTREE_E_RESTRICTED:
		return "restricted-xml";
	case XTREE_E_LIMIT:
		return "over-limit";
	case XTREE_E_NOMEM:
		return "out-of-memory";
	}
	return "unknown";
}

/* ---- arena --------------------------------------------------------------- */

static int xt_grow(struct xtree *t, size_t need)
{
	size_t size = t->blocks ? t->blocks->size * 2 : XT_BLOCK_MIN;
	struct xt_block *b;

	if (size > XT_BLOCK_MAX)
		size = XT_BLOCK_MAX;
	if (size < need)
		size = need;
	if (size > t->max_mem - t->mem) {
		/* the last block may be smaller than the doubling wanted */
		if (need > t->max_mem - t->mem)
			return XTREE_E_LIMIT;
		size = t->max_mem - t->mem;
	}
	b = malloc(sizeof(*b) + size);
	if (!b)
		return XTREE_E_NOMEM;
	b->size = size;
	b->used = 0;
	b->next = t->blocks;
	t->blocks = b;
	t->mem += size;
	return 0;
}

/* n bytes aligned for any object, or NULL with the reason in *err. */
static void *xt_alloc(struct xtree *t, size_t n, int *err)
{
	struct xt_block *b = t->blocks;
	void *p;
	int rc;

	if (n > SIZE_MAX - XT_ALIGN) {
		*err = XTREE_E_LIMIT;
		return NULL;
	}
	n = (n + XT_ALIGN - 1) & ~(XT_ALIGN - 1);
	/* strings leave the block's end unaligned */
	if (b) {
		size_t off = (b->used + XT_ALIGN - 1) & ~(XT_ALIGN - 1);
		b->used = off < b->size ? off : b->size;
	}
	if (!b || n > b->size - b->used) {
		rc = xt_grow(t, n);
		if (rc) {
			*err = rc;
			return NULL;
		}
		b = t->blocks;
	}
	p = b->data + b->used;
	b->used += n;
	return p;
}

static void xt_stop(struct xt_parse *x, int err)
{
	if (!x->err)
		x->err = err;
	XML_StopParser(x->p, XML_FALSE);
}

/* A NUL-terminated copy of s[0..n) in the arena (strings need no alignment). */
static char *xt_strdup(struct xt_parse *x, const char *s, size_t n)
{
	struct xt_block *b = x->t->blocks;
	char *d;
	int err = 0;

	if (n == 0)
		return (char *)"";
	if (b && n < b->size - b->used) {
		d = (char *)b->data + b->used;
		b->used += n + 1;
	} else {
		d = xt_alloc(x->t, n + 1, &err);
		if (!d) {
			xt_stop(x, err);
			return NULL;
		}
	}
	memcpy(d, s, n);
	d[n] = '\0';
	return d;
}

/* ---- names --------------------------------------------------------------- */

/* An expat name split: "uri SEP local [SEP prefix]" or "local". */
struct xt_qname {
	const char *uri, *local, *prefix; /* prefix NULL when none was given */
	size_t uri_len, local_len, prefix_len;
};

static void xt_split(const char *name, struct xt_qname *q)
{
	const char *s1 = strchr(name, XT_SEP), *s2;

	q->prefix = NULL;
	q->prefix_len = 0;
	if (!s1) {
		q->uri = "";
		q->uri_len = 0;
		q->local = name;
		q->local_len = strlen(name);
		return;
	}
	q->uri = name;
	q->uri_len = (size_t)(s1 - name);
	q->local = s1 + 1;
	s2 = strchr(q->local, XT_SEP);
	if (!s2) {
		q->local_len = strlen(q->local);
		return;
	}
	q->local_len = (size_t)(s2 - q->local);
	q->prefix = s2 + 1;
	q->prefix_len = strlen(q->prefix);
}

static int xt_eq(const char *a, size_t an, const char *b, size_t bn)
{
	return an == bn && memcmp(a, b, an) == 0;
}

/*
 * The arena's copy of q's namespace URI, and of its prefix in *prefix (""
 * when unprefixed): the innermost binding of the prefix.  expat resolved
 * the name against the same declarations, so the binding's URI is q's; if
 * it ever were not, a fresh copy keeps the tree right.
 */
static const char *xt_uri(struct xt_parse *x, const struct xt_qname *q, const char **prefix)
{
	*prefix = "";
	if (q->uri_len == 0)
		return "";
	if (q->prefix && xt_eq(q->prefix, q->prefix_len, "xml", 3)) {
		*prefix = "xml";
		return XTREE_NS_XML;
	}
	for (unsigned i = x->nbind; i-- > 0;) {
		const struct xt_binding *b = &x->bind[i];
		if (q->prefix ? !b->prefix || !xt_eq(b->prefix, b->prefix_len, q->prefix, q->prefix_len)
			      : b->prefix != NULL)
			continue;
		if (!xt_eq(b->uri, b->uri_len, q->uri, q->uri_len))
			break;
		if (q->prefix)
			*prefix = b->prefix;
		return b->uri;
	}
	if (q->prefix && !(*prefix = xt_strdup(x, q->prefix, q->prefix_len)))
		return NULL;
	return xt_strdup(x, q->uri, q->uri_len);
}

/* ---- handlers ------------------------------------------------------------ */

static void XMLCALL on_ns(void *ud, const XML_Char *prefix, const XML_Char *uri)
{
	struct xt_parse *x = ud;
	struct xt_binding *b;

	if (x->err)
		return;
	if (x->nbind >= XTREE_MAX_NS) {
		xt_stop(x, XTREE_E_LIMIT);
		return;
	}
	b = &x->bind[x->nbind];
	/* the declaration belongs to the element about to start */
	b->depth = x->root_seen ? x->depth + 1 : 0;
	b->prefix = NULL;
	b->prefix_len = 0;
	if (prefix) {
		b->prefix_len = strlen(prefix);
		if (!(b->prefix = xt_strdup(x, prefix, b->prefix_len)))
			return;
	}
	b->uri_len = uri ? strlen(uri) : 0;
	if (!(b->uri = xt_strdup(x, uri ? uri : "", b->uri_len)))
		return;
	x->nbind++;
}

static void xt_attrs(struct xt_parse *x, struct xtree_node *n, const XML_Char **atts)
{
	unsigned count = 0;
	int err = 0;

	for (const XML_Char **a = atts; a[0]; a += 2)
		count++;
	if (count == 0)
		return;
	if (count > x->lim.max_attrs) {
		xt_stop(x, XTREE_E_LIMIT);
		return;
	}
	n->attrs = xt_alloc(x->t, count * sizeof(*n->attrs), &err);
	if (!n->attrs) {
		xt_stop(x, err);
		return;
	}
	for (unsigned i = 0; i < count; i++) {
		struct xtree_attr *at = &n->attrs[i];
		struct xt_qname q;
		size_t vlen = strlen(atts[2 * i + 1]);

		xt_split(atts[2 * i], &q);
		/* Namespaces in XML: only a prefix puts an attribute in a namespace */
		if (q.uri_len && !q.prefix) {
			xt_stop(x, XTREE_E_MALFORMED);
			return;
		}
		at->ns = xt_uri(x, &q, &at->prefix);
		at->local = xt_strdup(x, q.local, q.local_len);
		at->value = xt_strdup(x, atts[2 * i + 1], vlen);
		at->value_len = vlen;
		if (!at->ns || !at->local || !at->value)
			return;
		n->nattrs++;
	}
}

static void XMLCALL on_start(void *ud, const XML_Char *name, const XML_Char **atts)
{
	struct xt_parse *x = ud;
	struct xtree_node *n;
	struct xt_qname q;
	const char *unused;
	int err = 0;

	if (x->err)
		return;
	if (!x->root_seen) {
		x->root_seen = 1;
		return;
	}
	/* a second element, or one smuggled in by ctx_decls */
	if (x->depth == 0 && (x->top_seen || XML_GetCurrentByteIndex(x->p) < x->body)) {
		xt_stop(x, XTREE_E_MALFORMED);
		return;
	}
	if (x->depth >= x->lim.max_depth || x->elements >= x->lim.max_elements) {
		xt_stop(x, XTREE_E_LIMIT);
		return;
	}
	n = xt_alloc(x->t, sizeof(*n), &err);
	if (!n) {
		xt_stop(x, err);
		return;
	}
	memset(n, 0, sizeof(*n));
	xt_split(name, &q);
	n->ns = xt_uri(x, &q, &unused);
	n->local = xt_strdup(x, q.local, q.local_len);
	if (!n->ns || !n->local)
		return;
	xt_attrs(x, n, atts);
	if (x->err)
		return;
	n->text = "";
	n->text_len = x->text_used; /* where its text starts, until it ends */
	n->parent = x->cur;
	if (x->cur) {
		if (x->cur->last)
			x->cur->last->next = n;
		else
			x->cur->first = n;
		x->cur->last = n;
	} else {
		x->t->root = n;
		x->top_seen = 1;
	}
	x->cur = n;
	x->depth++;
	x->elements++;
}

/* Only XML white space (S: space, TAB, LF, CR). */
static int xt_blank(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] != ' ' && s[i] != '\t' && s[i] != '\n' && s[i] != '\r')
			return 0;
	return 1;
}

static void XMLCALL on_end(void *ud, const XML_Char *name)
{
	struct xt_parse *x = ud;
	struct xtree_node *n = x->cur;
	size_t start;

	if (x->err)
		return;
	if (x->depth == 0) {
		/* the root's end: ours, or one in the input */
		if (XML_GetCurrentByteIndex(x->p) < x->body_end)
			xt_stop(x, XTREE_E_MALFORMED);
		return;
	}
	start = n->text_len;
	n->text_len = x->text_used - start;
	if (n->first && xt_blank(x->text + start, n->text_len))
		n->text_len = 0; /* indentation between children */
	if (n->text_len && !(n->text = xt_strdup(x, x->text + start, n->text_len)))
		return;
	x->text_used = start;
	while (x->nbind > 0 && x->bind[x->nbind - 1].depth >= x->depth)
		x->nbind--;
	x->cur = n->parent;
	x->depth--;
	if (x->depth == 0)
		x->top_done = 1;
}

static void XMLCALL on_text(void *ud, const XML_Char *s, int len)
{
	struct xt_parse *x = ud;

	if (x->err || len <= 0)
		return;
	if (x->depth == 0) {
		xt_stop(x, XTREE_E_MALFORMED); /* text outside the element */
		return;
	}
	if ((size_t)len > x->text_cap - x->text_used) {
		/* decoded text is never longer than the input: a broken invariant */
		xt_stop(x, XTREE_E_LIMIT);
		return;
	}
	memcpy(x->text + x->text_used, s, (size_t)len);
	x->text_used += (size_t)len;
}

static void XMLCALL on_comment(void *ud, const XML_Char *data)
{
	xt_stop(ud, XTREE_E_RESTRICTED);
}

static void XMLCALL on_pi(void *ud, const XML_Char *target, const XML_Char *data)
{
	xt_stop(ud, XTREE_E_RESTRICTED);
}

static void XMLCALL on_doctype(void *ud, const XML_Char *name, const XML_Char *sysid,
			       const XML_Char *pubid, int has_internal_subset)
{
	xt_stop(ud, XTREE_E_RESTRICTED);
}

static void XMLCALL on_entity(void *ud, const XML_Char *name, int is_pe, const XML_Char *value,
			      int value_len, const XML_Char *base, const XML_Char *sysid,
			      const XML_Char *pubid, const XML_Char *notation)
{
	xt_stop(ud, XTREE_E_RESTRICTED);
}

static void XMLCALL on_notation(void *ud, const XML_Char *name, const XML_Char *base,
				const XML_Char *sysid, const XML_Char *pubid)
{
	xt_stop(ud, XTREE_E_RESTRICTED);
}

/* expat's verdict, or the handler's. */
static int xt_map(struct xt_parse *x)
{
	if (x->err)
		return x->err;
	switch (XML_GetErrorCode(x->p)) {
	case XML_ERROR_UNDEFINED_ENTITY:
	case XML_ERROR_RECURSIVE_ENTITY_REF:
	case XML_ERROR_BINARY_ENTITY_REF:
	case XML_ERROR_ATTRIBUTE_EXTERNAL_ENTITY_REF:
	case XML_ERROR_EXTERNAL_ENTITY_HANDLING:
	case XML_ERROR_ENTITY_DECLARED_IN_PE:
		return XTREE_E_RESTRICTED;
	case XML_ERROR_NO_MEMORY:
		return XTREE_E_NOMEM;
	default:
		return XTREE_E_MALFORMED;
	}
}

static int xt_feed(struct xt_parse *x, const char *s, size_t n, int final)
{
	if (XML_Parse(x->p, s, (int)n, final ? XML_TRUE : XML_FALSE) != XML_STATUS_OK)
		return xt_map(x);
	return x->err;
}

static int xt_run(struct xt_parse *x, const char *raw, size_t len, const char *ctx)
{
	size_t ctx_len = ctx ? strlen(ctx) : 0;
	int rc;

	x->p = XML_ParserCreateNS("UTF-8", XT_SEP);
	if (!x->p)
		return XTREE_E_NOMEM;
	XML_SetUserData(x->p, x);
	XML_SetReturnNSTriplet(x->p, XML_TRUE);
	XML_SetElementHandler(x->p, on_start, on_end);
	XML_SetCharacterDataHandler(x->p, on_text);
	XML_SetStartNamespaceDeclHandler(x->p, on_ns);
	XML_SetCommentHandler(x->p, on_comment);
	XML_SetProcessingInstructionHandler(x->p, on_pi);
	XML_SetStartDoctypeDeclHandler(x->p, on_doctype);
	XML_SetEntityDeclHandler(x->p, on_entity);
	XML_SetNotationDeclHandler(x->p, on_notation);

	if (ctx_len > INT32_MAX)
		return XTREE_E_LIMIT;
	/*
	 * Events are told apart by where they start, not by which call fed
	 * them: expat may hold a token back until a later call (reparse
	 * deferral, expat >= 2.6 and Debian backports).
	 */
	x->body = 3 + (long long)ctx_len + 1;
	x->body_end = x->body + (long long)len;
	rc = xt_feed(x, "<r ", 3, 0);
	if (!rc)
		rc = xt_feed(x, ctx ? ctx : "", ctx_len, 0);
	if (!rc)
		rc = xt_feed(x, ">", 1, 0);
	if (!rc)
		rc = xt_feed(x, raw, len, 0);
	if (!rc)
		rc = xt_feed(x, "</r>", 4, 1);
	if (!rc && !x->top_done)
		rc = XTREE_E_MALFORMED; /* no element in the input */
	return rc;
}

struct xtree *xtree_parse(const char *raw, size_t len, const char *ctx_decls,
			  const struct xtree_limits *lim, int *err)
{
	static const struct xtree_limits defaults = XTREE_LIMITS_DEFAULT;
	struct xt_parse x;
	struct xtree head = { 0 }, *t;
	int rc = 0;

	memset(&x, 0, sizeof(x));
	x.lim = lim ? *lim : defaults;
	if (len == 0 || len > x.lim.max_bytes || len > INT32_MAX) {
		rc = len == 0 ? XTREE_E_MALFORMED : XTREE_E_LIMIT;
		goto fail;
	}
	/* the tree's own struct is the first thing in its arena */
	head.max_mem = x.lim.max_mem;
	t = xt_alloc(&head, sizeof(*t), &rc);
	if (!t)
		goto fail;
	*t = head;
	x.t = t;
	x.text_cap = len;
	x.text = malloc(len);
	if (!x.text) {
		rc = XTREE_E_NOMEM;
		goto fail_tree;
	}
	rc = xt_run(&x, raw, len, ctx_decls);
	if (x.p)
		XML_ParserFree(x.p);
	free(x.text);
	if (rc)
		goto fail_tree;
	if (err)
		*err = XTREE_OK;
	return t;

fail_tree:
	xtree_free(t);
fail:
	if (err)
		*err = rc;
	return NULL;
}

void xtree_free(struct xtree *t)
{
	struct xt_block *b, *next;

	if (!t)
		return;
	/* t lives in the oldest block: read the chain before freeing it */
	for (b = t->blocks; b; b = next) {
		next = b->next;
		free(b);
	}
}

const struct xtree_node *xtree_root(const struct xtree *t)
{
	return t ? t->root : NULL;
}

/* ---- lookups ------------------------------------------------------------- */

static int xt_match(const struct xtree_node *n, const char *ns, const char *local)
{
	return (!ns || strcmp(n->ns, ns) == 0) && (!local || strcmp(n->local, local) == 0);
}

const struct xtree_node *xtree_child(const struct xtree_node *el, const char *ns, const char *local)
{
	if (!el)
		return NULL;
	for (const struct xtree_node *c = el->first; c; c = c->next)
		if (xt_match(c, ns, local))
			return c;
	return NULL;
}

const struct xtree_node *xtree_next(const struct xtree_node *el, const char *ns, const char *local)
{
	if (!el)
		return NULL;
	for (const struct xtree_node *c = el->next; c; c = c->next)
		if (xt_match(c, ns, local))
			return c;
	return NULL;
}

const char *xtree_attr_ns(const struct xtree_node *el, const char *ns, const char *local)
{
	if (!el)
		return NULL;
	for (unsigned i = 0; i < el->nattrs; i++)
		if (strcmp(el->attrs[i].local, local) == 0 && strcmp(el->attrs[i].ns, ns) == 0)
			return el->attrs[i].value;
	return NULL;
}

const char *xtree_attr(const struct xtree_node *el, const char *name)
{
	return xtree_attr_ns(el, "", name);
}

const char *xtree_text(const struct xtree_node *el)
{
	return el ? el->text : NULL;
}

/* ---- serialisation ------------------------------------------------------- */

struct xt_out {
	xtree_put_fn put;
	void *arg;
	size_t n;
};

static void xt_put(struct xt_out *o, const char *s, size_t n)
{
	if (n == 0)
		return;
	o->put(o->arg, s, n);
	o->n += n;
}

static void xt_puts(struct xt_out *o, const char *s)
{
	xt_put(o, s, strlen(s));
}

/*
 * Escape s[0..n): & < > always; in attribute values (quoted with
 * apostrophes) also ' " and TAB LF CR, which attribute-value normalisation
 * would turn into spaces; in text CR, which end-of-line handling would turn
 * into LF.
 */
static void xt_put_esc(struct xt_out *o, const char *s, size_t n, int attr)
{
	size_t run = 0;

	for (size_t i = 0; i < n; i++) {
		const char *rep;

		switch (s[i]) {
		case '&': rep = "&amp;"; break;
		case '<': rep = "&lt;"; break;
		case '>': rep = "&gt;"; break;
		case '\r': rep = "&#13;"; break;
		case '\'': if (!attr) continue; rep = "&apos;"; break;
		case '"': if (!attr) continue; rep = "&quot;"; break;
		case '\t': if (!attr) continue; rep = "&#9;"; break;
		case '\n': if (!attr) continue; rep = "&#10;"; break;
		default: continue;
		}
		xt_put(o, s + run, i - run);
		xt_puts(o, rep);
		run = i + 1;
	}
	xt_put(o, s + run, n - run);
}

/* Does el carry an attribute with this prefix bound to this URI? */
static int xt_binds(const struct xtree_node *el, const char *prefix, const char *ns)
{
	for (unsigned i = 0; i < el->nattrs; i++)
		if (strcmp(el->attrs[i].prefix, prefix) == 0 && strcmp(el->attrs[i].ns, ns) == 0)
			return 1;
	return 0;
}

static int xt_is_xml(const char *ns)
{
	return strcmp(ns, XTREE_NS_XML) == 0;
}

/*
 * The start tag of el, written as a child of its parent unless el is the
 * subtree's root.  Invariant: after an element's start tag, every prefix
 * its attributes use is bound to their URI (declared there, or by its
 * parent, which by the same invariant binds it).
 */
static void xt_start_tag(struct xt_out *o, const struct xtree_node *el, int is_root)
{
	const char *outer = is_root ? "" : el->parent->ns;

	xt_put(o, "<", 1);
	xt_puts(o, el->local);
	if (strcmp(el->ns, outer) != 0) {
		xt_put(o, " xmlns='", 8);
		xt_put_esc(o, el->ns, strlen(el->ns), 1);
		xt_put(o, "'", 1);
	}
	for (unsigned i = 0; i < el->nattrs; i++) {
		const struct xtree_attr *a = &el->attrs[i];
		unsigned j;

		if (!a->ns[0] || xt_is_xml(a->ns))
			continue;
		for (j = 0; j < i; j++)
			if (strcmp(el->attrs[j].prefix, a->prefix) == 0)
				break;
		if (j < i || (!is_root && xt_binds(el->parent, a->prefix, a->ns)))
			continue;
		xt_put(o, " xmlns:", 7);
		xt_puts(o, a->prefix);
		xt_put(o, "='", 2);
		xt_put_esc(o, a->ns, strlen(a->ns), 1);
		xt_put(o, "'", 1);
	}
	for (unsigned i = 0; i < el->nattrs; i++) {
		const struct xtree_attr *a = &el->attrs[i];

		xt_put(o, " ", 1);
		if (a->ns[0]) {
			xt_puts(o, xt_is_xml(a->ns) ? "xml" : a->prefix);
			xt_put(o, ":", 1);
		}
		xt_puts(o, a->local);
		xt_put(o, "='", 2);
		xt_put_esc(o, a->value, a->value_len, 1);
		xt_put(o, "'", 1);
	}
	if (!el->first && !el->text_len) {
		xt_put(o, "/>", 2);
		return;
	}
	xt_put(o, ">", 1);
	xt_put_esc(o, el->text, el->text_len, 0);
}

static void xt_end_tag(struct xt_out *o, const struct xtree_node *el)
{
	if (!el->first && !el->text_len)
		return; /* written as an empty-element tag */
	xt_put(o, "</", 2);
	xt_puts(o, el->local);
	xt_put(o, ">", 1);
}

size_t xtree_write(const struct xtree_node *el, xtree_put_fn put, void *arg)
{
	struct xt_out o = { put, arg, 0 };
	const struct xtree_node *n = el;

	if (!el)
		return 0;
	/* depth first through parent links: no recursion, no allocation */
	for (;;) {
		xt_start_tag(&o, n, n == el);
		if (n->first) {
			n = n->first;
			continue;
		}
		xt_end_tag(&o, n);
		while (n != el && !n->next) {
			n = n->parent;
			xt_end_tag(&o, n);
		}
		if (n == el)
			break;
		n = n->next;
	}
	return o.n;
}

/* ---- equivalence --------------------------------------------------------- */

static int xt_node_eq(const struct xtree_node *a, const struct xtree_node *b)
{
	if (strcmp(a->ns, b->ns) || strcmp(a->local, b->local) || a->nattrs != b->nattrs ||
	    a->text_len != b->text_len || memcmp(a->text, b->text, a->text_len))
		return 0;
	/* a parsed element has no two attributes with the same {ns}local */
	for (unsigned i = 0; i < a->nattrs; i++) {
		const struct xtree_attr *x = &a->attrs[i];
		const char *v = xtree_attr_ns(b, x->ns, x->local);
		if (!v || strlen(v) != x->value_len || memcmp(v, x->value, x->value_len))
			return 0;
	}
	return 1;
}

int xtree_equal(const struct xtree_node *a, const struct xtree_node *b)
{
	const struct xtree_node *ra = a;

	if (!a || !b)
		return a == b;
	/* both trees in lockstep, depth first through parent links */
	for (;;) {
		if (!xt_node_eq(a, b) || !a->first != !b->first)
			return 0;
		if (a->first) {
			a = a->first;
			b = b->first;
			continue;
		}
		while (a != ra && !a->next) {
			if (b->next)
				return 0;
			a = a->parent;
			b = b->parent;
		}
		if (a == ra)
			return 1;
		if (!b->next)
			return 0;
		a = a->next;
		b = b->next;
	}
}
