#!/usr/bin/env bash
# Fuzzes trine's readers with libFuzzer: builds build-fuzz/ with clang++ (AddressSanitizer,
# UBSan, fuzzer coverage; clang and libclang-rt-14-dev are installed with apt-get when missing
# and the script runs as root, otherwise it says so and stops with status 0), then runs each
# target (idx, image, pairs, npy, checkpoint) for SECONDS from its seed corpus in
# tests/fuzz/corpus/<target>/, as many at once as there are cores. New inputs go to
# build-fuzz/corpus/, never into the repository.
# A crash, a sanitizer report, a leak, a time-out or an out-of-memory fails the script (status 1);
# the input is kept in build-fuzz/artifacts/ and the summary names it.
#
#   scripts/fuzz.sh [SECONDS]     seconds per target (default 60)
#   TRINE_FUZZ_TARGETS="idx npy"  a subset of the targets

# shellcheck source=scripts/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

seconds=${1:-60}
case $seconds in
  -h | --help)
    sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
    exit 0
    ;;
  '' | *[!0-9]*) die "SECONDS must be a whole number, got '$seconds' (see scripts/fuzz.sh --help)" ;;
esac
read -r -a targets <<<"${TRINE_FUZZ_TARGETS:-idx image pairs npy checkpoint}"

mapfile -t missing < <(missing_packages clang libclang-rt-14-dev cmake libopenblas-dev zlib1g-dev \
  libstb-dev)
if [ ${#missing[@]} -gt 0 ] && [ "$(id -u)" -ne 0 ]; then
  say "fuzzing skipped: missing ${missing[*]} (run as root, or apt-get install them)"
  exit 0
fi
ensure_packages clang libclang-rt-14-dev cmake libopenblas-dev zlib1g-dev libstb-dev

start=$SECONDS
say "building build-fuzz/ (clang++, -fsanitize=fuzzer,address,undefined)"
cmake -S "$TRINE_ROOT" -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1 -DNDEBUG" \
  -DCMAKE_CXX_COMPILER=clang++ -DTRINE_FUZZ=ON -DTRINE_SANITIZE=address,undefined \
  -DTRINE_BUILD_TESTS=OFF -DTRINE_BUILD_APPS=OFF -DBUILD_SHARED_LIBS=OFF -DTRINE_CUDA=OFF >/dev/null
cmake --build build-fuzz -j "$(ncpu)" --target "${targets[@]/#/fuzz_}"
say "built in $((SECONDS - start)) s"

# UBSan findings must stop the run (they are reports, not crashes, by default); leaks count.
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
export ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=0

# Fuzzes target $1 for $seconds s and writes its summary line to build-fuzz/fuzz_$1.result
# ("ok: ..." or "FAILED ...").
fuzz_one() {
  local t=$1 seeds=tests/fuzz/corpus/$1 work=build-fuzz/corpus/$1 log=build-fuzz/fuzz_$1.log
  local rc=0 execs cov artifact
  mkdir -p "$work"
  "build-fuzz/fuzz_$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
    -max_len=65536 -print_final_stats=1 -artifact_prefix="build-fuzz/artifacts/$t-" \
    "$work" "$seeds" >"$log" 2>&1 || rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | cut -d' ' -f2) || true
  if [ "$rc" -ne 0 ]; then
    artifact=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -1)
    printf '%-11s FAILED (status %s) after %s executions; input: %s; log: %s\n' \
      "$t" "$rc" "${execs:-?}" "${artifact:-?}" "$log" >"build-fuzz/fuzz_$t.result"
    grep -m1 -E 'ERROR: (AddressSanitizer|libFuzzer|LeakSanitizer)|runtime error:' "$log" >&2 || true
    return 0
  fi
  printf '%-11s ok: %s executions in %s s, coverage %s edges, corpus %s files\n' \
    "$t" "${execs:-?}" "$seconds" "${cov:-?}" "$(find "$work" -type f | wc -l)" \
    >"build-fuzz/fuzz_$t.result"
}

# Each fuzzer is one process on one core: as many run at once as there are cores, each for its
# full time.
status=0
mkdir -p build-fuzz/artifacts
for t in "${targets[@]}"; do
  seeds=tests/fuzz/corpus/$t
  [ -d "$seeds" ] || die "no seed corpus $seeds"
  rm -f "build-fuzz/fuzz_$t.result"
  while [ "$(jobs -rp | wc -l)" -ge "$(ncpu)" ]; do wait -n || true; done
  say "fuzzing $t for $seconds s (seeds: $(find "$seeds" -type f | wc -l) files in $seeds)"
  fuzz_one "$t" &
done
wait || true

summary=()
for t in "${targets[@]}"; do
  summary+=("$(cat "build-fuzz/fuzz_$t.result" 2>/dev/null || echo "$t: no result (the fuzzer did not finish)")")
  grep -q " ok: " "build-fuzz/fuzz_$t.result" 2>/dev/null || status=1
done

say "fuzzing summary (${seconds} s per target):"
for line in "${summary[@]}"; do printf '  %s\n' "$line"; done
say "finished in $((SECONDS - start)) s with status $status"
exit "$status"
