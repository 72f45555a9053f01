#!/usr/bin/env bash
# world_llama.sh: editing quality on the Llama architecture, measured:
# the batch of $BATCH (1,000) edits on a Llama-shaped world next to the
# same batch on the GPT-2 benchmark world of the same size and data.
#
#   bash bench/world_llama.sh
#
# The Llama world is $WORLD_LLAMA (default build/world-cf-llama). When it
# is missing it is built by bench/world.sh with the GPT-2 world's recipe
# (the same CounterFact records, distractors, extra facts, phrasings,
# held-out paraphrases; 6 layers, d_model 128, 4 heads, d_ff 4096, the
# same goal) and --arch llama --kv-heads 2: RMSNorm, rotary positions,
# SwiGLU, grouped-query attention (2 key/value heads), tied embeddings.
# d_ff stays 4096, so the matrix MEMIT edits (down_proj, (128, 4096))
# and its keys have the GPT-2 world's shape; the SwiGLU MLP then has 1.5
# times GPT-2's MLP parameters (LLAMA_FF=2736 matches those instead).
# The build takes well over an hour on 2 cores; it is skipped (with a
# note, exit 0) unless the GPT-2 world $WORLD was built from a fact file
# of at least $BATCH facts, so runs on a small test world never start it.
#
# Both worlds: a fresh store (stamp init --hparams $HPARAMS, default
# bench/hparams.json), the first fact of each of the first $BATCH
# subjects, one commit (bench/one_batch.sh). Writes
# $BENCH_OUT/world-llama-DATE.json (both rows, both world.json) and
# prints a table.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
STAMP=${STAMP:-$here/build/stamp}
WORLD=${WORLD:-$here/build/world-cf}
WORLD_LLAMA=${WORLD_LLAMA:-$here/build/world-cf-llama}
BATCH=${BATCH:-1000}
LLAMA_FF=${LLAMA_FF:-4096}
RETENTION_SAMPLE=${RETENTION_SAMPLE:-500}
HPARAMS=${HPARAMS-$here/bench/hparams.json}
export HPARAMS STAMP
out_dir=${BENCH_OUT:-$here/bench/results}
mkdir -p "$out_dir"
json_out=$out_dir/world-llama-$(date -u +%Y-%m-%d).json

[ -f "$WORLD/model.safetensors" ] ||
  { echo "world_llama: no GPT-2 world $WORLD (make world)" >&2; exit 1; }
if [ ! -f "$WORLD_LLAMA/model.safetensors" ]; then
  source=$(jq -r '.source // ""' "$WORLD/world.json" 2>/dev/null || echo "")
  facts=$(jq -r '.data.facts // 0' "$WORLD/world.json" 2>/dev/null || echo 0)
  if [ "$source" != facts ] || [ "$facts" -lt "$BATCH" ]; then
    echo "world_llama: skipped: no Llama world $WORLD_LLAMA, and $WORLD is not a fact-file world of >= $BATCH facts to build it like"
    exit 0
  fi
  # the GPT-2 world's own fact file and record count
  FACTS=$here/$(jq -r '.name' "$WORLD/world.json")
  LIMIT=$(grep -o -- '--limit [0-9]*' "$here/bench/world.sh" | awk '{ print $2 }' | head -n 1)
  echo "world_llama: building $WORLD_LLAMA (bench/world.sh --arch llama; over an hour on 2 cores)"
  WORLD_OUT=$WORLD_LLAMA LIMIT=${LIMIT:-2000} bash bench/world.sh "$FACTS" \
    --arch llama --kv-heads 2 --ff "$LLAMA_FF"
fi

# the same data, or no comparison (a test's small world never meets the
# benchmark's Llama world)
same=$(jq -n --slurpfile a "$WORLD/world.json" --slurpfile b "$WORLD_LLAMA/world.json" \
  '$a[0].name == $b[0].name and $a[0].data.facts == $b[0].data.facts' 2>/dev/null || echo false)
if [ "$same" != true ]; then
  echo "world_llama: skipped: $WORLD and $WORLD_LLAMA are not worlds of the same facts"
  exit 0
fi
rows=()
for w in "$WORLD" "$WORLD_LLAMA"; do
  row=$(SAMPLE=$RETENTION_SAMPLE bash bench/one_batch.sh "$w" "$BATCH" --threads 2 |
        jq -c --arg arch "$(jq -r '.architectures[0]' "$w/config.json")" \
              --argjson params "$(jq '.model.parameters' "$w/world.json")" \
              --argjson recall "$(jq -c '.recall' "$w/world.json")" \
              '. + {arch: $arch, parameters: $params, world_recall: $recall}')
  rows+=("$row")
  echo "world_llama: $row"
done
jq -n --argjson gpt2 "${rows[0]}" --argjson llama "${rows[1]}" \
  --argjson gpt2_world "$(jq -c . "$WORLD/world.json")" \
  --argjson llama_world "$(jq -c . "$WORLD_LLAMA/world.json")" \
  --arg date "$(date -u +%Y-%m-%d)" --argjson batch "$BATCH" \
  '{date: $date, edits: $batch, gpt2: $gpt2, llama: $llama,
    worlds: {gpt2: $gpt2_world, llama: $llama_world}}' > "$json_out"
printf '%-18s %9s %6s %6s %6s %9s %8s %8s\n' world parameters ES PS NS retained z_likely recall
for r in "${rows[@]}"; do
  jq -r '[.arch, .parameters, (.es*10|round/10), (.ps*10|round/10),
          (.ns*10|round/10), (.retained*10|round/10), .z_likely,
          (.world_recall.rewrite*1000|round/10)] | @tsv' <<< "$r" |
    awk -F'\t' '{ printf "%-18s %9s %6s %6s %6s %9s %8s %8s\n", $1, $2, $3, $4, $5, $6, $7, $8 }'
done
echo "world_llama: results in $json_out"
