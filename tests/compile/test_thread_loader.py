"""The thread executor: the same batches as worker processes, from threads."""

from __future__ import annotations

import pytest
import torch

import augflow

PIPE = {"augflow": 1, "name": "threads", "seed": 3, "sample": [
    {"random_resized_crop": {"size": [48, 48]}}, {"horizontal_flip": {}},
    {"color_jitter": {"brightness": 0.3, "p": 0.5}}, {"normalize": {}}, {"to_tensor": {}}]}


def test_threads_give_the_batches_of_the_in_process_loader(jpeg_paths):
    pipe = augflow.Pipeline.from_dict(PIPE)
    ref = pipe.compile(jpeg_paths, batch_size=5, shuffle=True)
    threaded = pipe.compile(jpeg_paths, batch_size=5, shuffle=True, num_workers=3, executor="threads")
    for epoch in (0, 1):
        ref.set_epoch(epoch)
        threaded.set_epoch(epoch)
        a, b = list(ref), list(threaded)
        assert len(a) == len(b) == len(threaded) == 3
        for x, y in zip(a, b):
            assert torch.equal(x["_index"], y["_index"])
            torch.testing.assert_close(x["image"], y["image"], atol=0, rtol=0)
    threaded.close()
    assert "loader threads" in threaded.explain()


def test_unknown_executor_is_an_error_naming_the_choices(jpeg_paths):
    with pytest.raises(ValueError, match="processes, threads"):
        augflow.Pipeline.from_dict(PIPE).compile(jpeg_paths, executor="fibres")
