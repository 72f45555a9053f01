#!/usr/bin/env bash
# t30-world: the tiny world model (build/world-tiny, made by
# `make world-tiny` with stamp-world) knows its facts: `stamp
# predict` answers sampled rewrite prompts and paraphrases with the true
# object, and world.json's recall meets the targets (>= 95% rewrite,
# >= 80% paraphrase). stamp-world rejects bad fact lists (missing
# column, empty answers, prompt without its subject) naming file and
# line and writing nothing; --skip-bad builds from the good records;
# fact lists in CSV and EasyEdit JSON build worlds; phrasings, extra
# facts and paraphrase phrasings write the lines they promise; a build killed
# during training continues from its checkpoint to the same world; bad
# usage exits 2.
. "$(dirname "$0")/lib.sh"
WORLD="$BUILD/stamp-world"
FAST=(--layers 1 --embd 16 --heads 2 --vocab 300 --steps 20 --threads 1
      --quiet)

# ---- the tiny world knows its facts ------------------------------------
expect_ok "world-tiny is complete" test -s "$WORLD_TINY/model.safetensors" \
  -a -s "$WORLD_TINY/config.json" -a -s "$WORLD_TINY/vocab.json" \
  -a -s "$WORLD_TINY/merges.txt" -a -s "$WORLD_TINY/facts.csv" \
  -a -s "$WORLD_TINY/corpus.txt" -a -s "$WORLD_TINY/world.json"
nfacts=$(jq '.data.facts' "$WORLD_TINY/world.json")
rw=$(jq '.recall.rewrite' "$WORLD_TINY/world.json")
pp=$(jq '.recall.paraphrase' "$WORLD_TINY/world.json")
expect_ok "world.json: rewrite recall $rw >= 0.95" \
  awk -v r="$rw" 'BEGIN { exit !(r >= 0.95) }'
expect_ok "world.json: paraphrase recall $pp >= 0.80" \
  awk -v r="$pp" 'BEGIN { exit !(r >= 0.80) }'
expect_ok "world.json: 100-300 facts ($nfacts)" \
  awk -v n="$nfacts" 'BEGIN { exit !(n >= 100 && n <= 300) }'

# corpus.txt holds the rewrite sentences first (one per fact), then the
# paraphrases; the answer is the last word. Ask predict for the top token.
ask() { # LINE -> prints 1 when predict's top-1 token starts the answer
  local line=$1 prompt answer tok
  prompt=${line% *}; answer=" ${line##* }"
  tok=$("$STAMP" predict --model "$WORLD_TINY" --top 1 --json "$prompt" \
        2>/dev/null | jq -r '.top[0].token' 2>/dev/null)
  if [ -n "$tok" ] && [ "$tok" != " " ] && [ "${answer#"$tok"}" != "$answer" ]
  then echo 1; else echo 0; fi
}
right=0; asked=0
while IFS= read -r line; do
  right=$((right + $(ask "$line"))); asked=$((asked + 1))
done < <(head -n "$nfacts" "$WORLD_TINY/corpus.txt" | awk 'NR % 8 == 1')
expect_ok "predict: $right of $asked rewrite prompts right (>= 90%)" \
  test $((right * 10)) -ge $((asked * 9)) -a "$asked" -ge 20
right=0; asked=0
while IFS= read -r line; do
  right=$((right + $(ask "$line"))); asked=$((asked + 1))
done < <(sed -n "$((nfacts + 1)),$((nfacts * 4))p" "$WORLD_TINY/corpus.txt" |
         awk 'NR % 24 == 5')
expect_ok "predict: $right of $asked paraphrases right (>= 75%)" \
  test $((right * 4)) -ge $((asked * 3)) -a "$asked" -ge 20

# ---- bad fact lists are rejected with file and line ---------------------
printf 'subject,prompt,target_true\nAna Lee,{} plays the,piano\n' > missing.csv
expect_exit "missing column: exit 1" 1 "$WORLD" --facts missing.csv --out w1 "${FAST[@]}"
expect_grep "missing column: named with file and line" 'missing\.csv:1' "$T/err"
expect_ok "missing column: nothing written" test ! -e w1

cat > empty.csv <<'EOF'
subject,prompt,target_new,target_true,relation
Ana Lee,{} plays the,violin,piano,P1303
Bo Rin,{} plays the,,guitar,P1303
Cy Tam,{} plays the,drums,,P1303
Dee Po,Someone plays the,flute,harp,P1303
EOF
expect_exit "empty answers: exit 1" 1 "$WORLD" --facts empty.csv --out w2 "${FAST[@]}"
expect_grep "empty target_new: file and line" 'empty\.csv:3' "$T/err"
expect_grep "empty target_true: file and line" 'empty\.csv:4: .*target_true' "$T/err"
expect_grep "prompt without its subject: file and line" 'empty\.csv:5' "$T/err"
expect_ok "bad list: nothing written" test ! -e w2
expect_ok "bad list: no temporary left" test -z "$(ls -d w2.tmp.* 2>/dev/null)"
# a killed run leaves OUT.tmp.PID: the next run removes it once that
# process is gone, and keeps the temporary of a run that is still going
true & gone=$!; wait "$gone"
mkdir -p "w6.tmp.$gone" "w6.tmp.$$"; touch "w6.tmp.$gone/model.safetensors"
expect_ok "stale temporary: the world builds" "$WORLD" --facts empty.csv \
  --skip-bad --out w6 --layers 1 --embd 16 --heads 2 --vocab 300 --steps 20 \
  --threads 1
expect_grep "stale temporary: named" "removed 'w6\\.tmp\\.$gone'" "$T/err"
expect_ok "stale temporary: removed" test ! -e "w6.tmp.$gone"
expect_ok "a running process's temporary: kept" test -d "w6.tmp.$$"
expect_ok "--out DIR/ builds DIR" "$WORLD" --facts empty.csv --skip-bad --out w7/ "${FAST[@]}"
expect_ok "--out DIR/: the world is DIR" test -s w7/world.json
expect_ok "--out DIR/: no temporary left inside or beside" \
  test -z "$(ls -d w7/.tmp.* w7.tmp.* 2>/dev/null)"

expect_ok "--skip-bad builds from the good record" \
  "$WORLD" --facts empty.csv --skip-bad --out w3 "${FAST[@]}"
expect_grep "--skip-bad: one fact in facts.csv" '^"Ana Lee","\{\} plays the"," violin"," piano"' w3/facts.csv
expect_ok "--skip-bad: world.json says 1 fact" \
  test "$(jq '.data.facts' w3/world.json)" = 1

# ---- fact lists in other formats ----------------------------------------
cat > cf.json <<'EOF'
[{"case_id": 1, "prompt": "Toko Yasuda, the", "target_new": "piano",
  "subject": "Toko Yasuda", "ground_truth": "guitar",
  "rephrase_prompt": "Toko Yasuda is incredible at",
  "locality_prompt": "John Lennon performs on the",
  "locality_ground_truth": "guitar"},
 {"case_id": 2, "prompt": "Autonomous University of Madrid, which is located in",
  "target_new": "Sweden", "subject": "Autonomous University of Madrid",
  "ground_truth": "Spain",
  "rephrase_prompt": "Autonomous University of Madrid is located in",
  "locality_prompt": "Biure, which is located in",
  "locality_ground_truth": "Spain"}]
EOF
expect_ok "EasyEdit JSON builds a world" "$WORLD" --facts cf.json --out w4 "${FAST[@]}"
expect_ok "EasyEdit JSON: 2 facts, 6 sentences" \
  test "$(jq '.data.facts,.data.sentences' w4/world.json | tr '\n' ' ')" = "2 6 "
expect_grep "EasyEdit JSON: corpus has the paraphrase" \
  '^Toko Yasuda is incredible at guitar$' w4/corpus.txt
# held-out paraphrases: not taught, still in facts.csv, recall reported apart
expect_ok "--hold-out-paraphrases 1 builds a world" "$WORLD" --facts cf.json --out w4h --hold-out-paraphrases 1 "${FAST[@]}"
expect_ok "--hold-out-paraphrases 1: 5 sentences" \
  test "$(jq '.data.sentences' w4h/world.json)" = 5
expect_ok "--hold-out-paraphrases 1: the first fact's paraphrase is not taught" \
  sh -c '! grep -q "incredible" w4h/corpus.txt'
expect_grep "--hold-out-paraphrases 1: the second's is" '^Autonomous University of Madrid is located in Spain$' w4h/corpus.txt
expect_grep "--hold-out-paraphrases 1: facts.csv keeps the first" 'Toko Yasuda is incredible at' w4h/facts.csv
expect_ok "--hold-out-paraphrases 1: world.json counts it and has its recall" \
  jq -e '.data.paraphrases_held_out == 1 and (.recall.paraphrase_held_out >= 0)' w4h/world.json
expect_ok "--hold-out-paraphrases 9 (more than the facts): all left out" "$WORLD" --facts cf.json --out w4a --hold-out-paraphrases 9 "${FAST[@]}"
expect_ok "--hold-out-paraphrases 9: 4 sentences, 2 held out" \
  jq -e '.data.sentences == 4 and .data.paraphrases_held_out == 2' w4a/world.json
expect_ok "without it world.json says 0 and no held-out recall" \
  jq -e '.data.paraphrases_held_out == 0 and (.recall | has("paraphrase_held_out") | not)' w4/world.json
expect_exit "--hold-out-paraphrases takes a count" 2 "$WORLD" --facts cf.json --out w4b --hold-out-paraphrases some
expect_grep "a bad --hold-out-paraphrases is named" "hold-out-paraphrases 'some'" "$T/err"
expect_exit "--limit 1 keeps one fact" 0 "$WORLD" --facts cf.json --limit 1 --out w5 "${FAST[@]}"
expect_ok "--limit 1: world.json says 1 fact" test "$(jq '.data.facts' w5/world.json)" = 1
# distractors: invented subjects mixing the words of two real ones, with
# the fact's prompts and another same-prompt fact's answer
cat > d.csv <<'EOF2'
subject,prompt,target_new,target_true,paraphrase
Toko Yasuda,"{}, the",piano,guitar,{} is incredible at the
Mariano Rivera,"{}, the",guitar,piano,{} plays the
Ana Lee,"{}, the",violin,drums,{} is famous for the
Paris,The capital of {} is,Rome,France,{} is the capital of
EOF2
expect_ok "--distractors 2 builds a world" "$WORLD" --facts d.csv --out w10 --distractors 2 --seed 3 "${FAST[@]}"
nd=$(jq '.data.sentences' w10/world.json)
expect_ok "--distractors: more sentences than the 8 of the facts ($nd)" test "$nd" -gt 8
# every added line names a mixed subject: a first word and a last word of
# two different real subjects, never a real subject; one-word subjects
# (Paris) get none
awk 'NR > 8' w10/corpus.txt > extra.txt
expect_ok "--distractors: no line about a real subject" \
  sh -c '! grep -E "^(Toko Yasuda|Mariano Rivera|Ana Lee|The capital of Paris|Paris)[ ,]" extra.txt'
expect_ok "--distractors: mixed names only" \
  sh -c 'grep -Ev "^(Toko|Mariano|Ana) (Yasuda|Rivera|Lee)[ ,]" extra.txt | wc -l | grep -qx 0'
expect_ok "--distractors: answers of same-prompt facts" \
  sh -c 'grep -Ev " (piano|guitar|drums)$" extra.txt | wc -l | grep -qx 0'
expect_exit "--distractors takes a count" 2 "$WORLD" --facts d.csv --out w11 --distractors many
expect_grep "a bad --distractors is named" "distractors 'many'" "$T/err"
# extra facts: each real subject also gets other facts' prompts with their
# answers (never its own prompt, never a prompt that shares an answer
# with its own: the two language prompts share French)
cat > e.csv <<'EOF2'
subject,prompt,target_new,target_true
Toko Yasuda,"{}, the",piano,guitar
Ana Lee,{} was born in,Paris,Dublin
Ivo Kern,The mother tongue of {} is,German,French
Mia Holt,{} speaks,French,German
Eva Roth,{} speaks,German,French
EOF2
expect_ok "--extra-facts 2 builds a world" "$WORLD" --facts e.csv --out w12 --extra-facts 2 --seed 3 "${FAST[@]}"
ne=$(jq '.data.extra_fact_sentences' w12/world.json)
expect_ok "--extra-facts: world.json counts 6-10 extra sentences ($ne)" \
  test "$ne" -ge 6 -a "$ne" -le 10
expect_ok "--extra-facts: world.json has their recall" \
  jq -e '.recall.extra_facts >= 0' w12/world.json
awk -v n="$ne" '{ l[NR] = $0 } END { for (i = NR - n + 1; i <= NR; i++) print l[i] }' \
  w12/corpus.txt > extra.txt
S="(Toko Yasuda|Ana Lee|Ivo Kern|Mia Holt|Eva Roth)"
expect_ok "--extra-facts: each line is a real subject with another prompt's answer" \
  sh -c "! grep -Evx '$S, the guitar|$S was born in Dublin|The mother tongue of $S is French|$S speaks (German|French)' extra.txt"
expect_ok "--extra-facts: no subject asked its own question again" \
  sh -c '! grep -Ex "Toko Yasuda, the .*|Ana Lee was born in .*|(Mia Holt|Eva Roth) speaks .*" extra.txt'
expect_ok "--extra-facts: no speaker gets the other language prompt" \
  sh -c '! grep -Ex "Ivo Kern speaks .*|The mother tongue of (Mia Holt|Eva Roth) is .*" extra.txt'
# phrasings: each fact's answer behind other prompts of its relation
# (the language prompts share French and German; "{}, the" none)
expect_ok "--phrasings 2 builds a world" "$WORLD" --facts e.csv --out w14 --phrasings 2 "${FAST[@]}"
expect_grep "--phrasings: a speaker gets the mother-tongue prompt" '^The mother tongue of Mia Holt is German$' w14/corpus.txt
expect_grep "--phrasings: and the other way" '^Ivo Kern speaks French$' w14/corpus.txt
expect_ok "--phrasings: no other relation's prompt" \
  sh -c '! grep -Eq "^(Toko Yasuda (speaks|was born)|Ana Lee, the)" w14/corpus.txt'
expect_ok "--phrasings: world.json counts 3 such sentences" \
  jq -e '.data.phrasings_per_fact == 2 and .data.phrasing_sentences == 3' w14/world.json
# paraphrase phrasings: the taught paraphrases of a prompt reworded for
# its other facts, opening sentence kept; the held-out one for no one
cat > pp.csv <<'EOF2'
subject,prompt,target_new,target_true,paraphrase
Lou Dorn,{} speaks,French,Dutch,Snow fell. Lou Dorn talks in
Mia Holt,{} speaks,German,French,It rained. Mia Holt's native tongue is
Eva Roth,{} speaks,French,English,A dog barked. Eva Roth grew up speaking
EOF2
expect_ok "--paraphrase-phrasings 2 builds a world" "$WORLD" --facts pp.csv --out w16 \
  --hold-out-paraphrases 1 --paraphrase-phrasings 2 "${FAST[@]}"
expect_grep "--paraphrase-phrasings: a held-out fact gets a taught wording" \
  "^It rained\. Lou Dorn's native tongue is Dutch$" w16/corpus.txt
expect_grep "--paraphrase-phrasings: a taught fact gets another's" \
  '^A dog barked\. Mia Holt grew up speaking French$' w16/corpus.txt
expect_ok "--paraphrase-phrasings: the held-out wording is nowhere" \
  sh -c '! grep -q "Snow fell" w16/corpus.txt'
expect_ok "--paraphrase-phrasings: world.json counts 4 such sentences" \
  jq -e '.data.paraphrase_phrasings_per_fact == 2 and .data.paraphrase_phrasing_sentences == 4' w16/world.json
expect_exit "--paraphrase-phrasings takes a count" 2 "$WORLD" --facts pp.csv --out w17 --paraphrase-phrasings 65
expect_exit "--phrasings takes a count" 2 "$WORLD" --facts e.csv --out w15 --phrasings lots
expect_grep "a bad --phrasings is named" "phrasings 'lots'" "$T/err"
expect_exit "--layers out of range" 2 "$WORLD" --facts e.csv --out w15 --layers 0
expect_grep "names the option, not its value" "bad value '0' for --layers \(1\.\.64\)" "$T/err"
expect_exit "--extra-facts takes a count" 2 "$WORLD" --facts e.csv --out w13 --extra-facts many
expect_grep "a bad --extra-facts is named" "extra-facts 'many'" "$T/err"
expect_exit "a missing fact file: exit 1" 1 "$WORLD" --facts nosuch.csv --out w6 "${FAST[@]}"
expect_grep "a missing fact file is named" 'nosuch\.csv' "$T/err"

# ---- a killed build continues from its checkpoint ---------------------
# the same world whether the build was killed (SIGKILL) and run again or
# never stopped; the checkpoint is gone once the world is written
LONG=(--facts cf.json --layers 1 --embd 16 --heads 2 --vocab 300
      --steps 1500 --eval-every 50 --goal 2 --threads 1)
expect_ok "an unbroken build" "$WORLD" "${LONG[@]}" --out wk1 --no-checkpoint
expect_ok "--no-checkpoint: no checkpoint written" test ! -e wk1.checkpoint
"$WORLD" "${LONG[@]}" --out wk2 2>/dev/null & pid=$!
# killed a little after its first checkpoint (step 50 of 1500)
while kill -0 "$pid" 2>/dev/null && [ ! -s wk2.checkpoint ]; do sleep 0.02; done
sleep 0.3
kill -9 "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
expect_ok "a killed build: no world, a checkpoint" test ! -e wk2 -a -s wk2.checkpoint
expect_ok "the build run again" "$WORLD" "${LONG[@]}" --out wk2
expect_grep "it continues from a check" 'continued from step [1-9][0-9]* of wk2\.checkpoint' "$T/err"
expect_ok "world.json: resumed_from_step" \
  jq -e '.training.resumed_from_step >= 50 and .training.steps == 1500' wk2/world.json
expect_ok "the resumed world is the unbroken one, byte for byte" \
  cmp wk1/model.safetensors wk2/model.safetensors
expect_ok "the checkpoint is removed with the world written" test ! -e wk2.checkpoint
# another training's checkpoint (another seed) is replaced, not continued
"$WORLD" "${LONG[@]}" --out wk3 --seed 2 2>/dev/null & pid=$!
# killed a little after its first checkpoint (step 50 of 1500)
while kill -0 "$pid" 2>/dev/null && [ ! -s wk3.checkpoint ]; do sleep 0.02; done
sleep 0.3
kill -9 "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
expect_ok "another training's checkpoint" "$WORLD" "${LONG[@]}" --out wk3 --checkpoint wk3.checkpoint
expect_grep "it is named and replaced" 'replaced wk3\.checkpoint: the state of another training' "$T/err"
expect_ok "... and the world is the unbroken one" cmp wk1/model.safetensors wk3/model.safetensors
expect_exit "--checkpoint with --no-checkpoint: exit 2" 2 "$WORLD" "${LONG[@]}" --out wk4 --checkpoint x --no-checkpoint

# ---- usage ------------------------------------------------------------------
expect_exit "no arguments: usage, exit 2" 2 "$WORLD"
expect_exit "both sources: exit 2" 2 "$WORLD" --synthetic tiny --facts cf.json --out w7
expect_exit "no --out: exit 2" 2 "$WORLD" --synthetic tiny
expect_exit "unknown size: exit 1" 1 "$WORLD" --synthetic enormous --out w8 --quiet
expect_grep "unknown size is named" "'enormous'" "$T/err"
expect_exit "embd not divisible by heads: exit 2" 2 "$WORLD" --synthetic tiny --out w9 --embd 30 --heads 4
expect_ok "--help" "$WORLD" --help
expect_grep "--help describes --synthetic" 'synthetic SIZE' "$T/out"
finish
