# grape — position encodings as group actions. `make` builds libgrape (static + shared), the grape CLI and tests.
#   make [CC=clang] [PORTABLE=1]   build (-O3 -march=native; PORTABLE=1 drops -march=native)
#   make test                      install missing Debian packages, build, run every test; ends "N passed, N failed"
#   make debug                     AddressSanitizer + UndefinedBehaviorSanitizer build (make test DEBUG=1 runs it)
#   make bench                     run the benchmarks (bench/run.sh)
#   make data                      build the default corpus data/kjv.txt (Debian's bible-kjv)
#   make demo                      install the demo's packages (scripts/deps.sh runtime), build grape, run the
#                                  demo comparison (scripts/demo.sh)
#   make fuzz SECONDS=N            each libFuzzer target for N seconds; make check-valgrind: memcheck of train,
#                                  eval and sample (docs/RELIABILITY.md)
#   make install [PREFIX=/usr/local] [DESTDIR=]   grape, libgrape.a, libgrape.so (soname libgrape.so.0), grape.h,
#                                  grape.pc (then: cc prog.c $(pkg-config --cflags --libs grape)); make uninstall
# A machine without the build dependencies stops before compiling, saying to run `make deps` (make test runs it).
ifeq ($(origin CC),default)
CC = gcc
endif

BUILD ?= build$(if $(filter-out gcc,$(notdir $(CC))),-$(notdir $(CC)))$(if $(DEBUG),-san)$(if $(PORTABLE),-portable)

ARCH := $(if $(PORTABLE),,-march=native)
SAN := -fsanitize=address,undefined
ifdef DEBUG
OPT := -O1 -g -fno-omit-frame-pointer $(SAN) -fno-sanitize-recover=undefined
else
OPT := -O3 -g
endif
# -fvisibility=hidden: libgrape.so exports only what include/grape.h marks GRAPE_API
CFLAGS += -std=c11 -ffp-contract=fast $(OPT) $(ARCH) -fopenmp -fPIC -fvisibility=hidden -Wall -Wextra -Werror -Iinclude -Isrc -D_DEFAULT_SOURCE -MMD -MP
LDFLAGS += -fopenmp $(if $(DEBUG),$(SAN))
# oneDNN's dnnl_sgemm is the GEMM (src/core/gemm.h; why: docs/BENCHMARKS.md); jansson parses and writes JSON
# (safetensors headers, metrics.jsonl; why: docs/ARCHITECTURE.md)
LDLIBS += -ldnnl -ljansson -lm

VERSION := $(shell sed -n 's/^\#define GRAPE_VERSION "\(.*\)"/\1/p' include/grape.h)
SOVERSION := $(firstword $(subst ., ,$(VERSION)))
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
# Headers whose absence means the Debian packages of scripts/deps.sh are missing (tests name a missing one).
DEPS_PROBE ?= dnnl.h jansson.h omp.h

# MPI (docs/DISTRIBUTED.md): `mpirun -np N grape train|compare` trains data-parallel when the CLI is built with
# MPI. Detected: MPI=1 when mpicc is on PATH (make deps installs Debian's OpenMPI), else 0; `make MPI=0` builds
# without it. Only src/cli/dist_mpi.c includes mpi.h and only the grape binary links it: libgrape never does.
MPI ?= $(if $(shell command -v mpicc 2>/dev/null),1,0)
ifeq ($(MPI),1)
MPI_CFLAGS := $(shell mpicc --showme:compile 2>/dev/null)
MPI_LIBS := $(shell mpicc --showme:link 2>/dev/null)
endif

# A fresh machine: one line and a stop before anything compiles when a dependency's header is missing. Goals that
# run `make deps` first (test, bench, data, demo, fuzz, check-valgrind) and those that compile nothing skip the check.
ifeq ($(filter deps test bench data demo fuzz check-valgrind clean uninstall,$(MAKECMDGOALS)),)
HASH := \#
MISSING := $(firstword $(foreach h,$(DEPS_PROBE),$(if $(shell echo '$(HASH)include <$(h)>' | $(CC) -E -x c - >/dev/null 2>&1 && echo ok),,$(h))))
ifneq ($(MISSING),)
$(error grape: $(MISSING) not found: run `make deps` to install the Debian packages grape needs (make test does it too))
endif
ifeq ($(MPI)$(MPI_LIBS),1)
$(error grape: MPI=1 but mpicc is missing: run `make deps` (Debian's OpenMPI), or build without MPI: make MPI=0)
endif
endif

LIB_SRC := $(wildcard src/core/*.c src/pe/*.c src/attn/*.c src/model/*.c src/train/*.c src/eval/*.c)
CLI_SRC := $(filter-out src/cli/dist_%.c,$(wildcard src/cli/*.c)) src/cli/dist_$(if $(filter 1,$(MPI)),mpi,single).c
TEST_SRC := $(wildcard tests/test_*.c)
TEST_UTIL := tests/util.c
# The tests' oracles (reference paths in double, tests/ref/grape_testing.h): linked by the tests, never installed.
REF_SRC := $(wildcard tests/ref/*.c)

LIB_OBJ := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
CLI_OBJ := $(CLI_SRC:%.c=$(BUILD)/obj/%.o)
REF_OBJ := $(REF_SRC:%.c=$(BUILD)/obj/%.o)
TEST_BIN := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
EXAMPLE_BIN := $(patsubst examples/%.c,$(BUILD)/examples/%,$(wildcard examples/*.c))

.PHONY: all test debug bench demo deps data clean install uninstall
# keep the test objects (make would delete them as intermediates and rebuild them every time)
.SECONDARY:
all: $(BUILD)/libgrape.a $(BUILD)/libgrape.so $(BUILD)/grape $(TEST_BIN) $(EXAMPLE_BIN) $(BUILD)/libgrape_testing.so

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/libgrape.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/libgrape.so: $(LIB_OBJ)
	$(CC) -shared $(LDFLAGS) -Wl,-soname,libgrape.so.$(SOVERSION) -o $@ $^ $(LDLIBS)

$(BUILD)/obj/src/cli/dist_mpi.o: CFLAGS += $(MPI_CFLAGS)
$(BUILD)/grape: LDLIBS += $(MPI_LIBS)
$(BUILD)/grape: $(CLI_OBJ) $(BUILD)/libgrape.a
	$(CC) $(LDFLAGS) -o $@ $(CLI_OBJ) $(BUILD)/libgrape.a $(LDLIBS)

# C tests link the oracles and the static library (internal functions too); tests/torch loads libgrape_testing.so,
# the library plus the oracles of grape_testing.h, through ctypes.
$(BUILD)/libgrape_testing.a: $(REF_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/libgrape_testing.so: $(LIB_OBJ) $(REF_OBJ)
	$(CC) -shared $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/%: $(BUILD)/obj/tests/%.o $(BUILD)/obj/tests/util.o $(BUILD)/libgrape_testing.a $(BUILD)/libgrape.a
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $< $(BUILD)/obj/tests/util.o $(BUILD)/libgrape_testing.a $(BUILD)/libgrape.a $(LDLIBS)
# test_alloc counts the allocations of libgrape and its own: the allocator calls are routed through its counters
$(BUILD)/tests/test_alloc: LDFLAGS += $(foreach f,malloc calloc realloc aligned_alloc posix_memalign,-Wl,--wrap=$(f))

# The examples against the build tree (make test also builds them against an installed copy, with pkg-config).
$(BUILD)/examples/%: examples/%.c $(BUILD)/libgrape.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libgrape.a $(LDLIBS)

install: $(BUILD)/libgrape.a $(BUILD)/libgrape.so $(BUILD)/grape
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(PKGCONFIGDIR)
	install -m 755 $(BUILD)/grape $(DESTDIR)$(BINDIR)/grape
	install -m 644 $(BUILD)/libgrape.a $(DESTDIR)$(LIBDIR)/libgrape.a
	install -m 755 $(BUILD)/libgrape.so $(DESTDIR)$(LIBDIR)/libgrape.so.$(VERSION)
	ln -sf libgrape.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libgrape.so.$(SOVERSION)
	ln -sf libgrape.so.$(SOVERSION) $(DESTDIR)$(LIBDIR)/libgrape.so
	install -m 644 include/grape.h $(DESTDIR)$(INCLUDEDIR)/grape.h
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|' \
	  -e 's|@VERSION@|$(VERSION)|' -e 's|@LIBS_PRIVATE@|$(filter-out -lm,$(LDLIBS)) -fopenmp|' \
	  grape.pc.in > $(DESTDIR)$(PKGCONFIGDIR)/grape.pc

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/grape $(DESTDIR)$(LIBDIR)/libgrape.a $(DESTDIR)$(LIBDIR)/libgrape.so \
	  $(DESTDIR)$(LIBDIR)/libgrape.so.$(SOVERSION) $(DESTDIR)$(LIBDIR)/libgrape.so.$(VERSION) \
	  $(DESTDIR)$(INCLUDEDIR)/grape.h $(DESTDIR)$(PKGCONFIGDIR)/grape.pc

deps:
	@scripts/deps.sh

test: deps
	@$(MAKE) --no-print-directory all
	@CC="$(CC)" LINK_FLAGS="$(if $(DEBUG),$(SAN))" scripts/run_tests.sh $(BUILD) $(if $(DEBUG),--no-torch)

debug:
	@$(MAKE) --no-print-directory DEBUG=1 all

bench: deps
	@$(MAKE) --no-print-directory all
	@scripts/make_data.sh
	@bench/run.sh $(BUILD)

data: deps
	@scripts/make_data.sh

demo:
	@scripts/deps.sh runtime
	@$(MAKE) --no-print-directory $(BUILD)/grape
	@scripts/demo.sh $(BUILD)

clean:
	rm -rf build build-*

-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(REF_OBJ:.o=.d) $(TEST_SRC:tests/%.c=$(BUILD)/obj/tests/%.d) $(BUILD)/obj/tests/util.d

# make fuzz SECONDS=N: each libFuzzer target in fuzz/ for N seconds (clang; docs/RELIABILITY.md)
SECONDS ?= 60
FUZZ_BUILD := build-fuzz
.PHONY: fuzz
fuzz: deps
	@$(MAKE) --no-print-directory CC=clang DEBUG=1 BUILD=$(FUZZ_BUILD) \
		SAN="-fsanitize=address,undefined,fuzzer-no-link -Wno-pass-failed" $(FUZZ_BUILD)/libgrape.a
	@scripts/fuzz.sh $(FUZZ_BUILD) $(SECONDS)

# make check-valgrind: short train, resume, eval and sample runs under memcheck, no error and no leak
# (scripts/valgrind.sh; a build without -march=native, as Valgrind has no AVX-512; docs/RELIABILITY.md)
VALGRIND_BUILD := build-valgrind
.PHONY: check-valgrind
check-valgrind: deps
	@$(MAKE) --no-print-directory PORTABLE=1 BUILD=$(VALGRIND_BUILD) $(VALGRIND_BUILD)/grape
	@scripts/valgrind.sh $(VALGRIND_BUILD)
