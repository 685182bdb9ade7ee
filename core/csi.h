/*
 * csi — XEP-0352 Client State Indication, held at the edge (native
 * backend).  While a client says it is <inactive/>, the stanzas it would
 * not miss if they came later are held: available and unavailable presence
 * (only the latest from each sender is kept: an older one is superseded)
 * and chat-state-only messages (XEP-0085, no body; the latest per sender).
 * Everything held goes out, in the order it came, before any other stanza
 * is written to the client (a message with a body, an iq, a tracked
 * stanza), when it says <active/>, or when the held bytes pass CSI_HOLD_MAX.
 * A held chat state stays tracked (WIRE_STANZA_TRACK: live messages are
 * until written): if the session ends first, the session server keeps it as
 * it keeps any message not yet written; a superseded one is reported
 * written, so it is forgotten.  Presence is never tracked.
 *
 * Delivery reports (docs/protocol.md) count stanza bytes in the session
 * server's order: a superseded stanza's bytes are counted as handed out
 * when it is dropped, and a flush precedes every stanza that is not held,
 * so a tracked stanza's offset is the same as if nothing had been held.
 */
#ifndef XEDGE_CSI_H
#define XEDGE_CSI_H

#include <stdbool.h>
#include <stddef.h>

#include "core/worker-t.h"

#define NS_CSI "urn:xmpp:csi:0"
#define CSI_HOLD_MAX (64u * 1024u)   /* held bytes per session before a flush */
#define CSI_HOLD_ITEMS 128           /* held stanzas per session before a flush */

/* Writes one stanza from the session server to the client (be_native.c):
 * output, counters, delivery-report bytes. */
typedef void (*csi_out_fn)(struct conn *c, const uint8_t *raw, size_t len, int kind, bool track);

/* <active/> or <inactive/> from the client (s: the element, in NS_CSI).
 * GO_ON, or STOP_DISCARD after a stream error (an unknown element). */
int csi_element(struct conn *c, const struct xs_stanza *s, csi_out_fn out);

/* A stanza for the client: true when it was held (or superseded one);
 * false: write it now (after csi_flush). */
bool csi_hold(struct conn *c, const struct wire_msg *m);

/* Write everything held, in order, through out. */
void csi_flush(struct conn *c, csi_out_fn out);

/* The session ends: drop what is held. */
void csi_free(struct session *s);

#endif
