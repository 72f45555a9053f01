# size_row.jq: one row of the batch-size table (bench/one_batch.sh,
# bench/run.sh) from a commit's and an eval's JSON:
#   jq -n -c --arg world NAME --argjson n EDITS --slurpfile c COMMIT.json \
#      --slurpfile e EVAL.json -f bench/size_row.jq
{
  world: $world, edits: $n, es: $e[0].scores.es, ps: $e[0].scores.ps,
  ns: $e[0].scores.ns, retained: $e[0].retention.retained,
  known_before: $e[0].retention.known_before, z_likely: $c[0].z_likely,
  shift_written: $c[0].shift_written,
  leverage: [$c[0].layers[].leverage], z_seconds: $c[0].timings.z,
  z_gflop: $c[0].z_gflop, solve_seconds: $c[0].timings.solve,
  rounds_kept: ($c[0].rounds // [] | length)
}
