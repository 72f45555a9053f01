# t70-demo: `make demo`'s story runs start to end on world-tiny, its
# watched facts are answered the new way after the commit and the old way
# after the revert, and edits/demo.csv still fits the world (every subject
# is one of the world's).
here=$(cd "$(dirname "$0")/../.." && pwd)
. "$here/tests/cli/lib.sh"

missing=0; seen=0
while IFS= read -r subject; do
  seen=$((seen + 1))
  grep -qF "\"$subject\"" "$WORLD_TINY/facts.csv" || { missing=$((missing + 1)); echo "not in the world: $subject" >&2; }
done < <(tail -n +2 "$here/edits/demo.csv" | cut -d, -f1 | sed 's/^"//; s/"$//')
if [ "$seen" -ge 20 ] && [ "$missing" -eq 0 ]; then pass "every demo subject is in world-tiny ($seen)"
else fail "every demo subject is in world-tiny" "$missing of $seen missing"; fi

expect_ok "the demo runs" env DEMO_STORE="$T/demo" STAMP="$STAMP" WORLD="$WORLD_TINY" \
  STAMP_PROGRESS=0 bash "$here/tools/demo.sh"
cp "$T/out" story.txt
# each watched line: PROMPT -> ANSWER (old answer: OLD, new: NEW)
awk '/== What the model answers after the commit/ {s = 1; next} /== / {s = 0}
     s && /old answer:/ { n++; a = $0; sub(/.*-> */, "", a); sub(/ *\(old.*/, "", a);
       nw = $0; sub(/.*new: */, "", nw); sub(/\).*/, "", nw); if (a == nw) ok++ }
     END { exit !(n == 3 && ok == 3) }' story.txt &&
  pass "after the commit the watched facts give the new answers" ||
  fail "after the commit the watched facts give the new answers" "$(grep -A4 'after the commit' story.txt)"
awk '/== Revert the commit/ {s = 1; next} /== Check the store/ {s = 0}
     s && /old answer:/ { n++; a = $0; sub(/.*-> */, "", a); sub(/ *\(old.*/, "", a);
       old = $0; sub(/.*old answer: */, "", old); sub(/, new:.*/, "", old); if (a == old) ok++ }
     END { exit !(n == 3 && ok == 3) }' story.txt &&
  pass "after the revert they give the old answers again" ||
  fail "after the revert they give the old answers again" "$(grep -A5 'Revert the commit' story.txt)"
expect_grep "fsck is clean at the end" "^ok$" story.txt
expect_exit "the demo refuses a store it did not make" 1 env DEMO_STORE="$T/other" \
  STAMP="$STAMP" WORLD="$WORLD_TINY" bash -c "mkdir -p '$T/other' && bash '$here/tools/demo.sh'"
finish
