/*
 * plan — see plan.h: arrival times from the phases, the weighted session
 * choice and the loop frames of the scenario executor (pure).
 */
#include "bench/plan.h"

#include <math.h>
#include <string.h>

void bp_plan_init(struct bp_plan *pl, const struct scn_phase *ph, uint32_t n)
{
	uint64_t t = 0, first = 0;

	memset(pl, 0, sizeof(*pl));
	if (n > SCN_MAX_PHASES)
		n = SCN_MAX_PHASES;
	for (uint32_t i = 0; i < n; i++) {
		struct bp_phase *p = &pl->ph[i];
		p->start_ns = t;
		p->first = first;
		p->users = scn_phase_users(&ph[i]);
		p->rate0 = ph[i].rate0;
		p->rate1 = ph[i].rate1;
		p->duration_ns = ph[i].duration_ns;
		t += ph[i].duration_ns;
		first += p->users;
	}
	pl->nphases = n;
	pl->total = first;
	pl->end_ns = t;
}

/* Seconds into a phase at which its k-th user arrives. */
static double phase_offset(const struct bp_phase *p, uint64_t k)
{
	double d = (double)p->duration_ns / 1e9, a, disc;

	if (isinf(p->rate0) || k == 0)
		return 0;
	if (p->rate0 == p->rate1)
		return (double)k / p->rate0;
	/* r0 t + a t^2 = k with a = (r1 - r0) / 2D: the root that is reached
	 * first, in the form without cancellation (r0 may be 0). */
	a = (p->rate1 - p->rate0) / (2 * d);
	disc = p->rate0 * p->rate0 + 4 * a * (double)k;
	if (disc < 0)
		disc = 0;
	return 2 * (double)k / (p->rate0 + sqrt(disc));
}

uint64_t bp_arrival(const struct bp_plan *pl, uint64_t u, uint32_t *phase)
{
	uint32_t lo = 0, hi = pl->nphases;
	const struct bp_phase *p;
	double off;
	uint64_t ns;

	if (u >= pl->total)
		return UINT64_MAX;
	/* the last phase whose first user is <= u and that starts users */
	while (hi - lo > 1) {
		uint32_t mid = (lo + hi) / 2;
		if (pl->ph[mid].first <= u)
			lo = mid;
		else
			hi = mid;
	}
	while (pl->ph[lo].users == 0 || u - pl->ph[lo].first >= pl->ph[lo].users)
		lo++;    /* phases starting nobody share their first with the next */
	p = &pl->ph[lo];
	off = phase_offset(p, u - p->first) * 1e9;
	ns = off >= (double)p->duration_ns && p->duration_ns ? p->duration_ns : (uint64_t)off;
	if (phase)
		*phase = lo;
	return p->start_ns + ns;
}

/* Users below x with u mod count == index. */
static uint64_t below(uint64_t x, unsigned index, unsigned count)
{
	return x > index ? (x - index + count - 1) / count : 0;
}

uint64_t bp_slice_users(uint64_t first, uint64_t n, unsigned index, unsigned count)
{
	if (count <= 1)
		return n;
	return below(first + n, index, count) - below(first, index, count);
}

bool bp_admit(_Atomic uint64_t *alive, uint64_t max)
{
	if (atomic_fetch_add(alive, 1) < max || !max)
		return true;
	atomic_fetch_sub(alive, 1);
	return false;
}

void bp_leave(_Atomic uint64_t *alive)
{
	atomic_fetch_sub(alive, 1);
}

uint64_t bp_pool_per_thread(uint64_t max_users, uint64_t total, unsigned threads)
{
	bool cap = max_users && max_users < total;
	uint64_t n = cap ? max_users : total, per;

	if (!threads)
		threads = 1;
	per = (n + threads - 1) / threads;
	return cap ? per + per / 4 + 4 : per;
}

void bp_wrr_init(struct bp_wrr *w, const struct scn_session *s, uint32_t n)
{
	memset(w, 0, sizeof(*w));
	if (n > SCN_MAX_SESSIONS)
		n = SCN_MAX_SESSIONS;
	w->n = n;
	for (uint32_t i = 0; i < n; i++) {
		w->weight[i] = s[i].weight;
		w->total += s[i].weight;
	}
}

uint32_t bp_wrr_next(struct bp_wrr *w)
{
	uint32_t best = 0;

	for (uint32_t i = 0; i < w->n; i++) {
		w->current[i] += w->weight[i];
		if (w->current[i] > w->current[best])
			best = i;
	}
	w->current[best] -= w->total;
	w->next++;
	return best;
}

uint32_t bp_wrr_at(struct bp_wrr *w, uint64_t u)
{
	while (w->next < u)
		bp_wrr_next(w);
	return bp_wrr_next(w);
}

uint32_t bp_next(const struct scn_step *steps, uint32_t n, struct bp_loops *ls, uint32_t pc,
		 uint64_t now)
{
	uint32_t at = pc == UINT32_MAX ? 0 : pc + 1;

	for (;;) {
		if (ls->depth) {
			struct bp_frame *f = &ls->f[ls->depth - 1];
			const struct scn_step *l = &steps[f->loop];
			if (at >= l->u.loop.end) {
				/* the body ended: another round, or leave the loop (an
				 * empty body is left at once: it cannot wait for time) */
				if (l->u.loop.end > f->loop + 1 &&
				    (!l->u.loop.count || f->rounds < l->u.loop.count) &&
				    (!f->until_ns || now < f->until_ns)) {
					f->rounds++;
					at = f->loop + 1;
				} else {
					at = l->u.loop.end;
					ls->depth--;
					continue;
				}
			}
		}
		if (at < n && steps[at].op == SCN_LOOP && ls->depth < SCN_MAX_DEPTH) {
			struct bp_frame *f = &ls->f[ls->depth++];
			f->loop = at;
			f->rounds = 1;
			f->until_ns = steps[at].u.loop.duration_ns ? now + steps[at].u.loop.duration_ns : 0;
			at++;
			continue;
		}
		return at < n ? at : n;
	}
}
