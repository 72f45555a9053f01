#!/usr/bin/env bash
# check_layers.sh: the dependency rule of the source tree, checked on its
# #include lines. The product library's layers, lowest first:
#
#   base < model < facts < store < memit < eval < repo
#
# A file in lib/L includes headers of L and of the layers before it, each
# named with its folder ("memit/keystats.h"), never a later layer, cli/ or
# world/. cli/ (the commands) includes any layer and cli/; world/ (the
# world-model builder) includes base, model, facts and world/; tools/
# includes the library. A private header (*_impl.h) is included only from
# its own folder; a naive twin's header (*_naive.h) only from its own
# folder and the tests. Prints one line per violation, FILE:LINE: problem,
# and exits 1 when there is any.
#
#   tools/check_layers.sh [ROOT]     (ROOT: the repository, default ..)
set -u
root=${1:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$root" || exit 2
layers="base model facts store memit eval repo"
files=$(find lib cli world tools tests -name '*.[ch]' 2>/dev/null | sort)
[ -n "$files" ] || { echo "check_layers: no sources under $root"; exit 2; }
# one pass over every #include line: FILE:LINE:TEXT
grep -Hn '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' $files /dev/null |
awk -v layers="$layers" '
function dirname(p) { sub(/\/[^\/]*$/, "", p); return p }
function report(msg) { print msg; bad++ }
BEGIN { n = split(layers, L, " "); for (i = 1; i <= n; i++) rank[L[i]] = i }
{
  f = $0; sub(/:.*/, "", f)
  rest = substr($0, length(f) + 2); line = rest; sub(/:.*/, "", line)
  inc = rest; sub(/^[^"]*"/, "", inc); sub(/".*/, "", inc)
  split(f, part, "/")
  # the folders f may include from, as " a b c "
  if (part[1] == "lib") {
    if (!(part[2] in rank)) { if (!seen[f]++) report(f ": lib/ holds only the layers " layers); next }
    allowed = " "; for (i = 1; i <= rank[part[2]]; i++) allowed = allowed L[i] " "
  } else if (part[1] == "cli") allowed = " " layers " cli "
  else if (part[1] == "tests" || (part[1] == "world" && part[2] == "tests")) allowed = " " layers " cli world tests "
  else if (part[1] == "world") allowed = " base model facts world "
  else allowed = " " layers " "
  if (inc ~ /^\.\.\//) next                     # the tests harness
  if (inc !~ /\//) {
    if (inc ~ /\.h$/ && (part[1] == "lib" || part[1] == "cli" || part[1] == "world"))
      report(f ":" line ": include \"" inc "\" names no folder (write its layer: \"L/" inc "\")")
    next                                         # a table such as commands.def
  }
  top = inc; sub(/\/.*/, "", top)
  if (index(allowed, " " top " ") == 0) {
    report(f ":" line ": includes \"" inc "\": " top " is not below " dirname(f) " (allowed:" substr(allowed, 1, length(allowed) - 1) ")")
    next
  }
  hdir = dirname(inc); if (top in rank) hdir = "lib/" hdir
  if (inc ~ /_impl\.h$/ && hdir != dirname(f))
    report(f ":" line ": includes \"" inc "\", private to " hdir)
  if (inc ~ /_naive\.h$/ && hdir != dirname(f) && part[1] != "tests" && !(part[1] == "world" && part[2] == "tests"))
    report(f ":" line ": includes \"" inc "\", a naive twin for " hdir " and the tests")
}
END {
  if (bad) { print "check_layers: " bad " violation(s) of the dependency rule"; exit 1 }
}'
