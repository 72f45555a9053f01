# t52-stats-steps: `stamp stats` stores the key statistics step by step
# (--checkpoint N lines, each step a write transaction of its own), so a
# run that is killed keeps its finished steps and the next run goes on
# from there; the sums come out the same bits whether the run was cut
# into steps or not, and whether it was killed and resumed. The kill
# lands between steps: STAMP_TEST_STEP_SLEEP (seconds, lib/memit/
# keystats.c) pauses the run after each step for the test to find a
# stored step and kill it there.
. "$(dirname "$0")/lib.sh"

W=$WORLD_TINY
lines=$(grep -c . "$W/corpus.txt")
sums() { "$STAMP" stats --json | jq -c '[.[] | [.layer, .sequences, .sum_hash]]'; }

export STAMP_STORE="$T/whole"
"$STAMP" init --model "$W" > /dev/null
expect_ok "stats in one transaction (--checkpoint 0)" "$STAMP" stats --corpus "$W/corpus.txt" --checkpoint 0
sums > whole.json
if jq -e --argjson n "$lines" 'length == 2 and all(.[1] == $n)' whole.json > /dev/null; then
  pass "every layer covers the $lines corpus lines"
else fail "every layer covers the corpus" "$(cat whole.json)"; fi

export STAMP_STORE="$T/steps"
"$STAMP" init --model "$W" > /dev/null
expect_ok "stats in steps of 100 lines" "$STAMP" stats --corpus "$W/corpus.txt" --checkpoint 100
sums > steps.json
expect_same "in steps: the same sums, bit for bit" whole.json steps.json

# killed between steps, then run again
export STAMP_STORE="$T/killed"
"$STAMP" init --model "$W" > /dev/null
STAMP_TEST_STEP_SLEEP=3 "$STAMP" stats --corpus "$W/corpus.txt" --checkpoint 150 > /dev/null 2>&1 &
pid=$!
done_lines=0
for _ in $(seq 1 600); do
  done_lines=$("$STAMP" stats --json 2>/dev/null | jq '[.[] | .sequences // 0] | min' 2>/dev/null)
  [ "${done_lines:-0}" -gt 0 ] && break
  sleep 0.1
done
kill -9 "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
if [ "${done_lines:-0}" -gt 0 ] && [ "$done_lines" -lt "$lines" ]; then
  pass "a killed run kept its finished steps ($done_lines of $lines lines)"
else fail "a killed run kept its finished steps" "${done_lines:-none} of $lines"; fi
expect_ok "fsck after the kill" "$STAMP" fsck
"$STAMP" stats --json | jq -c '[.[] | .sequences]' > kept.json
if jq -e --argjson d "$done_lines" 'all(. == $d)' kept.json > /dev/null; then
  pass "both layers hold the same $done_lines lines"
else fail "both layers hold the same lines" "$(cat kept.json)"; fi
expect_ok "the next run goes on" env STAMP_PROGRESS=1 "$STAMP" stats --corpus "$W/corpus.txt" --checkpoint 150
rest=$((lines - done_lines))
expect_grep "it counts only the lines left ($rest)" "key statistics +\[#+\] $rest/$rest" "$T/err"
sums > resumed.json
expect_same "killed and resumed: the same sums, bit for bit" whole.json resumed.json

# nothing left to do: nothing computed, the same sums
expect_ok "a run with nothing left" "$STAMP" stats --corpus "$W/corpus.txt"
sums > again.json
expect_same "... changes nothing" whole.json again.json

expect_exit "--checkpoint wants a number" 2 "$STAMP" stats --corpus "$W/corpus.txt" --checkpoint many
expect_grep "... and says so" "checkpoint wants a number" "$T/err"
expect_ok "stats --help names --checkpoint" "$STAMP" stats --help
expect_grep "... with what it does" "checkpoint N +store the sums every N lines" "$T/out"
finish
