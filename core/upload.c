/*
 * upload — XEP-0363 HTTP file upload at the edge; see upload.h.
 */
#include "core/upload.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "core/offload.h"
#include "core/session.h"
#include "core/worker.h"
#include "core/xmpp.h"
#include "core/xprt.h"
#include "parser/httpreq.h"
#include "parser/xtree.h"
#include "tls/crypto.h"

#define UP_KEY_LEN 32
#define UP_USER_HEX 16               /* the user's directory: 64 bits of a keyed hash */
#define UP_TOKEN_HEX 32              /* 128 random bits */
#define UP_NAME_MAX 200              /* bytes of a file name */
#define UP_REL_MAX (UP_USER_HEX + 1 + UP_TOKEN_HEX + 1 + UP_NAME_MAX)
#define UP_CHUNK (256u * 1024)       /* one disk write or read */
#define UP_IDLE 60                   /* seconds a transfer may make no progress */
#define UP_PART_MAX_AGE 86400        /* a .part file this old is an abandoned upload */
#define UP_DEFAULT_TYPE "application/octet-stream"

static uint8_t up_key[UP_KEY_LEN];
static int up_dirfd = -1;            /* services.upload.dir, for the process's life */

/* ---- small pure helpers ------------------------------------------------------- */

static void hex(const uint8_t *in, size_t n, char *out)
{
	static const char d[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = d[in[i] >> 4];
		out[2 * i + 1] = d[in[i] & 15];
	}
	out[2 * n] = 0;
}

static bool is_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

/* A file name as one safe path component: not empty, not a dot file (".",
 * "..", our .part and .type files), no '/', '\\' or control byte. */
static bool name_clean(const char *s, size_t n)
{
	if (n == 0 || n > UP_NAME_MAX || s[0] == '.')
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f || s[i] == '/' || s[i] == '\\')
			return false;
	return true;
}

/* The requested name made clean (upload.h): such bytes become '_'. */
static void name_sanitize(char *s)
{
	if (s[0] == '.')
		s[0] = '_';
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f || *s == '/' || *s == '\\')
			*s = '_';
}

/* RFC 3986 unreserved bytes stay, every other byte is %XX. */
static void pct_encode(const char *s, char *out)
{
	static const char d[] = "0123456789ABCDEF";

	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
		    ch == '-' || ch == '.' || ch == '_' || ch == '~') {
			*out++ = (char)ch;
		} else {
			*out++ = '%';
			*out++ = d[ch >> 4];
			*out++ = d[ch & 15];
		}
	}
	*out = 0;
}

static int hexval(char ch)
{
	return ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
	       : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10 : -1;
}

/* s[0..n) %-decoded into out (cap bytes, NUL included): its length, or -1. */
static long pct_decode(const char *s, size_t n, char *out, size_t cap)
{
	size_t o = 0;

	for (size_t i = 0; i < n; i++) {
		char ch = s[i];
		if (ch == '%') {
			int a, b;
			if (i + 2 >= n || (a = hexval(s[i + 1])) < 0 || (b = hexval(s[i + 2])) < 0)
				return -1;
			ch = (char)(a * 16 + b);
			i += 2;
		}
		if (ch == 0 || o + 1 >= cap)
			return -1;
		out[o++] = ch;
	}
	out[o] = 0;
	return (long)o;
}

/* The user's directory: a keyed hash of the bare JID. */
static void user_dir(const char *jid, char out[UP_USER_HEX + 1])
{
	char in[8 + 3 * 1024];
	uint8_t mac[CRYPTO_MAX_DIGEST];
	int n = snprintf(in, sizeof(in), "user\n%.*s", (int)strcspn(jid, "/"), jid);

	crypto_hmac(CRYPTO_SHA256, up_key, sizeof(up_key), in, (size_t)n, mac);
	hex(mac, UP_USER_HEX / 2, out);
}

/* The PUT signature over the decoded path, size, expiry and declared type. */
static void put_mac(const char *rel, uint64_t size, uint64_t expiry, const char *ctype,
		    char out[2 * CRYPTO_MAX_DIGEST + 1])
{
	char in[UP_REL_MAX + HTTPREQ_CTYPE_MAX + 64];
	uint8_t mac[CRYPTO_MAX_DIGEST];
	int n = snprintf(in, sizeof(in), "PUT\n%s\n%" PRIu64 "\n%" PRIu64 "\n%s", rel, size, expiry, ctype);

	crypto_hmac(CRYPTO_SHA256, up_key, sizeof(up_key), in, (size_t)n, mac);
	hex(mac, 32, out);
}

/* A media type we can echo in a header: printable ASCII, no quotes that
 * would end an XML attribute. */
static bool ctype_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > HTTPREQ_CTYPE_MAX || !strchr(s, '/'))
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e || s[i] == '<' || s[i] == '&' ||
		    s[i] == '\'' || s[i] == '"')
			return false;
	return true;
}

/* ---- start-up ------------------------------------------------------------------ */

static int mkdir_p(const char *path)
{
	char buf[4096];
	size_t n = strlen(path);

	if (n >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, path, n + 1);
	for (size_t i = 1; i <= n; i++) {
		if (buf[i] != '/' && buf[i] != 0)
			continue;
		char ch = buf[i];
		buf[i] = 0;
		if (mkdir(buf, 0750) < 0 && errno != EEXIST)
			return -errno;
		buf[i] = ch;
	}
	return 0;
}

/* The key kept in <dir>/.secret: read, or made once (linked into place, so
 * two edges starting together agree on the first one written). */
static int key_file(const char *dir, char *err, size_t errlen)
{
	char tmp[64];
	ssize_t r;
	int fd;

	for (int attempt = 0; attempt < 2; attempt++) {
		fd = openat(up_dirfd, ".secret", O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (fd >= 0) {
			r = read(fd, up_key, sizeof(up_key));
			close(fd);
			if (r != (ssize_t)sizeof(up_key)) {
				snprintf(err, errlen, "services.upload: %s/.secret is not a key of %d bytes; "
					 "remove it (a new one is made) or set services.upload.secret", dir,
					 UP_KEY_LEN);
				return -1;
			}
			return 0;
		}
		if (errno != ENOENT)
			break;
		if (crypto_random(up_key, sizeof(up_key)) < 0)
			break;
		snprintf(tmp, sizeof(tmp), ".secret.%d", (int)getpid());
		fd = openat(up_dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (fd < 0)
			break;
		r = write(fd, up_key, sizeof(up_key));
		if (r != (ssize_t)sizeof(up_key) || fsync(fd) < 0) {
			close(fd);
			unlinkat(up_dirfd, tmp, 0);
			break;
		}
		close(fd);
		r = linkat(up_dirfd, tmp, up_dirfd, ".secret", 0);
		unlinkat(up_dirfd, tmp, 0);
		if (r == 0) {
			log_info("upload key made", "file=%s/.secret", dir);
			return 0;
		}
		if (errno != EEXIST)
			break;
		/* another edge made it first: read theirs */
	}
	snprintf(err, errlen, "services.upload: cannot read or make %s/.secret: %s", dir, strerror(errno));
	return -1;
}

int upload_init(const struct config *cfg, char *err, size_t errlen)
{
	const char *dir = cfg->upload.dir;
	int e;

	if (!cfg->upload.domain)
		return 0;
	if ((e = mkdir_p(dir)) < 0) {
		snprintf(err, errlen, "services.upload.dir %s: cannot create it: %s", dir, strerror(-e));
		return -1;
	}
	if (up_dirfd < 0 && (up_dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
		snprintf(err, errlen, "services.upload.dir %s: %s", dir, strerror(errno));
		return -1;
	}
	if (cfg->upload.secret)
		return crypto_hash(CRYPTO_SHA256, cfg->upload.secret, strlen(cfg->upload.secret), up_key);
	return key_file(dir, err, errlen);
}

/* ---- the disk (pool threads) ----------------------------------------------------- */

/* Bytes kept under the user's directory (uploads in progress included) and
 * the earliest time one of its files expires (0: none do). */
static uint64_t user_usage(const char *user, uint32_t expire, time_t *first_expiry)
{
	uint64_t sum = 0;
	struct dirent *e, *f;
	struct stat st;
	DIR *ud, *td;
	int fd;

	*first_expiry = 0;
	if ((fd = openat(up_dirfd, user, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW)) < 0)
		return 0;
	if (!(ud = fdopendir(fd))) {
		close(fd);
		return 0;
	}
	while ((e = readdir(ud))) {
		if (e->d_name[0] == '.')
			continue;
		if ((fd = openat(dirfd(ud), e->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW)) < 0)
			continue;
		if (!(td = fdopendir(fd))) {
			close(fd);
			continue;
		}
		while ((f = readdir(td))) {
			if (!strcmp(f->d_name, ".") || !strcmp(f->d_name, "..") || !strcmp(f->d_name, ".type") ||
			    fstatat(dirfd(td), f->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode))
				continue;
			sum += (uint64_t)st.st_size;
			if (expire && f->d_name[0] != '.' &&
			    (!*first_expiry || st.st_mtime + (time_t)expire < *first_expiry))
				*first_expiry = st.st_mtime + (time_t)expire;
		}
		closedir(td);
	}
	closedir(ud);
	return sum;
}

/* ---- slots ------------------------------------------------------------------------ */

struct up_slot {
	struct offload_job job;      /* first: the container */
	struct worker *w;
	uint64_t sid;                /* the session asking (session_by_id) */
	char *id;                    /* the iq's id, escaped ("" none) */
	char user[UP_USER_HEX + 1];
	char name[UP_NAME_MAX + 1];  /* clean */
	char ctype[HTTPREQ_CTYPE_MAX + 1];  /* "" when not declared */
	uint64_t size, quota, used;
	uint32_t expire;
	time_t retry;                /* the quota frees room then (0: unknown) */
};

static void slot_free(struct up_slot *j)
{
	free(j->id);
	free(j);
}

static void iq_out(struct conn *c, const char *id, const char *type, const char *body)
{
	const struct config *cfg = c->w->cfg;
	char *buf, *to = xmpp_esc_dup(c->sess->jid, strlen(c->sess->jid));
	int n = to ? asprintf(&buf, "<iq type='%s' id='%s' from='%s' to='%s'>%s</iq>", type, id,
			      cfg->upload.domain, to, body) : -1;

	if (n > 0) {
		xmpp_out(c, buf, (size_t)n);
		free(buf);
	}
	free(to);
}

static void slot_error(struct conn *c, const char *id, const char *type, const char *cond,
		       const char *text, const char *extra)
{
	char body[1024];

	STAT_INC(c->w->st.upload[UPS_SLOTS_REFUSED]);
	snprintf(body, sizeof(body), "<error type='%s'><%s xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
		 "<text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>%s</text>%s</error>", type, cond, text,
		 extra ? extra : "");
	iq_out(c, id, "error", body);
}

static void slot_answer(struct conn *c, struct up_slot *j)
{
	const struct config *cfg = c->w->cfg;
	char tok[UP_TOKEN_HEX + 1], enc[3 * UP_NAME_MAX + 1], rel[UP_REL_MAX + 1], mac[2 * CRYPTO_MAX_DIGEST + 1];
	uint8_t rnd[UP_TOKEN_HEX / 2];
	uint64_t expiry = (uint64_t)time(NULL) + cfg->upload.slot_ttl;
	char *body;

	if (j->quota && j->used + j->size > j->quota) {
		char extra[160] = "", text[160];
		if (j->retry) {
			struct tm tm;
			gmtime_r(&j->retry, &tm);
			strftime(extra, sizeof(extra), "<retry xmlns='" NS_UPLOAD "' stamp='%Y-%m-%dT%H:%M:%SZ'/>", &tm);
		}
		snprintf(text, sizeof(text), "Quota reached: %" PRIu64 " of %" PRIu64 " bytes kept", j->used, j->quota);
		log_info("upload slot refused: quota", "conn=%u used=%" PRIu64 " size=%" PRIu64, c->idx, j->used, j->size);
		slot_error(c, j->id, "wait", "resource-constraint", text, extra);
		return;
	}
	if (crypto_random(rnd, sizeof(rnd)) < 0) {
		slot_error(c, j->id, "wait", "internal-server-error", "no random bytes", NULL);
		return;
	}
	hex(rnd, sizeof(rnd), tok);
	snprintf(rel, sizeof(rel), "%s/%s/%s", j->user, tok, j->name);
	put_mac(rel, j->size, expiry, j->ctype, mac);
	pct_encode(j->name, enc);
	if (asprintf(&body, "<slot xmlns='" NS_UPLOAD "'><put url='%s" UPLOAD_PREFIX "%s/%s/%s?z=%" PRIu64
		     "&amp;e=%" PRIu64 "&amp;c=%d&amp;h=%s'/><get url='%s" UPLOAD_PREFIX "%s/%s/%s'/></slot>",
		     cfg->upload.url, j->user, tok, enc, j->size, expiry, j->ctype[0] != 0, mac,
		     cfg->upload.url, j->user, tok, enc) < 0) {
		slot_error(c, j->id, "wait", "internal-server-error", "out of memory", NULL);
		return;
	}
	log_debug("upload slot given", "conn=%u size=%" PRIu64 " user=%s", c->idx, j->size, j->user);
	STAT_INC(c->w->st.upload[UPS_SLOTS]);
	iq_out(c, j->id, "result", body);
	free(body);
}

static void slot_run(struct offload_job *oj)
{
	struct up_slot *j = (struct up_slot *)oj;

	j->used = user_usage(j->user, j->expire, &j->retry);
}

static void slot_done(struct offload_job *oj)
{
	struct up_slot *j = (struct up_slot *)oj;
	struct session *s = session_by_id(j->w, j->sid);

	if (s && s->c && s->c->state == CS_SESSION)
		slot_answer(s->c, j);
	slot_free(j);
}

bool upload_is_request(const struct config *cfg, const struct xs_stanza *s)
{
	const char *d = cfg->upload.domain;
	size_t n = s->to.len;

	if (!d || !xs_streq(&s->local, "iq") || !xs_streq(&s->child_ns, NS_UPLOAD) || !s->has_to)
		return false;
	if (n && s->to.p[n - 1] == '.')
		n--;
	return n == strlen(d) && !strncasecmp(s->to.p, d, n);
}

int upload_slot_iq(struct conn *c, const struct xs_stanza *s, const uint8_t *p, size_t n)
{
	const struct config *cfg = c->w->cfg;
	struct xtree_limits lim = XTREE_LIMITS_DEFAULT;
	const struct xtree_node *rq;
	const char *fname, *size, *ctype;
	struct up_slot *j;
	struct xtree *t;
	char *end;
	int e;

	if (!xs_streq(&s->type, "get") || !s->has_id) {
		/* XEP-0363 §4: a slot is asked for with an IQ-get */
		xmpp_stanza_error(c, s, xs_streq(&s->type, "set") ? "modify" : "cancel",
				  xs_streq(&s->type, "set") ? "bad-request" : "service-unavailable", c->sess->jid);
		return GO_ON;
	}
	if (!(j = calloc(1, sizeof(*j))) || !(j->id = xmpp_esc_dup(s->id.p, s->id.len))) {
		free(j);
		xmpp_stanza_error(c, s, "wait", "resource-constraint", c->sess->jid);
		return GO_ON;
	}
	lim.max_elements = 8;
	t = xtree_parse((const char *)p, n, XTREE_CTX_C2S, &lim, &e);
	rq = t ? xtree_child(xtree_root(t), NS_UPLOAD, "request") : NULL;
	fname = rq ? xtree_attr(rq, "filename") : NULL;
	size = rq ? xtree_attr(rq, "size") : NULL;
	ctype = rq ? xtree_attr(rq, "content-type") : NULL;
	errno = 0;
	if (!fname || !*fname || !size || *size < '1' || *size > '9' ||
	    (j->size = strtoull(size, &end, 10), *end || errno)) {
		slot_error(c, j->id, "modify", "bad-request", "a request needs a filename and a size in bytes", NULL);
		goto out;
	}
	if (j->size > cfg->upload.max_size) {
		char text[96], extra[160];
		snprintf(text, sizeof(text), "File too large: the maximum is %" PRIu64 " bytes", cfg->upload.max_size);
		snprintf(extra, sizeof(extra), "<file-too-large xmlns='" NS_UPLOAD "'><max-file-size>%" PRIu64
			 "</max-file-size></file-too-large>", cfg->upload.max_size);
		slot_error(c, j->id, "modify", "not-acceptable", text, extra);
		goto out;
	}
	if (strlen(fname) > UP_NAME_MAX) {
		slot_error(c, j->id, "modify", "not-acceptable", "File name too long", NULL);
		goto out;
	}
	if (ctype && !ctype_ok(ctype)) {
		slot_error(c, j->id, "modify", "bad-request", "content-type is not a media type", NULL);
		goto out;
	}
	strcpy(j->name, fname);
	name_sanitize(j->name);
	snprintf(j->ctype, sizeof(j->ctype), "%s", ctype ? ctype : "");
	user_dir(c->sess->jid, j->user);
	j->quota = cfg->upload.quota;
	j->expire = cfg->upload.expire;
	if (j->quota) {
		/* the quota needs the user's directory read: off this thread */
		j->job.run = slot_run;
		j->job.done = slot_done;
		j->w = c->w;
		j->sid = c->sess->id;
		if (c->w->offload && offload_submit(c->w->offload, &c->w->offload_port, &j->job) == 0) {
			xtree_free(t);
			return GO_ON;
		}
		slot_error(c, j->id, "wait", "resource-constraint", "the server is busy; try again", NULL);
		goto out;
	}
	slot_answer(c, j);
out:
	xtree_free(t);
	slot_free(j);
	return GO_ON;
}

/* ---- HTTP -------------------------------------------------------------------------- */

enum { UP_GET = 1, UP_HEAD, UP_PUT };
enum { JOB_NONE = 0, JOB_PUT_OPEN, JOB_WRITE, JOB_FINISH, JOB_ABORT, JOB_GET_OPEN, JOB_READ };

struct up_http {
	struct offload_job job;      /* first: the container of the job in flight */
	struct conn *c;              /* NULL once the connection is gone */
	struct worker *w;
	int layer;
	uint8_t method, op;          /* op: the job in flight (JOB_NONE: none) */
	bool answered;               /* the final response is out: nothing more is read */
	bool expect;                 /* PUT: 100-continue is owed once the file is open */
	int fd;
	long res;                    /* the job's result: >= 0, or -errno */
	char rel[UP_REL_MAX + 1];    /* user/token/name */
	char part[UP_USER_HEX + UP_TOKEN_HEX + 32];  /* PUT: the file being written ("" none) */
	char ctype[HTTPREQ_CTYPE_MAX + 1];
	char range[HTTPREQ_RANGE_MAX + 1];
	uint64_t size;               /* PUT: declared; GET: the file's */
	uint64_t got;                /* PUT: body bytes received */
	uint64_t off, end;           /* PUT: bytes on disk; GET: the next byte read, one past the last */
	uint64_t quota;
	uint32_t expire;
	struct buf in;               /* PUT: body bytes not yet written */
	uint8_t *io;                 /* the job's buffer (UP_CHUNK) */
	size_t io_len;
};

static void http_free_now(struct up_http *h)
{
	if (h->fd >= 0)
		close(h->fd);
	buf_reset(&h->in);
	free(h->io);
	free(h);
}

static void job_run(struct offload_job *j);
static void job_done(struct offload_job *j);

static bool submit(struct up_http *h, int op)
{
	h->op = (uint8_t)op;
	h->job.run = job_run;
	h->job.done = job_done;
	if (h->w->offload && offload_submit(h->w->offload, &h->w->offload_port, &h->job) == 0)
		return true;
	h->op = JOB_NONE;
	return false;
}

/* The connection is gone, or the transfer failed: a file half written goes. */
static void discard(struct up_http *h)
{
	if (h->part[0] && submit(h, JOB_ABORT))
		return;   /* job_done frees */
	if (h->fd >= 0) {
		close(h->fd);
		h->fd = -1;
	}
	if (h->part[0])
		unlinkat(up_dirfd, h->part, 0);
	http_free_now(h);
}

static void alive(struct up_http *h)
{
	struct conn *c = h->c;

	c->due = c->w->now + UP_IDLE;
	conn_timer(c, c->due);
}

static const char *reason(int status)
{
	switch (status) {
	case 100: return "Continue";
	case 200: return "OK";
	case 201: return "Created";
	case 204: return "No Content";
	case 206: return "Partial Content";
	case 400: return "Bad Request";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 409: return "Conflict";
	case 411: return "Length Required";
	case 413: return "Content Too Large";
	case 415: return "Unsupported Media Type";
	case 416: return "Range Not Satisfiable";
	case 503: return "Service Unavailable";
	case 507: return "Insufficient Storage";
	default: return "Internal Server Error";
	}
}

#define COMMON_HEADERS "Access-Control-Allow-Origin: *\r\nConnection: close\r\n"

/* A complete answer with a short text body, then the connection closes. */
static void answer(struct up_http *h, int status, const char *extra, const char *text)
{
	char out[1024];
	int n = snprintf(out, sizeof(out), "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\n"
			 "Content-Length: %zu\r\n" COMMON_HEADERS "%s\r\n%s", status, reason(status),
			 strlen(text) + 1, extra ? extra : "", text);

	if (status >= 400) {
		STAT_INC(h->w->st.upload[UPS_REFUSED]);
		log_info("upload request refused", "conn=%u peer=%s status=%d why=\"%s\"", h->c->idx, h->c->peer,
			 status, text);
	}
	if (n > 0 && (size_t)n + 2 < sizeof(out)) {
		out[n++] = '\n';
		xprt_down(h->c, h->layer, out, (size_t)n);
	}
	h->answered = true;
	xmpp_abort(h->c);
}

static void get_pump(struct up_http *h)
{
	struct conn *c = h->c;

	if (h->op || !c || c->state == CS_CLOSING || h->off >= h->end)
		return;
	if (conn_queued(c) + xprt_pending(c) >= UP_CHUNK)
		return;   /* upload_http_flush calls again once the socket took it */
	h->io_len = h->end - h->off < UP_CHUNK ? (size_t)(h->end - h->off) : UP_CHUNK;
	if (!submit(h, JOB_READ)) {
		log_warn("file download stopped: offload pool busy", "conn=%u", c->idx);
		xmpp_abort(c);
		return;
	}
	alive(h);
}

static void put_pump(struct up_http *h)
{
	struct conn *c = h->c;
	size_t avail = buf_used(&h->in);

	if (h->op || h->answered || h->fd < 0)
		return;
	if (avail >= UP_CHUNK || (h->got == h->size && avail)) {
		h->io_len = avail < UP_CHUNK ? avail : UP_CHUNK;
		memcpy(h->io, buf_data(&h->in), h->io_len);
		buf_consume(&h->in, h->io_len);
		if (!submit(h, JOB_WRITE))
			answer(h, 503, "Retry-After: 5\r\n", "the server is busy; try again");
	} else if (h->got == h->size && h->off == h->size) {
		if (!submit(h, JOB_FINISH))
			answer(h, 503, "Retry-After: 5\r\n", "the server is busy; try again");
		return;
	}
	if ((c->paused & PAUSE_DISK) && buf_used(&h->in) < 2 * UP_CHUNK)
		conn_resume(c, PAUSE_DISK);
}

/* GET / HEAD: the file is open; the head, then the bytes. */
static void get_head(struct up_http *h)
{
	uint64_t first = 0, last = h->size ? h->size - 1 : 0;
	int r = h->range[0] ? httpreq_range(h->range, h->size, &first, &last) : 0;
	char out[1024], cr[96] = "";
	int n;

	if (r < 0) {
		snprintf(cr, sizeof(cr), "Content-Range: bytes */%" PRIu64 "\r\n", h->size);
		answer(h, 416, cr, "the range is outside the file");
		return;
	}
	if (r > 0)
		snprintf(cr, sizeof(cr), "Content-Range: bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64 "\r\n", first,
			 last, h->size);
	h->off = first;
	h->end = h->size ? last + 1 : 0;
	n = snprintf(out, sizeof(out), "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %" PRIu64 "\r\n"
		     "Accept-Ranges: bytes\r\n%sX-Content-Type-Options: nosniff\r\n"
		     "Content-Security-Policy: default-src 'none'; sandbox\r\n"
		     "Cache-Control: public, max-age=86400\r\n" COMMON_HEADERS "\r\n",
		     r > 0 ? 206 : 200, reason(r > 0 ? 206 : 200), h->ctype, h->end - h->off, cr);
	xprt_down(h->c, h->layer, out, (size_t)n);
	STAT_INC(h->w->st.upload[UPS_DOWNLOADS]);
	if (h->method == UP_HEAD || h->off >= h->end) {
		h->answered = true;
		xmpp_abort(h->c);
		return;
	}
	get_pump(h);
}

static void job_done(struct offload_job *j)
{
	struct up_http *h = (struct up_http *)j;
	int op = h->op;

	h->op = JOB_NONE;
	if (op == JOB_ABORT) {
		http_free_now(h);
		return;
	}
	if (!h->c) {
		discard(h);
		return;
	}
	if (h->c->state == CS_CLOSING && op != JOB_FINISH) {
		if (h->method == UP_PUT)
			h->answered = true;
		return;   /* upload_http_free comes */
	}
	switch (op) {
	case JOB_PUT_OPEN:
		if (h->res < 0) {
			h->part[0] = 0;
			answer(h, h->res == -EEXIST ? 409 : h->res == -EDQUOT ? 413 : h->res == -ENOSPC ? 507 : 500,
			       NULL, h->res == -EEXIST ? "this slot was used already"
			       : h->res == -EDQUOT ? "quota reached" : strerror((int)-h->res));
			return;
		}
		h->fd = (int)h->res;
		if (h->expect) {
			static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
			xprt_down(h->c, h->layer, cont, sizeof(cont) - 1);
		}
		put_pump(h);
		return;
	case JOB_WRITE:
		if (h->res < 0) {
			answer(h, h->res == -ENOSPC || h->res == -EDQUOT ? 507 : 500, NULL, strerror((int)-h->res));
			return;
		}
		h->off += h->io_len;
		alive(h);
		put_pump(h);
		return;
	case JOB_FINISH:
		if (h->res < 0) {
			if (h->c->state != CS_CLOSING)
				answer(h, h->res == -EEXIST ? 409 : 500, NULL, h->res == -EEXIST
				       ? "this slot was used already" : strerror((int)-h->res));
			return;
		}
		log_info("file uploaded", "conn=%u peer=%s bytes=%" PRIu64 " file=%s", h->c->idx, h->c->peer,
			 h->size, h->rel);
		STAT_INC(h->w->st.upload[UPS_FILES]);
		STAT_ADD(h->w->st.upload[UPS_BYTES_IN], h->size);
		if (h->c->state != CS_CLOSING)
			answer(h, 201, NULL, "created");
		return;
	case JOB_GET_OPEN:
		if (h->res < 0) {
			answer(h, h->res == -ENOENT || h->res == -ELOOP || h->res == -ENOTDIR ? 404 : 500, NULL,
			       h->res == -ENOENT || h->res == -ELOOP || h->res == -ENOTDIR ? "no such file"
			       : strerror((int)-h->res));
			return;
		}
		get_head(h);
		return;
	case JOB_READ:
		if (h->res <= 0) {
			log_warn("file download stopped: read failed", "conn=%u file=%s err=%s", h->c->idx, h->rel,
				 h->res ? strerror((int)-h->res) : "the file shrank");
			xmpp_abort(h->c);
			return;
		}
		xprt_down(h->c, h->layer, h->io, (size_t)h->res);
		STAT_ADD(h->w->st.upload[UPS_BYTES_OUT], (uint64_t)h->res);
		h->off += (uint64_t)h->res;
		if (h->off >= h->end) {
			h->answered = true;
			xmpp_abort(h->c);
			return;
		}
		get_pump(h);
		return;
	}
}

/* Make the user's token directory and open the .part file. */
static long put_open(struct up_http *h)
{
	char dir[UP_USER_HEX + UP_TOKEN_HEX + 2];
	uint8_t rnd[8];
	char r[17];
	struct stat st;
	time_t retry;
	int fd = -1;

	memcpy(dir, h->rel, UP_USER_HEX + 1 + UP_TOKEN_HEX);
	dir[UP_USER_HEX] = 0;
	if (h->quota && user_usage(dir, h->expire, &retry) + h->size > h->quota)
		return -EDQUOT;
	dir[UP_USER_HEX] = '/';
	dir[UP_USER_HEX + 1 + UP_TOKEN_HEX] = 0;
	if (fstatat(up_dirfd, h->rel, &st, AT_SYMLINK_NOFOLLOW) == 0)
		return -EEXIST;
	if (crypto_random(rnd, sizeof(rnd)) < 0)
		return -EIO;
	hex(rnd, sizeof(rnd), r);
	for (int attempt = 0; attempt < 2 && fd < 0; attempt++) {
		/* the sweep may remove an empty directory between the two */
		dir[UP_USER_HEX] = 0;
		if (mkdirat(up_dirfd, dir, 0750) < 0 && errno != EEXIST)
			return -errno;
		dir[UP_USER_HEX] = '/';
		if (mkdirat(up_dirfd, dir, 0750) < 0 && errno != EEXIST)
			return -errno;
		snprintf(h->part, sizeof(h->part), "%s/.part-%s", dir, r);
		fd = openat(up_dirfd, h->part, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0640);
		if (fd < 0 && errno != ENOENT)
			break;
	}
	return fd >= 0 ? fd : -errno;
}

static long put_finish(struct up_http *h)
{
	char path[UP_USER_HEX + UP_TOKEN_HEX + 16];
	long r = 0;
	int fd;

	if (fdatasync(h->fd) < 0)
		r = -errno;
	close(h->fd);
	h->fd = -1;
	if (r < 0)
		return r;
	snprintf(path, sizeof(path), "%.*s/.type", UP_USER_HEX + 1 + UP_TOKEN_HEX, h->rel);
	fd = openat(up_dirfd, path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0640);
	if (fd < 0 || write(fd, h->ctype, strlen(h->ctype)) != (ssize_t)strlen(h->ctype))
		r = -errno;
	if (fd >= 0)
		close(fd);
	if (r < 0)
		return r;
	if (renameat2(up_dirfd, h->part, up_dirfd, h->rel, RENAME_NOREPLACE) < 0)
		return -errno;
	h->part[0] = 0;
	path[UP_USER_HEX + 1 + UP_TOKEN_HEX] = 0;
	if ((fd = openat(up_dirfd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0) {
		fsync(fd);   /* the rename is durable before the 201 */
		close(fd);
	}
	return 0;
}

static long get_open(struct up_http *h)
{
	char path[UP_USER_HEX + UP_TOKEN_HEX + 16];
	struct stat st;
	ssize_t n;
	int fd;

	fd = openat(up_dirfd, h->rel, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) ||
	    (h->expire && st.st_mtime + (time_t)h->expire <= time(NULL))) {
		close(fd);
		return -ENOENT;   /* expired: the sweep removes it */
	}
	h->fd = fd;
	h->size = (uint64_t)st.st_size;
	snprintf(path, sizeof(path), "%.*s/.type", UP_USER_HEX + 1 + UP_TOKEN_HEX, h->rel);
	strcpy(h->ctype, UP_DEFAULT_TYPE);
	if ((fd = openat(up_dirfd, path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) >= 0) {
		n = read(fd, h->ctype, sizeof(h->ctype) - 1);
		close(fd);
		h->ctype[n > 0 ? n : 0] = 0;
		if (!ctype_ok(h->ctype))
			strcpy(h->ctype, UP_DEFAULT_TYPE);
	}
	return 0;
}

static void job_run(struct offload_job *j)
{
	struct up_http *h = (struct up_http *)j;
	ssize_t n;

	switch (h->op) {
	case JOB_PUT_OPEN:
		h->res = put_open(h);
		break;
	case JOB_WRITE:
		h->res = 0;
		for (size_t done = 0; done < h->io_len; done += (size_t)n) {
			n = pwrite(h->fd, h->io + done, h->io_len - done, (off_t)(h->off + done));
			if (n < 0) {
				h->res = -errno;
				break;
			}
		}
		break;
	case JOB_FINISH:
		h->res = put_finish(h);
		break;
	case JOB_ABORT:
		if (h->fd >= 0)
			close(h->fd);
		h->fd = -1;
		unlinkat(up_dirfd, h->part, 0);
		h->part[0] = 0;
		break;
	case JOB_GET_OPEN:
		h->res = get_open(h);
		break;
	case JOB_READ:
		n = pread(h->fd, h->io, h->io_len, (off_t)h->off);
		h->res = n < 0 ? -errno : n;
		break;
	}
}

/* /upload/<user>/<token>/<name>: rel "user/token/name", decoded and checked. */
static bool parse_path(const char *path, char *rel)
{
	const char *p = path + strlen(UPLOAD_PREFIX);
	char name[UP_NAME_MAX + 1];
	long n;

	if (strlen(p) < UP_USER_HEX + 1 + UP_TOKEN_HEX + 2 || !is_hex(p, UP_USER_HEX) || p[UP_USER_HEX] != '/' ||
	    !is_hex(p + UP_USER_HEX + 1, UP_TOKEN_HEX) || p[UP_USER_HEX + 1 + UP_TOKEN_HEX] != '/')
		return false;
	n = pct_decode(p + UP_USER_HEX + UP_TOKEN_HEX + 2, strlen(p + UP_USER_HEX + UP_TOKEN_HEX + 2), name,
		       sizeof(name));
	if (n < 0 || !name_clean(name, (size_t)n))
		return false;
	snprintf(rel, UP_REL_MAX + 1, "%.*s%s", UP_USER_HEX + 1 + UP_TOKEN_HEX + 1, p, name);
	return true;
}

/* The PUT's query: z (size), e (expiry), c (a type was declared), h (mac). */
static bool parse_query(const char *q, uint64_t *z, uint64_t *e, int *c, char *mac)
{
	int seen = 0;

	while (*q) {
		const char *amp = strchr(q, '&'), *eq = strchr(q, '=');
		size_t len = amp ? (size_t)(amp - q) : strlen(q);
		char *end;

		if (!eq || eq > q + len || eq != q + 1)
			return false;
		if (*q == 'h') {
			if (len - 2 != 2 * 32 || !is_hex(eq + 1, 64))
				return false;
			memcpy(mac, eq + 1, 64);
			mac[64] = 0;
			seen |= 1;
		} else if (*q == 'z' || *q == 'e' || *q == 'c') {
			uint64_t v;
			if (eq[1] < '0' || eq[1] > '9')
				return false;
			errno = 0;
			v = strtoull(eq + 1, &end, 10);
			if (errno || end != q + len)
				return false;
			if (*q == 'z')
				*z = v, seen |= 2;
			else if (*q == 'e')
				*e = v, seen |= 4;
			else if (v <= 1)
				*c = (int)v, seen |= 8;
			else
				return false;
		}
		q += len + (amp ? 1 : 0);
	}
	return seen == 15;
}

static void put_start(struct up_http *h, const struct httpreq *rq)
{
	char mac[65], want[2 * CRYPTO_MAX_DIGEST + 1];
	uint64_t z = 0, e = 0;
	int declared = 0;

	if (!parse_query(rq->query, &z, &e, &declared, mac)) {
		answer(h, 403, NULL, "not a signed upload URL: ask for a slot");
		return;
	}
	put_mac(h->rel, z, e, declared ? rq->content_type : "", want);
	if (!crypto_equal(want, mac, 64)) {
		answer(h, 403, NULL, declared ? "bad signature, or a Content-Type other than the slot's"
		       : "bad signature");
		return;
	}
	if (e < (uint64_t)time(NULL)) {
		answer(h, 403, NULL, "the slot expired: ask for a new one");
		return;
	}
	if (rq->chunked || rq->content_length < 0) {
		answer(h, 411, NULL, "a Content-Length equal to the slot's size is required");
		return;
	}
	if ((uint64_t)rq->content_length != z) {
		answer(h, (uint64_t)rq->content_length > z ? 413 : 400, NULL,
		       "Content-Length differs from the slot's size");
		return;
	}
	snprintf(h->ctype, sizeof(h->ctype), "%s", rq->content_type[0] && ctype_ok(rq->content_type)
		 ? rq->content_type : UP_DEFAULT_TYPE);
	h->size = z;
	h->expect = rq->expect_continue;
	if (!(h->io = malloc(UP_CHUNK)) || !submit(h, JOB_PUT_OPEN))
		answer(h, 503, "Retry-After: 5\r\n", "the server is busy; try again");
}

struct up_http *upload_http_start(struct conn *c, int layer, const struct httpreq *rq,
				  const uint8_t *body, size_t n)
{
	const struct config *cfg = c->w->cfg;
	struct up_http *h = calloc(1, sizeof(*h));

	if (!h) {
		xmpp_abort(c);
		return NULL;
	}
	h->c = c;
	h->w = c->w;
	h->layer = layer;
	h->fd = -1;
	h->quota = cfg->upload.quota;
	h->expire = cfg->upload.expire;
	alive(h);
	if (!strcmp(rq->method, "OPTIONS")) {
		/* a browser's CORS preflight before a PUT from a web client */
		static const char pre[] = "HTTP/1.1 204 No Content\r\nAccess-Control-Allow-Methods: GET, HEAD, "
					  "PUT, OPTIONS\r\nAccess-Control-Allow-Headers: Content-Type\r\n"
					  "Access-Control-Max-Age: 86400\r\n" COMMON_HEADERS "\r\n";
		xprt_down(c, layer, pre, sizeof(pre) - 1);
		h->answered = true;
		xmpp_abort(c);
		return h;
	}
	h->method = !strcmp(rq->method, "GET") ? UP_GET : !strcmp(rq->method, "HEAD") ? UP_HEAD
		    : !strcmp(rq->method, "PUT") ? UP_PUT : 0;
	if (!h->method) {
		answer(h, 405, "Allow: GET, HEAD, PUT, OPTIONS\r\n", "method not allowed");
		return h;
	}
	if (!parse_path(rq->path, h->rel)) {
		answer(h, 404, NULL, "no such file");
		return h;
	}
	if (h->method == UP_PUT) {
		put_start(h, rq);
		if (!h->answered)
			upload_http_input(h, body, n);
		return h;
	}
	snprintf(h->range, sizeof(h->range), "%s", rq->range);
	if (!(h->io = malloc(UP_CHUNK)) || !submit(h, JOB_GET_OPEN))
		answer(h, 503, "Retry-After: 5\r\n", "the server is busy; try again");
	return h;
}

void upload_http_input(struct up_http *h, const uint8_t *p, size_t n)
{
	size_t take;

	if (h->answered || h->method != UP_PUT || !n)
		return;   /* bytes after a GET, or after the answer: ignored */
	take = n < h->size - h->got ? n : (size_t)(h->size - h->got);
	if (buf_append(&h->in, p, take, 8 * UP_CHUNK) < 0) {
		answer(h, 500, NULL, "out of memory");
		return;
	}
	h->got += take;
	alive(h);
	if (buf_used(&h->in) >= 2 * UP_CHUNK && !(h->c->paused & PAUSE_DISK))
		conn_pause(h->c, PAUSE_DISK);   /* the disk is behind: TCP's window closes */
	put_pump(h);
}

void upload_http_flush(struct up_http *h)
{
	if (h->method == UP_GET && !h->answered)
		get_pump(h);
}

void upload_http_free(struct up_http *h)
{
	if (!h)
		return;
	h->c = NULL;
	if (h->op)
		return;   /* job_done finishes */
	discard(h);
}

/* ---- expiry ------------------------------------------------------------------------- */

struct up_sweep {
	struct offload_job job;
	uint32_t expire;
	unsigned removed;
	bool busy;
};

static struct up_sweep sweep;        /* the first worker's */
static uint32_t sweep_due;

static void sweep_run(struct offload_job *j)
{
	struct up_sweep *s = (struct up_sweep *)j;
	time_t now = time(NULL);
	struct dirent *u, *t, *f;
	DIR *root, *ud, *td;
	struct stat st;
	int fd;

	s->removed = 0;
	if ((fd = dup(up_dirfd)) < 0 || !(root = fdopendir(fd))) {
		if (fd >= 0)
			close(fd);
		return;
	}
	rewinddir(root);
	while ((u = readdir(root))) {
		if (strlen(u->d_name) != UP_USER_HEX || !is_hex(u->d_name, UP_USER_HEX))
			continue;
		if ((fd = openat(up_dirfd, u->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW)) < 0)
			continue;
		if (!(ud = fdopendir(fd))) {
			close(fd);
			continue;
		}
		while ((t = readdir(ud))) {
			if (strlen(t->d_name) != UP_TOKEN_HEX || !is_hex(t->d_name, UP_TOKEN_HEX))
				continue;
			if ((fd = openat(dirfd(ud), t->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW)) < 0)
				continue;
			if (!(td = fdopendir(fd))) {
				close(fd);
				continue;
			}
			bool gone = false;
			while ((f = readdir(td))) {
				if (!strcmp(f->d_name, ".") || !strcmp(f->d_name, "..") || !strcmp(f->d_name, ".type") ||
				    fstatat(dirfd(td), f->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
					continue;
				if (!strncmp(f->d_name, ".part-", 6) ? st.st_mtime + UP_PART_MAX_AGE < now
				    : s->expire && st.st_mtime + (time_t)s->expire <= now) {
					if (unlinkat(dirfd(td), f->d_name, 0) == 0 && f->d_name[0] != '.') {
						s->removed++;
						gone = true;
					}
				}
			}
			if (gone)
				unlinkat(dirfd(td), ".type", 0);
			closedir(td);
			unlinkat(dirfd(ud), t->d_name, AT_REMOVEDIR);   /* when empty */
		}
		closedir(ud);
		unlinkat(up_dirfd, u->d_name, AT_REMOVEDIR);
	}
	closedir(root);
}

static void sweep_done(struct offload_job *j)
{
	struct up_sweep *s = (struct up_sweep *)j;

	if (s->removed)
		log_info("expired uploads removed", "files=%u", s->removed);
	s->busy = false;
}

void upload_tick(struct worker *w)
{
	const struct config *cfg = w->cfg;
	uint32_t every;

	if (!cfg->upload.domain || up_dirfd < 0 || sweep.busy || w->now < sweep_due || !w->offload)
		return;
	every = cfg->upload.expire ? cfg->upload.expire / 4 : 3600;
	every = every < 1 ? 1 : every > 3600 ? 3600 : every;
	sweep_due = w->now + every;
	sweep.job.run = sweep_run;
	sweep.job.done = sweep_done;
	sweep.expire = cfg->upload.expire;
	sweep.busy = offload_submit(w->offload, &w->offload_port, &sweep.job) == 0;
}
