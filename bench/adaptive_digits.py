"""Model-in-the-loop augmentation on scikit-learn's digits: what each adaptive policy does, on CPU.

    python bench/adaptive_digits.py --seeds 0 1 2            # a few minutes on 2 loaded CPU cores
    python bench/adaptive_digits.py --seeds 0 --epochs 3     # smoke run
    python bench/adaptive_digits.py --loader-only            # augmentation work AugmentSubset saves

Setup (same for every variant): digits upsampled 8x8 -> 24x24 (bilinear, uint8); stratified split
(seed 0) into 1100 train, 157 held-out (used only as MADAug's validation batches) and 540 test; a
small CNN (conv 16 - conv 32 - fc 64 - fc 10), Adam lr 2e-3, batch 64, `--epochs` epochs, one
thread. Batches come from `pipe.compile(records, ..., shuffle=True, policy=P)` (num_workers 0).
Shifted test set: every test image once through augflow's own corruptions (`medmnist_c`,
chest_xray modality: noise, blur, JPEG, pixelate, contrast/gamma; severity 3-5; seed 123).

Variants: no augmentation; fixed RandAugment (augflow's `rand_augment`, N=2, M=9/30); the
controlled pipeline at full strength for every sample ("all ops"); and three policies on that
same pipeline: LossCurriculum, MADAug (update every step on a held-out batch of 64), and
AugmentSubset (30%, re-selected every 2 epochs from last-layer gradient embeddings). Time per
epoch is wall time of the whole epoch (loading, augmentation, training, policy work).

Distillation: the teacher is the seed's fixed-RandAugment CNN; the student a narrower CNN (conv 8
- conv 16 - fc 32) trained by KD (T = 4, Adam lr 3e-3) on clean training batches, without (plain KD) or with
HardAugment's hard batches (one augmenter step per batch; student loss on clean + hard inputs).
"""

from __future__ import annotations

import argparse
import json
import time

import cv2
import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn
from torch.nn import functional as F

from augflow import Pipeline
from augflow.adaptive import AugmentSubset, HardAugment, LossCurriculum, MADAug, last_layer_gradients
from augflow.adaptive.hard import kd_loss

CONTROLLED = [
    {"affine": {"rotate": [-20, 20], "translate_percent": [-0.12, 0.12], "scale": [0.85, 1.15], "p": 0.8}},
    {"random_brightness_contrast": {"brightness_limit": [-0.3, 0.3], "contrast_limit": [-0.3, 0.3], "p": 0.8}},
    {"gaussian_blur": {"blur_limit": [3, 3], "sigma_limit": [0.1, 1.0], "p": 0.3}},
    {"coarse_dropout": {"num_holes_range": [1, 2], "hole_height_range": [0.15, 0.3], "hole_width_range": [0.15, 0.3],
                        "p": 0.3}},
]
PIPELINES = {"none": [], "randaugment": [{"rand_augment": {}}], "controlled": CONTROLLED}
VARIANTS = {  # name -> (pipeline, policy factory)
    "no augmentation": ("none", None),
    "fixed RandAugment": ("randaugment", None),
    "all ops (fixed)": ("controlled", None),
    "LossCurriculum": ("controlled", lambda: LossCurriculum()),
    "MADAug": ("controlled", lambda: MADAug(ramp_epochs=4)),
    "AugmentSubset 30%": ("controlled", lambda: AugmentSubset(0.3, every=2)),
}


def load():
    x, y = load_digits(return_X_y=True)
    imgs = np.stack([cv2.resize((r.reshape(8, 8) * 16).clip(0, 255).astype(np.uint8), (24, 24),
                                interpolation=cv2.INTER_LINEAR) for r in x])
    xtr, xte, ytr, yte = train_test_split(imgs, y, test_size=540, stratify=y, random_state=0)
    xtr, xval, ytr, yval = train_test_split(xtr, ytr, test_size=157, stratify=ytr, random_state=0)
    shift = Pipeline.from_dict({"augflow": 1, "seed": 123, "sample": [
        {"medmnist_c": {"modality": "chest_xray", "severity": [3, 5]}}]})
    xsh = np.stack([shift({"image": im}, index=i)["image"] for i, im in enumerate(xte)])
    return (xtr, ytr), (xval, yval), (xte, yte), xsh


def tensor(imgs: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(imgs).float().div(255).unsqueeze(1)


def cnn(width: int = 16) -> nn.Sequential:
    feats = nn.Sequential(nn.Conv2d(1, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(width, 2 * width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                          nn.Linear(2 * width * 36, 4 * width), nn.ReLU())
    return nn.Sequential(feats, nn.Linear(4 * width, 10))


def accuracy(model: nn.Module, x: torch.Tensor, y: np.ndarray) -> float:
    with torch.no_grad():
        return float((model(x).argmax(1).numpy() == y).mean())


def train(variant: str, seed: int, data, epochs: int) -> dict:
    (xtr, ytr), (xval, yval), (xte, yte), xsh = data
    pipe_name, make_policy = VARIANTS[variant]
    pipe = Pipeline.from_dict({"augflow": 1, "seed": seed, "sample": PIPELINES[pipe_name]})
    policy = make_policy() if make_policy else None
    records = [{"image": im, "label": int(c)} for im, c in zip(xtr, ytr)]
    loader = pipe.compile(records, batch_size=64, shuffle=True, drop_last=False, policy=policy)
    torch.manual_seed(seed)
    model = cnn()
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    vx, vy = tensor(xval), torch.as_tensor(yval)
    g = torch.Generator().manual_seed(seed)
    times = []
    for e in range(epochs):
        loader.set_epoch(e)
        t0 = time.perf_counter()
        for batch in loader:
            x, y = batch["image"].float().div(255), batch["label"]
            feats = model[0](x)
            logits = model[1](feats)
            losses = F.cross_entropy(logits, y, reduction="none")
            if isinstance(policy, AugmentSubset):
                loader.feedback(batch, losses=losses, features=last_layer_gradients(logits, y))
            elif policy is not None:
                loader.feedback(batch, losses=losses, features=feats.detach())
            if isinstance(policy, MADAug):
                pick = torch.randperm(len(vx), generator=g)[:64]
                policy.update(model, x, y, batch["_index"], feats.detach(), vx[pick], vy[pick])
            opt.zero_grad()
            losses.mean().backward()
            opt.step()
        times.append(time.perf_counter() - t0)
    model.eval()
    out = {"clean": accuracy(model, tensor(xte), yte), "shifted": accuracy(model, tensor(xsh), yte),
           "s_per_epoch": float(np.mean(times)), "model": model}
    if isinstance(policy, MADAug):
        out["curriculum"] = policy.curriculum
    if isinstance(policy, AugmentSubset):
        out["report"] = policy.report()
    return out


def distill(teacher: nn.Module, seed: int, data, epochs: int, hard: bool) -> dict:
    (xtr, ytr), _, (xte, yte), xsh = data
    torch.manual_seed(seed)
    student = cnn(width=8)
    opt = torch.optim.Adam(student.parameters(), lr=3e-3)
    aug = HardAugment(channels=1, lr=1e-3, max_rotation=20, max_translate=0.12, max_scale=0.15) if hard else None
    x_all = tensor(xtr)
    g = torch.Generator().manual_seed(seed)
    teacher.eval()
    times = []
    for _ in range(epochs):
        t0 = time.perf_counter()
        for idx in torch.randperm(len(x_all), generator=g).split(64):
            x = x_all[idx]
            if aug is not None:
                x = torch.cat([x, aug.step(teacher, student, x, g)])
            with torch.no_grad():
                t_logits = teacher(x)
            loss = kd_loss(student(x), t_logits)
            opt.zero_grad()
            loss.backward()
            opt.step()
        times.append(time.perf_counter() - t0)
    student.eval()
    return {"clean": accuracy(student, tensor(xte), yte), "shifted": accuracy(student, tensor(xsh), yte),
            "s_per_epoch": float(np.mean(times))}


def loader_seconds(data, rounds: int = 3) -> dict[str, float]:
    """Loader-only epoch time (no model), min over rounds: the augmentation work a subset saves.
    AugmentSubset gets random gradient embeddings for every sample, then selects its 30%."""
    (xtr, ytr), *_ = data
    records = [{"image": im, "label": int(c)} for im, c in zip(xtr, ytr)]
    out = {}
    for name in ("no augmentation", "all ops (fixed)", "AugmentSubset 30%"):
        pipe = Pipeline.from_dict({"augflow": 1, "seed": 0, "sample": PIPELINES[VARIANTS[name][0]]})
        policy = AugmentSubset(0.3, every=1) if name.startswith("AugmentSubset") else None
        loader = pipe.compile(records, batch_size=64, policy=policy)
        if policy is not None:
            n = len(records)
            policy.record(np.arange(n), np.zeros(n, dtype=int), None, np.random.default_rng(0).normal(size=(n, 10)),
                          np.asarray(ytr))
        loader.set_epoch(1)
        times = []
        for _ in range(rounds):
            t0 = time.perf_counter()
            for _batch in loader:
                pass
            times.append(time.perf_counter() - t0)
        out[name] = min(times)
    return out


def fmt(values: list[float]) -> str:
    return f"{np.mean(values):.3f} ± {np.std(values):.3f}"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--kd-epochs", type=int, default=5)
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS), metavar="NAME",
                    help="Only these variants (default: all).")
    ap.add_argument("--no-kd", action="store_true", help="Skip the distillation table.")
    ap.add_argument("--loader-only", action="store_true", help="Only the loader-only epoch times.")
    ap.add_argument("--json", default=None, help="Also write the raw results here.")
    args = ap.parse_args()
    torch.set_num_threads(1)
    data = load()
    if args.loader_only:
        secs = loader_seconds(data)
        print("| loader only, one epoch of 1100 samples (min of 3) | s | vs all ops |\n|---|---|---|")
        for name, sec in secs.items():
            print(f"| {name} | {sec:.3f} | {sec / secs['all ops (fixed)']:.2f} |")
        return
    t_start = time.perf_counter()
    rows: dict[str, list[dict]] = {v: [] for v in args.variants}
    kd: dict[str, list[dict]] = {"plain KD": [], "KD + HardAugment": []}
    for seed in args.seeds:
        for variant in args.variants:
            rows[variant].append(train(variant, seed, data, args.epochs))
            r = rows[variant][-1]
            print(f"seed {seed} {variant}: clean {r['clean']:.3f} shifted {r['shifted']:.3f} "
                  f"{r['s_per_epoch']:.2f} s/epoch", flush=True)
        if args.no_kd or "fixed RandAugment" not in rows:
            continue
        teacher = rows["fixed RandAugment"][-1]["model"]
        for name, hard in (("plain KD", False), ("KD + HardAugment", True)):
            kd[name].append(distill(teacher, seed, data, args.kd_epochs, hard))
            r = kd[name][-1]
            print(f"seed {seed} {name}: clean {r['clean']:.3f} shifted {r['shifted']:.3f}", flush=True)
    print(f"\n{len(args.seeds)} seeds, {args.epochs} epochs, KD {args.kd_epochs} epochs, "
          f"total {time.perf_counter() - t_start:.0f} s\n")
    print("| variant | clean test acc | shifted test acc | s/epoch |\n|---|---|---|---|")
    for v, rs in rows.items():
        print(f"| {v} | {fmt([r['clean'] for r in rs])} | {fmt([r['shifted'] for r in rs])} | "
              f"{np.mean([r['s_per_epoch'] for r in rs]):.2f} |")
    print("\n| distillation (student) | clean test acc | shifted test acc | s/epoch |\n|---|---|---|---|")
    for v, rs in kd.items():
        if not rs:
            continue
        print(f"| {v} | {fmt([r['clean'] for r in rs])} | {fmt([r['shifted'] for r in rs])} | "
              f"{np.mean([r['s_per_epoch'] for r in rs]):.2f} |")
    for r, seed in zip(rows.get("MADAug", []), args.seeds):
        cur = r["curriculum"]
        print(f"\nMADAug curriculum (seed {seed}): epoch: share augmented / mean magnitude")
        print(", ".join(f"{c['epoch']}: {c['share']:.2f}/{c['mean_magnitude']:.2f}" for c in cur))
        print("MADAug op counts, last epoch:", cur[-1]["ops"])
    for r, seed in zip(rows.get("AugmentSubset 30%", []), args.seeds):
        rep = r["report"]
        print(f"AugmentSubset (seed {seed}): augmentation saved {rep['augmentation_saved']:.2f} of per-sample "
              f"op runs, selections {rep['selections']}")
    if args.json:
        strip = {v: [{k: x for k, x in r.items() if k != "model"} for r in rs] for v, rs in rows.items()}
        with open(args.json, "w") as fh:
            json.dump({"args": vars(args), "variants": strip, "kd": kd}, fh, indent=1)


if __name__ == "__main__":
    main()
