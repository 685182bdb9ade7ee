/*
 * pipe — a TLS session between a socket and its owner; see pipe.h.
 *
 * Every callback may end the owner's use of the pipe (tlsp_clear()), so
 * after each one the loop looks at the state again before touching the
 * session.
 */
#include "tls/pipe.h"

#include <stdio.h>

#include "core/log.h"

static const char *const state_names[] = { "handshake", "open", "shut", "closed" };

const char *tlsp_state_str(int s)
{
	return s >= 0 && s <= TLSP_CLOSED ? state_names[s] : "?";
}

void tlsp_set_state(struct tlsp *p, int s)
{
	if (s <= p->state || s > TLSP_CLOSED) {
		log_error("illegal TLS pipe transition", "from=%s to=%s", tlsp_state_str(p->state),
			  tlsp_state_str(s));
		s = TLSP_CLOSED;
	}
	p->state = (uint8_t)s;
}

void tlsp_init(struct tlsp *p, const struct tlsp_ops *ops, void *owner)
{
	*p = (struct tlsp){ .ops = ops, .io = { .out = ops->out, .owner = owner } };
}

static int started(struct tlsp *p, struct tls *t, bool client)
{
	if (!t)
		return -1;
	p->tls = t;
	p->client = client;
	p->state = TLSP_HANDSHAKE;
	return 0;
}

int tlsp_server(struct tlsp *p, const char *domain)
{
	return started(p, tls_new(domain, &p->io), false);
}

int tlsp_client(struct tlsp *p, const char *sni, int alpn)
{
	return started(p, tls_client_new(sni, alpn, &p->io), true);
}

int tlsp_client_verified(struct tlsp *p, const char *name)
{
	return started(p, tls_client_new_verified(name, &p->io), true);
}

int tlsp_server_s2s(struct tlsp *p, const char *domain)
{
	return started(p, tls_new_s2s(domain, &p->io), false);
}

int tlsp_client_s2s(struct tlsp *p, const char *local, const char *remote, bool direct)
{
	return started(p, tls_client_new_s2s(local, remote, direct, &p->io), true);
}

/* A fatal error: nothing may follow the alert already queued. */
static void fail(struct tlsp *p, int why)
{
	tlsp_set_state(p, TLSP_CLOSED);
	buf_reset(&p->pt);
	p->ops->end(p->io.owner, why);
}

void tlsp_input(struct tlsp *p, const uint8_t *data, size_t len, uint8_t *scratch)
{
	void *owner = p->io.owner;

	if (p->state == TLSP_CLOSED || !p->tls)
		return;
	p->io.in = data;
	p->io.in_len = len;
	if (p->state == TLSP_HANDSHAKE) {
		int r = p->client ? tls_connect(p->tls) : tls_handshake(p->tls);
		if (r == TLS_WANT)
			goto out;
		if (r != TLS_OK) {
			/* wolfSSL queued its alert through io.out: the owner sends it
			 * before the socket closes. */
			fail(p, TLSP_END_HANDSHAKE);
			goto out;
		}
		tlsp_set_state(p, TLSP_OPEN);
		p->ops->ready(owner);
	}
	while ((p->state == TLSP_OPEN || p->state == TLSP_SHUT) && p->ops->live(owner)) {
		int res;
		size_t n = tls_read(p->tls, scratch, TLS_READ_CAP, &res);
		if (n) {
			p->ops->plain(owner, scratch, n);
			continue;
		}
		if (res == TLS_WANT)
			break;
		if (res == TLS_CLOSED)
			p->ops->end(owner, TLSP_END_NOTIFY);
		else
			fail(p, TLSP_END_ERROR);
		break;
	}
out:
	p->io.in = NULL;
	p->io.in_len = 0;
}

int tlsp_write(struct tlsp *p, const void *data, size_t len, size_t limit)
{
	if (p->state >= TLSP_SHUT)
		return 0;   /* after our goodbye or an error nothing more goes out */
	return buf_append(&p->pt, data, len, limit);
}

int tlsp_flush(struct tlsp *p)
{
	int r;

	if (p->state != TLSP_OPEN || !buf_used(&p->pt))
		return 0;
	r = tls_write(p->tls, buf_data(&p->pt), buf_used(&p->pt));
	buf_reset(&p->pt);
	return r < 0 ? -1 : 0;
}

void tlsp_close_notify(struct tlsp *p)
{
	if (p->state != TLSP_OPEN)
		return;
	(void)tlsp_flush(p);
	if (p->state != TLSP_OPEN)
		return;   /* the flush ended the owner's use of the pipe */
	tls_close_notify(p->tls);
	tlsp_set_state(p, TLSP_SHUT);
}

void tlsp_clear(struct tlsp *p)
{
	tls_free(p->tls);
	p->tls = NULL;
	buf_reset(&p->pt);
	p->state = TLSP_CLOSED;
}

const char *tlsp_error_str(struct tlsp *p, char *buf, size_t len)
{
	if (!p->tls) {
		snprintf(buf, len, "no session");
		return buf;
	}
	return tls_error_str(p->tls, buf, len);
}
