"""The day-to-night trainer: a few steps on skimage photographs and their `night` renderings."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data

from augflow import Pipeline
from augflow.generative.night import night
from augflow.train.day_to_night import TrainConfig, Trainer, main, train

PHOTOS = {"astronaut": data.astronaut, "chelsea": data.chelsea, "coffee": data.coffee, "rocket": data.rocket}
NIGHT = dict(exposure=-3.0, temperature=3000.0, gamma=1.2, photons=100.0, read_noise=0.005, glow=0.0,
             glow_threshold=0.8, glow_radius=0.02)
TINY = dict(size=32, load_size=36, ngf=4, ndf=4, n_blocks=2, progress=False)


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)     # a shared 2-core machine: one thread does not fight other processes
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> tuple[Path, Path]:
    """Day: four skimage photographs at 80 px; night: their `night` renderings (unpaired file names)."""
    root = tmp_path_factory.mktemp("day_night")
    (root / "day").mkdir()
    (root / "night").mkdir()
    for i, (name, load) in enumerate(PHOTOS.items()):
        img = np.asarray(Image.fromarray(load()).resize((80, 80), Image.BILINEAR))
        Image.fromarray(img).save(root / "day" / f"{name}.png")
        Image.fromarray(night(img, noise_seed=100 + i, **NIGHT)).save(root / "night" / f"{name}_night.png")
    return root / "day", root / "night"


def _config(folders, out: Path, **overrides) -> TrainConfig:
    day, night_dir = folders
    return TrainConfig(day=str(day), night=str(night_dir), output=str(out), **{**TINY, **overrides})


def test_a_short_run_has_finite_losses_and_its_checkpoint_loads_into_the_op(folders, tmp_path, astronaut):
    summary = train(_config(folders, tmp_path / "run", epochs=2, steps_per_epoch=2, checkpoint_every=1,
                            size=64, load_size=72))
    assert summary["steps"] == 4 and len(summary["history"]) == 2
    for row in summary["history"]:
        assert {"D_real", "D_fake", "G_adv", "G_edge"} <= set(row)
        assert all(math.isfinite(v) for v in row.values())
    assert summary["history"][0]["lr"] == pytest.approx(2e-4) and summary["history"][1]["lr"] < 2e-4   # decay
    run = tmp_path / "run"
    assert (run / "samples" / "epoch_0002.png").exists() and (run / "generators" / "epoch_0001.pth").exists()
    grid = np.asarray(Image.open(run / "samples" / "epoch_0002.png"))
    assert grid.shape == (2 * 64, 4 * 64, 3)        # day row over night row, four images
    meta = json.loads((run / "generator.json").read_text())
    assert meta["n_blocks"] == 2 and meta["epoch"] == 2
    pipe = Pipeline.from_dict({"augflow": 1, "sample": [{"day_to_night": {"checkpoint": str(run)}}]})
    out = pipe({"image": astronaut[:40, :40]}, seed=0)["image"]
    assert out.shape == (40, 40, 3) and not np.array_equal(out, astronaut[:40, :40])


def test_resuming_gives_the_same_weights_as_an_uninterrupted_run(folders, tmp_path):
    straight = _config(folders, tmp_path / "a", epochs=2, steps_per_epoch=2)
    train(straight)
    interrupted = _config(folders, tmp_path / "b", epochs=2, steps_per_epoch=2)
    first = Trainer(interrupted).run(until_epoch=1)
    assert first["epochs"] == 1 and (tmp_path / "b" / "last.pt").exists()
    resumed = Trainer(interrupted).run()
    assert resumed["epochs"] == 2 and resumed["steps"] == 4
    a = torch.load(tmp_path / "a" / "generator.pth")
    b = torch.load(tmp_path / "b" / "generator.pth")
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0)


def test_resume_refuses_a_run_with_other_settings(folders, tmp_path):
    Trainer(_config(folders, tmp_path / "c", epochs=2, steps_per_epoch=1)).run(until_epoch=1)
    with pytest.raises(ValueError, match="other settings.*ngf"):
        Trainer(_config(folders, tmp_path / "c", epochs=2, steps_per_epoch=1, ngf=8)).run()


def test_cyclegan_mode_trains_both_directions(folders, tmp_path):
    summary = train(_config(folders, tmp_path / "cg", epochs=1, steps_per_epoch=2, cyclegan=True, pool_size=2))
    row = summary["history"][0]
    assert {"cycle", "identity", "G_adv", "D_real", "D_fake"} <= set(row) and "G_edge" not in row
    assert all(math.isfinite(v) for v in row.values())
    grid = np.asarray(Image.open(tmp_path / "cg" / "samples" / "epoch_0001.png"))
    assert grid.shape[0] == 3 * 32                  # day, night, and back to day


def test_hed_edges_with_fine_tuning_against_a_frozen_copy(folders, tmp_path):
    from augflow.generative.networks import HED

    torch.manual_seed(0)
    hed_path = tmp_path / "hed.pth"
    torch.save({k: v * 0.05 for k, v in HED().state_dict().items()}, hed_path)
    config = _config(folders, tmp_path / "hed", epochs=1, steps_per_epoch=1, edge="hed", hed_checkpoint=str(hed_path))
    trainer = Trainer(config)
    before = {k: v.clone() for k, v in trainer.hed.state_dict().items()}
    row = trainer.run()["history"][0]
    assert math.isfinite(row["E"]) and math.isfinite(row["G_edge"])
    assert any(not torch.equal(before[k], v) for k, v in trainer.hed.state_dict().items())   # student moved
    assert all(torch.equal(trainer.hed_teacher.state_dict()[k], before[k]) for k in before)     # teacher frozen


def test_sobel_and_canny_edges_pass_gradients():
    from augflow.train.day_to_night import edge_map

    x = torch.rand(1, 3, 16, 16, requires_grad=True)
    for kind in ("sobel", "canny"):
        edge_map(x * 2 - 1, kind).sum().backward()
        assert x.grad is not None and x.grad.abs().sum() > 0
        x.grad = None


def test_command_line_trains_and_reports(folders, tmp_path, capsys):
    day, night_dir = folders
    code = main(["--day", str(day), "--night", str(night_dir), "--output", str(tmp_path / "cli"), "--epochs", "1",
                 "--steps-per-epoch", "1", "--size", "32", "--ngf", "4", "--ndf", "4", "--n-blocks", "1",
                 "--no-progress"])
    assert code == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["epochs"] == 1 and (tmp_path / "cli" / "generator.pth").exists()
    assert main(["--day", str(tmp_path / "none"), "--night", str(night_dir), "--output", str(tmp_path / "x")]) == 1
    assert "does not exist" in capsys.readouterr().err


def test_discriminator_inputs_go_through_an_augflow_batch_pipeline(folders, tmp_path):
    diffaug = tmp_path / "diffaug.yaml"
    diffaug.write_text("""\
augflow: 1
batch:
  device: cpu
  ops:
    - horizontal_flip: {p: 0.5}
    - affine: {scale: [0.8, 1.2], translate_percent: [-0.1, 0.1], p: 1.0}
    - color_jitter: {brightness: 0.3, contrast: 0.3, saturation: 0.3, hue: 0.0, p: 1.0}
""", encoding="utf-8")
    trainer = Trainer(_config(folders, tmp_path / "da", epochs=1, steps_per_epoch=2, d_augment=str(diffaug)))
    x = (torch.rand(2, 3, 32, 32) * 2 - 1).requires_grad_(True)
    a, b, c = trainer.augment(x, 0, 0), trainer.augment(x, 0, 0), trainer.augment(x, 0, 2)
    torch.testing.assert_close(a, b)                  # parameters are a function of (seed, epoch, index)
    assert not torch.equal(a, c) and not torch.equal(a, x)
    a.sum().backward()
    assert x.grad.abs().sum() > 0                     # the generator gets gradients through the augmentation
    row = trainer.run()["history"][0]
    assert all(math.isfinite(v) for v in row.values())
