#!/usr/bin/env bash
# threads_scan.sh: builds bench/threads_scan.c against BUILD's libstamp.a
# (default build) and runs it: the time the automatic thread count costs
# a command at its start, its fast look against the naive full /proc
# scan, medians of REPS (default 21), with the load average before and
# after. Writes nothing else.
#
#   bash bench/threads_scan.sh [REPS]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD:-$here/build}
cd "$here"
make --no-print-directory BUILD="$build" "$build/libstamp.a" >/dev/null
mkdir -p "$build/bench"
cc -O2 -std=c11 -fopenmp -D_GNU_SOURCE -Ilib -o "$build/bench/threads_scan" \
  bench/threads_scan.c "$build/libstamp.a" -lopenblas -ljansson -lm
echo "# bench/threads_scan.sh $(date -u +%Y-%m-%dT%H:%M:%SZ), nproc $(nproc), autogroup $(cat /proc/sys/kernel/sched_autogroup_enabled 2>/dev/null || echo unknown), $(ls /proc | grep -c '^[0-9]') processes; load average $(cut -d' ' -f1-3 /proc/loadavg)"
"$build/bench/threads_scan" "$@"
echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
