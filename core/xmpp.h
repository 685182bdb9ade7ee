/*
 * xmpp — the XMPP stream on a connection, shared by every role (RFC 6120
 * §4): framing and limits, the stream header checks, restarts, stream and
 * stanza errors, closing, timeouts, and the stream state machine.  What a
 * role does with a valid header and with the elements that follow is its
 * own (role_ops: c2s.c, be_upstream.c).
 *
 * Input: XMPP bytes from the top transport layer -> framer (boundaries,
 * limits, restricted XML) -> xmlstage (expat: well-formedness, routing
 * facts) -> the role.  Bytes that cannot be handled yet (an incomplete item,
 * a backend answer awaited, reads paused) wait in conn.in, in order:
 * clients pipeline.
 */
#ifndef XEDGE_XMPP_H
#define XEDGE_XMPP_H

#include "core/worker-t.h"
#include "parser/xmlstage.h"

#define NS_STREAMS "http://etherx.jabber.org/streams"
#define NS_CLIENT "jabber:client"
#define NS_FRAMING "urn:ietf:params:xml:ns:xmpp-framing"
#define NS_TLS "urn:ietf:params:xml:ns:xmpp-tls"
#define NS_SASL "urn:ietf:params:xml:ns:xmpp-sasl"
#define NS_BIND "urn:ietf:params:xml:ns:xmpp-bind"
#define NS_SESSION "urn:ietf:params:xml:ns:xmpp-session"
#define NS_STANZAS "urn:ietf:params:xml:ns:xmpp-stanzas"
#define NS_STREAM_ERRORS "urn:ietf:params:xml:ns:xmpp-streams"

/* The stream error conditions of RFC 6120 §4.9.3, in its order (metrics
 * labels); xmpp_condition_index() maps a name to its index (an unknown one
 * to undefined-condition's). */
extern const char *const xmpp_conditions[WSTAT_CONDS];
int xmpp_condition_index(const char *cond);

extern const struct role_ops role_c2s;           /* c2s.c */
extern const struct role_ops role_upstream;      /* be_upstream.c: our stream to the upstream */
extern const struct backend_ops backend_native;  /* be_native.c */
extern const struct backend_ops backend_upstream;/* be_upstream.c */

/* The one place the stream state changes.  Illegal transitions are logged
 * and refused (false); the caller then fails the stream. */
bool xmpp_set_state(struct conn *c, int s);

/* XMPP output, one top-level element (or open/close) per call. */
void xmpp_out(struct conn *c, const void *data, size_t len);
void xmpp_outs(struct conn *c, const char *s);

/* Our stream header with the given attributes (escaped by the caller):
 * <stream:stream ...> on TCP, <open .../> on WebSocket (RFC 7395). */
void xmpp_open(struct conn *c, const char *attrs);

/* Answer an inbound stream: our header with this id (escaped here; NULL:
 * a fresh random one) from the served domain. */
void xmpp_answer(struct conn *c, const char *id);

/* Close our side: </stream:stream> (or <close/>), the transport's goodbye,
 * then the socket once flushed.  reason goes to the role (wire_reason). */
void xmpp_end(struct conn *c, int reason);

/* A stream error (RFC 6120 §4.9): header first if none went out, the
 * error, then xmpp_end.  text may be NULL. */
void xmpp_error(struct conn *c, const char *cond, const char *text);
/* <see-other-host>host</see-other-host> (RFC 6120 §4.9.3.19), and the stream closes. */
void xmpp_redirect(struct conn *c, const char *host);
/* The same with an application-specific condition element after cond's
 * (RFC 6120 §4.9.4), app being its markup (ours, already escaped). */
void xmpp_error_app(struct conn *c, const char *cond, const char *app);
/* Draining (drain: in the config): send the client elsewhere — see-other-host
 * naming drain.redirect, a WebSocket <close see-other-uri/> with
 * drain.redirect_uri — or tell it system-shutdown; the stream then ends. */
void xmpp_goodbye(struct conn *c);

/* The transport failed before or outside the XML stream: close without
 * XML, after whatever the transport itself queued (a TLS alert). */
void xmpp_abort(struct conn *c);

/* The peer closed (EOF, close_notify, WebSocket close). */
void xmpp_eof(struct conn *c);

/* The top transport layer is ready: the stream header may come. */
void xmpp_transport_ready(struct conn *c);

/* Input now waits for the backend's answer (CF_WAIT_SM), at most `seconds`;
 * then role->timeout runs. */
void xmpp_wait_backend(struct conn *c, uint32_t seconds);

/* Handle input that waited (backend answer, pause). */
void xmpp_resume(struct conn *c);

void xmpp_timeout(struct conn *c);    /* the connection's timer fired */
void xmpp_free(struct conn *c);       /* just before the connection is freed */

/* Restart the stream (RFC 6120 §4.3.3): the next item is a header. */
void xmpp_restart(struct conn *c);

/* A stanza error to the peer for s (RFC 6120 §8.3); never for an error. */
void xmpp_stanza_error(struct conn *c, const struct xs_stanza *s, const char *etype, const char *cond,
		       const char *to);
void xmpp_iq_result(struct conn *c, const struct xs_stanza *s, const char *payload);

/* Answer <starttls/> on an inbound stream: <proceed/> when the caller
 * pushed a server TLS layer (pushed), else <failure/> and the end of the
 * stream.  Returns STOP_DISCARD: what follows <starttls/> is dropped. */
int xmpp_starttls(struct conn *c, bool pushed);

/* The raw value of attribute `name` in the start tag p[0..n), or NULL when
 * absent or holding a reference (callers read token-like values: mechanisms,
 * counters, ids).  The tag was accepted by expat, so quotes are balanced;
 * quoted values are skipped whole, so a value never poses as an attribute. */
const char *xmpp_attr(const char *p, size_t n, const char *name, size_t *vlen);

/* s[0..n) escaped for XML, NUL-terminated, malloc'd (error paths only). */
char *xmpp_esc_dup(const char *s, size_t n);

/* The configured domain (config-owned) that s[0..n) names, case-insensitively
 * and ignoring a final dot: one of `domains`, or with components one of
 * theirs too; NULL when none. */
const char *xmpp_served_domain(const struct config *cfg, const char *s, size_t n, bool components);

/* The served domain the stream is for (the first one until known). */
const char *xmpp_domain(const struct conn *c);

static inline bool xs_streq(const struct xs_str *s, const char *lit)
{
	size_t n = __builtin_strlen(lit);
	return s->len == n && __builtin_memcmp(s->p, lit, n) == 0;
}

#endif
