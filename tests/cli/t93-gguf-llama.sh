# t93-gguf-llama: the Llama family's GGUF export checked against the real
# client. Four small random models with cut-down real tokenizers
# (tests/data/gguf-*, made by tests/tools/gen_gguf_models.py): a Llama
# with Llama 3's tokenizer, BF16, sharded, llama3 rope scaling, tied
# embeddings; Qwen2 (F16, q/k/v biases) and Qwen3 (F32, q/k norms,
# head_dim 24) with Qwen's tokenizer; Mistral (BF16) with Llama 2's
# SentencePiece-style tokenizer. Each is exported by `stamp export
# --format gguf --model DIR` as f32, f16, bf16 and q8_0, loaded by
# llama.cpp (node-llama-cpp's prebuilt CPU binary,
# tests/tools/llama_cpp_check.mjs), and for a set of prompts llama.cpp's
# tokens are ours and its next-token log-probabilities of our top 10
# (lib/model/llama.c's forward, tools/llama_top) are within the type's
# tolerance; its top-1 is ours, or a near tie (ours scores it within the
# tolerance of our top-1). With a BOS (the Llama 2 and Llama 3
# tokenizers' templates) llama.cpp adds the same one. Bad input (an
# architecture or rope scaling llama.cpp cannot express, a tokenizer it
# has no pre-tokenizer for, a missing directory, a full disk) fails
# clearly and leaves no file.
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"

DATA="$TEST_REPO/tests/data"
NPM=${STAMP_NPM:-$BUILD/npm}
CHECK="$HERE/../tools/llama_cpp_check.mjs"
MODULES="$NPM/llama-cpp/node_modules"
TOP="$BUILD/tools/llama_top"
MODELS="llama3-bf16-sharded qwen2-f16 qwen3-f32 mistral-bf16"

# the largest |log p(stamp) - log p(llama.cpp)| over stamp's top 10 that
# each type may show: about twice the largest measured over the four
# models (docs/gguf.md: f32 1.5e-5, f16 0.015, bf16 0.15, q8_0 0.43;
# llama.cpp multiplies bf16 and q8_0 matrices with the activations
# rounded to bf16 / quantized to q8_0, and these random networks' large
# weights amplify it)
tolerance() {
  case $1 in f32) echo 0.001 ;; f16) echo 0.03 ;; bf16) echo 0.3 ;; q8_0) echo 0.8 ;; esac
}

expect_ok "node-llama-cpp installs (prebuilt CPU binary only)" \
  bash "$HERE/../tools/llama_cpp_install.sh" "$NPM"

cat > prompts.txt <<'EOF'
The Eiffel Tower is located in the city of
Hello, world!
The quick brown fox jumps over the lazy dog.
Danielle Darrieux's mother tongue is
BMW E23 was made by
In 1999, the population was 12,345 people
She said: "it is 3.14159"
  two leading spaces and	a tab
EOF

# check NAME FILE.gguf CASES.json TYPE: llama.cpp agrees with stamp
check() {
  local name=$1 file=$2 cases=$3 type=$4 tol
  tol=$(tolerance "$type")
  if ! node "$CHECK" "$file" "$cases" "$MODULES" > check.json 2> check.err; then
    fail "$name" "llama_cpp_check failed: $(head -c 400 check.err)"
    return
  fi
  local diff same near n
  diff=$(jq '.max_abs_diff' check.json)
  n=$(jq '.cases | length' check.json)
  same=$(jq '[.cases[] | select(.top1_stamp == .top1_llama)] | length' check.json)
  # a different top-1 must be a near tie in stamp's own distribution
  near=$(jq --argjson tol "$tol" --slurpfile c "$cases" '[.cases as $k | range($k | length) |
    select($k[.].top1_stamp != $k[.].top1_llama) |
    select($k[.].top1_llama_stamp_logprob == null or
           $c[0][.].top[0].logprob - $k[.].top1_llama_stamp_logprob > $tol)] | length' check.json)
  if jq -e --argjson tol "$tol" '.tokens_same and .max_abs_diff <= $tol' check.json >/dev/null &&
     [ "$near" -eq 0 ]; then
    pass "$name: same tokens on $n prompts, top-1 the same on $same (the rest near ties), log-probs within $tol (max diff $diff)"
  else
    fail "$name" "tokens_same $(jq .tokens_same check.json), $near top-1 not a near tie, max diff $diff (tolerance $tol): $(jq -c '[.cases[] | select(.tokens_same == false or .top1_stamp != .top1_llama) | {prompt, tokens}]' check.json)"
  fi
}

for m in $MODELS; do
  dir="$DATA/gguf-$m"
  if "$TOP" "$dir" < prompts.txt > "$m.json" 2> top.err &&
     [ "$(jq length "$m.json")" -eq 8 ]; then
    pass "$m: stamp's forward answers 8 prompts"
  else fail "$m: stamp's forward answers 8 prompts" "$(head -c 300 top.err)"; fi
  # every type on one model; the others f32 and q8_0 (the conversions do
  # not depend on the architecture; each llama.cpp start costs seconds)
  types="f32 q8_0"
  [ "$m" = llama3-bf16-sharded ] && types="f32 f16 bf16 q8_0"
  for type in $types; do
    expect_ok "$m: export --format gguf --type $type --model" \
      "$STAMP" export --format gguf --type "$type" --model "$dir" "$m-$type.gguf"
    expect_grep "$m: export says what it wrote ($type)" \
      "^exported the model '.*gguf-$m' to '$m-$type.gguf': gguf $type, [0-9]+ tensors$" "$T/out"
    check "llama.cpp loads $m as $type" "$m-$type.gguf" "$m.json" "$type"
  done
done

# with the template's BOS: llama.cpp adds the same one (add_bos_token)
for m in llama3-bf16-sharded mistral-bf16; do
  "$TOP" "$DATA/gguf-$m" --bos < prompts.txt > "$m-bos.json"
  if [ "$(jq '[.[] | .tokens[0]] | unique | length' "$m-bos.json")" -eq 1 ]; then
    pass "$m: stamp's template puts a BOS first"
  else fail "$m: stamp's template puts a BOS first" "$(jq -c '[.[] | .tokens[0]]' "$m-bos.json")"; fi
  check "llama.cpp adds $m's BOS too" "$m-f32.gguf" "$m-bos.json" f32
done
ls ./*.tmp* > /dev/null 2>&1 && fail "no temporary left beside the exports" "$(ls ./*.tmp*)" ||
  pass "no temporary left beside the exports"

# a store on a Llama-family model exports the same file as its directory
# (once the store takes Llama models: init refuses them before that)
if "$STAMP" init --model "$DATA/gguf-qwen2-f16" > /dev/null 2>&1; then
  expect_ok "export the store's qwen2 as gguf" "$STAMP" export --format gguf --type q8_0 store.gguf
  expect_same "... the same bytes as its directory's export" store.gguf qwen2-f16-q8_0.gguf
else
  pass "a store on a Llama-family model: skipped (stamp init does not take one yet)"
fi

# bad input: a clear error, no file
refused() { # NAME PATTERN DIR
  expect_exit "$1 is refused" 1 "$STAMP" export --format gguf --model "$3" bad.gguf
  expect_grep "... by name" "$2" "$T/err"
  ls bad.gguf* > /dev/null 2>&1 && fail "... writing nothing" "$(ls bad.gguf*)" ||
    pass "... writing nothing"
}
cp -r "$DATA/gguf-qwen2-f16" q2rope
jq '.rope_scaling = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
    "high_freq_factor": 4.0, "original_max_position_embeddings": 64}' \
  "$DATA/gguf-qwen2-f16/config.json" > q2rope/config.json
refused "llama3 rope scaling on qwen2" \
  "Qwen2ForCausalLM rope_scaling of type llama3, which GGUF's qwen2 architecture cannot express" q2rope
cp -r "$DATA/gguf-qwen3-f32" q3bias
jq '.attention_bias = true' "$DATA/gguf-qwen3-f32/config.json" > q3bias/config.json
refused "attention biases on qwen3" \
  "Qwen3ForCausalLM attention_bias true, which GGUF's qwen3 architecture cannot express" q3bias
cp -r "$DATA/gguf-llama3-bf16-sharded" yarn
jq '.rope_scaling.rope_type = "yarn"' "$DATA/gguf-llama3-bf16-sharded/config.json" > yarn/config.json
refused "yarn rope scaling" "yarn" yarn
cp -r "$DATA/gguf-qwen2-f16" q2pre
jq -c '.pre_tokenizer.pretokenizers[0].pattern.Regex = "\\s+"' \
  "$DATA/gguf-qwen2-f16/tokenizer.json" > q2pre/tokenizer.json
refused "a pre-tokenizer llama.cpp has no name for" \
  "pre-tokenizer \(split regex '.s\+'\) is none that llama.cpp names" q2pre
cp -r "$DATA/gguf-qwen2-f16" notok && rm notok/tokenizer.json
refused "a model without tokenizer.json" "needs the model's tokenizer.json" notok
expect_exit "a directory that does not exist is refused" 1 \
  "$STAMP" export --format gguf --model "$DATA/gguf-qwen2-f16" nodir/x.gguf
expect_grep "... naming it" "cannot write 'nodir/x.gguf': directory 'nodir' does not exist" "$T/err"
[ -e nodir ] && fail "... and creating nothing" "nodir exists" || pass "... and creating nothing"
expect_exit "--model without --format gguf is bad usage" 2 \
  "$STAMP" export --model "$DATA/gguf-qwen2-f16" hfdir
[ -e hfdir ] && fail "... writing nothing" "hfdir exists" || pass "... writing nothing"

# a full disk (a small tmpfs; needs root, as the test machines are)
mkdir full
if mount -t tmpfs -o size=200k tmpfs full 2>/dev/null; then
  trap 'umount "$T/full" 2>/dev/null; rm -rf "$T"' EXIT
  echo "an old file" > full/m.gguf
  expect_exit "a full disk fails the export" 1 \
    "$STAMP" export --format gguf --model "$DATA/gguf-qwen3-f32" full/m.gguf
  expect_grep "... saying so" "cannot write 'full/m.gguf': No space left on device" "$T/err"
  if [ "$(cat full/m.gguf)" = "an old file" ] && [ "$(ls full)" = m.gguf ]; then
    pass "... leaving the old file as it was and no temporary"
  else fail "... leaving the old file and no temporary" "$(ls -la full)"; fi
  umount full
else
  pass "a full disk: skipped (cannot mount a tmpfs here)"
fi

finish
