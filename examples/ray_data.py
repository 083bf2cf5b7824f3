"""Ray Data with augflow: a pipeline inside map_batches, streaming into a training loop.

    python examples/ray_data.py                  # a local Ray instance with 2 CPUs
    RAY_ADDRESS=auto python examples/ray_data.py # the same code on a running Ray cluster

Each row is augmented from (pipeline seed, epoch, row index), so the output is the same whatever
the number of blocks, workers or nodes: the script checks it against `pipe(sample, index=i)` and
against a run with a different concurrency, then trains a linear classifier for 2 epochs from
`iter_torch_batches`. About 1 min on 2 CPU cores, most of it starting Ray.
"""

from __future__ import annotations

import logging
import os

import cv2
import numpy as np
import ray
import torch
from skimage import data as skdata

import augflow
from augflow.integrations.ray import map_batches, with_row_index

PIPE = """
augflow: 1
name: ray-train
seed: 8
sample:
  - random_resized_crop: {size: [32, 32], scale: [0.3, 1.0]}
  - horizontal_flip: {}
  - color_jitter: {brightness: 0.3, contrast: 0.3, p: 0.8}
  - to_tensor: {dtype: float32}
"""
PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry", "hubble_deep_field")


def rows() -> list[dict]:
    """24 rows: the six skimage photographs (64x64) four times, labelled by photograph."""
    photos = [cv2.resize(getattr(skdata, n)(), (64, 64), interpolation=cv2.INTER_AREA) for n in PHOTOS]
    return [{"image": photos[i % 6], "label": i % 6} for i in range(24)]


def main() -> None:
    if os.environ.get("RAY_ADDRESS"):
        ray.init(log_to_driver=False)        # a cluster: augflow must be installed on every node
    else:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars, ctx.print_on_execution_start = False, False
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    pipe = augflow.Pipeline.from_yaml_text(PIPE)
    samples = rows()

    # map_batches adds an `_index` column (the row's position) and seeds every row by it
    one = map_batches(ray.data.from_items(samples, override_num_blocks=1), pipe,
                      compute=ray.data.TaskPoolStrategy(size=1)).take_all()
    two = map_batches(ray.data.from_items(samples, override_num_blocks=4), pipe,
                      compute=ray.data.TaskPoolStrategy(size=2)).take_all()
    one = {int(r["_index"]): r["image"] for r in one}
    two = {int(r["_index"]): r["image"] for r in two}
    print("same output with 1 and 2 workers:", all(np.array_equal(one[i], two[i]) for i in one))
    print("row i is pipe(sample, index=i):",
          all(np.array_equal(one[i], pipe(s, index=i)["image"].numpy()) for i, s in enumerate(samples)))

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 32 * 32, 6))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    indexed = with_row_index(ray.data.from_items(samples))   # number the rows before shuffling them
    for epoch in range(2):                   # Ray datasets are lazy: one mapped dataset per epoch
        ds = map_batches(indexed.random_shuffle(seed=epoch), pipe, epoch=epoch)
        for batch in ds.iter_torch_batches(batch_size=8):
            loss = torch.nn.functional.cross_entropy(model(batch["image"]), batch["label"])
            opt.zero_grad()
            loss.backward()
            opt.step()
        print(f"epoch {epoch}: last batch loss {loss.item():.3f}")
    ray.shutdown()


if __name__ == "__main__":
    main()
