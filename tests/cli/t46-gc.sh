# t46-gc: `stamp gc` compacts the store's file and changes nothing it
# holds (log, queue, diff base and fsck the same before and after, on a
# store with commits, a revert and a reset away); `status` shows the space
# by kind and it adds up to at most the file's size; a kill -9 while gc
# copies or right after its rename leaves a whole store that fsck passes;
# gc refuses while another process has the store open; bad usage exits 2.
REPO=$(cd "$(dirname "$0")/../.." && pwd)
. "$(dirname "$0")/lib.sh"

fixture_model_and_corpus || { finish; exit 1; }
cat > a.csv <<'X'
subject,prompt,target_new,target_true
Alice Smith,{} plays the,guitar,piano
Bob Jones,{} works for,Apple,Google
X
cat > b.csv <<'X'
subject,prompt,target_new,target_true
Carol White,{} was born in,Rome,Paris
Alice Smith,{} plays the,violin,piano
X
cat > c.csv <<'X'
subject,prompt,target_new,target_true
Dan Brown,{} speaks,French,English
X
commit() { "$STAMP" commit --no-scores --corpus corpus.txt "$@"; }
snapshot() { { "$STAMP" log --json; "$STAMP" queue --json; "$STAMP" diff base --json
               "$STAMP" show 3 --json; } > "$1" 2>&1; }
size() { stat -c %s "$STAMP_STORE/data.mdb"; }
# the space fields are there and add up to at most the file's size
space_check() {
  if "$STAMP" status --json > space.json &&
     awk -v what="$1" '
       /"databases"/ { in_db = 1 }
       in_db && /"bytes"/ { gsub(/[^0-9]/, ""); sum += $0 }
       in_db && /^    }/ { in_db = 0 }
       /"(meta|freelist|free)_bytes"/ { v = $0; gsub(/[^0-9]/, "", v); sum += v; seen++ }
       /"file_bytes"/ { f = $0; gsub(/[^0-9]/, "", f); seen++ }
       /"used_bytes"/ { u = $0; gsub(/[^0-9]/, "", u); seen++ }
       END { if (seen != 5 || sum == 0 || sum > u || u > f) {
               print what ": sum " sum " used " u " file " f > "/dev/stderr"; exit 1 } }' space.json
  then pass "status --json space adds up ($1)"
  else fail "status --json space adds up ($1)"; fi
}

expect_ok "init" "$STAMP" init --model model
"$STAMP" import a.csv >/dev/null
expect_ok "commit 1" commit -m one
"$STAMP" import b.csv >/dev/null
expect_ok "commit 2" commit -m two
"$STAMP" import c.csv >/dev/null
expect_ok "commit 3" commit -m three
expect_ok "reset to 2 (3 off the chain)" "$STAMP" reset 2
expect_ok "revert HEAD" "$STAMP" revert HEAD
"$STAMP" import c.csv >/dev/null
expect_ok "status" "$STAMP" status
expect_grep "status shows the space of the diffs" "^ +diffs +[0-9]+ +[0-9]+$" "$T/out"
expect_grep "status shows the file" "^ +file +[0-9]+$" "$T/out"
"$STAMP" status --json > s.json
missing=
for db in meta facts versions queue commits diffs tensors stats; do
  grep -q "\"$db\": {" s.json || missing="$missing $db"
done
[ -z "$missing" ] && pass "status --json names every database" ||
  fail "status --json names every database" "missing:$missing"
space_check "before gc"

snapshot before.txt
expect_ok "fsck before gc" "$STAMP" fsck
b0=$(size)
expect_ok "gc" "$STAMP" gc
expect_grep "gc prints the sizes" "^compacted the store: [0-9]+ bytes before, [0-9]+ after" "$T/out"
b1=$(size)
if [ "$b1" -le "$b0" ]; then pass "gc shrinks or keeps the file ($b0 -> $b1)"
else fail "gc shrinks or keeps the file" "$b0 -> $b1"; fi
echo "   sizes: $b0 bytes before gc, $b1 after"
snapshot after.txt
expect_same "log, queue, diff, show unchanged by gc" before.txt after.txt
expect_ok "fsck after gc" "$STAMP" fsck
space_check "after gc"
expect_ok "gc --json" "$STAMP" gc --json
expect_grep "gc --json sizes" '"after_bytes": [0-9]+' "$T/out"
expect_ok "a commit after gc" commit -m four
expect_ok "reset back after gc" "$STAMP" reset 4
snapshot before.txt

# ---- kill -9 at points inside gc
for point in copy renamed; do
  ino0=$(stat -c %i "$STAMP_STORE/data.mdb")
  STAMP_TEST_GC_SLEEP=$point:5 "$STAMP" gc >/dev/null 2>&1 &
  pid=$!
  for i in $(seq 50); do
    { [ $point = copy ] && [ -e "$STAMP_STORE/data.mdb.gc-tmp" ]; } && break
    { [ $point = renamed ] && [ ! -e "$STAMP_STORE/data.mdb.gc-tmp" ] && [ $i -gt 10 ]; } && break
    sleep 0.1
  done
  sleep 0.3
  kill -9 $pid 2>/dev/null && pass "killed gc at $point" || fail "killed gc at $point" "it had ended"
  wait $pid 2>/dev/null
  ino1=$(stat -c %i "$STAMP_STORE/data.mdb")
  if [ $point = copy ]; then
    [ "$ino0" = "$ino1" ] && pass "killed while copying: the old file stays" ||
      fail "killed while copying: the old file stays"
  else
    [ "$ino0" != "$ino1" ] && pass "killed after the rename: the new file is in place" ||
      fail "killed after the rename: the new file is in place"
  fi
  expect_ok "fsck after a kill at $point" "$STAMP" fsck
  snapshot after.txt
  expect_same "nothing changed by a kill at $point" before.txt after.txt
done
expect_ok "gc after the kills" "$STAMP" gc
if [ ! -e "$STAMP_STORE/data.mdb.gc-tmp" ]; then pass "no temporary file left"
else fail "no temporary file left"; fi
snapshot after.txt
expect_same "nothing changed by gc after the kills" before.txt after.txt
printf 'subject,prompt,target_new,target_true\nEve Black,{} lives in,Oslo,Lima\n' > e.csv
"$STAMP" import e.csv >/dev/null
expect_ok "a commit after the kills" commit -m five
expect_ok "fsck after that commit" "$STAMP" fsck
snapshot before.txt

# ---- another process has the store open: refused, nothing changed
flock -s "$STAMP_STORE/lock.mdb" sleep 3 &
hold=$!
sleep 0.3
expect_exit "gc while the store is open elsewhere" 1 "$STAMP" gc
expect_grep "it says why" "open in another process" "$T/err"
kill $hold 2>/dev/null; wait $hold 2>/dev/null
snapshot after.txt
expect_same "the refused gc changed nothing" before.txt after.txt

# ---- bad usage
expect_exit "gc with an argument" 2 "$STAMP" gc now
expect_exit "gc with an unknown option" 2 "$STAMP" gc --fast
expect_exit "status with an unknown option" 2 "$STAMP" status --fast
expect_ok "gc --help" "$STAMP" gc --help
finish
