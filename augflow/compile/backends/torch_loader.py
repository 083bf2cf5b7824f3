"""A compiled plan as a `torch.utils.data.DataLoader`: workers run the sample stage, the main
process runs the batch stage on the target device.

- The sampler yields `(index, epoch)` pairs, so persistent workers see the epoch without being
  restarted, and each sample's seed is (pipeline seed, epoch, global index) only.
- Sharding: the epoch's permutation is drawn from (seed, epoch) alone, padded to a multiple of
  the world size, and rank r takes every world_size-th index from r (as DistributedSampler): the
  same index gets the same augmentation whatever the world size.
- Hygiene: OpenCV and torch use one thread per worker (no oversubscription), workers persist
  between epochs, batches are pinned when the device is CUDA, channels-last on request.
- Epochs: each new iteration is the next epoch unless `set_epoch` was called for it, so the
  usual `for epoch ...: for batch in loader:` gets a new augmentation every epoch; iteration k
  (from 0) of a fresh loader is epoch k in every run.
- Bad samples (truncated file, image over `max_pixels`, a failing op): `on_error="raise"` stops
  with an error naming the record index and its source; `"skip"` drops the sample, and the
  worker returns its (index, epoch, source, reason) with the batch, so `loader.errors` lists it and
  one warning per epoch gives the count; batches are the samples that loaded.

`CompiledLoader` wraps the DataLoader (`.dataloader`); for trainers that build their own loader
(Hugging Face `Trainer`), `.dataset` and `.collate_fn` are the two halves to hand over.
"""

from __future__ import annotations

from augflow.errors import BadSampleError
import math
import os
import warnings
from typing import Any, Iterator, Mapping, NamedTuple

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler, default_collate

from augflow import seeding
from augflow.compile.batch_stage import BatchStage
from augflow.compile.plan import Plan
from augflow.compile.sample_stage import SampleStage
from augflow.sample import kinds_where, resolve_field_specs

_SHUFFLE_STREAM = 2
ERRORS_KEY = "_errors"          # a batch's skipped samples, from the worker that collated it
ON_ERROR = ("raise", "skip")



class SkippedSample(NamedTuple):
    """A sample dropped under `on_error="skip"`."""

    index: int
    epoch: int
    source: str
    reason: str


class _Failed(NamedTuple):
    """What a dataset item becomes when it fails under "skip" (collate takes it out of the batch)."""

    skipped: SkippedSample


def record_source(records: Any, index: int) -> str:
    """What names a record in errors: its file path when it has one, else `<dataset type>[index]`."""
    try:
        record = records[index]
    except Exception:  # noqa: BLE001 - the record itself may be what fails to load
        record = None
    if isinstance(record, (str, os.PathLike)):
        return os.fspath(record)
    if isinstance(record, Mapping):
        from augflow.io.readers import IMAGE_COLUMNS, IMAGE_EXTS
        keys = [k for k in IMAGE_COLUMNS if k in record] + [k for k in record if k not in IMAGE_COLUMNS]
        for key in keys:
            value = record[key]
            if isinstance(value, Mapping) and isinstance(value.get("path"), str):   # Hugging Face Image()
                value = value["path"]
            if isinstance(value, (str, os.PathLike)) and (key in IMAGE_COLUMNS or
                                                          os.path.splitext(os.fspath(value))[1].lower() in IMAGE_EXTS):
                return os.fspath(value)
    data = getattr(records, "items", records)
    return f"{type(data).__name__}[{index}]"


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

    def __init__(self, records: Any, stage: SampleStage, on_error: str = "raise"):
        self.records, self.stage, self.on_error = records, stage, on_error
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, key: Any) -> dict[str, Any]:
        decision = None
        if isinstance(key, tuple) and len(key) == 3:     # (index, epoch, policy decision)
            index, epoch, decision = key
        else:
            index, epoch = key if isinstance(key, tuple) else (key, self.epoch)
        index, epoch = int(index), int(epoch)
        try:
            if decision is not None:
                return self.stage(self.records[index], index, epoch, decision)
            return self.stage(self.records[index], index, epoch)
        except Exception as exc:  # noqa: BLE001 - any failure on one sample is named, then raised or skipped
            source = record_source(self.records, index)
            reason = f"{type(exc).__name__}: {exc}"
            if self.on_error == "skip":
                return _Failed(SkippedSample(index, epoch, source, reason))
            raise BadSampleError(f"sample {index} ({source}): {reason}; pass on_error='skip' to compile() to "
                                 "skip bad samples and list them in loader.errors") from exc


class Collate:
    """Stack what has one shape per batch; keep per-element lists for boxes, keypoints, instance masks."""

    def __init__(self, fields: dict):
        self.fields = fields

    def __call__(self, samples: list[Any]) -> dict[str, Any]:
        good = [s for s in samples if not isinstance(s, _Failed)]
        out = collate(good, self.fields) if good else {}
        if len(good) < len(samples):
            out[ERRORS_KEY] = [s.skipped for s in samples if isinstance(s, _Failed)]
        return out


# How each kind is collated (the `collate` column of `sample.KINDS`).
_LISTED = kinds_where(collate="list")
_NEGATIVES = kinds_where(collate="negatives")


def collate(samples: list[dict[str, Any]], fields: dict) -> dict[str, Any]:
    specs = resolve_field_specs(samples[0].keys(), fields)
    negatives = {n for n, s in specs.items() if s.kind in _NEGATIVES}
    listed = {n for n, s in specs.items() if s.kind in _LISTED}
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

    def __call__(self, samples: list[Any]) -> dict[str, Any]:
        batch = self.collate_fn(samples)
        skipped = batch.pop(ERRORS_KEY, [])
        if skipped:      # a trainer's own loader has no `loader.errors` to fill: say it here
            warnings.warn(f"skipped {len(skipped)} bad samples in a batch: "
                          + "; ".join(f"{s.index} ({s.source}): {s.reason}" for s in skipped[:3]), stacklevel=2)
        return self.stage(batch) if batch else batch


class WorkerInit:
    """One thread per worker for OpenCV and torch; global RNGs seeded from the pipeline seed only
    (augflow never reads them; this only tames third-party code that does)."""

    def __init__(self, seed: int):
        self.seed = seed

    def __call__(self, worker_id: int) -> None:
        import random

        import cv2
        if cv2.getNumThreads() != 1:   # forked workers inherit 1 from the parent (see start_workers)
            cv2.setNumThreads(1)
        torch.set_num_threads(1)
        random.seed(self.seed)
        np.random.seed(self.seed % 2**32)
        torch.manual_seed(self.seed)


def start_workers(dataloader: torch.utils.data.DataLoader) -> Iterator[Any]:
    """`iter(dataloader)`, with OpenCV's thread pool shrunk to one thread while workers fork.

    A worker forked while the parent's OpenCV pool has threads inherits the pool without them and
    deadlocks in its first `cv2.setNumThreads` or parallel call; a pool resized in the parent,
    before the fork, is consistent in the child. The parent's setting is restored afterwards."""
    import sys
    context = dataloader.multiprocessing_context
    forks = context is None or getattr(context, "get_start_method", lambda: context)() == "fork"
    if not (dataloader.num_workers and forks and "cv2" in sys.modules):
        return iter(dataloader)
    cv2 = sys.modules["cv2"]
    previous = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        return iter(dataloader)
    finally:
        cv2.setNumThreads(previous)


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
        if opts.on_error not in ON_ERROR:
            raise ValueError(f"on_error must be one of {', '.join(map(repr, ON_ERROR))}, got {opts.on_error!r}")
        self.errors: list[SkippedSample] = []       # samples skipped under on_error="skip", all epochs
        rank, world = distributed_info(opts.rank, opts.world_size)
        self.rank, self.world_size = rank, world
        self.sample_stage = SampleStage(plan)
        self.dataset = StageDataset(records, self.sample_stage, opts.on_error)
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
        self.policy = opts.policy
        if self.policy is not None:    # decisions made here, in the main process, sent with the indices
            from augflow.compile.feedback import DecidingSampler
            self.sampler = DecidingSampler(self.sampler, self)
        if self.user_batch_sampler is not None:
            if hasattr(self.user_batch_sampler, "configure"):
                self.user_batch_sampler.configure(num_samples=len(records), batch_size=opts.batch_size)
            batches = EpochBatches(self.user_batch_sampler, self)
            if self.policy is not None:
                from augflow.compile.feedback import DecidingBatches
                batches = DecidingBatches(batches, self)
            self.dataloader = DataLoader(self.dataset, batch_sampler=batches,
                                         num_workers=workers, collate_fn=self._collate, pin_memory=pin, **kwargs)
        else:
            self.dataloader = DataLoader(self.dataset, batch_size=opts.batch_size, sampler=self.sampler,
                                         num_workers=workers, collate_fn=self._collate, drop_last=opts.drop_last,
                                         pin_memory=pin, **kwargs)
        self.epoch = 0
        self._epoch_chosen = True       # epoch 0 is the first iteration's; later ones advance unless set
        self._iterated = False

    def set_epoch(self, epoch: int) -> None:
        self._epoch_chosen = True
        self.epoch = int(epoch)
        self.sampler.set_epoch(epoch)
        self.dataset.set_epoch(epoch)
        if self.user_batch_sampler is not None and hasattr(self.user_batch_sampler, "set_epoch"):
            self.user_batch_sampler.set_epoch(epoch)

    def feedback(self, batch: dict[str, Any], losses: Any = None, features: Any = None) -> None:
        """Per-sample losses (and optional features) of a batch, for the loader's adaptive policy,
        keyed by the batch's (index, epoch); see `augflow.compile.feedback`."""
        from augflow.compile.feedback import send_feedback
        send_feedback(self.policy, batch, losses, features, self.epoch)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        if self._iterated and not self._epoch_chosen:
            self.set_epoch(self.epoch + 1)     # the user did not call set_epoch: next epoch, new augmentation
        self._epoch_chosen, self._iterated = False, True
        return self._batches(self.epoch)

    def _collated(self) -> Iterator[dict[str, Any]]:
        """The epoch's collated sample-stage batches (the thread executor overrides this)."""
        return start_workers(self.dataloader)

    def _batches(self, epoch: int) -> Iterator[dict[str, Any]]:
        skipped, first = 0, None
        for batch in self._collated():
            bad = batch.pop(ERRORS_KEY, None)
            if bad:
                self.errors.extend(bad)
                skipped += len(bad)
                first = first or bad[0]
            if batch:
                yield self.batch_stage(batch)
        if skipped:
            warnings.warn(f"epoch {epoch}: skipped {skipped} bad sample{'s' if skipped != 1 else ''} of "
                          f"{len(self.sampler) if self.user_batch_sampler is None else 'this epoch'} "
                          f"(on_error='skip'); see loader.errors, e.g. sample {first.index} ({first.source}): "
                          f"{first.reason}", stacklevel=2)

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
