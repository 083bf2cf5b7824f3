"""AugflowDataModule under a real Lightning Trainer: epochs move the augmentation, runs repeat it,
DDP ranks (gloo, CPU) see disjoint shards whose samples equal the single-process ones."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pl = pytest.importorskip("lightning.pytorch", reason="needs the `lightning` extra (pip install 'augflow[lightning]')")

import augflow  # noqa: E402
from augflow.integrations.lightning import AugflowDataModule  # noqa: E402

PIPE = {"augflow": 1, "name": "digits", "seed": 21, "sample": [
    {"affine": {"p": 1.0, "rotate": [-25, 25], "translate_px": [-1, 1]}},
    {"to_tensor": {"dtype": "float32"}}]}


def digits(n: int = 24) -> list[dict]:
    """scikit-learn's 8x8 digits as uint8 images (0..240) with their labels."""
    from sklearn.datasets import load_digits

    d = load_digits()
    return [{"image": (d.images[i] * 15).astype(np.uint8), "label": int(d.target[i])} for i in range(n)]


class DigitsNet(pl.LightningModule):
    """A tiny CNN that records every (epoch, index) -> image it trains on."""

    def __init__(self, out: str | None = None):
        super().__init__()
        torch.manual_seed(0)
        self.net = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.Flatten(),
                                       torch.nn.Linear(4 * 64, 10))
        self.out = out
        self.seen: dict[tuple[int, int], torch.Tensor] = {}

    def training_step(self, batch, batch_idx):
        for i, img in zip(batch["_index"].tolist(), batch["image"]):
            self.seen[(self.current_epoch, i)] = img.clone()
        return torch.nn.functional.cross_entropy(self.net(batch["image"]), batch["label"])

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.05)

    def on_train_end(self):
        if self.out is not None:
            torch.save({"rank": self.global_rank, "world": self.trainer.world_size, "seen": self.seen},
                       f"{self.out}.{self.global_rank}")


def _trainer(tmp_path, **kwargs) -> "pl.Trainer":
    return pl.Trainer(accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
                      enable_model_summary=False, default_root_dir=str(tmp_path), **kwargs)


def _fit(tmp_path, data) -> dict:
    model = DigitsNet()
    _trainer(tmp_path, max_epochs=2).fit(model, datamodule=AugflowDataModule(train=PIPE, data=data, batch_size=8))
    return model.seen


def test_two_epoch_fit_moves_augmentation_each_epoch_and_repeats_across_runs(tmp_path):
    data = digits()
    first, second = _fit(tmp_path, data), _fit(tmp_path, data)
    assert set(first) == {(e, i) for e in (0, 1) for i in range(len(data))}
    pipe = augflow.Pipeline.from_dict(PIPE)
    for (e, i), img in first.items():          # the trainer saw exactly pipe(sample, index=i, epoch=e)
        assert torch.equal(img, pipe(data[i], index=i, epoch=e)["image"])
        assert torch.equal(img, second[(e, i)])
    changed = sum(not torch.equal(first[(0, i)], first[(1, i)]) for i in range(len(data)))
    assert changed == len(data)


def test_validation_loader_stays_at_epoch_zero(tmp_path):
    dm = AugflowDataModule(train=PIPE, val=PIPE, data={"train": digits(8), "validation": digits(8)}, batch_size=4)
    model = DigitsNet()
    model.validation_step = lambda batch, batch_idx: model.val_images.append((model.current_epoch, batch["image"]))
    model.val_images = []
    _trainer(tmp_path, max_epochs=2, num_sanity_val_steps=0).fit(model, datamodule=dm)
    assert [e for e, _ in model.val_images] == [0, 0, 1, 1] and dm.loaders["train"].loader.epoch == 1
    assert all(torch.equal(a, b) for (_, a), (_, b) in zip(model.val_images[:2], model.val_images[2:]))
    assert dm.loaders["val"].loader.epoch == 0


def test_missing_stage_is_a_clear_error():
    dm = AugflowDataModule(train=PIPE, data={"train": digits(4)})
    with pytest.raises(ValueError, match="no 'test' pipeline; give test="):
        dm.test_dataloader()
    assert dm.val_dataloader() == []          # no val pipeline: Lightning skips validation
    with pytest.raises(ValueError, match="at least one pipeline"):
        AugflowDataModule(data=digits(4))


def test_ddp_ranks_see_disjoint_shards_equal_to_single_process(tmp_path):
    data = digits(12)
    out = str(tmp_path / "seen")
    dm = AugflowDataModule(train=PIPE, data=data, batch_size=3)
    _trainer(tmp_path, max_epochs=1, devices=2, strategy="ddp_spawn").fit(DigitsNet(out), datamodule=dm)
    results = [torch.load(f"{out}.{r}") for r in (0, 1)]
    assert [(r["rank"], r["world"]) for r in results] == [(0, 2), (1, 2)]
    shards = [{i for (_, i) in r["seen"]} for r in results]
    assert not shards[0] & shards[1] and shards[0] | shards[1] == set(range(len(data)))
    pipe = augflow.Pipeline.from_dict(PIPE)
    for r in results:
        for (e, i), img in r["seen"].items():
            assert torch.equal(img, pipe(data[i], index=i, epoch=e)["image"])
