/*
 * xtree — a small, bounded, read-only XML tree of one stanza or payload.
 *
 * The session server reads the payloads of the XEPs it serves (roster items,
 * blocking lists, vCard, private XML, PubSub/PEP items and data forms, MAM
 * queries with RSM) through this tree, and stores or forwards subtrees of it
 * with xtree_write().
 *
 * Parsing is namespace aware and done by expat, configured like xmlstage:
 * UTF-8 only, XMPP's restricted XML (RFC 6120 §11.1: no comments, processing
 * instructions, DOCTYPE, entity declarations, or entity references other than
 * the five predefined ones and character references).  The input is one
 * complete element (xmlstage already checked it, but it is treated as hostile
 * again) parsed in the namespace context of a stream: ctx_decls are the
 * namespace declarations of that context (XTREE_CTX_C2S for the stanzas the
 * session server receives, whose top element inherits jabber:client), or
 * NULL / "" for a standalone document (a payload read back from storage).
 *
 * Memory: one arena per tree, freed with one xtree_free().  Every node,
 * attribute array and string lives in it; strings are NUL-terminated and
 * decoded (entities and character references replaced).  Namespace URIs are
 * stored once per declaration and shared by every node in its scope, so the
 * arena grows linearly with the input: about the input's length in strings
 * plus sizeof(struct xtree_node) per element and sizeof(struct xtree_attr)
 * per attribute, and never beyond xtree_limits.max_mem.  Parsing also uses a
 * temporary buffer of the input's length and an expat parser (both freed
 * before xtree_parse returns).
 *
 * The tree is immutable once returned and may be read from any thread.
 * Mixed content keeps only the concatenation of an element's direct text:
 * where text sat between children is not recorded (no XEP served here needs
 * it), and xtree_write() puts an element's text before its children.  An
 * element with children whose direct text is only white space (indentation)
 * has no text ("").
 */
#ifndef XEDGE_XTREE_H
#define XEDGE_XTREE_H

#include <stddef.h>

#define XTREE_NS_XML "http://www.w3.org/XML/1998/namespace"
/* The c2s stream context (the same text as XMLSTAGE_C2S_DECLS). */
#define XTREE_CTX_C2S "xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'"
/* Namespace declarations in scope at once (the context's included). */
#define XTREE_MAX_NS 64

enum xtree_error {
	XTREE_OK = 0,
	XTREE_E_MALFORMED,  /* not well-formed XML or Namespaces in XML, not exactly one
	                       element, or text outside it (ctx_decls that expat refuses too) */
	XTREE_E_RESTRICTED, /* comment, PI, DOCTYPE, entity reference: RFC 6120 §11.1 */
	XTREE_E_LIMIT,      /* over one of xtree_limits, or XTREE_MAX_NS */
	XTREE_E_NOMEM       /* malloc failed */
};

struct xtree_limits {
	size_t max_bytes;      /* input length */
	size_t max_mem;        /* arena bytes (nodes, attributes, strings) */
	unsigned max_depth;    /* element nesting; the top element is depth 1 */
	unsigned max_elements; /* elements in the tree */
	unsigned max_attrs;    /* attributes on one element (namespace declarations excluded) */
};

/* The defaults (xtree_parse with lim NULL): the edge's own defaults for a stanza. */
#define XTREE_LIMITS_DEFAULT { .max_bytes = 256u * 1024, .max_mem = 4u << 20, \
			       .max_depth = 32, .max_elements = 16384, .max_attrs = 64 }

struct xtree_attr {
	const char *ns;      /* namespace URI; "" for an unprefixed attribute */
	const char *prefix;  /* the prefix it was received with; "" when unprefixed */
	const char *local;
	const char *value;   /* decoded */
	size_t value_len;
};

struct xtree_node {
	const char *ns;      /* namespace URI; "" for none */
	const char *local;   /* local name */
	const char *text;    /* concatenated direct character data, decoded; "" for none */
	size_t text_len;
	struct xtree_attr *attrs; /* nattrs, in document order */
	unsigned nattrs;
	struct xtree_node *parent; /* NULL for the top element */
	struct xtree_node *first, *last; /* children */
	struct xtree_node *next;   /* next sibling */
};

struct xtree;

/*
 * Parse raw[0..len), one complete element, in the namespace context
 * ctx_decls (attribute text such as XTREE_CTX_C2S; NULL or "" for none; it
 * is trusted: it comes from the caller, not the peer).  lim NULL means
 * XTREE_LIMITS_DEFAULT.  Returns the tree, to be freed with xtree_free(),
 * or NULL with the reason (enum xtree_error) in *err when err is not NULL.
 */
struct xtree *xtree_parse(const char *raw, size_t len, const char *ctx_decls,
			  const struct xtree_limits *lim, int *err);
void xtree_free(struct xtree *t);

const struct xtree_node *xtree_root(const struct xtree *t);
const char *xtree_error_str(int err);

/*
 * Lookups.  ns NULL matches any namespace, local NULL any name.  Every
 * lookup accepts el NULL and then returns NULL, so they chain:
 * xtree_text(xtree_child(xtree_child(root, NS, "query"), NS, "before")).
 */
/* The first child element of el that matches. */
const struct xtree_node *xtree_child(const struct xtree_node *el, const char *ns, const char *local);
/* The next sibling after el that matches (iterate same-named siblings). */
const struct xtree_node *xtree_next(const struct xtree_node *el, const char *ns, const char *local);
/* The value of el's unprefixed attribute `name`, NULL when absent. */
const char *xtree_attr(const struct xtree_node *el, const char *name);
/* The value of el's attribute {ns}local ("" ns: unprefixed), NULL when absent. */
const char *xtree_attr_ns(const struct xtree_node *el, const char *ns, const char *local);
/* el's direct text ("" when it has none), NULL when el is NULL. */
const char *xtree_text(const struct xtree_node *el);

/*
 * Serialisation.  put(arg, p, n) receives the output in pieces, in order;
 * it owns error handling (a growable buffer records its own failure, as
 * struct sm_buf does).  xtree_write() emits the subtree rooted at el as a
 * standalone, well-formed element: elements unprefixed, with xmlns='...' on
 * el when its namespace is not "" and on every element whose namespace
 * differs from its parent's; each prefixed attribute keeps its prefix, which
 * is declared on the element unless its parent already declared it to the
 * same URI; xml:* attributes need no declaration.  Text and attribute values
 * are escaped (quotes are apostrophes; CR in text and TAB, LF, CR in values
 * as character references, so parsing gives them back unchanged), and
 * parsing the output with no context gives a tree xtree_equal() to el's,
 * within the same limits except two: the output may be longer than the
 * input was (a namespace is declared again on each element where it
 * changes: `<p:a/><q:b/><p:c/>` under one declaration each becomes three
 * xmlns='...'), and for the same reason it may put more than XTREE_MAX_NS
 * declarations in scope.  Callers bound the output through their buffer
 * (sm_buf.max).  Attributes inherited by meaning (an ancestor's xml:lang)
 * are not copied.  Returns the number of bytes passed to put.
 */
typedef void (*xtree_put_fn)(void *arg, const char *p, size_t n);
size_t xtree_write(const struct xtree_node *el, xtree_put_fn put, void *arg);

/*
 * Equivalence of two subtrees: same namespace and local name, the same set
 * of attributes ({ns}local = value; order and prefixes ignored), the same
 * text, and equivalent children in the same order.  Returns 1 or 0.
 */
int xtree_equal(const struct xtree_node *a, const struct xtree_node *b);

#endif
