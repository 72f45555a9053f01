# t23-versions: versions of facts and what log/show/status make of them.
# A re-import queues nothing new; a new target supersedes a queued
# version (reported); the same target as a committed version is
# unchanged, a new one is queued; --skip-bad imports the good rows; show
# lists a subject's history and a commit's record; log follows HEAD's
# chain (commits are written through the store API by stamp-fixture, as
# the commit command would).
REPO=$(cd "$(dirname "$0")/../.." && pwd)
. "$(dirname "$0")/lib.sh"
FIXTURE="$BUILD/tools/stamp-fixture"
(cd "$REPO" && "$FIXTURE" model --out "$T/model") >/dev/null
"$STAMP" init --model "$T/model" >/dev/null || { fail "init"; finish; exit 1; }
H='subject,prompt,target_new,target_true'
is() { [ "$2" = "$3" ] && pass "$1" || fail "$1" "got $2, wanted $3"; }

printf '%s\nAda Lovelace,{} was born in,London,Paris\nAlan Turing,{} worked at,Bletchley,Cambridge\n' "$H" > a.csv
expect_ok "import" "$STAMP" import a.csv
expect_grep "two queued" "^import 1: 2 queued, 0 superseded, 0 unchanged" "$T/out"
"$STAMP" queue --json > q1.json
expect_ok "import again" "$STAMP" import a.csv
expect_grep "queues nothing new" "^import 2: 0 queued, 0 superseded, 2 unchanged" "$T/out"
"$STAMP" queue --json > q2.json
expect_same "the queue is as it was" q1.json q2.json

printf '%s\nAda Lovelace,{} was born in,Rome,Paris\n' "$H" > b.csv
expect_ok "a new target for a queued fact" "$STAMP" import b.csv
expect_grep "supersedes it" "^import 3: 1 queued, 1 superseded, 0 unchanged" "$T/out"
expect_grep "and says which" "^superseded: 'Ada Lovelace was born in' ' London' \(version 1\) -> ' Rome' \(version 3, b.csv:2\)" "$T/out"
q=$("$STAMP" queue --json)
is "the queue still has two facts" "$(jq '.count' <<<"$q")" 2
is "the new version replaced the old" "$(jq -c '[.facts[].version]' <<<"$q")" '[2,3]'
is "with the new target" "$(jq -r '.facts[1].target_new' <<<"$q")" ' Rome'
is "as version 2 of the fact" "$(jq '.facts[1].number' <<<"$q")" 2
expect_ok "show a subject" "$STAMP" show "Ada Lovelace"
expect_grep "lists both versions" "subject 'Ada Lovelace': 2 versions" "$T/out"
expect_grep "the old one superseded" "v1 +#1 +London +superseded +a.csv:2" "$T/out"
expect_grep "the new one queued" "v2 +#3 +Rome +queued +b.csv:2" "$T/out"
expect_ok "show --json" "$STAMP" show "Ada Lovelace" --json
is "its states" "$(jq -c '[.versions[].state]' "$T/out")" '["superseded","queued"]'

# the same slot twice in one import: the later file supersedes
printf '%s\nGrace Hopper,{} invented,COBOL,FORTRAN\n' "$H" > c1.csv
printf '%s\nGrace Hopper,{} invented,LISP,FORTRAN\n' "$H" > c2.csv
expect_ok "two files, one import" "$STAMP" import c1.csv c2.csv
expect_grep "one transaction, one import id" "^import 4: 2 queued, 1 superseded, 0 unchanged" "$T/out"

# --skip-bad
printf '%s\nKurt Godel,{} proved,incompleteness,completeness\nBad Row,{} is,,x\nEmmy Noether,{} proved,symmetry,x\n' "$H" > mixed.csv
expect_exit "a bad row fails the import" 1 "$STAMP" import mixed.csv
expect_ok "--skip-bad imports the good rows" "$STAMP" import --skip-bad mixed.csv
expect_grep "and counts the bad" "^import 5: 2 queued, 0 superseded, 0 unchanged, 1 bad skipped" "$T/out"
expect_grep "reporting them" "^mixed.csv:3: empty target_new" "$T/err"
expect_exit "--skip-bad does not skip unreadable files" 1 "$STAMP" import --skip-bad mixed.csv nofile.csv

# commits (through the store API), log and show
n_queued=$("$STAMP" queue --json | jq '.count')
id=$("$FIXTURE" commit --store "$STAMP_STORE" -m "first batch" --limit 2 --scores 1,0.5,0.75 --time 2026-11-29T04:00:00Z)
is "a commit" "$id" 1
expect_ok "log" "$STAMP" log
expect_grep "one line per commit" "^1 +2026-11-29T04:00:00Z +2 facts +memit +ES 1.00 PS 0.50 NS 0.75  first batch$" "$T/out"
expect_ok "show 1" "$STAMP" show 1
expect_grep "the commit" "^commit 1 \(HEAD\)" "$T/out"
expect_grep "its facts" "#2 +Alan Turing worked at -> Bletchley" "$T/out"
expect_grep "its layer table" "^1 +h\.1\.mlp\.c_proj\.weight +0\.125" "$T/out"
expect_ok "show HEAD --json" "$STAMP" show HEAD --json
is "the record" "$(jq '.commit.id' "$T/out")" 1
is "its facts" "$(jq -c '[.facts[] | .state]' "$T/out")" '["committed","committed"]'
is "the queue lost them" "$("$STAMP" queue --json | jq '.count')" $((n_queued - 2))
expect_ok "status" "$STAMP" status --json
is "status: committed" "$(jq '.committed' "$T/out")" 2
is "status: HEAD" "$(jq '.head' "$T/out")" 1

printf '%s\nAlan Turing,{} worked at,Bletchley,Cambridge\n' "$H" > same.csv
expect_ok "the committed target again" "$STAMP" import same.csv
expect_grep "is unchanged" "0 queued, 0 superseded, 1 unchanged" "$T/out"
printf '%s\nAlan Turing,{} worked at,Manchester,Cambridge\n' "$H" > newer.csv
expect_ok "a new target for a committed fact" "$STAMP" import newer.csv
expect_grep "is queued, superseding nothing queued" "1 queued, 0 superseded, 0 unchanged" "$T/out"
expect_ok "show the subject" "$STAMP" show "Alan Turing"
expect_grep "committed in commit 1" "#2 +Bletchley +committed +commit 1" "$T/out"

"$FIXTURE" commit --store "$STAMP_STORE" -m "second" --limit 1 >/dev/null
expect_ok "log --json" "$STAMP" log --json
is "newest first" "$(jq -c '[.commits[].id]' "$T/out")" '[2,1]'
"$FIXTURE" head --store "$STAMP_STORE" 1
expect_ok "log after HEAD moved back" "$STAMP" log --json
is "follows the chain from HEAD" "$(jq -c '[.commits[].id]' "$T/out")" '[1]'
expect_ok "show 2 still shows the commit reset away" "$STAMP" show 2
expect_grep "not as HEAD" "^commit 2 \(reverted\)$" "$T/out"
expect_ok "a number that is no commit is a subject" "$STAMP" import <(printf '%s\n1984,{} was written by,Huxley,Orwell\n' "$H")
expect_ok "show 1984" "$STAMP" show 1984
expect_grep "shows the subject" "subject '1984'" "$T/out"
finish
