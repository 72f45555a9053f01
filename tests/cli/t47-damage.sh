# t47-damage: a damaged store is always detected, never spread, never a
# crash. A small store (a tiny random GPT-2, two commits, a revert, the
# key statistics, a queue) is damaged on copies, one way per trial: a
# byte of the header of every page, random byte flips anywhere in
# data.mdb, truncations to several sizes. For each trial, either `stamp
# fsck` reports it (exit 1), or every command's output and exit status
# equal the undamaged store's; and no command ever dies by a signal
# (exit >= 128). A command that succeeds after fsck reported damage must
# still print what the undamaged store gives ("spread" otherwise). Then
# targeted damage, each with its repair: an overlay tensor (predict,
# export, eval, commit, revert and reset refuse it; fsck --repair rebuilds
# it), the key statistics (dropped; `stamp stats` makes them again), a
# queue entry (rewritten), a version record (dropped from the queue), and
# a damaged base model (revert and reset refuse to claim "bit for bit").
# Prints the counts. DAMAGE_FLIPS (random flips, default 12) and
# DAMAGE_HEADER_ROUNDS (header bytes per page, default 1) make it larger:
# bench/bench_damage.sh runs it so.
REPO=$(cd "$(dirname "$0")/../.." && pwd)
. "$(dirname "$0")/lib.sh"

# under the sanitizers: 3 flips, and the header byte of every third page
# (pages 0, 3, 6, ...; the plain run covers every page)
default_flips=12; PAGE_STEP=1
[ "$SANITIZED" = 1 ] && { default_flips=3; PAGE_STEP=3; }
FLIPS=${DAMAGE_FLIPS:-$default_flips}
ROUNDS=${DAMAGE_HEADER_ROUNDS:-1}
RANDOM=${DAMAGE_SEED:-4711}
fixture_model_and_corpus || { finish; exit 1; }
printf 'subject,prompt,target_new,target_true\nAlice Smith,{} plays the,guitar,piano\nBob Jones,{} works for,Apple,Google\n' > a.csv
printf 'subject,prompt,target_new,target_true\nCarol White,{} was born in,Rome,Paris\nAlice Smith,{} plays the,violin,piano\n' > b.csv
printf 'subject,prompt,target_new,target_true\nDan Brown,{} speaks,French,English\nEve Stone,{} lives in,Oslo,Rome\n' > c.csv
commit() { "$STAMP" commit --no-scores --corpus corpus.txt "$@"; }
expect_ok "init" "$STAMP" init --model model
printf 'subject,prompt,target_new,target_true\nFay Wray,{} acts in,Rome,Paris\n' > d.csv
"$STAMP" import a.csv >/dev/null && commit -m one >/dev/null &&
  "$STAMP" import b.csv >/dev/null && commit -m two >/dev/null &&
  "$STAMP" revert HEAD >/dev/null && "$STAMP" import c.csv >/dev/null &&
  commit -m three >/dev/null && "$STAMP" import d.csv >/dev/null
expect_ok "a store with commits, a revert, statistics and a queue" "$STAMP" fsck
cp -a "$STAMP_STORE" good
PS=$(getconf PAGESIZE)

# The commands every trial runs, in a store directory $1, outputs in $2:
# each one's stdout (export: the exported file's checksum) and status.
# (predict reads what export reads: the targeted damage below runs it)
CMDS=("log --json" "queue --json" "show Alice\\ Smith --json"
      "diff base --json" "export" "reset base")
run_all() {
  local dir=$1 out=$2 i=0 c
  mkdir -p "$out"
  for c in "${CMDS[@]}"; do
    i=$((i + 1))
    rm -rf "$out/exp"
    if [ "$c" = export ]; then
      STAMP_STORE=$dir timeout 120 "$STAMP" export "$out/exp" > /dev/null 2> "$out/$i.err"
      echo $? > "$out/$i.rc"
      { [ -f "$out/exp/model.safetensors" ] && cksum < "$out/exp/model.safetensors"; } > "$out/$i.out"
    else
      eval "STAMP_STORE=\$dir timeout 120 \"\$STAMP\" $c" > "$out/$i.out" 2> "$out/$i.err"
      echo $? > "$out/$i.rc"
    fi
  done
}
cp -a good good1 && run_all "$T/good1" base
cp -a good good2 && run_all "$T/good2" base2
if diff -r base base2 > /dev/null; then pass "the commands' outputs are repeatable"
else fail "the commands' outputs are repeatable" "$(diff -r base base2 | head -5)"; fi
rm -rf good1 good2

base_sum=$(cat base/*.out base/*.rc | cksum)
reported=0; harmless=0; signals=0; silent=0; spread=0; trials=0
# Runs one trial on ./w (already damaged): $1 names the damage.
trial() {
  local what=$1 i fsck_rc bad=0 differs=0
  trials=$((trials + 1))
  STAMP_STORE=$T/w timeout 120 "$STAMP" fsck > fsck.out 2> fsck.err; fsck_rc=$?
  [ "$fsck_rc" -ge 128 ] && { signals=$((signals + 1)); fail "fsck dies by signal $fsck_rc: $what"; }
  rm -rf got; run_all "$T/w" got
  if [ "$(cat got/*.out got/*.rc | cksum)" = "$base_sum" ]; then
    [ "$fsck_rc" -eq 1 ] && reported=$((reported + 1)) || harmless=$((harmless + 1))
    return
  fi
  for i in $(seq ${#CMDS[@]}); do
    local rc; rc=$(cat "got/$i.rc")
    if [ "$rc" -ge 128 ]; then
      signals=$((signals + 1)); bad=1
      fail "'${CMDS[$((i - 1))]}' dies by signal $rc: $what"
    fi
    if ! cmp -s "got/$i.out" "base/$i.out" || ! cmp -s "got/$i.rc" "base/$i.rc"; then
      differs=1
      if [ "$fsck_rc" -ne 0 ] && [ "$rc" -eq 0 ] && [ "$(cat "base/$i.rc")" -eq 0 ]; then
        spread=$((spread + 1))
        fail "'${CMDS[$((i - 1))]}' gives other output on a damaged store: $what" "$(head -c 200 "got/$i.out")"
      fi
    fi
  done
  if [ "$fsck_rc" -eq 1 ]; then reported=$((reported + 1))
  elif [ "$differs" -eq 0 ]; then harmless=$((harmless + 1))
  else
    silent=$((silent + 1))
    fail "damage that fsck passes changes the commands' output: $what"
  fi
  if [ -n "${DAMAGE_KEEP:-}" ] && [ "$bad" -eq 1 ]; then cp -a w "$DAMAGE_KEEP/$trials"; fi
}
fresh() { rm -rf w; cp -a good w; }
flip() { # FILE OFFSET XOR
  local v; v=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')
  [ -z "$v" ] && return
  printf "$(printf '\\%03o' $(( (v ^ $3) & 255 )))" | dd of="$1" bs=1 seek="$2" conv=notrunc 2>/dev/null
}
size=$(stat -c %s good/data.mdb); pages=$((size / PS))

# ---- a byte of every page's header
for r in $(seq "$ROUNDS"); do
  for p in $(seq 0 "$PAGE_STEP" $((pages - 1))); do
    fresh; flip w/data.mdb $((p * PS + RANDOM % 16)) $((RANDOM % 255 + 1))
    trial "page $p header"
  done
done
# ---- random byte flips anywhere in the file
for k in $(seq "$FLIPS"); do
  fresh; off=$(( (RANDOM * 32768 + RANDOM) % size ))
  flip w/data.mdb "$off" $((1 << (RANDOM % 8)))
  trial "a bit of byte $off"
done
# ---- truncations
for cut in 0 100 $PS $((2 * PS + 100)) $((size / 2)) $((size - PS)) $((size - 1)); do
  fresh; truncate -s "$cut" w/data.mdb
  trial "data.mdb truncated to $cut bytes"
done
echo "damage trials: $trials ($pages pages, $ROUNDS header rounds, $FLIPS flips, 7 truncations): fsck reported $reported, harmless $harmless, passed fsck and changed output $silent, spread $spread, signals $signals"
[ "$signals" -eq 0 ] && pass "no command died by a signal ($trials trials)" || fail "no command died by a signal" "$signals"
[ "$silent" -eq 0 ] && pass "every damage fsck passes is harmless ($harmless)" || fail "every damage fsck passes is harmless" "$silent"
[ "$spread" -eq 0 ] && pass "no command spreads damage fsck reports ($reported)" || fail "no command spreads damage" "$spread"
[ "$reported" -gt 0 ] && pass "fsck reports damage" || fail "fsck reports damage"

# ---- targeted damage, each with its repair. damage_record DB N: the
# value of the N-th record of database DB gets one bit flipped (through
# LMDB's own mdb_dump and mdb_load, so only that value changes).
damage_record() {
  mdb_dump -s "$1" w > dump.txt || return 1
  awk -v n="$2" 'BEGIN { r = 0 } /^ / { r++; if (r == 2 * n) { c = substr($0, length($0)); h = "0123456789abcdef"; i = index(h, c); $0 = substr($0, 1, length($0) - 1) substr(h, (i % 16) + 1, 1) } } { print }' dump.txt > dump2.txt
  mdb_load -s "$1" -f dump2.txt w 2>/dev/null
}
S() { STAMP_STORE=$T/w "$STAMP" "$@"; }

fresh; damage_record tensors 1
tensor=$(mdb_dump -p -s tensors w | sed -n '/HEADER=END/{n;p;q}' | sed 's/^ //')
expect_exit "a damaged edited tensor: fsck reports it" 1 S fsck
expect_grep "fsck names the tensor" "problem: tensor '$tensor' \(database 'tensors'\) fails its checksum" "$T/out"
for c in "predict Alice Smith plays the" "export e1" "eval --sample 0" "commit --no-scores --corpus corpus.txt" "reset base"; do
  expect_exit "$c refuses the damaged tensor" 1 S $c
  expect_grep "$c names it" "damaged: tensor '$tensor'" "$T/err"
done
[ ! -e e1 ] && pass "export wrote nothing" || fail "export wrote nothing"
expect_exit "fsck --repair mends it" 0 S fsck --repair
expect_grep "the repair is reported" "^repaired: rebuilt tensor '$tensor' from the base model and [1-9][0-9]* diffs?" "$T/out"
rm -rf got; run_all "$T/w" got
diff -r base got > /dev/null && pass "after the repair every command gives the undamaged output" ||
  fail "after the repair every command gives the undamaged output" "$(diff -r base got | head -5)"

fresh; damage_record stats 1
expect_exit "damaged key statistics: fsck reports them" 1 S fsck
expect_grep "fsck names them" "the statistics of layer [0-9]+ of model" "$T/out"
expect_exit "commit refuses them" 1 S commit --no-scores --corpus corpus.txt
expect_grep "commit names them" "damaged: the statistics of layer" "$T/err"
expect_exit "fsck --repair drops them" 0 S fsck --repair
expect_grep "and says to run stamp stats" "^repaired: dropped the statistics of layer .*run \`stamp stats\`" "$T/out"
expect_ok "stamp stats computes them again" S stats --corpus corpus.txt
expect_ok "fsck after stats" S fsck
expect_ok "a commit works again" S commit --no-scores --corpus corpus.txt

fresh; damage_record queue 1
expect_exit "a damaged queue entry: fsck reports it" 1 S fsck
expect_grep "fsck names it" "the queue entry of version [0-9]+ \(database 'queue'\)" "$T/out"
expect_exit "queue refuses it" 1 S queue
expect_exit "fsck --repair rewrites it" 0 S fsck --repair --json
expect_grep "the rewrite is reported" "rewrote the queue entry of version [0-9]+" "$T/out"
S queue --json > q.json; cmp -s q.json base/2.out && pass "the queue is as before" || fail "the queue is as before"

fresh; n=$(mdb_dump -s versions w | grep -c '^ '); damage_record versions $((n / 2))
expect_exit "a damaged queued version: fsck reports it" 1 S fsck
expect_exit "fsck --repair cannot rebuild it" 1 S fsck --repair
expect_grep "it drops it from the queue" "^repaired: dropped version [0-9]+ from the queue: its record is damaged" "$T/out"
expect_grep "and says what is left" "^not repaired: version [0-9]+ \(database 'versions'\)" "$T/out"
expect_ok "the queue reads again" S queue

fresh; cp model/model.safetensors model.bak
flip model/model.safetensors $(( $(stat -c %s model/model.safetensors) - 100 )) 1
expect_exit "a damaged base model: fsck reports it" 1 S fsck
expect_grep "fsck names the base tensor" "changed behind the store's back: tensor" "$T/out"
expect_exit "reset refuses it" 1 S reset base
expect_grep "reset names it" "changed behind the store's back" "$T/err"
expect_exit "revert refuses it" 1 S revert HEAD
cp model.bak model/model.safetensors
expect_ok "with the file put back, fsck is clean" S fsck

# ---- a store of the format without checksums reads, and upgrades
export STAMP_STORE=$T/old
STAMP_TEST_STORE_FORMAT=1 "$STAMP" init --model model > /dev/null
"$STAMP" import a.csv > /dev/null
expect_ok "an old-format store: commit" commit -m one
expect_ok "fsck" "$STAMP" fsck
expect_grep "fsck says it has no checksums" "^note: the store is of format 1" "$T/out"
expect_ok "fsck --upgrade" "$STAMP" fsck --upgrade
expect_grep "the upgrade is reported" "^repaired: upgraded the store to format 2" "$T/out"
expect_ok "fsck --json after the upgrade" "$STAMP" fsck --json
expect_grep "format 2, every record checksummed" '"format": 2' "$T/out"
[ "$(jq '.checked.checksums == .checked.records and .checked.records > 0' "$T/out")" = true ] &&
  pass "every record carries a checksum" || fail "every record carries a checksum"
expect_ok "the upgraded store predicts" "$STAMP" predict Alice Smith plays the
finish
