# t25-rough-edges: what a new user trips over first, made plain. Scores
# over no prompts read n/a (null in JSON) in eval, show and log; eval
# --facts says what a lost fact's answer is now, not in the queue's
# notation; reverted commits are marked in log, show and status, which
# count alike; diff labels its relative column; counts, ids and commit
# names are parsed strictly and bad usage exits 2 with one message;
# import reads the standard input, notes a file with no facts and refuses
# a prompt that is only its subject; read commands fail when their output
# cannot be written; a writer that waits for the lock says so. Every
# refusal leaves the store as it was. Commits are real MEMIT commits on a
# tiny random GPT-2 (stamp-fixture), as in t40, so this runs in seconds.
REPO=$(cd "$(dirname "$0")/../.." && pwd)
. "$(dirname "$0")/lib.sh"
FIXTURE="$BUILD/tools/stamp-fixture"

fixture_model_and_corpus || { finish; exit 1; }
# no paraphrase or neighbourhood columns
cat > a.csv <<'EOF'
subject,prompt,target_new,target_true
Alice Smith,{} plays the,guitar,piano
Bob Jones,{} works for,Apple,Google
EOF
cat > b.csv <<'EOF'
subject,prompt,target_new,target_true
Carol White,{} was born in,Rome,Paris
EOF
cat > c.csv <<'EOF'
subject,prompt,target_new,target_true
Dan Brown,{} speaks,French,English
EOF
commit() { "$STAMP" commit --corpus corpus.txt "$@"; }
# the state a refused command must leave as it was
snapshot() {
  { "$STAMP" log --json; "$STAMP" queue --json
    "$STAMP" status --json | jq -S 'del(.size_bytes, .disk_bytes, .space)'; } > "$1" 2>&1
}
# is NAME GOT WANTED
is() { if [ "$2" = "$3" ]; then pass "$1"; else fail "$1" "got '$2', wanted '$3'"; fi; }
# expect_no_grep NAME PATTERN FILE
expect_no_grep() {
  if grep -Eq -- "$2" "$3"; then fail "$1" "/$2/ in $3: $(grep -E -- "$2" "$3" | head -n 3)"
  else pass "$1"; fi
}
# one_message NAME CODE PATTERN CMD...: exits CODE, and stderr's first
# line, the only one that is not the synopsis or the hint, matches
one_message() {
  local name=$1 code=$2 pattern=$3; shift 3
  expect_exit "$name: exit $code" "$code" "$@"
  local other; other=$(grep -Evc '^(usage: |try )' "$T/err")
  if [ "$other" = 1 ] && head -n 1 "$T/err" | grep -Eq -- "$pattern"; then
    pass "$name: one message"
  else fail "$name: one message /$pattern/" "$(head -c 400 "$T/err")"; fi
}

expect_ok "init" "$STAMP" init --model model
snapshot empty.txt

# ---- import: the standard input, a file with no facts, a bare subject
printf 'subject,prompt,target_new\n' > header-only.csv
expect_ok "a header-only CSV imports nothing, without failing" "$STAMP" import header-only.csv
expect_grep "and says so on stderr" "^stamp: note: header-only\.csv: no facts \(only a header\)$" "$T/err"
expect_grep "instead of '0 queued'" "^nothing imported: no facts in header-only\.csv$" "$T/out"
printf 'subject,prompt,target_new\n' | "$STAMP" import - >"$T/out" 2>"$T/err"
is "a header on stdin: exit 0" "$?" 0
expect_grep "named <stdin>" "^stamp: note: <stdin>: no facts \(only a header\)$" "$T/err"
printf '[]\n' | "$STAMP" import - >"$T/out" 2>"$T/err"
is "an empty JSON list on stdin: exit 0" "$?" 0
expect_grep "no records" "<stdin>: no facts \(no records\)" "$T/err"
cat > bare.csv <<'EOF'
subject,prompt,target_new
Alice Smith,Alice Smith,guitar
Bob Jones,{},Apple
Carol White, {} ,Rome
EOF
expect_exit "a prompt that is only its subject is refused" 1 "$STAMP" import bare.csv
expect_grep "written out" "^bare\.csv:2: the prompt 'Alice Smith' is only the subject" "$T/err"
expect_grep "as {}" "^bare\.csv:3: the prompt '\{\}' is only the subject" "$T/err"
expect_grep "with spaces around" "^bare\.csv:4: the prompt ' \{\}' is only the subject" "$T/err"
printf 'subject,prompt,target_new\nDan Brown,Dan Brown,French\n' | "$STAMP" import - >"$T/out" 2>"$T/err"
is "a bad row on stdin: exit 1" "$?" 1
expect_grep "reported as <stdin>:LINE" "^<stdin>:2: the prompt 'Dan Brown' is only the subject" "$T/err"
expect_exit "'-' twice is bad usage" 2 "$STAMP" import - -
expect_ok "import --help tells of '-'" "$STAMP" import --help
expect_grep "the help names the standard input" "FILE '-' is the standard input" "$T/out"
expect_grep "and the file with no facts" "that is not an error \(exit 0\)" "$T/out"
snapshot s.txt
expect_same "the refusals and empty imports changed nothing" empty.txt s.txt
cat a.csv | "$STAMP" import - >"$T/out" 2>"$T/err"
is "a CSV on stdin imports (format told by the content)" "$?" 0
expect_grep "both facts" "2 queued" "$T/out"
is "its facts come from <stdin>, line by line" \
  "$("$STAMP" queue --json | jq -r '[.facts[] | "\(.source.file):\(.source.line)"] | join(" ")')" \
  "<stdin>:2 <stdin>:3"

# ---- scores over no prompts: n/a, null in JSON
expect_ok "commit 1 (no paraphrases, no neighbourhood prompts)" commit -m one
expect_grep "commit: paraphrase and neighbourhood n/a" "^  efficacy [0-9.]+ -> [0-9.]+   paraphrase n/a -> n/a   neighbourhood n/a -> n/a$" "$T/out"
expect_ok "log" "$STAMP" log
expect_grep "log: PS and NS are n/a, ES a number" "^1 .* ES [0-9]+\.[0-9]{2} PS n/a NS n/a  one$" "$T/out"
expect_ok "show 1" "$STAMP" show 1
expect_grep "show: PS and NS n/a after" "^after +ES [0-9]+\.[0-9]  PS n/a  NS n/a$" "$T/out"
expect_grep "and before" "^before +ES [0-9]+\.[0-9]  PS n/a  NS n/a$" "$T/out"
expect_ok "log --json" "$STAMP" log --json
is "the record holds null for PS and NS" \
  "$(jq -c '.commits[0].scores.after | [.ps, .ns, .ps_mag, .ns_acc, .n_paraphrase, (.es | type)]' "$T/out")" \
  '[null,null,null,null,0,"number"]'
expect_ok "eval" "$STAMP" eval --sample 0
expect_grep "eval: paraphrase n/a" "^  paraphrase +n/a +\(the facts have no paraphrases\)" "$T/out"
expect_grep "eval: neighbourhood n/a" "^  neighbourhood +n/a" "$T/out"
expect_no_grep "eval prints no 0.0% for them" "(paraphrase|neighbourhood) +0\.0%" "$T/out"
expect_ok "eval --json" "$STAMP" eval --json --sample 0
is "eval --json: null PS and NS, a number for ES" \
  "$(jq -c '.scores | [.ps, .ns, .n_paraphrase, .n_neighbor, (.es | type)]' "$T/out")" \
  '[null,null,0,0,"number"]'

# ---- eval --facts: a lost fact's expected answer and the answer now.
# Retention facts whose target_true is the base model's top-1 answer (a
# word after a space, so that the base model knows them all), on
# prompts that begin like the edited subject "Bob Jones" (commit 1's
# change shows there) but name another subject, so retention keeps them.
echo "subject,prompt,target_true,target_new" > ret.csv
for w in Bob Jones Erin; do
  for p in "was born in" "works as a" "lives near the" "likes" "speaks" "wrote" "met the" "drove to" "has a"; do
    tok=$("$STAMP" predict --model model --json "$w $p" | jq -r '.top[0].token')
    case "$tok" in " "[A-Za-z]*) [ -z "$(printf '%s' "${tok# }" | tr -d 'A-Za-z')" ] &&
      echo "$w,{} $p,${tok# },zzz" >> ret.csv ;; esac
  done
done
n_ret=$(($(wc -l < ret.csv) - 1))
expect_ok "eval --facts with the retention facts" "$STAMP" eval --retention ret.csv --facts
cp "$T/out" facts.txt
lost=$(sed -n 's/^\([0-9][0-9]*\) untouched facts\{0,1\} lost.*/\1/p' facts.txt)
if [ -n "$lost" ] && [ "$lost" -ge 1 ]; then pass "commit 1 lost some of the $n_ret retention facts ($lost)"
else fail "commit 1 lost some retention facts" "$(cat facts.txt)"; fi
expect_grep "the list says what it shows" "lost \(the answer expected; what the model says now\):" facts.txt
line=$(grep -E "^  \".*\"  expected '.*', now '.*'$" facts.txt | head -n 1)
[ -n "$line" ] && pass "a lost fact: \"prompt\"  expected 'X', now 'Y'" || fail "lost fact line" "$(cat facts.txt)"
expect_no_grep "no lost fact in the queue's '->' notation" "^  [^#].* ->" facts.txt
prompt=$(printf '%s' "$line" | sed 's/^  "\(.*\)"  expected.*/\1/')
now=$(printf '%s' "$line" | sed "s/.*, now '\(.*\)'\$/\1/")
want=$("$STAMP" predict --json "$prompt" | jq -r '.top[0].token')
is "'now' is the model's answer ($prompt)" "$now" "${want# }"
expect_ok "eval --facts --json" "$STAMP" eval --retention ret.csv --facts --json
is "--json: each lost fact has \"now\"" \
  "$(jq '[.retention.lost[] | select(.now | type == "string")] | length' "$T/out")" "$lost"

# ---- reverted commits: log, show and status agree
"$STAMP" import b.csv >/dev/null
expect_ok "commit 2" commit -m two --no-scores
expect_ok "revert HEAD (commit 2, exactly)" "$STAMP" revert HEAD
expect_ok "show 2" "$STAMP" show 2
expect_grep "show says it was reverted" "^commit 2 \(reverted\)$" "$T/out"
expect_grep "and how" "^reverted  exactly: off HEAD's chain" "$T/out"
expect_ok "show 2 --json" "$STAMP" show 2 --json
is "show --json: reverted, off the chain" "$(jq -c '[.reverted, .on_chain, .reverted_by]' "$T/out")" '[true,false,null]'
expect_ok "show 1" "$STAMP" show 1
expect_no_grep "commit 1 is not reverted" "reverted" "$T/out"
expect_ok "log" "$STAMP" log
expect_no_grep "log does not list commit 2" "^2 " "$T/out"
expect_grep "log counts it" "^\(1 commit off the chain: reverted while HEAD or reset away" "$T/out"
expect_ok "status" "$STAMP" status
expect_grep "status counts as log does" "^commits    1 \(1 more off the chain: reverted while HEAD, or reset away\)$" "$T/out"
"$STAMP" log --json > log.json; "$STAMP" status --json > status.json
is "status --json: commits as log --json lists them, the rest off the chain" \
  "$(jq -c '[.commits, .reverted, .off_chain]' status.json)" "[$(jq '.commits | length' log.json),0,1]"

"$STAMP" import c.csv >/dev/null
expect_ok "commit 3" commit -m three --no-scores
expect_ok "revert the older commit 1" "$STAMP" revert 1
expect_grep "by a new commit 4" "commit 4 reverts commit 1" "$T/out"
expect_ok "log" "$STAMP" log
expect_grep "log: commit 4 is a revert of commit 1" "^4 +[^ ]+  revert of commit 1  revert commit 1 \(one\)$" "$T/out"
expect_no_grep "not a memit commit with no scores" "^4 .*(memit|ES -)" "$T/out"
expect_grep "log: commit 1 is marked" "^1 .*\[reverted by 4\]  one$" "$T/out"
expect_ok "show 4" "$STAMP" show 4
expect_grep "show: a revert of commit 1" "^reverts   commit 1 " "$T/out"
expect_no_grep "show: no method line for a revert" "^method" "$T/out"
expect_ok "show 1" "$STAMP" show 1
expect_grep "show 1: reverted" "^commit 1 \(reverted\)$" "$T/out"
expect_grep "show 1: by commit 4" "^reverted  by commit 4$" "$T/out"
expect_ok "show 1 --json" "$STAMP" show 1 --json
is "show --json: reverted by 4, on the chain" "$(jq -c '[.reverted, .on_chain, .reverted_by]' "$T/out")" '[true,true,4]'
expect_ok "status" "$STAMP" status
expect_grep "status: 3 on the chain, one of them reverted, one off it" \
  "^commits    3 \(1 of them reverted by a later commit; 1 more off the chain" "$T/out"
"$STAMP" log --json > log.json; "$STAMP" status --json > status.json
is "log --json marks commit 1" "$(jq -c '[.commits[] | .reverted_by]' log.json)" '[null,null,4]'
is "status --json counts as log --json lists" "$(jq -c '[.commits, .reverted, .off_chain]' status.json)" \
  "[$(jq '.commits | length' log.json),1,1]"

# ---- diff: the relative column is labelled and readable
expect_ok "diff base" "$STAMP" diff base
expect_grep "the column says what it is" "^  tensor +\|\|dW\|\| +change / weight +max \|dW\| +rank$" "$T/out"
expect_grep "as a percentage" "^  h\.[0-9]+\.mlp\.c_proj\.weight +[0-9.e+-]+ +[0-9.]+% " "$T/out"
expect_grep "with a legend" "change / weight: \|\|dW\|\| / \|\|W\|\|, W the tensor at base" "$T/out"
expect_no_grep "no bare exponent in the relative column" "relative" "$T/out"
expect_ok "diff --help explains the columns" "$STAMP" diff --help
expect_grep "the help too" "share of the tensor's norm at A" "$T/out"

# ---- strict numbers and names; bad usage exits 2, one message each
printf 'subject,prompt,target_new,target_true\nErin Gray,{} drives a,truck,car\n' > e.csv
"$STAMP" import e.csv >/dev/null   # a queue, so that commit reaches its options
snapshot before.txt
one_message "eval --sample -5" 2 "^stamp eval: --sample wants a count" "$STAMP" eval --sample -5
one_message "eval --sample 5x" 2 "--sample wants a count .* not '5x'" "$STAMP" eval --sample 5x
one_message "eval --sample ''" 2 "--sample wants a count" "$STAMP" eval --sample ''
one_message "eval --sample overflow" 2 "--sample wants a count" "$STAMP" eval --sample 99999999999999999999999
one_message "eval -- -1" 2 "^stamp eval: '-1' is not a commit id" "$STAMP" eval -- -1
one_message "eval 0" 2 "'0' is not a commit id" "$STAMP" eval 0
one_message "eval +1" 2 "'\+1' is not a commit id" "$STAMP" eval +1
one_message "eval 2^64" 2 "'18446744073709551616' is not a commit id" "$STAMP" eval 18446744073709551616
expect_exit "eval of a commit that does not exist fails (1)" 1 "$STAMP" eval 99
expect_grep "naming it" "no commit 99 in the store" "$T/err"
one_message "queue --limit -1" 2 "--limit wants a positive number" "$STAMP" queue --limit -1
one_message "queue --limit +3" 2 "--limit wants a positive number" "$STAMP" queue --limit +3
one_message "queue --limit ' 3'" 2 "--limit wants a positive number" "$STAMP" queue --limit ' 3'
one_message "predict --top -1" 2 "--top wants a count" "$STAMP" predict --top -1 hello
one_message "stats --samples -3" 2 "--samples wants a positive number" "$STAMP" stats --samples -3
one_message "stats --layers 3-1" 2 "^stamp stats: --layers: layers '3-1': expected a list" "$STAMP" stats --layers 3-1
one_message "stats --layers '1,'" 2 "--layers: layers '1,'" "$STAMP" stats --layers 1,
one_message "stats --layers ' 1'" 2 "--layers: layers ' 1'" "$STAMP" stats --layers ' 1'
one_message "stats --layers 99" 2 "--layers: .*layer 99 is outside" "$STAMP" stats --layers 99
one_message "reset -1" 2 "^stamp reset: bad commit name '-1'" "$STAMP" reset -- -1
one_message "revert 2^64" 2 "bad commit name '18446744073709551616'" "$STAMP" revert 18446744073709551616
one_message "diff 1x" 2 "^stamp diff: bad commit name '1x'" "$STAMP" diff 1x
one_message "diff HEAD~-1" 2 "bad commit name 'HEAD~-1'" "$STAMP" diff HEAD~-1
one_message "diff 'HEAD~ 1'" 2 "bad commit name 'HEAD~ 1'" "$STAMP" diff 'HEAD~ 1'
expect_exit "reset to a commit that does not exist fails (1)" 1 "$STAMP" reset 99
expect_grep "naming it" "no commit 99" "$T/err"
one_message "commit --limit -3" 2 "^stamp commit: --limit wants a positive number, not '-3'" "$STAMP" commit --limit -3
one_message "commit --threads 0" 2 "^stamp commit: --threads wants a positive number" "$STAMP" commit --threads 0
one_message "commit --layers 3-1" 2 "^stamp commit: layers '3-1': expected a list" "$STAMP" commit --layers 3-1
one_message "commit --set foo=1" 2 "^stamp commit: hparams: unknown key 'foo'" "$STAMP" commit --set foo=1
one_message "commit --set without =" 2 "^stamp commit: --set 'rounds': expected KEY=VALUE" "$STAMP" commit --set rounds
for c in init import queue status log show diff revert reset eval stats predict fsck commit export report; do
  one_message "$c --bogus" 2 "^stamp $c: unknown option '--bogus'$" "$STAMP" "$c" --bogus
done
one_message "a missing value" 2 "^stamp eval: option '--sample' needs a value$" "$STAMP" eval --sample
one_message "a value where none goes" 2 "^stamp log: option '--json' takes no value$" "$STAMP" log --json=1
one_message "an unknown short option" 2 "^stamp queue: unknown option '-x'$" "$STAMP" queue -x
one_message "commit --json on bad usage" 2 "^stamp commit: unknown option" "$STAMP" commit --json --bogus
snapshot after.txt
expect_same "the refused commands changed nothing" before.txt after.txt

# ---- output that cannot be written is an error
expect_exit "queue --json > /dev/full fails" 1 sh -c '"$0" queue --json > /dev/full' "$STAMP"
expect_grep "saying why" "^stamp: error: cannot write output: No space left on device$" "$T/err"
# the other read commands check it where every command ends, in the
# dispatch (cli/stamp.c calls cli_finish_output)
for c in "log --json" "log" "status" "show 1" "show 1 --json" "diff base" "eval --sample 0" "fsck"; do
  expect_exit "$c > /dev/full fails" 1 sh -c '"$0" '"$c"' > /dev/full' "$STAMP"
  expect_grep "$c: one message" "^stamp: error: cannot write output: No space left on device$" "$T/err"
done

# ---- --store without its directory is bad usage, said once
expect_exit "--store without a directory: exit 2" 2 "$STAMP" --store
expect_grep "it says the option needs a directory" "^stamp: option '--store' needs a directory$" "$T/err"
[ "$(wc -l < "$T/err")" = 1 ] && pass "one line" || fail "one line" "$(cat "$T/err")"
expect_exit "--store= (empty): exit 2" 2 "$STAMP" --store= log

# ---- a writer that finds the lock held says that it waits
"$FIXTURE" hold --store "$T/store" 30 > hold.out 2>&1 &
holder=$!
for _ in $(seq 100); do grep -q holding hold.out && break; sleep 0.1; done
STAMP_LOCK_WAIT=1 "$STAMP" import c.csv >"$T/out" 2>"$T/err"; rc=$?
is "the waiting writer gives up (exit 1)" "$rc" 1
expect_grep "it said first whom it waits for and how long" \
  "^stamp: waiting for the lock of the store '.*' held by pid $holder \.\.\. \(STAMP_LOCK_WAIT=1 s\)$" "$T/err"
is "once, before the error" "$(grep -c waiting "$T/err") $(sed -n 2p "$T/err" | grep -c 'locked by another process')" "1 1"
STAMP_LOCK_WAIT=0 "$STAMP" import c.csv >"$T/out" 2>"$T/err"
expect_no_grep "no notice when it does not wait" "waiting" "$T/err"
kill "$holder" 2>/dev/null; wait "$holder" 2>/dev/null
expect_ok "the lock is free again: no notice" "$STAMP" revert HEAD
expect_no_grep "no waiting line" "waiting" "$T/err"
finish
