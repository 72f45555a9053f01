# t92-gguf: `stamp export --format gguf` checked against the real client:
# the tiny world exported as f32, f16, bf16 and q8_0 GGUF files is loaded
# by llama.cpp (node-llama-cpp's prebuilt CPU binary, installed here by
# tests/tools/llama_cpp_install.sh), and for a set of prompts its
# tokenization and next-token top-1 are stamp predict's, its
# log-probabilities of stamp's top 10 within each type's tolerance
# (docs/gguf.md); a committed edit shows in llama.cpp's answer. Bad
# input (a missing directory, a full disk, an architecture GGUF cannot
# express, q8_0 for rows it cannot block, refused option combinations)
# fails clearly and leaves no file.
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"

W=$WORLD_TINY
NPM=${STAMP_NPM:-$BUILD/npm}
CHECK="$HERE/../tools/llama_cpp_check.mjs"
MODULES="$NPM/llama-cpp/node_modules"

# the largest |log p(stamp) - log p(llama.cpp)| over stamp's top 10 that
# each type may show: about twice what was measured on the tiny world
# (40 prompts: f32 0.003, 0.007 after an edit; f16 0.0065; bf16 0.048;
# q8_0 0.11). llama.cpp's CPU GELU goes through an f16 table, so even
# f32 is not exact; see docs/gguf.md
tolerance() {
  case $1 in f32) echo 0.02 ;; f16) echo 0.03 ;; bf16) echo 0.15 ;; q8_0) echo 0.3 ;; esac
}

expect_ok "init on world-tiny" "$STAMP" init --model "$W"
expect_ok "node-llama-cpp installs (prebuilt CPU binary only)" \
  bash "$HERE/../tools/llama_cpp_install.sh" "$NPM"

# prompts: the first 16 facts' prompts with their subjects
awk -F'","' 'NR > 1 && NR <= 17 { p = $2; sub(/\{\}/, substr($1, 2), p); print p }' \
  "$W/facts.csv" > prompts.txt
# stamp predict's answers (with the prompt) as llama_cpp_check.mjs reads them
cases() {
  while IFS= read -r p; do
    "$STAMP" predict --json --top 10 "$p" | jq -c --arg p "$p" '. + {prompt: $p}'
  done < prompts.txt | jq -s . > "$1"
}
cases base.json
if [ "$(jq length base.json)" -eq 16 ]; then pass "stamp predict answers 16 prompts"
else fail "stamp predict answers 16 prompts" "$(jq length base.json) answers"; fi

# check NAME FILE.gguf CASES.json TYPE: llama.cpp agrees with stamp
check() {
  local name=$1 file=$2 cases=$3 type=$4 tol
  tol=$(tolerance "$type")
  if ! node "$CHECK" "$file" "$cases" "$MODULES" > check.json 2> check.err; then
    fail "$name" "llama_cpp_check failed: $(head -c 400 check.err)"
    return
  fi
  local diff
  diff=$(jq '.max_abs_diff' check.json)
  if jq -e --argjson tol "$tol" \
       '.tokens_same and .top1_same and .max_abs_diff <= $tol' check.json >/dev/null; then
    pass "$name: same tokens, same top-1 on $(jq '.cases | length' check.json) prompts, log-probs within $tol (max diff $diff)"
  else
    fail "$name" "tokens_same $(jq .tokens_same check.json), top1_same $(jq .top1_same check.json), max diff $diff (tolerance $tol): $(jq -c '[.cases[] | select(.tokens_same == false or .top1_stamp != .top1_llama) | .prompt]' check.json)"
  fi
}

for type in f32 f16 bf16 q8_0; do
  expect_ok "export --format gguf --type $type" \
    "$STAMP" export --format gguf --type "$type" "world-$type.gguf"
  expect_grep "export says what it wrote ($type)" \
    "^exported the base model \(no commits\) to 'world-$type.gguf': gguf $type, 77 tensors, 0 edited$" "$T/out"
  if [ "$(head -c 4 "world-$type.gguf")" = GGUF ] &&
     [ "$(od -An -tu4 -j4 -N4 "world-$type.gguf" | tr -d ' ')" = 3 ]; then
    pass "world-$type.gguf is GGUF v3"
  else fail "world-$type.gguf is GGUF v3" "$(head -c 8 "world-$type.gguf" | od -c | head -1)"; fi
  check "llama.cpp loads the $type export" "world-$type.gguf" base.json "$type"
done
f32=$(stat -c %s world-f32.gguf); q8=$(stat -c %s world-q8_0.gguf)
if [ "$q8" -lt $((f32 / 3)) ]; then pass "q8_0 is under a third of f32 ($q8 of $f32 bytes)"
else fail "q8_0 is under a third of f32" "$q8 of $f32 bytes"; fi
ls *.gguf.tmp* > /dev/null 2>&1 && fail "no temporary left beside the exports" "$(ls *.tmp*)" ||
  pass "no temporary left beside the exports"

# a committed edit shows in llama.cpp's answer
awk -F'","' 'NR == 1 || !seen[$1]++' "$W/facts.csv" | head -n 5 > batch.csv
expect_ok "import 4 edits" "$STAMP" import batch.csv
expect_ok "commit them" "$STAMP" commit -m "four edits" --threads 2
prompt=$(awk -F'","' 'NR == 2 { p = $2; sub(/\{\}/, substr($1, 2), p); print p }' "$W/facts.csv")
target=$(awk -F'","' 'NR == 2 { print $3 }' "$W/facts.csv")
printf '%s\n' "$prompt" > prompts.txt
cases edited.json
new_id=$(jq '.[0].top[0].id' edited.json); new_tok=$(jq -r '.[0].top[0].token' edited.json)
old_id=$(jq '.[0].top[0].id' base.json)
if [ "$new_tok" = "$target" ] && [ "$new_id" != "$old_id" ]; then
  pass "stamp predict answers the edit: '$prompt' ->$new_tok"
else fail "stamp predict answers the edit" "'$prompt' -> '$new_tok', wanted '$target'"; fi
expect_ok "export the edited model as gguf" "$STAMP" export --format gguf edited.gguf
expect_grep "export names the commit and the edited tensors" \
  "^exported commit 1 to 'edited.gguf': gguf f32, 77 tensors, [1-9][0-9]* edited$" "$T/out"
check "llama.cpp loads the edited export" edited.gguf edited.json f32
if [ "$(jq '.cases[0].top1_llama' check.json)" = "$new_id" ]; then
  pass "llama.cpp answers the edit too ('$prompt' ->$target)"
else fail "llama.cpp answers the edit" "top-1 $(jq '.cases[0].top1_llama' check.json), wanted $new_id"; fi
node "$CHECK" world-f32.gguf edited.json "$MODULES" > check.json 2>/dev/null
if [ "$(jq '.cases[0].top1_llama' check.json)" = "$old_id" ]; then
  pass "the base export still answers the old fact"
else fail "the base export still answers the old fact" "top-1 $(jq '.cases[0].top1_llama' check.json), wanted $old_id"; fi

# bad input: a clear error, no file, nothing half-written
cp edited.gguf before.gguf
expect_exit "a directory that does not exist is refused" 1 \
  "$STAMP" export --format gguf nodir/x.gguf
expect_grep "... naming it" "cannot write 'nodir/x.gguf': directory 'nodir' does not exist" "$T/err"
[ -e nodir ] && fail "... and creating nothing" "nodir exists" || pass "... and creating nothing"
mkdir adir
expect_exit "a directory as the file is refused" 1 "$STAMP" export --format gguf adir
expect_grep "... saying so" "'adir' is a directory" "$T/err"
expect_exit "an unknown --type is bad usage" 2 \
  "$STAMP" export --format gguf --type q4_0 edited.gguf
expect_grep "... naming it" "unknown --type 'q4_0'" "$T/err"
expect_exit "an unknown --format is bad usage" 2 "$STAMP" export --format onnx x.onnx
expect_grep "... naming it" "unknown --format 'onnx'" "$T/err"
expect_exit "--type without --format gguf is bad usage" 2 \
  "$STAMP" export --type f16 hfdir
expect_grep "... saying why" "--type is for --format gguf" "$T/err"
expect_exit "--force with --format gguf is bad usage" 2 \
  "$STAMP" export --format gguf --force edited.gguf
expect_same "the refused exports left the existing file as it was" before.gguf edited.gguf
[ -e hfdir ] || [ -e x.onnx ] && fail "refused exports write nothing" "$(ls)" ||
  pass "refused exports write nothing"

# a full disk (a small tmpfs; needs root, as the test machines are)
mkdir full
if mount -t tmpfs -o size=400k tmpfs full 2>/dev/null; then
  trap 'umount "$T/full" 2>/dev/null; rm -rf "$T"' EXIT
  echo "an old file" > full/m.gguf
  expect_exit "a full disk fails the export" 1 "$STAMP" export --format gguf full/m.gguf
  expect_grep "... saying so" "cannot write 'full/m.gguf': No space left on device" "$T/err"
  if [ "$(cat full/m.gguf)" = "an old file" ] && [ "$(ls full)" = m.gguf ]; then
    pass "... leaving the old file as it was and no temporary"
  else fail "... leaving the old file and no temporary" "$(ls -la full)"; fi
  umount full
else
  pass "a full disk: skipped (cannot mount a tmpfs here)"
fi

# an architecture GGUF's gpt2 cannot express
cp -r "$W" attn
sed -i 's/"scale_attn_by_inverse_layer_idx": false/"scale_attn_by_inverse_layer_idx": true/' attn/config.json
expect_ok "init on a model with per-layer attention scaling" \
  env STAMP_STORE="$T/store2" "$STAMP" init --model attn
expect_exit "its gguf export is refused" 1 \
  env STAMP_STORE="$T/store2" "$STAMP" export --format gguf attn.gguf
expect_grep "... naming the field" "sets scale_attn_by_inverse_layer_idx to true, which GGUF's gpt2 architecture cannot express" "$T/err"
ls attn.gguf* > /dev/null 2>&1 && fail "... and writing nothing" "$(ls attn.gguf*)" ||
  pass "... and writing nothing"

# q8_0 for rows that are not a multiple of 32 values: refused by name
expect_ok "a model of n_embd 48 (stamp-world, untrained)" \
  "$BUILD/stamp-world" --synthetic 20 --embd 48 --heads 2 --ff 96 --layers 1 \
  --steps 2 --threads 1 --quiet --out w48
expect_ok "init on it" env STAMP_STORE="$T/store3" "$STAMP" init --model w48
expect_exit "its q8_0 export is refused" 1 \
  env STAMP_STORE="$T/store3" "$STAMP" export --format gguf --type q8_0 w48.gguf
expect_grep "... naming the tensor" "tensor 'token_embd.weight' cannot be stored as q8_0: its rows have 48 values, not a multiple of 32" "$T/err"
ls w48.gguf* > /dev/null 2>&1 && fail "... and writing nothing" "$(ls w48.gguf*)" ||
  pass "... and writing nothing"
expect_ok "its f16 export is written" \
  env STAMP_STORE="$T/store3" "$STAMP" export --format gguf --type f16 w48.gguf

finish
