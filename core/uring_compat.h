/*
 * uring_compat — shims for what Debian 12's liburing 2.3 lacks (DESIGN §3).
 * Every workaround for the library's age lives here, so it can go when the
 * distribution moves on.
 */
#ifndef XEDGE_URING_COMPAT_H
#define XEDGE_URING_COMPAT_H

#include <errno.h>
#include <liburing.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

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

/*
 * A provided-buffer ring of nbufs buffers of bufsize bytes in group bgid,
 * all handed to the kernel.  liburing 2.3 has no io_uring_setup_buf_ring():
 * map the ring and register it by hand.  On success *br and *mem are set
 * (unmap *br with nbufs * sizeof(struct io_uring_buf) bytes, free *mem);
 * returns 0 or -errno.
 */
static inline int compat_setup_buf_ring(struct io_uring *ring, unsigned nbufs, unsigned bufsize,
					int bgid, struct io_uring_buf_ring **br, uint8_t **mem)
{
	struct io_uring_buf_reg reg = { 0 };
	int r;

	*br = mmap(NULL, nbufs * sizeof(struct io_uring_buf), PROT_READ | PROT_WRITE,
		   MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
	if (*br == MAP_FAILED) {
		*br = NULL;
		return -ENOMEM;
	}
	reg.ring_addr = (uint64_t)(uintptr_t)*br;
	reg.ring_entries = nbufs;
	reg.bgid = (uint16_t)bgid;
	r = io_uring_register_buf_ring(ring, &reg, 0);
	if (r < 0)
		return r;
	*mem = malloc((size_t)nbufs * bufsize);
	if (!*mem)
		return -ENOMEM;
	io_uring_buf_ring_init(*br);
	for (unsigned i = 0; i < nbufs; i++)
		io_uring_buf_ring_add(*br, *mem + (size_t)i * bufsize, bufsize, (unsigned short)i,
				      io_uring_buf_ring_mask(nbufs), (int)i);
	io_uring_buf_ring_advance(*br, (int)nbufs);
	return 0;
}

/* liburing 2.3 passes IORING_FILE_INDEX_ALLOC for direct accepts correctly only
 * in io_uring_prep_multishot_accept_direct(); the single-shot helper must be
 * given IORING_FILE_INDEX_ALLOC - 1 (fixed in 2.4).  We use the multishot one. */

#endif
