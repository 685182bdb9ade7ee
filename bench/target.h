/*
 * target — samples the processes under test through /proc: CPU time
 * (utime + stime of /proc/PID/stat, which covers all threads) and resident
 * memory (VmRSS of /proc/PID/status), summed over every --pid.
 *
 * Reads a few small files per call; the controller calls it once a second.
 */
#ifndef XEDGE_BENCH_TARGET_H
#define XEDGE_BENCH_TARGET_H

#include <stdint.h>
#include <sys/types.h>

struct target_sample {
	double cpu_s;        /* user + system seconds, summed over the live pids */
	uint64_t rss_kib;    /* VmRSS, summed */
	unsigned alive;      /* pids that could be read */
};

/* Fill *out; returns the number of pids read (alive). */
unsigned target_sample(const pid_t *pids, unsigned n, struct target_sample *out);

/* The calling process's own CPU seconds (getrusage: user + system). */
double target_self_cpu(void);

#endif
