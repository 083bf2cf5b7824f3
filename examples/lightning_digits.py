"""PyTorch Lightning with augflow: a LightningDataModule of compiled loaders on scikit-learn's digits.

    python examples/lightning_digits.py [--devices 2]     # --devices 2: DDP on CPU (gloo), two processes

Trains a tiny CNN for 2 epochs with an augmentation pipeline on the training split and a plain one
on the validation split. The training loader gets a new augmentation each epoch (Lightning calls
its set_epoch) that is the same in every run, and under DDP each process loads its own shard.
About 10 s on one CPU core.
"""

from __future__ import annotations

import argparse

import lightning.pytorch as pl
import numpy as np
import torch
from sklearn.datasets import load_digits

import augflow
from augflow.integrations.lightning import AugflowDataModule

TRAIN = """
augflow: 1
name: digits-train
seed: 7
sample:
  - affine: {p: 0.9, rotate: [-15, 15], translate_px: [-1, 1]}
  - to_tensor: {dtype: float32}
"""
VAL = """
augflow: 1
name: digits-val
sample:
  - to_tensor: {dtype: float32}
"""


class DigitsCNN(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.net = torch.nn.Sequential(
            torch.nn.Conv2d(1, 16, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(16, 32, 3, padding=1),
            torch.nn.ReLU(), torch.nn.MaxPool2d(2), torch.nn.Flatten(), torch.nn.Linear(32 * 16, 10))
        self.first_image: dict[int, torch.Tensor] = {}    # epoch -> the augmented image of sample 0

    def forward(self, image):
        return self.net(image)          # to_tensor(float32) scales to [0, 1]

    def training_step(self, batch, batch_idx):
        hits = (batch["_index"] == 0).nonzero()
        if len(hits):
            self.first_image[self.current_epoch] = batch["image"][hits[0, 0]].clone()
        loss = torch.nn.functional.cross_entropy(self(batch["image"]), batch["label"])
        self.log("train_loss", loss, prog_bar=True)
        return loss

    def validation_step(self, batch, batch_idx):
        acc = (self(batch["image"]).argmax(1) == batch["label"]).float().mean()
        self.log("val_acc", acc, prog_bar=True, sync_dist=True)

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=3e-3)


def digit_samples() -> list[dict]:
    """scikit-learn's 8x8 digits (values 0..16) as uint8 images with their labels."""
    d = load_digits()
    return [{"image": (img * 15).astype(np.uint8), "label": int(y)} for img, y in zip(d.images, d.target)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=1, help="CPU processes (2 or more: DDP over gloo)")
    args = parser.parse_args()
    samples = digit_samples()
    dm = AugflowDataModule(train=augflow.Pipeline.from_yaml_text(TRAIN), val=augflow.Pipeline.from_yaml_text(VAL),
                           data={"train": samples[:1500], "val": samples[1500:]}, batch_size=64)
    pl.seed_everything(0, verbose=False)
    model = DigitsCNN()
    trainer = pl.Trainer(accelerator="cpu", devices=args.devices, max_epochs=2, logger=False,
                         enable_checkpointing=False, enable_model_summary=False, enable_progress_bar=False,
                         strategy="ddp_spawn" if args.devices > 1 else "auto")
    trainer.fit(model, datamodule=dm)
    if "val_acc" in trainer.callback_metrics:
        print(f"validation accuracy after 2 epochs: {float(trainer.callback_metrics['val_acc']):.3f}")
    if args.devices == 1:         # with ddp_spawn the model trained in the worker processes
        print("sample 0 augmented differently in epochs 1 and 2:",
              not torch.equal(model.first_image[0], model.first_image[1]))
        pipe = augflow.Pipeline.from_yaml_text(TRAIN)
        print("epoch 2's sample 0 is pipe(sample, index=0, epoch=1):",
              torch.equal(model.first_image[1], pipe(samples[0], index=0, epoch=1)["image"]))


if __name__ == "__main__":
    main()
