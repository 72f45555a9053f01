# t10-predict: `stamp predict` on tests/data/gpt2-tiny against the
# PyTorch reference (predict-golden.txt, written by
# tests/tools/gen_gpt2_golden.py): the prompt's ids, the top-5 ids and
# log-probabilities; --json; --top beyond the vocabulary lists it all and
# the probabilities sum to 1; the store's model gives the same answer as
# --model; bad usage exits 2; bad prompts and bad model directories fail
# with a message naming the problem.
REPO=$(cd "$(dirname "$0")/../.." && pwd)
. "$(dirname "$0")/lib.sh"
M="$REPO/tests/data/gpt2-tiny"
G="$M/predict-golden.txt"
PROMPT="The cat sat on the"

expect_ok "help" "$STAMP" predict --help
expect_grep "help shows the synopsis" "^stamp predict \[--model DIR\]" "$T/out"
expect_exit "no text is bad usage" 2 "$STAMP" predict --model "$M"
expect_exit "--top 0 is bad usage" 2 "$STAMP" predict --model "$M" --top 0 x
expect_exit "--top x is bad usage" 2 "$STAMP" predict --model "$M" --top x x
expect_exit "an unknown option is bad usage" 2 "$STAMP" predict --model "$M" --frob x

# ---- against PyTorch
expect_ok "predict" "$STAMP" predict --model "$M" "$PROMPT"
cp "$T/out" "$T/text.out"
want_tokens=$(sed -n 's/^tokens //p' "$G")
expect_grep "the prompt's token ids" "^tokens \(8\): $want_tokens\$" "$T/text.out"
if [ "$(grep -c '^  [0-9]' "$T/text.out")" -eq 5 ]; then pass "five next tokens by default"
else fail "five next tokens by default" "$(cat "$T/text.out")"; fi
# columns: id logprob prob "text"; the golden: id logprob
awk 'BEGIN { n = 0; k = 0 }
     NR==FNR { if ($1 ~ /^[0-9]+$/) { id[n] = $1; lp[n++] = $2 } next }
     /^  [0-9]/ { if ($1 != id[k] || ($2 - lp[k])^2 > 1e-8) bad = 1; k++ }
     END { exit bad || k != n }' "$G" "$T/text.out" \
  && pass "top-5 ids and log-probabilities match torch (1e-4)" \
  || fail "top-5 ids and log-probabilities match torch (1e-4)" "$(cat "$T/text.out")"

expect_ok "predict --json --top 3" "$STAMP" predict --model "$M" --json --top 3 "$PROMPT"
cp "$T/out" "$T/json.out"
expect_grep "json has the tokens" '"tokens": \[' "$T/json.out"
ids=$(grep -o '"id": [0-9]*' "$T/json.out" | awk '{printf "%s ", $2}')
want_ids=$(awk '$1 ~ /^[0-9]+$/ && k < 3 { printf "%s ", $1; k++ }' "$G")
if [ "$ids" = "$want_ids" ]; then pass "json lists the top 3 ids in order"
else fail "json lists the top 3 ids in order" "got '$ids', want '$want_ids'"; fi
expect_grep "json entries carry token text" '"token": "g"' "$T/json.out"
n_tok=$(tr -d ' \n' < "$T/json.out" | sed 's/.*"tokens":\[\([0-9,]*\)\].*/\1/' | awk -F, '{ print NF }')
if [ "$n_tok" -eq 8 ]; then pass "json lists the 8 prompt ids"
else fail "json lists the 8 prompt ids" "$n_tok"; fi

expect_ok "--top beyond the vocabulary" "$STAMP" predict --model "$M" --top 1000 --json "$PROMPT"
n=$(grep -c '"logprob"' "$T/out")
if [ "$n" -eq 300 ]; then pass "lists the whole vocabulary (300)"
else fail "lists the whole vocabulary (300)" "$n entries"; fi
grep -o '"logprob": [-0-9.e]*' "$T/out" | awk '{ s += exp($2); if (NR > 1 && $2 > prev) bad = 1; prev = $2 }
  END { exit bad || (s - 1)^2 > 1e-8 }' \
  && pass "sorted, and the probabilities sum to 1" \
  || fail "sorted, and the probabilities sum to 1"

# ---- the store's current model
expect_exit "without --model and without a store" 1 "$STAMP" predict "$PROMPT"
expect_grep "says there is no store" "store" "$T/err"
expect_ok "init a store on the tiny model" "$STAMP" init --model "$M"
expect_ok "predict with the store's model" "$STAMP" predict "$PROMPT"
expect_same "the store's model answers as --model does" "$T/out" "$T/text.out"

# ---- failures
expect_exit "empty prompt" 1 "$STAMP" predict --model "$M" ""
expect_grep "says it is empty" "^stamp: error: empty prompt" "$T/err"
expect_exit "prompt longer than the context" 1 "$STAMP" predict --model "$M" \
  "the cat sat on the mat and the cat sat on the mat again and again and again"
expect_grep "says so" "exceeds the model's context of 16" "$T/err"
expect_exit "missing model directory" 1 "$STAMP" predict --model "$T/nope" x
expect_grep "names the file" "nope/config.json" "$T/err"
mkdir -p "$T/novocab" && cp "$M"/config.json "$M"/model.safetensors "$M"/merges.txt "$T/novocab/"
expect_exit "model without vocab.json" 1 "$STAMP" predict --model "$T/novocab" x
expect_grep "names vocab.json" "vocab.json" "$T/err"
mkdir -p "$T/bigvocab" && cp "$M"/* "$T/bigvocab/"
sed -i 's/"vocab_size": 300/"vocab_size": 200/' "$T/bigvocab/config.json"
expect_exit "config disagreeing with the tensors" 1 "$STAMP" predict --model "$T/bigvocab" x
expect_grep "names the tensor and the shapes" "tensor 'wte.weight' has shape \[300, 16\], config.json implies \[200, 16\]" "$T/err"
finish
