# CacheMax build. `make` builds build/cachemax; `make check` runs every test; `make demo` shows it.
CC      ?= cc
WARN    := -Wall -Wextra -Werror -Wshadow -Wformat=2 -Wstrict-prototypes -Wmissing-prototypes \
           -Wpointer-arith -Wcast-align -Wvla -Wno-unused-parameter
CFLAGS  ?= -O2 -g
CFLAGS  += -std=gnu11 -D_GNU_SOURCE -pthread -Isrc $(WARN) -MMD -MP
SANFLAGS := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
LDLIBS  += -pthread -lm -lbpf -lmicrohttpd -lxxhash $(shell pkg-config --libs inih)

# The kernel-side counter of passthrough I/O (src/stats/bpf/): BPF C built by clang, embedded
# in the daemon through a bpftool skeleton (docs/STATS.md).
BPF_CLANG ?= clang
BPFTOOL   ?= bpftool
BPF_ARCH  ?= x86
BPF_SKEL  := build/bpf/passthrough.skel.h
CFLAGS  += -isystem build/bpf

# Every layer folder is library code; the CLI folder holds main().
EXCLUDE ?=
# The dashboard's page files are assembled into the binary (src/web/web_page.S).
LIB_SRC := $(filter-out src/cli/% $(EXCLUDE),$(wildcard src/*/*.c)) src/web/web_page.S
CLI_SRC := $(wildcard src/cli/*.c)
LIB_OBJ := $(patsubst %.S,build/obj/%.o,$(LIB_SRC:%.c=build/obj/%.o))
CLI_OBJ := $(CLI_SRC:%.c=build/obj/%.o)
SAN_LIB_OBJ := $(patsubst %.S,build/san/%.o,$(LIB_SRC:%.c=build/san/%.o))
PAGE_FILES := $(wildcard src/web/page/*)
SAN_CLI_OBJ := $(CLI_SRC:%.c=build/san/%.o)

UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=build/san/tests/%)
TOOL_SRC := $(wildcard tests/diff/*.c tests/integ/*.c)
TOOL_BIN := $(patsubst tests/%.c,build/tests/%,$(TOOL_SRC))

# libFuzzer targets (clang): the FUSE request decoder, the control plane's parsers, the web
# server's request handling.
FUZZ_CC ?= clang
FUZZ_FLAGS := -std=gnu11 -D_GNU_SOURCE -Isrc $(WARN) -g -O1 -fsanitize=fuzzer,address,undefined \
              -fno-sanitize-recover=undefined
FUZZ_SECONDS ?= 30
FUZZ_BIN := build/fuzz/fuzz_fuse_request build/fuzz/fuzz_control build/fuzz/fuzz_web build/fuzz/fuzz_config

.PHONY: all deps check unit integ diff demo clean bench fuzz install uninstall FORCE
all: build/cachemax build/san/cachemax $(TOOL_BIN)

deps:
	@scripts/install-deps.sh

build/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<
build/san/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(SANFLAGS) -c -o $@ $<
build/obj/%.o: %.S $(PAGE_FILES)
	@mkdir -p $(dir $@)
	$(CC) -c -o $@ $<
build/san/%.o: %.S $(PAGE_FILES)
	@mkdir -p $(dir $@)
	$(CC) -c -o $@ $<

build/bpf/passthrough.bpf.o: src/stats/bpf/passthrough.bpf.c src/stats/bpf/passthrough.h
	@mkdir -p $(dir $@)
	$(BPF_CLANG) -g -O2 -target bpf -D__TARGET_ARCH_$(BPF_ARCH) \
	  -I/usr/include/$(shell $(CC) -dumpmachine) -Wall -Werror -c -o $@ $<
$(BPF_SKEL): build/bpf/passthrough.bpf.o
	$(BPFTOOL) gen skeleton $< name passthrough_bpf > $@.tmp && mv $@.tmp $@
build/obj/src/stats/stats_bpf.o build/san/src/stats/stats_bpf.o: $(BPF_SKEL)

# `cachemax --version`: the commit built (git describe), or VERSION_FALLBACK outside a git
# checkout; `make VERSION=x` overrides. Only main.o carries it, rebuilt when it changes
# (build/version holds the last one), so a rebuild of the same tree gives the same binary.
VERSION_FALLBACK := 0.6.0
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo $(VERSION_FALLBACK))
build/obj/src/cli/main.o build/san/src/cli/main.o: CFLAGS += -DCACHEMAX_VERSION='"$(VERSION)"'
build/obj/src/cli/main.o build/san/src/cli/main.o: build/version
build/version: FORCE
	@mkdir -p $(dir $@)
	@echo '$(VERSION)' | cmp -s - $@ || echo '$(VERSION)' > $@

build/cachemax: $(LIB_OBJ) $(CLI_OBJ)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)
build/san/cachemax: $(SAN_LIB_OBJ) $(SAN_CLI_OBJ)
	$(CC) $(CFLAGS) $(SANFLAGS) -o $@ $^ $(LDLIBS)

build/san/tests/%: tests/unit/%.c $(SAN_LIB_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(SANFLAGS) -o $@ $(filter %.c %.o,$^) $(LDLIBS) -lcmocka

build/tests/%: tests/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $(filter %.c,$^) $(LDLIBS)

# The metadata catalog's storage benchmark (hand-run; SQLite only here): docs/ARCHITECTURE.md.
CATALOG_BENCH_OBJ := build/obj/src/cache/cache_catalog.o build/obj/src/cache/cache_meta.o build/obj/src/sys/sys.o
build/bench/catalog-bench: bench/catalog-bench.c $(CATALOG_BENCH_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $(filter %.c %.o,$^) -lsqlite3

build/fuzz/fuzz_fuse_request: tests/fuzz/fuzz_fuse_request.c src/fuse/fuse_proto.c src/fuse/fuse_proto.h \
  src/fuse/fuse_opcode.h
build/fuzz/fuzz_control: tests/fuzz/fuzz_control.c src/control/control.c src/control/control_proto.c \
  src/util/file.c src/sys/sys.c
build/fuzz/fuzz_web: tests/fuzz/fuzz_web.c src/web/web_handle.c src/web/web_metrics.c \
  src/web/web_json.c src/util/json.c src/web/web_page.S $(PAGE_FILES)
build/fuzz/fuzz_config: tests/fuzz/fuzz_config.c src/config/config_file.c src/config/config_options.c \
  src/control/control.c src/util/size.c src/util/file.c src/sys/sys.c
build/fuzz/fuzz_config: FUZZ_LIBS := $(shell pkg-config --libs inih)
build/fuzz/%:
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) -o $@ $(filter %.c %.S,$^) $(FUZZ_LIBS)

# Each target for FUZZ_SECONDS (30) from its seeds; saved crashes are replayed first.
fuzz: deps $(FUZZ_BIN)
	@scripts/fuzz.sh $(FUZZ_SECONDS) $(FUZZ_BIN)

# Every unit test binary runs, also after one failed; the target fails if any did.
unit: deps $(UNIT_BIN)
	@failed=""; for t in $(UNIT_BIN); do echo "== $$t"; $$t || failed="$$failed $$t"; done; \
	if [ -n "$$failed" ]; then echo "unit: failed:$$failed"; exit 1; fi

integ: deps all
	@tests/integ/run-all.sh

# Unit tests, the fuzzers and integration tests all run; check fails if any did.
check: deps all
	@rc=0; $(MAKE) --no-print-directory unit || rc=1; $(MAKE) --no-print-directory fuzz || rc=1; \
	$(MAKE) --no-print-directory integ || rc=1; exit $$rc

demo: deps all
	@scripts/demo.sh

bench: deps all
	@bench/mount-bench.sh

# `make install [DESTDIR=] [PREFIX=/usr/local]`: the binary, the man page, the bash completion,
# every systemd unit in systemd/ (those there; a unit's @BINDIR@ or /usr/[local/]bin path to
# cachemax becomes BINDIR's) and, when the binary has the systemd-generator command, the link
# cachemax-generator to it in systemd's generator directory. `make uninstall` with the same
# variables removes exactly those. Neither builds anything but build/cachemax, nor reloads systemd.
PREFIX        ?= /usr/local
BINDIR        ?= $(PREFIX)/bin
MANDIR        ?= $(PREFIX)/share/man
UNITDIR       ?= $(PREFIX)/lib/systemd/system
GENERATORDIR  ?= $(PREFIX)/lib/systemd/system-generators
COMPLETIONDIR ?= $(PREFIX)/share/bash-completion/completions
UNIT_FILES    := $(wildcard systemd/*.service)
INSTALLED     := $(BINDIR)/cachemax $(MANDIR)/man1/cachemax.1 $(COMPLETIONDIR)/cachemax \
                 $(UNIT_FILES:systemd/%=$(UNITDIR)/%) $(GENERATORDIR)/cachemax-generator

install: build/cachemax
	install -D -m 0755 build/cachemax $(DESTDIR)$(BINDIR)/cachemax
	install -D -m 0644 man/cachemax.1 $(DESTDIR)$(MANDIR)/man1/cachemax.1
	install -D -m 0644 completion/cachemax $(DESTDIR)$(COMPLETIONDIR)/cachemax
	@for u in $(UNIT_FILES); do \
	  dest='$(DESTDIR)$(UNITDIR)'/$${u#systemd/}; echo "install $$u -> $$dest"; \
	  mkdir -p '$(DESTDIR)$(UNITDIR)' && \
	  sed -e 's|@BINDIR@|$(BINDIR)|g' -e 's|/usr/\(local/\)\{0,1\}bin/cachemax|$(BINDIR)/cachemax|g' \
	    "$$u" > "$$dest.tmp" && chmod 0644 "$$dest.tmp" && mv "$$dest.tmp" "$$dest" || exit 1; \
	done
	@if build/cachemax help systemd-generator >/dev/null 2>&1; then \
	  echo "link $(DESTDIR)$(GENERATORDIR)/cachemax-generator -> $(BINDIR)/cachemax"; \
	  mkdir -p '$(DESTDIR)$(GENERATORDIR)' && \
	  ln -sfn '$(BINDIR)/cachemax' '$(DESTDIR)$(GENERATORDIR)/cachemax-generator'; \
	fi

uninstall:
	rm -f $(addprefix $(DESTDIR),$(INSTALLED))

clean:
	rm -rf build

-include $(shell find build -name '*.d' 2>/dev/null)
