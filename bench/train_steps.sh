#!/usr/bin/env bash
# train_steps.sh: how fast builds train the benchmark world: STEPS steps
# of bench/world.sh's recipe (and one recall check at the end) with each
# build's stamp-world, in alternating runs so that a noisy host shows as
# spread; the medians are the figures to quote.
#
#   bash bench/train_steps.sh [--steps N] [--runs N] [BUILD...] [-- world.sh options]
#
# BUILD: build directories holding stamp-world (default: build);
# two builds of two commits compare trainers. --steps defaults to 100,
# --runs to 3. Options after -- go to world.sh (e.g. --ff 4096). Writes
# every run and the medians to bench/results/train-steps-DATE.txt.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
steps=100; runs=3; builds=(); extra=()
while [ $# -gt 0 ]; do
  case $1 in
    --steps) steps=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --) shift; extra=("$@"); break ;;
    *) builds+=("$1"); shift ;;
  esac
done
[ ${#builds[@]} -gt 0 ] || builds=(build)
for b in "${builds[@]}"; do
  [ -x "$b/stamp-world" ] || { echo "train_steps.sh: no $b/stamp-world (run make BUILD=$b)" >&2; exit 1; }
done
work=$(mktemp -d /tmp/stamp-train-steps.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$here/bench/results"
result="$here/bench/results/train-steps-$(date -u +%Y%m%d-%H%M%S).txt"
median() { sort -g | awk -f "$here/bench/median.awk"; }
echo "# bench/train_steps.sh $(date -u +%Y-%m-%dT%H:%M:%SZ): $steps steps of bench/world.sh ${extra[*]:-} on $(nproc) cores,$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2); builds: ${builds[*]}" | tee "$result"
for run in $(seq "$runs"); do
  for i in "${!builds[@]}"; do
    b=$(cd "${builds[$i]}" && pwd)
    rm -rf "$work/world"
    RESULT=$work/log WORLD_OUT=$work/world BUILD=$b \
      bash "$here/bench/world.sh" "${extra[@]}" --steps "$steps" \
      --eval-every "$steps" > /dev/null 2>&1 ||
      { echo "train_steps.sh: world.sh failed with $b:" >&2; tail -5 "$work/log" >&2; exit 1; }
    s=$(sed -n 's/.*trained [0-9]* steps in \([0-9.]*\)s.*/\1/p' "$work/log")
    loss=$(sed -n 's/.*trained [0-9]* steps in [0-9.]*s: loss \([0-9.]*\).*/\1/p' "$work/log")
    echo "$i $s" >> "$work/runs.txt"
    echo "run $run, ${builds[$i]}: $s s (loss $loss)" | tee -a "$result"
  done
done
first=""
for i in "${!builds[@]}"; do
  m=$(awk -v i="$i" '$1 == i { print $2 }' "$work/runs.txt" | median)
  [ -n "$first" ] || first=$m
  awk -v b="${builds[$i]}" -v m="$m" -v f="$first" -v n="$steps" 'BEGIN {
    printf "median %s: %.1f s, %.3f s a step, %.2fx the first build\n", b, m, m / n, f / m }' | tee -a "$result"
done
echo "# results in $result"
