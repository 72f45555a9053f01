# real_size.sh: helpers of the real-size benchmarks (bench/llama_1b.sh,
# bench/gpt2_sizes.sh), sourced, not run:
#   real_corpus N FILE    N lines of plain English (made-up sentences from
#                         a word list, the same for a given N)
#   real_phase NAME CMD...
#                         runs CMD with its stdout in $work/NAME.out and
#                         stderr in $work/NAME.err, timed by GNU time; adds
#                         "| NAME | seconds | peak RSS MiB |" to the array
#                         rows; on failure prints the end of stderr and
#                         exits. Needs $work and $bench_name (for messages).
#   real_machine          "CPU, N cores; load average before: a b c"
#   real_load             the load averages now: "a b c"
real_corpus() {
  awk -v n="$1" 'BEGIN { srand(11);
    split("the a city river company team book film song country people year world music city history war school church family village", nouns, " ");
    split("was is became had found made known built written played", verbs, " ");
    split("in of by on for with from after during near", preps, " ");
    for (i = 0; i < n; i++) {
      line = "The " nouns[1 + int(rand() * 20)];
      for (j = 0; j < 4; j++)
        line = line " " verbs[1 + int(rand() * 10)] " " preps[1 + int(rand() * 10)] " the " nouns[1 + int(rand() * 20)];
      print line "." } }' > "$2"
}

real_load() { cut -d' ' -f1-3 /proc/loadavg; }

real_machine() {
  echo "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) cores; load average before: $(real_load)"
}

real_phase() {
  local name=$1; shift
  [ -x /usr/bin/time ] || { echo "$bench_name: needs GNU time (/usr/bin/time; apt-get install time)" >&2; exit 2; }
  /usr/bin/time -f "%e %M" -o "$work/time" "$@" > "$work/$name.out" 2> "$work/$name.err" ||
    { echo "$bench_name: $name failed:" >&2; tail -5 "$work/$name.err" >&2; exit 1; }
  local secs kb
  read -r secs kb < "$work/time"
  rows+=("$(printf '| %s | %s | %d |' "$name" "$secs" $((kb / 1024)))")
  echo "$bench_name: $name ${secs} s, peak RSS $((kb / 1024)) MiB (load $(real_load))" >&2
}
