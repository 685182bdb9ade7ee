/*
 * httpreq — the head of an HTTP/1.x request (RFC 9112 §2-§5), as the admin
 * listener (core/admin_http.c) needs it: the method and the path, every
 * line checked, nothing else kept.
 *
 * A pure codec: no I/O, no allocation, no globals; the same input gives the
 * same answer whether it arrives at once or a byte at a time (the caller
 * passes everything received so far).
 */
#ifndef XEDGE_HTTPREQ_H
#define XEDGE_HTTPREQ_H

#include <stddef.h>

#define HTTPREQ_MAX 4096          /* request line + header fields + blank line */
#define HTTPREQ_METHOD_MAX 15
#define HTTPREQ_PATH_MAX 255

struct httpreq {
	char method[HTTPREQ_METHOD_MAX + 1];
	char path[HTTPREQ_PATH_MAX + 1];   /* origin-form, the query cut off */
};

/*
 * Parse buf[0..len).  Returns the length of the head (through the blank
 * line, > 0) with *r filled; 0 when it is incomplete and len < HTTPREQ_MAX;
 * -400 for a malformed request line or header line (control bytes, a bare
 * CR or LF, obs-fold, a line without ':', a target not starting with '/', a
 * method or path over its bound); -431 when no blank line comes within
 * HTTPREQ_MAX bytes; -505 for a version other than HTTP/1.0 or HTTP/1.1.
 */
long httpreq_parse(const char *buf, size_t len, struct httpreq *r);

#endif
