#!/usr/bin/env bash
# trine's accuracy beside its PyTorch peer over many seeds. For each seed it runs the default
# W1 (`trine mnist`) or W2 (`trine faces`) and then the peer (`../shared/peers/torch_*.py`)
# with the same seed, epochs and threads, one after the other, and appends one row to a TSV
# file; at the end it prints the rows, the means, and the mean paired difference trine − peer
# with its standard error. One run's figure moves with the seed far more than the two engines
# differ (W1 after one epoch: about 0.006 MAP@R), so compare means over many seeds.
#
#   scripts/quality.sh w1|w2 [--seeds A-B] [--epochs N] [--threads T] [--steps N] [--out FILE]
#                            [--same-start]
#
#   --seeds A-B   the seeds, inclusive (default 0-9)
#   --epochs N    epochs of both (default: the workload's, W1 1 and W2 20)
#   --threads T   threads of both (default: all cores)
#   --steps N     stop both after N training steps: a quick check of the set-up, not a figure
#   --out FILE    the TSV (default runs/quality-w1.tsv or runs/quality-w2.tsv). Seeds already in
#                 it are skipped, so the same command continues an interrupted sweep; a file
#                 written with other epochs or steps is an error.
#   --same-start  W1 only: both engines start from the peer's initial weights and train on the
#                 peer's batches (scripts/same_start/), so they differ only in their arithmetic;
#                 both are scored by trine eval. One seed's two figures then lie much closer
#                 together than two independent runs' do, and fewer seeds tell the engines apart.
#                 Default --out runs/quality-w1-same-start.tsv.
#
# W1 also scores the peer's test embeddings with `trine eval`, the evaluation trine's own
# figures come from (columns peer_exact_*): the peer ranks neighbours by float32
# `torch.cdist`, whose rounding reorders the close neighbours of a one-epoch embedding.
# A W1 seed takes about 3 minutes on 2 cores, a W2 seed about 20 (40-50 on a shared machine).
# shellcheck source=scripts/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

usage="usage: scripts/quality.sh w1|w2 [--seeds A-B] [--epochs N] [--threads T] [--steps N]"
usage+=" [--out FILE] [--same-start]"
workload=${1:-}
case $workload in
  w1 | w2) shift ;;
  -h | --help) sed -n '2,28p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) die "$usage" ;;
esac
seeds=0-9 epochs='' threads=$(ncpu) steps=0 out='' same_start=0
while [ $# -gt 0 ]; do
  if [ "$1" = --same-start ]; then
    same_start=1
    shift
    continue
  fi
  [ $# -ge 2 ] || die "$1 needs a value ($usage)"
  case $1 in
    --seeds) seeds=$2 ;;
    --epochs) epochs=$2 ;;
    --threads) threads=$2 ;;
    --steps) steps=$2 ;;
    --out) out=$2 ;;
    *) die "unknown option $1 ($usage)" ;;
  esac
  shift 2
done
[ "$same_start" = 0 ] || [ "$workload" = w1 ] || die "--same-start is for w1 only"
if [ -z "$out" ]; then
  out=runs/quality-$workload.tsv
  [ "$same_start" = 0 ] || out=runs/quality-w1-same-start.tsv
fi
[[ $seeds =~ ^([0-9]+)-([0-9]+)$ ]] || die "--seeds wants A-B, e.g. 0-9; got '$seeds'"
first=${BASH_REMATCH[1]} last=${BASH_REMATCH[2]}
[ "$first" -le "$last" ] || die "--seeds $seeds: the first seed is after the last"
positive='^[1-9][0-9]*$'
[ -z "$epochs" ] || [[ $epochs =~ $positive ]] ||
  die "--epochs wants a positive integer, got '$epochs'"
[[ $threads =~ $positive ]] || die "--threads wants a positive integer, got '$threads'"
[[ $steps =~ ^[0-9]+$ ]] || die "--steps wants a number of steps, got '$steps'"
[ -n "$epochs" ] || { [ "$workload" = w1 ] && epochs=1 || epochs=20; }

peers=$TRINE_PEERS data=$TRINE_SHARED_DATA
[ -f "$peers/torch_mnist.py" ] || die "no peer programs in $peers (../shared beside the repository)"
prepare_peer_run

if [ "$same_start" = 1 ]; then
  columns=(seed trine_precision_at_1 trine_map_at_r peer_exact_precision_at_1 peer_exact_map_at_r)
  # trine's side of a same start: a small program on libtrine (scripts/same_start/trine_w1.cpp).
  helper=build/trine_same_start_w1
  cmake --build build --target trine_same_start_w1 -j "$(ncpu)" >/dev/null
elif [ "$workload" = w1 ]; then
  columns=(seed trine_precision_at_1 trine_map_at_r peer_precision_at_1 peer_map_at_r
    peer_exact_precision_at_1 peer_exact_map_at_r)
else
  columns=(seed trine_fold1_accuracy trine_fold1_auc peer_fold1_accuracy peer_fold1_auc)
fi
header=$(IFS=$'\t'; printf '%s' "${columns[*]}")
header="# epochs $epochs steps $steps$([ "$same_start" = 0 ] || echo ' same-start')
$header"
mkdir -p "$(dirname "$out")"
if [ -s "$out" ]; then
  [ "$(head -n 2 "$out")" = "$header" ] || die "$out holds another sweep (its first lines are not
$header
): give another --out"
else
  printf '%s\n' "$header" >"$out"
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The W1 peer, unchanged, but saving the test embeddings and labels its metrics see.
cat >"$work/peer_w1.py" <<'PY'
import os, sys
import numpy as np
peers, dump = sys.argv[1], sys.argv[2]
sys.path.insert(0, peers)
import torch_mnist as peer
score = peer.metrics
def metrics(q, ql, g=None, gl=None):
    if g is None:  # the leave-one-out test evaluation
        np.save(os.path.join(dump, 'emb.npy'), q.cpu().numpy().astype(np.float32))
        np.save(os.path.join(dump, 'labels.npy'), ql.cpu().numpy().astype(np.int32))
    return score(q, ql, g, gl)
peer.metrics = metrics
sys.argv = ['torch_mnist.py'] + sys.argv[3:]
peer.main()
PY

# The value of `name value` lines in FILE (dies naming the file when absent).
figure() {
  local v
  v=$(awk -v k="$2" '$1 == k { print $2; exit }' "$1")
  [ -n "$v" ] || die "no '$2' line in $1"
  printf '%s' "$v"
}
# The OpenBLAS kernel trine's last run chose (its first stderr line says "kernel NAME"); the peer
# gets the same one, since Debian's OpenBLAS misdetects some CPUs and runs a slow kernel.
kernel() {
  local k
  k=$(grep -m1 -o 'kernel [A-Za-z0-9]*' "$work/err" | cut -d' ' -f2)
  printf '%s' "${k:-${OPENBLAS_CORETYPE:-}}"
}
# Runs a command with its stdout to $work/out and stderr to $work/err; dies showing the end of
# stderr when it fails.
run() {
  local what=$1
  shift
  if ! "$@" >"$work/out" 2>"$work/err"; then
    tail -n 20 "$work/err" >&2
    die "$what failed: $*"
  fi
}

say "$(date -u +%Y-%m-%dT%H:%MZ): $workload, seeds $first-$last, $epochs epoch(s)," \
  "$threads threads, into $out"
for s in $(seq "$first" "$last"); do
  if awk -v s="$s" '$1 == s { found = 1 } END { exit !found }' "$out"; then
    say "seed $s: already in $out"
    continue
  fi
  if [ "$same_start" = 1 ]; then
    run "trine's OpenBLAS kernel" "$helper" --describe
    run "the peer (seed $s)" env OPENBLAS_CORETYPE="$(kernel)" \
      /usr/bin/python3 scripts/same_start/peer_w1.py "$peers" "$data/mnist" "$work" "$s" \
      "$epochs" "$steps" "$threads"
    run "trine from the peer's start (seed $s)" "$helper" "$data/mnist" "$work" "$threads"
    run "trine eval (seed $s)" build/trine eval --embeddings "$work/trine_emb.npy" \
      --labels "$work/labels.npy" --threads "$threads"
    tp=$(figure "$work/out" precision_at_1) tm=$(figure "$work/out" map_at_r)
    run "trine eval of the peer's embeddings (seed $s)" build/trine eval \
      --embeddings "$work/emb.npy" --labels "$work/labels.npy" --threads "$threads"
    xp=$(figure "$work/out" precision_at_1) xm=$(figure "$work/out" map_at_r)
    row="$s	$tp	$tm	$xp	$xm"
  elif [ "$workload" = w1 ]; then
    run "trine (seed $s)" build/trine mnist --data "$data/mnist" --seed "$s" --epochs "$epochs" \
      --steps "$steps" --threads "$threads" --no-train-gallery --out "$work/run"
    tp=$(figure "$work/out" test_precision_at_1) tm=$(figure "$work/out" test_map_at_r)
    rm -rf "$work/run"
    run "the peer (seed $s)" env OPENBLAS_CORETYPE="$(kernel)" \
      /usr/bin/python3 "$work/peer_w1.py" "$peers" "$work" --data "$data/mnist" --seed "$s" \
      --epochs "$epochs" --steps "$steps" --threads "$threads"
    pp=$(figure "$work/out" test_precision_at_1) pm=$(figure "$work/out" test_map_at_r)
    run "trine eval of the peer's embeddings (seed $s)" build/trine eval \
      --embeddings "$work/emb.npy" --labels "$work/labels.npy" --threads "$threads"
    xp=$(figure "$work/out" precision_at_1) xm=$(figure "$work/out" map_at_r)
    row="$s	$tp	$tm	$pp	$pm	$xp	$xm"
  else
    run "trine (seed $s)" build/trine faces --faces "$data/faces" --seed "$s" --epochs "$epochs" \
      --steps "$steps" --threads "$threads" --out "$work/run"
    ta=$(figure "$work/out" fold1_accuracy) tu=$(figure "$work/out" fold1_auc)
    rm -rf "$work/run"
    run "the peer (seed $s)" env OPENBLAS_CORETYPE="$(kernel)" \
      /usr/bin/python3 "$peers/torch_lfw.py" --faces "$data/faces" --seed "$s" \
      --epochs "$epochs" --steps "$steps" --threads "$threads"
    pa=$(figure "$work/out" fold1_accuracy) pu=$(figure "$work/out" fold1_auc)
    row="$s	$ta	$tu	$pa	$pu"
  fi
  printf '%s\n' "$row" >>"$out"
  say "seed $s ($(date -u +%H:%MZ)): $row"
done

# The summary over the seeds asked for (rows of other seeds in the file are left out).
/usr/bin/python3 - "$out" "$first" "$last" <<'PY'
import math, statistics, sys
path, first, last = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
lines = [l.rstrip('\n').split('\t') for l in open(path) if not l.startswith('#')]
head, rows = lines[0], [r for r in lines[1:] if first <= int(r[0]) <= last]
cols = {name: [float(r[i]) for r in rows] for i, name in enumerate(head) if i > 0}
print('\t'.join(head))
for r in rows:
    print('\t'.join(r))
n = len(rows)
print(f'mean of {n} seed{"s" if n != 1 else ""}\t' + '\t'.join(f'{statistics.mean(v):.4f}' for v in cols.values()))
for name in [h[len('trine_'):] for h in head if h.startswith('trine_')]:
    for peer, how in [('peer_', ''), ('peer_exact_', ', both scored by trine eval')]:
        if peer + name not in cols:
            continue
        diff = [t - p for t, p in zip(cols['trine_' + name], cols[peer + name])]
        se = statistics.stdev(diff) / math.sqrt(n) if n > 1 else float('nan')
        print(f'trine - peer, {name}{how}: {statistics.mean(diff):+.4f} (standard error {se:.4f})')
PY
