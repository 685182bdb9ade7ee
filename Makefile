# xedge — one Makefile for every program, test and benchmark.
#   make run    build, make a self-signed cert, start xedge on 127.0.0.1 (foreground)
#   make test   every test: unit (cmocka, ASan+UBSan), fuzz corpus replay, integration (pytest)

CC      ?= gcc
CLANG   ?= clang
BUILD   ?= build
PKGS     = liburing wolfssl jemalloc expat yaml-0.1 sqlite3 libpq jansson
CFLAGS  ?= -O2 -g
CFLAGS  += -std=c17 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter \
           -fno-strict-aliasing -I. -I/usr/include/postgresql -pthread
LDBASE   = -luring -lwolfssl -lexpat -lyaml -lsqlite3 -lpq -lck -lcares -ljansson -lpthread -lm
LDLIBS   = $(LDBASE) -ljemalloc
# Sanitizer builds keep glibc malloc: ASan must own the allocator.
SAN      = -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined \
           -DXEDGE_NO_JEMALLOC

MAINS    = core/main.c core/xedgectl.c sm/main.c
LIB_SRCS = $(filter-out $(MAINS), $(wildcard parser/*.c tls/*.c core/*.c sm/*.c))
BENCH_SRCS = $(wildcard bench/*.c)
LIB_OBJS = $(LIB_SRCS:%.c=$(BUILD)/obj/%.o)
SAN_OBJS = $(LIB_SRCS:%.c=$(BUILD)/san/%.o)

PROGS    = $(BUILD)/xedge $(BUILD)/xedge-sm $(BUILD)/xedgectl $(BUILD)/xedge-bench
BENCH_OBJS = $(BENCH_SRCS:%.c=$(BUILD)/obj/%.o)
UNIT_SRCS = $(wildcard tests/unit/test_*.c)
UNITS    = $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/unit/%)
FUZZ_SRCS = $(wildcard tests/fuzz/fuzz_*.c)
FUZZERS  = $(FUZZ_SRCS:tests/fuzz/%.c=$(BUILD)/fuzz/%)
# bench/scenario*.c (the scenario files, libyaml) are the bench modules with a fuzz target.
FUZZ_LIB = $(filter parser/%.c tls/%.c core/sasl.c core/log.c, $(LIB_SRCS)) bench/scenario.c \
           bench/scenario_describe.c bench/scenario_vars.c
PYTEST   = /usr/bin/python3 -m pytest

.PHONY: all deps test-deps run test unit fuzz-replay fuzz integration asan tsan clean cert bench-compare bench-store bench-s2s test-deploy bench-ops bench-shards bench-muc bench-scale
all: deps $(PROGS)

deps:
	@deploy/debian-deps.sh build
test-deps:
	@deploy/debian-deps.sh test
	@[ -d tests/integration/xmppjs/node_modules ] || \
		npm ci --prefix tests/integration/xmppjs --no-audit --no-fund --loglevel=error >/dev/null

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@
$(BUILD)/san/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -O1 $(SAN) -MMD -MP -c $< -o $@

$(BUILD)/libxedge.a: $(LIB_OBJS)
	@rm -f $@; ar rcs $@ $^
$(BUILD)/libxedge-san.a: $(SAN_OBJS)
	@rm -f $@; ar rcs $@ $^

$(BUILD)/xedge: $(BUILD)/obj/core/main.o $(BUILD)/libxedge.a
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)
$(BUILD)/xedge-sm: $(BUILD)/obj/sm/main.o $(BUILD)/libxedge.a
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)
$(BUILD)/xedgectl: $(BUILD)/obj/core/xedgectl.o $(BUILD)/libxedge.a
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)
$(BUILD)/xedge-bench: $(BENCH_OBJS) $(BUILD)/libxedge.a
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

# Sanitizer builds of the programs, for `make asan` and the integration run.
$(BUILD)/asan/xedge: $(BUILD)/san/core/main.o $(BUILD)/libxedge-san.a
	@mkdir -p $(dir $@); $(CC) $(CFLAGS) $(SAN) -o $@ $^ $(LDBASE)
$(BUILD)/asan/xedge-sm: $(BUILD)/san/sm/main.o $(BUILD)/libxedge-san.a
	@mkdir -p $(dir $@); $(CC) $(CFLAGS) $(SAN) -o $@ $^ $(LDBASE)
$(BUILD)/asan/xedgectl: $(BUILD)/san/core/xedgectl.o $(BUILD)/libxedge-san.a
	@mkdir -p $(dir $@); $(CC) $(CFLAGS) $(SAN) -o $@ $^ $(LDBASE)
asan: $(BUILD)/asan/xedge $(BUILD)/asan/xedge-sm $(BUILD)/asan/xedgectl

# ThreadSanitizer build of the programs: `make tsan` runs the integration suite
# on it (the fixtures fail a test on any "ThreadSanitizer" report).
TSAN     = -fsanitize=thread -DXEDGE_NO_JEMALLOC
TSAN_OBJS = $(LIB_SRCS:%.c=$(BUILD)/tsan-obj/%.o)
$(BUILD)/tsan-obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -O1 $(TSAN) -MMD -MP -c $< -o $@
$(BUILD)/libxedge-tsan.a: $(TSAN_OBJS)
	@rm -f $@; ar rcs $@ $^
$(BUILD)/tsan/xedge: $(BUILD)/tsan-obj/core/main.o $(BUILD)/libxedge-tsan.a
	@mkdir -p $(dir $@); $(CC) $(CFLAGS) $(TSAN) -o $@ $^ $(LDBASE)
$(BUILD)/tsan/xedge-sm: $(BUILD)/tsan-obj/sm/main.o $(BUILD)/libxedge-tsan.a
	@mkdir -p $(dir $@); $(CC) $(CFLAGS) $(TSAN) -o $@ $^ $(LDBASE)
$(BUILD)/tsan/xedgectl: $(BUILD)/tsan-obj/core/xedgectl.o $(BUILD)/libxedge-tsan.a
	@mkdir -p $(dir $@); $(CC) $(CFLAGS) $(TSAN) -o $@ $^ $(LDBASE)
tsan: test-deps $(BUILD)/tsan/xedge $(BUILD)/tsan/xedge-sm $(BUILD)/tsan/xedgectl
	TSAN_OPTIONS="suppressions=$(CURDIR)/tests/tsan.supp" XEDGE_BIN=$(BUILD)/tsan \
		$(PYTEST) -q -p no:cacheprovider tests/integration

# Unit tests: cmocka, one file per module, ASan+UBSan.
$(BUILD)/unit/%: tests/unit/%.c $(BUILD)/libxedge-san.a $(wildcard tests/unit/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -O1 $(SAN) -o $@ $(filter-out %.h,$^) $(LDBASE) -lcmocka
unit: test-deps $(UNITS)
	@set -e; for t in $(UNITS); do echo "== $$t"; $$t; done

# libFuzzer targets (clang); the checked-in corpus is replayed by `make test`.
# The library objects are compiled once (fuzzer-no-link) and linked into every target.
FUZZ_CFLAGS = -std=c17 -D_GNU_SOURCE -I. -g -O1 -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_OBJS = $(FUZZ_LIB:%.c=$(BUILD)/fuzzobj/%.o)
.SECONDARY: $(FUZZ_OBJS)
$(BUILD)/fuzzobj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CLANG) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c $< -o $@
$(BUILD)/fuzz/%: tests/fuzz/%.c $(FUZZ_OBJS)
	@mkdir -p $(dir $@)
	$(CLANG) $(FUZZ_CFLAGS) -fsanitize=fuzzer -MMD -MP -o $@ $(filter %.c %.o,$^) -lwolfssl -lexpat -lyaml -lm
fuzz-replay: test-deps $(FUZZERS)
	@set -e; for f in $(FUZZERS); do n=$$(basename $$f); \
		echo "== replay $$n ($$(ls tests/fuzz/corpus/$$n | wc -l) inputs)"; \
		$$f -runs=0 tests/fuzz/corpus/$$n >/dev/null 2>$(BUILD)/fuzz/$$n.log || \
		{ tail -40 $(BUILD)/fuzz/$$n.log; exit 1; }; done
FUZZ_SECONDS ?= 300
fuzz: test-deps $(FUZZERS)
	@set -e; for f in $(FUZZERS); do n=$$(basename $$f); mkdir -p $(BUILD)/fuzz/new-$$n; \
		$$f -max_total_time=$(FUZZ_SECONDS) $(BUILD)/fuzz/new-$$n tests/fuzz/corpus/$$n; done

# The integration suite runs in two passes.  The ASan+UBSan pass (the fixtures fail a
# test on any sanitizer report) runs every suite of ours.  The release pass (jemalloc
# arenas, -O2: what ships) runs the suites that mostly wait on other servers (Prosody and
# ejabberd federating in network namespaces, biboumi, Profanity: the ASan pass covers the
# same code of ours with test_s2s and test_component) and the suites whose point is the
# shipped binary's timing, limits and interoperability (RELEASE_SUITES).  The load
# generator's suites (BENCH_SUITES: xedge-bench, its reports and merges; the server under
# them is covered by the others) and the overload test (the shipped binary's capacity) run in
# the release pass only.  Running everything twice took `make test` to 18 minutes on 2
# cores; this keeps it near 15.
PEER_SUITES = test_federation test_fedns test_biboumi test_profanity
RELEASE_SUITES = test_exhaustion test_clients test_im_flows test_tls_interop \
	test_upstream test_drain test_reload
BENCH_SUITES = test_bench_dist test_bench_generator test_bench_muc test_bench_report test_bench_scenario \
	test_bench_steps test_bench_ws test_bench_resume test_bench_files
ASAN_DESELECT = tests/integration/test_exhaustion.py::test_overload_keeps_every_session
integration: test-deps all asan
	XEDGE_BIN=$(BUILD)/asan $(PYTEST) -q -p no:cacheprovider --durations=12 tests/integration \
		$(PEER_SUITES:%=--ignore=tests/integration/%.py) \
		$(BENCH_SUITES:%=--ignore=tests/integration/%.py) $(ASAN_DESELECT:%=--deselect %)
	XEDGE_BIN=$(BUILD) $(PYTEST) -q -p no:cacheprovider --durations=12 \
		$(PEER_SUITES:%=tests/integration/%.py) $(RELEASE_SUITES:%=tests/integration/%.py) \
		$(BENCH_SUITES:%=tests/integration/%.py)

# Everything is built first, on every CPU; the unit tests and the corpus replay (independent
# short programs) run side by side, then the integration passes one after the other.
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
test: test-deps
	@$(MAKE) --no-print-directory -j$(JOBS) all asan $(UNITS) $(FUZZERS)
	@$(MAKE) --no-print-directory -j$(JOBS) unit fuzz-replay
	@$(MAKE) --no-print-directory integration
	@if podman info >/dev/null 2>&1; then $(MAKE) --no-print-directory test-deploy; \
	else echo "test-deploy: skipped: podman is not usable here (install podman; see docs/operations.md)"; fi

# The container image (deploy/Dockerfile) and the Kubernetes manifests (deploy/k8s/) for
# real: podman builds the images, `podman kube play` runs each manifest, slixmpp users chat
# through the pods (tests/deploy/test_deploy.py; root podman, one to a few minutes), and
# the xedge-bench Indexed Job's pods load an xedge on the host (test_bench_dist.py).
test-deploy: test-deps all
	$(PYTEST) -q -p no:cacheprovider tests/integration/test_manifests.py
	$(PYTEST) -q -s -p no:cacheprovider tests/deploy/test_deploy.py
	XEDGE_TEST_PODMAN=1 XEDGE_BIN=$(BUILD) $(PYTEST) -q -s -p no:cacheprovider \
		tests/integration/test_bench_dist.py -k podman

# `make run`: a working service on localhost with a self-signed certificate.
RUN_DIR ?= $(BUILD)/run
cert: deps
	@mkdir -p $(RUN_DIR)
	@[ -f $(RUN_DIR)/localhost.crt ] || { openssl req -x509 -newkey ec \
		-pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 -subj /CN=localhost \
		-addext subjectAltName=DNS:localhost -keyout $(RUN_DIR)/localhost.key \
		-out $(RUN_DIR)/localhost.crt 2>/dev/null && echo "generated $(RUN_DIR)/localhost.crt"; }
run: all cert
	@echo "xedge: add a user with:  $(BUILD)/xedgectl -c etc/xedge.yaml user add alice@localhost secret"
	$(BUILD)/xedge -c etc/xedge.yaml

# Side by side with Prosody and ejabberd: writes docs/benchmarks.md and docs/bench/.
# QUICK=1 is a smoke run of about ten minutes (report under build/bench-compare-quick/).
bench-compare: all
	@deploy/debian-deps.sh bench
	QUICK=$(QUICK) XEDGE_BUILD=$(BUILD) bench/compare/run.sh

# Federation (issue 11): xedge and Prosody in pairs over s2s with TLS (throughput, latency), and
# memory per idle outbound s2s stream; about 4 minutes, loopback only. Results and the summary
# in /tmp/xedge-bench-s2s/results; knobs in bench/s2s/run.sh (PAIRS, AUTH=ca, N_CHAT, MEM...).
bench-s2s: all
	XEDGE_BUILD=$(BUILD) bench/s2s/run.sh

# Operations under load (issue 12), loopback only, about 3 minutes: SIGHUP with 1,000 sessions,
# a rolling restart of two edges behind HAProxy, /metrics against xedge-bench's counts.
# Knobs and output (OPS_DIR/results/summary.md) in bench/ops/run.sh; docs/benchmarks.md, "Operations under load".
bench-ops: all
	@deploy/debian-deps.sh bench
	XEDGE_BUILD=$(BUILD) bench/ops/run.sh

# Shards (issue 13): chat throughput and the servers' CPU per delivered message with 1, 2 and 4
# embedded shards and with 2 xedge-sm processes; a few minutes, loopback only. Knobs and output
# in bench/shards/run.sh.
bench-shards: all
	@deploy/debian-deps.sh bench
	XEDGE_BUILD=$(BUILD) bench/shards/run.sh

# Group chat (issue 14): XEP-0045 fan-out, xedge against Prosody and ejabberd under the same
# load, in two room shapes (100 rooms of 20, 10 rooms of 200); a few minutes, loopback only.
# Knobs in bench/muc/run.sh; the table in /tmp/xedge-bench-muc/results/summary.md.
bench-muc: all
	@deploy/debian-deps.sh bench
	XEDGE_BUILD=$(BUILD) bench/muc/run.sh

# One generator, many idle TLS sessions (issue 15): xedge-bench holds N (200,000) sessions over
# Direct TLS from source addresses across 127.0.0.0/8 against xedge with enough workers; prints
# the generator's, the server's and the kernel's memory per session. About 10 minutes at
# 200,000; loopback only; N is lowered to what the free memory holds (said so). Knobs and output
# (/tmp/xedge-bench-scale/results/summary.md) in bench/scale/run.sh.
bench-scale: all
	XEDGE_BUILD=$(BUILD) bench/scale/run.sh

# The storage thread's throughput: offline messages stored per second (bench/store/).
STORE_N ?= 200000
STORE_SIZE ?= 300
$(BUILD)/storebench: bench/store/storebench.c $(BUILD)/libxedge.a
	$(CC) $(CFLAGS) -o $@ $< $(BUILD)/libxedge.a $(LDLIBS)

bench-store: $(BUILD)/storebench
	$(BUILD)/storebench $(STORE_N) $(STORE_SIZE) "$(STORE_DB)"

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

# `make install` (PREFIX=/usr/local, DESTDIR for packaging): the programs, the
# systemd units (ExecStart pointed at $(BINDIR)), the man pages, and an
# example /etc/xedge/xedge.yaml that never replaces an existing one.
PREFIX  ?= /usr/local
BINDIR   = $(PREFIX)/bin
MANDIR   = $(PREFIX)/share/man/man1
DATADIR  = $(PREFIX)/share/xedge
UNITDIR  = $(if $(filter /usr,$(PREFIX)),/lib/systemd/system,$(PREFIX)/lib/systemd/system)
SYSCONFDIR ?= /etc/xedge
MANPAGES = $(wildcard deploy/man/*.1)
.PHONY: install
install: $(PROGS)
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(UNITDIR) $(DESTDIR)$(MANDIR) $(DESTDIR)$(SYSCONFDIR)
	install -m 0755 $(PROGS) $(DESTDIR)$(BINDIR)/
	for u in deploy/systemd/*.service; do \
		sed 's|/usr/local/bin/|$(BINDIR)/|g' $$u > $(DESTDIR)$(UNITDIR)/$${u##*/}.tmp && \
		chmod 0644 $(DESTDIR)$(UNITDIR)/$${u##*/}.tmp && \
		mv $(DESTDIR)$(UNITDIR)/$${u##*/}.tmp $(DESTDIR)$(UNITDIR)/$${u##*/} || exit 1; \
	done
	install -m 0644 $(MANPAGES) $(DESTDIR)$(MANDIR)/
	install -d $(DESTDIR)$(DATADIR)/scenarios
	install -m 0644 bench/scenarios/*.yaml $(DESTDIR)$(DATADIR)/scenarios/
	@if [ -e $(DESTDIR)$(SYSCONFDIR)/xedge.yaml ]; then \
		echo "$(DESTDIR)$(SYSCONFDIR)/xedge.yaml exists: left as it is"; \
	else \
		install -m 0644 deploy/xedge.yaml $(DESTDIR)$(SYSCONFDIR)/xedge.yaml; \
	fi
