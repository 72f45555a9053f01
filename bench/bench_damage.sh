#!/usr/bin/env bash
# bench_damage.sh: tests/cli/t47-damage.sh at length. DAMAGE_FLIPS
# (default 600) random bit flips anywhere in data.mdb and
# DAMAGE_HEADER_ROUNDS (default 4) random bytes of the header of every
# page, plus the truncations and the targeted damage with its repairs,
# on t47's store, seeded by DAMAGE_SEED (default: the time, printed).
# For each trial, fsck reports the damage or every command's output is
# the undamaged store's, and no command dies by a signal. Writes the log
# and the counts to bench/results/damage-<date>.txt; stores of failed
# trials are kept in bench/results/damage-<date>-failed/. Exit 1 on any
# failure.
#
#   DAMAGE_FLIPS=600 DAMAGE_HEADER_ROUNDS=4 bench/bench_damage.sh
set -u
here=$(cd "$(dirname "$0")/.." && pwd)
STAMP=${STAMP:-$here/build/stamp}
BUILD=${BUILD:-$here/build}
seed=${DAMAGE_SEED:-$(( $(date +%s) % 32768 ))}
date_tag=$(date -u +%Y%m%d)
out=$here/bench/results/damage-$date_tag.txt
keep=$here/bench/results/damage-$date_tag-failed
mkdir -p "$keep"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/stamp-bench-damage.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
cp "$STAMP" "$tmp/stamp" || exit 1   # a relink meanwhile must not change it
echo "bench_damage: seed $seed, $(date -u +%FT%TZ)" | tee "$out"
start=$SECONDS
STAMP=$tmp/stamp BUILD=$BUILD DAMAGE_SEED=$seed DAMAGE_KEEP=$keep \
  DAMAGE_FLIPS=${DAMAGE_FLIPS:-600} DAMAGE_HEADER_ROUNDS=${DAMAGE_HEADER_ROUNDS:-4} \
  bash "$here/tests/cli/t47-damage.sh" >> "$out" 2>&1
rc=$?
echo "$(grep '^damage trials' "$out") in $((SECONDS - start)) s" | tee -a "$out"
tail -n 1 "$out"
rmdir "$keep" 2>/dev/null
exit "$rc"
