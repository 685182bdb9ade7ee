/*
 * discover — see discover.h for the contract.
 *
 * The thread sleeps on a condition variable (so discover_stop wakes it at
 * once), looks the name up, and compares the answer with the running set.
 * A different answer becomes the candidate; it is reported once it was
 * seen `confirm` times in a row.  Only this thread touches the sets.
 */
#include "core/discover.h"

#include <ares.h>
#include <arpa/nameser.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <resolv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "parser/hostport.h"

struct discover {
	pthread_t tid;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stop;               /* (lock) */
	char *srv;
	unsigned interval_s, confirm;
	discover_fn fn;
	void *arg;
	/* the thread's own */
	char **cur, **cand;
	size_t ncur, ncand;
	unsigned seen;           /* lookups in a row that answered cand */
	int last_err;            /* the last failure logged (not logged again until it changes) */
};

void discover_names_free(char **names, size_t n)
{
	for (size_t i = 0; names && i < n; i++)
		free(names[i]);
	free(names);
}

int discover_parse(const unsigned char *abuf, int alen, char ***out, size_t *nout)
{
	struct ares_srv_reply *list = NULL;
	const char *v[DISCOVER_MAX];
	char **names;
	size_t n = 0, keep;
	int st = ares_parse_srv_reply(abuf, alen, &list);

	if (st == ARES_ENODATA)
		return -ENOENT;
	if (st != ARES_SUCCESS)
		return st == ARES_ENOMEM ? -ENOMEM : -EIO;
	names = calloc(DISCOVER_MAX, sizeof(*names));
	if (!names) {
		ares_free_data(list);
		return -ENOMEM;
	}
	/* Collect every usable record (at most DISCOVER_MAX distinct names
	 * are kept: the first by name order, so every process agrees). */
	for (struct ares_srv_reply *s = list; s; s = s->next) {
		char buf[HOSTPORT_MAX + 1];
		size_t len = strlen(s->host);

		if (s->port == 0 || len > HOSTPORT_NAME_MAX)
			continue;
		if (len && s->host[len - 1] == '.')
			len--;   /* c-ares gives no final dot; be safe */
		memcpy(buf, s->host, len);
		buf[len] = '\0';
		if (!hostport_name_ok(buf))
			continue;
		snprintf(buf + len, sizeof(buf) - len, ":%u", s->port);
		if (n == DISCOVER_MAX) {
			/* Full: keep the smallest names. */
			size_t worst = 0;

			for (size_t i = 1; i < n; i++)
				if (strcmp(names[i], names[worst]) > 0)
					worst = i;
			if (strcmp(buf, names[worst]) >= 0)
				continue;
			free(names[worst]);
			names[worst] = NULL;
			n--;
			if (worst != n)
				names[worst] = names[n];
		}
		names[n] = strdup(buf);
		if (!names[n]) {
			ares_free_data(list);
			discover_names_free(names, n);
			return -ENOMEM;
		}
		n++;
	}
	ares_free_data(list);
	if (n == 0) {
		free(names);
		return -ENOENT;
	}
	for (size_t i = 0; i < n; i++)
		v[i] = names[i];
	keep = hostport_set_sort(v, n);
	for (size_t i = keep; i < n; i++)
		free((char *)v[i]);
	for (size_t i = 0; i < keep; i++)
		names[i] = (char *)v[i];
	*out = names;
	*nout = keep;
	return 0;
}

int discover_lookup(const char *srv, char ***names, size_t *n)
{
	struct __res_state rs;
	unsigned char *abuf;
	int len, r;

	memset(&rs, 0, sizeof(rs));
	if (res_ninit(&rs) != 0)
		return -EIO;
	abuf = malloc(65536);
	if (!abuf) {
		res_nclose(&rs);
		return -ENOMEM;
	}
	len = res_nquery(&rs, srv, ns_c_in, ns_t_srv, abuf, 65536);
	if (len < 0) {
		/* h_errno of the state: no such name or no data, or no answer. */
		r = rs.res_h_errno == HOST_NOT_FOUND || rs.res_h_errno == NO_DATA ? -ENOENT
		    : rs.res_h_errno == TRY_AGAIN ? -ETIMEDOUT : -EIO;
	} else {
		r = discover_parse(abuf, len, names, n);
	}
	free(abuf);
	res_nclose(&rs);
	return r;
}

static bool same(char *const *a, size_t na, char *const *b, size_t nb)
{
	return hostport_set_equal((const char *const *)a, na, (const char *const *)b, nb);
}

static void discover_once(struct discover *d)
{
	char **names = NULL;
	size_t n = 0;
	int r = discover_lookup(d->srv, &names, &n);

	if (r < 0) {
		if (r != d->last_err)
			log_warn("shard discovery: lookup failed, the running shard set stays", "srv=%s err=%s "
				 "shards=%zu", d->srv, strerror(-r), d->ncur);
		d->last_err = r;
		return;
	}
	if (d->last_err)
		log_info("shard discovery: lookups answer again", "srv=%s shards=%zu", d->srv, n);
	d->last_err = 0;
	if (same(names, n, d->cur, d->ncur)) {
		discover_names_free(d->cand, d->ncand);
		d->cand = NULL;
		d->ncand = 0;
		d->seen = 0;
		discover_names_free(names, n);
		return;
	}
	if (d->cand && same(names, n, d->cand, d->ncand)) {
		discover_names_free(names, n);
		d->seen++;
	} else {
		discover_names_free(d->cand, d->ncand);
		d->cand = names;
		d->ncand = n;
		d->seen = 1;
	}
	/* From no set at all (nothing found at start) a set applies at once. */
	if (d->ncur && d->seen < d->confirm) {
		log_info("shard discovery: a new shard set, confirmed at the next lookup", "srv=%s shards=%zu",
			 d->srv, d->ncand);
		return;
	}
	log_info("shard discovery: the shard set changed", "srv=%s shards=%zu was=%zu", d->srv, d->ncand,
		 d->ncur);
	discover_names_free(d->cur, d->ncur);
	d->cur = d->cand;
	d->ncur = d->ncand;
	d->cand = NULL;
	d->ncand = 0;
	d->seen = 0;
	d->fn(d->arg, (const char *const *)d->cur, d->ncur);
}

static void *discover_thread(void *arg)
{
	struct discover *d = arg;

	pthread_mutex_lock(&d->lock);
	while (!d->stop) {
		struct timespec ts;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_sec += d->interval_s;
		while (!d->stop && pthread_cond_timedwait(&d->cond, &d->lock, &ts) != ETIMEDOUT)
			;
		if (d->stop)
			break;
		pthread_mutex_unlock(&d->lock);
		discover_once(d);
		pthread_mutex_lock(&d->lock);
	}
	pthread_mutex_unlock(&d->lock);
	return NULL;
}

int discover_start(struct discover **out, const char *srv, unsigned interval_s, unsigned confirm,
		   const char *const *initial, size_t ninitial, discover_fn fn, void *arg)
{
	struct discover *d = calloc(1, sizeof(*d));
	pthread_condattr_t ca;
	int r = -ENOMEM;

	if (!d)
		return -ENOMEM;
	d->srv = strdup(srv);
	d->cur = ninitial ? calloc(ninitial, sizeof(*d->cur)) : NULL;
	if (!d->srv || (ninitial && !d->cur))
		goto fail;
	for (; d->ncur < ninitial; d->ncur++)
		if (!(d->cur[d->ncur] = strdup(initial[d->ncur])))
			goto fail;
	d->interval_s = interval_s ? interval_s : 10;
	d->confirm = confirm ? confirm : 1;
	d->fn = fn;
	d->arg = arg;
	pthread_mutex_init(&d->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&d->cond, &ca);
	pthread_condattr_destroy(&ca);
	r = -pthread_create(&d->tid, NULL, discover_thread, d);
	if (r < 0) {
		pthread_cond_destroy(&d->cond);
		pthread_mutex_destroy(&d->lock);
		goto fail;
	}
	*out = d;
	return 0;
fail:
	discover_names_free(d->cur, d->ncur);
	free(d->srv);
	free(d);
	return r;
}

void discover_stop(struct discover *d)
{
	if (!d)
		return;
	pthread_mutex_lock(&d->lock);
	d->stop = true;
	pthread_cond_signal(&d->cond);
	pthread_mutex_unlock(&d->lock);
	pthread_join(d->tid, NULL);
	pthread_cond_destroy(&d->cond);
	pthread_mutex_destroy(&d->lock);
	discover_names_free(d->cur, d->ncur);
	discover_names_free(d->cand, d->ncand);
	free(d->srv);
	free(d);
}
