"""quality.sh w1 --same-start, the peer's side: the W1 peer program's own start, trained as it trains.

    /usr/bin/python3 peer_w1.py PEERS_DIR DATA_DIR WORK_DIR SEED EPOCHS STEPS THREADS

With ../shared/peers/torch_mnist.py's own pieces and seeding (torch.manual_seed(SEED) for the
initial weights, numpy's default_rng(SEED) and pk_batches for the batches) it writes what trine
needs to start from the same place: WORK_DIR/param{0..7}.npy (the initial weights, in the order of
EmbedNet.parameters()) and WORK_DIR/batches.npy (every step's 128 training-image indices, in
order, flat int32). Then it trains as the peer's main() does (Adam, lr 1e-3, batch-hard, margin
0.2; STEPS > 0 stops early) and writes the test embeddings and labels, WORK_DIR/emb.npy and
WORK_DIR/labels.npy, for trine eval. Prints "ok".
"""
import os
import sys

import numpy as np
import torch

peers, data, work = sys.argv[1], sys.argv[2], sys.argv[3]
seed, epochs, steps, threads = (int(v) for v in sys.argv[4:8])
sys.path.insert(0, peers)
import torch_mnist as peer  # noqa: E402

torch.set_num_threads(threads)
torch.manual_seed(seed)
rng = np.random.default_rng(seed)
path = lambda name: os.path.join(work, name)
read = lambda stem: peer.read_idx(os.path.join(data, stem + '.gz'))
Xtr, ytr = read('train-images-idx3-ubyte'), read('train-labels-idx1-ubyte')
Xte, yte = read('t10k-images-idx3-ubyte'), read('t10k-labels-idx1-ubyte')
norm = lambda X: torch.from_numpy(((X.astype(np.float32) / 255.0) - 0.1307) / 0.3081)[:, None]
Xtr_t, Xte_t = norm(Xtr), norm(Xte)
net = peer.EmbedNet()
for i, p in enumerate(net.parameters()):
    np.save(path(f'param{i}.npy'), p.detach().numpy())
batches = [idx for _ in range(epochs) for idx in peer.pk_batches(ytr, 8, 16, rng)]
if steps:
    batches = batches[:steps]
np.save(path('batches.npy'), np.concatenate(batches).astype(np.int32))
opt = torch.optim.Adam(net.parameters(), lr=1e-3)
for idx in batches:
    xb = Xtr_t[torch.from_numpy(idx)]
    yb = torch.from_numpy(ytr[idx].astype(np.int64))
    loss = peer.batch_hard_triplet(net(xb), yb, 0.2)
    opt.zero_grad()
    loss.backward()
    opt.step()
net.eval()
np.save(path('emb.npy'), peer.embed(net, Xte_t).numpy())
np.save(path('labels.npy'), yte.astype(np.int32))
print('ok')
