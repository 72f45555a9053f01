#!/usr/bin/env bash
# t95-gguf-llama-edit: an edit committed into a Llama-architecture model
# shows in llama.cpp's answer. A tiny Llama world (stamp-world --arch
# llama --synthetic tiny: RMSNorm, RoPE, grouped-query attention, SwiGLU,
# GPT-2's byte-level BPE vocabulary) that knows its facts; a store on it;
# four edits committed (MEMIT on mlp.down_proj); for an edit stamp
# predict now answers, the GGUF export (f32 and f16) loaded by
# llama.cpp (node-llama-cpp) answers it too, and the base model's export
# still answers the old fact. Tolerances as t93's (docs/gguf.md).
. "$(dirname "$0")/lib.sh"
NPM=${STAMP_NPM:-$BUILD/npm}
MODULES="$NPM/llama-cpp/node_modules"
CHECK="$TEST_REPO/tests/tools/llama_cpp_check.mjs"
W=$T/world

expect_ok "node-llama-cpp installs (prebuilt CPU binary only)" \
  bash "$TEST_REPO/tests/tools/llama_cpp_install.sh" "$NPM"
expect_ok "a tiny Llama world" "$BUILD/stamp-world" --arch llama --synthetic tiny --quiet --out "$W"
expect_grep "it is a LlamaForCausalLM" '"LlamaForCausalLM"' "$W/config.json"
expect_ok "init on it" "$STAMP" init --model "$W"
expect_ok "the base model as gguf" "$STAMP" export --format gguf base.gguf

# the first fact of each of the first four subjects
awk -F'","' 'NR == 1 || !seen[$1]++' "$W/facts.csv" | head -n 5 > batch.csv
expect_ok "import 4 edits" "$STAMP" import batch.csv
expect_ok "commit them" "$STAMP" commit -m "four edits"
# an edit the model now answers (top-1 = the new target)
found=
while IFS=$'\t' read -r prompt target; do
  "$STAMP" predict --json --top 10 "$prompt" | jq -c --arg p "$prompt" '[. + {prompt: $p}]' > edited.json
  if [ "$(jq -r '.[0].top[0].token' edited.json)" = "$target" ]; then found=1; break; fi
done < <(awk -F'","' 'NR > 1 { p = $2; sub(/\{\}/, substr($1, 2), p); print p "\t" $3 }' batch.csv)
if [ -n "$found" ]; then pass "stamp predict answers an edit: '$prompt' ->$target"
else fail "stamp predict answers one of the four edits"; finish; exit; fi
new_id=$(jq '.[0].top[0].id' edited.json)

check() { # NAME FILE TOLERANCE: llama.cpp's top-1 is the edit, log-probs close
  if ! node "$CHECK" "$2" edited.json "$MODULES" > check.json 2> check.err; then
    fail "$1" "llama_cpp_check failed: $(head -c 400 check.err)"; return; fi
  if jq -e --argjson id "$new_id" --argjson tol "$3" \
       '.tokens_same and .cases[0].top1_llama == $id and .max_abs_diff <= $tol' check.json > /dev/null; then
    pass "$1: llama.cpp answers '$prompt' ->$target (max diff $(jq .max_abs_diff check.json))"
  else fail "$1" "$(jq -c '{tokens_same, top1: .cases[0].top1_llama, max_abs_diff}' check.json), wanted $new_id"; fi
}
for type in f32 f16; do  # (q8_0 needs rows of 32: this d_ff is 176)
  expect_ok "export the edited model as gguf $type" "$STAMP" export --format gguf --type "$type" "edited-$type.gguf"
  expect_grep "export names the commit ($type)" "^exported commit 1 to 'edited-$type.gguf': gguf $type, [0-9]+ tensors, [1-9][0-9]* edited$" "$T/out"
done
check "f32" edited-f32.gguf 0.001
check "f16" edited-f16.gguf 0.03
if node "$CHECK" base.gguf edited.json "$MODULES" > check.json 2> check.err &&
   [ "$(jq '.cases[0].top1_llama' check.json)" != "$new_id" ]; then
  pass "the base model's export does not answer the edit"
else fail "the base model's export does not answer the edit"; fi
finish
