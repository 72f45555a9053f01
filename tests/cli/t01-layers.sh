# t01-layers: the dependency rule of the source tree (tools/check_layers.sh)
# holds on this checkout, and the checker fails on each kind of breach
# planted in a copy: an include that runs up a layer, one without its
# folder, a private header used outside its folder, a naive twin used
# outside its folder and the tests, a library file reaching the world
# builder. The product library holds no world-builder symbol.
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
. "$HERE/lib.sh"
CHECK="$REPO/tools/check_layers.sh"

expect_ok "this tree keeps the dependency rule" bash "$CHECK" "$REPO"
[ -s "$T/out" ] && fail "it prints nothing when the rule holds" "$(head -c 300 "$T/out")" ||
  pass "it prints nothing when the rule holds"

plant() {   # NAME FILE LINE PATTERN: a copy with LINE added to FILE must fail, naming FILE
  local name=$1 file=$2 line=$3 pattern=$4
  rm -rf tree && mkdir tree && (cd "$REPO" && tar cf - lib cli world tools tests/unit) | (cd tree && tar xf -)
  printf '%s\n' "$line" >> "tree/$file"
  expect_exit "$name: refused" 1 bash "$CHECK" "$T/tree"
  expect_grep "$name: names the file and the include" "^$file:[0-9]+: $pattern" "$T/out"
}
plant "an include up a layer" lib/model/gpt2.c '#include "memit/memit.h"' 'includes "memit/memit.h"'
plant "an include without its folder" lib/memit/memit.c '#include "spd.h"' 'include "spd.h" names no folder'
plant "the library reaching the world builder" lib/base/hash.c '#include "world/train.h"' 'includes "world/train.h"'
plant "the world builder reaching the solver" world/train.c '#include "memit/memit.h"' 'includes "memit/memit.h"'
plant "a private header outside its folder" lib/store/store.c '#include "facts/ingest_impl.h"' 'includes "facts/ingest_impl.h", private'
plant "a naive twin outside its folder" lib/repo/history.c '#include "memit/memit_naive.h"' 'includes "memit/memit_naive.h", a naive twin'
plant "the commands reaching the world builder" cli/cmd_log.c '#include "world/worldgen.h"' 'includes "world/worldgen.h"'

# the product library holds no world-builder symbol: no function named
# after a module of world/ is defined in libstamp.a
prefixes=$(cd "$REPO/world" && ls *.h | sed 's/_naive\.h$//; s/\.h$//' | sort -u)
syms=$(nm -g --defined-only "$BUILD/libstamp.a" 2>/dev/null | awk '$2 ~ /^[TDBR]$/ {print $3}')
[ -n "$syms" ] && pass "libstamp.a lists its symbols" || fail "libstamp.a lists its symbols" "nm found none in $BUILD/libstamp.a"
leaked=
for p in $prefixes; do
  leaked="$leaked$(printf '%s\n' "$syms" | grep -E "^${p}_" | head -n 3 | tr '\n' ' ')"
done
[ -z "$leaked" ] && pass "libstamp.a defines no world-builder symbol" ||
  fail "libstamp.a defines no world-builder symbol" "$leaked"
wsyms=$(nm -g --defined-only "$BUILD/libworld.a" 2>/dev/null | awk '$2 == "T" {print $3}' | grep -c '^train_run$')
[ "$wsyms" = 1 ] && pass "the world builder links its own (train_run in libworld.a)" ||
  fail "the world builder links its own (train_run in libworld.a)" "found $wsyms"
finish
