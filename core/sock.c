/*
 * sock — outbound TCP sockets; see sock.h.
 */
#include "core/sock.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <unistd.h>

#ifndef IP_LOCAL_PORT_RANGE
#define IP_LOCAL_PORT_RANGE 51       /* Linux 6.3; not in Debian 12's glibc headers */
#endif

int sock_outbound(int family, const struct sock_opts *o, const char **what)
{
	int fd, one = 1, e;

	fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		*what = "socket";
		return -errno;
	}
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (!o)
		return fd;
	if (o->rcvbuf)
		(void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &o->rcvbuf, sizeof(o->rcvbuf));
	if (o->sndbuf)
		(void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &o->sndbuf, sizeof(o->sndbuf));
	if (o->port_lo) {
		uint32_t range = (uint32_t)o->port_lo | (uint32_t)o->port_hi << 16;
		(void)setsockopt(fd, IPPROTO_IP, IP_LOCAL_PORT_RANGE, &range, sizeof(range));
	}
	if (o->src) {
		(void)setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
		if (bind(fd, o->src, o->srclen) < 0) {
			e = errno;
			close(fd);
			*what = "bind";
			return -e;
		}
	}
	return fd;
}
