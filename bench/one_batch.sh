#!/usr/bin/env bash
# one_batch.sh: the scores of one batch of N edits on a world, for the
# one-off comparisons quoted in docs and notes (worlds, layers, lambda).
#
#   bash bench/one_batch.sh WORLD N [stamp commit options...]
#
# A fresh store on WORLD (stamp init --hparams $HPARAMS when set; or a
# copy of $BASE_STORE, a store on WORLD with its statistics and nothing
# queued, as bench/run.sh passes), the
# first fact of each of the first N subjects of WORLD/facts.csv queued, `stamp commit --json` with the options, then
# `stamp eval --json --sample 300` ($SAMPLE). Prints one line: ES, PS, NS,
# retention, target vectors that reach their answer (z_likely), the share
# of the target shift the update wrote and each layer's mean leverage
# (docs/commit-record.md), z time.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
STAMP=${STAMP:-$here/build/stamp}
[ $# -ge 2 ] || { echo "usage: one_batch.sh WORLD N [commit options...]" >&2; exit 2; }
world=$1; n=$2; shift 2
[ -f "$world/facts.csv" ] || { echo "one_batch.sh: no $world/facts.csv" >&2; exit 1; }
work=$(mktemp -d /tmp/stamp-one-batch.XXXXXX)
trap 'rm -rf "$work"' EXIT
export STAMP_STORE=$work/store
init_opts=()
[ -z "${HPARAMS:-}" ] || init_opts=(--hparams "$HPARAMS")
if [ -n "${BASE_STORE:-}" ]; then
  cp -a "$BASE_STORE" "$STAMP_STORE"
else
  "$STAMP" init --model "$world" "${init_opts[@]}" > /dev/null
fi
awk -v from=0 -v count="$n" -f "$here/bench/subject_facts.awk" \
  "$world/facts.csv" > "$work/batch.csv"
"$STAMP" import "$work/batch.csv" > /dev/null
"$STAMP" commit --json "$@" > "$work/commit.json"
"$STAMP" eval --json --sample "${SAMPLE:-300}" > "$work/eval.json"
jq -n -c --arg world "$(basename "$world")" --argjson n "$n" \
  --slurpfile c "$work/commit.json" --slurpfile e "$work/eval.json" \
  -f "$here/bench/size_row.jq"
