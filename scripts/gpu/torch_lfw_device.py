#!/usr/bin/env python3
"""The W2 peer, ../shared/peers/torch_lfw.py, on a chosen device (it runs on the CPU only).

This runs the peer's own main() (its splits, decoding, FaceNetS, P x K batches, flips, loss,
Adam, evaluation and printed figures), with five of its pieces wrapped so that the work is done
on DEVICE, as ../shared/peers/torch_mnist.py --device does for W1:
  - FaceNetS: built on the CPU from the peer's seed (the same weights as a CPU run), then moved;
  - to_input: the peer's CPU gather, flip and normalize, then one copy of the batch to DEVICE;
  - batch_hard_triplet: the peer's lines, with the labels and the diagonal mask on DEVICE (as
    torch_mnist.py writes it: torch.eye(..., device=emb.device));
  - torch.optim.Adam: each step waits for the device (torch.cuda.synchronize), so that the
    peer's timer, which stops after opt.step(), measures the step's work, not its queuing;
  - embed_tta: its result is copied back to the CPU (inside the peer's embedding timer).
It adds `peak_gpu_mb` to the peer's figures on a GPU.

  torch_lfw_device.py [--device cuda] [--peer PATH] [torch_lfw.py's flags...]

--peer defaults to torch_lfw.py beside this file, else ../shared/peers/torch_lfw.py from the
repository root. `--device cpu` reproduces the peer's own run (tests/check_peer_device.sh checks
that it prints the same figures).
"""
import argparse
import importlib.util
import os
import sys

here = os.path.dirname(os.path.abspath(__file__))
candidates = [os.path.join(here, 'torch_lfw.py'),
              os.path.join(here, '..', '..', '..', 'shared', 'peers', 'torch_lfw.py')]
pre = argparse.ArgumentParser(add_help=False)
pre.add_argument('--device', default='cuda', help='a torch device: cuda, cuda:1, cpu')
pre.add_argument('--peer', default=next((c for c in candidates if os.path.exists(c)), candidates[-1]),
                 help='the W2 peer program (torch_lfw.py)')
opts, rest = pre.parse_known_args()
if not os.path.exists(opts.peer):
    sys.exit(f'torch_lfw_device.py: no W2 peer at {opts.peer} (give --peer PATH to torch_lfw.py)')

spec = importlib.util.spec_from_file_location('torch_lfw', opts.peer)
peer = importlib.util.module_from_spec(spec)
spec.loader.exec_module(peer)
torch = peer.torch
dev = torch.device(opts.device)
if dev.type == 'cuda' and not torch.cuda.is_available():
    sys.exit(f'torch_lfw_device.py: --device {opts.device}, but torch {torch.__version__} sees no CUDA GPU')


def wait():
    if dev.type == 'cuda':
        torch.cuda.synchronize(dev)


class FaceNetSOnDevice(peer.FaceNetS):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)  # initialized on the CPU, from the peer's seed
        self.to(dev)


class AdamWaiting(torch.optim.Adam):
    def step(self, *args, **kwargs):
        out = super().step(*args, **kwargs)
        wait()
        return out


peer_to_input, peer_embed = peer.to_input, peer.embed_tta
F = peer.F


def to_input(u8, flip=None):
    return peer_to_input(u8, flip).to(dev)


def batch_hard_triplet(emb, labels, margin):
    labels = labels.to(emb.device)
    d = torch.cdist(emb, emb)  # Euclidean, not squared
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(len(labels), dtype=torch.bool, device=emb.device)
    hardest_pos = (d * (same & ~eye)).max(1).values
    hardest_neg = d.masked_fill(same, float('inf')).min(1).values
    per = F.relu(hardest_pos - hardest_neg + margin)
    return per.mean(), hardest_pos.detach(), hardest_neg.detach(), per.detach()


def embed_tta(net, X, bs=500):
    return peer_embed(net, X, bs).cpu()


peer.FaceNetS = FaceNetSOnDevice
peer.to_input = to_input
peer.batch_hard_triplet = batch_hard_triplet
peer.embed_tta = embed_tta
torch.optim.Adam = AdamWaiting

sys.argv = [opts.peer] + rest
peer.main()
if dev.type == 'cuda':
    print(f'peak_gpu_mb {torch.cuda.max_memory_allocated(dev) / 2**20:.1f}')
print(f'device {dev}')
