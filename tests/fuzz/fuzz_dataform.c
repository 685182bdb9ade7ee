/*
 * fuzz_dataform — libFuzzer target for parser/dataform.c.
 *
 * The input is parsed as an XML tree with no context; the top element and
 * each of its children are read as forms.  A form read must keep the
 * documented rules (type known, field types known, vars present, bounded and
 * unique, single-valued fields with at most one value, booleans and JIDs
 * valid, the bounds held) and its lookups must agree with its fields.  A form
 * read is then written back (as the same type, every field with its values)
 * and the output must read again as an equal form.  Any difference is a bug:
 * __builtin_trap().
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "parser/dataform.h"
#include "parser/jid.h"
#include "parser/xtree.h"

#define CHECK(c) do { if (!(c)) __builtin_trap(); } while (0)

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
	.max_bytes = 1u << 20, .max_mem = 4u << 20,
	.max_depth = 16, .max_elements = 4000, .max_attrs = 16,
};

static void check_form(const struct dataform *f)
{
	struct jid_view jv;

	CHECK(f->type >= DATAFORM_FORM && f->type <= DATAFORM_RESULT);
	CHECK(f->nfields <= DATAFORM_MAX_FIELDS && f->nvalues <= DATAFORM_MAX_VALUES);
	for (unsigned i = 0, total = 0; i < f->nfields; i++) {
		const struct dataform_field *fd = &f->fields[i];

		CHECK(fd->type >= DATAFORM_F_BOOLEAN && fd->type <= DATAFORM_F_TEXT_SINGLE);
		CHECK(fd->var || fd->type == DATAFORM_F_FIXED);
		if (fd->var) {
			CHECK(fd->var[0] && strlen(fd->var) <= DATAFORM_VAR_MAX);
			CHECK(dataform_field(f, fd->var) == fd);
			CHECK(dataform_value(f, fd->var) == (fd->nvalues ? fd->values[0] : NULL));
		}
		CHECK(fd->typed || fd->type == DATAFORM_F_TEXT_SINGLE);
		if (fd->typed && fd->type != DATAFORM_F_JID_MULTI && fd->type != DATAFORM_F_LIST_MULTI &&
		    fd->type != DATAFORM_F_TEXT_MULTI && fd->type != DATAFORM_F_FIXED)
			CHECK(fd->nvalues <= 1);
		for (unsigned k = 0; k < fd->nvalues; k++) {
			const char *v = fd->values[k];

			CHECK(strlen(v) <= DATAFORM_VALUE_MAX);
			if (fd->type == DATAFORM_F_BOOLEAN)
				CHECK(dataform_bool(v) >= 0);
			if (fd->type == DATAFORM_F_JID_SINGLE || fd->type == DATAFORM_F_JID_MULTI)
				CHECK(jid_parse(v, strlen(v), &jv) == 0);
		}
		CHECK(fd->values == &f->value_tab[total]);
		total += fd->nvalues;
		CHECK(total <= f->nvalues);
	}
}

static int equal(const struct dataform *a, const struct dataform *b)
{
	if (a->type != b->type || a->nfields != b->nfields || a->nvalues != b->nvalues ||
	    !a->title != !b->title || (a->title && strcmp(a->title, b->title)))
		return 0;
	for (unsigned i = 0; i < a->nfields; i++) {
		const struct dataform_field *x = &a->fields[i], *y = &b->fields[i];

		if (x->type != y->type || x->typed != y->typed || !x->var != !y->var || (x->var && strcmp(x->var, y->var)) ||
		    x->nvalues != y->nvalues)
			return 0;
		for (unsigned k = 0; k < x->nvalues; k++)
			if (strcmp(x->values[k], y->values[k]))
				return 0;
	}
	return 1;
}

static void round_trip(const struct dataform *f)
{
	static struct dataform_fdesc d[DATAFORM_MAX_FIELDS];
	static struct dataform g;
	struct out o = { 0 };
	struct xtree *t;
	int err;

	for (unsigned i = 0; i < f->nfields; i++)
		d[i] = (struct dataform_fdesc){ .type = f->fields[i].typed ? f->fields[i].type : 0, .var = f->fields[i].var,
			.values = f->fields[i].values, .nvalues = f->fields[i].nvalues };
	CHECK(dataform_write(out_put, &o, f->type, f->title, NULL, d, f->nfields) == o.len ||
	      o.failed);
	if (o.failed)
		goto done;
	t = xtree_parse(o.p, o.len, NULL, &(struct xtree_limits){ .max_bytes = o.len,
			.max_mem = 16u << 20, .max_depth = 8, .max_elements = 100000,
			.max_attrs = 8 }, &err);
	CHECK(t || err == XTREE_E_NOMEM);
	if (t) {
		CHECK(dataform_parse(xtree_root(t), &g) == DATAFORM_OK);
		CHECK(equal(f, &g));
		xtree_free(t);
	}
done:
	free(o.p);
}

static void one_form(const struct xtree_node *x)
{
	static struct dataform f;
	int rc = dataform_parse(x, &f);

	CHECK(rc >= DATAFORM_OK && rc <= DATAFORM_E_LIMIT);
	CHECK(dataform_error_str(rc)[0] != '?');
	if (rc != DATAFORM_OK)
		return;
	check_form(&f);
	round_trip(&f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct xtree *t = xtree_parse((const char *)data, size, NULL, &lim, NULL);
	const struct xtree_node *root, *c;
	unsigned k = 0;

	if (!t)
		return 0;
	root = xtree_root(t);
	one_form(root);
	for (c = root->first; c && k < 8; c = c->next, k++)
		one_form(c);
	xtree_free(t);
	return 0;
}
