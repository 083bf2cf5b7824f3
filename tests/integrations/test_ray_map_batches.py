"""Ray Data on a local 2-CPU Ray instance: a pipeline inside map_batches gives, for any block split,
batch size and concurrency, exactly `pipe(row, index=i, epoch=e)`, and streams into a training loop."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import torch
from skimage import data as skdata

ray = pytest.importorskip("ray", reason="needs the `ray` extra (ray[data])")
pytest.importorskip("ray.data", reason="needs the `ray` extra (ray[data])")

import augflow  # noqa: E402
from augflow.integrations.ray import RayBatchMap, map_batches  # noqa: E402

PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry", "hubble_deep_field")
PIPE = {"augflow": 1, "name": "ray", "seed": 8, "sample": [
    {"random_resized_crop": {"size": [24, 24], "scale": [0.3, 1.0]}}, {"horizontal_flip": {}},
    {"color_jitter": {"brightness": 0.3, "p": 0.8}}, {"to_tensor": {"dtype": "float32"}}]}


def rows() -> list[dict]:
    return [{"image": cv2.resize(getattr(skdata, n)(), (40, 40), interpolation=cv2.INTER_AREA), "label": i % 3}
            for i, n in enumerate(PHOTOS + PHOTOS[:2])]


@pytest.fixture(scope="module")
def local_ray():
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    ray.data.DataContext.get_current().enable_progress_bars = False
    yield ray
    if started:
        ray.shutdown()


def _by_index(ds) -> dict[int, dict]:
    return {int(r["_index"]): r for r in ds.take_all()}


def test_outputs_do_not_depend_on_blocks_batches_or_concurrency_and_equal_pipeline_calls(local_ray):
    samples = rows()
    one = map_batches(ray.data.from_items(samples, override_num_blocks=1), PIPE, epoch=1, batch_size=8,
                      compute=ray.data.TaskPoolStrategy(size=1))
    two = map_batches(ray.data.from_items(samples, override_num_blocks=4), PIPE, epoch=1, batch_size=3,
                      compute=ray.data.TaskPoolStrategy(size=2))
    a, b = _by_index(one), _by_index(two)
    assert sorted(a) == sorted(b) == list(range(len(samples)))
    pipe = augflow.Pipeline.from_dict(PIPE)
    for i, sample in enumerate(samples):
        ref = pipe(sample, index=i, epoch=1)
        assert np.array_equal(a[i]["image"], b[i]["image"])
        assert np.array_equal(a[i]["image"], ref["image"].numpy()) and a[i]["label"] == sample["label"]
    other_epoch = _by_index(map_batches(ray.data.from_items(samples), PIPE, epoch=2))
    assert not np.array_equal(other_epoch[0]["image"], a[0]["image"])


def test_to_ray_map_uses_the_datasets_own_index_column(local_ray):
    samples = [dict(r, _index=100 + i) for i, r in enumerate(rows()[:4])]
    pipe = augflow.Pipeline.from_dict(PIPE)
    ds = ray.data.from_items(samples, override_num_blocks=2).map_batches(pipe.to_ray_map(), batch_format="numpy",
                                                                         batch_size=2)
    got = _by_index(ds)
    for s in samples:
        ref = pipe({"image": s["image"], "label": s["label"]}, index=s["_index"])
        assert np.array_equal(got[s["_index"]]["image"], ref["image"].numpy())


def test_iter_torch_batches_feeds_a_training_loop(local_ray):
    ds = map_batches(ray.data.from_items(rows(), override_num_blocks=2), PIPE,
                     compute=ray.data.TaskPoolStrategy(size=2))
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 24 * 24, 3))
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    losses = []
    for batch in ds.iter_torch_batches(batch_size=4):
        assert batch["image"].shape[1:] == (3, 24, 24) and batch["image"].dtype == torch.float32
        loss = torch.nn.functional.cross_entropy(model(batch["image"]), batch["label"])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert len(losses) == 2 and all(math.isfinite(v) for v in losses)


def test_missing_index_column_is_a_clear_error():
    fn = RayBatchMap(PIPE)
    with pytest.raises(KeyError, match="no '_index' column"):
        fn({"image": np.zeros((1, 8, 8, 3), np.uint8), "label": np.array([0])})
