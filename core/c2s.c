/*
 * c2s — the client-to-server role (RFC 6120): what is the same whatever the
 * backend.  It secures the stream (STARTTLS, or refuses to go on without
 * TLS where TLS is required) and hands the secured stream to the backend
 * chosen by configuration: `native` runs SASL and bind at the edge and
 * speaks the wire protocol; `upstream` relays to any XMPP server.
 */
#include "core/xmpp.h"

#include <stdio.h>
#include <string.h>

#include "core/log.h"
#include "core/worker.h"
#include "core/xprt.h"

/* Start the auth deadline at the first header (it counts from accept). */
static void auth_deadline(struct conn *c)
{
	if (c->state == CS_HEADER && !(c->flags & CF_AUTHED)) {
		c->due = c->accepted + c->w->cfg->timeouts.auth;
		conn_timer(c, c->due);
	}
}

static int c2s_header(struct conn *c, const struct xs_header *h)
{
	const struct config *cfg = c->w->cfg;

	auth_deadline(c);
	/* Not secure yet, and the backend may not see the stream before it is:
	 * offer STARTTLS and nothing else.  Upstream mode always requires TLS
	 * (the upstream stream is plaintext; the client's must not be). */
	if (!(c->flags & CF_TLS) && (cfg->require_tls || c->be == &backend_upstream)) {
		xmpp_answer(c, NULL);
		xmpp_outs(c, "<stream:features><starttls xmlns='" NS_TLS "'><required/></starttls></stream:features>");
		return xmpp_set_state(c, CS_NEGOTIATE) ? GO_ON : STOP_DISCARD;
	}
	return c->be->header(c, h);
}

static int on_starttls(struct conn *c)
{
	return xmpp_starttls(c, !(c->flags & (CF_TLS | CF_AUTHED | CF_WS)) && xprt_tls_server(c));
}

static int c2s_element(struct conn *c, const struct xs_stanza *s, const uint8_t *p, size_t n)
{
	if (xs_streq(&s->ns, NS_STREAMS) && xs_streq(&s->local, "error")) {
		log_info("client sent a stream error", "conn=%u cond=%.*s", c->idx,
			 (int)s->child_local.len, s->child_local.p);
		xmpp_end(c, WIRE_CLOSE_ERROR);
		return STOP_DISCARD;
	}
	if (xs_streq(&s->ns, NS_TLS) && xs_streq(&s->local, "starttls") && c->state == CS_NEGOTIATE)
		return on_starttls(c);
	if (!(c->flags & CF_TLS) && c->be == &backend_upstream) {
		/* Nothing reaches the upstream before TLS: SASL is refused
		 * (RFC 6120 §6.4.5 encryption-required), stanzas before auth are
		 * not-authorized, anything else unsupported. */
		if (xs_streq(&s->ns, NS_SASL)) {
			xmpp_outs(c, "<failure xmlns='" NS_SASL "'><encryption-required/></failure>");
			return GO_ON;
		}
		xmpp_error(c, xs_streq(&s->ns, NS_CLIENT) ? "not-authorized" : "unsupported-stanza-type", NULL);
		return STOP_DISCARD;
	}
	return c->be->element(c, s, p, n);
}

static void c2s_timeout(struct conn *c)
{
	if (c->be->timeout)
		c->be->timeout(c);
}

static void c2s_sent(struct conn *c)
{
	if (c->be->sent)
		c->be->sent(c);
}

static void c2s_ended(struct conn *c, int reason)
{
	if (c->be->ended)
		c->be->ended(c, reason);
}

static void c2s_free(struct conn *c)
{
	if (c->be->free)
		c->be->free(c);
}

const struct role_ops role_c2s = {
	.name = "c2s",
	.ns = NS_CLIENT,
	.header = c2s_header,
	.element = c2s_element,
	.timeout = c2s_timeout,
	.sent = c2s_sent,
	.ended = c2s_ended,
	.free = c2s_free,
};
