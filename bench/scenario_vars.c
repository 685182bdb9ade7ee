/*
 * scenario_vars — the variables of scenario files (xedge-bench --var): ${NAME}
 * and ${NAME:-DEFAULT} substituted in a file's text before it is parsed, "$$"
 * for one '$', line for line so that the loader's errors keep their lines.
 * The --var values are module state, set by scn_vars_add() before a load.
 */
#include "bench/scenario.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct scn_var vars[SCN_MAX_VARS];
static unsigned nvars;

static bool var_start(char ch)
{
	return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || ch == '_';
}

static bool var_char(char ch)
{
	return var_start(ch) || (ch >= '0' && ch <= '9');
}

int scn_var_parse(const char *assign, struct scn_var *v, char *err, size_t errlen)
{
	const char *eq = strchr(assign, '=');
	size_t nl = eq ? (size_t)(eq - assign) : 0;

	if (!eq || !nl || !var_start(assign[0])) {
		snprintf(err, errlen, "--var %.80s: expected NAME=VALUE, NAME a letter or '_' then "
			 "letters, digits, '_'", assign);
		return -1;
	}
	for (size_t i = 0; i < nl; i++)
		if (!var_char(assign[i])) {
			snprintf(err, errlen, "--var %.80s: '%c' in the name (letters, digits, '_')",
				 assign, assign[i]);
			return -1;
		}
	if (nl > SCN_VAR_NAME || strlen(eq + 1) > SCN_VAR_VALUE) {
		snprintf(err, errlen, "--var %.80s: a name of at most %d bytes and a value of at "
			 "most %d", assign, SCN_VAR_NAME, SCN_VAR_VALUE);
		return -1;
	}
	if (strpbrk(eq + 1, "\r\n")) {
		snprintf(err, errlen, "--var %.*s: the value holds a line break", (int)nl, assign);
		return -1;
	}
	memcpy(v->name, assign, nl);
	v->name[nl] = '\0';
	strcpy(v->value, eq + 1);
	v->used = false;
	return 0;
}

static int subst_fail(char *err, size_t errlen, const char *name, unsigned long line,
		      const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static int subst_fail(char *err, size_t errlen, const char *name, unsigned long line,
		      const char *fmt, ...)
{
	char why[300];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	if (line)
		snprintf(err, errlen, "%s:%lu: %s", name, line, why);
	else
		snprintf(err, errlen, "%s: %s", name, why);
	return -1;
}

/* One reference at text[i] = "${": its replacement in *rep (*replen bytes), the
 * index after its '}' in *next. */
static int subst_ref(const char *text, size_t len, size_t i, const char *name, unsigned long line,
		     struct scn_var *vs, unsigned nv, const char **rep, size_t *replen, size_t *next,
		     char *err, size_t errlen)
{
	size_t j = i + 2, n0 = j, nl;
	const char *def = NULL;
	size_t deflen = 0;

	if (j >= len || !var_start(text[j]))
		return subst_fail(err, errlen, name, line, "'${' must be followed by a variable "
				  "name (write $$ for a '$')");
	while (j < len && var_char(text[j]))
		j++;
	nl = j - n0;
	if (nl > SCN_VAR_NAME)
		return subst_fail(err, errlen, name, line, "a variable name longer than %d bytes",
				  SCN_VAR_NAME);
	if (j + 1 < len && text[j] == ':' && text[j + 1] == '-') {
		def = text + j + 2;
		j += 2;
		while (j < len && text[j] != '}' && text[j] != '\n' && text[j] != '$')
			j++;
		deflen = (size_t)(text + j - def);
	}
	if (j >= len || text[j] != '}')
		return subst_fail(err, errlen, name, line, "${%.*s: expected %s'}' on the same line",
				  (int)nl, text + n0, def ? "" : "':-DEFAULT' or ");
	*next = j + 1;
	for (unsigned k = 0; k < nv; k++)
		if (strlen(vs[k].name) == nl && !memcmp(vs[k].name, text + n0, nl)) {
			vs[k].used = true;
			*rep = vs[k].value;
			*replen = strlen(vs[k].value);
			return 0;
		}
	if (!def)
		return subst_fail(err, errlen, name, line, "${%.*s} is not set (--var %.*s=VALUE, or "
				  "write ${%.*s:-DEFAULT})", (int)nl, text + n0, (int)nl, text + n0,
				  (int)nl, text + n0);
	*rep = def;
	*replen = deflen;
	return 0;
}

int scn_subst(const char *text, size_t len, const char *name, struct scn_var *vs, unsigned nv,
	      char **out, size_t *outlen, char *err, size_t errlen)
{
	size_t cap = len + 1, o = 0, i = 0;
	unsigned long line = 1;
	char *b;

	*out = NULL;
	*outlen = 0;
	if (len > SCN_MAX_TEXT)
		return subst_fail(err, errlen, name, 0, "larger than %u bytes", SCN_MAX_TEXT);
	for (unsigned k = 0; k < nv; k++)
		vs[k].used = false;
	b = malloc(cap);
	if (!b)
		return subst_fail(err, errlen, name, 0, "out of memory");
	while (i < len) {
		const char *rep = text + i;
		size_t replen = 1, next = i + 1;

		if (text[i] == '\n') {
			line++;
		} else if (text[i] == '$' && i + 1 < len && text[i + 1] == '$') {
			next = i + 2;      /* "$$": one '$' */
		} else if (text[i] == '$' && i + 1 < len && text[i + 1] == '{') {
			if (subst_ref(text, len, i, name, line, vs, nv, &rep, &replen, &next, err,
				      errlen) < 0) {
				free(b);
				return -1;
			}
		}
		if (o + replen + 1 > cap) {
			size_t nc = cap * 2 > o + replen + 1 ? cap * 2 : o + replen + 1;
			char *nb;
			if (nc > SCN_MAX_TEXT + 1) {
				free(b);
				return subst_fail(err, errlen, name, line, "larger than %u bytes after "
						  "substitution", SCN_MAX_TEXT);
			}
			nb = realloc(b, nc);
			if (!nb) {
				free(b);
				return subst_fail(err, errlen, name, 0, "out of memory");
			}
			b = nb;
			cap = nc;
		}
		memcpy(b + o, rep, replen);
		o += replen;
		i = next;
	}
	b[o] = '\0';
	for (unsigned k = 0; k < nv; k++)
		if (!vs[k].used) {
			free(b);
			return subst_fail(err, errlen, name, 0, "--var %s: the file has no ${%s}",
					  vs[k].name, vs[k].name);
		}
	*out = b;
	*outlen = o;
	return 0;
}

int scn_vars_add(const char *assign, char *err, size_t errlen)
{
	struct scn_var v;

	if (scn_var_parse(assign, &v, err, errlen) < 0)
		return -1;
	for (unsigned k = 0; k < nvars; k++)
		if (!strcmp(vars[k].name, v.name)) {
			vars[k] = v;
			return 0;
		}
	if (nvars == SCN_MAX_VARS) {
		snprintf(err, errlen, "--var %s: more than %d variables", v.name, SCN_MAX_VARS);
		return -1;
	}
	vars[nvars++] = v;
	return 0;
}

void scn_vars_clear(void)
{
	nvars = 0;
}


int scn_subst_vars(const char *text, size_t len, const char *name, char **out, size_t *outlen,
		   char *err, size_t errlen)
{
	return scn_subst(text, len, name, vars, nvars, out, outlen, err, errlen);
}
