#!/usr/bin/env bash
# trine beside its PyTorch peers, in the same run: alternates `../shared/peers/torch_*.py` and
# `trine bench w1|w2` (same steps, threads and data), takes the median of each figure over the
# repeats, and prints `name peer trine ratio` lines. Installs Debian's PyTorch for the peers.
#
#   scripts/bench.sh w1|w2|mining [--steps N] [--epochs N] [--repeats R] [--threads T]
#                                 [--peer torch|dlib]
#
# --peer dlib runs dlib's C++ DNN instead of PyTorch (W1 and W2): scripts/dlib_peer/dlib_w1.cpp
# or dlib_w2.cpp, built here against Debian's libdlib-dev (installed when missing) into
# build/peers/, its loss checked (`--self-check`) before the run.
#
# Throughput figures need only a few hundred steps (--steps); quality figures need full epochs
# (--steps 0 --epochs N). The machine is shared and noisy: take at least 3 repeats. Each repeat's
# throughput is printed as it ends, the medians at the end.
# shellcheck source=scripts/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

workload=${1:-}
[ -n "$workload" ] || die "usage: scripts/bench.sh w1|w2|mining [--steps N] [--epochs N] [--repeats R] [--threads T] [--peer torch|dlib]"
shift
steps=300 epochs=1 repeats=3 threads=$(ncpu) peer_name=torch
while [ $# -gt 0 ]; do
  case $1 in
    --steps) steps=$2; shift 2 ;;
    --epochs) epochs=$2; shift 2 ;;
    --repeats) repeats=$2; shift 2 ;;
    --threads) threads=$2; shift 2 ;;
    --peer) peer_name=$2; shift 2 ;;
    *) die "unknown option $1" ;;
  esac
done

case $peer_name in
  torch | dlib) ;;
  *) die "unknown peer '$peer_name' (torch or dlib)" ;;
esac
peers=$TRINE_PEERS data=$TRINE_SHARED_DATA
bin=build/trine
prepare_peer_run "$peer_name"

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
case $peer_name in
  torch) ;;
  dlib)
    [ "$workload" != mining ] || die "--peer dlib: the mining benchmark has no peer"
    ensure_packages libdlib-dev
    dlib_peer=build/peers/dlib_$workload src=scripts/dlib_peer/dlib_$workload.cpp
    if [ ! -x "$dlib_peer" ] || [ "$src" -nt "$dlib_peer" ] ||
      [ scripts/dlib_peer/dlib_peer.h -nt "$dlib_peer" ]; then
      say "building the dlib peer: $dlib_peer"
      mkdir -p build/peers
      # shellcheck disable=SC2046  # pkg-config's flags are separate words
      g++ -std=c++17 -O3 -march=native -Wall -Wextra -Werror -o "$dlib_peer.tmp" "$src" \
        $(pkg-config --cflags --libs dlib-1) -lz && mv "$dlib_peer.tmp" "$dlib_peer" ||
        die "the dlib peer did not build"
    fi
    "$dlib_peer" --self-check || die "the dlib peer's loss failed its check"
    ;;
esac

case $workload in
  w1)
    peer=(env OPENBLAS_CORETYPE=Cooperlake /usr/bin/python3 "$peers/torch_mnist.py"
      --data "$data/mnist" --threads "$threads" --steps "$steps" --epochs "$epochs")
    [ "$peer_name" = dlib ] && peer=(env OPENBLAS_CORETYPE=Cooperlake "$dlib_peer"
      --data "$data/mnist" --threads "$threads" --steps "$steps" --epochs "$epochs")
    ours=("$bin" bench w1 --data "$data/mnist" --threads "$threads" --steps "$steps" --epochs "$epochs")
    ;;
  w2)
    peer=(env OPENBLAS_CORETYPE=Cooperlake /usr/bin/python3 "$peers/torch_lfw.py"
      --faces "$data/faces" --threads "$threads" --steps "$steps" --epochs "$epochs")
    [ "$peer_name" = dlib ] && peer=(env OPENBLAS_CORETYPE=Cooperlake "$dlib_peer"
      --faces "$data/faces" --threads "$threads" --steps "$steps" --epochs "$epochs")
    ours=("$bin" bench w2 --faces "$data/faces" --threads "$threads" --steps "$steps" --epochs "$epochs")
    ;;
  mining)
    peer=()
    ours=("$bin" bench mining --threads "$threads")
    ;;
  *) die "unknown workload '$workload' (w1, w2 or mining)" ;;
esac

# say_rates LABEL FILE: a run's throughput figures on one line. Each repeat's, beside the medians
# below, tell a slow spell of the (shared, noisy) machine from a real difference.
say_rates() {
  local rates
  rates=$(grep -E '^(train_img_per_s|embed_img_per_s) ' "$2" | paste -sd ' ' - || true)
  [ -z "$rates" ] || say "$1: $rates"
}

say "$(date -u +%Y-%m-%dT%H:%MZ) on $(nproc) cores; $repeats repeats, alternating"
for r in $(seq 1 "$repeats"); do
  if [ ${#peer[@]} -gt 0 ]; then
    say "repeat $r: peer ($peer_name): ${peer[*]}"
    "${peer[@]}" >"$out/peer.$r" 2>"$out/peer.$r.err" || { cat "$out/peer.$r.err"; die "the peer failed"; }
    say_rates "repeat $r: peer" "$out/peer.$r"
  fi
  say "repeat $r: trine: ${ours[*]}"
  "${ours[@]}" >"$out/trine.$r" 2>"$out/trine.$r.err" || { cat "$out/trine.$r.err"; die "trine failed"; }
  say_rates "repeat $r: trine" "$out/trine.$r"
done
grep -h -m1 'kernel' "$out/trine.1.err" | sed 's/^/[trine] /' || true

# Median of each `name value` figure over the repeats, side by side.
/usr/bin/python3 - "$out" "$repeats" <<'PY'
import os, statistics, sys
out, repeats = sys.argv[1], int(sys.argv[2])
def figures(prefix):
    runs = []
    for r in range(1, repeats + 1):
        p = os.path.join(out, f"{prefix}.{r}")
        if not os.path.exists(p):
            return {}
        d = {}
        for line in open(p):
            parts = line.split()
            if len(parts) == 2:
                try:
                    d[parts[0]] = float(parts[1])
                except ValueError:
                    d[parts[0]] = parts[1]
        runs.append(d)
    keys = [k for k in runs[0] if all(k in d for d in runs)]
    return {k: (statistics.median([d[k] for d in runs]) if isinstance(runs[0][k], float) else runs[0][k]) for k in keys}
peer, ours = figures("peer"), figures("trine")
print(f"{'figure':28} {'peer':>12} {'trine':>12} {'trine/peer':>11}")
for k in list(ours) + [k for k in peer if k not in ours]:
    p, t = peer.get(k), ours.get(k)
    if isinstance(p, float) and isinstance(t, float) and p != 0:
        print(f"{k:28} {p:12.4f} {t:12.4f} {t / p:11.3f}")
    else:
        print(f"{k:28} {str(p if p is not None else '-'):>12} {str(t if t is not None else '-'):>12}")
PY
