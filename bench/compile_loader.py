"""Compiled augflow loaders vs the peers installed here, same machine, same run, same JPEGs.

The ImageNet training pipeline (decode + RandomResizedCrop 224 + flip + colour jitter +
normalize) over real JPEGs (skimage photographs re-encoded, bench/_jpegs.py), as:

- decode-only           cv2.imdecode + RGB, collated (the floor every loader pays)
- decode-only[sj]       simplejpeg decode, collated (the floor with the fastest decoder here)
- albumentations        hand-written: cv2 decode, A.Compose, torch DataLoader (the reference)
- albumentations[sj]    the same with simplejpeg decode
- augflow[loader fmt]   pipe.compile(folder) over `augflow materialize --format loader` output
                        (max side 256; q90 JPEG or raw uint8), converted once before timing
- spdl                  SPDL's thread pipeline (PipelineBuilder: decode+A.Compose stage, aggregate,
                        collate stage; one thread). SPDL's own decoder (spdl.io.load_image) needs
                        the system FFmpeg libraries (libavutil), absent here and not pip-installable,
                        so the stage decodes with simplejpeg, as SPDL users without FFmpeg write it
- augflow[albu]         pipe.compile(...): albumentations backend, default passes
- augflow[albu,nopass]  the same with passes=() (what the passes buy)
- augflow[kornia]       pipe.compile(..., backend="kornia") (CPU tensors per sample)
- augflow[dali]         pipe.compile(..., backend="dali") (DALI CPU operators, params from augflow)
- kornia                hand-written: per-sample decode + RandomResizedCrop, then
                        AugmentationSequential(flip, jitter, normalize) on the batch
- dali                  hand-written native DALI CPU pipeline (readers.file, image_random_crop, ...)

Everything runs in one process on one core (num_workers=0, one thread for torch/OpenCV/DALI),
interleaved in rounds. Rates are images per second of *process CPU time* (time.process_time,
all threads of the process), the median round: this machine is shared, and CPU time is what
other people's load does not inflate; wall-clock rates are printed beside them. Ratios are to
the hand-written albumentations loader and to decode-only. torchvision is not importable beside torch 2.13.0
here, so it has no arm.

Two pipelines: `full` (RRC 224, flip, colour jitter p 0.8, normalize, to tensor) and `light`
(RRC 224, flip, normalize, to tensor), as in issue 12.

    python bench/compile_loader.py [--rounds 3] [--images 192] [--large-images 32] [--pipelines full,light]
                                   [--workers 2] [--out bench/RESULTS.md]
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

import albumentations as A  # noqa: E402
import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from _jpegs import jpeg_set  # noqa: E402

import augflow  # noqa: E402

BATCH = 32
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
FULL = [
    {"random_resized_crop": {"size": [224, 224], "scale": [0.08, 1.0]}},
    {"horizontal_flip": {"p": 0.5}},
    {"color_jitter": {"brightness": 0.4, "contrast": 0.4, "saturation": 0.4, "hue": 0.0, "p": 0.8}},
    {"normalize": {"mean": list(MEAN), "std": list(STD)}},
    {"to_tensor": {}},
]
PIPELINES = {"full": FULL, "light": [FULL[0], FULL[1], FULL[3], FULL[4]]}
PIPELINE = {"augflow": 1, "name": "imagenet_train", "sample": FULL}


def albu_compose(kind: str = "full") -> A.Compose:
    jitter = [A.ColorJitter(0.4, 0.4, 0.4, 0.0, p=0.8)] if kind == "full" else []
    return A.Compose([A.RandomResizedCrop(size=(224, 224), scale=(0.08, 1.0)), A.HorizontalFlip(p=0.5), *jitter,
                      A.Normalize(mean=MEAN, std=STD)], seed=0)


def sj_decode(path: str) -> np.ndarray:
    import simplejpeg
    with open(path, "rb") as f:
        return simplejpeg.decode_jpeg(f.read(), colorspace="RGB")


def cv2_decode(path: str) -> np.ndarray:
    return cv2.cvtColor(cv2.imdecode(np.fromfile(path, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


class DecodeOnly(torch.utils.data.Dataset):
    def __init__(self, paths, decode=None):
        self.paths = paths
        self.decode = decode or cv2_decode

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        img = self.decode(self.paths[i])
        return torch.from_numpy(cv2.resize(img, (224, 224), interpolation=cv2.INTER_NEAREST)).permute(2, 0, 1)


class AlbuDataset(torch.utils.data.Dataset):
    """What people write by hand: decode, A.Compose, HWC -> CHW tensor."""

    def __init__(self, paths, kind: str = "full", decode=None):
        self.paths = paths
        self.t = albu_compose(kind)
        self.decode = decode or cv2_decode

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        return torch.from_numpy(self.t(image=self.decode(self.paths[i]))["image"]).permute(2, 0, 1)


def spdl_loader(paths, kind: str = "full"):
    """SPDL's pipeline as its users write it: a source, a per-sample stage, aggregate, collate."""
    from spdl.pipeline import PipelineBuilder
    from torch.utils.data import default_collate

    t = albu_compose(kind)

    def load(path):
        return torch.from_numpy(t(image=sj_decode(path))["image"]).permute(2, 0, 1)

    class Loader:
        def __iter__(self):
            pipeline = (PipelineBuilder().add_source(paths).pipe(load, concurrency=1, output_order="input")
                        .aggregate(BATCH).pipe(default_collate).add_sink(2).build(num_threads=1))
            with pipeline.auto_stop():
                yield from pipeline
    return Loader()


class KorniaDataset(torch.utils.data.Dataset):
    def __init__(self, paths):
        import kornia.augmentation as K
        self.paths = paths
        self.crop = K.RandomResizedCrop((224, 224), scale=(0.08, 1.0))

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        x = torch.from_numpy(cv2_decode(self.paths[i])).permute(2, 0, 1)[None].float() / 255
        return self.crop(x)[0]


def plain_loader(dataset):
    return torch.utils.data.DataLoader(dataset, batch_size=BATCH, num_workers=0)


def kornia_loader(paths):
    import kornia.augmentation as K
    seq = K.AugmentationSequential(K.RandomHorizontalFlip(), K.ColorJitter(0.4, 0.4, 0.4, 0.0, p=0.8),
                                   K.Normalize(mean=torch.tensor(MEAN), std=torch.tensor(STD)))
    dl = plain_loader(KorniaDataset(paths))

    class Loader:
        def __iter__(self):
            for batch in dl:
                yield seq(batch)
    return Loader()


def dali_native(paths, batch: int = BATCH, threads: int = 1, device_id: int | None = None):
    """DALI's own ImageNet recipe: decoders.image_random_crop, resize, random colour, CMN with a coin flip.

    Files come through a per-sample external_source that ends the epoch (a fn.readers.file reader
    streams on past the epoch in DALI's threads, which would bill its work to the next arm).
    `device_id=None`: DALI's CPU operators; a GPU id: the `mixed` decoder and GPU operators
    (bench/gpu.py), with DALI's default prefetch.
    """
    import math

    import nvidia.dali.fn as fn
    import nvidia.dali.types as types
    from nvidia.dali import pipeline_def
    from nvidia.dali.plugin.base_iterator import LastBatchPolicy
    from nvidia.dali.plugin.pytorch import DALIGenericIterator

    padded = math.ceil(len(paths) / batch) * batch
    gpu = device_id is not None

    def source(info):
        if info.idx_in_epoch >= padded:
            raise StopIteration
        return np.fromfile(paths[min(info.idx_in_epoch, len(paths) - 1)], dtype=np.uint8)

    @pipeline_def(batch_size=batch, num_threads=threads, device_id=device_id, seed=0, prefetch_queue_depth=2 if gpu else 1)
    def graph():
        jpegs = fn.external_source(source=source, batch=False)
        images = fn.decoders.image_random_crop(jpegs, device="mixed" if gpu else "cpu", output_type=types.RGB,
                                               random_area=[0.08, 1.0], random_aspect_ratio=[0.75, 1.333])
        images = fn.resize(images, resize_x=224, resize_y=224)
        jitter = fn.random.coin_flip(probability=0.8)
        b, c, s = (1.0 + (fn.random.uniform(range=[0.6, 1.4]) - 1.0) * jitter for _ in range(3))
        images = fn.brightness_contrast(images, brightness=b, contrast=c)
        images = fn.saturation(images, saturation=s)
        return fn.crop_mirror_normalize(images, dtype=types.FLOAT, output_layout="CHW", mirror=fn.random.coin_flip(),
                                        mean=[m * 255 for m in MEAN], std=[v * 255 for v in STD])

    pipe = graph()
    pipe.build()
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        it = DALIGenericIterator(pipe, ["image"], size=len(paths), last_batch_policy=LastBatchPolicy.PARTIAL,
                                 auto_reset=False, prepare_first_batch=False)

    class Loader:
        """Reset at the start of each epoch, so DALI's prefetch falls inside the timed epoch."""

        def __init__(self):
            self.started = False

        def __iter__(self):
            if self.started:
                it.reset()
            self.started = True
            return iter(it)
    return Loader()


def run_epoch(loader) -> int:
    n = 0
    for batch in loader:
        x = batch["image"] if isinstance(batch, dict) else batch[0]["image"] if isinstance(batch, list) else batch
        n += int(x.shape[0])
    return n


MAX_SIDE = 256


def loader_folder(paths: list[str], encoding: str) -> str:
    """The JPEGs in augflow's loader-ready format (max side 256, q90 JPEG or raw), written once."""
    from augflow.io.loader_format import write_loader_dataset

    root = Path(paths[0]).parent.parent / f"loader-{Path(paths[0]).parent.name}-{len(paths)}-{encoding}-{MAX_SIDE}"
    write_loader_dataset(paths, root, max_side=MAX_SIDE, encoding=encoding, quality=90)   # resumes: no-op when done
    return str(root)


def arms(paths: list[str], kind: str = "full") -> dict:
    pipe = augflow.Pipeline.from_dict({"augflow": 1, "name": f"imagenet_{kind}", "sample": PIPELINES[kind]})
    out = {
        "decode-only": plain_loader(DecodeOnly(paths)),
        "decode-only[sj]": plain_loader(DecodeOnly(paths, sj_decode)),
        "albumentations": plain_loader(AlbuDataset(paths, kind)),
        "albumentations[sj]": plain_loader(AlbuDataset(paths, kind, sj_decode)),
        "augflow[albu]": pipe.compile(paths, batch_size=BATCH),
        "augflow[albu,nopass]": pipe.compile(paths, batch_size=BATCH, passes=()),
    }
    for enc in ("jpeg", "raw"):   # the loader-ready format, converted once (not timed)
        folder = loader_folder(paths, enc)
        out[f"augflow[loader fmt {enc}, max {MAX_SIDE}]"] = pipe.compile(folder, batch_size=BATCH)
    try:
        import spdl.pipeline  # noqa: F401
        out["spdl"] = spdl_loader(paths, kind)
    except ImportError:
        print("SPDL not installed: its arm is skipped")
    if kind == "full":
        out["augflow[kornia]"] = pipe.compile(paths[: max(BATCH, len(paths) // 4)], batch_size=BATCH, backend="kornia")
        out["kornia"] = kornia_loader(paths[: max(BATCH, len(paths) // 4)])
        try:
            import nvidia.dali  # noqa: F401
            # prefetch 1: DALI works ahead in its own thread; deeper queues would run into other arms' time
            out["augflow[dali]"] = pipe.compile(paths, batch_size=BATCH, backend="dali", prefetch_factor=1)
            out["dali"] = dali_native(paths)
        except ImportError:
            print("DALI not installed: its arms are skipped")
    return out


def measure(kind: str, count: int, rounds: int, pipeline: str = "full") -> tuple[dict[str, float], dict[str, float]]:
    """Median images/s per arm: (by process CPU time, by wall clock)."""
    paths = jpeg_set(kind, count)
    loaders = arms(paths, pipeline)
    for loader in loaders.values():       # warm-up: imports, pipelines, page cache
        run_epoch(loader)
    cpu: dict[str, list[float]] = {name: [] for name in loaders}
    wall: dict[str, list[float]] = {name: [] for name in loaders}
    for _ in range(rounds):
        for name, loader in loaders.items():
            c0, w0 = time.process_time(), time.perf_counter()
            n = run_epoch(loader)
            cpu[name].append(n / (time.process_time() - c0))
            wall[name].append(n / (time.perf_counter() - w0))
    return ({name: statistics.median(v) for name, v in cpu.items()},
            {name: statistics.median(v) for name, v in wall.items()})


def measure_workers(kind: str, count: int, rounds: int, workers: int, pipeline: str = "full") -> dict[str, float]:
    """Images per wall-clock second of one epoch with `workers` workers, loader construction and
    worker start-up included (a fresh loader per round, as one epoch of a fresh run pays it)."""
    paths = jpeg_set(kind, count)
    pipe = augflow.Pipeline.from_dict({"augflow": 1, "name": f"imagenet_{pipeline}", "sample": PIPELINES[pipeline]})
    makers = {
        "albumentations": lambda: torch.utils.data.DataLoader(AlbuDataset(paths, pipeline), batch_size=BATCH,
                                                              num_workers=workers),
        "albumentations[sj]": lambda: torch.utils.data.DataLoader(AlbuDataset(paths, pipeline, sj_decode),
                                                                  batch_size=BATCH, num_workers=workers),
        "augflow[processes]": lambda: pipe.compile(paths, batch_size=BATCH, num_workers=workers, executor="processes"),
        "augflow[threads]": lambda: pipe.compile(paths, batch_size=BATCH, num_workers=workers, executor="threads"),
    }
    wall: dict[str, list[float]] = {name: [] for name in makers}
    for _ in range(rounds):
        for name, make in makers.items():
            w0 = time.perf_counter()
            loader = make()
            n = run_epoch(loader)
            wall[name].append(n / (time.perf_counter() - w0))
            del loader
    return {name: statistics.median(v) for name, v in wall.items()}


def workers_table(title: str, rates: dict[str, float]) -> str:
    ref, ref_sj = rates["albumentations"], rates["albumentations[sj]"]
    rows = [f"| {title} | arm | img/s (wall, start-up included) | vs albumentations | vs albumentations[sj] |",
            "|---|---|---:|---:|---:|"]
    for name, r in rates.items():
        rows.append(f"| | {name} | {r:.0f} | {r / ref:.2f}x | {r / ref_sj:.2f}x |")
    return "\n".join(rows)


def table(kind: str, rates: dict[str, float], wall: dict[str, float]) -> str:
    ref, ref_sj = rates["albumentations"], rates["albumentations[sj]"]
    floor, floor_sj = rates["decode-only"], rates["decode-only[sj]"]
    rows = [f"| {kind} | arm | img/s (CPU time) | vs albumentations | vs albumentations[sj] | vs decode-only "
            "| vs decode-only[sj] | img/s (wall) |",
            "|---|---|---:|---:|---:|---:|---:|---:|"]
    for name, r in rates.items():
        rows.append(f"| | {name} | {r:.0f} | {r / ref:.2f}x | {r / ref_sj:.2f}x | {r / floor:.2f} | {r / floor_sj:.2f} "
                    f"| {wall[name]:.0f} |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--images", type=int, default=192)
    parser.add_argument("--large-images", type=int, default=32)
    parser.add_argument("--pipelines", default="full,light", help="comma-separated: full, light ('' for none)")
    parser.add_argument("--workers", type=int, default=0,
                        help="also time fresh loaders with this many workers/threads, wall clock, start-up included")
    parser.add_argument("--out", default=None, help="append the tables to this markdown file")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    sections = []
    for kind, count in (("imagenet", args.images), ("large", args.large_images)):
        for pipeline in filter(None, args.pipelines.split(",")):
            if count <= 0:
                continue
            rates, wall = measure(kind, count, args.rounds, pipeline)
            text = table(f"{kind} ({count} JPEGs), {pipeline}", rates, wall)
            print(text, flush=True)
            sections.append(text)
    if args.workers:
        for kind, count in (("imagenet", args.images), ("large", args.large_images)):
            if count <= 0:
                continue
            rates = measure_workers(kind, count, args.rounds, args.workers)
            text = workers_table(f"{kind} ({count} JPEGs), full, num_workers={args.workers}", rates)
            print(text, flush=True)
            sections.append(text)
    if args.out:
        with open(args.out, "a", encoding="utf-8") as f:
            f.write("\n\n".join(sections) + "\n")


if __name__ == "__main__":
    main()
