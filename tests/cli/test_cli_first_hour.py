"""What a user meets in the first hour: --version, every command's --help, the progress line,
op parameter descriptions and names, readable aliases."""

import time

import pytest

import augflow
from augflow import registry
from augflow.cli import console
from cli_helpers import run_cli


def test_version():
    proc = run_cli("--version", check=True)
    assert proc.stdout.strip() == f"augflow {augflow.__version__}"


@pytest.mark.parametrize("command", ["validate", "ops", "preview", "materialize", "bench", "noise-bank"])
def test_every_command_has_help(command):
    proc = run_cli(command, "--help")
    assert proc.returncode == 0, proc.stderr
    assert "Usage:" in proc.stdout
    if command == "preview":
        assert "Image files, or sources" in proc.stdout
    if command == "materialize":      # rich markup must not swallow the extra's name
        assert "augflow[ray]" in proc.stdout.replace("\n", "").replace("│", "").replace(" ", "")


def test_ops_shows_descriptions_and_interpolation_names():
    proc = run_cli("ops", "random_resized_crop", check=True)
    rows = {line.split("\t")[0]: line.split("\t") for line in proc.stdout.splitlines() if "\t" in line}
    assert rows["interpolation"][2] == '"linear"'
    assert "nearest, linear, cubic, area, lanczos" in rows["interpolation"][3]
    assert "Range of the random size of the crop" in rows["scale"][4]
    assert all(row[4] for name, row in rows.items() if name != "parameter"), rows


@pytest.mark.parametrize(("new", "old", "cls"), [
    ("at_least_one_bbox_random_crop", "at_least_one_b_box_random_crop", "AtLeastOneBBoxRandomCrop"),
    ("center_crop_3d", "center_crop3_d", "CenterCrop3D"),
    ("bbox_safe_random_crop", "b_box_safe_random_crop", "BBoxSafeRandomCrop"),
])
def test_readable_aliases_and_old_names_both_work(new, old, cls):
    assert registry.get(new).name == registry.get(old).name == f"albumentations.{cls}"
    assert registry.get(new).aliases[0] == new       # the listed name is the readable one


def test_no_rate_or_eta_before_a_rate_is_measured(monkeypatch, capsys):
    monkeypatch.setattr(console, "PROGRESS_INTERVAL_S", 0.0)
    monkeypatch.setattr(console, "is_tty", lambda stream=None: False)
    with console.Progress(1000, "materialize") as bar:
        time.sleep(0.3)              # start-up (model load, workers) is not part of the rate
        bar.advance(1)
        first = capsys.readouterr().err
        time.sleep(0.01)
        bar.advance(1)
        second = capsys.readouterr().err
    assert first.strip() == "materialize: 1/1000 samples (0%)"
    assert "ETA" in second and "samples/s" in second
    rate = float(second.split(", ")[1].split()[0])
    assert rate > 10, second         # one sample per ~10 ms, not 2 samples over the 0.3 s start-up
