/*
 * echo.c — the latency floor of this machine for bench/compare: a bare TCP echo, pinned like
 * the XMPP servers, at the equal-load pass's message rate and size. Built by run.sh with cc.
 *
 *   echo server PORT                 echo every byte back (one thread, epoll); until SIGTERM
 *   echo client PORT RATE SECONDS SIZE CONNS
 *                                    CONNS connections; RATE messages/s in total, open loop
 *                                    (a periodic timerfd, the messages due spread round-robin
 *                                    over the connections); each message is SIZE bytes and
 *                                    carries its send time; round trip measured against it.
 *                                    Prints one JSON object on stdout.
 *
 * What it measures: a message goes from the load CPU to the server CPU and back, the same
 * trip a chat message makes through a server (sender -> server -> receiver, both clients on
 * the load CPU), with no TLS, no XML and no routing. At a low rate both CPUs are mostly idle
 * between messages, and an idle vCPU halts: the wake-ups are in this tail, and in every
 * server's (DESIGN §3). The latency is from the write(2) to the end of the read that
 * completes the echo, as xedge-bench measures from the send time in the stanza.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define MAX_MSG 4096

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void die(const char *what)
{
	perror(what);
	exit(1);
}

static void nodelay(int fd)
{
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

static struct sockaddr_in loopback(int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	return a;
}

static _Noreturn void server(int port)
{
	int ls = socket(AF_INET, SOCK_STREAM, 0), one = 1;
	struct sockaddr_in a = loopback(port);
	setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (bind(ls, (struct sockaddr *)&a, sizeof a) < 0 || listen(ls, 4096) < 0)
		die("echo server: listen");
	int ep = epoll_create1(0);
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = ls };
	epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev);
	fprintf(stderr, "echo server: listening on 127.0.0.1:%d\n", port);
	char buf[65536];
	for (;;) {
		struct epoll_event evs[64];
		int n = epoll_wait(ep, evs, 64, -1);
		if (n < 0 && errno == EINTR)
			continue;
		for (int i = 0; i < n; i++) {
			int fd = evs[i].data.fd;
			if (fd == ls) {
				int c = accept(ls, NULL, NULL);
				if (c < 0)
					continue;
				nodelay(c);
				struct epoll_event ce = { .events = EPOLLIN, .data.fd = c };
				epoll_ctl(ep, EPOLL_CTL_ADD, c, &ce);
				continue;
			}
			ssize_t r = read(fd, buf, sizeof buf);
			if (r <= 0) {
				close(fd);
				continue;
			}
			/* Small messages on an idle loopback socket: the write takes them whole; a
			   short write would only delay the rest to the next round, never lose it. */
			for (ssize_t off = 0; off < r;) {
				ssize_t w = write(fd, buf + off, (size_t)(r - off));
				if (w <= 0)
					break;
				off += w;
			}
		}
	}
}

struct conn {
	int fd;
	size_t have;           /* bytes of the message being received */
	char buf[MAX_MSG];
};

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static double pct(const uint64_t *v, size_t n, double p)
{
	if (!n)
		return 0;
	size_t i = (size_t)(p * (double)(n - 1) + 0.5);
	return (double)v[i] / 1e6;
}

static int client(int port, double rate, double seconds, size_t size, int nconn)
{
	if (size < 16 || size > MAX_MSG || rate <= 0 || nconn < 1)
		return fprintf(stderr, "echo client: bad arguments\n"), 2;
	size_t cap = (size_t)(rate * seconds) + 16, nlat = 0;
	uint64_t *lat = malloc(cap * sizeof *lat);
	struct conn *cs = calloc((size_t)nconn, sizeof *cs);
	int ep = epoll_create1(0);
	if (!lat || !cs || ep < 0)
		die("echo client: set-up");
	for (int i = 0; i < nconn; i++) {
		struct sockaddr_in a = loopback(port);
		cs[i].fd = socket(AF_INET, SOCK_STREAM, 0);
		if (connect(cs[i].fd, (struct sockaddr *)&a, sizeof a) < 0)
			die("echo client: connect");
		nodelay(cs[i].fd);
		struct epoll_event ev = { .events = EPOLLIN, .data.u32 = (uint32_t)i };
		epoll_ctl(ep, EPOLL_CTL_ADD, cs[i].fd, &ev);
	}
	int tfd = timerfd_create(CLOCK_MONOTONIC, 0);
	uint64_t period = (uint64_t)(1e9 / rate);
	struct itimerspec its = { .it_interval = { (time_t)(period / 1000000000u), (long)(period % 1000000000u) },
				  .it_value = { 0, 1000000 } };
	timerfd_settime(tfd, 0, &its, NULL);
	struct epoll_event tev = { .events = EPOLLIN, .data.u32 = UINT32_MAX };
	epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &tev);

	uint64_t t0 = now_ns(), end = t0 + (uint64_t)(seconds * 1e9), drain_end = end + 2000000000u;
	uint64_t sent = 0, got = 0, late_ticks = 0;
	int next = 0, sending = 1;
	char msg[MAX_MSG];
	memset(msg, 'x', sizeof msg);
	while (got < sent || sending) {
		uint64_t t = now_ns();
		if (sending && t >= end) {
			sending = 0;
			struct itimerspec off = { 0 };
			timerfd_settime(tfd, 0, &off, NULL);
		}
		if (!sending && t >= drain_end)
			break;
		struct epoll_event evs[64];
		int n = epoll_wait(ep, evs, 64, sending ? 100 : 10);
		for (int i = 0; i < n; i++) {
			uint32_t k = evs[i].data.u32;
			if (k == UINT32_MAX) {
				uint64_t due = 0;
				if (read(tfd, &due, sizeof due) != sizeof due || !sending)
					continue;
				if (due > 1)
					late_ticks += due - 1;
				for (uint64_t d = 0; d < due; d++) {
					struct conn *c = &cs[next];
					next = (next + 1) % nconn;
					uint64_t ts = now_ns();
					memcpy(msg, &ts, sizeof ts);
					if (write(c->fd, msg, size) != (ssize_t)size)
						die("echo client: write");
					sent++;
				}
				continue;
			}
			struct conn *c = &cs[k];
			ssize_t r = read(c->fd, c->buf + c->have, size - c->have);
			if (r <= 0)
				die("echo client: read (the echo server went away)");
			c->have += (size_t)r;
			/* Messages arrive in order on a connection; one read may end one message. */
			if (c->have == size) {
				uint64_t ts;
				memcpy(&ts, c->buf, sizeof ts);
				if (nlat < cap)
					lat[nlat++] = now_ns() - ts;
				got++;
				c->have = 0;
			}
		}
	}
	qsort(lat, nlat, sizeof *lat, cmp_u64);
	double sum = 0;
	for (size_t i = 0; i < nlat; i++)
		sum += (double)lat[i] / 1e6;
	printf("{\"tool\": \"bench/compare/echo.c\", \"rate\": %.1f, \"seconds\": %.1f, \"size\": %zu, "
	       "\"connections\": %d, \"sent\": %llu, \"received\": %llu, \"lost\": %llu, "
	       "\"sent_per_s\": %.1f, \"timer_ticks_late\": %llu, \"rtt_ms\": {\"count\": %zu, "
	       "\"p50\": %.4f, \"p90\": %.4f, \"p99\": %.4f, \"p999\": %.4f, \"max\": %.4f, "
	       "\"mean\": %.4f}}\n",
	       rate, seconds, size, nconn, (unsigned long long)sent, (unsigned long long)got,
	       (unsigned long long)(sent - got), (double)sent / seconds,
	       (unsigned long long)late_ticks, nlat, pct(lat, nlat, 0.5), pct(lat, nlat, 0.9),
	       pct(lat, nlat, 0.99), pct(lat, nlat, 0.999), nlat ? (double)lat[nlat - 1] / 1e6 : 0,
	       nlat ? sum / (double)nlat : 0);
	return 0;
}

int main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	if (argc == 3 && !strcmp(argv[1], "server"))
		server(atoi(argv[2]));
	if (argc == 7 && !strcmp(argv[1], "client"))
		return client(atoi(argv[2]), atof(argv[3]), atof(argv[4]), (size_t)atol(argv[5]),
			      atoi(argv[6]));
	fprintf(stderr, "usage: %s server PORT | client PORT RATE SECONDS SIZE CONNS\n", argv[0]);
	return 2;
}
