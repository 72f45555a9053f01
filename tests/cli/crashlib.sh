# crashlib.sh: the store's observable state and the SIGKILL trials,
# shared by tests/cli/t42-sequential.sh, tests/cli/t43-crash.sh and
# bench/bench_crash.sh. Source it after setting STAMP (the binary) and
# STAMP_STORE; the caller provides pass NAME and fail NAME WHY (lib.sh's).
#
#   tensor_xxh FILE NAME      XXH3-128 hex (xxhsum -H2, as stamp records
#                             it) of tensor NAME's bytes in the safetensors
#                             FILE ("h.1..." also finds "transformer.h.1...")
#   state_snapshot OUT [SUBJECT...]
#                             everything a command can change, in one file:
#                             log (without times, nor threads_default: the
#                             load the automatic thread count read), queue,
#                             status counts, the versions of each SUBJECT,
#                             and the exported model's SHA-256. Two states are equal when
#                             their snapshots are byte-identical.
#   crash_setup DIR WORLD     the store the trials start from, DIR/base:
#                             3 commits of 3 facts, 3 facts queued, key
#                             statistics present; DIR/big.csv to import
#   crash_run TRIALS SEED     TRIALS kills spread over six scenarios
#                             (commit, revert HEAD, revert an older commit,
#                             reset base, reset 1, import): each trial
#                             starts from a copy of DIR/base, starts the
#                             command, SIGKILLs it after a pseudo-random
#                             delay within the command's measured duration
#                             (less its first tenth, the process starting),
#                             then checks that fsck passes and the state is
#                             exactly the one before or the one after the
#                             command; a store left "before" must then run
#                             the command to the "after" state.
#
# The delays come from a 31-bit LCG seeded with SEED, so a failing trial
# is replayed with the same seed (timing on a loaded machine still moves
# where a kill lands: a failure names its scenario and delay). Failed
# stores are copied to $CRASH_KEEP/ when it is set.

# The machine is shared: OpenMP threads that spin while waiting make the
# small commits here 10x slower under load, so waiting threads sleep.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}

tensor_xxh() {
  local file=$1 name=$2 n range
  n=$(od -An -tu8 -N8 "$file" | tr -d ' ') || return 1
  range=$(head -c $((8 + n)) "$file" | tail -c "$n" |
    jq -r --arg a "$name" --arg b "transformer.$name" \
      '(.[$a] // .[$b]).data_offsets // empty | "\(.[0]) \(.[1])"') || return 1
  [ -n "$range" ] || { echo "no tensor '$name' in $file" >&2; return 1; }
  set -- $range
  tail -c +$((8 + n + $1 + 1)) "$file" | head -c $(($2 - $1)) | xxhsum -H2 | cut -d' ' -f1
}

state_snapshot() {
  local out=$1 s; shift
  local x="$out.export"
  {
    echo "== log"
    "$STAMP" log --json | jq -S 'del(.commits[].time, .commits[].timings, .commits[].threads_default)'
    echo "== queue"
    "$STAMP" queue --json > "$out.queue"
    jq -c '.count' "$out.queue"
    sha256sum < "$out.queue" | cut -d' ' -f1
    rm -f "$out.queue"
    echo "== status"
    "$STAMP" status --json | jq -S 'del(.size_bytes, .disk_bytes, .space)'
    for s in "$@"; do
      echo "== subject $s"
      "$STAMP" show "$s" --json | jq -c '.versions[] | [.version, .state, .commit, .target_new]'
    done
    echo "== model"
    rm -rf "$x"
    "$STAMP" export "$x" >/dev/null && sha256sum < "$x/model.safetensors" | cut -d' ' -f1
    rm -rf "$x"
  } > "$out" 2>&1
}

# The LMDB environment of a store that no process has open, copied whole.
store_copy() { rm -rf "$2" && cp -a "$1" "$2"; }

# a pause without starting a process (and the clock: $EPOCHREALTIME, bash 5)
crash_pause() { # crash_pause MICROSECONDS
  [ -p "$CRASH_DIR/fifo" ] || { mkfifo "$CRASH_DIR/fifo" && exec {CRASH_FD}<>"$CRASH_DIR/fifo"; }
  read -r -t "$(($1 / 1000000)).$(printf %06d $(($1 % 1000000)))" -u "$CRASH_FD" _
}

# crash_csv FIRST COUNT: data rows FIRST..FIRST+COUNT-1 of the world's
# facts.csv, with its header
crash_csv() {
  sed -n 1p "$CRASH_WORLD/facts.csv"
  sed -n "$(($1 + 1)),$(($1 + $2))p" "$CRASH_WORLD/facts.csv"
}

crash_setup() {
  CRASH_DIR=$1
  local base=$CRASH_DIR/base k f
  # a private copy of the model: a rebuild of the world during the trials
  # must not look like a base model changed behind the store's back
  mkdir -p "$CRASH_DIR/model" || return 1
  for f in config.json model.safetensors vocab.json merges.txt corpus.txt facts.csv; do
    cp "$2/$f" "$CRASH_DIR/model/" || return 1
  done
  CRASH_WORLD=$CRASH_DIR/model
  STAMP_STORE=$base "$STAMP" init --model "$CRASH_WORLD" >/dev/null || return 1
  STAMP_STORE=$base "$STAMP" stats --corpus "$CRASH_WORLD/corpus.txt" >/dev/null || return 1
  for k in 1 2 3; do
    crash_csv $((3 * k - 2)) 3 > "$CRASH_DIR/c$k.csv"
    STAMP_STORE=$base "$STAMP" import "$CRASH_DIR/c$k.csv" >/dev/null || return 1
    STAMP_STORE=$base "$STAMP" commit --threads 1 --no-scores -m "setup $k" >/dev/null || return 1
  done
  crash_csv 10 3 > "$CRASH_DIR/queued.csv"
  STAMP_STORE=$base "$STAMP" import "$CRASH_DIR/queued.csv" >/dev/null || return 1
  # the subjects whose versions the snapshots list (every fact above)
  CRASH_SUBJECTS=()
  local s
  while IFS= read -r s; do CRASH_SUBJECTS+=("$s"); done < <(crash_csv 1 12 |
    tail -n +2 | cut -d, -f1 | tr -d '"' | sort -u)
  # the import: 30,000 new facts, plus a new target for a queued fact
  # (supersedes it) and one for a committed fact (queues a new version)
  {
    echo "subject,prompt,target_new,target_true,relation,paraphrase"
    for f in queued.csv c1.csv; do   # subject, prompt, the relation
      sed -n 2p "$CRASH_DIR/$f" | awk -F'","' '{ print $1 "\",\"" $2 "\",\" Lisbon\",,\"" $5 "\"," }'
    done
    awk 'BEGIN { for (i = 0; i < 30000; i++)
      printf "Crash Person %d,The city where {} was born is,Paris,Rome,P19,Crash Person %d was born in\n", i, i }'
  } > "$CRASH_DIR/big.csv"
}

# the scenarios: crash_argv SCENARIO sets CRASH_ARGV to its command
# (run with STAMP_STORE set; a simple command, so that $! of it run in
# the background is the stamp process itself)
CRASH_SCENARIOS=(commit revert-head revert-old reset-base reset-1 import)
crash_argv() {
  case $1 in
    commit) CRASH_ARGV=("$STAMP" commit --threads 1 --no-scores -m crash) ;;
    revert-head) CRASH_ARGV=("$STAMP" revert HEAD) ;;
    revert-old) CRASH_ARGV=("$STAMP" revert 2 -m "crash revert") ;;
    reset-base) CRASH_ARGV=("$STAMP" reset base) ;;
    reset-1) CRASH_ARGV=("$STAMP" reset 1) ;;
    import) CRASH_ARGV=("$STAMP" import "$CRASH_DIR/big.csv") ;;
  esac
}
crash_cmd() { crash_argv "$1" && "${CRASH_ARGV[@]}"; }

crash_rand() { CRASH_X=$(((CRASH_X * 1103515245 + 12345) & 0x7fffffff)); }

# crash_reference SCENARIO: the states before and after the command run
# to completion from DIR/base, and its duration in microseconds: the
# shortest of 3 runs (on a loaded machine one run can take twice as long,
# and kills spread over that would mostly come after the end)
crash_reference() {
  local sc=$1 d=$CRASH_DIR/ref-$1 t0 t1 run us=
  export STAMP_STORE=$CRASH_DIR/work
  crash_argv "$sc"
  for run in 1 2 3; do
    store_copy "$CRASH_DIR/base" "$STAMP_STORE"
    [ "$run" = 1 ] && state_snapshot "$d.before" "${CRASH_SUBJECTS[@]}"
    # timed as the trials start it: in the background, until wait returns
    t0=${EPOCHREALTIME/[.,]/}
    "${CRASH_ARGV[@]}" >/dev/null 2>"$d.err" &
    wait $! || { fail "$sc runs to completion" "$(head -c 300 "$d.err")"; return 1; }
    t1=${EPOCHREALTIME/[.,]/}
    t1=$((10#$t1 - 10#$t0))
    [ -z "$us" ] || [ "$t1" -lt "$us" ] && us=$t1
  done
  echo "$us" > "$d.us"
  "$STAMP" fsck >/dev/null 2>&1 || { fail "fsck after a complete $sc"; return 1; }
  state_snapshot "$d.after" "${CRASH_SUBJECTS[@]}"
  if cmp -s "$d.before" "$d.after"; then fail "$sc changes the state"; return 1; fi
  pass "reference $sc: $((us / 1000)) ms (the shortest of 3 runs), the state changes"
}

crash_keep() {
  [ -n "${CRASH_KEEP:-}" ] || return 0
  local k=$CRASH_KEEP/trial-$1-$2
  mkdir -p "$k" && cp -a "$STAMP_STORE" "$k/store" && cp "$CRASH_DIR/fsck" "$k/fsck.txt" &&
    cp "$CRASH_DIR/ref-$2.before" "$CRASH_DIR/ref-$2.after" "$k/" &&
    { [ "$3" = fsck ] || cp "$CRASH_DIR/snap" "$k/snapshot"; } &&
    echo "kept the store of trial $1 in $k" >&2
}

# crash_trial I SCENARIO: one kill; sets CRASH_OUTCOME
crash_trial() {
  local i=$1 sc=$2 ref=$CRASH_DIR/ref-$2 us pid rc name
  us=$(cat "$ref.us")
  crash_rand
  # over the command's duration, less its first tenth (exec, loading)
  local delay=$((us / 10 + CRASH_X % (us - us / 10 + 1)))
  name="trial $i: $sc killed at $((delay / 1000)).$(printf %03d $((delay % 1000))) ms of $((us / 1000))"
  export STAMP_STORE=$CRASH_DIR/work
  store_copy "$CRASH_DIR/base" "$STAMP_STORE"
  crash_argv "$sc"
  "${CRASH_ARGV[@]}" >/dev/null 2>"$CRASH_DIR/err" &
  pid=$!
  crash_pause "$delay"
  kill -KILL "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null; rc=$?
  if [ "$rc" -ne 137 ] && [ "$rc" -ne 0 ]; then
    fail "$name" "the command exited $rc: $(head -c 300 "$CRASH_DIR/err")"; CRASH_OUTCOME=error; return
  fi
  if ! "$STAMP" fsck > "$CRASH_DIR/fsck" 2>&1; then
    fail "$name" "fsck fails (seed $CRASH_SEED): $(head -c 600 "$CRASH_DIR/fsck")"
    crash_keep "$i" "$sc" fsck; CRASH_OUTCOME=fsck; return
  fi
  state_snapshot "$CRASH_DIR/snap" "${CRASH_SUBJECTS[@]}"
  local where
  if cmp -s "$CRASH_DIR/snap" "$ref.before"; then where=before
  elif cmp -s "$CRASH_DIR/snap" "$ref.after"; then where=after
  else
    fail "$name" "the state is neither the one before nor the one after (seed $CRASH_SEED); vs before: $(diff "$ref.before" "$CRASH_DIR/snap" | head -n 12 | tr '\n' ' '); vs after: $(diff "$ref.after" "$CRASH_DIR/snap" | head -n 12 | tr '\n' ' ')"
    crash_keep "$i" "$sc" between; CRASH_OUTCOME=between; return
  fi
  if [ "$rc" -eq 0 ] && [ "$where" = before ]; then
    fail "$name" "the command finished but the state is the one before"; CRASH_OUTCOME=lost; return
  fi
  CRASH_OUTCOME=$([ "$rc" -eq 0 ] && echo finished || echo "killed-$where")
  # the store takes the command again after a kill (no stale lock)
  if [ "$where" = before ]; then
    if ! STAMP_LOCK_WAIT=5 crash_cmd "$sc" >/dev/null 2>"$CRASH_DIR/err"; then
      fail "$name" "the command fails when run again: $(head -c 300 "$CRASH_DIR/err")"
      CRASH_OUTCOME=rerun; return
    fi
    state_snapshot "$CRASH_DIR/snap" "${CRASH_SUBJECTS[@]}"
    if ! cmp -s "$CRASH_DIR/snap" "$ref.after"; then
      fail "$name" "run again, the command does not reach the state after"
      CRASH_OUTCOME=rerun; return
    fi
  fi
  pass "$name: $CRASH_OUTCOME"
}

# crash_run TRIALS SEED: the references, then the trials round-robin over
# the scenarios; prints a summary line per scenario and sets
# CRASH_KILLED (trials killed before the command finished)
crash_run() {
  local trials=$1 i sc
  CRASH_SEED=$2 CRASH_X=$2 CRASH_KILLED=0
  declare -gA CRASH_COUNT=()
  for sc in "${CRASH_SCENARIOS[@]}"; do crash_reference "$sc" || return 1; done
  for ((i = 1; i <= trials; i++)); do
    sc=${CRASH_SCENARIOS[$(((i - 1) % ${#CRASH_SCENARIOS[@]}))]}
    crash_trial "$i" "$sc"
    CRASH_COUNT[$sc,$CRASH_OUTCOME]=$((${CRASH_COUNT[$sc,$CRASH_OUTCOME]:-0} + 1))
    case $CRASH_OUTCOME in killed-*) CRASH_KILLED=$((CRASH_KILLED + 1)) ;; esac
  done
  for sc in "${CRASH_SCENARIOS[@]}"; do
    printf 'crash: %-12s %4d ms: killed-before %d, killed-after %d, finished %d, bad %d\n' \
      "$sc" $(($(cat "$CRASH_DIR/ref-$sc.us") / 1000)) \
      "${CRASH_COUNT[$sc,killed-before]:-0}" "${CRASH_COUNT[$sc,killed-after]:-0}" \
      "${CRASH_COUNT[$sc,finished]:-0}" \
      $((${CRASH_COUNT[$sc,fsck]:-0} + ${CRASH_COUNT[$sc,between]:-0} + ${CRASH_COUNT[$sc,error]:-0} + ${CRASH_COUNT[$sc,lost]:-0} + ${CRASH_COUNT[$sc,rerun]:-0}))
  done
}
