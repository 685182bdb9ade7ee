/*
 * sm_carbons — XEP-0280 Message Carbons.
 *
 * A bound session enables or disables carbons with an iq set of
 * <enable/> / <disable/> (urn:xmpp:carbons:2); repeating either is not an
 * error (§10.1).  The flag lives on the session (s->carbons) and the account
 * counts its enabled sessions (u->ncarbons, kept by this file and by the
 * session's end in sm.c), so routing a message for a user with no enabled
 * session costs one integer test (the inline wrappers in sm_int.h).
 *
 * Eligibility (§6, the suggested rules): type chat, or type normal (absent
 * or unknown types count as normal, RFC 6121 §5.2.2) with a <body/>; never
 * a message carrying <private xmlns='urn:xmpp:carbons:2'/> (§9) or
 * <no-copy xmlns='urn:xmpp:hints'/> (XEP-0334), one sent by a MUC
 * (<x xmlns='http://jabber.org/protocol/muc#user'/>), or one that already
 * is a carbon (<received/> / <sent/>: no loops).
 *
 * Received (§7): after a message is delivered to one resource, every other
 * enabled resource of the recipient gets it wrapped in <received/> +
 * XEP-0297 <forwarded/>, from the bare JID, to its full JID, with the same
 * type.  Sent (§8): a message a resource sends is copied the same way in
 * <sent/> to its account's other enabled resources (the sender's own flag
 * does not matter; the resource it is addressed to, if it is one of the
 * sender's own, receives the original and no copy).
 *
 * §9: the receiving server removes <private/> before delivering to the
 * recipient (the start tag kept byte for byte, the other children written
 * again) when the recipient's account has carbons enabled somewhere; with
 * no enabled resource there is no copy to suppress and the message goes
 * through untouched (the one-integer-test rule).
 *
 * Not done: messages stored offline are not copied to connected resources
 * that are not available.
 */
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "sm/iq.h"
#include "sm/sm_int.h"

#define NS_CARBONS "urn:xmpp:carbons:2"
#define NS_FORWARD "urn:xmpp:forward:0"
#define NS_HINTS "urn:xmpp:hints"
#define NS_MUC_USER "http://jabber.org/protocol/muc#user"
#define NS_CLIENT "jabber:client"

/* ---- enable / disable ------------------------------------------------------- */

static void carbons_set(struct sm_iq *q, bool on)
{
	struct sm_session *s = q->s;

	if (!q->set) {
		sm_iq_error(q, "bad-request");
		return;
	}
	if (s->carbons != on && s->user) {
		s->carbons = on;
		if (on)
			s->user->ncarbons++;
		else
			s->user->ncarbons--;
	}
	sm_iq_result(q, NULL, 0);
}

void sm_carbons_iq_enable(struct sm_iq *q)
{
	carbons_set(q, true);
}

void sm_carbons_iq_disable(struct sm_iq *q)
{
	carbons_set(q, false);
}

/* ---- copies --------------------------------------------------------------------- */

static void put(void *arg, const char *p, size_t n)
{
	sm_buf_add(arg, p, n);
}

/* Whether the message root (of type) is eligible for carbons (§6). */
static bool eligible(const struct xtree_node *root, struct wire_str type)
{
	bool chat = sm_ws_is(type, "chat");

	if (!chat && (sm_ws_is(type, "groupchat") || sm_ws_is(type, "headline") || sm_ws_is(type, "error")))
		return false;
	return strcmp(root->local, "message") == 0 &&
	       (chat || xtree_child(root, NS_CLIENT, "body")) &&
	       !xtree_child(root, NS_CARBONS, "private") && !xtree_child(root, NS_HINTS, "no-copy") &&
	       !xtree_child(root, NS_CARBONS, "received") && !xtree_child(root, NS_CARBONS, "sent") &&
	       !xtree_child(root, NS_MUC_USER, "x");
}

static struct xtree *parse(const struct wire_msg *m)
{
	return xtree_parse((const char *)m->u.stanza.raw.p, m->u.stanza.raw.len, XTREE_CTX_C2S, NULL,
			   NULL);
}

/* Length of the start tag at raw[0..len) ('>' included), 0 when none. */
static size_t start_tag_len(const char *raw, size_t len)
{
	char quote = 0;

	for (size_t i = 1; i < len; i++) {
		if (quote) {
			if (raw[i] == quote)
				quote = 0;
		} else if (raw[i] == '\'' || raw[i] == '"') {
			quote = raw[i];
		} else if (raw[i] == '>') {
			return i + 1;
		}
	}
	return 0;
}

/*
 * §9: deliver m to t without its <private/> children (root: m parsed).  The
 * start tag is kept byte for byte, the other children are written again
 * (each declaring its namespace).  False when it could not be built: the
 * caller forwards m unchanged.
 */
static bool deliver_stripped(struct sm *sm, struct sm_session *t, const struct wire_msg *m,
			     const struct xtree_node *root)
{
	const char *raw = (const char *)m->u.stanza.raw.p;
	size_t len = m->u.stanza.raw.len, tag = start_tag_len(raw, len), name = 1;
	struct sm_buf *b = &sm->scratch;

	if (tag < 3 || raw[tag - 2] == '/')
		return false;
	while (name < tag && !strchr(" \t\r\n/>", raw[name]))
		name++;
	sm_buf_clear(b);
	sm_buf_add(b, raw, tag);
	if (root->text_len)
		sm_buf_esc(b, root->text, root->text_len);
	for (const struct xtree_node *c = root->first; c; c = c->next)
		if (strcmp(c->ns, NS_CARBONS) != 0 || strcmp(c->local, "private") != 0)
			xtree_write(c, put, b);
	sm_buf_str(b, "</");
	sm_buf_add(b, raw + 1, name - 1);
	sm_buf_str(b, ">");
	if (b->err)
		return false;
	/* Tracked like every one-to-one message (sm.c): stored again if t ends
	 * before its edge wrote it. */
	sm_deliver_tracked(sm, t, WIRE_KIND_MESSAGE, m->u.stanza.type, m->u.stanza.to,
			   m->u.stanza.from, m->u.stanza.id, m->u.stanza.ns, sm_buf_data(b),
			   sm_buf_used(b), 0);
	return true;
}

/*
 * Send u's enabled sessions other than skip1 and skip2 the message of tree
 * t wrapped in <what/> (received or sent) and <forwarded/>.
 */
static void copy_to(struct sm *sm, struct sm_user *u, const struct xtree *t, struct wire_str type,
		    const char *what, const struct sm_session *skip1, const struct sm_session *skip2)
{
	struct sm_buf *b = &sm->scratch;

	for (struct sm_session *r = u->shead; r; r = r->unext) {
		if (!r->carbons || r == skip1 || r == skip2)
			continue;
		sm_buf_clear(b);
		sm_buf_str(b, "<message from='");
		sm_buf_esc(b, u->bare, u->bare_len);
		sm_buf_str(b, "' to='");
		sm_buf_esc(b, r->full, r->full_len);
		if (type.len) {
			sm_buf_str(b, "' type='");
			sm_buf_esc(b, (const char *)type.p, type.len);
		}
		sm_buf_fmt(b, "'><%s xmlns='" NS_CARBONS "'><forwarded xmlns='" NS_FORWARD "'>", what);
		xtree_write(xtree_root(t), put, b);
		sm_buf_fmt(b, "</forwarded></%s></message>", what);
		if (b->err) {
			log_warn("carbon copy too large to build", "jid=\"%s\"", r->full);
			return;
		}
		sm_deliver(sm, r, WIRE_KIND_MESSAGE, type, sm_ws(r->full), sm_ws(u->bare), sm_ws(""),
			   sm_ws(NS_CARBONS), sm_buf_data(b), sm_buf_used(b));
	}
}

bool sm_carbons_received_copy(struct sm *sm, struct sm_session *t, const struct wire_msg *m)
{
	bool others = t->user->ncarbons > (t->carbons ? 1u : 0u);
	bool priv = memmem(m->u.stanza.raw.p, m->u.stanza.raw.len, NS_CARBONS,
			   sizeof(NS_CARBONS) - 1) != NULL;
	const struct xtree_node *root;
	bool delivered = false;
	struct xtree *x;

	if (!others && !priv)
		return false;   /* nothing to copy to, nothing to strip */
	x = parse(m);
	if (!x)
		return false;
	root = xtree_root(x);
	if (xtree_child(root, NS_CARBONS, "private"))
		delivered = deliver_stripped(sm, t, m, root);
	else if (others && eligible(root, m->u.stanza.type))
		copy_to(sm, t->user, x, m->u.stanza.type, "received", t, NULL);
	xtree_free(x);
	return delivered;
}

void sm_carbons_sent_copy(struct sm *sm, struct sm_session *s, const struct wire_msg *m)
{
	struct sm_session *dest = NULL;
	struct xtree *x;

	if (s->user->ncarbons == (s->carbons ? 1u : 0u))
		return;
	x = parse(m);
	if (!x)
		return;
	if (!eligible(xtree_root(x), m->u.stanza.type)) {
		xtree_free(x);
		return;
	}
	/* To one of the user's own resources: that one has the original. */
	if (m->u.stanza.to.len && m->u.stanza.to.len <= JID_MAX) {
		struct jid_view v;
		char full[JID_MAX + 1];
		int n;

		if (jid_parse((const char *)m->u.stanza.to.p, m->u.stanza.to.len, &v) == 0 &&
		    (n = jid_canon(&v, true, full, sizeof(full))) > 0)
			dest = sm_session_find(sm, full, (size_t)n);
		if (dest && dest->user != s->user)
			dest = NULL;
	}
	copy_to(sm, s->user, x, m->u.stanza.type, "sent", s, dest);
	xtree_free(x);
}
