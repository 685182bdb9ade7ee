/*
 * sock — setting up an outbound TCP socket, the one way for the edge's
 * outbound connections (upstream streams; later s2s) and xedge-bench's
 * clients.
 *
 * io_uring cannot set socket options (liburing 2.3 has no setsockopt or
 * bind op), so a socket is made here with plain syscalls, then the caller
 * moves it into its ring's registered-file table and connects on the
 * direct descriptor.  Nothing here blocks: no connect, no name lookup.
 */
#ifndef XEDGE_SOCK_H
#define XEDGE_SOCK_H

#include <stdint.h>
#include <sys/socket.h>

struct sock_opts {
	int rcvbuf, sndbuf;          /* SO_RCVBUF / SO_SNDBUF; 0: the kernel's default (autotuning) */
	const struct sockaddr *src;  /* bind to this source address (port 0); NULL: the kernel picks */
	socklen_t srclen;
	uint16_t port_lo, port_hi;   /* this socket's ephemeral port window (IP_LOCAL_PORT_RANGE);
	                                0: the shared range */
};

/*
 * A TCP socket for `family` (AF_INET / AF_INET6), SOCK_CLOEXEC, with
 * TCP_NODELAY and what `o` asks for (NULL: nothing more).  With a source
 * address the port is chosen at connect time (IP_BIND_ADDRESS_NO_PORT), so
 * ports are unique per destination rather than per host.  The port window
 * needs Linux 6.3 and is ignored where unsupported; so are the buffer sizes
 * beyond the kernel's caps.  Returns the descriptor, or -errno with *what
 * naming the call that failed ("socket", "bind").
 */
int sock_outbound(int family, const struct sock_opts *o, const char **what);

#endif
