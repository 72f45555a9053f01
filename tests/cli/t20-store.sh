# t20-store: init, status, queue, log and show on a fresh store; init's
# refusals (missing model files, an existing store) leave nothing behind;
# a killed init's temporary goes with the next init; the store is plain
# LMDB (mdb_stat reads it); the writer lock (a reader
# goes on while a writer holds it, a second writer waits
# $STAMP_LOCK_WAIT seconds and fails naming the holder's pid, or gets
# the lock when it comes free); a full map or a full disk is a clear
# error that keeps nothing.
REPO=$(cd "$(dirname "$0")/../.." && pwd)
. "$(dirname "$0")/lib.sh"
FIXTURE="$BUILD/tools/stamp-fixture"

# a small random GPT-2 with GPT-2's own tokenizer
(cd "$REPO" && "$FIXTURE" model --out "$T/model") >/dev/null
M="$T/model"

# ---- before a store exists
expect_exit "status without a store fails" 1 "$STAMP" status
expect_grep "and says there is no store" "no store in '.*store'" "$T/err"
expect_exit "queue without a store fails" 1 "$STAMP" queue
expect_exit "init without --model is bad usage" 2 "$STAMP" init
expect_exit "init with an extra argument is bad usage" 2 "$STAMP" init --model "$M" extra
expect_exit "init on a missing directory" 1 "$STAMP" init --model "$T/nope"
expect_grep "names the directory" "model directory '.*nope'" "$T/err"
for f in config.json model.safetensors vocab.json merges.txt; do
  mkdir -p "$T/m-$f" && cp "$M"/* "$T/m-$f/" && rm "$T/m-$f/$f"
  expect_exit "init refuses a model without $f" 1 "$STAMP" init --model "$T/m-$f"
  expect_grep "and names $f" "has no $f" "$T/err"
done
mkdir -p "$T/m-bad" && cp "$M"/* "$T/m-bad/"
printf '{"n_layer": 0}' > "$T/m-bad/config.json"
expect_exit "init refuses a bad config.json" 1 "$STAMP" init --model "$T/m-bad"
expect_grep "naming the file" "config.json" "$T/err"
cp "$M/config.json" "$T/m-bad/" && head -c 1000 "$M/model.safetensors" > "$T/m-bad/model.safetensors"
expect_exit "init refuses a truncated model.safetensors" 1 "$STAMP" init --model "$T/m-bad"
if [ ! -e "$T/store" ] && ! ls "$T" | grep -q 'store.tmp'; then
  pass "failed inits left no store and no temporary directory"
else
  fail "failed inits left no store and no temporary directory" "$(ls "$T")"
fi

# ---- init
expect_ok "init" "$STAMP" init --model "$M"
expect_grep "init names the store" "initialized store '.*store'" "$T/out"
expect_exit "init refuses an existing store" 1 "$STAMP" init --model "$M"
expect_grep "naming the directory" "a store already exists in '.*store'" "$T/err"
mkdir -p notempty && touch notempty/x
expect_exit "init refuses a non-empty directory" 1 "$STAMP" --store notempty init --model "$M"
expect_grep "saying so" "not an empty directory" "$T/err"
mkdir -p emptydir
expect_ok "init into an empty directory" "$STAMP" --store emptydir init --model "$M"
# a killed init leaves DIR.tmp.PID: the next init of DIR removes it once
# that process is gone, and keeps the temporary of one still going
true & gone=$!; wait "$gone"
mkdir -p "s2.tmp.$gone" "s2.tmp.$$" && touch "s2.tmp.$gone/data.mdb"
expect_ok "init beside a killed init's temporary" "$STAMP" --store s2/ init --model "$M"
expect_ok "the killed init's temporary: removed" test ! -e "s2.tmp.$gone"
expect_ok "a running process's temporary: kept" test -d "s2.tmp.$$"
expect_ok "the store is s2" test -s s2/data.mdb
expect_ok "mdb_stat reads the store" mdb_stat -a "$T/store"
expect_grep "with its named databases" "Status of versions" "$T/out"

expect_ok "status" "$STAMP" status
expect_grep "status shows the model" "model +$M" "$T/out"
expect_grep "status shows HEAD" "HEAD +the base model" "$T/out"
expect_ok "status --json" "$STAMP" status --json
expect_grep "status --json has the counts" '"queued": 0' "$T/out"
expect_grep "status --json has the model id" '"model_id": "[0-9a-f]{32}"' "$T/out"
expect_ok "empty queue" "$STAMP" queue
expect_grep "says it is empty" "the queue is empty" "$T/out"
expect_ok "empty queue --json" "$STAMP" queue --json
expect_grep "is a JSON document" '"count": 0, "facts": \[\]' "$T/out"
expect_ok "empty log" "$STAMP" log
expect_grep "says there are no commits" "no commits" "$T/out"
expect_ok "empty log --json" "$STAMP" log --json
jq -e '.head == 0 and (.commits | length) == 0' "$T/out" >/dev/null \
  && pass "log --json of nothing" || fail "log --json of nothing" "$(cat "$T/out")"
expect_exit "show of nothing fails" 1 "$STAMP" show "Nobody"
expect_grep "naming it" "no commit or subject 'Nobody'" "$T/err"
expect_exit "show HEAD without commits fails" 1 "$STAMP" show HEAD
expect_exit "queue --limit 0 is bad usage" 2 "$STAMP" queue --limit 0
expect_exit "show without argument is bad usage" 2 "$STAMP" show
for c in init import queue log show status; do
  expect_ok "$c --help" "$STAMP" $c --help
  expect_grep "$c --help starts with the synopsis" "^stamp $c" "$T/out"
done
meta=$(jq -r '.model_id' <("$STAMP" status --json))
[ -n "$meta" ] && pass "model id recorded" || fail "model id recorded"
for k in format_version model_dir config model_tensor_hashes model_id created; do
  if mdb_dump -s meta -p "$T/store" | grep -q "^ $k\$"; then pass "meta has $k"
  else fail "meta has $k"; fi
done

# ---- the writer lock
printf 'subject,prompt,target_new\nA,{} is,x\n' > one.csv
"$FIXTURE" hold --store "$T/store" 60 > hold.out 2>&1 &
holder=$!
for _ in $(seq 100); do grep -q holding hold.out && break; sleep 0.1; done
expect_ok "a reader goes on while a writer holds the lock" "$STAMP" queue --json
expect_ok "status too" "$STAMP" status
start=$SECONDS
STAMP_LOCK_WAIT=1 "$STAMP" import one.csv >"$T/out" 2>"$T/err"; rc=$?
[ "$rc" -eq 1 ] && pass "a second writer fails (exit 1)" || fail "a second writer fails (exit 1)" "exit $rc"
expect_grep "naming the holder's pid" "locked by another process \(pid $holder\)" "$T/err"
[ $((SECONDS - start)) -ge 1 ] && pass "after waiting" || fail "after waiting" "$((SECONDS - start)) s"
# a patient writer waits; the holder dies (SIGKILL: the kernel drops its
# lock, LMDB its transaction) and the writer goes on
STAMP_LOCK_WAIT=60 "$STAMP" import one.csv >patient.out 2>patient.err &
patient=$!
sleep 0.5
kill -9 "$holder"; wait "$holder" 2>/dev/null
wait "$patient"; rc=$?
[ "$rc" -eq 0 ] && pass "a patient writer gets the lock when it comes free" \
  || fail "a patient writer gets the lock when it comes free" "exit $rc: $(cat patient.err)"
expect_grep "and imports" "1 queued" patient.out

# ---- a full map and a full disk keep nothing
"$STAMP" queue --json > before.json
awk 'BEGIN { print "subject,prompt,target_new"; for (i = 0; i < 3000; i++) printf "S%d,{} is a long prompt about nothing in particular number %d,x\n", i, i }' > many.csv
expect_exit "a full map fails the import" 1 env STAMP_MAP_SIZE=262144 "$STAMP" import many.csv
expect_grep "saying the store is full" "store '.*' is full" "$T/err"
"$STAMP" queue --json > after.json
expect_same "and keeps nothing" before.json after.json
if mkdir -p "$T/small" && mount -t tmpfs -o size=600k tmpfs "$T/small" 2>/dev/null; then
  expect_ok "init on a small disk" "$STAMP" --store "$T/small/s" init --model "$M"
  "$STAMP" --store "$T/small/s" queue --json > before.json
  expect_exit "a full disk fails the import" 1 "$STAMP" --store "$T/small/s" import many.csv
  expect_grep "saying so" "no space left|disk full" "$T/err"
  "$STAMP" --store "$T/small/s" queue --json > after.json
  expect_same "and keeps nothing" before.json after.json
  expect_ok "the store still works" "$STAMP" --store "$T/small/s" import one.csv
  umount "$T/small"
else
  echo "skip: cannot mount a small tmpfs here (the full-disk case is untested)"
fi
finish
