"""`augflow validate`: ok files pass; mistakes come back with file:line:column, exit 1."""

import shutil

import pytest

from cli_helpers import REPO, run_cli


def test_ready_pipeline_validates():
    proc = run_cli("validate", "pipelines/imagenet_train.yaml", check=True)
    assert "pipelines/imagenet_train.yaml: ok" in proc.stdout
    assert "5 ops" in proc.stdout


def test_mistakes_are_reported_with_position_and_exit_1(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("augflow: 1\nsample:\n  - horizontal_flip: {p: 0.5}\n  - random_resized_crp: {size: [8, 8]}\n"
                   "  - color_jitter: {brightnes: 0.2}\n")
    proc = run_cli("validate", bad, "pipelines/imagenet_train.yaml")
    assert proc.returncode == 1
    assert f"{bad}:4:5: unknown op 'random_resized_crp'; did you mean 'random_resized_crop'" in proc.stderr
    assert f"{bad}:5:20: op 'color_jitter': parameter 'brightnes' is not a parameter" in proc.stderr
    assert "did you mean 'brightness'" in proc.stderr
    assert "1 of 2 pipeline files has errors" in proc.stderr
    assert "imagenet_train.yaml: ok" in proc.stdout     # the good file is still checked


def test_console_script_is_installed():
    exe = shutil.which("augflow")
    if exe is None:
        pytest.skip("the `augflow` console script is not on PATH (package not installed with pip)")
    import subprocess
    proc = subprocess.run([exe, "validate", "pipelines/imagenet_train.yaml"], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
