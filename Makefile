# SPDX-License-Identifier: MIT
# Mags: one plain GNU Makefile with explicit object lists.
#   make            binaries (build/bin), guest kernel, busybox test image and Debian image (build/guest)
#   make test       unit tests, fuzz-corpus replay and integration tests under ASan+UBSan
#   make fuzz       libFuzzer harnesses (clang), run briefly
#   make bench      benchmarks (bench/)
# SANITIZE=address,undefined BUILD=build/san builds the instrumented binaries.

CC       ?= cc
BUILD    ?= build
SANITIZE ?=
PYTHON   ?= /usr/bin/python3

WARN     = -Wall -Wextra -Werror -Wmissing-prototypes -Wstrict-prototypes -Wwrite-strings -Wno-unused-parameter
CFLAGS  ?= -O2 -g
CFLAGS  += -std=gnu11 $(WARN) -D_GNU_SOURCE -Iinclude -Isrc/lib -I/usr/include/postgresql -MMD -MP
ifneq ($(SANITIZE),)
CFLAGS  += -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
LDFLAGS += -fsanitize=$(SANITIZE)
endif

BIN      = $(BUILD)/bin
OBJ      = $(BUILD)/obj
GUEST    = build/guest

LIB_SRCS    = src/lib/xmalloc.c src/lib/err.c src/lib/buf.c src/lib/proto.c src/lib/fs.c src/lib/log.c src/lib/utf8.c src/lib/base64.c src/lib/names.c src/lib/httphead.c src/lib/proc.c src/lib/cron.c src/lib/tz.c src/lib/deadline.c
# the agent links only what it needs, statically and never instrumented
AGENT_SRCS  = src/agent/main.c src/agent/boot.c src/agent/exec.c src/agent/ops.c src/agent/sshd.c src/agent/payload.c \
              src/agent/files.c
AGENT_LIB   = src/lib/xmalloc.c src/lib/err.c src/lib/buf.c src/lib/proto.c
MAGSD_SRCS  = src/daemon/main.c src/daemon/db.c src/daemon/http.c src/daemon/api.c src/daemon/api_jobs.c \
              src/daemon/jobspec.c src/daemon/jobs.c src/daemon/sandbox.c src/daemon/fast.c \
              src/engine/qemu.c src/engine/qmp.c src/engine/jail.c \
              src/daemon/workspace.c src/daemon/api_workspaces.c src/daemon/api_upload.c \
              src/daemon/proxy.c src/engine/net.c src/daemon/access.c src/daemon/api_access.c \
              src/daemon/db_cron.c src/daemon/cron_sched.c src/daemon/api_cron.c \
              src/daemon/db_users.c src/daemon/api_tokens.c src/daemon/cronspec.c src/daemon/images.c \
              src/daemon/apiparse.c src/daemon/procs.c src/daemon/api_exec.c src/daemon/api_files.c \
              src/daemon/execspec.c src/daemon/sql.c src/daemon/sql_sqlite.c src/daemon/sql_pg.c \
              src/daemon/db_nodes.c src/daemon/cluster.c
# docs/api.yaml compiled in as JSON (GET /api/v1/openapi.json)
MAGSD_SRCS += build/gen/openapi_json.c build/gen/dashboard_files.c src/daemon/static.c src/daemon/api_login.c
# the object store and the workspace sync format (src/store/)
STORE_SRCS  = src/store/store.c src/store/store_file.c src/store/store_s3.c src/store/s3xml.c src/store/wsync.c
MAGSD_SRCS += $(STORE_SRCS)
CLI_SRCS    = src/cli/main.c src/cli/cmd_run.c src/cli/cmd_list.c src/cli/cmd_status.c src/cli/cmd_logs.c src/cli/cmd_stop.c \
              src/cli/run_opts.c src/cli/client.c src/cli/config.c src/cli/local.c src/cli/joblog.c \
              src/cli/text.c src/cli/cmd_sync.c src/cli/cmd_workspace.c \
              src/cli/cmd_url.c src/cli/cmd_ssh.c src/cli/cmd_new.c src/cli/cmd_cron.c src/cli/cmd_auth.c \
              src/cli/cmd_setup_claude.c src/cli/cmd_exec.c src/cli/cmd_proc.c src/cli/cmd_cp.c build/gen/skill_md.c

MAGSD_LIBS  = -lmicrohttpd -ljansson -lsqlite3 -lpq -lcurl -lzstd -lssl -lcrypto -lpthread
CLI_LIBS    = -lcurl -ljansson

LIB_OBJS   = $(LIB_SRCS:%.c=$(OBJ)/%.o)
MAGSD_OBJS = $(MAGSD_SRCS:%.c=$(OBJ)/%.o)
CLI_OBJS   = $(CLI_SRCS:%.c=$(OBJ)/%.o)
AGENT_OBJS = $(AGENT_SRCS:%.c=build/agent-obj/%.o) $(AGENT_LIB:%.c=build/agent-obj/%.o)

.PHONY: all bins guest test unit fuzz fuzz-replay integration bench clean
all: bins guest

bins: $(BIN)/magsd $(BIN)/mags build/bin/mags-agent

build/gen/skill_md.c: src/cli/skill/SKILL.md scripts/embed-text.py
	@mkdir -p build/gen
	python3 scripts/embed-text.py src/cli/skill/SKILL.md mags_skill_md > $@.tmp && mv $@.tmp $@

build/gen/dashboard_files.c: $(wildcard dashboard/*) scripts/embed-files.py
	@mkdir -p build/gen
	python3 scripts/embed-files.py dashboard > $@.tmp && mv $@.tmp $@

build/gen/openapi_json.c: docs/api.yaml scripts/gen-openapi-c.py
	@mkdir -p build/gen
	python3 scripts/gen-openapi-c.py docs/api.yaml > $@.tmp && mv $@.tmp $@

$(OBJ)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(BIN)/magsd: $(MAGSD_OBJS) $(LIB_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(MAGSD_LIBS)

$(BIN)/mags: $(CLI_OBJS) $(LIB_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(CLI_LIBS)

# mags-agent: static, -Os, no sanitizers (it is PID 1 of a tiny guest)
build/agent-obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 -Os -g $(WARN) -D_GNU_SOURCE -Iinclude -Isrc/lib -MMD -MP -c $< -o $@

build/bin/mags-agent: $(AGENT_OBJS)
	@mkdir -p $(dir $@)
	$(CC) -static -o $@ $^

# Guest kernel (cached by its inputs under $MAGS_CACHE, default /var/cache/mags)
$(GUEST)/vmlinux: guest/build-kernel.sh guest/kernel/mags.config
	guest/build-kernel.sh $(GUEST)
	@touch $@

$(GUEST)/test.img: guest/build-test-image.sh build/bin/mags-agent
	guest/build-test-image.sh build/bin/mags-agent $@

# The default guest image: Debian 12 with the standard tool set (needs root).
# The debootstrap + apt phase is cached by its inputs under $MAGS_CACHE/guest,
# so a rebuild after an agent change takes seconds.
$(GUEST)/debian.img: guest/build-debian-image.sh build/bin/mags-agent
	guest/build-debian-image.sh build/bin/mags-agent $@

# test.img: the busybox image the test suite boots by default; debian.img: magsd's default
guest: $(GUEST)/vmlinux $(GUEST)/test.img $(GUEST)/debian.img

.PHONY: debian-image
debian-image: $(GUEST)/debian.img

# ---- unit tests (cmocka), always built with ASan+UBSan ----------------------
# Each test_<name> links the sources listed in TEST_<name>_SRCS.
TSAN_FLAGS      = -std=gnu11 -g -O1 $(WARN) -D_GNU_SOURCE -Iinclude -Isrc/lib \
                  -I/usr/include/postgresql -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
UNIT_TESTS      = jobspec utf8 cli_args base64 proto wsync httphead cron tz s3xml jail db
TEST_jobspec_SRCS = src/daemon/jobspec.c src/lib/names.c src/lib/base64.c src/lib/utf8.c src/lib/buf.c src/lib/xmalloc.c src/lib/err.c
TEST_utf8_SRCS    = src/lib/utf8.c src/lib/buf.c src/lib/xmalloc.c src/lib/err.c
TEST_cli_args_SRCS = src/cli/run_opts.c src/cli/text.c src/lib/base64.c src/lib/fs.c src/lib/buf.c src/lib/xmalloc.c src/lib/err.c src/lib/names.c
TEST_base64_SRCS  = src/lib/base64.c src/lib/buf.c src/lib/xmalloc.c src/lib/err.c
TEST_proto_SRCS   = src/lib/proto.c src/lib/buf.c src/lib/xmalloc.c
TEST_wsync_SRCS   = $(STORE_SRCS) src/lib/base64.c src/lib/fs.c src/lib/log.c src/lib/buf.c src/lib/xmalloc.c src/lib/err.c -lcurl -lzstd -lcrypto -lpthread
TEST_httphead_SRCS = src/lib/httphead.c
TEST_cron_SRCS    = src/lib/cron.c src/lib/err.c
TEST_tz_SRCS      = src/lib/tz.c src/lib/cron.c src/lib/fs.c src/lib/buf.c src/lib/xmalloc.c src/lib/err.c
TEST_s3xml_SRCS   = src/store/s3xml.c src/lib/buf.c src/lib/xmalloc.c
TEST_db_SRCS      = src/daemon/db.c src/daemon/db_users.c src/daemon/db_cron.c src/daemon/db_nodes.c src/daemon/sql.c \
                    src/daemon/sql_sqlite.c src/daemon/sql_pg.c src/lib/base64.c src/lib/utf8.c src/lib/fs.c src/lib/log.c \
                    src/lib/buf.c src/lib/xmalloc.c src/lib/err.c -lsqlite3 -lpq -lcrypto -lpthread
TEST_jail_SRCS    = src/engine/jail.c src/lib/fs.c src/lib/buf.c src/lib/xmalloc.c src/lib/err.c -lpthread
TEST_LIBS       = -lcmocka -ljansson

# (the sources a test links are its prerequisites too: a function, since % in a pattern rule's prerequisites is the stem)
test_srcs = $(filter %.c,$(TEST_$(1)_SRCS))
.SECONDEXPANSION:
build/tests/test_%: tests/unit/test_%.c $$(call test_srcs,$$*) $(wildcard src/*/*.h include/mags/*.h tests/unit/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(TSAN_FLAGS) -o $@ $< $(TEST_$*_SRCS) $(TEST_LIBS)

unit: $(UNIT_TESTS:%=build/tests/test_%)
	@set -e; for t in $(UNIT_TESTS); do \
		echo "== unit: $$t"; \
		timeout 120 env ASAN_OPTIONS=detect_leaks=1 build/tests/test_$$t; \
	done

# ---- fuzzing (libFuzzer, clang) ------------------------------------------------
# Each fuzz/<name>_fuzz.c links FUZZ_<name>_SRCS. make fuzz runs each for FUZZ_SECONDS;
# make fuzz-replay replays fuzz/corpus/<name>/ through a plain ASan build (no clang needed).
FUZZERS         = jobspec proto manifest httphead cron cronspec tzif s3xml apiparse agentreq execspec
FUZZ_jobspec_SRCS = src/daemon/jobspec.c src/lib/names.c src/lib/base64.c src/lib/utf8.c src/lib/buf.c src/lib/xmalloc.c src/lib/err.c
FUZZ_jobspec_LIBS = -ljansson
FUZZ_proto_SRCS   = src/lib/proto.c src/lib/buf.c src/lib/xmalloc.c
FUZZ_proto_LIBS   =
FUZZ_manifest_SRCS = src/store/wsync.c src/store/store.c src/store/store_file.c src/store/store_s3.c src/store/s3xml.c src/lib/base64.c src/lib/fs.c src/lib/log.c src/lib/buf.c src/lib/xmalloc.c src/lib/err.c
FUZZ_manifest_LIBS = -ljansson -lcurl -lzstd -lcrypto -lpthread
FUZZ_httphead_SRCS = src/lib/httphead.c
FUZZ_httphead_LIBS =
FUZZ_tzif_SRCS  = src/lib/tz.c src/lib/cron.c src/lib/fs.c src/lib/buf.c src/lib/xmalloc.c src/lib/err.c
FUZZ_tzif_LIBS  =
FUZZ_cron_SRCS  = src/lib/cron.c src/lib/err.c
FUZZ_cron_LIBS  =
FUZZ_cronspec_SRCS = src/daemon/cronspec.c src/daemon/jobspec.c src/lib/tz.c src/lib/cron.c src/lib/fs.c src/lib/names.c src/lib/base64.c src/lib/utf8.c src/lib/buf.c src/lib/xmalloc.c src/lib/err.c
FUZZ_cronspec_LIBS = -ljansson
FUZZ_s3xml_SRCS = src/store/s3xml.c src/lib/buf.c src/lib/xmalloc.c
FUZZ_s3xml_LIBS =
FUZZ_apiparse_SRCS = src/daemon/apiparse.c src/daemon/jobspec.c src/lib/names.c src/lib/base64.c src/lib/utf8.c src/lib/buf.c src/lib/xmalloc.c src/lib/err.c
FUZZ_apiparse_LIBS = -ljansson
FUZZ_agentreq_SRCS = src/agent/payload.c src/lib/proto.c src/lib/buf.c src/lib/xmalloc.c
FUZZ_agentreq_LIBS =
FUZZ_execspec_SRCS = src/daemon/execspec.c src/lib/buf.c src/lib/xmalloc.c src/lib/err.c
FUZZ_execspec_LIBS = -ljansson
FUZZ_SECONDS    ?= 60
# a harness is rebuilt when any source or header changes (its SRCS are a subset)
FUZZ_DEPS       = $(wildcard src/*/*.c src/*/*.h include/mags/*.h)

build/fuzz/%_fuzz: fuzz/%_fuzz.c $(FUZZ_DEPS)
	@mkdir -p $(dir $@)
	clang -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -Iinclude -Isrc/lib -o $@ $< $(FUZZ_$*_SRCS) $(FUZZ_$*_LIBS)

build/fuzz/%_replay: fuzz/%_fuzz.c fuzz/replay.c $(FUZZ_DEPS)
	@mkdir -p $(dir $@)
	$(CC) $(TSAN_FLAGS) -o $@ $< fuzz/replay.c $(FUZZ_$*_SRCS) $(FUZZ_$*_LIBS)

fuzz: $(FUZZERS:%=build/fuzz/%_fuzz)
	@set -e; for f in $(FUZZERS); do \
		mkdir -p build/fuzz/corpus-$$f && cp -n fuzz/corpus/$$f/* build/fuzz/corpus-$$f/ 2>/dev/null || true; \
		build/fuzz/$${f}_fuzz -max_total_time=$(FUZZ_SECONDS) -dict=fuzz/$$f.dict -artifact_prefix=fuzz/ \
			build/fuzz/corpus-$$f fuzz/corpus/$$f; \
	done

fuzz-replay: $(FUZZERS:%=build/fuzz/%_replay)
	@set -e; for f in $(FUZZERS); do \
		build/fuzz/$${f}_replay fuzz/corpus/$$f/*; \
	done

clean:
	rm -rf build/obj build/agent-obj build/bin build/san build/tests build/fuzz

-include $(shell find build -name '*.d' 2>/dev/null)

# ---- make test, make bench, make setup ---------------------------------------------
# make test: Debian packages (fast when present), the ASan+UBSan binaries in
# build/san/bin and the guest, then unit tests, fuzz-corpus replay and, last, the
# integration tests against real VMs, so pytest's summary is the final line.
SAN_BUILD = build/san
.PHONY: setup
test:
	@scripts/deps.sh
	@$(MAKE) --no-print-directory SANITIZE=address,undefined BUILD=$(SAN_BUILD) bins
	@$(MAKE) --no-print-directory guest
	@$(MAKE) --no-print-directory unit
	@$(MAKE) --no-print-directory fuzz-replay
	@echo "== integration (bin $(SAN_BUILD)/bin, guest $(GUEST))"
	@MAGS_BIN_DIR=$(SAN_BUILD)/bin MAGS_GUEST_DIR=$(GUEST) $(PYTHON) -m pytest -p no:cacheprovider -q tests/integration

# make bench: start-up, workspace start and sync benchmarks of the plain (uninstrumented) build
bench: all
	bench/start
	bench/workspace
	bench/sync
	bench/proxy
	bench/wake
	bench/image
	bench/load
	bench/exec
	bench/cluster

# make setup: packages, build, `mags` on PATH, and a first `mags run 'echo Hello World'`
setup:
	scripts/setup.sh

# ---- mags-store: the object store and workspace sync from the command line ----
# (src/store/tool.c; used by tests/integration/test_store.py and bench/sync)
STORE_TOOL_SRCS = src/store/tool.c $(STORE_SRCS)
STORE_TOOL_OBJS = $(STORE_TOOL_SRCS:%.c=$(OBJ)/%.o)
STORE_TOOL_LIBS = -lcurl -lzstd -lcrypto -ljansson -lpthread

bins: $(BIN)/mags-store

$(BIN)/mags-store: $(STORE_TOOL_OBJS) $(LIB_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(STORE_TOOL_LIBS)
