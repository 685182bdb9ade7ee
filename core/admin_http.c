/*
 * admin_http — /metrics, /healthz, /readyz on one poll() thread
 * (admin_http.h).  Each exchange: read the request head (bounded), answer,
 * close.  No keep-alive: a scrape every few seconds does not need it, and
 * a connection that ends after one answer is one fewer thing to bound.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/admin_http.h"
#include "core/link.h"
#include "core/log.h"
#include "parser/httpreq.h"

#define EXCHANGE_MS 10000

struct admin_client {
	int fd;
	size_t got;               /* bytes of the request head in `in` */
	struct mx out;            /* the response */
	size_t sent;
	int64_t deadline_ms;
	char in[HTTPREQ_MAX];
};

struct admin_http {
	pthread_t thread;
	int lfd, stopfd;
	struct admin_http_ops ops;
	struct admin_client *clients[ADMIN_HTTP_MAX_CLIENTS];
};

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void client_free(struct admin_http *a, int i)
{
	close(a->clients[i]->fd);
	mx_free(&a->clients[i]->out);
	free(a->clients[i]);
	a->clients[i] = NULL;
}

static void respond(struct admin_client *cl, int status, const char *reason, const char *ctype,
		    const char *body, size_t blen, bool head_only)
{
	mx_printf(&cl->out, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
		  "Cache-Control: no-store\r\nConnection: close\r\n\r\n", status, reason, ctype, blen);
	if (!head_only && blen)
		mx_printf(&cl->out, "%.*s", (int)blen, body);
}

/* The request head is complete: build the whole response into cl->out. */
static void answer(struct admin_http *a, struct admin_client *cl, const struct httpreq *rq)
{
	static const char text[] = "text/plain; charset=utf-8";
	bool head = !strcmp(rq->method, "HEAD");

	if (!head && strcmp(rq->method, "GET") != 0) {
		mx_printf(&cl->out, "HTTP/1.1 405 Method Not Allowed\r\nAllow: GET, HEAD\r\n"
			  "Content-Length: 0\r\nConnection: close\r\n\r\n");
		return;
	}
	if (!strcmp(rq->path, "/metrics")) {
		struct mx body = { 0 };
		a->ops.metrics(a->ops.arg, &body);
		if (body.failed)
			respond(cl, 500, "Internal Server Error", text, "out of memory\n", 14, head);
		else
			respond(cl, 200, "OK", "text/plain; version=0.0.4; charset=utf-8", body.p, body.len, head);
		mx_free(&body);
	} else if (!strcmp(rq->path, "/healthz")) {
		respond(cl, 200, "OK", text, "ok\n", 3, head);
	} else if (!strcmp(rq->path, "/readyz")) {
		const char *why = a->ops.unready(a->ops.arg);
		char buf[160];
		int n;
		if (!why) {
			respond(cl, 200, "OK", text, "ready\n", 6, head);
			return;
		}
		n = snprintf(buf, sizeof(buf), "not ready: %s\n", why);
		respond(cl, 503, "Service Unavailable", text, buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1, head);
	} else {
		respond(cl, 404, "Not Found", text, "not found: try /metrics, /healthz or /readyz\n", 45, head);
	}
}

/* Readable: take what came, answer once the head is complete (or refuse
 * it).  false: done with this client (error or EOF). */
static bool client_read(struct admin_http *a, struct admin_client *cl)
{
	static const char *const reasons[] = { [400 - 400] = "Bad Request", [431 - 400] = "Request Header Fields Too Large" };
	ssize_t n = recv(cl->fd, cl->in + cl->got, sizeof(cl->in) - cl->got, 0);
	struct httpreq rq;
	long r;

	if (n < 0)
		return errno == EAGAIN || errno == EINTR;
	if (n == 0)
		return false;
	cl->got += (size_t)n;
	r = httpreq_parse(cl->in, cl->got, &rq);
	if (r > 0)
		answer(a, cl, &rq);
	else if (r == -505)
		mx_printf(&cl->out, "HTTP/1.1 505 HTTP Version Not Supported\r\nContent-Length: 0\r\n"
			  "Connection: close\r\n\r\n");
	else if (r < 0)
		mx_printf(&cl->out, "HTTP/1.1 %ld %s\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", -r,
			  reasons[-r - 400]);
	return !cl->out.failed;
}

/* Writable: send more of the response.  false: finished or failed. */
static bool client_write(struct admin_client *cl)
{
	ssize_t n = send(cl->fd, cl->out.p + cl->sent, cl->out.len - cl->sent, MSG_NOSIGNAL);

	if (n < 0)
		return errno == EAGAIN || errno == EINTR;
	cl->sent += (size_t)n;
	if (cl->sent < cl->out.len)
		return true;
	shutdown(cl->fd, SHUT_WR);
	return false;
}

static void accept_one(struct admin_http *a)
{
	int fd = accept4(a->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	int i;

	if (fd < 0)
		return;
	for (i = 0; i < ADMIN_HTTP_MAX_CLIENTS && a->clients[i]; i++)
		;
	if (i == ADMIN_HTTP_MAX_CLIENTS) {
		log_warn("admin HTTP: too many clients at once, one refused", "max=%d", ADMIN_HTTP_MAX_CLIENTS);
		close(fd);
		return;
	}
	a->clients[i] = calloc(1, sizeof(*a->clients[i]));
	if (!a->clients[i]) {
		close(fd);
		return;
	}
	a->clients[i]->fd = fd;
	a->clients[i]->deadline_ms = mono_ms() + EXCHANGE_MS;
}

static void *admin_main(void *arg)
{
	struct admin_http *a = arg;
	struct pollfd pfd[ADMIN_HTTP_MAX_CLIENTS + 2];
	int slot[ADMIN_HTTP_MAX_CLIENTS + 2];

	for (;;) {
		int n = 2, timeout = -1;
		int64_t now = mono_ms();

		pfd[0] = (struct pollfd){ .fd = a->stopfd, .events = POLLIN };
		pfd[1] = (struct pollfd){ .fd = a->lfd, .events = POLLIN };
		for (int i = 0; i < ADMIN_HTTP_MAX_CLIENTS; i++) {
			struct admin_client *cl = a->clients[i];
			if (!cl)
				continue;
			if (now >= cl->deadline_ms) {
				client_free(a, i);
				continue;
			}
			if (timeout < 0 || cl->deadline_ms - now < timeout)
				timeout = (int)(cl->deadline_ms - now);
			pfd[n] = (struct pollfd){ .fd = cl->fd, .events = cl->out.len ? POLLOUT : POLLIN };
			slot[n++] = i;
		}
		if (poll(pfd, (nfds_t)n, timeout) < 0 && errno != EINTR)
			break;
		if (pfd[0].revents)
			break;
		for (int k = 2; k < n; k++) {
			struct admin_client *cl = a->clients[slot[k]];
			bool more;
			if (!pfd[k].revents)
				continue;
			if (cl->out.len)
				more = client_write(cl);
			else
				more = client_read(a, cl) && (!cl->out.len || client_write(cl));
			if (!more)
				client_free(a, slot[k]);
		}
		if (pfd[1].revents & POLLIN)
			accept_one(a);
	}
	for (int i = 0; i < ADMIN_HTTP_MAX_CLIENTS; i++)
		if (a->clients[i])
			client_free(a, i);
	return NULL;
}

struct admin_http *admin_http_start(const char *address, const struct admin_http_ops *ops)
{
	struct sockaddr_storage ss;
	socklen_t len;
	struct admin_http *a;
	int one = 1;

	if (endpoint_resolve(address, &ss, &len) < 0 || ss.ss_family == AF_UNIX) {
		log_error("admin.address is not a numeric host:port", "address=%s", address);
		return NULL;
	}
	a = calloc(1, sizeof(*a));
	if (!a)
		return NULL;
	a->ops = *ops;
	a->stopfd = eventfd(0, EFD_CLOEXEC);
	a->lfd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (a->stopfd < 0 || a->lfd < 0)
		goto fail;
	setsockopt(a->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(a->lfd, (struct sockaddr *)&ss, len) < 0 || listen(a->lfd, 64) < 0) {
		log_error("cannot listen on admin.address (another process has it? change admin.address)",
			  "address=%s err=%s", address, strerror(errno));
		goto fail;
	}
	if (pthread_create(&a->thread, NULL, admin_main, a) != 0)
		goto fail;
	log_info("admin HTTP listening", "address=%s paths=/metrics,/healthz,/readyz", address);
	return a;
fail:
	if (a->lfd >= 0)
		close(a->lfd);
	if (a->stopfd >= 0)
		close(a->stopfd);
	free(a);
	return NULL;
}

void admin_http_stop(struct admin_http *a)
{
	uint64_t one = 1;

	if (!a)
		return;
	if (write(a->stopfd, &one, sizeof(one)) < 0)
		log_error("admin HTTP: cannot wake its thread to stop", "err=%s", strerror(errno));
	pthread_join(a->thread, NULL);
	close(a->lfd);
	close(a->stopfd);
	free(a);
}
