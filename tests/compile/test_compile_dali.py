"""The DALI backend end to end on CPU operators (device_id=None): epochs, shuffling, labels, batch stage."""

from __future__ import annotations

import pytest
import torch

import augflow

pytest.importorskip("nvidia.dali", reason="DALI is the 'dali' extra")

PIPE = {"augflow": 1, "name": "dali_train", "seed": 1, "sample": [
    {"random_resized_crop": {"size": [32, 32]}},
    {"horizontal_flip": {"p": 0.5}},
    {"normalize": {}},
], "batch": {"ops": [{"mixup": {"alpha": 0.4}}]}}


def test_dali_loader_runs_epochs_with_labels_partial_batches_and_a_batch_stage(jpeg_folder):
    loader = augflow.Pipeline.from_dict(PIPE).compile(jpeg_folder, batch_size=5, backend="dali", shuffle=True)
    assert "backend dali" in loader.explain()
    seen = {}
    for epoch in (0, 1):
        loader.set_epoch(epoch)
        batches = list(loader)
        assert [len(b["_index"]) for b in batches] == [5, 5, 2] == [5, 5, 2][:len(loader)]
        idx = torch.cat([b["_index"] for b in batches])
        assert sorted(idx.tolist()) == list(range(12))
        seen[epoch] = (idx, torch.cat([b["image"] for b in batches]))
        b0 = batches[0]
        assert b0["image"].shape == (5, 3, 32, 32) and b0["image"].dtype == torch.float32
        assert b0["label"].shape == (5, 3)                     # mixed soft labels over 3 class folders
    assert not torch.equal(seen[0][0], seen[1][0])             # reshuffled per epoch
    loader.close()


def test_dali_epoch_is_reproducible(jpeg_paths):
    pipe = augflow.Pipeline.from_dict({**PIPE, "batch": {"ops": []}})
    loader = pipe.compile(jpeg_paths[:4], batch_size=4, backend="dali")
    first = next(iter(loader))["image"]
    loader.set_epoch(0)
    assert torch.equal(next(iter(loader))["image"], first)
    loader.close()
