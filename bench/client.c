/*
 * client — XMPP on one simulated client (RFC 6120 / 6121): TLS (Direct or
 * STARTTLS), stream headers and features, SASL (SCRAM-SHA-256, SCRAM-SHA-1,
 * PLAIN), resource binding with a server-generated resource, initial
 * presence, roster get; then chat messages, keepalives and the goodbye.
 *
 * Input path: wire bytes -> (the TLS pipe, tls/pipe.h) -> plaintext -> framer ->
 * xmlstage (the project's own parser, one per thread) -> the handler for the
 * client's state.  Bytes of an incomplete item wait in bclient.in.
 *
 * Every transition goes through set_state(), which also (re)arms the step
 * timer: each step waits --timeout at most.  A client is counted once:
 * logged in (roster received; in the connect scenario: stream features
 * received) or failed with a cause; a logged-in client that loses its
 * session is counted as dropped with a cause.
 *
 * Chat messages carry "b<run>.<sender>.<k>.<seq>.<send-ns>" in their id
 * (servers keep stanza ids) and the same numbers in the body; <run> tells
 * this run's messages from offline messages a server stores from an earlier
 * run and delivers at login (counted as unexpected, never as received): k is the receiver's
 * position in the sender's peer list and seq counts per (sender, k) pair, so
 * the receiver checks order and duplicates with the pair's 64-message
 * window (bc_pair) and measures latency against the send time.
 *
 * With --remote a client's server (bench.h: bc_side) gives its domain, its
 * stream header and its TLS server name; a message is addressed in the
 * peer's domain, and one whose sender and receiver are on different servers
 * is also counted per direction (x_sent, x_recv, h_cross).
 *
 * WebSocket (ws, wss; wsconn.c) sits between this module and TLS/TCP: after
 * the connect (wss: the TLS handshake) bw_begin() sends the upgrade, and
 * bc_ws_ready() opens the stream once the 101 is checked; from then on out()
 * hands whole elements to bw_write() (one text frame each), the stream
 * header is RFC 7395's <open/> (again after SASL: no restart below), the
 * goodbye <close/>, and the layer hands each message up through
 * bc_xmpp_input() with <open/> and <close/> turned into the stream header and
 * its end tag, so the framer and the handlers here run unchanged.
 *
 * The muc scenario (muc.c) adds the state BC_JOIN after the login, and takes
 * the stanzas of an occupant (bm_stanza) before the chat handlers here.
 *
 * A scenario file (steps.c) uses the same connection, TLS, stream and SASL
 * code and takes over at the stop points: the stream's features read (after
 * STARTTLS; bs_features), every stanza once the stream is open (bs_stanza,
 * after stream errors, XEP-0198 acks and server iq requests), a failure
 * (bs_failed counts it) and the connection's end (bs_released).
 *
 * XEP-0198 in a scenario file (bench/smq.h holds the state): from our
 * <enable/> every stanza written through out() is counted, and copied while
 * resumption is asked for or granted; an <r/> follows every SMQ_R_EVERY
 * stanzas once <enabled/> came, and the server's <a/> drops the copies it
 * acknowledges.  A resume step closes the connection abruptly with
 * BF_KEEP_SM set, so the state (smq, and sm_h, the stanzas we received)
 * survives the release; the new connection goes through the same connect
 * path as any (bt_connect, the transport's handshake, the stream, SASL), then
 * <resume h previd/> (BC_RESUME); <resumed h/> drops what the server
 * handled and sends the rest again, uncounted (they keep their numbers).
 */
#include "bench/bench.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/scram_client.h"
#include "bench/smq.h"
#include "parser/xmlstage.h"
#include "parser/xmltag.h"
#include "tls/crypto.h"

#define NS_STREAMS "http://etherx.jabber.org/streams"
#define NS_TLS "urn:ietf:params:xml:ns:xmpp-tls"
#define NS_SASL "urn:ietf:params:xml:ns:xmpp-sasl"
#define NS_BIND "urn:ietf:params:xml:ns:xmpp-bind"
#define NS_SM "urn:xmpp:sm:3"
#define NS_FRAMING "urn:ietf:params:xml:ns:xmpp-framing"

#define IN_LIMIT ((1u << 20) + 65536)  /* one largest item plus pipelined input */
#define FAIL_LOG_MAX 10                /* failures printed per thread with -v */

enum { GO_ON = 0, STOP };

static const struct framer_limits lim = {
	.max_stanza = 1u << 20, .max_depth = 64, .max_attrs = 128, .max_name = 1024,
	.max_value = 1u << 16,
};

static const char *const state_names[] = {
	"new", "connect", "tls", "ws", "features", "starttls", "sasl", "bind", "roster", "join", "online",
	"resume", "closing", "done"
};

static char header[2][512];     /* our stream header, one per server (bc_side) */
static size_t header_len[2];
static char ws_open[2][512];    /* its WebSocket form: RFC 7395's <open/> */
static size_t ws_open_len[2];
static const char *mech_name;
static _Thread_local char *msgbuf;
static _Thread_local size_t msgcap;
static _Thread_local unsigned fails_logged;

const char *bc_state_str(int s)
{
	return s >= 0 && s <= BC_DONE ? state_names[s] : "?";
}

int bc_init(void)
{
	const struct bench_opts *o = &B.o;

	for (int i = 0; i < 2; i++) {
		const char *d = i ? o->remote_domain : o->domain;
		int n;
		if (!d)
			continue;
		n = snprintf(header[i], sizeof(header[i]),
			     "<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
			     "xmlns:stream='" NS_STREAMS "' to='%s' version='1.0' xml:lang='en'>", d);
		if (n < 0 || (size_t)n >= sizeof(header[i]))
			return -1;
		header_len[i] = (size_t)n;
		n = snprintf(ws_open[i], sizeof(ws_open[i]),
			     "<open xmlns='" NS_FRAMING "' to='%s' version='1.0' xml:lang='en'/>", d);
		if (n < 0 || (size_t)n >= sizeof(ws_open[i]))
			return -1;
		ws_open_len[i] = (size_t)n;
	}
	mech_name = bc_mech_name(o->mech);
	return 0;
}

const char *bc_mech_name(int mech)
{
	return mech == MECH_PLAIN ? "PLAIN" : mech == MECH_SCRAM_SHA1 ? "SCRAM-SHA-1" : "SCRAM-SHA-256";
}

void bc_thread_exit(void)
{
	free(msgbuf);
	msgbuf = NULL;
	msgcap = 0;
}

int bc_user(const struct bclient *c, char *out, size_t cap)
{
	uint32_t a = B.o.scenario == SC_FILE ? atomic_load_explicit(&c->acct, memory_order_relaxed) :
		     c->idx;

	return snprintf(out, cap, "%s%u", B.o.prefix, B.o.offset + a);
}

static bool streq(const struct xs_str *s, const char *lit)
{
	return s->len == strlen(lit) && memcmp(s->p, lit, s->len) == 0;
}

static uint64_t rnd(struct bthread *t)
{
	/* xorshift64*: per-thread, good enough to pick peers. */
	t->rng ^= t->rng >> 12;
	t->rng ^= t->rng << 25;
	t->rng ^= t->rng >> 27;
	return t->rng * 2685821657736338717ull;
}

/* ---- state and accounting ----------------------------------------------- */

static void set_online(struct bthread *t, struct bclient *c, bool on)
{
	if (!on && (c->flags & BF_SENDER)) {
		c->flags &= ~BF_SENDER;
		t->nsenders--;
	}
	if ((bool)atomic_load_explicit(&c->online, memory_order_relaxed) == on)
		return;
	/* release: a scenario's acct, sess and gen, written before, are seen with it */
	atomic_store_explicit(&c->online, on, memory_order_release);
	if (on)
		atomic_fetch_add_explicit(&t->g_online, 1, memory_order_relaxed);
	else
		atomic_fetch_sub_explicit(&t->g_online, 1, memory_order_relaxed);
}

static void set_state(struct bclient *c, int s)
{
	c->state = (uint8_t)s;
	if ((s >= BC_CONNECT && s <= BC_JOIN) || s == BC_CLOSING)
		bt_timer(c, bench_now() + (uint64_t)(B.o.timeout * 1e9));
	else
		bt_timer(c, 0);
}

static void resolved(struct bthread *t, struct bclient *c)
{
	if (c->flags & BF_INPROGRESS) {
		c->flags &= ~BF_INPROGRESS;
		atomic_fetch_sub_explicit(&t->g_inprogress, 1, memory_order_relaxed);
	}
}

void bc_set_state(struct bclient *c, int s)
{
	set_state(c, s);
}

void bc_set_online(struct bthread *t, struct bclient *c, bool on)
{
	set_online(t, c, on);
}

void bc_fail(struct bthread *t, struct bclient *c, const char *cause, const char *detail)
{
	char name[48];

	if (c->flags & BF_CLOSED)
		return;
	if (B.o.scenario == SC_MUC)
		bm_failed(c);
	if (B.o.scenario == SC_FILE) {
		bs_failed(t, c, cause);
	} else if (c->state == BC_JOIN) {
		/* muc: logged in (counted), but never an occupant */
		snprintf(name, sizeof(name), "join:%s", cause);
		bench_stats_cause(&t->local, name, 1);
		t->local.join_failed++;
	} else if (c->state == BC_ONLINE) {
		snprintf(name, sizeof(name), "dropped:%s", cause);
		bench_stats_cause(&t->local, name, 1);
		t->local.dropped++;
	} else if (!(c->flags & BF_COUNTED) && c->state != BC_CLOSING) {
		c->flags |= BF_COUNTED | BF_FAILED;
		bench_stats_cause(&t->local, cause, 1);
		t->local.failed++;
	}
	if (B.o.verbose > 1 || (B.o.verbose && fails_logged < FAIL_LOG_MAX)) {
		char user[64];
		bc_user(c, user, sizeof(user));
		fails_logged++;
		fprintf(stderr, "\nxedge-bench: %s: %s in state %s%s%s\n", user, cause,
			bc_state_str(c->state), detail ? ": " : "", detail ? detail : "");
	}
	resolved(t, c);
	set_online(t, c, false);
	bt_close(c);
}

void bc_released(struct bthread *t, struct bclient *c)
{
	resolved(t, c);
	set_online(t, c, false);
	tlsp_clear(&c->tp);
	bw_free(c);
	free(c->scram);
	c->scram = NULL;
	buf_reset(&c->in);
	buf_reset(&c->out);
	buf_reset(&c->sending);
	if (!(c->flags & BF_KEEP_SM)) {
		smq_free(c->smq);
		c->smq = NULL;
	}
	c->state = BC_DONE;
	t->local.closed++;
	atomic_fetch_sub_explicit(&t->g_live, 1, memory_order_relaxed);
	if (B.o.scenario == SC_FILE)
		bs_released(t, c);
}

/* ---- output ----------------------------------------------------------------- */

/* Queue bytes under the XMPP layer: with TLS they are encrypted at flush
 * time, so what one loop iteration writes leaves as one record and one send. */
void bc_lower_out(struct bclient *c, const void *data, size_t len)
{
	if (c->flags & (BF_CLOSED | BF_PEER_GONE))
		return;
	if (c->flags & BF_TLS) {
		if (tlsp_write(&c->tp, data, len, IN_LIMIT * 16) < 0) {
			bc_fail(bc_thread(c), c, "output-queue-limit", NULL);
			return;
		}
		bt_flush_later(c);
	} else {
		bt_send(c, data, len);
	}
}

/* Queue one XMPP element (or the stream's header and end) as the transport
 * carries it: a WebSocket frame, or plaintext under TLS/TCP. */
static void out_elem(struct bclient *c, const void *data, size_t len)
{
	if (c->flags & BF_WS)
		bw_write(c, data, len);
	else
		bc_lower_out(c, data, len);
}

static const char sm_r[] = "<r xmlns='" NS_SM "'/>";

/* Queue XMPP plaintext (one element or whitespace per call once XEP-0198
 * counts).  A stanza is counted (and copied) by the XEP-0198 state, when
 * there is one. */
static void out(struct bclient *c, const void *data, size_t len)
{
	if (c->flags & (BF_CLOSED | BF_PEER_GONE))
		return;
	if (c->smq && smq_is_stanza(data, len) && smq_sent(c->smq, data, len) < 0) {
		bc_fail(bc_thread(c), c, "sm:queue-limit", NULL);
		return;
	}
	out_elem(c, data, len);
	if (c->smq && (c->flags & BF_SM) && c->smq->since_r >= SMQ_R_EVERY) {
		c->smq->since_r = 0;
		out_elem(c, sm_r, sizeof(sm_r) - 1);
	}
}

void bc_out(struct bclient *c, const void *data, size_t len)
{
	out(c, data, len);
}

static void outs(struct bclient *c, const char *s)
{
	out(c, s, strlen(s));
}

void bc_flush(struct bthread *t, struct bclient *c)
{
	if (!(c->flags & BF_TLS) || (c->flags & BF_PEER_GONE))
		return;
	if (tlsp_flush(&c->tp) < 0)
		bc_fail(t, c, "tls-write", NULL);
}

static void send_header(struct bthread *t, struct bclient *c)
{
	unsigned side = bc_side(c->idx);

	framer_reset(&c->fr);
	if (c->flags & BF_WS)
		out(c, ws_open[side], ws_open_len[side]);
	else
		out(c, header[side], header_len[side]);
	set_state(c, BC_FEATURES);
}

/* ---- connection and TLS ---------------------------------------------------- */

void bc_start(struct bthread *t, struct bclient *c)
{
	set_state(c, BC_CONNECT);
}

/* The TLS pipe's callbacks (tls/pipe.h); the owner is the client. */

static int tls_out(void *owner, const uint8_t *data, size_t len)
{
	bt_send(owner, data, len);
	return 0;
}

static void tls_ready(void *owner)
{
	struct bclient *c = owner;
	struct bthread *t = bc_thread(c);
	uint64_t now = bench_now();

	c->flags |= BF_TLS;
	hist_record(&t->local.h_tls, now - c->t_start);
	if (c->tmode == TLS_MODE_WSS) {
		bw_begin(t, c);
		return;
	}
	c->t_stream = now;
	send_header(t, c);
}

static void plain_input(struct bthread *t, struct bclient *c, const uint8_t *data, size_t len);

static void tls_plain(void *owner, const uint8_t *p, size_t n)
{
	struct bclient *c = owner;

	if (c->ws)
		bw_input(bc_thread(c), c, p, n);
	else
		plain_input(bc_thread(c), c, p, n);
}

static void tls_end(void *owner, int why)
{
	struct bclient *c = owner;
	struct bthread *t = bc_thread(c);
	char err[96];

	if (why == TLSP_END_NOTIFY) {
		bc_eof(t, c, 0);
		return;
	}
	bc_fail(t, c, why == TLSP_END_HANDSHAKE ? "tls-failure" : "tls-error",
		tlsp_error_str(&c->tp, err, sizeof(err)));
}

static bool tls_live(void *owner)
{
	const struct bclient *c = owner;

	return !(c->flags & BF_CLOSED);
}

static const struct tlsp_ops pipe_ops = {
	.out = tls_out,
	.ready = tls_ready,
	.plain = tls_plain,
	.end = tls_end,
	.live = tls_live,
};

static void tls_begin(struct bthread *t, struct bclient *c)
{
	const char *sni = bc_side(c->idx) ? B.o.remote_domain : B.o.sni ? B.o.sni : B.o.domain;

	tlsp_init(&c->tp, &pipe_ops, c);
	/* ALPN xmpp-client for Direct TLS only: wss speaks HTTP first */
	if (tlsp_client(&c->tp, sni, c->tmode == TLS_MODE_DIRECT) < 0) {
		bc_fail(t, c, "tls-setup", NULL);
		return;
	}
	set_state(c, BC_TLS);
	tlsp_input(&c->tp, NULL, 0, t->scratch);   /* the ClientHello */
}

void bc_connected(struct bthread *t, struct bclient *c, int res)
{
	if (c->tmode == TLS_MODE_DIRECT || c->tmode == TLS_MODE_WSS) {
		tls_begin(t, c);
		return;
	}
	if (c->tmode == TLS_MODE_WS) {
		bw_begin(t, c);
		return;
	}
	c->t_stream = bench_now();
	send_header(t, c);
}

void bc_ws_ready(struct bthread *t, struct bclient *c)
{
	uint64_t now = bench_now();

	c->flags |= BF_WS;
	hist_record(&t->local.h_ws, now - c->t_start);
	c->t_stream = now;
	send_header(t, c);
}

/* ---- SASL -------------------------------------------------------------------------- */

static void sasl_send(struct bclient *c, const char *elem, const char *attrs, const void *data,
		      size_t len)
{
	char b64[2 * SCRAM_MAX_MSG];
	char xml[2 * SCRAM_MAX_MSG + 256];
	long n = len ? crypto_b64_encode(data, len, b64, sizeof(b64)) : 0;
	int m;

	if (n < 0)
		return;
	m = snprintf(xml, sizeof(xml), "<%s xmlns='" NS_SASL "'%s>%.*s</%s>", elem, attrs,
		     (int)n, b64, elem);
	if (m > 0 && (size_t)m < sizeof(xml))
		out(c, xml, (size_t)m);
}

void bc_sasl_begin(struct bthread *t, struct bclient *c, int mech)
{
	char user[256], msg[SCRAM_MAX_MSG], attrs[64];
	int n;

	bc_user(c, user, sizeof(user));
	snprintf(attrs, sizeof(attrs), " mechanism='%s'", bc_mech_name(mech));
	if (mech == MECH_PLAIN) {
		n = snprintf(msg, sizeof(msg), "%c%s%c%s", 0, user, 0, B.o.password);
		if (n > 0 && (size_t)n < sizeof(msg))
			sasl_send(c, "auth", attrs, msg, (size_t)n);
	} else {
		uint8_t raw[18];
		char nonce[32];
		c->scram = malloc(sizeof(*c->scram));
		if (!c->scram || crypto_random(raw, sizeof(raw)) < 0 ||
		    crypto_b64_encode(raw, sizeof(raw), nonce, sizeof(nonce)) < 0) {
			bc_fail(t, c, "sasl-setup", NULL);
			return;
		}
		n = scram_client_first(c->scram, mech == MECH_SCRAM_SHA1 ? CRYPTO_SHA1 : CRYPTO_SHA256,
				       user, nonce, msg, sizeof(msg));
		if (n < 0) {
			bc_fail(t, c, "sasl-setup", scram_error_str(n));
			return;
		}
		sasl_send(c, "auth", attrs, msg, (size_t)n);
	}
	set_state(c, BC_SASL);
}

/* Base64 text of a SASL element, decoded; -1 when malformed. */
static long sasl_text(const struct xs_stanza *s, uint8_t *out_, size_t cap)
{
	const char *p = s->text.p;
	size_t n = s->text.len;

	while (n && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
		p++, n--;
	while (n && (p[n - 1] == ' ' || p[n - 1] == '\n' || p[n - 1] == '\r' || p[n - 1] == '\t'))
		n--;
	if (n == 0 || (n == 1 && *p == '='))
		return 0;
	return crypto_b64_decode(p, n, out_, cap);
}

static int on_sasl(struct bthread *t, struct bclient *c, const struct xs_stanza *s)
{
	uint8_t data[SCRAM_MAX_MSG];
	char msg[SCRAM_MAX_MSG], cause[64];
	long n;
	int r;

	if (!streq(&s->ns, NS_SASL)) {
		t->local.unexpected++;
		return GO_ON;
	}
	if (streq(&s->local, "failure")) {
		snprintf(cause, sizeof(cause), "sasl:%s", s->child_local.len ? s->child_local.p : "failure");
		bc_fail(t, c, cause, NULL);
		return STOP;
	}
	n = sasl_text(s, data, sizeof(data) - 1);
	if (n < 0) {
		bc_fail(t, c, "sasl:bad-base64-from-server", NULL);
		return STOP;
	}
	if (streq(&s->local, "challenge") && c->scram && c->sasl_step == 0) {
		struct scram_keys k, *known = NULL;
		r = scram_client_parse_first(c->scram, (const char *)data, (size_t)n);
		if (r == 0) {
			if (B.o.scram_cache && keycache_get(c->scram->hash, c->scram->salt,
							    c->scram->salt_len, c->scram->iter, &k))
				known = &k;
			r = scram_client_final(c->scram, B.o.password, (const char *)data, (size_t)n,
					       known, known ? NULL : &k, msg, sizeof(msg));
			if (r > 0 && !known && B.o.scram_cache)
				keycache_put(c->scram->hash, c->scram->salt, c->scram->salt_len,
					     c->scram->iter, &k);
			explicit_bzero(&k, sizeof(k));
		}
		if (r < 0) {
			bc_fail(t, c, "sasl:bad-server-first", scram_error_str(r));
			return STOP;
		}
		sasl_send(c, "response", "", msg, (size_t)r);
		c->sasl_step = 1;
		return GO_ON;
	}
	if (c->scram && c->sasl_step == 1 && n > 0 &&
	    (streq(&s->local, "challenge") || streq(&s->local, "success"))) {
		/* server-final: in <success/>, or (older servers) a last challenge */
		r = scram_client_verify(c->scram, (const char *)data, (size_t)n);
		if (r < 0) {
			bc_fail(t, c, "sasl:server-final", scram_error_str(r));
			return STOP;
		}
		c->sasl_step = 2;
		if (streq(&s->local, "challenge")) {
			sasl_send(c, "response", "", NULL, 0);
			return GO_ON;
		}
	}
	if (streq(&s->local, "success")) {
		if (c->scram && c->sasl_step != 2) {
			/* Success without a verified ServerSignature: the server did not
			 * prove it knows the keys (RFC 5802 §5). */
			bc_fail(t, c, "sasl:success-without-server-signature", NULL);
			return STOP;
		}
		free(c->scram);
		c->scram = NULL;
		c->flags |= BF_AUTHED;
		send_header(t, c);   /* the restart: what follows is the new stream */
		return GO_ON;
	}
	bc_fail(t, c, "sasl:unexpected-element", s->local.p);
	return STOP;
}

/* ---- features, bind, roster ---------------------------------------------------- */

static bool has(const uint8_t *p, size_t len, const char *needle)
{
	return memmem(p, len, needle, strlen(needle)) != NULL;
}

void bc_logged_in(struct bthread *t, struct bclient *c)
{
	uint64_t now = bench_now();

	c->flags |= BF_COUNTED;
	resolved(t, c);
	hist_record(&t->local.h_login, now - c->t_start);
	t->local.logged_in++;
	if (now > t->local.last_login_ns)
		t->local.last_login_ns = now;
	set_state(c, BC_ONLINE);
	set_online(t, c, true);
	if (B.o.keepalive > 0)
		bt_keepalive(c, now + (uint64_t)(B.o.keepalive * 1e9));
	if (B.o.scenario == SC_LOGIN && B.o.hold <= 0)
		bc_goodbye(t, c);
}

static int on_features(struct bthread *t, struct bclient *c, const uint8_t *p, size_t len,
		       const struct xs_stanza *s)
{
	char needle[64];

	if (!streq(&s->local, "features") || !streq(&s->ns, NS_STREAMS)) {
		t->local.unexpected++;
		return GO_ON;
	}
	if (c->tmode == TLS_MODE_STARTTLS && !(c->flags & BF_TLS)) {
		if (!has(p, len, NS_TLS)) {
			bc_fail(t, c, "starttls-not-offered", NULL);
			return STOP;
		}
		outs(c, "<starttls xmlns='" NS_TLS "'/>");
		set_state(c, BC_STARTTLS);
		return GO_ON;
	}
	if (B.o.scenario == SC_FILE)
		return bs_features(t, c, p, len) < 0 ? STOP : GO_ON;
	if (B.o.scenario == SC_CONNECT) {
		bc_logged_in(t, c);
		return GO_ON;
	}
	if (!(c->flags & BF_AUTHED)) {
		snprintf(needle, sizeof(needle), ">%s<", mech_name);
		if (!has(p, len, needle)) {
			snprintf(needle, sizeof(needle), "mechanism-not-offered:%s", mech_name);
			bc_fail(t, c, needle, NULL);
			return STOP;
		}
		bc_sasl_begin(t, c, B.o.mech);
		return GO_ON;
	}
	if (!has(p, len, NS_BIND)) {
		bc_fail(t, c, "bind-not-offered", NULL);
		return STOP;
	}
	outs(c, "<iq type='set' id='b1'><bind xmlns='" NS_BIND "'/></iq>");
	set_state(c, BC_BIND);
	return GO_ON;
}

/* Answer an iq get/set from the server: ping gets a result, the rest
 * service-unavailable (RFC 6120 §8.2.3: every request gets a response). */
void bc_iq_reply(struct bclient *c, const struct xs_stanza *s)
{
	char id[256], to[512], xml[1024];
	size_t il = xml_escape(s->id.p, s->id.len, id, sizeof(id) - 1);
	size_t tl = xml_escape(s->from.p, s->from.len, to, sizeof(to) - 1);
	int n;

	if (il >= sizeof(id) || tl >= sizeof(to))
		return;
	id[il] = to[tl] = '\0';
	if (streq(&s->child_ns, "urn:xmpp:ping") && streq(&s->type, "get"))
		n = snprintf(xml, sizeof(xml), "<iq type='result' id='%s'%s%s%s/>", id,
			     tl ? " to='" : "", to, tl ? "'" : "");
	else
		n = snprintf(xml, sizeof(xml),
			     "<iq type='error' id='%s'%s%s%s><error type='cancel'><service-unavailable "
			     "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>",
			     id, tl ? " to='" : "", to, tl ? "'" : "");
	if (n > 0 && (size_t)n < sizeof(xml))
		out(c, xml, (size_t)n);
}

/* ---- chat ---------------------------------------------------------------------- */

void bc_chat_setup(struct bthread *t, struct bclient *c)
{
	const struct bench_opts *o = &B.o;
	unsigned want = o->peers, tries = 0, n = 0;
	/* Candidates: everyone, or with --cross the other server's clients [lo, lo + span). */
	uint32_t lo = 0, span = o->clients;
	struct bc_pair *pp;

	if (o->cross) {
		lo = bc_side(c->idx) ? 0 : o->split;
		span = bc_side(c->idx) ? o->split : o->clients - o->split;
		if (o->one_way && bc_side(c->idx))
			return;   /* a receiver only */
	}
	if (want > span - !o->cross)
		want = span - !o->cross;
	if (!want || atomic_load_explicit(&c->pairs, memory_order_relaxed))
		return;
	pp = calloc(want, sizeof(*pp));
	if (!pp)
		return;
	/* Random online peers, distinct, not ourselves; give up on a sparse set. */
	while (n < want && tries++ < want * 64) {
		uint32_t p = lo + (uint32_t)(rnd(t) % span);
		bool dup = p == c->idx;
		for (unsigned k = 0; k < n && !dup; k++)
			dup = pp[k].peer == p;
		if (dup || !atomic_load_explicit(&B.clients[p].online, memory_order_relaxed))
			continue;
		pp[n++].peer = p;
	}
	c->npeers = (uint8_t)n;
	atomic_store_explicit(&c->pairs, pp, memory_order_release);
	if (n && !(c->flags & BF_SENDER)) {
		c->flags |= BF_SENDER;
		t->nsenders++;
	}
}

unsigned bc_chat_send(struct bthread *t, struct bclient *c, unsigned max)
{
	const struct bench_opts *o = &B.o;
	unsigned sent = 0;

	if (!msgbuf) {
		msgcap = o->body + 512 + strlen(o->prefix) + strlen(o->domain) +
			 (o->remote_domain ? strlen(o->remote_domain) : 0);
		msgbuf = malloc(msgcap);
		if (!msgbuf)
			return 0;
	}
	struct bc_pair *pp = atomic_load_explicit(&c->pairs, memory_order_relaxed);

	while (sent < max && pp) {
		unsigned k = 0, tries;
		struct bc_pair *pr;
		uint64_t now;
		int n, m;

		for (tries = 0; tries < c->npeers; tries++) {
			k = (unsigned)(rnd(t) % c->npeers);
			if (atomic_load_explicit(&B.clients[pp[k].peer].online, memory_order_relaxed))
				break;
		}
		if (tries == c->npeers)
			break;
		pr = &pp[k];
		pr->tx_seq++;
		now = bench_now();
		n = snprintf(msgbuf, msgcap,
			     "<message to='%s%u@%s' type='chat' id='b%u.%u.%u.%u.%llu'><body>%u %u %llu ",
			     o->prefix, o->offset + pr->peer, bc_domain(pr->peer), B.run_id, c->idx, k,
			     pr->tx_seq, (unsigned long long)now, c->idx, pr->tx_seq, (unsigned long long)now);
		if (n < 0 || (size_t)n + o->body + 32 > msgcap)
			break;
		/* Pad the body to --size bytes. */
		m = n;
		while ((unsigned)(m - n) < o->body)
			msgbuf[m++] = 'x';
		memcpy(msgbuf + m, "</body></message>", 17);
		m += 17;
		out(c, msgbuf, (size_t)m);
		t->local.sent++;
		if (now >= atomic_load_explicit(&B.warm_end_ns, memory_order_relaxed) &&
		    now < atomic_load_explicit(&B.chat_end_ns, memory_order_relaxed)) {
			t->local.sent_meas++;
			if (bc_side(c->idx) != bc_side(pr->peer))
				t->local.x_sent[bc_side(c->idx)]++;
		}
		sent++;
	}
	return sent;
}

/* Parse "b<run>.<sender>.<k>.<seq>.<ns>" of this run; 0 or -1. */
static int msg_id(const struct xs_str *id, uint32_t *sender, uint32_t *k, uint32_t *seq,
		  uint64_t *ts)
{
	const char *p = id->p;
	char *end = NULL;
	unsigned long long v[5];

	if (id->len < 10 || *p != 'b')
		return -1;
	p++;
	for (int i = 0; i < 5; i++) {
		if (*p < '0' || *p > '9')
			return -1;
		v[i] = strtoull(p, &end, 10);
		if (i < 4 && *end != '.')
			return -1;
		p = end + 1;
	}
	if (*end || v[0] != B.run_id || v[1] >= B.o.clients || v[3] > UINT32_MAX)
		return -1;
	*sender = (uint32_t)v[1];
	*k = (uint32_t)v[2];
	*seq = (uint32_t)v[3];
	*ts = v[4];
	return 0;
}

static void on_message(struct bthread *t, struct bclient *c, const struct xs_stanza *s)
{
	uint32_t si, k, seq;
	uint64_t ts, now = bench_now(), warm, end;
	struct bclient *sender;
	struct bc_pair *pr, *pp;
	bool counted = true;
	int32_t old;

	if (msg_id(&s->id, &si, &k, &seq, &ts) < 0 || streq(&s->type, "error")) {
		t->local.unexpected++;
		return;
	}
	sender = &B.clients[si];
	t->local.recv++;
	if (ts <= now)
		hist_record(&t->local.h_msg, now - ts);
	pp = atomic_load_explicit(&sender->pairs, memory_order_acquire);
	if (!pp || k >= sender->npeers || pp[k].peer != c->idx) {
		t->local.misrouted++;
	} else {
		/* Per-pair order and duplicates, with a 64-message window. */
		pr = &pp[k];
		if (seq > pr->rx_last) {
			uint32_t shift = seq - pr->rx_last;
			pr->rx_win = shift >= 64 ? 0 : pr->rx_win << shift;
			pr->rx_win |= 1;
			pr->rx_last = seq;
		} else {
			uint32_t d = pr->rx_last - seq;
			if (d < 64 && (pr->rx_win & (1ull << d))) {
				t->local.dup++;
				counted = false;
			} else {
				if (d < 64)
					pr->rx_win |= 1ull << d;
				t->local.reordered++;
			}
		}
	}
	warm = atomic_load_explicit(&B.warm_end_ns, memory_order_relaxed);
	end = atomic_load_explicit(&B.chat_end_ns, memory_order_relaxed);
	if (counted && ts >= warm && ts < end) {
		unsigned from = bc_side(si);
		t->local.recv_meas++;
		if (ts <= now)
			hist_record(&t->local.h_msg_meas, now - ts);
		if (from != bc_side(c->idx)) {
			t->local.x_recv[from]++;
			if (ts <= now)
				hist_record(&t->local.h_cross[from], now - ts);
		}
	}
	if (!counted || B.o.rate > 0)
		return;
	/* Closed loop: the message is done; reopen the sender's window. */
	old = atomic_fetch_sub(&sender->inflight, 1);
	if (old <= 0)
		atomic_fetch_add(&sender->inflight, 1);   /* late, after a window reset */
	else if (old == (int32_t)B.o.window)
		bt_ready(t, sender);
}

/* ---- input ---------------------------------------------------------------------- */

static int intern_nsd(struct bthread *t, const struct xs_str *d)
{
	for (unsigned i = 0; i < t->nnsd; i++)
		if (t->nsd_len[i] == d->len && memcmp(t->nsd[i], d->p, d->len) == 0)
			return (int)i;
	if (t->nnsd == BT_NSD_MAX)
		return -1;
	t->nsd[t->nnsd] = strndup(d->p, d->len);
	if (!t->nsd[t->nnsd])
		return -1;
	t->nsd_len[t->nnsd] = d->len;
	return (int)t->nnsd++;
}
/* XEP-0198 §4: an h acknowledging more stanzas than we sent closes the stream
 * with <undefined-condition/> and <handled-count-too-high/>; the error and
 * the stream's end are written before the connection closes (BF_LINGER). */
static void h_too_high(struct bthread *t, struct bclient *c, uint32_t h, const char *cause)
{
	char x[400];

	snprintf(x, sizeof(x), "<stream:error%s><undefined-condition xmlns='"
		 "urn:ietf:params:xml:ns:xmpp-streams'/><handled-count-too-high xmlns='" NS_SM
		 "' h='%u' send-count='%u'/></stream:error>",
		 c->flags & BF_WS ? " xmlns:stream='http://etherx.jabber.org/streams'" : "", h,
		 c->smq->sent);
	outs(c, x);
	if (c->flags & BF_WS) {
		outs(c, "<close xmlns='" NS_FRAMING "'/>");
		bw_close(t, c, 1000);      /* (the XMPP stream failed, not the WebSocket) */
	} else {
		outs(c, "</stream:stream>");
		if (c->flags & BF_TLS)
			bc_flush(t, c);
		c->flags |= BF_LINGER;
	}
	bc_fail(t, c, cause, NULL);
}


/* XEP-0198.  -s --sm: <enabled/> starts the count of stanzas received, <r/>
 * is answered with it, nothing is resent.  Scenario files (c->smq): also
 * our stanzas counted and kept, the server's <a/> checked against what we
 * sent, <resumed/> in BC_RESUME.  <failed/> is the executor's (bs_sm). */
static void on_sm(struct bthread *t, struct bclient *c, const struct xs_stanza *s, const uint8_t *p,
		  size_t len)
{
	const char *el = (const char *)p;
	size_t tag = s->start_tag_end ? s->start_tag_end : len;
	char a[64];
	uint32_t h;

	if (streq(&s->local, "enabled")) {
		c->flags |= BF_SM;
		c->sm_h = 0;
		if (c->smq)
			smq_enabled(c->smq, el, tag);
	} else if (streq(&s->local, "r") && (c->flags & BF_SM)) {
		snprintf(a, sizeof(a), "<a xmlns='" NS_SM "' h='%u'/>", c->sm_h);
		outs(c, a);
	} else if (streq(&s->local, "a") && (c->flags & BF_SM) && c->smq) {
		if (smq_attr_u32(el, tag, "h", &h) < 0)
			bc_fail(t, c, "sm:bad-ack", NULL);
		else if (smq_ack(c->smq, h) < 0)
			h_too_high(t, c, h, "sm:handled-count-too-high");
	} else if (streq(&s->local, "resumed") && c->state == BC_RESUME && c->smq) {
		size_t n;
		const uint8_t *again;
		/* §5: h is what the server handled of ours; the rest is sent again */
		if (smq_attr_u32(el, tag, "h", &h) < 0) {
			bc_fail(t, c, "resume:bad-h", NULL);
			return;
		}
		if (!smq_previd_is(c->smq, el, tag)) {
			bc_fail(t, c, "resume:previd-mismatch", NULL);
			return;
		}
		if (smq_ack(c->smq, h) < 0) {
			h_too_high(t, c, h, "resume:handled-count-too-high");
			return;
		}
		c->flags |= BF_SM;
		again = smq_bytes(c->smq, &n);
		if (again) {
			/* (over WebSocket, bw_write frames each element on its own) */
			out_elem(c, again, n);
			out_elem(c, sm_r, sizeof(sm_r) - 1);
			c->smq->since_r = 0;
			t->local.resent += smq_unacked(c->smq);
		}
	} else if (streq(&s->local, "failed") && B.o.scenario != SC_FILE) {
		t->local.unexpected++;
	}
}

void bc_sm_enable(struct bthread *t, struct bclient *c, bool resume)
{
	static const char with[] = "<enable xmlns='" NS_SM "' resume='true'/>";
	static const char without[] = "<enable xmlns='" NS_SM "'/>";

	smq_free(c->smq);
	c->smq = smq_new(resume);
	if (!c->smq) {
		bc_fail(t, c, "sm:setup", NULL);
		return;
	}
	/* our count starts here: the server counts what follows its receipt */
	if (resume)
		out(c, with, sizeof(with) - 1);
	else
		out(c, without, sizeof(without) - 1);
}

void bc_sm_resume(struct bthread *t, struct bclient *c)
{
	char xml[SMQ_ID_MAX + 128];
	int n = snprintf(xml, sizeof(xml), "<resume xmlns='" NS_SM "' h='%u' previd='%s'/>", c->sm_h,
			 c->smq->id);

	if (n > 0 && (size_t)n < sizeof(xml))
		out(c, xml, (size_t)n);
	set_state(c, BC_RESUME);
}

static int on_stanza(struct bthread *t, struct bclient *c, const uint8_t *p, size_t len)
{
	struct xs_stanza s;
	char cause[64];
	int r = xmlstage_stanza(t->xs, t->nsd[c->nsd], t->nsd_len[c->nsd], (const char *)p, len, &s);

	if (r != XMLSTAGE_OK) {
		snprintf(cause, sizeof(cause), "xml:%s", xmlstage_error_str(r));
		bc_fail(t, c, cause, NULL);
		return STOP;
	}
	if (streq(&s.local, "error") && streq(&s.ns, NS_STREAMS)) {
		snprintf(cause, sizeof(cause), "stream:%s", s.child_local.len ? s.child_local.p : "error");
		bc_fail(t, c, cause, NULL);
		return STOP;
	}
	switch (c->state) {
	case BC_FEATURES:
		return on_features(t, c, p, len, &s);
	case BC_STARTTLS:
		if (streq(&s.local, "proceed") && streq(&s.ns, NS_TLS)) {
			tls_begin(t, c);
			return STOP;   /* nothing may follow <proceed/> in plaintext */
		}
		bc_fail(t, c, "starttls-refused", s.local.p);
		return STOP;
	case BC_SASL:
		return on_sasl(t, c, &s);
	default:
		break;
	}
	if (streq(&s.ns, NS_SM)) {
		on_sm(t, c, &s, p, len);
		if (B.o.scenario == SC_FILE)
			bs_sm(t, c, &s);
		return (c->flags & BF_CLOSED) ? STOP : GO_ON;
	}
	/* XEP-0198 §4: h counts stanzas only (the stream's jabber:client elements) */
	if ((c->flags & BF_SM) && streq(&s.ns, XMLSTAGE_NS_CLIENT) &&
	    (streq(&s.local, "iq") || streq(&s.local, "message") || streq(&s.local, "presence")))
		c->sm_h++;
	if (B.o.scenario == SC_FILE) {
		if (streq(&s.local, "iq") && (streq(&s.type, "get") || streq(&s.type, "set"))) {
			bc_iq_reply(c, &s);
			return GO_ON;
		}
		return bs_stanza(t, c, &s, p, len) < 0 ? STOP : GO_ON;
	}
	if (B.o.scenario == SC_MUC && (c->state == BC_JOIN || c->state == BC_ONLINE) &&
	    bm_stanza(t, c, &s, p, len))
		return GO_ON;
	if (streq(&s.local, "iq")) {
		if (streq(&s.type, "get") || streq(&s.type, "set")) {
			bc_iq_reply(c, &s);
		} else if (c->state == BC_BIND && streq(&s.id, "b1")) {
			if (!streq(&s.type, "result")) {
				bc_fail(t, c, "bind-error", s.child_local.p);
				return STOP;
			}
			hist_record(&t->local.h_auth, bench_now() - c->t_stream);
			if (B.o.sm)
				outs(c, "<enable xmlns='" NS_SM "' resume='true'/>");
			outs(c, "<presence/><iq type='get' id='r1'><query xmlns='jabber:iq:roster'/></iq>");
			set_state(c, BC_ROSTER);
		} else if (c->state == BC_ROSTER && streq(&s.id, "r1")) {
			if (!streq(&s.type, "result")) {
				bc_fail(t, c, "roster-error", s.child_local.p);
				return STOP;
			}
			bc_logged_in(t, c);
		}
	} else if (streq(&s.local, "message")) {
		if (c->state == BC_ONLINE || c->state == BC_ROSTER)
			on_message(t, c, &s);
	} else if (!streq(&s.local, "presence")) {
		t->local.unexpected++;
	}
	return GO_ON;
}

static int on_item(struct bthread *t, struct bclient *c, int ev, const uint8_t *p, size_t len)
{
	struct xs_header h;
	int r, i;
	char cause[64];

	switch (ev) {
	case FRAMER_HEADER:
		r = xmlstage_header(t->xs, (const char *)p, len, &h);
		if (r != XMLSTAGE_OK) {
			snprintf(cause, sizeof(cause), "xml:%s", xmlstage_error_str(r));
			bc_fail(t, c, cause, "stream header");
			return STOP;
		}
		if (!streq(&h.name_ns, NS_STREAMS) || !streq(&h.local, "stream")) {
			bc_fail(t, c, "bad-stream-header", NULL);
			return STOP;
		}
		i = intern_nsd(t, &h.ns_decls);
		if (i < 0) {
			bc_fail(t, c, "too-many-stream-header-variants", NULL);
			return STOP;
		}
		c->nsd = (uint8_t)i;
		return GO_ON;
	case FRAMER_STANZA:
		return on_stanza(t, c, p, len);
	case FRAMER_CLOSE:
		/* In closing: wait for the server's FIN (the step timer bounds it),
		 * so TIME_WAIT stays on the server side and a next run finds our
		 * ports free. */
		if (c->state != BC_CLOSING)
			bc_fail(t, c, "closed-by-server", "</stream:stream>");
		return STOP;
	default:
		return GO_ON;  /* whitespace */
	}
}

static void plain_input(struct bthread *t, struct bclient *c, const uint8_t *data, size_t len)
{
	const uint8_t *p = data;
	size_t n = len, done = 0, end;
	bool held = buf_used(&c->in) > 0, stop = false;
	char cause[48];

	if (held) {
		if (buf_append(&c->in, data, len, IN_LIMIT) < 0) {
			bc_fail(t, c, "input-limit", NULL);
			return;
		}
		p = buf_data(&c->in);
		n = buf_used(&c->in);
	}
	while (!(c->flags & BF_CLOSED) && done < n) {
		int ev = framer_scan(&c->fr, &lim, p + done, n - done, &end);
		if (ev == FRAMER_MORE)
			break;
		if (ev == FRAMER_ERROR) {
			snprintf(cause, sizeof(cause), "xml:%s", framer_error_str(c->fr.err));
			bc_fail(t, c, cause, NULL);
			return;
		}
		stop = on_item(t, c, ev, p + done, end) == STOP;
		done += end;
		if (stop)
			break;
	}
	if (c->flags & BF_CLOSED)
		return;
	if (held) {
		if (stop)
			buf_reset(&c->in);
		else
			buf_consume(&c->in, done);
	} else if (!stop && done < n && buf_append(&c->in, p + done, n - done, IN_LIMIT) < 0) {
		bc_fail(t, c, "input-limit", NULL);
	}
}

void bc_xmpp_input(struct bthread *t, struct bclient *c, const uint8_t *p, size_t len)
{
	plain_input(t, c, p, len);
}

void bc_input(struct bthread *t, struct bclient *c, const uint8_t *data, size_t len)
{
	if (!c->tp.tls && c->ws)
		bw_input(t, c, data, len);
	else if (!c->tp.tls)
		plain_input(t, c, data, len);
	else
		tlsp_input(&c->tp, data, len, t->scratch);
}

/* ---- endings, timers, keepalives --------------------------------------------------- */

void bc_eof(struct bthread *t, struct bclient *c, int err)
{
	char cause[48];

	if (c->state == BC_CLOSING || (c->flags & BF_CLOSED)) {
		bt_close(c);
		return;
	}
	if (err == 0)
		snprintf(cause, sizeof(cause), "closed-by-server");
	else
		snprintf(cause, sizeof(cause), "socket:%s", strerrorname_np(-err) ? strerrorname_np(-err) : "E?");
	bc_fail(t, c, cause, NULL);
}

void bc_timeout(struct bthread *t, struct bclient *c)
{
	char cause[48];

	if (c->state == BC_CLOSING) {
		bt_close(c);   /* the server did not answer our goodbye: fine */
		return;
	}
	if (c->state == BC_CONNECT)
		snprintf(cause, sizeof(cause), "connect-timeout");
	else
		snprintf(cause, sizeof(cause), "timeout:%s", bc_state_str(c->state));
	bc_fail(t, c, cause, NULL);
}

void bc_keepalive(struct bthread *t, struct bclient *c)
{
	if (c->state != BC_ONLINE)
		return;
	if (c->flags & BF_WS)
		bw_ping(c);     /* a message is one element: no whitespace between them */
	else
		out(c, " ", 1);
	bt_keepalive(c, bench_now() + (uint64_t)(B.o.keepalive * 1e9));
}

void bc_goodbye(struct bthread *t, struct bclient *c)
{
	if (c->flags & BF_CLOSED)
		return;
	set_online(t, c, false);
	resolved(t, c);
	bt_keepalive(c, 0);
	if (c->state < BC_FEATURES || (c->flags & BF_PEER_GONE)) {
		bt_close(c);
		return;
	}
	if (c->flags & BF_WS) {
		/* the server answers <close/> and a close frame; ours (and, over
		 * wss, the close_notify) answer its frame (wsconn.c) */
		outs(c, "<close xmlns='" NS_FRAMING "'/>");
		set_state(c, BC_CLOSING);
		return;
	}
	outs(c, "</stream:stream>");
	if (c->flags & BF_TLS) {
		bc_flush(t, c);
		tlsp_close_notify(&c->tp);
	}
	set_state(c, BC_CLOSING);
}
