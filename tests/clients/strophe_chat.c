/*
 * strophe_chat — a second, independent XMPP client for the integration tests,
 * built on libstrophe (Debian libstrophe-dev; not slixmpp, not our code).
 *
 *   strophe_chat JID PASSWORD HOST PORT starttls|directtls
 *
 * Connects (TLS is mandatory: STARTTLS, or Direct TLS with "directtls"; the
 * self-signed test certificate is trusted), authenticates with whatever SASL
 * mechanism libstrophe prefers, binds, sends initial presence, then:
 *   stdout  "READY <bound-jid> secured=<0|1>"          once the session is up
 *           "RECV <from> <type> <base64(body)>"         for each message with a body
 *           "PRESENCE <from> <type|available>"          for each presence
 *           "SENT <id>"                                  after each send command
 *           "CLOSED <reason>"                            when the stream ends
 *   stdin   "send <to-jid> <base64(body)>"   send a chat message
 *           "quit"                           close the stream and exit 0
 * Exits 1 on connection/authentication failure, 3 on a usage error.
 * Bodies travel base64-encoded so that any UTF-8 survives the line protocol.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <strophe.h>

static int connected, closed, exit_code;
static char line[65536];
static size_t line_len;
static unsigned long sent_count;

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static char *b64_encode(const unsigned char *in, size_t n)
{
	char *out = malloc(4 * ((n + 2) / 3) + 1), *o = out;
	size_t i;

	if (!out)
		return NULL;
	for (i = 0; i + 2 < n; i += 3) {
		*o++ = B64[in[i] >> 2];
		*o++ = B64[((in[i] & 3) << 4) | (in[i + 1] >> 4)];
		*o++ = B64[((in[i + 1] & 15) << 2) | (in[i + 2] >> 6)];
		*o++ = B64[in[i + 2] & 63];
	}
	if (i < n) {
		*o++ = B64[in[i] >> 2];
		if (i + 1 < n) {
			*o++ = B64[((in[i] & 3) << 4) | (in[i + 1] >> 4)];
			*o++ = B64[(in[i + 1] & 15) << 2];
		} else {
			*o++ = B64[(in[i] & 3) << 4];
			*o++ = '=';
		}
		*o++ = '=';
	}
	*o = 0;
	return out;
}

static char *b64_decode(const char *in)
{
	size_t n = strlen(in), k = 0;
	char *out = malloc(n + 1);
	unsigned acc = 0;
	int bits = 0;

	if (!out)
		return NULL;
	for (size_t i = 0; i < n && in[i] != '='; i++) {
		const char *p = strchr(B64, in[i]);
		if (!p || !in[i]) {
			free(out);
			return NULL;
		}
		acc = (acc << 6) | (unsigned)(p - B64);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[k++] = (char)((acc >> bits) & 255);
		}
	}
	out[k] = 0;
	return out;
}

static int on_message(xmpp_conn_t *conn, xmpp_stanza_t *st, void *ud)
{
	const char *from = xmpp_stanza_get_from(st), *type = xmpp_stanza_get_type(st);
	char *body = xmpp_message_get_body(st), *enc;

	(void)conn;
	if (body) {
		enc = b64_encode((const unsigned char *)body, strlen(body));
		printf("RECV %s %s %s\n", from ? from : "-", type ? type : "normal", enc ? enc : "");
		fflush(stdout);
		free(enc);
		xmpp_free(ud, body);
	}
	return 1;
}

static int on_presence(xmpp_conn_t *conn, xmpp_stanza_t *st, void *ud)
{
	const char *from = xmpp_stanza_get_from(st), *type = xmpp_stanza_get_type(st);

	(void)conn;
	(void)ud;
	printf("PRESENCE %s %s\n", from ? from : "-", type ? type : "available");
	fflush(stdout);
	return 1;
}

static void on_conn(xmpp_conn_t *conn, xmpp_conn_event_t ev, int err, xmpp_stream_error_t *se,
		    void *ud)
{
	xmpp_ctx_t *ctx = ud;

	if (ev == XMPP_CONN_CONNECT) {
		xmpp_stanza_t *pres = xmpp_presence_new(ctx);

		xmpp_handler_add(conn, on_message, NULL, "message", NULL, ctx);
		xmpp_handler_add(conn, on_presence, NULL, "presence", NULL, ctx);
		xmpp_send(conn, pres);
		xmpp_stanza_release(pres);
		connected = 1;
		printf("READY %s secured=%d\n", xmpp_conn_get_bound_jid(conn),
		       xmpp_conn_is_secured(conn));
		fflush(stdout);
		return;
	}
	printf("CLOSED event=%d error=%d stream_error=%d connected=%d\n", (int)ev, err,
	       se ? (int)se->type : -1, connected);
	fflush(stdout);
	if (!connected)
		exit_code = 1;
	closed = 1;
	xmpp_stop(ctx);
}

/* One command line from the test. */
static void command(xmpp_ctx_t *ctx, xmpp_conn_t *conn, char *cmd)
{
	if (!strcmp(cmd, "quit")) {
		xmpp_disconnect(conn);
		return;
	}
	if (!strncmp(cmd, "send ", 5)) {
		char *to = cmd + 5, *sp = strchr(to, ' '), *body, id[32];
		xmpp_stanza_t *m;

		if (!sp)
			goto bad;
		*sp = 0;
		body = b64_decode(sp + 1);
		if (!body)
			goto bad;
		snprintf(id, sizeof(id), "sc%lu", ++sent_count);
		m = xmpp_message_new(ctx, "chat", to, id);
		xmpp_message_set_body(m, body);
		xmpp_send(conn, m);
		xmpp_stanza_release(m);
		free(body);
		printf("SENT %s\n", id);
		fflush(stdout);
		return;
	}
bad:
	fprintf(stderr, "strophe_chat: bad command: %s\n", cmd);
	exit(3);
}

static void read_stdin(xmpp_ctx_t *ctx, xmpp_conn_t *conn)
{
	struct pollfd pfd = { .fd = 0, .events = POLLIN };
	ssize_t n;

	if (poll(&pfd, 1, 0) <= 0)
		return;
	n = read(0, line + line_len, sizeof(line) - 1 - line_len);
	if (n <= 0) {            /* the test went away: leave */
		xmpp_disconnect(conn);
		return;
	}
	line_len += (size_t)n;
	for (;;) {
		char *nl = memchr(line, '\n', line_len);
		size_t used;

		if (!nl)
			break;
		*nl = 0;
		used = (size_t)(nl - line) + 1;
		command(ctx, conn, line);
		memmove(line, line + used, line_len - used);
		line_len -= used;
	}
	if (line_len == sizeof(line) - 1) {
		fprintf(stderr, "strophe_chat: command line too long\n");
		exit(3);
	}
}

int main(int argc, char **argv)
{
	xmpp_ctx_t *ctx;
	xmpp_conn_t *conn;
	long flags = XMPP_CONN_FLAG_TRUST_TLS | XMPP_CONN_FLAG_DISABLE_SM;
	int direct;

	if (argc != 6 || (strcmp(argv[5], "starttls") && strcmp(argv[5], "directtls"))) {
		fprintf(stderr, "usage: strophe_chat JID PASSWORD HOST PORT starttls|directtls\n");
		return 3;
	}
	direct = !strcmp(argv[5], "directtls");
	flags |= direct ? XMPP_CONN_FLAG_LEGACY_SSL : XMPP_CONN_FLAG_MANDATORY_TLS;
	setvbuf(stdout, NULL, _IOLBF, 0);
	xmpp_initialize();
	ctx = xmpp_ctx_new(NULL, getenv("STROPHE_DEBUG") ? xmpp_get_default_logger(XMPP_LEVEL_DEBUG)
							 : xmpp_get_default_logger(XMPP_LEVEL_WARN));
	conn = xmpp_conn_new(ctx);
	if (xmpp_conn_set_flags(conn, flags) < 0) {
		fprintf(stderr, "strophe_chat: cannot set connection flags\n");
		return 1;
	}
	xmpp_conn_set_jid(conn, argv[1]);
	xmpp_conn_set_pass(conn, argv[2]);
	if (xmpp_connect_client(conn, argv[3], (unsigned short)atoi(argv[4]), on_conn, ctx) !=
	    XMPP_EOK) {
		fprintf(stderr, "strophe_chat: connect failed\n");
		return 1;
	}
	while (!closed) {
		xmpp_run_once(ctx, 50);
		if (connected && !closed)
			read_stdin(ctx, conn);
	}
	xmpp_conn_release(conn);
	xmpp_ctx_free(ctx);
	xmpp_shutdown();
	return exit_code;
}
