#!/usr/bin/env bash
# bench_crash.sh: tests/cli/t43-crash.sh at length. CRASH_TRIALS
# (default 200) SIGKILLs at pseudo-random moments inside commit, revert,
# reset and import on a world model (default build/world-tiny), seeded by
# CRASH_SEED (default: the time, printed); after each, fsck must pass and
# the store must be exactly in its state before or after the command.
# Prints a line per trial and a summary per scenario; writes everything
# to bench/results/crash-<date>.txt. Failed stores are kept in
# bench/results/crash-<date>-failed/ (CRASH_KEEP). Exit 1 on any failure.
#
#   CRASH_TRIALS=200 CRASH_SEED=N bench/bench_crash.sh [WORLD_DIR]
set -u
here=$(cd "$(dirname "$0")/.." && pwd)
STAMP=${STAMP:-$here/build/stamp}
W=${1:-$here/build/world-tiny}
trials=${CRASH_TRIALS:-200}
seed=${CRASH_SEED:-$(( $(date +%s) % 1000000 ))}
date_tag=$(date -u +%Y%m%d)
out=$here/bench/results/crash-$date_tag.txt
export CRASH_KEEP=${CRASH_KEEP:-$here/bench/results/crash-$date_tag-failed}
mkdir -p "$here/bench/results"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/stamp-bench-crash.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
cp "$STAMP" "$tmp/stamp" || exit 1   # a relink meanwhile must not change it
STAMP=$tmp/stamp
export STAMP STAMP_STORE=$tmp/store
passed=0 failed=0
pass() { passed=$((passed + 1)); echo "ok   $1"; }
fail() { failed=$((failed + 1)); echo "FAIL $1${2:+: $2}"; }
. "$here/tests/cli/crashlib.sh"

{
  echo "# bench_crash $(date -u +%Y-%m-%dT%H:%M:%SZ) world=$W trials=$trials seed=$seed"
  echo "# replay: CRASH_SEED=$seed CRASH_TRIALS=$trials bench/bench_crash.sh $W"
  echo "# machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), stamp $("$STAMP" --version 2>/dev/null)"
  start=$SECONDS
  if crash_setup "$tmp/crash" "$W"; then
    crash_run "$trials" "$seed"
    echo "crash: $CRASH_KILLED of $trials kills landed before the command finished"
  else
    fail "setup of the store to crash"
  fi
  echo "crash: $passed passed, $failed failed in $((SECONDS - start)) s"
} 2>&1 | tee "$out"
echo "bench_crash: wrote $out"
grep -q ', 0 failed in ' "$out"
