"""The compiled torch loader: equal to the pipeline per index, reproducible, shardable, trainable."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import augflow
from augflow.compile.decoding import decode

PIPE = {"augflow": 1, "name": "small_train", "seed": 7, "sample": [
    {"random_resized_crop": {"size": [48, 48], "scale": [0.3, 1.0]}},
    {"horizontal_flip": {"p": 0.5}},
    {"color_jitter": {"brightness": 0.3, "contrast": 0.3, "saturation": 0.3, "hue": 0.0, "p": 0.8}},
    {"normalize": {}},
    {"to_tensor": {}},
]}


def by_index(loader) -> dict[int, torch.Tensor]:
    out = {}
    for batch in loader:
        for i, img in zip(batch["_index"].tolist(), batch["image"]):
            out[i] = img
    return out


def test_unoptimised_loader_equals_pipeline_called_per_index(jpeg_paths):
    pipe = augflow.Pipeline.from_dict(PIPE)
    loader = pipe.compile(jpeg_paths[:6], batch_size=3, passes=())
    got = by_index(loader)
    for i in range(6):
        ref = pipe({"image": decode(jpeg_paths[i])}, index=i, epoch=0)["image"]
        assert torch.equal(got[i], ref)


def test_outputs_do_not_depend_on_worker_count_or_executor(jpeg_folder):
    pipe = augflow.Pipeline.from_dict(PIPE)
    runs = [by_index(pipe.compile(jpeg_folder, batch_size=4, num_workers=w, shuffle=True, executor=ex))
            for w, ex in ((0, "auto"), (1, "processes"), (2, "processes"), (2, "threads"))]
    assert all(run.keys() == set(range(12)) for run in runs)
    assert all(torch.equal(runs[0][i], run[i]) for run in runs[1:] for i in runs[0])


def test_set_epoch_changes_augmentation_and_replays_exactly(jpeg_paths):
    pipe = augflow.Pipeline.from_dict(PIPE)
    loader = pipe.compile(jpeg_paths[:4], batch_size=4)
    loader.set_epoch(0)
    e0 = by_index(loader)
    loader.set_epoch(1)
    e1 = by_index(loader)
    loader.set_epoch(0)
    again = by_index(loader)
    assert not torch.equal(e0[0], e1[0])
    assert all(torch.equal(e0[i], again[i]) for i in e0)


def test_sample_outputs_do_not_depend_on_world_size(jpeg_paths):
    pipe = augflow.Pipeline.from_dict(PIPE)
    single = by_index(pipe.compile(jpeg_paths[:7], batch_size=2, shuffle=True))
    shards = [by_index(pipe.compile(jpeg_paths[:7], batch_size=2, shuffle=True, rank=r, world_size=2)) for r in (0, 1)]
    assert set(shards[0]) | set(shards[1]) == set(range(7))
    for shard in shards:
        assert all(torch.equal(img, single[i]) for i, img in shard.items())


def test_image_folder_gives_labels_and_num_classes(jpeg_folder):
    pipe = augflow.Pipeline.from_dict({**PIPE, "batch": {"ops": [{"mixup": {"alpha": 0.4}}]}})
    loader = pipe.compile(jpeg_folder, batch_size=6)
    batch = next(iter(loader))
    assert batch["label"].shape == (6, 3)          # soft labels over the folder's 3 classes
    assert torch.allclose(batch["label"].sum(1), torch.ones(6))


def test_channels_last_option(jpeg_paths):
    pipe = augflow.Pipeline.from_dict(PIPE)
    batch = next(iter(pipe.compile(jpeg_paths[:2], batch_size=2, channels_last=True)))
    assert batch["image"].is_contiguous(memory_format=torch.channels_last)


def test_trainer_collator_gives_the_loader_batches(jpeg_paths):
    """Hugging Face Trainer-style use: the dataset and collator halves, in a plain DataLoader."""
    pipe = augflow.Pipeline.from_dict(PIPE)
    loader = pipe.compile(jpeg_paths[:4], batch_size=4)
    plain = torch.utils.data.DataLoader(loader.dataset, batch_size=4, collate_fn=loader.collate_fn)
    assert torch.equal(next(iter(plain))["image"], next(iter(loader))["image"])


def test_plain_training_loop_learns(jpeg_folder):
    """A tiny CNN trained for a few steps on a compiled loader (CutMix soft labels) lowers its loss."""
    torch.manual_seed(0)
    pipe = augflow.Pipeline.from_dict({**PIPE, "batch": {"ops": [{"cutmix": {"p": 0.5}}]}})
    loader = pipe.compile(jpeg_folder, batch_size=6, shuffle=True, drop_last=True)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, stride=2), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
                                torch.nn.Flatten(), torch.nn.Linear(8, 3))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for epoch in range(6):
        loader.set_epoch(epoch)
        for batch in loader:
            loss = torch.nn.functional.cross_entropy(model(batch["image"]), batch["label"])
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
    assert np.isfinite(losses).all()
    assert np.mean(losses[-4:]) < np.mean(losses[:4])


@pytest.mark.parametrize("ops", [[{"to_tensor": {}}], [{"horizontal_flip": {"p": 1.0}}]])
def test_exif_rotated_jpeg_comes_out_upright(tmp_path, astronaut, ops):
    """The fast JPEG path leaves EXIF-rotated files to the decoder that applies the orientation."""
    from PIL import Image
    exif = Image.Exif()
    exif[0x0112] = 6                                   # stored landscape, shown rotated 90 degrees
    path = tmp_path / "rotated.jpg"
    Image.fromarray(np.ascontiguousarray(astronaut[:64])).save(path, exif=exif.tobytes())   # 64 x 128 stored
    pipe = augflow.Pipeline.from_dict({"augflow": 1, "sample": ops})
    assert next(iter(pipe.compile([str(path)], batch_size=1)))["image"].shape == (1, 3, 128, 64)


def test_two_view_pipeline_gives_a_batch_per_view(jpeg_paths):
    """SimCLR-style `views: 2`: each view collated on its own, each sample's views differ."""
    pipe = augflow.Pipeline.from_dict({"augflow": 1, "sample": [
        {"views": 2}, {"random_resized_crop": {"size": [32, 32]}}, {"horizontal_flip": {}}]})
    batch = next(iter(pipe.compile(jpeg_paths[:3], batch_size=3)))
    assert batch["view0"]["image"].shape == batch["view1"]["image"].shape == (3, 3, 32, 32)
    assert not torch.equal(batch["view0"]["image"], batch["view1"]["image"])
