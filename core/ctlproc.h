/*
 * ctlproc — xedgectl's commands on the running process itself, not its
 * accounts: reload, drain, stats.
 *
 * The process is found by its address claim (claim.h): the holder of the
 * first listener of CONFIG (for an xedge-sm config without listeners, of
 * session_server.listen), so no pid file is needed and a container's
 * preStop hook finds its own xedge.  Signals do the work (SIGHUP reloads,
 * SIGUSR1 drains); the admin HTTP listener (admin.address), when there is
 * one, tells the outcome and the progress.
 *
 * Each returns the exit status: 0 done, 1 failed (a line on stderr says why
 * and what to do).
 */
#ifndef XEDGE_CTLPROC_H
#define XEDGE_CTLPROC_H

#include "core/config.h"

/* SIGHUP, then wait (up to 15 s) for xedge_config_reloads_total to move:
 * "reloaded", or "reload failed" (1). */
int ctlproc_reload(const struct config *cfg);

/* SIGUSR1: the edge drains and stays up, not ready; wait (drain.grace +
 * 10 s at most, with admin.address) until no client is left, printing how
 * many every second.  For a preStop hook: the hook ends before the
 * container's main process does, and the SIGTERM that follows exits at once. */
int ctlproc_drain(const struct config *cfg);

/* GET /metrics and print a summary table. */
int ctlproc_stats(const struct config *cfg);

#endif
