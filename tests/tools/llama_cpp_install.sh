#!/usr/bin/env bash
# llama_cpp_install: installs llama.cpp for node, the npm package
# node-llama-cpp with its prebuilt Linux x64 CPU binary only
# (@node-llama-cpp/linux-x64), into PREFIX/llama-cpp (default PREFIX:
# build/npm), quietly, when it is not there yet. tests/cli/t92-gguf.sh
# loads stamp's GGUF exports with it (tests/tools/llama_cpp_check.mjs).
#
# Its own npm project under PREFIX: an npm install prunes what its
# package.json does not name, so sharing PREFIX's node_modules with the
# other test packages (hf_tokenizers_install.sh) would have each install
# remove the other's. The optional GPU builds (CUDA, Vulkan: 600 MB) are
# left out and install scripts are not run: nothing is built or
# downloaded but the two packages (about 85 MB, 20 s). The versions are
# pinned. Exits 1 with a message on stderr (npm's log kept in
# PREFIX/llama-cpp/npm-install.log) when npm is missing or the registry
# unreachable.
#
#   bash tests/tools/llama_cpp_install.sh [PREFIX]
set -euo pipefail
prefix=${1:-build/npm}/llama-cpp
version=3.22.1
if [ -f "$prefix/node_modules/node-llama-cpp/package.json" ] &&
   [ -f "$prefix/node_modules/@node-llama-cpp/linux-x64/package.json" ]; then
  exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
  echo "llama_cpp_install: npm is not installed (needed for node-llama-cpp)" >&2
  exit 1
fi
mkdir -p "$prefix"
log="$prefix/npm-install.log"
specs=("node-llama-cpp@$version" "@node-llama-cpp/linux-x64@$version")
if ! npm install --prefix "$prefix" --no-audit --no-fund --ignore-scripts \
     --omit=optional --loglevel=error "${specs[@]}" >"$log" 2>&1; then
  echo "llama_cpp_install: 'npm install ${specs[*]}' into '$prefix' failed" \
       "(registry unreachable?); npm's output is in $log:" >&2
  tail -n 5 "$log" >&2
  exit 1
fi
