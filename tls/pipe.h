/*
 * pipe — one TLS session as a byte pipe between a socket and its owner:
 * the session (tls.h), its tls_io, the plaintext written since the last
 * flush, and the loop that runs the handshake and then decrypts what
 * arrives.  The edge's TLS transport layer (core/xprt_tls.c, server and
 * client) and xedge-bench's client (bench/client.c) are both built on it;
 * it knows neither: it reports to its owner through callbacks.
 *
 * Output: tlsp_write() only buffers plaintext; tlsp_flush() seals all of it
 * in one call (records of up to 16 KiB, or the negotiated
 * max_fragment_length), so what an owner writes in one loop iteration
 * leaves as one send.  Ciphertext goes to ops->out(owner, ...) — the
 * tls_io.out contract of tls.h: it takes all of it or returns -1.
 *
 * State machine (tlsp_set_state): HANDSHAKE -> OPEN -> SHUT -> CLOSED, or
 * forward to CLOSED from anywhere.  SHUT: our close_notify is sent; the
 * peer's bytes are still read (its goodbye), nothing more is written.
 * CLOSED: a fatal error; nothing is read or written again.
 *
 * Memory: the pipe is embedded in its owner (80 bytes); `pt` holds memory
 * only between a write and the flush; the session is NULL until
 * tlsp_server()/tlsp_client() and after tlsp_clear().
 */
#ifndef XEDGE_TLS_PIPE_H
#define XEDGE_TLS_PIPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "tls/tls.h"

enum tlsp_state { TLSP_HANDSHAKE = 0, TLSP_OPEN, TLSP_SHUT, TLSP_CLOSED };

/* Why a pipe's input ended (the `end` callback). */
enum tlsp_end {
	TLSP_END_NOTIFY = 1,  /* the peer's close_notify: the state is unchanged (answer it) */
	TLSP_END_HANDSHAKE,   /* the handshake failed: CLOSED, its alert (if any) queued */
	TLSP_END_ERROR,       /* a record-layer error: CLOSED, its alert (if any) queued */
};

struct tlsp_ops {
	/* Ciphertext for the socket (tls_io.out).  0, or -1 when it cannot be
	 * taken. */
	int (*out)(void *owner, const uint8_t *data, size_t len);
	/* The handshake completed: the state is OPEN. */
	void (*ready)(void *owner);
	/* Decrypted plaintext; p is the caller's scratch, valid for the call. */
	void (*plain)(void *owner, const uint8_t *p, size_t n);
	/* Input ended (enum tlsp_end); tlsp_error_str() says why. */
	void (*end)(void *owner, int why);
	/* Checked before each record is decrypted: false stops the loop (the
	 * owner is closing); the rest of that input is dropped. */
	bool (*live)(void *owner);
};

struct tlsp {
	struct tls *tls;             /* NULL until tlsp_server / tlsp_client */
	struct tls_io io;            /* io.owner is the pipe's owner */
	struct buf pt;               /* plaintext written since the last flush */
	const struct tlsp_ops *ops;
	uint8_t state;               /* enum tlsp_state */
	uint8_t client;              /* the session is a client's */
};

/* Set up an empty pipe (no session yet) for owner. */
void tlsp_init(struct tlsp *p, const struct tlsp_ops *ops, void *owner);

/* Create the session: a server one for domain (NULL: by SNI), or a client
 * one (tls_client_new: sni, alpn, no verification), or a client one that
 * verifies the server's certificate against the CA file loaded by tls_init
 * and checks `name` in it (tls_client_new_verified).  0, or -1 (no memory,
 * no context).  The client handshake starts with the first tlsp_input(). */
int tlsp_server(struct tlsp *p, const char *domain);
int tlsp_client(struct tlsp *p, const char *sni, int alpn);
int tlsp_client_verified(struct tlsp *p, const char *name);
/* Server-to-server sessions (tls_new_s2s, tls_client_new_s2s). */
int tlsp_server_s2s(struct tlsp *p, const char *domain);
int tlsp_client_s2s(struct tlsp *p, const char *local, const char *remote, bool direct);

/* Ciphertext from the socket (len may be 0: a client's first call sends its
 * ClientHello).  Runs the handshake, then decrypts record by record into
 * scratch (TLS_READ_CAP bytes) while ops->live(owner), calling ops->plain
 * for each; the callbacks may free nothing of the pipe but its plaintext. */
void tlsp_input(struct tlsp *p, const uint8_t *data, size_t len, uint8_t *scratch);

/* Buffer plaintext for the next flush.  0, or -1 over limit (bytes held). */
int tlsp_write(struct tlsp *p, const void *data, size_t len, size_t limit);

/* Seal what was written (OPEN only; otherwise it waits or is dropped by
 * the state).  0, or -1 when encryption or ops->out failed; the plaintext
 * is gone either way. */
int tlsp_flush(struct tlsp *p);

/* Drop the plaintext not yet sealed. */
static inline void tlsp_drop(struct tlsp *p)
{
	buf_reset(&p->pt);
}

/* Our goodbye: flush, then close_notify; OPEN -> SHUT.  No-op otherwise. */
void tlsp_close_notify(struct tlsp *p);

/* Free the session and the plaintext; the pipe may be set up again. */
void tlsp_clear(struct tlsp *p);

/* The one place the state changes (forward only; an illegal transition is
 * logged and becomes CLOSED). */
void tlsp_set_state(struct tlsp *p, int s);
const char *tlsp_state_str(int s);

/* Why the session failed, for logs ("no session" without one). */
const char *tlsp_error_str(struct tlsp *p, char *buf, size_t len);

static inline bool tlsp_open(const struct tlsp *p)
{
	return p->state == TLSP_OPEN;
}

#endif
