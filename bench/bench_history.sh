#!/usr/bin/env bash
# bench_history: the cost of revert and reset against the length of the
# history, and the size of real MEMIT diffs, on a world model (default
# build/world-tiny): K sequential commits of F facts each (no scores);
# `revert HEAD` is timed after the first commit and after the K-th (one
# commit undone at history lengths 1 and K: the time must not grow),
# then `reset HEAD~5`, `fsck` (replays the chain) and `reset base`.
# Results go to stdout and bench/results/history-<date>.txt.
#
#   bench/bench_history.sh [WORLD_DIR] [K] [F]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
STAMP=${STAMP:-$here/build/stamp}
W=${1:-$here/build/world-tiny}
K=${2:-20}
F=${3:-5}
out="$here/bench/results/history-$(date +%Y%m%d).txt"
mkdir -p "$here/bench/results"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/stamp-bench-history.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
export STAMP_STORE="$tmp/store"
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
timed() { local t0 t1; t0=$(now); "$@" >/dev/null; t1=$(now); elapsed "$t0" "$t1"; }
n_facts=$(($(wc -l < "$W/facts.csv") - 1))
batch() { # the k-th batch of F facts (wrapping around the world's facts)
  local first=$(( ($1 - 1) * F % n_facts + 2 ))
  sed -n 1p "$W/facts.csv"
  sed -n "${first},$((first + F - 1))p" "$W/facts.csv"
}
{
echo "# bench_history $(date -u +%Y-%m-%dT%H:%M:%SZ) world=$W K=$K F=$F"
echo "# machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
"$STAMP" init --model "$W" >/dev/null
for k in $(seq 1 "$K"); do
  batch "$k" > "$tmp/batch.csv"
  "$STAMP" import "$tmp/batch.csv" >/dev/null
  echo "commit $k: $(timed "$STAMP" commit --no-scores -m "batch $k") s"
  if [ "$k" = 1 ]; then
    echo "revert HEAD after 1 commit: $(timed "$STAMP" revert HEAD) s"
    "$STAMP" import "$tmp/batch.csv" >/dev/null
    "$STAMP" commit --no-scores -m "batch 1 again" >/dev/null
  fi
done
"$STAMP" show HEAD --json > "$tmp/head.json" 2>/dev/null || true
echo "revert HEAD after $((K + 1)) commits: $(timed "$STAMP" revert HEAD) s"
echo "reset HEAD~5 (5 commits undone): $(timed "$STAMP" reset HEAD~5) s"
echo "fsck (chain of $((K - 5))): $(timed "$STAMP" fsck) s"
echo "reset base ($((K - 5)) commits undone): $(timed "$STAMP" reset base) s"
if command -v jq >/dev/null && [ -s "$tmp/head.json" ]; then
  jq -r '(.tensors // .record.tensors // .commit.tensors // {}) | to_entries[] |
    "diff of \(.key): \(.value.diff_bytes) of \(.value.raw_bytes) bytes (\(100 * .value.diff_bytes / .value.raw_bytes | floor)%)"' \
    "$tmp/head.json" 2>/dev/null || true
fi
echo "store size: $(du -sh "$tmp/store" | cut -f1)"
} | tee "$out"
