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
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "parser/shard.h"
#include "sm/sm_int.h"

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
