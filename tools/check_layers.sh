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
layers=(base model facts store memit eval repo)
rank() { local i; for i in "${!layers[@]}"; do [ "${layers[$i]}" = "$1" ] && { echo "$i"; return; }; done; echo -1; }
bad=0
violation() { echo "$1"; bad=$((bad + 1)); }

# allowed TOP-FOLDERS for the file $1, as a space-separated list
allowed_for() {
  local f=$1 own r
  case $f in
    lib/*) own=${f#lib/}; own=${own%%/*}; r=$(rank "$own")
           [ "$r" -lt 0 ] && { echo "?"; return; }
           echo "${layers[*]:0:$((r + 1))}" ;;
    cli/*) echo "${layers[*]} cli" ;;
    world/tests/*|tests/*) echo "${layers[*]} cli world tests" ;;
    world/*) echo "base model facts world" ;;
    tools/*) echo "${layers[*]}" ;;
  esac
}

while IFS= read -r f; do
  allowed=$(allowed_for "$f")
  if [ "$allowed" = "?" ]; then
    violation "$f: lib/ holds only the layers ${layers[*]}"; continue
  fi
  dir=$(dirname "$f")
  while IFS=: read -r line inc; do
    inc=${inc#*\"}; inc=${inc%%\"*}
    case $inc in
      ../*) continue ;;                       # the tests' harness
      */*) ;;
      *.h) case $f in lib/*|cli/*|world/*)
             violation "$f:$line: include \"$inc\" names no folder (write its layer: \"L/$inc\")" ;; esac
           continue ;;
      *) continue ;;                          # a table such as commands.def
    esac
    top=${inc%%/*}
    case " $allowed " in
      *" $top "*) ;;
      *) violation "$f:$line: includes \"$inc\": $top is not below $(dirname "$f") (allowed: $allowed)"; continue ;;
    esac
    hdir=$(dirname "$inc"); [ -d "lib/$hdir" ] && hdir="lib/$hdir"
    case $inc in
      *_impl.h) [ "$hdir" = "$dir" ] ||
                  violation "$f:$line: includes \"$inc\", private to $hdir" ;;
      *_naive.h) case $f in tests/*|world/tests/*) ;;
                   *) [ "$hdir" = "$dir" ] ||
                        violation "$f:$line: includes \"$inc\", a naive twin for $hdir and the tests" ;;
                 esac ;;
    esac
  done < <(grep -n '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "$f" | cut -d: -f1,2-)
done < <(find lib cli world tools tests -name '*.[ch]' 2>/dev/null | sort)

[ "$bad" -eq 0 ] && exit 0
echo "check_layers: $bad violation(s) of the dependency rule"
exit 1
