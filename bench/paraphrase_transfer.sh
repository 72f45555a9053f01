#!/usr/bin/env bash
# paraphrase_transfer.sh: after a commit, splits a batch's facts by
# whether the base model knew the (first) paraphrase and whether the
# edit took on the rewrite prompt, and counts the paraphrases the edit
# reached in each group: does an edit reach a phrasing the model knew
# by memorising it as often as one it knew by generalising?
#
#   STAMP_STORE=STORE bash bench/paraphrase_transfer.sh WORLD [COMMIT]
#
# STORE: a store on WORLD; COMMIT (default 1) the commit whose facts are
# looked at (`stamp show COMMIT --json`). First answer token only:
# "knew" = the base model's top-1 next token on the paraphrase is the
# true answer's first token; "took" / "reached" = after the commit the
# new answer's first token is likelier than the true one's on the
# rewrite prompt / the paraphrase (`stamp predict --top` over the whole
# vocabulary). An approximation of ES and PS, which compare the whole
# answers' NLL.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
STAMP=${STAMP:-$here/build/stamp}
[ $# -ge 1 ] && [ $# -le 2 ] || { echo "usage: paraphrase_transfer.sh WORLD [COMMIT]" >&2; exit 2; }
world=$1; commit=${2:-1}
: "${STAMP_STORE:?set STAMP_STORE to the store with the batch committed}"
vocab=$(jq -r '.model.vocab_size' "$world/world.json")
predict() { "$STAMP" predict --json --top "$vocab" "$@"; }
first_token() { predict --model "$world" "$1" | jq '.tokens[0]'; }
logprob() { jq --argjson id "$2" '[.top[] | select(.id == $id) | .logprob][0] // -1e9' <<< "$1"; }
declare -A n reached
while IFS=$'\t' read -r subject prompt target_new target_true paraphrase; do
  [ -n "$paraphrase" ] || continue
  tn=$(first_token "$target_new"); tt=$(first_token "$target_true")
  rewrite=${prompt//"{}"/$subject}
  knew=$(predict --model "$world" "$paraphrase" | jq --argjson tt "$tt" '.top[0].id == $tt')
  after_rw=$(predict "$rewrite"); after_p=$(predict "$paraphrase")
  took=$(awk -v a="$(logprob "$after_rw" "$tn")" -v b="$(logprob "$after_rw" "$tt")" 'BEGIN { print (a > b) ? "true" : "false" }')
  hit=$(awk -v a="$(logprob "$after_p" "$tn")" -v b="$(logprob "$after_p" "$tt")" 'BEGIN { print (a > b) ? 1 : 0 }')
  key="knew=$knew took=$took"
  n[$key]=$(( ${n[$key]:-0} + 1 )); reached[$key]=$(( ${reached[$key]:-0} + hit ))
done < <("$STAMP" show "$commit" --json |
         jq -r '.facts[] | [.subject, .prompt, .target_new, .target_true,
                            (.paraphrases[0] // "")] | @tsv')
for key in "knew=false took=false" "knew=false took=true" "knew=true took=false" "knew=true took=true"; do
  c=${n[$key]:-0}; h=${reached[$key]:-0}
  printf '%-24s %4d facts, paraphrase reached %4d (%s%%)\n' "$key" "$c" "$h" \
    "$( [ "$c" -gt 0 ] && echo $(( 100 * h / c )) || echo -)"
done
