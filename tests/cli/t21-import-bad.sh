# t21-import-bad: malformed fact lists. Each must fail with exit 1 and a
# clear "FILE:LINE: problem" (just "FILE: problem" when there is no line:
# a missing file, a directory), and leave the store exactly as it was:
# `stamp queue --json` and `stamp log --json` are compared before and
# after every attempt. The store holds facts and a commit beforehand, so
# "unchanged" means something.
REPO=$(cd "$(dirname "$0")/../.." && pwd)
. "$(dirname "$0")/lib.sh"
FIXTURE="$BUILD/tools/stamp-fixture"
(cd "$REPO" && "$FIXTURE" model --out "$T/model" --positions 64 --vocab tests/data/gpt2-tiny) >/dev/null
"$STAMP" init --model "$T/model" >/dev/null || { fail "init"; finish; exit 1; }

H='subject,prompt,target_new,target_true'
printf '%s\nDanielle Darrieux,The mother tongue of {} is,English,French\nToko Yasuda,{} plays the,piano,guitar\n' "$H" > good.csv
printf '%s\nWellington,The twin city of {} is,Sheffield,Sydney\n' "$H" > good2.csv
expect_ok "a good import first" "$STAMP" import good.csv
"$FIXTURE" commit --store "$STAMP_STORE" -m "first" >/dev/null
expect_ok "and a second one" "$STAMP" import good2.csv
"$STAMP" queue --json > q0.json
"$STAMP" log --json > l0.json
jq -e '.count == 1' q0.json >/dev/null && pass "one fact queued, two committed" \
  || fail "one fact queued, two committed" "$(cat q0.json)"

# bad NAME PATTERN FILE... : exit 1, PATTERN on stderr, nothing changed
bad() {
  local name=$1 pat=$2; shift 2
  "$STAMP" import "$@" >"$T/out" 2>"$T/err"; local rc=$?
  [ "$rc" -eq 1 ] && pass "$name: exit 1" || fail "$name: exit 1" "exit $rc: $(head -c 300 "$T/err")"
  expect_grep "$name: says where and what" "$pat" "$T/err"
  expect_grep "$name: and that nothing was imported" "nothing imported" "$T/err"
  "$STAMP" queue --json > q.json 2>/dev/null
  "$STAMP" log --json > l.json 2>/dev/null
  expect_same "$name: queue unchanged" q0.json q.json
  expect_same "$name: log unchanged" l0.json l.json
}

printf '%s\nA,{} is,"x,y\nB,{} is,z,w\n' "$H" > unterminated.csv
bad "unterminated quote" '^unterminated.csv:2: unterminated quoted field' unterminated.csv

printf '%s\nA,{} i"s,x,y\n' "$H" > stray.csv
bad "stray quote in an unquoted field" '^stray.csv:2: malformed CSV: a quote inside an unquoted field' stray.csv

printf '%s\nA,"{} is"x,y,z\n' "$H" > afterquote.csv
bad "text after a closing quote" '^afterquote.csv:2: malformed CSV' afterquote.csv

printf 'subject,prompt\nA,{} is\n' > nocol.csv
bad "missing required column" "^nocol.csv:1: missing required column 'target_new'" nocol.csv

printf 'subject,prompt,target_new,subject\nA,{} is,x,A\n' > dupcol.csv
bad "duplicate header" "^dupcol.csv:1: duplicate column 'subject'" dupcol.csv

printf 'subject,prompt,target_nu\nA,{} is,x\n' > unknown.csv
bad "unknown column" "^unknown.csv:1: unknown column 'target_nu'" unknown.csv

printf '%s\nA,{} is,x,y\nB,{} is,x,y,z\n' "$H" > toomany.csv
bad "too many fields" '^toomany.csv:3: 5 fields, the header has 4' toomany.csv

printf '%s\nA,{} is,x\n' "$H" > toofew.csv
bad "too few fields" '^toofew.csv:2: 3 fields, the header has 4' toofew.csv

printf '%s\nA,{} is,,y\n' "$H" > emptytarget.csv
bad "empty target" '^emptytarget.csv:2: empty target_new' emptytarget.csv

printf '%s\n,{} is,x,y\n' "$H" > emptysubject.csv
bad "empty subject" '^emptysubject.csv:2: empty subject' emptysubject.csv

printf '%s\nParis,The capital of France is,Rome,Paris\n' "$H" > notinprompt.csv
bad "subject not in the prompt" "^notinprompt.csv:2: subject 'Paris' is not in the prompt" notinprompt.csv

printf '%s\nA,{} and {},x,y\n' "$H" > twoholes.csv
bad "two placeholders" "^twoholes.csv:2: the prompt .* has 2 '\{\}'" twoholes.csv

printf '%s\nA\377,{} is,x,y\n' "$H" > badutf8.csv
bad "invalid UTF-8" '^badutf8.csv:2: field 1 \(.subject.\) is not valid UTF-8' badutf8.csv

printf '%s\nA,{} is,x,y\nB,{} i\000s,x,y\n' "$H" > nul.csv
bad "a NUL byte" '^nul.csv:3: field 2 \(.prompt.\) contains a NUL byte' nul.csv

printf '%s\nA\001B,{} is,x,y\n' "$H" > control.csv
bad "a control character" "^control.csv:2: subject 'A.x01B' contains a control character" control.csv

printf '%s\nA,{} is,x,y\n' "$H" | iconv -f UTF-8 -t UTF-16 > utf16.csv
bad "a UTF-16 file" '^utf16.csv:1: the file is UTF-16' utf16.csv

printf '%s\nA,{} is,x,y\n' "$H" | iconv -f UTF-8 -t UTF-16LE > utf16le.csv
bad "a UTF-16 file without BOM" '^utf16le.csv:1: the file is UTF-16' utf16le.csv

{ printf '%s\nA,{} is,' "$H"; head -c 10485760 /dev/zero | tr '\0' 'x'; printf ',y\n'; } > huge.csv
bad "a 10 MB field" '^huge.csv:2: field 3 \(.target_new.\) is 10485760 bytes long' huge.csv

head -c 4096 "$STAMP" > garbage.csv
bad "binary garbage" '^garbage.csv:1: ' garbage.csv

: > empty.csv
bad "an empty file" '^empty.csv:1: empty file' empty.csv

printf '\n\n  \n' > blank.csv
bad "a file of blank lines" '^blank.csv:1: empty file' blank.csv

printf '%s\nA,{} is,x,y\nB,{} is,z,w\nA,{} is,q,y\n' "$H" > conflict.csv
bad "two targets for one fact in one file" "^conflict.csv:4: target_new ' q' differs from ' x' given for the same fact on line 2" conflict.csv

printf '%s\nA,{} is,x,x\n' "$H" > same.csv
bad "target_new equals target_true" '^same.csv:2: target_new equals target_true' same.csv

long=$(for i in $(seq 80); do printf 'word '; done)
printf '%s\nA,%s{} is,x,y\n' "$H" "$long" > long.csv
bad "longer than the model's context" '^long.csv:2: the prompt and its target make [0-9]+ tokens; the model takes at most 64' long.csv

printf '{"facts": [{"subject": "A"}]}\n' > shape.json
bad "JSON of the wrong shape" '^shape.json:1: unknown record shape \(fields: facts\)' shape.json

printf '[\n  {"prompt": "{} is", "subject": "A", "target_new": "x"},\n  {"prompt": "{} is", "sub' > truncated.json
bad "truncated JSON" '^truncated.json:3: invalid JSON in the record starting on line 3' truncated.json

printf '[\n  {"prompt": "{} is", "subject": "A", "target_new": "x"}\n' > unclosed.json
bad "an array never closed" '^unclosed.json:3: truncated JSON: the array is never closed' unclosed.json

printf '[\n  {"prompt": "{} is", "subject": "A", "target_new": "x"},\n  42\n]\n' > notobject.json
bad "a record that is not an object" '^notobject.json:3: a record must be a JSON object' notobject.json

printf '[{"prompt": "{} is", "subject": "A",\n "subject": "B", "target_new": "x"}]\n' > dupkey.json
bad "duplicate JSON keys" '^dupkey.json:2: .*duplicate object key' dupkey.json

printf '[{"prompt": "{} \\u0000 is", "subject": "A", "target_new": "x"}]\n' > nul.json
bad "a NUL in a JSON string" '^nul.json:1: .*u0000 is not allowed' nul.json

printf '[{"requested_rewrite": {"prompt": "{} is", "subject": "A"}}]\n' > cfmissing.json
bad "CounterFact without target_new" "^cfmissing.json:1: missing field 'target_new'" cfmissing.json

mkdir -p adir
bad "a directory" '^adir: is a directory' adir

bad "a missing file" '^missing.csv: cannot open: No such file' missing.csv

bad "a good file with a bad one: all or nothing" '^emptytarget.csv:2: empty target_new' good2.csv emptytarget.csv

printf '%s\nA,{} is,,y\nB,{} is,,y\n' "$H" > twobad.csv
bad "every problem is reported" '^twobad.csv:3: empty target_new' twobad.csv
expect_grep "every problem is reported (the first too)" '^twobad.csv:2: empty target_new' "$T/err"

expect_exit "an unknown --format is bad usage" 2 "$STAMP" import --format xml good.csv
expect_exit "no FILE is bad usage" 2 "$STAMP" import
"$STAMP" queue --json > q.json
expect_same "usage errors change nothing" q0.json q.json

# many bad rows: the first 100 are shown, and the total
awk -v h="$H" 'BEGIN { print h; for (i = 0; i < 150; i++) printf "S%d,{} is,,y\n", i }' > many.csv
expect_exit "150 bad rows" 1 "$STAMP" import many.csv
n=$(grep -c '^many.csv:[0-9]*: empty target_new' "$T/err")
[ "$n" -eq 100 ] && pass "at most 100 problems are listed" || fail "at most 100 problems are listed" "$n"
expect_grep "and the total is told" '150 problems in all, the first 100 shown' "$T/err"
finish
