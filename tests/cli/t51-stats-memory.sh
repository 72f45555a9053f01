# t51-stats-memory: the key statistics say what they need in memory
# before they are computed, and a machine without that much available is
# refused before any work, with both numbers, changing nothing: `stamp
# stats`, a commit that computes them, and a commit that loads them (one
# layer's (F, F) plus a triangle per factor). STAMP_TEST_MEM_AVAILABLE
# (bytes) fakes /proc/meminfo's MemAvailable for the command it is set
# on (lib/base/meminfo.h).
. "$(dirname "$0")/lib.sh"

W=$WORLD_TINY
F=$(jq '.n_inner // (4 * .n_embd)' "$W/config.json")
expect_ok "init on world-tiny" "$STAMP" init --model "$W"
head -n 3 "$TEST_REPO/edits/demo.csv" > two.csv
expect_ok "import 2 facts" "$STAMP" import two.csv

state() { # everything a refused command must leave as it was
  { "$STAMP" log --json; "$STAMP" queue --json; "$STAMP" stats --json; } > "$1"
}
state before.txt

# a commit that would compute the statistics (2 layers of F^2 float64)
expect_exit "a commit refuses statistics that do not fit" 1 \
  env STAMP_TEST_MEM_AVAILABLE=1000 "$STAMP" commit -m small
expect_grep "the refusal says what they need, and what there is" \
  "error: not enough memory for the key statistics: they need [0-9.]+ [MG]iB at once \(2 layers x $F\^2 x 8 bytes of float64 sums\) and the machine has 0 MiB available \(MemAvailable\)" "$T/err"
state after.txt
expect_same "the refused commit changed nothing" before.txt after.txt

expect_exit "stats refuses statistics that do not fit" 1 \
  env STAMP_TEST_MEM_AVAILABLE=1000 "$STAMP" stats --corpus "$W/corpus.txt"
expect_grep "stats' refusal says the same" \
  "not enough memory for the key statistics: they need .*2 layers x $F\^2 x 8 bytes" "$T/err"
state after.txt
expect_same "the refused stats changed nothing" before.txt after.txt
expect_exit "a fake MemAvailable that is not a number is an error" 1 \
  env STAMP_TEST_MEM_AVAILABLE=lots "$STAMP" stats --corpus "$W/corpus.txt"
expect_grep "and says so" "STAMP_TEST_MEM_AVAILABLE 'lots' is not a number" "$T/err"

expect_ok "stats with the memory there" "$STAMP" stats --corpus "$W/corpus.txt"
expect_grep "stats states the memory before computing" \
  "^stamp: key statistics: 2 layers x $F\^2 x 8 bytes of float64 sums = [0-9.]+ [MG]iB in memory at once \([0-9.]+ [MG]iB available\)" "$T/err"
if "$STAMP" stats --json | jq -e 'length == 2 and all(.[]; .present)' >/dev/null
then pass "both layers have statistics"; else fail "both layers have statistics"; fi

# loading them for a commit: the factors (a triangle each) and one layer
state before.txt
expect_exit "a commit refuses to load statistics that do not fit" 1 \
  env STAMP_TEST_MEM_AVAILABLE=1000 "$STAMP" commit -m small
expect_grep "the refusal names the factors and the layer being loaded" \
  "not enough memory for the key statistics: .*2 factors of a triangle of $F\^2 x 8 bytes, and one layer's $F\^2 x 8 bytes while it is loaded" "$T/err"
state after.txt
expect_same "the refused commit changed nothing" before.txt after.txt
expect_ok "the commit with the memory there" "$STAMP" commit -m small
expect_grep "it committed" "commit 1: 2 facts" "$T/out"
finish
