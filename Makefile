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
override CFLAGS  += -Wall -Wextra -std=c11 -fopenmp -D_GNU_SOURCE -ffp-contract=off -Iinclude
override LDLIBS  += -llmdb -lopenblas -llapacke -lcsv -ljansson -lpcre2-8 -lzstd -lxxhash -lm
override LDFLAGS += -fopenmp

BUILD   ?= build
Q       := $(if $(V),,@)
say      = $(if $(V),,@printf '  %-6s %s\n' $(1) $(2);)

LIB_SRC  := $(sort $(wildcard src/*.c))
CMD_SRC  := $(sort $(wildcard src/cmd/*.c))
TOOL_SRC := $(sort $(wildcard tools/*.c))
TEST_SRC := $(sort $(wildcard tests/unit/*.c))
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o)
CMD_OBJ  := $(CMD_SRC:%.c=$(BUILD)/%.o)
LIBSTAMP := $(BUILD)/libstamp.a
STAMP    := $(BUILD)/stamp
TOOLS    := $(TOOL_SRC:tools/%.c=$(BUILD)/tools/%)
TESTS    := $(TEST_SRC:tests/unit/%.c=$(BUILD)/tests/%)

.SECONDARY:
.PHONY: all deps test unit-tests asan demo bench clean world-tiny world fuzz fuzz-deps
all: $(STAMP) $(TOOLS)

deps:
	$(Q)bash tools/deps.sh

$(BUILD)/%.o: %.c $(wildcard include/*.h)
	$(call say,CC,$<)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/src/cmd/stamp.o: src/cmd/commands.def

$(LIBSTAMP): $(LIB_OBJ)
	$(call say,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^

$(STAMP): $(CMD_OBJ) $(LIBSTAMP)
	$(call say,LINK,$@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $(CMD_OBJ) $(LIBSTAMP) $(LDLIBS)

$(BUILD)/tools/%: $(BUILD)/tools/%.o $(LIBSTAMP)
	$(call say,LINK,$@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $< $(LIBSTAMP) $(LDLIBS)

$(BUILD)/tests/%: $(BUILD)/tests/unit/%.o $(LIBSTAMP)
	$(call say,LINK,$@)
	$(Q)mkdir -p $(dir $@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $< $(LIBSTAMP) $(LDLIBS)

# The tiny synthetic world: tests and the demo edit it. Rebuilt only when
# the builder changes (its inputs are the seed and size fixed in tools/).
# The sanitizer run reuses the release build's world (WORLD_TINY and
# WORLD_TOOL point there): training under ASan would only be slower.
WORLD_TINY ?= $(BUILD)/world-tiny
WORLD_TOOL ?= $(BUILD)/tools/stamp-world
$(WORLD_TINY)/model.safetensors: $(WORLD_TOOL)
	$(call say,WORLD,$(WORLD_TINY))
	$(Q)$(WORLD_TOOL) --synthetic tiny --quiet --out $(WORLD_TINY)
world-tiny: deps all $(WORLD_TINY)/model.safetensors

world: deps all
	$(Q)bash bench/world.sh $(FACTS)

test: deps all $(TESTS) $(WORLD_TINY)/model.safetensors
	$(Q)STAMP=$(abspath $(STAMP)) BUILD=$(abspath $(BUILD)) \
	  WORLD_TINY=$(abspath $(WORLD_TINY)) bash tests/run.sh

asan: world-tiny
	$(Q)$(MAKE) --no-print-directory BUILD=build-asan OPT=-O1 \
	  WORLD_TINY=$(abspath $(WORLD_TINY)) \
	  WORLD_TOOL=$(abspath $(BUILD)/tools/stamp-world) \
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
FUZZ_CFLAGS  := -g -O1 -std=c11 -D_GNU_SOURCE -Iinclude \
                -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
FUZZ_LIBSRC  := src/safetensors.c src/gpt2_config.c src/tokenizer.c \
                src/atomic_file.c src/errors.c
FUZZ_BIN     := $(patsubst tests/fuzz/%.c,$(BUILD)/fuzz/%,$(sort $(wildcard tests/fuzz/fuzz_*.c)))

$(BUILD)/fuzz/%: tests/fuzz/%.c $(FUZZ_LIBSRC) $(wildcard include/*.h)
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
