#!/usr/bin/env bash
# demo.sh: `make demo`, the main job on the built-in default. A store on
# the tiny world model, a batch of corrections from edits/demo.csv
# stamped in as one commit, the scores, the weight diff, the model's
# answers before and after, then an exact revert.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
STAMP=${STAMP:-$here/build/stamp}
WORLD=${WORLD:-$here/build/world-tiny}
EDITS=${EDITS:-$here/edits/demo.csv}
store=${DEMO_STORE:-$here/store}
export STAMP_PROGRESS=${STAMP_PROGRESS:-1}
stamp() { "$STAMP" --store "$store" "$@"; }
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

if [ -e "$store" ]; then
  if [ -e "$store/.demo" ]; then rm -rf "$store"
  else
    echo "demo: '$store' holds a store that the demo did not make; move it away or set DEMO_STORE" >&2
    exit 1
  fi
fi

say "A store on the tiny world model"
jq -r '"The model: GPT-2, \(.model.n_layer) layers, d_model \(.model.n_embd), \(.model.parameters) parameters, trained in \(.seconds.training | floor) s to know \(.data.facts) facts (\(.recall.rewrite * 100 | floor)% answered top-1)."' "$WORLD/world.json"
stamp init --model "$WORLD"
touch "$store/.demo"

say "Queue the corrections in $(basename "$EDITS")"
stamp import "$EDITS"
stamp queue | head -n 8
echo "  ..."

# three facts to watch: their rewrite prompts and old and new answers
mapfile -t watch < <(stamp queue --json |
  jq -r '.facts[:3][] | "\(.prompt_text)\t\(.target_true)\t\(.target_new)"')
ask() {
  for w in "${watch[@]}"; do
    IFS=$'\t' read -r prompt old new <<< "$w"
    got=$(stamp predict --top 1 --json "$prompt" | jq -r '.top[0].token')
    printf '  %-55s -> %-12s (old answer:%s, new:%s)\n' "$prompt" "$got" "$old" "$new"
  done
}
say "What the model answers now"
ask

say "Stamp the batch into the model (MEMIT, one commit)"
stamp commit -m "demo corrections"

say "Scores of the commit, the edits that did not take, the facts lost"
stamp eval --facts

say "What changed in the weights"
stamp diff

say "What the model answers after the commit"
ask

say "Revert the commit: the tensors come back bit for bit"
stamp revert 1
ask

say "Check the store"
stamp fsck
stamp log
echo
echo "demo: done. The store is in '$store'; try 'build/stamp --store $store show 1'."
