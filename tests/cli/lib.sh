# lib.sh: helpers for command-line tests. Source it; each test script
# runs in a fresh temporary directory with STAMP_STORE pointing into it,
# and ends with `finish`, which prints "N passed, N failed".
#
#   expect_ok   NAME CMD...      the command exits 0
#   expect_exit NAME CODE CMD... the command exits CODE
#   expect_grep NAME PATTERN FILE  FILE matches the extended regex
#   expect_same NAME FILE1 FILE2 the files are identical
set -u
: "${STAMP:?STAMP must name the stamp binary}"
: "${BUILD:?BUILD must name the build directory}"
WORLD_TINY=${WORLD_TINY:-$BUILD/world-tiny}
# the repository (before the cd below)
TEST_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
T=$(mktemp -d "${TMPDIR:-/tmp}/stamp-test.XXXXXX")
trap 'rm -rf "$T"' EXIT
export STAMP_STORE="$T/store"
# the tokenizer cache of this build, never $HOME's (as tests/run.sh sets)
export STAMP_CACHE_DIR="$BUILD/cache"
# SANITIZED=1 when $STAMP is built with AddressSanitizer (make asan): the
# slowest tests then run fewer trials of the same checks, so that the
# sanitizer run stays within the test budget
SANITIZED=0
if ldd "$STAMP" 2>/dev/null | grep -q libasan; then SANITIZED=1; fi
cd "$T" || exit 1
passed=0; failed=0

pass() { passed=$((passed + 1)); echo "ok   $1"; }
fail() { failed=$((failed + 1)); echo "FAIL $1${2:+: $2}" >&2; }

expect_ok() {
  local name=$1; shift
  if "$@" >"$T/out" 2>"$T/err"; then pass "$name"
  else fail "$name" "exit $? from: $* :: $(head -c 400 "$T/err")"; fi
}
expect_exit() {
  local name=$1 code=$2; shift 2
  "$@" >"$T/out" 2>"$T/err"; local rc=$?
  if [ "$rc" -eq "$code" ]; then pass "$name"
  else fail "$name" "exit $rc, wanted $code, from: $* :: $(head -c 400 "$T/err")"; fi
}
expect_grep() {
  if grep -Eq -- "$2" "$3"; then pass "$1"
  else fail "$1" "no /$2/ in $3: $(head -c 400 "$3")"; fi
}
expect_same() {
  if cmp -s "$2" "$3"; then pass "$1"
  else fail "$1" "$2 and $3 differ"; fi
}
finish() {
  echo "$passed passed, $failed failed"
  [ "$failed" -eq 0 ]
}

# A tiny random GPT-2 in ./model (4 layers, width 16, GPT-2's own
# vocabulary; stamp-fixture) and ./corpus.txt, 400 lines of made-up words
# for its key statistics (fixed seed): real MEMIT commits in seconds.
# Returns 1 (after a failed check) when the fixture cannot be made.
fixture_model_and_corpus() {
  "$BUILD/tools/stamp-fixture" model --out model --layers 4 --embd 16 --seed 3 \
    --vocab "$TEST_REPO/tests/data/gpt2-vocab" >/dev/null || { fail "fixture model"; return 1; }
  awk 'BEGIN { srand(7); split("ka lo mi ne su ra to pe vi da go ul an er is or ment tion the of and in to", s, " ");
    for (i = 0; i < 400; i++) { line = "";
      for (j = 0; j < 14; j++) { w = ""; n = 1 + int(rand() * 3);
        for (k = 0; k < n; k++) w = w s[1 + int(rand() * 24)]; line = line (j ? " " : "") w }
      print line "." } }' > corpus.txt
}
