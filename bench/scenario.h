/*
 * scenario — xedge-bench's scenario files (YAML) as a program per session
 * type.  Reference of every key and step: docs/bench.md, "Scenario files".
 *
 * scn_load() reads the file once into a struct bench_scenario: the target and
 * account defaults, the arrival phases, the session types with their weights,
 * and each session's steps as ONE flat array (struct scn_step, 48 bytes): a
 * loop is a step whose body is the steps that follow it up to u.loop.end, so
 * an interpreter needs a program counter and a small stack of loop frames
 * (depth at most SCN_MAX_DEPTH), never a tree walk.  Every string lives in one
 * pool (s->strings) and steps refer to it by offset (scn_str()); offset 0 is
 * the empty string, which means "not given" wherever a default applies.
 *
 * Every value is checked where it is read and the first problem is returned
 * as "FILE:LINE: reason" (unknown keys included); then each session's steps
 * are checked in order for what they need (a stream, authentication, a bound
 * resource, XEP-0198, a joined room), loop bodies as run twice.  A loaded
 * scenario is immutable; it owns all its memory (scn_free()).
 *
 * Times are nanoseconds, rates per second, sizes bytes.  This module only
 * parses and describes: the executor (bench/steps.c) interprets the program.
 */
#ifndef XEDGE_BENCH_SCENARIO_H
#define XEDGE_BENCH_SCENARIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define SCN_MAX_DEPTH 8          /* loop nesting */
#define SCN_MAX_STEPS 1024       /* steps of one session, loop bodies included */
#define SCN_MAX_SESSIONS 64
#define SCN_MAX_PHASES 64
#define SCN_MAX_THRESHOLDS 64
#define SCN_MAX_STRING 1024      /* bytes of one string value */
#define SCN_MAX_BODY (256 * 1024) /* bytes of one generated body */

enum scn_transport {
	SCN_TR_DEFAULT = 0,      /* connect: the target's; target: starttls */
	SCN_TR_PLAIN,            /* TCP, no TLS */
	SCN_TR_STARTTLS,         /* RFC 6120 §5 */
	SCN_TR_TLS,              /* Direct TLS (XEP-0368) */
	SCN_TR_WS,               /* RFC 7395 over plain HTTP */
	SCN_TR_WSS,              /* RFC 7395 over TLS */
};

enum scn_mech { SCN_MECH_SCRAM_SHA256, SCN_MECH_SCRAM_SHA1, SCN_MECH_PLAIN };

enum scn_op {
	SCN_CONNECT,     /* open the stream (TCP/TLS/WebSocket, header, features) */
	SCN_AUTH,        /* SASL, then the stream restart */
	SCN_BIND,        /* resource binding */
	SCN_ROSTER,      /* roster get, waits for the result */
	SCN_PRESENCE,    /* broadcast presence */
	SCN_SM,          /* XEP-0198 <enable/>, waits for <enabled/> */
	SCN_CHAT,        /* one-to-one messages */
	SCN_REPLY,       /* answer every chat message received */
	SCN_WAIT,        /* wait for a message or presence */
	SCN_PING,        /* XEP-0199 ping to the server, waits for the result */
	SCN_JOIN,        /* XEP-0045 join, waits for the self-presence */
	SCN_GROUPCHAT,   /* messages to the joined room */
	SCN_LEAVE,       /* unavailable presence to the room */
	SCN_PUBLISH,     /* XEP-0060 / XEP-0163 publish */
	SCN_IDLE,        /* stay connected, send nothing but keepalives */
	SCN_THINK,       /* pause for a random time */
	SCN_DROP,        /* close the socket without </stream:stream> */
	SCN_RESUME,      /* drop the connection, reconnect and resume (XEP-0198) */
	SCN_LOGOUT,      /* unavailable presence, </stream:stream>, close */
	SCN_BARRIER,     /* wait until u.barrier.users users have reached this step */
	SCN_LOOP,        /* repeat the steps up to u.loop.end */
	SCN_OP_COUNT
};

enum scn_to { SCN_TO_RANDOM, SCN_TO_PEER, SCN_TO_SELF, SCN_TO_SESSION };
enum scn_show { SCN_SHOW_NONE, SCN_SHOW_AWAY, SCN_SHOW_CHAT, SCN_SHOW_DND, SCN_SHOW_XA };
enum scn_wait_for { SCN_WAIT_MESSAGE, SCN_WAIT_PRESENCE };
enum scn_pub_to { SCN_PUB_PEP, SCN_PUB_SERVICE };
enum scn_dist { SCN_THINK_FIXED, SCN_THINK_UNIFORM, SCN_THINK_EXP };

/* chat and groupchat: send `count` messages or for `duration`, whichever
 * ends first (neither given: one message); rate 0 is a closed loop of
 * `window` messages in flight. */
struct scn_send {
	double rate;             /* messages per second, 0: closed loop */
	uint64_t duration_ns;    /* 0: not bounded by time */
	uint32_t count;          /* 0: not bounded by count */
	uint32_t body;           /* body bytes */
	uint32_t window;         /* closed loop: messages in flight */
	uint32_t peers;          /* chat, to random/session: among this many peers */
	uint16_t to_session;     /* chat, to SCN_TO_SESSION: index in s->sessions */
	uint8_t to;              /* chat: enum scn_to */
	bool wait_reply;         /* chat: each message waits for its answer */
};

struct scn_step {
	uint8_t op;              /* enum scn_op */
	uint8_t depth;           /* loops around this step */
	uint16_t pad_;
	uint32_t line;           /* in the file, for errors and reports */
	union {
		struct { uint8_t transport; } connect;          /* enum scn_transport */
		struct { uint8_t mech; } auth;                  /* enum scn_mech */
		struct { uint32_t resource; } bind;             /* pattern; 0: server's */
		struct { uint8_t show; int8_t priority; uint32_t status; } presence;
		struct { bool resume; } sm;
		struct scn_send send;                           /* chat, groupchat */
		struct { uint64_t duration_ns; uint32_t count; } reply;   /* 0, 0: until the end */
		struct { uint8_t what; uint64_t timeout_ns; } wait;
		struct { uint64_t timeout_ns; } ping;
		struct {
			uint32_t room;       /* pattern: {n} {user} {i} {run} */
			uint32_t nick;       /* pattern */
			uint32_t rooms;      /* {n} takes values 0 .. rooms-1 */
			uint32_t per_room;   /* occupants per room; 0: round robin */
			uint32_t history;    /* <history maxstanzas/> */
		} join;
		struct { uint32_t node; uint32_t items; uint32_t body; uint8_t to; } publish;
		struct { uint64_t duration_ns; } idle;          /* 0: until the end */
		struct { uint8_t dist; uint64_t a_ns, b_ns; } think;  /* fixed a; uniform [a,b]; exp mean a */
		struct { uint64_t timeout_ns, offline_ns; } resume;   /* offline: before the reconnect */
		struct {
			uint32_t users;      /* 0: every user the phases start */
			uint64_t timeout_ns; /* then go on anyway (counted); default 5m */
		} barrier;
		struct {
			uint32_t end;        /* index after the body; the body starts at this step + 1 */
			uint32_t count;      /* rounds; 0: bounded by duration only */
			uint64_t duration_ns;/* 0: bounded by count only; checked between rounds */
		} loop;
	} u;
};

struct scn_session {
	uint32_t name;           /* string offset */
	uint32_t line;
	double weight;           /* as written */
	double share;            /* weight / sum of weights */
	struct scn_step *steps;
	uint32_t nsteps;
};

/* An arrival phase: users arrive at a rate going linearly from rate0 to rate1
 * over duration_ns; a burst (rate0 = rate1 = INFINITY, duration 0) starts
 * `users` at once.  users != 0 also caps a timed phase. */
struct scn_phase {
	double rate0, rate1;     /* users per second */
	uint64_t duration_ns;
	uint32_t users;
	uint32_t line;
};

struct scn_threshold {
	char *text;              /* as written, in s->strings (not separately allocated) */
	unsigned line;
};

/* Where to connect: each field may be overridden from the command line; a
 * string offset 0 or a port 0 means the documented default. */
struct scn_target {
	uint32_t host;           /* numeric IPv4/IPv6; default 127.0.0.1 */
	uint32_t domain;         /* default localhost */
	uint32_t sni;            /* default: the domain */
	uint32_t ws_path;        /* default /xmpp-websocket */
	uint32_t muc_domain;     /* default conference.<domain> */
	uint32_t pubsub;         /* default pubsub.<domain> */
	uint16_t port;           /* default per transport: 5222, 5223, 5280, 5443 */
	uint8_t tls;             /* enum scn_transport; SCN_TR_DEFAULT: starttls */
};

struct scn_users {
	uint32_t prefix;         /* accounts <prefix><offset + i>@domain; default bench */
	uint32_t password;       /* default pw */
	uint32_t offset;
	uint32_t count;          /* the pool; 0: one account per arrival */
};

struct bench_scenario {
	char *path;              /* the file, or scn_load_mem's name */
	uint32_t name, description;
	struct scn_target target;
	struct scn_users users;
	struct scn_phase *phases;
	uint32_t nphases;
	uint32_t max_users;      /* users alive at once; 0: no cap */
	uint32_t concurrency;    /* logins in progress at once; 0: no cap */
	uint64_t duration_ns;    /* cap on the run; 0: phases and sessions end it */
	uint64_t timeout_ns;     /* bound on every step that waits for the server */
	uint64_t keepalive_ns;   /* whitespace keepalive; 0: none */
	uint64_t warmup_ns;      /* measurements start after this */
	uint64_t drain_ns;       /* after the end: wait for messages in flight */
	struct scn_session *sessions;
	uint32_t nsessions;
	struct scn_threshold *thresholds;
	uint32_t nthresholds;
	char *strings;           /* the pool: NUL-terminated strings, offset 0 is "" */
	uint32_t strings_len, strings_cap;
};

/* Load the file at path into *s (zeroed first).  0 on success; -1 with
 * "FILE:LINE: reason" in err (s is then empty: nothing to free). */
int scn_load(const char *path, struct bench_scenario *s, char *err, size_t errlen);

/* The same from memory (len bytes, need not be NUL-terminated); name stands
 * for the file in errors. */
int scn_load_mem(const void *data, size_t len, const char *name, struct bench_scenario *s,
		 char *err, size_t errlen);

void scn_free(struct bench_scenario *s);

/* ---- variables (--var NAME=VALUE): docs/bench.md, "Variables" ----------------
 * Before it is parsed, a file's text has ${NAME} replaced by the variable's
 * value and ${NAME:-DEFAULT} by the value, or DEFAULT when NAME is not set;
 * "$$" stands for one "$".  Values and defaults hold no newline, so every
 * line keeps its number.  A ${NAME} whose variable is not set, a malformed
 * reference and a variable the file never names are errors
 * ("FILE:LINE: reason"; line 0 names no line: "FILE: reason").  NAME is a
 * letter or '_' then letters, digits and '_', at most SCN_VAR_NAME bytes. */
#define SCN_MAX_VARS 64
#define SCN_VAR_NAME 64
#define SCN_VAR_VALUE 1024
#define SCN_MAX_TEXT (4u << 20)     /* bytes of a file, before and after substitution */

struct scn_var {
	char name[SCN_VAR_NAME + 1];
	char value[SCN_VAR_VALUE + 1];
	bool used;
};

/* Parse "NAME=VALUE" into v; 0, or -1 with the reason in err. */
int scn_var_parse(const char *assign, struct scn_var *v, char *err, size_t errlen);

/* Substitute in text (len bytes) with vars (their used flags set): a new
 * NUL-terminated buffer in *out, its length in *outlen (free() it).  0, or -1
 * with "NAME:LINE: reason" in err. */
int scn_subst(const char *text, size_t len, const char *name, struct scn_var *vars,
	      unsigned nvars, char **out, size_t *outlen, char *err, size_t errlen);

/* The variables scn_load() and scn_load_mem() substitute (xedge-bench --var):
 * add one ("NAME=VALUE"; the same NAME again replaces it), or forget them
 * all.  0, or -1 with the reason in err. */
int scn_vars_add(const char *assign, char *err, size_t errlen);
void scn_vars_clear(void);

/* scn_subst() with the variables scn_vars_add() set (the loader's pass). */
int scn_subst_vars(const char *text, size_t len, const char *name, char **out, size_t *outlen,
		   char *err, size_t errlen);

/* A string of the pool ("" for offset 0). */
static inline const char *scn_str(const struct bench_scenario *s, uint32_t off)
{
	return s->strings ? s->strings + off : "";
}

/* Users that the phases start (timed phases: the integral of the rate,
 * rounded down, capped by users). */
uint64_t scn_phase_users(const struct scn_phase *p);

const char *scn_op_str(int op);
const char *scn_transport_str(int tr);
const char *scn_mech_str(int mech);

/* A human summary: target, users, phases with the users they start, the
 * sessions with their shares and steps, the thresholds. */
void scn_describe(FILE *f, const struct bench_scenario *s);
/* Their parts, as scn_describe prints them, without a newline: step idx of a
 * session ("  3  chat to random ...  (line 12)"), a phase ("5/s for 1m: 300
 * users"); the HTML report and the JSON's scenario_file use them. */
void scn_describe_step(FILE *f, const struct bench_scenario *s, const struct scn_step *st,
		       uint32_t idx);
void scn_describe_phase(FILE *f, const struct scn_phase *p);

/* xedge-bench --check-scenario FILE: load, describe on stdout, return 0; or
 * print the error on stderr and return 2 (the exit status). */
int scn_check_file(const char *path);

#endif
