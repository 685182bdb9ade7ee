/*
 * plan — the pure arithmetic of the scenario executor (bench/steps.c): when
 * user u arrives, which session it runs, and the loop frames of its program.
 * No I/O, no globals, no clock: every function takes the time it needs.
 *
 * Arrivals: the phases run one after the other from the run's start; user u
 * (0, 1, 2, ...) arrives when the integral of the arrival rate since its
 * phase began reaches u minus the users of the earlier phases, so a timed
 * phase of rate r starts its users at 0, 1/r, 2/r, ... and a ramp from r0
 * to r1 over D solves r0 t + (r1 - r0) t^2 / 2D = k.  A phase starts
 * scn_phase_users() users (the integral rounded down, capped by `users`);
 * a burst starts all of its users at the phase's start.  The schedule is a
 * pure function of u, so each client thread computes the arrival times of
 * its own users (u = id, id + T, ...) with no queue between threads.
 *
 * Sessions: a smooth weighted round robin (nginx's) over the session weights
 * gives user u its session: over any run of users the shares are as exact
 * as whole users allow (weights 80/15/5: exactly 80, 15 and 5 of every 100
 * consecutive users), and the choice is deterministic.  A thread that owns
 * every T-th user steps the same sequence through the users it skips.
 *
 * Loops: a session is a flat step array (bench/scenario.h); bp_next() moves
 * a program counter past a step, entering loops (a frame: the loop step, the
 * rounds done, the deadline) and ending rounds where a body ends.
 */
#ifndef XEDGE_BENCH_PLAN_H
#define XEDGE_BENCH_PLAN_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "bench/scenario.h"

/* ---- arrivals ---- */

struct bp_phase {
	uint64_t start_ns;       /* since the run's start */
	uint64_t first;          /* its first user */
	uint64_t users;          /* users it starts */
	double rate0, rate1;     /* users/s; a burst: INFINITY */
	uint64_t duration_ns;
};

struct bp_plan {
	struct bp_phase ph[SCN_MAX_PHASES];
	uint32_t nphases;
	uint64_t total;          /* users every phase together start */
	uint64_t end_ns;         /* the last phase's end */
};

void bp_plan_init(struct bp_plan *pl, const struct scn_phase *ph, uint32_t n);

/* Arrival time of user u in ns since the run's start, and its phase;
 * UINT64_MAX when u >= pl->total. */
uint64_t bp_arrival(const struct bp_plan *pl, uint64_t u, uint32_t *phase);

/* Users u in [first, first + n) with u mod count == index: a slice's share of a
 * phase when a load is split over count processes (slice.h), each running
 * every count-th user of the one schedule. */
uint64_t bp_slice_users(uint64_t first, uint64_t n, unsigned index, unsigned count);

/* ---- max_users ---- */

/* Admit one user while fewer than max (0: no cap) are alive: alive is then
 * one more; false (alive unchanged) when the cap is reached.  Threads share
 * alive; a user that ends calls bp_leave. */
bool bp_admit(_Atomic uint64_t *alive, uint64_t max);
void bp_leave(_Atomic uint64_t *alive);

/* Client slots per thread: the users that can be alive at once (max_users,
 * or every user the phases start when there is no cap) over the threads,
 * with a quarter of slack (+4) for a cap, whose users the threads' shares
 * need not split evenly at every moment. */
uint64_t bp_pool_per_thread(uint64_t max_users, uint64_t total, unsigned threads);

/* ---- sessions ---- */

struct bp_wrr {
	uint32_t n;
	double weight[SCN_MAX_SESSIONS];
	double current[SCN_MAX_SESSIONS];
	double total;
	uint64_t next;           /* the user the next bp_wrr_next() call is for */
};

void bp_wrr_init(struct bp_wrr *w, const struct scn_session *s, uint32_t n);
/* The session of user w->next (then w->next++). */
uint32_t bp_wrr_next(struct bp_wrr *w);
/* The session of user u >= w->next (steps over the users before it). */
uint32_t bp_wrr_at(struct bp_wrr *w, uint64_t u);

/* ---- loops ---- */

struct bp_frame {
	uint32_t loop;           /* the loop step's index */
	uint32_t rounds;         /* rounds begun */
	uint64_t until_ns;       /* duration bound (absolute), 0: none */
};

struct bp_loops {
	struct bp_frame f[SCN_MAX_DEPTH];
	uint32_t depth;
};

/* The step to run after step pc of steps[0..n) (pc == n - 1 ... or a loop's
 * last body step), at time now: enters loops at their first round, begins
 * the next round of a loop whose body ended while it has rounds and time
 * left, and leaves it otherwise.  Returns n when the program is over.  Call
 * with pc == UINT32_MAX for the program's first step. */
uint32_t bp_next(const struct scn_step *steps, uint32_t n, struct bp_loops *ls, uint32_t pc,
		 uint64_t now);

#endif
