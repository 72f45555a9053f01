# t44-real-positions: a model with GPT-2's real context of 1,024
# positions (fewer layers and a narrower width, so that it stays quick)
# runs stats and a commit in a workspace sized by the corpus and the
# edits, not by n_positions. Under an address-space limit that a
# workspace of 32 sequences of 1,024 tokens exceeds many times over
# (its attention buffer alone: 4 layers x 32 x 4 heads x 1024 x 1024
# floats = 2 GiB), stats and commit still run, as they do on a model of
# 64 positions. (Before the workspace followed the corpus, both failed
# there with "no memory for a gpt2 workspace of 32 x 1024 tokens".)
# Last, a corpus line longer than the 64 positions: cut to 64 tokens,
# with a note.
REPO=$(cd "$(dirname "$0")/../.." && pwd)
. "$(dirname "$0")/lib.sh"

fixture() {  # DIR POSITIONS
  "$BUILD/tools/stamp-fixture" model --out "$1" --layers 4 --embd 64 --seed 5 \
    --positions "$2" --vocab "$REPO/tests/data/gpt2-vocab" >/dev/null
}
fixture m1024 1024 && fixture m64 64 && pass "fixture models of 1,024 and 64 positions" ||
  { fail "fixture models"; finish; exit 1; }
[ "$(jq .n_positions m1024/config.json)" = 1024 ] && pass "the model has 1,024 positions" ||
  fail "the model has 1,024 positions" "$(jq -c . m1024/config.json)"
awk 'BEGIN { srand(11); split("ka lo mi ne su ra to pe vi da go ul an er is or the of and in", s, " ");
  for (i = 0; i < 300; i++) { line = "";
    for (j = 0; j < 12; j++) line = line (j ? " " : "") s[1 + int(rand() * 20)]
    print line "." } }' > corpus.txt
printf '%s\n' 'subject,prompt,target_new,target_true' \
  'Alice Smith,{} plays the,guitar,piano' 'Bob Jones,{} works for,Apple,Google' \
  'Carol White,{} was born in,Rome,Paris' > facts.csv

# AddressSanitizer reserves terabytes of address space: no limit there
limit=
if ldd "$STAMP" 2>/dev/null | grep -q libasan; then
  echo "note: $STAMP is built with AddressSanitizer; the address-space limit is not applied"
else
  limit="ulimit -v 1000000;"   # 1 GB, in KiB (the store maps 256 MiB of it)
  export STAMP_MAP_SIZE=$((256 << 20))
fi
run() { bash -c "$limit \"\$@\"" run "$@"; }
for m in m1024 m64; do
  export STAMP_STORE="$T/store-$m"
  expect_ok "$m: init" "$STAMP" init --model "$m"
  expect_ok "$m: stats within 1 GB of address space" run "$STAMP" stats --corpus corpus.txt
  expect_ok "$m: import" "$STAMP" import facts.csv
  expect_ok "$m: a commit of 3 edits within 1 GB" run "$STAMP" commit --no-scores -m real --corpus corpus.txt
  expect_ok "$m: fsck" "$STAMP" fsck
  mdb_dump -s stats -p "$STAMP_STORE" > "stats-$m.dump" 2>/dev/null
done
[ -s stats-m1024.dump ] && pass "the key statistics are stored" || fail "the key statistics are stored" "empty dump"

# A corpus line longer than the context: stats cuts it to its first
# n_positions tokens (keystats_sum.c, stats_batch_encode) and says so,
# with the count of such lines (cmd_stats.c). A line of 100 words (over 64 tokens) between two of
# 5 tokens each ("The river was long."): 5 + 64 + 5 keys from 3 lines.
export STAMP_STORE="$T/store-long"
{ echo "The river was long."; for i in $(seq 1 100); do printf 'word%d ' "$i"; done; echo
  echo "The river was long."; } > long.txt
expect_ok "m64: init (long line)" "$STAMP" init --model m64
expect_ok "m64: stats over a line longer than 64 positions" "$STAMP" stats --corpus long.txt --json
expect_grep "stats says one line of three is cut to 64 tokens" \
  "note: 1 of the 3 corpus lines used .*long.txt.* more tokens than the model's 64 positions: the statistics take the first 64 tokens" "$T/err"
if jq -e '.[0].tokens == 74 and .[0].sequences == 3' "$T/out" >/dev/null; then
  pass "the long line is cut to its first 64 tokens (5 + 64 + 5 keys)"
else fail "the long line is cut to its first 64 tokens (5 + 64 + 5 keys)" "$(jq -c . "$T/out")"; fi
export STAMP_STORE="$T/store-short"
expect_ok "m64: init (short lines)" "$STAMP" init --model m64
expect_ok "m64: stats over lines within 64 positions" "$STAMP" stats --corpus corpus.txt
if grep -q "note:" "$T/err"; then fail "no note when no line is cut" "$(cat "$T/err")"
else pass "no note when no line is cut"; fi
finish
