/*
 * iplimit — per client IP: concurrent connections and new connections per
 * second, process-wide (SO_REUSEPORT spreads one client's connections over
 * all workers, so a per-worker count would multiply the limit).
 *
 * A mutex guards one open-addressed table; it is taken twice per connection
 * (accept and close), never per stanza.  Addresses are 16 bytes (IPv4 as
 * v4-mapped IPv6).  When the table is full, new addresses are refused: a flood
 * of distinct sources must not grow memory without bound.  Account creation
 * attempts (XEP-0077) are counted per minute in a table of their own.
 */
#ifndef XEDGE_IPLIMIT_H
#define XEDGE_IPLIMIT_H

#include <stdint.h>

enum iplimit_verdict { IPLIMIT_OK = 0, IPLIMIT_TOO_MANY, IPLIMIT_TOO_FAST, IPLIMIT_TABLE_FULL };

/* Count a new connection from ip at time now (seconds).  On IPLIMIT_OK the
 * caller must call iplimit_leave() when the connection ends. */
int iplimit_enter(const uint8_t ip[16], uint32_t max_conc, uint32_t per_sec, uint64_t now);
void iplimit_leave(const uint8_t ip[16]);

/*
 * In-band registration (XEP-0077): count one account creation attempt from ip
 * in the minute of `now` (seconds; fixed windows of now / 60).  IPLIMIT_OK
 * when it is within per_min (and counted), IPLIMIT_TOO_FAST when per_min were
 * already counted this minute, IPLIMIT_TABLE_FULL when too many addresses
 * registered this minute (refused rather than grow).  A separate, smaller
 * table than the connection counts: registration is rare.
 */
int iplimit_register(const uint8_t ip[16], uint32_t per_min, uint64_t now);

const char *iplimit_verdict_str(int v);

#endif
