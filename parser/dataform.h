/*
 * dataform — XEP-0004 data forms: read a form a peer sent (an
 * <x xmlns='jabber:x:data'/> already parsed into an xtree), and write the
 * forms the server sends.  Pure code: no I/O, no globals, no allocation
 * (the parsed form is a fixed-size struct of pointers into the tree).
 *
 * Reading follows XEP-0004 §3 to the letter where it speaks of the wire:
 *   - the form type is one of form, submit, cancel, result (§3.1);
 *   - a field's type, when given, is one of the ten of §3.3; a field
 *     without type reads as text-single (§3.2) but is not held to its
 *     single value: a submitted form need not repeat the types of the form
 *     it answers (§3.4), so the receiver checks the submission against the
 *     types it asked for (typed false);
 *   - every field but a fixed one has a var (§3.2), unique in the form;
 *   - a field typed as single-valued (boolean, hidden, jid-single,
 *     list-single, text-private, text-single) carries at most one <value/>;
 *   - a boolean value is 0, 1, false or true (§3.3);
 *   - a jid-single/jid-multi value is a valid JID (RFC 7622 syntax, jid.h).
 * Only the top-level fields count (those of <reported/> and <item/> in a
 * result form are not read).  Everything a peer controls is bounded: fields
 * (DATAFORM_MAX_FIELDS), values in the whole form (DATAFORM_MAX_VALUES),
 * the bytes of one value (DATAFORM_VALUE_MAX) and of a var
 * (DATAFORM_VAR_MAX).  A form over a bound is refused, never truncated.
 *
 * Lifetime: a struct dataform points into the xtree it was read from; it
 * is valid while that tree is.
 */
#ifndef XEDGE_DATAFORM_H
#define XEDGE_DATAFORM_H

#include <stdbool.h>
#include <stddef.h>

#include "parser/xtree.h"

#define DATAFORM_NS "jabber:x:data"
#define DATAFORM_MAX_FIELDS 64
#define DATAFORM_MAX_VALUES 256      /* <value/>s in one form, all fields together */
#define DATAFORM_VALUE_MAX 4096      /* bytes of one value */
#define DATAFORM_VAR_MAX 256         /* bytes of one var */

/* The form's type attribute (§3.1). */
enum dataform_type {
	DATAFORM_FORM = 1,
	DATAFORM_SUBMIT,
	DATAFORM_CANCEL,
	DATAFORM_RESULT
};

/* Field types (§3.3). */
enum dataform_ftype {
	DATAFORM_F_BOOLEAN = 1,
	DATAFORM_F_FIXED,
	DATAFORM_F_HIDDEN,
	DATAFORM_F_JID_MULTI,
	DATAFORM_F_JID_SINGLE,
	DATAFORM_F_LIST_MULTI,
	DATAFORM_F_LIST_SINGLE,
	DATAFORM_F_TEXT_MULTI,
	DATAFORM_F_TEXT_PRIVATE,
	DATAFORM_F_TEXT_SINGLE
};

enum dataform_error {
	DATAFORM_OK = 0,
	DATAFORM_E_NOT_FORM,     /* not an <x/> in jabber:x:data */
	DATAFORM_E_TYPE,         /* form type absent or unknown */
	DATAFORM_E_FIELD_TYPE,   /* a field's type unknown */
	DATAFORM_E_VAR,          /* var missing (non-fixed field), empty, or over DATAFORM_VAR_MAX */
	DATAFORM_E_DUPLICATE,    /* two fields with one var */
	DATAFORM_E_VALUES,       /* several values in a single-valued field */
	DATAFORM_E_VALUE,        /* a value invalid for its type (boolean, JID), or over
	                            DATAFORM_VALUE_MAX */
	DATAFORM_E_LIMIT         /* over DATAFORM_MAX_FIELDS or DATAFORM_MAX_VALUES */
};

struct dataform_field {
	const char *var;            /* NULL only for a fixed field without one */
	int type;                   /* enum dataform_ftype */
	bool typed;                 /* the type attribute was present (else the rules of
	                               text-single were not applied: see above) */
	const char *const *values;  /* nvalues, into the form's value table */
	unsigned nvalues;
};

struct dataform {
	int type;                   /* enum dataform_type */
	const char *title;          /* NULL: none */
	struct dataform_field fields[DATAFORM_MAX_FIELDS];
	unsigned nfields;
	const char *value_tab[DATAFORM_MAX_VALUES];
	unsigned nvalues;
};

/*
 * Read the form x (an element of the tree).  Returns DATAFORM_OK with *f
 * filled, or an enum dataform_error (then *f holds nothing usable).
 */
int dataform_parse(const struct xtree_node *x, struct dataform *f);
const char *dataform_error_str(int err);
const char *dataform_type_str(int type);       /* "form" ... */
const char *dataform_ftype_str(int ftype);     /* "text-single" ... */

/* The field named var, NULL when absent. */
const struct dataform_field *dataform_field(const struct dataform *f, const char *var);
/* Its first value; NULL when the field is absent or has none. */
const char *dataform_value(const struct dataform *f, const char *var);
/* The FORM_TYPE (the value of the hidden field FORM_TYPE), NULL when none. */
const char *dataform_form_type(const struct dataform *f);
/* A boolean value: 1 (true, 1), 0 (false, 0), -1 for anything else. */
int dataform_bool(const char *v);

/* ---- writing ---------------------------------------------------------- */

struct dataform_option {
	const char *label;          /* NULL: none */
	const char *value;
};

/* One field to write.  Unused members are zero. */
struct dataform_fdesc {
	int type;                   /* enum dataform_ftype; 0: no type attribute (a submission) */
	const char *var;            /* NULL only for fixed */
	const char *label;          /* NULL: none */
	const char *desc;           /* <desc/>; NULL: none */
	bool required;
	const char *const *values;  /* nvalues <value/>s */
	unsigned nvalues;
	const struct dataform_option *options;   /* list-single / list-multi */
	unsigned noptions;
};

/*
 * Write <x xmlns='jabber:x:data' type='...'> with title and instructions
 * (NULL: none) and the fields, through put (xtree.h), text escaped.
 * Returns the number of bytes passed to put.  Whether the description is
 * valid for its type is the caller's business (a constant table).
 */
size_t dataform_write(xtree_put_fn put, void *arg, int type, const char *title,
		      const char *instructions, const struct dataform_fdesc *fields, unsigned n);

#endif
