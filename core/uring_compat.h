/*
 * uring_compat — shims for what Debian 12's liburing 2.3 lacks (DESIGN §3).
 * Every workaround for the library's age lives here, so it can go when the
 * distribution moves on.
 */
#ifndef XEDGE_URING_COMPAT_H
#define XEDGE_URING_COMPAT_H

#include <liburing.h>
#include <string.h>

/* IORING_OP_FIXED_FD_INSTALL (Linux 6.8): install a direct descriptor into
 * the process fd table; liburing 2.3 has neither the opcode nor the helper. */
#ifndef IORING_OP_FIXED_FD_INSTALL
#define XEDGE_OP_FIXED_FD_INSTALL 54
#else
#define XEDGE_OP_FIXED_FD_INSTALL IORING_OP_FIXED_FD_INSTALL
#endif

static inline void compat_prep_fixed_fd_install(struct io_uring_sqe *sqe, unsigned idx)
{
	memset(sqe, 0, sizeof(*sqe));
	sqe->opcode = XEDGE_OP_FIXED_FD_INSTALL;
	sqe->fd = (int)idx;
	sqe->flags = IOSQE_FIXED_FILE;
	/* install_fd_flags 0: the installed fd is O_CLOEXEC */
}

/* liburing 2.3 passes IORING_FILE_INDEX_ALLOC for direct accepts correctly only
 * in io_uring_prep_multishot_accept_direct(); the single-shot helper must be
 * given IORING_FILE_INDEX_ALLOC - 1 (fixed in 2.4).  We use the multishot one. */

#endif
