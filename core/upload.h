/*
 * upload — XEP-0363 HTTP file upload, served by the edge (docs/architecture.md,
 * "File upload").
 *
 * Slots: a bound client's <request xmlns='urn:xmpp:http:upload:0'/> to the
 * upload domain is answered here, not by the session server (which lists the
 * service in disco#items and answers its disco#info: sm/upload.c).  A slot is
 *
 *   PUT  <url>/upload/<user>/<token>/<name>?z=<size>&e=<expiry>&c=<0|1>&h=<hmac>
 *   GET  <url>/upload/<user>/<token>/<name>
 *
 * <user> is a keyed hash of the bare JID (16 hex digits: a user's files are
 * found, and counted against the quota, without naming the user in URLs),
 * <token> 128 random bits, <name> the requested file name made safe and
 * %-encoded.  h is an HMAC-SHA-256 over the method, path, size, expiry and
 * declared content type under the service key (services.upload.secret, or
 * 32 random bytes kept in <dir>/.secret: edges sharing the directory share
 * the key).  c=1 says the slot declared a Content-Type, which the PUT must
 * then carry unchanged.
 *
 * Files: PUT and GET arrive on the ws/wss listeners (xprt_ws.c hands over a
 * request whose path starts with /upload/).  A PUT is written to
 * <dir>/<user>/<token>/.part-<random> and renamed to its name once every
 * byte is on disk (fdatasync), so a broken upload leaves nothing a GET can
 * see; the declared type is kept beside it (.type).  A GET or HEAD is a
 * static response with Content-Length, Content-Type and single byte ranges
 * (206 / 416).  Every file operation runs on the offload pool; the worker
 * never blocks on the disk.  Reads pause while a write is behind (PAUSE_DISK);
 * a GET reads the next chunk once the socket has taken the previous one.
 *
 * Expiry: files older than services.upload.expire are not served and are
 * removed by a sweep the first worker runs (with .part files a day old).
 * Quota: the bytes a user keeps (their directory) plus the request, checked
 * when the slot is asked for and again when the PUT starts.
 */
#ifndef XEDGE_UPLOAD_H
#define XEDGE_UPLOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct config;
struct conn;
struct httpreq;
struct worker;
struct xs_stanza;

#define NS_UPLOAD "urn:xmpp:http:upload:0"
#define UPLOAD_PREFIX "/upload/"

/* At start, when services.upload is configured: the directory exists (made
 * when missing) and the key is loaded or made.  0, or -1 with the reason. */
int upload_init(const struct config *cfg, char *err, size_t errlen);

/* Is the bound client's stanza s a slot request to the upload service? */
bool upload_is_request(const struct config *cfg, const struct xs_stanza *s);

/* Answer the slot request s (the bytes p[0..n)) of c's session.  GO_ON. */
int upload_slot_iq(struct conn *c, const struct xs_stanza *s, const uint8_t *p, size_t n);

/* HTTP: the request rq (head of hlen bytes) on c's ws layer `layer` is for
 * the file service.  Returns its state (the layer keeps it and passes
 * everything that follows to upload_http_input), or NULL after answering
 * with an error and closing.  body[0..n): what came after the head. */
struct up_http;
struct up_http *upload_http_start(struct conn *c, int layer, const struct httpreq *rq,
				  const uint8_t *body, size_t n);
void upload_http_input(struct up_http *h, const uint8_t *p, size_t n);
void upload_http_flush(struct up_http *h);   /* the layer's flush: the next GET chunk */
void upload_http_free(struct up_http *h);    /* the connection goes */

/* The first worker, once a second: the expiry sweep when it is due. */
void upload_tick(struct worker *w);

#endif
