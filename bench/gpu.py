"""GPU loaders side by side: augflow's compiled loader on CUDA vs DALI's native GPU pipeline and Kornia.

The ImageNet training pipeline (RandomResizedCrop 224, flip, colour jitter p 0.8, normalize) over
the benchmark JPEGs (bench/_jpegs.py), batches on the GPU, in one process, interleaved rounds,
images per second of wall time (torch.cuda.synchronize after every batch), ratios to DALI:

- dali                 DALI native: fn.decoders.image_random_crop(device="mixed") (nvJPEG decode on the
                       GPU), resize, brightness_contrast, saturation, crop_mirror_normalize, on the GPU
- augflow[cuda]        pipe.compile(paths, device="cuda"): sample stage on the CPU (reduced decode,
                       crop, flip, jitter), uint8 batch to the GPU, fused normalize there
- augflow[cuda,batch]  the same pipeline with flip, jitter and normalize under `batch:` (Kornia
                       kernels on the GPU, per-element parameters)
- kornia               hand-written: CPU decode + resize 256, uint8 batch to the GPU, Kornia's
                       AugmentationSequential(RandomResizedCrop, flip, ColorJitter, Normalize) there

It needs a CUDA device and exits with a message (status 2) without one: no GPU figure is ever
printed from a CPU run.

    python bench/gpu.py [--images 512] [--batch 64] [--rounds 3] [--kind imagenet|large]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
sys.path.insert(0, str(Path(__file__).parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
SAMPLE = [
    {"random_resized_crop": {"size": [224, 224], "scale": [0.08, 1.0]}},
    {"horizontal_flip": {"p": 0.5}},
    {"color_jitter": {"brightness": 0.4, "contrast": 0.4, "saturation": 0.4, "hue": 0.0, "p": 0.8}},
    {"normalize": {"mean": list(MEAN), "std": list(STD)}},
]


def dali_gpu(paths: list[str], batch: int, threads: int):
    """DALI's native GPU pipeline: the same recipe as the CPU peer in compile_loader.py, `mixed` decode."""
    from compile_loader import dali_native

    loader = dali_native(paths, batch=batch, threads=threads, device_id=0)

    class Images:
        def __iter__(self):
            for out in loader:
                yield out[0]["image"]
    return Images()


def kornia_gpu(paths: list[str], batch: int, workers: int):
    import cv2
    import kornia.augmentation as K
    import simplejpeg

    class Decoded(torch.utils.data.Dataset):
        def __len__(self):
            return len(paths)

        def __getitem__(self, i):
            with open(paths[i], "rb") as f:
                img = simplejpeg.decode_jpeg(f.read(), colorspace="RGB")
            return torch.from_numpy(cv2.resize(img, (256, 256), interpolation=cv2.INTER_AREA)).permute(2, 0, 1)

    dl = torch.utils.data.DataLoader(Decoded(), batch_size=batch, num_workers=workers, pin_memory=True,
                                     persistent_workers=workers > 0)
    seq = K.AugmentationSequential(
        K.RandomResizedCrop((224, 224), scale=(0.08, 1.0)), K.RandomHorizontalFlip(),
        K.ColorJitter(0.4, 0.4, 0.4, 0.0, p=0.8),
        K.Normalize(mean=torch.tensor(MEAN), std=torch.tensor(STD))).cuda()

    class Loader:
        def __iter__(self):
            for x in dl:
                yield seq(x.cuda(non_blocking=True).float().div_(255))
    return Loader()


def augflow_gpu(paths: list[str], batch: int, workers: int, batch_ops: bool):
    import augflow

    if batch_ops:
        data = {"augflow": 1, "name": "gpu_batch", "sample": [SAMPLE[0]],
                "batch": {"device": "cuda", "ops": SAMPLE[1:]}}
    else:
        data = {"augflow": 1, "name": "gpu", "sample": SAMPLE + [{"to_tensor": {}}]}
    pipe = augflow.Pipeline.from_dict(data)
    loader = pipe.compile(paths, batch_size=batch, num_workers=workers, device="cuda")

    class Loader:
        def __iter__(self):
            for b in loader:
                yield b["image"]
    return Loader()


def run_epoch(loader) -> int:
    n = 0
    for x in loader:
        n += int(x.shape[0])
    torch.cuda.synchronize()
    return n


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=512)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=4, help="CPU workers (DataLoader) / DALI threads")
    parser.add_argument("--kind", default="imagenet", choices=("imagenet", "large"))
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("bench/gpu.py needs a CUDA device and found none (torch.cuda.is_available() is False): "
              "nothing was measured. Run it on a machine with an NVIDIA GPU and the CUDA builds of "
              "torch and nvidia-dali.", file=sys.stderr)
        return 2
    from _jpegs import jpeg_set

    paths = jpeg_set(args.kind, args.images)
    loaders = {
        "augflow[cuda]": augflow_gpu(paths, args.batch, args.workers, batch_ops=False),
        "augflow[cuda,batch]": augflow_gpu(paths, args.batch, args.workers, batch_ops=True),
        "kornia": kornia_gpu(paths, args.batch, args.workers),
    }
    try:
        loaders = {"dali": dali_gpu(paths, args.batch, args.workers), **loaders}
    except ImportError as exc:
        print(f"DALI unavailable ({exc}): ratios are to augflow[cuda] instead")
    for loader in loaders.values():   # warm-up: workers, CUDA context, kernels, page cache
        run_epoch(loader)
    rates: dict[str, list[float]] = {name: [] for name in loaders}
    for _ in range(args.rounds):
        for name, loader in loaders.items():
            t = time.perf_counter()
            n = run_epoch(loader)
            rates[name].append(n / (time.perf_counter() - t))
    med = {name: statistics.median(v) for name, v in rates.items()}
    ref_name = "dali" if "dali" in med else "augflow[cuda]"
    print(f"{torch.cuda.get_device_name(0)}; {args.images} {args.kind} JPEGs, batch {args.batch}, "
          f"{args.workers} workers/threads, median of {args.rounds} rounds (wall)")
    print(f"| arm | img/s | vs {ref_name} |\n|---|---:|---:|")
    for name, r in med.items():
        print(f"| {name} | {r:.0f} | {r / med[ref_name]:.2f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
