"""PyTorch Lightning: a LightningDataModule whose loaders are compiled augflow pipelines.

    dm = AugflowDataModule(train="pipelines/train.yaml", val="pipelines/val.yaml",
                           data={"train": train_set, "val": val_set}, batch_size=64, num_workers=4)
    lightning.Trainer(max_epochs=10).fit(model, datamodule=dm)

- Epochs: at the start of every epoch Lightning calls `set_epoch(epoch)` on a loader's `sampler`
  (as it does for a DistributedSampler); the training loader forwards it to
  `CompiledLoader.set_epoch`, so sample i of epoch e is `pipe(record_i, index=i, epoch=e)`: new
  augmentations each epoch, the same ones in every run. Validation, test and predict loaders stay
  at epoch 0, so each epoch is validated on the same views.
- Sharding: loaders are built when the trainer asks for them, with its global rank and world size
  (DDP, ddp_spawn, multi-node): each rank takes its share of the epoch's permutation, and a
  sample's augmentation does not depend on the world size. The loaders are not DataLoaders, so
  Lightning does not inject a DistributedSampler; `use_distributed_sampler` can stay as it is.
"""

from __future__ import annotations

from typing import Any, Mapping

import lightning.pytorch as pl

from augflow.integrations import as_pipeline

STAGES = ("train", "val", "test", "predict")
_SPLIT_KEYS = {"train": ("train",), "val": ("val", "validation"), "test": ("test",), "predict": ("predict",)}


class LightningLoader:
    """A compiled loader as Lightning sees it: iterable, sized, and a `sampler` whose `set_epoch`
    reaches the loader (training) or is ignored (evaluation, which stays at epoch 0)."""

    batch_sampler = None    # Lightning inspects DataLoader-like objects for these two

    def __init__(self, loader: Any, follow_epochs: bool):
        self.loader = loader
        self.follow_epochs = follow_epochs
        self.sampler = _EpochHook(self)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        if self.follow_epochs:
            self.epoch = int(epoch)

    def __iter__(self):
        # The epoch is set explicitly before every pass, so the loader never picks one on its own
        # (a compiled loader left alone moves to the next epoch on each new iteration).
        self.loader.set_epoch(self.epoch)
        return iter(self.loader)

    def __len__(self) -> int:
        return len(self.loader)

    def __repr__(self) -> str:
        return f"LightningLoader({self.loader!r}, epoch={self.epoch})"


class _EpochHook:
    """What `lightning.fabric.utilities.data._set_sampler_epoch` finds as `dataloader.sampler`."""

    def __init__(self, owner: LightningLoader):
        self.owner = owner

    def set_epoch(self, epoch: int) -> None:
        self.owner.set_epoch(epoch)


class AugflowDataModule(pl.LightningDataModule):
    """Train/val/test/predict loaders compiled from augflow pipelines.

    `train`, `val`, `test`, `predict`: a Pipeline, a YAML path or a dict (only the stages you use).
    `data`: what `pipe.compile` reads (a dataset of sample dicts, image paths, an image folder, a
    CSV/JSONL manifest), either one source for every stage or a mapping of stage to source with
    keys among train, val (or validation, as in a Hugging Face DatasetDict), test, predict.
    `batch_size`, `num_workers`, `shuffle` (training only) and `loader_options` go to `compile`.
    """

    def __init__(self, train: Any = None, val: Any = None, test: Any = None, predict: Any = None, *,
                 data: Any, batch_size: int = 32, num_workers: int = 0, shuffle: bool = True,
                 **loader_options: Any):
        super().__init__()
        given = {"train": train, "val": val, "test": test, "predict": predict}
        self.pipelines = {stage: as_pipeline(p, f"AugflowDataModule({stage}=...)")
                          for stage, p in given.items() if p is not None}
        if not self.pipelines:
            raise ValueError("AugflowDataModule needs at least one pipeline: train=, val=, test= or predict= "
                             "(a Pipeline, a YAML path or a dict)")
        self.data = data
        self.batch_size, self.num_workers, self.shuffle = int(batch_size), int(num_workers), bool(shuffle)
        self.loader_options = loader_options
        self.loaders: dict[str, LightningLoader] = {}

    # ---- the four hooks Lightning calls ---------------------------------------------------
    def train_dataloader(self) -> LightningLoader:
        return self.loader("train")

    def val_dataloader(self) -> LightningLoader | list:
        # no val pipeline: no validation (Lightning skips an empty list), even if the model has a validation_step
        return self.loader("val") if "val" in self.pipelines else []

    def test_dataloader(self) -> LightningLoader:
        return self.loader("test")

    def predict_dataloader(self) -> LightningLoader:
        return self.loader("predict")

    # ---- building ---------------------------------------------------------------------------
    def loader(self, stage: str) -> LightningLoader:
        """The loader of `stage`, compiled for this process's rank in the trainer's world."""
        if stage not in self.pipelines:
            raise ValueError(f"AugflowDataModule has no {stage!r} pipeline; give {stage}=PIPELINE "
                             f"(it has: {', '.join(self.pipelines)})")
        rank, world = self.rank_and_world()
        train = stage == "train"
        compiled = self.pipelines[stage].compile(
            self.data_for(stage), batch_size=self.batch_size, num_workers=self.num_workers,
            shuffle=self.shuffle and train, rank=rank, world_size=world, **self.loader_options)
        self.loaders[stage] = LightningLoader(compiled, follow_epochs=train)
        return self.loaders[stage]

    def rank_and_world(self) -> tuple[int, int]:
        """The attached trainer's global rank and world size; (0, 1) without a trainer."""
        trainer = self.trainer
        if trainer is None:
            return 0, 1
        return int(trainer.global_rank), int(trainer.world_size)

    def data_for(self, stage: str) -> Any:
        data = self.data
        if isinstance(data, Mapping) and data and all(k in _ALL_SPLIT_KEYS for k in data):
            for key in _SPLIT_KEYS[stage]:
                if key in data:
                    return data[key]
            raise ValueError(f"AugflowDataModule(data=...) has no {stage!r} split (keys: {', '.join(map(str, data))}); "
                             f"add one of {', '.join(_SPLIT_KEYS[stage])}")
        return data


_ALL_SPLIT_KEYS = {k for keys in _SPLIT_KEYS.values() for k in keys}

__all__ = ["AugflowDataModule", "LightningLoader"]
