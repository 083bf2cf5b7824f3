"""Hugging Face datasets + transformers Trainer with augflow, on skimage photographs and a tiny ViT.

    python examples/hf_trainer.py              # ds.with_transform(pipe.hf_transform())
    python examples/hf_trainer.py --compiled   # Trainer(train_dataset=loader.dataset, data_collator=loader.collate_fn)

The model is a ViT built from a small config (random weights, nothing downloaded); the point is
the data path: the same pipeline file feeds a `datasets.Dataset` transform or a compiled loader,
each row is augmented from (pipeline seed, epoch, row index), and `epoch_callback` moves the
epoch forward. Runs the training twice and checks the losses repeat. About 20 s on one CPU core.
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")          # nothing is downloaded
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import datasets  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from PIL import Image  # noqa: E402
from skimage import data as skdata  # noqa: E402

import augflow  # noqa: E402
from augflow.integrations.hf import epoch_callback  # noqa: E402

PIPE = """
augflow: 1
name: hf-vit
seed: 3
fields: {pixel_values: image}     # only used by --compiled, whose records name the image pixel_values
sample:
  - random_resized_crop: {size: [32, 32], scale: [0.3, 1.0]}
  - horizontal_flip: {}
  - normalize: {mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225]}
"""
PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry", "hubble_deep_field")


def photo_dataset() -> datasets.Dataset:
    """Six skimage photographs (64x64) in three classes, with a row-index column for seeding."""
    images = [Image.fromarray(getattr(skdata, n)()).convert("RGB").resize((64, 64)) for n in PHOTOS]
    return datasets.Dataset.from_dict(
        {"image": images, "label": [i % 3 for i in range(len(images))], "_index": list(range(len(images)))},
        features=datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(num_classes=3),
                                    "_index": datasets.Value("int64")}))


def tiny_vit() -> transformers.ViTForImageClassification:
    torch.manual_seed(0)
    return transformers.ViTForImageClassification(transformers.ViTConfig(
        image_size=32, patch_size=8, num_channels=3, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, num_labels=3))


def train(compiled: bool, out_dir: str) -> list[float]:
    pipe = augflow.Pipeline.from_yaml_text(PIPE)
    args = transformers.TrainingArguments(
        output_dir=out_dir, per_device_train_batch_size=3, num_train_epochs=3, learning_rate=1e-3, use_cpu=True,
        report_to=[], save_strategy="no", logging_steps=1, seed=0, disable_tqdm=True,
        remove_unused_columns=compiled)   # with_transform needs the raw `image` column kept
    if compiled:
        ds = photo_dataset()
        records = [{"pixel_values": np.asarray(row["image"]), "labels": row["label"]} for row in ds]
        loader = pipe.compile(records, batch_size=3)
        trainer = transformers.Trainer(model=tiny_vit(), args=args, train_dataset=loader.dataset,
                                       data_collator=loader.collate_fn)
    else:
        train_ds = photo_dataset().with_transform(pipe.hf_transform())   # image -> pixel_values, label -> labels
        trainer = transformers.Trainer(model=tiny_vit(), args=args, train_dataset=train_ds,
                                       callbacks=[epoch_callback(train_ds)])
    trainer.train()
    return [h["loss"] for h in trainer.state.log_history if "loss" in h]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--compiled", action="store_true", help="use a compiled loader's dataset and collate_fn")
    parser.add_argument("--out", default="/tmp/augflow_hf_example")
    args = parser.parse_args()
    first, second = train(args.compiled, args.out), train(args.compiled, args.out)
    print(f"{len(first)} steps, losses: {', '.join(f'{v:.3f}' for v in first)}")
    print("all losses finite:", bool(np.all(np.isfinite(first))))
    print("same losses in two runs:", first == second)


if __name__ == "__main__":
    main()
