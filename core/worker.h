/*
 * worker — one edge worker thread: an io_uring ring, its listeners, its
 * connections, its timer wheel and its link to the session server.
 *
 * Module split:
 *   worker.c  the ring: accept, multishot recv, sends, closes, timers, the loop
 *   stream.c  XMPP on a connection: TLS glue, stream negotiation, SASL, bind,
 *             stanza checks and forwarding; frames from the session server
 *   link.c    the worker's link to the session server (wire frames)
 *
 * Ownership: everything here belongs to the worker thread; nothing is shared
 * with other threads except `ctrl` (a single-producer ck_ring the main thread
 * writes) and `stop`.
 *
 * Completion lifetimes: a connection counts its in-flight operations in
 * `refs` (armed multishot recv, send, cancel, close).  Closing is a request:
 * the connection is freed only when the close completed and refs is 0, so a
 * late completion never touches freed memory.  user_data carries the object
 * pointer with the operation in its low 4 bits (objects are 16-aligned).
 */
#ifndef XEDGE_WORKER_H
#define XEDGE_WORKER_H

#include <ck_ring.h>
#include <sys/socket.h>
#include <liburing.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/config.h"
#include "parser/framer.h"
#include "parser/wire.h"
#include "tls/tls.h"

struct sasl;
struct xmlstage;

enum op {
	OP_ACCEPT = 1, OP_RECV, OP_SEND, OP_CLOSE, OP_CANCEL,
	OP_LINK_RECV, OP_LINK_SEND, OP_LINK_CONNECT, OP_MSG, OP_IGNORE, OP_PEER
};
#define OP_MASK 0xfULL
#define UD(ptr, op) ((uint64_t)(uintptr_t)(ptr) | (uint64_t)(op))
#define UD_PTR(ud) ((void *)(uintptr_t)((ud) & ~OP_MASK))
#define UD_OP(ud) ((int)((ud) & OP_MASK))

/*
 * The connection state machine (stream.c performs every transition through
 * conn_set_state, which logs it at debug level).
 */
enum conn_state {
	CS_TLS_WAIT = 0,  /* Direct TLS: accepted, TLS handshake not finished */
	CS_HEADER,        /* waiting for a stream header (initial or after a restart) */
	CS_STARTTLS,      /* <proceed/> queued, STARTTLS handshake running */
	CS_NEGOTIATE,     /* header exchanged, features sent: starttls / auth / bind */
	CS_SASL,          /* SASL exchange in progress */
	CS_SESSION,       /* resource bound: stanzas flow */
	CS_CLOSING        /* goodbye queued; the socket closes once it is flushed */
};
const char *conn_state_str(int s);

/* conn.flags */
#define CF_TLS          0x0001 /* the stream is encrypted */
#define CF_DIRECT_TLS   0x0002 /* accepted on a Direct TLS listener */
#define CF_AUTHED       0x0004 /* SASL succeeded */
#define CF_BOUND        0x0008 /* a resource is bound */
#define CF_HEADER_SENT  0x0010 /* our stream header went out (stream errors need it) */
#define CF_SM_OPEN      0x0020 /* the session server knows this session */
#define CF_WAIT_SM      0x0040 /* input paused until the session server answers */
#define CF_DIRTY        0x0080 /* on the worker's flush list */
#define CF_CLOSED       0x0100 /* cancel + close submitted */
#define CF_RECV_ARMED   0x0200 /* a multishot recv is armed */
#define CF_SENDING      0x0400 /* a send is in flight */
#define CF_PEER_GONE    0x0800 /* EOF or error: write nothing more */
#define CF_IP_COUNTED   0x1000 /* counted in iplimit: leave on free */
#define CF_HS_COUNTED   0x2000 /* holds one of the process-wide TLS handshake slots */
#define CF_SLOW         0x4000 /* output queue over max_out_bytes since slow_since */

/* conn.paused: why reads are paused (the multishot recv is cancelled) */
#define PAUSE_RATE      0x01   /* over its bytes/s or stanzas/s budget */
#define PAUSE_LINK      0x02   /* the session server link is backed up */
#define PAUSE_PEER      0x04   /* the session server: a recipient of this client reads too slowly */

struct conn {
	struct worker *w;
	uint32_t idx;            /* direct descriptor slot */
	uint32_t gen;            /* with idx, makes the session id */
	uint16_t flags;
	uint8_t state;           /* enum conn_state */
	uint8_t refs;            /* in-flight operations */
	uint8_t auth_failures;
	uint8_t close_reason;    /* enum wire_reason sent to the session server */
	uint8_t paused;          /* PAUSE_* */
	uint16_t bind_id_len;
	uint32_t owed;           /* stanza bytes from the session server not yet credited back */
	struct framer fr;
	struct buf in;           /* plaintext received, not yet consumed */
	struct buf pt;           /* plaintext waiting to be encrypted (TLS only) */
	struct buf out;          /* wire bytes queued behind the send in flight */
	struct buf sending;      /* wire bytes of the send in flight (immutable) */
	struct tls *tls;
	struct tls_io tio;
	struct sasl *sasl;
	const char *domain;      /* the served domain this stream is for (config-owned) */
	char *user;              /* canonical localpart once authenticated */
	char *jid;               /* full JID once bound */
	char *close_tag;         /* "</p:stream" when the client's stream prefix is not "stream" */
	char *bind_id;           /* id of the pending bind iq */
	uint64_t accepted;       /* worker clock (s) at accept */
	uint64_t last_rx;        /* worker clock (s) of the last input */
	uint64_t deadline;       /* worker clock (s) when the timer fires; 0: none */
	uint64_t due;            /* when the current state times out (before a session) */
	uint64_t slow_since;     /* worker clock when the output queue went over the limit */
	uint64_t sm_due;         /* while CF_WAIT_SM: when to give up on the session server */
	int64_t tok_bytes, tok_stanzas; /* rate limit buckets (may go negative) */
	uint64_t tok_ms;         /* last refill, ms */
	struct conn *tnext, *tprev; /* timer wheel bucket */
	struct conn *dnext;      /* flush list */
	struct conn *pnext, *pprev; /* rate-paused list */
	char stream_id[20];
	char peer[48];           /* client address ("-" until known) */
	uint8_t ip[16];          /* the same, v4-mapped, for iplimit */
} __attribute__((aligned(16)));

static inline uint64_t conn_sid(const struct conn *c)
{
	return ((uint64_t)c->gen << 32) | c->idx;
}

struct listener {
	struct worker *w;
	int fd;
	int kind;                /* enum listener_kind */
	bool armed;
} __attribute__((aligned(16)));

struct link {
	struct worker *w;
	int fd;
	bool up;                 /* HELLO_OK received */
	bool recv_armed, sending, dead, connecting;
	bool stalled;            /* a request timed out; cleared by the next frame received */
	unsigned backoff;        /* seconds before the next reconnect attempt */
	uint64_t retry_at;       /* worker clock of the next attempt */
	struct sockaddr_storage addr; /* external session server, for reconnects */
	socklen_t addrlen;
	struct buf rx;           /* bytes received, frames decoded from the front */
	struct buf out;          /* encoded frames queued */
	struct buf tx;           /* frames in flight */
} __attribute__((aligned(16)));

#define WHEEL_SLOTS 256u

enum ctrl_cmd { CTRL_STOP = 1 };

struct worker {
	int id;
	pthread_t thread;
	const struct config *cfg;
	struct io_uring ring;
	struct framer_limits lim;

	struct listener listeners[CONFIG_MAX_LISTENERS];
	size_t nlisteners;

	struct io_uring_buf_ring *br;  /* provided receive buffers */
	uint8_t *bufmem;
	unsigned nbufs, bufsize;

	struct conn **slots;     /* by direct descriptor index */
	uint32_t nslots, nconns, gen;
	struct conn *dirty;      /* connections with output to flush */
	struct conn *rate_paused;/* connections paused by their rate limit */
	uint32_t link_paused;    /* connections paused because the link is backed up */

	uint64_t now;            /* monotonic seconds, updated once per loop */
	struct conn *wheel[WHEEL_SLOTS];
	uint64_t wheel_pos;

	struct link link;
	struct xmlstage *xs;
	uint8_t *scratch;        /* TLS plaintext out of wolfSSL_read */
	char *stamp;             /* a stanza with its 'from' stamped, before it is framed */
	size_t stamp_cap;

	ck_ring_t ctrl;
	ck_ring_buffer_t ctrl_buf[16];
	volatile int stop;
	int start_rc;            /* set by the thread once set up: 0 or -errno */
	volatile int started;
	int sm_fd;               /* embedded link end, or -1 to connect to cfg->backend_address */
	uint64_t stat_accepted, stat_stanzas_in, stat_stanzas_out;
};

/* worker.c */
int worker_start(struct worker *w);     /* spawns the thread; waits for its set-up */
void worker_post(struct worker *w, struct io_uring *from, int cmd);
void conn_send(struct conn *c, const void *data, size_t len); /* queue wire bytes */
void conn_flush_later(struct conn *c);
void conn_timer(struct conn *c, uint64_t deadline);
void conn_release(struct conn *c);      /* start the socket close (after the last bytes) */
void conn_pause(struct conn *c, int why);  /* stop reading (PAUSE_*) */
void conn_resume(struct conn *c, int why);
bool conn_rate_ok(struct conn *c, size_t bytes, unsigned stanzas); /* charge; false: paused */
uint64_t worker_ms(void);
struct conn *worker_conn_by_sid(struct worker *w, uint64_t sid);

/* stream.c */
void stream_accepted(struct conn *c);
void stream_input(struct conn *c, const uint8_t *data, size_t len); /* wire bytes in */
void stream_eof(struct conn *c);
void stream_timeout(struct conn *c);
void stream_flush(struct conn *c);      /* encrypt pending plaintext into c->out */
void stream_free(struct conn *c);       /* drop XMPP state just before the conn is freed */
void stream_resume(struct conn *c);     /* handle input buffered while paused or waiting */
void stream_on_frame(struct worker *w, const struct wire_msg *m);
void stream_link_down(struct worker *w);
void stream_shutdown(struct conn *c);   /* server going down: system-shutdown */
void stream_sent(struct conn *c);       /* a send completed: return flow-control credit */

/* link.c */
int link_open(struct worker *w);
int link_send(struct worker *w, const struct wire_msg *m);
bool link_congested(struct worker *w);     /* queued towards the session server over the high mark */
void link_flush(struct worker *w);
void link_arm(struct worker *w);
void link_on_recv(struct worker *w, int res);
void link_on_send(struct worker *w, int res);
void link_close(struct worker *w);
void link_tick(struct worker *w);          /* reconnect when due */
void link_on_connect(struct worker *w, int res);

#endif
