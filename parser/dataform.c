/*
 * dataform — XEP-0004 data forms, read and written.  See dataform.h.
 */
#include "parser/dataform.h"

#include <string.h>

#include "parser/jid.h"

static const char *const form_types[] = {
	[DATAFORM_FORM] = "form",
	[DATAFORM_SUBMIT] = "submit",
	[DATAFORM_CANCEL] = "cancel",
	[DATAFORM_RESULT] = "result",
};

static const char *const field_types[] = {
	[DATAFORM_F_BOOLEAN] = "boolean",
	[DATAFORM_F_FIXED] = "fixed",
	[DATAFORM_F_HIDDEN] = "hidden",
	[DATAFORM_F_JID_MULTI] = "jid-multi",
	[DATAFORM_F_JID_SINGLE] = "jid-single",
	[DATAFORM_F_LIST_MULTI] = "list-multi",
	[DATAFORM_F_LIST_SINGLE] = "list-single",
	[DATAFORM_F_TEXT_MULTI] = "text-multi",
	[DATAFORM_F_TEXT_PRIVATE] = "text-private",
	[DATAFORM_F_TEXT_SINGLE] = "text-single",
};

#define NFORM_TYPES (sizeof(form_types) / sizeof(form_types[0]))
#define NFIELD_TYPES (sizeof(field_types) / sizeof(field_types[0]))

const char *dataform_type_str(int type)
{
	return type > 0 && (size_t)type < NFORM_TYPES ? form_types[type] : "?";
}

const char *dataform_ftype_str(int ftype)
{
	return ftype > 0 && (size_t)ftype < NFIELD_TYPES ? field_types[ftype] : "?";
}

const char *dataform_error_str(int err)
{
	switch (err) {
	case DATAFORM_OK: return "ok";
	case DATAFORM_E_NOT_FORM: return "not a jabber:x:data form";
	case DATAFORM_E_TYPE: return "form type absent or unknown";
	case DATAFORM_E_FIELD_TYPE: return "unknown field type";
	case DATAFORM_E_VAR: return "field var missing or invalid";
	case DATAFORM_E_DUPLICATE: return "two fields with the same var";
	case DATAFORM_E_VALUES: return "several values in a single-valued field";
	case DATAFORM_E_VALUE: return "invalid value";
	case DATAFORM_E_LIMIT: return "too many fields or values";
	}
	return "?";
}

static int lookup(const char *const *tab, size_t n, const char *s)
{
	for (size_t i = 1; i < n; i++)
		if (strcmp(tab[i], s) == 0)
			return (int)i;
	return 0;
}

static bool single_valued(int t)
{
	return t == DATAFORM_F_BOOLEAN || t == DATAFORM_F_HIDDEN || t == DATAFORM_F_JID_SINGLE ||
	       t == DATAFORM_F_LIST_SINGLE || t == DATAFORM_F_TEXT_PRIVATE ||
	       t == DATAFORM_F_TEXT_SINGLE;
}

int dataform_bool(const char *v)
{
	if (!v)
		return -1;
	if (strcmp(v, "1") == 0 || strcmp(v, "true") == 0)
		return 1;
	if (strcmp(v, "0") == 0 || strcmp(v, "false") == 0)
		return 0;
	return -1;
}

static int value_ok(int type, const struct xtree_node *v)
{
	struct jid_view jv;

	/* A value with an embedded NUL could not be told apart from a shorter one. */
	if (v->text_len > DATAFORM_VALUE_MAX || strlen(v->text) != v->text_len)
		return DATAFORM_E_VALUE;
	if (type == DATAFORM_F_BOOLEAN && dataform_bool(v->text) < 0)
		return DATAFORM_E_VALUE;
	if ((type == DATAFORM_F_JID_SINGLE || type == DATAFORM_F_JID_MULTI) &&
	    jid_parse(v->text, v->text_len, &jv) < 0)
		return DATAFORM_E_VALUE;
	return DATAFORM_OK;
}

static int field_read(const struct xtree_node *el, struct dataform *f)
{
	struct dataform_field *fd = &f->fields[f->nfields];
	const char *type = xtree_attr(el, "type");
	const char *var = xtree_attr(el, "var");
	const struct xtree_node *v;
	int rc;

	fd->typed = type != NULL;
	fd->type = type ? lookup(field_types, NFIELD_TYPES, type) : DATAFORM_F_TEXT_SINGLE;
	if (!fd->type)
		return DATAFORM_E_FIELD_TYPE;
	if (var && (!*var || strlen(var) > DATAFORM_VAR_MAX))
		return DATAFORM_E_VAR;
	if (!var && fd->type != DATAFORM_F_FIXED)
		return DATAFORM_E_VAR;
	if (var)
		for (unsigned i = 0; i < f->nfields; i++)
			if (f->fields[i].var && strcmp(f->fields[i].var, var) == 0)
				return DATAFORM_E_DUPLICATE;
	fd->var = var;
	fd->values = &f->value_tab[f->nvalues];
	fd->nvalues = 0;
	for (v = xtree_child(el, DATAFORM_NS, "value"); v; v = xtree_next(v, DATAFORM_NS, "value")) {
		if (f->nvalues >= DATAFORM_MAX_VALUES)
			return DATAFORM_E_LIMIT;
		if (fd->nvalues && fd->typed && single_valued(fd->type))
			return DATAFORM_E_VALUES;
		if ((rc = value_ok(fd->type, v)) != DATAFORM_OK)
			return rc;
		f->value_tab[f->nvalues++] = v->text;
		fd->nvalues++;
	}
	f->nfields++;
	return DATAFORM_OK;
}

int dataform_parse(const struct xtree_node *x, struct dataform *f)
{
	const struct xtree_node *el;
	const char *type;
	int rc;

	f->type = 0;
	f->title = NULL;
	f->nfields = 0;
	f->nvalues = 0;
	if (!x || strcmp(x->ns, DATAFORM_NS) != 0 || strcmp(x->local, "x") != 0)
		return DATAFORM_E_NOT_FORM;
	type = xtree_attr(x, "type");
	f->type = type ? lookup(form_types, NFORM_TYPES, type) : 0;
	if (!f->type)
		return DATAFORM_E_TYPE;
	el = xtree_child(x, DATAFORM_NS, "title");
	f->title = el ? el->text : NULL;
	for (el = xtree_child(x, DATAFORM_NS, "field"); el; el = xtree_next(el, DATAFORM_NS, "field")) {
		if (f->nfields >= DATAFORM_MAX_FIELDS)
			return DATAFORM_E_LIMIT;
		if ((rc = field_read(el, f)) != DATAFORM_OK)
			return rc;
	}
	return DATAFORM_OK;
}

const struct dataform_field *dataform_field(const struct dataform *f, const char *var)
{
	for (unsigned i = 0; i < f->nfields; i++)
		if (f->fields[i].var && strcmp(f->fields[i].var, var) == 0)
			return &f->fields[i];
	return NULL;
}

const char *dataform_value(const struct dataform *f, const char *var)
{
	const struct dataform_field *fd = dataform_field(f, var);

	return fd && fd->nvalues ? fd->values[0] : NULL;
}

const char *dataform_form_type(const struct dataform *f)
{
	const struct dataform_field *fd = dataform_field(f, "FORM_TYPE");

	return fd && fd->type == DATAFORM_F_HIDDEN && fd->nvalues ? fd->values[0] : NULL;
}

/* ---- writing ---------------------------------------------------------- */

struct wr {
	xtree_put_fn put;
	void *arg;
	size_t n;
};

static void w_str(struct wr *w, const char *s)
{
	size_t n = strlen(s);

	w->put(w->arg, s, n);
	w->n += n;
}

/* s escaped for character data and for attribute values alike: the five
 * XML specials, and TAB, LF, CR as character references (an attribute's
 * white space and text's CR would otherwise be normalised by the reader:
 * the value read back must be the value written). */
static void w_esc(struct wr *w, const char *s)
{
	const char *run = s;

	for (;; s++) {
		const char *rep;

		switch (*s) {
		case '&': rep = "&amp;"; break;
		case '<': rep = "&lt;"; break;
		case '>': rep = "&gt;"; break;
		case '\'': rep = "&apos;"; break;
		case '"': rep = "&quot;"; break;
		case '\t': rep = "&#9;"; break;
		case '\n': rep = "&#10;"; break;
		case '\r': rep = "&#13;"; break;
		case '\0': rep = NULL; break;
		default: continue;
		}
		if (s > run) {
			w->put(w->arg, run, (size_t)(s - run));
			w->n += (size_t)(s - run);
		}
		if (!rep)
			return;
		w_str(w, rep);
		run = s + 1;
	}
}

static void w_attr(struct wr *w, const char *name, const char *value)
{
	w_str(w, " ");
	w_str(w, name);
	w_str(w, "='");
	w_esc(w, value);
	w_str(w, "'");
}

static void w_elem(struct wr *w, const char *name, const char *text)
{
	w_str(w, "<");
	w_str(w, name);
	w_str(w, ">");
	w_esc(w, text);
	w_str(w, "</");
	w_str(w, name);
	w_str(w, ">");
}

size_t dataform_write(xtree_put_fn put, void *arg, int type, const char *title,
		      const char *instructions, const struct dataform_fdesc *fields, unsigned n)
{
	struct wr w = { .put = put, .arg = arg };

	w_str(&w, "<x xmlns='" DATAFORM_NS "'");
	w_attr(&w, "type", dataform_type_str(type));
	w_str(&w, ">");
	if (title)
		w_elem(&w, "title", title);
	if (instructions)
		w_elem(&w, "instructions", instructions);
	for (unsigned i = 0; i < n; i++) {
		const struct dataform_fdesc *d = &fields[i];

		w_str(&w, "<field");
		if (d->type)
			w_attr(&w, "type", dataform_ftype_str(d->type));
		if (d->var)
			w_attr(&w, "var", d->var);
		if (d->label)
			w_attr(&w, "label", d->label);
		w_str(&w, ">");
		if (d->desc)
			w_elem(&w, "desc", d->desc);
		if (d->required)
			w_str(&w, "<required/>");
		for (unsigned k = 0; k < d->nvalues; k++)
			w_elem(&w, "value", d->values[k]);
		for (unsigned k = 0; k < d->noptions; k++) {
			w_str(&w, "<option");
			if (d->options[k].label)
				w_attr(&w, "label", d->options[k].label);
			w_str(&w, ">");
			w_elem(&w, "value", d->options[k].value);
			w_str(&w, "</option>");
		}
		w_str(&w, "</field>");
	}
	w_str(&w, "</x>");
	return w.n;
}
