# Shared by scripts/demo.sh, scripts/test.sh and scripts/gpu-check.sh (sourced, not run): the
# Debian packages trine needs, installing the missing ones, and configuring a build folder.
# Sourcing it moves to the repository root, so the scripts work from any current directory.
# shellcheck shell=bash disable=SC2034

set -euo pipefail

TRINE_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$TRINE_ROOT"

# What building trine needs (the default configuration also builds the GoogleTest suite).
TRINE_BUILD_PACKAGES=(build-essential g++ cmake pkg-config libopenblas-dev zlib1g-dev
  libgtest-dev libstb-dev)
# What some tests need on top: NumPy reads a .npy trine wrote, chromium renders the HTML report,
# clang and its runtime build the fuzz targets.
TRINE_TEST_PACKAGES=(python3-numpy chromium clang libclang-rt-14-dev)

say() { printf '[trine] %s\n' "$*"; }
die() {
  printf '[trine] error: %s\n' "$*" >&2
  exit 1
}

ncpu() { nproc 2>/dev/null || echo 2; }

# The given Debian packages that are not installed.
missing_packages() {
  local p status
  for p in "$@"; do
    status=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
    [ "$status" = installed ] || printf '%s\n' "$p"
  done
}

# Installs whichever of the given packages are missing: nothing at all (no apt-get) when every
# one is installed, and `apt-get update` at most once per script run. Not root: prints the
# command to run and stops.
TRINE_APT_UPDATED=${TRINE_APT_UPDATED:-0}
ensure_packages() {
  if ! command -v dpkg-query >/dev/null 2>&1; then
    say "not a Debian system: make sure these are installed: $*"
    return 0
  fi
  local missing
  mapfile -t missing < <(missing_packages "$@")
  [ ${#missing[@]} -eq 0 ] && return 0
  local install="apt-get install -y --no-install-recommends ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then
    die "missing Debian packages: ${missing[*]}
  run as root:  apt-get update && $install
  (or run this script as root, and it installs them itself)"
  fi
  say "installing: ${missing[*]}"
  if [ "$TRINE_APT_UPDATED" != 1 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -q
    TRINE_APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
}

# Configures (or re-checks, which is quick and rebuilds nothing when nothing changed) a Release
# build folder: warnings are errors, CUDA when nvcc is found (TRINE_CUDA=ON|OFF overrides).
# Both scripts configure build/ the same way, so neither undoes the other's build.
configure_build() {
  local dir=$1
  shift
  cmake -S "$TRINE_ROOT" -B "$dir" -DCMAKE_BUILD_TYPE=Release -DTRINE_WERROR=ON \
    -DTRINE_CUDA="${TRINE_CUDA:-AUTO}" "$@"
}

# For the scripts that run trine beside its peers (bench.sh, quality.sh): the peers' programs and
# data beside the repository, and the `trine` program built in build/. `prepare_peer_run torch`
# (the default) also installs Debian's PyTorch and what the peers import; `prepare_peer_run
# dlib` leaves that to the caller (bench.sh installs libdlib-dev).
TRINE_PEERS=$(dirname "$TRINE_ROOT")/shared/peers
TRINE_SHARED_DATA=$(dirname "$TRINE_ROOT")/shared/data
prepare_peer_run() {
  local packages=("${TRINE_BUILD_PACKAGES[@]}")
  [ "${1:-torch}" = torch ] &&
    packages+=(python3-torch python3-pil python3-sklearn python3-numpy)
  ensure_packages "${packages[@]}"
  configure_build build >/dev/null
  cmake --build build --target trine_cli -j "$(ncpu)" >/dev/null
}
