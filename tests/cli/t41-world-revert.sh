# t41-world-revert: on the tiny world model, what the model says is put
# back exactly by revert and reset: next-token predictions (all
# log-probabilities, printed to 6+ digits) before a commit and after its
# revert are identical, the commit changes them, an exported model
# predicts exactly what the store's current model does, and fsck passes
# at every step.
. "$(dirname "$0")/lib.sh"

W=$WORLD_TINY
expect_ok "init on world-tiny" "$STAMP" init --model "$W"
# three facts of the world, asking for their counterfactual targets
sed -n '1,4p' "$W/facts.csv" > batch.csv
prompt=$(sed -n 2p "$W/facts.csv" | awk -F'","' '{ gsub(/^"/, "", $1); p = $2; sub(/\{\}/, $1, p); print p }')
pred() { "$STAMP" predict --top 20 --json "$prompt" "$@"; }

pred > p0.json 2>&1 || fail "predict before any commit" "$(head -c 300 p0.json)"
expect_grep "predict gives log-probabilities" '"logprob"' p0.json
expect_ok "import three edits" "$STAMP" import batch.csv
expect_ok "commit them" "$STAMP" commit --no-scores -m "three edits"
pred > p1.json 2>&1
if cmp -s p0.json p1.json; then fail "the commit changes the predictions" "identical"
else pass "the commit changes the predictions"; fi
expect_ok "fsck after the commit" "$STAMP" fsck
expect_ok "export the edited model" "$STAMP" export edited
pred --model edited > p1e.json 2>&1
expect_same "the exported model predicts as the store's current model" p1.json p1e.json
expect_ok "diff shows the commit" "$STAMP" diff --json
if [ "$(jq '.facts.added | length' "$T/out")" = 3 ] && [ "$(jq '.tensors | length' "$T/out")" -ge 1 ] &&
   [ "$(jq '.tensors[0].rank' "$T/out")" -ge 1 ] && [ "$(jq '.tensors[0].rank' "$T/out")" -le 3 ]; then
  pass "diff: 3 facts, rank between 1 and 3 ($(jq -c '[.tensors[] | .rank]' "$T/out"))"
else fail "diff of the commit" "$(head -c 400 "$T/out")"; fi

expect_ok "revert it" "$STAMP" revert HEAD
pred > p2.json 2>&1
expect_same "after revert the predictions are those of the base model" p0.json p2.json
expect_ok "fsck after revert" "$STAMP" fsck

# twice more, then reset to the base: exact again
expect_ok "re-import the reverted edits" "$STAMP" import batch.csv
expect_ok "commit again" "$STAMP" commit --no-scores -m again
pred > p3.json 2>&1
expect_grep "predict after the second commit works" '"logprob"' p3.json
sed -n '1p;5,6p' "$W/facts.csv" > more.csv
expect_ok "import two more" "$STAMP" import more.csv
expect_ok "second commit" "$STAMP" commit --no-scores -m more
expect_ok "reset to the first" "$STAMP" reset HEAD~1
pred > p4.json 2>&1
expect_same "reset HEAD~1 gives the previous commit's predictions" p3.json p4.json
expect_ok "reset base" "$STAMP" reset base
pred > p5.json 2>&1
expect_same "reset base gives the base model's predictions" p0.json p5.json
expect_ok "fsck at the end" "$STAMP" fsck
finish
