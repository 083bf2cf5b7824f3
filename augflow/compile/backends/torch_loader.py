"""A compiled plan as a `torch.utils.data.DataLoader`: workers run the sample stage, the main
process runs the batch stage on the target device.

- The sampler yields `(index, epoch)` pairs, so persistent workers see the epoch without being
  restarted, and each sample's seed is (pipeline seed, epoch, global index) only.
- Sharding: the epoch's permutation is drawn from (seed, epoch) alone, padded to a multiple of
  the world size, and rank r takes every world_size-th index from r (as DistributedSampler): the
  same index gets the same augmentation whatever the world size.
- Hygiene: OpenCV and torch use one thread per worker (no oversubscription), workers persist
  between epochs, batches are pinned when the device is CUDA, channels-last on request.

`CompiledLoader` wraps the DataLoader (`.dataloader`); for trainers that build their own loader
(Hugging Face `Trainer`), `.dataset` and `.collate_fn` are the two halves to hand over.
"""

from __future__ import annotations

import math
from typing import Any, Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler, default_collate

from augflow import seeding
from augflow.compile.batch_stage import BatchStage
from augflow.compile.plan import Plan
from augflow.compile.sample_stage import SampleStage
from augflow.sample import resolve_field_specs

_SHUFFLE_STREAM = 2


def distributed_info(rank: int | None, world_size: int | None) -> tuple[int, int]:
    """(rank, world size): as given, else from the initialised process group, else (0, 1)."""
    if rank is not None and world_size is not None:
        if not 0 <= rank < world_size:
            raise ValueError(f"rank must be in [0, world_size), got rank={rank}, world_size={world_size}")
        return int(rank), int(world_size)
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


class EpochSampler(Sampler):
    """Indices of one rank for one epoch, each paired with the epoch."""

    def __init__(self, n: int, seed: int, shuffle: bool, rank: int = 0, world_size: int = 1, drop_last: bool = False):
        self.n, self.seed, self.shuffle = n, seed, shuffle
        self.rank, self.world_size, self.drop_last = rank, world_size, drop_last
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def order(self) -> np.ndarray:
        """The epoch's global order (all ranks), padded or cut to a multiple of the world size."""
        if self.shuffle:
            ss = np.random.SeedSequence(seeding.call_seed(self.seed, self.epoch, 0).entropy, spawn_key=(_SHUFFLE_STREAM,))
            order = seeding.generator(ss).permutation(self.n)
        else:
            order = np.arange(self.n)
        if self.world_size > 1:
            if self.drop_last:
                order = order[: (self.n // self.world_size) * self.world_size]
            else:
                total = math.ceil(self.n / self.world_size) * self.world_size
                order = np.concatenate([order, order[: total - self.n]]) if total > self.n else order
        return order

    def __iter__(self) -> Iterator[tuple[int, int]]:
        epoch = self.epoch
        return iter([(int(i), epoch) for i in self.order()[self.rank::self.world_size]])

    def __len__(self) -> int:
        if self.world_size == 1:
            return self.n
        return self.n // self.world_size if self.drop_last else math.ceil(self.n / self.world_size)


class StageDataset(Dataset):
    """Records through the sample stage. `ds[i]` uses the current epoch; `ds[(i, epoch)]` an explicit one."""

    def __init__(self, records: Any, stage: SampleStage):
        self.records, self.stage = records, stage
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, key: Any) -> dict[str, Any]:
        index, epoch = key if isinstance(key, tuple) else (key, self.epoch)
        return self.stage(self.records[int(index)], int(index), epoch)


class Collate:
    """Stack what has one shape per batch; keep per-element lists for boxes, keypoints, instance masks."""

    def __init__(self, fields: dict):
        self.fields = fields

    def __call__(self, samples: list[dict[str, Any]]) -> dict[str, Any]:
        return collate(samples, self.fields)


def collate(samples: list[dict[str, Any]], fields: dict) -> dict[str, Any]:
    specs = resolve_field_specs(samples[0].keys(), fields)
    negatives = {n for n, s in specs.items() if s.kind == "negatives"}
    listed = {n for n, s in specs.items() if s.kind in ("bboxes", "keypoints", "masks")}
    listed |= {lf for n in listed for lf in specs[n].label_fields}
    out: dict[str, Any] = {}
    for key in samples[0]:
        values = [s[key] for s in samples]
        first = values[0]
        if key in negatives:
            from augflow.negatives.collate import collate_negatives

            out[key] = collate_negatives(values)
        elif key in listed:
            out[key] = values
        elif isinstance(first, torch.Tensor):
            same = all(isinstance(v, torch.Tensor) and v.shape == first.shape and v.dtype == first.dtype for v in values)
            if same and all(is_hwc_view(v) for v in values):
                # images as CHW views of HWC memory: one contiguous copy of that memory, B x C x H x W
                # in channels-last layout (values and shape as default_collate's)
                out[key] = stack_hwc(values)
            else:
                out[key] = default_collate(values) if same else values
        elif isinstance(first, dict):
            out[key] = collate(values, fields)
        elif isinstance(first, (bool, int, float)) and all(type(v) is type(first) for v in values):
            out[key] = torch.tensor(values)
        else:
            out[key] = values
    return out


def is_hwc_view(x: torch.Tensor) -> bool:
    """A C x H x W tensor that is a permuted view of contiguous H x W x C memory (more than one channel)."""
    return x.dim() == 3 and x.shape[0] > 1 and x.permute(1, 2, 0).is_contiguous()


def stack_hwc(values: list[torch.Tensor]) -> torch.Tensor:
    """CHW views of HWC memory -> B x C x H x W over one B x H x W x C buffer (channels-last).

    Filled through numpy: a plain memcpy per image, several times faster here than torch.stack
    or copy_ on these shapes (bench/RESULTS.md, issue 12)."""
    first = values[0].permute(1, 2, 0)
    buf = torch.empty((len(values), *first.shape), dtype=first.dtype)
    if first.device.type == "cpu" and first.dtype in (torch.uint8, torch.float32):
        dst = buf.numpy()
        for k, v in enumerate(values):
            dst[k] = v.permute(1, 2, 0).numpy()
    else:
        torch.stack([v.permute(1, 2, 0) for v in values], out=buf)
    return buf.permute(0, 3, 1, 2)


class BatchCollator:
    """Collate, then run the batch stage (picklable, so a trainer's own workers can run it)."""

    def __init__(self, collate_fn: Collate, stage: BatchStage):
        self.collate_fn, self.stage = collate_fn, stage

    def __call__(self, samples: list[dict[str, Any]]) -> dict[str, Any]:
        return self.stage(self.collate_fn(samples))


class WorkerInit:
    """One thread per worker for OpenCV and torch; global RNGs seeded from the pipeline seed only
    (augflow never reads them; this only tames third-party code that does)."""

    def __init__(self, seed: int):
        self.seed = seed

    def __call__(self, worker_id: int) -> None:
        import random

        import cv2
        cv2.setNumThreads(1)
        torch.set_num_threads(1)
        random.seed(self.seed)
        np.random.seed(self.seed % 2**32)
        torch.manual_seed(self.seed)


def _default_context() -> str | None:
    """fork (the platform default) unless DALI is loaded: DALI is not fork-safe, and a worker forked
    from a process where its threads ran can hang; forkserver workers start from a clean process."""
    import sys
    return "forkserver" if "nvidia.dali" in sys.modules else None


class EpochBatches:
    """A user's batch sampler (lists of indices, e.g. NGAME's hard-negative batches) in the loader's
    (index, epoch) keys, so each sample's seed still comes from (seed, epoch, index)."""

    def __init__(self, batch_sampler: Any, loader: "CompiledLoader"):
        self.batch_sampler, self.loader = batch_sampler, loader

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        epoch = self.loader.epoch
        for batch in self.batch_sampler:
            yield [(int(i), epoch) for i in batch]

    def __len__(self) -> int:
        return len(self.batch_sampler)


class CompiledLoader:
    """Iterate for batches (dicts of tensors on the device); `set_epoch(e)` before each epoch."""

    def __init__(self, plan: Plan, records: Any):
        self.plan = plan
        self.records = records
        opts = plan.options
        rank, world = distributed_info(opts.rank, opts.world_size)
        self.rank, self.world_size = rank, world
        self.sample_stage = SampleStage(plan)
        self.dataset = StageDataset(records, self.sample_stage)
        self.sampler = EpochSampler(len(records), plan.seed, opts.shuffle, rank, world, opts.drop_last)
        self.batch_stage = BatchStage(plan, getattr(records, "num_classes", None))
        self._collate = Collate(plan.pipeline.spec.fields)
        workers = int(opts.num_workers)
        cuda = torch.device(plan.batch.device).type == "cuda"
        kwargs: dict[str, Any] = {}
        if workers > 0:
            kwargs["multiprocessing_context"] = opts.multiprocessing_context or _default_context()
            kwargs["persistent_workers"] = True if opts.persistent_workers is None else opts.persistent_workers
            kwargs["prefetch_factor"] = opts.prefetch_factor or 2
            kwargs["worker_init_fn"] = WorkerInit(plan.seed)
        pin = cuda if opts.pin_memory is None else opts.pin_memory
        self.user_batch_sampler = opts.batch_sampler
        if self.user_batch_sampler is not None:
            if hasattr(self.user_batch_sampler, "configure"):
                self.user_batch_sampler.configure(num_samples=len(records), batch_size=opts.batch_size)
            self.dataloader = DataLoader(self.dataset, batch_sampler=EpochBatches(self.user_batch_sampler, self),
                                         num_workers=workers, collate_fn=self._collate, pin_memory=pin, **kwargs)
        else:
            self.dataloader = DataLoader(self.dataset, batch_size=opts.batch_size, sampler=self.sampler,
                                         num_workers=workers, collate_fn=self._collate, drop_last=opts.drop_last,
                                         pin_memory=pin, **kwargs)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)
        self.sampler.set_epoch(epoch)
        self.dataset.set_epoch(epoch)
        if self.user_batch_sampler is not None and hasattr(self.user_batch_sampler, "set_epoch"):
            self.user_batch_sampler.set_epoch(epoch)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for batch in self.dataloader:
            yield self.batch_stage(batch)

    def __len__(self) -> int:
        return len(self.dataloader)

    @property
    def collate_fn(self):
        """Collation plus the batch stage, as one collator (for Hugging Face `Trainer(data_collator=...)`)."""
        return BatchCollator(self._collate, self.batch_stage)

    def explain(self) -> str:
        from augflow.compile.explainer import explain_plan
        return explain_plan(self.plan, self)

    def __repr__(self) -> str:
        return (f"CompiledLoader({self.plan.name!r}, {len(self.records)} samples, batch_size={self.plan.options.batch_size}, "
                f"backends: sample={self.plan.sample.backend}, batch={self.plan.batch.backend} on {self.plan.batch.device})")
