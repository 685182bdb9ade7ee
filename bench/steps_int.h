/*
 * steps_int — what the scenario executor's files share (steps.c: loading,
 * the timer heap, users, the connection steps, the interpreter, the thread's
 * loop, the report; steps_msg.c: chat, group chat, rooms, the stanzas
 * received); not for other modules.  See bench/steps.c for the executor's
 * contract.  Everything here runs on the thread that owns the user given.
 */
#ifndef XEDGE_BENCH_STEPS_INT_H
#define XEDGE_BENCH_STEPS_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "bench/bench.h"
#include "bench/plan.h"
#include "bench/scenario.h"
#include "parser/xmlstage.h"

#define FAN_RING 256u              /* group-chat messages per sender tracked to completion */
#define ROOMS_MAX 65536u           /* rooms counted for room_fanout (a power of two) */

struct bs_fan {
	_Atomic uint32_t seq;      /* the message of this slot (0: none) */
	_Atomic uint32_t count;    /* copies received */
	_Atomic uint64_t max_ns;
	_Atomic uint32_t expect;   /* our occupants when it was sent */
};

struct bs_room {
	_Atomic uint64_t hash;     /* FNV-1a of the bare room JID; 0: free */
	_Atomic uint32_t occupants;
};

/* What a user waits for (bs_user.wait). */
enum wait {
	W_NONE = 0,
	W_RUN,          /* run the program on (yielded, or a connect to start) */
	W_RELEASED,     /* its connection is gone: go on after drop/logout, or end */
	W_SERVER,       /* a stanza (the step's answer); the timer is the step's timeout */
	W_TIME,         /* think, idle: the timer ends the step */
	W_SEND,         /* chat / groupchat: the timer paces, or bounds a wait */
	W_REPLY,        /* reply step: the timer ends it */
	W_BARRIER,
	W_JOIN_RETRY,   /* the room was locked: the timer sends the join again */
	W_CLOSE,        /* drop, logout: the connection's end goes on */
	W_PARKED,       /* idle or reply until the run ends */
	W_DRAIN,        /* logging out: one-way messages still due to it may arrive (drain) */
	W_RECONNECT,    /* resume: offline after the disconnect; the timer reconnects */
};

/* Where a resume step is (bs_user.resuming). */
enum resuming {
	RS_NONE = 0,
	RS_DROP,        /* the connection is being closed abruptly (BF_KEEP_SM) */
	RS_OFFLINE,     /* closed; the reconnect waits for the step's `offline` */
	RS_CONNECT,     /* the new connection: transport, stream, SASL, <resume/> */
};

/* Stream facts of the current connection (bs_user.sf). */
#define SF_OPEN   0x01
#define SF_AUTHED 0x02
#define SF_BOUND  0x04
#define SF_ROOM   0x08
#define SF_SM     0x10

/* Offered features (bs_user.feat). */
#define FT_PLAIN  0x01
#define FT_SHA1   0x02
#define FT_SHA256 0x04
#define FT_BIND   0x08
#define FT_SM     0x10

struct bs_user {
	uint64_t u;                /* arrival number */
	uint32_t session, pc;
	struct bp_loops loops;
	uint8_t wait;              /* enum wait */
	uint8_t sf, feat;
	bool active;               /* the slot holds a user */
	bool ending;               /* failed (counted) or over: free the slot at release */
	bool step_cause;           /* the failure being counted is a step's own cause */
	bool parked;
	uint8_t resuming;          /* enum resuming */
	uint8_t mech;              /* MECH_* of the auth step: a resume authenticates the same way */
	uint64_t t_resumed;        /* the last <resumed/> came (ns); 0: never */
	uint64_t wake;             /* the timer heap's time for this user; 0: none */
	uint64_t t_step;           /* the current step began (or its request left) */
	uint64_t until;            /* the current step's end by duration; 0: none */
	uint64_t next_due;         /* open loop: the next send */
	uint32_t n;                /* the current step's messages / replies / items so far */
	uint32_t seq;              /* chat and group-chat messages sent (ids) */
	uint32_t await_seq;        /* chat wait_reply: the question waiting for its answer */
	uint32_t gc_inflight;      /* groupchat closed loop: own copies not back yet */
	uint32_t npeers;
	uint32_t peer[BENCH_MAX_PEERS];      /* slot */
	uint32_t peer_gen[BENCH_MAX_PEERS];  /* its user then */
	uint16_t room_len;         /* bare room JID length in room */
	uint32_t room_idx;         /* in bs_room_tab[], counted as an occupant; UINT32_MAX: none */
	char room[320];            /* room@service/nick of the room joined */
	/* drain: one-way chat messages addressed to this slot's user (counted by
	 * their senders, any thread), the last one's send time, and those it
	 * received (its thread writes, the controller reads) */
	_Atomic uint32_t due, got;
	_Atomic uint64_t due_ns;
};

struct heap_ent {
	uint64_t when;
	uint32_t idx;
};

struct bs_thread {
	struct heap_ent *heap;
	uint32_t nheap, capheap;
	uint32_t *free, nfree;     /* free slots */
	uint64_t next_u;           /* the next user of this thread to arrive */
	bool arrivals_done, conc_blocked;
	uint64_t unblocked;        /* when the last concurrency block ended */
	struct bp_wrr wrr;
	uint32_t nbarrier;         /* users of this thread at a barrier */
	char pre[24];              /* "<run>." of this run's chat ids */
	int prel;
	uint64_t rng;
	char *buf;                 /* message assembly */
	size_t cap;
};

/* The run's values both files read (steps.c sets them before the threads start). */
extern uint64_t bs_tmo;                  /* the step timeout (--timeout wins) */
extern struct bs_room *bs_room_tab;      /* room_fanout: occupants per room (ROOMS_MAX) */

/* steps.c: the thread's random numbers, the timer heap, users, text helpers */
uint64_t bs_ns_of(double s);
uint64_t bs_rnd(struct bs_thread *b);
/* Wake c at `when` (replaces its earlier wake-up) for what it waits for (enum wait). */
void bs_wake_at(struct bthread *t, struct bclient *c, uint64_t when, int why);
void bs_wait_for(struct bclient *c, int why);          /* no timer */
const struct scn_step *bs_step_of(const struct bs_user *u);   /* NULL: the program is over */
uint32_t bs_acct_of(uint64_t u);
void bs_out(struct bclient *c, const char *s, int n);  /* n <= 0: nothing */
void bs_fail(struct bthread *t, struct bclient *c, const char *cause);  /* the step's own cause */
void bs_step_done(struct bthread *t, struct bclient *c);   /* the step is complete: run on */
bool bs_streq(const struct xs_str *s, const char *lit);
bool bs_starts(const struct xs_str *s, const char *lit);
/* A pattern's placeholders {n} {i} {user} {run}; -1 when it does not fit. */
int bs_expand(struct bclient *c, const char *pat, uint32_t room_n, char *outp, size_t cap);
char *bs_msgbuf(struct bthread *t, size_t need);       /* the thread's buffer; NULL: no memory */
/* One item of the publish step (its answer, in steps_msg.c, sends the next). */
int bs_publish_one(struct bthread *t, struct bclient *c, const struct scn_step *st);

/* steps_msg.c: the chat, groupchat and join steps, run by the interpreter and
 * on their timers: 1 the step is over, 0 it waits, -1 failed (counted). */
int bs_chat_pump(struct bthread *t, struct bclient *c);
void bs_gc_window(uint64_t now, uint64_t duration_ns);   /* a groupchat step starts */
uint64_t bs_first_due(struct bthread *t, uint64_t now, double rate);  /* open loop's first send */
int bs_do_chat(struct bthread *t, struct bclient *c, const struct scn_step *st);
int bs_gc_pump(struct bthread *t, struct bclient *c);
int bs_join_send(struct bthread *t, struct bclient *c, const struct scn_step *st);
int bs_do_join(struct bthread *t, struct bclient *c, const struct scn_step *st);
/* u is no longer one of its room's occupants (left, dropped, failed, ended). */
void bs_room_left(struct bs_user *u);
/* A one-way message to slot p was sent at now / was received by c (drain). */
void bs_due(uint32_t p, uint64_t now);
void bs_got(struct bthread *t, struct bclient *c);

/* The run as steps_report.c reads it (steps.c owns it; read after the threads
 * are done). */
struct bs_view {
	const struct bench_scenario *S;
	const struct bp_plan *plan;
	const uint64_t *sess_users;     /* users of each session the phases start */
	uint64_t my_total, max_users;   /* this slice's */
	unsigned slice_i, slice_n;
	uint64_t drain_t0, drain_t1, drain_due0, drain_due1;
};
void bs_view(struct bs_view *v);

#endif
