#!/usr/bin/env bash
# run.sh: runs every unit test program (build/tests/*) and every command
# test script (tests/cli/t*.sh), adds up their "N passed, N failed"
# summary lines and prints the total as the last line. Exits 1 when any
# test failed or any program crashed before its summary.
set -u
: "${STAMP:?}" "${BUILD:?}"
export STAMP BUILD
# parsed tokenizer.json files are cached here, not in $HOME (reused by
# later tests and later runs of this build)
export STAMP_CACHE_DIR="$BUILD/cache"
here=$(cd "$(dirname "$0")" && pwd)
total_passed=0; total_failed=0
log=$(mktemp)
run_one() {
  local name=$1; shift
  local start=$SECONDS
  "$@" >"$log" 2>&1; local rc=$?
  local line; line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log" | tail -n 1)
  if [ -z "$line" ]; then
    echo "FAIL $name: no summary line (exit $rc)"; tail -n 20 "$log"
    total_failed=$((total_failed + 1)); return
  fi
  local p f; p=${line%% passed*}; f=${line#*, }; f=${f%% failed*}
  if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
  total_passed=$((total_passed + p)); total_failed=$((total_failed + f))
  printf '%-32s %s (%ds)\n' "$name" "$line" $((SECONDS - start))
  [ "$f" -ne 0 ] && grep -E '^(FAIL|  )' "$log" | head -n 40
}
for t in "$BUILD"/tests/*; do
  [ -f "$t" ] && [ -x "$t" ] && run_one "unit/$(basename "$t")" "$t"
done
for t in "$BUILD"/world/tests/*; do
  [ -f "$t" ] && [ -x "$t" ] && run_one "world/$(basename "$t")" "$t"
done
for t in "$here"/cli/t*.sh; do
  [ -f "$t" ] && run_one "cli/$(basename "$t" .sh)" bash "$t"
done
rm -f "$log"
echo "$total_passed passed, $total_failed failed"
[ "$total_failed" -eq 0 ]
