/*
 * test_sub — sm/sub.c: every row of RFC 6121 Appendix A, Tables 2 to 9
 * (A.2.1 to A.3.4), the §3.4 pre-approval rows, the pending-in request
 * (§3.1.3 4, A.1 (3)), rejected inputs, and both ends of whole exchanges.
 *
 * A row is written with the RFC's own state names.  A name may carry
 * " +approved" (the §3.4 'approved' flag) and " +listed" / " -listed"; by
 * default "None" and "None + Pending In" are not in the user's roster (A.1:
 * "None" includes a contact not in the roster at all) and every other state
 * is.  The flags list everything the result must say; all others must be off.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sm/sub.h"

#define FWD    (1u << 0)  /* ROUTE?/DELIVER? MUST */
#define CHG    (1u << 1)  /* store the next state */
#define PUSH   (1u << 2)  /* roster push */
#define ASUB   (1u << 3)  /* auto-reply "subscribed" */
#define AUNSUB (1u << 4)  /* auto-reply "unsubscribed" */
#define KEEP   (1u << 5)  /* keep the request as pending-in */
#define DROP   (1u << 6)  /* discard the kept request */
#define CREATE (1u << 7)  /* create the roster item */
#define PRES   (1u << 8)  /* current presence to the contact */
#define UNAV   (1u << 9)  /* unavailable to the contact */

static bool take(const char **p, const char *word)
{
	size_t n = strlen(word);

	if (strncmp(*p, word, n) != 0)
		return false;
	*p += n;
	return true;
}

/* Parse "<RFC state name>[ +approved][ +listed| -listed]". */
static struct sm_sub_state st(const char *name)
{
	struct sm_sub_state s = { 0 };
	const char *p = name;

	if (take(&p, "None + Pending Out+In"))
		s.pending_out = s.pending_in = true;
	else if (take(&p, "None + Pending Out"))
		s.pending_out = true;
	else if (take(&p, "None + Pending In"))
		s.pending_in = true;
	else if (take(&p, "None"))
		;
	else if (take(&p, "To + Pending In"))
		s.sub = SM_SUB_TO, s.pending_in = true;
	else if (take(&p, "To"))
		s.sub = SM_SUB_TO;
	else if (take(&p, "From + Pending Out"))
		s.sub = SM_SUB_FROM, s.pending_out = true;
	else if (take(&p, "From"))
		s.sub = SM_SUB_FROM;
	else if (take(&p, "Both"))
		s.sub = SM_SUB_BOTH;
	else
		fail_msg("bad state name in the test: %s", name);
	s.listed = s.sub != SM_SUB_NONE || s.pending_out;
	if (take(&p, " +approved"))
		s.preapproved = s.listed = true;
	if (take(&p, " +listed"))
		s.listed = true;
	else if (take(&p, " -listed"))
		s.listed = false;
	if (*p != '\0')
		fail_msg("bad state name in the test: %s", name);
	return s;
}

static unsigned flags_of(const struct sm_sub_result *r)
{
	return (r->forward ? FWD : 0) | (r->changed ? CHG : 0) | (r->push ? PUSH : 0) |
	       (r->auto_reply_subscribed ? ASUB : 0) |
	       (r->auto_reply_unsubscribed ? AUNSUB : 0) | (r->keep_request ? KEEP : 0) |
	       (r->drop_request ? DROP : 0) | (r->create_item ? CREATE : 0) |
	       (r->presence_after ? PRES : 0) | (r->unavailable_after ? UNAV : 0);
}

static void check_row(int line, const char *cur, enum sm_sub_event ev, const char *next,
		      unsigned want)
{
	struct sm_sub_state c = st(cur), n = st(next);
	struct sm_sub_result r;

	if (sm_sub_apply(&c, ev, &r) != 0)
		fail_msg("line %d: %s rejected", line, cur);
	if (r.next.sub != n.sub || r.next.pending_out != n.pending_out ||
	    r.next.pending_in != n.pending_in || r.next.preapproved != n.preapproved ||
	    r.next.listed != n.listed)
		fail_msg("line %d: %s -> sub %u out %d in %d approved %d listed %d, want %s",
			 line, cur, r.next.sub, r.next.pending_out, r.next.pending_in,
			 r.next.preapproved, r.next.listed, next);
	if (flags_of(&r) != want)
		fail_msg("line %d: %s: flags 0x%x, want 0x%x", line, cur, flags_of(&r), want);
}

#define ROW(cur, ev, next, flags) check_row(__LINE__, cur, ev, next, flags)

/* A.2.1 Table 2: Processing of outbound "subscribe" stanzas. */
static void test_out_subscribe(void **state)
{
	enum sm_sub_event e = SM_SUB_OUT_SUBSCRIBE;

	/* "None" | MUST [1] | "None + Pending Out"; [1] sets 'ask'; §3.1.2 push */
	ROW("None", e, "None + Pending Out", FWD | CHG | PUSH | CREATE);
	/* "None + Pending Out" | MUST | no state change */
	ROW("None + Pending Out", e, "None + Pending Out", FWD);
	/* "None + Pending In" | MUST [1] | "None + Pending Out+In" */
	ROW("None + Pending In", e, "None + Pending Out+In", FWD | CHG | PUSH | CREATE);
	/* "None + Pending Out+In" | MUST | no state change */
	ROW("None + Pending Out+In", e, "None + Pending Out+In", FWD);
	/* "To" | MUST | no state change */
	ROW("To", e, "To", FWD);
	/* "To + Pending In" | MUST | no state change */
	ROW("To + Pending In", e, "To + Pending In", FWD);
	/* "From" | MUST [1] | "From + Pending Out" */
	ROW("From", e, "From + Pending Out", FWD | CHG | PUSH);
	/* "From + Pending Out" | MUST | no state change */
	ROW("From + Pending Out", e, "From + Pending Out", FWD);
	/* "Both" | MUST | no state change */
	ROW("Both", e, "Both", FWD);

	/* the contact already in the roster: nothing to create */
	ROW("None +listed", e, "None + Pending Out", FWD | CHG | PUSH);
	ROW("None + Pending In +listed", e, "None + Pending Out+In", FWD | CHG | PUSH);
	/* a pre-approval is kept across the user's own request */
	ROW("None +approved", e, "None + Pending Out +approved", FWD | CHG | PUSH);
}

/* A.2.2 Table 3: Processing of outbound "unsubscribe" stanzas. */
static void test_out_unsubscribe(void **state)
{
	enum sm_sub_event e = SM_SUB_OUT_UNSUBSCRIBE;

	/* "None" | MUST | no state change */
	ROW("None", e, "None", FWD);
	/* "None + Pending Out" | MUST | "None"; the item stays in the roster */
	ROW("None + Pending Out", e, "None +listed", FWD | CHG | PUSH);
	/* "None + Pending In" | MUST | no state change */
	ROW("None + Pending In", e, "None + Pending In", FWD);
	/* "None + Pending Out+In" | MUST | "None + Pending In" */
	ROW("None + Pending Out+In", e, "None + Pending In +listed", FWD | CHG | PUSH);
	/* "To" | MUST | "None" */
	ROW("To", e, "None +listed", FWD | CHG | PUSH);
	/* "To + Pending In" | MUST | "None + Pending In" */
	ROW("To + Pending In", e, "None + Pending In +listed", FWD | CHG | PUSH);
	/* "From" | MUST | no state change */
	ROW("From", e, "From", FWD);
	/* "From + Pending Out" | MUST | "From" */
	ROW("From + Pending Out", e, "From", FWD | CHG | PUSH);
	/* "Both" | MUST | "From" */
	ROW("Both", e, "From", FWD | CHG | PUSH);

	/* the user's pre-approval for the contact is not the user's subscription */
	ROW("To +approved", e, "None +approved", FWD | CHG | PUSH);
}

/* A.2.3 Table 4: Processing of outbound "subscribed" stanzas, and §3.4.2. */
static void test_out_subscribed(void **state)
{
	enum sm_sub_event e = SM_SUB_OUT_SUBSCRIBED;

	/* "None" | M.N. | pre-approval [1]; §3.4.2 4: create the item, approved */
	ROW("None", e, "None +approved", CHG | PUSH | CREATE);
	/* "None + Pending Out" | M.N. | pre-approval [1]; §3.4.2 3 */
	ROW("None + Pending Out", e, "None + Pending Out +approved", CHG | PUSH);
	/* "None + Pending In" | MUST | "From"; §3.1.5: presence follows; the request
	 * is answered; A.1 (3): the contact is added on approval */
	ROW("None + Pending In", e, "From", FWD | CHG | PUSH | DROP | CREATE | PRES);
	/* "None + Pending Out+In" | MUST | "From + Pending Out" */
	ROW("None + Pending Out+In", e, "From + Pending Out", FWD | CHG | PUSH | DROP | PRES);
	/* "To" | M.N. | pre-approval [1] */
	ROW("To", e, "To +approved", CHG | PUSH);
	/* "To + Pending In" | MUST | "Both" */
	ROW("To + Pending In", e, "Both", FWD | CHG | PUSH | DROP | PRES);
	/* "From" | M.N. | no state change; §3.4.2 1: silently ignore */
	ROW("From", e, "From", 0);
	/* "From + Pending Out" | M.N. | no state change */
	ROW("From + Pending Out", e, "From + Pending Out", 0);
	/* "Both" | M.N. | no state change */
	ROW("Both", e, "Both", 0);

	/* §3.4.2 3 on an item the user already has */
	ROW("None +listed", e, "None +approved", CHG | PUSH);
	/* a second pre-approval changes nothing */
	ROW("None +approved", e, "None +approved", 0);
	ROW("To +approved", e, "To +approved", 0);
	/* approving a request from a contact already in the roster */
	ROW("None + Pending In +listed", e, "From", FWD | CHG | PUSH | DROP | PRES);
}

/* A.2.4 Table 5: Processing of outbound "unsubscribed" stanzas, and §3.2.2. */
static void test_out_unsubscribed(void **state)
{
	enum sm_sub_event e = SM_SUB_OUT_UNSUBSCRIBED;

	/* "None" | S.N. | no state change [1] */
	ROW("None", e, "None", 0);
	/* "None + Pending Out" | S.N. | no state change [1] */
	ROW("None + Pending Out", e, "None + Pending Out", 0);
	/* "None + Pending In" | MUST | "None": the request is denied; the user never
	 * listed the contact, so nothing is shown or pushed */
	ROW("None + Pending In", e, "None", FWD | CHG | DROP);
	/* "None + Pending Out+In" | MUST | "None + Pending Out" */
	ROW("None + Pending Out+In", e, "None + Pending Out", FWD | CHG | DROP);
	/* "To" | S.N. | no state change [1] */
	ROW("To", e, "To", 0);
	/* "To + Pending In" | MUST | "To" */
	ROW("To + Pending In", e, "To", FWD | CHG | DROP);
	/* "From" | MUST | "None"; §3.2.2: unavailable from every resource first */
	ROW("From", e, "None +listed", FWD | CHG | PUSH | UNAV);
	/* "From + Pending Out" | MUST | "None + Pending Out" */
	ROW("From + Pending Out", e, "None + Pending Out", FWD | CHG | PUSH | UNAV);
	/* "Both" | MUST | "To" */
	ROW("Both", e, "To", FWD | CHG | PUSH | UNAV);

	/* [1] / §3.2.2 2: cancels a pre-approval, MUST NOT route, push without it */
	ROW("None +approved", e, "None +listed", CHG | PUSH);
	ROW("None + Pending Out +approved", e, "None + Pending Out", CHG | PUSH);
	ROW("To +approved", e, "To", CHG | PUSH);
	/* denying a contact the user had listed: the item stays, unchanged */
	ROW("None + Pending In +listed", e, "None +listed", FWD | CHG | DROP);
}

/* A.3.1 Table 6: Processing of inbound "subscribe" stanzas, and §3.1.3, §3.4.2. */
static void test_in_subscribe(void **state)
{
	enum sm_sub_event e = SM_SUB_IN_SUBSCRIBE;

	/* "None" | MUST [1] | "None + Pending In"; §3.1.3 4: the request is kept;
	 * Security Warning: no roster item, no push */
	ROW("None", e, "None + Pending In", FWD | CHG | KEEP);
	/* "None + Pending Out" | MUST | "None + Pending Out+In" */
	ROW("None + Pending Out", e, "None + Pending Out+In", FWD | CHG | KEEP);
	/* "None + Pending In" | S.N. | no state change (one request kept, §3.1.3 4) */
	ROW("None + Pending In", e, "None + Pending In", 0);
	/* "None + Pending Out+In" | S.N. | no state change */
	ROW("None + Pending Out+In", e, "None + Pending Out+In", 0);
	/* "To" | MUST | "To + Pending In" */
	ROW("To", e, "To + Pending In", FWD | CHG | KEEP);
	/* "To + Pending In" | S.N. | no state change */
	ROW("To + Pending In", e, "To + Pending In", 0);
	/* "From" | S.N. [2] | no state change; [2] auto-reply "subscribed" */
	ROW("From", e, "From", ASUB | PRES);
	/* "From + Pending Out" | S.N. [2] | no state change */
	ROW("From + Pending Out", e, "From + Pending Out", ASUB | PRES);
	/* "Both" | S.N. [2] | no state change */
	ROW("Both", e, "Both", ASUB | PRES);

	/* [1] and §3.4.2: with the 'approved' flag the server MUST NOT deliver, MUST
	 * answer "subscribed", and the state becomes "From" */
	ROW("None +approved", e, "From", ASUB | CHG | PUSH | PRES);
	ROW("None + Pending Out +approved", e, "From + Pending Out", ASUB | CHG | PUSH | PRES);
	ROW("To +approved", e, "Both", ASUB | CHG | PUSH | PRES);
	/* a listed contact: the item is shown already, its attributes unchanged */
	ROW("None +listed", e, "None + Pending In +listed", FWD | CHG | KEEP);
}

/* A.3.2 Table 7: Processing of inbound "unsubscribe" stanzas, and §3.3.3. */
static void test_in_unsubscribe(void **state)
{
	enum sm_sub_event e = SM_SUB_IN_UNSUBSCRIBE;

	/* "None" | S.N. | no state change */
	ROW("None", e, "None", 0);
	/* "None + Pending Out" | S.N. | no state change */
	ROW("None + Pending Out", e, "None + Pending Out", 0);
	/* "None + Pending In" | MUST [1] | "None"; [1] auto-reply "unsubscribed";
	 * §3.3.3: the record of the request is removed */
	ROW("None + Pending In", e, "None", FWD | CHG | AUNSUB | DROP);
	/* "None + Pending Out+In" | MUST [1] | "None + Pending Out" */
	ROW("None + Pending Out+In", e, "None + Pending Out", FWD | CHG | AUNSUB | DROP);
	/* "To" | S.N. | no state change */
	ROW("To", e, "To", 0);
	/* "To + Pending In" | MUST [1] | "To" */
	ROW("To + Pending In", e, "To", FWD | CHG | AUNSUB | DROP);
	/* "From" | MUST [1] | "None"; §3.3.3 3: unavailable from each resource */
	ROW("From", e, "None +listed", FWD | CHG | PUSH | AUNSUB | UNAV);
	/* "From + Pending Out" | MUST [1] | "None + Pending Out" */
	ROW("From + Pending Out", e, "None + Pending Out", FWD | CHG | PUSH | AUNSUB | UNAV);
	/* "Both" | MUST [1] | "To" */
	ROW("Both", e, "To", FWD | CHG | PUSH | AUNSUB | UNAV);

	/* a pre-approval is the user's, the contact's unsubscribe leaves it */
	ROW("To +approved", e, "To +approved", 0);
}

/* A.3.3 Table 8: Processing of inbound "subscribed" stanzas, and §3.1.6. */
static void test_in_subscribed(void **state)
{
	enum sm_sub_event e = SM_SUB_IN_SUBSCRIBED;

	/* "None" | S.N. | no state change */
	ROW("None", e, "None", 0);
	/* "None + Pending Out" | MUST | "To" */
	ROW("None + Pending Out", e, "To", FWD | CHG | PUSH);
	/* "None + Pending In" | S.N. | no state change */
	ROW("None + Pending In", e, "None + Pending In", 0);
	/* "None + Pending Out+In" | MUST | "To + Pending In" (request still kept) */
	ROW("None + Pending Out+In", e, "To + Pending In", FWD | CHG | PUSH);
	/* "To" | S.N. | no state change */
	ROW("To", e, "To", 0);
	/* "To + Pending In" | S.N. | no state change */
	ROW("To + Pending In", e, "To + Pending In", 0);
	/* "From" | S.N. | no state change */
	ROW("From", e, "From", 0);
	/* "From + Pending Out" | MUST | "Both" */
	ROW("From + Pending Out", e, "Both", FWD | CHG | PUSH);
	/* "Both" | S.N. | no state change */
	ROW("Both", e, "Both", 0);

	/* an unsolicited "subscribed" does not touch a pre-approval */
	ROW("None +approved", e, "None +approved", 0);
	ROW("None + Pending Out +approved", e, "To +approved", FWD | CHG | PUSH);
}

/* A.3.4 Table 9: Processing of inbound "unsubscribed" stanzas, and §3.2.3. */
static void test_in_unsubscribed(void **state)
{
	enum sm_sub_event e = SM_SUB_IN_UNSUBSCRIBED;

	/* "None" | S.N. | no state change */
	ROW("None", e, "None", 0);
	/* "None + Pending Out" | MUST | "None" (request denied; the item stays) */
	ROW("None + Pending Out", e, "None +listed", FWD | CHG | PUSH);
	/* "None + Pending In" | S.N. | no state change */
	ROW("None + Pending In", e, "None + Pending In", 0);
	/* "None + Pending Out+In" | MUST | "None + Pending In" */
	ROW("None + Pending Out+In", e, "None + Pending In +listed", FWD | CHG | PUSH);
	/* "To" | MUST | "None" */
	ROW("To", e, "None +listed", FWD | CHG | PUSH);
	/* "To + Pending In" | MUST | "None + Pending In" */
	ROW("To + Pending In", e, "None + Pending In +listed", FWD | CHG | PUSH);
	/* "From" | S.N. | no state change */
	ROW("From", e, "From", 0);
	/* "From + Pending Out" | MUST | "From" */
	ROW("From + Pending Out", e, "From", FWD | CHG | PUSH);
	/* "Both" | MUST | "From" */
	ROW("Both", e, "From", FWD | CHG | PUSH);

	ROW("To +approved", e, "None +approved", FWD | CHG | PUSH);
}

/* Inputs that are no state of sub.h, or no event, are refused untouched. */
static void test_rejects(void **state)
{
	static const struct sm_sub_state bad[] = {
		{ .sub = 4, .listed = true },
		{ .sub = 255, .listed = true },
		{ .sub = SM_SUB_TO, .pending_out = true, .listed = true },    /* To + Pending Out */
		{ .sub = SM_SUB_BOTH, .pending_out = true, .listed = true },
		{ .sub = SM_SUB_FROM, .pending_in = true, .listed = true },   /* From + Pending In */
		{ .sub = SM_SUB_BOTH, .pending_in = true, .listed = true },
		{ .sub = SM_SUB_FROM, .preapproved = true, .listed = true },  /* no pre-approval */
		{ .sub = SM_SUB_BOTH, .preapproved = true, .listed = true },
		{ .pending_in = true, .preapproved = true, .listed = true },
		{ .sub = SM_SUB_TO, .pending_in = true, .preapproved = true, .listed = true },
		{ .sub = SM_SUB_TO },                                         /* not listed */
		{ .pending_out = true },
		{ .preapproved = true },
	};
	struct sm_sub_state ok = st("Both");
	struct sm_sub_result r, before;

	memset(&r, 0x5a, sizeof(r));
	before = r;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		for (int ev = SM_SUB_OUT_SUBSCRIBE; ev <= SM_SUB_IN_UNSUBSCRIBED; ev++)
			assert_int_equal(sm_sub_apply(&bad[i], (enum sm_sub_event)ev, &r), -1);
	assert_int_equal(sm_sub_apply(&ok, (enum sm_sub_event)8, &r), -1);
	assert_int_equal(sm_sub_apply(&ok, (enum sm_sub_event)-1, &r), -1);
	assert_memory_equal(&r, &before, sizeof(r));
}

/*
 * Every accepted state, every event: the next state is accepted again, and
 * the derived actions agree with it (nothing is kept that is not pending,
 * a push is never sent for an item the client cannot see, presence goes only
 * to a contact that now has a subscription).
 */
static void test_closed(void **state)
{
	int accepted = 0;

	for (int bits = 0; bits < 128; bits++) {
		struct sm_sub_state s = {
			.sub = bits & 3, .pending_out = bits & 4, .pending_in = bits & 8,
			.preapproved = bits & 16, .listed = bits & 32,
		};
		bool valid = true;

		if (bits & 64)
			s.sub = 4;
		for (int ev = SM_SUB_OUT_SUBSCRIBE; ev <= SM_SUB_IN_UNSUBSCRIBED; ev++) {
			struct sm_sub_result r, again;

			if (sm_sub_apply(&s, (enum sm_sub_event)ev, &r) != 0) {
				valid = false;
				continue;
			}
			assert_int_equal(sm_sub_apply(&r.next, SM_SUB_IN_SUBSCRIBED, &again), 0);
			assert_false(r.keep_request && !r.next.pending_in);
			assert_false(r.keep_request && r.drop_request);
			assert_false(r.push && !r.changed);
			assert_false(r.push && !sm_sub_item_visible(&r.next));
			assert_false(r.create_item && !sm_sub_item_visible(&r.next));
			assert_false(r.presence_after && !(r.next.sub & SM_SUB_FROM));
			assert_false(r.unavailable_after && (r.next.sub & SM_SUB_FROM));
			assert_false(r.forward && r.auto_reply_subscribed);
			/* a listed contact stays listed: only a roster remove drops it */
			assert_false(s.listed && !r.next.listed);
		}
		accepted += valid;
	}
	/* 9 defined states, + "None"/"None + Pending In" unlisted, + 3 approved */
	assert_int_equal(accepted, 9 + 2 + 3);
}

/* Both ends of an exchange, each through its own server (§3.1 to §3.3): the
 * user's OUT event and the contact's IN event for the same stanza. */
static void test_exchanges(void **state)
{
	struct sm_sub_state romeo = st("None"), juliet = st("None");
	struct sm_sub_result r;

	/* §3.1: romeo subscribes, juliet (offline) gets the request kept */
	assert_int_equal(sm_sub_apply(&romeo, SM_SUB_OUT_SUBSCRIBE, &r), 0);
	assert_true(r.forward && r.create_item);
	assert_string_equal(sm_sub_ask(&r.next), "subscribe");
	romeo = r.next;
	assert_int_equal(sm_sub_apply(&juliet, SM_SUB_IN_SUBSCRIBE, &r), 0);
	assert_true(r.forward && r.keep_request && !r.push);
	assert_false(sm_sub_item_visible(&r.next));
	juliet = r.next;

	/* juliet approves: romeo's server sees it with his request pending */
	assert_int_equal(sm_sub_apply(&juliet, SM_SUB_OUT_SUBSCRIBED, &r), 0);
	assert_true(r.forward && r.drop_request && r.create_item && r.presence_after);
	juliet = r.next;
	assert_string_equal(sm_sub_str(juliet.sub), "from");
	assert_int_equal(sm_sub_apply(&romeo, SM_SUB_IN_SUBSCRIBED, &r), 0);
	assert_true(r.forward && r.push);
	romeo = r.next;
	assert_string_equal(sm_sub_str(romeo.sub), "to");
	assert_null(sm_sub_ask(&romeo));

	/* juliet subscribes back: romeo's server answers for him (A.3.1 row "To"
	 * delivers; he approves), then both are "both" */
	assert_int_equal(sm_sub_apply(&juliet, SM_SUB_OUT_SUBSCRIBE, &r), 0);
	juliet = r.next;
	assert_int_equal(sm_sub_apply(&romeo, SM_SUB_IN_SUBSCRIBE, &r), 0);
	assert_true(r.forward && r.keep_request);
	romeo = r.next;
	assert_int_equal(sm_sub_apply(&romeo, SM_SUB_OUT_SUBSCRIBED, &r), 0);
	romeo = r.next;
	assert_int_equal(sm_sub_apply(&juliet, SM_SUB_IN_SUBSCRIBED, &r), 0);
	juliet = r.next;
	assert_string_equal(sm_sub_str(romeo.sub), "both");
	assert_string_equal(sm_sub_str(juliet.sub), "both");

	/* §3.2: juliet cancels romeo's subscription */
	assert_int_equal(sm_sub_apply(&juliet, SM_SUB_OUT_UNSUBSCRIBED, &r), 0);
	assert_true(r.forward && r.unavailable_after);
	juliet = r.next;
	assert_int_equal(sm_sub_apply(&romeo, SM_SUB_IN_UNSUBSCRIBED, &r), 0);
	assert_true(r.forward);
	romeo = r.next;
	assert_string_equal(sm_sub_str(romeo.sub), "from");
	assert_string_equal(sm_sub_str(juliet.sub), "to");

	/* §3.3: juliet unsubscribes from romeo; his server answers "unsubscribed" */
	assert_int_equal(sm_sub_apply(&juliet, SM_SUB_OUT_UNSUBSCRIBE, &r), 0);
	juliet = r.next;
	assert_int_equal(sm_sub_apply(&romeo, SM_SUB_IN_UNSUBSCRIBE, &r), 0);
	assert_true(r.forward && r.auto_reply_unsubscribed && r.unavailable_after);
	romeo = r.next;
	assert_string_equal(sm_sub_str(romeo.sub), "none");
	assert_string_equal(sm_sub_str(juliet.sub), "none");
	/* the answer is a no-op at juliet's server (A.3.4 row "None") */
	assert_int_equal(sm_sub_apply(&juliet, SM_SUB_IN_UNSUBSCRIBED, &r), 0);
	assert_false(r.forward || r.changed);
	assert_true(sm_sub_item_visible(&romeo) && sm_sub_item_visible(&juliet));

	/* §3.4: romeo pre-approves; juliet's request is answered by his server
	 * and consumes the pre-approval */
	assert_int_equal(sm_sub_apply(&romeo, SM_SUB_OUT_SUBSCRIBED, &r), 0);
	assert_false(r.forward);
	romeo = r.next;
	assert_true(romeo.preapproved);
	assert_int_equal(sm_sub_apply(&juliet, SM_SUB_OUT_SUBSCRIBE, &r), 0);
	juliet = r.next;
	assert_int_equal(sm_sub_apply(&romeo, SM_SUB_IN_SUBSCRIBE, &r), 0);
	assert_true(r.auto_reply_subscribed && r.presence_after && !r.forward);
	romeo = r.next;
	assert_false(romeo.preapproved);
	assert_int_equal(sm_sub_apply(&juliet, SM_SUB_IN_SUBSCRIBED, &r), 0);
	juliet = r.next;
	assert_string_equal(sm_sub_str(romeo.sub), "from");
	assert_string_equal(sm_sub_str(juliet.sub), "to");
}

static void test_item(void **state)
{
	struct sm_sub_state s;

	/* A.1 (3): only a request, no item: not shown */
	s = st("None + Pending In");
	assert_false(sm_sub_item_visible(&s));
	assert_null(sm_sub_ask(&s));
	s = st("None + Pending In +listed");
	assert_true(sm_sub_item_visible(&s));
	s = st("None");
	assert_false(sm_sub_item_visible(&s));
	s = st("None +listed");
	assert_true(sm_sub_item_visible(&s));
	/* §2.1.2.2: 'ask' in the "Pending Out" states only */
	s = st("None + Pending Out");
	assert_string_equal(sm_sub_ask(&s), "subscribe");
	s = st("None + Pending Out+In");
	assert_string_equal(sm_sub_ask(&s), "subscribe");
	s = st("From + Pending Out");
	assert_string_equal(sm_sub_ask(&s), "subscribe");
	s = st("To + Pending In");
	assert_null(sm_sub_ask(&s));
	assert_true(sm_sub_item_visible(&s));
	s = st("Both");
	assert_null(sm_sub_ask(&s));
}

static void test_names(void **state)
{
	static const char *const names[] = { "none", "to", "from", "both" };

	for (int i = SM_SUB_NONE; i <= SM_SUB_BOTH; i++) {
		assert_string_equal(sm_sub_str(i), names[i]);
		assert_int_equal(sm_sub_parse(names[i]), i);
	}
	assert_int_equal(SM_SUB_BOTH, SM_SUB_TO | SM_SUB_FROM);
	assert_string_equal(sm_sub_str(-1), "none");
	assert_string_equal(sm_sub_str(4), "none");
	assert_int_equal(sm_sub_parse(""), -1);
	assert_int_equal(sm_sub_parse("remove"), -1);
	assert_int_equal(sm_sub_parse("Both"), -1);
	assert_int_equal(sm_sub_parse("bot"), -1);
	assert_int_equal(sm_sub_parse("both "), -1);
	assert_int_equal(sm_sub_parse("t"), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_out_subscribe),
		cmocka_unit_test(test_out_unsubscribe),
		cmocka_unit_test(test_out_subscribed),
		cmocka_unit_test(test_out_unsubscribed),
		cmocka_unit_test(test_in_subscribe),
		cmocka_unit_test(test_in_unsubscribe),
		cmocka_unit_test(test_in_subscribed),
		cmocka_unit_test(test_in_unsubscribed),
		cmocka_unit_test(test_rejects),
		cmocka_unit_test(test_closed),
		cmocka_unit_test(test_exchanges),
		cmocka_unit_test(test_item),
		cmocka_unit_test(test_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
