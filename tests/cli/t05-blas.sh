# t05-blas: stamp and its tools run OpenBLAS's kernels for this CPU
# (src/blas_cpu.c). `stamp --version` names the kernels; on a CPU with
# AVX-512, or AVX2 and FMA, they are not the generic Prescott ones, which
# Debian 12's OpenBLAS falls back to on CPUs newer than itself; a core
# type the user sets is kept; the benchmark's sgemm tool runs the same.
REPO=$(cd "$(dirname "$0")/../.." && pwd)
. "$(dirname "$0")/lib.sh"

expect_ok "--version" "$STAMP" --version
expect_grep "--version names stamp" "^stamp [0-9]" "$T/out"
expect_grep "--version names the OpenBLAS kernels" "^OpenBLAS kernels: [A-Za-z0-9]+$" "$T/out"
core=$(sed -n 's/^OpenBLAS kernels: //p' "$T/out")

flags=$(grep -m1 '^flags' /proc/cpuinfo)
has() { case " $flags " in *" $1 "*) return 0 ;; esac; return 1; }
if has avx512f && has avx512cd && has avx512bw && has avx512dq && has avx512vl ||
   has avx2 && has fma; then
  if [ "$core" != Prescott ]; then pass "kernels for this CPU's vector units ($core)"
  else fail "kernels for this CPU's vector units" "OpenBLAS runs Prescott on a CPU with AVX2 or AVX-512"; fi
else
  pass "kernels for this CPU's vector units (no AVX2 here: $core kept)"
fi

OPENBLAS_CORETYPE=Prescott "$STAMP" --version > "$T/forced" 2>&1
expect_grep "a core type the user sets is kept" "^OpenBLAS kernels: Prescott$" "$T/forced"

"$BUILD/tools/bench_sgemm" --core > "$T/sgemm" 2>&1
if [ "$(cat "$T/sgemm")" = "$core" ]; then pass "bench_sgemm runs the kernels stamp runs"
else fail "bench_sgemm runs the kernels stamp runs" "$(cat "$T/sgemm") against $core"; fi

expect_ok "a command runs after the switch" "$STAMP" predict --model "$REPO/tests/data/gpt2-tiny" --top 1 "The cat"
OPENBLAS_CORETYPE=Prescott "$STAMP" predict --model "$REPO/tests/data/gpt2-tiny" --top 1 "The cat" > "$T/kept" 2>&1
if [ "$(grep '^tokens' "$T/out")" = "$(grep '^tokens' "$T/kept")" ] && grep -q '^tokens ([1-9]' "$T/out"
then pass "with its arguments intact"
else fail "with its arguments intact" "$(head -1 "$T/out") against $(head -1 "$T/kept")"; fi
finish
