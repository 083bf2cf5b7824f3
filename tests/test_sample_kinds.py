"""One table of field kinds (`sample.KINDS`): the places that vary by kind follow it."""

import numpy as np
import pytest
import torch
from skimage import data

from augflow.compile.backends.torch_loader import collate
from augflow.io.writers import encode_sample
from augflow.ops.adapters.albumentations import _to_albu
from augflow.sample import FIELD_KINDS, KINDS, FieldSpec, Sample, kinds_where

IMAGE = data.astronaut()[:64, :64]
VALUES = {
    "image": IMAGE, "mask": (IMAGE[..., 0] > 128).astype(np.uint8), "masks": np.zeros((2, 64, 64), np.uint8),
    "bboxes": np.array([[1.0, 2.0, 30.0, 40.0]]), "keypoints": np.array([[5.0, 6.0]]), "label": 3,
    "embedding": np.arange(8, dtype=np.float32), "volume": np.zeros((4, 64, 64), np.uint8),
    "mask3d": np.zeros((4, 64, 64), np.uint8),
}


def _spec(kind: str) -> FieldSpec:
    return FieldSpec(kind, {"bboxes": "pascal_voc", "keypoints": "xy"}.get(kind))


def test_field_kinds_are_the_table_rows():
    assert FIELD_KINDS == tuple(KINDS)
    assert set(kinds_where(collate="list")) == {"masks", "bboxes", "keypoints"}


def test_collate_stacks_or_lists_as_the_table_says():
    kinds = ["image", "mask", "masks", "bboxes", "keypoints", "label", "embedding"]
    fields = {k: _spec(k) for k in kinds}
    # the sample stage hands the collate tensors for stacked kinds (`to_output`)
    element = {k: VALUES[k] if KINDS[k].collate == "list" or k == "label" else torch.as_tensor(VALUES[k])
               for k in kinds}
    batch = collate([element, element], fields)
    for kind in kinds:
        if KINDS[kind].collate == "list":
            assert isinstance(batch[kind], list) and len(batch[kind]) == 2, kind
        else:
            assert isinstance(batch[kind], torch.Tensor) and batch[kind].shape[0] == 2, kind


@pytest.mark.parametrize("kind", ["image", "mask", "bboxes", "keypoints", "embedding", "volume"])
def test_writer_stores_each_kind_as_the_table_says(kind):
    files, meta = encode_sample(Sample({kind: VALUES[kind]}, {kind: _spec(kind)}))
    written = {column: ext for column, ext, _ in files}
    expected = {"image": {kind: "png"}, "array": {kind: "npy"}, "json": {}}[KINDS[kind].write]
    assert written == expected
    assert (kind in meta) == (KINDS[kind].write == "json")


def test_albumentations_receives_every_kind_under_its_target():
    kinds = ["image", "mask", "masks", "bboxes", "keypoints", "label", "embedding"]
    sample = Sample({k: VALUES[k] for k in kinds}, {k: _spec(k) for k in kinds})
    data_dict, names, _ = _to_albu(sample)
    passed = {names[key]: key for key in data_dict if key in names}
    assert passed == {k: KINDS[k].albumentations for k in kinds if KINDS[k].albumentations}
