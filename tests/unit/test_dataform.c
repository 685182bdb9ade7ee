/*
 * Unit tests for parser/dataform.c: XEP-0004 forms read (types, fields,
 * values, FORM_TYPE, the rules of §3.2/§3.3 and the bounds) and written
 * (every field type XEP-0133 uses; the output reads back as the same form).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "parser/dataform.h"
#include "parser/xtree.h"

struct obuf {
	char *p;
	size_t len, cap;
};

static void obuf_put(void *arg, const char *p, size_t n)
{
	struct obuf *b = arg;

	if (b->len + n + 1 > b->cap) {
		size_t cap = (b->len + n + 1) * 2;
		char *g = realloc(b->p, cap);
		assert_non_null(g);
		b->p = g;
		b->cap = cap;
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void obuf_s(struct obuf *b, const char *s)
{
	obuf_put(b, s, strlen(s));
}

/* Parse s as a form: the error code; *tp holds the tree (free it). */
static int parse(const char *s, struct xtree **tp, struct dataform *f)
{
	int err;
	struct xtree *t = xtree_parse(s, strlen(s), NULL, NULL, &err);

	assert_non_null(t);
	*tp = t;
	return dataform_parse(xtree_root(t), f);
}

static int parse_free(const char *s)
{
	static struct dataform f;
	struct xtree *t;
	int rc = parse(s, &t, &f);

	xtree_free(t);
	return rc;
}

static void test_submit_add_user(void **state)
{
	static struct dataform f;
	struct xtree *t;
	const struct dataform_field *fd;

	assert_int_equal(parse("<x xmlns='jabber:x:data' type='submit'>"
			       "<field type='hidden' var='FORM_TYPE'>"
			       "<value>http://jabber.org/protocol/admin</value></field>"
			       "<field var='accountjid'><value>juliet@shakespeare.lit</value></field>"
			       "<field var='password'><value>s3&amp;cr3t</value></field>"
			       "<field var='email' type='text-multi'><value>a</value><value>b</value></field>"
			       "</x>", &t, &f), DATAFORM_OK);
	assert_int_equal(f.type, DATAFORM_SUBMIT);
	assert_int_equal(f.nfields, 4);
	assert_string_equal(dataform_form_type(&f), "http://jabber.org/protocol/admin");
	assert_string_equal(dataform_value(&f, "accountjid"), "juliet@shakespeare.lit");
	assert_string_equal(dataform_value(&f, "password"), "s3&cr3t");
	fd = dataform_field(&f, "accountjid");
	assert_non_null(fd);
	/* no type attribute: text-single (§3.2) */
	assert_int_equal(fd->type, DATAFORM_F_TEXT_SINGLE);
	assert_false(fd->typed);
	fd = dataform_field(&f, "email");
	assert_int_equal(fd->nvalues, 2);
	assert_string_equal(fd->values[1], "b");
	assert_null(dataform_field(&f, "nope"));
	assert_null(dataform_value(&f, "nope"));
	xtree_free(t);
}

static void test_form_types(void **state)
{
	assert_int_equal(parse_free("<x xmlns='jabber:x:data' type='cancel'/>"), DATAFORM_OK);
	assert_int_equal(parse_free("<x xmlns='jabber:x:data' type='form'/>"), DATAFORM_OK);
	assert_int_equal(parse_free("<x xmlns='jabber:x:data' type='result'/>"), DATAFORM_OK);
	assert_int_equal(parse_free("<x xmlns='jabber:x:data'/>"), DATAFORM_E_TYPE);
	assert_int_equal(parse_free("<x xmlns='jabber:x:data' type='Submit'/>"), DATAFORM_E_TYPE);
	assert_int_equal(parse_free("<x xmlns='jabber:x:oob' type='submit'/>"), DATAFORM_E_NOT_FORM);
	assert_int_equal(parse_free("<y xmlns='jabber:x:data' type='submit'/>"), DATAFORM_E_NOT_FORM);
	assert_int_equal(dataform_parse(NULL, &(struct dataform){ 0 }), DATAFORM_E_NOT_FORM);
}

static void test_field_rules(void **state)
{
	/* unknown field type */
	assert_int_equal(parse_free("<x xmlns='jabber:x:data' type='submit'>"
				    "<field type='text-huge' var='a'/></x>"), DATAFORM_E_FIELD_TYPE);
	/* var required except for fixed; not empty */
	assert_int_equal(parse_free("<x xmlns='jabber:x:data' type='submit'><field/></x>"),
			 DATAFORM_E_VAR);
	assert_int_equal(parse_free("<x xmlns='jabber:x:data' type='submit'><field var=''/></x>"),
			 DATAFORM_E_VAR);
	assert_int_equal(parse_free("<x xmlns='jabber:x:data' type='form'>"
				    "<field type='fixed'><value>hello</value></field></x>"), DATAFORM_OK);
	/* unique var */
	assert_int_equal(parse_free("<x xmlns='jabber:x:data' type='submit'>"
				    "<field var='a'/><field var='a' type='boolean'/></x>"),
			 DATAFORM_E_DUPLICATE);
	/* single-valued types */
	assert_int_equal(parse_free("<x xmlns='jabber:x:data' type='submit'>"
				    "<field var='a' type='jid-single'><value>a@b</value><value>c@d</value>"
				    "</field></x>"), DATAFORM_E_VALUES);
	assert_int_equal(parse_free("<x xmlns='jabber:x:data' type='submit'>"
				    "<field var='a' type='text-single'><value>1</value><value>2</value>"
				    "</field></x>"), DATAFORM_E_VALUES);
	/* untyped (a submission, §3.4): several values are the receiver's to judge */
	assert_int_equal(parse_free("<x xmlns='jabber:x:data' type='submit'>"
				    "<field var='a'><value>1</value><value>2</value></field></x>"),
			 DATAFORM_OK);
	assert_int_equal(parse_free("<x xmlns='jabber:x:data' type='submit'>"
				    "<field var='a' type='jid-multi'><value>a@b</value><value>c@d</value>"
				    "</field><field var='b' type='list-multi'><value>1</value>"
				    "<value>2</value></field></x>"), DATAFORM_OK);
	/* booleans and JIDs */
	assert_int_equal(parse_free("<x xmlns='jabber:x:data' type='submit'>"
				    "<field var='a' type='boolean'><value>yes</value></field></x>"),
			 DATAFORM_E_VALUE);
	assert_int_equal(parse_free("<x xmlns='jabber:x:data' type='submit'>"
				    "<field var='a' type='jid-multi'><value>a@b</value><value>@nope</value>"
				    "</field></x>"), DATAFORM_E_VALUE);
	assert_int_equal(dataform_bool("true"), 1);
	assert_int_equal(dataform_bool("1"), 1);
	assert_int_equal(dataform_bool("false"), 0);
	assert_int_equal(dataform_bool("0"), 0);
	assert_int_equal(dataform_bool("TRUE"), -1);
	assert_int_equal(dataform_bool(NULL), -1);
	/* FORM_TYPE must be hidden */
	{
		static struct dataform f;
		struct xtree *t;

		assert_int_equal(parse("<x xmlns='jabber:x:data' type='submit'>"
				       "<field var='FORM_TYPE'><value>urn:x</value></field></x>", &t, &f),
				 DATAFORM_OK);
		assert_null(dataform_form_type(&f));
		xtree_free(t);
	}
}

/* Fields of <reported/> and <item/> are not top-level fields. */
static void test_result_items_ignored(void **state)
{
	static struct dataform f;
	struct xtree *t;

	assert_int_equal(parse("<x xmlns='jabber:x:data' type='result'><title>T</title>"
			       "<reported><field var='a'/></reported>"
			       "<item><field var='a'><value>1</value></field></item>"
			       "<item><field var='a'><value>2</value></field></item></x>", &t, &f),
			 DATAFORM_OK);
	assert_int_equal(f.nfields, 0);
	assert_string_equal(f.title, "T");
	xtree_free(t);
}

static void test_limits(void **state)
{
	struct obuf b = { 0 };
	char big[DATAFORM_VALUE_MAX + 2];

	/* fields */
	obuf_s(&b, "<x xmlns='jabber:x:data' type='submit'>");
	for (int i = 0; i < DATAFORM_MAX_FIELDS; i++) {
		char one[64];
		int n = snprintf(one, sizeof(one), "<field var='f%d'/>", i);
		obuf_put(&b, one, (size_t)n);
	}
	obuf_s(&b, "</x>");
	assert_int_equal(parse_free(b.p), DATAFORM_OK);
	b.len -= 4;
	obuf_s(&b, "<field var='last'/></x>");
	assert_int_equal(parse_free(b.p), DATAFORM_E_LIMIT);
	/* values */
	b.len = 0;
	obuf_s(&b, "<x xmlns='jabber:x:data' type='submit'><field var='m' type='text-multi'>");
	for (int i = 0; i <= DATAFORM_MAX_VALUES; i++)
		obuf_s(&b, "<value>v</value>");
	obuf_s(&b, "</field></x>");
	assert_int_equal(parse_free(b.p), DATAFORM_E_LIMIT);
	/* one value's bytes */
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	b.len = 0;
	obuf_s(&b, "<x xmlns='jabber:x:data' type='submit'><field var='m'><value>");
	obuf_put(&b, big, strlen(big));
	obuf_s(&b, "</value></field></x>");
	assert_int_equal(parse_free(b.p), DATAFORM_E_VALUE);
	/* var bytes */
	b.len = 0;
	obuf_s(&b, "<x xmlns='jabber:x:data' type='submit'><field var='");
	obuf_put(&b, big, DATAFORM_VAR_MAX + 1);
	obuf_s(&b, "'/></x>");
	assert_int_equal(parse_free(b.p), DATAFORM_E_VAR);
	free(b.p);
}

/* Every field type XEP-0133 uses, written and read back. */
static void test_write_round_trip(void **state)
{
	static const char *const ft[] = { "http://jabber.org/protocol/admin" };
	static const char *const jids[] = { "a@example.com", "b@example.com" };
	static const char *const lines[] = { "line <1>", "line 'two' & more" };
	static const char *const yes[] = { "1" };
	static const struct dataform_option opts[] = { { "25 items", "25" }, { NULL, "none" } };
	static const struct dataform_fdesc fields[] = {
		{ .type = DATAFORM_F_HIDDEN, .var = "FORM_TYPE", .values = ft, .nvalues = 1 },
		{ .type = DATAFORM_F_FIXED, .values = lines, .nvalues = 1 },
		{ .type = DATAFORM_F_JID_SINGLE, .var = "accountjid", .label = "The Jabber ID",
		  .required = true, .desc = "who" },
		{ .type = DATAFORM_F_JID_MULTI, .var = "accountjids", .values = jids, .nvalues = 2 },
		{ .type = DATAFORM_F_TEXT_PRIVATE, .var = "password", .required = true },
		{ .type = DATAFORM_F_TEXT_SINGLE, .var = "subject" },
		{ .type = DATAFORM_F_TEXT_MULTI, .var = "announcement", .values = lines, .nvalues = 2 },
		{ .type = DATAFORM_F_LIST_SINGLE, .var = "max_items", .options = opts, .noptions = 2 },
		{ .type = DATAFORM_F_BOOLEAN, .var = "notify", .values = yes, .nvalues = 1 },
	};
	struct obuf b = { 0 };
	static struct dataform f;
	struct xtree *t;
	size_t n = dataform_write(obuf_put, &b, DATAFORM_FORM, "Add <User>", "Fill & send", fields,
				  sizeof(fields) / sizeof(fields[0]));
	const struct dataform_field *fd;

	assert_int_equal(n, b.len);
	assert_non_null(strstr(b.p, "<title>Add &lt;User&gt;</title>"));
	assert_non_null(strstr(b.p, "<instructions>Fill &amp; send</instructions>"));
	assert_non_null(strstr(b.p, "<required/>"));
	assert_non_null(strstr(b.p, "<option label='25 items'><value>25</value></option>"));
	assert_int_equal(parse(b.p, &t, &f), DATAFORM_OK);
	assert_int_equal(f.type, DATAFORM_FORM);
	assert_string_equal(f.title, "Add <User>");
	assert_int_equal(f.nfields, 9);
	assert_string_equal(dataform_form_type(&f), ft[0]);
	assert_int_equal(f.fields[1].type, DATAFORM_F_FIXED);
	assert_null(f.fields[1].var);
	fd = dataform_field(&f, "announcement");
	assert_int_equal(fd->type, DATAFORM_F_TEXT_MULTI);
	assert_int_equal(fd->nvalues, 2);
	assert_string_equal(fd->values[1], lines[1]);
	assert_int_equal(dataform_field(&f, "password")->type, DATAFORM_F_TEXT_PRIVATE);
	assert_int_equal(dataform_field(&f, "accountjids")->nvalues, 2);
	assert_int_equal(dataform_bool(dataform_value(&f, "notify")), 1);
	/* options are not values */
	assert_int_equal(dataform_field(&f, "max_items")->nvalues, 0);
	for (int k = DATAFORM_F_BOOLEAN; k <= DATAFORM_F_TEXT_SINGLE; k++)
		assert_string_not_equal(dataform_ftype_str(k), "?");
	assert_string_equal(dataform_ftype_str(99), "?");
	assert_string_equal(dataform_error_str(DATAFORM_E_LIMIT), "too many fields or values");
	xtree_free(t);
	free(b.p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_submit_add_user),
		cmocka_unit_test(test_form_types),
		cmocka_unit_test(test_field_rules),
		cmocka_unit_test(test_result_items_ignored),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_write_round_trip),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
