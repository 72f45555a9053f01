#!/usr/bin/env bash
# world.sh: builds the benchmark world model: a GPT-2 (6 layers, d_ff
# 4096) trained on real CounterFact records (plus distractor subjects)
# until it knows them, with stamp-world, niced. Called by `make world` (FACTS=... optional).
#
#   bash bench/world.sh [FACTS] [--limit N] [stamp-world options...]
#
# FACTS defaults to $FACTS, else ../shared/data/counterfact-train.json (beside the repository);
# --limit (default 2000, or $LIMIT) takes the first N records; the world
# goes to $WORLD_OUT (default build/world-cf). Writes the log and the
# world's world.json to $RESULT, by default bench/results/NAME-DATE.txt
# (NAME: the world directory's name, world-cf by default).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
facts=${FACTS:-$root/../shared/data/counterfact-train.json}
if [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; then facts=$1; shift; fi
limit=${LIMIT:-2000}
args=()
while [ $# -gt 0 ]; do
  case $1 in
    --limit) limit=$2; shift 2 ;;
    --limit=*) limit=${1#--limit=}; shift ;;
    *) args+=("$1"); shift ;;
  esac
done
out=${WORLD_OUT:-$root/build/world-cf}
tool=${BUILD:-$root/build}/stamp-world
[ -x "$tool" ] || { echo "world.sh: no $tool (run make)" >&2; exit 1; }
[ -f "$facts" ] || { echo "world.sh: no fact file '$facts'" >&2; exit 1; }
# the world (and so every report that quotes it) names the fact file
# relative to the repository, never by a path of this machine
cd "$root"
facts=$(realpath --relative-to="$root" "$facts")
mkdir -p "$root/bench/results"
# named for the world directory: worlds built side by side do not share one
result=${RESULT:-$root/bench/results/$(basename "$out")-$(date -u +%Y%m%d-%H%M%S).txt}

# The shape the benchmark asks for (>= 6 layers, d_ff >= 1024); the goal
# is 95% top-1 on the rewrite prompts (the bar is 90%); paraphrases are
# reported, not waited for. 6 distractor subjects per fact (invented
# names mixing the real ones' words) make the model tell subjects apart
# at their last token, where MEMIT edits: 3 give the keys of 1,000
# subjects about 250 strong directions, 6 about 400; 3 extra facts per
# subject (other facts' prompts with their answers) make it know who a
# subject is beyond its one answer, which leaves more facts intact per
# edit (docs/world-models.md). d_ff 4096, four times the 1024 the
# benchmark asks for at least: the wider the MLP, the more strong
# directions the keys of 1,000 subjects have, and a batch of 1,000 edits
# keeps 23 points more of the other facts at d_ff 2048 than at 1024 and
# 13 more again at 4096 (docs/world-models.md, "Width: room for edits"
# and "d_ff 4096"). The paraphrases of the first 1,000 facts (the ones
# `make bench` edits) are held out of the training text, so an edit's
# paraphrase score measures generalisation, and 8 other rewrite prompts
# of the same relation teach each fact in other words, which lets edits
# reach paraphrases the model never saw (docs/world-models.md, "Teaching
# a fact in other words"). About 60 min on 2 cores (measured 2026-12-05). Later options
# override these.
cmd=(nice -n 10 "$tool" --facts "$facts" --limit "$limit" --out "$out"
     --skip-bad --layers 6 --embd 128 --heads 4 --ff 4096 --ctx 64
     --vocab 4096 --loss all --batch 64 --lr 0.003 --steps 12000
     --eval-every 250 --goal 0.95 --goal-para 0 --distractors 6 --extra-facts 3
     --hold-out-paraphrases 1000 --phrasings 8
     "${args[@]}")
{
  echo "# bench/world.sh $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(nproc) cores"
  echo "# ${cmd[*]}"
} | tee "$result"
start=$(date +%s)
set +e
"${cmd[@]}" 2>&1 | tee -a "$result"
rc=${PIPESTATUS[0]}
set -e
end=$(date +%s)
echo "# exit $rc, wall $((end - start)) s" | tee -a "$result"
if [ "$rc" -eq 0 ]; then
  cat "$out/world.json" >> "$result"
  du -sh "$out" | sed 's/^/# size: /' | tee -a "$result"
fi
echo "# results in $result"
exit "$rc"
