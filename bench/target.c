/*
 * target — see target.h.  /proc/PID/stat's second field (comm) may contain
 * spaces and parentheses: fields are counted from the last ')'.
 */
#include "bench/target.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

static int read_file(const char *path, char *buf, size_t cap)
{
	FILE *f = fopen(path, "r");
	size_t n;

	if (!f)
		return -1;
	n = fread(buf, 1, cap - 1, f);
	fclose(f);
	buf[n] = '\0';
	return (int)n;
}

static int pid_cpu(pid_t pid, double *cpu_s)
{
	char path[64], buf[2048], *p;
	unsigned long long ut, st;
	static long hz;

	if (!hz)
		hz = sysconf(_SC_CLK_TCK);
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (read_file(path, buf, sizeof(buf)) <= 0 || !(p = strrchr(buf, ')')))
		return -1;
	/* after ") ": state(3) ppid pgrp session tty_nr tpgid flags minflt cminflt
	 * majflt cmajflt utime(14) stime(15) */
	if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
		return -1;
	*cpu_s = (double)(ut + st) / (double)hz;
	return 0;
}

static int pid_rss(pid_t pid, uint64_t *kib)
{
	char path[64], buf[4096], *p;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if (read_file(path, buf, sizeof(buf)) <= 0 || !(p = strstr(buf, "\nVmRSS:")))
		return -1;
	*kib = strtoull(p + 7, NULL, 10);
	return 0;
}

unsigned target_sample(const pid_t *pids, unsigned n, struct target_sample *out)
{
	memset(out, 0, sizeof(*out));
	for (unsigned i = 0; i < n; i++) {
		double c;
		uint64_t r;
		if (pid_cpu(pids[i], &c) < 0 || pid_rss(pids[i], &r) < 0)
			continue;
		out->cpu_s += c;
		out->rss_kib += r;
		out->alive++;
	}
	return out->alive;
}

double target_self_cpu(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
	       ru.ru_stime.tv_usec / 1e6;
}
