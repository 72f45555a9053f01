# t22-import-odd: valid but unusual fact lists import correctly: a UTF-8
# byte order mark, CRLF line ends, quoted fields holding commas, quotes
# and newlines, non-ASCII subjects, header names in another case and
# order, blank lines, no final newline, a header with no rows, and the
# JSON formats of the field (CounterFact, EasyEdit, zsRE as JSON Lines).
REPO=$(cd "$(dirname "$0")/../.." && pwd)
. "$(dirname "$0")/lib.sh"
FIXTURE="$BUILD/tools/stamp-fixture"
(cd "$REPO" && "$FIXTURE" model --out "$T/model") >/dev/null
"$STAMP" init --model "$T/model" >/dev/null || { fail "init"; finish; exit 1; }

# fact N FIELD: a field of the N-th queued fact (0-based) as JSON text
fact() { "$STAMP" queue --json | jq -c ".facts[$1].$2"; }
is() { # NAME GOT WANT
  [ "$2" = "$3" ] && pass "$1" || fail "$1" "got $2, wanted $3"
}

printf '\357\273\277Target_New, SUBJECT ,prompt,target_true\r\n' > odd.csv
printf 'Paris,"Nîmes, Gard","""{}"" is twinned with",Rome\r\n' >> odd.csv
printf '\r\n' >> odd.csv
printf '" Kyōto",東京,"{} (the city)\r\nis twinned with",\r\n' >> odd.csv
printf 'Zürich,Müller,Müller lives in\tthe city of,Bern' >> odd.csv
expect_ok "BOM, CRLF, quotes, newlines, non-ASCII" "$STAMP" import odd.csv
expect_grep "three queued" "3 queued, 0 superseded, 0 unchanged" "$T/out"
is "quoted comma in a subject" "$(fact 0 subject)" '"Nîmes, Gard"'
is "doubled quotes in a prompt" "$(fact 0 prompt)" '"\"{}\" is twinned with"'
is "a leading space is added to the target" "$(fact 0 target_new)" '" Paris"'
is "and to target_true" "$(fact 0 target_true)" '" Rome"'
is "line of the first row" "$(fact 0 source.line)" 2
is "a CJK subject" "$(fact 1 subject)" '"東京"'
is "a newline inside a quoted prompt" "$(fact 1 prompt)" '"{} (the city)\r\nis twinned with"'
is "a quoted leading space is kept as is" "$(fact 1 target_new)" '" Kyōto"'
is "no target_true is empty" "$(fact 1 target_true)" '""'
is "line after a blank line" "$(fact 1 source.line)" 4
is "the subject written out becomes {}" "$(fact 2 prompt)" '"{} lives in\tthe city of"'
is "line after a multi-line row" "$(fact 2 source.line)" 6
is "the last row without a newline" "$(fact 2 target_new)" '" Zürich"'
expect_ok "show a non-ASCII subject" "$STAMP" show "東京"
expect_grep "its history" "subject '東京': 1 version" "$T/out"

printf 'subject,prompt,target_new\n' > header-only.csv
expect_ok "a header without rows" "$STAMP" import header-only.csv
expect_grep "queues nothing" "nothing imported" "$T/out"

cat > cf.json <<'EOF'
[
  {"case_id": 0, "requested_rewrite": {"prompt": "The mother tongue of {} is",
     "relation_id": "P103", "target_new": {"str": "English", "id": "Q1860"},
     "target_true": {"str": "French", "id": "Q150"}, "subject": "Danielle Darrieux"},
   "paraphrase_prompts": ["Shayna does this and Danielle Darrieux speaks"],
   "neighborhood_prompts": ["The mother tongue of L\u00e9on Blum is"],
   "generation_prompts": ["Danielle Darrieux's mother tongue is"]}
]
EOF
expect_ok "CounterFact JSON" "$STAMP" import cf.json
n=$("$STAMP" queue --json | jq '.count')
is "CounterFact record queued" "$n" 4
is "its relation" "$(fact 3 relation)" '"P103"'
is "its neighbourhood target is target_true" "$(fact 3 neighborhood[0].target)" '" French"'
is "an escaped character decoded" "$(fact 3 neighborhood[0].prompt)" '"The mother tongue of Léon Blum is"'
is "the record's line" "$(fact 3 source.line)" 2

cat > ee.json <<'EOF'
[{"case_id": 2, "prompt": "Toko Yasuda, the", "target_new": "piano",
  "subject": "Toko Yasuda", "ground_truth": "guitar",
  "rephrase_prompt": "Toko Yasuda is incredible at",
  "locality_prompt": "John Lennon performs on the",
  "locality_ground_truth": "guitar"}]
EOF
expect_ok "EasyEdit JSON" "$STAMP" import ee.json
is "EasyEdit prompt" "$(fact 4 prompt)" '"{}, the"'
is "EasyEdit paraphrase" "$(fact 4 paraphrases[0])" '"Toko Yasuda is incredible at"'

cat > zsre.jsonl <<'EOF'
{"subject": "Watts Humphrey", "src": "What university did Watts Humphrey attend?", "answers": ["Illinois Institute of Technology"], "alt": "University of Michigan", "rephrase": "What university did Watts Humphrey take part in?", "loc": "nq question: who played desmond doss father in hacksaw ridge", "loc_ans": "Hugo Weaving"}
{"subject": "Ramalinaceae", "src": "Which family does Ramalinaceae belong to?", "answers": ["Lecanorales"], "alt": "Lecanoraceae"}
EOF
expect_ok "zsRE as JSON Lines" "$STAMP" import zsre.jsonl
is "zsRE prompt" "$(fact 5 prompt)" '"What university did {} attend?"'
is "zsRE neighbour without its tag" "$(fact 5 neighborhood[0].prompt)" '"who played desmond doss father in hacksaw ridge"'
is "zsRE second record's line" "$(fact 6 source.line)" 2
expect_ok "--format names a format" "$STAMP" import --format zsre zsre.jsonl
expect_grep "and nothing new comes of it" "0 queued, 0 superseded, 2 unchanged" "$T/out"

# the world's fact list, when it has been built
if [ -f "$WORLD_TINY/facts.csv" ]; then
  expect_ok "init on the tiny world" "$STAMP" --store world init --model "$WORLD_TINY"
  expect_ok "the tiny world's facts.csv imports" "$STAMP" --store world import "$WORLD_TINY/facts.csv"
  rows=$(($(wc -l < "$WORLD_TINY/facts.csv") - 1))
  expect_grep "every row queued" "^import 1: $rows queued" "$T/out"
fi
finish
