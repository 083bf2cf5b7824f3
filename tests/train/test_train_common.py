"""Shared trainer helpers: atomic checkpoints, resumable state, reproducible shuffles."""

import torch

from augflow.train.common import generator, load_checkpoint, save_checkpoint, seeded


def test_checkpoint_round_trips_and_leaves_no_temporary_files(tmp_path):
    state = {"epoch": 3, "history": [{"loss": 0.5}], "weights": torch.arange(4.0)}
    save_checkpoint(tmp_path, state)
    save_checkpoint(tmp_path, {**state, "epoch": 4})          # overwrite in place
    back = load_checkpoint(tmp_path)
    assert back["epoch"] == 4 and back["history"] == [{"loss": 0.5}]
    torch.testing.assert_close(back["weights"], torch.arange(4.0))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]


def test_nothing_to_resume_is_none(tmp_path):
    assert load_checkpoint(tmp_path) is None
    assert load_checkpoint(tmp_path / "missing") is None


def test_shuffles_depend_only_on_seed_and_epoch():
    a = torch.randperm(100, generator=generator(7, 2))
    b = torch.randperm(100, generator=generator(7, 2))
    c = torch.randperm(100, generator=generator(7, 3))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_seeded_initialisation_leaves_the_callers_rng_alone():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    with seeded(0):
        first = torch.nn.Linear(4, 4).weight.detach().clone()
    with seeded(0):
        second = torch.nn.Linear(4, 4).weight.detach().clone()
    assert torch.equal(first, second)
    assert torch.equal(torch.rand(3), expected)
