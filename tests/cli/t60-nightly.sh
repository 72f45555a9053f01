# t60-nightly: tools/nightly.sh, the cron job, on a copy of the tiny
# world model. Its exit codes: 3 when there is nothing to do, 0 when it
# committed the inbox (message "nightly DATE"), 3 again on a re-run with
# the same inbox (nothing new queued), 4 while another run holds the
# lock (held here with flock; nothing imported), 1 when the import fails
# (nothing queued) or the commit fails (a base model changed behind the
# store's back), 1 without a store. A bad CSV row is skipped and reported
# as FILE:LINE while the good rows are committed.
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
. "$HERE/lib.sh"
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}   # a shared machine

W=$WORLD_TINY
nightly() { bash "$REPO/tools/nightly.sh" --store "$STAMP_STORE" --inbox inbox "$@"; }
mkdir model inbox
cp "$W"/config.json "$W"/model.safetensors "$W"/vocab.json "$W"/merges.txt "$W"/corpus.txt model/
"$STAMP" init --model "$T/model" >/dev/null && "$STAMP" stats --corpus model/corpus.txt >/dev/null ||
  { fail "a store on the world model" "init or stats failed"; finish; exit 1; }
commits() { "$STAMP" log --json | jq '.commits | length'; }
queued() { "$STAMP" queue --json | jq '.count'; }

expect_exit "an empty inbox: nothing to do, exit 3" 3 nightly
expect_grep "it says so" "nightly: nothing to do" "$T/out"
[ "$(commits)" = 0 ] && pass "no commit made" || fail "no commit made" "$(commits) commits"

# two facts of the world and a bad row in between (no subject)
{ sed -n '1,2p' "$W/facts.csv"; echo '"","{} is in"," Paris"," Rome","P1","","","","","","","","",""'; sed -n 3p "$W/facts.csv"; } > inbox/day1.csv
expect_exit "an inbox with facts: committed, exit 0" 0 nightly
cp "$T/out" run1.out; cp "$T/err" run1.err
expect_grep "it says so" "nightly: committed" run1.out
expect_grep "the bad row is reported with its file and line" "inbox/day1.csv:3: .*subject" run1.err
expect_grep "the good rows are imported, the bad one counted" "2 queued.*1 bad skipped" run1.out
"$STAMP" log --json > log1.json
if [ "$(jq -c '[.head, (.commits | length), .commits[0].n_facts]' log1.json)" = "[1,1,2]" ]; then
  pass "one commit of the 2 good facts"
else fail "one commit of the 2 good facts" "$(jq -c '[.head, (.commits | length), .commits[0].n_facts]' log1.json)"; fi
expect_grep "its message is 'nightly DATE'" "\"message\": *\"nightly $(date -u +%F)\"" log1.json
[ "$(queued)" = 0 ] && pass "the queue is empty" || fail "the queue is empty" "$(queued) queued"

expect_exit "a re-run with the same inbox: nothing to do, exit 3" 3 nightly
expect_grep "the re-run queues nothing new" "0 queued, 0 superseded, 2 unchanged" "$T/out"
"$STAMP" log --json > log2.json
expect_same "the re-run leaves the log as it was" log1.json log2.json
[ "$(queued)" = 0 ] && pass "the re-run queues nothing" || fail "the re-run queues nothing" "$(queued) queued"

# another run holds the lock: exit 4, nothing imported
sed -n '1p;5,6p' "$W/facts.csv" > inbox/day2.csv
lock=$STAMP_STORE/nightly.lock
mkfifo hold
flock -o "$lock" cat hold > /dev/null &
holder=$!
for _ in $(seq 200); do flock -n "$lock" true || break; sleep 0.02; done
if flock -n "$lock" true; then fail "the lock is held by flock"; else pass "the lock is held by flock"; fi
expect_exit "while another run holds the lock: exit 4" 4 nightly
expect_grep "it names the lock" "nightly.lock" "$T/err"
[ "$(queued)" = 0 ] && [ "$(commits)" = 1 ] && pass "nothing imported or committed while locked" ||
  fail "nothing imported or committed while locked" "$(queued) queued, $(commits) commits"
echo > hold; wait "$holder"

expect_exit "the lock released: the new file is committed, exit 0" 0 nightly
expect_grep "only the new file's facts are queued" "import [0-9]+: 2 queued, 0 superseded, 2 unchanged" "$T/out"
[ "$(commits)" = 2 ] && pass "a second commit" || fail "a second commit" "$(commits) commits"
expect_ok "fsck after two nightly runs" "$STAMP" fsck

# a file that cannot be read at all: import fails, exit 1, nothing queued
printf 'foo,bar\n1,2\n' > inbox/day3.csv
sed -n '1p;8p' "$W/facts.csv" > inbox/day3b.csv
expect_exit "an unreadable fact list: exit 1" 1 nightly
expect_grep "the import failure is reported" "nightly: import failed" "$T/err"
expect_grep "and what was wrong with the file" "inbox/day3.csv:1: unknown column 'foo'" "$T/err"
[ "$(queued)" = 0 ] && [ "$(commits)" = 2 ] && pass "nothing queued from the other file either" ||
  fail "nothing queued from the other file either" "$(queued) queued, $(commits) commits"
rm inbox/day3.csv

# a failing commit: the base model changed behind the store's back
cp model/model.safetensors model.orig
hdr=$(od -An -tu8 -N8 model/model.safetensors | tr -d ' ')   # a byte of tensor data
printf '\x01' | dd of=model/model.safetensors bs=1 seek=$((8 + hdr + 1000)) conv=notrunc 2>/dev/null
"$STAMP" log --json > log-before.json
expect_exit "a commit that fails: exit 1" 1 nightly
expect_grep "it says the commit failed" "nightly: commit failed" "$T/err"
expect_grep "and why" "changed behind the store's back" "$T/err"
"$STAMP" log --json > log-after.json
expect_same "the failed commit changed no commit" log-before.json log-after.json
[ "$(queued)" = 1 ] && pass "the day's fact stays queued" || fail "the day's fact stays queued" "$(queued) queued"
cp model.orig model/model.safetensors
expect_exit "the model put back: committed, exit 0" 0 nightly
[ "$(commits)" = 3 ] && [ "$(queued)" = 0 ] && pass "the queued fact is committed" ||
  fail "the queued fact is committed" "$(commits) commits, $(queued) queued"

expect_exit "no store: exit 1" 1 bash "$REPO/tools/nightly.sh" --store "$T/nostore" --inbox inbox
expect_grep "it says there is no store" "no store at" "$T/err"
expect_exit "an unknown option: exit 2" 2 nightly --bogus

# one exit-code table: nightly.sh's numbers are cli/cli.h's
table=$(sed -n 's/^ *\(EXIT_[A-Z]*\) = \([0-9]\).*/\1=\2/p' "$REPO/cli/cli.h" | sort | tr '\n' ' ')
script=$(grep -o 'EXIT_[A-Z]*=[0-9]' "$REPO/tools/nightly.sh" | sort | tr '\n' ' ')
[ -n "$table" ] && [ "$table" = "$script" ] && pass "nightly.sh uses cli/cli.h's exit codes" ||
  fail "nightly.sh uses cli/cli.h's exit codes" "cli.h: $table; nightly.sh: $script"
finish
