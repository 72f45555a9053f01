# t42-sequential: a history of 20 real MEMIT commits on the tiny world
# model (3 facts each, every fact about a subject no other fact in the
# history has; each commit keeps the edits committed before it):
# `reset 10` brings back exactly the tensors recorded at commit 10 (the
# recorded "after" hashes, recomputed from an export, and the bytes of
# the model exported right after commit 10), `reset base` exactly the
# base model's bytes; fsck passes at each step. Unknown commit ids, a
# reset to a commit a revert removed or a reset moved past, and an
# export into a non-empty directory fail clearly (exit 1) and change
# nothing.
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
. "$HERE/crashlib.sh"

# a private copy of the world: a rebuild of build/world-tiny meanwhile
# must not look like a base model changed behind the store's back
start=$SECONDS
mkdir world && for f in config.json model.safetensors vocab.json merges.txt corpus.txt facts.csv; do
  cp "$WORLD_TINY/$f" world/ || { fail "a copy of the world model"; finish; exit 1; }
done
W=$T/world
expect_ok "init on world-tiny" "$STAMP" init --model "$W"
expect_ok "key statistics, once" "$STAMP" stats --corpus "$W/corpus.txt"

# facts.csv holds 3 facts per subject, subject after subject (64 of
# them). Commit k takes one fact of each of the subjects 3k-2, 3k-1, 3k:
# 60 subjects, none in two commits, none twice in one.
row() { sed -n "$(($1 + 1))p" "$W/facts.csv"; }   # data row N
batch() {
  local k=$1 g
  sed -n 1p "$W/facts.csv"
  for g in $((3 * k - 2)) $((3 * k - 1)) $((3 * k)); do
    row $((3 * (g - 1) + 1 + (k - 1) % 3))
  done
}
subject_of() { batch "$1" | sed -n "$(($2 + 1))p" | cut -d'"' -f2; }

commits_ok=0
for k in $(seq 1 20); do
  batch "$k" > "b$k.csv"
  if "$STAMP" import "b$k.csv" > out 2>err &&
     "$STAMP" commit --no-scores -m "batch $k" > out 2>>err &&
     grep -q "^commit $k: 3 facts" out; then
    commits_ok=$((commits_ok + 1))
  else
    fail "commit $k" "$(cat out err | head -c 400)"
  fi
  if [ "$k" = 10 ]; then
    "$STAMP" export at10 > /dev/null 2>&1
    "$STAMP" log --json > log10.json
    "$STAMP" status --json | jq -S 'del(.size_bytes, .disk_bytes, .space, .off_chain)' > status10.json
  fi
done
[ "$commits_ok" = 20 ] && pass "20 sequential commits of 3 facts ($((SECONDS - start)) s with the statistics)"
"$STAMP" log --json > log20.json
if [ "$(jq -c '[.head, [.commits[].id]]' log20.json)" = "[20,[20,19,18,17,16,15,14,13,12,11,10,9,8,7,6,5,4,3,2,1]]" ]; then
  pass "log lists commits 20 down to 1"
else fail "log lists commits 20 down to 1" "$(jq -c '[.head, [.commits[].id]]' log20.json)"; fi
# each commit kept the edits committed before it (protect_committed)
kept=$(for k in 1 2 10 20; do "$STAMP" show "$k" --json | jq -r '.commit.kept'; done | tr '\n' ' ')
if [ "$kept" = "0 3 27 57 " ]; then pass "commit k kept the 3(k-1) edits before it"
else fail "commit k kept the 3(k-1) edits before it" "commits 1 2 10 20 kept: $kept"; fi
# the recorded hashes form a chain: for every tensor, each commit that
# edits it starts where the previous one that did ended, the first from
# the base model's tensor
jq -r '[.commits[] | .id as $id | .tensors | to_entries[] |
        {t: .key, id: $id, before: .value.before, after: .value.after}]
  | group_by(.t)[] | sort_by(.id) | [.[] | .before, .after] as $h
  | ($h[1:-1] as $a | [range(0; $a | length; 2) | select($a[.] != $a[. + 1])] | length) as $breaks
  | "\(.[0].t) \($h[0]) \($breaks) \(length)"' log20.json > chains.txt
edited=() chain_bad=
while read -r t first breaks n; do
  edited+=("$t")
  b=$(tensor_xxh "$W/model.safetensors" "$t")
  [ "$breaks" = 0 ] && [ "$first" = "$b" ] || chain_bad+="$t: $breaks breaks over $n commits, first before $first, base $b; "
done < chains.txt
if [ ${#edited[@]} -ge 1 ] && [ -z "$chain_bad" ]; then
  pass "the recorded hashes chain from the base tensors (${#edited[@]} tensors: $(awk '{ printf "%s%s x%s", (NR > 1 ? ", " : ""), $1, $4 }' chains.txt))"
else fail "the recorded hashes chain from the base tensors" "${chain_bad:-no tensor edited}"; fi
expect_ok "fsck after 20 commits" "$STAMP" fsck --json
expect_grep "fsck: ok with a chain of 20" '"chain": *20' "$T/out"
"$STAMP" export at20 > /dev/null 2>&1
if cmp -s at10/model.safetensors at20/model.safetensors; then
  fail "commits 11-20 change the model" "the exports at 10 and 20 are identical"
else pass "commits 11-20 change the model"; fi

subjects=("$(subject_of 1 1)" "$(subject_of 10 2)" "$(subject_of 11 1)" "$(subject_of 20 3)")
# same NAME CMD...: CMD fails with exit 1 and a message, the state stays
same() {
  local name=$1; shift
  state_snapshot snap.before "${subjects[@]}"
  expect_exit "$name: exit 1" 1 "$@"
  if [ -s "$T/err" ] && grep -q '^stamp: error: ' "$T/err"; then pass "$name: says why ($(head -n 1 "$T/err"))"
  else fail "$name: says why" "stderr: $(head -c 300 "$T/err")"; fi
  state_snapshot snap.after "${subjects[@]}"
  expect_same "$name: nothing changed" snap.before snap.after
}

# reset 10: exactly the tensors of commit 10
expect_ok "reset 10" "$STAMP" reset 10
expect_ok "fsck after reset 10" "$STAMP" fsck --json
if [ "$(jq -c '[.ok, .head]' "$T/out")" = "[true,10]" ]; then pass "fsck: ok, HEAD 10"
else fail "fsck: ok, HEAD 10" "$(head -c 300 "$T/out")"; fi
"$STAMP" export r10 > /dev/null 2>&1
expect_same "the model after reset 10 is byte for byte the one exported at commit 10" \
  at10/model.safetensors r10/model.safetensors
"$STAMP" show 10 --json > show10.json
n_t=0 n_ok=0
for t in $(jq -r '.commit.tensors | keys[]' show10.json); do
  n_t=$((n_t + 1))
  want=$(jq -r --arg t "$t" '.commit.tensors[$t].after' show10.json)
  got=$(tensor_xxh r10/model.safetensors "$t")
  if [ "$got" = "$want" ]; then n_ok=$((n_ok + 1))
  else fail "$t after reset 10" "xxh3-128 $got, commit 10 recorded $want"; fi
done
if [ "$n_t" -ge 1 ] && [ "$n_ok" = "$n_t" ]; then
  pass "every tensor of commit 10 hashes to its recorded 'after' ($n_t, recomputed from the export)"
fi
"$STAMP" log --json > log.json
expect_same "log after reset 10 is the log at commit 10" log10.json log.json
"$STAMP" status --json | jq -S 'del(.size_bytes, .disk_bytes, .space, .off_chain)' > status.json
expect_same "status counts after reset 10 are those at commit 10" status10.json status.json
st11=$("$STAMP" show "$(subject_of 11 1)" --json | jq -r '[.versions[].state] | join(",")')
st10=$("$STAMP" show "$(subject_of 10 2)" --json | jq -r '[.versions[].state] | join(",")')
if [ "$st11" = reverted ] && [ "$st10" = committed ]; then
  pass "a fact of commit 11 is reverted, one of commit 10 committed"
else fail "fact states after reset 10" "commit 11's: $st11, commit 10's: $st10"; fi
same "reset to commit 15, reset away" "$STAMP" reset 15

# a commit a revert removed cannot be reset to
expect_ok "revert HEAD (commit 10)" "$STAMP" revert HEAD
expect_ok "fsck after the revert" "$STAMP" fsck
same "reset to commit 10, which the revert removed" "$STAMP" reset 10
same "revert commit 10 again" "$STAMP" revert 10

# unknown commits
same "reset 99" "$STAMP" reset 99
same "revert 99" "$STAMP" revert 99
same "reset HEAD~50" "$STAMP" reset HEAD~50
state_snapshot snap.before "${subjects[@]}"
expect_exit "reset to a bad name is bad usage" 2 "$STAMP" reset 10x
state_snapshot snap.after "${subjects[@]}"
expect_same "reset to a bad name: nothing changed" snap.before snap.after
same "show 99" "$STAMP" show 99
same "diff 99" "$STAMP" diff 99
grep -q "99" "$T/err" && pass "the error names the commit ('$(head -n 1 "$T/err")')" ||
  fail "the error names the commit" "$(head -c 300 "$T/err")"

# export into a non-empty directory
mkdir full && echo keep > full/notes.txt && echo old > full/model.safetensors
(cd full && sha256sum * > ../full.sum)
same "export into a non-empty directory" "$STAMP" export full
expect_grep "the refusal names the directory and --force" "'full'.*--force" "$T/err"
if (cd full && sha256sum -c --quiet ../full.sum) && [ "$(ls full | wc -l)" = 2 ]; then
  pass "the directory's files are untouched"
else fail "the directory's files are untouched" "$(ls full)"; fi
expect_ok "export --force into it" "$STAMP" export full --force
grep -q keep full/notes.txt && [ "$(stat -c %s full/model.safetensors)" = "$(stat -c %s "$W/model.safetensors")" ] &&
  pass "--force writes the model and leaves other files" || fail "--force writes the model and leaves other files"
same "export into the base model's directory" "$STAMP" export "$W" --force

# reset base: the base model's exact bytes
expect_ok "reset base" "$STAMP" reset base
expect_ok "fsck after reset base" "$STAMP" fsck --json
if [ "$(jq -c '[.ok, .head]' "$T/out")" = "[true,0]" ]; then pass "fsck: ok, HEAD 0"
else fail "fsck: ok, HEAD 0" "$(head -c 300 "$T/out")"; fi
"$STAMP" export rbase > /dev/null 2>&1
expect_same "the model after reset base is byte for byte the base file" \
  "$W/model.safetensors" rbase/model.safetensors
n_ok=0
for t in "${edited[@]}"; do
  [ "$(tensor_xxh rbase/model.safetensors "$t")" = "$(tensor_xxh "$W/model.safetensors" "$t")" ] &&
    [ "$(tensor_xxh rbase/model.safetensors "$t")" = "$(awk -v t="$t" '$1 == t { print $2 }' chains.txt)" ] &&
    n_ok=$((n_ok + 1))
done
[ "$n_ok" = ${#edited[@]} ] &&
  pass "every edited tensor hashes to the base's and its first commit's 'before' ($n_ok)" ||
  fail "edited tensors after reset base" "$n_ok of ${#edited[@]} hash to the base"
"$STAMP" status --json > status.json
if [ "$(jq -c '[.head, .queued, .committed]' status.json)" = "[0,0,0]" ]; then
  pass "status: HEAD 0, nothing queued or committed"
else fail "status after reset base" "$(jq -c . status.json)"; fi
same "reset 5 after reset base" "$STAMP" reset 5
echo "t42: $((SECONDS - start)) s"
finish
