# t40-diff-revert: diff, revert, reset, export and fsck on real commits
# (the commit command's MEMIT on a tiny random GPT-2 made by
# stamp-fixture, so this runs in seconds): reverting HEAD and resetting
# give back the exact bytes of earlier exports, fact states follow,
# commits off the chain are refused, an older commit is reverted by a new
# commit, fsck passes on every good state and lists damage, and every
# failed command leaves the store as it was.
REPO=$(cd "$(dirname "$0")/../.." && pwd)
. "$(dirname "$0")/lib.sh"

fixture_model_and_corpus || { finish; exit 1; }
cat > a.csv <<'EOF'
subject,prompt,target_new,target_true
Alice Smith,{} plays the,guitar,piano
Bob Jones,{} works for,Apple,Google
EOF
cat > b.csv <<'EOF'
subject,prompt,target_new,target_true
Carol White,{} was born in,Rome,Paris
Alice Smith,{} plays the,violin,piano
EOF
cat > c.csv <<'EOF'
subject,prompt,target_new,target_true
Dan Brown,{} speaks,French,English
EOF
commit() { "$STAMP" commit --no-scores --corpus corpus.txt "$@"; }
# the state a failed command must not change
snapshot() { { "$STAMP" log --json; "$STAMP" queue --json; "$STAMP" diff base --json; } > "$1" 2>&1; }

expect_ok "init" "$STAMP" init --model model

# ---- an empty store
expect_ok "diff with no commits" "$STAMP" diff
expect_grep "nothing to show" "facts: 0 added, 0 changed, 0 reverted" "$T/out"
expect_ok "fsck of a new store" "$STAMP" fsck
expect_exit "revert with no commits fails" 1 "$STAMP" revert HEAD
expect_grep "the base cannot be reverted" "base model cannot be reverted" "$T/err"
expect_exit "reset to a commit that does not exist" 1 "$STAMP" reset 5
expect_grep "unknown commit named" "no commit 5" "$T/err"
expect_ok "export of the unedited model" "$STAMP" export exp0
expect_same "it is the base file, byte for byte" model/model.safetensors exp0/model.safetensors
expect_same "config.json copied" model/config.json exp0/config.json
expect_same "vocab.json copied" model/vocab.json exp0/vocab.json
expect_same "merges.txt copied" model/merges.txt exp0/merges.txt

# ---- two commits; the second supersedes a fact of the first
"$STAMP" import a.csv >/dev/null
expect_ok "commit 1" commit -m one
"$STAMP" export exp1 >/dev/null
"$STAMP" import b.csv >/dev/null
expect_ok "commit 2" commit -m two
"$STAMP" export exp2 >/dev/null
expect_ok "fsck after two commits" "$STAMP" fsck
expect_grep "fsck replays the chain" "2 commits \(2 on the chain" "$T/out"
expect_ok "diff (HEAD's parent to HEAD)" "$STAMP" diff
expect_grep "diff names its ends" "diff commit 1 -> commit 2" "$T/out"
expect_grep "one fact added, one changed" "facts: 1 added, 1 changed, 0 reverted" "$T/out"
expect_grep "the change of target is shown" "Alice Smith plays the -> violin, was guitar" "$T/out"
expect_grep "the edited tensor is listed" "h\.[0-9]+\.mlp\.c_proj\.weight" "$T/out"
expect_ok "diff --json" "$STAMP" diff 1 2 --json
cp "$T/out" d12.json
rank=$(jq '.tensors[0].rank' d12.json); rel=$(jq '.tensors[0].rel_norm' d12.json)
if [ "$rank" -ge 1 ] && [ "$rank" -le 2 ] && awk -v r="$rel" 'BEGIN { exit !(r > 0 && r < 1e6) }'; then
  pass "diff --json: rank $rank (2 facts), relative change $rel"
else fail "diff --json numbers" "rank $rank rel $rel"; fi
expect_grep "diff --json lists the changed fact" '"from_target": " guitar"' d12.json
expect_ok "diff base HEAD" "$STAMP" diff base HEAD
expect_grep "three facts in effect" "facts: 3 added, 0 changed" "$T/out"
expect_ok "diff backwards (2 to 1)" "$STAMP" diff 2 1
expect_grep "backwards: one reverted, one changed back" "facts: 0 added, 1 changed, 1 reverted" "$T/out"

# ---- revert HEAD: exact
expect_ok "revert HEAD" "$STAMP" revert HEAD
expect_grep "revert says it was exact" "reverted commit 2 exactly: HEAD is now 1" "$T/out"
expect_ok "export after the revert" "$STAMP" export exp1b
expect_same "tensors are those of commit 1, bit for bit" exp1/model.safetensors exp1b/model.safetensors
expect_ok "fsck after revert" "$STAMP" fsck
expect_ok "show the facts of commit 1" "$STAMP" show "Alice Smith" --json
st=$(jq -r '.versions[] | select(.target_new == " guitar") | "\(.state) \(.commit)"' "$T/out")
st2=$(jq -r '.versions[] | select(.target_new == " violin" and .state != "superseded") | "\(.state) \(.commit)"' "$T/out")
if [ "$st" = "committed 1" ] && [ "$st2" = "reverted 2" ]; then
  pass "the superseded version is committed again, commit 2's is reverted"
else fail "fact states after revert" "guitar: $st; violin: $st2"; fi
expect_ok "diff base HEAD after the revert" "$STAMP" diff base --json
if [ "$(jq '.facts.added | length' "$T/out")" = 2 ] &&
   jq -e '.facts.added[] | select(.subject == "Alice Smith") | .target == " guitar"' "$T/out" >/dev/null; then
  pass "facts in effect: commit 1's two"
else fail "facts in effect after revert" "$(head -c 400 "$T/out")"; fi

# ---- refusals change nothing
snapshot before.txt
expect_exit "reset to the reverted commit is refused" 1 "$STAMP" reset 2
expect_grep "refusal explains the chain" "commit 2 is not on the current chain" "$T/err"
expect_exit "revert of the reverted commit is refused" 1 "$STAMP" revert 2
expect_exit "revert of the base is refused" 1 "$STAMP" revert base
expect_exit "a bad commit name" 1 "$STAMP" revert HEAD~9
snapshot after.txt
expect_same "failed commands changed nothing" before.txt after.txt

# ---- an older commit is reverted by a new commit
"$STAMP" import c.csv >/dev/null
expect_ok "commit 3" commit -m three
"$STAMP" export exp3 >/dev/null
expect_ok "revert the older commit 1" "$STAMP" revert 1
expect_grep "a revert commit is made" "commit 4 reverts commit 1: HEAD is now 4" "$T/out"
expect_ok "fsck after a semantic revert" "$STAMP" fsck
expect_ok "log shows the revert commit" "$STAMP" log --json
expect_grep "log has commit 4" '"id": 4' "$T/out"
expect_ok "diff 3 4" "$STAMP" diff 3 4 --json
if [ "$(jq '.facts.reverted | length' "$T/out")" = 2 ] && [ "$(jq '.facts.added | length' "$T/out")" = 0 ] &&
   [ "$(jq '.tensors | length' "$T/out")" -ge 1 ]; then
  pass "the revert commit takes commit 1's two facts out and changes tensors"
else fail "diff 3 4" "$(head -c 400 "$T/out")"; fi
expect_exit "reverting commit 1 twice is refused" 1 "$STAMP" revert 1
expect_grep "already reverted is explained" "already reverted by commit 4" "$T/err"

# ---- reset: undo the revert commit exactly, then everything
expect_ok "reset to commit 3" "$STAMP" reset 3
expect_ok "export after the reset" "$STAMP" export exp3b
expect_same "reset undoes the revert commit bit for bit" exp3/model.safetensors exp3b/model.safetensors
expect_ok "reset 3 again is a no-op" "$STAMP" reset 3
expect_grep "nothing to do" "already commit 3" "$T/out"
expect_ok "fsck after reset" "$STAMP" fsck
expect_ok "reset base" "$STAMP" reset base
expect_grep "reset reports the commits undone" "HEAD is now the base model \(2 commits undone\)" "$T/out"
expect_ok "export at the base" "$STAMP" export exp0b
expect_same "reset base gives the base file back" model/model.safetensors exp0b/model.safetensors
expect_ok "status at the base" "$STAMP" status --json
expect_ok "fsck at the base" "$STAMP" fsck --json
expect_grep "fsck --json ok" '"ok": true' "$T/out"
expect_ok "diff 1 3 across reset-away commits" "$STAMP" diff 1 3 --json
expect_grep "diff rebuilds commits off the chain" '"rank"' "$T/out"

# ---- export refusals
expect_exit "export into a non-empty directory" 1 "$STAMP" export exp1
expect_grep "non-empty is explained" "not empty \(use --force" "$T/err"
expect_ok "export --force replaces" "$STAMP" export exp1 --force
expect_same "forced export is the current (base) model" model/model.safetensors exp1/model.safetensors
expect_exit "export over the base model is refused" 1 "$STAMP" export model --force
expect_grep "base directory is named" "base model's directory" "$T/err"
expect_same "base model untouched" model/model.safetensors exp0/model.safetensors
: > afile
expect_exit "export onto a file" 1 "$STAMP" export afile
ls -d exp1.tmp-* >/dev/null 2>&1 && fail "no temporary directories left" || pass "no temporary directories left"

# ---- fsck lists damage to the base model
printf '\x01' | dd of=model/model.safetensors bs=1 seek=$(( $(stat -c %s model/model.safetensors) - 100 )) conv=notrunc 2>/dev/null
expect_exit "fsck finds a changed base model" 1 "$STAMP" fsck
expect_grep "the changed base is a problem" "problem: .*changed behind the store's back" "$T/out"
expect_grep "fsck's summary" "fsck found [0-9]+ problem" "$T/err"

# ---- usage
expect_exit "revert without a commit" 2 "$STAMP" revert
expect_exit "reset without a commit" 2 "$STAMP" reset
expect_exit "diff with three arguments" 2 "$STAMP" diff 1 2 3
expect_exit "export without a directory" 2 "$STAMP" export
expect_exit "fsck with an argument" 2 "$STAMP" fsck now
expect_exit "unknown option" 2 "$STAMP" reset --hard 1
for c in diff revert reset export fsck; do expect_ok "$c --help" "$STAMP" "$c" --help; done
finish
