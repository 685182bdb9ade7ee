/*
 * test_chan — core/chan.c: chunks arrive whole and in order; a full ring
 * says -EAGAIN and keeps nothing; and, across two threads, a consumer that
 * sleeps on its eventfd whenever the ring is empty is always woken (a lost
 * wake-up would hang this test: the harness's timeout catches it).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/chan.h"

static void test_order_and_full(void **state)
{
	struct chan ch;
	int efd = eventfd(0, EFD_NONBLOCK);
	uint64_t v = 0;
	int put = 0;

	(void)state;
	assert_int_equal(chan_init(&ch, efd), 0);
	assert_null(chan_get(&ch));
	/* Fill it: the first chunk wakes the consumer, the rest do not. */
	for (;;) {
		uint32_t x = (uint32_t)put;
		int r = chan_put(&ch, &x, sizeof(x));

		if (r == -EAGAIN)
			break;
		assert_int_equal(r, 0);
		put++;
	}
	assert_true(put >= CHAN_SLOTS - 1);
	assert_int_equal(read(efd, &v, sizeof(v)), sizeof(v));
	assert_int_equal(v, 1);
	for (int i = 0; i < put; i++) {
		struct chan_chunk *c = chan_get(&ch);
		uint32_t x;

		assert_non_null(c);
		assert_int_equal(c->len, sizeof(x));
		memcpy(&x, c->data, sizeof(x));
		assert_int_equal(x, (uint32_t)i);
		free(c);
	}
	assert_null(chan_get(&ch));
	/* Left queued at the end: chan_fini frees it. */
	assert_int_equal(chan_put(&ch, "abc", 3), 0);
	chan_fini(&ch);
	close(efd);
}

#define STRESS_N 300000

struct stress {
	struct chan ch;
	int efd;
};

static void *producer(void *arg)
{
	struct stress *s = arg;

	for (uint32_t i = 0; i < STRESS_N;) {
		uint32_t len = 1 + i % 61;
		uint8_t buf[64];

		memset(buf, (int)(i & 0xff), len);
		memcpy(buf, &i, sizeof(i) < len ? sizeof(i) : len);
		if (chan_put(&s->ch, buf, len) == 0)
			i++;
		else
			sched_yield();
	}
	return NULL;
}

static void test_no_lost_wakeup(void **state)
{
	struct stress s;
	pthread_t t;
	uint32_t next = 0;

	(void)state;
	s.efd = eventfd(0, EFD_NONBLOCK);
	assert_int_equal(chan_init(&s.ch, s.efd), 0);
	assert_int_equal(pthread_create(&t, NULL, producer, &s), 0);
	while (next < STRESS_N) {
		struct chan_chunk *c = chan_get(&s.ch);
		struct pollfd p = { .fd = s.efd, .events = POLLIN };
		uint64_t v;

		if (!c) {
			/* Sleep until woken: 60 s means the wake-up was lost. */
			assert_int_equal(poll(&p, 1, 60000), 1);
			assert_int_equal(read(s.efd, &v, sizeof(v)), sizeof(v));
			continue;
		}
		assert_int_equal(c->len, 1 + next % 61);
		if (c->len >= 4) {
			uint32_t x;

			memcpy(&x, c->data, 4);
			assert_int_equal(x, next);
		}
		free(c);
		next++;
	}
	pthread_join(t, NULL);
	assert_null(chan_get(&s.ch));
	chan_fini(&s.ch);
	close(s.efd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_order_and_full),
		cmocka_unit_test(test_no_lost_wakeup),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
