"""A small MoCo on scikit-learn's digits, with and without MoCHi and feature transformation.

An example of switching feature-level negatives on in a plain training loop (one line each),
and an honest measure of what they do on a tiny problem: linear-probe accuracy of the frozen
backbone (logistic regression on its features) on a held-out split, mean and std over seeds.

    python bench/moco_digits.py                 # 4 variants x 5 seeds, ~1-3 min on 2 CPU cores
    python bench/moco_digits.py --seeds 2 --epochs 20

Setup (fixed for every variant): 1257 train / 540 test digits (stratified split, seed 0);
views: random 1-px shift, intensity scale U(0.7, 1.3), Gaussian noise 0.15, a 3x3 erased block
(p 0.5); backbone MLP 64-256-128, projection 128-128-32, key encoder momentum 0.99, queue 1024
(`MemoryQueue`), temperature 0.2, Adam lr 1e-3, batch 128. MoCHi: (N, s, s') = (256, 256, 64), a
quarter of the queue as the paper's (1024, 1024, 256) is of 4096+, from epoch 1 on (epoch 0 fills
the queue). FT: positive extrapolation alpha 2.0 and negative interpolation alpha 1.6, one lambda
per batch (the authors' run.sh settings).
"""

from __future__ import annotations

import argparse
import copy
import time

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from torch import nn
from torch.nn import functional as F

from augflow.negatives import MemoryQueue, feature_transform, info_nce, mochi

VARIANTS = {"MoCo": (False, False), "MoCo + MoCHi": (True, False), "MoCo + FT": (False, True),
            "MoCo + MoCHi + FT": (True, True)}


def load():
    x, y = load_digits(return_X_y=True)
    x = torch.tensor(x / 16.0, dtype=torch.float32).view(-1, 1, 8, 8)
    return train_test_split(x, torch.tensor(y), test_size=540, stratify=y, random_state=0)


def view(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    b = x.shape[0]
    padded = F.pad(x, (1, 1, 1, 1))[:, 0]
    dy, dx = torch.randint(0, 3, (2, b), generator=g)
    ar = torch.arange(8)
    rows, cols = (dy[:, None] + ar)[:, :, None], (dx[:, None] + ar)[:, None, :]
    out = padded[torch.arange(b)[:, None, None], rows, cols]                      # random 1-px shift
    out = out * (0.7 + 0.6 * torch.rand(b, 1, 1, generator=g))
    out = out + 0.15 * torch.randn(out.shape, generator=g)
    ey, ex = torch.randint(0, 6, (2, b, 1, 1), generator=g)
    block = ((ar[:, None] >= ey) & (ar[:, None] < ey + 3)) & ((ar[None, :] >= ex) & (ar[None, :] < ex + 3))
    erase = (torch.rand(b, 1, 1, generator=g) < 0.5) & block
    return out.masked_fill(erase, 0.0).flatten(1)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU())
        self.head = nn.Sequential(nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, 32))

    def forward(self, x):
        return F.normalize(self.head(self.backbone(x)), dim=1)


def train(x_train, seed: int, use_mochi: bool, use_ft: bool, epochs: int) -> Net:
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    net_q = Net()
    net_k = copy.deepcopy(net_q).requires_grad_(False)
    queue = MemoryQueue(1024, 32, init="random", generator=g)
    opt = torch.optim.Adam(net_q.parameters(), lr=1e-3)
    n = x_train.shape[0]
    for epoch in range(epochs):
        perm = torch.randperm(n, generator=g)
        for s in range(0, n - 127, 128):
            xb = x_train[perm[s:s + 128]]
            q = net_q(view(xb, g))
            with torch.no_grad():
                for pq, pk in zip(net_q.parameters(), net_k.parameters()):
                    pk.mul_(0.99).add_(pq.detach(), alpha=0.01)
                k = net_k(view(xb, g))
            negatives = queue.get()
            q_l, k_l = q, k
            if use_ft:                                   # one line each: harder positives, mixed negatives
                q_l, k_l = feature_transform.extrapolate_positives(q, k, alpha=2.0, generator=g)
                negatives = feature_transform.interpolate_negatives(negatives, alpha=1.6, generator=g)
            extra = [mochi(q, queue.get(), n_hard=256, s=256, s_prime=64, generator=g)] if use_mochi and epoch else []
            loss = info_nce(q_l, k_l, [negatives, *extra], temperature=0.2)
            opt.zero_grad()
            loss.backward()
            opt.step()
            queue.enqueue(k)
    return net_q


@torch.no_grad()
def probe(backbone, x_train, y_train, x_test, y_test, per_class: int | None = None, draws: int = 5) -> float:
    """Logistic-regression accuracy on frozen features: all train labels, or `per_class` labels per
    class (mean over `draws` label draws, the same draws for every variant)."""
    f_tr = backbone(x_train.flatten(1)).numpy()
    f_te = backbone(x_test.flatten(1)).numpy()
    y = y_train.numpy()
    subsets = [np.arange(len(y))]
    if per_class is not None:
        rng = np.random.default_rng(1234)
        subsets = [np.concatenate([rng.choice(np.flatnonzero(y == c), per_class, replace=False) for c in range(10)])
                   for _ in range(draws)]
    accs = []
    for idx in subsets:
        scaler = StandardScaler().fit(f_tr[idx])
        clf = LogisticRegression(max_iter=3000).fit(scaler.transform(f_tr[idx]), y[idx])
        accs.append(clf.score(scaler.transform(f_te), y_test.numpy()))
    return float(np.mean(accs))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    x_tr, x_te, y_tr, y_te = load()
    print(f"digits: {len(x_tr)} train / {len(x_te)} test; {args.epochs} epochs; seeds 0..{args.seeds - 1}")
    print()
    print("| variant | probe, all 1257 labels | per seed | probe, 5 labels/class | per seed | s/run |")
    print("|---|---|---|---|---|---|")

    def row(name, backbones, secs=None):
        full = [probe(b, x_tr, y_tr, x_te, y_te) for b in backbones]
        few = [probe(b, x_tr, y_tr, x_te, y_te, per_class=5) for b in backbones]
        cells = [f"{np.mean(v):.4f} ± {np.std(v):.4f} | {' '.join(f'{a:.3f}' for a in v)}" for v in (full, few)]
        print(f"| {name} | {cells[0]} | {cells[1]} | {np.mean(secs):.1f} |" if secs else
              f"| {name} | {cells[0]} | {cells[1]} | - |")

    row("raw pixels (reference)", [nn.Identity()])
    rand = []
    for seed in range(args.seeds):
        torch.manual_seed(seed)
        rand.append(Net().backbone)
    row("random-init backbone (reference)", rand)
    for name, (use_mochi, use_ft) in VARIANTS.items():
        nets, secs = [], []
        for seed in range(args.seeds):
            t = time.perf_counter()
            nets.append(train(x_tr, seed, use_mochi, use_ft, args.epochs).backbone)
            secs.append(time.perf_counter() - t)
        row(name, nets, secs)


if __name__ == "__main__":
    main()
