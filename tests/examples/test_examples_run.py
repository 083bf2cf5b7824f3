"""The examples run as written (as a user runs them) and print what the README promises."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_quickstart_example_replays_and_is_worker_count_independent():
    result = subprocess.run([sys.executable, str(ROOT / "examples" / "quickstart.py")], capture_output=True,
                            text=True, timeout=300, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert "replay is bit-identical: True" in result.stdout
    assert "same batch with 0 and 2 workers: True" in result.stdout


def _run_example(*args: str) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


def test_lightning_example_moves_augmentation_per_epoch():
    pytest.importorskip("lightning", reason="needs the `lightning` extra")
    out = _run_example(str(ROOT / "examples" / "lightning_digits.py")).stdout
    assert "sample 0 augmented differently in epochs 1 and 2: True" in out
    assert "epoch 2's sample 0 is pipe(sample, index=0, epoch=1): True" in out
    assert float(out.split("validation accuracy after 2 epochs: ")[1].split()[0]) > 0.5


def test_hf_trainer_example_trains_reproducibly(tmp_path):
    pytest.importorskip("transformers", reason="needs transformers (the `diffusers` or `llm` extra)")
    out = _run_example(str(ROOT / "examples" / "hf_trainer.py"), "--out", str(tmp_path)).stdout
    assert "all losses finite: True" in out and "same losses in two runs: True" in out


def test_ray_example_is_worker_count_independent():
    pytest.importorskip("ray.data", reason="needs the `ray` extra")
    out = _run_example(str(ROOT / "examples" / "ray_data.py")).stdout
    assert "same output with 1 and 2 workers: True" in out and "row i is pipe(sample, index=i): True" in out
    assert "epoch 1: last batch loss" in out
