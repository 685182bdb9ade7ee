/*
 * sm_members — the shard set of a session server changing while it runs
 * (xedge-sm: a SIGHUP with another backend.shards, or backend.discover
 * finding another set; docs/architecture.md, "Shards": membership).
 *
 * From the call on, sm_owns() hashes over the new set: stanzas for an
 * account this server no longer owns go to its new owner through an edge
 * (sm/remote.c shard_out), as for any account of another shard, even while
 * the account still has sessions here: the edges move those sessions
 * (core/members.h), ending each here with WIRE_SESSION_CLOSE, and what
 * arrives for the account meanwhile is the new owner's to deliver or keep
 * offline (storage is shared by every shard).  A server whose own name is
 * not in the set owns no account and relays everything.
 *
 * The edge follows each such WIRE_SESSION_CLOSE with a WIRE_PING carrying
 * SHARD_MOVE_TOKEN; its PONG waits for a storage job submitted behind the
 * close, so it leaves only once the messages the ended session had not
 * delivered are stored again (sm_route_requeue) and committed: the new
 * owner, which reads the offline rows when the session is bound there,
 * then sees them.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "parser/shard.h"
#include "sm/sm_int.h"
#include "sm/store.h"

int sm_members_set(struct sm *sm, const char *const *names, size_t n, const char *self)
{
	uint64_t *h = calloc(n ? n : 1, sizeof(*h));
	size_t me = SIZE_MAX;

	if (!h)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		h[i] = shard_name_hash(names[i], strlen(names[i]));
		if (self && !strcmp(names[i], self))
			me = i;
	}
	free(sm->shard_names);
	sm->shard_names = h;
	sm->nshards = n;
	sm->shard_self = me;
	if (me == SIZE_MAX)
		log_warn("this session server is not in the shard set: it owns no account and relays "
			 "every stanza to the owners", "self=%s shards=%zu", self ? self : "", n);
	else
		log_info("shard set applied", "self=%s index=%zu shards=%zu", self, me, n);
	return 0;
}

struct members_ping {
	struct sm_job job;
	uint32_t link;            /* the edge link's id (it may close meanwhile) */
	uint64_t sid, token;
};

static void ping_run(struct sm_db *db, struct sm_job *j)
{
	(void)db;
	j->rc = 0;   /* nothing to do: its place in the queue is the point */
}

static void ping_done(struct sm *sm, struct sm_job *j)
{
	struct members_ping *p = (struct members_ping *)j;
	struct sm_link *l = sm_link_by_id(sm, p->link);

	if (l && l->state == SM_LINK_READY) {
		struct wire_msg r = { .type = WIRE_PONG, .sid = p->sid };

		r.u.ping.token = p->token;
		sm_link_send(l, &r);
	}
	free(p);
}

bool sm_members_ping(struct sm *sm, struct sm_link *l, const struct wire_msg *m)
{
	struct members_ping *p;

	if (m->u.ping.token != SHARD_MOVE_TOKEN || !(p = calloc(1, sizeof(*p))))
		return false;   /* answered at once, as any PING */
	p->job.run = ping_run;
	p->job.done = ping_done;
	p->link = l->id;
	p->sid = m->sid;
	p->token = m->u.ping.token;
	sm_store_submit(sm->store, &p->job);
	return true;
}
