/* Unit tests for core/query.c: fields of an iq's <query/>, decoded and bounded. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "core/query.h"

#define REG "jabber:iq:register"

struct three {
	char user[16], pass[8], res[16];
	struct query_field f[4];
	char rm[1];
};

static int parse(struct three *t, const char *el, const char *ns, unsigned *others)
{
	memset(t, 0, sizeof(*t));
	t->f[0] = (struct query_field){ .name = "username", .buf = t->user, .cap = sizeof(t->user) };
	t->f[1] = (struct query_field){ .name = "password", .buf = t->pass, .cap = sizeof(t->pass) };
	t->f[2] = (struct query_field){ .name = "resource", .buf = t->res, .cap = sizeof(t->res) };
	t->f[3] = (struct query_field){ .name = "remove", .buf = t->rm, .cap = sizeof(t->rm) };
	return query_parse(el, strlen(el), ns, t->f, 4, others);
}

static void test_fields(void **state)
{
	struct three t;
	unsigned others;

	assert_int_equal(parse(&t, "<iq type='set' id='r'><query xmlns='" REG "'><username>bill</username>"
			       "<password>a&amp;b&#x3c;<![CDATA[>]]></password></query></iq>", REG, &others), 0);
	assert_true(t.f[0].present);
	assert_string_equal(t.user, "bill");
	assert_string_equal(t.pass, "a&b<>");
	assert_int_equal(t.f[1].len, 5);
	assert_false(t.f[2].present);
	assert_false(t.f[3].present);
	assert_int_equal(others, 0);

	/* empty elements are present and empty; <remove/> alone */
	assert_int_equal(parse(&t, "<iq type='set' id='r'><query xmlns='" REG "'><username/><password></password>"
			       "</query></iq>", REG, &others), 0);
	assert_true(t.f[0].present && t.f[1].present);
	assert_int_equal(t.f[0].len + t.f[1].len, 0);
	assert_int_equal(parse(&t, "<iq type='set' id='r'><query xmlns='" REG "'><remove/></query></iq>", REG,
			       &others), 0);
	assert_true(t.f[3].present);
	assert_int_equal(others, 0);

	/* prefixes resolve to the same namespace; other namespaces are "others" */
	assert_int_equal(parse(&t, "<iq type='get' id='r'><r:query xmlns:r='" REG "'><r:username>x</r:username>"
			       "<username>y</username><x xmlns='jabber:x:data'/></r:query></iq>", REG, &others), 0);
	assert_string_equal(t.user, "x");
	assert_int_equal(others, 2);
}

static void test_bounds_and_errors(void **state)
{
	struct three t;
	unsigned others;

	/* too long: reported, not truncated into a wrong value */
	assert_int_equal(parse(&t, "<iq type='set' id='r'><query xmlns='" REG "'><password>12345678</password>"
			       "</query></iq>", REG, &others), 0);
	assert_true(t.f[1].overflow);
	assert_int_equal(parse(&t, "<iq type='set' id='r'><query xmlns='" REG "'><password>1234567</password>"
			       "</query></iq>", REG, &others), 0);
	assert_false(t.f[1].overflow);
	assert_string_equal(t.pass, "1234567");
	/* twice, or markup inside a field */
	assert_int_equal(parse(&t, "<iq type='set' id='r'><query xmlns='" REG "'><username>a</username>"
			       "<username>b</username></query></iq>", REG, &others), 0);
	assert_string_equal(t.user, "a");
	assert_int_equal(others, 1);
	assert_int_equal(parse(&t, "<iq type='set' id='r'><query xmlns='" REG "'><username>a<b/>c</username>"
			       "</query></iq>", REG, &others), 0);
	assert_int_equal(others, 1);
	/* not a query of that namespace, or more than one payload */
	assert_int_equal(parse(&t, "<iq type='set' id='r'><query xmlns='jabber:iq:auth'/></iq>", REG, &others), -1);
	assert_int_equal(parse(&t, "<iq type='set' id='r'><ping xmlns='" REG "'/></iq>", REG, &others), -1);
	assert_int_equal(parse(&t, "<iq type='set' id='r'><query xmlns='" REG "'/><query xmlns='" REG "'/></iq>",
			       REG, &others), -1);
	assert_int_equal(parse(&t, "<iq type='set' id='r'/>", REG, &others), -1);
	assert_int_equal(parse(&t, "<iq type='set' id='r'><query xmlns='" REG "'>", REG, &others), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fields),
		cmocka_unit_test(test_bounds_and_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
