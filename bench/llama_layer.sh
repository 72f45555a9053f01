#!/usr/bin/env bash
# llama_layer.sh: builds bench/llama_layer.c against BUILD's libstamp.a
# (default build) and runs it: the forward and backward speed of
# Llama-3.2-1B-shaped blocks with BF16 and F32 weights, and the
# weight-converting linear kernel against one plain sgemm. Prints the
# measurements (medians of REPS, default 5); writes nothing else.
#
#   bash bench/llama_layer.sh [REPS]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD:-$here/build}
cd "$here"
make --no-print-directory BUILD="$build" "$build/libstamp.a" >/dev/null
mkdir -p "$build/bench"
cc -O2 -std=c11 -fopenmp -D_GNU_SOURCE -Ilib -o "$build/bench/llama_layer" \
  bench/llama_layer.c "$build/libstamp.a" -lopenblas -ljansson -lm
exec "$build/bench/llama_layer" "$@"
