#!/usr/bin/env bash
# trine's whole test suite in one command: installs what is missing (Debian 12, as root),
# configures build/ (Release, warnings as errors, CUDA when nvcc is found), builds everything
# and runs ctest. Exits with ctest's status. Safe to rerun: nothing is installed or rebuilt twice.
#
#   scripts/test.sh               the suite in build/
#   scripts/test.sh --sanitize    then also the tests labelled `unit` under AddressSanitizer and
#                                 UBSan, built in build-asan/ (same as TRINE_TEST_SANITIZE=1)
# TRINE_CUDA=ON|OFF overrides the CUDA detection (default AUTO).

# shellcheck source=scripts/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

sanitize=${TRINE_TEST_SANITIZE:-0}
for arg in "$@"; do
  case $arg in
    --sanitize) sanitize=1 ;;
    -h | --help)
      sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    *) die "unknown argument '$arg' (see scripts/test.sh --help)" ;;
  esac
done

start=$SECONDS
ensure_packages "${TRINE_BUILD_PACKAGES[@]}" "${TRINE_TEST_PACKAGES[@]}"

say "building build/ (Release, -DTRINE_WERROR=ON, TRINE_CUDA=${TRINE_CUDA:-AUTO}, $(ncpu) jobs)"
configure_build build -DTRINE_BUILD_TESTS=ON
cmake --build build -j "$(ncpu)"

say "running the test suite"
status=0
(cd build && ctest --output-on-failure -j "$(ncpu)") || status=$?

if [ "$sanitize" = 1 ]; then
  # CUDA stays off: its runtime and AddressSanitizer do not mix.
  say "building build-asan/ (-DTRINE_SANITIZE=address,undefined, CUDA off)"
  configure_build build-asan -DTRINE_BUILD_TESTS=ON -DTRINE_SANITIZE=address,undefined \
    -DTRINE_CUDA=OFF
  cmake --build build-asan -j "$(ncpu)"
  if (cd build-asan && ctest -N -L unit | grep -q '^Total Tests: 0$'); then
    say "build-asan: no test carries the label 'unit' yet; nothing to run under the sanitizers"
  else
    say "running the tests labelled 'unit' under the sanitizers"
    export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
    export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
    (cd build-asan && ctest --output-on-failure -j "$(ncpu)" -L unit) || status=$?
  fi
fi

say "finished in $((SECONDS - start)) s with status $status"
exit "$status"
