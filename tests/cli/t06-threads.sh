# t06-threads: stamp's threads sleep when they wait (lib/base/threads.c):
# with nothing set, libgomp itself runs OMP_WAIT_POLICY=PASSIVE (its own
# report, OMP_DISPLAY_ENV, says so), reached by executing stamp once
# more, never twice; a user's OMP_WAIT_POLICY or GOMP_SPINCOUNT wins;
# stamp-world does the same; the second execution keeps the arguments
# (spaces too), stdin and the exit code; a commit records the waiting it
# ran with ("omp_wait"), the user's ACTIVE kept; the thread count is
# automatic (the cores other work leaves) unless STAMP_THREADS,
# OMP_NUM_THREADS or --threads says otherwise, and the choice is named;
# a commit's record is the same whatever the automatic count chose;
# stamp-world's default stays all cores.
REPO=$(cd "$(dirname "$0")/../.." && pwd)
. "$(dirname "$0")/lib.sh"
unset OMP_WAIT_POLICY GOMP_SPINCOUNT OMP_DISPLAY_ENV STAMP_THREADS OMP_NUM_THREADS OPENBLAS_NUM_THREADS STAMP_TEST_AUTO_THREADS
# the kernels' own restart (blas_cpu.c) stays out of the counts below
core=$("$STAMP" --version | sed -n 's/^OpenBLAS kernels: //p')
export OPENBLAS_CORETYPE=$core

expect_ok "--version" "$STAMP" --version
expect_grep "--version names stamp's wait policy" "^OpenMP waiting: OMP_WAIT_POLICY=PASSIVE$" "$T/out"

# libgomp's report of what it read, printed when it is loaded: once per
# execution; the last one is the execution that runs
displays() { grep -c 'OPENMP DISPLAY ENVIRONMENT BEGIN' "$1"; }
last() { # last FILE NAME: NAME's value in the last report
  awk -v n="$2" '/OPENMP DISPLAY ENVIRONMENT BEGIN/ { v = "" }
                 $1 == n { v = $3 } END { print v }' "$1"
}
OMP_DISPLAY_ENV=verbose "$STAMP" --version > "$T/d" 2>&1
if [ "$(displays "$T/d")" = 2 ]; then pass "nothing set: stamp executes itself once more, once"
else fail "nothing set: stamp executes itself once more, once" "$(displays "$T/d") executions"; fi
if [ "$(last "$T/d" OMP_WAIT_POLICY)" = "'PASSIVE'" ] && [ "$(last "$T/d" GOMP_SPINCOUNT)" = "'0'" ]
then pass "libgomp runs passive waiting, spin count 0"
else fail "libgomp runs passive waiting" "$(grep -E 'WAIT_POLICY|SPINCOUNT' "$T/d" | tr '\n' ' ')"; fi

OMP_WAIT_POLICY=ACTIVE OMP_DISPLAY_ENV=verbose "$STAMP" --version > "$T/d" 2>&1
if [ "$(displays "$T/d")" = 1 ] && [ "$(last "$T/d" OMP_WAIT_POLICY)" = "'ACTIVE'" ]
then pass "the user's OMP_WAIT_POLICY=ACTIVE wins, no second execution"
else fail "the user's OMP_WAIT_POLICY=ACTIVE wins" "$(grep -E 'BEGIN|WAIT_POLICY' "$T/d" | tr '\n' ' ')"; fi
expect_grep "--version names the user's policy" "^OpenMP waiting: OMP_WAIT_POLICY=ACTIVE$" "$T/d"

GOMP_SPINCOUNT=1000 OMP_DISPLAY_ENV=verbose "$STAMP" --version > "$T/d" 2>&1
if [ "$(displays "$T/d")" = 1 ] && [ "$(last "$T/d" GOMP_SPINCOUNT)" = "'1000'" ]
then pass "the user's GOMP_SPINCOUNT wins"
else fail "the user's GOMP_SPINCOUNT wins" "$(grep -E 'BEGIN|SPINCOUNT' "$T/d" | tr '\n' ' ')"; fi
expect_grep "--version names the user's spin count alone" "^OpenMP waiting: GOMP_SPINCOUNT=1000$" "$T/d"

OMP_WAIT_POLICY= OMP_DISPLAY_ENV=verbose "$STAMP" --version > "$T/d" 2>&1
if [ "$(last "$T/d" GOMP_SPINCOUNT)" = "'0'" ]; then pass "an empty OMP_WAIT_POLICY counts as unset"
else fail "an empty OMP_WAIT_POLICY counts as unset" "$(grep -E 'SPINCOUNT' "$T/d" | tr '\n' ' ')"; fi

# the builder of worlds: the same, seen in its usage error's run
OMP_DISPLAY_ENV=verbose "$BUILD/stamp-world" --bogus > "$T/d" 2>&1
if [ "$(displays "$T/d")" = 2 ] && [ "$(last "$T/d" GOMP_SPINCOUNT)" = "'0'" ]
then pass "stamp-world runs passive waiting too"
else fail "stamp-world runs passive waiting too" "$(grep -E 'BEGIN|SPINCOUNT' "$T/d" | tr '\n' ' ')"; fi

# the second execution keeps the arguments, stdin and the exit code
W=$WORLD_TINY
store="$T/a store with spaces"
expect_ok "init into a directory whose name has spaces" "$STAMP" --store "$store" init --model "$W"
expect_grep "... the name arrives whole" "initialized store '$store'" "$T/out"
awk -v from=0 -v count=3 -f "$REPO/bench/subject_facts.awk" "$W/facts.csv" > batch.csv
"$STAMP" --store "$store" import /dev/stdin < batch.csv > "$T/out" 2>&1
expect_grep "import reads stdin through the second execution" "3 queued" "$T/out"
expect_ok "a prompt with spaces" "$STAMP" predict --model "$REPO/tests/data/gpt2-tiny" --top 1 "The cat sat on"
expect_grep "... arrives as one prompt of several tokens" "^tokens \([2-9]" "$T/out"
expect_exit "an unknown command exits 2 through it" 2 "$STAMP" frobnicate
"$STAMP" --store "$T/empty" init --model "$W" > /dev/null
expect_exit "an empty queue exits 3 through it" 3 "$STAMP" --store "$T/empty" commit --no-scores

# the commit names the waiting it ran with, stamp's or the user's
cp -a "$store" "$T/active"
expect_ok "a commit" "$STAMP" --store "$store" commit --no-scores --json --set rounds=1
if [ "$(jq -r .omp_wait "$T/out")" = "OMP_WAIT_POLICY=PASSIVE" ]
then pass "the commit records stamp's waiting (omp_wait)"
else fail "the commit records stamp's waiting" "$(jq -c '{omp_wait, threads}' "$T/out")"; fi
OMP_WAIT_POLICY=ACTIVE "$STAMP" --store "$T/active" commit --no-scores --json --set rounds=1 \
  > "$T/out" 2> "$T/err"
if [ "$(jq -r .omp_wait "$T/out")" = "OMP_WAIT_POLICY=ACTIVE" ]
then pass "... and the user's OMP_WAIT_POLICY=ACTIVE, kept"
else fail "... and the user's OMP_WAIT_POLICY=ACTIVE, kept" "$(cat "$T/err"; jq -c '{omp_wait}' "$T/out")"; fi
expect_ok "show --json has it" "$STAMP" --store "$T/active" show HEAD --json
expect_grep "... as stored" '"omp_wait": *"OMP_WAIT_POLICY=ACTIVE"' "$T/out"

# the thread count: automatic, unless STAMP_THREADS or the user's
# OMP_NUM_THREADS or --threads
looked='\([0-9]+ runnable threads? of other sessions, [0-9]+ of this one; load [0-9.]+; [0-9]+ cores?; autogroup (on|off)(; every process looked at)?\)'
expect_ok "--version, nothing set" "$STAMP" --version
expect_grep "... the automatic count and what it counted" "^Threads: automatic: [0-9]+ $looked$" "$T/out"
STAMP_THREADS=auto "$STAMP" --version > "$T/out" 2>&1
expect_grep "STAMP_THREADS=auto: the count and why" "^Threads: STAMP_THREADS=auto: [0-9]+ $looked$" "$T/out"
# a busy thread of this session competes thread against thread: every core
sh -c 'while :; do :; done' & spin=$!
sleep 0.2
"$STAMP" --version > "$T/out" 2>&1
kill "$spin"; wait "$spin" 2>/dev/null
expect_grep "automatic beside a busy thread of its own session: every core" \
  "^Threads: automatic: $(nproc) \\([0-9]+ runnable threads? of other sessions, [1-9][0-9]* of this one" "$T/out"
OMP_NUM_THREADS=1 "$STAMP" --version > "$T/out" 2>&1
expect_grep "the user's OMP_NUM_THREADS wins over the automatic count" "^Threads: OMP_NUM_THREADS=1$" "$T/out"
STAMP_THREADS=1 "$STAMP" --version > "$T/out" 2>&1
expect_grep "STAMP_THREADS=1 wins over the automatic count" "^Threads: STAMP_THREADS=1$" "$T/out"
STAMP_THREADS=auto OMP_NUM_THREADS=1 "$STAMP" --version > "$T/out" 2>&1
expect_grep "the user's OMP_NUM_THREADS wins over STAMP_THREADS" "^Threads: OMP_NUM_THREADS=1$" "$T/out"
STAMP_THREADS=many "$STAMP" --version > "$T/out" 2>&1
expect_grep "a malformed STAMP_THREADS is noted" "STAMP_THREADS='many' is neither auto nor a count" "$T/out"
expect_grep "... and ignored: the automatic count" "^Threads: automatic: " "$T/out"
"$STAMP" --store "$T/three" init --model "$W" > /dev/null
"$STAMP" --store "$T/three" import batch.csv > /dev/null
cp -a "$T/three" "$T/three-b"
cp -a "$T/three" "$T/three-c"
STAMP_THREADS=1 "$STAMP" --store "$T/three" commit --no-scores --json --set rounds=1 > "$T/out" 2> "$T/err"
if [ "$(jq -c '[.threads, .threads_default]' "$T/out")" = '[1,"STAMP_THREADS=1"]' ]
then pass "a commit runs STAMP_THREADS's count and records it"
else fail "a commit runs STAMP_THREADS's count" "$(cat "$T/err"; jq -c '{threads, threads_default}' "$T/out")"; fi
STAMP_THREADS=1 "$STAMP" --store "$T/three-b" commit --threads 2 --no-scores --json --set rounds=1 > "$T/out" 2> "$T/err"
if [ "$(jq -c '.threads' "$T/out")" = 2 ]; then pass "--threads 2 still means 2"
else fail "--threads 2 still means 2" "$(cat "$T/err"; jq -c '{threads, threads_default}' "$T/out")"; fi
STAMP_TEST_AUTO_THREADS=1 "$STAMP" --store "$T/three-c" commit --threads 2 --no-scores --json \
  --set rounds=1 > "$T/out" 2> "$T/err"
if [ "$(jq -c '[.threads, .threads_default]' "$T/out")" = '[2,"automatic: 1 (STAMP_TEST_AUTO_THREADS)"]' ]
then pass "--threads 2 wins over an automatic count of 1 (and the record says both)"
else fail "--threads 2 wins over the automatic count" "$(cat "$T/err"; jq -c '{threads, threads_default}' "$T/out")"; fi
# the commit's record and tensors do not depend on the automatic count:
# 64 edits, so that the solve's LAPACK calls (dpotrf, dposv, dpotri) are
# large enough for OpenBLAS to split them by its thread count
awk -v from=0 -v count=64 -f "$REPO/bench/subject_facts.awk" "$W/facts.csv" > batch64.csv
"$STAMP" --store "$T/a1" init --model "$W" > /dev/null
"$STAMP" --store "$T/a1" import batch64.csv > /dev/null
"$STAMP" --store "$T/a1" stats > /dev/null 2>&1
cp -a "$T/a1" "$T/a2"
for n in 1 2; do
  STAMP_TEST_AUTO_THREADS=$n "$STAMP" --store "$T/a$n" commit --no-scores --json --set rounds=1 \
    > "$T/a$n.json" 2> "$T/err"
  "$STAMP" --store "$T/a$n" show HEAD --json | jq -c '.commit | {layers, tensors, resid_after}' > "$T/a$n.rec"
done
if [ "$(jq .threads "$T/a1.json")" = 1 ] && [ "$(jq .threads "$T/a2.json")" = 2 ] &&
   [ -s "$T/a1.rec" ] && cmp -s "$T/a1.rec" "$T/a2.rec"
then pass "automatic counts of 1 and 2: the same commit, to the last bit of every statistic"
else fail "automatic counts of 1 and 2: the same commit" "$(cat "$T/err"; diff "$T/a1.rec" "$T/a2.rec" | head -c 600)"; fi
# the choice shown with the progress, unless --threads chose
STAMP_PROGRESS=1 STAMP_TEST_AUTO_THREADS=1 "$STAMP" predict --model "$REPO/tests/data/gpt2-tiny" --top 1 "The cat" \
  > /dev/null 2> "$T/err"
expect_grep "progress output names the automatic count" "^stamp: threads: automatic: 1 \(STAMP_TEST_AUTO_THREADS\)$" "$T/err"
STAMP_PROGRESS=1 "$STAMP" --store "$T/three-c" commit --threads 1 --no-scores > /dev/null 2> "$T/err"
if grep -q "^stamp: threads:" "$T/err"; then fail "... not when --threads chose" "$(grep threads: "$T/err")"
else pass "... not when --threads chose"; fi
STAMP_TEST_AUTO_THREADS=1 "$BUILD/stamp-world" --synthetic tiny --steps 1 --goal 2 --no-checkpoint --quiet \
  --out "$T/w0" > "$T/out" 2>&1
if [ "$(jq .threads "$T/w0/world.json" 2>/dev/null)" = "$(nproc)" ]; then pass "stamp-world's default stays all cores (a world's bytes depend on the count)"
else fail "stamp-world's default stays all cores" "$(cat "$T/out"; jq -c .threads "$T/w0/world.json")"; fi
STAMP_THREADS=1 "$BUILD/stamp-world" --synthetic tiny --steps 1 --goal 2 --no-checkpoint --quiet \
  --out "$T/w1" > "$T/out" 2>&1
if [ "$(jq .threads "$T/w1/world.json" 2>/dev/null)" = 1 ]; then pass "stamp-world runs STAMP_THREADS's count"
else fail "stamp-world runs STAMP_THREADS's count" "$(cat "$T/out"; jq -c .threads "$T/w1/world.json")"; fi
finish
