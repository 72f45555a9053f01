# t24-import-kill: SIGKILL in the middle of a large import leaves the
# store exactly as before (one LMDB write transaction: all or nothing).
# A few trials kill the import while it writes (once its progress line
# says "importing", after a short random delay) and one while it still
# reads; after each, `stamp queue --json` and `stamp log --json` must
# equal what they were, and the store must take the next import.
REPO=$(cd "$(dirname "$0")/../.." && pwd)
. "$(dirname "$0")/lib.sh"
FIXTURE="$BUILD/tools/stamp-fixture"
(cd "$REPO" && "$FIXTURE" model --out "$T/model") >/dev/null
"$STAMP" init --model "$T/model" >/dev/null || { fail "init"; finish; exit 1; }

printf 'subject,prompt,target_new\nSeed,{} is,x\n' > seed.csv
"$STAMP" import seed.csv >/dev/null
"$FIXTURE" commit --store "$STAMP_STORE" -m seed >/dev/null
printf 'subject,prompt,target_new\nQueued,{} is,y\n' > queued.csv
"$STAMP" import queued.csv >/dev/null
"$STAMP" queue --json > q0.json
"$STAMP" log --json > l0.json
queued0=$(jq '.count' q0.json)

awk 'BEGIN { print "subject,prompt,target_new,target_true,paraphrase"
  for (i = 0; i < 100000; i++)
    printf "Person %d,The city where {} was born is,Paris,Rome,Person %d was born in\n", i, i }' > big.csv

# How long the write phase lasts on this machine (from the "importing"
# progress line to the end), measured once on a copy of the store: the
# kills land at a random 10-70% of it, however fast the machine is. The
# measurement can come out long on a busy machine (CI once saw eight
# misses in a row), so every miss halves it: the kills move earlier into
# the write phase until one lands.
now() { date +%s%N; }
rm -rf calib.store && cp -a "$STAMP_STORE" calib.store
STAMP_STORE=$T/calib.store STAMP_PROGRESS=1 "$STAMP" import big.csv >/dev/null 2>calib.err &
cpid=$!
for _ in $(seq 5000); do grep -q importing calib.err && break; sleep 0.002; done
t_write=$(now)
wait "$cpid"
write_ns=$(( $(now) - t_write ))
rm -rf calib.store
random_delay() { # seconds, 10-70% of the write phase
  awk -v ns="$write_ns" -v r="$RANDOM" 'BEGIN { printf "%.4f", ns * (0.1 + 0.6 * (r % 1000) / 1000) / 1e9 }'
}

# attempt WAIT_FOR_WRITING: starts the import and kills it; returns 0 when
# it was killed, 1 when it finished first (the store is then put back as
# it was from a copy, the attempt does not count and the write phase
# estimate is halved). Anything between
# nothing and everything shows up as a difference in the checks below.
attempt() {
  local writing=$1
  rm -rf store.copy && cp -a "$STAMP_STORE" store.copy
  STAMP_PROGRESS=1 "$STAMP" import big.csv >/dev/null 2>progress.err &
  local pid=$!
  if [ "$writing" = 1 ]; then
    for _ in $(seq 5000); do grep -q importing progress.err && break; sleep 0.002; done
    sleep "$(random_delay)"
  else
    sleep 0.2
  fi
  kill -9 "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null; local rc=$?
  # all or nothing: a kill that lands after LMDB's commit point leaves
  # every fact in; that attempt counts as finished
  local n; n=$("$STAMP" status --json | jq '.queued')
  if [ "$rc" -ne 137 ] || [ "$n" -eq $((queued0 + 100000)) ]; then
    rm -rf "$STAMP_STORE" && mv store.copy "$STAMP_STORE"
    write_ns=$((write_ns / 2))
    return 1
  fi
  [ "$writing" = 0 ] || grep -q importing progress.err
}

# kill_import NAME WAIT_FOR_WRITING
kill_import() {
  local name=$1 writing=$2 tries=0
  until attempt "$writing"; do
    tries=$((tries + 1))
    [ "$tries" -ge 8 ] && break
  done
  local missed=""; [ "$tries" -gt 0 ] && missed=" ($tries missed)"
  if [ "$tries" -lt 8 ]; then pass "$name: the import was killed$missed"
  else fail "$name: the import was killed" "it finished first 8 times"; fi
  "$STAMP" queue --json > q.json; "$STAMP" log --json > l.json
  expect_same "$name: queue as before" q0.json q.json
  expect_same "$name: log as before" l0.json l.json
}

for trial in 1 2 3; do kill_import "kill while writing, trial $trial" 1; done
kill_import "kill while reading" 0
expect_ok "mdb_stat still reads the store" mdb_stat -a "$STAMP_STORE"
printf 'subject,prompt,target_new\nAfter,{} is,z\n' > after.csv
expect_ok "the store takes the next import (the lock is free)" env STAMP_LOCK_WAIT=2 "$STAMP" import after.csv
expect_grep "and numbers it after the killed ones" "1 queued" "$T/out"
is_count=$("$STAMP" queue --json | jq '.count')
[ "$is_count" -eq 2 ] && pass "two facts queued in the end" || fail "two facts queued in the end" "$is_count"
finish
