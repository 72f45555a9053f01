# real_size.sh: helpers of the real-size benchmarks (bench/llama_1b.sh,
# bench/gpt2_sizes.sh), sourced, not run:
#   real_corpus N FILE    N lines of plain English (made-up sentences from
#                         a word list, the same for a given N)
#   real_phase NAME CMD...
#                         runs CMD with its stdout in $work/NAME.out and
#                         stderr in $work/NAME.err, timed by GNU time; adds
#                         "| NAME | seconds | peak RSS MiB |" to the array
#                         rows; on failure prints the end of stderr and
#                         exits. Needs $work and $bench_name (for messages).
#   real_machine          "CPU, N cores; load average before: a b c"
#   real_load             the load averages now: "a b c"
#   real_rates MODEL STATS_SECONDS COMMIT_JSON THREADS
#                         the key statistics' and the target vectors' GFLOP/s
#                         against this machine's sgemm at THREADS threads
#                         (needs $STAMP, $BUILD and the store in $STAMP_STORE)
real_corpus() {
  awk -v n="$1" 'BEGIN { srand(11);
    split("the a city river company team book film song country people year world music city history war school church family village", nouns, " ");
    split("was is became had found made known built written played", verbs, " ");
    split("in of by on for with from after during near", preps, " ");
    for (i = 0; i < n; i++) {
      line = "The " nouns[1 + int(rand() * 20)];
      for (j = 0; j < 4; j++)
        line = line " " verbs[1 + int(rand() * 10)] " " preps[1 + int(rand() * 10)] " the " nouns[1 + int(rand() * 20)];
      print line "." } }' > "$2"
}

real_load() { cut -d' ' -f1-3 /proc/loadavg; }

real_machine() {
  echo "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) cores; load average before: $(real_load)"
}

real_phase() {
  local name=$1; shift
  [ -x /usr/bin/time ] || { echo "$bench_name: needs GNU time (/usr/bin/time; apt-get install time)" >&2; exit 2; }
  /usr/bin/time -f "%e %M" -o "$work/time" "$@" > "$work/$name.out" 2> "$work/$name.err" ||
    { echo "$bench_name: $name failed:" >&2; tail -5 "$work/$name.err" >&2; exit 1; }
  local secs kb
  read -r secs kb < "$work/time"
  rows+=("$(printf '| %s | %s | %d |' "$name" "$secs" $((kb / 1024)))")
  echo "$bench_name: $name ${secs} s, peak RSS $((kb / 1024)) MiB (load $(real_load))" >&2
}

# FLOPs of one block at one token, and d_model, d_ff, from config.json
# (the formula of lib/model/lm.c, lm_flops: matrices, a multiply-add 2)
real_shape() {
  jq -r 'if .n_embd then
           (.n_embd) as $c | ((.n_inner // (4 * $c))) as $f |
           "\(2 * $c * (4 * $c + 2 * $f)) \($c) \($f)"
         else
           (.hidden_size) as $c | (.intermediate_size) as $f |
           (.num_attention_heads) as $h | (.head_dim // ($c / $h)) as $d |
           (.num_key_value_heads // $h) as $kv |
           "\(2 * $c * (2 * $h * $d + 2 * $kv * $d + 3 * $f)) \($c) \($f)"
         end' "$1/config.json"
}

# The statistics' FLOPs: every corpus token through the blocks up to the
# highest layer with statistics, attention's reads (4 x d_model a position
# read, sequences taken at their mean length), and each layer's Gram
# update (ssyrk: d_ff^2 a key); GFLOP/s over the command's wall time
# (loading included). The z phase's FLOPs are the commit's own count
# (z_gflop: the passes it ran) over its z seconds.
real_rates() {
  local model=$1 stats_s=$2 commit_json=$3 threads=$4 block c f
  read -r block c f < <(real_shape "$model")
  local peak shape_peak
  peak=$(OMP_NUM_THREADS=$threads OPENBLAS_NUM_THREADS=$threads "$BUILD/tools/bench_sgemm" 2048)
  shape_peak=$(OMP_NUM_THREADS=$threads OPENBLAS_NUM_THREADS=$threads "$BUILD/tools/bench_sgemm" 512 "$f" "$c")
  "$STAMP" stats --json | jq -r --argjson block "$block" --argjson c "$c" \
      --argjson f "$f" --argjson s "$stats_s" --argjson peak "$peak" \
      --argjson shape "$shape_peak" --argjson threads "$threads" '
    [.[] | select(.present)] as $l | if ($l | length) == 0 or $s <= 0 then empty else
    ($l[0].tokens) as $t | ($l[0].sequences) as $q | ($t / $q) as $n |
    ([$l[].layer] | max + 1) as $blocks |
    (($t * $blocks * $block + $q * $blocks * 4 * $c * $n * ($n + 1) / 2
      + ($l | length) * $t * $f * $f) / 1e9) as $g |
    "stats: \($g | round) GFLOP in \($s) s = \($g / $s * 10 | round / 10) GFLOP/s, \($g / $s / $peak * 100 | round)% of sgemm at 2048^3 (\($peak) GFLOP/s) and \($g / $s / $shape * 100 | round)% of sgemm at 512 x \($f) x \($c) (\($shape) GFLOP/s), \($threads) threads" end'
  jq -r --argjson peak "$peak" --argjson shape "$shape_peak" --argjson f "$f" --argjson c "$c" '
    select(.z_gflop and .timings.z > 0) |
    "z: \(.z_gflop | round) GFLOP in \(.timings.z * 10 | round / 10) s = \(.z_gflop / .timings.z * 10 | round / 10) GFLOP/s, \(.z_gflop / .timings.z / $peak * 100 | round)% of sgemm at 2048^3 and \(.z_gflop / .timings.z / $shape * 100 | round)% at 512 x \($f) x \($c), \(.threads) threads"' "$commit_json"
}
