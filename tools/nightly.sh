#!/usr/bin/env bash
# nightly.sh: the nightly job. Imports every CSV that has arrived in the
# inbox (re-imported files queue nothing new) and commits the queue as
# one batch. A lock keeps two runs from overlapping.
#
#   tools/nightly.sh [--store DIR] [--inbox DIR] [-- COMMIT-OPTIONS...]
#
# Exit status, for cron: 0 committed, 3 nothing to do (the queue stayed
# empty), 1 failed (the store is as before the failed step), 4 another
# nightly run holds the lock.
set -u
# exit codes: the table in cli/cli.h
EXIT_OK=0 EXIT_FAIL=1 EXIT_USAGE=2 EXIT_NOTHING=3 EXIT_LOCKED=4
here=$(cd "$(dirname "$0")/.." && pwd)
# the stamp beside this script's build, else the one on PATH (installed
# as stamp-nightly by make install); $STAMP wins
stamp=${STAMP:-}
if [ -z "$stamp" ]; then
  if [ -x "$here/build/stamp" ]; then stamp=$here/build/stamp
  else stamp=$(command -v stamp || echo stamp); fi
fi
store=${STAMP_STORE:-store}
inbox=edits
while [ $# -gt 0 ]; do
  case $1 in
    --store) store=$2; shift 2 ;;
    --inbox) inbox=$2; shift 2 ;;
    --) shift; break ;;
    -h|--help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "nightly: unknown option '$1'" >&2; exit $EXIT_USAGE ;;
  esac
done
[ -d "$store" ] || { echo "nightly: error: no store at '$store' (run 'stamp init')" >&2; exit $EXIT_FAIL; }
exec 9>"$store/nightly.lock"
if ! flock -n 9; then
  echo "nightly: another nightly run holds '$store/nightly.lock'" >&2
  exit $EXIT_LOCKED
fi
stamp() { "$stamp" --store "$store" "$@"; }
echo "nightly: $(date -u +%FT%TZ) store '$store' inbox '$inbox'"
shopt -s nullglob
files=("$inbox"/*.csv)
if [ ${#files[@]} -gt 0 ]; then
  stamp import --skip-bad "${files[@]}" || { echo "nightly: import failed" >&2; exit $EXIT_FAIL; }
fi
stamp commit -m "nightly $(date -u +%F)" "$@"
rc=$?
case $rc in
  "$EXIT_OK") echo "nightly: committed" ;;
  "$EXIT_NOTHING") echo "nightly: nothing to do" ;;
  *) echo "nightly: commit failed (exit $rc)" >&2; rc=$EXIT_FAIL ;;
esac
exit $rc
