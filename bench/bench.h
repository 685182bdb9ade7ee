/*
 * bench — xedge-bench, an io_uring load generator that drives any XMPP
 * server (xedge, Prosody, ejabberd) with N simulated clients.
 *
 * Module split (prefixes in brackets):
 *   main.c          options, the controller (phases, per-second sampling, progress)  [bench_]
 *   thread.c        one client thread: its io_uring ring, connects, recv, sends,
 *                   closes, timers, cross-thread wakeups                             [bt_]
 *   client.c        XMPP on one simulated client: TLS, stream, STARTTLS, SASL,
 *                   bind, presence, roster, chat messages and their accounting       [bc_]
 *   wsconn.c        XMPP over WebSocket (RFC 7395) under client.c: the upgrade,
 *                   <open/>/<close/>, one masked text frame per element, pings   [bw_]
 *   muc.c           the muc scenario (XEP-0045 group chat): joins, the instant
 *                   room, groupchat sends and the fan-out accounting                [bm_]
 *   steps.c         the scenario executor (--scenario FILE): loading, arrivals, each
 *                   user's step program (the interpreter, its timers), the
 *                   connection steps, resume, drain                                 [bs_]
 *   steps_msg.c     the executor's chat, group chat and rooms (room_fanout), the
 *                   stanzas a user receives, text helpers (steps_int.h: shared)     [bs_]
 *   steps_report.c  the executor's summary and JSON (through bs_view)              [bs_]
 *   plan.c          the executor's pure arithmetic: arrival times from the phases,
 *                   the weighted session choice, loop frames                         [bp_]
 *   scenario.c      scenario files (YAML) -> struct bench_scenario (pure)            [scn_]
 *   scenario_vars.c their ${NAME:-DEFAULT} variables (--var), before the parse        [scn_]
 *   scenario_describe.c  a step or phase in words (--check-scenario, the reports)  [scn_]
 *   scram_client.c  SCRAM client codec (pure)                                          [scram_]
 *   keycache.c      optional on-disk cache of SCRAM ClientKey/ServerKey               [keycache_]
 *   hist.c          log-linear latency histograms (pure)                              [hist_]
 *   target.c        /proc sampling of the target's CPU and RSS                        [target_]
 *   report.c        summary table, JSON, gnuplot; counters -> transactions           [report_]
 *   result.c        named transactions, exact merge, JSON v2 in and out, CSV          [result_]
 *   threshold.c     pass/fail expressions on a result (pure)                           [thr_]
 *   html.c          the self-contained HTML report (inline SVG)                       [html_]
 *   merge.c         the merge and compare subcommands                                 [merge_]
 *   slice.c         distributed runs: this process's slice of the load, --start-at    [slice_]
 *
 * Two servers (--remote): clients [0, split) log in to the first target and
 * clients [split, N) to the remote one, each with its own domain; a chat
 * message to a peer on the other server crosses the two servers' s2s
 * streams, and its latency is still measured end to end by this process.
 *
 * Server XML is parsed with the project's own framer + xmlstage (one xmlstage
 * per thread), TLS is the TLS pipe of tls/pipe.h (client side; the edge's TLS
 * layer is built on it too), so there is one XMPP stack.
 *
 * Threads and ownership: the controller (main thread) owns the options, the
 * phase and the time series.  Each client thread owns a ring and the clients
 * whose index i satisfies i % nthreads == thread id; everything in a client
 * is touched only by its thread, except three fields other threads use in
 * the chat scenario and which are atomics or single-writer:
 *   - online         (atomic, written by the owner, read by senders picking peers)
 *   - inflight       (atomic: the closed-loop window, decremented by whichever
 *                     thread's client received the message)
 *   - pairs          (atomic pointer, published once; then pairs[k].rx_* are
 *                     written only by the thread owning peer k: receiver-side
 *                     sequence tracking of the pair sender -> peer k)
 * In the muc scenario, shared state is in the rooms and the senders' rings:
 *   - bench_room.open, .joined, .failed  (atomics: the owner's thread opens the
 *                     room or gives it up, every occupant's thread counts its join)
 *   - bclient.mring  (allocated before the threads start; slot s of sender i is
 *                     reset by i's thread when it sends, and counted by the
 *                     thread of every occupant receiving that message: atomics)
 * A scenario file (SC_FILE, steps.c) runs users instead of a fixed client
 * list: B.clients is a pool of slots (max_users, or every user the phases
 * start), thread t owns the slots i % T == t and the users u % T == t, and a
 * user takes a free slot of its thread when it arrives and gives it back when
 * its program ends.  Other threads read four fields of a slot, all atomics:
 * online, acct and sess (whom to write to: published before online is set)
 * and gen (the user in the slot: a message or a window receipt for an earlier
 * user of the slot is recognised and not counted for the current one), plus
 * inflight and wfloor (the closed-loop window, as in the chat scenario, and
 * the first message of the chat step it belongs to).
 *
 * Counters go from a thread to the controller as deltas under the thread's
 * mutex (bt_publish / bench_collect); gauges are relaxed atomics.
 *
 * Time: CLOCK_MONOTONIC nanoseconds everywhere (bench_now()); message bodies
 * carry the send time, so latency is measured by the receiving thread of the
 * same process.
 */
#ifndef XEDGE_BENCH_H
#define XEDGE_BENCH_H

#include <liburing.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <ck_ring.h>

#include "bench/hist.h"
#include "core/buf.h"
#include "parser/framer.h"
#include "tls/pipe.h"
#include "tls/tls.h"

#define BENCH_MAX_THREADS 64
#define BENCH_MAX_SOURCES 64
#define BENCH_MAX_PIDS 16
#define BENCH_MAX_CAUSES 48
#define BENCH_MAX_PEERS 64
#define BENCH_MAX_PHASES 64         /* SCN_MAX_PHASES */
#define BENCH_MAX_SESSIONS 64       /* SCN_MAX_SESSIONS */

enum bench_builtin { SC_LOGIN = 0, SC_CHAT, SC_IDLE, SC_CONNECT, SC_MUC, SC_FILE };
enum bench_tls { TLS_MODE_PLAIN = 0, TLS_MODE_STARTTLS, TLS_MODE_DIRECT, TLS_MODE_WS,
		 TLS_MODE_WSS, TLS_MODE_N };
enum bench_mech { MECH_SCRAM_SHA256 = 0, MECH_SCRAM_SHA1, MECH_PLAIN };

/* The run's phases, set by the controller only (bench.phase). */
enum bench_phase {
	PH_LOGIN = 0,  /* clients are started (ramp, concurrency) and log in */
	PH_JOIN,       /* muc: the logged-in clients join their rooms (owners first) */
	PH_STEADY,     /* everyone who could log in did: hold / settle, no new clients */
	PH_CHAT,       /* chat, muc: senders active until chat_end_ns */
	PH_DRAIN,      /* chat: no more sends; receipts still counted */
	PH_CLOSE,      /* every client says goodbye and closes */
	PH_STOP        /* threads exit now, whatever is left */
};

struct bench_opts {
	int scenario, tls, mech;
	unsigned clients, threads, concurrency;
	double ramp;                      /* connections per second, 0: unlimited */
	struct sockaddr_storage target;
	socklen_t target_len;
	struct sockaddr_storage sources[BENCH_MAX_SOURCES];
	socklen_t source_len[BENCH_MAX_SOURCES];
	unsigned nsources;
	const char *host, *domain, *prefix, *password, *sni;
	const char *ws_path;              /* ws, wss: the HTTP path of the upgrade */
	unsigned offset;
	/* --remote: the second server; clients [split, clients) log in there.
	 * Without it split == clients and every client is the first target's. */
	struct sockaddr_storage remote;
	socklen_t remote_len;
	const char *remote_host, *remote_domain;
	uint16_t remote_port;
	unsigned split;
	bool cross;                       /* chat peers only on the other server */
	bool one_way;                     /* with cross: only the first server's clients send */
	bool sm;                          /* XEP-0198: enable stream management, answer <r/> */
	double timeout, login_time, hold, settle, warmup, duration, drain, keepalive;
	double rate;                      /* open loop: msgs/s per client; 0: closed loop */
	unsigned window, body, peers;
	unsigned rooms, room_size;        /* muc: clients = rooms * room_size */
	double join_rate;                 /* muc: joins sent per second at most, 0: unlimited */
	const char *muc_domain;           /* muc: default conference.<domain> */
	pid_t pids[BENCH_MAX_PIDS];
	unsigned npids;
	const char *json, *plot, *scram_cache;
	const char *csv, *html;           /* --csv, --html: the time series and the HTML report */
	int verbose;
};

/* Failure causes, counted by name (e.g. "sasl:not-authorized"). */
struct bench_cause {
	char name[48];
	uint64_t n;
};

/* Counters handed from a thread to the controller: all are deltas. */
struct bench_stats {
	uint64_t started, connected, logged_in, failed, dropped, closed;
	uint64_t sent, recv, sent_meas, recv_meas, dup, reordered, misrouted, window_timeouts;
	uint64_t unexpected;              /* stanzas a simulated client did not expect */
	/* --remote: measured messages between the two servers, by direction
	 * (0: first -> remote, 1: remote -> first); counted like sent_meas,
	 * recv_meas and h_msg_meas, which include them. */
	uint64_t x_sent[2], x_recv[2];
	struct hist h_cross[2];
	uint64_t bytes_in, bytes_out;
	uint64_t first_start_ns, last_login_ns;   /* min / max, 0 when none */
	struct hist h_connect, h_tls, h_auth, h_login;
	struct hist h_ws;                 /* ws, wss: connect started -> the 101 checked */
	struct hist h_msg;                /* every received message (time series) */
	struct hist h_msg_meas;           /* messages sent inside the measured window */
	/* muc: joins, and per message the deliveries expected (the room's occupants
	 * when it was sent), the messages every occupant received (complete) and
	 * the time from the send to the last occupant's copy (h_last); recv_meas
	 * and h_msg_meas count deliveries. */
	uint64_t joined, join_failed, expected, expected_meas, complete_meas;
	uint64_t recv_window;             /* muc: deliveries received inside the measured window,
	                                     whenever sent (the rate a saturated server achieves) */
	struct hist h_join, h_last;
	/* scenario files (steps.c): arrivals by phase, users by session, the
	 * transactions the -s scenarios do not record, replies, the time an
	 * arrival waited for a login slot (concurrency) */
	uint64_t arrived, rejected, waited, users_done;
	uint64_t arrived_ph[BENCH_MAX_PHASES];
	uint64_t sess_started[BENCH_MAX_SESSIONS], sess_done[BENCH_MAX_SESSIONS];
	uint64_t asked, replies, answered, gc_sent, gc_recv, pings, published;
	struct hist h_bind, h_roster, h_ping, h_publish, h_wait;
	/* XEP-0198 resume steps: streams resumed (h_resume: the reconnect's start to
	 * <resumed/>), our stanzas sent again after one, chat messages received after
	 * one that were sent before it (held by the server meanwhile) */
	uint64_t resumed, resent, resume_recv;
	struct hist h_resume;
	struct bench_cause causes[BENCH_MAX_CAUSES];
	unsigned ncauses;
};

void bench_stats_add(struct bench_stats *into, const struct bench_stats *from);
void bench_stats_cause(struct bench_stats *s, const char *name, uint64_t n);

/* ---- one simulated client -------------------------------------------------- */

/* The client state machine (client.c performs every transition in bc_set_state). */
enum bc_state {
	BC_NEW = 0,    /* not started yet */
	BC_CONNECT,    /* TCP connect in flight */
	BC_TLS,        /* TLS handshake (Direct TLS, or after <proceed/>) */
	BC_WS,         /* ws, wss: the HTTP upgrade is out, waiting for the 101 */
	BC_FEATURES,   /* our stream header is out: waiting for the server's header and features */
	BC_STARTTLS,   /* <starttls/> sent, waiting for <proceed/> */
	BC_SASL,       /* <auth/> sent: challenges until <success/> */
	BC_BIND,       /* bind request sent */
	BC_ROSTER,     /* initial presence and roster get sent, waiting for the roster */
	BC_JOIN,       /* muc: logged in; the room join is sent (or waits for the room to
	                  open, BF_JOIN_WAIT), waiting for the self-presence */
	BC_ONLINE,     /* logged in (connect scenario: stream open) */
	BC_RESUME,     /* scenario files: <resume/> sent on a new connection, waiting for
	                  <resumed/> or <failed/> (the executor's timer bounds it) */
	BC_CLOSING,    /* our </stream:stream> is out: waiting for theirs or EOF */
	BC_DONE        /* closed, or failed before a socket existed */
};
const char *bc_state_str(int s);

/* bclient.flags */
#define BF_TLS        0x0001  /* TLS is established */
#define BF_AUTHED     0x0002  /* SASL succeeded */
#define BF_FAILED     0x0004  /* counted as failed */
#define BF_CLOSED     0x0008  /* cancel + close submitted (or no socket) */
#define BF_RECV_ARMED 0x0010
#define BF_SENDING    0x0020
#define BF_PEER_GONE  0x0040  /* EOF or error: write nothing more */
#define BF_DIRTY      0x0080  /* on the thread's flush list */
#define BF_COUNTED    0x0100  /* counted as logged in (or failed): resolved */
#define BF_CONNECTED  0x0200  /* counted in the connected gauge */
#define BF_INPROGRESS 0x0400  /* counted against --concurrency */
#define BF_READY      0x0800  /* on the thread's chat ready list */
#define BF_SENDER     0x1000  /* chat: online with peers, counted in bthread.nsenders */
#define BF_SM         0x2000  /* XEP-0198 enabled: stanzas received are counted in sm_h */
#define BF_JOIN_WAIT  0x4000  /* muc: in BC_JOIN, waiting for the owner to open the room */
#define BF_JOINED     0x8000  /* muc: an occupant (self-presence received), counted in joined */
#define BF_WS        0x10000  /* WebSocket upgraded: output goes out as frames (wsconn.c) */
#define BF_LINGER    0x20000  /* bt_close sends what is queued before closing the slot */
#define BF_KEEP_SM   0x40000  /* a resume step's disconnect: the XEP-0198 state (smq, sm_h)
                                 outlives this connection */

/* Closed-loop pair state (chat): the sender's k-th peer. */
struct bc_pair {
	uint32_t peer;      /* client index */
	uint32_t tx_seq;    /* last sequence sent to this peer (sender thread) */
	uint32_t rx_last;   /* highest sequence received (peer's thread) */
	uint32_t pad;
	uint64_t rx_win;    /* bit i: rx_last - i was received (peer's thread) */
};

struct bthread;
struct bs_user;
struct bs_thread;
struct bs_fan;
struct scram_client;
struct bm_slot;
struct xs_stanza;
struct bw_conn;

struct bclient {
	uint32_t idx;            /* global index: user prefix + (offset + idx) */
	uint32_t slot;           /* direct descriptor, or UINT32_MAX */
	uint32_t flags;          /* BF_* */
	uint8_t state;           /* enum bc_state */
	uint8_t refs;            /* in-flight io_uring operations */
	uint8_t nsd;             /* the server header's namespace declarations (bthread.nsd) */
	uint8_t npeers;
	uint8_t sasl_step;       /* SCRAM: 0 auth sent, 1 client-final sent, 2 server verified */
	uint8_t retries;         /* connect retries with a wider port window */
	uint8_t tmode;           /* enum bench_tls of this connection */
	_Atomic uint8_t online;  /* BC_ONLINE, visible to other threads */
	struct framer fr;
	struct buf in;           /* plaintext not yet consumed (an incomplete item) */
	struct buf out;          /* wire bytes queued behind the send in flight */
	struct buf sending;      /* wire bytes of the send in flight (immutable) */
	struct tlsp tp;          /* TLS: the session (NULL until TLS starts) and its plaintext */
	struct bw_conn *ws;      /* ws, wss: the WebSocket layer (NULL otherwise; wsconn.c) */
	struct scram_client *scram;  /* only during SASL */
	uint64_t t_start;        /* connect started (ns) */
	uint64_t t_stream;       /* first stream header after TLS (ns): auth latency start */
	uint64_t deadline;       /* step timer (ns); 0: none */
	uint64_t ka_due;         /* next keepalive (ns); 0: none */
	struct bclient *tnext, *tprev;  /* step timer FIFO */
	struct bclient *knext, *kprev;  /* keepalive FIFO */
	struct bclient *dnext;          /* flush list */
	_Atomic int32_t inflight;       /* chat closed loop: messages not yet received */
	uint32_t sm_h;                  /* XEP-0198: stanzas received since <enabled/> */
	struct smq *smq;                /* scenario files, XEP-0198: stanzas sent, their copies
	                                   until acknowledged, the resumption id (bench/smq.h) */
	uint64_t last_send_ns;
	/* chat: npeers entries, published with a release store once filled, so
	 * a receiver on another thread (acquire) sees npeers and the peers */
	struct bc_pair *_Atomic pairs;
	/* muc: the fan-out of this client's last BM_RING messages (see muc.c) */
	struct bm_slot *mring;
	uint32_t mseq;                  /* muc: messages sent (owner thread) */
	/* scenario files: the account (users.offset + acct), the session and the
	 * user (arrival number) in this slot, published before online; the
	 * executor's state of the user (owner thread only) */
	_Atomic uint32_t acct, gen;
	_Atomic uint32_t wfloor;        /* closed-loop chat: the first message (seq) of the step
	                                   whose window inflight counts */
	_Atomic uint16_t sess;
	struct bs_user *bs;
	struct bs_fan *_Atomic fan;     /* group chat: the completion ring of its messages */
};

/* ---- one client thread --------------------------------------------------- */

#define BT_NSD_MAX 8

struct bthread {
	int id;
	pthread_t th;
	struct io_uring ring;
	int ring_fd;
	uint32_t nclients;       /* clients owned: idx = id, id + T, id + 2T, ... */
	uint32_t nstarted;       /* owned clients started so far (in order) */

	uint32_t *free_slots, nfree, nslots;

	struct io_uring_buf_ring *br;
	uint8_t *bufmem;
	unsigned nbufs, bufsize;

	struct xmlstage *xs;
	uint8_t *scratch;        /* TLS plaintext */
	char *nsd[BT_NSD_MAX];   /* interned server header namespace declarations */
	size_t nsd_len[BT_NSD_MAX];
	unsigned nnsd;

	struct bclient *thead, *ttail;   /* step timers, deadline order (same timeout for all) */
	struct bclient *khead, *ktail;   /* keepalives, due order */
	struct bclient *dirty;

	/* Chat, closed loop: local ready list, and rings of client pointers other
	 * threads hand over (in[j]: produced only by thread j). */
	struct bclient **ready;
	uint32_t nready;
	ck_ring_t *in;
	ck_ring_buffer_t **in_buf;
	uint8_t wake_pending[BENCH_MAX_THREADS];
	atomic_int asleep;
	/* Chat, open loop */
	uint32_t nsenders;       /* --one-way: owned clients online with peers (this thread only);
	                            muc: owned occupants */
	uint32_t join_waiting;   /* muc: owned clients with BF_JOIN_WAIT */
	uint32_t rooms_seen;     /* muc: B.rooms_opened when last scanned */
	bool join_scan;          /* muc: scan the waiting clients at the next tick */
	uint32_t rr;
	double budget;
	uint64_t last_tick;
	uint64_t rng;

	/* Gauges (relaxed atomics read by the controller) */
	atomic_uint g_connected, g_online, g_inprogress, g_live;
	atomic_int done;         /* the thread has exited its loop */
	int start_rc;
	atomic_int started;

	struct bs_thread *bs;     /* scenario files: the executor's per-thread state */

	struct bench_stats local; /* this thread only */
	uint64_t last_publish;
	pthread_mutex_t mu;       /* guards shared */
	struct bench_stats shared;
};

/* muc: one room (B.rooms[idx / room_size]). */
struct bench_room {
	_Atomic uint32_t open;           /* the owner saw it unlocked: others may join */
	_Atomic uint32_t joined;         /* occupants whose self-presence came */
	_Atomic uint32_t failed;         /* the owner failed before opening it: nobody joins */
};

/* The whole run. */
struct bench {
	struct bench_opts o;
	struct bclient *clients;
	struct bthread *threads;
	unsigned nthreads;
	atomic_int phase;                /* enum bench_phase */
	_Atomic uint64_t chat_start_ns, warm_end_ns, chat_end_ns;
	uint64_t t0;
	uint32_t ring_slots;             /* direct descriptors per ring */
	uint16_t port_lo, port_hi;       /* ip_local_port_range; 0: unknown */
	uint32_t run_id;                 /* in message ids: this run's messages only */
	struct bench_room *rooms;        /* muc: o.rooms of them */
	_Atomic uint32_t rooms_opened;   /* muc: bumped when a room opens (waiters rescan) */
	_Atomic uint64_t joins_sent;     /* muc: joins sent by all threads (--join-rate) */
	_Atomic uint64_t join_start_ns;  /* muc: when PH_JOIN began */
	const struct bench_scenario *scn;/* SC_FILE: the scenario file */
};

extern struct bench B;

static inline uint64_t bench_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline struct bthread *bc_thread(const struct bclient *c)
{
	return &B.threads[c->idx % B.nthreads];
}

/* Which server client idx logs in to: 0 the first target, 1 --remote. */
static inline unsigned bc_side(uint32_t idx)
{
	return idx >= B.o.split;
}

static inline const char *bc_domain(uint32_t idx)
{
	return bc_side(idx) ? B.o.remote_domain : B.o.domain;
}

struct bench_scenario;

/* thread.c */
int bt_start(struct bthread *t);                 /* spawn; waits for its set-up; 0 or -errno */
void bt_connect(struct bthread *t, struct bclient *c);
void bt_send(struct bclient *c, const void *data, size_t len);  /* queue wire bytes */
void bt_flush_later(struct bclient *c);
void bt_close(struct bclient *c);               /* hard close: cancel + close the slot (with
                                                   BF_LINGER: once the queued bytes are sent) */
void bt_timer(struct bclient *c, uint64_t deadline);   /* 0 removes */
void bt_keepalive(struct bclient *c, uint64_t due);    /* 0 removes */
void bt_ready(struct bthread *t, struct bclient *sender);  /* sender's window opened */
void bt_publish(struct bthread *t, bool force);

/* client.c */
int bc_init(void);                                        /* after options: 0 or -1 */
void bc_thread_exit(void);                               /* free the thread's buffers */
void bc_start(struct bthread *t, struct bclient *c);      /* after the TCP connect */
void bc_connected(struct bthread *t, struct bclient *c, int res);
void bc_input(struct bthread *t, struct bclient *c, const uint8_t *data, size_t len);
void bc_eof(struct bthread *t, struct bclient *c, int err);
void bc_timeout(struct bthread *t, struct bclient *c);
void bc_keepalive(struct bthread *t, struct bclient *c);
void bc_flush(struct bthread *t, struct bclient *c);      /* encrypt pending plaintext */
void bc_fail(struct bthread *t, struct bclient *c, const char *cause, const char *detail);
void bc_goodbye(struct bthread *t, struct bclient *c);    /* graceful close */
void bc_released(struct bthread *t, struct bclient *c);   /* the slot is closed and idle */
void bc_chat_setup(struct bthread *t, struct bclient *c);
unsigned bc_chat_send(struct bthread *t, struct bclient *c, unsigned max);
int bc_user(const struct bclient *c, char *out, size_t cap); /* localpart */
void bc_out(struct bclient *c, const void *data, size_t len);  /* queue XMPP plaintext */
void bc_set_state(struct bclient *c, int s);             /* with the step timer */
void bc_set_online(struct bthread *t, struct bclient *c, bool on);
void bc_logged_in(struct bthread *t, struct bclient *c); /* counted: login done */
void bc_sasl_begin(struct bthread *t, struct bclient *c, int mech);   /* MECH_* */
void bc_iq_reply(struct bclient *c, const struct xs_stanza *s);  /* answer a get/set */
const char *bc_mech_name(int mech);
void bc_lower_out(struct bclient *c, const void *data, size_t len);  /* under WebSocket: TLS or TCP */
void bc_xmpp_input(struct bthread *t, struct bclient *c, const uint8_t *p, size_t len);
void bc_ws_ready(struct bthread *t, struct bclient *c);  /* the 101 is in: open the stream */

/* wsconn.c: XMPP over WebSocket (RFC 7395), the layer between client.c and TLS/TCP */
void bw_begin(struct bthread *t, struct bclient *c);      /* TCP (wss: TLS) is up: the upgrade */
void bw_input(struct bthread *t, struct bclient *c, const uint8_t *p, size_t len);  /* from below */
void bw_write(struct bclient *c, const void *xml, size_t len);   /* whole elements: text frames */
void bw_ping(struct bclient *c);                          /* a keepalive (no whitespace over ws) */
/* A close frame with code (once), written before the slot closes (BF_LINGER). */
void bw_close(struct bthread *t, struct bclient *c, uint16_t code);
void bw_free(struct bclient *c);                          /* the connection is gone */
void bw_thread_exit(void);

/* muc.c */
int bm_init(void);                                        /* after options: 0 or -1 */
void bm_free(void);
void bm_thread_exit(void);                                /* free the thread's message buffer */
void bm_failed(struct bclient *c);                        /* c is failing (its thread) */
void bm_join(struct bthread *t, struct bclient *c);       /* PH_JOIN: wait for a turn to join */
void bm_join_tick(struct bthread *t, uint64_t now);       /* PH_JOIN: send the joins now allowed */
bool bm_send(struct bthread *t, struct bclient *c);       /* one groupchat message */
int bm_stanza(struct bthread *t, struct bclient *c, const struct xs_stanza *s,
	      const uint8_t *p, size_t len);                 /* 1 handled (or failed), 0 not ours */
bool bm_status(const uint8_t *p, size_t len, int code);  /* <status code='N'/> in a presence */
void bm_error_condition(const uint8_t *p, size_t len, char *out, size_t cap);  /* RFC 6120 §8.3.3 */

/* steps.c, steps_msg.c (scenario files) */
int bs_init(const char *path, char *err, size_t errlen);   /* before the options' overrides */
void bs_slice(unsigned index, unsigned count);   /* distributed: every count-th user */
int bs_prepare(void);             /* after them: pool size in B.o.clients; 0 or -1 */
void bs_free(void);
int bs_thread_init(struct bthread *t);
void bs_thread_exit(struct bthread *t);
uint64_t bs_tick(struct bthread *t, uint64_t now);        /* arrivals, timers; next wake (ns) */
int bs_features(struct bthread *t, struct bclient *c, const uint8_t *p, size_t len);
int bs_stanza(struct bthread *t, struct bclient *c, const struct xs_stanza *s,
	      const uint8_t *p, size_t len);
void bs_sm(struct bthread *t, struct bclient *c, const struct xs_stanza *s);
void bc_sm_enable(struct bthread *t, struct bclient *c, bool resume);   /* sends <enable/> */
void bc_sm_resume(struct bthread *t, struct bclient *c);  /* sends <resume/>: BC_RESUME */
void bs_failed(struct bthread *t, struct bclient *c, const char *cause);  /* counts it */
void bs_released(struct bthread *t, struct bclient *c);  /* the connection is gone */
bool bs_finished(uint64_t now);   /* controller: every user done, or the duration cap */
bool bs_drain_begin(uint64_t now);  /* controller, at the end: true to drain (messages due) */
bool bs_drain_over(uint64_t now);   /* controller: the drain is over (all arrived, or its time) */
void bs_summary(FILE *f, const struct bench_stats *s);
void bs_json(FILE *f, const struct bench_stats *s);
struct json_t;
struct json_t *bs_json_object(const struct bench_stats *s);   /* bs_json's object (owned) */
const char *bs_name(void);
void bs_defaults(struct bench_opts *o, const char **host, unsigned *port);
const struct sockaddr *bs_addr(const struct bclient *c, socklen_t *len);
struct thr;
int bs_thresholds(struct thr *out, unsigned *n, unsigned max);
uint64_t bs_alive(void);
uint64_t bs_planned(void);        /* users this process's phases start */
uint64_t bs_msg_window_end(void); /* latest planned end of a message step; 0: none */

/* keycache.c */
struct scram_keys;
int keycache_open(const char *path, const char *password);
bool keycache_get(int hash, const uint8_t *salt, size_t slen, uint32_t iter, struct scram_keys *k);
void keycache_put(int hash, const uint8_t *salt, size_t slen, uint32_t iter,
		  const struct scram_keys *k);
int keycache_close(void);   /* appends the new entries to the file; returns how many */

#endif
