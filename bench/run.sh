#!/usr/bin/env bash
# bench/run.sh: `make bench`. On the benchmark world (build/world-cf,
# built from CounterFact records by bench/world.sh when missing):
#   (a) one batch of BATCH edits (default 1000; the first fact of each of
#       the first BATCH subjects): phase times, edits per
#       second, estimated GFLOP/s of the z phase against the measured sgemm
#       peak, peak memory, diff bytes, ES/PS/NS and retention; the edits
#       not taken, and how many of them a free target vector can reach;
#   (b) the 1 vs 2 thread speed-up of commit on a smaller batch
#       (SCALE_BATCH edits, THREAD_PAIRS alternating pairs of runs,
#       default 3; medians);
#   (c) NIGHTS sequential nightly batches of NIGHTLY edits (default 10 x
#       100), scores after each, with an SVG plot;
#   (d) how the scores fall with the batch size (SIZES, default 50 100 200
#       500 1000; one fresh store and one commit each, bench/one_batch.sh;
#       the size BATCH is the batch of (a), not committed twice);
#   (f) a Llama-3.2-1B-shaped model (bench/llama_1b.sh): time and peak
#       memory of init, predict, stats, a commit of 10 edits, revert and
#       export (LLAMA_1B=0 skips it);
#   (h) GPT-2 medium- and XL-shaped models (bench/gpt2_sizes.sh): time,
#       peak memory and store size of init, predict, stats, a commit,
#       diff, revert, export and gc (GPT2_SIZES=medium or =xl for one,
#       GPT2_SIZES=0 skips it);
#   (g) the batch of (a) on a Llama-shaped world of the same size and
#       data (RMSNorm, RoPE, GQA, SwiGLU) next to this world's
#       (bench/world_llama.sh, which builds build/world-cf-llama when
#       missing: over an hour; BENCH_LLAMA_WORLD=0 skips it);
#   (e) the batch of (a) again with other settings, one fresh store each
#       (VARIANTS: `stamp commit` options, ';' between settings; default
#       the layer-by-layer solve at the lambda that writes as much, which
#       bench/hparams.json's joint solve replaced on 2026-12-04,
#       docs/world-models.md "Solving the layers together"; VARIANTS=
#       for none).
# The key statistics are computed once, in (a), and every later store
# starts as a copy of that one (they take minutes on a wide world).
# Writes bench/results/<date>.json and .md (bench/report.sh; and .svg;
# BENCH_OUT=DIR writes them to DIR instead). Numbers are single
# runs on a shared machine, the thread speed-up aside: compare ratios
# measured in one run.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
STAMP=${STAMP:-$here/build/stamp}
WORLD=${WORLD:-$here/build/world-cf}
BATCH=${BATCH:-1000}
NIGHTS=${NIGHTS:-10}
NIGHTLY=${NIGHTLY:-100}
SCALE_BATCH=${SCALE_BATCH:-200}
THREAD_PAIRS=${THREAD_PAIRS:-3}
[[ $THREAD_PAIRS =~ ^[1-9][0-9]*$ ]] ||
  { echo "bench: THREAD_PAIRS must be a whole number >= 1, not '$THREAD_PAIRS'" >&2; exit 2; }
SIZES=${SIZES:-50 100 200 500 1000}
RETENTION_SAMPLE=${RETENTION_SAMPLE:-500}
VARIANTS=${VARIANTS-"--set joint_layers=0 --set mom2_update_weight=10000"}
# the editing hyperparameters of every bench store (stamp init --hparams;
# HPARAMS= for the built-in defaults): bench/hparams.json holds the ones
# measured best on the benchmark world (docs/world-models.md)
HPARAMS=${HPARAMS-$here/bench/hparams.json}
init_opts=()
[ -z "$HPARAMS" ] || init_opts=(--hparams "$HPARAMS")
export HPARAMS
date_tag=$(date -u +%Y-%m-%d)
out_dir=${BENCH_OUT:-$here/bench/results}
mkdir -p "$out_dir"
json_out=$out_dir/$date_tag.json
md_out=$out_dir/$date_tag.md
svg_out=$out_dir/$date_tag.svg
work=$(mktemp -d /tmp/stamp-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT

# data records FIRST..FIRST+COUNT-1 of facts.csv (quoted fields may hold
# newlines: a record ends at a newline outside quotes), with the header
take() { # take FIRST COUNT FILE
  awk -v first="$1" -v count="$2" '
    { rec = (rec == "" ? $0 : rec "\n" $0); q += gsub(/"/, "\"") }
    q % 2 == 0 { if (n == 0 || (n >= first && n < first + count)) print rec;
                 n++; rec = ""; q = 0 }' "$WORLD/facts.csv" > "$3"
}
count_records() {
  awk '{ q += gsub(/"/, "\"") } q % 2 == 0 { n++; q = 0 } END { print n - 1 }' "$1"
}
[ -f "$WORLD/model.safetensors" ] || bash bench/world.sh
# a default world left by an older recipe is measured, but named: the
# figures would not be comparable with docs/quality.md's. Checked: the MLP
# width, the phrasings per fact and the held-out paraphrases.
recipe_value() { # recipe_value OPTION: its value in bench/world.sh, 0 if absent
  grep -o -- "--$1 [0-9]*" bench/world.sh | awk '{ print $2 }' | grep . || echo 0
}
if [ "$WORLD" = "$here/build/world-cf" ] && [ -f "$WORLD/world.json" ]; then
  for check in "ff d_ff .model.n_inner" \
               "phrasings phrasings .data.phrasings_per_fact" \
               "hold-out-paraphrases held-out-paraphrases .data.paraphrases_held_out"; do
    read -r option what field <<< "$check"
    want=$(recipe_value "$option")
    have=$(jq "$field // 0" "$WORLD/world.json" 2>/dev/null || echo "?")
    if [ "$have" != "$want" ]; then
      echo "bench: warning: $WORLD has $what $have, bench/world.sh builds $want; remove it and run 'make world' to measure the benchmark world" >&2
    fi
  done
fi
n_facts=$(count_records "$WORLD/facts.csv")
echo "bench: world $WORLD ($n_facts facts), machine $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"

# sgemm peak of this machine (1 and 2 threads)
peak1=$(OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 build/tools/bench_sgemm 2048)
peak2=$(OMP_NUM_THREADS=2 OPENBLAS_NUM_THREADS=2 build/tools/bench_sgemm 2048)
blas_core=$(build/tools/bench_sgemm --core)
echo "bench: sgemm peak ${peak1} GFLOP/s (1 thread), ${peak2} GFLOP/s (2 threads), OpenBLAS kernels $blas_core"

timed() { # timed NAME CMD...: runs CMD, keeps its stdout in $work/NAME.out
  local name=$1; shift
  /usr/bin/time -f '%e %M' -o "$work/$name.time" "$@" > "$work/$name.out"
}

# (a) one batch
export STAMP_STORE=$work/batch
"$STAMP" init --model "$WORLD" "${init_opts[@]}" > /dev/null
timed stats "$STAMP" stats --corpus "$WORLD/corpus.txt"
cp -a "$work/batch" "$work/base" # the store with statistics, nothing queued
# the first fact of each of the first BATCH subjects (one edit a subject,
# as CounterFact has it; the batch-size table's rows are chosen alike)
awk -v from=0 -v count="$BATCH" -f bench/subject_facts.awk "$WORLD/facts.csv" > "$work/batch.csv"
timed import "$STAMP" import "$work/batch.csv"
timed commit "$STAMP" commit --threads 2 --json -m "bench batch of $BATCH"
timed eval "$STAMP" eval --json --facts --sample "$RETENTION_SAMPLE"
mv "$work/eval.out" "$work/eval-facts.json" # every fact: kept out of the results
jq 'del(.facts, .retention.lost)' "$work/eval-facts.json" > "$work/eval.out"
read -r commit_s commit_kb < "$work/commit.time"
read -r stats_s stats_kb < "$work/stats.time"

# FLOPs of the z phase: the commit counts them from the shapes of the
# passes it ran (ztarget.c, zgroup_base_flops and zgroup_step_flops: the
# unedited pass, then each step's forward and input-gradient backward
# over the positions from the subject's last token on of the facts still
# stepping, in the blocks above the top edited layer, and the head at
# target positions only).
zflops=$(jq '.z_gflop * 1e9' "$work/commit.out")
z_s=$(jq '.timings.z' "$work/commit.out")

# The edits not taken (ES), and whether a target vector at the subject's
# last token can reach them at all: a free one (one round, 200 z steps,
# clamp 10, no weight decay) on a store that queues only them. Those it
# cannot make likely no update of the edited layers will write
# (docs/world-models.md, "Which edits do not take").
not_taken=$(jq '[.facts[] | select(.outcome.es | not)] | length' "$work/eval-facts.json")
free_z=null
if [ "$not_taken" -gt 0 ]; then
  jq -r '["subject", "prompt", "target_new", "target_true"],
         (.facts[] | select(.outcome.es | not) |
          [.subject, .prompt, .target_new, .target_true]) | @csv' \
    "$work/eval-facts.json" > "$work/not-taken.csv"
  export STAMP_STORE=$work/reach
  cp -a "$work/base" "$STAMP_STORE"
  "$STAMP" import "$work/not-taken.csv" > /dev/null
  "$STAMP" commit --threads 2 --no-scores --json --set rounds=1 \
    --set v_num_grad_steps=200 --set clamp_norm_factor=10 \
    --set v_weight_decay=0 > "$work/reach.json"
  free_z=$(jq -c '{likely: .z_likely, nll_mean: .z_nll_mean}' "$work/reach.json")
fi
echo "bench: $not_taken edits not taken; a free target vector: $free_z"

# (b) 1 vs 2 threads, same batch, fresh stores (copies of the base), in
# alternating pairs so that a noisy host shows as spread: the medians
take 1 "$SCALE_BATCH" "$work/scale.csv"
: > "$work/scale.runs"
for pair in $(seq "$THREAD_PAIRS"); do
  for th in 1 2; do
    export STAMP_STORE=$work/threads
    rm -rf "$STAMP_STORE" && cp -a "$work/base" "$STAMP_STORE"
    "$STAMP" import "$work/scale.csv" > /dev/null
    timed scale "$STAMP" commit --threads "$th" --no-scores --json
    echo "$th $(jq -r '"\(.timings.z) \(.timings.total)"' "$work/scale.out")" >> "$work/scale.runs"
  done
done
scale_median() { # scale_median THREADS COLUMN
  awk -v th="$1" -v c="$2" '$1 == th { print $c }' "$work/scale.runs" | sort -g |
    awk -f bench/median.awk
}
z1=$(scale_median 1 2); z2=$(scale_median 2 2)
t1=$(scale_median 1 3); t2=$(scale_median 2 3)
scale_runs=$(awk '{ printf "%s[%s,%s,%s]", (NR > 1 ? "," : ""), $1, $2, $3 }
                  END { print "" }' "$work/scale.runs")
BENCH_OUT=$out_dir PAIRS=$THREAD_PAIRS AUTO=1 bash bench/threads_busy.sh # (b) idle and busy, old and new waiting, 1, 2 and stamp's default (automatic) threads, on world-tiny
# (f) a model of real size: Llama 3.2 1B's shape, BF16 (LLAMA_1B=0 skips it)
[ "${LLAMA_1B:-1}" = 0 ] || BENCH_OUT=$out_dir STAMP=$STAMP bash bench/llama_1b.sh
# (h) GPT-2 medium and XL shapes, F32 (GPT2_SIZES=0 skips them)
[ "${GPT2_SIZES:-}" = 0 ] || BENCH_OUT=$out_dir STAMP=$STAMP bash bench/gpt2_sizes.sh
# the batch on a Llama-shaped world of the same size and data against this world (BENCH_LLAMA_WORLD=0 skips)
[ "${BENCH_LLAMA_WORLD:-1}" = 0 ] || BENCH_OUT=$out_dir STAMP=$STAMP WORLD=$WORLD BATCH=$BATCH RETENTION_SAMPLE=$RETENTION_SAMPLE bash bench/world_llama.sh || echo "world_llama: failed"
# MPI: stats and commit on 1 rank against 2 ranks of 1 thread (BENCH_MPI=0 skips it)
[ "${BENCH_MPI:-1}" = 0 ] || BENCH_OUT=$out_dir STAMP=$STAMP WORLD=$WORLD bash bench/mpi.sh ||
  echo "bench/mpi.sh failed"
# damage: byte flips, page headers and truncations of a small store (BENCH_DAMAGE=0 skips)
[ "${BENCH_DAMAGE:-1}" = 0 ] || STAMP=$STAMP bash bench/bench_damage.sh || echo "bench_damage: failures (bench/results/damage-*.txt)"

# (c) sequential nightly batches
export STAMP_STORE=$work/nightly
cp -a "$work/base" "$STAMP_STORE"
echo '[]' > "$work/nights.json"
for night in $(seq 1 "$NIGHTS"); do
  take $(((night - 1) * NIGHTLY + 1)) "$NIGHTLY" "$work/night.csv"
  "$STAMP" import "$work/night.csv" > /dev/null
  "$STAMP" commit --threads 2 --no-scores --json -m "night $night" > "$work/night-commit.json"
  "$STAMP" eval --json --sample "$RETENTION_SAMPLE" > "$work/night-eval.json"
  jq --argjson c "$(cat "$work/night-commit.json")" --argjson e "$(cat "$work/night-eval.json")" \
     --argjson n "$night" '. + [{night: $n, edits: ($n * '"$NIGHTLY"'),
       es: $e.scores.es, ps: $e.scores.ps, ns: $e.scores.ns,
       retention: $e.retention.retained, diff_bytes: $c.diff_bytes,
       commit_seconds: $c.timings.total}]' "$work/nights.json" > "$work/nights.tmp"
  mv "$work/nights.tmp" "$work/nights.json"
  echo "bench: night $night: $(jq -c '.[-1]' "$work/nights.json")"
done

# (d) batch size against what the layers' keys can hold
echo '[]' > "$work/sizes.json"
for n in $SIZES; do
  if [ "$n" = "$BATCH" ]; then # the batch of (a): the same commit, not made twice
    jq -n -c --arg world "$(basename "$WORLD")" --argjson n "$n" \
      --slurpfile c "$work/commit.out" --slurpfile e "$work/eval.out" \
      -f bench/size_row.jq > "$work/size.json"
  else
    BASE_STORE=$work/base SAMPLE=$RETENTION_SAMPLE bash bench/one_batch.sh "$WORLD" "$n" --threads 2 > "$work/size.json"
  fi
  jq --slurpfile s "$work/size.json" '. + $s' "$work/sizes.json" > "$work/sizes.tmp"
  mv "$work/sizes.tmp" "$work/sizes.json"
  echo "bench: batch of $n: $(cat "$work/size.json")"
done

# (e) the same batch with other settings
echo '[]' > "$work/variants.json"
IFS=';' read -ra variant_list <<< "$VARIANTS"
for v in "${variant_list[@]}"; do
  read -ra opts <<< "$v"
  [ "${#opts[@]}" -gt 0 ] || continue
  BASE_STORE=$work/base SAMPLE=$RETENTION_SAMPLE bash bench/one_batch.sh "$WORLD" "$BATCH" --threads 2 "${opts[@]}" |
    jq -c --arg options "${opts[*]}" '. + {options: $options}' > "$work/variant.json"
  jq --slurpfile s "$work/variant.json" '. + $s' "$work/variants.json" > "$work/variants.tmp"
  mv "$work/variants.tmp" "$work/variants.json"
  echo "bench: batch of $BATCH with ${opts[*]}: $(cat "$work/variant.json")"
done

jq -n --arg date "$date_tag" --arg cpu "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')" \
  --argjson cores "$(nproc)" --arg blas_core "$blas_core" --argjson world "$(jq -c . "$WORLD/world.json" 2>/dev/null || echo null)" \
  --argjson peak1 "$peak1" --argjson peak2 "$peak2" \
  --argjson commit "$(cat "$work/commit.out")" --argjson eval "$(cat "$work/eval.out")" \
  --argjson commit_s "$commit_s" --argjson commit_kb "$commit_kb" \
  --argjson stats_s "$stats_s" --argjson batch "$BATCH" \
  --argjson not_taken "$not_taken" --argjson free_z "$free_z" \
  --argjson zflops "$zflops" --argjson z_s "$z_s" \
  --argjson z1 "$z1" --argjson z2 "$z2" --argjson t1 "$t1" --argjson t2 "$t2" \
  --argjson scale_batch "$SCALE_BATCH" --argjson nights "$(cat "$work/nights.json")" \
  --argjson pairs "$THREAD_PAIRS" --argjson runs "[$scale_runs]" \
  --argjson sizes "$(cat "$work/sizes.json")" \
  --argjson variants "$(cat "$work/variants.json")" '{
    date: $date, machine: {cpu: $cpu, cores: $cores, openblas_kernels: $blas_core}, world: $world,
    sgemm_peak_gflops: {threads1: $peak1, threads2: $peak2},
    batch: {edits: $batch, selection: "The first fact of each of the first \($batch) subjects", wall_seconds: $commit_s, peak_rss_mb: ($commit_kb / 1024),
            stats_seconds: $stats_s, timings: $commit.timings,
            edits_per_second: ($batch / $commit.timings.total),
            z_gflops: ($zflops / 1e9 / $z_s),
            z_share_of_peak: (($zflops / 1e9 / $z_s) / $peak2),
            diff_bytes: $commit.diff_bytes, hparams: $commit.hparams,
            z_likely: $commit.z_likely, z_nll_mean: $commit.z_nll_mean,
            z_steps_mean: $commit.z_steps_mean, z_gflop: $commit.z_gflop,
            shift_written: $commit.shift_written,
            rounds_z_likely: [$commit.rounds[]?.z_likely],
            rounds_stopped: $commit.rounds_stopped,
            leverage: [$commit.layers[] | {layer, leverage}],
            scores_after_commit: $commit.scores.after, eval: $eval,
            not_taken: {edits: $not_taken, free_z: $free_z}},
    threads: {edits: $scale_batch, pairs: $pairs, runs: $runs,
              z_seconds_1: $z1, z_seconds_2: $z2,
              z_speedup: ($z1 / $z2), total_seconds_1: $t1, total_seconds_2: $t2,
              total_speedup: ($t1 / $t2)},
    nightly: $nights, batch_sizes: $sizes, variants: $variants}' > "$json_out"

# the plot: ES, PS, NS and retention after each night
jq -r '.nightly[] | [.night, .es, .ps, .ns, (.retention // 0)] | @tsv' "$json_out" |
awk -v nights="$NIGHTS" 'BEGIN {
  W = 640; H = 360; ml = 50; mr = 120; mt = 20; mb = 40;
  split("es ps ns retention", name, " "); split("#1f77b4 #2ca02c #d62728 #9467bd", col, " ");
  printf "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" font-family=\"sans-serif\" font-size=\"12\">\n", W, H;
  printf "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n";
  for (y = 0; y <= 100; y += 20) {
    py = mt + (H - mt - mb) * (1 - y / 100);
    printf "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#ddd\"/><text x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%d</text>\n", ml, py, W - mr, py, ml - 6, py + 4, y;
  }
  printf "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">nightly batch</text>\n", (ml + W - mr) / 2, H - 6;
}
{ n++; for (k = 1; k <= 4; k++) v[k, n] = $(k + 1); night[n] = $1 }
END {
  for (k = 1; k <= 4; k++) {
    pts = "";
    for (i = 1; i <= n; i++) {
      px = ml + (W - ml - mr) * (nights > 1 ? (night[i] - 1) / (nights - 1) : 0.5);
      py = mt + (H - mt - mb) * (1 - v[k, i] / 100);
      pts = pts sprintf("%.1f,%.1f ", px, py);
      printf "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"/>\n", px, py, col[k];
    }
    printf "<polyline points=\"%s\" fill=\"none\" stroke=\"%s\" stroke-width=\"2\"/>\n", pts, col[k];
    printf "<text x=\"%d\" y=\"%d\" fill=\"%s\">%s</text>\n", W - mr + 10, mt + 20 * k, col[k], name[k];
  }
  for (i = 1; i <= n; i++) {
    px = ml + (W - ml - mr) * (nights > 1 ? (night[i] - 1) / (nights - 1) : 0.5);
    printf "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%d</text>\n", px, H - mb + 16, night[i];
  }
  print "</svg>";
}' > "$svg_out"

bash "$here/bench/report.sh" "$json_out" > "$md_out"
echo "bench: wrote $json_out, $md_out, $svg_out"
cat "$md_out"
