#!/usr/bin/env bash
# threads.sh: 1 vs 2 threads on one batch, repeated in alternating pairs
# so that a noisy host shows as spread, not as a false speed-up; the
# medians are the figure to quote (make bench measures one pair).
#
#   bash bench/threads.sh [WORLD] [EDITS] [PAIRS]
#
# WORLD defaults to build/world-cf, EDITS to 200 (the first fact of each
# of the first EDITS subjects), PAIRS to 3. The threads wait as stamp
# has them (lib/base/threads.h) unless OMP_WAIT_POLICY or GOMP_SPINCOUNT
# is set (bench/threads_busy.sh compares the policies, idle and busy).
# One store gets the statistics and the batch (with $HPARAMS, default bench/hparams.json);
# each run commits in a copy of it (--no-scores); BASE_STORE, a store on
# WORLD with its statistics and nothing queued, saves computing them
# (minutes on a wide world). Writes the sgemm peak
# before and after, every run and the medians to
# bench/results/threads-NAME-DATE.txt.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
STAMP=${STAMP:-$here/build/stamp}
world=${1:-$here/build/world-cf}; edits=${2:-200}; pairs=${3:-3}
[ -f "$world/facts.csv" ] || { echo "threads.sh: no $world/facts.csv" >&2; exit 1; }
sgemm=$here/build/tools/bench_sgemm
work=$(mktemp -d /tmp/stamp-threads.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$here/bench/results"
result="$here/bench/results/threads-$(basename "$world")-$(date -u +%Y%m%d-%H%M%S).txt"
peaks() {
  echo "# sgemm 2048 $1: 1 thread $(OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 "$sgemm" 2048)," \
       "2 threads $(OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2 "$sgemm" 2048) GFLOP/s"
}
median() { sort -g | awk -f "$here/bench/median.awk"; }
{
  echo "# bench/threads.sh $(date -u +%Y-%m-%dT%H:%M:%SZ): $edits edits of $world, $pairs pairs, on $(nproc) cores,$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2), load average $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "# OpenMP waiting: $("$STAMP" --version | sed -n 's/^OpenMP waiting: //p')"
  peaks before
} | tee "$result"
awk -v from=0 -v count="$edits" -f "$here/bench/subject_facts.awk" \
  "$world/facts.csv" > "$work/batch.csv"
export STAMP_STORE=$work/base
if [ -n "${BASE_STORE:-}" ]; then
  cp -a "$BASE_STORE" "$STAMP_STORE"
else
  "$STAMP" init --model "$world" --hparams "${HPARAMS:-$here/bench/hparams.json}" > /dev/null
  "$STAMP" stats --corpus "$world/corpus.txt" > /dev/null
fi
"$STAMP" import "$work/batch.csv" > /dev/null
for pair in $(seq "$pairs"); do
  for th in 1 2; do
    rm -rf "$work/run" && cp -a "$work/base" "$work/run"
    STAMP_STORE=$work/run "$STAMP" commit --threads "$th" --no-scores --json > "$work/out.json"
    z=$(jq .timings.z "$work/out.json"); total=$(jq .timings.total "$work/out.json")
    echo "$th $z $total" >> "$work/runs.txt"
    echo "pair $pair, $th thread(s): z $z s, commit $total s" | tee -a "$result"
  done
done
peaks after | tee -a "$result"
z1=$(awk '$1 == 1 { print $2 }' "$work/runs.txt" | median)
z2=$(awk '$1 == 2 { print $2 }' "$work/runs.txt" | median)
t1=$(awk '$1 == 1 { print $3 }' "$work/runs.txt" | median)
t2=$(awk '$1 == 2 { print $3 }' "$work/runs.txt" | median)
awk -v z1="$z1" -v z2="$z2" -v t1="$t1" -v t2="$t2" 'BEGIN {
  printf "medians: z %.2f s (1 thread) / %.2f s (2 threads) = %.2fx; commit %.2f / %.2f s = %.2fx\n",
         z1, z2, z1 / z2, t1, t2, t1 / t2 }' | tee -a "$result"
echo "# results in $result"
