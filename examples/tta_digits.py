"""Test-time augmentation on scikit-learn's digits: a tiny CNN, a shifted test set, with and without TTA.

    python examples/tta_digits.py

Trains a small CNN on scikit-learn's 8x8 digits (shipped with the package, no download; upsampled
and centred on a 24x24 canvas) with light rotation/shift augmentation, builds a shifted copy of
the test split (random rotations up to 30 degrees, shifts up to 3 pixels, Gaussian noise), and
prints the accuracy of plain predictions and of several TTA settings, including entropy-selective
TTA calibrated to augment 40% of a held-out split. About 15 s on one CPU core.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from augflow.tta import TTA

SIZE = 24   # digits are upsampled to 16x16 and centred on a 24x24 canvas, so shifts do not crop them
SHIFTS = [[0, 0], [2, 0], [-2, 0], [0, 2], [0, -2]]
TTA_SETTINGS = {
    "shifts (5 views)": {"augflow": 1, "tta": [{"shift": {"offsets": SHIFTS}}]},
    "rotations (3 views)": {"augflow": 1, "tta": [{"rotate": {"angles": [0, -15, 15]}}]},
    "rotations + shifts (7 views, union)": {"augflow": 1, "combine": "union",
                                            "tta": [{"rotate": {"angles": [0, -15, 15]}},
                                                    {"shift": {"offsets": SHIFTS}}]},
    "rotations x shifts (15 views)": {"augflow": 1, "tta": [{"rotate": {"angles": [0, -15, 15]}},
                                                           {"shift": {"offsets": SHIFTS}}]},
}


def to_canvas(images: np.ndarray) -> np.ndarray:
    """8x8 digits in [0, 16] -> 1x24x24 float32 in [0, 1]: upsampled twice, 4 pixels of margin."""
    up = ndimage.zoom(images.astype(np.float32) / 16.0, (1, 2, 2), order=1)
    return np.pad(up, ((0, 0), (4, 4), (4, 4)))[:, None]


def make_model() -> torch.nn.Module:
    return torch.nn.Sequential(
        torch.nn.Conv2d(1, 16, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(16, 32, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Flatten(), torch.nn.Dropout(0.2), torch.nn.Linear(32 * 36, 10))


def train_augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Training augmentation matching the TTA views (rotations up to 15 degrees, shifts up to 2 pixels),
    so that TTA's views stay in distribution; one batched affine resampling."""
    n = len(x)
    a = (torch.rand(n, generator=gen) * 30 - 15) * torch.pi / 180
    t = (torch.randint(-2, 3, (n, 2), generator=gen).float() * 2 / SIZE)
    theta = torch.stack([torch.stack([a.cos(), -a.sin(), -t[:, 0]], 1),
                         torch.stack([a.sin(), a.cos(), -t[:, 1]], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def train(x: torch.Tensor, y: torch.Tensor, epochs: int, seed: int) -> torch.nn.Module:
    gen = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = make_model()
        opt = torch.optim.Adam(model.parameters(), lr=3e-3)
        for _ in range(epochs):
            model.train()
            order = torch.randperm(len(x), generator=gen)
            for start in range(0, len(x), 32):
                idx = order[start:start + 32]
                loss = F.cross_entropy(model(train_augment(x[idx], gen)), y[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
    return model.eval()


def shifted_copy(x: np.ndarray, rng: np.random.Generator, max_angle: float, max_shift: int, noise: float) -> np.ndarray:
    """The distribution shift: per image a random rotation, a random shift and Gaussian noise."""
    out = np.empty_like(x)
    for i, img in enumerate(x[:, 0]):
        rotated = ndimage.rotate(img, rng.uniform(-max_angle, max_angle), reshape=False, order=1, mode="constant")
        out[i, 0] = ndimage.shift(rotated, rng.integers(-max_shift, max_shift + 1, size=2), order=0, mode="constant")
    return np.clip(out + rng.normal(0, noise, size=x.shape), 0, 1).astype(np.float32)


def accuracy(pred: torch.Tensor, y: torch.Tensor) -> float:
    return float((pred.argmax(1) == y).float().mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-angle", type=float, default=30.0)
    ap.add_argument("--max-shift", type=int, default=3)
    ap.add_argument("--noise", type=float, default=0.15)
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (one is fastest for this tiny CNN)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()

    digits = load_digits()
    x = to_canvas(digits.images)
    x_train, x_rest, y_train, y_rest = train_test_split(x, digits.target, test_size=0.5, random_state=args.seed,
                                                        stratify=digits.target)
    x_val, x_test, y_val, y_test = train_test_split(x_rest, y_rest, test_size=0.6, random_state=args.seed,
                                                    stratify=y_rest)
    rng = np.random.default_rng(args.seed)
    shift = lambda a: torch.from_numpy(shifted_copy(a, rng, args.max_angle, args.max_shift, args.noise))  # noqa: E731
    val_shifted, test_shifted = shift(x_val), shift(x_test)
    y_test_t = torch.from_numpy(y_test)
    as_tensor = torch.from_numpy

    model = train(as_tensor(x_train), torch.from_numpy(y_train), args.epochs, args.seed)
    t_train = time.perf_counter() - t0
    with torch.no_grad():
        clean = accuracy(model(as_tensor(x_test)), y_test_t)
        plain = accuracy(model(test_shifted), y_test_t)
    print(f"digits: {len(x_train)} train / {len(x_val)} held-out / {len(x_test)} test images, "
          f"trained in {t_train:.1f} s")
    print(f"{'clean test, no TTA':44s} accuracy {clean:.4f}")
    print(f"{'shifted test, no TTA':44s} accuracy {plain:.4f}")
    for name, spec in TTA_SETTINGS.items():
        tta = TTA(model, spec, merge="mean")
        start = time.perf_counter()
        acc = accuracy(tta(test_shifted), y_test_t)
        print(f"{'shifted test, TTA ' + name:44s} accuracy {acc:.4f}  ({time.perf_counter() - start:.2f} s)")
    best = TTA(model, TTA_SETTINGS["rotations x shifts (15 views)"], merge="mean")
    best.calibrate([val_shifted], target_rate=0.4)
    acc = accuracy(best(test_shifted), y_test_t)
    print(f"{'shifted test, selective TTA (rate 0.4)':44s} accuracy {acc:.4f}  ({best.report})")
    print(f"total {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
