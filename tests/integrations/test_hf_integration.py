"""Hugging Face: `ds.with_transform(pipe.hf_transform())` and a compiled loader's halves inside a real
`transformers.Trainer` training a tiny ViT built from a config (no download)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

datasets = pytest.importorskip("datasets", reason="needs the `dev` extra (datasets)")
transformers = pytest.importorskip("transformers", reason="needs the `diffusers` or `llm` extra (transformers)")

from PIL import Image  # noqa: E402
from skimage import data as skdata  # noqa: E402

import augflow  # noqa: E402
from augflow.compile.sample_stage import to_output  # noqa: E402
from augflow.integrations.hf import HFTransform, collator, epoch_callback  # noqa: E402

PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry", "hubble_deep_field")
SAMPLE = [{"random_resized_crop": {"size": [32, 32], "scale": [0.3, 1.0]}}, {"horizontal_flip": {}},
          {"normalize": {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}}]
PIPE = {"augflow": 1, "name": "hf", "seed": 3, "sample": SAMPLE}


def photos(size: int = 48) -> list[Image.Image]:
    return [Image.fromarray(getattr(skdata, n)()).convert("RGB").resize((size, size)) for n in PHOTOS]


def hf_dataset(with_index: bool = True):
    imgs = photos()
    cols = {"image": imgs, "label": [i % 3 for i in range(len(imgs))]}
    feats = {"image": datasets.Image(), "label": datasets.ClassLabel(num_classes=3)}
    if with_index:
        cols["_index"], feats["_index"] = list(range(len(imgs))), datasets.Value("int64")
    return datasets.Dataset.from_dict(cols, features=datasets.Features(feats))


def tiny_vit():
    torch.manual_seed(0)
    cfg = transformers.ViTConfig(image_size=32, patch_size=8, num_channels=3, hidden_size=32, num_hidden_layers=1,
                                 num_attention_heads=2, intermediate_size=64, num_labels=3)
    return transformers.ViTForImageClassification(cfg)


def train(tmp_path, train_dataset, epochs: int = 2, **kwargs):
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path / "out"), per_device_train_batch_size=3, num_train_epochs=epochs, learning_rate=1e-3,
        report_to=[], use_cpu=True, save_strategy="no", logging_steps=1, seed=0, disable_tqdm=True,
        remove_unused_columns=kwargs.pop("remove_unused_columns", True))
    model = tiny_vit()
    trainer = transformers.Trainer(model=model, args=args, train_dataset=train_dataset, **kwargs)
    trainer.train()
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    return losses, {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_hf_transform_equals_pipeline_call_by_row_index():
    ds = hf_dataset().with_transform(augflow.Pipeline.from_dict(PIPE).hf_transform())
    pipe = augflow.Pipeline.from_dict(PIPE)
    rows = ds[0:4]                                       # one batched call, as a DataLoader makes it
    assert set(rows) == {"pixel_values", "labels"}       # `_index` used for seeding, then dropped
    for i in range(4):
        ref = to_output(pipe({"image": photos()[i], "label": i % 3}, index=i))
        assert torch.equal(rows["pixel_values"][i], ref["image"]) and rows["labels"][i] == i % 3
        assert rows["pixel_values"][i].shape == (3, 32, 32) and rows["pixel_values"][i].dtype == torch.float32
    transform = ds.format["format_kwargs"]["transform"]
    transform.set_epoch(1)
    assert not torch.equal(ds[0:1]["pixel_values"][0], rows["pixel_values"][0])


def test_hf_transform_without_index_seeds_by_content():
    transform = HFTransform(PIPE)
    batch = {"image": photos()[:2], "label": [0, 1]}
    first, again = transform(batch), transform({k: v[::-1] for k, v in batch.items()})
    assert torch.equal(first["pixel_values"][0], again["pixel_values"][1])   # same photo, same augmentation


class RecordingTransform(HFTransform):
    """Records the epoch of every row it augments (DataLoader workers: 0, so it runs here)."""

    def __call__(self, batch):
        self.seen = getattr(self, "seen", []) + [(self.epoch, int(i)) for i in batch["_index"]]
        return super().__call__(batch)


def test_trainer_with_transform_is_reproducible_and_moves_epochs(tmp_path):
    results, transforms = [], []
    for _ in range(2):
        transform = RecordingTransform(PIPE)
        ds = hf_dataset().with_transform(transform)
        results.append(train(tmp_path, ds, callbacks=[epoch_callback(ds)], remove_unused_columns=False))
        transforms.append(transform)
    (losses, weights), (losses2, weights2) = results
    assert len(losses) == 4 and all(math.isfinite(v) for v in losses)
    assert losses == losses2 and all(torch.equal(weights[k], weights2[k]) for k in weights)
    assert sorted(transforms[0].seen) == [(e, i) for e in (0, 1) for i in range(6)]
    other = dict(PIPE, seed=4)                           # the augmentation reaches the model
    ds = hf_dataset().with_transform(HFTransform(other))
    assert train(tmp_path, ds, callbacks=[epoch_callback(ds)], remove_unused_columns=False)[0] != losses


def test_trainer_takes_compiled_loader_dataset_and_collate_fn(tmp_path):
    pipe_dict = dict(PIPE, fields={"pixel_values": "image"})
    records = [{"pixel_values": np.asarray(img), "labels": i % 3} for i, img in enumerate(photos())]
    runs = []
    for _ in range(2):
        loader = augflow.Pipeline.from_dict(pipe_dict).compile(records, batch_size=3)
        runs.append(train(tmp_path, loader.dataset, data_collator=loader.collate_fn))
        assert loader.dataset.epoch == 1                 # accelerate called the dataset's set_epoch
    (losses, weights), (losses2, weights2) = runs
    assert len(losses) == 4 and all(math.isfinite(v) for v in losses)
    assert losses == losses2 and all(torch.equal(weights[k], weights2[k]) for k in weights)
    # both paths seed rows alike: the same crops and flips, hence the same training, up to float rounding
    # (the compiled loader fuses normalize into its batch stage, in torch; the transform runs albumentations')
    ds = hf_dataset().with_transform(HFTransform(PIPE))
    assert np.allclose(train(tmp_path, ds, callbacks=[epoch_callback(ds)], remove_unused_columns=False)[0], losses,
                       rtol=1e-5, atol=0)


def test_collator_renames_fields_and_keeps_batch_stage_indices(tmp_path):
    pipe_dict = dict(PIPE, batch={"ops": [{"mixup": {"alpha": 0.4, "num_classes": 3}}], "device": "cpu"})
    records = [{"image": np.asarray(img), "label": i % 3} for i, img in enumerate(photos())]
    loader = augflow.Pipeline.from_dict(pipe_dict).compile(records, batch_size=3)
    batch = collator(loader)([loader.dataset[i] for i in range(3)])
    assert set(batch) == {"pixel_values", "labels"} and batch["labels"].shape == (3, 3)
    losses, _ = train(tmp_path, loader.dataset, epochs=1, data_collator=collator(loader), remove_unused_columns=False)
    assert len(losses) == 2 and all(math.isfinite(v) for v in losses)
