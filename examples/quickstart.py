"""The README's quick start, runnable: augment a photograph, read its provenance, replay it, and
use the pipeline inside a torch Dataset with 0 and 2 workers (same tensors either way).

    python examples/quickstart.py
"""

from pathlib import Path

import torch
from skimage import data

import augflow

ROOT = Path(__file__).resolve().parents[1]


class Photos(torch.utils.data.Dataset):
    """An existing dataset; only `__getitem__` gains one line."""

    def __init__(self):
        self.items = [(data.astronaut(), 0), (data.chelsea(), 1), (data.coffee(), 2), (data.rocket(), 0)]
        self.augment = augflow.Pipeline.from_yaml(ROOT / "pipelines" / "imagenet_train.yaml")

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        image, label = self.items[i]
        out = self.augment({"image": image, "label": label}, index=i)
        return out["image"], out["label"]


def main() -> None:
    pipe = augflow.Pipeline.from_yaml(ROOT / "pipelines" / "imagenet_train.yaml")
    sample = {"image": data.astronaut(), "label": 3}
    out = pipe(sample, seed=1234)
    print("augmented:", tuple(out["image"].shape), out["image"].dtype)
    print("applied ops:", ", ".join(out.provenance.ops()))
    again = pipe.replay(sample, out.provenance.to_json())
    print("replay is bit-identical:", bool(torch.equal(again["image"], out["image"])))

    batches = {}
    for workers in (0, 2):
        loader = torch.utils.data.DataLoader(Photos(), batch_size=4, num_workers=workers)
        batches[workers] = next(iter(loader))[0]
    print("same batch with 0 and 2 workers:", bool(torch.equal(batches[0], batches[2])))


if __name__ == "__main__":
    main()
