#!/usr/bin/env bash
# threads_busy.sh: does a second thread help or hurt, on an idle machine
# and on a busy one, with libgomp's old waiting and with stamp's? On the
# tiny world, the commit of a batch of 24 edits (one round; its z phase
# from the commit's --json timings) and the key statistics (stamp stats),
# each with 1 and 2 threads, in alternating pairs (1-2, 2-1, ...) so that
# a noisy host shows as spread; the medians are the figures to quote.
#
#   bash bench/threads_busy.sh [WORLD] [PAIRS]
#
# WORLD defaults to world-tiny beside $STAMP (built with the stamp-world
# there when missing), PAIRS to $PAIRS, else 3.
#   idle: nothing of ours runs beside stamp (other users' processes may:
#         the load average is printed with every table);
#   busy: two CPU-bound processes of this script's own (shell loops at
#         this script's niceness; HOGS=N for another number, e.g. 6 for
#         an overloaded host) hold the cores; they are killed at the end,
#         however the script ends. HOG_SESSION=own starts each in a
#         session of its own (setsid), as another user's process is: with
#         the kernel's autogroup scheduling (sched_autogroup_enabled) a
#         session, not a thread, gets a fair share of the cores, so a
#         second thread of stamp's gains no CPU from such a neighbour;
#         the default, same, keeps them in this script's session.
# Policies (MODES, default "old new"):
#   old:    GOMP_SPINCOUNT=300000, libgomp's own default and so what stamp
#           ran before it chose (a user's setting wins, so this forces it);
#   active: OMP_WAIT_POLICY=ACTIVE (threads spin until work comes);
#   spinN:  GOMP_SPINCOUNT=N (a bounded spin, for comparison);
#   new:    nothing set: stamp's default (lib/base/threads.h).
# The thread count: commit --threads N, stats OMP_NUM_THREADS=N and
# OPENBLAS_NUM_THREADS=N. AUTO=1 adds a third run to each pair with no
# count set: stamp's default, the automatic count (the share of the
# cores the other work running leaves, lib/base/threads.h; the count
# it chose shows in each commit's line), in the table as "default" with
# 1/default and 2/default (above 1: the default is faster); stamp-world's
# default stays all cores. LOADS (default "idle busy") picks the
# loads to run. TRAIN_STEPS=S (default 0: not run) times world
# training too: stamp-world --synthetic tiny --steps S --threads N. Writes every run and the table to
# $BENCH_OUT (default bench/results)/threads-busy-NAME-DATE.txt.
# BATCH=N (default 24) edits instead: one fact group per 16, so 64
# gives each of 2 threads two groups where 24 gives each one.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
STAMP=${STAMP:-$here/build/stamp}
bin=$(cd "$(dirname "$STAMP")" && pwd)
world=${1:-$bin/world-tiny}; pairs=${2:-${PAIRS:-3}}
MODES=${MODES:-old new}
TRAIN_STEPS=${TRAIN_STEPS:-0}
HOGS=${HOGS:-2}
HOG_SESSION=${HOG_SESSION:-same}
AUTO=${AUTO:-0}
LOADS=${LOADS:-idle busy}
BATCH=${BATCH:-24}
[[ $BATCH =~ ^[1-9][0-9]*$ ]] || { echo "threads_busy: BATCH must be a whole number >= 1, not '$BATCH'" >&2; exit 2; }
[[ $HOG_SESSION =~ ^(same|own)$ ]] || { echo "threads_busy.sh: HOG_SESSION must be same or own, not '$HOG_SESSION'" >&2; exit 2; }
[[ $HOGS =~ ^[1-9][0-9]*$ ]] || { echo "threads_busy.sh: HOGS must be a whole number >= 1, not '$HOGS'" >&2; exit 2; }
[[ $TRAIN_STEPS =~ ^[0-9]+$ ]] || { echo "threads_busy.sh: TRAIN_STEPS must be a whole number, not '$TRAIN_STEPS'" >&2; exit 2; }
unset OMP_WAIT_POLICY GOMP_SPINCOUNT # the policies are this script's to set
[[ $pairs =~ ^[1-9][0-9]*$ ]] || { echo "threads_busy.sh: PAIRS must be a whole number >= 1, not '$pairs'" >&2; exit 2; }
for l in $LOADS; do
  [[ $l =~ ^(idle|busy)$ ]] || { echo "threads_busy.sh: LOADS: unknown load '$l' (idle, busy)" >&2; exit 2; }
done
for m in $MODES; do
  [[ $m =~ ^(old|active|new|spin[0-9]+)$ ]] ||
    { echo "threads_busy.sh: unknown mode '$m' (old, active, new, spinN)" >&2; exit 2; }
done
if [ ! -f "$world/facts.csv" ]; then
  [ "$world" = "$bin/world-tiny" ] && [ -x "$bin/stamp-world" ] ||
    { echo "threads_busy.sh: no $world/facts.csv" >&2; exit 1; }
  echo "threads_busy.sh: building $world"
  "$bin/stamp-world" --synthetic tiny --quiet --out "$world"
fi
out_dir=${BENCH_OUT:-$here/bench/results}
mkdir -p "$out_dir"
result="$out_dir/threads-busy-$(basename "$world")-$(date -u +%Y%m%d-%H%M%S).txt"
work=$(mktemp -d /tmp/stamp-threads-busy.XXXXXX)
hogs=()
stop_hogs() {
  local p
  for p in "${hogs[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  hogs=()
}
trap 'stop_hogs; rm -rf "$work"' EXIT
trap 'exit 130' INT TERM
start_hogs() {
  local i
  local session=()
  [ "$HOG_SESSION" = same ] || session=(setsid)
  for i in $(seq "$HOGS"); do "${session[@]}" sh -c 'while :; do :; done' & hogs+=($!); done
  sleep 1 # let the scheduler see them
}
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
mode_env() { # the environment of a policy
  case $1 in
    old) echo GOMP_SPINCOUNT=300000 ;;
    active) echo OMP_WAIT_POLICY=ACTIVE ;;
    new) echo ;;
    spin*) echo "GOMP_SPINCOUNT=${1#spin}" ;;
  esac
}
median() { sort -g | awk -f "$here/bench/median.awk"; }

cpu=$(lscpu 2>/dev/null | sed -n 's/^Model name: *//p' | head -n 1)
[ -n "$cpu" ] || cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')
{
  echo "# bench/threads_busy.sh $(date -u +%Y-%m-%dT%H:%M:%SZ): $(basename "$world"), a batch of $BATCH edits (one round) and stats, $pairs alternating pairs, modes: $MODES, busy: $HOGS CPU-bound processes ($HOG_SESSION session)"
  echo "# machine: $cpu, nproc $(nproc); autogroup scheduling $(cat /proc/sys/kernel/sched_autogroup_enabled 2>/dev/null || echo unknown); load average at the start $(loadavg)"
  echo "# stamp: $("$STAMP" --version | tr '\n' ';' | sed 's/;$//; s/;/; /g')"
} | tee "$result"

# one store with the batch queued (statistics computed), one without
awk -v from=0 -v count="$BATCH" -f "$here/bench/subject_facts.awk" "$world/facts.csv" > "$work/batch.csv"
STAMP_STORE=$work/empty "$STAMP" init --model "$world" > /dev/null
cp -a "$work/empty" "$work/base"
STAMP_STORE=$work/base "$STAMP" stats --corpus "$world/corpus.txt" > /dev/null
STAMP_STORE=$work/base "$STAMP" import "$work/batch.csv" > /dev/null

: > "$work/runs.txt" # load mode threads commit_s z_s commit_cpu_s stats_s train_s
TIMEFORMAT='%3R %3U %3S'
one_run() { # one_run LOAD MODE THREADS (a count, or auto: nothing set, stamp's default)
  local envs; read -ra envs <<< "$(mode_env "$2")"
  local topt=(--threads "$3") tenv=(OMP_NUM_THREADS="$3" OPENBLAS_NUM_THREADS="$3")
  if [ "$3" = auto ]; then topt=(); tenv=(); fi
  rm -rf "$work/run" && cp -a "$work/base" "$work/run"
  local t
  t=$( { time env -u STAMP_THREADS -u OMP_NUM_THREADS -u OPENBLAS_NUM_THREADS "${envs[@]}" "${tenv[@]}" STAMP_STORE="$work/run" "$STAMP" commit "${topt[@]}" \
           --no-scores --json --set rounds=1 > "$work/out.json" 2> "$work/err"; } 2>&1 )
  local commit_s cpu_u cpu_s; read -r commit_s cpu_u cpu_s <<< "$t"
  local z; z=$(jq .timings.z "$work/out.json")
  local label=$3 # auto: with the count it chose for the commit
  [ "$3" != auto ] || label="default=$(jq .threads "$work/out.json")"
  rm -rf "$work/run" && cp -a "$work/empty" "$work/run"
  t=$( { time env -u STAMP_THREADS -u OMP_NUM_THREADS -u OPENBLAS_NUM_THREADS "${envs[@]}" "${tenv[@]}" \
           STAMP_STORE="$work/run" "$STAMP" stats --corpus "$world/corpus.txt" > /dev/null 2> "$work/err"; } 2>&1 )
  local stats_s; read -r stats_s _ <<< "$t"
  local train_s=0
  if [ "$TRAIN_STEPS" -gt 0 ]; then
    t=$( { time env -u STAMP_THREADS -u OMP_NUM_THREADS -u OPENBLAS_NUM_THREADS "${envs[@]}" "${tenv[@]}" "$bin/stamp-world" --synthetic tiny --steps "$TRAIN_STEPS" --goal 2 \
             --no-checkpoint --quiet "${topt[@]}" --out "$work/world" > /dev/null 2> "$work/err"; } 2>&1 )
    read -r train_s _ <<< "$t"
  fi
  local cpu; cpu=$(awk -v u="$cpu_u" -v s="$cpu_s" 'BEGIN { printf "%.3f", u + s }')
  echo "$1 $2 $3 $commit_s $z $cpu $stats_s $train_s" >> "$work/runs.txt"
  printf '%s %-9s %s thread(s), pair %d: commit %s s (z %.3f s, CPU %s s), stats %s s%s; load %s\n' \
    "$1" "$2" "$label" "$pair" "$commit_s" "$z" "$cpu" "$stats_s" \
    "$(if [ "$TRAIN_STEPS" -gt 0 ]; then echo ", training $train_s s"; fi)" "$(loadavg)" | tee -a "$result"
}

for load in $LOADS; do
  if [ "$load" = busy ]; then start_hogs; fi
  echo "# $load: load average $(loadavg)" | tee -a "$result"
  for pair in $(seq "$pairs"); do
    for mode in $MODES; do
      # 1 then 2 in odd pairs, 2 then 1 in even ones: a load that rises
      # or falls through the run does not favour either
      order="1 2"; [ $((pair % 2)) = 1 ] || order="2 1"
      if [ "$AUTO" = 1 ]; then
        order="1 2 auto"; [ $((pair % 2)) = 1 ] || order="auto 2 1"
      fi
      for th in $order; do one_run "$load" "$mode" "$th"; done
    done
  done
  echo "# $load: load average at the end $(loadavg)" | tee -a "$result"
  stop_hogs
done

col() { # col LOAD MODE THREADS COLUMN: the median
  awk -v l="$1" -v m="$2" -v th="$3" -v c="$4" '$1 == l && $2 == m && $3 == th { print $c }' \
    "$work/runs.txt" | median
}
{
  echo
  echo "medians of $pairs alternating pairs (seconds; 1/2 = 1 thread's time over 2 threads': above 1, the second thread helps):"
  printf '%-5s %-10s %-11s %9s %9s %6s' load policy what "1 thread" "2 threads" "1/2"
  if [ "$AUTO" = 1 ]; then printf ' %9s %9s %9s' default "1/default" "2/default"; fi
  echo
  for load in $LOADS; do
    for mode in $MODES; do
      rows=("commit 4" "z 5" "commit-CPU 6" "stats 7")
      if [ "$TRAIN_STEPS" -gt 0 ]; then rows+=("training 8"); fi
      for what in "${rows[@]}"; do
        read -r name c <<< "$what"
        a=$(col "$load" "$mode" 1 "$c"); b=$(col "$load" "$mode" 2 "$c")
        au=0; [ "$AUTO" != 1 ] || au=$(col "$load" "$mode" auto "$c")
        awk -v l="$load" -v m="$mode" -v n="$name" -v a="$a" -v b="$b" -v au="$au" -v auto="$AUTO" 'BEGIN {
          printf "%-5s %-10s %-11s %9.3f %9.3f %5.2fx", l, m, n, a, b, (b > 0 ? a / b : 0)
          if (auto == 1) printf " %9.3f %8.2fx %8.2fx", au, (au > 0 ? a / au : 0), (au > 0 ? b / au : 0)
          printf "\n" }'
      done
    done
  done
  echo "(commit-CPU: user + system seconds of the commit; spinning shows there)"
  if [ "$TRAIN_STEPS" -gt 0 ]; then echo "(training: stamp-world --synthetic tiny, $TRAIN_STEPS steps)"; fi
} | tee -a "$result"
echo "# results in $result"
