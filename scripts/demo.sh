#!/usr/bin/env bash
# trine's main job in one command: installs what is missing (Debian 12, as root), builds the
# `trine` program (Release), trains and evaluates a triplet-loss embedding on MNIST, and says
# where the HTML report is. Safe to rerun: nothing is installed or rebuilt twice.
#
#   scripts/demo.sh [more `trine mnist` flags, e.g. --epochs 2]
#
# Data, first found wins:
#   1. ../shared/data/mnist next to the repository (development and CI machines)
#   2. data/mnist/ in the repository (put the four MNIST IDX files there yourself)
#   3. datasets/download_mnist.sh data/mnist (needs internet)
#   4. Fashion-MNIST from the Debian package dataset-fashion-mnist (installed here), with a note
# TRINE_DEMO_SHARED_MNIST=<dir> replaces the path of step 1 (for testing this script).

# shellcheck source=scripts/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

start=$SECONDS
out=runs/mnist-demo
bin=build/trine

ensure_packages "${TRINE_BUILD_PACKAGES[@]}"

say "building $bin (Release, $(ncpu) jobs)"
configure_build build >/dev/null
cmake --build build --target trine_cli -j "$(ncpu)"

# True when `dir` holds the four MNIST-format IDX files (gzipped or not).
has_idx_files() {
  local dir=$1 f
  for f in train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte \
    t10k-labels-idx1-ubyte; do
    [ -f "$dir/$f.gz" ] || [ -f "$dir/$f" ] || return 1
  done
}

# Prints the data folder to use (messages go to stderr).
resolve_data() {
  local shared=${TRINE_DEMO_SHARED_MNIST:-$(dirname "$TRINE_ROOT")/shared/data/mnist}
  if has_idx_files "$shared"; then
    say "data: MNIST from $shared" >&2
    echo "$shared"
    return
  fi
  if has_idx_files data/mnist; then
    say "data: MNIST from data/mnist" >&2
    echo data/mnist
    return
  fi
  if [ -f datasets/download_mnist.sh ]; then
    say "data: MNIST not found here; downloading it into data/mnist" >&2
    if bash datasets/download_mnist.sh data/mnist >&2 && has_idx_files data/mnist; then
      say "data: MNIST from data/mnist (downloaded)" >&2
      echo data/mnist
      return
    fi
    say "data: could not download MNIST (no internet?)" >&2
  fi
  local fashion=/usr/share/datasets/fashion-mnist
  ensure_packages dataset-fashion-mnist >&2
  has_idx_files "$fashion" || die "dataset-fashion-mnist is installed but $fashion lacks its files"
  say "data: MNIST is not available, so this demo uses Fashion-MNIST instead (Debian package" \
    "dataset-fashion-mnist, $fashion): same format, 10 classes of clothing" >&2
  echo "$fashion"
}
data=$(resolve_data)

if ! "$bin" mnist --help >/dev/null 2>&1; then
  die "$bin has no 'mnist' command yet, so there is no demo to run ('$bin --help' lists the" \
    "commands it has)"
fi

say "running: $bin mnist --data $data --out $out $*"
"$bin" mnist --data "$data" --out "$out" "$@"

say "done in $((SECONDS - start)) s"
if [ -f "$out/report.html" ]; then
  say "report: $TRINE_ROOT/$out/report.html (figures: $TRINE_ROOT/$out/metrics.json)"
else
  say "results: $TRINE_ROOT/$out/"
fi
