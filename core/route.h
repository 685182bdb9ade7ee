/*
 * route — the edge's end of external routes (docs/architecture.md,
 * "Federation and components"): stanzas between the session server and the
 * entities outside it, components (component.c) and remote servers (s2s.c).
 *
 * Out: a WIRE_ROUTE from the session server goes by its target's domain: a
 * configured component's domain, or a subdomain of one, to that component's
 * stream on this worker; any other domain to s2s (when federation is on).
 * What cannot be delivered is bounced: an error stanza back to its sender
 * (RFC 6120 §8.3; never for an error), through the session server.
 *
 * In: an external entity's stanza, whose `from` its role has checked, goes
 * to the session server as WIRE_ROUTE with the top-level namespace
 * declaration removed: jabber:server and jabber:component:accept are the
 * carrying stream's, and the stream that carries it next declares its own.
 *
 * Shards: a WIRE_ROUTE flagged WIRE_STANZA_SHARD is between users of two
 * shards; it goes on, as it came, to the shard that owns its `to`.  External
 * stanzas go to the shard owning their `to` (a bounce: its sender).
 *
 * Announcements: when a link to a session server comes up, the worker
 * says which component domains it carries (WIRE_DOMAIN up / down) and
 * whether it does s2s.
 */
#ifndef XEDGE_ROUTE_H
#define XEDGE_ROUTE_H

#include "core/worker-t.h"

struct xs_stanza;

/* A link came up: announce this worker's external routes on it. */
void route_link_up(struct link *l);

/* Tell the session server that component k (cfg index) is up or down here. */
void route_component_state(struct worker *w, size_t k, bool up);

/* A WIRE_ROUTE from a session server (on link from): out to its external
 * entity, or, flagged WIRE_STANZA_SHARD, on to the shard owning its `to`. */
void route_from_sm(struct link *from, const struct wire_msg *m);

/* The configured component whose domain is dom[0..n) (canonical) or the
 * nearest parent of it: its index, or -1. */
int route_component(const struct config *cfg, const char *dom, size_t n);

/* An external entity's stanza s (bytes p[0..n)) to the session server, its
 * `from` checked by the caller.  0, or -1 when the link cannot take it (the
 * caller answers the sender). */
int route_to_sm(struct worker *w, const struct xs_stanza *s, const uint8_t *p, size_t n);

/* The stanza could not be delivered: an error of condition cond (RFC 6120
 * §8.3.3) goes back to its sender `from` as if from its target `to`.
 * Nothing for an error, or for a stanza without a sender. */
void route_bounce(struct worker *w, int kind, struct wire_str type, struct wire_str to,
		  struct wire_str from, struct wire_str id, const char *cond);

/* Kind (enum wire_kind) of a stanza by its element name: 0 when not one. */
int route_kind(const struct xs_stanza *s);

#endif
