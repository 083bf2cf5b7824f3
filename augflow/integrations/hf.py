"""Hugging Face: a pipeline as a `datasets` transform, and a compiled loader inside `transformers.Trainer`.

    train_ds = train_ds.with_transform(pipe.hf_transform())          # batched, as HF examples write it
    trainer = Trainer(model, args, train_dataset=train_ds, callbacks=[epoch_callback(train_ds)])

    loader = pipe.compile(records, batch_size=32)                  # or: the compiled loader's halves
    trainer = Trainer(model, args, train_dataset=loader.dataset, data_collator=loader.collate_fn)

- `HFTransform` takes the batch `with_transform` hands over (column -> list of values), runs the
  pipeline on each row and returns the augmented columns, images as CHW tensors, renamed to what
  `transformers` models take (`image` -> `pixel_values`, `label` -> `labels` by default).
- Seeding: a row whose `index_column` (default `_index`; add it with
  `ds.add_column("_index", range(len(ds)))`) holds its index is augmented exactly as
  `pipe(row, index=i, epoch=e)`; without it, the seed comes from the row's content (same image,
  same augmentation within an epoch). Either way, independent of DataLoader workers.
- Epochs: `with_transform` gives no epoch, so `epoch_callback(ds)` (a `TrainerCallback`) sets the
  transform's epoch at the start of each training epoch. Workers receive it as long as they are
  started per epoch (`dataloader_persistent_workers=False`, the default). A compiled loader's
  `dataset` needs no callback: accelerate calls its `set_epoch`.
- Trainer settings: `remove_unused_columns=False` with `with_transform` (otherwise the Trainer drops
  the `image` column before the transform sees it). With `loader.collate_fn` name the pipeline's
  fields as the model's arguments (`fields: {pixel_values: image}`, a `labels` column); with
  batch-stage ops (mixup, cutmix) use `collator(loader)` and `remove_unused_columns=False`, since
  the batch stage draws per-element parameters from the `_index` the Trainer would remove.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

from augflow.integrations import as_pipeline, pipeline_from_state, pipeline_state

MODEL_NAMES = {"image": "pixel_values", "label": "labels"}
_BOOKKEEPING = ("_index", "_epoch", "_provenance")


class HFTransform:
    """Callable for `datasets.Dataset.with_transform` / `set_transform`: a batch of rows in, the
    augmented batch out (picklable; DataLoader workers rebuild the pipeline from its description)."""

    def __init__(self, pipe: Any, *, rename: Mapping[str, str] | None = None, index_column: str = "_index",
                 epoch: int = 0, keep_index: bool = False):
        self.pipe = as_pipeline(pipe, "hf_transform")
        self.rename = dict(MODEL_NAMES if rename is None else rename)
        self.index_column, self.keep_index = index_column, keep_index
        self.epoch = int(epoch)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __call__(self, batch: Mapping[str, list]) -> dict[str, list]:
        from augflow.compile.sample_stage import to_output

        columns = list(batch)
        if not columns:
            return {}
        n = len(batch[columns[0]])
        indices = batch.get(self.index_column)
        out: dict[str, list] = {}
        for row in range(n):
            sample = {c: batch[c][row] for c in columns if c != self.index_column}
            index = None if indices is None else int(indices[row])
            result = to_output(self.pipe(sample, index=index, epoch=self.epoch))
            if self.keep_index and index is not None:
                result[self.index_column] = index
            for name, value in result.items():
                out.setdefault(self.rename.get(name, name), []).append(value)
        return out

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["pipe"] = pipeline_state(self.pipe)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state["pipe"] = pipeline_from_state(state["pipe"])
        self.__dict__.update(state)

    def __repr__(self) -> str:
        return (f"HFTransform({self.pipe!r}, rename={self.rename}, index_column={self.index_column!r}, "
                f"epoch={self.epoch})")


def hf_transform(pipe: Any, **options: Any) -> HFTransform:
    """`pipe` as a batched `datasets` transform; see `HFTransform` for the options."""
    return HFTransform(pipe, **options)


def set_epoch_of(target: Any, epoch: int) -> None:
    """Set the epoch of an HFTransform, a compiled loader (or its dataset), or a `datasets.Dataset`
    whose format transform is one."""
    if hasattr(target, "set_epoch"):
        target.set_epoch(epoch)
        return
    transform = getattr(target, "format", {}).get("format_kwargs", {}).get("transform") \
        if isinstance(getattr(target, "format", None), Mapping) else None
    if transform is None or not hasattr(transform, "set_epoch"):
        raise TypeError(f"cannot set the epoch of {type(target).__name__}: give the HFTransform, a dataset made with "
                        "ds.with_transform(pipe.hf_transform()), or a compiled loader")
    transform.set_epoch(epoch)


def epoch_callback(*targets: Any):
    """A `transformers.TrainerCallback` that sets each target's epoch at the start of every training
    epoch (targets: datasets made with `with_transform(pipe.hf_transform())`, HFTransforms, loaders)."""
    from transformers import TrainerCallback

    class AugflowEpochCallback(TrainerCallback):
        def on_epoch_begin(self, args, state, control, **kwargs):
            # state.epoch is k at the start of epoch k (fractional only when resuming mid-epoch)
            epoch = math.floor((state.epoch or 0.0) + 1e-6)
            for target in targets:
                set_epoch_of(target, epoch)

    for target in targets:   # fail at construction, not at the first epoch
        set_epoch_of(target, 0)
    return AugflowEpochCallback()


class ModelInputsCollator:
    """A compiled loader's collation and batch stage, then model argument names: augflow's own keys
    (`_index`, `_epoch`, `_provenance`) are dropped and fields renamed (`image` -> `pixel_values`)."""

    def __init__(self, collate_fn: Any, rename: Mapping[str, str] | None = None):
        self.collate_fn = collate_fn
        self.rename = dict(MODEL_NAMES if rename is None else rename)

    def __call__(self, samples: list[dict[str, Any]]) -> dict[str, Any]:
        batch = self.collate_fn(samples)
        return {self.rename.get(k, k): v for k, v in batch.items() if k not in _BOOKKEEPING}


def collator(loader: Any, rename: Mapping[str, str] | None = None) -> ModelInputsCollator:
    """`Trainer(train_dataset=loader.dataset, data_collator=collator(loader))` for pipelines whose
    fields are named `image`/`label`, or that have batch-stage ops (with `remove_unused_columns=False`)."""
    return ModelInputsCollator(loader.collate_fn, rename)


__all__ = ["HFTransform", "hf_transform", "epoch_callback", "collator", "ModelInputsCollator", "MODEL_NAMES"]
