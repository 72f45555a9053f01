# t48-readme: the README's tour, run in order as a new user would, from
# a copy of the clone (its files, build/stamp, the tiny world in
# build/world-tiny as `make world-tiny` leaves it). The commands are
# taken from README.md's "A tour" block, so the test fails when the
# README drifts from what stamp does: every line must be one this test
# knows how to run (make world-tiny, export, stamp ...) and every stamp
# command must succeed. The tour must keep to its own store: the demo's
# store/ is never created or touched.
REPO=$(cd "$(dirname "$0")/../.." && pwd)
. "$(dirname "$0")/lib.sh"

if [ ! -f "$WORLD_TINY/model.safetensors" ]; then
  fail "the tiny world is built" "$WORLD_TINY"; finish; exit 1
fi
mkdir clone
if git -C "$REPO" rev-parse --git-dir > /dev/null 2>&1; then
  (cd "$REPO" && git ls-files -z | xargs -0 tar cf - 2>/dev/null) | (cd clone && tar xf -)
else
  (cd "$REPO" && tar cf - --exclude='./build*' --exclude=./store .) | (cd clone && tar xf -)
fi
mkdir -p clone/build && cp "$STAMP" clone/build/stamp && cp -r "$WORLD_TINY" clone/build/world-tiny
cd clone || exit 1
awk '/^## A tour/ { f = 1; next } /^## / { f = 0 } f && /^    [^ ]/' README.md |
  sed 's/^    //; s/  \{1,\}#.*$//' > tour.txt
n=$(wc -l < tour.txt)
[ "$n" -ge 15 ] && pass "the README has a tour ($n commands)" || fail "the README has a tour" "$n lines"
grep -q '^stamp init' tour.txt && grep -q '^stamp commit' tour.txt && grep -q '^stamp fsck' tour.txt &&
  pass "the tour inits, commits and checks" || fail "the tour inits, commits and checks"
while IFS= read -r line <&3; do
  case "$line" in
    "make world-tiny")
      [ -f build/world-tiny/model.safetensors ] && pass "tour: $line (built)" || fail "tour: $line"
      continue ;;
    export\ *) eval "$line"; pass "tour: $line"; continue ;;
    stamp\ *) cmd="build/stamp${line#stamp}" ;;
    *) fail "a tour line this test does not know how to run" "$line"; continue ;;
  esac
  expect_ok "tour: $line" eval "$cmd < /dev/null"
done 3< tour.txt
[ ! -e store ] && pass "the tour leaves the demo's store/ alone" || fail "the tour leaves the demo's store/ alone"
[ -f mystore/data.mdb ] && pass "the tour's store is mystore/" || fail "the tour's store is mystore/"
finish
