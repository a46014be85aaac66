"""The PyTorch side of test_peer_lockstep: W1's peer trained from trine's weights on trine's batches.

    /usr/bin/python3 peer_lockstep.py PEERS_DIR WORK_DIR STEPS

Imports the peer program itself (PEERS_DIR/torch_mnist.py: its EmbedNet and batch_hard_triplet),
loads the net's parameters from WORK_DIR/param{0..7}.npy (trine's initial weights, in the order
of EmbedNet.parameters()), then trains STEPS steps on WORK_DIR/x.npy [STEPS, B, 1, 28, 28] and
WORK_DIR/labels.npy [STEPS B] with W1's loss (margin 0.2) and optimizer (Adam, lr 1e-3), as the
peer's training loop does. Writes WORK_DIR/emb0.npy (the first batch's embeddings before any
step), grad{i}.npy (the first step's gradients) and losses.npy [STEPS] (float64); prints "ok".
"""
import os
import sys

import numpy as np
import torch

peers, work, steps = sys.argv[1], sys.argv[2], int(sys.argv[3])
sys.path.insert(0, peers)
import torch_mnist as peer  # noqa: E402

torch.set_num_threads(1)
path = lambda name: os.path.join(work, name)
net = peer.EmbedNet()
params = list(net.parameters())
with torch.no_grad():
    for i, p in enumerate(params):
        w = np.load(path(f'param{i}.npy'))
        if w.shape != tuple(p.shape):
            sys.exit(f'param{i}.npy has shape {w.shape}, the peer\'s parameter {i} {tuple(p.shape)}')
        p.copy_(torch.from_numpy(w))
x = np.load(path('x.npy'))
labels = np.load(path('labels.npy')).astype(np.int64).reshape(steps, -1)
opt = torch.optim.Adam(net.parameters(), lr=1e-3)
losses = []
for s in range(steps):
    emb = net(torch.from_numpy(x[s]))
    if s == 0:
        np.save(path('emb0.npy'), emb.detach().numpy())
    loss = peer.batch_hard_triplet(emb, torch.from_numpy(labels[s]), 0.2)
    opt.zero_grad()
    loss.backward()
    if s == 0:
        for i, p in enumerate(params):
            np.save(path(f'grad{i}.npy'), p.grad.numpy())
    opt.step()
    losses.append(loss.item())
np.save(path('losses.npy'), np.array(losses, dtype=np.float64))
print('ok')
