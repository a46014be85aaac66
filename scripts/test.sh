#!/usr/bin/env bash
# trine's whole test suite in one command: installs what is missing (Debian 12, as root),
# configures build/ (Release, warnings as errors, CUDA when nvcc is found), builds everything
# and runs ctest; then builds build-asan/ with clang++ and runs the whole suite again under
# AddressSanitizer and UBSan; then fuzzes each reader for 20 s (scripts/fuzz.sh). Exits non-zero
# when any part fails. Safe to rerun: nothing is installed or rebuilt twice. CI (.ci/run) runs
# exactly this.
#
#   scripts/test.sh               all three parts
#   scripts/test.sh --quick       the suite in build/ only (TRINE_TEST_SANITIZE=0 TRINE_TEST_FUZZ=0)
#   scripts/test.sh --no-sanitize without the sanitizer part (same as TRINE_TEST_SANITIZE=0)
#   scripts/test.sh --fuzz=S      S seconds per fuzz target; 0: no fuzzing (TRINE_TEST_FUZZ=S)
# TRINE_CUDA=ON|OFF overrides the CUDA detection (default AUTO).

# shellcheck source=scripts/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

sanitize=${TRINE_TEST_SANITIZE:-1}
fuzz=${TRINE_TEST_FUZZ:-20}
for arg in "$@"; do
  case $arg in
    --quick) sanitize=0 fuzz=0 ;;
    --sanitize) sanitize=1 ;;
    --no-sanitize) sanitize=0 ;;
    --fuzz=*) fuzz=${arg#--fuzz=} ;;
    -h | --help)
      sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    *) die "unknown argument '$arg' (see scripts/test.sh --help)" ;;
  esac
done
case $fuzz in
  '' | *[!0-9]*) die "--fuzz expects whole seconds, got '$fuzz' (see scripts/test.sh --help)" ;;
esac

start=$SECONDS
ensure_packages "${TRINE_BUILD_PACKAGES[@]}" "${TRINE_TEST_PACKAGES[@]}"

say "building build/ (Release, -DTRINE_WERROR=ON, TRINE_CUDA=${TRINE_CUDA:-AUTO}, $(ncpu) jobs)"
configure_build build -DTRINE_BUILD_TESTS=ON
cmake --build build -j "$(ncpu)"

say "running the test suite"
status=0
(cd build && ctest --output-on-failure -j "$(ncpu)") || status=$?

if [ "$sanitize" = 1 ]; then
  # clang++: it builds this tree in about half of GCC's time, its instrumented tests run faster,
  # and its larger frames found a recursion GCC's missed. CUDA stays off: its runtime and
  # AddressSanitizer do not mix. A build-asan/ configured by another compiler starts afresh.
  if [ -f build-asan/CMakeCache.txt ] &&
    ! grep -q '^CMAKE_CXX_COMPILER:[A-Z]*=.*clang++' build-asan/CMakeCache.txt; then
    say "build-asan/ was configured with another compiler: configuring it afresh"
    rm -rf build-asan
  fi
  say "building build-asan/ (clang++, -DTRINE_SANITIZE=address,undefined, CUDA off)"
  asan_build_start=$SECONDS
  # -O1: the usual sanitizer build, much quicker to compile than -O3. -g1: line tables only,
  # enough for file:line in every report, and quicker to compile than -g
  # (NDEBUG as in Release: stb_image_resize asserts on rounding otherwise).
  configure_build build-asan -DCMAKE_CXX_COMPILER=clang++ -DTRINE_BUILD_TESTS=ON \
    -DTRINE_SANITIZE=address,undefined -DTRINE_CUDA=OFF -DCMAKE_CXX_FLAGS_RELEASE="-O1 -g1 -DNDEBUG"
  cmake --build build-asan -j "$(ncpu)"
  say "build-asan/ built in $((SECONDS - asan_build_start)) s"
  # The whole suite, training runs included (ctest -L unit runs the quick half only).
  # Any report (an ASan error, a leak, undefined behaviour) fails its test; no suppressions.
  say "running the test suite under the sanitizers (build-asan/)"
  export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:halt_on_error=1}
  export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
  asan_start=$SECONDS
  (cd build-asan && ctest --output-on-failure -j "$(ncpu)") || status=$?
  say "sanitizer tests ran in $((SECONDS - asan_start)) s"
fi

if [ "$fuzz" != 0 ]; then
  bash "$TRINE_ROOT/scripts/fuzz.sh" "$fuzz" || status=1
fi

say "finished in $((SECONDS - start)) s with status $status"
exit "$status"
