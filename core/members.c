/*
 * members — see members.h for the contract.
 *
 * A session in a move has s->rebind == MEMBERS_LEAVING until the PONG that
 * names it comes back from its old shard (members_pong, O(1) by id).  If
 * that shard's link dies first, be_native.c's link_down_one makes the
 * session wait for a rebind (s->rebind 1, XEP-0198) or ends it; the scan
 * then binds a waiting one on its new owner.  A session is on the right
 * shard when its link is its owner's: owners are hashed over
 * w->shard_names[0..nowners) as link_of() does.  While any session is not,
 * members_tick scans them all again every MEMBERS_CHECK_MS.
 */
#include "core/members.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/link.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/session.h"
#include "core/smacks.h"
#include "core/worker.h"
#include "core/xmpp.h"
#include "parser/jid.h"
#include "parser/shard.h"

/* ---- the main thread's side --------------------------------------------- */

static void set_put(struct members_set *m)
{
	if (!m || __atomic_sub_fetch(&m->refs, 1, __ATOMIC_ACQ_REL) > 0)
		return;
	for (size_t i = 0; i < m->n; i++) {
		free(m->names[i]);
		free(m->addrs[i]);
	}
	free(m->names);
	free(m->addrs);
	free(m);
}

int members_publish(struct worker *ws, int nworkers, struct io_uring *ctl, const char *const *names,
		    const char *const *addrs, size_t n)
{
	struct members_set *m = calloc(1, sizeof(*m));

	if (!m)
		return -ENOMEM;
	m->names = calloc(n ? n : 1, sizeof(*m->names));
	m->addrs = calloc(n ? n : 1, sizeof(*m->addrs));
	m->refs = 1;
	if (!m->names || !m->addrs) {
		set_put(m);
		return -ENOMEM;
	}
	for (; m->n < n; m->n++) {
		m->names[m->n] = strdup(names[m->n]);
		m->addrs[m->n] = strdup(addrs ? addrs[m->n] : names[m->n]);
		if (!m->names[m->n] || !m->addrs[m->n]) {
			m->n++;
			set_put(m);
			return -ENOMEM;
		}
	}
	/* One reference per worker: it lets go once applied, or when a newer
	 * set replaces it before it was taken. */
	__atomic_store_n(&m->refs, nworkers, __ATOMIC_RELEASE);
	for (int i = 0; i < nworkers; i++) {
		struct members_set *old = __atomic_exchange_n(&ws[i].next_members, m, __ATOMIC_ACQ_REL);

		set_put(old);
		worker_post(&ws[i], ctl, CTRL_MEMBERS);
	}
	return 0;
}

/* ---- the worker's side -------------------------------------------------- */

/* The slot of the link that owns the session's user: from its bound JID,
 * else its user at its stream's domain. */
static uint16_t owner_slot(struct worker *w, const struct session *s)
{
	char jid[JID_MAX + 1];
	int n;

	if (s->jid)
		n = snprintf(jid, sizeof(jid), "%.*s", (int)strcspn(s->jid, "/"), s->jid);
	else if (s->c)
		n = snprintf(jid, sizeof(jid), "%s@%s", s->user, s->c->domain);
	else
		return s->shard;
	if (n <= 0 || (size_t)n >= sizeof(jid))
		return link_first(w)->shard;
	return link_of_jid(w, (const uint8_t *)jid, (size_t)n)->shard;
}

struct scan {
	struct worker *w;
	unsigned started, waiting;   /* moves begun; sessions to look at again */
	bool rebind[CONFIG_MAX_SHARDS];  /* links with sessions to bind again now */
};

static void move_finish(struct worker *w, struct session *s, struct link *old);

/* Step 1 of a move (members.h): the old shard lets go of s. */
static void move_start(struct worker *w, struct session *s, struct scan *sc)
{
	struct link *old = &w->links[s->shard];
	struct wire_msg m = { .type = WIRE_SESSION_CLOSE, .sid = s->id };
	struct wire_msg p = { .type = WIRE_PING, .sid = s->id };

	conn_pause(s->c, PAUSE_REBIND);
	log_info("session leaves its shard: the shard set changed", "conn=%u jid=%s from=%s smacks=%s",
		 s->c->idx, s->jid ? s->jid : s->user, old->name ? old->name : "?", s->smk ? "yes" : "no");
	/* The last word on what reached the client (docs/protocol.md); what it
	 * never acknowledged stays here (XEP-0198) to be sent again. */
	if (s->delivered != s->reported)
		native_delivered(w, s);
	m.u.close.reason = WIRE_CLOSE_NORMAL;
	p.u.ping.token = MEMBERS_TOKEN;
	if (old->dead || link_send(old, &m) < 0 || link_send(old, &p) < 0) {
		/* The old shard is gone or choked: nothing more comes from it
		 * for s.  Finish the move now. */
		move_finish(w, s, old);
		return;
	}
	s->rebind = MEMBERS_LEAVING;
	sc->started++;
}

static bool scan_one(struct session *s, void *arg)
{
	struct scan *sc = arg;
	struct worker *w = sc->w;
	struct conn *c = s->c;
	uint16_t want;

	if (!s->user || !session_announced(s))
		return true;
	if (s->rebind == MEMBERS_LEAVING) {
		sc->waiting++;   /* its old shard has not let go yet */
		return true;
	}
	if (s->rebind == 1) {
		/* Waiting to be bound again (its shard died, or it moved while
		 * detached): on its owner, at once if that link is up, else when
		 * it comes up (native_link_up); a detached one once its client
		 * is back. */
		if (!c) {
			sc->waiting++;
			return true;
		}
		if (!(c->flags & CF_CLOSED)) {
			s->shard = owner_slot(w, s);
			sc->rebind[s->shard] = true;
		}
		return true;
	}
	if (!c) {
		/* Detached (XEP-0198, waiting for a <resume/>): moved once its
		 * client is back, or ends there. */
		sc->waiting++;
		return true;
	}
	if (c->flags & CF_CLOSED)
		return true;
	want = owner_slot(w, s);
	if (want == s->shard)
		return true;
	if (s->rebind || (c->flags & CF_WAIT_SM) || s->smk_join) {
		sc->waiting++;   /* an answer is out: after it */
		return true;
	}
	move_start(w, s, sc);
	return true;
}

/* Move the sessions whose owner is not their shard; how many must be
 * looked at again later. */
static unsigned members_scan(struct worker *w)
{
	struct scan sc = { .w = w };

	session_each(w, scan_one, &sc);
	for (uint16_t k = 0; k < w->nlinks; k++)
		if (sc.rebind[k] && w->links[k].up && !w->links[k].dead)
			native_link_up(&w->links[k]);
	return sc.waiting;
}

/* Step 3: the old shard has let go of s (or is gone). */
static void move_finish(struct worker *w, struct session *s, struct link *old)
{
	struct conn *c = s->c;

	s->rebind = 0;
	if (!c && s->smk && s->state == SS_BOUND && s->jid) {
		/* Detached meanwhile (XEP-0198): bound on the new owner once
		 * its client resumes (members_scan), or it expires. */
		s->shard = owner_slot(w, s);
		s->rebind = 1;
		w->members_dirty = true;
		return;
	}
	if (!c || (c->flags & CF_CLOSED)) {
		session_set_state(s, SS_CLOSED);   /* gone meanwhile: the old shard ended it */
		return;
	}
	if (s->smk && s->state == SS_BOUND && s->jid && c->state == CS_SESSION) {
		uint16_t want = owner_slot(w, s);
		struct link *nl = &w->links[want];

		s->shard = want;
		s->rebind = 1;   /* core/rebind.c binds it when nl is up */
		STAT_INC(w->st.shard_moves[0]);
		if (nl->up && !nl->dead)
			native_link_up(nl);
		return;
	}
	log_info("session ends with <reset/>: its user moved to another shard", "conn=%u user=%s from=%s",
		 c->idx, s->user, old->name ? old->name : "?");
	session_set_state(s, SS_CLOSED);
	STAT_INC(w->st.shard_moves[1]);
	xmpp_error(c, "reset", NULL);
}

void members_pong(struct link *l, const struct wire_msg *m)
{
	struct session *s;

	if (m->u.ping.token != MEMBERS_TOKEN)
		return;
	s = session_by_id(l->w, m->sid);
	if (s && s->rebind == MEMBERS_LEAVING && s->shard == l->shard)
		move_finish(l->w, s, l);
}

void members_apply(struct worker *w)
{
	struct members_set *m = __atomic_exchange_n(&w->next_members, NULL, __ATOMIC_ACQ_REL);
	uint16_t slot[CONFIG_MAX_SHARDS];
	bool keep[CONFIG_MAX_SHARDS] = { false };
	size_t n = 0;

	if (!m)
		return;
	if (w->sm_chans || !w->links) {
		set_put(m);
		return;   /* embedded shards: a fixed set */
	}
	for (size_t i = 0; i < m->n && n < CONFIG_MAX_SHARDS; i++) {
		uint16_t k, free_k = UINT16_MAX;

		for (k = 0; k < w->nlinks; k++) {
			if (w->links[k].name && !strcmp(w->links[k].name, m->names[i]))
				break;
			if (!w->links[k].name && free_k == UINT16_MAX)
				free_k = k;
		}
		if (k == w->nlinks) {
			if (free_k == UINT16_MAX || link_slot_set(w, free_k, m->names[i], m->addrs[i]) < 0) {
				log_error("shard not added: no free link slot or a bad address", "worker=%d name=%s",
					  w->id, m->names[i]);
				continue;
			}
			k = free_k;
			log_info("shard added", "worker=%d shard=%u name=%s", w->id, k, m->names[i]);
		} else if (w->links[k].leaving) {
			/* Back before its slot was freed: kept if still up, else
			 * connected again once its old socket is quiet (link_tick). */
			w->links[k].leaving = false;
			w->links[k].retry_ms = 0;
			log_info("shard back before its link closed", "worker=%d shard=%u name=%s", w->id, k,
				 m->names[i]);
		}
		keep[k] = true;
		slot[n] = k;
		w->shard_names[n] = shard_name_hash(m->names[i], strlen(m->names[i]));
		n++;
	}
	if (n == 0) {
		log_error("empty shard set ignored: the running one stays", "worker=%d", w->id);
		set_put(m);
		return;
	}
	for (uint16_t k = 0; k < w->nlinks; k++)
		if (w->links[k].name && !keep[k] && !w->links[k].leaving) {
			w->links[k].leaving = true;
			log_info("shard leaving: its sessions move, then its link closes", "worker=%d shard=%u "
				 "name=%s", w->id, k, w->links[k].name);
		}
	memcpy(w->owner_slot, slot, n * sizeof(slot[0]));
	w->nowners = (uint16_t)n;
	set_put(m);
	w->members_dirty = members_scan(w) > 0;
	w->members_check_ms = worker_ms();
	link_arm(w);
}

static bool on_link(struct session *s, void *arg)
{
	uint16_t *k = arg;

	if (s->shard == *k && session_announced(s)) {
		*k = UINT16_MAX;
		return false;
	}
	return true;
}

void members_tick(struct worker *w)
{
	uint64_t now = worker_ms();

	if (w->sm_chans || !w->links || now < w->members_check_ms + MEMBERS_CHECK_MS)
		return;
	w->members_check_ms = now;
	if (w->members_dirty)
		w->members_dirty = members_scan(w) > 0;
	for (uint16_t k = 0; k < w->nlinks; k++) {
		struct link *l = &w->links[k];
		uint16_t probe = k;

		if (!l->name || !l->leaving)
			continue;
		session_each(w, on_link, &probe);
		if (probe == UINT16_MAX)
			continue;   /* sessions still there */
		if (!l->dead || l->fd >= 0)
			link_retire(l);
		if (link_quiet(l)) {
			log_info("shard removed", "worker=%d shard=%u name=%s", w->id, k, l->name);
			link_slot_free(w, k);
		}
	}
}

void members_free(struct worker *w)
{
	set_put(__atomic_exchange_n(&w->next_members, NULL, __ATOMIC_ACQ_REL));
}
