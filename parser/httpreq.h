/*
 * httpreq — the head of an HTTP/1.x request (RFC 9112 §2-§5), as the admin
 * listener (core/admin_http.c) and the file service (core/upload.c) need
 * it: the method, the path and query, and the few header fields that
 * decide how a body is read or a file is served.  Every line is checked;
 * other fields are skipped.
 *
 * A pure codec: no I/O, no allocation, no globals; the same input gives the
 * same answer whether it arrives at once or a byte at a time (the caller
 * passes everything received so far).
 */
#ifndef XEDGE_HTTPREQ_H
#define XEDGE_HTTPREQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HTTPREQ_MAX 8192          /* request line + header fields + blank line */
#define HTTPREQ_METHOD_MAX 15
#define HTTPREQ_PATH_MAX 1023
#define HTTPREQ_QUERY_MAX 511
#define HTTPREQ_CTYPE_MAX 255
#define HTTPREQ_RANGE_MAX 127

struct httpreq {
	char method[HTTPREQ_METHOD_MAX + 1];
	char path[HTTPREQ_PATH_MAX + 1];    /* origin-form, without the query (still %-encoded) */
	char query[HTTPREQ_QUERY_MAX + 1];  /* after '?' ("" when none) */
	int64_t content_length;             /* -1: no Content-Length */
	bool chunked;                       /* a Transfer-Encoding field is present */
	bool expect_continue;               /* Expect: 100-continue */
	char content_type[HTTPREQ_CTYPE_MAX + 1];  /* "" when none */
	char range[HTTPREQ_RANGE_MAX + 1];  /* "" when none (or too long to honour: ignored) */
};

/*
 * Parse buf[0..len).  Returns the length of the head (through the blank
 * line, > 0) with *r filled; 0 when it is incomplete and len < HTTPREQ_MAX;
 * -400 for a malformed request line or header line (control bytes, a bare
 * CR or LF, obs-fold, a line without ':', a target not starting with '/', a
 * method, path or query over its bound, a Content-Length that is not one
 * number or differs between fields, a Content-Type over its bound); -431
 * when no blank line comes within HTTPREQ_MAX bytes; -505 for a version
 * other than HTTP/1.0 or HTTP/1.1.
 */
long httpreq_parse(const char *buf, size_t len, struct httpreq *r);

/*
 * A Range field value (RFC 9110 §14.1.2) against a representation of `size`
 * bytes: 1 with [*first, *last] for one satisfiable range; 0 when the field
 * is to be ignored (not a bytes range, several ranges, malformed: the whole
 * representation is sent); -416 when it is a single range none of whose
 * bytes exist.
 */
int httpreq_range(const char *v, uint64_t size, uint64_t *first, uint64_t *last);

#endif
