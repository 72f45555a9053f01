# t50-commit: MEMIT and ROME commits on the tiny world model: a batch of
# edits reaches the efficacy and neighbourhood bars, ROME flips a single
# fact, and the bad states (empty queue, no statistics and no corpus, a
# base model changed behind the store's back, a singular update system,
# a null-space threshold that leaves no direction) fail clearly and
# change nothing; the update confined to the null space reaches the bars
# too, and the next commit keeps the committed edits of every subject it
# does not edit again; rounds (target vectors found again in the edited
# model) reach the bars at a lambda where one round does not, and revert
# exactly; a fact whose target vector is not
# finite is reported and left queued while the rest commit, and one that
# is not finite in a later round ends the rounds there.
. "$(dirname "$0")/lib.sh"

W=$WORLD_TINY
expect_ok "init on world-tiny" "$STAMP" init --model "$W"

# 24 edits: one fact each of the first 24 subjects of the world (as in
# CounterFact, one edit per subject), each asking for its counterfactual
# target_new.
awk -F'","' 'NR == 1 || !seen[$1]++' "$W/facts.csv" | head -n 25 > batch.csv
expect_ok "import 24 edits" "$STAMP" import batch.csv
expect_ok "commit the batch" "$STAMP" commit -m "batch of 24" --threads 2
expect_grep "commit says what it did" "commit 1: 24 facts" "$T/out"
expect_grep "commit says how many target vectors reach their answer" \
  "target vectors: [0-9]+ of 24 make the new answer likely" "$T/out"
expect_grep "commit says how much of the shift the update wrote" \
  "update: wrote [0-9]+% of the target shift; leverage 0\.[0-9]+ \(layer 0\), 0\.[0-9]+ \(layer 1\)" "$T/out"
expect_ok "show of the batch" "$STAMP" show 1
expect_grep "show gives the scores after to one decimal, as commit does" "^after +ES [0-9]+\.[0-9]  PS [0-9]+\.[0-9]  NS [0-9]+\.[0-9]$" "$T/out"
expect_ok "show --json of the batch" "$STAMP" show 1 --json
written=$(jq '.commit.shift_written' "$T/out"); lev=$(jq '[.commit.layers[].leverage] | min' "$T/out")
# (the defaults take small steps: lambda 2000, six rounds; the first
# round writes a part of the shift, the later ones aim again)
if awk -v w="$written" -v l="$lev" 'BEGIN { exit !(w > 0.1 && w <= 1 && l > 0 && l < 1) }'; then
  pass "24 edits on world-tiny: the first round writes part of the shift (share $written, leverage >= $lev)"
else
  fail "24 edits: shift_written in (0.1, 1], leverage in (0, 1)" "shift_written $written, leverage $lev"
fi
if jq -e '.commit.hparams.rounds == 6 and (.commit.rounds | length) >= 2' "$T/out" >/dev/null; then
  pass "the default commit runs rounds ($(jq '.commit.rounds | length' "$T/out") of 6)"
else fail "the default commit runs rounds" "$(jq -c '[.commit.hparams.rounds, .commit.rounds]' "$T/out")"; fi
expect_ok "show of the batch" "$STAMP" show 1
expect_grep "show says how much of the shift was written" "^written +[0-9]+% of the target shift" "$T/out"
expect_grep "show lists each layer's leverage" "^1 +h\.1\.mlp\.c_proj\.weight .* 0\.[0-9]{3}$" "$T/out"
expect_ok "eval --json" "$STAMP" eval --json
cp "$T/out" eval.json
es=$(jq '.scores.es' eval.json); ns=$(jq '.scores.ns' eval.json)
if awk -v es="$es" -v ns="$ns" 'BEGIN { exit !(es >= 90 && ns >= 80) }'; then
  pass "batch reaches ES >= 90 and NS >= 80 (ES $es, NS $ns)"
else
  fail "batch reaches ES >= 90 and NS >= 80" "ES $es, NS $ns"
fi
# --facts: each edit's outcome, which add up to the scores, and the
# untouched facts lost, as many as retention says.
expect_ok "eval --facts --json" "$STAMP" eval --facts --json
if jq -e '(.facts | length) == .scores.n_facts and
          (([.facts[] | select(.outcome.es)] | length) * 100 / (.facts | length) - .scores.es | fabs < 1e-9) and
          (([.facts[] | .outcome.ns] | add) * 100 / (.facts | length) - .scores.ns | fabs < 1e-9) and
          ([.facts[] | select(.outcome.es != (.outcome.p_new > .outcome.p_true))] | length) == 0 and
          (.retention.lost | length) == (.retention.known_before * (100 - .retention.retained) / 100 | round)' \
     "$T/out" >/dev/null; then
  pass "eval --facts --json: each fact's outcome adds up to the scores, the lost facts to retention"
else fail "eval --facts --json adds up" "$(jq -c '[.scores, .retention, .facts[0]]' "$T/out")"; fi
not_taken=$(jq '[.facts[] | select(.outcome.es | not)] | length' "$T/out")
lost=$(jq '.retention.lost | length' "$T/out")
expect_ok "eval --facts" "$STAMP" eval --facts
expect_grep "eval --facts counts the edits not taken" "^$not_taken edits? not taken" "$T/out"
expect_grep "eval --facts counts the untouched facts lost" "^$lost untouched facts? lost" "$T/out"
expect_ok "eval without --facts" "$STAMP" eval
if grep -Eq 'not taken|lost' "$T/out"; then fail "plain eval lists no facts" "$(cat "$T/out")"
else pass "plain eval lists no facts"; fi
expect_ok "queue is empty after commit" "$STAMP" queue --json
expect_grep "queue --json lists nothing" '^\[\]$|"facts": *\[\]' "$T/out"

# An empty queue: exit 3 and a clear message.
expect_exit "empty queue exits 3" 3 "$STAMP" commit
expect_grep "empty queue is explained" "nothing to commit" "$T/err"

# ROME: one fact, one layer, flips its answer.
awk -F'","' 'NR == 1 || !seen[$1]++' "$W/facts.csv" | sed -n '1p;30p' > one.csv
subject=$(tail -n 1 one.csv | cut -d, -f1)
"$STAMP" import one.csv >/dev/null 2>&1
prompt_json=$("$STAMP" queue --json)
expect_ok "rome commit" "$STAMP" commit --method rome
expect_grep "rome commit reported" "commit 2: 1 fact" "$T/out"
expect_ok "eval of the rome commit" "$STAMP" eval 2 --json
es=$(jq '.scores.es' "$T/out")
if [ "${es%.*}" = "100" ]; then pass "rome flips its fact ($subject)"
else fail "rome flips its fact" "ES $es for $subject: $prompt_json"; fi

# No statistics and no corpus: a clear error, nothing changes.
mkdir -p nocorpus
cp "$W"/config.json "$W"/model.safetensors "$W"/vocab.json "$W"/merges.txt nocorpus/
STAMP_STORE="$T/s2" "$STAMP" init --model "$T/nocorpus" >/dev/null 2>&1
STAMP_STORE="$T/s2" "$STAMP" import batch.csv >/dev/null 2>&1
STAMP_STORE="$T/s2" "$STAMP" queue --json > q-before.json
expect_exit "commit without statistics or corpus fails" 1 env STAMP_STORE="$T/s2" "$STAMP" commit
expect_grep "missing statistics are explained" "stamp stats --corpus" "$T/err"
STAMP_STORE="$T/s2" "$STAMP" queue --json > q-after.json
expect_same "failed commit leaves the queue as it was" q-before.json q-after.json
expect_ok "stats --corpus computes them" env STAMP_STORE="$T/s2" "$STAMP" stats --corpus "$W/corpus.txt"
expect_grep "stats reports the layers" "keys from" "$T/out"
expect_ok "commit works once statistics exist" env STAMP_STORE="$T/s2" "$STAMP" commit --no-scores

# A base model changed behind the store's back: commit refuses.
STAMP_STORE="$T/s2" "$STAMP" import one.csv >/dev/null 2>&1
size=$(stat -c %s "$T/nocorpus/model.safetensors")   # a weight byte, not the header
printf '\x01' | dd of="$T/nocorpus/model.safetensors" bs=1 seek=$((size - 100)) conv=notrunc 2>/dev/null
expect_exit "commit refuses a changed base model" 1 env STAMP_STORE="$T/s2" "$STAMP" commit
expect_grep "the changed base is named" "changed behind the store's back" "$T/err"

# Bad hyperparameters and inputs: clear errors, nothing changes.
echo '{"mom2_update_weight": "lots"}' > bad-hparams.json
expect_exit "init with bad --hparams fails" 1 env STAMP_STORE="$T/s3" "$STAMP" init --model "$W" --hparams bad-hparams.json
expect_grep "the bad hparams file and key are named" "bad-hparams.json.*mom2_update_weight" "$T/err"
if [ ! -e "$T/s3" ]; then pass "a failed init leaves no store"; else fail "a failed init leaves no store"; fi
echo '{"layers": [0], "mom2_update_weight": 500}' > good-hparams.json
expect_ok "init with --hparams" env STAMP_STORE="$T/s3" "$STAMP" init --model "$W" --hparams good-hparams.json
STAMP_STORE="$T/s3" "$STAMP" import one.csv >/dev/null 2>&1
STAMP_STORE="$T/s3" "$STAMP" queue --json > q-before.json
STAMP_STORE="$T/s3" "$STAMP" log --json > l-before.json
expect_exit "an unknown --set key is bad usage" 2 env STAMP_STORE="$T/s3" "$STAMP" commit --set nope=1
expect_grep "the unknown key is named" "unknown key 'nope'" "$T/err"
expect_exit "a negative number of rounds is bad usage" 2 env STAMP_STORE="$T/s3" "$STAMP" commit --set rounds=-1
expect_grep "the bad rounds are named" "'rounds' must be a non-negative integer" "$T/err"
expect_exit "a fractional number of rounds is bad usage" 2 env STAMP_STORE="$T/s3" "$STAMP" commit --set rounds=2.5
expect_grep "the fractional rounds are named" "'rounds' must be a non-negative integer" "$T/err"
expect_exit "a negative round_min_shift is bad usage" 2 env STAMP_STORE="$T/s3" "$STAMP" commit --set round_min_shift=-0.5
expect_grep "the bad round_min_shift is named" "'round_min_shift' must be a non-negative number" "$T/err"
expect_exit "a fractional round_halvings is bad usage" 2 env STAMP_STORE="$T/s3" "$STAMP" commit --set round_halvings=1.5
expect_grep "the bad round_halvings is named" "'round_halvings' must be a non-negative integer" "$T/err"
expect_exit "a layer outside the model is bad usage" 2 env STAMP_STORE="$T/s3" "$STAMP" commit --layers 99
expect_grep "the bad layer is named" "layer 99" "$T/err"
expect_exit "a missing corpus fails" 1 env STAMP_STORE="$T/s3" "$STAMP" stats --corpus "$T/no-such-corpus.txt"
expect_grep "the missing corpus is named" "no-such-corpus.txt" "$T/err"
# lambda 0 and fewer keys than key dimensions: K^T K alone is singular
expect_exit "a singular update system fails" 1 env STAMP_STORE="$T/s3" "$STAMP" commit --no-scores --set mom2_update_weight=0
expect_grep "the singular system is explained" "layer 0: the update system is singular; .*raise mom2_update_weight" "$T/err"
# key statistics over one short line: its few keys do not span the MLP
# units, so C itself is singular and no lambda can help; the message says so
mkdir -p "$T/one-line" && head -n 1 "$W/corpus.txt" > "$T/one-line/corpus.txt"
cp -r "$T/s3" "$T/s3-one-line"
expect_ok "statistics over one line" env STAMP_STORE="$T/s3-one-line" "$STAMP" stats --corpus "$T/one-line/corpus.txt"
expect_grep "too few keys are warned about" "warning: layer 0: [0-9]+ keys cannot span its 256 MLP units" "$T/err"
expect_exit "singular key statistics fail the commit" 1 env STAMP_STORE="$T/s3-one-line" "$STAMP" commit --no-scores --set mom2_update_weight=1000000
expect_grep "singular key statistics are explained" "layer 0: the key statistics are singular .*raising mom2_update_weight cannot help" "$T/err"
expect_grep "the message names the ridge" "add a ridge \(--set mom2_ridge=0.01\)" "$T/err"
# a ridge on this commit's copy of them makes the system solvable; the
# stored statistics stay singular (a commit without it fails again)
expect_ok "a ridge on singular key statistics commits" env STAMP_STORE="$T/s3-one-line" "$STAMP" commit --no-scores --set mom2_update_weight=1000000 --set mom2_ridge=0.01
expect_ok "show --json of the ridge commit" env STAMP_STORE="$T/s3-one-line" "$STAMP" show 1 --json
if [ "$(jq '.commit.hparams.mom2_ridge' "$T/out")" = "0.01" ]; then
  pass "the commit records mom2_ridge"
else fail "the commit records mom2_ridge" "$(jq -c '.commit.hparams' "$T/out")"; fi
expect_ok "queue the batch again" env STAMP_STORE="$T/s3-one-line" "$STAMP" import batch.csv
expect_exit "without the ridge the stored statistics are still singular" 1 env STAMP_STORE="$T/s3-one-line" "$STAMP" commit --no-scores --set mom2_update_weight=1000000
expect_exit "a null-space threshold below every eigenvalue fails" 1 env STAMP_STORE="$T/s3" "$STAMP" commit --no-scores --set nullspace_threshold=1e-300
expect_grep "the threshold and the layer are named" "layer 0: no direction of the keys is below nullspace_threshold" "$T/err"
STAMP_STORE="$T/s3" "$STAMP" queue --json > q-after.json
STAMP_STORE="$T/s3" "$STAMP" log --json > l-after.json
expect_same "bad commits leave the queue as it was" q-before.json q-after.json

# A target vector that is not finite: that fact is reported and stays
# queued, the others commit. An absurd z learning rate blows up every
# fact that takes a step; with nll_stop 1 a fact the model already says
# ("Hiapyk Deshaik works as a" -> its true answer) takes none.
export STAMP_STORE="$T/s4"
"$STAMP" init --model "$W" >/dev/null
printf 'subject,prompt,target_new,target_true\n%s\n%s\n' \
  "Hiapyk Deshaik,{} works as a,pilot,chef" \
  "Boucha Thenia,{} works as a,chef,nurse" > nan.csv
expect_ok "import a fact the model says and a change" "$STAMP" import nan.csv
expect_ok "commit with a non-finite target vector still commits" "$STAMP" commit --threads 2 --set v_lr=1e300 --set nll_stop=1
expect_grep "the failed fact is named" "'Boucha Thenia' left queued: its target vector is not finite" "$T/err"
expect_grep "the summary counts it" "1 fact left queued" "$T/out"
expect_ok "queue --json after it" "$STAMP" queue --json
if [ "$(jq -r '[.. | objects | select(has("subject")) | .subject] | unique | join(",")' "$T/out")" = "Boucha Thenia" ]; then
  pass "only the failed fact is still queued"
else fail "only the failed fact is still queued" "$(cat "$T/out")"; fi
expect_ok "show --json of that commit" "$STAMP" show 1 --json
if [ "$(jq -c '[.commit.n_facts, (.commit.failed | length), .commit.failed[0].reason, .commit.shift_written]' "$T/out")" = '[1,1,"target vector is not finite",1]' ]; then
  pass "the record has 1 fact, the failure and nothing left to write"
else fail "the record has 1 fact and the failure" "$(jq -c .commit "$T/out")"; fi

# A target vector that is not finite in a later round (forced with the
# fault-injection variable; no natural input is known to reach it): the
# commit keeps the rounds before it, says why it stopped, and is the
# commit that one round gives, byte for byte.
head -n 9 batch.csv > later.csv
for s in r1 fault; do
  STAMP_STORE="$T/$s" "$STAMP" init --model "$W" >/dev/null
  STAMP_STORE="$T/$s" "$STAMP" import later.csv >/dev/null
done
expect_ok "one round of 8 edits" env STAMP_STORE="$T/r1" "$STAMP" commit --threads 2 --set rounds=1
expect_ok "the same with round 2's target vector not finite" \
  env STAMP_STORE="$T/fault" STAMP_TEST_NONFINITE_Z_ROUND=2 "$STAMP" commit --threads 2
expect_grep "the round and the fact are named" "round 2: the target vector of '[^']+' is not finite; the commit keeps the first 1 round" "$T/err"
expect_ok "show --json of it" env STAMP_STORE="$T/fault" "$STAMP" show 1 --json
if jq -e '.commit.n_facts == 8 and (.commit.rounds | length) == 1 and .commit.rounds_stopped == "a target vector was not finite" and (.commit.failed | length) == 0' "$T/out" >/dev/null; then
  pass "the record: 8 facts, 1 round kept, the reason"
else fail "the record: 8 facts, 1 round kept, the reason" "$(jq -c '[.commit.n_facts, (.commit.rounds | length), .commit.rounds_stopped, .commit.failed]' "$T/out")"; fi
STAMP_STORE="$T/r1" "$STAMP" export "$T/r1.model" >/dev/null
STAMP_STORE="$T/fault" "$STAMP" export "$T/fault.model" >/dev/null
expect_same "the model is the one-round commit's" "$T/r1.model/model.safetensors" "$T/fault.model/model.safetensors"

export STAMP_STORE="$T/store"
expect_same "bad commits leave the log as it was" l-before.json l-after.json
expect_ok "commit uses the store's hparams" env STAMP_STORE="$T/s3" "$STAMP" commit --no-scores --json
expect_grep "the recorded hparams are the store's" '"mom2_update_weight": 500' "$T/out"

# The update confined to the null space of the key statistics (AlphaEdit):
# the same batch of 24 still reaches the bars, and the record says how
# many of the 256 key directions each layer's update could use.
echo '{"nullspace_threshold": 0.01}' > ns-hparams.json
expect_ok "init with a null-space threshold" env STAMP_STORE="$T/s5" "$STAMP" init --model "$W" --hparams ns-hparams.json
STAMP_STORE="$T/s5" "$STAMP" import batch.csv >/dev/null
expect_ok "commit confined to the null space" env STAMP_STORE="$T/s5" "$STAMP" commit --json --threads 2
dims=$(jq -c '[.layers[].nullspace_dim]' "$T/out")
if jq -e 'all(.layers[]; .nullspace_dim > 0 and .nullspace_dim < 256)' "$T/out" >/dev/null; then
  pass "each layer records its null space ($dims of 256)"
else fail "each layer records its null space" "$dims"; fi
expect_ok "show of the confined commit" env STAMP_STORE="$T/s5" "$STAMP" show 1
expect_grep "show says how far each update was confined" "^confined to the null space of the key statistics: [0-9]+ directions \(layer 0\), [0-9]+ directions \(layer 1\)$" "$T/out"
expect_ok "eval --json of the confined commit" env STAMP_STORE="$T/s5" "$STAMP" eval --json
es=$(jq '.scores.es' "$T/out"); ns=$(jq '.scores.ns' "$T/out")
if awk -v es="$es" -v ns="$ns" 'BEGIN { exit !(es >= 90 && ns >= 80) }'; then
  pass "the confined batch reaches ES >= 90 and NS >= 80 (ES $es, NS $ns)"
else fail "the confined batch reaches ES >= 90 and NS >= 80" "ES $es, NS $ns"; fi

# The next commit keeps the 24 committed edits where they are, except
# those of a subject it edits again (a second fact of subject 1; a
# subject's facts share its key): 23 kept.
awk -F'","' 'NR == 1 { print; next } { n[$1]++ } n[$1] == 2 && !done++' "$W/facts.csv" > second.csv
expect_ok "a second fact of a committed subject" env STAMP_STORE="$T/s5" "$STAMP" import second.csv
expect_ok "commit it" env STAMP_STORE="$T/s5" "$STAMP" commit --no-scores
expect_grep "the others are kept" "kept the 23 committed edits where they were" "$T/out"

# Rounds: each round after the first finds the target vectors again in
# the model the rounds before edited. At lambda 2000 one round writes a
# fifth of the batch's shift and misses the bars; four rounds reach them.
# The record lists every round; the diff is taken from the model before
# the first round, so revert restores it exactly. A batch the model says
# after a few rounds stops early.
rounds_commit() { # rounds_commit STORE ROUNDS: the batch of 24; sets es, ns
  STAMP_STORE="$1" "$STAMP" init --model "$W" >/dev/null 2>&1
  STAMP_STORE="$1" "$STAMP" import batch.csv >/dev/null 2>&1
  expect_ok "commit the batch of 24 in $2 round(s), lambda 2000" env STAMP_STORE="$1" \
    "$STAMP" commit --threads 2 --set mom2_update_weight=2000 --set rounds="$2"
  cp "$T/out" "$1.txt"
  expect_ok "eval after $2 round(s)" env STAMP_STORE="$1" "$STAMP" eval --json
  es=$(jq '.scores.es' "$T/out"); ns=$(jq '.scores.ns' "$T/out")
}
rounds_commit "$T/s6" 1; es1=$es; ns1=$ns
rounds_commit "$T/s7" 4; es4=$es; ns4=$ns
if awk -v a="$es1" -v b="$es4" -v ns="$ns4" 'BEGIN { exit !(a < 50 && b >= 90 && ns >= 80) }'; then
  pass "four rounds reach ES >= 90 and NS >= 80 where one does not (ES $es1 -> $es4, NS $ns4)"
else fail "four rounds reach the bars, one round does not" "ES $es1 -> $es4, NS $ns1 -> $ns4"; fi
expect_grep "the summary gives each round's target vectors" \
  "4 rounds; target vectors likely per round: [0-9]+ [0-9]+ [0-9]+ [0-9]+$" "$T/s7.txt"
expect_ok "show --json of the four rounds" env STAMP_STORE="$T/s7" "$STAMP" show 1 --json
if jq -e '(.commit.rounds | length) == 4 and .commit.hparams.rounds == 4 and
          (.commit.rounds | all(.z_likely > 0 and .shift_written > 0)) and
          (.commit.timings.rounds | length) == 4' "$T/out" >/dev/null; then
  pass "the record lists the four rounds"
else fail "the record lists the four rounds" "$(jq -c '.commit.rounds' "$T/out")"; fi
jq -c '[.commit.tensors[].before]' "$T/out" > before4.json
expect_ok "show of the four rounds" env STAMP_STORE="$T/s7" "$STAMP" show 1
expect_grep "show lists the rounds" "^rounds +4; targets likely per round: [0-9]+ [0-9]+ [0-9]+ [0-9]+$" "$T/out"
STAMP_STORE="$T/s6" "$STAMP" show 1 --json | jq -c '[.commit.tensors[].before]' > before1.json
expect_same "the diff is taken from the model before the first round" before1.json before4.json
expect_ok "revert the four rounds" env STAMP_STORE="$T/s7" "$STAMP" revert HEAD
expect_grep "revert is exact" "reverted commit 1 exactly" "$T/out"
# joint_layers: the layers' updates solved together, each layer taking
# the share its keys can write instead of a set 1 / (layers left). One
# round at lambda 2000 writes more of the shift than the layer-by-layer
# round of s6; with the default rounds the batch reaches the bars; the
# record says so; bad values and a null space together are refused.
STAMP_STORE="$T/sj1" "$STAMP" init --model "$W" >/dev/null 2>&1
STAMP_STORE="$T/sj1" "$STAMP" import batch.csv >/dev/null 2>&1
STAMP_STORE="$T/sj1" "$STAMP" queue --json > q-before.json
expect_exit "joint_layers 2 is bad usage" 2 env STAMP_STORE="$T/sj1" "$STAMP" commit --set joint_layers=2
expect_grep "the bad joint_layers is named" "'joint_layers' must be 0 or 1" "$T/err"
expect_exit "joint_layers with a null space is bad usage" 2 env STAMP_STORE="$T/sj1" "$STAMP" commit --set joint_layers=1 --set nullspace_threshold=0.01
expect_grep "the conflict is named" "joint_layers and nullspace_threshold cannot be used together" "$T/err"
STAMP_STORE="$T/sj1" "$STAMP" queue --json > q-after.json
expect_same "refused joint commits leave the queue as it was" q-before.json q-after.json
expect_ok "one joint round of the batch of 24, lambda 2000" env STAMP_STORE="$T/sj1" \
  "$STAMP" commit --no-scores --json --threads 2 --set mom2_update_weight=2000 --set rounds=1 --set joint_layers=1
joint1=$(jq '.shift_written' "$T/out")
seq1=$(STAMP_STORE="$T/s6" "$STAMP" show 1 --json | jq '.commit.shift_written')
if awk -v j="$joint1" -v s="$seq1" 'BEGIN { exit !(j > s + 0.05) }'; then
  pass "a joint round writes more of the shift than a layer-by-layer one ($seq1 -> $joint1)"
else fail "a joint round writes more of the shift" "layer by layer $seq1, joint $joint1"; fi
STAMP_STORE="$T/sj" "$STAMP" init --model "$W" >/dev/null 2>&1
STAMP_STORE="$T/sj" "$STAMP" import batch.csv >/dev/null 2>&1
expect_ok "joint commit of the batch of 24" env STAMP_STORE="$T/sj" "$STAMP" commit --threads 2 --set joint_layers=1
expect_ok "eval --json of the joint commit" env STAMP_STORE="$T/sj" "$STAMP" eval --json
es=$(jq '.scores.es' "$T/out"); ns=$(jq '.scores.ns' "$T/out")
if awk -v es="$es" -v ns="$ns" 'BEGIN { exit !(es >= 90 && ns >= 80) }'; then
  pass "the joint batch reaches ES >= 90 and NS >= 80 (ES $es, NS $ns)"
else fail "the joint batch reaches ES >= 90 and NS >= 80" "ES $es, NS $ns"; fi
expect_ok "show --json of the joint commit" env STAMP_STORE="$T/sj" "$STAMP" show 1 --json
if jq -e '.commit.hparams.joint_layers == 1 and (.commit.layers | all(.leverage > 0))' "$T/out" >/dev/null; then
  pass "the record has joint_layers and each layer's leverage"
else fail "the record has joint_layers and each layer's leverage" "$(jq -c '[.commit.hparams.joint_layers, [.commit.layers[].leverage]]' "$T/out")"; fi
expect_ok "show of the joint commit" env STAMP_STORE="$T/sj" "$STAMP" show 1
expect_grep "show says the layers were solved together" "^layers solved together \(joint_layers\)" "$T/out"
expect_ok "show of a layer-by-layer commit" env STAMP_STORE="$T/s6" "$STAMP" show 1
if grep -q "solved together" "$T/out"; then fail "show of a layer-by-layer commit does not say joint" "$(cat "$T/out")"
else pass "show of a layer-by-layer commit does not say joint"; fi
# Two edits to what the model already answers (target_new and
# target_true of two batch facts swapped): their target vectors soon need
# no step, and the rounds stop there. Two real edits may never get every
# NLL under nll_stop on a given build of world-tiny (on the one trained
# with OpenBLAS's AVX-512 kernels they stay near 0.08 for 50 rounds).
head -n 3 batch.csv | awk -F'","' 'BEGIN { OFS = "\",\"" } NR == 1 { print; next }
  { t = $3; $3 = $4; $4 = t; print }' > said.csv
STAMP_STORE="$T/s8" "$STAMP" init --model "$W" >/dev/null 2>&1
STAMP_STORE="$T/s8" "$STAMP" import said.csv >/dev/null 2>&1
expect_ok "two edits the model already says, in at most 50 rounds" env STAMP_STORE="$T/s8" "$STAMP" commit \
  --no-scores --json --set rounds=50
if jq -e '.rounds_stopped == "every fact was said" and (.rounds | length) < 50' "$T/out" >/dev/null; then
  pass "rounds stop once the model says every fact ($(jq '.rounds | length' "$T/out") rounds)"
else fail "rounds stop once the model says every fact" "$(jq -c '[.rounds_stopped, [.rounds[].z_likely]]' "$T/out")"; fi
# the stopping round found its target vectors but solved nothing: its z
# time is listed (solve 0), and the listed times add up to the totals
if jq -e '(.timings.rounds | length) == (.rounds | length) + 1 and
          .timings.rounds[-1].solve == 0 and .timings.rounds[-1].z > 0 and
          (([.timings.rounds[].z] | add) - .timings.z | fabs) < 1e-6 and
          (([.timings.rounds[].solve] | add) - .timings.solve | fabs) < 1e-6' "$T/out" >/dev/null; then
  pass "the stopping round's z time is listed and the rounds add up to the totals"
else fail "the stopping round's z time is listed" "$(jq -c '.timings' "$T/out")"; fi
# A later round that writes less than round_min_shift of the shift left
# (or, with the default 0, moves the targets further away) is solved
# again toward 1/2, 1/4, ... of the shift (round_halvings, 3 by default;
# here each writes less again) and then taken back: the model is the one
# the rounds before it made, to the bit.
STAMP_STORE="$T/s9" "$STAMP" init --model "$W" >/dev/null 2>&1
STAMP_STORE="$T/s9" "$STAMP" import batch.csv >/dev/null 2>&1
expect_ok "a round below round_min_shift is taken back" env STAMP_STORE="$T/s9" \
  "$STAMP" commit --threads 2 --no-scores --json --set mom2_update_weight=2000 \
  --set rounds=6 --set round_min_shift=0.9
expect_grep "the taken-back round is named" \
  "round 2 wrote less than round_min_shift \(shift written 0\.[0-9]+, and toward every share tried\); the commit keeps the first 1 round" "$T/err"
if jq -e '.rounds_stopped == "a round wrote less than round_min_shift" and
          (.rounds | length) == 1 and (.timings.rounds | length) == 2 and
          .timings.rounds[1].solve > 0' "$T/out" >/dev/null; then
  pass "the record keeps one round and lists the taken-back one's time"
else fail "the record keeps one round" "$(jq -c '[.rounds_stopped, .rounds, .timings.rounds]' "$T/out")"; fi
STAMP_STORE="$T/s6" "$STAMP" show 1 --json | jq -c '[.commit.tensors[].after]' > after1.json
STAMP_STORE="$T/s9" "$STAMP" show 1 --json | jq -c '[.commit.tensors[].after]' > after9.json
expect_same "the model is the one-round commit's, to the bit" after1.json after9.json
expect_ok "revert after a taken-back round" env STAMP_STORE="$T/s9" "$STAMP" revert HEAD
expect_grep "that revert is exact" "reverted commit 1 exactly" "$T/out"

# A round that moved the targets further away (forced: worlds this small
# never aim worse) is solved again toward half the shift, which writes
# some of it; it is kept with its share, and the rounds go on.
STAMP_STORE="$T/s10" "$STAMP" init --model "$W" >/dev/null 2>&1
STAMP_STORE="$T/s10" "$STAMP" import batch.csv >/dev/null 2>&1
expect_ok "a round that aims worse is solved again toward half the shift" \
  env STAMP_STORE="$T/s10" STAMP_TEST_WORSE_ROUND=3 "$STAMP" commit --threads 2 --no-scores --json
expect_grep "the halved round is named" \
  "round 3 moved the target vectors further away \(shift written -1\.00\); solved again toward 1/2 of the shift, it wrote 0\.[0-9]+" "$T/err"
if jq -e '(.rounds | length) == 6 and .rounds_stopped == null and
          ([.rounds[].step] == [1, 1, 0.5, 1, 1, 1]) and
          .rounds[2].shift_written > 0 and .rounds[2].shift_written < .rounds[1].shift_written and
          .hparams.round_halvings == 3' "$T/out" >/dev/null; then
  pass "the record keeps all 6 rounds, the third at step 1/2"
else fail "the record keeps all 6 rounds, the third at step 1/2" "$(jq -c '[.rounds_stopped, .rounds]' "$T/out")"; fi
STAMP_STORE="$T/s12" "$STAMP" init --model "$W" >/dev/null 2>&1
STAMP_STORE="$T/s12" "$STAMP" import batch.csv >/dev/null 2>&1
expect_ok "the same commit, plain output" \
  env STAMP_STORE="$T/s12" STAMP_TEST_WORSE_ROUND=3 "$STAMP" commit --threads 2 --no-scores
expect_grep "its summary names the halved round" "^  round 3 solved again toward 1/2 of its shift$" "$T/out"
STAMP_STORE="$T/s11" "$STAMP" init --model "$W" >/dev/null 2>&1
STAMP_STORE="$T/s11" "$STAMP" import batch.csv >/dev/null 2>&1
expect_ok "with round_halvings 0 the same round is taken back" \
  env STAMP_STORE="$T/s11" STAMP_TEST_WORSE_ROUND=3 "$STAMP" commit --threads 2 --no-scores --json --set round_halvings=0
if jq -e '(.rounds | length) == 2 and .rounds_stopped == "a round moved the targets further away"' "$T/out" >/dev/null; then
  pass "without halvings: 2 rounds kept, the reason"
else fail "without halvings: 2 rounds kept" "$(jq -c '[.rounds_stopped, (.rounds | length)]' "$T/out")"; fi
# The first round aiming worse is solved again the same way; with no
# share left to try it fails the commit, which changes nothing.
STAMP_STORE="$T/s13" "$STAMP" init --model "$W" >/dev/null 2>&1
STAMP_STORE="$T/s13" "$STAMP" import batch.csv >/dev/null 2>&1
expect_ok "a first round that aims worse is solved again toward half the shift" \
  env STAMP_STORE="$T/s13" STAMP_TEST_WORSE_ROUND=1 "$STAMP" commit --threads 2 --no-scores --json --set rounds=2
expect_grep "the halved first round is named" \
  "round 1 moved the target vectors further away \(shift written -1\.00\); solved again toward 1/2 of the shift, it wrote 0\.[0-9]+" "$T/err"
if jq -e '(.rounds | length) == 2 and ([.rounds[].step] == [0.5, 1]) and .rounds[0].shift_written > 0' "$T/out" >/dev/null; then
  pass "the record keeps both rounds, the first at step 1/2"
else fail "the record keeps both rounds, the first at step 1/2" "$(jq -c '[.rounds_stopped, .rounds]' "$T/out")"; fi
STAMP_STORE="$T/s14" "$STAMP" init --model "$W" >/dev/null 2>&1
STAMP_STORE="$T/s14" "$STAMP" import batch.csv >/dev/null 2>&1
STAMP_STORE="$T/s14" "$STAMP" queue --json > q-before.json
STAMP_STORE="$T/s14" "$STAMP" log --json > l-before.json
expect_exit "a first round that aims worse at every share fails the commit" 1 \
  env STAMP_STORE="$T/s14" STAMP_TEST_WORSE_ROUND=1 "$STAMP" commit --threads 2 --no-scores --set round_halvings=0
expect_grep "the failure says what happened and what may help" \
  "the update moved the target vectors further away \(shift written -1\.00\); nothing was committed and the queue is as it was: a larger mom2_update_weight" "$T/err"
STAMP_STORE="$T/s14" "$STAMP" queue --json > q-after.json
STAMP_STORE="$T/s14" "$STAMP" log --json > l-after.json
expect_same "it leaves the queue as it was" q-before.json q-after.json
expect_same "and the log" l-before.json l-after.json
expect_ok "show of it" env STAMP_STORE="$T/s10" "$STAMP" show 1
expect_grep "show names the halved round" "^ +round 3 solved again toward 1/2 of its shift$" "$T/out"
expect_ok "revert after a halved round" env STAMP_STORE="$T/s10" "$STAMP" revert HEAD
expect_grep "that revert is exact too" "reverted commit 1 exactly" "$T/out"

# Context prefixes (world-tiny's defaults have none): the record keeps
# the ones sampled; the same seed samples them again in another store,
# another seed others
head -n 7 batch.csv > few.csv
for s in p1 p2 p3; do
  STAMP_STORE="$T/$s" "$STAMP" init --model "$W" >/dev/null 2>&1
  STAMP_STORE="$T/$s" "$STAMP" import few.csv >/dev/null 2>&1
done
pre_opts=(--no-scores --set rounds=1 --set n_prefixes=3 --set prefix_tokens=4)
expect_ok "a commit with 3 context prefixes" env STAMP_STORE="$T/p1" "$STAMP" commit "${pre_opts[@]}"
STAMP_STORE="$T/p1" "$STAMP" show --json 1 | jq -c '.commit.prefixes' > pre1.json
if jq -e 'length == 3 and all(type == "string" and length > 0)' pre1.json >/dev/null; then
  pass "the record keeps the 3 prefixes ($(head -c 120 pre1.json))"
else fail "the record keeps the 3 prefixes" "$(head -c 300 pre1.json)"; fi
STAMP_STORE="$T/p2" "$STAMP" commit "${pre_opts[@]}" >/dev/null 2>&1
STAMP_STORE="$T/p2" "$STAMP" show --json 1 | jq -c '.commit.prefixes' > pre2.json
expect_same "the same seed samples the same prefixes" pre1.json pre2.json
STAMP_STORE="$T/p3" "$STAMP" commit "${pre_opts[@]}" --set seed=99 >/dev/null 2>&1
STAMP_STORE="$T/p3" "$STAMP" show --json 1 | jq -c '.commit.prefixes' > pre3.json
if [ -s pre3.json ] && ! cmp -s pre1.json pre3.json; then pass "another seed samples others"
else fail "another seed samples others" "$(head -c 200 pre3.json)"; fi
STAMP_STORE="$T/s10" "$STAMP" show --json 1 | jq -c '.commit.prefixes' > pre0.json
expect_grep "a commit without prefixes records none" '^null$' pre0.json

# Bad usage
expect_exit "unknown method is usage" 2 "$STAMP" commit --method nope
expect_exit "bad --limit is usage" 2 "$STAMP" commit --limit 0
expect_ok "commit --help" "$STAMP" commit --help
finish
