#!/usr/bin/env bash
# seq_batches.sh: the scores after NIGHTS sequential commits of N edits
# each on a fresh store (the first fact of each of subjects 1..N, then
# N+1..2N, ...), for the one-off comparisons of hyperparameters quoted in
# docs and notes (the nightly part of `make bench` does the same with
# the benchmark's settings and scores every night).
#
#   HPARAMS=FILE bash bench/seq_batches.sh WORLD NIGHTS N [commit options...]
#
# Prints one JSON line: ES, PS, NS over all committed edits and the
# retention (SAMPLE untouched facts, default 300).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
STAMP=${STAMP:-$here/build/stamp}
[ $# -ge 3 ] || { echo "usage: seq_batches.sh WORLD NIGHTS N [commit options...]" >&2; exit 2; }
world=$1; nights=$2; n=$3; shift 3
[ -f "$world/facts.csv" ] || { echo "seq_batches.sh: no $world/facts.csv" >&2; exit 1; }
work=$(mktemp -d /tmp/stamp-seq.XXXXXX)
trap 'rm -rf "$work"' EXIT
export STAMP_STORE=$work/store
init_opts=()
[ -z "${HPARAMS:-}" ] || init_opts=(--hparams "$HPARAMS")
"$STAMP" init --model "$world" "${init_opts[@]}" > /dev/null
for night in $(seq 1 "$nights"); do
  awk -v from=$(((night - 1) * n)) -v count="$n" \
    -f "$here/bench/subject_facts.awk" "$world/facts.csv" > "$work/batch.csv"
  "$STAMP" import "$work/batch.csv" > /dev/null
  "$STAMP" commit --threads 2 --no-scores --json -m "night $night" "$@" > /dev/null
done
"$STAMP" eval --json --sample "${SAMPLE:-300}" |
  jq -c --arg world "$(basename "$world")" --argjson nights "$nights" --argjson n "$n" \
    '{world: $world, nights: $nights, edits_per_night: $n, es: .scores.es,
      ps: .scores.ps, ns: .scores.ns, retained: .retention.retained}'
