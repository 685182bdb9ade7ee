/*
 * notify — the systemd readiness protocol (sd_notify(3)) without libsystemd.
 * When $NOTIFY_SOCKET names a Unix datagram socket (a path, or an abstract
 * name written with a leading '@'), notify_send() writes one datagram of
 * newline-separated KEY=VALUE lines to it ("READY=1", "STATUS=...",
 * "STOPPING=1", "WATCHDOG=1"); without it, every call is a no-op.  Sending
 * never blocks and never fails the caller: a lost notification is not an
 * error of the server.  Call notify_init() once, before any thread starts.
 */
#ifndef XEDGE_NOTIFY_H
#define XEDGE_NOTIFY_H

#include <stdbool.h>
#include <stdint.h>

/* Reads $NOTIFY_SOCKET and $WATCHDOG_USEC (honoured only when $WATCHDOG_PID
 * is unset or names this process) and unsets them, so that no child
 * inherits them.  Returns true when notifications go somewhere. */
bool notify_init(void);

/* One datagram; `fmt` is printf-like.  At most 1 KiB is sent. */
void notify_send(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* How often to send WATCHDOG=1, in milliseconds: half of $WATCHDOG_USEC,
 * or 0 when systemd expects no pings. */
uint64_t notify_watchdog_ms(void);

#endif
