"""Crafted shifts: one validation set per family; folds keep validation families out of training."""

import numpy as np
import pytest

from augflow.adaptive.shifts import FAMILIES, family_folds, family_pipeline, shifted, train_pipeline
from augflow.steps import iter_ops


def test_each_family_is_a_validation_family_in_exactly_one_fold():
    folds = family_folds(3, seed=1)
    vals = [f for fold in folds for f in fold.val]
    assert sorted(vals) == sorted(FAMILIES)
    for fold in folds:
        assert not set(fold.train) & set(fold.val) and set(fold.train) | set(fold.val) == set(FAMILIES)


def test_training_pipeline_never_uses_a_validation_family_op():
    fold = family_folds(3)[0]
    used = {s.name for s in iter_ops(train_pipeline(fold).spec.sample)}
    held_out = {name for fam in fold.val for op in FAMILIES[fam] for name in op}
    allowed = {name for fam in fold.train for op in FAMILIES[fam] for name in op}
    assert used == allowed and not used & held_out


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_family_changes_images_and_replays(family, astronaut):
    rec = {"image": np.ascontiguousarray(astronaut[::2, ::2]), "label": 2}
    (i, c, out), = list(shifted([rec], family, seed=0))
    assert out.provenance.ops()[0] in {name for op in FAMILIES[family] for name in op}
    assert out["image"].shape == rec["image"].shape and not np.array_equal(out["image"], rec["image"])
    assert np.array_equal(family_pipeline(family, 0).replay(rec, out.provenance)["image"], out["image"])


def test_bad_k_and_family_are_explained():
    with pytest.raises(ValueError, match="known: color"):
        family_folds(2, ["colour", "digital"])
    with pytest.raises(ValueError, match="between 2"):
        family_folds(9)
