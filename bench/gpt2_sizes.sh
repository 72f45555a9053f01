#!/usr/bin/env bash
# gpt2_sizes.sh: stamp on GPT-2 models of real size. Random F32 weights
# (stamp-fixture model) at GPT-2 medium's shape (24 layers, width 1024,
# 16 heads, 1,024 positions, vocabulary 50,257: 1.42 GB) and XL's (48
# layers, width 1600, 25 heads: 6.23 GB), GPT-2's own tokenizer files;
# then, each phase timed with its peak RSS and the store's size after it
# (GNU time, du): init, predict, stats over LINES corpus lines (default
# 2000), a commit of EDITS edits (default 100 on medium, 10 on XL; made-up
# subjects, one fact each), diff, revert, export, gc. Writes the tables
# to $BENCH_OUT (default bench/results)/gpt2-sizes-DATE.txt and prints
# them, a row as each phase ends (a run stopped midway keeps the rows
# done).
#
#   bash bench/gpt2_sizes.sh
#     GPT2_SIZES=medium,xl   the shapes, in order (bench/run.sh's SIZES is
#                            its batch sizes, hence the prefix)
#     LINES=2000 EDITS=N     corpus lines; edits (all shapes)
#     PHASES=init,predict,stats,commit,diff,revert,export,gc
#                            the phases run (init always; commit needs
#                            stats, diff and revert need commit)
#     COMMIT_OPTS="..."      more `stamp commit` options; KEEP=1 keeps
#                            the work directory (stores included)
#     THREADS=N              stamp's thread count (default: all cores, set,
#                            so that the key statistics' and the z phase's
#                            GFLOP/s are quoted against sgemm at that count)
# After an export the table's footer has the exported weights' sha256:
# two builds that should edit alike (a memory change) must print the same.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
STAMP=${STAMP:-$here/build/stamp}
BUILD=${BUILD:-$here/build}
GPT2_SIZES=${GPT2_SIZES:-medium,xl}
LINES=${LINES:-2000}
export STAMP_THREADS=${THREADS:-$(nproc)}
PHASES=${PHASES:-init,predict,stats,commit,diff,revert,export,gc}
read -r -a commit_opts <<< "${COMMIT_OPTS:-}"
bench_name=gpt2_sizes
. "$here/bench/real_size.sh"
usage() { echo "gpt2_sizes: $*" >&2; exit 2; }
[[ $LINES =~ ^[1-9][0-9]*$ ]] || usage "LINES must be a whole number >= 1, not '$LINES'"
[ -z "${EDITS:-}" ] || [[ $EDITS =~ ^[1-9][0-9]*$ ]] ||
  usage "EDITS must be a whole number >= 1, not '$EDITS'"
IFS=, read -r -a sizes <<< "$GPT2_SIZES"
for s in "${sizes[@]}"; do
  case $s in medium|xl) ;; *) usage "GPT2_SIZES: '$s' is not a shape (medium, xl)";; esac
done
IFS=, read -r -a phases <<< "$PHASES"
for p in "${phases[@]}"; do
  case $p in init|predict|stats|commit|diff|revert|export|gc) ;;
    *) usage "PHASES: '$p' is not a phase (init, predict, stats, commit, diff, revert, export, gc)";; esac
done
runs() { [[ ",$PHASES," == *",$1,"* ]]; }
! runs commit || runs stats || usage "PHASES: commit needs stats"
{ ! runs diff && ! runs revert; } || runs commit || usage "PHASES: diff and revert need commit"

out_dir=${BENCH_OUT:-$here/bench/results}
mkdir -p "$out_dir"
result="$out_dir/gpt2-sizes-$(date -u +%Y%m%d-%H%M%S).txt"
work=$(mktemp -d /tmp/stamp-gpt2sizes.XXXXXX)
[ "${KEEP:-0}" = 1 ] || trap 'rm -rf "$work"' EXIT
real_corpus "$LINES" "$work/corpus.txt"

# N facts (header included) on made-up subjects, one each, all distinct
facts() { # facts N FILE
  awk -v n="$1" 'BEGIN {
    split("Ba Ko Ri Ze Mu Da Fe Lo Ni Su", a, " "); split("ran vel dor mik sat pol", b, " ");
    split("chef nurse pilot farmer lawyer dentist", job, " ");
    print "subject,prompt,target_new,target_true"
    for (i = 0; i < n; i++)
      printf "%s%s %s%s,{} works as a, %s, %s\n", a[1 + i % 10], b[1 + int(i / 10) % 6],
        a[1 + int(i / 60) % 10], b[1 + i % 6], job[1 + i % 6], job[1 + (i + 1) % 6] }' > "$2"
}

# the store's size on disk, MiB
store_mib() { echo $(( $(du -sb "$STAMP_STORE" | cut -f1) / 1048576 )); }
phase() { # phase NAME CMD...: real_phase and the store's size after it, a row on stdout
  real_phase "$@"
  rows[${#rows[@]}-1]+=" $(store_mib) |"
  echo "${rows[${#rows[@]}-1]}"
  echo "$bench_name: store $(store_mib) MiB after $1" >&2
}

one_size() { # one_size medium|xl: prints its table, a row at a time
  local size=$1 L C H edits
  case $size in
    medium) L=24 C=1024 H=16 edits=100 ;;
    xl) L=48 C=1600 H=25 edits=10 ;;
  esac
  edits=${EDITS:-$edits}
  local model=$work/$size
  export STAMP_STORE=$work/store-$size
  rows=()
  echo "GPT-2 $size's shape ($L layers, width $C, $H heads, 1,024 positions,"
  echo "vocabulary 50,257). Load average before: $(real_load)."
  echo
  echo "| phase | seconds | peak RSS MiB | store MiB after |"
  echo "|---|---|---|---|"
  real_phase "make the model (stamp-fixture, not stamp)" \
    "$BUILD/tools/stamp-fixture" model --out "$model" --layers "$L" --embd "$C" \
    --heads "$H" --positions 1024 --seed 7 --vocab "$here/tests/data/gpt2-vocab"
  echo "${rows[${#rows[@]}-1]} - |"
  local weights
  weights=$(stat -c %s "$model/model.safetensors")
  phase init "$STAMP" init --model "$model"
  ! runs predict || phase predict "$STAMP" predict "The capital of France is"
  local stats_s=0
  if runs stats; then
    phase "stats ($LINES lines)" "$STAMP" stats --corpus "$work/corpus.txt"
    read -r stats_s _ < "$work/time"
  fi
  if runs commit; then
    facts "$edits" "$work/facts-$size.csv"
    "$STAMP" import "$work/facts-$size.csv" > /dev/null
    phase "commit ($edits edits)" "$STAMP" commit -m "the edits" --json "${commit_opts[@]}"
  fi
  ! runs diff || phase diff "$STAMP" diff
  ! runs revert || phase revert "$STAMP" revert HEAD
  ! runs export || phase export "$STAMP" export "$work/export-$size"
  ! runs gc || phase gc "$STAMP" gc
  echo
  echo "Weights $((weights / 1048576)) MiB F32; load average after: $(real_load)."
  ! runs export ||
    echo "Exported model.safetensors sha256: $(sha256sum < "$work/export-$size/model.safetensors" | cut -c1-16)."
  if runs commit; then
    echo
    jq -r '"commit: layers \(.hparams.layers); seconds: \(.timings | del(.rounds) | to_entries | map("\(.key) \(.value * 10 | round / 10)") | join(", ")); diff \(.diff_bytes) bytes"' \
      "$work/commit ($edits edits).out" 2>/dev/null || true
    real_rates "$model" "$stats_s" "$work/commit ($edits edits).out" "$STAMP_THREADS"
  fi
  echo
  [ "${KEEP:-0}" = 1 ] ||
    rm -rf "$model" "$STAMP_STORE" "$work/export-$size" # the disk for the next
}

{
  echo "stamp on GPT-2 medium- and XL-shaped models, $(date -u +%Y-%m-%d)"
  echo
  echo "Machine: $(real_machine). Corpus: $LINES lines; phases: $PHASES."
  echo
} > "$result"
for s in "${sizes[@]}"; do one_size "$s" >> "$result"; done
cat "$result"
echo "gpt2_sizes: wrote $result" >&2
