# t45-mpi: `mpirun -np 2 stamp stats|commit` on localhost (base/dist,
# keystats_dist, commit_dist). Two ranks give the key statistics and the
# commit one process gives, bit for bit: the corpus is split where one
# process adds its gathered keys anyway (so only the grouping of float64
# additions of whole groups differs, exact here; docs/performance.md
# states the bound) and each fact group's target vector does not depend
# on the rank that finds it. A rank killed with SIGKILL while rank 0
# waits for it fails the command with a message naming it, rank 0 exits
# 1, and the store's state is exactly as before. Each rank runs 1 thread.
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
. "$HERE/crashlib.sh"

if ! command -v mpirun >/dev/null || ! "$STAMP" --version | grep -q '^MPI: Open MPI'; then
  fail "MPI" "no mpirun, or stamp built without MPI (make deps installs openmpi-bin and libopenmpi-dev)"
  finish; exit 1
fi
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
# Open MPI's own allocations outlive MPI_Finalize: no leak report under ASan
export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0
MPIRUN=(mpirun --oversubscribe -np 2 -x OMP_NUM_THREADS -x ASAN_OPTIONS
        -x STAMP_TEST_DIST_PAUSE -x STAMP_STORE)
export STAMP_TEST_DIST_PAUSE=0

fixture_model_and_corpus || { finish; exit 1; }
cat > facts.csv <<'EOF'
subject,prompt,target_new,target_true
Alice Smith,{} plays the,guitar,piano
Bob Jones,{} works for,Apple,Google
Carol White,{} was born in,Rome,Paris
Dan Brown,{} speaks,French,English
Eve Green,{} lives in,Berlin,Madrid
Finn Gray,{} is a,doctor,lawyer
Gina Black,{} drives a,truck,car
Hugo Stone,{} eats,rice,bread
EOF
# four groups of two facts: each rank finds the target vectors of two
commit_args=(commit --corpus corpus.txt --set facts_per_group=2 --json)

expect_ok "init" "$STAMP" --store one init --model model
expect_ok "import" "$STAMP" --store one import facts.csv
cp -a one two

# ---- key statistics
expect_ok "stats, one process" "$STAMP" --store one stats --corpus corpus.txt --json
jq -c '.[] | [.layer, .tokens, .sequences, .sum_hash]' "$T/out" > stats.one
expect_ok "stats, 2 ranks" "${MPIRUN[@]}" "$STAMP" --store two stats --corpus corpus.txt --json
jq -c '.[] | [.layer, .tokens, .sequences, .sum_hash]' "$T/out" > stats.two
expect_same "the same keys, sequences and float64 sums (hash)" stats.one stats.two
expect_grep "one document on stdout, from rank 0 alone" '^\[' "$T/out"
[ "$(grep -c '"layer"' "$T/out")" -eq "$(grep -c . stats.one)" ] &&
  pass "rank 1 printed nothing" || fail "rank 1 printed nothing" "$(cat "$T/out")"

# ---- a commit
expect_ok "commit, one process" "$STAMP" --store one "${commit_args[@]}"
cp "$T/out" commit.one
expect_ok "commit, 2 ranks" "${MPIRUN[@]}" "$STAMP" --store two "${commit_args[@]}"
cp "$T/out" commit.two
pick() { jq -c '[.tensors, .scores, [.rounds[] | .z_nll_mean, .z_steps_mean]]' "$1"; }
pick commit.one > sum.one; pick commit.two > sum.two
expect_same "the same tensors (hashes), scores and target vectors per round" sum.one sum.two
jq -e '.tensors | length > 0' commit.one >/dev/null && pass "the commit edited tensors" ||
  fail "the commit edited tensors" "$(head -c 300 commit.one)"

# ---- a second commit: the workers load the model's files and get from
# rank 0 the matrices the first commit changed (the store's overlay)
cat > facts2.csv <<'EOF'
subject,prompt,target_new,target_true
Ivy Long,{} plays the,violin,drums
Jack Hill,{} works for,Intel,Sony
Kim Ford,{} was born in,Oslo,Lima
Leo Ward,{} speaks,Greek,Dutch
EOF
for s in one two; do "$STAMP" --store $s import facts2.csv > /dev/null; done
expect_ok "second commit, one process" "$STAMP" --store one "${commit_args[@]}"
pick "$T/out" > sum2.one
expect_ok "second commit, 2 ranks" "${MPIRUN[@]}" "$STAMP" --store two "${commit_args[@]}"
pick "$T/out" > sum2.two
expect_same "over a committed edit: the same tensors, scores and target vectors" sum2.one sum2.two
export STAMP_STORE=two
expect_ok "fsck after the 2-rank commit" "$STAMP" fsck

# ---- a rank killed while rank 0 waits for it
# Runs "${MPIRUN[@]}" stamp ARGS with rank 1 pausing before it delivers
# its share, kills rank 1 with SIGKILL, and sets mpi_rc (mpirun's status)
# and rank0_rc (stamp's own on rank 0, written by a wrapper that keeps
# mpirun's SIGTERM off the shell, not off stamp).
kill_rank1() {
  rm -f rc.0 rc.1
  STAMP_TEST_DIST_PAUSE=60 "${MPIRUN[@]}" sh -c \
    'trap "" TERM; "$@"; echo $? > rc.$OMPI_COMM_WORLD_RANK' sh "$STAMP" "$@" \
    > kill.out 2> kill.err &
  local mp=$! pid="" p i
  for i in $(seq 300); do
    for p in $(pgrep -f -- "$STAMP"); do
      [ "$(readlink "/proc/$p/exe" 2>/dev/null)" = "$(readlink -f "$STAMP")" ] &&
        tr '\0' '\n' < "/proc/$p/environ" 2>/dev/null | grep -qx OMPI_COMM_WORLD_RANK=1 &&
        grep -qx "$T" <(readlink "/proc/$p/cwd") && pid=$p
    done
    [ -n "$pid" ] && break; sleep 0.1
  done
  [ -n "$pid" ] || { fail "rank 1 found" "no process"; kill "$mp"; wait "$mp"; return 1; }
  # rank 1 pauses once its share is computed: wait until rank 0 waits
  for i in $(seq 600); do
    grep -q "rank 1 pauses" kill.err && break
    sleep 0.1
  done
  kill -KILL "$pid"
  wait "$mp"; mpi_rc=$?
  rank0_rc=$(cat rc.0 2>/dev/null || echo none)
}

cat > more.csv <<'EOF'
subject,prompt,target_new,target_true
Alice Smith,{} plays the,drums,piano
Ivan Rose,{} works for,Intel,Google
EOF
expect_ok "import two more" "$STAMP" import more.csv
state_snapshot before
kill_rank1 commit --corpus corpus.txt --set facts_per_group=1
[ "$mpi_rc" -ne 0 ] && pass "mpirun fails (status $mpi_rc)" || fail "mpirun fails" "status 0"
[ "$rank0_rc" = 1 ] && pass "stamp on rank 0 exits 1" || fail "stamp on rank 0 exits 1" "$rank0_rc"
expect_grep "the message names the rank and what it did not deliver" \
  'stamp: error: MPI rank 1 stopped before it delivered its target vectors' kill.err
state_snapshot after
expect_same "the store's state is as before the commit" before after
expect_ok "fsck after the killed commit" "$STAMP" fsck
expect_ok "the queue is still there: 2 ranks commit it" "${MPIRUN[@]}" "$STAMP" commit --corpus corpus.txt --no-scores

# the same in the key statistics: a store without them keeps none
export STAMP_STORE=three
expect_ok "init a third store" "$STAMP" init --model model
state_snapshot before3
kill_rank1 stats --corpus corpus.txt
[ "$rank0_rc" = 1 ] && pass "stats: stamp on rank 0 exits 1" || fail "stats: stamp on rank 0 exits 1" "$rank0_rc"
expect_grep "stats: the message names rank 1" \
  'stamp: error: MPI rank 1 stopped before it delivered its key statistics' kill.err
expect_ok "stats --json" "$STAMP" stats --json
expect_grep "no statistics were kept" '"present": false' "$T/out"
state_snapshot after3
expect_same "the third store's state is as before" before3 after3
finish
