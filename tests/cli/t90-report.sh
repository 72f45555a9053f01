# t90-report: `stamp report`, the store's history as one HTML page, on a
# copy of the tiny world model: a store without commits gives a page that
# says so; three real MEMIT commits and a revert give a page that is
# well-formed (xmllint reads it as XML), refers to nothing outside itself,
# and that Debian's Chromium renders headless: its DOM holds each commit
# id with the scores `stamp log --json` shows, with the reverted commit
# and the revert marked, and its screenshots at 1920 and 390 px wide are
# not blank. --eval adds an evaluation's edits not taken and facts lost.
# Bad output paths fail with exit 1 and leave no file (a directory that
# does not exist, /dev/full, a full disk, where a full disk can be
# mounted); the page replaces a file whole. Then six nightly runs make it
# ten commits, and the time the report of them takes is printed.
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
. "$HERE/lib.sh"
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}   # a shared machine
trap 'umount "$T/full" 2>/dev/null; rm -rf "$T"' EXIT

# is NAME GOT WANTED
is() { if [ "$2" = "$3" ]; then pass "$1"; else fail "$1" "got '$2', wanted '$3'"; fi; }
expect_no_grep() {
  if grep -Eq -- "$2" "$3"; then fail "$1" "/$2/ in $3: $(grep -Eo -- ".{0,40}$2.{0,40}" "$3" | head -n 3)"
  else pass "$1"; fi
}
# the page refers to nothing outside itself: no URL, no file, no script
self_contained() {
  expect_no_grep "$1: no URL" 'https?:|ftp:|//[a-z]' "$2"
  expect_no_grep "$1: no src, no script, no url()" 'src=|<script|url\(|@import' "$2"
  expect_no_grep "$1: links only inside the page" 'href="[^#]' "$2"
}
well_formed() {
  if xmllint --noout "$2" 2> "$T/xmllint.err"; then pass "$1: well-formed (xmllint)"
  else fail "$1: well-formed (xmllint)" "$(head -c 400 "$T/xmllint.err")"; fi
  [ "$(tail -n 1 "$2")" = "</html>" ] && pass "$1: ends with </html>" ||
    fail "$1: ends with </html>" "$(tail -n 1 "$2")"
}

# Chromium, headless, its own profile; as root it needs --no-sandbox
CHROME=$(command -v chromium || command -v chromium-browser || true)
chrome() {
  timeout 180 "$CHROME" --headless --no-sandbox --disable-gpu \
    --disable-dev-shm-usage --hide-scrollbars --no-first-run \
    --user-data-dir="$T/chrome" "$@" 2>> "$T/chrome.log"
}
# png_size FILE: "WIDTHxHEIGHT" from the PNG header, or nothing
png_size() {
  [ "$(head -c 8 "$1" 2>/dev/null | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] || return
  local w h
  w=$(od -An -tu1 -j16 -N4 "$1" | awk '{print $1*16777216+$2*65536+$3*256+$4}')
  h=$(od -An -tu1 -j20 -N4 "$1" | awk '{print $1*16777216+$2*65536+$3*256+$4}')
  echo "${w}x$h"
}
filesize() { stat -c %s "$1" 2>/dev/null || echo 0; }

# a private copy of the world (a rebuild of build/world-tiny meanwhile
# must not look like a base model changed behind the store's back)
mkdir world && for f in config.json model.safetensors vocab.json merges.txt corpus.txt facts.csv; do
  cp "$WORLD_TINY/$f" world/ || { fail "a copy of the world model"; finish; exit 1; }
done
W=$T/world
expect_ok "init on world-tiny" "$STAMP" init --model "$W"
expect_ok "key statistics" "$STAMP" stats --corpus "$W/corpus.txt"

expect_ok "report --help" "$STAMP" report --help
expect_grep "it starts with the synopsis" '^stamp report \[-o FILE.html\]' "$T/out"
expect_grep "it says where the page goes without -o" 'standard output' "$T/out"
expect_exit "an unknown option: exit 2" 2 "$STAMP" report --bogus
expect_exit "a bad --commits: exit 2" 2 "$STAMP" report --commits x
expect_exit "an argument: exit 2" 2 "$STAMP" report extra

# ---- a store without commits
expect_ok "the report of an empty store" "$STAMP" report -o empty.html
expect_grep "it says there are no commits" 'No commits yet' empty.html
expect_grep "and names the base model" '6 layers|<td>world</td>' empty.html
well_formed "the empty page" empty.html
expect_ok "without -o the page goes to stdout" "$STAMP" report
cp "$T/out" stdout.html
expect_grep "the page on stdout" 'No commits yet' stdout.html

# ---- three commits of three facts (one subject each) and a revert
for k in 1 2 3; do
  { sed -n 1p "$W/facts.csv"; sed -n "$((3 * k - 1)),$((3 * k + 1))p" "$W/facts.csv"; } > "b$k.csv"
  "$STAMP" import "b$k.csv" > /dev/null &&
    "$STAMP" commit -m "batch $k <&>" > "commit$k.out" 2>&1 ||
    fail "commit $k" "$(head -c 400 "commit$k.out")"
done
expect_ok "revert commit 2" "$STAMP" revert 2
sed -n '1p;11,12p' "$W/facts.csv" > queued.csv
expect_ok "two facts queued" "$STAMP" import queued.csv
"$STAMP" log --json > log.json
is "the log: HEAD 4, commits 4 to 1" "$(jq -c '[.head, [.commits[].id]]' log.json)" "[4,[4,3,2,1]]"
expect_ok "report -o r.html" "$STAMP" report -o r.html
"$STAMP" log --json > log-after.json
expect_same "the report changes nothing in the store" log.json log-after.json
well_formed "the page" r.html
self_contained "the page" r.html
expect_grep "the message is escaped" 'batch 1 &lt;&amp;&gt;' r.html
expect_no_grep "no markup from the store" 'batch 1 <&>' r.html
expect_grep "the charts have titles" '<title id="chart-after-t">ES, PS and NS after each commit</title>' r.html
expect_grep "and text alternatives" '<desc id="chart-after-d">.*ES after: ' r.html
expect_grep "tables have column headers" '<th scope="col">commit</th>' r.html
expect_grep "the queue: its count" '2 facts queued' r.html
expect_grep "the queue: its prompts" "$("$STAMP" queue --json | jq -r '.facts[0].prompt_text')" r.html
ls r.html.tmp.* > /dev/null 2>&1 && fail "no temporary file left" "$(ls r.html.tmp.*)" || pass "no temporary file left"

# ---- rendered by Chromium
if [ -z "$CHROME" ]; then
  fail "chromium is installed (make deps installs it)"
else
  chrome --dump-dom "file://$T/r.html" > dom.html
  expect_grep "Chromium renders the page (DOM dumped)" '<h1>stamp report</h1>' dom.html
  expect_no_grep "not an error page" 'ERR_FILE_NOT_FOUND|ERR_ACCESS_DENIED|This page (isn.t|can.t be) ' dom.html
  # each commit of the log in its row, with the scores log --json shows
  # ("before → after", one decimal) and its fate
  for id in $(jq -r '.commits[].id' log.json); do
    row=$(grep -F "<th scope=\"row\" data-label=\"commit\">$id</th>" dom.html | grep -F 'data-label="date (UTC)"' | head -n 1)
    [ -n "$row" ] && pass "commit $id has its row" || { fail "commit $id has its row"; continue; }
    kind=$(jq -r ".commits[] | select(.id == $id) | .kind" log.json)
    if [ "$kind" = revert ]; then
      reverts=$(jq -r ".commits[] | select(.id == $id) | .reverts" log.json)
      echo "$row" | grep -qF "revert of $reverts</span>" && pass "commit $id: marked a revert of $reverts" ||
        fail "commit $id: marked a revert of $reverts" "$row"
      continue
    fi
    for k in es ps ns; do
      b=$(printf '%.1f' "$(jq -r ".commits[] | select(.id == $id) | .scores.before.$k" log.json)")
      a=$(printf '%.1f' "$(jq -r ".commits[] | select(.id == $id) | .scores.after.$k" log.json)")
      echo "$row" | grep -qF "$b → $a" && pass "commit $id: $k $b → $a" ||
        fail "commit $id: $k $b → $a" "$(echo "$row" | head -c 600)"
    done
    by=$(jq -r ".commits[] | select(.id == $id) | .reverted_by // empty" log.json)
    if [ -n "$by" ]; then
      echo "$row" | grep -qF "reverted by $by</span>" && pass "commit $id: marked reverted by $by" ||
        fail "commit $id: marked reverted by $by" "$row"
    fi
  done
  chrome --screenshot="$T/blank.png" --window-size=1920,1400 "data:text/html,<title>x</title>"
  chrome --screenshot="$T/wide.png" --window-size=1920,1400 "file://$T/r.html"
  chrome --screenshot="$T/phone.png" --window-size=390,844 "file://$T/r.html"
  chrome --screenshot="$T/phone-blank.png" --window-size=390,844 "data:text/html,<title>x</title>"
  is "a screenshot 1920 px wide" "$(png_size wide.png)" "1920x1400"
  is "a screenshot 390 px wide" "$(png_size phone.png)" "390x844"
  # a blank page compresses to almost nothing; text and charts do not
  blank=$(filesize blank.png) wide=$(filesize wide.png)
  [ "$blank" -gt 0 ] && [ "$wide" -gt $((4 * blank)) ] && pass "the wide screenshot is not blank ($wide bytes, blank $blank)" ||
    fail "the wide screenshot is not blank" "$wide bytes, a blank page $blank"
  blank=$(filesize phone-blank.png) phone=$(filesize phone.png)
  [ "$blank" -gt 0 ] && [ "$phone" -gt $((4 * blank)) ] && pass "the phone screenshot is not blank ($phone bytes, blank $blank)" ||
    fail "the phone screenshot is not blank" "$phone bytes, a blank page $blank"
fi

# ---- an evaluation: edits not taken and facts lost, with their prompts
expect_ok "eval --facts --json" "$STAMP" eval --facts --json
cp "$T/out" eval.json
expect_ok "report --eval" "$STAMP" report --eval eval.json -o e.html
well_formed "the page with the evaluation" e.html
expect_grep "it shows the evaluation" 'From the evaluation <code>eval.json</code>' e.html
retained=$(printf '%.1f' "$(jq -r '.retention.retained' eval.json)")
expect_grep "with its retention" "retention $retained%" e.html
n=$(jq '[.facts[] | select(.outcome.es == false)] | length' eval.json)
expect_grep "and how many edits did not take" "<caption>$n edits? not taken" e.html
jq -r '.facts[] | select(.outcome.es == false) | .prompt_text' eval.json | head -n 3 > not-taken.txt
while read -r p; do
  grep -qF "$p" e.html && pass "the edit not taken '$p' is listed" || fail "the edit not taken '$p' is listed"
done < not-taken.txt
n=$(jq '.retention.lost | length' eval.json)
expect_grep "and the facts lost" "<caption>$n untouched facts? lost" e.html
echo '{"not": "eval"}' > bad.json
expect_exit "--eval of something else: exit 1" 1 "$STAMP" report --eval bad.json -o x.html
expect_grep "it says what is wrong" "not the output of 'stamp eval --json'" "$T/err"
[ ! -e x.html ] && pass "and writes nothing" || fail "and writes nothing"
echo '{"scores": ' > cut.json
expect_exit "--eval of broken JSON: exit 1" 1 "$STAMP" report --eval cut.json -o x.html
expect_grep "it names the file and the line" "cannot read the evaluation 'cut.json': line [0-9]+: " "$T/err"

# ---- bad output paths: exit 1, a clear message, no file
expect_exit "-o into a missing directory: exit 1" 1 "$STAMP" report -o nodir/sub/r.html
expect_grep "the error names the path and the directory" \
  "^stamp: error: cannot write 'nodir/sub/r.html': the directory 'nodir/sub' does not exist" "$T/err"
[ ! -e nodir ] && pass "nothing created" || fail "nothing created" "$(ls -R nodir)"
expect_exit "-o /dev/full: exit 1" 1 "$STAMP" report -o /dev/full
expect_grep "the error names it" "^stamp: error: cannot write '/dev/full': No space left" "$T/err"
[ -c /dev/full ] && pass "/dev/full is still a device" || fail "/dev/full is still a device"
expect_exit "stdout to /dev/full: exit 1" 1 sh -c "'$STAMP' report > /dev/full"
expect_grep "it says so, with the reason" "^stamp: error: cannot write output: No space left" "$T/err"
is "one message" "$(wc -l < "$T/err")" 1
# a full disk: the old page stays whole, no temporary file is left
mkdir full
if mount -t tmpfs -o size=256k tmpfs full 2>/dev/null; then
  echo "the old page" > full/r.html
  dd if=/dev/zero of=full/filler bs=1k count=300 2>/dev/null
  expect_exit "-o on a full disk: exit 1" 1 "$STAMP" report -o full/r.html
  expect_grep "the error names the file" "^stamp: error: cannot write 'full/r.html'" "$T/err"
  is "the old page is as it was" "$(cat full/r.html)" "the old page"
  is "no temporary file left" "$(ls full | tr '\n' ' ')" "filler r.html "
  rm full/filler
  expect_ok "with room again it is written" "$STAMP" report -o full/r.html
  well_formed "and whole" full/r.html
  umount full
else
  pass "a full disk: skipped (no tmpfs can be mounted here)"
fi
# an existing page is replaced whole
echo "old" > r.html
expect_ok "an existing file is replaced" "$STAMP" report -o r.html
well_formed "by the whole page" r.html

# ---- ten commits: six nightly runs more
mkdir inbox
for d in 1 2 3 4 5 6; do
  { sed -n 1p "$W/facts.csv"; sed -n "$((3 * d + 11)),$((3 * d + 13))p" "$W/facts.csv"; } > "inbox/day$d.csv"
  bash "$REPO/tools/nightly.sh" --store "$STAMP_STORE" --inbox inbox > nightly.out 2>&1 ||
    fail "nightly run $d" "$(tail -c 400 nightly.out)"
done
is "ten commits on the chain" "$("$STAMP" log --json | jq '.commits | length')" 10
# seconds since $1 (a date +%s.%N)
since() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.3f", b - a }'; }
best=
for i in 1 2 3; do
  s=$(date +%s.%N)
  "$STAMP" report -o ten.html || fail "report of ten commits"
  e=$(since "$s")
  if [ -z "$best" ] || awk -v e="$e" -v b="$best" 'BEGIN { exit !(e < b) }'; then best=$e; fi
done
well_formed "the page of ten commits" ten.html
expect_grep "it lists them all" 'All 10 commits' ten.html
pass "report of 10 commits written in $best s (best of 3)"
if [ -n "$CHROME" ]; then
  s=$(date +%s.%N)
  chrome --screenshot="$T/ten.png" --window-size=1920,1400 "file://$T/ten.html"
  e=$(since "$s")
  [ "$(png_size ten.png)" = 1920x1400 ] && pass "Chromium rendered it in $e s (with its start)" ||
    fail "Chromium renders the page of ten commits"
fi
finish
