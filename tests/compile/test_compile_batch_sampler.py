"""A user's batch sampler (NGAME's hard-negative batches) drives the compiled loader."""

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

import augflow

pytest.importorskip("faiss", reason="NGAMESampler needs the `negatives` extra (faiss-cpu)")
from augflow.negatives import NGAMESampler  # noqa: E402

PIPELINE = {"augflow": 1, "sample": [{"horizontal_flip": {"p": 0.5}}, {"to_tensor": {}}]}


def _digits(n=96):
    digits = load_digits()
    images = (digits.images[:n] * 16).clip(0, 255).astype(np.uint8)
    return [{"image": np.repeat(img[:, :, None], 3, axis=2), "label": int(y)}
            for img, y in zip(images, digits.target[:n])], digits.data[:n].astype(np.float32)


def test_loader_batches_are_the_samplers_batches_and_each_epoch_visits_every_sample():
    samples, feats = _digits()
    sampler = NGAMESampler(embeddings=feats, cluster_size=4, batch_size=16, seed=0)
    loader = augflow.Pipeline.from_dict(PIPELINE).compile(samples, batch_size=16, batch_sampler=sampler)
    for epoch in (0, 1):
        loader.set_epoch(epoch)
        expected = [sorted(int(i) for i in b) for b in sampler]
        got = []
        for batch in loader:
            assert batch["image"].shape[1:] == (3, 8, 8)
            labels = batch["label"].tolist()
            # labels identify the rows: each batch holds exactly the sampler's indices
            got.append(labels)
        assert len(got) == len(expected)
        assert [sorted(g) for g in got] == [sorted(samples[i]["label"] for i in b) for b in expected]
        assert sum(len(b) for b in expected) == len(samples)


def test_negatives_field_is_collated_into_a_padded_tensor_with_a_mask():
    from augflow.negatives.collate import collate_negatives

    items = [[{"value": np.zeros((8, 8, 3), np.uint8), "kind": "image", "op": "x"}],
             [{"value": np.ones((8, 8, 3), np.uint8), "kind": "image", "op": "x"}] * 2]
    out = collate_negatives(items)
    from augflow.compile.backends.torch_loader import collate

    batch = collate([{"negatives": items[0]}, {"negatives": items[1]}], {})
    assert torch.equal(batch["negatives"]["image"]["mask"], out["image"]["mask"])
    assert batch["negatives"]["image"]["mask"].tolist() == [[True, False], [True, True]]
