"""augflow.TTA against ttach (the reference PyTorch TTA library): time per batch and agreement.

Same model, same views (the 8 symmetries of the square, d4), same batch, interleaved in rounds so
machine noise hits both alike. ttach calls the model once per view; augflow stacks all views of a
batch into as few calls as `max_batch` allows (measured with all views in one call, and with
calls of the input batch size, as ttach makes them), plus an identity "model" that isolates the
cost of the TTA machinery. Reports the median time per batch, the ratio
ttach / augflow (above 1: augflow faster), and the largest difference between the outputs.

    python bench/tta.py [--batch 32] [--size 64] [--rounds 7] [--threads 1] [--device cpu]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F
from skimage import data

import ttach
from augflow.tta import TTA


def make_net(classes: int, segmentation: bool) -> torch.nn.Module:
    with torch.random.fork_rng():
        torch.manual_seed(0)
        layers = [torch.nn.Conv2d(3, 32, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(32, 64, 3, padding=1),
                  torch.nn.ReLU(), torch.nn.Conv2d(64, 64, 3, padding=1), torch.nn.ReLU(),
                  torch.nn.Conv2d(64, classes, 1)]
        if not segmentation:
            layers += [torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten()]
        return torch.nn.Sequential(*layers).eval()


class Identity(torch.nn.Module):
    """No compute at all: what is left is the TTA machinery itself (views, inverses, merge)."""

    def forward(self, x):
        return x


def photo_batch(batch: int, size: int) -> torch.Tensor:
    photos = [data.astronaut(), data.chelsea(), data.coffee(), np.repeat(data.camera()[:, :, None], 3, 2)]
    x = torch.stack([torch.from_numpy(p[:256, :256].copy()).permute(2, 0, 1).float() / 255 for p in photos])
    x = F.interpolate(x, size=(size, size), mode="area")
    return x.repeat((batch + len(photos) - 1) // len(photos), 1, 1, 1)[:batch]


def timed(fn, x, device) -> float:
    start = time.perf_counter()
    with torch.no_grad():
        fn(x)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    x = photo_batch(args.batch, args.size).to(device)
    print(f"batch {args.batch} x 3 x {args.size} x {args.size}, d4 (8 views), device {device}, "
          f"torch threads {torch.get_num_threads()}, torch {torch.__version__}")
    print(f"{'task':16s} {'max_batch':>10s} {'augflow s/batch':>16s} {'ttach s/batch':>14s} {'ttach/augflow':>14s} "
          f"{'max |diff|':>11s}")
    for name in ("classification", "segmentation", "identity model"):
        task = "classification" if name == "classification" else "segmentation"
        model = make_net(10, task == "segmentation").to(device) if name != "identity model" else Identity()
        xin = x if name != "identity model" else x.repeat(1, 4, 1, 1)[:, :10]   # 10 'class' maps
        wrapper = ttach.SegmentationTTAWrapper if task == "segmentation" else ttach.ClassificationTTAWrapper
        theirs = wrapper(model, ttach.aliases.d4_transform(), merge_mode="mean")
        for max_batch in (None, args.batch):
            ours = TTA(model, "d4", task=task, merge="mean_logits", max_batch=max_batch)
            with torch.no_grad():
                diff = float((ours(xin) - theirs(xin)).abs().max())       # also warms both up
            t_ours, t_theirs = [], []
            for _ in range(args.rounds):
                t_ours.append(timed(ours, xin, device))
                t_theirs.append(timed(theirs, xin, device))
            a, b = statistics.median(t_ours), statistics.median(t_theirs)
            label = "all" if max_batch is None else str(max_batch)
            print(f"{name:16s} {label:>10s} {a:16.4f} {b:14.4f} {b / a:14.2f} {diff:11.2e}")


if __name__ == "__main__":
    main()
