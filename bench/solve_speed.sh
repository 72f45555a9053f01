#!/usr/bin/env bash
# solve_speed.sh: how fast builds compute the key statistics and commit a
# batch on a world, in alternating runs so that a noisy host shows as
# spread; the medians are the figures to quote. Each run: `stamp stats
# --samples SAMPLES` on a fresh store (seconds), then a commit of the
# first fact of EDITS subjects (2 threads, no scores) on a copy of a
# store that has the full statistics; the commit's timings (total, z,
# solve, factor, and load: reading the statistics from the store) and its
# ES/PS/NS from `stamp eval`, so that builds that should edit alike can
# be seen to.
#
#   bash bench/solve_speed.sh [--runs N] [--edits N] [--samples N] [--rounds N] [--set KEY=VALUE]... BUILD...
#
# BUILD: build directories holding stamp (two builds of two commits
# compare solvers). WORLD (default build/world-cf) is the world;
# BASE_STORE a store on it with its statistics and nothing queued
# (default: made once with the last build's stamp stats, minutes on a
# wide world). --runs defaults to 3, --edits to 200, --samples to 2000;
# --rounds sets the commit's rounds (default: bench/hparams.json's; 1
# shows a commit's fixed costs); --set passes a hyperparameter to every
# commit (e.g. --set joint_layers=1).
# Writes every run and the medians to bench/results/solve-speed-DATE.txt.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
runs=3; edits=200; samples=2000; commit_opts=(); builds=()
while [ $# -gt 0 ]; do
  case $1 in
    --runs) runs=$2; shift 2 ;;
    --edits) edits=$2; shift 2 ;;
    --samples) samples=$2; shift 2 ;;
    --rounds) commit_opts+=(--set "rounds=$2"); shift 2 ;;
    --set) commit_opts+=(--set "$2"); shift 2 ;;
    *) builds+=("$(cd "$1" && pwd)"); shift ;;
  esac
done
[ ${#builds[@]} -gt 0 ] || { echo "usage: solve_speed.sh [--runs N] [--edits N] [--samples N] [--rounds N] [--set KEY=VALUE]... BUILD..." >&2; exit 2; }
for b in "${builds[@]}"; do
  [ -x "$b/stamp" ] || { echo "solve_speed.sh: no $b/stamp (run make BUILD=$b)" >&2; exit 1; }
done
WORLD=${WORLD:-$here/build/world-cf}
[ -f "$WORLD/facts.csv" ] || { echo "solve_speed.sh: no $WORLD/facts.csv (make world)" >&2; exit 1; }
hparams=$here/bench/hparams.json
work=$(mktemp -d /tmp/stamp-solve-speed.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$here/bench/results"
result="$here/bench/results/solve-speed-$(date -u +%Y%m%d-%H%M%S).txt"
median() { sort -g | awk -f "$here/bench/median.awk"; }
last=${builds[${#builds[@]}-1]}
base=${BASE_STORE:-}
if [ -z "$base" ]; then
  base=$work/base
  STAMP_STORE=$base "$last/stamp" init --model "$WORLD" --hparams "$hparams" > /dev/null
  STAMP_STORE=$base "$last/stamp" stats --corpus "$WORLD/corpus.txt" > /dev/null
fi
awk -v from=0 -v count="$edits" -f "$here/bench/subject_facts.awk" \
  "$WORLD/facts.csv" > "$work/batch.csv"
echo "# bench/solve_speed.sh $(date -u +%Y-%m-%dT%H:%M:%SZ): stats --samples $samples and a commit of $edits edits (bench/hparams.json ${commit_opts[*]}, 2 threads) on $WORLD ($(jq -r '.model.n_inner' "$WORLD/world.json") MLP units), $(nproc) cores,$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2); builds: ${builds[*]}" | tee "$result"
for run in $(seq "$runs"); do
  for i in "${!builds[@]}"; do
    b=${builds[$i]}
    export STAMP_STORE=$work/stats
    rm -rf "$STAMP_STORE"
    "$b/stamp" init --model "$WORLD" --hparams "$hparams" > /dev/null
    t0=$(date +%s.%N)
    "$b/stamp" stats --corpus "$WORLD/corpus.txt" --samples "$samples" > /dev/null
    stats_s=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { print b - a }')
    export STAMP_STORE=$work/commit
    rm -rf "$STAMP_STORE"
    cp -a "$base" "$STAMP_STORE"
    "$b/stamp" import "$work/batch.csv" > /dev/null
    "$b/stamp" commit --threads 2 --no-scores --json "${commit_opts[@]}" > "$work/commit.json" 2> /dev/null
    "$b/stamp" eval --json --sample 0 > "$work/eval.json"
    line=$(jq -r -n --slurpfile c "$work/commit.json" --slurpfile e "$work/eval.json" \
      '"\($c[0].timings.total) \($c[0].timings.z) \($c[0].timings.solve) \($c[0].timings.factor // 0) \($c[0].timings.stats // 0) \($e[0].scores.es)/\($e[0].scores.ps)/\($e[0].scores.ns)"')
    echo "$i $stats_s $line" >> "$work/runs.txt"
    read -r total z solve factor load scores <<< "$line"
    printf 'run %s, %s: stats %.1f s; commit %.1f s (z %.1f, solve %.1f, factor %.1f, load %.1f); ES/PS/NS %s\n' \
      "$run" "$b" "$stats_s" "$total" "$z" "$solve" "$factor" "$load" "$scores" | tee -a "$result"
  done
done
for i in "${!builds[@]}"; do
  col() { awk -v i="$i" -v c="$1" '$1 == i { print $c }' "$work/runs.txt" | median; }
  printf 'median %s: stats %.1f s, commit %.1f s, z %.1f s, solve %.1f s, factor %.1f s, load %.1f s\n' \
    "${builds[$i]}" "$(col 2)" "$(col 3)" "$(col 4)" "$(col 5)" "$(col 6)" "$(col 7)" | tee -a "$result"
done
echo "# results in $result"
