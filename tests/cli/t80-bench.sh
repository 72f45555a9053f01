# t80-bench: `make bench`'s script end to end on the tiny world with small
# counts (BENCH_OUT keeps the report out of bench/results): it writes the
# report with every section, and its stores, copies of one store with the
# statistics, score exactly as a store made from scratch does; a default
# world left by an older recipe is named.
root=$(cd "$(dirname "$0")/../.." && pwd) # before lib.sh moves to a temporary directory
. "$(dirname "$0")/lib.sh"
W=$WORLD_TINY
# The bench scripts are shell and jq around stamp commands that t42, t50
# and t60 already run under the sanitizers; here they would only spend
# the sanitizer run's time budget (about 3 minutes) on the same C paths.
if [ "$SANITIZED" = 1 ]; then
  echo "note: skipped under the sanitizers: the plain run checks the bench scripts"
  finish; exit
fi
mkdir -p "$T/report"
expect_ok "bench/run.sh on the tiny world" env BENCH_OUT="$T/report" BENCH_DAMAGE=0 BENCH_MPI=0 LLAMA_1B=0 GPT2_SIZES=0 \
  WORLD="$W" BATCH=24 NIGHTS=2 NIGHTLY=10 SCALE_BATCH=10 THREAD_PAIRS=2 SIZES="10 24" \
  RETENTION_SAMPLE=100 VARIANTS="--set joint_layers=1;--set rounds=1 --set mom2_update_weight=500" \
  bash "$root/bench/run.sh"
if grep -q "warning" "$T/err"; then fail "a world given by WORLD is not warned about" "$(head -c 300 "$T/err")"
else pass "a world given by WORLD is not warned about"; fi
json=$(ls "$T/report"/*.json 2>/dev/null | head -n 1)
if [ -n "$json" ] && jq -e '(.nightly | length) == 2 and (.batch_sizes | length) == 2 and
     .batch.eval.scores.n_facts == 24 and .threads.z_speedup > 0' "$json" >/dev/null; then
  pass "the report holds the batch, the threads, two nights and two sizes"
else fail "the report holds every section" "$(head -c 400 "${json:-/dev/null}")"; fi
# the edits not taken are the ones ES counts as failed; when there are
# some, a free target vector was tried on them
if [ -n "$json" ] && jq -e '(.batch.not_taken.edits == (24 - .batch.eval.scores.es * 24 / 100 | round)) and
     (if .batch.not_taken.edits > 0 then (.batch.not_taken.free_z.likely | type == "number" and . <= 24)
      else .batch.not_taken.free_z == null end)' "$json" >/dev/null; then
  pass "the report counts the edits not taken ($(jq -c '.batch.not_taken' "$json"))"
else fail "the report counts the edits not taken" "$(jq -c '[.batch.not_taken, .batch.eval.scores.es]' "${json:-/dev/null}")"; fi
# the thread speed-up: medians of alternating pairs, every run kept
if [ -n "$json" ] && jq -e '.threads.pairs == 2 and ([.threads.runs[][0]] == [1, 2, 1, 2]) and
     (.threads.z_seconds_1 - ([.threads.runs[] | select(.[0] == 1) | .[1]] | add / 2) | fabs) < 1e-4 and
     .threads.z_speedup == .threads.z_seconds_1 / .threads.z_seconds_2' "$json" >/dev/null; then
  pass "the thread speed-up is the median of two alternating pairs"
else fail "the thread speed-up is the median of two alternating pairs" "$(jq -c '.threads' "${json:-/dev/null}")"; fi
expect_grep "the report says the speed-up is a median of 2 pairs" "medians of 2 alternating pairs" \
  "$(ls "$T/report"/*.md | head -n 1)"
# a bad count is refused before any work
expect_exit "THREAD_PAIRS=0 is refused" 2 env BENCH_OUT="$T/report-bad" WORLD="$W" THREAD_PAIRS=0 \
  bash "$root/bench/run.sh"
expect_grep "the refusal names THREAD_PAIRS" "THREAD_PAIRS must be a whole number" "$T/err"
if [ -e "$T/report-bad" ]; then fail "a refused run writes no report" "$(ls "$T/report-bad")"
else pass "a refused run writes no report"; fi
# the GPT-2 sizes' knobs are checked before a model is made (minutes each)
expect_exit "gpt2_sizes: an unknown shape is refused" 2 env BENCH_OUT="$T/report-bad" \
  GPT2_SIZES=medium,large bash "$root/bench/gpt2_sizes.sh"
expect_grep "the refusal names the shape" "'large' is not a shape" "$T/err"
expect_exit "gpt2_sizes: a commit without stats is refused" 2 env BENCH_OUT="$T/report-bad" \
  PHASES=init,commit bash "$root/bench/gpt2_sizes.sh"
expect_grep "the refusal says why" "commit needs stats" "$T/err"
if [ -e "$T/report-bad" ]; then fail "a refused gpt2_sizes run writes no report" "$(ls "$T/report-bad")"
else pass "a refused gpt2_sizes run writes no report"; fi
# the size that is the batch of (a) is that commit, not a second one
if [ -n "$json" ] && jq -e '.batch_sizes[1].edits == 24 and .batch_sizes[1].es == .batch.eval.scores.es and
     .batch_sizes[1].retained == .batch.eval.retention.retained and .batch_sizes[1].z_seconds == .batch.timings.z' "$json" >/dev/null; then
  pass "the batch-size row of 24 is the batch's commit"
else fail "the batch-size row of 24 is the batch's commit" "$(jq -c '[.batch_sizes[1], .batch.eval.scores]' "${json:-/dev/null}")"; fi
if [ -n "$json" ] && jq -e '(.variants | length) == 2 and .variants[0].options == "--set joint_layers=1" and
     .variants[0].edits == 24 and .variants[1].rounds_kept == 1 and (.variants | all(.es >= 0 and .solve_seconds > 0))' "$json" >/dev/null; then
  pass "the report holds the batch again with each of two settings"
else fail "the report holds the batch with each setting" "$(jq -c '.variants' "${json:-/dev/null}")"; fi
if [ -n "$json" ] && jq -e --arg core "$("$BUILD/tools/bench_sgemm" --core)" '.machine.openblas_kernels == $core' "$json" >/dev/null; then
  pass "the report names the OpenBLAS kernels that ran"
else fail "the report names the OpenBLAS kernels that ran" "$(jq -c '.machine' "${json:-/dev/null}")"; fi
for section in "One batch of 24 edits" "Machine: .*, OpenBLAS kernels [A-Za-z]+\\. World" "The first fact of each of the first 24 subjects" "## Threads" "## Nightly batches" "## Batch size" "## Other settings on the batch of 24" '^\| `--set rounds=1 --set mom2_update_weight=500` \| [0-9.]+ \|'; do
  expect_grep "the report has '$section'" "$section" "$(ls "$T/report"/*.md | head -n 1)"
done
# a store from scratch (init, statistics computed by the commit) against
# the bench's copy of its base store: the same scores
expect_ok "one_batch.sh from scratch" env HPARAMS="$root/bench/hparams.json" SAMPLE=100 \
  bash "$root/bench/one_batch.sh" "$W" 10 --threads 2
jq -S 'del(.z_seconds, .z_gflop, .solve_seconds)' "$T/out" > scratch.json
jq -S '.batch_sizes[0] | del(.z_seconds, .z_gflop, .solve_seconds)' "$json" > copied.json
if [ -s scratch.json ] && jq -e '.es != null' scratch.json >/dev/null; then
  expect_same "a copied store scores as a store from scratch" scratch.json copied.json
else fail "a copied store scores as a store from scratch" "no scores from scratch"; fi
# paraphrase_transfer.sh: every fact of the commit in one of its four
# groups, never more paraphrases reached than facts
export STAMP_STORE="$T/pt-store"
"$STAMP" init --model "$W" > /dev/null
awk -v from=0 -v count=12 -f "$root/bench/subject_facts.awk" "$W/facts.csv" > pt.csv
"$STAMP" import pt.csv > /dev/null
"$STAMP" commit --no-scores --threads 2 > /dev/null 2>&1
expect_ok "paraphrase_transfer.sh after a commit of 12" bash "$root/bench/paraphrase_transfer.sh" "$W"
if [ "$(grep -c '^knew=' "$T/out")" = 4 ] &&
   [ "$(awk '/^knew=/ { n += $3 } END { print n }' "$T/out")" = 12 ] &&
   awk '/^knew=/ && $7 > $3 { bad = 1 } END { exit bad }' "$T/out"; then
  pass "four groups holding the 12 facts, reached <= facts"
else fail "four groups holding the 12 facts" "$(cat "$T/out")"; fi
expect_exit "paraphrase_transfer.sh without a world: usage" 2 bash "$root/bench/paraphrase_transfer.sh"
export STAMP_STORE="$T/store"
# a build/world-cf from an older recipe (here: world-tiny's d_ff 256) is
# named: run.sh in a copy of the tree whose build/world-cf is that world
mkdir -p old-tree/build/tools
cp -r "$root/bench" old-tree/
ln -s "$W" old-tree/build/world-cf
ln -s "$STAMP" old-tree/build/stamp
ln -s "$BUILD/tools/bench_sgemm" old-tree/build/tools/bench_sgemm
expect_ok "bench/run.sh on an old default world" env -u WORLD BENCH_OUT="$T/report-old" BENCH_DAMAGE=0 BENCH_MPI=0 LLAMA_1B=0 GPT2_SIZES=0 \
  STAMP="$STAMP" BATCH=12 NIGHTS=1 NIGHTLY=6 SCALE_BATCH=6 SIZES="6" \
  RETENTION_SAMPLE=50 bash old-tree/bench/run.sh
expect_grep "the old world is named" "warning: .*world-cf has d_ff 256, bench/world.sh builds [0-9]+;" "$T/err"
expect_grep "... and its phrasings" "warning: .*world-cf has phrasings 0, bench/world.sh builds [0-9]+;" "$T/err"
expect_grep "... and its held-out paraphrases" "warning: .*world-cf has held-out-paraphrases 0, bench/world.sh builds [0-9]+;" "$T/err"
finish
