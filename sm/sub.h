/*
 * sub — the presence-subscription state machine of RFC 6121 §3 and
 * Appendix A, for one (user, contact) pair, seen from the user's side.
 *
 * Pure: no I/O, no allocation, no globals.  The caller loads the pair's
 * state from the user's roster row, calls sm_sub_apply() with the
 * subscription stanza the user sent (OUT) or received from the contact (IN),
 * stores the next state and carries out the actions the result asks for.
 *
 * The nine defined states of Appendix A.1 are (sub, pending_out, pending_in):
 *   "None" (NONE,0,0)   "None + Pending Out" (NONE,1,0)
 *   "None + Pending In" (NONE,0,1)   "None + Pending Out+In" (NONE,1,1)
 *   "To" (TO,0,0)   "To + Pending In" (TO,0,1)
 *   "From" (FROM,0,0)   "From + Pending Out" (FROM,1,0)   "Both" (BOTH,0,0)
 * and a §3.4 pre-approval ('approved' flag) may be held in "None",
 * "None + Pending Out" and "To" -- the only states where an outbound
 * "subscribed" records one (A.2.3).  Any other combination is rejected.
 *
 * A.1 (3): a contact's request must be recorded without creating a roster
 * item for it; `listed` says whether the user has the contact in the roster
 * (by a roster set, a "subscribe" or an approval).  Every state with a
 * subscription, an 'ask' or a pre-approval is listed; a row that is not
 * listed only carries a pending-in request and is never shown to the client.
 *
 * Policy choices the RFC leaves open, made here:
 *   - pre-approvals are supported (advertise
 *     <sub xmlns='urn:xmpp:features:pre-approval'/>, §3.4);
 *   - a pre-approval is consumed when it answers a request (§3.4.2
 *     Implementation Note: keeping the record is local policy);
 *   - of several requests from one contact the first is kept (§3.1.3 4).
 */
#ifndef XEDGE_SM_SUB_H
#define XEDGE_SM_SUB_H

#include <stdbool.h>
#include <stdint.h>

/* Roster subscription states as bits: `to` = we see them, `from` = they see us. */
enum sm_sub { SM_SUB_NONE = 0, SM_SUB_TO = 1, SM_SUB_FROM = 2, SM_SUB_BOTH = 3 };

/* The relation of a user with one contact, as stored in the user's roster row. */
struct sm_sub_state {
	uint8_t sub;        /* enum sm_sub */
	bool pending_out;   /* "Pending Out": ask='subscribe' in the roster (§2.1.2.2) */
	bool pending_in;    /* "Pending In": the contact asked, the user has not answered;
	                       the request stanza is kept (§3.1.3 4) */
	bool preapproved;   /* §3.4 pre-approval: approved='true' in the roster (§2.1.2.1) */
	bool listed;        /* the contact is in the user's roster (A.1 (3)) */
};

/* A subscription stanza: OUT = sent by the user to the contact, IN = received
 * by the user from the contact. */
enum sm_sub_event {
	SM_SUB_OUT_SUBSCRIBE,
	SM_SUB_OUT_SUBSCRIBED,
	SM_SUB_OUT_UNSUBSCRIBE,
	SM_SUB_OUT_UNSUBSCRIBED,
	SM_SUB_IN_SUBSCRIBE,
	SM_SUB_IN_SUBSCRIBED,
	SM_SUB_IN_UNSUBSCRIBE,
	SM_SUB_IN_UNSUBSCRIBED,
};

/* What the caller must do, in this order: presence_after / unavailable_after
 * and forward as the sections say (unavailable before the "unsubscribed",
 * §3.2.2; delivery before the roster push, §3.1.6, §3.2.3, §3.3.3), then store
 * `next` when `changed` and push it when `push`.  A pending-in request alone
 * changes nothing the client sees, so it is never pushed (§3.1.3 Security
 * Warning: no roster item before approval). */
struct sm_sub_result {
	struct sm_sub_state next;
	bool changed;       /* next differs from the current state: store it */
	bool push;          /* what the client sees of the item changed (listed,
	                       'subscription', 'ask', 'approved'): send a roster push
	                       to the user's interested resources (§3) */
	bool forward;       /* OUT: route the stanza to the contact (ROUTE? MUST);
	                       IN: deliver it to the user (DELIVER? MUST) */
	bool auto_reply_subscribed;   /* send "subscribed" from the user's bare JID to
	                                 the contact on the user's behalf (A.3.1 [2],
	                                 §3.1.3 2, §3.4.2) */
	bool auto_reply_unsubscribed; /* send "unsubscribed" likewise (A.3.2 [1]) */
	bool keep_request;  /* store this "subscribe" as the pending-in request and
	                       deliver it at every login until answered (§3.1.3 4) */
	bool drop_request;  /* the kept pending-in request is answered or withdrawn:
	                       discard it */
	bool create_item;   /* the contact was not listed and is now: create the roster
	                       item (OUT "subscribe", an approval, a pre-approval) */
	bool presence_after;    /* a "subscribed" goes to the contact and it now has a
	                           subscription: send it the user's current presence from
	                           each available resource (§3.1.5) */
	bool unavailable_after; /* the contact's subscription to the user ends: send it
	                           "unavailable" from each available resource of the user
	                           (§3.2.2, §3.3.3 3) */
};

/*
 * Apply ev to *cur.  Fills *out and returns 0, or returns -1 (out untouched)
 * when ev is not an event or *cur is not one of the states described above.
 * A state that is not listed and has nothing pending (next.listed and
 * next.pending_in both false) needs no roster row any more.
 */
int sm_sub_apply(const struct sm_sub_state *cur, enum sm_sub_event ev,
		 struct sm_sub_result *out);

/* Whether the item is shown to the client in roster results and pushes: only
 * a listed contact is (A.1 (3), §3.1.3 Security Warning). */
bool sm_sub_item_visible(const struct sm_sub_state *s);

/* The 'ask' attribute of the item: "subscribe" in the Pending Out states
 * (§2.1.2.2), otherwise NULL. */
const char *sm_sub_ask(const struct sm_sub_state *s);

/* "none", "to", "from", "both" ("none" for a value out of range). */
const char *sm_sub_str(int sub);
/* The enum sm_sub named by s, or -1 if unknown. */
int sm_sub_parse(const char *s);

#endif
