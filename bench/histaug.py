"""HistAug vs re-encoding: embeddings/s of augmenting a bag of N x 768 embeddings.

The paper's speed claim: augmenting a whole-slide bag in latent space with one HistAug forward
is far cheaper than augmenting every patch in pixel space and re-encoding it with the foundation
model. This bench measures, in one process, on this machine's CPU:

- `histaug` op on an N x 768 bag (mode bag and mode instance), through an augflow Pipeline;
- re-encoding: the same pipeline's image ops on 64x64 patches + the small test CNN (768-d out);
- re-encoding with a ViT-B/16-shaped encoder at 224 px (random weights; the size of the
  foundation models HistAug is meant for — UNI, CONCH, Virchow are ViT-B/L/H), on a few patches.

    python bench/histaug.py                     # N = 20000, writes nothing; paste into bench/RESULTS.md
    python bench/histaug.py --n 2000 --quick    # a fast smoke run
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from skimage import data
from torch import nn

import augflow
from augflow.latent import train_histaug
from augflow.train.histaug import images_to_tensor

PIPELINE = {"augflow": 1, "name": "histaug_patch", "seed": 0, "sample": [
    {"horizontal_flip": {"p": 0.5}},
    {"vertical_flip": {"p": 0.5}},
    {"random_rotate90": {}},
    {"random_brightness_contrast": {"p": 0.8}},
    {"hue_saturation_value": {"p": 0.5}},
    {"gaussian_blur": {"p": 0.3}},
]}
DIM = 768


def cnn_encoder() -> nn.Module:
    """The test encoder, widened to a 768-d output."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 32, 3, 2, 1), nn.ReLU(), nn.Conv2d(32, 64, 3, 2, 1), nn.ReLU(),
                         nn.Conv2d(64, 128, 3, 2, 1), nn.ReLU(), nn.Conv2d(128, DIM, 1), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten()).eval()


class ViTB16(nn.Module):
    """ViT-B/16 shape (12 layers, 768 wide, 12 heads, 224 px -> 196 tokens + CLS), random weights."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.patch = nn.Conv2d(3, DIM, 16, 16)
        self.cls = nn.Parameter(torch.zeros(1, 1, DIM))
        self.pos = nn.Parameter(torch.randn(1, 197, DIM) * 0.02)
        layer = nn.TransformerEncoderLayer(DIM, 12, 4 * DIM, activation="gelu", batch_first=True, norm_first=True)
        self.blocks = nn.TransformerEncoder(layer, 12, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(DIM)

    def forward(self, x):
        x = nn.functional.interpolate(x, size=(224, 224), mode="bilinear", align_corners=False)
        t = self.patch(x).flatten(2).transpose(1, 2)
        t = torch.cat([self.cls.expand(t.shape[0], -1, -1), t], 1) + self.pos
        return self.norm(self.blocks(t))[:, 0]


def patches(n: int, size: int = 64) -> list[np.ndarray]:
    out = []
    for name in ("immunohistochemistry", "astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field"):
        img = getattr(data, name)()
        h, w = img.shape[:2]
        out.extend(np.ascontiguousarray(img[y:y + size, x:x + size]) for y in range(0, h - size + 1, size // 2)
                   for x in range(0, w - size + 1, size // 2))
    reps = -(-n // len(out))
    return (out * reps)[:n]


def best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


@torch.no_grad()
def reencode_rate(images, encoder, pipe, batch: int) -> tuple[float, float, float]:
    """(augment s, encode s, embeddings/s) for augmenting + encoding all `images`."""
    t = time.perf_counter()
    aug = [pipe({"image": im}, index=i)["image"] for i, im in enumerate(images)]
    t_aug = time.perf_counter() - t
    t = time.perf_counter()
    for s in range(0, len(aug), batch):
        encoder(images_to_tensor(aug[s:s + batch]))
    t_enc = time.perf_counter() - t
    return t_aug, t_enc, len(images) / (t_aug + t_enc)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=20000, help="bag size (rows of 768)")
    ap.add_argument("--reencode-n", type=int, default=20000, help="patches augmented + re-encoded with the CNN")
    ap.add_argument("--vit-n", type=int, default=32, help="patches re-encoded with the ViT-B/16-shaped encoder")
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--depth", type=int, default=12, help="HistAug blocks (the paper's configs use 12)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="fewer repeats, smaller ViT sample")
    args = ap.parse_args()
    if args.quick:
        args.repeats, args.vit_n = 1, 8
    torch.set_num_threads(args.threads)
    pipe = augflow.Pipeline.from_dict(PIPELINE)
    cnn = cnn_encoder()
    with tempfile.TemporaryDirectory() as tmp:
        # a real vocabulary and parameter bank: one short training run on a few patches
        model = train_histaug(patches(128), cnn, PIPELINE, epochs=1, device="cpu", views=2, chunks=8, depth=args.depth,
                              heads=8, progress=False)
        model.save(Path(tmp) / "histaug")
        bag = np.random.default_rng(0).standard_normal((args.n, DIM)).astype(np.float32)
        rates = {}
        for mode in ("bag", "instance"):
            op_pipe = augflow.Pipeline.from_dict({"augflow": 1, "sample": [
                {"histaug": {"checkpoint": str(Path(tmp) / "histaug"), "mode": mode, "device": "cpu"}}]})
            op_pipe({"embedding": bag[:256]}, seed=0)                         # load + warm up
            secs = best_of(lambda: op_pipe({"embedding": bag}, seed=1), args.repeats)
            rates[mode] = (secs, args.n / secs)
    imgs = patches(args.reencode_n)
    reencode_rate(imgs[:64], cnn, pipe, 256)                                  # warm up
    cnn_aug, cnn_enc, cnn_rate = reencode_rate(imgs, cnn, pipe, 256)
    vit = ViTB16().eval()
    reencode_rate(imgs[:2], vit, pipe, 16)
    vit_aug, vit_enc, vit_rate = reencode_rate(imgs[:args.vit_n], vit, pipe, 16)

    params = sum(p.numel() for p in model.parameters())
    print(f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, threads {args.threads}")
    print(f"HistAug: dim {DIM}, chunks 8, depth {args.depth}, heads 8, {params / 1e6:.1f} M params, "
          f"{model.vocab.n_tokens} transformation tokens")
    print()
    print("| path | rows | seconds | embeddings/s | histaug bag speed-up |")
    print("|---|---|---|---|---|")
    for mode in ("bag", "instance"):
        secs, rate = rates[mode]
        print(f"| histaug op, mode {mode} | {args.n} | {secs:.2f} | {rate:,.0f} | {rates['bag'][1] / rate:.2f}x |")
    print(f"| augment + re-encode, test CNN (64 px) | {args.reencode_n} | {cnn_aug + cnn_enc:.2f} "
          f"(augment {cnn_aug:.2f}, encode {cnn_enc:.2f}) | {cnn_rate:,.0f} | {rates['bag'][1] / cnn_rate:.1f}x |")
    print(f"| augment + re-encode, ViT-B/16 shape (224 px) | {args.vit_n} | {vit_aug + vit_enc:.2f} "
          f"(augment {vit_aug:.2f}, encode {vit_enc:.2f}) | {vit_rate:,.1f} | {rates['bag'][1] / vit_rate:,.0f}x |")
    print()
    print(f"time for a {args.n}-row bag: histaug bag {args.n / rates['bag'][1]:.1f} s, re-encode with the CNN "
          f"{args.n / cnn_rate:.1f} s, with the ViT-B/16 shape {args.n / vit_rate / 60:.1f} min")


if __name__ == "__main__":
    main()
