/*
 * fuzz_xtree — libFuzzer target for parser/xtree.c.
 *
 * The input is parsed twice, standalone and in the c2s stream context, with
 * small limits so that the limit paths are reached.  When a parse succeeds:
 * the tree must be consistent (parent, first/last and sibling links agree,
 * the limits hold, text lengths match, every string is NUL-terminated where
 * its length says), writing it must give a document that parses again with
 * no context (never as malformed; XTREE_MAX_NS may be exceeded) into an
 * xtree_equal() tree which writes the same bytes, and so
 * must writing the first few subtrees on their own.  The lookups run on
 * every element.  Any difference is a bug: __builtin_trap().
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "parser/xtree.h"

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)
#define SUBTREES 16

struct out {
	char *p;
	size_t len, cap;
	int failed;
};

static void out_put(void *arg, const char *p, size_t n)
{
	struct out *o = arg;

	if (o->failed)
		return;
	if (n > o->cap - o->len) {
		size_t cap = (o->len + n) * 2 + 64;
		char *g = realloc(o->p, cap);
		if (!g) {
			o->failed = 1;
			return;
		}
		o->p = g;
		o->cap = cap;
	}
	memcpy(o->p + o->len, p, n);
	o->len += n;
}

static const struct xtree_limits lim = {
	.max_bytes = 1u << 20, .max_mem = 1u << 20,
	.max_depth = 24, .max_elements = 2000, .max_attrs = 16,
};

/* Walk the tree checking its links and limits; run the lookups. */
static void check_tree(const struct xtree_node *root)
{
	const struct xtree_node *n = root;
	unsigned depth = 1, elements = 0;

	CHECK(root->parent == NULL);
	for (;;) {
		const struct xtree_node *c, *prev = NULL;

		elements++;
		CHECK(depth <= lim.max_depth && elements <= lim.max_elements);
		CHECK(n->nattrs <= lim.max_attrs);
		CHECK(strlen(n->text) == n->text_len && n->local[0]);
		for (unsigned i = 0; i < n->nattrs; i++) {
			const struct xtree_attr *a = &n->attrs[i];
			CHECK(strlen(a->value) == a->value_len && a->local[0]);
			CHECK(!a->ns[0] == !a->prefix[0]); /* namespaced iff prefixed */
			CHECK(xtree_attr_ns(n, a->ns, a->local) != NULL);
		}
		for (c = n->first; c; c = c->next) {
			CHECK(c->parent == n);
			prev = c;
		}
		CHECK(prev == n->last);
		if (n->first) {
			CHECK(xtree_child(n, n->first->ns, n->first->local) == n->first);
			CHECK(xtree_child(n, NULL, NULL) == n->first);
			for (c = n->first; c; c = xtree_next(c, c->ns, c->local))
				CHECK(strcmp(c->local, n->first->local) == 0);
			n = n->first;
			depth++;
			continue;
		}
		while (n != root && !n->next) {
			n = n->parent;
			depth--;
		}
		if (n == root)
			return;
		n = n->next;
	}
}

/* write(el) parses back, with no context, to an equal tree that writes the same. */
static void check_write(const struct xtree_node *el)
{
	struct out a = { 0 }, b = { 0 };
	struct xtree_limits big = lim;
	struct xtree *t;
	int err;

	CHECK(xtree_write(el, out_put, &a) == a.len || a.failed);
	if (a.failed)
		goto done;
	/* the same shape, in more bytes (declarations, escapes) */
	big.max_bytes = a.len;
	big.max_mem = 4u << 20;
	t = xtree_parse(a.p, a.len, NULL, &big, &err);
	/*
	 * Never malformed.  XTREE_E_LIMIT is possible: the output declares a
	 * namespace on every element where it changes, which may put more than
	 * XTREE_MAX_NS declarations in scope (see xtree_write()).
	 */
	CHECK(t != NULL || err == XTREE_E_NOMEM || err == XTREE_E_LIMIT);
	if (t) {
		CHECK(xtree_equal(el, xtree_root(t)));
		CHECK(xtree_equal(xtree_root(t), el));
		CHECK(xtree_write(xtree_root(t), out_put, &b) == b.len || b.failed);
		CHECK(b.failed || (b.len == a.len && memcmp(a.p, b.p, a.len) == 0));
		xtree_free(t);
	}
done:
	free(a.p);
	free(b.p);
}

static void one(const char *s, size_t n, const char *ctx)
{
	int err = -1;
	struct xtree *t = xtree_parse(s, n, ctx, &lim, &err);
	const struct xtree_node *root, *c;
	unsigned k = 0;

	if (!t) {
		CHECK(err > XTREE_OK && err <= XTREE_E_NOMEM);
		CHECK(xtree_error_str(err)[0]);
		return;
	}
	CHECK(err == XTREE_OK);
	root = xtree_root(t);
	CHECK(root != NULL);
	check_tree(root);
	check_write(root);
	/* subtrees: the first few elements in document order below the root */
	for (c = root->first; c && k < SUBTREES; k++) {
		check_write(c);
		if (c->first)
			c = c->first;
		else {
			while (c != root && !c->next)
				c = c->parent;
			c = c == root ? NULL : c->next;
		}
	}
	xtree_free(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* An exact-size copy so any over-read is caught by ASan. */
	char *s = malloc(size ? size : 1);

	if (s == NULL)
		return 0;
	memcpy(s, data, size);
	one(s, size, NULL);
	one(s, size, XTREE_CTX_C2S);
	free(s);
	return 0;
}
