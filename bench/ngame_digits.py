"""A small in-batch contrastive model (SimCLR-style NT-Xent) on scikit-learn's digits, trained with random
mini-batches vs NGAME mini-batches (`augflow.negatives.NGAMESampler`).

Reports, mean ± std over seeds: the mean cosine similarity of in-batch negatives (the normalised
32-d outputs of the batch's other clean items, in the space the loss compares: how hard they are),
linear-probe accuracy of the frozen backbone (logistic regression on the 1257 train labels),
retrieval accuracy (label of the nearest train item of each test item, cosine on backbone
features), and the time of one epoch — for NGAME split into training and re-clustering
(embedding the train set + faiss k-means).

    python bench/ngame_digits.py                     # 2 variants x 3 seeds, ~1-2 min on 2 CPU cores
    python bench/ngame_digits.py --seeds 1 --epochs 10

Setup (both variants): the views, data split and MLP of bench/moco_digits.py; projection to 32-d,
temperature 0.2, Adam lr 1e-3, batch 128, symmetric in-batch InfoNCE. NGAME: clusters of 8
(16 per batch), re-clustered every 2 epochs from the current network's 32-d outputs for the clean
train images, random batches in the first (warm-up) epoch, as the paper starts.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from moco_digits import Net, load, probe, view   # same data, views, network and probe
from torch.nn import functional as F

from augflow.negatives import NGAMESampler, info_nce, mean_in_batch_similarity


def random_batches(n: int, batch: int, g: torch.Generator) -> list[list[int]]:
    perm = torch.randperm(n, generator=g).tolist()
    return [perm[i:i + batch] for i in range(0, n - batch + 1, batch)]


def train(x_train: torch.Tensor, seed: int, use_ngame: bool, epochs: int, batch: int = 128, cluster: int = 8):
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    net = Net()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    flat = x_train.flatten(1)
    embed_time = [0.0]

    @torch.no_grad()
    def embed():
        t = time.perf_counter()
        out = net(flat)                      # the space the loss compares (normalised head output)
        embed_time[0] += time.perf_counter() - t
        return out

    sampler = NGAMESampler(embed, cluster_size=cluster, batch_size=batch, refresh_every=2, warmup_epochs=1,
                           seed=seed, drop_last=True) if use_ngame else None
    train_s, cluster_s, hardness = [], [], []
    for epoch in range(epochs):
        t = time.perf_counter()
        if sampler is not None:
            embed_time[0] = 0.0
            sampler.set_epoch(epoch)
            batches = sampler.batches(epoch)
            cluster_s.append(time.perf_counter() - t)
        else:
            batches = random_batches(len(flat), batch, g)
            cluster_s.append(0.0)
        t = time.perf_counter()
        for idx in batches:
            xb = x_train[idx]
            z1, z2 = net(view(xb, g)), net(view(xb, g))
            loss = info_nce(z1, z2, temperature=0.2) + info_nce(z2, z1, temperature=0.2)
            opt.zero_grad()
            loss.backward()
            opt.step()
        train_s.append(time.perf_counter() - t)
        with torch.no_grad():
            hardness.append(mean_in_batch_similarity(net(flat), batches))
    return net, float(np.mean(train_s)), float(np.mean(cluster_s)), float(np.mean(hardness[1:]))


@torch.no_grad()
def retrieval(backbone, x_train, y_train, x_test, y_test) -> float:
    f_tr = F.normalize(backbone(x_train.flatten(1)), dim=1)
    f_te = F.normalize(backbone(x_test.flatten(1)), dim=1)
    nearest = (f_te @ f_tr.T).argmax(dim=1)
    return float((y_train[nearest] == y_test).float().mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    x_tr, x_te, y_tr, y_te = load()
    print(f"digits: {len(x_tr)} train / {len(x_te)} test; {args.epochs} epochs; seeds 0..{args.seeds - 1}; "
          f"torch threads {args.threads}")
    print()
    print("| batches | in-batch negative cos | linear probe | retrieval@1 | train s/epoch | re-cluster s/epoch |")
    print("|---|---|---|---|---|---|")
    for name, use_ngame in (("random", False), ("NGAME (clusters of 8)", True)):
        rows = []
        for seed in range(args.seeds):
            net, train_s, cluster_s, hard = train(x_tr, seed, use_ngame, args.epochs)
            rows.append((hard, probe(net.backbone, x_tr, y_tr, x_te, y_te),
                         retrieval(net.backbone, x_tr, y_tr, x_te, y_te), train_s, cluster_s))
        r = np.array(rows)
        cells = [f"{m:.3f} ± {s:.3f}" for m, s in zip(r.mean(0)[:3], r.std(0)[:3])]
        print(f"| {name} | {' | '.join(cells)} | {r[:, 3].mean():.3f} | {r[:, 4].mean():.3f} |")


if __name__ == "__main__":
    main()
