/* query — see query.h. */
#include "core/query.h"

#include <expat.h>
#include <string.h>

#define QUERY_SEP '\xff'
/* The context xmlstage parsed the stanza in (XMLSTAGE_C2S_DECLS). */
static const char open_ctx[] = "<s xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>";
static const char close_ctx[] = "</s>";

struct qstate {
	const char *ns;
	size_t ns_len;
	struct query_field *f;
	size_t n;
	unsigned *others;
	unsigned depth;          /* 1: the context root, 2: iq, 3: query, 4: a field */
	unsigned payloads;       /* children of the iq */
	bool query_ok;           /* the one payload is <query xmlns=ns> */
	struct query_field *cur; /* the field whose text is being read */
};

/* "uri\xfflocal": is it ns + local? */
static bool qname_is(const struct qstate *q, const char *name, const char *local)
{
	size_t ll = strlen(local);

	return strlen(name) == q->ns_len + 1 + ll && memcmp(name, q->ns, q->ns_len) == 0 &&
	       name[q->ns_len] == QUERY_SEP && memcmp(name + q->ns_len + 1, local, ll) == 0;
}

static void XMLCALL on_start(void *ud, const XML_Char *name, const XML_Char **atts)
{
	struct qstate *q = ud;

	q->depth++;
	if (q->depth == 3) {
		q->payloads++;
		q->query_ok = q->payloads == 1 && qname_is(q, name, "query");
	} else if (q->depth == 4 && q->query_ok) {
		q->cur = NULL;
		for (size_t i = 0; i < q->n; i++) {
			if (qname_is(q, name, q->f[i].name)) {
				if (q->f[i].present)
					break;   /* twice: counted below */
				q->f[i].present = true;
				q->cur = &q->f[i];
				return;
			}
		}
		(*q->others)++;
	} else if (q->depth > 4 && q->query_ok) {
		(*q->others)++;      /* markup inside a field */
		q->cur = NULL;
	}
}

static void XMLCALL on_end(void *ud, const XML_Char *name)
{
	struct qstate *q = ud;

	if (q->depth == 4)
		q->cur = NULL;
	q->depth--;
}

static void XMLCALL on_text(void *ud, const XML_Char *s, int len)
{
	struct qstate *q = ud;
	struct query_field *f = q->cur;

	if (q->depth != 4 || !f || len <= 0 || f->overflow)
		return;
	if ((size_t)len > f->cap - 1 - f->len) {
		f->overflow = true;
		return;
	}
	memcpy(f->buf + f->len, s, (size_t)len);
	f->len += (size_t)len;
	f->buf[f->len] = '\0';
}

int query_parse(const char *el, size_t len, const char *ns, struct query_field *f, size_t n,
		unsigned *others)
{
	struct qstate q = { .ns = ns, .ns_len = strlen(ns), .f = f, .n = n, .others = others };
	XML_Parser p;
	int ok;

	*others = 0;
	for (size_t i = 0; i < n; i++) {
		if (!f[i].buf || f[i].cap == 0)
			return -1;
		f[i].len = 0;
		f[i].present = f[i].overflow = false;
		f[i].buf[0] = '\0';
	}
	if (len > (size_t)0x7fffffff || !(p = XML_ParserCreateNS("UTF-8", QUERY_SEP)))
		return -1;
	XML_SetUserData(p, &q);
	XML_SetElementHandler(p, on_start, on_end);
	XML_SetCharacterDataHandler(p, on_text);
	ok = XML_Parse(p, open_ctx, (int)sizeof(open_ctx) - 1, 0) == XML_STATUS_OK &&
	     XML_Parse(p, el, (int)len, 0) == XML_STATUS_OK &&
	     XML_Parse(p, close_ctx, (int)sizeof(close_ctx) - 1, 1) == XML_STATUS_OK;
	XML_ParserFree(p);
	return ok && q.payloads == 1 && q.query_ok ? 0 : -1;
}
