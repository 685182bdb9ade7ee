/*
 * xmltag — start-tag rewriting and XML escaping (contract in parser/xmltag.h).
 *
 * xmltag_rewrite() walks the first start tag with a tiny scanner of its own
 * (name, then `S name S? = S? quote value quote` pairs, then '>' or "/>"),
 * bounded by len at every step, and copies the element with the selected
 * attributes dropped and the new ones written right after the element name.
 * Everything else is copied byte for byte, so the result is exactly the
 * input when set[] matches nothing and sets nothing.
 *
 * Output goes through a writer that counts every byte but stores only what
 * fits in cap: the return value is always the full length, which is how the
 * caller learns the size to retry with.
 */
#include "parser/xmltag.h"

#include <string.h>

struct wr {
	char *out;
	size_t cap;
	size_t n; /* bytes the result needs so far (may exceed cap) */
};

static void put(struct wr *w, const char *s, size_t k)
{
	if (w->n < w->cap) {
		size_t room = w->cap - w->n;
		memcpy(w->out + w->n, s, k < room ? k : room);
	}
	w->n += k;
}

static void put_escaped(struct wr *w, const char *s, size_t n)
{
	size_t run = 0;

	for (size_t i = 0; i < n; i++) {
		const char *rep;
		size_t rlen;

		switch (s[i]) {
		case '&': rep = "&amp;"; rlen = 5; break;
		case '<': rep = "&lt;"; rlen = 4; break;
		case '>': rep = "&gt;"; rlen = 4; break;
		case '"': rep = "&quot;"; rlen = 6; break;
		case '\'': rep = "&apos;"; rlen = 6; break;
		default: continue;
		}
		put(w, s + run, i - run);
		put(w, rep, rlen);
		run = i + 1;
	}
	put(w, s + run, n - run);
}

size_t xml_escape(const char *s, size_t n, char *out, size_t cap)
{
	struct wr w = { out, cap, 0 };

	put_escaped(&w, s, n);
	return w.n;
}

static int is_ws(char c)
{
	return c == ' ' || c == '\n' || c == '\t' || c == '\r';
}

/* Same loose name classes as the framer: bytes >= 0x80 are name bytes. */
static int is_name_start(char c)
{
	unsigned char u = (unsigned char)c;
	return ((u | 0x20) >= 'a' && (u | 0x20) <= 'z') || u == '_' || u == ':' || u >= 0x80;
}

static int is_name(char c)
{
	return is_name_start(c) || (c >= '0' && c <= '9') || c == '.' || c == '-';
}

static int selected(const char *name, size_t nlen, const struct xmltag_attr *set, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (set[i].name && strlen(set[i].name) == nlen && memcmp(set[i].name, name, nlen) == 0)
			return 1;
	return 0;
}

size_t xmltag_rewrite(const char *el, size_t len, const struct xmltag_attr *set, size_t n,
		      char *out, size_t cap)
{
	struct wr w = { out, cap, 0 };
	size_t i = 1, name_end, keep;

	if (len < 2 || el[0] != '<' || !is_name_start(el[1]))
		return 0;
	while (i < len && is_name(el[i]))
		i++;
	name_end = i;

	put(&w, el, name_end);
	for (size_t k = 0; k < n; k++) {
		if (!set[k].name || !set[k].value)
			continue;
		put(&w, " ", 1);
		put(&w, set[k].name, strlen(set[k].name));
		put(&w, "='", 2);
		put_escaped(&w, set[k].value, strlen(set[k].value));
		put(&w, "'", 1);
	}

	/*
	 * keep: start of the bytes not yet copied.  A dropped attribute takes
	 * its leading whitespace with it, so the remaining spacing is intact.
	 */
	keep = name_end;
	for (;;) {
		size_t ws = i, an, ae;
		const char *q;

		while (i < len && is_ws(el[i]))
			i++;
		if (i >= len)
			return 0;
		if (el[i] == '>' || (el[i] == '/' && i + 1 < len && el[i + 1] == '>'))
			break;
		/* an attribute must be separated from what precedes it */
		if (i == ws || !is_name_start(el[i]))
			return 0;
		an = i;
		while (i < len && is_name(el[i]))
			i++;
		ae = i;
		while (i < len && is_ws(el[i]))
			i++;
		if (i >= len || el[i] != '=')
			return 0;
		i++;
		while (i < len && is_ws(el[i]))
			i++;
		if (i >= len || (el[i] != '\'' && el[i] != '"'))
			return 0;
		q = memchr(el + i + 1, el[i], len - i - 1);
		if (!q)
			return 0;
		i = (size_t)(q - el) + 1;
		if (selected(el + an, ae - an, set, n)) {
			put(&w, el + keep, ws - keep);
			keep = i;
		}
	}
	put(&w, el + keep, len - keep);
	return w.n;
}
