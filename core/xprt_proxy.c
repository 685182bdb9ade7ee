/*
 * xprt_proxy — the PROXY protocol header (v1 or v2) as the lowest transport
 * layer of a listener with `proxy_protocol: true`.
 *
 * The header must come first, within PROXY_MAX_HDR bytes and before the
 * handshake timeout; the address it carries replaces the socket's peer (the
 * balancer) for per-IP limits, logs and the session server.  A malformed
 * header closes the connection and nothing else: there is no stream yet to
 * send an error on.  Once the header is consumed the layer removes itself,
 * so the rest of the connection pays nothing for it.
 *
 * State: waiting (this layer present) -> done (popped).
 */
#include "core/xprt.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/worker.h"
#include "core/xmpp.h"
#include "parser/proxy.h"

struct proxy_wait {
	uint16_t len;                 /* header bytes held so far */
	uint8_t buf[PROXY_MAX_HDR];
};

static void take_addr(struct conn *c, const struct proxy_hdr *h)
{
	const struct sockaddr_storage *src = &h->src, *dst = &h->dst;

	memset(c->ip, 0, sizeof(c->ip));
	memset(c->local_ip, 0, sizeof(c->local_ip));
	if (src->ss_family == AF_INET) {
		const struct sockaddr_in *s = (const struct sockaddr_in *)src, *d = (const struct sockaddr_in *)dst;
		c->ip[10] = c->ip[11] = c->local_ip[10] = c->local_ip[11] = 0xff;
		memcpy(c->ip + 12, &s->sin_addr, 4);
		memcpy(c->local_ip + 12, &d->sin_addr, 4);
		inet_ntop(AF_INET, &s->sin_addr, c->peer, sizeof(c->peer));
	} else {
		const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)src, *d = (const struct sockaddr_in6 *)dst;
		memcpy(c->ip, &s->sin6_addr, 16);
		memcpy(c->local_ip, &d->sin6_addr, 16);
		inet_ntop(AF_INET6, &s->sin6_addr, c->peer, sizeof(c->peer));
	}
	c->peer_port = h->src_port;
	c->local_port = h->dst_port;
	c->flags |= CF_PROXIED;
}

static void proxy_input(struct conn *c, int layer, const uint8_t *data, size_t len)
{
	struct proxy_wait *pw = c->xs_state[layer];
	struct proxy_hdr h;
	size_t take, used;
	long r;

	if (!pw && !(pw = c->xs_state[layer] = calloc(1, sizeof(*pw)))) {
		c->flags |= CF_PEER_GONE;
		xmpp_abort(c);
		return;
	}
	take = len < sizeof(pw->buf) - pw->len ? len : sizeof(pw->buf) - pw->len;
	memcpy(pw->buf + pw->len, data, take);
	r = proxy_parse(pw->buf, pw->len + take, &h);
	if (r == 0 && pw->len + take < sizeof(pw->buf)) {
		pw->len = (uint16_t)(pw->len + take);
		return;
	}
	if (r <= 0) {
		log_info("connection closed: bad PROXY header", "conn=%u balancer=%s why=\"%s\"", c->idx, c->peer,
			 proxy_strerror(r ? r : -PROXY_ETOOLONG));
		c->flags |= CF_PEER_GONE;
		xmpp_abort(c);
		return;
	}
	used = (size_t)r - pw->len;   /* the header ends inside this read */
	if (h.has_addr)
		take_addr(c, &h);
	log_debug("PROXY header", "conn=%u client=%s version=%u", c->idx, c->peer, h.version);
	if (!conn_admit(c))
		return;
	xprt_pop(c, layer);   /* frees pw; the layer above (if any) is now `layer` */
	if (layer == c->nxp)
		xmpp_transport_ready(c);
	if (len > used && c->state != CS_CLOSING) {
		if (layer < c->nxp)
			c->xp[layer]->input(c, layer, data + used, len - used);
		else
			xmpp_input(c, data + used, len - used);
	}
}

static void proxy_write(struct conn *c, int layer, const void *data, size_t len)
{
	xprt_down(c, layer, data, len);
}

static void proxy_free(struct conn *c, int layer)
{
	free(c->xs_state[layer]);
}

const struct xprt_ops xprt_proxy = {
	.name = "proxy",
	.input = proxy_input,
	.write = proxy_write,
	.free = proxy_free,
};
