#!/usr/bin/env bash
# report.sh: the Markdown report of one `make bench` run from its JSON
# (bench/results/<date>.json), on stdout. bench/run.sh calls it; run it
# by hand to render a report again:
#   bash bench/report.sh bench/results/2026-12-03.json > bench/results/2026-12-03.md
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: report.sh RESULTS.json" >&2; exit 2; }
jq -r '"# stamp benchmark, \(.date)\n",
  "Machine: \(.machine.cpu), \(.machine.cores) cores\(.machine.openblas_kernels // empty | ", OpenBLAS kernels \(.)"). World: \(.world.data.facts // "?") facts, \(.world.model.n_layer // "?") layers, d_model \(.world.model.n_embd // "?"), d_ff \(.world.model.n_inner // "?").\n",
  "sgemm peak: \(.sgemm_peak_gflops.threads1 | . * 10 | round / 10) GFLOP/s (1 thread), \(.sgemm_peak_gflops.threads2 | . * 10 | round / 10) GFLOP/s (2 threads)\n",
  "## One batch of \(.batch.edits) edits (2 threads)\n", (.batch.selection // empty | "\(.).\n"),
  "| phase | seconds |", "|---|---|",
  (.batch.timings | to_entries[] | select(.value | type == "number") | "| \(.key) | \(.value | . * 100 | round / 100) |"),
  "", "Key statistics: `stamp stats` over the world\u0027s corpus took \(.batch.stats_seconds // 0 | round) s before the commit (the commit\u0027s \"stats\" loads them; \"factor\" is their Cholesky factorisation, once for all rounds).",
  (if (.batch.timings.rounds | length) > 1 then "", "\(.batch.rounds_z_likely | length) of \(.batch.hparams.rounds) rounds (`rounds` in the hyperparameters)\(if .batch.rounds_stopped then " kept; they stopped because \(.batch.rounds_stopped), and that round\u0027s times are listed last" else "" end). z and solve above add up every round: z \([.batch.timings.rounds[].z | . * 10 | round / 10 | tostring] | join(", ")) s; solve \([.batch.timings.rounds[].solve | . * 10 | round / 10 | tostring] | join(", ")) s\(if (.batch.rounds_z_likely | length) > 0 then "; target vectors likely per round: \(.batch.rounds_z_likely | map(tostring) | join(", "))" else "" end)." else empty end),
  "", "edits/s \(.batch.edits_per_second | . * 100 | round / 100); z phase \(.batch.z_gflops | . * 10 | round / 10) GFLOP/s counted from the shapes of its passes (\(.batch.z_share_of_peak * 100 | round)% of peak); peak RSS \(.batch.peak_rss_mb | round) MB; diff \(.batch.diff_bytes) bytes",
  "", "| ES | PS | NS | score | retention |", "|---|---|---|---|---|",
  "| \(.batch.eval.scores.es | . * 10 | round / 10) | \(.batch.eval.scores.ps | . * 10 | round / 10) | \(.batch.eval.scores.ns | . * 10 | round / 10) | \(.batch.eval.scores.score | . * 10 | round / 10) | \(.batch.eval.retention.retained // "n/a" | if type == "number" then . * 10 | round / 10 else . end) |",
  "", "Retention: of \(.batch.eval.retention.sampled // "?") untouched facts sampled, \(.batch.eval.retention.known_before // "?") were top-1 before the commit; \(.batch.eval.retention.retained // 0 | . * 10 | round / 10)% of those still are (a drop of \(100 - (.batch.eval.retention.retained // 0) | . * 10 | round / 10) points).",
  "", "Target vectors: \(.batch.z_likely // "?") of \(.batch.edits) make the new answer likely (NLL < 0.5) before the first solve; mean NLL \(.batch.z_nll_mean // 0 | . * 100 | round / 100), mean steps \(.batch.z_steps_mean // 0 | . * 10 | round / 10).",
  "", "Update (first round): wrote \(.batch.shift_written // 0 | . * 100 | round)% of the target shift (mean ||z - h|| before and after the layer updates); mean leverage \([.batch.leverage[]? | "\(.leverage | . * 100 | round / 100) (layer \(.layer))"] | join(", ")) (docs/commit-record.md).",
  "", "Hyperparameters: \(.batch.hparams | tojson)",
  "", "World: \(.world.name // "?"), \(.world.data.distractors_per_fact // 0) distractors, \(.world.data.extra_facts_per_fact // 0) extra facts and \(.world.data.phrasings_per_fact // 0) other phrasings per fact, recall \(.world.recall.rewrite // "?") (rewrite prompts)\(if (.world.data.paraphrases_held_out // 0) > 0 then ", \(.world.recall.paraphrase_held_out) on the paraphrases of the first \(.world.data.paraphrases_held_out) facts, left out of its training" else "" end), trained in \(.world.seconds.total // 0 | round) s.",
  "", "## Threads (\(.threads.edits) edits)\n",
  "z phase: \(.threads.z_seconds_1 | . * 100 | round / 100) s (1 thread), \(.threads.z_seconds_2 | . * 100 | round / 100) s (2 threads): speed-up \(.threads.z_speedup | . * 100 | round / 100)x; whole commit \(.threads.total_speedup | . * 100 | round / 100)x\(if (.threads.pairs // 1) > 1 then " (medians of \(.threads.pairs) alternating pairs of runs; z seconds 1 / 2 threads, run by run: \([.threads.runs[] | select(.[0] == 1) | .[1] | . * 10 | round / 10] | map(tostring) | join(", ")) / \([.threads.runs[] | select(.[0] == 2) | .[1] | . * 10 | round / 10] | map(tostring) | join(", ")))" else "" end)",
  "", "## Nightly batches\n", "| night | edits | ES | PS | NS | retention | diff bytes | seconds |", "|---|---|---|---|---|---|---|---|",
  (.nightly[] | "| \(.night) | \(.edits) | \(.es | . * 10 | round / 10) | \(.ps | . * 10 | round / 10) | \(.ns | . * 10 | round / 10) | \(.retention // "n/a" | if type == "number" then . * 10 | round / 10 else . end) | \(.diff_bytes) | \(.commit_seconds | . * 10 | round / 10) |"),
  "", "## Batch size\n", "One commit of the first fact of each of the first N subjects on a fresh store each (bench/one_batch.sh; the size of the batch above is that commit). z likely, shift written and leverage are those of the first round (a small step when lambda is large; with one round they fall as the batch outgrows what the keys of the edited layers can tell apart: bench/results/2026-12-02.md).\n",
  "| edits | ES | PS | NS | retention | z likely | shift written | leverage |", "|---|---|---|---|---|---|---|---|",
  (.batch_sizes[]? | "| \(.edits) | \(.es | . * 10 | round / 10) | \(.ps | . * 10 | round / 10) | \(.ns | . * 10 | round / 10) | \(.retained // 0 | . * 10 | round / 10) | \(.z_likely) | \(.shift_written // 0 | . * 100 | round)% | \([.leverage[]? | . * 100 | round / 100 | tostring] | join(" / ")) |"),
  (if (.variants // []) | length > 0 then
    "", "## Other settings on the batch of \(.batch.edits)\n", "The same batch on a fresh store each, with `stamp commit` options on top of the bench\u0027s hyperparameters (first row: the batch above).\n",
    "| options | ES | PS | NS | retention | rounds kept | shift written | solve s |", "|---|---|---|---|---|---|---|---|",
    "| (the bench\u0027s) | \(.batch.eval.scores.es | . * 10 | round / 10) | \(.batch.eval.scores.ps | . * 10 | round / 10) | \(.batch.eval.scores.ns | . * 10 | round / 10) | \(.batch.eval.retention.retained // 0 | . * 10 | round / 10) | \(.batch.rounds_z_likely | length) | \(.batch.shift_written // 0 | . * 100 | round)% | \(.batch.timings.solve // 0 | . * 10 | round / 10) |",
    (.variants[] | "| `\(.options)` | \(.es | . * 10 | round / 10) | \(.ps | . * 10 | round / 10) | \(.ns | . * 10 | round / 10) | \(.retained // 0 | . * 10 | round / 10) | \(.rounds_kept // "?") | \(.shift_written // 0 | . * 100 | round)% | \(.solve_seconds // 0 | . * 10 | round / 10) |")
  else empty end)' "$1"
