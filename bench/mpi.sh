#!/usr/bin/env bash
# bench/mpi.sh: `stamp stats` and `stamp commit` on one process against
# `mpirun -np 2` on this machine (base/dist.c): wall seconds of 1 rank x
# 1 thread, 2 ranks x 1 thread and 1 rank x 2 threads, RUNS rounds of the
# three in turn (default 3; each round starts one set-up later, so none
# always runs first), medians. The stats cover the first
# STATS_SAMPLES lines of WORLD's corpus (default 5000), each run on a
# fresh copy of an initialised store; the commit is EDITS edits (default
# 200; the first fact of each of the first EDITS subjects of
# WORLD/facts.csv) with COMMIT_OPTS (default 2 rounds, no scores) on a
# fresh copy of a store whose statistics are already there. It also
# checks that the 2-rank runs give the one-process key statistics and
# tensors. Prints a markdown table and writes it to
# BENCH_OUT/mpi-<date>.md. Called by bench/run.sh (BENCH_MPI=0 skips it).
#
#   WORLD=build/world-cf RUNS=3 bash bench/mpi.sh
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
STAMP=${STAMP:-$here/build/stamp}
WORLD=${WORLD:-$here/build/world-cf}
RUNS=${RUNS:-3}
EDITS=${EDITS:-200}
STATS_SAMPLES=${STATS_SAMPLES:-5000}
COMMIT_OPTS=${COMMIT_OPTS:---set rounds=2 --no-scores}
HPARAMS=${HPARAMS-$here/bench/hparams.json}
out_dir=${BENCH_OUT:-$here/bench/results}
command -v mpirun >/dev/null || { echo "mpi.sh: no mpirun (make deps)" >&2; exit 1; }
"$STAMP" --version | grep -q '^MPI: Open MPI' ||
  { echo "mpi.sh: $STAMP was built without MPI" >&2; exit 1; }
[ -f "$WORLD/facts.csv" ] && [ -f "$WORLD/corpus.txt" ] ||
  { echo "mpi.sh: no facts.csv and corpus.txt in $WORLD" >&2; exit 1; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
work=$(mktemp -d /tmp/stamp-bench-mpi.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$out_dir"
init_opts=()
[ -z "$HPARAMS" ] || init_opts=(--hparams "$HPARAMS")

# the stores: base (initialised, the batch queued) and stats (base with
# the key statistics of STATS_SAMPLES lines)
"$STAMP" --store "$work/base" init --model "$WORLD" "${init_opts[@]}" > /dev/null
awk -v from=0 -v count="$EDITS" -f "$here/bench/subject_facts.awk" \
  "$WORLD/facts.csv" > "$work/batch.csv"
"$STAMP" --store "$work/base" import "$work/batch.csv" > /dev/null
cp -a "$work/base" "$work/stats"
"$STAMP" --store "$work/stats" stats --corpus "$WORLD/corpus.txt" \
  --samples "$STATS_SAMPLES" --json > "$work/stats.ref"

# run KIND CONFIG: one timed run; appends "KIND CONFIG SECONDS" to runs
run() {
  local kind=$1 config=$2 store=$work/run launch=() threads=1
  case $config in
    1x1) ;;
    2x1) launch=(mpirun --oversubscribe -np 2 -x OMP_NUM_THREADS -x OPENBLAS_NUM_THREADS) ;;
    1x2) threads=2 ;;
  esac
  rm -rf "$store"
  local args=()
  if [ "$kind" = stats ]; then
    cp -a "$work/base" "$store"
    args=(stats --corpus "$WORLD/corpus.txt" --samples "$STATS_SAMPLES" --json)
  else
    cp -a "$work/stats" "$store"
    # shellcheck disable=SC2206
    args=(commit --threads "$threads" --set stats_samples="$STATS_SAMPLES" $COMMIT_OPTS --json)
  fi
  local t0 t1
  t0=$(date +%s.%N)
  OMP_NUM_THREADS=$threads OPENBLAS_NUM_THREADS=$threads \
    "${launch[@]}" "$STAMP" --store "$store" "${args[@]}" > "$work/$kind.$config.json"
  t1=$(date +%s.%N)
  local z=0
  [ "$kind" = stats ] || z=$(jq -r '.timings.z' "$work/$kind.$config.json")
  echo "$kind $config $(echo "$t1 - $t0" | bc -l) $z" >> "$work/runs"
}
configs=(1x1 2x1 1x2)
for r in $(seq "$RUNS"); do
  order=()
  for i in 0 1 2; do order+=("${configs[$(( (i + r - 1) % 3 ))]}"); done
  for config in "${order[@]}"; do run stats "$config"; done
  for config in "${order[@]}"; do run commit "$config"; done
done
median() { awk -v k="$1" -v c="$2" -v col="${3:-3}" '$1 == k && $2 == c { print $col }' "$work/runs" |
  sort -g | awk -f "$here/bench/median.awk" | xargs printf '%.2f'; }
# the 2-rank results against one process's
same_stats=no; same_commit=no
cmp -s <(jq -c '[.[] | .sum_hash]' "$work/stats.1x1.json") \
       <(jq -c '[.[] | .sum_hash]' "$work/stats.2x1.json") && same_stats=yes
cmp -s <(jq -c '.tensors' "$work/commit.1x1.json") \
       <(jq -c '.tensors' "$work/commit.2x1.json") && same_commit=yes
out=$out_dir/mpi-$(date -u +%Y-%m-%d).md
{
  echo "## MPI: 1 vs 2 ranks ($(date -u +%Y-%m-%d), $(nproc) cores, $(basename "$WORLD"), load average $(cut -d' ' -f1-3 /proc/loadavg))"
  echo
  echo "Stats: the first $STATS_SAMPLES corpus lines; commit: $EDITS edits, $COMMIT_OPTS."
  echo "Wall seconds, medians of $RUNS (mpirun's start included); z: the"
  echo "commit's target-vector seconds (its --json timings), medians of $RUNS."
  echo
  echo "| | 1 rank x 1 thread | 2 ranks x 1 thread | 1 rank x 2 threads |"
  echo "|---|---|---|---|"
  echo "| stats | $(median stats 1x1) | $(median stats 2x1) | $(median stats 1x2) |"
  echo "| commit | $(median commit 1x1) | $(median commit 2x1) | $(median commit 1x2) |"
  echo "| commit z phase | $(median commit 1x1 4) | $(median commit 2x1 4) | $(median commit 1x2 4) |"
  echo
  echo "2 ranks give the one-process key statistics bit for bit: $same_stats;"
  echo "the same tensors: $same_commit."
} | tee "$out"
