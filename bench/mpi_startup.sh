#!/usr/bin/env bash
# bench/mpi_startup.sh: what a stamp command pays to start, and what of it
# is MPI's. Times each of these RUNS times (default 30), round robin so
# that a noisy host shows as spread, and prints the medians in
# milliseconds with the load average (also to $BENCH_OUT, default /tmp,
# mpi-startup-DATE.txt):
#   version:      `$STAMP --version` as a user runs it: it executes itself
#                 once more to set OMP_WAIT_POLICY and the OpenBLAS kernels
#                 (lib/base/threads.h), so it loads its libraries twice;
#   version-once: the same with those variables set: one execution;
#   nompi-version, nompi-version-once: the same for $NOMPI_STAMP, a build
#                 without MPI (`make BUILD=build-nompi MPI_LIBS=`), when
#                 given: the difference is what linking libmpi costs;
#   status:       `stamp status --help` (a command: it passes the point
#                 where MPI starts under mpirun, dist_init);
#   status-mpi:   the same with --mpi: MPI_Init as a singleton;
#   mpirun-true:  `mpirun -np 1 /bin/true`, mpirun alone;
#   mpirun-1, mpirun-2: `mpirun -np 1|2 stamp status --help`.
# (A command that fails under mpirun costs 2 s more: mpirun's abort.)
#   NOMPI_STAMP=build-nompi/stamp RUNS=30 bash bench/mpi_startup.sh
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
STAMP=${STAMP:-$here/build/stamp}
NOMPI_STAMP=${NOMPI_STAMP:-}
RUNS=${RUNS:-30}
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || { echo "mpi_startup.sh: RUNS must be a whole number >= 1" >&2; exit 2; }
out_dir=${BENCH_OUT:-/tmp}
mkdir -p "$out_dir"
result=$out_dir/mpi-startup-$(date -u +%Y%m%d-%H%M%S).txt
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
unset OMP_WAIT_POLICY GOMP_SPINCOUNT OPENBLAS_CORETYPE
core=$("$STAMP" --version | sed -n 's/^OpenBLAS kernels: //p')
once=(env OMP_WAIT_POLICY=PASSIVE OPENBLAS_CORETYPE="$core")
work=$(mktemp -d /tmp/stamp-mpi-startup.XXXXXX)
trap 'rm -rf "$work"' EXIT

kinds=(version version-once)
[ -z "$NOMPI_STAMP" ] || kinds+=(nompi-version nompi-version-once)
kinds+=(status status-mpi)
if command -v mpirun > /dev/null; then kinds+=(mpirun-true mpirun-1 mpirun-2); fi
cmd() { # the command line of a kind
  case $1 in
    version) echo "$STAMP" --version ;;
    version-once) echo "${once[@]}" "$STAMP" --version ;;
    nompi-version) echo "$NOMPI_STAMP" --version ;;
    nompi-version-once) echo "${once[@]}" "$NOMPI_STAMP" --version ;;
    status) echo "${once[@]}" "$STAMP" status --help ;;
    status-mpi) echo "${once[@]}" "$STAMP" --mpi status --help ;;
    mpirun-true) echo mpirun --oversubscribe -np 1 /bin/true ;;
    mpirun-1) echo "${once[@]}" mpirun --oversubscribe -np 1 "$STAMP" status --help ;;
    mpirun-2) echo "${once[@]}" mpirun --oversubscribe -np 2 "$STAMP" status --help ;;
  esac
}
{
  echo "# bench/mpi_startup.sh $(date -u +%Y-%m-%dT%H:%M:%SZ): $RUNS runs of each, round robin, $(nproc) cores; load average at the start $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "# $STAMP: $("$STAMP" --version | tr '\n' ';' | sed 's/;$//; s/;/; /g')"
  [ -z "$NOMPI_STAMP" ] || echo "# $NOMPI_STAMP: $("$NOMPI_STAMP" --version | sed -n 's/^MPI: /MPI: /p')"
} | tee "$result"
for r in $(seq "$RUNS"); do
  for k in "${kinds[@]}"; do
    read -ra c <<< "$(cmd "$k")"
    t0=$(date +%s%N)
    "${c[@]}" > /dev/null 2>&1 || true
    t1=$(date +%s%N)
    echo "$k $(( (t1 - t0) / 1000 ))" >> "$work/runs"
  done
done
med() { awk -v k="$1" '$1 == k { print $2 / 1000 }' "$work/runs" | sort -g | awk -f "$here/bench/median.awk"; }
{
  echo "# load average at the end $(cut -d' ' -f1-3 /proc/loadavg)"
  for k in "${kinds[@]}"; do
    printf '%-12s median %7.1f ms  (%s)\n' "$k" "$(med "$k")" "$(cmd "$k" | sed "s|$here/||g; s|$work/||g")"
  done
} | tee -a "$result"
echo "# results in $result"
