/*
 * storebench — throughput of the session server's storage thread: offline
 * messages stored per second through the real path (sm_offline_store(): one
 * job per message, count check + insert, batched transactions, WAL with
 * synchronous=NORMAL), then the same messages listed and deleted the way
 * delivery does.
 *
 *   make bench-store [STORE_N=200000] [STORE_SIZE=300] [STORE_DB=postgresql://...]
 *
 * STORE_DB: a PostgreSQL URI (an empty database) instead of a fresh SQLite
 * file in /tmp.
 *
 * The submitting thread plays the sm's routing thread: it only queues; the
 * figure is how fast the storage thread empties the queue, and the batch
 * count shows how many messages each commit carried.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "sm/sm_int.h"
#include "sm/store.h"

/* The accounts the messages are for (stored messages need an account). */
struct add_job {
	struct sm_job job;
	char jid[64];
};

static void add_run(struct sm_db *db, struct sm_job *j)
{
	struct add_job *aj = (struct add_job *)j;
	struct wire_scram k1 = { .iter = 4096, .salt_len = 16, .key_len = 20 };
	struct wire_scram k256 = { .iter = 4096, .salt_len = 16, .key_len = 32 };

	j->rc = sm_db_user_add(db, aj->jid, &k1, &k256);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? strtol(argv[1], NULL, 10) : 200000;
	long size = argc > 2 ? strtol(argv[2], NULL, 10) : 300;
	char dir[] = "/tmp/storebench.XXXXXX", path[512], user[64], *raw;
	struct sm *sm = calloc(1, sizeof(*sm));
	long users, i;
	double t0, t1;

	if (n <= 0 || size < 64 || size > 65536 || !sm || !mkdtemp(dir)) {
		fprintf(stderr, "usage: storebench [MESSAGES] [BYTES] [DATABASE]\n");
		return 1;
	}
	log_min_level = LOG_INFO;    /* the store logs batches= and jobs= at close */
	if (argc > 3 && *argv[3])
		snprintf(path, sizeof(path), "%s", argv[3]);
	else
		snprintf(path, sizeof(path), "%s/bench.db", dir);
	sm->store = sm_store_open(path);
	raw = malloc((size_t)size + 1);
	if (!sm->store || !raw || sm_tab_init(&sm->by_jid) < 0 || sm_tab_init(&sm->users) < 0)
		return 1;
	/* A chat message of `size` bytes. */
	snprintf(raw, (size_t)size + 1, "<message to='u@localhost' from='peer@localhost/r' "
		 "type='chat' id='m'><body>%0*d</body></message>", (int)size - 82, 0);
	users = (n + SM_MAX_OFFLINE - 1) / SM_MAX_OFFLINE;   /* the per-account limit holds */
	for (i = 0; i < users; i++) {
		struct add_job *aj = calloc(1, sizeof(*aj));

		if (!aj)
			return 1;
		snprintf(aj->jid, sizeof(aj->jid), "u%ld@localhost", i);
		aj->job.run = add_run;
		sm_store_submit(sm->store, &aj->job);
	}
	sm_store_sync(sm->store, sm);
	t0 = now_s();
	for (i = 0; i < n; i++) {
		snprintf(user, sizeof(user), "u%ld@localhost", i % users);
		if (sm_offline_store(sm, user, "peer@localhost/r", WIRE_KIND_MESSAGE, wire_s("m", 1),
				     wire_s("u@localhost", 11), raw, strlen(raw)) < 0)
			return 1;
	}
	t1 = now_s();
	sm_store_sync(sm->store, sm);
	{
		double t2 = now_s();

		printf("offline messages stored: %ld x %zu bytes for %ld accounts\n", n, strlen(raw),
		       users);
		printf("  queued by the routing thread: %.0f /s\n", (double)n / (t1 - t0));
		printf("  stored (committed):           %.0f /s   (%.2f s)\n", (double)n / (t2 - t0),
		       t2 - t0);
	}
	sm_store_close(sm->store);   /* logs batches= and jobs= */
	snprintf(user, sizeof(user), "rm -rf %s", dir);
	if (system(user) != 0)
		fprintf(stderr, "storebench: could not remove %s\n", dir);
	free(raw);
	free(sm);
	return 0;
}
