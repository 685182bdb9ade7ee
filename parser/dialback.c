/*
 * dialback — see dialback.h.
 */
#include "parser/dialback.h"

#include <stdio.h>
#include <string.h>

#include "parser/xtree.h"
#include "tls/crypto.h"

#define NS_STANZAS "urn:ietf:params:xml:ns:xmpp-stanzas"

/* Small elements: a dialback element is a few hundred bytes. */
static const struct xtree_limits db_limits = {
	.max_bytes = 4096, .max_mem = 16384, .max_depth = 4, .max_elements = 8, .max_attrs = 8
};

/* A domain attribute into its canonical form: false when absent or not a
 * domain (a JID with a local part or resource is not one). */
static bool get_domain(const char *v, char out[JID_PART_MAX + 1])
{
	size_t n = v ? strlen(v) : 0;

	if (n && v[n - 1] == '.')
		n--;
	if (!n || n > JID_PART_MAX || !jid_domain_valid(v, n))
		return false;
	jid_fold(v, n, out);
	out[n] = 0;
	return true;
}

static bool printable(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] <= ' ' || s[i] > '~' || s[i] == '\'' || s[i] == '"' || s[i] == '<' ||
		    s[i] == '>' || s[i] == '&')
			return false;
	return true;
}

int dialback_parse(const char *raw, size_t len, const char *decls, struct db_elem *out)
{
	struct xtree *t;
	const struct xtree_node *el, *err, *c;
	const char *type, *id;
	int rc = DB_OK;

	memset(out, 0, sizeof(*out));
	t = xtree_parse(raw, len, decls, &db_limits, NULL);
	el = t ? xtree_root(t) : NULL;
	if (!el || strcmp(el->ns, NS_DIALBACK) != 0) {
		rc = DB_E_XML;
		goto out;
	}
	if (!strcmp(el->local, "result"))
		out->kind = DB_RESULT;
	else if (!strcmp(el->local, "verify"))
		out->kind = DB_VERIFY;
	else {
		rc = DB_E_XML;
		goto out;
	}
	type = xtree_attr(el, "type");
	out->type = !type ? DB_REQUEST : !strcmp(type, "valid") ? DB_VALID
		    : !strcmp(type, "invalid") ? DB_INVALID : !strcmp(type, "error") ? DB_ERROR : -1;
	if (out->type < 0) {
		rc = DB_E_TYPE;
		goto out;
	}
	if (!get_domain(xtree_attr(el, "from"), out->from)) {
		rc = DB_E_FROM;
		goto out;
	}
	if (!get_domain(xtree_attr(el, "to"), out->to)) {
		rc = DB_E_TO;
		goto out;
	}
	id = xtree_attr(el, "id");
	if (id) {
		size_t n = strlen(id);
		if (!n || n > DB_ID_MAX || !printable(id, n)) {
			rc = DB_E_ID;
			goto out;
		}
		memcpy(out->id, id, n + 1);
	} else if (out->kind == DB_VERIFY) {
		rc = DB_E_ID;
		goto out;
	}
	if (out->type == DB_REQUEST) {
		if (!el->text_len || el->text_len > DB_KEY_MAX || !printable(el->text, el->text_len)) {
			rc = DB_E_KEY;
			goto out;
		}
		memcpy(out->key, el->text, el->text_len + 1);
	} else if (out->type == DB_ERROR && (err = xtree_child(el, NULL, "error")) != NULL) {
		for (c = err->first; c; c = c->next)
			if (!strcmp(c->ns, NS_STANZAS) && strlen(c->local) < sizeof(out->cond)) {
				strcpy(out->cond, c->local);
				break;
			}
	}
out:
	xtree_free(t);
	return rc;
}

const char *dialback_error_str(int err)
{
	switch (err) {
	case DB_E_FROM: return "invalid-from";
	case DB_E_TO: return "improper-addressing";
	case DB_E_ID: return "invalid-id";
	case DB_E_KEY: return "not-acceptable";
	case DB_E_TYPE: return "bad-format";
	default: return "invalid-xml";
	}
}

static void hex(const uint8_t *p, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 15];
	}
	out[2 * n] = 0;
}

void dialback_secret_hex(const void *secret, size_t n, char out[DB_KEY_HEX + 1])
{
	uint8_t h[32];

	crypto_hash(CRYPTO_SHA256, secret, n, h);
	hex(h, sizeof(h), out);
}

int dialback_key(const char secret_hex[DB_KEY_HEX + 1], const char *receiving,
		 const char *originating, const char *id, char out[DB_KEY_HEX + 1])
{
	char msg[2 * JID_PART_MAX + DB_ID_MAX + 3];
	uint8_t mac[32];
	int n = snprintf(msg, sizeof(msg), "%s %s %s", receiving, originating, id);

	if (n < 0 || (size_t)n >= sizeof(msg) ||
	    crypto_hmac(CRYPTO_SHA256, secret_hex, DB_KEY_HEX, msg, (size_t)n, mac) < 0) {
		out[0] = 0;
		return -1;
	}
	hex(mac, sizeof(mac), out);
	return 0;
}
