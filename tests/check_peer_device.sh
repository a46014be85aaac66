#!/usr/bin/env bash
# ctest `peer_device_wrapper`: scripts/gpu/torch_lfw_device.py (the W2 peer on a chosen device,
# which the GPU check runs beside `trine bench w2 --device cuda`) is the peer's own run. With
# --device cpu it must print the same figures as ../shared/peers/torch_lfw.py itself: a wrapper
# that changed the weights' initialization, the batches, the loss or the optimizer would move
# the fold-1 figures and the threshold it prints. Only timings may differ. Runs on a small
# synthetic LFW (40 identities, 16x16 images, 10 folds of 3 + 3 pairs) in a few seconds.
#
# Exits 77 (ctest: skipped) where /usr/bin/python3 lacks torch, sklearn or PIL, or the peer
# programs are not beside the repository (a user's machine).
#
#   bash tests/check_peer_device.sh SOURCE_DIR
set -euo pipefail
root=${1:?usage: check_peer_device.sh SOURCE_DIR}
peer=$root/../shared/peers/torch_lfw.py
wrapper=$root/scripts/gpu/torch_lfw_device.py
py=/usr/bin/python3
if [[ ! -f $peer ]]; then
  echo "skipped: no W2 peer at $peer (../shared beside the repository)"
  exit 77
fi
if ! $py -c 'import torch, sklearn, PIL' 2>/dev/null; then
  echo "skipped: $py lacks torch, sklearn or PIL (Debian: python3-torch python3-sklearn python3-pil)"
  exit 77
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/trine-peer-device.XXXXXX")
trap 'rm -rf "$work"' EXIT

# Identity i's images: its own colour plus noise, so that a few steps move the figures.
$py - "$work/faces" <<'PY'
import os, sys
import numpy as np
from PIL import Image
out = sys.argv[1]
rng = np.random.default_rng(5)
names = [f'Person_{i:02d}' for i in range(40)]
for i, n in enumerate(names):
    os.makedirs(os.path.join(out, 'lfw', n))
    base = rng.integers(0, 256, 3)
    for j in range(1, 4):
        px = np.clip(base + rng.normal(0, 90, (16, 16, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(px).save(os.path.join(out, 'lfw', n, f'{n}_{j:04d}.jpg'), quality=95)
with open(os.path.join(out, 'pairs.txt'), 'w') as f:
    f.write('10\t3\n')
    for k in range(10):
        ids = [(4 * k + s) % 40 for s in range(4)]
        for s in range(3):
            f.write(f'{names[ids[s]]}\t1\t2\n')
        for s in range(3):
            f.write(f'{names[ids[s]]}\t1\t{names[ids[s + 1]]}\t3\n')
PY

args=(--faces "$work/faces" --size 16 --P 4 --K 2 --steps 3 --epochs 1 --threads 1)
$py "$peer" "${args[@]}" >"$work/peer.out" 2>"$work/peer.err"
$py "$wrapper" --device cpu --peer "$peer" "${args[@]}" >"$work/wrapper.out" 2>"$work/wrapper.err"

# The figures that depend on the weights (not timings, throughput or memory).
figures() {
  grep -E '^(fold1_|train_steps )' "$1.out"
  grep -E '^threshold ' "$1.err"
}
figures "$work/peer" >"$work/peer.fig"
figures "$work/wrapper" >"$work/wrapper.fig"
if [[ $(wc -l <"$work/peer.fig") -lt 6 ]]; then
  echo "the peer printed too few figures:"
  cat "$work/peer.out" "$work/peer.err"
  exit 1
fi
if ! diff "$work/peer.fig" "$work/wrapper.fig"; then
  echo "torch_lfw_device.py --device cpu differs from torch_lfw.py (above: < peer, > wrapper)"
  exit 1
fi
grep -qx 'device cpu' "$work/wrapper.out" || { echo "the wrapper did not say its device"; exit 1; }
echo "torch_lfw_device.py --device cpu prints the peer's figures:"
cat "$work/wrapper.fig"
