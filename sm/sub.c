/*
 * sub — RFC 6121 presence-subscription state machine (see sub.h).
 *
 * The eight tables of Appendix A (Tables 2 to 9) are copied below row for
 * row, in the RFC's order of the nine defined states.  A row gives the new
 * defined state and what happens to the stanza; ROUTE?/DELIVER? "MUST" is
 * forward, "S.N." and "M.N." are not.  Everything else in the result (roster
 * push, kept request, create the item, presence to send) follows from the
 * state change and is derived in one place, sm_sub_apply().
 */
#include <stddef.h>

#include "sm/sub.h"

/* The nine defined states of A.1, numbered as there (from 0). */
enum sm_sub_def {
	DEF_NONE,         /* "None" */
	DEF_NONE_OUT,     /* "None + Pending Out" */
	DEF_NONE_IN,      /* "None + Pending In" */
	DEF_NONE_OUT_IN,  /* "None + Pending Out+In" */
	DEF_TO,           /* "To" */
	DEF_TO_IN,        /* "To + Pending In" */
	DEF_FROM,         /* "From" */
	DEF_FROM_OUT,     /* "From + Pending Out" */
	DEF_BOTH,         /* "Both" */
	DEF_COUNT,
	DEF_SAME = DEF_COUNT  /* "no state change" */
};

static const struct {
	uint8_t sub;
	bool out, in;
} sm_sub_defs[DEF_COUNT] = {
	[DEF_NONE]        = { SM_SUB_NONE, false, false },
	[DEF_NONE_OUT]    = { SM_SUB_NONE, true,  false },
	[DEF_NONE_IN]     = { SM_SUB_NONE, false, true  },
	[DEF_NONE_OUT_IN] = { SM_SUB_NONE, true,  true  },
	[DEF_TO]          = { SM_SUB_TO,   false, false },
	[DEF_TO_IN]       = { SM_SUB_TO,   false, true  },
	[DEF_FROM]        = { SM_SUB_FROM, false, false },
	[DEF_FROM_OUT]    = { SM_SUB_FROM, true,  false },
	[DEF_BOTH]        = { SM_SUB_BOTH, false, false },
};

/* Row actions. */
#define ACT_FWD         0x01u  /* ROUTE?/DELIVER? MUST */
#define ACT_PREAPPROVE  0x02u  /* A.2.3 "pre-approval [1]" (§3.4.2 3, 4) */
#define ACT_CANCEL_PRE  0x04u  /* A.2.4 [1]: cancels a pre-approval (§3.2.2 2) */
#define ACT_AUTO_SUB    0x08u  /* A.3.1 [2]: auto-reply "subscribed" */
#define ACT_AUTO_UNSUB  0x10u  /* A.3.2 [1]: auto-reply "unsubscribed" */

struct sm_sub_row {
	uint8_t next;  /* enum sm_sub_def */
	uint8_t act;   /* ACT_* */
};

static const struct sm_sub_row sm_sub_table[8][DEF_COUNT] = {
	/* A.2.1 Table 2: outbound "subscribe"; [1] = the 'ask' flag is set */
	[SM_SUB_OUT_SUBSCRIBE] = {
		[DEF_NONE]        = { DEF_NONE_OUT,    ACT_FWD },  /* MUST [1] */
		[DEF_NONE_OUT]    = { DEF_SAME,        ACT_FWD },  /* MUST */
		[DEF_NONE_IN]     = { DEF_NONE_OUT_IN, ACT_FWD },  /* MUST [1] */
		[DEF_NONE_OUT_IN] = { DEF_SAME,        ACT_FWD },  /* MUST */
		[DEF_TO]          = { DEF_SAME,        ACT_FWD },  /* MUST */
		[DEF_TO_IN]       = { DEF_SAME,        ACT_FWD },  /* MUST */
		[DEF_FROM]        = { DEF_FROM_OUT,    ACT_FWD },  /* MUST [1] */
		[DEF_FROM_OUT]    = { DEF_SAME,        ACT_FWD },  /* MUST */
		[DEF_BOTH]        = { DEF_SAME,        ACT_FWD },  /* MUST */
	},
	/* A.2.2 Table 3: outbound "unsubscribe" */
	[SM_SUB_OUT_UNSUBSCRIBE] = {
		[DEF_NONE]        = { DEF_SAME,    ACT_FWD },  /* MUST */
		[DEF_NONE_OUT]    = { DEF_NONE,    ACT_FWD },  /* MUST */
		[DEF_NONE_IN]     = { DEF_SAME,    ACT_FWD },  /* MUST */
		[DEF_NONE_OUT_IN] = { DEF_NONE_IN, ACT_FWD },  /* MUST */
		[DEF_TO]          = { DEF_NONE,    ACT_FWD },  /* MUST */
		[DEF_TO_IN]       = { DEF_NONE_IN, ACT_FWD },  /* MUST */
		[DEF_FROM]        = { DEF_SAME,    ACT_FWD },  /* MUST */
		[DEF_FROM_OUT]    = { DEF_FROM,    ACT_FWD },  /* MUST */
		[DEF_BOTH]        = { DEF_FROM,    ACT_FWD },  /* MUST */
	},
	/* A.2.3 Table 4: outbound "subscribed" */
	[SM_SUB_OUT_SUBSCRIBED] = {
		[DEF_NONE]        = { DEF_SAME,     ACT_PREAPPROVE },  /* M.N. */
		[DEF_NONE_OUT]    = { DEF_SAME,     ACT_PREAPPROVE },  /* M.N. */
		[DEF_NONE_IN]     = { DEF_FROM,     ACT_FWD },         /* MUST */
		[DEF_NONE_OUT_IN] = { DEF_FROM_OUT, ACT_FWD },         /* MUST */
		[DEF_TO]          = { DEF_SAME,     ACT_PREAPPROVE },  /* M.N. */
		[DEF_TO_IN]       = { DEF_BOTH,     ACT_FWD },         /* MUST */
		[DEF_FROM]        = { DEF_SAME,     0 },               /* M.N. */
		[DEF_FROM_OUT]    = { DEF_SAME,     0 },               /* M.N. */
		[DEF_BOTH]        = { DEF_SAME,     0 },               /* M.N. */
	},
	/* A.2.4 Table 5: outbound "unsubscribed" */
	[SM_SUB_OUT_UNSUBSCRIBED] = {
		[DEF_NONE]        = { DEF_SAME,     ACT_CANCEL_PRE },  /* S.N. [1] */
		[DEF_NONE_OUT]    = { DEF_SAME,     ACT_CANCEL_PRE },  /* S.N. [1] */
		[DEF_NONE_IN]     = { DEF_NONE,     ACT_FWD },         /* MUST */
		[DEF_NONE_OUT_IN] = { DEF_NONE_OUT, ACT_FWD },         /* MUST */
		[DEF_TO]          = { DEF_SAME,     ACT_CANCEL_PRE },  /* S.N. [1] */
		[DEF_TO_IN]       = { DEF_TO,       ACT_FWD },         /* MUST */
		[DEF_FROM]        = { DEF_NONE,     ACT_FWD },         /* MUST */
		[DEF_FROM_OUT]    = { DEF_NONE_OUT, ACT_FWD },         /* MUST */
		[DEF_BOTH]        = { DEF_TO,       ACT_FWD },         /* MUST */
	},
	/* A.3.1 Table 6: inbound "subscribe"; [1] (pre-approval) in sm_sub_apply() */
	[SM_SUB_IN_SUBSCRIBE] = {
		[DEF_NONE]        = { DEF_NONE_IN,     ACT_FWD },       /* MUST [1] */
		[DEF_NONE_OUT]    = { DEF_NONE_OUT_IN, ACT_FWD },       /* MUST */
		[DEF_NONE_IN]     = { DEF_SAME,        0 },             /* S.N. */
		[DEF_NONE_OUT_IN] = { DEF_SAME,        0 },             /* S.N. */
		[DEF_TO]          = { DEF_TO_IN,       ACT_FWD },       /* MUST */
		[DEF_TO_IN]       = { DEF_SAME,        0 },             /* S.N. */
		[DEF_FROM]        = { DEF_SAME,        ACT_AUTO_SUB },  /* S.N. [2] */
		[DEF_FROM_OUT]    = { DEF_SAME,        ACT_AUTO_SUB },  /* S.N. [2] */
		[DEF_BOTH]        = { DEF_SAME,        ACT_AUTO_SUB },  /* S.N. [2] */
	},
	/* A.3.2 Table 7: inbound "unsubscribe"; [1] = SHOULD auto-reply "unsubscribed" */
	[SM_SUB_IN_UNSUBSCRIBE] = {
		[DEF_NONE]        = { DEF_SAME,     0 },                         /* S.N. */
		[DEF_NONE_OUT]    = { DEF_SAME,     0 },                         /* S.N. */
		[DEF_NONE_IN]     = { DEF_NONE,     ACT_FWD | ACT_AUTO_UNSUB },  /* MUST [1] */
		[DEF_NONE_OUT_IN] = { DEF_NONE_OUT, ACT_FWD | ACT_AUTO_UNSUB },  /* MUST [1] */
		[DEF_TO]          = { DEF_SAME,     0 },                         /* S.N. */
		[DEF_TO_IN]       = { DEF_TO,       ACT_FWD | ACT_AUTO_UNSUB },  /* MUST [1] */
		[DEF_FROM]        = { DEF_NONE,     ACT_FWD | ACT_AUTO_UNSUB },  /* MUST [1] */
		[DEF_FROM_OUT]    = { DEF_NONE_OUT, ACT_FWD | ACT_AUTO_UNSUB },  /* MUST [1] */
		[DEF_BOTH]        = { DEF_TO,       ACT_FWD | ACT_AUTO_UNSUB },  /* MUST [1] */
	},
	/* A.3.3 Table 8: inbound "subscribed" */
	[SM_SUB_IN_SUBSCRIBED] = {
		[DEF_NONE]        = { DEF_SAME,  0 },        /* S.N. */
		[DEF_NONE_OUT]    = { DEF_TO,    ACT_FWD },  /* MUST */
		[DEF_NONE_IN]     = { DEF_SAME,  0 },        /* S.N. */
		[DEF_NONE_OUT_IN] = { DEF_TO_IN, ACT_FWD },  /* MUST */
		[DEF_TO]          = { DEF_SAME,  0 },        /* S.N. */
		[DEF_TO_IN]       = { DEF_SAME,  0 },        /* S.N. */
		[DEF_FROM]        = { DEF_SAME,  0 },        /* S.N. */
		[DEF_FROM_OUT]    = { DEF_BOTH,  ACT_FWD },  /* MUST */
		[DEF_BOTH]        = { DEF_SAME,  0 },        /* S.N. */
	},
	/* A.3.4 Table 9: inbound "unsubscribed" */
	[SM_SUB_IN_UNSUBSCRIBED] = {
		[DEF_NONE]        = { DEF_SAME,    0 },        /* S.N. */
		[DEF_NONE_OUT]    = { DEF_NONE,    ACT_FWD },  /* MUST */
		[DEF_NONE_IN]     = { DEF_SAME,    0 },        /* S.N. */
		[DEF_NONE_OUT_IN] = { DEF_NONE_IN, ACT_FWD },  /* MUST */
		[DEF_TO]          = { DEF_NONE,    ACT_FWD },  /* MUST */
		[DEF_TO_IN]       = { DEF_NONE_IN, ACT_FWD },  /* MUST */
		[DEF_FROM]        = { DEF_SAME,    0 },        /* S.N. */
		[DEF_FROM_OUT]    = { DEF_FROM,    ACT_FWD },  /* MUST */
		[DEF_BOTH]        = { DEF_FROM,    ACT_FWD },  /* MUST */
	},
};

/* The defined state of s, or -1 when s is not a state of sub.h. */
static int sm_sub_def_of(const struct sm_sub_state *s)
{
	int d;

	if (s->sub > SM_SUB_BOTH)
		return -1;
	for (d = 0; d < DEF_COUNT; d++)
		if (sm_sub_defs[d].sub == s->sub && sm_sub_defs[d].out == s->pending_out &&
		    sm_sub_defs[d].in == s->pending_in)
			break;
	if (d == DEF_COUNT)
		return -1;   /* "To + Pending Out", "From + Pending In", ... */
	if (s->preapproved && d != DEF_NONE && d != DEF_NONE_OUT && d != DEF_TO)
		return -1;   /* A.2.3: pre-approval exists only there */
	if (!s->listed && d != DEF_NONE && d != DEF_NONE_IN)
		return -1;   /* a subscription or an 'ask' is a roster item */
	if (!s->listed && s->preapproved)
		return -1;   /* §3.4.2 4: a pre-approval is a roster item */
	return d;
}

static void sm_sub_set_def(struct sm_sub_state *s, int d)
{
	if (d == DEF_SAME)
		return;
	s->sub = sm_sub_defs[d].sub;
	s->pending_out = sm_sub_defs[d].out;
	s->pending_in = sm_sub_defs[d].in;
}

static bool sm_sub_state_eq(const struct sm_sub_state *a, const struct sm_sub_state *b)
{
	return a->sub == b->sub && a->pending_out == b->pending_out &&
	       a->pending_in == b->pending_in && a->preapproved == b->preapproved &&
	       a->listed == b->listed;
}

int sm_sub_apply(const struct sm_sub_state *cur, enum sm_sub_event ev,
		 struct sm_sub_result *out)
{
	struct sm_sub_result r = { 0 };
	struct sm_sub_row row;
	int d;

	if ((unsigned)ev > SM_SUB_IN_UNSUBSCRIBED)
		return -1;
	d = sm_sub_def_of(cur);
	if (d < 0)
		return -1;
	row = sm_sub_table[ev][d];
	r.next = *cur;
	sm_sub_set_def(&r.next, row.next);
	r.forward = row.act & ACT_FWD;
	r.auto_reply_subscribed = row.act & ACT_AUTO_SUB;
	r.auto_reply_unsubscribed = row.act & ACT_AUTO_UNSUB;
	if (row.act & ACT_PREAPPROVE)
		r.next.preapproved = true;
	if (row.act & ACT_CANCEL_PRE)
		r.next.preapproved = false;

	/*
	 * §3.4.2: with the 'approved' flag set the server MUST NOT deliver the
	 * "subscribe" but MUST answer "subscribed" on the user's behalf; A.3.1 [1]
	 * then takes the state to "From" rather than "None + Pending In".  The
	 * answer is a normal approval of the request just recorded (A.2.3), and it
	 * consumes the pre-approval.
	 */
	if (ev == SM_SUB_IN_SUBSCRIBE && cur->preapproved) {
		int held = row.next == DEF_SAME ? d : row.next;

		sm_sub_set_def(&r.next, sm_sub_table[SM_SUB_OUT_SUBSCRIBED][held].next);
		r.next.preapproved = false;
		r.forward = false;
		r.auto_reply_subscribed = true;
	}

	/* A.1 (3): only what the user did lists the contact; a pending-in request
	 * alone does not. */
	if (r.next.sub != SM_SUB_NONE || r.next.pending_out || r.next.preapproved)
		r.next.listed = true;

	r.changed = !sm_sub_state_eq(cur, &r.next);
	r.push = cur->listed != r.next.listed || cur->sub != r.next.sub ||
		 cur->pending_out != r.next.pending_out ||
		 cur->preapproved != r.next.preapproved;
	r.keep_request = !cur->pending_in && r.next.pending_in;
	r.drop_request = cur->pending_in && !r.next.pending_in;
	r.create_item = !cur->listed && r.next.listed;
	/* §3.1.5: after an approval reaches the contact, current presence follows. */
	r.presence_after = (r.next.sub & SM_SUB_FROM) &&
			   (r.auto_reply_subscribed || (ev == SM_SUB_OUT_SUBSCRIBED && r.forward));
	/* §3.2.2, §3.3.3 3: the contact loses its subscription to the user. */
	r.unavailable_after = (cur->sub & SM_SUB_FROM) && !(r.next.sub & SM_SUB_FROM);
	*out = r;
	return 0;
}

bool sm_sub_item_visible(const struct sm_sub_state *s)
{
	return s->listed;
}

const char *sm_sub_ask(const struct sm_sub_state *s)
{
	return s->pending_out ? "subscribe" : NULL;
}

const char *sm_sub_str(int sub)
{
	static const char *const names[] = { "none", "to", "from", "both" };

	return sub >= SM_SUB_NONE && sub <= SM_SUB_BOTH ? names[sub] : "none";
}

int sm_sub_parse(const char *s)
{
	for (int i = SM_SUB_NONE; i <= SM_SUB_BOTH; i++) {
		const char *n = sm_sub_str(i);
		size_t k = 0;

		while (n[k] != '\0' && s[k] == n[k])
			k++;
		if (n[k] == '\0' && s[k] == '\0')
			return i;
	}
	return -1;
}
