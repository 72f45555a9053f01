# t43-crash: crash safety on the tiny world model. SIGKILL lands at
# pseudo-random moments (seeded: CRASH_SEED, printed) inside commit,
# revert (HEAD and an older commit), reset (base and to commit 1) and
# import, CRASH_TRIALS (default 24) times in all; after every kill fsck
# passes and the store's state (log, queue, status counts, the versions
# of its facts, the exported model's bytes) is exactly the state before
# the command or the one after it, never in between, and a store left
# before takes the command again. The trial logic is in crashlib.sh
# (bench/bench_crash.sh runs it with 200 trials).
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
. "$HERE/crashlib.sh"

# (8 under the sanitizers, whose every command is several times slower)
default_trials=24; [ "$SANITIZED" = 1 ] && default_trials=8
trials=${CRASH_TRIALS:-$default_trials}
seed=${CRASH_SEED:-4302}
echo "crash: seed $seed, $trials trials (CRASH_SEED=$seed CRASH_TRIALS=$trials to replay)"
if crash_setup "$T/crash" "$WORLD_TINY"; then pass "the store to crash: 3 commits, 3 facts queued"
else fail "the store to crash" "setup failed"; finish; exit 1; fi

crash_run "$trials" "$seed"
# many kills must land while the command runs, or the test tests nothing
# (a quarter: the share varies with the machine's load)
if [ "$CRASH_KILLED" -ge $((trials / 4)) ]; then
  pass "$CRASH_KILLED of $trials kills landed before the command finished"
else
  fail "kills landed before the command finished" "only $CRASH_KILLED of $trials"
fi

# the lock file of a killed writer does not hold up the next one, and
# the store still has what fsck calls a clean chain after all that
export STAMP_STORE=$CRASH_DIR/work
expect_ok "fsck of the last trial's store" "$STAMP" fsck --json
expect_grep "fsck --json says ok" '"ok": *true' "$T/out"
finish
