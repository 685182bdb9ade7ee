/*
 * rtx — what an edge worker sent to a session server in another process
 * and keeps until that server confirms it (WIRE_HANDLED): its clients'
 * XEP-0198 stanzas, stanzas it relayed between shards and stanzas it handed
 * back for a session that ended.  If the server dies first, they go to its
 * successor: relayed and returned ones as soon as the link is up again, a
 * client's once its session is bound there again (core/rebind.c).  A
 * client's <a h/> counts only what is confirmed (core/smacks.c), so a
 * session server killed at any moment loses nothing a client saw
 * acknowledged; what it had handled but not yet confirmed is sent twice.
 * Embedded shards share the edge's fate: nothing is kept for them.
 * docs/architecture.md, "Shards".
 */
#ifndef XEDGE_RTX_H
#define XEDGE_RTX_H

#include <stdbool.h>
#include <stdint.h>

#include "core/worker-t.h"

enum rtx_what {
	RTX_CLIENT = 1,   /* a stanza of session s's client, its number in_no */
	RTX_RETURNED,     /* XEP-0198 §4: handed back at the end of a session */
	RTX_RELAYED       /* between users of two shards (core/route.c) */
};

/* Send m on l, a copy kept until confirmed (socket links).  A client's
 * stanza on a link that is down fails (-EPIPE); returned and relayed ones
 * wait for the link instead.  0, or what link_send() returns. */
int rtx_send(struct link *l, const struct wire_msg *m, struct session *s, uint32_t in_no, enum rtx_what what);
/* WIRE_HANDLED: the first `count` frames sent on l since its HELLO are handled. */
void rtx_confirm(struct link *l, uint64_t count);
/* The number of s's oldest unconfirmed stanza, false when none. */
bool rtx_oldest(const struct session *s, uint32_t *in_no);
/* l is lost: what it did not confirm waits for its successor. */
void rtx_link_down(struct link *l);
/* l is up again (HELLO_OK): relayed and returned stanzas go to it. */
void rtx_link_up(struct link *l);
/* s is bound on its restarted shard: its client's stanzas go there. */
void rtx_rebound(struct worker *w, struct session *s);
/* s ends or moves away: its stanzas no longer count for anyone's h (sent
 * ones are still confirmed; unsent ones are dropped: never acknowledged). */
void rtx_session_gone(struct worker *w, struct session *s);
/* Worker exit. */
void rtx_link_free(struct link *l);

#endif
