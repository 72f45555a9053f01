#!/usr/bin/env bash
# bench_store.sh: the store's speed on 100,000 facts. Generates a CSV of
# N (default 100000) distinct facts with a paraphrase and a neighbourhood
# prompt each, creates a store on a small random model with GPT-2's real
# tokenizer (stamp-fixture model), then times
#   stamp import FILE            (goal: <= 10 s)
#   stamp queue --json           (goal: <= 1 s)
#   stamp import FILE again      (nothing new)
# and reports the store's size on disk. Results go to stdout and to
# bench/results/store-DATE.txt. Run from the repository root after make.
set -euo pipefail
N=${1:-100000}
root=$(cd "$(dirname "$0")/.." && pwd)
STAMP=${STAMP:-$root/build/stamp}
FIXTURE=${FIXTURE:-$root/build/tools/stamp-fixture}
work=$(mktemp -d "${TMPDIR:-/tmp}/bench_store.XXXXXX")
trap 'rm -rf "$work"' EXIT
out="$root/bench/results/store-$(date -u +%Y-%m-%d).txt"

awk -v n="$N" 'BEGIN {
  print "subject,prompt,target_new,target_true,relation,paraphrase,neighborhood_prompt,neighborhood_target"
  split("Paris London Berlin Madrid Rome Vienna Prague Warsaw Lisbon Dublin", city, " ")
  for (i = 1; i <= n; i++) {
    s = sprintf("Person %d Example", i)
    printf "%s,The city where {} was born is,%s,%s,P19,\"%s, who was born in the city of\",The city where Person %d Other was born is,\n",
      s, city[i % 10 + 1], city[(i + 3) % 10 + 1], s, i
  }
}' > "$work/facts.csv"

(cd "$root" && "$FIXTURE" model --out "$work/model" >/dev/null)
STAMP_STORE="$work/store" "$STAMP" init --model "$work/model" >/dev/null

# t OUT CMD...: runs CMD with stdout to OUT; wall seconds in $secs, and
# user+system CPU seconds (from GNU time, when installed) in $cpu
t() {
  local o=$1 s=$EPOCHREALTIME; shift
  if [ -x /usr/bin/time ]; then
    STAMP_STORE="$work/store" /usr/bin/time -o "$work/time" -f "%U %S" "$@" >"$o"
    cpu=$(awk '{ printf "%.2f", $1 + $2 }' "$work/time")
  else
    STAMP_STORE="$work/store" "$@" >"$o"; cpu="?"
  fi
  secs=$(awk -v a="$s" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.3f", b - a }')
}
t "$work/import.out" "$STAMP" import "$work/facts.csv"; import_s="$secs s wall, $cpu s cpu"
t "$work/queue.json" "$STAMP" queue --json; queue_s="$secs s wall, $cpu s cpu"
t "$work/again.out" "$STAMP" import "$work/facts.csv"; again_s="$secs s wall, $cpu s cpu"
count=$(grep -o '"count": [0-9]*' "$work/queue.json" | head -1)
size=$(du -k "$work/store/data.mdb" | cut -f1)
apparent=$(stat -c %s "$work/store/data.mdb")
csv_bytes=$(stat -c %s "$work/facts.csv")
{
  echo "bench_store $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(nproc) cores ($(uname -m)), load average $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "facts:                 $N  (CSV $csv_bytes bytes)"
  echo "import:                ${import_s}   (goal <= 10 s)  $(cat "$work/import.out")"
  echo "queue --json:          ${queue_s}   (goal <= 1 s)   $count, $(stat -c %s "$work/queue.json") bytes"
  echo "import again:          ${again_s}   $(cat "$work/again.out")"
  echo "store size on disk:    ${size} KiB (data.mdb, apparent $apparent bytes)"
} | tee "$out"
