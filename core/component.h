/*
 * component — external components (XEP-0114, jabber:component:accept): a
 * gateway or service connects to a `component` listener, proves it knows the
 * shared secret of one of the configured `components` (the handshake), and
 * from then on serves that domain and its subdomains.  Its stanzas go to the
 * session server as external ones (route.h); stanzas for its domain come
 * back from the session server to the worker that holds it.
 *
 * One stream per component name in the process: a second one that
 * authenticates while the first is connected gets <conflict/> (component.c
 * says why).  Stanzas written to a stream that dropped before its socket
 * took them are bounced (service-unavailable), as are those that arrive
 * after it is gone.
 */
#ifndef XEDGE_COMPONENT_H
#define XEDGE_COMPONENT_H

#include "core/worker-t.h"

extern const struct role_ops role_component;

/* Is configured component k (cfg index) connected on this worker? */
bool component_connected(const struct worker *w, size_t k);

/* Write m (a WIRE_ROUTE for component k's domain) to its stream, with any
 * top-level namespace declaration removed (the component reads it in
 * jabber:component:accept): false when it is not connected here or the
 * stream could not take it (the caller bounces). */
bool component_deliver(struct worker *w, size_t k, const struct wire_msg *m);

#endif
